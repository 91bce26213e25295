//! Against a real private dockerd: export into an OCI layout and load back out of one.

mod support;

use hoist_docker::{ConnectOptions, Daemon, ExportOptions, Progress};
use hoist_oci::layout::Layout;
use hoist_oci::{Compression, Descriptor, ImageIndex, MediaType, Platform, RawJson};
use hoist_testkit::{ImageSpec, write_oci_layout};
use support::{build_layers, import_files, noise, run, start_dockerd, tcp_relay_cut};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_layout_and_load_back() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch_dir = tempfile::tempdir().expect("scratch dir");
    let scratch = scratch_dir.path();
    import_files(
        &dockerd,
        scratch,
        "hoist-base:1",
        &[
            ("etc/hello", b"hello\n"),
            ("usr/data.bin", &noise(200_000, 3)),
        ],
    );
    build_layers(
        &dockerd,
        scratch,
        "hoist-multi:1",
        "hoist-base:1",
        &[("big.bin", &noise(1_500_000, 4)), ("small.txt", b"small\n")],
    );
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let multi = daemon
        .inspect("hoist-multi:1")
        .await
        .expect("inspect multi");
    let base = daemon.inspect("hoist-base:1").await.expect("inspect base");

    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("oci")).expect("layout");
    let names = vec!["hoist-multi:1".to_string(), "hoist-base:1".to_string()];
    let mut phases = Vec::new();
    let spooled = daemon
        .export(&names, &layout, &ExportOptions::new(), |p| phases.push(p))
        .await
        .expect("export into layout");
    assert!(matches!(phases.first(), Some(Progress::Preparing { .. })));
    assert!(matches!(phases.last(), Some(Progress::Done { .. })));
    assert_eq!(spooled.len(), 2);

    // Each spooled image is the daemon's image: config digest = image ID, layers = diff_ids
    // (uncompressed, as the daemon sent them).
    for (info, tag) in [(&multi, "hoist-multi:1"), (&base, "hoist-base:1")] {
        let image = spooled
            .iter()
            .find(|s| s.tags.iter().any(|t| t.contains(tag)))
            .unwrap_or_else(|| panic!("{tag} spooled: {spooled:?}"));
        assert_eq!(image.config.digest, info.id);
        let read = layout
            .image_at(&image.manifest, None)
            .expect("image in layout");
        let layer_digests: Vec<_> = read
            .manifest
            .value()
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect();
        assert_eq!(layer_digests, info.diff_ids);
        for layer in &read.manifest.value().layers {
            layout.verify_blob(layer).expect("layer blob verifies");
        }
    }

    // Remove the images from the daemon, then load one back from the layout under a new tag.
    run(&dockerd, &["rmi", "hoist-multi:1", "hoist-base:1"]);
    let multi_manifest = spooled
        .iter()
        .find(|s| s.config.digest == multi.id)
        .expect("multi spooled")
        .manifest
        .clone();
    let mut load_phases = Vec::new();
    let loaded = daemon
        .load(&layout, &multi_manifest, "hoist-loaded:2", |p| {
            load_phases.push(p)
        })
        .await
        .expect("load from layout");
    assert_eq!(loaded.id, multi.id);
    assert_eq!(loaded.diff_ids, multi.diff_ids);
    assert!(loaded.repo_tags.contains(&"hoist-loaded:2".to_string()));
    assert!(matches!(load_phases.last(), Some(Progress::Done { .. })));
    let cli = run(
        &dockerd,
        &["inspect", "--format", "{{.Id}}", "hoist-loaded:2"],
    );
    assert_eq!(cli.trim(), multi.id.to_string());

    // A layout whose blob went missing: a clear local-input error, and no image appears.
    let victim = layout.blob_path(&multi_manifest_layer(&layout, &multi_manifest));
    std::fs::remove_file(&victim).expect("remove a layer blob");
    let err = daemon
        .load(&layout, &multi_manifest, "hoist-broken:1", |_| {})
        .await
        .expect_err("missing blob");
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(err.to_string().contains("opening blob"), "{err}");
    assert!(!daemon.exists("hoist-broken:1").await.expect("exists"));

    // Bad tags are refused before anything is sent.
    let err = daemon
        .load(&layout, &multi_manifest, "Bad Tag", |_| {})
        .await
        .expect_err("bad tag");
    assert!(err.is_invalid_input(), "{err:?}");
}

