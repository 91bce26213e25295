//! `--recompress`: an image copied to a registry or a layout with every layer in the
//! compression `--compression` names, as `skopeo copy --dest-compress-format` does (gzip layers
//! become zstd ones, or the other way round; `none` stores plain tars).
//!
//! The image is brought into a layout first: a registry's is pulled into a transit directory
//! in the cache (every blob verified), a layout's is read where it is. Each layer in another
//! compression is then decompressed, checked against the `diff_id` its config lists, and
//! compressed into the destination layout (or, for a registry, into the transit one, which
//! is pushed from), in one pass through bounded buffers. The config does not change: its
//! `diff_ids` name the uncompressed tars, so the image is the same image with other blobs.
//!
//! The manifest is written in `--format`'s format if given (`v2s2` allows only gzip and
//! none). Else a Docker image stays one when its new layers can be Docker ones (gzip, none),
//! as skopeo keeps it, and becomes OCI for zstd, which has no Docker media type; with `--all`
//! the index follows the same rule ([`written_format`]). Layers already in the
//! wanted compression, and foreign or non-distributable layers (whose bytes live elsewhere),
//! are not recompressed: they are copied as they are, as any copy copies them (within one
//! registry mounted, not downloaded; from a layout pushed from where they are). An image with
//! no layer to change, and an artifact, take the usual paths (streams and mounts, no
//! staging), with the same `--format`.
//!
//! A layer compressed here is remembered by `diff_id`, as the daemon's exports are: a rerun
//! (after a failed push, or for another tag or registry) that finds the remembered blob at the
//! destination neither downloads the source layer, compresses it nor sends it again.

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::{Context, bail};
use hoist_oci::convert::{ManifestFormat, convert_manifest};
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Compression, Descriptor, Digest, ImageManifest, MediaType, RawJson, Reference};
use hoist_registry::{Client, Repo};

use super::copy::{Staged, TransitGuard, transit_dir};
use super::daemon::remembered;
use super::format::{image_as, manifest_as, push_reference, stored_media_type};
use super::local::{claim_layout, tag_layout};
use super::registry;
use super::remote::{fetch_config, fetch_manifest, pull_into, push_blobs_from, push_manifest};
use crate::config::Config;
use crate::progress::{LayerState, Reporter};
use crate::transport::Location;

mod image;

use image::{Recompression, check_diff_ids};

/// Whether `--recompress` changes how `source` is copied to `destination`: between registries
/// and layouts. (The daemon's layers and a docker archive's plain ones are compressed with
/// `--compression` on every path already.)
pub fn applies(source: &Location, destination: &Location) -> bool {
    let store = |l: &Location| matches!(l, Location::Registry { .. } | Location::Oci { .. });
    store(source) && store(destination)
}

/// Copy the container image `source` names to `destination` with its layers recompressed;
/// returns the digest of the manifest written. `None` when the source is an artifact or has
/// no layer to recompress: the caller copies it the usual way (`--format` still applies).
///
/// # Errors
/// Whatever fails, with context; a layout destination keeps the verified blobs it got.
pub async fn copy(
    config: &Config,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    let client = registry::client_for(config, &[source, destination])?;
    let Some(found) = look(config, client.as_ref(), source, None).await? else {
        return Ok(None);
    };
    match destination {
        Location::Oci { dir, tag } => {
            let claim = claim_layout(dir).await?;
            let target = Target::Layout(claim.layout());
            let written = recompress(config, client.as_ref(), found, &target, reporter).await?;
            let source_tag = match source {
                Location::Oci { tag, .. } => tag.clone(),
                Location::Registry { reference } => reference.tag().map(str::to_string),
                _ => None,
            };
            tag_layout(dir, tag.as_deref().or(source_tag.as_deref()), &written).await?;
            drop(claim);
            Ok(Some(written.digest))
        }
        Location::Registry { reference } => {
            let client = client.as_ref().context("no registry client")?;
            let target = Target::registry(client, reference)?;
            let written = recompress(config, Some(client), found, &target, reporter).await?;
            Ok(Some(written.digest))
        }
        other => bail!("--recompress writes to a registry or an OCI layout, not to {other}"),
    }
}

