//! Logging in: checking that a registry accepts credentials, and keeping them in an auth file
//! the way `podman login` and `docker login` do, so every later command finds them.
//!
//! The file is rewritten whole and atomically (a temporary file beside it, mode 0600, renamed
//! over it), and everything in it hoist does not manage (other registries, `credHelpers`,
//! settings of other tools) is kept as it was. A file that is not a JSON object is never
//! overwritten: the caller's other credentials may be in it. Two logins at once do not lose
//! either's entry: each reads and rewrites the file under a lock on its directory.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use http::Method;
use serde_json::{Map, Value};

use crate::client::{Client, Req};
use crate::credentials::{candidate_keys, helper_server};
use crate::{Credentials, Error, Result};

impl Client {
    /// Check that `registry` (`host[:port]` as in [`crate::Repo::registry`]) accepts the
    /// credentials this client has for it: `GET /v2/`, authenticating as the registry asks
    /// (Basic, or a Bearer token for no particular repository), as `docker login` checks before
    /// saving anything. A registry that asks for no authentication accepts anyone.
    ///
    /// # Errors
    /// [`crate::ErrorKind::RegistryRefused`] with status 401 when the credentials were refused;
    /// transport and protocol errors as for any request.
    pub async fn check_credentials(&self, registry: &str) -> Result<()> {
        let url = self.url(registry, "")?;
        let req = Req::new(Method::GET, url);
        self.execute_retrying(&req, registry, &[], &[], "logging in")
            .await
            .map(drop)
    }
}

/// Where [`store_credentials`] kept credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kept {
    /// In the auth file itself, under `auths`.
    File,
    /// With the credential helper the auth file names for the registry
    /// (`docker-credential-NAME store`), as `docker login` and `podman login` do.
    Helper(String),
}

/// Keep `credentials` in the auth file at `path` under `key` (`host[:port]`, or with a
/// namespace or repository, `host/team`, as `podman login host/team` does), replacing what was
/// there for that key. The file and its directory are created when missing (the directory
/// with mode 0700). When the file hands the registry to a credential helper (its
/// `credHelpers` entry, else `credsStore`), the helper keeps them instead (the password goes
/// to it on stdin, never in its arguments) and the file is left as it is. Blocking: from async
/// code, call it through `tokio::task::spawn_blocking`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for a file that is not an auth file's JSON, or a
/// namespace `key` whose registry has a helper (helpers keep one login per registry);
/// [`crate::ErrorKind::LocalIo`] when the file cannot be read or written, or the helper cannot
/// be run or fails (its message, the password never in it).
pub fn store_credentials(path: &Path, key: &str, credentials: &Credentials) -> Result<Kept> {
    let _lock = lock_dir(path, true)?;
    let mut file = read_object(path)?;
    let registry = key.split('/').next().unwrap_or(key);
    if let Some(helper) = helper_for(&file, registry) {
        if key != registry {
            return Err(Error::invalid(format!(
                "{} hands the credentials of {registry} to docker-credential-{helper}, which \
                 keeps one login per registry: log in to {registry} itself, or name another \
                 file with --authfile",
                path.display()
            )));
        }
        // Under the name lookups ask the helper for (Docker Hub's is its old index URL).
        let request = serde_json::json!({
            "ServerURL": helper_server(registry),
            "Username": credentials.username,
            "Secret": credentials.password.expose(),
        });
        let input = serde_json::to_vec(&request)
            .map_err(|e| Error::invalid(format!("encoding the helper's request: {e}")))?;
        let secret = credentials.password.expose();
        run_helper_action(&helper, "store", &input, Some(secret))?;
        // An older entry of the file for the registry would be read before a `credsStore`:
        // the new login replaces it, as docker's does.
        if remove_registry_entries(&mut file, path, registry)? {
            write_object(path, &file)?;
        }
        return Ok(Kept::Helper(helper));
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose()
    ));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(auth));
    auths_of(&mut file, path)?.insert(key.to_owned(), Value::Object(entry));
    write_object(path, &file)?;
    Ok(Kept::File)
}

