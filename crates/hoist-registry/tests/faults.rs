//! Every retry/resume/restart path, against the real registry behind a fault-injecting proxy,
//! with assertions on the bytes re-sent per fault.

mod common;

use common::{
    FaultAction as Action, FaultProxy, FaultRule as Rule, Registry, blob_file, registry_blob_digest,
};
use hoist_oci::{Descriptor, MediaType};
use hoist_registry::{
    BlobSource, Client, Event, Progress, PushOptions, PushOutcome, Repo, RetryPolicy,
};

const CHUNK: u64 = 64 * 1024;
const SIZE: u64 = 5 * CHUNK + 100;

fn client() -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .retry(RetryPolicy::immediate(5))
        .build()
        .expect("client")
}

fn rule(method: &str, path: &str, nth: usize, action: Action) -> Rule {
    Rule::new(method, path, nth, action)
}

use common::respond;

struct Run {
    reg: Registry,
    proxy: FaultProxy,
    src: BlobSource,
    _dir: tempfile::TempDir,
    events: Vec<Event>,
}

async fn push_through(rules: Vec<Rule>) -> Option<(Run, hoist_registry::Result<PushOutcome>)> {
    let reg = common::registry()?;
    let proxy = common::proxy(reg.addr(), rules);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", SIZE, 99);
    let repo = Repo::new(proxy.host(), "fault/blob").expect("repo");
    let (p, mut rx) = Progress::channel(4096);
    let res = client()
        .push_blob(&repo, &src, &PushOptions::default(), &p)
        .await;
    drop(p);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    Some((
        Run {
            reg,
            proxy,
            src,
            _dir: dir,
            events,
        },
        res,
    ))
}

impl Run {
    fn assert_landed(&self) {
        assert_eq!(
            registry_blob_digest(&self.reg, "fault/blob", &self.src.digest),
            Some(self.src.digest.clone()),
            "registry must hold digest-correct bytes"
        );
    }
    /// Bytes that reached the registry beyond the blob size.
    fn resent(&self) -> u64 {
        common::forwarded(&self.proxy, "PATCH").saturating_sub(SIZE)
    }
    fn offsets_monotonic(&self) {
        let offs: Vec<u64> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::BytesSent { offset, .. } => Some(*offset),
                _ => None,
            })
            .collect();
        assert!(offs.windows(2).all(|w| w[0] < w[1]), "{offs:?}");
    }
}

#[tokio::test]
async fn cut_patch_straight_to_registry_is_survived() {
    // distribution cancels a session whose PATCH body was cut; hoist asks the session where it
    // stands (404: gone), opens a new session and starts the blob over. Depending on timing,
    // the status GET may still see the old session alive, in which case one more chunk goes
    // out before the 404; the bound allows for that.
    for n in [0, 1000, CHUNK - 1] {
        let Some((run, res)) = push_through(vec![rule(
            "PATCH",
            "/blobs/uploads/",
            3,
            Action::CutAfterBodyBytes(n),
        )])
        .await
        else {
            return;
        };
        let out = res.unwrap_or_else(|e| panic!("cut at {n}: {e}"));
        run.assert_landed();
        assert!(out.restarts + out.resumes >= 1, "cut at {n}: {out:?}");
        // Before the fault: two acknowledged chunks (lost with the session) and n bytes.
        assert!(
            run.resent() <= 2 * CHUNK + n + CHUNK,
            "cut at {n}: resent {}",
            run.resent()
        );
        run.offsets_monotonic();
        assert!(matches!(run.events.last(), Some(Event::Done { .. })));
    }
}

