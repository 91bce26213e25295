//! Streamed pushes (`push_remote_blob`) resumed by a later process: the first client is stopped
//! after some acknowledged chunks, and a fresh client with the same state directory continues
//! the session. It must read the prefix the destination holds from the source again (hashed,
//! never sent), send only the rest, and complete the upload only when every byte hashed right.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{FaultAction, FaultProxy, FaultRule, Registry, blob_file};
use hoist_oci::{Descriptor, Digest, MediaType};
use hoist_registry::{
    BlobSource, Client, Event, Progress, PushKind, PushOptions, PushOutcome, RemoteBlob, Repo,
    RetryPolicy,
};

const CHUNK: u64 = 64 * 1024;
const SIZE: u64 = 6 * CHUNK + 100;
/// Chunks the first run gets acknowledged before it is stopped.
const HELD: u64 = 2 * CHUNK;

fn client(state: &Path) -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(CHUNK)
        .state_dir(state)
        .retry(RetryPolicy::immediate(3))
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Registry A holding the blob in `src/blob`, registry B (empty) behind a counting proxy, and
/// a state directory.
struct Setup {
    a: Registry,
    b: Registry,
    front_b: Arc<FaultProxy>,
    blob: BlobSource,
    state: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup(seed: u64) -> Option<Setup> {
    let a = common::registry()?;
    let b = common::registry()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = blob_file(dir.path(), "blob", SIZE, seed);
    let seeder = Client::builder()
        .no_docker_config()
        .build()
        .expect("client");
    let repo = Repo::new(a.host(), "src/blob").expect("repo");
    seeder
        .push_blob(&repo, &blob, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed registry A");
    let front_b = Arc::new(common::proxy(b.addr(), Vec::new()));
    let state = dir.path().join("state");
    Some(Setup {
        a,
        b,
        front_b,
        blob,
        state,
        _dir: dir,
    })
}

impl Setup {
    /// A proxy in front of A whose `nth` blob GET (0: every one) meets `action`.
    fn source_with(&self, nth: usize, action: FaultAction) -> FaultProxy {
        common::proxy(
            self.a.addr(),
            vec![FaultRule::new("GET", "/blobs/sha256:", nth, action)],
        )
    }

    /// The blob in A, read through `host` (A, or a proxy in front of it).
    fn remote(&self, host: &str) -> RemoteBlob {
        let desc = Descriptor::new(
            MediaType::new(MediaType::OCI_LAYER_GZIP),
            self.blob.digest.clone(),
            self.blob.size,
        );
        let reader = Client::builder()
            .no_docker_config()
            .retry(RetryPolicy::immediate(3))
            .build()
            .expect("client");
        RemoteBlob::new(reader, Repo::new(host, "src/blob").expect("repo"), desc)
    }

    fn dst(&self) -> Repo {
        Repo::new(self.front_b.host(), "dst/blob").expect("repo")
    }

    fn b_has(&self, digest: &Digest) -> bool {
        common::registry_blob_digest(&self.b, "dst/blob", digest).as_ref() == Some(digest)
    }

    fn state_files(&self) -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(&self.state) {
            Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A first run, streamed from A itself, stopped once B acknowledged [`HELD`] bytes.
    async fn stopped_run(&self) {
        let watched = self.front_b.clone();
        let opts = PushOptions::new().stop_when(move || acked_patches(&watched) >= 2);
        let e = client(&self.state)
            .push_remote_blob(
                &self.dst(),
                &self.remote(&self.a.host()),
                &opts,
                &Progress::none(),
            )
            .await
            .expect_err("stopped");
        assert!(e.is_stopped(), "{e}");
        assert!(
            e.to_string().contains("a later push continues there"),
            "{e}"
        );
        let files = self.state_files();
        assert_eq!(files.len(), 1, "the streamed session is saved");
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
        assert_eq!(st["offset"], HELD);
        self.front_b.clear_records();
    }

    /// That a stopped run said it stopped where the first run had, at [`HELD`].
    fn assert_stopped_at_held(&self, events: &[Event]) {
        assert!(
            events.contains(&Event::Stopped {
                digest: self.blob.digest.clone(),
                offset: HELD
            }),
            "{events:?}"
        );
    }

    /// After a run that stopped before sending anything to B: its session is still saved, and
    /// the run after that completes the blob, sending only what B did not have.
    async fn kept_then_completed(&self) {
        let records = self.front_b.records();
        assert!(
            !records
                .iter()
                .any(|r| r.method == "PATCH" || r.method == "PUT"),
            "nothing sent to B: {records:?}"
        );
        assert_eq!(self.state_files().len(), 1, "the session is still saved");
        let (res, _) = self.later_run(&self.a.host()).await;
        let out = res.expect("the run after that completes it");
        assert_eq!(out.bytes_sent, SIZE - HELD, "{out:?}");
        assert!(self.b_has(&self.blob.digest));
    }

    /// A later run (a fresh client, the same state directory) reading the source through
    /// `host`; its result and every event it gave.
    async fn later_run(&self, host: &str) -> (hoist_registry::Result<PushOutcome>, Vec<Event>) {
        let (p, rx) = Progress::channel(4096);
        let res = client(&self.state)
            .push_remote_blob(&self.dst(), &self.remote(host), &PushOptions::default(), &p)
            .await;
        drop(p);
        (res, all_events(rx).await)
    }
}

/// Every event a run gave, once its progress sender is gone.
async fn all_events(mut rx: tokio::sync::mpsc::Receiver<Event>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    events
}

fn acked_patches(proxy: &FaultProxy) -> usize {
    proxy
        .records()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == Some(202))
        .count()
}

fn blob_gets(proxy: &FaultProxy) -> Vec<hoist_testkit::RequestRecord> {
    proxy
        .records()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .collect()
}

#[tokio::test]
async fn a_stopped_streamed_push_is_continued_by_a_later_client() {
    let Some(s) = setup(21).await else { return };
    s.stopped_run().await;
    let watch_a = common::proxy(s.a.addr(), Vec::new());
    let (res, events) = s.later_run(&watch_a.host()).await;
    let out = res.expect("resumed streamed push");
    assert_eq!(out.kind, PushKind::Uploaded);
    assert_eq!((out.resumes, out.restarts), (1, 0), "{out:?}");
    assert_eq!(out.bytes_sent, SIZE - HELD, "{out:?}");
    // B received only what it lacked.
    assert_eq!(common::forwarded(&s.front_b, "PATCH"), SIZE - HELD);
    // The source was read for the prefix (hashed, not sent), then per chunk: the whole blob
    // once, the prefix first.
    let gets = blob_gets(&watch_a);
    assert_eq!(gets.first().map(|g| g.response_body_bytes), Some(HELD));
    assert!(gets.iter().all(|g| g.status == Some(206)), "{gets:?}");
    let read: u64 = gets.iter().map(|g| g.response_body_bytes).sum();
    assert_eq!(read, SIZE, "{gets:?}");
    assert!(s.b_has(&s.blob.digest), "B holds digest-correct bytes");
    let digest = s.blob.digest.clone();
    let resumed = events.iter().position(|e| {
        *e == Event::Resumed {
            digest: digest.clone(),
            offset: HELD,
        }
    });
    let verifying = events.iter().position(|e| {
        *e == Event::VerifyingPrefix {
            digest: digest.clone(),
            from: 0,
            offset: HELD,
        }
    });
    assert!(
        resumed.is_some() && verifying > resumed,
        "the resume, then the prefix read, are said: {events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Done { .. })),
        "{events:?}"
    );
    assert!(s.state_files().is_empty(), "state removed when done");
}

/// A source that ignores `Range` answers the prefix read with the whole blob: its first bytes
/// are hashed and the rest of the same answer feeds the chunks, so it is asked once.
#[tokio::test]
async fn a_source_ignoring_range_is_read_once_for_prefix_and_rest() {
    let Some(s) = setup(22).await else { return };
    s.stopped_run().await;
    let front_a = s.source_with(0, FaultAction::DropRequestHeader("Range".into()));
    let (res, _) = s.later_run(&front_a.host()).await;
    let out = res.expect("resumed streamed push");
    assert_eq!(out.bytes_sent, SIZE - HELD, "{out:?}");
    assert_eq!(common::forwarded(&s.front_b, "PATCH"), SIZE - HELD);
    let gets = blob_gets(&front_a);
    assert_eq!(gets.len(), 1, "one whole-blob answer, read on: {gets:?}");
    assert_eq!(gets[0].status, Some(200));
    assert!(s.b_has(&s.blob.digest));
}

/// The source's prefix arrives with a flipped byte on the later run: the bytes B holds were
/// never seen by this process and what the source says of them does not hash right, so the
/// upload is not completed, nothing is reported done, and the session is given up.
#[tokio::test]
async fn a_prefix_that_does_not_hash_right_completes_nothing() {
    let Some(s) = setup(23).await else { return };
    s.stopped_run().await;
    // The first blob GET of the later run is the prefix read.
    let front_a = s.source_with(1, FaultAction::CorruptResponseBody);
    let (res, events) = s.later_run(&front_a.host()).await;
    let err = res.expect_err("a corrupt prefix must fail the push");
    assert!(err.is_digest_mismatch(), "{err}");
    assert_eq!(front_a.faults_injected(), 1);
    let records = s.front_b.records();
    assert!(
        !records.iter().any(|r| r.method == "PUT"),
        "no upload was completed at B: {records:?}"
    );
    assert!(!s.b_has(&s.blob.digest), "B must not hold the blob");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Done { .. })),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Failed { .. })),
        "{events:?}"
    );
    // A session holding bytes nobody can vouch for is not offered to the next run.
    assert!(s.state_files().is_empty(), "{:?}", s.state_files());
    assert!(
        records.iter().any(|r| r.method == "DELETE"),
        "the session is released: {records:?}"
    );
}

