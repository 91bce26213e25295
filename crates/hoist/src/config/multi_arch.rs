//! `--all` and skopeo's `--multi-arch`: which manifests of a multi-platform image a copy
//! writes, and the destinations and options that go with each.
//!
//! Every platform (`--all`, `--multi-arch all`) and the index alone (`--multi-arch
//! index-only`) both write an index: only a registry or an OCI layout holds one, and picking a
//! platform contradicts them. The index alone copies no layer, so there is nothing to
//! recompress; and it is refused with `--all-tags`, which copies each tag with its images.

use super::{Job, UsageError, usage};
use crate::cli::{Command, MultiArchArg};
use crate::transport::Location;

/// What a copy writes of a multi-platform image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Platforms {
    /// One image: `--platform`'s, else the host's (`--multi-arch system`, the default).
    One,
    /// The index and every image it lists (`--all`, `--multi-arch all`).
    All,
    /// The index alone (`--multi-arch index-only`), for images the destination has already.
    IndexOnly,
}

impl Platforms {
    /// What the command asks for.
    ///
    /// # Errors
    /// `--all` with `--multi-arch index-only`, which ask for opposite things.
    pub(super) fn asked(command: &Command) -> Result<Platforms, UsageError> {
        let (all, multi_arch) = match command {
            Command::Copy {
                all, multi_arch, ..
            } => (*all, *multi_arch),
            Command::Push { all, .. } | Command::Pull { all, .. } => (*all, None),
            _ => (false, None),
        };
        match (all, multi_arch) {
            (true, Some(MultiArchArg::IndexOnly)) => Err(usage(
                "--all copies an index with its images; --multi-arch index-only copies the \
                 index alone: give one or the other",
            )),
            (_, Some(MultiArchArg::IndexOnly)) => Ok(Platforms::IndexOnly),
            (true, _) | (_, Some(MultiArchArg::All)) => Ok(Platforms::All),
            _ => Ok(Platforms::One),
        }
    }

    /// Check the choice against the job and the other options.
    ///
    /// # Errors
    /// A destination that holds no index, a platform picked as well, and for the index alone,
    /// `--recompress` or `--all-tags`.
    pub(super) fn check(
        self,
        job: &Job,
        platform_given: bool,
        recompress: bool,
        all_tags: bool,
    ) -> Result<(), UsageError> {
        let flag = match self {
            Platforms::One => return Ok(()),
            Platforms::All => "--all",
            Platforms::IndexOnly => "--multi-arch index-only",
        };
        if platform_given {
            let what = match self {
                Platforms::IndexOnly => "copies an index without its images",
                _ => "copies every platform",
            };
            return Err(usage(format!(
                "{flag} {what}; --platform picks one: give one or the other"
            )));
        }
        if self == Platforms::IndexOnly {
            if recompress {
                return Err(usage(
                    "--multi-arch index-only copies no layers, so none to recompress: leave \
                     --recompress out (or use --multi-arch all)",
                ));
            }
            if all_tags {
                return Err(usage(
                    "--all-tags copies each tag with its images: use --multi-arch all with it, \
                     not index-only",
                ));
            }
        }
        match job {
            Job::Copy {
                destination: Location::Registry { .. } | Location::Oci { .. },
                ..
            } => Ok(()),
            Job::Copy { destination, .. } => Err(usage(match self {
                Platforms::IndexOnly => format!(
                    "--multi-arch index-only writes an index: `{destination}` holds one image; \
                     copy into docker:// or oci:"
                ),
                _ => format!(
                    "--all copies an index with every platform's image: `{destination}` holds \
                     one image; copy into docker:// or oci: (or pick one platform with \
                     --platform)"
                ),
            })),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{err, ok};

    #[test]
    fn skopeos_multi_arch_picks_one_platform_all_or_the_index_alone() {
        let chosen = |which: &str| {
            let (c, _) = ok(&["copy", "--multi-arch", which, "oci:x:1", "oci:y:1"]);
            (c.all_platforms, c.index_only)
        };
        assert_eq!(chosen("all"), (true, false));
        assert_eq!(chosen("system"), (false, false));
        assert_eq!(chosen("index-only"), (false, true));
        let (c, _) = ok(&["copy", "oci:x:1", "docker://h.example/a:1"]);
        assert_eq!((c.all_platforms, c.index_only), (false, false));
        let (c, _) = ok(&[
            "copy",
            "--multi-arch",
            "index-only",
            "--format",
            "v2s2",
            "docker://h.example/a:1",
            "docker://h.example/b:1",
        ]);
        assert!(c.index_only && c.manifest_format.is_some());
        // As with --all, a platform cannot be picked as well.
        for which in ["all", "index-only"] {
            let e = err(&[
                "--override-arch",
                "arm64",
                "copy",
                "--multi-arch",
                which,
                "oci:x:1",
                "oci:y:1",
            ]);
            assert!(e.contains("--platform picks one"), "{which}: {e}");
        }
    }

    #[test]
    fn the_index_alone_goes_where_an_index_is_kept_and_moves_no_layer() {
        let index_only = |args: &[&str]| {
            let mut argv = vec!["copy", "--multi-arch", "index-only"];
            argv.extend_from_slice(args);
            err(&argv)
        };
        for to in ["rootfs:/r", "docker-archive:/a.tar", "docker-daemon:app:1"] {
            let e = index_only(&["oci:x:1", to]);
            assert!(e.contains("writes an index") && e.contains(to), "{e}");
        }
        let e = index_only(&["--recompress", "oci:x:1", "oci:y:1"]);
        assert!(e.contains("--recompress"), "{e}");
        let e = index_only(&["--all-tags", "oci:x", "oci:y"]);
        assert!(
            e.contains("--all-tags") && e.contains("--multi-arch all"),
            "{e}"
        );
        let e = err(&[
            "copy",
            "--all",
            "--multi-arch",
            "index-only",
            "oci:x:1",
            "oci:y:1",
        ]);
        assert!(e.contains("one or the other"), "{e}");
    }
}
