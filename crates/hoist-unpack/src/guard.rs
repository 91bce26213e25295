//! A pass-through reader that follows the tar block structure to refuse oversized metadata.
//!
//! The `tar` crate reads GNU long names/links and PAX extension records wholly into memory,
//! whatever size their header claims; a layer whose decompressed stream holds a multi-gigabyte
//! "long name" would make memory grow with the layer. This guard sits under the tar parser,
//! watches headers go by (tracking the same offsets the parser does: header sizes, PAX `size`
//! overrides, GNU sparse extension blocks) and fails the stream, naming the problem, when such
//! a metadata entry is larger than [`MAX_META`]. It never copies data entries.
//!
//! **Invariant:** the guard's idea of where the next header starts is the parser's. It reads
//! every size with the `tar` crate's own functions ([`tar::Header::entry_size`],
//! [`tar::PaxExtensions`]) and mirrors `tar::Archive`'s entry loop (`archive.rs`,
//! `next_entry`): a PAX `size` record (the *first* one) applies to the next entry the parser
//! hands out, never to an extension header; only GNU/ustar headers of type `L`, `K` and `x` are
//! buffered by the parser; any other header (a PAX global header `g` included) ends the group of
//! headers a PAX record applies to; a GNU sparse header is followed by extension blocks while
//! its "is extended" byte is exactly 1. A size the guard cannot read is an error, never a reason
//! to stop following the structure: once out of step, a later long name would go unchecked.

use std::io::{self, Read};

use tar::EntryType;

use crate::error::{Error, ErrorKind};

/// The largest GNU long name/link or PAX header accepted.
pub(crate) const MAX_META: u64 = 1024 * 1024;
const BLOCK: u64 = 512;
/// Most GNU sparse extension blocks one entry may have (21 fragments each). The tar crate
/// builds a sparse entry's whole map before handing it out and then drops fragments from its
/// front one by one, so a few hundred KB of extension blocks cost quadratic time and memory
/// beyond any layer limit. Docker and containerd never write sparse entries; a real sparse file
/// with 256 blocks has over 5000 data fragments.
pub(crate) const MAX_SPARSE_BLOCKS: u32 = 256;

/// Offset of the "is extended" byte in a GNU sparse extension block.
const EXT_IS_EXTENDED: usize = 504;

/// See the module docs.
pub(crate) struct TarGuard<R> {
    inner: R,
    pos: u64,
    next_header: u64,
    header: [u8; 512],
    header_len: usize,
    /// Data of the current PAX header being collected: (end offset, bytes).
    pax: Option<(u64, Vec<u8>)>,
    /// `size` from the PAX header the parser holds, for the next entry it hands out.
    pending_size: Option<u64>,
    /// Data size of a sparse entry whose extension blocks are still coming.
    sparse: Option<u64>,
    /// Extension blocks of the current sparse entry so far.
    sparse_blocks: u32,
    ended: bool,
}

