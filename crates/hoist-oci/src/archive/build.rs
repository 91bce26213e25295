//! Building the images of a spooled archive once its last entry is read: from `manifest.json`
//! (docker's own archives) or from `index.json` (an OCI archive), checking every layer against
//! its config's `diff_ids`.

use std::collections::{HashMap, HashSet};

use super::diff_id::{DiffIds, agree};
use super::read::{Collected, Stored, oci_blob_digest};
use super::{ArchiveManifestEntry, MAX_LINK_HOPS, SpooledImage, normalize, shown};
use crate::layout::Layout;
use crate::{
    Descriptor, Digest, Error, ErrorKind, Image, ImageConfig, ImageIndex, ImageManifest, MediaType,
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
    let mut diff_ids_of = DiffIds::new(layout, c);
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
            let actual = diff_ids_of
                .of_stored(s)
                .map_err(|e| e.with_path(shown(path)))?;
            agree(&shown(path), &actual, &shown(&entry.config), diff_id)
                .map_err(|e| e.with_digest(&s.digest))?;
            layers.push(Descriptor::new(
                MediaType::oci_layer(s.compression),
                s.digest.clone(),
                s.size,
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
///
/// Its manifests name layers by the archive's digests. A layer the spool compressed on its way
/// in (`compress_layers`), or decompressed (an xz or bzip2 blob), is stored under another
/// digest, so each manifest naming one is written anew with the stored layer in its place (and
/// each index naming such a manifest, up to the entry of `index.json`); the config is kept as
/// it is, its `diff_ids` naming the uncompressed tars.
///
/// Every layer of each image spooled (the platform asked for, under an index) must be there
/// and is checked against its config's `diff_ids`: a layer the archive carried by what the pass
/// over it computed, one the layout held before by reading it once. The other images under
/// `index.json` whose config the archive carried (other platforms) have the layers the archive
/// carried checked the same way; their others may be left out of an archive.
pub(super) fn build_from_index(
    bytes: &[u8],
    c: &Collected,
    layout: &Layout,
    platform: Option<&crate::Platform>,
) -> Result<Vec<SpooledImage>> {
    let index: RawJson<ImageIndex> = RawJson::parse(bytes.to_vec())?;
    let substitutes = Substitutes::of(c)?;
    let mut diff_ids = DiffIds::new(layout, c);
    let mut checked = HashSet::new();
    let mut out = Vec::new();
    for listed in &index.value().manifests {
        let d = substitutes.rewrite(layout, listed, 0)?;
        let image = layout.image_at(&d, platform)?;
        check_spooled(layout, &image, &mut diff_ids)?;
        checked.insert(image.descriptor.digest.clone());
        check_carried(layout, &d, &mut diff_ids, &mut checked, 0)?;
        let tags = d
            .annotations
            .get(crate::layout::REF_NAME)
            .cloned()
            .into_iter()
            .collect();
        out.push(SpooledImage {
            tags,
            config: image.manifest.value().config.clone(),
            manifest: d,
        });
    }
    Ok(out)
}

/// Check that every layer of `image` is there and is what its config says.
fn check_spooled(layout: &Layout, image: &Image, diff_ids: &mut DiffIds<'_>) -> Result<()> {
    let m = image.manifest.value();
    let want = paired(m, image.config.value(), &image.descriptor.digest)?;
    for (l, want) in m.layers.iter().zip(want) {
        let actual = match diff_ids.carried(l)? {
            Some(actual) if layout.has_blob(l)? => Some(actual),
            Some(_) => None,
            // A layer the archive did not carry is one the layout held before: rehashed (in
            // the same read as its diff_id), so a blob damaged on disk since does not pass
            // for it.
            None => diff_ids.held(l)?,
        };
        let Some(actual) = actual else {
            return Err(
                Error::new(ErrorKind::NotFound, "layer missing from the archive")
                    .with_digest(&l.digest),
            );
        };
        agree_in(l, &actual, &m.config, want)?;
    }
    Ok(())
}

/// Check each image under `d` not `checked` yet whose manifest and config the layout holds:
/// the layers the archive carried, against the config. Nothing is read but JSON: the other
/// layers are another platform's the archive left out, or the layout's from before.
fn check_carried(
    layout: &Layout,
    d: &Descriptor,
    diff_ids: &mut DiffIds<'_>,
    checked: &mut HashSet<Digest>,
    depth: usize,
) -> Result<()> {
    if checked.contains(&d.digest) || !layout.has_blob(d)? {
        return Ok(());
    }
    checked.insert(d.digest.clone());
    if d.media_type.is_index() {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::invalid("indexes nested too deeply").with_digest(&d.digest));
        }
        let index: RawJson<ImageIndex> = layout.read_json(d)?;
        for entry in &index.value().manifests {
            check_carried(layout, entry, diff_ids, checked, depth + 1)?;
        }
        return Ok(());
    }
    if !d.media_type.is_manifest() {
        return Ok(());
    }
    let manifest: RawJson<ImageManifest> = layout.read_json(d)?;
    let m = manifest.value();
    if !m.is_container_image() || !layout.has_blob(&m.config)? {
        return Ok(());
    }
    let config: RawJson<ImageConfig> = layout.read_json(&m.config)?;
    let want = paired(m, config.value(), &d.digest)?;
    for (l, want) in m.layers.iter().zip(want) {
        if let Some(actual) = diff_ids.carried(l)? {
            agree_in(l, &actual, &m.config, want)?;
        }
    }
    Ok(())
}

/// The `diff_ids` of `config`, one per layer of `m` (the manifest `digest`).
fn paired<'c>(m: &ImageManifest, config: &'c ImageConfig, digest: &Digest) -> Result<&'c [Digest]> {
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != m.layers.len() {
        return Err(Error::invalid(format!(
            "manifest lists {} layers but its config lists {} diff_ids",
            m.layers.len(),
            diff_ids.len()
        ))
        .with_digest(digest));
    }
    Ok(diff_ids)
}

