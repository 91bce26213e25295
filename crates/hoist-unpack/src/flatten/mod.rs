//! Flattening: an image's layers merged into one tar of its root filesystem (as `crane export`
//! or `docker export` write it), without unpacking anything to disk.
//!
//! A flattened tar keeps what an unprivileged unpack cannot: owners, device nodes, setuid
//! bits, all as the layers' headers say. It feeds `mke2fs -d FILE.tar` (e2fsprogs 1.47.1 or
//! later), `sqfstar`, `virt-make-fs` or `docker import`.
//!
//! Two passes over the layers, so each layer must be readable twice ([`FlattenLayer`] opens
//! it anew for each pass, and [`FlattenLayer::per_pass`] says which):
//!
//! 1. `tree`: every layer's headers, bottom layer first, are replayed onto an in-memory model
//!    of the root with the applier's rules (whiteouts, opaque directories, replacement,
//!    symlinks in parent positions followed inside the root, implicit parents). What survives
//!    is the merged tree; for each regular file, the layer and entry its data comes from.
//! 2. `emit`: the layers stream again, bottom first, and each surviving file's data is
//!    copied from its entry straight into the output, through a fixed-size buffer.
//!
//! Both passes decompress and verify every layer as [`crate::Unpacker::apply_layer`] does
//! (the blob digest and the diff_id given in [`LayerInfo`]), and honour the unpacker's
//! [`Limits`](crate::Limits) (counted once, in pass 1) and `stop_when`.
//!
//! The output:
//!
//! - paths are relative and normalised, without a `./` prefix or a trailing `/`, never
//!   absolute and never with a `..` component; the root directory itself has no entry;
//! - every directory comes before what is in it, and a hard link after the name it links to,
//!   which is in the output; names whose only link was replaced or whited out upstream keep
//!   their content (the first surviving name carries the data);
//! - whiteouts and opaque markers never appear; symlinks are entries, never followed;
//! - kept: type, mode (with setuid, setgid and sticky bits), uid, gid, user and group names,
//!   mtime (with nanoseconds, in a PAX record), device numbers, and extended attributes
//!   (`SCHILY.xattr.*` PAX records) unless the unpacker was built with `xattrs(false)`;
//!   dropped: atime and ctime, `trusted.overlay.*` attributes (as the unpacker drops them),
//!   other PAX records, and GNU sparse maps (a sparse file is written whole);
//! - a directory made implicitly as a parent (no layer has an entry for it) is written with
//!   mode `0755`, owner 0:0 and mtime 0.
//!
//! Memory grows with the number of paths in the image (their names and metadata), never with
//! the size of a file or a layer, nor with entries a later entry replaced or removed. The
//! bytes of names, symlink targets, owner names and extended attributes held at once are
//! capped by [`Limits::max_metadata_bytes`](crate::Limits::max_metadata_bytes), on by
//! default; the number of paths by `max_entries`.
//!
//! What it does not do: it writes to any [`Write`], and on an error the output holds a partial
//! tar; the caller writes to a temporary file and renames it only on success.
//!
//! # Example
//!
//! ```
//! use hoist_unpack::{FlattenLayer, LayerInfo, Unpacker};
//!
//! let layer = |entries: &[(&str, &[u8])]| -> std::io::Result<Vec<u8>> {
//!     let mut builder = tar::Builder::new(Vec::new());
//!     for (path, data) in entries {
//!         let mut header = tar::Header::new_gnu();
//!         header.set_size(data.len() as u64);
//!         header.set_mode(0o644);
//!         header.set_uid(0);
//!         header.set_gid(0);
//!         header.set_mtime(1_700_000_000);
//!         builder.append_data(&mut header, path, *data)?;
//!     }
//!     builder.into_inner()
//! };
//! let base = layer(&[("etc/motd", b"hello"), ("etc/old", b"x")])?;
//! let top = layer(&[("etc/.wh.old", b""), ("etc/motd", b"bye")])?;
//! let layers = [
//!     FlattenLayer::bytes(&base, LayerInfo::default()),
//!     FlattenLayer::bytes(&top, LayerInfo::default()),
//! ];
//! let mut flat = Vec::new();
//! let stats = Unpacker::builder().rootless(true).build()?.flatten_layers(&layers, &mut flat)?;
//! assert_eq!((stats.dirs, stats.files), (1, 1));
//!
//! let mut archive = tar::Archive::new(&flat[..]);
//! let paths: Vec<String> = archive
//!     .entries()?
//!     .map(|e| Ok(e?.path()?.display().to_string()))
//!     .collect::<std::io::Result<_>>()?;
//! assert_eq!(paths, ["etc", "etc/motd"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Read, Write};
use std::path::PathBuf;

