//! The Docker daemon as a source and a destination, and the push-from-daemon cache.
//!
//! An export for a push is spooled once into `CACHE/exports/IMAGE_ID` (a layout, renamed into
//! place only when complete, so a crash never leaves a half export that looks whole), each
//! layer compressed while it streams in, so every byte is written once. Which compressed
//! digest belongs to which diff_id at which compression setting is remembered in
//! `CACHE/layer-map`: a re-push of unchanged layers asks the registry for the remembered
//! digest and skips compressing and uploading them. An export into a user's layout goes
//! straight there (no cache copy) unless the cache already holds the image.
//!
//! Progress: one line for the export stream ("preparing" while dockerd writes the image to its
//! own disk, then bytes received) and one per layer from the spooler's events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_docker::{ConnectOptions, Daemon, ExportOptions, ImageInfo};
use hoist_oci::archive::{SpoolEvent, SpooledImage, write_docker_archive};
use hoist_oci::codec::{Compression, Compressor};
use hoist_oci::{Descriptor, Image, ImageManifest, Layout, MediaType, RawJson};

use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};

/// The tag the cached export's image carries in its layout.
const EXPORT_TAG: &str = "image";
/// The progress line of the export stream.
const EXPORT_LINE: &str = "export";

/// Connect to the daemon (`DOCKER_HOST` or the default socket).
///
/// # Errors
/// When the daemon is not running or not reachable, with the library's explanation.
pub async fn connect() -> anyhow::Result<Daemon> {
    Daemon::connect(ConnectOptions::new())
        .await
        .context("connecting to the Docker daemon")
}

/// Where the export of the image `info` describes is cached: by image ID, and by platform when
/// one is asked for (with the containerd image store, one ID names every platform of an image).
fn export_dir(config: &Config, info: &ImageInfo) -> PathBuf {
    let name = match &config.platform {
        Some(p) => format!("{}-{}", info.id.hex(), p.to_string().replace('/', "-")),
        None => info.id.hex().to_string(),
    };
    config.cache_dir.join("exports").join(name)
}

/// The cached export of the image `info` describes, if a complete one is there.
pub fn cached_export(config: &Config, info: &ImageInfo) -> Option<(Layout, Image)> {
    open_export(&export_dir(config, info))
}

/// The export cached in `dir`, if it is whole (a layout with its image tagged).
fn open_export(dir: &Path) -> Option<(Layout, Image)> {
    let layout = Layout::open(dir).ok()?;
    let image = layout.image(Some(EXPORT_TAG), None).ok()?;
    Some((layout, image))
}

/// Threads compressing one layer as it streams out of the daemon: half the cores (1 to 4),
/// as dockerd sending the export, the spooler hashing and writing it and, for a push, the
/// uploads need the rest. On 2 cores one thread (compressing on the spooler's thread, no
/// blocks in flight) cost no wall time against two and 2 MiB less peak RSS: a 1 GiB daemon
/// push 15.7-16.5 s at 14.0-14.3 MiB against 15.7-16.9 s at 16.1-16.3 MiB, a compressible
/// 553 MB one (/usr/share and friends) 13.6-13.8 s against 12.6-14.0 s.
pub(super) fn compression_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

/// Export options: the configured platform; layers compressed while spooling with
/// `compression` (the configured level when it is the configured codec); no tags.
pub fn export_options(config: &Config, compression: Compression) -> ExportOptions {
    let mut options = ExportOptions::new().tag_images(false);
    if let Some(p) = &config.platform {
        options = options.platform(p.clone());
    }
    let level = config.level_for(compression);
    options.compress_layers(compression, level, compression_threads())
}

