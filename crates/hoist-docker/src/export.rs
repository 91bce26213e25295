//! Export: stream `GET /images/get` out of the daemon into blocking consumers, memory bounded.
//!
//! The consumer (a file copy, or hoist-oci's one-pass docker-archive spooler) runs on a
//! blocking thread with a reader that polls the daemon's response itself (see `direct`), so
//! the bytes are read, hashed and written by one thread. The async side passes on what that
//! thread reports as [`Progress`]: `Preparing` while the daemon spools the image to its own
//! disk, `Receiving` once bytes flow, the consumer's per-layer events, then `Done`.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hoist_oci::Platform;
use hoist_oci::archive::SpoolEvent;
use hoist_oci::codec::Compression;
use tokio::sync::mpsc;

use crate::connect::{ApiVersion, Daemon};
use crate::direct::{Body, Context, StreamReader, Watch};
use crate::error::{Error, ErrorKind, Result};
use crate::inspect::ImageInfo;
use crate::progress::Progress;

/// Stops a running export from outside, as when other work it feeds has failed, and tells
/// when the export has let go of its destination.
///
/// After [`ExportStop::stop`] the export's reader fails at its next read (within a quarter of
/// a second, also while the daemon is still preparing), the consumer ends (a spool into a
/// layout waits for the blob commits it started), and the export returns
/// [`ErrorKind::Stopped`]. Awaiting that return, or [`ExportStop::wait`] when the export's
/// future was dropped instead, is what makes it safe to delete what the export was writing
/// into: dropping an export's future alone leaves its reading thread to finish on its own.
/// Cheap to clone; clones share the one stop.
#[derive(Debug, Clone, Default)]
pub struct ExportStop {
    inner: Arc<StopState>,
}

#[derive(Debug, Default)]
struct StopState {
    stopped: std::sync::atomic::AtomicBool,
    /// Consumers of exports using this handle that have not ended yet.
    running: std::sync::Mutex<usize>,
    idle: std::sync::Condvar,
}

impl ExportStop {
    /// A handle that has not stopped anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop every export that uses this handle. Returns at once.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`ExportStop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// Block until no export using this handle is still reading or writing (at most
    /// `timeout`); whether that is so. True at once when none ran.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let Ok(running) = self.inner.running.lock() else {
            return false;
        };
        match self
            .inner
            .idle
            .wait_timeout_while(running, timeout, |n| *n > 0)
        {
            Ok((running, _)) => *running == 0,
            Err(_) => false,
        }
    }

    /// Count a consumer as running until the returned guard drops.
    fn enter(&self) -> Running {
        if let Ok(mut running) = self.inner.running.lock() {
            *running += 1;
        }
        Running(self.clone())
    }
}

/// A consumer counted as running by its [`ExportStop`].
struct Running(ExportStop);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.inner.running.lock() {
            *running = running.saturating_sub(1);
        }
        self.0.inner.idle.notify_all();
    }
}

/// Options for an export.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ExportOptions {
    platform: Option<Platform>,
    /// The caller's stop handle.
    stop: Option<ExportStop>,
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

    /// Export only this platform of a multi-platform image. A daemon with API >= 1.48 is asked
    /// for it. Older daemons hold a single platform per image and take no such request: the
    /// image is exported as it is when its platform (inspected first) matches, and the export
    /// fails with [`ErrorKind::NotFound`], naming the image's platform, when it does not,
    /// rather than silently exporting another platform.
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

    /// Let `stop` stop the export (see [`ExportStop`]).
    pub fn stop_with(mut self, stop: &ExportStop) -> Self {
        self.stop = Some(stop.clone());
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
    inner: StreamReader,
}

