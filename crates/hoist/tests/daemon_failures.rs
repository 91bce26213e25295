//! Failed daemon exports against a private dockerd leave nothing of theirs behind, and nothing
//! of anyone else's gone: no `.partial-*` staging directory in the cache after a push that
//! failed while the export still streamed, and no layout deleted from under another hoist
//! exporting into the same new directory; and a name re-tagged mid-export never gets another
//! image exported (or cached) as the one inspected. Missing components print `SKIP:` (and fail
//! under `CI=true`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_oci::Layout;
use hoist_testkit::{AfterGate, Dockerd, GatedRelay};

fn hoist(cache: &Path, docker_host: &str, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.env("DOCKER_HOST", docker_host).args(args);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn a_push_failing_while_the_export_streams_leaves_no_staged_export() {
    // Many small layers: while the first one's push fails, later ones are still streaming in
    // and being committed (fsync, rename) into the staged export on threads of their own.
    let Some(dockerd) = common::daemon_with_image(&[3; 24], "hoist-leak:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = format!("127.0.0.1:{}/leak/app:1", closed_port());
    for round in 0..4 {
        let cache = tmp.path().join(format!("cache-{round}"));
        let out = hoist(
            &cache,
            &dockerd.docker_host(),
            &["-q", "--retries", "0", "push", "hoist-leak:1", &target],
        )
        .output()
        .expect("run hoist");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let exports = cache.join("exports");
        let left = names_in(&exports);
        assert!(
            left.iter().all(|n| !n.contains(".partial-")),
            "round {round}: a staged export was left behind: {left:?} ({})",
            text(&out.stderr)
        );
        // Nothing was cached either: the export never completed.
        assert!(left.is_empty(), "round {round}: {left:?}");
    }
}

/// A relay holding the answer to `GET /images/get` from its first byte until opened, then
/// cutting it (`AfterGate::Cut`) or passing it on.
fn held(dockerd: &Dockerd, after: AfterGate) -> GatedRelay {
    GatedRelay::start(dockerd.socket_path(), "/images/get", 0, after)
}

/// Wait until `relay` holds an export's answer.
fn wait_held(relay: &GatedRelay) {
    assert!(
        relay.wait_held(Duration::from_secs(60)),
        "no export reached the relay"
    );
}

/// The entries of a layout's `blobs/` other than the algorithm directories: temp files.
fn temp_files(layout: &Path) -> Vec<String> {
    names_in(&layout.join("blobs"))
        .into_iter()
        .filter(|n| n != "sha256")
        .collect()
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist")
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().expect("wait for hoist");
    (out.status.code(), text(&out.stderr))
}

/// The image tagged `tag` in the layout at `dir`, checked whole.
fn assert_whole(dir: &Path, tag: &str, diff_ids: usize) {
    let layout = Layout::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let image = layout
        .image(Some(tag), None)
        .unwrap_or_else(|e| panic!("tag {tag}: {e}"));
    assert_eq!(image.config.value().rootfs.diff_ids.len(), diff_ids);
    for layer in &image.manifest.value().layers {
        layout.verify_blob(layer).expect("layer verifies");
    }
    assert!(temp_files(dir).is_empty(), "{:?}", temp_files(dir));
}

#[test]
fn a_failed_export_never_deletes_a_layout_another_hoist_is_using() {
    let Some(dockerd) = common::daemon_with_image(&[5, 5], "hoist-race:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let export = |host: &str, dir: &Path, tag: &str| {
        let mut cmd = hoist(&cache, host, &["-q", "copy", "docker-daemon:hoist-race:1"]);
        cmd.arg(format!("oci:{}:{tag}", dir.display()));
        cmd
    };

    // A creates the new layout, then waits for the daemon; B exports into it and finishes;
    // then A's export fails. A made the directory, but B's tagged image is in it now.
    let dir: PathBuf = tmp.path().join("shared");
    let cut = held(&dockerd, AfterGate::Cut);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    wait_held(&cut);
    assert!(dir.join("oci-layout").exists(), "A made the layout first");
    let (code, stderr) = finish(spawn(&mut export(&dockerd.docker_host(), &dir, "b")));
    assert_eq!(code, Some(0), "B: {stderr}");
    cut.open();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert_whole(&dir, "b", 3);

    // Now B is still at work (its export held) when A fails: B's layout survives and B
    // finishes into it.
    let dir = tmp.path().join("racing");
    let cut = held(&dockerd, AfterGate::Cut);
    let slow = held(&dockerd, AfterGate::Pass);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    wait_held(&cut);
    let second = spawn(&mut export(&slow.docker_host(), &dir, "b"));
    wait_held(&slow);
    cut.open();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(
        dir.join("oci-layout").exists(),
        "A removed the layout B is exporting into"
    );
    slow.open();
    let (code, stderr) = finish(second);
    assert_eq!(code, Some(0), "B: {stderr}");
    assert_whole(&dir, "b", 3);

    // Alone, a failed export still removes the directory it created.
    let dir = tmp.path().join("alone");
    let cut = held(&dockerd, AfterGate::Cut);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    wait_held(&cut);
    let started = Instant::now();
    cut.open();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!dir.exists(), "{:?}", names_in(&dir));
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A name re-tagged between hoist's inspect and its export (a build finishing next to a push)
/// to an image with the same layers and another config: what is exported, and cached under the
/// inspected ID, is still the inspected image, never the newcomer.
#[test]
fn a_name_retagged_during_the_export_still_exports_the_inspected_image() {
    let Some(dockerd) = common::daemon_with_image(&[4], "hoist-retag:a") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // The same layers, another config: a LABEL adds none.
    let mut build = dockerd.docker();
    build
        .args(["build", "-q", "-t", "hoist-retag:b", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = build.spawn().expect("docker build");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"FROM hoist-retag:a\nLABEL retagged=yes\n",
    )
    .expect("dockerfile");
    drop(child.stdin.take());
    assert!(child.wait().expect("build").success());
    let id = |tag: &str| {
        dockerd
            .run_docker(&["inspect", "-f", "{{.Id}}", tag])
            .expect("inspect")
    };
    let (a, b) = (id("hoist-retag:a"), id("hoist-retag:b"));
    assert_ne!(a, b);

    // Into a layout (straight) and into an archive (through the export cache).
    let dir = tmp.path().join("layout");
    let archive = tmp.path().join("app.tar");
    let cache = tmp.path().join("cache");
    for destination in [
        format!("oci:{}:x", dir.display()),
        format!("docker-archive:{}", archive.display()),
    ] {
        dockerd
            .run_docker(&["tag", "hoist-retag:a", "hoist-retag:name"])
            .expect("tag");
        let relay = GatedRelay::start(dockerd.socket_path(), "/images/get", 0, AfterGate::Request);
        let mut cmd = hoist(
            &cache,
            &relay.docker_host(),
            &["-q", "copy", "docker-daemon:hoist-retag:name", &destination],
        );
        let child = spawn(&mut cmd);
        wait_held(&relay);
        dockerd
            .run_docker(&["tag", "hoist-retag:b", "hoist-retag:name"])
            .expect("re-tag");
        relay.open();
        let (code, stderr) = finish(child);
        assert_eq!(code, Some(0), "{destination}: {stderr}");
    }
    let image = Layout::open(&dir)
        .expect("layout")
        .image(Some("x"), None)
        .expect("image");
    assert_eq!(image.manifest.value().config.digest.to_string(), a);
    // The archive (written from a transit export) holds A's config too.
    let back = tmp.path().join("back");
    let out = hoist(
        &cache,
        &dockerd.docker_host(),
        &[
            "-q",
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:y", back.display()),
        ],
    )
    .output()
    .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let image = Layout::open(&back)
        .expect("layout")
        .image(Some("y"), None)
        .expect("image");
    assert_eq!(image.manifest.value().config.digest.to_string(), a);
    // A one-off copy caches nothing: only a push keeps its export.
    assert!(names_in(&cache.join("exports")).is_empty());
    assert!(names_in(&cache.join("transit")).is_empty());
}

/// Ctrl-C while the daemon's export streams into a new layout (or a transit one, for an
/// archive): the export stops at once and the layout hoist created goes, well within the
/// interrupt's grace, instead of the export streaming on for the whole grace.
#[test]
fn an_interrupted_export_stops_at_once_and_removes_what_it_made() {
    let Some(dockerd) = common::daemon_with_image(&[5, 5], "hoist-sigint:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let dir = tmp.path().join("layout");
    let archive = tmp.path().join("app.tar");
    for destination in [
        format!("oci:{}:x", dir.display()),
        format!("docker-archive:{}", archive.display()),
    ] {
        // The answer is held after its first bytes: the export is under way and waiting.
        let relay = GatedRelay::start(dockerd.socket_path(), "/images/get", 1, AfterGate::Pass);
        let child = spawn(&mut hoist(
            &cache,
            &relay.docker_host(),
            &["-q", "copy", "docker-daemon:hoist-sigint:1", &destination],
        ));
        wait_held(&relay);
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let (code, stderr) = finish(child);
        let took = started.elapsed();
        relay.open();
        assert_eq!(code, Some(130), "{destination}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(
            took < Duration::from_secs(5),
            "{destination}: took {took:?} (the grace is 10 s)"
        );
        assert!(!dir.exists(), "{:?}", names_in(&dir));
        assert!(!archive.exists());
        assert!(names_in(&cache.join("transit")).is_empty());
        assert!(names_in(&cache.join("exports")).is_empty());
    }
}

/// `--daemon-host` names the daemon over `DOCKER_HOST`, and `--daemon-stall-timeout` fails an
/// export whose stream stops, in seconds instead of the default five minutes, leaving nothing.
#[test]
fn an_export_that_stalls_fails_after_the_stall_timeout_given() {
    let Some(dockerd) = common::daemon_with_image(&[5, 5], "hoist-stall:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let dir = tmp.path().join("layout");
    // The answer (32 KB) is held after its first 4 KiB, and not let go while hoist waits.
    let relay = GatedRelay::start(dockerd.socket_path(), "/images/get", 4096, AfterGate::Pass);
    let nowhere = format!("unix://{}", tmp.path().join("no-daemon.sock").display());
    let started = Instant::now();
    let child = spawn(&mut hoist(
        &cache,
        &nowhere,
        &[
            "-q",
            "--daemon-host",
            &relay.docker_host(),
            "--daemon-stall-timeout",
            "2",
            "copy",
            "docker-daemon:hoist-stall:1",
            &format!("oci:{}:x", dir.display()),
        ],
    ));
    wait_held(&relay);
    let (code, stderr) = finish(child);
    let took = started.elapsed();
    relay.open();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("stopped sending the export") && stderr.contains("2s without data"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(!dir.exists(), "{:?}", names_in(&dir));
    assert!(names_in(&cache.join("exports")).is_empty());
}
