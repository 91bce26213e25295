//! The compression around a whole archive stream (`docker save | gzip`, `| zstd`, `| xz`,
//! `| bzip2`): sniffed from the stream's first bytes and taken off on the fly, as `docker load`
//! does.
//!
//! gzip and zstd go through [`crate::codec`], the layer codecs. xz and bzip2 are decoded here
//! and nowhere else: hoist reads them around an archive (and around a layer inside one, a
//! legacy `layer.tar` or a `blobs/` entry, as `docker load` does) but never writes them, and
//! they are no layer compression
//! ([`crate::codec::Compression`] is gzip, zstd or none, as OCI has it).
//!
//! Both decoders pull from the source through one bounded buffer, so memory stays constant
//! whatever the archive's size. The one allocation a stream controls is xz's dictionary, which
//! a block header names: one over [`MAX_XZ_DICT`] is refused before the block is decoded.

use std::io::{self, BufReader, Read};

use super::read::read_full;
use crate::codec;
use crate::{Error, ErrorKind, Result};

/// The largest xz dictionary an archive may ask for: 128 MiB, twice what `xz -9` uses and the
/// same bound as a zstd window ([`codec::MAX_ZSTD_WINDOW_LOG`]). A block asking for more is
/// refused rather than decoded into a window that large.
pub(super) const MAX_XZ_DICT: u32 = 128 << 20;

/// How much of the compressed source is read at a time for xz and bzip2.
const SOURCE_BUF: usize = 64 * 1024;

/// A compression of whole archives that the layer codecs do not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outer {
    Xz,
    Bzip2,
}

impl Outer {
    /// From the first six bytes of a stream: xz's magic (`FD 37 7A 58 5A 00`), or bzip2's
    /// (`BZh` and a block size digit) followed by the start of a block (`1A`, from
    /// `1AY&SY`) or of the end of stream (`17 72`, an empty input). A tar opens with a
    /// NUL-padded file name, so it would need a first file named like that to match.
    fn detect(first: &[u8]) -> Option<Outer> {
        match first {
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Outer::Xz),
            [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41, ..]
            | [b'B', b'Z', b'h', b'1'..=b'9', 0x17, 0x72, ..] => Some(Outer::Bzip2),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outer::Xz => "xz",
            Outer::Bzip2 => "bzip2",
        }
    }
}

/// The name of the xz or bzip2 compression a stream opens with (`first`: its first bytes),
/// for a layer entry that `docker load` would decompress (moby's loadLayer reads gzip, bzip2,
/// xz and zstd); `None` for anything else.
pub(super) fn xz_or_bzip2(first: &[u8]) -> Option<&'static str> {
    Outer::detect(first).map(Outer::name)
}

/// How much more of the tar a failed spool reads to hear an xz or bzip2 decoder's verdict: a
/// bzip2 block (at most 900 kB, before its run-length stage undoes up to 51 times that) or a
/// block of `xz -T` output at the default level (24 MiB) ends within it, and with it the
/// block's check.
const VERDICT_LIMIT: u64 = 64 << 20;

/// The tar inside an archive stream: plain, or compressed whole with gzip, zstd, xz or bzip2
/// (several concatenated streams of one of them read as one, as `gzip -dc`, `xz -dc` and
/// `bzip2 -dc` read them).
///
/// Corrupt or truncated compressed data surfaces as an `io::Error` that [`Error::io`] turns into
/// [`ErrorKind::Corrupt`]; an xz dictionary over [`MAX_XZ_DICT`] as
/// [`ErrorKind::Unsupported`].
pub(super) struct Unpacked<'a> {
    reader: Box<dyn Read + 'a>,
    /// Whether the stream is compressed: then the decoder's checks come after the data they
    /// cover ([`Unpacked::cause`]).
    compressed: bool,
}

