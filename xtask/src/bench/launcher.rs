//! The launcher: a small process between xtask and each measured command, so the command's peak
//! RSS is its own and not xtask's.
//!
//! Linux starts a new program's `ru_maxrss` at the high-water mark of the memory it replaced:
//! `exec` records the old address space's peak. std's `Command::spawn` runs the child in
//! xtask's address space until the exec (`posix_spawn`, `vfork`), so every child began with
//! xtask's own peak, 4 MiB at first and 136 MiB after xtask had touched and freed 128 MiB.
//! [`measure`](super::measure::Launcher::measure) therefore starts `xtask __measure REPORT LIMIT_MS --
//! PROGRAM ARGS...`, this module, which does little more than a `fork` of its own small address
//! space (the child's count starts at what the fork copied), an `exec`, and a `wait4`, and
//! writes what `wait4` said to the file `REPORT` as `key value` lines. The floor that remains,
//! `/bin/true` through the launcher, is printed in the bench report.
//!
//! The command runs in a process group of its own, so the launcher can kill it and all its
//! descendants when it runs past `LIMIT_MS` (0: no limit), or when the launcher gets SIGTERM,
//! SIGINT or SIGHUP (xtask sends SIGTERM on a timeout backstop or an interrupt), or when xtask
//! dies (the launcher asks for SIGTERM then). The run is reaped and reported in every case.
//!
//! It runs single-threaded, so `fork` is safe: between `fork` and `exec` the child makes only
//! async-signal-safe calls on memory prepared before the fork.

use std::ffi::CString;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The hidden xtask command that runs the launcher.
pub const COMMAND: &str = "__measure";

/// The process group of the running command, 0 before it starts.
static GROUP: AtomicI32 = AtomicI32::new(0);
/// Whether the time limit expired.
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

/// The signals that kill the command's group: the time limit's alarm and the three that ask the
/// launcher to stop.
const SIGNALS: [libc::c_int; 4] = [libc::SIGALRM, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGALRM {
        TIMED_OUT.store(true, Ordering::SeqCst);
    }
    let group = GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill is async-signal-safe and has no memory preconditions; the group is the
        // command's, whose leader is not reaped before these signals are blocked again.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// What one run cost, as the launcher reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// From just before the fork to the reap.
    pub wall: Duration,
    /// User CPU seconds of the command and every descendant it waited for.
    pub user_s: f64,
    /// System CPU seconds, likewise.
    pub sys_s: f64,
    /// `ru_maxrss` of the command and its waited-for descendants, in KiB.
    pub max_rss_kib: u64,
    /// The `wait4` status word.
    pub status: i32,
    /// Whether the time limit killed it.
    pub timed_out: bool,
}

impl Report {
    /// Whether the command exited 0 within its limit.
    pub fn ok(&self) -> bool {
        !self.timed_out && libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    fn text(&self) -> String {
        format!(
            "wall_ns {}\nuser_us {}\nsys_us {}\nmax_rss_kib {}\nstatus {}\ntimed_out {}\n",
            self.wall.as_nanos(),
            (self.user_s * 1e6).round() as u64,
            (self.sys_s * 1e6).round() as u64,
            self.max_rss_kib,
            self.status,
            u8::from(self.timed_out)
        )
    }

    /// Parse what [`Report::text`] wrote; `None` when a line is missing or malformed.
    pub fn parse(text: &str) -> Option<Report> {
        let field = |key: &str| -> Option<i64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))?
                .parse()
                .ok()
        };
        let wall_ns = u64::try_from(field("wall_ns")?).ok()?;
        Some(Report {
            wall: Duration::from_nanos(wall_ns),
            user_s: field("user_us")? as f64 / 1e6,
            sys_s: field("sys_us")? as f64 / 1e6,
            max_rss_kib: u64::try_from(field("max_rss_kib")?).ok()?,
            status: i32::try_from(field("status")?).ok()?,
            timed_out: field("timed_out")? != 0,
        })
    }
}

/// `xtask __measure REPORT LIMIT_MS -- PROGRAM ARGS...`: run the command, write the report.
/// Exits 0 when the report was written (whatever the command did), 2 otherwise.
pub fn main(args: &[String]) -> ExitCode {
    match launch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {COMMAND}: {e}");
            ExitCode::from(2)
        }
    }
}

