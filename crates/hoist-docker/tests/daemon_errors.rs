//! Against a real private dockerd (20.10): when an export or a load fails, the error says who
//! is at fault and carries the daemon's own reason when it gave one.
//!
//! What dockerd 20.10 does, as these tests pin it:
//! - An export whose image cannot be read (a layer's file gone from its storage) fails before
//!   the first byte: HTTP 500 with `{"message": ...}`.
//! - Once it streams, the daemon sends a tar of its own staged copy of the image. When that
//!   copy fails part-way it ends the response cleanly in the middle of the archive and writes
//!   the reason only to its log ("Can't add file ... missed writing N bytes").
//! - A load answers 200 and then a JSON line `{"errorDetail":...,"error":...}` for every
//!   failure, the archive's fault (a missing file, a layer that does not match its diff_id) or
//!   its own (no space left in its data root).

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hoist_docker::{ConnectOptions, Daemon, ExportOptions};
use hoist_oci::layout::Layout;
use hoist_testkit::{AfterGate, GatedRelay};
use support::{Dockerd, data_root, import_files, layer_dir, noise, run, start_dockerd};

async fn connect(dockerd: &Dockerd) -> Daemon {
    Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect to the private dockerd")
}

/// Every entry of a tar, in order: (path, content).
fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        out.push((path, data));
    }
    out
}

/// A tar of `entries`.
fn archive(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        builder
            .append_data(&mut header, path, data.as_slice())
            .expect("append");
    }
    builder.into_inner().expect("finish tar")
}

fn daemon_tmp(dockerd: &Dockerd) -> PathBuf {
    data_root(dockerd).join("tmp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_carry_what_the_daemon_said_or_that_it_said_nothing() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("scratch dir");
    let daemon = connect(&dockerd).await;

    // A layer's file removed from the daemon's storage: it refuses before the first byte,
    // with a 500 naming the file, and that is what the error says.
    import_files(
        &dockerd,
        scratch.path(),
        "hoist-gone:1",
        &[("gone.bin", &noise(200_000, 5)), ("kept.txt", b"kept\n")],
    );
    std::fs::remove_file(layer_dir(&dockerd, "hoist-gone:1").join("gone.bin"))
        .expect("remove a layer file");
    let layout = Layout::create(scratch.path().join("gone")).expect("layout");
    let err = daemon
        .export(
            &["hoist-gone:1".to_string()],
            &layout,
            &ExportOptions::new(),
            |_| {},
        )
        .await
        .expect_err("an image with a missing file");
    assert!(err.is_daemon_failed(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("gone.bin") && text.contains("no such file or directory"),
        "{text}"
    );

    // Part-way: the daemon has staged the image in its tmp dir and started sending; the
    // staged layer shrinks under it (as when that copy fails). It ends the response cleanly
    // in the middle of the layer and gives its reason only to its log. The error says the
    // daemon ended the export early, without a reason, not just "truncated archive".
    import_files(
        &dockerd,
        scratch.path(),
        "hoist-cut:1",
        &[("big.bin", &noise(4_000_000, 6))],
    );
    let relay = Arc::new(GatedRelay::start(
        dockerd.socket_path(),
        "/images/get",
        256 * 1024,
        AfterGate::Pass,
    ));
    let through = Daemon::connect(ConnectOptions::new().host(relay.docker_host()))
        .await
        .expect("connect through the relay");
    let layout = Layout::create(scratch.path().join("cut")).expect("layout");
    let export = tokio::spawn(async move {
        through
            .export(
                &["hoist-cut:1".to_string()],
                &layout,
                &ExportOptions::new(),
                |_| {},
            )
            .await
            .map(|_| ())
    });
    let held = tokio::task::spawn_blocking({
        let relay = relay.clone();
        move || relay.wait_held(Duration::from_secs(60))
    })
    .await
    .expect("wait");
    assert!(held, "the export never started streaming");
    let staged: Vec<PathBuf> = std::fs::read_dir(daemon_tmp(&dockerd))
        .expect("daemon tmp")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("docker-export-"))
        })
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let mut shrunk = 0;
    for dir in std::fs::read_dir(&staged[0]).expect("staged export") {
        let layer = dir.expect("entry").path().join("layer.tar");
        if layer.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&layer)
                .and_then(|f| f.set_len(0))
                .expect("shrink the staged layer");
            shrunk += 1;
        }
    }
    assert_eq!(shrunk, 1);
    relay.open();
    let err = export
        .await
        .expect("task")
        .expect_err("an export the daemon ended early");
    assert!(err.is_daemon_failed(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("ended the export early"), "{text}");
    assert!(text.contains("gave no reason"), "{text}");
    // What the archive lacked is still there for whoever reads the daemon's log.
    assert!(text.contains("layer.tar"), "{text}");
    assert!(
        dockerd.log_tail().contains("missed writing"),
        "dockerd logged its reason: {}",
        dockerd.log_tail()
    );
}

