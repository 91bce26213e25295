//! The crate's one public error type: opaque, with a kind that says who is at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use hoist_oci::Digest;

/// Broadly, what went wrong and whose fault it is.
///
/// Three parties can be at fault: the image (its layers, manifest and config:
/// [`Error::is_bad_image`] covers those kinds), the calling code ([`ErrorKind::InvalidInput`])
/// and the local machine ([`ErrorKind::Io`]); [`ErrorKind::Stopped`] is nobody's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The layer holds an entry that is malformed or hostile (an escaping path, a bad whiteout,
    /// a hardlink to nowhere). The image is at fault; the error names the entry.
    InvalidLayer,
    /// The layer bytes (compressed or uncompressed) did not hash to the digest they claimed.
    /// The image (or whatever carried it) is at fault; the root filesystem must not be trusted.
    DigestMismatch,
    /// The layer stream was truncated or structurally broken (tar, gzip or zstd): the image
    /// (or whatever carried it) is at fault.
    Corrupt,
    /// A configured limit (total bytes, entry count) was exceeded: a possible decompression bomb.
    LimitExceeded,
    /// The image's manifest and config disagree (another number of layers than of
    /// `rootfs.diff_ids`): the image is at fault; the error names the manifest's digest when
    /// it is known.
    InvalidImage,
    /// The calling code asked for something invalid (options [`crate::UnpackerBuilder::build`]
    /// refuses, a path with no final name to remove): the caller is at fault, not the image.
    InvalidInput,
    /// A local filesystem operation failed.
    Io,
    /// The caller asked the unpack to stop ([`crate::UnpackerBuilder::stop_when`]). The root
    /// is partly applied and must not be trusted.
    Stopped,
}

