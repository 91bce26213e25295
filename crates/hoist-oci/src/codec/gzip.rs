//! Block gzip: one standard gzip member whose deflate stream is cut into fixed blocks that are
//! compressed independently, so several threads can work on one layer (as pigz does).
//!
//! Each block is primed with the last 32 KiB of the block before it (so the ratio barely
//! changes) and ends with a sync flush (so blocks concatenate into one valid deflate stream);
//! the CRC is computed in order on the writer's thread. For a given deflate implementation (the
//! zlib-rs in `Cargo.lock`), the output depends only on the input, the level and [`BLOCK`],
//! never on the thread count or on which worker compressed which block: the same layer always
//! gets the same digest. That takes care, as each worker keeps one deflate state and a reset
//! does not clear all of it: [`deflate`] says what is left and how it is kept out of the
//! output. A block that does not compress (probed at a few spots) is stored, not deflated.
//! Memory is bounded by the blocks in flight (one per thread plus one queued, plus one being
//! filled), each holding its input and its compressed output; buffers are reused.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Input bytes per block: small enough that the blocks in flight stay a few MiB (1 MiB blocks
/// put a compressing daemon push at 23 MiB of peak RSS, 256 KiB at 16), large enough that the
/// 32 KiB dictionary each block is primed with keeps the ratio close to one-thread gzip.
pub(crate) const BLOCK: usize = 256 << 10;
/// The deflate window: how much of the previous block primes the next.
const DICT: usize = 32 * 1024;
/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct Job {
    index: u64,
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    /// An empty buffer to compress into (recycled from an earlier block).
    out: Vec<u8>,
}

/// A compressed block, with the input buffer handed back for reuse.
struct Block {
    compressed: Vec<u8>,
    data: Vec<u8>,
}

type Done = (u64, io::Result<Block>);

struct Pool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    max_in_flight: u64,
}

/// A gzip writer compressing [`BLOCK`]-sized blocks on `threads` worker threads (inline when
/// `threads <= 1` or the input is smaller than one block).
///
/// Buffers are recycled: input blocks come back from the workers with their result and
/// compressed blocks are reused once written, and each worker keeps one deflate state, so a
/// long layer allocates nothing after its first few blocks (allocating and freeing megabyte
/// buffers across threads made the allocator's arenas grow to ~30 MiB of RSS).
pub(crate) struct BlockGzip<W: Write> {
    out: W,
    level: u32,
    pending: Vec<u8>,
    dict: Vec<u8>,
    crc: flate2::Crc,
    submitted: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    threads: usize,
    pool: Option<Pool>,
    /// The deflate state for blocks compressed on this thread.
    inline: Option<Compress>,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

impl<W: Write> BlockGzip<W> {
    pub(crate) fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(BlockGzip {
            out,
            level,
            pending: Vec::with_capacity(BLOCK),
            dict: Vec::with_capacity(DICT),
            crc: flate2::Crc::new(),
            submitted: 0,
            written: 0,
            ready: BTreeMap::new(),
            threads,
            // Started with the first full block: a layer under one block never spawns threads.
            pool: None,
            inline: None,
            spare_in: Vec::new(),
            spare_out: Vec::new(),
        })
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        if self.pool.is_none() && self.threads > 1 && !last {
            self.pool = Some(spawn_pool(self.threads, self.level)?);
        }
        let next = if last {
            Vec::new()
        } else {
            self.spare_in
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BLOCK))
        };
        let data = std::mem::replace(&mut self.pending, next);
        self.crc.update(&data);
        // The next block is primed with this one's tail; the buffer of the old dictionary is
        // reused for it once the job that needs the old one has its own copy.
        let mut next_dict = Vec::with_capacity(DICT);
        next_dict.extend_from_slice(&data[data.len().saturating_sub(DICT)..]);
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let index = self.submitted;
        self.submitted += 1;
        let job = Job {
            index,
            data,
            dict,
            last,
            out: self.spare_out.pop().unwrap_or_default(),
        };
        match &self.pool {
            None => {
                let level = self.level;
                let c = self
                    .inline
                    .get_or_insert_with(|| Compress::new(flate2::Compression::new(level), false));
                let block = compress_block(c, job);
                self.accept((index, block))?;
            }
            Some(pool) => {
                let sent = pool.jobs.as_ref().map(|tx| tx.send(job));
                if !matches!(sent, Some(Ok(()))) {
                    return Err(io::Error::other("gzip worker threads stopped"));
                }
                let limit = pool.max_in_flight;
                while self.submitted - self.written > limit {
                    self.collect_one()?;
                }
            }
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let done = match &self.pool {
            Some(pool) => pool
                .results
                .recv()
                .map_err(|_| io::Error::other("gzip worker threads stopped"))?,
            None => return Ok(()),
        };
        self.accept(done)
    }

    /// Take a finished block and write every block that is now next in order.
    fn accept(&mut self, (index, block): Done) -> io::Result<()> {
        let Block {
            compressed,
            mut data,
        } = block?;
        if data.capacity() >= BLOCK {
            data.clear();
            self.spare_in.push(data);
        }
        self.ready.insert(index, compressed);
        while let Some(mut block) = self.ready.remove(&self.written) {
            self.out.write_all(&block)?;
            self.written += 1;
            block.clear();
            self.spare_out.push(block);
        }
        Ok(())
    }

    /// Compress what is left, write the trailer, stop the workers and return the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.written < self.submitted {
            self.collect_one()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        drop(self.pool.take());
        Ok(self.out)
    }
}