impl std::fmt::Debug for ExportReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportReader").finish_non_exhaustive()
    }
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
        self.export_with(names, options, progress, move |reader| {
            let mut tee = Tee {
                inner: reader,
                out,
                written: 0,
            };
            check_archive(&mut tee)?;
            let Tee {
                mut out, written, ..
            } = tee;
            out.flush()
                .map_err(|e| hoist_oci::Error::io("flushing the exported archive", e))?;
            Ok((out, written))
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
            if self.supports_platform_selection() {
                extra = Some(query_pair("platform", &platform_json(platform)));
            } else {
                self.check_single_platform(names, platform).await?;
            }
        }
        let docker = self.transfer_client(extra)?;
        let names = names.to_vec();
        let label = names.join(", ");
        let watch = Arc::new(Watch {
            stop: options.stop.clone(),
            ..Watch::default()
        });
        // Counted from before the task is spawned, so a wait never misses it.
        let running = options.stop.as_ref().map(ExportStop::enter);
        let (report, mut reports) = mpsc::unbounded_channel();
        let cx = Context {
            label: label.clone(),
            host: self.host(),
            stall_timeout: self.stall_timeout,
            progress: report,
            watch: watch.clone(),
        };
        let consumer = tokio::task::spawn_blocking(move || {
            // Released when the consumer is done with the destination (or never ran).
            let _running = running;
            let open = move || -> Body {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                Box::pin(docker.export_images(&refs))
            };
            let reader = StreamReader::new(open, cx)
                .map_err(|e| hoist_oci::Error::io("starting the export reader", e))?;
            consume(ExportReader { inner: reader })
        });
        // Dropping this future (the caller gave up) stops the reading thread at its next read.
        let _abandon = Abandon(watch.clone());

        // Pass the reader's and the consumer's reports on, in order per source, until the
        // consumer is done; then whatever they sent last.
        let mut consumer = consumer;
        let consumed = loop {
            tokio::select! {
                result = &mut consumer => break result,
                Some(report) = reports.recv() => progress(report),
                Some(event) = next_event(&mut events) => progress(Progress::Layer(event)),
            }
        };
        while let Ok(report) = reports.try_recv() {
            progress(report);
        }
        if let Some(rx) = events.as_mut() {
            while let Ok(event) = rx.try_recv() {
                progress(Progress::Layer(event));
            }
        }
        let received = watch.received.load(Ordering::Relaxed);
        tracing::debug!(received, "export stream ended");
        let stopped = options.stop.as_ref().is_some_and(ExportStop::is_stopped);
        if stopped && !matches!(consumed, Ok(Ok(_))) {
            return Err(Error::new(
                ErrorKind::Stopped,
                format!("the export was stopped after {received} bytes"),
            )
            .with_image(label));
        }
        if let Some(err) = watch.take_failure() {
            return Err(err);
        }
        let value = consumed
            .map_err(|e| {
                Error::new(ErrorKind::Io, "the export consumer task failed").with_source(e)
            })?
            .map_err(|e| unreadable_export(e, &watch, received).with_image(label.clone()))?;
        // A consumer that copies bytes takes an error line after a partial archive as more
        // archive: the daemon's reason still fails the export.
        if let Some(reason) = watch.reason() {
            return Err(Error::new(
                ErrorKind::DaemonFailed,
                format!(
                    "the daemon failed part-way through the export, after {received} bytes: \
                     {reason}"
                ),
            )
            .with_image(label));
        }
        progress(Progress::Receiving { bytes: received });
        progress(Progress::Done { bytes: received });
        Ok(value)
    }

    /// Below API 1.48 a daemon holds one platform per image and takes no platform on export:
    /// asking for the image's own platform is met by exporting it as it is; asking for another
    /// fails, naming the platform the daemon has.
    async fn check_single_platform(&self, names: &[String], wanted: &Platform) -> Result<()> {
        for name in names {
            let info = self.inspect(name).await?;
            let have = image_platform(&info, &self.platform());
            if !have.matches(wanted) {
                return Err(platform_unavailable(self.api, &have, wanted)
                    .with_image(name.clone())
                    .with_host(&self.host()));
            }
        }
        Ok(())
    }
}

/// The platform of an image on a single-platform daemon: what its inspect says, the daemon's
/// own platform for what it leaves out (as the daemon itself assumes for such images).
fn image_platform(info: &ImageInfo, daemon: &Platform) -> Platform {
    let pick = |own: &str, default: &str| if own.is_empty() { default } else { own }.to_string();
    Platform {
        os: pick(&info.os, &daemon.os),
        architecture: pick(&info.architecture, &daemon.architecture),
        variant: info.variant.clone(),
        ..Platform::default()
    }
}

/// The consumer could not use what the daemon sent. When the daemon said why (an error line
/// after the archive bytes) that is the error; when it ended its answer cleanly but the archive
/// was cut short or incomplete (dockerd 20.10 does this when its staged copy of the image fails
/// part-way, and tells only its log), the error says so; local I/O stays local.
fn unreadable_export(err: hoist_oci::Error, watch: &Watch, received: u64) -> Error {
    const WHAT: &str = "reading the daemon's export";
    if err.is_io() {
        return Error::from_oci(WHAT, err, true);
    }
    if let Some(reason) = watch.reason() {
        return Error::new(
            ErrorKind::DaemonFailed,
            format!(
                "the daemon failed part-way through the export, after {received} bytes: {reason}"
            ),
        )
        .with_source(err);
    }
    if !watch.ended.load(Ordering::Relaxed) {
        return Error::from_oci(WHAT, err, true);
    }
    let what = if err.kind() == hoist_oci::ErrorKind::Corrupt {
        "the daemon ended the export early"
    } else {
        "the daemon ended the export with an incomplete archive"
    };
    Error::new(
        ErrorKind::DaemonFailed,
        format!(
            "{what}, after {received} bytes, and gave no reason (the daemon's log may say \
             why): {err}"
        ),
    )
    .with_source(err)
}

/// A reader that writes every byte it reads into `out`, counting them: the archive goes out
/// as it is read, once, while its structure is checked.
struct Tee<R, W> {
    inner: R,
    out: W,
    written: u64,
}

impl<R: io::Read, W: Write> io::Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.out.write_all(read).map_err(|e| {
            // A failing destination is the caller's, not the archive's: say so.
            io::Error::new(e.kind(), format!("writing the exported archive: {e}"))
        })?;
        self.written += n as u64;
        Ok(n)
    }
}

