//! Decoders of the layer codecs: one [`Decoder`] type over any reader, boxed by the public
//! functions as `Send` readers (so a decoder can move to another thread), and by the archive
//! reader, whose input need not be `Send`, as it is.

use std::io::{self, BufReader, Read};

use super::{Compression, MAX_ZSTD_WINDOW_LOG, Sniffed, read_prefix};
use crate::{Error, ErrorKind, Result};

/// A decoder for one of the layer codecs, reading from the buffered stream `R`. `Send`
/// whenever `R` is.
#[allow(clippy::large_enum_variant)] // made once per stream and boxed: a few hundred bytes
pub(crate) enum Decoder<R: io::BufRead> {
    Plain(R),
    Gzip(MapCorrupt<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(MapCorrupt<zstd::stream::read::Decoder<'static, R>>),
}

impl<R: io::BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

impl<R: io::BufRead> Decoder<R> {
    /// A decoder of `compression` reading straight out of `r`'s buffer.
    fn buffered(compression: Compression, r: R) -> Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::Plain(r),
            Compression::Gzip => Decoder::Gzip(MapCorrupt {
                inner: flate2::bufread::MultiGzDecoder::new(r),
                compression,
            }),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(r)
                    .map_err(|e| Error::io("setting up the zstd decoder", e))?;
                // Layers compressed with long-distance matching (`zstd --long`, window log 27)
                // need more than the default 8 MiB window; a frame may not claim more than
                // 128 MiB, so a hostile layer cannot make the decoder allocate gigabytes.
                d.window_log_max(MAX_ZSTD_WINDOW_LOG)
                    .map_err(|e| Error::io("setting up the zstd decoder", e))?;
                Decoder::Zstd(MapCorrupt {
                    inner: d,
                    compression,
                })
            }
        })
    }
}

/// `r` buffered as suits `compression` (so tar readers pulling 512-byte headers do not make a
/// syscall each), and a decoder over it.
fn unbuffered<R: Read>(compression: Compression, r: R) -> Result<Decoder<BufReader<R>>> {
    let capacity = match compression {
        Compression::None => 64 * 1024,
        Compression::Gzip => 32 * 1024,
        // What one zstd read wants: a whole block and its header.
        Compression::Zstd => zstd::zstd_safe::DCtx::in_size(),
    };
    Decoder::buffered(compression, BufReader::with_capacity(capacity, r))
}

/// What [`decoder`] returns, unboxed: for readers that are not `Send`.
pub(crate) fn sniffed_decoder<R: Read>(mut r: R) -> Result<Decoder<BufReader<Sniffed<R>>>> {
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut r, &mut magic).map_err(|e| Error::io("reading stream header", e))?;
    let compression = Compression::detect(&magic[..n]);
    unbuffered(compression, io::Cursor::new(magic).take(n as u64).chain(r))
}

/// [`decoder_for`] for a buffered stream: the decoders read straight out of its buffer, so
/// every compressed byte is copied once less than through a second buffer of their own.
///
/// # Errors
/// When the decoder cannot be set up.
pub fn decoder_for_buffered<'a, R: io::BufRead + Send + 'a>(
    compression: Compression,
    r: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(Box::new(Decoder::buffered(compression, r)?))
}

/// A reader yielding the uncompressed content of `r`, whose compression is detected from its
/// magic bytes (gzip, zstd, or none).
///
/// Corrupt or truncated compressed data surfaces as an `io::Error` that [`Error::io`] turns into
/// [`ErrorKind::Corrupt`].
///
/// The decoder is `Send` (so `r` must be): it can be moved to another thread, or handed to
/// `hoist_unpack::Unpacker::apply_layer`, which decodes on a thread of its own.
///
/// # Errors
/// When the first bytes cannot be read.
pub fn decoder<'a, R: Read + Send + 'a>(r: R) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(Box::new(sniffed_decoder(r)?))
}

/// A reader yielding the uncompressed content of `r`, which is compressed with `compression`.
/// `r` is buffered here (so tar readers pulling 512-byte headers do not make a syscall each);
/// a reader that is buffered already goes to [`decoder_for_buffered`] instead. `Send`, as
/// [`decoder`]'s is.
///
/// # Errors
/// When the decoder cannot be set up.
pub fn decoder_for<'a, R: Read + Send + 'a>(
    compression: Compression,
    r: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(Box::new(unbuffered(compression, r)?))
}

/// Turns a decoder's complaints about its input into [`ErrorKind::Corrupt`], leaving errors
/// from the stream underneath (which already carry this crate's error) as they are.
pub(crate) struct MapCorrupt<R> {
    inner: R,
    compression: Compression,
}

impl<R: Read> Read for MapCorrupt<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let ours = e.get_ref().is_some_and(|inner| inner.is::<Error>());
            let decoder_said = matches!(
                e.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::Other
            );
            if !ours && decoder_said {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("corrupt or truncated {} stream: {e}", self.compression),
                )
                .into_io()
            } else {
                e
            }
        })
    }
}