/// Remove what the auth file at `path` holds under `key`, and what the credential helper it
/// names for `key`'s registry keeps for it (`docker-credential-NAME erase`); returns where
/// something was removed (empty: nothing was kept). With no `key` (`logout --all`), remove
/// every registry's credentials: the file's, keeping the rest of it; each `credHelpers`
/// helper's for its registry; and every login the `credsStore` lists (`list`), as `podman
/// logout --all` empties the helpers it is configured with. The file's settings naming the
/// helpers stay: they are configuration, not credentials.
///
/// # Errors
/// As [`store_credentials`]; a missing file holds nothing and is not an error. With no `key`,
/// a helper that cannot erase is warned about (`tracing`) and passed over.
pub fn remove_credentials(path: &Path, key: Option<&str>) -> Result<Vec<Kept>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let _lock = lock_dir(path, false)?;
    let mut file = read_object(path)?;
    let helper = key
        .filter(|k| !k.contains('/'))
        .and_then(|k| helper_for(&file, k).map(|h| (h, k)));
    // The file's own entries go first, whatever the helper then says: an entry left behind
    // would still be read.
    let removed = match (key, &helper) {
        (Some(_), Some((_, registry))) => remove_registry_entries(&mut file, path, registry)?,
        (Some(key), None) => auths_of(&mut file, path)?.remove(key).is_some(),
        (None, _) => {
            let auths = auths_of(&mut file, path)?;
            let had = !auths.is_empty();
            auths.clear();
            had
        }
    };
    let mut removed_from = Vec::new();
    if removed {
        write_object(path, &file)?;
        removed_from.push(Kept::File);
    }
    if let Some((helper, registry)) = helper
        && erase_with_helper(&helper, registry)?
    {
        removed_from.push(Kept::Helper(helper));
    }
    if key.is_none() {
        erase_every_helper(&file, &mut removed_from);
    }
    Ok(removed_from)
}

/// Erase what every helper the auth file names keeps (`logout --all`), noting each helper
/// that had something in `removed_from`. A helper that cannot erase (one that makes
/// credentials rather than keeping them, as `ecr-login` and `gcloud` do, or one not installed)
/// is warned about and passed over: the file's own credentials are gone either way.
fn erase_every_helper(file: &Map<String, Value>, removed_from: &mut Vec<Kept>) {
    let mut erasures: Vec<(String, String)> = Vec::new();
    if let Some(helpers) = file.get("credHelpers").and_then(Value::as_object) {
        for (key, helper) in helpers {
            let Some(helper) = helper.as_str().filter(|h| !h.is_empty()) else {
                continue;
            };
            let registry = registry_of_key(key);
            erasures.push((helper.to_owned(), helper_server(registry).to_owned()));
        }
    }
    if let Some(store) = file.get("credsStore").and_then(Value::as_str)
        && !store.is_empty()
    {
        match listed_servers(store) {
            Ok(servers) => erasures.extend(servers.into_iter().map(|s| (store.to_owned(), s))),
            Err(e) => tracing::warn!("docker-credential-{store}: its logins were left: {e}"),
        }
    }
    erasures.sort();
    erasures.dedup();
    for (helper, server) in erasures {
        match run_helper_action(&helper, "erase", server.as_bytes(), None) {
            Ok(_) => {
                let kept = Kept::Helper(helper);
                if !removed_from.contains(&kept) {
                    removed_from.push(kept);
                }
            }
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => tracing::warn!("docker-credential-{helper}: {server} was left: {e}"),
        }
    }
}

/// The servers a helper keeps logins for (`docker-credential-NAME list`: a JSON object of
/// server to user name).
fn listed_servers(helper: &str) -> Result<Vec<String>> {
    let out = run_helper_action(helper, "list", b"", None)?;
    let listed: Map<String, Value> = serde_json::from_slice(&out).map_err(|e| {
        Error::invalid(format!(
            "docker-credential-{helper} list printed no JSON object of servers: {e}"
        ))
    })?;
    Ok(listed.into_iter().map(|(server, _)| server).collect())
}

