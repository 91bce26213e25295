//! The OCI image layout on disk: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`.
//!
//! [`Layout`] is the local content store of hoist: registries pull into it, docker archives are
//! spooled into it, unpacking reads from it. Blobs are written through a [`BlobWriter`] (temp
//! file, hashed while written, verified, fsynced, renamed), so `blobs/<alg>/` only ever holds
//! complete, verified content. Tags live in `index.json` as the
//! `org.opencontainers.image.ref.name` annotation and are replaced atomically. A writer that
//! may fail into a new directory takes a [`Claim`] ([`Layout::claim`]): on failure it removes
//! the layout only when it created it and no other writer is at work there.

mod blob;
mod claim;
mod compress;
mod image;
mod layer;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use blob::BlobWriter;
pub(crate) use blob::{TEMP_PREFIX, mark_in_use};
use blob::{remove_stale_temps, sync_dir};
pub use claim::Claim;
pub use compress::CompressOptions;
pub use layer::{CompressedBlob, LayerWriter};

use crate::digest::Algorithm;
use crate::{
    Descriptor, Digest, Error, ErrorKind, ImageConfig, ImageIndex, ImageManifest, MAX_JSON_SIZE,
    MediaType, RawJson, Result, VerifyingReader,
};

/// The annotation holding a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const INDEX_TEMP_PREFIX: &str = "index.json.tmp";
const LAYOUT_VERSION: &str = "1.0.0";
/// The largest `oci-layout` file read (the real one is ~30 bytes; a huge one is hostile).
const MAX_MARKER_SIZE: u64 = 64 * 1024;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// An image read from a layout: its manifest descriptor, manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// The descriptor of the image manifest (not of an index that led to it).
    pub descriptor: Descriptor,
    /// The manifest, with its exact bytes.
    pub manifest: RawJson<ImageManifest>,
    /// The config, with its exact bytes.
    pub config: RawJson<ImageConfig>,
}

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutEntry {
    /// The tag (`org.opencontainers.image.ref.name`), if any.
    pub tag: Option<String>,
    /// The manifest or index descriptor.
    pub descriptor: Descriptor,
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// Make `marker` appear with its content in one step (written beside it, then hard-linked into
/// place, which fails if it exists), so a process opening the layout never reads it half
/// written. Where hard links are not supported it is created and then written.
fn publish_marker(root: &Path, marker: &Path, bytes: &[u8]) -> Result<()> {
    let exists = || Error::invalid("an OCI layout already exists here").with_path(root);
    let temp = tempfile::Builder::new()
        .prefix(INDEX_TEMP_PREFIX)
        .permissions(blob::blob_permissions())
        .tempfile_in(root)
        .map_err(|e| Error::io("creating oci-layout", e).with_path(root))?;
    blob::mark_in_use(temp.as_file(), temp.path())?;
    (&mut temp.as_file())
        .write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| Error::io("writing oci-layout", e).with_path(temp.path()))?;
    match fs::hard_link(temp.path(), marker) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(_) => {}
    }
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(e) => return Err(Error::io("creating oci-layout", e).with_path(marker)),
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing oci-layout", e).with_path(marker))
}

