//! `hoist copy` and its short forms: wiring a source to a destination through the libraries.
//!
//! The CLI moves no bytes itself: `hoist-registry` pushes files and pulls into files or verified
//! streams, `hoist-oci` reads and writes layouts, `hoist-unpack` applies layers. This module
//! picks the calls for each pair and reports progress.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures_util::future::try_join_all;
use hoist_oci::archive::{SpooledImage, spool, write_docker_archive};
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, ImageConfig, ImageManifest, MediaType, Platform, RawJson, Reference};
use hoist_registry::{BlobSource, Client, PushOptions, Repo};
use hoist_unpack::{LayerInfo, Unpacker};

use super::{daemon, registry};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::transport::{ArchivePath, Location};

/// Run a copy on a fresh runtime.
///
/// # Errors
/// Whatever failed, with context.
pub fn run(
    config: &Config,
    source: &Location,
    destination: &Location,
    operation: &str,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    reporter.send(Event::Start {
        operation: operation.to_string(),
        source: source.to_string(),
        destination: destination.to_string(),
    });
    let runtime = super::runtime()?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = copy(config, source, destination, reporter) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted: run the same command again to continue where it stopped"
            )),
        }
    });
    // Blocking work (a compression, a spool) stops with the process, not before it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    reporter.send(Event::Finish { ok: result.is_ok() });
    result
}

async fn copy(
    config: &Config,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    match (source, destination) {
        (Location::DockerDaemon { name }, Location::Registry { reference }) => {
            return push_from_daemon(config, name, reference, reporter).await;
        }
        // Straight into the destination layout.
        (Location::Registry { reference }, Location::Oci { dir, tag }) => {
            let client = registry::client(config)?;
            let pulled = pull_image(&client, config, reference, dir, reporter).await?;
            let tag = tag.clone().or_else(|| reference.tag().map(str::to_string));
            return tag_layout(dir, tag.as_deref(), &pulled.descriptor).await;
        }
        // Layers stream from the registry into the unpacker; nothing is cached.
        (Location::Registry { reference }, Location::Rootfs { dir }) => {
            let client = registry::client(config)?;
            return unpack_from_registry(&client, config, reference, dir, reporter).await;
        }
        // Same registry: mount every blob, no bytes move (falls back to a transfer).
        (Location::Registry { reference: from }, Location::Registry { reference: to })
            if from.registry() == to.registry() =>
        {
            let client = registry::client(config)?;
            if mount_all(&client, config, from, to, reporter).await? {
                return Ok(());
            }
        }
        _ => {}
    }
    // Every other pair goes through an image in a layout: the source's own, or one spooled into
    // the cache; the destination is written from there.
    let staged = stage(config, source, reporter).await?;
    let result = deliver(config, &staged, source, destination, reporter).await;
    staged.cleanup();
    result
}

/// An image sitting in a layout, ready to be written anywhere.
pub struct Staged {
    /// The layout holding its blobs.
    pub layout: Layout,
    /// The image.
    pub image: Image,
    /// The names it goes by (for archives and `docker load`).
    pub names: Vec<String>,
    /// A transit directory to delete when done.
    transit: Option<PathBuf>,
}

