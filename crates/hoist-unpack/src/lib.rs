//! Whiteout-correct, root-confined, streaming extraction of image layers into a root filesystem.
//!
//! `hoist-unpack` turns container image layers into a directory tree, the way a sandbox or VM
//! builder needs it. It builds on `hoist-oci` (digests, configs, compression detection) and knows
//! nothing about registries or the Docker daemon: the CLI feeds it a blob stream from
//! `hoist-registry` or a layer file from an OCI layout, and this crate does the rest.
//!
//! The main types:
//!
//! - [`Unpacker`] — a cheap-to-clone handle made by [`Unpacker::builder`]. Its
//!   [`apply_layer`](Unpacker::apply_layer) takes any [`std::io::Read`] of a layer (gzip, zstd or
//!   plain tar, detected by magic bytes), verifies the compressed digest and the uncompressed
//!   diff_id given in [`LayerInfo`], and applies the OCI layer rules;
//!   [`unpack_layers`](Unpacker::unpack_layers) applies a whole image's layers in order against
//!   its config, and [`unpack_image`](Unpacker::unpack_image) does so for an image read from an
//!   OCI image layout (`hoist_oci::layout::Layout::image`).
//! - [`LayerStats`] / [`Stats`] — what was done: entries by type, bytes, skipped devices and
//!   xattrs, the digests that were computed.
//! - [`Limits`] — caps on bytes written, entries, and the metadata flattening holds in
//!   memory, against decompression bombs.
//! - [`Unpacker::flatten_layers`] / [`Unpacker::flatten_image`] — the same layers merged into
//!   one tar of the root filesystem instead of a directory (as `crane export` writes it), for
//!   `mke2fs -d`, `sqfstar` or `docker import`; each layer a [`FlattenLayer`] read twice, the
//!   result counted in [`FlattenStats`]. See [`flatten`].
//! - [`write_runtime_config`] / [`RuntimeMetadata`] — the image's Entrypoint, Cmd, Env,
//!   WorkingDir, User and ExposedPorts as JSON next to the rootfs.
//! - [`remove_root`] — delete a root after a failed unpack; [`empty_root`] — empty a root that
//!   existed, empty, before it.
//! - [`Error`] — one opaque error with an [`ErrorKind`]; hostile input names the entry.
//!
//! How it works. Decompression runs on its own thread and hands fixed-size chunks to the
//! filesystem side through a bounded channel, so memory does not grow with the layer. Entries
//! are parsed with the `tar` crate but never extracted by it: every path is resolved inside the
//! root one component at a time with `O_NOFOLLOW`, a symlink in a parent position is resolved as
//! if the root were `/`, and every change is an `*at` call on a directory fd with a final name
//! that is never followed (no-follow chown and utimes; chmod only on fds we opened ourselves).
//! Paths with `..` components and absolute paths are refused with an error naming the entry.
//! One resolution follows at most 40 symlinks and steps through at most 4096 components, so
//! hostile symlink chains cost bounded work per entry.
//! A small guard under the tar parser follows the block structure (reading sizes exactly as
//! the parser does, and refusing a size it cannot read) and refuses GNU long names/links and
//! PAX headers over 1 MiB before the parser would buffer them, so memory stays bounded even
//! for hostile metadata. Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) only ever
//! remove what lower layers put there: the applier remembers which paths the current layer
//! wrote (where they physically landed, once each, however many symlinks they were written
//! through), so the result does not depend on the order of entries in the tar.
//!
//! What it does not do: it does not fetch anything, it does not keep a cache of layers, and it
//! does not make a half-applied root trustworthy. When a digest check fails (the compressed
//! digest is checked when the blob has been read to its very end, after the tar's end-of-archive
//! marker; the diff_id after the tar stream ends) the entries already applied stay on disk and
//! the error says the rootfs is not trusted; the caller deletes the directory, or empties one
//! that was empty before ([`remove_root`] and [`empty_root`] do so whatever modes the layers
//! left and however deep they went). A file being written when an error strikes is removed,
//! never left looking complete.
//!
//! # Example
//!
//! ```
//! use hoist_unpack::{LayerInfo, Unpacker};
//! use hoist_oci::Digest;
//!
//! // A small layer, built in memory.
//! let mut builder = tar::Builder::new(Vec::new());
//! let mut header = tar::Header::new_gnu();
//! header.set_size(5);
//! header.set_mode(0o644);
//! header.set_uid(0);
//! header.set_gid(0);
//! header.set_mtime(1_700_000_000);
//! header.set_entry_type(tar::EntryType::Regular);
//! builder.append_data(&mut header, "etc/motd", &b"hello"[..])?;
//! let layer = builder.into_inner()?;
//!
//! let root = tempfile::tempdir()?;
//! let unpacker = Unpacker::builder().rootless(true).build()?;
//! let info = LayerInfo { digest: None, diff_id: Some(Digest::sha256_of(&layer)) };
//! let stats = unpacker.apply_layer(root.path(), &layer[..], &info)?;
//! assert_eq!(stats.files, 1);
//! assert_eq!(std::fs::read(root.path().join("etc/motd"))?, b"hello");
//!
//! // A layer that tries to climb out of the root is refused, naming the entry.
//! let mut evil = tar::Builder::new(Vec::new());
//! let mut header = tar::Header::new_gnu();
//! header.set_size(1);
//! header.set_entry_type(tar::EntryType::Regular);
//! header.set_mode(0o644);
//! header.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"../escape");
//! header.set_cksum();
//! evil.append(&header, &b"x"[..])?;
//! let err = unpacker
//!     .apply_layer(root.path(), &evil.into_inner()?[..], &LayerInfo::default())
//!     .unwrap_err();
//! assert!(err.is_invalid_layer());
//! assert_eq!(err.entry(), Some(std::path::Path::new("../escape")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The common job, a root filesystem from an image in an OCI layout (as `hoist-oci` or
//! `skopeo copy ... oci:DIR:TAG` writes it), with caps against decompression bombs and the
//! runtime metadata a VM or sandbox builder boots with. Unpacking is blocking work: from async
//! code, run it in `tokio::task::spawn_blocking` (an [`Unpacker`] is `Send + Sync + Clone`).
//!
//! ```
//! use hoist_oci::Layout;
//! use hoist_unpack::{Limits, Unpacker};
//! # let tmp = tempfile::tempdir()?;
//! # let layout_dir = tmp.path().join("layout");
//! # let spec = hoist_testkit::ImageSpec::uniform(2, 4096, hoist_oci::Compression::Gzip, 7);
//! # hoist_testkit::write_oci_layout(&layout_dir, "v1", &spec).map_err(|e| format!("{e:#}"))?;
//! # let root = tmp.path().join("rootfs");
//! # let runtime_json = tmp.path().join("runtime.json");
//!
//! let layout = Layout::open(&layout_dir)?;
//! // The image tagged v1; for a multi-platform index, the entry for this host's platform.
//! let image = layout.image(Some("v1"), None)?;
//! let unpacker = Unpacker::builder()
//!     .limits(Limits::new().max_bytes(8 << 30).max_entries(1_000_000))
//!     .build()?;
//! let stats = match unpacker.unpack_image(&layout, &image, &root) {
//!     Ok(stats) => stats,
//!     Err(err) => {
//!         // A failed unpack leaves a root that must not be trusted: delete it.
//!         hoist_unpack::remove_root(&root)?;
//!         return Err(err.into());
//!     }
//! };
//! assert_eq!(stats.layers.len(), 2);
//! hoist_unpack::write_runtime_config(image.config.value(), &runtime_json)?;
//! # assert!(runtime_json.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod apply;
mod error;
pub mod flatten;
mod guard;
mod image;
mod path;
mod path_table;
mod root;
mod runtime;
mod stop;
mod stream;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use hoist_oci::{Algorithm, Compression, Digest, ImageConfig};

