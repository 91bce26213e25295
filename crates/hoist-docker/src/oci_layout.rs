//! Daemon <-> OCI layout: export spools straight into a layout, load streams out of one.
//!
//! Both directions go through hoist-oci's docker-archive code: [`hoist_oci::archive::spool`]
//! reads the daemon's `docker save` stream in one pass, storing and verifying every blob as it
//! arrives; [`hoist_oci::archive::write_docker_archive`] writes the legacy archive dockerd 20.10
//! can load, straight into the request body.

use hoist_oci::archive::{self, SpoolOptions, SpooledImage};
use hoist_oci::layout::Layout;
use hoist_oci::{Descriptor, Platform};

use crate::connect::Daemon;
use crate::error::{Error, ErrorKind, Result};
use crate::export::ExportOptions;
use crate::inspect::{ImageInfo, split_tag};
use crate::progress::Progress;

impl Daemon {
    /// The daemon's own platform (`linux/amd64`), from what it said when connecting.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.version.arch.clone(),
            os: self.version.os.clone(),
            ..Platform::default()
        }
    }

    /// Export `names` from the daemon into `layout`: one pass over the daemon's stream, every
    /// layer and config stored as a verified blob (layers uncompressed, as the daemon sent
    /// them), an OCI manifest per image, and a layout tag per `RepoTags` entry. Shared layers
    /// are sent and stored once. Tags are only set once the whole stream verified.
    ///
    /// [`ExportOptions::compress_layers`] compresses layers on the way in (one write per
    /// byte); [`ExportOptions::tag_images`] leaves tagging to the caller. Each layer entry is
    /// reported as [`Progress::Layer`] events (started, bytes, stored with its `diff_id`).
    pub async fn export<P>(
        &self,
        names: &[String],
        layout: &Layout,
        options: &ExportOptions,
        progress: P,
    ) -> Result<Vec<SpooledImage>>
    where
        P: FnMut(Progress) + Send,
    {
        let layout = layout.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut spool_options =
            SpoolOptions::new()
                .tag_images(!options.untagged)
                .on_event(move |event| {
                    // The export may have given up on the events; the spool goes on regardless.
                    let _ = tx.send(event);
                });
        if let Some((compression, level, threads)) = options.compression {
            spool_options = spool_options.compress_layers(compression, level, threads);
        }
        self.export_driven(names, options, progress, Some(rx), move |reader| {
            archive::spool_with(reader, &layout, spool_options)
        })
        .await
    }

    /// Load the image `manifest` (an image manifest in `layout`, or an index, of which the
    /// entry for the daemon's own platform is loaded) into the daemon as `tag`, streaming a
    /// legacy docker-archive written on the fly. Returns what the daemon then reports for
    /// `tag`, after checking its layers are the image's.
    pub async fn load<P>(
        &self,
        layout: &Layout,
        manifest: &Descriptor,
        tag: &str,
        progress: P,
    ) -> Result<ImageInfo>
    where
        P: FnMut(Progress) + Send,
    {
        if split_tag(tag).is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("bad tag {tag:?}: expected REPOSITORY[:TAG]"),
            ));
        }
        // An index (multi-platform image) loads the entry for the daemon's own platform.
        let platform = manifest.media_type.is_index().then(|| self.platform());
        let image = layout
            .image_at(manifest, platform.as_ref())
            .map_err(|e| Error::from_oci("reading the image from the layout", e, false))?;
        let diff_ids = image.config.value().rootfs.diff_ids.clone();
        let writer_layout = layout.clone();
        let images = vec![(image.descriptor.clone(), vec![tag.to_string()])];
        self.load_with(progress, move |out| {
            archive::write_docker_archive(&writer_layout, &images, out)
        })
        .await
        .map_err(|e| e.with_image(tag))?;
        let info = self.inspect(tag).await?;
        if info.diff_ids != diff_ids {
            return Err(Error::new(
                ErrorKind::DaemonFailed,
                format!(
                    "after the load, {tag} has layers {:?} but the image has {:?}",
                    info.diff_ids, diff_ids
                ),
            )
            .with_host(&self.host()));
        }
        Ok(info)
    }
}
