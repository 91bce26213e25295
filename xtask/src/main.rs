//! Project automation for hoist, run as `cargo xtask <command>`.
//!
//! - `ci`: the one test command (installs system packages the tests need, then fmt, clippy, tidy,
//!   cargo-deny and every test).
//! - `fuzz`: run the cargo-fuzz targets in `fuzz/` briefly (nightly toolchain).
//! - `tidy`: structural checks (dependency direction, `//!` docs on every source file).

mod ci;
mod fuzz;
mod sys;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "ci" => ci::run(rest),
        "tidy" => tidy::run(rest),
        "fuzz" => fuzz::run(rest),
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
  ci      install the system packages tests need, then fmt, clippy, tidy, deny and all tests
  tidy    check dependency direction and that every source file has a //! doc
  fuzz    [TARGET] [--time S]: run the cargo-fuzz targets (nightly) for S seconds each";
