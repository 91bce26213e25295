//! Applying one layer's tar entries to a root, with the OCI whiteout rules.
//!
//! The applier keeps, for the current layer only, the set of paths this layer wrote (with their
//! ancestors). Whiteouts never remove those, and an opaque marker deletes everything under its
//! directory that is *not* in the set, at the moment the marker is met: entries written before
//! the marker are in the set and survive, entries after it are created into the cleared
//! directory. Either order gives the same tree. A marker under a symlink applies where the link
//! leads, where the layer's entries under it land too. Directory modes and mtimes are set when
//! the layer ends, so creating children does not disturb them.
//!
//! The set holds *physical* paths (every symlink resolved, see [`Written`]), one trie node per
//! distinct directory entry: however many symlink aliases a layer writes one deep path
//! through, the path is kept once, so the set grows with what the layer really creates, not
//! with the length of the names in the tar.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{Error, ErrorKind, Result};
use crate::path::{self, EntryName};
use crate::path_table::PathNode;
use crate::root::{self, OpenedUp, Root};
use crate::{LayerStats, Limits};

mod attrs;
pub(crate) mod meta;
mod whiteout;
mod written;

use meta::{Meta, device, read_meta};
use written::{Node, Written};

/// Options the applier needs (resolved from the builder).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Change ownership to the ids in the tar.
    pub chown: bool,
    /// Create char/block devices.
    pub devices: bool,
    /// Apply PAX xattrs.
    pub xattrs: bool,
    /// Running without root's permission override: directories lacking owner write/search
    /// permission are opened up while entries go in and restored when the layer ends.
    pub unprivileged: bool,
    /// Optional limits.
    pub limits: Limits,
    /// The caller's request to stop.
    pub stop: crate::stop::Stop,
}

/// Bytes and entries consumed so far, against the limits (shared across the layers of an image).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub bytes: u64,
    pub entries: u64,
}

impl Budget {
    /// Count `n` more entries made (tar entries, and the directories made for their paths)
    /// against `limits`; the error names the entry `shown`.
    pub(crate) fn charge_entries(&mut self, n: u64, limits: &Limits, shown: &Path) -> Result<()> {
        self.entries = self.entries.saturating_add(n);
        match limits.max_entries {
            Some(max) if self.entries > max => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "more than {max} entries (limit), counting directories made for their paths"
                ),
            )
            .with_entry(shown)),
            _ => Ok(()),
        }
    }

    /// Count `n` more bytes of content against `limits`: written to a file, or carried by an
    /// entry that writes none (decompressed all the same).
    pub(crate) fn charge_bytes(&mut self, n: u64, limits: &Limits, shown: &Path) -> Result<()> {
        self.bytes = self.bytes.saturating_add(n);
        match limits.max_bytes {
            Some(max) if self.bytes > max => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!("more than {max} bytes of content (limit)"),
            )
            .with_entry(shown)),
            _ => Ok(()),
        }
    }
}

/// Whether an entry named `name` of type `kind` writes its data into a file; the data of any
/// other is read past, but counts against the byte limit all the same.
pub(crate) fn writes_data(name: &EntryName, kind: EntryType) -> bool {
    matches!(name, EntryName::Normal(_))
        && matches!(
            kind,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        )
}

/// Applies the entries of one layer.
pub(crate) struct Applier<'a> {
    root: &'a Root,
    opts: &'a Options,
    budget: &'a mut Budget,
    buf: &'a mut Vec<u8>,
    written: Written,
    /// The layer's directory entries, by physical path (in `restore.paths`): mode and mtime to
    /// set at the end, the last entry for a directory winning, and when it was recorded
    /// (`events`).
    dirs: HashMap<PathNode, (u32, Timespec, u64)>,
    /// Directories this layer removed (replaced, or whited out), and when: a directory entry
    /// recorded before at or below one is not set at the end. One entry per removal, checked
    /// once at the end, so a layer that removes many directories pays no scan per removal.
    removed: HashMap<PathNode, u64>,
    /// Counts the records of `dirs` and `removed`, to order them.
    events: u64,
    /// The last parent directory resolved (tar entries come grouped by directory). Dropped
    /// whenever a directory or symlink is removed, since that may change what a path means.
    cache: Option<Rc<Parent>>,
    /// Directories opened up for an unprivileged unpack, to get their modes back at the end;
    /// its path table also keeps the paths of `dirs`.
    restore: OpenedUp,
    pub(crate) stats: LayerStats,
}

