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
//! - [`Reference`] — `[host[:port]/]path[:tag][@digest]`, normalized the way docker does
//!   (`alpine` is `docker.io/library/alpine`); [`Platform`] parsing and matching with the
//!   variant rules, and [`ImageIndex::select`] to pick a manifest for a platform.
//! - [`Layout`] — the OCI image layout on disk, hoist's local store. Blobs are written through
//!   a [`BlobWriter`] (temp file, hashed while written, verified, fsynced, renamed) and read
//!   through a [`VerifyingReader`]; tags live in `index.json` and change atomically. A
//!   [`Claim`] marks a layout in use, so a failed writer removes only a layout it created
//!   and nobody else uses.
//! - [`archive`] — [`archive::spool`] reads a `docker save` stream (legacy or Docker >= 25;
//!   plain or compressed whole with gzip, zstd, xz or bzip2; a layer in xz or bzip2, which OCI
//!   has no media type for, is decompressed on its way in) in one pass into a layout, checking
//!   every layer against its config's `diff_ids`;
//!   [`archive::write_docker_archive`] streams the legacy format back out for `docker load`.
//! - [`codec`] — [`Compression`] detected by magic bytes, [`codec::decoder`] for any layer,
//!   and [`codec::Compressor`], which yields blob digest and `diff_id` in one pass;
//!   [`Layout::layer_writer`] does the same straight into a layout, hashing each side once.
//! - [`convert`] — an image manifest or index rewritten from OCI to Docker v2 schema 2 or
//!   back ([`convert::convert_manifest`], [`convert::convert_index`]): new bytes and digest,
//!   the same blobs.
//! - [`ImageVariants`] — several compressions of each layer kept per layer and chosen per
//!   layer, never as combinations of whole chains.
//! - [`Error`] — the one error type, with an [`ErrorKind`] saying what went wrong.
//!
//! The crate's central promise: nothing here holds a layer in memory. Layers move through
//! bounded buffers from one file or stream to another, hashed on the way; only manifests,
//! configs and the archive's `manifest.json` are read into memory, capped at
//! [`MAX_JSON_SIZE`]. Spooling a 1 GiB docker archive (four 256 MiB layers) with the `spool`
//! example peaks at about 4 MiB of RSS (3.6-4.2 MiB, release build).
//!
//! What it deliberately does not do: talk to daemons or registries, unpack layers onto a
//! filesystem, or garbage-collect unreferenced blobs in a layout.
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
//!
//! // References are normalized; Display is the canonical form.
//! let r: hoist_oci::Reference = "alpine:3.19".parse()?;
//! assert_eq!(r.to_string(), "docker.io/library/alpine:3.19");
//! assert_eq!(r.registry_api_host(), "registry-1.docker.io");
//!
//! // A layer compressed in one pass yields both digests, and decodes back by sniffing.
//! let tar = vec![7u8; 10_000];
//! let mut blob = Vec::new();
//! let info = hoist_oci::codec::compress(&tar[..], &mut blob, hoist_oci::Compression::Zstd, None, 1)?;
//! assert_eq!(info.diff_id, Digest::sha256_of(&tar));
//! assert_eq!(info.digest, Digest::sha256_of(&blob));
//! let mut back = Vec::new();
//! hoist_oci::codec::decoder(&blob[..])?.read_to_end(&mut back)?;
//! assert_eq!(back, tar);
//!
//! // A layout stores verified blobs and tags.
//! let dir = tempfile::tempdir()?;
//! let layout = hoist_oci::Layout::create(dir.path())?;
//! let (digest, size) = layout.write_blob(&blob[..], None)?;
//! let desc = hoist_oci::Descriptor::new(hoist_oci::MediaType::OCI_LAYER_ZSTD, digest, size);
//! assert!(layout.has_blob(&desc)?);
//! layout.write_json(&manifest)?;
//! layout.set_tag("v1", &manifest.descriptor(hoist_oci::MediaType::OCI_MANIFEST))?;
//! assert_eq!(layout.tags()?, vec!["v1"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The common jobs on a layout: build an image from a layer tar, read a tag back, verify its
//! blobs, hand it to `docker load` as a docker-archive (and spool one back), and make a zstd
//! variant for a registry. Every layer streams from file to file; none is held in memory.
//!
//! ```
//! use std::fs::File;
//! use std::io::Write;
//! use hoist_oci::archive::{spool, write_docker_archive};
//! use hoist_oci::{
//!     CompressOptions, Compression, Descriptor, ImageConfig, ImageManifest, Layout, MediaType,
//!     Platform, RawJson, RootFs,
//! };
//! # let tmp = tempfile::tempdir()?;
//! # let (dir, other_dir, archive_path) =
//! #     (tmp.path().join("app"), tmp.path().join("copy"), tmp.path().join("app.tar"));
//! # let mut tar = tar::Builder::new(Vec::new());
//! # let mut header = tar::Header::new_gnu();
//! # header.set_size(5);
//! # header.set_mode(0o644);
//! # header.set_uid(0);
//! # header.set_gid(0);
//! # header.set_entry_type(tar::EntryType::Regular);
//! # tar.append_data(&mut header, "etc/motd", &b"hello"[..])?;
//! # let layer_tar = tar.into_inner()?;
//!
//! // Build: the layer is gzipped into the layout (blob digest and diff_id in one pass), then
//! // the config and manifest are stored with their exact bytes, and the tag set last.
//! let layout = Layout::create(&dir)?;
//! let mut writer = layout.layer_writer(Compression::Gzip, None, 1)?;
//! writer.write_all(&layer_tar)?; // or std::io::copy from a file
//! let layer = writer.finish()?.commit()?;
//! let platform = Platform::host();
//! let config = RawJson::from_value(ImageConfig {
//!     architecture: platform.architecture.clone(),
//!     os: platform.os.clone(),
//!     rootfs: RootFs::new(vec![layer.diff_id.clone()]),
//!     ..ImageConfig::default()
//! })?;
//! layout.write_json(&config)?;
//! let manifest = RawJson::from_value(ImageManifest::new(
//!     config.descriptor(MediaType::OCI_CONFIG),
//!     vec![Descriptor::new(MediaType::oci_layer(Compression::Gzip), layer.digest, layer.size)],
//! ))?;
//! layout.write_json(&manifest)?;
//! let tagged = manifest.descriptor(MediaType::OCI_MANIFEST);
//! layout.set_tag("v1", &tagged)?;
//!
//! // Read a tag back (an index is followed to the host's platform) and verify its blobs.
//! let layout = Layout::open(&dir)?;
//! let image = layout.image(Some("v1"), None)?;
//! assert_eq!(image.config.value().rootfs.diff_ids.len(), 1);
//! for blob in image.manifest.value().layers.iter().chain([&image.manifest.value().config]) {
//!     layout.verify_blob(blob)?; // rehashes the file; fails on any changed byte
//! }
//!
//! // A docker-archive for `docker load` (layers decompressed on the way), and back.
//! let names = vec!["example/app:v1".to_string()];
//! write_docker_archive(&layout, &[(tagged, names)], File::create(&archive_path)?)?;
//! let other = Layout::create(&other_dir)?;
//! let spooled = spool(File::open(&archive_path)?, &other)?;
//! assert_eq!(spooled[0].tags, ["example/app:v1"]);
//!
//! // The same image with zstd layers (stored untagged; tag it if you want to keep it).
//! let options = CompressOptions { compression: Compression::Zstd, level: None, threads: 2 };
//! let zstd = layout.compress_image(&image, &options, |_diff_id| None)?;
//! assert_eq!(zstd.manifest.value().layers[0].media_type, MediaType::OCI_LAYER_ZSTD);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod archive;
pub mod codec;
pub mod convert;
mod descriptor;
pub mod digest;
mod error;
mod frames;
pub mod layout;
mod manifest;
mod media_type;
mod platform;
pub mod reference;
#[cfg(test)]
mod testutil;
pub mod variants;
mod writeback;

