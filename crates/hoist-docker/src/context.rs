//! Docker CLI contexts: which daemon `docker` itself would talk to when `DOCKER_HOST` is unset.
//!
//! Rootless Docker and Docker Desktop point the CLI at their socket through a context (`docker
//! context use rootless`), not through `DOCKER_HOST`. The CLI keeps the chosen name in
//! `config.json` (`currentContext`) or takes it from `DOCKER_CONTEXT`, and keeps each context's
//! endpoint in `contexts/meta/<sha256 of the name>/meta.json` under its config directory. The
//! lookup is a pure function of that directory and the environment value, so it is tested
//! without a daemon.
//!
//! A context can also carry TLS material for its endpoint: `docker context create --docker
//! "host=tcp://...,ca=...,cert=...,key=..."` copies the files to `contexts/tls/<sha256 of the
//! name>/docker/{ca.pem,cert.pem,key.pem}`, and `skip-tls-verify=true` sets `SkipTLSVerify` in
//! the endpoint's metadata. The docker CLI then speaks TLS to any address that is not a socket.
//! hoist does not speak TLS to daemons, so such a context with a `tcp://` address is refused
//! rather than spoken to in plain HTTP.

use std::path::{Path, PathBuf};

use crate::connect::Endpoint;
use crate::error::{Error, ErrorKind, Result};

/// The largest `config.json` or `meta.json` read (real ones are a few KiB).
const MAX_FILE: u64 = 1 << 20;

/// The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The daemon address of the current context, or `None` for the default context (or when no
/// context is chosen). `env_context` is the value of `DOCKER_CONTEXT`, which wins over
/// `currentContext` in `config.json`.
///
/// # Errors
/// A chosen context that does not exist or whose files cannot be read or parsed: silently
/// using another daemon than the one the user picked would be worse. A context that reaches a
/// `tcp://` address over TLS (see the module doc): speaking plain HTTP to it instead would be
/// worse too.
pub(crate) fn current_host(config_dir: &Path, env_context: Option<&str>) -> Result<Option<String>> {
    let name = match env_context.map(str::trim).filter(|c| !c.is_empty()) {
        Some(name) => name.to_string(),
        None => match read_json(&config_dir.join("config.json"))? {
            Some(config) => match config.get("currentContext").and_then(|c| c.as_str()) {
                Some(name) if !name.is_empty() => name.to_string(),
                _ => return Ok(None),
            },
            None => return Ok(None),
        },
    };
    if name == "default" {
        return Ok(None);
    }
    let id = hoist_oci::Digest::sha256_of(name.as_bytes());
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(id.hex())
        .join("meta.json");
    let Some(meta) = read_json(&meta_path)? else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "docker context `{name}` does not exist (no {}); pick another with \
                 `docker context use` or set DOCKER_HOST",
                meta_path.display()
            ),
        ));
    };
    let endpoint = meta.get("Endpoints").and_then(|e| e.get("docker"));
    let host = endpoint
        .and_then(|d| d.get("Host"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("docker context `{name}` names no docker endpoint"),
        ));
    };
    // The docker CLI uses a context's TLS settings only for addresses that are not sockets. An
    // address hoist cannot parse at all fails later with its own message.
    if let Ok(tcp @ Endpoint::Tcp(_)) = Endpoint::parse(host) {
        let tls_dir = config_dir
            .join("contexts")
            .join("tls")
            .join(id.hex())
            .join("docker");
        if let Some(why) = tls_reason(endpoint, &tls_dir)? {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "docker context `{name}` reaches {tcp} over TLS ({why}), but hoist speaks \
                     to daemons over unix sockets or plain tcp only: TLS to the daemon is not \
                     supported (use the daemon's unix socket, or a context without TLS)"
                ),
            ));
        }
    }
    Ok(Some(host.to_string()))
}

