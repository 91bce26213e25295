//! The validated command line: [`Config`] (global settings) and [`Job`] (what to do), built from
//! [`crate::cli::Cli`] by [`validate`].
//!
//! Everything a user can get wrong is caught here, before any work starts, as a [`UsageError`]
//! (exit code 2). The rest of the binary never looks at raw strings again.

use std::fmt;
use std::path::PathBuf;

use hoist_oci::{Compression, Platform};

use crate::cli::{CacheCommand, Cli, Command, CompressionArg, GlobalArgs, ProgressArg};
use crate::size::parse_size;
use crate::transport::{DefaultTransport, Location, check_pair, valid_tag};

/// A mistake on the command line: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Registry credentials given on the command line. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (`-q`).
    Quiet,
    /// Live lines redrawn in place on a terminal.
    Tty,
    /// One line per state change.
    Plain,
    /// One JSON object per event.
    Json,
}

/// Global settings, validated.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "fields are read as the library transports get wired"
)]
pub struct Config {
    /// The platform to select from an index; `None` means the host's.
    pub platform: Option<Platform>,
    /// Compression for layers hoist compresses itself.
    pub compression: Compression,
    /// Its level, checked against the algorithm's range.
    pub compression_level: Option<i32>,
    /// Bytes per upload request.
    pub chunk_size: u64,
    /// Blobs in flight at once (at least 1).
    pub concurrency: usize,
    /// Retries per request.
    pub retries: u32,
    /// How long a registry request may make no progress.
    pub timeout: std::time::Duration,
    /// Registries spoken to without TLS verification, as HOST[:PORT].
    pub insecure_registries: Vec<String>,
    /// Extra certificates.
    pub cert_dir: Option<PathBuf>,
    /// Explicit credentials, each for one registry (`host[:port]` as the registry client names
    /// it); a registry not listed gets docker's config.json and helpers.
    pub registry_creds: Vec<(String, Credentials)>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// -1 quiet, 0 default, 1.. more verbose.
    pub verbosity: i8,
    /// The cache directory.
    pub cache_dir: PathBuf,
    /// Where to write the image's runtime settings after unpacking into a rootfs.
    pub runtime_config: Option<PathBuf>,
    /// Per-layer caps when unpacking.
    pub unpack_limits: hoist_unpack::Limits,
}

