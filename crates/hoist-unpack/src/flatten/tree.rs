//! The merged tree of an image, built in memory from the layers' headers alone (pass 1).
//!
//! Each layer is replayed onto a model of the root filesystem with the rules
//! [`crate::apply`] applies to a real directory, decision for decision: parents resolved one
//! component at a time with a symlink in a parent position followed inside the root (at most
//! [`MAX_SYMLINK_HOPS`] symlinks and [`MAX_STEPS`] components), missing parents made as
//! implicit `0755` directories, whiteouts and opaque markers removing only what lower layers
//! left (a node remembers the last layer that wrote it, as the applier's written set does), a
//! non-directory replacing whatever was at its name (a directory with its tree), a directory
//! entry keeping the directory already there with its children.
//!
//! Nothing here holds file contents: a regular file is an [`Inode`] naming the layer and entry
//! number its data comes from, so pass 2 can copy it from there. Hard links share an inode, as
//! on disk, so a link whose target name was later replaced or whited out keeps the content it
//! linked to. Memory grows with the number of paths (and their metadata), never with the size
//! of a file or a layer.
//!
//! Nor with the number of entries: a layer may write one name over and over (each time with a
//! symlink target of up to a MiB, or large extended attributes), and only its last entry is in
//! the image. So a removed node's slot, and an inode's once no name refers to it any more (a
//! hard link, in this layer or a later one, keeps it), are emptied and reused for the next
//! node or inode; what the tree holds is what the merged filesystem has, plus empty slots no
//! more numerous than the most names it ever had at once.
//!
//! What the names, symlink targets, owner names and extended attributes cost is counted as
//! they come and go ([`Tree::held`]): one entry may bring a MiB of each, and the flattener
//! refuses a layer once the count passes [`Limits::max_metadata_bytes`](crate::Limits).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Errno;

use crate::apply::meta::Meta;
use crate::apply::resolve_error;
use crate::error::{Error, Result};
use crate::path::MAX_DEPTH;
use crate::root::{MAX_STEPS, MAX_SYMLINK_HOPS};

/// A node of the tree (an index into [`Tree::nodes`]).
pub(super) type NodeId = usize;
/// An inode (an index into [`Tree::inodes`]).
pub(super) type InodeId = usize;

/// The root directory's node.
pub(super) const ROOT: NodeId = 0;

/// What a non-directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file of this many bytes.
    Regular(u64),
    /// A symlink and its target, byte for byte.
    Symlink(Vec<u8>),
    /// A fifo.
    Fifo,
    /// A character device (major, minor).
    Char(u32, u32),
    /// A block device (major, minor).
    Block(u32, u32),
}

/// A non-directory, possibly under several names (hard links).
#[derive(Debug)]
pub(super) struct Inode {
    /// The layer (from 0, base first) whose entry made it.
    pub layer: usize,
    /// That entry's position in its layer's tar (from 0, every entry the parser yields).
    pub ordinal: u64,
    pub kind: Kind,
    pub meta: Meta,
    /// How many live nodes name it; at 0 its slot is emptied and free for the next inode.
    links: usize,
}

/// What a node is.
#[derive(Debug)]
pub(super) enum Body {
    /// A directory; `None` for one made implicitly as a parent (mode `0755`, owned by 0:0).
    Dir(Option<Box<Meta>>),
    /// A name for an inode.
    Leaf(InodeId),
}

/// One directory entry of the merged tree.
#[derive(Debug)]
pub(super) struct Node {
    pub name: OsString,
    pub parent: NodeId,
    /// By name, so the output order is the byte order of names.
    pub children: BTreeMap<OsString, NodeId>,
    pub body: Body,
    /// 1 + the last layer that wrote the node (0: none yet).
    written: usize,
    /// Still in the tree (a removed node's slot stays in the arena, emptied, until
    /// [`Tree::add`] reuses it).
    pub alive: bool,
}

/// The model. See the module docs.
#[derive(Debug)]
pub(super) struct Tree {
    pub nodes: Vec<Node>,
    pub inodes: Vec<Inode>,
    /// Slots of `nodes` removed from the tree, to reuse.
    free_nodes: Vec<NodeId>,
    /// Slots of `inodes` no node names any more, to reuse.
    free_inodes: Vec<InodeId>,
    /// 1 + the layer being replayed.
    stamp: usize,
    /// Directories made as missing parents so far (counted against the entry limit).
    pub implicit_dirs: u64,
    /// Bytes of names, symlink targets, owner names and extended attributes the live nodes
    /// and inodes hold (names count twice: the node's own and its parent's index key).
    pub held: u64,
}

