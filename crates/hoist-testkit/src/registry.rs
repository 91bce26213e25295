//! A private `docker-registry` (distribution 2.8) on a free loopback port with a generated config.

use crate::http::http_get;
use crate::process::{ChildGuard, port_open, with_free_port};
use crate::skip::find_tool;
use crate::tls::TlsFiles;
use crate::token::TokenAuth;
use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long [`Registry`] waits for `GET /v2/` to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for a [`Registry`]; see [`Registry::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RegistryBuilder {
    htpasswd: Option<(String, String)>,
    relative_urls: bool,
    storage_dir: Option<PathBuf>,
    tls: Option<(PathBuf, PathBuf)>,
    client_ca: Option<PathBuf>,
    token: Option<TokenAuth>,
    deletes: bool,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            htpasswd: None,
            relative_urls: false,
            storage_dir: None,
            tls: None,
            client_ca: None,
            token: None,
            deletes: true,
        }
    }
}

impl RegistryBuilder {
    /// Serve HTTPS with this certificate and key (`http.tls`); see [`TlsFiles`].
    pub fn tls(mut self, files: &TlsFiles) -> Self {
        self.tls = Some((files.cert_file().into(), files.key_file().into()));
        self
    }

    /// Over TLS, require a client certificate signed by the CA of `files` (`http.tls.clientcas`);
    /// [`TlsFiles::client_cert_dir`] holds one.
    pub fn require_client_certificate(mut self, files: &TlsFiles) -> Self {
        self.client_ca = Some(files.ca_file().into());
        self
    }

    /// Require bearer tokens from a token server (`auth.token`); see [`crate::TokenServer`].
    pub fn token_auth(mut self, auth: &TokenAuth) -> Self {
        self.token = Some(auth.clone());
        self
    }

    /// Require HTTP basic auth with this one user (an htpasswd file with a bcrypt hash).
    pub fn htpasswd(mut self, user: &str, pass: &str) -> Self {
        crate::secrets::record_login(user, pass);
        self.htpasswd = Some((user.to_string(), pass.to_string()));
        self
    }

    /// Make the registry send relative `Location` headers (`http.relativeurls`).
    pub fn relative_urls(mut self, on: bool) -> Self {
        self.relative_urls = on;
        self
    }

    /// Whether the registry deletes manifests and blobs when asked (`storage.delete.enabled`,
    /// default true). Off, distribution answers every DELETE with 405 `UNSUPPORTED`, as a
    /// registry whose operators keep deletes off does.
    pub fn deletes(mut self, on: bool) -> Self {
        self.deletes = on;
        self
    }

    /// Keep blobs in this directory (created if missing, never deleted by the kit) instead of a
    /// temp dir, so a new registry can serve what an old one stored.
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage_dir = Some(dir.into());
        self
    }

    /// Write the config and start the registry; returns once `GET /v2/` answers.
    pub fn start(self) -> anyhow::Result<Registry> {
        let tool = find_tool("docker-registry").context(
            "docker-registry not installed (apt-get install docker-registry); \
             call hoist_testkit::require_tool(\"docker-registry\") first to skip cleanly",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .context("creating registry temp dir")?;
        let storage = match &self.storage_dir {
            Some(d) => d.clone(),
            None => dir.path().join("storage"),
        };
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("creating {}", storage.display()))?;
        let htpasswd_path = match &self.htpasswd {
            Some((user, pass)) => {
                let path = dir.path().join("htpasswd");
                // Cost 4 is the minimum: these are throwaway test credentials, and a high cost
                // would slow down every authenticated request.
                let hash = bcrypt::hash(pass, 4).context("bcrypt hashing")?;
                std::fs::write(&path, format!("{user}:{hash}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
                Some(path)
            }
            None => None,
        };
        let secret = format!("hoist-testkit-{:016x}", fastrand::u64(..));
        let ready = Ready {
            auth: self.htpasswd.is_some() || self.token.is_some(),
            tls: self.tls.is_some(),
        };
        let mut reg = with_free_port(|port| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let config = registry_config(&ConfigParams {
                addr,
                storage: &storage,
                relative_urls: self.relative_urls,
                deletes: self.deletes,
                htpasswd: htpasswd_path.as_deref(),
                secret: &secret,
                tls: self.tls.as_ref(),
                client_ca: self.client_ca.as_deref(),
                token: self.token.as_ref(),
            });
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config)
                .with_context(|| format!("writing {}", config_path.display()))?;
            let guard = spawn(&tool, &config_path, dir.path(), addr, ready)?;
            Ok(Registry {
                guard: Some(guard),
                addr,
                storage: storage.clone(),
                config_path,
                tool: tool.clone(),
                credentials: self.htpasswd.clone(),
                ready,
                dir: None,
            })
        })?;
        reg.dir = Some(dir);
        Ok(reg)
    }
}

/// A running `docker-registry serve` on `127.0.0.1:PORT` with filesystem storage and deletes
/// enabled (unless [`RegistryBuilder::deletes`] turned them off). Killed (and its temp dir
/// removed) on drop.
#[derive(Debug)]
pub struct Registry {
    guard: Option<ChildGuard>,
    addr: SocketAddr,
    storage: PathBuf,
    config_path: PathBuf,
    tool: PathBuf,
    credentials: Option<(String, String)>,
    ready: Ready,
    // Declared last so it is removed after the process is gone.
    dir: Option<TempDir>,
}

impl Registry {
    /// Start a registry with default options (no auth, absolute URLs, temp storage).
    pub fn start() -> anyhow::Result<Registry> {
        Registry::builder().start()
    }

    /// Options for a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with [`RegistryBuilder::tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.ready.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The registry process id (0 after [`Registry::stop`]).
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().map_or(0, ChildGuard::pid)
    }

    /// Where blobs and repositories are stored.
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The basic-auth user and password, when started with [`RegistryBuilder::htpasswd`].
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        self.guard
            .as_ref()
            .map(|g| g.log_tail(8000))
            .unwrap_or_default()
    }

    /// Kill and start the registry again on the same port with the same storage and secret
    /// (so upload sessions started before can be resumed).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut g) = self.guard.take() {
            g.stop();
        }
        let dir = self
            .dir
            .as_ref()
            .context("registry temp dir is gone")?
            .path()
            .to_path_buf();
        self.guard = Some(spawn(
            &self.tool,
            &self.config_path,
            &dir,
            self.addr,
            self.ready,
        )?);
        Ok(())
    }

    /// Stop the registry, delete everything it stored, and start it again empty on the same
    /// port (benchmarks use this so every run uploads everything).
    pub fn reset(&mut self) -> anyhow::Result<()> {
        if let Some(mut g) = self.guard.take() {
            g.stop();
        }
        for e in std::fs::read_dir(&self.storage)
            .with_context(|| format!("reading {}", self.storage.display()))?
        {
            let p = e?.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            }
            .with_context(|| format!("removing {}", p.display()))?;
        }
        self.restart()
    }

    /// Stop the registry and remove its temp dir (same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.stop();
        }
    }
}

