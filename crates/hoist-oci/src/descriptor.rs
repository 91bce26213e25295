//! Descriptors: the typed pointer (media type, digest, size) from one blob to another.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Digest, MediaType};

/// A content descriptor as in the OCI image spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the referenced blob is.
    pub media_type: MediaType,
    /// The digest of the referenced blob's bytes.
    pub digest: Digest,
    /// The size of the referenced blob in bytes.
    pub size: u64,
    /// Alternate download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Free-form annotations, kept sorted so serialization is deterministic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of the referenced manifest (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest, when it is an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The referenced content itself, base64-encoded (OCI 1.1), kept as given so rewriting an
    /// index does not drop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Fields hoist does not model (another tool's, or a later spec's), kept as given so that
    /// a document hoist rewrites (`index.json`, an index or manifest written anew) does not
    /// drop them. Parsing never puts a field named above here; a caller must not either (it
    /// would be written twice).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no urls, annotations, platform or other fields.
    pub fn new(media_type: impl Into<MediaType>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            data: None,
            extra: BTreeMap::new(),
        }
    }

    /// This descriptor naming other bytes: `media_type`, `digest` and `size` replace its own
    /// (a manifest or index written anew, listed where the old one was).
    ///
    /// When the digest changes, what is bound to the old bytes goes with them: `data` (the old
    /// bytes themselves, which would no longer match the digest, an invalid descriptor) and
    /// `urls` (where the old bytes can be fetched). What says what the content is for stays:
    /// the platform, the artifact type, the annotations (a layout's tag is one) and `extra`
    /// (fields hoist cannot judge, kept as a rewritten `index.json` keeps them). With the same
    /// digest, only the media type and size are replaced.
    ///
    /// A layer whose bytes were recompressed keeps nothing of its old descriptor: its
    /// annotations may describe the old encoding (a TOC digest), so build it with
    /// [`Descriptor::new`].
    #[must_use]
    pub fn with_content(
        &self,
        media_type: impl Into<MediaType>,
        digest: Digest,
        size: u64,
    ) -> Descriptor {
        let mut out = self.clone();
        if digest != self.digest {
            out.data = None;
            out.urls.clear();
        }
        out.media_type = media_type.into();
        out.digest = digest;
        out.size = size;
        out
    }
}

/// As [`MediaType::new`]: unchecked, for strings the program spells; use
/// [`MediaType::parse`] for input.
impl From<String> for MediaType {
    fn from(s: String) -> Self {
        MediaType::new(s)
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in GOARCH terms (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system in GOOS terms (`linux`).
    pub os: String,
    /// OS version (Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant (`v8` for arm64, `v7` for arm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields hoist does not model (the `features` of older specs, a vendor's), kept as given
    /// so that rewriting an index does not drop them; they play no part in matching. As with
    /// [`Descriptor::extra`], no field named above belongs here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_content_drops_what_names_the_old_bytes_and_keeps_the_rest() {
        let old = Digest::sha256_of(b"{}");
        let mut d = Descriptor::new(MediaType::DOCKER_MANIFEST, old.clone(), 2);
        d.data = Some("e30=".into());
        d.urls = vec!["https://example.com/m".into()];
        d.annotations
            .insert(crate::layout::REF_NAME.into(), "v1".into());
        d.platform = Some(crate::Platform::new("linux", "arm64"));
        d.artifact_type = Some(MediaType::new("application/vnd.example"));
        d.extra
            .insert("io.example.vendor".into(), serde_json::json!(1));
        let new = Digest::sha256_of(b"{ }");
        let moved = d.with_content(MediaType::OCI_MANIFEST, new.clone(), 3);
        assert_eq!(
            (moved.media_type.as_str(), &moved.digest, moved.size),
            (MediaType::OCI_MANIFEST, &new, 3)
        );
        assert_eq!(moved.data, None);
        assert!(moved.urls.is_empty());
        assert_eq!(moved.annotations, d.annotations);
        assert_eq!(moved.platform, d.platform);
        assert_eq!(moved.artifact_type, d.artifact_type);
        assert_eq!(moved.extra, d.extra);
        // The same bytes under another media type: still described by data and urls.
        let retyped = d.with_content(MediaType::OCI_MANIFEST, old, 2);
        assert_eq!((&retyped.data, &retyped.urls), (&d.data, &d.urls));
    }
}
