//! Throwaway certificates for TLS tests: a CA and a server certificate for the loopback names.
//!
//! Everything is generated in-process with `rcgen` (ECDSA P-256 through `ring`), so tests need
//! no `openssl` binary and no fixed certificate that could expire in the repository.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SigningKey,
};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The names the server certificate is valid for.
pub const TLS_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// PEM files of a freshly generated CA and a server certificate it signed for `127.0.0.1`,
/// `localhost` and `::1`, written into a temp dir that is removed on drop.
///
/// Also written: `certs.d/ca.crt`, the same CA in the layout docker's `certs.d/HOST/`
/// directories use, for clients that take a certificate directory; and `client.d/` with the CA
/// and a client certificate the CA signed (`client.cert`, `client.key`), for registries that
/// require one.
#[derive(Debug)]
pub struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_dir: PathBuf,
    client_dir: PathBuf,
    ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    _dir: TempDir,
}

impl TlsFiles {
    /// Generate a new CA and server certificate (valid from yesterday for 2 days).
    pub fn generate() -> anyhow::Result<TlsFiles> {
        // A unique name, so a client holding another kit CA reports an unknown issuer rather
        // than a bad signature from a same-named CA.
        let (ca_params, ca_key) =
            ca_params(&format!("hoist testkit CA {:08x}", fastrand::u32(..)))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(TLS_NAMES.map(String::from).to_vec())
            .context("server certificate names")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "hoist testkit server");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params);
        let key = KeyPair::generate().context("generating the server key")?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the server certificate")?;
        Self::write_all(ca_cert.der(), cert.der(), &key, &issuer)
    }

    /// One self-signed certificate that is both the CA and the server's certificate, for
    /// `names` (IP addresses or DNS names), as `openssl req -x509 -subj /CN=NAME -addext
    /// subjectAltName=IP:NAME` makes it: `basicConstraints CA:TRUE`, no key usage, no
    /// extended key usage. Go's TLS clients (docker, skopeo) accept it once it is trusted;
    /// webpki alone refuses a CA as the server's own certificate.
    ///
    /// [`TlsFiles::ca_file`], [`TlsFiles::cert_file`] and `ca.crt` in
    /// [`TlsFiles::cert_dir`] all hold that one certificate; the client certificate in
    /// [`TlsFiles::client_cert_dir`] is signed by it.
    pub fn self_signed_ca(names: &[&str]) -> anyhow::Result<TlsFiles> {
        let first = names
            .first()
            .context("a self-signed certificate needs a name")?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .context("self-signed certificate names")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, *first);
        set_validity(&mut params);
        let key = KeyPair::generate().context("generating the self-signed key")?;
        let cert = params
            .self_signed(&key)
            .context("self-signing the certificate")?;
        Self::write_all(
            cert.der(),
            cert.der(),
            &key,
            &Issuer::from_params(&params, &key),
        )
    }

    /// Write the CA, the server certificate and key, `certs.d/` and `client.d/` (with a
    /// client certificate `issuer` signs) into a new temp dir.
    fn write_all(
        ca_der: &[u8],
        cert_der: &[u8],
        key: &KeyPair,
        issuer: &Issuer<'_, impl SigningKey>,
    ) -> anyhow::Result<TlsFiles> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-tls-")
            .tempdir()
            .context("creating TLS temp dir")?;
        let ca_pem = pem("CERTIFICATE", ca_der);
        let ca = write(dir.path(), "ca.pem", &ca_pem)?;
        let cert_path = write(dir.path(), "cert.pem", &pem("CERTIFICATE", cert_der))?;
        let key_path = write(
            dir.path(),
            "key.pem",
            &pem("PRIVATE KEY", key.serialized_der()),
        )?;
        let cert_dir = dir.path().join("certs.d");
        std::fs::create_dir(&cert_dir).context("creating certs.d")?;
        write(&cert_dir, "ca.crt", &ca_pem)?;

        let mut params = CertificateParams::new(Vec::<String>::new())
            .context("client certificate parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "hoist testkit client");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params);
        let client_key = KeyPair::generate().context("generating the client key")?;
        let client = params
            .signed_by(&client_key, issuer)
            .context("signing the client certificate")?;
        let client_dir = dir.path().join("client.d");
        std::fs::create_dir(&client_dir).context("creating client.d")?;
        write(&client_dir, "ca.crt", &ca_pem)?;
        write(
            &client_dir,
            "client.cert",
            &pem("CERTIFICATE", client.der()),
        )?;
        write(
            &client_dir,
            "client.key",
            &pem("PRIVATE KEY", client_key.serialized_der()),
        )?;
        Ok(TlsFiles {
            ca,
            cert: cert_path,
            key: key_path,
            cert_dir,
            client_dir,
            ca_pem,
            cert_der: cert_der.to_vec(),
            key_der: key.serialized_der().to_vec(),
            _dir: dir,
        })
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The CA certificate's PEM text.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A directory holding only `ca.crt` (the CA), docker `certs.d` style.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    /// A directory holding the CA (`ca.crt`) and a client certificate it signed
    /// (`client.cert`, `client.key`), docker `certs.d` style.
    pub fn client_cert_dir(&self) -> &Path {
        &self.client_dir
    }

    /// The server certificate (PEM), for distribution's `http.tls.certificate`.
    pub fn cert_file(&self) -> &Path {
        &self.cert
    }

    /// The server's private key (PEM), for distribution's `http.tls.key`.
    pub fn key_file(&self) -> &Path {
        &self.key
    }

    /// A rustls (ring) server configuration presenting the server certificate, for the kit's
    /// own servers.
    pub(crate) fn server_config(&self) -> anyhow::Result<std::sync::Arc<rustls::ServerConfig>> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .context("TLS server certificate")?;
        Ok(std::sync::Arc::new(config))
    }
}

