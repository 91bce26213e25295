//! Ctrl-C where the work is stuck or local: a download that hangs mid-layer on its way into
//! a root filesystem, and a docker archive spooled into the cache for a push. Either way the
//! command ends promptly, says it was interrupted, prints no panic, and leaves nothing
//! behind: no half-unpacked root, no transit copy in the cache. Also a pull that fails before
//! any blob leaves no empty layout, and one that fails after some says where they stay. Against a real registry (the testkit's), with the fault
//! proxy hanging the download; a missing `docker-registry` prints `SKIP:` (and fails under
//! `CI=true`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_docker_archive, write_oci_layout};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, require_tool};

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.args(args);
    cmd
}

/// Wait until `ready` holds (hoist still running), then send SIGINT; returns hoist's exit code,
/// its stderr, and how long it took to end after the signal.
fn interrupt_when(
    mut child: Child,
    ready: impl Fn() -> bool,
    feed: impl FnOnce() + Send + 'static,
) -> (Option<i32>, String, Duration) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "never got ready");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoist ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let signalled = Instant::now();
    let feeder = std::thread::spawn(feed);
    let mut stderr = String::new();
    let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
    while pipe.read_line(&mut stderr).expect("stderr") > 0 {}
    let status = child.wait().expect("wait");
    let took = signalled.elapsed();
    feeder.join().expect("feeder");
    (status.code(), stderr, took)
}

fn assert_interrupted_cleanly(code: Option<i32>, stderr: &str, took: Duration) {
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        took < Duration::from_secs(8),
        "ended {took:?} after the signal: {stderr}"
    );
}

fn transit_entries(cache: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(cache.join("transit")) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn ctrl_c_while_a_download_hangs_mid_layer_removes_the_root() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(2, 1_500_000, Compression::Gzip, 31);
    let image = write_oci_layout(&source, "v1", &spec).expect("layout");
    let registry = Registry::start().expect("registry");
    let pushed = hoist(&cache, &["-q", "copy"])
        .arg(common::arg(&source, ":v1"))
        .arg(format!("docker://{}/team/app:1", registry.host()))
        .output()
        .expect("push");
    assert_eq!(pushed.status.code(), Some(0));
    // The second layer's download stops after 1 MiB, the connection left open: far enough
    // in that the unpack waits on the download, not on its own queue.
    let second = image.layers[1].digest.hex().to_string();
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![FaultRule::new(
            "GET",
            &second,
            1,
            FaultAction::StallResponseBody(1 << 20),
        )],
    )
    .expect("proxy");
    let root = tmp.path().join("root");
    let child = hoist(&cache, &["copy"])
        .arg(format!("docker://{}/team/app:1", proxy.addr()))
        .arg(format!("rootfs:{}", root.display()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let hung = || {
        proxy
            .records()
            .iter()
            .any(|r| r.path.contains(&second) && r.response_body_bytes > 0)
    };
    let (code, stderr, took) = interrupt_when(child, hung, || {});
    assert_interrupted_cleanly(code, &stderr, took);
    assert!(!root.exists(), "the half-unpacked root is left: {stderr}");
}

#[test]
fn ctrl_c_while_an_archive_is_spooled_for_a_push_leaves_no_transit_copy() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let archive = tmp.path().join("image.tar");
    let spec = ImageSpec::uniform(1, 3_000_000, Compression::None, 32);
    write_docker_archive(&archive, "team/app:1", &spec).expect("archive");
    let bytes = std::fs::read(&archive).expect("archive bytes");
    // The archive becomes a pipe the test feeds: the spool is mid-archive for as long as the
    // test wants, whatever the machine's speed.
    std::fs::remove_file(&archive).expect("rm");
    let made = Command::new("mkfifo")
        .arg(&archive)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let registry = Registry::start().expect("registry");
    let child = hoist(&cache, &["copy"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{}/team/app:1", registry.host()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut pipe = std::fs::OpenOptions::new()
        .write(true)
        .open(&archive)
        .expect("open the pipe");
    pipe.write_all(&bytes[..bytes.len() / 2])
        .expect("half the archive");
    let spooling = || !transit_entries(&cache).is_empty();
    // More bytes, slowly, until hoist has gone: the spool sees the signal at its next read.
    let rest = bytes[bytes.len() / 2..].to_vec();
    let feed = move || {
        for chunk in rest.chunks(4096) {
            if pipe.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let (code, stderr, took) = interrupt_when(child, spooling, feed);
    assert_interrupted_cleanly(code, &stderr, took);
    assert_eq!(
        transit_entries(&cache),
        Vec::<std::path::PathBuf>::new(),
        "{stderr}"
    );
    // The spool is not kept: running again reads the archive again, which the message says
    // rather than promising to continue where it stopped.
    assert!(stderr.contains("read the image again"), "{stderr}");
}

#[test]
fn a_pull_that_fails_before_any_blob_leaves_no_layout() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let registry = Registry::start().expect("registry");
    let dir = tmp.path().join("pulled");
    let out = hoist(&cache, &["-q", "pull"])
        .arg(format!("{}/team/none", registry.host()))
        .arg(&dir)
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.exists(), "an empty layout is left");
    // A layout that was there stays, whatever happens.
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("mine"), b"keep").expect("a file of the user's");
    let out = hoist(&cache, &["-q", "pull"])
        .arg(format!("{}/team/none", registry.host()))
        .arg(&dir)
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.join("mine")).expect("kept"), b"keep");
}

#[test]
fn a_pull_that_fails_after_some_blobs_says_where_they_stay() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(2, 200_000, Compression::Gzip, 34);
    let image = write_oci_layout(&source, "v1", &spec).expect("layout");
    let registry = Registry::start().expect("registry");
    let pushed = hoist(&cache, &["-q", "copy"])
        .arg(common::arg(&source, ":v1"))
        .arg(format!("docker://{}/team/app:1", registry.host()))
        .output()
        .expect("push");
    assert_eq!(pushed.status.code(), Some(0));
    // Every answer for the second layer is corrupted: the pull fails after the first.
    let second = image.layers[1].digest.hex().to_string();
    let rules = (1..=10)
        .map(|n| FaultRule::new("GET", &second, n, FaultAction::CorruptResponseBody))
        .collect();
    let proxy = FaultProxy::start(registry.addr(), rules).expect("proxy");
    let dir = tmp.path().join("pulled");
    let out = hoist(&cache, &["-q", "--concurrency", "1", "pull"])
        .arg(format!("{}/team/app:1", proxy.addr()))
        .arg(&dir)
        .output()
        .expect("pull");
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stay in"), "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    assert!(dir.join("blobs").exists(), "the verified blobs are kept");
}
