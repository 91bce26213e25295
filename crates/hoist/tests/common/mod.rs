//! What the command line's end-to-end tests share: the `hoist` binary, started in an
//! environment of the test's own, so a developer's settings never leak into a run.
#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::process::{Command, Output};

/// The `hoist` binary with none of the variables it reads (`HOIST_*`, `RUST_LOG`,
/// `REGISTRY_AUTH_FILE`) inherited, and podman's auth files (under `XDG_RUNTIME_DIR` and
/// `XDG_CONFIG_HOME`) moved to a directory that does not exist.
pub fn clean() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("HOIST_") || name == "RUST_LOG" || name == "REGISTRY_AUTH_FILE" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("XDG_RUNTIME_DIR", NOWHERE)
        .env("XDG_CONFIG_HOME", NOWHERE);
    cmd
}

/// A directory that is never there (Debian's home of `nobody`).
const NOWHERE: &str = "/nonexistent";

/// [`clean`], with its cache in `cache` and a docker config directory that does not exist (no
/// credentials or contexts from the machine's `~/.docker`).
pub fn isolated(cache: &Path) -> Command {
    let mut cmd = clean();
    cmd.env("HOIST_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("no-docker-config"));
    cmd
}

/// Run [`clean`] `hoist` with `args` to completion.
pub fn hoist(args: &[&str]) -> Output {
    clean().args(args).output().expect("run hoist")
}

/// Output bytes as text (hoist writes UTF-8).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The `oci:DIR` argument for `path`, with `suffix` (`:TAG`, or nothing) after it.
pub fn arg(path: &Path, suffix: &str) -> String {
    format!("oci:{}{suffix}", path.display())
}

/// A private dockerd holding the image `tag`, built with `files_per_layer` files in each layer;
/// `None` (after a loud `SKIP:`, a failure under `CI=true`) without root or dockerd.
pub fn daemon_with_image(files_per_layer: &[usize], tag: &str) -> Option<hoist_testkit::Dockerd> {
    if !hoist_testkit::require_root() || !hoist_testkit::require_tool("dockerd") {
        return None;
    }
    let dockerd = hoist_testkit::Dockerd::start().expect("dockerd");
    dockerd
        .build_layers(files_per_layer, tag)
        .expect("build an image");
    Some(dockerd)
}

/// Wait until `proxy` relayed `acked` chunks (PATCH answered 202) of `child`'s upload, then
/// kill it with SIGKILL, as a dropped machine would end a push. Fails the test when `child`
/// ends first or the chunks take over a minute.
pub fn kill_after_chunks(
    child: &mut std::process::Child,
    proxy: &hoist_testkit::FaultProxy,
    acked: usize,
) {
    signal_after_chunks(child, proxy, acked, "KILL");
}

/// As [`kill_after_chunks`], with `signal` (`INT` is Ctrl-C); waits for `child` to end and
/// returns how it did.
pub fn signal_after_chunks(
    child: &mut std::process::Child,
    proxy: &hoist_testkit::FaultProxy,
    acked: usize,
    signal: &str,
) -> std::process::ExitStatus {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = || {
        proxy
            .records()
            .iter()
            .filter(|r| r.method == "PATCH" && r.status == Some(202))
            .count()
    };
    while count() < acked {
        assert!(
            Instant::now() < deadline,
            "the push never got {acked} chunks in"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "hoist ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next chunk is under way (and stalled by the proxy) when the signal comes.
    std::thread::sleep(Duration::from_millis(300));
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -s {signal}");
    child.wait().expect("wait for hoist")
}

/// A fault proxy in front of `registry` on which the `nth` chunk of an upload (PATCH) hangs for
/// five seconds before any of it is forwarded, so a push can be killed with `nth - 1` chunks
/// acknowledged (a Ctrl-C lets that chunk finish: `nth` are then acknowledged).
pub fn proxy_stalling_chunk(
    registry: &hoist_testkit::Registry,
    nth: usize,
) -> hoist_testkit::FaultProxy {
    use hoist_testkit::{FaultAction, FaultProxy, FaultRule};
    FaultProxy::start(
        registry.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            nth,
            FaultAction::Stall(std::time::Duration::from_secs(5)),
        )],
    )
    .expect("fault proxy")
}
