//! Test helpers over the testkit's private dockerd: images from generated files, a TCP relay.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use hoist_testkit::Dockerd;

/// A private dockerd, or `None` after a loud SKIP (a panic under `CI=true`).
pub fn start_dockerd() -> Option<Dockerd> {
    if !hoist_testkit::require_root() || !hoist_testkit::require_tool("dockerd") {
        return None;
    }
    Some(Dockerd::start().expect("start a private dockerd"))
}

/// Run the docker CLI against `dockerd`; panic with its stderr on failure; return stdout.
pub fn run(dockerd: &Dockerd, args: &[&str]) -> String {
    dockerd.run_docker(args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// `docker import` a root filesystem made of `files` (path, contents) as `tag`.
pub fn import_files(dockerd: &Dockerd, scratch: &Path, tag: &str, files: &[(&str, &[u8])]) {
    let tar_path = scratch.join(format!("rootfs-{}.tar", sanitize(tag)));
    let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).expect("create tar"));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        builder
            .append_data(&mut header, name, *data)
            .expect("append file");
    }
    builder.into_inner().expect("finish tar");
    dockerd
        .import_rootfs(&tar_path, tag)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// Build `tag` FROM `base` with one `COPY` layer per file (legacy builder, no network).
pub fn build_layers(
    dockerd: &Dockerd,
    scratch: &Path,
    tag: &str,
    base: &str,
    files: &[(&str, &[u8])],
) {
    let ctx = scratch.join(format!("ctx-{}", sanitize(tag)));
    std::fs::create_dir_all(&ctx).expect("ctx dir");
    let mut dockerfile = format!("FROM {base}\n");
    for (name, data) in files {
        std::fs::write(ctx.join(name), data).expect("write ctx file");
        dockerfile.push_str(&format!("COPY {name} /{name}\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    run(
        dockerd,
        &["build", "-q", "-t", tag, ctx.to_str().expect("utf8 path")],
    );
}

fn sanitize(tag: &str) -> String {
    tag.replace([':', '/'], "_")
}

/// A plain TCP port relayed to a unix socket, so a test can reach the real daemon through
/// `tcp://` (the testkit's daemon listens on a unix socket only). Threads end with the test
/// process.
pub fn tcp_relay(socket: &Path) -> SocketAddr {
    tcp_relay_cut(socket, None)
}

/// A TCP port whose every connection is joined to a fresh connection to `socket`: on one
/// thread `up` moves the client's bytes to the daemon, on another `down` moves the daemon's
/// answer back (each gets the stream to read and the stream to write).
fn relay<U, D>(socket: &Path, up: U, down: D) -> SocketAddr
where
    U: Fn(TcpStream, UnixStream) + Send + Sync + 'static,
    D: Fn(UnixStream, TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let addr = listener.local_addr().expect("relay addr");
    let socket: PathBuf = socket.to_path_buf();
    let (up, down) = (Arc::new(up), Arc::new(down));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(upstream) = UnixStream::connect(&socket) else {
                // The daemon is gone: drop the client, as a dead daemon's port would.
                continue;
            };
            let (client_read, daemon_read) = (
                client.try_clone().expect("clone tcp"),
                upstream.try_clone().expect("clone unix"),
            );
            let (up, down) = (up.clone(), down.clone());
            std::thread::spawn(move || up(client_read, upstream));
            std::thread::spawn(move || down(daemon_read, client));
        }
    });
    addr
}

/// Like [`tcp_relay`], but each connection's answer is cut (both directions shut) after
/// `cut_after` bytes: a daemon that dies mid-stream, deterministically.
pub fn tcp_relay_cut(socket: &Path, cut_after: Option<u64>) -> SocketAddr {
    relay(
        socket,
        |mut from, mut to| {
            let _ = pump(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        },
        move |mut from, mut to| {
            let _ = match cut_after {
                Some(limit) => pump(&mut (&mut from).take(limit), &mut to),
                None => pump(&mut from, &mut to),
            };
            let _ = to.shutdown(std::net::Shutdown::Both);
            let _ = from.shutdown(std::net::Shutdown::Both);
        },
    )
}

/// A relay whose answers stop after `stall_after` bytes while the connection stays open (a
/// daemon that hangs mid-stream), and a flag set once the client closes its side.
pub fn tcp_relay_stall(socket: &Path, stall_after: u64) -> (SocketAddr, Arc<AtomicBool>) {
    let client_closed = Arc::new(AtomicBool::new(false));
    let closed = client_closed.clone();
    let addr = relay(
        socket,
        move |mut from, mut to| {
            // Requests go through; the client's end of the stream means it hung up.
            let _ = pump(&mut from, &mut to);
            closed.store(true, Ordering::SeqCst);
        },
        move |mut from, mut to| {
            let _ = pump(&mut (&mut from).take(stall_after), &mut to);
            // Hold both ends open, sending nothing, until the test process ends.
            std::thread::sleep(std::time::Duration::from_secs(3600));
            drop((from, to));
        },
    );
    (addr, client_closed)
}

fn pump(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<u64> {
    std::io::copy(from, to)
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The directory holding the files of the one-layer image `tag`'s layer in the daemon's
/// storage (overlay2's `diff`, vfs's directory).
pub fn layer_dir(dockerd: &Dockerd, tag: &str) -> PathBuf {
    let json = run(
        dockerd,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .GraphDriver.Data}}",
            tag,
        ],
    );
    let data: serde_json::Value = serde_json::from_str(json.trim()).expect("graph driver data");
    let dir = data["UpperDir"]
        .as_str()
        .or_else(|| data["Dir"].as_str())
        .unwrap_or_else(|| panic!("no layer directory in {json}"));
    PathBuf::from(dir)
}

/// The private daemon's data root (the testkit puts it beside the socket).
pub fn data_root(dockerd: &Dockerd) -> PathBuf {
    dockerd
        .socket_path()
        .parent()
        .expect("socket dir")
        .join("data")
}