/// Export `name` from the daemon into the cache (or reuse the cached export of the same image
/// ID), its layers compressed with `compression` on the way in. Returns the layout, the image
/// and the daemon's facts about it.
///
/// # Errors
/// Daemon, spooling and cache I/O errors.
pub async fn export_cached(
    config: &Config,
    daemon: &Daemon,
    name: &str,
    compression: Compression,
    reporter: &Reporter,
) -> anyhow::Result<(Layout, Image, ImageInfo)> {
    let info = inspect(daemon, name).await?;
    if let Some((layout, image)) = cached_export(config, &info) {
        tracing::info!(id = %info.id, "reusing the cached export");
        return Ok((layout, image, info));
    }
    let staged = StagedExport::create(config, &info)?;
    // After the export each layer waits for its push.
    let manifest = staged
        .fill(
            daemon,
            name,
            &info,
            &export_options(config, compression),
            reporter,
            |_, _| {},
        )
        .await?;
    let (layout, image) = staged.commit(&manifest)?;
    Ok((layout, image, info))
}

/// An export on its way into the cache: a layout in a temp directory beside its final place
/// (`CACHE/exports/IMAGE_ID`), moved there by [`StagedExport::commit`] once complete, deleted
/// if dropped before. Its blobs can be read while it fills: each is renamed into the layout
/// only when verified.
pub struct StagedExport {
    /// Whether a platform was asked for (then the export may hold another platform's image
    /// than the one inspected).
    platform_asked: bool,
    partial: tempfile::TempDir,
    layout_dir: PathBuf,
    dir: PathBuf,
    layout: Layout,
}