/// The archive of `tag` (exported by docker itself), after which the image is removed so a
/// load has to store its layer again.
fn saved_and_removed(dockerd: &Dockerd, scratch: &Path, tag: &str) -> Vec<u8> {
    let path = scratch.join("saved.tar");
    run(dockerd, &["save", "-o", path.to_str().expect("utf8"), tag]);
    run(dockerd, &["rmi", tag]);
    std::fs::read(&path).expect("read saved archive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_errors_say_who_is_at_fault_with_the_daemons_reason() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("scratch dir");
    let daemon = connect(&dockerd).await;
    import_files(
        &dockerd,
        scratch.path(),
        "hoist-load:1",
        &[("data.bin", &noise(3_000_000, 7))],
    );
    let saved = saved_and_removed(&dockerd, scratch.path(), "hoist-load:1");
    let files = entries(&saved);
    let layer_path = files
        .iter()
        .find(|(p, _)| p.ends_with("/layer.tar"))
        .map(|(p, _)| p.clone())
        .expect("a layer in the archive");
    let load = |bytes: Vec<u8>| {
        let daemon = daemon.clone();
        async move {
            daemon
                .load_archive(std::io::Cursor::new(bytes), |_| {})
                .await
        }
    };

    // The manifest names a layer file the archive does not hold: the archive is at fault,
    // and the daemon's words (the file it could not open) are in the error.
    let missing: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| {
            if p == "manifest.json" {
                let text = String::from_utf8_lossy(d).replace(&layer_path, "nothere/layer.tar");
                (p.clone(), text.into_bytes())
            } else {
                (p.clone(), d.clone())
            }
        })
        .collect();
    let err = load(archive(&missing))
        .await
        .expect_err("missing layer file");
    assert!(err.is_invalid_input(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("rejected the archive"), "{text}");
    assert!(
        text.contains("nothere/layer.tar") && text.contains("no such file"),
        "{text}"
    );
    assert!(!text.contains("refused the request"), "{text}");

    // A layer whose content does not match the config's diff_id: the archive again.
    let corrupt: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| {
            let mut d = d.clone();
            if *p == layer_path {
                let middle = d.len() / 2;
                d[middle] ^= 0xff;
            }
            (p.clone(), d)
        })
        .collect();
    let err = load(archive(&corrupt)).await.expect_err("corrupt layer");
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(err.to_string().contains("invalid diffID"), "{err}");

    // The daemon's own failure: its tmp dir (where it unpacks a load) is full. It answers
    // 200 and then the error line, and that is the daemon's fault, not the archive's.
    let tmp = daemon_tmp(&dockerd);
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&tmp)
        .status()
        .expect("run mount");
    assert!(mounted.success(), "mount a tiny tmpfs on {}", tmp.display());
    let full = load(saved.clone()).await;
    let unmounted = Command::new("umount").arg(&tmp).status().expect("umount");
    assert!(unmounted.success());
    let err = full.expect_err("no space in the daemon's tmp dir");
    assert!(err.is_daemon_failed(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no space left on device"), "{text}");
    assert!(!text.contains("refused"), "{text}");

    // A big body of garbage: the daemon stops reading at the first header and answers with
    // its reason while hoist is still sending; the reason must not be lost to the reset.
    let err = load(noise(32 << 20, 8)).await.expect_err("garbage");
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(err.to_string().contains("invalid tar header"), "{err}");

    // And the untouched archive still loads.
    let loaded = load(saved).await.expect("the intact archive loads");
    assert_eq!(loaded.tags, vec!["hoist-load:1".to_string()]);
}
