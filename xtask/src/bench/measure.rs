//! Measuring one child process from the outside: wall time, user+sys CPU and peak RSS via `wait4`.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Run `cmd` to completion with stdin closed and stdout/stderr appended to `log` (or inherited
/// when `log` is `None`), and measure
/// it with `wait4` on its pid. The child runs in its own process group, which is SIGKILLed when
/// it runs longer than `limit`. A non-zero exit or a timeout is returned as a sample with
/// `ok: false` (the caller decides whether that is fatal); failing to start or to wait is an
/// error, and so is a signal to xtask ([`crate::interrupt`]), which kills the child first.
pub fn measure(cmd: &mut Command, log: Option<&Path>, limit: Duration) -> anyhow::Result<Sample> {
    if let Some(log) = log {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
    }
    cmd.stdin(Stdio::null()).process_group(0);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    // A signal to xtask kills this child's group while it runs (see `interrupt`).
    let running = crate::interrupt::Running::new(pid);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: kill has no memory preconditions; -pid is the child's own process group,
            // still unreaped (the main thread reaps only after this thread is joined).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    // Wait for the exit without reaping it, so nothing that may still signal the child's group
    // (the watchdog, a signal's handler) can hit a recycled pid; reap (and read the rusage)
    // only after both have let go of it.
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
    let wall = start.elapsed();
    drop(running);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if !exited {
        bail!("waitid({pid}) failed: {}", std::io::Error::last_os_error());
    }
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: pid is our own child, exited and not yet reaped; status and usage are valid
        // out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    if reaped != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    // The child is reaped by wait4: std's handle must not wait again (it never does on drop).
    drop(child);
    crate::interrupt::check()?;
    Ok(Sample {
        wall_s: wall.as_secs_f64(),
        user_s: tv(usage.ru_utime),
        sys_s: tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        ok: !timed_out && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        timed_out,
        server_cpu_s: None,
    })
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
mod tests {
    use super::*;

    #[test]
    fn measures_cpu_memory_and_exit() {
        let dir = std::env::temp_dir();
        let log = dir.join(format!("xtask-measure-{}.log", std::process::id()));
        // A shell that burns a little CPU and touches ~40 MiB in a child (head + a pipe buffer
        // would not do; `dd` with a big block size allocates the buffer).
        let s = measure(
            Command::new("sh")
                .arg("-c")
                .arg("dd if=/dev/zero of=/dev/null bs=40M count=3 2>/dev/null"),
            Some(&log),
            Duration::from_secs(60),
        )
        .expect("measure");
        assert!(s.ok);
        assert!(
            s.max_rss_kib > 30 * 1024,
            "descendant peak RSS counted: {s:?}"
        );
        assert!(s.wall_s > 0.0 && s.cpu_s() > 0.0, "{s:?}");
        let f = measure(
            Command::new("sh").arg("-c").arg("exit 3"),
            Some(&log),
            Duration::from_secs(60),
        )
        .expect("measure");
        assert!(!f.ok && !f.timed_out);
        let t = measure(
            Command::new("sh").arg("-c").arg("sleep 30 | cat"),
            Some(&log),
            Duration::from_millis(300),
        )
        .expect("measure");
        assert!(!t.ok && t.timed_out, "{t:?}");
        assert!(t.wall_s < 10.0, "the whole pipeline was killed: {t:?}");
        let _ = std::fs::remove_file(log);
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
