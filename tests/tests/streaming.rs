//! Copies from a registry that stream with no transit copy on disk: into another registry,
//! into a docker archive (a file or stdout), and into the Docker daemon; with a stalled and a
//! cut connection, and a source registry that sends wrong bytes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hoist_oci::archive::spool;
use hoist_oci::{Compression, Layout};
use hoist_testkit::synth::{ImageSpec, SynthImage, write_oci_layout};
use hoist_testkit::{
    Dockerd, FaultAction, FaultProxy, FaultRule, Registry, require_root, require_tool,
};
use hoist_tests::{Hoist, registry_image};

/// Regular files under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A registry holding a synthetic gzip image at `a/app:v1`.
struct Source {
    tmp: tempfile::TempDir,
    cache: PathBuf,
    registry: Registry,
    image: SynthImage,
}

fn source(seed: u64) -> Option<Source> {
    if !require_tool("docker-registry") {
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let spec = ImageSpec::uniform(3, 600_000, Compression::Gzip, seed);
    let image = write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
    let registry = Registry::start().expect("registry");
    // Seeded with a separate cache: the copies under test must leave theirs empty.
    Hoist::new(&tmp.path().join("seed-cache"))
        .args(["-q", "copy"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/a/app:v1", registry.host()))
        .run()
        .success();
    Some(Source {
        tmp,
        cache,
        registry,
        image,
    })
}

impl Source {
    fn hoist(&self) -> Hoist {
        Hoist::new(&self.cache).args(["--chunk-size", "256KiB", "--retries", "4"])
    }

    /// The request path of layer `i`'s blob GET (to aim a fault at it).
    fn layer_path(&self, i: usize) -> String {
        format!("/blobs/{}", self.image.layers[i].digest)
    }

    fn assert_cache_empty(&self) {
        let left = files_under(&self.cache);
        assert!(left.is_empty(), "files left in the cache: {left:?}");
    }

    /// Nothing of a blob is on disk while a copy streams: the cache holds at most the upload
    /// state files (a few hundred bytes each, naming a session and its offset) that let a
    /// stopped copy continue.
    fn assert_no_transit_copy(&self) {
        let uploads = self.cache.join("uploads");
        let other: Vec<PathBuf> = files_under(&self.cache)
            .into_iter()
            .filter(|f| {
                let state = f.parent() == Some(uploads.as_path())
                    && f.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("upload-"));
                let small = std::fs::metadata(f).map_or(true, |m| m.len() < 4096);
                !(state && small)
            })
            .collect();
        assert!(other.is_empty(), "files in the cache mid-copy: {other:?}");
    }
}

#[test]
fn registry_to_registry_streams_with_no_transit_copy_even_while_stalled() {
    let Some(s) = source(81) else { return };
    let b = Registry::start().expect("registry B");
    // The second layer's source stalls for a while: the copy is mid-flight, and the cache
    // must hold nothing meanwhile.
    let front_a = FaultProxy::start(
        s.registry.addr(),
        vec![FaultRule::new(
            "GET",
            &s.layer_path(1),
            1,
            FaultAction::Stall(Duration::from_secs(2)),
        )],
    )
    .expect("proxy");
    let mut child = s
        .hoist()
        .args(["-q", "copy"])
        .arg(format!("docker://{}/a/app:v1", front_a.host()))
        .arg(format!("docker://{}/b/app:v2", b.host()))
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    let mut polls = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        s.assert_no_transit_copy();
        polls += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        polls >= 10,
        "the copy was observed while running ({polls} polls)"
    );
    assert_eq!(front_a.faults_injected(), 1, "the stall happened mid-copy");
    s.assert_cache_empty();
    let copied = registry_image(b.addr(), "b/app", "v2").expect("image at B");
    assert_eq!(copied.manifest_digest, s.image.manifest_digest);
    assert_eq!(copied.layers, s.image.layers);
    // Blob bytes were read from the source exactly once each (no re-reads without faults).
    for layer in &s.image.layers {
        let read: u64 = front_a
            .records()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&layer.digest.to_string()))
            .map(|r| r.response_body_bytes)
            .sum();
        assert_eq!(read, layer.size, "layer {}", layer.digest);
    }
}

