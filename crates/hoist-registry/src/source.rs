//! Blobs pushed straight from another registry: ranged GETs feeding PATCH bodies, hashed once.
//!
//! A [`RemoteBlob`] names a blob in a source repository (any registry, any client). Each PATCH
//! of a streamed push opens a ranged GET at the source for exactly the chunk being sent
//! (`Range: bytes=start-(end-1)`), so a resume after a fault re-opens the source at the
//! destination's `Range` instead of re-reading a file. Nothing is spooled: the only buffer is
//! the frame in flight.
//!
//! A source that ignores `Range` answers every chunk's GET with the whole blob from byte 0. The
//! chunk's bytes are then picked out of it, and the answer is kept ([`Parked`]) when the chunk
//! ends, so the next chunk reads on where it stopped instead of asking for the blob again:
//! asking again would read everything before each chunk once more, quadratic in the blob's
//! size (16 GiB read for a 1 GiB blob in 32 MiB chunks).
//!
//! Every byte is hashed the first time it passes through a body ([`Feed`]); bytes re-sent
//! after a resume or restart were hashed already (should the source send different bytes the
//! second time, the destination's own digest check on the `PUT` refuses them). Before the
//! final `PUT ?digest=` the digest of what went out must equal the descriptor's, so a source
//! that lies fails the push before the destination completes anything.
//!
//! A push continuing a session an earlier process left (its state file) never saw the bytes
//! that process sent: they are read from the source again and hashed without being sent
//! (`upload/prefix.rs`, through [`Feed::open`] like any chunk), so the same check covers them.
//! When the source answers that read with the whole blob, the rest of the answer is kept for
//! the first chunk as above.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hoist_oci::{Descriptor, Digest, Digester};
use http::Response;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::client::{Client, header_str};
use crate::{Error, Repo, Result};

/// A blob in a source repository, streamed through a push to another registry
/// ([`Client::push_remote_blob`]).
#[derive(Debug, Clone)]
pub struct RemoteBlob {
    client: Client,
    repo: Repo,
    descriptor: Descriptor,
}

impl RemoteBlob {
    /// The blob `descriptor` (digest and size, as the source's manifest says) in `repo`, read
    /// with `client` (which may differ from the pushing client: other credentials, other
    /// registry).
    #[must_use]
    pub fn new(client: Client, repo: Repo, descriptor: Descriptor) -> Self {
        RemoteBlob {
            client,
            repo,
            descriptor,
        }
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.descriptor.size
    }

    /// The source repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }
}

/// Hashing state of one streamed push: bytes `[0, hashed)` went through the hasher.
struct Verify {
    hasher: Option<Digester>,
    hashed: u64,
    /// The digest of all `size` bytes, once they were all seen.
    finished: Option<Digest>,
    /// A body started past `hashed`: some bytes were never seen, nothing can be vouched for.
    gap: bool,
}

/// One streamed push of a [`RemoteBlob`]: the blob and the hash of what was sent so far.
pub(crate) struct Feed {
    pub(crate) blob: RemoteBlob,
    verify: Mutex<Verify>,
    /// The rest of a whole-blob answer, kept for the next chunk.
    parked: Mutex<Option<Parked>>,
}

/// An answer of a source that ignored `Range` (the whole blob), kept between two chunks: the
/// blob from offset `pos` on is `leftover`, then what `body` has not yielded yet.
struct Parked {
    pos: u64,
    leftover: Bytes,
    body: Incoming,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("digest", self.blob.digest())
            .field("repo", &self.blob.repo)
            .finish_non_exhaustive()
    }
}

/// The future of [`Feed::open`], boxed: opening a source is a request inside a request.
type Opening<'a> = Pin<Box<dyn std::future::Future<Output = Result<RemoteRegion>> + Send + 'a>>;

impl Feed {
    pub(crate) fn new(blob: RemoteBlob) -> Self {
        let hasher = Digester::new(blob.digest().algorithm());
        let (hasher, finished) = if blob.size() == 0 {
            (None, Some(hasher.finish()))
        } else {
            (Some(hasher), None)
        };
        Feed {
            blob,
            verify: Mutex::new(Verify {
                hasher,
                hashed: 0,
                finished,
                gap: false,
            }),
            parked: Mutex::new(None),
        }
    }

