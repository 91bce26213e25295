//! The first bytes of an archive stream, kept to name a compression hoist does not read.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// A reader that keeps the first bytes of its stream (for a better message when the stream
/// turns out to be no tar).
pub(super) struct FirstBytes<R> {
    pub(super) inner: R,
    pub(super) first: Rc<Cell<[u8; 6]>>,
    pub(super) seen: usize,
}

impl<R: Read> Read for FirstBytes<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.seen < 6 {
            let mut first = self.first.get();
            let take = (6 - self.seen).min(n);
            first[self.seen..self.seen + take].copy_from_slice(&buf[..take]);
            self.first.set(first);
            self.seen += take;
        }
        Ok(n)
    }
}

/// The name of a compression docker load reads but hoist does not, from a stream's first bytes:
/// xz (`FD 37 7A 58 5A 00`) and bzip2 (`BZh` and a block size digit, whose six bytes a tar,
/// which opens with a NUL-padded name, would need a file named so to match).
pub(super) fn foreign_compression(first: &[u8; 6]) -> Option<&'static str> {
    match first {
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("xz"),
        [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41] => Some("bzip2"),
        _ => None,
    }
}
