//! The cache directory's layout and `hoist cache prune`.
//!
//! ```text
//! CACHE/
//!   exports/IMAGE_ID/      a push's spooled `docker save` output, one directory per image
//!                          (with the layers hoist compressed for pushing)
//!   uploads/               in-flight upload state (for resuming after Ctrl-C or a crash)
//!   transit/               images passing through, removed when done: a docker archive
//!                          going anywhere but a layout, a daemon export going anywhere but a
//!                          registry or a layout, a registry image with zstd layers going
//!                          into an archive or the daemon
//!   layer-map/             which compressed digest belongs to which diff_id (kept unless --all)
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::size::human;

/// Subdirectories `prune` always empties.
pub const PRUNED: [&str; 3] = ["exports", "uploads", "transit"];
/// Subdirectories only `prune --all` empties.
pub const KEPT: [&str; 1] = ["layer-map"];

/// What prune did.
#[derive(Debug, PartialEq, Eq)]
pub struct PruneReport {
    /// The cache directory.
    pub dir: PathBuf,
    /// Files removed.
    pub files: u64,
    /// Bytes freed.
    pub bytes: u64,
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pruned {}: {} files, {} freed",
            self.dir.display(),
            self.files,
            human(self.bytes)
        )
    }
}

/// Empty the cache's subdirectories (all of them with `all`). Files hoist does not know are left
/// alone, so a mistyped `--cache-dir` cannot wipe unrelated data.
///
/// # Errors
/// When a directory cannot be read or a file cannot be removed.
pub fn prune(dir: &Path, all: bool) -> anyhow::Result<PruneReport> {
    let mut report = PruneReport {
        dir: dir.to_path_buf(),
        files: 0,
        bytes: 0,
    };
    let names = PRUNED.iter().chain(if all { &KEPT[..] } else { &[] });
    for name in names {
        let sub = dir.join(name);
        match std::fs::symlink_metadata(&sub) {
            Ok(meta) if meta.is_dir() => {
                count(&sub, &mut report).with_context(|| format!("reading {}", sub.display()))?;
                std::fs::remove_dir_all(&sub)
                    .with_context(|| format!("removing {}", sub.display()))?;
            }
            Ok(_) => {
                anyhow::bail!(
                    "{} is not a directory; is --cache-dir {} really hoist's cache?",
                    sub.display(),
                    dir.display()
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", sub.display())),
        }
    }
    Ok(report)
}

fn count(dir: &Path, report: &mut PruneReport) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            count(&entry.path(), report)?;
        } else {
            report.files += 1;
            report.bytes += meta.len();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_known_dirs_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for (path, len) in [
            ("exports/abc/blob", 100usize),
            ("uploads/u1", 10),
            ("layer-map/m", 5),
            ("mine.txt", 7),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, vec![0u8; len]).expect("write");
        }
        let report = prune(root, false).expect("prune");
        assert_eq!((report.files, report.bytes), (2, 110));
        assert!(!root.join("exports").exists());
        assert!(root.join("layer-map/m").exists());
        assert!(root.join("mine.txt").exists());
        let report = prune(root, true).expect("prune all");
        assert_eq!((report.files, report.bytes), (1, 5));
        assert!(root.join("mine.txt").exists());
        // A missing cache is fine.
        let report = prune(&root.join("nope"), true).expect("missing");
        assert_eq!(report.files, 0);
    }
}
