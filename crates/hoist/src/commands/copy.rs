//! `hoist copy` and its short forms: wiring a source to a destination through the libraries.
//!
//! The CLI moves no bytes itself: `hoist-registry` pushes files and pulls into files or verified
//! streams, `hoist-oci` reads and writes layouts, `hoist-unpack` applies layers. This module
//! picks the calls for each pair and reports progress.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_oci::archive::SpoolOptions;
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Compression, Descriptor, Digest, Reference};

use super::format::{image_as, push_reference};
use super::local::{
    choose_archive_image, claim_layout, copy_between_layouts, release_failed, release_if_no_blobs,
    spool_archive, spool_archive_to_layout, tag_layout, unpack_from_layout, write_archive,
    write_runtime_config,
};
use super::remote::{
    RemoteImage, archive_from_registry, copy_between_registries, load_from_registry, pull_image,
    pull_manifest, push_image, unpack_from_registry,
};
use super::{daemon, registry};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::transport::Location;

/// Run a copy on a fresh runtime. Returns the digest of the manifest (or with `--all` the
/// index) written at a registry or layout destination; `None` for the other destinations.
///
/// # Errors
/// Whatever failed, with context.
pub fn run(
    config: &Config,
    source: &Location,
    destination: &Location,
    operation: &str,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    reporter.send(Event::Start {
        operation: operation.to_string(),
        source: source.to_string(),
        destination: destination.to_string(),
    });
    let runtime = super::runtime()?;
    let result = runtime.block_on(crate::interrupt::interruptible_with(
        copy(config, source, destination, reporter),
        on_signal(source, destination, config.recompress),
        |notice| reporter.tell(notice),
    ));
    // Whatever still runs (a blocking call between two reads) stops with the process. After
    // an interruption such work may find the runtime gone and panic on its way out: the
    // interruption is what happened, and what the user is told; the panic is not news.
    if crate::interrupt::raised() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    let (error, causes) = match &result {
        Ok(_) => (None, Vec::new()),
        Err(e) => {
            let (message, causes) = crate::errors::said(e);
            (Some(message), causes)
        }
    };
    reporter.send(Event::Finish {
        ok: result.is_ok(),
        interrupted: result.is_err() && crate::interrupt::raised(),
        error,
        causes,
    });
    result
}

/// What a copy does on Ctrl-C. Local work fails at its next read or write, and its error path
/// cleans up (a docker archive spooled into the cache for a push is removed on the way out,
/// which takes a moment). A push finishes the chunks it is sending and saves where each
/// upload stands (cutting one mid-body loses its session with distribution 2.8), within
/// [`crate::interrupt::PUSH_GRACE`], and says so at once; a second Ctrl-C cuts them.
fn on_signal(
    source: &Location,
    destination: &Location,
    recompress: bool,
) -> crate::interrupt::OnSignal {
    use crate::interrupt::{CLEANUP_GRACE, CUT_MID_CHUNK, FINISHING_CHUNKS, OnSignal, PUSH_GRACE};
    let message = interrupted_message(source, destination, recompress);
    match destination {
        Location::Registry { .. } => OnSignal {
            notice: Some(FINISHING_CHUNKS),
            cut: Some(CUT_MID_CHUNK),
            ..OnSignal::new(PUSH_GRACE.max(CLEANUP_GRACE), message)
        },
        _ => OnSignal::new(CLEANUP_GRACE, message),
    }
}

/// What an interrupted copy tells the user about running it again. Only a push continues where
/// it stopped (from the daemon or an archive, after reading the image again unless its export
/// was complete; from another registry, after reading again from the source what the
/// destination has, to verify it); a pull or a layout copy keeps the blobs it verified (the layout is not
/// removed); everything else (a daemon export, an archive, an unpack) removes what it made and
/// starts over.
fn interrupted_message(
    source: &Location,
    destination: &Location,
    recompress: bool,
) -> &'static str {
    match (source, destination) {
        // Recompressed into a transit copy first, which an interruption does not keep: the
        // rerun compresses again, then sends only what the registry lacks.
        (_, Location::Registry { .. }) if recompress => crate::interrupt::RESUMABLE_AFTER_REREAD,
        (
            Location::DockerDaemon { .. } | Location::DockerArchive { .. },
            Location::Registry { .. },
        ) => crate::interrupt::RESUMABLE_AFTER_REREAD,
        (Location::Registry { .. }, Location::Registry { .. }) => {
            crate::interrupt::RESUMABLE_AFTER_VERIFY
        }
        (_, Location::Registry { .. }) => crate::interrupt::RESUMABLE,
        (Location::Registry { .. } | Location::Oci { .. }, Location::Oci { .. }) => {
            crate::interrupt::BLOBS_KEPT
        }
        _ => crate::interrupt::STARTS_OVER,
    }
}

