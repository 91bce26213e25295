//! A lying registry: a tiny HTTP/1.1 server on 127.0.0.1 that answers with wrong digests,
//! endless redirects and 401s, foreign token realms, huge bodies, HTML pages and garbage
//! `Range`/`Location` headers. Every case must end in a clear, bounded error: no panic, no
//! credential sent where it does not belong, nothing partial left where a blob would go.

mod bodies;
mod headers;
mod review_fixes;
mod token_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_oci::{Descriptor, Digest, Layout, MAX_JSON_SIZE, MediaType};
use hoist_registry::{
    BlobSource, Client, Credentials, Progress, PushOptions, PushOutcome, Repo, RetryPolicy,
};

const USER: &str = "hostile-user";
const PASSWORD: &str = "s3cret-Pa55word";
const TOKEN: &str = "tok-QWERTY-123";

/// One request as the lying registry saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    /// The first [`KEPT_BODY`] bytes of the request body.
    body: Vec<u8>,
}

/// How much of each request body the lying registry keeps to be looked at.
const KEPT_BODY: u64 = 64 * 1024;

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
    /// All of `body` (with its `Content-Length`), one byte every `every`: never silent for
    /// long, never done soon.
    Trickle {
        body: Vec<u8>,
        every: Duration,
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
    let mut req = Seen {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let body_len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kept = body_len.min(KEPT_BODY);
    let _ = (&mut reader).take(kept).read_to_end(&mut req.body);
    let _ = std::io::copy(
        &mut (&mut reader).take(body_len - kept),
        &mut std::io::sink(),
    );
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
        Payload::Trickle { body, .. } => {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
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
        Payload::Trickle { body, every } => {
            for byte in body.chunks(1) {
                if out.write_all(byte).and_then(|()| out.flush()).is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(every);
            }
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

/// The descriptor of an uncompressed layer holding exactly `bytes`.
fn layer_of(bytes: &[u8]) -> Descriptor {
    Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(bytes),
        bytes.len() as u64,
    )
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

/// Push `src` to the lying registry with the default options.
async fn push(reg: &Lying, src: &BlobSource) -> hoist_registry::Result<PushOutcome> {
    client()
        .push_blob(&reg.repo(), src, &PushOptions::default(), &Progress::none())
        .await
}

/// The upload session the harness's honest answers open and keep.
const SESSION: &str = "/v2/hostile/app/blobs/uploads/s1";

/// A POST answered honestly: a session opened at [`SESSION`], nothing held yet.
fn session_opened() -> Reply {
    Reply::new(202)
        .header("Location", SESSION)
        .header("Range", "0-0")
}

/// A PATCH answered honestly: every byte up to the end of its Content-Range held.
fn acknowledged(req: &Seen) -> Reply {
    let end = req
        .header("content-range")
        .and_then(|r| r.split_once('-'))
        .map_or("0", |(_, end)| end)
        .to_owned();
    Reply::new(202)
        .header("Location", SESSION)
        .header("Range", &format!("0-{end}"))
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
