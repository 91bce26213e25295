//! `copy --multi-arch index-only`: an index copied without the images it lists, as skopeo's
//! flag does, for images that are at the destination already (each platform built and pushed
//! on its own, the index assembled last). Against a real registry and OCI layouts: with the
//! images there, the index arrives byte for byte and resolves to them; without them, the copy
//! fails naming the missing images and the way out (`--multi-arch all`), and leaves nothing
//! behind that names them.

use std::path::Path;

use hoist_oci::{Descriptor, Digest, ImageIndex, Layout, MediaType};
use hoist_testkit::synth::{MultiPlatformImage, write_multi_platform_layout};
use hoist_testkit::{Registry, http_request, require_tool};
use hoist_tests::{Hoist, registry_image};

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// The exact bytes the registry at `host` serves for `repo:reference` as an index, or its
/// status when it serves none.
fn served_index(registry: &Registry, repo: &str, reference: &str) -> Result<Vec<u8>, u16> {
    let accept = format!(
        "{}, {}",
        MediaType::OCI_INDEX,
        MediaType::DOCKER_MANIFEST_LIST
    );
    let resp = http_request(
        registry.addr(),
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", &accept)],
        &[],
    )
    .expect("manifest request");
    match resp.status {
        200 => Ok(resp.body),
        status => Err(status),
    }
}

/// The two-platform source layout (index tagged `multi`, images `multi-amd64`, `multi-arm64`).
fn source(dir: &Path) -> MultiPlatformImage {
    write_multi_platform_layout(dir, "multi").expect("two-platform layout")
}

#[test]
fn index_only_pushes_the_index_of_images_already_in_the_registry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let written = source(&src);
    let registry = Registry::start().expect("registry");
    let host = registry.host();
    let hoist = || Hoist::new(&cache).arg("-q");

    // Each platform pushed on its own, as separate builds do.
    for arch in ["amd64", "arm64"] {
        hoist()
            .arg("copy")
            .arg(oci(&src, &format!("multi-{arch}")))
            .arg(format!("docker://{host}/team/app:{arch}"))
            .run()
            .success();
    }
    let digest_file = tmp.path().join("digest");
    hoist()
        .args(["copy", "--multi-arch", "index-only", "--digestfile"])
        .arg(&digest_file)
        .arg(oci(&src, "multi"))
        .arg(format!("docker://{host}/team/app:v1"))
        .run()
        .success();
    // The index, byte for byte, under the tag, and every image it lists resolves.
    let index = served_index(&registry, "team/app", "v1").expect("the index is served");
    assert_eq!(index, written.index_bytes);
    let digest = std::fs::read_to_string(&digest_file).expect("digest file");
    assert_eq!(digest, written.index_digest.to_string());
    for image in &written.images {
        let got = registry_image(
            registry.addr(),
            "team/app",
            &image.manifest_digest.to_string(),
        )
        .expect("a listed image, whole");
        assert_eq!(got.layers, image.layers);
    }
    // A platform picked from the pushed index is the image pushed for it.
    let out = hoist()
        .args(["--platform", "linux/arm64", "digest"])
        .arg(format!("docker://{host}/team/app:v1"))
        .run()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        written.images[1].manifest_digest.to_string()
    );

    // A single image has no index to copy alone: it is copied as it is, as skopeo does.
    hoist()
        .args(["copy", "--multi-arch", "index-only"])
        .arg(oci(&src, "multi-amd64"))
        .arg(format!("docker://{host}/team/one:1"))
        .run()
        .success();
    let one = registry_image(registry.addr(), "team/one", "1").expect("the image");
    assert_eq!(one.manifest_digest, written.images[0].manifest_digest);
}