#[test]
fn cuts_on_either_side_resume_and_a_lying_source_fails_with_nothing_at_the_destination() {
    let Some(s) = source(82) else { return };
    let b = Registry::start().expect("registry B");

    // The destination's connection is cut mid-chunk: the copy still completes.
    let front_b = FaultProxy::start(
        b.addr(),
        vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            2,
            FaultAction::CutAfterBodyBytes(100_000),
        )],
    )
    .expect("proxy");
    s.hoist()
        .args(["-q", "copy"])
        .arg(format!("docker://{}/a/app:v1", s.registry.host()))
        .arg(format!("docker://{}/cut/app:v1", front_b.host()))
        .run()
        .success();
    assert_eq!(front_b.faults_injected(), 1);
    let copied = registry_image(b.addr(), "cut/app", "v1").expect("image at B");
    assert_eq!(copied.manifest_digest, s.image.manifest_digest);

    // The source's connection breaks mid-blob: the chunk is fetched again from where the
    // destination stands, and the copy completes.
    let flaky = FaultProxy::start(
        s.registry.addr(),
        vec![FaultRule::new(
            "GET",
            &s.layer_path(0),
            1,
            FaultAction::TruncateResponseBody(50_000),
        )],
    )
    .expect("proxy");
    s.hoist()
        .args(["-q", "copy"])
        .arg(format!("docker://{}/a/app:v1", flaky.host()))
        .arg(format!("docker://{}/flaky/app:v1", b.host()))
        .run()
        .success();
    assert_eq!(flaky.faults_injected(), 1);
    let copied = registry_image(b.addr(), "flaky/app", "v1").expect("image at B");
    assert_eq!(copied.manifest_digest, s.image.manifest_digest);

    // The source flips a byte of one layer (every time it is asked): the copy fails with a
    // clear message, and the destination has neither that blob nor the manifest.
    let liar = FaultProxy::start(
        s.registry.addr(),
        vec![FaultRule::new(
            "GET",
            &s.layer_path(2),
            0,
            FaultAction::CorruptResponseBody,
        )],
    )
    .expect("proxy");
    let out = s
        .hoist()
        .args(["copy"])
        .arg(format!("docker://{}/a/app:v1", liar.host()))
        .arg(format!("docker://{}/lied/app:v1", b.host()))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("hash to"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&s.image.layers[2].digest.to_string()),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("<html"), "{}", out.stderr);
    assert!(registry_image(b.addr(), "lied/app", "v1").is_err());
    let blob = hoist_testkit::http_get(
        b.addr(),
        &format!("/v2/lied/app/blobs/{}", s.image.layers[2].digest),
    )
    .expect("GET");
    assert_eq!(blob.status, 404, "the corrupted blob never completed at B");
    // The other layers' uploads, stopped when this one failed, may have left their state
    // for a rerun; the lying blob's own is gone with its session.
    s.assert_no_transit_copy();
    let lied = s.image.layers[2].digest.hex().to_string();
    let kept = files_under(&s.cache);
    assert!(
        !kept.iter().any(|f| f.to_string_lossy().contains(&lied)),
        "{kept:?}"
    );
}

/// Spool an archive back and check it is the registry image: same config, same diff_ids, and
/// each layer the very gzip blob the registry serves.
fn assert_archive_is(archive: &Path, s: &Source, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let file = std::fs::File::open(archive).expect("archive");
    let spooled = spool(std::io::BufReader::new(file), &layout).expect("spool the archive");
    assert_eq!(spooled.len(), 1);
    assert_eq!(spooled[0].tags, vec![name.to_string()]);
    let image = layout.image(Some(name), None).expect("image");
    assert_eq!(image.config.digest(), &s.image.config_digest);
    assert_eq!(image.config.value().rootfs.diff_ids, s.image.diff_ids);
    let digests: Vec<_> = image
        .manifest
        .value()
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    let want: Vec<_> = s.image.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(digests, want);
}

