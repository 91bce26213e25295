//! How [`super::spool_with`] stores an archive: layer compression while spooling, tagging, and
//! per-layer events.

use std::fmt;

use crate::codec::Compression;
use crate::{Descriptor, Digest, Error, Platform, Result};

/// Something the spooler did with one layer entry of the archive, reported while it streams.
///
/// Layer entries are the archive's files whose content is a tar (or an already compressed
/// blob); configs and metadata are not reported. `index` counts layer entries in stream order
/// from 0, so the events of one entry can be told apart. `docker save` sends the layers of an
/// image base first, but nothing here relies on it: [`SpoolEvent::LayerStored`] names the
/// layer by its blob, and by its `diff_id` when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "a handful of events per layer; boxing buys nothing"
)]
pub enum SpoolEvent {
    /// A layer entry began.
    LayerStarted {
        /// The entry's ordinal among layer entries.
        index: usize,
        /// Its path in the archive (`<id>/layer.tar`, `blobs/sha256/<hex>`).
        path: String,
        /// Its size in the archive (uncompressed for a layer `docker save` wrote).
        size: u64,
        /// Whether it is being compressed on the way into the layout.
        compressing: bool,
    },
    /// Bytes of a layer entry read so far (reported about every [`PROGRESS_STEP`] bytes).
    LayerProgress {
        /// The entry's ordinal among layer entries.
        index: usize,
        /// Bytes of the entry read.
        bytes: u64,
    },
    /// A layer entry is stored in the layout and verified.
    LayerStored {
        /// The entry's ordinal among layer entries.
        index: usize,
        /// The digest of the uncompressed tar, when it is known as the layer is stored: the
        /// layer came uncompressed, or was compressed on its way in. `None` for a layer stored
        /// compressed as it came (the containerd image store sends its layers so); its
        /// uncompressed digest is checked against the image config once the archive is read.
        diff_id: Option<Digest>,
        /// The stored blob (its media type says its compression).
        blob: Descriptor,
    },
    /// A name of an image in the archive is a docker tag that a layout cannot hold as a tag
    /// (outside the `org.opencontainers.image.ref.name` grammar, as `app:1.0-` is): the image
    /// is stored without it (untagged, when none of its names fits) and the name stays in
    /// [`super::SpooledImage::tags`]. Only with [`SpoolOptions::tag_images`] on.
    TagRefused {
        /// The name as the archive gives it.
        tag: String,
        /// The image's manifest (or index), in the layout.
        manifest: Descriptor,
        /// Why the layout refuses it.
        reason: String,
    },
}

/// How often [`SpoolEvent::LayerProgress`] is reported: every 4 MiB of a layer.
pub const PROGRESS_STEP: u64 = 4 << 20;

/// Options for [`super::spool_with`]. The default is what [`super::spool`] does: layers stored
/// as the archive holds them, a tag per `RepoTags` entry, no events.
#[must_use]
pub struct SpoolOptions {
    pub(super) compression: Option<LayerCompression>,
    pub(super) tag_images: bool,
    pub(super) platform: Option<Platform>,
    pub(super) events: Option<Box<dyn FnMut(SpoolEvent) + Send>>,
}

/// How uncompressed layers are compressed while they are spooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LayerCompression {
    pub(super) compression: Compression,
    pub(super) level: Option<i32>,
    pub(super) threads: usize,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            compression: None,
            tag_images: true,
            platform: None,
            events: None,
        }
    }
}

impl fmt::Debug for SpoolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolOptions")
            .field("compression", &self.compression)
            .field("tag_images", &self.tag_images)
            .field("platform", &self.platform)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl SpoolOptions {
    /// Layers as the archive holds them, images tagged, no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compress every uncompressed layer with `compression` at `level` (the codec's default
    /// when `None`) on `threads` threads while it streams in: one write per byte, the blob
    /// digest and the `diff_id` computed in the same pass, and the `diff_id` checked against
    /// the image config as for an uncompressed layer. Layers the archive already holds
    /// compressed are stored as they are. [`Compression::None`] turns compression off.
    pub fn compress_layers(
        mut self,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Self {
        self.compression = (compression != Compression::None).then_some(LayerCompression {
            compression,
            level,
            threads: threads.max(1),
        });
        self
    }

    /// Whether to tag each image in the layout with its `RepoTags` (default) or leave the
    /// layout's `index.json` untouched, so the caller tags the returned manifests itself.
    pub fn tag_images(mut self, tag: bool) -> Self {
        self.tag_images = tag;
        self
    }

    /// For an OCI archive (an `index.json`, no `manifest.json`) whose entries are indexes:
    /// the platform whose image is checked for completeness and reported (the host's when
    /// `None`), as [`crate::Layout::image`] picks it. An archive of a multi-platform image often
    /// holds the blobs of some platforms only.
    pub fn platform(mut self, platform: Option<Platform>) -> Self {
        self.platform = platform;
        self
    }

    /// Report [`SpoolEvent`]s to `f` (called on the spooling thread; keep it cheap).
    pub fn on_event(mut self, f: impl FnMut(SpoolEvent) + Send + 'static) -> Self {
        self.events = Some(Box::new(f));
        self
    }

    /// Check the options before any byte is read: a compression level out of range is an
    /// error here rather than at the first layer.
    pub(super) fn validate(&self) -> Result<()> {
        if let Some(c) = &self.compression
            && let Some(level) = c.level
            && !c.compression.level_range().contains(&level)
        {
            return Err(Error::invalid(format!(
                "{} level {level} is outside {:?}",
                c.compression,
                c.compression.level_range()
            )));
        }
        Ok(())
    }

    pub(super) fn emit(&mut self, event: SpoolEvent) {
        if let Some(f) = self.events.as_mut() {
            f(event);
        }
    }
}
