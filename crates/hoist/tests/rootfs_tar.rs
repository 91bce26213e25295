//! `hoist copy SRC rootfs-tar:FILE`: an OCI layout flattened into one tar of its root
//! filesystem, to a file (named only once complete) or to stdout.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use hoist_oci::Compression;
use hoist_testkit::rawtar::Tar;
use hoist_testkit::synth::{ImageSpec, RawLayer, write_oci_layout, write_raw_oci_layout};

use common::{arg, isolated, text};

/// One entry: type, mode, uid, and content or link target.
type Seen = (char, u32, u64, Vec<u8>);

/// The entries of a tar with their paths, in the order the tar holds them.
fn read_tar(bytes: &[u8]) -> Vec<(String, Seen)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
        let h = entry.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            other => panic!("{path}: {other:?}"),
        };
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("data");
        if let Some(link) = entry.link_name_bytes() {
            content = link.into_owned();
        }
        let mode = h.mode().expect("mode");
        out.push((path, (kind, mode, h.uid().expect("uid"), content)));
    }
    out
}

fn layers() -> Vec<RawLayer> {
    let mut base = Tar::new();
    base.uid = 0;
    base.dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/old", b"old")
        .file_mode("bin/su", b"suid", 0o4755)
        .char_dev("dev/null", 1, 3)
        .file("app/data/x", b"x");
    let mut top = Tar::new();
    top.uid = 1000;
    top.whiteout("etc/.wh.old")
        .whiteout("app/data/.wh..wh..opq")
        .file("app/data/y", b"y")
        .symlink("app/current", "data/y");
    vec![
        RawLayer::compress(&base.finish(), Compression::Gzip).expect("gzip"),
        RawLayer::compress(&top.finish(), Compression::Zstd).expect("zstd"),
    ]
}

#[test]
fn a_layout_flattens_to_a_file_and_to_stdout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    write_raw_oci_layout(&layout, "v1", &layers()).expect("layout");
    let file = tmp.path().join("out").join("root.tar");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let dest = format!("rootfs-tar:{}", file.display());
    let out = isolated(&tmp.path().join("cache"))
        .args(["--progress", "plain", "copy", &arg(&layout, ":v1"), &dest])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tar_bytes = std::fs::read(&file).expect("the tar");
    let entries = read_tar(&tar_bytes);
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    for must in [
        "etc",
        "etc/passwd",
        "bin/su",
        "dev/null",
        "app/data/y",
        "app/current",
    ] {
        assert!(paths.contains(&must), "{must} missing from {paths:?}");
    }
    for gone in ["etc/old", "app/data/x"] {
        assert!(!paths.contains(&gone), "{gone} in {paths:?}");
    }
    assert!(!paths.iter().any(|p| p.contains(".wh.")), "{paths:?}");
    let map: BTreeMap<_, _> = entries.into_iter().collect();
    assert_eq!(map["bin/su"], ('f', 0o4755, 0, b"suid".to_vec()));
    assert_eq!(map["app/data/y"], ('f', 0o644, 1000, b"y".to_vec()));
    assert_eq!(map["app/current"].3, b"data/y");
    assert_eq!(map["dev/null"].0, 'c');
    // Nothing but the tar is left beside it.
    let names: Vec<_> = std::fs::read_dir(file.parent().expect("parent"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["root.tar"]);

    // The same tar on stdout.
    let out = isolated(&tmp.path().join("cache"))
        .args(["copy", &arg(&layout, ":v1"), "rootfs-tar:-"])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, tar_bytes);
}

#[test]
fn a_bad_layer_leaves_no_file_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    let mut good = Tar::new();
    good.file("etc/passwd", b"root");
    let mut evil = Tar::new();
    evil.file("ok", b"fine").file("../escape", b"x");
    let layers = [
        RawLayer::compress(&good.finish(), Compression::Gzip).expect("gzip"),
        RawLayer::compress(&evil.finish(), Compression::None).expect("plain"),
    ];
    write_raw_oci_layout(&layout, "v1", &layers).expect("layout");
    let file = tmp.path().join("out.tar");
    let dest = format!("rootfs-tar:{}", file.display());
    let out = isolated(&tmp.path().join("cache"))
        .args(["copy", &arg(&layout, ":v1"), &dest])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("../escape"), "{stderr}");
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "layout" && n != "cache")
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");

    // An existing file is left as it was.
    std::fs::write(&file, b"before").expect("write");
    let out = isolated(&tmp.path().join("cache"))
        .args(["copy", &arg(&layout, ":v1"), &dest])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&file).expect("read"), b"before");
}

#[test]
fn rootfs_tar_is_a_destination_only() {
    let out = common::hoist(&["copy", "rootfs-tar:x.tar", "oci:/tmp/l:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("destination only"));
}

#[test]
fn the_runtime_config_is_written_once_the_tar_is() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    let spec = ImageSpec::uniform(2, 50_000, Compression::Gzip, 3);
    write_oci_layout(&layout, "v1", &spec).expect("layout");
    let cache = tmp.path().join("cache");
    let runtime = tmp.path().join("runtime.json");
    let runtime_arg = runtime.to_str().expect("utf-8 path");
    let read_runtime = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&runtime).expect("runtime config written"))
            .expect("JSON")
    };

    // To a file: the tar and, beside the builder's call, the settings to start it with (the
    // synthetic image's config says Cmd ["/bin/sh"]).
    let file = tmp.path().join("root.tar");
    let out = isolated(&cache)
        .args(["-q", "copy", "--runtime-config", runtime_arg])
        .arg(arg(&layout, ":v1"))
        .arg(format!("rootfs-tar:{}", file.display()))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(file.exists());
    assert_eq!(read_runtime()["Cmd"], serde_json::json!(["/bin/sh"]));

    // To stdout: the tar on stdout, the settings in their file.
    std::fs::remove_file(&runtime).expect("remove");
    let out = isolated(&cache)
        .args(["-q", "copy", "--runtime-config", runtime_arg])
        .arg(arg(&layout, ":v1"))
        .arg("rootfs-tar:-")
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, std::fs::read(&file).expect("the tar"));
    assert_eq!(read_runtime()["Cmd"], serde_json::json!(["/bin/sh"]));

    // A flatten that fails (a layer that would escape the root) writes no settings.
    std::fs::remove_file(&runtime).expect("remove");
    let bad = tmp.path().join("bad");
    let mut evil = Tar::new();
    evil.file("ok", b"fine").file("../escape", b"x");
    let layers = [RawLayer::compress(&evil.finish(), Compression::Gzip).expect("gzip")];
    write_raw_oci_layout(&bad, "v1", &layers).expect("bad layout");
    let out = isolated(&cache)
        .args(["-q", "copy", "--runtime-config", runtime_arg])
        .arg(arg(&bad, ":v1"))
        .arg(format!(
            "rootfs-tar:{}",
            tmp.path().join("other.tar").display()
        ))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("../escape"),
        "{}",
        text(&out.stderr)
    );
    assert!(!runtime.exists());

    // The settings never take the tar's own name.
    let out = isolated(&cache)
        .args(["copy", "--runtime-config"])
        .arg(&file)
        .arg(arg(&layout, ":v1"))
        .arg(format!("rootfs-tar:{}", file.display()))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(file.exists(), "the earlier tar is kept");
}
