//! Layer semantics (whiteouts are in `whiteouts.rs`): replacement, hardlinks, long names,
//! modes, ownership, mtimes, special files, xattrs, digests and limits.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{Tar, apply, exists, read, tmp, unpacker};
use hoist_oci::{Digest, ImageConfig, RootFs, RuntimeConfig};
use hoist_unpack::{LayerInfo, Unpacker};

#[test]
fn entries_replace_entries_of_other_types() {
    let t = tmp();
    let l1 = Tar::new()
        .file("dir_to_file/inner/deep", b"d")
        .file("file_to_dir", b"f")
        .dir("dir_to_link/")
        .file("dir_to_link/x", b"x")
        .symlink("link_to_file", "/etc/passwd")
        .finish();
    let l2 = Tar::new()
        .file("dir_to_file", b"now a file")
        .dir("file_to_dir/")
        .file("file_to_dir/child", b"c")
        .symlink("dir_to_link", "target")
        .file("link_to_file", b"plain")
        .finish();
    apply(t.path(), &[l1, l2]);
    assert_eq!(read(t.path().join("dir_to_file")), b"now a file");
    assert_eq!(read(t.path().join("file_to_dir/child")), b"c");
    let link = std::fs::read_link(t.path().join("dir_to_link")).expect("link");
    assert_eq!(link, Path::new("target"));
    let md = std::fs::symlink_metadata(t.path().join("link_to_file")).expect("md");
    assert!(md.is_file());
    assert_eq!(read(t.path().join("link_to_file")), b"plain");
}

#[test]
fn hardlinks_to_lower_layers_and_long_names() {
    let t = tmp();
    let long_dir = format!("{}/{}", "d".repeat(90), "e".repeat(90));
    let long_file = format!("{long_dir}/{}", "f".repeat(120));
    let long_target = format!("/{}", "t".repeat(200));
    let l1 = Tar::new()
        .file("base", b"lower")
        .file(&long_file, b"long")
        .finish();
    let l2 = Tar::new()
        .hardlink("link_to_lower", "base")
        .hardlink("link_to_long", &long_file)
        .symlink("long_symlink", &long_target)
        .pax(&[("path", format!("{long_dir}/pax-named").as_bytes())])
        .file("ignored-short-name", b"pax")
        .finish();
    let stats = apply(t.path(), &[l1, l2]);
    assert_eq!(stats[1].hardlinks, 2);
    let base = std::fs::metadata(t.path().join("base")).expect("base");
    let link = std::fs::metadata(t.path().join("link_to_lower")).expect("link");
    assert_eq!(base.ino(), link.ino());
    assert_eq!(read(t.path().join("link_to_long")), b"long");
    assert_eq!(
        std::fs::read_link(t.path().join("long_symlink")).expect("link"),
        Path::new(&long_target)
    );
    assert_eq!(read(t.path().join(&long_dir).join("pax-named")), b"pax");
    assert!(!exists(t.path().join("ignored-short-name")));
}

#[test]
fn modes_including_setuid_setgid_sticky() {
    let t = tmp();
    let l = Tar::new()
        .file_mode("bin/su", b"elf", 0o4755)
        .file_mode("bin/wall", b"elf", 0o2755)
        .file_mode("secret", b"k", 0o600)
        .file_mode("ro", b"r", 0o444)
        .dir_mode("tmp/", 0o1777)
        .dir_mode("shared/", 0o2775)
        .dir_mode("locked/", 0o500)
        .file("locked/inside", b"written before the dir mode is applied")
        .finish();
    apply(t.path(), &[l]);
    let mode = |p: &str| std::fs::symlink_metadata(t.path().join(p)).expect(p).mode() & 0o7777;
    assert_eq!(mode("bin/su"), 0o4755);
    assert_eq!(mode("bin/wall"), 0o2755);
    assert_eq!(mode("secret"), 0o600);
    assert_eq!(mode("ro"), 0o444);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("shared"), 0o2775);
    assert_eq!(mode("locked"), 0o500);
    assert_eq!(
        read(t.path().join("locked/inside")),
        b"written before the dir mode is applied"
    );
}

