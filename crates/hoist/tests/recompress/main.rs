//! `--recompress` (and skopeo's `--dest-compress-format`): images copied between a real
//! registry (the testkit's `docker-registry`) and OCI layouts with their layers changed to
//! another compression, checked on what the destination then holds: the media types, every
//! layer decompressing to the `diff_id` the unchanged config lists, the digest files, the
//! source layout untouched and no transit copy left behind. Missing components print `SKIP:`
//! (and fail under `CI=true`).

#[path = "../common/mod.rs"]
mod common;
mod format;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hoist_oci::{
    Compression, Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Layout, MediaType,
    RawJson,
};
use hoist_testkit::synth::{
    ImageSpec, RawLayer, SynthImage, write_multi_platform_layout, write_oci_layout,
    write_raw_oci_layout,
};
use hoist_testkit::{Registry, require_tool};

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run hoist")
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?}: {}",
        common::text(&out.stderr)
    );
    out
}

/// The exact bytes a registry serves for `reference`.
fn served(cache: &Path, reference: &str) -> Vec<u8> {
    ok(&mut hoist(cache, &["-q", "inspect", "--raw", reference])).stdout
}

fn digest_in(path: &Path) -> Digest {
    std::fs::read_to_string(path)
        .expect("digest file")
        .parse()
        .expect("a digest")
}

/// How many times a run's `--progress json` events show a layer entering `state`.
fn entered(out: &Output, state: &str) -> usize {
    common::text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["state"] == state)
        .count()
}

/// How many layers a run's `--progress json` events show being compressed.
fn compressed_layers(out: &Output) -> usize {
    entered(out, "compressing")
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out
}

/// Assert that the transit area of the cache holds nothing.
fn no_transit_left(cache: &Path) {
    let transit = cache.join("transit");
    let left: Vec<_> = match std::fs::read_dir(&transit) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "transit copies left: {left:?}");
}

/// The sha256 of what `reader` yields once decompressed as `compression`.
fn diff_id_of(reader: impl Read + Send, compression: Compression) -> Digest {
    let mut decoded = hoist_oci::codec::decoder_for(compression, reader).expect("decoder");
    let mut bytes = Vec::new();
    decoded.read_to_end(&mut bytes).expect("decompresses");
    Digest::sha256_of(&bytes)
}

/// Assert `manifest` is an OCI manifest of `image`'s config (the same blob) whose layers are
/// all `compression`, each (read from `blob`) decompressing to the image's diff_id.
fn assert_recompressed(
    manifest: &RawJson<ImageManifest>,
    image: &SynthImage,
    compression: Compression,
    mut blob: impl FnMut(&Descriptor) -> Vec<u8>,
) {
    let v = manifest.value();
    assert_eq!(
        v.media_type.as_ref().map(MediaType::as_str),
        Some(MediaType::OCI_MANIFEST)
    );
    assert_eq!(
        (&v.config.digest, v.config.size),
        (&image.config_digest, image.config_size),
        "the config is the same blob"
    );
    assert_eq!(v.layers.len(), image.diff_ids.len());
    for (layer, diff_id) in v.layers.iter().zip(&image.diff_ids) {
        assert_eq!(layer.media_type, MediaType::oci_layer(compression));
        let bytes = blob(layer);
        assert_eq!(bytes.len() as u64, layer.size);
        assert_eq!(Digest::sha256_of(&bytes), layer.digest);
        assert_eq!(Compression::detect(&bytes), compression, "{}", layer.digest);
        assert_eq!(&diff_id_of(&bytes[..], compression), diff_id);
    }
}

/// The image a registry serves for `reference`, pulled as it is into a new layout at `dir`
/// (every blob verified on the way): the manifest, and the layout holding its blobs.
fn pulled(cache: &Path, reference: &str, dir: &Path) -> (RawJson<ImageManifest>, Layout) {
    ok(hoist(cache, &["-q", "copy", reference]).arg(common::arg(dir, ":t")));
    let layout = Layout::open(dir).expect("pulled layout");
    let tagged = layout.resolve(Some("t")).expect("tagged");
    (layout.read_json(&tagged).expect("manifest"), layout)
}

fn layout_blob(layout: &Layout, d: &Descriptor) -> Vec<u8> {
    std::fs::read(layout.blob_path(&d.digest)).expect("blob in the layout")
}

