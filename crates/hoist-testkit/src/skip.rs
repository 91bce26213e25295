//! Skip logic: a test that cannot run here says so loudly, and fails instead when `CI=true`.

use std::path::{Path, PathBuf};

/// True when the environment variable `CI` is exactly `true`: skipped cases must then fail.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Report that a test case cannot run because `what` is missing.
///
/// Prints `SKIP: <what>` to stderr and returns `false`; when `CI=true` it panics with the same
/// message instead, because in CI every case must really run.
pub fn skip(what: &str) -> bool {
    let msg = format!("SKIP: {what}");
    if in_ci() {
        panic!("{msg} (CI=true: a case that cannot run is a failure)");
    }
    eprintln!("{msg}");
    false
}

/// True when the executable `name` is on `PATH` (or in one of the sbin directories, which a root
/// shell usually has but a test runner may not).
///
/// Otherwise prints `SKIP: <name> not installed (apt-get install <pkg>)` to stderr and returns
/// false; when `CI=true`, panics with that message instead.
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    skip(&format!(
        "{name} not installed (apt-get install {})",
        package_for(name)
    ))
}

/// True when the process runs as root; otherwise skips (or panics under `CI=true`) like
/// [`require_tool`].
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip("not running as root (this test starts daemons that need root)")
}

/// The absolute path of the executable `name`: searched on `PATH`, then in the sbin directories.
/// A name containing `/` is taken as a path and only checked.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Debian package that ships the tool `name`, for the SKIP message.
pub fn package_for(name: &str) -> &str {
    match name {
        "docker-registry" => "docker-registry",
        "dockerd" | "docker" => "docker.io",
        "htpasswd" => "apache2-utils",
        "mkfs.ext4" => "e2fsprogs",
        "xz" => "xz-utils",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("hoist-no-such-tool-xyz").is_none());
        assert!(require_tool("sh"));
    }

    #[test]
    fn package_names() {
        assert_eq!(package_for("dockerd"), "docker.io");
        assert_eq!(package_for("skopeo"), "skopeo");
    }
}