fn launch(args: &[String]) -> Result<(), String> {
    let usage = || format!("usage: xtask {COMMAND} REPORT LIMIT_MS -- PROGRAM [ARGS...]");
    let [report, limit_ms, dashes, command @ ..] = args else {
        return Err(usage());
    };
    if dashes != "--" || command.is_empty() {
        return Err(usage());
    }
    let limit_ms: u64 = limit_ms.parse().map_err(|_| usage())?;
    let argv: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("NUL in argument {a:?}")))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let exec_failed = format!("xtask {COMMAND}: cannot run {}: ", command[0]);
    let mut file = std::fs::File::create(report).map_err(|e| format!("creating {report}: {e}"))?;

    let parent = std::os::unix::process::parent_id();
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    if std::os::unix::process::parent_id() != parent {
        return Err("xtask exited before the command started".into());
    }
    let (blocked, old_mask) = block_signals()?;
    for sig in SIGNALS {
        // SAFETY: an all-zero sigaction is valid; the handler is an extern "C" fn(c_int) making
        // only async-signal-safe calls; sa_mask is filled so the handlers never nest.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigfillset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(format!("catching signal {sig}: {}", errno()));
        }
    }

    let start = Instant::now();
    // SAFETY: this process has one thread, so the child is a full copy able to run anything;
    // it still makes only async-signal-safe calls, on memory prepared above, until exec.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", errno()));
    }
    if pid == 0 {
        // SAFETY: the child: its own process group, default dispositions for SIGPIPE (std
        // ignores it) and for the launcher's signals, xtask's signal mask, then exec; on failure a
        // message to stderr and _exit. All pointers point into memory prepared before the fork.
        unsafe {
            libc::setpgid(0, 0);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            for sig in SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            let err = *libc::__errno_location();
            let msg = exec_failed.as_bytes();
            libc::write(2, msg.as_ptr().cast(), msg.len());
            let text = libc::strerror(err);
            libc::write(2, text.cast(), libc::strlen(text));
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::_exit(127);
        }
    }
    // Also from this side, so the group exists before any signal can be sent to it.
    // SAFETY: pid is our child; setpgid has no memory preconditions (EACCES after its exec is
    // harmless: it did the same itself first).
    unsafe { libc::setpgid(pid, pid) };
    GROUP.store(pid, Ordering::SeqCst);
    if limit_ms > 0 {
        set_alarm(Duration::from_millis(limit_ms));
    }
    // SAFETY: restores the mask saved by block_signals; pending signals are handled now.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };

    // Wait without reaping, then block the signals (no handler may signal a reaped group), then
    // reap with wait4 for the rusage.
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-value; pid is our child.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitid({pid}): {}", errno()));
        }
    }
    // SAFETY: blocked is a valid initialised signal set.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) };
    GROUP.store(0, Ordering::SeqCst);
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; pid is our exited, unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: status and usage are valid out-pointers.
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return Err(format!("wait4({pid}): {}", errno()));
    }
    let wall = start.elapsed();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let r = Report {
        wall,
        user_s: tv(usage.ru_utime),
        sys_s: tv(usage.ru_stime),
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        status,
        // The alarm may ring after the command exited on its own.
        timed_out: TIMED_OUT.load(Ordering::SeqCst) && libc::WIFSIGNALED(status),
    };
    // No fsync: xtask reads it once this process has exited, through the same page cache.
    file.write_all(r.text().as_bytes())
        .map_err(|e| format!("writing {report}: {e}"))
}

/// Block the launcher's signals; returns the blocked set and the mask before.
fn block_signals() -> Result<(libc::sigset_t, libc::sigset_t), String> {
    // SAFETY: all-zero sigsets are valid storage, initialised by sigemptyset/sigaddset; the
    // pointers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(format!("blocking signals: {}", errno()));
        }
        Ok((set, old))
    }
}

/// SIGALRM after `limit`.
fn set_alarm(limit: Duration) {
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: limit.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(limit.subsec_micros() as i32),
        },
    };
    // SAFETY: timer is a valid itimerval; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}