impl StagedExport {
    /// A new, empty staged export for the image `info` describes.
    ///
    /// # Errors
    /// Cache directory I/O.
    pub fn create(config: &Config, info: &ImageInfo) -> anyhow::Result<Self> {
        let dir = export_dir(config, info);
        let exports = config.cache_dir.join("exports");
        std::fs::create_dir_all(&exports)
            .with_context(|| format!("creating {}", exports.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(&format!("{}.partial-", info.id.hex()))
            .tempdir_in(&exports)
            .with_context(|| format!("creating a directory in {}", exports.display()))?;
        let layout_dir = partial.path().join("layout");
        let layout = Layout::create(&layout_dir)?;
        Ok(StagedExport {
            platform_asked: config.platform.is_some(),
            partial,
            layout_dir,
            dir,
            layout,
        })
    }

    /// The layout being filled.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Stream `name` out of the daemon into the layout, calling `stored(diff_id, blob)` as each
    /// layer's blob is verified and in place. Returns the image manifest's descriptor.
    ///
    /// # Errors
    /// Daemon and spooling errors.
    pub async fn fill(
        &self,
        daemon: &Daemon,
        name: &str,
        info: &ImageInfo,
        options: &ExportOptions,
        reporter: &Reporter,
        mut stored: impl FnMut(&hoist_oci::Digest, &Descriptor) + Send,
    ) -> anyhow::Result<Descriptor> {
        let mut lines = LayerLines::announce(reporter, info, LayerState::Waiting);
        let spooled = daemon
            .export(&[name.to_string()], &self.layout, options, |p| {
                let layer = match &p {
                    hoist_docker::Progress::Layer(SpoolEvent::LayerStored {
                        diff_id,
                        blob,
                        ..
                    }) => Some((diff_id.clone(), blob.clone())),
                    _ => None,
                };
                // The line is named by its diff_id before anyone acts on the layer.
                lines.handle(p);
                if let Some((diff_id, blob)) = layer {
                    stored(&diff_id, &blob);
                }
            })
            .await
            .with_context(|| format!("exporting `{name}` from the Docker daemon"))?;
        let chosen = the_inspected(&spooled, info, name, &self.layout, self.platform_asked)?;
        Ok(chosen.manifest.clone())
    }

    /// Tag the image `manifest` and move the layout into place under the image ID. Another
    /// hoist may have won the race: then its copy is used, if whole; a broken entry there (a
    /// crash, a disk fault) is replaced, not kept failing every later run. Returns the layout
    /// and the image.
    ///
    /// # Errors
    /// Cache I/O; an unreadable image.
    pub fn commit(self, manifest: &Descriptor) -> anyhow::Result<(Layout, Image)> {
        self.layout.set_tag(EXPORT_TAG, manifest)?;
        let moving = || format!("moving the export to {}", self.dir.display());
        if let Err(e) = std::fs::rename(&self.layout_dir, &self.dir) {
            if !self.dir.exists() {
                return Err(e).with_context(moving);
            }
            if let Some(winner) = open_export(&self.dir) {
                return Ok(winner);
            }
            // Aside into the staging directory, which goes when this returns.
            let aside = self.partial.path().join("broken");
            std::fs::rename(&self.dir, &aside)
                .with_context(|| format!("moving a broken export out of {}", self.dir.display()))?;
            std::fs::rename(&self.layout_dir, &self.dir).with_context(moving)?;
        }
        drop(self.partial);
        open_export(&self.dir)
            .with_context(|| format!("reading the export cached at {}", self.dir.display()))
    }
}

pub async fn inspect(daemon: &Daemon, name: &str) -> anyhow::Result<ImageInfo> {
    daemon
        .inspect(name)
        .await
        .with_context(|| format!("looking up `{name}` in the Docker daemon"))
}

/// Export `name` from the daemon straight into the layout at `dir` (created if missing): one
/// pass, each byte written once, layers compressed on the way in per the configuration (kept
/// as the daemon sends them with `--compression none`), every blob verified before it is
/// renamed into place, and the tag (or an untagged index entry) written last. Returns false,
/// having done nothing, when the image's export is already in the cache: copying that is
/// cheaper than a new export, and the caller does it.
///
/// A failed export leaves no temp file, no tag, and no directory it created.
///
/// # Errors
/// Daemon, spooling and I/O errors.
pub async fn export_to_layout(
    config: &Config,
    name: &str,
    dir: &Path,
    tag: Option<&str>,
    reporter: &Reporter,
) -> anyhow::Result<bool> {
    let daemon = connect().await?;
    let info = inspect(&daemon, name).await?;
    if cached_export(config, &info).is_some() {
        return Ok(false);
    }
    let existed = dir.exists();
    let layout = {
        let owned = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Layout::open_or_create(&owned))
            .await?
            .with_context(|| format!("opening the OCI layout {}", dir.display()))?
    };
    let mut lines = LayerLines::announce(reporter, &info, LayerState::Done);
    let exported = daemon
        .export(
            &[name.to_string()],
            &layout,
            &export_options(config, config.compression),
            |p| lines.handle(p),
        )
        .await
        .with_context(|| format!("exporting `{name}` from the Docker daemon"));
    let spooled = match exported {
        Ok(spooled) => spooled,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    let image = match the_inspected(&spooled, &info, name, &layout, config.platform.is_some()) {
        Ok(image) => image,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    super::local::tag_layout(dir, tag, &image.manifest).await?;
    Ok(true)
}

/// The image of an export that `name` was inspected as: the one whose config or manifest is
/// the inspected ID, or whose layers are the inspected ones. A lone image that is none of these
/// means `name` moved between the inspect and the export (a build or pull re-tagged it): caching
/// it under the inspected ID would hand it out as that image later. With a platform asked for,
/// a lone image is taken as it is (the inspect describes the daemon's default platform).
fn the_inspected<'a>(
    spooled: &'a [SpooledImage],
    info: &ImageInfo,
    name: &str,
    layout: &Layout,
    platform_asked: bool,
) -> anyhow::Result<&'a SpooledImage> {
    let is_it = |s: &SpooledImage| {
        s.config.digest == info.id
            || s.manifest.digest == info.id
            || layout
                .read_json::<hoist_oci::ImageConfig>(&s.config)
                .is_ok_and(|c| c.value().rootfs.diff_ids == info.diff_ids)
    };
    match spooled {
        [] => bail!("the daemon's export of `{name}` held no image"),
        [one] if platform_asked || is_it(one) => Ok(one),
        [_] => bail!(
            "the daemon exported another image than `{name}` was a moment before (re-tagged by \
             a build or pull?); run the command again"
        ),
        many => many.iter().find(|s| is_it(s)).with_context(|| {
            format!(
                "the daemon exported {} images for `{name}`; name one by tag or ID",
                many.len()
            )
        }),
    }
}

/// The export's progress as lines: one for the stream ("preparing" while dockerd writes the
/// image to its own disk, then bytes received) and one per layer from the spooler's events.
///
/// dockerd does not send layers in image order, and a legacy archive names a layer entry by
/// an ID that is not its diff_id: each layer's line is a placeholder (`layer N`) taken in
/// stream order, renamed to the layer's diff_id once it is stored and verified.
struct LayerLines {
    reporter: Reporter,
    /// Placeholder lines not yet taken by a layer entry, in order.
    free: std::collections::VecDeque<String>,
    /// Layer entries of the stream: their line and size.
    entries: HashMap<usize, (String, u64)>,
    /// The state of a layer once stored.
    stored: LayerState,
    total: Option<u64>,
    receiving: bool,
}

impl LayerLines {
    fn announce(reporter: &Reporter, info: &ImageInfo, stored: LayerState) -> Self {
        let total = (info.size > 0).then_some(info.size);
        reporter.send(Event::Layer {
            id: EXPORT_LINE.into(),
            size: total,
        });
        reporter.state(EXPORT_LINE, LayerState::Preparing);
        let mut unique: Vec<&hoist_oci::Digest> = Vec::with_capacity(info.diff_ids.len());
        for diff_id in &info.diff_ids {
            if !unique.contains(&diff_id) {
                unique.push(diff_id);
            }
        }
        let free = (1..=unique.len()).map(placeholder).collect();
        for id in &free {
            reporter.send(Event::Layer {
                id: String::clone(id),
                size: None,
            });
        }
        LayerLines {
            reporter: reporter.clone(),
            free,
            entries: HashMap::new(),
            stored,
            total,
            receiving: false,
        }
    }

