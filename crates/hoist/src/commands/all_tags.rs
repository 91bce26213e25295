//! `--all-tags`: every tag of a repository or OCI layout copied to another, as `crane copy
//! --all-tags` and `skopeo sync` do: between registries (a mirror), and into and out of a
//! layout (a mirror carried across an air gap). Each tag goes through the same single-image
//! copy as `hoist copy` (or `--all`'s, with every platform); a tag the destination already
//! has with the same manifest is skipped, so running it again (a mirror kept up to date) only
//! copies what changed (with `--format` or `--recompress`, every tag is copied again, its
//! blobs skipped, since the converted manifest's digest is not the source's; a tag whose
//! manifest comes out as the one it named is counted as already there). Every tag is attempted even when one
//! fails, and the command fails naming the tags that did.

use anyhow::{Context as _, bail};
use hoist_oci::{Digest, Layout};
use hoist_registry::{Client, Repo};

use super::{copy, registry};
use crate::config::{Config, TagFilter};
use crate::progress::Progress;
use crate::transport::Location;
use crate::{errors, interrupt};

/// Copy every tag of `source` that `filter` keeps to `destination`: each a registry
/// repository or an OCI layout, named without a tag.
///
/// # Errors
/// The source's tags cannot be listed, it has none (or none the filter keeps), or any tag
/// failed to copy (each named).
pub fn run(
    config: &Config,
    source: &Location,
    destination: &Location,
    filter: &TagFilter,
) -> anyhow::Result<()> {
    // One client for the listing and every tag: credentials, helper answers and tokens are
    // asked for once (a token again only when it expires), not once per tag.
    let client = registry::client(config)?;
    let config = &Config {
        registry_client: Some(client.clone()),
        ..config.clone()
    };
    let runtime = super::runtime()?;
    let mut tags = runtime.block_on(interrupt::interruptible(
        tags_of(config, source),
        std::time::Duration::ZERO,
        interrupt::STARTS_OVER,
    ))?;
    if tags.is_empty() {
        bail!("{source} has no tags to copy");
    }
    let listed = tags.len();
    tags.retain(|tag| filter.keeps(tag));
    if tags.is_empty() {
        bail!(
            "none of the {listed} tags of {source} is kept by {}",
            filter.describe()
        );
    }
    if filter.filters() {
        say(
            config,
            &format!(
                "{} of {listed} tags kept by {}",
                tags.len(),
                filter.describe()
            ),
        );
    }
    // In lexical order (the distribution spec's), whatever order the source listed them in.
    tags.sort_unstable();
    let (mut copied, mut current, mut failed) = (0, 0, Vec::new());
    for tag in &tags {
        let (from, to) = match (tagged(source, tag), tagged(destination, tag)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(e), _) | (_, Err(e)) => {
                say(config, &format!("{tag}: failed: {e:#}"));
                failed.push(tag.clone());
                continue;
            }
        };
        // With --format (or --recompress) the destination should hold a converted manifest,
        // whose digest is not the source's: each tag is copied (its blobs are skipped), never
        // taken as current because an unconverted copy is there, and counted as current when
        // the copy wrote the manifest the tag already named.
        let (same, before) = match config.manifest_format.is_some() || config.recompress {
            // What the tag named before, to tell afterwards whether the copy changed it.
            true => match runtime.block_on(interrupt::unless_raised(tagged_digest(&client, &to))) {
                Err(e) if interrupt::raised() => return Err(e.context(interrupt::STARTS_OVER)),
                before => (Ok(false), before.ok().flatten()),
            },
            false => (
                runtime.block_on(interrupt::unless_raised(same_manifest(&client, &from, &to))),
                None,
            ),
        };
        match same {
            Ok(true) => {
                current += 1;
                say(config, &format!("{tag}: the destination has it already"));
                continue;
            }
            Ok(false) => {}
            // Asking failed: the copy itself says what is wrong, or succeeds.
            Err(_) if !interrupt::raised() => {}
            Err(e) => return Err(e.context(interrupt::STARTS_OVER)),
        }
        let progress = Progress::start(config.progress);
        let result = copy::run(config, &from, &to, "copy", &progress.reporter());
        progress.finish();
        match result {
            // The converted manifest was there already: its blobs were skipped, nothing moved.
            Ok(Some(written)) if before.as_ref() == Some(&written) => {
                current += 1;
                say(config, &format!("{tag}: the destination has it already"));
            }
            Ok(_) => copied += 1,
            // Ctrl-C ends the whole run, not one tag.
            Err(e) if interrupt::raised() => return Err(e),
            Err(e) => {
                say(config, &failed_line(tag, &e));
                failed.push(tag.clone());
            }
        }
    }
    say(config, &verdict(tags.len(), copied, current, failed.len()));
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} of {} tags failed to copy: {} (running the command again copies what is \
             missing)",
            failed.len(),
            tags.len(),
            failed.join(", ")
        )
    }
}

