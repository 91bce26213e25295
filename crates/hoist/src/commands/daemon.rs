//! The Docker daemon as a source and a destination, and the push-from-daemon cache.
//!
//! An export is spooled once into `CACHE/exports/IMAGE_ID` (a layout, renamed into place only
//! when complete, so a crash never leaves a half export that looks whole). Pushing compresses
//! each layer once into that layout and remembers, in `CACHE/layer-map`, which compressed
//! digest belongs to which diff_id at which compression setting: a re-push of unchanged layers
//! asks the registry for the remembered digest and skips compressing and uploading them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_docker::{ConnectOptions, Daemon, ExportOptions, ImageInfo};
use hoist_oci::archive::{spool, write_docker_archive};
use hoist_oci::codec::Compressor;
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

/// Export `name` from the daemon into the cache (or reuse the cached export of the same image
/// ID). Returns the layout, the image and the daemon's facts about it.
///
/// # Errors
/// Daemon, spooling and cache I/O errors.
pub async fn export_cached(
    config: &Config,
    daemon: &Daemon,
    name: &str,
    reporter: &Reporter,
) -> anyhow::Result<(Layout, Image, ImageInfo)> {
    let info = daemon
        .inspect(name)
        .await
        .with_context(|| format!("looking up `{name}` in the Docker daemon"))?;
    let exports = config.cache_dir.join("exports");
    let dir = exports.join(info.id.hex());
    if let Ok(layout) = Layout::open(&dir)
        && let Ok(image) = layout.image(Some(EXPORT_TAG), None)
    {
        tracing::info!(id = %info.id, "reusing the cached export");
        return Ok((layout, image, info));
    }
    std::fs::create_dir_all(&exports).with_context(|| format!("creating {}", exports.display()))?;
    let partial = tempfile::Builder::new()
        .prefix(&format!("{}.partial-", info.id.hex()))
        .tempdir_in(&exports)
        .with_context(|| format!("creating a directory in {}", exports.display()))?;
    let layout_dir = partial.path().join("layout");
    let layout = Layout::create(&layout_dir)?;
    reporter.send(Event::Layer {
        id: EXPORT_LINE.into(),
        size: (info.size > 0).then_some(info.size),
    });
    reporter.state(EXPORT_LINE, LayerState::Exporting);
    let mut options = ExportOptions::new();
    if let Some(p) = &config.platform {
        options = options.platform(p.clone());
    }
    let progress_reporter = reporter.clone();
    let total = (info.size > 0).then_some(info.size);
    let spool_layout = layout.clone();
    let spooled = daemon
        .export_with(
            &[name.to_string()],
            &options,
            move |p| {
                if let hoist_docker::Progress::Receiving { bytes } = p {
                    progress_reporter.send(Event::Progress {
                        id: EXPORT_LINE.into(),
                        done: bytes,
                        total: total.map(|t| t.max(bytes)),
                    });
                }
            },
            move |reader| spool(reader, &spool_layout),
        )
        .await
        .with_context(|| format!("exporting `{name}` from the Docker daemon"))?;
    let Some(first) = spooled.first() else {
        bail!("the daemon's export of `{name}` held no image");
    };
    layout.set_tag(EXPORT_TAG, &first.manifest)?;
    reporter.state(EXPORT_LINE, LayerState::Done);
    // Complete: move it into place under the image ID (another hoist may have won the race).
    match std::fs::rename(&layout_dir, &dir) {
        Ok(()) => {}
        Err(_) if dir.exists() => {}
        Err(e) => {
            return Err(e).with_context(|| format!("moving the export to {}", dir.display()));
        }
    }
    drop(partial);
    let layout = Layout::open(&dir)?;
    let image = layout.image(Some(EXPORT_TAG), None)?;
    Ok((layout, image, info))
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

fn remember(config: &Config, diff_id: &hoist_oci::Digest, desc: &Descriptor) -> anyhow::Result<()> {
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
/// remembered compressed digest `exists` reports present at the destination. Returns the plan
/// per layer, base first.
///
/// # Errors
/// Compression and I/O errors; a remembered digest that no longer matches is recompressed.
pub async fn compress_layers<F, Fut>(
    config: &Config,
    layout: &Layout,
    image: &Image,
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
        let mut input = super::copy::Counting::new(
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
            move |out| write_docker_archive(&layout, &[(descriptor, names)], out),
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
