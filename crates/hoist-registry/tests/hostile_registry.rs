//! A lying registry: a tiny HTTP/1.1 server on 127.0.0.1 that answers with wrong digests,
//! endless redirects and 401s, foreign token realms, huge bodies, HTML pages and garbage
//! `Range`/`Location` headers. Every case must end in a clear, bounded error: no panic, no
//! credential sent where it does not belong, nothing partial left where a blob would go.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_oci::{Descriptor, Digest, Layout, MAX_JSON_SIZE, MediaType};
use hoist_registry::{BlobSource, Client, Credentials, Progress, PushOptions, Repo, RetryPolicy};

const USER: &str = "hostile-user";
const PASSWORD: &str = "s3cret-Pa55word";
const TOKEN: &str = "tok-QWERTY-123";

/// One request as the lying registry saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Payload {
    Bytes(Vec<u8>),
    /// `len` zero bytes, streamed; with or without a `Content-Length`.
    Zeros {
        len: u64,
        declared: bool,
    },
    /// A `Content-Length` of `declared`, then `prefix`, then silence for `silence`.
    Stall {
        prefix: Vec<u8>,
        declared: u64,
        silence: Duration,
    },
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    payload: Payload,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Bytes(Vec::new()),
        }
    }

    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.payload = Payload::Bytes(b.into());
        self
    }

    fn zeros(mut self, len: u64, declared: bool) -> Reply {
        self.payload = Payload::Zeros { len, declared };
        self
    }
}

type Handler = dyn Fn(&Seen, SocketAddr) -> Reply + Send + Sync;

struct Lying {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    body_bytes_sent: Arc<AtomicU64>,
}

impl Lying {
    fn start(handler: impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static) -> Lying {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, c) = (seen.clone(), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, s, c) = (handler.clone(), s.clone(), c.clone());
                std::thread::spawn(move || serve(stream, addr, &*h, &s, &c));
            }
        });
        Lying {
            addr,
            seen,
            body_bytes_sent: sent,
        }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn repo(&self) -> Repo {
        Repo::new(self.host(), "hostile/app").expect("repo")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn count(&self, method: &str, path_contains: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path.contains(path_contains))
            .count()
    }
}

/// One request per connection (`Connection: close`), enough for the client under test.
fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    handler: &Handler,
    seen: &Mutex<Vec<Seen>>,
    sent: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let req = Seen {
        method,
        path,
        headers,
    };
    let body_len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink());
    seen.lock().expect("lock").push(req.clone());
    let reply = handler(&req, addr);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} Hostile\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &reply.payload {
        Payload::Bytes(b) => head.push_str(&format!("Content-Length: {}\r\n", b.len())),
        Payload::Zeros {
            len,
            declared: true,
        } => {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        Payload::Zeros { .. } => {}
        Payload::Stall { declared, .. } => {
            head.push_str(&format!("Content-Length: {declared}\r\n"));
        }
    }
    head.push_str("\r\n");
    if out.write_all(head.as_bytes()).is_err() || req.method == "HEAD" {
        return;
    }
    match reply.payload {
        Payload::Bytes(b) => {
            let _ = out.write_all(&b);
        }
        Payload::Stall {
            prefix, silence, ..
        } => {
            let _ = out.write_all(&prefix);
            let _ = out.flush();
            std::thread::sleep(silence);
        }
        Payload::Zeros { len, .. } => {
            let buf = vec![0u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent.fetch_add(n as u64, Ordering::Relaxed);
                left -= n as u64;
            }
        }
    }
    let _ = out.flush();
}

fn client() -> Client {
    Client::builder()
        .no_docker_config()
        .credentials(Credentials::new(USER, PASSWORD))
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(2))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// No secret in what a user would see.
fn assert_no_secret(err: &hoist_registry::Error) {
    let shown = format!("{err} {err:?}");
    for secret in [PASSWORD, TOKEN] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
}

fn manifest_json() -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        Digest::sha256_of(b"{}")
    )
    .into_bytes()
}

