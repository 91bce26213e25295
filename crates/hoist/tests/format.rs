//! `--format`: images written to a real registry (the testkit's `docker-registry`) and to OCI
//! layouts as Docker v2 schema 2 or OCI, checked on what the destination then holds: the media
//! types of the served or stored manifest, its blobs unchanged, and `--digestfile` and `hoist
//! digest` naming the sha256 of the exact bytes stored. Missing components print `SKIP:` (and
//! fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hoist_oci::{
    Compression, Descriptor, Digest, ImageIndex, ImageManifest, Layout, MediaType, RawJson,
};
use hoist_testkit::synth::{ImageSpec, SynthImage, write_multi_platform_layout, write_oci_layout};
use hoist_testkit::{Registry, require_tool};

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.arg("-q").args(args);
    cmd
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run hoist");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The exact bytes a registry serves for `reference` (through `hoist inspect --raw`).
fn served(cache: &Path, reference: &str) -> Vec<u8> {
    ok(hoist(cache, &["inspect", "--raw"]).arg(reference)).stdout
}

/// What `--digestfile` wrote.
fn digest_in(path: &Path) -> Digest {
    std::fs::read_to_string(path)
        .expect("digest file")
        .parse()
        .expect("a digest")
}

/// The manifest a registry serves for `reference`, checked to be the one `--digestfile` named
/// and a Docker v2 schema 2 manifest of gzip layers with a Docker config.
fn served_v2s2(cache: &Path, reference: &str, digest_file: &Path) -> RawJson<ImageManifest> {
    let bytes = served(cache, reference);
    assert_eq!(digest_in(digest_file), Digest::sha256_of(&bytes));
    let m = RawJson::<ImageManifest>::parse(bytes).expect("manifest");
    let v = m.value();
    assert_eq!(
        v.media_type.as_ref().map(MediaType::as_str),
        Some(MediaType::DOCKER_MANIFEST)
    );
    assert_eq!(v.config.media_type, MediaType::DOCKER_CONFIG);
    assert!(
        v.layers
            .iter()
            .all(|l| l.media_type == MediaType::DOCKER_LAYER_GZIP)
    );
    m
}

/// `hoist digest` of `source`.
fn digest_of(cache: &Path, source: &str) -> Digest {
    let out = ok(&mut hoist(cache, &["digest", source]));
    common::text(&out.stdout).trim().parse().expect("a digest")
}

/// Assert `bytes` are a manifest of `format` for `image`: the manifest, config and layer media
/// types of that format, and the image's own blobs (digests and sizes) unchanged.
fn assert_manifest(bytes: &[u8], docker: bool, image: &SynthImage) -> RawJson<ImageManifest> {
    let m = RawJson::<ImageManifest>::parse(bytes.to_vec()).expect("a manifest");
    let v = m.value();
    let (manifest, config, layer) = match docker {
        true => (
            MediaType::DOCKER_MANIFEST,
            MediaType::DOCKER_CONFIG,
            MediaType::DOCKER_LAYER_GZIP,
        ),
        false => (
            MediaType::OCI_MANIFEST,
            MediaType::OCI_CONFIG,
            MediaType::OCI_LAYER_GZIP,
        ),
    };
    assert_eq!(v.media_type.as_ref().map(MediaType::as_str), Some(manifest));
    assert_eq!(v.config.media_type, config);
    assert_eq!(
        (&v.config.digest, v.config.size),
        (&image.config_digest, image.config_size)
    );
    assert_eq!(v.layers.len(), image.layers.len());
    for (got, synth) in v.layers.iter().zip(&image.layers) {
        assert_eq!(got.media_type, layer);
        assert_eq!((&got.digest, got.size), (&synth.digest, synth.size));
    }
    m
}

fn gzip_image(dir: &Path, seed: u64) -> SynthImage {
    write_oci_layout(
        dir,
        "v1",
        &ImageSpec::uniform(2, 64 << 10, Compression::Gzip, seed),
    )
    .expect("source layout")
}

