//! A multi-platform image in an OCI layout: two synthetic images (different blobs, one gzip and
//! one zstd) listed by an image index for linux/amd64 and linux/arm64, written by hand like the
//! rest of this module, for tests of copies that must keep the index byte for byte.

use super::oci::update_index;
use super::{ImageSpec, SynthImage, sha256_digest, write_oci_layout};
use anyhow::Context;
use hoist_oci::{Compression, Digest, MediaType};
use serde_json::json;
use std::path::Path;

/// What [`write_multi_platform_layout`] wrote.
#[derive(Debug, Clone)]
pub struct MultiPlatformImage {
    /// The index's exact bytes.
    pub index_bytes: Vec<u8>,
    /// Their digest.
    pub index_digest: Digest,
    /// The images it lists, in its order: linux/amd64 (2 gzip layers), then linux/arm64 (3 zstd
    /// layers).
    pub images: Vec<SynthImage>,
}

/// Write a two-platform image into the layout at `dir` (created if needed): the index is tagged
/// `tag`, each image also `TAG-amd64` and `TAG-arm64`. The index carries an annotation, so a
/// copy that rewrites it instead of keeping its bytes changes its digest.
pub fn write_multi_platform_layout(dir: &Path, tag: &str) -> anyhow::Result<MultiPlatformImage> {
    let platforms = [
        (
            "amd64",
            ImageSpec::uniform(2, 200_000, Compression::Gzip, 1),
        ),
        (
            "arm64",
            ImageSpec::uniform(3, 150_000, Compression::Zstd, 2),
        ),
    ];
    let mut images = Vec::new();
    let mut entries = Vec::new();
    for (arch, spec) in &platforms {
        let image = write_oci_layout(dir, &format!("{tag}-{arch}"), spec)
            .with_context(|| format!("writing the {arch} image"))?;
        entries.push(json!({
            "mediaType": MediaType::OCI_MANIFEST,
            "digest": image.manifest_digest.to_string(),
            "size": image.manifest_size,
            "platform": { "architecture": arch, "os": "linux" },
        }));
        images.push(image);
    }
    let index_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": entries,
        "annotations": { "org.example.test": "kept byte for byte" },
    }))?;
    let index_digest = sha256_digest(&index_bytes);
    let path = dir.join("blobs/sha256").join(index_digest.hex());
    std::fs::write(&path, &index_bytes).with_context(|| format!("writing {}", path.display()))?;
    update_index(
        dir,
        tag,
        json!({
            "mediaType": MediaType::OCI_INDEX,
            "digest": index_digest.to_string(),
            "size": index_bytes.len(),
        }),
    )?;
    Ok(MultiPlatformImage {
        index_bytes,
        index_digest,
        images,
    })
}
