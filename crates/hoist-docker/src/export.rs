//! Export: stream `GET /images/get` out of the daemon into blocking consumers, memory bounded.
//!
//! The async side pulls the daemon's response body chunk by chunk and pushes it into a bounded
//! pipe; a blocking task reads the pipe as a `std::io::Read` and hands it to the consumer (a
//! file copy, or hoist-oci's one-pass docker-archive spooler). The async side also reports
//! [`Progress`]: `Preparing` while the daemon spools the image to its own disk, `Receiving`
//! once bytes flow, then `Done`.

use std::io::{self, Write};
use std::time::Instant;

use futures_util::StreamExt;
use hoist_oci::Platform;
use hoist_oci::archive::SpoolEvent;
use hoist_oci::codec::Compression;
use tokio::sync::mpsc;

use crate::connect::{ApiVersion, Daemon};
use crate::error::{Error, ErrorKind, Result};
use crate::pipe::{ChannelReader, END};
use crate::progress::{Progress, TICK};

/// Options for an export.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ExportOptions {
    platform: Option<Platform>,
    /// Layer compression while spooling into a layout: codec, level, threads.
    pub(crate) compression: Option<(Compression, Option<i32>, usize)>,
    /// Leave the layout's `index.json` alone (the caller tags).
    pub(crate) untagged: bool,
}

impl ExportOptions {
    /// Export whatever the daemon holds under the names (its only platform on a classic store).
    pub fn new() -> Self {
        Self::default()
    }

    /// Export only this platform of a multi-platform image. Needs a daemon with API >= 1.48;
    /// older daemons hold a single platform per image and the export fails with
    /// [`ErrorKind::ApiTooOld`] rather than silently ignoring the request.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// For [`Daemon::export`] into a layout: compress each uncompressed layer with
    /// `compression` at `level` (the codec's default when `None`) on `threads` threads while
    /// it streams in, so every byte is written once, already in the form a push needs. The
    /// `diff_id` is computed in the same pass and checked against the config as usual.
    /// [`Compression::None`] (the default) stores layers as the daemon sends them.
    pub fn compress_layers(
        mut self,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> Self {
        self.compression =
            (compression != Compression::None).then_some((compression, level, threads.max(1)));
        self
    }

    /// For [`Daemon::export`] into a layout: whether to tag each image with its `RepoTags`
    /// (the default) or leave the layout's `index.json` untouched so the caller tags the
    /// returned manifest itself, last.
    pub fn tag_images(mut self, tag: bool) -> Self {
        self.untagged = !tag;
        self
    }
}

/// A bounded, blocking reader over the daemon's export stream, given to export consumers.
pub struct ExportReader {
    inner: ChannelReader,
}

impl io::Read for ExportReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Daemon {
    /// Stream the docker-archive (`docker save` format) of `names` into `out`, returning `out`
    /// and the number of bytes written. Several names share their layers once in the archive.
    /// `out` is written from a blocking task; nothing is buffered beyond a few chunks.
    pub async fn export_archive<W, P>(
        &self,
        names: &[String],
        options: &ExportOptions,
        out: W,
        progress: P,
    ) -> Result<(W, u64)>
    where
        W: Write + Send + 'static,
        P: FnMut(Progress) + Send,
    {
        self.export_with(names, options, progress, move |mut reader| {
            let mut out = out;
            let n = io::copy(&mut reader, &mut out)
                .map_err(|e| hoist_oci::Error::io("writing the exported archive", e))?;
            out.flush()
                .map_err(|e| hoist_oci::Error::io("flushing the exported archive", e))?;
            Ok((out, n))
        })
        .await
    }

    /// The general export: run `consume` on a blocking task with a reader over the archive the
    /// daemon sends for `names`. Content errors from `consume` (bad tar, digest mismatch) are
    /// the daemon's fault; I/O errors stay local. If the daemon's stream fails, the reader fails too (never a
    /// clean early EOF) and the daemon's error is returned; otherwise `consume`'s result is.
    pub async fn export_with<T, F, P>(
        &self,
        names: &[String],
        options: &ExportOptions,
        progress: P,
        consume: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ExportReader) -> hoist_oci::Result<T> + Send + 'static,
        P: FnMut(Progress) + Send,
    {
        self.export_driven(names, options, progress, None, consume)
            .await
    }

