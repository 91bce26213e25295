//! Every transport pair through the `hoist` CLI against a real registry and a private dockerd:
//! digests preserved where they must be, root filesystems equal to plain `tar -x` of the layers.

use hoist_oci::{Compression, Digest, Layout};
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{Dockerd, Registry, require_root, require_tool};
use hoist_tests::{Hoist, reference_rootfs, registry_image, tree};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

fn layout_manifest(dir: &Path, tag: &str) -> Digest {
    Layout::open(dir)
        .expect("open layout")
        .image(Some(tag), None)
        .expect("tagged image")
        .descriptor
        .digest
}

#[test]
fn registry_layout_archive_and_rootfs_pairs() {
    if !require_tool("docker-registry") || !require_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let spec = ImageSpec::uniform(2, 700_000, Compression::Gzip, 71);
    let image = write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    let r1 = Registry::start().expect("registry 1");
    let r2 = Registry::start().expect("registry 2");
    let hoist = || Hoist::new(&cache).args(["-q", "--chunk-size", "256KiB"]);

    // oci -> docker://: the manifest bytes arrive unchanged.
    hoist()
        .args(["copy", &oci(&src, "v1")])
        .arg(format!("docker://{}/a/app:v1", r1.host()))
        .run()
        .success();
    let pushed = registry_image(r1.addr(), "a/app", "v1").expect("image in registry 1");
    assert_eq!(pushed.manifest_digest, image.manifest_digest);
    assert_eq!(pushed.layers, image.layers);

    // docker:// -> docker://, same registry (mount) and another registry (streamed through).
    let out = Hoist::new(&cache)
        .args(["--progress", "plain", "copy"])
        .arg(format!("docker://{}/a/app:v1", r1.host()))
        .arg(format!("docker://{}/b/app:v1", r1.host()))
        .run()
        .success();
    assert_eq!(out.stderr.matches(" mounted").count(), 2, "{}", out.stderr);
    let mounted = registry_image(r1.addr(), "b/app", "v1").expect("mounted image");
    assert_eq!(mounted.manifest_digest, image.manifest_digest);
    hoist()
        .args(["copy"])
        .arg(format!("docker://{}/a/app:v1", r1.host()))
        .arg(format!("docker://{}/c/app:v2", r2.host()))
        .run()
        .success();
    let copied = registry_image(r2.addr(), "c/app", "v2").expect("image in registry 2");
    assert_eq!(copied.manifest_digest, image.manifest_digest);

    // docker:// -> oci: same manifest digest under the destination tag.
    let pulled = tmp.path().join("pulled");
    hoist()
        .args(["copy"])
        .arg(format!("docker://{}/c/app:v2", r2.host()))
        .arg(oci(&pulled, "p"))
        .run()
        .success();
    assert_eq!(layout_manifest(&pulled, "p"), image.manifest_digest);

    // docker:// -> rootfs (streamed) and oci -> rootfs both equal tar -x of the layers.
    let expected = tmp.path().join("expected");
    reference_rootfs(&src, &image.layers, &expected).expect("reference rootfs");
    let want = tree(&expected).expect("reference tree");
    assert!(want.iter().any(|(_, kind)| kind.starts_with("file ")));
    let from_registry = tmp.path().join("root-registry");
    hoist()
        .args(["copy"])
        .arg(format!("docker://{}/c/app:v2", r2.host()))
        .arg(format!("rootfs:{}", from_registry.display()))
        .run()
        .success();
    assert_eq!(tree(&from_registry).expect("tree"), want);
    let from_layout = tmp.path().join("root-layout");
    hoist()
        .args(["copy", &oci(&src, "v1")])
        .arg(format!("rootfs:{}", from_layout.display()))
        .run()
        .success();
    assert_eq!(tree(&from_layout).expect("tree"), want);

    // oci -> docker-archive:FILE -> oci and -> docker://: config and diff_ids survive (an
    // archive holds uncompressed layers, so the manifest is a new one).
    let archive = tmp.path().join("app.tar");
    let archive_src = format!("docker-archive:{}:example/app:v1", archive.display());
    hoist()
        .args(["copy", &oci(&src, "v1"), &archive_src])
        .run()
        .success();
    let back = tmp.path().join("back");
    hoist()
        .args(["copy", &archive_src, &oci(&back, "b")])
        .run()
        .success();
    let back_image = Layout::open(&back)
        .expect("layout")
        .image(Some("b"), None)
        .expect("image");
    assert_eq!(back_image.config.digest(), &image.config_digest);
    assert_eq!(back_image.config.value().rootfs.diff_ids, image.diff_ids);
    // Into a layout the layers stay as the archive holds them, as skopeo keeps them.
    for layer in &back_image.manifest.value().layers {
        assert_eq!(
            layer.media_type.layer_compression(),
            Some(Compression::None)
        );
    }
    hoist()
        .args(["copy", &archive_src])
        .arg(format!("docker://{}/d/app:v1", r1.host()))
        .run()
        .success();
    let from_archive = registry_image(r1.addr(), "d/app", "v1").expect("archive pushed");
    assert_eq!(from_archive.config.digest, image.config_digest);
    assert_eq!(from_archive.layers.len(), image.layers.len());
    // To a registry they are compressed on the way in (--compression, gzip by default), as
    // docker push and skopeo send them; the config (and so the diff_ids) is unchanged.
    for layer in &from_archive.layers {
        assert_eq!(
            layer.media_type.layer_compression(),
            Some(Compression::Gzip)
        );
    }

    // stdin as the source: the archive piped in, pushed to the registry.
    let mut child = Hoist::new(&cache)
        .args(["-q", "--compression", "zstd", "copy", "docker-archive:-"])
        .arg(format!("docker://{}/e/app:v1", r1.host()))
        .command()
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        let mut file = std::fs::File::open(&archive).expect("archive");
        std::io::copy(&mut file, &mut stdin).expect("pipe the archive");
        stdin.flush().expect("flush");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_stdin = registry_image(r1.addr(), "e/app", "v1").expect("stdin pushed");
    assert_eq!(from_stdin.config.digest, image.config_digest);
    for layer in &from_stdin.layers {
        assert_eq!(
            layer.media_type.layer_compression(),
            Some(Compression::Zstd)
        );
    }
    // The unpacked archive pushed from stdin is the same tree again.
    let from_stdin_root = tmp.path().join("root-stdin");
    hoist()
        .args(["copy"])
        .arg(format!("docker://{}/e/app:v1", r1.host()))
        .arg(format!("rootfs:{}", from_stdin_root.display()))
        .run()
        .success();
    assert_eq!(tree(&from_stdin_root).expect("tree"), want);
}

