//! The prefix of a resumed streamed upload: bytes the destination holds that this process never
//! saw, read again from the source and hashed, never sent again.
//!
//! A streamed push ([`Client::push_remote_blob`]) completes an upload only when every byte of
//! the blob hashed to its digest. When it continues a session an earlier run left (its state
//! file), or the destination's `Range` ever runs ahead of what went through this process, the
//! bytes before that offset were sent by someone else: they are read from the source with a
//! ranged GET (`bytes=from-(offset-1)`), one frame at a time, hashed and dropped, and the
//! upload goes on from the offset as usual. The destination's `Range` decides the offset; this
//! module only catches the hash up to it.
//!
//! A source that ignores `Range` answers with the whole blob: its first `offset` bytes are
//! hashed, and the rest of the answer is kept for the first PATCH (see `crate::source`), so
//! the source is read once.
//!
//! Whether the prefix is right is known only at the end, from the whole digest: a source whose
//! prefix differs fails the verdict before the completing `PUT`, as any other lying source.
//! A read cut short is opened again where the hash stands, with the retry policy's backoff;
//! breaks in a row are bounded by its attempts, and a break counts as progress (and starts
//! the count over) only after [`PROGRESS_FLOOR`] bytes, as a pull counts them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::{Bytes, Src};
use crate::client::Client;
use crate::progress::{BlobProgress, Event};
use crate::source::Feed;
use crate::stop::StopHook;
use crate::{Error, Result};

/// Bytes a cut read must have hashed to count as progress rather than a fault in a row.
const PROGRESS_FLOOR: u64 = 16 * 1024;

/// How a catch-up ended.
pub(super) enum CatchUp {
    /// The first `upto` bytes are hashed (or the source is a file, which needs none).
    Done,
    /// The caller asked to stop before they all were.
    Stopped,
}

impl Client {
    /// Make sure the first `upto` bytes of a streamed `src` went through its hasher, reading
    /// the missing ones from the source (hashed, not sent). A file source needs nothing.
    ///
    /// `stop` is asked before each frame read and while one is awaited: a stop leaves the
    /// destination untouched.
    pub(super) async fn catch_up(
        &self,
        src: &Src,
        upto: u64,
        stop: &StopHook,
        bp: &BlobProgress<'_>,
    ) -> Result<CatchUp> {
        let Bytes::Remote(feed) = &src.bytes else {
            return Ok(CatchUp::Done);
        };
        let policy = self.cfg().retry.clone();
        let mut faults: u32 = 0;
        loop {
            let from = feed.hashed();
            if from >= upto {
                return Ok(CatchUp::Done);
            }
            if stop.asked() {
                return Ok(CatchUp::Stopped);
            }
            tracing::info!(digest = %src.digest, from, offset = upto, "reading the prefix an earlier run sent from the source, to verify it");
            bp.emit(Event::VerifyingPrefix {
                digest: src.digest.clone(),
                from,
                offset: upto,
            })
            .await;
            let Err(e) = self.read_prefix(feed, from, upto, stop).await else {
                continue;
            };
            if !e.is_retryable_transport() {
                return Err(e);
            }
            if feed.hashed() >= from.saturating_add(PROGRESS_FLOOR) {
                faults = 0;
            }
            faults += 1;
            if faults >= policy.max_attempts {
                return Err(e.with_note(&format!(
                    "gave up reading the first {upto} bytes from the source after {faults} \
                     breaks in a row"
                )));
            }
            let delay = policy.delay(faults - 1, None);
            bp.emit(Event::Retrying {
                digest: src.digest.clone(),
                reason: e.to_string(),
                delay,
                attempt: faults + 1,
            })
            .await;
            tokio::time::sleep(delay).await;
        }
    }

    /// One ranged GET of `[from, upto)` at the source, read to its end (or until `stop`),
    /// every frame hashed by the feed and dropped. Each frame must come within the client's
    /// timeout. `stop` is asked between frames and while a frame is awaited: a source that
    /// stalls cannot hold a stopped push for the client's timeout (longer than the CLI's
    /// grace, which would then cut it as if a chunk were in flight). Returns `Ok` when
    /// stopped; the caller's loop asks `stop` and ends the catch-up.
    async fn read_prefix(
        &self,
        feed: &Arc<Feed>,
        from: u64,
        upto: u64,
        stop: &StopHook,
    ) -> Result<()> {
        let timeout = self.cfg().timeout;
        let mut region = feed.open(from, upto, Arc::new(AtomicU64::new(0))).await?;
        loop {
            if stop.asked() {
                return Ok(());
            }
            let frame = std::future::poll_fn(|cx| region.poll_data(cx));
            let waited = tokio::select! {
                biased;
                waited = tokio::time::timeout(timeout, frame) => waited,
                // Nothing was sent: the prefix read is given up where it stands.
                () = stop.until_asked() => return Ok(()),
            };
            match waited {
                // Hashed by the region as it passed; nothing else wants it.
                Ok(Some(Ok(_))) => {}
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => {
                    return Err(Error::transport(format!(
                        "reading the first {upto} bytes of the blob from the source: {e}"
                    )));
                }
                Err(_) => {
                    return Err(Error::transport(format!(
                        "the source sent nothing for {} s while the first {upto} bytes of \
                         the blob were read (at byte {})",
                        timeout.as_secs(),
                        feed.hashed()
                    )));
                }
            }
        }
    }
}
