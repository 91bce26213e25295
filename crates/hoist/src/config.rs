//! The validated command line: [`Config`] (global settings) and [`Job`] (what to do), built from
//! [`crate::cli::Cli`] by [`validate`].
//!
//! Everything a user can get wrong is caught here, before any work starts, as a [`UsageError`]
//! (exit code 2). The rest of the binary never looks at raw strings again.
//!
//! [`validate`] checks what needs the job and the settings together; the parts live beside it:
//! `job` (the subcommand into a [`Job`]), `settings` (the global options into a [`Config`]) and
//! `credentials` (`--creds`, `--src-creds`, `--dest-creds`, and which registry gets which),
//! `tls_verify` (skopeo's `--tls-verify=false` and its `--src-`/`--dest-` forms, as the
//! registries they name insecure), `format` (`--format` and the destinations that take it),
//! `multi_arch` (`--all` and `--multi-arch`, and what goes with them).

mod credentials;
mod format;
mod job;
mod login;
mod multi_arch;
mod settings;
mod tag_filter;
mod tls_verify;

use std::fmt;
use std::path::PathBuf;

use hoist_oci::{Compression, Platform};

pub use self::credentials::Credentials;
pub use self::job::reference_tag;
pub use self::login::LoginServer;
use self::multi_arch::Platforms;
pub use self::tag_filter::TagFilter;
use crate::cli::{Cli, Command};
use crate::transport::Location;

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
    /// Whether the user chose it (`--compression` or `HOIST_COMPRESSION`), which asks for
    /// layers that are otherwise copied as they are stored to be compressed too.
    pub compression_chosen: bool,
    /// Whether `--compression` (or `--dest-compress-format`) was typed, not taken from
    /// `HOIST_COMPRESSION`.
    pub compression_flag_given: bool,
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
    /// Registries spoken to without TLS verification, as `HOST[:PORT]`.
    pub insecure_registries: Vec<String>,
    /// Extra certificates.
    pub cert_dir: Option<PathBuf>,
    /// The one credentials file read instead of searching the default ones (`--authfile`).
    pub auth_file: Option<PathBuf>,
    /// A credentials file for one registry each (`--src-authfile`, `--dest-authfile`), read
    /// for it instead of `auth_file` or the default ones.
    pub registry_auth_files: Vec<(String, PathBuf)>,
    /// Explicit credentials, each for one registry (`host[:port]` as the registry client names
    /// it); a registry not listed gets what the auth files and helpers have for it.
    pub registry_creds: Vec<(String, Credentials)>,
    /// Registries spoken to without credentials (`--src-no-creds`, `--dest-no-creds`).
    pub anonymous_registries: Vec<String>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// -1 quiet, 0 default, 1.. more verbose.
    pub verbosity: i8,
    /// The cache directory.
    pub cache_dir: PathBuf,
    /// Whether registry clients keep upload state in the cache (`uploads/`), for a later run
    /// to resume an interrupted push: only for a job that uploads ([`Job::uploads_blobs`]),
    /// so a read-only one (inspect, tags, digest, pull, delete, login) never needs the cache
    /// to be a usable directory.
    pub keep_upload_state: bool,
    /// Where to write the image's runtime settings after unpacking into a rootfs.
    pub runtime_config: Option<PathBuf>,
    /// Where to write the digest of the manifest a copy wrote (`--digestfile`).
    pub digest_file: Option<PathBuf>,
    /// `--all`: copy every platform of an index and the index itself.
    pub all_platforms: bool,
    /// `--multi-arch index-only`: copy an index alone, its images being at the destination
    /// already; a single image is copied as without it.
    pub index_only: bool,
    /// `--format`: the manifest format written at a registry or layout destination; `None`
    /// copies manifests as they are stored.
    pub manifest_format: Option<hoist_oci::convert::ManifestFormat>,
    /// `--recompress`: layers in another compression than `compression` are recompressed on
    /// their way to a registry or a layout (`manifest_format` is then set).
    pub recompress: bool,
    /// Per-layer caps when unpacking.
    pub unpack_limits: hoist_unpack::Limits,
    /// How to reach the Docker daemon: its address (else `DOCKER_HOST` and the docker
    /// context) and timeouts.
    pub daemon: hoist_docker::ConnectOptions,
    /// A registry client built once and used by every copy of a run that makes many
    /// (`--all-tags`), so credentials, helpers and tokens are asked for once, not per image.
    /// `None`: each call builds its own from the settings above.
    pub registry_client: Option<hoist_registry::Client>,
    /// Warnings about how the command line was read, for `main` to log once logging is set
    /// up (e.g. a `pull` directory that looks like DIR:TAG).
    pub notes: Vec<String>,
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
        /// Print the config bytes only.
        config: bool,
        /// Print the summary as JSON.
        json: bool,
    },
    /// Print the digest of an image's manifest (of its index when it has one, unless a
    /// platform was asked for).
    Digest {
        /// The image: in a registry or a layout.
        source: Location,
    },
    /// Copy every tag of a registry repository or an OCI layout to another (`copy
    /// --all-tags`).
    CopyTags {
        /// The source: a repository or a layout, without a tag or digest.
        source: Location,
        /// The destination: a repository or a layout, without a tag or digest.
        destination: Location,
        /// Which of the source's tags to copy.
        filter: TagFilter,
    },
    /// List a repository's tags.
    Tags {
        /// The repository (no tag, no digest).
        reference: hoist_oci::Reference,
    },
    /// Check credentials with a registry and keep them in an auth file.
    Login {
        /// What they are for.
        server: LoginServer,
        /// The user name; `None` asks for it on the terminal.
        username: Option<String>,
        /// The password (`Debug` shows `***`); `None` asks for it on the terminal (not echoed).
        password: Option<hoist_registry::Secret>,
    },
    /// Remove credentials from an auth file: one registry's (or namespace's), or all.
    Logout {
        /// Whose; `None` for all.
        server: Option<LoginServer>,
    },
    /// Delete the manifest a tag or digest names from its registry.
    Delete {
        /// The image, with a tag or a digest.
        reference: hoist_oci::Reference,
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

impl Job {
    /// The registries (`host[:port]` as the registry client names them) the job reads from
    /// and writes to; `None` for a side that is no registry.
    pub fn registries(&self) -> (Option<String>, Option<String>) {
        let registry_of = |l: &Location| match l {
            Location::Registry { reference } => Some(reference.registry_api_host().to_string()),
            _ => None,
        };
        match self {
            Job::Copy {
                source,
                destination,
            } => (registry_of(source), registry_of(destination)),
            Job::Inspect { source, .. } | Job::Digest { source } => (registry_of(source), None),
            Job::Tags { reference } => (Some(reference.registry_api_host().to_string()), None),
            Job::CopyTags {
                source,
                destination,
                ..
            } => (registry_of(source), registry_of(destination)),
            // A delete changes the registry: it is the side written to.
            Job::Delete { reference } => (None, Some(reference.registry_api_host().to_string())),
            Job::Login { server, .. } => (Some(server.api_host.clone()), None),
            Job::Logout { .. }
            | Job::Completions(_)
            | Job::CachePrune { .. }
            | Job::DebugProgress { .. } => (None, None),
        }
    }

    /// Whether the job may upload blobs to a registry (a copy or push whose destination is
    /// one), and so keep upload state for a later run to resume from.
    pub fn uploads_blobs(&self) -> bool {
        match self {
            Job::Copy { destination, .. } | Job::CopyTags { destination, .. } => {
                matches!(destination, Location::Registry { .. })
            }
            _ => false,
        }
    }
}

/// Facts about the process environment that validation needs, passed in so it stays testable.
pub struct Environment<'a> {
    /// `$XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE` (podman's and skopeo's), when set and not empty.
    pub registry_auth_file: Option<PathBuf>,
    /// Whether stderr is a terminal (and `TERM` is not `dumb`).
    pub stderr_is_tty: bool,
    /// Whether stdout is a terminal (an archive is not written to one).
    pub stdout_is_tty: bool,
    /// Whether stdin is a terminal (an archive is not read from one).
    pub stdin_is_tty: bool,
    /// Reads one line of stdin (for `--creds-stdin`).
    pub read_stdin_line: &'a mut dyn FnMut() -> std::io::Result<String>,
}

