//! Measuring one command from the outside: wall time, user+sys CPU and peak RSS via `wait4`,
//! through the [launcher](super::launcher).

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What the OS says one run cost.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Sample {
    /// Wall-clock time from spawn to reap, in seconds.
    pub wall_s: f64,
    /// User CPU seconds of the child and every descendant it waited for.
    pub user_s: f64,
    /// System CPU seconds, likewise.
    pub sys_s: f64,
    /// Peak resident set size in KiB (`ru_maxrss`): the largest of the child and its waited-for
    /// descendants, so a shell pipeline reports its biggest stage.
    pub max_rss_kib: u64,
    /// Whether the child exited with status 0 (and, checked by the caller, did its job).
    pub ok: bool,
    /// Whether it was killed for running past the time limit.
    pub timed_out: bool,
    /// User+sys CPU seconds the scenario's servers (a registry, dockerd) spent during the run,
    /// from `/proc`; `None` when the scenario has none or one could not be read.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
}

impl Sample {
    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Whether a variable of xtask's environment is kept from every measured command, because it
/// changes the work: hoist's own settings (`HOIST_*`, `RUST_LOG`), the registry credentials and
/// configuration skopeo and hoist read (`REGISTRY_AUTH_FILE`, `CONTAINERS_*`), the docker
/// client's and hoist's daemon settings (`DOCKER_*`), and the allocator and Go runtime knobs
/// that move memory and CPU (`MALLOC_*`, `GLIBC_TUNABLES`, `GOGC`, `GOMAXPROCS`, `GOMEMLIMIT`,
/// `GODEBUG`). A command that needs one has it set on its `Command`, which wins.
pub fn scrubbed(name: &str) -> bool {
    const PREFIXES: [&str; 4] = ["HOIST_", "CONTAINERS_", "DOCKER_", "MALLOC_"];
    const NAMES: [&str; 7] = [
        "RUST_LOG",
        "REGISTRY_AUTH_FILE",
        "GLIBC_TUNABLES",
        "GOGC",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GODEBUG",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// Remove from `launch` every [`scrubbed`] variable among `inherited` (the names in xtask's
/// environment), then apply `cmd`'s own environment changes on top.
fn environment(launch: &mut Command, inherited: impl Iterator<Item = OsString>, cmd: &Command) {
    for name in inherited {
        if name.to_str().is_some_and(scrubbed) {
            launch.env_remove(name);
        }
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => launch.env(key, v),
            None => launch.env_remove(key),
        };
    }
}

/// How long past its limit a run may take before xtask stops waiting for the launcher to end
/// it: first SIGTERM (the launcher kills the run and reports), then, as long again later,
/// SIGKILL.
const BACKSTOP: Duration = Duration::from_secs(10);

/// The xtask binary, run as the launcher ([`super::launcher`]) between xtask and every measured
/// command, so the command's peak RSS starts from the launcher's small address space rather
/// than xtask's.
#[derive(Debug, Clone)]
pub struct Launcher {
    exe: PathBuf,
}

impl Launcher {
    /// This xtask binary.
    ///
    /// # Errors
    /// When the OS cannot say where it is.
    pub fn this_binary() -> anyhow::Result<Launcher> {
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        Ok(Launcher { exe })
    }

    /// Run `cmd` to completion through the launcher with stdin closed and stdout/stderr
    /// appended to `log` (or inherited when `log` is `None`), and measure it with `wait4`.
    ///
    /// Of `cmd` the program, arguments, environment changes and working directory are used (not
    /// `env_clear`); the command does not inherit xtask's [`scrubbed`] variables. The command runs in a process group of its own, which the launcher
    /// SIGKILLs when it runs longer than `limit`. A non-zero exit or a timeout is returned as
    /// a sample with `ok: false` (the caller decides whether that is fatal); failing to start
    /// the launcher or to read its report is an error, and so is a signal to xtask
    /// ([`crate::interrupt`]), which has the launcher kill the command first. A program that
    /// cannot be executed is a failed run with exit status 127 and the reason in its log.
    pub fn measure(
        &self,
        cmd: &Command,
        log: Option<&Path>,
        limit: Duration,
    ) -> anyhow::Result<Sample> {
        let report = tempfile::Builder::new()
            .prefix("xtask-measure-")
            .tempfile()
            .context("creating the launcher's report file")?;
        let mut launch = Command::new(&self.exe);
        launch
            .arg(super::launcher::COMMAND)
            .arg(report.path())
            .arg(limit.as_millis().max(1).to_string())
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        environment(&mut launch, std::env::vars_os().map(|(k, _)| k), cmd);
        if let Some(dir) = cmd.get_current_dir() {
            launch.current_dir(dir);
        }
        if let Some(log) = log {
            let out = File::options()
                .create(true)
                .append(true)
                .open(log)
                .with_context(|| format!("opening {}", log.display()))?;
            let err = out.try_clone()?;
            launch.stdout(Stdio::from(out)).stderr(Stdio::from(err));
        }
        launch.stdin(Stdio::null()).process_group(0);
        let status = run_launcher(&mut launch, limit)
            .with_context(|| format!("measuring {:?}", cmd.get_program()))?;
        crate::interrupt::check()?;
        let text = std::fs::read_to_string(report.path()).unwrap_or_default();
        let Some(r) = super::launcher::Report::parse(&text) else {
            bail!(
                "the launcher ({}) ended with {status} without a report{}",
                self.exe.display(),
                log.map_or(String::new(), |l| format!("; see {}", l.display()))
            );
        };
        Ok(Sample {
            wall_s: r.wall.as_secs_f64(),
            user_s: r.user_s,
            sys_s: r.sys_s,
            max_rss_kib: r.max_rss_kib,
            ok: r.ok(),
            timed_out: r.timed_out,
            server_cpu_s: None,
        })
    }

    /// The peak RSS, in KiB, of `/bin/true` measured through the launcher: the smallest peak a
    /// measurement can show (the largest of three runs).
    ///
    /// # Errors
    /// When the launcher cannot run it.
    pub fn rss_floor_kib(&self) -> anyhow::Result<u64> {
        let mut floor = 0;
        for _ in 0..3 {
            let s = self.measure(&Command::new("true"), None, Duration::from_secs(60))?;
            anyhow::ensure!(s.ok, "`true` failed through the launcher: {s:?}");
            floor = floor.max(s.max_rss_kib);
        }
        Ok(floor)
    }
}

/// Start the launcher and wait for it to exit; past `limit` plus [`BACKSTOP`] (the launcher
/// should have ended the run by then) SIGTERM it, and after another `BACKSTOP` SIGKILL it.
fn run_launcher(launch: &mut Command, limit: Duration) -> anyhow::Result<ExitStatus> {
    let mut child = launch.spawn().context("starting the launcher")?;
    let pid = child.id() as libc::pid_t;
    // A signal to xtask has the launcher stop its run (see `interrupt`).
    let running = crate::interrupt::Running::new(pid);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            let wait = if sig == libc::SIGTERM {
                limit + BACKSTOP
            } else {
                BACKSTOP
            };
            if done_rx.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            // SAFETY: kill has no memory preconditions; pid is the launcher, still unreaped
            // (the main thread reaps only after this thread is joined).
            unsafe { libc::kill(pid, sig) };
        }
    });
    // Wait for the exit without reaping it, so nothing that may still signal the launcher (the
    // watchdog, a signal's handler) can hit a recycled pid; reap only after both let go of it.
    let exited = loop {
        // SAFETY: an all-zero siginfo_t is a valid out-value for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child; info is a valid out-pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r == 0;
    };
    drop(running);
    let _ = done_tx.send(());
    let _ = watchdog.join();
    if !exited {
        bail!("waitid({pid}) failed: {}", std::io::Error::last_os_error());
    }
    Ok(child.wait()?)
}