/// The session a state file names holds the first bytes of another blob (a state file that
/// lies, or a registry that mixed up sessions). hoist's own check passes (the source's bytes
/// are right), and the destination's check on the `PUT` refuses the session: it is never
/// completed, and the blob starts over, said, and ends up right.
#[tokio::test]
async fn a_session_holding_another_blobs_bytes_is_never_completed() {
    let Some(s) = setup(24).await else { return };
    // Another blob of the same size in A, stopped at B after two chunks.
    let dir = tempfile::tempdir().expect("tempdir");
    let other = blob_file(dir.path(), "other", SIZE, 99);
    let seeder = Client::builder()
        .no_docker_config()
        .build()
        .expect("client");
    seeder
        .push_blob(
            &Repo::new(s.a.host(), "src/blob").expect("repo"),
            &other,
            &PushOptions::default(),
            &Progress::none(),
        )
        .await
        .expect("seed the other blob");
    let watched = s.front_b.clone();
    let opts = PushOptions::new().stop_when(move || acked_patches(&watched) >= 2);
    let other_remote = RemoteBlob::new(
        seeder.clone(),
        Repo::new(s.a.host(), "src/blob").expect("repo"),
        Descriptor::new(
            MediaType::new(MediaType::OCI_LAYER_GZIP),
            other.digest.clone(),
            SIZE,
        ),
    );
    let e = client(&s.state)
        .push_remote_blob(&s.dst(), &other_remote, &opts, &Progress::none())
        .await
        .expect_err("stopped");
    assert!(e.is_stopped(), "{e}");
    // Its state file, re-keyed to the blob under test.
    let files = s.state_files();
    assert_eq!(files.len(), 1);
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    st["digest"] = serde_json::Value::String(s.blob.digest.to_string());
    let renamed = files[0]
        .to_string_lossy()
        .replace(other.digest.hex(), s.blob.digest.hex());
    std::fs::write(&renamed, serde_json::to_vec(&st).expect("json")).expect("write");
    std::fs::remove_file(&files[0]).expect("rm");
    s.front_b.clear_records();

    let (res, events) = s.later_run(&s.a.host()).await;
    let out = res.expect("started over and completed");
    assert_eq!((out.resumes, out.restarts), (1, 1), "{out:?}");
    let refused = events.iter().find_map(|e| match e {
        Event::Restarted { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        refused
            .as_deref()
            .is_some_and(|r| r.contains("different digest")),
        "{events:?}"
    );
    assert!(s.b_has(&s.blob.digest), "B holds the right bytes");
    assert!(
        !s.b_has(&other.digest),
        "the mixed session was never completed"
    );
}

/// A stop asked while the prefix is read again sends nothing: the state file still names the
/// session where it stood, and the run after that completes it.
#[tokio::test]
async fn a_stop_while_the_prefix_is_read_keeps_the_session() {
    let Some(s) = setup(25).await else { return };
    s.stopped_run().await;
    let watch_a = Arc::new(common::proxy(s.a.addr(), Vec::new()));
    // True once the prefix read reached the source: asked before its first frame.
    let reading = watch_a.clone();
    let opts = PushOptions::new().stop_when(move || !blob_gets(&reading).is_empty());
    let (p, rx) = Progress::channel(4096);
    let e = client(&s.state)
        .push_remote_blob(&s.dst(), &s.remote(&watch_a.host()), &opts, &p)
        .await
        .expect_err("stopped");
    drop(p);
    assert!(e.is_stopped(), "{e}");
    let events = all_events(rx).await;
    s.assert_stopped_at_held(&events);
    s.kept_then_completed().await;
}

/// An earlier run got every byte acknowledged and stopped before the completing `PUT`: the
/// later run sends nothing, but still reads the whole blob from the source to hash it before
/// it completes the upload.
#[tokio::test]
async fn every_byte_sent_by_an_earlier_run_is_still_read_before_the_put() {
    let Some(s) = setup(26).await else { return };
    let chunks = SIZE.div_ceil(CHUNK) as usize;
    let watched = s.front_b.clone();
    let opts = PushOptions::new().stop_when(move || acked_patches(&watched) >= chunks);
    let e = client(&s.state)
        .push_remote_blob(&s.dst(), &s.remote(&s.a.host()), &opts, &Progress::none())
        .await
        .expect_err("stopped before the PUT");
    assert!(e.is_stopped(), "{e}");
    assert!(!s.b_has(&s.blob.digest), "not completed yet");
    s.front_b.clear_records();

    let watch_a = common::proxy(s.a.addr(), Vec::new());
    let (res, events) = s.later_run(&watch_a.host()).await;
    let out = res.expect("completed");
    assert_eq!(
        (out.kind, out.bytes_sent),
        (PushKind::Uploaded, 0),
        "{out:?}"
    );
    assert_eq!(common::forwarded(&s.front_b, "PATCH"), 0);
    let read: u64 = blob_gets(&watch_a)
        .iter()
        .map(|g| g.response_body_bytes)
        .sum();
    assert_eq!(read, SIZE, "the whole blob was read to verify it");
    assert!(
        events.contains(&Event::VerifyingPrefix {
            digest: s.blob.digest.clone(),
            from: 0,
            offset: SIZE
        }),
        "{events:?}"
    );
    assert!(s.b_has(&s.blob.digest));
}

/// The source cuts the prefix read short: it is opened again where the hash stands (not from
/// byte 0), and the upload goes on.
#[tokio::test]
async fn a_cut_prefix_read_goes_on_where_the_hash_stands() {
    let Some(s) = setup(27).await else { return };
    s.stopped_run().await;
    let front_a = s.source_with(1, FaultAction::TruncateResponseBody(40_000));
    let (res, events) = s.later_run(&front_a.host()).await;
    let out = res.expect("resumed despite the cut");
    assert_eq!(out.bytes_sent, SIZE - HELD, "{out:?}");
    assert_eq!(front_a.faults_injected(), 1);
    let reads: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::VerifyingPrefix { from, offset, .. } => Some((*from, *offset)),
            _ => None,
        })
        .collect();
    assert_eq!(reads.len(), 2, "{events:?}");
    assert_eq!(reads[0], (0, HELD));
    assert!(
        reads[1].0 > 0 && reads[1].0 <= 40_000 && reads[1].1 == HELD,
        "{reads:?}"
    );
    let read: u64 = blob_gets(&front_a)
        .iter()
        .map(|g| g.response_body_bytes)
        .sum();
    assert_eq!(read, SIZE, "no byte read twice");
    assert!(s.b_has(&s.blob.digest));
}

