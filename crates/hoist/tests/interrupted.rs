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

/// Wait until `ready` holds (hoist still running), then send `signal` (`INT`, `TERM`); returns
/// hoist's exit code, its stderr, and how long it took to end after the signal.
fn interrupt_when(
    mut child: Child,
    signal: &str,
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
        .args([&format!("-{signal}"), &child.id().to_string()])
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

/// Ended soon after the signal, with the shell's code for it (128 + its number, as docker and
/// skopeo), saying it was interrupted, on its last progress line too.
fn assert_interrupted_cleanly(code: Option<i32>, stderr: &str, took: Duration, expected: i32) {
    assert_eq!(code, Some(expected), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("interrupted in ") && !stderr.contains("failed in "),
        "the last progress line says what happened: {stderr}"
    );
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
    // SIGTERM, as `docker stop` or Kubernetes send: 143.
    let (code, stderr, took) = interrupt_when(child, "TERM", hung, || {});
    assert_interrupted_cleanly(code, &stderr, took, 143);
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
    let (code, stderr, took) = interrupt_when(child, "INT", spooling, feed);
    assert_interrupted_cleanly(code, &stderr, took, 130);
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
    // The second layer is first put off for a second (the first layer and the config are
    // stored meanwhile: which blob starts first is not fixed), then every answer for it is
    // corrupted: the pull fails after the first.
    let second = image.layers[1].digest.hex().to_string();
    let later = FaultAction::Respond {
        status: 503,
        headers: vec![("Retry-After".into(), "1".into())],
        body: "busy".into(),
    };
    let rules = std::iter::once(FaultRule::new("GET", &second, 1, later))
        .chain(
            (2..=10).map(|n| FaultRule::new("GET", &second, n, FaultAction::CorruptResponseBody)),
        )
        .collect();
    let proxy = FaultProxy::start(registry.addr(), rules).expect("proxy");
    let dir = tmp.path().join("pulled");
    let out = hoist(&cache, &["-q", "pull"])
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

/// Upload chunk size of the slow pushes below.
const CHUNK: u64 = 1 << 20;

/// A push of one incompressible 8 MB layer in 1 MiB chunks, through a proxy that passes every
/// PATCH body at `rate` bytes a second (a slow uplink), straight to distribution 2.8.
struct SlowPush {
    _tmp: tempfile::TempDir,
    cache: std::path::PathBuf,
    source: std::path::PathBuf,
    layer_size: u64,
    config_size: u64,
    registry: Registry,
    proxy: FaultProxy,
}

impl SlowPush {
    fn start(rate: u64, seed: u64) -> SlowPush {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = tmp.path().join("cache");
        let source = tmp.path().join("source");
        let spec = ImageSpec::uniform(1, 8_000_000, Compression::Gzip, seed);
        let image = write_oci_layout(&source, "v1", &spec).expect("layout");
        let registry = Registry::start().expect("registry");
        let proxy = FaultProxy::start(registry.addr(), Self::throttled(rate)).expect("proxy");
        SlowPush {
            _tmp: tmp,
            cache,
            source,
            layer_size: image.layers[0].size,
            config_size: image.config_size,
            registry,
            proxy,
        }
    }

    fn throttled(rate: u64) -> Vec<FaultRule> {
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            0,
            FaultAction::ThrottleRequestBody(rate),
        )]
    }

    /// `hoist push` of the layout to the registry through the proxy, progress as plain lines.
    fn push(&self, extra: &[&str]) -> Command {
        let mut cmd = hoist(&self.cache, &["--chunk-size", "1MiB"]);
        cmd.args(extra)
            .arg("push")
            .arg(common::arg(&self.source, ":v1"))
            .arg(format!("{}/team/slow:1", self.proxy.host()));
        cmd
    }

    fn patches(&self) -> Vec<hoist_testkit::RequestRecord> {
        self.proxy
            .records()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// Whole chunks of the layer the registry acknowledged.
    fn acked_chunks(&self) -> u64 {
        let full = |r: &&hoist_testkit::RequestRecord| r.request_body_bytes == CHUNK;
        self.patches()
            .iter()
            .filter(|r| r.status == Some(202))
            .filter(full)
            .count() as u64
    }

    /// At least `acked` chunks are in and the next one is part-way through its body.
    fn mid_chunk(&self, acked: u64) -> bool {
        self.acked_chunks() >= acked
            && self.patches().iter().any(|r| {
                r.status.is_none() && r.request_body_bytes > 0 && r.request_body_bytes < CHUNK / 2
            })
    }

    /// Request-body bytes the proxy forwarded to upload sessions.
    fn upload_bytes(&self) -> u64 {
        self.proxy
            .records()
            .iter()
            .filter(|r| r.path.contains("/blobs/uploads/"))
            .map(|r| r.request_body_bytes)
            .sum()
    }

    /// Run the push again at full speed with `extra` arguments and the proxy's `plan`,
    /// recording only that run; its stderr.
    fn rerun(&self, extra: &[&str], plan: Vec<FaultRule>) -> String {
        self.proxy.set_plan(plan);
        self.proxy.clear_records();
        let out = self.push(extra).output().expect("rerun");
        let stderr = common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    }

    /// Start the push and Ctrl-C it while its third chunk is half-sent; its exit code, its
    /// stderr and how long it took to end after the signal.
    fn interrupted(&self) -> (Option<i32>, String, Duration) {
        let child = self
            .push(&[])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        interrupt_when(child, "INT", || self.mid_chunk(2), || {})
    }
}

/// The warning a push prints when a blob's upload starts over.
const RESTART: &str = "starting the blob over at byte 0";

/// The user's report: Ctrl-C while a PATCH was half-sent dropped it, distribution 2.8 kept
/// the partial body but not in its session, and the rerun sent the whole image again without
/// a word. Now the chunk in flight is finished and the rerun sends only the rest.
#[test]
fn ctrl_c_mid_chunk_finishes_it_and_the_rerun_sends_only_the_rest() {
    if !require_tool("docker-registry") {
        return;
    }
    let slow = SlowPush::start(1 << 20, 41);
    let (code, stderr, took) = slow.interrupted();
    assert_interrupted_cleanly(code, &stderr, took, 130);
    assert!(stderr.contains("press Ctrl-C again"), "{stderr}");
    assert!(
        stderr.contains("run the same command again to continue where it stopped"),
        "{stderr}"
    );
    let patches = slow.patches();
    assert!(
        patches.iter().all(|r| r.status == Some(202)),
        "a PATCH was cut: {patches:?}\n{stderr}"
    );
    let acked = slow.acked_chunks();
    assert!((3..8).contains(&acked), "{acked} chunks in: {stderr}");
    eprintln!("stopped {took:?} after the signal, {acked} chunks acknowledged");

    let again = slow.rerun(&[], Vec::new());
    let resent = slow.upload_bytes();
    let left = slow.layer_size - acked * CHUNK;
    assert!(
        (left..=left + slow.config_size).contains(&resent),
        "the rerun sent {resent} bytes; {left} of the layer were left: {again}"
    );
    assert!(!again.contains(RESTART), "{again}");
}

/// The same report for a copy between registries, where each layer streams through hoist with
/// no local copy: no upload state was kept for a stream, so after Ctrl-C the rerun sent every
/// layer again from byte 0. Now the chunk in flight is finished and saved, and the rerun reads
/// what the destination has from the source again (hashed, to verify it; not sent) and sends
/// only the rest.
#[test]
fn ctrl_c_mid_layer_of_a_copy_between_registries_and_the_rerun_sends_only_the_rest() {
    if !require_tool("docker-registry") {
        return;
    }
    let slow = SlowPush::start(1 << 20, 45);
    let seeded = hoist(&slow.cache, &["-q", "copy"])
        .arg(common::arg(&slow.source, ":v1"))
        .arg(format!("docker://{}/team/origin:1", slow.registry.host()))
        .output()
        .expect("seed");
    assert_eq!(
        seeded.status.code(),
        Some(0),
        "{}",
        common::text(&seeded.stderr)
    );
    // The source is read through a proxy of its own: another host than the destination's, so
    // the copy streams (a mount needs one registry), and the test sees what was read.
    let source = FaultProxy::start(slow.registry.addr(), Vec::new()).expect("proxy");
    let copy = || {
        let mut cmd = hoist(&slow.cache, &["--chunk-size", "1MiB", "copy"]);
        cmd.arg(format!("docker://{}/team/origin:1", source.host()))
            .arg(format!("docker://{}/team/copy:1", slow.proxy.host()));
        cmd
    };
    let child = copy().stderr(Stdio::piped()).spawn().expect("spawn");
    let (code, stderr, took) = interrupt_when(child, "INT", || slow.mid_chunk(2), || {});
    assert_interrupted_cleanly(code, &stderr, took, 130);
    assert!(
        stderr.contains("reads again from the source what the destination already has"),
        "{stderr}"
    );
    let patches = slow.patches();
    assert!(
        patches.iter().all(|r| r.status == Some(202)),
        "a PATCH was cut: {patches:?}\n{stderr}"
    );
    let acked = slow.acked_chunks();
    assert!((3..8).contains(&acked), "{acked} chunks in: {stderr}");

    slow.proxy.set_plan(Vec::new());
    slow.proxy.clear_records();
    source.clear_records();
    let out = copy().output().expect("rerun");
    let again = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{again}");
    eprintln!("{acked} chunks acknowledged before the signal");
    let resent = slow.upload_bytes();
    let left = slow.layer_size - acked * CHUNK;
    assert!(
        (left..=left + slow.config_size).contains(&resent),
        "the rerun sent {resent} bytes; {left} of the layer were left: {again}"
    );
    assert!(!again.contains(RESTART), "{again}");
    assert!(
        again.contains("from the source again to verify them"),
        "{again}"
    );
    assert!(again.contains("sent by an earlier run"), "{again}");
    // The summary counts what this run sent as moved, and the prefix read again as the
    // earlier run's (it used to count the prefix twice: as moved and as the earlier run's).
    let moved = summary_bytes(&again, "moved");
    let earlier = summary_bytes(&again, "sent by an earlier run");
    let close = |shown: f64, bytes: u64| (shown - bytes as f64).abs() <= bytes as f64 / 100.0;
    assert!(close(moved, left), "moved {moved}, sent {left}: {again}");
    assert!(
        close(earlier, acked * CHUNK),
        "an earlier run {earlier}, had {}: {again}",
        acked * CHUNK
    );
    // The layer was read from the source whole: what the destination had, then the rest.
    let read: u64 = source
        .records()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .map(|r| r.response_body_bytes)
        .sum();
    assert!(
        (slow.layer_size..=slow.layer_size + slow.config_size).contains(&read),
        "{read} bytes read from the source: {again}"
    );
}

/// The figure the summary (`finished in 0:01: 1/1 layers, 3.00 MB moved (2.9 MB/s), 5.24 MB
/// sent by an earlier run`) gives before `what`, in bytes, as closely as it is printed.
fn summary_bytes(stderr: &str, what: &str) -> f64 {
    let summary = stderr
        .lines()
        .rfind(|l| l.starts_with("finished in "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let figure = summary
        .split(", ")
        .find_map(|part| part.split_once(&format!(" {what}")).map(|(n, _)| n))
        .unwrap_or_else(|| panic!("no {what} in {summary}"));
    let (number, unit) = figure
        .rsplit(':')
        .next()
        .and_then(|f| f.trim().split_once(' '))
        .unwrap_or_else(|| panic!("{figure} in {summary}"));
    let scale = match unit {
        "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit {unit} in {summary}"),
    };
    number.parse::<f64>().expect("a number") * scale
}

/// The registry no longer knows the session a Ctrl-C saved (the proxy answers its status
/// request with a 404, as a registry that purged it would): the rerun starts the blob over and
/// says so, in plain progress and with `-v`.
#[test]
fn a_forgotten_session_is_started_over_with_a_warning() {
    if !require_tool("docker-registry") {
        return;
    }
    let slow = SlowPush::start(1 << 20, 44);
    let (code, stderr, took) = slow.interrupted();
    assert_interrupted_cleanly(code, &stderr, took, 130);
    let acked = slow.acked_chunks();
    let forgotten = || {
        let body = r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"gone"}]}"#;
        vec![FaultRule::new(
            "GET",
            "/blobs/uploads/",
            1,
            FaultAction::status(404, body),
        )]
    };
    let again = slow.rerun(&[], forgotten());
    let warning = again
        .lines()
        .find(|l| l.contains(RESTART))
        .unwrap_or_else(|| panic!("no restart warning: {again}"));
    assert!(
        warning.contains("no longer knows the upload an earlier run left"),
        "{warning}"
    );
    let had = format!(
        "{:.2} MB it had is sent again",
        (acked * CHUNK) as f64 / 1e6
    );
    assert!(warning.contains(&had), "{warning} ({had})");
    assert!(slow.upload_bytes() >= slow.layer_size, "{again}");
}

