//! Upload state files: what lets a later process resume an interrupted blob upload.

use std::path::{Path, PathBuf};

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

/// Write atomically (temp file + rename), so a crash never leaves half a state file.
pub(crate) async fn save(path: &Path, state: &UploadState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
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
}
