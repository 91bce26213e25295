//! No secret in any output: the `hoist` binary pushes and pulls with credentials against real
//! registries (token auth, htpasswd Basic auth, TLS, a body-limited nginx) at trace level and
//! with `--progress json`, succeeding and failing, and every byte it prints on stdout and stderr
//! is scanned for the passwords, the base64 of `user:pass`, and every token the token server
//! issued. Credentials come from `--creds`, a docker `config.json` and a credential helper.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Nginx, Registry, TlsFiles, TokenServer, require_tool};

const USER: &str = "deploy";
const PASSWORD: &str = "Sup3r-Secret-pw-6f2a91";
const WRONG: &str = "Wr0ng-Secret-pw-03bd5e";

/// Everything a run printed, plus the secrets it must not contain.
struct Scan {
    secrets: Vec<String>,
    seen: String,
}

impl Scan {
    fn new() -> Scan {
        let mut secrets = vec![PASSWORD.to_string(), WRONG.to_string()];
        for p in [PASSWORD, WRONG] {
            secrets.push(STANDARD.encode(format!("{USER}:{p}")));
        }
        Scan {
            secrets,
            seen: String::new(),
        }
    }

    /// Record a run's output; returns it as text for the caller's own asserts.
    fn record(&mut self, what: &str, out: &Output) -> String {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.seen.push_str(&format!(
            "\n===== {what} (exit {:?})\n{text}",
            out.status.code()
        ));
        text
    }

    fn add_tokens(&mut self, tokens: &TokenServer) {
        for t in tokens.tokens() {
            // The whole token and its signature (the header part is the same public x5c).
            if let Some((_, sig)) = t.rsplit_once('.') {
                self.secrets.push(sig.to_string());
            }
            self.secrets.push(t);
        }
    }

    /// Assert that nothing recorded contains a secret.
    fn assert_clean(&self) {
        if let Some(path) = std::env::var_os("HOIST_SECRETS_DUMP") {
            std::fs::write(path, &self.seen).expect("dump");
        }
        // The runs really logged at trace level (so the scan covers the request logging).
        assert!(
            self.seen.contains("registry response"),
            "no request was logged: {}",
            self.seen
        );
        for s in &self.secrets {
            if let Some(at) = self.seen.find(s.as_str()) {
                let from = self.seen[..at].rfind("=====").unwrap_or(0);
                panic!(
                    "a secret ({} chars) leaked; context:\n{}",
                    s.len(),
                    &self.seen[from..(at + s.len()).min(self.seen.len())]
                );
            }
        }
        assert!(
            !self.seen.to_ascii_lowercase().contains("authorization: "),
            "an Authorization header was printed"
        );
    }
}

fn hoist(cache: &Path, docker_config: &Path, args: &[&str]) -> Command {
    let mut cmd = common::clean();
    cmd.env("HOIST_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", docker_config)
        .args(["-vvv", "--progress", "json"])
        .args(args);
    cmd
}

fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("run hoist")
}

fn layout(dir: &Path, seed: u64) -> String {
    let spec = ImageSpec::uniform(2, 60_000, Compression::Gzip, seed);
    write_oci_layout(dir, "v1", &spec).expect("synthetic layout");
    format!("oci:{}:v1", dir.display())
}

/// A docker config dir whose config.json says `body`.
fn docker_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join("config.json"), body).expect("config.json");
    d
}