#[tokio::test]
async fn manifest_whose_digest_does_not_match_is_refused() {
    let real = manifest_json();
    let promised = Digest::sha256_of(b"what was asked for");
    let body = real.clone();
    let lie = promised.to_string();
    let reg = Lying::start(move |req, _| {
        let r = Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .body(body.clone());
        if req.path.ends_with("/bad-header") {
            r.header("Docker-Content-Digest", "sha256:../../../etc/passwd")
        } else {
            r.header("Docker-Content-Digest", &lie)
        }
    });
    let c = client();
    // By digest: the bytes must hash to what was asked for.
    let err = c
        .get_manifest(&reg.repo(), &promised.to_string())
        .await
        .expect_err("by digest");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(err.to_string().contains(&promised.to_string()), "{err}");
    // By tag: the bytes must hash to the registry's own Docker-Content-Digest.
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("by tag");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(
        err.to_string().contains("manifest digest mismatch"),
        "{err}"
    );
    // A digest header that is no digest is misbehaviour, not a path.
    let err = c
        .get_manifest(&reg.repo(), "bad-header")
        .await
        .expect_err("bad header");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

#[tokio::test]
async fn endless_redirects_are_bounded() {
    let reg = Lying::start(|req, addr| {
        // Alternate a relative path and an absolute URL, each a little longer, forever.
        let loc = if req.path.len() % 2 == 0 {
            format!("{}x", req.path)
        } else {
            format!("http://{addr}{}y", req.path)
        };
        Reply::new(307).header("Location", &loc)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"blob"), 4);
    let sink = layout.blob_path(&desc.digest);
    let err = client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect_err("redirect loop");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("redirect"), "{err}");
    let gets = reg.count("GET", "/blobs/");
    assert!(
        (2..=8).contains(&gets),
        "{gets} blob GETs for a redirect loop"
    );
    assert_layout_clean(&layout);
    // A manifest GET is not redirected at all: the 3xx is an error, once.
    let before = reg.seen().len();
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("redirected manifest");
    assert_eq!(err.status(), Some(307), "{err}");
    assert_eq!(
        reg.seen().len() - before,
        1,
        "the manifest GET was repeated"
    );
}

