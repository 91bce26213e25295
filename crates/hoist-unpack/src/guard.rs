//! A pass-through reader that follows the tar block structure to refuse oversized metadata,
//! and hands the parser each header with its size and checksum read as Go reads them.
//!
//! The `tar` crate reads GNU long names/links and PAX extension records wholly into memory,
//! whatever size their header claims; a layer whose decompressed stream holds a multi-gigabyte
//! "long name" would make memory grow with the layer. This guard sits under the tar parser,
//! watches headers go by (tracking the same offsets the parser does: header sizes, PAX `size`
//! overrides, GNU sparse extension blocks) and fails the stream, naming the problem, when such
//! a metadata entry is larger than [`MAX_META`]. It never copies data entries.
//!
//! The `tar` crate also reads a header's size and checksum fields otherwise than Go's
//! `archive/tar`, which docker and containerd unpack with: it refuses an empty or all-NUL
//! field (Go reads 0) and one with leading NULs, and only takes a checksum summed over
//! unsigned bytes (Go also takes the signed sum old tars wrote). So the guard holds each header
//! block whole before the parser sees it, verifies its checksum and reads its size as Go does
//! ([`go_checksum_ok`], [`crate::apply::meta::numeric_field`]), refuses the header where Go
//! would, and where the crate would read either field otherwise, hands the parser the block
//! with the size written out canonically and the checksum recomputed ([`normalize`]). The
//! other fields (mode, owner, times, device numbers) are read as Go reads them where they are
//! used (`apply/meta.rs`); only the size and checksum are read inside the crate's own entry
//! loop, which cannot be told how.
//!
//! **Invariant:** the guard's idea of where the next header starts is the parser's. It reads
//! every size with the `tar` crate's own functions ([`tar::Header::entry_size`], on the block
//! as it hands it out, [`tar::PaxExtensions`]) and mirrors `tar::Archive`'s entry loop
//! (`archive.rs`, `next_entry`): a PAX `size` record (the *first* one) applies to the next
//! entry the parser hands out, never to an extension header; only GNU/ustar headers of type
//! `L`, `K` and `x` are buffered by the parser; any other header (a PAX global header `g`
//! included) ends the group of headers a PAX record applies to; a GNU sparse header is followed
//! by extension blocks while its "is extended" byte is exactly 1. A size the guard cannot read
//! is an error, never a reason to stop following the structure: once out of step, a later long
//! name would go unchecked.

use std::io::{self, Read};

use tar::EntryType;

use crate::apply::meta::{numeric_field, octal_field};
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
/// Where a header's size field lies.
const SIZE_FIELD: std::ops::Range<usize> = 124..136;
/// Where a header's checksum field lies.
const CHECKSUM_FIELD: std::ops::Range<usize> = 148..156;

