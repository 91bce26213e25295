//! `--all`: a multi-platform image copied whole. Every image its index lists goes first, by
//! digest (once, however often it is listed) and up to four side by side, through the same
//! single-image paths as any copy (mounts within a registry, streams between registries, pulls
//! into and pushes from layouts); then the index's exact bytes, so the destination's index has
//! the source's digest, as with `skopeo copy --all` and `crane copy`. The index goes last, so a
//! failure part-way never leaves a tag naming an index whose images are missing.
//!
//! With `--format`, each image is converted on its way (by the single-image paths) and the
//! index is rewritten in the chosen format (an OCI index or a Docker manifest list), listing
//! the converted images' new digests; its own digest changes with it.
//!
//! Registries and OCI layouts only: an archive, the daemon and a root filesystem hold one image
//! (the command line refuses `--all` for them). A source that is a single image is copied as
//! without `--all`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use hoist_oci::layout::Layout;
use hoist_oci::{AnyManifest, Descriptor, Digest, ImageIndex, MediaType, RawJson, Reference};
use hoist_registry::{Client, Repo};

use super::format::{check_index_as, index_as, manifest_as, push_reference};
use super::local::{claim_layout, copy_between_layouts, tag_layout};
use super::remote::{copy_between_registries, pull_manifest, push_image};
use super::{recompress, registry};
use crate::config::Config;
use crate::progress::Reporter;
use crate::transport::Location;

/// Images of an index copied at once. Each image's blobs already travel side by side, up to
/// the client's limit on blobs in flight, which holds across images too; copying the images
/// one after another left that limit idle while an image waited for its largest blob and for
/// its manifest. Each image is attempted even when another fails (what was copied need not be
/// sent again by the next run), and the first failure in the index's order is reported.
const IMAGES_AT_ONCE: usize = 4;

/// A source's index: its exact bytes and the media type it was stored or served with.
pub(super) struct SourceIndex {
    pub(super) index: RawJson<ImageIndex>,
    pub(super) media_type: MediaType,
}

/// Copy every platform of `source` to `destination`; returns the index's digest. `Ok(None)`
/// (nothing done) when the source is a single image, or a kind of source that can only be one
/// (the caller copies it the usual way).
///
/// # Errors
/// The first image or the index that fails, naming the image's platform and digest.
pub async fn copy_all(
    config: &Config,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    let client = registry::client_for(config, &[source, destination])?;
    let Some(SourceIndex { index, media_type }) = source_index(client.as_ref(), source).await?
    else {
        return Ok(None);
    };
    let children = &index.value().manifests;
    if let Some(child) = children.iter().find(|c| !c.media_type.is_manifest()) {
        bail!(
            "the index lists {} as {}: --all copies an index of images, not an index of \
             indexes",
            child.digest,
            child.media_type
        );
    }
    // An index the chosen format cannot describe is refused before its images are copied.
    check_index_as(&index, config.manifest_format)?;
    // A layout destination is marked in use until the index is written.
    let claim = match destination {
        Location::Oci { dir, .. } => Some(claim_layout(dir).await?),
        _ => None,
    };
    let target = claim.as_ref().map(hoist_oci::Claim::layout);
    // An index may list one image more than once (a hostile 8 MiB one, some 40,000 times):
    // each image is copied once, not once per listing.
    let mut seen = std::collections::HashSet::new();
    let distinct = children.iter().filter(|c| seen.insert(&c.digest));
    let copies = distinct.map(|child| {
        let client = client.as_ref();
        async move {
            let platform = child
                .platform
                .as_ref()
                .map_or_else(|| "no platform".to_string(), ToString::to_string);
            let written = copy_child(config, client, source, destination, target, child, reporter)
                .await
                .with_context(|| format!("copying the image for {platform} ({})", child.digest))?;
            anyhow::Ok((child.digest.clone(), written))
        }
    });
    let copied: Vec<anyhow::Result<(Digest, Descriptor)>> = futures_util::stream::iter(copies)
        .buffered(IMAGES_AT_ONCE)
        .collect()
        .await;
    // Each listed image's digest, and the descriptor of the manifest written for it.
    let written = copied
        .into_iter()
        .collect::<anyhow::Result<BTreeMap<Digest, Descriptor>>>()?;
    let source_digest = index.digest().clone();
    // Recompressed images have new digests: the index is rewritten to list them, in the
    // format the images took.
    let format = match config.recompress {
        true => Some(recompress::written_format(config, &media_type)),
        false => config.manifest_format,
    };
    let (index, media_type) = index_as(&index, media_type, format, &written)?;
    match destination {
        Location::Registry { reference } => {
            let client = client.as_ref().context("no registry client")?;
            let reference = &push_reference(reference, &source_digest, index.digest());
            client
                .push_manifest(
                    &Repo::from_reference(reference)?,
                    &reference.tag_or_digest(),
                    &media_type,
                    index.bytes(),
                )
                .await
                .with_context(|| format!("pushing the index to {reference}"))?;
        }
        Location::Oci { dir, tag } => {
            let tag = tag.clone().or_else(|| source_tag(source));
            write_index(dir, &index, media_type, tag.as_deref()).await?;
        }
        other => bail!("--all cannot write an index to {other}"),
    }
    drop(claim);
    Ok(Some(index.digest().clone()))
}

