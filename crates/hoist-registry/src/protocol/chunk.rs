//! Upload progress as the server states it (`Range`), advertised chunk limits and chunk planning.

/// What a `Range` header on an upload response says the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRange {
    /// The server holds bytes `0..=end`, so the next byte to send is `end + 1`.
    Holds {
        /// Inclusive end.
        end: u64,
    },
    /// `0-0`: distribution writes `0-{size-1}`, clamped at 0, so this is said both of an
    /// empty session and of one holding exactly one byte. The caller decides with what it
    /// knows ([`ServerRange::next_offset`], [`ServerRange::resume_offset`]).
    ZeroOrOne,
}

impl ServerRange {
    /// The next offset to upload from after an acknowledgement, resolving `0-0` with
    /// `one_byte`: whether exactly one byte is what the server should hold (a PATCH of
    /// byte 0 alone). After more bytes, `0-0` holds at most one of them: 0, an
    /// acknowledgement that kept nothing.
    pub fn next_offset(self, one_byte: bool) -> u64 {
        match self {
            ServerRange::Holds { end } => end.saturating_add(1),
            ServerRange::ZeroOrOne => u64::from(one_byte),
        }
    }

    /// Where to resume a session whose status says this, given `acked` (the bytes the server
    /// confirmed in it before) and `after_cut` (whether a PATCH body was cut mid-way since,
    /// so the server may hold some of it). `None`: the session cannot be trusted, start over.
    ///
    /// `0-0` is resolved so that it is never read as one byte the server does not hold:
    /// - nothing acknowledged, nothing cut: it is empty, resume at 0;
    /// - nothing acknowledged but a body cut: empty or one byte of it, unknowable: start over
    ///   (it costs at most one byte);
    /// - exactly one byte acknowledged: it holds that byte, resume at 1;
    /// - more acknowledged: the server lost bytes it had confirmed and holds zero or one of
    ///   them, unknowable (resuming at 1 on an empty session would be refused with 416 until
    ///   hoist gave up): start over in a fresh session.
    pub fn resume_offset(self, acked: u64, after_cut: bool) -> Option<u64> {
        match (self, acked) {
            (ServerRange::Holds { end }, _) => Some(end.saturating_add(1)),
            (ServerRange::ZeroOrOne, 0) if after_cut => None,
            (ServerRange::ZeroOrOne, 0) => Some(0),
            (ServerRange::ZeroOrOne, 1) => Some(1),
            (ServerRange::ZeroOrOne, _) => None,
        }
    }
}

/// Parse an upload `Range` header: `0-N` or `bytes=0-N`. Registries always report from 0.
/// Returns `None` for anything else (a start other than 0, `N < 0`, garbage).
pub fn parse_upload_range(value: &str) -> Option<ServerRange> {
    let v = value.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v).trim();
    let (start, end) = v.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let end = end.trim();
    if end.is_empty() || !end.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let end: u64 = end.parse().ok()?;
    Some(if end == 0 {
        ServerRange::ZeroOrOne
    } else {
        ServerRange::Holds { end }
    })
}

/// Chunk sizes a server (or the proxy in front of it) advertises on the upload session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkLimits {
    /// `OCI-Chunk-Min-Length`.
    pub min: Option<u64>,
    /// `OCI-Chunk-Max-Length` (a proxy body limit, typically).
    pub max: Option<u64>,
}

impl ChunkLimits {
    /// Read limits from header values (either may be missing); zero or garbage is ignored. A
    /// maximum below [`MIN_SHRUNK_CHUNK`] is raised to it: a server cannot make hoist send a
    /// blob a few bytes per request (a gigabyte at one byte each would take days). One that
    /// really refuses such a chunk answers 413, and the push ends there with a clear error.
    pub fn from_headers(min: Option<&str>, max: Option<&str>) -> Self {
        let num = |v: Option<&str>| {
            v.and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
        };
        ChunkLimits {
            min: num(min),
            max: num(max).map(|m| m.max(MIN_SHRUNK_CHUNK)),
        }
    }

    /// Merge limits learned later (a PATCH response may repeat or add them).
    pub fn merge(self, later: ChunkLimits) -> Self {
        ChunkLimits {
            min: later.min.or(self.min),
            max: later.max.or(self.max),
        }
    }

    /// The chunk size to use: `preferred` raised to the minimum, then capped at the maximum (the
    /// cap wins when they conflict: a body over the cap would be refused outright).
    pub fn effective(self, preferred: u64) -> u64 {
        let mut size = preferred.max(1);
        if let Some(min) = self.min {
            size = size.max(min);
        }
        if let Some(max) = self.max {
            size = size.min(max);
        }
        size
    }
}

/// The smallest chunk hoist shrinks to after an unexplained 413, and the smallest advertised
/// `OCI-Chunk-Max-Length` it honours.
pub const MIN_SHRUNK_CHUNK: u64 = 8 * 1024;

