//! Pass 2: writing the merged tree as one tar, in an order that puts every directory before
//! what is in it and every hard link after the name it links to.
//!
//! File contents are copied from the layer entries that made them while the layers stream by,
//! bottom layer first, so a file is written when its entry passes: its missing ancestors
//! first (directories carry no data, so any can be written at any time from the model), then
//! the file under its first name (in the byte order of paths), then its other names as hard
//! links to that one. Whatever has no data (directories, symlinks, fifos, devices) and was not
//! written yet follows at the end, walking the tree in byte order.

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

use tar::EntryType;

use super::FlattenStats;
use super::tar_out::{Data, TarOut};
use super::tree::{Body, InodeId, Kind, NodeId, ROOT, Tree};
use crate::apply::meta::Meta;
use crate::error::{Error, ErrorKind, Result};

/// Which entry carries which file's data, and the names of every inode.
pub(super) struct Plan {
    /// Per inode: its live names, in output (byte) order.
    names: Vec<Vec<NodeId>>,
    /// Per layer: (entry ordinal, inode) of the regular files it holds the data of, by ordinal.
    pub wanted: Vec<Vec<(u64, InodeId)>>,
}

/// The live nodes in pre-order (parents first), children in byte order of their names.
fn preorder(tree: &Tree) -> Vec<NodeId> {
    let mut order = Vec::new();
    let mut stack = vec![ROOT];
    while let Some(node) = stack.pop() {
        order.push(node);
        stack.extend(tree.nodes[node].children.values().rev());
    }
    order
}

impl Plan {
    pub(super) fn new(tree: &Tree, layers: usize) -> Plan {
        let mut names = vec![Vec::new(); tree.inodes.len()];
        for node in preorder(tree) {
            if let Body::Leaf(inode) = tree.nodes[node].body {
                names[inode].push(node);
            }
        }
        let mut wanted = vec![Vec::new(); layers];
        for (id, inode) in tree.inodes.iter().enumerate() {
            if !names[id].is_empty()
                && matches!(inode.kind, Kind::Regular(_))
                && let Some(list) = wanted.get_mut(inode.layer)
            {
                list.push((inode.ordinal, id));
            }
        }
        for list in &mut wanted {
            list.sort_unstable();
        }
        Plan { names, wanted }
    }
}

/// Writes the tree's entries to the output tar.
pub(super) struct Emitter<'t, W: Write> {
    tree: &'t Tree,
    plan: &'t Plan,
    out: TarOut<W>,
    emitted: Vec<bool>,
    /// Per inode: the name it was first written under.
    first: Vec<Option<NodeId>>,
    pub stats: FlattenStats,
}

/// The metadata of a directory made implicitly as a parent.
fn implicit_dir() -> Meta {
    Meta {
        mode: 0o755,
        ..Meta::default()
    }
}

impl<'t, W: Write> Emitter<'t, W> {
    pub(super) fn new(tree: &'t Tree, plan: &'t Plan, out: W) -> Self {
        Emitter {
            tree,
            plan,
            out: TarOut::new(out),
            emitted: vec![false; tree.nodes.len()],
            first: vec![None; tree.inodes.len()],
            stats: FlattenStats::default(),
        }
    }

    fn path(&self, node: NodeId) -> Vec<u8> {
        let mut path = Vec::new();
        for (i, part) in self.tree.path_of(node).into_iter().enumerate() {
            if i > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(part.as_bytes());
        }
        path
    }

    /// Write one entry, mapping a failure to an error naming it.
    fn write(
        &mut self,
        node: NodeId,
        kind: EntryType,
        meta: &Meta,
        link: Option<&[u8]>,
        device: Option<(u32, u32)>,
        data: Option<Data<'_>>,
    ) -> Result<()> {
        let path = self.path(node);
        let shown = crate::path::display(&path).to_path_buf();
        let dropped = self
            .out
            .entry(&path, kind, meta, link, device, data)
            .map_err(|e| Error::io("writing the flattened tar", e).or_entry(&shown))?;
        self.stats.xattrs_dropped += dropped;
        self.stats.entries += 1;
        if let Some(slot) = self.emitted.get_mut(node) {
            *slot = true;
        }
        Ok(())
    }

