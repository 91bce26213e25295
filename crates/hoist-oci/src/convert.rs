//! Manifest format conversion: an OCI image manifest to a Docker v2 schema 2 manifest and back,
//! an OCI image index to a Docker manifest list and back.
//!
//! The two formats describe the same image with different media types, so a conversion
//! rewrites only the document: the config and layer blobs keep their bytes and digests (no blob
//! is read or hashed), and the new document gets a new digest, computed over its new bytes.
//! The result is serialized by serde from hoist's own types (fields in the order the types
//! declare them, maps sorted, no whitespace) and parsed back, so the value held and the bytes
//! written always agree.
//!
//! What Docker v2 schema 2 cannot say is refused with [`crate::ErrorKind::Unsupported`] rather
//! than dropped: zstd and encrypted layers, artifacts (a config that is no image config, an
//! `artifactType`), a `subject`, and any media type not listed below. Annotations, which the
//! Docker format has no place for, are dropped, as `containers/image` (skopeo, podman) drops
//! them: the manifest's, the index's and every descriptor's. So are the fields hoist does not
//! model (the `extra` maps: a vendor's, or a later OCI spec's), which are no Docker fields.
//! Descriptors keep their media type, digest, size and `urls` (and, in a manifest list, the
//! platform). Converted to OCI, a document keeps everything it had but its media types; an
//! index entry naming an image converted keeps its platform and annotations, not the `data` or
//! `urls` of the old image ([`Descriptor::with_content`]).
//!
//! | OCI | Docker v2 schema 2 |
//! |-----|--------------------|
//! | `…oci.image.manifest.v1+json` | `…docker.distribution.manifest.v2+json` |
//! | `…oci.image.index.v1+json` | `…docker.distribution.manifest.list.v2+json` |
//! | `…oci.image.config.v1+json` | `…docker.container.image.v1+json` |
//! | `…oci.image.layer.v1.tar` | `…docker.image.rootfs.diff.tar` |
//! | `…oci.image.layer.v1.tar+gzip` | `…docker.image.rootfs.diff.tar.gzip` |
//! | `…layer.nondistributable.v1.tar` | `…docker.image.rootfs.foreign.diff.tar` |
//! | `…layer.nondistributable.v1.tar+gzip` | `…docker.image.rootfs.foreign.diff.tar.gzip` |
//! | `…oci.image.layer.v1.tar+zstd` | refused (the Docker zstd type converts to it) |
//!
//! Converting a document to the format it already has returns it unchanged: the same bytes
//! and digest. An index is converted after its images: the caller converts each image and
//! passes the new descriptors, keyed by the old digests.
//!
//! ```
//! use hoist_oci::convert::{ManifestFormat, convert_manifest};
//! use hoist_oci::{Descriptor, Digest, ImageManifest, MediaType, RawJson};
//!
//! let config = Descriptor::new(MediaType::OCI_CONFIG, Digest::sha256_of(b"{}"), 2);
//! let layer = Descriptor::new(MediaType::OCI_LAYER_GZIP, Digest::sha256_of(b"layer"), 5);
//! let oci = RawJson::from_value(ImageManifest::new(config, vec![layer.clone()]))?;
//! let docker = convert_manifest(&oci, ManifestFormat::DockerV2S2)?;
//! assert_eq!(docker.descriptor.media_type, MediaType::DOCKER_MANIFEST);
//! assert_eq!(docker.descriptor.digest, Digest::sha256_of(docker.document.bytes()));
//! let layers = &docker.document.value().layers;
//! assert_eq!(layers[0].media_type, MediaType::DOCKER_LAYER_GZIP);
//! assert_eq!(layers[0].digest, layer.digest); // the blob is the same
//! # Ok::<(), hoist_oci::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Descriptor, Digest, Error, ErrorKind, ImageIndex, ImageManifest, MediaType, RawJson};

/// A manifest format a document can be converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestFormat {
    /// OCI image manifests and indexes.
    Oci,
    /// Docker v2 schema 2 manifests and manifest lists.
    DockerV2S2,
}