#[test]
fn token_auth_push_pull_and_failures_print_no_secret() {
    if !require_tool("docker-registry") {
        return;
    }
    let tokens = TokenServer::builder()
        .user(USER, PASSWORD)
        .grant(USER, "team/*", &["pull", "push"])
        .expires_in(2)
        .start()
        .expect("token server");
    let reg = Registry::builder()
        .token_auth(&tokens.auth())
        .start()
        .expect("registry");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let none = docker_config(tmp.path(), "none", "{}");
    let src = layout(&tmp.path().join("layout"), 1);
    let target = format!("{}/team/app:v1", reg.host());
    let creds = format!("{USER}:{PASSWORD}");
    let mut scan = Scan::new();

    let out = run(hoist(
        &cache,
        &none,
        &["--creds", &creds, "push", &src, &target],
    ));
    let text = scan.record("push with --creds", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");

    let pulled = tmp.path().join("pulled");
    let out = run(hoist(&cache, &none, &["--creds", &creds, "pull", &target])
        .arg(&pulled)
        .env("RUST_LOG", "trace"));
    let text = scan.record("pull with RUST_LOG=trace", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");

    let wrong = format!("{USER}:{WRONG}");
    let out = run(hoist(
        &cache,
        &none,
        &["--creds", &wrong, "push", &src, &target],
    ));
    let text = scan.record("push with a wrong password", &out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("auth") || text.contains("401"),
        "the failure says it is about authentication: {text}"
    );
    // One refused token request per blob the push touched at most: no retry storm.
    assert!(
        (1..=3).contains(&tokens.refused()),
        "refused token requests: {}",
        tokens.refused()
    );
    assert!(
        tokens.issued() >= 2,
        "tokens were issued: {:?}",
        tokens.scopes()
    );
    scan.add_tokens(&tokens);
    scan.assert_clean();
}

#[test]
fn basic_auth_helper_config_413_and_tls_failures_print_no_secret() {
    if !require_tool("docker-registry") || !require_tool("nginx") {
        return;
    }
    let tls = TlsFiles::generate().expect("certificates");
    let reg = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = layout(&tmp.path().join("layout"), 2);
    let target = format!("{}/team/app:v1", reg.host());
    let mut scan = Scan::new();

    // A credential helper on PATH (for this child only), named by credHelpers.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\necho \"$host\" >> \"{}\"\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\n",
            tmp.path().join("helper.log").display()
        ),
    )
    .expect("helper");
    let mut perms = std::fs::metadata(&helper).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&helper, perms).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helper_cfg = docker_config(
        tmp.path(),
        "helper",
        &format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.host()),
    );
    let out = run(hoist(&cache, &helper_cfg, &["push", &src, &target]).env("PATH", &path));
    let text = scan.record("push with a credential helper", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let asked = std::fs::read_to_string(tmp.path().join("helper.log")).unwrap_or_default();
    assert!(
        asked.contains(&reg.host()),
        "the helper was asked: {asked:?}"
    );

    // Pull with a config.json `auths` entry.
    let auth = STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let auths_cfg = docker_config(
        tmp.path(),
        "auths",
        &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    );
    let out = run(hoist(&cache, &auths_cfg, &["pull", &target]).arg(tmp.path().join("pulled")));
    let text = scan.record("pull with config.json auths", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");

    // Wrong password from the command line: an auth failure, fast.
    let none = docker_config(tmp.path(), "none", "{}");
    let wrong = format!("{USER}:{WRONG}");
    let out = run(hoist(
        &cache,
        &none,
        &["--creds", &wrong, "push", &src, &target],
    ));
    let text = scan.record("push with a wrong password", &out);
    assert_ne!(out.status.code(), Some(0), "{text}");

    // 413 from nginx in front of the authenticated registry (tiny body limit).
    let proxy = Nginx::builder(reg.addr())
        .max_body_size(1024)
        .start()
        .expect("nginx");
    let src3 = layout(&tmp.path().join("layout3"), 3);
    let creds = format!("{USER}:{PASSWORD}");
    let proxied = format!("{}/team/other:v1", proxy.host());
    let out = run(hoist(
        &cache,
        &none,
        &[
            "--creds",
            &creds,
            "--chunk-size",
            "64KiB",
            "push",
            &src3,
            &proxied,
        ],
    ));
    let text = scan.record("push through a 1 KiB body limit", &out);
    assert!(text.contains("413"), "the 413 was seen: {text}");
    assert!(
        !text.to_ascii_lowercase().contains("<html"),
        "no HTML page in the output"
    );

    // TLS: a TLS registry with the same credentials; a CA it does not use is refused.
    let tls_reg = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .tls(&tls)
        .start()
        .expect("TLS registry");
    let tls_target = format!("docker://{}/team/app:v1", tls_reg.host());
    let other = TlsFiles::generate().expect("other CA");
    let other_dir = other.cert_dir().display().to_string();
    let out = run(hoist(
        &cache,
        &none,
        &[
            "--creds",
            &creds,
            "--cert-dir",
            &other_dir,
            "copy",
            &src,
            &tls_target,
        ],
    ));
    let text = scan.record("copy to TLS with an unknown CA", &out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("TLS certificate is not trusted"),
        "the failure names the certificate: {text}"
    );
    let cert_dir = tls.cert_dir().display().to_string();
    let out = run(hoist(
        &cache,
        &none,
        &[
            "--creds",
            &creds,
            "--cert-dir",
            &cert_dir,
            "copy",
            &src,
            &tls_target,
        ],
    ));
    let text = scan.record("copy to TLS with its CA", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    scan.assert_clean();
}
