//! A repository on a registry, validated: the `host[:port]` and the name every request is for.

use std::net::Ipv6Addr;

use crate::{Error, Result};

/// A repository on a registry: [`Repo::registry`] is `host[:port]`, [`Repo::name`] the path
/// (`library/alpine`). Both are validated when it is made and cannot change afterwards, since
/// every request URL is built from them:
///
/// ```compile_fail
/// let mut repo = hoist_registry::Repo::new("127.0.0.1:5000", "demo/app").unwrap();
/// repo.name = "demo/app/../../../v2/_catalog?x=".into(); // private: no way around `new`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    registry: String,
    name: String,
}

impl Repo {
    /// Validate and build a repository handle.
    ///
    /// `registry` is a host name, an IPv4 address or a bracketed IPv6 address (`[::1]`), with
    /// an optional port from 1 to 65535. `name` follows the distribution spec's grammar:
    /// components of lowercase letters and digits joined by `.`, `_`, `__` or runs of `-`,
    /// separated by `/`. The name is checked by `hoist-oci`'s reference parser (as the
    /// repository of `localhost/NAME`), so it is at most 245 characters.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a registry or name outside those grammars.
    pub fn new(registry: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let registry = registry.into();
        let name = name.into();
        Repo::check_registry(&registry)?;
        check_name(&name)?;
        Ok(Repo { registry, name })
    }

    /// Check a registry `host[:port]` as [`Repo::new`] and
    /// [`ClientBuilder::insecure_host`](crate::ClientBuilder::insecure_host) check it: a host
    /// name, an IPv4 address or a bracketed IPv6 address, with an optional port from 1 to
    /// 65535. For a caller that reads registry hosts from its user and wants to refuse a bad
    /// one where it reads it, rather than when the client is built.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a host outside that grammar; its message says
    /// why.
    ///
    /// ```
    /// use hoist_registry::Repo;
    /// assert!(Repo::check_registry("mirror.example:5000").is_ok());
    /// assert!(Repo::check_registry("my_mirror:5000").is_err());
    /// assert!(Repo::check_registry("mirror:0").is_err());
    /// ```
    pub fn check_registry(registry: &str) -> Result<()> {
        check_host(registry)
            .map_err(|why| Error::invalid(format!("invalid registry host {registry:?}: {why}")))
    }

    /// The repository a parsed reference names (Docker Hub references map to its API host).
    ///
    /// # Errors
    /// As [`Repo::new`].
    pub fn from_reference(reference: &hoist_oci::Reference) -> Result<Self> {
        Repo::new(reference.registry_api_host(), reference.repository())
    }

    /// The registry, `host[:port]` as given (`127.0.0.1:5000`, `[::1]:5000`, `quay.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/alpine`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// The repository name grammar is hoist-oci's: a reference on `localhost` (which always reads
/// as a registry) must parse with exactly this repository and no tag or digest, so a `:` or
/// `@` in the name cannot pass as a tag or digest.
fn check_name(name: &str) -> Result<()> {
    let parsed = hoist_oci::Reference::parse(&format!("localhost/{name}"));
    match parsed {
        Ok(r) if r.repository() == name && r.tag().is_none() && r.digest().is_none() => Ok(()),
        Ok(_) => Err(Error::invalid(format!("invalid repository name {name:?}"))),
        Err(e) => Err(Error::invalid(format!(
            "invalid repository name {name:?}: {e}"
        ))),
    }
}

/// `host[:port]`: a DNS name or IPv4 address (labels of letters, digits and inner `-`), or an
/// IPv6 address in brackets; the port, when written, 1 to 65535.
pub(crate) fn check_host(registry: &str) -> std::result::Result<(), &'static str> {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let (addr, after) = rest.split_once(']').ok_or("unclosed '['")?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| "invalid IPv6 address")?;
            match after {
                "" => return Ok(()),
                after => (None, Some(after.strip_prefix(':').ok_or("junk after ']'")?)),
            }
        }
        None => match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        },
    };
    if let Some(port) = port {
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        match port.parse::<u16>() {
            Ok(p) if digits && p > 0 => {}
            _ => return Err("the port must be a number from 1 to 65535"),
        }
    }
    if let Some(host) = host {
        if host.is_empty() {
            return Err("empty host");
        }
        if host.len() > 253 {
            return Err("host name longer than 253 characters");
        }
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        if !host.split('.').all(label_ok) {
            return Err("invalid host name (letters, digits, '-' and '.' only; IPv6 in [ ])");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_are_validated() {
        assert!(Repo::new("127.0.0.1:5000", "library/alpine").is_ok());
        assert!(Repo::new("reg", "a.b_c-d/e2").is_ok());
        assert!(Repo::new("reg", "a__b/c---d").is_ok());
        for bad in [
            "", "A", "a//b", "-a", "a-", "../x", "a/../b", "a b", "a..b", "a.-b", "a___b", "a:b",
            "a@b", "a/", "/a",
        ] {
            assert!(Repo::new("reg", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_traversal_name_is_refused() {
        // The reviewer set the (then public) field to this and `list_tags` read the catalog.
        let e = Repo::new("reg", "demo/app/../../../v2/_catalog?x=").expect_err("traversal");
        assert!(e.is_invalid_input(), "{e}");
    }

    #[test]
    fn registry_hosts_are_validated() {
        for good in [
            "reg",
            "localhost",
            "quay.io",
            "registry-1.docker.io",
            "127.0.0.1:5000",
            "reg:1",
            "reg:65535",
            "[::1]",
            "[::1]:5000",
            "[fd00::1:2]:443",
        ] {
            assert!(Repo::new(good, "a").is_ok(), "{good}");
        }
        for bad in [
            "",
            "::::",
            "[",
            "[]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[zz::1]:5000",
            "host:port",
            "host:99999",
            "host:0",
            "host:",
            ":5000",
            "host:+80",
            "reg/x",
            "http://x",
            "a..b",
            "-a.b",
            "a_b",
            "a b",
            "host:5000:1",
        ] {
            assert!(Repo::new(bad, "a").is_err(), "{bad}");
        }
    }
}