#[tokio::test]
async fn transient_statuses_are_retried_from_the_servers_range() {
    for (status, headers) in [
        (503, vec![("Retry-After", "0")]),
        (500, vec![]),
        (502, vec![]),
        (429, vec![("Retry-After", "0")]),
        (408, vec![]),
    ] {
        let Some((run, res)) = push_through(vec![rule(
            "PATCH",
            "/blobs/uploads/",
            2,
            respond(status, &headers, ""),
        )])
        .await
        else {
            return;
        };
        let out = res.unwrap_or_else(|e| panic!("{status}: {e}"));
        run.assert_landed();
        assert_eq!(out.restarts, 0, "{status}");
        // The faulted chunk never reached the registry: nothing re-sent upstream, and the
        // client put at most one extra chunk on the wire.
        assert_eq!(run.resent(), 0, "{status}");
        assert!(out.bytes_sent <= SIZE + CHUNK, "{status}: {out:?}");
        // The first retry is the second attempt (plain progress said "attempt 0").
        assert!(
            run.events
                .iter()
                .any(|e| matches!(e, Event::Retrying { attempt: 2, .. })),
            "{status}: {:?}",
            run.events
        );
    }
}

#[tokio::test]
async fn status_416_resumes_at_the_servers_offset() {
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        3,
        respond(416, &[], ""),
    )])
    .await
    else {
        return;
    };
    let out = res.expect("push");
    run.assert_landed();
    assert_eq!((out.resumes, out.restarts), (1, 0));
    assert!(out.bytes_sent <= SIZE + CHUNK);
    let gets = run
        .proxy
        .records()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert!(gets >= 1, "416 must be followed by a status GET");
}

#[tokio::test]
async fn upload_unknown_restarts_the_blob() {
    let body = r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown"}]}"#;
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        3,
        respond(404, &[], body),
    )])
    .await
    else {
        return;
    };
    let out = res.expect("push");
    run.assert_landed();
    assert_eq!(out.restarts, 1);
    let posts = run
        .proxy
        .records()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "a new session was opened");
}

#[tokio::test]
async fn newest_location_is_followed() {
    // The first PATCH response carries a Location the registry does not know: the next PATCH
    // must go there (newest Location wins), get 404 and restart cleanly.
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        1,
        Action::RewriteLocation("/v2/fault/blob/blobs/uploads/stale-session-id?_state=x".into()),
    )])
    .await
    else {
        return;
    };
    let out = res.expect("push recovers");
    run.assert_landed();
    assert!(
        run.proxy
            .records()
            .iter()
            .any(|r| r.path.contains("stale-session-id"))
    );
    assert_eq!(out.restarts, 1);
}

#[tokio::test]
async fn unexplained_413_shrinks_chunks_and_continues() {
    let html =
        "<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>";
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        2,
        respond(413, &[("Content-Type", "text/html")], html),
    )])
    .await
    else {
        return;
    };
    let out = res.expect("push");
    run.assert_landed();
    assert_eq!(out.final_chunk_size, CHUNK / 2);
    assert_eq!(out.restarts, 0);
    assert!(run.events.iter().any(
        |e| matches!(e, Event::ChunkShrunk { from, to, .. } if *from == CHUNK && *to == CHUNK / 2)
    ));
}

#[tokio::test]
async fn registry_refusals_fail_with_a_clear_error() {
    let name_unknown =
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#;
    let Some((run, res)) = push_through(vec![rule(
        "POST",
        "/blobs/uploads/",
        1,
        respond(404, &[], name_unknown),
    )])
    .await
    else {
        return;
    };
    let e = res.expect_err("name unknown");
    assert!(e.is_refused() && e.is_not_found(), "{e}");
    assert_eq!(e.code(), Some("NAME_UNKNOWN"));
    assert!(e.to_string().contains("repository name not known"), "{e}");
    assert!(matches!(run.events.last(), Some(Event::Failed { .. })));

    // 401 without a challenge, twice: no endless loop.
    let Some((_run, res)) = push_through(vec![
        rule("POST", "/blobs/uploads/", 1, respond(401, &[], "")),
        rule("POST", "/blobs/uploads/", 2, respond(401, &[], "")),
    ])
    .await
    else {
        return;
    };
    let e = res.expect_err("unauthorized");
    assert!(e.is_auth() && e.is_refused(), "{e}");
}

