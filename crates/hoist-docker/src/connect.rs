//! Finding and connecting to a daemon: address resolution, API version negotiation, error mapping.
//!
//! Address resolution is a pure function ([`Endpoint::resolve`]) so the precedence rules are
//! tested without sockets: an explicit socket path wins, then an explicit host, then
//! `DOCKER_HOST`, then the docker CLI's current context, then the default socket
//! `/var/run/docker.sock`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};

use crate::error::{Error, ErrorKind, Result};

/// The socket used when neither options nor `DOCKER_HOST` name one.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The newest API version this crate speaks (bollard's own default).
const NEWEST_API: ApiVersion = ApiVersion {
    major: 1,
    minor: 53,
};

/// The version used for the first `/version` request, before the daemon's version is known.
/// Every daemon since 2016 answers it.
const PROBE_API: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

/// A Docker Engine API version such as `1.41`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version (always 1 so far).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl ApiVersion {
    /// The first API version that can select a platform on export (`GET /images/get?platform=`).
    pub const PLATFORM_SELECTION: ApiVersion = ApiVersion {
        major: 1,
        minor: 48,
    };

    /// Parse `"1.41"`.
    pub fn parse(text: &str) -> Result<ApiVersion> {
        let bad = || Error::new(ErrorKind::DaemonFailed, format!("bad API version {text:?}"));
        let (major, minor) = text.trim().split_once('.').ok_or_else(bad)?;
        Ok(ApiVersion {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }

    fn client_version(self) -> ClientVersion {
        ClientVersion {
            major_version: self.major as usize,
            minor_version: self.minor as usize,
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// A plain TCP address `host:port` (no TLS).
    Tcp(String),
}

impl Endpoint {
    /// Parse a `DOCKER_HOST`-style address: `unix:///path`, `tcp://host:port`, `http://host:port`,
    /// or a bare absolute socket path.
    pub fn parse(host: &str) -> Result<Endpoint> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("bad daemon address {:?}: {why}", strip_credentials(host)),
            )
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("no socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("expected tcp://HOST:PORT"));
            }
            if authority.contains('@') {
                return Err(bad("credentials in the daemon address are not supported"));
            }
            let with_port = if has_port(authority) {
                authority.to_string()
            } else {
                format!("{authority}:2375")
            };
            return Ok(Endpoint::Tcp(with_port));
        }
        if host.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(host)));
        }
        if host.starts_with("https://") || host.starts_with("ssh://") || host.starts_with("npipe:")
        {
            return Err(bad("only unix:// and plain tcp:// daemons are supported"));
        }
        Err(bad("expected unix:///PATH or tcp://HOST:PORT"))
    }

    /// Pick the endpoint: explicit socket, then explicit host, then `docker_host_env`
    /// (the value of `DOCKER_HOST`, empty counts as unset), then [`DEFAULT_SOCKET`].
    pub fn resolve(
        socket: Option<&Path>,
        host: Option<&str>,
        docker_host_env: Option<&str>,
    ) -> Result<Endpoint> {
        if let Some(socket) = socket {
            return Ok(Endpoint::Unix(socket.to_path_buf()));
        }
        if let Some(host) = host {
            return Endpoint::parse(host);
        }
        match docker_host_env {
            Some(env) if !env.trim().is_empty() => Endpoint::parse(env.trim()),
            _ => Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

fn has_port(authority: &str) -> bool {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        return rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'));
    }
    authority.matches(':').count() == 1
}

/// Remove `user:password@` from an address before it is shown anywhere.
pub(crate) fn strip_credentials(host: &str) -> String {
    let Some((scheme, rest)) = host.split_once("://") else {
        return host.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => host.to_string(),
    }
}

/// How to reach the daemon. Defaults: `DOCKER_HOST`, else the docker CLI's current context, else
/// `/var/run/docker.sock`; 120 s for short requests; 24 h for the daemon to answer a transfer;
/// 5 min of silence mid-export.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConnectOptions {
    host: Option<String>,
    socket: Option<PathBuf>,
    use_env: bool,
    timeout: Duration,
    transfer_timeout: Duration,
    stall_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            host: None,
            socket: None,
            use_env: true,
            timeout: Duration::from_secs(120),
            transfer_timeout: Duration::from_secs(24 * 3600),
            stall_timeout: Duration::from_secs(300),
        }
    }
}

