//! The registry side of copies: pushing from a layout, pulling into one, mounting within a
//! registry, and streaming from a registry with no local copy: blobs into another registry,
//! a docker archive (file, stdout or the daemon's load), or layers into the unpacker.

use std::path::Path;

use anyhow::Context;
use futures_util::future::try_join_all;
use hoist_oci::convert::ManifestFormat;
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{
    Descriptor, Digest, ImageConfig, ImageManifest, MediaType, Platform, RawJson, Reference,
};
use hoist_registry::{BlobSource, Client, RemoteBlob, Repo};

use super::copy::announce;
use super::format::{manifest_as, push_reference, stored_media_type};
use super::local::{
    Counting, finish_root, layer_info, prepare_root, write_archive_with, write_runtime_config,
};
use super::push_group::PushGroup;
use super::{daemon, registry};
use crate::config::Config;
use crate::interrupt::Watched;
use crate::progress::{LayerState, Reporter};
use crate::transport::ArchivePath;

/// Copy within one registry by mounting every blob into the target repository, then pushing
/// the manifest's exact bytes (or, with `--format`, the converted manifest's); returns the
/// descriptor of the manifest pushed. Returns `None` (having changed nothing but mounts) when
/// some blob could not be mounted, so the caller transfers the image instead.
pub async fn mount_all(
    client: &Client,
    config: &Config,
    from: &Reference,
    to: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<Option<Descriptor>> {
    let (from_repo, manifest) = fetch_manifest(client, config, from).await?;
    // Converted before any blob moves: an image the format cannot describe fails here.
    let (written, media_type) = manifest_as(
        &manifest,
        stored_media_type(&manifest),
        config.manifest_format,
    )?;
    let to_repo = Repo::from_reference(to)?;
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
            .mount_blob(&to_repo, &desc.digest, from_repo.name())
            .await?
        {
            return Ok(None);
        }
        if is_layer {
            reporter.state(&id, LayerState::Mounted);
        }
    }
    let to = push_reference(to, manifest.digest(), written.digest());
    let digest = push_manifest(client, &to_repo, &to, &media_type, written.bytes()).await?;
    let size = written.bytes().len() as u64;
    Ok(Some(Descriptor::new(media_type, digest, size)))
}

/// Push the manifest `descriptor` names (an image's or an artifact's), whose blobs are in
/// `layout`, to `reference`; returns the manifest's digest.
pub async fn push_image(
    client: &Client,
    layout: &Layout,
    (descriptor, manifest): (&Descriptor, &RawJson<ImageManifest>),
    reference: &Reference,
    mount_from: Option<String>,
    reporter: &Reporter,
) -> anyhow::Result<Digest> {
    let repo = Repo::from_reference(reference)?;
    let m = manifest.value();
    announce(reporter, &m.layers);
    push_blobs(
        client, &repo, layout, &m.config, &m.layers, mount_from, reporter,
    )
    .await?;
    push_manifest(
        client,
        &repo,
        reference,
        &descriptor.media_type,
        manifest.bytes(),
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
    let layers: Vec<(&Layout, &Descriptor)> = layers.iter().map(|d| (layout, d)).collect();
    push_blobs_from(
        client,
        repo,
        (layout, config),
        &layers,
        mount_from,
        reporter,
    )
    .await
}

/// Push a config and layers, each from the layout beside it (the registry client skips those
/// it has).
pub async fn push_blobs_from(
    client: &Client,
    repo: &Repo,
    config: (&Layout, &Descriptor),
    layers: &[(&Layout, &Descriptor)],
    mount_from: Option<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let (sink, forwarder) = registry::forward(reporter, LayerState::Pushing);
    let group = PushGroup::new();
    let options = group.options(mount_from);
    let source = |(layout, d): (&Layout, &Descriptor)| BlobSource {
        path: layout.blob_path(&d.digest),
        digest: d.digest.clone(),
        size: d.size,
    };
    let config_source = source(config);
    let layers = once_each(layers, |(_, d)| &d.digest);
    let layer_sources: Vec<BlobSource> = largest_first(&layers, |(_, d)| d.size)
        .into_iter()
        .map(|&&(l, d)| source((l, d)))
        .collect();
    let (config_sink, config_forwarder) = registry::forward_config(reporter);
    let config_push = std::iter::once((&config_source, &config_sink));
    let pushes = config_push
        .chain(layer_sources.iter().map(|s| (s, &sink)))
        .map(|(s, progress)| client.push_blob(repo, s, &options, progress));
    // Ended together, between chunks: see `push_group`.
    let result = group.run(pushes).await;
    drop(sink);
    drop(config_sink);
    let _ = forwarder.await;
    let _ = config_forwarder.await;
    result.with_context(|| format!("pushing blobs to {repo}"))?;
    Ok(())
}

/// `items` with each digest once (its first), in their order. A layer an image lists twice
/// (an empty one often is) is pushed once: two pushes of one blob at a time would send it
/// twice and race on its one upload state file.
fn once_each<T>(items: &[T], digest: impl Fn(&T) -> &Digest) -> Vec<&T> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .filter(|item| seen.insert(digest(item).clone()))
        .collect()
}

