//! A push through nginx with a 1 MiB body limit: hoist gets 4 MiB layers through in chunks,
//! skopeo (which sends each blob in one request) is refused with 413 in the same setup.

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Nginx, Registry, find_tool, require_tool};
use hoist_tests::{Hoist, registry_image};
use std::process::Command;

#[test]
fn body_limited_proxy_hoist_succeeds_where_skopeo_gets_413() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    // Two incompressible 4 MiB layers behind a proxy that refuses bodies over 1 MiB.
    let spec = ImageSpec::uniform(2, 4 << 20, Compression::Gzip, 81);
    let image = write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    assert!(image.layers.iter().all(|l| l.size > 4 << 20));
    let registry = Registry::start().expect("registry");
    let proxy = Nginx::builder(registry.addr())
        .max_body_size(1 << 20)
        .start()
        .expect("nginx");

    Hoist::new(&cache)
        .args(["-q", "--chunk-size", "512KiB", "copy"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/limited/app:v1", proxy.host()))
        .run()
        .success();
    let pushed = registry_image(registry.addr(), "limited/app", "v1").expect("pushed image");
    assert_eq!(pushed.manifest_digest, image.manifest_digest);

    // The fact check: skopeo puts each blob in one request, so the proxy refuses it.
    let Some(skopeo) = find_tool("skopeo") else {
        hoist_testkit::skip("skopeo not installed (apt-get install skopeo): 413 comparison");
        return;
    };
    let out = Command::new(skopeo)
        .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/skopeo/app:v1", proxy.host()))
        .output()
        .expect("run skopeo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "skopeo got through: {stderr}");
    assert!(
        stderr.contains("413") || stderr.contains("Request Entity Too Large"),
        "skopeo failed for another reason: {stderr}"
    );
}
