//! Completing an upload: `PUT ?digest=` on the session, retried on transient failures (and
//! treated as done when a retry finds the blob already there), with the registry's
//! `Docker-Content-Digest` checked against the blob's. What the PATCH loop must do next when
//! it is not done is a [`CloseError`]: restart the session, or find out who is wrong about a
//! `DIGEST_INVALID` ([`hash_file`]).

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
        let req = Req::new(Method::PUT, url.clone());
        let policy = &self.cfg().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = match self.execute(&req, &repo.registry, scopes).await {
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
                Step::Restart => return Err(CloseError::Restart),
                _ if err.code() == Some("DIGEST_INVALID") => {
                    return Err(CloseError::DigestInvalid(err));
                }
                _ => return Err(CloseError::Fatal(err)),
            }
        }
    }
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

/// Hash a file with the algorithm of `like`, in bounded reads.
pub(super) async fn hash_file(path: &std::path::Path, like: &Digest) -> Result<Digest> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::local(format!("opening {}", path.display()), e))?;
    let mut d = hoist_oci::Digester::new(like.algorithm());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Error::local(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(d.finish())
}