impl Staged {
    /// Delete the transit copy, if there is one.
    pub fn cleanup(&self) {
        if let Some(dir) = &self.transit {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Copy within one registry by mounting every blob into the target repository, then pushing
/// the manifest's exact bytes. Returns false (having changed nothing but mounts) when some
/// blob could not be mounted, so the caller transfers the image instead.
async fn mount_all(
    client: &Client,
    config: &Config,
    from: &Reference,
    to: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<bool> {
    let from_repo = Repo::from_reference(from)?;
    let to_repo = Repo::from_reference(to)?;
    let platform = config.platform.clone().unwrap_or_else(Platform::host);
    let manifest = client
        .get_image_manifest(&from_repo, &from.tag_or_digest(), &platform)
        .await
        .with_context(|| format!("fetching the manifest of {from}"))?;
    let m = manifest.value();
    announce(reporter, &m.layers);
    for desc in std::iter::once(&m.config).chain(&m.layers) {
        let id = desc.digest.to_string();
        let is_layer = desc.digest != m.config.digest;
        if client.blob_exists(&to_repo, &desc.digest).await? {
            if is_layer {
                reporter.state(&id, LayerState::Skipped);
            }
            continue;
        }
        if !client
            .mount_blob(&to_repo, &desc.digest, &from_repo.name)
            .await?
        {
            return Ok(false);
        }
        if is_layer {
            reporter.state(&id, LayerState::Mounted);
        }
    }
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| MediaType::new(MediaType::OCI_MANIFEST));
    client
        .push_manifest(&to_repo, &to.tag_or_digest(), &media_type, manifest.bytes())
        .await
        .with_context(|| format!("pushing the manifest to {to}"))?;
    Ok(true)
}

/// Bring the source image into a layout.
pub async fn stage(
    config: &Config,
    source: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Staged> {
    match source {
        Location::Oci { dir, tag } => {
            let (layout, image) = open_layout_image(config, dir, tag.as_deref()).await?;
            Ok(Staged {
                layout,
                image,
                names: Vec::new(),
                transit: None,
            })
        }
        Location::DockerArchive { path, reference } => {
            let transit = transit_dir(config, "archive")?;
            let path = path.clone();
            let reference = reference.clone();
            let platform = config.platform.clone();
            let dir = transit.clone();
            let staged = tokio::task::spawn_blocking(move || {
                let layout = Layout::create(&dir)?;
                let spooled = match &path {
                    ArchivePath::Stdio => spool(std::io::stdin().lock(), &layout),
                    ArchivePath::File(file) => {
                        let f = std::fs::File::open(file)
                            .with_context(|| format!("opening {}", file.display()))?;
                        spool(std::io::BufReader::new(f), &layout)
                    }
                }
                .context("reading the docker archive")?;
                let chosen = choose_archive_image(&spooled, reference.as_deref())?;
                let image = layout.image_at(&chosen.manifest, platform.as_ref())?;
                let names = match &reference {
                    Some(r) => vec![r.clone()],
                    None => chosen.tags.clone(),
                };
                anyhow::Ok((layout, image, names))
            })
            .await?;
            match staged {
                Ok((layout, image, names)) => Ok(Staged {
                    layout,
                    image,
                    names,
                    transit: Some(transit),
                }),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&transit);
                    Err(e)
                }
            }
        }
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            let transit = transit_dir(config, "pull")?;
            match pull_image(&client, config, reference, &transit, reporter).await {
                Ok(image) => Ok(Staged {
                    layout: Layout::open(&transit)?,
                    image,
                    names: vec![reference.familiar_tagged()],
                    transit: Some(transit),
                }),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&transit);
                    Err(e)
                }
            }
        }
        Location::DockerDaemon { name } => {
            let docker = daemon::connect().await?;
            let (layout, image, _) = daemon::export_cached(config, &docker, name, reporter).await?;
            Ok(Staged {
                layout,
                image,
                names: vec![name.clone()],
                transit: None,
            })
        }
        Location::Rootfs { .. } => bail!("rootfs: is a destination only"),
    }
}

/// Write a staged image to the destination.
async fn deliver(
    config: &Config,
    staged: &Staged,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    match destination {
        Location::Oci { dir, tag } => {
            copy_between_layouts(
                staged.layout.clone(),
                staged.image.clone(),
                dir.clone(),
                reporter.clone(),
            )
            .await?;
            let source_tag = match source {
                Location::Oci { tag, .. } => tag.clone(),
                _ => None,
            };
            tag_layout(
                dir,
                tag.as_deref().or(source_tag.as_deref()),
                &staged.image.descriptor,
            )
            .await
        }
        Location::DockerArchive { path, reference } => {
            let names = match reference {
                Some(r) => vec![r.clone()],
                None => staged.names.clone(),
            };
            write_archive(staged, path.clone(), names, reporter.clone()).await
        }
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            push_image(
                &client,
                &staged.layout,
                &staged.image,
                reference,
                None,
                reporter,
            )
            .await
        }
        Location::Rootfs { dir } => {
            unpack_from_layout(
                staged.layout.clone(),
                staged.image.clone(),
                dir.clone(),
                reporter.clone(),
            )
            .await
        }
        Location::DockerDaemon { name } => {
            daemon::load(&staged.layout, &staged.image, vec![name.clone()], reporter).await
        }
    }
}