impl<W: Write> Write for BlockGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Pool {
    /// Closing the job channel ends the workers; wait for them so no thread outlives the writer.
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn spawn_pool(threads: usize, level: u32) -> io::Result<Pool> {
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let job_rx = Arc::clone(&job_rx);
        let done_tx = done_tx.clone();
        let worker = std::thread::Builder::new()
            .name(format!("hoist-gzip-{i}"))
            .spawn(move || {
                // One deflate state per worker, reset for every block (see `deflate`).
                let mut c = Compress::new(flate2::Compression::new(level), false);
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(job) = job else { break };
                    let index = job.index;
                    // A panicking worker must still answer, or the writer would wait forever.
                    let block = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        compress_block(&mut c, job)
                    }))
                    .unwrap_or_else(|_| Err(io::Error::other("gzip worker thread panicked")));
                    if block.is_err() {
                        // The state may be mid-stream after a failure: start afresh.
                        c = Compress::new(flate2::Compression::new(level), false);
                    }
                    if done_tx.send((index, block)).is_err() {
                        break;
                    }
                }
            })?;
        workers.push(worker);
    }
    Ok(Pool {
        jobs: Some(job_tx),
        results: done_rx,
        workers,
        // One block queued beyond those being compressed keeps every worker busy; more only
        // costs memory (each block in flight holds its input and its output).
        max_in_flight: threads as u64 + 1,
    })
}

/// Bytes of each probe [`looks_incompressible`] compresses.
const PROBE: usize = 4 * 1024;
/// Probes per block, spread evenly over it.
const PROBES: usize = 3;

/// Raw deflate of one block with a reset state `c`: primed with the job's dictionary, ending
/// in a sync flush (or the final block). A block that does not compress (already-compressed
/// files, model weights, random data) is stored instead: deflating it would cost most of the
/// CPU of a push for output slightly larger than its input. Both choices depend only on the
/// block's bytes, so the output stays a function of the input.
fn compress_block(c: &mut Compress, job: Job) -> io::Result<Block> {
    let mut out = job.out;
    out.clear();
    if !looks_incompressible(c, &job.data, &mut out)? {
        out.clear();
        deflate(c, &job.dict, &job.data, job.last, &mut out)?;
        if out.len() <= stored_len(job.data.len()) {
            return Ok(Block {
                compressed: out,
                data: job.data,
            });
        }
    }
    out.clear();
    store(&job.data, job.last, &mut out);
    Ok(Block {
        compressed: out,
        data: job.data,
    })
}

/// Whether a few probes spread over `data` all fail to shrink by 2% when deflated on their own
/// (`scratch` is clobbered). Blocks too small to probe are never called incompressible: they
/// are deflated and stored only if that did not help.
fn looks_incompressible(c: &mut Compress, data: &[u8], scratch: &mut Vec<u8>) -> io::Result<bool> {
    if data.len() < PROBE * PROBES * 2 {
        return Ok(false);
    }
    let stride = data.len() / PROBES;
    let mut probed = 0;
    for i in 0..PROBES {
        let probe = &data[i * stride..i * stride + PROBE];
        scratch.clear();
        deflate(c, &[], probe, true, scratch)?;
        probed += scratch.len();
    }
    let sampled = PROBE * PROBES;
    Ok(probed >= sampled - sampled / 50)
}

