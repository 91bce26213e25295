//! Request bodies: empty, small in-memory (manifests), streamed from a region of a file, or
//! streamed from another registry's ranged GET.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes read from the file per body frame. A region holds at most two of these itself (the
/// one being read ahead and the one just handed to hyper), so this bounds its memory.
pub(crate) const READ_SIZE: usize = 128 * 1024;

/// A request body. File regions are re-opened for every attempt, so a retry re-reads the file.
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// A small body (manifest JSON, token form).
    Full(Option<Bytes>),
    /// `remaining` bytes of an open file, from its current position.
    File(FileRegion),
    /// A window of a blob streamed from another registry's GET.
    Remote(crate::source::RemoteRegion),
}

/// A finished read: the file handed back, and what was read.
type ReadDone = (std::fs::File, std::io::Result<Vec<u8>>);

/// The next frame, being read.
enum Pending {
    /// Found whole in the page cache, read on the spot.
    Ready(ReadDone),
    /// Waiting for the disk on tokio's blocking pool.
    Blocking(JoinHandle<ReadDone>),
}

/// A window `[start, end)` of a file, read `READ_SIZE` bytes at a time, one read ahead of
/// hyper: while hyper sends a frame, the next one is being read.
///
/// A frame whose pages are all in the page cache (the usual case for a blob that was just
/// written or read) is read at once on the calling task, by a read that never waits for the
/// disk. Only the rest goes to tokio's blocking pool. A hop to that pool for every frame cost
/// more CPU in context switches than the copy itself.
pub(crate) struct FileRegion {
    /// The file, when no read is in flight (a blocking read owns it while it runs).
    file: Option<std::fs::File>,
    /// The read in flight, if any.
    reading: Option<Pending>,
    /// The window's end offset in the file.
    end: u64,
    /// Bytes not yet handed to hyper.
    remaining: u64,
    /// Bytes not yet asked of the file (`remaining` minus the read in flight). The next read
    /// starts at `end - unread`.
    unread: u64,
    /// Whether reads from the page cache alone are worth trying (false once the kernel or the
    /// filesystem said it cannot do them).
    try_cached: bool,
    /// Bytes handed to hyper so far, watched to detect a stalled upload.
    produced: Arc<AtomicU64>,
}

impl FileRegion {
    /// Open `path` to yield its bytes `[start, end)`.
    #[cfg(test)]
    pub(crate) async fn open(path: &Path, start: u64, end: u64) -> std::io::Result<Self> {
        Self::open_counted(path, start, end, Arc::new(AtomicU64::new(0))).await
    }

    /// Open `path` to yield its bytes `[start, end)`, counting produced bytes into `produced`
    /// (reset to 0).
    pub(crate) async fn open_counted(
        path: &Path,
        start: u64,
        end: u64,
        produced: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let path = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
            .await
            .map_err(std::io::Error::other)??;
        produced.store(0, Ordering::Relaxed);
        let len = end.saturating_sub(start);
        Ok(FileRegion {
            file: Some(file),
            reading: None,
            end: start.saturating_add(len),
            remaining: len,
            unread: len,
            try_cached: true,
            produced,
        })
    }

    /// A counter of the bytes this body has produced so far.
    pub(crate) fn progress(&self) -> Arc<AtomicU64> {
        self.produced.clone()
    }

    /// Start reading the next frame, unless a read is in flight or all was asked for.
    fn read_ahead(&mut self) {
        if self.reading.is_some() || self.unread == 0 {
            return;
        }
        let Some(file) = self.file.take() else {
            return;
        };
        let pos = self.end - self.unread;
        let want = self.unread.min(READ_SIZE as u64);
        self.unread -= want;
        // At most READ_SIZE, so it fits in usize.
        let mut buf = vec![0u8; want as usize];
        let mut have = 0;
        if self.try_cached {
            match read_cached(&file, pos, &mut buf) {
                Some(n) => have = n,
                None => self.try_cached = false,
            }
        }
        if have == buf.len() {
            self.reading = Some(Pending::Ready((file, Ok(buf))));
            return;
        }
        self.reading = Some(Pending::Blocking(tokio::task::spawn_blocking(move || {
            let got = read_rest(&file, pos, buf, have);
            (file, got)
        })));
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.read_ahead();
        let (file, got) = match self.reading.take() {
            Some(Pending::Ready(done)) => done,
            Some(Pending::Blocking(mut handle)) => match Pin::new(&mut handle).poll(cx) {
                Poll::Ready(done) => done.map_err(std::io::Error::other)?,
                Poll::Pending => {
                    self.reading = Some(Pending::Blocking(handle));
                    return Poll::Pending;
                }
            },
            None => {
                return Poll::Ready(Some(Err(std::io::Error::other(
                    "blob source file is gone after a failed read",
                ))));
            }
        };
        self.file = Some(file);
        let buf = got?;
        if buf.is_empty() {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob source file is shorter than its declared size",
            ))));
        }
        let n = buf.len() as u64;
        // A short read means the file ended; the next read (from where this one stopped)
        // reports it.
        self.unread = self.remaining - n;
        self.remaining -= n;
        self.produced.fetch_add(n, Ordering::Relaxed);
        self.read_ahead();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }
}

