//! Turning bollard's errors into ours: who is at fault, in words a user can act on.

use std::error::Error as _;

use crate::error::{Error, ErrorKind};

/// Map a bollard error met while talking to the daemon at `host`.
pub(crate) fn classify(err: bollard::errors::Error, host: &str) -> Error {
    use bollard::errors::Error as B;
    let mapped = match &err {
        B::DockerResponseServerError {
            status_code,
            message,
        } => from_status(*status_code, message),
        B::SocketNotFoundError(path) => Error::new(
            ErrorKind::DaemonUnavailable,
            format!("no daemon socket at {path}: is the daemon running?"),
        ),
        B::RequestTimeoutError => {
            Error::new(ErrorKind::Timeout, "the daemon did not answer in time")
        }
        B::DockerStreamError { error } if is_host_failure(error) => Error::new(
            ErrorKind::DaemonFailed,
            format!("the daemon failed: {}", one_line(error)),
        ),
        B::DockerStreamError { error } => Error::new(
            ErrorKind::DaemonRefused,
            format!("the daemon reported: {}", one_line(error)),
        ),
        B::JsonDataError { .. } | B::JsonSerdeError { .. } | B::APIVersionParseError {} => {
            Error::new(
                ErrorKind::DaemonFailed,
                "the daemon sent an unreadable answer",
            )
        }
        B::UnsupportedURISchemeError { .. }
        | B::URLParseError { .. }
        | B::InvalidURIError { .. }
        | B::InvalidURIPartsError { .. }
        | B::URLEncodedError { .. } => Error::new(ErrorKind::InvalidInput, "bad daemon address"),
        _ => from_transport(&err),
    };
    match err {
        // The daemon's message is already the error's; bollard's wrapping would repeat it.
        B::DockerResponseServerError { .. } | B::DockerStreamError { .. } => mapped.with_host(host),
        err => mapped.with_host(host).with_source(err),
    }
}

/// A failure of `POST /images/load`. The daemon answers 200 and then reports every failure as
/// a JSON error line (dockerd 20.10 does so even for its own): one that names a failure of the
/// daemon's host (its disk full, read-only or failing) is the daemon's fault; any other means
/// it rejected the archive, and the archive is at fault. Everything else maps as usual.
pub(crate) fn load_failure(err: bollard::errors::Error, host: &str) -> Error {
    match err {
        bollard::errors::Error::DockerStreamError { error } => {
            let text = one_line(&error);
            let mapped = if is_host_failure(&text) {
                Error::new(
                    ErrorKind::DaemonFailed,
                    format!("the daemon failed while loading the image: {text}"),
                )
            } else {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("the daemon rejected the archive: {text}"),
                )
            };
            mapped.with_host(host)
        }
        other => classify(other, host),
    }
}

/// Whether a daemon's message names a failure of its own machine rather than of what it was
/// sent: the error strings Go prints for ENOSPC, EDQUOT, EROFS, EIO, ENOMEM, EMFILE/ENFILE.
fn is_host_failure(message: &str) -> bool {
    const HOST_FAILURES: [&str; 7] = [
        "no space left on device",
        "disk quota exceeded",
        "read-only file system",
        "input/output error",
        "cannot allocate memory",
        "too many open files",
        "file table overflow",
    ];
    let lower = message.to_ascii_lowercase();
    HOST_FAILURES.iter().any(|m| lower.contains(m))
}

/// An HTTP error status from the daemon.
pub(crate) fn from_status(status: u16, message: &str) -> Error {
    let text = one_line(message);
    match status {
        404 => Error::new(
            ErrorKind::NotFound,
            format!("not found in the daemon: {text}"),
        ),
        400 if text.contains("too new") || text.contains("API version") => Error::new(
            ErrorKind::ApiTooOld,
            format!("the daemon's API is too old: {text}"),
        ),
        401 | 403 => Error::new(
            ErrorKind::PermissionDenied,
            format!("the daemon refused access ({status}): {text}"),
        ),
        400..=499 => Error::new(
            ErrorKind::DaemonRefused,
            format!("the daemon refused the request ({status}): {text}"),
        ),
        _ => Error::new(
            ErrorKind::DaemonFailed,
            format!("the daemon failed ({status}): {text}"),
        ),
    }
}

/// A connection-level failure: look for the `io::Error` underneath.
fn from_transport(err: &bollard::errors::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    let mut io_kind = None;
    let mut closed_early = false;
    if let bollard::errors::Error::IOError { err } = err {
        io_kind = Some(err.kind());
    }
    if let bollard::errors::Error::HyperResponseError { err } = err {
        closed_early = err.is_incomplete_message();
    }
    while io_kind.is_none()
        && let Some(current) = source
    {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        if let Some(hyper) = current.downcast_ref::<hyper::Error>() {
            closed_early |= hyper.is_incomplete_message();
        }
        source = current.source();
    }
    let connect =
        matches!(err, bollard::errors::Error::HyperLegacyError { err } if err.is_connect());
    use std::io::ErrorKind as Io;
    match io_kind {
        Some(Io::PermissionDenied) => Error::new(
            ErrorKind::PermissionDenied,
            "permission denied opening the daemon socket (are you in the docker group?)",
        ),
        Some(Io::ConnectionRefused | Io::NotFound | Io::AddrNotAvailable) => Error::new(
            ErrorKind::DaemonUnavailable,
            "cannot connect to the daemon: is it running?",
        ),
        // A reset before any answer is a stopped daemon too: a keep-alive connection it (or a
        // relay in front of it) dropped while hoist was sending on it. Seen as EOF or as RST
        // depending on timing; both must mean the same (tests/daemon.rs flaked 1 run in 5).
        // A reset part-way through a streamed answer is reclassified by the stream's reader.
        Some(Io::ConnectionReset | Io::BrokenPipe) => Error::new(
            ErrorKind::DaemonUnavailable,
            "the daemon closed the connection without answering: is it running?",
        ),
        _ if connect => Error::new(
            ErrorKind::DaemonUnavailable,
            "cannot connect to the daemon: is it running?",
        ),
        _ if closed_early => Error::new(
            ErrorKind::DaemonUnavailable,
            "the daemon closed the connection without answering: is it running?",
        ),
        _ => Error::new(
            ErrorKind::DaemonFailed,
            "the connection to the daemon broke off",
        ),
    }
}

