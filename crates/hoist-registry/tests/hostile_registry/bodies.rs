//! A lying registry's bodies: garbage Range/Location on uploads, wrong or oversized blobs and
//! pages, lying completion digests, bodies that stall.

use super::*;

#[tokio::test]
async fn garbage_location_and_range_headers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &[7u8; 1000]);
    for location in [
        "javascript:alert(1)",
        "ftp://127.0.0.1/upload",
        "http://[::1",
        "   ",
    ] {
        let reg = upload_registry(location, "0-0");
        let err = push(&reg, &src).await.expect_err("garbage Location");
        assert!(err.is_misbehaved(), "{location:?}: {err}");
        assert!(err.to_string().contains("Location"), "{location:?}: {err}");
        assert_eq!(reg.count("PATCH", ""), 0, "{location:?}: a PATCH was sent");
    }
    // A session on a plain-HTTP foreign host: refused before a byte or a credential goes there.
    let reg = upload_registry("http://uploads.hostile.invalid/s1", "0-0");
    let err = push(&reg, &src).await.expect_err("foreign Location");
    assert!(err.to_string().contains("plain HTTP"), "{err}");
    assert_no_secret(&err);
    for range in [
        "bytes=0-abc",
        "5-10",
        "0-99999999999999999999999",
        "0-18446744073709551614",
        "0--1",
        "-",
    ] {
        let reg = upload_registry("/v2/hostile/app/blobs/uploads/s1", range);
        let err = push(&reg, &src).await.expect_err("garbage Range");
        assert!(err.is_misbehaved(), "{range:?}: {err}");
        assert!(
            err.to_string().contains("Range") || err.to_string().contains("claims"),
            "{range:?}: {err}"
        );
        assert_eq!(
            reg.count("PUT", ""),
            0,
            "{range:?}: the upload was closed anyway"
        );
    }
}