/// The registry (`host[:port]`) a `credHelpers` or `auths` key names: `host`,
/// `https://host/v1/` and the other spellings `docker login` has written.
fn registry_of_key(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Remove the `auths` entries that name `registry` itself (`host`, `https://host`, and the
/// other spellings lookups try; Docker Hub's aliases); whether there was one.
fn remove_registry_entries(
    file: &mut Map<String, Value>,
    path: &Path,
    registry: &str,
) -> Result<bool> {
    if !file.contains_key("auths") {
        return Ok(false);
    }
    let auths = auths_of(file, path)?;
    let mut removed = false;
    for key in candidate_keys(registry, None) {
        removed |= auths.remove(&key).is_some();
    }
    Ok(removed)
}

/// `docker-credential-NAME erase` for `registry`; whether it had credentials (a helper says it
/// had none with a failure whose message says "not found", as docker's helpers do).
fn erase_with_helper(helper: &str, registry: &str) -> Result<bool> {
    let server = helper_server(registry);
    match run_helper_action(helper, "erase", server.as_bytes(), None) {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().contains("not found") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Run `docker-credential-NAME ACTION` with `input` on stdin; what it printed. A failure says
/// what the helper printed (its first line, with `secret` blanked out should a helper echo it).
fn run_helper_action(
    helper: &str,
    action: &str,
    input: &[u8],
    secret: Option<&str>,
) -> Result<Vec<u8>> {
    use std::process::{Command, Stdio};
    let program = crate::credentials::helper_program(helper)?;
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::local(format!("running {program} {action}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| Error::local(format!("writing to {program} {action}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::local(format!("running {program} {action}"), e))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let said = [&out.stdout, &out.stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    let said = first_line_blanked(&said, secret);
    Err(Error::local(
        format!("{program} {action} failed ({})", out.status),
        std::io::Error::other(said),
    ))
}

/// The first line of what a helper said, at most 300 characters, with `secret` blanked out
/// (before cutting, so no piece of it is left) as written and as JSON escapes it.
fn first_line_blanked(said: &str, secret: Option<&str>) -> String {
    let mut said = said.to_owned();
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        said = said.replace(secret, "***");
        let quoted = serde_json::to_string(secret).unwrap_or_default();
        if let Some(escaped) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            said = said.replace(escaped, "***");
        }
    }
    said.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// The credential helper an auth file names for `registry`, when it names one: its
/// `credHelpers` entry, else its `credsStore`.
fn helper_for(file: &Map<String, Value>, registry: &str) -> Option<String> {
    // Under any of the names lookups try for the registry, as they find it.
    let named = file
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| {
            candidate_keys(registry, None)
                .iter()
                .find_map(|k| helpers.get(k))
        })
        .and_then(Value::as_str);
    let store = file.get("credsStore").and_then(Value::as_str);
    named.or(store).filter(|h| !h.is_empty()).map(str::to_owned)
}

/// The `auths` object of an auth file, created when missing.
fn auths_of<'a>(
    file: &'a mut Map<String, Value>,
    path: &Path,
) -> Result<&'a mut Map<String, Value>> {
    file.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: `auths` is not a JSON object; fix or move the file first",
                path.display()
            ))
        })
}

/// The auth file's JSON object; an empty one when the file is not there.
fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(Error::local(format!("reading {}", path.display()), e)),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::invalid(format!(
            "{} is not an auth file (not a JSON object); hoist leaves it as it is: fix or move \
             it first",
            path.display()
        ))),
    }
}

/// The directory `path` is in.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An exclusive lock on the directory of `path` (created with mode 0700 when `create` and
/// missing), held while the file is read and replaced, so that a concurrent login's entry is
/// not lost: the file itself is replaced by a rename, so it cannot hold the lock. Where the
/// filesystem cannot lock a directory (NFS may refuse), the file is still replaced atomically.
fn lock_dir(path: &Path, create: bool) -> Result<Option<std::fs::File>> {
    let dir = dir_of(path);
    if create && !dir.exists() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Error::local(format!("creating the directory of {}", path.display()), e)
            })?;
    }
    let Ok(handle) = std::fs::File::open(dir) else {
        return Ok(None);
    };
    Ok(handle.lock().ok().map(|()| handle))
}

