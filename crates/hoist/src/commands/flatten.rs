//! `rootfs-tar:` destinations: an image's root filesystem as one flattened tar (as
//! `crane export` writes it), from an image in a layout (the source's own, or the transit copy
//! [`stage`](super::copy::stage) made).
//!
//! The flattener reads every layer twice (its headers, then the data of what survives), so it
//! needs files: a registry or daemon source is staged first, as for an archive. A file
//! destination takes its name only once the whole tar is written and verified (see
//! [`WholeFile`](super::whole_file::WholeFile)); stdout gets the stream as it is made.

use anyhow::Context;

use super::copy::Staged;
use super::local::{unpacker, write_stream_with};
use crate::config::Config;
use crate::progress::Reporter;
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
    write_stream_with(path, "root filesystem tar", reporter.clone(), move |out| {
        flattener.flatten_image(&layout, &image, out).map(drop)
    })
    .await
}
