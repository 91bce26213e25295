//! An HTTP/1.1 client for OCI distribution registries, built to push multi-GB layers through
//! proxies with body limits, with a few MiB of memory, surviving dropped connections.
//!
//! `hoist-registry` speaks the registry side of hoist. It moves blobs and manifests between
//! local files and a registry; it does not know where the files came from (`hoist-docker`
//! spools `docker save` streams, the CLI compresses layers) nor what is inside them
//! (`hoist-unpack` applies layers to a root filesystem). It depends only on `hoist-oci` for
//! the image model: [`hoist_oci::Digest`], [`hoist_oci::Descriptor`], manifests and
//! [`hoist_oci::Reference`]. That crate is re-exported as [`hoist_oci`], so a
//! caller can name the very types this crate's signatures use without depending on a second
//! copy of it.
//!
//! # Main types
//!
//! - [`Client`], built by [`ClientBuilder`]: a cheap-to-clone handle over one connection pool
//!   (hyper 1, HTTP/1.1 only, rustls with the `ring` provider, system + bundled roots plus
//!   any CA file the caller names, and a client certificate when given; a self-signed server
//!   certificate marked as a CA is accepted when it is one of the caller's CA files, for
//!   the names it holds, as Go's TLS clients accept it). Plain HTTP is used
//!   only for loopback hosts (`127.0.0.0/8`, `::1`, exactly `localhost`) and hosts the caller
//!   names insecure, which get HTTPS without certificate verification first and plain HTTP
//!   once they answer the handshake in plain HTTP (as docker's `insecure-registries`).
//! - [`Client::push_blob`] takes a [`BlobSource`] (a spooled file, its digest and size): HEAD
//!   skip (a redirected HEAD is followed; only a 2xx at its end means present),
//!   cross-repository mount (a mount the registry refuses with a 4xx falls back to an upload,
//!   as docker and skopeo do), then a POST / PATCH… / `PUT ?digest=` session. Chunks are
//!   the configured size raised to `OCI-Chunk-Min-Length` and capped at
//!   `OCI-Chunk-Max-Length`; each PATCH streams its file region in 128 KiB reads with
//!   `Content-Length` and an inclusive `Content-Range`. The newest `Location` is always
//!   followed and the server's `Range` is the truth: after a cut connection, a 5xx or a 416
//!   the session is asked where it stands and the upload continues there; a lost session is
//!   restarted (an ambiguous `Range: 0-0` is read as one byte only when exactly one was
//!   acknowledged); an unexplained 413 halves the chunk size and continues. A completing
//!   `PUT` refused as an unknown upload first looks for the blob (an earlier `PUT` whose
//!   answer was lost may have completed it) before sending it again, and its answer may take
//!   longer than the timeout, by the blob's size, while the registry re-hashes it. With
//!   [`ClientBuilder::state_dir`], acknowledged progress is persisted so a later process
//!   continues the same session. [`PushOptions::stop_when`] stops a push between requests
//!   (the chunk in flight is finished, the state saved, the error [`Error::is_stopped`]);
//!   dropping the future instead may cut a chunk, which some registries (distribution 2.8)
//!   answer by forgetting the session. A session that cannot be continued is restarted
//!   from byte 0 and reported ([`Event::Restarted`]). [`Client::push_blobs`] runs several blobs at once, up to
//!   the client's concurrency limit (default 6). A request whose body makes no progress for
//!   the configured timeout is treated as a cut connection.
//! - [`Client::push_remote_blob`] pushes a [`RemoteBlob`] (a blob in another registry)
//!   without a local copy: each PATCH body is a ranged GET of the same window at the source,
//!   a resume re-opens the source at the destination's `Range`, and every byte is hashed the
//!   first time it passes, so the final `PUT` happens only when the digest matched. With a
//!   state directory it is resumed by a later process too: the bytes the destination already
//!   holds are read from the source again and hashed, not sent ([`Event::VerifyingPrefix`]).
//! - [`Client::push_manifest`], [`Client::get_manifest`], [`Client::get_image_manifest`]
//!   (index → platform), [`Client::head_manifest`], [`Client::list_tags`]: received bytes are
//!   verified against the requested digest or `Docker-Content-Digest`; tag pages follow any
//!   RFC 8288 spelling of `rel="next"`.
//! - [`Client::delete_manifest`] deletes by digest, as the distribution spec allows: a tag is
//!   resolved first to the digest of the manifest it serves (fetched and hashed, the
//!   `Docker-Content-Digest` only cross-checked), so every tag on that manifest goes with it. A
//!   missing manifest ([`Error::is_not_found`]) and a registry that does not allow deletes
//!   ([`Error::is_unsupported`]) are told apart.
//! - [`Client::pull_blob`] writes a blob to a temp file of its own beside the sink, resumes
//!   short reads with `Range`, and renames into place only after the digest matched;
//!   [`Client::open_blob_stream`] is a verifying [`tokio::io::AsyncRead`] for the unpacker
//!   that resumes a broken connection by itself.
//! - [`Progress`] delivers typed [`Event`]s without slowing the transfer: byte counts are
//!   dropped when the receiver lags, final states never are.
//! - [`Error`] says who is at fault ([`ErrorKind`]): the registry refused, the registry
//!   misbehaved, the network, local I/O, or the caller's input; with the URL (credentials and
//!   signatures stripped), the HTTP status and the OCI error code. HTML error pages are reduced
//!   to their status line. A TLS certificate that is not trusted, or a server that answers
//!   TLS in plain HTTP, is a transport error that is never retried
//!   ([`Error::is_untrusted_certificate`], [`Error::is_plain_http_server`]); a plain-HTTP
//!   request refused as a TLS-only server refuses one is [`Error::is_plain_http_refused`].
//! - [`protocol`]: the pure functions underneath (challenge parsing, `Location`, `Range`,
//!   chunk planning, response classification), usable and tested without sockets.
//!
//! Credentials come from the caller ([`Credentials`]) or an auth file: a docker `config.json`
//! or a containers `auth.json` (`auths`, `credsStore`, `credHelpers`), the one the caller names
//! or the first of [`default_auth_files`] with an entry for the repository: podman's and
//! skopeo's files, then docker's (honouring `DOCKER_CONFIG`), as skopeo looks. An entry may be
//! for a registry (`quay.io`) or, as `podman login quay.io/team` writes it, for a namespace or
//! repository; the most specific one in a file answers. To log in,
//! [`Client::check_credentials`] asks a registry whether it accepts credentials (`GET /v2/`, as
//! `docker login` does) and [`store_credentials`] keeps them in an auth file as `podman login`
//! does ([`remove_credentials`] as `podman logout`): the file is replaced atomically with mode
//! 0600, and what else it holds is kept; a registry the file hands to a credential helper is
//! kept by that helper instead ([`Kept`]). Basic and Bearer token
//! auth are supported. A Bearer token is asked for the scopes the request needs and any more the
//! registry's challenge names, cached per scope, and fetched again before a request once it has
//! expired; a token server answering 408, 429 or 5xx is asked again as the [`RetryPolicy`]
//! says. An identity token (`identitytoken` in an auth file, or a credential helper's user
//! `<token>`) is an OAuth2 refresh token, exchanged with a form `POST` as docker does, never
//! sent as a password. Secrets live in [`Secret`], whose `Debug` prints `***`, and never reach
//! logs; a server's error message that echoes one back has it replaced by `***`.
//!
//! # Runtime
//!
//! The client runs on Tokio and needs a runtime with IO and time enabled
//! (`Builder::enable_all()`, as `#[tokio::main]` and `#[tokio::test]` give): without time, its
//! timeouts panic ("timers are disabled") at the first request, which the client cannot check
//! beforehand. Its pooled connections are driven by the runtime that opened them, so use a
//! client within the runtime it was first used in, or one that outlives it and keeps running
//! (a multi-threaded runtime keeps driving them while another blocks); with a runtime that
//! is dropped, or a current-thread runtime that is not running, a pooled connection stalls
//! until the timeout. A program that runs several runtimes one after another builds a
//! client in each.
//!
//! What this crate deliberately does not do: HTTP/2, guessing plain HTTP for private
//! addresses, holding a blob or chunk in memory (streamed pushes included), compressing or
//! decompressing layers, or any CLI concerns.
//!
//! # Example
//!
//! The protocol layer, on in-memory values (the network side needs a registry):
//!
//! ```
//! use hoist_registry::protocol::challenge::{Challenge, parse_challenges};
//! use hoist_registry::protocol::chunk::{ChunkLimits, next_chunk, parse_upload_range};
//! use hoist_registry::protocol::response::{Phase, Step, classify};
//!
//! // A proxy advertising a 64 MiB body limit caps a 256 MiB preferred chunk...
//! let limits = ChunkLimits::from_headers(None, Some("67108864"));
//! let chunk = limits.effective(256 << 20);
//! assert_eq!(chunk, 64 << 20);
//! // ...and the next PATCH after the server acknowledged `0-67108863` starts at 64 MiB.
//! let next = parse_upload_range("0-67108863").expect("valid Range").next_offset(true);
//! assert_eq!(next_chunk(next, 100 << 20, chunk), Some((64 << 20, 100 << 20)));
//!
//! // A 416 on a PATCH means "ask the session where it is"; a 404 NAME_UNKNOWN is final.
//! assert_eq!(classify(Phase::Patch, 416, None, None), Step::Resume);
//! assert_eq!(classify(Phase::Open, 404, Some("NAME_UNKNOWN"), None), Step::Fail);
//!
//! // Bearer challenges keep commas inside quoted scopes.
//! let c = parse_challenges(r#"Bearer realm="https://auth.example/token",scope="repository:a:pull,push""#);
//! assert!(matches!(&c[0], Challenge::Bearer { scope: Some(s), .. } if s == "repository:a:pull,push"));
//!
//! // Building a client validates its settings.
//! assert!(hoist_registry::Client::builder().chunk_size(1).build().is_err());
//! ```
//!
//! The common jobs, against a registry at `host` (run as a doctest against a real one):
//! push two blobs from files, each in its own task and in chunks, then the manifest naming
//! them; pull the manifest by tag and a blob into a file, verified.
//!
//! ```
//! use std::path::Path;
//! // The hoist-oci this crate was built with, so its types are the ones the client takes.
//! use hoist_registry::hoist_oci::{AnyManifest, Descriptor, ImageManifest, MediaType, RawJson};
//! use hoist_registry::{BlobSource, Client, Credentials, Progress, PushOptions, Repo};
//!
//! async fn push_and_pull(host: &str, dir: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // One client per process: cheap to clone, Send + Sync. Without `credentials`, it reads
//!     // the auth files (podman's, then docker's config.json, and credential helpers).
//!     let client = Client::builder()
//!         .credentials(Credentials::new("alice", "s3cret"))
//!         .chunk_size(8 << 20) // PATCH bodies of at most 8 MiB
//!         .build()?;
//!     let repo = Repo::new(host, "team/app")?; // or Repo::from_reference(&reference)
//!
//!     # std::fs::write(dir.join("layer.tar.gz"), b"a compressed layer, say")?;
//!     # std::fs::write(dir.join("config.json"), br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#)?;
//!     // Digest and size, hashed by streaming each file through a small buffer.
//!     let layer = BlobSource::from_file(dir.join("layer.tar.gz")).await?;
//!     let config = BlobSource::from_file(dir.join("config.json")).await?;
//!     let mut tasks = Vec::new();
//!     for source in [layer.clone(), config.clone()] {
//!         let (client, repo) = (client.clone(), repo.clone());
//!         tasks.push(tokio::spawn(async move {
//!             // Skipped when the registry has it; resumed where the registry says after a fault.
//!             client.push_blob(&repo, &source, &PushOptions::new(), &Progress::none()).await
//!         }));
//!     }
//!     for task in tasks {
//!         task.await??;
//!     }
//!     let manifest = RawJson::from_value(ImageManifest::new(
//!         Descriptor::new(MediaType::OCI_CONFIG, config.digest, config.size),
//!         vec![Descriptor::new(MediaType::OCI_LAYER_GZIP, layer.digest.clone(), layer.size)],
//!     ))?;
//!     let pushed = client
//!         .push_manifest(&repo, "v1", &MediaType::new(MediaType::OCI_MANIFEST), manifest.bytes())
//!         .await?;
//!     assert_eq!(&pushed, manifest.digest());
//!
//!     // By tag: the bytes are checked against the registry's Docker-Content-Digest.
//!     let AnyManifest::Image(pulled) = client.get_manifest(&repo, "v1").await? else {
//!         return Err("v1 is an index".into()); // get_image_manifest picks a platform
//!     };
//!     let first = &pulled.value().layers[0];
//!     // Into a temp file beside the sink, renamed into place only once the digest matched.
//!     client.pull_blob(&repo, first, &dir.join("pulled.tar.gz"), &Progress::none()).await?;
//!     assert_eq!(BlobSource::from_file(dir.join("pulled.tar.gz")).await?.digest, first.digest);
//!     Ok(())
//! }
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! #     if !hoist_testkit::require_tool("docker-registry") {
//! #         return Ok(());
//! #     }
//! #     let registry = hoist_testkit::Registry::builder()
//! #         .htpasswd("alice", "s3cret")
//! #         .start()
//! #         .map_err(|e| format!("{e:#}"))?;
//! #     let dir = tempfile::tempdir()?;
//! #     tokio::runtime::Runtime::new()?.block_on(push_and_pull(&registry.host(), dir.path()))
//! # }
//! ```

