//! OCI archives with only `index.json` (what `docker buildx --output type=oci`,
//! `skopeo copy ... oci-archive:` and `podman save --format oci-archive` write), spooled with
//! layers compressed on their way in: the archive's manifests name the uncompressed layers,
//! which the layout then holds only compressed.

use super::*;
use crate::{ImageConfig, ImageIndex, ImageManifest, RawJson};

const MARKER: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// `index.json` listing `entry` tagged `tool:1`.
fn top_index(entry: &Descriptor) -> Vec<u8> {
    let mut listed = entry.clone();
    listed
        .annotations
        .insert(crate::layout::REF_NAME.into(), "tool:1".into());
    format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        serde_json::to_string(&listed).expect("listed")
    )
    .into_bytes()
}

/// The manifest of a one-layer image: `layer` (the archive's entry, of `media_type`) and
/// `config`.
fn manifest_of(
    layer: &[u8],
    media_type: &str,
    config: &RawJson<ImageConfig>,
) -> RawJson<ImageManifest> {
    let layer_desc = Descriptor::new(media_type, Digest::sha256_of(layer), layer.len() as u64);
    RawJson::from_value(ImageManifest::new(
        config.descriptor(MediaType::OCI_CONFIG),
        vec![layer_desc],
    ))
    .expect("manifest")
}

/// The archive of the image of `manifest`, whose one layer is `layer` and config `config`,
/// the manifest listed in `index.json` directly.
fn archive_with(
    layer: &[u8],
    config: &RawJson<ImageConfig>,
    manifest: &RawJson<ImageManifest>,
) -> (Vec<u8>, Descriptor) {
    let desc = manifest.descriptor(MediaType::OCI_MANIFEST);
    let bytes = archive(vec![
        Item::File(&blob_path(&Digest::sha256_of(layer)), layer.to_vec()),
        Item::File(&blob_path(config.digest()), config.bytes().to_vec()),
        Item::File(&blob_path(&desc.digest), manifest.bytes().to_vec()),
        Item::File("index.json", top_index(&desc)),
        Item::File("oci-layout", MARKER.to_vec()),
    ]);
    (bytes, desc)
}

/// The archive of a one-layer image whose config is `config`, its manifest listed in
/// `index.json` directly.
fn archive_of(layer: &[u8], config: &RawJson<ImageConfig>) -> (Vec<u8>, Descriptor) {
    archive_with(
        layer,
        config,
        &manifest_of(layer, MediaType::OCI_LAYER, config),
    )
}

fn zstd() -> SpoolOptions {
    SpoolOptions::new().compress_layers(Compression::Zstd, None, 1)
}

/// The image tagged `tool:1` has one zstd layer that verifies and decompresses to the config's
/// `diff_id`, and keeps the archive's config.
fn assert_compressed_image(l: &Layout, config: &Digest) {
    let image = l
        .image(Some("tool:1"), None)
        .expect("tagged image reads back");
    assert_eq!(image.config.digest(), config);
    let layer = &image.manifest.value().layers[0];
    assert_eq!(layer.media_type, MediaType::OCI_LAYER_ZSTD);
    l.verify_blob(layer).expect("stored layer verifies");
    let mut hasher = crate::digest::Digester::new(crate::Algorithm::Sha256);
    let reader = crate::codec::decoder(l.open_blob(layer).expect("open")).expect("decoder");
    crate::codec::copy(reader, &mut hasher).expect("decompress");
    assert_eq!(hasher.finish(), image.config.value().rootfs.diff_ids[0]);
}

#[test]
fn an_index_only_archive_spools_with_compress_layers() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let config = config_for(vec![Digest::sha256_of(&layer)], "amd64");
    let (bytes, desc) = archive_of(&layer, &config);
    let (_d, l) = new_layout();
    let images = spool_with(pipe(bytes), &l, zstd()).expect("spool with compression");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].tags, vec!["tool:1"]);
    // A new manifest names the compressed layer; the tag points at it.
    assert_ne!(images[0].manifest.digest, desc.digest);
    assert_eq!(images[0].manifest.media_type, MediaType::OCI_MANIFEST);
    assert_eq!(
        l.resolve(Some("tool:1")).expect("tag").digest,
        images[0].manifest.digest
    );
    assert_eq!(&images[0].config.digest, config.digest());
    assert_compressed_image(&l, config.digest());
    // No uncompressed copy of the layer was stored.
    assert!(!l.blob_path(&Digest::sha256_of(&layer)).exists());
}

