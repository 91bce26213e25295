//! The raw command line as clap parses it: every command, every global option and its variable.
//!
//! Nothing here is trusted yet. [`crate::config`] validates these values into a
//! [`crate::config::Config`] and a [`crate::config::Job`], which are what the rest of the binary
//! works from.
//!
//! The doc comments here are clap's help text, where brackets mark optional parts
//! (`HOST[:PORT]`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

const TRANSPORTS_HELP: &str = "\
Transports (skopeo style):
  docker-daemon:NAME[:TAG]     an image in the local Docker daemon
  docker-archive:PATH[:REF]    a `docker save` tarball (as a source also gzip, zstd, xz or bzip2
                               compressed); PATH `-` is stdin (source) or stdout (destination)
  oci:DIR[:TAG]                an OCI image layout directory
  docker://REF                 an image in a registry, e.g.
                               docker://registry.example:5000/team/app:1.2
  rootfs:DIR                   a root filesystem (destination only): the image is unpacked into DIR
  rootfs-tar:FILE              a root filesystem as one tar (destination only), owners, devices and
                               modes as the layers say, for mke2fs -d, sqfstar or docker import;
                               FILE `-` is stdout

Exit codes: 0 success, 1 failure, 2 usage error, 130 stopped by Ctrl-C (143 by SIGTERM).";

/// Move multi-GB container images between Docker daemons, OCI layouts, registries and root
/// filesystems, in chunks that pass through body-limited proxies, resuming where it stopped.
#[derive(Debug, Parser)]
#[command(
    name = "hoist",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = TRANSPORTS_HELP,
    max_term_width = 100
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse `argv` (program name first), noting where values came from where that matters.
    pub fn parse_args<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(argv)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.global.compression_from_env =
            matches.value_source("compression") == Some(ValueSource::EnvVariable);
        cli.global.from_env = CHECKED_VARIABLES
            .iter()
            .filter(|(id, _)| matches.value_source(id) == Some(ValueSource::EnvVariable))
            .map(|&(_, var)| var)
            .collect();
        Ok(cli)
    }
}

/// The options whose values hoist checks itself (sizes, insecure registry hosts), by clap id,
/// with their variables: an error in a value set in the environment names the variable, not a
/// flag never typed. (clap's own errors, for numbers, always name the flag.)
const CHECKED_VARIABLES: [(&str, &str); 3] = [
    ("chunk_size", "HOIST_CHUNK_SIZE"),
    ("max_layer_bytes", "HOIST_MAX_LAYER_BYTES"),
    ("insecure_registries", "HOIST_INSECURE_REGISTRY"),
];

/// How to name the option `flag` (`--chunk-size`) in an error about its `value`: as the
/// variable `var` when `from_env` ([`GlobalArgs::from_env`]) says the value came from there.
pub fn value_named(from_env: &[&str], flag: &str, var: &str, value: &str) -> String {
    if from_env.contains(&var) {
        format!("{var}={value} (set in the environment)")
    } else {
        format!("{flag} {value}")
    }
}

