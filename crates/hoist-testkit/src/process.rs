//! Child processes that die with their guard: own process group, log file, kill and reap on drop.

use anyhow::{Context, bail};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child process, killed (SIGTERM to its whole process group, then SIGKILL after a
/// grace period) and reaped when the guard is dropped — also when a test panics.
///
/// The child's stdout and stderr both go to a log file, whose tail is put into startup errors.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
    log_path: PathBuf,
    grace: Duration,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawn `cmd` in a new process group with stdin closed and stdout/stderr appended to
    /// `log_path`. `name` is used in messages.
    pub fn spawn(name: &str, mut cmd: Command, log_path: &Path) -> anyhow::Result<ChildGuard> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("creating log file {}", log_path.display()))?;
        let log2 = log.try_clone().context("duplicating log file handle")?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {cmd:?}"))?;
        Ok(ChildGuard {
            child: Some(child),
            name: name.to_string(),
            log_path: log_path.to_path_buf(),
            grace: Duration::from_secs(5),
            status: None,
        })
    }

    /// How long to wait after SIGTERM before SIGKILL (default 5 s).
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The child's PID (also its process group id). 0 once stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log file the child writes to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max` bytes of the log, lossily decoded.
    pub fn log_tail(&self, max: u64) -> String {
        log_tail(&self.log_path, max)
    }

    /// `Some(status)` when the child has already exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = child.try_wait().ok().flatten();
        }
        self.status
    }

    /// An error naming the process, `what` went wrong, and the tail of its log.
    pub fn failure(&mut self, what: &str) -> anyhow::Error {
        let status = match self.exited() {
            Some(s) => format!(" (exited: {s})"),
            None => String::new(),
        };
        anyhow::anyhow!(
            "{}: {what}{status}; log {}:\n{}",
            self.name,
            self.log_path.display(),
            self.log_tail(4000)
        )
    }

    /// Poll `ready` every 50 ms until it returns true, the child exits, or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if self.exited().is_some() {
                return Err(self.failure("exited during startup"));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!("not ready after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the child now: SIGTERM to its group, SIGKILL after the grace period, then reap it.
    /// Idempotent. Returns the exit status when there was a child to stop.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pgid = child.id() as libc::pid_t;
        if self.status.is_none() {
            signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if let Ok(Some(s)) = child.try_wait() {
                    self.status = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whether or not the leader is gone, make sure nothing of its group survives.
        signal_group(pgid, libc::SIGKILL);
        if self.status.is_none() {
            self.status = child.wait().ok();
        }
        self.status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_group(pgid: libc::pid_t, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill has no memory preconditions; a negative pid addresses the process group
        // we created for this child. ESRCH (group already gone) is fine.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// True while a process with this PID exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The last `max` bytes of a file, lossily decoded; empty when it cannot be read.
pub fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A loopback port that was free a moment ago (bind `127.0.0.1:0`, read the port, release it).
/// Another process may grab it before we use it: callers retry on "address already in use".
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// True when something accepts TCP connections on `addr`.
pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Start a server on a free port, retrying (up to 5 times) when the log says the port was taken.
pub(crate) fn with_free_port<T>(
    mut start: impl FnMut(u16) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut last = None;
    for _ in 0..5 {
        let port = free_port()?;
        match start(port) {
            Ok(t) => return Ok(t),
            Err(e) if format!("{e:#}").contains("address already in use") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    match last {
        Some(e) => Err(e.context("no free port after 5 attempts")),
        None => bail!("no free port"),
    }
}

/// The mode a file created with `requested` permissions gets in this process: `requested`
/// without the bits of the umask (read from `/proc/self/status`, so nothing changes it).
///
/// # Panics
/// When `/proc/self/status` has no readable `Umask:` line (a test helper; Linux only).
pub fn mode_under_umask(requested: u32) -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .expect("a Umask: line in /proc/self/status");
    requested & !umask
}

/// The command that runs only the test `name` of the current test binary (an `#[ignore]`d
/// helper as well), printing its output: `<binary> --exact NAME --include-ignored --nocapture`.
pub(crate) fn rerun_command(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", name, "--include-ignored", "--nocapture"]);
    command
}

/// Assert that a re-run test (`what`, for the message) ran and passed; its stdout.
pub(crate) fn check_rerun(what: &str, out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{what} ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Re-run the test `name` of the current test binary in a child process of the same user,
/// with `envs` set (typically one that tells the child it is the child, and a limit or a
/// measurement only a process of its own may have), assert that it ran and passed, and
/// return what it printed.
///
/// # Panics
/// When the child cannot be started, fails, or does not report exactly one passed test.
pub fn rerun_test<I, K, V>(name: &str, envs: I) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let out = rerun_command(name)
        .envs(envs)
        .output()
        .expect("running the test binary again");
    check_rerun(name, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_kills_whole_group_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let mut cmd = Command::new("sh");
        // The shell ignores TERM-less exit paths: a background sleep shares its process group.
        cmd.arg("-c")
            .arg("echo started; sleep 300 & echo $! > child.pid; wait");
        cmd.current_dir(dir.path());
        let mut g = ChildGuard::spawn("sh", cmd, &log).expect("spawn");
        let pid = g.pid();
        // The shell creates the file before it writes the number: ready once it parses.
        let pid_file = dir.path().join("child.pid");
        let grandchild_pid = || {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
        };
        g.wait_ready(Duration::from_secs(5), || {
            grandchild_pid().is_some() && log_tail(&log, 100).contains("started")
        })
        .expect("ready");
        let grandchild = grandchild_pid().expect("pid number");
        assert!(pid_alive(pid) && pid_alive(grandchild));
        drop(g);
        assert!(!pid_alive(pid), "leader survived");
        // The grandchild is re-parented and reaped by init (or the test harness); give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pid_alive(grandchild), "group member survived");
    }

    #[test]
    fn startup_failure_carries_log_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo 'fatal: something specific' >&2; exit 3");
        let mut g = ChildGuard::spawn("sh", cmd, &log).expect("spawn");
        let err = g
            .wait_ready(Duration::from_secs(5), || false)
            .expect_err("must fail");
        let text = format!("{err:#}");
        assert!(text.contains("fatal: something specific"), "{text}");
        assert!(text.contains("exited"), "{text}");
    }
}
