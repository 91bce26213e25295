//! Flattening an image's layers into one tar (`Unpacker::flatten_layers`): the tar holds what
//! applying the layers in order leaves, and nothing that could escape a root.
//!
//! The strongest check: the flattened tar, extracted into an empty directory, equals the
//! layers applied one by one by the unpacker (paths, types, modes, contents, link targets), for
//! a fixed image rich in whiteouts, opaque directories and replacements, and for random stacks
//! of small layers. Every flattened tar is also checked for its shape: relative normalised
//! paths, each once, parents before children, hard links after their targets.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use common::{Tar, shape, tmp};
use hoist_unpack::{ErrorKind, FlattenLayer, LayerInfo, Limits, Unpacker};
use proptest::prelude::*;

/// One entry of a flattened tar, as the `tar` crate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Vec<u8>,
    data: Vec<u8>,
}

fn flatten_with(unpacker: &Unpacker, layers: &[Vec<u8>]) -> hoist_unpack::Result<Vec<u8>> {
    let layers: Vec<FlattenLayer<'_>> = layers
        .iter()
        .map(|l| FlattenLayer::bytes(l, LayerInfo::default()))
        .collect();
    let mut out = Vec::new();
    unpacker.flatten_layers(&layers, &mut out)?;
    Ok(out)
}

fn flatten(layers: &[Vec<u8>]) -> hoist_unpack::Result<Vec<u8>> {
    flatten_with(&common::unpacker(true), layers)
}

/// The entries of a flattened tar in order, after checking its shape: every path relative,
/// normalised, without `..` or a whiteout name, written once, below a directory written before
/// it; every hard link to a non-directory written before it.
fn entries(tar_bytes: &[u8]) -> Vec<(String, Out)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut seen: BTreeMap<String, char> = BTreeMap::new();
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 path");
        assert!(!path.is_empty(), "an empty path");
        assert!(
            !path.starts_with('/') && !path.ends_with('/'),
            "not normalised: {path}"
        );
        for part in path.split('/') {
            assert!(
                !part.is_empty() && part != "." && part != "..",
                "not normalised: {path}"
            );
            assert!(
                !part.starts_with(".wh."),
                "a whiteout in the output: {path}"
            );
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            assert_eq!(
                seen.get(parent),
                Some(&'d'),
                "{path} comes before its parent directory"
            );
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            other => panic!("unexpected entry type {other:?} at {path}"),
        };
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        if kind == 'h' {
            let target = String::from_utf8(link.clone()).expect("utf-8 link");
            let target_kind = seen.get(&target).copied();
            assert!(
                target_kind.is_some_and(|k| k != 'd' && k != 'h'),
                "hard link {path} -> {target} not to an earlier non-directory ({target_kind:?})"
            );
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        let header = entry.header();
        let record = Out {
            kind,
            mode: header.mode().expect("mode"),
            uid: header.uid().expect("uid"),
            gid: header.gid().expect("gid"),
            mtime: header.mtime().expect("mtime"),
            link,
            data,
        };
        assert!(
            seen.insert(path.clone(), kind).is_none(),
            "{path} written twice"
        );
        out.push((path, record));
    }
    out
}

fn by_path(tar_bytes: &[u8]) -> BTreeMap<String, Out> {
    entries(tar_bytes).into_iter().collect()
}

/// Apply the layers one by one into one directory and the flattened tar into another, and
/// check the trees are the same.
fn assert_equivalent(layers: &[Vec<u8>]) {
    let layered = tmp();
    let unpacker = common::unpacker(true);
    let applied: hoist_unpack::Result<Vec<_>> = layers
        .iter()
        .map(|l| unpacker.apply_layer(layered.path(), &l[..], &LayerInfo::default()))
        .collect();
    let flat = flatten(layers);
    match (applied, flat) {
        (Ok(_), Ok(flat)) => {
            entries(&flat);
            let extracted = tmp();
            unpacker
                .apply_layer(extracted.path(), &flat[..], &LayerInfo::default())
                .expect("the flattened tar applies");
            assert_eq!(shape(extracted.path()), shape(layered.path()));
        }
        (Err(a), Err(f)) => assert_eq!(a.kind(), f.kind(), "applier: {a}; flatten: {f}"),
        (Ok(_), Err(f)) => panic!("the layers apply but flattening fails: {f}"),
        (Err(a), Ok(_)) => panic!("flattening succeeds but applying fails: {a}"),
    }
}

