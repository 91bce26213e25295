//! TLS for real: a distribution registry serving a certificate from a CA the testkit generated
//! (rcgen, in-process). An unknown CA is refused with a clear error and nothing is sent in
//! plain HTTP instead; the CA given as a file or as a certs.d-style directory is trusted, for
//! `127.0.0.1`, `localhost` and `::1` alike. A host named insecure gets HTTPS without
//! verification, or plain HTTP when it answers the handshake in plain HTTP; a registry that
//! requires a client certificate gets the one given.

mod common;

use common::blob_file;
use hoist_registry::{Client, Progress, PushKind, PushOptions, Repo, RetryPolicy};
use hoist_testkit::{Registry, TlsFiles, require_tool};

fn base() -> hoist_registry::ClientBuilder {
    Client::builder()
        .no_docker_config()
        .plain_http_loopback(false)
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(2))
        .timeout(std::time::Duration::from_secs(20))
}

#[tokio::test]
async fn unknown_ca_is_refused_and_a_given_ca_is_trusted() {
    if !require_tool("docker-registry") {
        return;
    }
    let tls = TlsFiles::generate().expect("generate certificates");
    let reg = Registry::builder()
        .tls(&tls)
        .start()
        .expect("start TLS registry");
    assert!(reg.url().starts_with("https://"), "{}", reg.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 200_000, 1);

    // Unknown CA: a transport error naming the certificate problem, with the https URL, and
    // no fallback to plain HTTP, even on a loopback host where plain HTTP would be allowed.
    let repo = Repo::new(reg.host(), "tls/app").expect("repo");
    let e = base()
        .build()
        .expect("client")
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("unknown CA");
    assert!(e.is_transport() && e.is_untrusted_certificate(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("TLS certificate is not trusted") && text.contains("UnknownIssuer"),
        "message names the certificate problem: {e}"
    );
    assert!(e.url().is_some_and(|u| u.starts_with("https://")), "{e}");
    // The registry logs the refused handshake a moment after the client gave up.
    let mut log = reg.log_tail();
    for _ in 0..50 {
        if log.contains("unknown certificate authority") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = reg.log_tail();
    }
    assert!(
        !log.contains("HTTP request to an HTTPS server"),
        "no plain HTTP was tried: {log}"
    );
    // An untrusted certificate is not retried (the policy would allow 2 attempts).
    assert_eq!(
        log.matches("unknown certificate authority").count(),
        1,
        "one handshake, no retry: {log}"
    );

    // CA as a file.
    let out = base()
        .ca_file(tls.ca_file())
        .build()
        .expect("client")
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push over TLS");
    assert_eq!(out.kind, PushKind::Uploaded);

    // CA as a directory (docker certs.d style), and the other names in the certificate.
    let port = reg.addr().port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        if host.starts_with('[') && std::net::TcpStream::connect(("::1", port)).is_err() {
            // The registry listens on 127.0.0.1 only; ::1 is covered by the certificate test.
            continue;
        }
        let c = base().ca_file(tls.cert_dir()).build().expect("client");
        let r = Repo::new(host.clone(), "tls/app").expect("repo");
        assert!(
            c.blob_exists(&r, &src.digest).await.expect("HEAD over TLS"),
            "blob visible via {host}"
        );
    }

    // A CA that is not the one that signed the server: refused again.
    let other = TlsFiles::generate().expect("other CA");
    let e = base()
        .ca_file(other.ca_file())
        .build()
        .expect("client")
        .blob_exists(&repo, &src.digest)
        .await
        .expect_err("wrong CA");
    assert!(e.is_untrusted_certificate(), "{e}");
}

#[tokio::test]
async fn a_host_named_insecure_gets_https_without_verification_or_plain_http() {
    if !require_tool("docker-registry") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 200_000, 2);

    // HTTPS with a certificate from a CA the client does not know: accepted for that host.
    let tls = TlsFiles::generate().expect("generate certificates");
    let secure = Registry::builder()
        .tls(&tls)
        .start()
        .expect("start TLS registry");
    let repo = Repo::new(secure.host(), "insecure/tls").expect("repo");
    let out = base()
        .insecure_host(secure.host())
        .build()
        .expect("client")
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push over unverified TLS");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert!(
        !secure
            .log_tail()
            .contains("HTTP request to an HTTPS server"),
        "no plain HTTP went to a TLS registry: {}",
        secure.log_tail()
    );

    // A registry without TLS (not treated as loopback here): the handshake is answered in
    // plain HTTP. Not named insecure, that is one clear error, not retried ...
    let plain = Registry::start().expect("start plain registry");
    let repo = Repo::new(plain.host(), "insecure/plain").expect("repo");
    let e = base()
        .build()
        .expect("client")
        .blob_exists(&repo, &src.digest)
        .await
        .expect_err("TLS to a plain registry");
    assert!(e.is_transport() && e.is_plain_http_server(), "{e}");
    assert!(e.to_string().contains("serves no TLS"), "{e}");
    assert!(e.url().is_some_and(|u| u.starts_with("https://")), "{e}");
    // ... and named insecure, the client goes on in plain HTTP.
    let c = base().insecure_host(plain.host()).build().expect("client");
    let out = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push after falling back to plain HTTP");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert!(c.blob_exists(&repo, &src.digest).await.expect("HEAD"));
}

#[tokio::test]
async fn a_registry_that_requires_a_client_certificate_gets_the_one_given() {
    if !require_tool("docker-registry") {
        return;
    }
    let tls = TlsFiles::generate().expect("generate certificates");
    let reg = Registry::builder()
        .tls(&tls)
        .require_client_certificate(&tls)
        .start()
        .expect("start mutual-TLS registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 100_000, 3);
    let repo = Repo::new(reg.host(), "mtls/app").expect("repo");

    // Without a client certificate the handshake fails.
    let e = base()
        .ca_file(tls.ca_file())
        .build()
        .expect("client")
        .blob_exists(&repo, &src.digest)
        .await
        .expect_err("no client certificate");
    assert!(e.is_transport(), "{e}");

    // With the one the registry's CA signed, everything works.
    let client_dir = tls.client_cert_dir();
    let c = base()
        .ca_file(tls.ca_file())
        .client_certificate(
            client_dir.join("client.cert"),
            client_dir.join("client.key"),
        )
        .build()
        .expect("client");
    let out = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push with a client certificate");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert!(c.blob_exists(&repo, &src.digest).await.expect("HEAD"));
}
