//! Credential helpers (`docker-credential-NAME`), as docker runs them: the program a name
//! stands for, and `get`, which answers with a user name and a secret (an identity token for
//! the user `<token>`) or fails for a registry it keeps nothing for.

use super::{Credentials, IDENTITY_TOKEN_USER};
use crate::{Error, Result};

/// The program a credential helper name stands for: `docker-credential-NAME`, searched on
/// `PATH` (a name with a path in it is refused).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for an empty name or one with `/` or `..`.
pub(crate) fn helper_program(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') || name.contains("..") {
        return Err(Error::invalid(format!(
            "credential helper name {name:?} is not allowed"
        )));
    }
    Ok(format!("docker-credential-{name}"))
}

/// Run `docker-credential-NAME get` with the registry on stdin.
pub(super) async fn run_helper(
    name: &str,
    registry: &str,
    helper_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>> {
    use tokio::io::AsyncWriteExt;
    let program = helper_program(name)?;
    let mut cmd = tokio::process::Command::new(&program);
    if let Some(p) = helper_path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::local(format!("running {program}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .await
            .map_err(|e| Error::local(format!("writing to {program}"), e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::local(format!("running {program}"), e))?;
    if !out.status.success() {
        // Helpers exit non-zero with "credentials not found" for unknown registries.
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct HelperOut {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let parsed: HelperOut = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::invalid(format!(
            "{program} printed something other than credentials JSON"
        ))
    })?;
    if parsed.secret.is_empty() {
        return Ok(None);
    }
    // docker's convention: the user `<token>` means the secret is an identity token.
    if parsed.username == IDENTITY_TOKEN_USER {
        return Ok(Some(Credentials::with_identity_token(
            parsed.username,
            parsed.secret,
        )));
    }
    Ok(Some(Credentials::new(parsed.username, parsed.secret)))
}
