//! The settings every command shares (the global options), validated into a [`Config`]:
//! platform, compression and its level, chunk size, concurrency, insecure registries, progress
//! and verbosity, unpack limits and the cache directory.

use std::path::PathBuf;

use hoist_oci::{Compression, Platform};

use super::credentials::{self, Credentials};
use super::{Config, Environment, ProgressMode, UsageError, usage};
use crate::cli::{CompressionArg, GlobalArgs, ProgressArg, value_named};
use crate::size::parse_size;

/// The smallest chunk hoist accepts.
pub const MIN_CHUNK: u64 = 64 << 10;
/// The largest chunk hoist accepts.
pub const MAX_CHUNK: u64 = 4 << 30;

/// Whether a platform was named (`--platform`, or skopeo's `--override-*`).
pub(super) fn platform_given(g: &GlobalArgs) -> bool {
    g.platform.is_some()
        || g.override_os.is_some()
        || g.override_arch.is_some()
        || g.override_variant.is_some()
}

/// The platform asked for: `--platform`, or skopeo's `--override-os`, `--override-arch` and
/// `--override-variant` completed with the host's OS and architecture (clap refuses both
/// spellings at once). A variant given alone is the host architecture's.
fn platform(g: &GlobalArgs) -> Result<Option<Platform>, UsageError> {
    if let Some(p) = g.platform.as_deref() {
        return Platform::parse(p)
            .map(Some)
            .map_err(|e| usage(format!("--platform: {e}")));
    }
    if !platform_given(g) {
        return Ok(None);
    }
    let overrides = [&g.override_os, &g.override_arch, &g.override_variant];
    if let Some(given) = overrides.into_iter().flatten().find(|v| v.contains('/')) {
        return Err(usage(format!(
            "--override-os/--override-arch/--override-variant take one name each, not {given:?} \
             (or give --platform OS/ARCH[/VARIANT])"
        )));
    }
    let host = Platform::host();
    let os = g.override_os.as_deref().unwrap_or(&host.os);
    let arch = g.override_arch.as_deref().unwrap_or(&host.architecture);
    let text = match &g.override_variant {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    };
    Platform::parse(&text).map(Some).map_err(|e| {
        usage(format!(
            "--override-os/--override-arch/--override-variant: {e}"
        ))
    })
}

/// The settings every command shares, and the `--creds` given (placed by
/// [`credentials::assign_creds`] once the job says which registries there are).
pub(super) fn validate_global(
    g: GlobalArgs,
    env: Environment<'_>,
) -> Result<(Config, Option<Credentials>), UsageError> {
    let platform = platform(&g)?;
    let compression = match g.compression.unwrap_or(CompressionArg::Gzip) {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    if let Some(level) = g.compression_level {
        check_level(compression, level)?;
    }
    let chunk_named = || {
        value_named(
            &g.from_env,
            "--chunk-size",
            "HOIST_CHUNK_SIZE",
            &g.chunk_size,
        )
    };
    let chunk_size =
        parse_size(&g.chunk_size).map_err(|e| usage(format!("{}: {e}", chunk_named())))?;
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(usage(format!(
            "{} is out of range: use 64KiB to 4GiB",
            chunk_named()
        )));
    }
    if g.concurrency == 0 || g.concurrency > 64 {
        return Err(usage("--concurrency must be between 1 and 64"));
    }
    for host in &g.insecure_registries {
        check_registry_host(host, &g.from_env)?;
    }
    let creds = credentials::from_flags(g.creds, g.creds_stdin, env.read_stdin_line)?;
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
    let from_env = g.from_env.clone();
    let max_bytes = g
        .max_layer_bytes
        .as_deref()
        .map(|s| {
            parse_size(s).map_err(|e| {
                let named = value_named(&from_env, "--max-layer-bytes", "HOIST_MAX_LAYER_BYTES", s);
                usage(format!("{named}: {e}"))
            })
        })
        .transpose()?;
    let mut unpack_limits = hoist_unpack::Limits::new();
    unpack_limits.max_bytes = max_bytes;
    unpack_limits.max_entries = g.max_layer_entries;
    let daemon = daemon_options(g.daemon_host, g.daemon_timeout, g.daemon_stall_timeout)?;
    let cache_dir = match g.cache_dir {
        Some(dir) => dir,
        None => default_cache_dir(env.xdg_cache_home, env.home).ok_or_else(|| {
            usage("cannot find a cache directory: set --cache-dir, XDG_CACHE_HOME or HOME")
        })?,
    };
    let config = Config {
        platform,
        compression,
        compression_chosen: g.compression.is_some(),
        compression_flag_given: g.compression.is_some() && !g.compression_from_env,
        compression_level: g.compression_level,
        chunk_size,
        concurrency: g.concurrency,
        retries: g.retries,
        timeout: std::time::Duration::from_secs(g.timeout),
        insecure_registries: g.insecure_registries,
        cert_dir: g.cert_dir,
        auth_file: None,
        registry_auth_files: Vec::new(),
        registry_creds: Vec::new(),
        anonymous_registries: Vec::new(),
        progress,
        verbosity,
        cache_dir,
        keep_upload_state: false,
        runtime_config: None,
        digest_file: None,
        all_platforms: false,
        index_only: false,
        manifest_format: None,
        recompress: false,
        unpack_limits,
        daemon,
        registry_client: None,
        notes: Vec::new(),
    };
    Ok((config, creds))
}

