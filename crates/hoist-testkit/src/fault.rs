//! A scripted fault-injecting HTTP/1.1 proxy: cuts uploads, fakes statuses, stalls, rewrites
//! `Location`, truncates or corrupts responses, and records what it forwarded.

use anyhow::Context;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

mod wire;
use wire::{
    BodyKind, BodyPlan, Head, bad, copy_body, discard_body, read_head, reason, response_has_body,
};

/// Copy buffer size: bodies always stream through this much memory at most.
const BUF: usize = 64 * 1024;
/// Longest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Forward this many request-body bytes, then close both connections (a dropped upload).
    /// When the body is exactly this long, all of it is forwarded and the connections close
    /// before the response is relayed (the bytes arrived; the client never learns it).
    CutAfterBodyBytes(u64),
    /// Answer with this response and forward nothing (the request body is read and dropped).
    /// `Content-Length` is added unless given.
    Respond {
        /// Status code, e.g. 503.
        status: u16,
        /// Extra header fields, e.g. `("Retry-After", "1")`.
        headers: Vec<(String, String)>,
        /// Body text.
        body: String,
    },
    /// Wait this long, then forward normally.
    Stall(Duration),
    /// Forward the request body at this many bytes a second (a slow uplink), so a client can
    /// be caught with a request half-sent; the response is relayed as it comes.
    ThrottleRequestBody(u64),
    /// Forward, then replace the response's `Location` header with this value (added if absent).
    RewriteLocation(String),
    /// Forward, but pass only this many response-body bytes, then close both connections.
    TruncateResponseBody(u64),
    /// Forward, but pass only this many response-body bytes, then send nothing more while
    /// holding the connection open (a registry or CDN that hangs mid-download) until the
    /// proxy is dropped or a minute has gone by.
    StallResponseBody(u64),
    /// Forward, but flip (XOR 0xff) the first byte of the response body.
    CorruptResponseBody,
    /// Forward without this request header (e.g. `Range`, as a server that ignores it).
    DropRequestHeader(String),
}

