//! A pass-through reader that follows the tar block structure to refuse oversized metadata.
//!
//! The `tar` crate reads GNU long names/links and PAX extension records wholly into memory,
//! whatever size their header claims; a layer whose decompressed stream holds a multi-gigabyte
//! "long name" would make memory grow with the layer. This guard sits under the tar parser,
//! watches headers go by (tracking the same offsets the parser does: header sizes, PAX `size`
//! overrides, GNU sparse extension blocks) and fails the stream, naming the problem, when such
//! a metadata entry is larger than [`MAX_META`]. It never copies data entries.

use std::io::{self, Read};

use crate::error::{Error, ErrorKind};

/// The largest GNU long name/link or PAX header accepted.
pub(crate) const MAX_META: u64 = 1024 * 1024;
const BLOCK: u64 = 512;

/// See the module docs.
pub(crate) struct TarGuard<R> {
    inner: R,
    pos: u64,
    next_header: u64,
    header: [u8; 512],
    header_len: usize,
    /// Data of the current PAX header being collected: (end offset, bytes).
    pax: Option<(u64, Vec<u8>)>,
    /// `size` from the last PAX header, for the next non-extension entry.
    pending_size: Option<u64>,
    /// Data size of a sparse entry whose extension blocks are still coming.
    sparse: Option<u64>,
    ended: bool,
}

impl<R: Read> TarGuard<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarGuard {
            inner,
            pos: 0,
            next_header: 0,
            header: [0; 512],
            header_len: 0,
            pax: None,
            pending_size: None,
            sparse: None,
            ended: false,
        }
    }

    fn observe(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() && !self.ended {
            if self.pos < self.next_header {
                let n = usize::try_from(self.next_header - self.pos)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                if let Some((end, buf)) = self.pax.as_mut() {
                    let want = usize::try_from(end.saturating_sub(self.pos))
                        .unwrap_or(usize::MAX)
                        .min(n);
                    buf.extend_from_slice(&data[..want]);
                    if self.pos + n as u64 >= *end {
                        let records = std::mem::take(buf);
                        self.pax = None;
                        self.pending_size = pax_size(&records);
                    }
                }
                self.pos += n as u64;
                data = &data[n..];
                continue;
            }
            let n = (512 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            self.pos += n as u64;
            data = &data[n..];
            if self.header_len == 512 {
                self.header_len = 0;
                self.on_header()?;
            }
        }
        Ok(())
    }

    fn on_header(&mut self) -> Result<(), Error> {
        let h = self.header;
        if let Some(size) = self.sparse {
            // A GNU sparse extension block; byte 504 says whether another one follows.
            if h[504] == 0 {
                self.sparse = None;
                self.next_header = self.pos + round_up(size)?;
            } else {
                self.next_header = self.pos;
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            // End of archive for the parser; what follows is drained, not parsed.
            self.ended = true;
            return Ok(());
        }
        let kind = h[156];
        let is_meta = matches!(kind, b'L' | b'K' | b'x' | b'g');
        let Some(mut size) = parse_size(&h[124..136]) else {
            // The parser will reject this header itself; stop following the structure.
            self.ended = true;
            return Ok(());
        };
        if !is_meta && let Some(pax) = self.pending_size.take() {
            size = pax;
        }
        if matches!(kind, b'L' | b'K' | b'x') && size > MAX_META {
            return Err(Error::new(
                ErrorKind::InvalidLayer,
                format!(
                    "tar metadata entry (type {:?}) of {size} bytes exceeds the {MAX_META}-byte limit",
                    kind as char
                ),
            ));
        }
        if kind == b'x' {
            self.pax = Some((self.pos + size, Vec::new()));
            if size == 0 {
                self.pax = None;
                self.pending_size = None;
            }
        }
        if kind == b'S' && h[482] != 0 {
            self.sparse = Some(size);
            self.next_header = self.pos;
            return Ok(());
        }
        self.next_header = self.pos + round_up(size)?;
        Ok(())
    }
}

fn round_up(size: u64) -> Result<u64, Error> {
    size.checked_add(BLOCK - 1)
        .map(|s| s & !(BLOCK - 1))
        .ok_or_else(|| Error::new(ErrorKind::Corrupt, "tar entry size overflows"))
}

/// A tar numeric field: octal text, or GNU base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(value);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

/// The `size` record of PAX extended header data, if any.
fn pax_size(records: &[u8]) -> Option<u64> {
    let mut rest = records;
    let mut found = None;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            return found;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
        else {
            return found;
        };
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"size=") {
            found = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
        rest = &rest[len..];
    }
    found
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n]).map_err(Error::into_io)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"00000001000\0"), Some(512));
        assert_eq!(parse_size(b"        \0\0\0\0"), Some(0));
        assert_eq!(
            parse_size(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(parse_size(b"9\0"), None);
    }

    #[test]
    fn pax_size_record() {
        assert_eq!(pax_size(b"12 size=100\n21 path=aaaaaaaaaaaa\n"), Some(100));
        assert_eq!(pax_size(b"21 path=aaaaaaaaaaaa\n12 size=200\n"), Some(200));
        assert_eq!(pax_size(b"21 path=aaaaaaaaaaaa\n"), None);
        assert_eq!(pax_size(b"12 size=100\ngarbage"), Some(100));
    }
}