#[tokio::test]
async fn digest_invalid_on_close_retries_once_then_fails() {
    let bad = r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#;
    let Some((run, res)) =
        push_through(vec![rule("PUT", "digest=", 1, respond(400, &[], bad))]).await
    else {
        return;
    };
    let out = res.expect("second upload succeeds");
    run.assert_landed();
    assert_eq!(out.restarts, 1);

    let Some((failed, res)) = push_through(vec![
        rule("PUT", "digest=", 1, respond(400, &[], bad)),
        rule("PUT", "digest=", 2, respond(400, &[], bad)),
    ])
    .await
    else {
        return;
    };
    let e = res.expect_err("persistent digest mismatch");
    assert_eq!(e.code(), Some("DIGEST_INVALID"), "{e}");
    // Giving up without a state dir releases the session.
    assert!(
        failed.proxy.records().iter().any(|r| r.method == "DELETE"),
        "the abandoned session is deleted"
    );
}

#[tokio::test]
async fn registry_lying_about_the_digest_is_misbehaviour() {
    let lie = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let Some((_run, res)) = push_through(vec![rule(
        "PUT",
        "digest=",
        1,
        respond(201, &[("Docker-Content-Digest", lie)], ""),
    )])
    .await
    else {
        return;
    };
    let e = res.expect_err("lie detected");
    assert!(e.is_misbehaved(), "{e}");
    assert!(e.to_string().contains(lie), "{e}");
}

/// A `SIZE`-byte blob (from `seed`) pushed straight to `reg` as `repo`: its temp dir, file and
/// descriptor, for the pull tests.
async fn seeded(
    reg: &Registry,
    repo: &str,
    seed: u64,
) -> (tempfile::TempDir, BlobSource, Descriptor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", SIZE, seed);
    let direct = Repo::new(reg.host(), repo).expect("repo");
    client()
        .push_blob(&direct, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed");
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        src.digest.clone(),
        SIZE,
    );
    (dir, src, desc)
}

#[tokio::test]
async fn pull_resumes_after_a_truncated_body_and_rejects_wrong_bytes() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (dir, src, desc) = seeded(&reg, "fault/pull", 5).await;

    let proxy = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            Action::TruncateResponseBody(100_000),
        )],
    );
    let repo = Repo::new(proxy.host(), "fault/pull").expect("repo");
    let sink = dir.path().join("out");
    let (p, mut rx) = Progress::channel(4096);
    client()
        .pull_blob(&repo, &desc, &sink, &p)
        .await
        .expect("pull resumes");
    drop(p);
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );
    let gets: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "one resumed request");
    let mut resumed_at = None;
    while let Some(e) = rx.recv().await {
        if let Event::Resumed { offset, .. } = e {
            resumed_at = Some(offset);
        }
    }
    assert_eq!(resumed_at, Some(100_000));

    // The verifying stream resumes a truncated body by itself.
    let proxy2 = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            Action::TruncateResponseBody(70_000),
        )],
    );
    let repo2 = Repo::new(proxy2.host(), "fault/pull").expect("repo");
    let mut stream = client()
        .open_blob_stream(&repo2, &desc)
        .await
        .expect("open stream");
    let mut hasher = hoist_oci::Digester::new(hoist_oci::Algorithm::Sha256);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .expect("stream resumes and verifies");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    assert_eq!(
        hasher.finish(),
        src.digest,
        "one continuous, correct stream"
    );
    let gets = proxy2
        .records()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 2, "one ranged re-request");

    // Same size, wrong bytes: the digest check fails and nothing is kept.
    let garbage = "x".repeat(SIZE as usize);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule("GET", "/blobs/sha256", 1, respond(200, &[], &garbage))],
    );
    let repo = Repo::new(proxy.host(), "fault/pull").expect("repo");
    let bad = dir.path().join("bad");
    let e = client()
        .pull_blob(&repo, &desc, &bad, &Progress::none())
        .await
        .expect_err("mismatch");
    assert!(e.is_misbehaved() && e.is_digest_mismatch(), "{e}");
    assert!(!bad.exists() && common::partials(dir.path()).is_empty());
}

