//! The output tar, written block by block: GNU headers, GNU long names and link names, and a
//! PAX extended header before an entry whose metadata the GNU header cannot hold.
//!
//! Names and link targets are written byte for byte as given (the `tar` crate's builder would
//! normalise a symlink target's `a//b` or `dir/`, which must stay what the layer said).

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use crate::apply::meta::Meta;

const BLOCK: usize = 512;
/// Bytes of a GNU header's name and link name fields.
const NAME_FIELD: usize = 100;
/// Bytes of a GNU header's user and group name fields.
const OWNER_FIELD: usize = 32;
/// The largest id the octal header field holds (7 digits).
const MAX_OCTAL_ID: u64 = 0o7_777_777;
/// The largest number eight octal digits hold (a header field filled, without terminator).
const MAX_FULL_OCTAL: u32 = 0o77_777_777;

/// A tar stream being written to `W`.
pub(super) struct TarOut<W: Write> {
    out: W,
    /// Bytes written so far.
    pub written: u64,
}

/// The data of a regular file: a reader yielding exactly `size` bytes.
pub(super) struct Data<'r> {
    pub reader: &'r mut dyn Read,
    pub size: u64,
}

impl<W: Write> TarOut<W> {
    pub(super) fn new(out: W) -> Self {
        TarOut { out, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rest = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        // At most 511 bytes, so the cast cannot truncate.
        self.put(&[0; BLOCK][..rest as usize])
    }

    /// A metadata entry (`L`, `K` or `x`) holding `data`.
    fn meta_entry(&mut self, kind: EntryType, name: &[u8], data: &[u8]) -> io::Result<()> {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_entry_type(kind);
        header.set_cksum();
        self.put(header.as_bytes())?;
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// Write one entry named `path` (normalised, relative) of `kind` with `meta`; `link` is a
    /// symlink's target or a hard link's target path; `device` the (major, minor) of a device;
    /// `data` a regular file's content. Returns the PAX records dropped (keys that are not
    /// UTF-8, which PAX cannot carry).
    pub(super) fn entry(
        &mut self,
        path: &[u8],
        kind: EntryType,
        meta: &Meta,
        link: Option<&[u8]>,
        device: Option<(u32, u32)>,
        data: Option<Data<'_>>,
    ) -> io::Result<u64> {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode & 0o7777);
        header.set_uid(meta.uid.min(MAX_OCTAL_ID));
        header.set_gid(meta.gid.min(MAX_OCTAL_ID));
        header.set_mtime(u64::try_from(meta.mtime).unwrap_or(0));
        header.set_size(data.as_ref().map_or(0, |d| d.size));
        let (pax, dropped) = pax_records(meta);
        if let Some(gnu) = header.as_gnu_mut() {
            if let Some((major, minor)) = device {
                device_field(&mut gnu.dev_major, major);
                device_field(&mut gnu.dev_minor, minor);
            }
            if meta.uname.len() <= OWNER_FIELD {
                gnu.uname[..meta.uname.len()].copy_from_slice(&meta.uname);
            }
            if meta.gname.len() <= OWNER_FIELD {
                gnu.gname[..meta.gname.len()].copy_from_slice(&meta.gname);
            }
        }
        if !pax.is_empty() {
            self.meta_entry(EntryType::XHeader, b"././@PaxHeader", &pax)?;
        }
        if path.len() > NAME_FIELD {
            self.meta_entry(EntryType::GNULongName, b"././@LongLink", &nul_ended(path))?;
        }
        let name = &path[..path.len().min(NAME_FIELD)];
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        if let Some(link) = link {
            if link.len() > NAME_FIELD {
                self.meta_entry(EntryType::GNULongLink, b"././@LongLink", &nul_ended(link))?;
            }
            let short = &link[..link.len().min(NAME_FIELD)];
            header.as_old_mut().linkname[..short.len()].copy_from_slice(short);
        }
        header.set_cksum();
        self.put(header.as_bytes())?;
        if let Some(data) = data {
            let copied = io::copy(&mut data.reader.take(data.size), &mut CountInto(self))?;
            if copied != data.size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ended after {copied} of its {} bytes; was the layer changed \
                         between the two passes?",
                        data.size
                    ),
                ));
            }
            self.pad(data.size)?;
        }
        Ok(dropped)
    }

    /// End the archive (two zero blocks) and flush.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        self.put(&[0; 2 * BLOCK])?;
        self.out.flush()
    }
}

/// Writes through a [`TarOut`], counting.
struct CountInto<'a, W: Write>(&'a mut TarOut<W>);

impl<W: Write> Write for CountInto<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.out.write(buf)?;
        self.0.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.out.flush()
    }
}

