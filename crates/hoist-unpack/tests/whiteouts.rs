//! Whiteouts and opaque markers: they remove only what lower layers put there, in either entry
//! order, through symlinks as the layer's own entries go, and stop when asked.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Tar, apply, exists, read, shape, tmp, unpacker};
use hoist_unpack::{LayerInfo, Unpacker};

#[test]
fn whiteout_removes_lower_entries_only() {
    let t = tmp();
    let l1 = Tar::new()
        .file("a/x", b"x")
        .file("a/y", b"y")
        .dir("d/")
        .file("d/z", b"z")
        .finish();
    let l2 = Tar::new().whiteout("a/.wh.x").whiteout(".wh.d").finish();
    let stats = apply(t.path(), &[l1, l2]);
    assert_eq!(stats[1].whiteouts, 2);
    assert!(!exists(t.path().join("a/x")));
    assert_eq!(read(t.path().join("a/y")), b"y");
    assert!(
        !exists(t.path().join("d")),
        "whiteout of a dir removes its tree"
    );
    assert!(
        !exists(t.path().join("a/.wh.x")),
        "whiteout files are never materialised"
    );
}

#[test]
fn whiteout_never_removes_own_layer_entry_in_either_order() {
    for whiteout_first in [true, false] {
        let t = tmp();
        let l1 = Tar::new().file("a/x", b"old").file("a/gone", b"g").finish();
        let mut l2 = Tar::new();
        if whiteout_first {
            l2.whiteout("a/.wh.x")
                .file("a/x", b"new")
                .hardlink("a/link", "a/x");
        } else {
            l2.file("a/x", b"new")
                .hardlink("a/link", "a/x")
                .whiteout("a/.wh.x");
        }
        l2.whiteout("a/.wh.gone");
        apply(t.path(), &[l1, l2.finish()]);
        assert_eq!(
            read(t.path().join("a/x")),
            b"new",
            "whiteout_first={whiteout_first}"
        );
        assert_eq!(read(t.path().join("a/link")), b"new");
        let md = std::fs::metadata(t.path().join("a/x")).expect("md");
        assert_eq!(md.nlink(), 2, "hardlink shares the inode");
        assert!(!exists(t.path().join("a/gone")));
    }
}

