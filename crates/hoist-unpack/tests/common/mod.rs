//! Test helpers: the raw tar writer and tree snapshots (from hoist-testkit, shared with the
//! end-to-end tests), a shape view for equivalence checks, and loud skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// A reader that adds the bytes read through it to a shared count.
pub struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// A plain tar made as it is read, the bytes read counted in `read`: the entries of `before`,
/// a directory `big/` carrying `size` bytes of data that nothing writes (the `tar` crate reads
/// past them), then the entries of `after` (both whole tars, as [`Tar::finish`] makes them).
/// Neither the test nor the unpack holds the data.
pub fn skipped_data_layer(
    before: &[u8],
    size: u64,
    after: &[u8],
    read: Arc<AtomicU64>,
) -> Counted<impl Read + Send + use<>> {
    // Without their end-of-archive blocks: more entries follow.
    let entries = |tar: &[u8]| tar[..tar.len().saturating_sub(1024)].to_vec();
    let mut head = entries(before);
    head.extend(entries(
        &Tar::new()
            .header(b"big/", b'5', size, 0o755, b"", (0, 0))
            .finish(),
    ));
    let data = std::io::repeat(0).take(size.next_multiple_of(512));
    Counted {
        inner: std::io::Cursor::new(head)
            .chain(data)
            .chain(std::io::Cursor::new(after.to_vec())),
        read,
    }
}