#[test]
fn mtimes_including_directories_after_their_children() {
    let t = tmp();
    let mut tar = Tar::new();
    tar.mtime = 1_000_000;
    tar.dir("d/");
    tar.mtime = 2_000_000;
    tar.file("d/f", b"x").symlink("d/l", "f").dir("d/sub/");
    tar.mtime = 3_000_000;
    tar.file("d/sub/g", b"y");
    tar.pax(&[("mtime", b"4000000.25")]).file("precise", b"p");
    apply(t.path(), &[tar.finish()]);
    let md = |p: &str| std::fs::symlink_metadata(t.path().join(p)).expect(p);
    assert_eq!(
        md("d").mtime(),
        1_000_000,
        "dir mtime survives its children"
    );
    assert_eq!(md("d/f").mtime(), 2_000_000);
    assert_eq!(md("d/l").mtime(), 2_000_000, "symlink's own mtime");
    assert_eq!(md("d/sub").mtime(), 2_000_000);
    assert_eq!(md("precise").mtime(), 4_000_000);
    assert_eq!(md("precise").mtime_nsec(), 250_000_000);
}

/// A directory entry's mode and mtime, set when the layer ends, never follow a symlink the
/// same layer later put where the directory was: they would land on another directory.
#[test]
fn directory_metadata_does_not_follow_a_later_symlink() {
    let t = tmp();
    let mut l1 = Tar::new();
    l1.mtime = 1_000_000;
    l1.dir_mode("other/y/", 0o755);
    let mut l2 = Tar::new();
    l2.mtime = 2_000_000;
    l2.dir("x/").dir_mode("x/y/", 0o555).symlink("x", "other");
    apply(t.path(), &[l1.finish(), l2.finish()]);
    let md = std::fs::symlink_metadata(t.path().join("other/y")).expect("other/y");
    assert_eq!(
        md.mode() & 0o7777,
        0o755,
        "mode of x/y not applied through x"
    );
    assert_eq!(md.mtime(), 1_000_000);
    assert!(
        std::fs::symlink_metadata(t.path().join("x"))
            .expect("x")
            .is_symlink()
    );
}