impl ConnectOptions {
    /// Defaults: `DOCKER_HOST`, else the current docker context, else the default socket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect to this `DOCKER_HOST`-style address (`unix:///path`, `tcp://host:port`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Connect to this unix socket path (wins over [`ConnectOptions::host`]).
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Whether to read `DOCKER_HOST` when no host or socket is given (default true).
    pub fn use_env(mut self, yes: bool) -> Self {
        self.use_env = yes;
        self
    }

    /// How long short requests (version, inspect, tag) may take. Counted in whole seconds, at
    /// least one; zero is refused by [`Daemon::connect`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the daemon may take to start answering an export or to finish a load. dockerd
    /// spools a whole image before sending its first byte (3-10 s per GiB on the machines we
    /// measured), so this is long.
    /// Counted in whole seconds, at least one; zero is refused by [`Daemon::connect`].
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = timeout;
        self
    }

    /// How long an export may go without a byte once the daemon started sending (default
    /// 5 min) before it fails as [`ErrorKind::Timeout`] instead of hanging. Zero is refused by
    /// [`Daemon::connect`].
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Refuse timeouts that would fail every request (or every export) at once.
    fn validate(&self) -> Result<()> {
        let zero = [
            ("timeout", self.timeout),
            ("transfer timeout", self.transfer_timeout),
            ("stall timeout", self.stall_timeout),
        ]
        .into_iter()
        .find(|(_, t)| t.is_zero());
        match zero {
            Some((name, _)) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the {name} must be longer than zero"),
            )),
            None => Ok(()),
        }
    }

    /// The endpoint these options resolve to. A TCP endpoint while `DOCKER_TLS_VERIFY` is set,
    /// or a current docker context that reaches a TCP address over TLS, is refused rather than
    /// silently spoken to without TLS.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let mut env = if self.use_env {
            std::env::var("DOCKER_HOST").ok()
        } else {
            None
        };
        // With nothing else named, the docker CLI's current context picks the daemon, as it
        // does for `docker` itself (rootless Docker, Docker Desktop).
        let named = self.socket.is_some()
            || self.host.is_some()
            || env.as_deref().is_some_and(|e| !e.trim().is_empty());
        if self.use_env
            && !named
            && let Some(dir) = crate::context::config_dir()
        {
            let chosen = std::env::var("DOCKER_CONTEXT").ok();
            env = crate::context::current_host(&dir, chosen.as_deref())?;
        }
        let endpoint =
            Endpoint::resolve(self.socket.as_deref(), self.host.as_deref(), env.as_deref())?;
        let tls_wanted = self.use_env
            && std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        if tls_wanted && matches!(endpoint, Endpoint::Tcp(_)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "DOCKER_TLS_VERIFY is set but hoist talks plain HTTP to {endpoint}; \
                     TLS to the daemon is not supported (use its unix socket)"
                ),
            ));
        }
        Ok(endpoint)
    }
}

/// Facts about the daemon learned when connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonVersion {
    /// The engine version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The newest API version the daemon speaks; the one this client uses when older than ours.
    pub api_version: ApiVersion,
    /// The daemon's OS (`linux`).
    pub os: String,
    /// The daemon's architecture in GOARCH terms (`amd64`).
    pub arch: String,
}

/// A handle to a connected daemon. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct Daemon {
    pub(crate) docker: Docker,
    pub(crate) endpoint: Endpoint,
    pub(crate) version: DaemonVersion,
    pub(crate) api: ApiVersion,
    pub(crate) transfer_timeout: Duration,
    pub(crate) stall_timeout: Duration,
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("endpoint", &self.endpoint.to_string())
            .field("version", &self.version)
            .field("api", &self.api.to_string())
            .finish()
    }
}