/// The `hoist-oci` this crate was built with, so the types its API takes and returns
/// ([`Digest`], [`ImageConfig`], `hoist_oci::layout::Layout` and `Image`) are the ones a caller
/// names, without a direct dependency that could resolve to another version.
pub use hoist_oci;

pub use error::{Error, ErrorKind, Result};
pub use flatten::{FlattenLayer, FlattenPass, FlattenStats};
pub use image::{check_layer_count, open_layer};
pub use root::{empty_root, remove_root};
pub use runtime::{RuntimeMetadata, write_runtime_config};

use apply::{Applier, Budget, Options};
use root::Root;

/// Caps against decompression bombs. The byte and entry caps are `None` (unlimited) unless
/// set; the cap on the metadata flattening holds in memory is on by default
/// ([`Limits::DEFAULT_MAX_METADATA_BYTES`]).
///
/// More caps may come, so this is built from [`Limits::new`] (or `default()`) and its setters,
/// not spelled as a struct literal:
///
/// ```
/// let limits = hoist_unpack::Limits::new().max_bytes(8 << 30).max_entries(1_000_000);
/// assert_eq!(limits.max_bytes, Some(8 << 30));
/// assert_eq!(
///     limits.max_metadata_bytes,
///     Some(hoist_unpack::Limits::DEFAULT_MAX_METADATA_BYTES)
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most content bytes (over one layer, or over all layers of an image): what files are
    /// written with, and the data entries carry without writing it (a whiteout's, a
    /// directory's). Past a layer's tar end, at most this many bytes (or 1 MiB, if more: tar
    /// writers pad the end) are read.
    pub max_bytes: Option<u64>,
    /// Most entries (over one layer, or over all layers of an image): tar entries, and the
    /// directories made for their paths (a missing parent, or a symlink's target).
    pub max_entries: Option<u64>,
    /// Most bytes of names, symlink targets, owner and group names and extended attributes
    /// that [flattening](crate::flatten) holds in memory at once, as its model of the merged
    /// root holds them (what a later entry replaced or removed no longer counts). One entry
    /// may carry a MiB of each, so a small, highly compressible layer could otherwise make
    /// memory grow by a MiB or more per entry. On by default, at
    /// [`Limits::DEFAULT_MAX_METADATA_BYTES`]; `None` lifts it.
    ///
    /// An unpack to a directory holds no link target or attribute past its entry (they go
    /// straight to the filesystem), and remembers only names the filesystem took, so this cap
    /// is flattening's alone; the number of paths either holds is bounded by `max_entries`.
    pub max_metadata_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

