//! Ctrl-C and SIGTERM: the signal sets a flag, and the blocking work (unpacking, spooling,
//! compressing, writing an archive) sees it at its next read or write through the CLI's
//! counting readers and writers and fails there. The failure then takes the ordinary error
//! path, so what that path cleans up (a root hoist created, a temp layout, a half-written
//! archive) is cleaned up on an interruption too.
//!
//! A push sees the flag through its stop hook (`PushOptions::stop_when`): each upload
//! finishes the chunk it is sending, saves its state and stops, so that running the command
//! again continues there ([`PUSH_GRACE`] bounds the wait). A second signal, or the grace
//! running out, stops everything at once: what was cut short is said ([`CUT_MID_CHUNK`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The number of the first signal that came (SIGINT 2, SIGTERM 15), 0 before any.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// What an interrupted command says when running it again continues where it stopped (a push:
/// the registry keeps what it has, and the upload state says where that ends).
pub const RESUMABLE: &str = "interrupted: run the same command again to continue where it stopped";

/// What an interrupted push from the Docker daemon or a docker archive says: the upload
/// continues where it stopped, but the image may have to be read again first (an export or a
/// spool cut short is not kept).
pub const RESUMABLE_AFTER_REREAD: &str = "interrupted: run the same command again; it may read \
     the image again first, but sends only what the registry does not have yet";

/// What an interrupted copy between registries says: the uploads continue where they stopped,
/// but the blobs stream through hoist with no local copy, and each one's digest is checked over
/// all of its bytes, so the bytes the destination has are read from the source again first
/// (hashed, not sent).
pub const RESUMABLE_AFTER_VERIFY: &str = "interrupted: run the same command again to continue \
     where it stopped; it reads again from the source what the destination already has, to \
     verify it, but sends only the rest";

/// What an interrupted copy into a layout says: the blobs it verified stay, and running it again
/// copies only the rest.
pub const BLOBS_KEPT: &str =
    "interrupted: the blobs already copied are kept; run the same command again to copy the rest";

/// What any other interrupted command says: what it made was removed (its error says so), and
/// running it again starts over.
pub const STARTS_OVER: &str = "interrupted";

/// What a push says as soon as the first signal comes: it is not stuck, it is finishing.
pub const FINISHING_CHUNKS: &str = "interrupted: finishing the chunks being uploaded so the \
     push can resume; press Ctrl-C again to stop now";

/// Why a push stopped at once (a second signal, or [`PUSH_GRACE`] over) may not continue
/// where it stopped: the cause under its interruption message.
pub const CUT_MID_CHUNK: &str = "stopped before the chunks in flight were finished: a \
     registry that keeps a cut chunk without updating its session (distribution 2.8 does) \
     forgets that upload, and the next run sends its blob again from the start";

/// How long a push may take to finish the chunks it is sending after the first signal. A chunk
/// is at most `--chunk-size` (32 MiB by default) and the uploads in flight share the link: in
/// 30 s one default chunk finishes from about 9 Mbit/s up, and six uploads, each on average
/// halfway through its chunk, from about 27 Mbit/s. Kubernetes waits as long before its SIGKILL
/// (docker stop 10 s, systemd 90 s). On a slower link the user, told at once what is going on,
/// may press Ctrl-C again, or the grace runs out: either cuts the chunks, as every Ctrl-C did
/// before, and the message says what that may cost. Waiting longer would make Ctrl-C feel
/// ignored; a smaller `--chunk-size` shortens the wait.
pub const PUSH_GRACE: Duration = Duration::from_secs(30);

/// Ask every piece of work in progress to stop, because signal `signo` came. The first
/// signal's number is kept: it decides the exit code ([`exit_code`]).
pub fn raise(signo: i32) {
    let _ = SIGNAL.compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
}