impl Config {
    /// The level to compress with `compression`: the configured one when it is the configured
    /// codec, otherwise the codec's default (`None`).
    pub fn level_for(&self, compression: Compression) -> Option<i32> {
        if compression == self.compression {
            self.compression_level
        } else {
            None
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Move an image (copy and every short form but inspect).
    Copy {
        /// Where it comes from.
        source: Location,
        /// Where it goes.
        destination: Location,
    },
    /// Describe an image.
    Inspect {
        /// The image.
        source: Location,
        /// Print the manifest bytes only.
        raw: bool,
    },
    /// Print completions.
    Completions(clap_complete::Shell),
    /// Clean the cache.
    CachePrune {
        /// Also forget compressed-layer mappings.
        all: bool,
    },
    /// Simulated push for the progress display.
    DebugProgress {
        /// Layers.
        layers: usize,
        /// Bytes per layer.
        size: u64,
        /// Bytes per second per layer.
        speed: u64,
        /// End in failure.
        fail: bool,
    },
}

/// Facts about the process environment that validation needs, passed in so it stays testable.
pub struct Environment<'a> {
    /// `$XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// Whether stderr is a terminal (and `TERM` is not `dumb`).
    pub stderr_is_tty: bool,
    /// Whether stdout is a terminal (an archive is not written to one).
    pub stdout_is_tty: bool,
    /// Reads one line of stdin (for `--creds-stdin`).
    pub read_stdin_line: &'a mut dyn FnMut() -> std::io::Result<String>,
}

/// The smallest chunk hoist accepts.
pub const MIN_CHUNK: u64 = 64 << 10;
/// The largest chunk hoist accepts.
pub const MAX_CHUNK: u64 = 4 << 30;

/// Validate the parsed command line.
///
/// # Errors
/// A [`UsageError`] describing the first problem found.
pub fn validate(cli: Cli, env: Environment<'_>) -> Result<(Config, Job), UsageError> {
    let runtime_config = match &cli.command {
        Command::Copy { runtime_config, .. } | Command::Unpack { runtime_config, .. } => {
            runtime_config.clone()
        }
        _ => None,
    };
    let job = validate_job(cli.command)?;
    if runtime_config.is_some()
        && !matches!(
            &job,
            Job::Copy {
                destination: Location::Rootfs { .. },
                ..
            }
        )
    {
        return Err(usage(
            "--runtime-config is written next to an unpacked image: use it with a rootfs: destination",
        ));
    }
    if env.stdout_is_tty && matches!(&job, Job::Copy { destination, .. } if destination.is_stdio())
    {
        return Err(usage(
            "refusing to write a docker archive to a terminal: redirect stdout (> image.tar) or \
             name a file (docker-archive:image.tar)",
        ));
    }
    let reads_stdin =
        matches!(&job, Job::Copy { source, .. } | Job::Inspect { source, .. } if source.is_stdio());
    if cli.global.creds_stdin && reads_stdin {
        return Err(usage(
            "--creds-stdin cannot be used when the image is read from stdin (docker-archive:-)",
        ));
    }
    let src_creds = cli.global.src_creds.clone();
    let dest_creds = cli.global.dest_creds.clone();
    let (mut config, creds) = validate_global(cli.global, env)?;
    config.runtime_config = runtime_config;
    config.registry_creds = assign_creds(&job, creds, src_creds, dest_creds)?;
    Ok((config, job))
}

/// Which registry gets which credentials: `--src-creds` the source's, `--dest-creds` the
/// destination's, `--creds` the one registry left, and never one registry's password to
/// another (a copy between two registries must say whose `--creds` are).
fn assign_creds(
    job: &Job,
    creds: Option<Credentials>,
    src: Option<String>,
    dest: Option<String>,
) -> Result<Vec<(String, Credentials)>, UsageError> {
    let registry_of = |l: &Location| match l {
        Location::Registry { reference } => Some(reference.registry_api_host().to_string()),
        _ => None,
    };
    let (from, to) = match job {
        Job::Copy {
            source,
            destination,
        } => (registry_of(source), registry_of(destination)),
        Job::Inspect { source, .. } => (registry_of(source), None),
        _ => (None, None),
    };
    let mut out: Vec<(String, Credentials)> = Vec::new();
    for (given, host, flag, side) in [
        (src, &from, "--src-creds", "source"),
        (dest, &to, "--dest-creds", "destination"),
    ] {
        if let Some(text) = given {
            let Some(host) = host else {
                return Err(usage(format!("{flag}: the {side} is not a registry")));
            };
            if text.split_once(':').is_none() {
                return Err(usage(format!("{flag} takes USER:PASS")));
            }
            out.push((host.clone(), parse_creds(&text, None)?));
        }
    }
    if let Some(creds) = creds {
        let mut left: Vec<&String> = [&from, &to]
            .into_iter()
            .flatten()
            .filter(|h| !out.iter().any(|(o, _)| o == *h))
            .collect();
        left.dedup();
        match left.as_slice() {
            [] => {}
            [host] => out.push(((*host).clone(), creds)),
            [a, b, ..] => {
                return Err(usage(format!(
                    "--creds would go to both {a} and {b}: say whose they are with --src-creds \
                     or --dest-creds"
                )));
            }
        }
    }
    Ok(out)
}

/// The settings every command shares, and the `--creds` given (placed by [`assign_creds`]
/// once the job says which registries there are).
fn validate_global(
    g: GlobalArgs,
    env: Environment<'_>,
) -> Result<(Config, Option<Credentials>), UsageError> {
    let platform = g
        .platform
        .as_deref()
        .map(|p| Platform::parse(p).map_err(|e| usage(format!("--platform: {e}"))))
        .transpose()?;
    let compression = match g.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    if let Some(level) = g.compression_level {
        check_level(compression, level)?;
    }
    let chunk_size = parse_size(&g.chunk_size).map_err(|e| usage(format!("--chunk-size: {e}")))?;
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(usage(format!(
            "--chunk-size {} is out of range: use 64KiB to 4GiB",
            g.chunk_size
        )));
    }
    if g.concurrency == 0 || g.concurrency > 64 {
        return Err(usage("--concurrency must be between 1 and 64"));
    }
    for host in &g.insecure_registries {
        check_registry_host(host)?;
    }
    let creds = match (g.creds, g.creds_stdin) {
        (None, false) => None,
        (Some(text), false) => Some(parse_creds(&text, None)?),
        (given, true) => {
            if given.as_deref().is_some_and(|c| c.contains(':')) {
                return Err(usage(
                    "--creds-stdin reads the password from stdin; give --creds USER without :PASS",
                ));
            }
            let line = (env.read_stdin_line)()
                .map_err(|e| usage(format!("--creds-stdin: cannot read stdin: {e}")))?;
            let line = line.trim_end_matches(['\n', '\r']);
            Some(parse_creds(line, given.as_deref())?)
        }
    };
    if g.quiet && g.verbose > 0 {
        return Err(usage("-q and -v contradict each other; pick one"));
    }
    let progress = if g.quiet {
        ProgressMode::Quiet
    } else {
        match g.progress {
            // Log lines and a redrawn block do not mix: -v makes `auto` plain.
            ProgressArg::Auto if env.stderr_is_tty && g.verbose == 0 => ProgressMode::Tty,
            ProgressArg::Auto | ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Tty => ProgressMode::Tty,
            ProgressArg::Json => ProgressMode::Json,
        }
    };
    let verbosity = if g.quiet {
        -1
    } else {
        i8::try_from(g.verbose).unwrap_or(i8::MAX)
    };
    let max_bytes = g
        .max_layer_bytes
        .as_deref()
        .map(|s| parse_size(s).map_err(|e| usage(format!("--max-layer-bytes: {e}"))))
        .transpose()?;
    let unpack_limits = hoist_unpack::Limits {
        max_bytes,
        max_entries: g.max_layer_entries,
    };
    let cache_dir = match g.cache_dir {
        Some(dir) => dir,
        None => default_cache_dir(env.xdg_cache_home, env.home).ok_or_else(|| {
            usage("cannot find a cache directory: set --cache-dir, XDG_CACHE_HOME or HOME")
        })?,
    };
    let config = Config {
        platform,
        compression,
        compression_level: g.compression_level,
        chunk_size,
        concurrency: g.concurrency,
        retries: g.retries,
        timeout: std::time::Duration::from_secs(g.timeout),
        insecure_registries: g.insecure_registries,
        cert_dir: g.cert_dir,
        registry_creds: Vec::new(),
        progress,
        verbosity,
        cache_dir,
        runtime_config: None,
        unpack_limits,
    };
    Ok((config, creds))
}

