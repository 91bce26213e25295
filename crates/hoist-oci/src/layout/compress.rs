//! Making a compressed variant of an image in a layout (what a push of a `docker save` export
//! needs: the daemon hands out uncompressed layers).

use super::{Image, Layout};
use crate::codec::Compression;
use crate::digest::mismatch;
use crate::{Descriptor, Digest, Error, ImageManifest, MediaType, RawJson, Result};

/// How [`Layout::compress_image`] compresses layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    /// The compression every layer of the result has.
    pub compression: Compression,
    /// The codec level; `None` for [`Compression::default_level`].
    pub level: Option<i32>,
    /// Threads per layer (see [`crate::codec::Compressor::new`]).
    pub threads: usize,
}

impl Layout {
    /// A variant of `image` whose layers are all `options.compression`: layers already in that
    /// compression are kept, the others are compressed into new blobs (in one pass each,
    /// checking that each still decompresses to its `diff_id`). `known` is asked first for a
    /// blob already made for a `diff_id` (e.g. remembered from an earlier push); it is used when
    /// present in the layout with the right compression and content (rehashed). The new
    /// manifest is stored (not tagged) and returned with the image's config.
    ///
    /// # Errors
    /// A config whose `diff_ids` do not match the layers, missing or corrupt blobs, I/O errors.
    pub fn compress_image(
        &self,
        image: &Image,
        options: &CompressOptions,
        mut known: impl FnMut(&Digest) -> Option<Descriptor>,
    ) -> Result<Image> {
        let m = image.manifest.value();
        let diff_ids = &image.config.value().rootfs.diff_ids;
        if m.layers.len() != diff_ids.len() {
            return Err(Error::invalid(format!(
                "image {} has {} layers but its config lists {} diff_ids",
                image.descriptor.digest,
                m.layers.len(),
                diff_ids.len()
            )));
        }
        let wanted = options.compression;
        let mut layers = Vec::with_capacity(m.layers.len());
        for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
            if layer.media_type.layer_compression() == Some(wanted) {
                layers.push(with_oci_type(layer, wanted));
                continue;
            }
            // Rehashed before it is named: reading a compressed blob costs less than the
            // compression it saves, and one damaged on disk since is made again instead.
            if let Some(done) = known(diff_id)
                && done.media_type.layer_compression() == Some(wanted)
                && self.has_verified_blob(&done)?
            {
                layers.push(with_oci_type(&done, wanted));
                continue;
            }
            let (desc, info) = self.compress_blob(layer, wanted, options.level, options.threads)?;
            if &info.diff_id != diff_id {
                return Err(mismatch(diff_id, &info.diff_id).with_digest(&layer.digest));
            }
            layers.push(desc);
        }
        let manifest = RawJson::from_value(ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            artifact_type: None,
            config: Descriptor::new(
                MediaType::OCI_CONFIG,
                m.config.digest.clone(),
                m.config.size,
            ),
            layers,
            // The image it refers to (a signature's, an SBOM's) is the same image whatever
            // its layers' compression.
            subject: m.subject.clone(),
            annotations: m.annotations.clone(),
            extra: m.extra.clone(),
        })?;
        self.write_json(&manifest)?;
        Ok(Image {
            descriptor: manifest.descriptor(MediaType::OCI_MANIFEST),
            manifest,
            config: image.config.clone(),
        })
    }
}

