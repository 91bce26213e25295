//! Basic auth against a real htpasswd registry, credentials from a docker config, and secrets
//! kept out of errors and logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::blob_file;
use hoist_oci::MediaType;
use hoist_registry::{Client, Credentials, Progress, PushOptions, Repo, RetryPolicy};

const PASSWORD: &str = "pa55-Sekrit-xyzzy";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything this test thread logs, at every level, until the guard drops.
///
/// The other tests of this binary run on other threads with no subscriber. If this thread's
/// subscriber were the only dispatcher in the process, tracing-core would take its fast path and
/// compute a log site's interest from the default of whichever thread reaches that site first.
/// A site first reached by another test would then be switched off for good, and this test would
/// see no `registry response` line at all (it did, under `cargo test`). A global dispatcher that
/// records nothing makes two, so every site asks every dispatcher.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        // Err only if a global is already set, which is just as good.
        let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::new());
    });
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

fn builder() -> hoist_registry::ClientBuilder {
    Client::builder()
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(3))
}

#[tokio::test]
async fn basic_auth_push_pull_and_no_secret_anywhere() {
    let Some(reg) = common::registry_htpasswd("alice", PASSWORD) else {
        return;
    };
    let (logs, _guard) = capture_logs();

    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 200_000, 1);
    let repo = Repo::new(reg.host(), "private/app").expect("repo");

    // Anonymous: refused with an auth error.
    let anon = builder().no_docker_config().build().expect("client");
    let e = anon
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("anonymous push");
    assert!(e.is_auth() && e.is_refused(), "{e}");
    assert!(
        e.to_string().contains("hoist has no credentials for"),
        "{e}"
    );

    // Wrong password: refused, and the attempted password is nowhere in the error.
    let wrong = builder()
        .credentials(Credentials::new("alice", "not-the-password-123"))
        .build()
        .expect("client");
    let e = wrong
        .blob_exists(&repo, &src.digest)
        .await
        .expect_err("wrong password");
    assert!(e.is_auth(), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "refused the credentials hoist has for {}",
            reg.host()
        )),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("not-the-password-123"));

    // Right password from the caller.
    let c = builder()
        .credentials(Credentials::new("alice", PASSWORD))
        .build()
        .expect("client");
    c.push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("authenticated push");
    let config = b"{}";
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, config).expect("config");
    let cfg = hoist_registry::BlobSource {
        path: config_path,
        digest: hoist_oci::Digest::sha256_of(config),
        size: 2,
    };
    c.push_blob(&repo, &cfg, &PushOptions::default(), &Progress::none())
        .await
        .expect("config blob");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        cfg.digest,
        MediaType::OCI_LAYER_GZIP,
        src.digest,
        src.size
    );
    c.push_manifest(
        &repo,
        "v1",
        &MediaType::new(MediaType::OCI_MANIFEST),
        manifest.as_bytes(),
    )
    .await
    .expect("manifest");

    // Credentials from a docker config.json (`auths` with base64 `auth`).
    let docker_dir = tempfile::tempdir().expect("tempdir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    let cfg_path = docker_dir.path().join("config.json");
    std::fs::write(
        &cfg_path,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .expect("docker config");
    let from_file = builder().docker_config(&cfg_path).build().expect("client");
    let got = from_file
        .get_manifest(&repo, "v1")
        .await
        .expect("pull with config.json");
    assert_eq!(got.bytes(), manifest.as_bytes());
    assert!(!format!("{from_file:?}").contains(PASSWORD));

    drop(_guard);
    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        text.contains("registry response"),
        "the requests were logged: {text}"
    );
    assert!(!text.contains(PASSWORD), "password leaked into logs");
    assert!(!text.contains(&auth), "Authorization leaked into logs");
    assert!(!text.contains("not-the-password-123"));
}

