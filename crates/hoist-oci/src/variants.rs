//! Compression variants of an image's layers, kept per layer.
//!
//! The same layer often exists as several blobs: uncompressed in a docker archive, gzip in one
//! registry, zstd in another. [`ImageVariants`] keeps, for each layer position, the list of
//! blobs known to hold that layer's content ([`LayerVariants`]) and chooses one per layer
//! independently. It never enumerates whole chains of choices: with `c` variants and `n` layers
//! that is `c^n` chains (moby/buildkit#6088 runs out of memory doing so), while choosing per
//! layer is `n * c` work and memory.

use crate::codec::Compression;
use crate::{Descriptor, Digest, Error, ErrorKind, ImageManifest, RawJson, Result};

/// The known blobs of one layer: every one decompresses to the same `diff_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVariants {
    /// The uncompressed digest all variants share.
    pub diff_id: Digest,
    /// The blobs, in the order they were learned; no two share a digest.
    pub variants: Vec<Descriptor>,
}

impl LayerVariants {
    /// A layer with no known blob yet.
    pub fn new(diff_id: Digest) -> Self {
        LayerVariants {
            diff_id,
            variants: Vec::new(),
        }
    }

    /// Record a blob of this layer (ignored when its digest is already known).
    pub fn add(&mut self, blob: Descriptor) {
        if !self.variants.iter().any(|v| v.digest == blob.digest) {
            self.variants.push(blob);
        }
    }

    /// The first variant `usable` accepts, trying compressions in `preference` order, then any
    /// other compression. Each variant is offered to `usable` at most once.
    pub fn choose(
        &self,
        preference: &[Compression],
        usable: &mut impl FnMut(&Descriptor) -> bool,
    ) -> Option<&Descriptor> {
        let rank = |d: &Descriptor| {
            d.media_type
                .layer_compression()
                .and_then(|c| preference.iter().position(|p| *p == c))
                .unwrap_or(preference.len())
        };
        let mut order: Vec<&Descriptor> = self.variants.iter().collect();
        order.sort_by_key(|d| rank(d));
        order.into_iter().find(|d| usable(d))
    }
}

/// An image whose layers may each exist in several compressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVariants {
    /// The config (shared by every variant of the image).
    pub config: Descriptor,
    /// One entry per layer, base first.
    pub layers: Vec<LayerVariants>,
}

