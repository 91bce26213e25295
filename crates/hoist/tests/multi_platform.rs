//! `--all`: a two-platform image copied whole between OCI layouts and real registries (two
//! registries from the testkit, so both the mount and the streaming paths run). Each copy must
//! keep the index byte for byte (same digest), bring every image it lists with verified blobs,
//! and name the index only once its images are there. Missing components print `SKIP:` (and
//! fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hoist_oci::{Descriptor, Digest, ImageIndex, Layout, RawJson};
use hoist_testkit::synth::{SynthImage, write_multi_platform_layout};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, http_request, require_tool};

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.arg("-q").args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run hoist")
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The testkit's two-platform layout at `dir` (index tagged `multi`; linux/amd64, then
/// linux/arm64), with the index parsed.
fn two_platform_layout(dir: &Path) -> (RawJson<ImageIndex>, Vec<SynthImage>) {
    let written = write_multi_platform_layout(dir, "multi").expect("two-platform layout");
    let index = RawJson::<ImageIndex>::parse(written.index_bytes).expect("index");
    assert_eq!(index.digest(), &written.index_digest);
    (index, written.images)
}

/// Assert the layout at `dir` names the index `index` as `tag`, and holds every image it lists
/// with every blob verified.
fn assert_layout_has_all(
    dir: &Path,
    tag: &str,
    index: &RawJson<ImageIndex>,
    images: &[SynthImage],
) {
    let layout = Layout::open(dir).expect("destination layout");
    let top = layout.resolve(Some(tag)).expect("tag");
    assert_eq!(&top.digest, index.digest(), "the index keeps its digest");
    assert!(top.media_type.is_index());
    let stored = layout.read_json::<ImageIndex>(&top).expect("stored index");
    assert_eq!(stored.bytes(), index.bytes());
    for (child, synth) in index.value().manifests.iter().zip(images) {
        let image = layout.image_at(child, None).expect("child image");
        assert_eq!(image.descriptor.digest, synth.manifest_digest);
        let m = image.manifest.value();
        assert_eq!(m.layers, synth.layers);
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            layout.verify_blob(blob).expect("blob present and whole");
        }
    }
}

/// The exact bytes a registry serves for `reference` (through `hoist inspect --raw`).
fn served(cache: &Path, reference: &str) -> Vec<u8> {
    ok(hoist(cache, &["inspect", "--raw"]).arg(reference)).stdout
}

/// Assert `repo` (HOST/REPO) serves the index under `tag` and each image by digest.
fn assert_registry_has_all(cache: &Path, repo: &str, tag: &str, index: &RawJson<ImageIndex>) {
    assert_eq!(served(cache, &format!("{repo}:{tag}")), index.bytes());
    for child in &index.value().manifests {
        let bytes = served(cache, &format!("{repo}@{}", child.digest));
        assert_eq!(Digest::sha256_of(&bytes), child.digest);
    }
}

/// One test's world: a temp dir holding the hoist cache and the two-platform source layout
/// (`source`, index tagged `multi`), and a registry.
struct World {
    tmp: tempfile::TempDir,
    cache: std::path::PathBuf,
    source: std::path::PathBuf,
    index: RawJson<ImageIndex>,
    images: Vec<SynthImage>,
    registry: Registry,
}

fn world() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let (index, images) = two_platform_layout(&source);
    World {
        registry: Registry::start().expect("registry"),
        tmp,
        cache,
        source,
        index,
        images,
    }
}

