//! Equivalence with the reference implementations: the tree hoist produces from a gzip OCI
//! layout equals the tree `umoci unpack --rootless` produces and the tree `dockerd` produces
//! (`docker create` + `docker export`) — paths, types, modes, link targets, contents — on an
//! image with whiteouts, opaque dirs, symlinks, hardlinks, long names and mode bits.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{Tar, shape};
use hoist_oci::{Digest, ImageConfig, Layout, RootFs};
use hoist_unpack::Unpacker;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// The test image's layer tars. `through_symlink` adds an entry written through a symlink a
/// lower layer planted (`lib64 -> /usr/lib`, then `lib64/added-through-symlink`): extracting
/// unpackers (umoci, hoist) follow the symlink inside the root, while overlay-based dockerd puts
/// a new `lib64/` directory in the upper layer that hides the symlink. Layers made by diffing
/// real filesystems never contain such an entry, so the dockerd comparison leaves it out.
fn layers(through_symlink: bool) -> Vec<Vec<u8>> {
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
        .file_mode("usr/bin/sg", b"sgid", 0o2711)
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .dir("usr/lib/")
        .file("usr/lib/libx.so.1", b"\x7fELF")
        .symlink("usr/lib/libx.so", "libx.so.1")
        .symlink("lib64", "/usr/lib")
        .dir_mode("tmp/", 0o1777)
        .dir_mode("root/", 0o700)
        .file_mode("root/.secret", b"k", 0o600)
        .dir("opt/")
        .dir("opt/app/")
        .dir("opt/app/data/")
        .file("opt/app/data/a", b"a")
        .file("opt/app/data/b", b"b")
        .dir("opt/app/data/sub/")
        .file("opt/app/data/sub/c", b"c")
        .dir("opt/app/other/")
        .file("opt/app/other/old", b"old")
        .file("opt/app/keep", b"keep")
        .file(&format!("{long_dir}/{}", "n".repeat(110)), b"long name")
        .symlink("opt/longlink", &format!("/{}", "t".repeat(150)))
        .fifo("opt/fifo");
    let mut l2 = Tar::new();
    l2.whiteout("usr/lib/.wh.libx.so.1")
        .whiteout("opt/app/data/.wh..wh..opq")
        .file("opt/app/data/new", b"new")
        .file("opt/app/data/sub/d", b"d")
        .file("opt/app/other/fresh", b"fresh")
        .whiteout("opt/app/other/.wh..wh..opq")
        .file("etc/dir-to-file", b"now a file")
        .dir("etc/file-to-dir/")
        .file("etc/file-to-dir/child", b"child")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/bash\n")
        .hardlink("etc/passwd-", "etc/passwd")
        .file_mode("usr/bin/tool", b"#!/bin/sh\necho tool v2\n", 0o750);
    let mut l3 = Tar::new();
    l3.whiteout("opt/app/.wh.keep")
        .dir_mode("etc/", 0o750)
        .symlink("usr/bin/tool2", "tool");
    if through_symlink {
        l3.file("lib64/added-through-symlink", b"via lib64");
    }
    vec![l1.finish(), l2.finish(), l3.finish()]
}

fn put_blob(layout: &Path, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), data).expect("blob");
    digest
}

/// Write an OCI layout with the test image (gzip layers), tagged `latest`; returns the blobs.
fn build_layout(layout: &Path, through_symlink: bool) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let tars = layers(through_symlink);
    let blobs: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256_of(t)).collect();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..ImageConfig::default()
    };
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_digest = put_blob(layout, &config_bytes);
    let layer_descs: Vec<serde_json::Value> = blobs
        .iter()
        .map(|b| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": put_blob(layout, b).to_string(),
                "size": b.len(),
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layer_descs,
    }))
    .expect("manifest");
    let manifest_digest = put_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index");
    blobs
}

fn unpack_with_hoist(
    layout: &Path,
    root: &Path,
) -> Result<hoist_unpack::Stats, hoist_unpack::Error> {
    let layout = Layout::open(layout).expect("open layout");
    let image = layout.image(Some("latest"), None).expect("image");
    Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .unpack_image(&layout, &image, root)
}

