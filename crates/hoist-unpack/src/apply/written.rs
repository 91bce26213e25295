//! The set of physical paths one layer wrote, which whiteouts and opaque markers spare.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

/// A node of [`Written`]: a directory entry at a physical path.
pub(super) type Node = usize;

/// The physical paths the current layer wrote, with their ancestors, as a trie: a node per
/// distinct directory entry (parent node, name). Paths are physical (a symlink in a parent
/// position resolved, as [`Root::resolve`](crate::root::Root::resolve) walks it), so a path
/// written through any number of aliases is one chain of nodes, and memory is bounded by the
/// directory entries the layer really touched, each at most a name (`NAME_MAX`) long.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// (parent node, name) -> node; node [`Written::ROOT`] is the root directory.
    children: HashMap<(Node, OsString), Node>,
}

impl Written {
    /// The root directory (always in the set, never removed by a whiteout).
    pub(super) const ROOT: Node = 0;

    /// Add `name` under `parent`; its node.
    pub(super) fn insert(&mut self, parent: Node, name: &OsStr) -> Node {
        let next = self.children.len() + 1;
        *self
            .children
            .entry((parent, name.to_os_string()))
            .or_insert(next)
    }

    /// Add a physical path below the root (and so all its ancestors); its node.
    pub(super) fn insert_path(&mut self, physical: &[OsString]) -> Node {
        physical
            .iter()
            .fold(Written::ROOT, |node, comp| self.insert(node, comp))
    }

    /// The node of `name` under `parent`, if written.
    pub(super) fn child(&self, parent: Node, name: &OsStr) -> Option<Node> {
        self.children.get(&(parent, name.to_os_string())).copied()
    }

    /// The node of a physical path below the root, if written.
    pub(super) fn find(&self, physical: &[OsString]) -> Option<Node> {
        physical
            .iter()
            .try_fold(Written::ROOT, |node, comp| self.child(node, comp))
    }
}