    /// [`Daemon::export_with`], also passing the consumer's per-layer `events` on to
    /// `progress` as [`Progress::Layer`], on the async side, in order, until the consumer ends.
    pub(crate) async fn export_driven<T, F, P>(
        &self,
        names: &[String],
        options: &ExportOptions,
        mut progress: P,
        mut events: Option<mpsc::UnboundedReceiver<SpoolEvent>>,
        consume: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ExportReader) -> hoist_oci::Result<T> + Send + 'static,
        P: FnMut(Progress) + Send,
    {
        validate_names(names)?;
        let mut extra = None;
        if let Some(platform) = &options.platform {
            if !self.supports_platform_selection() {
                return Err(platform_unsupported(self.api, platform).with_host(&self.host()));
            }
            extra = Some(query_pair("platform", &platform_json(platform)));
        }
        let docker = self.transfer_client(extra);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let label = names.join(", ");
        let mut stream = docker.export_images(&refs);

        let (tx, rx) = mpsc::channel::<io::Result<bytes::Bytes>>(PIPE_BATCHES);
        let consumer = tokio::task::spawn_blocking(move || {
            consume(ExportReader {
                inner: ChannelReader::new(rx),
            })
        });

        let started = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut received = 0u64;
        let mut batches = 0u64;
        let mut last_chunk = Instant::now();
        let mut daemon_error = None;
        progress(Progress::Preparing {
            elapsed: started.elapsed(),
        });
        // dockerd writes 32 KiB at a time: the spooler gets batches of about BATCH bytes, so
        // it is woken once per batch rather than once per write (a copy is cheaper than the
        // context switches).
        let mut batch = bytes::BytesMut::new();
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    None => {
                        // A complete stream: say so, or the reader treats the close as a cut.
                        if !batch.is_empty() && tx.send(Ok(batch.split().freeze())).await.is_err() {
                            break;
                        }
                        let _ = tx.send(Ok(END)).await;
                        break;
                    }
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(chunk)) => {
                        if received == 0 {
                            tracing::debug!(after = ?started.elapsed(), "first byte of export");
                        }
                        received += chunk.len() as u64;
                        last_chunk = Instant::now();
                        let ready = if batch.is_empty() && chunk.len() >= BATCH {
                            Some(chunk)
                        } else {
                            if batch.is_empty() {
                                batch.reserve(BATCH + chunk.len());
                            }
                            batch.extend_from_slice(&chunk);
                            (batch.len() >= BATCH).then(|| batch.split().freeze())
                        };
                        if let Some(ready) = ready {
                            batches += 1;
                            if tx.send(Ok(ready)).await.is_err() {
                                // The consumer stopped early; its result says why.
                                break;
                            }
                            // After the send: time spent waiting on a slow consumer is not
                            // the daemon's silence.
                            last_chunk = Instant::now();
                        }
                    }
                    Some(Err(e)) => {
                        let mut err = self.classify(e).with_image(label.clone());
                        if received > 0 {
                            // Past the headers a cut is a broken stream, whatever hyper says.
                            err = Error::new(
                                ErrorKind::DaemonFailed,
                                format!("the export stream broke off after {received} bytes"),
                            )
                            .with_image(label.clone())
                            .with_host(&self.host())
                            .with_source(err);
                        }
                        let _ = tx
                            .send(Err(io::Error::other(format!("export stream failed: {err}"))))
                            .await;
                        daemon_error = Some(err);
                        break;
                    }
                },
                Some(event) = next_event(&mut events) => progress(Progress::Layer(event)),
                _ = tick.tick() => {
                    // A slow stream still flows: what is batched goes out every tick.
                    if !batch.is_empty() {
                        batches += 1;
                        if tx.send(Ok(batch.split().freeze())).await.is_err() {
                            break;
                        }
                    }
                    if received == 0 {
                        progress(Progress::Preparing { elapsed: started.elapsed() });
                    } else if last_chunk.elapsed() > self.stall_timeout {
                        let err = Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "the daemon stopped sending the export after {received} bytes \
                                 ({}s without data)",
                                self.stall_timeout.as_secs()
                            ),
                        )
                        .with_image(label.clone())
                        .with_host(&self.host());
                        let _ = tx.send(Err(io::Error::other(err.to_string()))).await;
                        daemon_error = Some(err);
                        break;
                    } else {
                        progress(Progress::Receiving { bytes: received });
                    }
                }
            }
        }
        drop(tx);
        drop(stream);
        tracing::debug!(received, batches, after = ?started.elapsed(), "export stream ended");
        // The consumer lags the stream by the pipe's few chunks: keep passing its events on
        // until it is done, then whatever it sent last.
        let mut consumer = consumer;
        let consumed = loop {
            tokio::select! {
                result = &mut consumer => break result,
                Some(event) = next_event(&mut events) => progress(Progress::Layer(event)),
            }
        };
        if let Some(rx) = events.as_mut() {
            while let Ok(event) = rx.try_recv() {
                progress(Progress::Layer(event));
            }
        }
        if let Some(err) = daemon_error {
            return Err(err);
        }
        let value = consumed
            .map_err(|e| {
                Error::new(ErrorKind::Io, "the export consumer task failed").with_source(e)
            })?
            .map_err(|e| {
                Error::from_oci("reading the daemon's export", e, true).with_image(label)
            })?;
        progress(Progress::Receiving { bytes: received });
        progress(Progress::Done { bytes: received });
        Ok(value)
    }
}

