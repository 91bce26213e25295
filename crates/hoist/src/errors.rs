//! Turning an error into what the user sees and the exit code: one clear line, then its causes,
//! each said once, never an HTML page, a control character (bidirectional ones included) or a
//! credential; then, for a registry's TLS trouble, a `hint:` naming the flags that fix it (the
//! library's message names only its settings).

use std::io;

use crate::config::UsageError;

/// Exit code for success (and for a closed stdout pipe).
pub const EXIT_OK: i32 = 0;
/// Exit code for a failure.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: i32 = 2;

/// What the process should do with an error from `run()`.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit with this code after printing these lines to stderr.
    Fail {
        /// The exit code.
        code: i32,
        /// Lines to print, already sanitized.
        lines: Vec<String>,
    },
    /// A reader of our stdout went away (`hoist ... | head`): exit 0 quietly.
    BrokenPipe,
}

/// The reader of our standard output went away (`hoist inspect ... | head`). Only a write to
/// stdout produces this: a broken pipe anywhere else (a registry hanging up mid-upload) is a
/// failure like any other.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reader of standard output went away")
    }
}

impl std::error::Error for StdoutClosed {}

/// The result of writing `what` to stdout: a closed pipe becomes [`StdoutClosed`].
///
/// # Errors
/// [`StdoutClosed`] for a closed pipe, the write error with `what` as context otherwise.
pub fn stdout_result(result: io::Result<()>, what: &str) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("writing {what} to stdout"))),
    }
}

/// Classify an error and render its chain.
pub fn outcome(err: &anyhow::Error) -> Outcome {
    if is_broken_pipe(err) {
        return Outcome::BrokenPipe;
    }
    let code = if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    };
    let messages: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    let mut lines = render_chain(&messages);
    if let Some(hint) = err
        .chain()
        .find_map(|e| e.downcast_ref::<hoist_registry::Error>())
        .and_then(registry_hint)
    {
        lines.push(format!("hint: {}", sanitize(&hint)));
    }
    Outcome::Fail { code, lines }
}

/// The exit code for a failed command's `outcome`, given `signal`, the exit code of the
/// signal that came while it ran ([`crate::interrupt::exit_code`]): a signal's code (130,
/// 143) wins over the failure's own and over a closed stdout's 0. Ctrl-C on `hoist ... |
/// reader` reaches the reader too; hoist's next write to it then fails with a broken pipe,
/// which must not turn the interruption into a success.
pub fn exit_code(outcome: &Outcome, signal: Option<i32>) -> i32 {
    let own = match outcome {
        Outcome::Fail { code, .. } => *code,
        Outcome::BrokenPipe => EXIT_OK,
    };
    signal.unwrap_or(own)
}

/// A registry's TLS trouble the command line has flags for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsTrouble {
    /// Plain HTTP (loopback's default) went to a registry that serves HTTPS.
    HttpsOnly,
    /// The registry's certificate was refused.
    Untrusted,
    /// The registry answered the TLS handshake in plain HTTP.
    NoTls,
}

/// The flags that fix `e`, when it is TLS trouble.
fn registry_hint(e: &hoist_registry::Error) -> Option<String> {
    let trouble = if e.is_plain_http_refused() {
        TlsTrouble::HttpsOnly
    } else if e.is_untrusted_certificate() {
        TlsTrouble::Untrusted
    } else if e.is_plain_http_server() {
        TlsTrouble::NoTls
    } else {
        return None;
    };
    Some(tls_hint(trouble, e.url().and_then(authority)))
}

