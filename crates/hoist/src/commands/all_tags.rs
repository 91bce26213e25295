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
use crate::progress::Progress;
use crate::transport::Location;
use crate::{errors, interrupt};

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
                say(config, &failed_line(tag, &e));
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

/// What is said of a tag that failed to copy: its error made as safe to print as the one
/// `main` prints (no HTML, control characters or credentials in a URL).
fn failed_line(tag: &str, e: &anyhow::Error) -> String {
    format!("{tag}: failed: {}", errors::sanitize(&format!("{e:#}")))
}

/// A line on stderr, unless `-q`.
fn say(config: &Config, line: &str) {
    if config.verbosity >= 0 {
        eprintln!("{line}");
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
}
