//! A lying registry's headers: digests, redirects, 401 loops, foreign realms, Locations, HTML.

use super::*;

#[tokio::test]
async fn manifest_whose_digest_does_not_match_is_refused() {
    let real = manifest_json();
    let promised = Digest::sha256_of(b"what was asked for");
    let body = real.clone();
    let lie = promised.to_string();
    let reg = Lying::start(move |req, _| {
        let r = Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .body(body.clone());
        if req.path.ends_with("/bad-header") {
            r.header("Docker-Content-Digest", "sha256:../../../etc/passwd")
        } else {
            r.header("Docker-Content-Digest", &lie)
        }
    });
    let c = client();
    // By digest: the bytes must hash to what was asked for.
    let err = c
        .get_manifest(&reg.repo(), &promised.to_string())
        .await
        .expect_err("by digest");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(err.to_string().contains(&promised.to_string()), "{err}");
    // By tag: the bytes must hash to the registry's own Docker-Content-Digest.
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("by tag");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(
        err.to_string().contains("manifest digest mismatch"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("(blob "),
        "a manifest is no blob: {err}"
    );
    // A digest header that is no digest is misbehaviour, not a path.
    let err = c
        .get_manifest(&reg.repo(), "bad-header")
        .await
        .expect_err("bad header");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

#[tokio::test]
async fn endless_redirects_are_bounded() {
    let reg = Lying::start(|req, addr| {
        // Alternate a relative path and an absolute URL, each a little longer, forever.
        let loc = if req.path.len() % 2 == 0 {
            format!("{}x", req.path)
        } else {
            format!("http://{addr}{}y", req.path)
        };
        Reply::new(307).header("Location", &loc)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"blob"), 4);
    let sink = layout.blob_path(&desc.digest);
    let err = client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect_err("redirect loop");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("redirect"), "{err}");
    let gets = reg.count("GET", "/blobs/");
    assert!(
        (2..=8).contains(&gets),
        "{gets} blob GETs for a redirect loop"
    );
    assert_layout_clean(&layout);
    // A manifest GET follows redirects too, as docker does, but only so far.
    let before = reg.seen().len();
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("redirected manifest");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("redirect"), "{err}");
    assert_eq!(
        reg.seen().len() - before,
        6,
        "the first GET and five redirects followed"
    );
}

