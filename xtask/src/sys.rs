//! System helpers shared by xtask commands: running commands, finding and installing packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`). `cargo run` says where xtask's manifest is
/// when it starts the binary; that is preferred over the directory it was compiled in, which
/// may be another worktree's when the two share a target directory.
pub fn workspace_root() -> PathBuf {
    let at_runtime = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file());
    let manifest = at_runtime.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Run a command, echoing it, and fail unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", show(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", show(cmd));
    }
    Ok(())
}

/// Run a command like [`run`], but SIGKILL it and every process it started when it runs longer
/// than `limit`. It stays in xtask's process group, so a Ctrl-C at the terminal still reaches it.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Result<()> {
    eprintln!("$ {}  (time limit {limit:?})", show(cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {}", show(cmd)))?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{} failed with {status}", show(cmd));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            kill_tree(child.id());
            let _ = child.wait();
            bail!(
                "{} ran past its time limit of {limit:?} and was killed",
                show(cmd)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL `pid` and all its descendants, found through `/proc`: every process is stopped
/// first, until a pass finds no new one, so none can start another while they are collected.
fn kill_tree(pid: u32) {
    let mut tree = vec![pid];
    loop {
        for &p in &tree {
            // SAFETY: kill has no memory preconditions; these are our child and its descendants.
            unsafe { libc::kill(p as libc::pid_t, libc::SIGSTOP) };
        }
        let found = descendants(pid);
        let before = tree.len();
        for p in found {
            if !tree.contains(&p) {
                tree.push(p);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    for &p in &tree {
        // SAFETY: as above.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
    }
}

/// Every live descendant of `pid`, from the parent pids in `/proc/*/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((p, parent_pid(&stat)?))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The parent pid from the text of `/proc/PID/stat` (the field after the state, which follows
/// the command name's last `)`).
fn parent_pid(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Build the binary `bin` of the workspace package `package` with `cargo build --release` and
/// return the path cargo wrote it to, from cargo's JSON messages: wherever the target directory
/// is (`CARGO_TARGET_DIR`, `build.target-dir`), never a guess under `target/`.
pub fn build_release_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "--quiet"])
        .arg("--message-format=json-render-diagnostics")
        .args(["-p", package, "--bin", bin])
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {}", show(&cmd));
    let out = cmd
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .with_context(|| format!("could not start {}", show(&cmd)))?;
    if !out.status.success() {
        bail!("{} failed with {}", show(&cmd), out.status);
    }
    built_executable(&String::from_utf8_lossy(&out.stdout), bin)
        .with_context(|| format!("cargo built no executable named {bin:?} (package {package})"))
}

/// The `executable` of the binary target `bin` in cargo's `--message-format=json` output.
fn built_executable(messages: &str, bin: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Whether an executable is installed: on PATH or in the sbin directories, where nginx and
/// dockerd live and a non-root PATH often does not look (the test kit's search, so xtask and
/// the tests agree), or at a path containing `/`.
pub fn have(exe: &str) -> bool {
    hoist_testkit::find_tool(exe).is_some()
}

/// Whether we run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A system package and the executable that shows it is installed.
pub struct Package {
    /// The Debian package name.
    pub name: &'static str,
    /// An executable the package provides.
    pub exe: &'static str,
}

/// The Debian packages the test suite, demo and bench use.
pub const TEST_PACKAGES: &[Package] = &[
    Package {
        name: "docker-registry",
        exe: "docker-registry",
    },
    Package {
        name: "nginx",
        exe: "nginx",
    },
    Package {
        name: "docker.io",
        exe: "dockerd",
    },
    Package {
        name: "skopeo",
        exe: "skopeo",
    },
    Package {
        name: "umoci",
        exe: "umoci",
    },
    // Compress test archives the way users do (`docker save | xz`).
    Package {
        name: "xz-utils",
        exe: "xz",
    },
    Package {
        name: "bzip2",
        exe: "bzip2",
    },
];

/// Make sure every package in `wanted` is installed: install the missing ones with apt when root,
/// otherwise print the exact install line and fail.
pub fn ensure_packages(wanted: &[Package]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|p| !have(p.exe))
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!("apt-get install -y {}", missing.join(" "));
    if !is_root() {
        bail!("missing system packages; install them with:\n    sudo {line}");
    }
    eprintln!("installing missing system packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    // Debian starts services from postinst where it can; tests start their own private instances.
    for p in wanted {
        if !have(p.exe) {
            bail!("{} is still missing after installing {}", p.exe, p.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_where_cargo_says_it_wrote_it() {
        // Abridged from `cargo build --message-format=json` with CARGO_TARGET_DIR=/tmp/elsewhere.
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"hoist_oci"},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"hoist"},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"hoist"},"executable":"/tmp/elsewhere/release/hoist"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            built_executable(messages, "hoist"),
            Some(PathBuf::from("/tmp/elsewhere/release/hoist"))
        );
        assert_eq!(built_executable(messages, "hoist_oci"), None, "a library");
        assert_eq!(built_executable("not json\n", "hoist"), None);
    }

    #[test]
    fn tools_in_sbin_are_found_on_a_path_without_it() {
        // ldconfig (libc-bin, essential) is in /usr/sbin or /sbin, like nginx and dockerd.
        if std::env::var_os("XTASK_HAVE_CHILD").is_some() {
            assert!(have("ldconfig"), "PATH={:?}", std::env::var_os("PATH"));
            return;
        }
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sys::tests::tools_in_sbin_are_found_on_a_path_without_it",
            ])
            .env("PATH", "/usr/bin:/bin")
            .env("XTASK_HAVE_CHILD", "1")
            .output()
            .expect("rerun");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    #[test]
    fn a_command_past_its_limit_is_killed_with_everything_it_started() {
        let started = Instant::now();
        let err = run_with_timeout(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 40.75 & sleep 40.5 | cat; wait"),
            Duration::from_millis(500),
        )
        .expect_err("over its limit");
        assert!(
            err.to_string().contains("past its time limit of 500ms"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        // SIGKILLed, they may take a moment to exit: wait for them, not 40 s.
        let killed = Instant::now();
        loop {
            let left: Vec<String> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.starts_with("sleep 40."))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "left running: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        run_with_timeout(&mut Command::new("true"), Duration::from_secs(60)).expect("true");
        run_with_timeout(&mut Command::new("false"), Duration::from_secs(60)).expect_err("false");
        assert_eq!(parent_pid("7 (a) b) S 42 7 7"), Some(42));
    }
}
