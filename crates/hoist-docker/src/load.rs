//! Load: stream a docker-archive produced on the fly into `POST /images/load`.
//!
//! A blocking task writes the archive into a bounded pipe; the pipe is the streaming request
//! body. The tar is never held in memory, and a producer that fails midway ends the body with
//! an error, so the daemon never sees a cut-off archive as a whole one.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::connect::Daemon;
use crate::error::{Error, ErrorKind, Result};
use crate::pipe::{CAPACITY, ChannelWriter, body_stream};
use crate::progress::{Progress, TICK};

/// What the daemon said it loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// `repo:tag` names the daemon reported (`Loaded image: NAME`).
    pub tags: Vec<String>,
    /// Image IDs the daemon reported for untagged images (`Loaded image ID: sha256:...`).
    pub ids: Vec<String>,
}

impl Loaded {
    fn record(&mut self, line: &str) {
        let line = line.trim();
        if let Some(id) = line.strip_prefix("Loaded image ID:") {
            self.ids.push(id.trim().to_string());
        } else if let Some(name) = line.strip_prefix("Loaded image:") {
            self.tags.push(name.trim().to_string());
        }
    }
}

/// The blocking writer given to load producers: a bounded pipe into the request body.
pub struct LoadWriter {
    inner: ChannelWriter,
}

impl std::fmt::Debug for LoadWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadWriter").finish_non_exhaustive()
    }
}

impl Write for LoadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.inner.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Daemon {
    /// Load a docker-archive (`docker save` format) read from `archive` into the daemon.
    pub async fn load_archive<R, P>(&self, archive: R, progress: P) -> Result<Loaded>
    where
        R: Read + Send + 'static,
        P: FnMut(Progress) + Send,
    {
        self.load_with(progress, move |out| {
            let mut archive = archive;
            io::copy(&mut archive, out)
                .map(|_| ())
                .map_err(|e| hoist_oci::Error::io("reading the archive to load", e))
        })
        .await
    }

    /// The general load: `produce` writes a docker-archive on a blocking task; the bytes go to
    /// the daemon as they are written. Producer errors are bad local input, or local I/O, and
    /// win over the daemon's complaint about the cut-off upload they cause.
    pub async fn load_with<F, P>(&self, mut progress: P, produce: F) -> Result<Loaded>
    where
        F: FnOnce(&mut LoadWriter) -> hoist_oci::Result<()> + Send + 'static,
        P: FnMut(Progress) + Send,
    {
        let client = self.transfer_client(None)?;
        let (tx, rx) = mpsc::channel::<io::Result<bytes::Bytes>>(CAPACITY);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let producer = tokio::task::spawn_blocking(move || {
            let mut writer = LoadWriter {
                inner: ChannelWriter::new(tx, counter),
            };
            match produce(&mut writer) {
                Ok(()) => writer
                    .inner
                    .finish()
                    .map_err(|e| (Error::io("sending the archive", e, false), true)),
                Err(err) => {
                    let err = Error::from_oci("writing the archive to load", err, false);
                    let reader_gone = writer.inner.reader_gone();
                    writer
                        .inner
                        .fail(io::Error::other(format!("archive producer failed: {err}")));
                    Err((err, reader_gone))
                }
            }
        });
        let body = body_stream(rx);
        let options = bollard::query_parameters::ImportImageOptionsBuilder::new()
            .quiet(true)
            .build();
        let mut responses = client.import_image_stream(options, body, None);

        let mut loaded = Loaded::default();
        let mut daemon_error = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sent = 0u64;
        let mut idle_since = Instant::now();
        progress(Progress::Sending { bytes: 0 });
        loop {
            tokio::select! {
                item = responses.next() => match item {
                    None => break,
                    Some(Ok(info)) => {
                        if let Some(line) = info.stream.as_deref() {
                            loaded.record(line);
                        }
                    }
                    Some(Err(e)) => {
                        daemon_error = Some(crate::classify::load_failure(e, &self.host()));
                        break;
                    }
                },
                _ = tick.tick() => {
                    let now = sent.load(Ordering::Relaxed);
                    if now != last_sent || !producer.is_finished() {
                        if now != last_sent {
                            idle_since = Instant::now();
                        }
                        last_sent = now;
                        progress(Progress::Sending { bytes: now });
                    } else {
                        progress(Progress::Importing { elapsed: idle_since.elapsed() });
                    }
                }
            }
        }
        drop(responses);
        let produced = producer.await.map_err(|e| {
            Error::new(ErrorKind::Io, "the archive producer task failed").with_source(e)
        })?;
        match (produced, daemon_error) {
            (Err((err, false)), _) => Err(err),
            (Err((err, true)), None) => Err(err),
            (_, Some(err)) => Err(err),
            (Ok(()), None) => {
                if loaded.tags.is_empty() && loaded.ids.is_empty() {
                    return Err(Error::new(
                        ErrorKind::DaemonFailed,
                        "the daemon finished the load without naming any image",
                    )
                    .with_host(&self.host()));
                }
                progress(Progress::Done {
                    bytes: sent.load(Ordering::Relaxed),
                });
                Ok(loaded)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_lines_are_recorded() {
        let mut loaded = Loaded::default();
        loaded.record("Loaded image: multi:1\n");
        loaded.record("Loaded image ID: sha256:abc\n");
        loaded.record("something else");
        assert_eq!(loaded.tags, vec!["multi:1".to_string()]);
        assert_eq!(loaded.ids, vec!["sha256:abc".to_string()]);
    }
}
