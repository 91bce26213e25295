//! Synthetic inputs, generated once per size and cached under `target/bench/cache/`.

use super::Ctx;
use anyhow::Context;
use hoist_oci::Compression;
use hoist_testkit::{ImageSpec, LayerSpec, Payload, write_docker_archive, write_oci_layout};
use std::path::{Path, PathBuf};

/// Layers per synthetic image: big enough that every layer exceeds a 64 MiB proxy limit at the
/// default 1 GiB size.
pub const LAYERS: u64 = 4;
/// The tag every cached image carries.
pub const TAG: &str = "bench";
/// The repo:tag of cached docker-archives.
pub const REPO_TAG: &str = "bench/image:latest";

fn spec(size: u64, compression: Compression) -> ImageSpec {
    ImageSpec {
        layers: (0..LAYERS)
            .map(|_| LayerSpec::new(8, size / LAYERS).compression(compression))
            .collect(),
        seed: 0xb3c4,
    }
}

/// Run `make` unless `path` was completed before (a `.done` marker next to it).
fn cached(path: &Path, make: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let done = PathBuf::from(format!("{}.done", path.display()));
    if path.exists() && done.exists() {
        return Ok(());
    }
    if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    }
    eprintln!("bench: generating {}", path.display());
    make().with_context(|| format!("generating {}", path.display()))?;
    std::fs::write(&done, b"")?;
    Ok(())
}

/// A docker-archive of `--size` bytes (4 uncompressed layers of random data) tagged
/// [`REPO_TAG`].
pub fn archive(ctx: &Ctx) -> anyhow::Result<PathBuf> {
    archive_sized(ctx, ctx.size, REPO_TAG)
}

/// A docker-archive of `size` bytes in 4 uncompressed layers, tagged `repo_tag`.
pub fn archive_sized(ctx: &Ctx, size: u64, repo_tag: &str) -> anyhow::Result<PathBuf> {
    let name = if repo_tag == REPO_TAG {
        format!("archive-{size}.tar")
    } else {
        format!("archive-{}-{size}.tar", repo_tag.replace(['/', ':'], "_"))
    };
    archive_of(ctx, &name, repo_tag, &spec(size, Compression::None))
}

/// A docker-archive of `size` bytes in 4 uncompressed layers of text (which compresses
/// several-fold, like source trees and documentation), tagged `repo_tag`.
pub fn archive_text(ctx: &Ctx, size: u64, repo_tag: &str) -> anyhow::Result<PathBuf> {
    let mut spec = spec(size, Compression::None);
    for layer in &mut spec.layers {
        layer.payload = Payload::Text;
    }
    let name = format!(
        "archive-text-{}-{size}.tar",
        repo_tag.replace(['/', ':'], "_")
    );
    archive_of(ctx, &name, repo_tag, &spec)
}

/// The cached docker-archive `name` made from `spec`, tagged `repo_tag`.
fn archive_of(ctx: &Ctx, name: &str, repo_tag: &str, spec: &ImageSpec) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&ctx.cache)?;
    let path = ctx.cache.join(name);
    cached(&path, || {
        write_docker_archive(&path, repo_tag, spec).map(|_| ())
    })?;
    Ok(path)
}

/// An OCI layout holding one image tagged [`TAG`] of `--size` payload bytes.
pub struct Layout {
    /// The layout directory.
    pub dir: PathBuf,
    /// Layer blob files, bottom first.
    pub layer_blobs: Vec<PathBuf>,
    /// Total bytes of all blobs.
    pub bytes: u64,
}

/// The cached layout of `--size` bytes in 4 layers with this compression.
pub fn layout(ctx: &Ctx, compression: Compression) -> anyhow::Result<Layout> {
    layout_of(
        ctx,
        &format!("layout-{compression}-{}", ctx.size),
        &spec(ctx.size, compression),
    )
}

/// The cached layout of `size` bytes in 4 gzip layers.
pub fn layout_sized(ctx: &Ctx, size: u64) -> anyhow::Result<Layout> {
    layout_of(
        ctx,
        &format!("layout-gzip-{size}"),
        &spec(size, Compression::Gzip),
    )
}

/// The cached layout of `--size` bytes in `layers` layers alternating gzip and zstd.
pub fn layout_many(ctx: &Ctx, layers: usize) -> anyhow::Result<Layout> {
    let spec = ImageSpec {
        layers: (0..layers)
            .map(|i| {
                let c = if i % 2 == 0 {
                    Compression::Gzip
                } else {
                    Compression::Zstd
                };
                LayerSpec::new(4, ctx.size / layers as u64).compression(c)
            })
            .collect(),
        seed: 0x60,
    };
    layout_of(ctx, &format!("layout-{layers}layers-{}", ctx.size), &spec)
}

/// The cached layout named `name` made from `spec`.
fn layout_of(ctx: &Ctx, name: &str, spec: &ImageSpec) -> anyhow::Result<Layout> {
    std::fs::create_dir_all(&ctx.cache)?;
    let dir = ctx.cache.join(name);
    cached(&dir, || write_oci_layout(&dir, TAG, spec).map(|_| ()))?;
    // Read the layer list back from the layout (the cache may be from an earlier invocation).
    let json = |p: PathBuf| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(
            &std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
        )?)
    };
    let blobs = dir.join("blobs/sha256");
    let blob = |d: &serde_json::Value| -> anyhow::Result<PathBuf> {
        let d = d.as_str().context("digest is not a string")?;
        Ok(blobs.join(d.strip_prefix("sha256:").context("not a sha256 digest")?))
    };
    let index = json(dir.join("index.json"))?;
    let manifest = json(blob(&index["manifests"][0]["digest"])?)?;
    let layer_blobs = manifest["layers"]
        .as_array()
        .context("manifest has no layers")?
        .iter()
        .map(|l| blob(&l["digest"]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bytes = 0;
    for e in std::fs::read_dir(&blobs)? {
        bytes += e?.metadata()?.len();
    }
    Ok(Layout {
        dir,
        layer_blobs,
        bytes,
    })
}