fn build_client(endpoint: &Endpoint, timeout: Duration, api: ApiVersion) -> Result<Docker> {
    let secs = timeout.as_secs().max(1);
    let host = endpoint.to_string();
    let result = match endpoint {
        Endpoint::Unix(path) => {
            check_socket(path).map_err(|e| e.with_host(&host))?;
            unix_client(path, secs, &api.client_version())
        }
        Endpoint::Tcp(addr) => {
            Docker::connect_with_http(&format!("tcp://{addr}"), secs, &api.client_version())
        }
    };
    result.map_err(|e| crate::classify::classify(e, &host))
}

/// What hyper buffers per daemon connection: it reads from the socket into a buffer of about
/// this size (twice at most, when it has the room) and gathers what it writes up to this much.
/// hyper's default (about 400 KiB) made an export hold 400 KiB read buffers and a load a 1 MiB
/// write buffer; dockerd writes an export 32 KiB at a time, so reads of 64 KiB lose nothing.
const CONNECTION_BUF: usize = 64 * 1024;

/// A client for the daemon at the unix socket `path`: bollard's own unix transport (hyperlocal's
/// connector, no idle connections kept), with hyper's buffers bounded by [`CONNECTION_BUF`].
fn unix_client(
    path: &Path,
    secs: u64,
    version: &ClientVersion,
) -> std::result::Result<Docker, bollard::errors::Error> {
    let mut builder =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    builder
        .pool_max_idle_per_host(0)
        .http1_max_buf_size(CONNECTION_BUF);
    let client = std::sync::Arc::new(builder.build(hyperlocal::UnixConnector));
    let transport = move |req: BollardRequest| {
        let client = client.clone();
        async move {
            client
                .request(req)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    // The address bollard's unix transport builds its URLs from (the socket path in hex, which
    // the connector decodes), under the same scheme.
    let hex: String = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Docker::connect_with_custom_transport(transport, Some(format!("unix://{hex}")), secs, version)
}

/// Put `/v{api}` in front of a request path that lacks a version. bollard 0.21 builds its URLs
/// with `Url::join` on an absolute path, which drops the version prefix it meant to add, so
/// without this every request would be unversioned (answered at the daemon's newest API).
pub(crate) fn pin_version(mut req: BollardRequest, api: ApiVersion) -> BollardRequest {
    let uri = req.uri();
    if uri.path().starts_with("/v1.") {
        return req;
    }
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = format!("/v{api}{path_and_query}").parse() {
        parts.path_and_query = Some(pq);
        if let Ok(pinned) = http::Uri::from_parts(parts) {
            *req.uri_mut() = pinned;
        }
    }
    req
}

/// Tell "no daemon here" from "not allowed to look" before bollard flattens both into
/// "socket not found".
fn check_socket(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(_) => Err(Error::new(
            ErrorKind::DaemonUnavailable,
            format!("{} is not a socket: is the daemon running?", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "permission denied reaching the daemon socket {}",
                path.display()
            ),
        )
        .with_source(e)),
        Err(e) => Err(Error::new(
            ErrorKind::DaemonUnavailable,
            format!(
                "no daemon socket at {}: is the daemon running?",
                path.display()
            ),
        )
        .with_source(e)),
    }
}

impl Daemon {
    /// Connect and negotiate the API version: ask the daemon which version it speaks and use
    /// the older of that and ours (so a 20.10 daemon is spoken to in API 1.41).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a zero timeout or a bad address (before any
    /// connection); the daemon's failures as [`Error::kind`] says.
    pub async fn connect(options: ConnectOptions) -> Result<Daemon> {
        options.validate()?;
        let endpoint = options.endpoint()?;
        let host = endpoint.to_string();
        let probe = build_client(&endpoint, options.timeout, PROBE_API)?;
        let raw = probe
            .version()
            .await
            .map_err(|e| crate::classify::classify(e, &host))?;
        let api_text = raw.api_version.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::DaemonFailed,
                "the daemon did not say which API version it speaks",
            )
            .with_host(&host)
        })?;
        let daemon_api = ApiVersion::parse(&api_text).map_err(|e| e.with_host(&host))?;
        let api = daemon_api.min(NEWEST_API);
        let docker = build_client(&endpoint, options.timeout, api)?
            .with_request_modifier(move |req| pin_version(req, api));
        let version = DaemonVersion {
            version: raw.version.unwrap_or_default(),
            api_version: daemon_api,
            os: raw.os.unwrap_or_default(),
            arch: raw.arch.unwrap_or_default(),
        };
        tracing::debug!(%host, api = %api, engine = %version.version, "connected to docker daemon");
        Ok(Daemon {
            docker,
            endpoint,
            version,
            api,
            transfer_timeout: options.transfer_timeout,
            stall_timeout: options.stall_timeout,
        })
    }

    /// What the daemon said about itself when connecting.
    pub fn version(&self) -> &DaemonVersion {
        &self.version
    }

    /// The API version this handle speaks (the older of the daemon's and this crate's).
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// Where the daemon listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether the daemon can select one platform of a multi-platform image on export.
    pub fn supports_platform_selection(&self) -> bool {
        self.api >= ApiVersion::PLATFORM_SELECTION
    }

    /// Check the daemon still answers.
    pub async fn ping(&self) -> Result<()> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| self.classify(e))
    }

    pub(crate) fn host(&self) -> String {
        self.endpoint.to_string()
    }

    pub(crate) fn classify(&self, err: bollard::errors::Error) -> Error {
        crate::classify::classify(err, &self.host())
    }

    /// A client for long transfers: long timeout, version pinned, and `extra` query
    /// parameters (already encoded) added to every request. It has its own connection pool, so
    /// the connection it opens is driven by the runtime that polls it (an export reads its
    /// stream on its own thread).
    pub(crate) fn transfer_client(&self, extra: Option<String>) -> Result<Docker> {
        let api = self.api;
        let docker = build_client(&self.endpoint, self.transfer_timeout, api)?;
        Ok(docker.with_request_modifier(move |req| {
            let mut req = pin_version(req, api);
            if let Some(extra) = &extra {
                let uri = req.uri().to_string();
                let sep = if uri.contains('?') { '&' } else { '?' };
                if let Ok(with_extra) = format!("{uri}{sep}{extra}").parse() {
                    *req.uri_mut() = with_extra;
                }
            }
            req
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: bollard's own unix client let hyper read a daemon's answer in buffers of up
    /// to 400 KiB, and an export held three of them at once.
    #[tokio::test]
    async fn a_daemon_answer_arrives_in_bounded_chunks() {
        use futures_util::StreamExt;
        use std::io::{Read, Write};
        const BODY: usize = 4 << 20;
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("d.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n");
            let _ = conn
                .write_all(answer.as_bytes())
                .and_then(|()| conn.write_all(&vec![0u8; BODY]));
        });
        let docker = unix_client(&socket, 30, &PROBE_API.client_version()).expect("client");
        let mut answer = docker.export_image("any");
        let mut total = answer.next().await.expect("a chunk").expect("data").len();
        let mut largest = total;
        while let Some(chunk) = answer.next().await {
            // A consumer busy elsewhere: the daemon's bytes pile up in the socket meanwhile.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let n = chunk.expect("data").len();
            total += n;
            largest = largest.max(n);
        }
        assert_eq!(total, BODY);
        // hyper reads into all the room its buffer has, up to twice the limit.
        assert!(largest <= 2 * CONNECTION_BUF, "a chunk of {largest} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zero_timeouts_are_refused_before_connecting() {
        let missing = ConnectOptions::new().socket("/nonexistent/hoist-test.sock");
        let err = Daemon::connect(missing.clone())
            .await
            .expect_err("no daemon there");
        assert!(err.is_daemon_unavailable(), "{err}");
        for options in [
            missing.clone().timeout(Duration::ZERO),
            missing.clone().transfer_timeout(Duration::ZERO),
            missing.clone().stall_timeout(Duration::ZERO),
        ] {
            let err = Daemon::connect(options).await.expect_err("zero timeout");
            assert!(err.is_invalid_input(), "{err}");
            assert!(err.to_string().contains("longer than zero"), "{err}");
        }
    }

    #[test]
    fn resolution_order() {
        let sock = Path::new("/run/x.sock");
        assert_eq!(
            Endpoint::resolve(Some(sock), Some("tcp://h:1"), Some("tcp://e:2")).expect("ok"),
            Endpoint::Unix(sock.to_path_buf())
        );
        assert_eq!(
            Endpoint::resolve(None, Some("tcp://h:1"), Some("tcp://e:2")).expect("ok"),
            Endpoint::Tcp("h:1".into())
        );
        assert_eq!(
            Endpoint::resolve(None, None, Some("unix:///e.sock")).expect("ok"),
            Endpoint::Unix("/e.sock".into())
        );
        assert_eq!(
            Endpoint::resolve(None, None, Some("  ")).expect("ok"),
            Endpoint::Unix(DEFAULT_SOCKET.into())
        );
        assert_eq!(
            Endpoint::resolve(None, None, None).expect("ok"),
            Endpoint::Unix(DEFAULT_SOCKET.into())
        );
    }

    #[test]
    fn parse_addresses() {
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1").expect("ok"),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:99/").expect("ok"),
            Endpoint::Tcp("[::1]:99".into())
        );
        assert_eq!(
            Endpoint::parse("/var/run/docker.sock").expect("ok"),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        for bad in [
            "unix://",
            "ssh://me@box",
            "https://h:1",
            "docker.sock",
            "tcp://",
            "tcp://h:1/x",
        ] {
            let err = Endpoint::parse(bad).expect_err(bad);
            assert!(err.is_invalid_input(), "{bad}: {err:?}");
        }
    }

    #[test]
    fn credentials_never_shown() {
        let err = Endpoint::parse("tcp://user:secret@h:1").expect_err("creds refused");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(strip_credentials("tcp://u:p@h:1"), "tcp://***@h:1");
        assert_eq!(strip_credentials("unix:///a@b/sock"), "unix:///a@b/sock");
    }

    #[test]
    fn requests_are_pinned_to_the_negotiated_version() {
        let api = ApiVersion {
            major: 1,
            minor: 41,
        };
        let req = |uri: &str| {
            http::Request::get(uri)
                .body(http_body_util::Either::Left(http_body_util::Full::new(
                    bytes::Bytes::new(),
                )))
                .expect("request")
        };
        let pinned = pin_version(req("unix://2f612e736f636b/images/get?names=a"), api);
        assert_eq!(
            pinned.uri().to_string(),
            "unix://2f612e736f636b/v1.41/images/get?names=a"
        );
        let already = pin_version(req("http://h:1/v1.40/version"), api);
        assert_eq!(already.uri().to_string(), "http://h:1/v1.40/version");
    }

    #[test]
    fn api_versions_order_and_parse() {
        let v = ApiVersion::parse("1.41").expect("parses");
        assert_eq!(v.to_string(), "1.41");
        assert!(v < ApiVersion::PLATFORM_SELECTION);
        assert!(ApiVersion::parse("1.9").expect("parses") < v);
        assert!(ApiVersion::parse("one").is_err());
    }

    #[test]
    fn missing_socket_is_daemon_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_socket(&dir.path().join("nope.sock")).expect_err("no socket");
        assert!(err.is_daemon_unavailable(), "{err:?}");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        assert!(
            check_socket(&file)
                .expect_err("not a socket")
                .is_daemon_unavailable()
        );
    }
}
