//! Tests of [`super::validate`], and the helpers other modules' tests use to run it.

use super::*;

/// Validate `args` (after the program name) with `stdin` as what `--creds-stdin` reads and
/// `tty` as whether stderr, stdout and stdin are terminals.
pub(super) fn run(args: &[&str], stdin: &str, tty: bool) -> Result<(Config, Job), UsageError> {
    run_with_auth_env(args, stdin, tty, None)
}

/// [`run`] with `$REGISTRY_AUTH_FILE` set to `auth_env`.
fn run_with_auth_env(
    args: &[&str],
    stdin: &str,
    tty: bool,
    auth_env: Option<&std::path::Path>,
) -> Result<(Config, Job), UsageError> {
    let mut argv = vec!["hoist"];
    argv.extend_from_slice(args);
    let cli = Cli::parse_args(argv).map_err(|e| UsageError(e.to_string()))?;
    let stdin = stdin.to_string();
    let mut read = move || Ok(stdin.clone());
    validate(
        cli,
        Environment {
            xdg_cache_home: None,
            home: Some("/home/u".into()),
            registry_auth_file: auth_env.map(Into::into),
            stderr_is_tty: tty,
            stdout_is_tty: tty,
            stdin_is_tty: tty,
            read_stdin_line: &mut read,
        },
    )
}

/// A valid command line.
pub(crate) fn ok(args: &[&str]) -> (Config, Job) {
    run(args, "", false).expect("valid command line")
}

/// An invalid command line: its message.
pub(super) fn err(args: &[&str]) -> String {
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

/// Only a job that uploads blobs to a registry keeps upload state: the read-only ones
/// never need the cache directory.
#[test]
fn only_jobs_that_upload_keep_upload_state() {
    for args in [
        &["push", "app:1", "h.example/a:1"][..],
        &["copy", "docker://h.example/a:1", "docker://g.example/a:1"],
        &["copy", "oci:x:1", "docker://g.example/a:1"],
        &[
            "copy",
            "--all-tags",
            "docker://h.example/a",
            "docker://g.example/a",
        ],
    ] {
        assert!(ok(args).0.keep_upload_state, "{args:?}");
    }
    for args in [
        &["inspect", "docker://h.example/a:1"][..],
        &["digest", "h.example/a:1"],
        &["tags", "h.example/a"],
        &["pull", "h.example/a:1", "out"],
        &["delete", "h.example/a:1"],
        &["unpack", "h.example/a:1", "root"],
        &["copy", "docker://h.example/a:1", "oci:out:1"],
    ] {
        assert!(!ok(args).0.keep_upload_state, "{args:?}");
    }
}

#[test]
fn an_archive_is_not_written_to_a_terminal() {
    let args = ["copy", "oci:x", "docker-archive:-"];
    let e = run(&args, "", true).expect_err("stdout is a terminal");
    assert!(e.0.contains("redirect stdout"), "{e:?}");
    run(&args, "", false).expect("stdout is a pipe or a file");
    run(&["copy", "oci:x", "docker-archive:x.tar"], "", true).expect("a file");
}

#[test]
fn a_digest_file_needs_a_manifest_to_record_and_a_directory_to_go_to() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("digest");
    let f = file.to_str().expect("utf-8 path");
    let (c, _) = ok(&["push", "--digestfile", f, "oci:x:1", "h.example/a:1"]);
    assert_eq!(c.digest_file.as_deref(), Some(file.as_path()));
    for args in [
        &["pull", "--digestfile", f, "h.example/a:1", "out"][..],
        &["export", "--digestfile", f, "app:1", "out"][..],
        &[
            "copy",
            "--digestfile",
            f,
            "docker://h.example/a:1",
            "oci:out:1",
        ][..],
        &[
            "copy",
            "--all",
            "--digestfile",
            f,
            "oci:x:1",
            "docker://h.example/a:1",
        ][..],
        // A bare name goes into the working directory.
        &["push", "--digestfile", "digest", "oci:x:1", "h.example/a:1"][..],
    ] {
        assert!(ok(args).0.digest_file.is_some(), "{args:?}");
    }
    for to in ["rootfs:/r", "docker-archive:/a.tar", "docker-daemon:app:1"] {
        let e = err(&["copy", "--digestfile", f, "oci:x:1", to]);
        assert!(e.contains("stores none") && e.contains(to), "{e}");
    }
    let dir = tmp.path().to_str().expect("utf-8 path");
    let e = err(&["push", "--digestfile", dir, "oci:x:1", "h.example/a:1"]);
    assert!(e.contains("is a directory"), "{e}");
    let nowhere = tmp.path().join("missing").join("digest");
    let nowhere = nowhere.to_str().expect("utf-8 path");
    let e = err(&["push", "--digestfile", nowhere, "oci:x:1", "h.example/a:1"]);
    assert!(e.contains("does not exist"), "{e}");
    let (c, _) = ok(&["push", "oci:x:1", "h.example/a:1"]);
    assert_eq!(c.digest_file, None);
}