impl Read for Unpacked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Unpacked<'_> {
    /// After the tar inside turned out to be broken: the compressed stream's own error, when
    /// reading on (at most [`VERDICT_LIMIT`] bytes) shows that the stream is what is corrupt.
    /// A decoder checks a block (an xz or bzip2 block, a zstd frame) once it has handed out
    /// all of it, so a damaged block first yields garbage the tar reader chokes on; the
    /// decoder's complaint is the better message.
    pub(super) fn cause(&mut self) -> Option<Error> {
        if !self.compressed {
            return None;
        }
        let mut rest = (&mut self.reader).take(VERDICT_LIMIT);
        match io::copy(&mut rest, &mut io::sink()) {
            Ok(_) => None,
            Err(e) => Some(Error::io("reading the archive", e)),
        }
    }
}

/// Sniff the compression of an archive stream from its first bytes and take it off.
///
/// # Errors
/// When the first bytes cannot be read.
pub(super) fn decoder<'a, R: Read + 'a>(mut reader: R) -> Result<Unpacked<'a>> {
    let mut first = [0u8; 6];
    let n = read_full(&mut reader, &mut first)?;
    let outer = Outer::detect(&first[..n]);
    let whole = io::Cursor::new(first).take(n as u64).chain(reader);
    let Some(kind) = outer else {
        return Ok(Unpacked {
            reader: Box::new(codec::sniffed_decoder(whole)?),
            compressed: codec::Compression::detect(&first[..n]) != codec::Compression::None,
        });
    };
    let source = BufReader::with_capacity(SOURCE_BUF, Source(whole));
    let reader: Box<dyn Read + 'a> = match kind {
        Outer::Xz => {
            // The limit is in KiB and covers the dictionary plus the decoder's own buffers.
            let limit = lzma_rust2::lzma2_get_memory_usage(MAX_XZ_DICT);
            Box::new(Decoded::new(
                lzma_rust2::XzReader::new_mem_limit(source, true, limit),
                kind,
            ))
        }
        Outer::Bzip2 => Box::new(Decoded::new(
            bzip2::bufread::MultiBzDecoder::new(source),
            kind,
        )),
    };
    Ok(Unpacked {
        reader,
        compressed: true,
    })
}

/// The compressed source under a decoder. Its errors are wrapped in this crate's [`Error`], so
/// [`Decoded`] can tell them from the decoder's complaints about the data; interrupted reads
/// are retried here, so no decoder sees one half-way through a header.
struct Source<R>(R);

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.get_ref().is_some_and(|inner| inner.is::<Error>()) => return Err(e),
                Err(e) => {
                    return Err(Error::io(format!("reading the archive: {e}"), e).into_io());
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

/// An xz or bzip2 decoder whose complaints become this crate's errors, and which stays failed
/// once it failed (a decoder's state after an error is not worth trusting).
struct Decoded<D> {
    inner: D,
    outer: Outer,
    failed: Option<(ErrorKind, String)>,
}

impl<D: Read> Decoded<D> {
    fn new(inner: D, outer: Outer) -> Self {
        Decoded {
            inner,
            outer,
            failed: None,
        }
    }

    /// This crate's error for one the decoder returned.
    fn classify(&self, e: io::Error) -> Error {
        if let Some(ours) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
            // The source failed (already said as "reading the archive: ...").
            return Error::new(ours.kind(), ours.to_string());
        }
        let name = self.outer.name();
        match e.kind() {
            // lzma-rust2 says so when a block header asks for more than the limit.
            io::ErrorKind::OutOfMemory => Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the archive's xz stream asks for a dictionary over {} MiB (`xz -9` uses 64 \
                     MiB); refused rather than allocated: recompress it with `xz -9` or less",
                    MAX_XZ_DICT >> 20
                ),
            ),
            io::ErrorKind::Unsupported => Error::new(
                ErrorKind::Unsupported,
                format!("the archive's {name} stream uses a feature hoist does not read: {e}"),
            ),
            _ => Error::new(
                ErrorKind::Corrupt,
                format!("the archive's {name} stream is corrupt or truncated: {e}"),
            ),
        }
    }
}

impl<D: Read> Read for Decoded<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(Error::new(*kind, message.clone()).into_io());
        }
        self.inner.read(buf).map_err(|e| {
            let err = self.classify(e);
            self.failed = Some((err.kind(), err.to_string()));
            err.into_io()
        })
    }
}
