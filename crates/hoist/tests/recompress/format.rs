//! Which manifest format and which compression `--recompress` and its neighbours pick: a
//! zstd image made v2s2 with `-f v2s2`, a Docker image kept Docker's unless zstd, skopeo's
//! `--dest-compress-format` against `HOIST_COMPRESSION`, and `--compression` typed without
//! `--recompress`.

use super::*;

#[test]
fn a_zstd_image_recompressed_to_gzip_can_be_written_as_v2s2() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(2, 64 << 10, Compression::Zstd, 5);
    let image = write_oci_layout(&source, "v1", &spec).expect("source layout");
    let registry = Registry::start().expect("registry");
    let to = format!("docker://{}/team/old:v1", registry.host());

    // Without --recompress, v2s2 cannot describe the zstd layers: refused, nothing pushed.
    let refused = run(hoist(&cache, &["-q", "copy", "-f", "v2s2"])
        .arg(common::arg(&source, ":v1"))
        .arg(&to));
    assert_eq!(refused.status.code(), Some(1));
    assert!(common::text(&refused.stderr).contains("zstd"));

    // With it (gzip by default), the image becomes a Docker v2s2 image of gzip layers.
    ok(hoist(&cache, &["-q", "copy", "-f", "v2s2", "--recompress"])
        .arg(common::arg(&source, ":v1"))
        .arg(&to));
    let m = RawJson::<ImageManifest>::parse(served(&cache, &to)).expect("manifest");
    let v = m.value();
    assert_eq!(
        v.media_type.as_ref().map(MediaType::as_str),
        Some(MediaType::DOCKER_MANIFEST)
    );
    assert_eq!(v.config.digest, image.config_digest);
    assert!(
        v.layers
            .iter()
            .all(|l| l.media_type == MediaType::DOCKER_LAYER_GZIP)
    );
    // It unpacks to what the zstd source unpacks to.
    let from_registry = tmp.path().join("root-registry");
    let from_source = tmp.path().join("root-source");
    ok(hoist(&cache, &["-q", "unpack"])
        .arg(&to)
        .arg(&from_registry));
    ok(hoist(&cache, &["-q", "unpack"])
        .arg(common::arg(&source, ":v1"))
        .arg(&from_source));
    assert_eq!(files(&from_registry), files(&from_source));
    for file in files(&from_source) {
        assert_eq!(
            std::fs::read(from_registry.join(&file)).expect("file"),
            std::fs::read(from_source.join(&file)).expect("file"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn dest_compress_format_overrides_the_compression_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let dest = tmp.path().join("dest");
    let spec = ImageSpec::uniform(2, 32 << 10, Compression::Zstd, 9);
    let image = write_oci_layout(&source, "v1", &spec).expect("source layout");

    // HOIST_COMPRESSION=zstd is a default; the flag on the command line names gzip and wins.
    ok(
        hoist(&cache, &["-q", "copy", "--dest-compress-format", "gzip"])
            .env("HOIST_COMPRESSION", "zstd")
            .arg(common::arg(&source, ":v1"))
            .arg(common::arg(&dest, ":v1")),
    );
    let layout = Layout::open(&dest).expect("dest layout");
    let tagged = layout.resolve(Some("v1")).expect("tagged");
    let m: RawJson<ImageManifest> = layout.read_json(&tagged).expect("manifest");
    assert_recompressed(&m, &image, Compression::Gzip, |d| layout_blob(&layout, d));

    // The two flags on one command line still conflict.
    let out = run(hoist(
        &cache,
        &[
            "--compression",
            "zstd",
            "copy",
            "--dest-compress-format",
            "gzip",
        ],
    )
    .arg(common::arg(&source, ":v1"))
    .arg(common::arg(&tmp.path().join("other"), ":v1")));
    assert_eq!(out.status.code(), Some(2));
}

/// The states a run's `--progress json` events show layer `id` entering, in order.
#[test]
fn a_docker_image_stays_docker_unless_its_new_layers_are_zstd() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(2, 64 << 10, Compression::Gzip, 11);
    let image = write_oci_layout(&source, "v1", &spec).expect("source layout");
    let registry = Registry::start().expect("registry");
    let at = |repo: &str| format!("docker://{}/team/{repo}:v1", registry.host());
    // The source: a Docker v2s2 image of gzip layers, as `docker push` leaves one.
    let docker = at("docker");
    ok(hoist(&cache, &["-q", "copy", "-f", "v2s2"])
        .arg(common::arg(&source, ":v1"))
        .arg(&docker));
    let docker_bytes = served(&cache, &docker);
    let media_type = |m: &RawJson<ImageManifest>| {
        m.value()
            .media_type
            .as_ref()
            .map(|t| t.as_str().to_string())
    };

    // Plain layers: Docker has a media type for them, so the image stays Docker's, as
    // skopeo keeps it.
    let plain = at("plain");
    ok(hoist(
        &cache,
        &["-q", "--compression", "none", "copy", "--recompress"],
    )
    .arg(&docker)
    .arg(&plain));
    let (m, blobs) = pulled(&cache, &plain, &tmp.path().join("plain"));
    assert_eq!(media_type(&m).as_deref(), Some(MediaType::DOCKER_MANIFEST));
    assert_eq!(m.value().config.digest, image.config_digest);
    for (layer, diff_id) in m.value().layers.iter().zip(&image.diff_ids) {
        assert_eq!(layer.media_type, MediaType::DOCKER_LAYER);
        assert_eq!(&Digest::sha256_of(&layout_blob(&blobs, layer)), diff_id);
    }

    // zstd: Docker has none other tools read, so the image becomes OCI.
    let zstd = at("zstd");
    ok(hoist(
        &cache,
        &["-q", "--compression", "zstd", "copy", "--recompress"],
    )
    .arg(&docker)
    .arg(&zstd));
    let (m, blobs) = pulled(&cache, &zstd, &tmp.path().join("zstd"));
    assert_recompressed(&m, &image, Compression::Zstd, |d| layout_blob(&blobs, d));

    // gzip already: nothing to recompress, and the image is copied as it is stored.
    let same = at("same");
    ok(hoist(&cache, &["-q", "copy", "--recompress"])
        .arg(&docker)
        .arg(&same));
    assert_eq!(served(&cache, &same), docker_bytes);
    no_transit_left(&cache);
}

#[test]
fn compression_typed_without_recompress_between_layouts_says_what_it_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(1, 64 << 10, Compression::Gzip, 13);
    write_oci_layout(&source, "v1", &spec).expect("source layout");
    let note = "add --recompress";
    let typed = ok(hoist(&cache, &["--compression", "zstd", "copy"])
        .arg(common::arg(&source, ":v1"))
        .arg(common::arg(&tmp.path().join("a"), ":v1")));
    assert!(
        common::text(&typed.stderr).contains(note),
        "{}",
        common::text(&typed.stderr)
    );
    // The gzip layer was copied as it is, as the note says.
    let a = Layout::open(tmp.path().join("a")).expect("layout");
    let m: RawJson<ImageManifest> = a.read_json(&a.resolve(Some("v1")).expect("v1")).expect("m");
    assert_eq!(m.value().layers[0].media_type, MediaType::OCI_LAYER_GZIP);
    // From the environment it is a standing choice, and with --recompress it does apply.
    for (env, args) in [
        (Some("zstd"), &["copy"][..]),
        (None, &["--compression", "zstd", "copy", "--recompress"][..]),
    ] {
        let dir = tmp.path().join(format!("b-{}", args.len()));
        let mut cmd = hoist(&cache, args);
        if let Some(v) = env {
            cmd.env("HOIST_COMPRESSION", v);
        }
        let out = ok(cmd
            .arg(common::arg(&source, ":v1"))
            .arg(common::arg(&dir, ":v1")));
        assert!(!common::text(&out.stderr).contains(note), "{args:?}");
    }
}
