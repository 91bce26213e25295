//! Against a real private dockerd: export into a layout compressing while spooling, with one
//! event stream per layer, compared with what `docker save` writes; failed exports leave no
//! temp file behind.

mod support;

use hoist_docker::{ConnectOptions, Daemon, ExportOptions, Progress};
use hoist_oci::archive::{SpoolEvent, spool};
use hoist_oci::codec::{self, Compression};
use hoist_oci::digest::Digester;
use hoist_oci::layout::Layout;
use hoist_oci::{Algorithm, Digest, MediaType};
use support::{build_layers, import_files, noise, run, start_dockerd, tcp_relay_cut};

/// Everything under `blobs/` that is not a finished blob (temp files, partial writes).
fn stray_files(layout: &Layout) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(layout.root().join("blobs")).expect("blobs dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "sha256" {
            out.push(name);
        }
    }
    out
}

fn uncompressed_digest(layout: &Layout, desc: &hoist_oci::Descriptor) -> Digest {
    let mut hasher = Digester::new(Algorithm::Sha256);
    let mut reader = codec::decoder(layout.open_blob(desc).expect("open")).expect("decoder");
    std::io::copy(&mut reader, &mut hasher).expect("decompress");
    hasher.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_export_matches_docker_save_and_reports_every_layer() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch_dir = tempfile::tempdir().expect("scratch dir");
    let scratch = scratch_dir.path();
    import_files(
        &dockerd,
        scratch,
        "hoist-pl-base:1",
        &[("etc/hello", b"hello\n"), ("usr/a.bin", &noise(300_000, 5))],
    );
    build_layers(
        &dockerd,
        scratch,
        "hoist-pl:1",
        "hoist-pl-base:1",
        &[
            ("big.bin", &noise(6_000_000, 6)),
            ("mid.bin", &noise(900_000, 7)),
            ("small.txt", b"small\n"),
        ],
    );
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let info = daemon.inspect("hoist-pl:1").await.expect("inspect");
    assert_eq!(info.diff_ids.len(), 4);

    // What docker save writes, spooled as it is: the reference diff_ids and config.
    let saved = scratch.join("saved.tar");
    run(
        &dockerd,
        &["save", "-o", &saved.to_string_lossy(), "hoist-pl:1"],
    );
    let reference = Layout::create(scratch.join("reference")).expect("layout");
    let from_save = spool(std::fs::File::open(&saved).expect("open"), &reference).expect("spool");
    let save_image = reference
        .image_at(&from_save[0].manifest, None)
        .expect("saved image");

    let layout = Layout::create(scratch.join("oci")).expect("layout");
    let options = ExportOptions::new()
        .compress_layers(Compression::Gzip, Some(1), 2)
        .tag_images(false);
    let mut seen = Vec::new();
    let spooled = daemon
        .export(&["hoist-pl:1".to_string()], &layout, &options, |p| {
            seen.push(p)
        })
        .await
        .expect("export");
    assert!(matches!(seen.first(), Some(Progress::Preparing { .. })));
    assert!(matches!(seen.last(), Some(Progress::Done { .. })));
    assert_eq!(spooled.len(), 1);
    assert!(layout.list().expect("list").is_empty(), "tagging is ours");

    // Same config bytes and diff_ids as docker save; layers stored gzip-compressed only.
    let image = layout.image_at(&spooled[0].manifest, None).expect("image");
    assert_eq!(image.config.digest(), save_image.config.digest());
    assert_eq!(image.config.digest(), &info.id);
    let save_layers: Vec<Digest> = save_image
        .manifest
        .value()
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(save_layers, info.diff_ids);
    for (layer, diff_id) in image.manifest.value().layers.iter().zip(&info.diff_ids) {
        assert_eq!(layer.media_type, MediaType::OCI_LAYER_GZIP);
        assert_eq!(&uncompressed_digest(&layout, layer), diff_id);
    }
    assert!(
        stray_files(&layout).is_empty(),
        "{:?}",
        stray_files(&layout)
    );
    for diff_id in &info.diff_ids {
        let plain = hoist_oci::Descriptor::new(MediaType::OCI_LAYER, diff_id.clone(), 0);
        assert!(
            !layout.blob_path(&plain.digest).exists(),
            "no uncompressed copy of {diff_id}"
        );
    }

    // One start and one stored event per layer, with progress in between, in stream order.
    let events: Vec<SpoolEvent> = seen
        .iter()
        .filter_map(|p| match p {
            Progress::Layer(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let mut stored = Vec::new();
    let mut started = 0;
    for e in &events {
        match e {
            SpoolEvent::LayerStarted {
                index, compressing, ..
            } => {
                assert_eq!(*index, started);
                assert!(compressing);
                started += 1;
            }
            SpoolEvent::LayerStored { diff_id, blob, .. } => {
                // Compressed on the way in, so each diff_id is known as it is stored.
                stored.push(
                    diff_id
                        .clone()
                        .expect("diff_id of a layer compressed by us"),
                );
                assert!(image.manifest.value().layers.contains(blob), "{blob:?}");
            }
            _ => {}
        }
    }
    assert_eq!(started, 4);
    let mut sorted_seen = stored.clone();
    sorted_seen.sort();
    let mut sorted_want = info.diff_ids.clone();
    sorted_want.sort();
    assert_eq!(sorted_seen, sorted_want);
    let big_progress = events
        .iter()
        .filter(|e| matches!(e, SpoolEvent::LayerProgress { bytes, .. } if *bytes > 4 << 20))
        .count();
    assert!(big_progress >= 1, "the 6 MB layer reports progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_exports_leave_no_temp_files() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch_dir = tempfile::tempdir().expect("scratch dir");
    import_files(
        &dockerd,
        scratch_dir.path(),
        "hoist-cut2:1",
        &[("data.bin", &noise(4_000_000, 22))],
    );
    let layout = Layout::create(scratch_dir.path().join("oci")).expect("layout");
    let options = ExportOptions::new()
        .compress_layers(Compression::Gzip, None, 2)
        .tag_images(false);

    // The stream cut in the middle of the (compressing) layer.
    let relay = tcp_relay_cut(dockerd.socket_path(), Some(2_000_000));
    let cut = Daemon::connect(ConnectOptions::new().host(format!("tcp://{relay}")))
        .await
        .expect("connect through relay");
    let err = cut
        .export(&["hoist-cut2:1".to_string()], &layout, &options, |_| {})
        .await
        .expect_err("cut export");
    assert!(err.is_daemon_failed(), "{err:?}");
    assert!(
        stray_files(&layout).is_empty(),
        "{:?}",
        stray_files(&layout)
    );
    assert!(layout.list().expect("list").is_empty());

    // A missing image: not found, nothing written.
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let err = daemon
        .export(&["hoist-missing:9".to_string()], &layout, &options, |_| {})
        .await
        .expect_err("missing image");
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        stray_files(&layout).is_empty(),
        "{:?}",
        stray_files(&layout)
    );
    assert!(layout.list().expect("list").is_empty());
}
