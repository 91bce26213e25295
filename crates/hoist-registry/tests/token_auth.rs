//! Token auth for real: distribution 2.8 configured with `auth.token` trusting the testkit's
//! token server, which checks Basic credentials and signs ES256 JWTs granting per-repository
//! scopes. Push and pull with scoped tokens, caching, expiry and refresh in the middle of a
//! chunked upload, cross-repository mounts, deletes (which ask for every action), and a wrong
//! password that must not cause a storm.

mod common;

use common::blob_file;
use hoist_oci::{Descriptor, MediaType};
use hoist_registry::{
    BlobSource, Client, Credentials, Progress, PushKind, PushOptions, Repo, RetryPolicy,
};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, TokenServer, require_tool};
use std::time::Duration;

const ALICE_PW: &str = "alice-Pw-8c1e7d";
const BOB_PW: &str = "bob-Pw-44f0aa";
const CAROL_PW: &str = "carol-Pw-0d93b2";

fn client(user: &str, pass: &str) -> Client {
    Client::builder()
        .no_docker_config()
        .credentials(Credentials::new(user, pass))
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(3))
        .build()
        .expect("client")
}

/// A token server (alice: pull+push under `team/`; bob: pull on `team/app` only; carol: pull
/// and every action, `*`, under `team/`) and a registry trusting it; `None` after a SKIP.
fn setup(expires_in: u64) -> Option<(TokenServer, Registry)> {
    if !require_tool("docker-registry") {
        return None;
    }
    let tokens = TokenServer::builder()
        .user("alice", ALICE_PW)
        .user("bob", BOB_PW)
        .grant("alice", "team/*", &["pull", "push"])
        .grant("bob", "team/app", &["pull"])
        .user("carol", CAROL_PW)
        .grant("carol", "team/*", &["pull", "*"])
        .expires_in(expires_in)
        .start()
        .expect("token server");
    let reg = Registry::builder()
        .token_auth(&tokens.auth())
        .start()
        .expect("registry with token auth");
    Some((tokens, reg))
}

/// Pull `desc` from `repo` into `dir` and return the file's bytes' digest check (pull_blob
/// verifies the digest before renaming into place).
async fn pull_ok(c: &Client, repo: &Repo, src: &BlobSource, dir: &std::path::Path) {
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER),
        src.digest.clone(),
        src.size,
    );
    let out = dir.join(format!("pulled-{}", src.digest.hex()));
    c.pull_blob(repo, &desc, &out, &Progress::none())
        .await
        .expect("pull blob");
    assert_eq!(
        std::fs::metadata(&out).expect("pulled file").len(),
        src.size
    );
}

#[tokio::test]
async fn scoped_tokens_push_pull_and_are_cached() {
    let Some((tokens, reg)) = setup(300) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new(reg.host(), "team/app").expect("repo");
    let a = blob_file(dir.path(), "a", 300_000, 1);
    let b = blob_file(dir.path(), "b", 5_000, 2);

    let alice = client("alice", ALICE_PW);
    for src in [&a, &b] {
        let out = alice
            .push_blob(&repo, src, &PushOptions::default(), &Progress::none())
            .await
            .expect("alice pushes");
        assert_eq!(out.kind, PushKind::Uploaded);
    }
    let push_scope = "repository:team/app:pull,push";
    assert_eq!(
        tokens.issued_for(push_scope),
        1,
        "one token for two blobs and their many requests: {:?}",
        tokens.scopes()
    );
    pull_ok(&alice, &repo, &a, dir.path()).await;

    // bob may pull but not push: the registry refuses his token for the push.
    let bob = client("bob", BOB_PW);
    pull_ok(&bob, &repo, &b, dir.path()).await;
    let c = blob_file(dir.path(), "c", 1_000, 3);
    let e = bob
        .push_blob(&repo, &c, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("bob may not push");
    assert!(e.is_auth() && e.is_refused(), "{e}");

    // Anonymous: no token grants anything here.
    let anon = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(3))
        .build()
        .expect("client");
    let e = anon
        .blob_exists(&repo, &a.digest)
        .await
        .expect_err("anonymous HEAD");
    assert!(e.is_auth(), "{e}");
    // Tokens never show up in errors.
    for t in tokens.tokens() {
        assert!(!format!("{e} {e:?}").contains(&t));
    }
}

#[tokio::test]
async fn a_delete_asks_for_every_action_and_only_a_user_with_them_may() {
    let Some((tokens, reg)) = setup(300) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new(reg.host(), "team/app").expect("repo");
    let alice = client("alice", ALICE_PW);
    let config = blob_file(dir.path(), "config", 2_000, 21);
    alice
        .push_blob(&repo, &config, &PushOptions::default(), &Progress::none())
        .await
        .expect("push the config");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        config.digest,
        config.size
    );
    let mt = MediaType::new(MediaType::OCI_MANIFEST);
    let digest = alice
        .push_manifest(&repo, "v1", &mt, manifest.as_bytes())
        .await
        .expect("push the manifest");

    // Pushing or pulling is no right to delete: the registry refuses their tokens.
    for (user, password) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        let e = client(user, password)
            .delete_manifest(&repo, "v1")
            .await
            .expect_err("no right to delete");
        assert!(e.is_auth() && !e.is_not_found(), "{user}: {e}");
    }
    // distribution 2.8 needs `delete` for a DELETE and takes a token granting `*` for it.
    let carol = client("carol", CAROL_PW);
    let deleted = carol
        .delete_manifest(&repo, "v1")
        .await
        .expect("carol deletes");
    assert_eq!(deleted, digest);
    assert!(
        alice
            .head_manifest(&repo, "v1")
            .await
            .expect("head")
            .is_none()
    );
    let scopes = tokens.scopes();
    assert!(
        scopes.contains_key("repository:team/app:*"),
        "the DELETE asked for every action: {scopes:?}"
    );
    assert!(
        !scopes.keys().any(|s| s.contains("delete")),
        "no scope names `delete`: {scopes:?}"
    );
}

