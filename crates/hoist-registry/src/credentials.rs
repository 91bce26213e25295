//! Registry credentials: given by the caller or read from a docker `config.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::{Error, Result, Secret};

mod helper;
pub(crate) use helper::helper_program;
use helper::run_helper;

/// A user name and password, or an identity token, for one registry.
///
/// An identity token (`identitytoken` in an auth file, or a credential helper's answer for the
/// user `<token>`, as `az acr login` and docker's OAuth logins leave them) is an OAuth2
/// refresh token: it is exchanged at the registry's token server for access tokens
/// (`grant_type=refresh_token`), as docker and containers/image do, and never goes out as a
/// password. `Debug` prints neither the password nor the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (not secret, may appear in logs).
    pub username: String,
    /// The password (empty for credentials that are an identity token alone).
    pub password: Secret,
    /// The OAuth2 refresh token, kept apart from the password because it is sent differently.
    identity_token: Option<Secret>,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    /// Credentials that are an identity token (an OAuth2 refresh token) for `username`, which
    /// is shown in messages but not sent: the token server is asked for access tokens with
    /// the token alone.
    pub fn with_identity_token(username: impl Into<String>, token: impl Into<Secret>) -> Self {
        Credentials {
            username: username.into(),
            password: Secret::default(),
            identity_token: Some(token.into()),
        }
    }

    /// The identity token (OAuth2 refresh token), when these credentials are one.
    pub fn identity_token(&self) -> Option<&Secret> {
        self.identity_token.as_ref()
    }

    /// Whether there is a password to send with `Basic`: not for credentials that are an
    /// identity token alone (a refresh token is no password).
    pub(crate) fn has_password(&self) -> bool {
        self.identity_token.is_none() || !self.password.is_empty()
    }

    /// The `Authorization: Basic ...` header value, unless these credentials are an identity
    /// token alone.
    pub(crate) fn basic_header(&self) -> Option<String> {
        self.has_password()
            .then(|| format!("Basic {}", self.basic_value()))
    }

    /// The base64 `user:password` of a `Basic` header.
    pub(crate) fn basic_value(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

/// The user name a credential helper answers with when its secret is an identity token.
const IDENTITY_TOKEN_USER: &str = "<token>";

/// The parts of a docker `config.json` hoist reads.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(***)")
    }
}

/// The docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config_path() -> Option<PathBuf> {
    config_path_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
}

fn config_path_from(
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(dir) = docker_config.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The files credentials are looked for in when the caller names none, in the order skopeo
/// and podman read them (containers-auth.json(5)); the first with an entry for a registry
/// answers for it:
///
/// 1. the file `podman login` and `skopeo login` write: `$XDG_RUNTIME_DIR/containers/auth.json`,
///    or `/run/containers/UID/auth.json` when that variable is unset;
/// 2. `$XDG_CONFIG_HOME/containers/auth.json` (by default `~/.config/containers/auth.json`);
/// 3. docker's config, [`default_docker_config_path`].
///
/// Files that are not there are skipped when looking; they are listed all the same.
pub fn default_auth_files() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    // The XDG base directory spec: a relative path in these variables is to be ignored.
    let xdg = |name: &str| var(name).filter(|v| Path::new(v).is_absolute());
    #[cfg(target_os = "linux")]
    let uid = Some(rustix::process::getuid().as_raw());
    #[cfg(not(target_os = "linux"))]
    let uid = None;
    auth_files_from(
        &AuthEnv {
            xdg_runtime_dir: xdg("XDG_RUNTIME_DIR"),
            xdg_config_home: xdg("XDG_CONFIG_HOME"),
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
        },
        uid,
    )
}

/// The environment [`default_auth_files`] reads, each variable only when set and not empty.
struct AuthEnv {
    xdg_runtime_dir: Option<std::ffi::OsString>,
    xdg_config_home: Option<std::ffi::OsString>,
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
}

fn auth_files_from(env: &AuthEnv, uid: Option<u32>) -> Vec<PathBuf> {
    let containers = |dir: PathBuf| dir.join("containers").join("auth.json");
    let mut files: Vec<PathBuf> = match (&env.xdg_runtime_dir, uid) {
        (Some(dir), _) => vec![containers(PathBuf::from(dir))],
        (None, Some(uid)) => vec![PathBuf::from(format!("/run/containers/{uid}/auth.json"))],
        (None, None) => Vec::new(),
    };
    let config_home = match (&env.xdg_config_home, &env.home) {
        (Some(dir), _) => Some(PathBuf::from(dir)),
        (None, Some(home)) => Some(PathBuf::from(home).join(".config")),
        (None, None) => None,
    };
    files.extend(config_home.map(containers));
    files.extend(config_path_from(
        env.docker_config.clone(),
        env.home.clone(),
    ));
    files.dedup();
    files
}

