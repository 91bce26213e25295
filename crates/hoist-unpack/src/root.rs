//! Root-confined path resolution: the one place that turns a layer path into a directory fd.
//!
//! Every filesystem change the applier makes is an `*at` call relative to a directory fd handed
//! out here, with a single final name component that is never followed. Parent components are
//! walked one at a time with `O_NOFOLLOW | O_DIRECTORY`; a symlink met in a parent position is
//! resolved *inside the root* (absolute targets re-rooted at the root, `..` clamped at the root),
//! the way a chroot would see it. So a legitimate `lib64 -> /lib` followed by `lib64/ld.so`
//! writes `ROOT/lib/ld.so`, and a planted `x -> ../../../etc` can only ever reach `ROOT/etc`.
//!
//! No `std::fs` path API is used on paths inside the root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// How many symlinks one resolution may traverse (as Linux's `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// An open root directory.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// Flags to open a directory we will create entries in, never through a symlink.
pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Root {
    /// Open (creating it if needed) the root directory at `path`.
    #[allow(clippy::disallowed_methods)] // the caller's root path itself, not a path inside it
    pub(crate) fn open(path: &Path) -> std::io::Result<Root> {
        // The root itself is the caller's path: creating it is not a write inside the root.
        std::fs::create_dir_all(path)?;
        let fd = rustix::fs::open(path, dir_flags() & !OFlags::NOFOLLOW, Mode::empty())?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's path on the host (for messages only).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory fd.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolve the directory `dir` (normalised, relative) inside the root and open it.
    ///
    /// With `create`, missing directories are made (mode 0755) and their logical paths pushed to
    /// `created`; without it, `Ok(None)` means some component does not exist. A non-directory
    /// in a parent position is `ENOTDIR`; a symlink loop is `ELOOP`.
    pub(crate) fn open_dir(
        &self,
        dir: &Path,
        create: bool,
        mut created: Option<&mut Vec<PathBuf>>,
    ) -> Result<Option<OwnedFd>, Errno> {
        let mut queue: VecDeque<OsString> = dir
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        // The physical path (all real directories) below the root, and an fd for its end.
        let mut physical: Vec<OsString> = Vec::new();
        let mut current: Option<OwnedFd> = None;
        let mut hops = 0usize;
        while let Some(comp) = queue.pop_front() {
            let bytes = comp.as_bytes();
            if bytes.is_empty() || bytes == b"." || bytes == b"/" {
                continue;
            }
            if bytes == b".." {
                // Clamp at the root; re-walk the (symlink-free) physical path from the root.
                physical.pop();
                current = self.rewalk(&physical)?;
                continue;
            }
            let base = current.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let stat = match rustix::fs::statat(base, comp.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(e),
            };
            match stat.map(|s| FileType::from_raw_mode(s.st_mode)) {
                None => {
                    if !create {
                        return Ok(None);
                    }
                    match rustix::fs::mkdirat(base, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(list) = created.as_deref_mut() {
                        let mut logical: PathBuf = physical.iter().collect();
                        logical.push(&comp);
                        list.push(logical);
                    }
                    let fd =
                        rustix::fs::openat(base, comp.as_os_str(), dir_flags(), Mode::empty())?;
                    physical.push(comp);
                    current = Some(fd);
                }
                Some(FileType::Directory) => {
                    let fd =
                        rustix::fs::openat(base, comp.as_os_str(), dir_flags(), Mode::empty())?;
                    physical.push(comp);
                    current = Some(fd);
                }
                Some(FileType::Symlink) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::LOOP);
                    }
                    let target = rustix::fs::readlinkat(base, comp.as_os_str(), Vec::new())?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        physical.clear();
                        current = None;
                    }
                    for part in target.split(|b| *b == b'/').rev() {
                        queue.push_front(OsStr::from_bytes(part).to_os_string());
                    }
                    if physical.len() + queue.len() > 4 * crate::path::MAX_DEPTH {
                        return Err(Errno::NAMETOOLONG);
                    }
                }
                Some(_) => return Err(Errno::NOTDIR),
            }
        }
        match current {
            Some(fd) => Ok(Some(fd)),
            None => Ok(Some(rustix::io::fcntl_dupfd_cloexec(&self.fd, 3)?)),
        }
    }

    /// Open a physical (symlink-free) path from the root again, after a `..`.
    fn rewalk(&self, physical: &[OsString]) -> Result<Option<OwnedFd>, Errno> {
        let mut current: Option<OwnedFd> = None;
        for comp in physical {
            let base = current.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            current = Some(rustix::fs::openat(
                base,
                comp.as_os_str(),
                dir_flags(),
                Mode::empty(),
            )?);
        }
        Ok(current)
    }
}