/// `layers` in the order to push them: largest first. The client gives blobs their slots in
/// the order they ask, and a big layer started last uploads alone while the other slots idle.
fn largest_first<T>(layers: &[T], size: impl Fn(&T) -> u64) -> Vec<&T> {
    let mut sorted: Vec<&T> = layers.iter().collect();
    sorted.sort_by_key(|t| std::cmp::Reverse(size(t)));
    sorted
}

/// Push a manifest's exact bytes under the reference's tag (or digest); returns their digest
/// (which the registry confirmed, when it said one).
pub async fn push_manifest(
    client: &Client,
    repo: &Repo,
    reference: &Reference,
    media_type: &MediaType,
    bytes: &[u8],
) -> anyhow::Result<Digest> {
    client
        .push_manifest(repo, &reference.tag_or_digest(), media_type, bytes)
        .await
        .with_context(|| format!("pushing the manifest to {reference}"))
}

/// Pull the container image `reference` names into `layout`, a transit copy for a copy to go
/// on from there (its layers are `fetching`: the later step delivers), its manifest converted
/// to `format` when one is given; an artifact is refused before anything is downloaded.
pub async fn pull_image(
    client: &Client,
    config: &Config,
    reference: &Reference,
    layout: &Layout,
    format: Option<ManifestFormat>,
    reporter: &Reporter,
) -> anyhow::Result<Image> {
    let (repo, manifest) = fetch_manifest(client, config, reference).await?;
    require_container_image(reference, &manifest)?;
    let shown = (reporter, LayerState::Fetching);
    let (descriptor, manifest) = pull_into(client, &repo, &manifest, layout, format, shown).await?;
    let config_json: RawJson<ImageConfig> = layout
        .read_json(&manifest.value().config)
        .with_context(|| format!("reading the config of {reference}"))?;
    Ok(Image {
        descriptor,
        manifest,
        config: config_json,
    })
}

/// Pull the manifest `reference` names (an image's or an artifact's) with its blobs into
/// `layout`, which the caller holds a claim on until it is tagged; returns the descriptor of
/// the manifest stored: converted to `format` when one is given (checked before any blob is
/// pulled; only the converted manifest is stored).
pub async fn pull_manifest(
    client: &Client,
    config: &Config,
    reference: &Reference,
    layout: &Layout,
    format: Option<ManifestFormat>,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    let (repo, manifest) = fetch_manifest(client, config, reference).await?;
    let shown = (reporter, LayerState::Pulling);
    let (descriptor, _) = pull_into(client, &repo, &manifest, layout, format, shown).await?;
    Ok(descriptor)
}

/// Fail unless `manifest` is a container image's: an artifact has nothing to unpack, archive
/// or load.
pub fn require_container_image(
    reference: &Reference,
    manifest: &RawJson<ImageManifest>,
) -> anyhow::Result<()> {
    let m = manifest.value();
    if m.is_container_image() {
        return Ok(());
    }
    let kind = match m.layers.iter().find(|l| !l.media_type.is_layer()) {
        Some(layer) if m.config.media_type.is_config() => {
            format!("layer media type {}", layer.media_type)
        }
        _ => format!("config media type {}", m.config.media_type),
    };
    anyhow::bail!(
        "{reference} is an artifact ({kind}), not a container image: it can be copied to a \
         registry or an OCI layout, not unpacked, archived or loaded"
    )
}

