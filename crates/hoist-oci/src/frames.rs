//! Hashing beside the writer: bytes gather into fixed-size frames; the caller writes each full
//! frame to the inner writer and a helper thread hashes it, so hashing (about 0.5 s per GiB
//! even with SHA instructions) overlaps the next read and write instead of adding to them.
//! Under every [`crate::layout::BlobWriter`] (the inner writer is the temp file) and inside a
//! [`crate::codec::Compressor`] (its input, for the `diff_id`, with [`io::Sink`] inside; and
//! its output).
//!
//! Memory is bounded: at most [`MAX_FRAMES`] frames of [`FRAME`] bytes exist per writer, and a
//! writer that gets ahead of its hasher waits for a frame to come back. A blob that fits in one
//! frame never starts a thread.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::digest::{Algorithm, Digester};
use crate::{Digest, Error, ErrorKind};

/// Bytes per frame: one `write(2)` each.
pub(crate) const FRAME: usize = 128 * 1024;

/// Frames per writer: the one being filled, the ones queued for the hasher, the one it hashes.
pub(crate) const MAX_FRAMES: usize = 3;

/// Writes everything to `out` and hashes it, in order, on a helper thread once the data
/// outgrows one frame.
pub(crate) struct FrameWriter<W: Write> {
    out: W,
    frame: Vec<u8>,
    hasher: Hasher,
    algorithm: Algorithm,
    written: u64,
}

enum Hasher {
    /// Less than one frame so far: hash on the caller's thread at the end.
    Unstarted,
    /// No thread could be started: hash each frame on the caller's thread.
    Inline(Digester),
    Helper(Helper),
}

/// The hashing thread and the two channels that carry frames to it and back.
struct Helper {
    to: Option<SyncSender<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
    /// Frames allocated so far (at most [`MAX_FRAMES`]).
    frames: usize,
    thread: Option<JoinHandle<Digester>>,
}

impl<W: Write> FrameWriter<W> {
    pub(crate) fn new(out: W, algorithm: Algorithm) -> Self {
        FrameWriter {
            out,
            frame: Vec::with_capacity(FRAME),
            hasher: Hasher::Unstarted,
            algorithm,
            written: 0,
        }
    }

    /// Bytes accepted so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Write the last partial frame, wait for the hasher, and return the inner writer, the
    /// digest of everything written and its length.
    pub(crate) fn finish(mut self) -> io::Result<(W, Digest, u64)> {
        self.out.write_all(&self.frame)?;
        let digester = match std::mem::replace(&mut self.hasher, Hasher::Unstarted) {
            Hasher::Unstarted => {
                let mut d = Digester::new(self.algorithm);
                d.update(&self.frame);
                d
            }
            Hasher::Inline(mut d) => {
                d.update(&self.frame);
                d
            }
            Hasher::Helper(mut h) => {
                let last = std::mem::take(&mut self.frame);
                h.send(last)?;
                h.join()?
            }
        };
        let written = self.written;
        debug_assert_eq!(digester.len(), written);
        Ok((self.out, digester.finish(), written))
    }

    /// Hand the frame over: write it, then pass it to the hasher and take an empty one.
    fn flush_frame(&mut self) -> io::Result<()> {
        self.out.write_all(&self.frame)?;
        if let Hasher::Unstarted = self.hasher
            && let Some(helper) = Helper::start(self.algorithm)
        {
            // The first full frame: nothing was hashed yet, so the helper starts fresh.
            self.hasher = Hasher::Helper(helper);
        }
        match &mut self.hasher {
            Hasher::Helper(h) => {
                let next = h.empty_frame()?;
                let full = std::mem::replace(&mut self.frame, next);
                h.send(full)
            }
            Hasher::Inline(d) => {
                d.update(&self.frame);
                self.frame.clear();
                Ok(())
            }
            Hasher::Unstarted => {
                // No thread to be had: hash on this thread from now on.
                let mut d = Digester::new(self.algorithm);
                d.update(&self.frame);
                self.frame.clear();
                self.hasher = Hasher::Inline(d);
                Ok(())
            }
        }
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.frame.len() == FRAME {
            self.flush_frame()?;
        }
        let n = buf.len().min(FRAME - self.frame.len());
        self.frame.extend_from_slice(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A partial frame goes out too (the hasher takes frames of any length).
        if !self.frame.is_empty() {
            self.flush_frame()?;
        }
        self.out.flush()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // A writer dropped unfinished: close the channel and wait for the (bounded) rest
            // of the hashing, so no thread outlives it.
            let _ = self.join();
        }
    }
}