impl FaultAction {
    /// A canned response with no extra headers.
    pub fn status(status: u16, body: &str) -> FaultAction {
        FaultAction::Respond {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
}

/// One scripted fault: fires on the `nth` request that matches `method`, `path_contains` and
/// `min_body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Match only this method (e.g. `PATCH`); `None` matches any.
    pub method: Option<String>,
    /// Match only request targets containing this text; `None` matches any.
    pub path_contains: Option<String>,
    /// Match only requests declaring a `Content-Length` of at least this many bytes (chunked
    /// bodies never match); `None` matches any. Tells a layer's chunk from a small config
    /// upload when both go to `/blobs/uploads/` concurrently and their order is not fixed.
    pub min_body: Option<u64>,
    /// 1-based index among the requests this rule matches; 0 means every matching request.
    pub nth: usize,
    /// What to do.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule on the `nth` request with this method whose target contains `path_contains`.
    pub fn new(method: &str, path_contains: &str, nth: usize, action: FaultAction) -> FaultRule {
        FaultRule {
            method: Some(method.to_string()),
            path_contains: Some(path_contains.to_string()),
            min_body: None,
            nth,
            action,
        }
    }

    /// The same rule, matching only requests whose declared body is at least `bytes` long.
    #[must_use]
    pub fn min_body(mut self, bytes: u64) -> FaultRule {
        self.min_body = Some(bytes);
        self
    }

    fn matches(&self, method: &str, path: &str, body: Option<u64>) -> bool {
        self.min_body
            .is_none_or(|min| body.is_some_and(|len| len >= min))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// What the proxy saw and did for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Request method.
    pub method: String,
    /// Request target as sent (path and query).
    pub path: String,
    /// Status the client got (the upstream's, or the canned one); `None` when the connection
    /// was cut before a response.
    pub status: Option<u16>,
    /// Request-body bytes forwarded to the upstream (payload bytes, without chunk framing).
    pub request_body_bytes: u64,
    /// Response-body bytes passed to the client (updated when the response ends).
    pub response_body_bytes: u64,
    /// The fault applied to this request, if any.
    pub fault: Option<FaultAction>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<(FaultRule, usize)>,
    records: Vec<RequestRecord>,
    faults: usize,
    clients: Vec<TcpStream>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole proxy down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count this request against every matching rule; return the first rule that fires.
    /// `body` is the declared `Content-Length` (`None` for a chunked body).
    fn begin(&self, method: &str, path: &str, body: Option<u64>) -> (usize, Option<FaultAction>) {
        let mut st = self.lock();
        let mut fired = None;
        for (rule, seen) in st.rules.iter_mut() {
            if rule.matches(method, path, body) {
                *seen += 1;
                if fired.is_none() && (rule.nth == 0 || rule.nth == *seen) {
                    fired = Some(rule.action.clone());
                }
            }
        }
        if fired.is_some() {
            st.faults += 1;
        }
        st.records.push(RequestRecord {
            method: method.to_string(),
            path: path.to_string(),
            status: None,
            request_body_bytes: 0,
            response_body_bytes: 0,
            fault: fired.clone(),
        });
        (st.records.len() - 1, fired)
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut RequestRecord)) {
        if let Some(r) = self.lock().records.get_mut(idx) {
            f(r);
        }
    }
}

/// A TCP proxy on `127.0.0.1:PORT` speaking just enough HTTP/1.1 to apply a [`FaultRule`] plan
/// to requests bound for an upstream (a registry or nginx). Keep-alive, `Content-Length` and
/// chunked bodies, and `Expect: 100-continue` are handled; the client's `Host` header is passed
/// through unchanged so absolute `Location`s the registry builds point back at the proxy.
/// Bodies stream through a fixed buffer. Stopped (port closed, connections shut) on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Start a proxy in front of `upstream` with the given plan.
    pub fn start(upstream: SocketAddr, plan: Vec<FaultRule>) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding fault proxy")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                rules: plan.into_iter().map(|r| (r, 0)).collect(),
                ..State::default()
            }),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(listener, sh))
            .context("spawning accept thread")?;
        Ok(FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Replace the plan; match counters start again from zero.
    pub fn set_plan(&self, plan: Vec<FaultRule>) {
        self.shared.lock().rules = plan.into_iter().map(|r| (r, 0)).collect();
    }

    /// Every request seen so far, in arrival order.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.shared.lock().records.clone()
    }

    /// Forget the records (the plan and fault count stay).
    pub fn clear_records(&self) {
        self.shared.lock().records.clear();
    }

    /// Request-body bytes forwarded upstream over all requests so far.
    pub fn total_body_bytes_forwarded(&self) -> u64 {
        self.shared
            .lock()
            .records
            .iter()
            .map(|r| r.request_body_bytes)
            .sum()
    }

    /// How many faults have been applied.
    pub fn faults_injected(&self) -> usize {
        self.shared.lock().faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, then shut every client connection so its thread ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for c in self.shared.lock().clients.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else { continue };
        if let Ok(c) = client.try_clone() {
            let mut st = shared.lock();
            st.clients.retain(|s| s.peer_addr().is_ok());
            st.clients.push(c);
        }
        let sh = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                let keep = client.try_clone();
                let _ = serve_connection(client, &sh);
                // Whatever ended the exchange (an error included), the client must see the
                // connection close rather than wait on a socket kept open by the clone above.
                if let Ok(c) = keep {
                    let _ = c.shutdown(Shutdown::Both);
                }
            });
    }
}

