//! Shared helpers for hoist's end-to-end tests: find (and build once) the `hoist` binary, run it
//! with a clean environment, and check what it produced against independent witnesses.
//!
//! The tests in `tests/tests/` drive the real `hoist` executable against the real registry, nginx
//! proxy, fault proxy and Docker daemon from `hoist-testkit`. This library holds what they share:
//!
//! - [`hoist_bin`] builds `hoist` once per test process (`cargo build -p hoist --bin hoist`, with
//!   the `CARGO` that runs the tests) and returns `debug/hoist` in the target directory, because
//!   cargo only builds the binaries of the package under test, not those of a dependency;
//!   `HOIST_E2E_BIN` names another binary instead.
//! - [`Hoist`] is a command line with a private cache directory, no `HOIST_*` settings leaking
//!   in from the developer's shell, and no docker credentials; [`Hoist::run`] returns an [`Out`].
//! - [`registry_image`] fetches a manifest and every blob it names from a registry and checks
//!   each against its digest: the registry's content is the witness, not hoist's own report.
//! - [`tree`] lists a directory (files with content digests, symlinks, directories) and
//!   [`reference_rootfs`] builds the expected root filesystem with `tar -x`, so an unpacked tree
//!   can be compared with what plain tar makes of the same layers.
//! - [`events`] parses `--progress json` output, [`has_control_chars`] checks plain output.
//!
//! What it deliberately does not do: it does not reimplement registry or layout logic (the
//! checks are digests over bytes fetched with the testkit's tiny HTTP client), and it does not
//! start components: each test starts what it needs from the testkit and drops it at the end.
//!
//! # Example
//!
//! ```
//! use hoist_tests::{events, has_control_chars, tree};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("etc"))?;
//! std::fs::write(dir.path().join("etc/hostname"), b"box\n")?;
//! std::os::unix::fs::symlink("etc/hostname", dir.path().join("name"))?;
//! let listed = tree(dir.path())?;
//! assert_eq!(listed.len(), 3);
//! assert_eq!(listed[0].0, "etc");
//! assert!(listed[1].1.starts_with("file 4 sha256:"));
//! assert_eq!(listed[2].1, "symlink etc/hostname");
//!
//! let parsed = events("{\"event\":\"state\"}\nnot json\n");
//! assert_eq!(parsed.len(), 1);
//! assert!(has_control_chars("a\x1b[2Kb"));
//! assert!(!has_control_chars("pushing 1/2 MB\n"));
//! # Ok::<(), anyhow::Error>(())
//! ```

#![deny(missing_docs)]

use anyhow::{Context, bail, ensure};
use hoist_oci::{Descriptor, Digest, ImageManifest, MediaType};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The `hoist` executable, built on first use.
///
/// `HOIST_E2E_BIN` names a prebuilt binary instead. Otherwise runs `cargo build -p hoist --bin
/// hoist` in the workspace (the `CARGO` env var cargo sets for tests, else `cargo` on `PATH`) and
/// returns `$CARGO_TARGET_DIR/debug/hoist` (default `target/` in the workspace root).
///
/// # Panics
/// When the build fails: every test needs the binary.
pub fn hoist_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("HOIST_E2E_BIN") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        // The variables cargo sets for this test binary describe hoist-tests, not hoist; left
        // in, they can make the nested build see a changed environment and rebuild hoist.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                || key == "CARGO_PRIMARY_PACKAGE"
                || key == "CARGO_TARGET_TMPDIR"
            {
                build.env_remove(key);
            }
        }
        let status = build
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "hoist", "--bin", "hoist"])
            .status()
            .expect("run cargo build -p hoist");
        assert!(status.success(), "cargo build -p hoist failed: {status}");
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
            Some(t) => root.join(t),
            None => root.join("target"),
        };
        let bin = target.join("debug").join("hoist");
        assert!(bin.is_file(), "no hoist binary at {}", bin.display());
        bin
    })
}

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A `hoist` command line with a private cache and a clean environment.
#[derive(Debug)]
pub struct Hoist {
    cmd: Command,
}

