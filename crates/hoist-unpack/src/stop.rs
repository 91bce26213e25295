//! The caller's request to stop an unpack part-way ([`crate::UnpackerBuilder::stop_when`]):
//! asked before every entry, inside tree removals, and by the layer stream before each chunk
//! it hands out ([`crate::stream::ChunkReader`]).

use crate::error::{Error, ErrorKind, Result};

/// The caller's "stop now" ([`crate::UnpackerBuilder::stop_when`]); never set by default.
#[derive(Clone, Default)]
pub(crate) struct Stop(Option<std::sync::Arc<dyn Fn() -> bool + Send + Sync>>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Stop(set)"
        } else {
            "Stop(none)"
        })
    }
}

impl Stop {
    pub(crate) fn new(f: impl Fn() -> bool + Send + Sync + 'static) -> Stop {
        Stop(Some(std::sync::Arc::new(f)))
    }

    /// Whether the caller asked to stop.
    pub(crate) fn asked(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f())
    }

    /// An error once the caller asked to stop.
    pub(crate) fn check(&self) -> Result<()> {
        match self.asked() {
            true => Err(stopped()),
            false => Ok(()),
        }
    }

    /// An error that happened because of the stop (a removal cut short) says so.
    pub(crate) fn explain(&self, e: Error) -> Error {
        match self.asked() {
            true => stopped(),
            false => e,
        }
    }
}

fn stopped() -> Error {
    Error::new(
        ErrorKind::Stopped,
        "stopped on request before the layer was wholly applied",
    )
}