/// A fixed image with every rule in it.
fn rich_layers() -> Vec<Vec<u8>> {
    let long_dir = format!("opt/{}/{}", "l".repeat(80), "m".repeat(60));
    let mut l1 = Tar::new();
    l1.dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/dir-to-file/x", b"x")
        .file("etc/file-to-dir", b"f")
        .dir("usr/")
        .dir("usr/bin/")
        .file_mode("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755)
        .file_mode("usr/bin/su", b"suid", 0o4755)
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .dir("usr/lib/")
        .file("usr/lib/libx.so.1", b"\x7fELF")
        .symlink("usr/lib/libx.so", "libx.so.1")
        .symlink("lib64", "/usr/lib")
        .dir_mode("tmp/", 0o1777)
        .dir_mode("root/", 0o700)
        .file_mode("root/.secret", b"k", 0o600)
        .dir("opt/app/data/")
        .file("opt/app/data/a", b"a")
        .dir("opt/app/data/sub/")
        .file("opt/app/data/sub/c", b"c")
        .file("opt/app/other/old", b"old")
        .file("opt/app/keep", b"keep")
        .file(&format!("{long_dir}/{}", "n".repeat(110)), b"long name")
        .symlink("opt/longlink", &format!("/{}//x/", "t".repeat(150)))
        .fifo("opt/fifo");
    let mut l2 = Tar::new();
    l2.whiteout("usr/lib/.wh.libx.so.1")
        .whiteout("opt/app/data/.wh..wh..opq")
        .file("opt/app/data/new", b"new")
        .file("opt/app/other/fresh", b"fresh")
        .whiteout("opt/app/other/.wh..wh..opq")
        .file("etc/dir-to-file", b"now a file")
        .dir("etc/file-to-dir/")
        .file("etc/file-to-dir/child", b"child")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/bash\n")
        .hardlink("etc/passwd-", "etc/passwd")
        .file_mode("usr/bin/tool", b"#!/bin/sh\necho tool v2\n", 0o750)
        .file("lib64/added-through-symlink", b"via lib64");
    let mut l3 = Tar::new();
    l3.whiteout("opt/app/.wh.keep")
        .dir_mode("etc/", 0o750)
        .symlink("usr/bin/tool2", "tool");
    vec![l1.finish(), l2.finish(), l3.finish()]
}

#[test]
fn a_rich_image_flattens_to_what_applying_its_layers_gives() {
    assert_equivalent(&rich_layers());
    let out = by_path(&flatten(&rich_layers()).expect("flatten"));
    // Written through the symlink lib64 -> /usr/lib: lands in usr/lib, never under lib64/.
    assert_eq!(out["usr/lib/added-through-symlink"].data, b"via lib64");
    assert!(!out.keys().any(|p| p.starts_with("lib64/")));
    // Symlink targets stay byte for byte.
    let long_target = format!("/{}//x/", "t".repeat(150));
    assert_eq!(out["opt/longlink"].link, long_target.as_bytes());
    assert_eq!(out["opt/fifo"].kind, 'p');
}

#[test]
fn the_flattened_tar_extracts_with_gnu_tar_too() {
    if hoist_testkit::find_tool("tar").is_none() {
        common::skip("GNU tar");
        return;
    }
    let layers = rich_layers();
    let layered = tmp();
    common::apply(layered.path(), &layers);
    let flat = tmp();
    let file = flat.path().join("flat.tar");
    std::fs::write(&file, flatten(&layers).expect("flatten")).expect("write");
    let extracted = tmp();
    let status = std::process::Command::new("tar")
        .arg("-xpf")
        .arg(&file)
        .arg("-C")
        .arg(extracted.path())
        .arg("--no-same-owner")
        .status()
        .expect("run tar");
    assert!(status.success());
    assert_eq!(shape(extracted.path()), shape(layered.path()));
}

#[test]
fn whiteouts_and_opaque_directories_hide_only_lower_layers() {
    let mut l1 = Tar::new();
    l1.file("a/gone", b"1")
        .file("a/kept", b"2")
        .file("o/lower", b"3")
        .dir("o/lowerdir/")
        .file("o/lowerdir/x", b"4");
    let mut l2 = Tar::new();
    // This layer's own o/upper survives its opaque marker, whatever the order.
    l2.file("o/upper", b"5")
        .whiteout("o/.wh..wh..opq")
        .whiteout("a/.wh.gone")
        .file("a/new", b"6")
        .whiteout("a/.wh.new");
    let out = by_path(&flatten(&[l1.finish(), l2.finish()]).expect("flatten"));
    let paths: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(paths, ["a", "a/kept", "a/new", "o", "o/upper"]);
}

#[test]
fn replacements_last_entry_wins_with_its_metadata() {
    let mut l1 = Tar::new();
    l1.dir("d/")
        .file("d/under", b"x")
        .file("f", b"file")
        .file_mode("same", b"one", 0o600);
    let mut l2 = Tar::new();
    l2.uid = 1000;
    l2.gid = 2000;
    l2.mtime = 1_700_000_000;
    l2.file("d", b"a file now")
        .dir_mode("f/", 0o711)
        .file_mode("same", b"two", 0o640);
    let mut l3 = Tar::new();
    l3.uid = 7;
    l3.gid = 8;
    l3.file_mode("same", b"three", 0o4751);
    let flat = flatten(&[l1.finish(), l2.finish(), l3.finish()]).expect("flatten");
    let out = by_path(&flat);
    assert_eq!(out["d"].kind, 'f');
    assert_eq!(out["d"].data, b"a file now");
    assert!(!out.contains_key("d/under"));
    assert_eq!((out["f"].kind, out["f"].mode), ('d', 0o711));
    let same = &out["same"];
    assert_eq!(same.data, b"three");
    assert_eq!((same.mode, same.uid, same.gid), (0o4751, 7, 8));
    assert_eq!(out["f"].mtime, 1_700_000_000);
    assert_eq!((out["f"].uid, out["f"].gid), (1000, 2000));
}

#[test]
fn a_hard_link_keeps_its_content_when_its_target_is_replaced_or_deleted() {
    let mut l1 = Tar::new();
    l1.file("bin/a", b"original a")
        .hardlink("bin/a-link", "bin/a")
        .file("bin/b", b"original b")
        .hardlink("bin/b-link", "bin/b")
        .hardlink("bin/b-link2", "bin/b");
    let mut l2 = Tar::new();
    l2.file("bin/a", b"new a").whiteout("bin/.wh.b");
    let flat = flatten(&[l1.finish(), l2.finish()]).expect("flatten");
    let out = entries(&flat);
    let get = |p: &str| &out.iter().find(|(q, _)| q == p).expect(p).1;
    assert_eq!(
        (get("bin/a").kind, &get("bin/a").data[..]),
        ('f', &b"new a"[..])
    );
    let a_link = get("bin/a-link");
    assert_eq!((a_link.kind, &a_link.data[..]), ('f', &b"original a"[..]));
    // b is gone: its first surviving name carries the data, the other links to it.
    let b_link = get("bin/b-link");
    assert_eq!((b_link.kind, &b_link.data[..]), ('f', &b"original b"[..]));
    let b_link2 = get("bin/b-link2");
    assert_eq!((b_link2.kind, &b_link2.link[..]), ('h', &b"bin/b-link"[..]));
    assert!(!out.iter().any(|(p, _)| p == "bin/b"));
    // A link whose target survives stays a link to it.
    let mut l1 = Tar::new();
    l1.file("x", b"data").hardlink("y", "x");
    let out = by_path(&flatten(&[l1.finish()]).expect("flatten"));
    assert_eq!(
        (out["x"].kind, out["y"].kind, &out["y"].link[..]),
        ('f', 'h', &b"x"[..])
    );
}

#[test]
fn owners_modes_names_and_xattrs_are_kept() {
    let mut l1 = Tar::new();
    l1.uid = 0;
    l1.gid = 42;
    l1.pax(&[
        ("uname", b"a-user-name-longer-than-thirty-two-bytes"),
        ("gname", b"staff"),
        ("mtime", b"1600000000.25"),
        ("SCHILY.xattr.user.note", b"hello"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ])
    .file_mode("f", b"x", 0o2755);
    l1.uid = 3_000_000;
    l1.pax(&[("uid", b"3000000")]).char_dev("dev/null", 1, 3);
    let flat = flatten(&[l1.finish()]).expect("flatten");
    let mut archive = tar::Archive::new(&flat[..]);
    let mut seen = 0;
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path_bytes().into_owned();
        if path == b"f" {
            seen += 1;
            let h = entry.header().clone();
            assert_eq!(
                (h.mode().expect("mode"), h.gid().expect("gid")),
                (0o2755, 42)
            );
            let pax: BTreeMap<String, Vec<u8>> = entry
                .pax_extensions()
                .expect("pax")
                .expect("records")
                .map(|r| {
                    let r = r.expect("record");
                    (r.key().expect("key").to_string(), r.value_bytes().to_vec())
                })
                .collect();
            assert_eq!(pax["uname"], b"a-user-name-longer-than-thirty-two-bytes");
            assert_eq!(pax["mtime"], b"1600000000.250000000");
            assert_eq!(pax["SCHILY.xattr.user.note"], b"hello");
            assert!(!pax.contains_key("SCHILY.xattr.trusted.overlay.opaque"));
            assert_eq!(h.groupname().expect("gname"), Some("staff"));
        } else if path == b"dev/null" {
            seen += 1;
            let h = entry.header();
            assert_eq!(h.entry_type(), tar::EntryType::Char);
            assert_eq!(h.device_major().expect("major"), Some(1));
            assert_eq!(h.device_minor().expect("minor"), Some(3));
            let uid = entry
                .pax_extensions()
                .expect("pax")
                .expect("records")
                .map(|r| r.expect("record"))
                .find(|r| r.key() == Ok("uid"))
                .map(|r| r.value_bytes().to_vec());
            assert_eq!(uid.as_deref(), Some(&b"3000000"[..]));
        }
    }
    assert_eq!(seen, 2);
    // With xattrs off, none is written.
    let unpacker = Unpacker::builder()
        .rootless(true)
        .xattrs(false)
        .build()
        .expect("build");
    let mut l1 = Tar::new();
    l1.pax(&[("SCHILY.xattr.user.note", b"hello")])
        .file("f", b"x");
    let flat = flatten_with(&unpacker, &[l1.finish()]).expect("flatten");
    assert!(!flat.windows(12).any(|w| w == b"SCHILY.xattr"));
}

#[test]
fn escaping_entries_are_refused_naming_them() {
    for (name, layer) in [
        ("../x", Tar::new().file("../x", b"x").finish()),
        ("/abs", Tar::new().file("/abs", b"x").finish()),
        ("a/../../x", Tar::new().file("a/../../x", b"x").finish()),
    ] {
        let err = flatten(&[layer]).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidLayer, "{err}");
        assert_eq!(err.entry(), Some(Path::new(name)));
    }
}

