//! Test helpers: the raw tar writer and tree snapshots (from hoist-testkit, shared with the
//! end-to-end tests), a shape view for equivalence checks, and loud skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hoist_unpack::{LayerInfo, LayerStats, Unpacker};

pub use hoist_testkit::rawtar::{Tar, snapshot};

/// A simpler view for equivalence: path -> (kind, mode, content/link target).
pub fn shape(dir: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    snapshot(dir, &[])
        .into_iter()
        .map(|(p, n)| {
            (
                p,
                (n.kind, if n.kind == 'l' { 0 } else { n.mode }, n.content),
            )
        })
        .collect()
}

/// Loud skip outside CI, failure in CI.
pub fn skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a required component is missing: {what}");
    }
    eprintln!("SKIP: {what}");
}

/// An unpacker, rootless or not.
pub fn unpacker(rootless: bool) -> Unpacker {
    Unpacker::builder()
        .rootless(rootless)
        .build()
        .expect("build")
}

/// Apply `layers` in order onto `root`, rootless; their stats.
pub fn apply(root: &Path, layers: &[Vec<u8>]) -> Vec<LayerStats> {
    let u = unpacker(true);
    layers
        .iter()
        .map(|l| {
            u.apply_layer(root, &l[..], &LayerInfo::default())
                .expect("apply")
        })
        .collect()
}

/// A temp directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A file's bytes.
pub fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(p).expect("read")
}

/// Whether anything (a dangling symlink too) is at `p`.
pub fn exists(p: impl AsRef<Path>) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
