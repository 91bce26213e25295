//! A token server for distribution's `auth.token`: checks Basic credentials, grants only the
//! actions each user may have per repository, and issues ES256 JWTs the real registry verifies.
//!
//! The signing key gets a certificate issued by a CA generated here; the CA goes into the
//! registry's `rootcertbundle` and the signing certificate into each JWT's `x5c` header, which
//! is how distribution 2.8 finds and trusts the key. Every request is counted (by scope, and
//! refused ones separately) so tests can assert token caching and the absence of retry storms.

use crate::tls::{TlsFiles, ca_params, pem, set_validity};
use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, DnType, Issuer, KeyPair, KeyUsagePurpose};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// distribution 2.8 accepts a token up to this long after its `exp` (and before its `nbf`).
/// The server subtracts it from `exp` so that a token really stops working after `expires_in`.
pub const REGISTRY_LEEWAY_SECS: u64 = 60;

/// Options for a [`TokenServer`]; see [`TokenServer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenServerBuilder {
    users: BTreeMap<String, String>,
    grants: Vec<Grant>,
    expires_in: u64,
    service: String,
    issuer: String,
    tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Debug, Clone)]
struct Grant {
    user: String,
    repo: String,
    actions: Vec<String>,
}

impl Default for TokenServerBuilder {
    fn default() -> Self {
        TokenServerBuilder {
            users: BTreeMap::new(),
            grants: Vec::new(),
            expires_in: 300,
            service: "hoist-testkit-registry".into(),
            issuer: "hoist-testkit-token-issuer".into(),
            tls: None,
        }
    }
}

impl TokenServerBuilder {
    /// A user who may log in with this password (Basic auth on the token request).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        crate::secrets::record_login(name, password);
        self.users.insert(name.into(), password.into());
        self
    }

    /// Let `user` (`""` for anonymous requests) have `actions` (`pull`, `push`, ...) on `repo`.
    /// A `repo` ending in `/*` matches every repository under that prefix; `*` matches all.
    pub fn grant(mut self, user: &str, repo: &str, actions: &[&str]) -> Self {
        self.grants.push(Grant {
            user: user.into(),
            repo: repo.into(),
            actions: actions.iter().map(|a| (*a).to_string()).collect(),
        });
        self
    }

    /// Token lifetime in seconds as told to clients (`expires_in`) and enforced by the
    /// registry (see [`REGISTRY_LEEWAY_SECS`]). Default 300.
    pub fn expires_in(mut self, secs: u64) -> Self {
        self.expires_in = secs.max(1);
        self
    }

    /// Serve HTTPS with the server certificate of `files` (valid for 127.0.0.1, so clients
    /// trusting that CA reach an `https://` realm).
    ///
    /// # Errors
    /// When rustls refuses the certificate.
    pub fn tls(mut self, files: &TlsFiles) -> anyhow::Result<Self> {
        self.tls = Some(files.server_config()?);
        Ok(self)
    }

    /// Generate the keys, write the root bundle, and start serving on `127.0.0.1:0`.
    pub fn start(self) -> anyhow::Result<TokenServer> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-token-")
            .tempdir()
            .context("creating token server temp dir")?;
        let (ca_p, ca_key) =
            ca_params(&format!("hoist testkit token CA {:08x}", fastrand::u32(..)))?;
        let ca_cert = ca_p.self_signed(&ca_key).context("self-signing token CA")?;
        let issuer = Issuer::new(ca_p, ca_key);
        let mut params = CertificateParams::new(Vec::<String>::new()).context("signer params")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "hoist testkit token signer");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params);
        let key = KeyPair::generate().context("generating the token signing key")?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the token signer certificate")?;
        let root_bundle = dir.path().join("token-root.pem");
        std::fs::write(&root_bundle, pem("CERTIFICATE", ca_cert.der()))
            .with_context(|| format!("writing {}", root_bundle.display()))?;
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key.serialized_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| anyhow::anyhow!("loading the signing key into ring: {e}"))?;
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(cert.der())],
        });
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding token port")?;
        let addr = listener.local_addr().context("token server address")?;
        let shared = Arc::new(Shared {
            cfg: self,
            signer,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            stats: Mutex::new(Stats::default()),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("token-server-accept".into())
            .spawn(move || accept_loop(listener, sh))
            .context("spawning token server thread")?;
        Ok(TokenServer {
            addr,
            shared,
            root_bundle,
            accept: Some(accept),
            _dir: dir,
        })
    }
}

