//! Ctrl-C, SIGTERM and SIGHUP for the long-running commands (`bench`, `demo`).
//!
//! The daemons those commands start (registry, nginx, dockerd) and the processes they measure
//! run in process groups of their own, so a terminal's Ctrl-C reaches only xtask. Dying on it
//! would leave every daemon running with its temp storage (gigabytes for a bench's registry).
//! Instead [`install`] catches the three signals with a handler that only writes the signal's
//! number into a pipe, and a thread of its own reads it: the first one stops the measured run
//! in flight (see [`Running`]: its launcher SIGKILLs the run's process group) and raises a
//! flag that [`check`] turns into an error, so the command unwinds through its guards, which
//! stop the daemons and delete their storage. Work that does not pass a [`check`] (generating
//! inputs) runs on until it does; a second signal exits at once, saying what may be left
//! behind.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static RAISED: AtomicBool = AtomicBool::new(false);
/// The launcher of the run being measured ([`crate::bench::launcher`]), 0 for none.
static RUNNING: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The pipe's write end, for the handler; -1 before [`install`].
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        // Only async-signal-safe calls here: save errno, write one byte, restore errno.
        // SAFETY: __errno_location returns this thread's errno; write gets a valid 1-byte
        // buffer. A full pipe (signals nobody reads) just drops the byte.
        unsafe {
            let errno = *libc::__errno_location();
            let byte = sig as u8;
            libc::write(fd, std::ptr::addr_of!(byte).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on (whichever thread they land on) and handle
/// them on a thread of their own. `what` names the command in messages.
///
/// # Errors
/// When the pipe, the handlers or the thread cannot be set up.
pub fn install(what: &'static str) -> anyhow::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        anyhow::bail!("creating a pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    let reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    PIPE.store(fds[1], Ordering::SeqCst);
    for sig in SIGNALS {
        // SAFETY: an all-zero sigaction is valid; the handler is an extern "C" fn(c_int) that
        // only makes async-signal-safe calls; sa_mask is initialised by sigemptyset.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            anyhow::bail!("catching signal {sig}: {}", std::io::Error::last_os_error());
        }
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch(reader, what))?;
    Ok(())
}

fn watch(mut pipe: std::fs::File, what: &str) {
    let mut byte = [0u8; 1];
    while let Ok(1) = pipe.read(&mut byte) {
        let sig = i32::from(byte[0]);
        if RAISED.swap(true, Ordering::SeqCst) {
            eprintln!(
                "{what}: second signal ({sig}): exiting now; daemons it started and their temp \
                 directories may be left behind"
            );
            std::process::exit(128 + sig);
        }
        eprintln!(
            "{what}: signal {sig}: stopping the run in flight, then the daemons (a second \
             signal exits at once)"
        );
        let launcher = RUNNING.load(Ordering::SeqCst);
        if launcher > 0 {
            // SAFETY: kill has no memory preconditions; the launcher is registered by `Running`
            // only while it is unreaped. On SIGTERM it kills its run's group and reports.
            unsafe { libc::kill(launcher, libc::SIGTERM) };
        }
    }
}

/// Whether a signal has arrived.
pub fn raised() -> bool {
    RAISED.load(Ordering::SeqCst)
}

/// An error once a signal has arrived, to stop at the next step.
///
/// # Errors
/// After the first signal.
pub fn check() -> anyhow::Result<()> {
    if raised() {
        anyhow::bail!("interrupted");
    }
    Ok(())
}

/// While alive, marks a running launcher as the one a signal stops (with SIGTERM, on which it
/// kills the command it measures). Drop it before reaping the launcher, so a signal never
/// reaches a recycled pid.
pub struct Running(());

impl Running {
    /// Register the launcher `pid`. A signal that came before it was registered stops it here.
    pub fn new(pid: libc::pid_t) -> Running {
        RUNNING.store(pid, Ordering::SeqCst);
        if raised() {
            // SAFETY: as in `watch`: the caller's child, unreaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "XTASK_INTERRUPT_TEST_CHILD";

    /// The pids of live processes whose command line is exactly `argv`.
    fn processes(argv: &[&str]) -> Vec<u32> {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
            .filter(|pid| hoist_testkit::pid_alive(*pid))
            .collect()
    }

    /// The side run in a child process: a "daemon" under a guard, and a measured run, both in
    /// process groups of their own, as in the bench.
    #[test]
    #[ignore = "run by signal_stops_the_measured_run_and_the_daemons in a child process"]
    fn interrupted_side() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        super::install("test").expect("install");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemon_cmd = Command::new("sleep");
        daemon_cmd.arg("977.25");
        let _daemon =
            hoist_testkit::ChildGuard::spawn("daemon", daemon_cmd, &dir.path().join("d.log"))
                .expect("daemon");
        let got = crate::bench::measure::tests::launcher().measure(
            Command::new("sleep").arg("966.5"),
            Some(&dir.path().join("m.log")),
            Duration::from_secs(20),
        );
        match got {
            Ok(s) => println!("RESULT: finished ok={}", s.ok),
            Err(e) => println!("RESULT: error {e:#}"),
        }
    }

    #[test]
    fn signal_stops_the_measured_run_and_the_daemons() {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let child = Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "interrupt::tests::interrupted_side",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_ENV, "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("child");
            let started = Instant::now();
            while processes(&["sleep", "966.5"]).is_empty() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the measured run never started"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(processes(&["sleep", "977.25"]).len(), 1, "the daemon runs");
            // SAFETY: kill has no memory preconditions; the pid is our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
            let out = child.wait_with_output().expect("wait");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("RESULT: error interrupted"),
                "signal {sig}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "stopped promptly"
            );
            assert!(
                processes(&["sleep", "966.5"]).is_empty(),
                "measured run left running"
            );
            assert!(
                processes(&["sleep", "977.25"]).is_empty(),
                "daemon left running"
            );
        }
    }
}
