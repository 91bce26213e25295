//! `--format`: which destinations take it, and the combinations that could only fail.
//!
//! Only a registry and an OCI layout store a manifest hoist writes. A docker-archive is always
//! `docker save`'s own format, the Docker daemon keeps images its own way and a rootfs holds
//! files: `--format` with them is a usage error, never silently ignored. The same goes for
//! `--recompress`, which writes new layers and so a new manifest: in `--format`'s format if
//! given, else in the source's when it can carry the new compression (a Docker one with gzip
//! or plain layers), else OCI.

use hoist_oci::convert::ManifestFormat;

use super::{Job, UsageError, usage};
use crate::cli::{Command, CompressionArg, FormatArg, GlobalArgs};
use crate::transport::Location;

/// The format `--format` names, once the job is known to write a manifest it can apply to.
pub(super) fn check_format(
    format: FormatArg,
    job: &Job,
    global: &GlobalArgs,
    recompress: bool,
) -> Result<ManifestFormat, UsageError> {
    let flag = match format {
        FormatArg::Oci => "--format oci",
        FormatArg::V2s2 => "--format v2s2",
    };
    let (source, destination) = match job {
        Job::Copy {
            source,
            destination,
        }
        | Job::CopyTags {
            source,
            destination,
            ..
        } => (source, destination),
        _ => return Err(usage("--format goes with copy, push, pull or export")),
    };
    let fixed = match destination {
        Location::Registry { .. } | Location::Oci { .. } => None,
        Location::DockerArchive { .. } => {
            Some("a docker-archive is always in `docker save`'s format")
        }
        Location::DockerDaemon { .. } => Some("the Docker daemon stores images its own way"),
        Location::Rootfs { .. } | Location::RootfsTar { .. } => {
            Some("a rootfs holds the image's files, not its manifest")
        }
    };
    if let Some(why) = fixed {
        return Err(usage(format!(
            "{flag} sets the manifest format written to a registry or an OCI layout; \
             `{destination}` has a fixed format ({why}): leave --format out"
        )));
    }
    let compresses = recompress
        || matches!(
            source,
            Location::DockerDaemon { .. } | Location::DockerArchive { .. }
        );
    if format == FormatArg::V2s2 && compresses && global.compression == Some(CompressionArg::Zstd) {
        return Err(usage(format!(
            "{flag} with --compression zstd: Docker v2 schema 2 has no zstd layers; use \
             --format oci, or --compression gzip"
        )));
    }
    Ok(match format {
        FormatArg::Oci => ManifestFormat::Oci,
        FormatArg::V2s2 => ManifestFormat::DockerV2S2,
    })
}

/// Whether the command asks for `--recompress` (or skopeo's `--dest-compress-format FORMAT`,
/// which also sets `--compression`).
pub(super) fn recompress_flags(
    command: &Command,
    global: &mut GlobalArgs,
) -> Result<bool, UsageError> {
    let (recompress, format) = match command {
        Command::Copy {
            recompress,
            dest_compress_format,
            ..
        } => (*recompress, *dest_compress_format),
        Command::Push { recompress, .. } | Command::Pull { recompress, .. } => (*recompress, None),
        _ => (false, None),
    };
    let Some(format) = format else {
        return Ok(recompress);
    };
    match global.compression {
        // A flag beats the variable, as everywhere else.
        Some(given) if given != format && !global.compression_from_env => Err(usage(
            "--dest-compress-format and --compression name different compressions: give one",
        )),
        _ => {
            global.compression = Some(format);
            Ok(true)
        }
    }
}