impl Helper {
    /// A helper whose thread waits for its digester; `None` when no thread can be started.
    fn start(algorithm: Algorithm) -> Option<Helper> {
        let (to, from_writer) = sync_channel::<Vec<u8>>(MAX_FRAMES);
        let (to_writer, back) = sync_channel::<Vec<u8>>(MAX_FRAMES);
        let thread = std::thread::Builder::new()
            .name("hoist-hash".into())
            .spawn(move || {
                let mut digester = Digester::new(algorithm);
                for frame in from_writer {
                    digester.update(&frame);
                    let mut frame = frame;
                    frame.clear();
                    // The writer may be gone already (finishing): then the frame is freed.
                    let _ = to_writer.try_send(frame);
                }
                digester
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
    /// the hasher gives back.
    fn empty_frame(&mut self) -> io::Result<Vec<u8>> {
        if let Ok(frame) = self.back.try_recv() {
            return Ok(frame);
        }
        if self.frames < MAX_FRAMES {
            self.frames += 1;
            return Ok(Vec::with_capacity(FRAME));
        }
        self.back.recv().map_err(|_| hasher_died())
    }

    fn send(&mut self, frame: Vec<u8>) -> io::Result<()> {
        let to = self.to.as_ref().ok_or_else(hasher_died)?;
        to.send(frame).map_err(|_| hasher_died())
    }

    /// Close the channel and collect the digester.
    fn join(&mut self) -> io::Result<Digester> {
        self.to = None;
        let thread = self.thread.take().ok_or_else(hasher_died)?;
        thread.join().map_err(|_| hasher_died())
    }
}

fn hasher_died() -> io::Error {
    Error::new(ErrorKind::Io, "the blob hashing thread stopped").into_io()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write `data` in pieces of `step` bytes and compare with a one-shot digest.
    fn roundtrip(data: &[u8], step: usize) {
        let mut w = FrameWriter::new(Vec::new(), Algorithm::Sha256);
        for piece in data.chunks(step.max(1)) {
            w.write_all(piece).expect("write");
        }
        assert_eq!(w.bytes_written(), data.len() as u64);
        let (out, digest, len) = w.finish().expect("finish");
        assert_eq!(out, data, "the file gets every byte in order");
        assert_eq!(len, data.len() as u64);
        assert_eq!(
            digest,
            Digest::sha256_of(data),
            "len {} step {step}",
            data.len()
        );
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn small_blobs_hash_inline() {
        for len in [0, 1, FRAME - 1, FRAME] {
            roundtrip(&pattern(len), 4096);
        }
    }

    #[test]
    fn large_blobs_hash_on_the_helper_in_order() {
        // Across the frame boundary, with odd write sizes, and long enough to recycle frames.
        for (len, step) in [
            (FRAME + 1, 1000),
            (3 * FRAME + 17, 7777),
            (MAX_FRAMES * 5 * FRAME + 3, FRAME + 5),
            (2 * FRAME, 3 * FRAME),
        ] {
            roundtrip(&pattern(len), step);
        }
    }

    #[test]
    fn flush_writes_a_partial_frame_through_and_the_digest_still_covers_everything() {
        let data = pattern(3 * FRAME);
        let mut w = FrameWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(&data[..1000]).expect("write");
        w.flush().expect("flush");
        w.write_all(&data[1000..]).expect("write");
        w.flush().expect("flush");
        let (out, digest, len) = w.finish().expect("finish");
        assert_eq!(out, data);
        assert_eq!(len, data.len() as u64);
        assert_eq!(digest, Digest::sha256_of(&data));
    }

    #[test]
    fn a_failing_file_fails_the_write_and_drop_waits_for_the_helper() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = FrameWriter::new(Full(2 * FRAME), Algorithm::Sha256);
        let data = pattern(5 * FRAME);
        let err = w
            .write_all(&data)
            .expect_err("the third frame does not fit");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        drop(w);
    }
}
