//! The `diff_id` of each layer an archive holds (the digest of its uncompressed tar, which the
//! image config lists), known without reading the layer a second time where that can be
//! avoided.
//!
//! An uncompressed layer's digest is its `diff_id`. A layer the spool compressed or decompressed
//! on its way in got its `diff_id` from the same pass. A gzip or zstd layer stored as it came is
//! decompressed beside its write ([`Inflating`]): its bytes go to the blob file unchanged, and a
//! copy of each 128 KiB frame goes to a helper thread that decodes and hashes it. While an entry
//! streams the spool cannot know whether any config names it (an OCI archive's manifests and
//! `index.json` may come after the blobs; `manifest.json` comes last), so every entry that looks
//! like a compressed layer is decoded so.
//!
//! Decoding is what costs: on the 2-core dev machine (release build, a 256 MiB tar of
//! `/usr/lib`), decoding and hashing take 175-200 MiB/s of gzip input and 310-420 MiB/s of zstd
//! input on one core, where hashing the blob as it is written takes over 1 GiB/s. Beside the
//! write, that time overlaps the reading of the archive; after the spool it is added to it,
//! with a second read of every compressed layer. Spooling an archive file holding that tar
//! gzipped (132 MiB, `examples/spool.rs`) takes 0.7-0.8 s with `manifest.json` or only
//! `index.json`; decoding after the spool, the `manifest.json` archive took 1.0-1.2 s, and the
//! `index.json` one took 0.15-0.25 s unchecked. Peak RSS went from 4.0 to 4.5 MiB (the frames
//! and the decoder). A compressed blob that no config names (an artifact's) is decoded for
//! nothing, and one that does not decode just leaves its `diff_id` unknown here.
//!
//! [`DiffIds`] answers for the layers of a built image: from what the pass computed, else by
//! reading the blob once (a layer the layout held before the spool, or one whose decoding failed
//! as it streamed: read again to say why).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::read::{Collected, Stored};
use crate::codec::{self, Compression};
use crate::digest::{Algorithm, Digester};
use crate::frames::{FRAME, MAX_FRAMES};
use crate::layout::Layout;
use crate::{Descriptor, Digest, Error, ErrorKind, MediaType, Result};

/// The uncompressed digest of a gzip or zstd stream, computed from copies of its bytes as they
/// are written elsewhere ([`Inflating::feed`]), on a helper thread once the stream outgrows one
/// frame.
///
/// Memory is bounded: at most [`MAX_FRAMES`] frames of [`FRAME`] bytes, plus the decoder (a zstd
/// window is capped at [`codec::MAX_ZSTD_WINDOW_LOG`]). A feeder that gets ahead of the decoder
/// waits for a frame to come back.
pub(super) struct Inflating {
    frame: Vec<u8>,
    state: State,
}

enum State {
    /// Less than one frame so far: decoded on the caller's thread when finished.
    Unstarted,
    Helper(Helper),
    /// The decoder gave up (the bytes are no stream it reads), or no thread could be started:
    /// the digest is not known here.
    Stopped,
}

/// The decoding thread and the two channels that carry frames to it and back.
struct Helper {
    to: Option<SyncSender<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
    /// Frames allocated so far (at most [`MAX_FRAMES`]).
    frames: usize,
    thread: Option<JoinHandle<Option<Digest>>>,
}

impl Inflating {
    pub(super) fn new() -> Self {
        Inflating {
            frame: Vec::with_capacity(FRAME),
            state: State::Unstarted,
        }
    }

    /// Take a copy of the next bytes of the stream.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !matches!(self.state, State::Stopped) {
            let n = bytes.len().min(FRAME - self.frame.len());
            self.frame.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.frame.len() == FRAME {
                self.pass_frame();
            }
        }
    }

    /// The digest of everything fed, decompressed; `None` when it did not decode (or could not
    /// be decoded here).
    pub(super) fn finish(mut self) -> Option<Digest> {
        match std::mem::replace(&mut self.state, State::Stopped) {
            State::Unstarted => uncompressed_digest(&self.frame[..]),
            State::Helper(mut helper) => {
                let last = std::mem::take(&mut self.frame);
                if !last.is_empty() {
                    helper.send(last)?;
                }
                helper.join()
            }
            State::Stopped => None,
        }
    }

    /// Hand the full frame to the decoder and take an empty one.
    fn pass_frame(&mut self) {
        if let State::Unstarted = self.state {
            self.state = Helper::start().map_or(State::Stopped, State::Helper);
        }
        let passed = match &mut self.state {
            State::Helper(helper) => helper.empty_frame().and_then(|next| {
                let full = std::mem::replace(&mut self.frame, next);
                helper.send(full)
            }),
            State::Unstarted | State::Stopped => None,
        };
        if passed.is_none() {
            // Dropping the helper waits for its thread, which has stopped or stops at once.
            self.state = State::Stopped;
            self.frame = Vec::new();
        }
    }
}

