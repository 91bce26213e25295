//! Resume across processes: a push interrupted after some acknowledged chunks is continued by
//! a fresh client (as a later process would) from the state file.

mod common;

use std::time::Duration;

use common::{FaultAction, FaultRule, blob_file, proxy, registry_blob_digest};
use hoist_registry::{Client, Event, Progress, PushKind, PushOptions, Repo, RetryPolicy};

const CHUNK: u64 = 64 * 1024;

fn client(state: &std::path::Path, policy: RetryPolicy) -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .state_dir(state)
        .retry(policy)
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_later_run_continues_the_session_from_the_state_file() {
    let Some(reg) = common::registry() else {
        return;
    };
    // The third PATCH is refused with a long Retry-After: the first run sits waiting, holding
    // a live session with two acknowledged chunks, and is killed there.
    let proxy = proxy(
        reg.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            3,
            common::respond(503, &[("Retry-After", "30")], ""),
        )],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let src = blob_file(dir.path(), "b", 6 * CHUNK + 9, 3);
    let repo = Repo::new(proxy.host(), "resume/app").expect("repo");

    let patient = RetryPolicy {
        max_retry_after: Duration::from_secs(60),
        ..RetryPolicy::immediate(5)
    };
    let first = client(&state, patient);
    let (p, mut rx) = Progress::channel(1024);
    let task = tokio::spawn({
        let (repo, src) = (repo.clone(), src.clone());
        async move {
            first
                .push_blob(&repo, &src, &PushOptions::default(), &p)
                .await
        }
    });
    loop {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(Event::Retrying { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("first run never reached the retry wait: {other:?}"),
        }
    }
    task.abort();
    let _ = task.await;
    let files: Vec<_> = std::fs::read_dir(&state).expect("state dir").collect();
    assert_eq!(files.len(), 1, "one state file for the in-flight blob");

    // "Process" two.
    let second = client(&state, RetryPolicy::immediate(3));
    let (p, mut rx) = Progress::channel(1024);
    let out = second
        .push_blob(&repo, &src, &PushOptions::default(), &p)
        .await
        .expect("resumed push");
    drop(p);
    assert_eq!(out.kind, PushKind::Uploaded);
    assert_eq!(out.resumes, 1);
    assert_eq!(
        out.bytes_sent,
        src.size - 2 * CHUNK,
        "only the unacknowledged part is sent"
    );
    let mut resumed = None;
    while let Some(e) = rx.recv().await {
        if let Event::Resumed { offset, .. } = e {
            resumed = Some(offset);
        }
    }
    assert_eq!(resumed, Some(2 * CHUNK));
    assert_eq!(
        registry_blob_digest(&reg, "resume/app", &src.digest),
        Some(src.digest.clone())
    );
    assert_eq!(
        std::fs::read_dir(&state).expect("state dir").count(),
        0,
        "state removed when done"
    );
}

