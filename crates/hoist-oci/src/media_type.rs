//! Media types of manifests, indexes, configs and layers, OCI and Docker alike.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::Compression;

/// A media type string, with the well-known ones as constants and predicates to classify them.
///
/// Unknown media types are kept as they are (registries carry artifacts of every kind); code that
/// needs a layer or a manifest asks [`MediaType::is_layer`] or [`MediaType::is_manifest`].
///
/// Deserializing checks the RFC 6838 shape (`type/subtype`, restricted-name characters, at
/// most 127 each), so a document cannot smuggle arbitrary text in a media type field.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MediaType(String);

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MediaType::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! media_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl MediaType {
            $($(#[$doc])* pub const $name: &'static str = $value;)*
        }
    };
}

media_types! {
    /// OCI image manifest.
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable uncompressed layer (deprecated, still read).
    OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable gzip layer (deprecated, still read).
    OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// OCI non-distributable zstd layer (deprecated, still read).
    OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    /// OCI empty JSON descriptor (`{}`), used by artifacts.
    OCI_EMPTY = "application/vnd.oci.empty.v1+json";
    /// Docker schema 2 manifest.
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (rare, but docker-archives imply it).
    DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker zstd layer (what moby writes for `--compression zstd` with the docker media types).
    DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    /// Docker foreign (non-distributable) gzip layer.
    DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker foreign (non-distributable) uncompressed layer.
    DOCKER_LAYER_FOREIGN_TAR = "application/vnd.docker.image.rootfs.foreign.diff.tar";
}

impl MediaType {
    /// Wrap a media type string as it is, checking nothing: for the constants of this type
    /// and other strings the program itself spells. A string from input (a document, a
    /// header, a command line) goes through [`MediaType::parse`] (or `str::parse`), which
    /// checks the RFC 6838 shape, so no text that could break a header line or a document
    /// gets in; deserializing does so already. `From<&str>` and `From<String>` are `new`.
    pub fn new(s: impl Into<String>) -> Self {
        MediaType(s.into())
    }

    /// Parse and check the RFC 6838 shape: `type/subtype`, each 1 to 127 characters of
    /// letters, digits and `!#$&-^_.+`, starting with a letter or digit. Parameters (`; x=y`)
    /// are not accepted: strip them from a `Content-Type` first.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the malformed media type.
    pub fn parse(s: &str) -> crate::Result<Self> {
        let name_ok = |part: &str| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.len() <= 127
                && b[0].is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
        };
        match s.split_once('/') {
            Some((t, sub)) if name_ok(t) && name_ok(sub) => Ok(MediaType(s.to_owned())),
            _ => Err(crate::Error::invalid(format!(
                "invalid media type {:?}: expected type/subtype",
                s.chars().take(80).collect::<String>()
            ))),
        }
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An image manifest (OCI or Docker schema 2).
    pub fn is_manifest(&self) -> bool {
        matches!(self.as_str(), Self::OCI_MANIFEST | Self::DOCKER_MANIFEST)
    }

    /// An index or manifest list.
    pub fn is_index(&self) -> bool {
        matches!(self.as_str(), Self::OCI_INDEX | Self::DOCKER_MANIFEST_LIST)
    }

    /// An image config.
    pub fn is_config(&self) -> bool {
        matches!(self.as_str(), Self::OCI_CONFIG | Self::DOCKER_CONFIG)
    }

    /// A filesystem layer of a known kind.
    pub fn is_layer(&self) -> bool {
        self.layer_compression().is_some()
    }

    /// The Docker family of media types (as opposed to OCI).
    pub fn is_docker(&self) -> bool {
        self.0.starts_with("application/vnd.docker.")
    }

    /// For a layer media type, its compression; `None` when this is not a known layer type.
    pub fn layer_compression(&self) -> Option<Compression> {
        match self.as_str() {
            Self::OCI_LAYER
            | Self::OCI_LAYER_NONDIST
            | Self::DOCKER_LAYER
            | Self::DOCKER_LAYER_FOREIGN_TAR => Some(Compression::None),
            Self::OCI_LAYER_GZIP
            | Self::OCI_LAYER_NONDIST_GZIP
            | Self::DOCKER_LAYER_GZIP
            | Self::DOCKER_LAYER_FOREIGN => Some(Compression::Gzip),
            Self::OCI_LAYER_ZSTD | Self::OCI_LAYER_NONDIST_ZSTD | Self::DOCKER_LAYER_ZSTD => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// The OCI layer media type for `compression`.
    pub fn oci_layer(compression: Compression) -> Self {
        MediaType::new(match compression {
            Compression::None => Self::OCI_LAYER,
            Compression::Gzip => Self::OCI_LAYER_GZIP,
            Compression::Zstd => Self::OCI_LAYER_ZSTD,
        })
    }

    /// The Docker layer media type for `compression`.
    pub fn docker_layer(compression: Compression) -> Self {
        MediaType::new(match compression {
            Compression::None => Self::DOCKER_LAYER,
            Compression::Gzip => Self::DOCKER_LAYER_GZIP,
            Compression::Zstd => Self::DOCKER_LAYER_ZSTD,
        })
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaType({})", self.0)
    }
}

impl std::str::FromStr for MediaType {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        MediaType::parse(s)
    }
}

/// As [`MediaType::new`]: unchecked, for strings the program spells; use
/// [`MediaType::parse`] for input.
impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        MediaType::new(s)
    }
}

impl PartialEq<&str> for MediaType {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert!(MediaType::new(MediaType::OCI_MANIFEST).is_manifest());
        assert!(MediaType::new(MediaType::DOCKER_MANIFEST_LIST).is_index());
        assert!(MediaType::new(MediaType::DOCKER_CONFIG).is_config());
        assert_eq!(
            MediaType::new(MediaType::DOCKER_LAYER_GZIP).layer_compression(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            MediaType::oci_layer(Compression::Zstd).as_str(),
            MediaType::OCI_LAYER_ZSTD
        );
        assert!(!MediaType::new("application/json").is_layer());
    }

    #[test]
    fn deserialize_checks_the_shape() {
        let ok: MediaType =
            serde_json::from_str(&format!("\"{}\"", MediaType::OCI_LAYER_GZIP)).expect("valid");
        assert!(ok.is_layer());
        for bad in [
            "",
            "application",
            "/json",
            "application/",
            "a/b/c",
            "text/html; x=1",
            "a b/c",
        ] {
            let json = serde_json::to_string(bad).expect("string");
            assert!(serde_json::from_str::<MediaType>(&json).is_err(), "{bad:?}");
            assert!(MediaType::parse(bad).expect_err(bad).is_invalid_input());
            assert!(bad.parse::<MediaType>().is_err());
        }
    }
}