/// The copy; returns what [`run`] returns.
async fn copy(
    config: &Config,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    if config.all_platforms
        && let Some(index) = super::multi::copy_all(config, source, destination, reporter).await?
    {
        return Ok(Some(index));
    }
    // The index alone; a single image goes on as without --multi-arch index-only.
    if config.index_only
        && let Some(index) =
            super::index_only::copy_index(config, source, destination, reporter).await?
    {
        return Ok(Some(index));
    }
    // An image whose layers change compression goes its own way; an artifact the usual one.
    if config.recompress
        && super::recompress::applies(source, destination)
        && let Some(copied) = super::recompress::copy(config, source, destination, reporter).await?
    {
        return Ok(Some(copied));
    }
    match (source, destination) {
        (Location::DockerDaemon { name }, Location::Registry { reference }) => {
            let pushed =
                super::daemon_push::push_from_daemon(config, name, reference, reporter).await?;
            return Ok(Some(pushed));
        }
        // Straight into the destination layout, unless the cache already has the export.
        // The layout is tagged as given, else with the image's own tag, as a pull tags it.
        (Location::DockerDaemon { name }, Location::Oci { dir, tag }) => {
            let tag = tag.clone().or_else(|| super::multi::source_tag(source));
            let exported =
                daemon::export_to_layout(config, name, dir, tag.as_deref(), reporter).await?;
            if exported.is_some() {
                return Ok(exported);
            }
        }
        // Straight into the destination layout.
        (Location::Registry { reference }, Location::Oci { dir, tag }) => {
            let client = registry::client(config)?;
            // A failed pull keeps the blobs it verified (the next run skips them); a layout
            // it made and put no blob in goes.
            let claim = claim_layout(dir).await?;
            let format = config.manifest_format;
            let pulled =
                match pull_manifest(&client, config, reference, claim.layout(), format, reporter)
                    .await
                {
                    Ok(pulled) => pulled,
                    Err(e) => return Err(release_if_no_blobs(claim, e).await),
                };
            let tag = tag.clone().or_else(|| reference.tag().map(str::to_string));
            tag_layout(dir, tag.as_deref(), &pulled).await?;
            drop(claim);
            return Ok(Some(pulled.digest));
        }
        // Straight into the destination layout.
        (Location::DockerArchive { path, reference }, Location::Oci { dir, tag }) => {
            let tag = tag.clone().or_else(|| super::multi::source_tag(source));
            let written = spool_archive_to_layout(
                config,
                path,
                reference.as_deref(),
                dir,
                tag.as_deref(),
                reporter,
            )
            .await?;
            return Ok(Some(written));
        }
        // Layers stream from the registry into the unpacker; nothing is cached.
        (Location::Registry { reference }, Location::Rootfs { dir }) => {
            let client = registry::client(config)?;
            unpack_from_registry(&client, config, reference, dir, reporter).await?;
            return Ok(None);
        }
        // An artifact goes as it is; an image the usual way, below.
        (Location::Oci { dir, tag }, Location::Registry { .. } | Location::Oci { .. }) => {
            let copied = super::artifact::copy_from_layout(
                config,
                dir,
                tag.as_deref(),
                destination,
                reporter,
            )
            .await?;
            if copied.is_some() {
                return Ok(copied);
            }
        }
        (Location::Registry { reference: from }, Location::Registry { reference: to }) => {
            let client = registry::client(config)?;
            let copied = copy_between_registries(&client, config, from, to, reporter).await?;
            return Ok(Some(copied.digest));
        }
        // Layers stream from the registry into the archive (a file, stdout, or the daemon's
        // load); zstd images go through a layout, which decompresses them.
        (
            Location::Registry { reference },
            Location::DockerArchive {
                path,
                reference: name,
            },
        ) => {
            let client = registry::client(config)?;
            if let Some(image) = RemoteImage::fetch(&client, config, reference).await? {
                let names = name
                    .clone()
                    .map_or_else(|| archive_names(reference), |n| vec![n]);
                archive_from_registry(&client, image, path.clone(), names, reporter).await?;
                return Ok(None);
            }
        }
        (Location::Registry { reference }, Location::DockerDaemon { name }) => {
            let client = registry::client(config)?;
            if let Some(image) = RemoteImage::fetch(&client, config, reference).await? {
                load_from_registry(config, &client, image, vec![name.clone()], reporter).await?;
                return Ok(None);
            }
        }
        _ => {}
    }
    // Every other pair goes through an image in a layout: the source's own, or one spooled into
    // the cache; the destination is written from there (a rootfs-tar: needs files: it reads
    // each layer twice).
    // Archive layers are plain tars: a registry wants them compressed (as docker push and
    // skopeo send them); a rootfs, an archive or the daemon do not.
    let compression = match destination {
        Location::Registry { .. } => config.compression,
        _ => Compression::None,
    };
    let staged = stage(config, source, compression, reporter).await?;
    // The transit copy, if any, goes when `staged` is dropped.
    deliver(config, &staged, source, destination, reporter).await
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
    pub(super) transit: Option<PathBuf>,
}

