//! `--all` against skopeo's `--all`, both ways, through a real registry: an index hoist pushes
//! is the one skopeo reads back (same digest, and skopeo copies every image of it), and an
//! index skopeo pushes is the one hoist pulls (same digest, every image whole).

use std::path::Path;
use std::process::Command;

use hoist_oci::{Descriptor, Digest, ImageIndex, Layout};
use hoist_testkit::synth::write_multi_platform_layout;
use hoist_testkit::{Registry, require_tool};
use hoist_tests::Hoist;

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The descriptor `tag` names in the layout at `dir`, and that every image of the index it
/// names is there with all its blobs.
fn layout_index(dir: &Path, tag: &str) -> Descriptor {
    let layout = Layout::open(dir).expect("layout");
    let top = layout.resolve(Some(tag)).expect("tag");
    let index = layout.read_json::<ImageIndex>(&top).expect("index");
    assert_eq!(index.value().manifests.len(), 2);
    for child in &index.value().manifests {
        let image = layout.image_at(child, None).expect("image");
        let m = image.manifest.value();
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            layout.verify_blob(blob).expect("blob whole");
        }
    }
    top
}

#[test]
fn hoist_and_skopeo_copy_each_others_multi_platform_images() {
    if !require_tool("docker-registry") || !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let written = write_multi_platform_layout(&src, "multi").expect("layout");
    let registry = Registry::start().expect("registry");
    let host = registry.host();

    // hoist pushes; skopeo reads the index back byte for byte and copies all of it.
    Hoist::new(&cache)
        .args(["-q", "copy", "--all"])
        .arg(format!("oci:{}:multi", src.display()))
        .arg(format!("docker://{host}/t/by-hoist:v1"))
        .run()
        .success();
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{host}/t/by-hoist:v1"),
    ]);
    assert_eq!(raw, written.index_bytes);
    let by_skopeo = tmp.path().join("skopeo-pulled");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{host}/t/by-hoist:v1"),
        &format!("oci:{}:v1", by_skopeo.display()),
    ]);
    assert_eq!(layout_index(&by_skopeo, "v1").digest, written.index_digest);

    // skopeo pushes; hoist pulls the same index and every image.
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", src.display()),
        &format!("docker://{host}/t/by-skopeo:v1"),
    ]);
    let by_hoist = tmp.path().join("hoist-pulled");
    Hoist::new(&cache)
        .args(["-q", "pull", "--all"])
        .arg(format!("{host}/t/by-skopeo:v1"))
        .arg(&by_hoist)
        .run()
        .success();
    let top = layout_index(&by_hoist, "v1");
    assert_eq!(top.digest, written.index_digest);
    assert_eq!(Digest::sha256_of(&written.index_bytes), top.digest);
}
