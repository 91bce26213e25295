//! TLS and token auth together through the binary (issue 9): a registry serving HTTPS with a test
//! CA, requiring bearer tokens from a token server whose realm is HTTPS with the same CA. hoist
//! pushes and pulls through it with `--cert-dir`; the realm's scheme and host decide whether
//! credentials may be sent to it at all.

use hoist_oci::{Compression, Digest, Layout};
use hoist_testkit::require_tool;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, TlsFiles, TokenServer};
use hoist_tests::Hoist;

const USER: &str = "ci-bot";

/// The password, carrying the run's sentinel (so ci's secret scan looks for it everywhere).
fn password() -> String {
    hoist_testkit::secrets::secret("tls-token-pw")
}

#[test]
fn push_and_pull_with_an_https_realm_and_a_tls_registry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = TlsFiles::generate().expect("TLS files");
    let tokens = TokenServer::builder()
        .user(USER, &password())
        .grant(USER, "secure/*", &["pull", "push"])
        .tls(&files)
        .expect("token TLS")
        .start()
        .expect("token server");
    assert!(tokens.realm().starts_with("https://"), "{}", tokens.realm());
    let registry = Registry::builder()
        .tls(&files)
        .token_auth(&tokens.auth())
        .start()
        .expect("TLS registry with token auth");
    let src = tmp.path().join("src");
    let image = write_oci_layout(
        &src,
        "v1",
        &ImageSpec::uniform(2, 300_000, Compression::Gzip, 77),
    )
    .expect("layout");
    let cache = tmp.path().join("cache");
    let creds = format!("{USER}:{}", password());
    let target = format!("docker://{}/secure/app:v1", registry.host());

    // Without any --cert-dir hoist speaks plain HTTP to a loopback registry, which this TLS
    // registry answers with a bare 400: the error says the request was plain HTTP.
    let out = Hoist::new(&cache)
        .args(["-q", "--creds", &creds, "copy"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&target)
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("400"), "{}", out.stderr);
    assert!(out.stderr.contains("plain HTTP"), "{}", out.stderr);
    assert!(!out.stderr.contains(&password()), "{}", out.stderr);

    // Trusting another CA only: refused, naming the certificate problem, nothing sent to the
    // realm.
    let other = TlsFiles::generate().expect("other CA");
    let out = Hoist::new(&cache)
        .args(["-q", "--creds", &creds, "--cert-dir"])
        .arg(other.cert_dir())
        .arg("copy")
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&target)
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
    assert_eq!(
        tokens.requests(),
        0,
        "token requested before TLS was trusted"
    );

    // With the CA: push, then pull back, through the https realm.
    Hoist::new(&cache)
        .args(["-q", "--creds", &creds, "--cert-dir"])
        .arg(files.cert_dir())
        .arg("copy")
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&target)
        .run()
        .success();
    assert!(tokens.issued() >= 1, "no token issued");
    assert!(
        tokens.issued_for("repository:secure/app:pull,push") >= 1,
        "{:?}",
        tokens.scopes()
    );
    let pulled = tmp.path().join("pulled");
    Hoist::new(&cache)
        .args(["-q", "--creds", &creds, "--cert-dir"])
        .arg(files.cert_dir())
        .arg("copy")
        .arg(&target)
        .arg(format!("oci:{}:v1", pulled.display()))
        .run()
        .success();
    let layout = Layout::open(&pulled).expect("pulled layout");
    let got = layout.image(Some("v1"), None).expect("pulled image");
    assert_eq!(got.descriptor.digest, image.manifest_digest);
    for layer in &image.layers {
        let bytes = std::fs::read(layout.blob_path(&layer.digest)).expect("pulled layer");
        assert_eq!(Digest::sha256_of(&bytes), layer.digest);
    }

    // A wrong password: the realm refuses, hoist says so, and no token is handed out.
    let issued = tokens.issued();
    let out = Hoist::new(&cache)
        .args(["-q", "--creds", &format!("{USER}:wrong"), "--cert-dir"])
        .arg(files.cert_dir())
        .arg("copy")
        .arg(&target)
        .arg(format!("oci:{}:v1", tmp.path().join("denied").display()))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("token"),
        "{}",
        out.stderr
    );
    assert_eq!(tokens.issued(), issued);
}

/// Pull through a plain-HTTP token-auth registry whose challenge the fault proxy rewrites to
/// name the realm `realm_of` gives; returns how many requests the token server saw and what
/// hoist printed (prefixed with its exit code).
fn pull_with_realm(realm_of: impl Fn(&TokenServer) -> String) -> (usize, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = TokenServer::builder()
        .user(USER, &password())
        .grant(USER, "*", &["pull", "push"])
        .start()
        .expect("token server");
    let registry = Registry::builder()
        .token_auth(&tokens.auth())
        .start()
        .expect("registry");
    let realm = realm_of(&tokens);
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![FaultRule::new(
            "GET",
            "/v2/",
            0,
            FaultAction::Respond {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(r#"Bearer realm="{realm}",service="hoist-testkit-registry""#),
                )],
                body: r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .into(),
            },
        )],
    )
    .expect("proxy");
    let out = Hoist::new(&tmp.path().join("cache"))
        .args(["-q", "--creds", &format!("{USER}:{}", password()), "copy"])
        .arg(format!("docker://{}/any/app:v1", proxy.host()))
        .arg(format!("oci:{}:v1", tmp.path().join("out").display()))
        .run();
    assert_eq!(
        tokens.refused() + tokens.issued(),
        tokens.requests(),
        "token server bookkeeping"
    );
    (
        tokens.requests(),
        format!("exit {:?}\n{}", out.code, out.stderr),
    )
}

