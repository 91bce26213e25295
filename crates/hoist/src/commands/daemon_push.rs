//! `hoist push IMAGE REF` from the Docker daemon: the export and the push overlap.
//!
//! dockerd spends most of an export preparing it (it writes the whole image to its own disk
//! before the first byte), then sends the layers one after another. Each layer is compressed
//! on its way into the cache's staged export and, as soon as its blob is verified and in place,
//! its upload starts while the next layer streams in. The config and the manifest follow once
//! the export is complete. A cached export (same image ID) is pushed as before: each layer
//! whose remembered compressed digest the registry has is skipped.

use std::collections::HashMap;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hoist_oci::convert::ManifestFormat;
use hoist_oci::layout::{Image, Layout};
use hoist_oci::{Descriptor, Digest, MediaType, Reference};
use hoist_registry::{BlobSource, Client, Repo};
use tokio::sync::mpsc;

use super::daemon::{self, LayerPlan};
use super::export_cache::{StagedExport, cached_export};
use super::push_group::{self, PushGroup};
use super::registry;
use super::remote::{push_blobs, push_manifest};
use crate::config::Config;
use crate::progress::{Event, LayerState, Reporter};

/// Push an image from the Docker daemon: export once into the cache (each layer pushed as
/// soon as it is stored), or reuse the cached export, then push what is left, the config and
/// the manifest. Returns the manifest's digest.
///
/// # Errors
/// Daemon, cache, compression and registry errors, with context.
pub async fn push_from_daemon(
    config: &Config,
    name: &str,
    reference: &Reference,
    reporter: &Reporter,
) -> anyhow::Result<Digest> {
    let docker = daemon::connect(config).await?;
    let client = registry::client(config)?;
    let repo = Repo::from_reference(reference)?;
    let info = daemon::inspect(&docker, name).await?;
    let (layout, image, early) = match cached_export(config, &info) {
        Some((layout, image)) => {
            tracing::info!(id = %info.id, "reusing the cached export");
            (layout, image, HashMap::new())
        }
        None => {
            let staged = StagedExport::create(config, &info)?;
            let (tx, rx) = mpsc::unbounded_channel();
            let options = daemon::export_options(config, config.compression);
            // The sender moves into the export: its end closes the channel, ending the pushes.
            let export = staged.fill(
                &docker,
                name,
                &info,
                &options,
                reporter,
                move |diff_id, blob| {
                    // The pushes may have failed and gone; the export's error says the rest.
                    let _ = tx.send((diff_id.cloned(), blob.clone()));
                },
            );
            let group = PushGroup::new();
            let pushes = push_as_stored(
                config,
                &client,
                &repo,
                staged.layout(),
                rx,
                &group,
                reporter,
            );
            let (manifest, early) = together(export, pushes, staged.stop(), &group).await?;
            let (layout, image) = staged.commit(&manifest)?;
            (layout, image, early)
        }
    };
    let exists = |d: Descriptor| {
        let client = client.clone();
        let repo = repo.clone();
        async move { Ok(client.blob_exists(&repo, &d.digest).await?) }
    };
    let plan = daemon::compress_layers(config, &layout, &image, &early, exists, reporter).await?;
    let mut layers = Vec::with_capacity(plan.len());
    let mut to_push = Vec::new();
    for step in plan {
        match step {
            LayerPlan::Present(d) => layers.push(d),
            LayerPlan::Push(d) => {
                to_push.push(d.clone());
                layers.push(d);
            }
        }
    }
    let format = config.manifest_format;
    finish(
        &client, &repo, reference, &layout, &image, layers, &to_push, format, reporter,
    )
    .await
}

