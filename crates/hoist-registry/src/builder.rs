//! `ClientBuilder`: every setting of a [`Client`](crate::Client), with its default. `build()`, which
//! validates them and makes the connection pools, is with the client (`client.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::credentials::Credentials;
use crate::tls::TlsSettings;
use crate::{Error, Result, RetryPolicy};

/// The smallest upload chunk [`ClientBuilder::chunk_size`] accepts, 64 KiB (the CLI's
/// `--chunk-size` floor too). A registry's `OCI-Chunk-Max-Length` and the halving after an
/// unexplained 413 may still take a chunk below it, down to
/// [`MIN_SHRUNK_CHUNK`](crate::protocol::chunk::MIN_SHRUNK_CHUNK).
pub const MIN_CHUNK_SIZE: u64 = 64 * 1024;

// The 413 halving needs room below the smallest chunk a caller may ask for.
const _: () = assert!(crate::protocol::chunk::MIN_SHRUNK_CHUNK < MIN_CHUNK_SIZE);

/// The most blobs [`ClientBuilder::concurrency`] lets move at once, 256: each holds a
/// connection and its buffers, and more than this only makes a registry throttle.
pub const MAX_CONCURRENCY: usize = 256;

/// Builds a [`Client`](crate::Client). Every setting has a sensible default; `build()` validates them.
#[must_use]
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) insecure_hosts: Vec<String>,
    pub(crate) tls: TlsSettings,
    pub(crate) credentials: Option<Credentials>,
    /// Credentials for one registry each, by its `host[:port]` as in [`Repo::registry`](crate::Repo::registry).
    pub(crate) registry_credentials: Vec<(String, Credentials)>,
    pub(crate) docker_config: Option<PathBuf>,
    /// An auth file for one registry each, read instead of the general lookup for it.
    pub(crate) registry_auth_files: Vec<(String, PathBuf)>,
    /// Registries spoken to without credentials, whatever else is configured.
    pub(crate) anonymous_registries: Vec<String>,
    pub(crate) use_docker_config: bool,
    pub(crate) chunk_size: u64,
    pub(crate) concurrency: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) user_agent: String,
    pub(crate) timeout: Duration,
    pub(crate) plain_http_loopback: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            insecure_hosts: Vec::new(),
            tls: TlsSettings::default(),
            credentials: None,
            registry_credentials: Vec::new(),
            docker_config: None,
            registry_auth_files: Vec::new(),
            anonymous_registries: Vec::new(),
            use_docker_config: true,
            chunk_size: 16 * 1024 * 1024,
            concurrency: 6,
            retry: RetryPolicy::default(),
            state_dir: None,
            user_agent: concat!("hoist/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeout: Duration::from_secs(120),
            plain_http_loopback: true,
        }
    }
}