/// Read a `docker save` archive to its end through `reader`, checking it is one: every entry
/// whole, and the `manifest.json` (or, for an OCI layout, `index.json`) a daemon writes after
/// the layers. A daemon that stops part-way without a word (dockerd 20.10 ends such an answer
/// cleanly) leaves an archive without them, or cut inside an entry: an error, never a short
/// archive passed off as a whole one.
fn check_archive<R: io::Read>(reader: &mut R) -> hoist_oci::Result<()> {
    let corrupt = |what: String| hoist_oci::Error::new(hoist_oci::ErrorKind::Corrupt, what);
    let mut found_index = false;
    {
        let mut archive = tar::Archive::new(&mut *reader);
        let entries = archive
            .entries()
            .map_err(|e| corrupt(format!("reading the exported archive: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| corrupt(format!("reading the exported archive: {e}")))?;
            let path = entry.path_bytes();
            let name = path.strip_prefix(b"./").unwrap_or(&path);
            found_index |= name == b"manifest.json" || name == b"index.json";
        }
    }
    // The end-of-archive blocks and any padding after them go out too.
    io::copy(reader, &mut io::sink())
        .map_err(|e| corrupt(format!("reading the end of the exported archive: {e}")))?;
    if !found_index {
        return Err(corrupt(
            "the exported archive has no manifest.json or index.json: it ends early".into(),
        ));
    }
    Ok(())
}

/// Marks an export abandoned when the future waiting on it is dropped.
struct Abandon(Arc<Watch>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
}

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

fn platform_unavailable(api: ApiVersion, have: &Platform, wanted: &Platform) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "cannot export platform {wanted}: the daemon holds this image for {have} only (it \
             speaks API {api} and holds a single platform per image; selecting one of several \
             platforms needs API {})",
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
    fn an_unreadable_export_says_what_the_daemon_did() {
        let truncated =
            || hoist_oci::Error::new(hoist_oci::ErrorKind::Corrupt, "truncated archive");
        // The stream broke or went on: the archive's own error, the daemon's fault.
        let watch = Watch::default();
        let err = unreadable_export(truncated(), &watch, 10);
        assert!(err.is_daemon_failed(), "{err:?}");
        assert!(!err.to_string().contains("early"), "{err}");
        // It ended cleanly mid-archive: ended early, no reason given.
        watch.ended.store(true, Ordering::Relaxed);
        let err = unreadable_export(truncated(), &watch, 10);
        assert!(err.is_daemon_failed(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("ended the export early") && text.contains("gave no reason"),
            "{text}"
        );
        // It said why: that is the error.
        *watch.reason.lock().expect("lock") = Some("layer gone".into());
        let text = unreadable_export(truncated(), &watch, 10).to_string();
        assert!(
            text.contains("part-way") && text.contains("layer gone"),
            "{text}"
        );
        // Local I/O stays local.
        let disk = hoist_oci::Error::io("writing", std::io::Error::other("disk full"));
        assert!(unreadable_export(disk, &watch, 10).is_io());
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
    fn old_daemon_names_the_platform_it_has() {
        let err = platform_unavailable(
            ApiVersion {
                major: 1,
                minor: 41,
            },
            &Platform::new("linux", "amd64"),
            &Platform::new("linux", "arm64"),
        );
        assert!(err.is_not_found());
        let text = err.to_string();
        assert!(
            text.contains("cannot export platform linux/arm64")
                && text.contains("for linux/amd64 only")
                && text.contains("single platform")
                && text.contains("1.41")
                && text.contains("1.48"),
            "{text}"
        );
    }

    #[test]
    fn a_single_platform_image_meets_requests_for_its_own_platform() {
        let info = |architecture: &str, variant: Option<&str>| ImageInfo {
            id: hoist_oci::Digest::sha256_of(b"config"),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            size: 0,
            diff_ids: Vec::new(),
            architecture: architecture.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        };
        let daemon = Platform::new("linux", "amd64");
        let wants = |info: &ImageInfo, wanted: &str| {
            image_platform(info, &daemon).matches(&Platform::parse(wanted).expect("platform"))
        };
        let amd64 = info("amd64", None);
        assert!(wants(&amd64, "linux/amd64"));
        assert!(wants(&amd64, "linux/x86_64"));
        assert!(!wants(&amd64, "linux/arm64"));
        assert!(!wants(&amd64, "windows/amd64"));
        // arm64's variant is v8 whether or not the image or the request says so.
        for image in [info("arm64", None), info("arm64", Some("v8"))] {
            assert!(wants(&image, "linux/arm64"));
            assert!(wants(&image, "linux/arm64/v8"));
            assert!(!wants(&image, "linux/amd64"));
        }
        // A request without a variant takes any; one with a variant only that one.
        let armv6 = info("arm", Some("v6"));
        assert!(wants(&armv6, "linux/arm"));
        assert!(!wants(&armv6, "linux/arm/v7"));
        // An image that does not say its platform is the daemon's.
        assert!(wants(&info("", None), "linux/amd64"));
    }
}
