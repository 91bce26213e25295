//! Upload sessions: opening one (or a mount), asking where one stands, releasing one.
//!
//! A mount the registry refuses (a 4xx: the credentials cannot pull the source repository,
//! which distribution answers with 401 `insufficient_scope`, or the source has no such blob)
//! is not an error but [`Mount::Refused`]: the caller uploads the blob instead, as docker and
//! skopeo do. A refusal opens no session, so none is left behind.

use hoist_oci::Digest;
use http::Method;
use url::Url;

use crate::client::{Client, Req, header_str};
use crate::protocol::chunk::{ChunkLimits, parse_upload_range};
use crate::protocol::location::{display_url, resolve_location};
use crate::{Error, Repo, Result};

/// An open upload session.
pub(crate) struct Session {
    pub(crate) location: Url,
    /// Bytes the server acknowledged.
    pub(crate) offset: u64,
    pub(crate) limits: ChunkLimits,
}

/// Where a session stands after asking it.
pub(crate) enum Status {
    Alive { location: Url, offset: u64 },
    Gone,
}

/// What a mount request came to.
pub(crate) enum Mount {
    /// The registry mounted the blob: it is in the repository.
    Mounted,
    /// The registry did not mount it but opened an upload session instead (as the
    /// distribution spec allows): upload through it, or delete it.
    Opened(Session),
    /// The registry refused the request (a 4xx other than 408 and 429): no session was opened.
    Refused(Error),
}

/// Statuses of a mount POST that are a refusal of the mount (an upload may still be allowed),
/// not something to retry or fail on: every 4xx but 408 and 429, which are transient.
fn mount_refusals() -> Vec<u16> {
    (400..500).filter(|s| !matches!(s, 408 | 429)).collect()
}

impl Client {
    /// POST a new upload session.
    pub(crate) async fn open_session(&self, repo: &Repo, scopes: &[String]) -> Result<Session> {
        let url = self.url(repo.registry(), &format!("{}/blobs/uploads/", repo.name()))?;
        let req = Req::new(Method::POST, url.clone());
        let resp = self
            .execute_retrying(
                &req,
                repo.registry(),
                scopes,
                &[],
                "opening an upload session",
            )
            .await?;
        session_of(&resp, &url)
    }

    /// POST a mount of `digest` from repository `from`. Transport failures and 5xx outlasting
    /// the retries are errors; a 4xx is [`Mount::Refused`].
    pub(crate) async fn try_mount(
        &self,
        repo: &Repo,
        scopes: &[String],
        digest: &Digest,
        from: &str,
    ) -> Result<Mount> {
        let mut url = self.url(repo.registry(), &format!("{}/blobs/uploads/", repo.name()))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let req = Req::new(Method::POST, url.clone());
        let resp = self
            .execute_retrying(
                &req,
                repo.registry(),
                scopes,
                &mount_refusals(),
                "mounting a blob",
            )
            .await?;
        let status = resp.status().as_u16();
        if status == 201 {
            return Ok(Mount::Mounted);
        }
        if (400..500).contains(&status) {
            let err = self.error_from(resp, &url, "mounting a blob").await;
            return Ok(Mount::Refused(err));
        }
        session_of(&resp, &url).map(Mount::Opened)
    }

    /// GET the upload URL: the server's `Range` is the truth. `acked` is what the server
    /// confirmed before and `after_cut` whether a PATCH body was cut mid-way; together they
    /// resolve distribution's ambiguous `0-0` (empty, or one byte).
    pub(crate) async fn session_status(
        &self,
        repo: &Repo,
        scopes: &[String],
        location: &Url,
        acked: u64,
        after_cut: bool,
    ) -> Result<Status> {
        let req = Req::new(Method::GET, location.clone());
        let resp = self
            .execute_retrying(
                &req,
                repo.registry(),
                scopes,
                &[404, 400],
                "checking upload status",
            )
            .await?;
        let status = resp.status().as_u16();
        if status == 404 || status == 400 {
            return Ok(Status::Gone);
        }
        let new_loc = header_str(resp.headers(), "location")
            .and_then(|l| resolve_location(location, l))
            .unwrap_or_else(|| location.clone());
        let range = header_str(resp.headers(), "range").map(parse_upload_range);
        let offset = match range {
            None => 0,
            Some(None) => {
                return Err(Error::misbehaved("upload status has an unparseable Range")
                    .with_url(display_url(location)));
            }
            // An ambiguous 0-0 that cannot be resolved starts the blob over (see
            // `resume_offset`): a session that lost what it confirmed is not trusted.
            Some(Some(r)) => match r.resume_offset(acked, after_cut) {
                Some(offset) => offset,
                None => return Ok(Status::Gone),
            },
        };
        Ok(Status::Alive {
            location: new_loc,
            offset,
        })
    }

    pub(crate) async fn delete_session(&self, repo: &Repo, scopes: &[String], location: &Url) {
        let req = Req::new(Method::DELETE, location.clone());
        if let Err(e) = self.execute(&req, repo.registry(), scopes).await {
            tracing::debug!(error = %e, "could not delete upload session");
        }
    }
}

/// The session a POST opened (a 202 with a `Location`).
fn session_of(resp: &http::Response<hyper::body::Incoming>, url: &Url) -> Result<Session> {
    let status = resp.status().as_u16();
    if status != 202 {
        return Err(Error::misbehaved(format!(
            "unexpected status {status} opening an upload session"
        ))
        .with_status(status)
        .with_url(display_url(url)));
    }
    let location = header_str(resp.headers(), "location")
        .and_then(|l| resolve_location(url, l))
        .ok_or_else(|| {
            Error::misbehaved("upload session response has no usable Location")
                .with_url(display_url(url))
        })?;
    Ok(Session {
        location,
        offset: 0,
        limits: limits_of(resp.headers()),
    })
}

pub(crate) fn limits_of(headers: &http::HeaderMap) -> ChunkLimits {
    ChunkLimits::from_headers(
        header_str(headers, "oci-chunk-min-length"),
        header_str(headers, "oci-chunk-max-length"),
    )
}