/// What the server has seen; see the accessors on [`TokenServer`].
#[derive(Debug, Default)]
struct Stats {
    requests: usize,
    refused: usize,
    issued: usize,
    by_scope: BTreeMap<String, usize>,
    tokens: Vec<String>,
}

struct Shared {
    cfg: TokenServerBuilder,
    signer: EcdsaKeyPair,
    header_b64: String,
    stats: Mutex<Stats>,
    stop: AtomicBool,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The settings distribution needs in `auth.token` to trust a [`TokenServer`].
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// `realm`: the token endpoint URL.
    pub realm: String,
    /// `service`: the audience tokens are issued for.
    pub service: String,
    /// `issuer`: the `iss` claim.
    pub issuer: String,
    /// `rootcertbundle`: PEM of the CA that signed the token signing certificate.
    pub root_cert_bundle: PathBuf,
}

/// A running token server on `127.0.0.1:PORT`, endpoint `/token`. Stopped on drop.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    root_bundle: PathBuf,
    accept: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Options for a token server.
    pub fn builder() -> TokenServerBuilder {
        TokenServerBuilder::default()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/token` (`https://` when started with
    /// [`TokenServerBuilder::tls`]).
    pub fn realm(&self) -> String {
        let scheme = if self.shared.cfg.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/token", self.addr)
    }

    /// The `auth.token` settings for [`crate::RegistryBuilder::token_auth`].
    pub fn auth(&self) -> TokenAuth {
        TokenAuth {
            realm: self.realm(),
            service: self.shared.cfg.service.clone(),
            issuer: self.shared.cfg.issuer.clone(),
            root_cert_bundle: self.root_bundle.clone(),
        }
    }

    /// The root bundle PEM file.
    pub fn root_cert_bundle(&self) -> &Path {
        &self.root_bundle
    }

    /// Token requests received, granted or not.
    pub fn requests(&self) -> usize {
        self.shared.stats().requests
    }

    /// Token requests refused (unknown user or wrong password).
    pub fn refused(&self) -> usize {
        self.shared.stats().refused
    }

    /// Tokens issued.
    pub fn issued(&self) -> usize {
        self.shared.stats().issued
    }

    /// Tokens issued for requests that asked for exactly this `scope` string (among others),
    /// e.g. `repository:team/app:pull,push`.
    pub fn issued_for(&self, scope: &str) -> usize {
        self.shared
            .stats()
            .by_scope
            .get(scope)
            .copied()
            .unwrap_or(0)
    }

    /// Every scope string requested so far, with how many tokens were issued for it.
    pub fn scopes(&self) -> BTreeMap<String, usize> {
        self.shared.stats().by_scope.clone()
    }

    /// Every token issued so far (for tests that assert no token leaks into output).
    pub fn tokens(&self) -> Vec<String> {
        self.shared.stats().tokens.clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        let sh = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("token-server-conn".into())
            .spawn(move || serve(stream, &sh));
    }
}

/// One request per connection (`Connection: close`), over TLS when configured.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    match &shared.cfg.tls {
        Some(cfg) => {
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(cfg)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            exchange(&mut tls, shared);
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(Shutdown::Both);
        }
        None => {
            let mut plain = stream;
            exchange(&mut plain, shared);
            let _ = plain.shutdown(Shutdown::Both);
        }
    }
}

/// Read one request head from `stream` and write the response.
fn exchange<S: Read + Write>(stream: &mut S, shared: &Shared) {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {
                if let Some((k, v)) = h.split_once(':')
                    && k.trim().eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(v.trim().to_string());
                }
            }
        }
    }
    drop(reader);
    let (status, body) = respond(shared, &target, authorization.as_deref());
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