/// Where an entry goes, once its name is classified.
pub(super) struct Entry<'a> {
    pub ordinal: u64,
    pub path: &'a Path,
    pub shown: &'a Path,
    pub meta: Meta,
}

impl Tree {
    pub(super) fn new() -> Tree {
        Tree {
            nodes: vec![Node {
                name: OsString::new(),
                parent: ROOT,
                children: BTreeMap::new(),
                body: Body::Dir(None),
                written: 0,
                alive: true,
            }],
            inodes: Vec::new(),
            free_nodes: Vec::new(),
            free_inodes: Vec::new(),
            stamp: 0,
            implicit_dirs: 0,
            held: 0,
        }
    }

    /// Start replaying layer `layer` (from 0).
    pub(super) fn start_layer(&mut self, layer: usize) {
        self.stamp = layer + 1;
    }

    fn layer(&self) -> usize {
        self.stamp.saturating_sub(1)
    }

    fn child(&self, dir: NodeId, name: &OsStr) -> Option<NodeId> {
        self.nodes[dir].children.get(name).copied()
    }

    fn is_dir(&self, node: NodeId) -> bool {
        matches!(self.nodes[node].body, Body::Dir(_))
    }

    /// Add `name` to `parent`, in a free slot if there is one. A [`Body::Leaf`] counts as a
    /// link to its inode.
    fn add(&mut self, parent: NodeId, name: &OsStr, body: Body) -> NodeId {
        if let Body::Leaf(inode) = body {
            self.inodes[inode].links += 1;
        }
        self.held = self.held.saturating_add(node_bytes(name, &body));
        let node = Node {
            name: name.to_os_string(),
            parent,
            children: BTreeMap::new(),
            body,
            written: 0,
            alive: true,
        };
        let id = match self.free_nodes.pop() {
            Some(id) => {
                self.nodes[id] = node;
                id
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.nodes[parent].children.insert(name.to_os_string(), id);
        id
    }

    /// A new inode with no names yet ([`Tree::add`] links it), in a free slot if there is one.
    fn new_inode(&mut self, ordinal: u64, kind: Kind, meta: Meta) -> InodeId {
        self.held = self
            .held
            .saturating_add(kind_bytes(&kind) + meta_bytes(&meta));
        let inode = Inode {
            layer: self.layer(),
            ordinal,
            kind,
            meta,
            links: 0,
        };
        match self.free_inodes.pop() {
            Some(id) => {
                self.inodes[id] = inode;
                id
            }
            None => {
                self.inodes.push(inode);
                self.inodes.len() - 1
            }
        }
    }

    /// Remove `name` from `dir` with everything under it, freeing what the nodes held, and
    /// what their inodes held when they were the last names of them.
    fn remove(&mut self, dir: NodeId, name: &OsStr) {
        let Some(gone) = self.nodes[dir].children.remove(name) else {
            return;
        };
        let mut stack = vec![gone];
        while let Some(id) = stack.pop() {
            let node = &mut self.nodes[id];
            node.alive = false;
            let name = std::mem::take(&mut node.name);
            let body = std::mem::replace(&mut node.body, Body::Dir(None));
            self.held = self.held.saturating_sub(node_bytes(&name, &body));
            stack.extend(std::mem::take(&mut node.children).into_values());
            self.free_nodes.push(id);
            if let Body::Leaf(inode) = body {
                self.unlink(inode);
            }
        }
    }

    /// One name of `inode` is gone; with the last one, its data goes too and the slot is free.
    fn unlink(&mut self, inode: InodeId) {
        let record = &mut self.inodes[inode];
        // Every live name was counted by `add`; a slot already free is never freed twice.
        let Some(left) = record.links.checked_sub(1) else {
            return;
        };
        record.links = left;
        if left == 0 {
            let kind = std::mem::replace(&mut record.kind, Kind::Fifo);
            let meta = std::mem::take(&mut record.meta);
            self.held = self
                .held
                .saturating_sub(kind_bytes(&kind) + meta_bytes(&meta));
            self.free_inodes.push(inode);
        }
    }

    /// Resolve the directory `dir` as [`crate::root::Root::resolve`] does: the physical path
    /// of nodes (empty for the root); with `create`, missing directories are added as implicit
    /// ones, without it `Ok(None)` says something is missing. The nodes are not marked written.
    fn resolve(&mut self, dir: &Path, create: bool) -> Result<Option<Vec<NodeId>>, Errno> {
        let mut queue: VecDeque<OsString> = dir
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut physical: Vec<NodeId> = Vec::new();
        let (mut hops, mut steps) = (0usize, 0usize);
        while let Some(comp) = queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Errno::LOOP);
            }
            let bytes = comp.as_bytes();
            if bytes.is_empty() || bytes == b"." || bytes == b"/" {
                continue;
            }
            if bytes == b".." {
                physical.pop();
                continue;
            }
            let here = physical.last().copied().unwrap_or(ROOT);
            let Some(next) = self.child(here, &comp) else {
                if !create {
                    return Ok(None);
                }
                physical.push(self.add(here, &comp, Body::Dir(None)));
                self.implicit_dirs += 1;
                continue;
            };
            let inode = match self.nodes[next].body {
                Body::Dir(_) => {
                    physical.push(next);
                    continue;
                }
                Body::Leaf(inode) => inode,
            };
            let Kind::Symlink(target) = &self.inodes[inode].kind else {
                return Err(Errno::NOTDIR);
            };
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Errno::LOOP);
            }
            if target.first() == Some(&b'/') {
                physical.clear();
            }
            for part in target.split(|b| *b == b'/').rev() {
                queue.push_front(OsStr::from_bytes(part).to_os_string());
            }
            if physical.len() + queue.len() > 4 * MAX_DEPTH {
                return Err(Errno::NAMETOOLONG);
            }
        }
        Ok(Some(physical))
    }

    /// The last node of a physical path (the root for an empty one).
    fn end(physical: &[NodeId]) -> NodeId {
        physical.last().copied().unwrap_or(ROOT)
    }

    fn mark(&mut self, physical: &[NodeId]) {
        for node in physical {
            self.nodes[*node].written = self.stamp;
        }
    }

    fn written_now(&self, node: NodeId) -> bool {
        self.nodes[node].written == self.stamp
    }

    /// The parent directory of an entry the layer writes, made as needed and marked written.
    fn parent(&mut self, dir: &Path, shown: &Path) -> Result<NodeId> {
        match self.resolve(dir, true) {
            Ok(Some(physical)) => {
                self.mark(&physical);
                Ok(Tree::end(&physical))
            }
            Ok(None) => Err(Error::layer(shown, "parent directory vanished")),
            Err(e) => Err(resolve_error(shown, e)),
        }
    }

    /// `DIR/.wh.NAME`: remove `NAME` as lower layers left it.
    pub(super) fn whiteout(&mut self, dir: &Path, name: &OsStr, shown: &Path) -> Result<()> {
        let parent = match self.resolve(dir, false) {
            Ok(Some(physical)) => Tree::end(&physical),
            Ok(None) | Err(Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(resolve_error(shown, e)),
        };
        let Some(node) = self.child(parent, name) else {
            return Ok(());
        };
        if self.written_now(node) {
            // This layer's own entry stays; what lower layers left under it goes.
            if self.is_dir(node) {
                self.clear_lower(node);
            }
            return Ok(());
        }
        self.remove(parent, name);
        Ok(())
    }

    /// `DIR/.wh..wh..opq`: hide what lower layers left in `DIR`.
    pub(super) fn opaque(&mut self, dir: &Path, shown: &Path) -> Result<()> {
        let (Some(parent_path), Some(name)) = (dir.parent(), dir.file_name()) else {
            self.clear_lower(ROOT);
            return Ok(());
        };
        let parent = self.parent(parent_path, shown)?;
        if let Some(existing) = self.child(parent, name)
            && let Body::Leaf(inode) = self.nodes[existing].body
            && matches!(self.inodes[inode].kind, Kind::Symlink(_))
        {
            match self.resolve(dir, true) {
                Ok(Some(physical)) => {
                    self.mark(&physical);
                    self.clear_lower(Tree::end(&physical));
                    return Ok(());
                }
                Ok(None) | Err(Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(resolve_error(shown, e)),
            }
        }
        let node = self.ensure_dir(parent, name, None);
        self.nodes[node].written = self.stamp;
        self.clear_lower(node);
        Ok(())
    }

    /// Remove everything under `dir` this layer did not write, descending into what it did.
    fn clear_lower(&mut self, dir: NodeId) {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            let children: Vec<(OsString, NodeId)> = self.nodes[dir]
                .children
                .iter()
                .map(|(name, node)| (name.clone(), *node))
                .collect();
            for (name, node) in children {
                if !self.written_now(node) {
                    self.remove(dir, &name);
                } else if self.is_dir(node) {
                    stack.push(node);
                }
            }
        }
    }

    /// Make `name` in `parent` a directory, keeping one already there (and its metadata unless
    /// `meta` is given); anything else there is replaced.
    fn ensure_dir(&mut self, parent: NodeId, name: &OsStr, meta: Option<Meta>) -> NodeId {
        if let Some(node) = self.child(parent, name)
            && let Body::Dir(old) = &mut self.nodes[node].body
        {
            if let Some(meta) = meta {
                let added = meta_bytes(&meta);
                let gone = old.as_deref().map_or(0, meta_bytes);
                *old = Some(Box::new(meta));
                self.held = self.held.saturating_add(added).saturating_sub(gone);
            }
            return node;
        }
        self.remove(parent, name);
        self.add(parent, name, Body::Dir(meta.map(Box::new)))
    }

    /// The inode a hard link names, resolved as the layer stands now.
    pub(super) fn link_target(&mut self, target: &Path, shown: &Path) -> Result<NodeId> {
        let (Some(name), Some(dir)) = (target.file_name(), target.parent()) else {
            return Err(Error::layer(shown, "hardlink target has no name"));
        };
        let missing = || Error::layer(shown, "hardlink target does not exist");
        let dir = match self.resolve(dir, false) {
            Ok(Some(physical)) => Tree::end(&physical),
            Ok(None) | Err(Errno::NOTDIR) => return Err(missing()),
            Err(e) => return Err(resolve_error(shown, e)),
        };
        let node = self.child(dir, name).ok_or_else(missing)?;
        if self.is_dir(node) {
            return Err(Error::layer(shown, "hardlink target is a directory"));
        }
        Ok(node)
    }

    /// A directory entry.
    pub(super) fn dir(&mut self, entry: Entry<'_>) -> Result<()> {
        let (parent, name) = self.slot(&entry)?;
        let node = self.ensure_dir(parent, name, Some(entry.meta));
        self.nodes[node].written = self.stamp;
        Ok(())
    }

    /// A non-directory entry of `kind`.
    pub(super) fn leaf(&mut self, entry: Entry<'_>, kind: Kind) -> Result<()> {
        let (parent, name) = self.slot(&entry)?;
        self.remove(parent, name);
        let inode = self.new_inode(entry.ordinal, kind, entry.meta);
        let node = self.add(parent, name, Body::Leaf(inode));
        self.nodes[node].written = self.stamp;
        Ok(())
    }

    /// A hard link to `target` (the node [`Tree::link_target`] found before the parent of
    /// the link was made).
    pub(super) fn hardlink(&mut self, entry: Entry<'_>, target: NodeId) -> Result<()> {
        let (parent, name) = self.slot(&entry)?;
        self.remove(parent, name);
        let Body::Leaf(inode) = self.nodes[target].body else {
            return Err(Error::layer(entry.shown, "hardlink target does not exist"));
        };
        if !self.nodes[target].alive {
            // Replacing the link's name removed the target (it was that name, or under it).
            // Nothing was added since, so its slot is not reused yet: it still reads as dead.
            return Err(Error::layer(entry.shown, "hardlink target does not exist"));
        }
        let node = self.add(parent, name, Body::Leaf(inode));
        self.nodes[node].written = self.stamp;
        Ok(())
    }

    /// The parent node and final name of an entry, the parent made and marked written.
    fn slot<'p>(&mut self, entry: &Entry<'p>) -> Result<(NodeId, &'p OsStr)> {
        let (Some(name), Some(dir)) = (entry.path.file_name(), entry.path.parent()) else {
            return Err(Error::layer(entry.shown, "entry has no name"));
        };
        Ok((self.parent(dir, entry.shown)?, name))
    }

    /// The path of a live node below the root, as components.
    pub(super) fn path_of(&self, mut node: NodeId) -> Vec<&OsStr> {
        let mut parts = Vec::new();
        while node != ROOT {
            parts.push(self.nodes[node].name.as_os_str());
            node = self.nodes[node].parent;
        }
        parts.reverse();
        parts
    }
}

