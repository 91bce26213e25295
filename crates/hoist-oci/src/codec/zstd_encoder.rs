//! The zstd encoder: always zstd's multithreaded mode, in jobs of a fixed size, so a layer's
//! zstd stream depends on its bytes and the level, never on the thread count.
//!
//! zstd compresses a stream in one of two modes. Single-threaded mode (no workers) runs on the
//! caller's thread over one sliding window. Multithreaded mode cuts the input into jobs of
//! [`JOB_SIZE`] bytes, primes each with the end of the data before it (the overlap, a fraction
//! of the window set by [`OVERLAP_LOG`]), compresses the jobs on its worker threads and writes
//! them out in order as one frame. The two modes write different bytes, but multithreaded mode
//! writes the same bytes with any number of workers, one included, for the same level, job
//! size and overlap. So every thread count uses it (with one thread, one worker compresses
//! beside the caller's thread), and both parameters are set here instead of left to zstd's
//! defaults: with a given hoist build, hence a given zstd library (`zstd-sys` in `Cargo.lock`,
//! zstd 1.5.7), a layer gets the same zstd digest on every machine. Another zstd version may
//! cut or match differently, and its digests then differ.
//!
//! Memory is what bounds the job size. zstd holds the input of (workers + 3) jobs, an output
//! buffer per job in flight and a compression context per worker (1.3 MiB at level 3). A
//! `hoist copy` compressing a 1.1 GiB tar of `/usr/bin` and `/usr/share` at level 3 peaked at
//! 14.1-14.5 MiB with one thread and 17.4-17.9 MiB with two (11.7-12.3 MiB in single-threaded
//! mode; 17.6-18.3 and 23.6-23.8 MiB with 1 MiB jobs; 54-60 and 88-93 MiB with zstd's default
//! 8 MiB jobs). Smaller jobs cost ratio: that layer came out at 0.349 of its size, against
//! 0.339 in single-threaded mode (0.345 with 1 MiB jobs, 0.337 with 8 MiB ones).
//!
//! One worker costs CPU time, though compressing takes no more instructions than in
//! single-threaded mode (callgrind): once per job, while the worker finishes, the caller's
//! thread retries handing it the next job in a loop (zstd 1.5.7, `POOL_tryAdd`), for as long
//! as the worker waits for a CPU.
//! The copy above took a median 4.9 s of user time against 4.3 s single-threaded (5.2 s of
//! wall time against 4.7, on 2 busy cores), and 5.7 s against 4.2 with both pinned to one core.
//!
//! zstd hands a finished job's output over as the caller's next calls ask for it, at most one
//! output buffer ([`OUT_BUF`]) per call, and keeps the job's buffer until all of it is taken.
//! A caller that gives more input per call than it takes output gets ahead of the output: up
//! to four finished jobs then wait, each holding a 514 KiB buffer (a 1 GiB docker-archive
//! compressed into a layout in 256 KiB writes peaked with four). [`ZstdEncoder`] hands zstd at
//! most [`IN_SLICE`] bytes of input per call, a quarter of what it may take out, so output
//! leaves faster than input comes in: two buffers, now and then three, where four were (with
//! half, three more often). How the input is cut into calls does not change the bytes zstd
//! writes.

use std::io::{self, Write};

use zstd::stream::raw::{self, CParameter};
use zstd::stream::write::Encoder;
use zstd::stream::zio;

/// Input bytes per job: zstd's smallest (`ZSTDMT_JOBSIZE_MIN`). zstd makes a job at least as
/// long as its overlap, so from level 17 up, whose windows are 8 MiB and more, jobs grow with
/// the window (1 MiB at levels 17 to 19, 16 MiB at 22).
pub(crate) const JOB_SIZE: u32 = 512 << 10;

/// The overlap: each job is primed with the last 1/2^(9 - 6) = 1/8 of a window of the data
/// before it (256 KiB at level 3), what zstd picks itself for levels up to 8. On the layer above,
/// 1/16 cost 1.1% of ratio and saved no memory; 1/4 gained 1.3% of ratio for 10% more
/// instructions (each job then reads as much overlap as input).
pub(crate) const OVERLAP_LOG: u32 = 6;

/// More workers than this are not started, however many threads are asked for.
const MAX_WORKERS: u32 = 64;

/// Output bytes taken from zstd per call, at most.
pub(crate) const OUT_BUF: usize = 128 * 1024;

/// Input bytes given to zstd per call, at most.
pub(crate) const IN_SLICE: usize = 32 * 1024;

/// A zstd encoder at `level` writing into `out`, on `threads` workers (at least one), with a
/// frame checksum.
///
/// # Errors
/// When zstd refuses a parameter (an out-of-range level).
pub(crate) fn encoder<O: Write>(
    out: O,
    level: i32,
    threads: usize,
) -> io::Result<ZstdEncoder<'static, O>> {
    ZstdEncoder::new(raw::Encoder::new(level)?, out, threads)
}

/// zstd's streaming encoder, given input in slices of at most [`IN_SLICE`] bytes.
pub(crate) struct ZstdEncoder<'a, O: Write> {
    z: Encoder<'a, O>,
}