#[test]
fn v2s2_is_pushed_and_served_and_oci_comes_back_from_it() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let image = gzip_image(&source, 7);
    let registry = Registry::start().expect("registry");
    let other = Registry::start().expect("second registry");
    let repo = format!("{}/team/app", registry.host());
    let digest_file = tmp.path().join("digest");

    // Layout -> registry as v2s2: the served manifest is Docker's, its digest the one recorded.
    ok(hoist(&cache, &["push", "--format", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg(common::arg(&source, ":v1"))
        .arg(format!("{repo}:v2s2")));
    let bytes = served(&cache, &format!("docker://{repo}:v2s2"));
    assert_manifest(&bytes, true, &image);
    let pushed = digest_in(&digest_file);
    assert_eq!(pushed, Digest::sha256_of(&bytes));
    assert_ne!(
        pushed, image.manifest_digest,
        "a new manifest, a new digest"
    );
    assert_eq!(digest_of(&cache, &format!("docker://{repo}:v2s2")), pushed);
    // The registry serves it by that digest too.
    assert_eq!(served(&cache, &format!("docker://{repo}@{pushed}")), bytes);

    // The same format again changes nothing: the same bytes, the same digest.
    ok(hoist(&cache, &["copy", "-f", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("docker://{repo}:v2s2"))
        .arg(format!("docker://{repo}:again")));
    assert_eq!(digest_in(&digest_file), pushed);
    assert_eq!(served(&cache, &format!("docker://{repo}:again")), bytes);

    // v2s2 -> OCI within the registry (blobs mounted) and into another (blobs streamed).
    for (to, kind) in [
        (format!("{}/team/oci", registry.host()), "mounted"),
        (format!("{}/team/oci", other.host()), "streamed"),
    ] {
        ok(hoist(&cache, &["copy", "--format", "oci", "--digestfile"])
            .arg(&digest_file)
            .arg(format!("docker://{repo}:v2s2"))
            .arg(format!("docker://{to}:oci")));
        let back = served(&cache, &format!("docker://{to}:oci"));
        assert_manifest(&back, false, &image);
        assert_eq!(digest_in(&digest_file), Digest::sha256_of(&back), "{kind}");
    }

    // Registry (v2s2) -> layout as OCI: the layout stores and tags the OCI manifest.
    let pulled = tmp.path().join("pulled");
    ok(hoist(&cache, &["pull", "-f", "oci", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("{repo}:v2s2"))
        .arg(&pulled));
    let layout = Layout::open(&pulled).expect("pulled layout");
    let tagged = layout.resolve(Some("v2s2")).expect("tag");
    assert_eq!(tagged.media_type, MediaType::OCI_MANIFEST);
    assert_eq!(tagged.digest, digest_in(&digest_file));
    let stored: RawJson<ImageManifest> = layout.read_json(&tagged).expect("stored manifest");
    assert_manifest(stored.bytes(), false, &image);
    let m = stored.value();
    for blob in std::iter::once(&m.config).chain(&m.layers) {
        layout.verify_blob(blob).expect("blob present and whole");
    }

    // Layout -> layout as v2s2.
    let copied = tmp.path().join("copied");
    ok(hoist(&cache, &["copy", "-f", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg(common::arg(&source, ":v1"))
        .arg(common::arg(&copied, ":v1")));
    let layout = Layout::open(&copied).expect("copied layout");
    let tagged = layout.resolve(Some("v1")).expect("tag");
    assert_eq!(tagged.media_type, MediaType::DOCKER_MANIFEST);
    assert_eq!(tagged.digest, digest_in(&digest_file));
    let stored: RawJson<ImageManifest> = layout.read_json(&tagged).expect("stored manifest");
    assert_manifest(stored.bytes(), true, &image);
    // It reads back as an image (what unpack, push and archive go through).
    let read = layout.image(Some("v1"), None).expect("image");
    assert_eq!(read.config.digest(), &image.config_digest);
}

/// A two-platform image with gzip layers only (the testkit's has a zstd one, which v2s2
/// refuses), written into the layout at `dir` with hoist-oci's own API: the index, annotated,
/// is tagged `multi`. Returns the index and the images in its order.
fn gzip_multi_layout(dir: &Path) -> (RawJson<ImageIndex>, Vec<SynthImage>) {
    let mut images = Vec::new();
    let mut manifests = Vec::new();
    for (n, arch) in [(1, "amd64"), (2, "arm64")] {
        let spec = ImageSpec::uniform(n, 40 << 10, Compression::Gzip, 10 + n as u64);
        let image = write_oci_layout(dir, &format!("multi-{arch}"), &spec).expect("image");
        let mut entry = Descriptor::new(
            MediaType::OCI_MANIFEST,
            image.manifest_digest.clone(),
            image.manifest_size,
        );
        entry.platform = Some(hoist_oci::Platform::new("linux", arch));
        manifests.push(entry);
        images.push(image);
    }
    let index = RawJson::from_value(ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: [("org.example.test".to_string(), "dropped".to_string())].into(),
        extra: Default::default(),
    })
    .expect("index");
    let layout = Layout::open(dir).expect("layout");
    layout.write_json(&index).expect("write index");
    layout
        .set_tag("multi", &index.descriptor(MediaType::OCI_INDEX))
        .expect("tag");
    (index, images)
}

#[test]
fn all_with_v2s2_writes_a_manifest_list_of_converted_images() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let (source_index, images) = gzip_multi_layout(&source);
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/multi", registry.host());
    let digest_file = tmp.path().join("digest");

    ok(hoist(
        &cache,
        &["copy", "--all", "--format", "v2s2", "--digestfile"],
    )
    .arg(&digest_file)
    .arg(common::arg(&source, ":multi"))
    .arg(format!("docker://{repo}:v1")));
    let bytes = served(&cache, &format!("docker://{repo}:v1"));
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    let list = RawJson::<ImageIndex>::parse(bytes).expect("a manifest list");
    let v = list.value();
    assert_eq!(
        v.media_type.as_ref().map(MediaType::as_str),
        Some(MediaType::DOCKER_MANIFEST_LIST)
    );
    assert!(
        v.annotations.is_empty(),
        "a manifest list has no annotations"
    );
    assert_eq!(v.manifests.len(), images.len());
    for ((child, listed), image) in v
        .manifests
        .iter()
        .zip(&source_index.value().manifests)
        .zip(&images)
    {
        assert_eq!(child.media_type, MediaType::DOCKER_MANIFEST);
        assert_eq!(child.platform, listed.platform, "platforms are kept");
        assert_ne!(child.digest, listed.digest);
        // Each listed image is there, by its new digest, as v2s2.
        let image_bytes = served(&cache, &format!("docker://{repo}@{}", child.digest));
        assert_eq!(Digest::sha256_of(&image_bytes), child.digest);
        assert_eq!(image_bytes.len() as u64, child.size);
        assert_manifest(&image_bytes, true, image);
    }

    // And back into a layout as an OCI index of OCI images.
    let pulled = tmp.path().join("pulled");
    ok(
        hoist(&cache, &["pull", "--all", "-f", "oci", "--digestfile"])
            .arg(&digest_file)
            .arg(format!("{repo}:v1"))
            .arg(&pulled),
    );
    let layout = Layout::open(&pulled).expect("pulled layout");
    let top = layout.resolve(Some("v1")).expect("tag");
    assert_eq!(top.media_type, MediaType::OCI_INDEX);
    assert_eq!(top.digest, digest_in(&digest_file));
    let index = layout.read_json::<ImageIndex>(&top).expect("stored index");
    assert_eq!(index.value().manifests.len(), images.len());
    for (child, image) in index.value().manifests.iter().zip(&images) {
        assert_eq!(child.media_type, MediaType::OCI_MANIFEST);
        let read = layout.image_at(child, None).expect("listed image");
        assert_manifest(read.manifest.bytes(), false, image);
    }

    // Registry to registry (blobs mounted): the manifest list becomes an OCI index whose images
    // are pushed by their new digests.
    let mounted = format!("{}/team/oci-multi", registry.host());
    ok(
        hoist(&cache, &["copy", "--all", "-f", "oci", "--digestfile"])
            .arg(&digest_file)
            .arg(format!("docker://{repo}:v1"))
            .arg(format!("docker://{mounted}:v1")),
    );
    let bytes = served(&cache, &format!("docker://{mounted}:v1"));
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    assert_eq!(
        Digest::sha256_of(&bytes),
        top.digest,
        "the same index as pulled"
    );
    let index = RawJson::<ImageIndex>::parse(bytes).expect("an index");
    for (child, image) in index.value().manifests.iter().zip(&images) {
        let image_bytes = served(&cache, &format!("docker://{mounted}@{}", child.digest));
        assert_eq!(Digest::sha256_of(&image_bytes), child.digest);
        assert_manifest(&image_bytes, false, image);
    }

    // An index listing an image v2s2 cannot hold (the testkit's arm64 one has zstd layers) is
    // refused, naming that image, and no index is pushed.
    let mixed = tmp.path().join("mixed");
    write_multi_platform_layout(&mixed, "multi").expect("two-platform layout");
    let out = hoist(&cache, &["copy", "--all", "-f", "v2s2"])
        .arg(common::arg(&mixed, ":multi"))
        .arg(format!("docker://{repo}:mixed"))
        .output()
        .expect("run hoist");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("linux/arm64") && stderr.contains("no zstd layers"),
        "{stderr}"
    );
    let missing = hoist(&cache, &["inspect", "--raw"])
        .arg(format!("docker://{repo}:mixed"))
        .output()
        .expect("run hoist");
    assert_ne!(missing.status.code(), Some(0), "no index was pushed");
}

#[test]
fn what_v2s2_cannot_hold_is_refused_and_nothing_is_pushed() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("zstd");
    let image = write_oci_layout(
        &source,
        "v1",
        &ImageSpec::uniform(1, 32 << 10, Compression::Zstd, 3),
    )
    .expect("zstd layout");
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/zstd", registry.host());

    let out = hoist(&cache, &["push", "--format", "v2s2"])
        .arg(common::arg(&source, ":v1"))
        .arg(format!("{repo}:v1"))
        .output()
        .expect("run hoist");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for says in [
        "--format v2s2",
        "no zstd layers",
        "use --format oci",
        &image.manifest_digest.to_string(),
    ] {
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
    // Refused before anything moved: no manifest, and not even the layer.
    let missing = hoist(&cache, &["inspect", "--raw"])
        .arg(format!("docker://{repo}:v1"))
        .output()
        .expect("run hoist");
    assert_ne!(missing.status.code(), Some(0));
    let blob = format!("/v2/team/zstd/blobs/{}", image.layers[0].digest);
    let head = hoist_testkit::http_request(registry.addr(), "HEAD", &blob, &[], &[]).expect("HEAD");
    assert_eq!(head.status, 404, "no layer was pushed");

    // Into a layout as well: nothing is tagged.
    let copied = tmp.path().join("copied");
    let out = hoist(&cache, &["copy", "-f", "v2s2"])
        .arg(common::arg(&source, ":v1"))
        .arg(common::arg(&copied, ":v1"))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1));
    if let Ok(layout) = Layout::open(&copied) {
        assert!(layout.tags().expect("tags").is_empty());
    }
    // As OCI, the same image goes through unchanged.
    ok(hoist(&cache, &["push", "--format", "oci"])
        .arg(common::arg(&source, ":v1"))
        .arg(format!("{repo}:v1")));
    assert_eq!(
        digest_of(&cache, &format!("docker://{repo}:v1")),
        image.manifest_digest
    );
}

