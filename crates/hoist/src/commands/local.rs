//! The local side of copies: layouts, docker archives (files or stdio) and root filesystems.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_oci::archive::{SpoolOptions, SpooledImage, spool_with, write_docker_archive_spilling};
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, ImageConfig, ImageManifest, RawJson, Reference};
use hoist_unpack::{LayerInfo, Unpacker};

use super::copy::{Staged, announce};
use super::whole_file::WholeFile;
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};
use crate::transport::{ArchivePath, archive_index};

/// Pick the image of a multi-image archive: the one `reference` names, or the only one.
pub fn choose_archive_image<'a>(
    spooled: &'a [SpooledImage],
    reference: Option<&str>,
) -> anyhow::Result<&'a SpooledImage> {
    match reference {
        Some(at) if let Some(n) = archive_index(at) => spooled.get(n).with_context(|| {
            format!(
                "the archive has no image {at}: it holds {} (counted from @0)",
                spooled.len()
            )
        }),
        Some(wanted) => {
            // A name without tag means NAME:latest, as docker and skopeo read it.
            let want = Reference::parse(wanted)
                .and_then(|r| match r.tag().is_none() && r.digest().is_none() {
                    true => r.with_tag("latest"),
                    false => Ok(r),
                })
                .map(|r| r.to_string())
                .ok();
            spooled
                .iter()
                .find(|img| {
                    img.tags.iter().any(|t| {
                        t == wanted || Reference::parse(t).map(|r| r.to_string()).ok() == want
                    })
                })
                .with_context(|| {
                    let all: Vec<&str> = spooled
                        .iter()
                        .flat_map(|i| i.tags.iter().map(String::as_str))
                        .collect();
                    format!(
                        "the archive has no image `{wanted}` (it has: {})",
                        if all.is_empty() {
                            "untagged images only".to_string()
                        } else {
                            all.join(", ")
                        }
                    )
                })
        }
        None => match spooled {
            [only] => Ok(only),
            [] => bail!("the archive holds no image"),
            many => bail!(
                "the archive holds {} images; name one with docker-archive:PATH:NAME:TAG, or \
                 pick one by position with docker-archive:PATH:@N",
                many.len()
            ),
        },
    }
}

/// Write a docker archive (to a file via a temp file renamed at the end, or to stdout).
pub async fn write_archive(
    config: &Config,
    staged: &Staged,
    path: ArchivePath,
    names: Vec<String>,
    reporter: Reporter,
) -> anyhow::Result<()> {
    let layout = staged.layout.clone();
    let descriptor = staged.image.descriptor.clone();
    let images = [(descriptor, names)];
    let cache_dir = config.cache_dir.clone();
    write_archive_with(path, reporter, move |out| {
        let spill = spill_dir(&layout, &cache_dir)?;
        write_docker_archive_spilling(&layout, &images, &spill, out)
    })
    .await
}

/// Where compressed layers are decompressed on their way into an archive: the source layout's
/// `blobs/` (the same filesystem, so no room is needed elsewhere) unless hoist may not write
/// there (a read-only or someone else's layout); then the cache's `transit/`.
fn spill_dir(layout: &Layout, cache_dir: &Path) -> hoist_oci::Result<PathBuf> {
    let blobs = layout.root().join("blobs");
    if tempfile::tempfile_in(&blobs).is_ok() {
        return Ok(blobs);
    }
    let transit = cache_dir.join("transit");
    std::fs::create_dir_all(&transit).map_err(|e| {
        hoist_oci::Error::io("creating a directory for decompressed layers", e).with_path(&transit)
    })?;
    Ok(transit)
}

/// Write the archive `produce` generates (on a blocking task) to a file, which takes its name
/// only when complete (see [`WholeFile`]), or to stdout. On failure a file destination is left
/// untouched; stdout holds a truncated archive (no `manifest.json`) and the error is returned.
pub async fn write_archive_with<F>(
    path: ArchivePath,
    reporter: Reporter,
    produce: F,
) -> anyhow::Result<()>
where
    F: FnOnce(&mut dyn std::io::Write) -> hoist_oci::Result<()> + Send + 'static,
{
    write_stream_with(path, "docker archive", reporter, produce).await
}

