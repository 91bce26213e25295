//! What the end of a run says about the work: "N/M layers" counts the image's layers only (no
//! export, load or archive line), and "moved" counts the bytes this run delivered to the
//! destination, once: not what an earlier run sent before a resume, not a pull into a transit
//! copy before a push, and not nothing for a load, whose archive is one stream. The witnesses
//! are the fault proxy's byte counts and the registry's blob sizes, not hoist's own report.

use std::time::{Duration, Instant};

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{
    Dockerd, FaultAction, FaultProxy, FaultRule, Registry, require_root, require_tool,
};
use hoist_tests::{Hoist, events, registry_image, upload_bytes};

/// The last line of plain progress: `finished in 0:01: 2/2 layers (2.10 MB), 1.05 MB moved ...`.
fn summary(stderr: &str) -> &str {
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("finished in "), "no summary:\n{stderr}");
    last
}

/// The bytes a summary says were moved (`1.05 MB moved`), as hoist rounds them.
fn moved(summary: &str) -> u64 {
    let before = summary
        .split(" moved")
        .next()
        .unwrap_or_else(|| panic!("no `moved` in {summary:?}"));
    let words: Vec<&str> = before.split_whitespace().collect();
    let [.., number, unit] = words.as_slice() else {
        panic!("no amount in {summary:?}")
    };
    let number: f64 = number
        .trim_start_matches('(')
        .parse()
        .unwrap_or_else(|_| panic!("no amount in {summary:?}"));
    let scale = match *unit {
        "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other} in {summary:?}"),
    };
    (number * scale) as u64
}

/// Whether `shown` (three significant digits) is `exact`.
fn about(shown: u64, exact: u64) -> bool {
    shown.abs_diff(exact) <= exact / 100 + 1000
}