/// Why the docker CLI would speak TLS to a context's docker endpoint at a `tcp://` address,
/// if it would: the endpoint has a TLS directory (`tls_dir`, even an empty one: the CLI then
/// uses TLS with its default settings), or its metadata asks for TLS without checking the
/// daemon's certificate (`SkipTLSVerify`).
fn tls_reason(endpoint: Option<&serde_json::Value>, tls_dir: &Path) -> Result<Option<String>> {
    let skip_verify = endpoint
        .and_then(|d| d.get("SkipTLSVerify"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if skip_verify {
        return Ok(Some("its endpoint sets SkipTLSVerify".into()));
    }
    match std::fs::metadata(tls_dir) {
        Ok(meta) if meta.is_dir() => Ok(Some(format!(
            "its TLS material is in {}",
            tls_dir.display()
        ))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Not knowing whether the user asked for TLS is no reason to go without it.
        Err(e) => Err(Error::new(
            ErrorKind::Io,
            format!("reading {}: {e}", tls_dir.display()),
        )),
    }
}

/// A small JSON file, or `None` when it does not exist.
fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Io,
                format!("reading {}: {e}", path.display()),
            ));
        }
    };
    let mut text = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut text)
        .map_err(|e| Error::new(ErrorKind::Io, format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not valid JSON (line {})", path.display(), e.line()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context as `docker context create NAME --docker host=HOST` writes it (docker 28).
    fn context(dir: &Path, name: &str, host: &str) {
        context_with(dir, name, host, false, &[]);
    }

    /// A context as `docker context create NAME --docker
    /// "host=HOST,skip-tls-verify=SKIP,ca=...,cert=...,key=..."` writes it: the endpoint's
    /// metadata, and each TLS file copied into `contexts/tls/<id>/docker/` (0700 directories,
    /// 0600 files).
    fn context_with(dir: &Path, name: &str, host: &str, skip_verify: bool, tls: &[&str]) {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let id = hoist_oci::Digest::sha256_of(name.as_bytes());
        let meta = dir.join("contexts/meta").join(id.hex());
        std::fs::create_dir_all(&meta).expect("mkdir");
        let json = format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_verify}}}}}}}"#
        );
        std::fs::write(meta.join("meta.json"), json).expect("write");
        if tls.is_empty() {
            return;
        }
        let tls_dir = dir.join("contexts/tls").join(id.hex()).join("docker");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tls_dir)
            .expect("mkdir tls");
        for file in tls {
            let path = tls_dir.join(file);
            std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").expect("write pem");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }

    #[test]
    fn the_current_context_names_the_daemon() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        // No config, no context: the default socket.
        assert_eq!(current_host(dir, None).expect("none"), None);
        context(dir, "rootless", "unix:///run/user/1000/docker.sock");
        context(dir, "desk", "unix:///home/u/.docker/desktop/docker.sock");
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"rootless"}"#).expect("write");
        assert_eq!(
            current_host(dir, None).expect("current").as_deref(),
            Some("unix:///run/user/1000/docker.sock")
        );
        // DOCKER_CONTEXT wins; `default` means the default socket.
        assert_eq!(
            current_host(dir, Some("desk")).expect("env").as_deref(),
            Some("unix:///home/u/.docker/desktop/docker.sock")
        );
        assert_eq!(current_host(dir, Some("default")).expect("default"), None);
        // A context that is not there is an error naming it, never another daemon.
        let e = current_host(dir, Some("gone")).expect_err("missing");
        assert!(e.to_string().contains("`gone`"), "{e}");
        std::fs::write(dir.join("config.json"), "{not json").expect("write");
        assert!(current_host(dir, None).is_err());
        std::fs::write(dir.join("config.json"), r#"{"auths":{}}"#).expect("write");
        assert_eq!(current_host(dir, None).expect("no currentContext"), None);
    }

    #[test]
    fn a_tls_context_at_a_tcp_address_is_refused_not_spoken_to_in_plain_http() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        // `docker context create tlsctx --docker "host=tcp://127.0.0.1:23750,ca=..."`
        context_with(dir, "tlsctx", "tcp://127.0.0.1:23750", false, &["ca.pem"]);
        // ... with a client certificate too.
        context_with(
            dir,
            "mtls",
            "tcp://10.0.0.1:2376",
            false,
            &["ca.pem", "cert.pem", "key.pem"],
        );
        // `--docker "host=tcp://...,skip-tls-verify=true"`: TLS, no files.
        context_with(dir, "skip", "tcp://127.0.0.1:23751", true, &[]);
        for (name, why) in [
            ("tlsctx", "TLS material"),
            ("mtls", "TLS material"),
            ("skip", "SkipTLSVerify"),
        ] {
            let e = current_host(dir, Some(name)).expect_err(name);
            assert!(e.is_invalid_input(), "{name}: {e:?}");
            let text = e.to_string();
            assert!(text.contains(&format!("`{name}`")), "{text}");
            assert!(text.contains(why), "{text}");
            assert!(text.contains("unix sockets or plain tcp only"), "{text}");
        }
        // Through `currentContext` as well.
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"tlsctx"}"#).expect("write");
        let e = current_host(dir, None).expect_err("current tls context");
        assert!(e.to_string().contains("tcp://127.0.0.1:23750"), "{e}");

        // Without TLS a tcp context is plain HTTP, as for the docker CLI.
        context(dir, "plain", "tcp://127.0.0.1:23752");
        assert_eq!(
            current_host(dir, Some("plain"))
                .expect("plain tcp")
                .as_deref(),
            Some("tcp://127.0.0.1:23752")
        );
        // A socket never uses the context's TLS settings (the docker CLI ignores them too).
        context_with(dir, "sock", "unix:///run/x.sock", true, &["ca.pem"]);
        assert_eq!(
            current_host(dir, Some("sock")).expect("unix").as_deref(),
            Some("unix:///run/x.sock")
        );
    }
}