#[test]
fn an_index_in_an_index_only_archive_is_rewritten_too() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let config = config_for(vec![Digest::sha256_of(&layer)], "s390x");
    let (_, manifest_desc) = archive_of(&layer, &config);
    let manifest = RawJson::<ImageManifest>::from_value(ImageManifest::new(
        config.descriptor(MediaType::OCI_CONFIG),
        vec![Descriptor::new(
            MediaType::OCI_LAYER,
            Digest::sha256_of(&layer),
            layer.len() as u64,
        )],
    ))
    .expect("manifest");
    assert_eq!(manifest.digest(), &manifest_desc.digest);
    let mut entry = manifest_desc.clone();
    entry.platform = Some(crate::Platform::parse("linux/s390x").expect("platform"));
    // The manifest's bytes embedded: no longer its bytes once it is written anew.
    entry.data = Some("e30=".into());
    // Fields hoist does not model stay on the entry written anew.
    entry.extra.insert(
        "io.example.vendor".into(),
        serde_json::json!({ "kept": true }),
    );
    // Another platform's manifest, not in the archive, stays listed as it is.
    let mut absent = Descriptor::new(
        MediaType::OCI_MANIFEST,
        Digest::sha256_of(b"not in the archive"),
        18,
    );
    let mut arm64 = crate::Platform::parse("linux/arm64").expect("platform");
    arm64
        .extra
        .insert("features".into(), serde_json::json!(["sve"]));
    absent.platform = Some(arm64);
    let index = RawJson::<ImageIndex>::parse(
        format!(
            r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
            serde_json::to_string(&entry).expect("entry"),
            serde_json::to_string(&absent).expect("absent")
        )
        .into_bytes(),
    )
    .expect("index");
    let index_desc = index.descriptor(MediaType::OCI_INDEX);
    let bytes = archive(vec![
        Item::File(&blob_path(&Digest::sha256_of(&layer)), layer.clone()),
        Item::File(&blob_path(config.digest()), config.bytes().to_vec()),
        Item::File(&blob_path(manifest.digest()), manifest.bytes().to_vec()),
        Item::File(&blob_path(index.digest()), index.bytes().to_vec()),
        Item::File("index.json", top_index(&index_desc)),
        Item::File("oci-layout", MARKER.to_vec()),
    ]);
    let (_d, l) = new_layout();
    let s390x = crate::Platform::parse("linux/s390x").expect("platform");
    let images = spool_with(pipe(bytes), &l, zstd().platform(Some(s390x.clone())))
        .expect("spool with compression");
    let tagged = l.resolve(Some("tool:1")).expect("tag");
    assert_eq!(tagged.digest, images[0].manifest.digest);
    assert_eq!(tagged.media_type, MediaType::OCI_INDEX);
    assert_ne!(tagged.digest, index_desc.digest);
    let rewritten: RawJson<ImageIndex> = l.read_json(&tagged).expect("new index");
    let listed = &rewritten.value().manifests;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].platform, entry.platform);
    assert_eq!(listed[0].extra, entry.extra);
    assert_eq!(listed[0].data, None);
    assert_ne!(listed[0].digest, manifest_desc.digest);
    assert_eq!(listed[1], absent);
    let image = l.image_at(&tagged, Some(&s390x)).expect("image");
    assert_eq!(
        image.manifest.value().layers[0].media_type,
        MediaType::OCI_LAYER_ZSTD
    );
}

