//! Platform parsing and matching, and picking a manifest for a platform out of an index.
//!
//! Matching follows the conventions registries and runtimes use: architectures are normalized
//! (`x86_64` is `amd64`, `aarch64` is `arm64`), a missing variant means the architecture's
//! default (`v8` for arm64, `v7` for arm, `v1` for amd64), and a wanted platform without a
//! variant accepts any variant.

use std::fmt;
use std::str::FromStr;

use crate::{Descriptor, Error, ErrorKind, ImageIndex, Platform, Result};

impl Platform {
    /// A platform from `os` and `architecture` (normalized), without variant.
    pub fn new(os: &str, architecture: &str) -> Self {
        let (architecture, variant) = normalize_arch(architecture, None);
        Platform {
            architecture,
            os: os.to_ascii_lowercase(),
            variant,
            ..Platform::default()
        }
    }

    /// Parse `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm64/v8`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when there are not two or three non-empty parts.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::invalid(format!(
                "invalid platform {:?}: expected os/arch[/variant], e.g. linux/arm64/v8",
                s.chars().take(80).collect::<String>()
            ))
        };
        if !(2..=3).contains(&parts.len())
            || parts.iter().any(|p| {
                p.is_empty()
                    || !p
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            })
        {
            return Err(bad());
        }
        let (architecture, variant) = normalize_arch(parts[1], parts.get(2).copied());
        Ok(Platform {
            architecture,
            os: parts[0].to_ascii_lowercase(),
            variant,
            ..Platform::default()
        })
    }

    /// The platform of the machine hoist runs on. The OS is always `linux`: container images
    /// run on Linux even where the host runs a Linux VM for them.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let mut p = Platform::new("linux", arch);
        if p.variant.is_none() {
            p.variant = default_variant(&p.architecture).map(str::to_owned);
        }
        p
    }

    /// Whether this platform (an index entry's) satisfies `wanted`: same OS and architecture,
    /// and the same variant (after defaults) unless `wanted` names none.
    pub fn matches(&self, wanted: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        let (want_arch, want_variant) =
            normalize_arch(&wanted.architecture, wanted.variant.as_deref());
        if !self.os.eq_ignore_ascii_case(&wanted.os) || arch != want_arch {
            return false;
        }
        match want_variant {
            None => true,
            Some(want) => {
                let have = variant.or_else(|| default_variant(&arch).map(str::to_owned));
                have == Some(want)
            }
        }
    }

    /// How well this platform fits `wanted`: `None` when it does not match, higher is better
    /// (an exact variant beats "any variant").
    fn score(&self, wanted: &Platform) -> Option<u8> {
        if !self.matches(wanted) {
            return None;
        }
        let (arch, variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        let (_, want_variant) = normalize_arch(&wanted.architecture, wanted.variant.as_deref());
        let default = default_variant(&arch).map(str::to_owned);
        let have = variant.or_else(|| default.clone());
        let want = want_variant.or(default);
        Some(if have == want { 2 } else { 1 })
    }
}

/// Normalize architecture aliases and variant spellings (`8` -> `v8`, `aarch64` -> `arm64`).
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.filter(|v| !v.is_empty()).map(|v| {
        let v = v.to_ascii_lowercase();
        if v.bytes().all(|b| b.is_ascii_digit()) {
            format!("v{v}")
        } else {
            v
        }
    });
    match arch.as_str() {
        "x86_64" | "x86-64" => ("amd64".into(), variant),
        "aarch64" => ("arm64".into(), variant),
        "armhf" => ("arm".into(), variant.or(Some("v7".into()))),
        "armel" => ("arm".into(), variant.or(Some("v6".into()))),
        "i386" | "i686" => ("386".into(), variant),
        _ => (arch, variant),
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        "amd64" => Some("v1"),
        _ => None,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Platform::parse(s)
    }
}

