//! `cargo xtask demo`: the whole hoist story on one machine, in one command.
//!
//! It starts a private registry behind nginx with a 64 MiB body limit (the shape of a
//! CDN-fronted registry), generates a multi-layer image of `--size` (default 1 GiB) whose layers
//! are each larger than the limit, shows `skopeo copy` (when installed) failing through the
//! proxy, pushes the same image with hoist through it, pulls it back, unpacks it, verifies the
//! digests and the unpacked tree against an independent reference (`tar -x` of every layer in
//! order), and prints a table of step, result, time and peak RSS. Everything it started or
//! wrote is removed when it ends.

use crate::bench::measure::{Launcher, Sample};
use crate::sys::{Package, ensure_packages, workspace_root};
use anyhow::{Context, bail};
use hoist_oci::{Compression, Digest};
use hoist_testkit::{Extras, ImageSpec, LayerSpec, Nginx, Payload, Registry, find_tool};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USAGE: &str = "usage: cargo xtask demo [--size SIZE] [--hoist PATH]

  --size SIZE   image size, e.g. 1GiB (default), 256MiB
  --hoist PATH  the hoist binary (default: cargo build --release -p hoist)";

/// The proxy's body limit: every layer of the demo image is bigger.
const LIMIT: u64 = 64 << 20;
/// A run taking longer than this is killed and reported as failed.
const STEP_LIMIT: Duration = Duration::from_secs(3600);

/// One row of the final table.
struct Row {
    step: String,
    result: String,
    sample: Option<Sample>,
}

/// Entry point for `cargo xtask demo ARGS`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut size = 1u64 << 30;
    let mut hoist: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size" => {
                size = crate::bench::parse_size(it.next().context("--size needs a value")?)?;
            }
            "--hoist" => hoist = Some(it.next().context("--hoist needs a value")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    crate::interrupt::install("demo")?;
    let launcher = Launcher::this_binary()?;
    ensure_packages(&[
        Package {
            name: "docker-registry",
            exe: "docker-registry",
        },
        Package {
            name: "nginx",
            exe: "nginx",
        },
    ])?;
    let root = workspace_root();
    let hoist = match hoist {
        Some(p) => p,
        None => crate::sys::build_release_binary("hoist", "hoist")?,
    };
    std::fs::create_dir_all(root.join("target"))?;
    let work = tempfile::Builder::new()
        .prefix("demo-")
        .tempdir_in(root.join("target"))
        .context("creating the demo work dir")?;
    let w = work.path();

    println!("== starting a registry behind nginx (client_max_body_size 64 MiB)");
    let registry = Registry::start()?;
    let proxy = Nginx::builder(registry.addr())
        .max_body_size(LIMIT)
        .request_buffering(false)
        .start()?;
    let host = proxy.host();
    println!("   registry {}  proxy {}", registry.url(), proxy.url());

    // Layers of random data (incompressible, so each blob really exceeds the limit), plus a text
    // layer with symlinks, hardlinks and long names for the tree check.
    let layers = 4u64;
    let spec = ImageSpec {
        layers: (0..layers)
            .map(|i| {
                let l = LayerSpec::new(8, size / layers).compression(Compression::Gzip);
                if i == layers - 1 {
                    l.payload(Payload::Text).extras(Extras {
                        symlinks: 2,
                        hardlinks: 2,
                        long_names: 2,
                        ..Extras::default()
                    })
                } else {
                    l
                }
            })
            .collect(),
        seed: 2026,
    };
    println!(
        "== generating a {} MiB image in {} layers",
        size >> 20,
        layers
    );
    let layout = w.join("layout");
    let image = hoist_testkit::write_oci_layout(&layout, "demo", &spec)?;
    for l in &image.layers {
        println!("   layer {}  {} MiB", l.digest.short(), l.size >> 20);
    }

    let mut rows = Vec::new();
    let src = format!("oci:{}:demo", layout.display());
    let remote = format!("docker://{host}/demo/image:1");

    if find_tool("skopeo").is_some() {
        println!("== skopeo copy through the proxy (expected to fail: one request per layer)");
        let log = w.join("skopeo.log");
        let s = launcher.measure(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false", &src])
                .arg(format!("docker://{host}/demo/skopeo:1")),
            Some(&log),
            STEP_LIMIT,
        )?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let result = if s.ok {
            "pushed (the layers fit the limit?)".to_string()
        } else if text.contains("413") || text.contains("Too Large") {
            "failed: 413 Request Entity Too Large".to_string()
        } else {
            format!(
                "failed: {}",
                text.lines()
                    .last()
                    .unwrap_or("see log")
                    .chars()
                    .take(80)
                    .collect::<String>()
            )
        };
        println!("   {result}");
        rows.push(Row {
            step: "skopeo copy -> proxy".into(),
            result,
            sample: Some(s),
        });
    } else {
        rows.push(Row {
            step: "skopeo copy -> proxy".into(),
            result: "skipped: skopeo not installed (apt-get install skopeo)".into(),
            sample: None,
        });
    }

    let steps: [(&str, Vec<String>); 3] = [
        (
            "hoist push -> proxy",
            vec![
                "copy".into(),
                "--insecure-registry".into(),
                host.clone(),
                src.clone(),
                remote.clone(),
            ],
        ),
        (
            "hoist pull <- proxy",
            vec![
                "copy".into(),
                "--insecure-registry".into(),
                host.clone(),
                remote.clone(),
                format!("oci:{}:demo", w.join("pulled").display()),
            ],
        ),
        (
            "hoist unpack",
            vec![
                "copy".into(),
                format!("oci:{}:demo", w.join("pulled").display()),
                format!("rootfs:{}", w.join("rootfs").display()),
            ],
        ),
    ];
    let mut failed = false;
    for (step, argv) in steps {
        println!("== {step}: hoist {}", argv.join(" "));
        let s = launcher.measure(Command::new(&hoist).args(&argv), None, STEP_LIMIT)?;
        let result = if s.ok { "ok" } else { "FAILED" };
        println!("   {result}");
        rows.push(Row {
            step: step.into(),
            result: result.into(),
            sample: Some(s),
        });
        if !s.ok {
            failed = true;
            break;
        }
    }

    if !failed {
        println!("== verifying digests and the unpacked tree");
        let result = match verify(w, &image, &spec) {
            Ok(summary) => summary,
            Err(e) => {
                failed = true;
                format!("FAILED: {e:#}")
            }
        };
        println!("   {result}");
        rows.push(Row {
            step: "verify".into(),
            result,
            sample: None,
        });
    }

    print_table(&rows);
    drop(proxy);
    drop(registry);
    drop(work);
    if failed {
        bail!("the demo failed (see above)");
    }
    Ok(())
}

