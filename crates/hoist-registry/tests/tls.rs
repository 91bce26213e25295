//! TLS for real: a distribution registry serving a certificate from a CA the testkit generated
//! (rcgen, in-process). An unknown CA is refused with a clear error and nothing is sent in
//! plain HTTP instead; the CA given as a file or as a certs.d-style directory is trusted, for
//! `127.0.0.1`, `localhost` and `::1` alike. A host named insecure gets HTTPS without
//! verification, or plain HTTP when it answers the handshake in plain HTTP; a registry that
//! requires a client certificate gets the one given. A self-signed certificate marked as a CA
//! (what `openssl req -x509` makes) is accepted as the server's own when the caller trusted
//! exactly it, for the names it holds only.

mod common;

use common::blob_file;
use hoist_oci::{Descriptor, MediaType};
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

/// Regression: `openssl req -x509` makes a self-signed certificate marked `CA:TRUE`; trusted
/// through a certificate directory, it was refused as the server's own (webpki's
/// CaUsedAsEndEntity, shown as `Other(OtherError(..))`) where docker and skopeo accept it.
#[tokio::test]
async fn a_self_signed_ca_certificate_that_was_trusted_is_accepted_for_its_names() {
    if !require_tool("docker-registry") {
        return;
    }
    let tls = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("self-signed certificate");
    let reg = Registry::builder()
        .tls(&tls)
        .start()
        .expect("start TLS registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 150_000, 4);
    let repo = Repo::new(reg.host(), "selfsigned/app").expect("repo");

    // That very certificate in the certificate directory: push and pull work.
    let c = base().cert_dir(tls.cert_dir()).build().expect("client");
    let out = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push to a registry with a trusted self-signed certificate");
    assert_eq!(out.kind, PushKind::Uploaded);
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        src.digest.clone(),
        src.size,
    );
    let sink = dir.path().join("pulled");
    c.pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("pull");
    assert_eq!(
        std::fs::read(&sink).expect("pulled"),
        std::fs::read(&src.path).expect("source")
    );
    // As a CA file too.
    let c = base().ca_file(tls.cert_file()).build().expect("client");
    assert!(c.blob_exists(&repo, &src.digest).await.expect("HEAD"));

    // Nothing trusted, or another self-signed certificate for the same name: refused, in
    // words that say what the certificate is and what to do, not rustls' debug text.
    let other = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("other certificate");
    for c in [
        base().build().expect("client"),
        base().cert_dir(other.cert_dir()).build().expect("client"),
    ] {
        let e = c
            .blob_exists(&repo, &src.digest)
            .await
            .expect_err("a CA certificate nobody trusted as the server's own");
        assert!(e.is_untrusted_certificate(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("presents a CA certificate as its own")
                && text.contains("certificate directory"),
            "{text}"
        );
        // Nor anywhere down the chain a caller may print.
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            assert!(!c.to_string().contains("OtherError"), "{c}");
            cause = c.source();
        }
    }

    // Trusted, but spoken to by a name it does not hold (it names 127.0.0.1 only): refused.
    let port = reg.addr().port();
    let by_name = Repo::new(format!("localhost:{port}"), "selfsigned/app").expect("repo");
    let e = base()
        .cert_dir(tls.cert_dir())
        .build()
        .expect("client")
        .blob_exists(&by_name, &src.digest)
        .await
        .expect_err("a name the certificate does not hold");
    assert!(e.is_untrusted_certificate(), "{e}");
    assert!(
        e.to_string().contains("not valid for name \"localhost\""),
        "{e}"
    );

    // A trusted self-signed certificate for another name entirely, served on 127.0.0.1.
    let elsewhere = TlsFiles::self_signed_ca(&["registry.example"]).expect("certificate");
    let wrong = Registry::builder()
        .tls(&elsewhere)
        .start()
        .expect("start TLS registry");
    let repo = Repo::new(wrong.host(), "selfsigned/app").expect("repo");
    let e = base()
        .cert_dir(elsewhere.cert_dir())
        .build()
        .expect("client")
        .blob_exists(&repo, &src.digest)
        .await
        .expect_err("the certificate is for registry.example");
    assert!(e.is_untrusted_certificate(), "{e}");
    assert!(e.to_string().contains("registry.example"), "{e}");
}
