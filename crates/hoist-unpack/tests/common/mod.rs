//! Test helpers: the raw tar writer and tree snapshots (from hoist-testkit, shared with the
//! end-to-end tests), a shape view for equivalence checks, and loud skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
