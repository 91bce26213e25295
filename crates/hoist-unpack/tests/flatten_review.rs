//! Regressions from a review of flattening: names replaced over and over, device numbers too
//! large for seven octal digits, old-style directory entries (typeflag NUL, name ending in
//! `/`), and the cap on the metadata the merged tree holds. What the model holds after replacements is checked by the unit tests in
//! `flatten/tree.rs`; here, what the output tar says.
#![allow(clippy::disallowed_methods)] // the shared helpers and GNU tar read files outside any root

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::{Tar, tmp};
use hoist_unpack::{FlattenLayer, LayerInfo, Limits, Unpacker};

/// Flatten `layers` with a rootless unpacker.
fn flatten(layers: &[Vec<u8>]) -> hoist_unpack::Result<Vec<u8>> {
    flatten_with(&common::unpacker(true), layers)
}

/// Flatten `layers` with `unpacker`.
fn flatten_with(unpacker: &Unpacker, layers: &[Vec<u8>]) -> hoist_unpack::Result<Vec<u8>> {
    let layers: Vec<FlattenLayer<'_>> = layers
        .iter()
        .map(|l| FlattenLayer::bytes(l, LayerInfo::default()))
        .collect();
    let mut out = Vec::new();
    unpacker.flatten_layers(&layers, &mut out)?;
    Ok(out)
}

/// One output entry: type flag, mode, link target, data, device numbers.
#[derive(Debug, PartialEq, Eq)]
struct Out {
    kind: u8,
    mode: u32,
    link: Vec<u8>,
    data: Vec<u8>,
    device: Option<(u32, u32)>,
}

fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Out> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 path");
        let header = entry.header().clone();
        let kind = header.entry_type();
        let device = matches!(kind, tar::EntryType::Char | tar::EntryType::Block).then(|| {
            (
                header
                    .device_major()
                    .expect("major")
                    .expect("a major field"),
                header
                    .device_minor()
                    .expect("minor")
                    .expect("a minor field"),
            )
        });
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        let record = Out {
            kind: kind.as_byte(),
            mode: header.mode().expect("mode"),
            link,
            data,
            device,
        };
        assert!(out.insert(path.clone(), record).is_none(), "{path} twice");
    }
    out
}

/// Overwrite the device fields of the header at `at` with these raw 8-byte fields and fix
/// its checksum (the test writer writes at most seven octal digits).
fn patch_device(tar_bytes: &mut [u8], at: usize, major: &[u8; 8], minor: &[u8; 8]) {
    let header = &mut tar_bytes[at..at + 512];
    header[329..337].copy_from_slice(major);
    header[337..345].copy_from_slice(minor);
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn a_name_replaced_many_times_is_written_once_with_its_last_entry() {
    // Each replacement drops the old inode; hard links keep theirs, also one made in a later
    // layer to a file of an earlier one.
    let mut base = Tar::new();
    base.file("a", b"first a").file("keep", b"kept");
    for i in 0..50 {
        base.symlink("x", &format!("{i}-{}", "t".repeat(4000)));
    }
    let mut top = Tar::new();
    top.hardlink("b", "a").hardlink("keep2", "keep");
    for i in 0..50 {
        top.symlink("a", &format!("a{i}"));
    }
    top.whiteout(".wh.keep").symlink("x", "last");
    let out = entries(&flatten(&[base.finish(), top.finish()]).expect("flatten"));
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "keep2", "x"]);
    assert_eq!(
        (out["a"].kind, out["a"].link.as_slice()),
        (b'2', &b"a49"[..])
    );
    assert_eq!(
        (out["b"].kind, out["b"].data.as_slice()),
        (b'0', &b"first a"[..])
    );
    assert_eq!(
        (out["keep2"].kind, out["keep2"].data.as_slice()),
        (b'0', &b"kept"[..])
    );
    assert_eq!(
        (out["x"].kind, out["x"].link.as_slice()),
        (b'2', &b"last"[..])
    );
}

#[test]
fn device_numbers_over_seven_octal_digits_are_written_whole() {
    // The header fields hold eight octal digits without a terminator; seven fit with one.
    let mut layer = Tar::new();
    layer
        .header(b"dev/big", b'3', 0, 0o600, b"", (0, 0))
        .header(b"dev/small", b'4', 0, 0o600, b"", (8, 1));
    let mut layer = layer.finish();
    patch_device(&mut layer, 0, b"10000001", b"77777777");
    let flat = flatten(&[layer]).expect("flatten");
    let out = entries(&flat);
    assert_eq!(out["dev/big"].kind, b'3');
    assert_eq!(out["dev/big"].device, Some((0o10000001, 0o77777777)));
    assert_eq!(out["dev/small"].kind, b'4');
    assert_eq!(out["dev/small"].device, Some((8, 1)));

    // GNU tar reads the numbers the same way.
    if hoist_testkit::find_tool("tar").is_none() {
        common::skip("GNU tar");
        return;
    }
    let dir = tmp();
    let file = dir.path().join("flat.tar");
    std::fs::write(&file, &flat).expect("write");
    let listed = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&file)
        .output()
        .expect("run tar");
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("{},{}", 0o10000001, 0o77777777)),
        "{listed}"
    );
}

