//! Registry credentials from the command line: `--creds USER:PASS` (or `--creds USER` with the
//! password on stdin, `--creds-stdin`), `--src-creds` and `--dest-creds`, parsed and given to
//! the registry each belongs to; `--src-authfile` and `--dest-authfile` likewise.
//!
//! A password only ever goes to one registry: `--creds` to the one registry a command talks
//! to, and a copy between two registries must say whose it is.

use std::fmt;
use std::path::PathBuf;

use super::{Job, UsageError, usage};

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

/// The `--creds` given, before the job says which registry they are for: `USER:PASS`, or with
/// `--creds-stdin` a `USER:PASS` line on stdin (or the password alone after `--creds USER`).
pub(super) fn from_flags(
    creds: Option<String>,
    creds_stdin: bool,
    read_stdin_line: &mut dyn FnMut() -> std::io::Result<String>,
) -> Result<Option<Credentials>, UsageError> {
    Ok(match (creds, creds_stdin) {
        (None, false) => None,
        (Some(text), false) => Some(parse_creds(&text, None)?),
        (given, true) => {
            if given.as_deref().is_some_and(|c| c.contains(':')) {
                return Err(usage(
                    "--creds-stdin reads the password from stdin; give --creds USER without :PASS",
                ));
            }
            let line = read_stdin_line()
                .map_err(|e| usage(format!("--creds-stdin: cannot read stdin: {e}")))?;
            let line = line.trim_end_matches(['\n', '\r']);
            Some(parse_creds(line, given.as_deref())?)
        }
    })
}

