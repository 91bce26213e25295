//! Manifests, indexes and configs, each kept next to the exact bytes it was parsed from.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Descriptor, Digest, Error, MediaType, Result};

/// The largest manifest, index or config hoist will parse (registries cap manifests at 4 MiB).
pub const MAX_JSON_SIZE: usize = 8 * 1024 * 1024;

/// A JSON document together with the bytes it came from; its digest is over those bytes.
///
/// Received documents are never re-serialized: pushing or storing one writes [`RawJson::bytes`].
///
/// `Debug` shows the digest, the length of the bytes and the parsed value, never the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RawJson<T> {
    bytes: Vec<u8>,
    digest: Digest,
    value: T,
}

impl<T: DeserializeOwned> RawJson<T> {
    /// Parse `bytes`, keeping them.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the bytes are too large or not the expected JSON.
    pub fn parse(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_JSON_SIZE {
            return Err(Error::invalid(format!(
                "JSON document of {} bytes exceeds the {MAX_JSON_SIZE}-byte limit",
                bytes.len()
            )));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("malformed {}: {e}", document_name::<T>())))?;
        let digest = Digest::sha256_of(&bytes);
        Ok(RawJson {
            bytes,
            digest,
            value,
        })
    }

    /// Parse `bytes` and check they hash to `expected`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::DigestMismatch`] before any parsing when the bytes do not match.
    pub fn parse_verified(bytes: Vec<u8>, expected: &Digest) -> Result<Self> {
        expected.verify_bytes(&bytes)?;
        let mut parsed = Self::parse(bytes)?;
        parsed.digest = expected.clone();
        Ok(parsed)
    }
}

impl<T: Serialize> RawJson<T> {
    /// Serialize a value hoist created. Maps are `BTreeMap`s, so the bytes are deterministic.
    ///
    /// # Errors
    /// Only if serialization itself fails, which for these types it does not.
    pub fn from_value(value: T) -> Result<Self> {
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| Error::invalid(format!("cannot serialize: {e}")))?;
        let digest = Digest::sha256_of(&bytes);
        Ok(RawJson {
            bytes,
            digest,
            value,
        })
    }
}

impl<T> RawJson<T> {
    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest of [`RawJson::bytes`].
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The parsed value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Consume into the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A descriptor of these bytes with `media_type`.
    pub fn descriptor(&self, media_type: impl Into<MediaType>) -> Descriptor {
        Descriptor::new(media_type, self.digest.clone(), self.bytes.len() as u64)
    }
}

impl<T: fmt::Debug> fmt::Debug for RawJson<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes are up to `MAX_JSON_SIZE` long, and the value says what they hold.
        f.debug_struct("RawJson")
            .field("digest", &format_args!("{}", self.digest))
            .field("len", &self.bytes.len())
            .field("value", &self.value)
            .finish()
    }
}

/// What a user calls the document `T` parses (`image config`, not `ImageConfig`).
fn document_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    match full.rsplit("::").next().unwrap_or(full) {
        "ImageConfig" => "image config",
        "ImageIndex" => "image index",
        "ImageManifest" => "image manifest",
        _ => "JSON document",
    }
}

/// An image manifest: OCI v1 or Docker schema 2 (same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (required for Docker, optional for OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// A manifest this one refers to (referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields hoist does not model (another tool's, or a later spec's), kept as given so that
    /// a manifest hoist writes anew in the OCI format (a spooled archive's, around layers stored
    /// under another digest; one converted from Docker v2 schema 2) does not drop them. A
    /// manifest converted to Docker v2 schema 2 drops them, as it drops annotations. A received
    /// manifest is never re-serialized ([`RawJson::bytes`]), so this only matters for one hoist
    /// writes. Parsing never puts a field named above here; a caller must not either (it would
    /// be written twice).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageManifest {
    /// An OCI image manifest (`schemaVersion` 2, the OCI manifest media type) of `config` and
    /// `layers`, base layer first, with no annotations.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Whether this is a container image: an image config and filesystem layers of kinds hoist
    /// knows, which can be unpacked, archived or loaded. Anything else is an artifact (a Helm
    /// chart, a signature, an SBOM or build attestation): its blobs are only ever copied as
    /// they are, to a registry or a layout.
    pub fn is_container_image(&self) -> bool {
        self.config.media_type.is_config() && self.layers.iter().all(|l| l.media_type.is_layer())
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// A manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields hoist does not know (another tool's, or a later spec's), kept so that rewriting
    /// a layout's `index.json` does not drop them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image config (the parts hoist reads; the raw bytes keep the rest).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Runtime defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The uncompressed layer digests.
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

impl ImageConfig {
    /// The platform the image is for, as its config says.
    pub fn platform(&self) -> crate::Platform {
        let mut platform = crate::Platform::new(&self.os, &self.architecture);
        platform.variant.clone_from(&self.variant);
        platform
    }
}

/// The runtime defaults of an image (`config` in the image config).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// User (and group) to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment, `KEY=value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Exposed ports (`80/tcp` -> `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// The `rootfs` section of a config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed digests of the layers, base first.
    pub diff_ids: Vec<Digest>,
}

impl RootFs {
    /// The `rootfs` of an image whose uncompressed layers have these digests, base first.
    pub fn new(diff_ids: Vec<Digest>) -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids,
        }
    }
}

