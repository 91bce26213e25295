//! The registry and nginx components start, serve, and are gone after drop.

use hoist_testkit::{Nginx, Registry, http_get, http_request, pid_alive, port_open, require_tool};
use std::time::{Duration, Instant};

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn registry_serves_and_is_gone_after_drop() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start().expect("registry starts");
    let addr = reg.addr();
    let pid = reg.pid();
    assert_eq!(reg.host(), format!("127.0.0.1:{}", addr.port()));
    assert_eq!(reg.url(), format!("http://127.0.0.1:{}", addr.port()));
    let r = http_get(addr, "/v2/").expect("GET /v2/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    // A real upload session: POST answers 202 with an absolute Location built from Host.
    let r = http_request(addr, "POST", "/v2/t/blobs/uploads/", &[], b"").expect("POST");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("location").expect("Location");
    assert!(
        loc.starts_with(&format!("http://{addr}/v2/t/blobs/uploads/")),
        "{loc}"
    );
    let storage = reg.storage_dir().to_path_buf();
    assert!(storage.exists());
    drop(reg);
    assert!(!pid_alive(pid), "registry pid {pid} still alive");
    assert!(!port_open(addr), "port {addr} still open");
    assert!(!storage.exists(), "temp storage left behind");
}

#[test]
fn registry_auth_relative_urls_and_restart_keep_data() {
    if !require_tool("docker-registry") {
        return;
    }
    let storage = tempfile::tempdir().expect("tempdir");
    let mut reg = Registry::builder()
        .htpasswd("alice", "s3cret")
        .relative_urls(true)
        .storage_dir(storage.path())
        .start()
        .expect("registry starts");
    let addr = reg.addr();
    assert_eq!(reg.credentials(), Some(("alice", "s3cret")));
    let r = http_get(addr, "/v2/").expect("GET");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    // "alice:s3cret" in base64.
    let auth = [("Authorization", "Basic YWxpY2U6czNjcmV0")];
    let bad = [("Authorization", "Basic YWxpY2U6d3Jvbmc=")];
    assert_eq!(
        http_request(addr, "GET", "/v2/", &bad, b"")
            .expect("GET")
            .status,
        401
    );
    assert_eq!(
        http_request(addr, "GET", "/v2/", &auth, b"")
            .expect("GET")
            .status,
        200
    );

    // Monolithic upload of a small blob, then restart and read it back.
    let body = b"hello testkit";
    let digest = hoist_oci::Digest::sha256_of(body);
    let r = http_request(addr, "POST", "/v2/t/blobs/uploads/", &auth, b"").expect("POST");
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location").to_string();
    assert!(
        loc.starts_with("/v2/t/blobs/uploads/"),
        "relative URL expected: {loc}"
    );
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = format!("{loc}{sep}digest={digest}");
    let r = http_request(addr, "PUT", &put, &auth, body).expect("PUT");
    assert_eq!(r.status, 201, "{}", r.text());

    let old_pid = reg.pid();
    reg.restart().expect("restart");
    assert_eq!(reg.addr(), addr, "same port after restart");
    assert_ne!(reg.pid(), old_pid);
    assert!(!pid_alive(old_pid));
    let r = http_request(addr, "GET", &format!("/v2/t/blobs/{digest}"), &auth, b"").expect("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    // reset empties the storage and keeps the port.
    reg.reset().expect("reset");
    assert_eq!(reg.addr(), addr);
    let r = http_request(addr, "GET", &format!("/v2/t/blobs/{digest}"), &auth, b"").expect("GET");
    assert_eq!(r.status, 404, "blob gone after reset");
    let put_again = http_request(addr, "POST", "/v2/t/blobs/uploads/", &auth, b"").expect("POST");
    assert_eq!(put_again.status, 202, "serves after reset");
    drop(reg);
    // A caller-given storage dir is never deleted by the kit.
    assert!(storage.path().join("docker").exists());
}

#[test]
fn nginx_proxies_limits_and_adds_chunk_headers() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let reg = Registry::start().expect("registry starts");
    let limit = 64 * 1024;
    let proxy = Nginx::builder(reg.addr())
        .max_body_size(limit)
        .request_buffering(false)
        .chunk_max_length(Some(limit))
        .chunk_min_length(Some(1024))
        .start()
        .expect("nginx starts");
    let addr = proxy.addr();
    let pid = proxy.pid();
    assert_ne!(addr, reg.addr());

    let r = http_get(addr, "/v2/").expect("GET /v2/ through nginx");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(
        r.header("oci-chunk-max-length").is_none(),
        "header only on uploads"
    );

    // Location comes back pointing at the proxy (Host is passed through), with the headers.
    let r = http_request(addr, "POST", "/v2/t/blobs/uploads/", &[], b"").expect("POST");
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location").to_string();
    assert!(loc.starts_with(&format!("http://{addr}/")), "{loc}");
    assert_eq!(
        r.header("oci-chunk-max-length"),
        Some(limit.to_string().as_str())
    );
    assert_eq!(r.header("oci-chunk-min-length"), Some("1024"));

    // The limit is inclusive: exactly `limit` bytes pass, one more is refused by nginx.
    let path = loc.trim_start_matches(&format!("http://{addr}"));
    let exact = vec![b'a'; limit as usize];
    let r = http_request(
        addr,
        "PATCH",
        path,
        &[("Content-Type", "application/octet-stream")],
        &exact,
    )
    .expect("PATCH exact");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some(format!("0-{}", limit - 1).as_str()));
    let over = vec![b'a'; limit as usize + 1];
    let r = http_request(addr, "PATCH", path, &[], &over).expect("PATCH over");
    assert_eq!(r.status, 413);
    assert!(r.text().contains("nginx"), "413 page comes from nginx");

    drop(proxy);
    assert!(!pid_alive(pid), "nginx pid {pid} still alive");
    assert!(!port_open(addr), "port {addr} still open");
    // The registry is independent and still serves.
    assert_eq!(http_get(reg.addr(), "/v2/").expect("GET").status, 200);
    let reg_addr = reg.addr();
    reg.stop();
    eventually("registry port closed", || !port_open(reg_addr));
}

#[test]
fn a_panicking_test_still_kills_its_components() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let reg = Registry::start().expect("registry starts");
        let proxy = Nginx::builder(reg.addr()).start().expect("nginx starts");
        tx.send((reg.pid(), reg.addr(), proxy.pid(), proxy.addr()))
            .expect("send");
        panic!("test body fails while the components run");
    })
    .join();
    assert!(joined.is_err(), "the thread panicked");
    let (rpid, raddr, npid, naddr) = rx.recv().expect("pids");
    assert!(
        !pid_alive(rpid) && !pid_alive(npid),
        "processes survived the panic"
    );
    assert!(!port_open(raddr) && !port_open(naddr), "ports still open");
}
