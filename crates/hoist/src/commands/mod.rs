//! Running a validated [`Job`]: each command builds library objects from the [`Config`] and
//! reports through a [`Reporter`]. Transfer logic lives in the libraries, not here.

pub mod all_tags;
pub mod artifact;
pub mod cache;
pub mod copy;
pub mod daemon;
pub mod daemon_push;
pub mod export_cache;
pub mod flatten;
pub mod format;
pub mod index_only;
pub mod inspect;
pub mod local;
pub mod login;
pub mod multi;
pub mod push_group;
pub mod recompress;
pub mod registry;
pub mod remote;
pub mod simulate;
pub mod whole_file;

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::config::{Config, Job};
use crate::errors;
use crate::progress::{Progress, Reporter};
use crate::transport::Location;

/// Run `job`.
///
/// # Errors
/// Whatever failed, with context; [`crate::errors::outcome`] turns it into an exit code.
pub fn run(config: &Config, job: Job) -> anyhow::Result<()> {
    match job {
        Job::Tags { reference } => {
            let runtime = runtime()?;
            let tags = runtime.block_on(crate::interrupt::interruptible(
                registry::list_tags(config, &reference),
                std::time::Duration::ZERO,
                crate::interrupt::STARTS_OVER,
            ))?;
            let mut stdout = std::io::stdout().lock();
            let written = tags
                .iter()
                .try_for_each(|t| writeln!(stdout, "{t}"))
                .and_then(|()| stdout.flush());
            errors::stdout_result(written, "the tags")
        }
        Job::Login {
            server,
            username,
            password,
        } => login::login(config, &server, username, password),
        Job::Logout { server } => login::logout(config, server.as_ref()),
        Job::Delete { reference } => {
            let runtime = runtime()?;
            let digest = runtime.block_on(crate::interrupt::interruptible(
                registry::delete(config, &reference),
                std::time::Duration::ZERO,
                crate::interrupt::STARTS_OVER,
            ))?;
            if config.verbosity >= 0 {
                // On stderr, as progress is: stdout stays empty, as skopeo's and crane's do.
                let deleted = format!(
                    "deleted {}/{}@{digest}",
                    reference.registry(),
                    reference.repository()
                );
                crate::progress::say(config.progress, &deleted);
            }
            Ok(())
        }
        Job::CopyTags {
            source,
            destination,
            filter,
        } => {
            note_compression_scope(config, &source, &destination);
            all_tags::run(config, &source, &destination, &filter)
        }
        Job::Completions(shell) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hoist", &mut out);
            let mut stdout = std::io::stdout().lock();
            let written = stdout.write_all(&out).and_then(|()| stdout.flush());
            errors::stdout_result(written, "completions")
        }
        Job::CachePrune { all } => {
            let report = cache::prune(&config.cache_dir, all)?;
            if config.verbosity >= 0 {
                let mut stdout = std::io::stdout().lock();
                errors::stdout_result(writeln!(stdout, "{report}"), "the report")?;
            }
            Ok(())
        }
        Job::DebugProgress {
            layers,
            size,
            speed,
            fail,
        } => {
            let progress = Progress::start(config.progress);
            let result = simulate::run(
                simulate::Simulation {
                    layers,
                    size,
                    speed,
                    concurrency: config.concurrency,
                    chunk: config.chunk_size,
                    fail,
                },
                &progress.reporter(),
            );
            progress.finish();
            result
        }
        Job::Digest { source } => {
            let runtime = runtime()?;
            let digest = runtime.block_on(crate::interrupt::interruptible(
                inspect::digest(config, &source),
                std::time::Duration::ZERO,
                crate::interrupt::STARTS_OVER,
            ))?;
            let mut stdout = std::io::stdout().lock();
            let written = writeln!(stdout, "{digest}").and_then(|()| stdout.flush());
            errors::stdout_result(written, "the digest")
        }
        Job::Inspect {
            source,
            raw,
            config: config_only,
            json,
        } => {
            let runtime = runtime()?;
            let shown = match (config_only, raw, json) {
                (true, _, _) => inspect::Shown::Config,
                (false, true, _) => inspect::Shown::Manifest,
                (false, false, true) => inspect::Shown::Json,
                (false, false, false) => inspect::Shown::Summary,
            };
            // An archive or daemon image is spooled to the cache first: an interruption lets
            // that fail and remove its transit copy, as a copy's does.
            let text = runtime.block_on(crate::interrupt::interruptible(
                inspect::run(config, &source, shown),
                crate::interrupt::CLEANUP_GRACE,
                crate::interrupt::STARTS_OVER,
            ))?;
            let mut stdout = std::io::stdout().lock();
            let written = stdout.write_all(&text).and_then(|()| stdout.flush());
            errors::stdout_result(written, "the inspection")
        }
        Job::Copy {
            source,
            destination,
        } => {
            note_compression_scope(config, &source, &destination);
            let progress = Progress::start(config.progress);
            let reporter: Reporter = progress.reporter();
            let operation = match (&source, &destination) {
                (Location::Registry { .. }, Location::Registry { .. }) => "copy",
                (_, Location::Registry { .. }) => "push",
                (Location::Registry { .. }, Location::Rootfs { .. }) => "unpack",
                (Location::Registry { .. }, _) => "pull",
                (_, Location::Rootfs { .. }) => "unpack",
                (_, Location::RootfsTar { .. }) => "flatten",
                _ => "copy",
            };
            let result = copy::run(config, &source, &destination, operation, &reporter);
            drop(reporter);
            progress.finish();
            match (result?, &config.digest_file) {
                (Some(digest), Some(path)) => write_digest_file(path, &digest),
                (None, Some(path)) => anyhow::bail!(
                    "the copy to {destination} wrote no manifest, so no digest went to {}",
                    path.display()
                ),
                (_, None) => Ok(()),
            }
        }
    }
}

/// Write `--digestfile`: the digest alone (`sha256:HEX`, no newline, as skopeo writes it),
/// under its name only once whole.
fn write_digest_file(path: &std::path::Path, digest: &hoist_oci::Digest) -> anyhow::Result<()> {
    let written = whole_file::WholeFile::create(path).and_then(|mut file| {
        file.file_mut().write_all(digest.to_string().as_bytes())?;
        file.commit()
    });
    written.with_context(|| {
        format!(
            "the image was copied ({digest}), but writing its digest to {} failed",
            path.display()
        )
    })
}

/// Between registries and layouts, `--compression` alone changes only plain layers: say so
/// when it was typed without `--recompress`, for a user expecting skopeo's
/// `--dest-compress-format` (set in the environment, it is a standing choice: no note).
fn note_compression_scope(config: &Config, source: &Location, destination: &Location) {
    if config.compression_flag_given
        && !config.recompress
        && recompress::applies(source, destination)
    {
        tracing::warn!(
            "--compression {} applies here only to layers stored uncompressed; the others are \
             copied as they are (add --recompress to change them too)",
            config.compression
        );
    }
}

/// The async runtime for commands that talk to registries or the daemon: two workers (the
/// machines hoist targets are small; transfers are I/O bound).
///
/// # Errors
/// When the OS refuses threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