/// Raw deflate of `data` with a reset state `c` primed with `dict` into `out`, ending in a
/// sync flush, or in the final block when `last`.
///
/// zlib-rs's `reset()` clears the hash heads but keeps the window bytes of the previous stream,
/// and `set_dictionary` hashes the dictionary's last position over four bytes: the last three
/// of the dictionary and the stale one just past it. That position then sat in a hash chain
/// chosen by whatever the state compressed before, which changed the matches found in the
/// block, so with several threads the output depended on which blocks a worker had taken
/// before. Setting a zero dictionary one byte longer first, and resetting again, makes that
/// byte a zero whatever came before, as in a new state. No other leftover was seen to reach
/// the output: 40,000 random blocks (levels 1-9, with and without a dictionary, after one to
/// three earlier streams) came out as from a new state. A new state per block would also do,
/// but allocates ~370 KiB per block: with the binary's single malloc arena that raised peak
/// RSS by 11-14 MiB compressing 256 MiB on two threads, where this costs about 4% more time at
/// level 1 (none measurable at 6) and no memory.
fn deflate(
    c: &mut Compress,
    dict: &[u8],
    data: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    c.reset();
    if !dict.is_empty() {
        // At most DICT bytes: the tail of the block before.
        static ZEROS: [u8; DICT + 1] = [0; DICT + 1];
        c.set_dictionary(&ZEROS[..=dict.len()])
            .map_err(io::Error::other)?;
        c.reset();
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    out.reserve(data.len() / 2 + 1024);
    let start_in = c.total_in();
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = usize::try_from(c.total_in() - start_in).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or(&[]);
        let status = c
            .compress_vec(input, out, flush)
            .map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in() - start_in).unwrap_or(usize::MAX) == data.len();
        // Finish is done at StreamEnd; a sync flush is done when output space was left over.
        if status == Status::StreamEnd || (!last && all_in && out.len() < out.capacity()) {
            return Ok(());
        }
    }
}

/// Most bytes one stored deflate block holds.
const STORED_MAX: usize = u16::MAX as usize;

/// Bytes [`store`] writes for `n` bytes of input.
fn stored_len(n: usize) -> usize {
    n + 5 * n.div_ceil(STORED_MAX).max(1)
}