/// The type of `name` in `dir`, not following symlinks; `None` when it does not exist.
pub(crate) fn type_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<FileType>, Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove `name` in `dir` whatever it is; a directory goes with everything below it.
/// Symlinks are removed, never followed. A missing entry is not an error. Returns the type of
/// what was removed.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<FileType>, Errno> {
    let kind = type_at(dir, name)?;
    match kind {
        None => return Ok(None),
        Some(FileType::Directory) => {
            let sub = match rustix::fs::openat(dir, name, dir_flags(), Mode::empty()) {
                Err(Errno::ACCESS) => {
                    // Unprivileged and the directory is not readable: it is going away, so
                    // open it up. `name` was just seen to be a directory, not a symlink.
                    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
                    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?
                }
                other => other?,
            };
            let children = list_dir(sub.as_fd())?;
            if !children.is_empty()
                && rustix::fs::fstat(&sub).is_ok_and(|st| st.st_mode & 0o300 != 0o300)
            {
                rustix::fs::fchmod(&sub, Mode::from_raw_mode(0o700))?;
            }
            for child in children {
                remove_all(sub.as_fd(), &child)?;
            }
            match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Some(_) => match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        },
    }
    Ok(kind)
}

/// The names in a directory (without `.` and `..`).
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect trees from outside
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn symlink_parents_resolve_inside_root() {
        let outer = tmp();
        let root_path = outer.path().join("root");
        let root = Root::open(&root_path).expect("open root");
        std::os::unix::fs::symlink("../../../..", root_path.join("up")).expect("symlink");
        std::os::unix::fs::symlink("/etc", root_path.join("abs")).expect("symlink");
        let fd = root
            .open_dir(Path::new("up/x"), true, None)
            .expect("resolve")
            .expect("created");
        rustix::fs::mkdirat(&fd, "marker", Mode::from_raw_mode(0o755)).expect("mkdir");
        assert!(root_path.join("x/marker").is_dir(), "clamped at the root");
        let mut created = Vec::new();
        root.open_dir(Path::new("abs/sub"), true, Some(&mut created))
            .expect("resolve")
            .expect("created");
        assert!(
            root_path.join("etc/sub").is_dir(),
            "absolute target re-rooted"
        );
        assert_eq!(
            created,
            vec![PathBuf::from("etc"), PathBuf::from("etc/sub")]
        );
        assert!(!outer.path().join("x").exists());
    }

    #[test]
    fn loops_and_files_in_parent_position_fail() {
        let outer = tmp();
        let root_path = outer.path().join("root");
        let root = Root::open(&root_path).expect("open root");
        std::os::unix::fs::symlink("loop", root_path.join("loop")).expect("symlink");
        std::fs::write(root_path.join("file"), b"x").expect("write");
        assert_eq!(
            root.open_dir(Path::new("loop/a"), true, None).err(),
            Some(Errno::LOOP)
        );
        assert_eq!(
            root.open_dir(Path::new("file/a"), true, None).err(),
            Some(Errno::NOTDIR)
        );
        assert!(matches!(
            root.open_dir(Path::new("missing/a"), false, None),
            Ok(None)
        ));
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let outer = tmp();
        let keep = outer.path().join("keep");
        std::fs::create_dir(&keep).expect("mkdir");
        std::fs::write(keep.join("f"), b"x").expect("write");
        let root_path = outer.path().join("root");
        let root = Root::open(&root_path).expect("open root");
        std::fs::create_dir_all(root_path.join("d/e")).expect("mkdir");
        std::os::unix::fs::symlink(&keep, root_path.join("d/link")).expect("symlink");
        remove_all(root.fd(), OsStr::new("d")).expect("remove");
        assert!(!root_path.join("d").exists());
        assert!(keep.join("f").exists());
    }
}