impl Limits {
    /// The default for [`max_metadata_bytes`](Limits::max_metadata_bytes): 256 MiB, room for
    /// the names and attributes of millions of paths (real images use tens of bytes a path).
    pub const DEFAULT_MAX_METADATA_BYTES: u64 = 256 << 20;

    /// No limits on bytes or entries; the default cap on metadata held in memory.
    pub const fn new() -> Self {
        Limits {
            max_bytes: None,
            max_entries: None,
            max_metadata_bytes: Some(Limits::DEFAULT_MAX_METADATA_BYTES),
        }
    }

    /// Write at most `bytes` of file content (at least 1: [`UnpackerBuilder::build`] refuses 0).
    #[must_use]
    pub const fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Process at most `entries` tar entries (at least 1: [`UnpackerBuilder::build`] refuses 0).
    #[must_use]
    pub const fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = Some(entries);
        self
    }

    /// Hold at most `bytes` of names, link targets and attributes while flattening (at least
    /// 1: [`UnpackerBuilder::build`] refuses 0); see
    /// [`max_metadata_bytes`](Limits::max_metadata_bytes).
    #[must_use]
    pub const fn max_metadata_bytes(mut self, bytes: u64) -> Self {
        self.max_metadata_bytes = Some(bytes);
        self
    }
}

/// What is known in advance about a layer, to verify it against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerInfo {
    /// The digest of the layer blob as stored (compressed), from the manifest.
    pub digest: Option<Digest>,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<Digest>,
}

/// What applying one layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// The compression detected.
    pub compression: Option<Compression>,
    /// The digest of the blob as read (compressed).
    pub digest: Option<Digest>,
    /// Bytes of the blob as read.
    pub compressed_size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Option<Digest>,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Tar entries processed (not counting PAX/GNU meta headers).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directory entries applied.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Fifos created.
    pub fifos: u64,
    /// Char/block devices created.
    pub devices: u64,
    /// Char/block devices skipped (not privileged, or rootless).
    pub devices_skipped: u64,
    /// Whiteout entries met.
    pub whiteouts: u64,
    /// Opaque markers met.
    pub opaques: u64,
    /// Extended attributes set.
    pub xattrs_set: u64,
    /// Extended attributes not set (not permitted, unsupported, `trusted.overlay.*`).
    pub xattrs_skipped: u64,
    /// File content bytes written.
    pub bytes_written: u64,
}

/// What unpacking a whole image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Per layer, base first.
    pub layers: Vec<LayerStats>,
}

impl Stats {
    /// File content bytes written over all layers.
    pub fn bytes_written(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes_written).sum()
    }

    /// Devices skipped over all layers.
    pub fn devices_skipped(&self) -> u64 {
        self.layers.iter().map(|l| l.devices_skipped).sum()
    }
}

/// Builds an [`Unpacker`].
#[derive(Debug, Clone)]
#[must_use]
pub struct UnpackerBuilder {
    rootless: Option<bool>,
    limits: Limits,
    xattrs: bool,
    stop: stop::Stop,
}