impl ManifestFormat {
    /// The media type of an image manifest in this format.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => MediaType::OCI_MANIFEST,
            ManifestFormat::DockerV2S2 => MediaType::DOCKER_MANIFEST,
        }
    }

    /// The media type of an index (manifest list) in this format.
    pub fn index_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => MediaType::OCI_INDEX,
            ManifestFormat::DockerV2S2 => MediaType::DOCKER_MANIFEST_LIST,
        }
    }

    /// The format of an image manifest: its media type's (an OCI manifest may leave it out).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for a media type that is no image manifest of either format.
    pub fn of_manifest(manifest: &ImageManifest) -> crate::Result<Self> {
        match manifest.media_type.as_ref().map(MediaType::as_str) {
            None | Some(MediaType::OCI_MANIFEST) => Ok(ManifestFormat::Oci),
            Some(MediaType::DOCKER_MANIFEST) => Ok(ManifestFormat::DockerV2S2),
            Some(other) => Err(unsupported(format!(
                "the manifest's media type {other} is no OCI or Docker v2 schema 2 image manifest"
            ))),
        }
    }

    /// The format of an index: its media type's (an OCI index may leave it out).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for a media type that is no index of either format.
    pub fn of_index(index: &ImageIndex) -> crate::Result<Self> {
        match index.media_type.as_ref().map(MediaType::as_str) {
            None | Some(MediaType::OCI_INDEX) => Ok(ManifestFormat::Oci),
            Some(MediaType::DOCKER_MANIFEST_LIST) => Ok(ManifestFormat::DockerV2S2),
            Some(other) => Err(unsupported(format!(
                "the index's media type {other} is no OCI index or Docker manifest list"
            ))),
        }
    }
}

impl fmt::Display for ManifestFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManifestFormat::Oci => "OCI",
            ManifestFormat::DockerV2S2 => "Docker v2 schema 2",
        })
    }
}

/// A converted document: its new bytes (parsed back) and the descriptor that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted<T> {
    /// The document, holding the bytes to write.
    pub document: RawJson<T>,
    /// Media type, digest and size of [`Converted::document`]'s bytes.
    pub descriptor: Descriptor,
}

impl<T> Converted<T> {
    /// Whether the conversion changed the document (its digest differs from `before`'s).
    pub fn changed_from(&self, before: &RawJson<T>) -> bool {
        self.document.digest() != before.digest()
    }
}

/// `manifest` as an image manifest of `format`; unchanged when it already is one.
///
/// # Errors
/// [`ErrorKind::Unsupported`] naming what `format` cannot describe: to Docker v2 schema 2, a
/// zstd or encrypted layer, an artifact, a `subject`, or a media type with no Docker
/// counterpart; to OCI, a media type with no OCI counterpart.
pub fn convert_manifest(
    manifest: &RawJson<ImageManifest>,
    format: ManifestFormat,
) -> crate::Result<Converted<ImageManifest>> {
    let value = manifest.value();
    let from = ManifestFormat::of_manifest(value)?;
    if from == format {
        return Ok(Converted {
            descriptor: manifest.descriptor(format.manifest_media_type()),
            document: manifest.clone(),
        });
    }
    let converted = match format {
        ManifestFormat::DockerV2S2 => to_docker_manifest(value)?,
        ManifestFormat::Oci => to_oci_manifest(value)?,
    };
    reparsed(&converted, format.manifest_media_type())
}

