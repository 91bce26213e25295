//! Request bodies: empty, small in-memory (manifests), streamed from a region of a file, or
//! streamed from another registry's ranged GET.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

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

/// A window `[start, end)` of a file, read `READ_SIZE` bytes at a time on tokio's blocking
/// pool, one read ahead of hyper: while hyper sends a frame, the next one is being read.
/// Each read lands straight in the frame's buffer (no zeroing, no intermediate copy).
pub(crate) struct FileRegion {
    /// The file, when no read is in flight (a read owns it while it runs).
    file: Option<std::fs::File>,
    /// The read in flight, if any.
    reading: Option<JoinHandle<ReadDone>>,
    /// Bytes not yet handed to hyper.
    remaining: u64,
    /// Bytes not yet asked of the file (`remaining` minus the read in flight).
    unread: u64,
    /// Bytes handed to hyper so far, watched to detect a stalled upload.
    produced: Arc<AtomicU64>,
}

impl FileRegion {
    /// Open `path` and position it at `start`, to yield `end - start` bytes.
    #[cfg(test)]
    pub(crate) async fn open(path: &Path, start: u64, end: u64) -> std::io::Result<Self> {
        Self::open_counted(path, start, end, Arc::new(AtomicU64::new(0))).await
    }

    /// Like [`FileRegion::open`], counting produced bytes into `produced` (reset to 0).
    pub(crate) async fn open_counted(
        path: &Path,
        start: u64,
        end: u64,
        produced: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let path = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(start))?;
            Ok::<_, std::io::Error>(f)
        })
        .await
        .map_err(std::io::Error::other)??;
        produced.store(0, Ordering::Relaxed);
        let len = end.saturating_sub(start);
        Ok(FileRegion {
            file: Some(file),
            reading: None,
            remaining: len,
            unread: len,
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
        let want = self.unread.min(READ_SIZE as u64);
        self.unread -= want;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(want as usize);
            // `read_to_end` fills the spare capacity without initialising it first.
            let got = (&file).take(want).read_to_end(&mut buf).map(|_| buf);
            (file, got)
        }));
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.read_ahead();
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "blob source file is gone after a failed read",
            ))));
        };
        let done = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let (file, got) = done.map_err(std::io::Error::other)?;
        self.file = Some(file);
        let buf = got?;
        if buf.is_empty() {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob source file is shorter than its declared size",
            ))));
        }
        let n = buf.len() as u64;
        // A short read means the file ended; the next read reports it.
        self.unread = self.remaining - n;
        self.remaining -= n;
        self.produced.fetch_add(n, Ordering::Relaxed);
        self.read_ahead();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }
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

    #[tokio::test]
    async fn file_region_streams_only_its_window_in_bounded_frames() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        let data: Vec<u8> = (0..(READ_SIZE * 3 + 10)).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).expect("write");
        let (start, end) = (5u64, (READ_SIZE * 2 + 7) as u64);
        let mut body = ReqBody::File(FileRegion::open(f.path(), start, end).await.expect("open"));
        assert_eq!(body.size_hint().exact(), Some(end - start));
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("frame").into_data().expect("data");
            assert!(frame.len() <= READ_SIZE);
            got.extend_from_slice(&frame);
        }
        assert_eq!(got, &data[start as usize..end as usize]);
    }

    #[tokio::test]
    async fn short_file_is_an_error_not_a_short_body() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(b"abc").expect("write");
        let mut body = ReqBody::File(FileRegion::open(f.path(), 0, 10).await.expect("open"));
        let first = body.frame().await.expect("frame").expect("ok");
        assert_eq!(first.into_data().expect("data").len(), 3);
        assert!(body.frame().await.expect("frame").is_err());
    }
}
