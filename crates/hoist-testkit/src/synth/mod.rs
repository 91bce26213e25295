//! Deterministic synthetic images: seeded layer tars, OCI layouts and docker-archives, written by
//! hand with constant memory whatever their size.
//!
//! Naming rules inside a layer (so tests can predict the merged filesystem):
//!
//! - regular file `i` is `data/NN/fIIIIII.bin` (or `.txt` for text payload), `NN = i % 16`; the
//!   names do not depend on the seed, so a later layer overwrites an earlier layer's files;
//! - whiteout `k` deletes the regular file with index `files + k` (one that only exists when an
//!   earlier layer had more files): entry `data/NN/.wh.fJJJJJJ.bin`;
//! - opaque dir `k` is `opq/dK/` with a `.wh..wh..opq` marker and one file `opq/dK/from-SEED`,
//!   hiding what earlier layers put there;
//! - symlink `k` is `links/sK -> ../data/NN/fJJJJJJ.bin` (a regular file of this layer);
//! - hardlink `k` is `links/hK`, linked to a regular file of this layer (needs `files > 0`);
//! - long name `k` is a file with a 200+ byte path under `long/` (GNU long-name records).

mod archive;
mod multi;
mod oci;

pub use archive::write_docker_archive;
pub use multi::{MultiPlatformImage, write_multi_platform_layout};
pub use oci::{RawLayer, write_oci_layout, write_raw_oci_layout};

use hoist_oci::{Compression, Descriptor, Digest};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// Fixed modification time of every entry (2023-11-14), so output is byte-for-byte reproducible.
pub const MTIME: u64 = 1_700_000_000;

/// What the bytes of regular files look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// Incompressible pseudo-random bytes.
    #[default]
    Random,
    /// Text-like lines of words: compresses several-fold, like source trees and docs.
    Text,
}

/// Special entries to add to a layer (counts; see the module docs for names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extras {
    /// Whiteout entries deleting files of earlier layers.
    pub whiteouts: usize,
    /// Opaque directories.
    pub opaque_dirs: usize,
    /// Relative symlinks to this layer's files.
    pub symlinks: usize,
    /// Hard links to this layer's files.
    pub hardlinks: usize,
    /// Files with paths longer than 100 bytes.
    pub long_names: usize,
}

/// One layer: `files` regular files holding `bytes` payload bytes in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// Number of regular files.
    pub files: usize,
    /// Total payload bytes, spread evenly over the files.
    pub bytes: u64,
    /// Random or text payload.
    pub payload: Payload,
    /// How the blob is compressed in an OCI layout (docker-archives are always uncompressed).
    pub compression: Compression,
    /// Whiteouts, symlinks and the like.
    pub extras: Extras,
}

impl LayerSpec {
    /// `files` random files totalling `bytes`, gzip-compressed, no extras.
    pub fn new(files: usize, bytes: u64) -> LayerSpec {
        LayerSpec {
            files,
            bytes,
            payload: Payload::Random,
            compression: Compression::Gzip,
            extras: Extras::default(),
        }
    }

    /// Use this payload kind.
    #[must_use]
    pub fn payload(mut self, payload: Payload) -> LayerSpec {
        self.payload = payload;
        self
    }

    /// Use this compression.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> LayerSpec {
        self.compression = compression;
        self
    }

    /// Add these special entries.
    #[must_use]
    pub fn extras(mut self, extras: Extras) -> LayerSpec {
        self.extras = extras;
        self
    }
}

/// A whole image: its layers, bottom first, and the seed everything is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Layers, bottom first.
    pub layers: Vec<LayerSpec>,
    /// Seed for every byte of payload (layer `i` uses [`ImageSpec::layer_seed`]).
    pub seed: u64,
}

impl ImageSpec {
    /// `layers` layers of `bytes_each` random bytes in 4 files, with the given compression.
    pub fn uniform(layers: usize, bytes_each: u64, compression: Compression, seed: u64) -> Self {
        ImageSpec {
            layers: (0..layers)
                .map(|_| LayerSpec::new(4, bytes_each).compression(compression))
                .collect(),
            seed,
        }
    }

    /// The seed of layer `index`.
    pub fn layer_seed(&self, index: usize) -> u64 {
        mix(self.seed, index as u64 + 1)
    }

    /// Total payload bytes over all layers.
    pub fn payload_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }
}

/// What was written: the digests a test compares the code under test against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthImage {
    /// OCI layout: digest of the image manifest. Docker archive: digest of `manifest.json`.
    pub manifest_digest: Digest,
    /// Size of that manifest document in bytes.
    pub manifest_size: u64,
    /// Digest of the image config blob.
    pub config_digest: Digest,
    /// Size of the config blob.
    pub config_size: u64,
    /// Layer descriptors as stored (compressed blobs in a layout, `layer.tar` in an archive).
    pub layers: Vec<Descriptor>,
    /// Digests of the uncompressed layer tars, as in the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Digest>,
}

