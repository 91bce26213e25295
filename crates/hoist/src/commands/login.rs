//! `hoist login` and `hoist logout`: credentials checked with the registry, then kept in (or
//! removed from) the auth file every later command reads first, or by the credential helper
//! that file names for the registry (`credHelpers`, `credsStore`), as docker and podman do.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;

use super::registry;
use crate::config::{Config, Credentials, LoginServer};
use crate::interrupt;

/// The file a login writes to and a logout removes from: `--authfile` (or
/// `REGISTRY_AUTH_FILE`), else the first one credentials are looked for in, the auth.json
/// `podman login` writes.
fn auth_file(config: &Config) -> anyhow::Result<PathBuf> {
    match &config.auth_file {
        Some(path) => Ok(path.clone()),
        None => hoist_registry::default_auth_files()
            .into_iter()
            .next()
            .context("no auth file to use: set XDG_RUNTIME_DIR or name one with --authfile"),
    }
}

/// Ask the registry whether it accepts the credentials (asking for what was not given on the
/// terminal), then keep them for `server`'s key.
///
/// # Errors
/// A refusal (the registry's 401), the registry unreachable, the auth file unwritable.
pub fn login(
    config: &Config,
    server: &LoginServer,
    username: Option<String>,
    password: Option<hoist_registry::Secret>,
) -> anyhow::Result<()> {
    let runtime = super::runtime()?;
    let username = match username {
        Some(name) => name,
        None => runtime.block_on(ask("Username: ", Echo::On))?,
    };
    let password = match password {
        Some(password) => password.expose().to_owned(),
        None => runtime.block_on(ask("Password: ", Echo::Off))?,
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("a user name and a password are needed to log in");
    }
    let file = auth_file(config)?;
    // Only these credentials go to the registry: no auth file is consulted for the check.
    let mut checking = config.clone();
    checking.auth_file = None;
    checking.registry_auth_files.clear();
    checking.registry_creds = vec![(
        server.api_host.clone(),
        Credentials {
            username: username.clone(),
            password: password.clone(),
        },
    )];
    let client = registry::client(&checking)?;
    runtime
        .block_on(interrupt::interruptible(
            async {
                client
                    .check_credentials(&server.api_host)
                    .await
                    .map_err(anyhow::Error::from)
            },
            std::time::Duration::ZERO,
            interrupt::STARTS_OVER,
        ))
        .with_context(|| format!("logging in to {}", server.key))?;
    let credentials = hoist_registry::Credentials::new(username, password);
    let kept = hoist_registry::store_credentials(&file, &server.key, &credentials).context(
        "the registry accepted the credentials, but keeping them failed (--authfile names \
         another file)",
    )?;
    if config.verbosity >= 0 {
        let place = match kept {
            hoist_registry::Kept::Helper(helper) => format!(
                "by docker-credential-{helper} (the helper {} names for it)",
                file.display()
            ),
            _ => format!("in {}", file.display()),
        };
        eprintln!(
            "Login Succeeded: credentials for {} kept {place}",
            server.key
        );
    }
    Ok(())
}

/// Remove what the auth file keeps for `server`, or for every registry.
///
/// # Errors
/// Nothing kept for `server` (as `podman logout` fails), or the file unreadable or unwritable.
pub fn logout(config: &Config, server: Option<&LoginServer>) -> anyhow::Result<()> {
    let file = auth_file(config)?;
    let key = server.map(|s| s.key.as_str());
    let removed = hoist_registry::remove_credentials(&file, key).context("removing credentials")?;
    match (removed.is_empty(), key) {
        (false, _) | (true, None) => {
            if config.verbosity >= 0 {
                let whose = key.unwrap_or("every registry");
                let places: Vec<String> = removed
                    .iter()
                    .map(|kept| match kept {
                        hoist_registry::Kept::Helper(helper) => {
                            format!("docker-credential-{helper}")
                        }
                        _ => file.display().to_string(),
                    })
                    .collect();
                let from = match places.is_empty() {
                    true => file.display().to_string(),
                    false => places.join(" and "),
                };
                eprintln!("Removed the credentials for {whose} from {from}");
            }
            Ok(())
        }
        (true, Some(key)) => anyhow::bail!(
            "{} keeps no credentials for {key} (hoist login {key} writes them there)",
            file.display()
        ),
    }
}

/// Whether the terminal shows what is typed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Echo {
    On,
    Off,
}

/// Ask on stderr and read a line from the terminal on stdin; with [`Echo::Off`], what is typed
/// is not shown (restored afterwards, also when Ctrl-C interrupts the question).
async fn ask(question: &str, echo: Echo) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question}")
        .and_then(|()| stderr.flush())
        .context("writing to stderr")?;
    drop(stderr);
    let _hidden = match echo {
        Echo::Off => Some(EchoOff::new().context("turning off the terminal's echo")?),
        Echo::On => None,
    };
    // A thread of its own (not tokio's blocking pool, which the runtime would wait for at
    // exit): on Ctrl-C the read is abandoned, the echo restored, the command ends.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    let read = async {
        rx.await
            .context("reading the terminal")?
            .context("reading stdin")
    };
    let line =
        interrupt::interruptible(read, std::time::Duration::ZERO, interrupt::STARTS_OVER).await;
    if echo == Echo::Off {
        // The Enter typed was not shown either.
        eprintln!();
    }
    Ok(line?.trim_end_matches(['\n', '\r']).to_owned())
}

/// The terminal on stdin with echo turned off until dropped.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new() -> std::io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ =
            rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &self.saved);
    }
}