#[test]
fn ownership_and_devices_as_root_or_rootless() {
    if !rustix::process::geteuid().is_root() {
        common::skip("ownership/device test needs root");
        return;
    }
    let layer = || {
        let mut t = Tar::new();
        t.uid = 1234;
        t.gid = 5678;
        t.file_mode("owned", b"x", 0o4755)
            .dir("owned-dir/")
            .symlink("owned-link", "owned")
            .char_dev("null", 1, 3)
            .fifo("pipe");
        t.finish()
    };
    let t = tmp();
    let stats = unpacker(false)
        .apply_layer(t.path(), &layer()[..], &LayerInfo::default())
        .expect("apply");
    for p in ["owned", "owned-dir", "owned-link", "null", "pipe"] {
        let md = std::fs::symlink_metadata(t.path().join(p)).expect(p);
        assert_eq!((md.uid(), md.gid()), (1234, 5678), "{p}");
    }
    assert_eq!(
        std::fs::metadata(t.path().join("owned"))
            .expect("md")
            .mode()
            & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    let null = std::fs::symlink_metadata(t.path().join("null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(
        std::fs::symlink_metadata(t.path().join("pipe"))
            .expect("pipe")
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        (stats.devices, stats.fifos, stats.devices_skipped),
        (1, 1, 0)
    );

    let t = tmp();
    let stats = unpacker(true)
        .apply_layer(t.path(), &layer()[..], &LayerInfo::default())
        .expect("apply");
    let me = rustix::process::geteuid().as_raw();
    assert_eq!(
        std::fs::metadata(t.path().join("owned")).expect("md").uid(),
        me
    );
    assert!(!exists(t.path().join("null")), "rootless skips devices");
    assert_eq!(stats.devices_skipped, 1);
    assert!(t.path().join("pipe").exists(), "fifos need no privilege");
}

#[test]
fn xattrs_applied_or_counted() {
    let t = tmp();
    let l = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.hoist", b"v1"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .file("f", b"x")
        .finish();
    let stats = apply(t.path(), &[l]);
    assert_eq!(stats[0].xattrs_set + stats[0].xattrs_skipped, 2);
    assert!(
        stats[0].xattrs_skipped >= 1,
        "trusted.overlay.* is never written"
    );
    if stats[0].xattrs_set == 1 {
        let mut buf = [0u8; 8];
        let n =
            rustix::fs::getxattr(t.path().join("f"), "user.hoist", &mut buf[..]).expect("xattr");
        assert_eq!(&buf[..n], b"v1");
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

#[test]
fn digests_are_verified_for_gzip_zstd_and_plain() {
    let mut tar = Tar::new().file("a", &vec![7u8; 300_000]).finish();
    // Padding after the end-of-archive marker is part of the diff_id.
    tar.extend_from_slice(&[0u8; 4096]);
    let diff_id = Digest::sha256_of(&tar);
    let blobs = [
        gzip(&tar),
        zstd::encode_all(&tar[..], 3).expect("zstd"),
        tar.clone(),
    ];
    for blob in &blobs {
        let t = tmp();
        let info = LayerInfo {
            digest: Some(Digest::sha256_of(blob)),
            diff_id: Some(diff_id.clone()),
        };
        let stats = unpacker(true)
            .apply_layer(t.path(), &blob[..], &info)
            .expect("verified");
        assert_eq!(stats.diff_id.as_ref(), Some(&diff_id));
        assert_eq!(stats.uncompressed_size, tar.len() as u64);
        assert_eq!(stats.compressed_size, blob.len() as u64);
        assert_eq!(stats.bytes_written, 300_000);

        let wrong = LayerInfo {
            digest: Some(Digest::sha256_of(b"other")),
            diff_id: None,
        };
        let err = unpacker(true)
            .apply_layer(t.path(), &blob[..], &wrong)
            .expect_err("bad digest");
        assert!(err.is_digest_mismatch(), "{err:?}");
        assert!(err.to_string().contains("not trusted"));

        let wrong = LayerInfo {
            digest: None,
            diff_id: Some(Digest::sha256_of(b"other")),
        };
        let err = unpacker(true)
            .apply_layer(t.path(), &blob[..], &wrong)
            .expect_err("bad diff_id");
        assert!(err.is_digest_mismatch(), "{err:?}");
    }
}

#[test]
fn truncated_stream_is_corrupt_and_leaves_no_partial_file() {
    let tar = Tar::new()
        .file("small", b"ok")
        .file("big", &vec![1u8; 200_000])
        .finish();
    let blob = gzip(&tar);
    let t = tmp();
    let err = unpacker(true)
        .apply_layer(t.path(), &blob[..blob.len() / 2], &LayerInfo::default())
        .expect_err("truncated");
    assert!(err.is_corrupt(), "{err:?}");
    assert!(!exists(t.path().join("big")), "partial file removed");
}

#[test]
fn unpack_layers_checks_diff_ids_and_runtime_config_is_written() {
    let l1 = Tar::new().file("a", b"1").finish();
    let l2 = Tar::new().whiteout(".wh.a").file("b", b"2").finish();
    let config = ImageConfig {
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![Digest::sha256_of(&l1), Digest::sha256_of(&l2)],
        },
        config: Some(RuntimeConfig {
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(vec!["-c".into(), "true".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            ..RuntimeConfig::default()
        }),
        ..ImageConfig::default()
    };
    let t = tmp();
    let root = t.path().join("rootfs");
    let stats = unpacker(true)
        .unpack_layers(
            &root,
            &config,
            [(&l1[..], None), (&l2[..], Some(Digest::sha256_of(&l2)))],
        )
        .expect("unpack");
    assert_eq!(stats.layers.len(), 2);
    assert!(!exists(root.join("a")));
    assert_eq!(read(root.join("b")), b"2");
    let err = unpacker(true)
        .unpack_layers(&root, &config, [(&l1[..], None)])
        .expect_err("missing layer");
    assert!(err.is_invalid_image(), "{err}");
    let err = unpacker(true)
        .unpack_layers(&root, &config, [(&l2[..], None), (&l1[..], None)])
        .expect_err("layers out of order");
    assert!(err.is_digest_mismatch());

    let path = t.path().join("config.json");
    hoist_unpack::write_runtime_config(&config, &path).expect("write");
    let mode = std::fs::metadata(&path).expect("stat").mode() & 0o777;
    assert_eq!(mode, hoist_testkit::mode_under_umask(0o666), "{mode:o}");
    let json: serde_json::Value = serde_json::from_slice(&read(&path)).expect("json");
    assert_eq!(json["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert_eq!(json["Cmd"], serde_json::json!(["-c", "true"]));
    assert_eq!(json["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(json["WorkingDir"], "/srv");
    assert_eq!(json["User"], "1000:1000");
    assert_eq!(json["ExposedPorts"], serde_json::json!(["80/tcp"]));
}

#[test]
fn replacing_a_parent_mid_layer_is_seen_by_later_entries() {
    let t = tmp();
    let l = Tar::new()
        .file("d/x", b"x")
        .dir("e/")
        .symlink("d", "e")
        .file("d/y", b"y")
        .file("f/a", b"a")
        .file("f", b"now a file")
        .dir("g/")
        .file("g/1", b"1")
        .whiteout(".wh.g")
        .file("g/2", b"2")
        .finish();
    apply(t.path(), &[l]);
    assert_eq!(
        read(t.path().join("e/y")),
        b"y",
        "written through the new symlink"
    );
    assert!(!exists(t.path().join("e/x")));
    assert_eq!(read(t.path().join("f")), b"now a file");
    assert_eq!(
        read(t.path().join("g/1")),
        b"1",
        "own-layer entries survive whiteouts"
    );
    assert_eq!(read(t.path().join("g/2")), b"2");
}

#[test]
fn gnu_sparse_files_from_gnu_tar() {
    let Some(tar_bin) = hoist_testkit::find_tool("tar") else {
        common::skip("GNU tar not installed");
        return;
    };
    let t = tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    // Many data islands: more sparse segments than fit in the main GNU header (4), so the
    // archive carries sparse extension blocks.
    let file = std::fs::File::create(src.join("sparse")).expect("create");
    for i in 0..12u64 {
        use std::os::unix::fs::FileExt;
        file.write_all_at(format!("island {i}").as_bytes(), i * 1024 * 1024)
            .expect("write");
    }
    file.set_len(13 * 1024 * 1024).expect("len");
    drop(file);
    std::fs::write(src.join("after"), b"after the sparse file").expect("write");
    let archive = t.path().join("layer.tar");
    let status = std::process::Command::new(tar_bin)
        .args(["--format=gnu", "--sparse", "-C"])
        .arg(&src)
        .arg("-cf")
        .arg(&archive)
        .args(["sparse", "after"])
        .status()
        .expect("run tar");
    assert!(status.success());
    let root = t.path().join("root");
    unpacker(true)
        .apply_layer_file(&root, &archive, &LayerInfo::default())
        .expect("apply");
    assert_eq!(read(root.join("sparse")), read(src.join("sparse")));
    assert_eq!(read(root.join("after")), b"after the sparse file");
}

#[test]
fn limits_count_over_the_whole_image() {
    let l1 = Tar::new().file("a", b"12345").file("b", b"12345").finish();
    let l2 = Tar::new().file("c", b"12345").file("d", b"12345").finish();
    let config = ImageConfig {
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![Digest::sha256_of(&l1), Digest::sha256_of(&l2)],
        },
        ..ImageConfig::default()
    };
    let limited = |limits| {
        Unpacker::builder()
            .rootless(true)
            .limits(limits)
            .build()
            .expect("build")
    };
    let t = tmp();
    let err = limited(hoist_unpack::Limits::new().max_entries(3))
        .unpack_layers(t.path(), &config, [(&l1[..], None), (&l2[..], None)])
        .expect_err("4 entries > 3");
    assert!(err.is_limit_exceeded());
    assert_eq!(err.entry(), Some(Path::new("d")));
    let t = tmp();
    let err = limited(hoist_unpack::Limits::new().max_bytes(12))
        .unpack_layers(t.path(), &config, [(&l1[..], None), (&l2[..], None)])
        .expect_err("20 bytes > 12");
    assert!(err.is_limit_exceeded());
    assert_eq!(err.entry(), Some(Path::new("c")));
    assert!(!exists(t.path().join("c")));
    let t = tmp();
    limited(hoist_unpack::Limits::new().max_bytes(20).max_entries(4))
        .unpack_layers(t.path(), &config, [(&l1[..], None), (&l2[..], None)])
        .expect("exactly at the limits");
    assert!(
        Unpacker::builder()
            .limits(hoist_unpack::Limits::new().max_bytes(0))
            .build()
            .is_err()
    );
}

/// What a layer costs beyond its files counts too: the directories made for a path (a symlink
/// can ask for thousands per entry), the data an entry carries but writes nowhere (a whiteout's,
/// a directory's), and what follows the tar's end. Each is decompressed or made all the same.
#[test]
fn limits_count_directories_made_and_data_no_file_keeps() {
    let limited = |limits| {
        Unpacker::builder()
            .rootless(true)
            .limits(limits)
            .build()
            .expect("build")
    };
    // Two entries make 101 directories.
    let deep = Tar::new()
        .symlink("s", &"a/".repeat(100))
        .file("s/f", b"f")
        .finish();
    let t = tmp();
    let err = limited(hoist_unpack::Limits::new().max_entries(50))
        .apply_layer(t.path(), &deep[..], &LayerInfo::default())
        .expect_err("2 entries and 100 directories > 50");
    assert!(err.is_limit_exceeded(), "{err}");
    assert_eq!(err.entry(), Some(Path::new("s/f")));
    let t = tmp();
    limited(hoist_unpack::Limits::new().max_entries(102))
        .apply_layer(t.path(), &deep[..], &LayerInfo::default())
        .expect("2 entries and 100 directories");
    assert_eq!(read(t.path().join("a/".repeat(100) + "f")), b"f");

    // A whiteout and a directory carrying 1 MiB each, under a 64 KiB limit.
    let junk = vec![7u8; 1 << 20];
    let mut whiteout = Tar::new();
    whiteout.file(".wh.gone", &junk);
    let mut dir = Tar::new();
    dir.header(b"d/", b'5', junk.len() as u64, 0o755, b"", (0, 0));
    let mut dir = dir.finish();
    // The directory's "data" goes between its header and the end of the archive.
    let end = dir.split_off(512);
    dir.extend_from_slice(&junk);
    dir.extend_from_slice(&end);
    for (layer, entry) in [(whiteout.finish(), ".wh.gone"), (dir, "d/")] {
        let t = tmp();
        let err = limited(hoist_unpack::Limits::new().max_bytes(64 << 10))
            .apply_layer(t.path(), &layer[..], &LayerInfo::default())
            .expect_err("1 MiB of data > 64 KiB");
        assert!(err.is_limit_exceeded(), "{entry}: {err}");
        assert_eq!(err.entry(), Some(Path::new(entry)));
    }

    // 4 MiB after the end of the archive: over a 2 MiB limit, under an 8 MiB one. (A limit
    // below 1 MiB still lets 1 MiB through: tar writers pad the end.)
    let mut trailing = Tar::new().file("f", b"f").finish();
    trailing.extend_from_slice(&vec![0u8; 4 << 20]);
    let t = tmp();
    let err = limited(hoist_unpack::Limits::new().max_bytes(2 << 20))
        .apply_layer(t.path(), &trailing[..], &LayerInfo::default())
        .expect_err("4 MiB after the end > 2 MiB");
    assert!(err.is_limit_exceeded(), "{err}");
    let t = tmp();
    limited(hoist_unpack::Limits::new().max_bytes(8 << 20))
        .apply_layer(t.path(), &trailing[..], &LayerInfo::default())
        .expect("under the limit");
}

/// A tar cut off inside a file's data fails naming the file, and leaves no shorter file
/// behind with the entry's mode (here setuid) as if it were whole.
#[test]
fn a_file_cut_short_by_the_end_of_the_layer_is_not_left_behind() {
    let mut t = Tar::new();
    t.file_mode("bin/tool", &vec![b'A'; 100_000], 0o4755);
    let whole = t.finish();
    let cut = &whole[..512 + 40_000];
    let root = tmp();
    let err = unpacker(true)
        .apply_layer(root.path(), cut, &LayerInfo::default())
        .expect_err("cut short");
    assert_eq!(err.entry(), Some(Path::new("bin/tool")), "{err}");
    assert!(
        err.to_string()
            .contains("40000 bytes into a 100000-byte file"),
        "{err}"
    );
    assert!(!exists(root.path().join("bin/tool")));
}

/// An old-style entry (type `\0`) named with a trailing slash is a directory, as docker and
/// containerd read it.
#[test]
fn an_old_style_entry_with_a_trailing_slash_is_a_directory() {
    let mut t = Tar::new();
    t.header(b"d/", 0, 0, 0o750, b"", (0, 0));
    t.file("d/f", b"x");
    t.header(b"plain", 0, 0, 0o640, b"", (0, 0));
    let root = tmp();
    apply(root.path(), &[t.finish()]);
    let d = std::fs::symlink_metadata(root.path().join("d")).expect("d");
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o750);
    assert_eq!(read(root.path().join("d/f")), b"x");
    assert!(
        std::fs::symlink_metadata(root.path().join("plain"))
            .expect("plain")
            .is_file()
    );
}

/// The `tar` crate reads past the data of an entry nothing writes (here a directory carrying
/// 128 MiB) without asking anyone: a stop requested then used to wait until the whole entry
/// was read. The layer stream asks `stop_when` before every chunk, so the unpack stops a few
/// MiB later, as it stops between entries.
#[test]
fn a_stop_request_ends_a_long_skip_of_entry_data_promptly() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const SIZE: u64 = 128 << 20;
    let read = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&read);
    // The caller's flag goes up once 4 MiB of the layer are read: inside `big/`'s data.
    let unpacker = Unpacker::builder()
        .rootless(true)
        .stop_when(move || seen.load(Ordering::SeqCst) > 4 << 20)
        .build()
        .expect("build");
    let after = Tar::new().file("after", b"x").finish();
    let layer = common::skipped_data_layer(&Tar::new().finish(), SIZE, &after, Arc::clone(&read));
    let t = tmp();
    let err = unpacker
        .apply_layer(t.path(), layer, &LayerInfo::default())
        .expect_err("stopped");
    assert!(err.is_stopped(), "{err:?}");
    assert!(
        err.to_string()
            .contains("before the layer was wholly applied"),
        "{err}"
    );
    let at = read.load(Ordering::SeqCst);
    assert!(at < 16 << 20, "stopped after reading {at} of {SIZE} bytes");
    eprintln!("stopped after reading {at} of {SIZE} bytes");
    assert!(exists(t.path().join("big")) && !exists(t.path().join("after")));
}
