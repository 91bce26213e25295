//! `hoist login` and `hoist logout`: the registry (or namespace) named, normalized into the key
//! podman's auth.json files it under, and where the user name and password come from.

use super::{Environment, Job, UsageError, usage};
use crate::cli::GlobalArgs;

/// What credentials are kept for: the registry's API host (asked whether it accepts them) and
/// the auth file key (`host[:port]`, or `host/namespace` for a namespace's own credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginServer {
    /// Where the registry's API is (`registry-1.docker.io` for Docker Hub).
    pub api_host: String,
    /// The key in the auth file (`docker.io` for Docker Hub, as podman writes it).
    pub key: String,
}

/// Parse `REGISTRY[/NAMESPACE]` as podman does: a URL (`https://`, `http://`) names its host
/// alone (its path is an API's, as in docker's `https://index.docker.io/v1/`), `docker://` and
/// a trailing `/` are dropped, and Docker Hub's hosts all mean `docker.io`.
pub(super) fn parse_server(text: &str) -> Result<LoginServer, UsageError> {
    let bare = match ["https://", "http://"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
    {
        Some(url) => url.split('/').next().unwrap_or(url),
        None => text.strip_prefix("docker://").unwrap_or(text),
    }
    .trim_end_matches('/');
    let (host, namespace) = match bare.split_once('/') {
        Some((host, namespace)) => (host, Some(namespace)),
        None => (bare, None),
    };
    let host = host.to_ascii_lowercase();
    let hub = matches!(
        host.as_str(),
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    );
    let (key_host, api_host) = match hub {
        true => (
            hoist_oci::reference::DEFAULT_REGISTRY,
            hoist_oci::reference::DEFAULT_REGISTRY_API_HOST,
        ),
        false => (host.as_str(), host.as_str()),
    };
    // The registry client's own rules for a host and a repository path.
    hoist_registry::Repo::new(api_host, namespace.unwrap_or("x")).map_err(|_| {
        usage(format!(
            "`{text}` is no registry: expected HOST[:PORT] or HOST[:PORT]/NAMESPACE (a \
             namespace in lowercase, without a tag)"
        ))
    })?;
    let key = match namespace {
        Some(namespace) => format!("{key_host}/{namespace}"),
        None => key_host.to_owned(),
    };
    Ok(LoginServer {
        api_host: api_host.to_owned(),
        key,
    })
}

/// The login job: the server parsed, the password read from stdin when asked to, and what is
/// left to ask for only when there is a terminal to ask on. The credential options of other
/// commands are refused, not silently ignored.
pub(super) fn login_job(
    server: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    global: &GlobalArgs,
    env: &mut Environment<'_>,
) -> Result<Job, UsageError> {
    refuse_other_credentials(global, "login")?;
    let server = parse_server(server)?;
    let password = match (password, password_stdin) {
        (given, false) => given,
        (_, true) => {
            if username.is_none() {
                return Err(usage(
                    "--password-stdin reads the password from stdin: give --username as well",
                ));
            }
            let line = (env.read_stdin_line)()
                .map_err(|e| usage(format!("--password-stdin: cannot read stdin: {e}")))?;
            Some(line.trim_end_matches(['\n', '\r']).to_owned())
        }
    };
    if password.as_deref() == Some("") {
        return Err(usage("the password is empty"));
    }
    if username.as_deref() == Some("") {
        return Err(usage("the user name is empty"));
    }
    if (username.is_none() || password.is_none()) && !env.stdin_is_tty {
        return Err(usage(
            "stdin is no terminal to ask on: give --username and --password-stdin (or --password)",
        ));
    }
    Ok(Job::Login {
        server,
        username,
        password: password.map(hoist_registry::Secret::new),
    })
}

/// The logout job: one server's credentials, or with `all` every registry's.
pub(super) fn logout_job(
    server: Option<&str>,
    all: bool,
    global: &GlobalArgs,
) -> Result<Job, UsageError> {
    refuse_other_credentials(global, "logout")?;
    let server = match (server, all) {
        (_, true) => None,
        (Some(server), false) => Some(parse_server(server)?),
        (None, false) => return Err(usage("logout needs a REGISTRY, or --all")),
    };
    Ok(Job::Logout { server })
}

/// `--creds` and friends say whose credentials a transfer uses; login takes its own.
fn refuse_other_credentials(global: &GlobalArgs, command: &str) -> Result<(), UsageError> {
    let given = [
        ("--creds", global.creds.is_some()),
        ("--creds-stdin", global.creds_stdin),
        ("--src-creds", global.src_creds.is_some()),
        ("--dest-creds", global.dest_creds.is_some()),
        ("--src-authfile", global.src_authfile.is_some()),
        ("--dest-authfile", global.dest_authfile.is_some()),
    ];
    match given.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(usage(format!(
            "{flag} does not go with {command}: it takes --username and --password-stdin, and \
             --authfile names the file to keep them in"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{err, ok, run};

    #[test]
    fn a_server_is_keyed_as_podman_keys_it() {
        let server = |text: &str| {
            let s = parse_server(text).expect(text);
            (s.api_host, s.key)
        };
        let pair = |a: &str, k: &str| (a.to_owned(), k.to_owned());
        assert_eq!(
            server("reg.example:5000"),
            pair("reg.example:5000", "reg.example:5000")
        );
        // A URL names a registry, as in podman: its path is an API's, not a namespace
        // (`docker login https://index.docker.io/v1/`, docker's own name for Docker Hub).
        assert_eq!(
            server("https://Quay.io/team/app/"),
            pair("quay.io", "quay.io")
        );
        assert_eq!(
            server("http://reg.example:5000/v2/"),
            pair("reg.example:5000", "reg.example:5000")
        );
        assert_eq!(
            server("https://index.docker.io/v1/"),
            pair("registry-1.docker.io", "docker.io")
        );
        assert_eq!(
            server("[::1]:5000/team"),
            pair("[::1]:5000", "[::1]:5000/team")
        );
        assert_eq!(
            server("docker://127.0.0.1:5000/team"),
            pair("127.0.0.1:5000", "127.0.0.1:5000/team")
        );
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(server(hub), pair("registry-1.docker.io", "docker.io"));
        }
        assert_eq!(
            server("docker.io/someone"),
            pair("registry-1.docker.io", "docker.io/someone")
        );
        for bad in [
            "",
            "reg.example/Team",
            "reg.example/a:tag",
            "a b",
            "reg.example//x",
        ] {
            let e = parse_server(bad).expect_err(bad).0;
            assert!(e.contains("is no registry"), "{bad}: {e}");
        }
    }

    #[test]
    fn login_reads_the_password_from_stdin_and_asks_only_on_a_terminal() {
        let (_, job) = run(
            &["login", "-u", "deploy", "--password-stdin", "reg.example"],
            "s3cret\n",
            false,
        )
        .expect("valid");
        let Job::Login {
            server,
            username,
            password,
        } = job
        else {
            panic!("{job:?}");
        };
        assert_eq!(server.key, "reg.example");
        assert_eq!(username.as_deref(), Some("deploy"));
        assert_eq!(password.as_ref().map(|p| p.expose()), Some("s3cret"));
        assert!(!format!("{:?}", password).contains("s3cret"));
        // Nothing to ask on: what is missing must be given.
        assert!(err(&["login", "reg.example"]).contains("no terminal"));
        assert!(err(&["login", "-u", "d", "reg.example"]).contains("no terminal"));
        let (_, job) = run(&["login", "reg.example"], "", true).expect("asks on the tty");
        assert!(matches!(
            job,
            Job::Login {
                username: None,
                password: None,
                ..
            }
        ));
        assert!(err(&["login", "--password-stdin", "reg.example"]).contains("give --username"));
        let e = run(
            &["login", "-u", "d", "--password-stdin", "r.example"],
            "\n",
            false,
        );
        assert!(e.expect_err("empty").0.contains("password is empty"));
        assert!(
            err(&["--creds", "u:p", "login", "-u", "u", "-p", "p", "r.example"])
                .contains("--creds does not go with login")
        );
    }

    #[test]
    fn a_password_may_start_with_a_dash() {
        // As docker's and podman's -p take the next argument whatever it is; clap would
        // otherwise refuse it and print it back as an unexpected argument.
        for given in ["-Secret-9x", "--Secret-9x"] {
            let (_, job) = ok(&["login", "-u", "u", "-p", given, "reg.example"]);
            let Job::Login { password, .. } = job else {
                panic!("{job:?}");
            };
            assert_eq!(password.as_ref().map(|p| p.expose()), Some(given));
        }
    }

    #[test]
    fn logout_names_one_server_or_all() {
        let (_, job) = ok(&["logout", "reg.example/team"]);
        let Job::Logout { server: Some(s) } = job else {
            panic!("{job:?}");
        };
        assert_eq!(s.key, "reg.example/team");
        assert_eq!(ok(&["logout", "--all"]).1, Job::Logout { server: None });
        assert!(run(&["logout"], "", false).is_err());
        assert!(run(&["logout", "--all", "reg.example"], "", false).is_err());
    }

    #[test]
    fn login_does_not_need_its_auth_file_to_exist_yet() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("new.json");
        let file = file.to_str().expect("utf-8");
        let (config, _) = ok(&[
            "--authfile",
            file,
            "login",
            "-u",
            "u",
            "-p",
            "p",
            "reg.example",
        ]);
        assert_eq!(
            config.auth_file.as_deref(),
            Some(std::path::Path::new(file))
        );
    }
}
