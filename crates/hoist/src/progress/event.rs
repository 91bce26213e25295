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
    /// A layer of the image is known; it starts out waiting. Said once per layer (announcing
    /// it again only updates its size, and is not passed on).
    Layer {
        /// A short, stable name (a short digest or `layer N`).
        id: String,
        /// Its size, when known (an export's layers are not yet compressed).
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// A line that is no layer is known: a stream carrying the whole image (`export` from the
    /// Docker daemon, `load` into it, an `archive` read or written). It has states and bytes
    /// like a layer, but is not counted among the layers.
    Stream {
        /// Its name.
        id: String,
        /// Its size, when known.
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
    /// A layer's transfer continues where an earlier run left it: `done` bytes are at the
    /// destination already, sent by that run, not by this one.
    Resume {
        /// The layer.
        id: String,
        /// Bytes already there.
        done: u64,
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
        /// Whether a signal (Ctrl-C, SIGTERM) stopped it; `ok` is then false.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
        /// Why it failed: the error's message, made safe to print.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The error's causes, outermost first, each made safe to print (none when it
        /// succeeded).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        causes: Vec<String>,
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
    /// Being compressed into a copy that a later step sends (a push's).
    Compressing,
    /// Being uploaded to the destination registry.
    Pushing,
    /// Being downloaded into the destination layout.
    Pulling,
    /// Being downloaded for a later step: into a transit copy (to recompress it, or to write an
    /// archive, a load or a root filesystem tar from), or into an archive or a load hoist
    /// streams, whose own line counts the bytes.
    Fetching,
    /// Being unpacked into a root filesystem.
    Unpacking,
    /// Being read for a step that writes nothing to the destination yet: a `rootfs-tar:`'s
    /// first pass (it merges the layers' files before it writes the tar), or a docker archive
    /// spooled into a transit copy.
    Reading,
    /// Being written to the destination: a layout (compressed on the way when the layout
    /// wants it so), an archive, or the daemon's load.
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

/// How the work ended, as the last line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It succeeded.
    Finished,
    /// It failed.
    Failed,
    /// A signal stopped it.
    Interrupted,
}

impl Ending {
    /// How an [`Event::Finish`] with `ok` and `interrupted` ended.
    pub fn of(ok: bool, interrupted: bool) -> Self {
        match (ok, interrupted) {
            (true, _) => Ending::Finished,
            (false, false) => Ending::Failed,
            (false, true) => Ending::Interrupted,
        }
    }

    /// The word the last line starts its time with: "finished in 0:09".
    pub fn word(self) -> &'static str {
        match self {
            Ending::Finished => "finished",
            Ending::Failed => "failed",
            Ending::Interrupted => "interrupted",
        }
    }
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
            LayerState::Fetching => "fetching",
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

    /// Whether this state delivers the image's bytes to the destination: what "moved", the
    /// total line and the throughput count. Exporting, compressing, fetching and reading are
    /// preparation.
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
                | LayerState::Fetching
                | LayerState::Unpacking
                | LayerState::Reading
                | LayerState::Writing
        )
    }
}
