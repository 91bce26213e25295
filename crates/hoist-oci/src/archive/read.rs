//! One-pass spooling of a `docker save` stream into an OCI layout.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::rc::Rc;

use super::diff_id::{Inflating, Tee};
use super::options::{PROGRESS_STEP, SpoolEvent, SpoolOptions};
use super::{normalize, resolve_link, shown};
use crate::codec::{self, Compression};
use crate::digest::Digester;
use crate::layout::Layout;
use crate::{Descriptor, Digest, Error, ErrorKind, MAX_JSON_SIZE, MediaType, Result};

/// An image spooled out of a docker archive into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledImage {
    /// The `RepoTags` of the image as the archive named them (`alpine:3.19`); with
    /// [`SpoolOptions::tag_images`] each is also a tag (`org.opencontainers.image.ref.name`) in
    /// the layout, unless the tag grammar of a layout cannot hold it (`app:1.0-`, a fine docker
    /// tag): that one is reported as [`SpoolEvent::TagRefused`].
    pub tags: Vec<String>,
    /// The OCI manifest written for the image.
    pub manifest: Descriptor,
    /// The config, with the archive's exact bytes.
    pub config: Descriptor,
}

/// A file of the archive, stored as a blob.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) digest: Digest,
    pub(super) size: u64,
    /// The compression of the stored blob.
    pub(super) compression: Compression,
    /// The digest of the uncompressed content, when the spooler computed it (an uncompressed
    /// tar's own digest, or the input side of a compression done while spooling).
    pub(super) diff_id: Option<Digest>,
    /// The entry's size in the archive (the uncompressed size of a layer compressed on its
    /// way in, which the archive's own descriptors name).
    pub(super) archived: u64,
    /// The compression (`xz`, `bzip2`) the entry came in and the spool took off.
    pub(super) decoded: Option<&'static str>,
    /// The digest of the uncompressed content of a gzip or zstd layer stored as it came,
    /// computed beside its write (see [`super::diff_id`]) so that its config is checked without
    /// reading it again; `None` for other entries, and for one that did not decode. Not
    /// reported in [`SpoolEvent::LayerStored`], which gives only the `diff_id` of a tar the
    /// spool had in hand.
    pub(super) inflated: Option<Digest>,
}

/// What the pass over the tar collected.
#[derive(Default)]
pub(super) struct Collected {
    pub(super) files: HashMap<String, Stored>,
    pub(super) links: HashMap<String, String>,
    pub(super) manifest_json: Option<Vec<u8>>,
    pub(super) index_json: Option<Vec<u8>>,
}

/// Metadata files read into memory (capped) rather than stored as blobs.
const IN_MEMORY: [&str; 4] = ["manifest.json", "repositories", "index.json", "oci-layout"];

/// Read a `docker save` stream in one pass, storing its layers and configs in `layout`, and
/// create an OCI manifest plus a tag per `RepoTags` entry for each image.
///
/// The stream may be compressed whole, as `docker load` accepts it: gzip, zstd, xz or bzip2
/// (sniffed from its first bytes; concatenated streams read as one). An xz stream may ask for a
/// dictionary of at most 128 MiB (`xz -9` uses 64 MiB). A layer — a legacy `layer.tar`, or a
/// `blobs/sha256/<hex>` entry — may itself be compressed with gzip or zstd (stored as it is) or
/// with xz or bzip2 (decompressed on its way in, as OCI has no media type for them), as
/// `docker load` reads it. A named entry decompressed (or compressed, see [`spool_with`]) is
/// stored under the digest of what is stored, after its bytes were checked against its name;
/// a manifest of the archive naming it is written anew to name the stored blob.
///
/// Memory stays constant: every file streams through a bounded buffer into a [`crate::BlobWriter`]
/// and only the small metadata files (`manifest.json`, `repositories`) are held, capped at
/// [`MAX_JSON_SIZE`]. Tags are only set once every image was built and checked, so a bad archive
/// changes no tag; the blobs spooled before the failure stay (complete and verified, but
/// unreferenced). A name that a layout cannot hold as a tag (`app:1.0-`) fails nothing: the
/// image is stored without it and [`SpoolOptions::on_event`] hears of it.
///
/// # Errors
/// [`ErrorKind::Corrupt`] for a truncated tar or a corrupt or truncated compressed stream,
/// [`ErrorKind::Unsupported`] for an xz dictionary over the limit or for an OCI archive whose
/// artifact (a manifest that is no container image) names an xz or bzip2 blob, which would be
/// decompressed, [`ErrorKind::InvalidInput`]
/// for entries escaping the archive, a missing or malformed `manifest.json`, files it names that
/// are not there, or a config whose `rootfs.diff_ids` disagree with the layers; digest errors for
/// OCI blobs whose content does not match their name.
pub fn spool<R: Read>(reader: R, layout: &Layout) -> Result<Vec<SpooledImage>> {
    spool_with(reader, layout, SpoolOptions::new())
}

