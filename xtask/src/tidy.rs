//! `cargo xtask tidy`: structural checks that keep the workspace's shape honest.
//!
//! 1. Dependency direction: `hoist-oci` is the leaf; `hoist-docker`, `hoist-registry` and
//!    `hoist-unpack` depend on `hoist-oci` and never on each other (not even as dev-dependencies;
//!    they may use `hoist-testkit` for tests); only the CLI `hoist`, `xtask` and `tests` see all.
//! 2. Publishing: a publishable crate's dependency on another workspace crate carries a version
//!    (crates.io needs one), and a dependency on an unpublished one (`hoist-testkit`) is a
//!    path-only dev-dependency, which `cargo package` drops (with a version it would have to be
//!    on crates.io, and packaging the library fails).
//! 3. Every non-test `.rs` file (anything under a package's `src/` except `#[cfg(test)]` modules in
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
    /// `Some([])` for `publish = false`; `None` when it may go to any registry.
    publish: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
    /// The version requirement, `*` for a path dependency without a version.
    req: String,
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
    let unpublished: Vec<&str> = meta
        .packages
        .iter()
        .filter(|p| !is_published(p))
        .map(|p| p.name.as_str())
        .collect();

    let mut problems = Vec::new();
    for pkg in &meta.packages {
        problems.extend(edge_problems(pkg, &names));
        problems.extend(publish_problems(pkg, &names, &unpublished));
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
            "tidy: {} packages checked: dependency direction, publishing and module docs OK",
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

fn is_published(pkg: &Package) -> bool {
    pkg.publish
        .as_ref()
        .is_none_or(|registries| !registries.is_empty())
}

/// What would stop `pkg` from being packaged on its own (see the module docs, point 2).
fn publish_problems(pkg: &Package, workspace: &[&str], unpublished: &[&str]) -> Vec<String> {
    if !is_published(pkg) {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for dep in &pkg.dependencies {
        if !workspace.contains(&dep.name.as_str()) {
            continue;
        }
        let dev = dep.kind.as_deref() == Some("dev");
        let versioned = dep.req != "*";
        let problem = match (unpublished.contains(&dep.name.as_str()), dev, versioned) {
            (true, false, _) => "depends on the unpublished",
            (true, true, true) => "names a version of the unpublished dev-dependency",
            (false, _, false) => "has no version requirement on",
            _ => continue,
        };
        problems.push(format!(
            "{} {problem} {}: `cargo package -p {}` would fail (see the root Cargo.toml)",
            pkg.name, dep.name, pkg.name
        ));
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
                    req: "^0.1.0".into(),
                })
                .collect(),
            publish: None,
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
    fn packaging_needs_versions_and_no_versioned_unpublished_dev_dependency() {
        let unpublished = ["hoist-testkit"];
        let mut lib = pkg(
            "hoist-unpack",
            &[("hoist-oci", None), ("hoist-testkit", Some("dev"))],
        );
        // The testkit with a version: `cargo package` would look for it on crates.io.
        let problems = publish_problems(&lib, WS, &unpublished);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("hoist-testkit"), "{problems:?}");
        lib.dependencies[1].req = "*".into();
        assert!(publish_problems(&lib, WS, &unpublished).is_empty());
        // A sibling without a version cannot be published.
        lib.dependencies[0].req = "*".into();
        assert_eq!(publish_problems(&lib, WS, &unpublished).len(), 1);
        // An unpublished crate may depend on anything.
        let mut kit = pkg("hoist-testkit", &[("hoist-oci", None)]);
        kit.dependencies[0].req = "*".into();
        kit.publish = Some(Vec::new());
        assert!(publish_problems(&kit, WS, &unpublished).is_empty());
    }

    #[test]
    fn module_doc_detection() {
        assert!(opens_with_module_doc("\n//! Docs.\nfn main() {}"));
        assert!(!opens_with_module_doc("// plain comment\n//! late\n"));
        assert!(!opens_with_module_doc("use std::io;\n"));
        assert!(!opens_with_module_doc(""));
    }
}
