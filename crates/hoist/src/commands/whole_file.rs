//! A file that appears under its name only once it is complete, and leaves nothing behind when
//! the writer dies first.
//!
//! On Linux the data goes into an unnamed file (`O_TMPFILE`) in the destination's directory;
//! only a finished file is linked in, under a hidden name, and renamed over the destination. A
//! process killed while writing (SIGKILL, the OOM killer, a power cut) leaves no half-written
//! archive next to the user's files: the kernel drops the unnamed file with its last
//! descriptor. Where the filesystem has no `O_TMPFILE`, or `/proc` is not there to link it
//! through, a hidden named temp file is used instead; that one a kill leaves behind.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

/// The prefix of the hidden names a file goes by before it is renamed into place.
const PREFIX: &str = ".hoist-archive-";

/// A file being written for `target`.
pub struct WholeFile {
    file: File,
    target: PathBuf,
    how: How,
}

enum How {
    /// Unnamed; `dir` is the destination's directory, to link it into.
    Unnamed { dir: OwnedFd },
    /// A hidden temp file next to the destination, removed if dropped uncommitted.
    Named(tempfile::TempPath),
}

impl WholeFile {
    /// Start a file for `target`, in `target`'s directory (so the final rename cannot cross
    /// filesystems), readable as the umask allows (as `docker save -o` leaves its output).
    pub fn create(target: &Path) -> io::Result<WholeFile> {
        let dir_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = rustix::fs::open(
            dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let unnamed = rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        );
        match unnamed {
            Ok(fd) if Path::new("/proc/self/fd").is_dir() => Ok(WholeFile {
                file: File::from(fd),
                target: target.to_path_buf(),
                how: How::Unnamed { dir },
            }),
            _ => {
                let named = tempfile::Builder::new()
                    .prefix(PREFIX)
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
                    .tempfile_in(dir_path)?;
                let (file, path) = named.into_parts();
                Ok(WholeFile {
                    file,
                    target: target.to_path_buf(),
                    how: How::Named(path),
                })
            }
        }
    }

    /// The file to write into.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Whether the file has no name until [`commit`](WholeFile::commit) (tests use this to
    /// know which case they are in).
    #[cfg(test)]
    fn is_unnamed(&self) -> bool {
        matches!(self.how, How::Unnamed { .. })
    }

    /// Flush the file to disk and put it in place of the target, replacing whatever was there.
    pub fn commit(self) -> io::Result<()> {
        self.file.sync_all()?;
        match self.how {
            How::Named(path) => path.persist(&self.target).map_err(|e| e.error),
            How::Unnamed { dir } => {
                let Some(name) = self.target.file_name() else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} names no file", self.target.display()),
                    ));
                };
                let hidden = link_hidden(&self.file, &dir)?;
                rustix::fs::renameat(&dir, &hidden, &dir, name).map_err(|e| {
                    let _ = rustix::fs::unlinkat(&dir, &hidden, AtFlags::empty());
                    io::Error::from(e)
                })
            }
        }
    }
}

/// Give the unnamed `file` a fresh hidden name in `dir` and return it. `linkat` never replaces
/// an existing name, which is why the file does not go straight to the target.
fn link_hidden(file: &File, dir: &OwnedFd) -> io::Result<PathBuf> {
    let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
    for attempt in 0u32..100 {
        let hidden = PathBuf::from(format!(
            "{PREFIX}{}-{}-{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        match rustix::fs::linkat(CWD, &source, dir.as_fd(), &hidden, AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => return Ok(hidden),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name to link the finished file under",
    ))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests inspect the directory from outside
mod tests {
    use std::io::Write;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn nothing_has_a_name_until_the_file_is_committed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("app.tar");
        std::fs::write(&target, b"old").expect("write");
        let mut file = WholeFile::create(&target).expect("create");
        // This test's point needs O_TMPFILE, which every filesystem CI uses for /tmp has.
        assert!(file.is_unnamed(), "O_TMPFILE unsupported here");
        file.file_mut().write_all(b"new archive").expect("write");
        assert_eq!(names(tmp.path()), ["app.tar"], "no temp file visible");
        assert_eq!(std::fs::read(&target).expect("read"), b"old");
        file.commit().expect("commit");
        assert_eq!(names(tmp.path()), ["app.tar"]);
        assert_eq!(std::fs::read(&target).expect("read"), b"new archive");

        // Dropped without a commit: nothing is left, the target is untouched.
        let mut file = WholeFile::create(&target).expect("create");
        file.file_mut().write_all(b"partial").expect("write");
        drop(file);
        assert_eq!(names(tmp.path()), ["app.tar"]);
        assert_eq!(std::fs::read(&target).expect("read"), b"new archive");
    }
}