/// [`agree`] for layer `l` of an image whose config is `config`.
fn agree_in(l: &Descriptor, actual: &Digest, config: &Descriptor, want: &Digest) -> Result<()> {
    agree(
        &l.digest.to_string(),
        actual,
        &config.digest.to_string(),
        want,
    )
    .map_err(|e| e.with_digest(&l.digest))
}

/// The archive's `blobs/<alg>/<hex>` entries the spool stored under another digest (compressed
/// or decompressed on their way in), by the digest the archive names them with.
struct Substitutes<'a> {
    by_name: HashMap<Digest, &'a Stored>,
}

/// How deep indexes may nest in an archive (as [`Layout::image_at`] follows them).
const MAX_INDEX_DEPTH: usize = 4;

impl<'a> Substitutes<'a> {
    fn of(c: &'a Collected) -> Result<Self> {
        let mut by_name = HashMap::new();
        for (path, stored) in &c.files {
            if let Some(named) = oci_blob_digest(path)?
                && named != stored.digest
            {
                by_name.insert(named, stored);
            }
        }
        Ok(Substitutes { by_name })
    }

    /// `d` as it must be listed now: itself when nothing under it was substituted (or it is
    /// not in the layout: a platform the archive left out), else a descriptor of the manifest
    /// or index written anew, keeping `d`'s platform and annotations (its tag).
    fn rewrite(&self, layout: &Layout, d: &Descriptor, depth: usize) -> Result<Descriptor> {
        if self.by_name.is_empty() || !layout.has_blob(d)? {
            return Ok(d.clone());
        }
        if d.media_type.is_index() {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::invalid("indexes nested too deeply").with_digest(&d.digest));
            }
            let index: RawJson<ImageIndex> = layout.read_json(d)?;
            let mut changed = index.value().clone();
            for entry in &mut changed.manifests {
                *entry = self.rewrite(layout, entry, depth + 1)?;
            }
            if changed.manifests == index.value().manifests {
                return Ok(d.clone());
            }
            changed.media_type = Some(MediaType::new(MediaType::OCI_INDEX));
            return written(
                layout,
                d,
                MediaType::OCI_INDEX,
                RawJson::from_value(changed)?,
            );
        }
        if !d.media_type.is_manifest() {
            return Ok(d.clone());
        }
        let manifest: RawJson<ImageManifest> = layout.read_json(d)?;
        let m = manifest.value();
        if !m
            .layers
            .iter()
            .any(|l| self.by_name.contains_key(&l.digest))
        {
            return Ok(d.clone());
        }
        // Only a container image's layers are tars to compress or decompress; an artifact's
        // blobs are kept as the archive holds them and its manifest is not rewritten.
        if !m.config.media_type.is_config() || !m.layers.iter().all(|l| l.media_type.is_layer()) {
            return Err(self.artifact_error(m, &d.digest));
        }
        // Each substituted layer's diff_id is checked with the rest of the image's layers
        // (check_spooled, check_carried), once its config is known to be there.
        let mut layers = Vec::with_capacity(m.layers.len());
        for l in &m.layers {
            let Some(stored) = self.by_name.get(&l.digest) else {
                layers.push(oci_typed(l));
                continue;
            };
            check_size(l, stored)?;
            // Other bytes: what the archive's descriptor said of its bytes (embedded `data`,
            // `urls`, annotations such as a TOC digest) is not said of these, as
            // `--recompress` drops it too.
            layers.push(Descriptor::new(
                MediaType::oci_layer(stored.compression),
                stored.digest.clone(),
                stored.size,
            ));
        }
        let mut config_desc = m.config.clone();
        config_desc.media_type = MediaType::new(MediaType::OCI_CONFIG);
        let rebuilt = ImageManifest {
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            config: config_desc,
            layers,
            ..m.clone()
        };
        written(
            layout,
            d,
            MediaType::OCI_MANIFEST,
            RawJson::from_value(rebuilt)?,
        )
    }

    /// The refusal of artifact manifest `m` (`digest`) naming a blob the spool substituted.
    fn artifact_error(&self, m: &ImageManifest, digest: &Digest) -> Error {
        let decoded = m
            .layers
            .iter()
            .find_map(|l| self.by_name.get(&l.digest).and_then(|s| s.decoded));
        let message = match decoded {
            // Nothing to turn off: OCI has no xz or bzip2 media type to store it under.
            Some(name) => format!(
                "an artifact in the archive (a manifest that is no container image) names an \
                 {name}-compressed blob, which hoist decompresses on its way in as it would a \
                 layer; the artifact cannot be spooled as it is"
            ),
            None => "an artifact in the archive has a tar blob, which compressing layers while \
                     spooling would change; spool it without compression"
                .to_owned(),
        };
        Error::new(ErrorKind::Unsupported, message).with_digest(digest)
    }
}