/// The first line of a daemon message, trimmed and bounded, so no page of text reaches a log.
pub(crate) fn one_line(message: &str) -> String {
    let trimmed = message.trim();
    let text = serde_json::from_str::<serde_json::Value>(trimmed)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| trimmed.to_string());
    let first = said_once(text.lines().next().unwrap_or("").trim());
    if first.chars().count() > 300 {
        let cut: String = first.chars().take(300).collect();
        format!("{cut}...")
    } else {
        first.to_string()
    }
}

/// dockerd 20.10 wraps some errors in their own text ("no such image: x: No such image: x"):
/// the message once.
fn said_once(text: &str) -> &str {
    let Some(half) = text.len().checked_sub(2).map(|n| n / 2) else {
        return text;
    };
    match (
        text.get(..half),
        text.get(half..half + 2),
        text.get(half + 2..),
    ) {
        (Some(first), Some(": "), Some(second))
            if !first.is_empty() && first.eq_ignore_ascii_case(second) =>
        {
            first
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_the_daemon_repeats_is_said_once() {
        let said = from_status(
            404,
            r#"{"message":"no such image: app:1: No such image: app:1"}"#,
        );
        assert_eq!(
            said.to_string(),
            "not found in the daemon: no such image: app:1"
        );
        assert_eq!(
            said.with_image("app:1").to_string(),
            "not found in the daemon: no such image: app:1"
        );
        // Only an exact repeat collapses.
        for kept in ["a: b", "x: x1", "", ":", ": ", "é: é!"] {
            assert_eq!(said_once(kept), kept);
        }
        assert_eq!(said_once("é: É"), "é: É", "only ASCII case is folded");
        assert_eq!(said_once("Ab: aB"), "Ab");
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert!(from_status(404, "No such image: x").is_not_found());
        assert!(
            from_status(
                400,
                "client version 1.53 is too new. Maximum supported API version is 1.41"
            )
            .is_api_too_old()
        );
        assert!(from_status(400, "invalid reference format").is_daemon_refused());
        assert!(from_status(500, "boom").is_daemon_failed());
        assert!(from_status(403, "authz plugin").is_permission_denied());
    }

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(
            one_line("{\"message\":\"no such image\"}\n"),
            "no such image"
        );
        let page = format!("<html>\n{}\n</html>", "x".repeat(1000));
        assert_eq!(one_line(&page), "<html>");
        assert!(one_line(&"y".repeat(1000)).len() < 310);
    }

    #[test]
    fn load_lines_blame_the_archive_unless_the_daemon_names_its_own_failure() {
        let line = |error: &str| {
            load_failure(
                bollard::errors::Error::DockerStreamError {
                    error: error.to_string(),
                },
                "unix:///d.sock",
            )
        };
        let bad = line("invalid diffID for layer 0: expected \"sha256:aa\", got \"sha256:bb\"");
        assert!(bad.is_invalid_input(), "{bad:?}");
        assert!(bad.to_string().contains("rejected the archive"), "{bad}");
        let full = line(
            "Error processing tar file(exit status 1): write /x/layer.tar: no space left on device",
        );
        assert!(full.is_daemon_failed(), "{full:?}");
        assert!(
            full.to_string().contains("no space left on device"),
            "{full}"
        );
        // A status is still a status.
        let status = load_failure(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "boom".into(),
            },
            "unix:///d.sock",
        );
        assert!(status.is_daemon_failed(), "{status:?}");
    }

    #[test]
    fn socket_not_found_is_unavailable_with_host() {
        let err = classify(
            bollard::errors::Error::SocketNotFoundError("/x.sock".into()),
            "unix:///x.sock",
        );
        assert!(err.is_daemon_unavailable());
        assert_eq!(err.host(), Some("unix:///x.sock"));
    }

    #[test]
    fn reset_before_an_answer_is_unavailable() {
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
        ] {
            let err = classify(
                bollard::errors::Error::IOError {
                    err: std::io::Error::from(kind),
                },
                "tcp://127.0.0.1:2375",
            );
            assert!(err.is_daemon_unavailable(), "{kind:?}: {err:?}");
        }
        let other = classify(
            bollard::errors::Error::IOError {
                err: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            },
            "tcp://127.0.0.1:2375",
        );
        assert!(other.is_daemon_failed(), "{other:?}");
    }

    #[test]
    fn io_permission_denied_is_recognised() {
        let err = classify(
            bollard::errors::Error::IOError {
                err: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
            "unix:///x.sock",
        );
        assert!(err.is_permission_denied(), "{err:?}");
    }
}
