//! The crate's one public error type.
//!
//! [`Error`] is opaque: callers ask it questions (`is_digest_mismatch()`, `kind()`) rather than
//! matching on the types of the libraries underneath. Context travels as fields (the path, the
//! digest) so a message can say exactly which file or blob was at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Digest;

/// Who or what is at fault, in broad strokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Input was malformed: bad JSON, an invalid digest or reference, an unknown media type.
    InvalidInput,
    /// Content did not hash to the digest it claimed.
    DigestMismatch,
    /// Content was not the size its descriptor claimed.
    SizeMismatch,
    /// A stream ended early or was structurally corrupt (truncated tar, broken gzip/zstd).
    Corrupt,
    /// A blob, tag, or image that was asked for is not there.
    NotFound,
    /// An index held no manifest for the requested platform.
    NoMatchingPlatform,
    /// The input is valid but uses something this crate does not handle.
    Unsupported,
    /// A local filesystem or stream operation failed.
    Io,
}

/// The error type of `hoist-oci`.
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    digest: Option<Digest>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            path: None,
            digest: None,
            source: None,
        }
    }

    /// Malformed input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A local I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        // A digest or size failure surfaced through an io::Error (e.g. from a verifying reader)
        // keeps its kind instead of being flattened into Io.
        if let Some(inner) = source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            let mut err = Error::new(inner.kind, format!("{}: {}", what.into(), inner.message));
            err.path = inner.path.clone();
            err.digest = inner.digest.clone();
            return err;
        }
        let kind = if source.kind() == std::io::ErrorKind::UnexpectedEof {
            ErrorKind::Corrupt
        } else if source.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self::new(kind, what).with_source(source)
    }

    /// Attach the path this error is about.
    #[must_use]
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Attach the digest this error is about.
    #[must_use]
    pub fn with_digest(mut self, digest: &Digest) -> Self {
        self.digest = Some(digest.clone());
        self
    }

    /// Attach an underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The path the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The digest the error is about, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether input was malformed.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    /// Whether content failed digest verification.
    pub fn is_digest_mismatch(&self) -> bool {
        self.kind == ErrorKind::DigestMismatch
    }

    /// Whether content had the wrong size.
    pub fn is_size_mismatch(&self) -> bool {
        self.kind == ErrorKind::SizeMismatch
    }

    /// Whether a stream was truncated or corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.kind == ErrorKind::Corrupt
    }

    /// Whether something asked for was missing.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Whether no manifest matched the requested platform.
    pub fn is_no_matching_platform(&self) -> bool {
        self.kind == ErrorKind::NoMatchingPlatform
    }

    /// Whether a local I/O operation failed.
    pub fn is_io(&self) -> bool {
        self.kind == ErrorKind::Io
    }

    /// Wrap this error in an `io::Error` (for `Read`/`Write` impls); [`Error::io`] unwraps it again.
    pub fn into_io(self) -> std::io::Error {
        let kind = match self.kind {
            ErrorKind::Corrupt => std::io::ErrorKind::UnexpectedEof,
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(digest) = &self.digest {
            write!(f, " (blob {digest})")?;
        }
        if let Some(path) = &self.path {
            write!(f, " (at {})", path.display())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(path) = &self.path {
            d.field("path", path);
        }
        if let Some(digest) = &self.digest {
            d.field("digest", &digest.to_string());
        }
        if let Some(source) = &self.source {
            d.field("source", source);
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
    fn io_roundtrip_keeps_kind_and_digest() {
        let digest: Digest =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .expect("valid digest");
        let original =
            Error::new(ErrorKind::DigestMismatch, "content hashed wrong").with_digest(&digest);
        let back = Error::io("reading blob", original.into_io());
        assert!(back.is_digest_mismatch());
        assert_eq!(back.digest(), Some(&digest));
        assert!(back.to_string().contains("reading blob"));
    }

    #[test]
    fn eof_becomes_corrupt() {
        let err = Error::io(
            "reading tar",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short"),
        );
        assert!(err.is_corrupt());
    }
}