/// Which registry gets which credentials: `--src-creds` the source's, `--dest-creds` the
/// destination's, `--creds` the one registry left, and never one registry's password to
/// another (a copy between two registries must say whose `--creds` are). A copy within one
/// registry gets one set: two different ones are refused, as the client keeps one per
/// registry.
pub(super) fn assign_creds(
    job: &Job,
    creds: Option<Credentials>,
    (src, dest): (Option<String>, Option<String>),
    anonymous: &[String],
) -> Result<Vec<(String, Credentials)>, UsageError> {
    let (from, to) = job.registries();
    let mut out: Vec<(String, Credentials)> = Vec::new();
    for (host, text, flag) in per_side(job, "creds", src, dest)? {
        if anonymous.contains(&host) {
            return Err(usage(format!(
                "{flag} and --src-no-creds or --dest-no-creds name the one registry {host}, \
                 which is spoken to with one set of credentials or none: give one"
            )));
        }
        if text.split_once(':').is_none() {
            return Err(usage(format!("{flag} takes USER:PASS")));
        }
        let creds = parse_creds(&text, None)?;
        if out.iter().any(|(h, other)| *h == host && *other != creds) {
            return Err(usage(format!(
                "--src-creds and --dest-creds give two sets of credentials for the one registry \
                 {host}, which would use one of them for both sides: give one (--creds)"
            )));
        }
        if !out.iter().any(|(h, _)| *h == host) {
            out.push((host, creds));
        }
    }
    if let Some(creds) = creds {
        // A registry spoken to without credentials takes none of --creds either.
        let mut left: Vec<&String> = [&from, &to]
            .into_iter()
            .flatten()
            .filter(|h| !out.iter().any(|(o, _)| o == *h) && !anonymous.contains(h))
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

/// Which registry reads which auth file alone: `--src-authfile` the source's,
/// `--dest-authfile` the destination's, each checked to be there. Like `--src-creds`, a flag
/// for a side that is no registry is a mistake; two files for one registry (a copy within
/// it) would leave one of them unread, so that is refused too.
pub(super) fn assign_auth_files(
    job: &Job,
    src: Option<PathBuf>,
    dest: Option<PathBuf>,
) -> Result<Vec<(String, PathBuf)>, UsageError> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for (host, path, flag) in per_side(job, "authfile", src, dest)? {
        if out.iter().any(|(h, other)| *h == host && *other != path) {
            return Err(usage(format!(
                "--src-authfile and --dest-authfile name two files for the one registry \
                 {host}: give one"
            )));
        }
        super::check_auth_file(&path, &flag, job)?;
        out.push((host, path));
    }
    Ok(out)
}

/// The registries `--src-no-creds` and `--dest-no-creds` name. A copy within one registry
/// speaks to it with one set of credentials or none: one side without them and the other
/// with them is refused.
pub(super) fn assign_no_creds(
    job: &Job,
    src: bool,
    dest: bool,
    files: &[(String, PathBuf)],
) -> Result<Vec<String>, UsageError> {
    let flag = |on: bool| on.then_some(());
    let mut out: Vec<String> = Vec::new();
    for (host, (), given) in per_side(job, "no-creds", flag(src), flag(dest))? {
        if files.iter().any(|(h, _)| *h == host) {
            return Err(usage(format!(
                "{given} and credentials for the other side name the one registry {host}, \
                 which is spoken to with one set of credentials or none: give one"
            )));
        }
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

/// The values given with `--src-NAME` and `--dest-NAME`, each with the registry of its side
/// and the flag's spelling; a value for a side that is no registry is a usage error.
fn per_side<T>(
    job: &Job,
    name: &str,
    src: Option<T>,
    dest: Option<T>,
) -> Result<Vec<(String, T, String)>, UsageError> {
    let (from, to) = job.registries();
    let mut out = Vec::new();
    for (given, host, side, prefix) in [
        (src, from, "source", "src"),
        (dest, to, "destination", "dest"),
    ] {
        let Some(value) = given else { continue };
        let flag = format!("--{prefix}-{name}");
        let Some(host) = host else {
            return Err(usage(format!("{flag}: the {side} is not a registry")));
        };
        out.push((host, value, flag));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::{err, ok, run};

    /// The one registry's credentials of a config.
    fn only_creds(c: &Config) -> (&str, &Credentials) {
        match c.registry_creds.as_slice() {
            [(host, creds)] => (host, creds),
            other => panic!("expected one registry's credentials, got {other:?}"),
        }
    }

    #[test]
    fn no_creds_names_one_side_and_takes_none_of_the_general_creds() {
        let (a, b) = ("docker://a.example/x:1", "docker://b.example:5000/y:1");
        let c = ok(&["--src-no-creds", "copy", a, b]).0;
        assert_eq!(c.anonymous_registries, ["a.example"]);
        assert!(c.registry_creds.is_empty());
        // --creds goes to the one registry left.
        let c = ok(&["--creds", "u:p", "--src-no-creds", "copy", a, b]).0;
        assert_eq!(only_creds(&c).0, "b.example:5000");
        let c = ok(&["--dest-no-creds", "--src-creds", "u:p", "copy", a, b]).0;
        assert_eq!(c.anonymous_registries, ["b.example:5000"]);
        assert_eq!(only_creds(&c).0, "a.example");
        // Within one registry: one set of credentials or none.
        let same = "docker://a.example/z:1";
        assert!(
            err(&["--src-no-creds", "--dest-creds", "u:p", "copy", a, same]).contains("one set")
        );
        let c = ok(&["--src-no-creds", "--dest-no-creds", "copy", a, same]).0;
        assert_eq!(c.anonymous_registries, ["a.example"]);
        // A side that is no registry, and the same side given both ways.
        assert!(err(&["--src-no-creds", "copy", "oci:x:1", b]).contains("not a registry"));
        assert!(
            err(&["--src-no-creds", "--src-creds", "u:p", "copy", a, b]).contains("cannot be used")
        );
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
        // Two sets for it would leave one unused (the client has one per registry): refused,
        // as two auth files for it are; the same set on both sides is one.
        let within = [
            "copy",
            "--all-tags",
            "docker://src.example/a",
            "docker://src.example/b",
        ];
        let two = err(&[&["--src-creds", "a:1", "--dest-creds", "b:2"][..], &within].concat());
        assert!(
            two.contains("two sets of credentials for the one registry src.example"),
            "{two}"
        );
        let (c, _) = ok(&[&["--src-creds", "a:1", "--dest-creds", "a:1"][..], &within].concat());
        assert_eq!(only_creds(&c).1.username, "a");
        // A side that is not a registry, or no password, is a usage error.
        assert!(err(&["--src-creds", "a:1", "copy", "oci:x", to]).contains("not a registry"));
        assert!(err(&["--dest-creds", "a:1", "copy", from, "oci:x"]).contains("not a registry"));
        assert!(err(&["--dest-creds", "a", "copy", from, to]).contains("USER:PASS"));
    }
}