/// The source stalls while the prefix is read again, and a stop is asked meanwhile: the push
/// ends at once with the session kept, as for a stop between frames. It used to wait out the
/// client's timeout for the next frame (120 s by default, longer than the CLI's 30 s grace,
/// which then cut the push and said a chunk may have been lost).
#[tokio::test]
async fn a_stop_while_the_source_stalls_in_the_prefix_ends_the_push_at_once() {
    let Some(s) = setup(28).await else { return };
    s.stopped_run().await;
    let front_a = Arc::new(s.source_with(1, FaultAction::StallResponseBody(40_000)));
    // The moment the proxy has passed its 40 000 bytes and holds the rest back, as a watcher
    // sees it (the push itself may not ask while it waits).
    let stalled = Arc::new(std::sync::OnceLock::<std::time::Instant>::new());
    let watcher = {
        let (front_a, stalled) = (front_a.clone(), stalled.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if blob_gets(&front_a)
                    .iter()
                    .any(|g| g.response_body_bytes == 40_000)
                {
                    let _ = stalled.set(std::time::Instant::now());
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let asked = stalled.clone();
    let opts = PushOptions::new().stop_when(move || asked.get().is_some());
    let (p, rx) = Progress::channel(4096);
    let e = client(&s.state)
        .push_remote_blob(&s.dst(), &s.remote(&front_a.host()), &opts, &p)
        .await
        .expect_err("stopped");
    let ended = std::time::Instant::now();
    drop(p);
    watcher.join().expect("watcher");
    let since = ended.duration_since(*stalled.get().expect("the source stalled"));
    assert!(e.is_stopped(), "{e}");
    assert!(
        since < std::time::Duration::from_secs(2),
        "ended {since:?} after the stop (the client's timeout is 5 s): {e}"
    );
    let events = all_events(rx).await;
    s.assert_stopped_at_held(&events);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Retrying { .. })),
        "{events:?}"
    );
    s.kept_then_completed().await;
}