/// Options every command accepts, each with an environment variable CI users can set once.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Platform to pick from a multi-platform image, as OS/ARCH[/VARIANT] (e.g. linux/arm64/v8).
    /// Defaults to the platform hoist runs on.
    #[arg(
        long,
        global = true,
        env = "HOIST_PLATFORM",
        value_name = "OS/ARCH[/VARIANT]"
    )]
    pub platform: Option<String>,

    /// skopeo's spelling of the platform's OS (`--platform OS/ARCH` with the host's ARCH
    /// unless --override-arch says another).
    #[arg(long, global = true, value_name = "OS", conflicts_with = "platform")]
    pub override_os: Option<String>,

    /// skopeo's spelling of the platform's architecture (`--platform linux/ARCH` unless
    /// --override-os says another OS), e.g. arm64.
    #[arg(long, global = true, value_name = "ARCH", conflicts_with = "platform")]
    pub override_arch: Option<String>,

    /// skopeo's spelling of the platform's variant, e.g. v7 (with --override-arch, or the
    /// host's architecture).
    #[arg(
        long,
        global = true,
        value_name = "VARIANT",
        conflicts_with = "platform"
    )]
    pub override_variant: Option<String>,

    /// Compression for layers hoist has to compress: layers exported from the daemon, a docker
    /// archive's layers on their way to a registry, and, when this is given, a docker archive's
    /// layers copied into a layout (kept as the archive stores them otherwise, as skopeo does);
    /// with --recompress, also layers a registry or layout stores in another compression.
    /// The same hoist build gives a compressed layer the same digest on any machine, whatever
    /// its core count [default: gzip]
    #[arg(long, global = true, env = "HOIST_COMPRESSION", value_enum)]
    pub compression: Option<CompressionArg>,

    /// Whether `compression` came from `HOIST_COMPRESSION` rather than the command line, so a
    /// flag that names a compression (`--dest-compress-format`) may override it.
    #[arg(skip)]
    pub compression_from_env: bool,

    /// The variables of [`CHECKED_VARIABLES`] that gave their option its value.
    #[arg(skip)]
    pub from_env: Vec<&'static str>,

    /// Compression level: 0 to 9 for gzip, -7 to 22 for zstd (defaults: gzip 1, zstd 3: pushing
    /// is bounded by compression speed on small machines).
    #[arg(
        long,
        global = true,
        env = "HOIST_COMPRESSION_LEVEL",
        value_name = "N",
        allow_negative_numbers = true,
        alias = "dest-compress-level"
    )]
    pub compression_level: Option<i32>,

    /// Size of one upload request: plain bytes or with a unit (64MiB, 8M, 512k, 100MB). Keep it
    /// below the body limit of any proxy in front of the registry.
    #[arg(
        long,
        global = true,
        env = "HOIST_CHUNK_SIZE",
        value_name = "SIZE",
        default_value = "32MiB"
    )]
    pub chunk_size: String,

    /// How many blobs move at the same time.
    #[arg(
        long,
        global = true,
        env = "HOIST_CONCURRENCY",
        value_name = "N",
        default_value_t = 6
    )]
    pub concurrency: usize,

    /// How many times a failed request is retried (with backoff) before giving up. Each
    /// request is retried on its own (skopeo's --retry-times retries the whole copy), and a
    /// retried upload continues where the registry stopped.
    #[arg(
        long,
        visible_alias = "retry-times",
        global = true,
        env = "HOIST_RETRIES",
        value_name = "N",
        default_value_t = 5
    )]
    pub retries: u32,

    /// Seconds a registry request may go without progress (no response, no bytes moving)
    /// before it is abandoned and retried. A manifest, config or token must also arrive whole
    /// within it (plus a second per 16 KiB), however slowly its bytes keep coming.
    #[arg(
        long,
        global = true,
        env = "HOIST_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub timeout: u64,

    /// The Docker daemon to talk to for docker-daemon: images, as unix:///PATH or
    /// tcp://HOST:PORT (plain, no TLS). Defaults to DOCKER_HOST, else the docker CLI's current
    /// context, else /var/run/docker.sock. skopeo's --src-daemon-host and --dest-daemon-host
    /// are the same option: one daemon per command.
    #[arg(
        long,
        global = true,
        visible_aliases = ["src-daemon-host", "dest-daemon-host"],
        value_name = "URL"
    )]
    pub daemon_host: Option<String>,

    /// Seconds a short request to the Docker daemon (version, inspect, tag) may take.
    #[arg(
        long,
        global = true,
        env = "HOIST_DAEMON_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub daemon_timeout: u64,

    /// Seconds an export from the Docker daemon may go without a byte, once the daemon started
    /// sending it, before it fails instead of hanging. (The wait for its first byte, while
    /// dockerd prepares the image, is not counted: that takes 3-10 s per GiB.)
    #[arg(
        long,
        global = true,
        env = "HOIST_DAEMON_STALL_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub daemon_stall_timeout: u64,

    /// Treat this registry HOST[:PORT] as docker treats an insecure registry: HTTPS without
    /// verifying its certificate, or plain HTTP when it serves no TLS; repeatable. The variable
    /// takes a comma-separated list.
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "HOIST_INSECURE_REGISTRY",
        value_name = "HOST[:PORT]",
        value_delimiter = ',',
        action = ArgAction::Append
    )]
    pub insecure_registries: Vec<String>,

    /// `--tls-verify=false`: treat every registry this command talks to as an
    /// --insecure-registry, as skopeo does. true (the default) changes nothing.
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub tls_verify: Option<bool>,

    /// `--src-tls-verify=false`: treat the source registry as an --insecure-registry, as
    /// `skopeo copy` does (ignored when the source is no registry).
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub src_tls_verify: Option<bool>,

    /// `--dest-tls-verify=false`: treat the destination registry as an --insecure-registry,
    /// as `skopeo copy` does (ignored when the destination is no registry).
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub dest_tls_verify: Option<bool>,

    /// Directory with extra CA certificates (*.crt) and a client certificate (NAME.cert with
    /// its NAME.key), as in docker's /etc/docker/certs.d/HOST. A self-signed registry
    /// certificate put there is trusted for the names it holds. With it, loopback registries
    /// use TLS as well.
    #[arg(long, global = true, env = "HOIST_CERT_DIR", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,

    /// Credentials as USER[:PASS] for the registry the command talks to. Without them, the auth
    /// files skopeo reads are searched in its order: podman's auth.json
    /// ($XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json), then docker's
    /// config.json, with credential helpers. A copy between two
    /// registries needs --src-creds / --dest-creds instead.
    #[arg(
        long,
        global = true,
        env = "HOIST_CREDS",
        value_name = "USER[:PASS]",
        hide_env_values = true
    )]
    pub creds: Option<String>,

    /// Credentials for the source registry only, as USER:PASS (for a copy between two
    /// registries, so neither sees the other's password).
    #[arg(
        long,
        global = true,
        env = "HOIST_SRC_CREDS",
        value_name = "USER:PASS",
        hide_env_values = true
    )]
    pub src_creds: Option<String>,

    /// Credentials for the destination registry only, as USER:PASS.
    #[arg(
        long,
        global = true,
        env = "HOIST_DEST_CREDS",
        value_name = "USER:PASS",
        hide_env_values = true
    )]
    pub dest_creds: Option<String>,

    /// Speak to the source registry without credentials, whatever is given or kept for it
    /// (skopeo's --src-no-creds): a public image on a registry you have a login for.
    #[arg(long, global = true, conflicts_with_all = ["src_creds", "src_authfile"])]
    pub src_no_creds: bool,

    /// Speak to the destination registry without credentials (skopeo's --dest-no-creds).
    #[arg(long, global = true, conflicts_with_all = ["dest_creds", "dest_authfile"])]
    pub dest_no_creds: bool,

    /// Read registry credentials from this file only, instead of searching, as `skopeo
    /// --authfile` and podman do: an auth.json written by `podman login`, `skopeo login` or
    /// `docker login` (same format: `auths`, `credHelpers`, `credsStore`). --creds,
    /// --src-creds and --dest-creds still win. [env: REGISTRY_AUTH_FILE, when not empty]
    #[arg(long, global = true, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Read the source registry's credentials from this file only (skopeo's --src-authfile);
    /// --src-creds still wins.
    #[arg(long, global = true, value_name = "FILE")]
    pub src_authfile: Option<PathBuf>,

    /// Read the destination registry's credentials from this file only (skopeo's
    /// --dest-authfile); --dest-creds still wins.
    #[arg(long, global = true, value_name = "FILE")]
    pub dest_authfile: Option<PathBuf>,

    /// Read the password (with --creds USER) or USER:PASS (alone) from the first line of stdin.
    #[arg(long, global = true, env = "HOIST_CREDS_STDIN", value_parser = BoolishValueParser::new())]
    pub creds_stdin: bool,

    /// How to show progress: `auto` is `tty` on a terminal and `plain` otherwise.
    #[arg(
        long,
        global = true,
        env = "HOIST_PROGRESS",
        value_enum,
        default_value_t = ProgressArg::Auto
    )]
    pub progress: ProgressArg,

    /// Print nothing but errors (and what a command is asked to print).
    #[arg(short, long, global = true, env = "HOIST_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// More log output: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Where spooled exports, compressed layers and upload state live.
    /// [default: $XDG_CACHE_HOME/hoist or ~/.cache/hoist]
    #[arg(long, global = true, env = "HOIST_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// When unpacking, refuse a layer (for rootfs-tar:, the image's layers together) that
    /// writes more file content than this (same units as --chunk-size): a bound against
    /// decompression bombs. Unlimited by default.
    #[arg(
        long,
        global = true,
        env = "HOIST_MAX_LAYER_BYTES",
        value_name = "SIZE"
    )]
    pub max_layer_bytes: Option<String>,

    /// When unpacking, refuse a layer (for rootfs-tar:, the image's layers together) with more
    /// entries than this: tar entries, and the directories made for their paths. Unlimited by
    /// default.
    #[arg(long, global = true, env = "HOIST_MAX_LAYER_ENTRIES", value_name = "N")]
    pub max_layer_entries: Option<u64>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy an image from any store to any other (see the transports below).
    #[command(after_help = TRANSPORTS_HELP)]
    Copy {
        /// Where the image comes from, e.g. docker-daemon:app:1.2 or docker://host/app:1.2.
        #[arg(value_name = "SRC")]
        source: String,
        /// Where the image goes, e.g. docker://host:5000/app:1.2, oci:./layout:1.2 or rootfs:./root.
        #[arg(value_name = "DST")]
        destination: String,
        /// Also write the image's runtime settings (entrypoint, cmd, env, working directory,
        /// user, exposed ports) as JSON to FILE, for a VM or sandbox builder to start the rootfs
        /// with, once the root filesystem is whole. Only with a rootfs: or rootfs-tar:
        /// destination.
        #[arg(long, value_name = "FILE")]
        runtime_config: Option<PathBuf>,
        /// Copy every platform of a multi-platform image: each image its index lists, then the
        /// index itself, byte for byte (its digest stays the same) unless --format rewrites it,
        /// as `skopeo copy --all` and `crane copy` do. Between registries and OCI layouts only.
        #[arg(long)]
        all: bool,
        /// skopeo's spelling of the platforms to copy: `system` (the default: one platform),
        /// `all` (as --all), or `index-only`: an index alone, without the images it lists,
        /// for images already at the destination (each platform pushed on its own, say), byte
        /// for byte unless --format rewrites it (listing the images as `--all --format` writes
        /// them). A registry that lacks any of them refuses the index: hoist names the missing
        /// ones. Into an OCI layout, hoist checks that every one is there, whole, before it
        /// writes anything, and refuses naming the missing ones (a layout whose index lists
        /// absent images is broken). A single image is copied as it is, as skopeo does.
        /// Registries and OCI layouts only.
        #[arg(long, value_enum, value_name = "WHICH")]
        multi_arch: Option<MultiArchArg>,
        /// Write the manifest at the destination in this format (with --all the index too, as a
        /// manifest list for v2s2), as `skopeo copy --format` does: `oci`, or `v2s2` (Docker v2
        /// schema 2, for registries that take nothing else). Only media types change: blobs are
        /// copied as they are and the manifest gets a new digest. Images v2s2 cannot describe
        /// (zstd or encrypted layers, artifacts) are refused; annotations are dropped. Without
        /// it, the manifest is copied as stored. Only with a docker:// or oci: destination.
        #[arg(short = 'f', long, value_enum, value_name = "FORMAT")]
        format: Option<FormatArg>,
        /// Recompress layers stored in another compression than --compression (gzip unless
        /// given), as `skopeo copy --dest-compress-format` does: `--compression zstd
        /// --recompress` makes every gzip layer a zstd one. Each layer is checked against its
        /// diff_id on the way; the config stays the same. A Docker manifest stays Docker's
        /// with gzip or none and becomes OCI with zstd (as skopeo does; --format decides
        /// otherwise). Layers already in it are kept. Between registries and OCI layouts only;
        /// an artifact is copied as it is.
        #[arg(long)]
        recompress: bool,
        /// skopeo's spelling of `--compression FORMAT --recompress`.
        #[arg(long, value_enum, value_name = "FORMAT")]
        dest_compress_format: Option<CompressionArg>,
        /// Copy every tag of the source repository or OCI layout to the destination repository
        /// or layout, both named without a tag (as `crane copy --all-tags` and `skopeo sync`
        /// do). A tag the destination already has with the same manifest is skipped
        /// (a multi-platform tag copied without --all holds one platform's image, so it is
        /// copied again each time; its blobs are not); with --all, each tag's every platform.
        /// Registries and OCI layouts only.
        #[arg(long, conflicts_with = "digestfile")]
        all_tags: bool,
        /// With --all-tags: copy only the tags this regular expression matches whole, e.g.
        /// 'v[0-9]+(\.[0-9]+)*' (as skopeo sync's images-by-tag-regex).
        #[arg(long, value_name = "REGEX", requires = "all_tags")]
        include_tags: Option<String>,
        /// With --all-tags: leave out the tags this regular expression matches whole, e.g.
        /// '.*-rc[0-9]*' (after --include-tags).
        #[arg(long, value_name = "REGEX", requires = "all_tags")]
        exclude_tags: Option<String>,
        /// Once the copy succeeded, write the digest of the manifest now at the destination
        /// (the image's, or with --all the index's) to FILE as `sha256:HEX`, as `skopeo copy
        /// --digestfile` does. Only with a docker:// or oci: destination.
        #[arg(long, value_name = "FILE")]
        digestfile: Option<PathBuf>,
    },

    /// Push an image (from the Docker daemon unless IMAGE names a transport) to a registry.
    #[command(after_help = TRANSPORTS_HELP)]
    Push {
        /// The image: NAME[:TAG] in the Docker daemon, or any transport (oci:DIR:TAG, ...).
        image: String,
        /// The registry reference to push to: HOST[:PORT]/REPO[:TAG] (docker:// is optional).
        #[arg(value_name = "REF")]
        reference: String,
        /// Copy every platform of a multi-platform image: each image its index lists, then the
        /// index itself, byte for byte (its digest stays the same) unless --format rewrites it,
        /// as `skopeo copy --all` and `crane copy` do. Between registries and OCI layouts only.
        #[arg(long)]
        all: bool,
        /// Write the manifest at the destination in this format (with --all the index too, as a
        /// manifest list for v2s2), as `skopeo copy --format` does: `oci`, or `v2s2` (Docker v2
        /// schema 2, for registries that take nothing else). Only media types change: blobs are
        /// copied as they are and the manifest gets a new digest. Images v2s2 cannot describe
        /// (zstd or encrypted layers, artifacts) are refused; annotations are dropped. Without
        /// it, the manifest is copied as stored. Only with a docker:// or oci: destination.
        #[arg(short = 'f', long, value_enum, value_name = "FORMAT")]
        format: Option<FormatArg>,
        /// Recompress layers stored in another compression than --compression (gzip unless
        /// given), as `skopeo copy --dest-compress-format` does: `--compression zstd
        /// --recompress` makes every gzip layer a zstd one. Each layer is checked against its
        /// diff_id on the way; the config stays the same. A Docker manifest stays Docker's
        /// with gzip or none and becomes OCI with zstd (as skopeo does; --format decides
        /// otherwise). Layers already in it are kept. Between registries and OCI layouts only;
        /// an artifact is copied as it is.
        #[arg(long)]
        recompress: bool,
        /// Once the copy succeeded, write the digest of the manifest now at the destination
        /// (the image's, or with --all the index's) to FILE as `sha256:HEX`, as `skopeo copy
        /// --digestfile` does. Only with a docker:// or oci: destination.
        #[arg(long, value_name = "FILE")]
        digestfile: Option<PathBuf>,
    },

    /// Pull an image from a registry into an OCI image layout directory.
    Pull {
        /// The registry reference: HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// is optional).
        #[arg(value_name = "REF")]
        reference: String,
        /// The OCI layout directory (created if missing), also as oci:DIR[:TAG]; the image is
        /// tagged with TAG, or else with REF's tag.
        dir: PathBuf,
        /// Copy every platform of a multi-platform image: each image its index lists, then the
        /// index itself, byte for byte (its digest stays the same) unless --format rewrites it,
        /// as `skopeo copy --all` and `crane copy` do. Between registries and OCI layouts only.
        #[arg(long)]
        all: bool,
        /// Write the manifest at the destination in this format (with --all the index too, as a
        /// manifest list for v2s2), as `skopeo copy --format` does: `oci`, or `v2s2` (Docker v2
        /// schema 2, for registries that take nothing else). Only media types change: blobs are
        /// copied as they are and the manifest gets a new digest. Images v2s2 cannot describe
        /// (zstd or encrypted layers, artifacts) are refused; annotations are dropped. Without
        /// it, the manifest is copied as stored. Only with a docker:// or oci: destination.
        #[arg(short = 'f', long, value_enum, value_name = "FORMAT")]
        format: Option<FormatArg>,
        /// Recompress layers stored in another compression than --compression (gzip unless
        /// given), as `skopeo copy --dest-compress-format` does: `--compression zstd
        /// --recompress` makes every gzip layer a zstd one. Each layer is checked against its
        /// diff_id on the way; the config stays the same. A Docker manifest stays Docker's
        /// with gzip or none and becomes OCI with zstd (as skopeo does; --format decides
        /// otherwise). Layers already in it are kept. Between registries and OCI layouts only;
        /// an artifact is copied as it is.
        #[arg(long)]
        recompress: bool,
        /// Once the copy succeeded, write the digest of the manifest now at the destination
        /// (the image's, or with --all the index's) to FILE as `sha256:HEX`, as `skopeo copy
        /// --digestfile` does. Only with a docker:// or oci: destination.
        #[arg(long, value_name = "FILE")]
        digestfile: Option<PathBuf>,
    },

    /// Unpack an image into a root filesystem directory.
    #[command(after_help = TRANSPORTS_HELP)]
    Unpack {
        /// The image: any transport; without one, a registry reference.
        #[arg(value_name = "SRC")]
        source: String,
        /// The directory to unpack into (created if missing), also as rootfs:DIR. When the
        /// unpack fails, a directory it created is removed and one that was empty is emptied
        /// again; one that held files is left as it is, with a warning.
        dir: PathBuf,
        /// Also write the image's runtime settings (entrypoint, cmd, env, working directory,
        /// user, exposed ports) as JSON to FILE, for a VM or sandbox builder to start the rootfs
        /// with. Only with a rootfs: destination.
        #[arg(long, value_name = "FILE")]
        runtime_config: Option<PathBuf>,
    },

    /// Export an image from the Docker daemon into an OCI image layout directory.
    Export {
        /// The image in the Docker daemon: NAME[:TAG] or an image ID.
        image: String,
        /// The OCI layout directory (created if missing), also as oci:DIR[:TAG]; the image is
        /// tagged with TAG, or else with the image's own tag.
        dir: PathBuf,
        /// Write the manifest in the layout in this format, as `skopeo copy --format` does:
        /// `oci`, or `v2s2` (Docker v2 schema 2). Only media types change: the manifest gets a
        /// new digest, the blobs stay as exported. v2s2 refuses zstd layers (--compression
        /// zstd). Without it, the manifest is kept as the export wrote it.
        #[arg(short = 'f', long, value_enum, value_name = "FORMAT")]
        format: Option<FormatArg>,
        /// Once the export succeeded, write the digest of the manifest in the layout to FILE
        /// as `sha256:HEX`, as `skopeo copy --digestfile` does.
        #[arg(long, value_name = "FILE")]
        digestfile: Option<PathBuf>,
    },

    /// Show an image's manifest, config and layers with sizes and media types.
    #[command(after_help = TRANSPORTS_HELP)]
    Inspect {
        /// The image: any source transport; without one, a registry reference.
        #[arg(value_name = "SRC")]
        source: String,
        /// Print the manifest's exact bytes instead of a summary.
        #[arg(long)]
        raw: bool,
        /// Print the image config's exact bytes instead (as `crane config` and `skopeo inspect
        /// --config --raw` do), with or without --raw.
        #[arg(long)]
        config: bool,
        /// Print the summary as JSON with `skopeo inspect`'s field names (Name, Digest,
        /// Created, Architecture, Os, Variant, Labels, Env, Layers, LayersData), for scripts;
        /// values exactly as the image has them. No RepoTags: `hoist tags` lists them. An
        /// artifact (a Helm chart, an SBOM) has null Architecture and Os, and an ArtifactType:
        /// its artifactType, else its config's media type.
        #[arg(long, conflicts_with_all = ["raw", "config"])]
        json: bool,
    },

    /// Print the digest of an image's manifest, as `crane digest` does: the digest its tag
    /// names (for a multi-platform image, the index's), so REPO@DIGEST pins exactly what the
    /// tag named; with --platform, the digest of that platform's image.
    #[command(after_help = TRANSPORTS_HELP)]
    Digest {
        /// The image: a registry reference (docker:// is optional) or oci:DIR[:TAG].
        #[arg(value_name = "SRC")]
        source: String,
    },

    /// List the tags of a repository in a registry, one per line (as `skopeo list-tags` and
    /// `crane ls` do).
    Tags {
        /// The repository: HOST[:PORT]/REPO (docker:// is optional), without a tag or digest.
        #[arg(value_name = "REPOSITORY")]
        repository: String,
    },

    /// Log in to a registry, as `podman login` and `skopeo login` do: the registry is asked
    /// whether it accepts the credentials, then they are kept in the auth.json those tools
    /// write ($XDG_RUNTIME_DIR/containers/auth.json), or in --authfile, for every later command.
    Login {
        /// HOST[:PORT], or a namespace in it (HOST/team): credentials kept for a namespace
        /// answer for its repositories only, before the registry's.
        #[arg(value_name = "REGISTRY")]
        server: String,
        /// The user name; asked for when not given and stdin is a terminal.
        #[arg(short, long)]
        username: Option<String>,
        /// The password. Prefer --password-stdin: a command line is visible to every user of
        /// the machine. Asked for (not echoed) when not given and stdin is a terminal.
        // The next argument whatever it starts with, as docker's and podman's -p take it: a
        // password starting with `-` is no option (and must not be printed back as one).
        #[arg(
            short,
            long,
            conflicts_with = "password_stdin",
            allow_hyphen_values = true
        )]
        password: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },

    /// Remove the credentials an auth file keeps for a registry (or a namespace in it), as
    /// `podman logout` does; with --all, every registry's.
    Logout {
        /// HOST[:PORT] or HOST/NAMESPACE, as given to `hoist login`.
        #[arg(value_name = "REGISTRY", required_unless_present = "all")]
        server: Option<String>,
        /// Remove the credentials of every registry in the file, and those its credential
        /// helpers keep (each `credHelpers` helper's for its registry, every login the
        /// `credsStore` lists), as `podman logout --all` does.
        #[arg(long, conflicts_with = "server")]
        all: bool,
    },

    /// Delete an image from a registry, as `skopeo delete` and `crane delete` do: a tag is
    /// resolved to the digest it names and that manifest is deleted, which removes every tag
    /// pointing at it. A multi-platform image's index is deleted alone (the images it lists
    /// stay, by digest); layers stay until the registry's garbage collection.
    Delete {
        /// The image: HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@DIGEST (docker:// is optional).
        #[arg(value_name = "REF")]
        reference: String,
    },

    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Manage the cache directory.
    Cache {
        /// What to do with the cache.
        #[command(subcommand)]
        action: CacheCommand,
    },

    /// Simulate a push to exercise the progress display (for developers).
    #[command(hide = true)]
    DebugProgress {
        /// Number of layers to simulate.
        #[arg(long, default_value_t = 4)]
        layers: usize,
        /// Size of each simulated layer (same units as --chunk-size).
        #[arg(long, default_value = "200MiB")]
        size: String,
        /// Simulated throughput per layer in bytes per second (same units).
        #[arg(long, default_value = "40MiB")]
        speed: String,
        /// End with a simulated failure instead of success.
        #[arg(long)]
        fail: bool,
    },
}

/// `hoist cache ...`
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Delete spooled exports, compressed layers and upload state.
    Prune {
        /// Also delete the layer-compression memory (the next push recompresses every layer).
        #[arg(long)]
        all: bool,
    },
}

/// `--compression`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// What every registry and runtime understands.
    Gzip,
    /// Smaller and faster; pulling needs containerd 1.5+ or docker 23+.
    Zstd,
    /// Uncompressed tar layers.
    None,
}

/// `copy --multi-arch`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MultiArchArg {
    /// The image for one platform (--platform's, else the host's).
    System,
    /// Every platform, as --all.
    All,
    /// The index alone, without its images (they must be at the destination already).
    IndexOnly,
}

/// `--format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// OCI image manifests and indexes.
    Oci,
    /// Docker v2 schema 2 manifests and manifest lists.
    V2s2,
}

/// `--progress`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// `tty` when stderr is a terminal, `plain` otherwise.
    Auto,
    /// Live per-layer lines redrawn in place.
    Tty,
    /// One line per state change, no control characters.
    Plain,
    /// One JSON object per event per line.
    Json,
}