impl Default for UnpackerBuilder {
    fn default() -> Self {
        Unpacker::builder()
    }
}

impl UnpackerBuilder {
    /// Rootless mode: keep the caller's ids (no chown) and skip char/block devices. Defaults
    /// to `true` unless running as root.
    ///
    /// Without root's permission override, a directory an earlier layer left without owner
    /// read, write or search permission (`0555`, `0311`, `0000`...) is opened up while a later
    /// layer goes through it or changes it, and gets its mode back once that layer is applied.
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = Some(rootless);
        self
    }

    /// Caps on bytes, entries, and the metadata flattening holds in memory ([`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Apply PAX `SCHILY.xattr.*` records (default on). `trusted.overlay.*` is never written.
    pub fn xattrs(mut self, xattrs: bool) -> Self {
        self.xattrs = xattrs;
        self
    }

    /// Stop as soon as `stop` returns true (a Ctrl-C the caller caught): it is asked before
    /// every tar entry, before every 512 KiB of the decompressed layer however it is read (a
    /// file's data, data the tar parser skips, what follows the tar's end), and while a
    /// whiteout, an opaque directory or a replaced entry removes a tree, so neither one huge
    /// entry nor a layer that reads nothing for a long time keeps it waiting. The unpack
    /// (or flatten) then fails with [`ErrorKind::Stopped`], the root partly applied; a file
    /// being written is removed. A read of the caller's own reader that blocks is waited for.
    pub fn stop_when(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = stop::Stop::new(stop);
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `rootless(false)` is asked of a process that is not
    /// root, or a limit is 0 (it would refuse every layer).
    pub fn build(self) -> Result<Unpacker> {
        let is_root = rustix::process::geteuid().is_root();
        let rootless = self.rootless.unwrap_or(!is_root);
        if !rootless && !is_root {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "non-rootless unpacking needs root (chown, devices); use rootless(true)",
            ));
        }
        let limits = self.limits;
        if [
            limits.max_bytes,
            limits.max_entries,
            limits.max_metadata_bytes,
        ]
        .contains(&Some(0))
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a limit of 0 would refuse every layer",
            ));
        }
        Ok(Unpacker {
            opts: Arc::new(Options {
                chown: !rootless,
                devices: !rootless,
                xattrs: self.xattrs,
                unprivileged: !is_root,
                limits: self.limits,
                stop: self.stop,
            }),
        })
    }
}

/// Applies layers to root directories. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Unpacker {
    opts: Arc<Options>,
}

impl Unpacker {
    /// Start building an unpacker.
    pub fn builder() -> UnpackerBuilder {
        UnpackerBuilder {
            rootless: None,
            limits: Limits::default(),
            xattrs: true,
            stop: stop::Stop::default(),
        }
    }

    /// Apply one layer read from `reader` (gzip, zstd or plain tar) onto `root` (created if
    /// missing), verifying what `info` promises. The reader is read to its very end.
    ///
    /// # Errors
    /// On any error the root is partly applied and must not be trusted. The layer is at fault
    /// ([`Error::is_bad_image`]) for [`ErrorKind::InvalidLayer`] (a hostile or malformed entry,
    /// named by [`Error::entry`]), [`ErrorKind::Corrupt`] (a truncated or broken tar, gzip or
    /// zstd stream, a malformed header field), [`ErrorKind::DigestMismatch`] (the blob or the
    /// uncompressed tar did not hash to `info`'s digests) and [`ErrorKind::LimitExceeded`].
    /// [`ErrorKind::Io`] when the root cannot be opened or written, or `reader` fails with an
    /// I/O error of its own (one of kind `UnexpectedEof` or `InvalidData` counts as a
    /// truncated or corrupt layer); [`ErrorKind::Stopped`] when
    /// [`stop_when`](UnpackerBuilder::stop_when) asked.
    pub fn apply_layer<R: Read + Send>(
        &self,
        root: &Path,
        reader: R,
        info: &LayerInfo,
    ) -> Result<LayerStats> {
        let root = Root::open(root)
            .map_err(|e| Error::io(format!("opening the root {}", root.display()), e))?;
        let mut budget = Budget::default();
        let mut buf = Vec::new();
        self.apply_one(&root, reader, info, &mut budget, &mut buf)
    }

