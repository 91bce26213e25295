//! The `hoist` command line: glue that parses, validates, builds library objects and reports.
//!
//! `main` parses with clap ([`cli`]), validates into a [`config::Config`] and [`config::Job`]
//! ([`config`]), runs the job ([`commands`]) and turns its error into one clear message and an
//! exit code ([`errors`]): 0 success, 1 failure, 2 usage error, 128 plus the signal's number
//! (130, 143) for a command a signal stopped ([`interrupt::exit_code`]).

mod cli;
mod commands;
mod config;
mod errors;
mod interrupt;
mod progress;
mod size;
mod transport;

use std::io::{BufRead, IsTerminal, Write};

use crate::config::Environment;
use crate::errors::Outcome;

fn main() {
    bound_malloc_arenas();
    let code = real_main();
    std::process::exit(code);
}

/// glibc gives each new thread its own malloc arena (up to 8 per core), and tokio's blocking
/// pool starts threads as file reads, spools and compressions come and go: the longer a transfer
/// runs, the more arenas hold freed buffers, and peak RSS creeps up with the image size. Two
/// arenas kept it flat (measured with `cargo xtask bench --scenario scale`: RSS(4x)/RSS(1x) 1.10
/// before, 1.03 with two arenas); one arena also takes 0.5-2.5 MiB off every peak, at no CPU
/// cost measurable here (1 GiB, alternated runs with `MALLOC_ARENA_MAX` 2 then 1: pull 15.9-17.5
/// -> 14.2-14.8 MiB, zstd unpack 15.8 -> 13.3, push 13.1 -> 12.5, daemon push 17.3 -> 16.4;
/// CPU seconds within run-to-run noise). Our threads allocate a few large buffers each, not
/// many small ones, so one arena's lock is not contended. `MALLOC_ARENA_MAX`, when set, still
/// wins.
///
/// A fixed 128 KiB mmap threshold (`M_MMAP_THRESHOLD`) was tried and left out: it returns freed
/// transfer buffers to the OS, so peak RSS fell by 1.5-2.5 MiB (1 GiB pull 16.4 -> 14.1 MiB,
/// daemon push 15.5 -> 13.4), but every buffer then became a fresh mapping to fault in and
/// zero, and CPU per GiB rose with it (push 1.2 -> 2.7 s, daemon push 7.5 -> 11.5 s; `cargo
/// xtask bench`, quiet machine, 2026-11-23).
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread exists; mallopt only
        // changes an allocator tunable and reports failure by its return value (ignored: the
        // default is merely less frugal).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn real_main() -> i32 {
    let cli = match cli::Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    // With `--progress json` everything hoist says on stderr is JSON: the error too, and logs.
    let json = cli.global.progress == cli::ProgressArg::Json;
    let mut read_line = || {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line)
    };
    let env = Environment {
        xdg_cache_home: std::env::var_os("XDG_CACHE_HOME").map(Into::into),
        home: std::env::var_os("HOME").map(Into::into),
        registry_auth_file: std::env::var_os("REGISTRY_AUTH_FILE")
            .filter(|v| !v.is_empty())
            .map(Into::into),
        stderr_is_tty: std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        stdout_is_tty: std::io::stdout().is_terminal(),
        stdin_is_tty: std::io::stdin().is_terminal(),
        read_stdin_line: &mut read_line,
    };
    let result = config::validate(cli, env)
        .map_err(anyhow::Error::new)
        .and_then(|(config, job)| {
            init_logging(config.verbosity, json);
            for note in &config.notes {
                tracing::warn!("{note}");
            }
            commands::run(&config, job)
        });
    let Err(err) = result else {
        return errors::EXIT_OK;
    };
    let outcome = errors::outcome(&err);
    // Stopped by a signal: the exit code says so, whatever failed on the way out (a closed
    // stdout too: the signal reached the reader of a pipe as well).
    let code = errors::exit_code(&outcome, interrupt::exit_code());
    match outcome {
        Outcome::BrokenPipe => code,
        Outcome::Fail { lines, .. } => {
            let mut stderr = std::io::stderr().lock();
            if json {
                let (message, causes) = errors::said(&err);
                // A copy's own failure ended its events already, in their `finish`.
                if !progress::reported(&message, &causes) {
                    let line = progress::plain::error_line(&message, &causes);
                    let _ = writeln!(stderr, "{line}");
                }
                return code;
            }
            for line in lines {
                let _ = writeln!(stderr, "{line}");
            }
            code
        }
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace, `-q` errors only;
/// `RUST_LOG`, when set, decides instead. With `json`, each is a JSON `log` event
/// ([`progress::log::JsonLog`]).
fn init_logging(verbosity: i8, json: bool) {
    use tracing_subscriber::EnvFilter;
    // The registry's warnings (retries, 413 shrinks) reach the user as progress notes already.
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "warn,hoist_registry=error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match json {
        true => logs.event_format(progress::log::JsonLog).try_init(),
        false => logs
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(verbosity >= 2)
            .try_init(),
    };
}