/// A document fetched by reference: either an image manifest or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// An image manifest.
    Image(Box<RawJson<ImageManifest>>),
    /// An index or manifest list.
    Index(Box<RawJson<ImageIndex>>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<MediaType>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    layers: Option<serde::de::IgnoredAny>,
}

impl AnyManifest {
    /// Parse a manifest or index, using `content_type` (e.g. from HTTP) when the document itself
    /// does not say which it is.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for malformed JSON, [`crate::ErrorKind::Unsupported`]
    /// for documents that are neither.
    pub fn parse(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self> {
        if bytes.len() > MAX_JSON_SIZE {
            return Err(Error::invalid("manifest exceeds the size limit"));
        }
        let probe: Probe = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("malformed manifest: {e}")))?;
        let media_type = probe
            .media_type
            .or_else(|| content_type.map(MediaType::new));
        let is_index = match &media_type {
            Some(mt) if mt.is_index() => true,
            Some(mt) if mt.is_manifest() => false,
            _ => probe.manifests.is_some() && probe.layers.is_none(),
        };
        if let Some(mt) = &media_type
            && !mt.is_index()
            && !mt.is_manifest()
            && mt.as_str() != "application/json"
        {
            return Err(Error::new(
                crate::ErrorKind::Unsupported,
                format!(
                    "unsupported manifest media type {}",
                    mt.as_str().chars().take(200).collect::<String>()
                ),
            ));
        }
        if is_index {
            Ok(AnyManifest::Index(Box::new(RawJson::parse(bytes)?)))
        } else {
            Ok(AnyManifest::Image(Box::new(RawJson::parse(bytes)?)))
        }
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            AnyManifest::Image(m) => m.bytes(),
            AnyManifest::Index(i) => i.bytes(),
        }
    }

    /// The digest of the bytes.
    pub fn digest(&self) -> &Digest {
        match self {
            AnyManifest::Image(m) => m.digest(),
            AnyManifest::Index(i) => i.digest(),
        }
    }

    /// The media type: the document's own, else the OCI default for its kind.
    pub fn media_type(&self) -> MediaType {
        match self {
            AnyManifest::Image(m) => m
                .value()
                .media_type
                .clone()
                .unwrap_or_else(|| MediaType::new(MediaType::OCI_MANIFEST)),
            AnyManifest::Index(i) => i
                .value()
                .media_type
                .clone()
                .unwrap_or_else(|| MediaType::new(MediaType::OCI_INDEX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn manifest_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{CFG}","size":2}},"layers":[]}}"#,
            MediaType::OCI_MANIFEST,
            MediaType::OCI_CONFIG
        )
    }

    #[test]
    fn debug_shows_digest_length_and_value_not_bytes() {
        let raw = RawJson::<ImageManifest>::parse(manifest_json().into_bytes()).expect("parse");
        let text = format!("{raw:?}");
        assert!(text.starts_with("RawJson { digest: sha256:"), "{text}");
        assert!(text.contains(&raw.digest().to_string()), "{text}");
        assert!(
            text.contains(&format!("len: {}", raw.bytes().len())),
            "{text}"
        );
        assert!(
            text.contains("schema_version: 2") && text.contains(CFG),
            "{text}"
        );
        // `{"` as decimals, what a derived `Debug` printed first.
        assert!(!text.contains("123, 34"), "{text}");
    }

    #[test]
    fn a_malformed_document_is_named_as_users_name_it() {
        let err = RawJson::<ImageConfig>::parse(b"{\"architecture\": 5}".to_vec())
            .expect_err("not a config");
        assert!(err.to_string().contains("malformed image config"), "{err}");
        let err = RawJson::<ImageIndex>::parse(b"[]".to_vec()).expect_err("not an index");
        assert!(err.to_string().contains("malformed image index"), "{err}");
    }

    #[test]
    fn keeps_exact_bytes_and_digest() {
        // Whitespace that a re-serialization would drop must survive.
        let text = manifest_json().replace(',', ", ");
        let raw: RawJson<ImageManifest> =
            RawJson::parse(text.clone().into_bytes()).expect("parses");
        assert_eq!(raw.bytes(), text.as_bytes());
        assert_eq!(raw.digest(), &Digest::sha256_of(text.as_bytes()));
        assert_eq!(raw.value().config.size, 2);
    }

    #[test]
    fn parse_verified_rejects_wrong_digest() {
        let wrong = Digest::sha256_of(b"x");
        let err = RawJson::<ImageManifest>::parse_verified(manifest_json().into_bytes(), &wrong)
            .expect_err("mismatch");
        assert!(err.is_digest_mismatch());
    }

    #[test]
    fn any_manifest_dispatches() {
        let m = AnyManifest::parse(manifest_json().into_bytes(), None).expect("manifest");
        assert!(matches!(m, AnyManifest::Image(_)));
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
        let i = AnyManifest::parse(idx, Some(MediaType::OCI_INDEX)).expect("index");
        assert!(matches!(i, AnyManifest::Index(_)));
        let bad = AnyManifest::parse(b"{not json".to_vec(), None).expect_err("bad");
        assert!(bad.is_invalid_input());
    }

    #[test]
    fn created_documents_are_deterministic() {
        let mut cfg = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..ImageConfig::default()
        };
        cfg.rootfs.kind = "layers".into();
        let a = RawJson::from_value(cfg.clone()).expect("ser");
        let b = RawJson::from_value(cfg).expect("ser");
        assert_eq!(a.bytes(), b.bytes());
    }
}
