//! One tar entry's metadata: header fields, overridden by its PAX records.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Metadata of one entry (header fields, overridden by PAX records).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Owner and group names (header fields, or PAX `uname` / `gname`); empty when unnamed.
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The device number of a char or block entry.
pub(super) fn device<R: Read>(entry: &tar::Entry<'_, R>, shown: &Path) -> Result<rustix::fs::Dev> {
    let (major, minor) = device_numbers(entry.header(), shown)?;
    Ok(rustix::fs::makedev(major, minor))
}

/// The major and minor numbers of a char or block entry's header, read as its other numeric
/// fields are ([`numeric_field`]): an empty field is 0. A header older than ustar has no such
/// fields, and is refused.
pub(crate) fn device_numbers(header: &tar::Header, shown: &Path) -> Result<(u32, u32)> {
    let fields = if let Some(ustar) = header.as_ustar() {
        Some((&ustar.dev_major, &ustar.dev_minor))
    } else {
        header.as_gnu().map(|gnu| (&gnu.dev_major, &gnu.dev_minor))
    };
    let number = |field: &[u8]| numeric_field(field).and_then(|n| u32::try_from(n).ok());
    match fields.map(|(major, minor)| (number(major), number(minor))) {
        Some((Some(major), Some(minor))) => Ok((major, minor)),
        _ => Err(Error::layer(
            shown,
            "device entry without valid major/minor numbers",
        )),
    }
}

