//! The cache of daemon exports: `CACHE/exports/IMAGE_ID[-PLATFORM]`, one OCI layout per image,
//! staged in a temp directory beside it and moved into place only when complete, so a crash
//! never leaves a half export that looks whole. A broken entry is replaced, a whole one another
//! hoist put there first is used, and an export is only cached under the ID it was inspected as.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_docker::{Daemon, ExportOptions, ExportStop, ImageInfo};
use hoist_oci::archive::{SpoolEvent, SpooledImage};
use hoist_oci::{Descriptor, Image, Layout};

use super::daemon::LayerLines;
use crate::config::Config;
use crate::progress::{LayerState, Reporter};

/// The tag the cached export's image carries in its layout.
const EXPORT_TAG: &str = "image";
/// How long dropping a staged export waits for an export still writing into it to stop (it
/// stops at its next read, then waits for the blob commits it started).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Where the export of the image `info` describes is cached: by image ID, and by platform when
/// one is asked for (with the containerd image store, one ID names every platform of an image).
fn export_dir(config: &Config, info: &ImageInfo) -> PathBuf {
    let name = match &config.platform {
        Some(p) => format!("{}-{}", info.id.hex(), p.to_string().replace('/', "-")),
        None => info.id.hex().to_string(),
    };
    config.cache_dir.join("exports").join(name)
}

/// The cached export of the image `info` describes, if a complete one is there.
pub fn cached_export(config: &Config, info: &ImageInfo) -> Option<(Layout, Image)> {
    open_export(&export_dir(config, info))
}

/// The export cached in `dir`, if it is whole: a layout with its image tagged and every layer
/// blob there at its size. A blob lost or cut short since (deleted by hand, a restore, a disk
/// fault) makes the entry broken, to be exported again and replaced, rather than failing every
/// later command for the image. Content is checked as it is read, as always.
fn open_export(dir: &Path) -> Option<(Layout, Image)> {
    let layout = Layout::open(dir).ok()?;
    let image = layout.image(Some(EXPORT_TAG), None).ok()?;
    for layer in &image.manifest.value().layers {
        if !layout.has_blob(layer).ok()? {
            tracing::warn!(dir = %dir.display(), blob = %layer.digest, "a cached export lost a layer; exporting again");
            return None;
        }
    }
    Some((layout, image))
}

/// An export on its way into the cache: a layout in a temp directory beside its final place
/// (`CACHE/exports/IMAGE_ID`), moved there by [`StagedExport::commit`] once complete, deleted
/// if dropped before. Its blobs can be read while it fills: each is renamed into the layout
/// only when verified.
///
/// The directory is deleted only once nothing writes into it: an export whose future was
/// dropped (a failed push returning early, Ctrl-C) is stopped and waited for first, as its
/// reading thread and blob commits would otherwise go on creating files (and recreating
/// directories) while the directory is removed, leaving a `.partial-*` behind.
pub struct StagedExport {
    /// Whether a platform was asked for (then the export may hold another platform's image
    /// than the one inspected).
    platform_asked: bool,
    /// Stops the export filling this layout, and tells when it has let go of it.
    stop: ExportStop,
    partial: tempfile::TempDir,
    layout_dir: PathBuf,
    dir: PathBuf,
    layout: Layout,
}

