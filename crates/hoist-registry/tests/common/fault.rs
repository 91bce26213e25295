//! A small fault-injecting HTTP/1.1 proxy in front of the real registry (stop-gap until the
//! testkit's FaultProxy lands). One request per connection: requests are forwarded with
//! `Connection: close`, so every request can be matched, counted and recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with the matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward the head and `n` body bytes, then drop both connections without a response
    /// (when `n` covers the whole body, after the upstream answered: a lost response).
    CutAfterBodyBytes(u64),
    /// Answer without forwarding (the body is read and discarded).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Forward, then replace the response's `Location` with this value.
    RewriteLocation(String),
    /// Forward, then cut the response body after `n` bytes.
    TruncateResponseBody(usize),
    /// Read the request (head and body) and then never answer.
    Stall,
}

/// Apply `action` to the `nth` (1-based) request whose method is `method` and whose path
/// contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: &'static str,
    pub nth: usize,
    pub action: Action,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Record {
    pub method: String,
    pub path: String,
    /// 0 when no response was given (cut).
    pub status: u16,
    /// Request body bytes forwarded upstream (0 for `Respond`).
    pub body_bytes: u64,
    pub faulted: bool,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Record>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: SocketAddr,
    rules: Vec<Rule>,
    counts: Mutex<Vec<usize>>,
    records: Arc<Mutex<Vec<Record>>>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let records = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream,
            counts: Mutex::new(vec![0; rules.len()]),
            rules,
            records: records.clone(),
        });
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, &shared).await;
                });
            }
        });
        FaultProxy {
            addr,
            records,
            task,
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().expect("records").clone()
    }

    /// Total request body bytes forwarded for requests of `method`.
    pub fn body_bytes(&self, method: &str) -> u64 {
        self.records()
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.body_bytes)
            .sum()
    }
}

async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(p + 4));
        }
        let mut tmp = [0u8; 8192];
        let n = r.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn content_length(head: &str) -> u64 {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn strip_header(head: &str, name: &str) -> String {
    head.split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_none_or(|(k, _)| !k.trim().eq_ignore_ascii_case(name))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

async fn handle(mut client: TcpStream, s: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let Some(end) = read_head(&mut client, &mut buf).await? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut rest = buf[end..].to_vec();
    let first = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let len = content_length(&head);

    let action = {
        let mut counts = s.counts.lock().expect("counts");
        let mut found = None;
        for (i, r) in s.rules.iter().enumerate() {
            if r.method == method && path.contains(r.path_contains) {
                counts[i] += 1;
                if counts[i] == r.nth && found.is_none() {
                    found = Some(r.action.clone());
                }
            }
        }
        found
    };
    let mut record = Record {
        method: method.clone(),
        path: path.clone(),
        status: 0,
        body_bytes: 0,
        faulted: action.is_some(),
    };

    if let Some(Action::Stall) = &action {
        let mut tmp = vec![0u8; 64 * 1024];
        while client.read(&mut tmp).await? > 0 {}
        s.records.lock().expect("records").push(record);
        return Ok(());
    }
    if let Some(Action::Respond {
        status,
        headers,
        body,
    }) = &action
    {
        // Read and discard the body.
        // Nothing is forwarded: body_bytes stays 0.
        let mut left = len.saturating_sub(rest.len() as u64);
        let mut tmp = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = client.read(&mut tmp[..left.min(65536) as usize]).await?;
            if n == 0 {
                break;
            }
            left -= n as u64;
        }
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(body);
        client.write_all(resp.as_bytes()).await?;
        client.shutdown().await?;
        record.status = *status;
        s.records.lock().expect("records").push(record);
        return Ok(());
    }

    let mut up = TcpStream::connect(s.upstream).await?;
    let head_out =
        strip_header(head.trim_end_matches("\r\n"), "connection") + "\r\nConnection: close\r\n\r\n";
    up.write_all(head_out.as_bytes()).await?;
    let limit = match &action {
        Some(Action::CutAfterBodyBytes(n)) => (*n).min(len),
        _ => len,
    };
    // Forward `limit` body bytes.
    let mut sent = 0u64;
    if !rest.is_empty() {
        let take = (limit as usize).min(rest.len());
        up.write_all(&rest[..take]).await?;
        sent += take as u64;
        rest.clear();
    }
    let mut tmp = vec![0u8; 64 * 1024];
    while sent < limit {
        let want = ((limit - sent) as usize).min(tmp.len());
        let n = client.read(&mut tmp[..want]).await?;
        if n == 0 {
            break;
        }
        up.write_all(&tmp[..n]).await?;
        sent += n as u64;
    }
    record.body_bytes = sent;
    if let Some(Action::CutAfterBodyBytes(n)) = action {
        up.flush().await?;
        if n >= len {
            // The whole body went through: let the upstream finish, then lose its response.
            let mut sink = Vec::new();
            let _ = read_head(&mut up, &mut sink).await;
        }
        drop(up);
        drop(client);
        s.records.lock().expect("records").push(record);
        return Ok(());
    }
    // Relay the response.
    let mut rbuf = Vec::new();
    let Some(rend) = read_head(&mut up, &mut rbuf).await? else {
        s.records.lock().expect("records").push(record);
        return Ok(());
    };
    let mut rhead = String::from_utf8_lossy(&rbuf[..rend]).into_owned();
    record.status = rhead
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if let Some(Action::RewriteLocation(loc)) = &action {
        rhead = strip_header(rhead.trim_end_matches("\r\n"), "location")
            + &format!("\r\nLocation: {loc}\r\n\r\n");
    }
    client.write_all(rhead.as_bytes()).await?;
    let mut body_budget = match &action {
        Some(Action::TruncateResponseBody(n)) => *n,
        _ => usize::MAX,
    };
    let first = &rbuf[rend..];
    let k = first.len().min(body_budget);
    client.write_all(&first[..k]).await?;
    body_budget -= k;
    loop {
        if body_budget == 0 {
            break;
        }
        let n = up.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        let k = n.min(body_budget);
        client.write_all(&tmp[..k]).await?;
        body_budget -= k;
    }
    client.shutdown().await?;
    s.records.lock().expect("records").push(record);
    Ok(())
}