/// A splitmix64 step: derives independent seeds from (seed, salt).
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Generates `remaining` payload bytes chunk by chunk (constant memory).
struct PayloadReader {
    rng: fastrand::Rng,
    kind: Payload,
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

const CHUNK: usize = 64 * 1024;
const WORDS: &[&str] = &[
    "layer",
    "image",
    "registry",
    "digest",
    "manifest",
    "config",
    "blob",
    "upload",
    "chunk",
    "stream",
    "hoist",
    "container",
    "root",
    "file",
    "system",
    "the",
    "a",
    "of",
    "and",
    "to",
    "fn",
    "let",
    "mut",
    "return",
    "struct",
    "impl",
    "pub",
    "use",
    "match",
    "if",
    "else",
    "0",
    "1",
    "42",
    "{",
    "}",
    "(",
    ")",
    ";",
    "=",
];

impl PayloadReader {
    fn new(seed: u64, kind: Payload, len: u64) -> Self {
        PayloadReader {
            rng: fastrand::Rng::with_seed(seed),
            kind,
            remaining: len,
            buf: Vec::with_capacity(CHUNK + 64),
            pos: 0,
        }
    }

    fn refill(&mut self) {
        let want = self.remaining.min(CHUNK as u64) as usize;
        self.buf.resize(want, 0);
        self.pos = 0;
        match self.kind {
            // Bulk fill: fastrand is built optimised even in debug profiles, a per-byte loop
            // here is not.
            Payload::Random => self.rng.fill(&mut self.buf),
            Payload::Text => {
                // Splice random 1-4 KiB runs of a fixed text table: compressible like text,
                // deterministic, and a memcpy per run.
                let table = text_table();
                let mut at = 0;
                while at < want {
                    let run = self.rng.usize(1024..4096).min(want - at);
                    let start = self.rng.usize(..table.len() - run);
                    self.buf[at..at + run].copy_from_slice(&table[start..start + run]);
                    at += run;
                }
            }
        }
    }
}

/// 256 KiB of word salad, built once per process from a fixed seed.
fn text_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = fastrand::Rng::with_seed(0x7e47);
        let mut t = Vec::with_capacity(TEXT_TABLE + 64);
        while t.len() < TEXT_TABLE {
            let words = rng.usize(3..12);
            for w in 0..words {
                if w > 0 {
                    t.push(b' ');
                }
                t.extend_from_slice(WORDS[rng.usize(..WORDS.len())].as_bytes());
            }
            t.push(b'\n');
        }
        t
    })
}

const TEXT_TABLE: usize = 256 * 1024;

impl Read for PayloadReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.refill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file_path(i: usize, payload: Payload) -> String {
    let ext = match payload {
        Payload::Random => "bin",
        Payload::Text => "txt",
    };
    format!("data/{:02}/f{i:06}.{ext}", i % 16)
}

/// Write the uncompressed tar of one layer to `writer` and return the writer.
///
/// Fully determined by `(spec, seed)`; payload is generated in 64 KiB chunks, so a layer of any
/// size takes constant memory.
pub fn write_layer_tar<W: Write>(spec: &LayerSpec, seed: u64, writer: W) -> io::Result<W> {
    let mut b = tar::Builder::new(writer);
    let dir = |b: &mut tar::Builder<W>, path: &str| {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, path, io::empty())
    };
    let needs_data = spec.files > 0 || spec.extras.whiteouts > 0;
    if needs_data {
        dir(&mut b, "data/")?;
        for d in 0..16.min(spec.files + spec.extras.whiteouts) {
            dir(&mut b, &format!("data/{d:02}/"))?;
        }
    }
    let files = spec.files as u64;
    for i in 0..spec.files {
        let size = spec.bytes / files + u64::from((i as u64) < spec.bytes % files);
        let mut h = header(tar::EntryType::Regular, 0o644, size);
        let reader = PayloadReader::new(mix(seed, i as u64), spec.payload, size);
        b.append_data(&mut h, file_path(i, spec.payload), reader)?;
    }
    let e = spec.extras;
    for k in 0..e.whiteouts {
        let victim = file_path(spec.files + k, spec.payload);
        let (parent, name) = victim.rsplit_once('/').unwrap_or(("", &victim));
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        b.append_data(&mut h, format!("{parent}/.wh.{name}"), io::empty())?;
    }
    if e.opaque_dirs > 0 {
        dir(&mut b, "opq/")?;
    }
    for k in 0..e.opaque_dirs {
        dir(&mut b, &format!("opq/d{k}/"))?;
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        b.append_data(&mut h, format!("opq/d{k}/.wh..wh..opq"), io::empty())?;
        let body = format!("opaque dir {k} of layer {seed:016x}\n");
        let mut h = header(tar::EntryType::Regular, 0o644, body.len() as u64);
        b.append_data(
            &mut h,
            format!("opq/d{k}/from-{seed:016x}"),
            body.as_bytes(),
        )?;
    }
    if e.symlinks + e.hardlinks > 0 {
        dir(&mut b, "links/")?;
    }
    for k in 0..e.symlinks {
        let target = format!("../{}", file_path(k % spec.files.max(1), spec.payload));
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("links/s{k}"), target)?;
    }
    if e.hardlinks > 0 && spec.files == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "hardlinks need at least one regular file in the layer",
        ));
    }
    for k in 0..e.hardlinks {
        let target = file_path(k % spec.files.max(1), spec.payload);
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        b.append_link(&mut h, format!("links/h{k}"), target)?;
    }
    if e.long_names > 0 {
        dir(&mut b, "long/")?;
    }
    for k in 0..e.long_names {
        let name = format!("long/{}-{k}.txt", "n".repeat(200));
        let body = format!("long name {k}\n");
        let mut h = header(tar::EntryType::Regular, 0o644, body.len() as u64);
        b.append_data(&mut h, name, body.as_bytes())?;
    }
    b.into_inner()
}

