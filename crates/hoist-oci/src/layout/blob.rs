//! Writing blobs into a layout: a temp file that is hashed while written and renamed into place
//! only after verification.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, mismatch};
use crate::frames::FrameWriter;
use crate::{Digest, Error, ErrorKind, Result};

/// The prefix of temp files inside `blobs/`; [`super::Layout::open`] removes stale ones.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A blob being written into a [`super::Layout`].
///
/// Bytes go to a temp file in the layout's `blobs/` directory (never under `blobs/<alg>/`),
/// hashed on the way (by a helper thread once the blob outgrows one 128 KiB frame).
/// [`BlobWriter::commit`] checks the digest and size, fsyncs, and renames the file to
/// `blobs/<alg>/<hex>`. Dropping a writer that was not committed deletes the temp file; if the
/// process dies instead, the temp file is unlocked and the next [`super::Layout::open`] removes it.
pub struct BlobWriter {
    blobs_dir: PathBuf,
    temp_path: PathBuf,
    out: Option<FrameWriter<Behind>>,
}

/// The temp file, with its writeback started as it fills (see [`crate::WriteBehind`]).
struct Behind {
    file: tempfile::NamedTempFile,
    behind: crate::WriteBehind,
}

impl Write for Behind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.behind.wrote(self.file.as_file(), n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    pub(crate) fn new(blobs_dir: &Path, algorithm: Algorithm) -> Result<Self> {
        let temp = live_temp(blobs_dir)?;
        let temp_path = temp.path().to_path_buf();
        Ok(BlobWriter {
            blobs_dir: blobs_dir.to_path_buf(),
            temp_path,
            out: Some(FrameWriter::new(
                Behind {
                    file: temp,
                    behind: crate::WriteBehind::new(),
                },
                algorithm,
            )),
        })
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.out.as_ref().map_or(0, FrameWriter::bytes_written)
    }

    /// The temp file's path (for messages and tests).
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Verify and move the blob into place, returning its digest and size.
    ///
    /// When `expected` is given the content must hash to it (same algorithm as the writer); when
    /// `expected_size` is given the size must match. On any failure the temp file is deleted and
    /// nothing appears under `blobs/`.
    ///
    /// # Errors
    /// [`ErrorKind::DigestMismatch`], [`ErrorKind::SizeMismatch`], or an I/O error.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::new(ErrorKind::Io, "blob writer already finished"))?;
        let (Behind { file: temp, .. }, digest, size) = out
            .finish()
            .map_err(|e| Error::io("flushing blob temp file", e).with_path(&self.temp_path))?;
        if let Some(expected) = expected {
            if expected.algorithm() != digest.algorithm() {
                return Err(Error::invalid(format!(
                    "blob writer hashes with {} but {expected} was expected",
                    digest.algorithm()
                )));
            }
            if &digest != expected {
                return Err(mismatch(expected, &digest));
            }
        }
        if let Some(want) = expected_size
            && want != size
        {
            return Err(Error::new(
                ErrorKind::SizeMismatch,
                format!("size mismatch: expected {want} bytes, got {size}"),
            )
            .with_digest(&digest));
        }
        temp.as_file()
            .sync_all()
            .map_err(|e| Error::io("syncing blob", e).with_path(&self.temp_path))?;
        let alg_dir = self.blobs_dir.join(digest.algorithm().as_str());
        fs::create_dir_all(&alg_dir)
            .map_err(|e| Error::io("creating blob directory", e).with_path(&alg_dir))?;
        let dest = alg_dir.join(digest.hex());
        temp.persist(&dest)
            .map_err(|e| Error::io("renaming blob into place", e.error).with_path(&dest))?;
        sync_dir(&alg_dir)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.out.as_mut() {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp_path", &self.temp_path)
            .field("bytes_written", &self.bytes_written())
            .finish()
    }
}

/// A new temp file in `blobs_dir`, locked as in use (see [`mark_in_use`]): a blob being
/// written, or a [`super::Claim`]'s mark. Dropping it deletes it.
pub(crate) fn live_temp(blobs_dir: &Path) -> Result<tempfile::NamedTempFile> {
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(blob_permissions())
        .tempfile_in(blobs_dir)
        .map_err(|e| Error::io("creating a temp file for a blob", e).with_path(blobs_dir))?;
    // The lock marks the temp file as in use; a crashed writer's lock goes away with it.
    mark_in_use(temp.as_file(), temp.path())?;
    Ok(temp)
}

/// fsync a directory so a rename into it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", e).with_path(dir))
}

/// How old an unlocked temp file must be before it counts as a dead writer's.
const FRESH_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Remove temp files in `dir` starting with `prefix` that no live writer holds locked (and
/// that are older than [`FRESH_TEMP`], so a writer between creating and locking is safe).
pub(crate) fn remove_stale_temps(dir: &Path, prefix: &str) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("listing layout directory", e).with_path(dir)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing layout directory", e).with_path(dir))?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // Removed while its lock is held, so no writer can take the file up in between.
        if let Some(_held) = lock_if_stale(&entry)
            && fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The temp file `entry` locked by this process, when no live writer can be holding it: it is
/// older than [`FRESH_TEMP`] (a writer creates its temp file and then locks it, so one made a
/// moment ago may be between the two; a dead writer's file is old by the next open) and
/// nobody else holds its lock. `None` when it may be a live writer's, including where locks
/// are unsupported (a live writer cannot be told from a dead one there).
pub(crate) fn lock_if_stale(entry: &fs::DirEntry) -> Option<File> {
    let young = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < FRESH_TEMP);
    if young {
        return None;
    }
    // Opened for writing, as an exclusive lock on NFS needs (see `Layout::lock`).
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(entry.path())
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Blobs and index.json are world-readable like any other layout writer makes them (the
/// layout code targets Unix, as all of hoist does).
pub(crate) fn blob_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o644)
}

/// Lock a freshly created temp file so [`remove_stale_temps`] knows its writer is alive. On a
/// filesystem without `flock` support the file simply stays unlocked (and is never removed).
pub(crate) fn mark_in_use(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        Err(e) => Err(Error::io("locking a temp file", e.into()).with_path(path)),
    }
}
