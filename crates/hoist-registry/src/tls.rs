//! TLS for registries: the roots hoist trusts, the client certificate it may present, the
//! configuration for hosts named insecure (HTTPS without certificate verification), and what a
//! failed handshake means.
//!
//! Two rustls configurations come out of one [`TlsSettings`]: the verifying one every registry
//! gets, and one that accepts any server certificate, used only for hosts the caller named
//! insecure (as docker's `insecure-registries` and skopeo's `--tls-verify=false` do). Both still
//! check the handshake's signatures, offer no ALPN (HTTP/1.1 only) and present the same client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::{Error, Result};

/// What the caller configured about TLS.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    /// CA files, or directories of `*.crt` / `*.pem` files, trusted besides the system roots.
    pub ca_files: Vec<PathBuf>,
    /// A client certificate chain and its private key (PEM files), presented when asked.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// A docker `certs.d/HOST`-style directory whose `NAME.cert`/`NAME.key` pair, if it has
    /// one, is the client certificate (when none was given as files).
    pub client_dir: Option<PathBuf>,
}

/// The two client configurations: verifying, and for hosts named insecure.
pub(crate) struct TlsConfigs {
    pub verifying: rustls::ClientConfig,
    pub unverified: rustls::ClientConfig,
}

impl TlsSettings {
    /// Read every file and build both configurations.
    ///
    /// # Errors
    /// Invalid input for a CA or key file without usable PEM, or a key that does not fit the
    /// certificate; local I/O for unreadable files.
    pub fn build(&self) -> Result<TlsConfigs> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = root_store(&self.ca_files)?;
        let pair = match (&self.client_identity, &self.client_dir) {
            (Some(pair), _) => Some(pair.clone()),
            (None, Some(dir)) => client_pair_in(dir)?,
            (None, None) => None,
        };
        let identity = match &pair {
            Some((cert, key)) => Some(client_identity(cert, key)?),
            None => None,
        };
        let builder = || {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::invalid(format!("TLS setup: {e}")))
        };
        let verifying = builder()?.with_root_certificates(roots);
        let unverified = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.clone())));
        let (verifying, unverified) = match identity {
            None => (
                verifying.with_no_client_auth(),
                unverified.with_no_client_auth(),
            ),
            Some((chain, key)) => {
                let bad = |e: rustls::Error| {
                    Error::invalid(format!("the client certificate and key do not fit: {e}"))
                };
                (
                    verifying
                        .with_client_auth_cert(chain.clone(), key.clone_key())
                        .map_err(bad)?,
                    unverified.with_client_auth_cert(chain, key).map_err(bad)?,
                )
            }
        };
        Ok(TlsConfigs {
            verifying,
            unverified,
        })
    }
}

/// The system and bundled roots, plus the PEM certificates in `extra` (files, or directories
/// whose `*.crt` / `*.pem` files are read, as docker reads a `certs.d/HOST` directory).
fn root_store(extra: &[PathBuf]) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    for path in extra {
        let files: Vec<PathBuf> = if path.is_dir() {
            let rd = std::fs::read_dir(path)
                .map_err(|e| Error::local(format!("reading CA directory {}", path.display()), e))?;
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "crt" || x == "pem")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("client"))
                })
                .collect()
        } else {
            vec![path.clone()]
        };
        let mut added = 0;
        for f in &files {
            let text = std::fs::read(f)
                .map_err(|e| Error::local(format!("reading CA file {}", f.display()), e))?;
            for cert in CertificateDer::pem_slice_iter(&text) {
                let cert = cert.map_err(|e| {
                    Error::invalid(format!("CA file {} is not valid PEM: {e}", f.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::invalid(format!(
                        "CA file {} holds a bad certificate: {e}",
                        f.display()
                    ))
                })?;
                added += 1;
            }
        }
        if added == 0 {
            return Err(Error::invalid(format!(
                "no PEM certificates found in {}",
                path.display()
            )));
        }
    }
    Ok(roots)
}

/// The client certificate of a certificate directory, docker style: a `NAME.cert` beside its
/// `NAME.key`. None when there is no `*.cert`; invalid input for a certificate without its key,
/// a key without its certificate, or more than one pair (one is presented).
fn client_pair_in(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    let unreadable = |e| {
        Error::local(
            format!("reading the certificate directory {}", dir.display()),
            e,
        )
    };
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("cert") => certs.push(path),
            Some("key") => keys.push(path),
            _ => {}
        }
    }
    if let Some(key) = keys
        .iter()
        .find(|k| !certs.contains(&k.with_extension("cert")))
    {
        return Err(Error::invalid(format!(
            "{} has no certificate beside it (expected {})",
            key.display(),
            key.with_extension("cert").display()
        )));
    }
    match certs.as_slice() {
        [] => Ok(None),
        [cert] if keys.contains(&cert.with_extension("key")) => {
            Ok(Some((cert.clone(), cert.with_extension("key"))))
        }
        [cert] => Err(Error::invalid(format!(
            "the client certificate {} has no key beside it (expected {})",
            cert.display(),
            cert.with_extension("key").display()
        ))),
        more => Err(Error::invalid(format!(
            "{} holds {} client certificates (*.cert); one is presented",
            dir.display(),
            more.len()
        ))),
    }
}

