//! Blob push: HEAD skip, cross-repo mount, chunked PATCH uploads with resume and restart.
//!
//! This module is the push as a caller sees it: the public types ([`BlobSource`],
//! [`PushOptions`], [`PushOutcome`]), the per-blob flow (skip a blob the registry holds, mount
//! it from another repository, pick up a session an earlier process left in the state
//! directory, else open one; a mount the registry refuses falls back to an upload) and the
//! events that frame it. Picking up an earlier process's session is `resume`; sending the
//! bytes through an open session is `chunks` (the PATCH loop, faults, the 413 shrink,
//! restarts, the caller's stop); completing it is `close` (the `PUT ?digest=`).
//!
//! A caller that wants to stop a push so that it can be resumed sets
//! [`PushOptions::stop_when`] rather than dropping the future: the request in flight is
//! finished and the state file written before the push ends (see `crate::stop`).

mod chunks;
mod close;
mod prefix;
mod resume;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hoist_oci::{Algorithm, Digest};
use http::Method;

use crate::client::{BodySpec, Client, Req};
use crate::progress::{BlobProgress, Event, Progress};
use crate::session::Mount;
use crate::source::{Feed, RemoteBlob};
use crate::state;
use crate::stop::StopHook;
use crate::{Error, Repo, Result};

/// Redirects followed for one blob HEAD (registries redirect to storage, once).
const MAX_HEAD_REDIRECTS: usize = 5;

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

impl BlobSource {
    /// The blob a file holds: its sha256 digest and size, hashed by streaming the file
    /// through a bounded buffer (never the whole file in memory), as a push checks a file
    /// the registry refused.
    ///
    /// # Errors
    /// [`crate::ErrorKind::LocalIo`] when the file cannot be opened or read (a directory
    /// cannot be read).
    pub async fn from_file(path: impl Into<PathBuf>) -> Result<BlobSource> {
        let path = path.into();
        let (digest, size) = close::hash_file(&path, Algorithm::Sha256).await?;
        Ok(BlobSource { path, digest, size })
    }
}

/// Per-push options. More may come, so this is built from [`PushOptions::new`] (or
/// `default()`) and its setters, not spelled as a struct literal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushOptions {
    /// A repository on the same registry that may already hold the blob: try to mount it.
    pub mount_from: Option<String>,
    /// The caller's request to stop ([`PushOptions::stop_when`]).
    stop: StopHook,
}

impl PushOptions {
    /// No mount: skip the blob when present, else upload it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Try to mount the blob from `repository` (a name on the same registry, `team/base`)
    /// before uploading it.
    #[must_use]
    pub fn mount_from(mut self, repository: impl Into<String>) -> Self {
        self.mount_from = Some(repository.into());
        self
    }

    /// Stop the push once `stop` returns true, at the next point where stopping keeps what
    /// the registry has: before the blob's upload begins (before a session is opened, resumed
    /// or mounted), before each PATCH, instead of retrying a failed one, between the frames
    /// of a streamed blob's prefix read again from its source (see
    /// [`Client::push_remote_blob`]), and before the `PUT` that completes the upload. A
    /// request in flight is finished, never cut, so a chunk being sent takes as long as it
    /// takes (a chunk is at most the chunk size; the client's timeout bounds a chunk that
    /// stops moving). The push then fails with an error for which [`Error::is_stopped`]
    /// holds, after the state file (with
    /// [`ClientBuilder::state_dir`](crate::ClientBuilder::state_dir)) names the session and
    /// its offset, so a later push continues there; without one the session is deleted.
    ///
    /// `stop` is called often (before every request) and must be cheap: reading a flag. Two
    /// options compare equal only when they hold the same closure (clones of one set).
    ///
    /// Dropping the push's future instead stops at once, cutting a PATCH mid-body: a
    /// registry that kept the partial body without updating its session (distribution 2.8
    /// does this) then refuses the session, and the next push starts that blob over.
    #[must_use]
    pub fn stop_when(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = StopHook::new(stop);
        self
    }
}

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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