/// [`spool`] with options: compress layers while they stream in (so each byte is written
/// once, already in the form a push needs), leave tagging to the caller, and report
/// per-layer [`SpoolEvent`]s.
///
/// With [`SpoolOptions::tag_images`] off, `index.json` is not touched: the manifests are
/// stored as blobs and returned, and the caller tags the one it wants last.
///
/// # Errors
/// As [`spool`]; [`ErrorKind::InvalidInput`] for a compression level out of range, before
/// anything is read.
pub fn spool_with<R: Read>(
    reader: R,
    layout: &Layout,
    mut options: SpoolOptions,
) -> Result<Vec<SpooledImage>> {
    options.validate()?;
    // `docker save | gzip` (or zstd, xz, bzip2) is common; the stream is sniffed and decoded on
    // the fly.
    let mut tar = super::stream::decoder(reader)?;
    let collected = collect(&mut tar, layout, &mut options).map_err(|e| {
        // What garbage out of a damaged compressed block did to the tar reader is a symptom.
        let symptom = matches!(
            e.kind(),
            ErrorKind::Corrupt | ErrorKind::InvalidInput | ErrorKind::DigestMismatch
        );
        symptom.then(|| tar.cause()).flatten().unwrap_or(e)
    })?;
    let built = match &collected.manifest_json {
        Some(bytes) => super::build::build_from_manifest_json(bytes, &collected, layout)?,
        None => match &collected.index_json {
            Some(bytes) => super::build::build_from_index(
                bytes,
                &collected,
                layout,
                options.platform.as_ref(),
            )?,
            None => {
                return Err(Error::invalid(
                    "not a docker archive: no manifest.json (or OCI index.json) in the tar",
                ));
            }
        },
    };
    // An archive's names are docker references, a wider grammar than a layout's tags
    // (`app:1.0-` is a fine docker tag): they only matter when they become layout tags.
    if !options.tag_images {
        return Ok(built);
    }
    // A name that is no docker reference at all makes the archive malformed (`docker load`
    // refuses it too): checked for every image before any tag is set.
    for tag in built.iter().flat_map(|i| &i.tags) {
        crate::Reference::parse(tag).map_err(|e| {
            Error::invalid(format!("the archive names an image {:?}: {e}", shown(tag)))
        })?;
    }
    // A name the layout cannot hold is known only now (`manifest.json` comes last), with every
    // blob stored: failing would throw that away for a name the caller may still use (a
    // registry or a daemon takes it). The image is kept (untagged when no name of it fits),
    // the name stays in its `tags`, and the refusal is reported.
    for image in &built {
        let mut tagged = false;
        for tag in &image.tags {
            match crate::layout::check_ref_name(tag) {
                Ok(()) => {
                    layout.set_tag(tag, &image.manifest)?;
                    tagged = true;
                }
                Err(e) => options.emit(SpoolEvent::TagRefused {
                    tag: tag.clone(),
                    manifest: image.manifest.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        if !tagged {
            layout.add_untagged(&image.manifest)?;
        }
    }
    Ok(built)
}

fn collect<R: Read>(reader: R, layout: &Layout, options: &mut SpoolOptions) -> Result<Collected> {
    let budget = Rc::new(Cell::new(None));
    let mut archive = tar::Archive::new(HeaderBudget {
        inner: reader,
        budget: budget.clone(),
    });
    let mut entries = archive
        .entries()
        .map_err(|e| Error::io("reading the archive", e))?;
    let mut out = Collected::default();
    let mut layers = 0usize;
    let mut inflight = InFlight::default();
    // Bytes of paths and link targets kept until `manifest.json` is read.
    let mut kept = 0usize;
    let mut keep = |text: &str| -> Result<()> {
        if text.len() > MAX_PATH {
            return Err(Error::invalid(format!(
                "an archive entry names a path of {} bytes; docker archives use short paths",
                text.len()
            )));
        }
        kept += text.len();
        if kept > MAX_KEPT_PATHS {
            return Err(Error::invalid(format!(
                "the archive's entries name more than {MAX_KEPT_PATHS} bytes of paths; not a \
                 docker archive"
            )));
        }
        Ok(())
    };
    for n in 0.. {
        // While the tar crate looks for the next entry it reads headers, skips unread data and
        // buffers long names and PAX records whole: bound what that may consume.
        budget.set(Some(MAX_HEADER_BYTES));
        let next = entries.next();
        budget.set(None);
        let Some(entry) = next else { break };
        if n >= MAX_ARCHIVE_ENTRIES {
            return Err(Error::invalid(format!(
                "the archive has more than {MAX_ARCHIVE_ENTRIES} entries; not a docker archive"
            )));
        }
        let mut entry = entry.map_err(|e| tar_error("reading an archive entry header", e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_dir() {
            continue;
        }
        let path = normalize(&raw)?;
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .ok_or_else(|| Error::invalid(format!("link {path:?} without a target")))?;
            let target = if kind.is_symlink() {
                resolve_link(&path, &target)?
            } else {
                // Hard link names are archive paths.
                normalize(&target)?
            };
            keep(&path)?;
            keep(&target)?;
            out.links.insert(path, target);
            continue;
        }
        if !kind.is_file() && kind != tar::EntryType::Continuous {
            // Devices, fifos and the like have no place in a docker archive; skip them.
            continue;
        }
        let size = entry.size();
        if IN_MEMORY.contains(&path.as_str()) {
            let bytes = read_small(&mut entry, &path, size)?;
            match path.as_str() {
                "manifest.json" => out.manifest_json = Some(bytes),
                "index.json" => out.index_json = Some(bytes),
                _ => {}
            }
            continue;
        }
        if is_legacy_v1_metadata(&path) {
            drain(&mut entry, &path, size)?;
            continue;
        }
        keep(&path)?;
        // An OCI blob's name is its digest: verify against it.
        let named = oci_blob_digest(&path)?;
        // Report layers stored as soon as their commits are known to be done.
        inflight.reap(&mut out, options)?;
        let (index, storing) = store_entry(
            &mut entry,
            &path,
            size,
            named,
            layout,
            options,
            &mut layers,
            (&mut inflight, &mut out),
        )?;
        match storing {
            Storing::Done(stored) => record(&mut out, options, path, index, stored),
            Storing::Committing(handle) => inflight.push(path, index, handle, &mut out, options)?,
        }
    }
    inflight.finish_all(&mut out, options)?;
    // Read the end-of-archive padding too, so a writer on the other end of a pipe finishes
    // cleanly (bounded: a stream that never ends is not drained forever).
    let mut rest = archive.into_inner().take(TRAILER_DRAIN_LIMIT);
    // A compressed archive's last checks (a gzip CRC, an xz index) are in what follows: their
    // failure counts.
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| Error::io("reading the end of the archive", e))?;
    Ok(out)
}

/// Entries read from one archive. `docker save` writes a handful per layer; the paths of every
/// entry are remembered until `manifest.json` arrives, so a stream of millions of tiny entries
/// would otherwise grow memory without bound.
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

/// The longest path or link target accepted (`docker save` writes fewer than 100 bytes).
const MAX_PATH: usize = 4096;

/// Bytes of paths and link targets remembered until `manifest.json` says what they are: a
/// real archive needs a few hundred per layer.
const MAX_KEPT_PATHS: usize = 16 << 20;

/// What finding one entry may read: its headers, a GNU long name or PAX record set, and the
/// skipped remainder of a directory or device entry. Real ones are a few KiB; the tar crate
/// buffers long names and PAX records whole, so without this a header claiming gigabytes would
/// be read into memory.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// A reader that fails once more than the current budget is read (no budget: unlimited).
struct HeaderBudget<R> {
    inner: R,
    budget: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for HeaderBudget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.budget.get() else {
            return self.inner.read(buf);
        };
        if left == 0 {
            return Err(Error::invalid(format!(
                "a tar header (long name, PAX record or skipped entry) exceeds \
                 {MAX_HEADER_BYTES} bytes"
            ))
            .into_io());
        }
        let cap = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.budget.set(Some(left - n as u64));
        Ok(n)
    }
}

/// How much of what follows the tar's end marker is read and discarded.
const TRAILER_DRAIN_LIMIT: u64 = 1 << 20;

fn tar_error(what: &str, e: io::Error) -> Error {
    let err = Error::io(what, e);
    if err.is_io() {
        // The tar crate reports malformed headers as generic errors.
        Error::new(ErrorKind::Corrupt, format!("corrupt archive: {err}"))
    } else {
        err
    }
}

/// `<id>/json` and `<id>/VERSION`: docker's v1 metadata, not needed for OCI.
fn is_legacy_v1_metadata(path: &str) -> bool {
    matches!(path.split_once('/'), Some((id, "json" | "VERSION")) if !id.contains('/'))
}

/// `blobs/<alg>/<hex>` names its digest (validated before anything else is done with it).
pub(super) fn oci_blob_digest(path: &str) -> Result<Option<Digest>> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("blobs"), Some(alg), Some(hex), None) => Digest::parse(&format!("{alg}:{hex}"))
            .map(Some)
            .map_err(|e| Error::invalid(format!("archive blob {path:?}: {e}"))),
        _ => Ok(None),
    }
}