/// `index` as an index of `format`, listing the converted images: `children` maps the digest
/// of each image the index lists to the descriptor of that image converted (its media type,
/// digest and size replace the listed ones; the platform is kept). Unchanged when the index
/// already has `format` and no listed image changed.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when `children` lacks a listed image or gives one of another
/// format; [`ErrorKind::Unsupported`] for an index with an `artifactType` or a `subject` on its
/// way to a Docker manifest list.
pub fn convert_index(
    index: &RawJson<ImageIndex>,
    format: ManifestFormat,
    children: &BTreeMap<Digest, Descriptor>,
) -> crate::Result<Converted<ImageIndex>> {
    let value = index.value();
    let from = ManifestFormat::of_index(value)?;
    let mut manifests = Vec::with_capacity(value.manifests.len());
    let mut children_changed = false;
    for listed in &value.manifests {
        let Some(new) = children.get(&listed.digest) else {
            return Err(Error::invalid(format!(
                "no converted manifest was given for the listed image {}",
                listed.digest
            )));
        };
        if new.media_type != format.manifest_media_type() {
            return Err(Error::invalid(format!(
                "the listed image {} was given as {}, not as an {format} image manifest",
                listed.digest, new.media_type
            )));
        }
        children_changed |= new.digest != listed.digest
            || new.media_type != listed.media_type
            || new.size != listed.size;
        // The entry names the converted image; what named the old bytes (embedded `data`,
        // `urls`) goes when they changed.
        let moved = listed.with_content(new.media_type.clone(), new.digest.clone(), new.size);
        let entry = match format {
            // A manifest list entry has no annotations, artifact type or embedded data.
            ManifestFormat::DockerV2S2 => Descriptor {
                urls: moved.urls,
                platform: moved.platform,
                ..new_pointer(new)
            },
            ManifestFormat::Oci => moved,
        };
        manifests.push(entry);
    }
    if from == format && !children_changed {
        return Ok(Converted {
            descriptor: index.descriptor(format.index_media_type()),
            document: index.clone(),
        });
    }
    check_index(value, format)?;
    let converted = match format {
        ManifestFormat::DockerV2S2 => ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::DOCKER_MANIFEST_LIST)),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        },
        ManifestFormat::Oci => ImageIndex {
            media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
            manifests,
            ..value.clone()
        },
    };
    reparsed(&converted, format.index_media_type())
}

/// Whether `index` itself (not the images it lists) can be written as `format`: checked by
/// [`convert_index`], and worth asking before the images are copied.
///
/// # Errors
/// [`ErrorKind::Unsupported`] for an index with an `artifactType` or a `subject` on its way to
/// a Docker manifest list, or an index of neither format.
pub fn check_index(index: &ImageIndex, format: ManifestFormat) -> crate::Result<()> {
    ManifestFormat::of_index(index)?;
    if format == ManifestFormat::DockerV2S2 {
        if let Some(artifact) = &index.artifact_type {
            return Err(unsupported(format!(
                "the index is an artifact ({artifact}); a Docker manifest list lists images only"
            )));
        }
        if let Some(subject) = &index.subject {
            return Err(unsupported(format!(
                "the index refers to {} as its subject; a Docker manifest list has no subject",
                subject.digest
            )));
        }
    }
    Ok(())
}

/// OCI (or a manifest mixing both families) to Docker v2 schema 2.
fn to_docker_manifest(value: &ImageManifest) -> crate::Result<ImageManifest> {
    if let Some(artifact) = &value.artifact_type {
        return Err(unsupported(format!(
            "the manifest is an artifact ({artifact}), not an image; Docker v2 schema 2 holds \
             images only"
        )));
    }
    if let Some(subject) = &value.subject {
        return Err(unsupported(format!(
            "the manifest refers to {} as its subject; Docker v2 schema 2 has no subject",
            subject.digest
        )));
    }
    let config_type = match value.config.media_type.as_str() {
        MediaType::OCI_CONFIG | MediaType::DOCKER_CONFIG => MediaType::DOCKER_CONFIG,
        other => {
            return Err(unsupported(format!(
                "the manifest's config is {other}, not an image config: an artifact, which \
                 Docker v2 schema 2 cannot hold"
            ))
            .with_digest(&value.config.digest));
        }
    };
    let layers = value
        .layers
        .iter()
        .map(|layer| {
            let media_type =
                docker_layer_type(&layer.media_type).map_err(|e| e.with_digest(&layer.digest))?;
            Ok(Descriptor {
                media_type: MediaType::new(media_type),
                urls: layer.urls.clone(),
                ..new_pointer(layer)
            })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    Ok(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::DOCKER_MANIFEST)),
        artifact_type: None,
        config: Descriptor {
            media_type: MediaType::new(config_type),
            urls: value.config.urls.clone(),
            ..new_pointer(&value.config)
        },
        layers,
        subject: None,
        annotations: BTreeMap::new(),
        // What hoist does not model is OCI's or a vendor's, never Docker's: dropped, as the
        // annotations are (and as a manifest list drops the index's).
        extra: BTreeMap::new(),
    })
}