#[test]
fn registry_to_docker_archive_file_and_stdout() {
    let Some(s) = source(83) else { return };
    let reference = format!("docker://{}/a/app:v1", s.registry.host());

    // To a file.
    let file = s.tmp.path().join("app.tar");
    s.hoist()
        .args(["-q", "copy", &reference])
        .arg(format!("docker-archive:{}:example/app:v1", file.display()))
        .run()
        .success();
    assert_archive_is(&file, &s, "example/app:v1");
    s.assert_cache_empty();

    // skopeo reads it too (gzip layer.tar entries with the config's uncompressed diff_ids).
    if require_tool("skopeo") {
        let oci = s.tmp.path().join("skopeo-oci");
        let out = std::process::Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("docker-archive:{}", file.display()))
            .arg(format!("oci:{}:s", oci.display()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let image = Layout::open(&oci)
            .expect("layout")
            .image(Some("s"), None)
            .expect("image");
        assert_eq!(image.config.value().rootfs.diff_ids, s.image.diff_ids);
    }

    // To stdout, captured in a file.
    let piped = s.tmp.path().join("stdout.tar");
    let status = s
        .hoist()
        .args(["-q", "copy", &reference, "docker-archive:-"])
        .command()
        .stdout(std::fs::File::create(&piped).expect("create"))
        .status()
        .expect("run hoist");
    assert!(status.success());
    let name = format!("{}/a/app:v1", s.registry.host());
    assert_archive_is(&piped, &s, &name);
    s.assert_cache_empty();

    // A lying source: the file destination is never created; stdout gets a truncated
    // archive (no manifest.json) and the exit code is 1 with a clear error.
    let liar = FaultProxy::start(
        s.registry.addr(),
        vec![FaultRule::new(
            "GET",
            &s.layer_path(1),
            0,
            FaultAction::CorruptResponseBody,
        )],
    )
    .expect("proxy");
    let bad_ref = format!("docker://{}/a/app:v1", liar.host());
    let never = s.tmp.path().join("never.tar");
    let out = s
        .hoist()
        .args(["copy", &bad_ref])
        .arg(format!("docker-archive:{}", never.display()))
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("digest"), "{}", out.stderr);
    assert!(!never.exists());
    assert!(
        files_under(s.tmp.path())
            .iter()
            .all(|p| !p.to_string_lossy().contains(".hoist-archive-")),
        "no temp archive left"
    );
    let truncated = s.tmp.path().join("truncated.tar");
    let out = s
        .hoist()
        .args(["copy", &bad_ref, "docker-archive:-"])
        .command()
        .stdout(std::fs::File::create(&truncated).expect("create"))
        .stderr(Stdio::piped())
        .output()
        .expect("run hoist");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&s.image.layers[1].digest.to_string()),
        "{stderr}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path()).expect("layout");
    let file = std::fs::File::open(&truncated).expect("truncated archive");
    assert!(
        spool(std::io::BufReader::new(file), &layout).is_err(),
        "a truncated archive must not read as an image"
    );
    s.assert_cache_empty();
}

#[test]
fn registry_to_docker_daemon_streams_into_load() {
    if !require_root() || !require_tool("dockerd") {
        return;
    }
    let Some(s) = source(84) else { return };
    let dockerd = Dockerd::start().expect("dockerd");
    s.hoist()
        .args(["-q", "copy"])
        .arg(format!("docker://{}/a/app:v1", s.registry.host()))
        .arg("docker-daemon:stream/loaded:3")
        .env("DOCKER_HOST", dockerd.docker_host())
        .run()
        .success();
    s.assert_cache_empty();
    let id = dockerd
        .run_docker(&["image", "inspect", "--format", "{{.Id}}", "stream/loaded:3"])
        .expect("inspect");
    assert_eq!(id.trim(), s.image.config_digest.to_string());
    let layers = dockerd
        .run_docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "stream/loaded:3",
        ])
        .expect("inspect layers");
    let layers: Vec<String> = serde_json::from_str(layers.trim()).expect("layers JSON");
    let want: Vec<String> = s.image.diff_ids.iter().map(|d| d.to_string()).collect();
    assert_eq!(layers, want);
}