/// Store one file of the archive as a blob: verified against its name when it has one,
/// compressed on the way when it is an uncompressed layer and the options ask for it, and
/// reported as a layer when its content is a tar (or a compressed blob). The previous entry's
/// commit (`earlier`) is finished as soon as it is seen done while this one streams, so its
/// [`SpoolEvent::LayerStored`] comes when the blob is in place, not an entry later.
#[allow(clippy::too_many_arguments)]
fn store_entry<R: Read>(
    entry: &mut R,
    path: &str,
    size: u64,
    named: Option<Digest>,
    layout: &Layout,
    options: &mut SpoolOptions,
    layers: &mut usize,
    earlier: (&mut InFlight, &mut Collected),
) -> Result<(Option<usize>, Storing)> {
    let mut head_buf = [0u8; 512];
    let want = usize::try_from(size.min(512)).unwrap_or(512);
    let got = read_full(entry, &mut head_buf[..want]).map_err(|e| truncated_or(e, path))?;
    if got < want {
        return Err(truncated(path, got as u64, size));
    }
    let head = &head_buf[..want];
    let detected = Compression::detect(head);
    let is_tar = detected == Compression::None && looks_like_tar(head, size);
    // A layer in xz or bzip2 (a legacy `layer.tar`, or a blob named by the digest of those
    // bytes) is decoded, as `docker load` does: OCI has no media type for either.
    let decode = super::stream::xz_or_bzip2(head);
    let is_layer = is_tar || decode.is_some() || (detected != Compression::None && size >= 512);
    // The compressor hashes its input with sha256, which checks a tar's name only when that is
    // sha256: a tar named with another algorithm is stored as it is. A decoded entry's name is
    // checked on its compressed bytes, whatever the algorithm.
    let compress = options.compression.filter(|_| {
        decode.is_some()
            || (is_tar
                && named
                    .as_ref()
                    .is_none_or(|d| d.algorithm() == crate::Algorithm::Sha256))
    });
    // A gzip or zstd layer stored as it came: its diff_id is computed beside the write.
    let mut inflating = (is_layer && detected != Compression::None).then(Inflating::new);
    let index = is_layer.then(|| {
        let i = *layers;
        *layers += 1;
        options.emit(SpoolEvent::LayerStarted {
            index: i,
            path: path.to_string(),
            size,
            compressing: compress.is_some(),
        });
        i
    });
    let mut body = io::Cursor::new(head).chain(entry);
    let (inflight, out) = earlier;
    let mut tick = |bytes: u64| -> Result<()> {
        inflight.reap(out, options)?;
        if let Some(index) = index {
            options.emit(SpoolEvent::LayerProgress { index, bytes });
        }
        Ok(())
    };
    let stored = if let Some(name) = decode {
        let packed = super::decoded::Packed {
            path,
            size,
            name,
            named: named.as_ref(),
        };
        super::decoded::store_decompressed(body, &packed, compress, layout, &mut tick)?
    } else if let Some(c) = compress {
        let mut writer = layout.layer_writer(c.compression, c.level, c.threads)?;
        pump(&mut body, &mut writer, path, size, &mut tick)?;
        let blob = writer.finish()?;
        if let Some(named) = &named
            && blob.diff_id() != named
        {
            return Err(crate::digest::mismatch(named, blob.diff_id()).with_path(path));
        }
        let owned = path.to_string();
        let commit = move || {
            let info = blob.commit().map_err(|e| e.with_path(&owned))?;
            Ok(Stored {
                digest: info.digest,
                size: info.size,
                compression: c.compression,
                diff_id: Some(info.diff_id),
                archived: size,
                decoded: None,
                inflated: None,
            })
        };
        Storing::commit(commit)?
    } else if let Some(digest) = named.as_ref().filter(|d| {
        let existing = Descriptor::new(MediaType::OCI_LAYER, (*d).clone(), size);
        // Rehashed: a blob damaged on disk since is written again from the archive.
        layout.has_verified_blob(&existing).unwrap_or(false)
    }) {
        // Already in the layout: read through, hashing, instead of rewriting.
        let mut hasher = Digester::new(digest.algorithm());
        let mut tee = Tee {
            inner: &mut hasher,
            inflating: inflating.as_mut(),
        };
        pump(&mut body, &mut tee, path, size, &mut tick)?;
        let actual = hasher.finish();
        if &actual != digest {
            return Err(crate::digest::mismatch(digest, &actual).with_path(path));
        }
        Storing::Done(Stored {
            diff_id: is_tar.then(|| actual.clone()),
            digest: actual,
            size,
            compression: detected,
            archived: size,
            decoded: None,
            inflated: inflating.and_then(Inflating::finish),
        })
    } else {
        let algorithm = named
            .as_ref()
            .map_or(crate::Algorithm::Sha256, Digest::algorithm);
        let mut w = layout.blob_writer_for(algorithm)?;
        let mut tee = Tee {
            inner: &mut w,
            inflating: inflating.as_mut(),
        };
        pump(&mut body, &mut tee, path, size, &mut tick)?;
        // The decoder is a few frames behind at most: waited for here, so that only one runs.
        let inflated = inflating.and_then(Inflating::finish);
        let owned = path.to_string();
        let commit = move || {
            let (digest, size) = w
                .commit(named.as_ref(), Some(size))
                .map_err(|e| e.with_path(&owned))?;
            Ok(Stored {
                diff_id: is_tar.then(|| digest.clone()),
                digest,
                size,
                compression: detected,
                archived: size,
                decoded: None,
                inflated,
            })
        };
        Storing::commit(commit)?
    };
    Ok((index, stored))
}