impl<R: Read> TarGuard<R> {
    /// Watch the tar stream `inner`.
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
            sparse_blocks: 0,
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
                        self.pending_size = pax_size(&records)?;
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
            // A GNU sparse extension block; another follows only when its byte 504 is 1.
            self.sparse_blocks += 1;
            if self.sparse_blocks > MAX_SPARSE_BLOCKS {
                return Err(Error::new(
                    ErrorKind::InvalidLayer,
                    format!(
                        "a GNU sparse entry has more than {MAX_SPARSE_BLOCKS} extension blocks \
                         (its map alone would cost quadratic time)"
                    ),
                ));
            }
            if h[EXT_IS_EXTENDED] == 1 {
                self.next_header = self.pos;
            } else {
                self.sparse = None;
                self.next_header = self.pos + round_up(size)?;
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            // End of archive for the parser; what follows is drained, not parsed.
            self.ended = true;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&h);
        let kind = header.entry_type();
        let header_size = header.entry_size().map_err(|e| {
            Error::layer(
                crate::path::display(&header.path_bytes()),
                format!(
                    "tar header size field {:?} cannot be read: {e}",
                    String::from_utf8_lossy(&h[124..136])
                ),
            )
        })?;
        let is_extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let size = if is_extension {
            header_size
        } else {
            self.pending_size.unwrap_or(header_size)
        };
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let buffered = recognized
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions());
        if !buffered {
            // The parser hands this entry out: the PAX records it held are used up.
            self.pending_size = None;
        }
        if matches!(
            kind,
            EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
        ) && size > MAX_META
        {
            return Err(Error::new(
                ErrorKind::InvalidLayer,
                format!(
                    "tar metadata entry (type {:?}) of {size} bytes exceeds the {MAX_META}-byte limit",
                    kind.as_byte() as char
                ),
            ));
        }
        if buffered && kind.is_pax_local_extensions() {
            if size == 0 {
                self.pax = None;
                self.pending_size = None;
            } else {
                self.pax = Some((self.pos + size, Vec::new()));
            }
        }
        if kind.is_gnu_sparse() {
            let Some(gnu) = header.as_gnu() else {
                // The parser refuses this too ("sparse entry type listed but not GNU header").
                return Err(Error::layer(
                    crate::path::display(&header.path_bytes()),
                    "GNU sparse entry without a GNU header",
                ));
            };
            if gnu.is_extended() {
                self.sparse = Some(size);
                self.sparse_blocks = 0;
                self.next_header = self.pos;
                return Ok(());
            }
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

/// The `size` the tar parser takes from PAX extended header data: the first `size` record, as
/// `tar`'s `pax_extensions_value` finds it. Where that function gives up silently (a malformed
/// record before the first `size`, or a value that is not a number) and the parser falls back
/// to the header's size field, this refuses the layer instead.
fn pax_size(records: &[u8]) -> Result<Option<u64>, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidLayer,
            format!("PAX extended header {why}; its size record cannot be read"),
        )
    };
    for record in tar::PaxExtensions::new(records) {
        let record = record.map_err(|_| bad("holds a malformed record"))?;
        if record.key() != Ok("size") {
            continue;
        }
        let value = record
            .value()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| bad("has a `size` that is not a number"))?;
        return Ok(Some(value));
    }
    Ok(None)
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

    /// A ustar header block (valid checksum) with the size field given verbatim.
    fn header(kind: u8, size: &[u8; 12]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..4].copy_from_slice(b"name");
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(size);
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h.to_vec()
    }

    fn guard(stream: &[u8]) -> Result<(), Error> {
        let mut g = TarGuard::new(stream);
        // Odd read sizes: the guard must not depend on how the parser slices its reads.
        let mut buf = [0u8; 333];
        loop {
            match g.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Error::io("guard", e)),
            }
        }
    }

    #[test]
    fn sizes_are_read_as_the_parser_reads_them() {
        // Tab padding and base-256 with bytes before the last 8 set: `tar` reads 512 for both.
        for field in [
            b"\t0000001000\t",
            &[0x80, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 2, 0],
        ] {
            let mut s = header(b'0', field);
            s.extend_from_slice(&[7u8; 512]);
            s.extend_from_slice(&header(b'L', b"77777777777\0"));
            let err = guard(&s).expect_err("the long name after the file is seen");
            assert!(err.to_string().contains("exceeds"), "{field:?}: {err}");
        }
    }

    #[test]
    fn an_unreadable_size_fails_closed() {
        let err = guard(&header(b'0', b"12x4\0\0\0\0\0\0\0\0")).expect_err("unreadable");
        assert!(err.is_invalid_layer(), "{err:?}");
        assert!(err.to_string().contains("cannot be read"), "{err}");
        assert_eq!(err.entry(), Some(std::path::Path::new("name")));
    }

    /// A GNU sparse entry (no data) followed by `blocks` extension blocks, then the end.
    fn sparse_with_blocks(blocks: u32) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_path("sparse").expect("path");
        h.set_entry_type(EntryType::GNUSparse);
        h.set_size(0);
        h.as_gnu_mut().expect("gnu").isextended[0] = 1;
        h.set_cksum();
        let mut s = h.as_bytes().to_vec();
        for i in 0..blocks {
            let mut block = [0u8; 512];
            block[EXT_IS_EXTENDED] = u8::from(i + 1 < blocks);
            s.extend_from_slice(&block);
        }
        s.extend_from_slice(&[0u8; 1024]);
        s
    }

    #[test]
    fn a_sparse_entry_with_too_many_extension_blocks_is_refused() {
        guard(&sparse_with_blocks(10)).expect("a few blocks are fine");
        guard(&sparse_with_blocks(MAX_SPARSE_BLOCKS)).expect("up to the limit");
        let err = guard(&sparse_with_blocks(MAX_SPARSE_BLOCKS + 1)).expect_err("too many");
        assert!(err.is_invalid_layer(), "{err:?}");
        assert!(err.to_string().contains("extension blocks"), "{err}");
    }

    #[test]
    fn pax_size_record() {
        let size = |r: &[u8]| pax_size(r).map_err(|e| e.to_string());
        assert_eq!(size(b"12 size=100\n21 path=aaaaaaaaaaaa\n"), Ok(Some(100)));
        assert_eq!(size(b"21 path=aaaaaaaaaaaa\n12 size=200\n"), Ok(Some(200)));
        assert_eq!(size(b"21 path=aaaaaaaaaaaa\n"), Ok(None));
        // The parser takes the first `size`; so must the guard.
        assert_eq!(size(b"12 size=100\n10 size=0\n"), Ok(Some(100)));
        // Malformed after the first `size` does not matter to the parser.
        assert_eq!(size(b"12 size=100\ngarbage"), Ok(Some(100)));
        // Where the parser would silently fall back to the header's size, refuse.
        assert!(size(b"garbage\n12 size=100\n").is_err());
        assert!(size(b"12 size=1x0\n").is_err());
        assert!(size(b"13 size=-100\n").is_err());
    }
}
