//! Upload state files: what lets a later process resume an interrupted blob upload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hoist_oci::Digest;
use serde::{Deserialize, Serialize};

/// One in-flight upload, persisted after every acknowledged chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadState {
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    /// The newest `Location` of the session.
    pub location: String,
    /// Bytes the registry acknowledged.
    pub offset: u64,
}

/// The state file for `(registry, repository, digest)` inside `dir`. The name is derived from
/// the digest (validated hex) and a hash of the repository, so it is always a plain file name.
pub(crate) fn state_path(dir: &Path, registry: &str, repository: &str, digest: &Digest) -> PathBuf {
    let repo_hash = Digest::sha256_of(format!("{registry}/{repository}").as_bytes());
    dir.join(format!(
        "upload-{}-{}-{}.json",
        digest.algorithm(),
        digest.hex(),
        &repo_hash.hex()[..16]
    ))
}

/// Load a state file; anything unreadable or not matching is treated as absent.
pub(crate) async fn load(
    path: &Path,
    registry: &str,
    repository: &str,
    digest: &Digest,
) -> Option<UploadState> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let st: UploadState = serde_json::from_slice(&bytes).ok()?;
    (st.registry == registry && st.repository == repository && &st.digest == digest).then_some(st)
}

/// Temp files written by this process so far: with the pid, a unique suffix per write.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write atomically (temp file + rename), so a crash never leaves half a state file. Each
/// write has a temp file of its own (`NAME.PID-N.tmp`): two pushes of the same blob to the
/// same repository (a layer listed twice) share the state file, and with one temp name their
/// writes could interleave and rename a torn file into place, or fail to rename one the other
/// moved. With one each, the last rename wins whole.
pub(crate) async fn save(path: &Path, state: &UploadState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = temp_path(
        path,
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    let written = match tokio::fs::write(&tmp, bytes).await {
        Ok(()) => tokio::fs::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
}

/// The temp file for write `n` of process `pid` to `path`: beside it, so the rename stays on
/// one file system.
fn temp_path(path: &Path, pid: u32, n: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{pid}-{n}.tmp"));
    path.with_file_name(name)
}

/// Remove a state file; a missing one is fine.
pub(crate) async fn remove(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Digest::sha256_of(b"blob");
        let p = state_path(dir.path(), "r:5000", "a/b", &d);
        assert!(p.starts_with(dir.path()));
        assert_ne!(p, state_path(dir.path(), "r:5000", "a/c", &d));
        let st = UploadState {
            registry: "r:5000".into(),
            repository: "a/b".into(),
            digest: d.clone(),
            location: "http://r:5000/v2/a/b/blobs/uploads/u?_state=x".into(),
            offset: 42,
        };
        save(&p, &st).await.expect("save");
        assert_eq!(load(&p, "r:5000", "a/b", &d).await, Some(st));
        assert_eq!(load(&p, "r:5000", "a/x", &d).await, None);
        tokio::fs::write(&p, b"garbage").await.expect("write");
        assert_eq!(load(&p, "r:5000", "a/b", &d).await, None);
        remove(&p).await;
        remove(&p).await;
        assert!(!p.exists());
    }

    #[test]
    fn temp_files_are_per_write_and_beside_the_state_file() {
        let p = Path::new("/s/upload-sha256-ab-cd.json");
        let a = temp_path(p, 7, 1);
        assert_eq!(a, Path::new("/s/upload-sha256-ab-cd.json.7-1.tmp"));
        assert_ne!(a, temp_path(p, 7, 2));
        assert_ne!(a, temp_path(p, 8, 1));
    }

    /// Two pushes of the same blob (a layer listed twice) write one state file at once:
    /// every write succeeds and the file is always whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_never_tear_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Digest::sha256_of(b"blob");
        let p = state_path(dir.path(), "r:5000", "a/b", &d);
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let (p, d) = (p.clone(), d.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..40u64 {
                    let st = UploadState {
                        registry: "r:5000".into(),
                        repository: "a/b".into(),
                        digest: d.clone(),
                        // Lengths differ per writer, so an interleaving would show.
                        location: format!("http://r:5000/u/{}", "x".repeat((w * 97 + i) as usize)),
                        offset: w * 1000 + i,
                    };
                    save(&p, &st).await.expect("save");
                    assert!(
                        load(&p, "r:5000", "a/b", &d).await.is_some(),
                        "torn state file"
                    );
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 1, "temp files left: {left:?}");
    }
}
