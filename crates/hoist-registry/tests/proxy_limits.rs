//! Pushing through a real nginx with a body limit: advertised limits, unexplained 413s, and
//! resume behind a buffering proxy.

mod common;

use common::{FaultAction, FaultRule, blob_file, nginx, registry_blob_digest};
use hoist_registry::{Client, Event, Progress, PushOptions, Repo, RetryPolicy};

const MIB: u64 = 1 << 20;

fn client(chunk: u64) -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(chunk)
        .retry(RetryPolicy::immediate(6))
        .build()
        .expect("client")
}

async fn events(mut rx: tokio::sync::mpsc::Receiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    while let Some(e) = rx.recv().await {
        v.push(e);
    }
    v
}

#[tokio::test]
async fn unexplained_413_from_nginx_shrinks_and_succeeds() {
    for buffering in [true, false] {
        let Some(reg) = common::registry() else {
            return;
        };
        let Some(nginx) = nginx(reg.addr(), MIB, buffering, None, None) else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let src = blob_file(dir.path(), "big", 4 * MIB + 5, 1);
        let repo = Repo::new(nginx.host(), "limit/shrink").expect("repo");
        let (p, rx) = Progress::channel(4096);
        let out = client(4 * MIB)
            .push_blob(&repo, &src, &PushOptions::default(), &p)
            .await
            .unwrap_or_else(|e| panic!("buffering={buffering}: {e}"));
        drop(p);
        let ev = events(rx).await;
        assert!(
            out.final_chunk_size <= MIB,
            "buffering={buffering}: {out:?}"
        );
        assert_eq!(out.restarts, 0, "buffering={buffering}");
        assert!(ev.iter().any(|e| matches!(e, Event::ChunkShrunk { .. })));
        assert_eq!(
            registry_blob_digest(&reg, "limit/shrink", &src.digest),
            Some(src.digest.clone())
        );
    }
}

#[tokio::test]
async fn many_shrinks_are_not_failures_in_a_row() {
    let Some(reg) = common::registry() else {
        return;
    };
    // 4 MiB chunks behind a 128 KiB limit: five halvings, each after a 413.
    let Some(nginx) = nginx(reg.addr(), MIB / 8, true, None, None) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "big", MIB + 7, 3);
    let repo = Repo::new(nginx.host(), "limit/halvings").expect("repo");
    // Two failures in a row end a push; the 413s must not count as such.
    let client = Client::builder()
        .no_docker_config()
        .chunk_size(4 * MIB)
        .retry(RetryPolicy::immediate(2))
        .build()
        .expect("client");
    let (p, rx) = Progress::channel(4096);
    let out = client
        .push_blob(&repo, &src, &PushOptions::default(), &p)
        .await
        .expect("push through five shrinks");
    drop(p);
    let shrinks = events(rx)
        .await
        .iter()
        .filter(|e| matches!(e, Event::ChunkShrunk { .. }))
        .count();
    assert_eq!(shrinks, 5, "4 MiB -> 2 -> 1 -> 512 -> 256 -> 128 KiB");
    assert_eq!(out.final_chunk_size, MIB / 8);
    assert_eq!(
        registry_blob_digest(&reg, "limit/halvings", &src.digest),
        Some(src.digest.clone())
    );
}

#[tokio::test]
async fn advertised_max_caps_chunks_from_the_start() {
    for buffering in [true, false] {
        let Some(reg) = common::registry() else {
            return;
        };
        let Some(nginx) = nginx(reg.addr(), MIB, buffering, Some(MIB / 2), None) else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // A blob smaller than the configured chunk but larger than the cap: the cap holds.
        let src = blob_file(dir.path(), "b", 3 * MIB / 2 + 1, 2);
        // A rule-less fault proxy in front of nginx records each PATCH's body size.
        let recorder = common::proxy(nginx.addr(), Vec::new());
        let repo = Repo::new(recorder.host(), "limit/cap").expect("repo");
        let (p, rx) = Progress::channel(4096);
        let out = client(8 * MIB)
            .push_blob(&repo, &src, &PushOptions::default(), &p)
            .await
            .expect("push");
        drop(p);
        let ev = events(rx).await;
        assert_eq!(out.final_chunk_size, MIB / 2);
        assert_eq!(out.bytes_sent, src.size, "no 413, nothing re-sent");
        assert!(!ev.iter().any(|e| matches!(e, Event::ChunkShrunk { .. })));
        let patches: Vec<u64> = recorder
            .records()
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.request_body_bytes)
            .collect();
        assert_eq!(
            patches,
            vec![MIB / 2, MIB / 2, MIB / 2, 1],
            "equal chunks at the cap and a 1-byte tail"
        );
        assert_eq!(
            registry_blob_digest(&reg, "limit/cap", &src.digest),
            Some(src.digest.clone())
        );
    }
}

#[tokio::test]
async fn advertised_min_raises_the_chunk_size() {
    let Some(reg) = common::registry() else {
        return;
    };
    let Some(nginx) = nginx(reg.addr(), MIB, true, None, Some(256 * 1024)) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 600 * 1024, 3);
    let repo = Repo::new(nginx.host(), "limit/min").expect("repo");
    let out = client(64 * 1024)
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push");
    assert_eq!(out.final_chunk_size, 256 * 1024);
    assert_eq!(
        registry_blob_digest(&reg, "limit/min", &src.digest),
        Some(src.digest.clone())
    );
}

#[tokio::test]
async fn cut_patch_behind_buffering_nginx_resumes_with_at_most_one_chunk_resent() {
    let Some(reg) = common::registry() else {
        return;
    };
    let Some(nginx) = nginx(reg.addr(), MIB, true, None, None) else {
        return;
    };
    let chunk = 256 * 1024;
    let proxy = common::proxy(
        nginx.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            3,
            FaultAction::CutAfterBodyBytes(100_000),
        )],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "b", 5 * chunk + 3, 4);
    let repo = Repo::new(proxy.host(), "limit/resume").expect("repo");
    let out = client(chunk)
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push");
    assert_eq!((out.resumes, out.restarts), (1, 0), "{out:?}");
    let forwarded = common::forwarded(&proxy, "PATCH");
    assert!(
        forwarded - src.size <= chunk,
        "re-sent {} bytes",
        forwarded - src.size
    );
    assert_eq!(
        registry_blob_digest(&reg, "limit/resume", &src.digest),
        Some(src.digest.clone())
    );
}