#[test]
fn the_auth_file_must_be_there_when_a_registry_is_involved() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("auth.json");
    std::fs::write(&file, "{}").expect("write");
    let missing = tmp.path().join("missing.json");
    let (f, m) = (
        file.to_str().expect("utf-8 path"),
        missing.to_str().expect("utf-8 path"),
    );
    let reg = "docker://h.example/a:1";
    let (c, _) = ok(&["--authfile", f, "inspect", reg]);
    assert_eq!(c.auth_file.as_deref(), Some(file.as_path()));
    let (c, _) = run_with_auth_env(&["tags", "h.example/a"], "", false, Some(&file))
        .expect("from the environment");
    assert_eq!(c.auth_file.as_deref(), Some(file.as_path()));
    // The flag wins over the variable, as skopeo's does.
    let (c, _) = run_with_auth_env(&["--authfile", f, "digest", reg], "", false, Some(&missing))
        .expect("the flag wins");
    assert_eq!(c.auth_file.as_deref(), Some(file.as_path()));

    let e = err(&["--authfile", m, "copy", "oci:x:1", reg]);
    assert!(e.contains("--authfile") && e.contains(m), "{e}");
    let e = run_with_auth_env(&["copy", reg, "oci:x:1"], "", false, Some(&missing))
        .expect_err("a missing file");
    assert!(e.0.contains("REGISTRY_AUTH_FILE") && e.0.contains(m), "{e}");
    let dir = tmp.path().to_str().expect("utf-8 path");
    assert!(err(&["--authfile", dir, "tags", "h.example/a"]).contains("not a file"));
    // No registry, no credentials read: nothing to check.
    let (c, _) = run_with_auth_env(&["copy", "oci:x:1", "oci:y:1"], "", false, Some(&missing))
        .expect("no registry");
    assert!(c.auth_file.is_some());
}

#[test]
fn src_and_dest_auth_files_go_to_their_own_side_registry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    std::fs::write(&a, "{}").expect("write");
    std::fs::write(&b, "{}").expect("write");
    let (fa, fb) = (
        a.to_str().expect("utf-8 path"),
        b.to_str().expect("utf-8 path"),
    );
    let (src, dest) = ("docker://src.example/a:1", "docker://dest.example:5000/b:1");
    let (c, _) = ok(&[
        "copy",
        "--src-authfile",
        fa,
        "--dest-authfile",
        fb,
        src,
        dest,
    ]);
    assert_eq!(
        c.registry_auth_files,
        [
            ("src.example".to_owned(), a.clone()),
            ("dest.example:5000".to_owned(), b.clone())
        ]
    );
    let (c, _) = ok(&["copy", "--dest-authfile", fb, "oci:x:1", dest]);
    assert_eq!(
        c.registry_auth_files,
        [("dest.example:5000".to_owned(), b.clone())]
    );
    let e = err(&["copy", "--src-authfile", fa, "oci:x:1", dest]);
    assert!(
        e.contains("--src-authfile: the source is not a registry"),
        "{e}"
    );
    let e = err(&["pull", "--dest-authfile", fa, src, "oci:x:1"]);
    assert!(
        e.contains("--dest-authfile: the destination is not a registry"),
        "{e}"
    );
    let missing = tmp.path().join("missing.json");
    let m = missing.to_str().expect("utf-8 path");
    let e = err(&["copy", "--dest-authfile", m, src, dest]);
    assert!(e.contains("--dest-authfile") && e.contains(m), "{e}");
    // A copy within one registry: one file for it, or the same file twice.
    let within = "docker://src.example/c:1";
    let e = err(&[
        "copy",
        "--src-authfile",
        fa,
        "--dest-authfile",
        fb,
        src,
        within,
    ]);
    assert!(
        e.contains("two files for the one registry src.example"),
        "{e}"
    );
    let (c, _) = ok(&[
        "copy",
        "--src-authfile",
        fa,
        "--dest-authfile",
        fa,
        src,
        within,
    ]);
    assert_eq!(c.registry_auth_files.len(), 2);
}

#[test]
fn an_archive_is_not_read_from_a_terminal() {
    // It waited forever for input nobody meant to type.
    for args in [
        &["copy", "docker-archive:-", "oci:x"][..],
        &["inspect", "docker-archive:-"][..],
    ] {
        let e = run(args, "", true).expect_err("stdin is a terminal");
        assert!(e.0.contains("pipe one in"), "{e:?}");
        run(args, "", false).expect("stdin is a pipe or a file");
    }
}