    /// `data` is the blob's bytes at `[pos, pos + len)`: hash what was not hashed yet.
    fn observe(&self, pos: u64, data: &[u8]) {
        let mut v = self.verify.lock().unwrap_or_else(|p| p.into_inner());
        if pos > v.hashed {
            v.gap = true;
            return;
        }
        let end = pos + data.len() as u64;
        if end <= v.hashed {
            return;
        }
        let fresh = &data[(v.hashed - pos) as usize..];
        if let Some(h) = v.hasher.as_mut() {
            h.update(fresh);
        }
        v.hashed = end;
        if end >= self.blob.size()
            && let Some(h) = v.hasher.take()
        {
            v.finished = Some(h.finish());
        }
    }

    /// How many of the blob's first bytes went through the hasher: `[0, hashed)`.
    pub(crate) fn hashed(&self) -> u64 {
        self.verify.lock().unwrap_or_else(|p| p.into_inner()).hashed
    }

    /// Whether everything sent hashes to the blob's digest. Called before the final PUT.
    pub(crate) fn verdict(&self) -> Result<()> {
        let v = self.verify.lock().unwrap_or_else(|p| p.into_inner());
        let shown = self.blob.repo.to_string();
        if v.gap || v.finished.is_none() {
            return Err(Error::misbehaved(format!(
                "could not verify blob {} streamed from {shown}: only {} of {} bytes passed through hoist",
                self.blob.digest(),
                v.hashed,
                self.blob.size()
            )));
        }
        match &v.finished {
            Some(d) if d == self.blob.digest() => Ok(()),
            Some(d) => Err(Error::digest_mismatch(format!(
                "the source registry sent bytes for blob {} (from {shown}) that hash to {d}; \
                 nothing was completed at the destination",
                self.blob.digest()
            ))),
            None => Err(Error::misbehaved("blob was not verified")),
        }
    }

    /// Open the source for `[start, end)` and wrap its body for a PATCH.
    pub(crate) fn open(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        produced: Arc<AtomicU64>,
    ) -> Opening<'_> {
        Box::pin(async move {
            // A whole-blob answer the last chunk stopped in, at this chunk's start: read on.
            let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(parked) = parked.filter(|p| p.pos == start) {
                return Ok(RemoteRegion::read_on(parked, self.clone(), end, produced));
            }
            let b = &self.blob;
            let resp = b
                .client
                .get_blob_range(&b.repo, &b.descriptor, start, Some(end))
                .await?;
            RemoteRegion::new(resp, self.clone(), start, end, produced)
        })
    }
}

/// A PATCH body streaming `[pos, end)` of a source blob from an open GET response.
pub(crate) struct RemoteRegion {
    /// `None` only once parked (on drop).
    body: Option<Incoming>,
    /// Bytes taken from `body` past `end` (a whole-blob answer): the next chunk's first bytes.
    leftover: Bytes,
    /// The answer is the whole blob (the source ignored `Range`): kept for the next chunk when
    /// this one ends.
    whole: bool,
    feed: Arc<Feed>,
    /// Absolute blob offset of the next byte handed out.
    pos: u64,
    end: u64,
    /// Bytes still to drop (a source that ignored `Range` and sent the blob from byte 0).
    skip: u64,
    produced: Arc<AtomicU64>,
}

impl RemoteRegion {
    fn new(
        resp: Response<Incoming>,
        feed: Arc<Feed>,
        start: u64,
        end: u64,
        produced: Arc<AtomicU64>,
    ) -> Result<Self> {
        let skip = if resp.status().as_u16() == 206 {
            let got = range_start(header_str(resp.headers(), "content-range"));
            if got != Some(start) {
                return Err(Error::misbehaved(format!(
                    "asked the source registry for blob {} from byte {start}, got a range starting at {got:?}",
                    feed.blob.digest()
                )));
            }
            0
        } else {
            start
        };
        produced.store(0, Ordering::Relaxed);
        Ok(RemoteRegion {
            whole: resp.status().as_u16() != 206,
            body: Some(resp.into_body()),
            leftover: Bytes::new(),
            feed,
            pos: start,
            end,
            skip,
            produced,
        })
    }

    /// The chunk `[parked.pos, end)`, read on from a whole-blob answer the last chunk left.
    fn read_on(parked: Parked, feed: Arc<Feed>, end: u64, produced: Arc<AtomicU64>) -> Self {
        produced.store(0, Ordering::Relaxed);
        RemoteRegion {
            body: Some(parked.body),
            leftover: parked.leftover,
            whole: true,
            feed,
            pos: parked.pos,
            end,
            skip: 0,
            produced,
        }
    }

