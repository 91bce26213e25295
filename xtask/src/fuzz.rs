//! `cargo xtask fuzz [TARGET] [--time S]`: run the cargo-fuzz targets in `fuzz/`.
//!
//! cargo-fuzz needs the nightly toolchain, which these machines carry beside the pinned stable one;
//! the fuzz crate is its own workspace so the stable build never sees it. Without a target, every
//! target runs for `--time` seconds (default 10). Seeds committed under `fuzz/seeds/TARGET` are
//! read alongside the working corpus in `fuzz/corpus/TARGET`. A crash fails the command and leaves
//! the input under `fuzz/artifacts/TARGET/`; turn it into a regression test in the owning crate.

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
        None => list_targets()?,
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
