//! Failed daemon exports against a private dockerd leave nothing of theirs behind: no
//! `.partial-*` staging directory in the cache after a push that failed while the export still
//! streamed. Missing components print `SKIP:` (and fail under `CI=true`).

use std::path::Path;
use std::process::Command;

use hoist_testkit::{Dockerd, require_root, require_tool};

fn hoist(cache: &Path, docker_host: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOIST_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOIST_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("no-docker-config"))
        .env("DOCKER_HOST", docker_host)
        .args(args);
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