#![deny(missing_docs)]

mod auth;
mod body;
mod builder;
mod client;
mod credentials;
mod document;
mod error;
mod login;
mod manifest;
mod progress;
pub mod protocol;
mod pull;
mod repo;
mod retry;
mod secret;
mod session;
mod source;
mod state;
mod stop;
mod tls;
mod upload;

/// The `hoist-oci` this crate was built with, so types match: the [`hoist_oci::Digest`],
/// [`hoist_oci::Descriptor`] and manifests this crate's signatures take and return are its.
pub use hoist_oci;

pub use builder::{MAX_CONCURRENCY, MIN_CHUNK_SIZE};
pub use client::{Client, ClientBuilder, Repo};
pub use credentials::{Credentials, default_auth_files, default_docker_config_path};
pub use error::{Error, ErrorKind, Result};
pub use login::{Kept, remove_credentials, store_credentials};
pub use manifest::MANIFEST_ACCEPT;
pub use progress::{Event, Progress};
pub use pull::BlobStream;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use source::RemoteBlob;
pub use upload::{BlobSource, PushKind, PushOptions, PushOutcome};

#[cfg(test)]
mod public_api {
    //! What a downstream crate relies on to use the client from a multi-threaded runtime: every
    //! public type is `Debug` and `Send`, the client is `Send + Sync + Clone`, and every future
    //! can go to `tokio::spawn` (with owned arguments moved into the task).
    use super::*;