#[tokio::test]
async fn downloads_that_keep_moving_survive_more_cuts_than_attempts() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (dir, src, desc) = seeded(&reg, "fault/cuts", 6).await;
    // Seven cuts, each after 30 kB: more than the client's five attempts, but never twice at
    // the same byte, so the download is moving and must finish.
    let cuts = || {
        (1..=7)
            .map(|n| {
                rule(
                    "GET",
                    "/blobs/sha256",
                    n,
                    Action::TruncateResponseBody(30_000),
                )
            })
            .collect::<Vec<_>>()
    };
    let proxy = common::proxy(reg.addr(), cuts());
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let sink = dir.path().join("out");
    client()
        .pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("a moving download finishes");
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );

    let proxy = common::proxy(reg.addr(), cuts());
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let mut stream = client().open_blob_stream(&repo, &desc).await.expect("open");
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got)
        .await
        .expect("a moving stream finishes");
    assert_eq!(hoist_oci::Digest::sha256_of(&got), src.digest);

    // Wrong bytes fail the stream, and it stays failed: no clean EOF after the error.
    let garbage = "x".repeat(SIZE as usize);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule("GET", "/blobs/sha256", 1, respond(200, &[], &garbage))],
    );
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let mut stream = client().open_blob_stream(&repo, &desc).await.expect("open");
    let mut sink = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink)
        .await
        .expect_err("digest mismatch");
    let mut buf = [0u8; 16];
    tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
        .await
        .expect_err("still failed after the error");
}

#[tokio::test]
async fn a_stalled_patch_times_out_and_the_push_continues() {
    let Some(reg) = common::registry() else {
        return;
    };
    let proxy = common::proxy(
        reg.addr(),
        vec![rule(
            "PATCH",
            "/blobs/uploads/",
            2,
            Action::Stall(std::time::Duration::from_secs(30)),
        )],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", SIZE, 42);
    let repo = Repo::new(proxy.host(), "fault/blob").expect("repo");
    let timeout = std::time::Duration::from_secs(3);
    let c = Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .timeout(timeout)
        .retry(RetryPolicy::immediate(5))
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let out = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push survives a stall");
    assert!(
        out.resumes + out.restarts >= 1,
        "{out:?} {:#?}",
        proxy.records()
    );
    // The chunk went out at once and then waited for an answer: the stall is acted on about
    // one timeout after its last byte (it took two: the first period saw the body move).
    assert!(
        started.elapsed() < timeout * 2 - std::time::Duration::from_millis(500),
        "the stall took {:?} to notice with a {timeout:?} timeout",
        started.elapsed()
    );
    assert_eq!(
        registry_blob_digest(&reg, "fault/blob", &src.digest),
        Some(src.digest.clone())
    );
}

#[tokio::test]
async fn a_corrupted_manifest_is_rejected_by_digest() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let direct = Repo::new(reg.host(), "fault/manifest").expect("repo");
    let c = client();
    let config = blob_file(dir.path(), "config", 100, 1);
    let layer = blob_file(dir.path(), "layer", 1000, 2);
    for b in [&config, &layer] {
        c.push_blob(&direct, b, &PushOptions::default(), &Progress::none())
            .await
            .expect("blob");
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":100}},"layers":[{{"mediaType":"{}","digest":"{}","size":1000}}]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        config.digest,
        MediaType::OCI_LAYER_GZIP,
        layer.digest
    );
    let digest = c
        .push_manifest(
            &direct,
            "v1",
            &MediaType::new(MediaType::OCI_MANIFEST),
            manifest.as_bytes(),
        )
        .await
        .expect("manifest");
    // By tag (checked against Docker-Content-Digest) and by digest: both catch a flipped byte.
    for reference in ["v1".to_owned(), digest.to_string()] {
        let proxy = common::proxy(
            reg.addr(),
            vec![rule("GET", "/manifests/", 1, Action::CorruptResponseBody)],
        );
        let repo = Repo::new(proxy.host(), "fault/manifest").expect("repo");
        let e = c
            .get_manifest(&repo, &reference)
            .await
            .expect_err("corrupt");
        assert!(
            e.is_misbehaved() && e.is_digest_mismatch(),
            "{reference}: {e}"
        );
    }
    // A HEAD by digest answered for another digest, or with no usable size: misbehaviour,
    // not a descriptor to trust.
    let other = hoist_oci::Digest::sha256_of(b"another manifest").to_string();
    let ours = digest.to_string();
    for (said, length, complaint) in [
        (other.as_str(), "10", "answered for"),
        (ours.as_str(), "x", "Content-Length"),
    ] {
        let canned = Action::Respond {
            status: 200,
            headers: vec![
                ("Docker-Content-Digest".into(), said.into()),
                ("Content-Length".into(), length.into()),
            ],
            body: String::new(),
        };
        let proxy = common::proxy(reg.addr(), vec![rule("HEAD", "/manifests/", 1, canned)]);
        let repo = Repo::new(proxy.host(), "fault/manifest").expect("repo");
        let e = c
            .head_manifest(&repo, &ours)
            .await
            .expect_err("not to be trusted");
        assert!(e.is_misbehaved(), "{e}");
        assert!(e.to_string().contains(complaint), "{e}");
    }
}

