//! Regressions from the upload review, each named after the bug it pins: a restart after a
//! completing PUT that landed, a refused mount, an ambiguous `0-0`, a blob HEAD answered with a
//! redirect, and a delete by tag that trusted a header.

use super::*;
use std::sync::atomic::AtomicUsize;

/// A client with immediate retries and a short timeout, for registries that answer at once.
fn quick(attempts: u32, timeout: Duration) -> Client {
    Client::builder()
        .no_docker_config()
        .credentials(Credentials::new(USER, PASSWORD))
        .chunk_size(1 << 20)
        .retry(RetryPolicy::immediate(attempts))
        .timeout(timeout)
        .build()
        .expect("client")
}

/// The completing PUT landed (the registry still committing a big blob) but a proxy answered
/// 502; the retried PUT gets 404 BLOB_UPLOAD_UNKNOWN because the first commit consumed the
/// session. The blob is there by then: no second upload.
#[tokio::test]
async fn restart_after_close_checks_whether_the_blob_landed() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let puts = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(AtomicUsize::new(0));
    let (p, h) = (puts.clone(), heads.clone());
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        // The skip check and the check before the PUT's retry find nothing (the commit is
        // still running); afterwards the blob is there.
        "HEAD" if h.fetch_add(1, Ordering::SeqCst) < 2 => Reply::new(404),
        "HEAD" => Reply::new(200),
        "POST" => session_opened(),
        "PATCH" => acknowledged(req),
        "PUT" => match p.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::new(502)
                .header("Content-Type", "text/html")
                .body("<html>502</html>"),
            1 => Reply::new(404)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"unknown"}]}"#),
            _ => Reply::new(201),
        },
        "DELETE" => Reply::new(204),
        _ => Reply::new(404),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let out = quick(6, Duration::from_secs(10))
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await
        .expect("push");
    assert_eq!(out.bytes_sent, data.len() as u64, "the blob went out twice");
    assert_eq!(out.restarts, 0);
    assert_eq!(reg.count("POST", "/blobs/uploads/"), 1, "a second session");
}

/// The same, but the blob shows up only a little later (the commit is still running when the
/// PUT's retry is refused): hoist asks again, with backoff, before starting over.
#[tokio::test]
async fn restart_after_close_waits_briefly_for_a_commit_in_progress() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let puts = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(AtomicUsize::new(0));
    let (p, h) = (puts.clone(), heads.clone());
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" if h.fetch_add(1, Ordering::SeqCst) < 4 => Reply::new(404),
        "HEAD" => Reply::new(200),
        "POST" => session_opened(),
        "PATCH" => acknowledged(req),
        "PUT" => match p.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::new(502),
            _ => Reply::new(404)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"unknown"}]}"#),
        },
        _ => Reply::new(404),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let out = quick(6, Duration::from_secs(10))
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await
        .expect("push");
    assert_eq!(out.bytes_sent, data.len() as u64, "the blob went out twice");
    assert_eq!(reg.count("PUT", "/blobs/uploads/"), 2);
}

/// A registry that takes longer than the client's timeout to answer the completing PUT of a
/// large blob (it re-hashes or copies the blob before answering): that is not a stall.
#[tokio::test]
async fn completing_put_of_a_big_blob_may_take_longer_than_the_timeout() {
    let data: Vec<u8> = (0..(32u32 << 20)).map(|i| (i % 239) as u8).collect();
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" => session_opened(),
        "PATCH" => acknowledged(req),
        "PUT" => {
            std::thread::sleep(Duration::from_millis(1200));
            Reply::new(201)
        }
        _ => Reply::new(404),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let c = Client::builder()
        .no_docker_config()
        .chunk_size(64 << 20)
        .retry(RetryPolicy::immediate(2))
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let out = c
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await
        .expect("a slow commit is not a stall");
    assert_eq!(reg.count("PUT", "/blobs/uploads/"), 1);
    assert_eq!(out.bytes_sent, data.len() as u64);
}