use hoist_oci::layout::{Image, Layout};
use tar::EntryType;

use crate::apply::meta::{device_numbers, read_meta};
use crate::apply::{Budget, Options, hardlink_target};
use crate::error::{Error, ErrorKind, Result};
use crate::path::{self, EntryName};
use crate::{LayerInfo, LayerStats, Unpacker, guard, stream};

mod emit;
mod tar_out;
mod tree;

use emit::{Emitter, Plan};
use tree::{Entry, Kind, Tree};

/// Opens a layer's blob (compressed or not) from its start, once per pass.
type Opener<'a> =
    dyn Fn(FlattenPass) -> std::io::Result<Box<dyn Read + Send + 'a>> + Send + Sync + 'a;

/// Which pass opens a layer: every layer is opened for [`FlattenPass::Tree`], bottom first,
/// before any is opened for [`FlattenPass::Emit`]. A caller showing progress tells them apart
/// with [`FlattenLayer::per_pass`]: pass 1 reads every layer whole and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlattenPass {
    /// Pass 1: the layer's headers are replayed onto the merged tree; nothing is written yet.
    Tree,
    /// Pass 2: the layer is read again and the data of its surviving files written.
    Emit,
}

/// One layer of an image to flatten: a way to read it from its start (called once per pass)
/// and what it is verified against.
pub struct FlattenLayer<'a> {
    open: Box<Opener<'a>>,
    info: LayerInfo,
}

impl std::fmt::Debug for FlattenLayer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlattenLayer")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<'a> FlattenLayer<'a> {
    /// A layer `open` reads from its start (gzip, zstd or plain tar), each time it is called.
    pub fn new<F, R>(open: F, info: LayerInfo) -> Self
    where
        F: Fn() -> std::io::Result<R> + Send + Sync + 'a,
        R: Read + Send + 'a,
    {
        FlattenLayer::per_pass(move |_| open(), info)
    }

    /// A layer `open` reads from its start, told which pass it is read for (to count pass 1's
    /// reads as progress of its own, say).
    pub fn per_pass<F, R>(open: F, info: LayerInfo) -> Self
    where
        F: Fn(FlattenPass) -> std::io::Result<R> + Send + Sync + 'a,
        R: Read + Send + 'a,
    {
        FlattenLayer {
            open: Box::new(move |pass| {
                open(pass).map(|r| Box::new(r) as Box<dyn Read + Send + 'a>)
            }),
            info,
        }
    }

    /// A layer held in memory.
    pub fn bytes(data: &'a [u8], info: LayerInfo) -> Self {
        FlattenLayer::new(move || Ok(data), info)
    }

    /// A layer in the file at `path`.
    pub fn file(path: impl Into<PathBuf>, info: LayerInfo) -> FlattenLayer<'static> {
        let path = path.into();
        // A layer file of the caller's, not a path inside any root.
        #[allow(clippy::disallowed_methods)]
        FlattenLayer::new(move || std::fs::File::open(&path), info)
    }
}

/// What flattening wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlattenStats {
    /// Entries written (not counting PAX and GNU long-name headers).
    pub entries: u64,
    /// Regular files written with their data (under their first name).
    pub files: u64,
    /// Directories written.
    pub dirs: u64,
    /// Symlinks written.
    pub symlinks: u64,
    /// Hard links written.
    pub hardlinks: u64,
    /// Fifos and device nodes written.
    pub specials: u64,
    /// File content bytes written.
    pub bytes: u64,
    /// Bytes of the whole tar written.
    pub tar_bytes: u64,
    /// Extended attributes left out (`xattrs(false)`, `trusted.overlay.*`, names that are no
    /// UTF-8).
    pub xattrs_dropped: u64,
}