/// A second Ctrl-C does not wait for the chunk in flight: the push ends at once and says
/// what that may cost.
#[test]
fn a_second_ctrl_c_stops_the_push_at_once() {
    if !require_tool("docker-registry") {
        return;
    }
    // 128 KiB/s: a chunk takes 8 s.
    let slow = SlowPush::start(128 << 10, 42);
    let mut child = slow
        .push(&[])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !slow.mid_chunk(0) {
        assert!(Instant::now() < deadline, "never got going");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoist ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signal = |child: &Child| {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    };
    signal(&child);
    let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
    let mut stderr = String::new();
    while !stderr.contains("press Ctrl-C again") {
        assert!(
            pipe.read_line(&mut stderr).expect("stderr") > 0,
            "ended without the notice: {stderr}"
        );
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first Ctrl-C did not wait for the chunk: {stderr}"
    );
    signal(&child);
    let signalled = Instant::now();
    while pipe.read_line(&mut stderr).expect("stderr") > 0 {}
    let status = child.wait().expect("wait");
    let took = signalled.elapsed();
    eprintln!("ended {took:?} after the second signal");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("stopped before the chunks in flight were finished"),
        "{stderr}"
    );
}

/// A push killed mid-chunk (no Ctrl-C to let it finish) may leave distribution 2.8 with part
/// of that chunk in its upload but not in its session (whether it does depends on how much of
/// the body it had written): then the rerun cannot continue the session and starts the blob
/// over. Either way it is never silent: a rerun that sends the whole layer again says so.
#[test]
fn a_push_killed_mid_chunk_never_starts_over_silently() {
    if !require_tool("docker-registry") {
        return;
    }
    let slow = SlowPush::start(1 << 20, 43);
    let mut child = slow.push(&["-q"]).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !slow.mid_chunk(2) {
        assert!(Instant::now() < deadline, "never got going");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoist ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // The proxy still forwards what the dead client had left in the socket (at the link's
    // pace): let that reach the registry before the rerun, as it would on a real network,
    // and before the records are cleared.
    let mut forwarded = slow.proxy.total_body_bytes_forwarded();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = slow.proxy.total_body_bytes_forwarded();
        if now == forwarded {
            break;
        }
        forwarded = now;
    }
    let acked = slow.acked_chunks();
    // With -v the library's warning comes through the log as well.
    let again = slow.rerun(&["-v"], Vec::new());
    let resent = slow.upload_bytes();
    let started_over = resent >= slow.layer_size;
    eprintln!(
        "killed with {acked} chunks in; the rerun sent {resent} bytes (started over: {started_over})"
    );
    assert_eq!(again.contains(RESTART), started_over, "{again}");
    if started_over {
        assert!(again.contains("MB it had is sent again"), "{again}");
        assert!(again.contains("WARN"), "the log says it too: {again}");
    }
}