fn validate_job(command: Command) -> Result<Job, UsageError> {
    let parse = |s: &str| Location::parse(s).map_err(|e| usage(e.to_string()));
    let parse_or = |s: &str, d| Location::parse_or(s, d).map_err(|e| usage(e.to_string()));
    let job = match command {
        Command::Copy {
            source,
            destination,
            ..
        } => Job::Copy {
            source: parse(&source)?,
            destination: parse(&destination)?,
        },
        Command::Push { image, reference } => {
            let destination = parse_or(&reference, DefaultTransport::Registry)?;
            if !matches!(destination, Location::Registry { .. }) {
                return Err(usage(format!(
                    "push sends images to a registry, not to `{destination}`; use `hoist copy`"
                )));
            }
            Job::Copy {
                source: parse_or(&image, DefaultTransport::Daemon)?,
                destination,
            }
        }
        Command::Pull { reference, dir } => {
            let source = parse_or(&reference, DefaultTransport::Registry)?;
            let Location::Registry { reference } = &source else {
                return Err(usage(format!(
                    "pull fetches from a registry, not from `{source}`; use `hoist copy`"
                )));
            };
            let tag = reference.tag().map(str::to_string);
            Job::Copy {
                destination: Location::Oci { dir, tag },
                source,
            }
        }
        Command::Unpack { source, dir, .. } => Job::Copy {
            source: parse_or(&source, DefaultTransport::Registry)?,
            destination: Location::Rootfs { dir },
        },
        Command::Export { image, dir } => {
            let source = parse_or(&image, DefaultTransport::Daemon)?;
            let Location::DockerDaemon { name } = &source else {
                return Err(usage(format!(
                    "export reads from the Docker daemon, not from `{source}`; use `hoist copy`"
                )));
            };
            let tag = reference_tag(name);
            Job::Copy {
                destination: Location::Oci { dir, tag },
                source,
            }
        }
        Command::Inspect { source, raw } => {
            let source = parse_or(&source, DefaultTransport::Registry)?;
            if let Location::Rootfs { .. } = source {
                return Err(usage(
                    "rootfs: is a destination only; it cannot be inspected",
                ));
            }
            return Ok(Job::Inspect { source, raw });
        }
        Command::Completions { shell } => return Ok(Job::Completions(shell)),
        Command::Cache {
            action: CacheCommand::Prune { all },
        } => return Ok(Job::CachePrune { all }),
        Command::DebugProgress {
            layers,
            size,
            speed,
            fail,
        } => {
            return Ok(Job::DebugProgress {
                layers,
                size: parse_size(&size).map_err(usage)?,
                speed: parse_size(&speed).map_err(usage)?.max(1),
                fail,
            });
        }
    };
    if let Job::Copy {
        source,
        destination,
    } = &job
    {
        check_pair(source, destination).map_err(usage)?;
    }
    Ok(job)
}