fn serve_connection(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut client_r = BufReader::with_capacity(BUF, client.try_clone()?);
    let mut client_w = client;
    let mut upstream: Option<(BufReader<TcpStream>, TcpStream)> = None;
    let close_all = |c: &TcpStream, u: &Option<(BufReader<TcpStream>, TcpStream)>| {
        let _ = c.shutdown(Shutdown::Both);
        if let Some((_, w)) = u {
            let _ = w.shutdown(Shutdown::Both);
        }
    };
    loop {
        let Some(mut req) = read_head(&mut client_r)? else {
            return Ok(());
        };
        let mut parts = req.start.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let req_kind = req.body_kind()?;
        let client_close = req.has_token("connection", "close");
        let declared = match req_kind {
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked | BodyKind::UntilClose => None,
        };
        let (idx, fault) = shared.begin(&method, &path, declared);

        // We answer `Expect: 100-continue` ourselves and strip it, so the upstream never sends
        // an interim response while we are still copying the body.
        if req.has_token("expect", "100-continue") {
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("expect"));
            if !matches!(fault, Some(FaultAction::Respond { .. })) {
                client_w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
        }

        if let Some(FaultAction::Respond {
            status,
            headers,
            body,
        }) = &fault
        {
            discard_body(&mut client_r, req_kind)?;
            let mut head = Head {
                start: format!("HTTP/1.1 {status} {}", reason(*status)),
                headers: headers.clone(),
            };
            if head.get("content-length").is_none() {
                head.headers
                    .push(("Content-Length".into(), body.len().to_string()));
            }
            shared.update(idx, |r| {
                r.status = Some(*status);
                r.response_body_bytes = body.len() as u64;
            });
            client_w.write_all(&head.encode())?;
            client_w.write_all(body.as_bytes())?;
            client_w.flush()?;
            if client_close || head.has_token("connection", "close") {
                close_all(&client_w, &upstream);
                return Ok(());
            }
            continue;
        }
        if let Some(FaultAction::Stall(d)) = &fault {
            std::thread::sleep(*d);
        }

        // Forward the request, on a new upstream connection if the old one was closed while idle
        // (a stale keep-alive connection would turn into a spurious error for the client).
        if upstream
            .as_ref()
            .is_some_and(|(r, w)| !r.buffer().is_empty() || !upstream_idle_and_open(w))
            && let Some((_, w)) = upstream.take()
        {
            let _ = w.shutdown(Shutdown::Both);
        }
        if upstream.is_none() {
            let u = TcpStream::connect(shared.upstream)?;
            shared.lock().clients.push(u.try_clone()?);
            upstream = Some((BufReader::with_capacity(BUF, u.try_clone()?), u));
        }
        let Some((up_r, up_w)) = upstream.as_mut() else {
            return Ok(());
        };
        if let Some(FaultAction::DropRequestHeader(name)) = &fault {
            req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        }
        up_w.write_all(&req.encode())?;
        let req_plan = BodyPlan {
            limit: match &fault {
                Some(FaultAction::CutAfterBodyBytes(n)) => Some(*n),
                _ => None,
            },
            corrupt: false,
            rate: match &fault {
                Some(FaultAction::ThrottleRequestBody(rate)) => Some((*rate).max(1)),
                _ => None,
            },
        };
        let (copied, cut) = copy_body(&mut client_r, up_w, req_kind, req_plan, &mut |n| {
            shared.update(idx, |r| r.request_body_bytes += n);
        })?;
        up_w.flush()?;
        let cut_at_end = req_plan.limit.is_some_and(|lim| copied >= lim);
        if cut || cut_at_end {
            if cut_at_end {
                // Let the upstream take the whole body before the connection goes.
                std::thread::sleep(Duration::from_millis(200));
            }
            close_all(&client_w, &upstream);
            return Ok(());
        }

        // Relay the response (interim 1xx responses first).
        let (mut resp, status) = loop {
            let resp = read_head(up_r)?.ok_or_else(|| bad("upstream closed".into()))?;
            let status: u16 = resp
                .start
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("bad status line {:?}", resp.start)))?;
            if (100..200).contains(&status) && status != 101 {
                client_w.write_all(&resp.encode())?;
                continue;
            }
            break (resp, status);
        };
        if let Some(FaultAction::RewriteLocation(loc)) = &fault {
            resp.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("location"));
            resp.headers.push(("Location".into(), loc.clone()));
        }
        shared.update(idx, |r| r.status = Some(status));
        let resp_kind = if response_has_body(&method, status) {
            match resp.body_kind()? {
                BodyKind::Length(0) if resp.get("content-length").is_none() => {
                    if resp.has_token("transfer-encoding", "chunked") {
                        BodyKind::Chunked
                    } else {
                        BodyKind::UntilClose
                    }
                }
                k => k,
            }
        } else {
            BodyKind::Length(0)
        };
        client_w.write_all(&resp.encode())?;
        let resp_plan = BodyPlan {
            limit: match &fault {
                Some(FaultAction::TruncateResponseBody(n) | FaultAction::StallResponseBody(n)) => {
                    Some(*n)
                }
                _ => None,
            },
            corrupt: matches!(fault, Some(FaultAction::CorruptResponseBody)),
            rate: None,
        };
        let (sent, cut) = copy_body(up_r, &mut client_w, resp_kind, resp_plan, &mut |_| {})?;
        client_w.flush()?;
        shared.update(idx, |r| r.response_body_bytes = sent);
        if cut && matches!(fault, Some(FaultAction::StallResponseBody(_))) {
            // Hang: the client waits for bytes that do not come. Dropping the proxy shuts
            // the connection, which ends the wait.
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while std::time::Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let upstream_close =
            resp.has_token("connection", "close") || resp_kind == BodyKind::UntilClose;
        if cut || client_close || upstream_close {
            close_all(&client_w, &upstream);
            return Ok(());
        }
    }
}