impl ImageVariants {
    /// Start from one manifest and the config's `rootfs.diff_ids`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the counts differ.
    pub fn from_manifest(manifest: &ImageManifest, diff_ids: &[Digest]) -> Result<Self> {
        if manifest.layers.len() != diff_ids.len() {
            return Err(Error::invalid(format!(
                "manifest has {} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let layers = manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(blob, diff_id)| {
                let mut l = LayerVariants::new(diff_id.clone());
                l.add(blob.clone());
                l
            })
            .collect();
        Ok(ImageVariants {
            config: manifest.config.clone(),
            layers,
        })
    }

    /// Merge another manifest of the same image (same config, other compressions).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the config or the layer count differs.
    pub fn add_manifest(&mut self, manifest: &ImageManifest) -> Result<()> {
        if manifest.config.digest != self.config.digest
            || manifest.layers.len() != self.layers.len()
        {
            return Err(Error::invalid(
                "manifest is not a variant of this image (config or layer count differs)",
            ));
        }
        for (layer, blob) in self.layers.iter_mut().zip(&manifest.layers) {
            layer.add(blob.clone());
        }
        Ok(())
    }

    /// How many blobs are known across all layers.
    pub fn variant_count(&self) -> usize {
        self.layers.iter().map(|l| l.variants.len()).sum()
    }

    /// Choose one blob per layer, independently (see [`LayerVariants::choose`]).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] naming the first layer with no usable variant.
    pub fn select(
        &self,
        preference: &[Compression],
        mut usable: impl FnMut(&Descriptor) -> bool,
    ) -> Result<Vec<Descriptor>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                layer
                    .choose(preference, &mut usable)
                    .cloned()
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::NotFound,
                            format!(
                                "no usable blob for layer {i} (diff_id {}) among {} variants",
                                layer.diff_id,
                                layer.variants.len()
                            ),
                        )
                        .with_digest(&layer.diff_id)
                    })
            })
            .collect()
    }

    /// An OCI manifest for the chosen `layers` (as returned by [`ImageVariants::select`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `layers` does not have one blob per layer.
    pub fn manifest(&self, layers: Vec<Descriptor>) -> Result<RawJson<ImageManifest>> {
        if layers.len() != self.layers.len() {
            return Err(Error::invalid("one blob per layer is needed"));
        }
        RawJson::from_value(ImageManifest::new(self.config.clone(), layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MediaType;

    fn blob(layer: usize, c: Compression) -> Descriptor {
        let tag = format!("{layer}-{c}");
        Descriptor::new(
            MediaType::oci_layer(c),
            Digest::sha256_of(tag.as_bytes()),
            100,
        )
    }

    /// An image of `n` layers, each as gzip and zstd, built from two whole manifests.
    fn image(n: usize) -> ImageVariants {
        let manifest = |c: Compression| ImageManifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: Descriptor::new(MediaType::OCI_CONFIG, Digest::sha256_of(b"cfg"), 3),
            layers: (0..n).map(|i| blob(i, c)).collect(),
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let diff_ids: Vec<Digest> = (0..n)
            .map(|i| Digest::sha256_of(format!("diff{i}").as_bytes()))
            .collect();
        let mut img =
            ImageVariants::from_manifest(&manifest(Compression::Gzip), &diff_ids).expect("gzip");
        img.add_manifest(&manifest(Compression::Zstd))
            .expect("zstd");
        img.add_manifest(&manifest(Compression::Zstd))
            .expect("again"); // deduplicated
        img
    }

    #[test]
    fn sixty_layers_two_variants_is_linear_work() {
        // The worst case for a chain enumerator: the preferred compression is unusable for the
        // last layer only, so the first full chain of preferred blobs fails at the very end.
        let run = |n: usize| {
            let img = image(n);
            let mut calls = 0usize;
            let unusable = blob(n - 1, Compression::Zstd).digest;
            let chosen = img
                .select(&[Compression::Zstd, Compression::Gzip], |d| {
                    calls += 1;
                    d.digest != unusable
                })
                .expect("every layer has a usable blob");
            (img.variant_count(), calls, chosen)
        };
        let (held60, calls60, chosen) = run(60);
        let (held120, calls120, _) = run(120);
        // Memory: exactly one descriptor per (layer, variant); time: one check per layer plus one
        // per fallback. Doubling the layers doubles both (2^60 chains would not finish).
        assert_eq!(held60, 120);
        assert_eq!(held120, 2 * held60);
        assert_eq!(calls60, 61);
        assert_eq!(calls120, 121);
        assert_eq!(chosen.len(), 60);
        assert!(
            chosen[..59]
                .iter()
                .all(|d| d.media_type == MediaType::OCI_LAYER_ZSTD)
        );
        assert_eq!(chosen[59], blob(59, Compression::Gzip));
        let img = image(60);
        let m = img.manifest(chosen).expect("manifest");
        assert_eq!(m.value().layers.len(), 60);
    }

    #[test]
    fn reports_the_layer_with_no_usable_blob() {
        let img = image(5);
        let bad = img.layers[3].diff_id.clone();
        let err = img
            .select(&[Compression::Gzip], |d| {
                d.digest != blob(3, Compression::Gzip).digest
                    && d.digest != blob(3, Compression::Zstd).digest
            })
            .expect_err("layer 3 unusable");
        assert!(err.is_not_found());
        assert_eq!(err.digest(), Some(&bad));
        assert!(err.to_string().contains("layer 3"));
    }

    #[test]
    fn mismatched_manifests_are_refused() {
        let mut img = image(3);
        let mut other = ImageManifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: img.config.clone(),
            layers: vec![blob(0, Compression::None)],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        assert!(img.add_manifest(&other).is_err());
        other.layers = (0..3).map(|i| blob(i, Compression::None)).collect();
        img.add_manifest(&other).expect("same shape");
        assert_eq!(img.variant_count(), 9);
        assert!(ImageVariants::from_manifest(&other, &[]).is_err());
    }
}