/// Keys under which an auth file may store credentials for `repo` on `registry`
/// (`host[:port]`), the most specific first. A containers auth.json may name a repository or a
/// namespace as well as a registry (`quay.io/team/app`, `quay.io/team`; containers-auth.json(5));
/// then come the registry's own keys, in the forms `docker login` has written over the years.
/// Docker Hub's entries are under `docker.io` (podman) or its old index URL (docker), whatever
/// host the API is on.
pub(crate) fn candidate_keys(registry: &str, repo: Option<&str>) -> Vec<String> {
    let hub = is_docker_hub(registry);
    let host = if hub { "docker.io" } else { registry };
    let mut keys = Vec::new();
    let mut path = repo.filter(|r| !r.is_empty());
    while let Some(p) = path {
        keys.push(format!("{host}/{p}"));
        path = p.rsplit_once('/').map(|(parent, _)| parent);
    }
    keys.extend([
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]);
    if hub {
        keys.extend(["docker.io".to_owned(), "https://index.docker.io/v1/".into()]);
    }
    keys
}

/// Whether `registry` is Docker Hub, which docker files under its old index URL.
fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    )
}

/// The server name a credential helper is asked for: what `docker login` stored the entry
/// under, which for Docker Hub is its old index URL, not the API host.
pub(crate) fn helper_server(registry: &str) -> &str {
    if is_docker_hub(registry) {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

/// Look up credentials for `registry` in the docker config at `path`. A missing file means no
/// credentials; a malformed one is an error (silently pushing anonymously would confuse).
#[cfg(test)]
async fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    lookup(path, registry, None, None).await
}

/// Look up credentials for `repo` (or for the registry as a whole) on `registry` in each of
/// `files` in turn: the first with an entry that applies answers, as in skopeo, even when a
/// later file has a more specific one, and is named with them. Missing files are skipped; a
/// malformed one is an error.
pub(crate) async fn from_auth_files(
    files: &[PathBuf],
    registry: &str,
    repo: Option<&str>,
) -> Result<Option<(Credentials, PathBuf)>> {
    for file in files {
        if let Some(found) = lookup(file, registry, repo, None).await? {
            return Ok(Some((found, file.clone())));
        }
    }
    Ok(None)
}

/// Look up credentials for `repo` on `registry` in the auth file at `path`, finding credential
/// helpers on `helper_path` (else `PATH`). A credential helper named for the registry answers
/// first, then the most specific `auths` entry, then the file's default store. A missing file
/// means none; a malformed one is an error.
async fn lookup(
    path: &Path,
    registry: &str,
    repo: Option<&str>,
    helper_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>> {
    let text = match tokio::fs::read(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::local(format!("reading {}", path.display()), e)),
    };
    let config: DockerConfig = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(format!(
            "{} is not a valid auth file: not the JSON of a docker config.json or a \
             containers auth.json (line {})",
            path.display(),
            e.line()
        ))
    })?;
    let keys = candidate_keys(registry, repo);
    let registry_keys = candidate_keys(registry, None);
    if let Some(helper) = registry_keys
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
    {
        return run_helper(helper, helper_server(registry), helper_path).await;
    }
    for key in &keys {
        if let Some(entry) = entry_for(&config.auths, key)
            && let Some(c) = decode_entry(entry).map_err(|problem| {
                Error::invalid(format!(
                    "{}: the `auth` entry for {key} {problem}",
                    path.display()
                ))
            })?
        {
            return Ok(Some(c));
        }
    }
    if let Some(store) = &config.creds_store {
        return run_helper(store, helper_server(registry), helper_path).await;
    }
    Ok(None)
}

/// The `auths` entry under `key`: the one spelled so, else one whose host is in another case
/// (host names are not case-sensitive, and the rest of a key, a repository path or a URL's
/// scheme, is in lowercase): `hoist login` keeps a host in lowercase, docker as typed.
fn entry_for<'a>(auths: &'a BTreeMap<String, AuthEntry>, key: &str) -> Option<&'a AuthEntry> {
    auths.get(key).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, entry)| entry)
    })
}

