//! `--format`: the manifest an image is written with, converted by
//! [`hoist_oci::convert`] just before it is written to a registry or a layout (with `--all`,
//! each image's, then the index's). Blobs never change, so nothing else is re-read.
//!
//! Every copy path converts before it moves a blob, so an image the chosen format cannot
//! describe is refused before anything is sent. The command line has already refused
//! `--format` for destinations with a fixed format.

use std::collections::BTreeMap;

use anyhow::Context;
use hoist_oci::convert::{ManifestFormat, convert_index, convert_manifest};
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType, RawJson, Reference};

/// `manifest` as `format` has it, with the media type to write it with; as it is (with
/// `stored_as`) without a format.
///
/// # Errors
/// The format cannot describe the image: what is at fault, and the way out.
pub fn manifest_as(
    manifest: &RawJson<ImageManifest>,
    stored_as: MediaType,
    format: Option<ManifestFormat>,
) -> anyhow::Result<(RawJson<ImageManifest>, MediaType)> {
    let Some(format) = format else {
        return Ok((manifest.clone(), stored_as));
    };
    let converted =
        convert_manifest(manifest, format).map_err(|e| refused(e, format, manifest.digest()))?;
    if !converted.changed_from(manifest) {
        return Ok((manifest.clone(), stored_as));
    }
    Ok((converted.document, converted.descriptor.media_type))
}

/// The media type a manifest says it has, else the OCI default.
pub fn stored_media_type(manifest: &RawJson<ImageManifest>) -> MediaType {
    manifest
        .value()
        .media_type
        .clone()
        .unwrap_or_else(|| MediaType::new(MediaType::OCI_MANIFEST))
}

/// `image` with its manifest as `format` has it: the descriptor names the new manifest (its
/// platform and the rest kept), the config is the same blob. As it is without a format.
///
/// # Errors
/// As [`manifest_as`].
pub fn image_as(image: &Image, format: Option<ManifestFormat>) -> anyhow::Result<Image> {
    let (manifest, media_type) =
        manifest_as(&image.manifest, image.descriptor.media_type.clone(), format)?;
    let descriptor = image.descriptor.with_content(
        media_type,
        manifest.digest().clone(),
        manifest.bytes().len() as u64,
    );
    Ok(Image {
        descriptor,
        manifest,
        config: image.config.clone(),
    })
}

/// Convert the manifest `descriptor` names in `layout` to `format`, storing the new one beside
/// it; returns the descriptor to tag (`descriptor` itself without a format). Blocking.
///
/// # Errors
/// As [`manifest_as`], and layout I/O.
pub fn store_as(
    layout: &Layout,
    descriptor: &Descriptor,
    format: Option<ManifestFormat>,
) -> anyhow::Result<Descriptor> {
    if format.is_none() {
        return Ok(descriptor.clone());
    }
    let manifest: RawJson<ImageManifest> = layout
        .read_json(descriptor)
        .with_context(|| format!("reading the manifest {}", descriptor.digest))?;
    let (manifest, media_type) = manifest_as(&manifest, descriptor.media_type.clone(), format)?;
    layout.write_json(&manifest)?;
    Ok(descriptor.with_content(
        media_type,
        manifest.digest().clone(),
        manifest.bytes().len() as u64,
    ))
}

/// `index` as `format` has it, listing the images as `children` (old digest to converted
/// descriptor) names them; with the media type to write it with. As it is without a format.
///
/// # Errors
/// The format cannot describe the index, or an image it lists is missing from `children`.
pub fn index_as(
    index: &RawJson<ImageIndex>,
    stored_as: MediaType,
    format: Option<ManifestFormat>,
    children: &BTreeMap<Digest, Descriptor>,
) -> anyhow::Result<(RawJson<ImageIndex>, MediaType)> {
    let Some(format) = format else {
        return Ok((index.clone(), stored_as));
    };
    let converted =
        convert_index(index, format, children).map_err(|e| refused(e, format, index.digest()))?;
    if !converted.changed_from(index) {
        return Ok((index.clone(), stored_as));
    }
    Ok((converted.document, converted.descriptor.media_type))
}

/// Refuse, before any image it lists is copied, an index `format` cannot describe itself.
///
/// # Errors
/// As [`index_as`] for the index's own fields.
pub fn check_index_as(
    index: &RawJson<ImageIndex>,
    format: Option<ManifestFormat>,
) -> anyhow::Result<()> {
    match format {
        Some(format) => hoist_oci::convert::check_index(index.value(), format)
            .map_err(|e| refused(e, format, index.digest())),
        None => Ok(()),
    }
}