/// The pure part: status and body for a request target and Authorization header.
fn respond(shared: &Shared, target: &str, authorization: Option<&str>) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return (404, error_body("NOT_FOUND", "no such endpoint"));
    }
    shared.stats().requests += 1;
    let cfg = &shared.cfg;
    let user = match authorization.map(basic_user) {
        None => String::new(),
        Some(Some((u, p))) if cfg.users.get(&u) == Some(&p) => u,
        Some(_) => {
            shared.stats().refused += 1;
            return (
                401,
                error_body("UNAUTHORIZED", "invalid username or password"),
            );
        }
    };
    let params = parse_query(query);
    let scopes: Vec<&String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .collect();
    let mut access = Vec::new();
    for scope in &scopes {
        for s in scope.split(' ') {
            if let Some(a) = granted(cfg, &user, s) {
                access.push(a);
            }
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let jti = format!("{:016x}", fastrand::u64(..));
    let claims = serde_json::json!({
        "iss": cfg.issuer,
        "sub": user,
        "aud": cfg.service,
        "iat": now,
        "nbf": now.saturating_sub(1),
        // See REGISTRY_LEEWAY_SECS: the registry adds it back when checking.
        "exp": (now + cfg.expires_in).saturating_sub(REGISTRY_LEEWAY_SECS),
        "jti": jti,
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        shared.header_b64,
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let Ok(sig) = shared
        .signer
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
    else {
        return (500, error_body("SIGN", "signing failed"));
    };
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    {
        let mut st = shared.stats();
        st.issued += 1;
        for s in &scopes {
            *st.by_scope.entry((*s).clone()).or_default() += 1;
        }
        crate::secrets::record(&token);
        if let Some((_, sig)) = token.rsplit_once('.') {
            crate::secrets::record(sig);
        }
        st.tokens.push(token.clone());
    }
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": cfg.expires_in,
    });
    (200, body.to_string())
}

/// The `access` entry for one `repository:NAME:ACTIONS` scope: the requested actions this user
/// was granted, or `None` when nothing is.
fn granted(cfg: &TokenServerBuilder, user: &str, scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind != "repository" {
        return None;
    }
    let allowed: Vec<&str> = actions
        .split(',')
        .filter(|a| {
            cfg.grants.iter().any(|g| {
                g.user == user && repo_matches(&g.repo, name) && g.actions.iter().any(|x| x == a)
            })
        })
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(serde_json::json!({"type": kind, "name": name, "actions": allowed}))
}

fn repo_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/')),
        None => pattern == name,
    }
}

/// `Basic base64(user:pass)` → `(user, pass)`.
fn basic_user(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `a=b&c=d` with `+` and `%XX` decoding.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> TokenServer {
        TokenServer::builder()
            .user("alice", "pw")
            .grant("alice", "team/*", &["pull", "push"])
            .grant("", "public", &["pull"])
            .start()
            .expect("start")
    }

    fn claims(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).expect("payload");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
    }

    #[test]
    fn grants_only_what_the_user_may_and_counts() {
        let s = server();
        let basic = format!("Basic {}", STANDARD.encode("alice:pw"));
        let (st, body) = respond(
            &s.shared,
            "/token?service=x&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository:other:pull",
            Some(&basic),
        );
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let c = claims(v["token"].as_str().expect("token"));
        assert_eq!(
            c["access"],
            serde_json::json!([{"type":"repository","name":"team/app","actions":["pull","push"]}])
        );
        assert_eq!(s.issued_for("repository:team/app:pull,push"), 1);

        // Anonymous gets pull on the public repo only, never push.
        let (_, body) = respond(&s.shared, "/token?scope=repository:public:pull,push", None);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let c = claims(v["token"].as_str().expect("token"));
        assert_eq!(c["access"][0]["actions"], serde_json::json!(["pull"]));

        // Wrong password: 401, counted as refused, no token.
        let bad = format!("Basic {}", STANDARD.encode("alice:nope"));
        let (st, _) = respond(&s.shared, "/token?scope=repository:team/a:pull", Some(&bad));
        assert_eq!(st, 401);
        assert_eq!((s.requests(), s.refused(), s.issued()), (3, 1, 2));
        assert_eq!(s.tokens().len(), 2);
    }

    #[test]
    fn signature_verifies_with_the_certificate_key() {
        let s = server();
        let (_, body) = respond(&s.shared, "/token?scope=repository:public:pull", None);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let token = v["token"].as_str().expect("token");
        let (input, sig) = token.rsplit_once('.').expect("three parts");
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            ring::signature::KeyPair::public_key(&s.shared.signer).as_ref(),
        );
        key.verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).expect("sig"))
            .expect("valid ES256 signature");
    }

    #[test]
    fn patterns_and_decoding() {
        assert!(repo_matches("team/*", "team/a/b"));
        assert!(!repo_matches("team/*", "teamx/a"));
        assert!(repo_matches("*", "x"));
        assert_eq!(decode("a%3Ab+c%2"), "a:b c%2");
    }
}