impl ClientBuilder {
    /// Name `host` (`host[:port]` or bare host) insecure, as docker's `insecure-registries`:
    /// HTTPS without verifying its certificate, and plain HTTP when it turns out to serve no
    /// TLS (its answer to the handshake is plain HTTP; remembered for the client's life).
    /// Never guessed; a loopback host needs no entry for plain HTTP. `host` is a host name, an
    /// IPv4 address or a bracketed IPv6 address, with an optional port: no scheme, no path.
    pub fn insecure_host(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.push(host.into());
        self
    }
    /// Trust the PEM certificates in this file, or in every `*.crt`/`*.pem` file of this
    /// directory (a docker `certs.d/HOST` directory works), besides the system and bundled roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_files.push(path.into());
        self
    }
    /// A docker `certs.d/HOST`-style directory: its `*.crt`/`*.pem` files are trusted as CAs
    /// (as [`ClientBuilder::ca_file`]) and its one `NAME.cert`/`NAME.key` pair, if it has one,
    /// is the client certificate (unless [`ClientBuilder::client_certificate`] names one).
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.tls.ca_files.push(dir.clone());
        self.tls.client_dir = Some(dir);
        self
    }
    /// Present this client certificate (a PEM chain) with its private key (PEM) to registries
    /// that ask for one (mutual TLS, docker's `certs.d/HOST/client.cert` and `client.key`).
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_identity = Some((cert.into(), key.into()));
        self
    }
    /// Use these credentials for every registry (instead of the docker config). A client that
    /// talks to more than one registry (a copy between two) should use
    /// [`ClientBuilder::registry_credentials`] instead, so neither sees the other's password.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
    /// Use these credentials for `registry` only (`host[:port]` as in [`Repo::registry`](crate::Repo::registry));
    /// other registries fall back to the docker config.
    pub fn registry_credentials(
        mut self,
        registry: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        self.registry_credentials
            .push((registry.into(), credentials));
        self
    }
    /// Read credentials from this auth file only, a docker `config.json` or a containers
    /// `auth.json` (default: the first of [`crate::default_auth_files`] with an entry for the
    /// registry).
    pub fn docker_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(path.into());
        self.use_docker_config = true;
        self
    }
    /// Read credentials for `registry` (`host[:port]` as in [`Repo::registry`](crate::Repo::registry)) from this auth
    /// file only, as skopeo's `--src-authfile` and `--dest-authfile` do; other registries keep
    /// the general lookup. [`ClientBuilder::no_docker_config`] turns this off too.
    pub fn registry_auth_file(
        mut self,
        registry: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Self {
        self.registry_auth_files
            .push((registry.into(), path.into()));
        self
    }
    /// Speak to `registry` (`host[:port]` as in [`Repo::registry`](crate::Repo::registry)) without credentials,
    /// whatever else is set or an auth file holds, as skopeo's `--src-no-creds` and
    /// `--dest-no-creds` do: for a public source whose registry the caller has a login for
    /// that it should not use.
    pub fn anonymous_registry(mut self, registry: impl Into<String>) -> Self {
        self.anonymous_registries.push(registry.into());
        self
    }
    /// Do not read any auth file: anonymous unless [`ClientBuilder::credentials`] is set.
    pub fn no_docker_config(mut self) -> Self {
        self.use_docker_config = false;
        self
    }
    /// Preferred upload chunk size (default 16 MiB, at least [`MIN_CHUNK_SIZE`]), raised to
    /// the server's `OCI-Chunk-Min-Length` and capped at its `OCI-Chunk-Max-Length`.
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }
    /// Blobs transferred at once (default 6, as in skopeo; 1 to [`MAX_CONCURRENCY`]).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Retry policy for transient failures (at least one attempt, `base` no longer than `cap`).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Directory for upload state files, enabling resume across processes. Created when first
    /// needed; it must not be (or lie under) something that is not a directory.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// How long a request may make no progress (default 120 s): the wait for response headers
    /// of a small request, the time an upload body may not advance, the gap between body
    /// frames of a download (the PUT completing an upload may wait longer for its answer, a
    /// second per 16 MiB of the blob, while the registry re-hashes it). A small document (a manifest, config, token, tag page or error
    /// body) must also arrive whole within it, plus a second per 16 KiB received, so one that
    /// trickles in a byte at a time cannot hold a command for days. Must not be zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Whether loopback registries are spoken to over plain HTTP (default true). Turn off to
    /// test a TLS registry on 127.0.0.1.
    pub fn plain_http_loopback(mut self, yes: bool) -> Self {
        self.plain_http_loopback = yes;
        self
    }
}