/// `--all`'s copy of the image `child` of the source's index (by digest) with its layers
/// recompressed; `target` is the claimed layout of a layout destination. Returns the
/// descriptor of the manifest written; `None` when [`copy`] would return it, and the caller
/// copies the image the usual way.
///
/// # Errors
/// As [`copy`].
pub async fn copy_child(
    config: &Config,
    client: Option<&Client>,
    (source, destination): (&Location, &Location),
    target: Option<&Layout>,
    child: &Descriptor,
    reporter: &Reporter,
) -> anyhow::Result<Option<Descriptor>> {
    let Some(found) = look(config, client, source, Some(child)).await? else {
        return Ok(None);
    };
    let target = match destination {
        Location::Registry { reference } => {
            let client = client.context("no registry client")?;
            let pinned = reference
                .without_tag_or_digest()
                .with_digest(child.digest.clone());
            Target::registry(client, &pinned)?
        }
        _ => Target::Layout(target.context("no claimed layout")?),
    };
    let written = recompress(config, client, found, &target, reporter).await?;
    // The index lists the image where the source's index did.
    Ok(Some(Descriptor {
        platform: child.platform.clone(),
        ..written
    }))
}

/// A source image found worth recompressing, not yet read.
enum Found {
    /// In a registry: its manifest, verified.
    Registry {
        repo: Repo,
        manifest: Box<RawJson<ImageManifest>>,
    },
    /// In a layout, read where it is.
    Layout { layout: Layout, image: Box<Image> },
}

/// The source's container image (`child` picks an image of its index by digest), when it has
/// a layer to recompress (see [`worth_it`]); `None` otherwise.
async fn look(
    config: &Config,
    client: Option<&Client>,
    source: &Location,
    child: Option<&Descriptor>,
) -> anyhow::Result<Option<Found>> {
    match source {
        Location::Registry { reference } => {
            let client = client.context("no registry client")?;
            let reference = match child {
                Some(c) => reference
                    .without_tag_or_digest()
                    .with_digest(c.digest.clone()),
                None => reference.clone(),
            };
            let (repo, manifest) = fetch_manifest(client, config, &reference).await?;
            let worth = worth_it(manifest.value(), config.compression);
            let manifest = Box::new(manifest);
            Ok(worth.then_some(Found::Registry { repo, manifest }))
        }
        Location::Oci { dir, tag } => {
            let (dir, tag, child) = (dir.clone(), tag.clone(), child.cloned());
            let compression = config.compression;
            // A child is picked by digest; an image named by tag, by the platform asked for.
            let platform = match child {
                Some(_) => None,
                None => config.platform.clone(),
            };
            tokio::task::spawn_blocking(move || {
                let layout = Layout::open(&dir)
                    .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
                let at = match child {
                    Some(child) => child,
                    None => layout.resolve(tag.as_deref())?,
                };
                let (_, manifest) = layout.manifest_at(&at, platform.as_ref())?;
                if !worth_it(manifest.value(), compression) {
                    return Ok(None);
                }
                let image = layout.image_at(&at, platform.as_ref())?;
                let image = Box::new(image);
                Ok(Some(Found::Layout { layout, image }))
            })
            .await?
        }
        other => bail!("--recompress copies from a registry or an OCI layout, not from {other}"),
    }
}

/// Where the recompressed image goes.
enum Target<'a> {
    /// A registry repository, the manifest pushed to `reference`.
    Registry {
        client: &'a Client,
        repo: Repo,
        reference: Reference,
    },
    /// A layout claimed by the caller (the manifest is stored, not tagged).
    Layout(&'a Layout),
}

