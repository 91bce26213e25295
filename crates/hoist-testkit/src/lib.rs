//! Real test infrastructure for hoist: the actual registry, nginx and Docker daemon, run
//! privately, plus a fault-injecting proxy and deterministic synthetic images.
//!
//! hoist moves images between Docker daemons, registries, OCI layouts and root filesystems. Its
//! tests talk to the real programs that do those jobs in production rather than to mocks, and
//! this crate is how they get them: every component is started on a free loopback port (or a
//! private unix socket) in its own temp directory, and everything is killed with its process
//! group and removed when the guard value drops, also when a test panics. Nothing touches a system-wide service.
//!
//! The main pieces:
//!
//! - [`require_tool`] / [`require_root`] — the skip rule. A test that cannot run here prints a
//!   loud `SKIP: ...` line naming the missing package and returns; with `CI=true` the same case
//!   panics, so CI never passes by skipping.
//! - [`ChildGuard`] — the process guard under everything: own process group, stdout/stderr to a
//!   log file whose tail is put in startup errors, SIGTERM then SIGKILL and reap on drop.
//! - [`Registry`] — Debian's `docker-registry` (distribution 2.8) with a generated config:
//!   filesystem storage, deletes enabled (or turned off), optional htpasswd auth, token auth,
//!   TLS and relative URLs; restartable on the same port and storage.
//! - [`TlsFiles`] — a CA and a server certificate for `127.0.0.1`/`localhost`/`::1`, generated
//!   in-process (rcgen + ring); [`TokenServer`] — a token endpoint issuing ES256 JWTs the real
//!   registry verifies, granting per-repository scopes and counting what it issued.
//! - [`Nginx`] — a reverse proxy with a body limit (`client_max_body_size`), request buffering
//!   on or off, and optional `OCI-Chunk-Max-Length` / `OCI-Chunk-Min-Length` headers, the shape
//!   of a CDN-fronted registry.
//! - [`Dockerd`] — a private `dockerd` (20.10, API 1.41) on a unix socket with its data-root in
//!   a temp dir; [`Dockerd::docker`] gives the matching client, [`Dockerd::import_rootfs`] and
//!   [`Dockerd::build_layers`] make images without internet. Mounts are detached on drop.
//! - [`FaultProxy`] — a scripted HTTP/1.1 proxy in front of a registry or nginx: cuts a request
//!   after N body bytes, answers the k-th matching request with a canned status, stalls,
//!   rewrites `Location`, truncates or corrupts a response, and records per request what it
//!   forwarded, so tests can assert how much a client re-sent.
//! - [`synth`] — deterministic (seeded) images: [`write_layer_tar`], [`write_oci_layout`] and
//!   [`write_docker_archive`] from an [`ImageSpec`] of [`LayerSpec`]s (file count, size, random
//!   or text payload, gzip/zstd/none, whiteouts, opaque dirs, symlinks, hardlinks, long names).
//!   Written by hand, not with hoist-oci's layout code, so they are an independent fixture;
//!   payload is generated in 64 KiB chunks and streamed through encoders into files, so GiB
//!   images take constant memory.
//! - [`GatedRelay`] — a TCP relay in front of a daemon's unix socket that holds one kind of
//!   answer part-way until the test opens the gate.
//! - [`hostile`] — the hostile-layer corpus, each layer with the outcome a safe unpacker must
//!   give; [`rawtar`] writes the names and sizes `tar::Builder` refuses, and snapshots trees.
//! - [`secrets`] — the ledger of every credential the kit hands out, and the scan `cargo xtask
//!   ci` runs over captured test output.
//! - [`http_get`] / [`http_request`] — a tiny blocking HTTP/1.1 client for probes and asserts.
//! - [`as_nobody`] — running a command, or re-running one test of the current test binary, as
//!   the unprivileged user `nobody`, skipping loudly when `nobody` cannot start it.
//!
//! The kit is blocking `std` code (threads, `std::net`, `std::process`) so it works from sync
//! and async tests alike; call it from `spawn_blocking` or before entering a runtime.
//!
//! What it deliberately does not do: it is not a registry or Docker client (that is what the
//! crates under test are for), it never downloads anything, and it depends on `hoist-oci` only
//! for plain types, so it stays an independent witness for the code it tests.
//!
//! # Example
//!
//! ```
//! use hoist_testkit::{Extras, LayerSpec, Payload, parse_response, require_tool, write_layer_tar};
//!
//! // The skip rule: `sh` is always there, so this is true (and prints nothing).
//! assert!(require_tool("sh"));
//!
//! // A small synthetic layer, in memory: same seed, same bytes.
//! let spec = LayerSpec::new(3, 3000)
//!     .payload(Payload::Text)
//!     .extras(Extras { symlinks: 1, ..Extras::default() });
//! let tar_bytes = write_layer_tar(&spec, 7, Vec::new())?;
//! assert_eq!(tar_bytes, write_layer_tar(&spec, 7, Vec::new())?);
//! let mut archive = tar::Archive::new(&tar_bytes[..]);
//! let files = archive
//!     .entries()?
//!     .filter_map(|e| e.ok())
//!     .filter(|e| e.header().entry_type().is_file())
//!     .map(|e| e.size())
//!     .collect::<Vec<_>>();
//! assert_eq!(files, vec![1000, 1000, 1000]);
//!
//! // The HTTP helper's parser, on an in-memory response.
//! let raw = b"HTTP/1.1 202 Accepted\r\nRange: 0-99\r\nContent-Length: 0\r\n\r\n";
//! let resp = parse_response(raw, false)?;
//! assert_eq!((resp.status, resp.header("range")), (202, Some("0-99")));
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! A test using a real component:
//!
//! ```no_run
//! use hoist_testkit::{Nginx, Registry, http_get, require_tool};
//!
//! if !require_tool("docker-registry") || !require_tool("nginx") {
//!     return Ok(());
//! }
//! let registry = Registry::start()?;
//! let proxy = Nginx::builder(registry.addr()).max_body_size(64 << 20).start()?;
//! assert_eq!(http_get(proxy.addr(), "/v2/")?.status, 200);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! A fault plan: drop the second chunk upload after 1 MiB, then answer the next manifest PUT
//! with a 503 carrying `Retry-After`, and check how much the client re-sent.
//!
//! ```no_run
//! use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry};
//!
//! let registry = Registry::start()?;
//! let proxy = FaultProxy::start(
//!     registry.addr(),
//!     vec![
//!         FaultRule::new("PATCH", "/blobs/uploads/", 2, FaultAction::CutAfterBodyBytes(1 << 20)),
//!         FaultRule::new(
//!             "PUT",
//!             "/manifests/",
//!             1,
//!             FaultAction::Respond {
//!                 status: 503,
//!                 headers: vec![("Retry-After".into(), "1".into())],
//!                 body: String::new(),
//!             },
//!         ),
//!     ],
//! )?;
//! // ... push through proxy.host() with the client under test ...
//! let resent: u64 = proxy.total_body_bytes_forwarded();
//! assert_eq!(proxy.faults_injected(), 2);
//! # let _ = resent;
//! # Ok::<(), anyhow::Error>(())
//! ```

#![deny(missing_docs)]

pub mod as_nobody;
mod dockerd;
mod fault;
pub mod hostile;
mod http;
mod nginx;
mod process;
pub mod rawtar;
mod registry;
mod relay;
pub mod secrets;
mod skip;
pub mod synth;
mod tls;
mod token;

pub use dockerd::Dockerd;
pub use fault::{FaultAction, FaultProxy, FaultRule, RequestRecord};
pub use http::{HttpResponse, http_get, http_request, parse_response};
pub use nginx::{Nginx, NginxBuilder};
pub use process::{
    ChildGuard, free_port, log_tail, mode_under_umask, pid_alive, port_open, rerun_test,
};
pub use registry::{Registry, RegistryBuilder};
pub use relay::{AfterGate, GatedRelay};
pub use skip::{find_tool, in_ci, package_for, require_root, require_tool, skip};
pub use synth::{
    Extras, ImageSpec, LayerSpec, Payload, SynthImage, write_docker_archive, write_layer_tar,
    write_oci_layout,
};
pub use tls::{TLS_NAMES, TlsFiles};
pub use token::{REGISTRY_LEEWAY_SECS, TokenAuth, TokenServer, TokenServerBuilder};
