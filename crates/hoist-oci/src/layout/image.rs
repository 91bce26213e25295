//! Reading images and manifests out of a layout: following an index to the manifest for a
//! platform, and telling container images (which can be unpacked, archived or loaded) from
//! artifacts (which are only copied).

use super::{Image, Layout};
use crate::{Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, RawJson};
use crate::{Error, ErrorKind, Result};

impl Layout {
    /// The image tagged `tag` (see [`Layout::resolve`]), following an index to the manifest for
    /// `platform` (the host's when `None` and the index has several).
    ///
    /// # Errors
    /// Resolution errors, [`ErrorKind::NoMatchingPlatform`], missing or corrupt blobs, unknown
    /// media types.
    pub fn image(&self, tag: Option<&str>, platform: Option<&Platform>) -> Result<Image> {
        let descriptor = self.resolve(tag)?;
        self.image_at(&descriptor, platform)
    }

    /// The image that `descriptor` (a manifest or an index) points at; see [`Layout::image`].
    ///
    /// # Errors
    /// As [`Layout::image`]; [`ErrorKind::Unsupported`] for an artifact (see
    /// [`ImageManifest::is_container_image`]), which [`Layout::manifest_at`] reads.
    pub fn image_at(&self, descriptor: &Descriptor, platform: Option<&Platform>) -> Result<Image> {
        let (descriptor, manifest, matched_by_entry) = self.follow(descriptor, platform)?;
        let m = manifest.value();
        if !m.config.media_type.is_config() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "an artifact (config media type {}), not a container image: it can be \
                     copied to a registry or an OCI layout, not unpacked, archived or loaded",
                    m.config.media_type
                ),
            )
            .with_digest(&descriptor.digest));
        }
        if let Some(bad) = m.layers.iter().find(|l| !l.media_type.is_layer()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "an artifact (layer media type {}), not a container image: it can be \
                     copied to a registry or an OCI layout, not unpacked, archived or loaded",
                    bad.media_type
                ),
            )
            .with_digest(&descriptor.digest));
        }
        let config: RawJson<ImageConfig> = self.read_json(&m.config)?;
        // An index entry was already matched by its declared platform; a bare manifest,
        // or an entry that declares none, is checked against its config.
        if let Some(wanted) = platform.filter(|_| !matched_by_entry) {
            check_platform(&config, wanted, &descriptor)?;
        }
        Ok(Image {
            descriptor,
            manifest,
            config,
        })
    }

    /// The manifest that `descriptor` (a manifest or an index) points at, as
    /// [`Layout::image_at`] finds it, but any manifest: a container image's or an artifact's,
    /// whatever its config and layers are. For copying its blobs as they are. A platform is
    /// checked against the config of a bare container image only (an artifact has none).
    ///
    /// # Errors
    /// As [`Layout::image`], less the media type checks.
    pub fn manifest_at(
        &self,
        descriptor: &Descriptor,
        platform: Option<&Platform>,
    ) -> Result<(Descriptor, RawJson<ImageManifest>)> {
        let (descriptor, manifest, matched_by_entry) = self.follow(descriptor, platform)?;
        if let Some(wanted) = platform.filter(|_| !matched_by_entry)
            && manifest.value().config.media_type.is_config()
        {
            let config: RawJson<ImageConfig> = self.read_json(&manifest.value().config)?;
            check_platform(&config, wanted, &descriptor)?;
        }
        Ok((descriptor, manifest))
    }

    /// Follow `descriptor` through indexes to a manifest (for `platform`, else the host's when
    /// an index has several): its descriptor, the manifest, and whether an index entry's
    /// declared platform chose it.
    fn follow(
        &self,
        descriptor: &Descriptor,
        platform: Option<&Platform>,
    ) -> Result<(Descriptor, RawJson<ImageManifest>, bool)> {
        let mut descriptor = descriptor.clone();
        // An index may nest; follow at most a few levels.
        let mut matched_by_entry = false;
        for _ in 0..4 {
            if descriptor.media_type.is_index() {
                let index: RawJson<ImageIndex> = self.read_json(&descriptor)?;
                // One entry without a platform is the image; one for another platform than
                // the host's is refused like any index without the host's (as skopeo does).
                let chosen = match (platform, index.value().manifests.as_slice()) {
                    (None, [only]) if only.platform.is_none() => only,
                    (Some(p), _) => index.value().select(p)?,
                    (None, _) => index.value().select(&Platform::host())?,
                };
                matched_by_entry = chosen.platform.is_some();
                descriptor = chosen.clone();
                continue;
            }
            if !descriptor.media_type.is_manifest() {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("unknown manifest media type {}", descriptor.media_type),
                )
                .with_digest(&descriptor.digest));
            }
            let manifest: RawJson<ImageManifest> = self.read_json(&descriptor)?;
            return Ok((descriptor, manifest, matched_by_entry));
        }
        Err(Error::invalid("indexes nested too deeply").with_digest(&descriptor.digest))
    }
}

/// Fail unless `config` says its image is for `wanted`.
fn check_platform(
    config: &RawJson<ImageConfig>,
    wanted: &Platform,
    descriptor: &Descriptor,
) -> Result<()> {
    let have = config.value().platform();
    if have.matches(wanted) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NoMatchingPlatform,
            format!("the image is for {have}, not {wanted}"),
        )
        .with_digest(&descriptor.digest))
    }
}
