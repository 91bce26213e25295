//! The crate's one public error type, saying who is at fault when talking to a daemon fails.
//!
//! [`Error`] is opaque: callers ask it questions (`is_daemon_unavailable()`, `is_not_found()`,
//! [`Error::kind`]) instead of matching on bollard's or hyper's error types, which never leak
//! out of this crate. Context travels as fields: the daemon host (with any credentials
//! stripped) and the image the operation was about.

use std::fmt;

/// What went wrong, broadly, and so who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing answers at the daemon address: the socket does not exist, the connection was
    /// refused, or the daemon closed the connection before answering.
    DaemonUnavailable,
    /// The daemon's socket exists but this process may not open it.
    PermissionDenied,
    /// The daemon does not hold the image that was asked for.
    NotFound,
    /// The daemon's API version is too old for a requested feature.
    ApiTooOld,
    /// The daemon refused the request as invalid (an HTTP 4xx other than 404).
    DaemonRefused,
    /// The daemon failed or misbehaved: a 5xx, a broken stream, an archive that did not verify.
    DaemonFailed,
    /// The daemon did not answer within the configured time.
    Timeout,
    /// Local input was bad: an unparsable host address, a bad tag, a corrupt local image, an
    /// archive the daemon rejected on load.
    InvalidInput,
    /// A local filesystem or stream operation failed.
    Io,
    /// The caller stopped the operation (an export's [`crate::ExportStop`]).
    Stopped,
}

/// The error type of `hoist-docker`.
pub struct Error {
    kind: ErrorKind,
    message: String,
    host: Option<String>,
    image: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            host: None,
            image: None,
            source: None,
        }
    }

    /// Attach the daemon address this error is about; credentials in it are stripped.
    #[must_use]
    pub(crate) fn with_host(mut self, host: &str) -> Self {
        self.host = Some(crate::connect::strip_credentials(host));
        self
    }

    /// Attach the image name or ID this error is about.
    #[must_use]
    pub(crate) fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Attach an underlying cause.
    #[must_use]
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The daemon address the error is about (credentials stripped), if known.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The image the error is about, if any.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// Whether the daemon is not running or not reachable at its address.
    pub fn is_daemon_unavailable(&self) -> bool {
        self.kind == ErrorKind::DaemonUnavailable
    }

    /// Whether the daemon socket could not be opened for lack of permission.
    pub fn is_permission_denied(&self) -> bool {
        self.kind == ErrorKind::PermissionDenied
    }

    /// Whether the requested image does not exist in the daemon.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Whether the daemon's API is too old for what was asked.
    pub fn is_api_too_old(&self) -> bool {
        self.kind == ErrorKind::ApiTooOld
    }

    /// Whether the daemon refused the request (its answer was a 4xx other than 404).
    pub fn is_daemon_refused(&self) -> bool {
        self.kind == ErrorKind::DaemonRefused
    }

    /// Whether the daemon failed or sent something broken.
    pub fn is_daemon_failed(&self) -> bool {
        self.kind == ErrorKind::DaemonFailed
    }

    /// Whether the daemon did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether local input (an address, a tag, a local image) was bad.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    /// Whether a local I/O operation failed.
    pub fn is_io(&self) -> bool {
        self.kind == ErrorKind::Io
    }

    /// Whether the caller stopped the operation.
    pub fn is_stopped(&self) -> bool {
        self.kind == ErrorKind::Stopped
    }

    /// An error from hoist-oci met while handling content that came from (`from_daemon`) or
    /// goes to the daemon: bad content is the daemon's fault in the first case and the local
    /// input's in the second; local I/O stays I/O.
    pub(crate) fn from_oci(what: &str, err: hoist_oci::Error, from_daemon: bool) -> Self {
        use hoist_oci::ErrorKind as K;
        let kind = match err.kind() {
            K::Io => ErrorKind::Io,
            K::NotFound if !from_daemon => ErrorKind::InvalidInput,
            _ if from_daemon => ErrorKind::DaemonFailed,
            _ => ErrorKind::InvalidInput,
        };
        Error::new(kind, format!("{what}: {err}")).with_source(err)
    }

    /// A local I/O error while doing `what`; an `io::Error` that wraps a hoist-oci error keeps
    /// that error's meaning.
    pub(crate) fn io(what: &str, err: std::io::Error, from_daemon: bool) -> Self {
        if err
            .get_ref()
            .is_some_and(|inner| inner.is::<hoist_oci::Error>())
        {
            return Self::from_oci(what, hoist_oci::Error::io(what, err), from_daemon);
        }
        Error::new(ErrorKind::Io, what.to_string()).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // The daemon's own message usually names the image already.
        if let Some(image) = &self.image
            && !self.message.contains(image.as_str())
        {
            write!(f, " (image {image})")?;
        }
        if let Some(host) = &self.host {
            write!(f, " (daemon {host})")?;
        }
        if let Some(source) = &self.source {
            let text = source.to_string();
            if !self.message.contains(&text) {
                write!(f, ": {text}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(host) = &self.host {
            d.field("host", host);
        }
        if let Some(image) = &self.image {
            d.field("image", image);
        }
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_errors_blame_the_right_side() {
        let corrupt = || hoist_oci::Error::new(hoist_oci::ErrorKind::Corrupt, "short tar");
        assert!(Error::from_oci("spooling", corrupt(), true).is_daemon_failed());
        assert!(Error::from_oci("writing", corrupt(), false).is_invalid_input());
        let missing = hoist_oci::Error::new(hoist_oci::ErrorKind::NotFound, "no blob");
        assert!(Error::from_oci("writing", missing, false).is_invalid_input());
        let disk = hoist_oci::Error::io("writing blob", std::io::Error::other("disk full"));
        assert!(Error::from_oci("spooling", disk, true).is_io());
    }

    #[test]
    fn display_names_image_and_host_without_credentials() {
        let err = Error::new(ErrorKind::NotFound, "not found in the daemon")
            .with_image("app:1")
            .with_host("tcp://user:pw@10.0.0.1:2375");
        let text = err.to_string();
        assert!(
            text.contains("app:1") && text.contains("10.0.0.1:2375"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
        assert_eq!(err.image(), Some("app:1"));
    }

    #[test]
    fn io_keeps_wrapped_oci_meaning() {
        let inner = hoist_oci::Error::new(hoist_oci::ErrorKind::DigestMismatch, "bad layer");
        assert!(Error::io("reading", inner.into_io(), true).is_daemon_failed());
        let plain = Error::io("reading", std::io::Error::other("eio"), true);
        assert!(plain.is_io());
    }
}
