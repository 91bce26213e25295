//! The export stream, read on the thread that consumes it.
//!
//! dockerd writes an export 32 KiB at a time. Handing those writes (or batches of them) from
//! an async task to the blocking consumer cost a copy and two thread wakeups per handoff, and
//! on a two-core machine that work competed with dockerd's own sending. So the consuming
//! thread polls the response body itself: it runs a current-thread runtime holding its own
//! connection to the daemon, and each `read` drives that runtime until the next chunk
//! arrives. One thread reads the socket, hashes and writes, as `docker save` does; the
//! kernel's socket buffer lets dockerd keep sending while that thread writes to disk.
//!
//! The reader also keeps the export's watch: it reports `Preparing` until the first byte and
//! `Receiving` after, every [`TICK`], and fails the stream when the daemon stops sending for
//! the stall timeout or the async side gives up. It notes whether the daemon ended its answer
//! cleanly and keeps a copy of the last [`TAIL_SEARCHED`] bytes it received: a daemon that fails
//! once the answer has started writes its reason there, as a JSON error line after the archive
//! bytes. A copy, not the chunks themselves: a chunk shares the buffer hyper read it into (up to
//! 400 KiB), and one kept alive makes hyper read the next ones into a new buffer.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind};
use crate::progress::{Progress, TICK};

/// The daemon's response body as bollard yields it.
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, bollard::errors::Error>> + Send>>;

/// What the reading thread and the async side of an export share.
#[derive(Default)]
pub(crate) struct Watch {
    /// Set by the async side when it stops waiting (its future was dropped): the next read
    /// fails instead of leaving a thread streaming for nobody.
    pub(crate) cancelled: AtomicBool,
    /// The caller's handle for stopping the export; a stop fails the next read as a drop does.
    pub(crate) stop: Option<crate::export::ExportStop>,
    /// Bytes of the archive received so far.
    pub(crate) received: AtomicU64,
    /// The daemon's failure, when the stream broke or stalled; it outranks the consumer's
    /// error (which only says its input ended).
    pub(crate) failure: Mutex<Option<Error>>,
    /// Set when the daemon ended its answer cleanly (chunked end), whether or not the archive
    /// was whole: dockerd 20.10 ends it this way when its staged copy fails part-way.
    pub(crate) ended: AtomicBool,
    /// The reason the daemon wrote at the end of its answer, when it wrote one: a JSON error
    /// line (`{"errorDetail":...}`) after the archive bytes, as a daemon does when the export
    /// fails once the answer has started.
    pub(crate) reason: Mutex<Option<String>>,
}

impl Watch {
    fn fail(&self, err: Error) -> io::Error {
        let message = format!("export stream failed: {err}");
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(err);
        }
        io::Error::other(message)
    }

    /// Whether the reader should give up: the caller dropped the export or stopped it.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || self
                .stop
                .as_ref()
                .is_some_and(crate::export::ExportStop::is_stopped)
    }

    /// Take the daemon's failure, if any.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        self.failure.lock().ok().and_then(|mut slot| slot.take())
    }

    /// The reason the daemon wrote at the end of its answer, if any.
    pub(crate) fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|slot| slot.clone())
    }
}

/// How much of the answer a reader dropped before the end (its consumer failed) still reads,
/// looking for the error line a daemon writes last.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// How long that look may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// How much of the end of the answer is searched for an error line.
const TAIL_SEARCHED: usize = 8 * 1024;

/// The error line a daemon writes at the end of a streamed answer that failed after it
/// started (`{"errorDetail":{"message":M},"error":M}`), if `tail` ends with one.
pub(crate) fn trailing_error(tail: &[u8]) -> Option<String> {
    let tail = &tail[tail.len().saturating_sub(TAIL_SEARCHED)..];
    let start = tail
        .windows(b"{\"errorDetail\"".len())
        .rposition(|w| w == b"{\"errorDetail\"")?;
    let line = std::str::from_utf8(&tail[start..]).ok()?.trim_end();
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = value["errorDetail"]["message"]
        .as_str()
        .or_else(|| value["error"].as_str())?;
    let message = crate::classify::one_line(message);
    (!message.is_empty()).then_some(message)
}

/// The last [`TAIL_SEARCHED`] bytes of a stream, copied out of its chunks.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    /// Add `chunk` at the end, keeping the last [`TAIL_SEARCHED`] bytes.
    fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_SEARCHED)..];
        let excess = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_SEARCHED);
        self.bytes.drain(..excess);
        self.bytes.extend_from_slice(chunk);
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Everything the reader needs besides the body: how to word and classify failures.
pub(crate) struct Context {
    /// The images being exported, for messages.
    pub(crate) label: String,
    /// The daemon's address, for messages.
    pub(crate) host: String,
    /// How long the daemon may go without sending, once it has started.
    pub(crate) stall_timeout: Duration,
    /// Where `Preparing` and `Receiving` reports go.
    pub(crate) progress: mpsc::UnboundedSender<Progress>,
    /// Shared with the async side.
    pub(crate) watch: Arc<Watch>,
}

