//! The `hoist` binary as users run it: help text, exit codes, usage errors, and the plain and JSON
//! progress output (driven by the hidden `debug-progress` simulation).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn hoist(args: &[&str]) -> Command {
    let mut cmd = common::clean();
    cmd.args(args);
    cmd
}

fn run(args: &[&str]) -> Output {
    hoist(args).output().expect("run hoist")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn help_of_every_command() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "copy",
                "push",
                "pull",
                "unpack",
                "export",
                "inspect",
                "tags",
                "digest",
                "delete",
                "completions",
                "cache",
                "docker-daemon:NAME[:TAG]",
                "docker-archive:PATH[:REF]",
                "oci:DIR[:TAG]",
                "docker://REF",
                "rootfs:DIR",
                "Exit codes",
            ],
        ),
        (
            &["copy", "--help"],
            &[
                "<SRC>",
                "<DST>",
                "--chunk-size",
                "HOIST_CHUNK_SIZE",
                "--digestfile <FILE>",
            ],
        ),
        (
            &["push", "--help"],
            &["<IMAGE>", "<REF>", "Docker daemon", "--digestfile <FILE>"],
        ),
        (
            &["pull", "--help"],
            &["<REF>", "<DIR>", "OCI image layout", "--digestfile <FILE>"],
        ),
        (
            &["unpack", "--help"],
            &["<SRC>", "<DIR>", "root filesystem"],
        ),
        (
            &["export", "--help"],
            &["<IMAGE>", "<DIR>", "Docker daemon", "--digestfile <FILE>"],
        ),
        (
            &["inspect", "--help"],
            &["<SRC>", "--raw", "--config", "--json"],
        ),
        (
            &["digest", "--help"],
            &["<SRC>", "crane digest", "--platform"],
        ),
        (
            &["delete", "--help"],
            &["<REF>", "skopeo delete", "every tag", "--creds"],
        ),
        (
            &["completions", "--help"],
            &["<SHELL>", "bash", "zsh", "fish"],
        ),
        (&["cache", "--help"], &["prune"]),
        (&["cache", "prune", "--help"], &["--all"]),
    ];
    let globals = [
        "--platform",
        "--compression",
        "--compression-level",
        "--chunk-size",
        "--concurrency",
        "--retries",
        "--retry-times",
        "--insecure-registry",
        "--tls-verify[=<BOOL>]",
        "--src-tls-verify[=<BOOL>]",
        "--dest-tls-verify[=<BOOL>]",
        "--authfile <FILE>",
        "REGISTRY_AUTH_FILE",
        "--cert-dir",
        "--creds",
        "--creds-stdin",
        "--progress",
        "--quiet",
        "--verbose",
        "--cache-dir",
        "HOIST_PLATFORM",
        "HOIST_COMPRESSION",
        "HOIST_CACHE_DIR",
        "HOIST_PROGRESS",
    ];
    for (args, wanted) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out.stdout);
        for w in wanted
            .iter()
            .chain(if args.len() == 1 { &globals[..] } else { &[] })
        {
            assert!(
                help.contains(w),
                "`hoist {}` lacks {w:?}:\n{help}",
                args.join(" ")
            );
        }
    }
    // The hidden developer command stays hidden.
    assert!(!text(&run(&["--help"]).stdout).contains("debug-progress"));
    // A command's own options come first; the forty global ones follow under their heading.
    let copy = text(&run(&["copy", "--help"]).stdout);
    let (own, global) = copy
        .split_once("Global options:")
        .expect("a global heading");
    assert!(
        own.contains("--all-tags") && !own.contains("--cache-dir"),
        "{copy}"
    );
    assert!(
        global.contains("--cache-dir") && !global.contains("--all-tags"),
        "{copy}"
    );
}

#[test]
fn version() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("hoist "));
}

/// Run, expect exit code 2 and a stderr mentioning `needle`, nothing on stdout.
fn usage_error(args: &[&str], needle: &str) {
    let out = run(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
}

/// A size set in the environment that hoist cannot read is named as the variable the user set,
/// not as a flag they never typed; on the command line, as the flag.
#[test]
fn a_bad_size_in_the_environment_names_its_variable() {
    for (var, args) in [
        ("HOIST_CHUNK_SIZE", &["tags", "localhost:5000/app"][..]),
        ("HOIST_MAX_LAYER_BYTES", &["unpack", "oci:/a:1", "/r"][..]),
    ] {
        let out = hoist(args).env(var, "lots").output().expect("run hoist");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(&format!("{var}=lots")), "{stderr}");
        assert!(!stderr.contains("--"), "names no flag: {stderr}");
    }
    usage_error(&["--chunk-size", "1k", "tags", "r/a"], "--chunk-size 1k");
}