    /// Apply the layer file at `layer` (see [`apply_layer`](Unpacker::apply_layer)).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be opened; then as
    /// [`apply_layer`](Unpacker::apply_layer).
    #[allow(clippy::disallowed_methods)] // the layer file is a host path, not inside the root
    pub fn apply_layer_file(
        &self,
        root: &Path,
        layer: &Path,
        info: &LayerInfo,
    ) -> Result<LayerStats> {
        let file = std::fs::File::open(layer)
            .map_err(|e| Error::io(format!("opening the layer {}", layer.display()), e))?;
        self.apply_layer(root, file, info)
    }

    /// Apply an image's layers in order onto `root`: `layers` yields each layer's reader and
    /// (optionally) its blob digest from the manifest; the diff_ids come from `config`. Limits
    /// count over the whole image.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidImage`] when `layers` yields another number of layers than
    /// `config` has diff_ids (checked before a layer too many is read, and after the last
    /// one: call [`check_layer_count`] first to fail before anything is applied); otherwise as
    /// [`apply_layer`](Unpacker::apply_layer), the error naming the layer's digest when it
    /// was given. On any error the root must not be trusted.
    pub fn unpack_layers<I, R>(&self, root: &Path, config: &ImageConfig, layers: I) -> Result<Stats>
    where
        I: IntoIterator<Item = (R, Option<Digest>)>,
        R: Read + Send,
    {
        let root_dir = Root::open(root)
            .map_err(|e| Error::io(format!("opening the root {}", root.display()), e))?;
        let diff_ids = &config.rootfs.diff_ids;
        let mut budget = Budget::default();
        let mut buf = Vec::new();
        let mut stats = Stats::default();
        for (index, (reader, digest)) in layers.into_iter().enumerate() {
            let Some(diff_id) = diff_ids.get(index) else {
                return Err(Error::new(
                    ErrorKind::InvalidImage,
                    format!(
                        "the image has more layers than its config's {} diff_ids",
                        diff_ids.len()
                    ),
                ));
            };
            let info = LayerInfo {
                digest,
                diff_id: Some(diff_id.clone()),
            };
            let layer = self.apply_one(&root_dir, reader, &info, &mut budget, &mut buf)?;
            stats.layers.push(layer);
        }
        if stats.layers.len() != diff_ids.len() {
            return Err(Error::new(
                ErrorKind::InvalidImage,
                format!(
                    "the image has {} layers but its config lists {} diff_ids",
                    stats.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        Ok(stats)
    }

    fn apply_one<R: Read + Send>(
        &self,
        root: &Root,
        reader: R,
        info: &LayerInfo,
        budget: &mut Budget,
        buf: &mut Vec<u8>,
    ) -> Result<LayerStats> {
        let result = through_layer_stream(reader, info, &self.opts, |chunks| {
            self.apply_entries(root, chunks, budget, buf)
        });
        result.inspect_err(|e| {
            tracing::debug!(root = %root.path().display(), error = %e, "layer failed");
        })
    }

    fn apply_entries(
        &self,
        root: &Root,
        chunks: &mut stream::ChunkReader,
        budget: &mut Budget,
        buf: &mut Vec<u8>,
    ) -> Result<LayerStats> {
        let mut applier = Applier::new(root, &self.opts, budget, buf);
        let mut archive = tar::Archive::new(guard::TarGuard::new(chunks));
        let entries = archive
            .entries()
            .map_err(|e| Error::tar("reading the layer tar", e))?;
        for entry in entries {
            self.opts.stop.check()?;
            let mut entry = entry.map_err(|e| Error::tar("reading the layer tar", e))?;
            applier
                .entry(&mut entry)
                .map_err(|e| self.opts.stop.explain(e))?;
        }
        applier.finish()?;
        let stats = applier.stats;
        if stats.devices_skipped > 0 {
            tracing::warn!(
                skipped = stats.devices_skipped,
                "skipped device nodes (rootless or unprivileged unpacking cannot create them)"
            );
        }
        if stats.xattrs_skipped > 0 {
            tracing::info!(
                skipped = stats.xattrs_skipped,
                "extended attributes not applied (not permitted, unsupported, or trusted.overlay.*)"
            );
        }
        Ok(stats)
    }
}

/// Run `body` on the tar stream of the layer `reader` yields (decompressed, hashed on a
/// producer thread), then read the stream to its end and check the layer's digest and
/// `diff_id` ([`finish_stream`]). An error names the layer's digest when `info` has one. The
/// stream honours the limits and the stop of `opts`.
pub(crate) fn through_layer_stream<R: Read + Send>(
    reader: R,
    info: &LayerInfo,
    opts: &Options,
    body: impl FnOnce(&mut stream::ChunkReader) -> Result<LayerStats>,
) -> Result<LayerStats> {
    let limits = &opts.limits;
    // What follows the tar's end is decompressed and hashed all the same: at most a byte
    // limit's worth is read (a decompression bomb no limit would bound otherwise), and never
    // less than 1 MiB, since tar writers pad the end to their record size (GNU tar's: 10 KiB).
    let trailing_limit = limits.max_bytes.map(|max| max.max(1 << 20));
    let algorithm = info
        .diff_id
        .as_ref()
        .map_or(Algorithm::Sha256, Digest::algorithm);
    let (mut chunks, tx, empties) = stream::pipeline(algorithm, opts.stop.clone());
    let expected = info.digest.as_ref();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || stream::produce(reader, expected, tx, empties));
        let result = body(&mut chunks);
        // Dropping the reader hangs up on the producer if the body stopped early.
        result.and_then(|stats| finish_stream(chunks, info, stats, trailing_limit))
    });
    result.map_err(|e| match &info.digest {
        Some(d) if e.digest().is_none() => e.with_digest(d),
        _ => e,
    })
}

pub(crate) fn finish_stream(
    mut chunks: stream::ChunkReader,
    info: &LayerInfo,
    mut stats: LayerStats,
    trailing_limit: Option<u64>,
) -> Result<LayerStats> {
    let read = match trailing_limit {
        Some(max) => std::io::copy(
            &mut (&mut chunks).take(max.saturating_add(1)),
            &mut std::io::sink(),
        ),
        None => std::io::copy(&mut chunks, &mut std::io::sink()),
    }
    .map_err(|e| Error::io("reading the end of the layer", e))?;
    if let Some(max) = trailing_limit
        && read > max
    {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("more than {max} bytes after the end of the layer's tar (limit)"),
        ));
    }
    let produced = chunks
        .produced()
        .cloned()
        .ok_or_else(|| Error::new(ErrorKind::Io, "layer stream ended without a verdict"))?;
    let (diff_id, size) = chunks
        .finish_uncompressed()
        .ok_or_else(|| Error::new(ErrorKind::Io, "layer stream hashed twice"))?;
    if let Some(expected) = &info.diff_id
        && *expected != diff_id
    {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!(
                "diff_id mismatch: the uncompressed layer hashed to {diff_id}, the config says {expected}; the root filesystem is not trusted"
            ),
        ));
    }
    stats.compression = Some(produced.compression);
    stats.digest = Some(produced.digest);
    stats.compressed_size = produced.size;
    stats.diff_id = Some(diff_id);
    stats.uncompressed_size = size;
    Ok(stats)
}