/// A stored entry, or one whose verified blob is being committed (fsynced and renamed into
/// place) on another thread while the next entries stream in.
pub(super) enum Storing {
    Done(Stored),
    Committing(std::thread::JoinHandle<Result<Stored>>),
}

impl Storing {
    /// Commit on a thread of its own: an fsync, even of a small file, can wait for the
    /// writeback of a big one (ext4 commits its journal in order), and the daemon cannot send
    /// while nobody reads.
    pub(super) fn commit(commit: impl FnOnce() -> Result<Stored> + Send + 'static) -> Result<Self> {
        std::thread::Builder::new()
            .name("hoist-commit".into())
            .spawn(commit)
            .map(Storing::Committing)
            .map_err(|e| Error::io("starting a blob commit thread", e))
    }
}

/// Commits that may run beside the stream before it waits for the oldest. Each holds an open
/// temp file and a parked thread, nothing more.
const MAX_COMMITS: usize = 4;

/// The entries whose commits may still be running, oldest first. Finishing one records it (and
/// reports a layer as stored), in the order they were read; dropping the queue waits for every
/// commit, so a failed spool returns only after every temp file is gone or renamed.
#[derive(Default)]
struct InFlight {
    pending: std::collections::VecDeque<(
        String,
        Option<usize>,
        std::thread::JoinHandle<Result<Stored>>,
    )>,
}

