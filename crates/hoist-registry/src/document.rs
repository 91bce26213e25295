//! Reading small documents whole (manifests, indexes, configs, tokens, tag pages, error
//! bodies): capped in size, and in time.
//!
//! A blob may take as long as it keeps moving: its size is the manifest's word, and a slow
//! link is no fault. A document is different: it is small, and nothing can use it before its
//! last byte. A server that sends one byte of it every few seconds never trips the no-progress
//! timeout, so a manifest at its 8 MiB cap would take weeks. A document therefore gets the
//! client's timeout as a grace, plus one second for every [`MIN_DOCUMENT_RATE`] bytes that
//! arrived: a link faster than that never runs out of time, and a trickle is cut off a
//! timeout after it started.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::{Error, Result};

/// The slowest average rate at which a document keeps earning time, in bytes per second.
pub(crate) const MIN_DOCUMENT_RATE: u64 = 16 * 1024;

/// How long a document may have taken once `received` of its bytes arrived: `grace`, plus a
/// second per [`MIN_DOCUMENT_RATE`] bytes.
pub(crate) fn allowance(grace: Duration, received: u64) -> Duration {
    let earned = received.saturating_mul(1000) / MIN_DOCUMENT_RATE;
    grace.saturating_add(Duration::from_millis(earned))
}

/// The time a document has been arriving for, against its [`allowance`].
pub(crate) struct DocumentClock {
    started: Instant,
    grace: Duration,
}

impl DocumentClock {
    /// Start timing a document now, with `grace` (the client's timeout).
    pub(crate) fn start(grace: Duration) -> Self {
        DocumentClock {
            started: Instant::now(),
            grace,
        }
    }

    /// How long the next bytes may take once `received` arrived; `None` when the time is up.
    pub(crate) fn left(&self, received: u64) -> Option<Duration> {
        time_left(self.grace, self.started.elapsed(), received)
    }

    /// The error for a document that ran out of time with `received` bytes.
    pub(crate) fn too_slow(&self, what: &str, received: u64) -> Error {
        too_slow(what, self.grace, self.started.elapsed(), received)
    }
}

/// What is left of a document's [`allowance`] after `elapsed`; `None` when nothing is.
fn time_left(grace: Duration, elapsed: Duration, received: u64) -> Option<Duration> {
    allowance(grace, received)
        .checked_sub(elapsed)
        .filter(|left| !left.is_zero())
}

fn too_slow(what: &str, grace: Duration, elapsed: Duration, received: u64) -> Error {
    Error::transport(format!(
        "{what} arrived too slowly: {received} bytes in {} s (a document gets {} s, plus a \
         second per {} KiB)",
        elapsed.as_secs(),
        grace.as_secs(),
        MIN_DOCUMENT_RATE / 1024
    ))
}

/// Read a whole (small) body, failing when it exceeds `cap`, when no data arrives for `idle`
/// (the request timeout only covers the response head; a body can stall after it), or when it
/// trickles in slower than a [`DocumentClock`] with `idle` as its grace allows.
pub(crate) async fn read_capped(
    resp: Response<Incoming>,
    cap: usize,
    shown_url: &str,
    idle: Duration,
) -> Result<Bytes> {
    let clock = DocumentClock::start(idle);
    let mut body = http_body_util::Limited::new(resp.into_body(), cap);
    let mut out = bytes::BytesMut::new();
    loop {
        let received = out.len() as u64;
        let Some(left) = clock.left(received) else {
            return Err(clock
                .too_slow("response body", received)
                .with_url(shown_url.to_owned()));
        };
        let frame = match tokio::time::timeout(idle.min(left), body.frame()).await {
            Err(_) if clock.left(received).is_none() => {
                return Err(clock
                    .too_slow("response body", received)
                    .with_url(shown_url.to_owned()));
            }
            Err(_) => {
                return Err(Error::transport(format!(
                    "response body stalled: no data for {idle:?}"
                ))
                .with_url(shown_url.to_owned()));
            }
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                let err = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    Error::misbehaved(format!("response body exceeds the {cap}-byte limit"))
                } else {
                    Error::transport(format!("reading response body: {e}"))
                };
                return Err(err.with_url(shown_url.to_owned()));
            }
        };
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_earns_a_second_per_16_kib_beyond_its_grace() {
        let grace = Duration::from_secs(120);
        assert_eq!(allowance(grace, 0), grace);
        assert_eq!(allowance(grace, 16 * 1024), Duration::from_secs(121));
        // A manifest at the 8 MiB cap: the timeout plus 512 s, however it trickles.
        let cap = hoist_oci::MAX_JSON_SIZE as u64;
        assert_eq!(allowance(grace, cap), Duration::from_secs(120 + 512));
        // No overflow, whatever a caller passes.
        assert_eq!(allowance(Duration::MAX, u64::MAX), Duration::MAX);
    }

    #[test]
    fn time_runs_out_only_for_a_trickle() {
        let (grace, secs) = (Duration::from_secs(10), Duration::from_secs);
        assert_eq!(time_left(grace, Duration::ZERO, 0), Some(grace));
        // 30 s in, at 20 KiB/s: still ahead of the floor.
        assert!(time_left(grace, secs(30), 600 * 1024).is_some());
        // 30 s in, at a few bytes a second: out of time.
        assert_eq!(time_left(grace, secs(30), 90), None);
        assert_eq!(time_left(grace, secs(10), 0), None, "exactly used up");
        let e = too_slow("response body", grace, secs(30), 90);
        assert!(e.is_transport(), "{e}");
        assert!(e.to_string().contains("90 bytes in 30 s"), "{e}");
    }
}