impl<'a> Target<'a> {
    fn registry(client: &'a Client, reference: &Reference) -> anyhow::Result<Self> {
        Ok(Target::Registry {
            client,
            repo: Repo::from_reference(reference)?,
            reference: reference.clone(),
        })
    }

    /// Mount `blob` from `from` when the destination is another repository of its registry
    /// (no byte moves); whether it is there now. A registry that declines, or another
    /// destination, gets it the usual way.
    async fn mount(&self, blob: &Descriptor, from: &Repo) -> anyhow::Result<bool> {
        match self {
            Target::Registry { client, repo, .. }
                if repo.registry() == from.registry() && repo.name() != from.name() =>
            {
                client
                    .mount_blob(repo, &blob.digest, from.name())
                    .await
                    .with_context(|| format!("mounting {} from {from} into {repo}", blob.digest))
            }
            _ => Ok(false),
        }
    }

    /// Whether the destination has `blob` (a layout's copy is rehashed before it is trusted).
    async fn has(&self, blob: &Descriptor) -> anyhow::Result<bool> {
        match self {
            Target::Registry { client, repo, .. } => client
                .blob_exists(repo, &blob.digest)
                .await
                .with_context(|| format!("asking {repo} for {}", blob.digest)),
            Target::Layout(layout) => {
                let (layout, blob) = ((*layout).clone(), blob.clone());
                Ok(tokio::task::spawn_blocking(move || layout.has_verified_blob(&blob)).await??)
            }
        }
    }
}

/// Stage the found image, recompress it and write it to `target`; returns the descriptor of
/// the manifest written.
async fn recompress(
    config: &Config,
    client: Option<&Client>,
    found: Found,
    target: &Target<'_>,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    let manifest = match &found {
        Found::Registry { manifest, .. } => manifest,
        Found::Layout { image, .. } => &image.manifest,
    };
    let format = written_format(config, &stored_media_type(manifest));
    // What the format cannot describe is refused before a layer is moved or compressed.
    let planned = RawJson::from_value(planned(&oci_manifest(manifest)?, config.compression))?;
    let oci = MediaType::new(MediaType::OCI_MANIFEST);
    manifest_as(&planned, oci, Some(format))?;
    let (staged, present) = stage(config, client, found, target, reporter).await?;
    // A transit copy goes when `staged` is dropped.
    deliver(config, format, &staged, present, target, reporter).await
}

/// The format a recompressed manifest (or, with `--all`, index) stored as `stored` is written
/// in: `--format`'s; else the source's own when its layers can be written in it (a Docker
/// image or list stays one with gzip or plain layers, as skopeo keeps it); else OCI (Docker
/// has no zstd layer media type that other tools read).
pub fn written_format(config: &Config, stored: &MediaType) -> ManifestFormat {
    match config.manifest_format {
        Some(format) => format,
        None if stored.is_docker() && config.compression != Compression::Zstd => {
            ManifestFormat::DockerV2S2
        }
        None => ManifestFormat::Oci,
    }
}