fn multi_manifest_layer(layout: &Layout, manifest: &hoist_oci::Descriptor) -> hoist_oci::Digest {
    let image = layout.image_at(manifest, None).expect("image");
    image.manifest.value().layers[1].digest.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_a_synthetic_gzip_layout() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    // A layout hoist did not export: written by the testkit by hand, gzip layers, two images.
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ImageSpec::uniform(3, 400_000, Compression::Gzip, 11);
    let synth = write_oci_layout(dir.path(), "synth-a", &spec).expect("synth layout");
    let layout = Layout::open(dir.path()).expect("open layout");
    let manifest = layout.resolve(Some("synth-a")).expect("resolve tag");
    assert_eq!(manifest.digest, synth.manifest_digest);

    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let info = daemon
        .load(&layout, &manifest, "localhost:5000/synth/a:v1", |_| {})
        .await
        .expect("load synthetic layout");
    // The daemon holds the uncompressed layers the config promises, under our tag, and its
    // image ID is the config we wrote.
    assert_eq!(info.diff_ids, synth.diff_ids);
    assert_eq!(info.id, synth.config_digest);
    assert_eq!(
        info.repo_tags,
        vec!["localhost:5000/synth/a:v1".to_string()]
    );

    // Round trip: export it again into a fresh layout; the config comes back byte-identical.
    let again = Layout::create(dir.path().join("again")).expect("layout");
    let spooled = daemon
        .export(
            &["localhost:5000/synth/a:v1".to_string()],
            &again,
            &ExportOptions::new(),
            |_| {},
        )
        .await
        .expect("export");
    assert_eq!(spooled.len(), 1);
    assert_eq!(spooled[0].config.digest, synth.config_digest);
    let image = again.image_at(&spooled[0].manifest, None).expect("image");
    let layers: Vec<_> = image
        .manifest
        .value()
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(layers, synth.diff_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_cut_midway_fails_and_tags_nothing() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch_dir = tempfile::tempdir().expect("scratch dir");
    import_files(
        &dockerd,
        scratch_dir.path(),
        "hoist-cut:1",
        &[("data.bin", &noise(3_000_000, 21))],
    );
    // The real daemon, through a relay that cuts its answer after 1 MB.
    let relay = tcp_relay_cut(dockerd.socket_path(), Some(1_000_000));
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let cut = Daemon::connect(ConnectOptions::new().host(format!("tcp://{relay}")))
        .await
        .expect("connect through relay");
    let layout = Layout::create(scratch_dir.path().join("oci")).expect("layout");
    let err = cut
        .export(
            &["hoist-cut:1".to_string()],
            &layout,
            &ExportOptions::new(),
            |_| {},
        )
        .await
        .expect_err("cut export");
    assert!(err.is_daemon_failed(), "{err:?}");
    assert!(err.to_string().contains("broke off"), "{err}");
    // Nothing in the layout claims to be an image.
    assert!(layout.list().expect("list").is_empty());

    // The same export over the direct socket works, into the same layout.
    let spooled = daemon
        .export(
            &["hoist-cut:1".to_string()],
            &layout,
            &ExportOptions::new(),
            |_| {},
        )
        .await
        .expect("export");
    assert_eq!(spooled.len(), 1);
    assert_eq!(layout.list().expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_an_index_picks_the_daemon_platform() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    let native = daemon.platform();
    assert_eq!(native.os, "linux");

    // Two images in one layout under an index: one for a foreign platform, one for the daemon's.
    let dir = tempfile::tempdir().expect("tempdir");
    let foreign = write_oci_layout(
        dir.path(),
        "foreign",
        &ImageSpec::uniform(1, 100_000, Compression::Gzip, 31),
    )
    .expect("synth foreign");
    let mine = write_oci_layout(
        dir.path(),
        "mine",
        &ImageSpec::uniform(2, 100_000, Compression::Zstd, 32),
    )
    .expect("synth mine");
    let layout = Layout::open(dir.path()).expect("open layout");
    let entry = |image: &hoist_testkit::SynthImage, arch: &str| {
        let mut d = Descriptor::new(
            MediaType::OCI_MANIFEST,
            image.manifest_digest.clone(),
            image.manifest_size,
        );
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            ..Platform::default()
        });
        d
    };
    let foreign_arch = if native.architecture == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let index = |manifests: Vec<Descriptor>| {
        let raw = RawJson::from_value(ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        })
        .expect("index json");
        layout.write_json(&raw).expect("write index");
        raw.descriptor(MediaType::new(MediaType::OCI_INDEX))
    };
    let both = index(vec![
        entry(&foreign, foreign_arch),
        entry(&mine, &native.architecture),
    ]);
    let info = daemon
        .load(&layout, &both, "hoist-index:1", |_| {})
        .await
        .expect("load index");
    assert_eq!(info.diff_ids, mine.diff_ids);
    assert_eq!(info.id, mine.config_digest);

    // An index without the daemon's platform: a clear error naming what is there.
    let only_foreign = index(vec![entry(&foreign, foreign_arch)]);
    let err = daemon
        .load(&layout, &only_foreign, "hoist-index:2", |_| {})
        .await
        .expect_err("no matching platform");
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(err.to_string().contains(foreign_arch), "{err}");
    assert!(!daemon.exists("hoist-index:2").await.expect("exists"));
}