pub use codec::Compression;
pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, Digester, HashingWriter, VerifyingReader};
pub use error::{Error, ErrorKind, Result};
pub use layout::{
    BlobWriter, Claim, CompressOptions, CompressedBlob, Image, LayerWriter, Layout, LayoutEntry,
};
pub use manifest::{
    AnyManifest, ImageConfig, ImageIndex, ImageManifest, MAX_JSON_SIZE, RawJson, RootFs,
    RuntimeConfig,
};
pub use media_type::MediaType;
pub use reference::Reference;
pub use variants::{ImageVariants, LayerVariants};
pub use writeback::WriteBehind;

#[cfg(test)]
mod thread_safety {
    //! The handles other crates move into `spawn_blocking` must stay `Send` (and `Sync` where
    //! shared).
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        send::<crate::Layout>();
        sync::<crate::Layout>();
        send::<crate::BlobWriter>();
        send::<crate::codec::Compressor<std::fs::File>>();
        send::<crate::LayerWriter>();
        send::<crate::CompressedBlob>();
        send::<crate::VerifyingReader<std::fs::File>>();
        send::<crate::Error>();
        sync::<crate::Error>();
        send::<crate::Reference>();
        sync::<crate::ImageVariants>();
    }

    fn debug<T: std::fmt::Debug>() {}

    /// A user can `{:?}` anything this crate hands out (no type here compiled before
    /// `Digester`, `HashingWriter` and `Compressor` implemented `Debug`).
    #[test]
    fn public_types_are_debug() {
        use crate::*;
        debug::<Algorithm>();
        debug::<AnyManifest>();
        debug::<BlobWriter>();
        debug::<Claim>();
        debug::<CompressOptions>();
        debug::<CompressedBlob>();
        debug::<Compression>();
        debug::<Descriptor>();
        debug::<Digest>();
        debug::<Digester>();
        debug::<Error>();
        debug::<ErrorKind>();
        debug::<HashingWriter<Vec<u8>>>();
        debug::<Image>();
        debug::<ImageConfig>();
        debug::<ImageIndex>();
        debug::<ImageManifest>();
        debug::<ImageVariants>();
        debug::<LayerVariants>();
        debug::<LayerWriter>();
        debug::<Layout>();
        debug::<LayoutEntry>();
        debug::<MediaType>();
        debug::<Platform>();
        debug::<RawJson<ImageManifest>>();
        debug::<Reference>();
        debug::<RootFs>();
        debug::<RuntimeConfig>();
        debug::<VerifyingReader<std::fs::File>>();
        debug::<WriteBehind>();
        debug::<codec::CompressedInfo>();
        debug::<convert::ManifestFormat>();
        debug::<convert::Converted<ImageManifest>>();
        debug::<codec::Compressor<Vec<u8>>>();
        debug::<archive::SpoolEvent>();
        debug::<archive::SpoolOptions>();
        debug::<archive::SpooledImage>();
    }
}
