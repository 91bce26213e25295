//! `rootfs-tar:` destinations: an image's root filesystem as one flattened tar (as
//! `crane export` writes it), from an image in a layout (the source's own, or the transit copy
//! [`stage`](super::copy::stage) made).
//!
//! The flattener reads every layer twice (its headers, then the data of what survives), so it
//! needs files: a registry or daemon source is staged first, as for an archive. A file
//! destination takes its name only once the whole tar is written and verified (see
//! [`WholeFile`](super::whole_file::WholeFile)); stdout gets the stream as it is made.
//!
//! Progress says which pass it is in: pass 1 reads every layer and writes nothing (on a large
//! image, minutes), each layer shown `reading` with its bytes read, then `done`; pass 2 is the
//! tar's own line, `writing` from its first byte.

use std::io::Read;

use anyhow::Context;
use hoist_oci::layout::{Image, Layout};
use hoist_unpack::{FlattenLayer, FlattenPass};

use super::copy::{Staged, announce};
use super::local::{Counting, layer_info, unpacker, write_stream_with};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::size::human;
use crate::transport::ArchivePath;

/// Write the staged image's merged root filesystem as one tar to `path`.
///
/// # Errors
/// When a layer is bad or unreadable (the error names the layer and entry), or the tar cannot
/// be written; a file destination is then left as it was.
pub async fn flatten_to(
    config: &Config,
    staged: &Staged,
    path: ArchivePath,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let flattener = unpacker(config.unpack_limits)?;
    let layout = staged.layout.clone();
    let image = staged.image.clone();
    hoist_unpack::check_layer_count(image.manifest.value(), image.config.value())
        .with_context(|| format!("flattening {}", image.descriptor.digest))?;
    let shown = reporter.clone();
    write_stream_with(path, "root filesystem tar", reporter.clone(), move |out| {
        let layers = layers_in_two_passes(&layout, &image, &shown);
        flattener.flatten_layers(&layers, out).map(drop)
    })
    .await
}

/// The image's layers for the flattener, each verified against its digest and diff_id, pass 1
/// reported as it goes: a note that it starts, each layer `reading` (its bytes counted) then
/// `done`, and a note when pass 2 starts.
fn layers_in_two_passes<'a>(
    layout: &'a Layout,
    image: &'a Image,
    reporter: &Reporter,
) -> Vec<FlattenLayer<'a>> {
    let layers = &image.manifest.value().layers;
    if !layers.is_empty() {
        let size: u64 = layers.iter().map(|l| l.size).sum();
        reporter.send(Event::Message {
            text: format!(
                "pass 1 of 2: reading {} layer{} ({}) to merge their files; the tar is written \
                 in pass 2",
                layers.len(),
                if layers.len() == 1 { "" } else { "s" },
                human(size)
            ),
        });
    }
    announce(reporter, layers);
    layers
        .iter()
        .enumerate()
        .map(|(i, desc)| {
            let reporter = reporter.clone();
            FlattenLayer::per_pass(
                move |pass| {
                    let file =
                        hoist_unpack::open_layer(layout, desc).map_err(std::io::Error::other)?;
                    let id = desc.digest.to_string();
                    Ok(match pass {
                        FlattenPass::Tree => {
                            reporter.state(&id, LayerState::Reading);
                            let counted = Counting::new(file, &reporter, &id, desc.size);
                            Box::new(DoneAtEnd::new(counted, &reporter, id)) as Box<dyn Read + Send>
                        }
                        FlattenPass::Emit => {
                            if i == 0 {
                                reporter.send(Event::Message {
                                    text: "pass 2 of 2: writing the root filesystem tar, each \
                                           layer read again"
                                        .into(),
                                });
                            }
                            Box::new(file)
                        }
                    })
                },
                layer_info(&image.config, desc, i),
            )
        })
        .collect()
}

/// A reader that marks its line `done` when it reaches its end: the flattener reads each layer
/// to its end in pass 1 (the digests are checked there).
struct DoneAtEnd<R> {
    inner: R,
    reporter: Reporter,
    id: Option<String>,
}

impl<R> DoneAtEnd<R> {
    fn new(inner: R, reporter: &Reporter, id: String) -> Self {
        DoneAtEnd {
            inner,
            reporter: reporter.clone(),
            id: Some(id),
        }
    }
}

impl<R: Read> Read for DoneAtEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(id) = self.id.take()
        {
            self.reporter.state(&id, LayerState::Done);
        }
        Ok(n)
    }
}