/// The manifest format a `--recompress` copy writes: `--format`'s, else `None`, for the copy
/// to choose per image (the source's format when it can carry the new compression, else OCI),
/// once the job is known to write one.
pub(super) fn check_recompress(
    job: &Job,
    format: Option<ManifestFormat>,
) -> Result<Option<ManifestFormat>, UsageError> {
    let destination = match job {
        Job::Copy { destination, .. } | Job::CopyTags { destination, .. } => destination,
        _ => return Err(usage("--recompress goes with copy, push or pull")),
    };
    if !matches!(
        destination,
        Location::Registry { .. } | Location::Oci { .. }
    ) {
        return Err(usage(format!(
            "--recompress writes layers to a registry or an OCI layout; `{destination}` takes \
             plain layers: leave --recompress out"
        )));
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use hoist_oci::convert::ManifestFormat;

    use crate::config::tests::{err, ok};

    #[test]
    fn format_is_read_by_every_copy_command() {
        for args in [
            &[
                "copy",
                "--format",
                "v2s2",
                "oci:x:1",
                "docker://h.example/a:1",
            ][..],
            &[
                "copy",
                "-f",
                "v2s2",
                "--all",
                "docker://h.example/a:1",
                "oci:y:1",
            ][..],
            &["push", "-f", "v2s2", "oci:x:1", "h.example/a:1"][..],
            &["pull", "--format", "v2s2", "h.example/a:1", "out"][..],
            &["export", "--format", "v2s2", "app:1", "out"][..],
            &[
                "copy",
                "-f",
                "v2s2",
                "--all-tags",
                "docker://h.example/a",
                "oci:z",
            ][..],
        ] {
            assert_eq!(
                ok(args).0.manifest_format,
                Some(ManifestFormat::DockerV2S2),
                "{args:?}"
            );
        }
        let (config, _) = ok(&["push", "-f", "oci", "app:1", "h.example/a:1"]);
        assert_eq!(config.manifest_format, Some(ManifestFormat::Oci));
        let (config, _) = ok(&["push", "app:1", "h.example/a:1"]);
        assert_eq!(config.manifest_format, None);
        // skopeo's v2s1 is not written by hoist.
        assert!(err(&["push", "-f", "v2s1", "app:1", "h.example/a:1"]).contains("v2s1"));
    }

    #[test]
    fn format_is_refused_where_the_format_is_fixed() {
        for to in ["docker-archive:/a.tar", "docker-daemon:app:1", "rootfs:/r"] {
            let e = err(&["copy", "--format", "oci", "oci:x:1", to]);
            assert!(e.contains("fixed format") && e.contains(to), "{e}");
        }
        let e = err(&[
            "push",
            "--format",
            "v2s2",
            "oci:x:1",
            "docker-archive:/a.tar",
        ]);
        assert!(e.contains("registry"), "{e}");
    }

    #[test]
    fn v2s2_with_layers_hoist_compresses_as_zstd_is_refused_up_front() {
        for from in ["docker-daemon:app:1", "docker-archive:/a.tar"] {
            let args = [
                "--compression",
                "zstd",
                "copy",
                "-f",
                "v2s2",
                from,
                "docker://h.example/a:1",
            ];
            let e = err(&args);
            assert!(e.contains("no zstd layers"), "{e}");
        }
        // A layout's layers are copied as stored: --compression does not touch them.
        ok(&[
            "--compression",
            "zstd",
            "copy",
            "-f",
            "v2s2",
            "oci:x:1",
            "docker://h.example/a:1",
        ]);
        ok(&[
            "--compression",
            "zstd",
            "copy",
            "-f",
            "oci",
            "docker-daemon:app:1",
            "oci:y:1",
        ]);
    }
}

#[cfg(test)]
mod recompress_tests {
    use hoist_oci::Compression;
    use hoist_oci::convert::ManifestFormat;

    use crate::config::tests::{err, ok};

    #[test]
    fn skopeos_spelling_sets_the_compression_and_leaves_the_format_to_the_copy() {
        let (c, _) = ok(&[
            "copy",
            "--dest-compress-format",
            "zstd",
            "--dest-compress-level",
            "9",
            "docker://reg.example/a:1",
            "oci:/tmp/x:1",
        ]);
        assert!(c.recompress && c.compression_chosen);
        assert_eq!(
            (c.compression, c.compression_level),
            (Compression::Zstd, Some(9))
        );
        // The copy picks the format per image (see `commands::recompress::written_format`).
        assert_eq!(c.manifest_format, None);
        // The same compression named twice is no conflict.
        let (c, _) = ok(&[
            "--compression",
            "zstd",
            "copy",
            "--dest-compress-format",
            "zstd",
            "oci:/tmp/a:1",
            "oci:/tmp/x:1",
        ]);
        assert!(c.recompress);
    }

    #[test]
    fn recompress_keeps_an_explicit_format_and_leaves_other_commands_alone() {
        let (c, _) = ok(&[
            "pull",
            "--recompress",
            "-f",
            "v2s2",
            "reg.example/a:1",
            "/tmp/x",
        ]);
        assert!(c.recompress);
        assert_eq!(c.manifest_format, Some(ManifestFormat::DockerV2S2));
        let (c, _) = ok(&["copy", "oci:/tmp/a:1", "oci:/tmp/x:1"]);
        assert!(!c.recompress && c.manifest_format.is_none());
        assert!(
            err(&[
                "copy",
                "--recompress",
                "oci:/tmp/a:1",
                "docker-archive:/tmp/x.tar"
            ])
            .contains("--recompress writes layers to a registry or an OCI layout")
        );
    }
}
