//! Writing a synthetic image as an OCI image layout, by hand (independent of hoist-oci's Layout).

use super::{ImageSpec, LayerSpec, Sha256Writer, SynthImage, sha256_digest, write_layer_tar};
use anyhow::Context;
use hoist_oci::{Compression, Descriptor, Digest, MediaType};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The `created` timestamp put in configs (matches [`super::MTIME`]).
pub(crate) const CREATED: &str = "2023-11-14T22:13:20Z";

/// Write `spec` as an OCI image layout in `dir` (created if needed) under the tag `tag`
/// (`org.opencontainers.image.ref.name`). An existing `index.json` there keeps its other entries,
/// so several images can share one layout. Layers are generated, compressed and hashed while
/// streaming into temp files under `blobs/sha256/`, then renamed to their digest.
pub fn write_oci_layout(dir: &Path, tag: &str, spec: &ImageSpec) -> anyhow::Result<SynthImage> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")
        .context("writing oci-layout")?;

    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let (desc, diff_id) = write_layer_blob(&blobs, layer, spec.layer_seed(i))
            .with_context(|| format!("writing layer {i}"))?;
        layers.push(desc);
        diff_ids.push(diff_id);
    }

    finish_layout(dir, tag, layers, diff_ids)
}

/// One layer given as bytes: the blob as stored (possibly damaged on purpose), the compression
/// its media type names, and the diff_id the config records for it.
#[derive(Debug, Clone)]
pub struct RawLayer {
    /// The blob bytes.
    pub blob: Vec<u8>,
    /// The compression named by the layer's media type.
    pub compression: Compression,
    /// The diff_id recorded in the config.
    pub diff_id: Digest,
}

impl RawLayer {
    /// `tar` compressed with `compression`; the diff_id is the digest of `tar`.
    ///
    /// # Errors
    /// When the encoder fails.
    pub fn compress(tar: &[u8], compression: Compression) -> anyhow::Result<RawLayer> {
        let blob = match compression {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
                enc.write_all(tar)?;
                enc.finish()?
            }
            Compression::Zstd => zstd::stream::encode_all(tar, 3)?,
        };
        Ok(RawLayer {
            blob,
            compression,
            diff_id: sha256_digest(tar),
        })
    }
}

/// Write an image made of these layers, byte for byte, as an OCI layout in `dir` under `tag`
/// (for hostile and damaged layers the generator would never make). Each blob is stored under
/// the digest of its bytes as given, so a damaged stream passes the digest check and reaches
/// the decoder.
///
/// # Errors
/// When a file cannot be written.
pub fn write_raw_oci_layout(
    dir: &Path,
    tag: &str,
    layers: &[RawLayer],
) -> anyhow::Result<SynthImage> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")
        .context("writing oci-layout")?;
    let mut descs = Vec::new();
    for layer in layers {
        let digest = write_json_blob(&blobs, &layer.blob)?;
        descs.push(Descriptor::new(
            MediaType::oci_layer(layer.compression),
            digest,
            layer.blob.len() as u64,
        ));
    }
    let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    finish_layout(dir, tag, descs, diff_ids)
}

/// Write the config, manifest and index entry for layers already in `dir/blobs/sha256`.
fn finish_layout(
    dir: &Path,
    tag: &str,
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
) -> anyhow::Result<SynthImage> {
    let blobs = dir.join("blobs").join("sha256");
    let config = config_json(&diff_ids);
    let config_digest = write_json_blob(&blobs, &config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_MANIFEST,
        "config": {
            "mediaType": MediaType::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|d| json!({
            "mediaType": d.media_type.as_str(),
            "digest": d.digest.to_string(),
            "size": d.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = write_json_blob(&blobs, &manifest)?;

    update_index(
        dir,
        tag,
        json!({
            "mediaType": MediaType::OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "platform": { "architecture": "amd64", "os": "linux" },
        }),
    )?;
    Ok(SynthImage {
        manifest_digest,
        manifest_size: manifest.len() as u64,
        config_digest,
        config_size: config.len() as u64,
        layers,
        diff_ids,
    })
}

/// The image config JSON for these diff_ids (also used by the docker-archive writer).
pub(crate) fn config_json(diff_ids: &[Digest]) -> Vec<u8> {
    let history: Vec<Value> = (0..diff_ids.len())
        .map(
            |i| json!({"created": CREATED, "created_by": format!("hoist-testkit synth layer {i}")}),
        )
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "history": history,
    });
    // Serializing a json! value cannot fail.
    serde_json::to_vec(&config).unwrap_or_default()
}

/// Stream one layer into `blobs/sha256/<digest>`; returns its descriptor and diff_id.
fn write_layer_blob(
    blobs: &Path,
    spec: &LayerSpec,
    seed: u64,
) -> anyhow::Result<(Descriptor, Digest)> {
    let tmp = tempfile::NamedTempFile::new_in(blobs).context("creating temp blob")?;
    let file = tmp.reopen().context("reopening temp blob")?;
    let outer = Sha256Writer::new(BufWriter::with_capacity(256 * 1024, file));
    let (outer, diff_id) = match spec.compression {
        Compression::None => {
            let inner = Sha256Writer::new(outer);
            let (outer, diff_id, _) = write_layer_tar(spec, seed, inner)?.finish();
            (outer, diff_id)
        }
        Compression::Gzip => {
            // Level 1: generating multi-GiB fixtures must stay fast; the ratio is irrelevant.
            let enc = flate2::write::GzEncoder::new(outer, flate2::Compression::new(1));
            let inner = Sha256Writer::new(enc);
            let (enc, diff_id, _) = write_layer_tar(spec, seed, inner)?.finish();
            (enc.finish()?, diff_id)
        }
        Compression::Zstd => {
            let enc = zstd::stream::write::Encoder::new(outer, 3)?;
            let inner = Sha256Writer::new(enc);
            let (enc, diff_id, _) = write_layer_tar(spec, seed, inner)?.finish();
            (enc.finish()?, diff_id)
        }
    };
    let (buf, digest, size) = outer.finish();
    let file = buf.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    tmp.persist(blobs.join(digest.hex()))
        .context("renaming blob into place")?;
    let desc = Descriptor::new(MediaType::oci_layer(spec.compression), digest, size);
    Ok((desc, diff_id))
}

fn write_json_blob(blobs: &Path, bytes: &[u8]) -> anyhow::Result<Digest> {
    let digest = sha256_digest(bytes);
    let mut f = File::create(blobs.join(digest.hex()))?;
    f.write_all(bytes)?;
    Ok(digest)
}

/// Name `entry` (a descriptor as JSON) `tag` in `dir`'s `index.json`, replacing what had that
/// tag and keeping the other entries.
pub(crate) fn update_index(dir: &Path, tag: &str, mut entry: Value) -> anyhow::Result<()> {
    const REF: &str = "org.opencontainers.image.ref.name";
    let path = dir.join("index.json");
    let mut manifests: Vec<Value> = match std::fs::read(&path) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("existing {} is not JSON", path.display()))?;
            v.get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    manifests.retain(|m| m["annotations"][REF] != json!(tag));
    entry["annotations"] = json!({ REF: tag });
    manifests.push(entry);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": manifests,
    });
    std::fs::write(&path, serde_json::to_vec(&index)?).context("writing index.json")?;
    Ok(())
}
