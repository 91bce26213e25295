//! The crate's one public error type, saying who is at fault.

use std::fmt;

use hoist_oci::Digest;

/// Who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The registry understood and said no: auth, 413 body limit, 416, unknown name or
    /// manifest, invalid digest.
    RegistryRefused,
    /// The registry broke the protocol: a bad `Location`, a digest that does not match the
    /// bytes, garbage where JSON or a header was required.
    RegistryMisbehaved,
    /// The network: connection refused or reset, TLS failure, timeout.
    Transport,
    /// Local files: the blob source, the sink, the state directory, a credential helper.
    LocalIo,
    /// The caller's input: a bad repository name, a source that is not what it claims.
    InvalidInput,
    /// Nobody is at fault: the caller asked the push to stop
    /// ([`PushOptions::stop_when`](crate::PushOptions::stop_when)). What the registry
    /// acknowledged is kept, and with a state directory a later push continues there.
    Stopped,
}

/// The error type of `hoist-registry` (boxed inside: cheap to return).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    url: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    digest: Option<Digest>,
    digest_mismatch: bool,
    untrusted_certificate: bool,
    plain_http_server: bool,
    plain_http_refused: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                url: None,
                status: None,
                code: None,
                digest: None,
                digest_mismatch: false,
                untrusted_certificate: false,
                plain_http_server: false,
                plain_http_refused: false,
                source: None,
            }),
        }
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RegistryRefused, message)
    }
    pub(crate) fn misbehaved(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RegistryMisbehaved, message)
    }
    /// Content (from the registry) did not hash to the digest it should have.
    pub(crate) fn digest_mismatch(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::RegistryMisbehaved, message);
        e.inner.digest_mismatch = true;
        e
    }
    pub(crate) fn transport(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transport, message)
    }
    /// The server's TLS certificate was not accepted: retrying cannot help.
    pub(crate) fn untrusted_certificate(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Transport, message);
        e.inner.untrusted_certificate = true;
        e
    }
    /// The server answered the TLS handshake in plain HTTP: retrying cannot help.
    pub(crate) fn plain_http_server(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Transport, message);
        e.inner.plain_http_server = true;
        e
    }
    /// Mark a refusal of a plain-HTTP request as the answer of a server that speaks only HTTPS.
    pub(crate) fn plain_http_refused(mut self) -> Self {
        self.inner.plain_http_refused = true;
        self
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// The caller asked the push to stop.
    pub(crate) fn stopped(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Stopped, message)
    }
    pub(crate) fn local(what: impl Into<String>, err: std::io::Error) -> Self {
        Self::new(ErrorKind::LocalIo, format!("{}: {err}", what.into())).with_source(err)
    }

    /// Say it in other words, keeping the status, code and URL.
    pub(crate) fn reworded(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// Put what hoist was doing in front of the message.
    pub(crate) fn while_doing(mut self, what: &str) -> Self {
        self.inner.message = format!("{what}: {}", self.inner.message);
        self
    }

    /// Add what hoist did about it to the message.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.inner.message.push_str("; ");
        self.inner.message.push_str(note);
        self
    }

    /// Attach the URL; callers pass it already stripped of credentials.
    pub(crate) fn with_url(mut self, shown_url: impl Into<String>) -> Self {
        self.inner.url = Some(shown_url.into());
        self
    }
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }
    pub(crate) fn with_code(mut self, code: Option<String>) -> Self {
        self.inner.code = code;
        self
    }
    pub(crate) fn with_digest(mut self, digest: &Digest) -> Self {
        self.inner.digest = Some(digest.clone());
        self
    }
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }
    /// The human message (without URL and code; `Display` adds them).
    pub fn message(&self) -> &str {
        &self.inner.message
    }
    /// The URL involved, credentials and signatures removed.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }
    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }
    /// The OCI error code from the registry's body (`NAME_UNKNOWN`, `DIGEST_INVALID`, ...).
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }
    /// The blob or manifest digest involved.
    pub fn digest(&self) -> Option<&Digest> {
        self.inner.digest.as_ref()
    }
    /// The registry refused (auth, limits, unknown names, invalid digests).
    pub fn is_refused(&self) -> bool {
        self.inner.kind == ErrorKind::RegistryRefused
    }
    /// The registry broke the protocol or sent wrong content.
    pub fn is_misbehaved(&self) -> bool {
        self.inner.kind == ErrorKind::RegistryMisbehaved
    }
    /// A network failure.
    pub fn is_transport(&self) -> bool {
        self.inner.kind == ErrorKind::Transport
    }
    /// A TLS failure because the registry's certificate was not trusted (unknown CA, wrong
    /// name, expired): a [`ErrorKind::Transport`] error that is not retried.
    pub fn is_untrusted_certificate(&self) -> bool {
        self.inner.untrusted_certificate
    }
    /// A TLS handshake answered in plain HTTP: the registry serves no TLS on that port (a
    /// [`ErrorKind::Transport`] error that is not retried; a host named insecure is then
    /// spoken to in plain HTTP instead).
    pub fn is_plain_http_server(&self) -> bool {
        self.inner.plain_http_server
    }
    /// A plain-HTTP request answered with a 400 that carries no registry error code, as a
    /// registry serving only HTTPS on that port answers one (plain HTTP is what a loopback
    /// registry gets by default): it most likely needs HTTPS. A [`ErrorKind::RegistryRefused`]
    /// error.
    pub fn is_plain_http_refused(&self) -> bool {
        self.inner.plain_http_refused
    }
    /// A network failure worth retrying (not a certificate that will stay untrusted, nor a
    /// server without TLS).
    pub(crate) fn is_retryable_transport(&self) -> bool {
        self.is_transport() && !self.inner.untrusted_certificate && !self.inner.plain_http_server
    }
    /// A local file problem.
    pub fn is_local_io(&self) -> bool {
        self.inner.kind == ErrorKind::LocalIo
    }
    /// The caller's input was wrong.
    pub fn is_invalid_input(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidInput
    }
    /// The push stopped because the caller asked it to
    /// ([`PushOptions::stop_when`](crate::PushOptions::stop_when)), not because anything failed.
    pub fn is_stopped(&self) -> bool {
        self.inner.kind == ErrorKind::Stopped
    }
    /// Credentials were missing or refused.
    pub fn is_auth(&self) -> bool {
        matches!(self.inner.status, Some(401 | 403))
    }
    /// A body limit (413) was hit and could not be worked around.
    pub fn is_body_too_large(&self) -> bool {
        self.inner.status == Some(413)
    }
    /// The repository, manifest, tag or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        self.inner.status == Some(404)
            || matches!(
                self.inner.code.as_deref(),
                Some("NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN")
            )
    }
    /// The registry does not support or allow the operation (405 Method Not Allowed, or the
    /// `UNSUPPORTED` code): a delete on a registry that has deletes turned off.
    pub fn is_unsupported(&self) -> bool {
        self.inner.status == Some(405) || self.inner.code.as_deref() == Some("UNSUPPORTED")
    }
    /// Content did not hash to its digest (on either side).
    pub fn is_digest_mismatch(&self) -> bool {
        self.inner.digest_mismatch || self.inner.code.as_deref() == Some("DIGEST_INVALID")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.inner.kind {
            ErrorKind::RegistryRefused => "registry refused",
            ErrorKind::RegistryMisbehaved => "registry misbehaved",
            ErrorKind::Transport => "network error",
            ErrorKind::LocalIo => "local I/O error",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Stopped => "stopped on request",
        };
        write!(f, "{who}: {}", self.inner.message)?;
        if let Some(code) = &self.inner.code {
            write!(f, " [{code}]")?;
        }
        if let Some(d) = &self.inner.digest {
            write!(f, " (blob {d})")?;
        }
        if let Some(u) = &self.inner.url {
            write!(f, " ({u})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("url", &self.inner.url)
            .field("status", &self.inner.status)
            .field("code", &self.inner.code)
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<hoist_oci::Error> for Error {
    fn from(e: hoist_oci::Error) -> Self {
        let kind = if e.is_io() {
            ErrorKind::LocalIo
        } else {
            ErrorKind::InvalidInput
        };
        let mut out = Error::new(kind, e.to_string());
        if let Some(d) = e.digest() {
            out.inner.digest = Some(d.clone());
        }
        out.with_source(e)
    }
}
