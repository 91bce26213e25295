//! Small in-memory fixtures shared by the unit tests.

use std::io::Write;

use crate::codec::{Compression, compress};
use crate::{
    Descriptor, Digest, ImageConfig, ImageManifest, Layout, MediaType, RawJson, RootFs,
    RuntimeConfig,
};

/// A tar with one regular file per `(name, content)` pair.
pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        b.append_data(&mut h, name, *data).expect("append to tar");
    }
    b.into_inner().expect("finish tar")
}

/// A config for `diff_ids`.
pub(crate) fn config_for(diff_ids: Vec<Digest>, arch: &str) -> RawJson<ImageConfig> {
    RawJson::from_value(ImageConfig {
        architecture: arch.into(),
        os: "linux".into(),
        config: Some(RuntimeConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            ..RuntimeConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..ImageConfig::default()
    })
    .expect("serialize config")
}

/// Write an image with one layer per tar into `layout`, compressed with `c`; returns the
/// manifest descriptor (not tagged).
pub(crate) fn write_image(
    layout: &Layout,
    layers: &[Vec<u8>],
    c: Compression,
    arch: &str,
) -> (Descriptor, RawJson<ImageManifest>) {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        let mut w = layout.blob_writer().expect("writer");
        let info = compress(&tar[..], &mut w, c, None, 1).expect("compress");
        w.flush().expect("flush");
        w.commit(Some(&info.digest), Some(info.size))
            .expect("commit");
        descs.push(Descriptor::new(
            MediaType::oci_layer(c),
            info.digest,
            info.size,
        ));
        diff_ids.push(info.diff_id);
    }
    let config = config_for(diff_ids, arch);
    layout.write_json(&config).expect("config");
    let manifest = RawJson::from_value(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        artifact_type: None,
        config: config.descriptor(MediaType::OCI_CONFIG),
        layers: descs,
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("manifest");
    layout.write_json(&manifest).expect("write manifest");
    (manifest.descriptor(MediaType::OCI_MANIFEST), manifest)
}

/// Every file under `dir`, relative, sorted.
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Replace a file's content in place (a blob damaged on disk), whatever its permissions.
pub(crate) fn overwrite(path: &std::path::Path, bytes: &[u8]) {
    let mut perms = std::fs::metadata(path).expect("metadata").permissions();
    #[allow(
        clippy::permissions_set_readonly_false,
        reason = "a test damaging its own file"
    )]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).expect("make writable");
    std::fs::write(path, bytes).expect("overwrite");
}
