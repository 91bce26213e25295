//! Every fault action observably happens against the real registry.

use hoist_oci::Digest;
use hoist_testkit::{
    FaultAction, FaultProxy, FaultRule, Registry, http_get, http_request, parse_response,
    port_open, require_tool,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Push a blob straight to the registry (monolithic POST + PUT); returns its digest.
fn push_blob(addr: SocketAddr, repo: &str, body: &[u8]) -> Digest {
    let digest = Digest::sha256_of(body);
    let r = http_request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .expect("POST");
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location");
    let path = loc.trim_start_matches(&format!("http://{addr}"));
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = http_request(
        addr,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[],
        body,
    )
    .expect("PUT");
    assert_eq!(r.status, 201, "{}", r.text());
    digest
}

fn start_upload(addr: SocketAddr, repo: &str) -> String {
    let r = http_request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .expect("POST");
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location");
    loc.trim_start_matches(&format!("http://{addr}"))
        .to_string()
}

fn setup() -> Option<Registry> {
    if !require_tool("docker-registry") {
        return None;
    }
    Some(Registry::start().expect("registry starts"))
}

#[test]
fn passes_through_with_host_unchanged_and_keep_alive() {
    let Some(reg) = setup() else { return };
    let proxy = FaultProxy::start(reg.addr(), vec![]).expect("proxy");
    let paddr = proxy.addr();
    // Location is built from the client's Host: it points back at the proxy.
    let r = http_request(paddr, "POST", "/v2/k/blobs/uploads/", &[], b"").expect("POST");
    assert_eq!(r.status, 202);
    assert!(
        r.header("location")
            .expect("Location")
            .starts_with(&format!("http://{paddr}/")),
        "{:?}",
        r.header("location")
    );

    // Two requests on one connection, the second with a chunked body.
    let upload = start_upload(paddr, "k");
    let mut s = TcpStream::connect(paddr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut rd = BufReader::new(s.try_clone().expect("clone"));
    write!(s, "GET /v2/ HTTP/1.1\r\nHost: {paddr}\r\n\r\n").expect("write");
    let first = read_one_response(&mut rd);
    assert_eq!(first.status, 200);
    write!(
        s,
        "PATCH {upload} HTTP/1.1\r\nHost: {paddr}\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: application/octet-stream\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    .expect("write");
    let second = read_one_response(&mut rd);
    assert_eq!(second.status, 202);
    assert_eq!(second.header("range"), Some("0-10"));
    let recs = proxy.records();
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[3].method, "PATCH");
    assert_eq!(recs[3].request_body_bytes, 11, "payload bytes, not framing");
    assert_eq!(proxy.total_body_bytes_forwarded(), 11);
    assert_eq!(proxy.faults_injected(), 0);

    drop(proxy);
    assert!(!port_open(paddr), "proxy port still open after drop");
}

/// Read exactly one Content-Length-framed response from a keep-alive connection.
fn read_one_response(rd: &mut BufReader<TcpStream>) -> hoist_testkit::HttpResponse {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        rd.read_until(b'\n', &mut line).expect("read head");
        assert!(!line.is_empty(), "connection closed");
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut resp = parse_response(&head, true).expect("parse head");
    let len: usize = resp
        .header("content-length")
        .map_or(0, |v| v.parse().expect("length"));
    let mut body = vec![0; len];
    rd.read_exact(&mut body).expect("body");
    resp.body = body;
    resp
}

#[test]
fn cut_after_body_bytes_closes_and_counts() {
    let Some(reg) = setup() else { return };
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            1,
            FaultAction::CutAfterBodyBytes(4000),
        )],
    )
    .expect("proxy");
    let upload = start_upload(proxy.addr(), "cut");
    let body = vec![7u8; 10_000];
    let r = http_request(proxy.addr(), "PATCH", &upload, &[], &body);
    assert!(r.is_err(), "client must see the connection drop, got {r:?}");
    let rec = proxy
        .records()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("PATCH recorded");
    assert_eq!(rec.request_body_bytes, 4000);
    assert_eq!(rec.status, None);
    assert_eq!(rec.fault, Some(FaultAction::CutAfterBodyBytes(4000)));
    assert_eq!(proxy.faults_injected(), 1);

    // The rule fired once: a retry of the same PATCH goes through whole.
    let r = http_request(
        proxy.addr(),
        "PATCH",
        &start_upload(proxy.addr(), "cut"),
        &[],
        &body,
    )
    .expect("second PATCH");
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-9999"));
    assert_eq!(proxy.total_body_bytes_forwarded(), 14_000);
}

#[test]
fn cut_after_exactly_the_body_forwards_it_all_and_drops_the_response() {
    let Some(reg) = setup() else { return };
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            1,
            FaultAction::CutAfterBodyBytes(10_000),
        )],
    )
    .expect("proxy");
    let upload = start_upload(proxy.addr(), "exact");
    let r = http_request(proxy.addr(), "PATCH", &upload, &[], &vec![3u8; 10_000]);
    assert!(r.is_err(), "client must see the connection drop, got {r:?}");
    let rec = proxy
        .records()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("PATCH recorded");
    assert_eq!((rec.request_body_bytes, rec.status), (10_000, None));
    assert_eq!(proxy.faults_injected(), 1);
}