/// A blocking reader over the export body, driving its own runtime. Holds at most the one
/// chunk hyper last handed over, and only until it is read.
pub(crate) struct StreamReader {
    rt: tokio::runtime::Runtime,
    body: Body,
    cx: Context,
    current: Bytes,
    /// The last bytes received: where a trailing error line is.
    tail: Tail,
    started: Instant,
    last_chunk: Instant,
    last_report: Instant,
    done: bool,
}

/// What one wait on the body produced.
enum Next {
    Chunk(Bytes),
    End,
    Failed(bollard::errors::Error),
    Quiet,
}

impl StreamReader {
    /// A reader over the body that `open` returns when called inside the reader's runtime
    /// (so the connection it makes is driven by this thread).
    pub(crate) fn new(open: impl FnOnce() -> Body, cx: Context) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let body = {
            let _inside = rt.enter();
            open()
        };
        let now = Instant::now();
        let _ = cx.progress.send(Progress::Preparing {
            elapsed: Duration::ZERO,
        });
        Ok(StreamReader {
            rt,
            body,
            cx,
            current: Bytes::new(),
            tail: Tail::default(),
            started: now,
            last_chunk: now,
            last_report: now,
            done: false,
        })
    }

    /// Wait for the next chunk, at most until the next report is due.
    fn next(&mut self) -> Next {
        let wait = TICK.saturating_sub(self.last_report.elapsed());
        let body = &mut self.body;
        self.rt.block_on(async {
            match tokio::time::timeout(wait, body.next()).await {
                Ok(Some(Ok(chunk))) => Next::Chunk(chunk),
                Ok(Some(Err(e))) => Next::Failed(e),
                Ok(None) => Next::End,
                Err(_) => Next::Quiet,
            }
        })
    }

    fn received(&self) -> u64 {
        self.cx.watch.received.load(Ordering::Relaxed)
    }

    /// Count and remember a chunk.
    fn took(&mut self, chunk: &Bytes) {
        self.cx
            .watch
            .received
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.last_chunk = Instant::now();
        self.tail.push(chunk);
    }

    /// The daemon ended its answer cleanly: note it, and the error line it ended with, if any.
    fn ended(&mut self) {
        self.done = true;
        self.cx.watch.ended.store(true, Ordering::Relaxed);
        if let Some(reason) = trailing_error(self.tail.bytes())
            && let Ok(mut slot) = self.cx.watch.reason.lock()
        {
            tracing::debug!(%reason, "the daemon ended its export with an error");
            *slot = Some(reason);
        }
    }

    /// Read on a little after the consumer stopped early (it failed on what it read): a
    /// daemon that failed part-way writes its reason last, right after where the archive
    /// broke. Bounded in bytes and time; what is read is dropped, except the last chunks.
    fn drain_for_reason(&mut self) {
        let started = Instant::now();
        let mut drained = 0u64;
        while !self.done
            && drained < DRAIN_LIMIT
            && started.elapsed() < DRAIN_TIME
            && !self.cx.watch.is_cancelled()
        {
            match self.next() {
                Next::Chunk(chunk) => {
                    drained += chunk.len() as u64;
                    self.took(&chunk);
                }
                Next::End => self.ended(),
                Next::Failed(_) => self.done = true,
                Next::Quiet => self.last_report = Instant::now(),
            }
        }
    }

    /// Report where the stream is, if a tick has passed; fail it when it has stalled.
    fn report(&mut self) -> io::Result<()> {
        if self.last_report.elapsed() < TICK {
            return Ok(());
        }
        self.last_report = Instant::now();
        let received = self.received();
        if received == 0 {
            let _ = self.cx.progress.send(Progress::Preparing {
                elapsed: self.started.elapsed(),
            });
        } else if self.last_chunk.elapsed() > self.cx.stall_timeout {
            let err = Error::new(
                ErrorKind::Timeout,
                format!(
                    "the daemon stopped sending the export after {received} bytes \
                     ({}s without data)",
                    self.cx.stall_timeout.as_secs()
                ),
            )
            .with_image(self.cx.label.clone())
            .with_host(&self.cx.host);
            self.done = true;
            return Err(self.cx.watch.fail(err));
        } else {
            let _ = self
                .cx
                .progress
                .send(Progress::Receiving { bytes: received });
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.current.is_empty() {
            // The stall clock runs while the consumer waits for data, not while it was away
            // (a commit's fsync on slow storage is not the daemon stalling).
            self.last_chunk = self.last_chunk.max(Instant::now());
        }
        while self.current.is_empty() {
            if self.done {
                return Ok(false);
            }
            if self.cx.watch.is_cancelled() {
                self.done = true;
                // Not `Interrupted`: readers retry that.
                return Err(io::Error::other("the export was abandoned"));
            }
            match self.next() {
                Next::Chunk(chunk) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    if self.received() == 0 {
                        tracing::debug!(after = ?self.started.elapsed(), "first byte of export");
                    }
                    self.took(&chunk);
                    self.current = chunk;
                }
                Next::End => {
                    self.ended();
                    return Ok(false);
                }
                Next::Failed(e) => {
                    self.done = true;
                    let received = self.received();
                    let mut err = crate::classify::classify(e, &self.cx.host)
                        .with_image(self.cx.label.clone());
                    if received > 0 {
                        // Past the headers a cut is a broken stream, whatever hyper says.
                        err = Error::new(
                            ErrorKind::DaemonFailed,
                            format!(
                                "the daemon ended the export early: the stream broke off \
                                 after {received} bytes"
                            ),
                        )
                        .with_image(self.cx.label.clone())
                        .with_host(&self.cx.host)
                        .with_source(err);
                    }
                    return Err(self.cx.watch.fail(err));
                }
                Next::Quiet => {}
            }
            self.report()?;
        }
        self.report()?;
        Ok(true)
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        // Dropped before the end: the consumer stopped, usually on something it could not
        // read. Whatever the daemon wrote last may say why.
        self.drain_for_reason();
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || !self.fill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader over `chunks`, then (when `hang`) a body that never ends.
    fn reader(
        chunks: Vec<&'static [u8]>,
        hang: bool,
        stall_timeout: Duration,
    ) -> (StreamReader, mpsc::UnboundedReceiver<Progress>, Arc<Watch>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let watch = Arc::new(Watch::default());
        let cx = Context {
            label: "test:1".into(),
            host: "unix:///nowhere".into(),
            stall_timeout,
            progress: tx,
            watch: watch.clone(),
        };
        let open = move || -> Body {
            let items = futures_util::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, bollard::errors::Error>(Bytes::from_static(c))),
            );
            if hang {
                Box::pin(items.chain(futures_util::stream::pending()))
            } else {
                Box::pin(items)
            }
        };
        let r = StreamReader::new(open, cx).expect("reader");
        (r, rx, watch)
    }

    #[test]
    fn a_trailing_error_line_is_found_and_nothing_else_is_taken_for_one() {
        let line =
            b"{\"errorDetail\":{\"message\":\"layer vanished\"},\"error\":\"layer vanished\"}\r\n";
        let mut tail = vec![0u8; 10_000];
        tail.extend_from_slice(line);
        assert_eq!(trailing_error(&tail).as_deref(), Some("layer vanished"));
        assert_eq!(trailing_error(&vec![0u8; 2048]), None);
        // Archive bytes that merely mention it are not a reason.
        assert_eq!(trailing_error(b"{\"errorDetail\": not json"), None);
    }

    #[test]
    fn a_reader_dropped_early_reads_on_for_the_reason_the_daemon_wrote_last() {
        let line: &'static [u8] =
            b"{\"errorDetail\":{\"message\":\"failed to get layer\"},\"error\":\"failed to get layer\"}\n";
        let (mut r, _rx, watch) = reader(vec![b"archive bytes ", b"more", line], false, TICK);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).expect("read"), 8);
        // The consumer gives up here (it could not parse what it read).
        drop(r);
        assert!(watch.ended.load(Ordering::Relaxed));
        assert_eq!(watch.reason().as_deref(), Some("failed to get layer"));
        // A clean end without one leaves no reason.
        let (mut r, _rx, watch) = reader(vec![b"whole archive"], false, TICK);
        std::io::copy(&mut r, &mut std::io::sink()).expect("read all");
        assert!(watch.ended.load(Ordering::Relaxed));
        assert_eq!(watch.reason(), None);
    }

    /// Regression: the reader kept its last two chunks, so hyper's buffers under them (up to
    /// 400 KiB each) stayed alive and hyper read on into new ones: an export held three.
    #[test]
    fn a_chunk_read_to_its_end_is_let_go() {
        let first = Bytes::from(vec![1u8; 20_000]);
        let kept = first.clone();
        let (tx, _rx) = mpsc::unbounded_channel();
        let cx = Context {
            label: "test:1".into(),
            host: "unix:///nowhere".into(),
            stall_timeout: TICK,
            progress: tx,
            watch: Arc::new(Watch::default()),
        };
        let open = move || -> Body {
            let chunks = [first, Bytes::from_static(b"second")];
            Box::pin(futures_util::stream::iter(
                chunks.map(Ok::<_, bollard::errors::Error>),
            ))
        };
        let mut r = StreamReader::new(open, cx).expect("reader");
        let mut buf = vec![0u8; 20_000];
        std::io::Read::read_exact(&mut r, &mut buf).expect("first chunk");
        assert_eq!(r.read(&mut buf).expect("second"), 6);
        // Read to its end, the first chunk is shared with nothing in the reader.
        assert!(kept.is_unique(), "the reader still holds the first chunk");
    }

    #[test]
    fn the_tail_is_the_last_bytes_of_the_stream_whatever_the_chunks() {
        let stream: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        for cuts in [
            &[30_000][..],
            &[1, 29_999],
            &[10_000, 19_990, 10],
            &[29_995, 1, 1, 3],
        ] {
            let mut tail = Tail::default();
            let mut at = 0;
            for n in cuts {
                tail.push(&stream[at..at + n]);
                at += n;
            }
            assert_eq!(tail.bytes(), &stream[30_000 - TAIL_SEARCHED..], "{cuts:?}");
        }
        let mut short = Tail::default();
        short.push(b"ab");
        short.push(b"c");
        assert_eq!(short.bytes(), b"abc");
    }

    #[test]
    fn chunks_read_back_in_order_across_small_reads() {
        let (mut r, _rx, watch) = reader(vec![b"hello ", b"", b"daemon", b"!"], false, TICK);
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let n = r.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello daemon!");
        assert_eq!(watch.received.load(Ordering::Relaxed), 13);
        assert!(watch.take_failure().is_none());
        // The end stays the end.
        assert_eq!(r.read(&mut buf).expect("read after end"), 0);
    }

    #[test]
    fn a_daemon_that_stops_sending_fails_the_read_as_a_timeout() {
        let (mut r, mut rx, watch) = reader(vec![b"first bytes"], true, Duration::from_millis(600));
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).expect("first chunk"), 11);
        let started = Instant::now();
        let err = r.read(&mut buf).expect_err("stalled");
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert!(err.to_string().contains("stopped sending"), "{err}");
        let failure = watch.take_failure().expect("the daemon's failure is kept");
        assert!(failure.is_timeout(), "{failure:?}");
        // While it waited it said how far it got.
        let mut reports = Vec::new();
        while let Ok(p) = rx.try_recv() {
            reports.push(p);
        }
        assert!(
            reports.contains(&Progress::Receiving { bytes: 11 }),
            "{reports:?}"
        );
    }

    #[test]
    fn a_consumer_away_longer_than_the_stall_timeout_is_not_a_stall() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let cx = Context {
            label: "test:1".into(),
            host: "unix:///nowhere".into(),
            stall_timeout: Duration::from_millis(300),
            progress: tx,
            watch: Arc::new(Watch::default()),
        };
        // The second chunk comes 50 ms after it is asked for, as over a socket.
        let open = || -> Body {
            let first = futures_util::stream::iter([Ok(Bytes::from_static(b"first"))]);
            let second = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, bollard::errors::Error>(Bytes::from_static(b"second"))
            });
            Box::pin(first.chain(second))
        };
        let mut r = StreamReader::new(open, cx).expect("reader");
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).expect("first"), 5);
        // Away (a slow fsync, say) for twice the stall timeout.
        std::thread::sleep(Duration::from_millis(600));
        let n = r
            .read(&mut buf)
            .expect("the daemon did not stall: the reader was away");
        assert_eq!(&buf[..n], b"second");
    }

    #[test]
    fn a_quiet_daemon_is_reported_preparing_and_an_abandoned_export_stops() {
        let (mut r, mut rx, watch) = reader(vec![], true, Duration::from_secs(600));
        let flag = watch.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            flag.cancelled.store(true, Ordering::Relaxed);
        });
        let mut buf = [0u8; 8];
        let err = r.read(&mut buf).expect_err("abandoned");
        assert!(err.to_string().contains("abandoned"), "{err}");
        stopper.join().expect("stopper");
        let mut preparing = 0;
        while let Ok(p) = rx.try_recv() {
            assert!(matches!(p, Progress::Preparing { .. }), "{p:?}");
            preparing += 1;
        }
        // One at the start and one per quarter second of the wait.
        assert!(preparing >= 3, "{preparing}");
        assert!(
            watch.take_failure().is_none(),
            "abandoning is not the daemon's fault"
        );
    }
}
