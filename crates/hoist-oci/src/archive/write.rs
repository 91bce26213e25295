//! Streaming a legacy docker archive out of a layout, for `docker load`.

use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Seek, Write};

use super::ArchiveManifestEntry;
use crate::codec::{self, Compression};
use crate::digest::{Algorithm, HashingWriter, mismatch};
use crate::layout::Layout;
use crate::{Descriptor, Digest, Error, Reference, Result};

/// Write the images `images` (manifest or index descriptors with their `name:tag`s) from
/// `layout` to `out` as a legacy docker archive: `<config-hex>.json`, `<diffid-hex>/layer.tar`
/// (uncompressed) and `manifest.json` last. This is the format every Docker daemon can
/// `docker load` (dockerd 20.10 cannot load an OCI-layout tar).
///
/// A tar header needs the entry size before the data, so a compressed layer is decompressed once
/// into a temp file inside the layout (checking its diff_id), then streamed from there; an
/// uncompressed layer streams straight from its blob. Memory stays constant. Layers and configs
/// shared between images are written once.
///
/// If an error occurs part way, `out` holds a partial archive: treat it as garbage.
///
/// # Errors
/// Missing or corrupt blobs, invalid `name:tag` references, configs whose diff_ids disagree
/// with the layers, write errors on `out`.
pub fn write_docker_archive<W: Write>(
    layout: &Layout,
    images: &[(Descriptor, Vec<String>)],
    out: W,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut seen_configs: HashSet<Digest> = HashSet::new();
    let mut seen_layers: HashSet<Digest> = HashSet::new();
    let mut manifest = Vec::with_capacity(images.len());
    for (descriptor, tags) in images {
        let repo_tags = tags
            .iter()
            .map(|t| Reference::parse(t).map(|r| r.familiar_tagged()))
            .collect::<Result<Vec<_>>>()?;
        let image = layout.image_at(descriptor, None)?;
        let config_path = format!("{}.json", image.config.digest().hex());
        if seen_configs.insert(image.config.digest().clone()) {
            append(
                &mut tar,
                &config_path,
                image.config.bytes().len() as u64,
                image.config.bytes(),
            )?;
        }
        let layers = &image.manifest.value().layers;
        let diff_ids = &image.config.value().rootfs.diff_ids;
        if layers.len() != diff_ids.len() {
            return Err(Error::invalid(format!(
                "image {} has {} layers but its config lists {} diff_ids",
                image.descriptor.digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        let mut layer_paths = Vec::with_capacity(layers.len());
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let path = format!("{}/layer.tar", diff_id.hex());
            layer_paths.push(path.clone());
            if !seen_layers.insert(diff_id.clone()) {
                continue;
            }
            append_layer(&mut tar, layout, layer, diff_id, &path)?;
        }
        manifest.push(ArchiveManifestEntry {
            config: config_path,
            repo_tags: Some(repo_tags),
            layers: layer_paths,
        });
    }
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::invalid(format!("serializing manifest.json: {e}")))?;
    append(&mut tar, "manifest.json", bytes.len() as u64, &bytes[..])?;
    let mut out = tar
        .into_inner()
        .map_err(|e| Error::io("finishing the archive", e))?;
    out.flush()
        .map_err(|e| Error::io("flushing the archive", e))
}

fn append<W: Write, R: Read>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: R,
) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
        .map_err(|e| Error::io(format!("writing {path} to the archive"), e))
}

fn append_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    layout: &Layout,
    layer: &Descriptor,
    diff_id: &Digest,
    path: &str,
) -> Result<()> {
    let compression = layer
        .media_type
        .layer_compression()
        .unwrap_or(Compression::None);
    if compression == Compression::None {
        if &layer.digest != diff_id {
            return Err(mismatch(diff_id, &layer.digest).with_digest(&layer.digest));
        }
        // The verifying reader fails the write if the blob is not what the descriptor says.
        let blob = io::BufReader::with_capacity(codec::COPY_BUF, layout.open_blob(layer)?);
        return append(tar, path, layer.size, blob);
    }
    // Decompress once into a temp file to learn the size, verifying the diff_id on the way.
    let spill = tempfile::Builder::new()
        .prefix(crate::layout::TEMP_PREFIX)
        .tempfile_in(layout.root().join("blobs"))
        .map_err(|e| Error::io("creating a temp file for a layer", e))?;
    crate::layout::mark_in_use(spill.as_file(), spill.path())?;
    let mut w = HashingWriter::new(
        BufWriter::with_capacity(128 * 1024, spill.as_file()),
        Algorithm::Sha256,
    );
    let decoder = codec::decoder_for(compression, layout.open_blob(layer)?)?;
    codec::copy(decoder, &mut w).map_err(|e| e.with_digest(&layer.digest))?;
    let (buffered, actual, size) = w.finish();
    let mut file = buffered
        .into_inner()
        .map_err(|e| Error::io("writing layer temp file", e.into_error()))?;
    if &actual != diff_id {
        return Err(mismatch(diff_id, &actual).with_digest(&layer.digest));
    }
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| Error::io("rewinding layer temp file", e))?;
    append(
        tar,
        path,
        size,
        io::BufReader::with_capacity(codec::COPY_BUF, file),
    )
}
