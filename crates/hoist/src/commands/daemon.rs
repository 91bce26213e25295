//! The Docker daemon as a source and a destination, and the push-from-daemon cache.
//!
//! An export for a push is spooled once into `CACHE/exports/IMAGE_ID` (see `export_cache.rs`:
//! a layout, renamed into place only when complete, so a crash never leaves a half export that
//! looks whole), each layer compressed while it streams in, so every byte is written once.
//! Which compressed digest belongs to which diff_id at which compression setting is remembered
//! in `CACHE/layer-map`: a re-push of unchanged layers asks the registry for the remembered
//! digest and skips compressing and uploading them. An export into a user's layout goes
//! straight there (no cache copy) unless the cache already holds the image; one for an archive,
//! a root filesystem or a load goes through a transit layout deleted afterwards.
//!
//! Progress: one stream line for the export ("preparing" while dockerd writes the image to its
//! own disk, then bytes received) and one per layer from the spooler's events; a load has one
//! stream line for the archive it sends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_docker::{Daemon, ExportOptions, ExportStop, ImageInfo};
use hoist_oci::archive::{SpoolEvent, write_docker_archive};
use hoist_oci::codec::Compression;
use hoist_oci::{Descriptor, Image, ImageManifest, Layout, MediaType, RawJson};

use super::export_cache::{cached_export, export_name, the_inspected};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};

/// The progress line of the export stream.
const EXPORT_LINE: &str = "export";
/// The progress line of the archive a load sends.
const LOAD_LINE: &str = "load";

/// Connect to the daemon: `--daemon-host`, else `DOCKER_HOST`, the docker context or the
/// default socket, with the configured timeouts.
///
/// # Errors
/// When the daemon is not running or not reachable, with the library's explanation.
pub async fn connect(config: &Config) -> anyhow::Result<Daemon> {
    Daemon::connect(config.daemon.clone())
        .await
        .context("connecting to the Docker daemon")
}

/// Threads compressing one layer as it streams out of the daemon: half the cores (1 to 4),
/// as dockerd sending the export, the spooler hashing and writing it and, for a push, the
/// uploads need the rest. On 2 cores one thread (compressing on the spooler's thread, no
/// blocks in flight) cost no wall time against two and 2 MiB less peak RSS: a 1 GiB daemon
/// push 15.7-16.5 s at 14.0-14.3 MiB against 15.7-16.9 s at 16.1-16.3 MiB, a compressible
/// 553 MB one (/usr/share and friends) 13.6-13.8 s against 12.6-14.0 s. Neither codec's output
/// depends on the count picked here, so layer digests do not depend on the machine.
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

/// Export `name` from the daemon for one command (a copy into an archive, a root filesystem
/// or another daemon, or an inspect), its layers as the daemon sends them. The cached export of
/// the same image ID is used when a push left one; otherwise the export goes into `transit`, a
/// directory of the caller's that it deletes when done. Nothing new is cached: only a push keeps
/// its export (to resume it), and a one-off copy of a 50 GB image must not leave 50 GB behind.
/// Returns the layout and the image.
///
/// # Errors
/// Daemon, spooling and I/O errors; `transit` may then hold part of the export.
pub async fn export_once(
    config: &Config,
    daemon: &Daemon,
    name: &str,
    transit: &Path,
    reporter: &Reporter,
) -> anyhow::Result<(Layout, Image)> {
    let info = inspect(daemon, name).await?;
    if let Some(cached) = cached_export(config, &info) {
        tracing::info!(id = %info.id, "reusing the cached export");
        return Ok(cached);
    }
    let layout = Layout::create(transit)?;
    let mut lines = LayerLines::announce(reporter, &info, LayerState::Waiting);
    let stop = ExportStop::new();
    let options = export_options(config, Compression::None).stop_with(&stop);
    let names = [export_name(&info)];
    let export = daemon.export(&names, &layout, &options, |p| lines.handle(p));
    let spooled = stopped_on_interrupt(export, &stop)
        .await
        .with_context(|| format!("exporting `{name}` from the Docker daemon"))?;
    let chosen = the_inspected(&spooled, &info, name, &layout, config.platform.is_some())?;
    let image = layout.image_at(&chosen.manifest, config.platform.as_ref())?;
    Ok((layout, image))
}

