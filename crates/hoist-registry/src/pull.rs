//! Blob pull: streamed to a file with digest verification and `Range` resume, or as a
//! verifying `AsyncRead`.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hoist_oci::{Descriptor, Digester};
use http::{Method, Response, header};
use http_body::Body;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use crate::client::{Client, Req, header_str, retry_after};
use crate::progress::{BlobProgress, Event, Progress};
use crate::protocol::location::{display_url, resolve_location};
use crate::protocol::response::{Phase, Step, classify};
use crate::upload::pull_scope;
use crate::{Error, Repo, Result};

/// Redirects followed for one blob GET (registries redirect to storage, once).
const MAX_REDIRECTS: usize = 5;

impl Client {
    /// GET the blob (from byte `from`), following redirects to storage; retries transient
    /// statuses. Returns a 200 or 206 response.
    async fn get_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        from: u64,
    ) -> Result<Response<Incoming>> {
        let scopes = [pull_scope(&repo.name)];
        let mut url = self.url(
            &repo.registry,
            &format!("{}/blobs/{}", repo.name, desc.digest),
        )?;
        let policy = self.cfg().retry.clone();
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            let mut req = Req::new(Method::GET, url.clone());
            if from > 0 {
                req = req.header(header::RANGE, format!("bytes={from}-"));
            }
            attempt += 1;
            let resp = match self.execute(&req, &repo.registry, &scopes).await {
                Ok(r) => r,
                Err(e) if e.is_transport() && attempt < policy.max_attempts => {
                    tokio::time::sleep(policy.delay(attempt - 1, None)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = resp.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                let next =
                    header_str(resp.headers(), "location").and_then(|l| resolve_location(&url, l));
                match next {
                    Some(n) if redirects <= MAX_REDIRECTS => {
                        url = n;
                        continue;
                    }
                    _ => {
                        return Err(Error::misbehaved("too many or unusable blob redirects")
                            .with_url(display_url(&url)));
                    }
                }
            }
            if status == 200 || status == 206 {
                return Ok(resp);
            }
            let ra = retry_after(resp.headers());
            let err = self.error_from(resp, &url, "downloading a blob").await;
            match classify(Phase::Download, status, err.code(), ra) {
                Step::Retry { after } if attempt < policy.max_attempts => {
                    tokio::time::sleep(policy.delay(attempt - 1, after)).await;
                }
                _ => return Err(err),
            }
        }
    }

    /// Download a blob to `sink`, verifying its digest and size. Bytes go to `sink.partial`
    /// first and are renamed into place only when verified; a blob whose digest fails is
    /// deleted. A connection that ends early is resumed with `Range: bytes=N-` from the bytes
    /// already written (a server ignoring `Range` restarts the file).
    ///
    /// # Errors
    /// Misbehaved on a digest or size mismatch; transport after retries; local I/O.
    pub async fn pull_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        sink: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let _permit = self
            .inner
            .blobs
            .acquire()
            .await
            .map_err(|_| Error::invalid("client is shutting down"))?;
        let mut bp = BlobProgress::new(progress, &desc.digest);
        bp.emit(Event::BlobStarted {
            digest: desc.digest.clone(),
            size: desc.size,
        })
        .await;
        let partial = partial_path(sink);
        let result = self.pull_into(repo, desc, &partial, &mut bp).await;
        let result = match result {
            Ok(()) => tokio::fs::rename(&partial, sink)
                .await
                .map_err(|e| Error::local(format!("renaming into {}", sink.display()), e)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        };
        match &result {
            Ok(()) => {
                bp.emit(Event::Done {
                    digest: desc.digest.clone(),
                })
                .await
            }
            Err(e) => {
                bp.emit(Event::Failed {
                    digest: desc.digest.clone(),
                    message: e.to_string(),
                })
                .await
            }
        }
        result.map_err(|e| e.with_digest(&desc.digest))
    }

    async fn pull_into(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        partial: &Path,
        bp: &mut BlobProgress<'_>,
    ) -> Result<()> {
        let local = |e| Error::local(format!("writing {}", partial.display()), e);
        let file = tokio::fs::File::create(partial).await.map_err(local)?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let mut hasher = Digester::new(desc.digest.algorithm());
        let mut written: u64 = 0;
        let policy = self.cfg().retry.clone();
        let mut short_reads = 0;
        let timeout = self.cfg().timeout;
        // An empty blob needs no request: its digest is checked below like any other.
        while written < desc.size {
            let resp = self.get_blob(repo, desc, written).await?;
            let status = resp.status().as_u16();
            if status == 200 && written > 0 {
                // The server ignored Range: start the file over.
                out.flush().await.map_err(local)?;
                let file = out.into_inner();
                file.set_len(0).await.map_err(local)?;
                let mut file = file;
                use tokio::io::AsyncSeekExt;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(local)?;
                out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
                hasher = Digester::new(desc.digest.algorithm());
                written = 0;
            } else if status == 206 {
                let start = header_str(resp.headers(), "content-range")
                    .and_then(|v| v.trim().strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(written) {
                    return Err(Error::misbehaved(format!(
                        "asked for the blob from byte {written}, got a range starting at {start:?}"
                    )));
                }
            }
            let mut body = resp.into_body();
            let mut cut = None;
            loop {
                let frame = match tokio::time::timeout(
                    timeout,
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)),
                )
                .await
                {
                    Err(_) => {
                        cut = Some(format!("no data for {timeout:?}"));
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        cut = Some(e.to_string());
                        break;
                    }
                    Ok(Some(Ok(f))) => f,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if written + data.len() as u64 > desc.size {
                    return Err(Error::misbehaved(format!(
                        "registry sent more than the blob's {} bytes",
                        desc.size
                    )));
                }
                hasher.update(&data);
                out.write_all(&data).await.map_err(local)?;
                written += data.len() as u64;
                bp.at(written);
            }
            if written < desc.size {
                short_reads += 1;
                let reason = cut.unwrap_or_else(|| "connection closed early".into());
                if short_reads >= policy.max_attempts {
                    return Err(Error::transport(format!(
                        "blob download kept failing at byte {written} of {}: {reason}",
                        desc.size
                    )));
                }
                tracing::info!(digest = %desc.digest, written, "blob download cut short; resuming");
                bp.emit(Event::Resumed {
                    digest: desc.digest.clone(),
                    offset: written,
                })
                .await;
            }
        }
        out.flush().await.map_err(local)?;
        out.into_inner().sync_all().await.map_err(local)?;
        let actual = hasher.finish();
        if actual != desc.digest {
            return Err(Error::digest_mismatch(format!(
                "blob digest mismatch: received bytes hash to {actual}"
            )));
        }
        Ok(())
    }

    /// Open a blob as a stream that verifies size and digest: reading past the end yields an
    /// `InvalidData` error instead of EOF when the bytes were wrong, so a consumer (the
    /// unpacker) never mistakes bad content for a complete layer. The stream does not resume
    /// by itself; use [`Client::pull_blob`] for a resumable download to a file.
    ///
    /// # Errors
    /// As the GET: refused, misbehaved, transport.
    pub async fn open_blob_stream(&self, repo: &Repo, desc: &Descriptor) -> Result<BlobStream> {
        let resp = self.get_blob(repo, desc, 0).await?;
        Ok(BlobStream {
            body: resp.into_body(),
            pending: Bytes::new(),
            hasher: Some(Digester::new(desc.digest.algorithm())),
            received: 0,
            desc: desc.clone(),
        })
    }
}