#[test]
fn symlinks_in_parent_positions_never_lead_out() {
    let mut l1 = Tar::new();
    l1.symlink("up", "../../..")
        .symlink("abs", "/etc")
        .symlink("loop", "loop")
        .file("up/escaped", b"1")
        .file("abs/passwd", b"2");
    let layers = vec![l1.finish()];
    assert_equivalent(&layers);
    let out = by_path(&flatten(&layers).expect("flatten"));
    // `..` is clamped at the root and an absolute target re-rooted there.
    assert_eq!(out["escaped"].data, b"1");
    assert_eq!(out["etc/passwd"].data, b"2");
    let mut l2 = Tar::new();
    l2.file("loop/x", b"x");
    let err = flatten(&[layers[0].clone(), l2.finish()]).expect_err("a loop");
    assert_eq!(err.kind(), ErrorKind::InvalidLayer, "{err}");
}

#[test]
fn the_hostile_corpus_gets_the_unpackers_verdict() {
    for case in hoist_testkit::hostile::corpus() {
        let outside = tmp();
        let layers = (case.layers)(&outside.path().display().to_string());
        let mut limits = Limits::new();
        if let Some(max) = case.max_bytes {
            limits = limits.max_bytes(max);
        }
        if let Some(max) = case.max_entries {
            limits = limits.max_entries(max);
        }
        let unpacker = Unpacker::builder()
            .rootless(true)
            .limits(limits)
            .build()
            .expect("build");
        let result = flatten_with(&unpacker, &layers);
        match case.expect {
            hoist_testkit::hostile::Expect::Err(_) => {
                let err = result.expect_err(case.name);
                assert!(err.is_bad_image(), "{}: {err}", case.name);
            }
            hoist_testkit::hostile::Expect::Limit(_) => {
                let err = result.expect_err(case.name);
                assert!(err.is_limit_exceeded(), "{}: {err}", case.name);
            }
            hoist_testkit::hostile::Expect::Ok(check) => {
                let flat = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                entries(&flat);
                let root = tmp();
                let unpacked = root.path().join("root");
                unpacker
                    .apply_layer(&unpacked, &flat[..], &LayerInfo::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                check(&unpacked, outside.path());
            }
        }
    }
}

#[test]
fn a_damaged_layer_fails_and_a_digest_is_checked() {
    let mut l1 = Tar::new();
    l1.file("a", b"data");
    let layer = l1.finish();
    let wrong = LayerInfo {
        digest: None,
        diff_id: Some(hoist_oci::Digest::sha256_of(b"something else")),
    };
    let mut out = Vec::new();
    let err = common::unpacker(true)
        .flatten_layers(&[FlattenLayer::bytes(&layer, wrong)], &mut out)
        .expect_err("diff_id mismatch");
    assert!(err.is_digest_mismatch(), "{err}");
    // Cut inside the file's data: the same verdict as the unpacker's.
    let truncated = &layer[..600];
    let err = flatten(&[truncated.to_vec()]).expect_err("truncated");
    let root = tmp();
    let applied = common::unpacker(true)
        .apply_layer(root.path(), truncated, &LayerInfo::default())
        .expect_err("truncated");
    assert_eq!(err.kind(), applied.kind(), "{err}; {applied}");
}

#[test]
fn gzip_layers_and_big_files_stream_through() {
    use std::io::Write;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut l1 = Tar::new();
    l1.file("big", &big);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&l1.finish()).expect("gzip");
    let gz = enc.finish().expect("gzip");
    let out = by_path(&flatten(&[gz]).expect("flatten"));
    assert!(out["big"].data == big);
}