fn timespec(sec: i64, nsec: u32) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec.into(),
    }
}

fn times(ts: Timespec) -> Timestamps {
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

/// A resolved parent directory of the layer's entries.
struct Parent {
    /// The path the layer named it by.
    logical: PathBuf,
    fd: OwnedFd,
    /// Its node in the written set.
    node: Node,
    /// Where it really is (see [`Resolved::physical`](crate::root::Resolved::physical)).
    physical: Vec<OsString>,
}

/// Map an errno met while resolving a parent into an error naming the entry.
pub(crate) fn resolve_error(entry: &Path, errno: Errno) -> Error {
    match errno {
        Errno::NOTDIR => Error::layer(entry, "a parent component is not a directory"),
        Errno::LOOP => Error::layer(
            entry,
            format!(
                "too many symlinks while resolving a parent (at most {} symlinks and {} path components per path)",
                root::MAX_SYMLINK_HOPS,
                root::MAX_STEPS
            ),
        ),
        Errno::NAMETOOLONG => Error::layer(entry, "path too long after resolving symlinks"),
        e => Error::sys("resolving the parent directory", e).with_entry(entry),
    }
}

impl<'a> Applier<'a> {
    pub(crate) fn new(
        root: &'a Root,
        opts: &'a Options,
        budget: &'a mut Budget,
        buf: &'a mut Vec<u8>,
    ) -> Self {
        Applier {
            root,
            opts,
            budget,
            buf,
            written: Written::default(),
            dirs: HashMap::new(),
            removed: HashMap::new(),
            events: 0,
            cache: None,
            restore: OpenedUp::default(),
            stats: LayerStats::default(),
        }
    }

    /// Apply one tar entry.
    pub(crate) fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = path::display(&raw).to_path_buf();
        let kind = entry_kind(entry.header(), &raw);
        if kind == EntryType::XGlobalHeader {
            return self.charge_bytes(entry.size(), &shown);
        }
        self.stats.entries += 1;
        self.charge_entries(1, &shown)?;
        let name = path::classify(&raw).map_err(|why| Error::layer(&shown, why))?;
        // Data the entry carries but writes nowhere is decompressed all the same: it counts
        // against the byte limit as a file's content does (which is counted as it is written).
        if !writes_data(&name, kind) {
            self.charge_bytes(entry.size(), &shown)?;
        }
        let meta = read_meta(entry).map_err(|e| e.or_entry(&shown))?;
        match name {
            EntryName::AufsMeta => Ok(()),
            EntryName::Root => {
                if kind.is_dir() {
                    Ok(())
                } else {
                    Err(Error::layer(&shown, "a non-directory entry names the root"))
                }
            }
            EntryName::Whiteout { dir, name } => self.whiteout(&dir, &name, &shown),
            EntryName::Opaque(dir) => self.opaque(&dir, &shown),
            EntryName::Normal(path) => self.create(entry, &path, kind, &meta, &shown),
        }
    }

    fn charge_entries(&mut self, n: u64, shown: &Path) -> Result<()> {
        self.budget.charge_entries(n, &self.opts.limits, shown)
    }

    fn charge_bytes(&mut self, n: u64, shown: &Path) -> Result<()> {
        self.budget.charge_bytes(n, &self.opts.limits, shown)
    }

    /// Resolve (creating it as needed) the parent directory of an entry this layer writes;
    /// it and its ancestors are added to the written set.
    fn parent_fd(&mut self, parent: &Path, shown: &Path) -> Result<Rc<Parent>> {
        if let Some(cached) = &self.cache
            && cached.logical == parent
        {
            return Ok(Rc::clone(cached));
        }
        let root = self.root;
        match root.resolve(parent, true, self.opened()) {
            Ok(Some(resolved)) => {
                self.charge_entries(resolved.created, shown)?;
                let node = self.written.insert_path(&resolved.physical);
                self.make_writable(resolved.fd.as_fd(), &resolved.physical, shown)?;
                let parent = Rc::new(Parent {
                    logical: parent.to_path_buf(),
                    fd: resolved.fd,
                    node,
                    physical: resolved.physical,
                });
                self.cache = Some(Rc::clone(&parent));
                Ok(parent)
            }
            Ok(None) => Err(Error::layer(shown, "parent directory vanished")),
            Err(e) => Err(resolve_error(shown, e)),
        }
    }

    /// Where an unprivileged unpack records the directories it opens up; `None` with root's
    /// permission override, which needs none opened.
    fn opened(&mut self) -> Option<&mut OpenedUp> {
        self.opts.unprivileged.then_some(&mut self.restore)
    }

    /// Open the directory `name` in `dir` (at `physical`), opened up first if the unpack is
    /// unprivileged and its owner may not read or search it.
    fn enter(
        &mut self,
        dir: BorrowedFd<'_>,
        physical: &[OsString],
        name: &OsStr,
    ) -> Result<OwnedFd, Errno> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        root::open_subdir(dir, name, &st, physical, self.opened())
    }

    /// Unprivileged only: give the owner write and search permission on a directory (at
    /// `physical`) we are about to change, remembering its mode to restore when the layer ends.
    fn make_writable(
        &mut self,
        dir: BorrowedFd<'_>,
        physical: &[OsString],
        shown: &Path,
    ) -> Result<()> {
        if !self.opts.unprivileged {
            return Ok(());
        }
        let st = rustix::fs::fstat(dir)
            .map_err(|e| Error::sys("inspecting a directory", e).with_entry(shown))?;
        let mode = st.st_mode & 0o7777;
        if mode & 0o300 != 0o300 {
            rustix::fs::fchmod(dir, Mode::from_raw_mode(mode | 0o700))
                .map_err(|e| Error::sys("opening up a read-only directory", e).with_entry(shown))?;
            let node = self.restore.paths.intern(physical);
            let id = (st.st_dev, st.st_ino);
            self.restore.dirs.entry(node).or_insert((id, mode));
        }
        Ok(())
    }

    /// Remove whatever is at `name` in `parent`; forget the cached parent if that could have
    /// changed what a path resolves to.
    fn remove(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        shown: &Path,
    ) -> Result<Option<FileType>> {
        let removed = root::remove_all(parent, name, &|| self.opts.stop.asked())
            .map_err(|e| Error::sys("replacing an existing entry", e).with_entry(shown))?;
        if matches!(removed, Some(FileType::Directory | FileType::Symlink)) {
            self.cache = None;
        }
        Ok(removed)
    }

    /// A directory is gone (replaced, or whited out): the modes and mtimes the layer listed
    /// for it and for directories below it before now are no longer to be set. A directory
    /// made at that path later (for a path below it) is a new one, with the default mode.
    pub(super) fn forget_dirs(&mut self, parent: &[OsString], name: &OsStr) {
        if self.dirs.is_empty() {
            return;
        }
        let Some(gone) = self.restore.paths.find(parent, name) else {
            return;
        };
        self.events += 1;
        self.removed.insert(gone, self.events);
    }

    /// Whether the directory entry recorded for `node` at `recorded` was removed since, itself
    /// or with a directory above it.
    fn removed_since(&self, node: PathNode, recorded: u64) -> bool {
        !self.removed.is_empty()
            && self
                .restore
                .paths
                .ancestors(node)
                .any(|a| self.removed.get(&a).is_some_and(|at| *at > recorded))
    }

    /// Make `name` in `parent` a directory, replacing any non-directory there; a new one gets
    /// `mode` (a directory entry's own mode is set when the layer ends).
    fn ensure_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        mode: u32,
        shown: &Path,
    ) -> Result<()> {
        let sys = |what: &'static str| move |e| Error::sys(what, e).with_entry(shown);
        match root::type_at(parent, name).map_err(sys("inspecting an entry"))? {
            Some(FileType::Directory) => Ok(()),
            existing => {
                if existing.is_some() {
                    self.remove(parent, name, shown)?;
                }
                rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(mode))
                    .map_err(sys("creating a directory"))
            }
        }
    }

    /// Remove whatever is at `name` in `parent` (at `physical`; a directory with its tree).
    fn clear_slot(
        &mut self,
        parent: BorrowedFd<'_>,
        physical: &[OsString],
        name: &OsStr,
        shown: &Path,
    ) -> Result<()> {
        if self.remove(parent, name, shown)? == Some(FileType::Directory) {
            self.forget_dirs(physical, name);
        }
        Ok(())
    }

    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        kind: EntryType,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        let (Some(name), Some(parent_path)) = (path.file_name(), path.parent()) else {
            return Err(Error::layer(shown, "entry has no name"));
        };
        // Validate everything that can be validated before the filesystem is touched.
        let mut link_target: Option<(OwnedFd, OsString)> = None;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = entry.size();
                if let Some(max) = self.opts.limits.max_bytes
                    && self.budget.bytes.saturating_add(size) > max
                {
                    return Err(Error::new(
                        ErrorKind::LimitExceeded,
                        format!("writing {size} more bytes would exceed the {max}-byte limit"),
                    )
                    .with_entry(shown));
                }
            }
            EntryType::Symlink => {
                if entry.link_name_bytes().is_none_or(|l| l.is_empty()) {
                    return Err(Error::layer(shown, "symlink without a target"));
                }
            }
            EntryType::Link => {
                let Some(target) = hardlink_target(entry, path, shown)? else {
                    return Ok(());
                };
                link_target = Some(self.hardlink_source(&target, shown)?);
            }
            EntryType::Char | EntryType::Block => {
                if !self.opts.devices {
                    self.stats.devices_skipped += 1;
                    return Ok(());
                }
            }
            EntryType::Directory | EntryType::Fifo => {}
            other => {
                return Err(Error::layer(
                    shown,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        let parent = self.parent_fd(parent_path, shown)?;
        self.written.insert(parent.node, name);
        let pfd = parent.fd.as_fd();
        let sys = |what: &'static str| move |e| Error::sys(what, e).with_entry(shown);
        match kind {
            EntryType::Directory => {
                self.ensure_dir(pfd, name, 0o700, shown)?;
                // A lower layer's directory its owner may not read (mode 0000, 0311) is
                // opened up as any directory on the way is, when unprivileged.
                let dfd = self
                    .enter(pfd, &parent.physical, name)
                    .map_err(sys("opening a directory"))?;
                self.chown_fd(dfd.as_fd(), meta, shown)?;
                self.xattrs_fd(dfd.as_fd(), meta, shown)?;
                let node = self.restore.paths.intern(&parent.physical);
                let node = self.restore.paths.child(node, name);
                self.events += 1;
                let recorded = (
                    meta.mode,
                    timespec(meta.mtime, meta.mtime_nsec),
                    self.events,
                );
                self.dirs.insert(node, recorded);
                self.stats.dirs += 1;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                self.clear_slot(pfd, &parent.physical, name, shown)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), pfd, name)
                    .map_err(sys("creating a symlink"))?;
                self.chown_at(pfd, name, meta, shown)?;
                self.stats.xattrs_skipped += meta.xattrs.len() as u64;
                self.utimes_at(pfd, name, meta, shown)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => {
                if let Some((tparent, tname)) = link_target {
                    self.clear_slot(pfd, &parent.physical, name, shown)?;
                    rustix::fs::linkat(tparent.as_fd(), &tname, pfd, name, AtFlags::empty())
                        .map_err(|e| match e {
                            Errno::NOENT => Error::layer(shown, "hardlink target does not exist"),
                            Errno::PERM => Error::layer(shown, "hardlink target is not linkable"),
                            e => Error::sys("creating a hardlink", e).with_entry(shown),
                        })?;
                    self.stats.hardlinks += 1;
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ftype, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, device(entry, shown)?),
                    EntryType::Block => (FileType::BlockDevice, device(entry, shown)?),
                    _ => (FileType::Fifo, 0),
                };
                self.clear_slot(pfd, &parent.physical, name, shown)?;
                match rustix::fs::mknodat(pfd, name, ftype, Mode::from_raw_mode(0o600), dev) {
                    Ok(()) => {}
                    // Root without CAP_MKNOD (a container, a user namespace): skip, as rootless.
                    Err(Errno::PERM) if kind != EntryType::Fifo => {
                        self.stats.devices_skipped += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(sys("creating a device or fifo")(e)),
                }
                self.chown_at(pfd, name, meta, shown)?;
                // Just created by us with mknodat, so `name` is not a symlink here.
                rustix::fs::chmodat(
                    pfd,
                    name,
                    Mode::from_raw_mode(self.file_mode(meta)),
                    AtFlags::empty(),
                )
                .map_err(sys("setting the mode"))?;
                self.stats.xattrs_skipped += meta.xattrs.len() as u64;
                self.utimes_at(pfd, name, meta, shown)?;
                if kind == EntryType::Fifo {
                    self.stats.fifos += 1;
                } else {
                    self.stats.devices += 1;
                }
            }
            _ => {
                self.clear_slot(pfd, &parent.physical, name, shown)?;
                let fd = rustix::fs::openat(
                    pfd,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(sys("creating a file"))?;
                let mut file = File::from(fd);
                let result = self
                    .copy_data(entry, &mut file, shown)
                    .and_then(|()| self.file_meta(file.as_fd(), meta, shown));
                if let Err(err) = result {
                    // Never leave a partial file looking complete.
                    drop(file);
                    let _ = rustix::fs::unlinkat(pfd, name, AtFlags::empty());
                    return Err(err);
                }
                self.stats.files += 1;
            }
        }
        Ok(())
    }

    /// Resolve a hardlink target inside the root: its parent fd and name, checked to exist and
    /// not to be a directory.
    fn hardlink_source(&mut self, target: &Path, shown: &Path) -> Result<(OwnedFd, OsString)> {
        let (Some(tname), Some(tparent)) = (target.file_name(), target.parent()) else {
            return Err(Error::layer(shown, "hardlink target has no name"));
        };
        let root = self.root;
        let fd = match root.open_dir(tparent, false, self.opened()) {
            Ok(Some(fd)) => fd,
            Ok(None) | Err(Errno::NOTDIR) => {
                return Err(Error::layer(shown, "hardlink target does not exist"));
            }
            Err(e) => return Err(resolve_error(shown, e)),
        };
        match root::type_at(fd.as_fd(), tname) {
            Ok(None) => Err(Error::layer(shown, "hardlink target does not exist")),
            Ok(Some(FileType::Directory)) => {
                Err(Error::layer(shown, "hardlink target is a directory"))
            }
            Ok(Some(_)) => Ok((fd, tname.to_os_string())),
            Err(e) => Err(Error::sys("inspecting a hardlink target", e).with_entry(shown)),
        }
    }

    fn copy_data<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut File,
        shown: &Path,
    ) -> Result<()> {
        if self.buf.len() < crate::stream::CHUNK {
            self.buf.resize(crate::stream::CHUNK, 0);
        }
        let size = entry.size();
        let mut copied = 0u64;
        loop {
            let n = match entry.read(self.buf) {
                // The tar reader ends an entry's data quietly where the stream ends: a file
                // cut short is an error, not a smaller file.
                Ok(0) if copied < size => {
                    return Err(Error::layer(
                        shown,
                        format!("the layer ends {copied} bytes into a {size}-byte file"),
                    ));
                }
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::tar("reading file data", e).or_entry(shown)),
            };
            self.charge_bytes(n as u64, shown)?;
            file.write_all(&self.buf[..n])
                .map_err(|e| Error::io("writing a file", e).with_entry(shown))?;
            copied += n as u64;
            self.stats.bytes_written += n as u64;
        }
    }

    /// Set directory modes and mtimes (after the layer's entries, so children do not bump
    /// them), and give directories opened up for an unprivileged unpack their modes back.
    ///
    /// Each directory is reached by the physical path it had when it was recorded, following
    /// no symlink, so a directory the layer later replaced with a symlink is skipped rather than
    /// followed to another one; and one opened up but since replaced by another directory is
    /// left to its new self. The deepest go first: a parent losing its search permission cannot
    /// stop its children from getting theirs, in whatever order the tar listed them.
    pub(crate) fn finish(&mut self) -> Result<()> {
        struct Pending {
            mode: u32,
            mtime: Option<Timespec>,
            /// For a directory opened up: the one it was, which alone gets the mode back.
            id: Option<(u64, u64)>,
        }
        // Before the path table is taken: a directory removed after its entry is skipped.
        let dirs = std::mem::take(&mut self.dirs);
        let dirs: Vec<_> = dirs
            .into_iter()
            .filter(|(node, (_, _, at))| !self.removed_since(*node, *at))
            .collect();
        self.removed.clear();
        let OpenedUp {
            paths,
            dirs: opened,
        } = std::mem::take(&mut self.restore);
        let mut pending: HashMap<PathNode, Pending> = opened
            .into_iter()
            .map(|(node, (id, mode))| {
                let p = Pending {
                    mode,
                    mtime: None,
                    id: Some(id),
                };
                (node, p)
            })
            .collect();
        // The layer's own entries win over a restored mode.
        for (node, (mode, mtime, _)) in dirs {
            let p = Pending {
                mode,
                mtime: Some(mtime),
                id: None,
            };
            pending.insert(node, p);
        }
        let mut pending: Vec<_> = pending.into_iter().collect();
        pending.sort_by_cached_key(|(node, _)| std::cmp::Reverse(paths.depth(*node)));
        // One path at a time: only one whole path is ever held.
        let pending = pending.into_iter().map(|(node, p)| (paths.path(node), p));
        for (shown, p) in pending {
            let fd = match self.root.open_physical(&shown) {
                Ok(Some(fd)) => fd,
                Ok(None) => continue,
                Err(e) => return Err(Error::sys("reopening a directory", e).with_entry(&shown)),
            };
            if let Some(id) = p.id {
                let st = rustix::fs::fstat(&fd)
                    .map_err(|e| Error::sys("inspecting a directory", e).with_entry(&shown))?;
                if (st.st_dev, st.st_ino) != id {
                    continue;
                }
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(p.mode & 0o7777))
                .map_err(|e| Error::sys("setting a directory mode", e).with_entry(&shown))?;
            if let Some(mtime) = p.mtime {
                rustix::fs::futimens(&fd, &times(mtime))
                    .map_err(|e| Error::sys("setting a directory mtime", e).with_entry(&shown))?;
            }
        }
        Ok(())
    }
}

