//! Test helpers: a real `docker-registry` process on a free loopback port, and blob files.
//! (A stop-gap until `hoist-testkit` lands on main; same skip rules.)

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_oci::Digest;
use hoist_registry::BlobSource;

pub mod fault;
pub mod nginx;

/// True when `tool` is on PATH. Otherwise prints a loud SKIP line, or panics under `CI=true`.
pub fn require(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true");
        }
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running distribution registry with its own storage, killed on drop.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Option<Registry> {
        Self::start_with(None)
    }

    /// A registry requiring Basic auth for `user`/`password` (bcrypt via python3's `crypt`).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Option<Registry> {
        Self::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Option<Registry> {
        if !require("docker-registry") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let config = dir.path().join("config.yml");
        let mut auth_conf = String::new();
        if let Some((user, password)) = auth {
            if !require("python3") {
                return None;
            }
            let out = Command::new("python3")
                .arg("-c")
                .arg("import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))")
                .arg(password)
                .output()
                .expect("python3");
            let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() || !hash.starts_with("$2") {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("python3 crypt cannot make bcrypt hashes");
                }
                eprintln!("SKIP: python3 crypt cannot make bcrypt hashes");
                return None;
            }
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
            auth_conf = format!(
                "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_conf}",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Registry { child, addr, dir })
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes written to a file in the directory, never held whole.
pub fn blob_file(dir: &Path, name: &str, size: u64, seed: u64) -> BlobSource {
    let path: PathBuf = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create blob"));
    let mut d = hoist_oci::Digester::new(hoist_oci::Algorithm::Sha256);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut left = size;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write");
        d.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush().expect("flush");
    BlobSource {
        path,
        digest: d.finish(),
        size,
    }
}

/// Read a blob straight from the registry with a plain HTTP/1.0 GET, checking its digest.
pub fn registry_blob_digest(reg: &Registry, repo: &str, digest: &Digest) -> Option<Digest> {
    use std::io::Read;
    let mut s = TcpStream::connect(reg.addr).expect("connect");
    write!(
        s,
        "GET /v2/{repo}/blobs/{digest} HTTP/1.0\r\nHost: {}\r\n\r\n",
        reg.addr
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    Some(Digest::sha256_of(&raw[split + 4..]))
}