#[tokio::test]
async fn a_413_on_every_chunk_fails_clearly_without_html() {
    let html = "<html><head><title>413 Request Entity Too Large</title></head><body><center>nginx</center></body></html>";
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        0,
        respond(413, &[("Content-Type", "text/html")], html),
    )])
    .await
    else {
        return;
    };
    let e = res.expect_err("always 413");
    assert!(e.is_refused() && e.is_body_too_large(), "{e}");
    let text = e.to_string();
    assert!(text.contains("413 Payload Too Large"), "{text}");
    assert!(text.contains("limits request bodies"), "{text}");
    assert!(text.contains("shrank its chunks"), "{text}");
    assert!(!text.contains('<'), "no HTML in the error: {text}");
    let shrinks = run
        .events
        .iter()
        .filter(|e| matches!(e, Event::ChunkShrunk { .. }))
        .count();
    assert_eq!(shrinks, 3, "64 KiB -> 32 -> 16 -> 8 KiB, then give up");
}

#[tokio::test]
async fn acknowledgements_that_keep_nothing_end_the_push() {
    // Every PATCH is "accepted" with the first chunk's Range, but none reaches the registry:
    // the first looks like progress, the rest like none, and a status check always says 0.
    let Some((run, res)) = push_through(vec![rule(
        "PATCH",
        "/blobs/uploads/",
        0,
        respond(202, &[("Range", "0-65535")], ""),
    )])
    .await
    else {
        return;
    };
    let e = res.expect_err("a registry that keeps nothing");
    assert!(e.is_misbehaved(), "{e}");
    // Its status (`0-0` after 64 KiB were confirmed) reads as a lost session, so each round
    // starts over; the restarts or the byte budget end it, whichever comes first.
    let text = e.to_string();
    assert!(
        text.contains("keeps losing") || text.contains("lost the upload session"),
        "{e}"
    );
    let patches = run
        .proxy
        .records()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    // Bounded by the byte budget (blob size x (attempts + 1)), not endless.
    let budget_chunks = (SIZE * 6).div_ceil(CHUNK) as usize;
    assert!(
        patches <= budget_chunks + 1,
        "{patches} PATCHes for a {SIZE}-byte blob"
    );
}

