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
}

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
