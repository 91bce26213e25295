//! Every mapping and every refusal of [`super`], on documents built here.

use super::*;
use crate::Platform;

fn digest(n: u8) -> Digest {
    Digest::sha256_of(&[n])
}

fn desc(media_type: &str, n: u8) -> Descriptor {
    Descriptor::new(media_type, digest(n), 100 + u64::from(n))
}

/// A manifest of `manifest_type` (`None`: no media type field) with a config and `layers`.
fn manifest(manifest_type: Option<&str>, config: &str, layers: &[&str]) -> RawJson<ImageManifest> {
    let value = ImageManifest {
        media_type: manifest_type.map(MediaType::new),
        ..ImageManifest::new(
            desc(config, 0),
            layers
                .iter()
                .enumerate()
                .map(|(i, t)| desc(t, i as u8 + 1))
                .collect(),
        )
    };
    RawJson::from_value(value).expect("serializes")
}

fn oci(layers: &[&str]) -> RawJson<ImageManifest> {
    manifest(Some(MediaType::OCI_MANIFEST), MediaType::OCI_CONFIG, layers)
}

fn docker(layers: &[&str]) -> RawJson<ImageManifest> {
    manifest(
        Some(MediaType::DOCKER_MANIFEST),
        MediaType::DOCKER_CONFIG,
        layers,
    )
}

fn layer_types(m: &RawJson<ImageManifest>) -> Vec<&str> {
    m.value()
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect()
}

/// The converted bytes are what the document holds, and its descriptor names them.
fn check_consistent<T: DeserializeOwned + PartialEq + fmt::Debug>(c: &Converted<T>) {
    let bytes = c.document.bytes();
    assert_eq!(c.descriptor.digest, Digest::sha256_of(bytes));
    assert_eq!(c.document.digest(), &Digest::sha256_of(bytes));
    assert_eq!(c.descriptor.size, bytes.len() as u64);
    let back: RawJson<T> = RawJson::parse(bytes.to_vec()).expect("parses back");
    assert_eq!(back.value(), c.document.value());
}

#[test]
fn oci_to_docker_maps_every_layer_kind_and_keeps_the_blobs() {
    let source = oci(&[
        MediaType::OCI_LAYER_GZIP,
        MediaType::OCI_LAYER,
        MediaType::OCI_LAYER_NONDIST_GZIP,
        MediaType::OCI_LAYER_NONDIST,
    ]);
    let c = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("converts");
    check_consistent(&c);
    assert_eq!(c.descriptor.media_type, MediaType::DOCKER_MANIFEST);
    assert!(c.changed_from(&source));
    let m = c.document.value();
    assert_eq!(
        m.media_type.as_ref().expect("set"),
        &MediaType::DOCKER_MANIFEST
    );
    assert_eq!(m.config.media_type, MediaType::DOCKER_CONFIG);
    assert_eq!(
        layer_types(&c.document),
        [
            MediaType::DOCKER_LAYER_GZIP,
            MediaType::DOCKER_LAYER,
            MediaType::DOCKER_LAYER_FOREIGN,
            MediaType::DOCKER_LAYER_FOREIGN_TAR,
        ]
    );
    // Blob digests and sizes are untouched: no blob changes.
    let before = source.value();
    assert_eq!(m.config.digest, before.config.digest);
    assert_eq!(m.config.size, before.config.size);
    for (new, old) in m.layers.iter().zip(&before.layers) {
        assert_eq!((&new.digest, new.size), (&old.digest, old.size));
    }
    // The bytes say it too, in schema 2's field names.
    let text = std::str::from_utf8(c.document.bytes()).expect("utf-8");
    assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker"#));
}

#[test]
fn docker_drops_annotations_and_keeps_foreign_urls() {
    let mut value = oci(&[MediaType::OCI_LAYER_NONDIST_GZIP]).value().clone();
    value.annotations.insert("org.example.a".into(), "1".into());
    value.layers[0].urls = vec!["https://example.com/layer".into()];
    value.layers[0]
        .annotations
        .insert("org.example.b".into(), "2".into());
    value.config.data = Some("e30=".into());
    let source = RawJson::from_value(value).expect("serializes");
    let c = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("converts");
    let m = c.document.value();
    assert!(m.annotations.is_empty());
    assert!(m.layers[0].annotations.is_empty());
    assert_eq!(m.layers[0].urls, ["https://example.com/layer"]);
    assert_eq!(m.config.data, None);
    let text = std::str::from_utf8(c.document.bytes()).expect("utf-8");
    assert!(!text.contains("annotations"), "{text}");
}

