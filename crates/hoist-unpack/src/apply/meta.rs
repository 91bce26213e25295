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
    let header = entry.header();
    let major = header.device_major().ok().flatten();
    let minor = header.device_minor().ok().flatten();
    match (major, minor) {
        (Some(major), Some(minor)) => Ok(rustix::fs::makedev(major, minor)),
        _ => Err(Error::layer(
            shown,
            "device entry without valid major/minor numbers",
        )),
    }
}

/// Read an entry's metadata: its header, then its PAX records over it.
pub(crate) fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
    let header = entry.header();
    let corrupt =
        |what: &str| Error::new(ErrorKind::Corrupt, format!("bad tar header field: {what}"));
    let mut meta = Meta {
        mode: header.mode().map_err(|_| corrupt("mode"))?,
        uid: header.uid().map_err(|_| corrupt("uid"))?,
        gid: header.gid().map_err(|_| corrupt("gid"))?,
        mtime: i64::try_from(header.mtime().map_err(|_| corrupt("mtime"))?).unwrap_or(i64::MAX),
        uname: header.username_bytes().unwrap_or_default().to_vec(),
        gname: header.groupname_bytes().unwrap_or_default().to_vec(),
        ..Meta::default()
    };
    let pax = entry
        .pax_extensions()
        .map_err(|e| Error::io("reading PAX records", e))?;
    if let Some(pax) = pax {
        for ext in pax {
            let ext = ext.map_err(|e| Error::io("reading PAX records", e))?;
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
    use super::parse_pax_time;

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
