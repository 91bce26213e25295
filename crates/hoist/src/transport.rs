//! Image locations as users type them (`docker-daemon:`, `docker-archive:`, `oci:`, `docker://`,
//! `rootfs:`, `rootfs-tar:`), parsed by pure functions into [`Location`]s.
//!
//! The split rules follow skopeo's, which users already know: for `docker-archive:` and `oci:`
//! the path ends at the first `:`; a `docker-daemon:` name keeps its registry port
//! (`docker-daemon:localhost:5000/app:1.2`). References are only checked for shape here; the
//! libraries parse them fully when they are used.

use std::fmt;
use std::path::{Path, PathBuf};

use hoist_oci::Reference;

/// Where an image is read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An image in the local Docker daemon: a name with an optional tag, or an image ID.
    DockerDaemon {
        /// `NAME[:TAG]`, `NAME@DIGEST` or an image ID, as given.
        name: String,
    },
    /// A `docker save` tarball, or stdin/stdout.
    DockerArchive {
        /// The file, or stdin/stdout.
        path: ArchivePath,
        /// The image reference inside the archive (which of several images; the tag to write).
        reference: Option<String>,
    },
    /// An OCI image layout directory.
    Oci {
        /// The layout directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to read or write.
        tag: Option<String>,
    },
    /// An image in a registry.
    Registry {
        /// The reference, normalized (`alpine` is `docker.io/library/alpine`).
        reference: Reference,
    },
    /// A root filesystem directory (destination only).
    Rootfs {
        /// The directory to unpack into.
        dir: PathBuf,
    },
    /// A root filesystem as one flattened tar (destination only): a file, or stdout.
    RootfsTar {
        /// The file, or stdout.
        path: ArchivePath,
    },
}

/// The file of a `docker-archive:` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivePath {
    /// `-`: stdin as a source, stdout as a destination.
    Stdio,
    /// A file.
    File(PathBuf),
}

/// Why a location could not be parsed. Always a usage error (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    input: String,
    reason: String,
}

impl TransportError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        TransportError {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image location `{}`: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for TransportError {}

/// What the transport prefix of a location is; used to name them in messages.
pub const TRANSPORT_NAMES: &str = "docker-daemon:, docker-archive:, oci:, docker://, or (only \
     as destinations) rootfs:, rootfs-tar:";

impl Location {
    /// Parse a location with an explicit transport prefix.
    ///
    /// # Errors
    /// A [`TransportError`] for an unknown or missing transport or a malformed remainder.
    pub fn parse(input: &str) -> Result<Location, TransportError> {
        if let Some(rest) = input.strip_prefix("docker://") {
            return parse_registry(input, rest);
        }
        let Some((transport, rest)) = input.split_once(':') else {
            return Err(TransportError::new(
                input,
                format!(
                    "no transport; prefix it with one of {TRANSPORT_NAMES} (e.g. {})",
                    suggestions(input)
                ),
            ));
        };
        match transport {
            "docker-daemon" => parse_daemon(input, rest),
            "docker-archive" => parse_archive(input, rest),
            "oci" => parse_oci(input, rest),
            "rootfs" => parse_rootfs(input, rest),
            "rootfs-tar" => parse_rootfs_tar(input, rest),
            "docker" => Err(TransportError::new(
                input,
                format!("the registry transport is written docker://, e.g. docker://{rest}"),
            )),
            "containers-storage" | "dir" | "oci-archive" | "ostree" | "sif" | "tarball" => {
                Err(TransportError::new(
                    input,
                    format!(
                        "hoist does not support skopeo's `{transport}:` transport; use one of \
                         {TRANSPORT_NAMES}"
                    ),
                ))
            }
            _ if rest.starts_with("//") => Err(TransportError::new(
                input,
                format!(
                    "unknown transport `{transport}://`; the registry transport is written \
                     docker://"
                ),
            )),
            _ if looks_like_reference(input) => Err(TransportError::new(
                input,
                format!(
                    "no transport (`{transport}:` is not one of {TRANSPORT_NAMES}); for an image \
                     name write docker://{input} or docker-daemon:{input}"
                ),
            )),
            other => Err(TransportError::new(
                input,
                format!("unknown transport `{other}:`; use one of {TRANSPORT_NAMES}"),
            )),
        }
    }

