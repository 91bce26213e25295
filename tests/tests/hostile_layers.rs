//! Hostile layers through the binary (issue 9): the hostile corpus hoist-unpack's library tests
//! use (`hoist_testkit::hostile`), tar bombs, and truncated or corrupt gzip and zstd streams, each
//! run through `hoist unpack` and `hoist copy … rootfs:`. Every case: nothing outside the target
//! changes; a refusal is exit 1 with one readable `error:` line (and its `caused by:` lines)
//! naming what was wrong, no panic, and no root filesystem left behind as if complete: a root
//! hoist created is removed, one that was empty is emptied again, one that held files keeps them.
#![allow(clippy::disallowed_methods)] // the test inspects trees from outside the root

use hoist_oci::Compression;
use hoist_testkit::hostile::{Expect, corpus, plant_outside};
use hoist_testkit::rawtar::{Tar, snapshot};
use hoist_testkit::synth::{RawLayer, write_raw_oci_layout};
use hoist_tests::{Hoist, Out};
use std::path::Path;

/// The two ways to reach the unpacker from the command line.
#[derive(Debug, Clone, Copy)]
enum Via {
    Unpack,
    CopyRootfs,
}

fn run(via: Via, cache: &Path, layout: &Path, root: &Path) -> Out {
    let source = format!("oci:{}:t", layout.display());
    let hoist = Hoist::new(cache).arg("-q");
    match via {
        Via::Unpack => hoist.arg("unpack").arg(source).arg(root),
        Via::CopyRootfs => hoist
            .arg("copy")
            .arg(source)
            .arg(format!("rootfs:{}", root.display())),
    }
    .run()
}

/// A refusal as users see it: exit 1, no panic or backtrace, an error naming `names`, and the
/// root hoist created is gone.
fn check_refused(out: &Out, names: &str, root: &Path) -> Result<(), String> {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if out.code != Some(1) {
        return Err(format!("exit {:?}, want 1:\n{}", out.code, out.stderr));
    }
    if out.stderr.contains("panicked") || out.stderr.contains("RUST_BACKTRACE") {
        return Err(format!("panic:\n{}", out.stderr));
    }
    // The CLI's error shape: one `error:` line, then a `caused by:` line per cause that adds
    // something; each line bounded, whatever the layer put in a name.
    let shaped = lines.first().is_some_and(|l| l.starts_with("error: "))
        && lines[1..].iter().all(|l| l.starts_with("  caused by: "))
        && lines.iter().all(|l| l.len() <= 700);
    if !shaped {
        return Err(format!("not an error chain:\n{}", out.stderr));
    }
    if !out.stderr.contains(names) {
        return Err(format!("error does not name {names:?}:\n{}", out.stderr));
    }
    if root.exists() {
        return Err(format!("{} left behind after a failure", root.display()));
    }
    Ok(())
}

/// Run `layers` through both commands; `outcome` judges each run given the root it targeted.
fn through_cli(
    name: &str,
    layers: impl Fn(&Path) -> Vec<RawLayer>,
    outcome: &dyn Fn(&Out, &Path, &Path) -> Result<(), String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for via in [Via::Unpack, Via::CopyRootfs] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("outside");
        plant_outside(&outside).expect("outside tree");
        let layout = tmp.path().join("layout");
        write_raw_oci_layout(&layout, "t", &layers(&outside)).expect("layout");
        let before = snapshot(tmp.path(), &["root", "cache"]);
        let root = tmp.path().join("root");
        let out = run(via, &tmp.path().join("cache"), &layout, &root);
        let after = snapshot(tmp.path(), &["root", "cache"]);
        if before != after {
            failures.push(format!(
                "{name} via {via:?}: outside the root changed:\nbefore {before:?}\nafter  {after:?}"
            ));
        }
        if let Err(why) = outcome(&out, &root, &outside) {
            failures.push(format!("{name} via {via:?}: {why}"));
        }
    }
    failures
}