#[test]
fn all_platforms_travel_between_layouts_and_registries_with_the_index_intact() {
    if !require_tool("docker-registry") {
        return;
    }
    let World {
        tmp,
        cache,
        source,
        index,
        images,
        registry,
    } = world();
    let other = Registry::start().expect("second registry");
    let repo = format!("{}/team/multi", registry.host());

    // Layout -> registry.
    ok(hoist(&cache, &["copy", "--all"])
        .arg(format!("oci:{}:multi", source.display()))
        .arg(format!("docker://{repo}:v1")));
    assert_registry_has_all(&cache, &repo, "v1", &index);
    // inspect names the index and its platforms, on both sides.
    for source in [
        format!("docker://{repo}:v1"),
        format!("oci:{}:multi", source.display()),
    ] {
        let shown = String::from_utf8_lossy(&ok(hoist(&cache, &["inspect"]).arg(&source)).stdout)
            .into_owned();
        assert!(
            shown.contains(&format!("Index:        {}", index.digest())),
            "{shown}"
        );
        assert!(
            shown.contains("Platforms:    linux/amd64, linux/arm64"),
            "{shown}"
        );
    }

    // Registry -> layout (pull), tagged with the reference's tag.
    let pulled = tmp.path().join("pulled");
    ok(hoist(&cache, &["pull", "--all"])
        .arg(format!("{repo}:v1"))
        .arg(&pulled));
    assert_layout_has_all(&pulled, "v1", &index, &images);

    // Layout -> layout keeps the source's tag.
    let copied = tmp.path().join("copied");
    ok(hoist(&cache, &["copy", "--all"])
        .arg(format!("oci:{}:v1", pulled.display()))
        .arg(format!("oci:{}", copied.display())));
    assert_layout_has_all(&copied, "v1", &index, &images);

    // Within one registry (blobs mounted) and into another (blobs streamed through).
    let mounted = format!("{}/elsewhere/multi", registry.host());
    ok(hoist(&cache, &["copy", "--all"])
        .arg(format!("docker://{repo}:v1"))
        .arg(format!("docker://{mounted}:v2")));
    assert_registry_has_all(&cache, &mounted, "v2", &index);
    let streamed = format!("{}/team/multi", other.host());
    ok(hoist(&cache, &["push", "--all"])
        .arg(format!("docker://{repo}:v1"))
        .arg(format!("{streamed}:v3")));
    assert_registry_has_all(&cache, &streamed, "v3", &index);

    // Without --all a copy takes one platform (here the one asked for), not the index.
    let single = tmp.path().join("single");
    ok(hoist(&cache, &["--platform", "linux/arm64", "pull"])
        .arg(format!("{streamed}:v3"))
        .arg(&single));
    let top = Layout::open(&single)
        .expect("layout")
        .resolve(Some("v3"))
        .expect("tag");
    assert_eq!(top.digest, images[1].manifest_digest);

    // A single image with --all is copied as without it.
    ok(hoist(&cache, &["copy", "--all"])
        .arg(format!("oci:{}:multi-amd64", source.display()))
        .arg(format!("docker://{repo}:amd")));
    assert_eq!(
        Digest::sha256_of(&served(&cache, &format!("{repo}:amd"))),
        images[0].manifest_digest
    );
}