/// Parameters and key of a self-signed CA named `cn`.
pub(crate) fn ca_params(cn: &str) -> anyhow::Result<(CertificateParams, KeyPair)> {
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    let key = KeyPair::generate().context("generating the CA key")?;
    Ok((params, key))
}

/// Valid from a day ago (clock skew) for two days.
pub(crate) fn set_validity(params: &mut CertificateParams) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    params.not_before = now - std::time::Duration::from_secs(86_400);
    params.not_after = now + std::time::Duration::from_secs(2 * 86_400);
}

/// PEM text of one DER object (64-column base64 lines), written here rather than with rcgen's
/// `pem` feature, which would pull a second major version of `base64` into the tree.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_pem_and_the_ca_is_not_the_server() {
        let t = TlsFiles::generate().expect("generate");
        let ca = std::fs::read_to_string(t.ca_file()).expect("ca");
        let cert = std::fs::read_to_string(t.cert_file()).expect("cert");
        let key = std::fs::read_to_string(t.key_file()).expect("key");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(ca, cert);
        assert_eq!(
            std::fs::read_to_string(t.cert_dir().join("ca.crt")).expect("ca.crt"),
            ca
        );
        let client = t.client_cert_dir();
        for name in ["ca.crt", "client.cert", "client.key"] {
            assert!(client.join(name).is_file(), "{name}");
        }
        assert_ne!(
            std::fs::read_to_string(client.join("client.cert")).expect("client.cert"),
            cert
        );
        // A second call makes a different CA.
        let other = TlsFiles::generate().expect("generate");
        assert_ne!(other.ca_pem(), t.ca_pem());
    }

    #[test]
    fn a_self_signed_ca_is_the_server_certificate_itself() {
        let t = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("generate");
        let cert = std::fs::read_to_string(t.cert_file()).expect("cert");
        assert_eq!(std::fs::read_to_string(t.ca_file()).expect("ca"), cert);
        assert_eq!(
            std::fs::read_to_string(t.cert_dir().join("ca.crt")).expect("ca.crt"),
            cert
        );
        // A second one for the same name is another certificate (another key and serial).
        let other = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("generate");
        assert_ne!(other.ca_pem(), t.ca_pem());
        assert!(TlsFiles::self_signed_ca(&[]).is_err());
        // The kit's own servers can present it.
        t.server_config().expect("server config");
    }
}