impl InFlight {
    /// Queue a commit; wait for the oldest while more than [`MAX_COMMITS`] run.
    fn push(
        &mut self,
        path: String,
        index: Option<usize>,
        handle: std::thread::JoinHandle<Result<Stored>>,
        out: &mut Collected,
        options: &mut SpoolOptions,
    ) -> Result<()> {
        self.pending.push_back((path, index, handle));
        while self.pending.len() > MAX_COMMITS {
            self.finish_oldest(out, options)?;
        }
        Ok(())
    }

    /// Record the commits that are done, oldest first, stopping at the first still running.
    fn reap(&mut self, out: &mut Collected, options: &mut SpoolOptions) -> Result<()> {
        while self
            .pending
            .front()
            .is_some_and(|(_, _, handle)| handle.is_finished())
        {
            self.finish_oldest(out, options)?;
        }
        Ok(())
    }

    fn finish_all(&mut self, out: &mut Collected, options: &mut SpoolOptions) -> Result<()> {
        while !self.pending.is_empty() {
            self.finish_oldest(out, options)?;
        }
        Ok(())
    }

    fn finish_oldest(&mut self, out: &mut Collected, options: &mut SpoolOptions) -> Result<()> {
        let Some((path, index, handle)) = self.pending.pop_front() else {
            return Ok(());
        };
        let stored = handle
            .join()
            .map_err(|_| Error::new(ErrorKind::Io, "a blob commit thread panicked"))??;
        record(out, options, path, index, stored);
        Ok(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        for (_, _, handle) in self.pending.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Remember a stored file, reporting it when it is a layer.
fn record(
    out: &mut Collected,
    options: &mut SpoolOptions,
    path: String,
    index: Option<usize>,
    stored: Stored,
) {
    if let Some(index) = index {
        options.emit(SpoolEvent::LayerStored {
            index,
            diff_id: stored.diff_id.clone(),
            blob: Descriptor::new(
                MediaType::oci_layer(stored.compression),
                stored.digest.clone(),
                stored.size,
            ),
        });
    }
    out.files.insert(path, stored);
}

/// Whether an entry's first block is a tar header (a `ustar` magic) or the zero block of an
/// empty tar, in an entry sized like a tar (whole 512-byte blocks, at least the end marker).
fn looks_like_tar(head: &[u8], size: u64) -> bool {
    if size < 1024 || !size.is_multiple_of(512) || head.len() < 512 {
        return false;
    }
    head.get(257..262) == Some(b"ustar".as_slice()) || head.iter().all(|&b| b == 0)
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
pub(super) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading input", e)),
        }
    }
    Ok(filled)
}

/// Copy exactly `size` bytes of an entry through one bounded buffer, calling `tick` with the
/// bytes copied about every [`PROGRESS_STEP`]; fewer bytes means the tar was cut short.
fn pump<R: Read, W: io::Write>(
    r: &mut R,
    w: &mut W,
    path: &str,
    size: u64,
    tick: &mut impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; codec::COPY_BUF];
    let mut total = 0u64;
    let mut reported = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(truncated_or(Error::io("reading input", e), path)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| Error::io("writing output", e).with_path(path))?;
        total += n as u64;
        if total - reported >= PROGRESS_STEP {
            reported = total;
            tick(total)?;
        }
    }
    if total != size {
        return Err(truncated(path, total, size));
    }
    if total != reported {
        tick(total)?;
    }
    Ok(())
}