/// A fresh directory under the cache for an image in transit.
fn transit_dir(config: &Config, kind: &str) -> anyhow::Result<PathBuf> {
    let base = config.cache_dir.join("transit");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{kind}-"))
        .tempdir_in(&base)
        .with_context(|| format!("creating a transit directory in {}", base.display()))?;
    // The layout is created inside by its library; keep the directory past this guard.
    let path = dir.keep();
    std::fs::remove_dir(&path).with_context(|| format!("preparing {}", path.display()))?;
    Ok(path)
}

/// Pick the image of a multi-image archive: the one `reference` names, or the only one.
fn choose_archive_image<'a>(
    spooled: &'a [SpooledImage],
    reference: Option<&str>,
) -> anyhow::Result<&'a SpooledImage> {
    match reference {
        Some(wanted) => {
            let want = Reference::parse(wanted).map(|r| r.to_string()).ok();
            spooled
                .iter()
                .find(|img| {
                    img.tags.iter().any(|t| {
                        t == wanted || Reference::parse(t).map(|r| r.to_string()).ok() == want
                    })
                })
                .with_context(|| {
                    let all: Vec<&str> = spooled
                        .iter()
                        .flat_map(|i| i.tags.iter().map(String::as_str))
                        .collect();
                    format!(
                        "the archive has no image `{wanted}` (it has: {})",
                        if all.is_empty() {
                            "untagged images only".to_string()
                        } else {
                            all.join(", ")
                        }
                    )
                })
        }
        None => match spooled {
            [only] => Ok(only),
            [] => bail!("the archive holds no image"),
            many => bail!(
                "the archive holds {} images; name one with docker-archive:PATH:NAME:TAG",
                many.len()
            ),
        },
    }
}

/// Write a docker archive (to a file via a temp file renamed at the end, or to stdout).
async fn write_archive(
    staged: &Staged,
    path: ArchivePath,
    names: Vec<String>,
    reporter: Reporter,
) -> anyhow::Result<()> {
    let layout = staged.layout.clone();
    let descriptor = staged.image.descriptor.clone();
    let layers = staged.image.manifest.value().layers.clone();
    tokio::task::spawn_blocking(move || {
        announce(&reporter, &layers);
        for l in &layers {
            reporter.state(&l.digest.to_string(), LayerState::Writing);
        }
        let images = [(descriptor, names)];
        match &path {
            ArchivePath::Stdio => {
                let stdout = std::io::stdout().lock();
                let mut out = std::io::BufWriter::with_capacity(256 << 10, stdout);
                write_docker_archive(&layout, &images, &mut out)
                    .context("writing the docker archive to stdout")?;
                std::io::Write::flush(&mut out).context("writing the docker archive to stdout")?;
            }
            ArchivePath::File(file) => {
                let parent = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let mut temp = tempfile::Builder::new()
                    .prefix(".hoist-archive-")
                    .tempfile_in(&parent)
                    .with_context(|| format!("creating a file in {}", parent.display()))?;
                {
                    let mut out = std::io::BufWriter::with_capacity(256 << 10, temp.as_file_mut());
                    write_docker_archive(&layout, &images, &mut out)
                        .with_context(|| format!("writing {}", file.display()))?;
                    std::io::Write::flush(&mut out)
                        .with_context(|| format!("writing {}", file.display()))?;
                }
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("writing {}", file.display()))?;
                temp.persist(file).map_err(|e| e.error).with_context(|| {
                    format!("renaming the archive into place at {}", file.display())
                })?;
            }
        }
        for l in &layers {
            reporter.state(&l.digest.to_string(), LayerState::Done);
        }
        anyhow::Ok(())
    })
    .await?
}

/// Open a layout and resolve the image (blocking work off the runtime).
pub async fn open_layout_image(
    config: &Config,
    dir: &Path,
    tag: Option<&str>,
) -> anyhow::Result<(Layout, Image)> {
    let dir = dir.to_path_buf();
    let tag = tag.map(str::to_string);
    let platform = config.platform.clone();
    tokio::task::spawn_blocking(move || {
        let layout = Layout::open(&dir)
            .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
        let image = layout
            .image(tag.as_deref(), platform.as_ref())
            .with_context(|| match &tag {
                Some(t) => format!("reading image `{t}` from {}", dir.display()),
                None => format!("reading the image in {}", dir.display()),
            })?;
        Ok((layout, image))
    })
    .await?
}