/// The index `source` names, if it names one.
pub(super) async fn source_index(
    client: Option<&Client>,
    source: &Location,
) -> anyhow::Result<Option<SourceIndex>> {
    match source {
        Location::Registry { reference } => {
            let client = client.context("no registry client")?;
            let repo = Repo::from_reference(reference)?;
            let manifest = client
                .get_manifest(&repo, &reference.tag_or_digest())
                .await
                .with_context(|| format!("fetching the manifest of {reference}"))?;
            let media_type = manifest.media_type();
            Ok(match manifest {
                AnyManifest::Index(index) => Some(SourceIndex {
                    index: *index,
                    media_type,
                }),
                AnyManifest::Image(_) => None,
            })
        }
        Location::Oci { dir, tag } => {
            let (dir, tag) = (dir.clone(), tag.clone());
            tokio::task::spawn_blocking(move || {
                let layout = Layout::open(&dir)
                    .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
                let desc = layout.resolve(tag.as_deref())?;
                if !desc.media_type.is_index() {
                    return Ok(None);
                }
                let index = layout
                    .read_json::<ImageIndex>(&desc)
                    .with_context(|| format!("reading the index {}", desc.digest))?;
                Ok(Some(SourceIndex {
                    index,
                    media_type: desc.media_type,
                }))
            })
            .await?
        }
        _ => Ok(None),
    }
}

/// Copy the image `child` of the source's index, by digest; `target` is the claimed layout of
/// a layout destination. Returns the descriptor of the manifest written for it (converted with
/// `--format`).
async fn copy_child(
    config: &Config,
    client: Option<&Client>,
    source: &Location,
    destination: &Location,
    target: Option<&Layout>,
    child: &Descriptor,
    reporter: &Reporter,
) -> anyhow::Result<Descriptor> {
    let pin = |r: &Reference| r.without_tag_or_digest().with_digest(child.digest.clone());
    let format = config.manifest_format;
    if config.recompress {
        let ends = (source, destination);
        let copied = recompress::copy_child(config, client, ends, target, child, reporter).await?;
        if let Some(written) = copied {
            return Ok(written);
        }
    }
    match (source, destination) {
        (Location::Registry { reference: from }, Location::Registry { reference: to }) => {
            let client = client.context("no registry client")?;
            copy_between_registries(client, config, &pin(from), &pin(to), reporter).await
        }
        (Location::Registry { reference }, Location::Oci { .. }) => {
            let client = client.context("no registry client")?;
            let target = target.context("no claimed layout")?;
            pull_manifest(client, config, &pin(reference), target, format, reporter).await
        }
        (Location::Oci { dir: from, .. }, to) => {
            // An image or an artifact (a build attestation lists next to its images).
            let (layout, (descriptor, manifest)) = {
                let from = from.clone();
                let child = child.clone();
                tokio::task::spawn_blocking(move || {
                    let layout = Layout::open(&from)?;
                    let found = layout.manifest_at(&child, None)?;
                    anyhow::Ok((layout, found))
                })
                .await??
            };
            let (manifest, media_type) =
                manifest_as(&manifest, descriptor.media_type.clone(), format)?;
            let descriptor = descriptor.with_content(
                media_type,
                manifest.digest().clone(),
                manifest.bytes().len() as u64,
            );
            match to {
                Location::Registry { reference } => {
                    let client = client.context("no registry client")?;
                    let reference =
                        push_reference(&pin(reference), &child.digest, &descriptor.digest);
                    let pushed = (&descriptor, &manifest);
                    let digest =
                        push_image(client, &layout, pushed, &reference, None, reporter).await?;
                    Ok(Descriptor {
                        digest,
                        ..descriptor
                    })
                }
                Location::Oci { .. } => {
                    let target = target.context("no claimed layout")?.clone();
                    copy_between_layouts(layout, manifest, target, reporter.clone()).await?;
                    Ok(descriptor)
                }
                other => bail!("--all cannot copy into {other}"),
            }
        }
        (from, to) => bail!("--all cannot copy from {from} to {to}"),
    }
}

/// The tag a layout destination takes when none is given: the source's, when a layout can
/// hold it (a docker tag such as `1.0-` is no OCI ref name: the image is stored untagged).
pub(super) fn source_tag(source: &Location) -> Option<String> {
    let tag = match source {
        Location::Registry { reference } => reference.tag().map(str::to_string),
        Location::Oci { tag, .. } => tag.clone(),
        Location::DockerDaemon { name } => crate::config::reference_tag(name),
        Location::DockerArchive {
            reference: Some(r), ..
        } => crate::config::reference_tag(r),
        _ => None,
    };
    tag.filter(|t| hoist_oci::layout::check_ref_name(t).is_ok())
}

/// Store the index's exact bytes in the layout at `dir` and name it there.
pub(super) async fn write_index(
    dir: &Path,
    index: &RawJson<ImageIndex>,
    media_type: MediaType,
    tag: Option<&str>,
) -> anyhow::Result<()> {
    let descriptor = index.descriptor(media_type);
    {
        let (dir, index) = (dir.to_path_buf(), index.clone());
        tokio::task::spawn_blocking(move || {
            // Opened or created here too: an index listing no image has made no layout yet.
            let layout = Layout::open_or_create(&dir)
                .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
            layout.write_json(&index)?;
            anyhow::Ok(())
        })
        .await??;
    }
    tag_layout(dir, tag, &descriptor).await
}
