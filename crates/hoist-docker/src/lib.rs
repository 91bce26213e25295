//! Stream container images out of, and into, a local Docker daemon with constant memory.
//!
//! `hoist-docker` is how hoist talks to `dockerd`. It sits beside `hoist-registry` and
//! `hoist-unpack` on top of `hoist-oci`, and depends on neither sibling: the CLI crate wires
//! them together (`hoist push docker-image registry/x` exports here and pushes there).
//!
//! The main types:
//!
//! - [`Daemon`] — a cheap-to-clone handle to a connected daemon, made by [`Daemon::connect`]
//!   from [`ConnectOptions`]: an explicit socket path, a `DOCKER_HOST`-style address
//!   (`unix://`, plain `tcp://`), `DOCKER_HOST` itself, the docker CLI's current context
//!   (`docker context use rootless`), or `/var/run/docker.sock`. Connecting
//!   asks the daemon for its API version and speaks the older of its and ours, so Debian's
//!   dockerd 20.10 is spoken to in API 1.41 even though bollard defaults to 1.53.
//! - [`Daemon::inspect`] → [`ImageInfo`]: ID, tags, repo digests, size, layer diff_ids and
//!   platform, to decide what to export and which layers a registry already has.
//! - [`Daemon::export`] — stream `GET /images/get` for one or several images straight into
//!   hoist-oci's one-pass docker-archive spooler, producing an OCI layout (layers uncompressed
//!   as the daemon sent them, or compressed on the way in with
//!   [`ExportOptions::compress_layers`] so each byte is written once; every blob verified;
//!   tags set only at the end, or left to the caller). Each layer is reported as it streams
//!   ([`Progress::Layer`]).
//! - [`Daemon::load`] — stream a layout image into `POST /images/load` as a legacy
//!   docker-archive written on the fly by hoist-oci (gzip/zstd layers are decompressed on the
//!   way; for an index, the daemon's own platform is picked), tag it, and check the daemon's
//!   layers.
//! - [`Daemon::export_archive`] / [`Daemon::export_with`] — stream `GET /images/get` (one or
//!   several images; the daemon writes shared layers once) into a file or any blocking
//!   consumer such as hoist-oci's docker-archive spooler. [`ExportOptions::platform`] selects
//!   one platform where the daemon's API allows it (>= 1.48); older daemons hold one platform
//!   per image, so the image is exported as it is when that is the platform asked for, and the
//!   request fails with a clear [`ErrorKind::NotFound`] error naming the image's platform when
//!   it is not.
//! - [`Daemon::load_archive`] / [`Daemon::load_with`] — stream a docker-archive, written on the
//!   fly by a blocking producer, into `POST /images/load`. dockerd 20.10 cannot load OCI-layout
//!   tars, so hoist always loads the legacy docker-archive format.
//! - [`Progress`] — reported at least every quarter second during transfers: `Preparing`
//!   while dockerd spools the image to its own disk before the first byte (3-10 s per GiB on
//!   the machines we measured), then `Receiving`/`Sending` byte counts, `Importing` while the
//!   daemon unpacks a load, and `Done`.
//! - [`Error`] — the one error type, with an [`ErrorKind`] saying who is at fault: the daemon
//!   is not running, the socket is not ours to open, the image is missing, the API is too
//!   old, the daemon refused or failed, or local input/I/O was bad. bollard and hyper types
//!   never appear in this crate's API.
//!
//! Memory: nothing here holds an archive, a layer or a chunk list in memory. An export is read
//! by the thread that spools it, one hyper chunk at a time; a load goes through a bounded pipe
//! (4 chunks of 128 KiB) into the request body, so memory does not grow with the image. Bytes
//! are verified by the consumer that spools them (hoist-oci hashes every blob while writing
//! it).
//!
//! What this crate does NOT do: pull or push through the daemon, run containers, or talk TLS
//! or SSH to remote daemons. It compresses nothing itself: compression while exporting is
//! hoist-oci's codec, run by the spooler.
//!
//! # Example
//!
//! ```
//! use hoist_docker::{ApiVersion, ConnectOptions, Endpoint};
//!
//! // Address resolution: an explicit host wins over DOCKER_HOST; tcp gets the default port.
//! let endpoint = ConnectOptions::new().use_env(false).host("tcp://127.0.0.1").endpoint()?;
//! assert_eq!(endpoint, Endpoint::Tcp("127.0.0.1:2375".into()));
//! let socket = ConnectOptions::new().socket("/run/user/1000/docker.sock").endpoint()?;
//! assert_eq!(socket.to_string(), "unix:///run/user/1000/docker.sock");
//!
//! // Unsupported transports are refused up front, with credentials kept out of the message.
//! let Err(err) = Endpoint::parse("ssh://admin:hunter2@box") else { panic!("ssh accepted") };
//! assert!(err.is_invalid_input());
//! assert!(!err.to_string().contains("hunter2"));
//!
//! // A dockerd 20.10 (API 1.41) cannot select a platform on export.
//! assert!(ApiVersion::parse("1.41")? < ApiVersion::PLATFORM_SELECTION);
//! # Ok::<(), hoist_docker::Error>(())
//! ```
//!
//! Exporting an image to a file, reporting progress (needs a running daemon):
//!
//! ```no_run
//! use hoist_docker::{ConnectOptions, Daemon, ExportOptions, Progress};
//! # async fn run() -> Result<(), hoist_docker::Error> {
//! let daemon = Daemon::connect(ConnectOptions::new()).await?;
//! let info = daemon.inspect("my-image:latest").await?;
//! println!("{} has {} layers", info.id, info.diff_ids.len());
//! let file = std::fs::File::create("/tmp/my-image.tar").expect("create");
//! let names = vec!["my-image:latest".to_string()];
//! let (_file, bytes) = daemon
//!     .export_archive(&names, &ExportOptions::new(), file, |p| {
//!         if let Progress::Preparing { elapsed } = p {
//!             eprintln!("daemon preparing the export ({elapsed:?})");
//!         }
//!     })
//!     .await?;
//! println!("{bytes} bytes");
//! # Ok(())
//! # }
//! ```
//!
//! The common jobs with an OCI layout (run as a doctest against a private dockerd when root):
//! export an image into a layout, its layers zstd-compressed on the way in, from a spawned
//! task; then load the layout's image back under another tag. `ConnectOptions::new()` finds
//! the daemon as the docker CLI does (`DOCKER_HOST`, the current context, the default socket).
//!
//! ```
//! use hoist_docker::{ConnectOptions, Daemon, ExportOptions, Progress};
//! use hoist_oci::{Compression, Layout};
//!
//! async fn round_trip(options: ConnectOptions, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // Cheap to clone, Send + Sync: one per process, clones into tasks.
//!     let daemon = Daemon::connect(options).await?;
//!     let layout = Layout::open_or_create(dir)?;
//!     let export = tokio::spawn({
//!         let (daemon, layout) = (daemon.clone(), layout.clone());
//!         async move {
//!             let options = ExportOptions::new().compress_layers(Compression::Zstd, None, 2);
//!             let names = ["app:latest".to_string()];
//!             daemon
//!                 .export(&names, &layout, &options, |progress| {
//!                     if let Progress::Layer(event) = progress {
//!                         eprintln!("{event:?}");
//!                     }
//!                 })
//!                 .await
//!         }
//!     });
//!     // Every blob verified, the layout tagged `app:latest` once all of it was.
//!     let images = export.await??;
//!     assert_eq!(layout.tags()?, ["app:latest"]);
//!
//!     // Streamed as a docker-archive written on the fly; the daemon's layers are checked.
//!     let loaded = daemon.load(&layout, &images[0].manifest, "app:copy", |_| {}).await?;
//!     assert!(loaded.repo_tags.contains(&"app:copy".to_string())); // and app:latest: same ID
//!     Ok(())
//! }
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! #     if !hoist_testkit::require_root() || !hoist_testkit::require_tool("dockerd") {
//! #         return Ok(());
//! #     }
//! #     let dockerd = hoist_testkit::Dockerd::start().map_err(|e| format!("{e:#}"))?;
//! #     dockerd.build_layers(&[2], "app:latest").map_err(|e| format!("{e:#}"))?;
//! #     let options = ConnectOptions::new().socket(dockerd.socket_path());
//! #     let dir = tempfile::tempdir()?;
//! #     let layout = dir.path().join("layout");
//! #     tokio::runtime::Runtime::new()?.block_on(round_trip(options, &layout))
//! # }
//! ```