/// [`write_archive_with`] for any stream hoist writes to a file or stdout, `what` naming it
/// in messages ("docker archive", "root filesystem tar").
pub async fn write_stream_with<F, E>(
    path: ArchivePath,
    what: &'static str,
    reporter: Reporter,
    produce: F,
) -> anyhow::Result<()>
where
    F: FnOnce(&mut dyn std::io::Write) -> Result<(), E> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    tokio::task::spawn_blocking(move || {
        // The archive is one stream: one progress line for it, counting bytes written. It is
        // `writing` from its first byte: a rootfs-tar reads every layer before it writes one.
        reporter.send(Event::Stream {
            id: ARCHIVE_LINE.into(),
            size: None,
        });
        match &path {
            ArchivePath::Stdio => {
                let mut stdout = PipeWatch {
                    inner: std::io::stdout().lock(),
                    closed: false,
                };
                let result = {
                    let mut out = CountingWriter::new(
                        std::io::BufWriter::with_capacity(256 << 10, &mut stdout),
                        &reporter,
                    );
                    produce(&mut out)
                        .map_err(anyhow::Error::new)
                        .and_then(|()| std::io::Write::flush(&mut out).map_err(Into::into))
                };
                if stdout.closed {
                    // Unlike a report cut short by `| head`, an archive cut short is data lost:
                    // a failure, as for docker save and skopeo, so `set -o pipefail` sees it.
                    anyhow::bail!(
                        "the reader of standard output went away before the {what} was complete"
                    );
                }
                result.with_context(|| format!("writing the {what} to stdout"))?;
            }
            ArchivePath::File(file) => {
                let mut whole = WholeFile::create(file)
                    .with_context(|| format!("creating a file for {}", file.display()))?;
                {
                    let mut out = CountingWriter::new(
                        std::io::BufWriter::with_capacity(256 << 10, whole.file_mut()),
                        &reporter,
                    );
                    produce(&mut out).with_context(|| format!("writing {}", file.display()))?;
                    std::io::Write::flush(&mut out)
                        .with_context(|| format!("writing {}", file.display()))?;
                }
                whole.commit().with_context(|| {
                    format!("putting the {what} in place at {}", file.display())
                })?;
            }
        }
        reporter.state(ARCHIVE_LINE, LayerState::Done);
        anyhow::Ok(())
    })
    .await?
}

pub async fn tag_layout(
    dir: &Path,
    tag: Option<&str>,
    descriptor: &Descriptor,
) -> anyhow::Result<()> {
    let layout = Layout::open(dir)?;
    match tag {
        Some(tag) => layout.set_tag(tag, descriptor)?,
        None => layout.add_untagged(descriptor)?,
    }
    Ok(())
}

/// docker-archive -> OCI layout in one pass: the archive is spooled straight into the
/// destination (layers as the archive holds them, each verified before it is renamed into
/// place), and only the chosen image is tagged there, with `tag` or untagged. No transit copy:
/// going through one wrote and hashed every byte twice.
///
/// On failure a layout this call created is removed, unless another writer is using it (the
/// spool holds a [`hoist_oci::Claim`] on it until the tag is written). An existing layout keeps
/// the blobs that were complete (verified, referenced by nothing), never a partial one; so
/// does a multi-image archive's layout for the images not chosen.
///
/// Returns the digest of the image's manifest in the layout (converted with `--format`).
pub async fn spool_archive_to_layout(
    config: &Config,
    path: &ArchivePath,
    reference: Option<&str>,
    dir: &Path,
    tag: Option<&str>,
    reporter: &Reporter,
) -> anyhow::Result<hoist_oci::Digest> {
    let claim = claim_layout(dir).await?;
    let (path, reference, platform) = (
        path.clone(),
        reference.map(str::to_string),
        config.platform.clone(),
    );
    // The archive's plain tar layers are kept as they are, as skopeo keeps them, unless the
    // user asked for a compression.
    let mut options = SpoolOptions::new()
        .tag_images(false)
        .platform(platform.clone());
    if config.compression_chosen {
        options = options.compress_layers(
            config.compression,
            config.compression_level,
            super::daemon::compression_threads(),
        );
    }
    let (layout, reporter) = (claim.layout().clone(), reporter.clone());
    let format = config.manifest_format;
    let spooled = tokio::task::spawn_blocking(move || {
        let shown = (&reporter, LayerState::Writing);
        let spooled = spool_archive(&path, &layout, options, shown)?;
        let chosen = choose_archive_image(&spooled, reference.as_deref())?;
        let image = layout.image_at(&chosen.manifest, platform.as_ref())?;
        // With --format, the converted manifest is stored beside the spooled one and tagged.
        super::format::store_as(&layout, &image.descriptor, format)
    })
    .await?;
    match spooled {
        Ok(descriptor) => {
            if let Err(e) = tag_layout(dir, tag, &descriptor).await {
                release_failed(claim).await;
                return Err(e);
            }
            // Only now, with the tag written, does the layout stop being marked in use.
            drop(claim);
            Ok(descriptor.digest)
        }
        Err(e) => {
            release_failed(claim).await;
            Err(e)
        }
    }
}