impl Helper {
    /// A helper whose thread waits for frames; `None` when no thread can be started.
    fn start() -> Option<Helper> {
        let (to, from_feeder) = sync_channel::<Vec<u8>>(MAX_FRAMES);
        let (to_feeder, back) = sync_channel::<Vec<u8>>(MAX_FRAMES);
        let thread = std::thread::Builder::new()
            .name("hoist-diff-id".into())
            .spawn(move || {
                let mut frames = Frames {
                    from: from_feeder,
                    back: to_feeder,
                    current: Vec::new(),
                    at: 0,
                };
                let digest = uncompressed_digest(&mut frames)?;
                // Whatever follows the compressed stream (nothing, in a sound one) is taken
                // too, so the feeder never waits for a decoder that is done.
                while frames.next_frame() {}
                Some(digest)
            })
            .ok()?;
        Some(Helper {
            to: Some(to),
            back,
            frames: 1,
            thread: Some(thread),
        })
    }

    /// An empty frame: a returned one, a new one while under [`MAX_FRAMES`], or the next one
    /// the decoder gives back; `None` once the decoder stopped.
    fn empty_frame(&mut self) -> Option<Vec<u8>> {
        if let Ok(frame) = self.back.try_recv() {
            return Some(frame);
        }
        if self.frames < MAX_FRAMES {
            self.frames += 1;
            return Some(Vec::with_capacity(FRAME));
        }
        self.back.recv().ok()
    }

    /// `None` once the decoder stopped.
    fn send(&mut self, frame: Vec<u8>) -> Option<()> {
        self.to.as_ref()?.send(frame).ok()
    }

    /// Close the channel and wait for the digest.
    fn join(&mut self) -> Option<Digest> {
        self.to = None;
        self.thread.take()?.join().ok().flatten()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Fed unfinished (the spool failed): the decoder sees the stream end and stops, having
        // at most the queued frames left, so no thread outlives the entry.
        let _ = self.join();
    }
}

