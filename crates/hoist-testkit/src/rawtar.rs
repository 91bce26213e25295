//! A raw tar writer (it writes any name, including `..` and absolute ones, which `tar::Builder`
//! refuses, and any size field) and a snapshot of a directory tree for before/after comparisons.
#![allow(clippy::disallowed_methods)] // snapshots read trees from outside any unpack root

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Writes tar archives header by header.
#[derive(Debug, Default)]
pub struct Tar {
    buf: Vec<u8>,
    /// Modification time written in every following header.
    pub mtime: u64,
    /// Owner written in every following header.
    pub uid: u64,
    /// Group written in every following header.
    pub gid: u64,
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(width);
    field[..width].copy_from_slice(&bytes[start..]);
    field[width] = 0;
}

impl Tar {
    /// An empty archive with a fixed mtime.
    pub fn new() -> Self {
        Tar {
            mtime: 1_600_000_000,
            ..Tar::default()
        }
    }

    /// Append one ustar header as given (a GNU long-name/long-link header first when a name
    /// is over 100 bytes); the caller appends the data for a non-zero `size`.
    pub fn header(
        &mut self,
        name: &[u8],
        kind: u8,
        size: u64,
        mode: u32,
        link: &[u8],
        dev: (u64, u64),
    ) -> &mut Self {
        if name.len() > 100 {
            self.header(
                b"././@LongLink",
                b'L',
                name.len() as u64 + 1,
                0o644,
                b"",
                (0, 0),
            );
            self.buf.extend_from_slice(name);
            self.buf.push(0);
            self.pad();
        }
        if link.len() > 100 {
            self.header(
                b"././@LongLink",
                b'K',
                link.len() as u64 + 1,
                0o644,
                b"",
                (0, 0),
            );
            self.buf.extend_from_slice(link);
            self.buf.push(0);
            self.pad();
        }
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], self.uid);
        octal(&mut h[116..124], self.gid);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], self.mtime);
        h[156] = kind;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], dev.0);
        octal(&mut h[337..345], dev.1);
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        self.buf.extend_from_slice(&h);
        self
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    /// A regular file with this content and mode.
    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.header(name.as_bytes(), b'0', data.len() as u64, mode, b"", (0, 0));
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// A regular file, mode 0644.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }

    /// A directory with this mode.
    pub fn dir_mode(&mut self, name: &str, mode: u32) -> &mut Self {
        self.header(name.as_bytes(), b'5', 0, mode, b"", (0, 0))
    }

    /// A directory, mode 0755.
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.dir_mode(name, 0o755)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name.as_bytes(), b'2', 0, 0o777, target.as_bytes(), (0, 0))
    }

    /// A hard link to `target`.
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name.as_bytes(), b'1', 0, 0o644, target.as_bytes(), (0, 0))
    }

    /// A named pipe.
    pub fn fifo(&mut self, name: &str) -> &mut Self {
        self.header(name.as_bytes(), b'6', 0, 0o644, b"", (0, 0))
    }

    /// A character device.
    pub fn char_dev(&mut self, name: &str, major: u64, minor: u64) -> &mut Self {
        self.header(name.as_bytes(), b'3', 0, 0o666, b"", (major, minor))
    }

    /// An empty file (a whiteout when the name says so).
    pub fn whiteout(&mut self, name: &str) -> &mut Self {
        self.file(name, b"")
    }

    /// A PAX extended header for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let core = key.len() + value.len() + 3;
            let mut len = core + 1;
            while len.to_string().len() + core != len {
                len = len.to_string().len() + core;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.header(b"PaxHeaders/x", b'x', body.len() as u64, 0o644, b"", (0, 0));
        self.buf.extend_from_slice(&body);
        self.pad();
        self
    }

    /// The archive with its end-of-archive blocks; the writer is empty again.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// One node of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `d`, `l`, `f`, `p`, `c`, `b` or `?`.
    pub kind: char,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count (0 for directories).
    pub nlink: u64,
    /// Modification time.
    pub mtime: i64,
    /// File content, link target or device number.
    pub content: Vec<u8>,
}

/// Everything under `dir` (not following symlinks), skipping top-level names in `skip`.
pub fn snapshot(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out, true);
    out
}

fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<PathBuf, Node>, top: bool) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    for name in names {
        if top && skip.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        let path = dir.join(&name);
        let md = std::fs::symlink_metadata(&path).expect("lstat");
        let ft = md.file_type();
        let (kind, content) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_symlink() {
            (
                'l',
                std::fs::read_link(&path)
                    .expect("readlink")
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_file() {
            ('f', std::fs::read(&path).expect("read"))
        } else if ft.is_fifo() {
            ('p', Vec::new())
        } else if ft.is_char_device() {
            ('c', md.rdev().to_le_bytes().to_vec())
        } else if ft.is_block_device() {
            ('b', md.rdev().to_le_bytes().to_vec())
        } else {
            ('?', Vec::new())
        };
        let rel = path.strip_prefix(base).expect("prefix").to_path_buf();
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                nlink: if kind == 'd' { 0 } else { md.nlink() },
                mtime: md.mtime(),
                content,
            },
        );
        if kind == 'd' {
            walk(base, &path, skip, out, false);
        }
    }
}
