//! `--multi-arch index-only`: an index copied without the images it lists, as skopeo's flag
//! does, for images the destination holds already (each platform built and pushed on its
//! own, the index put together last). No blob moves; the index goes byte for byte, or with
//! `--format` rewritten as `--all --format` writes it (its images' manifests are read from the
//! source and converted, a few KB each, to learn the digests the converted images have).
//!
//! The index must not name what is not there:
//!
//! - A registry (distribution) refuses an index whose images it lacks
//!   (`MANIFEST_BLOB_UNKNOWN`); hoist then asks it for each image and names the missing ones,
//!   and the way out. A registry that takes sparse indexes takes it, as it takes skopeo's.
//! - An OCI layout checks nothing: an index naming absent manifests would be a broken layout
//!   (skopeo writes one). hoist checks first that each image is there, its manifest and every
//!   blob it names, and refuses naming those that are not; the layout is left as it was.
//!
//! A source that is a single image has no index to copy alone: the caller copies it the usual
//! way, as skopeo does.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use hoist_oci::layout::Layout;
use hoist_oci::{AnyManifest, Descriptor, Digest, ImageManifest, RawJson, Reference};
use hoist_registry::{Client, Repo};

use super::format::{check_index_as, index_as, manifest_as, push_reference};
use super::local::{claim_layout, release_failed};
use super::multi::{SourceIndex, source_index, source_tag, write_index};
use super::registry;
use crate::config::Config;
use crate::progress::{Event, Reporter};
use crate::transport::Location;

/// Registry requests at once when reading the source's manifests or asking the destination
/// for its images.
const AT_ONCE: usize = 4;

/// Missing images named in an error; the rest are counted.
const NAMED: usize = 5;

/// Copy the index `source` names to `destination` without its images; returns the digest of
/// the index written. `Ok(None)` (nothing done) when the source is a single image, or a kind
/// of source that can only be one.
///
/// # Errors
/// The destination lacks images the index lists (each named, with the way out); an index of
/// indexes; what `--format` cannot describe; reading the source, writing the destination.
pub async fn copy_index(
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
    let children = distinct(&index.value().manifests);
    if let Some(child) = children.iter().find(|c| !c.media_type.is_manifest()) {
        bail!(
            "the index lists {} as {}: --multi-arch index-only copies an index of images, not \
             an index of indexes",
            child.digest,
            child.media_type
        );
    }
    check_index_as(&index, config.manifest_format)?;
    reporter.send(Event::Message {
        text: format!(
            "copying the index alone (--multi-arch index-only): its {} image{} must be at {} \
             already",
            children.len(),
            plural(children.len()),
            destination
        ),
    });
    let listed = written_as(config, client.as_ref(), source, &children).await?;
    let converted: BTreeMap<Digest, Descriptor> = listed
        .iter()
        .map(|l| (l.listed.digest.clone(), l.written.clone()))
        .collect();
    let source_digest = index.digest().clone();
    let (index, media_type) = index_as(&index, media_type, config.manifest_format, &converted)?;
    match destination {
        Location::Registry { reference } => {
            let client = client.as_ref().context("no registry client")?;
            let reference = push_reference(reference, &source_digest, index.digest());
            let repo = Repo::from_reference(&reference)?;
            let pushed = client
                .push_manifest(
                    &repo,
                    &reference.tag_or_digest(),
                    &media_type,
                    index.bytes(),
                )
                .await;
            if let Err(e) = pushed {
                let missing = match e.is_refused() && !e.is_auth() {
                    true => missing_in_registry(client, &repo, &listed).await,
                    false => None,
                };
                let context = match missing.filter(|m| !m.is_empty()) {
                    Some(missing) => lacks(&place(&reference), &missing, listed.len()),
                    None => format!("pushing the index to {reference}"),
                };
                return Err(anyhow::Error::new(e).context(context));
            }
        }
        Location::Oci { dir, tag } => {
            let claim = claim_layout(dir).await?;
            let missing = {
                let (layout, listed) = (claim.layout().clone(), listed.clone());
                tokio::task::spawn_blocking(move || missing_in_layout(&layout, &listed)).await?
            };
            match missing {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => {
                    // A layout this copy created goes again; one that was there is untouched.
                    release_failed(claim).await;
                    bail!(lacks(&dir.display().to_string(), &missing, listed.len()));
                }
                Err(e) => {
                    release_failed(claim).await;
                    return Err(e);
                }
            }
            let tag = tag.clone().or_else(|| source_tag(source));
            write_index(dir, &index, media_type, tag.as_deref()).await?;
            drop(claim);
        }
        other => bail!("--multi-arch index-only cannot write an index to {other}"),
    }
    Ok(Some(index.digest().clone()))
}

/// An image the index lists: as the source's index lists it, and as the destination should
/// hold it (the same without `--format`).
#[derive(Debug, Clone)]
struct Listed {
    listed: Descriptor,
    written: Descriptor,
}

