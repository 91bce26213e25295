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

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::path_table::{PathNode, PathTable};

/// How many symlinks one resolution may traverse (as Linux's `MAXSYMLINKS`).
pub(crate) const MAX_SYMLINK_HOPS: usize = 40;
/// How many path components one resolution may step through, counting every component of the
/// path and of each symlink target met (`.`, `..` and empty ones included). An entry path has
/// at most [`crate::path::MAX_DEPTH`] components and a symlink target at most about 2048, so a
/// real layer stays far below this; a hostile chain of long targets full of `..` (forty hops of
/// a thousand components each) is refused instead of costing tens of thousands of syscalls for
/// every entry that names it.
pub(crate) const MAX_STEPS: usize = 4096;

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
    /// With `create`, missing directories are made (mode 0755); without it, `Ok(None)` means
    /// some component does not exist. A non-directory in a parent position is `ENOTDIR`; a
    /// symlink loop, more than [`MAX_SYMLINK_HOPS`] symlinks or more than [`MAX_STEPS`]
    /// components walked is `ELOOP`.
    ///
    /// With `opened` (a caller without root's permission override), a directory on the way
    /// that its owner may not read or search (mode 0000, 0311, 0100: a lower layer's choice)
    /// is given owner `rwx` so the walk can go through it, and recorded in `opened` to have its
    /// mode restored later. Without it, such a directory is `EACCES`.
    pub(crate) fn open_dir(
        &self,
        dir: &Path,
        create: bool,
        opened: Option<&mut OpenedUp>,
    ) -> Result<Option<OwnedFd>, Errno> {
        Ok(self.resolve(dir, create, opened)?.map(|r| r.fd))
    }

    /// [`open_dir`](Root::open_dir), also saying where the directory physically is.
    pub(crate) fn resolve(
        &self,
        dir: &Path,
        create: bool,
        mut opened: Option<&mut OpenedUp>,
    ) -> Result<Option<Resolved>, Errno> {
        let mut queue: VecDeque<OsString> = dir
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut walk = Walk {
            root: self,
            physical: Vec::new(),
            ids: Vec::new(),
            current: None,
            steps: 0,
        };
        let mut hops = 0usize;
        let mut created = 0u64;
        while let Some(comp) = queue.pop_front() {
            walk.step(1)?;
            let bytes = comp.as_bytes();
            if bytes.is_empty() || bytes == b"." || bytes == b"/" {
                continue;
            }
            if bytes == b".." {
                // Clamp at the root.
                walk.up()?;
                continue;
            }
            let base = walk.base();
            let stat = match rustix::fs::statat(base, comp.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(e),
            };
            match stat.as_ref().map(|s| FileType::from_raw_mode(s.st_mode)) {
                None => {
                    if !create {
                        return Ok(None);
                    }
                    match rustix::fs::mkdirat(base, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => created += 1,
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    let fd =
                        rustix::fs::openat(base, comp.as_os_str(), dir_flags(), Mode::empty())?;
                    let st = rustix::fs::fstat(&fd)?;
                    walk.down(comp, fd, (st.st_dev, st.st_ino));
                }
                Some(FileType::Directory) => {
                    let st = stat.ok_or(Errno::NOENT)?;
                    let fd = open_subdir(base, &comp, &st, &walk.physical, opened.as_deref_mut())?;
                    walk.down(comp, fd, (st.st_dev, st.st_ino));
                }
                Some(FileType::Symlink) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::LOOP);
                    }
                    let target = rustix::fs::readlinkat(base, comp.as_os_str(), Vec::new())?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        walk.restart_at_root();
                    }
                    for part in target.split(|b| *b == b'/').rev() {
                        queue.push_front(OsStr::from_bytes(part).to_os_string());
                    }
                    if walk.physical.len() + queue.len() > 4 * crate::path::MAX_DEPTH {
                        return Err(Errno::NAMETOOLONG);
                    }
                }
                Some(_) => return Err(Errno::NOTDIR),
            }
        }
        let fd = match walk.current {
            Some(fd) => fd,
            None => rustix::io::fcntl_dupfd_cloexec(&self.fd, 3)?,
        };
        Ok(Some(Resolved {
            fd,
            physical: walk.physical,
            created,
        }))
    }

    /// [`open_physical`](Root::open_physical) for a directory that must still be the one with
    /// (device, inode) `expected`: `ESTALE` when the path no longer leads to it.
    pub(crate) fn reopen(&self, physical: &Path, expected: (u64, u64)) -> Result<OwnedFd, Errno> {
        let fd = self.open_physical(physical)?.ok_or(Errno::STALE)?;
        let st = rustix::fs::fstat(&fd)?;
        if (st.st_dev, st.st_ino) != expected {
            return Err(Errno::STALE);
        }
        Ok(fd)
    }

    /// Open the directory at a physical path (as [`Resolved::physical`] records it) without
    /// following any symlink: `Ok(None)` when some component is missing or no longer a real
    /// directory, because the layer replaced it since the path was recorded.
    pub(crate) fn open_physical(&self, physical: &Path) -> Result<Option<OwnedFd>, Errno> {
        let mut current = rustix::io::fcntl_dupfd_cloexec(&self.fd, 3)?;
        for comp in physical.components() {
            current =
                match rustix::fs::openat(&current, comp.as_os_str(), dir_flags(), Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
                    Err(e) => return Err(e),
                };
        }
        Ok(Some(current))
    }
}

