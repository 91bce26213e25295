//! `hoist tags`: a repository's tags from a real registry, one per line on stdout.

mod common;

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Registry, require_tool};

use common::text;

#[test]
fn tags_lists_what_was_pushed_and_refuses_what_is_no_repository() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let layout = tmp.path().join("layout");
    write_oci_layout(
        &layout,
        "v1",
        &ImageSpec::uniform(1, 10_000, Compression::Gzip, 3),
    )
    .expect("layout");
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/app", registry.host());
    let hoist = |args: &[&str]| {
        common::isolated(&cache)
            .args(args)
            .output()
            .expect("run hoist")
    };
    // Pushed in an order that is not the listing's.
    for tag in ["v2", "v1", "latest"] {
        let out = hoist(&[
            "-q",
            "push",
            &common::arg(&layout, ":v1"),
            &format!("{repo}:{tag}"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    for name in [repo.clone(), format!("docker://{repo}")] {
        let out = hoist(&["tags", &name]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut listed: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        listed.sort();
        assert_eq!(listed, ["latest", "v1", "v2"], "{name}");
    }

    // A repository the registry does not have: one clear line, exit 1.
    let out = hoist(&["tags", &format!("{}/team/nothing", registry.host())]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(said.contains("listing the tags of"), "{said}");
    assert!(!said.contains('<'), "no HTML: {said}");
    assert!(out.stdout.is_empty());

    // A tag or a digest, or another transport, is a usage error.
    let digest = format!("@sha256:{}", "a".repeat(64));
    for wrong in [
        format!("{repo}:v1"),
        format!("{repo}{digest}"),
        common::arg(&layout, ":v1"),
    ] {
        let out = hoist(&["tags", &wrong]);
        assert_eq!(out.status.code(), Some(2), "{wrong}: {}", text(&out.stderr));
    }
}