#[test]
fn docker_refuses_what_it_cannot_describe() {
    let refused = |m: RawJson<ImageManifest>, says: &str| {
        let e = convert_manifest(&m, ManifestFormat::DockerV2S2).expect_err(says);
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        e
    };
    for zstd in [
        MediaType::OCI_LAYER_ZSTD,
        MediaType::OCI_LAYER_NONDIST_ZSTD,
        MediaType::DOCKER_LAYER_ZSTD,
    ] {
        let e = refused(
            oci(&[MediaType::OCI_LAYER_GZIP, zstd]),
            "Docker v2 schema 2 has no zstd layers",
        );
        // The layer at fault is named.
        assert_eq!(e.digest(), Some(&digest(2)));
    }
    refused(
        oci(&["application/vnd.oci.image.layer.v1.tar+gzip+encrypted"]),
        "no encrypted layers",
    );
    refused(
        oci(&["application/vnd.example.thing"]),
        "no Docker v2 schema 2 counterpart",
    );
    // An artifact: its config is no image config, or it says it is one.
    refused(
        manifest(
            Some(MediaType::OCI_MANIFEST),
            MediaType::OCI_EMPTY,
            &[MediaType::OCI_LAYER_GZIP],
        ),
        "not an image config",
    );
    let mut value = oci(&[]).value().clone();
    value.artifact_type = Some(MediaType::new("application/vnd.example.sbom"));
    refused(
        RawJson::from_value(value).expect("serializes"),
        "is an artifact",
    );
    let mut value = oci(&[]).value().clone();
    value.subject = Some(desc(MediaType::OCI_MANIFEST, 9));
    refused(RawJson::from_value(value).expect("serializes"), "subject");
    // A manifest of neither format.
    refused(
        manifest(
            Some("application/vnd.example.manifest"),
            MediaType::OCI_CONFIG,
            &[],
        ),
        "no OCI or Docker",
    );
}

#[test]
fn docker_to_oci_maps_every_layer_kind() {
    let source = docker(&[
        MediaType::DOCKER_LAYER_GZIP,
        MediaType::DOCKER_LAYER,
        MediaType::DOCKER_LAYER_FOREIGN,
        MediaType::DOCKER_LAYER_FOREIGN_TAR,
        MediaType::DOCKER_LAYER_ZSTD,
    ]);
    let c = convert_manifest(&source, ManifestFormat::Oci).expect("converts");
    check_consistent(&c);
    assert_eq!(c.descriptor.media_type, MediaType::OCI_MANIFEST);
    let m = c.document.value();
    assert_eq!(
        m.media_type.as_ref().expect("set"),
        &MediaType::OCI_MANIFEST
    );
    assert_eq!(m.config.media_type, MediaType::OCI_CONFIG);
    assert_eq!(
        layer_types(&c.document),
        [
            MediaType::OCI_LAYER_GZIP,
            MediaType::OCI_LAYER,
            MediaType::OCI_LAYER_NONDIST_GZIP,
            MediaType::OCI_LAYER_NONDIST,
            MediaType::OCI_LAYER_ZSTD,
        ]
    );
    assert_eq!(m.config.digest, source.value().config.digest);
}

