//! The hostile-layer corpus (shared with the end-to-end CLI tests through
//! `hoist_testkit::hostile`): every item of the security list, each checked to change
//! nothing outside the root, and either to fail naming the hostile entry or to stay confined.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::path::Path;

use common::{Tar, snapshot};
use hoist_testkit::hostile::{Case, Expect, case, corpus, one, plant_outside};
use hoist_unpack::{Error, LayerInfo, Limits, Unpacker};

/// The shared corpus plus the cases that need this crate's own dependencies.
fn cases() -> Vec<Case> {
    let mut cases = corpus();
    cases.push(case(
        "trusted.overlay xattr never written",
        |_| {
            one(|t| {
                t.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
                    .dir("d/");
            })
        },
        Expect::Ok(|root, _| {
            let mut buf = [0u8; 16];
            assert!(
                rustix::fs::lgetxattr(root.join("d"), "trusted.overlay.opaque", &mut buf[..])
                    .is_err()
            );
        }),
    ));
    cases
}

fn run_case(case: &Case, rootless: bool) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outside = tmp.path().join("outside");
    plant_outside(&outside).map_err(|e| e.to_string())?;
    let root = tmp.path().join("root");
    let before = snapshot(tmp.path(), &["root"]);
    let unpacker = Unpacker::builder()
        .rootless(rootless)
        .limits(Limits {
            max_bytes: case.max_bytes,
            max_entries: case.max_entries,
        })
        .build()
        .map_err(|e| e.to_string())?;
    let layers = (case.layers)(outside.to_str().expect("utf-8 tmp"));
    let mut result: Result<(), Error> = Ok(());
    for layer in &layers {
        if let Err(e) = unpacker.apply_layer(&root, &layer[..], &LayerInfo::default()) {
            result = Err(e);
            break;
        }
    }
    let after = snapshot(tmp.path(), &["root"]);
    if before != after {
        return Err(format!(
            "outside the root changed:\nbefore {before:?}\nafter  {after:?}"
        ));
    }
    match (&case.expect, result) {
        (Expect::Err(entry), Err(e)) => {
            let named = e
                .entry()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !(e.is_invalid_layer() && named.starts_with(entry)) {
                return Err(format!("wrong error (want entry {entry:?}): {e:?}"));
            }
            if !e.to_string().contains(&named) {
                return Err(format!("message does not name the entry: {e}"));
            }
        }
        (Expect::Limit(entry), Err(e)) => {
            if !(e.is_limit_exceeded() && e.entry() == Some(Path::new(entry))) {
                return Err(format!("wrong error (want limit at {entry:?}): {e:?}"));
            }
            if root.join(entry).exists() {
                return Err("the entry that hit the limit was left on disk".into());
            }
        }
        (Expect::Ok(check), Ok(())) => check(&root, &outside),
        (_, other) => return Err(format!("unexpected outcome: {other:?}")),
    }
    Ok(())
}

#[test]
fn hostile_corpus() {
    const CHILD: &str = "HOIST_UNPACK_HOSTILE_AS_NOBODY";
    let cases = cases();
    assert!(cases.len() >= 30, "corpus has {} cases", cases.len());
    let privileged = rustix::process::geteuid().is_root();
    if privileged && std::env::var_os(CHILD).is_none() {
        // The same corpus as an unprivileged user (rootless unpacking without root's override).
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "hostile_corpus", "--nocapture"])
            .env(CHILD, "1")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("re-run as nobody");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "as nobody: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut failures = Vec::new();
    for case in &cases {
        for rootless in [true, false] {
            if !rootless && !privileged {
                continue;
            }
            if let Err(why) = run_case(case, rootless) {
                failures.push(format!("{} (rootless={rootless}): {why}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Metadata the tar parser would hold in memory (GNU long names/links, PAX records) is refused
/// when oversized, before it is buffered; ordinary large files are not affected.
#[test]
fn oversized_tar_metadata_is_refused() {
    let huge = "a/".repeat(700 * 1024) + "f";
    let long_name = Tar::new().file(&huge, b"x").finish();
    let long_link = Tar::new().symlink("l", &huge).finish();
    let big_pax = Tar::new()
        .pax(&[("comment", vec![b'c'; 2 * 1024 * 1024].as_slice())])
        .file("f", b"x")
        .finish();
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    for (what, layer) in [
        ("long name", long_name),
        ("long link", long_link),
        ("pax", big_pax),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = unpacker
            .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
            .expect_err(what);
        assert!(err.is_invalid_layer(), "{what}: {err:?}");
        assert!(err.to_string().contains("exceeds"), "{what}: {err}");
    }
    // A PAX size override and a big plain file keep the guard in step with the parser.
    let tmp = tempfile::tempdir().expect("tempdir");
    let big = vec![9u8; 3 * 1024 * 1024 + 17];
    let mut tar = Tar::new();
    tar.pax(&[("size", big.len().to_string().as_bytes())]);
    tar.header(b"big", b'0', 0, 0o644, b"", (0, 0));
    let mut layer = tar.finish();
    // Splice the data in after the header (the header's own size field says 0).
    let at = layer.len() - 1024;
    let mut data = big.clone();
    data.resize(big.len().div_ceil(512) * 512, 0);
    layer.splice(at..at, data);
    let mut tail = Tar::new();
    tail.file(&"n".repeat(200), b"after");
    let tail = tail.finish();
    layer.truncate(layer.len() - 1024);
    layer.extend_from_slice(&tail);
    unpacker
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("legit layer");
    assert_eq!(std::fs::read(tmp.path().join("big")).expect("big"), big);
    assert_eq!(
        std::fs::read(tmp.path().join("n".repeat(200))).expect("long"),
        b"after"
    );
}