impl ImageIndex {
    /// The manifest for `wanted`: the best-matching entry (exact variant first, then the first
    /// entry that matches). When no entry declares a matching platform, the one image manifest
    /// that declares none is taken, as containerd does (some tools write single-entry indexes
    /// without a platform); the caller then has only its config to check the platform against.
    ///
    /// # Errors
    /// [`ErrorKind::NoMatchingPlatform`], listing the platforms the index has.
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor> {
        let mut best: Option<(u8, &Descriptor)> = None;
        for d in &self.manifests {
            if let Some(score) = d.platform.as_ref().and_then(|p| p.score(wanted))
                && best.is_none_or(|(b, _)| score > b)
            {
                best = Some((score, d));
            }
        }
        let mut undeclared = self
            .manifests
            .iter()
            .filter(|d| d.platform.is_none() && d.media_type.is_manifest());
        let fallback = match (undeclared.next(), undeclared.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        };
        best.map(|(_, d)| d).or(fallback).ok_or_else(|| {
            let available: Vec<String> = self
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                .collect();
            let listed = if available.is_empty() {
                "none (no entry declares a platform)".to_owned()
            } else {
                available.join(", ")
            };
            Error::new(
                ErrorKind::NoMatchingPlatform,
                format!("no manifest for platform {wanted} in the index; available: {listed}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Digest, MediaType};

    fn p(s: &str) -> Platform {
        Platform::parse(s).expect(s)
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").variant.as_deref(), Some("v8"));
        assert_eq!(p("linux/aarch64/8").to_string(), "linux/arm64/v8");
        assert_eq!(p("Linux/x86_64").to_string(), "linux/amd64");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64", ""] {
            assert!(Platform::parse(bad).expect_err(bad).is_invalid_input());
        }
    }

    #[test]
    fn host_is_linux_with_known_arch() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(!h.architecture.is_empty());
        assert!(h.matches(&Platform::new("linux", std::env::consts::ARCH)));
    }

    #[test]
    fn variant_rules() {
        // arm64 without variant is v8.
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        // arm defaults to v7.
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm").matches(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        // Wanted without variant accepts any.
        assert!(p("linux/arm/v6").matches(&p("linux/arm")));
        // Different OS or arch never match.
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
        assert!(!p("windows/amd64").matches(&p("linux/amd64")));
    }

    fn entry(platform: Option<&str>, n: u8) -> Descriptor {
        let mut d = Descriptor::new(MediaType::OCI_MANIFEST, Digest::sha256_of(&[n]), 10);
        d.platform = platform.map(p);
        d
    }

    fn index(entries: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
            artifact_type: None,
            manifests: entries,
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        }
    }

    #[test]
    fn select_prefers_exact_variant() {
        let idx = index(vec![
            entry(Some("linux/amd64"), 0),
            entry(None, 9),
            entry(Some("linux/arm/v6"), 1),
            entry(Some("linux/arm/v7"), 2),
            entry(Some("linux/arm64/v8"), 3),
        ]);
        let pick = |s: &str| idx.select(&p(s)).expect(s).digest.clone();
        assert_eq!(pick("linux/amd64"), Digest::sha256_of(&[0]));
        // Wanted arm without variant: any matches, but the default v7 is preferred.
        assert_eq!(pick("linux/arm"), Digest::sha256_of(&[2]));
        assert_eq!(pick("linux/arm/v6"), Digest::sha256_of(&[1]));
        assert_eq!(pick("linux/arm64"), Digest::sha256_of(&[3]));
    }

    #[test]
    fn select_reports_what_is_available() {
        let idx = index(vec![
            entry(Some("linux/amd64"), 0),
            entry(Some("linux/arm64/v8"), 1),
        ]);
        let err = idx.select(&p("linux/s390x")).expect_err("no s390x");
        assert!(err.is_no_matching_platform());
        let msg = err.to_string();
        assert!(msg.contains("linux/s390x"), "{msg}");
        assert!(msg.contains("linux/amd64, linux/arm64/v8"), "{msg}");
        // One image manifest without a platform is taken when nothing declares a match; two
        // are ambiguous; one that declares a match wins over it.
        let bare = index(vec![entry(None, 0)]);
        assert_eq!(
            bare.select(&p("linux/amd64")).expect("the only one").digest,
            Digest::sha256_of(&[0])
        );
        let two = index(vec![entry(None, 0), entry(None, 1)]);
        assert!(
            two.select(&p("linux/amd64"))
                .expect_err("ambiguous")
                .is_no_matching_platform()
        );
        let declared = index(vec![entry(None, 0), entry(Some("linux/amd64"), 1)]);
        assert_eq!(
            declared.select(&p("linux/amd64")).expect("declared").digest,
            Digest::sha256_of(&[1])
        );
        assert_eq!(
            declared.select(&p("linux/arm64")).expect("fallback").digest,
            Digest::sha256_of(&[0])
        );
    }
}