#[tokio::test]
async fn a_dead_session_in_the_state_file_falls_back_to_a_new_one() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let src = blob_file(dir.path(), "b", 3 * CHUNK, 4);
    // Interrupt a first run by cutting its second PATCH (which kills the session on
    // distribution) with no retries left, so the state file points at a dead session.
    let proxy = proxy(
        reg.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            2,
            FaultAction::CutAfterBodyBytes(10),
        )],
    );
    let via_proxy = Repo::new(proxy.host(), "resume/dead").expect("repo");
    let e = client(&state, RetryPolicy::immediate(1))
        .push_blob(&via_proxy, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("no retries allowed");
    assert!(e.is_transport(), "{e}");
    let files: Vec<_> = std::fs::read_dir(&state)
        .expect("state")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    // distribution cancels the cut session asynchronously: wait until it is really gone, as
    // it is by the time a later run starts.
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("read state")).expect("json");
    let location = url::Url::parse(st["location"].as_str().expect("location")).expect("url");
    let path = format!(
        "{}?{}",
        location.path(),
        location.query().unwrap_or_default()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hoist_testkit::http_get(reg.addr(), &path)
        .expect("status")
        .status
        != 404
    {
        assert!(std::time::Instant::now() < deadline, "session never died");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next run finds the state file, asks the session for its status (404: distribution
    // cancelled it when the body was cut), drops the state and uploads in a new session.
    let out = client(&state, RetryPolicy::immediate(3))
        .push_blob(&via_proxy, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("fresh session");
    assert_eq!((out.resumes, out.bytes_sent), (0, src.size));
    assert_eq!(
        registry_blob_digest(&reg, "resume/dead", &src.digest),
        Some(src.digest.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restarted_mid_push_is_survived() {
    let Some(mut reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "big", 256 * CHUNK + 11, 8);
    let repo = Repo::new(reg.host(), "restart/app").expect("repo");
    // Patient enough to wait out a registry restart.
    let patient = RetryPolicy {
        max_attempts: 12,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(5),
    };
    let c = Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .retry(patient)
        .build()
        .expect("client");
    let (p, mut rx) = Progress::channel(1 << 14);
    let task = tokio::spawn({
        let (repo, src) = (repo.clone(), src.clone());
        async move { c.push_blob(&repo, &src, &PushOptions::default(), &p).await }
    });
    // Restart once the push is well under way.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Event::BytesSent { offset, .. })) if offset >= 16 * CHUNK => break,
            Ok(Some(Event::Done { .. })) => panic!("push finished before the restart"),
            Ok(Some(_)) => {}
            other => panic!("push never got going: {other:?}"),
        }
    }
    tokio::task::block_in_place(|| reg.restart().expect("restart registry"));
    let out = task
        .await
        .expect("push task")
        .expect("push survives the restart");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert!(
        out.resumes + out.restarts >= 1,
        "the restart was felt: {out:?}"
    );
    eprintln!("restart survived: {out:?}");
    assert_eq!(
        registry_blob_digest(&reg, "restart/app", &src.digest),
        Some(src.digest.clone())
    );
}

/// PATCHes the proxy saw acknowledged.
fn acked_patches(proxy: &common::FaultProxy) -> usize {
    proxy
        .records()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == Some(202))
        .count()
}

/// A stop asked before PATCH `k` (the hook reads the proxy's records: `k - 1` chunks are
/// acknowledged) sends exactly `k - 1` PATCHes, saves the session, and fails as a stop; a later
/// client continues at `k - 1` chunks.
#[tokio::test]
async fn a_stop_before_patch_k_sends_k_minus_1_and_saves_the_session() {
    let Some(reg) = common::registry() else {
        return;
    };
    let proxy = std::sync::Arc::new(proxy(reg.addr(), Vec::new()));
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let src = blob_file(dir.path(), "b", 6 * CHUNK + 5, 11);
    let repo = Repo::new(proxy.host(), "stop/app").expect("repo");
    let k = 4;
    let watched = proxy.clone();
    let opts = PushOptions::new().stop_when(move || acked_patches(&watched) >= k - 1);
    let (p, mut rx) = Progress::channel(1024);
    let e = client(&state, RetryPolicy::immediate(3))
        .push_blob(&repo, &src, &opts, &p)
        .await
        .expect_err("stopped");
    drop(p);
    assert!(e.is_stopped(), "{e}");
    assert_eq!(e.kind(), hoist_registry::ErrorKind::Stopped);
    assert!(
        e.to_string().contains("a later push continues there"),
        "{e}"
    );
    let patches = proxy
        .records()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, k - 1, "PATCHes sent");
    assert_eq!(acked_patches(&proxy), k - 1);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let held = (k as u64 - 1) * CHUNK;
    assert!(
        events.contains(&Event::Stopped {
            digest: src.digest.clone(),
            offset: held
        }),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "a stop is no failure: {events:?}"
    );
    let files: Vec<_> = std::fs::read_dir(&state)
        .expect("state dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "the session is saved");
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    assert_eq!(st["offset"], held);

    // A later run continues there.
    let out = client(&state, RetryPolicy::immediate(3))
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("resumed");
    assert_eq!((out.resumes, out.restarts), (1, 0));
    assert_eq!(out.bytes_sent, src.size - held);
    assert_eq!(
        registry_blob_digest(&reg, "stop/app", &src.digest),
        Some(src.digest.clone())
    );
}

/// A stop asked from the start opens no session and sends nothing.
#[tokio::test]
async fn a_stop_asked_before_the_blob_begins_sends_nothing() {
    let Some(reg) = common::registry() else {
        return;
    };
    let proxy = proxy(reg.addr(), Vec::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let src = blob_file(dir.path(), "b", 2 * CHUNK, 12);
    let repo = Repo::new(proxy.host(), "stop/early").expect("repo");
    let e = client(&state, RetryPolicy::immediate(3))
        .push_blob(
            &repo,
            &src,
            &PushOptions::new().stop_when(|| true),
            &Progress::none(),
        )
        .await
        .expect_err("stopped");
    assert!(e.is_stopped(), "{e}");
    let sent: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/uploads/"))
        .collect();
    assert!(sent.is_empty(), "{sent:?}");
    assert!(!state.exists() || std::fs::read_dir(&state).expect("dir").count() == 0);
}

/// The registry no longer knows the session a state file names (404 on the status GET): the
/// blob starts over, and the caller is told, with what is sent again.
#[tokio::test]
async fn a_forgotten_session_is_restarted_and_reported() {
    let Some(reg) = common::registry() else {
        return;
    };
    let proxy = std::sync::Arc::new(proxy(reg.addr(), Vec::new()));
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let src = blob_file(dir.path(), "b", 4 * CHUNK, 13);
    let repo = Repo::new(proxy.host(), "stop/forgotten").expect("repo");
    let watched = proxy.clone();
    let opts = PushOptions::new().stop_when(move || acked_patches(&watched) >= 2);
    let e = client(&state, RetryPolicy::immediate(3))
        .push_blob(&repo, &src, &opts, &Progress::none())
        .await
        .expect_err("stopped");
    assert!(e.is_stopped(), "{e}");

    proxy.set_plan(vec![FaultRule::new(
        "GET",
        "/blobs/uploads/",
        1,
        common::respond(404, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}"#),
    )]);
    let (p, mut rx) = Progress::channel(1024);
    let out = client(&state, RetryPolicy::immediate(3))
        .push_blob(&repo, &src, &PushOptions::default(), &p)
        .await
        .expect("started over");
    drop(p);
    assert_eq!((out.resumes, out.bytes_sent), (0, src.size));
    let mut restarted = Vec::new();
    while let Some(e) = rx.recv().await {
        if let Event::Restarted { lost, reason, .. } = e {
            restarted.push((lost, reason));
        }
    }
    assert_eq!(restarted.len(), 1, "{restarted:?}");
    assert_eq!(restarted[0].0, 2 * CHUNK);
    assert!(
        restarted[0].1.contains("no longer knows the upload"),
        "{restarted:?}"
    );
    assert_eq!(
        registry_blob_digest(&reg, "stop/forgotten", &src.digest),
        Some(src.digest.clone())
    );
}
