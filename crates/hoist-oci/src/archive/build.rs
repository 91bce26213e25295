//! Building the images of a spooled archive once its last entry is read: from `manifest.json`
//! (docker's own archives) or from `index.json` (an OCI archive), checking every layer against
//! its config's `diff_ids`.

use super::read::{Collected, Stored};
use super::{ArchiveManifestEntry, MAX_LINK_HOPS, SpooledImage, normalize, shown};
use crate::codec::{self, Compression};
use crate::digest::Digester;
use crate::layout::Layout;
use crate::{
    Descriptor, Digest, Error, ErrorKind, ImageConfig, ImageIndex, ImageManifest, MediaType,
    RawJson, Result,
};

/// Follow symlinks and hard links to the stored file.
fn lookup<'a>(c: &'a Collected, path: &str) -> Result<&'a Stored> {
    let mut p = normalize(path)?;
    for _ in 0..MAX_LINK_HOPS {
        if let Some(s) = c.files.get(&p) {
            return Ok(s);
        }
        match c.links.get(&p) {
            Some(next) => p = next.clone(),
            None => {
                return Err(Error::invalid(format!(
                    "manifest.json names {:?}, which is not in the archive",
                    shown(path)
                )));
            }
        }
    }
    Err(Error::invalid(format!(
        "too many symlinks resolving {:?} in the archive",
        shown(path)
    )))
}

pub(super) fn build_from_manifest_json(
    bytes: &[u8],
    c: &Collected,
    layout: &Layout,
) -> Result<Vec<SpooledImage>> {
    let entries: Vec<ArchiveManifestEntry> = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("malformed manifest.json in the archive: {e}")))?;
    if entries.is_empty() {
        return Err(Error::invalid(
            "manifest.json in the archive lists no image",
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let cfg = lookup(c, &entry.config)?;
        let config_desc = Descriptor::new(MediaType::OCI_CONFIG, cfg.digest.clone(), cfg.size);
        let config: RawJson<ImageConfig> = layout
            .read_json(&config_desc)
            .map_err(|e| e.with_path(shown(&entry.config)))?;
        let diff_ids = &config.value().rootfs.diff_ids;
        if diff_ids.len() != entry.layers.len() {
            return Err(Error::invalid(format!(
                "config {} lists {} diff_ids but manifest.json lists {} layers",
                shown(&entry.config),
                diff_ids.len(),
                entry.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let s = lookup(c, path)?;
            let desc = Descriptor::new(MediaType::OCI_LAYER, s.digest.clone(), s.size);
            let compression = s.compression;
            let actual_diff_id = match &s.diff_id {
                Some(known) => known.clone(),
                None if compression == Compression::None => s.digest.clone(),
                None => uncompressed_digest(layout, &desc)?,
            };
            if &actual_diff_id != diff_id {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!(
                        "layer {} has diff_id {actual_diff_id} but config {} says {diff_id}",
                        shown(path),
                        shown(&entry.config)
                    ),
                )
                .with_digest(&s.digest));
            }
            layers.push(Descriptor::new(
                MediaType::oci_layer(compression),
                desc.digest,
                desc.size,
            ));
        }
        let manifest = RawJson::from_value(ImageManifest::new(config_desc.clone(), layers))?;
        layout.write_json(&manifest)?;
        out.push(SpooledImage {
            tags: entry.repo_tags.unwrap_or_default(),
            manifest: manifest.descriptor(MediaType::OCI_MANIFEST),
            config: config_desc,
        });
    }
    Ok(out)
}

/// An OCI archive without `manifest.json`: its `index.json` names the images.
pub(super) fn build_from_index(
    bytes: &[u8],
    layout: &Layout,
    platform: Option<&crate::Platform>,
) -> Result<Vec<SpooledImage>> {
    let index: RawJson<ImageIndex> = RawJson::parse(bytes.to_vec())?;
    let mut out = Vec::new();
    for d in &index.value().manifests {
        let image = layout.image_at(d, platform)?;
        for l in &image.manifest.value().layers {
            if !layout.has_blob(l)? {
                return Err(
                    Error::new(ErrorKind::NotFound, "layer missing from the archive")
                        .with_digest(&l.digest),
                );
            }
        }
        let tags = d
            .annotations
            .get(crate::layout::REF_NAME)
            .cloned()
            .into_iter()
            .collect();
        out.push(SpooledImage {
            tags,
            manifest: d.clone(),
            config: image.manifest.value().config.clone(),
        });
    }
    Ok(out)
}

/// The digest of a compressed layer's uncompressed content, streamed.
fn uncompressed_digest(layout: &Layout, desc: &Descriptor) -> Result<Digest> {
    let mut hasher = Digester::new(crate::Algorithm::Sha256);
    let reader = codec::decoder(layout.open_blob(desc)?)?;
    codec::copy(reader, &mut hasher).map_err(|e| e.with_digest(&desc.digest))?;
    Ok(hasher.finish())
}
