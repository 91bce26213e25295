//! Running a validated [`Job`]: each command builds library objects from the [`Config`] and
//! reports through a [`Reporter`]. Transfer logic lives in the libraries, not here.

pub mod cache;
pub mod simulate;

use std::io::Write;

use anyhow::{Context, bail};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::config::{Config, Job};
use crate::progress::{Progress, Reporter};
use crate::transport::Location;

/// Run `job`.
///
/// # Errors
/// Whatever failed, with context; [`crate::errors::outcome`] turns it into an exit code.
pub fn run(config: &Config, job: Job) -> anyhow::Result<()> {
    match job {
        Job::Completions(shell) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hoist", &mut out);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|()| stdout.flush())
                .context("writing completions to stdout")
        }
        Job::CachePrune { all } => {
            let report = cache::prune(&config.cache_dir, all)?;
            if config.verbosity >= 0 {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{report}").context("writing to stdout")?;
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
        Job::Inspect { source, raw: _ } => {
            bail!(unavailable("inspect", &source, None))
        }
        Job::Copy {
            source,
            destination,
        } => {
            let progress = Progress::start(config.progress);
            let _reporter: Reporter = progress.reporter();
            progress.finish();
            bail!(unavailable("copy", &source, Some(&destination)))
        }
    }
}

/// The message for a transport this build cannot serve yet, naming the library it waits for.
fn unavailable(command: &str, source: &Location, destination: Option<&Location>) -> String {
    let needs = |l: &Location| match l {
        Location::DockerDaemon { .. } | Location::DockerArchive { .. } => "hoist-docker",
        Location::Oci { .. } => "hoist-oci's image layout",
        Location::Registry { .. } => "hoist-registry",
        Location::Rootfs { .. } => "hoist-unpack",
    };
    match destination {
        Some(d) => format!(
            "{command} from {}: to {}: is not wired up in this build yet (needs {} and {})",
            source.transport(),
            d.transport(),
            needs(source),
            needs(d)
        ),
        None => format!(
            "{command} of {}: images is not wired up in this build yet (needs {})",
            source.transport(),
            needs(source)
        ),
    }
}
