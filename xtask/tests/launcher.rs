//! The launcher (`xtask __measure`) as a whole program: its report, and that a measured
//! command's peak RSS does not start from the memory of whoever started the launcher.
//!
//! (Cargo builds the xtask binary for this test; xtask's unit tests use that build as their
//! launcher too.)

use std::path::Path;
use std::process::Command;

/// Run `xtask __measure REPORT LIMIT_MS -- argv` and return its exit code and report text.
fn launch(dir: &Path, limit_ms: &str, argv: &[&str]) -> (Option<i32>, String) {
    let report = dir.join("report");
    let _ = std::fs::remove_file(&report);
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("__measure")
        .arg(&report)
        .arg(limit_ms)
        .args(argv)
        .status()
        .expect("run the launcher");
    (
        status.code(),
        std::fs::read_to_string(&report).unwrap_or_default(),
    )
}

fn field(report: &str, key: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {report:?}"))
}

#[test]
fn a_command_starts_from_the_launchers_memory_not_its_callers() {
    let dir = tempfile::tempdir().expect("tempdir");
    // This process's peak: 128 MiB more than it needs.
    let mut big = vec![0u8; 128 << 20];
    for page in big.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&big);
    drop(big);
    let (code, report) = launch(dir.path(), "60000", &["--", "/bin/true"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(field(&report, "status"), 0, "{report}");
    assert_eq!(field(&report, "timed_out"), 0, "{report}");
    let rss = field(&report, "max_rss_kib");
    assert!((1..4 * 1024).contains(&rss), "{report}");
}

#[test]
fn timeouts_exit_statuses_and_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, report) = launch(dir.path(), "200", &["--", "sleep", "20"]);
    assert_eq!(code, Some(0), "a timed-out run is reported");
    assert_eq!(field(&report, "timed_out"), 1, "{report}");
    assert!(field(&report, "wall_ns") < 10_000_000_000, "{report}");
    let (_, report) = launch(dir.path(), "60000", &["--", "sh", "-c", "exit 3"]);
    assert_eq!(field(&report, "status"), 3 << 8, "{report}");
    let (_, report) = launch(dir.path(), "60000", &["--", "/nonexistent"]);
    assert_eq!(field(&report, "status"), 127 << 8, "{report}");
    let (code, report) = launch(dir.path(), "60000", &["/bin/true"]);
    assert_eq!(code, Some(2), "no `--`: a usage error");
    assert!(report.is_empty());
}
