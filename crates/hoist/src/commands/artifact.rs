//! Artifacts copied as they are: manifests whose config or layers are not a container image's
//! (Helm charts, signatures, SBOMs, build attestations), which `crane copy` and `oras copy`
//! move and registries serve like any manifest. Their blobs go through the same verified
//! transfers as an image's; nothing reads them. From a registry, the streaming, mounting and
//! pulling paths already take any manifest; this is the route out of an OCI layout, where an
//! image would otherwise be opened as one (config parsed, layers checked).

use std::path::Path;

use anyhow::Context;
use hoist_oci::layout::Layout;
use hoist_oci::{Descriptor, Digest, ImageManifest, RawJson};

use super::format::{manifest_as, push_reference};
use super::local::{claim_layout, copy_between_layouts, tag_layout};
use super::registry;
use super::remote::push_image;
use crate::config::Config;
use crate::progress::Reporter;
use crate::transport::Location;

/// Copy the manifest tagged `tag` in the layout at `dir` to `destination` (a registry or a
/// layout) when it is an artifact; returns the digest written. `None` when it is a container
/// image, which the caller copies the usual way.
///
/// # Errors
/// The layout cannot be read, or the copy fails.
pub async fn copy_from_layout(
    config: &Config,
    dir: &Path,
    tag: Option<&str>,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<Option<Digest>> {
    let Some((layout, stored, manifest)) = open_artifact(config, dir, tag).await? else {
        return Ok(None);
    };
    // `--format v2s2` refuses an artifact (v2s2 has none); `--format oci` keeps it as it is.
    let (manifest, media_type) =
        manifest_as(&manifest, stored.media_type.clone(), config.manifest_format)?;
    let descriptor = stored.with_content(
        media_type,
        manifest.digest().clone(),
        manifest.bytes().len() as u64,
    );
    match destination {
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            let reference = push_reference(reference, &stored.digest, &descriptor.digest);
            let found = (&descriptor, &manifest);
            let pushed = push_image(&client, &layout, found, &reference, None, reporter).await?;
            Ok(Some(pushed))
        }
        Location::Oci {
            dir: to,
            tag: to_tag,
        } => {
            let claim = claim_layout(to).await?;
            copy_between_layouts(layout, manifest, claim.layout().clone(), reporter.clone())
                .await?;
            tag_layout(to, to_tag.as_deref().or(tag), &descriptor).await?;
            drop(claim);
            Ok(Some(descriptor.digest))
        }
        other => anyhow::bail!("an artifact cannot be copied to {other}"),
    }
}

/// The layout at `dir` and the manifest tagged `tag` there, when that is an artifact's.
async fn open_artifact(
    config: &Config,
    dir: &Path,
    tag: Option<&str>,
) -> anyhow::Result<Option<(Layout, Descriptor, RawJson<ImageManifest>)>> {
    let (dir, tag) = (dir.to_path_buf(), tag.map(str::to_string));
    let platform = config.platform.clone();
    tokio::task::spawn_blocking(move || {
        let layout = Layout::open(&dir)
            .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
        let found = layout
            .resolve(tag.as_deref())
            .and_then(|d| layout.manifest_at(&d, platform.as_ref()));
        // Whatever fails here fails again, and is said, where the image is opened.
        let Ok((descriptor, manifest)) = found else {
            return Ok(None);
        };
        Ok((!manifest.value().is_container_image()).then_some((layout, descriptor, manifest)))
    })
    .await?
}