#[test]
fn gzip_becomes_zstd_in_a_registry_and_plain_tars_in_a_layout() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(3, 96 << 10, Compression::Gzip, 31);
    let image = write_oci_layout(&source, "v1", &spec).expect("source layout");
    let source_files = files(&source);
    let registry = Registry::start().expect("registry");
    let repo = "team/app";
    let at = |tag: &str| format!("docker://{}/{repo}:{tag}", registry.host());
    let digest_file = tmp.path().join("digest");

    // Layout (gzip) -> registry as zstd.
    let push = || {
        let mut cmd = hoist(
            &cache,
            &["--progress", "json", "--compression", "zstd", "copy"],
        );
        cmd.args(["--recompress", "--digestfile"])
            .arg(&digest_file)
            .arg(common::arg(&source, ":v1"))
            .arg(at("zstd"));
        ok(&mut cmd)
    };
    let first = push();
    assert_eq!(compressed_layers(&first), 3, "each layer compressed once");
    let bytes = served(&cache, &at("zstd"));
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    let zstd = RawJson::<ImageManifest>::parse(bytes.clone()).expect("manifest");
    let (stored, blobs) = pulled(&cache, &at("zstd"), &tmp.path().join("check-zstd"));
    assert_eq!(stored.bytes(), zstd.bytes());
    assert_recompressed(&zstd, &image, Compression::Zstd, |d| layout_blob(&blobs, d));
    assert_eq!(
        files(&source),
        source_files,
        "the source layout is untouched"
    );
    no_transit_left(&cache);

    // Again: the layers are remembered and the registry has them; nothing is compressed and
    // the same manifest is pushed.
    let again = push();
    assert_eq!(
        compressed_layers(&again),
        0,
        "{}",
        common::text(&again.stderr)
    );
    assert_eq!(served(&cache, &at("zstd")), bytes);

    // Registry (zstd) -> layout as plain tars: each layer's digest is its diff_id.
    let plain = tmp.path().join("plain");
    ok(hoist(
        &cache,
        &["-q", "--compression", "none", "pull", "--recompress"],
    )
    .arg(format!("{}/{repo}:zstd", registry.host()))
    .arg(&plain));
    let layout = Layout::open(&plain).expect("pulled layout");
    let tagged = layout.resolve(Some("zstd")).expect("tagged as the source");
    let stored: RawJson<ImageManifest> = layout.read_json(&tagged).expect("manifest");
    assert_recompressed(&stored, &image, Compression::None, |d| {
        layout_blob(&layout, d)
    });
    let digests: Vec<&Digest> = stored.value().layers.iter().map(|l| &l.digest).collect();
    assert_eq!(digests, image.diff_ids.iter().collect::<Vec<_>>());
    // Only the new image's blobs are in the layout: no zstd blob was kept beside them.
    let blobs = files(&plain.join("blobs/sha256")).len();
    assert_eq!(blobs, 1 + 1 + 3, "manifest, config and three layers");
    no_transit_left(&cache);

    // Registry (zstd) -> registry as gzip, twice: the second run finds every layer's
    // remembered recompression there, and neither downloads nor compresses anything.
    let mirror = |tag: &str| {
        let mut cmd = hoist(&cache, &["--progress", "json", "copy"]);
        cmd.args(["--dest-compress-format", "gzip"])
            .arg(at("zstd"))
            .arg(format!("docker://{}/team/mirror:{tag}", registry.host()));
        ok(&mut cmd)
    };
    let first = mirror("a");
    assert_eq!(
        (compressed_layers(&first), entered(&first, "fetching")),
        (3, 3)
    );
    let again = mirror("b");
    assert_eq!(
        (compressed_layers(&again), entered(&again, "fetching")),
        (0, 0),
        "{}",
        common::text(&again.stderr)
    );
    let a = served(
        &cache,
        &format!("docker://{}/team/mirror:a", registry.host()),
    );
    let b = served(
        &cache,
        &format!("docker://{}/team/mirror:b", registry.host()),
    );
    assert_eq!(a, b, "the same image");
    no_transit_left(&cache);

    // Layout (plain) -> registry (a new repository) as gzip, with skopeo's spelling.
    let back = "team/back";
    ok(
        hoist(&cache, &["-q", "copy", "--dest-compress-format", "gzip"])
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(common::arg(&plain, ":zstd"))
            .arg(format!("docker://{}/{back}:gz", registry.host())),
    );
    let bytes = served(&cache, &format!("docker://{}/{back}:gz", registry.host()));
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    let gz = RawJson::<ImageManifest>::parse(bytes).expect("manifest");
    let at_back = format!("docker://{}/{back}:gz", registry.host());
    let (_, blobs) = pulled(&cache, &at_back, &tmp.path().join("check-gz"));
    assert_recompressed(&gz, &image, Compression::Gzip, |d| layout_blob(&blobs, d));
    no_transit_left(&cache);
}