/// See the module docs.
pub(crate) struct TarGuard<R> {
    inner: R,
    /// Bytes read from `inner` so far.
    pos: u64,
    next_header: u64,
    /// The block at `next_header` (a header, or a sparse extension block), read whole.
    header: [u8; 512],
    /// How many bytes of `header` were read (512, or fewer at the end of the stream).
    header_len: usize,
    /// How many bytes of `header` the parser has been handed.
    header_out: usize,
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
            header_out: 0,
            pax: None,
            pending_size: None,
            sparse: None,
            sparse_blocks: 0,
            ended: false,
        }
    }

    /// Data bytes `data` (anything but a header block) went by: collect a PAX header's.
    fn observe(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some((end, buf)) = self.pax.as_mut() {
            let want = usize::try_from(end.saturating_sub(self.pos))
                .unwrap_or(usize::MAX)
                .min(data.len());
            buf.extend_from_slice(&data[..want]);
            if self.pos + data.len() as u64 >= *end {
                let records = std::mem::take(buf);
                self.pax = None;
                self.pending_size = pax_size(&records)?;
            }
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Read the block at `next_header` whole (fewer bytes only at the end of the stream,
    /// which the parser then finds too) and follow it.
    fn read_header(&mut self) -> io::Result<()> {
        self.header_len = 0;
        self.header_out = 0;
        while self.header_len < self.header.len() {
            match self.inner.read(&mut self.header[self.header_len..]) {
                Ok(0) => break,
                Ok(n) => self.header_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += self.header_len as u64;
        if self.header_len < self.header.len() {
            self.ended = true;
            return Ok(());
        }
        self.on_header().map_err(Error::into_io)
    }

    fn on_header(&mut self) -> Result<(), Error> {
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
            if self.header[EXT_IS_EXTENDED] == 1 {
                self.next_header = self.pos;
            } else {
                self.sparse = None;
                self.next_header = self.pos + round_up(size)?;
            }
            return Ok(());
        }
        if self.header.iter().all(|b| *b == 0) {
            // End of archive for the parser; what follows is drained, not parsed.
            self.ended = true;
            return Ok(());
        }
        normalize(&mut self.header)?;
        let header = tar::Header::from_byte_slice(&self.header);
        let kind = header.entry_type();
        let header_size = header.entry_size().map_err(|e| {
            Error::layer(
                crate::path::display(&header.path_bytes()),
                format!("tar header size field cannot be read: {e}"),
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

/// Check the header `block` as Go's `archive/tar` does (its checksum, its size as
/// [`numeric_field`] reads it, which must not be negative), refusing it where Go would; where
/// the `tar` crate would read the size or checksum field otherwise (an empty or NUL-led field,
/// a checksum over signed bytes), write the size out canonically and the checksum anew, so the
/// crate reads what Go reads. A block the crate already reads as Go does is left as it is.
fn normalize(block: &mut [u8; 512]) -> Result<(), Error> {
    let shown = || {
        let header = tar::Header::from_byte_slice(block);
        crate::path::display(&header.path_bytes()).to_path_buf()
    };
    if !go_checksum_ok(block) {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "tar header checksum {:?} does not match the header",
                String::from_utf8_lossy(&block[CHECKSUM_FIELD])
            ),
        )
        .with_entry(shown()));
    }
    let size = numeric_field(&block[SIZE_FIELD])
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            Error::layer(
                shown(),
                format!(
                    "tar header size field {:?} cannot be read",
                    String::from_utf8_lossy(&block[SIZE_FIELD])
                ),
            )
        })?;
    let header = tar::Header::from_byte_slice(block);
    let crate_size = header.entry_size().ok();
    let crate_checksum = header.cksum().ok();
    if crate_size == Some(size) && crate_checksum == Some(unsigned_sum(block)) {
        return Ok(());
    }
    let mut header = header.clone();
    header.set_size(size);
    header.set_cksum();
    block.copy_from_slice(header.as_bytes());
    Ok(())
}

/// Whether `block`'s checksum field holds its checksum as Go's `archive/tar` verifies it: the
/// field read as octal text padded with NULs or spaces ([`octal_field`]), equal to the sum of
/// the block's bytes, the field counted as spaces, taken as unsigned or (as old Sun and some
/// other tars summed them) as signed bytes.
fn go_checksum_ok(block: &[u8; 512]) -> bool {
    let Some(value) = octal_field(&block[CHECKSUM_FIELD]) else {
        return false;
    };
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| match CHECKSUM_FIELD.contains(&i) {
            true => i64::from(b' '),
            false => i64::from(*b as i8),
        })
        .sum();
    value == i64::from(unsigned_sum(block)) || value == signed
}

/// The sum of `block`'s bytes as unsigned, the checksum field counted as spaces: the checksum
/// the `tar` crate takes and writes.
fn unsigned_sum(block: &[u8; 512]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, b)| match CHECKSUM_FIELD.contains(&i) {
            true => u32::from(b' '),
            false => u32::from(*b),
        })
        .sum()
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
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.ended && self.header_out == self.header_len && self.pos == self.next_header {
            self.read_header()?;
        }
        if self.header_out < self.header_len {
            let held = &self.header[self.header_out..self.header_len];
            let n = held.len().min(buf.len());
            buf[..n].copy_from_slice(&held[..n]);
            self.header_out += n;
            return Ok(n);
        }
        // Data: read up to the next header at most, so a header block is always read whole.
        let room = match self.ended {
            true => buf.len(),
            false => usize::try_from(self.next_header - self.pos)
                .unwrap_or(usize::MAX)
                .min(buf.len()),
        };
        let n = self.inner.read(&mut buf[..room])?;
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

    /// A size field holding `text` after `nuls` NULs, NULs after it.
    fn spelled(nuls: usize, text: &str) -> [u8; 12] {
        let mut field = [0u8; 12];
        field[nuls..nuls + text.len()].copy_from_slice(text.as_bytes());
        field
    }

    /// Set `h`'s checksum field to `text`, NUL-padded.
    fn checksum_field(h: &mut [u8], text: &str) {
        h[CHECKSUM_FIELD].fill(0);
        h[CHECKSUM_FIELD.start..CHECKSUM_FIELD.start + text.len()].copy_from_slice(text.as_bytes());
    }

    /// The entries the `tar` crate reads through the guard: (name, size, data).
    fn parsed(stream: &[u8]) -> Result<Vec<(String, u64, Vec<u8>)>, String> {
        let mut archive = tar::Archive::new(TarGuard::new(stream));
        let mut out = Vec::new();
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
            out.push((name, entry.size(), data));
        }
        Ok(out)
    }

    #[test]
    fn sizes_are_read_as_go_reads_them() {
        // NULs or spaces around the digits, leading ones too, and an empty field (0): the tar
        // crate refuses the NUL-led and empty ones by itself. The guard follows 512 bytes of
        // data, then sees the long name.
        let led = spelled(6, "1000");
        let cases: [(&[u8; 12], usize); 6] = [
            (&led, 512),
            (b"   1000    \0", 512),
            (b"0000001000 \0", 512),
            (&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0], 512),
            (&[0; 12], 0),
            (b"            ", 0),
        ];
        for (field, data) in cases {
            let mut s = header(b'0', field);
            s.extend_from_slice(&vec![7u8; data]);
            s.extend_from_slice(&header(b'L', b"77777777777\0"));
            let err = guard(&s).expect_err("the long name after the file is seen");
            assert!(err.to_string().contains("exceeds"), "{field:?}: {err}");
        }
    }

    #[test]
    fn sizes_go_refuses_are_refused() {
        // Tab padding and a `+` (the tar crate takes both), base-256 wider than 64 bits (the
        // crate reads its last 8 bytes), and a negative size.
        let fields: [&[u8; 12]; 4] = [
            b"\t0000001000\t",
            b"+0000001000\0",
            &[0x80, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 2, 0],
            &[0xff; 12],
        ];
        for field in fields {
            let err = guard(&header(b'0', field)).expect_err("refused");
            assert!(err.is_invalid_layer(), "{field:?}: {err:?}");
            assert!(err.to_string().contains("cannot be read"), "{err}");
        }
    }

    /// The parser reads, through the guard, the size the guard read: an entry's data (and the
    /// entry after it) come out whole and in step.
    #[test]
    fn the_parser_reads_entries_with_the_size_the_guard_read() {
        let mut s = header(b'5', &[0; 12]);
        s.extend_from_slice(&header(b'0', &spelled(10, "5")));
        s.extend_from_slice(b"hello");
        s.extend_from_slice(&[0; 507]);
        s.extend_from_slice(&header(b'0', b"00000000003\0"));
        s.extend_from_slice(b"abc");
        s.extend_from_slice(&[0; 509 + 1024]);
        let entries = parsed(&s).expect("read");
        let sizes: Vec<_> = entries.iter().map(|(_, n, d)| (*n, d.as_slice())).collect();
        assert_eq!(sizes, [(0, &b""[..]), (5, b"hello"), (3, b"abc")]);
    }

    #[test]
    fn checksums_are_verified_as_go_verifies_them() {
        let sum = |h: &[u8]| -> (u32, i64) {
            let mut blank = h.to_vec();
            blank[CHECKSUM_FIELD].fill(b' ');
            let unsigned = blank.iter().map(|b| u32::from(*b)).sum();
            let signed = blank.iter().map(|b| i64::from(*b as i8)).sum();
            (unsigned, signed)
        };
        let mut h = header(b'0', b"00000000003\0");
        // A name with bytes over 0x7f: the signed sum differs from the unsigned one.
        h[..5].copy_from_slice("n\u{e9}me".as_bytes());
        let (unsigned, signed) = sum(&h);
        assert_ne!(i64::from(unsigned), signed);
        let fields = [
            format!("{unsigned:06o}\0 "),
            // Leading NULs, which the tar crate reads as an empty field.
            format!("\0\0{unsigned:06o}"),
            // Summed over signed bytes, as old Sun tars did.
            format!("{signed:06o}\0 "),
        ];
        for field in fields {
            let mut s = h.clone();
            checksum_field(&mut s, &field);
            s.extend_from_slice(b"abc");
            s.extend_from_slice(&[0; 509 + 1024]);
            let entries = parsed(&s).unwrap_or_else(|e| panic!("{field:?}: {e}"));
            assert_eq!(entries.len(), 1, "{field:?}");
            assert_eq!(entries[0].2, b"abc", "{field:?}");
        }
        for field in [format!("{:06o}\0 ", unsigned + 1), String::new()] {
            let mut s = h.clone();
            checksum_field(&mut s, &field);
            let err = guard(&s).expect_err("a wrong checksum");
            assert!(err.is_corrupt(), "{field:?}: {err:?}");
            assert!(err.to_string().contains("checksum"), "{err}");
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