#[cfg(test)]
mod public_api {
    //! What a downstream crate relies on: every public type is `Debug` and `Send`, and an
    //! `Unpacker` can be cloned into `spawn_blocking` tasks.
    use super::*;

    fn debug_send<T: std::fmt::Debug + Send>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn public_types_are_debug_and_send() {
        debug_send::<Error>();
        debug_send::<ErrorKind>();
        debug_send::<FlattenLayer<'static>>();
        debug_send::<FlattenStats>();
        debug_send::<LayerInfo>();
        debug_send::<LayerStats>();
        debug_send::<Limits>();
        debug_send::<RuntimeMetadata>();
        debug_send::<Stats>();
        debug_send::<Unpacker>();
        debug_send::<UnpackerBuilder>();
        shared::<Unpacker>();
        shared::<UnpackerBuilder>();
        fn error<E: std::error::Error + Send + Sync + 'static>() {}
        error::<Error>();
    }

    #[test]
    fn limits_are_built_with_setters() {
        assert_eq!(Limits::new(), Limits::default());
        let limits = Limits::new().max_bytes(10).max_entries(3);
        assert_eq!((limits.max_bytes, limits.max_entries), (Some(10), Some(3)));
        assert!(Unpacker::builder().limits(limits).build().is_ok());
        // The metadata cap is on unless lifted.
        assert_eq!(
            Limits::new().max_metadata_bytes,
            Some(Limits::DEFAULT_MAX_METADATA_BYTES)
        );
        let lifted = Limits {
            max_metadata_bytes: None,
            ..Limits::new()
        };
        assert!(Unpacker::builder().limits(lifted).build().is_ok());
        for zero in [
            Limits::new().max_entries(0),
            Limits::new().max_bytes(0),
            Limits::new().max_metadata_bytes(0),
        ] {
            assert!(Unpacker::builder().limits(zero).build().is_err());
        }
    }
}