/// `data` as stored (uncompressed) deflate blocks, the last one final when `last`. Each block
/// is a header byte (BFINAL, BTYPE 00, padding: blocks start byte-aligned here, as every
/// block before ended on a sync flush or another stored block), LEN and its complement NLEN
/// little-endian, then the bytes (RFC 1951, 3.2.4).
fn store(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.reserve(stored_len(data.len()));
    let mut chunks = data.chunks(STORED_MAX).peekable();
    if chunks.peek().is_none() {
        // Nothing to store: an empty block still marks the end when it is the last.
        out.push(u8::from(last));
        out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(u8::from(last && chunks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// xorshift noise: incompressible, reproducible.
    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        gzip_at(data, 1, threads)
    }

    fn gzip_at(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
        let mut g = BlockGzip::new(Vec::new(), level, threads).expect("gzip");
        g.write_all(data).expect("write");
        g.finish().expect("finish")
    }

    /// xorshift text over `alphabet`: compressible, and every short string recurs every few
    /// hundred bytes when the alphabet is small.
    fn text(n: usize, alphabet: &[u8], mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x >> 32) as usize % alphabet.len()]
            })
            .collect()
    }

    /// Blocks that differ in content and compressibility, so a worker comes to a block from
    /// different earlier ones depending on scheduling: mostly four-letter text (where which
    /// match deflate picks shows in nearly every block), some wider text, one noise block,
    /// one run, and a partial block at the end.
    fn varied_layer() -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..12u64 {
            match i % 6 {
                2 => data.extend(text(BLOCK, b"etaoin shrdlu,\n", i + 1)),
                4 if i == 4 => data.extend(noise(BLOCK, i + 1)),
                4 => data.extend(std::iter::repeat_n(b'x', BLOCK)),
                _ => data.extend(text(BLOCK, b"acgt", i + 1)),
            }
        }
        data.extend(text(BLOCK / 3, b"acgt", 99));
        data
    }

    /// Regression: with two threads the same ~600 KB layer came out as one of two gzip streams
    /// (so two image digests), depending on which worker compressed which block.
    #[test]
    fn output_is_the_same_for_every_thread_count_and_run() {
        let data = varied_layer();
        for level in [1, 6] {
            let want = gzip_at(&data, level, 1);
            assert!(gunzip(&want) == data, "level {level} does not round-trip");
            for threads in 1..=4 {
                for run in 0..6 {
                    let got = gzip_at(&data, level, threads);
                    assert!(
                        got == want,
                        "level {level}, {threads} threads, run {run}: {} bytes, one thread {}",
                        got.len(),
                        want.len()
                    );
                }
            }
        }
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut back)
            .expect("decodes as one gzip member");
        back
    }

    /// The deflate state a worker reuses compresses a block as a new state would, whatever
    /// blocks it compressed before (a reset keeps the old window: see `deflate`).
    #[test]
    fn a_reused_deflate_state_compresses_like_a_new_one() {
        let layer = varied_layer();
        let blocks: Vec<&[u8]> = layer.chunks(BLOCK).collect();
        let dict = |i: usize| match i.checked_sub(1) {
            Some(before) => &blocks[before][blocks[before].len() - DICT..],
            None => &[][..],
        };
        for level in [1, 6] {
            let new_state = || Compress::new(flate2::Compression::new(level), false);
            for (i, block) in blocks.iter().enumerate() {
                let last = i + 1 == blocks.len();
                let mut want = Vec::new();
                deflate(&mut new_state(), dict(i), block, last, &mut want).expect("deflate");
                for earlier in [0, 1, 2, 5, i.saturating_sub(1), blocks.len() - 1] {
                    let mut c = new_state();
                    let mut got = Vec::new();
                    let earlier_last = earlier + 1 == blocks.len();
                    deflate(
                        &mut c,
                        dict(earlier),
                        blocks[earlier],
                        earlier_last,
                        &mut got,
                    )
                    .expect("deflate");
                    got.clear();
                    deflate(&mut c, dict(i), block, last, &mut got).expect("deflate");
                    assert!(
                        got == want,
                        "level {level}: block {i} after block {earlier}: {} bytes, new state {}",
                        got.len(),
                        want.len()
                    );
                }
            }
        }
    }

    #[test]
    fn stored_blocks_decode_and_end_the_stream() {
        for (data, last) in [
            (Vec::new(), true),
            (b"abc".to_vec(), true),
            (noise(STORED_MAX * 2 + 7, 1), true),
            (noise(STORED_MAX, 2), false),
        ] {
            let mut raw = Vec::new();
            store(&data, last, &mut raw);
            assert_eq!(raw.len(), stored_len(data.len()));
            if !last {
                // A non-final run needs a final block after it to be a whole stream.
                store(&[], true, &mut raw);
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&raw[..])
                .read_to_end(&mut back)
                .expect("raw deflate");
            assert_eq!(back, data);
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_and_compressible_ones_deflated() {
        // Noise, then text-like runs, then noise again, over several blocks and a partial one.
        let text: Vec<u8> = b"hoist moves container images; "
            .iter()
            .copied()
            .cycle()
            .take(2 * BLOCK)
            .collect();
        let mut data = noise(2 * BLOCK, 7);
        data.extend_from_slice(&text);
        data.extend(noise(BLOCK + 4321, 9));
        let one = gzip(&data, 1);
        assert_eq!(gunzip(&one), data);
        assert_eq!(one, gzip(&data, 3), "output depends on threads");
        // The noise costs only stored-block headers (deflating it would add ~6%), the text
        // next to nothing.
        let noise_bytes = 3 * BLOCK + 4321;
        assert!(one.len() < noise_bytes + noise_bytes / 100, "{}", one.len());
        let mut c = Compress::new(flate2::Compression::new(1), false);
        let mut scratch = Vec::new();
        assert!(looks_incompressible(&mut c, &data[..BLOCK], &mut scratch).expect("probe"));
        assert!(!looks_incompressible(&mut c, &text[..BLOCK], &mut scratch).expect("probe"));
        // A block with noise at its start but text elsewhere is still deflated.
        let mut mixed = noise(BLOCK / 2, 3);
        mixed.extend_from_slice(&text[..BLOCK / 2]);
        assert!(!looks_incompressible(&mut c, &mixed, &mut scratch).expect("probe"));
    }
}