/// The credentials of one `auths` entry, or what is wrong with its `auth` value.
fn decode_entry(entry: &AuthEntry) -> std::result::Result<Option<Credentials>, &'static str> {
    let identity = entry.identitytoken.as_deref().filter(|t| !t.is_empty());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "is not valid base64")?;
        let raw = String::from_utf8(raw).map_err(|_| "is not UTF-8")?;
        let (user, pass) = raw.split_once(':').ok_or("has no `user:password`")?;
        // Beside an identity token, `auth` names the user (`az acr login` writes a nil UUID
        // and no password); a password there is kept for a token server without OAuth2.
        return Ok(Some(match identity {
            Some(token) => Credentials {
                password: pass.into(),
                ..Credentials::with_identity_token(user, token)
            },
            None => Credentials::new(user, pass),
        }));
    }
    if let Some(token) = identity {
        let user = entry.username.clone().unwrap_or_default();
        return Ok(Some(Credentials::with_identity_token(user, token)));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::new(u.clone(), p.as_str()))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_env_wins_over_home() {
        assert_eq!(
            config_path_from(Some("/etc/dc".into()), Some("/root".into())),
            Some(PathBuf::from("/etc/dc/config.json"))
        );
        assert_eq!(
            config_path_from(Some("".into()), Some("/root".into())),
            Some(PathBuf::from("/root/.docker/config.json"))
        );
        assert_eq!(config_path_from(None, None), None);
    }

    #[test]
    fn podman_files_come_before_docker_config_as_in_skopeo() {
        let env = |runtime: Option<&str>, config: Option<&str>, docker: Option<&str>| AuthEnv {
            xdg_runtime_dir: runtime.map(Into::into),
            xdg_config_home: config.map(Into::into),
            docker_config: docker.map(Into::into),
            home: Some("/home/u".into()),
        };
        let paths = |files: Vec<PathBuf>| -> Vec<String> {
            files.iter().map(|f| f.display().to_string()).collect()
        };
        assert_eq!(
            paths(auth_files_from(
                &env(Some("/run/user/7"), None, None),
                Some(7)
            )),
            [
                "/run/user/7/containers/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json"
            ]
        );
        assert_eq!(
            paths(auth_files_from(&env(None, Some("/x"), Some("/d")), Some(7))),
            [
                "/run/containers/7/auth.json",
                "/x/containers/auth.json",
                "/d/config.json"
            ]
        );
        let nothing = AuthEnv {
            xdg_runtime_dir: None,
            xdg_config_home: None,
            docker_config: None,
            home: None,
        };
        assert!(auth_files_from(&nothing, None).is_empty());
    }

    #[tokio::test]
    async fn the_first_file_with_an_entry_answers_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = |user: &str| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
            format!(r#"{{"auths":{{"reg.example":{{"auth":"{auth}"}}}}}}"#)
        };
        let podman = dir.path().join("auth.json");
        std::fs::write(&podman, r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#).expect("write");
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, entry("from-docker")).expect("write");
        let missing = dir.path().join("missing.json");
        let files = [missing.clone(), podman.clone(), docker.clone()];
        let (c, file) = from_auth_files(&files, "reg.example", None)
            .await
            .expect("ok")
            .expect("found in the docker config");
        assert_eq!((c.username.as_str(), &file), ("from-docker", &docker));
        std::fs::write(&podman, entry("from-podman")).expect("write");
        let (c, file) = from_auth_files(&files, "reg.example", None)
            .await
            .expect("ok")
            .expect("found in the podman file");
        assert_eq!((c.username.as_str(), &file), ("from-podman", &podman));
        assert!(
            from_auth_files(&[missing], "reg.example", None)
                .await
                .expect("ok")
                .is_none()
        );
        // A malformed file on the way is an error, not a silent anonymous request.
        std::fs::write(&podman, "{").expect("write");
        let err = from_auth_files(&files, "reg.example", None)
            .await
            .expect_err("malformed");
        assert!(err.to_string().contains("auth.json"), "{err}");
        // So is an entry whose `auth` is not base64: the error names the file and the entry.
        std::fs::write(&podman, r#"{"auths":{"reg.example":{"auth":"%%%"}}}"#).expect("write");
        let err = from_auth_files(&files, "reg.example", None)
            .await
            .expect_err("bad entry")
            .to_string();
        assert!(err.contains(&podman.display().to_string()), "{err}");
        assert!(
            err.contains("entry for reg.example is not valid base64"),
            "{err}"
        );
    }

    #[test]
    fn repository_and_namespace_keys_come_before_the_registrys() {
        assert_eq!(
            candidate_keys("reg.example:5000", Some("team/sub/app"))[..4],
            [
                "reg.example:5000/team/sub/app",
                "reg.example:5000/team/sub",
                "reg.example:5000/team",
                "reg.example:5000",
            ]
        );
        assert_eq!(candidate_keys("reg.example", None)[0], "reg.example");
        // Docker Hub's entries are under docker.io (podman) or the old index URL (docker).
        let hub = candidate_keys("registry-1.docker.io", Some("library/alpine"));
        assert_eq!(hub[..2], ["docker.io/library/alpine", "docker.io/library"]);
        assert!(hub.iter().any(|k| k == "docker.io"), "{hub:?}");
        assert!(hub.iter().any(|k| k == "https://index.docker.io/v1/"));
    }

    #[tokio::test]
    async fn the_most_specific_entry_of_the_first_file_with_one_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = |user: &str| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
            format!(r#"{{"auth":"{auth}"}}"#)
        };
        let podman = dir.path().join("auth.json");
        std::fs::write(
            &podman,
            format!(
                r#"{{"auths":{{"reg.example/team/app":{},"reg.example/team":{},"reg.example/solo":{}}}}}"#,
                auth("app"),
                auth("team"),
                auth("solo")
            ),
        )
        .expect("write");
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            format!(r#"{{"auths":{{"reg.example":{}}}}}"#, auth("registry")),
        )
        .expect("write");
        let files = [podman.clone(), docker.clone()];
        let user = |repo: Option<&'static str>| {
            let files = files.clone();
            async move {
                let (c, file) = from_auth_files(&files, "reg.example", repo)
                    .await
                    .expect("ok")
                    .expect("found");
                (c.username, file)
            }
        };
        assert_eq!(user(Some("team/app")).await, ("app".into(), podman.clone()));
        assert_eq!(
            user(Some("team/app/x")).await,
            ("app".into(), podman.clone())
        );
        assert_eq!(
            user(Some("team/api")).await,
            ("team".into(), podman.clone())
        );
        assert_eq!(user(Some("solo")).await, ("solo".into(), podman.clone()));
        // A key is a whole path component: `team` does not cover `teams/app`.
        assert_eq!(
            user(Some("teams/app")).await,
            ("registry".into(), docker.clone())
        );
        assert_eq!(
            user(Some("other/app")).await,
            ("registry".into(), docker.clone())
        );
        assert_eq!(user(None).await, ("registry".into(), docker.clone()));
        // Another registry's namespace never answers.
        let none = from_auth_files(&files, "reg.example:5000", Some("team/app"))
            .await
            .expect("ok");
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn host_names_in_keys_match_whatever_their_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = |user: &str| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
            format!(r#"{{"auth":"{auth}"}}"#)
        };
        // `hoist login REG.example:5000/team` keeps the host in lowercase; docker keeps it as
        // typed.
        let p = write(
            dir.path(),
            &format!(
                r#"{{"auths":{{"reg.example:5000/team":{},"Other.Example":{}}}}}"#,
                auth("team"),
                auth("other")
            ),
        );
        let user = |registry: &'static str, repo: &'static str| {
            let p = p.clone();
            async move {
                lookup(&p, registry, Some(repo), None)
                    .await
                    .expect("ok")
                    .map(|c| c.username)
            }
        };
        assert_eq!(
            user("REG.example:5000", "team/app").await.as_deref(),
            Some("team")
        );
        assert_eq!(user("other.example", "a/b").await.as_deref(), Some("other"));
        assert_eq!(user("REG.example:5000", "else/app").await, None);
    }

    #[tokio::test]
    async fn podman_entries_for_docker_hub_are_found_for_its_api_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = base64::engine::general_purpose::STANDARD.encode("hubuser:pw");
        let p = write(
            dir.path(),
            &format!(r#"{{"auths":{{"docker.io":{{"auth":"{auth}"}}}}}}"#),
        );
        let c = from_docker_config(&p, "registry-1.docker.io")
            .await
            .expect("ok")
            .expect("found under docker.io");
        assert_eq!(c.username, "hubuser");
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, text).expect("write config");
        p
    }

    #[tokio::test]
    async fn auths_base64_and_plain_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let p = write(
            dir.path(),
            &format!(
                r#"{{"auths":{{"https://reg.example:5000":{{"auth":"{auth}"}},"other":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        );
        let c = from_docker_config(&p, "reg.example:5000")
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "s3cr:et");
        let c = from_docker_config(&p, "other")
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(c.username, "bob");
        assert!(
            from_docker_config(&p, "nowhere")
                .await
                .expect("ok")
                .is_none()
        );
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[tokio::test]
    async fn an_identity_token_is_kept_apart_from_the_password_and_never_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nil_user = base64::engine::general_purpose::STANDARD
            .encode("00000000-0000-0000-0000-000000000000:");
        let with_pw = base64::engine::general_purpose::STANDARD.encode("bob:pw1");
        let p = write(
            dir.path(),
            &format!(
                r#"{{"auths":{{"acr.example":{{"auth":"{nil_user}","identitytoken":"REFRESH-1"}},"both.example":{{"auth":"{with_pw}","identitytoken":"REFRESH-2"}},"bare.example":{{"identitytoken":"REFRESH-3"}}}}}}"#
            ),
        );
        let c = from_docker_config(&p, "acr.example")
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(c.username, "00000000-0000-0000-0000-000000000000");
        assert_eq!(c.identity_token().map(Secret::expose), Some("REFRESH-1"));
        assert!(c.password.is_empty());
        // A refresh token alone is no password for Basic.
        assert_eq!(c.basic_header(), None);
        let shown = format!("{c:?}");
        assert!(!shown.contains("REFRESH"), "{shown}");
        let c = from_docker_config(&p, "both.example")
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(c.identity_token().map(Secret::expose), Some("REFRESH-2"));
        assert_eq!(c.password.expose(), "pw1");
        assert!(c.basic_header().is_some());
        let c = from_docker_config(&p, "bare.example")
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(c.identity_token().map(Secret::expose), Some("REFRESH-3"));
        // Plain credentials have none.
        assert_eq!(Credentials::new("u", "p").identity_token(), None);
    }

    #[tokio::test]
    async fn a_helpers_token_user_answers_with_an_identity_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let helper = dir.path().join("docker-credential-hoisttoken");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread reg\nprintf '{\"Username\":\"<token>\",\"Secret\":\"REFRESH-H\"}'\n",
        )
        .expect("write helper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let p = write(dir.path(), r#"{"credsStore":"hoisttoken"}"#);
        let c = lookup(&p, "reg.example", None, Some(path.as_ref()))
            .await
            .expect("helper ran")
            .expect("found");
        assert_eq!(c.identity_token().map(Secret::expose), Some("REFRESH-H"));
        assert!(c.password.is_empty(), "the token is not a password");
    }

    #[tokio::test]
    async fn helper_is_run_with_registry_on_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let helper = dir.path().join("docker-credential-hoisttest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread reg\n[ \"$1\" = get ] || exit 3\nprintf '{\"Username\":\"u-%s\",\"Secret\":\"tok\"}' \"$reg\"\n",
        )
        .expect("write helper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let p = write(
            dir.path(),
            r#"{"credHelpers":{"reg.example":"hoisttest"},"auths":{}}"#,
        );
        let c = lookup(&p, "reg.example", None, Some(path.as_ref()))
            .await
            .expect("helper ran")
            .expect("found");
        assert_eq!(c.username, "u-reg.example");
        assert_eq!(c.password.expose(), "tok");
        // Docker Hub is asked for under the name `docker login` stored it with.
        let hub = write(dir.path(), r#"{"credsStore":"hoisttest"}"#);
        for api_host in ["registry-1.docker.io", "docker.io"] {
            let c = lookup(&hub, api_host, None, Some(path.as_ref()))
                .await
                .expect("helper ran")
                .expect("found");
            assert_eq!(c.username, "u-https://index.docker.io/v1/", "{api_host}");
        }
        // A helper that is not on PATH is a local error naming the program.
        let p2 = write(dir.path(), r#"{"credsStore":"hoist-missing-helper"}"#);
        let err = from_docker_config(&p2, "x")
            .await
            .expect_err("missing helper");
        assert!(err.is_local_io());
        assert!(
            err.to_string()
                .contains("docker-credential-hoist-missing-helper")
        );
    }

    #[tokio::test]
    async fn malformed_config_is_invalid_input_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "{not json");
        assert!(
            from_docker_config(&p, "x")
                .await
                .expect_err("bad")
                .is_invalid_input()
        );
        assert!(
            from_docker_config(&dir.path().join("nope.json"), "x")
                .await
                .expect("ok")
                .is_none()
        );
    }
}
