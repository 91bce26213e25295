//! Token servers that are busy, speak OAuth2, or hand out tokens that expire or lack a scope
//! the registry asked for: each must cost at most a retry, never the operation.

use super::*;
use std::sync::atomic::AtomicUsize;

use base64::Engine as _;

/// What the token server hands out: `Bearer tok-N` for the Nth token (from 1).
fn nth_token(n: usize) -> String {
    format!("tok-{n}")
}

/// A registry at `/v2/` that serves one manifest to any request carrying `accept`'s token,
/// and a 401 challenging for the realm `/token` on itself otherwise.
fn manifest_reply(req: &Seen, addr: SocketAddr, accept: &str) -> Reply {
    let body = manifest_json();
    if req.header("authorization") == Some(&format!("Bearer {accept}")) {
        return Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .header(
                "Docker-Content-Digest",
                &Digest::sha256_of(&body).to_string(),
            )
            .body(body);
    }
    let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
    Reply::new(401).header("WWW-Authenticate", &challenge)
}

fn client_with(creds: Credentials, retry: RetryPolicy) -> Client {
    Client::builder()
        .no_docker_config()
        .credentials(creds)
        .chunk_size(64 * 1024)
        .retry(retry)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// An auth file holding `entry` for `reg`, and a client reading only it.
fn auth_file_client(reg: &Lying, entry: &str) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, format!(r#"{{"auths":{{"{}":{entry}}}}}"#, reg.host()))
        .expect("write auth file");
    let c = Client::builder()
        .docker_config(&cfg)
        .retry(RetryPolicy::immediate(3))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    (dir, c)
}

/// The form fields of a request body, in order.
fn form_of(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn regression_token_server_503_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            if c2.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::new(503).header("Retry-After", "0").body("busy");
            }
            return Reply::new(200).body(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
        }
        manifest_reply(req, addr, TOKEN)
    });
    let c = client_with(Credentials::new(USER, PASSWORD), RetryPolicy::immediate(6));
    let got = c.get_manifest(&reg.repo(), "latest").await;
    assert!(got.is_ok(), "{:?}", got.err().map(|e| e.to_string()));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one 503, then the token");
}

#[tokio::test]
async fn a_token_server_that_stays_busy_fails_after_the_policys_attempts() {
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            return Reply::new(429).header("Retry-After", "0");
        }
        manifest_reply(req, addr, TOKEN)
    });
    let c = client_with(Credentials::new(USER, PASSWORD), RetryPolicy::immediate(3));
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("never a token");
    assert_eq!(err.status(), Some(429), "{err}");
    assert!(err.to_string().contains("token request failed"), "{err}");
    // The manifest GET is not retried for a final 429 of the token server: 3 in all.
    assert_eq!(reg.count("GET", "/token"), 3);
    assert_no_secret(&err);
}

/// Mid-push the registry stops taking the first token (it was revoked, or expired by its own
/// clock): the PATCH's 401 sends hoist to the token server, which is busy once.
#[tokio::test]
async fn regression_token_refetch_mid_push_survives_a_503() {
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8).collect();
    let token_calls = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(Mutex::new(0u64));
    let (tc, st) = (token_calls.clone(), stored.clone());
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            // The third request (the PATCH's, after the HEAD's and the POST's) meets a busy
            // token server.
            let n = tc.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                return Reply::new(503).header("Retry-After", "0");
            }
            let t = nth_token(n);
            return Reply::new(200).body(format!(r#"{{"token":"{t}","expires_in":300}}"#));
        }
        // Tokens granted before the session opened are good for opening it, not for sending
        // chunks into it.
        let granted: usize = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let wanted = match req.method.as_str() {
            "PATCH" | "PUT" => 4,
            _ => 1,
        };
        if granted < wanted {
            let challenge = format!(
                r#"Bearer realm="http://{addr}/token",service="hostile",scope="repository:hostile/app:pull,push""#
            );
            return Reply::new(401).header("WWW-Authenticate", &challenge);
        }
        let mut stored = st.lock().expect("lock");
        match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => session_opened(),
            "PATCH" => {
                *stored += req
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                Reply::new(202)
                    .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                    .header("Range", &format!("0-{}", *stored - 1))
            }
            "PUT" => Reply::new(201),
            _ => Reply::new(404),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let c = client_with(Credentials::new(USER, PASSWORD), RetryPolicy::immediate(4));
    let r = c
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await;
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    assert_eq!(token_calls.load(Ordering::SeqCst), 4);
}