#[test]
fn unpack_image_verifies_layer_blobs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    let blobs = build_layout(&layout, true);
    let stats = unpack_with_hoist(&layout, &tmp.path().join("ok")).expect("unpack");
    assert_eq!(stats.layers.len(), 3);
    // Corrupt the second layer blob in place, keeping its size: the digest check must fail.
    let path = layout
        .join("blobs/sha256")
        .join(Digest::sha256_of(&blobs[1]).hex());
    let mut bytes = std::fs::read(&path).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");
    let err = unpack_with_hoist(&layout, &tmp.path().join("bad")).expect_err("corrupt blob");
    assert!(err.is_digest_mismatch() || err.is_corrupt(), "{err:?}");
    assert_eq!(err.digest(), Some(&Digest::sha256_of(&blobs[1])));
    // A truncated blob is refused before anything of it is applied.
    std::fs::write(&path, &bytes[..10]).expect("write");
    let err = unpack_with_hoist(&layout, &tmp.path().join("short")).expect_err("short blob");
    assert!(err.is_digest_mismatch(), "{err:?}");
    assert!(err.to_string().contains("size"), "{err}");
}

#[test]
fn equals_umoci_unpack_rootless() {
    let umoci_ok = Command::new("umoci")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !umoci_ok {
        common::skip("umoci is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    build_layout(&layout, true);

    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = tmp.path().join("hoist-rootfs");
    let stats = unpack_with_hoist(&layout, &ours).expect("hoist unpack");
    assert_eq!(stats.layers.len(), 3);

    let theirs = shape(&bundle.join("rootfs"));
    let mine = shape(&ours);
    let only_theirs: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| mine.get(*k) != Some(*v))
        .collect();
    let only_mine: Vec<_> = mine
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .collect();
    assert!(
        only_theirs.is_empty() && only_mine.is_empty(),
        "trees differ\numoci: {only_theirs:#?}\nhoist: {only_mine:#?}"
    );
    // The image exercised what it claims to.
    assert!(mine.len() > 25);
    assert!(mine.contains_key(Path::new("usr/lib/added-through-symlink")));
    assert!(!mine.contains_key(Path::new("opt/app/data/a")));
}

/// The tree of a `docker export` tar, in the shape of [`common::shape`]; hardlinks take their
/// target's content. Paths dockerd adds to every container are left out.
fn export_shape(
    tar_path: &Path,
) -> std::collections::BTreeMap<std::path::PathBuf, (char, u32, Vec<u8>)> {
    use std::io::Read;
    const DOCKER_ADDS: &[&str] = &[
        ".dockerenv",
        "dev",
        "proc",
        "sys",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    let mut out = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path).expect("export tar"));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
        if path.as_os_str().is_empty()
            || DOCKER_ADDS
                .iter()
                .any(|d| path == Path::new(d) || path.starts_with(d))
        {
            continue;
        }
        let header = entry.header().clone();
        let mode = header.mode().expect("mode") & 0o7777;
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let node = match header.entry_type() {
            tar::EntryType::Directory => ('d', mode, Vec::new()),
            tar::EntryType::Symlink => ('l', 0, link),
            tar::EntryType::Fifo => ('p', mode, Vec::new()),
            tar::EntryType::Link => {
                let target = std::path::PathBuf::from(String::from_utf8(link).expect("utf-8"));
                let target = target.strip_prefix("./").unwrap_or(&target).to_path_buf();
                let (_, _, content) = out
                    .get(&target)
                    .cloned()
                    .expect("hardlink target listed first");
                ('f', mode, content)
            }
            _ => {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).expect("content");
                ('f', mode, content)
            }
        };
        out.insert(path, node);
    }
    out
}

#[test]
fn equals_dockerd_create_and_export() {
    if !hoist_testkit::require_root()
        || !hoist_testkit::require_tool("dockerd")
        || !hoist_testkit::require_tool("skopeo")
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    build_layout(&layout, false);
    let dockerd = hoist_testkit::Dockerd::start().expect("start dockerd");
    let out = Command::new("skopeo")
        .args(["copy", "--dest-daemon-host"])
        .arg(dockerd.docker_host())
        .arg(format!("oci:{}:latest", layout.display()))
        .arg("docker-daemon:hoist-equivalence:latest")
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = dockerd
        .run_docker(&["create", "hoist-equivalence:latest", "/nothing"])
        .expect("docker create");
    let export = tmp.path().join("export.tar");
    dockerd
        .run_docker(&["export", "-o", export.to_str().expect("utf-8"), &id])
        .expect("docker export");
    let theirs = export_shape(&export);

    let ours = tmp.path().join("hoist-rootfs");
    unpack_with_hoist(&layout, &ours).expect("hoist unpack");
    let mine = shape(&ours);
    let only_theirs: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| mine.get(*k) != Some(*v))
        .collect();
    let only_mine: Vec<_> = mine
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .collect();
    assert!(
        only_theirs.is_empty() && only_mine.is_empty(),
        "trees differ (storage driver {})\ndockerd: {only_theirs:?}\nhoist: {only_mine:?}",
        dockerd.storage_driver()
    );
    assert!(mine.len() > 25);
}
