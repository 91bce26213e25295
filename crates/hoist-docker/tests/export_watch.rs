//! Against a real private dockerd behind a relay that stops forwarding mid-stream: a stalled
//! export fails as a timeout, an abandoned one lets go of its connection, and a stopped one
//! returns only once nothing of it writes into the layout.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hoist_docker::{ConnectOptions, Daemon, ExportOptions, ExportStop};
use hoist_oci::layout::Layout;
use support::{import_files, noise, start_dockerd, tcp_relay_stall};

/// The daemon reached through `relay`, with `stall` as its stall timeout.
async fn through(relay: SocketAddr, stall: Duration) -> Daemon {
    Daemon::connect(
        ConnectOptions::new()
            .host(format!("tcp://{relay}"))
            .stall_timeout(stall),
    )
    .await
    .expect("connect through relay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_export_times_out_and_an_abandoned_one_hangs_up() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("scratch dir");
    import_files(
        &dockerd,
        scratch.path(),
        "hoist-stall:1",
        &[("data.bin", &noise(3_000_000, 33))],
    );
    let names = ["hoist-stall:1".to_string()];

    // The daemon goes quiet after 1 MB: with a 2 s stall timeout the export fails as a
    // timeout, saying how far it got, and the layout holds no image.
    let (relay, _) = tcp_relay_stall(dockerd.socket_path(), 1_000_000);
    let daemon = through(relay, Duration::from_secs(2)).await;
    let layout = Layout::create(scratch.path().join("oci")).expect("layout");
    let started = Instant::now();
    let err = daemon
        .export(&names, &layout, &ExportOptions::new(), |_| {})
        .await
        .expect_err("stalled export");
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("stopped sending"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(layout.list().expect("list").is_empty());

    // With a long stall timeout, a caller that gives up (drops the export) must not leave the
    // reading thread holding the daemon's connection until that timeout.
    let (relay, client_closed) = tcp_relay_stall(dockerd.socket_path(), 1_000_000);
    let patient = through(relay, Duration::from_secs(600)).await;
    let abandoned = tokio::time::timeout(
        Duration::from_secs(3),
        patient.export(&names, &layout, &ExportOptions::new(), |_| {}),
    )
    .await;
    assert!(abandoned.is_err(), "the export should still be waiting");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client_closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        client_closed.load(Ordering::SeqCst),
        "the abandoned export kept its connection to the daemon open"
    );
    assert!(layout.list().expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_export_returns_once_it_has_let_go_of_the_layout() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("scratch dir");
    import_files(
        &dockerd,
        scratch.path(),
        "hoist-stop:1",
        &[("data.bin", &noise(3_000_000, 34))],
    );
    let names = ["hoist-stop:1".to_string()];
    let layout = Layout::create(scratch.path().join("oci")).expect("layout");
    let blobs = scratch.path().join("oci").join("blobs");
    let in_blobs = || -> Vec<String> {
        std::fs::read_dir(&blobs)
            .expect("blobs")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };

    // The daemon goes quiet after 1 MB, mid-layer: a blob temp file is open in the layout.
    // With a stall timeout of ten minutes only the stop can end the export.
    let (relay, _) = tcp_relay_stall(dockerd.socket_path(), 1_000_000);
    let daemon = through(relay, Duration::from_secs(600)).await;
    let stop = ExportStop::new();
    let options = ExportOptions::new().stop_with(&stop);
    let export = tokio::spawn({
        let layout = layout.clone();
        async move { daemon.export(&names, &layout, &options, |_| {}).await }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while in_blobs().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no blob was started: {:?}",
            in_blobs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!export.is_finished());
    assert!(!stop.wait(Duration::ZERO), "the export is still running");
    let stopped_at = Instant::now();
    stop.stop();
    let err = export.await.expect("task").expect_err("stopped");
    assert!(err.is_stopped(), "{err:?}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped_at.elapsed()
    );
    // When it returns nothing of it is left writing: no temp file, no image, no tag.
    assert!(stop.wait(Duration::ZERO));
    assert_eq!(in_blobs(), vec!["sha256".to_string()]);
    assert!(layout.list().expect("list").is_empty());
}