/// Download `manifest`'s blobs from `repo` into `layout` (each verified; those already there
/// rehashed and kept), then the manifest itself, converted to `format` when one is given;
/// returns the stored manifest and its descriptor. A layer downloading is shown in `active`:
/// `pulling` into the destination, `fetching` into a transit copy.
pub(super) async fn pull_into(
    client: &Client,
    repo: &Repo,
    manifest: &RawJson<ImageManifest>,
    layout: &Layout,
    format: Option<ManifestFormat>,
    (reporter, active): (&Reporter, LayerState),
) -> anyhow::Result<(Descriptor, RawJson<ImageManifest>)> {
    let (written, media_type) = manifest_as(manifest, stored_media_type(manifest), format)?;
    let m = manifest.value();
    announce(reporter, &m.layers);
    let (sink, forwarder) = registry::forward(reporter, active);
    let (config_sink, config_forwarder) = registry::forward_config(reporter);
    let mut wanted = vec![(&m.config, &config_sink)];
    wanted.extend(m.layers.iter().map(|l| (l, &sink)));
    // A layer listed twice (an empty layer often is) is downloaded once.
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|(d, _)| seen.insert(&d.digest));
    let pulls = wanted.into_iter().map(|(desc, progress)| {
        let path = layout.blob_path(&desc.digest);
        let reporter = reporter.clone();
        async move {
            // A blob already there is rehashed before it is trusted (one whose bytes changed
            // on disk is downloaded again): the tag written below says the image is whole.
            let present = {
                let (layout, desc) = (layout.clone(), desc.clone());
                tokio::task::spawn_blocking(move || layout.has_verified_blob(&desc)).await??
            };
            // The config has no line: it is no layer.
            if present {
                if desc.digest != m.config.digest {
                    reporter.state(&desc.digest.to_string(), LayerState::Skipped);
                }
                return Ok(());
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let pull = async {
                client
                    .pull_blob(repo, desc, &path, progress)
                    .await
                    .map_err(anyhow::Error::new)
            };
            crate::interrupt::unless_raised(pull)
                .await
                .with_context(|| format!("pulling blob {}", desc.digest))?;
            anyhow::Ok(())
        }
    });
    let result = try_join_all(pulls).await;
    drop(sink);
    drop(config_sink);
    let _ = forwarder.await;
    let _ = config_forwarder.await;
    result?;
    layout.write_json(&written)?;
    Ok((written.descriptor(media_type), written))
}

