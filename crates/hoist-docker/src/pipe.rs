//! A bounded pipe from blocking `Write` code into an async request body.
//!
//! The daemon speaks through async streams (bollard/hyper); the docker-archive writer in
//! hoist-oci is synchronous. A [`ChannelWriter`] lets blocking code write into a bounded
//! channel that a load's request body drains: at most [`CAPACITY`] chunks of at most
//! [`CHUNK`] bytes are in flight, so memory does not grow with the image. (Exports go the
//! other way without a pipe: see `direct`.)

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// The marker that ends a complete stream in a pipe.
pub(crate) const END: Bytes = Bytes::new();

/// The size of chunks a [`ChannelWriter`] sends. hyper copies each into one flat buffer for
/// the daemon's socket, queueing up to about 400 KiB, so the chunk size also sets how far that
/// buffer grows: 1 MiB with 256 KiB chunks, half that with these.
pub(crate) const CHUNK: usize = 128 * 1024;

/// How many chunks may wait in a pipe. The daemon reads slower than hoist writes (it unpacks
/// each layer as it comes), so a longer queue only holds more memory: 16 chunks of 256 KiB
/// made a 1 GiB load peak 4 MiB higher in the same time.
pub(crate) const CAPACITY: usize = 4;

/// The blocking, writing end of a bounded pipe drained by an async task. Counts the bytes it
/// hands over so the async side can report progress. Ends a complete stream with [`END`];
/// see [`body_stream`] for the draining side.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
    sent: Arc<AtomicU64>,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<io::Result<Bytes>>, sent: Arc<AtomicU64>) -> Self {
        ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(CHUNK),
            sent,
        }
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        let len = chunk.len() as u64;
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the upload",
            )
        })?;
        self.sent.fetch_add(len, Ordering::Relaxed);
        self.buf.reserve(CHUNK);
        Ok(())
    }

    /// Send what is buffered, then [`END`]: only a finished writer ends its pipe cleanly.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.send_buffered()?;
        self.tx.blocking_send(Ok(END)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the upload",
            )
        })
    }

    /// Whether the reading end is gone (the upload was aborted).
    pub(crate) fn reader_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// End the pipe with an error so the reader never mistakes a cut-off stream for a whole one.
    pub(crate) fn fail(self, err: io::Error) {
        // If the reader is gone there is nobody left to tell.
        let _ = self.tx.blocking_send(Err(err));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

/// Drain a [`ChannelWriter`]'s pipe as a stream of chunks (an HTTP request body). Ends at
/// [`END`]; a pipe closed without it (producer panicked or vanished) ends with an error, so
/// the receiver never takes a cut-off upload for a whole one.
pub(crate) fn body_stream(
    rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(rx), |state| async move {
        let mut rx = state?;
        match rx.recv().await {
            Some(Ok(chunk)) if chunk.is_empty() => None,
            Some(Ok(chunk)) => Some((Ok(chunk), Some(rx))),
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive producer stopped before the end",
                )),
                None,
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_chunks_bounded_and_counts() {
        let (tx, mut rx) = mpsc::channel(CAPACITY);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let total = CHUNK * 3 + 17;
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx, counter);
            let data = vec![7u8; total];
            w.write_all(&data)?;
            w.finish()
        });
        let mut got = 0usize;
        let mut chunks = 0;
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.expect("no error");
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= CHUNK);
            got += chunk.len();
            chunks += 1;
        }
        writer.await.expect("joins").expect("writes");
        assert_eq!(got, total);
        assert_eq!(chunks, 4);
        assert_eq!(sent.load(Ordering::Relaxed), total as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_ends_cleanly_only_after_finish() {
        use futures_util::StreamExt;
        let (tx, rx) = mpsc::channel(CAPACITY);
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx, Arc::new(AtomicU64::new(0)));
            w.write_all(b"whole")?;
            w.finish()
        })
        .await
        .expect("joins")
        .expect("writes");
        let items: Vec<_> = body_stream(rx).collect().await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().expect("data").as_ref(), b"whole");

        let (tx, rx) = mpsc::channel(CAPACITY);
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx, Arc::new(AtomicU64::new(0)));
            w.write_all(b"half")?;
            w.flush()
            // dropped without finish(), as when a producer panics
        })
        .await
        .expect("joins")
        .expect("writes");
        let items: Vec<_> = body_stream(rx).collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].as_ref().expect_err("cut off").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_fails_when_reader_gone() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let result = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx, Arc::new(AtomicU64::new(0)));
            w.write_all(&vec![0u8; CHUNK * 2])
        })
        .await
        .expect("joins");
        assert_eq!(
            result.expect_err("broken pipe").kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
