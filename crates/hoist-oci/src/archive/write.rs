//! Streaming a legacy docker archive out of a layout, or from blob readers, for `docker load`.

use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Seek, Write};

use super::ArchiveManifestEntry;
use crate::codec::{self, Compression};
use crate::digest::{Algorithm, HashingWriter, mismatch};
use crate::layout::Layout;
use crate::{Descriptor, Digest, Error, ImageConfig, ImageManifest, RawJson, Reference, Result};

/// The `RepoTags` of an image named `names`: each `name:tag` in docker's short form, a name
/// without tag or digest as `name:latest`, and a name with only a digest left out (the image
/// is loaded untagged by that name, as one `docker save` wrote by digest).
fn repo_tags(names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let r = Reference::parse(name)?;
        if r.tag().is_none() && r.digest().is_some() {
            continue;
        }
        out.push(r.familiar_tagged());
    }
    Ok(out)
}

/// Write the images `images` (manifest or index descriptors with their `name:tag`s) from
/// `layout` to `out` as a legacy docker archive: `<config-hex>.json`, `<diffid-hex>/layer.tar`
/// (uncompressed) and `manifest.json` last. This is the format every Docker daemon can
/// `docker load` (dockerd 20.10 cannot load an OCI-layout tar).
///
/// A tar header needs the entry size before the data, so a compressed layer is decompressed once
/// into a temp file inside the layout's `blobs/` (checking its diff_id; see
/// [`write_docker_archive_spilling`] to put it elsewhere), then streamed from there; an
/// uncompressed layer streams straight from its blob. Memory stays constant. Layers and configs
/// shared between images are written once.
///
/// A name with a digest and no tag (`app@sha256:…`) gives the image no `RepoTags` entry, as
/// `docker save` does for an image saved by digest: `app:latest` would move the loader's
/// `latest` without anyone asking. A name with neither is `name:latest`, as docker has it.
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
    let blobs = layout.root().join("blobs");
    write_docker_archive_spilling(layout, images, &blobs, out)
}

