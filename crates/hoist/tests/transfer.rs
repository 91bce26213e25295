//! The `hoist` binary against a real registry, an nginx proxy with a body limit, and a private
//! dockerd, all from the testkit. Missing components print `SKIP:` (and fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hoist_oci::{Compression, Layout};
use hoist_testkit::synth::{ImageSpec, RawLayer, write_oci_layout, write_raw_oci_layout};
use hoist_testkit::{Nginx, Registry, require_tool};

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run hoist")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_events(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn push_through_a_body_limited_proxy_then_pull_and_unpack() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let layout_dir = tmp.path().join("layout");
    // 3 layers of ~1.5 MB each through a proxy refusing bodies over 1 MiB.
    let spec = ImageSpec::uniform(3, 1_500_000, Compression::Gzip, 42);
    let image = write_oci_layout(&layout_dir, "v1", &spec).expect("synthetic layout");
    let registry = Registry::start().expect("registry");
    let proxy = Nginx::builder(registry.addr())
        .max_body_size(1 << 20)
        .start()
        .expect("nginx");
    let target = format!("{}/team/app:v1", proxy.host());

    let out = run(hoist(
        &cache,
        &["--progress", "json", "--chunk-size", "512KiB", "push"],
    )
    .arg(format!("oci:{}:v1", layout_dir.display()))
    .arg(&target));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = json_events(&out);
    let done: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "state" && e["state"] == "done")
        .filter_map(|e| e["id"].as_str())
        .collect();
    for layer in &image.layers {
        assert!(
            done.contains(&layer.digest.to_string().as_str()),
            "{events:?}"
        );
    }

    // Pushing again finds every layer there.
    let out = run(hoist(&cache, &["--progress", "plain", "push"])
        .arg(format!("oci:{}:v1", layout_dir.display()))
        .arg(&target));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).matches("skipped (exists)").count(),
        3,
        "{}",
        text(&out.stderr)
    );

    // Pull back into a layout: same manifest digest, tagged with the reference's tag.
    let pulled = tmp.path().join("pulled");
    let out = run(hoist(&cache, &["-q", "pull"]).arg(&target).arg(&pulled));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = Layout::open(&pulled)
        .expect("layout")
        .image(Some("v1"), None)
        .expect("image");
    assert_eq!(got.descriptor.digest, image.manifest_digest);

    // A blob damaged on disk since (same size, one byte changed) is not trusted by a pull
    // again: it is downloaded anew; the config and the other layers are skipped (the config
    // without a line: it is no layer).
    let layout = Layout::open(&pulled).expect("layout");
    let damaged = &image.layers[1];
    let path = layout.blob_path(&damaged.digest);
    let mut bytes = std::fs::read(&path).expect("blob");
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).expect("damage the blob");
    let out = run(hoist(&cache, &["--progress", "plain", "pull"])
        .arg(&target)
        .arg(&pulled));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).matches("skipped (exists)").count(),
        2,
        "{}",
        text(&out.stderr)
    );
    layout
        .verify_blob(damaged)
        .expect("the damaged blob is whole again");

    // Straight from the registry into a root filesystem.
    let root = tmp.path().join("root");
    let runtime = tmp.path().join("runtime.json");
    let out = run(hoist(&cache, &["-q", "unpack", "--runtime-config"])
        .arg(&runtime)
        .arg(&target)
        .arg(&root));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The same tree (and runtime settings) as unpacking the pulled layout.
    let root2 = tmp.path().join("root2");
    let runtime2 = tmp.path().join("runtime2.json");
    let out = run(hoist(&cache, &["-q", "unpack", "--runtime-config"])
        .arg(&runtime2)
        .arg(format!("oci:{}:v1", pulled.display()))
        .arg(&root2));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let settings = std::fs::read(&runtime).expect("runtime config from the registry");
    assert!(String::from_utf8_lossy(&settings).contains("\"Cmd\""));
    assert_eq!(
        settings,
        std::fs::read(&runtime2).expect("runtime config from the layout")
    );
    let tree = listing(&root);
    assert!(!tree.is_empty());
    assert_eq!(tree, listing(&root2));

    // Same-registry copy mounts instead of moving bytes.
    let out = run(hoist(&cache, &["--progress", "plain", "copy"])
        .arg(format!("docker://{target}"))
        .arg(format!("docker://{}/other/app:v2", proxy.host())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).matches(" mounted").count(),
        3,
        "{}",
        text(&out.stderr)
    );

    // Registry to another registry: blobs stream through, no transit layout in the cache.
    let other = Registry::start().expect("second registry");
    let out = run(hoist(&cache, &["--progress", "plain", "copy"])
        .arg(format!("docker://{target}"))
        .arg(format!("docker://{}/copied/app:v3", other.host())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Announced as the copy it is, not as a push.
    assert!(
        text(&out.stderr).contains(&format!("copy docker://{target} -> docker://")),
        "{}",
        text(&out.stderr)
    );
    let out = run(hoist(&cache, &["inspect", "--raw"])
        .arg(format!("docker://{}/copied/app:v3", other.host())));
    assert_eq!(
        hoist_oci::Digest::sha256_of(&out.stdout),
        image.manifest_digest
    );
    let transit = std::fs::read_dir(cache.join("transit")).map_or(0, Iterator::count);
    assert_eq!(transit, 0, "nothing in transit");

    // A missing image: exit 1, one clear error, no HTML.
    let out = run(hoist(&cache, &["-q", "pull"])
        .arg(format!("{}/no/such:tag", proxy.host()))
        .arg(tmp.path().join("nothing")));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: fetching the manifest"),
        "{stderr}"
    );
    assert!(!stderr.contains('<'), "{stderr}");
}

