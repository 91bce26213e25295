//! Completing an upload: `PUT ?digest=` on the session, retried on transient failures (and
//! treated as done when a retry finds the blob already there), with the registry's
//! `Docker-Content-Digest` checked against the blob's. What the PATCH loop must do next when
//! it is not done is a [`CloseError`]: restart the session, or find out who is wrong about a
//! `DIGEST_INVALID` ([`hash_file`]).
//!
//! A PUT whose answer was lost (a cut connection, a proxy's 502 while the registry was still
//! committing) may have completed the upload and consumed the session: its retry is then
//! refused as an unknown upload. Before such a refusal sends the whole blob again, the blob
//! is looked for (`HEAD`), a few times with backoff when an earlier PUT went out: the registry
//! stores a blob under a digest only after verifying it, so finding it there is proof enough.
//!
//! The registry answers the PUT only after re-hashing (or copying) the whole blob, which for
//! many gigabytes takes minutes, with nothing moving on the wire: the wait for that answer is
//! the client's timeout plus [`commit_wait`]'s allowance for the blob's size.

use std::time::Duration;

use hoist_oci::Digest;
use http::Method;

use super::Src;
use crate::client::{Client, Req, header_str, retry_after};
use crate::progress::{BlobProgress, Event};
use crate::protocol::location::display_url;
use crate::protocol::response::{Phase, Step, classify};
use crate::session::Session;
use crate::{Error, Repo, Result};

impl Client {
    /// `PUT ?digest=` on `session`: `Ok` once the registry holds the blob under its digest.
    pub(super) async fn close(
        &self,
        repo: &Repo,
        src: &Src,
        scopes: &[String],
        session: &Session,
        bp: &BlobProgress<'_>,
    ) -> Result<(), CloseError> {
        let mut url = session.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &src.digest.to_string());
        let req =
            Req::new(Method::PUT, url.clone()).head_wait(commit_wait(self.cfg().timeout, src.size));
        let policy = &self.cfg().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = match self.execute(&req, repo.registry(), scopes).await {
                Ok(r) => r,
                Err(e) if e.is_retryable_transport() && attempt < policy.max_attempts => {
                    // The PUT may have landed: if the blob exists, the push is done.
                    if self.blob_exists(repo, &src.digest).await.unwrap_or(false) {
                        return Ok(());
                    }
                    let delay = policy.delay(attempt - 1, None);
                    bp.emit(retrying(src, &e, delay, attempt + 1)).await;
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(e) => return Err(CloseError::Fatal(e)),
            };
            let status = resp.status().as_u16();
            if status == 201 || status == 204 || status == 200 {
                if let Some(got) = header_str(resp.headers(), "docker-content-digest") {
                    // Parsed, not echoed: a hostile header must not land in the message whole.
                    match Digest::parse(got.trim()) {
                        Ok(got) if got == src.digest => {}
                        Ok(got) => {
                            return Err(CloseError::Fatal(
                                Error::digest_mismatch(format!(
                                    "registry stored the blob as {got}, expected {}",
                                    src.digest
                                ))
                                .with_url(display_url(&url)),
                            ));
                        }
                        Err(_) => {
                            return Err(CloseError::Fatal(
                                Error::misbehaved(
                                    "registry completed the upload with an invalid \
                                     Docker-Content-Digest",
                                )
                                .with_url(display_url(&url)),
                            ));
                        }
                    }
                }
                return Ok(());
            }
            let ra = retry_after(resp.headers());
            let err = self.error_from(resp, &url, "completing the upload").await;
            match classify(Phase::Close, status, err.code(), ra) {
                Step::Retry { after } if attempt < policy.max_attempts => {
                    if self.blob_exists(repo, &src.digest).await.unwrap_or(false) {
                        return Ok(());
                    }
                    let delay = policy.delay(attempt - 1, after);
                    bp.emit(retrying(src, &err, delay, attempt + 1)).await;
                    tokio::time::sleep(delay).await;
                }
                Step::Restart => {
                    // An earlier attempt may have completed the upload (and consumed the
                    // session): then the blob is there, or about to be.
                    if self.landed(repo, src, attempt > 1).await {
                        tracing::info!(digest = %src.digest, "the upload session is gone but the blob is there: an earlier PUT completed it");
                        return Ok(());
                    }
                    return Err(CloseError::Restart);
                }
                _ if err.code() == Some("DIGEST_INVALID") => {
                    return Err(CloseError::DigestInvalid(err));
                }
                _ => return Err(CloseError::Fatal(err)),
            }
        }
    }
}