#[test]
fn a_substituted_layer_is_checked_against_the_config() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let lying = config_for(vec![Digest::sha256_of(b"another layer")], "amd64");
    let (bytes, _) = archive_of(&layer, &lying);
    let (_d, l) = new_layout();
    let err = spool_with(pipe(bytes), &l, zstd()).expect_err("config lies");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(err.to_string().contains("diff_id"), "{err}");
    assert!(l.tags().expect("tags").is_empty());
}

/// Regression: a layer the archive does not carry, found in the layout by its size alone, made
/// the image look complete though the blob was damaged on disk.
#[test]
fn a_layer_not_in_the_archive_is_rehashed_in_the_layout() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let config = config_for(vec![Digest::sha256_of(&layer)], "amd64");
    let manifest = RawJson::from_value(ImageManifest::new(
        config.descriptor(MediaType::OCI_CONFIG),
        vec![Descriptor::new(
            MediaType::OCI_LAYER,
            Digest::sha256_of(&layer),
            layer.len() as u64,
        )],
    ))
    .expect("manifest");
    let desc = manifest.descriptor(MediaType::OCI_MANIFEST);
    let bytes = archive(vec![
        Item::File(&blob_path(config.digest()), config.bytes().to_vec()),
        Item::File(&blob_path(&desc.digest), manifest.bytes().to_vec()),
        Item::File("index.json", top_index(&desc)),
        Item::File("oci-layout", MARKER.to_vec()),
    ]);
    let (_d, l) = new_layout();
    let mut damaged = layer.clone();
    damaged[0] ^= 1;
    let stored = l.blob_path(&Digest::sha256_of(&layer));
    std::fs::create_dir_all(stored.parent().expect("dir")).expect("mkdir");
    std::fs::write(&stored, &damaged).expect("damaged blob");
    let err = spool(pipe(bytes.clone()), &l).expect_err("damaged layer");
    assert!(err.is_not_found(), "{err}");
    // Once the layer is sound, the same archive spools.
    crate::testutil::overwrite(&stored, &layer);
    spool(pipe(bytes), &l).expect("spool");
}

/// Regression: a manifest written anew around a layer compressed on its way in lost the
/// top-level fields hoist does not model.
#[test]
fn a_manifest_written_anew_keeps_its_unknown_fields() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let config = config_for(vec![Digest::sha256_of(&layer)], "amd64");
    let plain = manifest_of(&layer, MediaType::OCI_LAYER, &config);
    let mut json: serde_json::Value = serde_json::from_slice(plain.bytes()).expect("json");
    let vendor = serde_json::json!({ "kept": true });
    json["io.example.vendor"] = vendor.clone();
    let manifest = RawJson::<ImageManifest>::parse(serde_json::to_vec(&json).expect("bytes"))
        .expect("manifest");
    let (bytes, desc) = archive_with(&layer, &config, &manifest);
    let (_d, l) = new_layout();
    spool_with(pipe(bytes), &l, zstd()).expect("spool with compression");
    let tagged = l.resolve(Some("tool:1")).expect("tag");
    assert_ne!(tagged.digest, desc.digest, "the manifest is written anew");
    let written: RawJson<ImageManifest> = l.read_json(&tagged).expect("manifest");
    let json: serde_json::Value = serde_json::from_slice(written.bytes()).expect("json");
    assert_eq!(json.get("io.example.vendor"), Some(&vendor));
    assert_compressed_image(&l, config.digest());
}