/// The same blob described with the OCI media type for its compression.
fn with_oci_type(d: &Descriptor, c: Compression) -> Descriptor {
    let mut out = d.clone();
    out.media_type = MediaType::oci_layer(c);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{tar_of, write_image};

    #[test]
    fn compresses_each_layer_once_and_reuses_known_blobs() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = Layout::create(dir.path()).expect("layout");
        let tars = [
            tar_of(&[("a", &[1u8; 5000][..])]),
            tar_of(&[("b", &[2u8; 5000][..])]),
        ];
        let (desc, _) = write_image(&l, &tars, Compression::None, "amd64");
        let image = l.image_at(&desc, None).expect("image");
        let opts = CompressOptions {
            compression: Compression::Zstd,
            level: None,
            threads: 1,
        };
        let zstd = l.compress_image(&image, &opts, |_| None).expect("compress");
        let layers = &zstd.manifest.value().layers;
        assert!(
            layers
                .iter()
                .all(|d| d.media_type == MediaType::OCI_LAYER_ZSTD)
        );
        assert_eq!(zstd.config.digest(), image.config.digest());
        // Stored, readable, and every layer decompresses to its diff_id.
        let again = l.image_at(&zstd.descriptor, None).expect("stored");
        assert_eq!(again.manifest.digest(), zstd.manifest.digest());

        // A second run with the first run's blobs remembered compresses nothing new.
        let remembered: Vec<(Digest, Descriptor)> = image
            .config
            .value()
            .rootfs
            .diff_ids
            .iter()
            .cloned()
            .zip(layers.iter().cloned())
            .collect();
        let mut asked = 0;
        let reused = l
            .compress_image(&image, &opts, |diff_id| {
                asked += 1;
                remembered
                    .iter()
                    .find(|(d, _)| d == diff_id)
                    .map(|(_, desc)| desc.clone())
            })
            .expect("reuse");
        assert_eq!(asked, 2);
        assert_eq!(reused.manifest.digest(), zstd.manifest.digest());

        // Already-zstd input is kept as it is.
        let same = l.compress_image(&zstd, &opts, |_| None).expect("noop");
        assert_eq!(same.manifest.digest(), zstd.manifest.digest());

        // A config that lies about a diff_id is caught while compressing.
        let mut lying = image.clone();
        let mut cfg = lying.config.value().clone();
        cfg.rootfs.diff_ids[1] = Digest::sha256_of(b"not this layer");
        lying.config = RawJson::from_value(cfg).expect("cfg");
        let gz = CompressOptions {
            compression: Compression::Gzip,
            ..opts
        };
        let err = l.compress_image(&lying, &gz, |_| None).expect_err("lie");
        assert!(err.is_digest_mismatch(), "{err}");
    }

    /// Regression: a remembered blob damaged on disk (same size) was named by the new manifest
    /// without being read.
    #[test]
    fn a_damaged_known_blob_is_made_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = Layout::create(dir.path()).expect("layout");
        let tars = [tar_of(&[("a", &[1u8; 5000][..])])];
        let (desc, _) = write_image(&l, &tars, Compression::None, "amd64");
        let image = l.image_at(&desc, None).expect("image");
        let opts = CompressOptions {
            compression: Compression::Zstd,
            level: None,
            threads: 1,
        };
        let zstd = l.compress_image(&image, &opts, |_| None).expect("compress");
        let done = zstd.manifest.value().layers[0].clone();
        let path = l.blob_path(&done.digest);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        crate::testutil::overwrite(&path, &bytes);
        let again = l
            .compress_image(&image, &opts, |_| Some(done.clone()))
            .expect("compress again");
        let layer = &again.manifest.value().layers[0];
        l.verify_blob(layer).expect("the layer named verifies");
    }

    /// Regression: the compressed variant's manifest lost the top-level fields hoist does not
    /// model (its annotations were kept).
    #[test]
    fn the_new_manifest_keeps_its_subject_and_unknown_fields() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = Layout::create(dir.path()).expect("layout");
        let tars = [tar_of(&[("a", &[1u8; 5000][..])])];
        let (desc, _) = write_image(&l, &tars, Compression::None, "amd64");
        let mut image = l.image_at(&desc, None).expect("image");
        let mut json: serde_json::Value =
            serde_json::from_slice(image.manifest.bytes()).expect("json");
        let vendor = serde_json::json!({ "kept": true });
        json["io.example.vendor"] = vendor.clone();
        let subject = serde_json::json!({
            "mediaType": MediaType::OCI_MANIFEST,
            "digest": Digest::sha256_of(b"the image this one refers to").to_string(),
            "size": 28,
        });
        json["subject"] = subject.clone();
        image.manifest = RawJson::parse(serde_json::to_vec(&json).expect("bytes")).expect("parse");
        let opts = CompressOptions {
            compression: Compression::Zstd,
            level: None,
            threads: 1,
        };
        let zstd = l.compress_image(&image, &opts, |_| None).expect("compress");
        let json: serde_json::Value = serde_json::from_slice(zstd.manifest.bytes()).expect("json");
        assert_eq!(json.get("io.example.vendor"), Some(&vendor));
        assert_eq!(json.get("subject"), Some(&subject));
    }
}