/// An `identitytoken` beside `auth` (as `az acr login` writes it): an OAuth2 refresh-token
/// grant, POSTed as a form, with no `Authorization` and no user name; `access_token` is used.
#[tokio::test]
async fn regression_identity_token_is_an_oauth2_refresh_token() {
    const REFRESH: &str = "REFRESH-TOKEN-XYZ";
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            let form = form_of(&req.body);
            if req.method == "POST" && form.contains(&("refresh_token".into(), REFRESH.into())) {
                return Reply::new(200)
                    .header("Content-Type", "application/json")
                    .body(format!(
                        r#"{{"access_token":"{TOKEN}","expires_in":300,"scope":"x"}}"#
                    ));
            }
            return Reply::new(401).body("no");
        }
        manifest_reply(req, addr, TOKEN)
    });
    let nil_user =
        base64::engine::general_purpose::STANDARD.encode("00000000-0000-0000-0000-000000000000:");
    let (_dir, c) = auth_file_client(
        &reg,
        &format!(r#"{{"auth":"{nil_user}","identitytoken":"{REFRESH}"}}"#),
    );
    let got = c.get_manifest(&reg.repo(), "latest").await;
    assert!(got.is_ok(), "{:?}", got.err().map(|e| e.to_string()));
    let token_reqs: Vec<Seen> = reg
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/token"))
        .collect();
    assert_eq!(token_reqs.len(), 1, "{token_reqs:?}");
    let t = &token_reqs[0];
    assert_eq!(t.method, "POST");
    assert_eq!(t.path, "/token", "the grant is in the body, not the URL");
    assert_eq!(t.header("authorization"), None);
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = form_of(&t.body);
    let field = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("grant_type"), Some("refresh_token"));
    assert_eq!(field("refresh_token"), Some(REFRESH));
    assert_eq!(field("service"), Some("hostile"));
    assert_eq!(field("scope"), Some("repository:hostile/app:pull"));
    assert_eq!(field("client_id"), Some("hoist"));
}

