//! Writing a synthetic image in the legacy `docker save` format, streamed from temp files.

use super::oci::{CREATED, config_json};
use super::{ImageSpec, MTIME, Sha256Writer, SynthImage, sha256_digest, write_layer_tar};
use anyhow::Context;
use hoist_oci::{Descriptor, MediaType};
use serde_json::json;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Write `spec` as a `docker save` archive at `path`, tagged `repo_tag` (`name:tag`).
///
/// Layout of the tar: `<id>/VERSION`, `<id>/json`, `<id>/layer.tar` per layer (uncompressed,
/// whatever `LayerSpec::compression` says), `<config hex>.json`, `manifest.json` and
/// `repositories`. Layer tars are generated into temp files next to `path` while hashing, then
/// streamed into the archive, so memory stays constant. In the returned [`SynthImage`],
/// `layers` describe the `layer.tar` files and `manifest_digest` is the digest of
/// `manifest.json`.
pub fn write_docker_archive(
    path: &Path,
    repo_tag: &str,
    spec: &ImageSpec,
) -> anyhow::Result<SynthImage> {
    let (repo, tag) = match repo_tag.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (repo_tag, "latest"),
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".synth-archive-")
        .tempdir_in(parent)
        .with_context(|| format!("creating temp dir in {}", parent.display()))?;

    // 1. Generate every layer.tar into the work dir, hashing as we go.
    let mut diff_ids = Vec::new();
    let mut layers = Vec::new();
    let mut layer_files = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let p = work.path().join(format!("layer-{i}.tar"));
        let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        let w = Sha256Writer::new(BufWriter::with_capacity(256 * 1024, f));
        let (buf, diff_id, size) = write_layer_tar(layer, spec.layer_seed(i), w)
            .with_context(|| format!("writing layer {i}"))?
            .finish();
        buf.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        layers.push(Descriptor::new(
            MediaType::DOCKER_LAYER,
            diff_id.clone(),
            size,
        ));
        diff_ids.push(diff_id);
        layer_files.push(p);
    }

    // 2. Legacy v1 layer ids: a chain over the diff_ids, like docker's chain ids.
    let mut ids: Vec<String> = Vec::new();
    for d in &diff_ids {
        let seed = match ids.last() {
            Some(parent) => format!("{parent} {d}"),
            None => d.to_string(),
        };
        ids.push(sha256_digest(seed.as_bytes()).hex().to_string());
    }
    let config = config_json(&diff_ids);
    let config_digest = sha256_digest(&config);
    let config_name = format!("{}.json", config_digest.hex());
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [format!("{repo}:{tag}")],
        "Layers": ids.iter().map(|id| format!("{id}/layer.tar")).collect::<Vec<_>>(),
    }]))?;
    let repositories = match ids.last() {
        Some(top) => serde_json::to_vec(&json!({ repo: { tag: top } }))?,
        None => b"{}".to_vec(),
    };

    // 3. Stream everything into the archive (written to a temp name, renamed when complete).
    let out = tempfile::NamedTempFile::new_in(parent).context("creating archive temp file")?;
    let mut b = tar::Builder::new(BufWriter::with_capacity(256 * 1024, out.reopen()?));
    for (i, id) in ids.iter().enumerate() {
        let mut h = header(tar::EntryType::Directory, 0);
        b.append_data(&mut h, format!("{id}/"), std::io::empty())?;
        append_bytes(&mut b, &format!("{id}/VERSION"), b"1.0")?;
        let mut v1 = json!({
            "id": id,
            "created": CREATED,
            "os": "linux",
            "architecture": "amd64",
            "container_config": { "Cmd": [format!("hoist-testkit synth layer {i}")] },
        });
        if i > 0 {
            v1["parent"] = json!(ids[i - 1]);
        }
        append_bytes(&mut b, &format!("{id}/json"), &serde_json::to_vec(&v1)?)?;
        let f = File::open(&layer_files[i])?;
        let mut h = header(tar::EntryType::Regular, f.metadata()?.len());
        b.append_data(&mut h, format!("{id}/layer.tar"), f)?;
        // Free the disk space as soon as the layer is in the archive.
        std::fs::remove_file(&layer_files[i])?;
    }
    append_bytes(&mut b, &config_name, &config)?;
    append_bytes(&mut b, "manifest.json", &manifest)?;
    append_bytes(&mut b, "repositories", &repositories)?;
    let buf = b.into_inner()?;
    buf.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    out.persist(path)
        .with_context(|| format!("renaming archive to {}", path.display()))?;

    Ok(SynthImage {
        manifest_digest: sha256_digest(&manifest),
        manifest_size: manifest.len() as u64,
        config_digest,
        config_size: config.len() as u64,
        layers,
        diff_ids,
    })
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(size);
    h.set_mtime(MTIME);
    h
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut h = header(tar::EntryType::Regular, bytes.len() as u64);
    b.append_data(&mut h, name, bytes)?;
    Ok(())
}