fn assert_none(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn hostile_corpus_through_unpack_and_copy_to_rootfs() {
    let codecs = [Compression::Gzip, Compression::Zstd, Compression::None];
    let mut failures = Vec::new();
    let mut ran = 0;
    for (i, case) in corpus().into_iter().enumerate() {
        // The limit cases need limits the command line does not set.
        if matches!(case.expect, Expect::Limit(_)) {
            continue;
        }
        ran += 1;
        let codec = codecs[i % codecs.len()];
        let layers = |outside: &Path| {
            (case.layers)(outside.to_str().expect("utf-8 tmp"))
                .iter()
                .map(|tar| RawLayer::compress(tar, codec).expect("compress"))
                .collect()
        };
        let outcome = |out: &Out, root: &Path, outside: &Path| match case.expect {
            Expect::Err(entry) => check_refused(out, entry, root),
            Expect::Ok(check) if out.code == Some(0) => {
                check(root, outside);
                Ok(())
            }
            Expect::Ok(_) => Err(format!("want success:\n{}", out.stderr)),
            Expect::Limit(_) => Ok(()),
        };
        failures.extend(through_cli(case.name, layers, &outcome));
    }
    assert!(ran >= 30, "only {ran} corpus cases ran");
    assert_none(&failures);
}

/// Octal in a tar header's 12-byte size field: the largest size ustar can declare (8 GiB - 1).
const HUGE: u64 = 0o77_777_777_777;

#[test]
fn tar_bombs_and_damaged_streams_are_refused_cleanly() {
    let mut failures = Vec::new();
    let refused = |names: &'static str| {
        move |out: &Out, root: &Path, _: &Path| check_refused(out, names, root)
    };

    // A header declaring 8 GiB followed by a few bytes: the stream ends inside the entry.
    let huge = |_: &Path| {
        let mut t = Tar::new();
        t.file("ok", b"fine");
        t.header(b"bomb", b'0', HUGE, 0o644, b"", (0, 0));
        let mut tar = t.finish();
        tar.truncate(tar.len() - 1024);
        tar.extend_from_slice(b"only a few bytes");
        vec![RawLayer::compress(&tar, Compression::Gzip).expect("gzip")]
    };
    failures.extend(through_cli(
        "8 GiB declared, 16 bytes sent",
        huge,
        &refused("the layer ends 16 bytes into a 8589934591-byte file"),
    ));

    // A name of 700 KiB (a path 350 000 directories deep): refused, the reason readable after
    // the elided name.
    let deep = |_: &Path| {
        let name = "d/".repeat(350 * 1024) + "f";
        let tar = Tar::new().file(&name, b"x").finish();
        vec![RawLayer::compress(&tar, Compression::Zstd).expect("zstd")]
    };
    failures.extend(through_cli(
        "700 KiB deep path",
        deep,
        &refused("nested too deeply"),
    ));

    // Many empty entries, all applied (no limit is set on the command line): the layer is tiny
    // compressed and each entry is cheap, so it finishes and every file is there.
    let many = |_: &Path| {
        let mut t = Tar::new();
        for i in 0..20_000 {
            t.file(&format!("m/{:02}/{i}", i % 64), b"");
        }
        vec![RawLayer::compress(&t.finish(), Compression::Gzip).expect("gzip")]
    };
    let all_there = |out: &Out, root: &Path, _: &Path| {
        if out.code != Some(0) {
            return Err(format!("want success:\n{}", out.stderr));
        }
        let n: usize = (0..64)
            .map(|d| {
                std::fs::read_dir(root.join(format!("m/{d:02}")))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum();
        (n == 20_000)
            .then_some(())
            .ok_or(format!("{n} of 20000 entries"))
    };
    failures.extend(through_cli("20000 empty entries", many, &all_there));

    // Damaged compressed streams, stored under the digest of their damaged bytes so only the
    // decoder can notice. A later layer must never be applied over a failed one.
    let payload = {
        let mut t = Tar::new();
        for i in 0..8 {
            let data: Vec<u8> = (0..40_000u32).map(|b| (b * 7 + i) as u8).collect();
            t.file(&format!("p/{i}"), &data);
        }
        t.finish()
    };
    for codec in [Compression::Gzip, Compression::Zstd] {
        for damage in ["truncated", "corrupt"] {
            let layers = |_: &Path| {
                let mut bad = RawLayer::compress(&payload, codec).expect("compress");
                let mid = bad.blob.len() / 2;
                if damage == "truncated" {
                    bad.blob.truncate(mid);
                } else {
                    for b in &mut bad.blob[mid..mid + 64] {
                        *b ^= 0x5a;
                    }
                }
                let after = Tar::new().file("after", b"never").finish();
                vec![
                    bad,
                    RawLayer::compress(&after, Compression::None).expect("tar"),
                ]
            };
            let name = format!("{damage} {codec:?} stream");
            // The message names the layer (its digest) whatever the decoder's own words are.
            failures.extend(through_cli(&name, layers, &refused("layer sha256:")));
        }
    }
    assert_none(&failures);
}

#[test]
fn a_failed_unpack_into_an_existing_directory_leaves_what_was_there() {
    // A truncated gzip layer: the first files are written before the stream runs out.
    let mut t = Tar::new();
    for i in 0..8 {
        let data: Vec<u8> = (0..40_000u32).map(|b| (b * 13 + i) as u8).collect();
        t.file(&format!("p/{i}"), &data);
    }
    let mut bad = RawLayer::compress(&t.finish(), Compression::Gzip).expect("gzip");
    bad.blob.truncate(bad.blob.len() / 2);
    let mut failures = Vec::new();
    for via in [Via::Unpack, Via::CopyRootfs] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = tmp.path().join("layout");
        write_raw_oci_layout(&layout, "t", std::slice::from_ref(&bad)).expect("layout");

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let out = run(via, &tmp.path().join("cache"), &layout, &empty);
        let left: Vec<_> = std::fs::read_dir(&empty)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if out.code != Some(1) || !out.stderr.contains("empty again") || !left.is_empty() {
            failures.push(format!(
                "empty dir via {via:?}: exit {:?}, left {left:?}, exists {}:\n{}",
                out.code,
                empty.is_dir(),
                out.stderr
            ));
        }

        let used = tmp.path().join("used");
        std::fs::create_dir(&used).expect("mkdir");
        std::fs::write(used.join("mine"), b"keep").expect("write");
        let out = run(via, &tmp.path().join("cache"), &layout, &used);
        let kept = std::fs::read(used.join("mine")).unwrap_or_default();
        if out.code != Some(1) || !out.stderr.contains("held files before") || kept != b"keep" {
            failures.push(format!(
                "used dir via {via:?}: exit {:?}, kept {kept:?}:\n{}",
                out.code, out.stderr
            ));
        }
    }
    assert_none(&failures);
}
