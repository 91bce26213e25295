//! Blob push: HEAD skip, cross-repo mount, chunked PATCH uploads with resume and restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hoist_oci::Digest;
use http::{Method, header};
use url::Url;

use crate::client::{BodySpec, Client, Req, header_str, retry_after};
use crate::progress::{BlobProgress, Event, Progress};
use crate::protocol::chunk::{
    ChunkLimits, content_range, next_chunk, parse_upload_range, shrink_after_413,
};
use crate::protocol::location::{display_url, resolve_location};
use crate::protocol::response::{Phase, Step, classify, classify_transport};
use crate::session::{Session, Status, limits_of};
use crate::source::{Feed, RemoteBlob};
use crate::state::{self, UploadState};
use crate::{Error, Repo, Result};

/// How often bytes in flight are reported during a PATCH.
const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(200);

/// A blob to push: a local file (already spooled, compressed) and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSource {
    /// The file holding exactly the blob's bytes.
    pub path: PathBuf,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
}

/// Per-push options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// A repository on the same registry that may already hold the blob: try to mount it.
    pub mount_from: Option<String>,
}

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// It was already there.
    Skipped,
    /// Mounted from another repository.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// What a push did, including the cost of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// How the blob got there.
    pub kind: PushKind,
    /// Body bytes put on the wire, re-sends included (`bytes_sent - size` is the fault cost).
    pub bytes_sent: u64,
    /// Times the upload continued from the server's `Range` after a fault.
    pub resumes: u32,
    /// Times a new session had to be opened and the blob started over.
    pub restarts: u32,
    /// The chunk size in use at the end (smaller than configured after a 413 or a cap).
    pub final_chunk_size: u64,
}

/// Where the bytes of a blob being pushed come from.
enum Bytes {
    /// A local file holding exactly the blob.
    File(PathBuf),
    /// Another registry, read per chunk and hashed on the way.
    Remote(Arc<Feed>),
}

/// A blob being pushed: what it must be, and where its bytes are.
struct Src {
    digest: Digest,
    size: u64,
    bytes: Bytes,
}

impl Src {
    fn body(&self, start: u64, end: u64, tap: Arc<AtomicU64>) -> BodySpec {
        match &self.bytes {
            Bytes::File(path) => BodySpec::File {
                path: path.clone(),
                start,
                end,
                tap,
            },
            Bytes::Remote(feed) => BodySpec::Remote {
                feed: feed.clone(),
                start,
                end,
                tap,
            },
        }
    }
}

/// The result of one PATCH.
enum PatchResult {
    Acked,
    Step(Step, Option<crate::Error>),
}

impl Client {
    /// Whether `repo` holds the blob (`HEAD`).
    ///
    /// # Errors
    /// Transport failures after retries, auth refusals, unexpected statuses.
    pub async fn blob_exists(&self, repo: &Repo, digest: &Digest) -> Result<bool> {
        let url = self.url(&repo.registry, &format!("{}/blobs/{digest}", repo.name))?;
        let scopes = [pull_scope(&repo.name)];
        let resp = self
            .execute_retrying(
                &Req::new(Method::HEAD, url),
                &repo.registry,
                &scopes,
                &[404, 301, 302, 303, 307, 308],
                "checking blob",
            )
            .await?;
        // Some registries answer a HEAD for a stored blob with a redirect to their storage.
        Ok(resp.status().is_success() || resp.status().is_redirection())
    }