/// Write a device number into its 8-byte header field so that every reader gets it back
/// whole. The `tar` crate's setter writes the last seven octal digits only, so a major or minor
/// of 2^21 or more came out as another device; and PAX has no record for device numbers.
///
/// - Seven octal digits and a NUL, when they hold it: what every tar writes and reads.
/// - Up to 2^24, eight digits filling the field: GNU tar, Go's archive/tar, libarchive and the
///   `tar` crate (so this crate, reading the output back) all read that, and it is the only
///   form in which such a number reaches us from a layer (the `tar` crate reads no other).
/// - Beyond, base-256 (a first byte `0x80`, then the number big-endian), as GNU tar and Go
///   write large numbers in a GNU header.
fn device_field(field: &mut [u8; 8], value: u32) {
    if value <= MAX_FULL_OCTAL {
        let digits = if u64::from(value) <= MAX_OCTAL_ID {
            format!("{value:07o}\0")
        } else {
            format!("{value:08o}")
        };
        field.copy_from_slice(digits.as_bytes());
    } else {
        *field = [0; 8];
        field[0] = 0x80;
        field[4..].copy_from_slice(&value.to_be_bytes());
    }
}

fn nul_ended(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// The PAX records an entry needs (an mtime with nanoseconds or before 1970, ids or names too
/// large for the header, extended attributes), and how many attributes had to be dropped.
fn pax_records(meta: &Meta) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    if meta.mtime_nsec != 0 || meta.mtime < 0 {
        let text = if meta.mtime_nsec == 0 {
            meta.mtime.to_string()
        } else if meta.mtime < 0 {
            // -1.25 is 1.25 s before the epoch: seconds -2, 750 ms after it.
            let whole = meta.mtime.saturating_add(1);
            let frac = 1_000_000_000 - meta.mtime_nsec;
            let sign = if whole == 0 { "-" } else { "" };
            format!("{sign}{whole}.{frac:09}")
        } else {
            format!("{}.{:09}", meta.mtime, meta.mtime_nsec)
        };
        record(&mut out, b"mtime", text.as_bytes());
    }
    if meta.uid > MAX_OCTAL_ID {
        record(&mut out, b"uid", meta.uid.to_string().as_bytes());
    }
    if meta.gid > MAX_OCTAL_ID {
        record(&mut out, b"gid", meta.gid.to_string().as_bytes());
    }
    if meta.uname.len() > OWNER_FIELD {
        record(&mut out, b"uname", &meta.uname);
    }
    if meta.gname.len() > OWNER_FIELD {
        record(&mut out, b"gname", &meta.gname);
    }
    let mut dropped = 0;
    for (name, value) in &meta.xattrs {
        if std::str::from_utf8(name).is_err() || name.contains(&b'=') {
            dropped += 1;
            continue;
        }
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        record(&mut out, &key, value);
    }
    (out, dropped)
}

/// Append one PAX record, `LEN KEY=VALUE\n`, where LEN counts the whole record.
fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut out = Vec::new();
        record(&mut out, b"a", b"b");
        assert_eq!(out, b"6 a=b\n");
        // 97 bytes besides the length: "99" makes 99 in all.
        let mut out = Vec::new();
        record(&mut out, b"k", &[b'x'; 93]);
        assert_eq!(out.len(), 99);
        assert!(out.starts_with(b"99 k="));
        // 98 besides the length: two digits would make 100, which takes three: 101.
        let mut out = Vec::new();
        record(&mut out, b"k", &[b'x'; 94]);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 k="));
    }

    #[test]
    fn device_numbers_fill_their_field_as_readers_expect() {
        let field = |value| {
            let mut field = [b'x'; 8];
            device_field(&mut field, value);
            field
        };
        assert_eq!(&field(0), b"0000000\0");
        assert_eq!(&field(0o7_777_777), b"7777777\0");
        assert_eq!(&field(0o10_000_001), b"10000001");
        assert_eq!(&field(0o77_777_777), b"77777777");
        assert_eq!(field(1 << 24), [0x80, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(field(u32::MAX), [0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn pax_times_round_trip_through_the_reader() {
        let meta = |mtime, mtime_nsec| Meta {
            mtime,
            mtime_nsec,
            ..Meta::default()
        };
        let text = |m: &Meta| {
            let (records, _) = pax_records(m);
            String::from_utf8(records).expect("utf-8")
        };
        assert_eq!(text(&meta(5, 0)), "");
        assert_eq!(text(&meta(5, 500_000_000)), "21 mtime=5.500000000\n");
        assert_eq!(text(&meta(-2, 750_000_000)), "22 mtime=-1.250000000\n");
        assert_eq!(text(&meta(-1, 500_000_000)), "22 mtime=-0.500000000\n");
        assert_eq!(text(&meta(-3, 0)), "12 mtime=-3\n");
    }
}