impl Client {
    /// Whether `repo` holds the blob (`HEAD`).
    ///
    /// A 200 means it is there and a 404 that it is not. A redirect (distribution sends a
    /// HEAD for a stored blob to its storage with a 307) proves nothing by itself, as a
    /// registry or proxy may send any path elsewhere: it is followed, as Go's HTTP client does
    /// for docker and skopeo, and only a 2xx at its end says the blob is there. The storage
    /// refusing the HEAD (S3 answers 403 for a missing key, or for a URL signed for GET) counts
    /// as absent: the blob is uploaded, which is never wrong, only slower.
    ///
    /// # Errors
    /// Transport failures after retries, auth refusals by the registry, unexpected statuses,
    /// more than a few redirects.
    pub async fn blob_exists(&self, repo: &Repo, digest: &Digest) -> Result<bool> {
        let mut url = self.url(repo.registry(), &format!("{}/blobs/{digest}", repo.name()))?;
        let scopes = [pull_scope(repo.name())];
        let redirects = [301, 302, 303, 307, 308];
        let mut pass: Vec<u16> = redirects.iter().copied().chain([404]).collect();
        for _ in 0..=MAX_HEAD_REDIRECTS {
            let resp = self
                .execute_retrying(
                    &Req::new(Method::HEAD, url.clone()),
                    repo.registry(),
                    &scopes,
                    &pass,
                    "checking blob",
                )
                .await?;
            let status = resp.status();
            if status.is_success() {
                return Ok(true);
            }
            if !redirects.contains(&status.as_u16()) {
                return Ok(false);
            }
            url = crate::client::header_str(resp.headers(), "location")
                .and_then(|l| crate::protocol::location::resolve_location(&url, l))
                .ok_or_else(|| {
                    Error::misbehaved("blob HEAD redirected without a usable Location")
                        .with_url(crate::protocol::location::display_url(&url))
                })?;
            // Past the registry, a refusal is the storage's, not about credentials.
            pass.extend((400..500).filter(|s| !matches!(s, 408 | 429)));
        }
        Err(Error::misbehaved("too many blob HEAD redirects")
            .with_url(crate::protocol::location::display_url(&url)))
    }

