//! `cargo xtask ci`: the project's one test command.
//!
//! On a fresh Debian machine (root, apt reachable) it installs the system packages the tests use,
//! then runs, in order: `cargo fmt --check`, clippy with `-D warnings`, `tidy`, cargo-deny (bans,
//! licenses, sources; advisories only when the advisory database is present, since these machines
//! cannot fetch it), every test (nextest when installed, else `cargo test`) plus doc tests, and
//! each fuzz target for a few seconds.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

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

    step("tidy");
    crate::tidy::run(&[])?;

    step("cargo-deny");
    deny(&cargo, &root)?;

    step("tests");
    if sys::have("cargo-nextest") {
        sys::run(Command::new(&cargo).current_dir(&root).args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "--profile",
            "ci",
        ]))?;
        sys::run(Command::new(&cargo).current_dir(&root).args([
            "test",
            "--workspace",
            "--locked",
            "--doc",
        ]))?;
    } else {
        sys::run(Command::new(&cargo).current_dir(&root).args([
            "test",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]))?;
    }
    step("fuzz (each target briefly)");
    crate::fuzz::run(&["--time".to_owned(), FUZZ_SECONDS.to_owned()])?;

    eprintln!("\nci: all steps passed in {}s", started.elapsed().as_secs());
    Ok(())
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
