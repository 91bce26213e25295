//! nginx as a body-limited reverse proxy in front of a registry, in its own prefix and temp dir.

use crate::http::http_get;
use crate::process::{ChildGuard, port_open, with_free_port};
use crate::skip::find_tool;
use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long [`Nginx`] waits for the proxy to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Options for an [`Nginx`] proxy; see [`Nginx::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct NginxBuilder {
    upstream: SocketAddr,
    max_body_size: u64,
    request_buffering: bool,
    chunk_max_length: Option<u64>,
    chunk_min_length: Option<u64>,
}

impl NginxBuilder {
    /// `client_max_body_size` in bytes (inclusive: a body of exactly this size passes).
    /// 0, the default, means no limit.
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// `proxy_request_buffering on|off` (default on, as nginx's own default: the whole body is
    /// read before anything reaches the upstream).
    pub fn request_buffering(mut self, on: bool) -> Self {
        self.request_buffering = on;
        self
    }

    /// Add `OCI-Chunk-Max-Length: N` to every response under `/v2/<name>/blobs/uploads/`.
    pub fn chunk_max_length(mut self, n: Option<u64>) -> Self {
        self.chunk_max_length = n;
        self
    }

    /// Add `OCI-Chunk-Min-Length: N` to every response under `/v2/<name>/blobs/uploads/`.
    pub fn chunk_min_length(mut self, n: Option<u64>) -> Self {
        self.chunk_min_length = n;
        self
    }

    /// Write the config and start nginx; returns once it answers HTTP.
    pub fn start(self) -> anyhow::Result<Nginx> {
        let tool = find_tool("nginx").context(
            "nginx not installed (apt-get install nginx); \
             call hoist_testkit::require_tool(\"nginx\") first to skip cleanly",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("hoist-nginx-")
            .tempdir()
            .context("creating nginx temp dir")?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut n = with_free_port(|port| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let conf = nginx_config(&self, addr, dir.path(), root);
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf)
                .with_context(|| format!("writing {}", conf_path.display()))?;
            let mut cmd = Command::new(&tool);
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .current_dir(dir.path());
            let mut guard = ChildGuard::spawn("nginx", cmd, &dir.path().join("nginx.log"))?;
            let err_log = dir.path().join("error.log");
            let ready = guard.wait_ready(STARTUP_TIMEOUT, || {
                port_open(addr) && http_get(addr, "/nginx-testkit-health").is_ok()
            });
            if let Err(e) = ready {
                // nginx reports bind failures in its error log, not on stderr.
                let tail = crate::process::log_tail(&err_log, 4000);
                return Err(e.context(format!("nginx error.log:\n{tail}")));
            }
            Ok(Nginx {
                guard: Some(guard),
                addr,
                upstream: self.upstream,
                dir: None,
            })
        })?;
        n.dir = Some(dir);
        Ok(n)
    }
}

/// A running nginx master (with one worker) proxying `127.0.0.1:PORT` to an upstream.
/// Killed (and its temp dir removed) on drop.
#[derive(Debug)]
pub struct Nginx {
    guard: Option<ChildGuard>,
    addr: SocketAddr,
    upstream: SocketAddr,
    dir: Option<TempDir>,
}

impl Nginx {
    /// Options for a proxy in front of `upstream` (usually [`crate::Registry::addr`]).
    pub fn builder(upstream: SocketAddr) -> NginxBuilder {
        NginxBuilder {
            upstream,
            max_body_size: 0,
            request_buffering: true,
            chunk_max_length: None,
            chunk_min_length: None,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The nginx master's process id (0 after stop).
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().map_or(0, ChildGuard::pid)
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The tail of nginx's error log.
    pub fn error_log_tail(&self) -> String {
        self.dir
            .as_ref()
            .map(|d| crate::process::log_tail(&d.path().join("error.log"), 8000))
            .unwrap_or_default()
    }

    /// Stop nginx and remove its temp dir (same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.stop();
        }
    }
}

fn nginx_config(b: &NginxBuilder, addr: SocketAddr, dir: &Path, root: bool) -> String {
    let d = dir.display();
    let user = if root { "user root;\n" } else { "" };
    let buffering = if b.request_buffering { "on" } else { "off" };
    let mut upload_headers = String::new();
    if let Some(n) = b.chunk_max_length {
        upload_headers.push_str(&format!(
            "      add_header OCI-Chunk-Max-Length {n} always;\n"
        ));
    }
    if let Some(n) = b.chunk_min_length {
        upload_headers.push_str(&format!(
            "      add_header OCI-Chunk-Min-Length {n} always;\n"
        ));
    }
    format!(
        "{user}daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size {max};
  client_body_timeout 3600s;
  send_timeout 3600s;
  keepalive_timeout 3600s;
  proxy_http_version 1.1;
  proxy_request_buffering {buffering};
  proxy_buffering off;
  proxy_connect_timeout 30s;
  proxy_read_timeout 3600s;
  proxy_send_timeout 3600s;
  proxy_set_header Host $http_host;
  proxy_set_header Connection \"\";
  server {{
    listen {addr};
    location ~ ^/v2/.+/blobs/uploads/ {{
{upload_headers}      proxy_pass http://{up};
    }}
    location / {{
      proxy_pass http://{up};
    }}
  }}
}}
",
        max = b.max_body_size,
        up = b.upstream,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_settings() {
        let up: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let b = Nginx::builder(up)
            .max_body_size(1024)
            .request_buffering(false)
            .chunk_max_length(Some(512));
        let c = nginx_config(
            &b,
            "127.0.0.1:6000".parse().expect("addr"),
            Path::new("/t"),
            true,
        );
        assert!(c.starts_with("user root;\n"));
        assert!(c.contains("client_max_body_size 1024;"));
        assert!(c.contains("proxy_request_buffering off;"));
        assert!(c.contains("add_header OCI-Chunk-Max-Length 512 always;"));
        assert!(!c.contains("OCI-Chunk-Min-Length"));
        assert!(c.contains("listen 127.0.0.1:6000;"));
        assert!(c.contains("proxy_pass http://127.0.0.1:5000;"));
        assert!(c.contains("proxy_temp_path /t/proxy;"));
    }
}