/// Open the layout in `dir` (creating it when there is none) and mark it in use by this
/// command until the returned claim is dropped, so that another hoist failing in the same new
/// directory does not remove it (see [`hoist_oci::Claim`]). Every command that writes into a
/// layout holds one until its tag is written.
pub(super) async fn claim_layout(dir: &Path) -> anyhow::Result<hoist_oci::Claim> {
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || Layout::claim(&owned))
        .await?
        .with_context(|| format!("opening the OCI layout {}", dir.display()))
}

/// After a failed pull: [`release_failed`] when the layout holds no blob yet (an empty layout
/// the pull made would only look like an image store); else the claim is dropped and the
/// verified blobs stay for the next run to skip. Returns the pull's error `e`, saying where
/// the kept blobs are.
pub(super) async fn release_if_no_blobs(
    claim: hoist_oci::Claim,
    e: anyhow::Error,
) -> anyhow::Error {
    let dir = claim.layout().root().to_path_buf();
    let blobs = dir.join("blobs");
    let holds_blobs = std::fs::read_dir(&blobs).is_ok_and(|algorithms| {
        algorithms
            .flatten()
            .any(|a| std::fs::read_dir(a.path()).is_ok_and(|mut d| d.next().is_some()))
    });
    if !holds_blobs {
        release_failed(claim).await;
        return e;
    }
    drop(claim);
    // An interruption says so in its own words (`interrupt::BLOBS_KEPT`).
    match crate::interrupt::raised() {
        true => e,
        false => e.context(format!(
            "the blobs verified so far stay in {} (no tag names them yet): running the copy \
             again copies only the rest",
            dir.display()
        )),
    }
}

/// After a failed write into a claimed layout: release the claim, removing the layout when
/// the claim created it and no other writer uses it (see [`hoist_oci::Claim::release_failed`]);
/// what happened is logged, the write's own error is what the caller reports.
pub(super) async fn release_failed(claim: hoist_oci::Claim) {
    let dir = claim.layout().root().to_path_buf();
    // Waits for the layout's lock: blocking.
    match tokio::task::spawn_blocking(move || claim.release_failed()).await {
        Ok(Ok(true)) => tracing::debug!(dir = %dir.display(), "removed the layout it created"),
        Ok(Ok(false)) => tracing::debug!(dir = %dir.display(), "the layout is kept"),
        Ok(Err(e)) => {
            tracing::warn!(dir = %dir.display(), "removing the failed write's layout: {e}")
        }
        Err(e) => tracing::warn!(dir = %dir.display(), "releasing the layout: {e}"),
    }
}

/// Spool the docker archive at `path` (a file or stdin) into `layout` with `options`, its
/// bytes read shown as progress on one stream line in `state`: `writing` when `layout` is the
/// destination, `reading` when it is a transit copy a later step writes from. Blocking.
pub fn spool_archive(
    path: &ArchivePath,
    layout: &Layout,
    options: SpoolOptions,
    (reporter, state): (&Reporter, LayerState),
) -> anyhow::Result<Vec<SpooledImage>> {
    let size = match path {
        ArchivePath::File(file) => std::fs::metadata(file).ok().map(|m| m.len()),
        ArchivePath::Stdio => None,
    };
    reporter.send(Event::Stream {
        id: ARCHIVE_LINE.into(),
        size,
    });
    reporter.state(ARCHIVE_LINE, state);
    let spooled = match path {
        ArchivePath::Stdio => {
            let stdin = Counting::of(std::io::stdin().lock(), reporter, ARCHIVE_LINE, size);
            spool_with(stdin, layout, options)
        }
        ArchivePath::File(file) => {
            let f =
                std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
            let reader = Counting::of(std::io::BufReader::new(f), reporter, ARCHIVE_LINE, size);
            spool_with(reader, layout, options)
        }
    }
    .context("reading the docker archive")?;
    reporter.state(ARCHIVE_LINE, LayerState::Done);
    Ok(spooled)
}

