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

/// A registry that takes `USER` / `PASSWORD` by Basic auth; `None` (after a loud `SKIP:`, a
/// failure under `CI=true`) without `docker-registry`.
fn basic_auth_registry() -> Option<Registry> {
    if !require_tool("docker-registry") {
        return None;
    }
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry");
    Some(registry)
}

#[test]
fn login_keeps_accepted_credentials_where_every_command_finds_them() {
    let Some(registry) = basic_auth_registry() else {
        return;
    };
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

/// A credential helper speaking docker's protocol (`store`, `get`, `erase`, `list`), keeping one
/// registry's entry as a file in `dir/kept` and answering only for the server it was stored
/// under; installed as `docker-credential-hoisttest` in `dir`, which goes first on `PATH`.
fn install_helper(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let script = r#"#!/bin/sh
kept="$(dirname "$0")/kept"
case "$1" in
store) cat > "$kept" ;;
list)
    if [ -f "$kept" ]; then
        server=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$kept")
        printf '{"%s":"someone"}\n' "$server"
    else
        echo '{}'
    fi ;;
get|erase)
    read -r server || true
    if [ ! -f "$kept" ] || ! grep -qF "\"ServerURL\":\"$server\"" "$kept"; then
        echo "credentials not found in native keychain"; exit 1
    fi
    if [ "$1" = get ]; then cat "$kept"; else rm "$kept"; fi ;;
*) echo "unknown action $1"; exit 1 ;;
esac
"#;
    let path = dir.join("docker-credential-hoisttest");
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn login_and_logout_go_through_the_credential_helper_the_file_names() {
    let Some(registry) = basic_auth_registry() else {
        return;
    };
    let host = registry.host();
    let scene = Scene::new(53);
    let helpers = scene.tmp.path().join("helpers");
    std::fs::create_dir_all(&helpers).expect("helpers dir");
    install_helper(&helpers);
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let file = scene.tmp.path().join("docker/config.json");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("config dir");
    let before = format!(r#"{{"credHelpers":{{"https://{host}":"hoisttest"}}}}"#);
    std::fs::write(&file, &before).expect("config");
    let authfile = file.to_str().expect("utf-8");
    let with_helpers = |args: &[&str]| {
        let mut cmd = scene.hoist(&["--authfile", authfile]);
        cmd.args(args).env("PATH", &path);
        cmd
    };
    let kept = helpers.join("kept");

    // Refused: the helper is never asked to keep anything.
    let login = ["login", "-u", USER, "--password-stdin", &host];
    let out = with_stdin(&mut with_helpers(&login), &format!("{WRONG}\n"));
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(!kept.exists());

    // Accepted: the helper keeps them (the password reached it on stdin), the file is as it
    // was, and a push finds them through the helper.
    let out = with_stdin(&mut with_helpers(&login), &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        all(&out).contains("by docker-credential-hoisttest"),
        "{}",
        all(&out)
    );
    assert!(!all(&out).contains(PASSWORD));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kept).expect("kept by the helper")).expect("json");
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), before);
    let source = common::arg(&scene.source, ":v1");
    let team = format!("{host}/team/app:1");
    let out = with_helpers(&["-q", "push", &source, &team])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // A namespace cannot be kept apart by a helper: refused, nothing changed.
    let namespaced = [
        "login",
        "-u",
        USER,
        "--password-stdin",
        &team[..team.len() - 6],
    ];
    let out = with_stdin(&mut with_helpers(&namespaced), &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("one login per registry"),
        "{}",
        all(&out)
    );

    // Logout erases the helper's entry; the push is anonymous again, and refused.
    let out = with_helpers(&["logout", &host]).output().expect("logout");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        all(&out).contains("from docker-credential-hoisttest"),
        "{}",
        all(&out)
    );
    assert!(!kept.exists(), "the helper still keeps them");
    let out = with_helpers(&["-q", "push", &source, &team])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let out = with_helpers(&["logout", &host]).output().expect("logout");
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing left to remove: {}",
        all(&out)
    );

    // With `credsStore`, an old entry of the file would be read before the store: the login
    // replaces it, and the push uses the new credentials.
    let stale = base64_auth(USER, WRONG);
    std::fs::write(
        &file,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{stale}"}}}},"credsStore":"hoisttest"}}"#),
    )
    .expect("config");
    let out = with_stdin(&mut with_helpers(&login), &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(kept.exists());
    assert!(
        json(&file)["auths"].get(&host).is_none(),
        "the old entry stayed"
    );
    assert_eq!(json(&file)["credsStore"], "hoisttest");
    let out = with_helpers(&["-q", "push", &source, &team])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // `logout --all` empties the store too (every login its `list` names), and keeps the
    // setting that names it.
    let out = with_helpers(&["logout", "--all"]).output().expect("logout");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!kept.exists(), "the store still keeps them");
    assert!(
        all(&out).contains("docker-credential-hoisttest"),
        "{}",
        all(&out)
    );
    assert_eq!(json(&file)["credsStore"], "hoisttest");
    let out = with_helpers(&["-q", "push", &source, &team])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));

    // And each `credHelpers` helper's login for its registry.
    std::fs::write(&file, &before).expect("config");
    let out = with_stdin(&mut with_helpers(&login), &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(kept.exists());
    let out = with_helpers(&["logout", "--all"]).output().expect("logout");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!kept.exists(), "the helper still keeps them");
    assert_eq!(std::fs::read_to_string(&file).expect("file"), before);
}

/// The `auth` value of an auth file entry.
fn base64_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// skopeo's `--src-no-creds` / `--dest-no-creds`: the side named is spoken to without the
/// login every other command finds, so a registry that requires one refuses it.
#[test]
fn no_creds_speaks_to_one_side_without_the_login_kept_for_it() {
    let Some(registry) = basic_auth_registry() else {
        return;
    };
    let host = registry.host();
    let scene = Scene::new(57);
    let out = scene.login(&host, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let pushed = format!("docker://{host}/team/app:1");
    let out = scene.push(&pushed);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // Pulled with the kept login, then refused without it.
    let copy = |flags: &[&str], dir: &str| {
        let mut args = flags.to_vec();
        let to = common::arg(&scene.tmp.path().join(dir), ":1");
        args.extend(["-q", "copy", &pushed, &to]);
        scene.run(&args)
    };
    let out = copy(&[], "with-login");
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let out = copy(&["--src-no-creds"], "without");
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("authentication required"),
        "{}",
        all(&out)
    );

    // Pushed without it: refused too; the same push with the login goes through.
    let source = common::arg(&scene.source, ":v1");
    let out = scene.run(&[
        "-q",
        "--dest-no-creds",
        "push",
        &source,
        &format!("{host}/team/b:1"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let out = scene.run(&["-q", "push", &source, &format!("{host}/team/b:1")]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}