/// Random layers over a small namespace, as the model test makes them, with more kinds of
/// symlink (to directories, absolute, through `..`) and modes.
#[derive(Debug, Clone)]
enum Op {
    File(String, u8, u32),
    Dir(String, u32),
    Symlink(String, &'static str),
    Whiteout(String),
    Opaque(String),
    Hardlink(String, String),
}

fn any_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![Just("a"), Just("b")], 0..3),
        prop_oneof![Just("a"), Just("b"), Just("x"), Just("y")],
    )
        .prop_map(|(mut p, l)| {
            p.push(l);
            p.join("/")
        })
}

fn op() -> impl Strategy<Value = Op> {
    let modes = prop_oneof![Just(0o644), Just(0o755), Just(0o4750), Just(0o600)];
    let targets = prop_oneof![
        Just("a"),
        Just("/b"),
        Just("../a"),
        Just("x"),
        Just("/a/b/"),
        Just("../../.."),
        Just("gone")
    ];
    prop_oneof![
        4 => (any_path(), any::<u8>(), modes.clone()).prop_map(|(p, c, m)| Op::File(p, c, m)),
        2 => (any_path(), prop_oneof![Just(0o755), Just(0o700), Just(0o1777)])
            .prop_map(|(p, m)| Op::Dir(p, m)),
        2 => (any_path(), targets).prop_map(|(p, t)| Op::Symlink(p, t)),
        2 => any_path().prop_map(Op::Whiteout),
        1 => prop::collection::vec(prop_oneof![Just("a"), Just("b")], 0..3)
            .prop_map(|p| Op::Opaque(p.join("/"))),
        2 => (any_path(), any_path()).prop_map(|(p, t)| Op::Hardlink(p, t)),
    ]
}

