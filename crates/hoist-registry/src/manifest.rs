//! Manifests and tags: PUT with the exact media type, GET/HEAD with verification, DELETE by
//! digest, listing.

use hoist_oci::{
    AnyManifest, Descriptor, Digest, ImageManifest, MAX_JSON_SIZE, MediaType, Platform, RawJson,
};
use http::{Method, Response, header};
use hyper::body::Incoming;
use url::Url;

use crate::client::{BodySpec, Client, Req, header_str};
use crate::document::{DocumentClock, read_capped};
use crate::protocol::location::{display_url, resolve_location};
use crate::protocol::response::{DeleteRefusal, delete_refusal};
use crate::upload::pull_scope;
use crate::{Error, Repo, Result};

/// The `Accept` header for manifest requests: OCI and Docker, images and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Pages of tags followed at most (a registry sending endless `Link` headers is cut off).
const MAX_TAG_PAGES: usize = 1000;

/// Total bytes of tag-list pages read for one listing. Each page is capped at
/// [`MAX_JSON_SIZE`], but a registry sending endless full pages would otherwise make the list
/// grow to gigabytes; real repositories with 100k tags need a few MiB.
const MAX_TAG_LIST_BYTES: usize = 64 * 1024 * 1024;

/// The redirect statuses a manifest or tags GET follows.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// Redirects followed for one manifest or tags GET.
const MAX_REDIRECTS: usize = 5;

