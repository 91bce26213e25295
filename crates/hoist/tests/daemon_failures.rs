//! Failed daemon exports against a private dockerd leave nothing of theirs behind, and nothing
//! of anyone else's gone: no `.partial-*` staging directory in the cache after a push that
//! failed while the export still streamed, and no layout deleted from under another hoist
//! exporting into the same new directory. Missing components print `SKIP:` (and fail under
//! `CI=true`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hoist_oci::Layout;
use hoist_testkit::{Dockerd, require_root, require_tool};

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
    if !require_root() || !require_tool("dockerd") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dockerd = Dockerd::start().expect("dockerd");
    // Many small layers: while the first one's push fails, later ones are still streaming in
    // and being committed (fsync, rename) into the staged export on threads of their own.
    let layers = [3usize; 24];
    dockerd
        .build_layers(&layers, "hoist-leak:1")
        .expect("build an image");
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

/// What a held export answer does once let go.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// The answer goes on as the daemon sends it.
    Pass,
    /// The connection is cut: the export fails.
    Cut,
}

/// A TCP relay to the daemon's socket that holds the answer to `GET /images/get` (nothing of
/// it forwarded) until [`Held::release`], then passes it on or cuts it; everything else passes.
struct Held {
    addr: SocketAddr,
    /// (held, released)
    state: Arc<(Mutex<(bool, bool)>, Condvar)>,
}

impl Held {
    fn start(socket: &Path, then: Then) -> Held {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let socket = socket.to_path_buf();
        let state = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { break };
                let Ok(mut daemon) = UnixStream::connect(&socket) else {
                    continue;
                };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(2).any(|w| w == b"\r\n") {
                        match client.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                    let export = String::from_utf8_lossy(line).contains("/images/get");
                    if daemon.write_all(&head).is_err() {
                        return;
                    }
                    let (mut client_in, mut daemon_out) = (
                        client.try_clone().expect("clone tcp"),
                        daemon.try_clone().expect("clone unix"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut client_in, &mut daemon_out);
                    });
                    if export {
                        let (lock, changed) = &*state;
                        let mut s = lock.lock().expect("lock");
                        s.0 = true;
                        changed.notify_all();
                        while !s.1 {
                            s = changed.wait(s).expect("wait");
                        }
                        drop(s);
                        if then == Then::Cut {
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            let _ = daemon.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                    let _ = std::io::copy(&mut daemon, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Held { addr, state }
    }

    fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Wait until an export's answer is being held.
    fn wait_held(&self) {
        let (lock, changed) = &*self.state;
        let s = lock.lock().expect("lock");
        let (s, _) = changed
            .wait_timeout_while(s, Duration::from_secs(60), |s| !s.0)
            .expect("wait");
        assert!(s.0, "no export reached the relay");
    }

    fn release(&self) {
        let (lock, changed) = &*self.state;
        lock.lock().expect("lock").1 = true;
        changed.notify_all();
    }
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
    if !require_root() || !require_tool("dockerd") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let dockerd = Dockerd::start().expect("dockerd");
    dockerd
        .build_layers(&[5, 5], "hoist-race:1")
        .expect("build an image");
    let export = |host: &str, dir: &Path, tag: &str| {
        let mut cmd = hoist(&cache, host, &["-q", "copy", "docker-daemon:hoist-race:1"]);
        cmd.arg(format!("oci:{}:{tag}", dir.display()));
        cmd
    };

    // A creates the new layout, then waits for the daemon; B exports into it and finishes;
    // then A's export fails. A made the directory, but B's tagged image is in it now.
    let dir: PathBuf = tmp.path().join("shared");
    let cut = Held::start(dockerd.socket_path(), Then::Cut);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    cut.wait_held();
    assert!(dir.join("oci-layout").exists(), "A made the layout first");
    let (code, stderr) = finish(spawn(&mut export(&dockerd.docker_host(), &dir, "b")));
    assert_eq!(code, Some(0), "B: {stderr}");
    cut.release();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert_whole(&dir, "b", 3);

    // Now B is still at work (its export held) when A fails: B's layout survives and B
    // finishes into it.
    let dir = tmp.path().join("racing");
    let cut = Held::start(dockerd.socket_path(), Then::Cut);
    let slow = Held::start(dockerd.socket_path(), Then::Pass);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    cut.wait_held();
    let second = spawn(&mut export(&slow.docker_host(), &dir, "b"));
    slow.wait_held();
    cut.release();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "A fails: {stderr}");
    assert!(
        dir.join("oci-layout").exists(),
        "A removed the layout B is exporting into"
    );
    slow.release();
    let (code, stderr) = finish(second);
    assert_eq!(code, Some(0), "B: {stderr}");
    assert_whole(&dir, "b", 3);

    // Alone, a failed export still removes the directory it created.
    let dir = tmp.path().join("alone");
    let cut = Held::start(dockerd.socket_path(), Then::Cut);
    let first = spawn(&mut export(&cut.docker_host(), &dir, "a"));
    cut.wait_held();
    let started = Instant::now();
    cut.release();
    let (code, stderr) = finish(first);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!dir.exists(), "{:?}", names_in(&dir));
    assert!(started.elapsed() < Duration::from_secs(30));
}
