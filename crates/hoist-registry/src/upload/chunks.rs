//! Sending a blob through an open upload session: PATCH chunk after chunk until the server
//! holds every byte, then the `PUT` that completes it (`close`).
//!
//! The server's `Range` is the truth: after any fault (a cut connection, a 5xx, a 416, an
//! acknowledgement that keeps nothing) the session is asked where it stands and the upload
//! continues there; a lost session is restarted from byte 0. An unexplained 413 is not a
//! fault in a row but halves the chunk (down to a floor) and continues. Faults in a row are
//! bounded by the retry policy, and the bytes one blob may cost by a budget, so a registry
//! that acknowledges and then loses chunks cannot be fed forever. Acknowledged progress goes
//! to the state file, when there is one, after every chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, header};

use super::close::{CloseError, hash_file};
use super::prefix::CatchUp;
use super::{Bytes, PushOutcome, Src};
use crate::client::{Client, Req, header_str, retry_after};
use crate::progress::{BlobProgress, Event};
use crate::protocol::chunk::{content_range, next_chunk, parse_upload_range, shrink_after_413};
use crate::protocol::location::{display_url, resolve_location};
use crate::protocol::response::{Phase, Step, classify, classify_transport};
use crate::session::{Session, Status, limits_of};
use crate::state::{self, UploadState};
use crate::stop::StopHook;
use crate::{Error, Repo, Result};

/// How often bytes in flight are reported during a PATCH.
const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(200);

/// The result of one PATCH.
enum PatchResult {
    Acked,
    Step(Step, Option<crate::Error>),
}

impl Client {
    /// Send `src` through `session` until the server holds every byte, then complete the
    /// upload: resuming, restarting and shrinking chunks as faults require, and counting each
    /// in `out`. The state file, when there is one, follows every acknowledged chunk.
    ///
    /// `stop` is asked before each PATCH, after a failed one and before the completing `PUT`;
    /// once it says so the state file is brought up to date and the upload ends with a stop
    /// (see [`super::PushOptions::stop_when`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn upload(
        &self,
        repo: &Repo,
        src: &Src,
        scopes: &[String],
        session: &mut Session,
        state_file: Option<&std::path::Path>,
        stop: &StopHook,
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
                // Bytes before `start` this process never saw (an earlier run's session) are
                // read from a streamed source and hashed first. Stop is asked after that
                // read, too: one asked while its last frame came must not let a PATCH go out.
                if stop.asked()
                    || matches!(self.catch_up(src, start, stop, bp).await?, CatchUp::Stopped)
                    || stop.asked()
                {
                    return Err(stopped(repo, src, session, state_file, bp, None).await);
                }
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
                        remember(repo, src, session, state_file).await;
                        continue;
                    }
                    PatchResult::Step(step, err) => (step, err),
                };
                // Asked to stop: no retry, no new request. The state file names the session
                // and what it acknowledged before this PATCH (the server's Range decides on the
                // next run); a failure that is final is reported as such, not as a stop.
                if stop.asked() && !matches!(step, Step::Done | Step::Reauth | Step::Fail) {
                    return Err(stopped(repo, src, session, state_file, bp, err.as_ref()).await);
                }
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
                            attempt: faults + 1,
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
                        let why = "the registry no longer knows the upload session";
                        self.restart(repo, scopes, session, out, bp, why).await?;
                        chunk = session.limits.effective(chunk);
                    }
                }
            }
            out.final_chunk_size = chunk;
            // An earlier run may have sent every byte: a streamed source is still read whole.
            if matches!(
                self.catch_up(src, src.size, stop, bp).await?,
                CatchUp::Stopped
            ) {
                return Err(stopped(repo, src, session, state_file, bp, None).await);
            }
            // Streamed bytes must hash right before the destination is asked to complete them.
            if let Bytes::Remote(feed) = &src.bytes {
                feed.verdict()?;
            }
            // Every byte is there: a later push only has to complete the session.
            if stop.asked() {
                return Err(stopped(repo, src, session, state_file, bp, None).await);
            }
            // Close the session.
            match self.close(repo, src, scopes, session, bp).await {
                Ok(()) => return Ok(()),
                Err(CloseError::Restart) => {
                    faults += 1;
                    if faults >= policy.max_attempts {
                        return Err(Error::misbehaved("upload session lost while closing it"));
                    }
                    let why = "the upload session was gone when completing it";
                    self.restart(repo, scopes, session, out, bp, why).await?;
                }
                Err(CloseError::DigestInvalid(e)) => {
                    // Either the file is not what the caller said, or the registry stored
                    // something else than was sent. Hash the file to know which.
                    // (A streamed source was verified before the PUT.)
                    if let Bytes::File(path) = &src.bytes {
                        let (actual, _) = hash_file(path, src.digest.algorithm()).await?;
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
                    let why = "the registry computed a different digest for what it received";
                    self.restart(repo, scopes, session, out, bp, why).await?;
                }
                Err(CloseError::Fatal(e)) => return Err(e),
            }
        }
    }

    /// Give up a lost session and open a fresh one (keeping the chunk limits learned so far):
    /// the blob starts over from byte 0, and the caller is told `why` (it costs every byte
    /// the session held).
    async fn restart(
        &self,
        repo: &Repo,
        scopes: &[String],
        session: &mut Session,
        out: &mut PushOutcome,
        bp: &BlobProgress<'_>,
        why: &str,
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
        let fresh = self.open_session(repo, scopes).await?;
        tracing::warn!(digest = %bp.digest(), lost = session.offset, "{why}; starting the blob over at byte 0");
        bp.emit(Event::Restarted {
            digest: bp.digest().clone(),
            lost: session.offset,
            reason: why.to_string(),
        })
        .await;
        let limits = session.limits.merge(fresh.limits);
        *session = Session { limits, ..fresh };
        out.restarts += 1;
        Ok(())
    }

    /// One PATCH of bytes `start..end`, reporting them to `bp` as they go out. An
    /// acknowledgement moves `session` to the server's offset and newest `Location`; anything
    /// else is the [`Step`] to take, with the error behind it.
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
        let send = self.execute(&req, repo.registry(), scopes);
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
                // `0-0` is one byte only after a PATCH of byte 0 alone.
                Some(Some(r)) => r.next_offset(end == 1),
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
}