#[test]
fn a_plain_http_realm_gets_credentials_only_on_loopback() {
    if !require_tool("docker-registry") {
        return;
    }
    // Another host over plain HTTP: refused before anything is sent (the name cannot resolve,
    // so a regression would fail on the lookup, never reach a network).
    let (asked, out) = pull_with_realm(|_| "http://auth.hoist-test.invalid/token".into());
    assert_eq!(asked, 0, "{out}");
    assert!(out.starts_with("exit Some(1)"), "{out}");
    assert!(
        out.contains("refusing to send credentials to a token realm over plain HTTP"),
        "{out}"
    );
    assert!(!out.contains(&password()), "{out}");

    // The loopback token server over plain HTTP: followed (the local test setup case); the pull
    // then fails only because the repository is empty, after a token was asked for.
    let (asked, out) = pull_with_realm(TokenServer::realm);
    assert!(asked >= 1, "loopback realm not asked: {out}");
    assert!(!out.contains("refusing to send credentials"), "{out}");
}

#[test]
fn a_tls_registry_with_a_plain_http_realm_gets_no_credentials() {
    if !require_tool("docker-registry") {
        return;
    }
    // With --cert-dir every connection is TLS-only: a realm over plain HTTP, even on loopback,
    // is a downgrade and is refused before the password is sent.
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = TlsFiles::generate().expect("TLS files");
    let tokens = TokenServer::builder()
        .user(USER, &password())
        .grant(USER, "*", &["pull", "push"])
        .start()
        .expect("plain token server");
    let registry = Registry::builder()
        .tls(&files)
        .token_auth(&tokens.auth())
        .start()
        .expect("TLS registry");
    let out = Hoist::new(&tmp.path().join("cache"))
        .args([
            "-q",
            "--creds",
            &format!("{USER}:{}", password()),
            "--cert-dir",
        ])
        .arg(files.cert_dir())
        .arg("copy")
        .arg(format!("docker://{}/any/app:v1", registry.host()))
        .arg(format!("oci:{}:v1", tmp.path().join("out").display()))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("refusing to send credentials to a token realm over plain HTTP"),
        "{}",
        out.stderr
    );
    assert_eq!(tokens.requests(), 0, "credentials went to the plain realm");
}

#[test]
fn a_client_certificate_from_the_cert_dir_and_an_insecure_tls_registry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let image = write_oci_layout(
        &src,
        "v1",
        &ImageSpec::uniform(1, 200_000, Compression::Gzip, 78),
    )
    .expect("layout");
    let source = format!("oci:{}:v1", src.display());

    // A registry that requires a client certificate signed by its CA.
    let files = TlsFiles::generate().expect("TLS files");
    let mtls = Registry::builder()
        .tls(&files)
        .require_client_certificate(&files)
        .start()
        .expect("mutual-TLS registry");
    let target = format!("docker://{}/mtls/app:v1", mtls.host());
    // The CA alone is not enough: the handshake fails.
    let out = Hoist::new(&cache)
        .args(["-q", "--retries", "0", "--cert-dir"])
        .arg(files.cert_dir())
        .arg("copy")
        .arg(&source)
        .arg(&target)
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    // client.d holds ca.crt, client.cert and client.key, as docker's certs.d/HOST would.
    let out = Hoist::new(&cache)
        .args(["-q", "--cert-dir"])
        .arg(files.client_cert_dir())
        .arg("copy")
        .arg(&source)
        .arg(&target)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = Hoist::new(&cache)
        .args(["--cert-dir"])
        .arg(files.client_cert_dir())
        .args(["inspect", "--raw", &target])
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(Digest::sha256_of(&out.stdout), image.manifest_digest);

    // A TLS registry on 127.0.0.1 whose CA hoist does not know, named insecure: HTTPS
    // without verification, as docker does for an insecure registry.
    let other = TlsFiles::generate().expect("other TLS files");
    let secure = Registry::builder()
        .tls(&other)
        .start()
        .expect("TLS registry");
    let out = Hoist::new(&cache)
        .args(["-q", "--insecure-registry", &secure.host(), "push"])
        .arg(&source)
        .arg(format!("{}/loose/app:v1", secure.host()))
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = Hoist::new(&cache)
        .args(["--insecure-registry", &secure.host(), "inspect", "--raw"])
        .arg(format!("{}/loose/app:v1", secure.host()))
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(Digest::sha256_of(&out.stdout), image.manifest_digest);
}
