//! A writer process that dies mid-blob leaves nothing under `blobs/<alg>/`, and the next
//! `Layout::open` removes its temp file (while a live writer's temp file is kept).
//!
//! The test re-runs its own binary as the crashing child: with `HOIST_CRASH_LAYOUT` set, the
//! `child_writes_then_aborts` test writes part of a blob and aborts the process.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use hoist_oci::Layout;

const ENV: &str = "HOIST_CRASH_LAYOUT";

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn child_writes_then_aborts() {
    let Some(dir) = std::env::var_os(ENV) else {
        return; // Only meaningful as the child of `crash_mid_write_leaves_no_blob`.
    };
    let layout = Layout::open(&dir).expect("open");
    let mut w = layout.blob_writer().expect("writer");
    w.write_all(&vec![0x5a; 3 << 20]).expect("write");
    w.flush().expect("flush");
    // Die without unwinding: no destructor removes the temp file.
    std::process::abort();
}

#[test]
fn crash_mid_write_leaves_no_blob() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::create(tmp.path().join("l")).expect("create");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_writes_then_aborts",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, layout.root())
        .status()
        .expect("spawn child");
    assert!(!status.success(), "the child must have crashed");

    let blobs = layout.root().join("blobs");
    let temps: Vec<String> = files(&blobs)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert_eq!(
        temps.len(),
        1,
        "the crashed writer's temp file: {:?}",
        files(&blobs)
    );
    assert!(
        files(&blobs.join("sha256")).is_empty(),
        "no blob may appear"
    );

    // A temp file made a moment ago may be a writer between creating and locking it: it is
    // kept until it is a minute old. The crashed writer's is made older than that.
    let crashed = blobs.join(&temps[0]);
    let reopened = Layout::open(layout.root()).expect("reopen");
    assert!(crashed.exists(), "a fresh unlocked temp file is left alone");
    drop(reopened);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&crashed)
        .and_then(|f| f.set_modified(old))
        .expect("age the crashed writer's file");

    // A writer that is alive right now keeps its temp file through the cleanup.
    let mut live = layout.blob_writer().expect("live writer");
    live.write_all(b"still writing").expect("write");
    live.flush().expect("flush");
    let reopened = Layout::open(layout.root()).expect("reopen cleans up");
    let left: Vec<String> = files(&blobs)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert_eq!(left.len(), 1);
    assert!(live.temp_path().exists());
    let (digest, _) = live.commit(None, None).expect("commit");
    assert!(reopened.blob_path(&digest).is_file());
    assert_eq!(files(&blobs.join("sha256")), vec![digest.hex().to_owned()]);
    assert!(
        files(&blobs).iter().all(|n| !n.starts_with(".tmp-")),
        "{:?}",
        files(&blobs)
    );
}