/// Check that the archive's descriptor of layer `l` matches the entry `stored` was
/// (de)compressed from: its size (the digest was checked as the entry streamed in).
fn check_size(l: &Descriptor, stored: &Stored) -> Result<()> {
    if l.size == stored.archived {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::SizeMismatch,
        format!(
            "a manifest in the archive gives layer {} a size of {} bytes, but the archive holds \
             {} bytes",
            l.digest, l.size, stored.archived
        ),
    )
    .with_digest(&l.digest))
}

/// A layer descriptor with the OCI media type for its compression (a manifest written anew is
/// an OCI manifest, whatever the archive's was).
fn oci_typed(l: &Descriptor) -> Descriptor {
    let mut out = l.clone();
    if let Some(c) = l.media_type.layer_compression() {
        out.media_type = MediaType::oci_layer(c);
    }
    out
}

/// Store `json` and describe it as `was` was described (platform, annotations), with its own
/// media type, digest and size (and without `was`'s embedded `data`, which are the old bytes:
/// see [`Descriptor::with_content`]).
fn written<T>(
    layout: &Layout,
    was: &Descriptor,
    media_type: &str,
    json: RawJson<T>,
) -> Result<Descriptor> {
    layout.write_json(&json)?;
    Ok(was.with_content(media_type, json.digest().clone(), json.bytes().len() as u64))
}