/// A writer that hashes (sha256) and counts what passes through it.
pub(crate) struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub(crate) fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        let digest = Digest::parse(&format!("sha256:{hex}")).expect("sha256 hex is a valid digest");
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 of in-memory JSON documents (small: manifests and configs only).
pub(crate) fn sha256_digest(bytes: &[u8]) -> Digest {
    let mut w = Sha256Writer::new(io::sink());
    // Writing to a sink cannot fail.
    let _ = w.write_all(bytes);
    w.finish().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_deterministic_and_sized() {
        for kind in [Payload::Random, Payload::Text] {
            let mut a = Vec::new();
            PayloadReader::new(7, kind, 200_000)
                .read_to_end(&mut a)
                .expect("read");
            let mut b = Vec::new();
            PayloadReader::new(7, kind, 200_000)
                .read_to_end(&mut b)
                .expect("read");
            assert_eq!(a.len(), 200_000);
            assert_eq!(a, b);
            let mut c = Vec::new();
            PayloadReader::new(8, kind, 200_000)
                .read_to_end(&mut c)
                .expect("read");
            assert_ne!(a, c);
        }
    }

    #[test]
    fn text_compresses_and_random_does_not() {
        let mut text = Vec::new();
        PayloadReader::new(1, Payload::Text, 100_000)
            .read_to_end(&mut text)
            .expect("read");
        let mut random = Vec::new();
        PayloadReader::new(1, Payload::Random, 100_000)
            .read_to_end(&mut random)
            .expect("read");
        let z = |d: &[u8]| zstd::bulk::compress(d, 3).expect("zstd").len();
        assert!(z(&text) < 40_000, "text compressed to {}", z(&text));
        assert!(z(&random) > 99_000, "random compressed to {}", z(&random));
    }

    #[test]
    fn layer_tar_has_the_promised_entries() {
        let spec = LayerSpec::new(3, 1000).extras(Extras {
            whiteouts: 2,
            opaque_dirs: 1,
            symlinks: 1,
            hardlinks: 1,
            long_names: 1,
        });
        let tar_bytes = write_layer_tar(&spec, 5, Vec::new()).expect("tar");
        assert_eq!(
            tar_bytes,
            write_layer_tar(&spec, 5, Vec::new()).expect("tar"),
            "deterministic"
        );
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        let mut names = Vec::new();
        let mut payload = 0;
        for e in ar.entries().expect("entries") {
            let e = e.expect("entry");
            let p = e.path().expect("path").to_string_lossy().into_owned();
            if e.header().entry_type().is_file() && p.starts_with("data/") && !p.contains(".wh.") {
                payload += e.size();
            }
            if e.header().entry_type().is_symlink() || e.header().entry_type().is_hard_link() {
                let target = e.link_name().expect("link").expect("target");
                names.push(format!("{p} -> {}", target.display()));
            } else {
                names.push(p);
            }
        }
        assert_eq!(payload, 1000);
        for want in [
            "data/00/f000000.bin",
            "data/02/f000002.bin",
            "data/03/.wh.f000003.bin",
            "data/04/.wh.f000004.bin",
            "opq/d0/.wh..wh..opq",
            "links/s0 -> ../data/00/f000000.bin",
            "links/h0 -> data/00/f000000.bin",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing in {names:?}"
            );
        }
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("long/") && n.len() > 200)
        );
    }
}