fn spawn(
    tool: &Path,
    config: &Path,
    dir: &Path,
    addr: SocketAddr,
    ready: Ready,
) -> anyhow::Result<ChildGuard> {
    let mut cmd = Command::new(tool);
    cmd.arg("serve").arg(config).current_dir(dir);
    // distribution reads every `REGISTRY_*` variable as an override of its configuration: a
    // developer's `REGISTRY_AUTH_FILE` (podman's and skopeo's auth file) became `auth: file`,
    // and the registry refused to start.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    let mut guard = ChildGuard::spawn("docker-registry", cmd, &dir.join("registry.log"))?;
    // Over TLS the plain probe gets Go's "HTTP request to an HTTPS server" 400: listening is
    // the readiness signal there.
    guard.wait_ready(STARTUP_TIMEOUT, || {
        port_open(addr)
            && (ready.tls
                || http_get(addr, "/v2/")
                    .is_ok_and(|r| r.status == 200 || (ready.auth && r.status == 401)))
    })?;
    Ok(guard)
}

/// How to tell the registry is up.
#[derive(Debug, Clone, Copy)]
struct Ready {
    auth: bool,
    tls: bool,
}

struct ConfigParams<'a> {
    addr: SocketAddr,
    storage: &'a Path,
    relative_urls: bool,
    deletes: bool,
    htpasswd: Option<&'a Path>,
    secret: &'a str,
    tls: Option<&'a (PathBuf, PathBuf)>,
    client_ca: Option<&'a Path>,
    token: Option<&'a TokenAuth>,
}

/// The distribution 2.x YAML config. Paths are quoted as YAML strings (JSON escaping is valid
/// YAML for double-quoted scalars).
fn registry_config(p: &ConfigParams<'_>) -> String {
    let q = |s: &Path| serde_json::Value::from(s.to_string_lossy()).to_string();
    let mut c = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {}\n  secret: {}\n  relativeurls: {}\n",
        q(p.storage),
        p.deletes,
        p.addr,
        p.secret,
        p.relative_urls
    );
    if let Some((cert, key)) = p.tls {
        c.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            q(cert),
            q(key)
        ));
        if let Some(ca) = p.client_ca {
            c.push_str(&format!(
                "    clientcas:
      - {}
",
                q(ca)
            ));
        }
    }
    if let Some(t) = p.token {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        c.push_str(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            s(&t.realm),
            s(&t.service),
            s(&t.issuer),
            q(&t.root_cert_bundle)
        ));
    }
    if let Some(h) = p.htpasswd {
        c.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: hoist-testkit\n    path: {}\n",
            q(h)
        ));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_settings() {
        let c = registry_config(&ConfigParams {
            addr: "127.0.0.1:5000".parse().expect("addr"),
            storage: Path::new("/tmp/a b"),
            relative_urls: true,
            deletes: true,
            htpasswd: Some(Path::new("/tmp/h")),
            secret: "s",
            tls: None,
            client_ca: None,
            token: None,
        });
        assert!(c.contains("addr: 127.0.0.1:5000\n"));
        assert!(c.contains("rootdirectory: \"/tmp/a b\"\n"));
        assert!(c.contains("relativeurls: true\n"));
        assert!(c.contains("  delete:\n    enabled: true\n"));
        assert!(c.contains("path: \"/tmp/h\"\n"));
        let off = registry_config(&ConfigParams {
            addr: "127.0.0.1:5000".parse().expect("addr"),
            storage: Path::new("/tmp/s"),
            relative_urls: false,
            deletes: false,
            htpasswd: None,
            secret: "s",
            tls: None,
            client_ca: None,
            token: None,
        });
        assert!(off.contains("  delete:\n    enabled: false\n"), "{off}");
        assert!(
            RegistryBuilder::default().deletes,
            "deletes stay on by default"
        );
    }
}