impl Unpacker {
    /// Write the merged root filesystem of `layers` (base first) to `out` as one tar. See the
    /// [module docs](crate::flatten) for what the tar holds and how.
    ///
    /// # Errors
    /// As [`apply_layer`](Unpacker::apply_layer) for a bad layer ([`ErrorKind::InvalidLayer`]
    /// naming the entry, [`ErrorKind::DigestMismatch`], [`ErrorKind::Corrupt`],
    /// [`ErrorKind::LimitExceeded`]), [`ErrorKind::Stopped`], and [`ErrorKind::Io`] when
    /// opening a layer or writing `out` fails. `out` then holds a partial tar.
    pub fn flatten_layers<W: Write>(
        &self,
        layers: &[FlattenLayer<'_>],
        out: W,
    ) -> Result<FlattenStats> {
        let mut tree = Tree::new();
        let mut budget = Budget::default();
        for (index, layer) in layers.iter().enumerate() {
            tree.start_layer(index);
            self.read_layer(layer, FlattenPass::Tree, |ordinal, entry| {
                model_entry(&self.opts, &mut tree, &mut budget, ordinal, entry)?;
                Ok(true)
            })?;
        }
        let plan = Plan::new(&tree, layers.len());
        let mut emitter = Emitter::new(&tree, &plan, out);
        for (index, layer) in layers.iter().enumerate() {
            let wanted = &plan.wanted[index];
            let mut next = 0;
            self.read_layer(layer, FlattenPass::Emit, |ordinal, entry| {
                let Some(&(at, inode)) = wanted.get(next) else {
                    return Ok(false);
                };
                if at != ordinal {
                    return Ok(true);
                }
                next += 1;
                let kind = crate::apply::entry_kind(entry.header(), &entry.path_bytes());
                if !is_regular(kind) {
                    return Err(emit::changed());
                }
                emitter.file(inode, entry)?;
                Ok(next < wanted.len())
            })?;
            if next < wanted.len() {
                return Err(emit::changed());
            }
        }
        emitter.finish()
    }

    /// [`flatten_layers`](Unpacker::flatten_layers) for `image` (read from `layout` with
    /// `Layout::image`), each layer verified against its manifest digest and the config's
    /// diff_id.
    ///
    /// # Errors
    /// As [`flatten_layers`](Unpacker::flatten_layers); [`ErrorKind::InvalidImage`] (naming
    /// the manifest's digest) when the manifest and the config disagree on the number of
    /// layers.
    pub fn flatten_image<W: Write>(
        &self,
        layout: &Layout,
        image: &Image,
        out: W,
    ) -> Result<FlattenStats> {
        let manifest = image.manifest.value();
        let config = image.config.value();
        crate::check_layer_count(manifest, config)
            .map_err(|e| e.with_manifest(&image.descriptor.digest))?;
        let layers: Vec<FlattenLayer<'_>> = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(desc, diff_id)| {
                let info = LayerInfo {
                    digest: Some(desc.digest.clone()),
                    diff_id: Some(diff_id.clone()),
                };
                FlattenLayer::new(
                    move || crate::open_layer(layout, desc).map_err(Error::into_io),
                    info,
                )
            })
            .collect();
        self.flatten_layers(&layers, out)
    }

    /// Stream one layer (decompressed and verified as [`Unpacker::apply_layer`] does) and hand
    /// each tar entry with its position to `each`, until it returns `false` or the tar ends;
    /// the rest of the stream is then read and the digests checked.
    fn read_layer<F>(&self, layer: &FlattenLayer<'_>, pass: FlattenPass, mut each: F) -> Result<()>
    where
        F: FnMut(
            u64,
            &mut tar::Entry<'_, guard::TarGuard<&mut stream::ChunkReader>>,
        ) -> Result<bool>,
    {
        let reader = (layer.open)(pass).map_err(|e| Error::io("opening a layer", e))?;
        crate::through_layer_stream(reader, &layer.info, &self.opts, |chunks| {
            let mut archive = tar::Archive::new(guard::TarGuard::new(chunks));
            let entries = archive
                .entries()
                .map_err(|e| Error::tar("reading the layer tar", e))?;
            for (ordinal, entry) in (0u64..).zip(entries) {
                self.opts.stop.check()?;
                let mut entry = entry.map_err(|e| Error::tar("reading the layer tar", e))?;
                if !each(ordinal, &mut entry).map_err(|e| self.opts.stop.explain(e))? {
                    break;
                }
            }
            Ok(LayerStats::default())
        })
        .map(drop)
    }
}

fn is_regular(kind: EntryType) -> bool {
    matches!(
        kind,
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
    )
}

/// Pass 1 for one entry: replay it onto the tree, as [`crate::apply`] applies it to a root.
fn model_entry<R: Read>(
    opts: &Options,
    tree: &mut Tree,
    budget: &mut Budget,
    ordinal: u64,
    entry: &mut tar::Entry<'_, R>,
) -> Result<()> {
    let raw = entry.path_bytes().into_owned();
    let shown = path::display(&raw).to_path_buf();
    let kind = crate::apply::entry_kind(entry.header(), &raw);
    if kind == EntryType::XGlobalHeader {
        return budget.charge_bytes(entry.size(), &opts.limits, &shown);
    }
    budget.charge_entries(1, &opts.limits, &shown)?;
    let name = path::classify(&raw).map_err(|why| Error::layer(&shown, why))?;
    // As the applier counts them: data no file keeps, and the directories made for paths.
    if !crate::apply::writes_data(&name, kind) {
        budget.charge_bytes(entry.size(), &opts.limits, &shown)?;
    }
    let made_before = tree.implicit_dirs;
    let result = model_name(opts, tree, budget, ordinal, entry, (kind, name, &shown));
    let made = tree.implicit_dirs.saturating_sub(made_before);
    budget.charge_entries(made, &opts.limits, &shown)?;
    result?;
    // Checked once the entry is in: one entry adds a bounded amount (its name, a target and
    // attributes of at most a MiB each, the parents it made), and the tree is dropped with
    // the error.
    match opts.limits.max_metadata_bytes {
        Some(max) if tree.held > max => Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "the merged tree would hold more than {max} bytes of names, link targets and \
                 attributes (limit)"
            ),
        )
        .with_entry(&shown)),
        _ => Ok(()),
    }
}

