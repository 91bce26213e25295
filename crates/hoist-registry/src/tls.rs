//! TLS for registries: the roots hoist trusts, the client certificate it may present, the
//! configuration for hosts named insecure (HTTPS without certificate verification), and what a
//! failed handshake means.
//!
//! Two rustls configurations come out of one [`TlsSettings`]: the verifying one every registry
//! gets, and one that accepts any server certificate, used only for hosts the caller named
//! insecure (as docker's `insecure-registries` and skopeo's `--tls-verify=false` do). Both still
//! check the handshake's signatures, offer no ALPN (HTTP/1.1 only) and present the same client
//! certificate.
//!
//! The verifying one is webpki's with one addition, [`WebPkiOrGiven`]: a server whose own
//! certificate is a CA certificate (`basicConstraints CA:TRUE`, what `openssl req -x509` makes
//! for a self-signed registry) is accepted when that certificate is byte for byte one the
//! caller gave as trusted (a CA file or certificate directory, never the system roots), is
//! valid for the name spoken to and within its validity period. webpki refuses every CA
//! certificate as a server's own; Go's `crypto/x509`, which docker and skopeo use, accepts a
//! trusted certificate presented as the leaf. This trusts nothing new: the caller trusts that
//! certificate as a CA already, so its key could sign a server certificate for any name, and
//! the server must still prove it holds that key in the handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
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
        let verifier = verifier(&self.ca_files, &provider)?;
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
        let verifying = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
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

/// The verifier of registries not named insecure, trusting the system and bundled roots and
/// the certificates in `ca_files`.
fn verifier(ca_files: &[PathBuf], provider: &Arc<CryptoProvider>) -> Result<WebPkiOrGiven> {
    let (roots, given) = root_store(ca_files)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::invalid(format!("TLS setup: {e}")))?;
    Ok(WebPkiOrGiven { webpki, given })
}

/// The system and bundled roots, plus the PEM certificates in `extra` (files, or directories
/// whose `*.crt` / `*.pem` files are read, as docker reads a `certs.d/HOST` directory); and
/// those from `extra` alone, as given.
fn root_store(extra: &[PathBuf]) -> Result<(rustls::RootCertStore, Vec<CertificateDer<'static>>)> {
    let mut roots = rustls::RootCertStore::empty();
    let mut given = Vec::new();
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
                given.push(cert.clone());
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
    Ok((roots, given))
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

/// webpki's verifier, which also accepts as the server's own certificate a CA certificate the
/// caller gave as trusted, for the names it holds (see the module doc). Every other refusal
/// stands; the handshake signatures are checked by webpki's verifier as always.
#[derive(Debug)]
struct WebPkiOrGiven {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of the caller's CA files and certificate directories.
    given: Vec<CertificateDer<'static>>,
}

impl WebPkiOrGiven {
    /// Accept `end_entity`, a CA certificate webpki refused as a server's own, if it is one
    /// the caller gave and valid for `server_name`.
    fn given_as_own(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if !self.given.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(CaNotGiven)),
            )));
        }
        // The validity period is checked already: webpki refuses a certificate that is
        // expired or not yet valid as such before it looks at its basic constraints (the
        // `given_ca_as_own_certificate_*` tests hold it to that). The name is what is left;
        // no key usage is required of a CA certificate used this way, as Go requires none.
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }
}

impl ServerCertVerifier for WebPkiOrGiven {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if is_ca_as_end_entity(&e) => self.given_as_own(end_entity, server_name),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// Whether webpki refused the server's certificate for being a CA certificate. webpki names
/// the first check that fails; the validity period and distrust come before this one.
fn is_ca_as_end_entity(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            )
    )
}

/// The server presented a CA certificate as its own, and not one the caller gave as trusted.
#[derive(Debug)]
struct CaNotGiven;

impl std::fmt::Display for CaNotGiven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the registry presents a CA certificate as its own, and not one given as trusted",
        )
    }
}

impl std::error::Error for CaNotGiven {}

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
    /// The server's certificate was refused (unknown issuer, wrong name, expired): what is
    /// wrong with it, and what would make it accepted.
    Certificate {
        problem: String,
        remedy: &'static str,
    },
    /// The server answered with something that is not TLS: a plain-HTTP server on that port.
    NotTls,
}

/// The TLS reason in `e`'s source chain, if the request failed in the handshake for a reason
/// retrying cannot change.
pub(crate) fn handshake_failure(e: &(dyn std::error::Error + 'static)) -> Option<HandshakeFailure> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        match rustls_error_in(s) {
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(certificate_refused(why));
            }
            // The first bytes back were no TLS record: "HTTP/1.1 400 ..." from a plain server
            // ('H' is no record type). Other malformed records are a broken server, not this.
            Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
                return Some(HandshakeFailure::NotTls);
            }
            _ => {}
        }
        // Should a layer re-wrap the rustls error as text: its message is stable.
        let text = s.to_string();
        if text.starts_with("invalid peer certificate") {
            return Some(HandshakeFailure::Certificate {
                problem: text,
                remedy: TRUST_ITS_CA,
            });
        }
        if text.starts_with("received corrupt message of type InvalidContentType") {
            return Some(HandshakeFailure::NotTls);
        }
        src = s.source();
    }
    None
}

/// The rustls error `e` is, or holds inside `io::Error`s: tokio-rustls wraps it in one and
/// hyper-util that in another, and an `io::Error`'s `source` skips what it wraps.
fn rustls_error_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut e = e;
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// What to do about a certificate from an unknown CA.
const TRUST_ITS_CA: &str = "trust its CA with a CA file or certificate directory";