#[test]
fn respond_answers_without_forwarding_then_nth_rule() {
    let Some(reg) = setup() else { return };
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![FaultRule {
            method: Some("GET".into()),
            path_contains: Some("/v2/".into()),
            min_body: None,
            nth: 2,
            action: FaultAction::Respond {
                status: 503,
                headers: vec![("Retry-After".into(), "1".into())],
                body: "busy".into(),
            },
        }],
    )
    .expect("proxy");
    let r1 = http_get(proxy.addr(), "/v2/").expect("GET 1");
    assert_eq!(r1.status, 200);
    assert_eq!(
        r1.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r2 = http_get(proxy.addr(), "/v2/").expect("GET 2");
    assert_eq!(r2.status, 503);
    assert_eq!(r2.header("retry-after"), Some("1"));
    assert_eq!(r2.text(), "busy");
    assert!(
        r2.header("docker-distribution-api-version").is_none(),
        "came from the registry"
    );
    assert_eq!(http_get(proxy.addr(), "/v2/").expect("GET 3").status, 200);

    // A canned response for a PATCH swallows the body and forwards nothing.
    proxy.set_plan(vec![FaultRule::new(
        "PATCH",
        "/blobs/uploads/",
        1,
        FaultAction::status(416, ""),
    )]);
    let upload = start_upload(proxy.addr(), "resp");
    let r = http_request(proxy.addr(), "PATCH", &upload, &[], &[1u8; 5000]).expect("PATCH");
    assert_eq!(r.status, 416);
    assert_eq!(proxy.total_body_bytes_forwarded(), 0);
    // The registry never saw it: the upload is still empty.
    let st = http_get(reg.addr(), &upload).expect("upload status");
    assert_eq!(st.status, 204);
    assert_eq!(st.header("range"), Some("0-0"));
    assert!(st.header("docker-upload-uuid").is_some());
}

#[test]
fn stall_delays_and_rewrite_location_replaces() {
    let Some(reg) = setup() else { return };
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![
            FaultRule::new(
                "GET",
                "/v2/",
                1,
                FaultAction::Stall(Duration::from_millis(400)),
            ),
            FaultRule::new(
                "POST",
                "/blobs/uploads/",
                1,
                FaultAction::RewriteLocation("/elsewhere/upload".into()),
            ),
        ],
    )
    .expect("proxy");
    let t = Instant::now();
    assert_eq!(http_get(proxy.addr(), "/v2/").expect("GET").status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "no stall: {:?}",
        t.elapsed()
    );
    let r = http_request(proxy.addr(), "POST", "/v2/rw/blobs/uploads/", &[], b"").expect("POST");
    assert_eq!(r.status, 202);
    assert_eq!(r.header("location"), Some("/elsewhere/upload"));
    assert_eq!(proxy.faults_injected(), 2);
}

#[test]
fn truncate_and_corrupt_response_bodies() {
    let Some(reg) = setup() else { return };
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = push_blob(reg.addr(), "tc", &blob);
    let path = format!("/v2/tc/blobs/{digest}");
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![
            FaultRule::new(
                "GET",
                "/blobs/sha256:",
                1,
                FaultAction::TruncateResponseBody(1000),
            ),
            FaultRule::new("GET", "/blobs/sha256:", 2, FaultAction::CorruptResponseBody),
        ],
    )
    .expect("proxy");
    let r = http_get(proxy.addr(), &path);
    let err = r.expect_err("truncated body must not parse as complete");
    assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    let rec = proxy.records().pop().expect("record");
    assert_eq!(rec.status, Some(200));
    assert_eq!(rec.response_body_bytes, 1000);

    let r = http_get(proxy.addr(), &path).expect("GET corrupt");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), blob.len());
    assert_ne!(Digest::sha256_of(&r.body), digest);
    assert_eq!(r.body[0], blob[0] ^ 0xff);
    assert_eq!(r.body[1..], blob[1..]);

    let r = http_get(proxy.addr(), &path).expect("GET clean");
    assert_eq!(Digest::sha256_of(&r.body), digest);
}

#[test]
fn head_requests_and_reconnects_after_upstream_idle_close() {
    let Some(reg) = setup() else { return };
    let digest = push_blob(reg.addr(), "hd", b"twelve bytes");
    let proxy = FaultProxy::start(reg.addr(), vec![]).expect("proxy");
    let paddr = proxy.addr();
    let mut s = TcpStream::connect(paddr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut rd = BufReader::new(s.try_clone().expect("clone"));
    // HEAD carries a Content-Length but no body: the proxy must not wait for one.
    write!(
        s,
        "HEAD /v2/hd/blobs/{digest} HTTP/1.1\r\nHost: {paddr}\r\n\r\n"
    )
    .expect("write");
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        rd.read_until(b'\n', &mut line).expect("read");
        assert!(!line.is_empty(), "closed");
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let r = parse_response(&head, true).expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("12"));
    // Same client connection, after the upstream went away and came back.
    let mut reg = reg;
    reg.restart().expect("restart");
    write!(
        s,
        "GET /v2/hd/blobs/{digest} HTTP/1.1\r\nHost: {paddr}\r\n\r\n"
    )
    .expect("write");
    let r = read_one_response(&mut rd);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"twelve bytes");
}
