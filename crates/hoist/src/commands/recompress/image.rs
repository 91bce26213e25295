//! One image's recompression: each layer it lists kept, found at the destination in its final
//! form, or decompressed, checked against its `diff_id` and compressed into the layout the
//! new layers go to.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use anyhow::bail;
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, Digest, ImageManifest, MediaType, RawJson};

use super::{Present, Target, final_form, needs_recompression, oci_manifest};
use crate::commands::daemon::{compress_one, remember};
use crate::commands::local::{Counting, same_dir};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};

/// One image's recompression from one layout into another (or the same).
pub(super) struct Recompression<'a> {
    pub(super) config: &'a Config,
    /// Where the image's blobs are.
    pub(super) from: &'a Layout,
    /// Where the new layers go, and every other blob the destination lacks.
    pub(super) into: &'a Layout,
    pub(super) reporter: &'a Reporter,
    /// Whether `into` is the destination (a layout), so a layer written there is done; else
    /// it waits for its push.
    pub(super) last_step: bool,
    /// Blobs the destination is known to have (asked while staging).
    pub(super) present: Present,
    /// Kept layers the registry lacks, left in `from` for the push to read there (`into`
    /// being a transit layout, a copy into it would be written only to be read once).
    pub(super) kept_in_source: Mutex<HashSet<Digest>>,
}

impl Recompression<'_> {
    /// The image with its layers recompressed: its config and every layer it lists are in
    /// `into` or at the destination already (a layer found there is neither compressed nor
    /// copied); its manifest is stored in `into`.
    pub(super) async fn run(&self, image: &Image, target: &Target<'_>) -> anyhow::Result<Image> {
        let source = oci_manifest(&image.manifest)?;
        let m = source.value();
        let diff_ids = &image.config.value().rootfs.diff_ids;
        check_diff_ids(&image.descriptor.digest, m, diff_ids)?;
        let same = same_dir(self.from.root(), self.into.root());
        let mut layers = Vec::with_capacity(m.layers.len());
        // A layer the image lists more than once (an empty one often is) is done once.
        let mut done: HashMap<Digest, Descriptor> = HashMap::new();
        for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
            if let Some(again) = done.get(&layer.digest) {
                layers.push(again.clone());
                continue;
            }
            let result = self.one_layer(layer, diff_id, same, target).await?;
            done.insert(layer.digest.clone(), result.clone());
            layers.push(result);
        }
        // The config is small: always beside the layers, for the push to read.
        if !same && !self.into.has_blob(&m.config)? {
            self.copy_blob(&m.config, None).await?;
        }
        let manifest = RawJson::from_value(ImageManifest {
            layers,
            ..m.clone()
        })?;
        Ok(Image {
            descriptor: image.descriptor.with_content(
                MediaType::OCI_MANIFEST,
                manifest.digest().clone(),
                manifest.bytes().len() as u64,
            ),
            manifest,
            config: image.config.clone(),
        })
    }

    /// One layer in its final form: kept (copied into `into` when the destination lacks it),
    /// found at the destination as remembered, or compressed into `into`.
    async fn one_layer(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        same: bool,
        target: &Target<'_>,
    ) -> anyhow::Result<Descriptor> {
        let id = layer.digest.to_string();
        self.reporter.send(Event::Layer {
            id: id.clone(),
            size: Some(layer.size),
        });
        if !needs_recompression(layer, self.config.compression) {
            if let Some(state) = self.present.state(&layer.digest) {
                // Found at the destination (or mounted there) while staging.
                self.reporter.state(&id, state);
            } else if same {
                // Already beside the new layers: a push reports it, a layout has it.
                if self.last_step {
                    self.reporter.state(&id, LayerState::Skipped);
                }
            } else if let Some(state) = self.has(target, layer).await? {
                self.reporter.state(&id, state);
            } else if self.last_step {
                self.copy_blob(layer, Some(&id)).await?;
            } else {
                if let Ok(mut kept) = self.kept_in_source.lock() {
                    kept.insert(layer.digest.clone());
                }
                self.reporter.state(&id, LayerState::Waiting);
            }
            return Ok(layer.clone());
        }
        if let Some(known) = final_form(self.config, layer, diff_id)
            && let Some(state) = self.has(target, &known).await?
        {
            self.rename(&id, &known.digest);
            self.reporter.state(&known.digest.to_string(), state);
            return Ok(known);
        }
        // Compressed into the destination layout, it is being written there.
        let compressing = match self.last_step {
            true => LayerState::Writing,
            false => LayerState::Compressing,
        };
        self.reporter.state(&id, compressing);
        let made = compress_one(
            self.config,
            (self.from, self.into),
            layer,
            diff_id,
            self.reporter,
            &id,
        )
        .await?;
        remember(self.config, diff_id, &made)?;
        self.rename(&id, &made.digest);
        let state = match self.last_step {
            true => LayerState::Done,
            false => LayerState::Waiting,
        };
        self.reporter.state(&made.digest.to_string(), state);
        Ok(made)
    }

    /// Whether the destination has `blob`, said as the state to report (skipped, or mounted
    /// while staging): known from staging, else asked.
    async fn has(
        &self,
        target: &Target<'_>,
        blob: &Descriptor,
    ) -> anyhow::Result<Option<LayerState>> {
        if let Some(state) = self.present.state(&blob.digest) {
            return Ok(Some(state));
        }
        Ok(target.has(blob).await?.then_some(LayerState::Skipped))
    }

    /// Copy a blob kept as it is from `from` to `into`, verified on the way; progress on line
    /// `id` when it has one.
    async fn copy_blob(&self, blob: &Descriptor, id: Option<&str>) -> anyhow::Result<()> {
        let (from, into, blob) = (self.from.clone(), self.into.clone(), blob.clone());
        let (reporter, id) = (self.reporter.clone(), id.map(str::to_string));
        tokio::task::spawn_blocking(move || {
            let reader = from.open_blob(&blob)?;
            match &id {
                Some(id) => {
                    reporter.state(id, LayerState::Writing);
                    into.write_blob(Counting::new(reader, &reporter, id, blob.size), Some(&blob))?;
                    reporter.state(id, LayerState::Done);
                }
                None => {
                    into.write_blob(reader, Some(&blob))?;
                }
            }
            anyhow::Ok(())
        })
        .await?
    }

    fn rename(&self, from: &str, to: &Digest) {
        if from != to.to_string() {
            self.reporter.send(Event::Rename {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
    }
}

/// Fail unless the config lists one diff_id per layer (each layer is checked against its own).
pub(super) fn check_diff_ids(
    image: &Digest,
    m: &ImageManifest,
    diff_ids: &[Digest],
) -> anyhow::Result<()> {
    if diff_ids.len() != m.layers.len() {
        bail!(
            "image {image} lists {} layers but its config lists {} diff_ids",
            m.layers.len(),
            diff_ids.len()
        );
    }
    Ok(())
}
