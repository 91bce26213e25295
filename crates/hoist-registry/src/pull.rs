//! Blob pull: streamed to a file with digest verification and `Range` resume, or as a
//! verifying `AsyncRead`.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hoist_oci::{Descriptor, Digester};
use http::{Method, Response, header};
use http_body::Body;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, ReadBuf};

use crate::client::{Client, Req, header_str, retry_after};
use crate::progress::{BlobProgress, Event, Progress};
use crate::protocol::location::{display_url, resolve_location};
use crate::protocol::response::{Phase, Step, classify};
use crate::upload::pull_scope;
use crate::{Error, Repo, Result};

mod landing;
use landing::Landing;

/// Redirects followed for one blob GET (registries redirect to storage, once).
const MAX_REDIRECTS: usize = 5;

/// What a broken connection must have delivered to count as having moved a download on (the
/// rest of the blob, when less is left). Only then does the count of breaks in a row start
/// over: a link that drops now and then keeps going, while a server that sends a byte per
/// connection and closes runs out of attempts instead of being asked once per byte.
const MIN_MOVE: u64 = 16 * 1024;

/// Whether a connection that broke with the download at `to`, having started at `from`,
/// moved a blob of `size` bytes on (see [`MIN_MOVE`]).
pub(crate) fn moved_on(from: u64, to: u64, size: u64) -> bool {
    to > from && to - from >= MIN_MOVE.min(size.saturating_sub(from))
}