/// Validate the parsed command line.
///
/// # Errors
/// A [`UsageError`] describing the first problem found.
pub fn validate(mut cli: Cli, mut env: Environment<'_>) -> Result<(Config, Job), UsageError> {
    let runtime_config = match &cli.command {
        Command::Copy { runtime_config, .. } | Command::Unpack { runtime_config, .. } => {
            runtime_config.clone()
        }
        _ => None,
    };
    let digest_file = match &cli.command {
        Command::Copy { digestfile, .. }
        | Command::Push { digestfile, .. }
        | Command::Pull { digestfile, .. }
        | Command::Export { digestfile, .. } => digestfile.clone(),
        _ => None,
    };
    let manifest_format = match &cli.command {
        Command::Copy { format, .. }
        | Command::Push { format, .. }
        | Command::Pull { format, .. }
        | Command::Export { format, .. } => *format,
        _ => None,
    };
    let recompress = format::recompress_flags(&cli.command, &mut cli.global)?;
    let all_tags = matches!(&cli.command, Command::Copy { all_tags: true, .. });
    let tag_filter = match &cli.command {
        Command::Copy {
            include_tags,
            exclude_tags,
            ..
        } => TagFilter::new(include_tags.as_deref(), exclude_tags.as_deref())?,
        _ => TagFilter::default(),
    };
    let platforms = Platforms::asked(&cli.command)?;
    let colon_note = match &cli.command {
        Command::Pull { dir, .. } | Command::Export { dir, .. } => job::dir_tag_note(dir),
        _ => None,
    };
    let job = job::validate_job(cli.command, &cli.global, &mut env)?;
    let platform_given = settings::platform_given(&cli.global);
    platforms.check(&job, platform_given, recompress, all_tags)?;
    let job = match all_tags {
        true => job::every_tag(job, tag_filter)?,
        false => job,
    };
    if runtime_config.is_some()
        && !matches!(
            &job,
            Job::Copy {
                destination: Location::Rootfs { .. } | Location::RootfsTar { .. },
                ..
            }
        )
    {
        return Err(usage(
            "--runtime-config is written next to an unpacked image: use it with a rootfs: or \
             rootfs-tar: destination",
        ));
    }
    if let (
        Some(runtime),
        Job::Copy {
            destination:
                Location::RootfsTar {
                    path: crate::transport::ArchivePath::File(tar),
                },
            ..
        },
    ) = (&runtime_config, &job)
        && runtime == tar
    {
        return Err(usage(format!(
            "--runtime-config {} names the rootfs-tar: file itself: name another file",
            runtime.display()
        )));
    }
    if let Some(path) = &digest_file {
        check_digest_file(path, &job)?;
    }
    let manifest_format = match manifest_format {
        Some(format) => Some(format::check_format(format, &job, &cli.global, recompress)?),
        None => None,
    };
    let manifest_format = match recompress {
        true => format::check_recompress(&job, manifest_format)?,
        false => manifest_format,
    };
    if env.stdout_is_tty
        && let Job::Copy { destination, .. } = &job
        && destination.is_stdio()
    {
        let (what, named) = match destination {
            Location::RootfsTar { .. } => ("a root filesystem tar", "rootfs-tar:rootfs.tar"),
            _ => ("a docker archive", "docker-archive:image.tar"),
        };
        return Err(usage(format!(
            "refusing to write {what} to a terminal: redirect stdout (> image.tar) or name a \
             file ({named})"
        )));
    }
    let reads_stdin =
        matches!(&job, Job::Copy { source, .. } | Job::Inspect { source, .. } if source.is_stdio());
    if env.stdin_is_tty && reads_stdin {
        return Err(usage(
            "refusing to read a docker archive from a terminal: pipe one in (docker save IMAGE \
             | hoist ...) or name a file (docker-archive:image.tar)",
        ));
    }
    if cli.global.creds_stdin && reads_stdin {
        return Err(usage(
            "--creds-stdin cannot be used when the image is read from stdin (docker-archive:-)",
        ));
    }
    let auth_file = match cli.global.authfile.take() {
        Some(path) => Some((path, "--authfile")),
        None => env
            .registry_auth_file
            .clone()
            .map(|p| (p, "REGISTRY_AUTH_FILE")),
    };
    // A login creates its file.
    if let Some((path, given_by)) = auth_file
        .as_ref()
        .filter(|_| !matches!(job, Job::Login { .. }))
    {
        check_auth_file(path, given_by, &job)?;
    }
    let unverified = tls_verify::unverified_registries(
        &job,
        cli.global.tls_verify,
        cli.global.src_tls_verify,
        cli.global.dest_tls_verify,
    );
    let registry_auth_files = credentials::assign_auth_files(
        &job,
        cli.global.src_authfile.take(),
        cli.global.dest_authfile.take(),
    )?;
    let anonymous = credentials::assign_no_creds(
        &job,
        cli.global.src_no_creds,
        cli.global.dest_no_creds,
        &registry_auth_files,
    )?;
    let side_creds = (cli.global.src_creds.clone(), cli.global.dest_creds.clone());
    let (mut config, creds) = settings::validate_global(cli.global, env)?;
    config.runtime_config = runtime_config;
    config.digest_file = digest_file;
    config.auth_file = auth_file.map(|(path, _)| path);
    config.registry_auth_files = registry_auth_files;
    config.all_platforms = platforms == Platforms::All;
    config.index_only = platforms == Platforms::IndexOnly;
    config.manifest_format = manifest_format;
    config.recompress = recompress;
    config.compression_chosen |= recompress;
    config.registry_creds = credentials::assign_creds(&job, creds, side_creds, &anonymous)?;
    config.anonymous_registries = anonymous;
    config.keep_upload_state = job.uploads_blobs();
    for host in unverified {
        if !config.insecure_registries.contains(&host) {
            config.insecure_registries.push(host);
        }
    }
    config.notes.extend(colon_note);
    Ok((config, job))
}