#[test]
fn index_only_names_the_images_the_registry_is_missing() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let written = source(&src);
    let registry = Registry::start().expect("registry");
    let host = registry.host();
    // Only the amd64 image is there.
    Hoist::new(&cache)
        .args(["-q", "copy"])
        .arg(oci(&src, "multi-amd64"))
        .arg(format!("docker://{host}/team/app:amd64"))
        .run()
        .success();
    let out = Hoist::new(&cache)
        .args(["-q", "copy", "--multi-arch", "index-only"])
        .arg(oci(&src, "multi"))
        .arg(format!("docker://{host}/team/app:v1"))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let (amd64, arm64) = (
        &written.images[0].manifest_digest,
        &written.images[1].manifest_digest,
    );
    for says in [
        arm64.to_string().as_str(),
        "linux/arm64",
        "--multi-arch all",
    ] {
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
    }
    assert!(
        !out.stderr.contains(&amd64.to_string()),
        "the image that is there is not called missing: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(served_index(&registry, "team/app", "v1"), Err(404));

    // --multi-arch all copies what was missing, and the index with it.
    Hoist::new(&cache)
        .args(["-q", "copy", "--multi-arch", "all"])
        .arg(oci(&src, "multi"))
        .arg(format!("docker://{host}/team/app:v1"))
        .run()
        .success();
    assert_eq!(
        served_index(&registry, "team/app", "v1").expect("the index"),
        written.index_bytes
    );
}

/// The descriptor `tag` names in the layout at `dir`.
fn tagged(dir: &Path, tag: &str) -> Descriptor {
    Layout::open(dir)
        .expect("layout")
        .resolve(Some(tag))
        .expect("tag")
}

#[test]
fn index_only_into_a_layout_checks_the_images_are_there() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let written = source(&src);
    let dest = tmp.path().join("dest");
    let hoist = || Hoist::new(&cache).arg("-q");
    hoist()
        .arg("copy")
        .arg(oci(&src, "multi-amd64"))
        .arg(oci(&dest, "amd64"))
        .run()
        .success();
    let before = std::fs::read(dest.join("index.json")).expect("index.json");

    // One image missing: refused before anything is written, naming it.
    let out = hoist()
        .args(["copy", "--multi-arch", "index-only"])
        .arg(oci(&src, "multi"))
        .arg(oci(&dest, "v1"))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let arm64 = &written.images[1].manifest_digest;
    for says in [
        arm64.to_string().as_str(),
        "linux/arm64",
        "--multi-arch all",
    ] {
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
    }
    assert!(
        !out.stderr
            .contains(&written.images[0].manifest_digest.to_string()),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(dest.join("index.json")).expect("index.json"),
        before,
        "the layout is as it was"
    );
    let index_blob = dest.join("blobs/sha256").join(written.index_digest.hex());
    assert!(!index_blob.exists(), "no index blob left behind");
    // A layout that does not exist has none of them, and is not created.
    let nowhere = tmp.path().join("nowhere");
    let out = hoist()
        .args(["copy", "--multi-arch", "index-only"])
        .arg(oci(&src, "multi"))
        .arg(oci(&nowhere, "v1"))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&arm64.to_string()), "{}", out.stderr);
    assert!(!nowhere.exists(), "no empty layout left behind");

    // With both images there, the index is written and tagged, byte for byte.
    hoist()
        .arg("copy")
        .arg(oci(&src, "multi-arm64"))
        .arg(oci(&dest, "arm64"))
        .run()
        .success();
    hoist()
        .args(["copy", "--multi-arch", "index-only"])
        .arg(oci(&src, "multi"))
        .arg(oci(&dest, "v1"))
        .run()
        .success();
    let top = tagged(&dest, "v1");
    assert_eq!(top.digest, written.index_digest);
    let layout = Layout::open(&dest).expect("layout");
    let index = layout.read_json::<ImageIndex>(&top).expect("index");
    assert_eq!(index.bytes(), written.index_bytes.as_slice());
    for child in &index.value().manifests {
        let image = layout.image_at(child, None).expect("a listed image");
        assert_eq!(Digest::sha256_of(image.manifest.bytes()), child.digest);
    }
}