/// The transit copy, if there is one, is deleted when the staged image is dropped: after a
/// copy, on its error path, and when an interrupted copy's future is dropped rather than
/// finished (a second Ctrl-C stops a push at once).
impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(dir) = self.transit.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A transit directory being filled, removed when dropped (on a failure, or when an
/// interrupted copy's future is dropped) unless handed on with [`TransitGuard::keep`].
pub(super) struct TransitGuard(Option<PathBuf>);

impl TransitGuard {
    /// Guard `dir`.
    pub(super) fn new(dir: PathBuf) -> Self {
        TransitGuard(Some(dir))
    }

    /// The directory guarded.
    pub(super) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The directory, no longer removed by this guard (its new owner removes it).
    pub(super) fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TransitGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Bring the source image into a layout. Uncompressed layers of a docker archive are
/// compressed with `compression` on the way in (`Compression::None` keeps them as stored).
pub async fn stage(
    config: &Config,
    source: &Location,
    compression: Compression,
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
            // Owned by the spooling task: it removes the copy whenever it fails, also after
            // an interruption that stopped waiting for it.
            let transit = TransitGuard::new(transit_dir(config, "archive")?);
            let path = path.clone();
            let reference = reference.clone();
            let platform = config.platform.clone();
            // The transit layout is found by manifest, never by tag.
            let options = SpoolOptions::new()
                .tag_images(false)
                .platform(platform.clone())
                .compress_layers(
                    compression,
                    config.level_for(compression),
                    daemon::compression_threads(),
                );
            let reporter = reporter.clone();
            let (layout, image, names, transit) = tokio::task::spawn_blocking(move || {
                let layout = Layout::create(transit.path())?;
                let shown = (&reporter, LayerState::Reading);
                let spooled = spool_archive(&path, &layout, options, shown)?;
                let chosen = choose_archive_image(&spooled, reference.as_deref())?;
                let image = layout.image_at(&chosen.manifest, platform.as_ref())?;
                let names = match &reference {
                    Some(r) => vec![r.clone()],
                    None => chosen.tags.clone(),
                };
                anyhow::Ok((layout, image, names, transit.keep()))
            })
            .await??;
            Ok(Staged {
                layout,
                image,
                names,
                transit: Some(transit),
            })
        }
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            // The transit directory is this command's own: no claim needed. It goes on any
            // failure, and when an interruption drops this future.
            let transit = TransitGuard::new(transit_dir(config, "pull")?);
            let layout = Layout::create(transit.path())?;
            // A transit copy for an archive, the daemon or a rootfs: as stored.
            let image = pull_image(&client, config, reference, &layout, None, reporter).await?;
            Ok(Staged {
                layout,
                image,
                names: archive_names(reference),
                transit: Some(transit.keep()),
            })
        }
        Location::DockerDaemon { name } => {
            let docker = daemon::connect(config).await?;
            let transit = transit_dir(config, "export")?;
            match daemon::export_once(config, &docker, name, &transit, reporter).await {
                Ok((layout, image)) => Ok(Staged {
                    layout,
                    image,
                    names: daemon_archive_names(name),
                    transit: Some(transit),
                }),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&transit);
                    Err(e)
                }
            }
        }
        Location::Rootfs { .. } => bail!("rootfs: is a destination only"),
        Location::RootfsTar { .. } => bail!("rootfs-tar: is a destination only"),
    }
}