/// A registry that refuses the mount (`status`: the credentials cannot pull the source
/// repository, or it is not there): the blob is uploaded instead, as docker and skopeo do.
fn refusing_mount(status: u16) -> Lying {
    Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" if req.path.contains("mount=") => {
            let r = Reply::new(status)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"no"}]}"#);
            if status == 401 {
                r.header("WWW-Authenticate", r#"Basic realm="r""#)
            } else {
                r
            }
        }
        "POST" => session_opened(),
        "PATCH" => acknowledged(req),
        "PUT" => Reply::new(201),
        _ => Reply::new(404),
    })
}

#[tokio::test]
async fn refused_mount_falls_back_to_an_upload() {
    let data = b"a layer that could be mounted".to_vec();
    for status in [401, 403, 404] {
        let reg = refusing_mount(status);
        let dir = tempfile::tempdir().expect("tempdir");
        let src = blob_source(dir.path(), &data);
        let mounted = client()
            .mount_blob(&reg.repo(), &src.digest, "other/base")
            .await;
        assert!(
            matches!(mounted, Ok(false)),
            "{status}: {:?}",
            mounted.map_err(|e| e.to_string())
        );
        let out = client()
            .push_blob(
                &reg.repo(),
                &src,
                &PushOptions::new().mount_from("other/base"),
                &Progress::none(),
            )
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(out.kind, hoist_registry::PushKind::Uploaded, "{status}");
        assert_eq!(out.bytes_sent, data.len() as u64);
        let plain_posts = reg
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && !s.path.contains("mount="))
            .count();
        assert_eq!(plain_posts, 1, "{status}: one plain session for the upload");
    }
}

/// A mount that fails on the server's side (a 5xx after retries) is still an error: the
/// registry is broken, not refusing.
#[tokio::test]
async fn a_broken_mount_is_still_an_error() {
    let reg = Lying::start(|req, _| match req.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" => Reply::new(500),
        _ => Reply::new(404),
    });
    let d = Digest::sha256_of(b"x");
    let e = client()
        .mount_blob(&reg.repo(), &d, "other/base")
        .await
        .expect_err("a 500 is not a refusal");
    assert_eq!(e.status(), Some(500), "{e}");
}

/// With token auth, the upload after a refused mount asks for push scopes only: a token
/// service that refuses the whole request when one scope is not granted must not see the
/// source repository again.
#[tokio::test]
async fn upload_after_a_refused_mount_asks_for_push_scopes_only() {
    let data = b"a layer from a repository we cannot read".to_vec();
    let reg = Lying::start(move |req, addr| {
        if req.path.starts_with("/token") {
            return Reply::new(200).body(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
        }
        let authed = req.header("authorization") == Some(&format!("Bearer {TOKEN}"));
        if !authed {
            let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
            return Reply::new(401).header("WWW-Authenticate", &challenge);
        }
        match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" if req.path.contains("mount=") => Reply::new(401)
                .header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="http://{addr}/token",service="hostile",scope="repository:other/base:pull",error="insufficient_scope""#
                    ),
                )
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"insufficient_scope"}]}"#),
            "POST" => session_opened(),
            "PATCH" => Reply::new(202)
                .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                .header("Range", &format!("0-{}", data_len() - 1)),
            "PUT" => Reply::new(201),
            _ => Reply::new(404),
        }
    });
    fn data_len() -> usize {
        b"a layer from a repository we cannot read".len()
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let out = client()
        .push_blob(
            &reg.repo(),
            &src,
            &PushOptions::new().mount_from("other/base"),
            &Progress::none(),
        )
        .await
        .expect("upload after the refused mount");
    assert_eq!(out.kind, hoist_registry::PushKind::Uploaded);
    let seen = reg.seen();
    let upload_post = seen
        .iter()
        .position(|s| s.method == "POST" && !s.path.contains("mount="))
        .expect("a plain POST");
    // Tokens fetched for the plain upload (after the mount's refusal) name no other repository.
    let mount_refused = seen
        .iter()
        .rposition(|s| s.method == "POST" && s.path.contains("mount="))
        .expect("the mount");
    assert!(mount_refused < upload_post);
    for s in &seen[mount_refused..] {
        if s.path.starts_with("/token") {
            assert!(
                !s.path.contains("other"),
                "fallback token asked for {}",
                s.path
            );
        }
    }
}