/// Unpack an image straight from a registry: each layer streams into the unpacker, no cache.
pub async fn unpack_from_registry(
    client: &Client,
    config: &Config,
    reference: &Reference,
    root: &Path,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let (repo, manifest) = fetch_manifest(client, config, reference).await?;
    require_container_image(reference, &manifest)?;
    let m = manifest.value();
    let config_json = fetch_config(client, &repo, &m.config).await?;
    hoist_unpack::check_layer_count(m, config_json.value())?;
    announce(reporter, &m.layers);
    let unpacker = super::local::unpacker(config.unpack_limits)?;
    let before = prepare_root(root)?;
    let result = async {
        for (i, desc) in m.layers.iter().enumerate() {
            let id = desc.digest.to_string();
            reporter.state(&id, LayerState::Unpacking);
            let stream = client
                .open_blob_stream(&repo, desc)
                .await
                .with_context(|| format!("fetching layer {}", desc.digest))?;
            let reader = tokio_util::io::SyncIoBridge::new(Watched::new(stream));
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
    finish_root(root, before, result)?;
    write_runtime_config(config, &config_json)
}

/// The repository of `reference` and its image manifest for the configured platform (an index
/// is resolved to the matching manifest), verified against its digest.
///
/// # Errors
/// Registry failures, with the reference named.
pub async fn fetch_manifest(
    client: &Client,
    config: &Config,
    reference: &Reference,
) -> anyhow::Result<(Repo, RawJson<ImageManifest>)> {
    let repo = Repo::from_reference(reference)?;
    let platform = config.platform.clone().unwrap_or_else(Platform::host);
    let manifest = client
        .get_image_manifest(&repo, &reference.tag_or_digest(), &platform)
        .await
        .with_context(|| format!("fetching the manifest of {reference}"))?;
    Ok((repo, manifest))
}

/// Fetch and verify a config blob (small; read through the verifying stream).
pub async fn fetch_config(
    client: &Client,
    repo: &Repo,
    desc: &Descriptor,
) -> anyhow::Result<RawJson<ImageConfig>> {
    client
        .get_config(repo, desc)
        .await
        .with_context(|| format!("fetching the config {}", desc.digest))
}

/// Copy an image between registries: within one registry by mounting every blob (no bytes
/// move), otherwise (or when a mount is declined) by streaming every blob through, with no
/// local copy. Returns the descriptor of the manifest pushed (converted with `--format`).
pub async fn copy_between_registries(
    client: &Client,
    config: &Config,
    from: &Reference,
    to: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    if from.registry() == to.registry()
        && let Some(pushed) = mount_all(client, config, from, to, reporter).await?
    {
        return Ok(pushed);
    }
    stream_between_registries(client, config, from, to, reporter).await
}

/// Copy an image between registries with no local copy: every blob streams from the source
/// through hoist into the destination (a ranged GET per chunk, hashed on the way and verified
/// before the destination completes it), then the manifest's exact bytes are pushed (or, with
/// `--format`, the converted manifest's, converted before any blob moves); returns the
/// descriptor of the manifest pushed.
pub async fn stream_between_registries(
    client: &Client,
    config: &Config,
    from: &Reference,
    to: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    let (from_repo, manifest) = fetch_manifest(client, config, from).await?;
    let (written, media_type) = manifest_as(
        &manifest,
        stored_media_type(&manifest),
        config.manifest_format,
    )?;
    let to_repo = Repo::from_reference(to)?;
    let m = manifest.value();
    announce(reporter, &m.layers);
    let (sink, forwarder) = registry::forward(reporter, LayerState::Pushing);
    let group = PushGroup::new();
    let options = group.options(None);
    let remote = |d: &Descriptor| RemoteBlob::new(client.clone(), from_repo.clone(), d.clone());
    let config_source = remote(&m.config);
    let layer_sources: Vec<RemoteBlob> = once_each(&m.layers, |d| &d.digest)
        .into_iter()
        .map(remote)
        .collect();
    let (config_sink, config_forwarder) = registry::forward_config(reporter);
    let pushes = std::iter::once((&config_source, &config_sink))
        .chain(layer_sources.iter().map(|s| (s, &sink)))
        .map(|(s, progress)| client.push_remote_blob(&to_repo, s, &options, progress));
    let result = group.run(pushes).await;
    drop(sink);
    drop(config_sink);
    let _ = forwarder.await;
    let _ = config_forwarder.await;
    result.with_context(|| format!("copying blobs from {from} to {to}"))?;
    let to = push_reference(to, manifest.digest(), written.digest());
    let digest = push_manifest(client, &to_repo, &to, &media_type, written.bytes()).await?;
    let size = written.bytes().len() as u64;
    Ok(Descriptor::new(media_type, digest, size))
}

/// A registry image ready to be streamed into a docker archive.
pub struct RemoteImage {
    repo: Repo,
    manifest: RawJson<ImageManifest>,
    config: RawJson<ImageConfig>,
}

impl RemoteImage {
    /// Fetch the manifest (for the configured platform) and config of `reference`. `None` when
    /// a layer is zstd-compressed: a streamed legacy archive cannot carry it (the caller goes
    /// through a layout, which decompresses it).
    pub async fn fetch(
        client: &Client,
        config: &Config,
        reference: &Reference,
    ) -> anyhow::Result<Option<RemoteImage>> {
        let (repo, manifest) = fetch_manifest(client, config, reference).await?;
        require_container_image(reference, &manifest)?;
        let zstd = manifest
            .value()
            .layers
            .iter()
            .any(|l| l.media_type.layer_compression() == Some(hoist_oci::Compression::Zstd));
        if zstd {
            return Ok(None);
        }
        let config_json = fetch_config(client, &repo, &manifest.value().config).await?;
        Ok(Some(RemoteImage {
            repo,
            manifest,
            config: config_json,
        }))
    }

    /// A producer writing this image as a legacy docker archive, each layer streamed from the
    /// registry (verified by the blob stream; a mismatch fails the archive before its
    /// `manifest.json`). Runs on a blocking task.
    fn producer(
        self,
        client: Client,
        names: Vec<String>,
        reporter: Reporter,
    ) -> impl FnOnce(&mut dyn std::io::Write) -> hoist_oci::Result<()> + Send + 'static {
        move |out| {
            let RemoteImage {
                repo,
                manifest,
                config,
            } = self;
            let mut previous: Option<String> = None;
            let mut open = |d: &Descriptor| -> hoist_oci::Result<Box<dyn std::io::Read>> {
                if let Some(done) = previous.take() {
                    reporter.state(&done, LayerState::Done);
                }
                let handle = tokio::runtime::Handle::current();
                let stream = handle
                    .block_on(client.open_blob_stream(&repo, d))
                    .map_err(|e| {
                        hoist_oci::Error::io(
                            format!("fetching layer {} from {repo}", d.digest),
                            std::io::Error::other(e),
                        )
                    })?;
                // The archive's own line counts what is delivered: a layer is only fetched.
                let id = d.digest.to_string();
                reporter.state(&id, LayerState::Fetching);
                previous = Some(id.clone());
                let reader =
                    tokio_util::io::SyncIoBridge::new_with_handle(Watched::new(stream), handle);
                Ok(Box::new(Counting::new(reader, &reporter, &id, d.size)))
            };
            hoist_oci::archive::write_docker_archive_streamed(
                &manifest, &config, &names, &mut open, out,
            )?;
            if let Some(done) = previous.take() {
                reporter.state(&done, LayerState::Done);
            }
            Ok(())
        }
    }
}

/// Write a registry image to a docker archive (a file, or stdout), streaming each layer from
/// the registry into the archive: nothing is cached.
pub async fn archive_from_registry(
    client: &Client,
    image: RemoteImage,
    path: ArchivePath,
    names: Vec<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    announce(reporter, &image.manifest.value().layers);
    let produce = image.producer(client.clone(), names, reporter.clone());
    write_archive_with(path, reporter.clone(), produce).await
}

/// Load a registry image into the Docker daemon, the archive streamed from the registry into
/// the daemon's load request: nothing is cached.
pub async fn load_from_registry(
    config: &Config,
    client: &Client,
    image: RemoteImage,
    names: Vec<String>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let docker = daemon::connect(config).await?;
    announce(reporter, &image.manifest.value().layers);
    let produce = image.producer(client.clone(), names, reporter.clone());
    daemon::load_archive(&docker, reporter, move |out| produce(out)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_pushed_largest_first_and_none_is_lost() {
        let sizes = [10u64, 500, 3, 500, 70];
        let layers: Vec<Descriptor> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                Descriptor::new(
                    MediaType::OCI_LAYER_GZIP,
                    Digest::sha256_of(&[i as u8]),
                    size,
                )
            })
            .collect();
        let order: Vec<&Descriptor> = largest_first(&layers, |d| d.size);
        let got: Vec<u64> = order.iter().map(|d| d.size).collect();
        assert_eq!(got, [500, 500, 70, 10, 3]);
        // Equal sizes keep the manifest's order (a stable sort), and every layer is there once.
        assert_eq!(order[0].digest, layers[1].digest);
        assert_eq!(order[1].digest, layers[3].digest);
        let mut digests: Vec<_> = order.iter().map(|d| d.digest.to_string()).collect();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), layers.len());
    }
}
