//! Legacy `layer.tar` entries compressed with xz or bzip2: `docker save` never writes them, but
//! `docker load` reads them (moby's loadLayer decompresses gzip, bzip2, xz and zstd), so a
//! hand-made or third-party archive may hold one. OCI has no media type for either, so such a
//! layer is decompressed on its way in, with the decoders of whole archives (bounded the same
//! way, see [`super::stream`]), and stored as a plain tar, or compressed as the spool's options
//! ask: either way its `diff_id` comes from the same pass, and the image config checks it.

use std::io::{self, Read};

use super::options::{LayerCompression, PROGRESS_STEP};
use super::read::{Stored, Storing, truncated, truncated_or};
use crate::codec::{self, Compression};
use crate::layout::Layout;
use crate::{Error, Result};

/// Store the xz or bzip2-compressed (`name`) layer entry `body` of `size` bytes at `path`,
/// decompressed; `tick` is called with the entry's bytes read about every [`PROGRESS_STEP`].
pub(super) fn store_decompressed<R: Read>(
    body: R,
    path: &str,
    size: u64,
    name: &str,
    compress: Option<LayerCompression>,
    layout: &Layout,
    tick: &mut impl FnMut(u64) -> Result<()>,
) -> Result<Storing> {
    let mut counted = Counted {
        inner: body,
        total: 0,
        reported: 0,
        tick,
    };
    let context = |e: Error| {
        let e = truncated_or(e, path);
        Error::new(e.kind(), format!("{name}-compressed layer {path:?}: {e}"))
    };
    let owned = path.to_string();
    let storing = {
        let decoded = super::stream::decoder(&mut counted).map_err(context)?;
        if let Some(c) = compress {
            let mut writer = layout.layer_writer(c.compression, c.level, c.threads)?;
            codec::copy(decoded, &mut writer).map_err(context)?;
            let blob = writer.finish()?;
            Storing::commit(move || {
                let info = blob.commit().map_err(|e| e.with_path(&owned))?;
                Ok(Stored {
                    digest: info.digest,
                    size: info.size,
                    compression: c.compression,
                    diff_id: Some(info.diff_id),
                    archived: size,
                })
            })
        } else {
            let mut w = layout.blob_writer()?;
            codec::copy(decoded, &mut w).map_err(context)?;
            Storing::commit(move || {
                let (digest, stored) = w.commit(None, None).map_err(|e| e.with_path(&owned))?;
                Ok(Stored {
                    diff_id: Some(digest.clone()),
                    digest,
                    size: stored,
                    compression: Compression::None,
                    archived: size,
                })
            })
        }
    };
    // What follows the compressed stream in the entry (nothing, in a sound one) is read too,
    // so the entry is consumed whole and its length checked.
    io::copy(&mut counted, &mut io::sink()).map_err(|e| context(Error::io("reading input", e)))?;
    if counted.total != size {
        return Err(truncated(path, counted.total, size));
    }
    if counted.total != counted.reported {
        (counted.tick)(counted.total)?;
    }
    storing
}

/// The compressed entry under a decoder: counts its bytes and reports progress.
struct Counted<'t, R, T> {
    inner: R,
    total: u64,
    reported: u64,
    tick: &'t mut T,
}

impl<R: Read, T: FnMut(u64) -> Result<()>> Read for Counted<'_, R, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total - self.reported >= PROGRESS_STEP {
            self.reported = self.total;
            (self.tick)(self.total).map_err(Error::into_io)?;
        }
        Ok(n)
    }
}
