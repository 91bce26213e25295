//! Layer entries compressed with xz or bzip2: a legacy `<id>/layer.tar`, or a `blobs/<alg>/<hex>`
//! of an OCI archive named by the digest of those compressed bytes. `docker save` writes
//! neither, but `docker load` reads both (moby's loadLayer decompresses gzip, bzip2, xz and zstd,
//! and Docker >= 25's `manifest.json` names its layers by their `blobs/` paths), so a hand-made
//! or third-party archive may hold one. OCI has no media type for either, so such a layer is
//! decompressed on its way in, with the decoders of whole archives (bounded the same way, see
//! [`super::stream`]), and stored as a plain tar, or compressed as the spool's options ask:
//! either way its `diff_id` comes from the same pass, and the image config checks it.
//!
//! A named entry is stored under another digest than its name, as a layer compressed while
//! spooling is: a manifest the archive holds that names it is written anew (see
//! [`super::build`]). Its name is still checked, on the compressed bytes as they stream past,
//! and the decompressed blob is only put in place once the whole entry matched it.

use std::io::{self, Read};

use super::options::{LayerCompression, PROGRESS_STEP};
use super::read::{Stored, Storing, truncated, truncated_or};
use crate::codec::{self, Compression};
use crate::digest::Digester;
use crate::layout::Layout;
use crate::{Digest, Error, Result};

/// An xz or bzip2-compressed layer entry of the archive.
pub(super) struct Packed<'a> {
    /// Its path in the archive.
    pub(super) path: &'a str,
    /// Its size in the archive.
    pub(super) size: u64,
    /// `xz` or `bzip2`.
    pub(super) name: &'static str,
    /// The digest its path names (a `blobs/<alg>/<hex>` entry), which its compressed bytes
    /// must hash to.
    pub(super) named: Option<&'a Digest>,
}

/// Store the layer entry `body`, decompressed; `tick` is called with the entry's bytes read
/// about every [`PROGRESS_STEP`]. The blob is committed only after the entry was read whole,
/// its length checked and, for a named entry, its digest.
pub(super) fn store_decompressed<R: Read>(
    body: R,
    packed: &Packed<'_>,
    compress: Option<LayerCompression>,
    layout: &Layout,
    tick: &mut impl FnMut(u64) -> Result<()>,
) -> Result<Storing> {
    let Packed {
        path,
        size,
        name,
        named,
    } = *packed;
    let mut counted = Counted {
        inner: body,
        total: 0,
        reported: 0,
        tick,
        hasher: named.map(|d| Digester::new(d.algorithm())),
    };
    let context = |e: Error| {
        let e = truncated_or(e, path);
        Error::new(e.kind(), format!("{name}-compressed layer {path:?}: {e}"))
    };
    let owned = path.to_string();
    let commit: Box<dyn FnOnce() -> Result<Stored> + Send> = {
        let decoded = super::stream::decoder(&mut counted).map_err(context)?;
        if let Some(c) = compress {
            let mut writer = layout.layer_writer(c.compression, c.level, c.threads)?;
            codec::copy(decoded, &mut writer).map_err(context)?;
            let blob = writer.finish()?;
            Box::new(move || {
                let info = blob.commit().map_err(|e| e.with_path(&owned))?;
                Ok(Stored {
                    digest: info.digest,
                    size: info.size,
                    compression: c.compression,
                    diff_id: Some(info.diff_id),
                    archived: size,
                    decoded: Some(name),
                    inflated: None,
                })
            })
        } else {
            let mut w = layout.blob_writer()?;
            codec::copy(decoded, &mut w).map_err(context)?;
            Box::new(move || {
                let (digest, stored) = w.commit(None, None).map_err(|e| e.with_path(&owned))?;
                Ok(Stored {
                    diff_id: Some(digest.clone()),
                    digest,
                    size: stored,
                    compression: Compression::None,
                    archived: size,
                    decoded: Some(name),
                    inflated: None,
                })
            })
        }
    };
    // What follows the compressed stream in the entry (nothing, in a sound one) is read too,
    // so the entry is consumed whole, its length checked and all of it hashed.
    io::copy(&mut counted, &mut io::sink()).map_err(|e| context(Error::io("reading input", e)))?;
    if counted.total != size {
        return Err(truncated(path, counted.total, size));
    }
    if counted.total != counted.reported {
        (counted.tick)(counted.total)?;
    }
    if let (Some(named), Some(hasher)) = (named, counted.hasher) {
        let actual = hasher.finish();
        if &actual != named {
            // The decompressed blob is dropped uncommitted: its temp file goes with it.
            return Err(crate::digest::mismatch(named, &actual).with_path(path));
        }
    }
    Storing::commit(commit)
}

/// The compressed entry under a decoder: counts its bytes, hashes them when the entry is
/// named, and reports progress.
struct Counted<'t, R, T> {
    inner: R,
    total: u64,
    reported: u64,
    tick: &'t mut T,
    hasher: Option<Digester>,
}

impl<R: Read, T: FnMut(u64) -> Result<()>> Read for Counted<'_, R, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.total += n as u64;
        if self.total - self.reported >= PROGRESS_STEP {
            self.reported = self.total;
            (self.tick)(self.total).map_err(Error::into_io)?;
        }
        Ok(n)
    }
}