#[test]
fn a_whiteout_after_the_layer_wrote_into_that_directory_still_hides_the_lower_content() {
    let mut trees = Vec::new();
    for order in [
        "whiteout first",
        "after the dir",
        "after a file, no dir entry",
    ] {
        let t = tmp();
        let l1 = Tar::new()
            .file("app/config", b"old")
            .file("app/secret.key", b"k")
            .file("app/plugins/old.so", b"so")
            .finish();
        let mut l2 = Tar::new();
        match order {
            "whiteout first" => {
                l2.whiteout(".wh.app")
                    .dir("app/")
                    .file("app/config", b"new");
            }
            "after the dir" => {
                l2.dir("app/")
                    .whiteout(".wh.app")
                    .file("app/config", b"new");
            }
            _ => {
                l2.file("app/config", b"new").whiteout(".wh.app");
            }
        }
        apply(t.path(), &[l1, l2.finish()]);
        assert_eq!(read(t.path().join("app/config")), b"new", "{order}");
        assert!(!exists(t.path().join("app/secret.key")), "{order}");
        assert!(!exists(t.path().join("app/plugins")), "{order}");
        trees.push(shape(t.path()));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

#[test]
fn opaque_dir_same_result_in_both_orders() {
    let mut trees = Vec::new();
    for opaque_first in [true, false] {
        let t = tmp();
        let l1 = Tar::new()
            .dir("d/")
            .file("d/old", b"o")
            .file("d/sub/old2", b"o2")
            .file("d/keep", b"lower")
            .file("other", b"untouched")
            .finish();
        let mut l2 = Tar::new();
        if opaque_first {
            l2.whiteout("d/.wh..wh..opq")
                .file("d/keep", b"upper")
                .file("d/sub/new", b"n");
        } else {
            l2.file("d/keep", b"upper")
                .file("d/sub/new", b"n")
                .whiteout("d/.wh..wh..opq");
        }
        let stats = apply(t.path(), &[l1, l2.finish()]);
        assert_eq!(stats[1].opaques, 1);
        assert!(
            !exists(t.path().join("d/old")),
            "opaque_first={opaque_first}"
        );
        assert!(
            !exists(t.path().join("d/sub/old2")),
            "lower content of a rewritten subdir is hidden too"
        );
        assert_eq!(read(t.path().join("d/keep")), b"upper");
        assert_eq!(read(t.path().join("d/sub/new")), b"n");
        assert_eq!(read(t.path().join("other")), b"untouched");
        trees.push(shape(t.path()));
    }
    assert_eq!(trees[0], trees[1]);
}

#[test]
fn opaque_marker_creates_missing_dir_and_keeps_only_this_layer() {
    let t = tmp();
    let l1 = Tar::new().file("x/a", b"a").finish();
    let l2 = Tar::new()
        .whiteout("y/.wh..wh..opq")
        .whiteout("x/.wh..wh..opq")
        .finish();
    apply(t.path(), &[l1, l2]);
    assert!(t.path().join("y").is_dir());
    assert!(t.path().join("x").is_dir());
    assert_eq!(std::fs::read_dir(t.path().join("x")).expect("x").count(), 0);
}

#[test]
fn hardlink_to_a_file_whited_out_earlier_in_the_layer() {
    // The whiteout removes the lower `a` before the link is met: the link has no target, which
    // is reported naming the link, and nothing of the link is left behind.
    let t = tmp();
    let l1 = Tar::new().file("a", b"lower").file("b", b"old b").finish();
    let l2 = Tar::new().whiteout(".wh.a").hardlink("b", "a").finish();
    let u = unpacker(true);
    u.apply_layer(t.path(), &l1[..], &LayerInfo::default())
        .expect("l1");
    let err = u
        .apply_layer(t.path(), &l2[..], &LayerInfo::default())
        .expect_err("dangling hardlink");
    assert!(err.is_invalid_layer(), "{err:?}");
    assert_eq!(err.entry(), Some(Path::new("b")));
    assert_eq!(
        read(t.path().join("b")),
        b"old b",
        "the old entry is not half-replaced"
    );
    // Re-adding the target in the same layer, before the link, makes it valid again.
    let t = tmp();
    let l2 = Tar::new()
        .whiteout(".wh.a")
        .file("a", b"upper")
        .hardlink("b", "a")
        .finish();
    apply(t.path(), &[l1, l2]);
    assert_eq!(read(t.path().join("b")), b"upper");
}

/// An opaque marker under a lower symlink (`lib -> usr/lib`, then `lib/.wh..wh..opq`) applies
/// where the link leads, as the layer's entries under `lib/` land: the same tree whether the
/// marker comes before or after them, and the link stays (containerd and umoci agree).
#[test]
fn an_opaque_marker_under_a_lower_symlink_clears_where_it_leads_in_either_order() {
    let lower = || {
        Tar::new()
            .dir("usr/")
            .dir("usr/lib/")
            .file("usr/lib/old", b"o")
            .symlink("lib", "usr/lib")
            .finish()
    };
    let before = Tar::new()
        .whiteout("lib/.wh..wh..opq")
        .file("lib/new", b"n")
        .finish();
    let after = Tar::new()
        .file("lib/new", b"n")
        .whiteout("lib/.wh..wh..opq")
        .finish();
    let mut trees = Vec::new();
    for upper in [before, after] {
        let t = tmp();
        apply(t.path(), &[lower(), upper]);
        let link = std::fs::symlink_metadata(t.path().join("lib")).expect("lib");
        assert!(link.is_symlink(), "the link stays");
        assert_eq!(read(t.path().join("usr/lib/new")), b"n");
        assert!(!exists(t.path().join("usr/lib/old")), "the lower file goes");
        trees.push(shape(t.path()));
    }
    assert_eq!(trees[0], trees[1], "the entry order does not matter");
}

/// What the layer wrote is remembered by where it physically landed: an entry written through a
/// symlink survives a later whiteout or opaque marker that names its real path, while lower
/// entries beside it go.
#[test]
fn own_entries_written_through_a_symlink_survive_whiteouts_of_their_real_path() {
    let t = tmp();
    let l1 = Tar::new()
        .dir("d/")
        .file("d/lower", b"l")
        .file("d/gone", b"g")
        .symlink("s", "d")
        .finish();
    let l2 = Tar::new()
        .file("s/own", b"o")
        .whiteout("d/.wh.own")
        .whiteout("d/.wh.gone")
        .finish();
    let l3 = Tar::new()
        .file("s/x", b"x")
        .whiteout("d/.wh..wh..opq")
        .finish();
    apply(t.path(), &[l1, l2]);
    assert_eq!(read(t.path().join("d/own")), b"o", "own entry kept");
    assert!(!exists(t.path().join("d/gone")), "lower entry whited out");
    apply(t.path(), &[l3]);
    assert_eq!(
        read(t.path().join("d/x")),
        b"x",
        "own entry kept by the opaque"
    );
    assert!(!exists(t.path().join("d/lower")), "lower entries cleared");
    assert!(!exists(t.path().join("d/own")), "a lower layer's entry now");
    assert_eq!(
        std::fs::read_link(t.path().join("s")).expect("s"),
        Path::new("d")
    );
}

#[test]
fn a_stop_request_ends_a_long_whiteout_promptly() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t = tmp();
    let mut lower = Tar::new();
    lower.dir("big/");
    for i in 0..200 {
        lower.file(&format!("big/f{i}"), b"x");
    }
    apply(t.path(), &[lower.finish()]);
    // The caller's flag goes up while the whiteout is removing the tree: after 50 questions.
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let u = Unpacker::builder()
        .rootless(true)
        .stop_when(move || counter.fetch_add(1, Ordering::SeqCst) >= 50)
        .build()
        .expect("build");
    let upper = Tar::new().whiteout(".wh.big").finish();
    let err = u
        .apply_layer(t.path(), &upper[..], &LayerInfo::default())
        .expect_err("stopped");
    assert!(err.is_stopped(), "{err:?}");
    assert!(
        err.to_string()
            .contains("before the layer was wholly applied"),
        "{err}"
    );
    let left = std::fs::read_dir(t.path().join("big")).map_or(0, Iterator::count);
    assert!(
        left > 0 && left < 200,
        "stopped part-way: {left} files left"
    );
    assert!(asked.load(Ordering::SeqCst) < 60, "no work after the stop");
}

#[test]
fn an_opaque_directory_the_layer_does_not_list_is_made_like_an_implicit_parent() {
    let t = tmp();
    let layer = Tar::new()
        .whiteout("opt/app/.wh..wh..opq")
        .file("opt/app/run", b"#!/bin/sh")
        .finish();
    apply(t.path(), &[layer]);
    let mode = |p: &str| {
        std::fs::metadata(t.path().join(p))
            .expect("metadata")
            .mode()
            & 0o7777
    };
    // It was made 0700 while its parent `opt`, just as implicit, was 0755.
    assert_eq!(mode("opt/app"), mode("opt"));
    assert_eq!(read(t.path().join("opt/app/run")), b"#!/bin/sh");
}