/// Every regular file under `dir` with its size and a digest of its content, sorted.
fn listing(dir: &Path) -> Vec<(String, u64, hoist_oci::Digest)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64, hoist_oci::Digest)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_type().expect("type").is_dir() {
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let rel = path.strip_prefix(base).expect("under base");
                out.push((
                    rel.display().to_string(),
                    bytes.len() as u64,
                    hoist_oci::Digest::sha256_of(&bytes),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn push_from_the_daemon_compresses_once_and_loads_back() {
    if !require_tool("docker-registry") {
        return;
    }
    let Some(dockerd) = common::daemon_with_image(&[20, 30], "hoist-e2e:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let registry = Registry::start().expect("registry");
    let target = format!("{}/e2e/app:1", registry.host());

    let push = |extra: &[&str]| {
        let mut cmd = hoist(&cache, &["--progress", "json"]);
        cmd.arg("push")
            .args(extra)
            .arg("hoist-e2e:1")
            .arg(&target)
            .env("DOCKER_HOST", dockerd.docker_host());
        run(&mut cmd)
    };
    let digest_file = tmp.path().join("digest");
    let out = push(&["--digestfile", digest_file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --digestfile names the manifest the registry now serves for the tag.
    let served = run(&mut hoist(&cache, &["inspect", "--raw", &target]));
    assert_eq!(
        std::fs::read_to_string(&digest_file).expect("digest file"),
        hoist_oci::Digest::sha256_of(&served.stdout).to_string()
    );
    let first = json_events(&out);
    let compressed = first.iter().filter(|e| e["state"] == "compressing").count();
    assert_eq!(compressed, 3, "base + 2 layers compressed once: {first:?}");
    let exports = std::fs::read_dir(cache.join("exports"))
        .expect("exports")
        .count();
    assert_eq!(exports, 1, "one export, keyed by image ID");

    // The second push compresses nothing and uploads nothing.
    let out = push(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = json_events(&out);
    assert!(
        !second
            .iter()
            .any(|e| e["state"] == "compressing" || e["state"] == "pushing"),
        "{second:?}"
    );
    assert_eq!(second.iter().filter(|e| e["state"] == "skipped").count(), 3);

    // Export into a layout (uses the cached export) and inspect it.
    let exported = tmp.path().join("exported");
    let out = run(hoist(&cache, &["-q", "export", "hoist-e2e:1"])
        .arg(&exported)
        .env("DOCKER_HOST", dockerd.docker_host()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(hoist(&cache, &["inspect"]).arg(format!("oci:{}:1", exported.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("in 3 layers"),
        "{}",
        text(&out.stdout)
    );

    // Back into the daemon under a new name.
    let out = run(hoist(&cache, &["-q", "copy"])
        .arg(format!("docker://{target}"))
        .arg("docker-daemon:hoist-e2e:back")
        .env("DOCKER_HOST", dockerd.docker_host()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = dockerd
        .run_docker(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            "hoist-e2e:back",
        ])
        .expect("inspect");
    assert_eq!(listed.trim(), "3");

    // The cached export damaged on disk: a changed byte fails the copy out of it (never a
    // layout holding it) and the new layout goes; a lost layer makes the entry be exported
    // again, so the copy works.
    let entry = std::fs::read_dir(cache.join("exports"))
        .expect("exports")
        .next()
        .expect("one export")
        .expect("entry")
        .path();
    let entry_layout = Layout::open(&entry).expect("cached layout");
    let layer = entry_layout
        .image(Some("image"), None)
        .expect("cached image")
        .manifest
        .value()
        .layers[1]
        .clone();
    let blob = entry_layout.blob_path(&layer.digest);
    let mut bytes = std::fs::read(&blob).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("damage");
    let copy_to = |dir: &Path| {
        run(hoist(&cache, &["-q", "copy", "docker-daemon:hoist-e2e:1"])
            .arg(format!("oci:{}:t", dir.display()))
            .env("DOCKER_HOST", dockerd.docker_host()))
    };
    let damaged = tmp.path().join("from-damaged");
    let out = copy_to(&damaged);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        !damaged.exists(),
        "the layout the failed copy made is removed"
    );
    std::fs::remove_file(&blob).expect("lose the layer");
    let out = copy_to(&damaged);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Layout::open(&damaged)
        .expect("layout")
        .image(Some("t"), None)
        .expect("image");
}

#[test]
fn a_413_from_the_proxy_is_explained_and_survived() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let layout_dir = tmp.path().join("layout");
    let spec = ImageSpec::uniform(1, 3_000_000, Compression::Gzip, 9);
    write_oci_layout(&layout_dir, "v1", &spec).expect("synthetic layout");
    let registry = Registry::start().expect("registry");
    let proxy = Nginx::builder(registry.addr())
        .max_body_size(1 << 20)
        .start()
        .expect("nginx");
    // Chunks of 4 MiB do not fit through the 1 MiB proxy: hoist must shrink them and say so.
    let out = run(hoist(
        &cache,
        &["--progress", "plain", "--chunk-size", "4MiB", "push"],
    )
    .arg(format!("oci:{}:v1", layout_dir.display()))
    .arg(format!("{}/limited/app:v1", proxy.host())));
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\nnginx error log:\n{}",
        proxy.error_log_tail()
    );
    // Match the note's wording, not a bare "413": the proxy's port (e.g. 127.0.0.1:41305, or
    // :33413) is printed on the `push` line and made this test fail about 1 run in 60.
    let note = stderr
        .lines()
        .find(|l| l.contains("413 Request Entity Too Large"))
        .unwrap_or_else(|| panic!("no 413 note in {stderr}"));
    assert!(note.contains("chunks"), "{note}");
    assert!(!stderr.contains('<'), "no HTML: {stderr}");
}

#[test]
fn a_push_killed_mid_layer_resumes_where_the_registry_stopped() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let layout_dir = tmp.path().join("layout");
    // One incompressible 8 MB layer, pushed in 1 MiB chunks.
    let spec = ImageSpec::uniform(1, 8_000_000, Compression::Gzip, 5);
    let image = write_oci_layout(&layout_dir, "v1", &spec).expect("synthetic layout");
    let layer_size = image.layers[0].size;
    let registry = Registry::start().expect("registry");
    let chunk: u64 = 1 << 20;
    // The 5th chunk hangs, so the process is killed with 4 chunks acknowledged.
    let proxy = common::proxy_stalling_chunk(&registry, 5);
    let target = format!("{}/resume/app:v1", proxy.host());
    let source = format!("oci:{}:v1", layout_dir.display());
    let push = || {
        let mut cmd = hoist(&cache, &["-q", "--chunk-size", "1MiB", "push"]);
        cmd.arg(&source).arg(&target);
        cmd
    };
    let mut child = push().spawn().expect("spawn hoist");
    common::kill_after_chunks(&mut child, &proxy, 4);

    proxy.set_plan(Vec::new());
    proxy.clear_records();
    let out = run(&mut push());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let resent: u64 = proxy
        .records()
        .iter()
        .filter(|r| r.path.contains("/blobs/uploads/"))
        .map(|r| r.request_body_bytes)
        .sum();
    // What is missing of the layer, at most one chunk again, and the small config blob.
    assert!(
        resent <= layer_size - 4 * chunk + chunk + image.config_size,
        "the re-run sent {resent} bytes of a {layer_size}-byte layer with 4 MiB already there"
    );
    assert!(resent >= layer_size - 4 * chunk, "{resent}");
    // And the image is whole.
    let pulled = tmp.path().join("pulled");
    let out = run(hoist(&cache, &["-q", "pull"])
        .arg(format!("{}/resume/app:v1", registry.host()))
        .arg(&pulled));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Layout::open(&pulled)
        .expect("layout")
        .verify_blob(&image.layers[0])
        .expect("layer intact");
}

/// A layer an image lists twice is pushed once, from a layout and between registries: two
/// pushes of one blob at a time would send it twice and race on its one upload state file.
#[test]
fn a_layer_listed_twice_is_pushed_once() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let mut shared = hoist_testkit::rawtar::Tar::new();
    shared.file("etc/hostname", &vec![b'h'; 300_000]);
    let shared = RawLayer::compress(&shared.finish(), Compression::Gzip).expect("gzip");
    let mut app = hoist_testkit::rawtar::Tar::new();
    app.file("app/run", b"#!/bin/sh");
    let app = RawLayer::compress(&app.finish(), Compression::Gzip).expect("gzip");
    let twice = hoist_oci::Digest::sha256_of(&shared.blob);
    write_raw_oci_layout(&source, "v1", &[shared.clone(), app, shared]).expect("layout");
    let registry = Registry::start().expect("registry");
    // Each push of the blob ends with it done.
    let pushes = |out: &Output| {
        json_events(out)
            .iter()
            .filter(|e| e["id"] == twice.to_string().as_str() && e["state"] == "done")
            .count()
    };
    let at = |repo: &str| format!("docker://{}/team/{repo}:1", registry.host());
    let out = run(hoist(&cache, &["--progress", "json", "copy"])
        .arg(common::arg(&source, ":v1"))
        .arg(at("twice")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pushes(&out), 1, "{}", text(&out.stderr));
    let other = Registry::start().expect("second registry");
    let out = run(hoist(&cache, &["--progress", "json", "copy"])
        .arg(at("twice"))
        .arg(format!("docker://{}/team/twice:1", other.host())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pushes(&out), 1, "{}", text(&out.stderr));
}