/// How many bytes of the daemon's stream the spooler is handed at a time.
const BATCH: usize = 256 * 1024;

/// How many batches may wait for the spooler: enough to ride out a slow write while the
/// daemon keeps sending. (16 batches of 128 KiB put the export at 15.4 MiB of peak RSS; 4 of
/// 128 KiB at 11.3; 2 of 512 KiB cost ~0.9 MiB more than that and ~10% less system CPU. With a
/// push overlapping the export, 2 of 512 KiB were 2.2 MiB of the heap at its peak; 2 of 256
/// KiB took a 1 GiB export from 11.9-12.4 to 10.8-11.6 MiB at the same wall time, over three
/// alternated runs.)
const PIPE_BATCHES: usize = 2;

/// The next consumer event, or never when there is no event channel (a closed channel yields
/// `None`, which disables the branch in a `select!`).
async fn next_event(
    events: &mut Option<mpsc::UnboundedReceiver<SpoolEvent>>,
) -> Option<SpoolEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn validate_names(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no image named for export",
        ));
    }
    if let Some(bad) = names
        .iter()
        .find(|n| n.trim().is_empty() || n.chars().any(char::is_whitespace))
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("bad image name {bad:?}"),
        ));
    }
    Ok(())
}

fn platform_unsupported(api: ApiVersion, platform: &Platform) -> Error {
    Error::new(
        ErrorKind::ApiTooOld,
        format!(
            "cannot select platform {}/{} on export: the daemon speaks API {api} and holds a \
             single platform per image (platform selection needs API {})",
            platform.os,
            platform.architecture,
            ApiVersion::PLATFORM_SELECTION
        ),
    )
}

/// The daemon's platform query value: JSON of the OCI platform.
fn platform_json(platform: &Platform) -> String {
    serde_json::to_string(platform).unwrap_or_default()
}

/// `key=value` with the value percent-encoded for a query string.
fn query_pair(key: &str, value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{key}={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_query_is_encoded_json() {
        let platform = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
            ..Platform::default()
        };
        let json = platform_json(&platform);
        assert_eq!(
            json,
            r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#
        );
        let pair = query_pair("platform", &json);
        assert!(pair.starts_with("platform=%7B%22architecture%22%3A%22arm64%22"));
        assert!(!pair.contains('"') && !pair.contains('{'));
        let uri = format!("http://h/v1.48/images/get?names=a&{pair}");
        assert!(uri.parse::<http::Uri>().is_ok());
        assert_eq!(query_pair("k", "a b"), "k=a%20b");
    }

    #[test]
    fn names_are_checked_before_any_request() {
        assert!(validate_names(&[]).expect_err("empty").is_invalid_input());
        assert!(
            validate_names(&["a b".into()])
                .expect_err("space")
                .is_invalid_input()
        );
        assert!(validate_names(&["a:1".into(), "b".into()]).is_ok());
    }

    #[test]
    fn old_daemon_says_single_platform() {
        let err = platform_unsupported(
            ApiVersion {
                major: 1,
                minor: 41,
            },
            &Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
                ..Platform::default()
            },
        );
        assert!(err.is_api_too_old());
        let text = err.to_string();
        assert!(text.contains("single platform") && text.contains("1.41") && text.contains("1.48"));
    }
}