fn tar_of(ops: &[Op]) -> Vec<u8> {
    let mut t = Tar::new();
    for op in ops {
        match op {
            Op::File(p, c, m) => t.file_mode(p, &[*c; 3], *m),
            Op::Dir(p, m) => t.dir_mode(&format!("{p}/"), *m),
            Op::Symlink(p, target) => t.symlink(p, target),
            Op::Whiteout(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
                let wh = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                t.whiteout(&wh)
            }
            Op::Opaque(d) if d.is_empty() => t.whiteout(".wh..wh..opq"),
            Op::Opaque(d) => t.whiteout(&format!("{d}/.wh..wh..opq")),
            Op::Hardlink(p, target) => t.hardlink(p, target),
        };
    }
    t.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_layers_flatten_to_what_applying_them_gives(
        layers in prop::collection::vec(prop::collection::vec(op(), 1..10), 1..5)
    ) {
        let tars: Vec<Vec<u8>> = layers.iter().map(|ops| tar_of(ops)).collect();
        assert_equivalent(&tars);
    }
}

/// Cases the random test found, kept so they run every time: a directory the layer listed
/// and then replaced (by a file, or a whiteout) leaves no mode behind for a directory made
/// again at its path.
#[test]
fn a_replaced_directorys_mode_does_not_outlive_it() {
    let b = || "b".to_string();
    for ops in [
        vec![
            Op::Dir(b(), 0o700),
            Op::File(b(), 0, 0o644),
            Op::Opaque(b()),
        ],
        vec![
            Op::Dir(b(), 0o700),
            Op::Dir("b/a".into(), 0o700),
            Op::Whiteout(b()),
            Op::File("b/a/f".into(), 1, 0o644),
        ],
    ] {
        assert_equivalent(&[tar_of(&ops)]);
    }
}