#[tokio::test]
async fn token_expiry_and_refresh_in_the_middle_of_a_chunked_push() {
    let Some((tokens, reg)) = setup(2) else {
        return;
    };
    // Stall two PATCHes past the token lifetime, so the upload continues with expired tokens.
    let stall = FaultAction::Stall(Duration::from_millis(2_600));
    let proxy = FaultProxy::start(
        reg.addr(),
        vec![
            FaultRule::new("PATCH", "/blobs/uploads/", 3, stall.clone()),
            FaultRule::new("PATCH", "/blobs/uploads/", 7, stall),
        ],
    )
    .expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "big", 640_000, 7); // 10 chunks of 64 KiB
    let repo = Repo::new(proxy.host(), "team/app").expect("repo");
    let alice = client("alice", ALICE_PW);
    let out = alice
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push survives token expiry");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert_eq!(out.restarts, 0, "the session went on: {out:?}");
    let push_scope = "repository:team/app:pull,push";
    assert!(
        tokens.issued_for(push_scope) >= 3,
        "tokens refreshed after each expiry: {:?}",
        tokens.scopes()
    );
    let records = proxy.records();
    let unauthorized = records.iter().filter(|r| r.status == Some(401)).count();
    assert!(
        unauthorized <= 4,
        "each expiry costs at most one 401 ({unauthorized}): {records:#?}"
    );
    // Every byte arrived: the registry serves the blob with the right digest.
    pull_ok(
        &alice,
        &Repo::new(reg.host(), "team/app").expect("repo"),
        &src,
        dir.path(),
    )
    .await;
}

#[tokio::test]
async fn cross_repo_mount_asks_for_pull_on_the_source() {
    let Some((tokens, reg)) = setup(300) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "m", 100_000, 11);
    let base = Repo::new(reg.host(), "team/base").expect("repo");
    let app = Repo::new(reg.host(), "team/app").expect("repo");
    let alice = client("alice", ALICE_PW);
    alice
        .push_blob(&base, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push to base");
    let opts = PushOptions::new().mount_from("team/base");
    let out = alice
        .push_blob(&app, &src, &opts, &Progress::none())
        .await
        .expect("mount into app");
    assert_eq!(out.kind, PushKind::Mounted, "{out:?}");
    assert_eq!(out.bytes_sent, 0);
    assert!(
        tokens.issued_for("repository:team/base:pull") >= 1,
        "the mount token asked for pull on the source: {:?}",
        tokens.scopes()
    );
    pull_ok(&alice, &app, &src, dir.path()).await;
}

#[tokio::test]
async fn wrong_password_is_one_clear_auth_error_not_a_retry_storm() {
    let Some((tokens, reg)) = setup(300) else {
        return;
    };
    let proxy = FaultProxy::start(reg.addr(), Vec::new()).expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "w", 200_000, 5);
    let repo = Repo::new(proxy.host(), "team/app").expect("repo");
    let wrong = "definitely-Wrong-pw-1234";
    let e = client("alice", wrong)
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("wrong password");
    assert!(e.is_auth() && e.is_refused(), "{e}");
    assert_eq!(e.status(), Some(401), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(ALICE_PW),
        "{shown}"
    );
    assert_eq!(tokens.issued(), 0);
    assert!(
        tokens.requests() <= 2 && tokens.requests() == tokens.refused(),
        "token requests: {} (refused {})",
        tokens.requests(),
        tokens.refused()
    );
    let n = proxy.records().len();
    assert!(n <= 2, "registry requests: {:#?}", proxy.records());
}

#[tokio::test]
async fn credentials_never_go_to_a_plain_http_realm_of_a_tls_registry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tokens = TokenServer::builder()
        .user("alice", ALICE_PW)
        .grant("alice", "team/*", &["pull", "push"])
        .start()
        .expect("token server");
    let tls = hoist_testkit::TlsFiles::generate().expect("certificates");
    let reg = Registry::builder()
        .tls(&tls)
        .token_auth(&tokens.auth())
        .start()
        .expect("TLS registry with token auth");
    let repo = Repo::new(reg.host(), "team/app").expect("repo");
    let c = Client::builder()
        .no_docker_config()
        .plain_http_loopback(false)
        .ca_file(tls.ca_file())
        .credentials(Credentials::new("alice", ALICE_PW))
        .retry(RetryPolicy::immediate(3))
        .build()
        .expect("client");
    let digest = hoist_oci::Digest::sha256_of(b"x");
    let e = c
        .blob_exists(&repo, &digest)
        .await
        .expect_err("plain-HTTP realm");
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    assert!(e.url().is_some_and(|u| u.starts_with("http://")), "{e}");
    assert_eq!(tokens.requests(), 0, "nothing was sent to the realm");
}