/// A registry that acknowledged the first chunk, then lost the session's bytes (a 500 on the
/// next PATCH), and answers the status GET with `Range: 0-0` (it holds nothing): that is not
/// "one byte held", or hoist would resume at byte 1 and be refused (416) until it gives up.
#[tokio::test]
async fn zero_zero_after_acknowledged_bytes_is_not_one_byte() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let size = data.len() as u64;
    let stored = Arc::new(Mutex::new(0u64));
    let patches = Arc::new(AtomicUsize::new(0));
    let (st, pc) = (stored.clone(), patches.clone());
    let range = |n: u64| {
        if n == 0 {
            "0-0".to_string()
        } else {
            format!("0-{}", n - 1)
        }
    };
    let reg = Lying::start(move |req, _| {
        let mut stored = st.lock().expect("lock");
        match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => session_opened(),
            "PATCH" => {
                let n = pc.fetch_add(1, Ordering::SeqCst);
                let cr = req.header("content-range").unwrap_or_default().to_owned();
                let start: u64 = cr
                    .split('-')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                let len: u64 = req
                    .header("content-length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if n == 1 {
                    *stored = 0;
                    return Reply::new(500);
                }
                if start != *stored {
                    return Reply::new(416)
                        .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                        .header("Range", &range(*stored));
                }
                *stored += len;
                Reply::new(202)
                    .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                    .header("Range", &range(*stored))
            }
            "GET" => Reply::new(204)
                .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                .header("Range", &range(*stored)),
            "PUT" if *stored == size => Reply::new(201),
            "PUT" => {
                Reply::new(400).body(r#"{"errors":[{"code":"DIGEST_INVALID","message":"x"}]}"#)
            }
            _ => Reply::new(404),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &data);
    let c = Client::builder()
        .no_docker_config()
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(6))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    c.push_blob(
        &reg.repo(),
        &src,
        &PushOptions::default(),
        &Progress::none(),
    )
    .await
    .expect("resending from byte 0 works");
    let from_one = reg
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.header("content-range") == Some("1-65536"))
        .count();
    assert_eq!(from_one, 0, "resumed at byte 1");
}

/// A blob HEAD answered with a redirect proves nothing by itself (the registry may send every
/// path elsewhere): the redirect is followed, and only a 200 at its end means the blob is there.
#[tokio::test]
async fn a_redirected_blob_head_is_followed() {
    for (storage_status, exists) in [(404, false), (200, true)] {
        let reg = Lying::start(move |req, addr| match req.method.as_str() {
            "HEAD" if req.path.starts_with("/storage/") => Reply::new(storage_status),
            "HEAD" => Reply::new(307).header("Location", &format!("http://{addr}/storage/blob")),
            _ => Reply::new(404),
        });
        let d = Digest::sha256_of(b"redirected");
        let got = client().blob_exists(&reg.repo(), &d).await.expect("HEAD");
        assert_eq!(got, exists, "storage answered {storage_status}");
        assert_eq!(reg.count("HEAD", "/storage/"), 1);
    }
}

/// An endless chain of redirects on a blob HEAD ends in a clear error.
#[tokio::test]
async fn endless_blob_head_redirects_are_bounded() {
    let reg = Lying::start(move |_, addr| {
        Reply::new(307).header("Location", &format!("http://{addr}/v2/hostile/app/blobs/x"))
    });
    let d = Digest::sha256_of(b"loop");
    let e = client()
        .blob_exists(&reg.repo(), &d)
        .await
        .expect_err("a redirect loop");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(reg.count("HEAD", "") <= 10);
}