#![deny(missing_docs)]

mod classify;
mod connect;
mod context;
mod direct;
mod error;
mod export;
mod inspect;
mod load;
mod oci_layout;
mod pipe;
mod progress;

pub use connect::{ApiVersion, ConnectOptions, DEFAULT_SOCKET, Daemon, DaemonVersion, Endpoint};
pub use error::{Error, ErrorKind, Result};
pub use export::{ExportOptions, ExportReader, ExportStop};
pub use inspect::ImageInfo;
pub use load::{LoadWriter, Loaded};
pub use progress::Progress;

/// What an export into a layout produced per image (re-exported from `hoist_oci::archive`).
pub use hoist_oci::archive::SpooledImage;

/// The `hoist-oci` this crate was built with, so types match: the [`hoist_oci::Layout`],
/// [`hoist_oci::Platform`], [`hoist_oci::Digest`] and [`hoist_oci::Compression`] this crate's
/// signatures use are its.
pub use hoist_oci;

#[cfg(test)]
mod public_api {
    //! What a downstream crate relies on to use this one from a multi-threaded runtime: every
    //! public type is `Debug` and `Send`, the handles are `Sync` and `Clone`, and every future
    //! can go to `tokio::spawn` (with owned arguments moved into the task).
    use super::*;

    fn debug_send<T: std::fmt::Debug + Send>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}
    fn send<F: std::future::Future + Send>(_: F) {}

    #[test]
    fn public_types_are_debug_and_send() {
        debug_send::<ApiVersion>();
        debug_send::<ConnectOptions>();
        debug_send::<Daemon>();
        debug_send::<DaemonVersion>();
        debug_send::<Endpoint>();
        debug_send::<Error>();
        debug_send::<ErrorKind>();
        debug_send::<ExportOptions>();
        debug_send::<ExportReader>();
        debug_send::<ExportStop>();
        debug_send::<ImageInfo>();
        debug_send::<LoadWriter>();
        debug_send::<Loaded>();
        debug_send::<Progress>();
        debug_send::<SpooledImage>();
        shared::<Daemon>();
        shared::<ExportStop>();
        shared::<ExportOptions>();
        // Errors go across tasks and into `Box<dyn Error + Send + Sync>`.
        fn error<E: std::error::Error + Send + Sync + 'static>() {}
        error::<Error>();
    }

    /// Type-checked only: building these futures needs a daemon, proving them `Send` does not.
    #[allow(dead_code, clippy::unwrap_used)]
    async fn futures_are_send(daemon: Daemon, layout: hoist_oci::Layout) {
        let names = vec!["a:b".to_string()];
        let options = ExportOptions::new();
        let desc = layout.resolve(None).unwrap();
        send(Daemon::connect(ConnectOptions::new()));
        send(daemon.ping());
        send(daemon.inspect("a:b"));
        send(daemon.exists("a:b"));
        send(daemon.tag("a:b", "c:d"));
        send(daemon.export(&names, &layout, &options, |_| {}));
        send(daemon.export_archive(&names, &options, std::io::sink(), |_| {}));
        send(daemon.export_with(&names, &options, |_| {}, |_reader| Ok(())));
        send(daemon.load(&layout, &desc, "a:b", |_| {}));
        send(daemon.load_archive(std::io::empty(), |_| {}));
        send(daemon.load_with(|_| {}, |_writer| Ok(())));
    }
}