/// The directories whose owner permissions were widened so an unprivileged unpack could go
/// through them or write in them: each to be given its old mode back once the layer is
/// applied, if it is still the same directory. Paths are kept in a [`PathTable`], so a deep
/// tree opened up costs a name per directory.
#[derive(Debug, Default)]
pub(crate) struct OpenedUp {
    /// Where they are below the root (every component a real directory).
    pub paths: PathTable,
    /// Per directory: its (device, inode), to recognise it, and its mode before the first
    /// time it was opened up.
    pub dirs: HashMap<PathNode, ((u64, u64), u32)>,
}

impl OpenedUp {
    /// Record `name` in the directory at `parent` (physical) as opened up from `mode`; a
    /// directory already recorded keeps its first mode, its own.
    pub(crate) fn record(&mut self, parent: &[OsString], name: &OsStr, id: (u64, u64), mode: u32) {
        let node = self.paths.intern(parent);
        let node = self.paths.child(node, name);
        self.dirs.entry(node).or_insert((id, mode));
    }
}

/// A directory resolved inside the root.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The open directory.
    pub fd: OwnedFd,
    /// Its path below the root with every symlink resolved: each component is a real
    /// directory (empty for the root itself).
    pub physical: Vec<OsString>,
    /// How many missing directories were made on the way (with `create`).
    pub created: u64,
}

/// The state of one resolution: where it is, how it got there, and how much it has done.
struct Walk<'r> {
    root: &'r Root,
    /// The physical path (all real directories) below the root.
    physical: Vec<OsString>,
    /// (device, inode) of each directory in `physical`, to check a step up lands where the
    /// walk came from.
    ids: Vec<(u64, u64)>,
    /// An fd for the end of `physical`; `None` is the root.
    current: Option<OwnedFd>,
    /// Components stepped through so far (bounded by [`MAX_STEPS`]).
    steps: usize,
}

