//! `hoist login` and `hoist logout` against real registries (htpasswd Basic auth, and token
//! auth through a token server): credentials the registry refuses are never kept, accepted ones
//! land in podman's auth.json (or `--authfile`) where every later command finds them, for a
//! registry or one namespace, and no password is printed. Missing components print `SKIP:`
//! (and fail under `CI=true`).

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
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

/// A test's scratch space: hoist's cache, podman's runtime directory (its auth file `file`),
/// and an OCI layout `source` with one small image tagged `v1`.
struct Scene {
    tmp: tempfile::TempDir,
    cache: PathBuf,
    runtime: PathBuf,
    file: PathBuf,
    source: PathBuf,
}

impl Scene {
    fn new(seed: u64) -> Scene {
        let tmp = tempfile::tempdir().expect("tempdir");
        let runtime = tmp.path().join("runtime");
        let source = tmp.path().join("source");
        let spec = ImageSpec::uniform(1, 20_000, Compression::Gzip, seed);
        write_oci_layout(&source, "v1", &spec).expect("layout");
        Scene {
            cache: tmp.path().join("cache"),
            file: runtime.join("containers/auth.json"),
            runtime,
            source,
            tmp,
        }
    }

    fn hoist(&self, args: &[&str]) -> Command {
        hoist(&self.cache, &self.runtime, args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.hoist(args).output().expect("run hoist")
    }

    fn login(&self, server: &str, password: &str) -> Output {
        let args = ["login", "-u", USER, "--password-stdin", server];
        with_stdin(&mut self.hoist(&args), &format!("{password}\n"))
    }

    /// Push the source image to `target` with whatever credentials the auth files give.
    fn push(&self, target: &str) -> Output {
        let source = common::arg(&self.source, ":v1");
        self.run(&["-q", "push", &source, target])
    }
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
    let scene = Scene::new(43);
    let file = &scene.file;
    let team = format!("{host}/team/app:1");

    // Refused: exit 1, nothing kept, the password nowhere in the output.
    let out = scene.login(&host, WRONG);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("refused the credentials"),
        "{}",
        all(&out)
    );
    assert!(!all(&out).contains(WRONG));
    assert!(!file.exists(), "refused credentials were kept");
    assert_eq!(
        scene.push(&team).status.code(),
        Some(1),
        "anonymous push refused"
    );

    // Accepted: kept in podman's file with mode 0600, and the push finds them there.
    let out = scene.login(&host, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!all(&out).contains(PASSWORD));
    assert!(
        all(&out).contains(&file.display().to_string()),
        "{}",
        all(&out)
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(file).expect("kept").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(json(file)["auths"][&host].is_object());
    let out = scene.push(&team);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // A login for one namespace is kept apart, and answers for that namespace alone.
    let namespace = format!("{host}/other");
    let other = format!("{namespace}/app:1");
    let out = scene.login(&namespace, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // Logout of the registry: its entry goes, the namespace's stays; a second time is an error.
    let out = scene.run(&["logout", &host]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(json(file)["auths"].get(&host).is_none());
    assert!(json(file)["auths"][&namespace].is_object());
    assert_eq!(
        scene.push(&team).status.code(),
        Some(1),
        "team/ had the registry's"
    );
    let out = scene.push(&other);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let out = scene.run(&["logout", &host]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(all(&out).contains("keeps no credentials"), "{}", all(&out));
    let out = scene.run(&["logout", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(json(file)["auths"], serde_json::json!({}));
    assert_eq!(scene.push(&other).status.code(), Some(1), "logged out");

    // --authfile names the file instead, created on login.
    let named = scene.tmp.path().join("ci/auth.json");
    let args = [
        "--authfile",
        named.to_str().expect("utf-8"),
        "login",
        "--username",
        USER,
        "--password-stdin",
        &format!("docker://{host}/"),
    ];
    let out = with_stdin(&mut scene.hoist(&args), &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(json(&named)["auths"][&host].is_object());
    assert_eq!(json(file)["auths"], serde_json::json!({}));
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
    let scene = Scene::new(47);
    let out = scene.login(&host, WRONG);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(!scene.file.exists());
    let out = scene.login(&host, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    for t in tokens.tokens() {
        assert!(!all(&out).contains(&t), "a token was printed");
    }
    // The kept credentials get a token for a repository: a push (anonymous, refused) works.
    let out = scene.push(&format!("{host}/team/app:1"));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}
