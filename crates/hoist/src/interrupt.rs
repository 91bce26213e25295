//! Ctrl-C and SIGTERM: the signal sets a flag, and the blocking work (unpacking, spooling,
//! compressing, writing an archive) sees it at its next read or write through the CLI's
//! counting readers and writers and fails there. The failure then takes the ordinary error
//! path, so what that path cleans up (a root hoist created, a temp layout, a half-written
//! archive) is cleaned up on an interruption too.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What an interrupted command says when running it again continues where it stopped (a push:
/// the registry keeps what it has, and the upload state says where that ends).
pub const RESUMABLE: &str = "interrupted: run the same command again to continue where it stopped";

/// What an interrupted push from the Docker daemon or a docker archive says: the upload
/// continues where it stopped, but the image may have to be read again first (an export or a
/// spool cut short is not kept).
pub const RESUMABLE_AFTER_REREAD: &str = "interrupted: run the same command again; it may read \
     the image again first, but sends only what the registry does not have yet";

/// What an interrupted copy into a layout says: the blobs it verified stay, and running it again
/// copies only the rest.
pub const BLOBS_KEPT: &str =
    "interrupted: the blobs already copied are kept; run the same command again to copy the rest";

/// What any other interrupted command says: what it made was removed (its error says so), and
/// running it again starts over.
pub const STARTS_OVER: &str = "interrupted";

/// Ask every piece of work in progress to stop.
pub fn raise() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// An I/O error once [`raise`] was called. Not `ErrorKind::Interrupted`, which std's read and
/// write loops retry.
///
/// # Errors
/// After a signal.
pub fn check() -> std::io::Result<()> {
    if raised() {
        Err(std::io::Error::other("interrupted by a signal"))
    } else {
        Ok(())
    }
}

/// Whether [`raise`] was called.
pub fn raised() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Run `work` until it ends or [`raise`] is called; then it is dropped (a download's temp
/// file goes with it) and the error says so, for the caller's error path to clean up.
///
/// # Errors
/// `work`'s, or an interruption.
pub async fn unless_raised<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                if raised() {
                    anyhow::bail!("interrupted by a signal");
                }
            }
        }
    }
}

/// How long interrupted work may take to clean up after itself (removing a large partial root
/// takes a while).
pub const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Run a command's `work` until it ends or a signal comes. On a signal, [`raise`], then give the
/// work `grace` to fail at its next read or write and clean up on its error path (a second
/// signal stops the wait); its error, or the interruption, is returned with `message` (one of
/// [`RESUMABLE`], [`RESUMABLE_AFTER_REREAD`], [`BLOBS_KEPT`], [`STARTS_OVER`]).
///
/// # Errors
/// `work`'s, or an interruption.
pub async fn interruptible<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    grace: std::time::Duration,
    message: &'static str,
) -> anyhow::Result<T> {
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        () = signalled() => {
            raise();
            let waited = async {
                tokio::select! {
                    r = tokio::time::timeout(grace, &mut work) => r.ok(),
                    () = signalled() => None,
                }
            };
            match waited.await {
                // It finished as the signal came: done is done.
                Some(Ok(value)) => Ok(value),
                // Its error says what was cleaned up.
                Some(Err(e)) => Err(e.context(message)),
                None => Err(anyhow::anyhow!(message)),
            }
        }
    }
}

/// Wait for Ctrl-C (SIGINT) or SIGTERM.
pub async fn signalled() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How often a [`Watched`] stream waiting for bytes looks at the flag.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// An async stream that fails once [`raise`] is called, even while it waits for bytes. A
/// blocking reader bridged onto a registry's stream (a layer unpacked or written into an
/// archive as it downloads) then stops within [`WATCH_INTERVAL`], and its error path cleans
/// up, instead of waiting for a byte a stalled server may not send before the timeout.
pub struct Watched<R> {
    inner: R,
    /// Whether to stop: [`raised`], or a test's own flag.
    stop: fn() -> bool,
    /// Wakes the reader while the stream has nothing, to look at the flag again; made on
    /// first use, inside the runtime.
    tick: Option<Pin<Box<Sleep>>>,
}

impl<R> Watched<R> {
    /// `inner`, failing once a signal came.
    pub fn new(inner: R) -> Self {
        Watched {
            inner,
            stop: raised,
            tick: None,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Watched<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if (this.stop)() {
            return Poll::Ready(Err(std::io::Error::other("interrupted by a signal")));
        }
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_pending() {
            let tick = this
                .tick
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(WATCH_INTERVAL)));
            // Elapsed: set again and poll, which registers the wake-up.
            while tick.as_mut().poll(cx).is_ready() {
                tick.as_mut().reset(Instant::now() + WATCH_INTERVAL);
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// A stream that never sends a byte: the watched read ends once the flag is raised, not
    /// never. (A flag of the test's own: the process-wide one would stop other tests' work.)
    #[tokio::test]
    async fn a_stalled_stream_fails_once_a_signal_came() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let (_keep_open, stalled) = tokio::io::duplex(64);
        let mut watched = Watched {
            stop: || STOP.load(Ordering::SeqCst),
            ..Watched::new(stalled)
        };
        let read = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            watched.read(&mut buf).await
        });
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            !read.is_finished(),
            "nothing came, nothing was raised: still waiting"
        );
        STOP.store(true, Ordering::SeqCst);
        let result = tokio::time::timeout(Duration::from_secs(2), read)
            .await
            .expect("ended within the watch interval")
            .expect("task");
        assert!(result.is_err());
    }
}