/// The reference to push a manifest to: `to` itself, unless it names the source's manifest by
/// digest (`REPO@DIGEST`, as `--all` pushes each image) and the conversion gave the manifest
/// another digest, which is then the one to push by (a registry takes a manifest by its own
/// digest only). A digest that never was the source's is left for the registry to refuse.
pub fn push_reference(to: &Reference, source: &Digest, written: &Digest) -> Reference {
    match to.digest() {
        Some(pinned) if pinned == source && written != source => to.with_digest(written.clone()),
        _ => to.clone(),
    }
}

/// The `--format` value that names `format`.
pub fn flag(format: ManifestFormat) -> &'static str {
    match format {
        ManifestFormat::Oci => "--format oci",
        ManifestFormat::DockerV2S2 => "--format v2s2",
    }
}

/// A conversion's refusal, saying whose choice it was and the way out.
fn refused(e: hoist_oci::Error, format: ManifestFormat, digest: &Digest) -> anyhow::Error {
    let way_out = match format {
        ManifestFormat::DockerV2S2 => {
            "use --format oci, or leave --format out to copy it as stored"
        }
        ManifestFormat::Oci => "leave --format out to copy it as stored",
    };
    anyhow::Error::new(e).context(format!(
        "{}: {digest} cannot be written as {format} ({way_out})",
        flag(format)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zstd_image_manifest() -> RawJson<ImageManifest> {
        let config = Descriptor::new(MediaType::OCI_CONFIG, Digest::sha256_of(b"{}"), 2);
        let layer = Descriptor::new(MediaType::OCI_LAYER_ZSTD, Digest::sha256_of(b"l"), 1);
        RawJson::from_value(ImageManifest::new(config, vec![layer])).expect("serializes")
    }

    #[test]
    fn without_a_format_the_manifest_is_kept_with_its_stored_media_type() {
        let m = zstd_image_manifest();
        let stored = MediaType::new(MediaType::OCI_MANIFEST);
        let (same, media_type) = manifest_as(&m, stored.clone(), None).expect("as it is");
        assert_eq!((same.bytes(), media_type), (m.bytes(), stored));
    }

    #[test]
    fn a_converted_manifest_is_pushed_by_its_own_digest() {
        let (old, new) = (Digest::sha256_of(b"old"), Digest::sha256_of(b"new"));
        let parse = |s: &str| Reference::parse(s).expect("reference");
        let pinned = parse(&format!("reg.example/app@{old}"));
        assert_eq!(push_reference(&pinned, &old, &new).digest(), Some(&new));
        // Not converted, a tag, or a digest the user typed that is no source's: as given.
        assert_eq!(push_reference(&pinned, &old, &old), pinned);
        let tagged = parse("reg.example/app:1");
        assert_eq!(push_reference(&tagged, &old, &new), tagged);
        let other = parse(&format!("reg.example/app@{}", Digest::sha256_of(b"x")));
        assert_eq!(push_reference(&other, &old, &new), other);
    }

    #[test]
    fn a_converted_image_keeps_its_platform_and_loses_the_old_bytes_data() {
        let config = Descriptor::new(MediaType::OCI_CONFIG, Digest::sha256_of(b"{}"), 2);
        let layer = Descriptor::new(MediaType::OCI_LAYER_GZIP, Digest::sha256_of(b"l"), 1);
        let manifest =
            RawJson::from_value(ImageManifest::new(config, vec![layer])).expect("serializes");
        let mut descriptor = manifest.descriptor(MediaType::new(MediaType::OCI_MANIFEST));
        // An index may embed a small manifest's own bytes (OCI 1.1 `data`).
        descriptor.data = Some("eyJ9".into());
        descriptor.platform = Some("linux/arm64".parse().expect("platform"));
        let image = Image {
            descriptor,
            manifest,
            config: RawJson::from_value(hoist_oci::ImageConfig::default()).expect("config"),
        };
        let converted = image_as(&image, Some(ManifestFormat::DockerV2S2)).expect("v2s2");
        assert_ne!(converted.descriptor.digest, image.descriptor.digest);
        assert_eq!(
            converted.descriptor.data, None,
            "data of the old bytes kept"
        );
        assert_eq!(converted.descriptor.platform, image.descriptor.platform);
        // Not converted: the descriptor is kept whole.
        let same = image_as(&image, None).expect("as it is");
        assert_eq!(same.descriptor, image.descriptor);
    }

    #[test]
    fn a_refusal_names_the_flag_the_image_and_the_way_out() {
        let m = zstd_image_manifest();
        let stored = MediaType::new(MediaType::OCI_MANIFEST);
        let e = manifest_as(&m, stored, Some(ManifestFormat::DockerV2S2)).expect_err("zstd");
        let text = format!("{e:#}");
        for says in [
            "--format v2s2",
            &m.digest().to_string(),
            "use --format oci",
            "no zstd layers",
        ] {
            assert!(text.contains(says), "{says}: {text}");
        }
    }
}
