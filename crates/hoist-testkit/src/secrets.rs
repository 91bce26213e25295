//! Leak scanning for the whole suite: every credential the kit hands out is written to a ledger,
//! and [`scan`] looks for ledger entries, the run's sentinel, and `Authorization`/`Bearer`
//! values in captured output.
//!
//! `cargo xtask ci` sets [`LEDGER_ENV`] to a fresh directory and [`SENTINEL_ENV`] to a random
//! word for the test run. Token servers record the passwords they accept (and the base64 of
//! `user:password` a Basic header would carry) and every token they issue; htpasswd registries
//! record their passwords; [`secret`] makes a password that contains the sentinel; the end-to-end
//! tests copy each `hoist` run's output into the same directory with [`capture_output`]. After
//! the tests, `ci` scans the captured outputs and the JUnit report (which stores every test's
//! stdout and stderr) and fails on any hit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Directory the ledger and captured outputs go to (unset: nothing is recorded).
pub const LEDGER_ENV: &str = "HOIST_SECRET_LEDGER";
/// The run's sentinel word, part of every password [`secret`] makes.
pub const SENTINEL_ENV: &str = "HOIST_SECRET_SENTINEL";
/// Ledger entries shorter than this are not scanned for (a test's `"pw"` would match anywhere).
pub const MIN_SECRET_LEN: usize = 8;

const LEDGER_FILE_PREFIX: &str = "ledger-";
const OUTPUT_FILE_PREFIX: &str = "output-";

/// The run's sentinel: [`SENTINEL_ENV`], or a fixed word outside `ci`.
pub fn sentinel() -> String {
    std::env::var(SENTINEL_ENV)
        .ok()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .unwrap_or_else(|| "hoist-sentinel-0000".to_string())
}

/// A password for `label` that carries the run's sentinel (and is recorded in the ledger).
pub fn secret(label: &str) -> String {
    let s = format!("{label}-{}", sentinel());
    record(&s);
    s
}

/// Record a secret the kit handed out (when [`LEDGER_ENV`] is set).
pub fn record(secret: &str) {
    if secret.len() < MIN_SECRET_LEN || secret.contains('\n') {
        return;
    }
    append(LEDGER_FILE_PREFIX, "txt", &format!("{secret}\n"));
}

/// Record a username and password: the password and the base64 a Basic header carries.
pub fn record_login(user: &str, password: &str) {
    record(password);
    record(&STANDARD.encode(format!("{user}:{password}")));
}

/// Keep a copy of a process's output for the end-of-run scan (when [`LEDGER_ENV`] is set).
pub fn capture_output(what: &str, stdout: &[u8], stderr: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = ledger_dir() else { return };
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(
        "{OUTPUT_FILE_PREFIX}{}-{n}.log",
        std::process::id()
    ));
    let mut text = format!("===== {what}\n").into_bytes();
    text.extend_from_slice(stdout);
    text.extend_from_slice(b"\n===== stderr\n");
    text.extend_from_slice(stderr);
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(path, text));
}

fn ledger_dir() -> Option<PathBuf> {
    std::env::var_os(LEDGER_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

fn append(prefix: &str, ext: &str, line: &str) {
    let Some(dir) = ledger_dir() else { return };
    let path = dir.join(format!("{prefix}{}.{ext}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(line.as_bytes())
    });
}

/// One leak found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Where: the file (or label) scanned.
    pub source: String,
    /// What matched: `ledger secret`, `sentinel`, `Authorization header` or `Bearer token`.
    pub what: &'static str,
    /// The line around the hit with the secret itself replaced by `***`.
    pub context: String,
}

/// Find leaks in `text`: any of `secrets` (entries shorter than [`MIN_SECRET_LEN`] ignored),
/// the `sentinel`, an `Authorization: Basic|Bearer <value>` header, or a `Bearer <token>` value
/// (a challenge's `Bearer realm=...` is not one).
pub fn scan(source: &str, text: &str, secrets: &[String], sentinel: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    for line in text.lines() {
        // `start` and `start + len` are character boundaries: both come from matches.
        let mut found = |what: &'static str, start: usize, len: usize| {
            let end = (start + len).min(line.len());
            let from = floor(line, start.saturating_sub(60));
            let to = floor(line, end + 60).max(end);
            leaks.push(Leak {
                source: source.to_string(),
                what,
                context: format!("{}***{}", &line[from..start], &line[end..to]),
            });
        };
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            if let Some(at) = line.find(s.as_str()) {
                found("ledger secret", at, s.len());
            }
        }
        if sentinel.len() >= MIN_SECRET_LEN
            && let Some(at) = line.find(sentinel)
        {
            found("sentinel", at, sentinel.len());
        }
        let lower = line.to_ascii_lowercase();
        for (at, _) in lower.match_indices("authorization:") {
            let rest = &line[at + "authorization:".len()..];
            let value = rest.trim_start();
            let offset = line.len() - value.len();
            if let Some(len) = credential_after_scheme(value) {
                found("Authorization header", offset, len);
            }
        }
        for (at, _) in lower.match_indices("bearer ") {
            let value = &line[at..];
            if let Some(len) = credential_after_scheme(value)
                && !lower[..at].trim_end().ends_with("authorization:")
            {
                found("Bearer token", at, len);
            }
        }
    }
    leaks
}

