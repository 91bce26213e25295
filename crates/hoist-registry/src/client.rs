//! `Client` and `ClientBuilder`: configuration, TLS, and sending one request with auth.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use crate::auth::AuthState;
use crate::body::{FileRegion, ReqBody};
pub use crate::builder::ClientBuilder;
use crate::document::read_capped;
use crate::protocol::location::{
    display_url, host_without_port, is_loopback_host, is_on, repository_of,
};
use crate::protocol::response::{
    Phase, Step, classify, https_only_answer, parse_error_body_redacted, parse_retry_after,
    status_hint,
};
pub use crate::repo::Repo;
use crate::tls::{HandshakeFailure, handshake_failure};
use crate::{Error, Result};

/// What a connection buffers on each side: hyper reads from the socket into a buffer of about
/// this size (twice at most, when it has the room), and queues body bytes for writing until it
/// holds this much. hyper's default (about 400 KiB) made each download hold two or three such
/// read buffers (a body chunk handed on keeps its buffer alive while hyper reads into a new
/// one): a 1 GiB pull of four layers peaked with 3.6 MiB of them.
pub(crate) const CONNECTION_BUF: usize = 64 * 1024;

/// What a connection that downloads a blob into a file reads from its socket at a time. A pull
/// copies each piece into its file batch at once, so one such buffer per connection stays
/// alive. In pieces of [`CONNECTION_BUF`], a 1 GiB pull of four layers made 17,700 reads
/// instead of 4,300 and took about a fifth more CPU time, for about 1 MiB less peak memory.
pub(crate) const DOWNLOAD_BUF: usize = 256 * 1024;

impl ClientBuilder {
    /// Validate the settings and build the client.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a chunk size below
    /// [`MIN_CHUNK_SIZE`](crate::MIN_CHUNK_SIZE), a concurrency outside 1 to
    /// [`MAX_CONCURRENCY`](crate::MAX_CONCURRENCY), a retry policy with no attempt or a base
    /// delay longer than its cap, a zero timeout, an insecure host that is no `host[:port]`, a
    /// state directory that is (or lies under) a file, or a CA file without certificates;
    /// [`crate::ErrorKind::LocalIo`] for an unreadable one.
    pub fn build(self) -> Result<Client> {
        self.check()?;
        if HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(Error::invalid("user agent is not a valid header value"));
        }
        let tls = self.tls.build()?;
        let pool = |tls: &rustls::ClientConfig, download: bool| {
            // No ALPN: HTTP/1.1 only.
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .build();
            let mut builder = HyperClient::builder(TokioExecutor::new());
            builder
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(self.concurrency.max(4));
            match download {
                // A download sends no body, so only its read side needs a size.
                true => builder.http1_read_buf_exact_size(DOWNLOAD_BUF),
                false => builder.http1_max_buf_size(CONNECTION_BUF),
            };
            builder.build(https)
        };
        let pools = |download| Pools {
            verifying: pool(&tls.verifying, download),
            unverified: pool(&tls.unverified, download),
        };
        let blobs = Semaphore::new(self.concurrency);
        Ok(Client {
            inner: Arc::new(Inner {
                requests: pools(false),
                downloads: pools(true),
                plain_hosts: std::sync::Mutex::new(std::collections::HashSet::new()),
                cfg: self,
                auth: Mutex::new(AuthState::default()),
                blobs,
            }),
        })
    }
}

/// A registry client. Cheap to clone (one `Arc`); share it across tasks.
///
/// It needs a Tokio runtime with IO and time enabled (`enable_all()`; a runtime without time
/// panics at the first request, "timers are disabled"). Its pooled connections belong to the
/// runtime that opened them: use it within that runtime, or while that runtime lives and
/// runs; a client used after its first runtime was dropped, or from a second runtime while
/// a current-thread first one is idle, stalls for the timeout on a pooled connection. Build
/// one client per runtime. See the crate's "Runtime" section.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("chunk_size", &self.inner.cfg.chunk_size)
            .field("concurrency", &self.inner.cfg.concurrency)
            .finish_non_exhaustive()
    }
}

type Pool = HyperClient<HttpsConnector<HttpConnector>, ReqBody>;

/// Connections to registries, kept for reuse.
struct Pools {
    verifying: Pool,
    /// For hosts named insecure: HTTPS that accepts any certificate.
    unverified: Pool,
}

pub(crate) struct Inner {
    /// For every request but downloads into files, with small buffers both ways.
    requests: Pools,
    /// For blob downloads into files ([`Req::download`]), reading [`DOWNLOAD_BUF`] at a time.
    downloads: Pools,
    /// Hosts named insecure that answered the TLS handshake in plain HTTP.
    plain_hosts: std::sync::Mutex<std::collections::HashSet<String>>,
    pub(crate) cfg: ClientBuilder,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) blobs: Semaphore,
}