impl Layout {
    /// Create a new layout in `dir` (created if missing).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `dir` already holds a layout; I/O errors.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(root.join("blobs").join(Algorithm::Sha256.as_str()))
            .map_err(|e| Error::io("creating layout directories", e).with_path(&root))?;
        let marker = root.join(LAYOUT_FILE);
        let bytes = serde_json::to_vec(&LayoutMarker {
            image_layout_version: LAYOUT_VERSION.into(),
        })
        .map_err(|e| Error::invalid(format!("serializing oci-layout: {e}")))?;
        publish_marker(&root, &marker, &bytes)?;
        let layout = Layout { root };
        // Under the lock: a process that opened the layout the moment its marker appeared may
        // already have tagged something, and an empty index must not replace that.
        let _lock = layout.lock()?;
        if !layout.root.join(INDEX_FILE).exists() {
            layout.write_index(&empty_index())?;
        }
        Ok(layout)
    }

    /// Open an existing layout, removing temp files left behind by writers that died.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when `dir` has no `oci-layout`; [`ErrorKind::InvalidInput`] when
    /// it is malformed or of an unknown version.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let marker = root.join(LAYOUT_FILE);
        let mut bytes = Vec::new();
        File::open(&marker)
            .and_then(|f| f.take(MAX_MARKER_SIZE + 1).read_to_end(&mut bytes))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NotFound,
                        "not an OCI layout (no oci-layout file)",
                    )
                    .with_path(&root)
                } else {
                    Error::io("reading oci-layout", e).with_path(&marker)
                }
            })?;
        if bytes.len() as u64 > MAX_MARKER_SIZE {
            return Err(Error::invalid(format!(
                "oci-layout file is over the {MAX_MARKER_SIZE}-byte limit; not an OCI layout"
            ))
            .with_path(&marker));
        }
        let m: LayoutMarker = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!("malformed oci-layout file: {e}")).with_path(&marker)
        })?;
        if !m.image_layout_version.starts_with("1.") {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "unsupported OCI layout version {:?}",
                    m.image_layout_version
                ),
            )
            .with_path(&marker));
        }
        let layout = Layout { root };
        remove_stale_temps(&layout.blobs_dir(), TEMP_PREFIX)?;
        remove_stale_temps(&layout.root, INDEX_TEMP_PREFIX)?;
        Ok(layout)
    }

    /// Open the layout in `dir`, creating it when there is none.
    ///
    /// # Errors
    /// As [`Layout::open`] and [`Layout::create`].
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self> {
        match Layout::open(dir.as_ref()) {
            Err(e) if e.is_not_found() => match Layout::create(dir.as_ref()) {
                // Someone else created it in between.
                Err(e) if e.is_invalid_input() => Layout::open(dir),
                other => other,
            },
            other => other,
        }
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir()
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Whether the blob exists with the descriptor's size. Content is not rehashed (blobs only
    /// get there verified); use [`Layout::verify_blob`] to rehash.
    ///
    /// # Errors
    /// I/O errors other than the blob being absent.
    pub fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        let path = self.blob_path(&descriptor.digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file() && m.len() == descriptor.size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("checking blob", e).with_path(&path)),
        }
    }

    /// Whether the blob exists with the descriptor's size and content, rehashed: for a writer
    /// about to skip a blob it would otherwise copy, so that a layout damaged since (a byte
    /// changed on disk, a file replaced by hand) never makes a new image look complete. A
    /// blob whose bytes do not match counts as absent: writing it again replaces it.
    ///
    /// # Errors
    /// I/O errors reading the blob, other than it being absent.
    pub fn has_verified_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        if !self.has_blob(descriptor)? {
            return Ok(false);
        }
        match self.verify_blob(descriptor) {
            Ok(()) => Ok(true),
            Err(e) if e.is_digest_mismatch() || e.is_size_mismatch() || e.is_not_found() => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Rehash a stored blob and check digest and size.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::DigestMismatch`], [`ErrorKind::SizeMismatch`].
    pub fn verify_blob(&self, descriptor: &Descriptor) -> Result<()> {
        let mut reader = self.open_blob(descriptor)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| {
            Error::io("verifying blob", e).with_path(self.blob_path(&descriptor.digest))
        })?;
        Ok(())
    }

    /// Open a stored blob for reading; the reader fails at end of stream unless the content
    /// matches the descriptor's digest and size.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] naming the digest when the blob is absent.
    pub fn open_blob(&self, descriptor: &Descriptor) -> Result<VerifyingReader<File>> {
        let path = self.blob_path(&descriptor.digest);
        let file = File::open(&path).map_err(|e| {
            Error::io("opening blob", e)
                .with_path(&path)
                .with_digest(&descriptor.digest)
        })?;
        Ok(VerifyingReader::new(
            file,
            descriptor.digest.clone(),
            Some(descriptor.size),
        ))
    }

    /// Read and parse a small JSON blob (manifest, index, config), verified against the
    /// descriptor.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the descriptor's size exceeds [`MAX_JSON_SIZE`] or the JSON
    /// is malformed; verification errors.
    pub fn read_json<T: DeserializeOwned>(&self, descriptor: &Descriptor) -> Result<RawJson<T>> {
        if descriptor.size > MAX_JSON_SIZE as u64 {
            return Err(Error::invalid(format!(
                "{} of {} bytes exceeds the {MAX_JSON_SIZE}-byte limit",
                descriptor.media_type, descriptor.size
            ))
            .with_digest(&descriptor.digest));
        }
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        self.open_blob(descriptor)?
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Error::io("reading JSON blob", e)
                    .with_path(self.blob_path(&descriptor.digest))
                    .with_digest(&descriptor.digest)
            })?;
        // Verified against the descriptor (again: a JSON blob is small), and named by it: a
        // sha512 document's digest is its sha512, not the sha256 `parse` would compute.
        RawJson::parse_verified(bytes, &descriptor.digest)
            .map_err(|e| e.with_digest(&descriptor.digest))
    }

    /// A writer for a new sha256 blob.
    ///
    /// # Errors
    /// I/O errors creating the temp file.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.blob_writer_for(Algorithm::Sha256)
    }

    /// A writer for a new blob hashed with `algorithm`.
    ///
    /// # Errors
    /// I/O errors creating the temp file.
    pub fn blob_writer_for(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let dir = self.blobs_dir();
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("creating blobs directory", e).with_path(&dir))?;
        BlobWriter::new(&dir, algorithm)
    }

    /// Stream `r` into a blob, verifying it against `expected` (digest and size) when given.
    ///
    /// # Errors
    /// Read errors (with their kind), verification errors; nothing is left under `blobs/`.
    pub fn write_blob<R: Read>(
        &self,
        r: R,
        expected: Option<&Descriptor>,
    ) -> Result<(Digest, u64)> {
        let algorithm = expected.map_or(Algorithm::Sha256, |d| d.digest.algorithm());
        let mut w = self.blob_writer_for(algorithm)?;
        crate::codec::copy(r, &mut w)?;
        w.commit(expected.map(|d| &d.digest), expected.map(|d| d.size))
    }

    /// Store another compression of a layer blob: `source` is read (verified, decompressed if
    /// it is compressed) and compressed into a new blob in one pass. Returns the new blob's
    /// descriptor (an OCI layer media type) and its digests; `info.diff_id` is the layer's
    /// uncompressed digest whatever `source` was.
    ///
    /// # Errors
    /// A missing or corrupt source (nothing is stored then), an invalid level, I/O errors.
    pub fn compress_blob(
        &self,
        source: &Descriptor,
        compression: crate::Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Result<(Descriptor, crate::codec::CompressedInfo)> {
        let from = source
            .media_type
            .layer_compression()
            .map_or_else(|| self.sniff(source), Ok)?;
        let reader = crate::codec::decoder_for(from, self.open_blob(source)?)?;
        let mut w = self.layer_writer(compression, level, threads)?;
        crate::codec::copy(reader, &mut w).map_err(|e| e.with_digest(&source.digest))?;
        let info = w.finish()?.commit()?;
        let desc = Descriptor::new(
            MediaType::oci_layer(compression),
            info.digest.clone(),
            info.size,
        );
        Ok((desc, info))
    }

    /// The compression of a stored blob, from its first bytes.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the blob is absent.
    pub fn sniff(&self, descriptor: &Descriptor) -> Result<crate::Compression> {
        let path = self.blob_path(&descriptor.digest);
        let mut f = File::open(&path).map_err(|e| {
            Error::io("opening blob", e)
                .with_path(&path)
                .with_digest(&descriptor.digest)
        })?;
        let mut magic = [0u8; 4];
        let mut n = 0;
        while n < magic.len() {
            match f.read(&mut magic[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading blob", e).with_path(&path)),
            }
        }
        Ok(crate::Compression::detect(&magic[..n]))
    }

    /// Store a JSON document's exact bytes as a blob (a no-op when it is already there).
    ///
    /// A blob already there is rehashed before it counts (JSON documents are small): a
    /// manifest or config damaged on disk but of the same size is written again rather than
    /// left for the image that is about to name it.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_json<T>(&self, json: &RawJson<T>) -> Result<()> {
        let size = json.bytes().len() as u64;
        if self.has_verified_blob(&Descriptor::new(
            MediaType::OCI_EMPTY,
            json.digest().clone(),
            size,
        ))? {
            return Ok(());
        }
        let mut w = self.blob_writer_for(json.digest().algorithm())?;
        w.write_all(json.bytes())
            .map_err(|e| Error::io("writing JSON blob", e))?;
        w.commit(Some(json.digest()), Some(size))?;
        Ok(())
    }

    /// The parsed `index.json` (an empty index when the file is missing).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a malformed index.
    pub fn index(&self) -> Result<RawJson<ImageIndex>> {
        let path = self.root.join(INDEX_FILE);
        match File::open(&path) {
            Ok(f) => {
                let mut bytes = Vec::new();
                f.take(MAX_JSON_SIZE as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io("reading index.json", e).with_path(&path))?;
                RawJson::parse(bytes).map_err(|e| e.with_path(&path))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => RawJson::from_value(empty_index()),
            Err(e) => Err(Error::io("reading index.json", e).with_path(&path)),
        }
    }

    /// Every entry of `index.json`, in order.
    ///
    /// # Errors
    /// As [`Layout::index`].
    pub fn list(&self) -> Result<Vec<LayoutEntry>> {
        Ok(self
            .index()?
            .value()
            .manifests
            .iter()
            .map(|d| LayoutEntry {
                tag: d.annotations.get(REF_NAME).cloned(),
                descriptor: d.clone(),
            })
            .collect())
    }

    /// The tags in `index.json`, in order.
    ///
    /// # Errors
    /// As [`Layout::index`].
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self.list()?.into_iter().filter_map(|e| e.tag).collect())
    }

    /// The descriptor tagged `tag`, or with `None` the layout's only image (several entries
    /// for the same digest count as one).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] listing the tags there are; [`ErrorKind::InvalidInput`] when no tag
    /// is given and the layout holds several images (or none).
    pub fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let entries = self.list()?;
        match tag {
            Some(tag) => entries
                .iter()
                .find(|e| e.tag.as_deref() == Some(tag))
                .map(|e| e.descriptor.clone())
                .ok_or_else(|| {
                    let tags: Vec<&str> = entries.iter().filter_map(|e| e.tag.as_deref()).collect();
                    Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no image tagged {tag:?} in the layout; tags: {}",
                            if tags.is_empty() {
                                "none".to_owned()
                            } else {
                                tags.join(", ")
                            }
                        ),
                    )
                    .with_path(&self.root)
                }),
            None => match entries.as_slice() {
                [only] => Ok(only.descriptor.clone()),
                [first, rest @ ..]
                    if rest
                        .iter()
                        .all(|e| e.descriptor.digest == first.descriptor.digest) =>
                {
                    Ok(first.descriptor.clone())
                }
                [] => Err(Error::new(ErrorKind::NotFound, "the layout holds no image")
                    .with_path(&self.root)),
                many => Err(Error::invalid(format!(
                    "the layout holds {} images; name one by tag",
                    many.len()
                ))
                .with_path(&self.root)),
            },
        }
    }

    /// Add `descriptor` to `index.json` without a tag, unless an untagged entry with its digest
    /// is already there.
    ///
    /// # Errors
    /// I/O errors.
    pub fn add_untagged(&self, descriptor: &Descriptor) -> Result<()> {
        let _lock = self.lock()?;
        let mut index = self.index()?.value().clone();
        if index
            .manifests
            .iter()
            .any(|d| d.digest == descriptor.digest && !d.annotations.contains_key(REF_NAME))
        {
            return Ok(());
        }
        let mut entry = descriptor.clone();
        entry.annotations.remove(REF_NAME);
        index.manifests.push(entry);
        self.write_index(&index)
    }

    /// Point `tag` at `descriptor`, replacing any entry with that tag. `index.json` is replaced
    /// atomically (temp file, fsync, rename) under a lock, so concurrent taggers do not lose
    /// each other's entries.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a tag outside the `ref.name` grammar (see
    /// [`check_ref_name`]); I/O errors.
    pub fn set_tag(&self, tag: &str, descriptor: &Descriptor) -> Result<()> {
        check_ref_name(tag)?;
        let _lock = self.lock()?;
        let mut index = self.index()?.value().clone();
        // Drop the old holder of the tag, and an untagged entry for the same manifest.
        index
            .manifests
            .retain(|d| match d.annotations.get(REF_NAME) {
                Some(t) => t != tag,
                None => d.digest != descriptor.digest,
            });
        let mut entry = descriptor.clone();
        entry.annotations.insert(REF_NAME.into(), tag.into());
        index.manifests.push(entry);
        self.write_index(&index)
    }

    /// Remove the entry tagged `tag` (its blobs stay). Returns whether there was one.
    ///
    /// # Errors
    /// I/O errors.
    pub fn remove_tag(&self, tag: &str) -> Result<bool> {
        let _lock = self.lock()?;
        let mut index = self.index()?.value().clone();
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
        if index.manifests.len() == before {
            return Ok(false);
        }
        self.write_index(&index)?;
        Ok(true)
    }

    /// An exclusive lock on the `oci-layout` file, held while `index.json` is rewritten.
    fn lock(&self) -> Result<File> {
        let marker = self.root.join(LAYOUT_FILE);
        // Opened for writing: on NFS an exclusive lock is a POSIX write lock, which a file
        // opened read-only cannot take (EBADF).
        // A marker we may not write (another tool made it 0444) still locks on a local disk.
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&marker)
            .or_else(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => File::open(&marker),
                _ => Err(e),
            })
            .map_err(|e| Error::io("opening oci-layout", e).with_path(&marker))?;
        match f.lock() {
            // Without lock support, concurrent taggers are not protected; everything else works.
            Err(e) if e.kind() != io::ErrorKind::Unsupported => {
                Err(Error::io("locking the layout", e).with_path(&marker))
            }
            _ => Ok(f),
        }
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index)
            .map_err(|e| Error::invalid(format!("serializing index.json: {e}")))?;
        let temp = tempfile::Builder::new()
            .prefix(INDEX_TEMP_PREFIX)
            .permissions(blob::blob_permissions())
            .tempfile_in(&self.root)
            .map_err(|e| Error::io("creating index.json temp file", e).with_path(&self.root))?;
        let dest = self.root.join(INDEX_FILE);
        blob::mark_in_use(temp.as_file(), temp.path())?;
        (&mut temp.as_file())
            .write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| Error::io("writing index.json", e).with_path(temp.path()))?;
        temp.persist(&dest)
            .map_err(|e| Error::io("replacing index.json", e.error).with_path(&dest))?;
        sync_dir(&self.root)
    }
}

/// Check a tag against the OCI `org.opencontainers.image.ref.name` grammar: components of
/// letters and digits joined by one of `-._:@+` or `--`, separated by `/`. This admits plain tags
/// (`v1.0`) and docker names (`localhost:5000/app:v1`) but nothing path-like (`..`, `/x`).
pub fn check_ref_name(tag: &str) -> Result<()> {
    let bad = |why: &str| {
        let shown: String = tag.chars().take(200).collect();
        Err(Error::invalid(format!("invalid tag {shown:?}: {why}")))
    };
    if tag.is_empty() || tag.len() > 1024 {
        return bad("must be 1 to 1024 characters");
    }
    for component in tag.split('/') {
        let b = component.as_bytes();
        let (Some(first), Some(last)) = (b.first(), b.last()) else {
            return bad("empty component");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("components must start and end with a letter or digit");
        }
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let sep = &component[start..i];
            if !(sep == "--" || (sep.len() == 1 && "-._:@+".contains(sep))) {
                return bad(&format!("invalid separator {sep:?}"));
            }
        }
    }
    Ok(())
}

fn empty_index() -> ImageIndex {
    ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
        artifact_type: None,
        manifests: Vec::new(),
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests;