/// True when an idle upstream connection is still open and has sent nothing unexpected.
fn upstream_idle_and_open(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let open = matches!(s.peek(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).is_ok() && open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_matching_counts_per_rule() {
        let rule = FaultRule::new("patch", "/blobs/uploads/", 2, FaultAction::status(500, ""));
        assert!(rule.matches("PATCH", "/v2/a/blobs/uploads/x", Some(0)));
        assert!(!rule.matches("PUT", "/v2/a/blobs/uploads/x", Some(0)));
        assert!(!rule.matches("PATCH", "/v2/a/manifests/x", Some(0)));
        let big = rule.clone().min_body(1000);
        assert!(big.matches("PATCH", "/v2/a/blobs/uploads/x", Some(1000)));
        assert!(!big.matches("PATCH", "/v2/a/blobs/uploads/x", Some(999)));
        assert!(!big.matches("PATCH", "/v2/a/blobs/uploads/x", None));
        let shared = Shared {
            upstream: "127.0.0.1:1".parse().expect("addr"),
            state: Mutex::new(State {
                rules: vec![(rule, 0)],
                ..State::default()
            }),
            stop: AtomicBool::new(false),
        };
        let p = "/v2/a/blobs/uploads/1";
        assert!(shared.begin("PATCH", p, Some(5)).1.is_none());
        assert!(shared.begin("GET", "/v2/", Some(0)).1.is_none());
        assert!(shared.begin("PATCH", p, Some(5)).1.is_some());
        assert!(shared.begin("PATCH", p, Some(5)).1.is_none());
        assert_eq!(shared.lock().faults, 1);
        assert_eq!(shared.lock().records.len(), 4);
    }

    #[test]
    fn copies_chunked_with_cut_and_corruption() {
        let src = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let mut out = Vec::new();
        let (n, cut) = copy_body(
            &mut &src[..],
            &mut out,
            BodyKind::Chunked,
            BodyPlan::default(),
            &mut |_| {},
        )
        .expect("copy");
        assert_eq!((n, cut), (11, false));
        assert_eq!(out, src);

        let mut out = Vec::new();
        let (n, cut) = copy_body(
            &mut &src[..],
            &mut out,
            BodyKind::Chunked,
            BodyPlan {
                limit: Some(7),
                corrupt: true,
                rate: None,
            },
            &mut |_| {},
        )
        .expect("copy");
        assert_eq!((n, cut), (7, true));
        assert_eq!(out[..3], *b"5\r\n");
        assert_eq!(out[3], b'h' ^ 0xff);

        let mut out = Vec::new();
        let (n, cut) = copy_body(
            &mut &b"abcdef"[..],
            &mut out,
            BodyKind::Length(6),
            BodyPlan {
                limit: Some(4),
                corrupt: false,
                rate: None,
            },
            &mut |_| {},
        )
        .expect("copy");
        assert_eq!((n, cut, out.as_slice()), (4, true, &b"abcd"[..]));
    }

    #[test]
    fn a_throttled_body_takes_its_time() {
        let body = vec![7u8; 40_000];
        let mut out = Vec::new();
        let began = std::time::Instant::now();
        let (n, cut) = copy_body(
            &mut &body[..],
            &mut out,
            BodyKind::Length(40_000),
            BodyPlan {
                rate: Some(100_000),
                ..BodyPlan::default()
            },
            &mut |_| {},
        )
        .expect("copy");
        assert_eq!((n, cut), (40_000, false));
        assert_eq!(out, body);
        // 40 kB at 100 kB/s: the last piece is due after 0.35 s.
        assert!(
            began.elapsed() >= Duration::from_millis(300),
            "{:?}",
            began.elapsed()
        );
    }
}