/// Read an entry's metadata: its header, then its PAX records over it.
pub(crate) fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
    let fields = entry.header().as_old();
    let corrupt =
        |what: &str| Error::new(ErrorKind::Corrupt, format!("bad tar header field: {what}"));
    // A mode, owner or group that is negative or too wide for its type is as malformed as one
    // that is not a number at all.
    let read = |field: &[u8], what: &str| numeric_field(field).ok_or_else(|| corrupt(what));
    let header = entry.header();
    let mut meta = Meta {
        mode: u32::try_from(read(&fields.mode, "mode")?).map_err(|_| corrupt("mode"))?,
        uid: u64::try_from(read(&fields.uid, "uid")?).map_err(|_| corrupt("uid"))?,
        gid: u64::try_from(read(&fields.gid, "gid")?).map_err(|_| corrupt("gid"))?,
        mtime: read(&fields.mtime, "mtime")?,
        uname: header.username_bytes().unwrap_or_default().to_vec(),
        gname: header.groupname_bytes().unwrap_or_default().to_vec(),
        ..Meta::default()
    };
    let pax = entry
        .pax_extensions()
        .map_err(|e| Error::tar("reading PAX records", e))?;
    if let Some(pax) = pax {
        for ext in pax {
            let ext = ext.map_err(|e| Error::tar("reading PAX records", e))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let text = || std::str::from_utf8(value).ok();
            match key {
                b"uid" => meta.uid = text().and_then(|t| t.parse().ok()).unwrap_or(meta.uid),
                b"gid" => meta.gid = text().and_then(|t| t.parse().ok()).unwrap_or(meta.gid),
                b"uname" => meta.uname = value.to_vec(),
                b"gname" => meta.gname = value.to_vec(),
                b"mtime" => {
                    if let Some((sec, nsec)) = text().and_then(parse_pax_time) {
                        meta.mtime = sec;
                        meta.mtime_nsec = nsec;
                    }
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        meta.xattrs.push((name.to_vec(), value.to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// A numeric header field (mode, uid, gid, mtime, device numbers) read as Go's `archive/tar`
/// reads it, which is what docker, containerd and umoci unpack with, so a layer they take is
/// taken here too:
///
/// - a first byte with its high bit set makes the field a big-endian base-256 number (a GNU
///   extension), negative when the next bit is set too; one that does not fit an `i64` is
///   malformed;
/// - otherwise it is octal text: NULs and spaces on either side are padding, so an all-NUL or
///   all-space field (a writer that never set it) is 0; a NUL inside ends the text (a C
///   string); what is left must be octal digits only (no sign, no space between digits).
///
/// `None` for a malformed field. (The `tar` crate's own getters read an all-NUL field, or one
/// with leading NULs, as an error, and allow a `+` sign and other whitespace.)
pub(crate) fn numeric_field(field: &[u8]) -> Option<i64> {
    match field.first() {
        Some(first) if first & 0x80 != 0 => base256(field),
        _ => octal_field(field),
    }
}

/// A base-256 field: the first byte's top bit is the marker, its next bit the sign (two's
/// complement over the whole field).
fn base256(field: &[u8]) -> Option<i64> {
    let negative = field.first()? & 0x40 != 0;
    let invert = if negative { 0xff } else { 0 };
    let mut value: u64 = 0;
    for (i, byte) in field.iter().enumerate() {
        let mut byte = byte ^ invert;
        if i == 0 {
            byte &= 0x7f;
        }
        if value >> 56 != 0 {
            return None;
        }
        value = value << 8 | u64::from(byte);
    }
    let value = i64::try_from(value).ok()?;
    Some(if negative { !value } else { value })
}

/// An octal text field read as Go's `archive/tar` reads one that may not be base-256 (its
/// `parseOctal`, which it verifies the checksum with): NULs and spaces on either side are
/// padding, an empty field is 0, a NUL inside ends the text. `None` for a malformed field.
pub(crate) fn octal_field(field: &[u8]) -> Option<i64> {
    let padding = |b: &u8| *b == 0 || *b == b' ';
    let Some(start) = field.iter().position(|b| !padding(b)) else {
        return Some(0);
    };
    let end = field
        .iter()
        .rposition(|b| !padding(b))
        .map_or(start, |i| i + 1);
    let text = field[start..end]
        .split(|b| *b == 0)
        .next()
        .unwrap_or_default();
    if text.is_empty() || !text.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    text.iter().try_fold(0i64, |value, digit| {
        value.checked_mul(8)?.checked_add(i64::from(digit - b'0'))
    })
}

/// Parse a PAX time (`123`, `123.5`, `-1.25`) into seconds and nanoseconds.
fn parse_pax_time(text: &str) -> Option<(i64, u32)> {
    let (sec, frac) = text.split_once('.').unwrap_or((text, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    if text.starts_with('-') && nsec > 0 {
        // The earliest second has no second before it: such a time is dropped, not wrapped.
        Some((sec.checked_sub(1)?, 1_000_000_000 - nsec))
    } else {
        Some((sec, nsec))
    }
}

#[cfg(test)]
mod tests {
    use super::{numeric_field, parse_pax_time};

    #[test]
    fn numeric_fields_read_as_go_reads_them() {
        // Empty fields are 0, whatever pads them.
        assert_eq!(numeric_field(&[0; 8]), Some(0));
        assert_eq!(numeric_field(b"        "), Some(0));
        assert_eq!(numeric_field(b" \0 \0 \0\0\0"), Some(0));
        assert_eq!(numeric_field(b""), Some(0));
        // Padding on either side, NUL or space, in any mix.
        assert_eq!(numeric_field(b"0000644\0"), Some(0o644));
        assert_eq!(numeric_field(b"  644 \0 "), Some(0o644));
        assert_eq!(
            numeric_field(&[0, 0, 0, b' ', b'6', b'4', b'4', b' ']),
            Some(0o644)
        );
        assert_eq!(numeric_field(b"00000001750\0"), Some(0o1750));
        // A NUL inside ends the text.
        assert_eq!(numeric_field(b"17\0 3  \0"), Some(0o17));
        // Not octal, a sign, or a space between digits: malformed.
        for bad in [
            &b"0000x44\0"[..],
            b"00008\0",
            b"+644\0",
            b"6 44\0",
            b"64\t4",
        ] {
            assert_eq!(
                numeric_field(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Base-256, positive and negative (the GNU extension for what octal cannot hold).
        assert_eq!(numeric_field(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), Some(256));
        assert_eq!(numeric_field(&[0xff; 12]), Some(-1));
        let mut minus_two = [0xff; 12];
        minus_two[11] = 0xfe;
        assert_eq!(numeric_field(&minus_two), Some(-2));
        let mut huge = [0u8; 12];
        huge[0] = 0x80;
        huge[3] = 1; // more than 64 bits of value
        assert_eq!(numeric_field(&huge), None);
        let mut top = [0u8; 9];
        top[0] = 0x80;
        top[1] = 0x80; // bit 63 set: not an i64
        assert_eq!(numeric_field(&top), None);
        let mut max = [0xffu8; 9];
        max[0] = 0x80;
        max[1] = 0x7f;
        assert_eq!(numeric_field(&max), Some(i64::MAX));
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("123"), Some((123, 0)));
        assert_eq!(parse_pax_time("123.5"), Some((123, 500_000_000)));
        assert_eq!(parse_pax_time("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time("-9223372036854775808.5"), None);
        assert_eq!(parse_pax_time("-9223372036854775808"), Some((i64::MIN, 0)));
        assert_eq!(parse_pax_time("1.000000001999"), Some((1, 1)));
        assert_eq!(parse_pax_time("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
