//! Docker CLI contexts: which daemon `docker` itself would talk to when `DOCKER_HOST` is unset.
//!
//! Rootless Docker and Docker Desktop point the CLI at their socket through a context (`docker
//! context use rootless`), not through `DOCKER_HOST`. The CLI keeps the chosen name in
//! `config.json` (`currentContext`) or takes it from `DOCKER_CONTEXT`, and keeps each context's
//! endpoint in `contexts/meta/<sha256 of the name>/meta.json` under its config directory. The
//! lookup is a pure function of that directory and the environment value, so it is tested
//! without a daemon.

use std::path::{Path, PathBuf};

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
/// using another daemon than the one the user picked would be worse.
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
    let host = meta
        .get("Endpoints")
        .and_then(|e| e.get("docker"))
        .and_then(|d| d.get("Host"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => Ok(Some(host.to_string())),
        None => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("docker context `{name}` names no docker endpoint"),
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

    fn context(dir: &Path, name: &str, host: &str) {
        let id = hoist_oci::Digest::sha256_of(name.as_bytes());
        let meta = dir.join("contexts/meta").join(id.hex());
        std::fs::create_dir_all(&meta).expect("mkdir");
        let json = format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        );
        std::fs::write(meta.join("meta.json"), json).expect("write");
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
}