impl Client {
    /// GET the blob (from byte `from`), following redirects to storage; retries transient
    /// statuses. Returns a 200 or 206 response.
    async fn get_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        from: u64,
    ) -> Result<Response<Incoming>> {
        self.get_blob_range(repo, desc, from, None).await
    }

    /// [`Client::get_blob`] for a download into a file, on a connection that reads in larger
    /// pieces ([`Req::download`]).
    async fn get_blob_download(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        from: u64,
    ) -> Result<Response<Incoming>> {
        self.get_blob_on(repo, desc, from, None, true).await
    }

    /// GET bytes `[from, to)` of the blob (`to` `None`: to its end), following redirects to
    /// storage; retries transient statuses. Returns a 200 (the server ignored `Range`: the
    /// whole blob) or a 206 response.
    pub(crate) async fn get_blob_range(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        from: u64,
        to: Option<u64>,
    ) -> Result<Response<Incoming>> {
        self.get_blob_on(repo, desc, from, to, false).await
    }

    async fn get_blob_on(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        from: u64,
        to: Option<u64>,
        download: bool,
    ) -> Result<Response<Incoming>> {
        let scopes = [pull_scope(repo.name())];
        let mut url = self.url(
            repo.registry(),
            &format!("{}/blobs/{}", repo.name(), desc.digest),
        )?;
        let policy = self.cfg().retry.clone();
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            let mut req = Req::new(Method::GET, url.clone());
            if download {
                req = req.download();
            }
            match to {
                Some(to) if to > from => {
                    req = req.header(header::RANGE, format!("bytes={from}-{}", to - 1));
                }
                _ if from > 0 => {
                    req = req.header(header::RANGE, format!("bytes={from}-"));
                }
                _ => {}
            }
            attempt += 1;
            let resp = match self.execute(&req, repo.registry(), &scopes).await {
                Ok(r) => r,
                Err(e) if e.is_retryable_transport() && attempt < policy.max_attempts => {
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

    /// Download a blob to `sink`, verifying its digest and size. Bytes go to a temp file of this
    /// call's own beside `sink` (`.NAME.partial-XXXXXX`) and are renamed into place only when
    /// verified; on any failure, or when the future is dropped, the temp file is deleted. Two
    /// calls for the same sink never share a file. A connection that ends early is resumed with
    /// `Range: bytes=N-` from the bytes already written (a server ignoring `Range` restarts the
    /// file).
    ///
    /// # Errors
    /// Invalid input, before any request, when `sink` is empty or a directory; local I/O,
    /// also before any request, when its directory does not exist. Misbehaved on a digest or
    /// size mismatch; transport after retries; local I/O.
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
        let result = match partial_file(sink) {
            Ok(partial) => match self.pull_into(repo, desc, &partial, &mut bp).await {
                Ok(()) => partial.persist(sink).map(drop).map_err(|e| {
                    Error::local(format!("renaming into {}", sink.display()), e.error)
                }),
                // Dropping `partial` deletes it.
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
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
        partial: &tempfile::NamedTempFile,
        bp: &mut BlobProgress<'_>,
    ) -> Result<()> {
        let local = |e| Error::local(format!("writing {}", partial.path().display()), e);
        let mut out = Landing::new(partial.as_file().try_clone().map_err(local)?);
        let mut hasher = Digester::new(desc.digest.algorithm());
        let mut written: u64 = 0;
        let policy = self.cfg().retry.clone();
        let mut short_reads = 0;
        let timeout = self.cfg().timeout;
        // An empty blob needs no request: its digest is checked below like any other.
        while written < desc.size {
            let attempt_from = written;
            let resp = self.get_blob_download(repo, desc, written).await?;
            let status = resp.status().as_u16();
            if status == 200 && written > 0 {
                // The server ignored Range: start the file over.
                out.restart().map_err(local)?;
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
                out.write(&data).map_err(local)?;
                written += data.len() as u64;
                bp.at(written);
            }
            if written < desc.size {
                // Cuts in a row without progress end the download; one that moved on does not
                // count against a long download over a link that drops now and then.
                if moved_on(attempt_from, written, desc.size) {
                    short_reads = 0;
                }
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
        out.finish().await.map_err(local)?;
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
    /// unpacker) never mistakes bad content for a complete layer. A connection that breaks or
    /// ends early is resumed transparently with `Range: bytes=N-` (up to the retry policy's
    /// attempts); the consumer sees one continuous stream.
    ///
    /// # Errors
    /// As the GET: refused, misbehaved, transport.
    pub async fn open_blob_stream(&self, repo: &Repo, desc: &Descriptor) -> Result<BlobStream> {
        let resp = self.get_blob(repo, desc, 0).await?;
        Ok(BlobStream {
            body: Some(resp.into_body()),
            reconnect: None,
            skip: 0,
            pending: Bytes::new(),
            hasher: Some(Digester::new(desc.digest.algorithm())),
            received: 0,
            breaks: 0,
            broke_at: 0,
            failed: false,
            idle: None,
            desc: desc.clone(),
            client: self.clone(),
            repo: repo.clone(),
        })
    }
}

/// A temp file for one download into `sink`, beside it (so the rename stays on one filesystem),
/// named after it so a leftover says what it was, and deleted when dropped.
fn partial_file(sink: &Path) -> Result<tempfile::NamedTempFile> {
    check_sink(sink)?;
    let dir = match sink.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(sink.file_name().unwrap_or_default());
    prefix.push(".partial-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Error::local(format!("creating a file in {}", dir.display()), e))
}

/// A sink the verified blob can be renamed onto, checked before anything is downloaded: a
/// path that names a file (not empty, not ending in `..`) and is not a directory. A missing
/// parent directory fails when the temp file is made beside it, also before any download.
fn check_sink(sink: &Path) -> Result<()> {
    if sink.file_name().is_none() {
        return Err(Error::invalid(format!(
            "cannot pull a blob into {sink:?}: not a file path"
        )));
    }
    match std::fs::symlink_metadata(sink) {
        Ok(meta) if meta.is_dir() => Err(Error::invalid(format!(
            "cannot pull a blob into {}: it is a directory",
            sink.display()
        ))),
        _ => Ok(()),
    }
}

type Reconnect = Pin<Box<dyn std::future::Future<Output = Result<Response<Incoming>>> + Send>>;

/// A blob body that checks its size and digest as it is read and resumes a broken connection
/// (see [`Client::open_blob_stream`]).
pub struct BlobStream {
    body: Option<Incoming>,
    reconnect: Option<Reconnect>,
    /// Bytes to drop from a resumed response that ignored `Range` and started over.
    skip: u64,
    pending: Bytes,
    hasher: Option<Digester>,
    received: u64,
    /// Breaks in a row without progress; reset when a connection moved the download on
    /// ([`moved_on`]).
    breaks: u32,
    /// `received` at the last break.
    broke_at: u64,
    /// An error was returned: every later read returns one too, never a clean EOF.
    failed: bool,
    /// Armed while the body has no data; firing counts as a broken connection.
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    desc: Descriptor,
    client: Client,
    repo: Repo,
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

/// The crate's error back from a failed read of a [`BlobStream`], prefixed with `what` was
/// being read: a wrong digest stays the registry's fault, a broken connection the network's.
pub(crate) fn stream_error(err: std::io::Error, what: &str) -> Error {
    let kind = err.kind();
    match err.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(ours)) => ours.while_doing(what),
        Some(Err(other)) => Error::transport(format!("{what}: {other}")),
        None => Error::transport(format!("{what}: {kind}")),
    }
}

impl BlobStream {
    /// The connection broke or ended early: schedule a ranged GET, or give up.
    fn broken(&mut self, why: String) -> Option<std::io::Error> {
        self.body = None;
        if moved_on(self.broke_at, self.received, self.desc.size) {
            self.breaks = 0;
        }
        self.broke_at = self.received;
        self.breaks += 1;
        if self.breaks >= self.client.cfg().retry.max_attempts {
            self.hasher = None;
            return Some(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                Error::transport(format!(
                    "blob {} kept breaking at byte {} of {}: {why}",
                    self.desc.digest, self.received, self.desc.size
                )),
            ));
        }
        tracing::info!(digest = %self.desc.digest, at = self.received, "blob stream broke; resuming");
        let (client, repo, desc, from) = (
            self.client.clone(),
            self.repo.clone(),
            self.desc.clone(),
            self.received,
        );
        self.reconnect = Some(Box::pin(async move {
            client.get_blob(&repo, &desc, from).await
        }));
        None
    }
}

impl AsyncRead for BlobStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(Err(invalid_data(Error::misbehaved(format!(
                "blob {} failed earlier; its stream has no more bytes to give",
                this.desc.digest
            )))));
        }
        let polled = this.poll_stream(cx, buf);
        if matches!(polled, Poll::Ready(Err(_))) {
            this.failed = true;
        }
        polled
    }
}

impl BlobStream {
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.hasher.is_none() {
                return Poll::Ready(Ok(()));
            }
            if let Some(fut) = this.reconnect.as_mut() {
                let resp = std::task::ready!(fut.as_mut().poll(cx));
                this.reconnect = None;
                let resp =
                    resp.map_err(|e| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e))?;
                if resp.status().as_u16() == 200 {
                    this.skip = this.received;
                } else {
                    let start = header_str(resp.headers(), "content-range")
                        .and_then(|v| v.trim().strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    if start != Some(this.received) {
                        this.hasher = None;
                        return Poll::Ready(Err(invalid_data(Error::misbehaved(format!(
                            "asked for the blob from byte {}, got a range starting at {start:?}",
                            this.received
                        )))));
                    }
                }
                this.body = Some(resp.into_body());
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let polled = match Pin::new(body).poll_frame(cx) {
                Poll::Ready(frame) => {
                    this.idle = None;
                    frame
                }
                Poll::Pending => {
                    // A body that stops sending would otherwise be waited on forever.
                    let timeout = this.client.cfg().timeout;
                    let idle = this
                        .idle
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if idle.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.idle = None;
                    if let Some(err) = this.broken(format!("no data for {timeout:?}")) {
                        return Poll::Ready(Err(err));
                    }
                    continue;
                }
            };
            match polled {
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    if this.skip > 0 {
                        let k = this.skip.min(data.len() as u64) as usize;
                        this.skip -= k as u64;
                        let _ = data.split_to(k);
                    }
                    this.received += data.len() as u64;
                    if this.received > this.desc.size {
                        this.hasher = None;
                        return Poll::Ready(Err(invalid_data(Error::misbehaved(format!(
                            "blob {} is longer than its {} bytes",
                            this.desc.digest, this.desc.size
                        )))));
                    }
                    if let Some(h) = this.hasher.as_mut() {
                        h.update(&data);
                    }
                    this.pending = data;
                }
                Some(Err(e)) => {
                    if let Some(err) = this.broken(e.to_string()) {
                        return Poll::Ready(Err(err));
                    }
                }
                None if this.received < this.desc.size => {
                    if let Some(err) = this.broken("connection closed early".into()) {
                        return Poll::Ready(Err(err));
                    }
                }
                None => {
                    let digest = this.hasher.take().map(Digester::finish);
                    if digest.as_ref() != Some(&this.desc.digest) {
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
    fn a_break_moves_a_download_on_only_after_enough_bytes() {
        let size = 1 << 30;
        assert!(!moved_on(0, 1, size), "a byte is not a move");
        assert!(!moved_on(100, 100 + MIN_MOVE - 1, size));
        assert!(moved_on(100, 100 + MIN_MOVE, size));
        // Near the end, the rest of the blob is enough.
        assert!(moved_on(size - 10, size, size));
        assert!(!moved_on(size - 10, size - 1, size));
        // A start past the size (a lying server) never counts.
        assert!(!moved_on(size + 5, size + 4, size));
    }

    #[test]
    fn partials_are_beside_the_sink_and_never_shared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = dir.path().join("sha256-x");
        let a = partial_file(&sink).expect("first");
        let b = partial_file(&sink).expect("second");
        assert_ne!(a.path(), b.path());
        for p in [a.path(), b.path()] {
            assert_eq!(p.parent(), Some(dir.path()));
            let name = p.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert!(name.starts_with(".sha256-x.partial-"), "{name}");
        }
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        drop((a, b));
        assert!(
            !pa.exists() && !pb.exists(),
            "dropped temp files are deleted"
        );
    }
}