#[test]
fn oci_refuses_what_it_cannot_describe() {
    for (m, says) in [
        (
            docker(&["application/vnd.example.thing"]),
            "no OCI counterpart",
        ),
        (
            manifest(
                Some(MediaType::DOCKER_MANIFEST),
                "application/vnd.example.config",
                &[],
            ),
            "not an image config",
        ),
    ] {
        let e = convert_manifest(&m, ManifestFormat::Oci).expect_err(says);
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn a_round_trip_gives_back_the_same_media_types_and_descriptors() {
    let source = oci(&[
        MediaType::OCI_LAYER_GZIP,
        MediaType::OCI_LAYER,
        MediaType::OCI_LAYER_NONDIST_GZIP,
        MediaType::OCI_LAYER_NONDIST,
    ]);
    let there = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("to docker");
    let back = convert_manifest(&there.document, ManifestFormat::Oci).expect("to oci");
    check_consistent(&back);
    assert_eq!(back.document.value(), source.value());
    // Both are serialized the same way, so even the bytes and digest come back.
    assert_eq!(back.document.bytes(), source.bytes());
    assert_eq!(back.descriptor, source.descriptor(MediaType::OCI_MANIFEST));
    // And the other way round.
    let source = docker(&[
        MediaType::DOCKER_LAYER_GZIP,
        MediaType::DOCKER_LAYER_FOREIGN,
    ]);
    let there = convert_manifest(&source, ManifestFormat::Oci).expect("to oci");
    let back = convert_manifest(&there.document, ManifestFormat::DockerV2S2).expect("back");
    assert_eq!(back.document.bytes(), source.bytes());
}

#[test]
fn the_format_a_manifest_has_leaves_it_unchanged() {
    // Whitespace and a field order no serializer would write: the bytes must survive.
    let text = format!(
        "{{ \"layers\": [], \"config\": {{ \"size\": 2, \"digest\": \"{}\", \"mediaType\": \"{}\" }},\n \
         \"mediaType\": \"{}\", \"schemaVersion\": 2 }}",
        digest(0),
        MediaType::DOCKER_CONFIG,
        MediaType::DOCKER_MANIFEST
    );
    let source: RawJson<ImageManifest> = RawJson::parse(text.into_bytes()).expect("parses");
    let c = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("as it is");
    assert_eq!(c.document, source);
    assert!(!c.changed_from(&source));
    assert_eq!(c.descriptor, source.descriptor(MediaType::DOCKER_MANIFEST));
    // An OCI manifest without a mediaType field is OCI; even one with zstd layers.
    let bare = manifest(None, MediaType::OCI_CONFIG, &[MediaType::OCI_LAYER_ZSTD]);
    let c = convert_manifest(&bare, ManifestFormat::Oci).expect("as it is");
    assert_eq!(c.document.bytes(), bare.bytes());
    assert_eq!(c.descriptor.media_type, MediaType::OCI_MANIFEST);
}

#[test]
fn conversion_is_deterministic() {
    let source = oci(&[MediaType::OCI_LAYER_GZIP]);
    let a = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("converts");
    let b = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("converts");
    assert_eq!(a.document.bytes(), b.document.bytes());
}

fn platform(arch: &str) -> Platform {
    Platform::new("linux", arch)
}

/// An index of `index_type` listing two images of `child_type`, with annotations.
fn index(index_type: &str, child_type: &str) -> RawJson<ImageIndex> {
    let mut manifests = Vec::new();
    for (n, arch) in [(1, "amd64"), (2, "arm64")] {
        let mut d = desc(child_type, n);
        d.platform = Some(platform(arch));
        if index_type == MediaType::OCI_INDEX {
            d.annotations
                .insert("org.example.child".into(), arch.into());
        }
        manifests.push(d);
    }
    let mut annotations = BTreeMap::new();
    if index_type == MediaType::OCI_INDEX {
        annotations.insert("org.example.index".into(), "x".into());
    }
    RawJson::from_value(ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(index_type)),
        artifact_type: None,
        manifests,
        subject: None,
        annotations,
        extra: BTreeMap::new(),
    })
    .expect("serializes")
}

/// Each listed image of `index` converted to `to`: a new digest, size and media type.
fn mapping(index: &RawJson<ImageIndex>, to: &str) -> BTreeMap<Digest, Descriptor> {
    index
        .value()
        .manifests
        .iter()
        .map(|d| {
            let n = d.size as u8;
            (
                d.digest.clone(),
                Descriptor::new(to, digest(n), 1000 + u64::from(n)),
            )
        })
        .collect()
}

#[test]
fn an_index_becomes_a_manifest_list_of_the_converted_images() {
    let source = index(MediaType::OCI_INDEX, MediaType::OCI_MANIFEST);
    let children = mapping(&source, MediaType::DOCKER_MANIFEST);
    let c = convert_index(&source, ManifestFormat::DockerV2S2, &children).expect("converts");
    check_consistent(&c);
    assert_eq!(c.descriptor.media_type, MediaType::DOCKER_MANIFEST_LIST);
    let list = c.document.value();
    assert_eq!(
        list.media_type.as_ref().expect("set"),
        &MediaType::DOCKER_MANIFEST_LIST
    );
    assert!(list.annotations.is_empty());
    for (new, old) in list.manifests.iter().zip(&source.value().manifests) {
        let converted = &children[&old.digest];
        assert_eq!(new.media_type, MediaType::DOCKER_MANIFEST);
        assert_eq!((&new.digest, new.size), (&converted.digest, converted.size));
        assert_eq!(new.platform, old.platform);
        assert!(new.annotations.is_empty());
    }
    let text = std::str::from_utf8(c.document.bytes()).expect("utf-8");
    assert!(!text.contains("annotations"), "{text}");
}

