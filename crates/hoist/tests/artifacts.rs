//! Artifacts (a Helm chart, a build attestation: manifests whose config or layers are not a
//! container image's) copied as they are between OCI layouts and real registries, alone and
//! listed in an index next to an image (as `docker buildx` pushes provenance), with their
//! digests kept; refused with a clear message where only an image can go. Missing components
//! print `SKIP:` (and fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hoist_oci::layout::Layout;
use hoist_oci::{Compression, Descriptor, ImageIndex, ImageManifest, MediaType, Platform, RawJson};
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Registry, require_tool};

use common::text;

fn hoist(cache: &Path, args: &[&str]) -> Output {
    let mut cmd: Command = common::isolated(cache);
    cmd.args(args).output().expect("run hoist")
}

fn all(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn succeeded(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    out
}

/// A chart-like artifact stored in `layout`: its manifest's descriptor.
fn write_chart(layout: &Layout) -> Descriptor {
    let blob = |bytes: &[u8], media_type: &str| {
        let (digest, size) = layout.write_blob(bytes, None).expect("blob");
        Descriptor::new(MediaType::new(media_type), digest, size)
    };
    let config = blob(
        br#"{"name":"app","version":"1.2.0","apiVersion":"v2"}"#,
        "application/vnd.cncf.helm.config.v1+json",
    );
    let chart = blob(
        b"chart bytes that are no tar",
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    );
    let manifest = RawJson::from_value(ImageManifest::new(config, vec![chart])).expect("json");
    layout.write_json(&manifest).expect("manifest");
    manifest.descriptor(MediaType::OCI_MANIFEST)
}

/// A build attestation for the image `subject`: an image config, an in-toto layer.
fn write_attestation(layout: &Layout, subject: &Descriptor) -> Descriptor {
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    let (digest, size) = layout.write_blob(&statement[..], None).expect("statement");
    let layer = Descriptor::new(MediaType::new("application/vnd.in-toto+json"), digest, size);
    let config = format!(
        r#"{{"architecture":"unknown","os":"unknown","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        layer.digest
    );
    let (digest, size) = layout.write_blob(config.as_bytes(), None).expect("config");
    let config = Descriptor::new(MediaType::new(MediaType::OCI_CONFIG), digest, size);
    let manifest = RawJson::from_value(ImageManifest::new(config, vec![layer])).expect("json");
    layout.write_json(&manifest).expect("manifest");
    let mut descriptor = manifest.descriptor(MediaType::OCI_MANIFEST);
    descriptor.platform = Some(Platform::new("unknown", "unknown"));
    descriptor.annotations.insert(
        "vnd.docker.reference.digest".into(),
        subject.digest.to_string(),
    );
    descriptor.annotations.insert(
        "vnd.docker.reference.type".into(),
        "attestation-manifest".into(),
    );
    descriptor
}

/// Two registries and a directory for the test; `None` without `docker-registry`.
fn two_registries() -> Option<(Registry, Registry, tempfile::TempDir)> {
    if !require_tool("docker-registry") {
        return None;
    }
    let one = Registry::builder().start().expect("registry");
    let other = Registry::builder().start().expect("second registry");
    Some((one, other, tempfile::tempdir().expect("tempdir")))
}

#[test]
fn a_chart_goes_through_registries_and_layouts_with_its_digest_and_nowhere_else() {
    let Some((one, other, tmp)) = two_registries() else {
        return;
    };
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| hoist(&cache, args);
    let charts = tmp.path().join("charts");
    let layout = Layout::create(&charts).expect("layout");
    let chart = write_chart(&layout);
    layout.set_tag("1.2.0", &chart).expect("tag");
    let want = chart.digest.to_string();

    let pushed = format!("docker://{}/charts/app:1.2.0", one.host());
    let mounted = format!("docker://{}/mirror/app:1.2.0", one.host());
    let streamed = format!("docker://{}/charts/app:1.2.0", other.host());
    let pulled = tmp.path().join("pulled");
    let copied = tmp.path().join("copied");
    let steps = [
        (common::arg(&charts, ":1.2.0"), pushed.clone()),
        (pushed.clone(), mounted.clone()),
        (mounted.clone(), streamed.clone()),
        (streamed.clone(), common::arg(&pulled, ":1.2.0")),
        (common::arg(&pulled, ":1.2.0"), common::arg(&copied, "")),
    ];
    for (from, to) in &steps {
        succeeded(run(&["-q", "copy", from, to]));
    }
    for at in [
        pushed,
        mounted,
        streamed.clone(),
        common::arg(&copied, ":1.2.0"),
    ] {
        let digest = text(&succeeded(run(&["digest", &at])).stdout);
        assert_eq!(digest.trim(), want, "{at}");
    }
    // Its blobs arrived whole: the copied layout holds the chart's bytes.
    let copied = Layout::open(&copied).expect("copied layout");
    let (_, manifest) = copied.manifest_at(&chart, None).expect("manifest");
    let chart_blob = &manifest.value().layers[0];
    assert!(copied.has_verified_blob(chart_blob).expect("verify"));

    // --format: oci keeps it as it is; v2s2 has no artifacts, and refuses before a blob moves.
    let as_oci = format!("docker://{}/formats/app:oci", one.host());
    succeeded(run(&[
        "-q",
        "copy",
        "--format",
        "oci",
        &common::arg(&charts, ":1.2.0"),
        &as_oci,
    ]));
    let digest = text(&succeeded(run(&["digest", &as_oci])).stdout);
    assert_eq!(digest.trim(), want);
    let as_v2s2 = format!("docker://{}/formats/app:v2s2", one.host());
    let out = run(&[
        "-q",
        "copy",
        "--format",
        "v2s2",
        &common::arg(&charts, ":1.2.0"),
        &as_v2s2,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("cannot be written as Docker v2 schema 2"),
        "{}",
        all(&out)
    );
    assert_eq!(
        run(&["digest", &as_v2s2]).status.code(),
        Some(1),
        "nothing was tagged"
    );

    // Inspected as what it is, its config printed as it is.
    for at in [streamed.clone(), common::arg(&charts, ":1.2.0")] {
        let shown = text(&succeeded(run(&["inspect", &at])).stdout);
        assert!(shown.starts_with("Artifact:"), "{shown}");
        assert!(
            shown.contains("Type:         application/vnd.cncf.helm.config.v1+json"),
            "{shown}"
        );
        assert!(
            shown.contains("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
            "{shown}"
        );
        let config = succeeded(run(&["inspect", "--config", &at])).stdout;
        assert_eq!(
            config, br#"{"name":"app","version":"1.2.0","apiVersion":"v2"}"#,
            "{at}"
        );
    }

    // Nothing to unpack, archive or load: refused before anything is written.
    let rootfs = tmp.path().join("rootfs");
    let archive = tmp.path().join("chart.tar");
    for (from, to) in [
        (streamed.clone(), format!("rootfs:{}", rootfs.display())),
        (
            common::arg(&charts, ":1.2.0"),
            format!("rootfs:{}", rootfs.display()),
        ),
        (streamed, format!("docker-archive:{}", archive.display())),
    ] {
        let out = run(&["-q", "copy", &from, &to]);
        assert_eq!(out.status.code(), Some(1), "{}", all(&out));
        assert!(
            all(&out).contains(
                "an artifact (config media type application/vnd.cncf.helm.config.v1+json)"
            ),
            "{}",
            all(&out)
        );
        assert!(
            all(&out).contains("copied to a registry or an OCI layout"),
            "{}",
            all(&out)
        );
    }
    assert!(!rootfs.exists() && !archive.exists());
}

#[test]
fn an_index_with_a_build_attestation_is_copied_whole_with_all() {
    let Some((one, other, tmp)) = two_registries() else {
        return;
    };
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| hoist(&cache, args);
    let built = tmp.path().join("built");
    let spec = ImageSpec::uniform(2, 20_000, Compression::Gzip, 81);
    let image = write_oci_layout(&built, "amd64", &spec).expect("image");
    let layout = Layout::open(&built).expect("layout");
    let mut entry = Descriptor::new(
        MediaType::new(MediaType::OCI_MANIFEST),
        image.manifest_digest.clone(),
        image.manifest_size,
    );
    entry.platform = Some(Platform::new("linux", "amd64"));
    let attestation = write_attestation(&layout, &entry);
    let index = RawJson::from_value(ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
        artifact_type: None,
        manifests: vec![entry, attestation.clone()],
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("index");
    layout.write_json(&index).expect("index");
    layout
        .set_tag("1", &index.descriptor(MediaType::OCI_INDEX))
        .expect("tag");
    let want = index.digest().to_string();

    let first = format!("docker://{}/team/app:1", one.host());
    let second = format!("docker://{}/team/app:1", other.host());
    let back = tmp.path().join("back");
    succeeded(run(&[
        "-q",
        "copy",
        "--all",
        &common::arg(&built, ":1"),
        &first,
    ]));
    succeeded(run(&["-q", "copy", "--all", &first, &second]));
    succeeded(run(&[
        "-q",
        "copy",
        "--all",
        &second,
        &common::arg(&back, ":1"),
    ]));
    for at in [first, second.clone(), common::arg(&back, ":1")] {
        let digest = text(&succeeded(run(&["digest", &at])).stdout);
        assert_eq!(digest.trim(), want, "{at}");
    }
    // The attestation came along, by digest, with its statement.
    let back = Layout::open(&back).expect("layout");
    let (_, manifest) = back.manifest_at(&attestation, None).expect("attestation");
    assert!(
        back.has_verified_blob(&manifest.value().layers[0])
            .expect("verify")
    );
    // The image itself still unpacks from the index (the host's platform is amd64 here, or
    // it is asked for).
    let rootfs = tmp.path().join("rootfs");
    succeeded(run(&[
        "-q",
        "--platform",
        "linux/amd64",
        "copy",
        &second,
        &format!("rootfs:{}", rootfs.display()),
    ]));
    assert!(rootfs.is_dir());
}