/// Docker v2 schema 2 to OCI. Descriptor fields other than the media type are kept as they are.
fn to_oci_manifest(value: &ImageManifest) -> crate::Result<ImageManifest> {
    let config_type = match value.config.media_type.as_str() {
        MediaType::DOCKER_CONFIG | MediaType::OCI_CONFIG => MediaType::OCI_CONFIG,
        other => {
            return Err(unsupported(format!(
                "the manifest's config is {other}, not an image config"
            ))
            .with_digest(&value.config.digest));
        }
    };
    let layers = value
        .layers
        .iter()
        .map(|layer| {
            let media_type =
                oci_layer_type(&layer.media_type).map_err(|e| e.with_digest(&layer.digest))?;
            Ok(Descriptor {
                media_type: MediaType::new(media_type),
                ..layer.clone()
            })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    Ok(ImageManifest {
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        config: Descriptor {
            media_type: MediaType::new(config_type),
            ..value.config.clone()
        },
        layers,
        ..value.clone()
    })
}

/// The Docker v2 schema 2 media type of a layer.
fn docker_layer_type(media_type: &MediaType) -> crate::Result<&'static str> {
    Ok(match media_type.as_str() {
        MediaType::OCI_LAYER | MediaType::DOCKER_LAYER => MediaType::DOCKER_LAYER,
        MediaType::OCI_LAYER_GZIP | MediaType::DOCKER_LAYER_GZIP => MediaType::DOCKER_LAYER_GZIP,
        MediaType::OCI_LAYER_NONDIST | MediaType::DOCKER_LAYER_FOREIGN_TAR => {
            MediaType::DOCKER_LAYER_FOREIGN_TAR
        }
        MediaType::OCI_LAYER_NONDIST_GZIP | MediaType::DOCKER_LAYER_FOREIGN => {
            MediaType::DOCKER_LAYER_FOREIGN
        }
        MediaType::OCI_LAYER_ZSTD
        | MediaType::OCI_LAYER_NONDIST_ZSTD
        | MediaType::DOCKER_LAYER_ZSTD => {
            return Err(unsupported(format!(
                "a layer is zstd-compressed ({media_type}): Docker v2 schema 2 has no zstd layers"
            )));
        }
        other if other.ends_with("+encrypted") => {
            return Err(unsupported(format!(
                "a layer is encrypted ({other}): Docker v2 schema 2 has no encrypted layers"
            )));
        }
        other => {
            return Err(unsupported(format!(
                "a layer's media type {other} has no Docker v2 schema 2 counterpart"
            )));
        }
    })
}

/// The OCI media type of a layer.
fn oci_layer_type(media_type: &MediaType) -> crate::Result<&'static str> {
    Ok(match media_type.as_str() {
        MediaType::DOCKER_LAYER | MediaType::OCI_LAYER => MediaType::OCI_LAYER,
        MediaType::DOCKER_LAYER_GZIP | MediaType::OCI_LAYER_GZIP => MediaType::OCI_LAYER_GZIP,
        MediaType::DOCKER_LAYER_ZSTD | MediaType::OCI_LAYER_ZSTD => MediaType::OCI_LAYER_ZSTD,
        MediaType::DOCKER_LAYER_FOREIGN_TAR | MediaType::OCI_LAYER_NONDIST => {
            MediaType::OCI_LAYER_NONDIST
        }
        MediaType::DOCKER_LAYER_FOREIGN | MediaType::OCI_LAYER_NONDIST_GZIP => {
            MediaType::OCI_LAYER_NONDIST_GZIP
        }
        MediaType::OCI_LAYER_NONDIST_ZSTD => MediaType::OCI_LAYER_NONDIST_ZSTD,
        other => {
            return Err(unsupported(format!(
                "a layer's media type {other} has no OCI counterpart"
            )));
        }
    })
}

/// Media type, digest and size of `d`, nothing else.
fn new_pointer(d: &Descriptor) -> Descriptor {
    Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size)
}

/// `value` serialized, parsed back from those bytes, and described with `media_type`.
fn reparsed<T: Serialize + DeserializeOwned>(
    value: &T,
    media_type: &str,
) -> crate::Result<Converted<T>> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::invalid(format!("cannot serialize the converted document: {e}")))?;
    let document = RawJson::parse(bytes)?;
    Ok(Converted {
        descriptor: document.descriptor(media_type),
        document,
    })
}

fn unsupported(message: String) -> Error {
    Error::new(ErrorKind::Unsupported, message)
}

#[cfg(test)]
mod tests;