    /// Parse a location, taking one without a transport prefix as `default`'s transport.
    ///
    /// # Errors
    /// As [`Location::parse`].
    pub fn parse_or(input: &str, default: DefaultTransport) -> Result<Location, TransportError> {
        if has_transport(input) {
            return Location::parse(input);
        }
        match default {
            DefaultTransport::Daemon => parse_daemon(input, input),
            DefaultTransport::Registry => parse_registry(input, input),
        }
    }

    /// Whether this location reads stdin or writes stdout.
    pub fn is_stdio(&self) -> bool {
        matches!(
            self,
            Location::DockerArchive {
                path: ArchivePath::Stdio,
                ..
            } | Location::RootfsTar {
                path: ArchivePath::Stdio
            }
        )
    }

    /// Whether this location can only be written (`rootfs:`, `rootfs-tar:`).
    pub fn is_destination_only(&self) -> bool {
        matches!(self, Location::Rootfs { .. } | Location::RootfsTar { .. })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::DockerDaemon { name } => write!(f, "docker-daemon:{name}"),
            Location::DockerArchive { path, reference } => {
                match path {
                    ArchivePath::Stdio => f.write_str("docker-archive:-")?,
                    ArchivePath::File(p) => write!(f, "docker-archive:{}", p.display())?,
                }
                if let Some(r) = reference {
                    write!(f, ":{r}")?;
                }
                Ok(())
            }
            Location::Oci { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
            Location::Registry { reference } => write!(f, "docker://{reference}"),
            Location::Rootfs { dir } => write!(f, "rootfs:{}", dir.display()),
            Location::RootfsTar { path } => match path {
                ArchivePath::Stdio => f.write_str("rootfs-tar:-"),
                ArchivePath::File(p) => write!(f, "rootfs-tar:{}", p.display()),
            },
        }
    }
}

/// Which transport a bare name (no prefix) means for a short-form command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTransport {
    /// `push IMAGE`, `export IMAGE`: the Docker daemon.
    Daemon,
    /// `push .. REF`, `pull REF`, `unpack SRC`, `inspect SRC`: a registry.
    Registry,
}

/// Whether `input` starts with a transport prefix hoist knows.
pub fn has_transport(input: &str) -> bool {
    input.starts_with("docker://")
        || [
            "docker-daemon:",
            "docker-archive:",
            "oci:",
            "rootfs:",
            "rootfs-tar:",
        ]
        .iter()
        .any(|p| input.starts_with(p))
}

