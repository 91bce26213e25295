//! `hoist copy` and its short forms: wiring a source to a destination through the libraries.
//!
//! The CLI moves no bytes itself: `hoist-registry` pushes files and pulls into files or verified
//! streams, `hoist-oci` reads and writes layouts, `hoist-unpack` applies layers. This module
//! picks the calls for each pair and reports progress.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_oci::Descriptor;
use hoist_oci::layout::{Image, Layout};

use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::transport::Location;

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
    match (source, destination) {
        (
            Location::Oci { dir, tag },
            Location::Oci {
                dir: to,
                tag: to_tag,
            },
        ) => {
            let (layout, image) = open_layout_image(config, dir, tag.as_deref()).await?;
            copy_between_layouts(layout, image.clone(), to.clone(), reporter.clone()).await?;
            tag_layout(to, to_tag.as_deref().or(tag.as_deref()), &image.descriptor).await
        }
        (source, destination) => bail!(
            "copying from {}: to {}: is not wired up in this build yet",
            source.transport(),
            destination.transport()
        ),
    }
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