impl StagedExport {
    /// A new, empty staged export for the image `info` describes.
    ///
    /// # Errors
    /// Cache directory I/O.
    pub fn create(config: &Config, info: &ImageInfo) -> anyhow::Result<Self> {
        let dir = export_dir(config, info);
        let exports = config.cache_dir.join("exports");
        std::fs::create_dir_all(&exports)
            .with_context(|| format!("creating {}", exports.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(&format!("{}.partial-", info.id.hex()))
            .tempdir_in(&exports)
            .with_context(|| format!("creating a directory in {}", exports.display()))?;
        let layout_dir = partial.path().join("layout");
        let layout = Layout::create(&layout_dir)?;
        Ok(StagedExport {
            platform_asked: config.platform.is_some(),
            stop: ExportStop::new(),
            partial,
            layout_dir,
            dir,
            layout,
        })
    }

    /// The layout being filled.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The handle that stops [`StagedExport::fill`]: the fill then fails, once nothing of the
    /// export writes into the layout any more.
    pub fn stop(&self) -> &ExportStop {
        &self.stop
    }

    /// Stream the image `name` was inspected as (`info`) out of the daemon into the layout, by
    /// its ID, calling `stored(diff_id, blob)` as each
    /// layer's blob is verified and in place (`diff_id` is `None` for a layer the daemon sent
    /// compressed: it is checked once the export is read). Returns the image manifest's
    /// descriptor.
    ///
    /// # Errors
    /// Daemon and spooling errors.
    pub async fn fill(
        &self,
        daemon: &Daemon,
        name: &str,
        info: &ImageInfo,
        options: &ExportOptions,
        reporter: &Reporter,
        mut stored: impl FnMut(Option<&hoist_oci::Digest>, &Descriptor) + Send,
    ) -> anyhow::Result<Descriptor> {
        let mut lines = LayerLines::announce(reporter, info, LayerState::Waiting);
        let options = options.clone().stop_with(&self.stop);
        let spooled = daemon
            .export(&[export_name(info)], &self.layout, &options, |p| {
                let layer = match &p {
                    hoist_docker::Progress::Layer(SpoolEvent::LayerStored {
                        diff_id,
                        blob,
                        ..
                    }) => Some((diff_id.clone(), blob.clone())),
                    _ => None,
                };
                // The line is named by its diff_id before anyone acts on the layer.
                lines.handle(p);
                if let Some((diff_id, blob)) = layer {
                    stored(diff_id.as_ref(), &blob);
                }
            })
            .await
            .with_context(|| format!("exporting `{name}` from the Docker daemon"))?;
        let chosen = the_inspected(&spooled, info, name, &self.layout, self.platform_asked)?;
        Ok(chosen.manifest.clone())
    }

    /// Tag the image `manifest` and move the layout into place under the image ID. Another
    /// hoist may have won the race: then its copy is used, if whole; a broken entry there (a
    /// crash, a disk fault) is replaced, not kept failing every later run. Returns the layout
    /// and the image.
    ///
    /// # Errors
    /// Cache I/O; an unreadable image.
    pub fn commit(self, manifest: &Descriptor) -> anyhow::Result<(Layout, Image)> {
        self.layout.set_tag(EXPORT_TAG, manifest)?;
        let moving = || format!("moving the export to {}", self.dir.display());
        if let Err(e) = std::fs::rename(&self.layout_dir, &self.dir) {
            if !self.dir.exists() {
                return Err(e).with_context(moving);
            }
            if let Some(winner) = open_export(&self.dir) {
                return Ok(winner);
            }
            // Aside into the staging directory, which goes when this returns.
            let aside = self.partial.path().join("broken");
            std::fs::rename(&self.dir, &aside)
                .with_context(|| format!("moving a broken export out of {}", self.dir.display()))?;
            std::fs::rename(&self.layout_dir, &self.dir).with_context(moving)?;
        }
        let dir = self.dir.clone();
        drop(self);
        open_export(&dir).with_context(|| format!("reading the export cached at {}", dir.display()))
    }
}

impl Drop for StagedExport {
    fn drop(&mut self) {
        // Returns at once unless an export still runs (its future was dropped mid-way); the
        // staging directory (`partial`) is removed after this, when the fields drop.
        self.stop.stop();
        if !self.stop.wait(STOP_WAIT) {
            tracing::warn!(
                dir = %self.partial.path().display(),
                "an export still writes into the staged export; it may be left behind"
            );
        }
    }
}

/// What to ask the daemon to export for the image `info` describes: its ID, never the name it
/// was inspected by. A name can be re-tagged between the inspect and the export (a build or
/// pull finishing), and the export would then be of another image, one that may even share
/// every layer and differ only in its config; cached under the inspected ID, it would be handed
/// out as that image from then on. An ID names one image for good.
pub(super) fn export_name(info: &ImageInfo) -> String {
    info.id.to_string()
}

/// The image of an export that `name` was inspected as: the one whose config or manifest is
/// the inspected ID, or whose layers are the inspected ones (with the containerd store, an ID
/// that is an index digest exports platform manifests that are neither). The export is asked
/// for by ID ([`export_name`]), so every image in it belongs to that ID; a lone image that is
/// none of these is refused all the same. With a platform asked for, a lone image is taken as
/// it is (the inspect describes the daemon's default platform).
pub(super) fn the_inspected<'a>(
    spooled: &'a [SpooledImage],
    info: &ImageInfo,
    name: &str,
    layout: &Layout,
    platform_asked: bool,
) -> anyhow::Result<&'a SpooledImage> {
    let is_it = |s: &SpooledImage| {
        s.config.digest == info.id
            || s.manifest.digest == info.id
            || layout
                .read_json::<hoist_oci::ImageConfig>(&s.config)
                .is_ok_and(|c| c.value().rootfs.diff_ids == info.diff_ids)
    };
    match spooled {
        [] => bail!("the daemon's export of `{name}` held no image"),
        [one] if platform_asked || is_it(one) => Ok(one),
        [_] => bail!(
            "the daemon exported another image than `{name}` was a moment before (re-tagged by \
             a build or pull?); run the command again"
        ),
        many => many.iter().find(|s| is_it(s)).with_context(|| {
            format!(
                "the daemon exported {} images for `{name}`; name one by tag or ID",
                many.len()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use hoist_oci::{Digest, MediaType, RawJson};

    use super::*;

    fn spooled(config: &[u8]) -> SpooledImage {
        let desc = |bytes: &[u8]| {
            Descriptor::new(
                MediaType::new(MediaType::OCI_CONFIG),
                Digest::sha256_of(bytes),
                bytes.len() as u64,
            )
        };
        SpooledImage {
            tags: Vec::new(),
            manifest: desc(&[config, b"-manifest"].concat()),
            config: desc(config),
        }
    }

    fn info(id: Digest) -> ImageInfo {
        let mut info = ImageInfo::new(id);
        info.architecture = "amd64".into();
        info.os = "linux".into();
        info
    }

    #[test]
    fn the_inspected_image_is_picked_out_of_many() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(tmp.path().join("l")).expect("layout");
        let pick = |images: &[SpooledImage], info: &ImageInfo, platform: bool| {
            the_inspected(images, info, "app", &layout, platform).cloned()
        };
        let (a, b) = (spooled(b"a"), spooled(b"b"));
        let unrelated = info(Digest::sha256_of(b"zzz"));
        // One image that is not the inspected one: `app` moved in between; never cached.
        let one = std::slice::from_ref(&a);
        let e = pick(one, &unrelated, false).expect_err("re-tagged");
        assert!(e.to_string().contains("another image"), "{e}");
        // ... unless a platform was asked for (the inspect speaks for the default platform).
        assert_eq!(pick(one, &unrelated, true).expect("platform"), a);
        // By ID: config digest (classic store) or manifest digest (containerd store).
        let both = [a.clone(), b.clone()];
        assert_eq!(
            pick(&both, &info(b.config.digest.clone()), false).expect("b"),
            b
        );
        assert_eq!(
            pick(&both, &info(a.manifest.digest.clone()), false).expect("a"),
            a
        );
        assert_eq!(
            pick(one, &info(a.config.digest.clone()), false).expect("a"),
            a
        );
        // By layers: the config in the layout lists the inspected diff_ids.
        let layer = Digest::sha256_of(b"layer");
        let config = RawJson::<hoist_oci::ImageConfig>::parse(
            format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
            )
            .into_bytes(),
        )
        .expect("config");
        layout.write_json(&config).expect("write config");
        let c = SpooledImage {
            tags: Vec::new(),
            manifest: spooled(b"c").manifest,
            config: config.descriptor(MediaType::new(MediaType::OCI_CONFIG)),
        };
        let mut by_layers = unrelated.clone();
        by_layers.diff_ids = vec![layer];
        assert_eq!(
            pick(std::slice::from_ref(&c), &by_layers, false).expect("c"),
            c
        );
        // Many and none of them: a clear error, never a guess.
        let e = pick(&both, &unrelated, false).expect_err("ambiguous");
        assert!(e.to_string().contains("2 images"), "{e}");
        assert!(pick(&[], &unrelated, false).is_err());
    }

    #[test]
    fn a_broken_cached_export_is_replaced_and_a_whole_one_reused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = crate::config::test_config(tmp.path(), &[]);
        let image_id = Digest::sha256_of(b"image");
        let info = info(image_id);
        // What a crash or a disk fault leaves: a directory that is not a whole export.
        let dir = export_dir(&config, &info);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), b"{oops").expect("broken");
        assert!(cached_export(&config, &info).is_none());
        let staged_image = |seed| {
            let staged = StagedExport::create(&config, &info).expect("stage");
            let spec = hoist_testkit::synth::ImageSpec::uniform(
                1,
                1000,
                hoist_oci::Compression::Gzip,
                seed,
            );
            let made = hoist_testkit::synth::write_oci_layout(staged.layout().root(), "x", &spec)
                .expect("synthetic image");
            let manifest = Descriptor::new(
                MediaType::new(MediaType::OCI_MANIFEST),
                made.manifest_digest,
                made.manifest_size,
            );
            (staged, manifest)
        };
        let (staged, manifest) = staged_image(1);
        let (_, image) = staged.commit(&manifest).expect("replaces the broken one");
        assert_eq!(image.descriptor.digest, manifest.digest);
        let (layout, _) = cached_export(&config, &info).expect("cached");
        // A layer blob lost since makes the entry broken too; put back, it is whole again.
        let layer = &image.manifest.value().layers[0];
        let path = layout.blob_path(&layer.digest);
        let aside = tmp.path().join("aside");
        std::fs::rename(&path, &aside).expect("lose the layer");
        assert!(cached_export(&config, &info).is_none(), "a lost layer");
        std::fs::rename(&aside, &path).expect("restore the layer");
        assert!(cached_export(&config, &info).is_some());
        // A whole export already there (another hoist won the race) is the one used.
        let (staged, other) = staged_image(2);
        let (_, image) = staged.commit(&other).expect("the winner's copy");
        assert_eq!(image.descriptor.digest, manifest.digest);
        // Nothing staged is left behind; a platform gets its own entry.
        let names: Vec<String> = std::fs::read_dir(dir.parent().expect("exports"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![info.id.hex().to_string()]);
        let arm = crate::config::test_config(tmp.path(), &["--platform", "linux/arm64"]);
        assert_ne!(export_dir(&arm, &info), dir);
        assert!(cached_export(&arm, &info).is_none());
    }
}