impl Walk<'_> {
    /// Count `n` more steps of work, failing with `ELOOP` past [`MAX_STEPS`].
    fn step(&mut self, n: usize) -> Result<(), Errno> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err(Errno::LOOP);
        }
        Ok(())
    }

    /// The directory the walk is in.
    fn base(&self) -> BorrowedFd<'_> {
        self.current
            .as_ref()
            .map_or(self.root.fd.as_fd(), |fd| fd.as_fd())
    }

    /// Enter `comp`, a real directory just opened as `fd`.
    fn down(&mut self, comp: OsString, fd: OwnedFd, id: (u64, u64)) {
        self.physical.push(comp);
        self.ids.push(id);
        self.current = Some(fd);
    }

    /// Back to the root (an absolute symlink target).
    fn restart_at_root(&mut self) {
        self.physical.clear();
        self.ids.clear();
        self.current = None;
    }

    /// `..`: one directory up, staying at the root when already there. One `openat(..)`,
    /// checked to land on the directory the walk came through; when it does not (something
    /// moved the tree meanwhile), the physical path is opened again from the root.
    fn up(&mut self) -> Result<(), Errno> {
        if self.physical.pop().is_none() {
            return Ok(());
        }
        self.ids.pop();
        let Some(expected) = self.ids.last().copied() else {
            self.current = None;
            return Ok(());
        };
        if let Some(parent) = step_up(self.base(), expected)? {
            self.current = Some(parent);
            return Ok(());
        }
        self.step(self.physical.len())?;
        let mut current: Option<OwnedFd> = None;
        for comp in &self.physical {
            let base = current
                .as_ref()
                .map_or(self.root.fd.as_fd(), |fd| fd.as_fd());
            current = Some(rustix::fs::openat(
                base,
                comp.as_os_str(),
                dir_flags(),
                Mode::empty(),
            )?);
        }
        self.current = current;
        Ok(())
    }
}

/// `..` of `current`: the parent directory, if it is the one with (device, inode) `expected`
/// (`None` when the tree moved meanwhile: the caller opens its path again).
pub(crate) fn step_up(current: impl AsFd, expected: (u64, u64)) -> Result<Option<OwnedFd>, Errno> {
    let up = rustix::fs::openat(current, "..", dir_flags(), Mode::empty())?;
    let st = rustix::fs::fstat(&up)?;
    Ok(((st.st_dev, st.st_ino) == expected).then_some(up))
}