/// The tags of a registry repository or an OCI layout.
async fn tags_of(config: &Config, location: &Location) -> anyhow::Result<Vec<String>> {
    match location {
        Location::Registry { reference } => registry::list_tags(config, reference).await,
        Location::Oci { dir, .. } => {
            let dir = dir.clone();
            let listed = tokio::task::spawn_blocking(move || Layout::open(&dir)?.tags()).await?;
            Ok(listed?)
        }
        other => bail!("--all-tags does not read tags from {other}"),
    }
}

/// `location` (a repository or a layout, without a tag) with `tag`.
fn tagged(location: &Location, tag: &str) -> anyhow::Result<Location> {
    Ok(match location {
        Location::Registry { reference } => Location::Registry {
            reference: reference
                .with_tag(tag)
                .with_context(|| format!("`{tag}` is no tag a registry takes"))?,
        },
        Location::Oci { dir, .. } => Location::Oci {
            dir: dir.clone(),
            tag: Some(tag.to_owned()),
        },
        other => bail!("--all-tags does not copy to or from {other}"),
    })
}

/// Whether the destination's tag already names the manifest the source's tag names.
async fn same_manifest(client: &Client, from: &Location, to: &Location) -> anyhow::Result<bool> {
    let source = tagged_digest(client, from).await?;
    let destination = tagged_digest(client, to).await?;
    Ok(matches!((source, destination), (Some(s), Some(d)) if s == d))
}

/// The digest of the manifest a tagged location names; `None` when the tag (or the layout)
/// is not there.
async fn tagged_digest(client: &Client, location: &Location) -> anyhow::Result<Option<Digest>> {
    match location {
        Location::Registry { reference } => {
            let repo = Repo::from_reference(reference)?;
            let found = client
                .head_manifest(&repo, &reference.tag_or_digest())
                .await?;
            Ok(found.map(|d| d.digest))
        }
        Location::Oci { dir, tag } => {
            let (dir, tag) = (dir.clone(), tag.clone());
            let found = tokio::task::spawn_blocking(move || {
                let layout = match Layout::open(&dir) {
                    Ok(layout) => layout,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e),
                };
                match layout.resolve(tag.as_deref()) {
                    Ok(descriptor) => Ok(Some(descriptor.digest)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
            Ok(found?)
        }
        _ => Ok(None),
    }
}

/// What is said of a tag that failed to copy: its error made as safe to print as the one
/// `main` prints (no HTML, control characters or credentials in a URL).
fn failed_line(tag: &str, e: &anyhow::Error) -> String {
    format!("{tag}: failed: {}", errors::sanitize(&format!("{e:#}")))
}

/// The last line: `3 tags: 2 copied, 1 already there, 0 failed` (`1 tag: ...`).
fn verdict(tags: usize, copied: usize, current: usize, failed: usize) -> String {
    let noun = if tags == 1 { "tag" } else { "tags" };
    format!("{tags} {noun}: {copied} copied, {current} already there, {failed} failed")
}

/// A line about the run (a JSON `message` event with `--progress json`), unless `-q`.
fn say(config: &Config, line: &str) {
    if config.verbosity >= 0 {
        crate::progress::say(config.progress, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_tag_is_said_as_safely_as_any_error() {
        let e = anyhow::anyhow!("pushing: \u{1b}[2J<html><body>proxy error</body></html>")
            .context("copying from https://deploy:Pw-77@mirror.example/team/app:1 \u{202e}evil");
        let line = failed_line("1", &e);
        assert!(line.starts_with("1: failed: copying from"), "{line}");
        for unsafe_part in ["\u{1b}", "\u{202e}", "<html", "Pw-77"] {
            assert!(!line.contains(unsafe_part), "{unsafe_part:?} in {line:?}");
        }
    }

    #[test]
    fn one_tag_is_said_as_one() {
        assert_eq!(
            verdict(1, 1, 0, 0),
            "1 tag: 1 copied, 0 already there, 0 failed"
        );
        assert_eq!(
            verdict(2, 0, 1, 1),
            "2 tags: 0 copied, 1 already there, 1 failed"
        );
    }
}