/// The pulled manifest is the pushed one, every pulled blob matches its name, and the unpacked
/// tree equals `tar -x` of every layer in order (the demo image has no whiteouts).
fn verify(w: &Path, image: &hoist_testkit::SynthImage, spec: &ImageSpec) -> anyhow::Result<String> {
    let pulled = w.join("pulled");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pulled.join("index.json")).context("pulled index.json")?,
    )?;
    let digest = index["manifests"][0]["digest"].as_str().unwrap_or_default();
    if digest != image.manifest_digest.to_string() {
        bail!(
            "pulled manifest {digest} is not the pushed {}",
            image.manifest_digest
        );
    }
    let blobs = pulled.join("blobs/sha256");
    let mut count = 0;
    for e in std::fs::read_dir(&blobs).context("pulled blobs")? {
        let e = e?;
        let got = sha256_file(&e.path())?;
        if got.hex() != e.file_name().to_string_lossy() {
            bail!("blob {} has digest {got}", e.path().display());
        }
        count += 1;
    }
    let reference = w.join("reference");
    std::fs::create_dir_all(&reference)?;
    for l in &image.layers {
        let blob = w.join("layout/blobs/sha256").join(l.digest.hex());
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(&blob)
            .arg("-C")
            .arg(&reference)
            .status()
            .context("running tar for the reference tree")?;
        if !st.success() {
            bail!("tar -xzf {} failed: {st}", blob.display());
        }
    }
    let want = tree(&reference)?;
    let got = tree(&w.join("rootfs"))?;
    if want != got {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .map(|(k, _)| k)
            .take(5)
            .collect();
        bail!("unpacked tree differs: missing {missing:?}, different {differ:?}");
    }
    Ok(format!(
        "ok: manifest {}, {count} blobs, {} paths ({} MiB payload) identical",
        image.manifest_digest.short(),
        want.len(),
        spec.payload_bytes() >> 20
    ))
}

/// path -> description (kind, mode, size, content digest or link target) of every entry.
fn tree(root: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = e?.path();
            let m = std::fs::symlink_metadata(&p)?;
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            let mode = m.permissions().mode() & 0o7777;
            let desc = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p)?.display())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {mode:o}")
            } else {
                format!("file {mode:o} {} {}", m.len(), sha256_file(&p)?)
            };
            out.insert(rel, desc);
        }
    }
    Ok(out)
}

fn sha256_file(p: &Path) -> anyhow::Result<Digest> {
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::parse(&format!(
        "sha256:{}",
        hex::encode(h.finalize())
    ))?)
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| step | result | time s | CPU s | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|");
    for r in rows {
        let (t, c, m) = match r.sample {
            Some(s) => (
                format!("{:.2}", s.wall_s),
                format!("{:.2}", s.cpu_s()),
                format!("{:.1}", s.max_rss_kib as f64 / 1024.0),
            ),
            None => ("".into(), "".into(), "".into()),
        };
        println!("| {} | {} | {t} | {c} | {m} |", r.step, r.result);
    }
}