    fn debug_send<T: std::fmt::Debug + Send>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}
    fn send<F: std::future::Future + Send>(_: F) {}

    #[test]
    fn public_types_are_debug_and_send() {
        debug_send::<BlobSource>();
        debug_send::<BlobStream>();
        debug_send::<Client>();
        debug_send::<ClientBuilder>();
        debug_send::<Credentials>();
        debug_send::<Error>();
        debug_send::<ErrorKind>();
        debug_send::<Event>();
        debug_send::<Progress>();
        debug_send::<PushKind>();
        debug_send::<PushOptions>();
        debug_send::<PushOutcome>();
        debug_send::<RemoteBlob>();
        debug_send::<Repo>();
        debug_send::<RetryPolicy>();
        debug_send::<Secret>();
        shared::<Client>();
        shared::<ClientBuilder>();
        shared::<Progress>();
        shared::<RemoteBlob>();
        shared::<Repo>();
        fn error<E: std::error::Error + Send + Sync + 'static>() {}
        error::<Error>();
    }

    /// Type-checked only: the futures need a registry to run, not to be proved `Send`.
    #[allow(dead_code)]
    async fn futures_are_send(client: Client, repo: Repo, remote: RemoteBlob) {
        let digest = hoist_oci::Digest::sha256_of(b"");
        let desc = hoist_oci::Descriptor::new(hoist_oci::MediaType::OCI_EMPTY, digest.clone(), 0);
        let source = BlobSource {
            path: "blob".into(),
            digest: digest.clone(),
            size: 0,
        };
        let (opts, progress) = (PushOptions::default(), Progress::none());
        let media_type = hoist_oci::MediaType::new(hoist_oci::MediaType::OCI_MANIFEST);
        let platform = hoist_oci::Platform::host();
        send(client.blob_exists(&repo, &digest));
        send(client.mount_blob(&repo, &digest, "other"));
        send(client.push_blob(&repo, &source, &opts, &progress));
        send(client.push_blobs(&repo, std::slice::from_ref(&source), &opts, &progress));
        send(client.push_remote_blob(&repo, &remote, &opts, &progress));
        send(client.pull_blob(&repo, &desc, std::path::Path::new("x"), &progress));
        send(client.open_blob_stream(&repo, &desc));
        send(client.push_manifest(&repo, "v1", &media_type, b"{}"));
        send(client.get_manifest(&repo, "v1"));
        send(client.head_manifest(&repo, "v1"));
        send(client.get_image_manifest(&repo, "v1", &platform));
        send(client.get_config(&repo, &desc));
        send(client.list_tags(&repo));
        send(client.check_credentials("reg.example"));
        send(client.delete_manifest(&repo, "v1"));
    }
}
