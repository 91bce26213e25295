//! A private `dockerd` on a unix socket in a temp dir, plus helpers to make images without
//! internet.

use crate::http::parse_response;
use crate::process::ChildGuard;
use crate::skip::find_tool;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long [`Dockerd`] waits for `/_ping` to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The docker client that matches the daemon (20.10, API 1.41); a newer client elsewhere on PATH
/// may refuse to talk to it.
const DOCKER_CLIENT: &str = "/usr/bin/docker";

/// A private Docker daemon (`--bridge=none`, no iptables) with its data-root, exec-root, pidfile
/// and socket in one temp dir. On drop it is stopped, every mount under its dir is detached, any
/// process still mentioning the dir (its containerd) is killed, and the dir is removed.
#[derive(Debug)]
pub struct Dockerd {
    guard: Option<ChildGuard>,
    socket: PathBuf,
    storage_driver: String,
    client: PathBuf,
    dir: Option<TempDir>,
}

impl Dockerd {
    /// Start the daemon with overlay2 storage, falling back to vfs (and saying so on stderr) when
    /// overlay2 cannot work on this filesystem. Returns once `GET /_ping` answers `OK`.
    pub fn start() -> anyhow::Result<Dockerd> {
        match Dockerd::start_with_driver("overlay2") {
            Ok(d) => Ok(d),
            Err(e) => {
                eprintln!(
                    "hoist-testkit: dockerd with overlay2 failed, falling back to vfs: {e:#}"
                );
                Dockerd::start_with_driver("vfs")
                    .map_err(|e2| e2.context(format!("overlay2 failed too: {e:#}")))
            }
        }
    }

    /// Start the daemon with the given storage driver (`overlay2`, `vfs`, ...).
    pub fn start_with_driver(driver: &str) -> anyhow::Result<Dockerd> {
        let tool = find_tool("dockerd").context(
            "dockerd not installed (apt-get install docker.io); \
             call hoist_testkit::require_tool(\"dockerd\") first to skip cleanly",
        )?;
        let client = find_tool(DOCKER_CLIENT)
            .or_else(|| find_tool("docker"))
            .context("docker client not installed (apt-get install docker.io)")?;
        // Short prefix: containerd's sockets live under the exec-root and unix socket paths are
        // limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hoist-dk-")
            .tempdir()
            .context("creating dockerd temp dir")?;
        let d = dir.path();
        let config = d.join("daemon.json");
        std::fs::write(&config, "{}\n").context("writing daemon.json")?;
        let socket = d.join("docker.sock");
        let mut cmd = Command::new(&tool);
        cmd.arg("--config-file")
            .arg(&config)
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg(format!("--storage-driver={driver}"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .current_dir(d);
        let mut guard = ChildGuard::spawn("dockerd", cmd, &d.join("dockerd.log"))?;
        guard.set_grace(Duration::from_secs(15));
        let mut daemon = Dockerd {
            guard: None,
            socket,
            storage_driver: driver.to_string(),
            client,
            dir: Some(dir),
        };
        let sock = daemon.socket.clone();
        let ready = guard.wait_ready(STARTUP_TIMEOUT, || ping(&sock).unwrap_or(false));
        daemon.guard = Some(guard);
        ready?;
        Ok(daemon)
    }

    /// The daemon's unix socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// `unix:///.../docker.sock`, for `DOCKER_HOST` or `-H`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's process id (0 after stop).
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().map_or(0, ChildGuard::pid)
    }

    /// The storage driver actually in use (`overlay2`, or `vfs` after a fallback).
    pub fn storage_driver(&self) -> &str {
        &self.storage_driver
    }

    /// The tail of the daemon's log.
    pub fn log_tail(&self) -> String {
        self.guard
            .as_ref()
            .map(|g| g.log_tail(8000))
            .unwrap_or_default()
    }

    /// A `docker -H unix://...` command using the 20.10 client that matches the daemon, with
    /// `DOCKER_BUILDKIT=0` (there is no buildkit here) and a private client config dir.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(&self.client);
        cmd.arg("-H").arg(self.docker_host());
        cmd.env("DOCKER_BUILDKIT", "0");
        if let Some(dir) = &self.dir {
            cmd.env("DOCKER_CONFIG", dir.path().join("client-config"));
        }
        cmd
    }