#[tokio::test]
async fn endless_401_reauthenticates_once_then_fails() {
    let reg = Lying::start(|req, addr| {
        if req.path.starts_with("/token") {
            return Reply::new(200).body(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
        }
        let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
        Reply::new(401)
            .header("WWW-Authenticate", &challenge)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
    });
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("401 forever");
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("authentication required"), "{err}");
    assert_no_secret(&err);
    assert_eq!(reg.count("GET", "/token"), 1, "one token fetch");
    assert_eq!(
        reg.count("GET", "/manifests/"),
        2,
        "one retry with the token"
    );
    let with_token = reg
        .seen()
        .iter()
        .filter(|s| s.header("authorization") == Some(&format!("Bearer {TOKEN}")))
        .count();
    assert_eq!(with_token, 1);

    // Basic, forever.
    let reg = Lying::start(|_, _| Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#));
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("basic 401 forever");
    assert!(err.is_auth(), "{err}");
    assert_no_secret(&err);
    assert_eq!(
        reg.count("GET", "/manifests/"),
        2,
        "one retry with credentials"
    );
}

#[tokio::test]
async fn plain_http_realm_on_another_host_gets_no_credentials() {
    for realm in [
        "http://auth.hostile.invalid/token",
        "http://10.255.255.1:8080/token",
        "http://localhost.hostile.invalid/token",
    ] {
        let challenge = format!(r#"Bearer realm="{realm}",service="x""#);
        let reg = Lying::start(move |_, _| Reply::new(401).header("WWW-Authenticate", &challenge));
        let started = std::time::Instant::now();
        let err = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .expect_err("foreign realm");
        assert!(err.is_misbehaved(), "{realm}: {err}");
        assert!(
            err.to_string().contains("plain HTTP"),
            "{realm}: refused, not tried: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{realm}: no connection was attempted"
        );
        assert_no_secret(&err);
        assert!(
            reg.seen()
                .iter()
                .all(|s| s.header("authorization").is_none()),
            "{realm}: credentials were sent"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_cut_at_the_cap() {
    const HUNDRED_MIB: u64 = 100 << 20;
    for declared in [true, false] {
        let reg = Lying::start(move |req, _| {
            if req.path.contains("/manifests/") {
                Reply::new(200)
                    .header("Content-Type", MediaType::OCI_MANIFEST)
                    .zeros(HUNDRED_MIB, declared)
            } else {
                // An error page of 100 MiB.
                Reply::new(404)
                    .header("Content-Type", "text/html")
                    .zeros(HUNDRED_MIB, declared)
            }
        });
        let err = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .expect_err("100 MiB manifest");
        assert!(err.is_misbehaved(), "declared={declared}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("exceeds the {MAX_JSON_SIZE}-byte limit")),
            "declared={declared}: {err}"
        );
        // The client stopped reading near the cap (plus what socket buffers absorbed).
        let sent = reg.body_bytes_sent.load(Ordering::Relaxed);
        assert!(
            sent < 3 * MAX_JSON_SIZE as u64 + (8 << 20),
            "declared={declared}: {sent} bytes were read"
        );
        // A huge error body: the status survives, the body is not read whole.
        let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
        let dir = tempfile::tempdir().expect("tempdir");
        let err = client()
            .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
            .await
            .expect_err("404 with a huge body");
        assert!(err.is_not_found(), "declared={declared}: {err}");
        assert!(err.to_string().len() < 1_000, "{err}");
    }
}

#[tokio::test]
async fn html_error_pages_are_reduced_to_their_status_line() {
    let page = "<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1><p>Request ID 7f3a</p><script>alert(1)</script></body></html>";
    let bad_gateway = "<!DOCTYPE html><html><body>upstream is down</body></html>";
    let reg = Lying::start(move |req, _| {
        if req.path.contains("forbidden") {
            Reply::new(403)
                .header("Content-Type", "text/html; charset=utf-8")
                .body(page)
        } else {
            Reply::new(502).body(bad_gateway)
        }
    });
    let err = client()
        .get_manifest(&reg.repo(), "forbidden")
        .await
        .expect_err("403 page");
    let text = err.to_string();
    assert!(err.is_refused() && err.is_auth(), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(
        !text.contains('<') && !text.contains("alert"),
        "HTML in: {text}"
    );
    let err = client()
        .get_manifest(&reg.repo(), "gateway")
        .await
        .expect_err("502 page");
    let text = err.to_string();
    assert!(err.is_misbehaved(), "{text}");
    assert!(text.contains("502 Bad Gateway"), "{text}");
    assert!(!text.contains('<'), "HTML in: {text}");
}

fn blob_source(dir: &Path, bytes: &[u8]) -> BlobSource {
    let path = dir.join("src");
    std::fs::write(&path, bytes).expect("write source");
    BlobSource {
        path,
        digest: Digest::sha256_of(bytes),
        size: bytes.len() as u64,
    }
}

/// An upload endpoint: HEAD says absent, POST opens a session at `location`, PATCH answers
/// with `range`.
fn upload_registry(location: &'static str, range: &'static str) -> Lying {
    Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" => Reply::new(202)
            .header("Location", location)
            .header("Range", "0-0"),
        "PATCH" => Reply::new(202)
            .header("Location", "/v2/hostile/app/blobs/uploads/s1")
            .header("Range", range),
        "PUT" => Reply::new(201),
        _ => Reply::new(404),
    })
}

#[tokio::test]
async fn garbage_location_and_range_headers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &[7u8; 1000]);
    for location in [
        "javascript:alert(1)",
        "ftp://127.0.0.1/upload",
        "http://[::1",
        "   ",
    ] {
        let reg = upload_registry(location, "0-0");
        let err = client()
            .push_blob(
                &reg.repo(),
                &src,
                &PushOptions::default(),
                &Progress::none(),
            )
            .await
            .expect_err("garbage Location");
        assert!(err.is_misbehaved(), "{location:?}: {err}");
        assert!(err.to_string().contains("Location"), "{location:?}: {err}");
        assert_eq!(reg.count("PATCH", ""), 0, "{location:?}: a PATCH was sent");
    }
    // A session on a plain-HTTP foreign host: refused before a byte or a credential goes there.
    let reg = upload_registry("http://uploads.hostile.invalid/s1", "0-0");
    let err = client()
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await
        .expect_err("foreign Location");
    assert!(err.to_string().contains("plain HTTP"), "{err}");
    assert_no_secret(&err);
    for range in [
        "bytes=0-abc",
        "5-10",
        "0-99999999999999999999999",
        "0-18446744073709551614",
        "0--1",
        "-",
    ] {
        let reg = upload_registry("/v2/hostile/app/blobs/uploads/s1", range);
        let err = client()
            .push_blob(
                &reg.repo(),
                &src,
                &PushOptions::default(),
                &Progress::none(),
            )
            .await
            .expect_err("garbage Range");
        assert!(err.is_misbehaved(), "{range:?}: {err}");
        assert!(
            err.to_string().contains("Range") || err.to_string().contains("claims"),
            "{range:?}: {err}"
        );
        assert_eq!(
            reg.count("PUT", ""),
            0,
            "{range:?}: the upload was closed anyway"
        );
    }
}

fn assert_layout_clean(layout: &Layout) {
    let dir = layout.root().join("blobs").join("sha256");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("blobs dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left in the layout: {left:?}");
    let beside: Vec<_> = std::fs::read_dir(layout.root().join("blobs"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, vec!["sha256"], "stray files under blobs/");
}

#[tokio::test]
async fn blob_get_with_wrong_bytes_is_not_written_to_the_layout() {
    let real = b"the real layer bytes".to_vec();
    let desc = Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(&real),
        real.len() as u64,
    );
    let reg = Lying::start(move |req, _| {
        if req.path.contains("longer") {
            Reply::new(200).body(vec![b'x'; 4096])
        } else {
            // Same size, different content.
            Reply::new(200).body(vec![b'x'; 20])
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let sink = layout.blob_path(&desc.digest);
    let err = client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect_err("wrong bytes");
    assert!(err.is_digest_mismatch(), "{err}");
    assert_eq!(err.digest(), Some(&desc.digest));
    assert!(!layout.has_blob(&desc).expect("has_blob"));
    assert_layout_clean(&layout);
    // More bytes than the descriptor says: cut off, nothing kept.
    let longer = Repo::new(reg.host(), "hostile/longer").expect("repo");
    let err = client()
        .pull_blob(&longer, &desc, &sink, &Progress::none())
        .await
        .expect_err("too long");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("more than"), "{err}");
    assert_layout_clean(&layout);
    // The streaming reader fails at its end instead of reporting a complete layer.
    let mut stream = client()
        .open_blob_stream(&reg.repo(), &desc)
        .await
        .expect("open stream");
    let mut buf = Vec::new();
    let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
    assert!(r.is_err(), "a wrong blob read to a clean EOF");
}

#[tokio::test]
async fn endless_tag_pages_are_bounded_in_bytes_and_pages() {
    // Full pages (4 MiB of tags each), each linking to one more, forever.
    let mut page = br#"{"name":"hostile/app","tags":["#.to_vec();
    while page.len() < 4 << 20 {
        page.extend_from_slice(br#""t-0123456789abcdef0123456789abcdef","#);
    }
    page.extend_from_slice(br#""last"]}"#);
    let page = Arc::new(page);
    let reg = Lying::start(move |req, _| {
        let n = req.path.len();
        Reply::new(200)
            .header(
                "Link",
                &format!(r#"<{}&n={n}>; rel="next""#, req.path.replace("?", "?x=1&")),
            )
            .header("Content-Type", "application/json")
            .body(page.as_slice())
    });
    let err = client()
        .list_tags(&reg.repo())
        .await
        .expect_err("endless pages");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("tag list exceeds"), "{err}");
    let pages = reg.count("GET", "/tags/list");
    assert!(pages <= 17, "{pages} pages of 4 MiB were read");

    // Tiny pages linking to themselves: the page limit ends it.
    let reg = Lying::start(|req, _| {
        Reply::new(200)
            .header("Link", &format!(r#"<{}>; rel="next""#, req.path))
            .body(r#"{"name":"hostile/app","tags":["a"]}"#)
    });
    let err = client()
        .list_tags(&reg.repo())
        .await
        .expect_err("self-linked page");
    assert!(err.to_string().contains("pagination did not end"), "{err}");
}

#[tokio::test]
async fn blob_redirects_carry_no_credentials_and_no_plain_http_to_foreign_hosts() {
    let real = b"layer bytes behind a storage redirect".to_vec();
    let desc = Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(&real),
        real.len() as u64,
    );
    let storage = {
        let real = real.clone();
        Lying::start(move |_, _| Reply::new(200).body(real.clone()))
    };
    let storage_url = format!("http://{}/bucket/blob?X-Amz-Signature=abc", storage.addr);
    let reg = Lying::start(move |req, _| {
        if req.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        if req.path.contains("foreign") {
            return Reply::new(307).header("Location", "http://storage.hostile.invalid/blob");
        }
        Reply::new(307).header("Location", &storage_url)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("blob");
    client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect("pull through a redirect");
    assert_eq!(std::fs::read(&sink).expect("read"), real);
    assert!(
        reg.seen()
            .iter()
            .any(|s| s.header("authorization").is_some()),
        "the registry itself got credentials"
    );
    assert!(
        storage
            .seen()
            .iter()
            .all(|s| s.header("authorization").is_none()),
        "credentials were sent to the redirect target"
    );
    // A redirect to a foreign host over plain HTTP is refused, not tried.
    let foreign = Repo::new(reg.host(), "hostile/foreign").expect("repo");
    let err = client()
        .pull_blob(&foreign, &desc, &dir.path().join("b2"), &Progress::none())
        .await
        .expect_err("plain HTTP redirect");
    assert!(err.to_string().contains("plain HTTP"), "{err}");
    assert_no_secret(&err);
    assert!(!dir.path().join("b2").exists());
}

#[tokio::test]
async fn a_captive_portal_page_or_huge_header_is_an_error_not_a_manifest() {
    let reg = Lying::start(|req, _| {
        if req.path.contains("portal") {
            Reply::new(200)
                .header("Content-Type", "text/html")
                .body("<html><body><form>Log in to the hotel Wi-Fi</form></body></html>")
        } else {
            Reply::new(200).header("X-Filler", &"a".repeat(1 << 20))
        }
    });
    let err = client()
        .get_manifest(&reg.repo(), "portal")
        .await
        .expect_err("HTML as a manifest");
    assert!(err.is_misbehaved(), "{err}");
    assert!(!err.to_string().contains('<'), "HTML in: {err}");
    let err = client()
        .get_manifest(&reg.repo(), "header")
        .await
        .expect_err("1 MiB header");
    assert!(err.to_string().len() < 1_000, "{err}");
    assert!(
        reg.count("GET", "/manifests/header") <= 2,
        "retried without bound"
    );
}

#[tokio::test]
async fn absurd_token_lifetimes_do_not_panic() {
    for expires_in in ["18446744073709551615", "1000000000000000000", "0"] {
        let body = manifest_json();
        let digest = Digest::sha256_of(&body).to_string();
        let reg = Lying::start(move |req, addr| {
            if req.path.starts_with("/token") {
                return Reply::new(200).body(format!(
                    r#"{{"token":"{TOKEN}","expires_in":{expires_in}}}"#
                ));
            }
            if req.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
                return Reply::new(200)
                    .header("Content-Type", MediaType::OCI_MANIFEST)
                    .header("Docker-Content-Digest", &digest)
                    .body(body.clone());
            }
            let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
            Reply::new(401).header("WWW-Authenticate", &challenge)
        });
        let got = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
        assert_eq!(got.bytes(), manifest_json().as_slice());
    }
}

#[tokio::test]
async fn short_long_and_misranged_blob_bodies_fail_cleanly() {
    let real = b"twenty bytes of blob".to_vec();
    let desc = Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(&real),
        real.len() as u64,
    );
    let reg = {
        let real = real.clone();
        Lying::start(move |req, _| {
            let ranged = req.header("range").is_some();
            if req.path.contains("/misrange/") && ranged {
                // A 206 whose Content-Range does not start where it was asked to.
                Reply::new(206)
                    .header("Content-Range", "bytes 3-19/20")
                    .body(&real[3..])
            } else if req.path.contains("/garbage/") && ranged {
                Reply::new(206)
                    .header("Content-Range", "bytes ../../etc/passwd")
                    .body(&real[10..])
            } else if req.path.contains("/longer/") {
                Reply::new(200).body([real.as_slice(), b"and then some"].concat())
            } else {
                // Always the first half, whatever was asked.
                Reply::new(200).body(&real[..10])
            }
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let sink = layout.blob_path(&desc.digest);
    for (name, check) in [
        ("short", "kept failing"),
        ("misrange", "range starting at"),
        ("garbage", "range starting at"),
        ("longer", "more than"),
    ] {
        let repo = Repo::new(reg.host(), format!("hostile/{name}")).expect("repo");
        let err = client()
            .pull_blob(&repo, &desc, &sink, &Progress::none())
            .await
            .expect_err(name);
        assert!(err.to_string().contains(check), "{name}: {err}");
        assert!(
            reg.count("GET", &format!("/{name}/")) <= 4,
            "{name}: unbounded retries"
        );
        assert_layout_clean(&layout);
        // The streaming reader reports an error, never a clean end with wrong content.
        let mut stream = client()
            .open_blob_stream(&repo, &desc)
            .await
            .expect("open stream");
        let mut buf = Vec::new();
        let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
        assert!(r.is_err(), "{name}: the stream ended cleanly with {buf:?}");
    }
}

#[tokio::test]
async fn completion_and_manifest_push_with_lying_digests_fail_briefly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &[9u8; 1000]);
    let other = Digest::sha256_of(b"something else").to_string();
    let junk = format!("<html>{}</html>", "x".repeat(32 * 1024));
    for (lie, check) in [
        (other.clone(), "stored the blob as"),
        (junk.clone(), "Docker-Content-Digest"),
    ] {
        let reg = Lying::start(move |req, _| match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => Reply::new(202).header("Location", "/v2/hostile/app/blobs/uploads/s1"),
            "PATCH" => Reply::new(202)
                .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                .header("Range", "0-999"),
            "PUT" => Reply::new(201).header("Docker-Content-Digest", &lie),
            _ => Reply::new(404),
        });
        let err = client()
            .push_blob(
                &reg.repo(),
                &src,
                &PushOptions::default(),
                &Progress::none(),
            )
            .await
            .expect_err("lying completion");
        let text = err.to_string();
        assert!(text.contains(check), "{text}");
        assert!(text.len() < 1_000, "a hostile header was echoed whole");
        assert!(!text.contains('<'), "{text}");
    }
    // A manifest PUT acknowledged under another digest.
    let reg = Lying::start(move |_, _| Reply::new(201).header("Docker-Content-Digest", &other));
    let err = client()
        .push_manifest(
            &reg.repo(),
            "v1",
            &MediaType::new(MediaType::OCI_MANIFEST),
            &manifest_json(),
        )
        .await
        .expect_err("lying manifest PUT");
    assert!(err.is_digest_mismatch(), "{err}");
}

#[tokio::test]
async fn hostile_error_and_token_bodies_stay_short_and_inert() {
    let reg = Lying::start(|req, addr| {
        let p = req.path.as_str();
        if p.starts_with("/token-html") {
            return Reply::new(200)
                .header("Content-Type", "text/html")
                .body("<html>login</html>");
        }
        if p.starts_with("/token-huge") {
            return Reply::new(200).zeros(100 << 20, true);
        }
        if p.contains("/manifests/ansi") {
            // Terminal escapes and a 30 KiB message inside a well-formed OCI error.
            let msg = format!("\u{1b}[2J\u{1b}]0;owned\u{7}{}", "y".repeat(30 * 1024));
            let body = serde_json::json!({"errors":[{"code":"DENIED","message":msg}]});
            return Reply::new(403)
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let realm = if p.contains("/manifests/html") {
            "token-html"
        } else {
            "token-huge"
        };
        Reply::new(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/{realm}",service="s""#),
        )
    });
    let err = client()
        .get_manifest(&reg.repo(), "ansi")
        .await
        .expect_err("ansi");
    let text = err.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.len() < 1_000, "{} bytes of error", text.len());
    assert_eq!(err.code(), Some("DENIED"));
    let err = client()
        .get_manifest(&reg.repo(), "html")
        .await
        .expect_err("HTML token");
    assert!(err.to_string().contains("token"), "{err}");
    assert!(!err.to_string().contains('<'), "{err}");
    let err = client()
        .get_manifest(&reg.repo(), "huge")
        .await
        .expect_err("huge token body");
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(
        reg.body_bytes_sent.load(Ordering::Relaxed) < 32 << 20,
        "the 100 MiB token body was read far past its cap"
    );
}

#[tokio::test]
async fn a_huge_redirect_url_is_not_echoed_whole() {
    let reg = Lying::start(|req, _| {
        Reply::new(307).header(
            "Location",
            &format!("{}/{}", req.path, "z".repeat(8 * 1024)),
        )
    });
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = client()
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("redirect loop with huge URLs");
    assert!(err.is_misbehaved(), "{}", err.to_string().len());
    let text = err.to_string();
    assert!(text.len() < 2_000, "{} bytes of error", text.len());
    assert!(err.url().is_some_and(|u| u.len() < 2_000));
}

#[tokio::test]
async fn an_oversized_location_is_the_registry_fault_not_the_user_input() {
    let reg = Lying::start(|req, _| {
        Reply::new(307).header(
            "Location",
            &format!("{}/{}", req.path, "q".repeat(40 * 1024)),
        )
    });
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = client()
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("40 KiB Location");
    assert!(err.is_misbehaved(), "{:?}: {}", err.kind(), err.message());
    assert!(
        reg.count("GET", "/blobs/") <= 2,
        "the huge Location was followed"
    );
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    let reg = Lying::start(|req, _| {
        let stall = Payload::Stall {
            prefix: b"{\"schemaVersion\":".to_vec(),
            declared: 4096,
            silence: Duration::from_secs(30),
        };
        let mut r = Reply::new(200).header("Content-Type", MediaType::OCI_MANIFEST);
        if req.path.contains("/blobs/") {
            r = Reply::new(404).header("Content-Type", "application/json");
        } else if req.path.contains("/tags/") {
            r = r.header("Content-Type", "application/json");
        }
        r.payload = stall;
        r
    });
    let c = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(1))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("stalled manifest body");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stalled body hung for {:?}",
        started.elapsed()
    );
    assert!(err.is_transport(), "{err}");
    let started = std::time::Instant::now();
    let err = c
        .list_tags(&reg.repo())
        .await
        .expect_err("stalled tag page");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    // An error response whose body stalls still reports its status, promptly.
    let started = std::time::Instant::now();
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = c
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("stalled 404 body");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn a_blob_stream_that_stalls_fails_instead_of_hanging() {
    let reg = Lying::start(|_, _| {
        let mut r = Reply::new(200);
        r.payload = Payload::Stall {
            prefix: vec![1u8; 10],
            declared: 4096,
            silence: Duration::from_secs(30),
        };
        r
    });
    let c = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(2))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(&[1u8; 4096]), 4096);
    let started = std::time::Instant::now();
    let mut stream = c.open_blob_stream(&reg.repo(), &desc).await.expect("open");
    let mut buf = Vec::new();
    let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
    assert!(r.is_err(), "a stalled stream ended cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a stalled stream hung for {:?}",
        started.elapsed()
    );
}