#[test]
fn a_missing_image_fails_the_copy_before_the_index_is_named() {
    if !require_tool("docker-registry") {
        return;
    }
    let World {
        tmp,
        cache,
        source,
        index: _,
        images,
        registry,
    } = world();
    // The amd64 image's last layer is gone from the source: the index's first image fails.
    let lost: &Descriptor = images[0].layers.last().expect("a layer");
    std::fs::remove_file(
        Layout::open(&source)
            .expect("layout")
            .blob_path(&lost.digest),
    )
    .expect("remove a layer");
    let repo = format!("{}/team/multi", registry.host());

    let out = run(hoist(&cache, &["copy", "--all"])
        .arg(format!("oci:{}:multi", source.display()))
        .arg(format!("docker://{repo}:v1")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("linux/amd64"),
        "names the platform: {stderr}"
    );
    // The other image was still copied whole: a rerun need not send it again.
    assert_eq!(
        Digest::sha256_of(&served(
            &cache,
            &format!("{repo}@{}", images[1].manifest_digest)
        )),
        images[1].manifest_digest
    );
    // The tag was never pushed: a reader never sees an index whose image is missing.
    let probe = run(hoist(&cache, &["inspect", "--raw"]).arg(format!("{repo}:v1")));
    assert_ne!(probe.status.code(), Some(0), "the index was pushed anyway");

    let dest = tmp.path().join("dest");
    let out = run(hoist(&cache, &["copy", "--all"])
        .arg(format!("oci:{}:multi", source.display()))
        .arg(format!("oci:{}:v1", dest.display())));
    assert_eq!(out.status.code(), Some(1));
    if let Ok(layout) = Layout::open(&dest) {
        assert!(
            layout.resolve(Some("v1")).is_err(),
            "the layout names the index"
        );
    }
}

#[test]
fn the_images_of_an_index_are_copied_side_by_side() {
    if !require_tool("docker-registry") {
        return;
    }
    // Kept whole: its temp dir lives as long as the test.
    let w = world();
    // Completing the upload of the amd64 image's first layer hangs a while.
    let held = &w.images[0].layers[0].digest;
    let proxy = FaultProxy::start(
        w.registry.addr(),
        vec![FaultRule::new(
            "PUT",
            held.hex(),
            1,
            FaultAction::Stall(Duration::from_secs(15)),
        )],
    )
    .expect("fault proxy");
    let mut child = hoist(&w.cache, &["copy", "--all"])
        .arg(format!("oci:{}:multi", w.source.display()))
        .arg(format!("docker://{}/team/multi:v1", proxy.host()))
        .spawn()
        .expect("spawn hoist");
    let present = |path: &str| {
        let accept = [(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )];
        http_request(w.registry.addr(), "HEAD", path, &accept, &[])
            .expect("ask the registry")
            .status
            == 200
    };
    let arm64 = format!("/v2/team/multi/manifests/{}", w.images[1].manifest_digest);
    let held_blob = format!("/v2/team/multi/blobs/{held}");
    // The arm64 image lands while the amd64 one still waits for its layer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !present(&arm64) {
        assert!(
            child.try_wait().expect("poll hoist").is_none(),
            "hoist ended before the arm64 image was in the registry"
        );
        assert!(Instant::now() < deadline, "the arm64 image never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !present(&held_blob),
        "the arm64 image was copied only after the amd64 one: one after another"
    );
    let status = child.wait().expect("wait for hoist");
    assert!(status.success(), "{status:?}");
    assert!(present(&held_blob));
    assert_registry_has_all(
        &w.cache,
        &format!("{}/team/multi", w.registry.host()),
        "v1",
        &w.index,
    );
}

#[test]
fn an_index_listing_one_image_many_times_copies_it_once() {
    if !require_tool("docker-registry") {
        return;
    }
    let w = world();
    // A hostile index names the amd64 image 500 times (an 8 MiB index can name one 40,000
    // times): each listing must not cost another copy, and a rehash of its blobs.
    let mut value = w.index.value().clone();
    let first = value.manifests[0].clone();
    value.manifests = std::iter::repeat_n(first.clone(), 500)
        .chain(value.manifests[1..].iter().cloned())
        .collect();
    let index = RawJson::from_value(value).expect("index");
    let layout = Layout::open(&w.source).expect("source layout");
    layout.write_json(&index).expect("write the index");
    let descriptor = index.descriptor(hoist_oci::MediaType::OCI_INDEX);
    layout.set_tag("dup", &descriptor).expect("tag it");
    let proxy = FaultProxy::start(w.registry.addr(), Vec::new()).expect("proxy");
    ok(hoist(&w.cache, &["copy", "--all"])
        .arg(format!("oci:{}:dup", w.source.display()))
        .arg(format!("docker://{}/team/dup:v1", proxy.host())));
    let puts = |digest: &Digest| {
        proxy
            .records()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/manifests/{digest}")))
            .count()
    };
    assert_eq!(
        puts(&first.digest),
        1,
        "the repeated image was pushed more than once"
    );
    assert_eq!(puts(&w.images[1].manifest_digest), 1);
    let served = served(&w.cache, &format!("{}/team/dup:v1", w.registry.host()));
    assert_eq!(served, index.bytes(), "the index travels byte for byte");
}

#[test]
fn all_is_refused_where_one_image_goes_or_with_a_platform() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    for (args, says) in [
        (
            vec!["copy", "--all", "oci:/nowhere:multi", "rootfs:/tmp/never"],
            "holds one image",
        ),
        (
            vec![
                "copy",
                "--all",
                "oci:/nowhere:multi",
                "docker-archive:/tmp/never.tar",
            ],
            "holds one image",
        ),
        (
            vec![
                "--platform",
                "linux/arm64",
                "pull",
                "--all",
                "reg.example/a:1",
                "/tmp/never",
            ],
            "--platform",
        ),
    ] {
        let out = run(&mut hoist(&cache, &args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
