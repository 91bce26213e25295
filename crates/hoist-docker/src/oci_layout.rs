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
    /// `tag`, after checking its layers are the image's. A compressed layer is decompressed
    /// into a temp file beside the layout's blobs, or in the system's temp directory when the
    /// layout cannot be written to; nothing in the layout changes.
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
            let spill = spill_dir(&writer_layout);
            archive::write_docker_archive_spilling(&writer_layout, &images, &spill, out)
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

/// Where a load decompresses a compressed layer on its way into the archive: beside the
/// layout's blobs (the same disk, with room for the image), unless the layout cannot be
/// written to (read-only, or another user's), then the system's temp directory.
fn spill_dir(layout: &Layout) -> std::path::PathBuf {
    let blobs = layout.root().join("blobs");
    let probe = blobs.join(format!(".hoist-spill-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            blobs
        }
        Err(_) => std::env::temp_dir(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_that_cannot_be_written_spills_into_the_temp_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(dir.path().join("image")).expect("layout");
        assert_eq!(spill_dir(&layout), layout.root().join("blobs"));
        // No probe is left behind.
        let left: Vec<_> = std::fs::read_dir(layout.root().join("blobs"))
            .expect("blobs")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".hoist"))
            .collect();
        assert!(left.is_empty());
        // Even root cannot create a file under a file.
        let blobs = layout.root().join("blobs");
        std::fs::remove_dir_all(&blobs).expect("remove blobs");
        std::fs::write(&blobs, b"not a directory").expect("a file in its place");
        assert_eq!(spill_dir(&layout), std::env::temp_dir());
    }
}