/// A registry whose manifest HEAD names another digest than the manifest the tag serves: a
/// delete by tag must not trust the header (it would delete another manifest).
#[tokio::test]
async fn delete_by_tag_hashes_the_manifest_not_the_header() {
    let body = manifest_json();
    let real = Digest::sha256_of(&body);
    let other = Digest::sha256_of(b"another manifest").to_string();
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" | "GET" if req.path.ends_with("/manifests/latest") => Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .header("Docker-Content-Digest", &other)
            .body(body.clone()),
        "DELETE" => Reply::new(202),
        _ => Reply::new(404),
    });
    let e = client()
        .delete_manifest(&reg.repo(), "latest")
        .await
        .expect_err("the header lies");
    assert!(e.is_digest_mismatch(), "{e}");
    assert_eq!(reg.count("DELETE", ""), 0, "deleted on a lying header");
    let _ = real;
}

/// A registry that sends no `Docker-Content-Digest` (it is optional): a tag is still
/// deleted, by the digest of the manifest it serves.
#[tokio::test]
async fn delete_by_tag_works_without_a_digest_header() {
    let body = manifest_json();
    let real = Digest::sha256_of(&body);
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        "HEAD" | "GET" if req.path.ends_with("/manifests/latest") => Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .body(body.clone()),
        "DELETE" => Reply::new(202),
        _ => Reply::new(404),
    });
    let got = client()
        .delete_manifest(&reg.repo(), "latest")
        .await
        .expect("delete by tag");
    assert_eq!(got, real);
    assert_eq!(reg.count("DELETE", &format!("/manifests/{real}")), 1);
}

/// A manifest GET redirected (a mirror or CDN in front of the registry) is followed, as
/// docker follows it, and the bytes are still checked; a redirect loop is an error, not a hang.
#[tokio::test]
async fn a_redirected_manifest_is_followed_and_a_loop_is_refused() {
    let body = manifest_json();
    let digest = Digest::sha256_of(&body);
    let reg = Lying::start(move |req, _| match req.method.as_str() {
        "GET" if req.path.ends_with("/manifests/moved") => {
            Reply::new(307).header("Location", "/cdn/manifest-moved")
        }
        "GET" if req.path == "/cdn/manifest-moved" => Reply::new(200)
            .header("Content-Type", MediaType::OCI_MANIFEST)
            .body(body.clone()),
        "GET" if req.path.ends_with("/manifests/loop") => {
            Reply::new(302).header("Location", "/v2/hostile/app/manifests/loop")
        }
        _ => Reply::new(404),
    });
    let moved = client()
        .get_manifest(&reg.repo(), "moved")
        .await
        .expect("followed");
    let hoist_oci::AnyManifest::Image(image) = moved else {
        panic!("an image manifest: {moved:?}");
    };
    assert_eq!(image.digest(), &digest);
    let looped = client()
        .get_manifest(&reg.repo(), "loop")
        .await
        .expect_err("a loop");
    assert!(looped.to_string().contains("redirects"), "{looped}");
    assert_eq!(
        reg.count("GET", "/manifests/loop"),
        6,
        "followed 5 times, then stopped"
    );
}

/// A tag listing redirected to a mirror is followed there, and its next page is named
/// relative to the page that named it (the mirror's), not the registry's first URL.
#[tokio::test]
async fn a_redirected_tag_listing_is_followed_page_by_page() {
    let reg = Lying::start(|req, _| match req.path.as_str() {
        "/v2/hostile/app/tags/list" => Reply::new(307).header("Location", "/mirror/tags/list"),
        "/mirror/tags/list" => Reply::new(200)
            .header("Content-Type", "application/json")
            .header("Link", r#"<?last=a&n=1>; rel="next""#)
            .body(r#"{"name":"hostile/app","tags":["a"]}"#),
        "/mirror/tags/list?last=a&n=1" => Reply::new(200)
            .header("Content-Type", "application/json")
            .body(r#"{"name":"hostile/app","tags":["b"]}"#),
        _ => Reply::new(404),
    });
    let tags = client().list_tags(&reg.repo()).await.expect("tags");
    assert_eq!(tags, ["a", "b"]);
}