/// Run the export and the pushes of its layers side by side; both results, or the first error.
/// A push that fails stops the export and waits for it: its reading thread and blob commits
/// must be done with the staged export before the caller's error path deletes it. An export
/// that fails (a Ctrl-C stops it at its next read) stops the pushes of `group` and waits for
/// them: each finishes the chunk it is sending, so its upload can be resumed.
async fn together<E, P>(
    export: E,
    pushes: P,
    stop: &hoist_docker::ExportStop,
    group: &PushGroup,
) -> anyhow::Result<(Descriptor, HashMap<Digest, Descriptor>)>
where
    E: std::future::Future<Output = anyhow::Result<Descriptor>>,
    P: std::future::Future<Output = anyhow::Result<HashMap<Digest, Descriptor>>>,
{
    tokio::pin!(export);
    tokio::pin!(pushes);
    tokio::select! {
        exported = &mut export => match exported {
            Ok(manifest) => Ok((manifest, pushes.await?)),
            Err(e) => {
                group.stop();
                if let Err(stopped) = pushes.await {
                    tracing::debug!("the pushes stopped after the export failed: {stopped:#}");
                }
                Err(e)
            }
        },
        pushed = &mut pushes => match pushed {
            Ok(early) => Ok((export.await?, early)),
            Err(e) => {
                stop.stop();
                if let Err(stopped) = export.await {
                    tracing::debug!("the export stopped after a push failed: {stopped:#}");
                }
                Err(e)
            }
        },
    }
}

/// Push the layers left, the config and the manifest of `image` with `layers` (converted to
/// `format` when one is given; the cache keeps the OCI one); returns the manifest's digest.
#[allow(clippy::too_many_arguments)]
async fn finish(
    client: &Client,
    repo: &Repo,
    reference: &Reference,
    layout: &Layout,
    image: &Image,
    layers: Vec<Descriptor>,
    to_push: &[Descriptor],
    format: Option<ManifestFormat>,
    reporter: &Reporter,
) -> anyhow::Result<Digest> {
    let manifest = daemon::manifest_for(image, layers)?;
    layout.write_json(&manifest)?;
    // Converted before the config and the layers left are pushed. hoist compressed the layers
    // (the command line refuses --compression zstd with --format v2s2); only a layer the
    // daemon sent already zstd-compressed can be refused here.
    let oci = MediaType::new(MediaType::OCI_MANIFEST);
    let (pushed, media_type) = super::format::manifest_as(&manifest, oci, format)?;
    // Progress lines were announced by diff_id; from here the registry reports blob digests.
    let config_desc = &manifest.value().config;
    push_blobs(client, repo, layout, config_desc, to_push, None, reporter).await?;
    push_manifest(client, repo, reference, &media_type, pushed.bytes()).await
}

/// Push each layer `stored` reports (diff_id when known, blob in `layout`) while the export goes
/// on, at most the client's concurrency at once, until the export ends. A layer not in the
/// configured compression (the daemon sent it compressed otherwise) is left for the compression
/// pass. Returns the pushed layers by blob digest (the digest the export's manifest lists).
async fn push_as_stored(
    config: &Config,
    client: &Client,
    repo: &Repo,
    layout: &Layout,
    mut stored: mpsc::UnboundedReceiver<(Option<Digest>, Descriptor)>,
    group: &PushGroup,
    reporter: &Reporter,
) -> anyhow::Result<HashMap<Digest, Descriptor>> {
    let (sink, forwarder) = registry::forward(reporter, LayerState::Pushing);
    let pushing = Pushing {
        client,
        repo,
        layout,
        group,
        sink: &sink,
    };
    let result = drive(config, &pushing, &mut stored, reporter).await;
    drop(sink);
    let _ = forwarder.await;
    result
}

/// Where [`drive`] pushes the stored layers, and how it reports and stops them.
struct Pushing<'a> {
    client: &'a Client,
    repo: &'a Repo,
    layout: &'a Layout,
    group: &'a PushGroup,
    sink: &'a hoist_registry::Progress,
}

