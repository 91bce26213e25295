//! What a registry response means: OCI error bodies, and the next step for each status.

use std::time::Duration;

/// The useful part of an error response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The OCI error code (`BLOB_UPLOAD_UNKNOWN`, `DIGEST_INVALID`, ...), when the body had one.
    pub code: Option<String>,
    /// A short human message: the registry's own, or the status line for HTML and empty bodies.
    pub message: String,
}

/// Longest message kept from a registry body.
const MAX_MESSAGE: usize = 300;

/// Reduce an error response to a code and a one-line message. OCI error JSON
/// (`{"errors":[{"code":..,"message":..}]}`) gives both; an HTML page (an nginx 413, a CDN error)
/// is reduced to the status line and never dumped; short plain text is kept as one line.
pub fn parse_error_body(status: u16, content_type: Option<&str>, body: &[u8]) -> ErrorBody {
    parse_error_body_redacted(status, content_type, body, &[])
}

/// [`parse_error_body`], with each of `secrets` (the passwords, Basic values and tokens the
/// client sent) replaced by `***` in the code and message before they are cut to length: a
/// server or proxy that echoes the `Authorization` header into its error must not put it on a
/// terminal or into a CI log.
pub fn parse_error_body_redacted(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> ErrorBody {
    let status_line = status_line(status);
    let clean = |text: &str| one_line(&redact(text, secrets));
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<OneError>,
    }
    #[derive(serde::Deserialize)]
    struct OneError {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(body)
        && let Some(first) = parsed.errors.into_iter().next()
    {
        // A proxy may wrap its HTML error page in the JSON: the status line says as much.
        let message = first
            .message
            .filter(|m| !m.trim().is_empty() && !holds_html(m))
            .map(|m| clean(&m))
            .unwrap_or_else(|| status_line.clone());
        return ErrorBody {
            code: first.code.filter(|c| !c.is_empty()).map(|c| clean(&c)),
            message,
        };
    }
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    let is_html = content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("html"))
        || trimmed.starts_with('<');
    let message = if trimmed.is_empty() || is_html || trimmed.starts_with('{') {
        status_line
    } else {
        format!("{status_line}: {}", clean(trimmed))
    };
    ErrorBody {
        code: None,
        message,
    }
}

/// `text` with every occurrence of each non-empty secret replaced by `***`, the longest first
/// (so a token holding a password is hidden whole).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut sorted: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in sorted {
        if out.contains(secret) {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// Whether `text` carries an HTML page (or a piece of one) anywhere.
fn holds_html(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["<!doctype", "<html", "<head", "<body"]
        .iter()
        .any(|tag| lower.contains(tag))
}

/// Whether `status` to a plain-HTTP request, without a registry error code (`coded`), is how a
/// server that speaks only HTTPS on that port answers: a 400 (Go's server and nginx both answer
/// plain HTTP on a TLS port that way). A 400 with a code (`MANIFEST_INVALID`,
/// `DIGEST_INVALID`...) is the registry's own verdict.
pub fn https_only_answer(status: u16, plain_http: bool, coded: bool) -> bool {
    status == 400 && plain_http && !coded
}

/// Why a status usually happens, when the response alone does not say: a 413 comes from a
/// body limit, and a 400 to a plain-HTTP request from a registry that serves only HTTPS there
/// ([`https_only_answer`]).
pub fn status_hint(status: u16, plain_http: bool, coded: bool) -> Option<&'static str> {
    match status {
        413 => Some("the registry or a proxy in front of it limits request bodies"),
        _ if https_only_answer(status, plain_http, coded) => Some(
            "this request was plain HTTP, a loopback registry's default, which a registry \
             serving only HTTPS answers with 400: it needs HTTPS, with its CA or self-signed \
             certificate trusted, or as an insecure host (unverified)",
        ),
        _ => None,
    }
}

/// `"413 Payload Too Large"`-style status line.
pub fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}").trim().to_owned()
}

fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE)
        .collect();
    if s.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The request being answered, as far as classification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Anything without an upload session: HEAD, manifest GET/PUT, tag listing, token fetch.
    Plain,
    /// POST opening an upload session (or a mount).
    Open,
    /// A PATCH carrying a chunk.
    Patch,
    /// The closing `PUT ?digest=`.
    Close,
    /// `GET` of the upload URL to learn its `Range`.
    Status,
    /// A blob GET (possibly ranged).
    Download,
}