/// Copy a manifest (an image's or an artifact's) and its blobs into another layout (claimed
/// by the caller), verifying each on the way.
pub async fn copy_between_layouts(
    from: Layout,
    manifest: RawJson<ImageManifest>,
    target: Layout,
    reporter: Reporter,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let m = manifest.value();
        announce(&reporter, &m.layers);
        // The config is small and not a layer: copied without a progress line.
        // Blobs already in the target are rehashed before they are trusted (see pull), unless
        // the target is the source itself (a new tag in the same layout): there the blobs are
        // the very files the source's own tag already names.
        let same = same_dir(from.root(), target.root());
        let present = |desc: &Descriptor| match same {
            true => target.has_blob(desc),
            false => target.has_verified_blob(desc),
        };
        if !present(&m.config)? {
            target.write_blob(from.open_blob(&m.config)?, Some(&m.config))?;
        }
        for desc in &m.layers {
            let id = desc.digest.to_string();
            if present(desc)? {
                reporter.state(&id, LayerState::Skipped);
                continue;
            }
            reporter.state(&id, LayerState::Writing);
            let reader = Counting::new(from.open_blob(desc)?, &reporter, &id, desc.size);
            target.write_blob(reader, Some(desc))?;
            reporter.state(&id, LayerState::Done);
        }
        target.write_json(&manifest)?;
        anyhow::Ok(())
    })
    .await?
}

/// Whether two paths name the same directory (compared by device and inode).
pub(super) fn same_dir(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Unpack an image from a layout into `root`.
pub async fn unpack_from_layout(
    layout: Layout,
    image: Image,
    root: PathBuf,
    limits: hoist_unpack::Limits,
    reporter: Reporter,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let unpacker = unpacker(limits)?;
        let m = image.manifest.value();
        hoist_unpack::check_layer_count(m, image.config.value())?;
        announce(&reporter, &m.layers);
        let before = prepare_root(&root)?;
        let result = (|| {
            for (i, desc) in m.layers.iter().enumerate() {
                let id = desc.digest.to_string();
                reporter.state(&id, LayerState::Unpacking);
                let file = hoist_unpack::open_layer(&layout, desc)?;
                let info = layer_info(&image.config, desc, i);
                unpacker
                    .apply_layer(&root, Counting::new(file, &reporter, &id, desc.size), &info)
                    .with_context(|| format!("unpacking layer {}", desc.digest))?;
                reporter.state(&id, LayerState::Done);
            }
            anyhow::Ok(())
        })();
        finish_root(&root, before, result)
    })
    .await?
}

/// After a successful unpack, write the image's runtime settings where `--runtime-config` asked.
///
/// # Errors
/// When the file cannot be written.
pub fn write_runtime_config(config: &Config, image: &RawJson<ImageConfig>) -> anyhow::Result<()> {
    let Some(path) = &config.runtime_config else {
        return Ok(());
    };
    hoist_unpack::write_runtime_config(image.value(), path)
        .with_context(|| format!("writing the runtime config to {}", path.display()))
}

/// The CLI's unpacker: `limits`, and a Ctrl-C or SIGTERM stops it at its next 512 KiB read
/// (data the tar parser skips included) and inside long removals (a whiteout of a large tree
/// reads nothing for a long time), so the error path can remove a root hoist created.
pub fn unpacker(limits: hoist_unpack::Limits) -> anyhow::Result<Unpacker> {
    Ok(Unpacker::builder()
        .limits(limits)
        .stop_when(crate::interrupt::raised)
        .build()?)
}

pub fn layer_info(config: &RawJson<ImageConfig>, desc: &Descriptor, index: usize) -> LayerInfo {
    LayerInfo {
        digest: Some(desc.digest.clone()),
        diff_id: config.value().rootfs.diff_ids.get(index).cloned(),
    }
}