impl Client {
    /// PUT a manifest or index under `reference` (a tag, or its digest) with its exact bytes and
    /// media type. Returns the digest of the bytes, checked against the registry's
    /// `Docker-Content-Digest`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `reference` is a digest the bytes do not hash to;
    /// refusals (missing blobs: `MANIFEST_BLOB_UNKNOWN`), misbehaviour, transport.
    pub async fn push_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &MediaType,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = Digest::sha256_of(bytes);
        if let Ok(wanted) = Digest::parse(reference)
            && wanted.same_algorithm_of(bytes) != wanted
        {
            return Err(Error::invalid(format!(
                "manifest bytes do not hash to {wanted}, the reference they are pushed as"
            )));
        }
        let url = self.manifest_url(repo, reference)?;
        let req = Req::new(Method::PUT, url.clone())
            .header(header::CONTENT_TYPE, media_type.as_str())
            .body(BodySpec::Bytes(bytes::Bytes::copy_from_slice(bytes)));
        let scopes = [format!("repository:{}:pull,push", repo.name())];
        let resp = self
            .execute_retrying(&req, repo.registry(), &scopes, &[], "pushing a manifest")
            .await?;
        if let Some(got) = header_str(resp.headers(), "docker-content-digest")
            && let Ok(got) = Digest::parse(got.trim())
            && got.same_algorithm_of(bytes) != got
        {
            return Err(Error::digest_mismatch(format!(
                "registry stored the manifest as {got}, but its bytes hash to {digest}"
            ))
            .with_url(display_url(&url)));
        }
        Ok(digest)
    }

    /// GET a manifest or index by tag or digest, verifying the received bytes: against the
    /// digest for by-digest references, against `Docker-Content-Digest` for tags.
    ///
    /// # Errors
    /// Refused when unknown (`is_not_found()`), misbehaved on a digest mismatch or oversized or
    /// malformed body, transport.
    pub async fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<AnyManifest> {
        let fetched = self.fetch_manifest(repo, reference).await?;
        AnyManifest::parse(
            fetched.bytes,
            fetched
                .content_type
                .as_deref()
                .map(|c| c.split(';').next().unwrap_or(c).trim()),
        )
        .map_err(|e| {
            Error::misbehaved(format!("registry sent an unusable manifest: {e}"))
                .with_url(fetched.shown)
        })
    }

    /// GET a manifest's bytes (at most [`MAX_JSON_SIZE`]) and the digest they hash to,
    /// verified against the digest of a by-digest reference, and against
    /// `Docker-Content-Digest` when the registry sends one (its algorithm is then the one
    /// used; without it, sha256).
    async fn fetch_manifest(&self, repo: &Repo, reference: &str) -> Result<FetchedManifest> {
        let url = self.manifest_url(repo, reference)?;
        let scopes = [pull_scope(repo.name())];
        // A redirect (a mirror or a CDN in front of the registry) is followed; the bytes are
        // checked against the digest all the same.
        let accept = Some(MANIFEST_ACCEPT);
        let (resp, _) = self
            .get_following(
                url.clone(),
                accept,
                repo.registry(),
                &scopes,
                "fetching a manifest",
            )
            .await?;
        let shown = display_url(&url);
        let content_type = header_str(resp.headers(), "content-type").map(str::to_owned);
        let header_digest = header_str(resp.headers(), "docker-content-digest").map(str::to_owned);
        let bytes = read_capped(resp, MAX_JSON_SIZE, &shown, self.cfg().timeout)
            .await?
            .to_vec();
        let expected = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => match header_digest {
                Some(h) => Some(Digest::parse(h.trim()).map_err(|_| {
                    Error::misbehaved("registry sent an invalid Docker-Content-Digest")
                        .with_url(shown.clone())
                })?),
                None => None,
            },
        };
        let digest = match expected {
            Some(expected) => {
                let actual = expected.same_algorithm_of(&bytes);
                if actual != expected {
                    return Err(Error::digest_mismatch(format!(
                        "manifest digest mismatch: expected {expected}, received bytes hash to {actual}"
                    ))
                    .with_url(shown));
                }
                actual
            }
            None => Digest::sha256_of(&bytes),
        };
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
            shown,
        })
    }

    /// HEAD a manifest: its descriptor (media type, digest, size) or `None` when absent.
    ///
    /// # Errors
    /// Refusals other than 404, misbehaviour (no digest header for a tag, a digest other than
    /// the one asked for, no `Content-Length`), transport.
    pub async fn head_manifest(&self, repo: &Repo, reference: &str) -> Result<Option<Descriptor>> {
        let url = self.manifest_url(repo, reference)?;
        let req = Req::new(Method::HEAD, url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT);
        let scopes = [pull_scope(repo.name())];
        let resp = self
            .execute_retrying(
                &req,
                repo.registry(),
                &scopes,
                &[404],
                "checking a manifest",
            )
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let h = resp.headers();
        let said = header_str(h, "docker-content-digest").map(|d| Digest::parse(d.trim()));
        let digest = match (Digest::parse(reference), said) {
            // Asked by digest: that is the answer; a header naming another is a lie.
            (Ok(asked), Some(Ok(said))) if said != asked => {
                return Err(Error::misbehaved(format!(
                    "asked for manifest {asked}, the registry answered for {said}"
                ))
                .with_url(display_url(&url)));
            }
            (Ok(asked), _) => asked,
            (Err(_), Some(Ok(said))) => said,
            (Err(_), _) => {
                return Err(
                    Error::misbehaved("manifest HEAD without a Docker-Content-Digest")
                        .with_url(display_url(&url)),
                );
            }
        };
        let size = header_str(h, "content-length")
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::misbehaved("manifest HEAD without a Content-Length")
                    .with_url(display_url(&url))
            })?;
        // The media type as the GET path reads it (parameters dropped), checked: it goes
        // into descriptors, and from there into `Accept` and `Content-Type` headers.
        let said = header_str(h, "content-type").map(|c| c.split(';').next().unwrap_or(c).trim());
        let media_type =
            MediaType::parse(said.unwrap_or(MediaType::OCI_MANIFEST)).map_err(|_| {
                Error::misbehaved("manifest HEAD with a Content-Type that is no media type")
                    .with_url(display_url(&url))
            })?;
        Ok(Some(Descriptor::new(media_type, digest, size)))
    }

    /// Delete the manifest `reference` names (a tag, or a digest) from `repo`, as `skopeo
    /// delete` does; returns the digest deleted.
    ///
    /// The distribution spec deletes manifests by digest only, so a tag is first resolved to
    /// the digest it names and that digest is deleted. As skopeo does, the manifest is fetched
    /// (a GET accepting [`MANIFEST_ACCEPT`], at most [`MAX_JSON_SIZE`]) and its bytes hashed:
    /// a `Docker-Content-Digest` is optional and only cross-checked, so a registry without it
    /// can still delete by tag, and one whose header names another manifest deletes nothing.
    /// Deleting by digest removes every tag pointing at that manifest, not only the one given.
    /// An index is deleted alone: the images it lists stay, by digest. Blobs stay until the
    /// registry's garbage collection.
    ///
    /// The DELETE asks for the `*` action on the repository, as skopeo does: distribution
    /// needs `delete` for it and takes `*` as every action, and quay grants no token for a
    /// scope naming `delete`.
    ///
    /// # Errors
    /// Refused: [`Error::is_not_found`] when there is no such tag or manifest;
    /// [`Error::is_unsupported`] when the registry does not allow deletes (distribution
    /// without `storage.delete.enabled`); [`Error::is_auth`] without the right to delete.
    /// [`crate::ErrorKind::InvalidInput`] for a reference that is no tag or digest;
    /// [`Error::is_digest_mismatch`] when a tag's manifest does not hash to the
    /// `Docker-Content-Digest` sent with it (nothing is deleted); misbehaved when its manifest
    /// is larger than [`MAX_JSON_SIZE`]; transport.
    ///
    /// A retried delete that finds the manifest gone succeeds: an earlier attempt went out
    /// and its answer was lost (a dropped connection, a proxy's 502), so that attempt deleted
    /// it, or it was not there at all; either way it is gone.
    pub async fn delete_manifest(&self, repo: &Repo, reference: &str) -> Result<Digest> {
        let (digest, shown) = match Digest::parse(reference) {
            Ok(digest) => {
                let shown = format!("{repo}@{digest}");
                (digest, shown)
            }
            // What the tag names is the digest of the manifest it serves, hashed here: a
            // header alone could name another manifest, and a DELETE cannot be taken back.
            Err(_) => match self.fetch_manifest(repo, reference).await {
                Ok(fetched) => {
                    let shown = format!("{repo}:{reference} ({})", fetched.digest);
                    (fetched.digest, shown)
                }
                Err(e) if e.status() == Some(404) => {
                    let url = self.manifest_url(repo, reference)?;
                    return Err(Error::refused(format!(
                        "{repo}:{reference} not found: the registry has no such tag to delete"
                    ))
                    .with_status(404)
                    .with_url(display_url(&url)));
                }
                Err(e) => return Err(e),
            },
        };
        let url = self.manifest_url(repo, &digest.to_string())?;
        let req = Req::new(Method::DELETE, url);
        let scopes = [format!("repository:{}:*", repo.name())];
        let what = format!("deleting {shown}");
        let (result, attempts) = self
            .execute_counted(&req, repo.registry(), &scopes, &[], &what)
            .await;
        match result {
            Ok(_) => Ok(digest),
            Err(e) => Err(match e.status().map(|s| delete_refusal(s, e.code())) {
                // An earlier attempt went out and its answer was lost: it deleted the manifest
                // (or there was none); gone either way.
                Some(DeleteRefusal::NotFound) if attempts > 1 => {
                    tracing::info!(
                        manifest = %shown,
                        attempts,
                        "gone on a retried delete: an earlier attempt, whose answer was lost, deleted it"
                    );
                    return Ok(digest);
                }
                Some(DeleteRefusal::NotFound) => e.reworded(format!(
                    "{shown} not found: the registry has no such manifest to delete"
                )),
                // The error's URL names the manifest; the caller says what it was deleting.
                Some(DeleteRefusal::NotAllowed) => e.reworded(
                    "the registry does not allow deletes (distribution allows them with \
                     storage.delete.enabled: true in its configuration)",
                ),
                Some(DeleteRefusal::Other) | None => e,
            }),
        }
    }

    /// Resolve `reference` to an image manifest: an index or manifest list is resolved to the
    /// entry for `platform` (fetched by digest, so verified).
    ///
    /// # Errors
    /// As [`Client::get_manifest`]; invalid input when the index has no such platform.
    pub async fn get_image_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        platform: &Platform,
    ) -> Result<RawJson<ImageManifest>> {
        match self.get_manifest(repo, reference).await? {
            AnyManifest::Image(m) => Ok(*m),
            AnyManifest::Index(index) => {
                let chosen = index.value().select(platform)?;
                let m = match self.get_manifest(repo, &chosen.digest.to_string()).await? {
                    AnyManifest::Image(m) => *m,
                    AnyManifest::Index(_) => {
                        return Err(Error::misbehaved(
                            "an index entry for a platform points to another index",
                        ));
                    }
                };
                if chosen.platform.is_none() {
                    // Taken because it declares no platform at all: its config must say it is
                    // for `platform`, or it is not the image asked for.
                    self.check_config_platform(repo, &m, platform).await?;
                }
                Ok(m)
            }
        }
    }

    /// Fail unless the config of `manifest` is for `wanted`.
    async fn check_config_platform(
        &self,
        repo: &Repo,
        manifest: &RawJson<ImageManifest>,
        wanted: &Platform,
    ) -> Result<()> {
        let have = self
            .get_config(repo, &manifest.value().config)
            .await?
            .value()
            .platform();
        if have.matches(wanted) {
            Ok(())
        } else {
            Err(hoist_oci::Error::new(
                hoist_oci::ErrorKind::NoMatchingPlatform,
                format!("the index's only image is for {have}, not {wanted}"),
            )
            .into())
        }
    }

    /// An image config, verified against its descriptor (and refused over
    /// [`MAX_JSON_SIZE`] before anything is read).
    ///
    /// # Errors
    /// Misbehaved for an oversized or wrong config; as [`Client::open_blob_stream`].
    pub async fn get_config(
        &self,
        repo: &Repo,
        desc: &Descriptor,
    ) -> Result<RawJson<hoist_oci::ImageConfig>> {
        if desc.size > MAX_JSON_SIZE as u64 {
            return Err(Error::misbehaved(format!(
                "the image config is {} bytes, more than hoist accepts",
                desc.size
            )));
        }
        let mut stream = self.open_blob_stream(repo, desc).await?;
        // From the response head on, as for any document (retries before it have their own
        // bounds).
        let clock = DocumentClock::start(self.cfg().timeout);
        let mut bytes = Vec::with_capacity(desc.size as usize);
        loop {
            // The stream ends at the descriptor's size: `bytes` never grows past it.
            let received = bytes.len() as u64;
            let too_slow = || clock.too_slow("the image config", received);
            let left = clock.left(received).ok_or_else(too_slow)?;
            let read = tokio::io::AsyncReadExt::read_buf(&mut stream, &mut bytes);
            match tokio::time::timeout(left, read).await {
                Err(_) => return Err(too_slow()),
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(crate::pull::stream_error(e, "reading the image config")),
            }
        }
        Ok(RawJson::parse_verified(bytes, &desc.digest)?)
    }

    /// All tags of `repo`, following `Link` pagination.
    ///
    /// # Errors
    /// Refused for unknown repositories, misbehaved for malformed pages, transport.
    pub async fn list_tags(&self, repo: &Repo) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let scopes = [pull_scope(repo.name())];
        let mut url = self.url(repo.registry(), &format!("{}/tags/list", repo.name()))?;
        let mut tags = Vec::new();
        let mut total = 0usize;
        for _ in 0..MAX_TAG_PAGES {
            let (resp, at) = self
                .get_following(url.clone(), None, repo.registry(), &scopes, "listing tags")
                .await?;
            // A next page is named relative to the page that named it.
            let next = header_str(resp.headers(), "link").and_then(|l| next_link(&at, l));
            let shown = display_url(&url);
            let body = read_capped(resp, MAX_JSON_SIZE, &shown, self.cfg().timeout).await?;
            total += body.len();
            if total > MAX_TAG_LIST_BYTES {
                return Err(Error::misbehaved(format!(
                    "tag list exceeds {MAX_TAG_LIST_BYTES} bytes over all its pages"
                ))
                .with_url(shown));
            }
            let page: Page = serde_json::from_slice(&body)
                .map_err(|_| Error::misbehaved("tag list is not valid JSON").with_url(shown))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(Error::misbehaved("tag list pagination did not end"))
    }

    /// GET `url` (with `accept`), following redirects as docker does, at most
    /// [`MAX_REDIRECTS`] of them (credentials go to the registry's own host only); the answer
    /// and the URL that gave it.
    async fn get_following(
        &self,
        url: Url,
        accept: Option<&str>,
        registry: &str,
        scopes: &[String],
        what: &str,
    ) -> Result<(Response<Incoming>, Url)> {
        let mut at = url;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = Req::new(Method::GET, at.clone());
            if let Some(accept) = accept {
                req = req.header(header::ACCEPT, accept);
            }
            let resp = self
                .execute_retrying(&req, registry, scopes, &REDIRECTS, what)
                .await?;
            if !REDIRECTS.contains(&resp.status().as_u16()) {
                return Ok((resp, at));
            }
            at = header_str(resp.headers(), "location")
                .and_then(|l| resolve_location(&at, l))
                .ok_or_else(|| {
                    Error::misbehaved(format!("{what}: a redirect without a usable Location"))
                        .with_url(display_url(&at))
                })?;
        }
        Err(Error::misbehaved(format!("{what}: too many redirects")).with_url(display_url(&at)))
    }

    fn manifest_url(&self, repo: &Repo, reference: &str) -> Result<Url> {
        let ok = Digest::parse(reference).is_ok()
            || (!reference.is_empty()
                && reference.len() <= 128
                && reference
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !reference.starts_with(['.', '-']));
        if !ok {
            return Err(Error::invalid(format!(
                "invalid tag or digest {reference:?}"
            )));
        }
        self.url(
            repo.registry(),
            &format!("{}/manifests/{reference}", repo.name()),
        )
    }
}