#[tokio::test]
async fn credentials_named_for_a_registry_go_to_that_registry_only() {
    let Some(a) = common::registry_htpasswd("alice", PASSWORD) else {
        return;
    };
    let Some(b) = common::registry_htpasswd("bob", "bobs-own-password-456") else {
        return;
    };
    let (repo_a, repo_b) = (
        Repo::new(a.host(), "team/app").expect("repo"),
        Repo::new(b.host(), "team/app").expect("repo"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 100_000, 2);
    let both = builder()
        .no_docker_config()
        .registry_credentials(a.host(), Credentials::new("alice", PASSWORD))
        .registry_credentials(b.host(), Credentials::new("bob", "bobs-own-password-456"))
        .build()
        .expect("client");
    for repo in [&repo_a, &repo_b] {
        both.push_blob(repo, &src, &PushOptions::default(), &Progress::none())
            .await
            .unwrap_or_else(|e| panic!("push to {repo}: {e}"));
    }
    // Only A's: B is asked anonymously (and refuses), not with alice's password.
    let only_a = builder()
        .no_docker_config()
        .registry_credentials(a.host(), Credentials::new("alice", PASSWORD))
        .build()
        .expect("client");
    assert!(only_a.blob_exists(&repo_a, &src.digest).await.expect("A"));
    let e = only_a
        .blob_exists(&repo_b, &src.digest)
        .await
        .expect_err("B without credentials");
    assert!(e.is_auth(), "{e}");
}

/// A tiny token endpoint: answers every GET with a fixed token and records the request line
/// and whether Basic credentials came with it.
async fn token_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, bool)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut tmp).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let line = head.lines().next().unwrap_or_default().to_owned();
            let basic = head.to_ascii_lowercase().contains("authorization: basic ");
            log.lock().expect("log").push((line, basic));
            let body = r#"{"token":"tok-Secret-4711","expires_in":300}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn bearer_challenge_fetches_scoped_tokens_once_per_scope() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (token_addr, seen) = token_server().await;
    let challenge = format!(
        r#"Bearer realm="http://{token_addr}/token",service="hoist-svc",scope="repository:tok/app:pull""#
    );
    let unauthorized = common::respond(401, &[("WWW-Authenticate", challenge.as_str())], "");
    // The registry itself is open; the proxy demands a token on the first HEAD and POST.
    let proxy = common::proxy(
        reg.addr(),
        vec![
            common::FaultRule::new("HEAD", "/blobs/", 1, unauthorized.clone()),
            common::FaultRule::new("POST", "/blobs/uploads/", 1, unauthorized),
        ],
    );
    let (logs, _guard) = capture_logs();

    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 300_000, 9);
    let repo = Repo::new(proxy.host(), "tok/app").expect("repo");
    let c = builder()
        .credentials(Credentials::new("bob", PASSWORD))
        .build()
        .expect("client");
    c.push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push after token flow");
    // A second blob reuses the cached tokens: no more token requests.
    let src2 = blob_file(dir.path(), "b2", 1000, 10);
    c.push_blob(&repo, &src2, &PushOptions::default(), &Progress::none())
        .await
        .expect("second push");

    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2, "one token per scope: {seen:?}");
    assert!(
        seen.iter().all(|(_, basic)| *basic),
        "credentials sent to the realm"
    );
    assert!(seen[0].0.contains("service=hoist-svc"), "{seen:?}");
    assert!(
        seen[0].0.contains("scope=repository%3Atok%2Fapp%3Apull "),
        "{seen:?}"
    );
    assert!(
        seen[1]
            .0
            .contains("scope=repository%3Atok%2Fapp%3Apull%2Cpush "),
        "{seen:?}"
    );
    drop(_guard);
    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(text.contains("registry response"));
    assert!(!text.contains("tok-Secret-4711"), "token leaked into logs");
    assert!(!text.contains(PASSWORD), "password leaked into logs");
}

#[tokio::test]
async fn credentials_never_go_to_a_plain_http_realm_on_another_host() {
    let Some(reg) = common::registry() else {
        return;
    };
    let challenge = r#"Bearer realm="http://auth.example.com/token",service="svc""#;
    let proxy = common::proxy(
        reg.addr(),
        vec![common::FaultRule::new(
            "HEAD",
            "/blobs/",
            1,
            common::respond(401, &[("WWW-Authenticate", challenge)], ""),
        )],
    );
    let repo = Repo::new(proxy.host(), "realm/app").expect("repo");
    let c = builder()
        .credentials(Credentials::new("carol", PASSWORD))
        .build()
        .expect("client");
    let e = c
        .blob_exists(&repo, &hoist_oci::Digest::sha256_of(b"x"))
        .await
        .expect_err("plain-HTTP realm refused");
    assert!(e.is_misbehaved(), "{e}");
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    assert!(!format!("{e:?}").contains(PASSWORD));
}

#[tokio::test]
async fn an_endless_401_ends_after_one_reauth() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (token_addr, seen) = token_server().await;
    let challenge = format!(r#"Bearer realm="http://{token_addr}/token",service="svc""#);
    let proxy = common::proxy(
        reg.addr(),
        vec![common::FaultRule::new(
            "HEAD",
            "/blobs/",
            0,
            common::respond(401, &[("WWW-Authenticate", challenge.as_str())], ""),
        )],
    );
    let repo = Repo::new(proxy.host(), "loop/app").expect("repo");
    let c = builder().no_docker_config().build().expect("client");
    let e = c
        .blob_exists(&repo, &hoist_oci::Digest::sha256_of(b"x"))
        .await
        .expect_err("always 401");
    assert!(e.is_auth() && e.is_refused(), "{e}");
    let heads = proxy
        .records()
        .iter()
        .filter(|r| r.method == "HEAD")
        .count();
    assert_eq!(heads, 2, "one retry after re-auth, then stop");
    assert_eq!(seen.lock().expect("seen").len(), 1);
}