/// Regression: a descriptor naming bytes the spool replaced (a layer compressed on its way in,
/// the manifest written anew around it) kept the old bytes' embedded `data`, no longer theirs.
#[test]
fn a_descriptor_of_replaced_bytes_loses_what_described_the_old_ones() {
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let config = config_for(vec![Digest::sha256_of(&layer)], "amd64");
    let mut value = manifest_of(&layer, MediaType::OCI_LAYER, &config)
        .value()
        .clone();
    value.layers[0].data = Some("dGFy".into());
    value.layers[0]
        .annotations
        .insert("io.example.toc".into(), "of the tar".into());
    let manifest = RawJson::from_value(value).expect("manifest");
    let mut desc = manifest.descriptor(MediaType::OCI_MANIFEST);
    desc.data = Some("e30=".into());
    let bytes = archive(vec![
        Item::File(&blob_path(&Digest::sha256_of(&layer)), layer.clone()),
        Item::File(&blob_path(config.digest()), config.bytes().to_vec()),
        Item::File(&blob_path(manifest.digest()), manifest.bytes().to_vec()),
        Item::File("index.json", top_index(&desc)),
        Item::File("oci-layout", MARKER.to_vec()),
    ]);
    let (_d, l) = new_layout();
    let images = spool_with(pipe(bytes), &l, zstd()).expect("spool with compression");
    let tagged = l.resolve(Some("tool:1")).expect("tag");
    assert_ne!(tagged.digest, desc.digest, "the manifest is written anew");
    assert_eq!(tagged.data, None);
    assert_eq!(images[0].manifest.data, None);
    let written: RawJson<ImageManifest> = l.read_json(&tagged).expect("manifest");
    let compressed = &written.value().layers[0];
    assert_eq!(compressed.media_type, MediaType::OCI_LAYER_ZSTD);
    assert_eq!(compressed.data, None);
    assert!(compressed.annotations.is_empty(), "{compressed:?}");
}

/// A tar of one file of `len` bytes that do not compress, so that its gzip or zstd stream is
/// about as long (a layer-sized entry; over several 128 KiB frames when `len` is).
fn noisy_tar(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    tar_of(&[("noise", &noise)])
}

/// `tar` as the archive may hold it: plain, gzip or zstd, with the media type saying so.
fn stored_forms(tar: &[u8]) -> Vec<(Vec<u8>, &'static str)> {
    let packed = |c: Compression| {
        let mut out = Vec::new();
        crate::codec::compress(tar, &mut out, c, None, 1).expect("compress");
        out
    };
    vec![
        (tar.to_vec(), MediaType::OCI_LAYER),
        (packed(Compression::Gzip), MediaType::OCI_LAYER_GZIP),
        (packed(Compression::Zstd), MediaType::OCI_LAYER_ZSTD),
    ]
}

/// Regression: an `index.json`-only archive's layers stored as they came (neither compressed
/// nor decompressed on the way in) were never checked against their config's `diff_ids`, so a
/// config lying about them spooled and was tagged.
#[test]
fn an_index_only_archive_whose_config_lies_about_a_layer_is_refused() {
    // A small layer (decoded when its entry ends) and one of several frames (decoded on a
    // helper thread while it streams).
    for len in [2048, 700 << 10] {
        let tar = noisy_tar(len);
        for (entry, media_type) in stored_forms(&tar) {
            let what = format!("{media_type}, {} bytes", entry.len());
            let lying = config_for(vec![Digest::sha256_of(b"another layer")], "amd64");
            let manifest = manifest_of(&entry, media_type, &lying);
            let (bytes, _) = archive_with(&entry, &lying, &manifest);
            let (_d, l) = new_layout();
            let err = spool(pipe(bytes), &l).expect_err(&what);
            assert!(err.is_digest_mismatch(), "{what}: {err}");
            let text = err.to_string();
            assert!(text.contains("diff_id"), "{what}: {err}");
            assert!(
                text.contains(&Digest::sha256_of(&entry).to_string()),
                "{what}: the layer is named: {err}"
            );
            assert!(l.tags().expect("tags").is_empty(), "{what}");

            // The truth spools, the layer stored as it came and the manifest kept.
            let config = config_for(vec![Digest::sha256_of(&tar)], "amd64");
            let manifest = manifest_of(&entry, media_type, &config);
            let (bytes, desc) = archive_with(&entry, &config, &manifest);
            let images = spool(pipe(bytes), &l).expect(&what);
            assert_eq!(images[0].manifest.digest, desc.digest, "{what}");
            let image = l.image(Some("tool:1"), None).expect("tagged");
            assert_eq!(
                image.manifest.value().layers[0].digest,
                Digest::sha256_of(&entry)
            );
        }
    }
}

