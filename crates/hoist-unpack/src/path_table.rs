//! Physical paths below a root, each kept once: what the applier remembers about directories
//! until a layer ends (modes to set, modes to give back) costs one name per distinct
//! directory, not one whole path per record.
//!
//! A layer can name one deep directory many times, or many directories each deep below the
//! last, and through symlinks a short tar path can stand for a physical path of thousands of
//! long components. Kept as whole paths, those records grow with the product of depth and
//! count (a 2 MB tar once asked for half a gigabyte). Kept as a table of (parent, name) nodes,
//! they grow with the directories the layer really reaches, each at most a name
//! (`NAME_MAX`) long.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// A path in a [`PathTable`]: [`PathTable::ROOT`] or a (parent, name) node.
pub(crate) type PathNode = usize;

/// Interned physical paths, as a tree of (parent, name) nodes.
#[derive(Debug, Default)]
pub(crate) struct PathTable {
    /// Node `n` (from 1) is `nodes[n - 1]`: its parent and its name.
    nodes: Vec<(PathNode, OsString)>,
    /// (parent, name) -> node.
    index: HashMap<(PathNode, OsString), PathNode>,
}

impl PathTable {
    /// The root itself (the empty path).
    pub(crate) const ROOT: PathNode = 0;

    /// The node of `name` under `parent`, added when new.
    pub(crate) fn child(&mut self, parent: PathNode, name: &OsStr) -> PathNode {
        let key = (parent, name.to_os_string());
        if let Some(node) = self.index.get(&key) {
            return *node;
        }
        self.nodes.push(key.clone());
        let node = self.nodes.len();
        self.index.insert(key, node);
        node
    }

    /// The node of a physical path below the root (its components in order), added when new.
    pub(crate) fn intern<'p>(
        &mut self,
        physical: impl IntoIterator<Item = &'p OsString>,
    ) -> PathNode {
        physical
            .into_iter()
            .fold(PathTable::ROOT, |node, comp| self.child(node, comp))
    }

    /// The path `node` stands for, relative to the root.
    pub(crate) fn path(&self, node: PathNode) -> PathBuf {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut at = node;
        while let Some((parent, name)) = at.checked_sub(1).and_then(|i| self.nodes.get(i)) {
            names.push(name);
            at = *parent;
        }
        names.iter().rev().collect()
    }

    /// The node of `name` under the physical path `parent`, when it was ever added.
    pub(crate) fn find(&self, parent: &[OsString], name: &OsStr) -> Option<PathNode> {
        parent
            .iter()
            .map(OsString::as_os_str)
            .chain(std::iter::once(name))
            .try_fold(PathTable::ROOT, |node, comp| {
                self.index.get(&(node, comp.to_os_string())).copied()
            })
    }

    /// `node` and the nodes above it, up to (not including) the root.
    pub(crate) fn ancestors(&self, node: PathNode) -> impl Iterator<Item = PathNode> + '_ {
        std::iter::successors(Some(node), |at| {
            at.checked_sub(1)
                .and_then(|i| self.nodes.get(i))
                .map(|(parent, _)| *parent)
        })
        .take_while(|at| *at != PathTable::ROOT)
    }

    /// How many components deep `node` is (0 for the root).
    pub(crate) fn depth(&self, node: PathNode) -> usize {
        let mut depth = 0;
        let mut at = node;
        while let Some((parent, _)) = at.checked_sub(1).and_then(|i| self.nodes.get(i)) {
            depth += 1;
            at = *parent;
        }
        depth
    }

    /// How many distinct directories are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(path: &str) -> Vec<OsString> {
        path.split('/').map(OsString::from).collect()
    }

    #[test]
    fn a_path_is_kept_once_and_read_back_whole() {
        let mut table = PathTable::default();
        let deep = table.intern(&comps("usr/lib/x86_64"));
        assert_eq!(table.intern(&comps("usr/lib/x86_64")), deep);
        let sibling = table.intern(&comps("usr/lib/i386"));
        assert_ne!(sibling, deep);
        // usr, usr/lib, and the two leaves.
        assert_eq!(table.len(), 4);
        assert_eq!(table.path(deep), PathBuf::from("usr/lib/x86_64"));
        assert_eq!(table.path(sibling), PathBuf::from("usr/lib/i386"));
        assert_eq!(table.depth(deep), 3);
        assert_eq!(table.path(PathTable::ROOT), PathBuf::new());
        assert_eq!(table.depth(PathTable::ROOT), 0);
    }

    #[test]
    fn many_deep_paths_cost_one_name_each() {
        let mut table = PathTable::default();
        let name = "n".repeat(255);
        let mut path = Vec::new();
        for _ in 0..500 {
            path.push(OsString::from(&name));
            table.intern(&path);
        }
        // 500 paths of up to 500 long names: 500 nodes, not 125,250 names.
        assert_eq!(table.len(), 500);
    }
}
