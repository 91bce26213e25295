//! Compression codecs for layers: detection by magic bytes, streaming decoders and encoders.
//!
//! [`decoder`] sniffs the first bytes of a stream and returns a reader yielding the uncompressed
//! tar, whatever the compression was. [`Compressor`] is a writer that compresses what it is given
//! and, in the same pass, hashes both the uncompressed input (the layer's `diff_id`) and the
//! compressed output (the blob digest), so a layer is read exactly once to produce a pushable
//! blob. Everything streams through bounded buffers.
//!
//! Compression can use several threads per layer: gzip through block gzip (256 KiB blocks
//! compressed in parallel and stitched into one standard gzip member, like pigz), zstd through
//! its own multithreaded mode, in 512 KiB jobs, used even for one thread. Either way the output
//! depends only on the input and the level, never on the thread count, so with a given hoist
//! build a layer's digest does not depend on the machine that compressed it (another zlib-rs or
//! zstd version may pick other matches: digests can change between hoist builds).

mod decode;
mod gzip;
mod zstd_encoder;

pub(crate) use decode::sniffed_decoder;
pub use decode::{decoder, decoder_for, decoder_for_buffered};

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use crate::digest::Algorithm;
use crate::frames::FrameWriter;
use crate::{Digest, Error, Result};

/// The largest zstd window (as a power of two) a layer may ask the decoder for: 128 MiB, what
/// `zstd --long` uses. Larger windows are refused rather than allocated.
pub const MAX_ZSTD_WINDOW_LOG: u32 = 27;

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
}