/// The files under a layout's `blobs/` and its `index.json`, path -> bytes.
fn layout_files(layout: &Layout) -> std::collections::BTreeMap<String, Vec<u8>> {
    let root = layout.root();
    let mut files = std::collections::BTreeMap::new();
    let mut dirs = vec![root.join("blobs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read blobs dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(root).expect("in layout");
                files.insert(
                    name.display().to_string(),
                    std::fs::read(&path).expect("read blob"),
                );
            }
        }
    }
    files.insert(
        "index.json".into(),
        std::fs::read(root.join("index.json")).expect("read index.json"),
    );
    files
}

/// Regression (`--platform` on dockerd < 25): a daemon below API 1.48 holds one platform per
/// image and takes no platform on export. Asking for the image's own platform exports it as
/// without the option; asking for another fails before any byte, naming the one it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_on_an_old_daemon_is_met_by_the_images_own() {
    let Some(dockerd) = start_dockerd() else {
        return;
    };
    let scratch_dir = tempfile::tempdir().expect("scratch dir");
    let scratch = scratch_dir.path();
    import_files(
        &dockerd,
        scratch,
        "hoist-base:1",
        &[("etc/hello", b"hello\n")],
    );
    build_layers(
        &dockerd,
        scratch,
        "hoist-plat:1",
        "hoist-base:1",
        &[("data.bin", &noise(300_000, 7))],
    );
    let daemon = Daemon::connect(ConnectOptions::new().socket(dockerd.socket_path()))
        .await
        .expect("connect");
    assert!(!daemon.supports_platform_selection());
    let info = daemon.inspect("hoist-plat:1").await.expect("inspect");
    let own = Platform::parse(&format!("{}/{}", info.os, info.architecture)).expect("own");
    let names = vec!["hoist-plat:1".to_string()];

    let dir = tempfile::tempdir().expect("tempdir");
    let export = |name: &str, options: ExportOptions| {
        let layout = Layout::create(dir.path().join(name)).expect("layout");
        let daemon = daemon.clone();
        let names = names.clone();
        async move {
            let spooled = daemon.export(&names, &layout, &options, |_| {}).await;
            (layout, spooled)
        }
    };
    let (plain, plain_spooled) = export("plain", ExportOptions::new()).await;
    let plain_spooled = plain_spooled.expect("export without a platform");
    assert_eq!(plain_spooled[0].config.digest, info.id);

    // The image's own platform, as the user spells it: same images, same blobs, same tags.
    let mut spellings = vec![own.to_string()];
    if own.architecture == "amd64" {
        spellings.push("linux/x86_64".into());
    }
    if own.architecture == "arm64" {
        spellings.push("linux/arm64/v8".into());
    }
    for (i, spelling) in spellings.iter().enumerate() {
        let wanted = Platform::parse(spelling).expect("platform");
        let (layout, spooled) =
            export(&format!("own{i}"), ExportOptions::new().platform(wanted)).await;
        let spooled = spooled.unwrap_or_else(|e| panic!("export for {spelling}: {e}"));
        assert_eq!(spooled, plain_spooled, "{spelling}");
        assert!(layout_files(&layout) == layout_files(&plain), "{spelling}");
    }
    // ... and into an archive: byte for byte what an export without the option sends.
    let (without, _) = daemon
        .export_archive(&names, &ExportOptions::new(), Vec::new(), |_| {})
        .await
        .expect("archive without a platform");
    let (with, _) = daemon
        .export_archive(
            &names,
            &ExportOptions::new().platform(own.clone()),
            Vec::new(),
            |_| {},
        )
        .await
        .expect("archive for the own platform");
    assert!(with == without, "the archives differ");

    // Another platform: a clear error naming the image's and the requested platform, before
    // anything is written.
    let foreign = if own.architecture == "arm64" {
        Platform::new("linux", "amd64")
    } else {
        Platform::new("linux", "arm64")
    };
    let (layout, spooled) = export("foreign", ExportOptions::new().platform(foreign.clone())).await;
    let err = spooled.expect_err("foreign platform on API 1.41");
    assert!(err.is_not_found(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("for {own} only")) && text.contains(&foreign.to_string()),
        "{text}"
    );
    assert!(
        text.contains("hoist-plat:1") && text.contains("1.41"),
        "{text}"
    );
    assert!(layout.list().expect("list").is_empty());
    let blobs = layout_files(&layout);
    assert_eq!(blobs.len(), 1, "{:?}", blobs.keys());
}