#[test]
fn the_command_line_refuses_what_recompression_cannot_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    for (args, says) in [
        (
            &["copy", "--recompress", "oci:x:1", "rootfs:/tmp/hoist-never"][..],
            "--recompress writes layers to a registry or an OCI layout",
        ),
        (
            &[
                "--compression",
                "zstd",
                "copy",
                "--recompress",
                "-f",
                "v2s2",
                "oci:x:1",
                "oci:y:1",
            ][..],
            "no zstd layers",
        ),
        (
            &[
                "--compression",
                "zstd",
                "copy",
                "--dest-compress-format",
                "gzip",
                "oci:x:1",
                "oci:y:1",
            ][..],
            "name different compressions",
        ),
        (
            &["unpack", "--recompress", "oci:x:1", "/tmp/hoist-never"][..],
            "unexpected argument",
        ),
    ] {
        let out = run(&mut hoist(&cache, args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = common::text(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn all_platforms_are_recompressed_and_listed_in_an_oci_index() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    // amd64 has gzip layers, arm64 zstd ones.
    let multi = write_multi_platform_layout(&source, "multi").expect("source layout");
    let registry = Registry::start().expect("registry");
    let to = format!("docker://{}/team/multi:v1", registry.host());
    let digest_file = tmp.path().join("digest");

    ok(
        hoist(&cache, &["-q", "--compression", "zstd", "copy", "--all"])
            .args(["--recompress", "--digestfile"])
            .arg(&digest_file)
            .arg(common::arg(&source, ":multi"))
            .arg(&to),
    );
    let bytes = served(&cache, &to);
    assert_eq!(digest_in(&digest_file), Digest::sha256_of(&bytes));
    let index = RawJson::<ImageIndex>::parse(bytes).expect("index");
    assert_eq!(
        index.value().media_type.as_ref().map(MediaType::as_str),
        Some(MediaType::OCI_INDEX)
    );
    let listed = &index.value().manifests;
    assert_eq!(listed.len(), 2);
    let repo = "team/multi";
    for (n, (child, image)) in listed.iter().zip(&multi.images).enumerate() {
        assert_eq!(
            child.platform.as_ref().map(|p| p.architecture.as_str()),
            Some(if image.layers[0].media_type == MediaType::OCI_LAYER_GZIP {
                "amd64"
            } else {
                "arm64"
            })
        );
        let at = format!("docker://{}/{repo}@{}", registry.host(), child.digest);
        let check = tmp.path().join(format!("check-{n}"));
        let (m, blobs) = pulled(&cache, &at, &check);
        assert_eq!(m.digest(), &child.digest);
        assert_recompressed(&m, image, Compression::Zstd, |d| layout_blob(&blobs, d));
    }
    // The arm64 image was zstd already: copied as it is, the source's own manifest.
    assert_eq!(listed[1].digest, multi.images[1].manifest_digest);
    let arm = RawJson::<ImageManifest>::parse(served(
        &cache,
        &format!("docker://{}/{repo}@{}", registry.host(), listed[1].digest),
    ))
    .expect("arm64 image");
    let kept: Vec<&Digest> = arm.value().layers.iter().map(|l| &l.digest).collect();
    let source_layers: Vec<&Digest> = multi.images[1].layers.iter().map(|l| &l.digest).collect();
    assert_eq!(kept, source_layers);

    // And back into a layout, every platform as gzip.
    let pulled = tmp.path().join("pulled");
    ok(hoist(&cache, &["-q", "pull", "--all", "--recompress"])
        .arg(format!("{}/{repo}:v1", registry.host()))
        .arg(&pulled));
    let layout = Layout::open(&pulled).expect("layout");
    let top = layout.resolve(Some("v1")).expect("tagged");
    let index: RawJson<ImageIndex> = layout.read_json(&top).expect("index");
    for (child, image) in index.value().manifests.iter().zip(&multi.images) {
        let m: RawJson<ImageManifest> = layout.read_json(child).expect("image");
        assert_recompressed(&m, image, Compression::Gzip, |d| layout_blob(&layout, d));
    }
    no_transit_left(&cache);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_stops_the_copy_and_tags_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let image = write_oci_layout(
        &source,
        "v1",
        &ImageSpec::uniform(2, 32 << 10, Compression::Gzip, 9),
    )
    .expect("source layout");
    // Give the image a config whose second diff_id names other content.
    let layout = Layout::open(&source).expect("layout");
    let tagged = layout.resolve(Some("v1")).expect("tag");
    let manifest: RawJson<ImageManifest> = layout.read_json(&tagged).expect("manifest");
    let config: RawJson<ImageConfig> = layout.read_json(&manifest.value().config).expect("config");
    let mut lying = config.value().clone();
    lying.rootfs.diff_ids[1] = Digest::sha256_of(b"something else");
    let lying = RawJson::from_value(lying).expect("config json");
    layout.write_json(&lying).expect("write config");
    let mut m = manifest.value().clone();
    m.config = Descriptor::new(
        MediaType::OCI_CONFIG,
        lying.digest().clone(),
        lying.bytes().len() as u64,
    );
    let m = RawJson::from_value(m).expect("manifest json");
    layout.write_json(&m).expect("write manifest");
    layout
        .set_tag("lying", &m.descriptor(MediaType::OCI_MANIFEST))
        .expect("tag");

    let target = tmp.path().join("target");
    let out = run(hoist(
        &cache,
        &["-q", "--compression", "zstd", "copy", "--recompress"],
    )
    .arg(common::arg(&source, ":lying"))
    .arg(common::arg(&target, ":v1")));
    assert_eq!(out.status.code(), Some(1));
    let stderr = common::text(&out.stderr);
    assert!(
        stderr.contains(&format!("layer {}", image.layers[1].digest))
            && stderr.contains("decompresses to"),
        "{stderr}"
    );
    // Nothing is tagged at the destination (a layout the copy created, where the first, good
    // layer stays verified for the next run), and the wrong layer left no blob there.
    let layout = Layout::open(&target).expect("the destination layout");
    assert!(layout.resolve(Some("v1")).is_err());
    let blobs = files(&target.join("blobs/sha256")).len();
    assert_eq!(blobs, 1, "only the first, good layer: {blobs}");
}

#[test]
fn a_layer_listed_twice_is_compressed_and_pushed_once() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let mut empty = hoist_testkit::rawtar::Tar::new();
    empty.file("etc/hostname", b"box");
    let shared = RawLayer::compress(&empty.finish(), Compression::Gzip).expect("gzip");
    let mut app = hoist_testkit::rawtar::Tar::new();
    app.file("app/run", b"#!/bin/sh");
    let layers = [
        shared.clone(),
        RawLayer::compress(&app.finish(), Compression::Gzip).expect("gzip"),
        shared,
    ];
    write_raw_oci_layout(&source, "v1", &layers).expect("source layout");
    let registry = Registry::start().expect("registry");
    let to = format!("docker://{}/team/twice:1", registry.host());
    let mut cmd = hoist(
        &cache,
        &["--progress", "json", "--compression", "zstd", "copy"],
    );
    cmd.arg("--recompress")
        .arg(common::arg(&source, ":v1"))
        .arg(&to);
    let out = ok(&mut cmd);
    assert_eq!(compressed_layers(&out), 2, "{}", common::text(&out.stderr));
    let m = RawJson::<ImageManifest>::parse(served(&cache, &to)).expect("manifest");
    let listed: Vec<&Descriptor> = m.value().layers.iter().collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], listed[2], "the same new blob, listed twice");
    assert_eq!(listed[0].media_type, MediaType::OCI_LAYER_ZSTD);
    let (_, blobs) = pulled(&cache, &to, &tmp.path().join("check"));
    for layer in listed {
        blobs.verify_blob(layer).expect("pushed whole");
    }
}