impl Client {
    /// Whether the blob is in the repository now, as a closing session refused as unknown
    /// may mean. When an earlier PUT of this close went out (`after_put`), the registry may
    /// still be committing it: ask again with the retry policy's backoff before saying no.
    /// A failing HEAD counts as "not there": the blob is sent again, which is safe.
    async fn landed(&self, repo: &Repo, src: &Src, after_put: bool) -> bool {
        let policy = &self.cfg().retry;
        let asks = if after_put {
            policy.max_attempts.max(1)
        } else {
            1
        };
        for ask in 0..asks {
            if ask > 0 {
                tokio::time::sleep(policy.delay(ask - 1, None)).await;
            }
            if self.blob_exists(repo, &src.digest).await.unwrap_or(false) {
                return true;
            }
        }
        false
    }
}

/// How fast a registry is assumed to re-hash or copy a blob when completing its upload: the
/// completing PUT may wait a second per this many bytes beyond the client's timeout (16 MiB/s,
/// the pace of a registry re-reading a blob from object storage; 20 GiB gets about 21 minutes).
const COMMIT_BYTES_PER_SEC: u64 = 16 << 20;

/// How long the answer to the PUT completing an upload of `size` bytes may take: the client's
/// `timeout`, plus the time a registry may spend re-hashing or copying the blob before it
/// answers (the PUT has no body, so there is no progress to watch meanwhile).
pub(super) fn commit_wait(timeout: Duration, size: u64) -> Duration {
    timeout.saturating_add(Duration::from_secs(size / COMMIT_BYTES_PER_SEC))
}

/// The event announcing that completing `src`'s upload is retried after `delay`, as attempt
/// `attempt`.
fn retrying(src: &Src, err: &Error, delay: std::time::Duration, attempt: u32) -> Event {
    Event::Retrying {
        digest: src.digest.clone(),
        reason: err.to_string(),
        delay,
        attempt,
    }
}

/// Why the `PUT` did not complete the upload, as what the PATCH loop must do next.
pub(super) enum CloseError {
    /// The session is gone: open a new one and send the blob again.
    Restart,
    /// The registry computed another digest: either the source or the registry is wrong.
    DigestInvalid(Error),
    /// Give up with this error.
    Fatal(Error),
}

impl From<Error> for CloseError {
    fn from(e: Error) -> Self {
        CloseError::Fatal(e)
    }
}

/// Hash a file with `algorithm`, in bounded reads; its digest and size.
pub(super) async fn hash_file(
    path: &std::path::Path,
    algorithm: hoist_oci::Algorithm,
) -> Result<(Digest, u64)> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::local(format!("opening {}", path.display()), e))?;
    let mut d = hoist_oci::Digester::new(algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Error::local(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        size += n as u64;
    }
    Ok((d.finish(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_wait_grows_with_the_blob() {
        let t = Duration::from_secs(120);
        assert_eq!(commit_wait(t, 0), t);
        assert_eq!(commit_wait(t, 10 << 20), t, "a small blob: the timeout");
        assert_eq!(commit_wait(t, 32 << 20), t + Duration::from_secs(2));
        let big = commit_wait(t, 20 << 30);
        assert_eq!(big, t + Duration::from_secs(1280));
        assert_eq!(commit_wait(Duration::MAX, u64::MAX), Duration::MAX);
    }
}
