//! The layer byte pipeline: detect compression, decompress on its own thread, hash both sides.
//!
//! A producer thread reads the (possibly compressed) layer, hashes the raw bytes, decompresses
//! and hands fixed-size chunks to the consumer through a bounded channel; emptied chunks come
//! back for reuse, so memory is a fixed number of chunks whatever the layer size. After the
//! decoder ends, the producer drains its input to EOF so the compressed digest always covers the
//! whole blob (a tar end-of-archive marker does not stop verification). The consumer side is a
//! plain [`Read`] ([`ChunkReader`]) that also hashes what it yields, for the diff_id, and asks
//! the caller's `stop_when` before taking each chunk: whatever reads the stream (the applier,
//! the `tar` crate skipping an entry's data, the check of what follows the tar's end) stops
//! within a chunk of the request.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use hoist_oci::{Algorithm, Compression, Digest, Digester};

use crate::error::{Error, ErrorKind, Result};
use crate::stop::Stop;

/// Size of one decompressed chunk handed between threads.
pub(crate) const CHUNK: usize = 512 * 1024;
/// Chunks in flight (bounds memory at `CHUNKS * CHUNK`).
const CHUNKS: usize = 4;
/// Read buffer for the compressed input.
const INPUT_BUF: usize = 256 * 1024;

/// What the producer reports when it has read its input to the end.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    /// The detected compression.
    pub compression: Compression,
    /// The digest of the raw (compressed) bytes.
    pub digest: Digest,
    /// How many raw bytes were read.
    pub size: u64,
}

pub(crate) enum Msg {
    /// A chunk and how many of its bytes are filled.
    Data(Vec<u8>, usize),
    /// The producer finished (verdict on the compressed digest).
    Done(Result<Produced>),
}

/// A reader that hashes the raw bytes passing through it.
struct Hashing<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

/// The producer: runs on its own thread until the input is read to the end or the consumer hangs up.
pub(crate) fn produce<R: Read + Send>(
    input: R,
    expected: Option<&Digest>,
    tx: SyncSender<Msg>,
    empties: Receiver<Vec<u8>>,
) {
    let result = produce_inner(input, expected, &tx, &empties);
    // If the consumer has gone, nobody wants the verdict.
    let _ = tx.send(Msg::Done(result));
}

fn produce_inner<R: Read + Send>(
    input: R,
    expected: Option<&Digest>,
    tx: &SyncSender<Msg>,
    empties: &Receiver<Vec<u8>>,
) -> Result<Produced> {
    let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
    let mut raw = BufReader::with_capacity(
        INPUT_BUF,
        Hashing {
            inner: input,
            digester: Digester::new(algorithm),
        },
    );
    // The magic bytes are read until there are enough of them (or the input ends): a reader may
    // hand them out one at a time, and a compressed layer must not pass for a plain tar.
    let (compression, prefixed) = hoist_oci::codec::detect_buffered(&mut raw)
        .map_err(|e| Error::oci("reading the layer", e))?;
    let decoded = decode(compression, prefixed, tx, empties);
    if matches!(decoded, Ok(false)) {
        // The consumer hung up (it hit an error of its own); nobody reads the verdict.
        return Err(consumer_stopped());
    }
    // Drain whatever follows (or was left by a failed decoder) so the digest covers the whole
    // blob: a digest mismatch is the more precise verdict than "corrupt".
    let drained = io::copy(&mut raw, &mut io::sink());
    let hashing = raw.into_inner();
    let size = hashing.digester.len();
    let digest = hashing.digester.finish();
    if drained.is_ok()
        && let Some(expected) = expected
        && *expected != digest
    {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!(
                "layer digest mismatch: the blob hashed to {digest}; the root filesystem is not trusted"
            ),
        )
        .with_digest(expected));
    }
    decoded?;
    drained.map_err(|e| Error::io("reading the layer", e))?;
    Ok(Produced {
        compression,
        digest,
        size,
    })
}

/// Decompress everything into chunks for the consumer; `Ok(false)` if the consumer hung up.
fn decode<R: io::BufRead + Send>(
    compression: Compression,
    raw: R,
    tx: &SyncSender<Msg>,
    empties: &Receiver<Vec<u8>>,
) -> Result<bool> {
    // Straight out of `raw`'s buffer: a decoder with a buffer of its own would copy every
    // compressed byte once more.
    let mut dec = hoist_oci::codec::decoder_for_buffered(compression, raw)
        .map_err(|e| Error::oci(format!("starting the {compression} decoder"), e))?;
    loop {
        let Ok(mut chunk) = empties.recv() else {
            return Ok(false);
        };
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        while filled < CHUNK {
            match dec.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("decompressing the layer ({compression})"),
                        e,
                    ));
                }
            }
        }
        if filled == 0 {
            return Ok(true);
        }
        if tx.send(Msg::Data(chunk, filled)).is_err() {
            return Ok(false);
        }
    }
}

fn consumer_stopped() -> Error {
    Error::new(ErrorKind::Io, "layer consumer stopped")
}

/// The consumer side: a [`Read`] over the decompressed chunks that hashes what it yields.
pub(crate) struct ChunkReader {
    rx: Receiver<Msg>,
    empties: SyncSender<Vec<u8>>,
    current: Option<(Vec<u8>, usize, usize)>,
    digester: Option<Digester>,
    done: Option<Produced>,
    failed: bool,
    /// The caller's stop, asked before each chunk is taken.
    stop: Stop,
}

