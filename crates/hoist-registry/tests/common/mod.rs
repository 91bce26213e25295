//! Test helpers over `hoist-testkit`: the real registry, nginx and fault proxy, plus blob files.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hoist_oci::Digest;
use hoist_registry::BlobSource;
pub use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Nginx, Registry};

/// A fresh registry, or `None` (after a loud SKIP; a panic under `CI=true`) when not installed.
pub fn registry() -> Option<Registry> {
    hoist_testkit::require_tool("docker-registry")
        .then(|| Registry::start().expect("start docker-registry"))
}

/// A registry whose `Location` headers are relative (`http.relativeurls`).
pub fn registry_relative() -> Option<Registry> {
    hoist_testkit::require_tool("docker-registry").then(|| {
        Registry::builder()
            .relative_urls(true)
            .start()
            .expect("start docker-registry")
    })
}

/// A registry requiring Basic auth for one user.
pub fn registry_htpasswd(user: &str, pass: &str) -> Option<Registry> {
    hoist_testkit::require_tool("docker-registry").then(|| {
        Registry::builder()
            .htpasswd(user, pass)
            .start()
            .expect("start docker-registry")
    })
}

/// nginx in front of `upstream` with a body limit, buffering on/off, and advertised limits.
pub fn nginx(
    upstream: SocketAddr,
    max_body: u64,
    buffering: bool,
    max_len: Option<u64>,
    min_len: Option<u64>,
) -> Option<Nginx> {
    hoist_testkit::require_tool("nginx").then(|| {
        Nginx::builder(upstream)
            .max_body_size(max_body)
            .request_buffering(buffering)
            .chunk_max_length(max_len)
            .chunk_min_length(min_len)
            .start()
            .expect("start nginx")
    })
}

/// A fault proxy in front of `upstream`.
pub fn proxy(upstream: SocketAddr, rules: Vec<FaultRule>) -> FaultProxy {
    FaultProxy::start(upstream, rules).expect("start fault proxy")
}

/// Request-body bytes the proxy forwarded upstream for requests of `method`.
pub fn forwarded(proxy: &FaultProxy, method: &str) -> u64 {
    proxy
        .records()
        .iter()
        .filter(|r| r.method == method)
        .map(|r| r.request_body_bytes)
        .sum()
}

/// A canned response.
pub fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> FaultAction {
    FaultAction::Respond {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        body: body.into(),
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

/// The digest of the blob as the registry serves it (read with the testkit's own HTTP client,
/// an independent witness), or `None` when it does not have it.
pub fn registry_blob_digest(reg: &Registry, repo: &str, digest: &Digest) -> Option<Digest> {
    let resp = hoist_testkit::http_get(reg.addr(), &format!("/v2/{repo}/blobs/{digest}"))
        .expect("GET blob");
    (resp.status == 200).then(|| Digest::sha256_of(&resp.body))
}

/// Temp files of downloads left in `dir`.
pub fn partials(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect()
}
