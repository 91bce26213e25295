//! A private dockerd for this crate's tests (until the testkit's `Dockerd` lands on main).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The docker CLI matching the daemon's API (20.10).
const DOCKER_CLI: &str = "/usr/bin/docker";

/// Skip loudly, or fail when `CI=true`.
pub fn skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a test needs: {what}");
    }
    eprintln!("SKIP: {what}");
}

/// A dockerd of our own, on a socket in a temporary directory; killed and cleaned on drop.
pub struct Dockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    socket: PathBuf,
    tcp: Option<String>,
}

impl Dockerd {
    /// Start one, or return `None` after printing SKIP (panicking in CI) when we cannot.
    pub fn start() -> Option<Dockerd> {
        Self::start_with(false)
    }

    /// Start one that also listens on plain TCP on a free 127.0.0.1 port.
    pub fn start_with_tcp() -> Option<Dockerd> {
        Self::start_with(true)
    }

    fn start_with(tcp: bool) -> Option<Dockerd> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip("root, to run a private dockerd");
            return None;
        }
        if !Path::new("/usr/sbin/dockerd").exists() && which("dockerd").is_none() {
            skip("dockerd on PATH");
            return None;
        }
        if !Path::new(DOCKER_CLI).exists() {
            skip("the 20.10 docker CLI at /usr/bin/docker");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("hd-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let socket = dir.path().join("d.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log file");
        let tcp = tcp.then(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            format!("tcp://{}", listener.local_addr().expect("addr"))
        });
        let mut command = Command::new("dockerd");
        if let Some(tcp) = &tcp {
            command.arg("-H").arg(tcp);
        }
        let child = command
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ])
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let daemon = Dockerd {
            child: Some(child),
            dir,
            socket,
            tcp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if daemon.socket.exists() {
                let ok = daemon
                    .docker()
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return Some(daemon);
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(daemon.dir.path().join("dockerd.log"))
                    .unwrap_or_default();
                panic!("dockerd did not come up in 30 s; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The `tcp://127.0.0.1:PORT` address, when started with TCP.
    pub fn tcp_host(&self) -> Option<&str> {
        self.tcp.as_deref()
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A scratch directory that lives as long as the daemon.
    pub fn scratch(&self) -> PathBuf {
        let path = self.dir.path().join("scratch");
        std::fs::create_dir_all(&path).expect("scratch dir");
        path
    }

    /// The docker CLI pointed at this daemon.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.arg("-H").arg(self.docker_host());
        cmd.env("DOCKER_BUILDKIT", "0");
        cmd.env("DOCKER_CONFIG", self.dir.path().join("cli-config"));
        cmd
    }

    /// Run the docker CLI; panic with its output on failure; return stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.docker().args(args).output().expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Import a generated root filesystem as `tag`: files name -> contents.
    pub fn import_rootfs(&self, tag: &str, files: &[(&str, &[u8])]) {
        let root = self
            .scratch()
            .join(format!("rootfs-{}", tag.replace([':', '/'], "_")));
        for (name, data) in files {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            std::fs::write(&path, data).expect("write");
        }
        let tar = root.with_extension("tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(status.success(), "tar failed");
        self.run(&["import", tar.to_str().expect("utf8 path"), tag]);
    }

    /// Build `tag` FROM `base` with one layer per file (legacy builder).
    pub fn build_layers(&self, tag: &str, base: &str, files: &[(&str, &[u8])]) {
        let ctx = self
            .scratch()
            .join(format!("ctx-{}", tag.replace([':', '/'], "_")));
        std::fs::create_dir_all(&ctx).expect("ctx dir");
        let mut dockerfile = format!("FROM {base}\n");
        for (name, data) in files {
            std::fs::write(ctx.join(name), data).expect("write ctx file");
            dockerfile.push_str(&format!("COPY {name} /{name}\n"));
        }
        std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
        self.run(&["build", "-q", "-t", tag, ctx.to_str().expect("utf8 path")]);
    }

    /// Stop the daemon now (the socket goes away with it).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.unmount_leftovers();
    }

    fn unmount_leftovers(&self) {
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
    })
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
