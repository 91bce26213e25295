//! `cargo xtask tidy`: structural checks that keep the workspace's shape honest.
//!
//! 1. Dependency direction: `hoist-oci` is the leaf; `hoist-docker`, `hoist-registry` and
//!    `hoist-unpack` depend on `hoist-oci` and never on each other (not even as dev-dependencies;
//!    they may use `hoist-testkit` for tests); only the CLI `hoist`, `xtask` and `tests` see all.
//! 2. Every non-test `.rs` file (anything under a package's `src/` except `#[cfg(test)]` modules in
//!    `tests.rs` files or `tests/` directories) opens with a `//!` doc.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::sys;

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
}

/// Which workspace crates each workspace crate may depend on, for normal and dev dependencies.
/// `None` means "anything in the workspace".
fn allowed(package: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    const OCI: &[&str] = &["hoist-oci"];
    const OCI_AND_KIT: &[&str] = &["hoist-oci", "hoist-testkit"];
    match package {
        "hoist-oci" => Some((&[], &["hoist-testkit"])),
        "hoist-docker" | "hoist-registry" | "hoist-unpack" => Some((OCI, OCI_AND_KIT)),
        "hoist-testkit" => Some((OCI, OCI)),
        _ => None,
    }
}

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask tidy` takes no arguments (got {arg:?})");
    }
    let root = sys::workspace_root();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let names: Vec<&str> = meta.packages.iter().map(|p| p.name.as_str()).collect();

    let mut problems = Vec::new();
    for pkg in &meta.packages {
        problems.extend(edge_problems(pkg, &names));
        let dir = pkg
            .manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for file in rust_files(&dir.join("src"))? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            if !opens_with_module_doc(&text) {
                let shown = file.strip_prefix(&root).unwrap_or(&file);
                problems.push(format!(
                    "{} does not open with a `//!` module doc",
                    shown.display()
                ));
            }
        }
    }
    if problems.is_empty() {
        eprintln!(
            "tidy: {} packages checked: dependency direction and module docs OK",
            meta.packages.len()
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        bail!("{} tidy problem(s)", problems.len())
    }
}

fn edge_problems(pkg: &Package, workspace: &[&str]) -> Vec<String> {
    let Some((normal, dev)) = allowed(&pkg.name) else {
        return Vec::new();
    };
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut problems = Vec::new();
    for dep in &pkg.dependencies {
        if !workspace.contains(&dep.name.as_str()) {
            continue;
        }
        let kind = dep.kind.as_deref().unwrap_or("normal");
        let ok = match kind {
            "dev" => dev.contains(&dep.name.as_str()),
            _ => normal.contains(&dep.name.as_str()),
        };
        if !ok && seen.insert(&dep.name, kind).is_none() {
            problems.push(format!(
                "{} has a {kind} dependency on {}: the dependency direction forbids it \
                 (see docs/architecture.md)",
                pkg.name, dep.name
            ));
        }
    }
    problems
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                // Test modules kept in their own files are test code, not library source.
                if name != "tests" {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") && name != "tests.rs" {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The first line that is not blank must be a `//!` doc comment.
fn opens_with_module_doc(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with("//!"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, deps: &[(&str, Option<&str>)]) -> Package {
        Package {
            name: name.into(),
            manifest_path: PathBuf::new(),
            dependencies: deps
                .iter()
                .map(|(n, k)| Dependency {
                    name: (*n).into(),
                    kind: k.map(Into::into),
                })
                .collect(),
        }
    }

    const WS: &[&str] = &[
        "hoist-oci",
        "hoist-docker",
        "hoist-registry",
        "hoist-unpack",
        "hoist-testkit",
        "hoist",
    ];

    #[test]
    fn sibling_edges_are_rejected() {
        let p = pkg(
            "hoist-registry",
            &[("hoist-oci", None), ("hoist-unpack", None)],
        );
        let problems = edge_problems(&p, WS);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("hoist-unpack"));

        let p = pkg("hoist-unpack", &[("hoist-docker", Some("dev"))]);
        assert_eq!(edge_problems(&p, WS).len(), 1);

        let p = pkg("hoist-oci", &[("hoist-registry", None)]);
        assert_eq!(edge_problems(&p, WS).len(), 1);
    }

    #[test]
    fn allowed_edges_pass() {
        let p = pkg(
            "hoist-docker",
            &[
                ("hoist-oci", None),
                ("hoist-testkit", Some("dev")),
                ("serde", None),
            ],
        );
        assert!(edge_problems(&p, WS).is_empty());
        let cli = pkg("hoist", &[("hoist-registry", None), ("hoist-unpack", None)]);
        assert!(edge_problems(&cli, WS).is_empty());
    }

    #[test]
    fn module_doc_detection() {
        assert!(opens_with_module_doc("\n//! Docs.\nfn main() {}"));
        assert!(!opens_with_module_doc("// plain comment\n//! late\n"));
        assert!(!opens_with_module_doc("use std::io;\n"));
        assert!(!opens_with_module_doc(""));
    }
}