/// The certificate chain in `cert` and the private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1).
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let text = std::fs::read(cert).map_err(|e| {
        Error::local(
            format!("reading the client certificate {}", cert.display()),
            e,
        )
    })?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(format!(
                "client certificate {} is not valid PEM: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Error::invalid(format!(
            "no PEM certificate found in {}",
            cert.display()
        )));
    }
    let text = std::fs::read(key)
        .map_err(|e| Error::local(format!("reading the client key {}", key.display()), e))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        Error::invalid(format!(
            "no usable PEM private key in {}: {e}",
            key.display()
        ))
    })?;
    Ok((chain, key))
}

/// A verifier that accepts any server certificate but still checks that the server holds its
/// key (the handshake signatures): for hosts the caller named insecure only.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a TLS handshake failed, as far as the caller can act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The server's certificate was refused (unknown issuer, wrong name, expired).
    Certificate(String),
    /// The server answered with something that is not TLS: a plain-HTTP server on that port.
    NotTls,
}

/// The TLS reason in `e`'s source chain, if the request failed in the handshake for a reason
/// retrying cannot change. rustls errors may be wrapped in an `io::Error`, whose `source`
/// skips the wrapped error.
pub(crate) fn handshake_failure(e: &(dyn std::error::Error + 'static)) -> Option<HandshakeFailure> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        let tls = s.downcast_ref::<rustls::Error>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match tls {
            Some(t @ rustls::Error::InvalidCertificate(_)) => {
                return Some(HandshakeFailure::Certificate(t.to_string()));
            }
            // The first bytes back were no TLS record: "HTTP/1.1 400 ..." from a plain server
            // ('H' is no record type). Other malformed records are a broken server, not this.
            Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
                return Some(HandshakeFailure::NotTls);
            }
            _ => {}
        }
        // Some layers re-wrap the rustls error as text; its message is stable.
        let text = s.to_string();
        if text.starts_with("invalid peer certificate") {
            return Some(HandshakeFailure::Certificate(text));
        }
        if text.starts_with("received corrupt message of type InvalidContentType") {
            return Some(HandshakeFailure::NotTls);
        }
        src = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_told_apart() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            handshake_failure(&cert),
            Some(HandshakeFailure::Certificate(m)) if m.contains("UnknownIssuer")
        ));
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, plain);
        assert_eq!(handshake_failure(&wrapped), Some(HandshakeFailure::NotTls));
        let broken = rustls::Error::InvalidMessage(rustls::InvalidMessage::MessageTooShort);
        assert_eq!(
            handshake_failure(&broken),
            None,
            "a broken TLS server is no plain one"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(handshake_failure(&refused), None);
    }

    #[test]
    fn the_client_certificate_is_the_one_cert_and_key_pair_of_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let touch = |name: &str| std::fs::write(d.join(name), "x").expect("write");
        // CAs alone: no client certificate.
        touch("ca.crt");
        assert_eq!(client_pair_in(d).expect("scan"), None);
        // A certificate needs its key, and a key its certificate.
        touch("client.cert");
        let err = client_pair_in(d).expect_err("no key");
        assert!(
            err.is_invalid_input() && err.to_string().contains("client.key"),
            "{err}"
        );
        touch("client.key");
        assert_eq!(
            client_pair_in(d).expect("scan"),
            Some((d.join("client.cert"), d.join("client.key")))
        );
        touch("stray.key");
        let err = client_pair_in(d).expect_err("stray key").to_string();
        assert!(
            err.contains("stray.key") && err.contains("stray.cert"),
            "{err}"
        );
        // Two pairs: one is presented, and which is not guessed.
        touch("stray.cert");
        let err = client_pair_in(d).expect_err("two").to_string();
        assert!(err.contains("2 client certificates"), "{err}");
        assert!(
            client_pair_in(&d.join("missing"))
                .expect_err("gone")
                .is_local_io()
        );
    }

    #[test]
    fn a_client_identity_must_be_pem_and_fit_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("client.cert");
        let key = dir.path().join("client.key");
        std::fs::write(&cert, "not pem").expect("write");
        std::fs::write(&key, "not pem").expect("write");
        let settings = TlsSettings {
            client_identity: Some((cert.clone(), key.clone())),
            ..TlsSettings::default()
        };
        let err = settings.build().err().expect("no certificate");
        assert!(err.is_invalid_input(), "{err}");
        assert!(err.to_string().contains("client.cert"), "{err}");
        let missing = TlsSettings {
            client_identity: Some((dir.path().join("nope.cert"), key)),
            ..TlsSettings::default()
        };
        assert!(missing.build().err().expect("missing").is_local_io());
    }
}