#[tokio::test]
async fn endless_401_reauthenticates_once_then_fails() {
    let reg = Lying::start(|req, addr| {
        if req.path.starts_with("/token") {
            return Reply::new(200).body(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
        }
        let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
        Reply::new(401)
            .header("WWW-Authenticate", &challenge)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
    });
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("401 forever");
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("authentication required"), "{err}");
    assert_no_secret(&err);
    assert_eq!(reg.count("GET", "/token"), 1, "one token fetch");
    assert_eq!(
        reg.count("GET", "/manifests/"),
        2,
        "one retry with the token"
    );
    let with_token = reg
        .seen()
        .iter()
        .filter(|s| s.header("authorization") == Some(&format!("Bearer {TOKEN}")))
        .count();
    assert_eq!(with_token, 1);

    // Basic, forever.
    let reg = Lying::start(|_, _| Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#));
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("basic 401 forever");
    assert!(err.is_auth(), "{err}");
    assert_no_secret(&err);
    assert_eq!(
        reg.count("GET", "/manifests/"),
        2,
        "one retry with credentials"
    );
}

#[tokio::test]
async fn plain_http_realm_on_another_host_gets_no_credentials() {
    for realm in [
        "http://auth.hostile.invalid/token",
        "http://10.255.255.1:8080/token",
        "http://localhost.hostile.invalid/token",
    ] {
        let challenge = format!(r#"Bearer realm="{realm}",service="x""#);
        let reg = Lying::start(move |_, _| Reply::new(401).header("WWW-Authenticate", &challenge));
        let started = std::time::Instant::now();
        let err = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .expect_err("foreign realm");
        assert!(err.is_misbehaved(), "{realm}: {err}");
        assert!(
            err.to_string().contains("plain HTTP"),
            "{realm}: refused, not tried: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{realm}: no connection was attempted"
        );
        assert_no_secret(&err);
        assert!(
            reg.seen()
                .iter()
                .all(|s| s.header("authorization").is_none()),
            "{realm}: credentials were sent"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_cut_at_the_cap() {
    const HUNDRED_MIB: u64 = 100 << 20;
    for declared in [true, false] {
        let reg = Lying::start(move |req, _| {
            if req.path.contains("/manifests/") {
                Reply::new(200)
                    .header("Content-Type", MediaType::OCI_MANIFEST)
                    .zeros(HUNDRED_MIB, declared)
            } else {
                // An error page of 100 MiB.
                Reply::new(404)
                    .header("Content-Type", "text/html")
                    .zeros(HUNDRED_MIB, declared)
            }
        });
        let err = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .expect_err("100 MiB manifest");
        assert!(err.is_misbehaved(), "declared={declared}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("exceeds the {MAX_JSON_SIZE}-byte limit")),
            "declared={declared}: {err}"
        );
        // The client stopped reading near the cap (plus what socket buffers absorbed).
        let sent = reg.body_bytes_sent.load(Ordering::Relaxed);
        assert!(
            sent < 3 * MAX_JSON_SIZE as u64 + (8 << 20),
            "declared={declared}: {sent} bytes were read"
        );
        // A huge error body: the status survives, the body is not read whole.
        let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
        let dir = tempfile::tempdir().expect("tempdir");
        let err = client()
            .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
            .await
            .expect_err("404 with a huge body");
        assert!(err.is_not_found(), "declared={declared}: {err}");
        assert!(err.to_string().len() < 1_000, "{err}");
    }
}

#[tokio::test]
async fn html_error_pages_are_reduced_to_their_status_line() {
    let page = "<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1><p>Request ID 7f3a</p><script>alert(1)</script></body></html>";
    let bad_gateway = "<!DOCTYPE html><html><body>upstream is down</body></html>";
    let reg = Lying::start(move |req, _| {
        if req.path.contains("forbidden") {
            Reply::new(403)
                .header("Content-Type", "text/html; charset=utf-8")
                .body(page)
        } else {
            Reply::new(502).body(bad_gateway)
        }
    });
    let err = client()
        .get_manifest(&reg.repo(), "forbidden")
        .await
        .expect_err("403 page");
    let text = err.to_string();
    assert!(err.is_refused() && err.is_auth(), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(
        !text.contains('<') && !text.contains("alert"),
        "HTML in: {text}"
    );
    let err = client()
        .get_manifest(&reg.repo(), "gateway")
        .await
        .expect_err("502 page");
    let text = err.to_string();
    assert!(err.is_misbehaved(), "{text}");
    assert!(text.contains("502 Bad Gateway"), "{text}");
    assert!(!text.contains('<'), "HTML in: {text}");
}

#[tokio::test]
async fn blob_redirects_carry_no_credentials_and_no_plain_http_to_foreign_hosts() {
    let real = b"layer bytes behind a storage redirect".to_vec();
    let desc = layer_of(&real);
    let storage = {
        let real = real.clone();
        Lying::start(move |_, _| Reply::new(200).body(real.clone()))
    };
    let storage_url = format!("http://{}/bucket/blob?X-Amz-Signature=abc", storage.addr);
    let reg = Lying::start(move |req, _| {
        if req.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        if req.path.contains("foreign") {
            return Reply::new(307).header("Location", "http://storage.hostile.invalid/blob");
        }
        Reply::new(307).header("Location", &storage_url)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("blob");
    client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect("pull through a redirect");
    assert_eq!(std::fs::read(&sink).expect("read"), real);
    assert!(
        reg.seen()
            .iter()
            .any(|s| s.header("authorization").is_some()),
        "the registry itself got credentials"
    );
    assert!(
        storage
            .seen()
            .iter()
            .all(|s| s.header("authorization").is_none()),
        "credentials were sent to the redirect target"
    );
    // A redirect to a foreign host over plain HTTP is refused, not tried.
    let foreign = Repo::new(reg.host(), "hostile/foreign").expect("repo");
    let err = client()
        .pull_blob(&foreign, &desc, &dir.path().join("b2"), &Progress::none())
        .await
        .expect_err("plain HTTP redirect");
    assert!(err.to_string().contains("plain HTTP"), "{err}");
    assert_no_secret(&err);
    assert!(!dir.path().join("b2").exists());
}

#[tokio::test]
async fn a_captive_portal_page_or_huge_header_is_an_error_not_a_manifest() {
    let reg = Lying::start(|req, _| {
        if req.path.contains("portal") {
            Reply::new(200)
                .header("Content-Type", "text/html")
                .body("<html><body><form>Log in to the hotel Wi-Fi</form></body></html>")
        } else {
            Reply::new(200).header("X-Filler", &"a".repeat(1 << 20))
        }
    });
    let err = client()
        .get_manifest(&reg.repo(), "portal")
        .await
        .expect_err("HTML as a manifest");
    assert!(err.is_misbehaved(), "{err}");
    assert!(!err.to_string().contains('<'), "HTML in: {err}");
    let err = client()
        .get_manifest(&reg.repo(), "header")
        .await
        .expect_err("1 MiB header");
    assert!(err.to_string().len() < 1_000, "{err}");
    assert!(
        reg.count("GET", "/manifests/header") <= 2,
        "retried without bound"
    );
}

#[tokio::test]
async fn absurd_token_lifetimes_do_not_panic() {
    for expires_in in ["18446744073709551615", "1000000000000000000", "0"] {
        let body = manifest_json();
        let digest = Digest::sha256_of(&body).to_string();
        let reg = Lying::start(move |req, addr| {
            if req.path.starts_with("/token") {
                return Reply::new(200).body(format!(
                    r#"{{"token":"{TOKEN}","expires_in":{expires_in}}}"#
                ));
            }
            if req.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
                return Reply::new(200)
                    .header("Content-Type", MediaType::OCI_MANIFEST)
                    .header("Docker-Content-Digest", &digest)
                    .body(body.clone());
            }
            let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
            Reply::new(401).header("WWW-Authenticate", &challenge)
        });
        let got = client()
            .get_manifest(&reg.repo(), "latest")
            .await
            .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
        assert_eq!(got.bytes(), manifest_json().as_slice());
    }
}

#[tokio::test]
async fn a_huge_redirect_url_is_not_echoed_whole() {
    let reg = Lying::start(|req, _| {
        Reply::new(307).header(
            "Location",
            &format!("{}/{}", req.path, "z".repeat(8 * 1024)),
        )
    });
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = client()
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("redirect loop with huge URLs");
    assert!(err.is_misbehaved(), "{}", err.to_string().len());
    let text = err.to_string();
    assert!(text.len() < 2_000, "{} bytes of error", text.len());
    assert!(err.url().is_some_and(|u| u.len() < 2_000));
}

#[tokio::test]
async fn an_oversized_location_is_the_registry_fault_not_the_user_input() {
    let reg = Lying::start(|req, _| {
        Reply::new(307).header(
            "Location",
            &format!("{}/{}", req.path, "q".repeat(40 * 1024)),
        )
    });
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = client()
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("40 KiB Location");
    assert!(err.is_misbehaved(), "{:?}: {}", err.kind(), err.message());
    assert!(
        reg.count("GET", "/blobs/") <= 2,
        "the huge Location was followed"
    );
}

#[tokio::test]
async fn a_response_that_is_not_http_is_the_registry_fault_and_not_retried() {
    // A control character in a header value: no HTTP/1.1 parser takes that response.
    let reg = Lying::start(|_, _| Reply::new(404).header("X-Evil", "\u{1b}]0;owned\u{7}"));
    let err = client()
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("a malformed response");
    let text = err.to_string();
    assert!(err.is_misbehaved(), "{text}");
    assert!(text.contains("malformed HTTP response"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert_eq!(
        reg.count("GET", "/manifests/"),
        1,
        "garbage was asked for again"
    );
}

#[tokio::test]
async fn credentials_a_server_echoes_into_its_errors_are_not_shown() {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let reg = Lying::start(|req, addr| {
        if req.path.starts_with("/token") {
            return Reply::new(200).body(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
        }
        let Some(auth) = req.header("authorization").map(str::to_owned) else {
            let challenge = match req.path.contains("/basic/") {
                true => r#"Basic realm="r""#.to_owned(),
                false => format!(r#"Bearer realm="http://{addr}/token",service="s""#),
            };
            return Reply::new(401).header("WWW-Authenticate", &challenge);
        };
        if req.path.contains("/basic/") {
            // A debugging auth proxy: the header and what it decodes to, in OCI error JSON.
            let message = format!("invalid credentials {auth} ({USER}:{PASSWORD})");
            let body = serde_json::json!({"errors":[{"code":"DENIED","message":message}]});
            return Reply::new(403)
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        Reply::new(400)
            .header("Content-Type", "text/plain")
            .body(format!("token rejected: {auth}"))
    });
    for name in ["hostile/basic", "hostile/bearer"] {
        let repo = Repo::new(reg.host(), name).expect("repo");
        let err = client()
            .get_manifest(&repo, "latest")
            .await
            .expect_err("refused");
        let shown = format!("{err} {err:?}");
        for secret in [PASSWORD, TOKEN, basic.as_str()] {
            assert!(!shown.contains(secret), "{name}: {secret} shown in {shown}");
        }
        assert!(shown.contains("***"), "{name}: {shown}");
    }
}