impl Compression {
    /// Detect the compression from the first bytes of a blob (at least 4 bytes should be given).
    ///
    /// A zstd stream may open with a skippable frame (magic `0x184D2A50`-`0x184D2A5F`, little
    /// endian) instead of a data frame, as seekable and chunked zstd layers can; the decoder
    /// skips it, so it counts as zstd too. A plain tar cannot start with those bytes: its first
    /// 100 bytes are a NUL-padded file name, and `0x18` is no character a name holds.
    pub fn detect(prefix: &[u8]) -> Compression {
        match prefix {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [0x50..=0x5f, 0x2a, 0x4d, 0x18, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The level used when none is given: gzip 1 and zstd 3.
    ///
    /// Pushing is bounded by compression speed. Measured on a 256 MiB tar of `/usr` on the
    /// 2-core dev machine (flate2 on zlib-rs, `examples/codec_speed.rs`), MiB/s of input and
    /// compressed/original ratio: gzip 1: 61, 0.48; gzip 2: 29, 0.40; gzip 6: 19, 0.37;
    /// gzip 9: 10, 0.36; zstd 1: 107, 0.39; zstd 3: 49, 0.35 (77 with 2 threads).
    pub fn default_level(self) -> i32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zstd => 3,
        }
    }

    /// The accepted levels.
    pub fn level_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip => 0..=9,
            Compression::Zstd => -7..=22,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(Error::invalid(format!(
                "unknown compression {:?}: expected none, gzip or zstd",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// Read up to `buf.len()` bytes, stopping early only at end of stream.
fn read_prefix<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Sniff the compression of `r` and return it with a reader that still yields every byte.
///
/// # Errors
/// [`crate::ErrorKind::Io`] (or the inner error's kind) when reading the first bytes fails.
pub fn detect_reader<'a, R: Read + 'a>(mut r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut r, &mut magic).map_err(|e| Error::io("reading stream header", e))?;
    let compression = Compression::detect(&magic[..n]);
    let prefix = io::Cursor::new(magic).take(n as u64);
    Ok((compression, Box::new(prefix.chain(r))))
}

/// A buffered stream with its first bytes read off and put back in front.
pub type Sniffed<R> = io::Chain<io::Take<io::Cursor<[u8; 4]>>, R>;

/// [`detect_reader`] for a buffered stream, keeping it buffered (no box, no second buffer):
/// give the result to [`decoder_for_buffered`].
///
/// # Errors
/// As [`detect_reader`].
pub fn detect_buffered<R: io::BufRead>(mut r: R) -> Result<(Compression, Sniffed<R>)> {
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut r, &mut magic).map_err(|e| Error::io("reading stream header", e))?;
    let compression = Compression::detect(&magic[..n]);
    Ok((compression, io::Cursor::new(magic).take(n as u64).chain(r)))
}

/// What compressing a layer produced: the blob's digest and size, and the digest and size of
/// the uncompressed tar (the `diff_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedInfo {
    /// The digest of the compressed bytes (the blob digest in a manifest).
    pub digest: Digest,
    /// The number of compressed bytes.
    pub size: u64,
    /// The digest of the uncompressed input (the `diff_id` in a config).
    pub diff_id: Digest,
    /// The number of uncompressed bytes.
    pub uncompressed_size: u64,
}

/// A codec writing into `O`.
pub(crate) enum Encoder<O: Write> {
    None(O),
    Gzip(Box<gzip::BlockGzip<O>>),
    Zstd(zstd_encoder::ZstdEncoder<'static, O>),
}

impl<O: Write> Encoder<O> {
    /// An encoder writing `compression` at `level` (the codec's default when `None`) into
    /// `out`; see [`Compressor::new`] for `threads`.
    pub(crate) fn new(
        out: O,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Result<Self> {
        let level = level.unwrap_or(compression.default_level());
        if !compression.level_range().contains(&level) {
            return Err(Error::invalid(format!(
                "{compression} level {level} is outside {:?}",
                compression.level_range()
            )));
        }
        Ok(match compression {
            Compression::None => Encoder::None(out),
            Compression::Gzip => Encoder::Gzip(Box::new(
                gzip::BlockGzip::new(out, level.unsigned_abs(), threads)
                    .map_err(|e| Error::io("starting the gzip encoder", e))?,
            )),
            Compression::Zstd => Encoder::Zstd(
                zstd_encoder::encoder(out, level, threads)
                    .map_err(|e| Error::io("setting up the zstd encoder", e))?,
            ),
        })
    }

    /// Write the codec's last bytes and hand back the output.
    pub(crate) fn finish(self) -> io::Result<O> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<O: Write> Write for Encoder<O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
        }
    }
}

/// Hashes what passes through it into `W` (the uncompressed side of a compressor), so the
/// `diff_id` comes out of the same pass as the compressed bytes.
pub(crate) struct DiffHashing<W: Write> {
    encoder: Encoder<W>,
    diff: FrameWriter<io::Sink>,
}

impl<W: Write> DiffHashing<W> {
    pub(crate) fn new(encoder: Encoder<W>) -> Self {
        DiffHashing {
            encoder,
            diff: FrameWriter::new(io::sink(), Algorithm::Sha256),
        }
    }

    pub(crate) fn uncompressed_size(&self) -> u64 {
        self.diff.bytes_written()
    }

    /// The codec's output, and the digest and size of what went in.
    pub(crate) fn finish(self) -> io::Result<(W, Digest, u64)> {
        let out = self.encoder.finish()?;
        let (_, diff_id, size) = self.diff.finish()?;
        Ok((out, diff_id, size))
    }
}

impl<W: Write> Write for DiffHashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.diff.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}

/// A writer that compresses into `W`, hashing the input (diff_id) and the output (blob digest)
/// in the same pass, each on a helper thread beside the codec.
///
/// Compressing into a layout, use [`crate::Layout::layer_writer`]: the blob writer there hashes
/// the output already, and this would hash it a second time.
pub struct Compressor<W: Write> {
    inner: DiffHashing<FrameWriter<W>>,
}

impl<W: Write> fmt::Debug for Compressor<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("uncompressed_size", &self.uncompressed_size())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Compressor<W> {
    /// A compressor writing `compression` at `level` (the codec's default when `None`) into
    /// `output`, on `threads` threads: block gzip (256 KiB blocks, pigz-style, one standard gzip
    /// member; inline for one thread), or zstd's multithreaded mode in 512 KiB jobs (one worker
    /// beside the caller for one thread). `threads` 0 means the same as 1: there is no "pick
    /// for me" value; pass `std::thread::available_parallelism()` for that. The output does not
    /// depend on `threads`: for a given hoist build, the same input and level give the same
    /// bytes, hence the same digest, on every machine.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a level outside [`Compression::level_range`].
    pub fn new(
        output: W,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Result<Self> {
        let out = FrameWriter::new(output, Algorithm::Sha256);
        let encoder = Encoder::new(out, compression, level, threads)?;
        Ok(Compressor {
            inner: DiffHashing::new(encoder),
        })
    }

    /// Compress all of `input` into `output` and report digests and sizes.
    ///
    /// # Errors
    /// Errors reading `input` (with their kind kept), writing `output`, or an invalid level.
    pub fn compress<R: Read>(
        input: R,
        output: W,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Result<CompressedInfo> {
        let mut c = Compressor::new(output, compression, level, threads)?;
        copy(input, &mut c)?;
        Ok(c.finish()?.1)
    }

    /// Uncompressed bytes written so far.
    pub fn uncompressed_size(&self) -> u64 {
        self.inner.uncompressed_size()
    }

    /// Flush the codec and return the output writer and what was produced.
    ///
    /// # Errors
    /// When the final bytes cannot be written.
    pub fn finish(self) -> Result<(W, CompressedInfo)> {
        let fail = |e| Error::io("finishing compressed stream", e);
        let (out, diff_id, uncompressed_size) = self.inner.finish().map_err(fail)?;
        let (mut inner, digest, size) = out.finish().map_err(fail)?;
        inner.flush().map_err(fail)?;
        Ok((
            inner,
            CompressedInfo {
                digest,
                size,
                diff_id,
                uncompressed_size,
            },
        ))
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Compress all of `input` into `output`; see [`Compressor::compress`].
///
/// # Errors
/// As [`Compressor::compress`].
pub fn compress<R: Read, W: Write>(
    input: R,
    output: W,
    compression: Compression,
    level: Option<i32>,
    threads: usize,
) -> Result<CompressedInfo> {
    Compressor::compress(input, output, compression, level, threads)
}

/// The buffer size used when copying streams.
pub(crate) const COPY_BUF: usize = 256 * 1024;

/// Copy `r` into `w` through one bounded buffer, keeping this crate's error kinds.
pub(crate) fn copy<R: Read, W: Write>(mut r: R, w: &mut W) -> Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading input", e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| Error::io("writing output", e))?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decoders_move_to_another_thread() {
        let data = b"decoded on another thread ".repeat(2_000);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut blob = Vec::new();
            compress(&data[..], &mut blob, compression, None, 1).expect("compress");
            let decoders = [
                decoder(io::Cursor::new(blob.clone())).expect("decoder"),
                decoder_for(compression, io::Cursor::new(blob)).expect("decoder_for"),
            ];
            for mut decoded in decoders {
                // Compiles only while the decoder is `Send`.
                let out = std::thread::spawn(move || {
                    let mut out = Vec::new();
                    decoded.read_to_end(&mut out).map(|_| out)
                })
                .join()
                .expect("thread")
                .expect("decode");
                assert!(out == data, "{compression}");
            }
        }
    }

    #[test]
    fn detects_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"ustar"), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
        // Skippable frames, first and last of the range; one past it is not zstd.
        assert_eq!(
            Compression::detect(&[0x50, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect(&[0x5f, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect(&[0x60, 0x2a, 0x4d, 0x18]),
            Compression::None
        );
        assert_eq!(
            "zstd".parse::<Compression>().expect("zstd"),
            Compression::Zstd
        );
        assert!(
            "lz4"
                .parse::<Compression>()
                .expect_err("lz4")
                .is_invalid_input()
        );
    }

    /// A reader that hands out at most one byte per call, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect()
    }

    fn round_trip(data: &[u8], c: Compression, level: Option<i32>, threads: usize) {
        let mut out = Vec::new();
        let info = compress(data, &mut out, c, level, threads).expect("compress");
        assert_eq!(info.size, out.len() as u64);
        assert_eq!(info.digest, Digest::sha256_of(&out));
        assert_eq!(info.diff_id, Digest::sha256_of(data));
        assert_eq!(info.uncompressed_size, data.len() as u64);
        if c == Compression::None {
            assert_eq!(out, data);
            return;
        }
        assert_eq!(Compression::detect(&out), c);
        let mut back = Vec::new();
        decoder(Trickle(&out))
            .expect("decoder")
            .read_to_end(&mut back)
            .expect("decode");
        assert_eq!(back, data);
        // The buffered pair, over a buffer that fills a byte at a time: same detection, and
        // the decoders read straight out of it.
        let (found, sniffed) =
            detect_buffered(io::BufReader::with_capacity(1, Trickle(&out))).expect("sniff");
        assert_eq!(found, c);
        let mut back = Vec::new();
        decoder_for_buffered(found, sniffed)
            .expect("decoder")
            .read_to_end(&mut back)
            .expect("decode buffered");
        assert_eq!(back, data);
    }

    #[test]
    fn round_trips_each_codec() {
        let data = sample(300_000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            round_trip(&data, c, None, 1);
            round_trip(&[], c, None, 1);
        }
        round_trip(&data, Compression::Zstd, Some(19), 2);
        round_trip(&data, Compression::Gzip, Some(9), 1);
    }

    #[test]
    fn zstd_opening_with_a_skippable_frame_decodes() {
        // A skippable frame (magic 0x184D2A53, 5 bytes of payload) before a data frame, as a
        // seekable zstd layer may start.
        let mut blob = vec![0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0];
        blob.extend_from_slice(b"skip!");
        let data = sample(70_000);
        compress(&data[..], &mut blob, Compression::Zstd, None, 1).expect("compress");
        let mut back = Vec::new();
        decoder(Trickle(&blob))
            .expect("decoder")
            .read_to_end(&mut back)
            .expect("decode");
        assert_eq!(back, data);
    }

    #[test]
    fn concatenated_gzip_members_decode_fully() {
        let mut out = Vec::new();
        compress(&b"first "[..], &mut out, Compression::Gzip, None, 1).expect("a");
        compress(&b"second"[..], &mut out, Compression::Gzip, None, 1).expect("b");
        let mut back = String::new();
        decoder(&out[..])
            .expect("decoder")
            .read_to_string(&mut back)
            .expect("decode");
        assert_eq!(back, "first second");
    }

    #[test]
    fn block_gzip_is_one_member_and_independent_of_threads() {
        // Enough blocks that buffers and deflate states are reused, plus a partial one; a
        // tar-like mix of runs and noise.
        let data: Vec<u8> = (0..(7 * gzip::BLOCK + 12_345))
            .map(|i| {
                if (i / 50_000) % 2 == 0 {
                    (i % 7) as u8
                } else {
                    ((i * 2654435761usize) >> 13) as u8
                }
            })
            .collect();
        let mut outputs = Vec::new();
        for threads in [1, 2, 3] {
            let mut out = Vec::new();
            let info = compress(&data[..], &mut out, Compression::Gzip, Some(6), threads)
                .expect("compress");
            assert_eq!(info.diff_id, Digest::sha256_of(&data));
            assert_eq!(info.digest, Digest::sha256_of(&out));
            // A single-member decoder reads all of it: one gzip member, valid CRC and size.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .expect("single-member decode");
            assert_eq!(back.len(), data.len());
            assert!(back == data);
            outputs.push(out);
        }
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "output depends on threads"
        );
        // Priming each block with the previous window keeps the ratio close to plain gzip.
        let mut plain = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut plain, flate2::Compression::new(6));
        enc.write_all(&data).expect("plain");
        enc.finish().expect("finish");
        assert!(outputs[0].len() < plain.len() + plain.len() / 50 + 64);
    }

