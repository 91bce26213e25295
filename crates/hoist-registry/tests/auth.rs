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
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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
