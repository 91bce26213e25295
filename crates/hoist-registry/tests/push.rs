//! Blob pushes against a real distribution registry: chunk boundaries, skip, mount, resume.

mod common;

use common::{blob_file, registry_blob_digest};
use hoist_oci::Digest;
use hoist_registry::{
    BlobSource, Client, Event, Progress, PushKind, PushOptions, Repo, RetryPolicy,
};

fn client(chunk: u64) -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(chunk)
        .retry(RetryPolicy::immediate(4))
        .build()
        .expect("client")
}

#[tokio::test]
async fn chunk_boundaries_land_digest_correct() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let chunk = 64 * 1024;
    let c = client(chunk);
    // A rule-less fault proxy records the body size of every PATCH.
    let recorder = common::proxy(reg.addr(), Vec::new());
    let repo = Repo::new(recorder.host(), "bounds/app").expect("repo");
    for (i, size) in [0, 1, chunk - 1, chunk, chunk + 1, 5 * chunk + 17]
        .into_iter()
        .enumerate()
    {
        let src = blob_file(dir.path(), &format!("b{i}"), size, i as u64 + 1);
        let (sink, mut rx) = Progress::channel(1024);
        let out = c
            .push_blob(&repo, &src, &PushOptions::default(), &sink)
            .await
            .unwrap_or_else(|e| panic!("size {size}: {e}"));
        assert_eq!(out.kind, PushKind::Uploaded, "size {size}");
        assert_eq!(out.bytes_sent, size, "no byte sent twice without faults");
        assert_eq!((out.resumes, out.restarts), (0, 0));
        assert_eq!(
            registry_blob_digest(&reg, "bounds/app", &src.digest),
            Some(src.digest.clone()),
            "size {size}"
        );
        drop(sink);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        assert!(matches!(events.first(), Some(Event::BlobStarted { size: s, .. }) if *s == size));
        assert!(matches!(events.last(), Some(Event::Done { .. })));
        let offsets: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::BytesSent { offset, .. } => Some(*offset),
                _ => None,
            })
            .collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        if size > 0 {
            assert_eq!(offsets.last(), Some(&size));
        }
        // Non-final chunks are all exactly `chunk` bytes; the tail carries the rest.
        let patches: Vec<u64> = recorder
            .records()
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.request_body_bytes)
            .collect();
        let mut expect = vec![chunk; (size / chunk) as usize];
        if size % chunk > 0 {
            expect.push(size % chunk);
        }
        assert_eq!(patches, expect, "size {size}");
        recorder.clear_records();
        // Pushing again is a HEAD hit.
        let again = c
            .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
            .await
            .expect("second push");
        assert_eq!(again.kind, PushKind::Skipped);
        assert_eq!(again.bytes_sent, 0);
    }
}

#[tokio::test]
async fn mount_from_another_repository() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(1 << 20);
    let src = blob_file(dir.path(), "m", 300_000, 7);
    let a = Repo::new(reg.host(), "team/a").expect("repo");
    let b = Repo::new(reg.host(), "team/b").expect("repo");
    c.push_blob(&a, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push to a");
    let opts = PushOptions::new().mount_from("team/a");
    let out = c
        .push_blob(&b, &src, &opts, &Progress::none())
        .await
        .expect("mount");
    assert_eq!(out.kind, PushKind::Mounted);
    assert_eq!(out.bytes_sent, 0);
    assert_eq!(
        registry_blob_digest(&reg, "team/b", &src.digest),
        Some(src.digest.clone())
    );
    // The explicit mount call: true when mounted, false (session released) when declined.
    let d = Repo::new(reg.host(), "team/d").expect("repo");
    assert!(
        c.mount_blob(&d, &src.digest, "team/a")
            .await
            .expect("mount")
    );
    assert!(c.blob_exists(&d, &src.digest).await.expect("HEAD"));
    let absent = hoist_oci::Digest::sha256_of(b"never pushed");
    assert!(!c.mount_blob(&d, &absent, "team/a").await.expect("declined"));
    // A mount source that lacks the blob: the registry opens a session instead (202) and the
    // push continues with it.
    let other = blob_file(dir.path(), "o", 1000, 8);
    let c2 = Repo::new(reg.host(), "team/c").expect("repo");
    let out = c2_push(&c, &c2, &other, &opts).await;
    assert_eq!(out.kind, PushKind::Uploaded);
    assert_eq!(out.bytes_sent, 1000);
    assert_eq!(
        registry_blob_digest(&reg, "team/c", &other.digest),
        Some(other.digest.clone())
    );
}