/// `--digestfile` records the digest of a manifest the copy writes: only a registry or an OCI
/// layout gets one. The file goes into a directory that exists (checked now: a 50 GB push must
/// not end in a failure to write 71 bytes).
fn check_digest_file(path: &std::path::Path, job: &Job) -> Result<(), UsageError> {
    let shown = path.display();
    match job {
        Job::Copy {
            destination: Location::Registry { .. } | Location::Oci { .. },
            ..
        } => {}
        Job::Copy { destination, .. } => {
            return Err(usage(format!(
                "--digestfile writes the digest of the manifest a copy stores in a registry or an \
                 OCI layout; `{destination}` stores none (`hoist digest SRC` prints a source's)"
            )));
        }
        _ => return Err(usage("--digestfile goes with copy, push, pull or export")),
    }
    if path.is_dir() {
        return Err(usage(format!(
            "--digestfile {shown} is a directory: name the file to write"
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(usage(format!(
            "--digestfile {shown}: the directory {} does not exist",
            parent.display()
        )));
    }
    Ok(())
}

/// `--authfile` (or `REGISTRY_AUTH_FILE`) names a file that is there, when the command talks
/// to a registry: a typo would otherwise go on anonymously and end in a refusal far from its
/// cause. A command that talks to no registry reads no credentials and checks nothing.
fn check_auth_file(path: &std::path::Path, given_by: &str, job: &Job) -> Result<(), UsageError> {
    let (from, to) = job.registries();
    let talks_to_registry = from.is_some() || to.is_some();
    if !talks_to_registry {
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(usage(format!(
            "the auth file {} ({given_by}) is not a file",
            path.display()
        ))),
        Err(e) => Err(usage(format!(
            "the auth file {} ({given_by}) cannot be read: {e}",
            path.display()
        ))),
    }
}

/// A valid configuration with its cache in `cache` and these global options, for tests.
#[cfg(test)]
pub fn test_config(cache: &std::path::Path, options: &[&str]) -> Config {
    let cache = cache.to_string_lossy().into_owned();
    let mut argv = vec!["hoist", "--cache-dir", &cache];
    argv.extend_from_slice(options);
    argv.extend_from_slice(&["push", "a", "b/c"]);
    let cli = Cli::parse_args(argv).expect("command line");
    let mut stdin = || Ok(String::new());
    let env = Environment {
        xdg_cache_home: None,
        home: None,
        registry_auth_file: None,
        stderr_is_tty: false,
        stdout_is_tty: false,
        stdin_is_tty: false,
        read_stdin_line: &mut stdin,
    };
    validate(cli, env).expect("valid").0
}

#[cfg(test)]
pub(crate) mod tests;