#[tokio::test]
async fn blob_get_with_wrong_bytes_is_not_written_to_the_layout() {
    let real = b"the real layer bytes".to_vec();
    let desc = layer_of(&real);
    let reg = Lying::start(move |req, _| {
        if req.path.contains("longer") {
            Reply::new(200).body(vec![b'x'; 4096])
        } else {
            // Same size, different content.
            Reply::new(200).body(vec![b'x'; 20])
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let sink = layout.blob_path(&desc.digest);
    let err = client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect_err("wrong bytes");
    assert!(err.is_digest_mismatch(), "{err}");
    assert_eq!(err.digest(), Some(&desc.digest));
    assert!(!layout.has_blob(&desc).expect("has_blob"));
    assert_layout_clean(&layout);
    // More bytes than the descriptor says: cut off, nothing kept.
    let longer = Repo::new(reg.host(), "hostile/longer").expect("repo");
    let err = client()
        .pull_blob(&longer, &desc, &sink, &Progress::none())
        .await
        .expect_err("too long");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("more than"), "{err}");
    assert_layout_clean(&layout);
    // The streaming reader fails at its end instead of reporting a complete layer.
    let mut stream = client()
        .open_blob_stream(&reg.repo(), &desc)
        .await
        .expect("open stream");
    let mut buf = Vec::new();
    let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
    assert!(r.is_err(), "a wrong blob read to a clean EOF");
    // Read as an image config, wrong bytes are the registry's fault, not the network's.
    let err = client()
        .get_config(&reg.repo(), &desc)
        .await
        .expect_err("wrong config");
    assert!(err.is_misbehaved() && err.is_digest_mismatch(), "{err}");
    assert!(
        err.to_string().contains("reading the image config"),
        "{err}"
    );
}

#[tokio::test]
async fn endless_tag_pages_are_bounded_in_bytes_and_pages() {
    // Full pages (4 MiB of tags each), each linking to one more, forever.
    let mut page = br#"{"name":"hostile/app","tags":["#.to_vec();
    while page.len() < 4 << 20 {
        page.extend_from_slice(br#""t-0123456789abcdef0123456789abcdef","#);
    }
    page.extend_from_slice(br#""last"]}"#);
    let page = Arc::new(page);
    let reg = Lying::start(move |req, _| {
        let n = req.path.len();
        Reply::new(200)
            .header(
                "Link",
                &format!(r#"<{}&n={n}>; rel="next""#, req.path.replace("?", "?x=1&")),
            )
            .header("Content-Type", "application/json")
            .body(page.as_slice())
    });
    let err = client()
        .list_tags(&reg.repo())
        .await
        .expect_err("endless pages");
    assert!(err.is_misbehaved(), "{err}");
    assert!(err.to_string().contains("tag list exceeds"), "{err}");
    let pages = reg.count("GET", "/tags/list");
    assert!(pages <= 17, "{pages} pages of 4 MiB were read");

    // Tiny pages linking to themselves: the page limit ends it.
    let reg = Lying::start(|req, _| {
        Reply::new(200)
            .header("Link", &format!(r#"<{}>; rel="next""#, req.path))
            .body(r#"{"name":"hostile/app","tags":["a"]}"#)
    });
    let err = client()
        .list_tags(&reg.repo())
        .await
        .expect_err("self-linked page");
    assert!(err.to_string().contains("pagination did not end"), "{err}");
}

#[tokio::test]
async fn short_long_and_misranged_blob_bodies_fail_cleanly() {
    let real = b"twenty bytes of blob".to_vec();
    let desc = layer_of(&real);
    let reg = {
        let real = real.clone();
        Lying::start(move |req, _| {
            let ranged = req.header("range").is_some();
            if req.path.contains("/misrange/") && ranged {
                // A 206 whose Content-Range does not start where it was asked to.
                Reply::new(206)
                    .header("Content-Range", "bytes 3-19/20")
                    .body(&real[3..])
            } else if req.path.contains("/garbage/") && ranged {
                Reply::new(206)
                    .header("Content-Range", "bytes ../../etc/passwd")
                    .body(&real[10..])
            } else if req.path.contains("/longer/") {
                Reply::new(200).body([real.as_slice(), b"and then some"].concat())
            } else {
                // Always the first half, whatever was asked.
                Reply::new(200).body(&real[..10])
            }
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let sink = layout.blob_path(&desc.digest);
    for (name, check) in [
        ("short", "kept failing"),
        ("misrange", "range starting at"),
        ("garbage", "range starting at"),
        ("longer", "more than"),
    ] {
        let repo = Repo::new(reg.host(), format!("hostile/{name}")).expect("repo");
        let err = client()
            .pull_blob(&repo, &desc, &sink, &Progress::none())
            .await
            .expect_err(name);
        assert!(err.to_string().contains(check), "{name}: {err}");
        assert!(
            reg.count("GET", &format!("/{name}/")) <= 4,
            "{name}: unbounded retries"
        );
        assert_layout_clean(&layout);
        // The streaming reader reports an error, never a clean end with wrong content.
        let mut stream = client()
            .open_blob_stream(&repo, &desc)
            .await
            .expect("open stream");
        let mut buf = Vec::new();
        let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
        assert!(r.is_err(), "{name}: the stream ended cleanly with {buf:?}");
    }
}

#[tokio::test]
async fn a_server_that_ignores_range_gets_the_file_started_over() {
    // Big enough that the first, cut answer reaches the file in several writes.
    let real: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let desc = layer_of(&real);
    let reg = {
        let real = real.clone();
        Lying::start(move |req, _| {
            if req.header("range").is_some() {
                // Asked to resume, it sends the whole blob again.
                Reply::new(200).body(real.clone())
            } else {
                Reply::new(200).body(&real[..300_000])
            }
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("layout")).expect("layout");
    let sink = layout.blob_path(&desc.digest);
    std::fs::create_dir_all(sink.parent().expect("parent")).expect("blob dir");
    let repo = Repo::new(reg.host(), "hostile/norange").expect("repo");
    client()
        .pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("pull");
    assert_eq!(std::fs::read(&sink).expect("pulled"), real);
    assert_eq!(reg.count("GET", "/norange/"), 2);
}

#[tokio::test]
async fn completion_and_manifest_push_with_lying_digests_fail_briefly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &[9u8; 1000]);
    let other = Digest::sha256_of(b"something else").to_string();
    let junk = format!("<html>{}</html>", "x".repeat(32 * 1024));
    for (lie, check) in [
        (other.clone(), "stored the blob as"),
        (junk.clone(), "Docker-Content-Digest"),
    ] {
        let reg = Lying::start(move |req, _| match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => Reply::new(202).header("Location", "/v2/hostile/app/blobs/uploads/s1"),
            "PATCH" => Reply::new(202)
                .header("Location", "/v2/hostile/app/blobs/uploads/s1")
                .header("Range", "0-999"),
            "PUT" => Reply::new(201).header("Docker-Content-Digest", &lie),
            _ => Reply::new(404),
        });
        let err = push(&reg, &src).await.expect_err("lying completion");
        let text = err.to_string();
        assert!(text.contains(check), "{text}");
        assert!(text.len() < 1_000, "a hostile header was echoed whole");
        assert!(!text.contains('<'), "{text}");
    }
    // A manifest PUT acknowledged under another digest.
    let reg = Lying::start(move |_, _| Reply::new(201).header("Docker-Content-Digest", &other));
    let err = client()
        .push_manifest(
            &reg.repo(),
            "v1",
            &MediaType::new(MediaType::OCI_MANIFEST),
            &manifest_json(),
        )
        .await
        .expect_err("lying manifest PUT");
    assert!(err.is_digest_mismatch(), "{err}");
}

#[tokio::test]
async fn hostile_error_and_token_bodies_stay_short_and_inert() {
    let reg = Lying::start(|req, addr| {
        let p = req.path.as_str();
        if p.starts_with("/token-html") {
            return Reply::new(200)
                .header("Content-Type", "text/html")
                .body("<html>login</html>");
        }
        if p.starts_with("/token-huge") {
            return Reply::new(200).zeros(100 << 20, true);
        }
        if p.contains("/manifests/ansi") {
            // Terminal escapes and a 30 KiB message inside a well-formed OCI error.
            let msg = format!("\u{1b}[2J\u{1b}]0;owned\u{7}{}", "y".repeat(30 * 1024));
            let body = serde_json::json!({"errors":[{"code":"DENIED","message":msg}]});
            return Reply::new(403)
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let realm = if p.contains("/manifests/html") {
            "token-html"
        } else {
            "token-huge"
        };
        Reply::new(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/{realm}",service="s""#),
        )
    });
    let err = client()
        .get_manifest(&reg.repo(), "ansi")
        .await
        .expect_err("ansi");
    let text = err.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.len() < 1_000, "{} bytes of error", text.len());
    assert_eq!(err.code(), Some("DENIED"));
    let err = client()
        .get_manifest(&reg.repo(), "html")
        .await
        .expect_err("HTML token");
    assert!(err.to_string().contains("token"), "{err}");
    assert!(!err.to_string().contains('<'), "{err}");
    let err = client()
        .get_manifest(&reg.repo(), "huge")
        .await
        .expect_err("huge token body");
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(
        reg.body_bytes_sent.load(Ordering::Relaxed) < 32 << 20,
        "the 100 MiB token body was read far past its cap"
    );
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    let reg = Lying::start(|req, _| {
        let stall = Payload::Stall {
            prefix: b"{\"schemaVersion\":".to_vec(),
            declared: 4096,
            silence: Duration::from_secs(30),
        };
        let mut r = Reply::new(200).header("Content-Type", MediaType::OCI_MANIFEST);
        if req.path.contains("/blobs/") {
            r = Reply::new(404).header("Content-Type", "application/json");
        } else if req.path.contains("/tags/") {
            r = r.header("Content-Type", "application/json");
        }
        r.payload = stall;
        r
    });
    let c = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(1))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let err = c
        .get_manifest(&reg.repo(), "latest")
        .await
        .expect_err("stalled manifest body");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stalled body hung for {:?}",
        started.elapsed()
    );
    assert!(err.is_transport(), "{err}");
    let started = std::time::Instant::now();
    let err = c
        .list_tags(&reg.repo())
        .await
        .expect_err("stalled tag page");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    // An error response whose body stalls still reports its status, promptly.
    let started = std::time::Instant::now();
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"b"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = c
        .pull_blob(&reg.repo(), &desc, &dir.path().join("b"), &Progress::none())
        .await
        .expect_err("stalled 404 body");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn a_blob_stream_that_stalls_fails_instead_of_hanging() {
    let reg = Lying::start(|_, _| {
        let mut r = Reply::new(200);
        r.payload = Payload::Stall {
            prefix: vec![1u8; 10],
            declared: 4096,
            silence: Duration::from_secs(30),
        };
        r
    });
    let c = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(2))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let desc = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(&[1u8; 4096]), 4096);
    let started = std::time::Instant::now();
    let mut stream = c.open_blob_stream(&reg.repo(), &desc).await.expect("open");
    let mut buf = Vec::new();
    let r = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf).await;
    assert!(r.is_err(), "a stalled stream ended cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a stalled stream hung for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn small_documents_that_trickle_in_fail_instead_of_taking_hours() {
    // Never silent for a whole timeout, so only a limit on the whole body can end these: a
    // byte every 50 ms would take about 15 s per document here, and days for one at its cap.
    let every = Duration::from_millis(50);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_desc = Descriptor::new(
        MediaType::OCI_CONFIG,
        Digest::sha256_of(config),
        config.len() as u64,
    );
    let reg = Lying::start(move |req, addr| {
        let trickle = |status: u16, body: Vec<u8>| {
            let mut r = Reply::new(status).header("Content-Type", "application/json");
            r.payload = Payload::Trickle { body, every };
            r
        };
        let p = req.path.as_str();
        if p.starts_with("/token") {
            return trickle(200, format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes());
        }
        if p.contains("/manifests/slow") {
            return trickle(200, manifest_json());
        }
        if p.contains("/manifests/missing") {
            let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown to the registry"}]}"#;
            return trickle(404, body.as_bytes().to_vec());
        }
        if p.contains("/blobs/") {
            return trickle(200, config.to_vec());
        }
        let challenge = format!(r#"Bearer realm="http://{addr}/token",service="hostile""#);
        Reply::new(401).header("WWW-Authenticate", &challenge)
    });
    let c = Client::builder()
        .no_docker_config()
        .retry(RetryPolicy::immediate(1))
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let quick = |what: &str, started: std::time::Instant| {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{what} trickled on for {:?}",
            started.elapsed()
        );
    };
    let started = std::time::Instant::now();
    let err = c
        .get_manifest(&reg.repo(), "slow")
        .await
        .expect_err("a trickled manifest");
    quick("the manifest", started);
    assert!(err.is_transport(), "{err}");
    assert!(err.to_string().contains("too slowly"), "{err}");
    // An error body is only decoration: its status is reported without waiting for it all.
    let started = std::time::Instant::now();
    let err = c
        .get_manifest(&reg.repo(), "missing")
        .await
        .expect_err("a trickled 404");
    quick("the error body", started);
    assert!(err.is_not_found(), "{err}");
    let started = std::time::Instant::now();
    let err = c
        .get_config(&reg.repo(), &config_desc)
        .await
        .expect_err("a trickled config");
    quick("the config", started);
    assert!(err.to_string().contains("too slowly"), "{err}");
    let started = std::time::Instant::now();
    let err = c
        .get_manifest(&reg.repo(), "token-please")
        .await
        .expect_err("a trickled token");
    quick("the token", started);
    assert!(err.to_string().contains("too slowly"), "{err}");
}

#[tokio::test]
async fn an_advertised_chunk_limit_of_one_byte_is_not_a_request_per_byte() {
    // OCI-Chunk-Max-Length: 1 would make a 1 GiB layer a billion PATCHes (days of requests).
    let blob: Vec<u8> = (0..16 * 1024u32).map(|i| (i % 251) as u8).collect();
    let reg = Lying::start(|req, _| {
        let loc = "/v2/hostile/app/blobs/uploads/s1";
        match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => Reply::new(202)
                .header("Location", loc)
                .header("OCI-Chunk-Max-Length", "1"),
            "PATCH" => {
                let end = req
                    .header("content-range")
                    .and_then(|r| r.split_once('-'))
                    .map_or("0", |(_, end)| end)
                    .to_owned();
                Reply::new(202)
                    .header("Location", loc)
                    .header("Range", &format!("0-{end}"))
                    .header("OCI-Chunk-Max-Length", "1")
            }
            "PUT" => Reply::new(201),
            _ => Reply::new(404),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_source(dir.path(), &blob);
    let out = push(&reg, &src).await.expect("push");
    assert_eq!(out.bytes_sent, blob.len() as u64);
    let patches = reg.count("PATCH", "/blobs/uploads/");
    assert!(patches <= 2, "{patches} PATCHes for a 16 KiB blob");
}

#[tokio::test]
async fn a_blob_sent_a_byte_per_connection_runs_out_of_attempts() {
    // Every GET (ranged as asked) gets one byte of the blob, then the connection closes.
    let blob: Arc<Vec<u8>> = Arc::new((0..8192u32).map(|i| (i % 253) as u8).collect());
    let desc = layer_of(&blob);
    let served = blob.clone();
    let reg = Lying::start(move |req, _| {
        let from: usize = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let Some(rest) = served.get(from..).filter(|r| !r.is_empty()) else {
            return Reply::new(416);
        };
        let last = served.len() - 1;
        Reply {
            status: if from == 0 { 200 } else { 206 },
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {from}-{last}/{}", served.len()),
            )],
            payload: Payload::Stall {
                prefix: rest[..1].to_vec(),
                declared: rest.len() as u64,
                silence: Duration::ZERO,
            },
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("blob");
    let err = client()
        .pull_blob(&reg.repo(), &desc, &sink, &Progress::none())
        .await
        .expect_err("a byte per connection");
    assert!(err.to_string().contains("kept failing"), "{err}");
    // Asked once per byte, the 8 KiB blob would have taken 8192 GETs.
    let gets = reg.count("GET", "/blobs/");
    assert!(gets <= 10, "{gets} GETs");
    assert!(!sink.exists());

    let mut stream = client()
        .open_blob_stream(&reg.repo(), &desc)
        .await
        .expect("open");
    let mut got = Vec::new();
    let err = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got)
        .await
        .expect_err("a byte per connection");
    assert!(err.to_string().contains("kept breaking"), "{err}");
    assert!(reg.count("GET", "/blobs/") <= gets + 10);
}

/// Regression: hyper read a download in buffers of up to 400 KiB (its default), two or three
/// per connection alive at once, and a registry answering faster than hoist writes filled them.
#[tokio::test]
async fn a_flooding_download_is_read_in_bounded_frames() {
    const LEN: u64 = 4 << 20;
    let desc = layer_of(&vec![0u8; LEN as usize]);
    let reg = Lying::start(|_, _| Reply::new(200).zeros(LEN, true));
    let mut stream = client()
        .open_blob_stream(&reg.repo(), &desc)
        .await
        .expect("open stream");
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut largest) = (0, 0);
    loop {
        // One frame per read at most, so the largest read is the largest frame.
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .expect("read");
        if n == 0 {
            break;
        }
        total += n;
        largest = largest.max(n);
        // A reader busy elsewhere: the registry's bytes pile up in the socket meanwhile.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(total, LEN as usize);
    // hyper reads into all the room its buffer has, up to twice its 64 KiB limit.
    assert!(largest <= 128 * 1024, "a frame of {largest} bytes");
}
