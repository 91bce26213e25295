//! What an entry's metadata sets once its node exists: owner, mode (setuid and setgid kept
//! only where they cannot grant more than the image meant), extended attributes and mtime.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, XattrFlags};
use rustix::io::Errno;

use super::meta::Meta;
use super::{Applier, times, timespec};
use crate::error::{Error, Result};

impl Applier<'_> {
    pub(super) fn file_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        // chown first: it clears setuid/setgid, which the chmod then sets.
        self.chown_fd(fd, meta, shown)?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.file_mode(meta)))
            .map_err(|e| Error::sys("setting the mode", e).with_entry(shown))?;
        self.xattrs_fd(fd, meta, shown)?;
        rustix::fs::futimens(fd, &times(timespec(meta.mtime, meta.mtime_nsec)))
            .map_err(|e| Error::sys("setting the mtime", e).with_entry(shown))
    }

    /// The mode a file gets: the entry's, except that root unpacking without changing
    /// ownership (rootless, or an id that cannot be set) keeps setuid and setgid only for the
    /// owner the image names. The file then belongs to root, and the image's setuid `uid 1000`
    /// program would otherwise become a setuid-root one. (Any other user owning a setuid file
    /// gains nothing by it.)
    pub(super) fn file_mode(&self, meta: &Meta) -> u32 {
        let mut mode = meta.mode & 0o7777;
        if self.ids(meta).is_none() && rustix::process::geteuid().is_root() {
            if meta.uid != 0 {
                mode &= !0o4000;
            }
            if u64::from(rustix::process::getegid().as_raw()) != meta.gid {
                mode &= !0o2000;
            }
        }
        mode
    }

    pub(super) fn ids(&self, meta: &Meta) -> Option<(rustix::fs::Uid, rustix::fs::Gid)> {
        if !self.opts.chown {
            return None;
        }
        // -1 means "do not change"; ids that do not fit are treated the same way.
        let uid = u32::try_from(meta.uid).ok().filter(|u| *u != u32::MAX)?;
        let gid = u32::try_from(meta.gid).ok().filter(|g| *g != u32::MAX)?;
        Some((
            rustix::fs::Uid::from_raw(uid),
            rustix::fs::Gid::from_raw(gid),
        ))
    }

    pub(super) fn chown_fd(&self, fd: BorrowedFd<'_>, meta: &Meta, shown: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids(meta) {
            rustix::fs::fchown(fd, Some(uid), Some(gid))
                .map_err(|e| Error::sys("changing ownership", e).with_entry(shown))?;
        }
        Ok(())
    }

    pub(super) fn chown_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        if let Some((uid, gid)) = self.ids(meta) {
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Error::sys("changing ownership", e).with_entry(shown))?;
        }
        Ok(())
    }

    pub(super) fn utimes_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        rustix::fs::utimensat(
            dir,
            name,
            &times(timespec(meta.mtime, meta.mtime_nsec)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::sys("setting the mtime", e).with_entry(shown))
    }

    pub(super) fn xattrs_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        for (key, value) in &meta.xattrs {
            if !self.opts.xattrs || key.starts_with(b"trusted.overlay.") {
                self.stats.xattrs_skipped += 1;
                continue;
            }
            match rustix::fs::fsetxattr(fd, OsStr::from_bytes(key), value, XattrFlags::empty()) {
                Ok(()) => self.stats.xattrs_set += 1,
                Err(Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::INVAL) => {
                    self.stats.xattrs_skipped += 1;
                }
                Err(e) => {
                    return Err(Error::sys("setting an xattr", e).with_entry(shown));
                }
            }
        }
        Ok(())
    }
}