/// Write `file` to `path` atomically: a temporary file in the same directory (mode 0600, as
/// it holds passwords), flushed to disk, then renamed over `path`.
fn write_object(path: &Path, file: &Map<String, Value>) -> Result<()> {
    let local =
        |what: &str, e: std::io::Error| Error::local(format!("{what} {}", path.display()), e);
    let dir = dir_of(path);
    let mut text = serde_json::to_vec_pretty(file)
        .map_err(|e| Error::invalid(format!("encoding {}: {e}", path.display())))?;
    text.push(b'\n');
    // tempfile creates with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth.json.")
        .tempfile_in(dir)
        .map_err(|e| local("creating a temporary file beside", e))?;
    tmp.write_all(&text)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| local("writing", e))?;
    tmp.persist(path).map_err(|e| local("replacing", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn json(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
    }

    #[test]
    fn a_helper_echoing_the_password_never_shows_it() {
        let secret = "p\"w\\x/y";
        let raw = format!("bad {secret} here\nsecond line {secret}");
        assert_eq!(first_line_blanked(&raw, Some(secret)), "bad *** here");
        // As a JSON string: {"Secret":"p\"w\\x/y"}.
        let json = serde_json::json!({ "Secret": secret }).to_string();
        let shown = first_line_blanked(&json, Some(secret));
        assert_eq!(shown, r#"{"Secret":"***"}"#);
        // Cut at 300 characters only after blanking, so no piece of the secret is left.
        let long = format!("{}{secret}", "x".repeat(297));
        assert_eq!(
            first_line_blanked(&long, Some(secret)),
            format!("{}***", "x".repeat(297))
        );
        assert_eq!(first_line_blanked("nothing said", None), "nothing said");
    }

    #[test]
    fn stored_credentials_are_found_and_the_rest_of_the_file_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("containers/auth.json");
        let creds = Credentials::new("deploy", "pw:with:colons");
        store_credentials(&path, "reg.example:5000/team", &creds).expect("store");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        // Another tool's settings and another registry's entry survive a second login.
        let mut v = json(&path);
        v["auths"]["other.example"] = serde_json::json!({"auth": "eDp5"});
        v["psFormat"] = serde_json::json!("table");
        std::fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write");
        store_credentials(&path, "reg.example:5000", &Credentials::new("u", "p")).expect("store");
        let v = json(&path);
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
        let auth = v["auths"]["reg.example:5000/team"]["auth"]
            .as_str()
            .expect("auth");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .expect("base64");
        assert_eq!(decoded, b"deploy:pw:with:colons");
        assert!(v["auths"]["reg.example:5000"].is_object());
        // Nothing else is left in the directory (no temporary file).
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["auth.json"]);
    }

    #[tokio::test]
    async fn what_was_stored_is_what_a_lookup_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.json");
        store_credentials(&path, "reg.example/team", &Credentials::new("t", "pw1")).expect("store");
        store_credentials(&path, "reg.example", &Credentials::new("r", "pw2")).expect("store");
        let files = [path.clone()];
        let found = |repo: &'static str| {
            let files = files.clone();
            async move {
                let (c, _) = crate::credentials::from_auth_files(&files, "reg.example", Some(repo))
                    .await
                    .expect("ok")
                    .expect("found");
                (c.username, c.password.expose().to_owned())
            }
        };
        assert_eq!(found("team/app").await, ("t".into(), "pw1".into()));
        assert_eq!(found("else/app").await, ("r".into(), "pw2".into()));
    }

    #[test]
    fn logout_removes_one_entry_or_all_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.json");
        assert!(
            remove_credentials(&path, Some("reg.example"))
                .expect("no file")
                .is_empty()
        );
        assert!(!path.exists(), "a logout creates no file");
        store_credentials(&path, "reg.example", &Credentials::new("u", "p")).expect("store");
        store_credentials(&path, "b.example", &Credentials::new("u", "p")).expect("store");
        let mut v = json(&path);
        // A helper that is not installed: `logout --all` warns and goes on.
        v["credHelpers"] = serde_json::json!({"gcr.io": "hoist-test-not-installed"});
        std::fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write");
        assert_eq!(
            remove_credentials(&path, Some("reg.example")).expect("remove"),
            [Kept::File]
        );
        assert!(
            remove_credentials(&path, Some("reg.example"))
                .expect("again")
                .is_empty()
        );
        let v = json(&path);
        assert!(v["auths"].get("reg.example").is_none());
        assert!(v["auths"]["b.example"].is_object());
        assert_eq!(remove_credentials(&path, None).expect("all"), [Kept::File]);
        let v = json(&path);
        assert_eq!(v["auths"], serde_json::json!({}));
        assert_eq!(v["credHelpers"]["gcr.io"], "hoist-test-not-installed");
    }

    #[test]
    fn logins_at_the_same_time_keep_every_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("containers/auth.json");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..10 {
                        let key = format!("reg{t}-{i}.example");
                        store_credentials(path, &key, &Credentials::new("u", "p")).expect("store");
                    }
                });
            }
        });
        let auths = json(&path)["auths"].as_object().expect("auths").len();
        assert_eq!(auths, 40, "a login's entry was lost to another's");
    }

    #[test]
    fn a_file_that_is_not_an_auth_file_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = Credentials::new("u", "p");
        for text in ["[1, 2]", "{not json", r#"{"auths": 3}"#] {
            let path = dir.path().join("auth.json");
            std::fs::write(&path, text).expect("write");
            let err = store_credentials(&path, "reg.example", &creds).expect_err(text);
            assert!(err.is_invalid_input(), "{text}: {err}");
            assert!(err.to_string().contains("auth.json"), "{err}");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
            assert!(remove_credentials(&path, None).is_err(), "{text}");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        }
        // A registry with a helper: a namespace cannot be kept apart by it, and a helper that
        // is not installed fails naming it; the file is never written to instead.
        let path = dir.path().join("helper.json");
        let text = r#"{"credHelpers":{"reg.example":"pass"}}"#;
        std::fs::write(&path, text).expect("write");
        let err = store_credentials(&path, "reg.example/team", &creds).expect_err("helper");
        assert!(err.is_invalid_input(), "{err}");
        assert!(err.to_string().contains("docker-credential-pass"), "{err}");
        let text = r#"{"credsStore":"hoist-not-installed"}"#;
        std::fs::write(&path, text).expect("write");
        let err = store_credentials(&path, "reg.example", &creds).expect_err("store");
        assert!(
            err.to_string()
                .contains("docker-credential-hoist-not-installed store"),
            "{err}"
        );
        assert!(!err.to_string().contains(creds.password.expose()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        let err = remove_credentials(&path, Some("reg.example")).expect_err("erase");
        assert!(err.to_string().contains("erase"), "{err}");
    }
}