/// What to do after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Success.
    Done,
    /// Transient: wait (the server's `Retry-After` when given) and try the same thing again.
    Retry {
        /// The server's `Retry-After`, when it sent one.
        after: Option<Duration>,
    },
    /// The session is alive but out of step: ask it where it is (GET status) and continue there.
    Resume,
    /// The session is gone: open a new one for this blob.
    Restart,
    /// Credentials were refused or are missing: authenticate (once) and retry.
    Reauth,
    /// The body was too large: use smaller chunks and continue from the server's `Range`.
    Shrink,
    /// Give up with an error.
    Fail,
}

/// Classify a response. `code` is the OCI error code from the body, if any.
pub fn classify(
    phase: Phase,
    status: u16,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Step {
    let session = matches!(phase, Phase::Patch | Phase::Close | Phase::Status);
    match status {
        200..=299 => Step::Done,
        401 | 403 => Step::Reauth,
        408 | 429 | 500 | 502 | 503 | 504 => Step::Retry { after: retry_after },
        413 if phase == Phase::Patch => Step::Shrink,
        416 if phase == Phase::Patch => Step::Resume,
        404 if code == Some("NAME_UNKNOWN") => Step::Fail,
        404 if session || code == Some("BLOB_UPLOAD_UNKNOWN") => Step::Restart,
        400 if code == Some("BLOB_UPLOAD_INVALID") && session => Step::Restart,
        _ => Step::Fail,
    }
}

/// What to do after a transport error (connection reset, timeout, TLS failure mid-stream).
/// A PATCH may have delivered part of its body, so the session must be asked where it is.
pub fn classify_transport(phase: Phase) -> Step {
    match phase {
        Phase::Patch => Step::Resume,
        _ => Step::Retry { after: None },
    }
}

/// Why a registry refused to delete a manifest, as far as its answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRefusal {
    /// The repository has no such manifest (404, `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
    NotFound,
    /// The registry does not allow deletes (405 Method Not Allowed, `UNSUPPORTED`):
    /// distribution answers so unless its configuration sets `storage.delete.enabled`.
    NotAllowed,
    /// Anything else (credentials, a 5xx that outlasted the retries, ...): the registry's own
    /// words say what.
    Other,
}

