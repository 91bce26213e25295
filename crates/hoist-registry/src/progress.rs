//! Typed progress events, delivered without slowing the transfer.

use std::time::Duration;

use hoist_oci::Digest;
use tokio::sync::mpsc;

/// Something that happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Work on a blob began.
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// `offset` bytes of the blob are done: sent on the wire or confirmed by the registry
    /// (pushes; a chunk in flight is reported as it goes out), or written (pulls). Never goes
    /// backwards for one blob, even across resumes.
    BytesSent {
        /// The blob.
        digest: Digest,
        /// Bytes confirmed so far.
        offset: u64,
    },
    /// The registry already had the blob.
    Skipped {
        /// The blob.
        digest: Digest,
    },
    /// The blob was mounted from another repository of the same registry.
    Mounted {
        /// The blob.
        digest: Digest,
        /// The source repository.
        from: String,
    },
    /// A transient failure; the operation is tried again after `delay`.
    Retrying {
        /// The blob.
        digest: Digest,
        /// What went wrong.
        reason: String,
        /// How long hoist waits first.
        delay: Duration,
        /// Which attempt comes next, counting from 1 (the first retry is attempt 2).
        attempt: u32,
    },
    /// An interrupted upload or download continues at `offset`.
    Resumed {
        /// The blob.
        digest: Digest,
        /// Where it continues.
        offset: u64,
    },
    /// A streamed upload ([`crate::Client::push_remote_blob`]) continues a session an earlier
    /// run left at `offset` ([`Event::Resumed`]): before anything more is sent, the `offset`
    /// bytes the destination holds are read again from the source and hashed (not sent
    /// again), so that the blob's digest is checked over every byte before the upload is
    /// completed. Said once per read of that prefix.
    VerifyingPrefix {
        /// The blob.
        digest: Digest,
        /// Where the source is read from (0, unless a read of the prefix was cut).
        from: u64,
        /// Where the prefix ends: the destination's offset.
        offset: u64,
    },
    /// The upload could not continue where it stood and starts over at byte 0 in a new
    /// session: the registry no longer knows the session (an earlier run's, or this one's
    /// after a fault), or lost what it had acknowledged, or stored other bytes. `lost` bytes
    /// it had acknowledged are sent again.
    Restarted {
        /// The blob.
        digest: Digest,
        /// Bytes the registry had acknowledged in the session given up.
        lost: u64,
        /// Why, in words (for a warning).
        reason: String,
    },
    /// The push stopped before its next request because the caller asked it to
    /// ([`crate::PushOptions::stop_when`]); the error returned says so too.
    Stopped {
        /// The blob.
        digest: Digest,
        /// Bytes the registry holds (and the state file names, when there is one): where a
        /// later push continues.
        offset: u64,
    },
    /// A 413 without advertised limits: chunks shrink from `from` to `to` bytes.
    ChunkShrunk {
        /// The blob.
        digest: Digest,
        /// The old chunk size.
        from: u64,
        /// The new chunk size.
        to: u64,
    },
    /// The blob is complete and verified.
    Done {
        /// The blob.
        digest: Digest,
    },
    /// The blob failed; the error is returned to the caller too.
    Failed {
        /// The blob.
        digest: Digest,
        /// The error, as displayed.
        message: String,
    },
}

/// Where events go. Byte counts are dropped when the receiver lags (the next one supersedes
/// them); every other event is delivered (awaiting channel capacity), so a blob's final state
/// is never lost. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<mpsc::Sender<Event>>,
}

impl Progress {
    /// Discard all events.
    pub fn none() -> Self {
        Progress { tx: None }
    }

    /// A sink and the receiver to read events from. `capacity` bounds memory.
    pub fn channel(capacity: usize) -> (Progress, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Progress { tx: Some(tx) }, rx)
    }

    /// Deliver an event that must not be lost.
    pub(crate) async fn emit(&self, event: Event) {
        if let Some(tx) = &self.tx {
            // A dropped receiver means nobody is listening: fine.
            let _ = tx.send(event).await;
        }
    }

    /// Deliver a byte count if there is room; a later one replaces it.
    pub(crate) fn bytes(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(event);
        }
    }
}

/// Keeps one blob's reported byte count monotonic.
#[derive(Debug)]
pub(crate) struct BlobProgress<'a> {
    sink: &'a Progress,
    digest: Digest,
    high: u64,
}

impl<'a> BlobProgress<'a> {
    pub(crate) fn new(sink: &'a Progress, digest: &Digest) -> Self {
        BlobProgress {
            sink,
            digest: digest.clone(),
            high: 0,
        }
    }
    /// Report `offset` if it is beyond anything reported before.
    pub(crate) fn at(&mut self, offset: u64) {
        if offset > self.high {
            self.high = offset;
            self.sink.bytes(Event::BytesSent {
                digest: self.digest.clone(),
                offset,
            });
        }
    }
    pub(crate) async fn emit(&self, event: Event) {
        self.sink.emit(event).await;
    }
    pub(crate) fn digest(&self) -> &Digest {
        &self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_are_monotonic_and_final_states_survive_a_full_channel() {
        let (sink, mut rx) = Progress::channel(2);
        let d = Digest::sha256_of(b"x");
        let mut p = BlobProgress::new(&sink, &d);
        p.at(10);
        p.at(5); // a resume from an earlier offset is not reported as going backwards
        p.at(10);
        p.at(20); // channel full (capacity 2): dropped, not blocking
        p.at(30); // dropped too
        let first = rx.recv().await.expect("event");
        assert_eq!(
            first,
            Event::BytesSent {
                digest: d.clone(),
                offset: 10
            }
        );
        let second = rx.recv().await.expect("event");
        assert_eq!(
            second,
            Event::BytesSent {
                digest: d.clone(),
                offset: 20
            }
        );
        // Now fill the channel and check a final state waits for room instead of vanishing.
        p.at(40);
        p.at(50);
        let done = tokio::spawn({
            let sink = sink.clone();
            let d = d.clone();
            async move { sink.emit(Event::Done { digest: d }).await }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(rx.recv().await.expect("event"));
        }
        done.await.expect("emit task");
        assert_eq!(got.last(), Some(&Event::Done { digest: d }));
    }
}