/// The loop of [`push_as_stored`]. The first push to fail stops the others after their chunks
/// in flight (and takes no more layers); once all have ended its error is returned.
async fn drive(
    config: &Config,
    to: &Pushing<'_>,
    stored: &mut mpsc::UnboundedReceiver<(Option<Digest>, Descriptor)>,
    reporter: &Reporter,
) -> anyhow::Result<HashMap<Digest, Descriptor>> {
    let Pushing {
        client,
        repo,
        layout,
        group,
        sink,
    } = *to;
    let options = &group.options(None);
    let mut pushed = HashMap::new();
    let mut running = FuturesUnordered::new();
    let mut open = true;
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            next = stored.recv(), if open => {
                let Some((diff_id, blob)) = next else {
                    open = false;
                    continue;
                };
                let wanted = blob.media_type.layer_compression() == Some(config.compression);
                if !wanted || pushed.contains_key(&blob.digest) {
                    continue;
                }
                // Without a diff_id (the daemon sent the layer compressed) there is nothing to
                // remember: the layer is pushed as it came, and its line already bears its blob.
                if let Some(diff_id) = diff_id {
                    daemon::remember(config, &diff_id, &blob)?;
                    if blob.digest != diff_id {
                        reporter.send(Event::Rename {
                            from: diff_id.to_string(),
                            to: blob.digest.to_string(),
                        });
                    }
                }
                pushed.insert(blob.digest.clone(), blob.clone());
                let source = BlobSource {
                    path: layout.blob_path(&blob.digest),
                    digest: blob.digest.clone(),
                    size: blob.size,
                };
                running.push(async move {
                    client
                        .push_blob(repo, &source, options, sink)
                        .await
                        .with_context(|| format!("pushing layer {} to {repo}", source.digest))
                });
            }
            Some(done) = running.next(), if !running.is_empty() => {
                if let Err(e) = done {
                    group.stop();
                    open = false;
                    failure = Some(match failure.take() {
                        Some(first) => push_group::cause(first, e),
                        None => e,
                    });
                }
            }
            else => return failure.map_or(Ok(pushed), Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use hoist_oci::Compression;
    use hoist_oci::codec::Compressor;
    use hoist_testkit::{Registry, require_tool};

    use super::*;

    fn config(cache: &std::path::Path) -> Config {
        crate::config::test_config(cache, &[])
    }

    /// A gzip layer in `layout`: (diff_id, blob).
    fn gzip_layer(layout: &Layout, seed: u8) -> (Digest, Descriptor) {
        let tar: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 ^ seed).collect();
        let mut c = Compressor::new(
            layout.blob_writer().expect("writer"),
            Compression::Gzip,
            None,
            1,
        )
        .expect("compressor");
        c.write_all(&tar).expect("compress");
        let (writer, info) = c.finish().expect("finish");
        let (digest, size) = writer
            .commit(Some(&info.digest), Some(info.size))
            .expect("commit");
        let blob = Descriptor::new(MediaType::oci_layer(Compression::Gzip), digest, size);
        (info.diff_id, blob)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stored_layer_is_pushed_before_the_export_ends() {
        if !require_tool("docker-registry") {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config(&tmp.path().join("cache"));
        let layout = Layout::create(tmp.path().join("layout")).expect("layout");
        let registry = Registry::start().expect("registry");
        let reference =
            Reference::parse(&format!("{}/early/app:1", registry.host())).expect("reference");
        let repo = Repo::from_reference(&reference).expect("repo");
        let client = registry::client(&config).expect("client");
        let (first_id, first) = gzip_layer(&layout, 1);
        let (second_id, second) = gzip_layer(&layout, 2);
        // A gzip layer as the containerd image store sends it: stored as it came, its diff_id
        // not known until the export is read.
        let (sent_id, sent) = gzip_layer(&layout, 3);
        // An uncompressed layer while gzip is configured: left for the compression pass.
        let (plain_id, plain) = {
            let mut w = layout.blob_writer().expect("writer");
            w.write_all(b"not gzip, as a daemon might send")
                .expect("write");
            let (digest, size) = w.commit(None, None).expect("commit");
            (
                digest.clone(),
                Descriptor::new(MediaType::OCI_LAYER, digest, size),
            )
        };

        let (tx, rx) = mpsc::unbounded_channel();
        let pushes = tokio::spawn({
            let (config, client, repo, layout) =
                (config.clone(), client.clone(), repo.clone(), layout.clone());
            async move {
                let group = PushGroup::new();
                push_as_stored(
                    &config,
                    &client,
                    &repo,
                    &layout,
                    rx,
                    &group,
                    &Reporter::silent(),
                )
                .await
            }
        });
        tx.send((Some(first_id.clone()), first.clone()))
            .expect("send");
        // The export is still running (the channel is open), yet the first layer arrives.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client
            .blob_exists(&repo, &first.digest)
            .await
            .expect("HEAD")
        {
            assert!(
                Instant::now() < deadline,
                "the layer was not pushed while the export ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !pushes.is_finished(),
            "the pushes wait for the export to end"
        );
        tx.send((Some(plain_id.clone()), plain.clone()))
            .expect("send");
        tx.send((Some(second_id.clone()), second.clone()))
            .expect("send");
        tx.send((None, sent.clone())).expect("send");
        tx.send((Some(first_id.clone()), first.clone()))
            .expect("a repeat is ignored");
        drop(tx);
        let pushed = pushes.await.expect("task").expect("pushes");

        // Keyed by blob, as the export's manifest lists the layers.
        assert_eq!(pushed.len(), 3, "{pushed:?}");
        assert_eq!(pushed.get(&first.digest), Some(&first));
        assert_eq!(pushed.get(&second.digest), Some(&second));
        assert_eq!(pushed.get(&sent.digest), Some(&sent));
        for blob in [&second, &sent] {
            assert!(client.blob_exists(&repo, &blob.digest).await.expect("HEAD"));
        }
        assert!(
            !client
                .blob_exists(&repo, &plain.digest)
                .await
                .expect("HEAD")
        );
        // Each pushed layer is remembered for the next push of the same image.
        assert_eq!(daemon::remembered(&config, &second_id), Some(second));
        assert_eq!(daemon::remembered(&config, &plain_id), None);
        // A layer without a diff_id is remembered under no name, least of all its blob's.
        assert_eq!(daemon::remembered(&config, &sent_id), None);
        assert_eq!(daemon::remembered(&config, &sent.digest), None);
    }

    #[tokio::test]
    async fn an_early_pushed_layer_the_daemon_sent_compressed_is_not_pushed_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config(&tmp.path().join("cache"));
        let layout = Layout::create(tmp.path().join("layout")).expect("layout");
        // The containerd image store's export: a gzip layer, stored as it came.
        let (diff_id, sent) = gzip_layer(&layout, 4);
        let image_config = hoist_oci::RawJson::from_value(hoist_oci::ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            rootfs: hoist_oci::RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id.clone()],
            },
            ..hoist_oci::ImageConfig::default()
        })
        .expect("config");
        layout.write_json(&image_config).expect("write config");
        let manifest = hoist_oci::RawJson::from_value(hoist_oci::ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            artifact_type: None,
            config: image_config.descriptor(MediaType::OCI_CONFIG),
            layers: vec![sent.clone()],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        })
        .expect("manifest");
        layout.write_json(&manifest).expect("write manifest");
        let descriptor = manifest.descriptor(MediaType::OCI_MANIFEST);
        layout.set_tag("t", &descriptor).expect("tag");
        let image = layout.image(Some("t"), None).expect("image");

        // What push_as_stored returned for it: keyed by its blob, as the manifest lists it.
        let early = HashMap::from([(sent.digest.clone(), sent.clone())]);
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let exists = |_: Descriptor| {
            asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async { Ok(false) }
        };
        let plan = daemon::compress_layers(
            &config,
            &layout,
            &image,
            &early,
            exists,
            &Reporter::silent(),
        )
        .await
        .expect("plan");
        assert!(
            matches!(plan.as_slice(), [LayerPlan::Present(d)] if *d == sent),
            "the pushed layer is planned as present"
        );
        assert_eq!(
            asked.into_inner(),
            0,
            "no registry check for a pushed layer"
        );
        // The lookup is by blob: a diff_id (which such a layer lacks while it is pushed) is not
        // what the plan asks for.
        let by_diff_id = HashMap::from([(diff_id, sent.clone())]);
        let plan = daemon::compress_layers(
            &config,
            &layout,
            &image,
            &by_diff_id,
            |_| async { Ok(false) },
            &Reporter::silent(),
        )
        .await
        .expect("plan");
        assert!(matches!(plan.as_slice(), [LayerPlan::Push(_)]));
    }
}