/// Write a staged image to the destination; returns what [`run`] returns.
async fn deliver(
    config: &Config,
    staged: &Staged,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    match destination {
        Location::Oci { dir, tag } => {
            // The daemon exports uncompressed layers: a layout gets them compressed (once,
            // remembered like for a push) unless --compression none.
            let image = match source {
                Location::DockerDaemon { .. } => {
                    daemon::compressed(config, &staged.layout, &staged.image, reporter).await?
                }
                _ => staged.image.clone(),
            };
            let image = image_as(&image, config.manifest_format)?;
            let claim = claim_layout(dir).await?;
            let source_tag = super::multi::source_tag(source);
            let copied = async {
                copy_between_layouts(
                    staged.layout.clone(),
                    image.manifest.clone(),
                    claim.layout().clone(),
                    reporter.clone(),
                )
                .await?;
                tag_layout(
                    dir,
                    tag.as_deref().or(source_tag.as_deref()),
                    &image.descriptor,
                )
                .await?;
                anyhow::Ok(Some(image.descriptor.digest.clone()))
            }
            .await;
            match copied {
                // An export from the daemon (here out of the export cache) removes a layout it
                // created when it fails, as the export straight into the layout does; a copy
                // between layouts keeps the verified blobs it wrote, for the next run to skip.
                Err(e) if matches!(source, Location::DockerDaemon { .. }) => {
                    release_failed(claim).await;
                    Err(e)
                }
                other => {
                    drop(claim);
                    other
                }
            }
        }
        Location::DockerArchive { path, reference } => {
            let names = match reference {
                Some(r) => vec![r.clone()],
                None => staged.names.clone(),
            };
            write_archive(config, staged, path.clone(), names, reporter.clone()).await?;
            Ok(None)
        }
        Location::Registry { reference } => {
            let image = image_as(&staged.image, config.manifest_format)?;
            let reference = push_reference(
                reference,
                &staged.image.descriptor.digest,
                &image.descriptor.digest,
            );
            let client = registry::client(config)?;
            let found = (&image.descriptor, &image.manifest);
            let pushed =
                push_image(&client, &staged.layout, found, &reference, None, reporter).await?;
            Ok(Some(pushed))
        }
        Location::Rootfs { dir } => {
            unpack_from_layout(
                staged.layout.clone(),
                staged.image.clone(),
                dir.clone(),
                config.unpack_limits,
                reporter.clone(),
            )
            .await?;
            write_runtime_config(config, &staged.image.config)?;
            Ok(None)
        }
        Location::RootfsTar { path } => {
            super::flatten::flatten_to(config, staged, path.clone(), reporter).await?;
            write_runtime_config(config, &staged.image.config)?;
            Ok(None)
        }
        Location::DockerDaemon { name } => {
            daemon::load(
                config,
                &staged.layout,
                &staged.image,
                vec![name.clone()],
                reporter,
            )
            .await?;
            Ok(None)
        }
    }
}