/// `HOST[:PORT]` of a URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// What to pass for `trouble` with the registry at `host` (`HOST[:PORT]`).
fn tls_hint(trouble: TlsTrouble, host: Option<&str>) -> String {
    let host = host.unwrap_or("HOST[:PORT]");
    let unverified = format!("--tls-verify=false (or --insecure-registry {host})");
    match trouble {
        TlsTrouble::HttpsOnly => format!(
            "hoist speaks plain HTTP to a registry on a loopback address unless told \
             otherwise, and {host} serves HTTPS: pass --cert-dir DIR with its CA certificate \
             (or its own, when self-signed) as DIR/ca.crt for verified HTTPS, or {unverified} \
             for HTTPS without verification"
        ),
        TlsTrouble::Untrusted => format!(
            "--cert-dir DIR trusts the certificates in DIR/*.crt (a CA's, or a self-signed \
             registry's own); {unverified} skips verification"
        ),
        TlsTrouble::NoTls => {
            format!("{host} serves no TLS: {unverified} lets hoist use plain HTTP with it")
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<StdoutClosed>())
}

/// Render an error chain: `error: first` then `  caused by: next` for each cause that adds
/// something (a cause whose text an earlier line already contains is dropped).
pub fn render_chain(messages: &[String]) -> Vec<String> {
    let (first, causes) = said_once(messages);
    std::iter::once(format!("error: {first}"))
        .chain(causes.iter().map(|c| format!("  caused by: {c}")))
        .collect()
}

/// An error as the JSON progress stream says it: its message and the causes that add
/// something, each made safe to print, as [`render_chain`]'s lines say them.
pub fn said(err: &anyhow::Error) -> (String, Vec<String>) {
    let messages: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    said_once(&messages)
}

/// The messages of a chain sanitized, without those an earlier one already contains: the
/// first, and the causes.
fn said_once(messages: &[String]) -> (String, Vec<String>) {
    let mut shown: Vec<String> = Vec::new();
    for message in messages {
        let clean = sanitize(message);
        if clean.is_empty() || shown.iter().any(|s| s.contains(&clean)) {
            continue;
        }
        shown.push(clean);
    }
    if shown.is_empty() {
        return ("unknown failure".to_string(), Vec::new());
    }
    let first = shown.remove(0);
    (first, shown)
}

/// Longest message line shown; longer ones are cut (a server may send anything).
const MAX_MESSAGE: usize = 600;

/// Make one message safe to print: credentials in URLs redacted, HTML bodies replaced by a note,
/// control characters (ANSI escapes and bidirectional controls included) removed, whitespace
/// collapsed, length bounded.
pub fn sanitize(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let mut text = if let Some(at) = ["<!doctype", "<html", "<head", "<body", "<center>"]
        .iter()
        .filter_map(|tag| lower.find(tag))
        .min()
    {
        let before = message[..at].trim_end();
        let note = "(an HTML error page from the server was omitted)";
        if before.is_empty() {
            note.to_string()
        } else {
            format!("{before} {note}")
        }
    } else {
        message.to_string()
    };
    text = redact_url_credentials(&text);
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c.is_control() || is_bidi_control(c) {
            continue;
        }
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
    let out = out.trim().to_string();
    if out.chars().count() > MAX_MESSAGE {
        let cut: String = out.chars().take(MAX_MESSAGE).collect();
        format!("{cut}...")
    } else {
        out
    }
}

/// Unicode's bidirectional controls (marks, embeddings, overrides, isolates): invisible, yet
/// they make a terminal show the text after them reordered, so a server's message could
/// display as something else than what it says ("Trojan Source", CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Replace `user:pass@` in `scheme://user:pass@host` with `***@`.
pub fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_others_1() {
        let err = anyhow::Error::new(UsageError("bad flag".into()));
        assert_eq!(
            outcome(&err),
            Outcome::Fail {
                code: EXIT_USAGE,
                lines: vec!["error: bad flag".into()]
            }
        );
        let err = anyhow::anyhow!("boom").context("pushing app");
        let Outcome::Fail { code, lines } = outcome(&err) else {
            panic!("not a broken pipe");
        };
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(lines, vec!["error: pushing app", "  caused by: boom"]);
        let said = said(&anyhow::anyhow!("boom\x1b[2J").context("pushing app: boom\x1b[2J"));
        assert_eq!(said, ("pushing app: boom[2J".to_string(), Vec::new()));
        let said = said_once(&[]);
        assert_eq!(said, ("unknown failure".to_string(), Vec::new()));
    }

    #[test]
    fn only_a_closed_stdout_is_success() {
        let pipe = || io::Error::new(io::ErrorKind::BrokenPipe, "pipe");
        let err = stdout_result(Err(pipe()), "the archive")
            .expect_err("a closed pipe is an error value")
            .context("copying app");
        assert_eq!(outcome(&err), Outcome::BrokenPipe);

        // A registry that hangs up mid-upload also gives EPIPE: that push failed.
        let err = anyhow::Error::new(pipe()).context("uploading layer 3");
        let Outcome::Fail { code, lines } = outcome(&err) else {
            panic!("a broken connection to a registry was taken for a closed stdout");
        };
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(lines[0], "error: uploading layer 3");

        // Any other stdout failure is reported, with what was being written.
        let full = io::Error::new(io::ErrorKind::StorageFull, "no space");
        let err = stdout_result(Err(full), "the archive").expect_err("fails");
        let Outcome::Fail { lines, .. } = outcome(&err) else {
            panic!("a full disk is not a closed pipe");
        };
        assert_eq!(lines[0], "error: writing the archive to stdout");
        assert!(stdout_result(Ok(()), "x").is_ok());
    }

    /// A signal decides the exit code, also when the command ended on a closed stdout
    /// (which used to exit 0 before the signal was asked about).
    #[test]
    fn a_signal_wins_over_a_broken_pipe_and_a_failure() {
        let fail = |code| Outcome::Fail {
            code,
            lines: Vec::new(),
        };
        assert_eq!(exit_code(&Outcome::BrokenPipe, None), EXIT_OK);
        assert_eq!(exit_code(&Outcome::BrokenPipe, Some(130)), 130);
        assert_eq!(exit_code(&Outcome::BrokenPipe, Some(143)), 143);
        assert_eq!(exit_code(&fail(EXIT_FAILURE), None), EXIT_FAILURE);
        assert_eq!(exit_code(&fail(EXIT_USAGE), None), EXIT_USAGE);
        assert_eq!(exit_code(&fail(EXIT_FAILURE), Some(130)), 130);
    }

    #[test]
    fn tls_trouble_names_the_flags_that_fix_it() {
        assert_eq!(
            authority("http://127.0.0.1:15443/v2/team/t/blobs/uploads/"),
            Some("127.0.0.1:15443")
        );
        assert_eq!(authority("https://[::1]:5000"), Some("[::1]:5000"));
        assert_eq!(authority("nonsense"), None);

        // Regression: plain HTTP to a TLS-only loopback registry ended in a 400 and "it may
        // need HTTPS with a trusted certificate", which named no flag.
        let hint = tls_hint(TlsTrouble::HttpsOnly, Some("127.0.0.1:15443"));
        for flag in [
            "--cert-dir DIR",
            "--tls-verify=false",
            "--insecure-registry 127.0.0.1:15443",
            "plain HTTP",
        ] {
            assert!(hint.contains(flag), "{flag}: {hint}");
        }
        let hint = tls_hint(TlsTrouble::Untrusted, Some("reg.example"));
        assert!(
            hint.contains("--cert-dir DIR") && hint.contains("self-signed"),
            "{hint}"
        );
        assert!(hint.contains("--insecure-registry reg.example"), "{hint}");
        let hint = tls_hint(TlsTrouble::NoTls, None);
        assert!(hint.contains("--insecure-registry HOST[:PORT]"), "{hint}");
        assert!(!hint.contains("--cert-dir"), "{hint}");
    }

    #[test]
    fn repeated_causes_are_said_once() {
        let lines = render_chain(&[
            "uploading layer: connection reset".into(),
            "connection reset".into(),
            "os error 104".into(),
        ]);
        assert_eq!(
            lines,
            vec![
                "error: uploading layer: connection reset",
                "  caused by: os error 104"
            ]
        );
    }

    #[test]
    fn a_cause_said_by_any_earlier_line_is_dropped() {
        let lines = render_chain(&[
            "network error: cannot connect: Connection refused (os error 111)".into(),
            "tcp connect error".into(),
            "Connection refused (os error 111)".into(),
        ]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[1], "  caused by: tcp connect error");
    }

    #[test]
    fn html_is_never_printed() {
        let body = "registry said 413: <html>\r\n<head><title>413 Request Entity Too Large</title></head>\n<body><center><h1>413</h1></center><hr><center>nginx</center></body></html>";
        let clean = sanitize(body);
        assert!(!clean.contains('<'), "{clean}");
        assert!(clean.starts_with("registry said 413:"), "{clean}");
        assert!(clean.contains("HTML"), "{clean}");
        assert!(sanitize("<!DOCTYPE html><p>x</p>").starts_with("(an HTML"));
    }

    #[test]
    fn credentials_and_escapes_removed() {
        let clean = sanitize("GET https://bob:hunter2@reg.example:5000/v2/ failed\x1b[2K\x07");
        assert_eq!(clean, "GET https://***@reg.example:5000/v2/ failed[2K");
        assert!(!clean.contains("hunter2"));
        assert_eq!(
            redact_url_credentials("a http://h/x and https://t@h2/y"),
            "a http://h/x and https://***@h2/y"
        );
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_MESSAGE + 3);
    }

    #[test]
    fn bidi_controls_cannot_reorder_what_is_shown() {
        // A registry message that would display as "denied: see https://example.com/fix".
        let hostile =
            "denied: see https://\u{202e}moc.elpmaxe\u{202c}/fix\u{2066}x\u{2069}\u{200f}";
        assert_eq!(sanitize(hostile), "denied: see https://moc.elpmaxe/fixx");
        // Right-to-left text itself is kept.
        assert_eq!(sanitize("שלום"), "שלום");
    }
}
