//! Interop with umoci, a second independent reader of OCI layouts: it lists the tags of a layout
//! hoist wrote and unpacks the image (verifying every blob) into a root filesystem.
//!
//! Skips loudly when umoci is missing; fails instead when `CI=true`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_oci::codec::{Compression, compress};
use hoist_oci::{
    Descriptor, ImageConfig, ImageManifest, Layout, MediaType, RawJson, RootFs, RuntimeConfig,
};

fn umoci() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("umoci"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("umoci is required in CI but is not installed");
        }
        eprintln!("SKIP: umoci is not installed; umoci interop test did not run");
    }
    found
}

fn run(umoci: &Path, args: &[&str]) -> String {
    let out = Command::new(umoci)
        .args(args)
        .output()
        .expect("spawn umoci");
    assert!(
        out.status.success(),
        "umoci {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn umoci_unpacks_layouts_we_write() {
    let Some(umoci) = umoci() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::create(tmp.path().join("layout")).expect("layout");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let tars = [
        tar_of(&[("etc/hostname", b"hoist\n")]),
        // Over one gzip block, compressed on two threads.
        tar_of(&[("usr/lib/big.bin", &big[..])]),
        tar_of(&[("etc/hostname", b"replaced\n")]),
    ];
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, c) in tars
        .iter()
        .zip([Compression::Gzip, Compression::Gzip, Compression::None])
    {
        let mut w = layout.blob_writer().expect("writer");
        let info = compress(&tar[..], &mut w, c, None, 2).expect("compress");
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
            cmd: Some(vec!["/bin/true".into()]),
            ..RuntimeConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..ImageConfig::default()
    })
    .expect("config");
    layout.write_json(&config).expect("config blob");
    let manifest = RawJson::from_value(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        artifact_type: None,
        config: config.descriptor(MediaType::OCI_CONFIG),
        layers,
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("manifest");
    layout.write_json(&manifest).expect("manifest blob");
    layout
        .set_tag("v1", &manifest.descriptor(MediaType::OCI_MANIFEST))
        .expect("tag");

    let root = layout.root().display().to_string();
    let listed = run(&umoci, &["ls", "--layout", &root]);
    assert_eq!(listed.trim(), "v1");

    let bundle = tmp.path().join("bundle");
    run(
        &umoci,
        &[
            "unpack",
            "--image",
            &format!("{root}:v1"),
            &bundle.display().to_string(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("etc/hostname")).expect("hostname"),
        b"replaced\n"
    );
    assert!(std::fs::read(rootfs.join("usr/lib/big.bin")).expect("big") == big);
}