#[tokio::test]
async fn a_registry_that_always_loses_the_session_is_given_up_on() {
    let body = r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown"}]}"#;
    // Every second PATCH says the session is gone: progress is made, then lost, forever.
    let Some((run, res)) = push_through(vec![
        rule("PATCH", "/blobs/uploads/", 2, respond(404, &[], body)),
        rule("PATCH", "/blobs/uploads/", 4, respond(404, &[], body)),
        rule("PATCH", "/blobs/uploads/", 6, respond(404, &[], body)),
        rule("PATCH", "/blobs/uploads/", 8, respond(404, &[], body)),
        rule("PATCH", "/blobs/uploads/", 10, respond(404, &[], body)),
        rule("PATCH", "/blobs/uploads/", 12, respond(404, &[], body)),
    ])
    .await
    else {
        return;
    };
    let e = res.expect_err("gives up");
    assert!(e.is_misbehaved(), "{e}");
    assert!(e.to_string().contains("lost the upload session"), "{e}");
    let posts = run
        .proxy
        .records()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(posts <= 5, "bounded restarts: {posts}");
}

#[tokio::test]
async fn blob_get_follows_a_redirect_to_storage_and_stops_an_endless_one() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", 100_000, 77);
    let direct = Repo::new(reg.host(), "fault/redir").expect("repo");
    client()
        .push_blob(&direct, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed");
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        src.digest.clone(),
        src.size,
    );
    // "Storage" is the registry itself on another authority.
    let storage = format!("http://{}/v2/fault/redir/blobs/{}", reg.host(), src.digest);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            respond(307, &[("Location", storage.as_str())], ""),
        )],
    );
    let repo = Repo::new(proxy.host(), "fault/redir").expect("repo");
    let sink = dir.path().join("out");
    client()
        .pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("redirect followed");
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );
    assert!(
        client()
            .blob_exists(&repo, &src.digest)
            .await
            .expect("HEAD")
    );

    // A redirect to itself, forever: a clear error, not a hang.
    let looping = common::proxy(reg.addr(), Vec::new());
    let self_url = format!(
        "http://{}/v2/fault/redir/blobs/{}",
        looping.host(),
        src.digest
    );
    looping.set_plan(vec![rule(
        "GET",
        "/blobs/sha256",
        0,
        respond(307, &[("Location", self_url.as_str())], ""),
    )]);
    let repo = Repo::new(looping.host(), "fault/redir").expect("repo");
    let e = client()
        .pull_blob(&repo, &desc, &dir.path().join("loop"), &Progress::none())
        .await
        .expect_err("endless redirect");
    assert!(
        e.is_misbehaved() && e.to_string().contains("redirect"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failure_retried_until_the_policy_gives_up_says_how_often_it_was_tried() {
    let Some(reg) = common::registry() else {
        return;
    };
    // A registry that answers 503 every time: five attempts (the test client's policy).
    let busy = (1..=5)
        .map(|n| rule("GET", "/manifests/", n, Action::status(503, "busy")))
        .collect();
    let proxy = common::proxy(reg.addr(), busy);
    let repo = Repo::new(proxy.host(), "fault/busy").expect("repo");
    let e = client()
        .get_manifest(&repo, "v1")
        .await
        .expect_err("always busy");
    assert!(e.to_string().contains("gave up after 5 attempts"), "{e}");
    // Nothing listening: the same, for a transport failure.
    let port = hoist_testkit::free_port().expect("port");
    let gone = Repo::new(format!("127.0.0.1:{port}"), "fault/gone").expect("repo");
    let e = client()
        .get_manifest(&gone, "v1")
        .await
        .expect_err("nobody there");
    assert!(e.to_string().contains("gave up after 5 attempts"), "{e}");
    // A refusal is not retried, and says nothing of attempts.
    let e = client()
        .get_manifest(&Repo::new(reg.host(), "fault/none").expect("repo"), "v1")
        .await
        .expect_err("unknown");
    assert!(!e.to_string().contains("attempts"), "{e}");
}
