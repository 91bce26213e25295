//! Content digests: validated when parsed, computed while streaming.
//!
//! A [`Digest`] can only hold a known algorithm and lowercase hex of exactly the right length, so
//! once you have one it is safe to use as a file name (`blobs/sha256/<hex>`): no separators, no
//! `..`, nothing else. [`Digester`] hashes incrementally; [`VerifyingReader`] hashes what passes
//! through it and fails at end of stream when the content is not what was promised.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::{Error, ErrorKind, Result};

/// A digest algorithm hoist understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm nearly every image uses.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings and layout paths (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The length of the hex encoding of this algorithm's output.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest such as `sha256:e3b0c442…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parse and validate a digest string.
    ///
    /// # Errors
    /// An [`ErrorKind::InvalidInput`] error when the algorithm is unknown or the hex part is not
    /// lowercase hex of the algorithm's length.
    pub fn parse(s: &str) -> Result<Self> {
        let shown = shorten(s);
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("invalid digest {shown:?}: missing ':'")))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(Error::invalid(format!(
                    "invalid digest {shown:?}: unsupported algorithm"
                )));
            }
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::invalid(format!(
                "invalid digest {shown:?}: expected {} lowercase hex characters",
                algorithm.hex_len()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The SHA-256 digest of an in-memory byte slice (manifests and configs, never layers).
    pub fn sha256_of(bytes: &[u8]) -> Self {
        let mut d = Digester::new(Algorithm::Sha256);
        d.update(bytes);
        d.finish()
    }

    /// The digest of `bytes` with the same algorithm as `self`.
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Self {
        let mut d = Digester::new(self.algorithm);
        d.update(bytes);
        d.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for humans: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm, &self.hex[..12])
    }

    /// Check `bytes` hash to this digest.
    ///
    /// # Errors
    /// [`ErrorKind::DigestMismatch`] naming both digests.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<()> {
        let actual = self.same_algorithm_of(bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(mismatch(self, &actual))
        }
    }
}

/// The error for content that hashed to `actual` where `expected` was promised.
pub(crate) fn mismatch(expected: &Digest, actual: &Digest) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("digest mismatch: expected {expected}, content hashes to {actual}"),
    )
    .with_digest(expected)
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// An incremental hasher producing a [`Digest`].
pub struct Digester {
    state: State,
    len: u64,
}

impl Digester {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Digester { state, len: 0 }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    /// How many bytes were fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.state {
            State::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize().as_slice())),
            State::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize().as_slice())),
        };
        Digest { algorithm, hex }
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        };
        f.debug_struct("Digester")
            .field("algorithm", &algorithm)
            .field("len", &self.len)
            .finish()
    }
}

impl Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes what it yields and, at end of stream, fails unless the content matched
/// the expected digest (and size, when given).
///
/// The failure is an `io::Error` wrapping this crate's [`Error`]; [`Error::io`] recovers its kind.
pub struct VerifyingReader<R> {
    inner: R,
    digester: Option<Digester>,
    expected: Digest,
    expected_size: Option<u64>,
    read: u64,
    /// The kind and text of the first failure: every later read fails the same way, so a
    /// caller that retries never gets a clean end of stream after bad bytes.
    failed: Option<(ErrorKind, String)>,
}

impl<R: Read> VerifyingReader<R> {
    /// Wrap `inner`, which must yield exactly the content of `expected` (of `size` bytes, if known).
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        VerifyingReader {
            inner,
            digester: Some(Digester::new(expected.algorithm())),
            expected,
            expected_size: size,
            read: 0,
            failed: None,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Whether the stream was read to its end and verified.
    pub fn is_verified(&self) -> bool {
        self.digester.is_none() && self.failed.is_none()
    }

    /// Unwrap the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn size_error(&self, what: &str) -> io::Error {
        Error::new(
            ErrorKind::SizeMismatch,
            format!(
                "size mismatch: expected {} bytes, {what} {}",
                self.expected_size.unwrap_or(0),
                self.read
            ),
        )
        .with_digest(&self.expected)
        .into_io()
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, text)) = &self.failed {
            return Err(Error::new(*kind, format!("{text} (reported earlier)"))
                .with_digest(&self.expected)
                .into_io());
        }
        let result = self.read_verified(buf);
        if let Err(e) = &result
            && let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>())
        {
            self.failed = Some((inner.kind(), inner.to_string()));
        }
        result
    }
}