fn partial_path(sink: &Path) -> PathBuf {
    let mut name = sink
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    sink.with_file_name(name)
}

/// A blob body that checks its size and digest as it is read (see [`Client::open_blob_stream`]).
pub struct BlobStream {
    body: Incoming,
    pending: Bytes,
    hasher: Option<Digester>,
    received: u64,
    desc: Descriptor,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.desc.digest)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

fn invalid_data(err: Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, err)
}

impl AsyncRead for BlobStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            let Some(hasher) = this.hasher.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            match std::task::ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.received += data.len() as u64;
                        if this.received > this.desc.size {
                            this.hasher = None;
                            return Poll::Ready(Err(invalid_data(Error::misbehaved(format!(
                                "blob {} is longer than its {} bytes",
                                this.desc.digest, this.desc.size
                            )))));
                        }
                        hasher.update(&data);
                        this.pending = data;
                    }
                }
                Some(Err(e)) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        Error::transport(format!("blob download interrupted: {e}")),
                    )));
                }
                None => {
                    let hasher = this.hasher.take().map(Digester::finish);
                    if this.received != this.desc.size {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            Error::transport(format!(
                                "blob {} ended after {} of {} bytes",
                                this.desc.digest, this.received, this.desc.size
                            )),
                        )));
                    }
                    if hasher.as_ref() != Some(&this.desc.digest) {
                        return Poll::Ready(Err(invalid_data(Error::digest_mismatch(format!(
                            "blob digest mismatch: expected {}",
                            this.desc.digest
                        )))));
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_is_beside_the_sink() {
        assert_eq!(
            partial_path(Path::new("/a/b/sha256-x")),
            PathBuf::from("/a/b/sha256-x.partial")
        );
    }
}