    fn handle(&mut self, progress: hoist_docker::Progress) {
        use hoist_docker::Progress;
        match progress {
            Progress::Receiving { bytes } => {
                if !self.receiving {
                    self.receiving = true;
                    self.reporter.state(EXPORT_LINE, LayerState::Exporting);
                }
                self.reporter.send(Event::Progress {
                    id: EXPORT_LINE.into(),
                    done: bytes,
                    total: self.total.map(|t| t.max(bytes)),
                });
            }
            Progress::Layer(event) => self.layer(event),
            Progress::Done { .. } => self.reporter.state(EXPORT_LINE, LayerState::Done),
            _ => {}
        }
    }

    fn layer(&mut self, event: SpoolEvent) {
        match event {
            SpoolEvent::LayerStarted {
                index,
                size,
                compressing,
                ..
            } => {
                let id = self
                    .free
                    .pop_front()
                    .unwrap_or_else(|| placeholder(index + 1));
                self.reporter.send(Event::Layer {
                    id: id.clone(),
                    size: Some(size),
                });
                let state = if compressing {
                    LayerState::Compressing
                } else {
                    LayerState::Exporting
                };
                self.reporter.state(&id, state);
                self.entries.insert(index, (id, size));
            }
            SpoolEvent::LayerProgress { index, bytes } => {
                if let Some((id, size)) = self.entries.get(&index) {
                    self.reporter.send(Event::Progress {
                        id: id.clone(),
                        done: bytes,
                        total: Some(*size),
                    });
                }
            }
            SpoolEvent::LayerStored { index, diff_id, .. } => {
                let Some((line, _)) = self.entries.get(&index) else {
                    return;
                };
                let id = diff_id.to_string();
                self.reporter.send(Event::Rename {
                    from: line.clone(),
                    to: id.clone(),
                });
                self.reporter.state(&id, self.stored);
            }
            _ => {}
        }
    }
}

fn placeholder(n: usize) -> String {
    format!("layer {n}")
}

/// Where the compressed digest of a diff_id is remembered, per compression setting.
fn map_path(config: &Config, diff_id: &hoist_oci::Digest) -> PathBuf {
    let level = config
        .compression_level
        .unwrap_or(config.compression.default_level());
    config
        .cache_dir
        .join("layer-map")
        .join(format!("{}-{level}", config.compression))
        .join(format!("{}-{}", diff_id.algorithm(), diff_id.hex()))
}

/// The remembered compressed layer for `diff_id`, if any.
pub fn remembered(config: &Config, diff_id: &hoist_oci::Digest) -> Option<Descriptor> {
    let bytes = std::fs::read(map_path(config, diff_id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Remember `desc` as the compressed form of `diff_id` at the configured compression.
///
/// # Errors
/// Cache I/O.
pub fn remember(
    config: &Config,
    diff_id: &hoist_oci::Digest,
    desc: &Descriptor,
) -> anyhow::Result<()> {
    let path = map_path(config, diff_id);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    serde_json::to_writer(temp.as_file_mut(), desc)?;
    temp.persist(&path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// What to do with one layer of an export before pushing.
pub enum LayerPlan {
    /// The registry already has the remembered compressed blob: nothing to compress or send.
    Present(Descriptor),
    /// The compressed blob is in the export layout: push it.
    Push(Descriptor),
}

/// Compress the export's layers (each once, remembered by diff_id), skipping those whose
/// remembered compressed digest `exists` reports present at the destination and those already
/// `pushed` (by diff_id). Returns the plan per layer, base first.
///
/// # Errors
/// Compression and I/O errors; a remembered digest that no longer matches is recompressed.
pub async fn compress_layers<F, Fut>(
    config: &Config,
    layout: &Layout,
    image: &Image,
    pushed: &HashMap<hoist_oci::Digest, Descriptor>,
    exists: F,
    reporter: &Reporter,
) -> anyhow::Result<Vec<LayerPlan>>
where
    F: Fn(Descriptor) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let diff_ids = image.config.value().rootfs.diff_ids.clone();
    let layers = image.manifest.value().layers.clone();
    if diff_ids.len() != layers.len() {
        bail!(
            "the exported image has {} layers but its config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        );
    }
    let mut plan = Vec::with_capacity(layers.len());
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        if let Some(desc) = pushed.get(diff_id) {
            plan.push(LayerPlan::Present(desc.clone()));
            continue;
        }
        let id = diff_id.to_string();
        reporter.send(Event::Layer {
            id: id.clone(),
            size: Some(layer.size),
        });
        if let Some(known) = remembered(config, diff_id) {
            if exists(known.clone()).await? {
                reporter.state(&id, LayerState::Skipped);
                plan.push(LayerPlan::Present(known));
                continue;
            }
            if layout.has_blob(&known)? {
                reporter.send(Event::Rename {
                    from: id.clone(),
                    to: known.digest.to_string(),
                });
                plan.push(LayerPlan::Push(known));
                continue;
            }
        }
        let already = layer
            .media_type
            .layer_compression()
            .is_some_and(|c| c == config.compression);
        let desc = if already {
            // The daemon sent it in the wanted form (uncompressed with --compression none).
            layer.clone()
        } else {
            reporter.state(&id, LayerState::Compressing);
            compress_one(config, layout, layer, diff_id, reporter, &id).await?
        };
        remember(config, diff_id, &desc)?;
        reporter.state(&id, LayerState::Waiting);
        if desc.digest != *diff_id {
            reporter.send(Event::Rename {
                from: id.clone(),
                to: desc.digest.to_string(),
            });
        }
        plan.push(LayerPlan::Push(desc));
    }
    Ok(plan)
}

async fn compress_one(
    config: &Config,
    layout: &Layout,
    layer: &Descriptor,
    diff_id: &hoist_oci::Digest,
    reporter: &Reporter,
    id: &str,
) -> anyhow::Result<Descriptor> {
    let layout = layout.clone();
    let layer = layer.clone();
    let diff_id = diff_id.clone();
    let compression = config.compression;
    let level = config.compression_level;
    let reporter = reporter.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || {
        let mut input = super::local::Counting::new(
            hoist_oci::codec::decoder(layout.open_blob(&layer)?)?,
            &reporter,
            &id,
            layer.size,
        );
        let mut compressor = Compressor::new(layout.blob_writer()?, compression, level, 2)?;
        std::io::copy(&mut input, &mut compressor)
            .with_context(|| format!("compressing layer {diff_id}"))?;
        let (writer, info) = compressor.finish()?;
        if info.diff_id != diff_id {
            bail!(
                "the exported layer hashes to {} but the image config says {diff_id}",
                info.diff_id
            );
        }
        let (digest, size) = writer.commit(Some(&info.digest), Some(info.size))?;
        Ok(Descriptor::new(
            MediaType::oci_layer(compression),
            digest,
            size,
        ))
    })
    .await?
}

/// The image with its layers compressed per the configuration, in the same layout (each layer
/// compressed once; later calls reuse the remembered blobs).
///
/// # Errors
/// Compression and I/O errors.
pub async fn compressed(
    config: &Config,
    layout: &Layout,
    image: &Image,
    reporter: &Reporter,
) -> anyhow::Result<Image> {
    let never_present = |_: Descriptor| async { Ok(false) };
    let plan = compress_layers(
        config,
        layout,
        image,
        &HashMap::new(),
        never_present,
        reporter,
    )
    .await?;
    let layers = plan
        .into_iter()
        .map(|step| match step {
            LayerPlan::Present(d) | LayerPlan::Push(d) => d,
        })
        .collect();
    let manifest = manifest_for(image, layers)?;
    layout.write_json(&manifest)?;
    Ok(Image {
        descriptor: manifest.descriptor(MediaType::OCI_MANIFEST),
        manifest,
        config: image.config.clone(),
    })
}

/// The manifest for the compressed layers (the config's bytes are unchanged: its diff_ids are
/// of the uncompressed tars, whatever the compression).
pub fn manifest_for(
    image: &Image,
    layers: Vec<Descriptor>,
) -> anyhow::Result<RawJson<ImageManifest>> {
    let mut config = image.manifest.value().config.clone();
    config.media_type = MediaType::new(MediaType::OCI_CONFIG);
    Ok(RawJson::from_value(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: Default::default(),
    })?)
}

/// Load a staged image into the daemon, named `names`.
///
/// # Errors
/// Daemon and archive errors.
pub async fn load(
    layout: &Layout,
    image: &Image,
    names: Vec<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let daemon = connect().await?;
    let layout = layout.clone();
    let descriptor = image.descriptor.clone();
    load_archive(&daemon, reporter, move |out| {
        write_docker_archive(&layout, &[(descriptor, names)], out)
    })
    .await
}

/// Stream the docker-archive `produce` writes into the daemon's load request, with a "load"
/// progress line, and report the names the daemon gave it.
///
/// # Errors
/// Daemon and archive errors.
pub async fn load_archive<F>(daemon: &Daemon, reporter: &Reporter, produce: F) -> anyhow::Result<()>
where
    F: FnOnce(&mut hoist_docker::LoadWriter) -> hoist_oci::Result<()> + Send + 'static,
{
    reporter.send(Event::Layer {
        id: "load".into(),
        size: None,
    });
    reporter.state("load", LayerState::Writing);
    let progress_reporter = reporter.clone();
    let loaded = daemon
        .load_with(
            move |p| {
                if let hoist_docker::Progress::Sending { bytes } = p {
                    progress_reporter.send(Event::Progress {
                        id: "load".into(),
                        done: bytes,
                        total: None,
                    });
                }
            },
            produce,
        )
        .await
        .context("loading the image into the Docker daemon")?;
    reporter.state("load", LayerState::Done);
    for tag in loaded.tags.iter().chain(&loaded.ids) {
        reporter.send(Event::Message {
            text: format!("loaded {tag}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hoist_oci::Digest;

    use super::*;

    fn spooled(config: &[u8]) -> SpooledImage {
        let desc = |bytes: &[u8]| {
            Descriptor::new(
                MediaType::new(MediaType::OCI_CONFIG),
                Digest::sha256_of(bytes),
                bytes.len() as u64,
            )
        };
        SpooledImage {
            tags: Vec::new(),
            manifest: desc(&[config, b"-manifest"].concat()),
            config: desc(config),
        }
    }

    fn info(id: Digest) -> ImageInfo {
        ImageInfo {
            id,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            size: 0,
            diff_ids: Vec::new(),
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        }
    }

    #[test]
    fn the_inspected_image_is_picked_out_of_many() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(tmp.path().join("l")).expect("layout");
        let pick = |images: &[SpooledImage], info: &ImageInfo, platform: bool| {
            the_inspected(images, info, "app", &layout, platform).cloned()
        };
        let (a, b) = (spooled(b"a"), spooled(b"b"));
        let unrelated = info(Digest::sha256_of(b"zzz"));
        // One image that is not the inspected one: `app` moved in between; never cached.
        let one = std::slice::from_ref(&a);
        let e = pick(one, &unrelated, false).expect_err("re-tagged");
        assert!(e.to_string().contains("another image"), "{e}");
        // ... unless a platform was asked for (the inspect speaks for the default platform).
        assert_eq!(pick(one, &unrelated, true).expect("platform"), a);
        // By ID: config digest (classic store) or manifest digest (containerd store).
        let both = [a.clone(), b.clone()];
        assert_eq!(
            pick(&both, &info(b.config.digest.clone()), false).expect("b"),
            b
        );
        assert_eq!(
            pick(&both, &info(a.manifest.digest.clone()), false).expect("a"),
            a
        );
        assert_eq!(
            pick(one, &info(a.config.digest.clone()), false).expect("a"),
            a
        );
        // By layers: the config in the layout lists the inspected diff_ids.
        let layer = Digest::sha256_of(b"layer");
        let config = RawJson::<hoist_oci::ImageConfig>::parse(
            format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
            )
            .into_bytes(),
        )
        .expect("config");
        layout.write_json(&config).expect("write config");
        let c = SpooledImage {
            tags: Vec::new(),
            manifest: spooled(b"c").manifest,
            config: config.descriptor(MediaType::new(MediaType::OCI_CONFIG)),
        };
        let mut by_layers = unrelated.clone();
        by_layers.diff_ids = vec![layer];
        assert_eq!(
            pick(std::slice::from_ref(&c), &by_layers, false).expect("c"),
            c
        );
        // Many and none of them: a clear error, never a guess.
        let e = pick(&both, &unrelated, false).expect_err("ambiguous");
        assert!(e.to_string().contains("2 images"), "{e}");
        assert!(pick(&[], &unrelated, false).is_err());
    }

    #[test]
    fn a_broken_cached_export_is_replaced_and_a_whole_one_reused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = crate::config::test_config(tmp.path(), &[]);
        let image_id = Digest::sha256_of(b"image");
        let info = info(image_id);
        // What a crash or a disk fault leaves: a directory that is not a whole export.
        let dir = export_dir(&config, &info);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), b"{oops").expect("broken");
        assert!(cached_export(&config, &info).is_none());
        let staged_image = |seed| {
            let staged = StagedExport::create(&config, &info).expect("stage");
            let spec = hoist_testkit::synth::ImageSpec::uniform(
                1,
                1000,
                hoist_oci::Compression::Gzip,
                seed,
            );
            let made = hoist_testkit::synth::write_oci_layout(staged.layout().root(), "x", &spec)
                .expect("synthetic image");
            let manifest = Descriptor::new(
                MediaType::new(MediaType::OCI_MANIFEST),
                made.manifest_digest,
                made.manifest_size,
            );
            (staged, manifest)
        };
        let (staged, manifest) = staged_image(1);
        let (_, image) = staged.commit(&manifest).expect("replaces the broken one");
        assert_eq!(image.descriptor.digest, manifest.digest);
        assert!(cached_export(&config, &info).is_some());
        // A whole export already there (another hoist won the race) is the one used.
        let (staged, other) = staged_image(2);
        let (_, image) = staged.commit(&other).expect("the winner's copy");
        assert_eq!(image.descriptor.digest, manifest.digest);
        // Nothing staged is left behind; a platform gets its own entry.
        let names: Vec<String> = std::fs::read_dir(dir.parent().expect("exports"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![info.id.hex().to_string()]);
        let arm = crate::config::test_config(tmp.path(), &["--platform", "linux/arm64"]);
        assert_ne!(export_dir(&arm, &info), dir);
        assert!(cached_export(&arm, &info).is_none());
    }
}
