//! Rootless unpacking as a user without root's permission override: directories a lower layer
//! left unwritable, unreadable or unsearchable are opened up while a layer goes in and get
//! their modes back when it is done.
//!
//! As root, each test re-runs itself as `nobody` in a directory `nobody` owns, since root's
//! override would hide every one of these cases.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::Tar;
use hoist_testkit::as_nobody::unprivileged;
use hoist_unpack::{LayerInfo, Unpacker};

fn apply(root: &Path, layers: &[Vec<u8>]) {
    let u = Unpacker::builder().rootless(true).build().expect("build");
    for l in layers {
        u.apply_layer(root, &l[..], &LayerInfo::default())
            .expect("rootless unpack as an unprivileged user");
    }
}

fn mode(root: &Path, p: &str) -> u32 {
    std::fs::symlink_metadata(root.join(p)).expect(p).mode() & 0o7777
}

fn chmod(root: &Path, p: &str, mode: u32) {
    std::fs::set_permissions(root.join(p), PermissionsExt::from_mode(mode)).expect("chmod");
}

fn read(root: &Path, p: &str) -> Vec<u8> {
    std::fs::read(root.join(p)).expect(p)
}

fn exists(root: &Path, p: &str) -> bool {
    std::fs::symlink_metadata(root.join(p)).is_ok()
}

/// Read-only lower directories take new entries and whiteouts; unsearchable ones can be
/// removed; a child declared under a parent without search permission still gets its mode.
fn read_only_lower_directories(dir: &Path) {
    let root = dir.join("root");
    let l1 = Tar::new()
        .dir_mode("ro/", 0o555)
        .file("ro/old", b"old")
        .dir_mode("ro/sub/", 0o500)
        .file("ro/sub/x", b"x")
        .dir_mode("locked/", 0o555)
        .dir_mode("locked/deeper/", 0o000)
        .dir_mode("shut/", 0o000)
        .dir_mode("shut/inner/", 0o750)
        .finish();
    let l2 = Tar::new()
        .file("ro/new", b"new")
        .whiteout("ro/sub/.wh.x")
        .whiteout(".wh.locked")
        .finish();
    apply(&root, &[l1, l2]);
    assert_eq!(read(&root, "ro/new"), b"new");
    assert_eq!(read(&root, "ro/old"), b"old");
    assert_eq!(mode(&root, "ro"), 0o555, "mode restored after the layer");
    assert_eq!(mode(&root, "ro/sub"), 0o500);
    assert!(!exists(&root, "ro/sub/x"));
    assert!(!exists(&root, "locked"));
    assert_eq!(mode(&root, "shut"), 0o000);
    chmod(&root, "shut", 0o700);
    assert_eq!(
        mode(&root, "shut/inner"),
        0o750,
        "a child under a parent without search permission"
    );
    // Leave the tree removable by the parent test.
    for p in ["ro", "ro/sub", "shut"] {
        chmod(&root, p, 0o755);
    }
}

#[test]
fn rootless_as_an_unprivileged_user() {
    unprivileged(
        "rootless_as_an_unprivileged_user",
        read_only_lower_directories,
    );
}

