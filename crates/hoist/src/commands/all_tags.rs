//! `--all-tags`: every tag of a repository copied to another registry's repository, as `crane
//! copy --all-tags` and `skopeo sync` between registries do. Each tag goes through the same
//! single-image copy as `hoist copy` (or `--all`'s, with every platform); a tag whose manifest
//! the destination already has under that tag is skipped, so running it again (a mirror kept
//! up to date) only copies what changed. Every tag is attempted even when one fails, and the
//! command fails naming the tags that did.

use anyhow::bail;
use hoist_oci::Reference;
use hoist_registry::{Client, Repo};

use super::{copy, registry};
use crate::config::Config;
use crate::interrupt;
use crate::progress::Progress;
use crate::transport::Location;

/// Copy every tag of `source` to `destination` (both repositories, without a tag).
///
/// # Errors
/// The source's tags cannot be listed, it has none, or any tag failed to copy (each named).
pub fn run(config: &Config, source: &Reference, destination: &Reference) -> anyhow::Result<()> {
    let runtime = super::runtime()?;
    let mut tags = runtime.block_on(interrupt::interruptible(
        registry::list_tags(config, source),
        std::time::Duration::ZERO,
        interrupt::STARTS_OVER,
    ))?;
    if tags.is_empty() {
        bail!("{source} has no tags to copy");
    }
    // In the spec's (lexical) order, whatever order the registry listed them in.
    tags.sort_unstable();
    let client = registry::client(config)?;
    let (mut copied, mut current, mut failed) = (0, 0, Vec::new());
    for tag in &tags {
        let from = source.with_tag(tag)?;
        let to = destination.with_tag(tag)?;
        let same = runtime.block_on(interrupt::unless_raised(same_manifest(&client, &from, &to)));
        match same {
            Ok(true) => {
                current += 1;
                say(config, &format!("{tag}: the destination has it already"));
                continue;
            }
            Ok(false) => {}
            // Asking failed: the copy itself says what is wrong, or succeeds.
            Err(_) if !interrupt::raised() => {}
            Err(e) => return Err(e.context(interrupt::RESUMABLE)),
        }
        let progress = Progress::start(config.progress);
        let result = copy::run(
            config,
            &Location::Registry { reference: from },
            &Location::Registry { reference: to },
            "copy",
            &progress.reporter(),
        );
        progress.finish();
        match result {
            Ok(_) => copied += 1,
            // Ctrl-C ends the whole run, not one tag.
            Err(e) if interrupt::raised() => return Err(e),
            Err(e) => {
                say(config, &format!("{tag}: failed: {e:#}"));
                failed.push(tag.clone());
            }
        }
    }
    say(
        config,
        &format!(
            "{} tags: {copied} copied, {current} already there, {} failed",
            tags.len(),
            failed.len()
        ),
    );
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

/// Whether the destination's tag already names the manifest the source's tag names.
async fn same_manifest(client: &Client, from: &Reference, to: &Reference) -> anyhow::Result<bool> {
    let head = |reference: &Reference| {
        let repo = Repo::from_reference(reference);
        let tag = reference.tag_or_digest();
        async move { client.head_manifest(&repo?, &tag).await }
    };
    let source = head(from).await?;
    let destination = head(to).await?;
    Ok(matches!((source, destination), (Some(s), Some(d)) if s.digest == d.digest))
}

/// A line on stderr, unless `-q`.
fn say(config: &Config, line: &str) {
    if config.verbosity >= 0 {
        eprintln!("{line}");
    }
}