/// [`model_entry`] once the entry is classified and counted.
fn model_name<R: Read>(
    opts: &Options,
    tree: &mut Tree,
    budget: &mut Budget,
    ordinal: u64,
    entry: &mut tar::Entry<'_, R>,
    (kind, name, shown): (EntryType, EntryName, &std::path::Path),
) -> Result<()> {
    let mut meta = read_meta(entry).map_err(|e| e.or_entry(shown))?;
    match name {
        EntryName::AufsMeta => Ok(()),
        EntryName::Root if kind.is_dir() => Ok(()),
        EntryName::Root => Err(Error::layer(shown, "a non-directory entry names the root")),
        EntryName::Whiteout { dir, name } => tree.whiteout(&dir, &name, shown),
        EntryName::Opaque(dir) => tree.opaque(&dir, shown),
        EntryName::Normal(path) => {
            meta.xattrs
                .retain(|(key, _)| opts.xattrs && !key.starts_with(b"trusted.overlay."));
            let at = Entry {
                ordinal,
                path: &path,
                shown,
                meta,
            };
            model_create(opts, tree, budget, entry, kind, at)
        }
    }
}

/// Pass 1 for an entry that creates something at `at.path`.
fn model_create<R: Read>(
    opts: &Options,
    tree: &mut Tree,
    budget: &mut Budget,
    entry: &tar::Entry<'_, R>,
    kind: EntryType,
    at: Entry<'_>,
) -> Result<()> {
    let shown = at.shown;
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let size = entry.size();
            if let Some(max) = opts.limits.max_bytes
                && budget.bytes.saturating_add(size) > max
            {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!("writing {size} more bytes would exceed the {max}-byte limit"),
                )
                .with_entry(shown));
            }
            budget.bytes = budget.bytes.saturating_add(size);
            tree.leaf(at, Kind::Regular(size))
        }
        EntryType::Symlink => match entry.link_name_bytes() {
            Some(target) if !target.is_empty() => {
                let target = target.into_owned();
                tree.leaf(at, Kind::Symlink(target))
            }
            _ => Err(Error::layer(shown, "symlink without a target")),
        },
        EntryType::Link => {
            let Some(target) = hardlink_target(entry, at.path, shown)? else {
                return Ok(());
            };
            let node = tree.link_target(&target, shown)?;
            tree.hardlink(at, node)
        }
        EntryType::Char | EntryType::Block => {
            let (major, minor) = device_numbers(entry.header(), shown)?;
            let kind = if kind == EntryType::Char {
                Kind::Char(major, minor)
            } else {
                Kind::Block(major, minor)
            };
            tree.leaf(at, kind)
        }
        EntryType::Fifo => tree.leaf(at, Kind::Fifo),
        EntryType::Directory => tree.dir(at),
        other => Err(Error::layer(
            shown,
            format!("unsupported tar entry type {:?}", other.as_byte() as char),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn layer(path: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(EntryType::Regular);
        builder
            .append_data(&mut header, path, &b"x"[..])
            .expect("append");
        builder.into_inner().expect("tar")
    }

    #[test]
    fn every_layer_is_opened_for_the_tree_before_any_is_opened_to_emit() {
        let tars = [layer("a"), layer("b")];
        let opened = Mutex::new(Vec::new());
        let layers: Vec<FlattenLayer<'_>> = tars
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let opened = &opened;
                FlattenLayer::per_pass(
                    move |pass| {
                        opened.lock().expect("lock").push((pass, i));
                        Ok(&data[..])
                    },
                    LayerInfo::default(),
                )
            })
            .collect();
        let unpacker = Unpacker::builder()
            .rootless(true)
            .build()
            .expect("unpacker");
        unpacker
            .flatten_layers(&layers, std::io::sink())
            .expect("flattened");
        drop(layers);
        assert_eq!(
            opened.into_inner().expect("lock"),
            [
                (FlattenPass::Tree, 0),
                (FlattenPass::Tree, 1),
                (FlattenPass::Emit, 0),
                (FlattenPass::Emit, 1)
            ]
        );
    }
}
