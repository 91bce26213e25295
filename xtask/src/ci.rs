//! `cargo xtask ci`: the project's one test command.
//!
//! On a fresh Debian machine (root, apt reachable) it installs the system packages the tests use,
//! then runs, in order: `cargo fmt --check`, clippy with `-D warnings`, rustdoc with `-D
//! warnings` (the library crates' public docs, then every crate's private items too), `tidy`,
//! cargo-deny (bans, licenses, sources; advisories only when the advisory database is present,
//! since these machines cannot fetch it), every test (nextest when installed, else `cargo
//! test`) plus doc tests, a scan of the tests' output for leaked secrets, and each fuzz target
//! for a few seconds.
//!
//! The test step runs with a secret ledger (`hoist_testkit::secrets`): every password and token
//! the test kit hands out is recorded, each `hoist` run's output is kept, and nextest writes a
//! JUnit report holding every test's stdout and stderr. After the tests all of it is scanned for
//! those secrets, the run's random sentinel, and `Authorization`/`Bearer` values; a hit fails CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hoist_testkit::secrets;

use crate::sys::{self, TEST_PACKAGES};

/// How long CI runs each fuzz target; `cargo xtask fuzz --time S` runs longer by hand.
const FUZZ_SECONDS: &str = "10";

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask ci` takes no arguments (got {arg:?})");
    }
    let root = sys::workspace_root();
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let step = |name: &str| eprintln!("\n==> [{:>4}s] {name}", started.elapsed().as_secs());

    step("system packages");
    sys::ensure_packages(TEST_PACKAGES)?;

    step("rustfmt");
    sys::run(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]),
    )?;

    step("clippy");
    sys::run(Command::new(&cargo).current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("rustdoc (library crates, then every crate's private items; warnings denied)");
    // Broken intra-doc links and bad doc syntax are what a downstream user of one crate reads;
    // the private items' docs are what a contributor reads.
    for extra in [&["--lib"][..], &["--document-private-items"][..]] {
        sys::run(
            Command::new(&cargo)
                .current_dir(&root)
                .env("RUSTDOCFLAGS", "-D warnings")
                .args(["doc", "--workspace", "--no-deps", "--locked"])
                .args(extra),
        )?;
    }

    step("tidy");
    crate::tidy::run(&[])?;

    step("cargo-deny");
    deny(&cargo, &root)?;

    step("tests");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let ledger = target.join("secret-scan");
    let _ = std::fs::remove_dir_all(&ledger);
    std::fs::create_dir_all(&ledger).with_context(|| format!("creating {}", ledger.display()))?;
    let sentinel = new_sentinel();
    let junit = target.join("nextest").join("ci").join("junit.xml");
    let _ = std::fs::remove_file(&junit);
    let nextest = sys::have("cargo-nextest");
    let tests = if nextest {
        sys::run(
            Command::new(&cargo)
                .current_dir(&root)
                .env(secrets::LEDGER_ENV, &ledger)
                .env(secrets::SENTINEL_ENV, &sentinel)
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--locked",
                    "--no-fail-fast",
                    "--profile",
                    "ci",
                ]),
        )
        .and_then(|()| {
            sys::run(Command::new(&cargo).current_dir(&root).args([
                "test",
                "--workspace",
                "--locked",
                "--doc",
            ]))
        })
    } else {
        sys::run(
            Command::new(&cargo)
                .current_dir(&root)
                .env(secrets::LEDGER_ENV, &ledger)
                .env(secrets::SENTINEL_ENV, &sentinel)
                .args(["test", "--workspace", "--locked", "--no-fail-fast"]),
        )
    };
    step("secret scan of the suite's output");
    // Scanned whether or not the tests passed: a failing test's output leaks just the same.
    let scan = secret_scan(&ledger, nextest.then_some(junit.as_path()), &sentinel);
    tests?;
    scan?;
    step("fuzz (each target briefly)");
    crate::fuzz::run(&["--time".to_owned(), FUZZ_SECONDS.to_owned()])?;

    eprintln!("\nci: all steps passed in {}s", started.elapsed().as_secs());
    Ok(())
}

/// A word that appears nowhere unless a test kit password carrying it leaks.
fn new_sentinel() -> String {
    use sha2::Digest as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{}:{}", now.as_nanos(), std::process::id());
    let hash = sha2::Sha256::digest(seed.as_bytes());
    format!("hoistleak{}", hex::encode(&hash[..8]))
}

/// Scan the ledger's captured outputs and the JUnit report (when given: it must exist) for the
/// recorded secrets, the sentinel and credential headers; fail on any hit.
fn secret_scan(ledger: &Path, junit: Option<&Path>, sentinel: &str) -> Result<()> {
    let recorded = secrets::ledger_secrets(ledger);
    let mut sources = Vec::new();
    for path in secrets::captured_outputs(ledger) {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        sources.push((path, String::from_utf8_lossy(&bytes).into_owned()));
    }
    let captured = sources.len();
    if let Some(junit) = junit {
        let xml = std::fs::read_to_string(junit).with_context(|| {
            format!(
                "reading the JUnit report {} (the scan needs every test's output)",
                junit.display()
            )
        })?;
        sources.push((junit.to_path_buf(), xml_unescape(&xml)));
    }
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for (path, text) in &sources {
        bytes += text.len();
        leaks.extend(secrets::scan(
            &path.display().to_string(),
            text,
            &recorded,
            sentinel,
        ));
    }
    eprintln!(
        "secret scan: {} recorded secrets and the sentinel, {captured} captured hoist runs{}, {bytes} bytes: {} leaks",
        recorded.len(),
        if junit.is_some() {
            " and the JUnit report"
        } else {
            ""
        },
        leaks.len()
    );
    if recorded.is_empty() {
        eprintln!("WARNING: no secret was recorded: the scan only looked for credential headers");
    }
    if leaks.is_empty() {
        return Ok(());
    }
    for leak in leaks.iter().take(20) {
        eprintln!("LEAK ({}) in {}: {}", leak.what, leak.source, leak.context);
    }
    bail!(
        "{} secret(s) found in the test suite's output (shown above with the secret as ***)",
        leaks.len()
    )
}

/// The text of an XML document's character data, entities resolved (enough for JUnit output).
fn xml_unescape(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn deny(cargo: &str, root: &std::path::Path) -> Result<()> {
    if !sys::have("cargo-deny") {
        eprintln!("cargo-deny is missing: installing it from crates.io (a few minutes)");
        sys::run(Command::new(cargo).args(["install", "--locked", "cargo-deny"]))?;
    }
    let mut checks = vec!["bans", "licenses", "sources"];
    if advisory_db_present() {
        checks.insert(0, "advisories");
    } else {
        eprintln!(
            "NOTE: the advisory database is not present on this machine (it must be fetched from \
             the internet, which is unreachable here): skipping `cargo deny check advisories`."
        );
    }
    sys::run(
        Command::new(cargo)
            .current_dir(root)
            .args(["deny", "check"])
            .args(&checks),
    )
}

fn advisory_db_present() -> bool {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(dbs) = home.map(|h| h.join("advisory-dbs")) else {
        return false;
    };
    // A failed fetch leaves a lock file or an empty directory behind; only a database clone
    // (a directory with a `crates/` tree) counts.
    std::fs::read_dir(dbs)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.path().join("crates").is_dir())
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_fails_on_a_planted_leak_and_passes_clean_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sentinel = "hoistleak0123456789abcdef";
        std::fs::write(dir.path().join("ledger-7.txt"), "pw-&-Sekrit-42\n").expect("ledger");
        std::fs::write(
            dir.path().join("output-7-0.log"),
            "===== hoist copy a b\n\n===== stderr\nfinished in 0:01\n",
        )
        .expect("output");
        let junit = dir.path().join("junit.xml");
        let clean = "<testsuites><system-err>retrying in 1s &amp; Bearer realm=&quot;x&quot;\
                     </system-err></testsuites>";
        std::fs::write(&junit, clean).expect("junit");
        secret_scan(dir.path(), Some(&junit), sentinel).expect("clean output passes");

        // The ledger secret, escaped by the XML writer, is still found.
        std::fs::write(&junit, "<system-out>login pw-&amp;-Sekrit-42</system-out>").expect("w");
        let err = secret_scan(dir.path(), Some(&junit), sentinel).expect_err("planted secret");
        assert!(err.to_string().contains("1 secret(s)"), "{err}");

        // A sentinel password in a captured hoist run.
        std::fs::write(&junit, clean).expect("junit");
        std::fs::write(
            dir.path().join("output-7-1.log"),
            format!("error: bad password app-{sentinel}"),
        )
        .expect("output");
        secret_scan(dir.path(), Some(&junit), sentinel).expect_err("planted sentinel");
        std::fs::remove_file(dir.path().join("output-7-1.log")).expect("rm");

        // An Authorization header anywhere.
        std::fs::write(
            &junit,
            "<system-err>&gt; authorization: Basic ZGVwbG95OnB3LTEyMzQ=</system-err>",
        )
        .expect("w");
        secret_scan(dir.path(), Some(&junit), sentinel).expect_err("planted header");

        // A missing report is an error, not a silent pass.
        std::fs::remove_file(&junit).expect("rm");
        secret_scan(dir.path(), Some(&junit), sentinel).expect_err("no report");
    }

    #[test]
    fn xml_entities_are_resolved() {
        assert_eq!(
            xml_unescape("a&amp;b &lt;c&gt; &quot;d&apos; &#65;&#x42; & &bogus; x"),
            "a&b <c> \"d' AB & &bogus; x"
        );
    }
}