impl Hoist {
    /// `hoist` with `HOIST_CACHE_DIR=cache`, no other `HOIST_*` or `RUST_LOG` variables, and
    /// `DOCKER_CONFIG`, `XDG_RUNTIME_DIR` and `XDG_CONFIG_HOME` pointing at missing
    /// directories and no `REGISTRY_AUTH_FILE` (no credentials from the host's docker or podman).
    pub fn new(cache: &Path) -> Hoist {
        let mut cmd = Command::new(hoist_bin());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HOIST_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env("HOIST_CACHE_DIR", cache)
            .env("DOCKER_CONFIG", cache.join("no-docker-config"))
            .env("XDG_RUNTIME_DIR", cache.join("no-runtime-dir"))
            .env("XDG_CONFIG_HOME", cache.join("no-config-home"))
            .stdin(Stdio::null());
        Hoist { cmd }
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Hoist {
        self.cmd.arg(arg);
        self
    }

    /// Set an environment variable (e.g. `DOCKER_HOST`).
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Hoist {
        self.cmd.env(key, value);
        self
    }

    /// The underlying command, to spawn or pipe it.
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Run to completion, capturing stdout and stderr.
    pub fn run(mut self) -> Out {
        let started = std::time::Instant::now();
        let out = self.cmd.output().expect("run hoist");
        let shown = shown_args(&self.cmd);
        eprintln!("hoist {shown} took {:.1?}", started.elapsed());
        // Kept for `cargo xtask ci`'s scan of the whole suite's output for secrets.
        hoist_testkit::secrets::capture_output(&format!("hoist {shown}"), &out.stdout, &out.stderr);
        Out {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The command's arguments for a log line, with the value of `--creds` hidden.
fn shown_args(cmd: &Command) -> String {
    let mut shown = Vec::new();
    let mut hide_next = false;
    for arg in cmd.get_args().map(|a| a.to_string_lossy()) {
        if hide_next {
            shown.push("***".into());
            hide_next = false;
        } else if arg.starts_with("--creds=") {
            shown.push("--creds=***".into());
        } else {
            hide_next = arg == "--creds";
            shown.push(arg.into_owned());
        }
    }
    shown.join(" ")
}

/// What a finished `hoist` run left behind.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Raw stdout (may be an archive).
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
}

impl Out {
    /// Panic with stderr unless the exit code is 0.
    pub fn success(self) -> Out {
        assert_eq!(self.code, Some(0), "hoist failed:\n{}", self.stderr);
        self
    }
}

/// The `--progress json` events in `stderr` (lines that parse as JSON objects).
pub fn events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// True when `s` holds a control character other than newline (escape sequences, `\r`, ...).
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

/// An image as a registry serves it, every blob checked against its digest.
#[derive(Debug)]
pub struct RegistryImage {
    /// Digest of the manifest bytes served.
    pub manifest_digest: Digest,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layer descriptors.
    pub layers: Vec<Descriptor>,
}

/// Fetch `repo:reference` from the registry at `addr`, and every blob its manifest names,
/// checking each blob's bytes and size against its descriptor and the manifest against the
/// `Docker-Content-Digest` header. Small images only (blobs are read into memory).
pub fn registry_image(
    addr: SocketAddr,
    repo: &str,
    reference: &str,
) -> anyhow::Result<RegistryImage> {
    let accept = format!(
        "{}, {}",
        MediaType::OCI_MANIFEST,
        MediaType::DOCKER_MANIFEST
    );
    let resp = hoist_testkit::http_request(
        addr,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", &accept)],
        &[],
    )?;
    ensure!(
        resp.status == 200,
        "manifest {repo}:{reference}: {}",
        resp.status
    );
    let manifest_digest = Digest::sha256_of(&resp.body);
    if let Some(header) = resp.header("docker-content-digest") {
        ensure!(
            header == manifest_digest.to_string(),
            "header {header} for {manifest_digest}"
        );
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&resp.body).context("parsing the manifest")?;
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let blob = hoist_testkit::http_get(addr, &format!("/v2/{repo}/blobs/{}", desc.digest))?;
        ensure!(blob.status == 200, "blob {}: {}", desc.digest, blob.status);
        ensure!(
            blob.body.len() as u64 == desc.size,
            "blob {} has {} bytes, descriptor says {}",
            desc.digest,
            blob.body.len(),
            desc.size
        );
        desc.digest
            .verify_bytes(&blob.body)
            .with_context(|| format!("blob {}", desc.digest))?;
    }
    Ok(RegistryImage {
        manifest_digest,
        config: manifest.config.clone(),
        layers: manifest.layers.clone(),
    })
}

/// Every entry under `dir`, sorted by relative path: `("a/b", "dir")`, `("a/f", "file SIZE
/// DIGEST")`, `("l", "symlink TARGET")`, or `"other"`.
pub fn tree(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let rel = path.strip_prefix(base)?.display().to_string();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                out.push((rel, "dir".into()));
                walk(base, &path, out)?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)?;
                out.push((rel, format!("symlink {}", target.display())));
            } else if ft.is_file() {
                let bytes = std::fs::read(&path)?;
                let digest = Digest::sha256_of(&bytes);
                out.push((rel, format!("file {} {digest}", bytes.len())));
            } else {
                out.push((rel, "other".into()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The reference root filesystem: each layer blob of an OCI layout at `layout`, bottom first,
/// extracted over `dest` with GNU `tar -x` (gzip detected by tar). For layers without
/// whiteouts, which is what the synthetic images here have.
pub fn reference_rootfs(layout: &Path, layers: &[Descriptor], dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest)?;
    for layer in layers {
        let blob = layout
            .join("blobs")
            .join(layer.digest.algorithm().to_string())
            .join(layer.digest.hex());
        let status = Command::new("tar")
            .arg("-x")
            .arg("-f")
            .arg(&blob)
            .arg("-C")
            .arg(dest)
            .status()
            .context("running tar")?;
        if !status.success() {
            bail!("tar -x {} failed: {status}", blob.display());
        }
    }
    Ok(())
}

/// Total request-body bytes the fault proxy forwarded on blob uploads (POST/PATCH/PUT under
/// `/blobs/uploads/`).
pub fn upload_bytes(proxy: &hoist_testkit::FaultProxy) -> u64 {
    proxy
        .records()
        .iter()
        .filter(|r| r.path.contains("/blobs/uploads/"))
        .map(|r| r.request_body_bytes)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_arguments_hide_credentials() {
        let mut cmd = Command::new("hoist");
        cmd.args([
            "-q",
            "--creds",
            "u:pw-123",
            "copy",
            "--creds=u:pw-456",
            "a",
            "b",
        ]);
        let shown = shown_args(&cmd);
        assert_eq!(shown, "-q --creds *** copy --creds=*** a b");
    }

    #[test]
    fn control_chars() {
        assert!(has_control_chars("\r"));
        assert!(has_control_chars("x\ty"));
        assert!(!has_control_chars("layer sha256:ab done\n"));
    }

    #[test]
    fn events_skip_non_objects() {
        let got = events("1\n[2]\n{\"a\":1}\n");
        assert_eq!(got, vec![serde_json::json!({"a": 1})]);
    }
}