/// The found image in a layout, and the blobs the destination was found to have. A layer
/// whose final form (itself, or its remembered recompression) the destination has is not
/// downloaded from a registry.
async fn stage(
    config: &Config,
    client: Option<&Client>,
    found: Found,
    target: &Target<'_>,
    reporter: &Reporter,
) -> anyhow::Result<(Staged, Present)> {
    let (repo, manifest) = match found {
        Found::Layout { layout, image } => {
            let staged = Staged {
                layout,
                image: *image,
                names: Vec::new(),
                transit: None,
            };
            return Ok((staged, Present::default()));
        }
        Found::Registry { repo, manifest } => (repo, *manifest),
    };
    let client = client.context("no registry client")?;
    let m = manifest.value();
    let image_config = fetch_config(client, &repo, &m.config).await?;
    let diff_ids = &image_config.value().rootfs.diff_ids;
    // Refused before anything is downloaded.
    check_diff_ids(manifest.digest(), m, diff_ids)?;
    let mut present = Present::default();
    let mut wanted = Vec::with_capacity(m.layers.len());
    for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
        let Some(done) = final_form(config, layer, diff_id) else {
            wanted.push(layer.clone());
            continue;
        };
        if target.has(&done).await? {
            present.found.insert(done.digest);
        } else if target.mount(&done, &repo).await? {
            present.mounted.insert(done.digest);
        } else {
            wanted.push(layer.clone());
        }
    }
    let to_pull = RawJson::from_value(ImageManifest {
        layers: wanted,
        ..m.clone()
    })?;
    let transit = TransitGuard::new(transit_dir(config, "recompress")?);
    let layout = Layout::create(transit.path())?;
    let shown = (reporter, LayerState::Fetching);
    pull_into(client, &repo, &to_pull, &layout, None, shown).await?;
    layout.write_json(&manifest)?;
    let image = Image {
        descriptor: manifest.descriptor(stored_media_type(&manifest)),
        manifest,
        config: image_config,
    };
    let staged = Staged {
        layout,
        image,
        names: Vec::new(),
        transit: Some(transit.keep()),
    };
    Ok((staged, present))
}

/// Blobs the destination was found to have while staging.
#[derive(Default)]
struct Present {
    /// Found there.
    found: HashSet<Digest>,
    /// Mounted there from the source repository.
    mounted: HashSet<Digest>,
}

impl Present {
    /// How a layer the destination has got there, when it does.
    fn state(&self, digest: &Digest) -> Option<LayerState> {
        if self.mounted.contains(digest) {
            Some(LayerState::Mounted)
        } else if self.found.contains(digest) {
            Some(LayerState::Skipped)
        } else {
            None
        }
    }
}

/// A layer's form once recompressed, when it is known without compressing: the layer itself
/// when it needs no change, else its remembered recompression.
fn final_form(config: &Config, layer: &Descriptor, diff_id: &Digest) -> Option<Descriptor> {
    if !needs_recompression(layer, config.compression) {
        return Some(layer.clone());
    }
    remembered(config, diff_id)
        .filter(|known| known.media_type.layer_compression() == Some(config.compression))
}

/// Write the staged image, recompressed, to `target`; returns the descriptor of the manifest
/// written, in `format`. `present`: blobs the destination was found to have while staging.
async fn deliver(
    config: &Config,
    format: ManifestFormat,
    staged: &Staged,
    present: Present,
    target: &Target<'_>,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    match target {
        Target::Registry {
            client,
            repo,
            reference,
        } => {
            // A pulled image sits in this command's own transit layout: the new layers go
            // beside the old. A layout's own is never written to: a transit one takes them.
            let (into, _transit) = match &staged.transit {
                Some(_) => (staged.layout.clone(), None),
                None => {
                    let dir = TransitGuard::new(transit_dir(config, "recompress")?);
                    (Layout::create(dir.path())?, Some(dir))
                }
            };
            // The transit guard lives until the push is done.
            async {
                let job = Recompression {
                    config,
                    from: &staged.layout,
                    into: &into,
                    reporter,
                    last_step: false,
                    present,
                    kept_in_source: Mutex::default(),
                };
                let image = job.run(&staged.image, target).await?;
                let image = image_as(&image, Some(format))?;
                let reference = push_reference(
                    reference,
                    &staged.image.descriptor.digest,
                    &image.descriptor.digest,
                );
                // New layers are pushed from `into`, kept ones the registry lacks from where
                // they are; those the registry was found to have are not pushed.
                let kept = job.kept_in_source.into_inner().unwrap_or_default();
                let m = image.manifest.value();
                let mut to_push: Vec<(&Layout, &Descriptor)> = Vec::with_capacity(m.layers.len());
                for layer in &m.layers {
                    if to_push.iter().any(|(_, d)| d.digest == layer.digest) {
                        continue;
                    }
                    if into.has_blob(layer)? {
                        to_push.push((&into, layer));
                    } else if kept.contains(&layer.digest) {
                        to_push.push((&staged.layout, layer));
                    }
                }
                let config_blob = (&into, &m.config);
                push_blobs_from(client, repo, config_blob, &to_push, None, reporter).await?;
                let media_type = &image.descriptor.media_type;
                let bytes = image.manifest.bytes();
                let digest = push_manifest(client, repo, &reference, media_type, bytes).await?;
                anyhow::Ok(Descriptor {
                    digest,
                    ..image.descriptor
                })
            }
            .await
        }
        Target::Layout(into) => {
            let job = Recompression {
                config,
                from: &staged.layout,
                into,
                reporter,
                last_step: true,
                present,
                kept_in_source: Mutex::default(),
            };
            let image = job.run(&staged.image, target).await?;
            let image = image_as(&image, Some(format))?;
            into.write_json(&image.manifest)?;
            Ok(image.descriptor)
        }
    }
}

