//! `cargo xtask ci`: the project's one test command.
//!
//! It runs as root on a fresh Debian machine (and refuses to start otherwise): it installs the
//! system packages the tests use, then runs, in order: `cargo fmt --check`, clippy with `-D
//! warnings`, rustdoc with `-D warnings` (the library crates' public docs, then every crate's
//! private items too), `tidy`, cargo-deny (bans, licenses, sources, and advisories when the
//! advisory database can be fetched or an earlier copy is on disk; otherwise the skip says
//! why), every test with nextest (installed when missing), the doc tests (within 30 minutes),
//! a scan of the tests' output for leaked secrets, and each fuzz target for a few seconds.
//!
//! Every test runs with `CI=true`, whatever the caller's environment: a test that cannot run
//! here fails instead of printing `SKIP`. And with a secret ledger (`hoist_testkit::secrets`):
//! every password and token the test kit hands out is recorded, each `hoist` run's output is
//! kept, nextest writes a JUnit report holding every test's stdout and stderr, and the doc
//! tests' output goes to a log. After the tests all of it is scanned for those secrets, the
//! run's random sentinel, and `Authorization`/`Bearer` values; a hit fails CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hoist_testkit::secrets;

use crate::sys::{self, TEST_PACKAGES};

/// How long CI runs each fuzz target; `cargo xtask fuzz --time S` runs longer by hand.
const FUZZ_SECONDS: &str = "10";
/// The longest the doc tests may take (nextest's `ci` profile limits each other test).
const DOC_TEST_LIMIT: Duration = Duration::from_secs(30 * 60);

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask ci` takes no arguments (got {arg:?})");
    }
    require_root(sys::is_root())?;
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
    // nextest's store is `target/nextest` under the workspace root whatever
    // `CARGO_TARGET_DIR` says (`[store] dir` in .config/nextest.toml).
    let junit = root
        .join("target")
        .join("nextest")
        .join("ci")
        .join("junit.xml");
    let _ = std::fs::remove_file(&junit);
    // nextest, never a plain `cargo test`: its JUnit report holds every test's output for the
    // secret scan.
    if !sys::have("cargo-nextest") {
        eprintln!("cargo-nextest is missing: installing it from crates.io (a few minutes)");
        sys::run(Command::new(&cargo).args(["install", "--locked", "cargo-nextest"]))?;
    }
    let tests = sys::run(test_command(&cargo, &root, &ledger, &sentinel).args([
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "--profile",
        "ci",
    ]));
    step("doc tests");
    let doc_log = target.join("doc-tests.log");
    let doc = doc_tests(&cargo, &root, &ledger, &sentinel, &doc_log);
    step("secret scan of the suite's output");
    // Scanned whether or not the tests passed: a failing test's output leaks just the same.
    let scan = secret_scan(&ledger, &junit, &[doc_log.as_path()], &sentinel);
    tests?;
    doc?;
    scan?;
    step("fuzz (each target briefly)");
    crate::fuzz::run(&["--time".to_owned(), FUZZ_SECONDS.to_owned()])?;

    eprintln!("\nci: all steps passed in {}s", started.elapsed().as_secs());
    Ok(())
}

/// A cargo command for a test step, in the workspace root, with the environment every test runs
/// in: `CI=true`, so a test that cannot run here fails instead of printing `SKIP`, and the
/// secret ledger and sentinel of [`hoist_testkit::secrets`].
fn test_command(cargo: &str, root: &Path, ledger: &Path, sentinel: &str) -> Command {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .env("CI", "true")
        .env(secrets::LEDGER_ENV, ledger)
        .env(secrets::SENTINEL_ENV, sentinel);
    cmd
}

/// The doc tests, as [`test_command`], within [`DOC_TEST_LIMIT`], their output written to
/// `log` (for the secret scan) and then echoed.
fn doc_tests(cargo: &str, root: &Path, ledger: &Path, sentinel: &str, log: &Path) -> Result<()> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = test_command(cargo, root, ledger, sentinel);
    cmd.args(["test", "--workspace", "--locked", "--doc"])
        .stdout(out)
        .stderr(err);
    let result = sys::run_with_timeout(&mut cmd, DOC_TEST_LIMIT);
    eprint!("{}", String::from_utf8_lossy(&std::fs::read(log)?));
    result
}

/// Refuse to start unless root: the package step installs with apt, and with `CI=true` every
/// test that needs root (the private dockerd, `chown`) fails rather than skips.
fn require_root(is_root: bool) -> Result<()> {
    if is_root {
        return Ok(());
    }
    bail!(
        "`cargo xtask ci` must run as root, on a fresh Debian machine: it installs the system \
         packages the tests need with apt, and it runs every test with CI=true, where a test \
         that needs root (a private dockerd, ownership checks) fails instead of skipping. Run \
         it as root, or run single steps by hand (cargo nextest run, cargo clippy ...)."
    )
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

/// Scan the ledger's captured outputs, the JUnit report and the plain `logs` (each must exist)
/// for the recorded secrets, the sentinel and credential headers; fail on any hit.
fn secret_scan(ledger: &Path, junit: &Path, logs: &[&Path], sentinel: &str) -> Result<()> {
    let recorded = secrets::ledger_secrets(ledger);
    let mut sources = Vec::new();
    for path in secrets::captured_outputs(ledger) {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        sources.push((path, String::from_utf8_lossy(&bytes).into_owned()));
    }
    let captured = sources.len();
    let xml = std::fs::read_to_string(junit).with_context(|| {
        format!(
            "reading the JUnit report {} (the scan needs every test's output)",
            junit.display()
        )
    })?;
    sources.push((junit.to_path_buf(), xml_unescape(&xml)));
    for log in logs {
        let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
        sources.push((
            log.to_path_buf(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
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
        "secret scan: {} recorded secrets and the sentinel, {captured} captured hoist runs, the \
         JUnit report and {} log(s), {bytes} bytes: {} leaks",
        recorded.len(),
        logs.len(),
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

fn deny(cargo: &str, root: &Path) -> Result<()> {
    if !sys::have("cargo-deny") {
        eprintln!("cargo-deny is missing: installing it from crates.io (a few minutes)");
        sys::run(Command::new(cargo).args(["install", "--locked", "cargo-deny"]))?;
    }
    let deny = || {
        let mut cmd = Command::new(cargo);
        cmd.current_dir(root).arg("deny");
        cmd
    };
    let others = ["bans", "licenses", "sources"];
    match advisories_plan(fetch_advisory_db(cargo, root), advisory_db_present()) {
        Advisories::Check => sys::run(deny().arg("check").arg("advisories").args(others)),
        Advisories::CheckOffline(why) => {
            eprintln!(
                "NOTE: `cargo deny fetch db` failed ({why}): checking advisories against the \
                 copy of the advisory database already on this machine, which may be out of date."
            );
            sys::run(deny().args(["--offline", "check", "advisories"]))?;
            sys::run(deny().arg("check").args(others))
        }
        Advisories::Skip(why) => {
            eprintln!(
                "SKIPPED `cargo deny check advisories`: it needs the RustSec advisory database \
                 (https://github.com/RustSec/advisory-db), `cargo deny fetch db` could not get it \
                 ({why}), and no earlier copy is under $CARGO_HOME/advisory-dbs. Bans, licenses \
                 and sources are checked; advisories are next checked on a machine with access \
                 to github.com."
            );
            sys::run(deny().arg("check").args(others))
        }
    }
}

/// What to do about `cargo deny check advisories`, which needs the RustSec advisory database.
#[derive(Debug, PartialEq, Eq)]
enum Advisories {
    /// The database was just fetched: check against it.
    Check,
    /// The fetch failed (why), but an earlier copy is on disk: check against it, offline.
    CheckOffline(String),
    /// The fetch failed (why) and there is no copy: skip the check, saying why (CI does not
    /// fail for want of a network).
    Skip(String),
}

/// The plan, from the result of `cargo deny fetch db` and whether a copy is on disk.
fn advisories_plan(fetch: Result<(), String>, local_copy: bool) -> Advisories {
    match (fetch, local_copy) {
        (Ok(()), _) => Advisories::Check,
        (Err(why), true) => Advisories::CheckOffline(why),
        (Err(why), false) => Advisories::Skip(why),
    }
}

/// Fetch (or update) the advisory database with `cargo deny fetch db`, within two minutes; the
/// error is the reason it gave.
fn fetch_advisory_db(cargo: &str, root: &Path) -> Result<(), String> {
    let log = tempfile::NamedTempFile::new().map_err(|e| format!("a temp file: {e}"))?;
    let err = log.reopen().map_err(|e| format!("a temp file: {e}"))?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["deny", "fetch", "db"])
        .stdout(std::process::Stdio::null())
        .stderr(err);
    let result = sys::run_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
    result.map_err(|e| fetch_failure(&text).unwrap_or_else(|| format!("{e:#}")))
}

/// The line of a failed `cargo deny fetch db` that says why: git's `fatal:` line, else the last
/// error line, else the last line.
fn fetch_failure(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error = |l: &&&str| l.contains("ERROR") || l.contains("error");
    lines
        .iter()
        .find(|l| l.starts_with("fatal:"))
        .or_else(|| lines.iter().rev().find(error))
        .or(lines.last())
        .map(|l| l.to_string())
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
        secret_scan(dir.path(), &junit, &[], sentinel).expect("clean output passes");

        // The ledger secret, escaped by the XML writer, is still found.
        std::fs::write(&junit, "<system-out>login pw-&amp;-Sekrit-42</system-out>").expect("w");
        let err = secret_scan(dir.path(), &junit, &[], sentinel).expect_err("planted secret");
        assert!(err.to_string().contains("1 secret(s)"), "{err}");

        // A sentinel password in a captured hoist run.
        std::fs::write(&junit, clean).expect("junit");
        std::fs::write(
            dir.path().join("output-7-1.log"),
            format!("error: bad password app-{sentinel}"),
        )
        .expect("output");
        secret_scan(dir.path(), &junit, &[], sentinel).expect_err("planted sentinel");
        std::fs::remove_file(dir.path().join("output-7-1.log")).expect("rm");

        // An Authorization header anywhere.
        std::fs::write(
            &junit,
            "<system-err>&gt; authorization: Basic ZGVwbG95OnB3LTEyMzQ=</system-err>",
        )
        .expect("w");
        secret_scan(dir.path(), &junit, &[], sentinel).expect_err("planted header");

        // The doc tests' log is scanned too.
        std::fs::write(&junit, clean).expect("junit");
        let doc_log = dir.path().join("doc-tests.log");
        std::fs::write(&doc_log, "test src/lib.rs - x ... ok\n").expect("log");
        secret_scan(dir.path(), &junit, &[&doc_log], sentinel).expect("clean log");
        std::fs::write(&doc_log, "login pw-&-Sekrit-42 failed\n").expect("log");
        secret_scan(dir.path(), &junit, &[&doc_log], sentinel).expect_err("secret in the log");
        std::fs::remove_file(&doc_log).expect("rm");
        secret_scan(dir.path(), &junit, &[&doc_log], sentinel).expect_err("no log");

        // A missing report is an error, not a silent pass.
        std::fs::remove_file(&junit).expect("rm");
        secret_scan(dir.path(), &junit, &[], sentinel).expect_err("no report");
    }

    #[test]
    fn every_test_command_runs_with_ci_true_and_the_ledger() {
        let cmd = test_command(
            "cargo",
            Path::new("/w"),
            Path::new("/t/ledger"),
            "hoistleak1",
        );
        let envs: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        let want = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(envs.contains(&want("CI", "true")), "{envs:?}");
        assert!(
            envs.contains(&want(secrets::LEDGER_ENV, "/t/ledger")),
            "{envs:?}"
        );
        assert!(
            envs.contains(&want(secrets::SENTINEL_ENV, "hoistleak1")),
            "{envs:?}"
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/w")));
    }

    #[test]
    fn ci_refuses_to_start_unless_root() {
        require_root(true).expect("root");
        let err = require_root(false).expect_err("not root");
        assert!(err.to_string().contains("must run as root"), "{err}");
    }

    #[test]
    fn advisories_are_checked_when_the_database_can_be_had_and_skipped_saying_why() {
        // Verbatim from cargo-deny 0.20.2 on a machine without DNS.
        let stderr = "2026-11-25 06:54:32 [ERROR] failed to fetch database: failed to fetch \
            advisory database https://github.com/RustSec/advisory-db with cli: failed to clone\n\
            Cloning into '/root/.cargo/advisory-dbs/advisory-db-3157b0e258782691'...\n\
            fatal: unable to access 'https://github.com/RustSec/advisory-db/': Could not \
            resolve host: github.com\n\n";
        let why = fetch_failure(stderr).expect("a reason");
        assert_eq!(
            why,
            "fatal: unable to access 'https://github.com/RustSec/advisory-db/': Could not \
             resolve host: github.com"
        );
        assert_eq!(
            fetch_failure("[ERROR] no such source\nbye\n").as_deref(),
            Some("[ERROR] no such source")
        );
        assert_eq!(fetch_failure(""), None);
        assert_eq!(advisories_plan(Ok(()), false), Advisories::Check);
        assert_eq!(
            advisories_plan(Err(why.clone()), true),
            Advisories::CheckOffline(why.clone())
        );
        assert_eq!(
            advisories_plan(Err(why.clone()), false),
            Advisories::Skip(why)
        );
    }

    #[test]
    fn xml_entities_are_resolved() {
        assert_eq!(
            xml_unescape("a&amp;b &lt;c&gt; &quot;d&apos; &#65;&#x42; & &bogus; x"),
            "a&b <c> \"d' AB & &bogus; x"
        );
    }
}