/// A later layer writes, links and whites out through lower directories their owner may not
/// read or search (modes 0000, 0311 and 0100), as umoci does; each keeps its mode.
fn unsearchable_lower_directories(dir: &Path) {
    let root = dir.join("root");
    let l1 = Tar::new()
        .dir_mode("sealed/", 0o000)
        .file("sealed/keep", b"keep")
        .file("sealed/gone", b"gone")
        .dir_mode("sealed/inner/", 0o755)
        .dir_mode("wx/", 0o311)
        .dir_mode("xonly/", 0o100)
        .dir_mode("xonly/sub/", 0o755)
        .file("xonly/sub/f", b"f")
        .dir_mode("xonly/opaque/", 0o000)
        .file("xonly/opaque/lower", b"l")
        // A child listed before its parent, which then loses search permission.
        .dir_mode("late/q/", 0o750)
        .dir_mode("late/", 0o000)
        .finish();
    let l2 = Tar::new()
        .file("sealed/inner/new", b"new")
        .whiteout("sealed/.wh.gone")
        .hardlink("link", "sealed/keep")
        .file("wx/new", b"wx")
        .file("xonly/sub/new", b"sub")
        .whiteout("xonly/sub/.wh.f")
        .file("xonly/opaque/own", b"own")
        .whiteout("xonly/opaque/.wh..wh..opq")
        .finish();
    apply(&root, &[l1, l2]);
    for (path, want) in [
        ("sealed", 0o000),
        ("wx", 0o311),
        ("xonly", 0o100),
        ("xonly/opaque", 0o000),
        ("late", 0o000),
    ] {
        assert_eq!(mode(&root, path), want, "{path} keeps its mode");
    }
    for p in ["sealed", "wx", "xonly", "xonly/opaque", "late"] {
        chmod(&root, p, 0o755);
    }
    assert_eq!(read(&root, "sealed/inner/new"), b"new");
    assert_eq!(read(&root, "sealed/keep"), b"keep");
    assert!(!exists(&root, "sealed/gone"), "whiteout inside a 0000 dir");
    assert_eq!(read(&root, "link"), b"keep");
    assert_eq!(
        std::fs::metadata(root.join("link")).expect("link").nlink(),
        2,
        "a hardlink to a file inside a 0000 dir"
    );
    assert_eq!(read(&root, "wx/new"), b"wx");
    assert_eq!(read(&root, "xonly/sub/new"), b"sub");
    assert!(!exists(&root, "xonly/sub/f"));
    assert_eq!(read(&root, "xonly/opaque/own"), b"own");
    assert!(!exists(&root, "xonly/opaque/lower"), "opaque inside 0000");
    assert_eq!(
        mode(&root, "late/q"),
        0o750,
        "child listed before its parent"
    );
}

#[test]
fn later_layers_go_through_unsearchable_lower_directories() {
    unprivileged(
        "later_layers_go_through_unsearchable_lower_directories",
        unsearchable_lower_directories,
    );
}

/// A later layer re-lists a lower directory its owner may not read or search (as docker's
/// layers re-list the parent of every changed file) and writes into it: the directory is opened
/// up as one on the way would be, then takes the mode the later layer gives it.
fn redeclared_unreadable_directories(dir: &Path) {
    for lower in [0o000, 0o311, 0o100] {
        let root = dir.join(format!("root-{lower:o}"));
        let l1 = Tar::new().dir_mode("d/", lower).finish();
        let l2 = Tar::new().dir_mode("d/", 0o750).file("d/f", b"x").finish();
        apply(&root, &[l1, l2]);
        assert_eq!(mode(&root, "d"), 0o750, "lower mode {lower:o}");
        assert_eq!(read(&root, "d/f"), b"x");
    }
}

#[test]
fn a_layer_relists_a_lower_directory_its_owner_cannot_read() {
    unprivileged(
        "a_layer_relists_a_lower_directory_its_owner_cannot_read",
        redeclared_unreadable_directories,
    );
}

/// Root unpacking rootless leaves every file root's: a setuid or setgid bit is kept only where
/// the image names root as the owner, so no other user's program becomes a root one.
#[test]
fn rootless_as_root_keeps_setuid_only_for_roots_own_files() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: rootless_as_root_keeps_setuid_only_for_roots_own_files needs root");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests as root"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let mut t = Tar::new();
    (t.uid, t.gid) = (1000, 1000);
    t.file_mode("bin/user-tool", b"u", 0o4755);
    (t.uid, t.gid) = (0, 0);
    t.file_mode("bin/root-tool", b"r", 0o6755);
    (t.uid, t.gid) = (0, 50);
    t.file_mode("bin/group-tool", b"g", 0o2755);
    apply(&root, &[t.finish()]);
    assert_eq!(
        mode(&root, "bin/user-tool"),
        0o755,
        "setuid of uid 1000 dropped"
    );
    assert_eq!(
        mode(&root, "bin/root-tool"),
        0o6755,
        "root's own setuid kept"
    );
    assert_eq!(
        mode(&root, "bin/group-tool"),
        0o755,
        "setgid of gid 50 dropped"
    );
}
