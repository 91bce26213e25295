//! A repository on a registry, validated: the `host[:port]` and the name every request is for.

use crate::{Error, Result};

/// A repository on a registry: `registry` is `host[:port]`, `name` the path (`library/alpine`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    /// `host[:port]`.
    pub registry: String,
    /// Repository path, lowercase components separated by `/`.
    pub name: String,
}

impl Repo {
    /// Validate and build a repository handle.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an empty registry or a name outside the
    /// distribution grammar (lowercase alphanumerics with `.`, `_`, `-` separators).
    pub fn new(registry: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let registry = registry.into();
        let name = name.into();
        let reg_ok = !registry.is_empty()
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !reg_ok {
            return Err(Error::invalid(format!(
                "invalid registry host {registry:?}"
            )));
        }
        let comp_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if name.len() > 255 || !name.split('/').all(comp_ok) {
            return Err(Error::invalid(format!("invalid repository name {name:?}")));
        }
        Ok(Repo { registry, name })
    }
}

impl Repo {
    /// The repository a parsed reference names (Docker Hub references map to its API host).
    ///
    /// # Errors
    /// As [`Repo::new`].
    pub fn from_reference(reference: &hoist_oci::Reference) -> Result<Self> {
        Repo::new(reference.registry_api_host(), reference.repository())
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_are_validated() {
        assert!(Repo::new("127.0.0.1:5000", "library/alpine").is_ok());
        assert!(Repo::new("reg", "a.b_c-d/e2").is_ok());
        for bad in ["", "A", "a//b", "-a", "a-", "../x", "a/../b", "a b"] {
            assert!(Repo::new("reg", bad).is_err(), "{bad}");
        }
        assert!(Repo::new("", "a").is_err());
        assert!(Repo::new("reg/x", "a").is_err());
    }
}