/// The next chunk size after a 413 from a server that advertised no maximum: half the current
/// size, or `None` when already at [`MIN_SHRUNK_CHUNK`] (give up: the limit is not about size).
pub fn shrink_after_413(current: u64) -> Option<u64> {
    if current <= MIN_SHRUNK_CHUNK {
        return None;
    }
    Some((current / 2).max(MIN_SHRUNK_CHUNK))
}

/// The byte range `[start, end)` of the next chunk, or `None` when `offset` reached `size`.
/// Non-final chunks are all `chunk` bytes long; the last one carries the remainder.
pub fn next_chunk(offset: u64, size: u64, chunk: u64) -> Option<(u64, u64)> {
    if offset >= size {
        return None;
    }
    Some((offset, size.min(offset.saturating_add(chunk.max(1)))))
}

/// The `Content-Range` value for bytes `[start, end)`: inclusive, `start-(end-1)`.
pub fn content_range(start: u64, end: u64) -> String {
    format!("{start}-{}", end.saturating_sub(1).max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        assert_eq!(
            parse_upload_range("0-99"),
            Some(ServerRange::Holds { end: 99 })
        );
        assert_eq!(
            parse_upload_range("bytes=0-4"),
            Some(ServerRange::Holds { end: 4 })
        );
        assert_eq!(parse_upload_range("0-0"), Some(ServerRange::ZeroOrOne));
        for bad in [
            "",
            "5-9",
            "0-",
            "0--1",
            "0-x",
            "abc",
            "0-18446744073709551616",
        ] {
            assert_eq!(parse_upload_range(bad), None, "{bad}");
        }
        assert_eq!(ServerRange::Holds { end: 99 }.next_offset(true), 100);
        assert_eq!(ServerRange::ZeroOrOne.next_offset(false), 0);
        assert_eq!(ServerRange::ZeroOrOne.next_offset(true), 1);
    }

    #[test]
    fn zero_zero_is_one_byte_only_when_one_byte_was_acknowledged() {
        let zz = ServerRange::ZeroOrOne;
        assert_eq!(zz.resume_offset(0, false), Some(0), "empty session");
        assert_eq!(
            zz.resume_offset(0, true),
            None,
            "empty, or one byte of a cut body"
        );
        assert_eq!(zz.resume_offset(1, false), Some(1));
        assert_eq!(zz.resume_offset(1, true), Some(1));
        // The server lost acknowledged bytes: never "one byte held".
        assert_eq!(zz.resume_offset(65536, false), None);
        assert_eq!(zz.resume_offset(2, true), None);
        let holds = ServerRange::Holds { end: 99 };
        assert_eq!(holds.resume_offset(0, true), Some(100));
        assert_eq!(
            holds.resume_offset(65536, false),
            Some(100),
            "the Range is the truth"
        );
    }

    #[test]
    fn limits_raise_then_cap() {
        let none = ChunkLimits::default();
        assert_eq!(none.effective(8 << 20), 8 << 20);
        let min = ChunkLimits::from_headers(Some("16777216"), None);
        assert_eq!(min.effective(8 << 20), 16 << 20);
        let max = ChunkLimits::from_headers(None, Some(" 1048576 "));
        assert_eq!(max.effective(8 << 20), 1 << 20);
        let both = ChunkLimits::from_headers(Some("40960"), Some("10240"));
        assert_eq!(both.effective(100), 10240, "the cap wins a conflict");
        let junk = ChunkLimits::from_headers(Some("0"), Some("lots"));
        assert_eq!(junk, ChunkLimits::default());
        // A cap of a byte (or a few hundred) is raised to the shrink floor.
        for tiny in ["1", "512"] {
            let tiny = ChunkLimits::from_headers(None, Some(tiny));
            assert_eq!(tiny.effective(8 << 20), MIN_SHRUNK_CHUNK);
        }
        assert_eq!(
            min.merge(max),
            ChunkLimits {
                min: Some(16 << 20),
                max: Some(1 << 20)
            }
        );
    }

    #[test]
    fn chunks_are_equal_and_cap_holds_for_small_blobs() {
        // A 10-byte blob with a 4-byte cap: 4, 4, 2 — never one 10-byte PATCH.
        let mut off = 0;
        let mut sizes = Vec::new();
        while let Some((s, e)) = next_chunk(off, 10, 4) {
            assert_eq!(s, off);
            sizes.push(e - s);
            off = e;
        }
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(next_chunk(0, 0, 4), None);
        assert_eq!(next_chunk(0, 4, 4), Some((0, 4)));
        assert_eq!(next_chunk(4, 4, 4), None);
        assert_eq!(content_range(0, 4), "0-3");
        assert_eq!(content_range(4, 5), "4-4");
    }

    #[test]
    fn shrinking_has_a_floor() {
        assert_eq!(shrink_after_413(8 << 20), Some(4 << 20));
        assert_eq!(shrink_after_413(12 * 1024), Some(MIN_SHRUNK_CHUNK));
        assert_eq!(shrink_after_413(MIN_SHRUNK_CHUNK), None);
    }
}