/// The exit code of a command that failed after a signal: 128 plus the signal's number (130
/// for Ctrl-C, 143 for SIGTERM), what a shell reports for a process the signal killed and
/// what `docker` and `skopeo` end with. `None` when no signal came: the failure is its own.
pub fn exit_code() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signo => Some(128 + signo),
    }
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
    SIGNAL.load(Ordering::Relaxed) != 0
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
pub const CLEANUP_GRACE: Duration = Duration::from_secs(10);

/// What a command does when a signal comes.
#[derive(Debug, Clone, Copy)]
pub struct OnSignal {
    /// How long the work may take to stop by itself after the first signal.
    pub grace: Duration,
    /// What the error says after an interruption: one of [`RESUMABLE`],
    /// [`RESUMABLE_AFTER_REREAD`], [`RESUMABLE_AFTER_VERIFY`], [`BLOBS_KEPT`], [`STARTS_OVER`].
    pub message: &'static str,
    /// Told the user at once on the first signal, when stopping takes a while
    /// ([`FINISHING_CHUNKS`]).
    pub notice: Option<&'static str>,
    /// Why the work, stopped at once (a second signal, or `grace` over), may lose more than
    /// `message` promises ([`CUT_MID_CHUNK`]); shown under it.
    pub cut: Option<&'static str>,
}

impl OnSignal {
    /// Give the work `grace`, then say `message`; nothing more.
    pub fn new(grace: Duration, message: &'static str) -> Self {
        OnSignal {
            grace,
            message,
            notice: None,
            cut: None,
        }
    }
}

/// Run a command's `work` until it ends or a signal comes. On a signal, [`raise`], then give the
/// work `grace` to fail at its next read or write and clean up on its error path (a second
/// signal stops the wait); its error, or the interruption, is returned with `message` (one of
/// [`RESUMABLE`], [`RESUMABLE_AFTER_REREAD`], [`RESUMABLE_AFTER_VERIFY`], [`BLOBS_KEPT`],
/// [`STARTS_OVER`]).
///
/// # Errors
/// `work`'s, or an interruption.
pub async fn interruptible<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    grace: Duration,
    message: &'static str,
) -> anyhow::Result<T> {
    interruptible_with(work, OnSignal::new(grace, message), |_| {}).await
}

/// [`interruptible`], as `on` says: `tell` gets its notice on the first signal, and work
/// stopped at once fails with its `cut` note under the message. Returns at once on a second
/// signal, dropping `work`.
///
/// # Errors
/// `work`'s, or an interruption.
pub async fn interruptible_with<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    on: OnSignal,
    tell: impl FnOnce(&'static str),
) -> anyhow::Result<T> {
    // Listening from the start, so a second signal that comes right after the first is heard.
    let mut signals = Signals::new();
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        signo = signals.next() => {
            raise(signo);
            if let Some(notice) = on.notice {
                tell(notice);
            }
            let waited = async {
                tokio::select! {
                    r = tokio::time::timeout(on.grace, &mut work) => r.ok(),
                    _ = signals.next() => None,
                }
            };
            match waited.await {
                // It finished as the signal came: done is done.
                Some(Ok(value)) => Ok(value),
                // Its error says what was cleaned up, or where the push stopped.
                Some(Err(e)) => Err(e.context(on.message)),
                None => match on.cut {
                    Some(cut) => Err(anyhow::anyhow!(cut).context(on.message)),
                    None => Err(anyhow::anyhow!(on.message)),
                },
            }
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to until dropped: every signal that comes while it
/// lives is heard, one per [`Signals::next`].
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next signal's number (never, when neither could be listened to).
    async fn next(&mut self) -> i32 {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            // A stream that ended (the runtime going away) is no signal.
            if let Some(s) = s
                && s.recv().await.is_some()
            {
                return;
            }
            std::future::pending().await
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => libc::SIGINT,
            () = recv(&mut self.terminate) => libc::SIGTERM,
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
    use std::sync::atomic::AtomicBool;
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