/// Check that a source/destination pair makes sense.
///
/// # Errors
/// A human-readable reason when it does not (a usage error).
pub fn check_pair(source: &Location, destination: &Location) -> Result<(), String> {
    if let Location::Rootfs { .. } = source {
        return Err(format!(
            "`{source}` cannot be a source: rootfs: is a destination only (hoist does not build \
             images from directories)"
        ));
    }
    if let Location::RootfsTar { .. } = source {
        return Err(format!(
            "`{source}` cannot be a source: rootfs-tar: is a destination only (hoist does not \
             build images from root filesystems)"
        ));
    }
    if source == destination {
        return Err(format!("source and destination are the same: `{source}`"));
    }
    if let Location::DockerArchive {
        reference: Some(r), ..
    } = destination
        && archive_index(r).is_some()
    {
        return Err(format!(
            "`{destination}`: @N picks an image of a source archive; name the image to write \
             as NAME[:TAG]"
        ));
    }
    if let Location::DockerDaemon { name } = destination
        && !daemon_name_is_tag(name)
    {
        return Err(format!(
            "`{destination}`: an image goes into the daemon under a NAME[:TAG], not a digest or \
             an image ID"
        ));
    }
    if let (Location::Oci { dir: a, tag: ta }, Location::Oci { dir: b, tag: tb }) =
        (source, destination)
        && same_path(a, b)
        && ta == tb
    {
        return Err(format!("source and destination are the same: `{source}`"));
    }
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What `input` without a transport probably meant: a tar file an archive, a path (`./img`,
/// `/srv/img`) a layout, anything else an image name.
fn suggestions(input: &str) -> String {
    if [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|end| input.ends_with(end))
    {
        format!("docker-archive:{input} for a docker save file, or oci:{input} for a layout")
    } else if input.starts_with(['/', '.', '~']) {
        format!("oci:{input} for an OCI layout directory, or docker-archive:{input} for a tar file")
    } else {
        format!("docker://{input} or docker-daemon:{input}")
    }
}

fn looks_like_reference(input: &str) -> bool {
    // `nginx:1.25`, `localhost:5000/app` — a name with a tag or a port, not a transport.
    let first = input.split(['/', ':']).next().unwrap_or_default();
    !first.is_empty()
        && first
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

fn parse_registry(input: &str, rest: &str) -> Result<Location, TransportError> {
    check_reference(input, rest)?;
    let reference =
        Reference::parse(rest).map_err(|e| TransportError::new(input, e.to_string()))?;
    Ok(Location::Registry { reference })
}

fn parse_daemon(input: &str, rest: &str) -> Result<Location, TransportError> {
    check_reference(input, rest)?;
    Ok(Location::DockerDaemon {
        name: daemon_name(rest),
    })
}

/// A daemon image name as docker resolves it: a repository without tag or digest means its
/// `:latest` (asked for a bare name, the daemon exports every tag of it, in no fixed order).
/// An image ID (`sha256:...`, or 12 or more hex digits) stays as given.
fn daemon_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if is_image_id(name) || name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Whether a daemon name is an image ID: `sha256:HEX`, or 12 or more hex digits.
pub(crate) fn is_image_id(name: &str) -> bool {
    let is_hex = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    name.strip_prefix("sha256:").is_some_and(is_hex) || (name.len() >= 12 && is_hex(name))
}

/// Whether a daemon image name (as [`Location::parse`] leaves it) is `NAME:TAG`: not an image
/// ID, not a digest reference. Only such a name can be given to an image (a load) or written as
/// an archive's name for it (`docker save` of an ID or a digest names no tag).
pub fn daemon_name_is_tag(name: &str) -> bool {
    !is_image_id(name) && !name.contains('@')
}

fn parse_archive(input: &str, rest: &str) -> Result<Location, TransportError> {
    let (path, reference) = match rest.split_once(':') {
        Some((p, r)) => (p, Some(r)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(TransportError::new(
            input,
            "missing archive path (use `-` for stdin/stdout)",
        ));
    }
    match reference {
        // skopeo's `@N`: the archive's Nth image (from 0), for untagged ones.
        Some(r) if archive_index(r).is_some() => {}
        Some(r) => {
            check_reference(input, r)?;
            if r.contains('@') {
                return Err(TransportError::new(
                    input,
                    "a docker archive names its images by tag (NAME:TAG) or position (@N), not \
                     by digest",
                ));
            }
            // Checked now, not after a whole image has been read: as a destination it becomes
            // the archive's RepoTags entry.
            Reference::parse(r).map_err(|e| TransportError::new(input, e.to_string()))?;
        }
        None => {}
    }
    let path = if path == "-" {
        ArchivePath::Stdio
    } else {
        ArchivePath::File(PathBuf::from(path))
    };
    Ok(Location::DockerArchive {
        path,
        reference: reference.map(str::to_string),
    })
}

fn parse_oci(input: &str, rest: &str) -> Result<Location, TransportError> {
    let (dir, tag) = match rest.split_once(':') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    if dir.is_empty() {
        return Err(TransportError::new(input, "missing layout directory"));
    }
    // The layout's own grammar (OCI `ref.name`), so a tag is refused before any work, and any
    // tag skopeo or buildkit wrote (`v1+build`, `example.com/app:1.0`) can be named.
    if let Some(t) = tag {
        hoist_oci::layout::check_ref_name(t)
            .map_err(|e| TransportError::new(input, e.to_string()))?;
    }
    Ok(Location::Oci {
        dir: PathBuf::from(dir),
        tag: tag.map(str::to_string),
    })
}

fn parse_rootfs(input: &str, rest: &str) -> Result<Location, TransportError> {
    if rest.is_empty() {
        return Err(TransportError::new(input, "missing directory"));
    }
    Ok(Location::Rootfs {
        dir: PathBuf::from(rest),
    })
}

/// `rootfs-tar:FILE` (the whole remainder is the file, colons included) or `rootfs-tar:-`.
fn parse_rootfs_tar(input: &str, rest: &str) -> Result<Location, TransportError> {
    let path = match rest {
        "" => {
            return Err(TransportError::new(
                input,
                "missing file (use `-` for stdout)",
            ));
        }
        "-" => ArchivePath::Stdio,
        file => ArchivePath::File(PathBuf::from(file)),
    };
    Ok(Location::RootfsTar { path })
}

/// The N of an archive reference written `@N` (skopeo's position of an image in the archive).
pub fn archive_index(reference: &str) -> Option<usize> {
    let n = reference.strip_prefix('@')?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A shape check for references: not empty, no whitespace or control characters, no scheme.
fn check_reference(input: &str, reference: &str) -> Result<(), TransportError> {
    if reference.is_empty() {
        return Err(TransportError::new(input, "missing image reference"));
    }
    if reference.contains("://") {
        return Err(TransportError::new(
            input,
            "a reference has no scheme; write HOST[:PORT]/REPO[:TAG]",
        ));
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TransportError::new(
            input,
            "a reference cannot contain whitespace",
        ));
    }
    if reference.starts_with(['/', ':', '@']) || reference.ends_with(['/', ':', '@']) {
        return Err(TransportError::new(
            input,
            format!("`{reference}` is not an image reference"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Location {
        Location::parse(s).expect("valid location")
    }

    fn registry(s: &str) -> Location {
        Location::Registry {
            reference: Reference::parse(s).expect("valid reference"),
        }
    }

    #[test]
    fn registry_refs() {
        assert_eq!(
            parse("docker://localhost:5000/team/app:1.2"),
            registry("localhost:5000/team/app:1.2")
        );
        let err = Location::parse("docker://localhost:5000/Team/app").expect_err("uppercase");
        assert!(err.to_string().contains("invalid image reference"), "{err}");
        assert!(Location::parse("docker://").is_err());
        assert!(Location::parse("docker://https://x/y").is_err());
        let err = Location::parse("docker:host/app").expect_err("single colon");
        assert!(err.to_string().contains("docker://host/app"), "{err}");
    }

    #[test]
    fn daemon_keeps_port_and_tag() {
        assert_eq!(
            parse("docker-daemon:localhost:5000/app:1.2"),
            Location::DockerDaemon {
                name: "localhost:5000/app:1.2".into()
            }
        );
        assert_eq!(
            parse("docker-daemon:sha256:abcd"),
            Location::DockerDaemon {
                name: "sha256:abcd".into()
            }
        );
        assert!(Location::parse("docker-daemon:").is_err());
        assert!(Location::parse("docker-daemon:app name").is_err());
    }

    #[test]
    fn a_bare_daemon_name_means_latest_and_ids_stay() {
        let name = |s: &str| match parse(&format!("docker-daemon:{s}")) {
            Location::DockerDaemon { name } => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name("app"), "app:latest");
        assert_eq!(
            name("localhost:5000/team/app"),
            "localhost:5000/team/app:latest"
        );
        assert_eq!(
            name("localhost:5000/team/app:2"),
            "localhost:5000/team/app:2"
        );
        let digest = format!("app@sha256:{}", "a".repeat(64));
        assert_eq!(name(&digest), digest);
        assert_eq!(name("0123456789ab"), "0123456789ab", "a short image ID");
        assert_eq!(name("sha256:abcd"), "sha256:abcd");
        assert_eq!(name("cafe"), "cafe:latest", "too short for an ID: a name");
    }

    #[test]
    fn archive_paths() {
        assert_eq!(
            parse("docker-archive:-"),
            Location::DockerArchive {
                path: ArchivePath::Stdio,
                reference: None
            }
        );
        assert_eq!(
            parse("docker-archive:/tmp/x.tar:app:1.2"),
            Location::DockerArchive {
                path: ArchivePath::File("/tmp/x.tar".into()),
                reference: Some("app:1.2".into())
            }
        );
        assert!(parse("docker-archive:-:app").is_stdio());
        assert!(Location::parse("docker-archive:").is_err());
        assert!(Location::parse("docker-archive::app").is_err());
        // An image by position, as skopeo's @N; a name that is no docker reference is refused
        // at once.
        assert_eq!(
            parse("docker-archive:/tmp/x.tar:@1"),
            Location::DockerArchive {
                path: ArchivePath::File("/tmp/x.tar".into()),
                reference: Some("@1".into())
            }
        );
        assert_eq!(archive_index("@12"), Some(12));
        assert_eq!(archive_index("@"), None);
        assert_eq!(archive_index("@x"), None);
        let err = Location::parse("docker-archive:/tmp/x.tar:UPPER:1").expect_err("uppercase");
        assert!(err.to_string().contains("lowercase"), "{err}");
        let digest = format!("docker-archive:/tmp/x.tar:app@sha256:{}", "a".repeat(64));
        let err = Location::parse(&digest).expect_err("archives name images by tag");
        assert!(err.to_string().contains("by tag"), "{err}");
    }

    #[test]
    fn oci_dir_and_tag() {
        assert_eq!(
            parse("oci:./layout:v1.0"),
            Location::Oci {
                dir: "./layout".into(),
                tag: Some("v1.0".into())
            }
        );
        assert_eq!(
            parse("oci:/srv/l"),
            Location::Oci {
                dir: "/srv/l".into(),
                tag: None
            }
        );
        // The layout's tag grammar (OCI ref.name): what skopeo writes can be named ...
        for tag in ["v1+build", "example.com/team/app:1.0", "a--b"] {
            let dir = format!("oci:d:{tag}");
            assert_eq!(
                parse(&dir),
                Location::Oci {
                    dir: "d".into(),
                    tag: Some(tag.into())
                }
            );
        }
        // ... and what a layout cannot hold is refused before any work.
        for tag in ["v1_", "_x", "1.0-", "a..b", "bad//tag"] {
            let err = Location::parse(&format!("oci:dir:{tag}")).expect_err(tag);
            assert!(err.to_string().contains("invalid tag"), "{err}");
        }
        assert!(Location::parse("oci::tag").is_err());
    }

    #[test]
    fn rootfs_and_unknown() {
        assert_eq!(
            parse("rootfs:/tmp/r"),
            Location::Rootfs {
                dir: "/tmp/r".into()
            }
        );
        assert!(Location::parse("rootfs:").is_err());
        assert_eq!(
            parse("rootfs-tar:/tmp/app:1.tar"),
            Location::RootfsTar {
                path: ArchivePath::File("/tmp/app:1.tar".into())
            }
        );
        assert!(parse("rootfs-tar:-").is_stdio());
        assert!(parse("rootfs-tar:-").is_destination_only());
        assert!(!parse("oci:/l").is_destination_only());
        assert!(has_transport("rootfs-tar:x.tar"));
        let err = Location::parse("rootfs-tar:").expect_err("no file");
        assert!(err.to_string().contains("missing file"), "{err}");
        let err = Location::parse("containers-storage:x").expect_err("unsupported");
        assert!(err.to_string().contains("does not support"), "{err}");
        let err = Location::parse("Weird:x").expect_err("unknown");
        assert!(
            err.to_string().contains("unknown transport `Weird:`"),
            "{err}"
        );
        let err = Location::parse("nginx:1.25").expect_err("bare ref");
        assert!(err.to_string().contains("no transport"), "{err}");
        assert!(err.to_string().contains("docker://nginx:1.25"), "{err}");
        assert!(Location::parse("nginx").is_err());
    }

    #[test]
    fn a_missing_or_misspelt_transport_gets_a_hint_that_fits_the_input() {
        let said = |input: &str| Location::parse(input).expect_err(input).to_string();
        // A path is a layout or an archive, not an image name.
        let path = said("./lay");
        assert!(path.contains("oci:./lay for an OCI layout"), "{path}");
        assert!(!path.contains("docker://./lay"), "{path}");
        let tar = said("/srv/app.tar");
        assert!(
            tar.contains("docker-archive:/srv/app.tar for a docker save"),
            "{tar}"
        );
        let name = said("nginx");
        assert!(
            name.contains("docker://nginx or docker-daemon:nginx"),
            "{name}"
        );
        // A misspelt docker:// is not taken for an image name.
        let typo = said("dockr://127.0.0.1:15000/a:1");
        assert!(typo.contains("unknown transport `dockr://`"), "{typo}");
        assert!(!typo.contains("docker://dockr"), "{typo}");
        // rootfs: and rootfs-tar: are named as destinations only.
        assert!(name.contains("only as destinations) rootfs:"), "{name}");
    }

    #[test]
    fn defaults_for_short_forms() {
        assert_eq!(
            Location::parse_or("app:1", DefaultTransport::Daemon).expect("daemon"),
            Location::DockerDaemon {
                name: "app:1".into()
            }
        );
        assert_eq!(
            Location::parse_or("localhost:5000/app:1", DefaultTransport::Registry)
                .expect("registry"),
            registry("localhost:5000/app:1")
        );
        assert_eq!(
            Location::parse_or("oci:l:t", DefaultTransport::Registry).expect("explicit"),
            Location::Oci {
                dir: "l".into(),
                tag: Some("t".into())
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker-daemon:app:1",
            "docker-archive:-",
            "docker-archive:x.tar:app:1",
            "oci:dir:tag",
            "oci:dir",
            "docker://h:5000/a:b",
            "docker://docker.io/library/alpine:3",
            "rootfs:/r",
            "rootfs-tar:/r.tar",
            "rootfs-tar:-",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn pairs() {
        let rootfs = parse("rootfs:/r");
        let oci = parse("oci:/l:t");
        assert!(check_pair(&rootfs, &oci).is_err());
        assert!(check_pair(&oci, &rootfs).is_ok());
        let flat = parse("rootfs-tar:/r.tar");
        assert!(check_pair(&oci, &flat).is_ok());
        let err = check_pair(&flat, &oci).expect_err("destination only");
        assert!(err.contains("destination only"), "{err}");
        // A load needs a name to give the image, not a digest or an ID.
        let hex = "a".repeat(64);
        for bad in [
            format!("docker-daemon:dst@sha256:{hex}"),
            format!("docker-daemon:sha256:{hex}"),
            "docker-daemon:e68b8f42f52e".to_string(),
        ] {
            let err = check_pair(&oci, &parse(&bad)).expect_err(&bad);
            assert!(err.contains("NAME[:TAG]"), "{err}");
            assert!(
                check_pair(&parse(&bad), &oci).is_ok(),
                "fine as a source: {bad}"
            );
        }
        assert!(check_pair(&oci, &parse("docker-daemon:dst")).is_ok());
        assert!(check_pair(&oci, &oci).is_err());
        assert!(check_pair(&parse("oci:/l:a"), &parse("oci:/l:b")).is_ok());
        // stdin to stdout re-tags an archive: allowed.
        assert!(check_pair(&parse("docker-archive:-"), &parse("docker-archive:-:x:1")).is_ok());
        let err = check_pair(&parse("oci:/a"), &parse("docker-archive:/b.tar:@0"))
            .expect_err("@N names a source image");
        assert!(err.contains("source archive"), "{err}");
    }

    #[test]
    fn tags() {
        assert!(valid_tag("latest"));
        assert!(valid_tag("_x.1-2"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