    /// Write the directories above `node` that are not written yet, outermost first.
    fn ancestors(&mut self, node: NodeId) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = self.tree.nodes[node].parent;
        while at != ROOT && !self.emitted[at] {
            missing.push(at);
            at = self.tree.nodes[at].parent;
        }
        for dir in missing.into_iter().rev() {
            self.dir(dir)?;
        }
        Ok(())
    }

    fn dir(&mut self, node: NodeId) -> Result<()> {
        let tree = self.tree;
        let meta = match &tree.nodes[node].body {
            Body::Dir(Some(meta)) => meta.as_ref().clone(),
            _ => implicit_dir(),
        };
        self.write(node, EntryType::Directory, &meta, None, None, None)?;
        self.stats.dirs += 1;
        Ok(())
    }

    /// `node` as a hard link to `target`, written before it.
    fn link(&mut self, node: NodeId, target: NodeId, meta: &Meta) -> Result<()> {
        let target = self.path(target);
        self.write(node, EntryType::Link, meta, Some(&target), None, None)?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// The regular file `inode`, its data read from `reader` (its layer entry), under each of
    /// its names.
    pub(super) fn file(&mut self, inode: InodeId, reader: &mut dyn Read) -> Result<()> {
        let tree = self.tree;
        let plan = self.plan;
        let record = &tree.inodes[inode];
        let Kind::Regular(size) = record.kind else {
            return Err(changed());
        };
        let Some((&first, others)) = plan.names[inode].split_first() else {
            return Ok(());
        };
        self.ancestors(first)?;
        let reader = &mut LayerData(reader);
        let data = Data { reader, size };
        self.write(
            first,
            EntryType::Regular,
            &record.meta,
            None,
            None,
            Some(data),
        )?;
        self.first[inode] = Some(first);
        self.stats.files += 1;
        self.stats.bytes += size;
        for &other in others {
            self.ancestors(other)?;
            self.link(other, first, &record.meta)?;
        }
        Ok(())
    }

    /// Everything not written yet, parents first, then the end of the archive.
    pub(super) fn finish(mut self) -> Result<FlattenStats> {
        let tree = self.tree;
        for node in preorder(tree) {
            if node == ROOT || self.emitted[node] {
                continue;
            }
            let inode = match tree.nodes[node].body {
                Body::Dir(_) => {
                    self.dir(node)?;
                    continue;
                }
                Body::Leaf(inode) => inode,
            };
            let record = &tree.inodes[inode];
            if let Some(first) = self.first[inode] {
                self.link(node, first, &record.meta)?;
                continue;
            }
            let (kind, link, device) = match &record.kind {
                // Its data was to be written as its entry passed in pass 2.
                Kind::Regular(_) => return Err(changed()),
                Kind::Symlink(target) => (EntryType::Symlink, Some(target.as_slice()), None),
                Kind::Fifo => (EntryType::Fifo, None, None),
                Kind::Char(major, minor) => (EntryType::Char, None, Some((*major, *minor))),
                Kind::Block(major, minor) => (EntryType::Block, None, Some((*major, *minor))),
            };
            self.write(node, kind, &record.meta, link, device, None)?;
            self.first[inode] = Some(node);
            if kind == EntryType::Symlink {
                self.stats.symlinks += 1;
            } else {
                self.stats.specials += 1;
            }
        }
        self.out
            .finish()
            .map_err(|e| Error::io("writing the flattened tar", e))?;
        self.stats.tar_bytes = self.out.written;
        Ok(self.stats)
    }
}

/// A layer read differently in the second pass than in the first.
pub(super) fn changed() -> Error {
    Error::new(
        ErrorKind::Corrupt,
        "a layer read differently the second time (changed between the two passes?)",
    )
}

/// A file's data read from its layer entry: a failure to read it is the layer's
/// ([`Error::tar`]), so that copying it into the output tells it from a failure to write.
struct LayerData<'r>(&'r mut dyn Read);

impl Read for LayerData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| Error::tar("reading file data", e).into_io())
    }
}