/// Whether `manifest` is a container image with a layer to recompress. Anything else (an
/// artifact, or an image with nothing to change) is copied by the usual paths, which stream
/// and mount blobs instead of staging them.
fn worth_it(manifest: &ImageManifest, compression: Compression) -> bool {
    manifest.is_container_image()
        && manifest
            .layers
            .iter()
            .any(|l| needs_recompression(l, compression))
}

/// `manifest` as an OCI image manifest (Docker media types mapped to OCI ones; an OCI one as
/// it is).
fn oci_manifest(manifest: &RawJson<ImageManifest>) -> anyhow::Result<RawJson<ImageManifest>> {
    let converted = convert_manifest(manifest, ManifestFormat::Oci)
        .with_context(|| format!("reading {} as an OCI image manifest", manifest.digest()))?;
    Ok(converted.document)
}

/// Whether a layer must be recompressed to be in `wanted`: a filesystem layer in another
/// compression whose bytes are the image's own (a foreign or non-distributable layer's live
/// elsewhere, and are kept as they are).
pub fn needs_recompression(layer: &Descriptor, wanted: Compression) -> bool {
    let kind = layer.media_type.as_str();
    let elsewhere =
        !layer.urls.is_empty() || kind.contains("nondistributable") || kind.contains(".foreign.");
    match layer.media_type.layer_compression() {
        Some(stored) => stored != wanted && !elsewhere,
        None => false,
    }
}

