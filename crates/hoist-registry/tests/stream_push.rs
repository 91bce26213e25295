//! Streamed pushes (`push_remote_blob`): a blob goes from registry A to registry B through
//! ranged GETs feeding PATCH bodies, with faults on either side and a source that lies.

mod common;

use common::{FaultAction as Action, FaultProxy, FaultRule as Rule, Registry, blob_file};
use hoist_oci::{Descriptor, Digest, MediaType};
use hoist_registry::{
    BlobSource, Client, Event, Progress, PushKind, PushOptions, PushOutcome, RemoteBlob, Repo,
    RetryPolicy,
};

const CHUNK: u64 = 64 * 1024;
const SIZE: u64 = 5 * CHUNK + 100;

fn client() -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .retry(RetryPolicy::immediate(5))
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Registry A holding one blob in `src/blob`, and registry B, empty.
struct Pair {
    a: Registry,
    b: Registry,
    blob: BlobSource,
    _dir: tempfile::TempDir,
}

async fn pair(size: u64) -> Option<Pair> {
    let a = common::registry()?;
    let b = common::registry()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = blob_file(dir.path(), "blob", size, 7);
    let repo = Repo::new(a.host(), "src/blob").expect("repo");
    client()
        .push_blob(&repo, &blob, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed registry A");
    Some(Pair {
        a,
        b,
        blob,
        _dir: dir,
    })
}

impl Pair {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::new(MediaType::OCI_LAYER_GZIP),
            self.blob.digest.clone(),
            self.blob.size,
        )
    }

    /// The blob in A, read through `host` (A itself or a proxy in front of it).
    fn remote(&self, host: &str) -> RemoteBlob {
        RemoteBlob::new(
            client(),
            Repo::new(host, "src/blob").expect("repo"),
            self.descriptor(),
        )
    }

    fn b_has(&self, digest: &Digest) -> bool {
        common::registry_blob_digest(&self.b, "dst/blob", digest).as_ref() == Some(digest)
    }
}

async fn stream(
    remote: &RemoteBlob,
    dst_host: &str,
) -> (hoist_registry::Result<PushOutcome>, Vec<Event>) {
    let repo = Repo::new(dst_host, "dst/blob").expect("repo");
    let (p, mut rx) = Progress::channel(4096);
    let res = client()
        .push_remote_blob(&repo, remote, &PushOptions::default(), &p)
        .await;
    drop(p);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (res, events)
}

fn proxy(upstream: std::net::SocketAddr, rules: Vec<Rule>) -> FaultProxy {
    common::proxy(upstream, rules)
}

#[tokio::test]
async fn blob_streams_between_registries_in_ranged_chunks() {
    let Some(p) = pair(SIZE).await else { return };
    // A witness in front of A: how the source was read.
    let watch_a = proxy(p.a.addr(), Vec::new());
    let (res, events) = stream(&p.remote(&watch_a.host()), &p.b.host()).await;
    let out = res.expect("streamed push");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert_eq!(out.bytes_sent, SIZE, "no byte sent twice without a fault");
    assert!(p.b_has(&p.blob.digest), "B holds digest-correct bytes");
    let gets: Vec<_> = watch_a
        .records()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .collect();
    assert_eq!(gets.len(), 6, "one ranged GET per chunk: {gets:?}");
    let read: u64 = gets.iter().map(|r| r.response_body_bytes).sum();
    assert_eq!(read, SIZE, "the source was read exactly once");
    assert!(
        matches!(events.last(), Some(Event::Done { .. })),
        "{events:?}"
    );
    // A second push finds it there.
    let (again, _) = stream(&p.remote(&p.a.host()), &p.b.host()).await;
    assert_eq!(again.expect("second push").kind, PushKind::Skipped);
}

#[tokio::test]
async fn cut_upload_to_destination_resumes_from_its_range() {
    let Some(p) = pair(SIZE).await else { return };
    let front_b = cutting_third_patch(&p);
    let (res, events) = stream(&p.remote(&p.a.host()), &front_b.host()).await;
    let out = res.expect("streamed push survives a cut");
    // distribution drops a session whose PATCH was cut: the blob starts over from byte 0 of
    // the source (two acknowledged chunks and half a chunk are sent again).
    assert!(out.resumes + out.restarts >= 1, "{out:?}");
    let resent = common::forwarded(&front_b, "PATCH").saturating_sub(SIZE);
    assert!(
        resent <= 2 * CHUNK + CHUNK / 2 + CHUNK,
        "at most what was sent before the cut, and one chunk, is re-sent: {resent} {out:?}"
    );
    assert!(p.b_has(&p.blob.digest));
    // Either way the caller hears of it: a resume, or a restart with its reason.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Resumed { .. } | Event::Restarted { .. })),
        "{events:?}"
    );
}