    /// A counter of the bytes this body has produced so far.
    pub(crate) fn progress(&self) -> Arc<AtomicU64> {
        self.produced.clone()
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            if self.pos >= self.end {
                return Poll::Ready(None);
            }
            let mut data = if self.leftover.is_empty() {
                match self.poll_body(cx) {
                    Poll::Ready(Ok(Some(data))) => data,
                    Poll::Ready(Ok(None)) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                std::mem::take(&mut self.leftover)
            };
            if self.skip > 0 {
                let k = self.skip.min(data.len() as u64) as usize;
                self.skip -= k as u64;
                let _ = data.split_to(k);
            }
            // Beyond the requested window (a source ignoring Range): the next chunk's bytes.
            let room = (self.end - self.pos).min(data.len() as u64) as usize;
            if self.whole {
                self.leftover = data.split_off(room);
            } else {
                data.truncate(room);
            }
            if data.is_empty() {
                continue;
            }
            self.feed.observe(self.pos, &data);
            self.pos += data.len() as u64;
            self.produced
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    /// The next data frame of the answer; `Ok(None)` for a frame without data.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Option<Bytes>>> {
        let digest = self.feed.blob.digest();
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "reading blob {digest} from the source registry: its answer was let go"
            ))));
        };
        Poll::Ready(match ready!(Pin::new(body).poll_frame(cx)) {
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the source registry ended blob {digest} at byte {} of {}",
                    self.pos, self.end
                ),
            )),
            Some(Err(e)) => Err(std::io::Error::other(format!(
                "reading blob {digest} from the source registry: {e}"
            ))),
            Some(Ok(frame)) => Ok(frame.into_data().ok()),
        })
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

impl Drop for RemoteRegion {
    /// A whole-blob answer this chunk read to its end is kept for the next chunk, which starts
    /// there (unless the destination asks for other bytes: then it is dropped unused).
    fn drop(&mut self) {
        let read_to_end = self.pos == self.end && self.skip == 0;
        if self.whole
            && read_to_end
            && self.end < self.feed.blob.size()
            && let Some(body) = self.body.take()
        {
            let parked = Parked {
                pos: self.end,
                leftover: std::mem::take(&mut self.leftover),
                body,
            };
            *self.feed.parked.lock().unwrap_or_else(|p| p.into_inner()) = Some(parked);
        }
    }
}

/// The first byte of a `Content-Range: bytes a-b/n` value.
pub(crate) fn range_start(value: Option<&str>) -> Option<u64> {
    value
        .and_then(|v| v.trim().strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|s| s.trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(data: &[u8]) -> Feed {
        let digest = Digest::sha256_of(data);
        let desc = Descriptor::new(
            hoist_oci::MediaType::new(hoist_oci::MediaType::OCI_LAYER_GZIP),
            digest,
            data.len() as u64,
        );
        let client = Client::builder().build().expect("client");
        let repo = Repo::new("127.0.0.1:1", "a/b").expect("repo");
        Feed::new(RemoteBlob::new(client, repo, desc))
    }

    #[test]
    fn overlapping_resends_are_hashed_once() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let f = feed(&data);
        f.observe(0, &data[..600]);
        // The destination acknowledged only 400 bytes: the resend overlaps what was hashed.
        f.observe(400, &data[400..800]);
        // A restart from zero resends everything again.
        f.observe(0, &data[..1000]);
        f.verdict().expect("verified");
    }

    #[test]
    fn wrong_bytes_fail_the_verdict() {
        let data = vec![7u8; 300];
        let f = feed(&data);
        let mut bad = data.clone();
        bad[10] ^= 0xff;
        f.observe(0, &bad);
        let e = f.verdict().expect_err("lying source");
        assert!(e.to_string().contains("hash to"), "{e}");
    }

    #[test]
    fn unseen_bytes_are_not_vouched_for() {
        let data = vec![1u8; 300];
        let f = feed(&data);
        f.observe(0, &data[..100]);
        f.observe(200, &data[200..]);
        assert!(f.verdict().is_err());
        let g = feed(&data);
        g.observe(0, &data[..299]);
        assert!(g.verdict().is_err(), "one byte short");
    }

    #[test]
    fn empty_blob_is_verified_without_bytes() {
        feed(b"").verdict().expect("empty blob");
    }

    #[test]
    fn content_range_start() {
        assert_eq!(range_start(Some("bytes 10-19/100")), Some(10));
        assert_eq!(range_start(Some("bytes */100")), None);
        assert_eq!(range_start(None), None);
    }
}
