//! `hoist copy` and its short forms: wiring a source to a destination through the libraries.
//!
//! The CLI moves no bytes itself: `hoist-registry` pushes files and pulls into files or verified
//! streams, `hoist-oci` reads and writes layouts, `hoist-unpack` applies layers. This module
//! picks the calls for each pair and reports progress.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_oci::archive::{SpooledImage, spool, write_docker_archive};
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, Reference};

use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::transport::{ArchivePath, Location};

/// Run a copy on a fresh runtime.
///
/// # Errors
/// Whatever failed, with context.
pub fn run(
    config: &Config,
    source: &Location,
    destination: &Location,
    operation: &str,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    reporter.send(Event::Start {
        operation: operation.to_string(),
        source: source.to_string(),
        destination: destination.to_string(),
    });
    let runtime = super::runtime()?;
    let result = runtime.block_on(copy(config, source, destination, reporter));
    reporter.send(Event::Finish { ok: result.is_ok() });
    result
}

async fn copy(
    config: &Config,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    // Every other pair goes through an image in a layout: the source's own, or one spooled into
    // the cache; the destination is written from there.
    let staged = stage(config, source).await?;
    let result = deliver(config, &staged, source, destination, reporter).await;
    staged.cleanup();
    result
}

/// An image sitting in a layout, ready to be written anywhere.
pub struct Staged {
    /// The layout holding its blobs.
    pub layout: Layout,
    /// The image.
    pub image: Image,
    /// The names it goes by (for archives and `docker load`).
    pub names: Vec<String>,
    /// A transit directory to delete when done.
    transit: Option<PathBuf>,
}

impl Staged {
    fn cleanup(&self) {
        if let Some(dir) = &self.transit {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Bring the source image into a layout.
async fn stage(config: &Config, source: &Location) -> anyhow::Result<Staged> {
    match source {
        Location::Oci { dir, tag } => {
            let (layout, image) = open_layout_image(config, dir, tag.as_deref()).await?;
            Ok(Staged {
                layout,
                image,
                names: Vec::new(),
                transit: None,
            })
        }
        Location::DockerArchive { path, reference } => {
            let transit = transit_dir(config, "archive")?;
            let path = path.clone();
            let reference = reference.clone();
            let platform = config.platform.clone();
            let dir = transit.clone();
            let staged = tokio::task::spawn_blocking(move || {
                let layout = Layout::create(&dir)?;
                let spooled = match &path {
                    ArchivePath::Stdio => spool(std::io::stdin().lock(), &layout),
                    ArchivePath::File(file) => {
                        let f = std::fs::File::open(file)
                            .with_context(|| format!("opening {}", file.display()))?;
                        spool(std::io::BufReader::new(f), &layout)
                    }
                }
                .context("reading the docker archive")?;
                let chosen = choose_archive_image(&spooled, reference.as_deref())?;
                let image = layout.image_at(&chosen.manifest, platform.as_ref())?;
                let names = match &reference {
                    Some(r) => vec![r.clone()],
                    None => chosen.tags.clone(),
                };
                anyhow::Ok((layout, image, names))
            })
            .await?;
            match staged {
                Ok((layout, image, names)) => Ok(Staged {
                    layout,
                    image,
                    names,
                    transit: Some(transit),
                }),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&transit);
                    Err(e)
                }
            }
        }
        other => bail!(
            "reading images from {}: is not wired up in this build yet",
            other.transport()
        ),
    }
}

/// Write a staged image to the destination.
async fn deliver(
    config: &Config,
    staged: &Staged,
    source: &Location,
    destination: &Location,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let _ = config;
    match destination {
        Location::Oci { dir, tag } => {
            copy_between_layouts(
                staged.layout.clone(),
                staged.image.clone(),
                dir.clone(),
                reporter.clone(),
            )
            .await?;
            let source_tag = match source {
                Location::Oci { tag, .. } => tag.clone(),
                _ => None,
            };
            tag_layout(
                dir,
                tag.as_deref().or(source_tag.as_deref()),
                &staged.image.descriptor,
            )
            .await
        }
        Location::DockerArchive { path, reference } => {
            let names = match reference {
                Some(r) => vec![r.clone()],
                None => staged.names.clone(),
            };
            write_archive(staged, path.clone(), names, reporter.clone()).await
        }
        other => bail!(
            "writing images to {}: is not wired up in this build yet",
            other.transport()
        ),
    }
}

/// A fresh directory under the cache for an image in transit.
fn transit_dir(config: &Config, kind: &str) -> anyhow::Result<PathBuf> {
    let base = config.cache_dir.join("transit");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{kind}-"))
        .tempdir_in(&base)
        .with_context(|| format!("creating a transit directory in {}", base.display()))?;
    // The layout is created inside by its library; keep the directory past this guard.
    let path = dir.keep();
    std::fs::remove_dir(&path).with_context(|| format!("preparing {}", path.display()))?;
    Ok(path)
}

/// Pick the image of a multi-image archive: the one `reference` names, or the only one.
fn choose_archive_image<'a>(
    spooled: &'a [SpooledImage],
    reference: Option<&str>,
) -> anyhow::Result<&'a SpooledImage> {
    match reference {
        Some(wanted) => {
            let want = Reference::parse(wanted).map(|r| r.to_string()).ok();
            spooled
                .iter()
                .find(|img| {
                    img.tags.iter().any(|t| {
                        t == wanted || Reference::parse(t).map(|r| r.to_string()).ok() == want
                    })
                })
                .with_context(|| {
                    let all: Vec<&str> = spooled
                        .iter()
                        .flat_map(|i| i.tags.iter().map(String::as_str))
                        .collect();
                    format!(
                        "the archive has no image `{wanted}` (it has: {})",
                        if all.is_empty() {
                            "untagged images only".to_string()
                        } else {
                            all.join(", ")
                        }
                    )
                })
        }
        None => match spooled {
            [only] => Ok(only),
            [] => bail!("the archive holds no image"),
            many => bail!(
                "the archive holds {} images; name one with docker-archive:PATH:NAME:TAG",
                many.len()
            ),
        },
    }
}