#[test]
fn a_destination_with_a_fixed_format_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    gzip_image(&source, 1);
    let archive = tmp.path().join("out.tar");
    for to in [
        format!("docker-archive:{}", archive.display()),
        "docker-daemon:app:1".to_string(),
        format!("rootfs:{}", tmp.path().join("root").display()),
    ] {
        let out = hoist(&cache, &["copy", "--format", "v2s2"])
            .arg(common::arg(&source, ":v1"))
            .arg(&to)
            .output()
            .expect("run hoist");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {stderr}");
        assert!(stderr.contains("fixed format"), "{stderr}");
    }
    assert!(!archive.exists(), "nothing was written");
}

#[test]
fn a_docker_archive_goes_to_a_registry_and_a_layout_as_v2s2() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let archive = tmp.path().join("app.tar");
    let spec = ImageSpec::uniform(2, 32 << 10, Compression::None, 5);
    let image = hoist_testkit::synth::write_docker_archive(&archive, "app:1", &spec)
        .expect("docker archive");
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/archived", registry.host());
    let digest_file = tmp.path().join("digest");
    let from = format!("docker-archive:{}", archive.display());

    // Layers hoist gzips on the way to a registry; the manifest it writes is made Docker's.
    ok(hoist(&cache, &["copy", "-f", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg(&from)
        .arg(format!("docker://{repo}:1")));
    let m = served_v2s2(&cache, &format!("docker://{repo}:1"), &digest_file);
    assert_eq!(m.value().config.digest, image.config_digest);

    // Into a layout the archive's plain tars are kept: Docker's uncompressed layer type.
    let layout_dir = tmp.path().join("layout");
    ok(hoist(&cache, &["copy", "-f", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg(&from)
        .arg(common::arg(&layout_dir, ":1")));
    let layout = Layout::open(&layout_dir).expect("layout");
    let tagged = layout.resolve(Some("1")).expect("tag");
    assert_eq!(tagged.media_type, MediaType::DOCKER_MANIFEST);
    assert_eq!(tagged.digest, digest_in(&digest_file));
    let read = layout.image(Some("1"), None).expect("image");
    let layers = &read.manifest.value().layers;
    assert_eq!(
        layers,
        &image
            .layers
            .iter()
            .map(|l| { Descriptor::new(MediaType::DOCKER_LAYER, l.digest.clone(), l.size) })
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_daemon_pushes_and_exports_as_v2s2() {
    if !require_tool("docker-registry") {
        return;
    }
    let Some(dockerd) = common::daemon_with_image(&[3, 2], "fmt:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/daemon", registry.host());
    let digest_file = tmp.path().join("digest");
    let from_daemon = |args: &[&str]| {
        let mut cmd = hoist(&cache, args);
        cmd.env("DOCKER_HOST", dockerd.docker_host());
        cmd
    };

    // The overlapped daemon push (layers uploaded while the export streams in).
    ok(from_daemon(&["push", "-f", "v2s2", "--digestfile"])
        .arg(&digest_file)
        .arg("fmt:1")
        .arg(format!("{repo}:1")));
    let m = served_v2s2(&cache, &format!("docker://{repo}:1"), &digest_file);
    let v = m.value();
    assert!(!v.layers.is_empty());

    // Again from the export the push cached, this time as OCI.
    ok(from_daemon(&["push", "-f", "oci", "--digestfile"])
        .arg(&digest_file)
        .arg("fmt:1")
        .arg(format!("{repo}:oci")));
    let bytes = served(&cache, &format!("docker://{repo}:oci"));
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    let oci = RawJson::<ImageManifest>::parse(bytes).expect("manifest");
    assert_eq!(oci.value().config.media_type, MediaType::OCI_CONFIG);
    assert_eq!(oci.value().config.digest, v.config.digest);

    // Straight into a layout (hoist export), tagged as v2s2.
    let layout_dir = tmp.path().join("exported");
    let export_cache = tmp.path().join("export-cache");
    let mut export = hoist(&export_cache, &["export", "-f", "v2s2", "--digestfile"]);
    export
        .env("DOCKER_HOST", dockerd.docker_host())
        .arg(&digest_file)
        .arg("fmt:1")
        .arg(&layout_dir);
    ok(&mut export);
    let layout = Layout::open(&layout_dir).expect("layout");
    let tagged = layout.resolve(Some("1")).expect("tag");
    assert_eq!(tagged.media_type, MediaType::DOCKER_MANIFEST);
    assert_eq!(tagged.digest, digest_in(&digest_file));
    let read = layout.image(Some("1"), None).expect("image");
    assert_eq!(
        read.manifest.value().config.media_type,
        MediaType::DOCKER_CONFIG
    );
    for blob in std::iter::once(&read.manifest.value().config).chain(&read.manifest.value().layers)
    {
        layout.verify_blob(blob).expect("blob present and whole");
    }
}