/// What was at a root path before an unpack: it decides what a failed unpack cleans up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootBefore {
    /// Nothing: hoist created the directory, and removes it again.
    Missing,
    /// An empty directory: hoist empties it again and leaves it.
    Empty,
    /// A directory with entries: they are not hoist's to delete, so all of it is left.
    NotEmpty,
}

/// Create the root if missing, and say what was there before.
pub fn prepare_root(root: &Path) -> anyhow::Result<RootBefore> {
    if let Ok(meta) = std::fs::metadata(root) {
        if !meta.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        let mut entries =
            std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))?;
        if entries.next().is_none() {
            return Ok(RootBefore::Empty);
        }
        // umoci refuses such a root; hoist unpacks over it (a layer on a root it prepared),
        // but says that what the image does not list stays.
        tracing::warn!(
            "{} is not empty: the image is unpacked over what is there, and files the image \
             does not have stay",
            root.display()
        );
        return Ok(RootBefore::NotEmpty);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    Ok(RootBefore::Missing)
}

/// On failure, put the root back as it was found (a half-applied root is not trustworthy):
/// a root hoist created is removed, one that was empty is emptied; a root that held entries
/// before is left for the user, with a warning in the error.
pub fn finish_root(
    root: &Path,
    before: RootBefore,
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Err(err) = result else {
        return Ok(());
    };
    let shown = root.display();
    let cleaned = match before {
        RootBefore::Missing => hoist_unpack::remove_root(root),
        RootBefore::Empty => hoist_unpack::empty_root(root),
        RootBefore::NotEmpty => {
            return Err(err.context(format!(
                "unpacking into {shown} failed; it held files before and now also holds a \
                 partial root filesystem: delete it before using it"
            )));
        }
    };
    let said = match (before, cleaned) {
        (RootBefore::Missing, Ok(())) => {
            format!("unpacking into {shown} failed; the partial root filesystem was removed")
        }
        (_, Ok(())) => format!(
            "unpacking into {shown} failed; what it wrote was removed and the directory is empty \
             again"
        ),
        (_, Err(e)) => format!(
            "unpacking into {shown} failed, and removing the partial root filesystem failed too \
             ({e}): delete it before using it"
        ),
    };
    Err(err.context(said))
}

/// The progress line of an archive being written.
const ARCHIVE_LINE: &str = "archive";

/// A writer that remembers whether its reader went away, so a broken pipe on stdout can be
/// told from one on a registry connection the archive was being read from.
struct PipeWatch<W> {
    inner: W,
    closed: bool,
}

impl<W: std::io::Write> std::io::Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.note(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|e| self.note(e))
    }
}

impl<W> PipeWatch<W> {
    fn note(&mut self, e: &std::io::Error) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.closed = true;
        }
    }
}

/// A writer that puts the archive line in the `writing` state with its first byte, and reports
/// how many bytes went through it (about every MiB).
struct CountingWriter<W> {
    inner: W,
    reporter: Reporter,
    started: bool,
    done: u64,
    reported: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W, reporter: &Reporter) -> Self {
        CountingWriter {
            inner,
            reporter: reporter.clone(),
            started: false,
            done: 0,
            reported: 0,
        }
    }
}

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::interrupt::check()?;
        if !self.started && !buf.is_empty() {
            self.started = true;
            self.reporter.state(ARCHIVE_LINE, LayerState::Writing);
        }
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 {
            self.reported = self.done;
            self.reporter.send(Event::Progress {
                id: ARCHIVE_LINE.into(),
                done: self.done,
                total: None,
            });
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()?;
        if self.done != self.reported {
            self.reported = self.done;
            self.reporter.send(Event::Progress {
                id: ARCHIVE_LINE.into(),
                done: self.done,
                total: None,
            });
        }
        Ok(())
    }
}

/// A reader that reports how many bytes went through it (about every MiB).
pub struct Counting<R> {
    inner: R,
    reporter: Reporter,
    id: String,
    total: Option<u64>,
    done: u64,
    reported: u64,
}