fn announce(reporter: &Reporter, layers: &[Descriptor]) {
    for layer in layers {
        reporter.send(Event::Layer {
            id: layer.digest.to_string(),
            size: Some(layer.size),
        });
    }
}

/// Push an image whose blobs are in `layout` to `reference`.
async fn push_image(
    client: &Client,
    layout: &Layout,
    image: &Image,
    reference: &Reference,
    mount_from: Option<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let repo = Repo::from_reference(reference)?;
    let manifest = image.manifest.value();
    announce(reporter, &manifest.layers);
    push_blobs(
        client,
        &repo,
        layout,
        &manifest.config,
        &manifest.layers,
        mount_from,
        reporter,
    )
    .await?;
    push_manifest(
        client,
        &repo,
        reference,
        &image.descriptor.media_type,
        image.manifest.bytes(),
    )
    .await
}

/// Push a config and layers from `layout` (the registry client skips those it has).
pub async fn push_blobs(
    client: &Client,
    repo: &Repo,
    layout: &Layout,
    config: &Descriptor,
    layers: &[Descriptor],
    mount_from: Option<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let (sink, forwarder) = registry::forward(reporter, LayerState::Pushing);
    let options = PushOptions { mount_from };
    let source = |d: &Descriptor| BlobSource {
        path: layout.blob_path(&d.digest),
        digest: d.digest.clone(),
        size: d.size,
    };
    let config_source = source(config);
    let layer_sources: Vec<BlobSource> = layers.iter().map(source).collect();
    let quiet = hoist_registry::Progress::none();
    let config_push = client.push_blob(repo, &config_source, &options, &quiet);
    let layer_pushes = try_join_all(
        layer_sources
            .iter()
            .map(|s| client.push_blob(repo, s, &options, &sink)),
    );
    let result = tokio::try_join!(config_push, layer_pushes);
    drop(sink);
    let _ = forwarder.await;
    result.with_context(|| format!("pushing blobs to {repo}"))?;
    Ok(())
}

/// Push a manifest's exact bytes under the reference's tag (or digest).
pub async fn push_manifest(
    client: &Client,
    repo: &Repo,
    reference: &Reference,
    media_type: &MediaType,
    bytes: &[u8],
) -> anyhow::Result<()> {
    client
        .push_manifest(repo, &reference.tag_or_digest(), media_type, bytes)
        .await
        .with_context(|| format!("pushing the manifest to {reference}"))?;
    Ok(())
}

/// Push an image from the Docker daemon: export once into the cache, compress each layer once
/// (skipping layers the registry has under their remembered compressed digest), push.
async fn push_from_daemon(
    config: &Config,
    name: &str,
    reference: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let docker = daemon::connect().await?;
    let (layout, image, _) = daemon::export_cached(config, &docker, name, reporter).await?;
    let client = registry::client(config)?;
    let repo = Repo::from_reference(reference)?;
    let exists = |d: Descriptor| {
        let client = client.clone();
        let repo = repo.clone();
        async move { Ok(client.blob_exists(&repo, &d.digest).await?) }
    };
    let plan = daemon::compress_layers(config, &layout, &image, exists, reporter).await?;
    let mut layers = Vec::with_capacity(plan.len());
    let mut to_push = Vec::new();
    for step in plan {
        match step {
            daemon::LayerPlan::Present(d) => layers.push(d),
            daemon::LayerPlan::Push(d) => {
                to_push.push(d.clone());
                layers.push(d);
            }
        }
    }
    let manifest = daemon::manifest_for(&image, layers)?;
    layout.write_json(&manifest)?;
    // Progress lines were announced by diff_id; from here the registry reports blob digests.
    let config_desc = &manifest.value().config;
    push_blobs(
        &client,
        &repo,
        &layout,
        config_desc,
        &to_push,
        None,
        reporter,
    )
    .await?;
    push_manifest(
        &client,
        &repo,
        reference,
        &MediaType::new(MediaType::OCI_MANIFEST),
        manifest.bytes(),
    )
    .await
}