/// The tag of a reference (`host:5000/app:1.2` -> `1.2`), `None` for a digest or no tag.
pub fn reference_tag(reference: &str) -> Option<String> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let (_, tag) = last.split_once(':')?;
    valid_tag(tag).then(|| tag.to_string())
}

fn check_level(compression: Compression, level: i32) -> Result<(), UsageError> {
    if compression == Compression::None {
        return Err(usage(
            "--compression-level makes no sense with --compression none",
        ));
    }
    let range = compression.level_range();
    if range.contains(&level) {
        Ok(())
    } else {
        Err(usage(format!(
            "--compression-level {level} is out of range for {compression}: use {} to {}",
            range.start(),
            range.end()
        )))
    }
}

fn check_registry_host(host: &str) -> Result<(), UsageError> {
    let ok = !host.is_empty()
        && !host.contains("://")
        && !host.contains('/')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "--insecure-registry `{host}`: expected HOST[:PORT] without scheme or path"
        )))
    }
}

/// Parse `USER[:PASS]`; with `user` given, `text` is the password alone.
fn parse_creds(text: &str, user: Option<&str>) -> Result<Credentials, UsageError> {
    let (username, password) = match user {
        Some(user) => (user, text),
        None => match text.split_once(':') {
            Some((u, p)) => (u, p),
            None if text.is_empty() => ("", ""),
            None => {
                return Err(usage(
                    "--creds USER without a password needs --creds-stdin to read it",
                ));
            }
        },
    };
    if username.is_empty() {
        return Err(usage("credentials need a user name (USER:PASS)"));
    }
    if password.is_empty() {
        return Err(usage(format!(
            "credentials for `{username}` have an empty password"
        )));
    }
    Ok(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// `$XDG_CACHE_HOME/hoist`, else `$HOME/.cache/hoist` (relative XDG values are ignored, as the
/// spec says).
pub fn default_cache_dir(
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(xdg) = xdg_cache_home.filter(|p| p.is_absolute()) {
        return Some(xdg.join("hoist"));
    }
    home.filter(|p| !p.as_os_str().is_empty())
        .map(|h| h.join(".cache").join("hoist"))
}

/// A valid configuration with its cache in `cache` and these global options, for tests.
#[cfg(test)]
pub fn test_config(cache: &std::path::Path, options: &[&str]) -> Config {
    use clap::Parser;
    let cache = cache.to_string_lossy().into_owned();
    let mut argv = vec!["hoist", "--cache-dir", &cache];
    argv.extend_from_slice(options);
    argv.extend_from_slice(&["push", "a", "b/c"]);
    let cli = Cli::try_parse_from(argv).expect("command line");
    let mut stdin = || Ok(String::new());
    let env = Environment {
        xdg_cache_home: None,
        home: None,
        stderr_is_tty: false,
        stdout_is_tty: false,
        read_stdin_line: &mut stdin,
    };
    validate(cli, env).expect("valid").0
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn run(args: &[&str], stdin: &str, tty: bool) -> Result<(Config, Job), UsageError> {
        let mut argv = vec!["hoist"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?;
        let stdin = stdin.to_string();
        let mut read = move || Ok(stdin.clone());
        validate(
            cli,
            Environment {
                xdg_cache_home: None,
                home: Some("/home/u".into()),
                stderr_is_tty: tty,
                stdout_is_tty: tty,
                read_stdin_line: &mut read,
            },
        )
    }

    fn ok(args: &[&str]) -> (Config, Job) {
        run(args, "", false).expect("valid command line")
    }

    fn err(args: &[&str]) -> String {
        run(args, "", false).expect_err("usage error").0
    }

    #[test]
    fn the_configured_level_belongs_to_the_configured_codec_only() {
        let (config, _) = ok(&[
            "--compression",
            "zstd",
            "--compression-level",
            "9",
            "inspect",
            "oci:x",
        ]);
        assert_eq!(config.level_for(Compression::Zstd), Some(9));
        assert_eq!(config.level_for(Compression::Gzip), None);
        let (config, _) = ok(&["inspect", "oci:x"]);
        assert_eq!(config.level_for(Compression::Gzip), None);
    }

    #[test]
    fn push_defaults_to_daemon_and_registry() {
        let (config, job) = ok(&["push", "app:1", "localhost:5000/app:1"]);
        assert_eq!(
            job,
            Job::Copy {
                source: Location::DockerDaemon {
                    name: "app:1".into()
                },
                destination: Location::Registry {
                    reference: hoist_oci::Reference::parse("localhost:5000/app:1")
                        .expect("reference")
                }
            }
        );
        assert_eq!(config.chunk_size, 32 << 20);
        assert_eq!(config.cache_dir, PathBuf::from("/home/u/.cache/hoist"));
        assert_eq!(config.progress, ProgressMode::Plain);
        assert_eq!(config.compression, Compression::Gzip);
        assert!(err(&["push", "app", "oci:dir"]).contains("use `hoist copy`"));
    }

    #[test]
    fn pull_and_export_tag_the_layout() {
        let (_, job) = ok(&["pull", "h:5000/a/b:v2", "out"]);
        assert_eq!(
            job,
            Job::Copy {
                source: Location::Registry {
                    reference: hoist_oci::Reference::parse("h:5000/a/b:v2").expect("reference")
                },
                destination: Location::Oci {
                    dir: "out".into(),
                    tag: Some("v2".into())
                }
            }
        );
        let (_, job) = ok(&["export", "app:3", "out"]);
        assert!(
            matches!(job, Job::Copy { destination: Location::Oci { tag: Some(t), .. }, .. } if t == "3")
        );
        assert!(err(&["export", "oci:x", "out"]).contains("Docker daemon"));
        assert!(err(&["pull", "docker-daemon:x", "out"]).contains("from a registry"));
    }

    #[test]
    fn copy_checks_pairs_and_transports() {
        assert!(err(&["copy", "rootfs:/a", "oci:/b"]).contains("destination only"));
        assert!(err(&["copy", "nginx:1", "oci:/b"]).contains("no transport"));
        assert!(err(&["inspect", "rootfs:/x"]).contains("destination only"));
        let (_, job) = ok(&["unpack", "oci:l:t", "/r"]);
        assert!(matches!(
            job,
            Job::Copy {
                destination: Location::Rootfs { .. },
                ..
            }
        ));
    }

    #[test]
    fn global_options_validated() {
        let (c, _) = ok(&[
            "--chunk-size",
            "8M",
            "--compression",
            "zstd",
            "--compression-level",
            "19",
            "--platform",
            "linux/arm64/v8",
            "--insecure-registry",
            "localhost:5000",
            "--insecure-registry",
            "[::1]:5000",
            "inspect",
            "oci:x",
        ]);
        assert_eq!(c.chunk_size, 8 << 20);
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.compression_level, Some(19));
        let p = c.platform.expect("platform");
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "arm64"));
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(c.insecure_registries.len(), 2);

        assert!(err(&["--chunk-size", "12 parsecs", "inspect", "oci:x"]).contains("not a size"));
        assert!(err(&["--chunk-size", "1k", "inspect", "oci:x"]).contains("out of range"));
        assert!(err(&["--compression-level", "10", "inspect", "oci:x"]).contains("use 0 to 9"));
        assert!(
            err(&[
                "--compression",
                "none",
                "--compression-level",
                "1",
                "inspect",
                "oci:x"
            ])
            .contains("no sense")
        );
        assert!(err(&["--platform", "amd64", "inspect", "oci:x"]).contains("os/arch"));
        assert!(err(&["--concurrency", "0", "inspect", "oci:x"]).contains("between 1 and 64"));
        assert!(
            err(&["--insecure-registry", "http://h", "inspect", "oci:x"]).contains("HOST[:PORT]")
        );
        assert!(err(&["-q", "-v", "inspect", "oci:x"]).contains("contradict"));
    }

    #[test]
    fn progress_modes() {
        let (c, _) = run(&["inspect", "oci:x"], "", true).expect("tty");
        assert_eq!(c.progress, ProgressMode::Tty);
        let (c, _) = run(&["-v", "inspect", "oci:x"], "", true).expect("tty, verbose");
        assert_eq!(c.progress, ProgressMode::Plain);
        let (c, _) = ok(&["--progress", "json", "inspect", "oci:x"]);
        assert_eq!(c.progress, ProgressMode::Json);
        let (c, _) = ok(&["-q", "--progress", "json", "inspect", "oci:x"]);
        assert_eq!(c.progress, ProgressMode::Quiet);
        assert_eq!(c.verbosity, -1);
        let (c, _) = ok(&["-vv", "inspect", "oci:x"]);
        assert_eq!(c.verbosity, 2);
    }

    #[test]
    fn an_archive_is_not_written_to_a_terminal() {
        let args = ["copy", "oci:x", "docker-archive:-"];
        let e = run(&args, "", true).expect_err("stdout is a terminal");
        assert!(e.0.contains("redirect stdout"), "{e:?}");
        run(&args, "", false).expect("stdout is a pipe or a file");
        run(&["copy", "oci:x", "docker-archive:x.tar"], "", true).expect("a file");
    }

    /// The one registry's credentials of a config.
    fn only_creds(c: &Config) -> (&str, &Credentials) {
        match c.registry_creds.as_slice() {
            [(host, creds)] => (host, creds),
            other => panic!("expected one registry's credentials, got {other:?}"),
        }
    }

    #[test]
    fn credentials() {
        let reg = "docker://reg.example:5000/app:1";
        let (c, _) = ok(&["--creds", "bob:s3cr:et", "inspect", reg]);
        let (host, creds) = only_creds(&c);
        assert_eq!(host, "reg.example:5000");
        assert_eq!(creds.username, "bob");
        assert_eq!(creds.password, "s3cr:et");
        assert!(!format!("{:?}", c.registry_creds).contains("s3cr"));

        let (c, _) = run(
            &["--creds", "bob", "--creds-stdin", "inspect", reg],
            "hunter2\n",
            false,
        )
        .expect("stdin password");
        assert_eq!(only_creds(&c).1.password, "hunter2");
        let (c, _) =
            run(&["--creds-stdin", "inspect", reg], "al:pw\r\n", false).expect("stdin pair");
        assert_eq!(only_creds(&c).1.username, "al");
        // No registry, nobody to give them to.
        let (c, _) = ok(&["--creds", "bob:pw", "inspect", "oci:x"]);
        assert!(c.registry_creds.is_empty());

        assert!(err(&["--creds", "bob", "inspect", "oci:x"]).contains("--creds-stdin"));
        assert!(err(&["--creds", ":pw", "inspect", "oci:x"]).contains("user name"));
        assert!(
            err(&["--creds-stdin", "copy", "docker-archive:-", "oci:x"]).contains("from stdin")
        );
        assert!(
            err(&["--creds", "a:b", "--creds-stdin", "inspect", "oci:x"]).contains("without :PASS")
        );
    }

    #[test]
    fn a_copy_between_registries_keeps_each_password_with_its_registry() {
        let (from, to) = ("docker://src.example/app:1", "docker://dst.example/app:1");
        // --creds for a copy with one registry end goes to that end.
        let (c, _) = ok(&["--creds", "u:p", "copy", "oci:x", to]);
        assert_eq!(only_creds(&c).0, "dst.example");
        let (c, _) = ok(&["--creds", "u:p", "copy", from, "oci:x"]);
        assert_eq!(only_creds(&c).0, "src.example");
        // Docker Hub is named as the registry client names it.
        let (c, _) = ok(&["--creds", "u:p", "copy", "oci:x", "docker://alpine:3"]);
        assert_eq!(only_creds(&c).0, "registry-1.docker.io");
        // Two registries: --creds alone is ambiguous; --src-creds / --dest-creds say whose.
        let e = err(&["--creds", "u:p", "copy", from, to]);
        assert!(
            e.contains("--src-creds") && e.contains("src.example"),
            "{e}"
        );
        let (c, _) = ok(&[
            "--src-creds",
            "a:1",
            "--dest-creds",
            "b:2",
            "copy",
            from,
            to,
        ]);
        let mut got: Vec<(&str, &str)> = c
            .registry_creds
            .iter()
            .map(|(h, c)| (h.as_str(), c.username.as_str()))
            .collect();
        got.sort_unstable();
        assert_eq!(got, vec![("dst.example", "b"), ("src.example", "a")]);
        // --creds fills the end that has none.
        let (c, _) = ok(&["--creds", "b:2", "--src-creds", "a:1", "copy", from, to]);
        assert_eq!(c.registry_creds.len(), 2);
        assert!(c.registry_creds.contains(&(
            "dst.example".into(),
            Credentials {
                username: "b".into(),
                password: "2".into()
            }
        )));
        // Same registry at both ends: one set of credentials is fine.
        let (c, _) = ok(&["--creds", "u:p", "copy", from, "docker://src.example/b:2"]);
        assert_eq!(only_creds(&c).0, "src.example");
        // A side that is not a registry, or no password, is a usage error.
        assert!(err(&["--src-creds", "a:1", "copy", "oci:x", to]).contains("not a registry"));
        assert!(err(&["--dest-creds", "a:1", "copy", from, "oci:x"]).contains("not a registry"));
        assert!(err(&["--dest-creds", "a", "copy", from, to]).contains("USER:PASS"));
    }

    #[test]
    fn cache_dir_resolution() {
        assert_eq!(
            default_cache_dir(Some("/x".into()), Some("/h".into())),
            Some(PathBuf::from("/x/hoist"))
        );
        assert_eq!(
            default_cache_dir(Some("rel".into()), Some("/h".into())),
            Some(PathBuf::from("/h/.cache/hoist"))
        );
        assert_eq!(default_cache_dir(None, None), None);
        let (c, _) = ok(&["--cache-dir", "/c", "cache", "prune"]);
        assert_eq!(c.cache_dir, PathBuf::from("/c"));
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(reference_tag("h:5000/a:1.2").as_deref(), Some("1.2"));
        assert_eq!(reference_tag("h:5000/a"), None);
        assert_eq!(reference_tag("a@sha256:abc"), None);
        assert_eq!(reference_tag("app:latest").as_deref(), Some("latest"));
    }
}