/// With `value` starting at a scheme (`Basic` or `Bearer`, any case), the length of scheme and
/// credential when a credential-looking run (8+ token characters, not a `key=` parameter)
/// follows.
fn credential_after_scheme(value: &str) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    let scheme = ["basic ", "bearer "]
        .into_iter()
        .find(|s| lower.starts_with(s))?;
    let rest = value[scheme.len()..].trim_start();
    let skipped = value.len() - rest.len();
    let token_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b))
        .count();
    let token = &rest[..token_len];
    // `Bearer realm="..."`-style parameters are not credentials.
    let param = token.find('=').is_some_and(|i| {
        token[..i].bytes().all(|b| b.is_ascii_alphabetic()) && !token[i + 1..].starts_with('=')
    }) || rest[token_len..].starts_with('"');
    (token_len >= MIN_SECRET_LEN && !param).then_some(skipped + token_len)
}

fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Every secret recorded in the ledger directory `dir`.
pub fn ledger_secrets(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in files_with_prefix(dir, LEDGER_FILE_PREFIX) {
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.extend(text.lines().map(str::to_owned));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every captured output file in the ledger directory `dir`.
pub fn captured_outputs(dir: &Path) -> Vec<PathBuf> {
    files_with_prefix(dir, OUTPUT_FILE_PREFIX)
}

fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "leakcheck-5f1e2d3c";

    #[test]
    fn planted_leaks_are_found_and_clean_text_passes() {
        let secrets = vec!["Sup3r-Secret-pw".to_string(), "pw".to_string()];
        let clean = "pushing sha256:abc done\n\
                     www-authenticate: Bearer realm=\"https://auth/token\",service=\"r\"\n\
                     Authorization: <redacted>\nauthorization: Sensitive\n\
                     the pw is not scanned (too short)\n";
        assert_eq!(scan("clean", clean, &secrets, SENTINEL), Vec::new());

        let planted = [
            (
                "error: login as deploy with Sup3r-Secret-pw failed",
                "ledger secret",
            ),
            ("password app-leakcheck-5f1e2d3c in a panic", "sentinel"),
            (
                "> authorization: Basic ZGVwbG95OnNlY3JldA==",
                "Authorization header",
            ),
            (
                "AUTHORIZATION:Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig",
                "Authorization header",
            ),
            (
                "retrying with Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
                "Bearer token",
            ),
        ];
        for (line, what) in planted {
            let text = format!("first line\n{line}\nlast line\n");
            let leaks = scan("planted", &text, &secrets, SENTINEL);
            assert_eq!(leaks.len(), 1, "{line}: {leaks:?}");
            assert_eq!(leaks[0].what, what, "{line}");
            assert!(leaks[0].context.contains("***"), "{leaks:?}");
            assert!(!leaks[0].context.contains("Sup3r-Secret-pw"), "{leaks:?}");
            assert!(!leaks[0].context.contains(SENTINEL), "{leaks:?}");
        }
    }

    #[test]
    fn ledger_and_captures_round_trip_through_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ledger-1.txt"), "aaaaaaaaaa\nbbbbbbbbbb\n").expect("w");
        std::fs::write(dir.path().join("ledger-2.txt"), "aaaaaaaaaa\n").expect("w");
        std::fs::write(dir.path().join("output-1-0.log"), "x").expect("w");
        std::fs::write(dir.path().join("other.txt"), "cccccccccc").expect("w");
        assert_eq!(
            ledger_secrets(dir.path()),
            vec!["aaaaaaaaaa".to_string(), "bbbbbbbbbb".to_string()]
        );
        assert_eq!(
            captured_outputs(dir.path()),
            vec![dir.path().join("output-1-0.log")]
        );
        // Multi-byte text around a hit is cut on character boundaries.
        let text = format!("{}aaaaaaaaaa{}", "é".repeat(40), "ü".repeat(40));
        let leaks = scan("utf8", &text, &ledger_secrets(dir.path()), SENTINEL);
        assert_eq!(leaks.len(), 1);
    }
}
