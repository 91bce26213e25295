//! Unpacking a whole image from an OCI image layout (`hoist_oci::layout`).

use std::fs::File;
use std::path::Path;

use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, Digest, ImageConfig, ImageManifest};

use crate::error::{Error, ErrorKind, Result};
use crate::{Stats, Unpacker};

impl Unpacker {
    /// Unpack `image` (read from `layout` with `Layout::image`) onto `root`, base layer first.
    ///
    /// Every layer blob is verified against its manifest digest and size, and every
    /// uncompressed stream against the config's `rootfs.diff_ids`; the layer count must match
    /// the diff_id count. On any error the root is left as it is and must not be trusted.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidImage`] (naming the manifest's digest) when the manifest lists
    /// another number of layers than the config has diff_ids, before anything is applied; the
    /// errors of [`open_layer`] for a layer blob that is missing or of the wrong size; then
    /// those of [`Unpacker::unpack_layers`], naming the layer's digest.
    pub fn unpack_image(&self, layout: &Layout, image: &Image, root: &Path) -> Result<Stats> {
        check_layer_count(image.manifest.value(), image.config.value())
            .map_err(|e| e.with_manifest(&image.descriptor.digest))?;
        let mut files = Vec::new();
        for layer in &image.manifest.value().layers {
            files.push((open_layer(layout, layer)?, Some(layer.digest.clone())));
        }
        self.unpack_layers(root, image.config.value(), files)
    }
}

/// Refuse an image whose manifest lists another number of layers than its config has
/// `rootfs.diff_ids`: a layer without a diff_id could not be verified. For callers that apply
/// layers one by one ([`Unpacker::apply_layer`]) what [`Unpacker::unpack_image`] checks first.
///
/// # Errors
/// [`ErrorKind::InvalidImage`] when the counts differ: the image is at fault.
pub fn check_layer_count(manifest: &ImageManifest, config: &ImageConfig) -> Result<()> {
    let (layers, diff_ids) = (manifest.layers.len(), config.rootfs.diff_ids.len());
    if layers != diff_ids {
        return Err(Error::new(
            ErrorKind::InvalidImage,
            format!(
                "the manifest lists {layers} layers but the config {diff_ids} diff_ids: a layer \
                 without a diff_id cannot be verified"
            ),
        ));
    }
    Ok(())
}

/// Open the blob of `layer` in `layout`, refusing a regular file whose size is not the
/// descriptor's before anything is applied (the tar may end before the blob does; the digest is
/// checked while streaming, and is all a pipe can be checked by).
///
/// # Errors
/// [`ErrorKind::Io`] when the blob cannot be opened (a foreign layer is said to be one),
/// [`ErrorKind::DigestMismatch`] for a size mismatch.
pub fn open_layer(layout: &Layout, layer: &Descriptor) -> Result<File> {
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
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), e))?;
    if meta.is_file() && meta.len() != layer.size {
        return Err(size_mismatch(&layer.digest, layer.size, meta.len()));
    }
    Ok(file)
}

fn size_mismatch(digest: &Digest, expected: u64, got: u64) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("layer size mismatch: the manifest says {expected} bytes, the blob has {got}"),
    )
    .with_digest(digest)
}