impl<R: Read> VerifyingReader<R> {
    fn read_verified(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if let Some(digester) = self.digester.as_mut() {
            if n == 0 {
                if let Some(size) = self.expected_size
                    && self.read != size
                {
                    return Err(self.size_error("stream ended after"));
                }
                let actual = self.digester.take().map(Digester::finish);
                if let Some(actual) = actual
                    && actual != self.expected
                {
                    return Err(mismatch(&self.expected, &actual).into_io());
                }
                return Ok(0);
            }
            digester.update(&buf[..n]);
            self.read += n as u64;
            if let Some(size) = self.expected_size
                && self.read > size
            {
                return Err(self.size_error("stream yielded at least"));
            }
        }
        Ok(n)
    }
}

impl<R> fmt::Debug for VerifyingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingReader")
            .field("expected", &self.expected.to_string())
            .field("expected_size", &self.expected_size)
            .field("read", &self.read)
            .field("verified", &self.digester.is_none())
            .finish()
    }
}

/// A writer adapter that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`, hashing with `algorithm`.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            digester: Digester::new(algorithm),
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.digester.len()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, mutably (writing to it directly bypasses the hash).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Finish: the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.digester.len();
        (self.inner, self.digester.finish(), len)
    }
}

impl<W> fmt::Debug for HashingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingWriter")
            .field("digester", &self.digester)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d: Digest = EMPTY.parse().expect("valid");
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::sha256_of(b""), d);
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn rejects_path_like_and_malformed() {
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256",
            "",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            let err = Digest::parse(bad).expect_err(bad);
            assert!(err.is_invalid_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn deserialize_validates() {
        let ok: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).expect("valid");
        assert_eq!(ok.to_string(), EMPTY);
        assert!(serde_json::from_str::<Digest>("\"sha256:nothex\"").is_err());
    }

    #[test]
    fn sha512_known_value() {
        let mut d = Digester::new(Algorithm::Sha512);
        d.update(b"abc");
        let got = d.finish();
        assert!(got.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(got.hex().len(), 128);
    }

    #[test]
    fn verifying_reader_accepts_and_rejects() {
        let data = b"hello world";
        let good = Digest::sha256_of(data);
        let mut out = Vec::new();
        let mut r = VerifyingReader::new(&data[..], good.clone(), Some(11));
        r.read_to_end(&mut out).expect("verifies");
        assert!(r.is_verified());

        let bad = Digest::sha256_of(b"other");
        let mut r = VerifyingReader::new(&data[..], bad, None);
        let err = Error::io("read", r.read_to_end(&mut out).expect_err("mismatch"));
        assert!(err.is_digest_mismatch(), "{err}");
        // It stays failed: not verified, and no clean end of stream on a retry.
        assert!(!r.is_verified());
        let again = Error::io("read", r.read(&mut [0u8; 8]).expect_err("still failed"));
        assert!(again.is_digest_mismatch(), "{again}");

        let mut r = VerifyingReader::new(&data[..], good.clone(), Some(12));
        let err = Error::io("read", r.read_to_end(&mut out).expect_err("short"));
        assert!(err.is_size_mismatch(), "{err}");

        let mut r = VerifyingReader::new(&data[..], good, Some(5));
        let err = Error::io("read", r.read_to_end(&mut out).expect_err("long"));
        assert!(err.is_size_mismatch(), "{err}");
    }

    #[test]
    fn hashing_writer_counts() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"hello world").expect("write");
        let (inner, digest, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
    }
}
