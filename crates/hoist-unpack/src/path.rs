//! Pure rules for layer entry names: normalisation (no `..`, no absolute paths) and whiteouts.
//!
//! Everything here works on the raw bytes of a tar entry name and never touches the filesystem,
//! so the rules are unit-tested directly.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The prefix that marks a whiteout entry.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name (after the prefix) that marks an opaque directory.
const OPAQUE_REST: &[u8] = b".wh..opq";
/// Deepest entry path accepted (components). Guards descriptor and stack use on hostile input.
pub(crate) const MAX_DEPTH: usize = 512;

/// What a tar entry name means for the layer rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryName {
    /// The root directory itself (`./`, `/`-free empty path).
    Root,
    /// An ordinary entry at this normalised relative path.
    Normal(PathBuf),
    /// `DIR/.wh.NAME`: remove `DIR/NAME` from the lower layers.
    Whiteout {
        /// The directory holding the whiteout (relative, normalised; empty for the root).
        dir: PathBuf,
        /// The name being whited out.
        name: OsString,
    },
    /// `DIR/.wh..wh..opq`: hide the lower contents of `DIR`.
    Opaque(PathBuf),
    /// Other `.wh..wh.*` names: aufs bookkeeping, ignored.
    AufsMeta,
}

/// Split and validate a raw entry name into its normal components.
///
/// Rejects absolute paths, `..` components, NUL bytes and overlong paths; drops `.` and empty
/// components. The error string says why, for the caller to attach the entry name.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<&OsStr>, &'static str> {
    if raw.is_empty() {
        return Err("empty entry name");
    }
    if raw.contains(&0) {
        return Err("entry name contains a NUL byte");
    }
    if raw.first() == Some(&b'/') {
        return Err("absolute path (must be relative to the root)");
    }
    let mut out = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("path has a `..` component (escapes the root)"),
            _ => out.push(OsStr::from_bytes(comp)),
        }
    }
    if out.len() > MAX_DEPTH {
        return Err("path is nested too deeply");
    }
    Ok(out)
}

/// Join normalised components into a relative path.
pub(crate) fn join(comps: &[&OsStr]) -> PathBuf {
    comps.iter().collect()
}

/// Classify a raw entry name.
pub(crate) fn classify(raw: &[u8]) -> Result<EntryName, &'static str> {
    let comps = normalize(raw)?;
    let Some((last, parents)) = comps.split_last() else {
        return Ok(EntryName::Root);
    };
    // aufs bookkeeping (`.wh..wh.plnk/`, `.wh..wh.orph/` and what is under them, from old
    // `docker save` output): ignored wherever it appears, as docker and umoci ignore it.
    let aufs = |c: &&OsStr| {
        c.as_bytes()
            .strip_prefix(WHITEOUT_PREFIX)
            .is_some_and(|r| r.starts_with(WHITEOUT_PREFIX) && r != OPAQUE_REST)
    };
    if comps.iter().any(aufs) {
        return Ok(EntryName::AufsMeta);
    }
    if parents
        .iter()
        .any(|c| c.as_bytes().starts_with(WHITEOUT_PREFIX))
    {
        return Err("whiteout name contains `/` (a whiteout used as a directory)");
    }
    let last_bytes = last.as_bytes();
    let Some(rest) = last_bytes.strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(EntryName::Normal(join(&comps)));
    };
    if raw.ends_with(b"/") {
        return Err("whiteout name contains `/` (a whiteout used as a directory)");
    }
    let dir = join(parents);
    match rest {
        b"" => Err("bare whiteout `.wh.` names nothing"),
        b"." | b".." => Err("whiteout of `.` or `..`"),
        OPAQUE_REST => Ok(EntryName::Opaque(dir)),
        r if r.starts_with(WHITEOUT_PREFIX) => Ok(EntryName::AufsMeta),
        r => Ok(EntryName::Whiteout {
            dir,
            name: OsStr::from_bytes(r).to_os_string(),
        }),
    }
}

/// The entry name as a path, for error messages (kept verbatim, even when hostile).
pub(crate) fn display(raw: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(p: &str) -> EntryName {
        EntryName::Normal(PathBuf::from(p))
    }

    #[test]
    fn normalizes_dots_and_slashes() {
        assert_eq!(classify(b"./a//b/./c"), Ok(normal("a/b/c")));
        assert_eq!(classify(b"a/b/"), Ok(normal("a/b")));
        assert_eq!(classify(b"./"), Ok(EntryName::Root));
        assert_eq!(classify(b"."), Ok(EntryName::Root));
    }

    #[test]
    fn rejects_escapes() {
        assert!(classify(b"../x").is_err());
        assert!(classify(b"a/../../x").is_err());
        assert!(classify(b"a/..").is_err());
        assert!(classify(b"/etc/passwd").is_err());
        assert!(classify(b"").is_err());
        assert!(classify(b"a\0b").is_err());
        let deep = "a/".repeat(MAX_DEPTH + 1);
        assert!(classify(deep.as_bytes()).is_err());
    }

    #[test]
    fn whiteouts() {
        assert_eq!(
            classify(b"etc/.wh.passwd"),
            Ok(EntryName::Whiteout {
                dir: PathBuf::from("etc"),
                name: OsString::from("passwd")
            })
        );
        assert_eq!(
            classify(b"./.wh.x"),
            Ok(EntryName::Whiteout {
                dir: PathBuf::new(),
                name: OsString::from("x")
            })
        );
        assert_eq!(
            classify(b"a/b/.wh..wh..opq"),
            Ok(EntryName::Opaque(PathBuf::from("a/b")))
        );
        assert_eq!(
            classify(b".wh..wh..opq"),
            Ok(EntryName::Opaque(PathBuf::new()))
        );
        assert_eq!(classify(b"a/.wh..wh.plnk"), Ok(EntryName::AufsMeta));
        // As directory entries and with files under them, as old `docker save` wrote them.
        assert_eq!(classify(b".wh..wh.plnk/"), Ok(EntryName::AufsMeta));
        assert_eq!(classify(b".wh..wh.orph/"), Ok(EntryName::AufsMeta));
        assert_eq!(classify(b".wh..wh.plnk/12.345"), Ok(EntryName::AufsMeta));
        // The opaque marker is not bookkeeping.
        assert_eq!(
            classify(b"d/.wh..wh..opq"),
            Ok(EntryName::Opaque(PathBuf::from("d")))
        );
        assert!(classify(b".wh..wh..opq/x").is_err());
    }

    #[test]
    fn bad_whiteouts() {
        assert!(classify(b"a/.wh.").is_err());
        assert!(classify(b"a/.wh..").is_err());
        assert!(classify(b"a/.wh...").is_err());
        assert!(classify(b"a/.wh.x/y").is_err());
        assert!(classify(b"a/.wh.x/").is_err());
        assert!(classify(b".wh.").is_err());
    }

    #[test]
    fn whiteout_prefix_inside_name_is_normal() {
        assert_eq!(classify(b"a/x.wh.y"), Ok(normal("a/x.wh.y")));
    }
}