/// Start a push of `src` to `repo` through `proxy`, stall it at upload PATCH `patch` and
/// SIGKILL it there: the registry keeps the chunks before the stall, the cache the upload's
/// state.
fn killed_push(hoist: impl Fn() -> Hoist, proxy: &FaultProxy, patch: usize) {
    proxy.clear_records();
    proxy.set_plan(vec![FaultRule::new(
        "PATCH",
        "/blobs/uploads/",
        patch,
        FaultAction::Stall(Duration::from_secs(60)),
    )]);
    let before = proxy.faults_injected();
    let mut child = hoist().args(["-q"]).command().spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.faults_injected() == before {
        assert!(
            Instant::now() < deadline,
            "the push never reached the stall"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoist ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    proxy.set_plan(Vec::new());
    proxy.clear_records();
}

#[test]
fn a_resumed_push_counts_only_the_bytes_it_sent() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start().expect("registry");
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("fault proxy");
    // One upload at a time: PATCH 1 is the config, 2-6 the first layer, 7-11 the second;
    // killed at PATCH 9, the re-run skips the first layer and resumes the second.
    for (repo, progress) in [("resumed/plain", "plain"), ("resumed/json", "json")] {
        let dir = tmp.path().join(progress);
        let src = dir.join("src");
        let spec = ImageSpec::uniform(2, 1 << 20, Compression::Gzip, 900);
        write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
        let push = || {
            Hoist::new(&dir.join("cache"))
                .args(["--chunk-size", "256KiB", "--concurrency", "1"])
                .args(["--progress", progress, "copy"])
                .arg(format!("oci:{}:v1", src.display()))
                .arg(format!("docker://{}/{repo}:v1", proxy.host()))
        };
        killed_push(push, &proxy, 9);
        let out = push().run().success();
        let sent = upload_bytes(&proxy);
        let total: u64 = registry_image(registry.addr(), repo, "v1")
            .expect("pushed image")
            .layers
            .iter()
            .map(|l| l.size)
            .sum();
        assert!(
            sent < total / 2,
            "the re-run did not resume: {sent} of {total}"
        );
        if progress == "plain" {
            let line = summary(&out.stderr);
            assert!(line.contains("2/2 layers"), "{line}");
            assert!(about(moved(line), sent), "{sent} B sent, but: {line}");
            continue;
        }
        let evs = events(&out.stderr);
        let finish = evs.last().expect("events");
        assert_eq!(finish["event"], "finish", "{evs:?}");
        let said = finish["moved"]
            .as_u64()
            .unwrap_or_else(|| panic!("{finish}"));
        // Exact here: the re-run's layer bytes are what went up (the config was there).
        assert_eq!(said, sent, "{finish}");
        // A resumed layer is said to push once, however its resume was reported.
        let states: Vec<(String, String)> = evs
            .iter()
            .filter(|e| e["event"] == "state")
            .map(|e| (e["id"].to_string(), e["state"].to_string()))
            .collect();
        for pair in states.windows(2) {
            assert!(
                pair[0] != pair[1],
                "{:?} said twice in a row:\n{}",
                pair[0],
                out.stderr
            );
        }
        assert!(
            evs.iter().any(|e| e["event"] == "resume"),
            "no resume event:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_recompressing_copy_between_registries_counts_its_push_once() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let spec = ImageSpec::uniform(2, 600_000, Compression::Gzip, 901);
    write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    let registry = Registry::start().expect("registry");
    Hoist::new(&cache)
        .args(["-q", "copy"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/gz/app:v1", registry.host()))
        .run()
        .success();
    // Pulled into a transit layout, recompressed there, pushed: only the push delivers.
    let out = Hoist::new(&cache)
        .args([
            "--progress",
            "plain",
            "copy",
            "--recompress",
            "--compression",
            "zstd",
        ])
        .arg(format!("docker://{}/gz/app:v1", registry.host()))
        .arg(format!("docker://{}/zst/app:v1", registry.host()))
        .run()
        .success();
    let pushed: u64 = registry_image(registry.addr(), "zst/app", "v1")
        .expect("recompressed image")
        .layers
        .iter()
        .map(|l| l.size)
        .sum();
    let line = summary(&out.stderr);
    assert!(line.contains("2/2 layers"), "{line}");
    assert!(about(moved(line), pushed), "{pushed} B pushed, but: {line}");
}

#[test]
fn daemon_loads_and_pushes_count_real_layers_and_the_archive_they_stream() {
    if !require_root() || !require_tool("dockerd") || !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let spec = ImageSpec::uniform(3, 300_000, Compression::Gzip, 902);
    write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    let dockerd = Dockerd::start().expect("dockerd");
    let registry = Registry::start().expect("registry");
    let host = dockerd.docker_host();
    let hoist = || {
        Hoist::new(&cache)
            .args(["--progress", "plain"])
            .env("DOCKER_HOST", &host)
    };

    // oci -> the daemon: one archive streamed into its load (its layers as tars), every byte
    // of it counted.
    let out = hoist()
        .args(["copy", &format!("oci:{}:v1", src.display())])
        .arg("docker-daemon:e2e/summary:1")
        .run()
        .success();
    let line = summary(&out.stderr);
    assert!(!line.contains("layers"), "the load is no layer: {line}");
    let (loaded, files) = (moved(line), spec.payload_bytes());
    assert!(
        loaded >= files && loaded < 2 * files,
        "{files} B of files in the layers, but: {line}"
    );

    // The daemon -> a registry: three layers, not the export's line too; each layer named by
    // its diff_id from the first line to the last, its compressed digest said once.
    let out = hoist()
        .args(["copy", "docker-daemon:e2e/summary:1"])
        .arg(format!("docker://{}/d/summary:1", registry.host()))
        .run()
        .success();
    let line = summary(&out.stderr);
    assert!(line.contains("3/3 layers"), "{line}");
    let pushed = registry_image(registry.addr(), "d/summary", "1").expect("pushed image");
    let pushed_bytes: u64 = pushed.layers.iter().map(|l| l.size).sum();
    assert!(
        about(moved(line), pushed_bytes),
        "{pushed_bytes} B pushed: {line}"
    );
    for layer in &pushed.layers {
        let blob = layer.digest.to_string();
        let named: Vec<&str> = out.stderr.lines().filter(|l| l.contains(&blob)).collect();
        assert_eq!(
            named.len(),
            1,
            "{blob} named more than once:\n{}",
            out.stderr
        );
        assert!(named[0].contains(" compressed -> "), "{}", named[0]);
        let diff_id = named[0].split(' ').next().unwrap_or_default();
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{diff_id} done"))),
            "{diff_id} is not the name its push ends under:\n{}",
            out.stderr
        );
    }
}