/// The body of a request, re-created for every attempt.
#[derive(Debug, Clone)]
pub(crate) enum BodySpec {
    Empty,
    Bytes(Bytes),
    File {
        path: PathBuf,
        start: u64,
        end: u64,
        /// Bytes of this body handed to the connection so far (for progress).
        tap: Arc<std::sync::atomic::AtomicU64>,
    },
    /// Bytes `[start, end)` of a blob in another registry, fetched per attempt.
    Remote {
        feed: Arc<crate::source::Feed>,
        start: u64,
        end: u64,
        /// Bytes of this body handed to the connection so far (for progress).
        tap: Arc<std::sync::atomic::AtomicU64>,
    },
}

/// A request that can be sent (and re-sent) with auth.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(HeaderName, String)>,
    pub body: BodySpec,
    /// How long the response head of a body-less request may take, when not the client's
    /// timeout: a registry completing an upload re-hashes the whole blob before it answers.
    pub head_wait: Option<Duration>,
    /// A blob download whose body goes straight into a file: sent on a connection that reads
    /// [`DOWNLOAD_BUF`] at a time.
    pub download: bool,
}

impl Req {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: BodySpec::Empty,
            head_wait: None,
            download: false,
        }
    }
    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub(crate) fn body(mut self, body: BodySpec) -> Self {
        self.body = body;
        self
    }
    /// Mark a blob download whose body goes straight into a file (see [`DOWNLOAD_BUF`]).
    pub(crate) fn download(mut self) -> Self {
        self.download = true;
        self
    }
    /// Let the response head take up to `wait` (never less than the client's timeout) when the
    /// request has no body to watch.
    pub(crate) fn head_wait(mut self, wait: Duration) -> Self {
        self.head_wait = Some(wait);
        self
    }
}

/// The scopes a request needs, e.g. `repository:a/b:pull,push`.
pub(crate) type Scopes = [String];

