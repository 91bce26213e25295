//! Image references in the docker grammar: `[host[:port]/]path[:tag][@digest]`.
//!
//! A [`Reference`] is always normalized: the registry is explicit (`docker.io` when none was
//! written), single-component names on Docker Hub get the `library/` prefix, and `index.docker.io`
//! is folded into `docker.io`. Its [`Display`](std::fmt::Display) is the canonical, fully
//! qualified form, which parses back to the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Digest, Error, Result};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that serves the registry API for [`DEFAULT_REGISTRY`].
pub const DEFAULT_REGISTRY_API_HOST: &str = "registry-1.docker.io";
/// The longest name (`registry/repository`) accepted.
pub const NAME_MAX_LEN: usize = 255;
/// The longest tag accepted.
pub const TAG_MAX_LEN: usize = 128;

/// A parsed, normalized image reference such as `docker.io/library/alpine:3.19`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalize a reference.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming what is wrong (uppercase repository, bad tag,
    /// invalid digest, name too long, empty component…).
    pub fn parse(s: &str) -> Result<Self> {
        let shown: String = s.chars().take(300).collect();
        let fail = |why: &str| Error::invalid(format!("invalid image reference {shown:?}: {why}"));
        if s.is_empty() {
            return Err(fail("empty"));
        }
        // Docker refuses a bare 64-hex name: it would be ambiguous with an image ID.
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail(
                "a 64-character hex string is an image ID, not a repository name",
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(Digest::parse(d).map_err(|e| fail(&e.to_string()))?),
            ),
            None => (s, None),
        };
        // A tag is a ':' after the last '/' (a ':' before it is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|why| fail(&why))?;
        }
        if name.is_empty() {
            return Err(fail("missing repository name"));
        }
        if name.len() > NAME_MAX_LEN {
            return Err(fail(&format!(
                "name is {} characters, the limit is {NAME_MAX_LEN}",
                name.len()
            )));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            check_registry(registry).map_err(|why| fail(&why))?;
        }
        check_path(path).map_err(|why| fail(&why))?;
        let registry = match registry {
            None | Some("index.docker.io") => DEFAULT_REGISTRY.to_owned(),
            Some(r) => r.to_owned(),
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        if registry.len() + 1 + repository.len() > NAME_MAX_LEN {
            return Err(fail(&format!(
                "normalized name exceeds {NAME_MAX_LEN} characters"
            )));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host (and port): `docker.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send registry API requests to: `registry-1.docker.io` for Docker Hub, the
    /// registry itself otherwise.
    pub fn registry_api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path within the registry: `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask a registry for: the digest when there is one, else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same reference with `tag` (replacing any tag; a digest is kept).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `tag` is not a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        check_tag(tag).map_err(|why| Error::invalid(format!("invalid tag {tag:?}: {why}")))?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same reference pinned to `digest` (any tag is kept for display).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference without tag and digest.
    #[must_use]
    pub fn without_tag_or_digest(&self) -> Self {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// `registry/repository` with no tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker shows and uses in `RepoTags`: `alpine:3.19`,
    /// `user/app:1`, `127.0.0.1:5000/app:latest` (always a form that parses back to the same
    /// name). The tag defaults to `latest`; the digest is
    /// not included.
    pub fn familiar_tagged(&self) -> String {
        format!(
            "{}:{}",
            self.familiar_name(),
            self.tag.as_deref().unwrap_or("latest")
        )
    }

    /// The short name Docker shows: `alpine`, `user/app`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            let short = self
                .repository
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.repository);
            // `docker.io/a.b/c` cannot be shortened: `a.b` would read as a registry.
            if split_registry(short).0.is_some() {
                return self.name();
            }
            short.to_owned()
        } else {
            self.name()
        }
    }
}

/// Split off the registry: the first component is a registry when it is `localhost`, contains a
/// `.` or `:`, or has uppercase letters (which a path component never may).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.first() {
        None => return Err("empty tag".into()),
        Some(&b) if !ok_char(b) => {
            return Err("a tag must start with a letter, digit or '_'".into());
        }
        _ => {}
    }
    if bytes.len() > TAG_MAX_LEN {
        return Err(format!("tag longer than {TAG_MAX_LEN} characters"));
    }
    if !bytes.iter().all(|&b| ok_char(b) || b == b'.' || b == b'-') {
        return Err("a tag may only contain letters, digits, '_', '.' and '-'".into());
    }
    Ok(())
}

