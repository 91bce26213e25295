//! A real nginx reverse proxy in front of the registry, with a body size limit (stop-gap until
//! the testkit's Nginx lands).

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

pub struct NginxOptions {
    pub max_body_size: u64,
    pub request_buffering: bool,
    pub chunk_max_length: Option<u64>,
    pub chunk_min_length: Option<u64>,
}

impl Nginx {
    pub fn start(upstream: SocketAddr, o: &NginxOptions) -> Option<Nginx> {
        if !super::require("nginx") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut extra = String::new();
        if let Some(n) = o.chunk_max_length {
            extra.push_str(&format!(
                "      add_header OCI-Chunk-Max-Length {n} always;\n"
            ));
        }
        if let Some(n) = o.chunk_min_length {
            extra.push_str(&format!(
                "      add_header OCI-Chunk-Min-Length {n} always;\n"
            ));
        }
        let conf = format!(
            "daemon off;\nuser root;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen {addr};\n    client_max_body_size {};\n\
                 location /v2/ {{\n      proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n\
                   proxy_set_header Host $http_host;\n      proxy_request_buffering {};\n      proxy_buffering off;\n{extra}    }}\n  }}\n}}\n",
            o.max_body_size,
            if o.request_buffering { "on" } else { "off" },
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            child,
            addr,
            _dir: dir,
        })
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
