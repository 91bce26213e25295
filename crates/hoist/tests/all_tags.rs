//! `hoist copy --all-tags` between two real registries, as a mirror uses it: every tag
//! arrives with the source's manifest digest, a second run copies only what changed, and a
//! destination that refuses fails the command naming every tag it did not get. Missing
//! components print `SKIP:` (and fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Registry, TokenServer, require_tool};

use common::text;

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.args(args);
    cmd
}

fn all(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn succeeded(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    out
}

#[test]
fn every_tag_is_mirrored_and_a_second_run_copies_only_what_changed() {
    if !require_tool("docker-registry") {
        return;
    }
    let source = Registry::builder().start().expect("source registry");
    let mirror = Registry::builder().start().expect("mirror registry");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| hoist(&cache, args).output().expect("run hoist");
    // Three images in one layout; tags 1 and 3 name the same one.
    let layout = tmp.path().join("images");
    for (tag, seed) in [("a", 51), ("b", 52), ("c", 53)] {
        let spec = ImageSpec::uniform(2, 30_000, Compression::Gzip, seed);
        write_oci_layout(&layout, tag, &spec).expect("layout");
    }
    let repo = format!("{}/team/app", source.host());
    let push = |image: &str, tag: &str| {
        succeeded(run(&[
            "-q",
            "push",
            &common::arg(&layout, &format!(":{image}")),
            &format!("{repo}:{tag}"),
        ]));
    };
    push("a", "1");
    push("b", "2");
    push("a", "3");
    let mirrored = format!("{}/mirror/app", mirror.host());
    let copy_all_tags = || {
        run(&[
            "copy",
            "--all-tags",
            &format!("docker://{repo}"),
            &format!("docker://{mirrored}"),
        ])
    };
    let digest = |reference: &str| text(&succeeded(run(&["digest", reference])).stdout);

    let out = succeeded(copy_all_tags());
    assert!(
        all(&out).contains("3 tags: 3 copied, 0 already there, 0 failed"),
        "{}",
        all(&out)
    );
    let listed = text(&succeeded(run(&["tags", &mirrored])).stdout);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1", "2", "3"]);
    for tag in ["1", "2", "3"] {
        assert_eq!(
            digest(&format!("{mirrored}:{tag}")),
            digest(&format!("{repo}:{tag}")),
            "tag {tag}"
        );
    }

    // Nothing changed: nothing is copied. Then tag 2 moves and tag 4 appears: those two go.
    let out = succeeded(copy_all_tags());
    assert!(
        all(&out).contains("3 tags: 0 copied, 3 already there"),
        "{}",
        all(&out)
    );
    push("c", "2");
    push("b", "4");
    let out = succeeded(copy_all_tags());
    assert!(
        all(&out).contains("4 tags: 2 copied, 2 already there, 0 failed"),
        "{}",
        all(&out)
    );
    for tag in ["2", "4"] {
        assert_eq!(
            digest(&format!("{mirrored}:{tag}")),
            digest(&format!("{repo}:{tag}"))
        );
    }

    // Recompressed to zstd, the mirror's manifests are not the source's; a second run writes
    // the manifests each tag already names, and says so instead of "copied".
    let zstd = format!("{}/zstd/app", mirror.host());
    let recompressed = || {
        succeeded(run(&[
            "copy",
            "--all-tags",
            "--dest-compress-format",
            "zstd",
            &format!("docker://{repo}"),
            &format!("docker://{zstd}"),
        ]))
    };
    let out = recompressed();
    assert!(
        all(&out).contains("4 tags: 4 copied, 0 already there, 0 failed"),
        "{}",
        all(&out)
    );
    let out = recompressed();
    assert!(
        all(&out).contains("4 tags: 0 copied, 4 already there, 0 failed"),
        "{}",
        all(&out)
    );

    // A destination that refuses: every tag is attempted, and each one is named.
    let locked = Registry::builder()
        .htpasswd("deploy", "Mirror-pw-2b81e4")
        .start()
        .expect("locked registry");
    let out = run(&[
        "copy",
        "--all-tags",
        &format!("docker://{repo}"),
        &format!("docker://{}/mirror/app", locked.host()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("4 of 4 tags failed to copy: 1, 2, 3, 4"),
        "{}",
        all(&out)
    );

    // Filters: only the tags kept are copied, and a filter that keeps none is an error.
    let filtered = format!("{}/filtered/app", mirror.host());
    let out = succeeded(run(&[
        "copy",
        "--all-tags",
        "--include-tags",
        "[1-3]",
        "--exclude-tags",
        "2",
        &format!("docker://{repo}"),
        &format!("docker://{filtered}"),
    ]));
    assert!(
        all(&out).contains("2 of 4 tags kept by --include-tags '[1-3]' --exclude-tags '2'"),
        "{}",
        all(&out)
    );
    assert!(all(&out).contains("2 tags: 2 copied"), "{}", all(&out));
    let listed = text(&succeeded(run(&["tags", &filtered])).stdout);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1", "3"]);
    // One tag is said as one.
    let out = succeeded(run(&[
        "copy",
        "--all-tags",
        "--include-tags",
        "2",
        &format!("docker://{repo}"),
        &format!("docker://{filtered}"),
    ]));
    assert!(
        all(&out).contains("1 tag: 1 copied, 0 already there, 0 failed"),
        "{}",
        all(&out)
    );
    let out = run(&[
        "copy",
        "--all-tags",
        "--include-tags",
        "1.*",
        "--exclude-tags",
        "1",
        &format!("docker://{repo}"),
        &format!("docker://{filtered}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(all(&out).contains("none of the 4 tags"), "{}", all(&out));

    // A repository without tags is an error, not a silent success.
    let out = run(&[
        "copy",
        "--all-tags",
        &format!("docker://{}/team/none", source.host()),
        &format!("docker://{mirrored}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
}

#[test]
fn every_tag_crosses_an_air_gap_through_a_layout() {
    if !require_tool("docker-registry") {
        return;
    }
    let source = Registry::builder().start().expect("source registry");
    let inside = Registry::builder()
        .start()
        .expect("registry behind the gap");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| hoist(&cache, args).output().expect("run hoist");
    let images = tmp.path().join("images");
    for (tag, seed) in [("a", 61), ("b", 62)] {
        let spec = ImageSpec::uniform(2, 30_000, Compression::Zstd, seed);
        write_oci_layout(&images, tag, &spec).expect("layout");
    }
    let repo = format!("{}/team/app", source.host());
    for (image, tag) in [("a", "1.0"), ("b", "2.0")] {
        succeeded(run(&[
            "-q",
            "push",
            &common::arg(&images, &format!(":{image}")),
            &format!("{repo}:{tag}"),
        ]));
    }
    let carried = tmp.path().join("carried");
    let into_layout = || {
        run(&[
            "copy",
            "--all-tags",
            &format!("docker://{repo}"),
            &common::arg(&carried, ""),
        ])
    };
    let out = succeeded(into_layout());
    assert!(all(&out).contains("2 tags: 2 copied"), "{}", all(&out));
    let layout = hoist_oci::Layout::open(&carried).expect("a layout");
    let mut tags = layout.tags().expect("tags");
    tags.sort_unstable();
    assert_eq!(tags, ["1.0", "2.0"]);
    let digest = |reference: &str| text(&succeeded(run(&["digest", reference])).stdout);
    for tag in ["1.0", "2.0"] {
        assert_eq!(
            digest(&common::arg(&carried, &format!(":{tag}"))),
            digest(&format!("{repo}:{tag}"))
        );
    }
    let out = succeeded(into_layout());
    assert!(
        all(&out).contains("2 tags: 0 copied, 2 already there"),
        "{}",
        all(&out)
    );

    // Out of the layout on the other side.
    let mirrored = format!("{}/mirror/app", inside.host());
    let out = succeeded(run(&[
        "copy",
        "--all-tags",
        &common::arg(&carried, ""),
        &format!("docker://{mirrored}"),
    ]));
    assert!(all(&out).contains("2 tags: 2 copied"), "{}", all(&out));
    for tag in ["1.0", "2.0"] {
        assert_eq!(
            digest(&format!("{mirrored}:{tag}")),
            digest(&format!("{repo}:{tag}"))
        );
    }
}

#[test]
fn a_mirror_of_many_tags_asks_the_token_server_once_per_scope() {
    if !require_tool("docker-registry") {
        return;
    }
    let (user, password) = ("mirror", "Mirror-token-pw-51c0");
    let tokens = TokenServer::builder()
        .user(user, password)
        .grant(user, "team/*", &["pull", "push"])
        .grant(user, "mirror/*", &["pull", "push"])
        .start()
        .expect("token server");
    let registry = Registry::builder()
        .token_auth(&tokens.auth())
        .start()
        .expect("registry");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let creds = format!("{user}:{password}");
    let run = |args: &[&str]| {
        let mut cmd = hoist(&cache, &["--creds", &creds]);
        cmd.args(args);
        cmd.output().expect("run hoist")
    };
    let layout = tmp.path().join("images");
    let spec = ImageSpec::uniform(1, 20_000, Compression::Gzip, 71);
    write_oci_layout(&layout, "a", &spec).expect("layout");
    let repo = format!("{}/team/app", registry.host());
    let tags = ["1", "2", "3", "4", "5", "6", "7", "8"];
    for tag in tags {
        succeeded(run(&[
            "-q",
            "push",
            &common::arg(&layout, ":a"),
            &format!("{repo}:{tag}"),
        ]));
    }
    let before = tokens.scopes();
    let out = succeeded(run(&[
        "copy",
        "--all-tags",
        &format!("docker://{repo}"),
        &format!("docker://{}/mirror/app", registry.host()),
    ]));
    assert!(all(&out).contains("8 tags: 8 copied"), "{}", all(&out));
    // Eight tags, one client: a token per set of scopes (listing, reading, pushing, mounting),
    // reused for every tag. A client per tag fetched eight or more for each scope.
    let after = tokens.scopes();
    for (scope, issued) in &after {
        let new = issued - before.get(scope).copied().unwrap_or(0);
        // The mount's token names both repositories, so it counts for two scopes.
        assert!(
            new <= 2,
            "{new} tokens for {scope}: {before:?} -> {after:?}"
        );
    }
    assert!(
        after.keys().any(|scope| scope.contains("mirror/app")),
        "the mirror's scope was never asked for: {after:?}"
    );
}