#[test]
fn a_recompressing_push_interrupted_mid_layer_resumes_where_the_registry_stopped() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    // One incompressible 8 MB gzip layer, recompressed to zstd and pushed in 1 MiB chunks.
    let spec = ImageSpec::uniform(1, 8_000_000, Compression::Gzip, 23);
    let image = write_oci_layout(&source, "v1", &spec).expect("source layout");
    let registry = Registry::start().expect("registry");
    let chunk: u64 = 1 << 20;
    // The 5th chunk hangs, so the push is interrupted with 4 chunks acknowledged and the 5th
    // on its way.
    let proxy = common::proxy_stalling_chunk(&registry, 5);
    let target = format!("docker://{}/resume/app:v1", proxy.host());
    let push = || {
        let mut cmd = hoist(
            &cache,
            &["-q", "--chunk-size", "1MiB", "--compression", "zstd"],
        );
        cmd.args(["copy", "--recompress"])
            .arg(common::arg(&source, ":v1"))
            .arg(&target);
        cmd
    };
    // Ctrl-C: the push finishes the chunk in flight, stops, and takes its transit copy with it.
    let mut child = push().spawn().expect("spawn hoist");
    let status = common::signal_after_chunks(&mut child, &proxy, 4, "INT");
    assert!(!status.success());
    no_transit_left(&cache);
    let patches: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        patches.iter().all(|r| r.status == Some(202)),
        "the chunk in flight was finished, none was cut: {patches:?}"
    );
    // The layer's chunks the registry holds (the config's small PATCH may be among them).
    let acked = patches
        .iter()
        .filter(|r| r.request_body_bytes == chunk)
        .count() as u64;
    assert!(acked >= 4, "{patches:?}");

    // The rerun compresses the layer again into the same bytes, and the upload continues at
    // the registry's offset: what is missing, and the config if it did not get there.
    proxy.set_plan(Vec::new());
    proxy.clear_records();
    ok(&mut push());
    let sent: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/uploads/"))
        .collect();
    let resent: u64 = sent.iter().map(|r| r.request_body_bytes).sum();
    let bytes = served(
        &cache,
        &format!("docker://{}/resume/app:v1", registry.host()),
    );
    let m = RawJson::<ImageManifest>::parse(bytes).expect("manifest");
    let layer = &m.value().layers[0];
    assert_eq!(layer.media_type, MediaType::OCI_LAYER_ZSTD);
    assert!(
        resent <= layer.size - acked * chunk + image.config_size,
        "the rerun sent {resent} bytes of a {}-byte layer with {acked} MiB already there",
        layer.size
    );
    assert!(resent >= layer.size - acked * chunk, "{resent}");
    let (_, blobs) = pulled(
        &cache,
        &format!("docker://{}/resume/app:v1", registry.host()),
        &tmp.path().join("check"),
    );
    assert_recompressed(&m, &image, Compression::Zstd, |d| layout_blob(&blobs, d));
}

