//! Whiteouts and opaque markers: they remove what lower layers left, never what this layer
//! wrote (the [`Written`] set), whatever the order of the entries.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::io::Errno;

use super::written::{Node, Written};
use super::{Applier, resolve_error};
use crate::error::{Error, Result};
use crate::root;

impl Applier<'_> {
    pub(super) fn whiteout(&mut self, dir: &Path, name: &OsStr, shown: &Path) -> Result<()> {
        self.stats.whiteouts += 1;
        let root = self.root;
        let parent = match root.resolve(dir, false, self.opened()) {
            Ok(Some(resolved)) => resolved,
            Ok(None) | Err(Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(resolve_error(shown, e)),
        };
        if let Some(own) = self
            .written
            .find(&parent.physical)
            .and_then(|node| self.written.child(node, name))
        {
            // Whiteouts only hide lower layers: this layer's own entry stays, but what lower
            // layers left under it (it is a directory the layer wrote into) goes, as it would
            // had the whiteout come first.
            let is_dir = root::type_at(parent.fd.as_fd(), name)
                .map_err(|e| Error::sys("inspecting a whited-out entry", e).with_entry(shown))?
                == Some(FileType::Directory);
            if !is_dir {
                return Ok(());
            }
            self.cache = None;
            let sub = self
                .enter(parent.fd.as_fd(), &parent.physical, name)
                .map_err(|e| Error::sys("opening a whited-out directory", e).with_entry(shown))?;
            let mut physical = parent.physical.clone();
            physical.push(name.to_os_string());
            self.make_writable(sub.as_fd(), &physical, shown)?;
            return self.clear_lower(sub, physical, own, shown);
        }
        self.cache = None;
        self.make_writable(parent.fd.as_fd(), &parent.physical, shown)?;
        let removed = root::remove_all(parent.fd.as_fd(), name, &|| self.opts.stop.asked())
            .map_err(|e| Error::sys("removing a whited-out entry", e).with_entry(shown))?;
        if removed == Some(FileType::Directory) {
            self.forget_dirs(&parent.physical, name);
        }
        Ok(())
    }

    pub(super) fn opaque(&mut self, dir: &Path, shown: &Path) -> Result<()> {
        self.stats.opaques += 1;
        self.cache = None;
        let (dfd, node, physical) = self.opaque_dir(dir, shown)?;
        self.make_writable(dfd.as_fd(), &physical, shown)?;
        let cleared = self.clear_lower(dfd, physical, node, shown);
        self.cache = None;
        cleared
    }

    /// Open the directory an opaque marker names, with its node and physical path. A directory
    /// there is used as it is. A symlink is followed inside the root, as writing an entry
    /// below it would follow it, so the marker and the layer's entries under it agree in
    /// either order (containerd and umoci apply it so too). Anything else, or nothing, is
    /// replaced by a new directory.
    fn opaque_dir(&mut self, dir: &Path, shown: &Path) -> Result<(OwnedFd, Node, Vec<OsString>)> {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            let dfd = rustix::io::fcntl_dupfd_cloexec(self.root.fd(), 3)
                .map_err(|e| Error::sys("opening the root", e))?;
            return Ok((dfd, Written::ROOT, Vec::new()));
        };
        let parent = self.parent_fd(parent, shown)?;
        let kind = root::type_at(parent.fd.as_fd(), name)
            .map_err(|e| Error::sys("inspecting an opaque directory", e).with_entry(shown))?;
        if kind == Some(FileType::Symlink) {
            let root = self.root;
            match root.resolve(dir, true, self.opened()) {
                Ok(Some(resolved)) => {
                    self.charge_entries(resolved.created, shown)?;
                    let node = self.written.insert_path(&resolved.physical);
                    return Ok((resolved.fd, node, resolved.physical));
                }
                // A link to a file, or a loop: replaced like any other non-directory.
                Ok(None) | Err(Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(resolve_error(shown, e)),
            }
        }
        // Made here only when no lower layer has it and the layer has no entry for it: it is
        // then as implicit as a missing parent, and gets a parent's 0755.
        self.ensure_dir(parent.fd.as_fd(), name, 0o755, shown)?;
        let dfd = self
            .enter(parent.fd.as_fd(), &parent.physical, name)
            .map_err(|e| Error::sys("opening an opaque directory", e).with_entry(shown))?;
        let node = self.written.insert(parent.node, name);
        let mut physical = parent.physical.clone();
        physical.push(name.to_os_string());
        Ok((dfd, node, physical))
    }

    /// Remove everything under `dir` (node `node` of the written set, at `physical`) that this
    /// layer did not write, descending into the directories it did write. One directory is
    /// open at a time however deep those go (a step back up is a checked `openat("..")`, as
    /// in [`root::remove_all`]), so depth cannot run the process out of descriptors.
    fn clear_lower(
        &mut self,
        dir: OwnedFd,
        mut physical: Vec<OsString>,
        node: Node,
        shown: &Path,
    ) -> Result<()> {
        /// A directory being cleared.
        struct Level {
            node: Node,
            id: (u64, u64),
            left: Vec<OsString>,
        }
        let sys = |what: &'static str| move |e| Error::sys(what, e).with_entry(shown);
        let level = |fd: &OwnedFd, node: Node| -> Result<Level, Errno> {
            let st = rustix::fs::fstat(fd)?;
            Ok(Level {
                node,
                id: (st.st_dev, st.st_ino),
                left: root::list_dir(fd.as_fd())?,
            })
        };
        let mut current = dir;
        let mut stack = vec![level(&current, node).map_err(sys("listing a directory to clear"))?];
        loop {
            let next = stack
                .last_mut()
                .and_then(|l| l.left.pop().map(|name| (l.node, name)));
            let Some((node, name)) = next else {
                stack.pop();
                let Some(parent) = stack.last() else {
                    return Ok(());
                };
                physical.pop();
                current = root::step_up(&current, parent.id)
                    .and_then(|up| match up {
                        Some(fd) => Ok(fd),
                        None => self
                            .root
                            .reopen(&physical.iter().collect::<PathBuf>(), parent.id),
                    })
                    .map_err(sys("returning to a directory being cleared"))?;
                continue;
            };
            let Some(child) = self.written.child(node, &name) else {
                root::remove_all(current.as_fd(), &name, &|| self.opts.stop.asked())
                    .map_err(sys("removing a lower entry"))?;
                continue;
            };
            let kind = root::type_at(current.as_fd(), &name).map_err(sys("inspecting an entry"))?;
            if kind != Some(FileType::Directory) {
                continue;
            }
            let sub = self
                .enter(current.as_fd(), &physical, &name)
                .map_err(sys("opening a directory to clear"))?;
            physical.push(name);
            self.make_writable(sub.as_fd(), &physical, shown)?;
            stack.push(level(&sub, child).map_err(sys("listing a directory to clear"))?);
            current = sub;
        }
    }
}