/// A proxy in front of B that cuts the third PATCH halfway through its body.
fn cutting_third_patch(p: &Pair) -> FaultProxy {
    proxy(
        p.b.addr(),
        vec![Rule::new(
            "PATCH",
            "/uploads/",
            3,
            Action::CutAfterBodyBytes(CHUNK / 2),
        )],
    )
}

/// A proxy in front of A that drops `Range` from every blob GET: a source that ignores it.
fn ignoring_range(p: &Pair) -> FaultProxy {
    proxy(
        p.a.addr(),
        vec![Rule::new(
            "GET",
            "/blobs/sha256:",
            0,
            Action::DropRequestHeader("Range".into()),
        )],
    )
}

fn blob_gets(proxy: &FaultProxy) -> Vec<hoist_testkit::RequestRecord> {
    proxy
        .records()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .collect()
}

#[tokio::test]
async fn a_source_ignoring_range_is_read_once_not_once_per_chunk() {
    let Some(p) = pair(SIZE).await else { return };
    let front_a = ignoring_range(&p);
    let (res, _) = stream(&p.remote(&front_a.host()), &p.b.host()).await;
    let out = res.expect("streamed push from a source ignoring Range");
    assert_eq!(out.bytes_sent, SIZE);
    assert!(p.b_has(&p.blob.digest), "B holds digest-correct bytes");
    let gets = blob_gets(&front_a);
    assert!(gets.iter().all(|r| r.status == Some(200)), "{gets:?}");
    // Asked again for each of the 6 chunks, the source would send the blob 6 times.
    assert_eq!(gets.len(), 1, "the whole-blob answer is read on: {gets:?}");
}

#[tokio::test]
async fn a_source_ignoring_range_survives_a_cut_upload() {
    let Some(p) = pair(SIZE).await else { return };
    let front_a = ignoring_range(&p);
    let front_b = cutting_third_patch(&p);
    let (res, _) = stream(&p.remote(&front_a.host()), &front_b.host()).await;
    let out = res.expect("streamed push survives a cut");
    assert!(out.resumes + out.restarts >= 1, "{out:?}");
    assert!(p.b_has(&p.blob.digest));
    // The cut chunk's answer is gone: the source is asked again, from where B says.
    assert!(blob_gets(&front_a).len() >= 2);
}

#[tokio::test]
async fn cut_download_from_source_is_reopened() {
    let Some(p) = pair(SIZE).await else { return };
    let front_a = proxy(
        p.a.addr(),
        vec![Rule::new(
            "GET",
            "/blobs/sha256:",
            2,
            Action::TruncateResponseBody(1000),
        )],
    );
    let (res, _) = stream(&p.remote(&front_a.host()), &p.b.host()).await;
    let out = res.expect("streamed push survives a cut source");
    assert!(out.resumes + out.restarts >= 1, "{out:?}");
    assert!(p.b_has(&p.blob.digest));
    assert!(front_a.faults_injected() >= 1);
}

#[tokio::test]
async fn lying_source_fails_before_the_destination_completes() {
    let Some(p) = pair(SIZE).await else { return };
    // Chunk 3 of the source arrives with a flipped byte.
    let front_a = proxy(
        p.a.addr(),
        vec![Rule::new(
            "GET",
            "/blobs/sha256:",
            3,
            Action::CorruptResponseBody,
        )],
    );
    let front_b = proxy(p.b.addr(), Vec::new());
    let (res, events) = stream(&p.remote(&front_a.host()), &front_b.host()).await;
    let err = res.expect_err("a lying source must fail the push");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(err.to_string().contains("hash to"), "{err}");
    assert!(!p.b_has(&p.blob.digest), "B must not hold the blob");
    assert!(
        !front_b.records().iter().any(|r| r.method == "PUT"),
        "no upload was completed at B"
    );
    assert!(
        matches!(events.last(), Some(Event::Failed { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn missing_source_blob_is_a_clear_refusal() {
    let Some(p) = pair(1000).await else { return };
    let ghost = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        Digest::sha256_of(b"not in registry A"),
        5000,
    );
    let remote = RemoteBlob::new(
        client(),
        Repo::new(p.a.host(), "src/blob").expect("repo"),
        ghost,
    );
    let (res, _) = stream(&remote, &p.b.host()).await;
    let err = res.expect_err("nothing to stream");
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.status(), Some(404), "{err}");
}

#[tokio::test]
async fn empty_blob_streams() {
    let Some(p) = pair(0).await else { return };
    let (res, _) = stream(&p.remote(&p.a.host()), &p.b.host()).await;
    let out = res.expect("empty blob");
    assert!(matches!(out.kind, PushKind::Uploaded | PushKind::Skipped));
    assert!(p.b_has(&p.blob.digest));
}
