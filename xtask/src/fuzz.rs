//! `cargo xtask fuzz [TARGET] [--time S]`: run the cargo-fuzz targets in `fuzz/`.
//!
//! cargo-fuzz needs the nightly toolchain, which these machines carry beside the pinned stable
//! one; the fuzz crate is its own workspace so the stable build never sees it. Without a target,
//! every target runs for `--time` seconds (default 10), and `cargo fuzz list` must name exactly
//! the targets with a source under `fuzz/fuzz_targets/` (a run that would fuzz nothing fails).
//! Seeds committed under `fuzz/seeds/TARGET` are read alongside the working corpus in
//! `fuzz/corpus/TARGET`. A crash fails the command and leaves the input under
//! `fuzz/artifacts/TARGET/`; turn it into a regression test in the owning crate.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::sys;

pub fn run(args: &[String]) -> Result<()> {
    let mut target = None;
    let mut seconds: u64 = 10;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                let v = it.next().context("--time needs a number of seconds")?;
                seconds = v.parse().with_context(|| format!("--time {v:?}"))?;
            }
            s if s.starts_with('-') => bail!("unknown option {s:?}"),
            s => target = Some(s.to_owned()),
        }
    }
    ensure_cargo_fuzz()?;
    let root = sys::workspace_root();
    let targets = match target {
        Some(t) => vec![t],
        None => {
            let listed = list_targets()?;
            check_targets(&listed, &target_files(&root.join("fuzz/fuzz_targets"))?)?;
            listed
        }
    };
    for t in &targets {
        let corpus = root.join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            .args(["+nightly", "fuzz", "run", "--fuzz-dir", "fuzz", t])
            .arg(&corpus);
        let seeds = root.join("fuzz/seeds").join(t);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--").arg(format!("-max_total_time={seconds}"));
        sys::run(&mut cmd).with_context(|| {
            format!("fuzz target {t} failed: the crashing input is under fuzz/artifacts/{t}/")
        })?;
    }
    eprintln!(
        "fuzz: {} target(s) ran {seconds}s each without a crash",
        targets.len()
    );
    Ok(())
}

fn list_targets() -> Result<Vec<String>> {
    let out = Command::new("cargo")
        .current_dir(sys::workspace_root())
        .args(["+nightly", "fuzz", "list", "--fuzz-dir", "fuzz"])
        .output()
        .context("cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The names of the target sources in `dir` (`fuzz/fuzz_targets/NAME.rs`).
fn target_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            names.extend(path.file_stem().and_then(|s| s.to_str()).map(str::to_owned));
        }
    }
    Ok(names)
}

/// Fail unless `cargo fuzz list` named targets, exactly those with a source file: a run that
/// fuzzed nothing, or skipped a target, must not pass.
fn check_targets(listed: &[String], files: &[String]) -> Result<()> {
    if listed.is_empty() {
        bail!("`cargo fuzz list` named no targets: nothing would be fuzzed");
    }
    let unlisted: Vec<&String> = files.iter().filter(|f| !listed.contains(f)).collect();
    let sourceless: Vec<&String> = listed.iter().filter(|t| !files.contains(t)).collect();
    if !unlisted.is_empty() || !sourceless.is_empty() {
        bail!(
            "`cargo fuzz list` does not match fuzz/fuzz_targets/*.rs: not listed {unlisted:?}, \
             listed without a source file {sourceless:?} (each target needs a [[bin]] in \
             fuzz/Cargo.toml named after its file)"
        );
    }
    Ok(())
}

/// Whether the nightly toolchain and cargo-fuzz are usable; installs cargo-fuzz when missing.
pub fn ensure_cargo_fuzz() -> Result<()> {
    let nightly = Command::new("rustc")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!(
            "the nightly toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly"
        );
    }
    let have_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_fuzz {
        eprintln!("cargo-fuzz is missing: installing it from crates.io");
        sys::run(Command::new("cargo").args(["+nightly", "install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_run_that_would_fuzz_nothing_or_miss_a_target_fails() {
        let files = names(&["digest", "manifest"]);
        check_targets(&names(&["digest", "manifest"]), &files).expect("all listed");
        let err = check_targets(&[], &files).expect_err("nothing listed");
        assert!(err.to_string().contains("no targets"), "{err}");
        let err = check_targets(&names(&["digest"]), &files).expect_err("one missing");
        assert!(
            err.to_string().contains(r#"not listed ["manifest"]"#),
            "{err}"
        );
        let err = check_targets(&names(&["digest", "manifest", "old"]), &files)
            .expect_err("a stale [[bin]]");
        assert!(err.to_string().contains(r#"source file ["old"]"#), "{err}");
        // The repository's own targets are all files named after them.
        let root = sys::workspace_root();
        let mut here = target_files(&root.join("fuzz/fuzz_targets")).expect("fuzz targets");
        here.sort();
        assert!(here.contains(&"digest".to_string()), "{here:?}");
    }
}