impl<'a, O: Write> ZstdEncoder<'a, O> {
    /// Set up `raw` (its level already set) for hoist's layers, writing into `out`.
    fn new(raw: raw::Encoder<'a>, out: O, threads: usize) -> io::Result<Self> {
        let mut z = Encoder::with_writer(zio::Writer::new_with_capacity(out, raw, OUT_BUF));
        // A frame checksum lets a decoder catch corruption the digest would only catch after
        // the whole layer was unpacked.
        z.include_checksum(true)?;
        let workers = u32::try_from(threads.max(1))
            .unwrap_or(MAX_WORKERS)
            .min(MAX_WORKERS);
        z.multithread(workers)?;
        z.set_parameter(CParameter::JobSize(JOB_SIZE))?;
        z.set_parameter(CParameter::OverlapSizeLog(OVERLAP_LOG))?;
        Ok(ZstdEncoder { z })
    }

    /// End the frame and hand back the output.
    pub(crate) fn finish(self) -> io::Result<O> {
        self.z.finish()
    }
}

impl<O: Write> Write for ZstdEncoder<'_, O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.z.write(&buf[..buf.len().min(IN_SLICE)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.z.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::Digest;
    use crate::codec::{Compression, compress, decoder};

    /// A tar-like mix: lines of path-like words and numbers (compressible, with matches that
    /// reach back across job boundaries) broken by stretches of noise.
    fn tar_like(len: usize) -> Vec<u8> {
        const WORDS: [&str; 10] = [
            "usr/",
            "lib/",
            "share/",
            "doc/",
            "x86_64-linux-gnu/",
            "copyright",
            "libc.so.6",
            "python3/",
            "locale/",
            "README",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(len + 4096);
        while out.len() < len {
            let r = next();
            if r % 64 == 0 {
                let noise = (r >> 8) % 4000;
                out.extend((0..noise).map(|_| next() as u8));
            } else {
                out.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
                out.extend_from_slice(format!("{} ", (r >> 20) % 5000).as_bytes());
                if r % 7 == 0 {
                    out.push(b'\n');
                }
            }
        }
        out.truncate(len);
        out
    }

    /// A reader handing out at most `.1` bytes per call, so the encoder sees odd-sized writes.
    struct Chunks<'a>(&'a [u8], usize);
    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A writer slower than zstd's worker, as a blob writer on a busy disk is.
    struct Slow;
    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(1));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The bytes zstd's context holds after compressing 8 MiB of noise on one worker into a
    /// slow writer, handed over in 256 KiB writes by `feed`. zstd keeps every output buffer it
    /// needed at once pooled in the context, so this counts them.
    fn pooled(feed: fn(&mut ZstdEncoder<'_, Slow>, &[u8]) -> io::Result<()>) -> usize {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let data: Vec<u8> = (0..8 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut cctx = zstd::zstd_safe::CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(3))
            .expect("level");
        let mut z =
            ZstdEncoder::new(raw::Encoder::with_context(&mut cctx), Slow, 1).expect("encoder");
        for piece in data.chunks(256 << 10) {
            feed(&mut z, piece).expect("compress");
        }
        z.finish().expect("finish");
        cctx.sizeof()
    }

    /// Regression: each call gave zstd all the input it was given (256 KiB from the archive
    /// spooler) and took at most 32 KiB of output, so finished jobs piled up, each holding a
    /// 514 KiB output buffer until taken: four of them at once where two do.
    #[test]
    fn finished_jobs_do_not_pile_up() {
        let at_once = pooled(|z, piece| z.z.write_all(piece));
        let sliced = pooled(|z, piece| z.write_all(piece));
        let buffer = zstd::zstd_safe::compress_bound(JOB_SIZE as usize);
        assert!(
            sliced + buffer <= at_once,
            "{sliced} bytes pooled, {at_once} given all input at once"
        );
    }

    /// Regression: zstd used single-threaded mode for one thread and multithreaded mode for
    /// more, so a layer compressed on a 2-core machine got another digest than on a 4-core one.
    #[test]
    fn zstd_output_is_independent_of_threads() {
        let big = tar_like(4 * JOB_SIZE as usize + 123_457);
        for data in [&big[..], &big[..1000], &[][..]] {
            for level in [1, 3, 19] {
                let mut first: Option<Vec<u8>> = None;
                for threads in 1..=4 {
                    let mut out = Vec::new();
                    // Three threads also get the input in odd-sized writes.
                    let input: Box<dyn Read> = if threads == 3 {
                        Box::new(Chunks(data, 7_777))
                    } else {
                        Box::new(data)
                    };
                    let info = compress(input, &mut out, Compression::Zstd, Some(level), threads)
                        .expect("compress");
                    assert_eq!(info.digest, Digest::sha256_of(&out));
                    match &first {
                        None => {
                            let mut back = Vec::new();
                            decoder(&out[..])
                                .expect("decoder")
                                .read_to_end(&mut back)
                                .expect("decode");
                            assert!(back == data, "level {level}: decodes to another input");
                            first = Some(out);
                        }
                        Some(one) => assert!(
                            *one == out,
                            "{} bytes at level {level}: {threads} threads wrote another \
                             stream than one",
                            data.len()
                        ),
                    }
                }
            }
        }
    }
}