impl ChunkReader {
    /// The verdict of the producer, once this reader has returned EOF.
    pub(crate) fn produced(&self) -> Option<&Produced> {
        self.done.as_ref()
    }

    /// The digest and length of the decompressed bytes read so far (call after EOF).
    pub(crate) fn finish_uncompressed(&mut self) -> Option<(Digest, u64)> {
        self.digester.take().map(|d| {
            let len = d.len();
            (d.finish(), len)
        })
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some((chunk, len, pos)) = self.current.as_mut() {
                if *pos < *len {
                    let n = buf.len().min(*len - *pos);
                    buf[..n].copy_from_slice(&chunk[*pos..*pos + n]);
                    *pos += n;
                    if let Some(d) = self.digester.as_mut() {
                        d.update(&buf[..n]);
                    }
                    return Ok(n);
                }
                if let Some((chunk, _, _)) = self.current.take() {
                    // The producer may have finished; a failed send only means it is gone.
                    let _ = self.empties.try_send(chunk);
                }
            }
            if self.done.is_some() {
                return Ok(0);
            }
            if self.failed {
                let err = Error::new(ErrorKind::Io, "layer stream already failed");
                return Err(err.into_io());
            }
            // Every chunk, however its bytes are used: the `tar` crate skips an entry's data
            // (an entry nothing writes, the rest of one) without asking anyone.
            self.stop.check().map_err(Error::into_io)?;
            match self.rx.recv() {
                Ok(Msg::Data(chunk, len)) => self.current = Some((chunk, len, 0)),
                Ok(Msg::Done(Ok(produced))) => self.done = Some(produced),
                Ok(Msg::Done(Err(err))) => {
                    self.failed = true;
                    return Err(err.into_io());
                }
                Err(_) => {
                    self.failed = true;
                    return Err(Error::new(ErrorKind::Io, "layer decoder thread died").into_io());
                }
            }
        }
    }
}

/// Make the two ends of a pipeline; the returned closure-less parts are wired by the caller:
/// run [`produce`] with the sender parts on a thread and read from the [`ChunkReader`], which
/// fails with [`ErrorKind::Stopped`] once `stop` asks.
pub(crate) fn pipeline(
    uncompressed_algorithm: Algorithm,
    stop: Stop,
) -> (ChunkReader, SyncSender<Msg>, Receiver<Vec<u8>>) {
    let (tx, rx) = sync_channel::<Msg>(CHUNKS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(CHUNKS + 1);
    for _ in 0..CHUNKS {
        // Capacity is fixed up front; chunks are reused, never grown.
        let _ = empty_tx.try_send(Vec::with_capacity(CHUNK));
    }
    (
        ChunkReader {
            rx,
            empties: empty_tx,
            current: None,
            digester: Some(Digester::new(uncompressed_algorithm)),
            done: None,
            failed: false,
            stop,
        },
        tx,
        empty_rx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run(input: &[u8], expected: Option<&Digest>) -> (Vec<u8>, Result<Produced>) {
        let (mut reader, tx, empties) = pipeline(Algorithm::Sha256, Stop::default());
        std::thread::scope(|s| {
            s.spawn(|| produce(input, expected, tx, empties));
            let mut out = Vec::new();
            let res = reader.read_to_end(&mut out);
            match res {
                Ok(_) => {
                    let p = reader.produced().cloned().expect("produced after EOF");
                    (out, Ok(p))
                }
                Err(e) => (out, Err(Error::io("read", e))),
            }
        })
    }

    #[test]
    fn gzip_roundtrip_with_trailing_bytes_hashed() {
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&payload).expect("gzip");
        let mut blob = enc.finish().expect("gzip");
        let (out, res) = run(&blob, Some(&Digest::sha256_of(&blob)));
        assert_eq!(out, payload);
        let p = res.expect("verified");
        assert_eq!(p.compression, Compression::Gzip);
        assert_eq!(p.size, blob.len() as u64);
        // Bytes after the gzip member are part of the blob: the digest must notice them.
        let good = Digest::sha256_of(&blob);
        blob.extend_from_slice(&[0u8; 1024]);
        let (_, res) = run(&blob, Some(&good));
        assert!(
            res.expect_err("trailing bytes change the digest")
                .is_digest_mismatch()
        );
    }

    #[test]
    fn zstd_and_plain() {
        let payload = b"hello zstd world".repeat(10_000);
        let blob = zstd::encode_all(&payload[..], 3).expect("zstd");
        let (out, res) = run(&blob, None);
        assert_eq!(out, payload);
        assert_eq!(res.expect("ok").compression, Compression::Zstd);
        let (out, res) = run(&payload, Some(&Digest::sha256_of(&payload)));
        assert_eq!(out, payload);
        assert_eq!(res.expect("ok").compression, Compression::None);
    }

    #[test]
    fn truncated_gzip_is_corrupt() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[7u8; 100_000]).expect("gzip");
        let blob = enc.finish().expect("gzip");
        let (_, res) = run(&blob[..blob.len() / 2], None);
        let err = res.expect_err("truncated");
        assert!(err.is_corrupt(), "{err:?}");
    }
}