/// An insecure registry host the registry client would refuse (it takes no `_`, no port 0
/// and none over 65535) is a usage error naming where it was set, not a run-time failure of
/// every registry command (exit 1, "invalid input: insecure host ...").
#[test]
fn an_insecure_host_the_client_refuses_is_a_usage_error_naming_its_source() {
    let out = hoist(&["tags", "localhost:5000/app"])
        .env("HOIST_INSECURE_REGISTRY", "ok.example,my_mirror:5000")
        .output()
        .expect("run hoist");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HOIST_INSECURE_REGISTRY (set in the environment)"),
        "{stderr}"
    );
    assert!(stderr.contains("my_mirror:5000"), "{stderr}");
    assert!(!stderr.contains("--"), "names no flag: {stderr}");
    usage_error(
        &["--insecure-registry", "reg:0", "tags", "r/a"],
        "--insecure-registry: invalid registry host \"reg:0\"",
    );
}

/// A read-only registry command keeps no upload state, so a cache directory that cannot be
/// made (`$XDG_CACHE_HOME/hoist` under a file) does not stop it: it gets as far as the
/// registry (here nothing listens) instead of failing on "is not a directory".
#[test]
fn a_read_only_command_does_not_need_a_usable_cache() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").expect("file");
    for args in [
        &["tags", "127.0.0.1:9/app"][..],
        &["digest", "127.0.0.1:9/app:1"],
        &["inspect", "docker://127.0.0.1:9/app:1"],
    ] {
        let out = hoist(&[&["--retries", "0"][..], args].concat())
            .env("XDG_CACHE_HOME", &file)
            .output()
            .expect("run hoist");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("not a directory"), "{args:?}: {stderr}");
        assert!(stderr.contains("127.0.0.1:9"), "{args:?}: {stderr}");
    }
}

#[test]
fn usage_errors_exit_2() {
    usage_error(&[], "Usage");
    usage_error(&["frobnicate"], "unrecognized subcommand");
    usage_error(&["copy", "oci:/a"], "<DST>");
    usage_error(&["copy", "nginx:1.25", "oci:/b"], "no transport");
    usage_error(
        &["copy", "docker://nginx", "s3:bucket"],
        "`s3:` is not one of",
    );
    usage_error(
        &["copy", "docker://nginx", "S3:bucket"],
        "unknown transport `S3:`",
    );
    usage_error(&["copy", "rootfs:/r", "oci:/b"], "destination only");
    usage_error(&["copy", "oci:/a:bad..tag", "oci:/b"], "invalid tag");
    usage_error(&["copy", "docker:reg/app", "oci:/b"], "docker://reg/app");
    usage_error(
        &["copy", "docker-archive:", "oci:/b"],
        "missing archive path",
    );
    usage_error(
        &["push", "app", "docker://Reg/App"],
        "invalid image reference",
    );
    usage_error(&["push", "app", "rootfs:/r"], "hoist copy");
    usage_error(&["--chunk-size", "lots", "push", "a", "r/a"], "not a size");
    usage_error(&["--compression", "brotli", "push", "a", "r/a"], "brotli");
    usage_error(&["--progress", "fancy", "push", "a", "r/a"], "fancy");
    usage_error(&["-q", "-v", "push", "a", "r/a"], "contradict");
    usage_error(&["inspect", "rootfs:/x"], "destination only");
    usage_error(&["digest", "docker-daemon:app"], "no manifest digest");
    usage_error(
        &["copy", "--digestfile", "d", "oci:/a", "rootfs:/r"],
        "--digestfile",
    );
    usage_error(
        &["unpack", "--digestfile", "d", "oci:/a", "/r"],
        "--digestfile",
    );
    usage_error(
        &["--authfile", "/nonexistent/auth.json", "tags", "r/a"],
        "/nonexistent/auth.json",
    );
    usage_error(&["--tls-verify=maybe", "tags", "r/a"], "maybe");
    usage_error(&["delete", "r/a"], "tag or digest");
    usage_error(&["completions", "tcsh"], "tcsh");
}

#[test]
fn options_come_from_environment_variables() {
    let out = hoist(&["push", "a", "r/a"])
        .env("HOIST_CHUNK_SIZE", "12 parsecs")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("HOIST_CHUNK_SIZE=12 parsecs"),
        "{}",
        text(&out.stderr)
    );

    let out = hoist(&["inspect", "oci:x"])
        .env("HOIST_PLATFORM", "linux")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--platform"));

    // Flag beats variable.
    let out = hoist(&[
        "--progress",
        "json",
        "debug-progress",
        "--layers",
        "1",
        "--size",
        "1k",
    ])
    .env("HOIST_PROGRESS", "plain")
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).starts_with('{'), "{}", text(&out.stderr));
}