fn check_registry(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        // Bracketed IPv6 literal, optionally with a port.
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry {registry:?}: unclosed '['"))?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("registry {registry:?}: invalid IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            p => (
                None,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("registry {registry:?}: junk after ']'"))?,
                ),
            ),
        }
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("registry {registry:?}: invalid port"));
    }
    if let Some(host) = host {
        for label in host.split('.') {
            let b = label.as_bytes();
            let valid = !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-');
            if !valid {
                return Err(format!("registry {registry:?}: invalid host name"));
            }
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty path component".into());
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err("repository name must be lowercase".into());
        }
        let b = component.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(format!(
                "path component {component:?} must start and end with a lowercase letter or digit"
            ));
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(format!(
                    "path component {component:?} has an invalid separator {sep:?}"
                ));
            }
        }
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalizes_docker_hub() {
        let a = r("alpine");
        assert_eq!(a.registry(), "docker.io");
        assert_eq!(a.repository(), "library/alpine");
        assert_eq!(a.tag(), None);
        assert_eq!(a.to_string(), "docker.io/library/alpine");
        assert_eq!(a.registry_api_host(), "registry-1.docker.io");
        assert_eq!(a.familiar_tagged(), "alpine:latest");
        assert_eq!(r("user/app:1").repository(), "user/app");
        assert_eq!(
            r("index.docker.io/alpine:3").to_string(),
            "docker.io/library/alpine:3"
        );
        assert_eq!(r("docker.io/library/alpine"), a);
    }

    #[test]
    fn recognizes_registries() {
        let l = r("localhost/app:v1");
        assert_eq!(
            (l.registry(), l.repository(), l.tag()),
            ("localhost", "app", Some("v1"))
        );
        let p = r("127.0.0.1:5000/team/app:1.0");
        assert_eq!(p.registry(), "127.0.0.1:5000");
        assert_eq!(p.registry_api_host(), "127.0.0.1:5000");
        assert_eq!(p.repository(), "team/app");
        assert_eq!(p.familiar_tagged(), "127.0.0.1:5000/team/app:1.0");
        let v6 = r("[::1]:5000/app");
        assert_eq!(v6.registry(), "[::1]:5000");
        // A single component with ':' is name:tag, not a host.
        let t = r("localhost:5000");
        assert_eq!(
            (t.repository(), t.tag()),
            ("library/localhost", Some("5000"))
        );
        // Port without a tag: the ':' is before the last '/'.
        assert_eq!(r("reg.example:443/x").tag(), None);
    }

    #[test]
    fn digests_and_tags() {
        let x = r(&format!("ghcr.io/o/app:v2@{D}"));
        assert_eq!(x.tag(), Some("v2"));
        assert_eq!(x.digest().map(ToString::to_string).as_deref(), Some(D));
        assert_eq!(x.tag_or_digest(), D);
        assert_eq!(r("a").tag_or_digest(), "latest");
        let y = r("a").with_tag("9").expect("tag");
        assert_eq!(y.to_string(), "docker.io/library/a:9");
        assert!(r("a").with_tag("-bad").is_err());
        let z = r("a:1").with_digest(Digest::parse(D).expect("d"));
        assert_eq!(z.to_string(), format!("docker.io/library/a:1@{D}"));
        assert_eq!(z.without_tag_or_digest().to_string(), "docker.io/library/a");
    }

    #[test]
    fn rejects_bad_input() {
        let long_tag = "t".repeat(129);
        let long_name = format!("x/{}", "a".repeat(260));
        for bad in [
            "",
            "Alpine",
            "docker.io/Library/alpine",
            "alpine:",
            ":tag",
            "alpine:-x",
            "alpine:a/b",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a-",
            "_a",
            "a___b",
            "alpine@sha256:abc",
            "alpine@md5:d41d8cd98f00b204e9800998ecf8427e",
            "bad_host.example/x",
            "-h.example/x",
            "h.example:port/x",
            "[::1/x",
            &format!("alpine:{long_tag}"),
            &"ab".repeat(32),
            &long_name,
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert!(err.is_invalid_input(), "{bad}: {err}");
        }
        // Separators that are allowed.
        for good in [
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "a-b.c_d",
            "lowercase:Uppercase",
            "sub-dom1.foo.com/bar/baz/quux",
            "xn--n3h.com/myimage:xn--n3h.com",
            &format!("{}/x", "ab".repeat(32)),
        ] {
            r(good);
        }
        // The tag limit is inclusive.
        r(&format!("alpine:{}", "t".repeat(128)));
    }

    #[test]
    fn serde_round_trip() {
        let x: Reference = serde_json::from_str("\"alpine:3\"").expect("de");
        assert_eq!(
            serde_json::to_string(&x).expect("ser"),
            "\"docker.io/library/alpine:3\""
        );
        assert!(serde_json::from_str::<Reference>("\"UPPER\"").is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,8}(([._]|__|-{1,3})[a-z0-9]{1,8}){0,2}"
        }

        fn registry() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some("localhost".to_owned())),
                Just(Some("docker.io".to_owned())),
                "[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{1,5})?".prop_map(Some),
                "127\\.0\\.0\\.[0-9]{1,3}:[0-9]{1,5}".prop_map(Some),
                "\\[::[0-9]\\]:[0-9]{1,5}".prop_map(Some),
            ]
        }

        proptest! {
            #[test]
            fn display_parse_round_trip(
                reg in registry(),
                path in proptest::collection::vec(component(), 1..4),
                tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
                digest in proptest::option::of("[0-9a-f]{64}"),
            ) {
                // Without a registry, a first component with a dot reads as a host name (as in
                // docker's grammar), which is a different reference than the one generated.
                prop_assume!(reg.is_some() || path.len() == 1 || !path[0].contains('.'));
                let mut s = String::new();
                if let Some(reg) = &reg {
                    s.push_str(reg);
                    s.push('/');
                }
                s.push_str(&path.join("/"));
                if let Some(tag) = &tag {
                    s.push(':');
                    s.push_str(tag);
                }
                if let Some(hex) = &digest {
                    s.push_str("@sha256:");
                    s.push_str(hex);
                }
                let parsed = Reference::parse(&s).expect("generated references are valid");
                prop_assert_eq!(parsed.tag(), tag.as_deref());
                let again = Reference::parse(&parsed.to_string()).expect("canonical form parses");
                prop_assert_eq!(&again, &parsed);
                prop_assert_eq!(again.to_string(), parsed.to_string());
                // The familiar form names the same repository.
                let familiar = Reference::parse(&parsed.familiar_tagged()).expect("familiar parses");
                prop_assert_eq!(familiar.name(), parsed.name());
            }

            #[test]
            fn never_panics(s in "\\PC{0,80}") {
                let _ = Reference::parse(&s);
            }
        }
    }
}