    /// Mount `digest` from repository `from` into `repo` (same registry). `Ok(true)` when mounted;
    /// `Ok(false)` when the registry declined (the session it opened instead is deleted) or
    /// refused the mount with a 4xx (distribution answers 401 `insufficient_scope` when the
    /// credentials cannot pull `from`, 404 when `from` has no such blob): the blob can still be
    /// uploaded.
    ///
    /// # Errors
    /// Transport failures and server errors (5xx) once retries are exhausted; a registry that
    /// answers neither a mount, a session nor a refusal.
    pub async fn mount_blob(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<bool> {
        let scopes = push_scopes(repo, Some(from));
        match self.try_mount(repo, &scopes, digest, from).await? {
            Mount::Mounted => Ok(true),
            Mount::Opened(session) => {
                self.delete_session(repo, &scopes, &session.location).await;
                Ok(false)
            }
            Mount::Refused(e) => {
                tracing::info!(%digest, from, error = %e, "registry refused the mount");
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
    /// retries are exhausted; [`crate::ErrorKind::Stopped`] when `opts.stop_when` asked it
    /// to stop.
    ///
    /// # Cancel safety
    /// Dropping the future stops at once, in the middle of a PATCH if one is under way. The
    /// state file then names the last acknowledged chunk, but the registry may have stored
    /// part of the cut one: distribution 2.8 does, and refuses the session afterwards, so the
    /// next push starts the blob over (and says so with [`Event::Restarted`]). To stop so that
    /// the next push continues, use [`PushOptions::stop_when`].
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
        // A blob that waited for its turn while a stop was asked never starts.
        if opts.stop.asked() {
            return Err(
                Error::stopped("before the blob's upload began").with_digest(&source.digest)
            );
        }
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
            // A stop is no failure: `Event::Stopped` said where it stands.
            Err(e) if e.is_stopped() => {}
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
    /// the blob's digest.
    ///
    /// With a [`ClientBuilder::state_dir`](crate::ClientBuilder::state_dir), a streamed push
    /// keeps a state file as a push from a file does, and a later process continues the
    /// session at the destination's `Range`. The bytes before it, which that process never
    /// saw, are read again from the source (a ranged GET from byte 0, hashed and dropped,
    /// never sent again; [`Event::VerifyingPrefix`]) before the upload goes on, so the digest
    /// still covers every byte. A source whose prefix does not hash right fails as any lying
    /// source does, and its session is given up rather than kept.
    ///
    /// # Errors
    /// A digest mismatch ([`crate::Error::is_digest_mismatch`]) when the source's bytes do not
    /// hash to the digest;
    /// refusals and misbehaviour of either registry; transport failures once retries are
    /// exhausted; [`crate::ErrorKind::Stopped`] when `opts.stop_when` asked it to stop (also
    /// while the prefix is read).
    ///
    /// # Cancel safety
    /// As [`Client::push_blob`]: use [`PushOptions::stop_when`] to stop so that a later push
    /// continues.
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
        // Push scopes only: the source of a mount is asked for by the mount alone, so a token
        // service refusing it (per-repository credentials) cannot fail the upload too.
        let scopes = push_scopes(repo, None);
        // A streamed source resumed from here is read again up to the registry's offset and
        // hashed (`prefix`), so it can vouch for an earlier process's bytes as a file can.
        let state_file = self
            .cfg()
            .state_dir
            .as_ref()
            .map(|d| state::state_path(d, repo.registry(), repo.name(), &src.digest));

        // Stopping here keeps everything: no session was opened, an earlier run's is untouched.
        if opts.stop.asked() {
            return Err(Error::stopped("before the blob's upload began"));
        }
        // A session left by an earlier process, if the registry still knows it.
        let session = match &state_file {
            Some(sf) => self.resume_left(repo, src, &scopes, sf, bp, &mut out).await,
            None => None,
        };
        let mut session = match session {
            Some(s) => s,
            None => match opts.mount_from.as_deref() {
                Some(from) => {
                    let mount_scopes = push_scopes(repo, Some(from));
                    match self
                        .try_mount(repo, &mount_scopes, &src.digest, from)
                        .await?
                    {
                        Mount::Mounted => {
                            out.kind = PushKind::Mounted;
                            return Ok(out);
                        }
                        Mount::Opened(s) => s,
                        Mount::Refused(e) => {
                            // As docker and skopeo: a refused mount is "not mounted".
                            tracing::info!(digest = %src.digest, from, error = %e, "registry refused the mount; uploading the blob");
                            self.open_session(repo, &scopes).await?
                        }
                    }
                }
                None => self.open_session(repo, &scopes).await?,
            },
        };
        let result = self
            .upload(
                repo,
                src,
                &scopes,
                &mut session,
                state_file.as_deref(),
                &opts.stop,
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
                // Without a state dir nobody can resume this session: release it. Nor is one
                // kept whose bytes did not hash to the digest (a source that lied): nobody
                // can tell which of them are wrong.
                let unsound = e.is_digest_mismatch();
                if unsound && let Some(sf) = &state_file {
                    state::remove(sf).await;
                }
                if state_file.is_none() || unsound {
                    self.delete_session(repo, &scopes, &session.location).await;
                }
                Err(e)
            }
        }
    }
}

pub(crate) fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

fn push_scopes(repo: &Repo, mount_from: Option<&str>) -> Vec<String> {
    let mut s = vec![format!("repository:{}:pull,push", repo.name())];
    if let Some(f) = mount_from {
        s.push(pull_scope(f));
    }
    s
}