    /// Run a docker command to completion; an error carries its stderr.
    pub fn run_docker(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .docker()
            .args(args)
            .output()
            .with_context(|| format!("running docker {args:?}"))?;
        if !out.status.success() {
            bail!(
                "docker {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `docker import TAR TAG`: make a one-layer image from a root filesystem tar.
    pub fn import_rootfs(&self, tar_path: &Path, tag: &str) -> anyhow::Result<()> {
        let path = tar_path.to_str().context("tar path is not UTF-8")?;
        self.run_docker(&["import", path, tag])?;
        Ok(())
    }

    /// Build a multi-layer image tagged `tag`: a tiny imported base, then one `COPY` layer per
    /// entry of `files_per_layer`, each with that many small generated text files (layer `i`
    /// puts them under `/layer-i/`). Uses the legacy builder, which needs no network.
    pub fn build_layers(&self, files_per_layer: &[usize], tag: &str) -> anyhow::Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-build-")
            .tempdir()
            .context("creating build context")?;
        let base_tag = format!("hoist-testkit-base:{}", fastrand::u32(..));
        let base_tar = dir.path().join("base.tar");
        write_base_rootfs(&base_tar)?;
        self.import_rootfs(&base_tar, &base_tag)?;
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx)?;
        let mut dockerfile = format!("FROM {base_tag}\n");
        for (i, &n) in files_per_layer.iter().enumerate() {
            let layer_dir = ctx.join(format!("layer-{i}"));
            std::fs::create_dir(&layer_dir)?;
            for f in 0..n {
                std::fs::write(
                    layer_dir.join(format!("file-{f}.txt")),
                    format!("layer {i} file {f} of image {tag}\n"),
                )?;
            }
            dockerfile.push_str(&format!("COPY layer-{i} /layer-{i}/\n"));
        }
        std::fs::write(ctx.join("Dockerfile"), dockerfile)?;
        let ctx_s = ctx.to_str().context("build dir is not UTF-8")?;
        self.run_docker(&["build", "-q", "-t", tag, ctx_s])?;
        // The base tag is an implementation detail; the image keeps its layers.
        self.run_docker(&["rmi", &base_tag])?;
        Ok(())
    }

    /// Stop the daemon and clean up (same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.stop();
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            kill_processes_mentioning(&path);
            unmount_under(&path);
            if let Err(e) = dir.close() {
                eprintln!(
                    "hoist-testkit: could not remove dockerd dir {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// `GET /_ping` over the unix socket: Ok(true) when the daemon answers `OK`.
fn ping(socket: &Path) -> anyhow::Result<bool> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let r = parse_response(&raw, false)?;
    Ok(r.status == 200 && r.body == b"OK")
}

/// A minimal root filesystem tar (a few directories and `/etc/os-release`) for `docker import`.
fn write_base_rootfs(path: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut b = tar::Builder::new(f);
    for d in ["etc/", "tmp/", "bin/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, d, std::io::empty())?;
    }
    let body = b"NAME=hoist-testkit-base\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    b.append_data(&mut h, "etc/os-release", &body[..])?;
    b.into_inner()?.sync_all()?;
    Ok(())
}

/// SIGKILL every process whose command line mentions `dir` (the daemon's containerd and shims,
/// which live in their own process groups).
fn kill_processes_mentioning(dir: &Path) {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            // SAFETY: kill has no memory preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Detach every mount point at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: c is a valid NUL-terminated path; MNT_DETACH never blocks.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount_path(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .map_err(|_| ())
                .and_then(|o| u8::from_str_radix(o, 8).map_err(|_| ()))
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from(
        String::from_utf8_lossy(&out).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(
            unescape_mount_path(r"/tmp/a\040b/c"),
            PathBuf::from("/tmp/a b/c")
        );
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
    }
}
