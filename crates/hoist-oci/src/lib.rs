//! The image model every other hoist crate stands on.
//!
//! `hoist-oci` is the leaf of the hoist workspace. It knows what a container image *is* — content
//! addressed blobs tied together by JSON documents — and nothing about where images live: the
//! Docker daemon, registries and root filesystems are the business of `hoist-docker`,
//! `hoist-registry` and `hoist-unpack`, which all build on the types here.
//!
//! The main types:
//!
//! - [`Digest`] — validated when parsed (`sha256`/`sha512`, lowercase hex of the right length), so
//!   a digest is always safe to use as a file name. [`Digester`] hashes incrementally and
//!   [`VerifyingReader`] checks a stream against a digest at end of stream.
//! - [`MediaType`] and [`Descriptor`] — the typed pointers between blobs.
//! - [`ImageManifest`], [`ImageIndex`], [`ImageConfig`] — each received document is held in a
//!   [`RawJson`] next to the exact bytes it came from; its digest is always over those bytes.
//! - [`Compression`] — gzip, zstd or none, detected by magic bytes.
//! - [`Error`] — the one error type, with an [`ErrorKind`] saying what went wrong.
//!
//! The crate's central promise: nothing here holds a layer in memory. Layers move through
//! bounded buffers from one file or stream to another, hashed on the way.
//!
//! # Example
//!
//! ```
//! use hoist_oci::{Digest, RawJson, ImageManifest, VerifyingReader};
//! use std::io::Read;
//!
//! // Digests are validated when parsed; a path-like string is rejected.
//! assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
//!
//! // A verifying reader fails at end of stream when the bytes are not what was promised.
//! let data = b"layer bytes";
//! let digest = Digest::sha256_of(data);
//! let mut reader = VerifyingReader::new(&data[..], digest.clone(), Some(data.len() as u64));
//! let mut out = Vec::new();
//! reader.read_to_end(&mut out)?;
//! assert!(reader.is_verified());
//!
//! // A parsed manifest keeps the bytes it came from.
//! let text = format!(
//!     r#"{{"schemaVersion": 2, "config": {{"mediaType": "application/vnd.oci.image.config.v1+json",
//!        "digest": "{digest}", "size": 11}}, "layers": []}}"#
//! );
//! let manifest: RawJson<ImageManifest> = RawJson::parse(text.clone().into_bytes())?;
//! assert_eq!(manifest.bytes(), text.as_bytes());
//! assert_eq!(manifest.digest(), &Digest::sha256_of(text.as_bytes()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod codec;
mod descriptor;
pub mod digest;
mod error;
mod manifest;
mod media_type;
mod platform;
pub mod reference;

pub use codec::Compression;
pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, Digester, HashingWriter, VerifyingReader};
pub use error::{Error, ErrorKind, Result};
pub use manifest::{
    AnyManifest, ImageConfig, ImageIndex, ImageManifest, MAX_JSON_SIZE, RawJson, RootFs,
    RuntimeConfig,
};
pub use media_type::MediaType;
pub use reference::Reference;