/// What an entry is. Tars older than POSIX had no directory type: a directory was an entry of
/// typeflag NUL whose name ends in `/`. Go's `archive/tar` reads it so, and with it docker and
/// containerd; the `tar` crate reads NUL as a regular file like `0`, which would make such a
/// directory an empty file and fail on what the layer puts in it. Typeflag `0` with a trailing
/// `/` stays a file, as Go has it. The applier and the flattener share this.
pub(crate) fn entry_kind(header: &tar::Header, raw_path: &[u8]) -> EntryType {
    if header.as_old().linkflag[0] == 0 && raw_path.ends_with(b"/") {
        return EntryType::Directory;
    }
    header.entry_type()
}

/// A hard link entry's target path, checked as any entry name is (and never the entry's own
/// path or under it); `None` for a link to itself, which changes nothing. The applier and the
/// flattener share it, so both take and refuse the same links.
pub(crate) fn hardlink_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &Path,
    shown: &Path,
) -> Result<Option<PathBuf>> {
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| Error::layer(shown, "hardlink without a target"))?;
    let target = match path::classify(&target) {
        Ok(EntryName::Normal(t)) => t,
        Ok(_) => {
            return Err(Error::layer(
                shown,
                "hardlink target is the root or a whiteout",
            ));
        }
        Err(why) => {
            return Err(Error::layer(
                shown,
                format!("hardlink target is invalid: {why}"),
            ));
        }
    };
    if target == path {
        return Ok(None);
    }
    if target.starts_with(path) {
        return Err(Error::layer(
            shown,
            "hardlink target lies inside the entry it replaces",
        ));
    }
    Ok(Some(target))
}
