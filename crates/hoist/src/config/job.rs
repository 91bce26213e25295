//! What to do: the subcommand and its image arguments parsed into a [`Job`], each short form
//! (`push`, `pull`, `unpack`, `export`) checked against the transports it allows, and every
//! copy's source and destination checked as a pair.

use std::path::{Path, PathBuf};

use super::login::{login_job, logout_job};
use super::{Environment, Job, TagFilter, UsageError, usage};
use crate::cli::{CacheCommand, Command, GlobalArgs};
use crate::size::parse_size;
use crate::transport::{DefaultTransport, Location, check_pair, valid_tag};

/// The subcommand as a [`Job`], its image arguments parsed with the transports it allows
/// (`login` may read its password from stdin, and refuses other commands' credential options).
pub(super) fn validate_job(
    command: Command,
    global: &GlobalArgs,
    env: &mut Environment<'_>,
) -> Result<Job, UsageError> {
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
        Command::Push {
            image, reference, ..
        } => {
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
        Command::Pull { reference, dir, .. } => {
            let source = parse_or(&reference, DefaultTransport::Registry)?;
            let Location::Registry { reference } = &source else {
                return Err(usage(format!(
                    "pull fetches from a registry, not from `{source}`; use `hoist copy`"
                )));
            };
            let (dir, given) = layout_dir(dir)?;
            // A name alone is `latest`, as docker normalises it, and tagged so.
            let tag = given.or_else(|| match (reference.tag(), reference.digest()) {
                (Some(tag), _) => Some(tag.to_string()),
                (None, None) => Some("latest".to_string()),
                (None, Some(_)) => None,
            });
            Job::Copy {
                destination: Location::Oci { dir, tag },
                source,
            }
        }
        Command::Unpack { source, dir, .. } => Job::Copy {
            source: parse_or(&source, DefaultTransport::Registry)?,
            destination: match written_as(&dir, "rootfs:")? {
                Some(rootfs @ Location::Rootfs { .. }) => rootfs,
                _ => Location::Rootfs { dir },
            },
        },
        Command::Export { image, dir, .. } => {
            let source = parse_or(&image, DefaultTransport::Daemon)?;
            let Location::DockerDaemon { name } = &source else {
                return Err(usage(format!(
                    "export reads from the Docker daemon, not from `{source}`; use `hoist copy`"
                )));
            };
            let (dir, given) = layout_dir(dir)?;
            let tag = given.or_else(|| reference_tag(name));
            Job::Copy {
                destination: Location::Oci { dir, tag },
                source,
            }
        }
        Command::Inspect {
            source,
            raw,
            config,
            json,
        } => {
            let source = parse_or(&source, DefaultTransport::Registry)?;
            if source.is_destination_only() {
                return Err(usage(format!(
                    "`{source}` is a destination only; it cannot be inspected"
                )));
            }
            return Ok(Job::Inspect {
                source,
                raw,
                config,
                json,
            });
        }
        Command::Digest { source } => {
            let source = parse_or(&source, DefaultTransport::Registry)?;
            return match source {
                Location::Registry { .. } | Location::Oci { .. } => Ok(Job::Digest { source }),
                Location::Rootfs { .. } | Location::RootfsTar { .. } => Err(usage(format!(
                    "`{source}` is a destination only; it has no digest"
                ))),
                other => {
                    let daemon = match other {
                        Location::DockerDaemon { .. } => {
                            "; `docker image inspect` shows the daemon's image ID"
                        }
                        _ => "",
                    };
                    Err(usage(format!(
                        "`{other}` has no manifest digest of its own: an image gets one in a \
                         registry or an OCI layout (copy it there with --digestfile FILE to \
                         record it{daemon}; `hoist inspect` shows the digest of the manifest \
                         read from it, which a copy that compresses its layers changes)"
                    )))
                }
            };
        }
        Command::Tags { repository } => {
            let source = parse_or(&repository, DefaultTransport::Registry)?;
            let Location::Registry { reference } = source else {
                return Err(usage(format!(
                    "tags lists a repository in a registry, not `{source}`"
                )));
            };
            if reference.tag().is_some() || reference.digest().is_some() {
                return Err(usage(format!(
                    "tags takes a repository, without a tag or digest: `{}/{}`",
                    reference.registry(),
                    reference.repository()
                )));
            }
            return Ok(Job::Tags { reference });
        }
        Command::Delete { reference } => {
            let target = parse_or(&reference, DefaultTransport::Registry)?;
            let Location::Registry { reference } = target else {
                return Err(usage(format!(
                    "delete removes an image from a registry, not from `{target}`"
                )));
            };
            // skopeo and crane would delete `latest` here: too easy to do by accident.
            if reference.tag().is_none() && reference.digest().is_none() {
                return Err(usage(format!(
                    "delete needs the tag or digest to delete: `{0}/{1}:TAG` or \
                     `{0}/{1}@DIGEST` (a name alone would mean `latest`)",
                    reference.registry(),
                    reference.repository()
                )));
            }
            return Ok(Job::Delete { reference });
        }
        Command::Login {
            server,
            username,
            password,
            password_stdin,
        } => return login_job(&server, username, password, password_stdin, global, env),
        Command::Logout { server, all } => return logout_job(server.as_deref(), all, global),
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

/// `copy --all-tags`: every tag of a registry repository or an OCI layout to another, both
/// named without a tag or digest.
pub(super) fn every_tag(job: Job, filter: TagFilter) -> Result<Job, UsageError> {
    let Job::Copy {
        source,
        destination,
    } = job
    else {
        return Err(usage("--all-tags goes with copy"));
    };
    for side in [&source, &destination] {
        match side {
            Location::Registry { reference }
                if reference.tag().is_some() || reference.digest().is_some() =>
            {
                return Err(usage(format!(
                    "--all-tags copies every tag: name the repository without a tag or digest \
                     (`docker://{}/{}`)",
                    reference.registry(),
                    reference.repository()
                )));
            }
            Location::Oci { dir, tag: Some(_) } => {
                return Err(usage(format!(
                    "--all-tags copies every tag: name the layout without a tag (`oci:{}`)",
                    dir.display()
                )));
            }
            Location::Registry { .. } | Location::Oci { .. } => {}
            other => {
                return Err(usage(format!(
                    "--all-tags copies between registries and OCI layouts, not `{other}`: \
                     hoist copy --all-tags docker://HOST/REPO oci:DIR"
                )));
            }
        }
    }
    Ok(Job::CopyTags {
        source,
        destination,
        filter,
    })
}

/// A DIR argument written as the location it names (`oci:DIR[:TAG]` for `pull` and `export`,
/// `rootfs:DIR` for `unpack`, as in `hoist copy` and skopeo) when it starts with `prefix`;
/// `None` for a plain path.
fn written_as(dir: &Path, prefix: &str) -> Result<Option<Location>, UsageError> {
    match dir.to_str().filter(|d| d.starts_with(prefix)) {
        None => Ok(None),
        Some(written) => Location::parse(written)
            .map(Some)
            .map_err(|e| usage(e.to_string())),
    }
}

/// A note when the plain directory `dir` of `pull` or `export` reads as DIR:TAG (`./out:1.0`):
/// it is taken as written, a directory named `out:1.0`, as a path may hold a colon; only
/// `oci:DIR:TAG` names a tag. `None` for anything else. A trailing `/` (as shell completion
/// adds) or `/.` is left out of the suggestion: `./out:1.0/` suggests `oci:./out:1.0`.
pub fn dir_tag_note(dir: &Path) -> Option<String> {
    let written = dir.to_str()?;
    if written.starts_with("oci:") {
        return None;
    }
    let written = without_trailing_separators(written);
    let name = written.rsplit('/').next()?;
    let (base, tag) = name.rsplit_once(':')?;
    if base.is_empty() || !crate::transport::valid_tag(tag) {
        return None;
    }
    let meant = &written[..written.len() - tag.len() - 1];
    Some(format!(
        "writing into a directory named `{name}`; to tag the image `{tag}` in `{meant}`, \
         write oci:{meant}:{tag}"
    ))
}

/// The path `written` without the trailing `/` and `/.` that name no other directory
/// (`./out:1.0/./` is `./out:1.0`), so its last name ends the text. A `..` is kept.
fn without_trailing_separators(written: &str) -> &str {
    let mut text = written;
    loop {
        let trimmed = text.trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/.").unwrap_or(trimmed);
        if trimmed == text || trimmed.is_empty() {
            return trimmed;
        }
        text = trimmed;
    }
}

/// The layout directory of `pull` and `export`, and the tag written with it.
fn layout_dir(dir: PathBuf) -> Result<(PathBuf, Option<String>), UsageError> {
    Ok(match written_as(&dir, "oci:")? {
        Some(Location::Oci { dir, tag }) => (dir, tag),
        _ => (dir, None),
    })
}

/// The tag of a reference (`host:5000/app:1.2` -> `1.2`), `None` for a digest or no tag.
pub fn reference_tag(reference: &str) -> Option<String> {
    // An image ID (`sha256:HEX`) names no tag, though it reads as NAME:TAG.
    if reference.contains('@') || crate::transport::is_image_id(reference) {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let (_, tag) = last.split_once(':')?;
    valid_tag(tag).then(|| tag.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hoist_oci::Compression;

    use super::*;
    use crate::config::ProgressMode;
    use crate::config::tests::{err, ok};

    /// The user-acceptance finding: `pull REF ./out:1.0` made a directory named `out:1.0`
    /// without a word. It still does (a path may hold a colon), and says how to tag instead.
    #[test]
    fn a_pull_directory_that_reads_as_dir_tag_gets_a_note() {
        let note = dir_tag_note(Path::new("./out:1.0")).expect("a note");
        assert!(note.contains("named `out:1.0`"), "{note}");
        assert!(note.contains("oci:./out:1.0"), "{note}");
        let (config, job) = ok(&["pull", "localhost:5000/app:1", "./out:1.0"]);
        assert_eq!(config.notes, vec![note]);
        assert!(
            matches!(&job, Job::Copy { destination: Location::Oci { dir, tag }, .. }
                if dir == Path::new("./out:1.0") && tag.as_deref() == Some("1")),
            "{job:?}"
        );
        for quiet in [
            "./out",
            "oci:./out:1.0",
            "/srv/a:b/out",
            "./out:",
            "./:x",
            "./out:-x",
        ] {
            assert_eq!(dir_tag_note(Path::new(quiet)), None, "{quiet}");
        }
        let (config, _) = ok(&["pull", "localhost:5000/app:1", "oci:./out:1.0"]);
        assert!(config.notes.is_empty());
    }

    /// Shell completion adds a trailing slash to an existing directory; the note then
    /// suggested `oci:./out::1.0` (the text cut by the length of `Path::file_name`, which
    /// leaves out a trailing `/` or `/.`), a form naming another directory and tag.
    #[test]
    fn dir_tag_note_with_a_trailing_slash() {
        let note = dir_tag_note(Path::new("./out:1.0/")).expect("a note");
        assert!(note.contains("oci:./out:1.0"), "{note}");
        for (written, suggested) in [
            ("./out:1.0//", "oci:./out:1.0"),
            ("./out:1.0/.", "oci:./out:1.0"),
            ("./out:1.0/./", "oci:./out:1.0"),
            ("/srv/out:1.0/", "oci:/srv/out:1.0"),
            ("out:1.0/", "oci:out:1.0"),
        ] {
            let note = dir_tag_note(Path::new(written)).expect("a note");
            assert!(
                note.ends_with(&format!("write {suggested}")),
                "{written}: {note}"
            );
            assert!(note.contains("named `out:1.0`"), "{written}: {note}");
        }
        for quiet in ["./out:1.0/..", "/", "./.", "./out/"] {
            assert_eq!(dir_tag_note(Path::new(quiet)), None, "{quiet}");
        }
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
        let tag_of = |args: &[&str]| match ok(args).1 {
            Job::Copy {
                destination: Location::Oci { tag, .. },
                ..
            } => tag,
            other => panic!("{other:?}"),
        };
        // A name alone is pulled as `latest` and tagged so; a digest names no tag.
        assert_eq!(
            tag_of(&["pull", "h:5000/a/b", "out"]).as_deref(),
            Some("latest")
        );
        let digest = format!("h:5000/a/b@sha256:{}", "c".repeat(64));
        assert_eq!(tag_of(&["pull", &digest, "out"]), None);
        // An image ID is no NAME:TAG.
        let id = format!("sha256:{}", "d".repeat(64));
        assert_eq!(tag_of(&["export", &id, "out"]), None);
    }

    #[test]
    fn the_directory_may_be_written_as_its_transport() {
        let dest = |args: &[&str]| match ok(args).1 {
            Job::Copy { destination, .. } => destination,
            other => panic!("{other:?}"),
        };
        // `oci:DIR` is the directory DIR, not one named `oci:DIR`; its TAG wins over REF's.
        assert_eq!(
            dest(&["pull", "h:5000/a/b:v2", "oci:out"]),
            Location::Oci {
                dir: "out".into(),
                tag: Some("v2".into())
            }
        );
        assert_eq!(
            dest(&["pull", "h:5000/a/b:v2", "oci:out:mine"]),
            Location::Oci {
                dir: "out".into(),
                tag: Some("mine".into())
            }
        );
        assert_eq!(
            dest(&["export", "app:3", "oci:/x/out"]),
            Location::Oci {
                dir: "/x/out".into(),
                tag: Some("3".into())
            }
        );
        assert_eq!(
            dest(&["unpack", "h:5000/a/b:v2", "rootfs:/tmp/r"]),
            Location::Rootfs {
                dir: "/tmp/r".into()
            }
        );
        // A plain path stays a path, and a path that only contains the word is no transport.
        assert_eq!(
            dest(&["unpack", "h:5000/a/b:v2", "./oci:x"]),
            Location::Rootfs {
                dir: "./oci:x".into()
            }
        );
        assert!(err(&["pull", "h:5000/a/b:v2", "oci:"]).contains("oci:"));
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
    fn digest_reads_a_registry_or_a_layout() {
        let (_, job) = ok(&["digest", "h.example:5000/a/b:v2"]);
        assert!(matches!(
            job,
            Job::Digest {
                source: Location::Registry { .. }
            }
        ));
        let (_, job) = ok(&["digest", "oci:/l:v2"]);
        assert!(matches!(
            job,
            Job::Digest {
                source: Location::Oci { .. }
            }
        ));
        let e = err(&["digest", "docker-daemon:app:1"]);
        assert!(
            e.contains("no manifest digest") && e.contains("image ID"),
            "{e}"
        );
        assert!(err(&["digest", "docker-archive:/a.tar"]).contains("--digestfile"));
        assert!(err(&["digest", "rootfs:/r"]).contains("destination only"));
    }

    #[test]
    fn all_tags_copies_a_repository_between_registries() {
        let (c, job) = ok(&[
            "--src-creds",
            "u:p",
            "copy",
            "--all-tags",
            "--all",
            "docker://a.example/team/app",
            "docker://b.example:5000/mirror/app",
        ]);
        let Job::CopyTags {
            source: Location::Registry { reference: source },
            destination: Location::Registry {
                reference: destination,
            },
            filter,
        } = job
        else {
            panic!("{job:?}");
        };
        assert_eq!(source.to_string(), "a.example/team/app");
        assert_eq!(destination.to_string(), "b.example:5000/mirror/app");
        assert!(c.all_platforms);
        assert!(!filter.filters());
        assert_eq!(c.registry_creds[0].0, "a.example");
        // Into and out of a layout, named without a tag.
        let (_, job) = ok(&["copy", "--all-tags", "docker://a.example/app", "oci:mirror"]);
        assert!(matches!(
            job,
            Job::CopyTags {
                destination: Location::Oci { tag: None, .. },
                ..
            }
        ));
        ok(&["copy", "--all-tags", "oci:mirror", "docker://b.example/app"]);
        let tagged = err(&[
            "copy",
            "--all-tags",
            "docker://a.example/app:1",
            "docker://b.example/app",
        ]);
        assert!(
            tagged.contains("without a tag or digest (`docker://a.example/app`)"),
            "{tagged}"
        );
        let tagged = err(&[
            "copy",
            "--all-tags",
            "oci:mirror:1",
            "docker://b.example/app",
        ]);
        assert!(tagged.contains("without a tag (`oci:mirror`)"), "{tagged}");
        let e = err(&[
            "copy",
            "--all-tags",
            "docker://a.example/app",
            "docker-archive:x",
        ]);
        assert!(e.contains("between registries and OCI layouts"), "{e}");
        assert!(err(&["push", "--all-tags", "oci:d:1", "b.example/app"]).contains("--all-tags"));
    }

    #[test]
    fn tag_filters_go_with_all_tags_and_must_compile() {
        let (_, job) = ok(&[
            "copy",
            "--all-tags",
            "--include-tags",
            "v[0-9]+",
            "--exclude-tags",
            "v0",
            "docker://a.example/app",
            "oci:mirror",
        ]);
        let Job::CopyTags { filter, .. } = job else {
            panic!("{job:?}")
        };
        assert!(filter.keeps("v1") && !filter.keeps("v0") && !filter.keeps("v1-rc"));
        let bad = err(&[
            "copy",
            "--all-tags",
            "--include-tags",
            "v[0-9",
            "docker://a.example/app",
            "oci:mirror",
        ]);
        assert!(
            bad.contains("--include-tags 'v[0-9' is no regular expression"),
            "{bad}"
        );
        let alone = err(&[
            "copy",
            "--exclude-tags",
            "v0",
            "docker://a.example/app:1",
            "oci:mirror",
        ]);
        assert!(alone.contains("--all-tags"), "{alone}");
    }

    #[test]
    fn delete_takes_a_registry_reference_with_a_tag_or_digest() {
        for given in ["h.example:5000/a/b:v2", "docker://h.example:5000/a/b:v2"] {
            let (_, job) = ok(&["delete", given]);
            let Job::Delete { reference } = job else {
                panic!("{job:?}")
            };
            assert_eq!(reference.tag(), Some("v2"), "{given}");
        }
        let pinned = format!("h.example/a@sha256:{}", "a".repeat(64));
        assert!(matches!(ok(&["delete", &pinned]).1, Job::Delete { .. }));
        let e = err(&["delete", "h.example:5000/a/b"]);
        assert!(
            e.contains("h.example:5000/a/b:TAG") && e.contains("latest"),
            "{e}"
        );
        assert!(err(&["delete", "oci:/l:v1"]).contains("from a registry"));
        assert!(err(&["delete", "docker-daemon:app:1"]).contains("from a registry"));
    }

    #[test]
    fn delete_takes_the_registry_flags_of_the_side_it_writes() {
        let (c, _) = ok(&["--creds", "u:p", "delete", "h.example:5000/a:1"]);
        assert_eq!(c.registry_creds.len(), 1);
        assert_eq!(c.registry_creds[0].0, "h.example:5000");
        let (c, _) = ok(&["--dest-creds", "u:p", "delete", "h.example:5000/a:1"]);
        assert_eq!(c.registry_creds[0].0, "h.example:5000");
        assert!(err(&["--src-creds", "u:p", "delete", "h.example/a:1"]).contains("not a registry"));
        for flag in ["--tls-verify=false", "--dest-tls-verify=false"] {
            let (c, _) = ok(&[flag, "delete", "h.example:5000/a:1"]);
            assert_eq!(c.insecure_registries, ["h.example:5000"], "{flag}");
        }
        let (c, _) = ok(&["--retries", "0", "delete", "h.example/a:1"]);
        assert_eq!(c.retries, 0);
        let e = err(&[
            "--authfile",
            "/nonexistent/auth.json",
            "delete",
            "h.example/a:1",
        ]);
        assert!(e.contains("--authfile"), "{e}");
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(reference_tag("h:5000/a:1.2").as_deref(), Some("1.2"));
        assert_eq!(reference_tag("h:5000/a"), None);
        assert_eq!(reference_tag("a@sha256:abc"), None);
        assert_eq!(reference_tag("app:latest").as_deref(), Some("latest"));
    }
}