/// A manifest as received: its bytes, what they were said to be and the digest they hash to.
struct FetchedManifest {
    bytes: Vec<u8>,
    content_type: Option<String>,
    digest: Digest,
    /// The URL it came from, for messages.
    shown: String,
}

/// The target of the `Link` header's link whose relation types include `next`, resolved
/// against the request URL.
///
/// Parsed as RFC 8288 has it, not as distribution happens to write it (`<url>; rel="next"`):
/// the relation is a token (`rel=next`) or a quoted, space-separated list (`rel="prev next"`),
/// compared without case; parameter names are case-insensitive; only a link's first `rel`
/// counts; commas and semicolons inside quoted strings separate nothing. A listing that
/// missed another registry's spelling would stop at its first page without a word.
fn next_link(base: &Url, link: &str) -> Option<Url> {
    let mut rest = link;
    loop {
        let open = rest.find('<')?;
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = after[..close].trim();
        let params = &after[close + 1..];
        let end = find_unquoted(params, b',').unwrap_or(params.len());
        if rel_is_next(&params[..end]) {
            return resolve_location(base, target);
        }
        rest = &params[end..];
    }
}

/// Whether the link parameters `params` (`; rel="next"; title="x"`) give `next` among the
/// relation types of their first `rel`.
fn rel_is_next(params: &str) -> bool {
    let mut rest = params;
    while !rest.is_empty() {
        let end = find_unquoted(rest, b';').unwrap_or(rest.len());
        let param = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("rel") {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        return value
            .split_ascii_whitespace()
            .any(|r| r.eq_ignore_ascii_case("next"));
    }
    false
}

/// The index of the first `sep` in `s` outside a quoted string (where `\` escapes a byte).
fn find_unquoted(s: &str, sep: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let base = Url::parse("http://127.0.0.1:5000/v2/a/tags/list").expect("url");
        let got = next_link(&base, r#"</v2/a/tags/list?last=t5&n=5>; rel="next""#).expect("next");
        assert_eq!(
            got.as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list?last=t5&n=5"
        );
        assert!(next_link(&base, r#"</x>; rel="prev""#).is_none());
        assert!(next_link(&base, "garbage").is_none());
    }

    #[test]
    fn link_header_rel_forms_of_rfc_8288() {
        let base = Url::parse("http://r:5000/v2/a/tags/list").expect("url");
        let next = |h: &str| next_link(&base, h).map(|u| u.to_string());
        let want = Some("http://r:5000/v2/a/tags/list?last=t5&n=5".to_owned());
        for h in [
            r#"</v2/a/tags/list?last=t5&n=5>; rel="next""#,
            "</v2/a/tags/list?last=t5&n=5>; rel=next",
            "</v2/a/tags/list?last=t5&n=5>;rel=next",
            r#"</v2/a/tags/list?last=t5&n=5>; REL="Next""#,
            r#"</v2/a/tags/list?last=t5&n=5>; rel="prev next""#,
            r#"</v2/a/tags/list?last=t5&n=5> ; title="a; b, c" ; rel = "next""#,
            r#"</first>; rel="first", </v2/a/tags/list?last=t5&n=5>; rel=next"#,
            r#"</x>; title="rel=next, <y>", </v2/a/tags/list?last=t5&n=5>; rel=next"#,
        ] {
            assert_eq!(next(h), want, "{h}");
        }
        for h in [
            r#"</x>; rel="prev""#,
            "</x>; rel=nextpage",
            r#"</x>; rel="prev"; rel="next""#,
            r#"</x>; title="rel=next""#,
            "</x>; rel",
            "</x",
            "",
        ] {
            assert_eq!(next(h), None, "{h}");
        }
    }
}