/// Pull `reference` into the layout at `dir` (created if missing); returns the image.
async fn pull_image(
    client: &Client,
    config: &Config,
    reference: &Reference,
    dir: &Path,
    reporter: &Reporter,
) -> anyhow::Result<Image> {
    let repo = Repo::from_reference(reference)?;
    let platform = config.platform.clone().unwrap_or_else(Platform::host);
    let manifest = client
        .get_image_manifest(&repo, &reference.tag_or_digest(), &platform)
        .await
        .with_context(|| format!("fetching the manifest of {reference}"))?;
    let layout = {
        let owned = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Layout::open_or_create(&owned))
            .await?
            .with_context(|| format!("opening the OCI layout {}", dir.display()))?
    };
    let layout = &layout;
    let m = manifest.value();
    announce(reporter, &m.layers);
    let (sink, forwarder) = registry::forward(reporter, LayerState::Pulling);
    let quiet = hoist_registry::Progress::none();
    let mut wanted = vec![(&m.config, &quiet)];
    wanted.extend(m.layers.iter().map(|l| (l, &sink)));
    let pulls = wanted.into_iter().map(|(desc, progress)| {
        let path = layout.blob_path(&desc.digest);
        let repo = &repo;
        let reporter = reporter.clone();
        async move {
            if layout.has_blob(desc)? {
                reporter.state(&desc.digest.to_string(), LayerState::Skipped);
                return Ok(());
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            client
                .pull_blob(repo, desc, &path, progress)
                .await
                .with_context(|| format!("pulling blob {}", desc.digest))?;
            anyhow::Ok(())
        }
    });
    let result = try_join_all(pulls).await;
    drop(sink);
    let _ = forwarder.await;
    result?;
    layout.write_json(&manifest)?;
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| MediaType::new(MediaType::OCI_MANIFEST));
    let descriptor = manifest.descriptor(media_type);
    let config_json: RawJson<ImageConfig> = layout
        .read_json(&m.config)
        .with_context(|| format!("reading the config of {reference}"))?;
    Ok(Image {
        descriptor,
        manifest,
        config: config_json,
    })
}

async fn tag_layout(dir: &Path, tag: Option<&str>, descriptor: &Descriptor) -> anyhow::Result<()> {
    let layout = Layout::open(dir)?;
    match tag {
        Some(tag) => layout.set_tag(tag, descriptor)?,
        None => layout.add_untagged(descriptor)?,
    }
    Ok(())
}

/// Copy an image's blobs into another layout, verifying each on the way.
async fn copy_between_layouts(
    from: Layout,
    image: Image,
    to: PathBuf,
    reporter: Reporter,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let target = Layout::open_or_create(&to)
            .with_context(|| format!("opening the OCI layout {}", to.display()))?;
        let m = image.manifest.value();
        announce(&reporter, &m.layers);
        // The config is small and not a layer: copied without a progress line.
        if !target.has_blob(&m.config)? {
            target.write_blob(from.open_blob(&m.config)?, Some(&m.config))?;
        }
        for desc in &m.layers {
            let id = desc.digest.to_string();
            if target.has_blob(desc)? {
                reporter.state(&id, LayerState::Skipped);
                continue;
            }
            reporter.state(&id, LayerState::Writing);
            let reader = Counting::new(from.open_blob(desc)?, &reporter, &id, desc.size);
            target.write_blob(reader, Some(desc))?;
            reporter.state(&id, LayerState::Done);
        }
        target.write_json(&image.manifest)?;
        anyhow::Ok(())
    })
    .await?
}

/// Unpack an image from a layout into `root`.
async fn unpack_from_layout(
    layout: Layout,
    image: Image,
    root: PathBuf,
    reporter: Reporter,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let unpacker = Unpacker::builder().build()?;
        let m = image.manifest.value();
        announce(&reporter, &m.layers);
        let created = prepare_root(&root)?;
        let result = (|| {
            for (i, desc) in m.layers.iter().enumerate() {
                let id = desc.digest.to_string();
                reporter.state(&id, LayerState::Unpacking);
                let file = std::fs::File::open(layout.blob_path(&desc.digest))
                    .with_context(|| format!("opening layer {}", desc.digest))?;
                let info = layer_info(&image.config, desc, i);
                unpacker
                    .apply_layer(&root, Counting::new(file, &reporter, &id, desc.size), &info)
                    .with_context(|| format!("unpacking layer {}", desc.digest))?;
                reporter.state(&id, LayerState::Done);
            }
            anyhow::Ok(())
        })();
        finish_root(&root, created, result)
    })
    .await?
}

