//! Against a real private dockerd behind a relay that stops forwarding mid-stream: a stalled
//! export fails as a timeout, and an abandoned one lets go of its connection.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hoist_docker::{ConnectOptions, Daemon, ExportOptions};
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
