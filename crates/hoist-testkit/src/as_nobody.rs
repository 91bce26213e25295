//! Running part of a test as the unprivileged user `nobody`.
//!
//! Some behaviour only shows without root's override of file permissions: unpacking rootless
//! into directories the user may not write, a socket nobody may open, a layout only root may
//! write. A test that runs as root gets there by running a command as `nobody` ([`output`]),
//! or by re-running one test of its own binary as `nobody` ([`rerun_test`]), usually with an
//! environment variable that tells the child it is the child and where to work.
//!
//! Whether `nobody` can start the program is the environment's business, not the code's: a
//! target directory under a home directory nobody may enter makes the binary unreachable.
//! That is a loud [`skip`](crate::skip()) (a failure under `CI=true`), never a silent pass.
//! Anything else is the test's outcome: a child that fails, or runs no test at all, fails the
//! parent with the child's whole output in the message.
//!
//! These helpers do not check for root themselves: the caller decides what a test does when
//! it is not root ([`require_root`](crate::require_root) to skip, or run unprivileged as it
//! is). Without root, `nobody` cannot be switched to and the helpers skip.
//!
//! # Example
//!
//! ```no_run
//! use hoist_testkit::as_nobody;
//!
//! const CHILD: &str = "MY_TEST_DIR";
//!
//! // A #[test] in an integration test's root.
//! fn works_as_an_unprivileged_user() {
//!     if let Some(dir) = std::env::var_os(CHILD) {
//!         // The child, as nobody: the checks themselves, in `dir`.
//!         # let _ = dir;
//!         return;
//!     }
//!     if !hoist_testkit::require_root() {
//!         return;
//!     }
//!     let dir = as_nobody::tempdir();
//!     as_nobody::rerun_test("works_as_an_unprivileged_user", [(CHILD, dir.path())]);
//! }
//! ```

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The user ID of `nobody` (Debian's, and the kernel's overflow ID).
pub const UID: u32 = 65534;
/// The group ID `nobody` runs with (Debian's `nogroup`).
pub const GID: u32 = 65534;

/// Make `nobody` the owner of `path` (user and group).
///
/// # Panics
/// When `chown` fails (not root, or no such path).
pub fn chown(path: &Path) {
    std::os::unix::fs::chown(path, Some(UID), Some(GID))
        .unwrap_or_else(|e| panic!("chown {} to nobody: {e}", path.display()));
}

/// A new temp directory, as [`tempfile::tempdir`] makes it, owned by `nobody`. It is removed on
/// drop like any other (root may remove what nobody owns).
///
/// # Panics
/// When the directory cannot be made or given to `nobody`.
pub fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    chown(dir.path());
    dir
}

/// Run `command` to completion as `nobody` (supplementary groups dropped) and return what it
/// printed and how it exited.
///
/// `None` after a loud [`skip`](crate::skip()) when the program cannot be started as `nobody`
/// (typically: it is not executable by `nobody`); under `CI=true` that panics instead.
pub fn output(command: &mut Command) -> Option<Output> {
    use std::os::unix::process::CommandExt;
    match command.uid(UID).gid(GID).output() {
        Ok(out) => Some(out),
        Err(e) => {
            crate::skip(&format!(
                "running {} as user nobody (it must be executable by nobody): {e}",
                command.get_program().to_string_lossy()
            ));
            None
        }
    }
}

/// Re-run the test `name` of the current test binary as `nobody`, with `envs` set, and assert
/// that it ran and passed.
///
/// The child is `<this binary> --exact NAME --include-ignored --nocapture`: `name` is the
/// test's path in its crate (`module::test`, or just `test` in an integration test's root), and
/// it may be an `#[ignore]`d helper test as well as the calling test itself. `true` once the
/// child passed; `false` after a loud [`skip`](crate::skip()) when the binary cannot be started
/// as `nobody`.
///
/// # Panics
/// When the child fails or does not report exactly one passed test, with its stdout and stderr
/// in the message.
pub fn rerun_test<I, K, V>(name: &str, envs: I) -> bool
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = crate::process::rerun_command(name);
    command.envs(envs);
    let Some(out) = output(&mut command) else {
        return false;
    };
    crate::process::check_rerun(&format!("{name} as nobody"), &out);
    true
}

/// The environment variable that gives [`unprivileged`]'s child its directory.
const UNPRIVILEGED_DIR: &str = "HOIST_TESTKIT_UNPRIVILEGED_DIR";

/// Run `body` in a fresh directory as a user without root's override of file permissions:
/// directly when this process is not root; as root, by re-running the test `name` (the caller
/// itself, see [`rerun_test`]) as `nobody` in a directory `nobody` owns, where the child runs
/// `body`.
///
/// # Panics
/// When `body` panics, or the child fails (see [`rerun_test`]).
pub fn unprivileged(name: &str, body: fn(&Path)) {
    if let Some(dir) = std::env::var_os(UNPRIVILEGED_DIR) {
        body(Path::new(&dir));
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let dir = tempfile::tempdir().expect("tempdir");
        body(dir.path());
        return;
    }
    let dir = tempdir();
    rerun_test(name, [(UNPRIVILEGED_DIR, dir.path())]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "HOIST_TESTKIT_AS_NOBODY_CHILD";

    #[test]
    fn a_command_runs_as_nobody() {
        if !crate::require_root() {
            return;
        }
        let Some(out) = output(Command::new("id").args(["-u"])) else {
            return;
        };
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), UID.to_string());
    }

    #[test]
    fn a_test_reruns_as_nobody_in_a_directory_nobody_owns() {
        if !crate::require_root() {
            return;
        }
        let dir = tempdir();
        if rerun_test("as_nobody::tests::child_as_nobody", [(CHILD, dir.path())]) {
            assert!(dir.path().join("written-by-nobody").is_file());
        }
    }

    /// Run by `a_test_reruns_as_nobody_in_a_directory_nobody_owns` as `nobody`.
    #[test]
    #[ignore = "helper: run as nobody by a_test_reruns_as_nobody_in_a_directory_nobody_owns"]
    fn child_as_nobody() {
        let dir = std::env::var_os(CHILD).expect("run only by the parent test");
        // SAFETY: geteuid has no preconditions and cannot fail.
        assert_eq!(unsafe { libc::geteuid() }, UID, "runs as nobody");
        std::fs::write(Path::new(&dir).join("written-by-nobody"), b"").expect("nobody's dir");
    }
}