/// Unpack an image straight from a registry: each layer streams into the unpacker, no cache.
async fn unpack_from_registry(
    client: &Client,
    config: &Config,
    reference: &Reference,
    root: &Path,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let repo = Repo::from_reference(reference)?;
    let platform = config.platform.clone().unwrap_or_else(Platform::host);
    let manifest: RawJson<ImageManifest> = client
        .get_image_manifest(&repo, &reference.tag_or_digest(), &platform)
        .await
        .with_context(|| format!("fetching the manifest of {reference}"))?;
    let m = manifest.value();
    let config_json = fetch_config(client, &repo, &m.config).await?;
    announce(reporter, &m.layers);
    let unpacker = Unpacker::builder().build()?;
    let created = prepare_root(root)?;
    let result = async {
        for (i, desc) in m.layers.iter().enumerate() {
            let id = desc.digest.to_string();
            reporter.state(&id, LayerState::Unpacking);
            let stream = client
                .open_blob_stream(&repo, desc)
                .await
                .with_context(|| format!("fetching layer {}", desc.digest))?;
            let reader = tokio_util::io::SyncIoBridge::new(stream);
            let info = layer_info(&config_json, desc, i);
            let unpacker = unpacker.clone();
            let root = root.to_path_buf();
            let reporter2 = reporter.clone();
            let size = desc.size;
            let id2 = id.clone();
            tokio::task::spawn_blocking(move || {
                unpacker.apply_layer(&root, Counting::new(reader, &reporter2, &id2, size), &info)
            })
            .await?
            .with_context(|| format!("unpacking layer {}", desc.digest))?;
            reporter.state(&id, LayerState::Done);
        }
        anyhow::Ok(())
    }
    .await;
    finish_root(root, created, result)
}

/// Fetch and verify a config blob (small; read through the verifying stream).
pub async fn fetch_config(
    client: &Client,
    repo: &Repo,
    desc: &Descriptor,
) -> anyhow::Result<RawJson<ImageConfig>> {
    if desc.size > hoist_oci::MAX_JSON_SIZE as u64 {
        bail!(
            "the image config is {} bytes, more than hoist accepts",
            desc.size
        );
    }
    let mut stream = client
        .open_blob_stream(repo, desc)
        .await
        .with_context(|| format!("fetching the config {}", desc.digest))?;
    let mut bytes = Vec::with_capacity(desc.size as usize);
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut bytes)
        .await
        .with_context(|| format!("reading the config {}", desc.digest))?;
    Ok(RawJson::parse_verified(bytes, &desc.digest)?)
}

fn layer_info(config: &RawJson<ImageConfig>, desc: &Descriptor, index: usize) -> LayerInfo {
    LayerInfo {
        digest: Some(desc.digest.clone()),
        diff_id: config.value().rootfs.diff_ids.get(index).cloned(),
    }
}

/// Create the root if missing; returns whether hoist created it.
fn prepare_root(root: &Path) -> anyhow::Result<bool> {
    if root.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    Ok(true)
}

/// On failure, remove a root hoist created (a half-applied root is not trustworthy); a root
/// that was there before is left for the user, with a warning in the error.
fn finish_root(root: &Path, created: bool, result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if created => {
            let _ = std::fs::remove_dir_all(root);
            Err(err.context(format!(
                "unpacking into {} failed; the partial root filesystem was removed",
                root.display()
            )))
        }
        Err(err) => Err(err.context(format!(
            "unpacking into {} failed; it now holds a partial root filesystem: delete it before \
             using it",
            root.display()
        ))),
    }
}

/// A reader that reports how many bytes went through it (about every MiB).
pub struct Counting<R> {
    inner: R,
    reporter: Reporter,
    id: String,
    total: u64,
    done: u64,
    reported: u64,
}

impl<R> Counting<R> {
    /// Count `inner`'s bytes as progress of line `id` out of `total`.
    pub fn new(inner: R, reporter: &Reporter, id: &str, total: u64) -> Self {
        Counting {
            inner,
            reporter: reporter.clone(),
            id: id.to_string(),
            total,
            done: 0,
            reported: 0,
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.reporter.send(Event::Progress {
                id: self.id.clone(),
                done: self.done,
                total: Some(self.total),
            });
        }
        Ok(n)
    }
}