impl ClientBuilder {
    /// Refuse settings that make no sense, before anything is built.
    pub(crate) fn check(&self) -> Result<()> {
        if self.chunk_size < MIN_CHUNK_SIZE {
            return Err(Error::invalid(format!(
                "chunk size {} is below the minimum of {MIN_CHUNK_SIZE} bytes (64 KiB)",
                self.chunk_size
            )));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::invalid(format!(
                "concurrency {} is out of range: use 1 to {MAX_CONCURRENCY}",
                self.concurrency
            )));
        }
        let retry = &self.retry;
        if retry.max_attempts == 0 {
            return Err(Error::invalid("retry policy needs at least 1 attempt"));
        }
        if retry.base > retry.cap {
            return Err(Error::invalid(format!(
                "retry policy's base delay {:?} is longer than its cap {:?}",
                retry.base, retry.cap
            )));
        }
        if self.timeout.is_zero() {
            // Every request would fail as stalled, and only after all its retries.
            return Err(Error::invalid("timeout must be longer than zero"));
        }
        for host in &self.insecure_hosts {
            crate::repo::check_host(host).map_err(|why| {
                Error::invalid(format!(
                    "insecure host {host:?}: {why} (expected HOST[:PORT], no scheme or path)"
                ))
            })?;
        }
        if let Some(dir) = &self.state_dir {
            check_state_dir(dir)?;
        }
        Ok(())
    }
}

/// The state directory, or the nearest of its ancestors that exists, must be a directory:
/// otherwise every push would fail to save its state only once it had begun.
fn check_state_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(Error::invalid("state directory is an empty path"));
    }
    let existing = dir.ancestors().find_map(|p| match std::fs::metadata(p) {
        Ok(meta) => Some((p, meta)),
        Err(_) => None,
    });
    match existing {
        Some((p, meta)) if !meta.is_dir() => Err(Error::invalid(format!(
            "state directory {}: {} is not a directory",
            dir.display(),
            p.display()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(b: ClientBuilder, says: &str) {
        let e = b.check().expect_err(says);
        assert!(e.is_invalid_input(), "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }

    #[test]
    fn concurrency_is_bounded() {
        // Tokio's semaphore panics on more than `usize::MAX >> 3` permits; this was that panic.
        refused(
            ClientBuilder::default().concurrency(1 << 61),
            "out of range",
        );
        refused(
            ClientBuilder::default().concurrency(MAX_CONCURRENCY + 1),
            "out of range",
        );
        refused(ClientBuilder::default().concurrency(0), "out of range");
        assert!(
            ClientBuilder::default()
                .concurrency(MAX_CONCURRENCY)
                .check()
                .is_ok()
        );
    }

    #[test]
    fn nonsense_settings_are_refused() {
        // A one-byte chunk made a 1 KiB push take 1024 PATCHes.
        refused(ClientBuilder::default().chunk_size(1), "below the minimum");
        refused(
            ClientBuilder::default().chunk_size(MIN_CHUNK_SIZE - 1),
            "below the minimum",
        );
        assert!(
            ClientBuilder::default()
                .chunk_size(MIN_CHUNK_SIZE)
                .check()
                .is_ok()
        );
        let backwards = RetryPolicy {
            base: std::time::Duration::from_secs(20),
            ..RetryPolicy::default()
        };
        refused(
            ClientBuilder::default().retry(backwards),
            "longer than its cap",
        );
        for bad in ["", "http://x", "x/y", "host:port", "host:99999", "["] {
            refused(ClientBuilder::default().insecure_host(bad), "insecure host");
        }
        for good in [
            "build-cache",
            "build-cache:5000",
            "10.0.0.1:80",
            "[fd00::1]:5000",
        ] {
            assert!(
                ClientBuilder::default().insecure_host(good).check().is_ok(),
                "{good}"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        refused(
            ClientBuilder::default().state_dir(&file),
            "is not a directory",
        );
        refused(
            ClientBuilder::default().state_dir(file.join("sub")),
            "is not a directory",
        );
        refused(ClientBuilder::default().state_dir(""), "empty path");
        // A directory that does not exist yet is made when first needed.
        let later = dir.path().join("later/uploads");
        assert!(ClientBuilder::default().state_dir(later).check().is_ok());
    }

    #[test]
    fn the_minimum_chunk_can_still_shrink() {
        // The 413 halving must have room below the smallest chunk a caller may ask for.
        use crate::protocol::chunk::shrink_after_413;
        assert_eq!(shrink_after_413(MIN_CHUNK_SIZE), Some(MIN_CHUNK_SIZE / 2));
    }
}