#[test]
fn a_manifest_list_becomes_an_index_of_the_converted_images() {
    let source = index(MediaType::DOCKER_MANIFEST_LIST, MediaType::DOCKER_MANIFEST);
    let children = mapping(&source, MediaType::OCI_MANIFEST);
    let c = convert_index(&source, ManifestFormat::Oci, &children).expect("converts");
    check_consistent(&c);
    assert_eq!(c.descriptor.media_type, MediaType::OCI_INDEX);
    for (new, old) in c
        .document
        .value()
        .manifests
        .iter()
        .zip(&source.value().manifests)
    {
        assert_eq!(new.media_type, MediaType::OCI_MANIFEST);
        assert_eq!(new.digest, children[&old.digest].digest);
        assert_eq!(new.platform, old.platform);
    }
}

#[test]
fn an_index_already_in_the_format_with_unchanged_images_is_unchanged() {
    let source = index(MediaType::DOCKER_MANIFEST_LIST, MediaType::DOCKER_MANIFEST);
    let same: BTreeMap<Digest, Descriptor> = source
        .value()
        .manifests
        .iter()
        .map(|d| (d.digest.clone(), d.clone()))
        .collect();
    let c = convert_index(&source, ManifestFormat::DockerV2S2, &same).expect("as it is");
    assert_eq!(c.document, source);
    assert!(!c.changed_from(&source));
    // Same format, but its images were rewritten: the index must name the new ones.
    let source = index(MediaType::OCI_INDEX, MediaType::OCI_MANIFEST);
    let children = mapping(&source, MediaType::OCI_MANIFEST);
    let c = convert_index(&source, ManifestFormat::Oci, &children).expect("rewritten");
    assert!(c.changed_from(&source));
    let listed = &c.document.value().manifests;
    assert_eq!(listed[0].digest, digest(101));
    // Nothing else changes in an OCI index: its annotations and its images' stay.
    assert_eq!(c.document.value().annotations, source.value().annotations);
    assert_eq!(
        listed[0].annotations,
        source.value().manifests[0].annotations
    );
}

#[test]
fn an_index_needs_every_image_converted_to_its_format() {
    let source = index(MediaType::OCI_INDEX, MediaType::OCI_MANIFEST);
    let mut children = mapping(&source, MediaType::DOCKER_MANIFEST);
    let first = source.value().manifests[0].digest.clone();
    let wrong = Descriptor::new(MediaType::OCI_MANIFEST, digest(7), 7);
    children.insert(first.clone(), wrong);
    let e = convert_index(&source, ManifestFormat::DockerV2S2, &children).expect_err("oci child");
    assert!(
        e.is_invalid_input() && e.to_string().contains("not as an"),
        "{e}"
    );
    children.remove(&first);
    let e = convert_index(&source, ManifestFormat::DockerV2S2, &children).expect_err("missing");
    assert!(
        e.is_invalid_input() && e.to_string().contains(&first.to_string()),
        "{e}"
    );
}

#[test]
fn a_manifest_list_refuses_a_subject_or_an_artifact_type() {
    let source = index(MediaType::OCI_INDEX, MediaType::OCI_MANIFEST);
    let children = mapping(&source, MediaType::DOCKER_MANIFEST);
    let mut value = source.value().clone();
    value.subject = Some(desc(MediaType::OCI_MANIFEST, 9));
    let with_subject = RawJson::from_value(value).expect("serializes");
    let e =
        convert_index(&with_subject, ManifestFormat::DockerV2S2, &children).expect_err("subject");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("subject"), "{e}");
    let mut value = source.value().clone();
    value.artifact_type = Some(MediaType::new("application/vnd.example.sbom"));
    let artifact = RawJson::from_value(value).expect("serializes");
    let e = convert_index(&artifact, ManifestFormat::DockerV2S2, &children).expect_err("artifact");
    assert!(e.to_string().contains("artifact"), "{e}");
    // Both are known before any image is converted, and OCI keeps them.
    for refused in [&with_subject, &artifact] {
        let e = check_index(refused.value(), ManifestFormat::DockerV2S2).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        check_index(refused.value(), ManifestFormat::Oci).expect("an OCI index has them");
    }
    check_index(source.value(), ManifestFormat::DockerV2S2).expect("a plain index");
}