/// The frames a helper receives, read as one stream.
struct Frames {
    from: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Frames {
    /// Give the current frame back and wait for the next; `false` at the end of the stream.
    fn next_frame(&mut self) -> bool {
        let mut done = std::mem::take(&mut self.current);
        if done.capacity() > 0 {
            done.clear();
            // The feeder may be gone already (finishing): then the frame is freed.
            let _ = self.back.try_send(done);
        }
        self.at = 0;
        match self.from.recv() {
            Ok(frame) => {
                self.current = frame;
                true
            }
            Err(_) => false,
        }
    }
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if !self.next_frame() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The sha256 of what `compressed` decodes to, as [`codec::decoder`] decodes it (what
/// [`DiffIds`] computes from a stored blob); `None` when it does not decode.
fn uncompressed_digest<R: Read>(compressed: R) -> Option<Digest> {
    let decoded = codec::sniffed_decoder(compressed).ok()?;
    let mut hasher = Digester::new(Algorithm::Sha256);
    codec::copy(decoded, &mut hasher).ok()?;
    Some(hasher.finish())
}

/// A writer that also feeds what it writes to an [`Inflating`], when there is one.
pub(super) struct Tee<'a, W> {
    pub(super) inner: &'a mut W,
    pub(super) inflating: Option<&'a mut Inflating>,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(inflating) = self.inflating.as_deref_mut() {
            inflating.feed(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The `diff_id`s of the layers of the images a spool built: from the pass over the archive
/// where it computed them, else read from the layout, each blob at most once per spool (an
/// archive of many images naming one base layer, as the containerd image store saves them,
/// would otherwise have it read for every image).
pub(super) struct DiffIds<'a> {
    layout: &'a Layout,
    /// What the pass over the archive stored, by the digest it is stored under.
    stored: HashMap<&'a Digest, &'a Stored>,
    /// `diff_id`s read from the layout, by blob digest.
    read: HashMap<Digest, Digest>,
    /// How many blobs were read (for the tests).
    reads: usize,
}

impl<'a> DiffIds<'a> {
    pub(super) fn new(layout: &'a Layout, collected: &'a Collected) -> Self {
        DiffIds {
            layout,
            stored: collected.files.values().map(|s| (&s.digest, s)).collect(),
            read: HashMap::new(),
            reads: 0,
        }
    }

    /// The `diff_id` of what the pass over the archive stored as `s`.
    ///
    /// # Errors
    /// A compressed blob that does not decode (read again to say why), or I/O.
    pub(super) fn of_stored(&mut self, s: &Stored) -> Result<Digest> {
        if let Some(known) = s.diff_id.as_ref().or(s.inflated.as_ref()) {
            return Ok(known.clone());
        }
        if s.compression == Compression::None {
            return Ok(s.digest.clone());
        }
        self.read(&Descriptor::new(
            MediaType::oci_layer(s.compression),
            s.digest.clone(),
            s.size,
        ))
    }

    /// The `diff_id` of layer `l` when the archive carried it (by the digest it is stored
    /// under, which a manifest written anew names); `None` when it did not.
    ///
    /// # Errors
    /// As [`DiffIds::of_stored`].
    pub(super) fn carried(&mut self, l: &Descriptor) -> Result<Option<Digest>> {
        match self.stored.get(&l.digest).copied() {
            Some(s) => self.of_stored(s).map(Some),
            None => Ok(None),
        }
    }

    /// The `diff_id` of layer `l`, which the layout held before the spool: its blob read once,
    /// verified and decoded in the same pass. `None` when the blob is absent or its bytes are
    /// not `l`'s (damaged on disk since it was stored).
    ///
    /// # Errors
    /// A blob with the right bytes that does not decode, or I/O.
    pub(super) fn held(&mut self, l: &Descriptor) -> Result<Option<Digest>> {
        if !self.layout.has_blob(l)? {
            return Ok(None);
        }
        match self.read(l) {
            Ok(diff_id) => Ok(Some(diff_id)),
            Err(e) if e.is_digest_mismatch() || e.is_size_mismatch() || e.is_not_found() => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Read `desc`'s blob through the decoder, and to its end through the verification.
    fn read(&mut self, desc: &Descriptor) -> Result<Digest> {
        if let Some(known) = self.read.get(&desc.digest) {
            return Ok(known.clone());
        }
        self.reads += 1;
        let mut blob = self.layout.open_blob(desc)?;
        let mut hasher = Digester::new(Algorithm::Sha256);
        let decoded = codec::decoder(&mut blob).and_then(|d| codec::copy(d, &mut hasher));
        // The rest of the blob (nothing, unless the decoder stopped early) is read too: the
        // blob's own verdict comes first, since damaged bytes explain a decoder's complaint.
        io::copy(&mut blob, &mut io::sink())
            .map_err(|e| Error::io("reading a layer", e).with_digest(&desc.digest))?;
        decoded.map_err(|e| {
            Error::new(e.kind(), format!("the layer does not decompress: {e}"))
                .with_digest(&desc.digest)
        })?;
        let diff_id = hasher.finish();
        self.read.insert(desc.digest.clone(), diff_id.clone());
        Ok(diff_id)
    }
}

/// Check that layer `layer` (`actual` its `diff_id`) is the one its config `config` names
/// (`want`).
///
/// # Errors
/// [`ErrorKind::DigestMismatch`] naming the layer, when they differ.
pub(super) fn agree(layer: &str, actual: &Digest, config: &str, want: &Digest) -> Result<()> {
    if actual == want {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DigestMismatch,
        format!("layer {layer} has diff_id {actual} but config {config} says {want}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::tar_of;

    fn compressed(tar: &[u8], c: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        codec::compress(tar, &mut out, c, None, 1).expect("compress");
        out
    }

    /// Bytes that do not compress, so the compressed stream spans several frames.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn fed(bytes: &[u8], step: usize) -> Option<Digest> {
        let mut inflating = Inflating::new();
        for piece in bytes.chunks(step) {
            inflating.feed(piece);
        }
        inflating.finish()
    }

    #[test]
    fn a_stream_fed_in_pieces_decodes_to_its_tar_digest() {
        let small = tar_of(&[("a", &[7u8; 3000][..])]);
        let big = tar_of(&[("noise", &noise(MAX_FRAMES * 3 * FRAME)[..])]);
        for tar in [&small, &big] {
            for c in [Compression::Gzip, Compression::Zstd] {
                let blob = compressed(tar, c);
                for step in [1000, FRAME, FRAME + 7, blob.len()] {
                    assert_eq!(
                        fed(&blob, step),
                        Some(Digest::sha256_of(tar)),
                        "{c}, {} bytes, step {step}",
                        blob.len()
                    );
                }
            }
        }
    }

    #[test]
    fn a_stream_that_does_not_decode_has_no_digest_and_keeps_nobody_waiting() {
        let tar = tar_of(&[("noise", &noise(4 * FRAME)[..])]);
        let mut blob = compressed(&tar, Compression::Gzip);
        // Damaged early: the decoder gives up while most of the stream is still to come.
        blob[100] ^= 0xff;
        blob[101] ^= 0xff;
        assert_eq!(fed(&blob, 4096), None);
        // Cut short, in one frame and over several.
        let whole = compressed(&tar, Compression::Zstd);
        assert_eq!(fed(&whole[..whole.len() - 10], 4096), None);
        assert_eq!(fed(&whole[..100], 4096), None);
        // Dropped unfinished: the helper thread is joined, nothing hangs.
        let mut inflating = Inflating::new();
        inflating.feed(&whole[..3 * FRAME]);
        drop(inflating);
    }

    #[test]
    fn a_tee_writes_everything_through_and_feeds_it() {
        let tar = tar_of(&[("noise", &noise(2 * FRAME)[..])]);
        let blob = compressed(&tar, Compression::Gzip);
        let mut out = Vec::new();
        let mut inflating = Inflating::new();
        let mut tee = Tee {
            inner: &mut out,
            inflating: Some(&mut inflating),
        };
        for piece in blob.chunks(5000) {
            tee.write_all(piece).expect("write");
        }
        assert_eq!(out, blob);
        assert_eq!(inflating.finish(), Some(Digest::sha256_of(&tar)));
    }

    fn stored_gzip(l: &Layout, tar: &[u8]) -> Stored {
        let packed = compressed(tar, Compression::Gzip);
        let (digest, size) = l.write_blob(&packed[..], None).expect("store");
        Stored {
            digest,
            size,
            compression: Compression::Gzip,
            diff_id: None,
            archived: size,
            decoded: None,
            inflated: None,
        }
    }

    /// Regression: every reference to a compressed layer decompressed and hashed it again.
    #[test]
    fn a_compressed_layer_not_decoded_as_it_streamed_is_read_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = Layout::create(dir.path()).expect("layout");
        let tar = tar_of(&[("a", &[1u8; 3000][..])]);
        let stored = stored_gzip(&l, &tar);
        let collected = Collected::default();
        let mut diff_ids = DiffIds::new(&l, &collected);
        for _ in 0..3 {
            assert_eq!(
                diff_ids.of_stored(&stored).expect("diff_id"),
                Digest::sha256_of(&tar)
            );
        }
        assert_eq!(diff_ids.reads, 1);
        // Decoded as it streamed: not read at all.
        let inflated = Stored {
            inflated: Some(Digest::sha256_of(b"as computed")),
            ..stored
        };
        let mut diff_ids = DiffIds::new(&l, &collected);
        assert_eq!(
            diff_ids.of_stored(&inflated).expect("diff_id"),
            Digest::sha256_of(b"as computed")
        );
        assert_eq!(diff_ids.reads, 0);
    }

    /// A layer the layout held before the spool: read once for both its digest and its
    /// `diff_id`; damaged on disk, it counts as absent.
    #[test]
    fn a_held_layer_is_verified_in_the_same_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = Layout::create(dir.path()).expect("layout");
        let tar = tar_of(&[("a", &[1u8; 3000][..])]);
        let stored = stored_gzip(&l, &tar);
        let desc = Descriptor::new(MediaType::OCI_LAYER_GZIP, stored.digest, stored.size);
        let collected = Collected::default();
        let mut diff_ids = DiffIds::new(&l, &collected);
        assert_eq!(diff_ids.carried(&desc).expect("carried"), None);
        assert_eq!(
            diff_ids.held(&desc).expect("held"),
            Some(Digest::sha256_of(&tar))
        );
        assert_eq!(diff_ids.reads, 1);
        let path = l.blob_path(&desc.digest);
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        crate::testutil::overwrite(&path, &bytes);
        assert_eq!(
            DiffIds::new(&l, &collected).held(&desc).expect("held"),
            None
        );
        let absent = Descriptor::new(MediaType::OCI_LAYER_GZIP, Digest::sha256_of(b"x"), 1);
        assert_eq!(diff_ids.held(&absent).expect("held"), None);
    }
}