/// Reads into `buf` from offset `pos` only what is already in the page cache, never waiting
/// for the disk (`preadv2` with `RWF_NOWAIT`). `Some(n)`: the first `n` bytes are read, 0 when
/// the first page is not cached or the read failed (the blocking read that follows will
/// report a real error). `None`: this kernel or filesystem cannot do such reads.
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, pos: u64, buf: &mut [u8]) -> Option<usize> {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    loop {
        let mut bufs = [std::io::IoSliceMut::new(buf)];
        match preadv2(file, &mut bufs, pos, ReadWriteFlags::NOWAIT) {
            Ok(n) => return Some(n),
            Err(Errno::INTR) => {}
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => return None,
            Err(_) => return Some(0),
        }
    }
}

/// Elsewhere every read goes to the blocking pool.
#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: u64, _: &mut [u8]) -> Option<usize> {
    None
}

/// Fills `buf[have..]` from the file at `pos + have`, waiting for the disk as needed; the
/// buffer is cut short where the file ends.
fn read_rest(
    file: &std::fs::File,
    pos: u64,
    mut buf: Vec<u8>,
    mut have: usize,
) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    while have < buf.len() {
        match file.read_at(&mut buf[have..], pos + have as u64) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(have);
    Ok(buf)
}

impl ReqBody {
    pub(crate) fn bytes(b: impl Into<Bytes>) -> Self {
        ReqBody::Full(Some(b.into()))
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::File(region) => region.poll_data(cx),
            ReqBody::Remote(region) => region.poll_data(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::File(r) => r.remaining == 0,
            ReqBody::Remote(r) => r.remaining() == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::File(r) => SizeHint::with_exact(r.remaining),
            ReqBody::Remote(r) => r.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write;

    /// A temp file holding `len` bytes of a pattern repeating every `period` bytes, and them.
    fn patterned_file(len: usize, period: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        let data: Vec<u8> = (0..len).map(|i| (i % period) as u8).collect();
        f.write_all(&data).expect("write");
        (f, data)
    }

    /// Every frame of `body`, concatenated; each frame is checked to be at most READ_SIZE.
    async fn collect(body: &mut ReqBody) -> std::io::Result<Vec<u8>> {
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?.into_data().expect("data");
            assert!(frame.len() <= READ_SIZE);
            got.extend_from_slice(&frame);
        }
        Ok(got)
    }

    /// A region of `path`, reading from the page cache inline or only on the blocking pool.
    async fn region(path: &Path, start: u64, end: u64, cached: bool) -> ReqBody {
        let mut region = FileRegion::open(path, start, end).await.expect("open");
        region.try_cached = cached;
        ReqBody::File(region)
    }

    #[tokio::test]
    async fn file_region_streams_only_its_window_in_bounded_frames() {
        let (f, data) = patterned_file(READ_SIZE * 3 + 10, 251);
        let (start, end) = (5u64, (READ_SIZE * 2 + 7) as u64);
        for cached in [true, false] {
            let mut body = region(f.path(), start, end, cached).await;
            assert_eq!(body.size_hint().exact(), Some(end - start));
            let got = collect(&mut body).await.expect("body");
            assert_eq!(
                got,
                &data[start as usize..end as usize],
                "cached reads: {cached}"
            );
            assert!(body.is_end_stream());
        }
    }

    #[tokio::test]
    async fn short_file_is_an_error_not_a_short_body() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(b"abc").expect("write");
        for cached in [true, false] {
            let mut body = region(f.path(), 0, 10, cached).await;
            let first = body.frame().await.expect("frame").expect("ok");
            assert_eq!(first.into_data().expect("data").len(), 3);
            let err = body.frame().await.expect("frame").expect_err("short file");
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof,
                "cached reads: {cached}"
            );
        }
    }

    #[test]
    fn cached_read_of_a_just_written_file_gets_the_whole_window() {
        let (f, data) = patterned_file(300_000, 253);
        let mut buf = vec![0u8; 100_000];
        match read_cached(f.as_file(), 12_345, &mut buf) {
            // Its pages are dirty in the page cache, so all of them are there.
            Some(n) => {
                assert_eq!(n, buf.len());
                assert_eq!(buf, &data[12_345..112_345]);
            }
            None => eprintln!("NOTE: this filesystem cannot read from the page cache alone"),
        }
    }

    #[test]
    fn the_blocking_read_finishes_a_partial_frame_and_stops_at_the_end_of_the_file() {
        let (f, data) = patterned_file(10_000, 241);
        // 100 bytes already there (as if from the page cache), the rest from the file.
        let mut buf = vec![0u8; 4_000];
        buf[..100].copy_from_slice(&data[1_000..1_100]);
        let got = read_rest(f.as_file(), 1_000, buf, 100).expect("read");
        assert_eq!(got, &data[1_000..5_000]);
        // Asking past the end gives what there is.
        let got = read_rest(f.as_file(), 9_000, vec![0u8; 4_000], 0).expect("read");
        assert_eq!(got, &data[9_000..]);
    }
}