/// The daemon connection's options from `--daemon-host` (checked here, so a typo is a usage
/// error before anything runs) and the timeouts (clap kept them in range).
fn daemon_options(
    host: Option<String>,
    timeout: u64,
    stall_timeout: u64,
) -> Result<hoist_docker::ConnectOptions, UsageError> {
    use std::time::Duration;
    let mut options = hoist_docker::ConnectOptions::new()
        .timeout(Duration::from_secs(timeout))
        .stall_timeout(Duration::from_secs(stall_timeout));
    if let Some(host) = host {
        hoist_docker::Endpoint::parse(&host).map_err(|e| usage(format!("--daemon-host: {e}")))?;
        options = options.host(host);
    }
    Ok(options)
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

/// An `--insecure-registry` host, checked by the registry client's own rules
/// ([`hoist_registry::Repo::check_registry`]), so a host the client would refuse when it is
/// built is a usage error here, naming the variable when the value came from there.
fn check_registry_host(host: &str, from_env: &[&str]) -> Result<(), UsageError> {
    const VAR: &str = "HOIST_INSECURE_REGISTRY";
    hoist_registry::Repo::check_registry(host).map_err(|e| {
        let named = match from_env.contains(&VAR) {
            true => format!("{VAR} (set in the environment)"),
            false => "--insecure-registry".to_string(),
        };
        usage(format!(
            "{named}: {}; expected HOST[:PORT] without scheme or path",
            e.message()
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{err, ok, run};

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
    }

    /// The registry client refuses these insecure hosts when it is built, which made every
    /// registry command fail at run time (exit 1); they were taken here (`_` was allowed, and
    /// a port was never checked). Now the client's own check refuses them as a usage error.
    #[test]
    fn insecure_hosts_are_checked_as_the_registry_client_checks_them() {
        for bad in [
            "my_mirror:5000",
            "reg:0",
            "reg:65536",
            "reg:",
            "reg-.example",
            "[::1",
        ] {
            let flag = format!("--insecure-registry={bad}");
            let e = err(&[&flag, "tags", "h.example/a"]);
            assert!(e.starts_with("--insecure-registry: "), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
            assert!(e.contains("HOST[:PORT]"), "{bad}: {e}");
        }
        for good in ["reg", "mirror.example:5000", "10.0.0.1:443", "[::1]:5000"] {
            let (c, _) = ok(&["--insecure-registry", good, "tags", "h.example/a"]);
            assert_eq!(c.insecure_registries, [good], "{good}");
        }
        assert!(err(&["-q", "-v", "inspect", "oci:x"]).contains("contradict"));
    }

    #[test]
    fn skopeos_override_flags_name_a_platform_completed_from_the_host() {
        let platform = |args: &[&str]| {
            let mut argv = args.to_vec();
            argv.extend(["inspect", "oci:x"]);
            let p = ok(&argv).0.platform.expect("a platform");
            (p.os, p.architecture, p.variant)
        };
        let host = Platform::host();
        assert_eq!(
            platform(&["--override-arch", "arm64"]),
            (host.os.clone(), "arm64".into(), None)
        );
        assert_eq!(
            platform(&["--override-arch", "arm", "--override-variant", "v7"]),
            (host.os.clone(), "arm".into(), Some("v7".into()))
        );
        assert_eq!(
            platform(&["--override-os", "windows", "--override-arch", "amd64"]),
            ("windows".into(), "amd64".into(), None)
        );
        assert_eq!(
            platform(&["--override-os", "freebsd"]),
            ("freebsd".into(), host.architecture.clone(), None)
        );
        assert!(ok(&["inspect", "oci:x"]).0.platform.is_none());
        assert!(
            err(&[
                "--override-arch",
                "arm64",
                "--platform",
                "linux/amd64",
                "inspect",
                "oci:x"
            ])
            .contains("cannot be used with")
        );
        assert!(err(&["--override-arch", "arm/64", "inspect", "oci:x"]).contains("--override-"));
    }

    #[test]
    fn the_daemon_is_the_one_daemon_host_or_skopeos_flags_name() {
        let other = hoist_docker::Endpoint::Unix("/run/other.sock".into());
        for flag in ["--daemon-host", "--src-daemon-host", "--dest-daemon-host"] {
            let (c, _) = ok(&[flag, "unix:///run/other.sock", "inspect", "docker-daemon:a"]);
            assert_eq!(c.daemon.endpoint().expect("endpoint"), other, "{flag}");
        }
        let bad = err(&["--daemon-host", "ftp://h", "inspect", "docker-daemon:a"]);
        assert!(
            bad.starts_with("--daemon-host: bad daemon address"),
            "{bad}"
        );
        // One daemon per command: skopeo's two flags cannot name two.
        let two = err(&[
            "--src-daemon-host",
            "unix:///a.sock",
            "--dest-daemon-host",
            "unix:///b.sock",
            "copy",
            "docker-daemon:a",
            "docker-daemon:b",
        ]);
        assert!(two.contains("cannot be used multiple times"), "{two}");
        for flag in ["--daemon-timeout", "--daemon-stall-timeout"] {
            let zero = err(&[flag, "0", "inspect", "docker-daemon:a"]);
            assert!(zero.contains("not in 1..=86400"), "{flag}: {zero}");
        }
        // The timeouts reach the connection's options (ConnectOptions has no getters).
        let (c, _) = ok(&[
            "--daemon-timeout",
            "7",
            "--daemon-stall-timeout",
            "9",
            "inspect",
            "docker-daemon:a",
        ]);
        let shown = format!("{:?}", c.daemon);
        assert!(
            shown.contains(" timeout: 7s") && shown.contains("stall_timeout: 9s"),
            "{shown}"
        );
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
}