fn states_of(out: &Output, id: &Digest) -> Vec<String> {
    common::text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["id"] == id.to_string().as_str())
        .filter_map(|e| e["state"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn kept_layers_are_pushed_from_the_source_layout_and_mounted_within_one_registry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let tar = |name: &str, body: &[u8]| {
        let mut t = hoist_testkit::rawtar::Tar::new();
        t.file(name, body);
        t.finish()
    };
    // Two gzip layers to recompress around a zstd one to keep.
    let layers = [
        RawLayer::compress(&tar("a/one", b"first"), Compression::Gzip).expect("gzip"),
        RawLayer::compress(&tar("b/two", b"second"), Compression::Zstd).expect("zstd"),
        RawLayer::compress(&tar("c/three", b"third"), Compression::Gzip).expect("gzip"),
    ];
    let image = write_raw_oci_layout(&source, "v1", &layers).expect("source layout");
    let kept = Digest::sha256_of(&layers[1].blob);
    let registry = Registry::start().expect("registry");
    let at = |repo: &str| format!("docker://{}/team/{repo}:1", registry.host());
    let recompress = |from: &str, to: &str| {
        let mut cmd = hoist(
            &cache,
            &["--progress", "json", "--compression", "zstd", "copy"],
        );
        cmd.args(["--recompress", from, to]);
        ok(&mut cmd)
    };
    let check = |reference: &str, dir: &str| {
        let m = RawJson::<ImageManifest>::parse(served(&cache, reference)).expect("manifest");
        let (_, blobs) = pulled(&cache, reference, &tmp.path().join(dir));
        assert_recompressed(&m, &image, Compression::Zstd, |d| layout_blob(&blobs, d));
        assert_eq!(m.value().layers[1].digest, kept, "the zstd layer is kept");
    };

    // From a layout: the kept layer goes from where it is to the registry, never written
    // into a transit copy first.
    let out = recompress(&common::arg(&source, ":v1"), &at("direct"));
    assert_eq!(compressed_layers(&out), 2, "{}", common::text(&out.stderr));
    let states = states_of(&out, &kept);
    assert!(states.contains(&"pushing".to_owned()), "{states:?}");
    assert!(!states.contains(&"writing".to_owned()), "{states:?}");
    check(&at("direct"), "check-direct");
    no_transit_left(&cache);

    // Within one registry: the source as it is in one repository, recompressed into another.
    // The kept layer is mounted, neither downloaded nor uploaded; the other two are pulled.
    ok(hoist(&cache, &["-q", "copy"])
        .arg(common::arg(&source, ":v1"))
        .arg(at("mixed")));
    let out = recompress(&at("mixed"), &at("mounted"));
    assert_eq!(
        (entered(&out, "fetching"), entered(&out, "mounted")),
        (2, 1),
        "{}",
        common::text(&out.stderr)
    );
    assert_eq!(states_of(&out, &kept), ["mounted"]);
    check(&at("mounted"), "check-mounted");
    no_transit_left(&cache);
}
