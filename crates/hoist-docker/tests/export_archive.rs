//! `Daemon::export_archive` against a socket that answers the way daemons end a failed export:
//! moby since 23 writes `{"errorDetail":...}` after the partial archive and ends the response
//! cleanly; dockerd 20.10 just ends it cleanly in the middle (`daemon_errors.rs` pins that
//! against a real one). Neither can be made to happen on demand in a real daemon at an exact
//! byte, so a small HTTP/1.1 server on a unix socket plays the daemon here: it answers
//! `/version` and streams a given body for `/images/get`.
//!
//! The archive is copied as it comes, so a copy must still fail when the daemon failed: a
//! short archive reported whole is what a caller would load or ship.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;

use hoist_docker::{ConnectOptions, Daemon, ExportOptions};

/// Serve `body` as the answer to every export on a socket at `path`, until the test ends.
fn serve(path: &Path, body: Vec<u8>) {
    let listener = UnixListener::bind(path).expect("bind the socket");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&head).into_owned();
                let target = request.split_whitespace().nth(1).unwrap_or_default();
                let (kind, payload): (&str, &[u8]) = if target.contains("/version") {
                    (
                        "application/json",
                        br#"{"ApiVersion":"1.41","Version":"20.10.24","Os":"linux","Arch":"amd64"}"#,
                    )
                } else if target.contains("/images/get") {
                    ("application/x-tar", &body)
                } else {
                    let _ = conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\
                     Connection: close\r\n\r\n{:x}\r\n",
                    payload.len()
                );
                let _ = conn.write_all(payload);
                let _ = conn.write_all(b"\r\n0\r\n\r\n");
            });
        }
    });
}

/// A `docker save`-shaped archive: a layer, then `manifest.json` last, as daemons write it.
fn whole_archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
    };
    add("abc/layer.tar", &[7u8; 100_000]);
    add(
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":["app:1"],"Layers":[]}]"#,
    );
    b.into_inner().expect("tar")
}

async fn export(body: Vec<u8>) -> hoist_docker::Result<(Vec<u8>, u64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("docker.sock");
    serve(&socket, body);
    let daemon = Daemon::connect(ConnectOptions::new().socket(&socket))
        .await
        .expect("connect");
    daemon
        .export_archive(&["app:1".into()], &ExportOptions::new(), Vec::new(), |_| {})
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_archive_is_copied_byte_for_byte() {
    let archive = whole_archive();
    let (copied, n) = export(archive.clone()).await.expect("a whole export");
    assert_eq!(n, archive.len() as u64);
    assert_eq!(copied, archive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_line_after_a_partial_archive_fails_the_copy_with_the_daemons_reason() {
    let mut body = whole_archive();
    body.truncate(40_000);
    body.extend_from_slice(
        b"{\"errorDetail\":{\"message\":\"failed to get layer: boom\"},\"error\":\"failed to get layer: boom\"}\r\n",
    );
    let err = export(body).await.expect_err("a failed export");
    assert!(err.is_daemon_failed(), "{err:?}");
    assert!(
        err.to_string().contains("failed to get layer: boom"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_ended_early_fails_the_copy() {
    // Cut inside the layer, and cut after the layer but before manifest.json.
    for cut in [40_000, 512 + 100_352] {
        let mut body = whole_archive();
        body.truncate(cut);
        let err = export(body).await.expect_err("an export ended early");
        assert!(err.is_daemon_failed(), "cut at {cut}: {err:?}");
        assert!(
            err.to_string().contains("ended the export"),
            "cut at {cut}: {err}"
        );
    }
}