#[test]
fn an_old_style_entry_whose_name_ends_in_a_slash_is_a_directory() {
    // Typeflag NUL (pre-POSIX tar), as Go's archive/tar and so Docker and containerd read it:
    // a directory, also under a GNU long name, and the root named `./`.
    let long = format!("{}/", "l".repeat(120));
    let mut layer = Tar::new();
    layer
        .header(b"./", 0, 0, 0o755, b"", (0, 0))
        .header(b"d/", 0, 0, 0o750, b"", (0, 0))
        .file("d/f", b"in d")
        .header(long.as_bytes(), 0, 0, 0o700, b"", (0, 0))
        .file(&format!("{long}g"), b"in long")
        .header(b"plain", 0, 0, 0o644, b"", (0, 0));
    let out = entries(&flatten(&[layer.finish()]).expect("flatten"));
    assert_eq!((out["d"].kind, out["d"].mode), (b'5', 0o750));
    assert_eq!(out["d/f"].data, b"in d");
    let long = long.trim_end_matches('/');
    assert_eq!((out[long].kind, out[long].mode), (b'5', 0o700));
    assert_eq!(out[&format!("{long}/g")].data, b"in long");
    // Without the slash, typeflag NUL is still a regular file.
    assert_eq!(out["plain"].kind, b'0');
}

/// A rootless unpacker whose flattening holds at most `max` bytes of metadata (`None`: no cap).
fn capped(max: Option<u64>) -> Unpacker {
    let mut limits = Limits::new();
    limits.max_metadata_bytes = max;
    Unpacker::builder()
        .rootless(true)
        .limits(limits)
        .build()
        .expect("build")
}

/// A file `name` carrying a 64 KiB extended attribute.
fn with_xattr<'t>(tar: &'t mut Tar, name: &str) -> &'t mut Tar {
    tar.pax(&[("SCHILY.xattr.user.big", &[b'v'; 64 << 10][..])])
        .file(name, b"x")
}

#[test]
fn the_metadata_the_merged_tree_holds_is_capped() {
    // 64 files of 64 KiB attributes each: 4 MiB held, over a 1 MiB cap.
    let mut many = Tar::new();
    for i in 0..64 {
        with_xattr(&mut many, &format!("f{i:02}"));
    }
    let many = many.finish();
    let err = flatten_with(&capped(Some(1 << 20)), std::slice::from_ref(&many))
        .expect_err("over the cap");
    assert!(err.is_limit_exceeded(), "{err:?}");
    // Sixteen attributes of 64 KiB and their names are more than a MiB: refused at the 16th.
    assert_eq!(err.entry(), Some(std::path::Path::new("f15")), "{err}");
    assert!(err.to_string().contains("1048576 bytes"), "{err}");
    // Lifted, the same layer flattens whole.
    let out = entries(&flatten_with(&capped(None), &[many]).expect("no cap"));
    assert_eq!(out.len(), 64);
}

#[test]
fn metadata_replaced_or_removed_no_longer_counts_against_the_cap() {
    let unpacker = capped(Some(1 << 20));
    // One name written 64 times over: only its last entry is held.
    let mut over = Tar::new();
    for _ in 0..64 {
        with_xattr(&mut over, "f");
    }
    let out = entries(&flatten_with(&unpacker, &[over.finish()]).expect("one name"));
    assert_eq!(out.len(), 1);
    // Twelve files, whited out by the next layer (a hard link it makes to one keeps that one's
    // attribute held), which brings two of its own in a directory; the last layer whites out
    // the directory and brings twelve more. Never more than thirteen are held at once.
    let mut base = Tar::new();
    for i in 0..12 {
        with_xattr(&mut base, &format!("a{i}"));
    }
    let mut top = Tar::new();
    for i in 1..12 {
        top.whiteout(&format!(".wh.a{i}"));
    }
    top.hardlink("kept", "a0").whiteout(".wh.a0");
    for i in 0..2 {
        with_xattr(&mut top, &format!("d/b{i}"));
    }
    let mut last = Tar::new();
    last.whiteout(".wh.d");
    for i in 0..12 {
        with_xattr(&mut last, &format!("c{i}"));
    }
    let out = entries(
        &flatten_with(&unpacker, &[base.finish(), top.finish(), last.finish()])
            .expect("freed bytes come back"),
    );
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 13, "{names:?}");
    assert!(names.contains(&"kept"), "{names:?}");
}
