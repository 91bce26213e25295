//! `docker inspect` for images: the facts needed to decide what to export and what is pushed.

use hoist_oci::{Digest, Platform};

use crate::connect::Daemon;
use crate::error::{Error, ErrorKind, Result};

/// What the daemon knows about one image. More facts may come, so outside this crate it is
/// made with [`ImageInfo::new`] (for a test double, say), not a struct literal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageInfo {
    /// The image ID. With the classic image store (dockerd 20.10) this is the config digest;
    /// with the containerd store it is the manifest or index digest.
    pub id: Digest,
    /// Tags pointing at the image (`repo:tag`).
    pub repo_tags: Vec<String>,
    /// Registry digests the image was pulled or pushed as (`repo@sha256:...`).
    pub repo_digests: Vec<String>,
    /// Uncompressed size in bytes, as the daemon reports it.
    pub size: u64,
    /// The uncompressed layer digests (`RootFS.Layers`), bottom layer first.
    pub diff_ids: Vec<Digest>,
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`), if any.
    pub variant: Option<String>,
}

impl ImageInfo {
    /// An image known only by its ID: no tags, no layers, size 0 and an empty platform, to be
    /// filled in through the public fields.
    pub fn new(id: Digest) -> Self {
        ImageInfo {
            id,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            size: 0,
            diff_ids: Vec::new(),
            architecture: String::new(),
            os: String::new(),
            variant: None,
        }
    }

    /// The image's platform.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            ..Platform::default()
        }
    }

    /// Build from the daemon's answer; anything malformed is the daemon's fault.
    pub(crate) fn from_inspect(raw: bollard::models::ImageInspect) -> Result<ImageInfo> {
        let bad = |what: String| Error::new(ErrorKind::DaemonFailed, what);
        let id_text = raw
            .id
            .ok_or_else(|| bad("the daemon's image inspect has no Id".into()))?;
        let id = Digest::parse(&id_text).map_err(|e| {
            bad(format!(
                "the daemon's image Id {id_text:?} is not a digest: {e}"
            ))
        })?;
        let diff_ids = raw
            .root_fs
            .and_then(|root| root.layers)
            .unwrap_or_default()
            .iter()
            .map(|layer| {
                Digest::parse(layer)
                    .map_err(|e| bad(format!("layer diff_id {layer:?} is not a digest: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ImageInfo {
            id,
            repo_tags: raw.repo_tags.unwrap_or_default(),
            repo_digests: raw.repo_digests.unwrap_or_default(),
            size: raw.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            diff_ids,
            architecture: raw.architecture.unwrap_or_default(),
            os: raw.os.unwrap_or_default(),
            variant: raw.variant.filter(|v| !v.is_empty()),
        })
    }
}

impl Daemon {
    /// Inspect one image by name, ID or digest reference.
    pub async fn inspect(&self, image: &str) -> Result<ImageInfo> {
        let raw = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|e| self.classify(e).with_image(image))?;
        ImageInfo::from_inspect(raw).map_err(|e| e.with_image(image).with_host(&self.host()))
    }

    /// Whether the daemon holds `image`.
    pub async fn exists(&self, image: &str) -> Result<bool> {
        match self.inspect(image).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Point `repo:tag` (or `repo`, meaning `latest`) at `image`.
    pub async fn tag(&self, image: &str, target: &str) -> Result<()> {
        let (repo, tag) = split_tag(target).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("bad tag {target:?}: expected REPOSITORY[:TAG]"),
            )
        })?;
        let options = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|e| self.classify(e).with_image(image))
    }
}

/// Split `repo[:tag]` into repository and tag, telling a registry port from a tag. A digest
/// reference (`@sha256:`) cannot be a tag target.
pub(crate) fn split_tag(target: &str) -> Option<(&str, &str)> {
    if target.is_empty() || target.contains('@') || target.chars().any(char::is_whitespace) {
        return None;
    }
    let last_slash = target.rfind('/').map_or(0, |i| i + 1);
    match target[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            let (repo, tag) = (&target[..at], &target[at + 1..]);
            (!repo.is_empty() && !tag.is_empty()).then_some((repo, tag))
        }
        None => Some((target, "latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_registry_port() {
        assert_eq!(split_tag("a/b:1"), Some(("a/b", "1")));
        assert_eq!(
            split_tag("localhost:5000/b"),
            Some(("localhost:5000/b", "latest"))
        );
        assert_eq!(
            split_tag("localhost:5000/b:v2"),
            Some(("localhost:5000/b", "v2"))
        );
        assert_eq!(split_tag("b@sha256:abc"), None);
        assert_eq!(split_tag("b:"), None);
        assert_eq!(split_tag(""), None);
    }

    #[test]
    fn inspect_answer_is_validated() {
        let raw: bollard::models::ImageInspect = serde_json::from_value(serde_json::json!({
            "Id": "sha256:1e0575e153cdc03693637b581a5ab849c4bc116d7af26862e9759e7c159c4334",
            "RepoTags": ["multi:1"],
            "RepoDigests": [],
            "Size": 101234,
            "Architecture": "amd64",
            "Os": "linux",
            "RootFS": {"Type": "layers", "Layers": [
                "sha256:7cce2ceb1bb06e2d1eecead66857c55c81535b454304fbb719db933ff3850d58"
            ]}
        }))
        .expect("fixture parses");
        let info = ImageInfo::from_inspect(raw.clone()).expect("valid");
        assert_eq!(info.repo_tags, vec!["multi:1".to_string()]);
        assert_eq!(info.size, 101234);
        assert_eq!(info.diff_ids.len(), 1);
        assert_eq!(info.platform().architecture, "amd64");
        assert_eq!(info.variant, None);

        let mut broken = raw;
        broken.root_fs = Some(bollard::models::ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(vec!["sha256:../../etc".into()]),
        });
        assert!(
            ImageInfo::from_inspect(broken)
                .expect_err("bad diff id")
                .is_daemon_failed()
        );
    }
}