    /// Mount `digest` from repository `from` into `repo` (same registry). `Ok(true)` when mounted;
    /// `Ok(false)` when the registry declined (the session it opened is deleted).
    ///
    /// # Errors
    /// As [`Client::push_blob`].
    pub async fn mount_blob(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<bool> {
        let scopes = push_scopes(repo, Some(from));
        match self
            .open_session(repo, &scopes, Some((digest, from)))
            .await?
        {
            None => Ok(true),
            Some(session) => {
                self.delete_session(repo, &scopes, &session.location).await;
                Ok(false)
            }
        }
    }

    /// Push one blob from a file. Skips it when present, mounts it when `opts.mount_from` has
    /// it, otherwise uploads it in chunks, resuming or restarting after faults. Blobs run
    /// concurrently up to the client's limit; chunks of one blob are sequential.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the file is not `source.size` bytes or does not
    /// hash to `source.digest`; registry refusals and misbehaviour; transport failures once
    /// retries are exhausted.
    pub async fn push_blob(
        &self,
        repo: &Repo,
        source: &BlobSource,
        opts: &PushOptions,
        progress: &Progress,
    ) -> Result<PushOutcome> {
        let src = Src {
            digest: source.digest.clone(),
            size: source.size,
            bytes: Bytes::File(source.path.clone()),
        };
        self.push_src(repo, &src, opts, progress).await
    }

    async fn push_src(
        &self,
        repo: &Repo,
        source: &Src,
        opts: &PushOptions,
        progress: &Progress,
    ) -> Result<PushOutcome> {
        let _permit = self
            .inner
            .blobs
            .acquire()
            .await
            .map_err(|_| Error::invalid("client is shutting down"))?;
        let mut bp = BlobProgress::new(progress, &source.digest);
        bp.emit(Event::BlobStarted {
            digest: source.digest.clone(),
            size: source.size,
        })
        .await;
        let result = self.push_inner(repo, source, opts, &mut bp).await;
        match &result {
            Ok(o) => {
                let digest = source.digest.clone();
                let ev = match o.kind {
                    PushKind::Skipped => Event::Skipped { digest },
                    PushKind::Mounted => Event::Mounted {
                        digest,
                        from: opts.mount_from.clone().unwrap_or_default(),
                    },
                    PushKind::Uploaded => Event::Done { digest },
                };
                bp.emit(ev).await;
            }
            Err(e) => {
                bp.emit(Event::Failed {
                    digest: source.digest.clone(),
                    message: e.to_string(),
                })
                .await;
            }
        }
        result.map_err(|e| e.with_digest(&source.digest))
    }

    /// Push one blob streamed from another registry: no local copy. Skips it when present and
    /// mounts it when `opts.mount_from` has it (same registry), otherwise uploads it in
    /// chunks, each PATCH body a ranged GET of the same window at the source. After a fault
    /// the source is re-opened at the destination's `Range`. Every byte is hashed the first
    /// time it passes; the upload is completed (`PUT ?digest=`) only when all of them hash to
    /// the blob's digest. Streamed pushes keep no state file (a later process cannot vouch
    /// for bytes it never saw), so they resume within a process only.
    ///
    /// # Errors
    /// [`crate::ErrorKind::DigestMismatch`] when the source's bytes do not hash to the digest;
    /// refusals and misbehaviour of either registry; transport failures once retries are
    /// exhausted.
    pub async fn push_remote_blob(
        &self,
        repo: &Repo,
        source: &RemoteBlob,
        opts: &PushOptions,
        progress: &Progress,
    ) -> Result<PushOutcome> {
        let src = Src {
            digest: source.digest().clone(),
            size: source.size(),
            bytes: Bytes::Remote(Arc::new(Feed::new(source.clone()))),
        };
        self.push_src(repo, &src, opts, progress).await
    }

    /// Push several blobs concurrently (up to the client's concurrency limit), returning the
    /// outcomes in input order. Every blob is attempted even when one fails; the first error
    /// (in input order) is returned.
    ///
    /// # Errors
    /// As [`Client::push_blob`].
    pub async fn push_blobs(
        &self,
        repo: &Repo,
        sources: &[BlobSource],
        opts: &PushOptions,
        progress: &Progress,
    ) -> Result<Vec<PushOutcome>> {
        let all = futures_util::future::join_all(
            sources
                .iter()
                .map(|s| self.push_blob(repo, s, opts, progress)),
        )
        .await;
        all.into_iter().collect()
    }

    async fn push_inner(
        &self,
        repo: &Repo,
        src: &Src,
        opts: &PushOptions,
        bp: &mut BlobProgress<'_>,
    ) -> Result<PushOutcome> {
        if let Bytes::File(path) = &src.bytes {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| Error::local(format!("blob source {}", path.display()), e))?;
            if meta.len() != src.size {
                return Err(Error::invalid(format!(
                    "blob source {} has {} bytes, expected {}",
                    path.display(),
                    meta.len(),
                    src.size
                )));
            }
        }
        let mut out = PushOutcome {
            kind: PushKind::Uploaded,
            bytes_sent: 0,
            resumes: 0,
            restarts: 0,
            final_chunk_size: self.cfg().chunk_size,
        };
        if self.blob_exists(repo, &src.digest).await? {
            out.kind = PushKind::Skipped;
            return Ok(out);
        }
        let scopes = push_scopes(repo, opts.mount_from.as_deref());
        // Only a file can vouch for bytes sent by an earlier process.
        let state_file = self
            .cfg()
            .state_dir
            .as_ref()
            .filter(|_| matches!(src.bytes, Bytes::File(_)))
            .map(|d| state::state_path(d, &repo.registry, &repo.name, &src.digest));

        // A session left by an earlier process, if it is still alive.
        let mut session = None;
        if let Some(sf) = &state_file
            && let Some(st) = state::load(sf, &repo.registry, &repo.name, &src.digest).await
        {
            if let Some(loc) = Url::parse(&st.location).ok().filter(|u| {
                u.host_str()
                    == self
                        .url(&repo.registry, "")
                        .ok()
                        .as_ref()
                        .and_then(|b| b.host_str())
            }) && let Ok(Status::Alive { location, offset }) = self
                .session_status(repo, &scopes, &loc, st.offset, true)
                .await
                && offset <= src.size
            {
                tracing::info!(digest = %src.digest, offset, "resuming upload left by an earlier run");
                bp.emit(Event::Resumed {
                    digest: src.digest.clone(),
                    offset,
                })
                .await;
                bp.at(offset);
                out.resumes += 1;
                session = Some(Session {
                    location,
                    offset,
                    limits: ChunkLimits::default(),
                });
            } else {
                state::remove(sf).await;
            }
        }
        let mut session = match session {
            Some(s) => s,
            None => {
                let mount = opts.mount_from.as_deref().map(|f| (&src.digest, f));
                match self.open_session(repo, &scopes, mount).await? {
                    None => {
                        out.kind = PushKind::Mounted;
                        return Ok(out);
                    }
                    Some(s) => s,
                }
            }
        };
        let result = self
            .upload(
                repo,
                src,
                &scopes,
                &mut session,
                state_file.as_deref(),
                bp,
                &mut out,
            )
            .await;
        match result {
            Ok(()) => {
                if let Some(sf) = &state_file {
                    state::remove(sf).await;
                }
                Ok(out)
            }
            Err(e) => {
                // Without a state dir nobody can resume this session: release it.
                if state_file.is_none() {
                    self.delete_session(repo, &scopes, &session.location).await;
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload(
        &self,
        repo: &Repo,
        src: &Src,
        scopes: &[String],
        session: &mut Session,
        state_file: Option<&std::path::Path>,
        bp: &mut BlobProgress<'_>,
        out: &mut PushOutcome,
    ) -> Result<()> {
        let policy = self.cfg().retry.clone();
        let mut chunk = session.limits.effective(self.cfg().chunk_size);
        let mut shrunk_once = false;
        let mut faults: u32 = 0;
        let mut digest_restarts = 0;
        // Faults end after `max_attempts` in a row, but a registry that acknowledges chunks and
        // then loses them would reset that count forever: bound the bytes a blob may cost.
        let budget = src
            .size
            .max(chunk)
            .saturating_mul(u64::from(policy.max_attempts) + 1);
        loop {
            // Send chunks until the server holds everything.
            while let Some((start, end)) = next_chunk(session.offset, src.size, chunk) {
                if out.bytes_sent > budget {
                    return Err(Error::misbehaved(format!(
                        "sent {} bytes for a {}-byte blob: the registry keeps losing what it \
                         acknowledged",
                        out.bytes_sent, src.size
                    ))
                    .with_url(display_url(&session.location)));
                }
                let result = self
                    .patch(repo, src, scopes, session, start, end, out, bp)
                    .await;
                let (step, err) = match result {
                    PatchResult::Acked => {
                        faults = 0;
                        chunk = session.limits.effective(chunk);
                        bp.at(session.offset);
                        if let Some(sf) = state_file {
                            let st = UploadState {
                                registry: repo.registry.clone(),
                                repository: repo.name.clone(),
                                digest: src.digest.clone(),
                                location: session.location.to_string(),
                                offset: session.offset,
                            };
                            if let Err(e) = state::save(sf, &st).await {
                                tracing::warn!(error = %e, "cannot write upload state file");
                            }
                        }
                        continue;
                    }
                    PatchResult::Step(step, err) => (step, err),
                };
                // A 413 is not a failure in a row: the chunk shrinks, down to a floor.
                if step != Step::Shrink {
                    faults += 1;
                }
                let fail = |e: Option<Error>| {
                    e.unwrap_or_else(|| Error::misbehaved("upload failed without a response"))
                };
                if faults >= policy.max_attempts {
                    let e = fail(err);
                    let note = format!("gave up after {faults} consecutive failures on this blob");
                    return Err(if e.is_body_too_large() {
                        e.with_note(&format!(
                            "{note}; hoist shrank its chunks to {chunk} bytes (set a smaller chunk size to start lower)"
                        ))
                    } else {
                        e.with_note(&note)
                    });
                }
                match step {
                    Step::Shrink => {
                        let Some(smaller) = shrink_after_413(chunk) else {
                            return Err(fail(err).with_note(&format!(
                                "hoist shrank its chunks to {chunk} bytes and was still refused; \
                                 the limit is not about body size"
                            )));
                        };
                        if !shrunk_once {
                            tracing::warn!(
                                from = chunk,
                                to = smaller,
                                "registry or proxy refused a {chunk}-byte chunk (413) without advertising a limit; \
                                 continuing with {smaller}-byte chunks"
                            );
                            shrunk_once = true;
                        }
                        bp.emit(Event::ChunkShrunk {
                            digest: src.digest.clone(),
                            from: chunk,
                            to: smaller,
                        })
                        .await;
                        // Keep it below any later-learned limit too.
                        session.limits.max =
                            Some(smaller.min(session.limits.max.unwrap_or(u64::MAX)));
                        chunk = smaller;
                    }
                    Step::Retry { after } => {
                        let delay = policy.delay(faults - 1, after);
                        bp.emit(Event::Retrying {
                            digest: src.digest.clone(),
                            reason: err
                                .as_ref()
                                .map_or_else(|| "transient failure".into(), |e| e.to_string()),
                            delay,
                        })
                        .await;
                        tokio::time::sleep(delay).await;
                    }
                    Step::Resume | Step::Restart => {}
                    Step::Done | Step::Reauth | Step::Fail => return Err(fail(err)),
                }
                // After any fault the server's Range is the truth.
                let status = if step == Step::Restart {
                    Status::Gone
                } else {
                    let after_cut = err.as_ref().is_some_and(Error::is_transport);
                    self.session_status(repo, scopes, &session.location, session.offset, after_cut)
                        .await?
                };
                match status {
                    Status::Alive { location, offset } if offset <= src.size => {
                        tracing::info!(digest = %src.digest, offset, "resuming upload at the server's offset");
                        session.location = location;
                        session.offset = offset;
                        out.resumes += 1;
                        bp.emit(Event::Resumed {
                            digest: src.digest.clone(),
                            offset,
                        })
                        .await;
                    }
                    Status::Alive { offset, .. } => {
                        return Err(Error::misbehaved(format!(
                            "registry claims {offset} bytes of a {}-byte blob",
                            src.size
                        ))
                        .with_url(display_url(&session.location)));
                    }
                    Status::Gone => {
                        tracing::info!(digest = %src.digest, "upload session lost; starting the blob over");
                        self.restart(repo, scopes, session, out, bp).await?;
                        chunk = session.limits.effective(chunk);
                    }
                }
            }
            out.final_chunk_size = chunk;
            // Streamed bytes must hash right before the destination is asked to complete them.
            if let Bytes::Remote(feed) = &src.bytes {
                feed.verdict()?;
            }
            // Close the session.
            match self.close(repo, src, scopes, session, bp).await {
                Ok(()) => return Ok(()),
                Err(CloseError::Restart) => {
                    faults += 1;
                    if faults >= policy.max_attempts {
                        return Err(Error::misbehaved("upload session lost while closing it"));
                    }
                    self.restart(repo, scopes, session, out, bp).await?;
                }
                Err(CloseError::DigestInvalid(e)) => {
                    // Either the file is not what the caller said, or the registry stored
                    // something else than was sent. Hash the file to know which.
                    // (A streamed source was verified before the PUT.)
                    if let Bytes::File(path) = &src.bytes {
                        let actual = hash_file(path, &src.digest).await?;
                        if actual != src.digest {
                            return Err(Error::invalid(format!(
                                "blob source {} hashes to {actual}, not the digest it was pushed as",
                                path.display()
                            )));
                        }
                    }
                    digest_restarts += 1;
                    if digest_restarts > 1 {
                        return Err(e);
                    }
                    tracing::warn!(digest = %src.digest, "registry computed a different digest; uploading the blob again");
                    self.restart(repo, scopes, session, out, bp).await?;
                }
                Err(CloseError::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn restart(
        &self,
        repo: &Repo,
        scopes: &[String],
        session: &mut Session,
        out: &mut PushOutcome,
        bp: &BlobProgress<'_>,
    ) -> Result<()> {
        // A registry that loses every session would otherwise be fed the blob forever.
        if out.restarts + 1 >= self.cfg().retry.max_attempts {
            return Err(Error::misbehaved(format!(
                "the registry lost the upload session {} times; giving up",
                out.restarts + 1
            ))
            .with_url(display_url(&session.location)));
        }
        self.delete_session(repo, scopes, &session.location).await;
        let fresh = self
            .open_session(repo, scopes, None)
            .await?
            .ok_or_else(|| Error::misbehaved("registry completed an upload that was never sent"))?;
        let limits = session.limits.merge(fresh.limits);
        *session = Session { limits, ..fresh };
        out.restarts += 1;
        bp.emit(Event::Resumed {
            digest: bp.digest().clone(),
            offset: 0,
        })
        .await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn patch(
        &self,
        repo: &Repo,
        src: &Src,
        scopes: &[String],
        session: &mut Session,
        start: u64,
        end: u64,
        out: &mut PushOutcome,
        bp: &mut BlobProgress<'_>,
    ) -> PatchResult {
        let tap = Arc::new(AtomicU64::new(0));
        let req = Req::new(Method::PATCH, session.location.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_RANGE, content_range(start, end))
            .body(src.body(start, end, tap.clone()));
        out.bytes_sent += end - start;
        // Report bytes as they go out, so a large chunk does not look stuck.
        let send = self.execute(&req, &repo.registry, scopes);
        tokio::pin!(send);
        let mut tick = tokio::time::interval(PROGRESS_TICK);
        let result = loop {
            tokio::select! {
                r = &mut send => break r,
                _ = tick.tick() => bp.at(start + tap.load(Ordering::Relaxed)),
            }
        };
        let resp = match result {
            Ok(r) => r,
            Err(e) if e.is_retryable_transport() => {
                return PatchResult::Step(classify_transport(Phase::Patch), Some(e));
            }
            Err(e) => return PatchResult::Step(Step::Fail, Some(e)),
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            let headers = resp.headers().clone();
            drop(resp);
            let location = header_str(&headers, "location")
                .and_then(|l| resolve_location(&session.location, l))
                .unwrap_or_else(|| session.location.clone());
            let offset = match header_str(&headers, "range").map(parse_upload_range) {
                None => end,
                Some(Some(r)) => r.next_offset(end > 0),
                Some(None) => {
                    return PatchResult::Step(
                        Step::Fail,
                        Some(
                            Error::misbehaved("PATCH response has an unparseable Range")
                                .with_url(display_url(&session.location)),
                        ),
                    );
                }
            };
            if offset <= start && end > start {
                // An acknowledgement that keeps nothing: a fault, so it cannot loop forever.
                return PatchResult::Step(
                    Step::Resume,
                    Some(
                        Error::misbehaved(format!(
                            "registry acknowledged bytes {start}-{} but holds only {offset}",
                            end - 1
                        ))
                        .with_url(display_url(&session.location)),
                    ),
                );
            }
            if offset > end || offset > src.size {
                return PatchResult::Step(
                    Step::Fail,
                    Some(
                        Error::misbehaved(format!(
                            "registry claims {offset} bytes after a PATCH ending at {end}"
                        ))
                        .with_url(display_url(&session.location)),
                    ),
                );
            }
            session.location = location;
            session.offset = offset;
            session.limits = session.limits.merge(limits_of(&headers));
            return PatchResult::Acked;
        }
        let ra = retry_after(resp.headers());
        let err = self
            .error_from(resp, &session.location, "uploading a chunk")
            .await;
        let step = classify(Phase::Patch, status, err.code(), ra);
        PatchResult::Step(step, Some(err))
    }

    async fn close(
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
                    bp.emit(retrying(src, &e, delay)).await;
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
                    bp.emit(retrying(src, &err, delay)).await;
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

/// The event announcing that completing `src`'s upload is retried after `delay`.
fn retrying(src: &Src, err: &Error, delay: std::time::Duration) -> Event {
    Event::Retrying {
        digest: src.digest.clone(),
        reason: err.to_string(),
        delay,
    }
}

enum CloseError {
    Restart,
    DigestInvalid(Error),
    Fatal(Error),
}

impl From<Error> for CloseError {
    fn from(e: Error) -> Self {
        CloseError::Fatal(e)
    }
}

pub(crate) fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

fn push_scopes(repo: &Repo, mount_from: Option<&str>) -> Vec<String> {
    let mut s = vec![format!("repository:{}:pull,push", repo.name)];
    if let Some(f) = mount_from {
        s.push(pull_scope(f));
    }
    s
}

/// Hash a file with the algorithm of `like`, in bounded reads.
async fn hash_file(path: &std::path::Path, like: &Digest) -> Result<Digest> {
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