#[test]
fn daemon_pairs_and_an_archive_piped_into_docker_load() {
    if !require_root()
        || !require_tool("dockerd")
        || !require_tool("docker-registry")
        || !require_tool("tar")
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let spec = ImageSpec::uniform(2, 400_000, Compression::Gzip, 72);
    let image = write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    let dockerd = Dockerd::start().expect("dockerd");
    let registry = Registry::start().expect("registry");
    let host = dockerd.docker_host();
    let hoist = || Hoist::new(&cache).args(["-q"]).env("DOCKER_HOST", &host);

    // oci -> docker-archive:- (stdout) | docker load: the daemon gets the image, its ID is the
    // config digest.
    let mut save = hoist()
        .args(["copy", &oci(&src, "v1"), "docker-archive:-:e2e/loaded:1"])
        .command()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    let pipe = save.stdout.take().expect("stdout");
    let load = dockerd
        .docker()
        .args(["load"])
        .stdin(Stdio::from(pipe))
        .output()
        .expect("docker load");
    assert!(save.wait().expect("wait hoist").success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let id = dockerd
        .run_docker(&["image", "inspect", "--format", "{{.Id}}", "e2e/loaded:1"])
        .expect("inspect loaded image");
    assert_eq!(id.trim(), image.config_digest.to_string());

    // docker-daemon -> docker:// and -> oci: the config (the image ID) is preserved.
    hoist()
        .args(["copy", "docker-daemon:e2e/loaded:1"])
        .arg(format!("docker://{}/d/app:1", registry.host()))
        .run()
        .success();
    let pushed = registry_image(registry.addr(), "d/app", "1").expect("pushed from the daemon");
    assert_eq!(pushed.config.digest, image.config_digest);
    let exported = tmp.path().join("exported");
    hoist()
        .args(["copy", "docker-daemon:e2e/loaded:1", &oci(&exported, "x")])
        .run()
        .success();
    let exported_image = Layout::open(&exported)
        .expect("layout")
        .image(Some("x"), None)
        .expect("image");
    assert_eq!(exported_image.config.digest(), &image.config_digest);

    // docker:// -> docker-daemon under a new name: same ID again.
    hoist()
        .args(["copy"])
        .arg(format!("docker://{}/d/app:1", registry.host()))
        .arg("docker-daemon:e2e/back:2")
        .run()
        .success();
    let id = dockerd
        .run_docker(&["image", "inspect", "--format", "{{.Id}}", "e2e/back:2"])
        .expect("inspect");
    assert_eq!(id.trim(), image.config_digest.to_string());

    // docker-daemon -> rootfs equals tar -x of the original layers.
    let expected = tmp.path().join("expected");
    reference_rootfs(&src, &image.layers, &expected).expect("reference rootfs");
    let root = tmp.path().join("root");
    hoist()
        .args(["copy", "docker-daemon:e2e/back:2"])
        .arg(format!("rootfs:{}", root.display()))
        .run()
        .success();
    assert_eq!(
        tree(&root).expect("tree"),
        tree(&expected).expect("tree"),
        "daemon -> rootfs"
    );
}