async fn c2_push(
    c: &Client,
    repo: &Repo,
    src: &hoist_registry::BlobSource,
    opts: &PushOptions,
) -> hoist_registry::PushOutcome {
    c.push_blob(repo, src, opts, &Progress::none())
        .await
        .expect("push")
}

#[tokio::test]
async fn wrong_source_file_is_invalid_input() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(1 << 20);
    let repo = Repo::new(reg.host(), "bad/src").expect("repo");
    let mut src = blob_file(dir.path(), "x", 5000, 3);
    src.size = 4000;
    let e = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("size mismatch");
    assert!(e.is_invalid_input(), "{e}");
    let mut src = blob_file(dir.path(), "y", 5000, 3);
    src.digest = hoist_oci::Digest::sha256_of(b"something else");
    let e = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect_err("digest mismatch");
    assert!(e.is_invalid_input(), "{e}");
    assert!(e.to_string().contains("hashes to"), "{e}");
}

#[tokio::test]
async fn unknown_host_is_a_transport_error() {
    let c = client(1 << 20);
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let repo = Repo::new(format!("127.0.0.1:{port}"), "x/y").expect("repo");
    let e = c
        .blob_exists(&repo, &hoist_oci::Digest::sha256_of(b"x"))
        .await
        .expect_err("nobody listening");
    assert!(e.is_transport(), "{e}");
    assert!(e.url().is_some_and(|u| u.contains(&port.to_string())));
}

#[tokio::test]
async fn relative_locations_are_resolved() {
    let Some(reg) = common::registry_relative() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(64 * 1024);
    let repo = Repo::new(reg.host(), "rel/app").expect("repo");
    let src = blob_file(dir.path(), "r", 3 * 64 * 1024 + 5, 21);
    let out = c
        .push_blob(&repo, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("push with relative Locations");
    assert_eq!(out.bytes_sent, src.size);
    assert_eq!(
        registry_blob_digest(&reg, "rel/app", &src.digest),
        Some(src.digest.clone())
    );
}

#[tokio::test]
async fn blobs_run_concurrently_up_to_the_limit() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Client::builder()
        .no_docker_config()
        .chunk_size(64 * 1024)
        .concurrency(2)
        .build()
        .expect("client");
    let repo = Repo::new(reg.host(), "conc/app").expect("repo");
    let sources: Vec<_> = (0..6)
        .map(|i| blob_file(dir.path(), &format!("c{i}"), 400_000 + i, 100 + i))
        .collect();
    let (p, mut rx) = Progress::channel(1 << 14);
    let outs = c
        .push_blobs(&repo, &sources, &PushOptions::default(), &p)
        .await
        .expect("all pushed");
    drop(p);
    assert!(outs.iter().all(|o| o.kind == PushKind::Uploaded));
    let (mut inflight, mut max) = (0i32, 0i32);
    while let Some(e) = rx.recv().await {
        match e {
            Event::BlobStarted { .. } => inflight += 1,
            Event::Done { .. } | Event::Failed { .. } => inflight -= 1,
            _ => {}
        }
        max = max.max(inflight);
    }
    assert_eq!(inflight, 0);
    assert_eq!(max, 2, "two blobs at a time, never more");
    for s in &sources {
        assert_eq!(
            registry_blob_digest(&reg, "conc/app", &s.digest),
            Some(s.digest.clone())
        );
    }
}

/// `BlobSource::from_file` hashes a file as the registry will: the blob it describes is
/// pushed and verified under that digest. A directory is a local I/O error, not a blob.
#[tokio::test]
async fn a_blob_source_made_from_a_file_pushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Larger than any one read, and not a multiple of one.
    let written = blob_file(dir.path(), "f", 3 * 64 * 1024 + 17, 41);
    let hashed = BlobSource::from_file(&written.path).await.expect("hash");
    assert_eq!(hashed, written);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    let none = BlobSource::from_file(&empty).await.expect("hash empty");
    assert_eq!((none.digest, none.size), (Digest::sha256_of(b""), 0));
    let e = BlobSource::from_file(dir.path())
        .await
        .expect_err("a directory");
    assert!(e.is_local_io(), "{e}");
    let e = BlobSource::from_file(dir.path().join("missing"))
        .await
        .expect_err("missing");
    assert!(e.is_local_io(), "{e}");

    let Some(reg) = common::registry() else {
        return;
    };
    let c = client(64 * 1024);
    let repo = Repo::new(reg.host(), "fromfile/app").expect("repo");
    c.push_blob(&repo, &hashed, &PushOptions::default(), &Progress::none())
        .await
        .expect("push");
    assert_eq!(
        registry_blob_digest(&reg, "fromfile/app", &hashed.digest),
        Some(hashed.digest.clone())
    );
}