    #[test]
    fn rejects_bad_levels() {
        let err =
            Compressor::new(Vec::new(), Compression::Gzip, Some(10), 1).expect_err("level 10");
        assert!(err.is_invalid_input());
        assert!(Compressor::new(Vec::new(), Compression::Zstd, Some(23), 1).is_err());
    }

    #[test]
    fn truncated_and_corrupt_streams_are_corrupt_errors() {
        let data = sample(200_000);
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut out = Vec::new();
            compress(&data[..], &mut out, c, None, 1).expect("compress");
            let truncated = &out[..out.len() / 2];
            let err = decoder(truncated)
                .expect("decoder")
                .read_to_end(&mut Vec::new())
                .expect_err("truncated must fail");
            assert!(Error::io("decode", err).is_corrupt(), "{c} truncated");
            let mut flipped = out.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0xff;
            flipped[mid + 1] ^= 0x55;
            let res = decoder(&flipped[..])
                .expect("decoder")
                .read_to_end(&mut Vec::new());
            let err = res.expect_err("corrupt must fail");
            assert!(Error::io("decode", err).is_corrupt(), "{c} corrupt");
        }
    }

    #[test]
    fn inner_errors_keep_their_kind() {
        // A verifying reader underneath a decoder: its digest mismatch stays a digest mismatch.
        let mut gz = Vec::new();
        compress(&b"payload"[..], &mut gz, Compression::Gzip, None, 1).expect("gz");
        let wrong = Digest::sha256_of(b"not it");
        let r = crate::VerifyingReader::new(&gz[..], wrong, None);
        let err = decoder(r)
            .expect("decoder")
            .read_to_end(&mut Vec::new())
            .expect_err("mismatch");
        assert!(Error::io("read", err).is_digest_mismatch());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn codec_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            which in 0usize..3,
            threads in 1usize..3,
        ) {
            let c = [Compression::None, Compression::Gzip, Compression::Zstd][which];
            round_trip(&data, c, None, threads);
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn zstd_with_window(window_log: u32) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("encoder");
        enc.window_log(window_log).expect("window log");
        enc.write_all(b"a small tar stand-in").expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn zstd_window_is_capped() {
        let mut out = Vec::new();
        decoder(&zstd_with_window(MAX_ZSTD_WINDOW_LOG)[..])
            .expect("decoder")
            .read_to_end(&mut out)
            .expect("a 128 MiB window is accepted");
        assert_eq!(out, b"a small tar stand-in");

        let hostile = zstd_with_window(MAX_ZSTD_WINDOW_LOG + 3);
        let err = decoder(&hostile[..])
            .and_then(|mut d| {
                d.read_to_end(&mut Vec::new())
                    .map_err(|e| Error::io("decoding", e))
            })
            .expect_err("a 1 GiB window is refused");
        assert!(err.is_corrupt() || err.is_invalid_input(), "{err:?}");
    }
}