/// User+sys CPU seconds the processes `pids` have used so far (all their threads), or `None`
/// when one of them cannot be read (gone, or not Linux).
pub fn processes_cpu_s(pids: &[u32]) -> Option<f64> {
    // SAFETY: sysconf has no memory preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_s <= 0 {
        return None;
    }
    let mut ticks = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ticks += cpu_ticks(&stat)?;
    }
    Some(ticks as f64 / ticks_per_s as f64)
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`. The command name (field 2)
/// is in parentheses and may itself hold spaces and parentheses, so fields are counted from the
/// last `)`: state is the first after it, utime the 12th and stime the 13th.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Smallest and largest value.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Between runs: write every dirty page back (`sync`), so no run pays for the writeback of the
/// one before it (in the export-scale scenario a 1 GiB export right after a 4 GiB one took 14 s, 10-11 s on its
/// own),
/// then a short sleep so the scheduler settles.
pub fn settle() {
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("bench: WARNING sync failed ({e}): runs may pay for each other's writeback");
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Instant;

    /// The xtask binary that cargo builds beside this test binary (`target/debug/xtask`, for the
    /// integration tests in `xtask/tests/`), as the launcher.
    pub(crate) fn launcher() -> Launcher {
        let me = std::env::current_exe().expect("test binary");
        let exe = me
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("xtask"))
            .expect("target/debug");
        assert!(
            exe.is_file(),
            "{} is missing: cargo builds it for xtask's integration tests (`cargo test -p \
             xtask` does, `--bin xtask` alone does not), or `cargo build -p xtask`",
            exe.display()
        );
        Launcher { exe }
    }

    /// Live processes whose command line is exactly `argv`.
    fn running(argv: &[&str]) -> usize {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
            .count()
    }

    #[test]
    fn measures_cpu_memory_and_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("measure.log");
        // A shell that burns a little CPU and touches ~40 MiB in a child (head + a pipe buffer
        // would not do; `dd` with a big block size allocates the buffer).
        let s = launcher()
            .measure(
                Command::new("sh")
                    .arg("-c")
                    .arg("dd if=/dev/zero of=/dev/null bs=40M count=3 2>/dev/null"),
                Some(&log),
                Duration::from_secs(60),
            )
            .expect("measure");
        assert!(s.ok);
        assert!(
            (30 * 1024..48 * 1024).contains(&s.max_rss_kib),
            "the descendant's 40 MiB peak counted, and little more: {s:?}"
        );
        assert!(s.wall_s > 0.0 && s.cpu_s() > 0.0, "{s:?}");
        assert!(s.cpu_s() < s.wall_s + 0.05, "one process at a time: {s:?}");
        let f = launcher()
            .measure(
                Command::new("sh").arg("-c").arg("exit 3"),
                Some(&log),
                Duration::from_secs(60),
            )
            .expect("measure");
        assert!(!f.ok && !f.timed_out);
        assert!(f.max_rss_kib < 4 * 1024, "a bare shell: {f:?}");
        let t = launcher()
            .measure(
                Command::new("sh").arg("-c").arg("sleep 30.25 | cat"),
                Some(&log),
                Duration::from_millis(300),
            )
            .expect("measure");
        assert!(!t.ok && t.timed_out, "{t:?}");
        assert!(t.wall_s < 10.0, "{t:?}");
        // SIGKILLed, the stages may take a moment to exit: wait for them, not 30 s.
        let killed = Instant::now();
        while running(&["sleep", "30.25"]) > 0 {
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "the whole pipeline was killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let missing = launcher()
            .measure(
                &Command::new("/nonexistent/tool"),
                Some(&log),
                Duration::from_secs(60),
            )
            .expect("measure");
        assert!(!missing.ok && !missing.timed_out, "{missing:?}");
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.contains("cannot run /nonexistent/tool"), "{text}");
    }

    #[test]
    fn peak_rss_is_the_commands_own_not_xtasks() {
        // std's spawn started every child's peak RSS at this process's high-water mark. Raise
        // it by 128 MiB, let the memory go, and measure `true`.
        let mut big = vec![0u8; 128 << 20];
        for page in big.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&big);
        drop(big);
        let s = launcher()
            .measure(&Command::new("/bin/true"), None, Duration::from_secs(60))
            .expect("measure");
        assert!(s.ok, "{s:?}");
        assert!(s.max_rss_kib < 4 * 1024, "/bin/true measured at {s:?}");
        let floor = launcher().rss_floor_kib().expect("floor");
        assert!((1..4 * 1024).contains(&floor), "{floor} KiB");
    }

    #[test]
    fn a_callers_hoist_and_registry_settings_do_not_reach_the_command() {
        for name in [
            "HOIST_COMPRESSION",
            "HOIST_CONCURRENCY",
            "REGISTRY_AUTH_FILE",
            "CONTAINERS_REGISTRIES_CONF",
            "DOCKER_CONFIG",
            "DOCKER_HOST",
            "MALLOC_ARENA_MAX",
            "GOMAXPROCS",
            "RUST_LOG",
        ] {
            assert!(scrubbed(name), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "TMPDIR",
            "LANG",
            "HOISTED",
            "XDG_CACHE_HOME",
        ] {
            assert!(!scrubbed(name), "{name}");
        }
        let inherited = [
            "PATH",
            "HOIST_CHUNK_SIZE",
            "REGISTRY_AUTH_FILE",
            "DOCKER_HOST",
        ];
        let mut cmd = Command::new("hoist");
        cmd.env("DOCKER_HOST", "unix:///private.sock")
            .env_remove("HOME");
        let mut launch = Command::new("xtask");
        environment(&mut launch, inherited.iter().map(OsString::from), &cmd);
        let envs: Vec<(String, Option<String>)> = launch
            .get_envs()
            .map(|(k, v)| {
                let s = |x: &std::ffi::OsStr| x.to_string_lossy().into_owned();
                (s(k), v.map(s))
            })
            .collect();
        let want = |k: &str, v: Option<&str>| (k.to_string(), v.map(ToString::to_string));
        assert_eq!(
            envs,
            [
                want("DOCKER_HOST", Some("unix:///private.sock")),
                want("HOIST_CHUNK_SIZE", None),
                want("HOME", None),
                want("REGISTRY_AUTH_FILE", None),
            ],
            "sorted by name: the command's own setting wins, the caller's are removed"
        );
    }

    #[test]
    fn the_environment_and_directory_reach_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("env.log");
        let s = launcher()
            .measure(
                Command::new("sh")
                    .arg("-c")
                    .arg("test \"$XTASK_T_SET\" = yes && test -z \"$HOME\" && pwd")
                    .env("XTASK_T_SET", "yes")
                    .env_remove("HOME")
                    .current_dir(dir.path()),
                Some(&log),
                Duration::from_secs(60),
            )
            .expect("measure");
        assert!(
            s.ok,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let text = std::fs::read_to_string(&log).expect("log");
        let here = dir.path().canonicalize().expect("canonical");
        assert!(text.contains(&*here.to_string_lossy()), "{text}");
    }

    #[test]
    fn cpu_ticks_are_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 3 4 20 0 7 0 12345 1000000 200";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None, "cut short");
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_a_dead_one_none() {
        let mine = processes_cpu_s(&[std::process::id()]).expect("own stat");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let later = processes_cpu_s(&[std::process::id()]).expect("own stat");
        assert!(later >= mine + 0.1, "{mine} -> {later}");
        let mut child = Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("wait");
        assert_eq!(processes_cpu_s(&[pid]), None, "a reaped child has no stat");
    }

    #[test]
    fn stats() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(min_max(&[2.0, 5.0, 1.0]), (1.0, 5.0));
    }
}