impl<R> Counting<R> {
    /// Count `inner`'s bytes as progress of line `id` out of `total`.
    pub fn new(inner: R, reporter: &Reporter, id: &str, total: u64) -> Self {
        Self::of(inner, reporter, id, Some(total))
    }

    /// Count `inner`'s bytes as progress of line `id`, out of `total` when it is known.
    pub fn of(inner: R, reporter: &Reporter, id: &str, total: Option<u64>) -> Self {
        Counting {
            inner,
            reporter: reporter.clone(),
            id: id.to_string(),
            total,
            done: 0,
            reported: 0,
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        crate::interrupt::check()?;
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.reporter.send(Event::Progress {
                id: self.id.clone(),
                done: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_oci::{Digest, MediaType};

    fn spooled(tags: &[&str], n: u8) -> SpooledImage {
        let d = Descriptor::new(MediaType::OCI_MANIFEST, Digest::sha256_of(&[n]), 1);
        SpooledImage {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            manifest: d.clone(),
            config: d,
        }
    }

    #[test]
    fn picks_the_archive_image() {
        let one = [spooled(&["app:1"], 1)];
        assert_eq!(
            choose_archive_image(&one, None).expect("only").tags,
            ["app:1"]
        );
        let two = [
            spooled(&["app:1"], 1),
            spooled(&["docker.io/library/web:2"], 2),
        ];
        let err = choose_archive_image(&two, None).expect_err("ambiguous");
        assert!(err.to_string().contains("holds 2 images"), "{err}");
        // Names match after normalization (web:2 is docker.io/library/web:2).
        let got = choose_archive_image(&two, Some("web:2")).expect("normalized match");
        assert_eq!(got.manifest.digest, Digest::sha256_of(&[2]));
        let err = choose_archive_image(&two, Some("nope:1")).expect_err("missing");
        assert!(err.to_string().contains("app:1"), "{err}");
        assert!(choose_archive_image(&[], None).is_err());
    }

    #[test]
    fn a_destination_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A destination that is a file is refused before anything is written.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"mine").expect("write");
        let e = prepare_root(&file).expect_err("a file");
        assert!(e.to_string().contains("not a directory"), "{e}");
        assert_eq!(std::fs::read(&file).expect("read"), b"mine");
    }

    #[test]
    fn a_failed_unpack_leaves_the_root_as_it_found_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let failed = || Err(anyhow::anyhow!("layer 2 is corrupt"));
        let wrote = |root: &Path| {
            std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
            std::fs::write(root.join("usr/bin/tool"), b"half").expect("write");
        };

        // A root hoist created is removed.
        let missing = tmp.path().join("missing");
        assert_eq!(
            prepare_root(&missing).expect("prepare"),
            RootBefore::Missing
        );
        wrote(&missing);
        let e = finish_root(&missing, RootBefore::Missing, failed()).expect_err("failed");
        assert!(format!("{e:#}").contains("was removed"), "{e:#}");
        assert!(!missing.exists());

        // An empty root is emptied again and kept.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        assert_eq!(prepare_root(&empty).expect("prepare"), RootBefore::Empty);
        wrote(&empty);
        let e = finish_root(&empty, RootBefore::Empty, failed()).expect_err("failed");
        assert!(format!("{e:#}").contains("empty again"), "{e:#}");
        assert!(format!("{e:#}").contains("layer 2 is corrupt"), "{e:#}");
        let left: Vec<_> = std::fs::read_dir(&empty).expect("still there").collect();
        assert!(left.is_empty(), "{left:?}");

        // A root that held files keeps them (and what was written), with a warning.
        let used = tmp.path().join("used");
        std::fs::create_dir(&used).expect("mkdir");
        std::fs::write(used.join("mine"), b"keep").expect("write");
        assert_eq!(prepare_root(&used).expect("prepare"), RootBefore::NotEmpty);
        wrote(&used);
        let e = finish_root(&used, RootBefore::NotEmpty, failed()).expect_err("failed");
        assert!(
            format!("{e:#}").contains("delete it before using it"),
            "{e:#}"
        );
        assert_eq!(std::fs::read(used.join("mine")).expect("kept"), b"keep");

        // Success touches nothing.
        finish_root(&used, RootBefore::NotEmpty, Ok(())).expect("ok");
        assert!(used.join("usr/bin/tool").exists());
    }
}
