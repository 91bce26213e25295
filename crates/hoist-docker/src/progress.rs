//! Progress reports for transfers, so a long export or load never looks hung.

use std::time::Duration;

use hoist_oci::archive::SpoolEvent;

/// How often a transfer reports while nothing else happens.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// Where a transfer is. Reported through the callback given to
/// [`Daemon::export_archive`](crate::Daemon::export_archive) and friends: at least every
/// quarter second while the transfer runs, whatever the daemon does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "a few events per layer and a tick every quarter second"
)]
pub enum Progress {
    /// Export: the daemon is preparing the archive and has sent nothing yet. dockerd 20.10
    /// writes the whole image to its own temporary directory first (3-10 s per GiB on the
    /// machines we measured).
    Preparing {
        /// Time since the request was sent.
        elapsed: Duration,
    },
    /// Export: bytes of the archive received so far.
    Receiving {
        /// Bytes received.
        bytes: u64,
    },
    /// Load: bytes of the archive sent to the daemon so far.
    Sending {
        /// Bytes sent.
        bytes: u64,
    },
    /// Load: everything is sent; the daemon is unpacking the layers.
    Importing {
        /// Time since the last byte was sent.
        elapsed: Duration,
    },
    /// Export into a layout ([`Daemon::export`](crate::Daemon::export)): a layer of the
    /// stream started, progressed, or was stored and verified (with its `diff_id` and blob).
    Layer(SpoolEvent),
    /// The transfer finished and was verified.
    Done {
        /// Bytes moved in total.
        bytes: u64,
    },
}
