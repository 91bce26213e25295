//! The file a blob download lands in: written from the download's own task, in batches.
//!
//! `tokio::fs::File` hands every write to the blocking pool and wakes the task when the pool
//! is done. With writes of 128 KiB (kept small, for memory), a 1 GiB pull of four layers made
//! about 8,000 such trips, and their wake-ups and thread switches cost more CPU than the
//! writes: strace counted 68,000 futex calls in that pull, 19,000 once the writes were made
//! from the task. A [`Landing`] writes straight from the task, [`WRITE_BUF`] bytes at a time.
//!
//! That is a blocking call on a runtime thread, and it is bounded: a buffered write of 128 KiB
//! copies into the page cache and returns; it waits for the disk only when the kernel throttles
//! a writer that has dirtied more than its share, and then the download could not go faster
//! anyway. [`WriteBehind`] keeps that share small by starting the writeback as the bytes
//! arrive. The one call that waits for the disk by design, the final fsync, still runs on the
//! blocking pool ([`Landing::finish`]).

use std::io::{Seek, SeekFrom, Write};

use hoist_oci::WriteBehind;

/// Bytes of a download gathered before each write. A blob in flight holds one such buffer.
pub(crate) const WRITE_BUF: usize = 128 * 1024;

/// A download's file, written in batches of [`WRITE_BUF`] bytes (see the module docs).
pub(crate) struct Landing {
    file: std::fs::File,
    batch: Vec<u8>,
    behind: WriteBehind,
}

impl Landing {
    /// Land bytes in `file`, from its current position.
    pub(crate) fn new(file: std::fs::File) -> Self {
        Landing {
            file,
            batch: Vec::with_capacity(WRITE_BUF),
            behind: WriteBehind::new(),
        }
    }

    /// Append `data`, writing a batch out whenever one is full.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.batch.is_empty() && data.len() >= WRITE_BUF {
                // Nothing gathered and a whole batch given: no copy needed.
                let (now, rest) = data.split_at(WRITE_BUF);
                self.write_out(now)?;
                data = rest;
                continue;
            }
            let take = data.len().min(WRITE_BUF - self.batch.len());
            let (now, rest) = data.split_at(take);
            self.batch.extend_from_slice(now);
            data = rest;
            if self.batch.len() == WRITE_BUF {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Drop everything written so far and start the file over at byte 0 (the server ignored
    /// `Range` and is sending the whole blob again).
    pub(crate) fn restart(&mut self) -> std::io::Result<()> {
        self.batch.clear();
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.behind = WriteBehind::new();
        Ok(())
    }

    /// Write out what is gathered, then fsync the file on the blocking pool.
    pub(crate) async fn finish(mut self) -> std::io::Result<()> {
        self.flush()?;
        let file = self.file;
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let result = self.write_out(&batch);
        self.batch = batch;
        self.batch.clear();
        result
    }

    fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.behind.wrote(&self.file, bytes.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn landed(file: &mut std::fs::File) -> Vec<u8> {
        let mut out = Vec::new();
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.read_to_end(&mut out).expect("read");
        out
    }

    /// Pieces of every size around the batch size arrive whole and in order, and nothing is
    /// written before `finish` that `finish` would not write.
    #[tokio::test]
    async fn pieces_of_any_size_land_in_order() {
        let mut file = tempfile::tempfile().expect("temp");
        let mut landing = Landing::new(file.try_clone().expect("clone"));
        let sizes = [
            1,
            WRITE_BUF - 1,
            2,
            WRITE_BUF,
            3 * WRITE_BUF + 7,
            0,
            65_536,
            5,
        ];
        let mut expected = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let piece: Vec<u8> = (0..*n).map(|j| (i * 31 + j % 251) as u8).collect();
            landing.write(&piece).expect("write");
            expected.extend_from_slice(&piece);
        }
        let on_disk = landed(&mut file).len();
        assert!(
            on_disk <= expected.len() && expected.len() - on_disk < WRITE_BUF,
            "at most one batch waits: {on_disk} of {} on disk",
            expected.len()
        );
        landing.finish().await.expect("finish");
        assert_eq!(landed(&mut file), expected);
    }

    /// A restart throws away both what was written and what was still gathered.
    #[tokio::test]
    async fn a_restart_forgets_everything_before_it() {
        let mut file = tempfile::tempfile().expect("temp");
        let mut landing = Landing::new(file.try_clone().expect("clone"));
        landing.write(&vec![1u8; WRITE_BUF + 10]).expect("write");
        landing.restart().expect("restart");
        landing.write(b"fresh").expect("write");
        landing.finish().await.expect("finish");
        assert_eq!(landed(&mut file), b"fresh");
    }
}