/// A fresh directory under the cache for an image in transit.
pub(super) fn transit_dir(config: &Config, kind: &str) -> anyhow::Result<PathBuf> {
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

/// The names an image pulled as `reference` gets in an archive: its tag, or none for one
/// pulled by digest alone (as `docker save` leaves an untagged image; `:latest` would move the
/// user's latest on `docker load`).
fn archive_names(reference: &Reference) -> Vec<String> {
    if reference.tag().is_none() && reference.digest().is_some() {
        Vec::new()
    } else {
        vec![reference.familiar_tagged()]
    }
}

/// The names a daemon image named `name` gets in an archive: the name when it is `NAME:TAG`,
/// none for an image ID or a digest reference, as `docker save` writes those (an invented
/// `:latest` would move the user's latest on `docker load`).
fn daemon_archive_names(name: &str) -> Vec<String> {
    if crate::transport::daemon_name_is_tag(name) {
        vec![name.to_string()]
    } else {
        Vec::new()
    }
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

/// A progress line for each layer, once per digest however often the image lists it.
pub fn announce(reporter: &Reporter, layers: &[Descriptor]) {
    let mut seen = std::collections::HashSet::new();
    for layer in layers.iter().filter(|l| seen.insert(&l.digest)) {
        reporter.send(Event::Layer {
            id: layer.digest.to_string(),
            size: Some(layer.size),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_pulled_by_digest_alone_is_untagged_in_an_archive() {
        let hex = "b".repeat(64);
        let parse = |s: &str| Reference::parse(s).expect("reference");
        let by_digest = parse(&format!("reg.example/team/app@sha256:{hex}"));
        assert!(archive_names(&by_digest).is_empty());
        let both = parse(&format!("reg.example/team/app:2@sha256:{hex}"));
        assert_eq!(archive_names(&both), vec!["reg.example/team/app:2"]);
        assert_eq!(archive_names(&parse("alpine")), vec!["alpine:latest"]);
    }

    #[test]
    fn a_daemon_image_named_by_id_or_digest_is_untagged_in_an_archive() {
        let hex = "c".repeat(64);
        let name = |s: &str| match Location::parse(&format!("docker-daemon:{s}")) {
            Ok(Location::DockerDaemon { name }) => name,
            other => panic!("{s}: {other:?}"),
        };
        for untagged in [
            format!("app@sha256:{hex}"),
            format!("localhost:5000/app@sha256:{hex}"),
            format!("sha256:{hex}"),
            "e68b8f42f52e".to_string(),
        ] {
            assert!(
                daemon_archive_names(&name(&untagged)).is_empty(),
                "{untagged}"
            );
        }
        assert_eq!(daemon_archive_names(&name("app")), vec!["app:latest"]);
        assert_eq!(
            daemon_archive_names(&name("localhost:5000/a/b:1")),
            vec!["localhost:5000/a/b:1"]
        );
    }

    #[test]
    fn a_push_is_given_time_to_finish_its_chunks_and_says_so() {
        use crate::interrupt::{CLEANUP_GRACE, PUSH_GRACE};
        let at = |s: &str| Location::parse(s).expect("location");
        for from in [
            "oci:/l:1",
            "docker-daemon:app",
            "docker-archive:/a.tar",
            "docker://reg.example/a",
        ] {
            let on = on_signal(&at(from), &at("docker://reg.example/app"), false);
            assert_eq!(on.grace, PUSH_GRACE, "{from}");
            assert!(
                on.notice.is_some_and(|n| n.contains("Ctrl-C again")),
                "{from}"
            );
            assert!(on.cut.is_some(), "{from}");
        }
        assert!(
            PUSH_GRACE >= CLEANUP_GRACE,
            "an archive's spool is removed in time too"
        );
        let local = on_signal(&at("docker://reg.example/a"), &at("oci:/l:1"), false);
        assert_eq!(local.grace, CLEANUP_GRACE);
        assert!(local.notice.is_none() && local.cut.is_none());
    }

    #[test]
    fn only_a_push_promises_to_continue_where_it_stopped() {
        use crate::interrupt::{
            BLOBS_KEPT, RESUMABLE, RESUMABLE_AFTER_REREAD, RESUMABLE_AFTER_VERIFY, STARTS_OVER,
        };
        let at = |s: &str| Location::parse(s).expect("location");
        let said = |from: &str, to: &str| interrupted_message(&at(from), &at(to), false);
        for from in ["docker-daemon:app", "docker-archive:/a.tar"] {
            assert_eq!(
                said(from, "docker://reg.example/app"),
                RESUMABLE_AFTER_REREAD,
                "{from}"
            );
        }
        // Streamed with no local copy: the rerun reads what the destination has again.
        assert_eq!(
            said("docker://reg.example/a", "docker://other.example/app"),
            RESUMABLE_AFTER_VERIFY
        );
        assert_eq!(said("oci:/l:1", "docker://reg.example/app"), RESUMABLE);
        // --recompress compresses into a transit copy first, which is not kept.
        for from in ["oci:/l:1", "docker://reg.example/a"] {
            assert_eq!(
                interrupted_message(&at(from), &at("docker://other.example/app"), true),
                RESUMABLE_AFTER_REREAD,
                "{from}"
            );
        }
        assert_eq!(
            interrupted_message(&at("docker://reg.example/a"), &at("oci:/l:1"), true),
            BLOBS_KEPT
        );
        assert_eq!(said("docker://reg.example/app", "oci:/l:1"), BLOBS_KEPT);
        assert_eq!(said("oci:/a:1", "oci:/b:1"), BLOBS_KEPT);
        for (from, to) in [
            ("docker://reg.example/app", "rootfs:/r"),
            ("docker://reg.example/app", "rootfs-tar:/r.tar"),
            ("oci:/l:1", "rootfs:/r"),
            ("docker-daemon:app", "oci:/l:1"),
            ("docker-archive:/a.tar", "oci:/l:1"),
            ("oci:/l:1", "docker-archive:/a.tar"),
            ("docker://reg.example/app", "docker-daemon:app"),
        ] {
            assert_eq!(said(from, to), STARTS_OVER, "{from} -> {to}");
        }
    }
}
