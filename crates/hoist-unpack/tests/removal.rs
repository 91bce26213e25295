//! Removing trees: whiteouts, opaque markers and [`hoist_unpack::remove_root`] on trees deeper
//! than the process may hold descriptors for, and `remove_root` and
//! [`hoist_unpack::empty_root`] on what a layer left locked.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::Tar;
use hoist_unpack::{LayerInfo, Unpacker, empty_root, remove_root};
use rustix::fs::{Mode, OFlags};

/// Levels in the deep trees; over [`FD_LIMIT`], so one descriptor per level cannot work.
const DEPTH: usize = 400;
/// The descriptor limit the deep-tree test runs under.
const FD_LIMIT: u64 = 128;

/// Make `top/d/d/.../d` (`depth` levels) with a file at the bottom, one directory open at a
/// time (the path is far longer than `PATH_MAX`).
fn deep_tree(top: &Path, depth: usize) {
    std::fs::create_dir_all(top).expect("mkdir");
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir: OwnedFd = rustix::fs::open(top, flags, Mode::empty()).expect("open");
    for _ in 0..depth {
        rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        dir = rustix::fs::openat(&dir, "d", flags, Mode::empty()).expect("openat");
    }
    let file = rustix::fs::openat(
        &dir,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("create");
    drop(file);
}

#[test]
fn trees_deeper_than_the_descriptor_limit_are_removed() {
    const CHILD: &str = "HOIST_UNPACK_DEEP_TREE_CHILD";
    let name = "trees_deeper_than_the_descriptor_limit_are_removed";
    if std::env::var_os(CHILD).is_none() {
        // The limit is lowered in a child of its own, not in this shared test process.
        hoist_testkit::rerun_test(name, [(CHILD, "1")]);
        return;
    }
    let limit = rustix::process::Rlimit {
        current: Some(FD_LIMIT),
        maximum: Some(FD_LIMIT),
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).expect("setrlimit");
    let t = tempfile::tempdir().expect("tempdir");

    // A whiteout of a lower tree (a hostile layer can build one this deep through symlinks).
    let root = t.path().join("root");
    deep_tree(&root.join("deep"), DEPTH);
    let layer = Tar::new().whiteout(".wh.deep").file("kept", b"k").finish();
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    unpacker
        .apply_layer(&root, &layer[..], &LayerInfo::default())
        .expect("whiteout of a deep tree");
    assert!(std::fs::symlink_metadata(root.join("deep")).is_err());
    assert_eq!(std::fs::read(root.join("kept")).expect("kept"), b"k");

    // An opaque marker over a tree the layer itself writes that deep: the lower files beside
    // its path go, its own stay.
    deep_tree(&root.join("op"), DEPTH);
    let own = format!("op/{}own", "d/".repeat(DEPTH));
    let layer = Tar::new()
        .file(&own, b"own")
        .whiteout("op/.wh..wh..opq")
        .finish();
    unpacker
        .apply_layer(&root, &layer[..], &LayerInfo::default())
        .expect("opaque marker over a deep tree");
    let bottom = root.join("op").join("d/".repeat(DEPTH));
    assert_eq!(std::fs::read(bottom.join("own")).expect("own"), b"own");
    assert!(
        std::fs::symlink_metadata(bottom.join("bottom")).is_err(),
        "the lower file at the bottom is cleared"
    );
    remove_root(&root).expect("clean");

    // The same tree as a whole root, removed after a failed unpack.
    deep_tree(&root, DEPTH);
    remove_root(&root).expect("remove a deep root");
    assert!(std::fs::symlink_metadata(&root).is_err());
}

/// What a layer leaves for an unprivileged user: directories without write or search
/// permission, and a symlink to a read-only directory outside, which must not be followed.
fn locked_layer(outside: &Path) -> Vec<u8> {
    let outside_arg = outside.to_str().expect("utf-8");
    Tar::new()
        .dir_mode("usr/", 0o555)
        .dir_mode("usr/share/", 0o555)
        .file("usr/share/f", b"x")
        .dir_mode("sealed/", 0o000)
        .file("sealed/g", b"y")
        .symlink("link", outside_arg)
        .symlink("usr/share/out", outside_arg)
        .finish()
}

/// A read-only directory outside the roots, with a file in it.
fn outside_dir(dir: &Path) -> std::path::PathBuf {
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("keep"), b"keep").expect("write");
    std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o555)).expect("chmod");
    outside
}

fn locked_root_body(dir: &Path) {
    let root = dir.join("root");
    let outside = outside_dir(dir);
    let layer = locked_layer(&outside);
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    unpacker
        .apply_layer(&root, &layer[..], &LayerInfo::default())
        .expect("unpack");
    assert_eq!(
        std::fs::symlink_metadata(root.join("sealed"))
            .expect("sealed")
            .mode()
            & 0o777,
        0o000
    );
    // What `std::fs::remove_dir_all` cannot do without root.
    assert!(std::fs::remove_dir_all(&root).is_err());
    remove_root(&root).expect("removed");
    assert!(std::fs::symlink_metadata(&root).is_err());
    let mode = std::fs::metadata(&outside).expect("outside").mode() & 0o777;
    assert_eq!(mode, 0o555, "the symlink was not followed");
    assert_eq!(std::fs::read(outside.join("keep")).expect("keep"), b"keep");
    std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o755)).expect("chmod");

    // Missing is fine; a path naming no entry is refused.
    remove_root(&root).expect("already gone");
    assert!(remove_root(&dir.join("root/..")).is_err());
}

#[test]
fn remove_root_deletes_what_a_layer_locked() {
    hoist_testkit::as_nobody::unprivileged(
        "remove_root_deletes_what_a_layer_locked",
        locked_root_body,
    );
}

/// `empty_root` on a root that existed, empty, before a layer locked parts of it: everything
/// inside goes, the root stays (reached through a symlink to it, which is followed only there),
/// and nothing outside is touched.
fn emptied_root_body(dir: &Path) {
    let root = dir.join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let alias = dir.join("alias");
    std::os::unix::fs::symlink(&root, &alias).expect("symlink");
    let outside = outside_dir(dir);
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    unpacker
        .apply_layer(&root, &locked_layer(&outside)[..], &LayerInfo::default())
        .expect("unpack");
    assert!(std::fs::read_dir(&root).expect("root").count() >= 3);

    empty_root(&alias).expect("emptied");
    assert!(
        std::fs::symlink_metadata(&alias)
            .expect("alias")
            .is_symlink()
    );
    let left: Vec<_> = std::fs::read_dir(&root).expect("root kept").collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(std::fs::read(outside.join("keep")).expect("keep"), b"keep");
    let mode = std::fs::metadata(&outside).expect("outside").mode() & 0o777;
    assert_eq!(mode, 0o555, "no symlink inside was followed");
    std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o755)).expect("chmod");

    // Missing is fine; a file is refused and kept.
    empty_root(&dir.join("missing")).expect("nothing to empty");
    let file = dir.join("file");
    std::fs::write(&file, b"mine").expect("write");
    assert!(empty_root(&file).is_err());
    assert_eq!(std::fs::read(&file).expect("file"), b"mine");
}

#[test]
fn empty_root_empties_what_a_layer_locked_and_keeps_the_root() {
    hoist_testkit::as_nobody::unprivileged(
        "empty_root_empties_what_a_layer_locked_and_keeps_the_root",
        emptied_root_body,
    );
}