/// Run an export that uses `stop` so that Ctrl-C or SIGTERM stops it: the export then fails at
/// its next read, once its threads let go of the layout, and the caller's ordinary error path
/// removes what it made, well within the interrupt's grace.
async fn stopped_on_interrupt<T, E>(
    export: impl std::future::Future<Output = Result<T, E>>,
    stop: &ExportStop,
) -> Result<T, E> {
    tokio::pin!(export);
    loop {
        tokio::select! {
            result = &mut export => return result,
            () = tokio::time::sleep(std::time::Duration::from_millis(50)), if !stop.is_stopped() => {
                if crate::interrupt::raised() {
                    stop.stop();
                }
            }
        }
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
/// A failed export leaves no temp file and no tag. The layout (and its directory) goes too
/// when this call created it and no other writer is using it: the export holds a
/// [`hoist_oci::Claim`] on it until the tag is written.
///
/// Returns the digest of the manifest written, or `None` (having done nothing) when the cache
/// holds the export.
///
/// # Errors
/// Daemon, spooling and I/O errors.
pub async fn export_to_layout(
    config: &Config,
    name: &str,
    dir: &Path,
    tag: Option<&str>,
    reporter: &Reporter,
) -> anyhow::Result<Option<hoist_oci::Digest>> {
    let daemon = connect(config).await?;
    let info = inspect(&daemon, name).await?;
    if cached_export(config, &info).is_some() {
        return Ok(None);
    }
    let claim = super::local::claim_layout(dir).await?;
    let layout = claim.layout().clone();
    let mut lines = LayerLines::announce(reporter, &info, LayerState::Done);
    let stop = ExportStop::new();
    let options = export_options(config, config.compression).stop_with(&stop);
    let names = [export_name(&info)];
    let export = daemon.export(&names, &layout, &options, |p| lines.handle(p));
    let exported = stopped_on_interrupt(export, &stop)
        .await
        .with_context(|| format!("exporting `{name}` from the Docker daemon"));
    let image = exported.and_then(|spooled| {
        the_inspected(&spooled, &info, name, &layout, config.platform.is_some()).cloned()
    });
    // With --format, the converted manifest is stored beside the exported one and tagged.
    let format = config.manifest_format;
    let descriptor = match image {
        Ok(image) => {
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || {
                super::format::store_as(&layout, &image.manifest, format)
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|stored| stored)
        }
        Err(e) => Err(e),
    };
    let descriptor = match descriptor {
        Ok(descriptor) => descriptor,
        Err(e) => {
            super::local::release_failed(claim).await;
            return Err(e);
        }
    };
    if let Err(e) = super::local::tag_layout(dir, tag, &descriptor).await {
        super::local::release_failed(claim).await;
        return Err(e);
    }
    // Only now, with the tag written, does the layout stop being marked in use.
    drop(claim);
    Ok(Some(descriptor.digest))
}

/// The export's progress as lines: a stream line for the export ("preparing" while dockerd
/// writes the image to its own disk, then bytes received, not counted as moved) and one per
/// layer from the spooler's events.
///
/// A layer stored into the destination (`stored` is [`LayerState::Done`]: the export goes
/// straight into the user's layout) is `writing` while it streams in, compressed on the way or
/// not: that is the copy's delivery. Stored into a copy a later step sends (`stored` is
/// [`LayerState::Waiting`]), it is `compressing` or `exporting`.
///
/// dockerd does not send layers in image order, and a legacy archive names a layer entry by
/// an ID that is not its diff_id: each layer's line is a placeholder (`layer N`) taken in
/// stream order, renamed to the layer's diff_id once it is stored and verified.
pub(super) struct LayerLines {
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
    pub(super) fn announce(reporter: &Reporter, info: &ImageInfo, stored: LayerState) -> Self {
        let total = (info.size > 0).then_some(info.size);
        reporter.send(Event::Stream {
            id: EXPORT_LINE.into(),
            size: total,
        });
        reporter.state(EXPORT_LINE, LayerState::Preparing);
        let unique: std::collections::HashSet<&hoist_oci::Digest> = info.diff_ids.iter().collect();
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

    pub(super) fn handle(&mut self, progress: hoist_docker::Progress) {
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
                let state = match (self.stored, compressing) {
                    (LayerState::Done, _) => LayerState::Writing,
                    (_, true) => LayerState::Compressing,
                    (_, false) => LayerState::Exporting,
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
            SpoolEvent::LayerStored {
                index,
                diff_id,
                blob,
            } => {
                let Some((line, _)) = self.entries.get(&index) else {
                    return;
                };
                // A layer the daemon sent compressed is named by its blob until its diff_id
                // is checked.
                let id = diff_id.as_ref().unwrap_or(&blob.digest).to_string();
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
/// `pushed` (by the blob digest the image's manifest lists). Returns the plan per layer, base
/// first.
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
        if let Some(desc) = pushed.get(&layer.digest) {
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
            compress_one(config, (layout, layout), layer, diff_id, reporter, &id).await?
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

/// Threads compressing one layer in [`compress_one`] (zstd workers, or block gzip's threads):
/// two on any machine. Nothing else runs beside it (the pushes wait for it), so the cores are
/// free, and the second worker pays off on layers that compress: a 600 MB tar of `/usr/share` and
/// `/usr/lib` gzipped at -6 went to zstd in 2.8-3.4 s with two against 3.9 s with one (2
/// shared vCPUs, 3 alternated runs each, 2026-11-25). With the bench's random layers one
/// worker is as fast (5.2-5.9 s against 5.5-6.0 s for 1 GiB): decompressing on the caller's
/// thread is the bottleneck there (45% of perf samples in `inflate`, 12% in zstd). The second
/// worker costs up to 2.0 MiB of peak RSS (its compression context, one more job of input,
/// one more output buffer: see `hoist-oci`'s `zstd_encoder.rs`).
const COMPRESS_ONE_THREADS: usize = 2;

/// Compress `layer` (read from the first layout, decompressed if it is compressed) with the
/// configured compression into a new blob of the second, checking that it decompresses to
/// `diff_id`; progress counts the stored blob's bytes on line `id`.
///
/// # Errors
/// A corrupt or missing source, a `diff_id` that does not match, I/O errors.
pub(super) async fn compress_one(
    config: &Config,
    (from, into): (&Layout, &Layout),
    layer: &Descriptor,
    diff_id: &hoist_oci::Digest,
    reporter: &Reporter,
    id: &str,
) -> anyhow::Result<Descriptor> {
    let (from, into) = (from.clone(), into.clone());
    let layer = layer.clone();
    let diff_id = diff_id.clone();
    let compression = config.compression;
    let level = config.compression_level;
    let reporter = reporter.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || {
        let stored =
            super::local::Counting::new(from.open_blob(&layer)?, &reporter, &id, layer.size);
        let mut input = hoist_oci::codec::decoder(stored)?;
        let mut writer = into.layer_writer(compression, level, COMPRESS_ONE_THREADS)?;
        std::io::copy(&mut input, &mut writer)
            .with_context(|| format!("compressing layer {}", layer.digest))?;
        let blob = writer.finish()?;
        if blob.diff_id() != &diff_id {
            bail!(
                "layer {} decompresses to {} but the image config says {diff_id}",
                layer.digest,
                blob.diff_id()
            );
        }
        let info = blob.commit()?;
        Ok(Descriptor::new(
            MediaType::oci_layer(compression),
            info.digest,
            info.size,
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
    Ok(RawJson::from_value(ImageManifest::new(config, layers))?)
}

/// Load a staged image into the daemon, named `names`.
///
/// # Errors
/// Daemon and archive errors.
pub async fn load(
    config: &Config,
    layout: &Layout,
    image: &Image,
    names: Vec<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let daemon = connect(config).await?;
    let layout = layout.clone();
    let descriptor = image.descriptor.clone();
    load_archive(&daemon, reporter, move |out| {
        write_docker_archive(&layout, &[(descriptor, names)], out)
    })
    .await
}

/// Stream the docker-archive `produce` writes into the daemon's load request, with a "load"
/// stream line counting the bytes sent (the load's delivery), and report the names the daemon
/// gave it.
///
/// # Errors
/// Daemon and archive errors.
pub async fn load_archive<F>(daemon: &Daemon, reporter: &Reporter, produce: F) -> anyhow::Result<()>
where
    F: FnOnce(&mut hoist_docker::LoadWriter) -> hoist_oci::Result<()> + Send + 'static,
{
    reporter.send(Event::Stream {
        id: LOAD_LINE.into(),
        size: None,
    });
    reporter.state(LOAD_LINE, LayerState::Writing);
    let progress_reporter = reporter.clone();
    let loaded = daemon
        .load_with(
            move |p| match p {
                hoist_docker::Progress::Sending { bytes } => {
                    progress_reporter.send(Event::Progress {
                        id: LOAD_LINE.into(),
                        done: bytes,
                        total: None,
                    });
                }
                // A small image is sent between two of the library's ticks: only the end
                // says how much went.
                hoist_docker::Progress::Done { bytes } => {
                    progress_reporter.send(Event::Progress {
                        id: LOAD_LINE.into(),
                        done: bytes,
                        total: Some(bytes),
                    });
                }
                _ => {}
            },
            produce,
        )
        .await
        .context("loading the image into the Docker daemon")?;
    reporter.state(LOAD_LINE, LayerState::Done);
    for tag in loaded.tags.iter().chain(&loaded.ids) {
        reporter.send(Event::Message {
            text: format!("loaded {tag}"),
        });
    }
    Ok(())
}