/// What a failed manifest `DELETE` means, from its status and OCI error code. A code saying
/// deletes are unsupported wins over the status it came with; an unknown manifest or
/// repository is "not found" whatever the status.
pub fn delete_refusal(status: u16, code: Option<&str>) -> DeleteRefusal {
    match (status, code) {
        (_, Some("UNSUPPORTED")) | (405, _) => DeleteRefusal::NotAllowed,
        (_, Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN")) | (404, _) => DeleteRefusal::NotFound,
        _ => DeleteRefusal::Other,
    }
}

/// Parse `Retry-After`: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_error_json() {
        let body = br#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry","detail":{}}]}"#;
        let e = parse_error_body(404, Some("application/json"), body);
        assert_eq!(e.code.as_deref(), Some("BLOB_UPLOAD_UNKNOWN"));
        assert_eq!(e.message, "blob upload unknown to registry");
    }

    #[test]
    fn echoed_secrets_are_redacted_before_the_message_is_cut() {
        let token = "t".repeat(400);
        let body = format!(
            r#"{{"errors":[{{"code":"DENIED pw=hunter22","message":"bad token Bearer {token} for bob:hunter22"}}]}}"#
        );
        let e = parse_error_body_redacted(403, None, body.as_bytes(), &["hunter22", &token]);
        assert_eq!(e.message, "bad token Bearer *** for bob:***");
        assert_eq!(e.code.as_deref(), Some("DENIED pw=***"));
        let e = parse_error_body_redacted(400, Some("text/plain"), b"got hunter22", &["hunter22"]);
        assert_eq!(e.message, "400 Bad Request: got ***");
        assert_eq!(
            redact("a secret in a secretive text", &["", "secret"]),
            "a *** in a ***ive text"
        );
    }

    #[test]
    fn html_inside_an_oci_error_is_reduced_to_the_status_line_and_keeps_the_code() {
        let body = br#"{"errors":[{"code":"UNKNOWN","message":"upstream said <html><body>502</body></html>"}]}"#;
        let e = parse_error_body(502, Some("application/json"), body);
        assert_eq!(e.code.as_deref(), Some("UNKNOWN"));
        assert_eq!(e.message, "502 Bad Gateway");
    }

    #[test]
    fn html_is_reduced_to_status_line() {
        let body = b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>nginx</body></html>";
        let e = parse_error_body(413, Some("text/html"), body);
        assert_eq!(e.code, None);
        assert_eq!(e.message, "413 Payload Too Large");
        let e = parse_error_body(502, None, b"  <!DOCTYPE html><p>bad</p>");
        assert_eq!(e.message, "502 Bad Gateway");
        let e = parse_error_body(500, Some("text/plain"), b"");
        assert_eq!(e.message, "500 Internal Server Error");
        let e = parse_error_body(400, Some("text/plain"), b"bad\nthing");
        assert_eq!(e.message, "400 Bad Request: bad thing");
        let long = vec![b'x'; 5000];
        assert!(parse_error_body(400, None, &long).message.chars().count() < 400);
    }

    #[test]
    fn hints_name_the_usual_cause() {
        assert!(
            status_hint(413, false, false).is_some_and(|h| h.contains("limits request bodies"))
        );
        assert!(status_hint(413, true, true).is_some());
        // The plain-HTTP 400 names both ways to HTTPS (regression: it said "may need HTTPS
        // with a trusted certificate" and no more).
        let hint = status_hint(400, true, false).expect("a hint");
        for what in ["plain HTTP", "loopback", "self-signed", "insecure host"] {
            assert!(hint.contains(what), "{what}: {hint}");
        }
        assert!(https_only_answer(400, true, false));
        assert!(!https_only_answer(400, true, true) && !https_only_answer(400, false, false));
        // The registry's own error code says what was wrong: no guess about HTTPS.
        assert_eq!(status_hint(400, true, true), None);
        // Over HTTPS a 400 is the registry's own complaint: no guess.
        assert_eq!(status_hint(400, false, false), None);
        assert_eq!(status_hint(404, true, false), None);
    }

    #[test]
    fn classification_table() {
        use Phase::*;
        assert_eq!(classify(Patch, 202, None, None), Step::Done);
        assert_eq!(
            classify(Patch, 201, None, None),
            Step::Done,
            "ECR answers 201 on PATCH"
        );
        let ra = Some(Duration::from_secs(3));
        assert_eq!(classify(Patch, 429, None, ra), Step::Retry { after: ra });
        for s in [408, 500, 502, 503, 504] {
            assert_eq!(
                classify(Plain, s, None, None),
                Step::Retry { after: None },
                "{s}"
            );
        }
        assert_eq!(classify(Patch, 413, None, None), Step::Shrink);
        assert_eq!(classify(Plain, 413, None, None), Step::Fail);
        assert_eq!(classify(Patch, 416, None, None), Step::Resume);
        assert_eq!(
            classify(Patch, 404, Some("BLOB_UPLOAD_UNKNOWN"), None),
            Step::Restart
        );
        assert_eq!(classify(Status, 404, None, None), Step::Restart);
        assert_eq!(
            classify(Close, 400, Some("BLOB_UPLOAD_INVALID"), None),
            Step::Restart
        );
        assert_eq!(classify(Open, 404, Some("NAME_UNKNOWN"), None), Step::Fail);
        assert_eq!(
            classify(Close, 400, Some("DIGEST_INVALID"), None),
            Step::Fail
        );
        assert_eq!(classify(Plain, 401, None, None), Step::Reauth);
        assert_eq!(classify(Plain, 403, None, None), Step::Reauth);
        assert_eq!(
            classify(Plain, 404, Some("MANIFEST_UNKNOWN"), None),
            Step::Fail
        );
        assert_eq!(classify_transport(Patch), Step::Resume);
        assert_eq!(classify_transport(Close), Step::Retry { after: None });
    }

    #[test]
    fn delete_refusals_say_not_found_or_not_allowed() {
        use DeleteRefusal::*;
        // distribution 2.8: an unknown digest, and a registry with deletes turned off.
        assert_eq!(delete_refusal(404, Some("MANIFEST_UNKNOWN")), NotFound);
        assert_eq!(delete_refusal(405, Some("UNSUPPORTED")), NotAllowed);
        // The status alone (a proxy's page, an empty body), and the code alone.
        assert_eq!(delete_refusal(404, None), NotFound);
        assert_eq!(delete_refusal(405, None), NotAllowed);
        assert_eq!(delete_refusal(400, Some("UNSUPPORTED")), NotAllowed);
        assert_eq!(delete_refusal(404, Some("UNSUPPORTED")), NotAllowed);
        assert_eq!(delete_refusal(400, Some("NAME_UNKNOWN")), NotFound);
        // Credentials, a server failing, anything else: the registry's own words.
        for (status, code) in [
            (401, Some("UNAUTHORIZED")),
            (403, Some("DENIED")),
            (500, None),
            (400, Some("DIGEST_INVALID")),
        ] {
            assert_eq!(delete_refusal(status, code), Other, "{status} {code:?}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