/// `manifest` (OCI) as it will be once recompressed to `compression`, but for the new layers'
/// digests and sizes: what `--format` is checked against before any layer is compressed.
pub fn planned(manifest: &RawJson<ImageManifest>, compression: Compression) -> ImageManifest {
    let m = manifest.value();
    let layers = m
        .layers
        .iter()
        .map(|l| match needs_recompression(l, compression) {
            true => Descriptor::new(MediaType::oci_layer(compression), l.digest.clone(), l.size),
            false => l.clone(),
        })
        .collect();
    ImageManifest {
        layers,
        ..m.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str, n: u8) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(&[n]), 10 + u64::from(n))
    }

    #[test]
    fn only_own_filesystem_layers_in_another_compression_are_recompressed() {
        let zstd = Compression::Zstd;
        assert!(needs_recompression(
            &layer(MediaType::OCI_LAYER_GZIP, 1),
            zstd
        ));
        assert!(needs_recompression(&layer(MediaType::OCI_LAYER, 1), zstd));
        assert!(!needs_recompression(
            &layer(MediaType::OCI_LAYER_ZSTD, 1),
            zstd
        ));
        assert!(needs_recompression(
            &layer(MediaType::OCI_LAYER_ZSTD, 1),
            Compression::None
        ));
        // Bytes that live elsewhere, and blobs that are no layer, are kept.
        assert!(!needs_recompression(
            &layer(MediaType::OCI_LAYER_NONDIST_GZIP, 1),
            zstd
        ));
        assert!(!needs_recompression(
            &layer(MediaType::DOCKER_LAYER_FOREIGN, 1),
            zstd
        ));
        let mut with_urls = layer(MediaType::OCI_LAYER_GZIP, 2);
        with_urls.urls = vec!["https://example.com/layer".into()];
        assert!(!needs_recompression(&with_urls, zstd));
        assert!(!needs_recompression(
            &layer("application/vnd.in-toto+json", 3),
            zstd
        ));
    }

    #[test]
    fn the_plan_changes_media_types_only_where_a_layer_is_recompressed() {
        let config = layer(MediaType::OCI_CONFIG, 0);
        let mut annotated = layer(MediaType::OCI_LAYER_GZIP, 1);
        annotated
            .annotations
            .insert("org.example.toc".into(), "of the gzip bytes".into());
        let layers = vec![
            annotated,
            layer(MediaType::OCI_LAYER_ZSTD, 2),
            layer(MediaType::OCI_LAYER_NONDIST_GZIP, 3),
        ];
        let m = RawJson::from_value(ImageManifest::new(config, layers.clone())).expect("json");
        let plan = planned(&m, Compression::Zstd);
        let types: Vec<&str> = plan.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(
            types,
            [
                MediaType::OCI_LAYER_ZSTD,
                MediaType::OCI_LAYER_ZSTD,
                MediaType::OCI_LAYER_NONDIST_GZIP
            ]
        );
        // A recompressed layer's annotations described the old bytes: they are not carried.
        assert!(plan.layers[0].annotations.is_empty());
        assert_eq!(plan.layers[1..], layers[1..]);
        assert_eq!(plan.config, m.value().config);
    }

    #[test]
    fn a_docker_manifest_keeps_its_format_unless_zstd_or_format_says_otherwise() {
        // Global flags before `copy`, `--format` after it.
        let config = |args: &[&str]| {
            let (global, format) = match args {
                ["--format", f] => (vec![], vec!["--format", f]),
                _ => (args.to_vec(), vec![]),
            };
            let mut all = global;
            all.extend(["copy", "--recompress"]);
            all.extend(format);
            all.extend(["oci:/tmp/a:1", "oci:/tmp/b:1"]);
            crate::config::tests::ok(&all).0
        };
        let docker = MediaType::new(MediaType::DOCKER_MANIFEST);
        let docker_list = MediaType::new(MediaType::DOCKER_MANIFEST_LIST);
        let oci = MediaType::new(MediaType::OCI_MANIFEST);
        let v2s2 = ManifestFormat::DockerV2S2;
        for (args, stored, expected) in [
            (&[][..], &docker, v2s2),
            (&["--compression", "none"][..], &docker, v2s2),
            (&["--compression", "gzip"][..], &docker_list, v2s2),
            (&["--compression", "zstd"][..], &docker, ManifestFormat::Oci),
            (
                &["--compression", "zstd"][..],
                &docker_list,
                ManifestFormat::Oci,
            ),
            (&[][..], &oci, ManifestFormat::Oci),
            (&["--format", "oci"][..], &docker, ManifestFormat::Oci),
            (&["--format", "v2s2"][..], &oci, v2s2),
        ] {
            let c = config(args);
            assert_eq!(written_format(&c, stored), expected, "{args:?} {stored}");
        }
    }

    #[test]
    fn only_stores_take_recompression() {
        let parse = |s: &str| crate::transport::Location::parse(s).expect("location");
        let registry = parse("docker://reg.example/app:1");
        let layout = parse("oci:/tmp/x:1");
        assert!(applies(&registry, &layout));
        assert!(applies(&layout, &registry));
        assert!(!applies(&parse("docker-daemon:app:1"), &registry));
        assert!(!applies(&registry, &parse("rootfs:/tmp/root")));
    }
}
