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
