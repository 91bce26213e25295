//! The CLI's own progress events. Library events are mapped into these, so the renderers do not
//! depend on any library's types.

use serde::Serialize;

/// Something that happened during a transfer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A transfer begins.
    Start {
        /// What is being done: `push`, `copy`, `pull`, ...
        operation: String,
        /// The source, as the user wrote it.
        source: String,
        /// The destination, as the user wrote it.
        destination: String,
    },
    /// A layer (or other blob) is known; it starts out waiting.
    Layer {
        /// A short, stable name (a short digest or `layer N`).
        id: String,
        /// Its size, when known (an export's layers are not yet compressed).
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// A layer moved to a new state.
    State {
        /// The layer.
        id: String,
        /// Its new state.
        state: LayerState,
    },
    /// Bytes moved for a layer.
    Progress {
        /// The layer.
        id: String,
        /// Bytes done so far.
        done: u64,
        /// Bytes in all, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A request for a layer failed and will be retried.
    Retry {
        /// The layer.
        id: String,
        /// Seconds until the retry.
        in_secs: u64,
        /// Why (already safe to print).
        reason: String,
        /// Which attempt comes next (1-based).
        attempt: u32,
    },
    /// A layer's line is known by a new name from now on (an exported layer's diff_id becomes
    /// its compressed digest).
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// A note worth telling the user (e.g. hoist lowered the chunk size after a 413).
    Message {
        /// The text.
        text: String,
    },
    /// The transfer ended.
    Finish {
        /// Whether it succeeded.
        ok: bool,
    },
}

/// Where a layer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "pull, unpack and layout writes report these once wired"
)]
pub enum LayerState {
    /// Queued.
    Waiting,
    /// The Docker daemon is preparing the export (it sends nothing for seconds meanwhile).
    Preparing,
    /// Being exported from the Docker daemon.
    Exporting,
    /// Being compressed.
    Compressing,
    /// Being uploaded.
    Pushing,
    /// Being downloaded.
    Pulling,
    /// Being unpacked into a root filesystem.
    Unpacking,
    /// Being read for a first pass that writes nothing yet (a `rootfs-tar:` merges the layers'
    /// files before it writes the tar).
    Reading,
    /// Being written (to a layout or an archive).
    Writing,
    /// The destination already had it.
    Skipped,
    /// Mounted from another repository on the same registry.
    Mounted,
    /// Waiting to retry (see the latest [`Event::Retry`]).
    Retrying,
    /// Finished.
    Done,
    /// Failed for good.
    Failed,
    /// Stopped on request (Ctrl-C) between two chunks: the next run continues it.
    Stopped,
}

impl LayerState {
    /// The word shown for the state.
    pub fn label(self) -> &'static str {
        match self {
            LayerState::Waiting => "waiting",
            LayerState::Preparing => "preparing",
            LayerState::Exporting => "exporting",
            LayerState::Compressing => "compressing",
            LayerState::Pushing => "pushing",
            LayerState::Pulling => "pulling",
            LayerState::Unpacking => "unpacking",
            LayerState::Reading => "reading",
            LayerState::Writing => "writing",
            LayerState::Skipped => "skipped (exists)",
            LayerState::Mounted => "mounted",
            LayerState::Retrying => "retrying",
            LayerState::Done => "done",
            LayerState::Failed => "failed",
            LayerState::Stopped => "stopped",
        }
    }

    /// Whether the layer needs nothing more in this run.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            LayerState::Skipped
                | LayerState::Mounted
                | LayerState::Done
                | LayerState::Failed
                | LayerState::Stopped
        )
    }

    /// Whether the layer ended without getting there (failed, or stopped on request).
    pub fn is_cut_short(self) -> bool {
        matches!(self, LayerState::Failed | LayerState::Stopped)
    }

    /// Whether this state moves the image's bytes to the destination (what the total line and the
    /// throughput count; exporting, compressing and a first pass's reading are preparation).
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            LayerState::Pushing | LayerState::Pulling | LayerState::Unpacking | LayerState::Writing
        )
    }

    /// Whether bytes are moving in this state (a bar is shown).
    pub fn is_moving(self) -> bool {
        matches!(
            self,
            LayerState::Exporting
                | LayerState::Compressing
                | LayerState::Pushing
                | LayerState::Pulling
                | LayerState::Unpacking
                | LayerState::Reading
                | LayerState::Writing
        )
    }
}