/// A gzip layer whose bytes match its name but do not decode: said so, naming the layer.
#[test]
fn an_index_only_archive_with_a_layer_that_does_not_decode_is_refused() {
    let tar = noisy_tar(300 << 10);
    let (mut entry, media_type) = stored_forms(&tar).swap_remove(1);
    assert_eq!(media_type, MediaType::OCI_LAYER_GZIP);
    let middle = entry.len() / 2;
    entry[middle] ^= 0xff;
    let config = config_for(vec![Digest::sha256_of(&tar)], "amd64");
    let (bytes, _) = archive_with(&entry, &config, &manifest_of(&entry, media_type, &config));
    let (_d, l) = new_layout();
    let err = spool(pipe(bytes), &l).expect_err("does not decode");
    assert!(err.is_corrupt(), "{err}");
    assert_eq!(err.digest(), Some(&Digest::sha256_of(&entry)), "{err}");
    assert!(l.tags().expect("tags").is_empty());
}

/// The other platforms an index lists are checked too, for the layers the archive carries,
/// whatever order its entries come in (here the layers last).
#[test]
fn another_platform_whose_config_lies_about_a_carried_layer_is_refused() {
    let s390x_tar = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let arm64_tar = noisy_tar(4096);
    let (arm64_layer, arm64_type) = stored_forms(&arm64_tar).swap_remove(1);
    let s390x_config = config_for(vec![Digest::sha256_of(&s390x_tar)], "s390x");
    let s390x = manifest_of(&s390x_tar, MediaType::OCI_LAYER, &s390x_config);
    let archive_for = |arm64_config: &RawJson<ImageConfig>| {
        let arm64 = manifest_of(&arm64_layer, arm64_type, arm64_config);
        let entry = |m: &RawJson<ImageManifest>, platform: &str| {
            let mut d = m.descriptor(MediaType::OCI_MANIFEST);
            d.platform = Some(crate::Platform::parse(platform).expect("platform"));
            d
        };
        let index = RawJson::<ImageIndex>::from_value(ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
            artifact_type: None,
            manifests: vec![entry(&s390x, "linux/s390x"), entry(&arm64, "linux/arm64")],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        })
        .expect("index");
        archive(vec![
            Item::File(
                "index.json",
                top_index(&index.descriptor(MediaType::OCI_INDEX)),
            ),
            Item::File("oci-layout", MARKER.to_vec()),
            Item::File(&blob_path(index.digest()), index.bytes().to_vec()),
            Item::File(&blob_path(s390x.digest()), s390x.bytes().to_vec()),
            Item::File(&blob_path(arm64.digest()), arm64.bytes().to_vec()),
            Item::File(
                &blob_path(s390x_config.digest()),
                s390x_config.bytes().to_vec(),
            ),
            Item::File(
                &blob_path(arm64_config.digest()),
                arm64_config.bytes().to_vec(),
            ),
            Item::File(
                &blob_path(&Digest::sha256_of(&s390x_tar)),
                s390x_tar.clone(),
            ),
            Item::File(
                &blob_path(&Digest::sha256_of(&arm64_layer)),
                arm64_layer.clone(),
            ),
        ])
    };
    let options = || {
        SpoolOptions::new().platform(Some(crate::Platform::parse("linux/s390x").expect("s390x")))
    };
    let lying = config_for(vec![Digest::sha256_of(b"another layer")], "arm64");
    let (_d, l) = new_layout();
    let err = spool_with(pipe(archive_for(&lying)), &l, options()).expect_err("arm64 lies");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(
        err.to_string()
            .contains(&Digest::sha256_of(&arm64_layer).to_string()),
        "{err}"
    );
    assert!(l.tags().expect("tags").is_empty());
    let truthful = config_for(vec![Digest::sha256_of(&arm64_tar)], "arm64");
    spool_with(pipe(archive_for(&truthful)), &l, options()).expect("spools");
    assert_eq!(l.tags().expect("tags"), vec!["tool:1"]);
}