/// [`write_docker_archive`], decompressing layers into temp files in `spill_dir` instead of the
/// layout: for a layout the caller may not write to (read-only, or someone else's). The temp
/// files are removed as soon as their layer is in the archive; `spill_dir` needs room for the
/// largest uncompressed layer.
///
/// # Errors
/// As [`write_docker_archive`], and I/O errors creating files in `spill_dir`.
pub fn write_docker_archive_spilling<W: Write>(
    layout: &Layout,
    images: &[(Descriptor, Vec<String>)],
    spill_dir: &std::path::Path,
    out: W,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut seen_configs: HashSet<Digest> = HashSet::new();
    let mut seen_layers: HashSet<Digest> = HashSet::new();
    let mut manifest = Vec::with_capacity(images.len());
    for (descriptor, tags) in images {
        let repo_tags = repo_tags(tags)?;
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
            append_layer(&mut tar, layout, spill_dir, layer, diff_id, &path)?;
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
    spill_dir: &std::path::Path,
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
        .tempfile_in(spill_dir)
        .map_err(|e| Error::io("creating a temp file for a layer", e).with_path(spill_dir))?;
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

/// Opens a blob for [`write_docker_archive_streamed`]: a reader of exactly the descriptor's
/// bytes that fails (at the latest when read to its end) when they do not hash to its digest.
pub type BlobOpener<'a> = dyn FnMut(&Descriptor) -> Result<Box<dyn Read + 'a>> + 'a;

/// Write one image to `out` as a legacy docker archive without a layout: every layer is read
/// once, in order, from `open` (a registry stream, say) and written as it arrives.
///
/// Unlike [`write_docker_archive`], compressed layers are not decompressed: a gzip layer goes
/// into `<diffid-hex>/layer.tar` as it is, because its size must be in the tar header before
/// its bytes and only the compressed size is known up front. `docker load` and skopeo
/// decompress such entries and check the result against the config's diff_ids (which
/// describe the uncompressed layers, so the config is written unchanged). An uncompressed
/// layer must already be its diff_id. A zstd layer is refused (dockerd before 23 cannot read
/// one); callers fall back to [`write_docker_archive`] for those images.
///
/// Each entry must have exactly the descriptor's size; `open`'s reader is read to its end, so
/// its own verification runs before the next entry starts. If an error occurs part way, `out`
/// holds a partial archive without `manifest.json`: treat it as garbage. `names` become
/// `RepoTags` as in [`write_docker_archive`] (a digest-only name is left out).
///
/// # Errors
/// Invalid `name:tag` references, a config whose diff_ids disagree with the layers, zstd
/// layers, blobs of the wrong size, errors from `open` or its readers, write errors on `out`.
pub fn write_docker_archive_streamed<W: Write>(
    manifest: &RawJson<ImageManifest>,
    config: &RawJson<ImageConfig>,
    names: &[String],
    open: &mut BlobOpener<'_>,
    out: W,
) -> Result<()> {
    let repo_tags = repo_tags(names)?;
    let layers = &manifest.value().layers;
    let diff_ids = &config.value().rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(Error::invalid(format!(
            "the image has {} layers but its config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    for layer in layers {
        if streamed_compression(layer) == Some(Compression::Zstd) {
            return Err(Error::invalid(format!(
                "layer {} is zstd-compressed; a streamed legacy docker archive carries only \
                 gzip or uncompressed layers",
                layer.digest
            )));
        }
    }
    let mut tar = tar::Builder::new(out);
    let config_path = format!("{}.json", config.digest().hex());
    append(
        &mut tar,
        &config_path,
        config.bytes().len() as u64,
        config.bytes(),
    )?;
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut layer_paths = Vec::with_capacity(layers.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let path = format!("{}/layer.tar", diff_id.hex());
        layer_paths.push(path.clone());
        if !seen.insert(diff_id.clone()) {
            continue;
        }
        if streamed_compression(layer) == Some(Compression::None) && &layer.digest != diff_id {
            return Err(mismatch(diff_id, &layer.digest).with_digest(&layer.digest));
        }
        let reader = Exact::new(open(layer)?, layer.size);
        append(&mut tar, &path, layer.size, reader).map_err(|e| e.with_digest(&layer.digest))?;
    }
    let entry = ArchiveManifestEntry {
        config: config_path,
        repo_tags: Some(repo_tags),
        layers: layer_paths,
    };
    let bytes = serde_json::to_vec(&[entry])
        .map_err(|e| Error::invalid(format!("serializing manifest.json: {e}")))?;
    append(&mut tar, "manifest.json", bytes.len() as u64, &bytes[..])?;
    let mut out = tar
        .into_inner()
        .map_err(|e| Error::io("finishing the archive", e))?;
    out.flush()
        .map_err(|e| Error::io("flushing the archive", e))
}

/// The compression of a layer as a streamed archive sees it (unknown media types pass through
/// and are left to the reader's detection).
fn streamed_compression(layer: &Descriptor) -> Option<Compression> {
    layer.media_type.layer_compression()
}

/// A reader that must yield exactly `left` bytes and then end: fewer is an error, more is an
/// error, and the inner reader is always read to its end (so a verifying reader checks).
struct Exact<R> {
    inner: R,
    left: u64,
    size: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Exact {
            inner,
            left: size,
            size,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob is longer than its {} bytes", self.size),
                )),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob ended after {} of its {} bytes",
                    self.size - self.left,
                    self.size
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod streamed_tests {
    use super::*;
    use crate::archive::spool;
    use crate::testutil::{tar_of, write_image};

    fn gzip_image(c: Compression) -> (tempfile::TempDir, Layout, Descriptor) {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(dir.path().join("l")).expect("layout");
        let layers = [
            tar_of(&[("etc/os", &[3u8; 5000][..])]),
            tar_of(&[("bin/app", b"app")]),
        ];
        let (desc, _) = write_image(&layout, &layers, c, "amd64");
        (dir, layout, desc)
    }

    fn write(layout: &Layout, desc: &Descriptor, corrupt: Option<usize>) -> Result<Vec<u8>> {
        let image = layout.image_at(desc, None)?;
        let mut opened = 0;
        let mut open = |d: &Descriptor| -> Result<Box<dyn Read>> {
            opened += 1;
            let mut bytes = Vec::new();
            layout
                .open_blob(d)?
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading", e))?;
            if corrupt == Some(opened) {
                bytes[7] ^= 0xff;
                // A lying source behind a verifying reader: fails when read to its end.
                return Ok(Box::new(crate::VerifyingReader::new(
                    io::Cursor::new(bytes),
                    d.digest.clone(),
                    Some(d.size),
                )));
            }
            Ok(Box::new(io::Cursor::new(bytes)))
        };
        let mut out = Vec::new();
        write_docker_archive_streamed(
            &image.manifest,
            &image.config,
            &["example/app:v1".to_string()],
            &mut open,
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn gzip_layers_pass_through_and_spool_back_to_the_same_image() {
        let (_d, layout, desc) = gzip_image(Compression::Gzip);
        let image = layout.image_at(&desc, None).expect("image");
        let out = write(&layout, &desc, None).expect("streamed archive");
        let (_d2, back) = {
            let d = tempfile::tempdir().expect("tempdir");
            let l = Layout::create(d.path().join("b")).expect("layout");
            (d, l)
        };
        let spooled = spool(&out[..], &back).expect("spool back");
        assert_eq!(spooled[0].tags, vec!["example/app:v1"]);
        let again = back.image(Some("example/app:v1"), None).expect("image");
        // The config is unchanged, and each layer is the very gzip blob that was streamed.
        assert_eq!(again.config.digest(), image.config.digest());
        let digests = |i: &crate::layout::Image| -> Vec<Digest> {
            i.manifest
                .value()
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect()
        };
        assert_eq!(digests(&again), digests(&image));
    }

    #[test]
    fn uncompressed_layers_stream_too() {
        let (_d, layout, desc) = gzip_image(Compression::None);
        let out = write(&layout, &desc, None).expect("streamed archive");
        let d = tempfile::tempdir().expect("tempdir");
        let back = Layout::create(d.path().join("b")).expect("layout");
        assert_eq!(spool(&out[..], &back).expect("spool").len(), 1);
    }

    #[test]
    fn a_lying_blob_fails_the_archive_before_manifest_json() {
        let (_d, layout, desc) = gzip_image(Compression::Gzip);
        let e = write(&layout, &desc, Some(2)).expect_err("corrupt layer");
        assert!(e.to_string().contains("sha256:"), "{e}");
    }

    #[test]
    fn zstd_and_wrong_sizes_are_refused() {
        let (_d, layout, desc) = gzip_image(Compression::Zstd);
        let e = write(&layout, &desc, None).expect_err("zstd");
        assert!(e.to_string().contains("zstd"), "{e}");
        let mut short = Exact::new(io::Cursor::new(vec![1u8; 10]), 11);
        assert!(io::copy(&mut short, &mut io::sink()).is_err());
        let mut long = Exact::new(io::Cursor::new(vec![1u8; 12]), 11);
        assert!(io::copy(&mut long, &mut io::sink()).is_err());
        let mut exact = Exact::new(io::Cursor::new(vec![1u8; 11]), 11);
        assert_eq!(io::copy(&mut exact, &mut io::sink()).expect("exact"), 11);
    }
}