/// `m`'s bytes with `field` set to `value` at the top level, parsed again.
fn with_top_level_field(
    m: &RawJson<ImageManifest>,
    field: &str,
    value: serde_json::Value,
) -> RawJson<ImageManifest> {
    let mut json: serde_json::Value = serde_json::from_slice(m.bytes()).expect("json");
    json[field] = value;
    RawJson::parse(serde_json::to_vec(&json).expect("bytes")).expect("parses")
}

/// The top-level field `field` of a document's bytes.
fn top_level_field(bytes: &[u8], field: &str) -> Option<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    json.get(field).cloned()
}

/// Regression: a manifest converted to OCI lost the top-level fields hoist does not model.
#[test]
fn unknown_manifest_fields_survive_a_conversion_to_oci_and_not_to_docker() {
    let vendor = serde_json::json!({ "kept": true });
    let source = with_top_level_field(
        &docker(&[MediaType::DOCKER_LAYER_GZIP]),
        "io.example.vendor",
        vendor.clone(),
    );
    // A document in the format asked for is not rewritten: its bytes stay as they came.
    let same = convert_manifest(&source, ManifestFormat::DockerV2S2).expect("as it is");
    assert_eq!(same.document.bytes(), source.bytes());
    let c = convert_manifest(&source, ManifestFormat::Oci).expect("converts");
    check_consistent(&c);
    assert_eq!(
        top_level_field(c.document.bytes(), "io.example.vendor"),
        Some(vendor.clone())
    );
    // Docker v2 schema 2 has no place for another's fields, as it has none for annotations.
    let back = convert_manifest(&c.document, ManifestFormat::DockerV2S2).expect("converts");
    check_consistent(&back);
    assert_eq!(
        top_level_field(back.document.bytes(), "io.example.vendor"),
        None
    );
    let oci_source = with_top_level_field(
        &oci(&[MediaType::OCI_LAYER_GZIP]),
        "io.example.vendor",
        vendor,
    );
    let docker = convert_manifest(&oci_source, ManifestFormat::DockerV2S2).expect("converts");
    assert_eq!(
        top_level_field(docker.document.bytes(), "io.example.vendor"),
        None
    );
}

/// Regression: an index entry naming a converted image kept the old image's embedded `data`
/// (and `urls`), which no longer match its digest.
#[test]
fn an_index_entry_of_a_converted_image_loses_the_old_bytes() {
    let source = index(MediaType::OCI_INDEX, MediaType::OCI_MANIFEST);
    let mut value = source.value().clone();
    for entry in &mut value.manifests {
        entry.data = Some("e30=".into());
        entry.urls = vec!["https://example.com/manifest".into()];
    }
    let source = RawJson::from_value(value).expect("serializes");
    for (format, child_type) in [
        (ManifestFormat::Oci, MediaType::OCI_MANIFEST),
        (ManifestFormat::DockerV2S2, MediaType::DOCKER_MANIFEST),
    ] {
        let children = mapping(&source, child_type);
        let c = convert_index(&source, format, &children).expect("converts");
        check_consistent(&c);
        for (new, old) in c
            .document
            .value()
            .manifests
            .iter()
            .zip(&source.value().manifests)
        {
            assert_eq!(new.digest, children[&old.digest].digest);
            assert_eq!(new.data, None, "{format}");
            assert!(new.urls.is_empty(), "{format}");
            assert_eq!(new.platform, old.platform);
            if format == ManifestFormat::Oci {
                assert_eq!(new.annotations, old.annotations);
            }
        }
    }
    // Images converted to what they were: their entries still name the same bytes.
    let same: BTreeMap<Digest, Descriptor> = source
        .value()
        .manifests
        .iter()
        .map(|d| (d.digest.clone(), d.clone()))
        .collect();
    let c = convert_index(&source, ManifestFormat::Oci, &same).expect("as it is");
    assert_eq!(c.document, source);
}