/// A token server without OAuth2 (405 to the POST) and credentials that are an identity token
/// alone: a clear error saying so, and the token never sent as a password.
#[tokio::test]
async fn an_identity_token_for_a_token_server_without_oauth2_is_a_clear_error() {
    const REFRESH: &str = "REFRESH-ONLY-4d2";
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            return match req.method.as_str() {
                "POST" => Reply::new(405),
                _ => Reply::new(200).body(format!(r#"{{"token":"{TOKEN}"}}"#)),
            };
        }
        manifest_reply(req, addr, TOKEN)
    });
    let (_dir, c) = auth_file_client(&reg, &format!(r#"{{"identitytoken":"{REFRESH}"}}"#));
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("no way to get a token");
    let shown = format!("{err} {err:?}");
    assert!(err.is_refused(), "{shown}");
    assert_eq!(err.status(), Some(405));
    assert!(shown.contains("identity token"), "{shown}");
    assert!(!shown.contains(REFRESH), "{shown}");
    assert_eq!(reg.count("GET", "/token"), 0, "nothing to send with GET");
}

/// A token server that answers the OAuth2 POST with 404, for credentials that have a password
/// beside the identity token: asked again with GET and Basic, as docker does.
#[tokio::test]
async fn an_oauth2_404_falls_back_to_basic_when_there_is_a_password() {
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            return match req.method.as_str() {
                "POST" => Reply::new(404),
                _ => Reply::new(200).body(format!(r#"{{"token":"{TOKEN}"}}"#)),
            };
        }
        manifest_reply(req, addr, TOKEN)
    });
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let (_dir, c) = auth_file_client(
        &reg,
        &format!(r#"{{"auth":"{auth}","identitytoken":"REFRESH-1"}}"#),
    );
    let got = c.get_manifest(&reg.repo(), "latest").await;
    assert!(got.is_ok(), "{:?}", got.err().map(|e| e.to_string()));
    let get = reg
        .seen()
        .into_iter()
        .find(|s| s.method == "GET" && s.path.starts_with("/token"))
        .expect("a GET after the POST's 404");
    assert_eq!(get.header("authorization"), Some(&*format!("Basic {auth}")));
}

/// A token that outlives its lifetime mid-push (a PATCH answered slowly) is fetched anew
/// before the next PATCH, which carries it: no chunk goes out without `Authorization` just to
/// earn a 401 and be sent again.
#[tokio::test]
async fn regression_an_expired_token_is_renewed_before_the_next_patch() {
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 239) as u8).collect();
    let token_calls = Arc::new(AtomicUsize::new(0));
    let patches = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(Mutex::new(0u64));
    let (tc, pc, st) = (token_calls.clone(), patches.clone(), stored.clone());
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            let t = nth_token(tc.fetch_add(1, Ordering::SeqCst) + 1);
            // The shortest lifetime hoist believes: 10 s, renewed after 9.
            return Reply::new(200).body(format!(r#"{{"token":"{t}","expires_in":1}}"#));
        }
        let authorized = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer tok-"));
        if !authorized {
            let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
            return Reply::new(401).header("WWW-Authenticate", &challenge);
        }
        let mut stored = st.lock().expect("lock");
        match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => session_opened(),
            "PATCH" => {
                if pc.fetch_add(1, Ordering::SeqCst) == 0 {
                    // A slow storage backend: the token expires meanwhile.
                    std::thread::sleep(Duration::from_millis(9_500));
                }
                *stored += req
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                Reply::new(202)
                    .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                    .header("Range", &format!("0-{}", *stored - 1))
            }
            "PUT" => Reply::new(201),
            _ => Reply::new(404),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let c = client_with(Credentials::new(USER, PASSWORD), RetryPolicy::immediate(3));
    let r = c
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await;
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    let bare: Vec<String> = reg
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.header("authorization").is_none())
        .map(|s| s.header("content-range").unwrap_or_default().to_owned())
        .collect();
    assert!(bare.is_empty(), "PATCHes sent without a token: {bare:?}");
    assert_eq!(
        patches.load(Ordering::SeqCst),
        3,
        "150 000 bytes in 64 KiB chunks"
    );
    // One for the HEAD's pull, one for the upload's pull and push, one when that expired.
    assert_eq!(token_calls.load(Ordering::SeqCst), 3);
}

/// A registry whose challenge asks for a scope beyond the request's (here the pull of a base
/// repository): the token is asked for both, so one round of auth is enough.
#[tokio::test]
async fn regression_the_challenges_scope_is_asked_for() {
    const EXTRA: &str = "repository:hostile/base:pull";
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            // The token names the scopes granted.
            let url = url::Url::parse(&format!("http://x{}", req.path)).expect("url");
            let scopes: Vec<String> = url
                .query_pairs()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.into_owned())
                .collect();
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(scopes.join(" "));
            return Reply::new(200).body(format!(r#"{{"token":"{t}","expires_in":300}}"#));
        }
        let granted = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
            })
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default();
        let wanted = ["repository:hostile/app:pull", EXTRA];
        if wanted.iter().all(|w| granted.split(' ').any(|g| g == *w)) {
            let body = manifest_json();
            return Reply::new(200)
                .header("Content-Type", MediaType::OCI_MANIFEST)
                .header(
                    "Docker-Content-Digest",
                    &Digest::sha256_of(&body).to_string(),
                )
                .body(body);
        }
        let challenge = format!(
            r#"Bearer realm="http://{addr}/token",service="hostile",scope="repository:hostile/app:pull {EXTRA}""#
        );
        Reply::new(401).header("WWW-Authenticate", &challenge)
    });
    let c = client_with(Credentials::new(USER, PASSWORD), RetryPolicy::immediate(2));
    let got = c.get_manifest(&reg.repo(), "latest").await;
    assert!(got.is_ok(), "{:?}", got.err().map(|e| e.to_string()));
    assert_eq!(reg.count("GET", "/token"), 1);
}