#[test]
fn every_kind_of_entry_is_counted() {
    let mut l1 = Tar::new();
    l1.file("f", b"abc")
        .hardlink("g", "f")
        .symlink("s", "f")
        .fifo("p")
        .char_dev("c", 1, 5);
    let unpacker = common::unpacker(true);
    let layer = l1.finish();
    let mut out = Vec::new();
    let stats = unpacker
        .flatten_layers(
            &[FlattenLayer::bytes(&layer, LayerInfo::default())],
            &mut out,
        )
        .expect("flatten");
    assert_eq!(
        (
            stats.files,
            stats.hardlinks,
            stats.symlinks,
            stats.specials,
            stats.bytes
        ),
        (1, 1, 1, 2, 3)
    );
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.tar_bytes, out.len() as u64);
    let kinds: BTreeSet<char> = entries(&out).into_iter().map(|(_, o)| o.kind).collect();
    assert_eq!(kinds, BTreeSet::from(['f', 'h', 'l', 'p', 'c']));
}

/// Flatten `before`, a directory carrying 128 MiB of data nothing writes, then `after` (whole
/// tars), with a `stop_when` that asks once 4 MiB are read in pass `pass` (1 or 2): the result
/// and the bytes read in that pass.
fn flatten_stopping_in(
    pass: u64,
    before: Vec<u8>,
    after: Vec<u8>,
) -> (hoist_unpack::Result<()>, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const SIZE: u64 = 128 << 20;
    let read = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    let (seen, passes) = (Arc::clone(&read), Arc::clone(&opened));
    let unpacker = Unpacker::builder()
        .rootless(true)
        .stop_when(move || {
            passes.load(Ordering::SeqCst) == pass && seen.load(Ordering::SeqCst) > 4 << 20
        })
        .build()
        .expect("build");
    let (count, opens) = (Arc::clone(&read), Arc::clone(&opened));
    let layer = FlattenLayer::new(
        move || {
            // Each pass opens the layer anew; its bytes are counted from 0.
            opens.fetch_add(1, Ordering::SeqCst);
            count.store(0, Ordering::SeqCst);
            Ok(common::skipped_data_layer(
                &before,
                SIZE,
                &after,
                Arc::clone(&count),
            ))
        },
        LayerInfo::default(),
    );
    let result = unpacker.flatten_layers(&[layer], std::io::sink()).map(drop);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        pass,
        "stopped in pass {pass}"
    );
    (result, read.load(Ordering::SeqCst))
}

/// As an unpack, flattening stops within a few MiB of a stop request while the `tar` crate
/// reads past an entry's data, in pass 1 (the model reads no data at all), and in pass 2 after
/// the last file it copies, where the rest of the layer is read to check its digests (it used
/// to read all 128 MiB in either, and pass 2 then succeeded).
#[test]
fn a_stop_request_ends_a_long_skip_of_entry_data_in_either_pass() {
    let file = Tar::new().file("f", b"data").finish();
    let after = Tar::new().file("after", b"x").finish();
    for (pass, before, after) in [
        (1, Tar::new().finish(), after),
        (2, file, Tar::new().finish()),
    ] {
        let (result, read) = flatten_stopping_in(pass, before, after);
        let err = result.expect_err("stopped");
        assert!(err.is_stopped(), "pass {pass}: {err:?}");
        assert!(
            read < 16 << 20,
            "pass {pass}: stopped after reading {read} bytes"
        );
        eprintln!("pass {pass}: stopped after reading {read} bytes");
    }
}
