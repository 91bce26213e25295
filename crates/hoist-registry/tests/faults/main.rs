//! Every retry/resume/restart path, against the real registry behind a fault-injecting proxy,
//! with assertions on the bytes re-sent per fault.

#[path = "../common/mod.rs"]
mod common;
mod reads;

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
