//! Compressing a layer straight into a layout: one pass yields the blob, its digest and the
//! `diff_id`, and each byte is hashed once on each side of the codec.
//!
//! A [`crate::codec::Compressor`] into a [`BlobWriter`] would hash the compressed bytes twice:
//! once in the compressor, once in the blob writer, which must hash them anyway to name and
//! verify the blob. A [`LayerWriter`] takes the blob digest from the blob writer.

use std::io::{self, Write};

use super::{BlobWriter, Layout};
use crate::codec::{CompressedInfo, Compression, DiffHashing, Encoder};
use crate::{Digest, Error, Result};

impl Layout {
    /// A writer that compresses a layer's tar into a new sha256 blob of this layout: write the
    /// uncompressed tar, then [`LayerWriter::finish`] and [`CompressedBlob::commit`]. `level`
    /// and `threads` are as for [`crate::codec::Compressor::new`] (`threads` 0 means 1).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a level outside [`Compression::level_range`]; I/O
    /// errors creating the temp file.
    pub fn layer_writer(
        &self,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Result<LayerWriter> {
        let encoder = Encoder::new(self.blob_writer()?, compression, level, threads)?;
        Ok(LayerWriter {
            inner: DiffHashing::new(encoder),
        })
    }
}

/// A layer being compressed into a layout (see [`Layout::layer_writer`]). Dropping it before
/// [`CompressedBlob::commit`] leaves nothing in the layout.
pub struct LayerWriter {
    inner: DiffHashing<BlobWriter>,
}

impl LayerWriter {
    /// Uncompressed bytes written so far.
    pub fn uncompressed_size(&self) -> u64 {
        self.inner.uncompressed_size()
    }

    /// Write the codec's last bytes. The blob is not in the layout until
    /// [`CompressedBlob::commit`], so the caller can check the `diff_id` first.
    ///
    /// # Errors
    /// When the final bytes cannot be written.
    pub fn finish(self) -> Result<CompressedBlob> {
        let (writer, diff_id, uncompressed_size) = self
            .inner
            .finish()
            .map_err(|e| Error::io("finishing compressed stream", e))?;
        Ok(CompressedBlob {
            writer,
            diff_id,
            uncompressed_size,
        })
    }
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl std::fmt::Debug for LayerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter")
            .field("uncompressed_size", &self.uncompressed_size())
            .finish_non_exhaustive()
    }
}

/// A compressed layer written whole but not yet in place (see [`LayerWriter::finish`]).
#[derive(Debug)]
pub struct CompressedBlob {
    writer: BlobWriter,
    diff_id: Digest,
    uncompressed_size: u64,
}

impl CompressedBlob {
    /// The digest of the uncompressed tar that went in.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The size of the uncompressed tar that went in.
    pub fn uncompressed_size(&self) -> u64 {
        self.uncompressed_size
    }

    /// fsync the blob and rename it into place under the digest its bytes hashed to while they
    /// were written; report both digests and sizes.
    ///
    /// # Errors
    /// I/O errors; nothing appears in the layout then.
    pub fn commit(self) -> Result<CompressedInfo> {
        let (digest, size) = self.writer.commit(None, None)?;
        Ok(CompressedInfo {
            digest,
            size,
            diff_id: self.diff_id,
            uncompressed_size: self.uncompressed_size,
        })
    }
}