/// A refused certificate in words: rustls' own for what it words well, and what to do.
fn certificate_refused(why: &CertificateError) -> HandshakeFailure {
    use CertificateError as C;
    let (problem, remedy) = match why {
        C::Other(other) if other.0.is::<CaNotGiven>() => (
            other.0.to_string(),
            "if it is self-signed (as `openssl req -x509` makes them), put that very \
             certificate in the CA file or certificate directory to trust it",
        ),
        // webpki's reasons without a rustls variant, by its name for them.
        C::Other(other) => (format!("webpki refuses it: {}", other.0), TRUST_ITS_CA),
        C::UnknownIssuer => (
            "it is not signed by a trusted CA (UnknownIssuer)".to_owned(),
            TRUST_ITS_CA,
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            why.to_string(),
            "use a name the certificate holds, or give the registry a certificate for this one",
        ),
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => (
            why.to_string(),
            "check this machine's clock, or renew the registry's certificate",
        ),
        _ => (why.to_string(), TRUST_ITS_CA),
    };
    HandshakeFailure::Certificate { problem, remedy }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_told_apart() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            handshake_failure(&cert),
            Some(HandshakeFailure::Certificate { problem, remedy })
                if problem.contains("UnknownIssuer") && remedy == TRUST_ITS_CA
        ));
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, plain);
        assert_eq!(handshake_failure(&wrapped), Some(HandshakeFailure::NotTls));
        // Wrapped twice, as the connection pool hands it over: still the rustls error itself.
        let twice = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                CaNotGiven,
            )))),
        ));
        assert!(matches!(
            handshake_failure(&twice),
            Some(HandshakeFailure::Certificate { problem, .. })
                if problem.contains("presents a CA certificate as its own")
        ));
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
    fn a_ca_presented_as_the_servers_own_certificate_is_told_in_words() {
        let not_given = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
            Arc::new(CaNotGiven),
        )));
        let Some(HandshakeFailure::Certificate { problem, remedy }) = handshake_failure(&not_given)
        else {
            panic!("a certificate failure");
        };
        assert!(
            problem.contains("presents a CA certificate as its own"),
            "{problem}"
        );
        assert!(remedy.contains("that very certificate"), "{remedy}");
        // Any other webpki reason is named, without rustls' debug wrapping.
        let other = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
            Arc::new(webpki::Error::UnsupportedCriticalExtension),
        )));
        let Some(HandshakeFailure::Certificate { problem, .. }) = handshake_failure(&other) else {
            panic!("a certificate failure");
        };
        assert_eq!(problem, "webpki refuses it: UnsupportedCriticalExtension");
    }

    /// The first certificate of a PEM file.
    fn cert_in(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).expect("a PEM certificate")
    }

    /// The verifying verifier, trusting `ca_files` besides the system roots.
    fn verifying(ca_files: &[&Path]) -> WebPkiOrGiven {
        let files: Vec<PathBuf> = ca_files.iter().map(|p| p.to_path_buf()).collect();
        verifier(&files, &Arc::new(rustls::crypto::ring::default_provider())).expect("verifier")
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_owned()).expect("server name")
    }

    fn verify(
        v: &WebPkiOrGiven,
        cert: &CertificateDer<'_>,
        host: &str,
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        v.verify_server_cert(cert, &[], &name(host), &[], now)
    }

    #[test]
    fn given_ca_as_own_certificate_is_accepted_for_its_names_only() {
        let tls = hoist_testkit::TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("certificate");
        let cert = cert_in(tls.cert_file());
        let now = UnixTime::now();
        let given = verifying(&[tls.cert_dir()]);
        verify(&given, &cert, "127.0.0.1", now).expect("the given certificate");
        assert!(matches!(
            verify(&given, &cert, "localhost", now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        // Not given: nothing but the system roots, or another certificate for the same name.
        let other = hoist_testkit::TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("other");
        for v in [verifying(&[]), verifying(&[other.cert_file()])] {
            let e = verify(&v, &cert, "127.0.0.1", now).expect_err("not given");
            assert!(
                matches!(&e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
                    if o.0.is::<CaNotGiven>()),
                "{e}"
            );
        }
    }

    #[test]
    fn given_ca_as_own_certificate_outside_its_validity_period_is_refused() {
        // The kit's certificates are valid from a day ago for two days.
        let tls = hoist_testkit::TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("certificate");
        let cert = cert_in(tls.cert_file());
        let given = verifying(&[tls.cert_dir()]);
        let now = UnixTime::now().as_secs();
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        assert!(matches!(
            verify(&given, &cert, "127.0.0.1", at(now + 3 * 86_400)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        assert!(matches!(
            verify(&given, &cert, "127.0.0.1", at(now - 2 * 86_400)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ));
    }

    #[test]
    fn a_ca_and_the_server_certificate_it_signed_verify_as_before() {
        let tls = hoist_testkit::TlsFiles::generate().expect("certificates");
        let server = cert_in(tls.cert_file());
        let now = UnixTime::now();
        let with_ca = verifying(&[tls.ca_file()]);
        verify(&with_ca, &server, "localhost", now).expect("signed by the given CA");
        assert!(matches!(
            verify(&verifying(&[]), &server, "localhost", now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ));
        // The CA itself, presented as a server's certificate: given, but it names no host.
        let ca = cert_in(tls.ca_file());
        assert!(matches!(
            verify(&with_ca, &ca, "localhost", now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
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