#[test]
fn secrets_never_printed() {
    let out = hoist(&["--creds", "bob:hunter2", "--help"])
        .env("HOIST_CREDS", "alice:swordfish")
        .output()
        .expect("run");
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("swordfish"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");

    // --creds-stdin reads the password from stdin and never echoes it, even in an error.
    // (-q -v is checked after stdin is read, so hoist reads the password before failing.)
    let mut child = hoist(&[
        "--creds",
        "bob",
        "--creds-stdin",
        "-q",
        "-v",
        "inspect",
        "oci:x",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("correct horse"));
}

#[test]
fn plain_progress_is_one_line_per_state_change() {
    let out = run(&[
        "--progress",
        "plain",
        "--concurrency",
        "1",
        "debug-progress",
        "--layers",
        "4",
        "--size",
        "2MiB",
        "--speed",
        "40MiB",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in plain output: {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "push docker-daemon:simulated:latest -> docker://localhost:5000/simulated:latest"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("skipped (exists) (2.10 MB)")),
        "{stderr}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("mounted (2.10 MB)")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retrying in 2s because 502")),
        "{stderr}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with(" done (2.10 MB)"))
            .count(),
        2
    );
    // No state is reported twice in a row for a layer: one line per change.
    for w in lines.windows(2) {
        assert_ne!(w[0], w[1], "{stderr}");
    }
    let last = lines.last().expect("a last line");
    assert!(last.starts_with("finished in "), "{last}");
    assert!(last.contains("4/4 layers"), "{last}");
}

#[test]
fn json_progress_is_one_object_per_line() {
    let out = run(&[
        "--progress",
        "json",
        "debug-progress",
        "--layers",
        "3",
        "--size",
        "1MiB",
        "--speed",
        "20MiB",
        "--fail",
    ]);
    assert_eq!(out.status.code(), Some(1), "a simulated failure exits 1");
    let stderr = text(&out.stderr);
    // Every line, the error too: it is in the finish event, and not said again as text.
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event name"))
        .collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert_eq!(kinds.last(), Some(&"finish"));
    let finish = events.last().expect("finish");
    assert_eq!(finish["ok"], false);
    assert_eq!(
        finish["error"],
        "simulated push failed: the registry kept answering 503 Service Unavailable"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "layer").count(), 3);
    assert!(events.iter().any(|e| e["state"] == "failed"));
    let mut last_elapsed = 0.0;
    for e in &events {
        let elapsed = e["elapsed"].as_f64().expect("elapsed");
        assert!(elapsed >= last_elapsed, "elapsed goes forward");
        last_elapsed = elapsed;
        if e["event"] == "progress" {
            assert!(e["done"].as_u64().expect("done") <= e["total"].as_u64().expect("total"));
        }
    }
}

#[test]
fn quiet_prints_nothing_on_success() {
    let out = run(&["-q", "debug-progress", "--layers", "2", "--size", "1k"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn tty_mode_off_a_terminal_falls_back_to_plain() {
    let out = run(&[
        "--progress",
        "tty",
        "debug-progress",
        "--layers",
        "1",
        "--size",
        "1k",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(stderr.contains("finished in"), "{stderr}");
}

#[test]
fn completions_and_broken_pipe() {
    let out = run(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let script = text(&out.stdout);
    assert!(script.contains("hoist"), "{script}");
    assert!(script.contains("--chunk-size"));

    // A reader that goes away early is not an error.
    let mut child = hoist(&["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn cache_prune() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("uploads/x")).expect("mkdir");
    std::fs::write(cache.join("uploads/x/state"), b"0123456789").expect("write");
    std::fs::write(cache.join("notes.txt"), b"mine").expect("write");
    let out = hoist(&["cache", "prune"])
        .env("HOIST_CACHE_DIR", &cache)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 files, 10 B freed"),
        "{}",
        text(&out.stdout)
    );
    assert!(!cache.join("uploads").exists());
    assert!(cache.join("notes.txt").exists());

    // Something that is not hoist's cache is refused: exit 1, one clear line.
    std::fs::write(cache.join("exports"), b"not a dir").expect("write");
    let out = run(&[
        "--cache-dir",
        cache.to_str().expect("utf-8 path"),
        "cache",
        "prune",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("really hoist's cache"), "{stderr}");
    assert!(cache.join("exports").exists());
}

#[test]
fn boolean_variables_take_the_usual_spellings() {
    // HOIST_QUIET=1 used to be a usage error (only `true`/`false` were read).
    for (value, quiet) in [
        ("1", true),
        ("yes", true),
        ("true", true),
        ("0", false),
        ("off", false),
    ] {
        let out = hoist(&[
            "debug-progress",
            "--layers",
            "1",
            "--size",
            "1KiB",
            "--progress",
            "plain",
        ])
        .env("HOIST_QUIET", value)
        .output()
        .expect("run hoist");
        assert_eq!(out.status.code(), Some(0), "{value}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr).is_empty(),
            quiet,
            "{value}: {}",
            text(&out.stderr)
        );
    }
}