/// The bytes of metadata a node holds: its name, twice (its own, and its key in its parent's
/// children), and a directory's owner names and attributes.
fn node_bytes(name: &OsStr, body: &Body) -> u64 {
    let meta = match body {
        Body::Dir(Some(meta)) => meta_bytes(meta),
        Body::Dir(None) | Body::Leaf(_) => 0,
    };
    (2 * name.len() as u64).saturating_add(meta)
}

/// The bytes of metadata a non-directory holds besides its [`Meta`]: a symlink's target.
fn kind_bytes(kind: &Kind) -> u64 {
    match kind {
        Kind::Symlink(target) => target.len() as u64,
        Kind::Regular(_) | Kind::Fifo | Kind::Char(..) | Kind::Block(..) => 0,
    }
}

/// The bytes of an entry's metadata of variable size: owner and group names, and extended
/// attributes (names and values).
fn meta_bytes(meta: &Meta) -> u64 {
    let xattrs: usize = meta.xattrs.iter().map(|(k, v)| k.len() + v.len()).sum();
    (meta.uname.len() + meta.gname.len() + xattrs) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(ordinal: u64, path: &'a str, meta: Meta) -> Entry<'a> {
        Entry {
            ordinal,
            path: Path::new(path),
            shown: Path::new(path),
            meta,
        }
    }

    fn named(xattr: &[u8]) -> Meta {
        Meta {
            uname: b"someone".to_vec(),
            xattrs: vec![(b"user.big".to_vec(), xattr.to_vec())],
            ..Meta::default()
        }
    }

    /// The bytes of symlink targets and extended attributes the tree's inode slots hold,
    /// and how many slots there are.
    fn held(tree: &Tree) -> (usize, usize) {
        let bytes = tree
            .inodes
            .iter()
            .map(|inode| {
                let target = match &inode.kind {
                    Kind::Symlink(target) => target.len(),
                    _ => 0,
                };
                let xattrs: usize = inode
                    .meta
                    .xattrs
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum();
                target + xattrs
            })
            .sum();
        (tree.inodes.len(), bytes)
    }

    /// [`Tree::held`] recomputed from what the nodes and inodes hold now.
    fn recount(tree: &Tree) -> u64 {
        let nodes: u64 = tree
            .nodes
            .iter()
            .map(|n| node_bytes(&n.name, &n.body))
            .sum();
        let inodes: u64 = tree
            .inodes
            .iter()
            .map(|i| kind_bytes(&i.kind) + meta_bytes(&i.meta))
            .sum();
        nodes + inodes
    }

    #[test]
    fn what_the_tree_holds_is_counted_as_it_comes_and_goes() {
        let mut tree = Tree::new();
        tree.start_layer(0);
        let big = vec![b'x'; 10_000];
        for i in 0..20u64 {
            let path = format!("d{}/e/f{i}", i % 3);
            tree.leaf(entry(i, &path, named(&big)), Kind::Symlink(big.clone()))
                .expect("leaf");
        }
        tree.dir(entry(20, "d0", named(b"dir"))).expect("dir");
        tree.dir(entry(21, "d0", named(&big))).expect("dir again");
        link(&mut tree, 22, "keep", "d1/e/f1");
        assert_eq!(tree.held, recount(&tree));
        assert!(tree.held > 20 * 20_000, "{}", tree.held);

        tree.start_layer(1);
        tree.whiteout(Path::new(""), OsStr::new("d1"), Path::new(".wh.d1"))
            .expect("whiteout");
        tree.opaque(Path::new("d2"), Path::new("d2/.wh..wh..opq"))
            .expect("opaque");
        tree.leaf(entry(0, "d0", Meta::default()), Kind::Fifo)
            .expect("a file replaces a tree");
        assert_eq!(tree.held, recount(&tree));
        // Left: `keep` (the inode it shares with the whited-out `d1/e/f1`), `d0`, `d2`.
        let keep = 2 * 4 + 10_000 + b"someone".len() + b"user.big".len() + 10_000;
        let names = 2 * (2 + 2);
        assert_eq!(tree.held, (keep + names) as u64);
    }

    #[test]
    fn a_name_written_over_and_over_holds_only_its_last_entry() {
        let mut tree = Tree::new();
        tree.start_layer(0);
        for i in 0..1000u64 {
            let target = vec![b'a'; 4096];
            tree.leaf(entry(i, "d/x", named(&[b'v'; 1000])), Kind::Symlink(target))
                .expect("leaf");
        }
        assert_eq!(held(&tree), (1, 4096 + b"user.big".len() + 1000));
        // The root, `d` and `x`: replaced nodes are reused, not left behind.
        assert_eq!(tree.nodes.len(), 3);
        assert_eq!(tree.held, recount(&tree));
    }

    /// Inodes some node names.
    fn live(tree: &Tree) -> usize {
        tree.inodes.len() - tree.free_inodes.len()
    }

    fn link(tree: &mut Tree, ordinal: u64, path: &str, target: &str) {
        let node = tree
            .link_target(Path::new(target), Path::new(path))
            .expect("link target");
        tree.hardlink(entry(ordinal, path, Meta::default()), node)
            .expect("hardlink");
    }

    #[test]
    fn an_inode_keeps_its_data_while_a_hard_link_names_it() {
        let mut tree = Tree::new();
        tree.start_layer(0);
        tree.leaf(entry(0, "a", named(b"value")), Kind::Regular(5))
            .expect("leaf");
        link(&mut tree, 1, "b", "a");
        tree.start_layer(1);
        tree.whiteout(Path::new(""), OsStr::new("a"), Path::new(".wh.a"))
            .expect("whiteout");
        // A link made in a later layer to a file of an earlier one.
        link(&mut tree, 0, "c", "b");
        tree.start_layer(2);
        tree.whiteout(Path::new(""), OsStr::new("b"), Path::new(".wh.b"))
            .expect("whiteout");
        assert_eq!(live(&tree), 1);
        let kept = &tree.inodes[0];
        assert_eq!((kept.layer, kept.ordinal), (0, 0));
        assert_eq!(kept.kind, Kind::Regular(5));
        assert_eq!(kept.meta.uname, b"someone");
        assert_eq!(kept.links, 1);

        // Its last name replaced, the inode is gone and its slot holds the new one.
        tree.leaf(entry(1, "c", Meta::default()), Kind::Symlink(b"t".to_vec()))
            .expect("leaf");
        assert_eq!(held(&tree), (1, 1));
        assert_eq!(tree.inodes[0].kind, Kind::Symlink(b"t".to_vec()));
    }

    #[test]
    fn removing_a_directory_frees_the_inodes_below_it() {
        let mut tree = Tree::new();
        tree.start_layer(0);
        tree.leaf(
            entry(0, "d/e/x", named(b"1")),
            Kind::Symlink(vec![b'x'; 100]),
        )
        .expect("leaf");
        tree.leaf(entry(1, "d/y", named(b"2")), Kind::Fifo)
            .expect("leaf");
        link(&mut tree, 2, "keep", "d/y");
        tree.leaf(entry(3, "o/z", named(b"3")), Kind::Char(1, 3))
            .expect("leaf");
        tree.start_layer(1);
        tree.whiteout(Path::new(""), OsStr::new("d"), Path::new(".wh.d"))
            .expect("whiteout");
        tree.opaque(Path::new("o"), Path::new("o/.wh..wh..opq"))
            .expect("opaque");
        // `keep` holds `d/y`'s inode; the others are gone.
        assert_eq!(live(&tree), 1);
        assert_eq!(held(&tree).1, b"user.big".len() + 1);
        // Nodes: the root, `keep`, `o`; five free slots (`d`, `d/e`, `d/e/x`, `d/y`, `o/z`).
        assert_eq!(tree.nodes.iter().filter(|n| n.alive).count(), 3);
        assert_eq!(tree.free_nodes.len(), 5);
    }
}
