//! Ctrl-C and SIGTERM: the signal sets a flag, and the blocking work (unpacking, spooling,
//! compressing, writing an archive) sees it at its next read or write through the CLI's
//! counting readers and writers and fails there. The failure then takes the ordinary error
//! path, so what that path cleans up (a root hoist created, a temp layout, a half-written
//! archive) is cleaned up on an interruption too.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What an interrupted command says when running it again continues where it stopped (a push:
/// the registry keeps what it has, and the upload state says where that ends).
pub const RESUMABLE: &str = "interrupted: run the same command again to continue where it stopped";

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
/// [`RESUMABLE`], [`BLOBS_KEPT`], [`STARTS_OVER`]).
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
