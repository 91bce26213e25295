//! `hoist login` and `hoist logout` against real registries (htpasswd Basic auth, and token
//! auth through a token server): credentials the registry refuses are never kept, accepted ones
//! land in podman's auth.json (or `--authfile`) where every later command finds them, for a
//! registry or one namespace, and no password is printed. Missing components print `SKIP:`
//! (and fail under `CI=true`).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Registry, TokenServer, require_tool};

use common::text;

const USER: &str = "deploy";
const PASSWORD: &str = "Login-pw-8d31c0";
const WRONG: &str = "Not-the-pw-5e7a12";

/// hoist with podman's runtime directory at `runtime` and no docker config.
fn hoist(cache: &Path, runtime: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.env("XDG_RUNTIME_DIR", runtime).args(args);
    cmd
}

/// Run `cmd` with `input` on stdin; its output.
fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for hoist")
}

fn all(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// What the auth file holds, as JSON.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("auth file")).expect("json")
}

fn login(cache: &Path, runtime: &Path, server: &str, password: &str) -> Output {
    with_stdin(
        &mut hoist(
            cache,
            runtime,
            &["login", "-u", USER, "--password-stdin", server],
        ),
        &format!("{password}\n"),
    )
}

#[test]
fn login_keeps_accepted_credentials_where_every_command_finds_them() {
    if !require_tool("docker-registry") {
        return;
    }
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let runtime = tmp.path().join("runtime");
    let file = runtime.join("containers/auth.json");
    let source = tmp.path().join("source");
    write_oci_layout(
        &source,
        "v1",
        &ImageSpec::uniform(1, 20_000, Compression::Gzip, 43),
    )
    .expect("layout");
    let push = || {
        hoist(
            &cache,
            &runtime,
            &[
                "-q",
                "push",
                &common::arg(&source, ":v1"),
                &format!("{host}/team/app:1"),
            ],
        )
        .output()
        .expect("run hoist")
    };

    // Refused: exit 1, nothing kept, the password nowhere in the output.
    let out = login(&cache, &runtime, &host, WRONG);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("refused the credentials"),
        "{}",
        all(&out)
    );
    assert!(!all(&out).contains(WRONG));
    assert!(!file.exists(), "refused credentials were kept");
    assert_eq!(push().status.code(), Some(1), "anonymous push refused");

    // Accepted: kept in podman's file with mode 0600, and the push finds them there.
    let out = login(&cache, &runtime, &host, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!all(&out).contains(PASSWORD));
    assert!(
        all(&out).contains(&file.display().to_string()),
        "{}",
        all(&out)
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).expect("kept").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(json(&file)["auths"][&host].is_object());
    let out = push();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // A login for one namespace is kept apart, and answers for that namespace alone.
    let namespace = format!("{host}/other");
    let out = login(&cache, &runtime, &namespace, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let push_other = || {
        hoist(
            &cache,
            &runtime,
            &[
                "-q",
                "push",
                &common::arg(&source, ":v1"),
                &format!("{namespace}/app:1"),
            ],
        )
        .output()
        .expect("run hoist")
    };

    // Logout of the registry: its entry goes, the namespace's stays; a second time is an error.
    let out = hoist(&cache, &runtime, &["logout", &host])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(json(&file)["auths"].get(&host).is_none());
    assert!(json(&file)["auths"][&namespace].is_object());
    assert_eq!(push().status.code(), Some(1), "team/ had the registry's");
    let out = push_other();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let out = hoist(&cache, &runtime, &["logout", &host])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(all(&out).contains("keeps no credentials"), "{}", all(&out));
    let out = hoist(&cache, &runtime, &["logout", "--all"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(json(&file)["auths"], serde_json::json!({}));
    assert_eq!(push_other().status.code(), Some(1), "logged out");

    // --authfile names the file instead, created on login.
    let named = tmp.path().join("ci/auth.json");
    let out = with_stdin(
        &mut hoist(
            &cache,
            &runtime,
            &[
                "--authfile",
                named.to_str().expect("utf-8"),
                "login",
                "--username",
                USER,
                "--password-stdin",
                &format!("docker://{host}/"),
            ],
        ),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(json(&named)["auths"][&host].is_object());
    assert_eq!(json(&file)["auths"], serde_json::json!({}));
}

#[test]
fn login_to_a_token_registry_is_checked_by_the_token_server() {
    if !require_tool("docker-registry") {
        return;
    }
    let tokens = TokenServer::builder()
        .user(USER, PASSWORD)
        .grant(USER, "team/*", &["pull", "push"])
        .start()
        .expect("token server");
    let registry = Registry::builder()
        .token_auth(&tokens.auth())
        .start()
        .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let runtime = tmp.path().join("runtime");
    let file = runtime.join("containers/auth.json");
    let out = login(&cache, &runtime, &host, WRONG);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(!file.exists());
    let out = login(&cache, &runtime, &host, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    for t in tokens.tokens() {
        assert!(!all(&out).contains(&t), "a token was printed");
    }
    // The kept credentials get a token for a repository: a push (anonymous, refused) works.
    let source = tmp.path().join("source");
    write_oci_layout(
        &source,
        "v1",
        &ImageSpec::uniform(1, 20_000, Compression::Gzip, 47),
    )
    .expect("layout");
    let out = hoist(
        &cache,
        &runtime,
        &[
            "-q",
            "push",
            &common::arg(&source, ":v1"),
            &format!("{host}/team/app:1"),
        ],
    )
    .output()
    .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}
