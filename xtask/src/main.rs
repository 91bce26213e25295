//! Project automation for hoist, run as `cargo xtask <command>`.
//!
//! - `ci`: the one test command (installs system packages the tests need, then fmt, clippy,
//!   rustdoc, tidy, cargo-deny, every test, the secret scan and a short fuzz run).
//! - `demo`: the README's main job end to end (registry behind a 64 MiB proxy, skopeo vs hoist).
//! - `bench`: hoist against skopeo, docker, umoci and the shell, as whole processes.
//! - `fuzz`: run the cargo-fuzz targets in `fuzz/` briefly (nightly toolchain).
//! - `tidy`: structural checks (dependency direction, libraries that package on their own,
//!   `//!` docs on every source file).
//! - `__measure` (hidden): the launcher that `bench` and `demo` measure every command through
//!   ([`bench::launcher`]).

mod bench;
mod ci;
mod demo;
mod fuzz;
mod interrupt;
mod sys;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // First, before anything grows this process: the launcher's address space is what every
    // measured command's peak RSS starts from.
    if args.first().is_some_and(|a| a == bench::launcher::COMMAND) {
        return bench::launcher::main(&args[1..]);
    }
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "ci" => ci::run(rest),
        "tidy" => tidy::run(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "demo" => demo::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("unknown xtask command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {cmd}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci      install the system packages tests need, then fmt, clippy, doc, tidy, deny, all tests
  tidy    check dependency direction, that libraries package on their own, and //! docs
  demo    push/pull/unpack a ~1 GiB image through a 64 MiB-limit proxy, next to skopeo
  bench   [--scenario NAME] [--runs N] [--size SIZE]: hoist against the peers, side by side
  fuzz    [TARGET] [--time S]: run the cargo-fuzz targets (nightly) for S seconds each";
