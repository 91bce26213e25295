//! Interop with a real peer: skopeo reads the layouts and docker archives hoist writes, and
//! hoist reads the OCI layouts and docker archives skopeo writes.
//!
//! Skips loudly when skopeo is missing; fails instead when `CI=true`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_oci::archive::{spool, write_docker_archive};
use hoist_oci::codec::{Compression, compress};
use hoist_oci::{
    Descriptor, Digest, ImageConfig, ImageManifest, Layout, MediaType, RawJson, RootFs,
    RuntimeConfig,
};

fn skopeo() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("skopeo"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("skopeo is required in CI but is not installed");
        }
        eprintln!("SKIP: skopeo is not installed; interop tests did not run");
    }
    found
}

fn run(skopeo: &Path, args: &[&str]) -> String {
    let out = Command::new(skopeo)
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("spawn skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).expect("append");
    }
    b.into_inner().expect("tar")
}

struct Written {
    manifest: Descriptor,
    diff_ids: Vec<Digest>,
    layers: Vec<Descriptor>,
}

const MIXED: [Compression; 3] = [Compression::Gzip, Compression::Zstd, Compression::None];
/// skopeo 1.9 refuses zstd layers when converting to docker formats.
const NO_ZSTD: [Compression; 3] = [Compression::Gzip, Compression::Gzip, Compression::None];

/// Write a three-layer image compressed as `compressions` into `layout` and tag it.
fn write_image(layout: &Layout, tag: &str, compressions: [Compression; 3]) -> Written {
    let tars = [
        tar_of(&[("etc/hostname", b"hoist\n".to_vec())]),
        tar_of(&[(
            "usr/bin/big",
            (0..200_000u32).map(|i| (i % 97) as u8).collect(),
        )]),
        tar_of(&[("app/config", b"key=value\n".to_vec())]),
    ];
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, c) in tars.iter().zip(compressions) {
        let mut w = layout.blob_writer().expect("writer");
        let info = compress(&tar[..], &mut w, c, None, 1).expect("compress");
        w.flush().expect("flush");
        w.commit(Some(&info.digest), Some(info.size))
            .expect("commit");
        layers.push(Descriptor::new(
            MediaType::oci_layer(c),
            info.digest,
            info.size,
        ));
        diff_ids.push(info.diff_id);
    }
    let config = RawJson::from_value(ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(RuntimeConfig {
            cmd: Some(vec!["/app/run".into()]),
            env: Some(vec!["PATH=/usr/bin".into()]),
            ..RuntimeConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diff_ids.clone(),
        },
        ..ImageConfig::default()
    })
    .expect("config");
    layout.write_json(&config).expect("write config");
    let manifest = RawJson::from_value(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        artifact_type: None,
        config: config.descriptor(MediaType::OCI_CONFIG),
        layers: layers.clone(),
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("manifest");
    layout.write_json(&manifest).expect("write manifest");
    let desc = manifest.descriptor(MediaType::OCI_MANIFEST);
    layout.set_tag(tag, &desc).expect("tag");
    Written {
        manifest: desc,
        diff_ids,
        layers,
    }
}