/// Copy exactly `size` bytes of an entry; fewer means the tar was cut short.
fn copy_entry<R: Read, W: io::Write>(
    entry: &mut R,
    w: &mut W,
    path: &str,
    size: u64,
) -> Result<()> {
    let copied = codec::copy(entry, w).map_err(|e| truncated_or(e, path))?;
    if copied != size {
        return Err(truncated(path, copied, size));
    }
    Ok(())
}

fn drain<R: Read>(entry: &mut R, path: &str, size: u64) -> Result<()> {
    copy_entry(entry, &mut io::sink(), path, size)
}

fn read_small<R: Read>(entry: &mut R, path: &str, size: u64) -> Result<Vec<u8>> {
    if size > MAX_JSON_SIZE as u64 {
        return Err(Error::invalid(format!(
            "archive file {path:?} is {size} bytes, over the {MAX_JSON_SIZE}-byte limit"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| truncated_or(Error::io("reading archive entry", e), path))?;
    if bytes.len() as u64 != size {
        return Err(truncated(path, bytes.len() as u64, size));
    }
    Ok(bytes)
}

pub(super) fn truncated(path: &str, got: u64, want: u64) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("truncated archive: entry {path:?} has {got} of {want} bytes"),
    )
}

pub(super) fn truncated_or(e: Error, path: &str) -> Error {
    if e.is_corrupt() {
        Error::new(
            ErrorKind::Corrupt,
            format!("truncated archive at entry {path:?}: {e}"),
        )
    } else {
        e
    }
}
