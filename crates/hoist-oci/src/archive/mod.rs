//! Docker archives (`docker save` / `docker load` tar streams), read and written in one pass.
//!
//! [`spool`] reads a `docker save` stream (plain, or compressed whole with gzip, zstd, xz or
//! bzip2, as `docker load` takes it) — the legacy layout (`<id>/layer.tar`, `<id>.json`,
//! `manifest.json`, `repositories`) or Docker >= 25's OCI layout inside the tar — from a
//! non-seekable reader, streaming every file straight into a [`crate::Layout`]'s blob store and
//! building OCI manifests at the end, when `manifest.json` (which `docker save` writes last)
//! says how the pieces fit, and checking every layer against its config's `diff_ids` (known
//! from the same pass: a compressed layer is decoded beside its write). [`spool_with`] can also compress layers on the way in (one write
//! per byte, blob digest and `diff_id` from the same pass), leave tagging to the caller, and
//! report per-layer [`SpoolEvent`]s. [`write_docker_archive`] does the opposite for
//! `docker load`, and [`write_docker_archive_streamed`] does it from blob readers (a registry)
//! without a layout.

mod build;
mod decoded;
mod diff_id;
mod options;
mod read;
mod stream;
mod write;

use serde::{Deserialize, Serialize};

pub use options::{PROGRESS_STEP, SpoolEvent, SpoolOptions};
pub use read::{SpooledImage, spool, spool_with};
pub use write::{
    BlobOpener, write_docker_archive, write_docker_archive_spilling, write_docker_archive_streamed,
};

use crate::{Error, Result};

/// One image in a docker archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifestEntry {
    /// Archive path of the config JSON.
    config: String,
    /// `name:tag` references (`null` when the image was saved by ID).
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    /// Archive paths of the uncompressed (or compressed) layer tars, base first.
    layers: Vec<String>,
}

/// The most symlink hops followed when resolving an archive path.
const MAX_LINK_HOPS: usize = 16;

/// Normalize a path inside the archive: `./a//b` is `a/b`. Absolute paths and `..` are errors:
/// nothing in an archive may point outside it.
fn normalize(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(escape_error(raw));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(escape_error(raw)),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(format!("empty path {raw:?} in the archive")));
    }
    Ok(parts.join("/"))
}

/// Resolve a symlink's `target` relative to the directory of `link` (both inside the archive).
fn resolve_link(link: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(escape_error(target));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(escape_error(&format!("{link} -> {target}")));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(format!(
            "symlink {link:?} points at the archive root"
        )));
    }
    Ok(parts.join("/"))
}

/// An archive path as shown in a message: names come from the archive, so a hostile one may be
/// huge; at most 200 characters are shown.
fn shown(path: &str) -> String {
    let mut s: String = path.chars().take(200).collect();
    if s.len() < path.len() {
        s.push('…');
    }
    s
}

fn escape_error(path: &str) -> Error {
    let shown = shown(path);
    Error::invalid(format!(
        "archive entry {shown:?} escapes the archive (absolute path or '..')"
    ))
}

#[cfg(test)]
mod tests;