fn oci_ref(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

#[test]
fn skopeo_reads_layouts_we_write() {
    let Some(skopeo) = skopeo() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::create(tmp.path().join("src")).expect("layout");
    let img = write_image(&layout, "v1", MIXED);

    let raw = run(
        &skopeo,
        &["inspect", "--raw", &oci_ref(layout.root(), "v1")],
    );
    assert_eq!(Digest::sha256_of(raw.as_bytes()), img.manifest.digest);
    let info: serde_json::Value =
        serde_json::from_str(&run(&skopeo, &["inspect", &oci_ref(layout.root(), "v1")]))
            .expect("inspect json");
    let listed: Vec<&str> = info["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let ours: Vec<String> = img.layers.iter().map(|d| d.digest.to_string()).collect();
    assert_eq!(listed, ours);
    assert_eq!(info["Architecture"], "amd64");

    // skopeo copy verifies every blob's digest on the way.
    let out = tmp.path().join("dir-out");
    run(
        &skopeo,
        &[
            "copy",
            &oci_ref(layout.root(), "v1"),
            &format!("dir:{}", out.display()),
        ],
    );
    for d in &img.layers {
        let copied = std::fs::read(out.join(d.digest.hex())).expect("copied layer");
        assert_eq!(Digest::sha256_of(&copied), d.digest);
    }
}

#[test]
fn we_read_oci_layouts_skopeo_writes() {
    let Some(skopeo) = skopeo() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Layout::create(tmp.path().join("src")).expect("layout");
    let img = write_image(&src, "v1", MIXED);
    let dst_dir = tmp.path().join("skopeo-oci");
    run(
        &skopeo,
        &[
            "copy",
            &oci_ref(src.root(), "v1"),
            &oci_ref(&dst_dir, "copied"),
        ],
    );
    let dst = Layout::open(&dst_dir).expect("open skopeo layout");
    assert_eq!(dst.tags().expect("tags"), vec!["copied"]);
    let read = dst.image(Some("copied"), None).expect("image");
    assert_eq!(read.config.value().rootfs.diff_ids, img.diff_ids);
    for l in &read.manifest.value().layers {
        dst.verify_blob(l).expect("blob verifies");
    }
}

#[test]
fn we_spool_docker_archives_skopeo_writes() {
    let Some(skopeo) = skopeo() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Layout::create(tmp.path().join("src")).expect("layout");
    let img = write_image(&src, "v1", NO_ZSTD);
    let archive = tmp.path().join("image.tar");
    run(
        &skopeo,
        &[
            "copy",
            &oci_ref(src.root(), "v1"),
            &format!(
                "docker-archive:{}:example.test/team/app:v1",
                archive.display()
            ),
        ],
    );
    let dst = Layout::create(tmp.path().join("dst")).expect("dst");
    let images = spool(File::open(&archive).expect("open archive"), &dst).expect("spool");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].tags, vec!["example.test/team/app:v1"]);
    let read = dst
        .image(Some("example.test/team/app:v1"), None)
        .expect("image");
    assert_eq!(read.config.value().rootfs.diff_ids, img.diff_ids);
    assert_eq!(read.config.value().architecture, "amd64");
    for l in &read.manifest.value().layers {
        dst.verify_blob(l).expect("blob verifies");
    }
}

#[test]
fn skopeo_reads_docker_archives_we_write() {
    let Some(skopeo) = skopeo() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Layout::create(tmp.path().join("src")).expect("layout");
    let img = write_image(&src, "v1", MIXED);
    let path = tmp.path().join("out.tar");
    let file = File::create(&path).expect("create");
    write_docker_archive(&src, &[(img.manifest.clone(), vec!["app:v1".into()])], file)
        .expect("write archive");
    let info: serde_json::Value = serde_json::from_str(&run(
        &skopeo,
        &["inspect", &format!("docker-archive:{}", path.display())],
    ))
    .expect("inspect json");
    // In a docker archive the layers are uncompressed: their digests are the diff_ids.
    let listed: Vec<&str> = info["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let diff_ids: Vec<String> = img.diff_ids.iter().map(ToString::to_string).collect();
    assert_eq!(listed, diff_ids);
    // And a full copy out of it verifies.
    let out = tmp.path().join("copied");
    run(
        &skopeo,
        &[
            "copy",
            &format!("docker-archive:{}", path.display()),
            &oci_ref(&out, "x"),
        ],
    );
    let copied = Layout::open(&out).expect("open");
    let read = copied.image(Some("x"), None).expect("image");
    assert_eq!(read.config.value().rootfs.diff_ids, img.diff_ids);
}

#[test]
fn we_spool_oci_archives_skopeo_writes() {
    let Some(skopeo) = skopeo() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Layout::create(tmp.path().join("src")).expect("layout");
    let img = write_image(&src, "v1", MIXED);
    let archive = tmp.path().join("image.oci.tar");
    run(
        &skopeo,
        &[
            "copy",
            &oci_ref(src.root(), "v1"),
            &format!("oci-archive:{}:release", archive.display()),
        ],
    );
    // An OCI layout in a tar, with no manifest.json: index.json names the image.
    let dst = Layout::create(tmp.path().join("dst")).expect("dst");
    let images = spool(File::open(&archive).expect("open archive"), &dst).expect("spool");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].tags, vec!["release"]);
    // (skopeo re-serializes the manifest, so its digest is skopeo's, not ours.)
    let read = dst.image(Some("release"), None).expect("image");
    assert_eq!(read.config.value().rootfs.diff_ids, img.diff_ids);
    for l in &read.manifest.value().layers {
        dst.verify_blob(l).expect("blob verifies");
    }
}