/// Bring the state file, when there is one, up to `session`: its newest `Location` (which
/// distribution's `_state` token ties to the offset) and what it acknowledged.
async fn remember(repo: &Repo, src: &Src, session: &Session, state_file: Option<&std::path::Path>) {
    let Some(sf) = state_file else {
        return;
    };
    let st = UploadState {
        registry: repo.registry().to_owned(),
        repository: repo.name().to_owned(),
        digest: src.digest.clone(),
        location: session.location.to_string(),
        offset: session.offset,
    };
    if let Err(e) = state::save(sf, &st).await {
        tracing::warn!(error = %e, "cannot write upload state file");
    }
}

/// The caller asked the upload to stop: the state file names the session as it stands, the
/// caller hears where (`Event::Stopped`), and the error says so. `failed` is what went wrong
/// with a PATCH the stop then kept from being retried.
async fn stopped(
    repo: &Repo,
    src: &Src,
    session: &Session,
    state_file: Option<&std::path::Path>,
    bp: &BlobProgress<'_>,
    failed: Option<&Error>,
) -> Error {
    remember(repo, src, session, state_file).await;
    tracing::info!(digest = %src.digest, offset = session.offset, "upload stopped on request");
    bp.emit(Event::Stopped {
        digest: src.digest.clone(),
        offset: session.offset,
    })
    .await;
    let mut message = format!(
        "the registry holds {} of the blob's {} bytes",
        session.offset, src.size
    );
    message.push_str(match state_file {
        Some(_) => "; a later push continues there",
        None => "; a later push starts the blob over (no state is kept for it)",
    });
    if let Some(e) = failed {
        message.push_str(&format!("; the last chunk failed and was not retried: {e}"));
    }
    // No URL: the session's (with its state token) says nothing to whoever stopped it.
    Error::stopped(message)
}
