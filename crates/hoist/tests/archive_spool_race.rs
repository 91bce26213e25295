//! Two hoists spooling docker archives into the same new `oci:DIR`: the one that fails must
//! not delete the layout the other has finished or is still writing, though it created it.
//! (It did, by deciding from `dir.exists()` that it had created the layout and then removing
//! the directory.) Each hoist reads its archive from a pipe the test holds, so the order of
//! events is fixed. The same holds for a pull into that directory: it downloads into
//! `blobs/sha256/`, where a failing spool did not look, so the pull marks the layout too.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_oci::{Compression, Layout};
use hoist_testkit::synth::{ImageSpec, write_docker_archive, write_oci_layout};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, require_tool};

fn hoist(cache: &Path) -> Command {
    let mut cmd = common::clean();
    cmd.arg("--cache-dir").arg(cache).arg("-q");
    cmd
}

/// `hoist copy docker-archive:- oci:DIR:TAG`, its archive to come through the returned pipe.
fn spool_from_pipe(cache: &Path, dir: &Path, tag: &str) -> (Child, ChildStdin) {
    let mut child = hoist(cache)
        .args(["copy", "docker-archive:-"])
        .arg(format!("oci:{}:{tag}", dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    let stdin = child.stdin.take().expect("stdin");
    (child, stdin)
}

/// Send `bytes` down the pipe and close it; then wait for hoist: its exit code and stderr.
fn feed_and_finish(child: Child, mut stdin: ChildStdin, bytes: &[u8]) -> (Option<i32>, String) {
    stdin.write_all(bytes).expect("feed the archive");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for hoist");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The temp files in the layout's `blobs/`: claims' marks and blobs being written.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("blobs"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Wait (at most a minute) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The image tagged `tag` in the layout at `dir` is whole, the only one there, and no temp
/// file is left.
fn assert_only_whole(dir: &Path, tag: &str, layers: usize) {
    let layout = Layout::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(layout.tags().expect("tags"), [tag]);
    let image = layout.image(Some(tag), None).expect("image");
    assert_eq!(image.manifest.value().layers.len(), layers);
    for layer in &image.manifest.value().layers {
        layout.verify_blob(layer).expect("layer verifies");
    }
    assert!(temp_files(dir).is_empty(), "{:?}", temp_files(dir));
}

/// A valid archive and its first half (a truncated archive: spooling it fails).
fn archives(tmp: &Path) -> (Vec<u8>, Vec<u8>) {
    let path = tmp.join("app.tar");
    let spec = ImageSpec::uniform(3, 200_000, Compression::None, 5);
    write_docker_archive(&path, "app:v1", &spec).expect("synthetic archive");
    let whole = std::fs::read(&path).expect("archive");
    let cut = whole[..whole.len() / 2].to_vec();
    (whole, cut)
}

#[test]
fn a_failed_spool_keeps_the_layout_another_hoist_finished_in_the_directory_it_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let (whole, cut) = archives(tmp.path());
    let dir = tmp.path().join("shared");

    // A creates the new layout, then waits for its archive.
    let (failing, failing_in) = spool_from_pipe(&cache, &dir, "a");
    wait_for("A to create the layout", || dir.join("index.json").exists());
    // B spools into it and finishes.
    let (good, good_in) = spool_from_pipe(&cache, &dir, "b");
    let (code, stderr) = feed_and_finish(good, good_in, &whole);
    assert_eq!(code, Some(0), "B: {stderr}");
    // Then A's archive turns out truncated.
    let (code, stderr) = feed_and_finish(failing, failing_in, &cut);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(stderr.contains("docker archive"), "{stderr}");

    assert!(dir.exists(), "A removed the layout holding B's image");
    assert_only_whole(&dir, "b", 3);
}

#[test]
fn a_failed_spool_keeps_the_layout_another_hoist_is_still_spooling_into() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let (whole, cut) = archives(tmp.path());
    let dir = tmp.path().join("racing");

    // A creates the new layout; B opens it; both wait for their archives, B having marked
    // the layout in use.
    let (failing, failing_in) = spool_from_pipe(&cache, &dir, "a");
    wait_for("A to create the layout", || dir.join("index.json").exists());
    let (good, good_in) = spool_from_pipe(&cache, &dir, "b");
    wait_for("both hoists to mark the layout in use", || {
        temp_files(&dir).len() == 2
    });
    // A fails while B has written nothing yet.
    let (code, stderr) = feed_and_finish(failing, failing_in, &cut);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(
        dir.join("oci-layout").exists(),
        "A removed the layout B is spooling into"
    );
    // B goes on into it and finishes.
    let (code, stderr) = feed_and_finish(good, good_in, &whole);
    assert_eq!(code, Some(0), "B: {stderr}");
    assert_only_whole(&dir, "b", 3);

    // Alone, a failed spool still removes the directory it created.
    let dir = tmp.path().join("alone");
    let (failing, failing_in) = spool_from_pipe(&cache, &dir, "a");
    wait_for("A to mark its layout", || temp_files(&dir).len() == 1);
    let (code, stderr) = feed_and_finish(failing, failing_in, &cut);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(!dir.exists(), "the layout A created is left behind");
}

#[test]
fn a_failed_spool_keeps_the_layout_a_pull_is_downloading_into() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let (_, cut) = archives(tmp.path());
    let dir = tmp.path().join("pulled");

    // An image in a registry, behind a proxy that holds every blob download for a while.
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(2, 300_000, Compression::Gzip, 9);
    let image = write_oci_layout(&source, "v1", &spec).expect("synthetic layout");
    let registry = Registry::start().expect("registry");
    let out = common::isolated(&cache)
        .args(["-q", "push"])
        .arg(format!("oci:{}:v1", source.display()))
        .arg(format!("{}/race/app:v1", registry.host()))
        .output()
        .expect("run hoist push");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![FaultRule::new(
            "GET",
            "/blobs/sha256:",
            0,
            FaultAction::Stall(Duration::from_secs(5)),
        )],
    )
    .expect("fault proxy");

    // A creates the new layout and waits for its archive; B pulls into it.
    let (failing, failing_in) = spool_from_pipe(&cache, &dir, "a");
    wait_for("A to create the layout", || dir.join("index.json").exists());
    let pull = common::isolated(&cache)
        .args(["-q", "pull"])
        .arg(format!("{}/race/app:v1", proxy.host()))
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist pull");
    wait_for("B to start downloading", || {
        proxy
            .records()
            .iter()
            .any(|r| r.path.contains("/blobs/sha256:"))
    });
    // A fails while B's downloads are held.
    let (code, stderr) = feed_and_finish(failing, failing_in, &cut);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(
        dir.join("oci-layout").exists(),
        "A removed the layout B is pulling into"
    );
    let out = pull.wait_with_output().expect("wait for the pull");
    assert_eq!(
        out.status.code(),
        Some(0),
        "B: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_only_whole(&dir, "v1", image.layers.len());
}