/// Write a docker archive (to a file via a temp file renamed at the end, or to stdout).
async fn write_archive(
    staged: &Staged,
    path: ArchivePath,
    names: Vec<String>,
    reporter: Reporter,
) -> anyhow::Result<()> {
    let layout = staged.layout.clone();
    let descriptor = staged.image.descriptor.clone();
    let layers = staged.image.manifest.value().layers.clone();
    tokio::task::spawn_blocking(move || {
        announce(&reporter, &layers);
        for l in &layers {
            reporter.state(&l.digest.to_string(), LayerState::Writing);
        }
        let images = [(descriptor, names)];
        match &path {
            ArchivePath::Stdio => {
                let stdout = std::io::stdout().lock();
                let mut out = std::io::BufWriter::with_capacity(256 << 10, stdout);
                write_docker_archive(&layout, &images, &mut out)
                    .context("writing the docker archive to stdout")?;
                std::io::Write::flush(&mut out).context("writing the docker archive to stdout")?;
            }
            ArchivePath::File(file) => {
                let parent = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let mut temp = tempfile::Builder::new()
                    .prefix(".hoist-archive-")
                    .tempfile_in(&parent)
                    .with_context(|| format!("creating a file in {}", parent.display()))?;
                {
                    let mut out = std::io::BufWriter::with_capacity(256 << 10, temp.as_file_mut());
                    write_docker_archive(&layout, &images, &mut out)
                        .with_context(|| format!("writing {}", file.display()))?;
                    std::io::Write::flush(&mut out)
                        .with_context(|| format!("writing {}", file.display()))?;
                }
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("writing {}", file.display()))?;
                temp.persist(file).map_err(|e| e.error).with_context(|| {
                    format!("renaming the archive into place at {}", file.display())
                })?;
            }
        }
        for l in &layers {
            reporter.state(&l.digest.to_string(), LayerState::Done);
        }
        anyhow::Ok(())
    })
    .await?
}

/// Open a layout and resolve the image (blocking work off the runtime).
pub async fn open_layout_image(
    config: &Config,
    dir: &Path,
    tag: Option<&str>,
) -> anyhow::Result<(Layout, Image)> {
    let dir = dir.to_path_buf();
    let tag = tag.map(str::to_string);
    let platform = config.platform.clone();
    tokio::task::spawn_blocking(move || {
        let layout = Layout::open(&dir)
            .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
        let image = layout
            .image(tag.as_deref(), platform.as_ref())
            .with_context(|| match &tag {
                Some(t) => format!("reading image `{t}` from {}", dir.display()),
                None => format!("reading the image in {}", dir.display()),
            })?;
        Ok((layout, image))
    })
    .await?
}

fn announce(reporter: &Reporter, layers: &[Descriptor]) {
    for layer in layers {
        reporter.send(Event::Layer {
            id: layer.digest.to_string(),
            size: Some(layer.size),
        });
    }
}

async fn tag_layout(dir: &Path, tag: Option<&str>, descriptor: &Descriptor) -> anyhow::Result<()> {
    let layout = Layout::open(dir)?;
    match tag {
        Some(tag) => layout.set_tag(tag, descriptor)?,
        None => layout.add_untagged(descriptor)?,
    }
    Ok(())
}

/// Copy an image's blobs into another layout, verifying each on the way.
async fn copy_between_layouts(
    from: Layout,
    image: Image,
    to: PathBuf,
    reporter: Reporter,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let target = Layout::open_or_create(&to)
            .with_context(|| format!("opening the OCI layout {}", to.display()))?;
        let m = image.manifest.value();
        announce(&reporter, &m.layers);
        // The config is small and not a layer: copied without a progress line.
        if !target.has_blob(&m.config)? {
            target.write_blob(from.open_blob(&m.config)?, Some(&m.config))?;
        }
        for desc in &m.layers {
            let id = desc.digest.to_string();
            if target.has_blob(desc)? {
                reporter.state(&id, LayerState::Skipped);
                continue;
            }
            reporter.state(&id, LayerState::Writing);
            let reader = Counting::new(from.open_blob(desc)?, &reporter, &id, desc.size);
            target.write_blob(reader, Some(desc))?;
            reporter.state(&id, LayerState::Done);
        }
        target.write_json(&image.manifest)?;
        anyhow::Ok(())
    })
    .await?
}

/// A reader that reports how many bytes went through it (about every MiB).
struct Counting<R> {
    inner: R,
    reporter: Reporter,
    id: String,
    total: u64,
    done: u64,
    reported: u64,
}

impl<R> Counting<R> {
    fn new(inner: R, reporter: &Reporter, id: &str, total: u64) -> Self {
        Counting {
            inner,
            reporter: reporter.clone(),
            id: id.to_string(),
            total,
            done: 0,
            reported: 0,
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.reporter.send(Event::Progress {
                id: self.id.clone(),
                done: self.done,
                total: Some(self.total),
            });
        }
        Ok(n)
    }
}