/// Largest error body read (the rest is dropped).
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Client {
    /// A builder with defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    pub(crate) fn cfg(&self) -> &ClientBuilder {
        &self.inner.cfg
    }

    /// `https://REGISTRY/v2/PATH`, or `http://` for a loopback registry (unless turned off)
    /// and for a host named insecure that turned out to serve no TLS. A loopback host named
    /// insecure is tried with HTTPS first like any other (a TLS registry on 127.0.0.1 with a
    /// certificate nobody trusts).
    pub(crate) fn url(&self, registry: &str, path: &str) -> Result<Url> {
        let loopback = self.inner.cfg.plain_http_loopback && is_loopback_host(registry);
        let plain = loopback && !self.named_insecure(registry);
        let scheme = if plain { "http" } else { "https" };
        let mut url = Url::parse(&format!("{scheme}://{registry}/v2/{path}"))
            .map_err(|e| Error::invalid(format!("cannot build a URL for {registry}: {e}")))?;
        self.downgrade_if_plain(&mut url);
        Ok(url)
    }

    /// Whether plain HTTP may go to `host_port`: a loopback host (unless turned off) or one
    /// named insecure.
    pub(crate) fn plain_http_allowed(&self, host_port: &str) -> bool {
        (self.inner.cfg.plain_http_loopback && is_loopback_host(host_port))
            || self.named_insecure(host_port)
    }

    /// Whether the caller named `host_port` (or its bare host) insecure.
    fn named_insecure(&self, host_port: &str) -> bool {
        let bare = host_without_port(host_port);
        self.inner
            .cfg
            .insecure_hosts
            .iter()
            .any(|h| h == host_port || h == bare)
    }

    /// The hosts named insecure that answered TLS in plain HTTP, by `host[:port]` as written.
    fn plain_hosts(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        // A panic elsewhere while holding it cannot leave the set half-written.
        self.inner
            .plain_hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Turn an `https` URL to a host known to serve no TLS into `http` (docker's fallback for
    /// insecure registries: the same host, the scheme's own default port).
    fn downgrade_if_plain(&self, url: &mut Url) {
        if url.scheme() == "https" && self.plain_hosts().contains(&registry_of(url)) {
            // Both are special schemes, so the switch cannot fail.
            let _ = url.set_scheme("http");
        }
    }

    /// `host:port` of `url`, the port always written (the scheme's default when the URL parser
    /// dropped it), so `--insecure-registry reg:80` matches `http://reg/`.
    pub(crate) fn authority(url: &Url) -> String {
        let host = url.host_str().unwrap_or_default();
        match url.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }

    /// Send once. Without `watch`, the response head must arrive within the timeout; with it
    /// (a streamed body), the request fails only when the body makes no progress for a whole
    /// timeout period, so a large chunk on a slow link is fine but a stall is not.
    pub(crate) async fn send_raw(
        &self,
        req: Request<ReqBody>,
        url: &Url,
        watch: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Result<Response<Incoming>> {
        self.send_raw_waiting(req, url, watch, None, false).await
    }

    /// [`Client::send_raw`], letting the response head of a request without `watch` take up
    /// to `head_wait` when that is longer than the timeout, on a download connection when
    /// `download` ([`Req::download`]).
    async fn send_raw_waiting(
        &self,
        req: Request<ReqBody>,
        url: &Url,
        watch: Option<Arc<std::sync::atomic::AtomicU64>>,
        head_wait: Option<Duration>,
        download: bool,
    ) -> Result<Response<Incoming>> {
        if url.scheme() == "http" && !self.plain_http_allowed(&Self::authority(url)) {
            return Err(Error::misbehaved(
                "refusing plain HTTP to a host that is neither loopback nor named insecure",
            )
            .with_url(display_url(url)));
        }
        let timeout = self.inner.cfg.timeout;
        let stalled = |after: Duration| {
            Error::transport(format!("no progress for {after:?}")).with_url(display_url(url))
        };
        let pools = match download {
            true => &self.inner.downloads,
            false => &self.inner.requests,
        };
        let pool = match url.scheme() == "https" && self.named_insecure(&Self::authority(url)) {
            true => &pools.unverified,
            false => &pools.verifying,
        };
        let fut = pool.request(req);
        let res = match watch {
            None => {
                let wait = head_wait.map_or(timeout, |w| w.max(timeout));
                match tokio::time::timeout(wait, fut).await {
                    Ok(r) => r,
                    Err(_) => return Err(stalled(wait)),
                }
            }
            Some(counter) => {
                tokio::pin!(fut);
                // Sampled several times a period, so a stall is noticed about a timeout after
                // the last byte moved (the body's or, once it is sent, the wait for an answer),
                // not up to two. A body that sends nothing at first is as stalled as a later one.
                let tick = (timeout / 8).max(Duration::from_millis(20));
                let mut last = counter.load(std::sync::atomic::Ordering::Relaxed);
                let mut moved = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        () = tokio::time::sleep(tick) => {
                            let now = counter.load(std::sync::atomic::Ordering::Relaxed);
                            if now != last {
                                last = now;
                                moved = tokio::time::Instant::now();
                            } else if moved.elapsed() >= timeout {
                                return Err(stalled(timeout));
                            }
                        }
                    }
                }
            }
        };
        res.map_err(|e| {
            let err = match handshake_failure(&e) {
                // No source: the message says all it would, in words, where rustls words
                // some refusals in its debug form ("Other(OtherError(..))").
                Some(HandshakeFailure::Certificate { problem, remedy }) => {
                    return Error::untrusted_certificate(format!(
                        "the registry's TLS certificate is not trusted ({problem}); {remedy}"
                    ))
                    .with_url(display_url(url));
                }
                Some(HandshakeFailure::NotTls) => Error::plain_http_server(
                    "the registry answered the TLS handshake in plain HTTP: it serves no TLS \
                     on this port (name it an insecure registry to use plain HTTP)",
                ),
                None => match malformed_response(&e) {
                    Some(what) => Error::misbehaved(format!(
                        "the registry sent a malformed HTTP response ({what})"
                    )),
                    None => Error::transport(describe_transport(&e)),
                },
            };
            err.with_url(display_url(url)).with_source(e)
        })
    }

    /// Send `req`, authenticating once on a 401. Responses of any status are returned; transport
    /// failures are errors.
    pub(crate) async fn execute(
        &self,
        req: &Req,
        registry: &str,
        scopes: &Scopes,
    ) -> Result<Response<Incoming>> {
        let same_host = is_on(&req.url, registry);
        let mut authed = false;
        let mut url = req.url.clone();
        self.downgrade_if_plain(&mut url);
        loop {
            let mut b = Request::builder()
                .method(req.method.clone())
                .uri(url.as_str())
                .header(header::USER_AGENT, self.inner.cfg.user_agent.as_str());
            for (k, v) in &req.headers {
                b = b.header(k, v.as_str());
            }
            if same_host && let Some(a) = self.auth_header(registry, scopes).await? {
                b = b.header(header::AUTHORIZATION, a);
            }
            let mut watch = None;
            let (body, len) = match &req.body {
                BodySpec::Empty => (ReqBody::Empty, 0),
                BodySpec::Bytes(bytes) => (ReqBody::bytes(bytes.clone()), bytes.len() as u64),
                BodySpec::File {
                    path,
                    start,
                    end,
                    tap,
                } => {
                    let region = FileRegion::open_counted(path, *start, *end, tap.clone())
                        .await
                        .map_err(|e| {
                            Error::local(format!("opening blob source {}", path.display()), e)
                        })?;
                    watch = Some(region.progress());
                    (ReqBody::File(region), end - start)
                }
                BodySpec::Remote {
                    feed,
                    start,
                    end,
                    tap,
                } => {
                    let region = feed.open(*start, *end, tap.clone()).await?;
                    watch = Some(region.progress());
                    (ReqBody::Remote(region), end - start)
                }
            };
            if !matches!(req.method, Method::GET | Method::HEAD) {
                b = b.header(header::CONTENT_LENGTH, len);
            }
            let request = b
                .body(body)
                .map_err(|e| Error::invalid(format!("building request: {e}")))?;
            let resp = match self
                .send_raw_waiting(request, &url, watch, req.head_wait, req.download)
                .await
            {
                // A host named insecure without TLS: plain HTTP from now on, as docker does.
                Err(e)
                    if e.is_plain_http_server() && self.named_insecure(&Self::authority(&url)) =>
                {
                    tracing::info!(host = %registry_of(&url), "no TLS there; using plain HTTP");
                    self.plain_hosts().insert(registry_of(&url));
                    self.downgrade_if_plain(&mut url);
                    continue;
                }
                other => other?,
            };
            tracing::debug!(
                method = %req.method,
                url = %display_url(&url),
                status = resp.status().as_u16(),
                "registry response"
            );
            if resp.status() == StatusCode::UNAUTHORIZED && same_host && !authed {
                authed = true;
                if self.authenticate(registry, resp.headers(), scopes).await? {
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Send a request that needs no session handling, retrying transient failures.
    /// Returns the first response classified as done; other outcomes become errors, except the
    /// statuses in `pass` which are returned for the caller to interpret (e.g. 404 on HEAD).
    pub(crate) async fn execute_retrying(
        &self,
        req: &Req,
        registry: &str,
        scopes: &Scopes,
        pass: &[u16],
        what: &str,
    ) -> Result<Response<Incoming>> {
        self.execute_counted(req, registry, scopes, pass, what)
            .await
            .0
    }

    /// [`Client::execute_retrying`], also saying how many attempts were sent: more than one
    /// means an earlier attempt may have reached the server and had its answer lost.
    pub(crate) async fn execute_counted(
        &self,
        req: &Req,
        registry: &str,
        scopes: &Scopes,
        pass: &[u16],
        what: &str,
    ) -> (Result<Response<Incoming>>, u32) {
        let policy = &self.inner.cfg.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts;
            let resp = match self.execute(req, registry, scopes).await {
                Ok(r) => r,
                Err(e) if e.is_retryable_transport() && !last => {
                    tracing::info!(error = %e, "retrying after a transport error");
                    tokio::time::sleep(policy.delay(attempt - 1, None)).await;
                    continue;
                }
                Err(e) if e.is_retryable_transport() => {
                    return (Err(gave_up(e, attempt)), attempt);
                }
                Err(e) => return (Err(e), attempt),
            };
            let status = resp.status().as_u16();
            if pass.contains(&status) {
                return (Ok(resp), attempt);
            }
            let ra = retry_after(resp.headers());
            match classify(Phase::Plain, status, None, ra) {
                Step::Done => return (Ok(resp), attempt),
                Step::Retry { after } if !last => {
                    tracing::info!(status, url = %display_url(&req.url), "retrying after a transient status");
                    drop(resp);
                    tokio::time::sleep(policy.delay(attempt - 1, after)).await;
                }
                Step::Retry { .. } => {
                    let e = self.error_from(resp, &req.url, what).await;
                    return (Err(gave_up(e, attempt)), attempt);
                }
                _ => return (Err(self.error_from(resp, &req.url, what).await), attempt),
            }
        }
    }

    /// Turn an unsuccessful response into an error, reading (a capped amount of) its body.
    pub(crate) async fn error_from(
        &self,
        resp: Response<Incoming>,
        url: &Url,
        what: &str,
    ) -> Error {
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(resp, MAX_ERROR_BODY, "", self.inner.cfg.timeout)
            .await
            .unwrap_or_default();
        let secrets = self.known_secrets().await;
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let parsed = parse_error_body_redacted(status, ct.as_deref(), &body, &secrets);
        let mut message = format!("{what}: {}", parsed.message);
        let plain_http = url.scheme() == "http";
        let https_only = https_only_answer(status, plain_http, parsed.code.is_some());
        if let Some(hint) = status_hint(status, plain_http, parsed.code.is_some()) {
            message.push_str(&format!(" ({hint})"));
        }
        if status == 401 {
            // Whether credentials went out says what to do next: fix them, or provide some.
            // Only what is known already: an error message runs no credential helper.
            let host = registry_of(url);
            let repository = repository_of(url);
            if let Some(hint) = self.credentials_hint(&host, repository).await {
                message.push_str(&format!(" ({hint})"));
            }
        }
        let mut err = if (400..500).contains(&status) {
            Error::refused(message)
        } else {
            Error::misbehaved(message)
        };
        if https_only {
            err = err.plain_http_refused();
        }
        err.with_status(status)
            .with_code(parsed.code)
            .with_url(display_url(url))
    }
}

/// The registry of `url` as a [`Repo`] names it: `host[:port]`, the port only when the URL has
/// one other than its scheme's default.
fn registry_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// What was wrong with the server's answer, when it was no HTTP/1.1 response at all (a status
/// line or header hyper cannot parse, a head over its size limit): the registry's fault, and
/// asking again gets the same garbage.
fn malformed_response(e: &hyper_util::client::legacy::Error) -> Option<String> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_parse()
        {
            return Some(h.to_string());
        }
        src = s.source();
    }
    None
}

/// A transport error without hyper's internals: the innermost cause reads best.
fn describe_transport(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    if e.is_connect() {
        format!("cannot connect: {msg}")
    } else {
        format!("connection failed: {msg}")
    }
}

/// `Retry-After` of a response, if present and parseable.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// A header as a string, if present and ASCII.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A failure that was retried until the policy gave up says how many times it was tried, so a
/// "no progress for 3s" that took half a minute explains itself.
fn gave_up(e: Error, attempts: u32) -> Error {
    match attempts {
        0 | 1 => e,
        n => e.with_note(&format!("gave up after {n} attempts")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetryPolicy;

    #[test]
    fn builder_validates() {
        assert!(Client::builder().chunk_size(0).build().is_err());
        assert!(Client::builder().concurrency(0).build().is_err());
        assert!(
            Client::builder()
                .retry(RetryPolicy::immediate(0))
                .build()
                .is_err()
        );
        // A zero timeout would fail every request as stalled, after all its retries.
        let e = Client::builder()
            .timeout(Duration::ZERO)
            .build()
            .expect_err("zero timeout");
        assert!(e.is_invalid_input(), "{e}");
        assert!(
            Client::builder()
                .timeout(Duration::from_millis(1))
                .build()
                .is_ok()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").expect("write");
        let e = Client::builder()
            .ca_file(&empty)
            .build()
            .expect_err("no certs");
        assert!(e.is_invalid_input(), "{e}");
        let e = Client::builder()
            .ca_file(dir.path().join("missing.pem"))
            .build()
            .expect_err("missing");
        assert!(e.is_local_io(), "{e}");
    }

    #[tokio::test]
    async fn scheme_choice_is_exact() {
        let c = Client::builder()
            .insecure_host("build-cache:5000")
            .no_docker_config()
            .build()
            .expect("client");
        assert_eq!(c.url("localhost:5000", "").expect("url").scheme(), "http");
        assert_eq!(c.url("127.0.0.1:5000", "").expect("url").scheme(), "http");
        // A host named insecure is tried with HTTPS (unverified) first; plain HTTP only once it
        // has answered TLS in plain HTTP.
        assert_eq!(
            c.url("build-cache:5000", "").expect("url").scheme(),
            "https"
        );
        c.plain_hosts().insert("build-cache:5000".into());
        let url = c.url("build-cache:5000", "x").expect("url");
        assert_eq!(url.as_str(), "http://build-cache:5000/v2/x");
        assert_eq!(
            c.url("localhost.example.com", "").expect("url").scheme(),
            "https"
        );
        assert_eq!(c.url("10.1.2.3:5000", "").expect("url").scheme(), "https");
        // A Location that downgrades a remote host to plain HTTP is refused before sending.
        let url = Url::parse("http://registry.example.com/v2/").expect("url");
        let req = Req::new(Method::GET, url);
        let err = c
            .execute(&req, "registry.example.com", &[])
            .await
            .expect_err("refused");
        assert!(err.is_misbehaved(), "{err}");
    }
}
