//! TLS for real: a distribution registry serving a certificate from a CA generated here.
//! An unknown CA is refused with a clear error (no fallback to plain HTTP); the CA given as a
//! file or a directory is trusted.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::blob_file;
use hoist_registry::{Client, Progress, PushKind, PushOptions, Repo, RetryPolicy};
use hoist_testkit::{ChildGuard, free_port, port_open, require_tool};

/// Make a CA (ca.pem) and a server certificate it signed for 127.0.0.1 and localhost
/// (cert.pem, key.pem) in `dir`.
fn make_cert(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl")
            .success()
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=hoist-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    let mut csr = vec!["req", "-subj", "/CN=hoist-test-server"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "server.csr"]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext file");
    run(&ca)
        && run(&csr)
        && run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ])
}

fn start_tls_registry(dir: &Path) -> (ChildGuard, SocketAddr) {
    let port = free_port().expect("port");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: hoist-tls-test\n  tls:\n    certificate: {}\n    key: {}\n",
        dir.join("storage").display(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config).expect("config");
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(&config_path);
    let guard = ChildGuard::spawn("docker-registry (tls)", cmd, &dir.join("registry.log"))
        .expect("spawn registry");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !port_open(addr) {
        assert!(Instant::now() < deadline, "TLS registry did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (guard, addr)
}

#[tokio::test]
async fn unknown_ca_is_refused_and_a_given_ca_is_trusted() {
    if !require_tool("docker-registry") || !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    if !make_cert(dir.path()) {
        if hoist_testkit::in_ci() {
            panic!("openssl cannot make an EC certificate");
        }
        eprintln!("SKIP: openssl cannot make an EC certificate");
        return;
    }
    let (_guard, addr) = start_tls_registry(dir.path());
    let repo = Repo::new(addr.to_string(), "tls/app").expect("repo");
    let src = blob_file(dir.path(), "b", 200_000, 1);
    let base = || {
        Client::builder()
            .no_docker_config()
            .plain_http_loopback(false)
            .chunk_size(64 * 1024)
            .retry(RetryPolicy::immediate(2))
    };

    // Unknown CA: a transport error naming the certificate problem, nothing sent in clear.
    let e = base()
        .build()
        .expect("client")
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("unknown CA");
    assert!(e.is_transport(), "{e}");
    let text = format!("{e}").to_ascii_lowercase();
    assert!(
        text.contains("certificate") || text.contains("issuer"),
        "{e}"
    );
    assert!(e.url().is_some_and(|u| u.starts_with("https://")), "{e}");

    // CA as a file.
    let out = base()
        .ca_file(dir.path().join("ca.pem"))
        .build()
        .expect("client")
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push over TLS");
    assert_eq!(out.kind, PushKind::Uploaded);

    // CA as a directory (docker certs.d style): the blob is there now.
    let certs = dir.path().join("certs.d");
    std::fs::create_dir(&certs).expect("mkdir");
    std::fs::copy(dir.path().join("ca.pem"), certs.join("ca.crt")).expect("copy");
    let c = base().ca_file(&certs).build().expect("client");
    assert!(
        c.blob_exists(&repo, &src.digest)
            .await
            .expect("HEAD over TLS")
    );
}
