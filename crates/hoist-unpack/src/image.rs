//! Unpacking a whole image from an OCI image layout (`hoist_oci::layout`).

use std::fs::File;
use std::path::Path;

use hoist_oci::Digest;
use hoist_oci::layout::{Image, Layout};

use crate::error::{Error, ErrorKind, Result};
use crate::{Stats, Unpacker};

impl Unpacker {
    /// Unpack `image` (read from `layout` with `Layout::image`) onto `root`, base layer first.
    ///
    /// Every layer blob is verified against its manifest digest and size, and every
    /// uncompressed stream against the config's `rootfs.diff_ids`; the layer count must match
    /// the diff_id count. On any error the root is left as it is and must not be trusted.
    pub fn unpack_image(&self, layout: &Layout, image: &Image, root: &Path) -> Result<Stats> {
        let layers = &image.manifest.value().layers;
        let diff_ids = &image.config.value().rootfs.diff_ids;
        if layers.len() != diff_ids.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the manifest lists {} layers but the config {} diff_ids",
                    layers.len(),
                    diff_ids.len()
                ),
            )
            .with_digest(&image.descriptor.digest));
        }
        let mut files = Vec::with_capacity(layers.len());
        for layer in layers {
            let path = layout.blob_path(&layer.digest);
            // A blob of the caller's layout, outside any unpack root.
            #[allow(clippy::disallowed_methods)]
            let file = File::open(&path).map_err(|e| {
                let hint = if layer.urls.is_empty() {
                    ""
                } else {
                    " (a foreign layer: fetch it from its URLs first)"
                };
                Error::io(
                    format!("opening the layer blob {}{hint}", path.display()),
                    e,
                )
                .with_digest(&layer.digest)
            })?;
            // Checked before anything is applied; the digest is checked while streaming.
            let len = file
                .metadata()
                .map_err(|e| Error::io(format!("inspecting {}", path.display()), e))?
                .len();
            if len != layer.size {
                return Err(size_mismatch(&layer.digest, layer.size, len));
            }
            files.push((file, Some(layer.digest.clone())));
        }
        self.unpack_layers(root, image.config.value(), files)
    }
}

fn size_mismatch(digest: &Digest, expected: u64, got: u64) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("layer size mismatch: the manifest says {expected} bytes, the blob has {got}"),
    )
    .with_digest(digest)
}