/// Open the directory `name` in `dir`, which `st` (from a `statat` without following) saw to be
/// a directory, not a symlink; `parent` is the physical path of `dir`.
///
/// With `opened`, a directory its owner may not read or search is first given owner `rwx` and
/// recorded there with its old mode. One that is not ours to change (`EPERM`) is left as it is,
/// and the open says why it fails.
pub(crate) fn open_subdir(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &rustix::fs::Stat,
    parent: &[OsString],
    opened: Option<&mut OpenedUp>,
) -> Result<OwnedFd, Errno> {
    let mode = st.st_mode & 0o7777;
    if mode & 0o500 != 0o500
        && let Some(list) = opened
    {
        match rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(mode | 0o700),
            AtFlags::empty(),
        ) {
            Ok(()) => list.record(parent, name, (st.st_dev, st.st_ino), mode),
            Err(Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
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
/// what was removed. `stop` is asked before each entry: `CANCELED` once it says so.
pub(crate) fn remove_all(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    stop: &dyn Fn() -> bool,
) -> Result<Option<FileType>, Errno> {
    if stop() {
        return Err(Errno::CANCELED);
    }
    let kind = type_at(dir, name)?;
    match kind {
        None => {}
        Some(FileType::Directory) => remove_tree(dir, name, stop)?,
        Some(_) => unlink(dir, name, AtFlags::empty())?,
    }
    Ok(kind)
}

/// Delete a root filesystem this crate wrote, as a caller must after a failed unpack (or any
/// tree). A symlink is removed, never followed, wherever it is, `root` itself included; a
/// directory a layer left without owner permissions (mode 0555, 0000) is opened up first, so
/// an unprivileged caller can delete what it unpacked; the walk holds one directory open at a
/// time however deep the tree. A `root` that does not exist is not an error.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a path with no final name
/// (`/`, `..`); [`ErrorKind::Io`](crate::ErrorKind::Io) when something cannot be removed.
pub fn remove_root(root: &Path) -> crate::Result<()> {
    let Some(name) = root.file_name() else {
        return Err(crate::Error::new(
            crate::ErrorKind::InvalidInput,
            format!("{} names no directory entry to remove", root.display()),
        ));
    };
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let shown = || root.display().to_string();
    let dir = match rustix::fs::open(parent, dir_flags() & !OFlags::NOFOLLOW, Mode::empty()) {
        Ok(dir) => dir,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => {
            return Err(crate::Error::sys(
                format!("opening the parent of {}", shown()),
                e,
            ));
        }
    };
    remove_all(dir.as_fd(), name, &|| false)
        .map(drop)
        .map_err(|e| crate::Error::sys(format!("removing {}", shown()), e))
}

/// Delete everything inside `root` and keep the directory itself, as a caller should after a
/// failed unpack into a directory that existed and was empty before: it is left as it was
/// found. Entries are removed as [`remove_root`] removes a tree (symlinks never followed,
/// locked directories opened up, one descriptor per level at most); `root` itself is the
/// caller's path and is followed if it is a symlink, as [`Unpacker`](crate::Unpacker) follows
/// it. A `root` that does not exist is not an error.
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when `root` is not a directory or something in it
/// cannot be removed.
pub fn empty_root(root: &Path) -> crate::Result<()> {
    let shown = || root.display().to_string();
    let dir = match rustix::fs::open(root, dir_flags() & !OFlags::NOFOLLOW, Mode::empty()) {
        Ok(dir) => dir,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(crate::Error::sys(format!("opening {}", shown()), e)),
    };
    let names =
        list_dir(dir.as_fd()).map_err(|e| crate::Error::sys(format!("reading {}", shown()), e))?;
    for name in names {
        remove_all(dir.as_fd(), &name, &|| false).map_err(|e| {
            crate::Error::sys(format!("removing {}", root.join(&name).display()), e)
        })?;
    }
    Ok(())
}

/// `unlinkat`, where an entry already gone is not an error.
fn unlink(dir: BorrowedFd<'_>, name: &OsStr, flags: AtFlags) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A directory [`remove_tree`] is emptying.
struct Emptying {
    /// Its name in its parent.
    name: OsString,
    /// Its (device, inode), to check a step back up lands in it.
    id: (u64, u64),
    /// Its entries not removed yet.
    left: Vec<OsString>,
}

/// Open the directory `name` in `dir` to empty it: owner `rwx` added where it lacks them (the
/// directory is going away; `name` was just seen to be a directory, not a symlink).
fn open_to_empty(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(OwnedFd, Emptying), Errno> {
    let fd = match rustix::fs::openat(dir, name, dir_flags(), Mode::empty()) {
        Err(Errno::ACCESS) => {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
            rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?
        }
        other => other?,
    };
    let left = list_dir(fd.as_fd())?;
    let st = rustix::fs::fstat(&fd)?;
    if !left.is_empty() && st.st_mode & 0o300 != 0o300 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
    }
    let emptying = Emptying {
        name: name.to_os_string(),
        id: (st.st_dev, st.st_ino),
        left,
    };
    Ok((fd, emptying))
}

/// Remove the directory `name` in `dir` and everything below it, depth first, holding one
/// directory fd at a time however deep the tree goes (a layer can build one thousands of levels
/// deep through symlinks; a descriptor per level would run out). A step back up is one
/// `openat("..")`, checked to land in the directory the walk came down through; when it does
/// not (the tree moved meanwhile), the way down is opened again from `dir`, never following a
/// symlink, and must lead to that same directory.
fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr, stop: &dyn Fn() -> bool) -> Result<(), Errno> {
    let (mut current, top) = open_to_empty(dir, name)?;
    let mut stack = vec![top];
    loop {
        let next = stack.last_mut().and_then(|d| d.left.pop());
        if let Some(child) = next {
            if stop() {
                return Err(Errno::CANCELED);
            }
            match type_at(current.as_fd(), &child)? {
                None => {}
                Some(FileType::Directory) => {
                    let (fd, emptying) = open_to_empty(current.as_fd(), &child)?;
                    stack.push(emptying);
                    current = fd;
                }
                Some(_) => unlink(current.as_fd(), &child, AtFlags::empty())?,
            }
            continue;
        }
        // `current` is empty: remove it from its parent, which becomes the current directory.
        let Some(done) = stack.pop() else {
            return Ok(());
        };
        let Some(parent) = stack.last() else {
            return unlink(dir, &done.name, AtFlags::REMOVEDIR);
        };
        current = match step_up(&current, parent.id)? {
            Some(up) => up,
            None => reopen(dir, &stack)?,
        };
        unlink(current.as_fd(), &done.name, AtFlags::REMOVEDIR)?;
    }
}

/// Open the innermost directory of `stack` again from `dir`, by name and without following a
/// symlink; `ESTALE` when the path no longer leads to it.
fn reopen(dir: BorrowedFd<'_>, stack: &[Emptying]) -> Result<OwnedFd, Errno> {
    let mut current = rustix::io::fcntl_dupfd_cloexec(dir, 3)?;
    for d in stack {
        current = rustix::fs::openat(&current, d.name.as_os_str(), dir_flags(), Mode::empty())?;
        let st = rustix::fs::fstat(&current)?;
        if (st.st_dev, st.st_ino) != d.id {
            return Err(Errno::STALE);
        }
    }
    Ok(current)
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
        let resolved = root
            .resolve(Path::new("abs/sub"), true, None)
            .expect("resolve")
            .expect("created");
        assert!(
            root_path.join("etc/sub").is_dir(),
            "absolute target re-rooted"
        );
        assert_eq!(resolved.physical, [OsString::from("etc"), "sub".into()]);
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
    fn work_per_resolution_is_capped() {
        let outer = tmp();
        let root_path = outer.path().join("root");
        let root = Root::open(&root_path).expect("open root");
        std::fs::create_dir(root_path.join("e")).expect("mkdir");
        // Each link is 1501 steps (1500 of them `.`): two resolve, three are over the cap.
        let dots = "./".repeat(1500);
        for (link, next) in [("a", "b"), ("b", "c"), ("c", "e"), ("one", "e")] {
            std::os::unix::fs::symlink(format!("{dots}{next}"), root_path.join(link))
                .expect("symlink");
        }
        assert_eq!(
            root.open_dir(Path::new("a"), false, None).err(),
            Some(Errno::LOOP)
        );
        let resolved = root
            .resolve(Path::new("one"), false, None)
            .expect("resolve")
            .expect("exists");
        assert_eq!(resolved.physical, vec![OsString::from("e")]);
    }

    #[test]
    fn dotdot_steps_up_to_where_the_walk_came_from() {
        let outer = tmp();
        let root_path = outer.path().join("root");
        let root = Root::open(&root_path).expect("open root");
        std::fs::create_dir_all(root_path.join("a/b/c")).expect("mkdir");
        std::fs::create_dir_all(root_path.join("y")).expect("mkdir");
        std::fs::create_dir_all(root_path.join("z")).expect("mkdir");
        std::os::unix::fs::symlink("a/b/c/../../../y", root_path.join("up")).expect("symlink");
        let resolved = root
            .resolve(Path::new("up/../a/b/.."), false, None)
            .expect("resolve")
            .expect("exists");
        assert_eq!(resolved.physical, vec![OsString::from("a")]);

        // The tree moves under a walk: `..` from `b` no longer lands in `a`, so the walk opens
        // its physical path from the root again instead of following the move.
        let mut walk = Walk {
            root: &root,
            physical: Vec::new(),
            ids: Vec::new(),
            current: None,
            steps: 0,
        };
        for comp in ["a", "b"] {
            let fd =
                rustix::fs::openat(walk.base(), comp, dir_flags(), Mode::empty()).expect("open");
            let st = rustix::fs::fstat(&fd).expect("fstat");
            walk.down(OsString::from(comp), fd, (st.st_dev, st.st_ino));
        }
        std::fs::rename(root_path.join("a/b"), root_path.join("z/b")).expect("rename");
        walk.up().expect("up");
        let landed = rustix::fs::fstat(walk.base()).expect("fstat");
        let a = rustix::fs::stat(root_path.join("a")).expect("stat");
        assert_eq!((landed.st_dev, landed.st_ino), (a.st_dev, a.st_ino));
        assert_eq!(walk.physical, vec![OsString::from("a")]);
        assert_eq!(walk.steps, 1, "the re-walk is counted");
        walk.up().expect("up");
        walk.up().expect("up at the root stays there");
        assert!(walk.current.is_none() && walk.physical.is_empty());
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
        remove_all(root.fd(), OsStr::new("d"), &|| false).expect("remove");
        assert!(!root_path.join("d").exists());
        assert!(keep.join("f").exists());
    }
}