/// The error type of `hoist-unpack`.
pub struct Error {
    kind: ErrorKind,
    message: String,
    entry: Option<PathBuf>,
    digest: Option<(Digest, DigestOf)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What the digest an [`Error`] carries is the digest of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DigestOf {
    /// A layer blob (or its diff_id).
    Layer,
    /// The image manifest.
    Manifest,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            entry: None,
            digest: None,
            source: None,
        }
    }

    /// A hostile or malformed layer entry.
    pub(crate) fn layer(entry: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidLayer, message).with_entry(entry)
    }

    /// A local I/O failure while doing `what`, keeping the kind of digest/corruption errors that
    /// travelled through `io::Error`.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        if source
            .get_ref()
            .is_some_and(|e| e.downcast_ref::<Error>().is_some())
        {
            // Our own error smuggled through a Read impl: unwrap it.
            if let Ok(inner) = source
                .into_inner()
                .expect("checked above")
                .downcast::<Error>()
            {
                return *inner;
            }
            return Error::new(ErrorKind::Io, what);
        }
        if let Some(oci) = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<hoist_oci::Error>())
        {
            let kind = if oci.is_digest_mismatch() || oci.is_size_mismatch() {
                ErrorKind::DigestMismatch
            } else if oci.is_corrupt() {
                ErrorKind::Corrupt
            } else {
                ErrorKind::Io
            };
            // The source's text follows in `Display` (and in the chain): not in the message too.
            let mut err = Error::new(kind, what);
            err.digest = oci.digest().map(|d| (d.clone(), DigestOf::Layer));
            return err.with_source(source);
        }
        let kind = match source.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
                ErrorKind::Corrupt
            }
            _ => ErrorKind::Io,
        };
        Error::new(kind, what).with_source(source)
    }

    /// A failure of the `tar` crate reading the layer's tar while doing `what`. What the crate
    /// itself complains of (the stream ending inside a header or inside data it skips, a bad
    /// header checksum, malformed PAX records) is the layer's fault: [`ErrorKind::Corrupt`].
    /// An error of the stream under it (this crate's own, or `hoist-oci`'s) keeps its kind, as
    /// [`Error::io`] keeps it. Never for a write: the crate only ever reads the layer.
    pub(crate) fn tar(what: impl Into<String>, source: std::io::Error) -> Self {
        let ours = source.get_ref().is_some_and(|e| {
            e.downcast_ref::<Error>().is_some() || e.downcast_ref::<hoist_oci::Error>().is_some()
        });
        if ours {
            return Error::io(what, source);
        }
        Error::new(ErrorKind::Corrupt, what).with_source(source)
    }

    /// An error from `hoist-oci` while doing `what`, keeping its meaning.
    pub(crate) fn oci(what: impl Into<String>, err: hoist_oci::Error) -> Self {
        Error::io(what, err.into_io())
    }

    /// A local filesystem failure (from a raw syscall) while doing `what`.
    pub(crate) fn sys(what: impl Into<String>, errno: rustix::io::Errno) -> Self {
        // A name the filesystem cannot hold is the layer's fault, not the machine's.
        let kind = if errno == rustix::io::Errno::NAMETOOLONG {
            ErrorKind::InvalidLayer
        } else {
            ErrorKind::Io
        };
        Error::new(kind, what).with_source(std::io::Error::from(errno))
    }

    /// Attach the layer entry this error is about.
    #[must_use]
    pub(crate) fn with_entry(mut self, entry: impl AsRef<Path>) -> Self {
        self.entry = Some(entry.as_ref().to_path_buf());
        self
    }

    /// Attach the entry only if none is attached yet.
    #[must_use]
    pub(crate) fn or_entry(self, entry: impl AsRef<Path>) -> Self {
        if self.entry.is_some() {
            self
        } else {
            self.with_entry(entry)
        }
    }

    /// Attach the digest of the layer this error is about.
    #[must_use]
    pub(crate) fn with_digest(mut self, digest: &Digest) -> Self {
        self.digest = Some((digest.clone(), DigestOf::Layer));
        self
    }

    /// Attach the digest of the image manifest this error is about.
    #[must_use]
    pub(crate) fn with_manifest(mut self, digest: &Digest) -> Self {
        self.digest = Some((digest.clone(), DigestOf::Manifest));
        self
    }

    #[must_use]
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Wrap into an `io::Error` (to cross a `Read` impl); [`Error::io`] unwraps it again.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The layer entry (path as written in the tar) this error is about, if any.
    pub fn entry(&self) -> Option<&Path> {
        self.entry.as_deref()
    }

    /// The digest this error is about, if any: a layer's digest (or diff_id), or for an error
    /// about the whole image ([`ErrorKind::InvalidImage`] from [`crate::Unpacker::unpack_image`]
    /// or [`crate::Unpacker::flatten_image`]) its manifest's. `Display` says which.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref().map(|(digest, _)| digest)
    }

    /// Whether a layer entry was malformed or hostile.
    pub fn is_invalid_layer(&self) -> bool {
        self.kind == ErrorKind::InvalidLayer
    }

    /// Whether the layer failed digest (or diff_id) verification.
    pub fn is_digest_mismatch(&self) -> bool {
        self.kind == ErrorKind::DigestMismatch
    }

    /// Whether the stream was truncated or corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.kind == ErrorKind::Corrupt
    }

    /// Whether the image's manifest and config disagree ([`ErrorKind::InvalidImage`]).
    pub fn is_invalid_image(&self) -> bool {
        self.kind == ErrorKind::InvalidImage
    }

    /// Whether a configured limit was exceeded.
    pub fn is_limit_exceeded(&self) -> bool {
        self.kind == ErrorKind::LimitExceeded
    }

    /// Whether the calling code is at fault ([`ErrorKind::InvalidInput`]): it asked for
    /// something invalid (options, arguments), whatever the image. Never true of an error
    /// the image causes; for those see [`Error::is_bad_image`].
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    /// Whether a local filesystem operation failed.
    pub fn is_io(&self) -> bool {
        self.kind == ErrorKind::Io
    }

    /// Whether the unpack stopped because the caller asked it to.
    pub fn is_stopped(&self) -> bool {
        self.kind == ErrorKind::Stopped
    }

    /// Whether the image is at fault (a layer's bytes or entries, or its manifest and config
    /// disagreeing), rather than the calling code ([`Error::is_invalid_input`]) or the local
    /// machine ([`Error::is_io`]): the kinds [`ErrorKind::InvalidLayer`],
    /// [`ErrorKind::DigestMismatch`], [`ErrorKind::Corrupt`], [`ErrorKind::LimitExceeded`]
    /// (the image exceeds the caller's caps) and [`ErrorKind::InvalidImage`]. Retrying with
    /// the same image fails again.
    pub fn is_bad_image(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::InvalidLayer
                | ErrorKind::DigestMismatch
                | ErrorKind::Corrupt
                | ErrorKind::LimitExceeded
                | ErrorKind::InvalidImage
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(entry) = &self.entry {
            write!(f, "layer entry {}: ", shown_entry(entry))?;
        }
        f.write_str(&self.message)?;
        match &self.digest {
            Some((digest, DigestOf::Layer)) => write!(f, " (layer {digest})")?,
            Some((digest, DigestOf::Manifest)) => write!(f, " (manifest {digest})")?,
            None => {}
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// Longest entry name shown whole; a layer may carry names of hundreds of KiB, and the reason
/// after the name must still fit on a line a terminal or a log keeps.
const MAX_SHOWN_ENTRY: usize = 160;

/// The entry name quoted, its middle elided (with the full length said) when it is long.
fn shown_entry(entry: &Path) -> String {
    let quoted = format!("{:?}", entry);
    if quoted.len() <= MAX_SHOWN_ENTRY {
        return quoted;
    }
    let cut = |at: usize| {
        let mut at = at;
        while !quoted.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = &quoted[..cut(MAX_SHOWN_ENTRY * 2 / 3)];
    let tail = &quoted[cut(quoted.len() - MAX_SHOWN_ENTRY / 3)..];
    format!("{head}…{tail} ({} bytes)", entry.as_os_str().len())
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(entry) = &self.entry {
            d.field("entry", entry);
        }
        match &self.digest {
            Some((digest, DigestOf::Layer)) => d.field("digest", &digest.to_string()),
            Some((digest, DigestOf::Manifest)) => d.field("manifest", &digest.to_string()),
            None => &mut d,
        };
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
    fn own_error_survives_io_roundtrip() {
        let err = Error::layer("a/b", "escapes the root");
        let back = Error::io("reading", err.into_io());
        assert!(back.is_invalid_layer());
        assert_eq!(back.entry(), Some(Path::new("a/b")));
        assert!(back.to_string().contains("a/b"));
    }

    #[test]
    fn long_entry_names_are_elided_so_the_reason_shows() {
        let name = "d/".repeat(50_000) + "é";
        let mut err = Error::new(ErrorKind::InvalidLayer, "name exceeds the limit");
        err.entry = Some(PathBuf::from(&name));
        let text = err.to_string();
        assert!(text.len() < 300, "{} bytes", text.len());
        assert!(text.ends_with("name exceeds the limit"), "{text}");
        assert!(
            text.contains("(100002 bytes)") && text.contains("é"),
            "{text}"
        );
        let mut short = Error::new(ErrorKind::InvalidLayer, "bad");
        short.entry = Some(PathBuf::from("a/../b"));
        assert_eq!(short.to_string(), "layer entry \"a/../b\": bad");
    }

    #[test]
    fn oci_digest_mismatch_maps_to_digest_mismatch() {
        let d = Digest::sha256_of(b"x");
        let oci =
            hoist_oci::Error::new(hoist_oci::ErrorKind::DigestMismatch, "bad").with_digest(&d);
        let err = Error::io("layer", oci.into_io());
        assert!(err.is_digest_mismatch());
        assert_eq!(err.digest(), Some(&d));
        // The cause is said once, not once in the message and again from the source.
        let text = err.to_string();
        assert_eq!(text.matches("bad").count(), 1, "{text}");
        assert!(text.starts_with("layer"), "{text}");
    }
}