/// Each image once, in the index's order (a hostile index may list one 40,000 times).
fn distinct(children: &[Descriptor]) -> Vec<Descriptor> {
    let mut seen = std::collections::HashSet::new();
    children
        .iter()
        .filter(|c| seen.insert(&c.digest))
        .cloned()
        .collect()
}

/// The images as the destination should hold them: as listed, or with `--format` each
/// manifest read from the source and converted as the copy of the image would convert it.
async fn written_as(
    config: &Config,
    client: Option<&Client>,
    source: &Location,
    children: &[Descriptor],
) -> anyhow::Result<Vec<Listed>> {
    let Some(format) = config.manifest_format else {
        return Ok(children
            .iter()
            .map(|c| Listed {
                listed: c.clone(),
                written: c.clone(),
            })
            .collect());
    };
    let manifests: Vec<RawJson<ImageManifest>> = match source {
        Location::Registry { reference } => {
            let client = client.context("no registry client")?;
            let repo = Repo::from_reference(reference)?;
            let fetches = children.iter().map(|child| {
                let repo = &repo;
                async move {
                    let fetched = client
                        .get_manifest(repo, &child.digest.to_string())
                        .await
                        .with_context(|| format!("fetching the manifest {}", child.digest))?;
                    match fetched {
                        AnyManifest::Image(manifest) => Ok(*manifest),
                        AnyManifest::Index(_) => {
                            bail!("{} is listed as an image but is an index", child.digest)
                        }
                    }
                }
            });
            futures_util::stream::iter(fetches)
                .buffered(AT_ONCE)
                .collect::<Vec<anyhow::Result<_>>>()
                .await
                .into_iter()
                .collect::<anyhow::Result<_>>()?
        }
        Location::Oci { dir, .. } => {
            let (dir, children) = (dir.clone(), children.to_vec());
            tokio::task::spawn_blocking(move || {
                let layout = Layout::open(&dir)
                    .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
                children
                    .iter()
                    .map(|child| {
                        layout
                            .read_json::<ImageManifest>(child)
                            .with_context(|| format!("reading the manifest {}", child.digest))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .await??
        }
        other => bail!("{other} holds no index"),
    };
    children
        .iter()
        .zip(manifests)
        .map(|(child, manifest)| {
            let (manifest, media_type) =
                manifest_as(&manifest, child.media_type.clone(), Some(format))?;
            Ok(Listed {
                listed: child.clone(),
                written: child.with_content(
                    media_type,
                    manifest.digest().clone(),
                    manifest.bytes().len() as u64,
                ),
            })
        })
        .collect()
}

/// What the destination lacks of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lack {
    /// Its manifest.
    Manifest,
    /// This many of the blobs its manifest names (a layout only).
    Blobs(usize),
}

/// An image the destination lacks, named by the digest the written index lists it by and its
/// platform (and, converted by `--format`, the source's digest of it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Missing {
    digest: Digest,
    converted_from: Option<Digest>,
    platform: Option<String>,
    lack: Lack,
}

impl Missing {
    fn new(listed: &Listed, lack: Lack) -> Self {
        let (digest, source) = (&listed.written.digest, &listed.listed.digest);
        Missing {
            digest: digest.clone(),
            converted_from: (digest != source).then(|| source.clone()),
            platform: listed.listed.platform.as_ref().map(ToString::to_string),
            lack,
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.digest)?;
        f.write_str(self.platform.as_deref().unwrap_or("no platform"))?;
        if let Some(source) = &self.converted_from {
            write!(f, "; the source's {source} as --format writes it")?;
        }
        match self.lack {
            Lack::Manifest => f.write_str(")"),
            Lack::Blobs(n) => write!(f, "; {n} of its blob{} missing)", plural(n)),
        }
    }
}

/// The images the registry does not have, asked one by one; `None` when it would not say
/// (the error that sent us asking is then the one to report).
async fn missing_in_registry(
    client: &Client,
    repo: &Repo,
    listed: &[Listed],
) -> Option<Vec<Missing>> {
    let asks = listed.iter().map(|l| async move {
        let found = client
            .head_manifest(repo, &l.written.digest.to_string())
            .await;
        (l, found)
    });
    let answers: Vec<_> = futures_util::stream::iter(asks)
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut missing = Vec::new();
    for (l, found) in answers {
        match found {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(Missing::new(l, Lack::Manifest)),
            Err(e) => {
                tracing::debug!("asking the registry for {}: {e}", l.written.digest);
                return None;
            }
        }
    }
    Some(missing)
}

/// The images the layout lacks, or holds in part: the manifest, and every blob it names (a
/// foreign layer, fetched from its URLs, need not be there). Blocking.
fn missing_in_layout(layout: &Layout, listed: &[Listed]) -> anyhow::Result<Vec<Missing>> {
    let mut missing = Vec::new();
    for l in listed {
        if !layout.has_blob(&l.written)? {
            missing.push(Missing::new(l, Lack::Manifest));
            continue;
        }
        let manifest = layout
            .read_json::<ImageManifest>(&l.written)
            .with_context(|| format!("reading the manifest {}", l.written.digest))?;
        let m = manifest.value();
        let mut absent = 0;
        for blob in std::iter::once(&m.config).chain(m.layers.iter().filter(|b| b.urls.is_empty()))
        {
            if !layout.has_blob(blob)? {
                absent += 1;
            }
        }
        if absent > 0 {
            missing.push(Missing::new(l, Lack::Blobs(absent)));
        }
    }
    Ok(missing)
}

/// How a registry destination is named in a refusal: HOST/REPO.
fn place(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// The refusal: what `place` lacks of the `listed` images, and the way out.
fn lacks(place: &str, missing: &[Missing], listed: usize) -> String {
    let named: Vec<String> = missing
        .iter()
        .take(NAMED)
        .map(ToString::to_string)
        .collect();
    let more = match missing.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{place} lacks {} of the {listed} image{} the index lists: {}{more}; --multi-arch \
         index-only copies the index alone, for images already there: copy them first, or use \
         --multi-arch all to copy them with the index",
        missing.len(),
        plural(listed),
        named.join(", ")
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_oci::{MediaType, Platform};

    fn listed(n: u8, platform: Option<&str>) -> Listed {
        let mut d = Descriptor::new(MediaType::OCI_MANIFEST, Digest::sha256_of(&[n]), 100);
        d.platform = platform.map(|p| p.parse::<Platform>().expect("platform"));
        Listed {
            listed: d.clone(),
            written: d,
        }
    }

    #[test]
    fn a_refusal_names_the_missing_images_their_platforms_and_the_way_out() {
        let (arm, bare) = (listed(1, Some("linux/arm64/v8")), listed(2, None));
        let missing = [
            Missing::new(&arm, Lack::Manifest),
            Missing::new(&bare, Lack::Blobs(2)),
        ];
        let text = lacks("reg.example/team/app", &missing, 3);
        for says in [
            "reg.example/team/app lacks 2 of the 3 images the index lists: ",
            &format!("{} (linux/arm64/v8)", arm.written.digest),
            &format!(
                "{} (no platform; 2 of its blobs missing)",
                bare.written.digest
            ),
            "--multi-arch all",
        ] {
            assert!(text.contains(says), "{says}: {text}");
        }
    }

    #[test]
    fn an_image_converted_by_format_is_named_as_written_and_as_the_source_has_it() {
        let mut converted = listed(1, Some("linux/amd64"));
        converted.written.digest = Digest::sha256_of(b"converted");
        let text = Missing::new(&converted, Lack::Manifest).to_string();
        assert_eq!(
            text,
            format!(
                "{} (linux/amd64; the source's {} as --format writes it)",
                converted.written.digest, converted.listed.digest
            )
        );
    }

    #[test]
    fn a_long_list_of_missing_images_is_cut_short() {
        let missing: Vec<Missing> = (0..40)
            .map(|n| Missing::new(&listed(n, Some("linux/amd64")), Lack::Manifest))
            .collect();
        let text = lacks("out", &missing, 40);
        assert!(text.contains("lacks 40 of the 40 images"), "{text}");
        assert!(text.contains(" and 35 more;"), "{text}");
        assert_eq!(text.matches("sha256:").count(), NAMED, "{text}");
    }

    #[test]
    fn each_listed_image_is_checked_once() {
        let (a, b) = (listed(1, None).listed, listed(2, None).listed);
        let children = [a.clone(), b.clone(), a.clone(), a.clone()];
        assert_eq!(distinct(&children), [a, b]);
    }

    #[test]
    fn a_layout_lacking_an_image_or_a_blob_of_one_says_which() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(tmp.path().join("l")).expect("layout");
        let config =
            RawJson::from_value(serde_json::json!({"architecture": "amd64"})).expect("config");
        layout.write_json(&config).expect("config blob");
        let config = config.descriptor(MediaType::OCI_CONFIG);
        let absent_layer = Descriptor::new(MediaType::OCI_LAYER_GZIP, Digest::sha256_of(b"l"), 1);
        let mut foreign = absent_layer.clone();
        foreign.digest = Digest::sha256_of(b"foreign");
        foreign.urls = vec!["https://example.invalid/l".into()];
        let whole = RawJson::from_value(ImageManifest::new(config.clone(), vec![foreign]))
            .expect("manifest");
        let partial =
            RawJson::from_value(ImageManifest::new(config, vec![absent_layer])).expect("manifest");
        layout.write_json(&whole).expect("manifest blob");
        layout.write_json(&partial).expect("manifest blob");
        let entry = |m: &RawJson<ImageManifest>| {
            let d = m.descriptor(MediaType::OCI_MANIFEST);
            Listed {
                listed: d.clone(),
                written: d,
            }
        };
        let gone = listed(9, Some("linux/s390x"));
        let missing = missing_in_layout(&layout, &[entry(&whole), entry(&partial), gone.clone()])
            .expect("checked");
        assert_eq!(
            missing,
            [
                Missing::new(&entry(&partial), Lack::Blobs(1)),
                Missing::new(&gone, Lack::Manifest)
            ]
        );
    }
}
