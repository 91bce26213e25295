//! `hoist inspect` and `hoist copy` between OCI layouts, on synthetic images from the testkit.

mod common;

use std::process::{Command, Output};

use hoist_oci::{Compression, Digest, Layout};
use hoist_testkit::synth::{ImageSpec, write_oci_layout};

fn hoist(args: &[&str]) -> Output {
    common::clean().args(args).output().expect("run hoist")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn arg(path: &std::path::Path, suffix: &str) -> String {
    format!("oci:{}{suffix}", path.display())
}

#[test]
fn inspect_summary_and_raw() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let spec = ImageSpec::uniform(2, 300_000, Compression::Zstd, 7);
    let image = write_oci_layout(&dir, "v1", &spec).expect("synthetic layout");

    let out = hoist(&["inspect", &arg(&dir, ":v1")]);
    let summary = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        summary.contains(&format!("Digest:       {}\n", image.manifest_digest)),
        "{summary}"
    );
    for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
        assert!(summary.contains(&layer.digest.to_string()), "{summary}");
        assert!(summary.contains(&format!("diff_id {diff_id}")), "{summary}");
    }
    assert!(summary.contains("zstd"), "{summary}");
    assert!(summary.contains("in 2 layers"), "{summary}");

    let out = hoist(&["inspect", "--raw", &arg(&dir, ":v1")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(Digest::sha256_of(&out.stdout), image.manifest_digest);

    // A missing tag is a failure (exit 1) with one clear line naming it.
    let out = hoist(&["inspect", &arg(&dir, ":nope")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: reading image `nope`"),
        "{stderr}"
    );
    // Not a layout at all.
    let out = hoist(&["inspect", &arg(tmp.path(), "")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("opening the OCI layout"));
}

#[test]
fn copy_between_layouts_verifies_and_tags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = tmp.path().join("from");
    let to = tmp.path().join("to");
    let spec = ImageSpec::uniform(3, 200_000, Compression::Gzip, 11);
    let image = write_oci_layout(&from, "v1", &spec).expect("synthetic layout");

    let out = hoist(&[
        "--progress",
        "json",
        "copy",
        &arg(&from, ":v1"),
        &arg(&to, ":copied"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let done = events
        .iter()
        .filter(|e| e["event"] == "state" && e["state"] == "done")
        .count();
    assert_eq!(done, 3, "3 layers written");
    assert_eq!(events.last().expect("finish")["ok"], true);

    let layout = Layout::open(&to).expect("destination layout");
    let copied = layout.image(Some("copied"), None).expect("tagged image");
    assert_eq!(copied.descriptor.digest, image.manifest_digest);
    for layer in &image.layers {
        layout.verify_blob(layer).expect("layer copied intact");
    }

    // Copying again skips every blob.
    let out = hoist(&[
        "--progress",
        "plain",
        "copy",
        &arg(&from, ":v1"),
        &arg(&to, ":again"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("skipped (exists)").count(), 3, "{stderr}");

    // A destination blob damaged since is written again, not trusted for the new tag.
    let damaged = layout.blob_path(&image.layers[0].digest);
    let mut bytes = std::fs::read(&damaged).expect("read blob");
    bytes[10] ^= 0xff;
    std::fs::write(&damaged, bytes).expect("damage blob");
    let out = hoist(&[
        "--progress",
        "plain",
        "copy",
        &arg(&from, ":v1"),
        &arg(&to, ":third"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("skipped (exists)").count(), 2, "{stderr}");
    layout
        .verify_blob(&image.layers[0])
        .expect("the damaged blob is whole again");
    // A new tag in the same layout reads nothing again: its blobs are the source's own files.
    let out = hoist(&["-q", "copy", &arg(&to, ":third"), &arg(&to, ":fourth")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        layout
            .image(Some("fourth"), None)
            .expect("fourth")
            .descriptor
            .digest,
        image.manifest_digest
    );

    // A corrupted source blob is caught while copying, and nothing is tagged.
    let victim = Layout::open(&from)
        .expect("source")
        .blob_path(&image.layers[1].digest);
    let mut bytes = std::fs::read(&victim).expect("read blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, bytes).expect("corrupt blob");
    let fresh = tmp.path().join("fresh");
    let out = hoist(&["-q", "copy", &arg(&from, ":v1"), &arg(&fresh, ":x")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("digest"), "{stderr}");
    let fresh_layout = Layout::open(&fresh).expect("created");
    assert!(fresh_layout.tags().expect("tags").is_empty());
    assert!(!fresh_layout.has_blob(&image.layers[1]).expect("has_blob"));
}

#[test]
fn docker_archive_round_trip_through_files_and_pipes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(2, 150_000, Compression::Gzip, 3);
    let image = write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    let archive = tmp.path().join("app.tar");
    let cache_arg = cache.to_str().expect("utf-8");
    let archive_arg = format!(
        "docker-archive:{}:registry.example/app:v1",
        archive.display()
    );

    let out = hoist(&[
        "--cache-dir",
        cache_arg,
        "-q",
        "copy",
        &arg(&from, ":v1"),
        &archive_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "a file destination writes nothing to stdout"
    );
    // Readable as the umask allows, like `docker save -o` leaves it.
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&archive).expect("stat"));
    assert_eq!(
        mode & 0o777,
        hoist_testkit::mode_under_umask(0o666),
        "{mode:o}"
    );

    // Back into a layout: the same config and diff_ids (docker archives hold uncompressed
    // layers, so the manifest is a new one).
    let back = tmp.path().join("back");
    let out = hoist(&[
        "--cache-dir",
        cache_arg,
        "-q",
        "copy",
        &archive_arg,
        &arg(&back, ":b"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let layout = Layout::open(&back).expect("layout");
    let img = layout.image(Some("b"), None).expect("image");
    assert_eq!(img.config.digest(), &image.config_digest);
    assert_eq!(img.config.value().rootfs.diff_ids, image.diff_ids);
    // Spooled straight into the layout: nothing went through the cache.
    let transit = std::fs::read_dir(cache.join("transit")).map_or(0, |d| d.count());
    assert_eq!(transit, 0, "no transit copy of the archive");

    // stdin -> stdout, re-tagged on the way: a valid archive comes out of the pipe.
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--cache-dir", cache_arg, "-q", "copy", "docker-archive:-"])
        .arg("docker-archive:-:other/name:2")
        .stdin(std::fs::File::open(&archive).expect("archive"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut entries = tar::Archive::new(&out.stdout[..]);
    let mut manifest = None;
    for entry in entries.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_str() == Some("manifest.json") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut entry, &mut s).expect("read");
            manifest = Some(s);
        }
    }
    let manifest = manifest.expect("manifest.json in the archive");
    assert!(manifest.contains("other/name:2"), "{manifest}");

    // A reader that stops early (`| head -c 512`) got a truncated archive: a failure, said in
    // one line (as docker save and skopeo fail), so a pipeline under `pipefail` sees it. The
    // archive (~300 kB) is bigger than a pipe's buffer, so hoist is still writing when it goes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--cache-dir", cache_arg, "-q", "copy"])
        .args([&arg(&from, ":v1"), "docker-archive:-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut head = [0u8; 512];
    let mut stdout = child.stdout.take().expect("stdout");
    std::io::Read::read_exact(&mut stdout, &mut head).expect("the archive starts");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("went away before the docker archive was complete"),
        "{}",
        text(&out.stderr)
    );

    // An archive that names no such image: exit 1 listing what it has.
    let wrong = format!("docker-archive:{}:nope:1", archive.display());
    let out = hoist(&[
        "--cache-dir",
        cache_arg,
        "-q",
        "copy",
        &wrong,
        &arg(&back, ":c"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("registry.example/app:v1"),
        "{}",
        text(&out.stderr)
    );
}

/// Every blob file in `dir`'s layout, by name, after checking that each one's bytes hash to
/// its name (so no partial or temp file is there).
fn verified_blobs(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let bytes = std::fs::read(dir.join("blobs/sha256").join(name)).expect("blob");
        assert_eq!(
            Digest::sha256_of(&bytes).hex(),
            name,
            "blob {name} verifies"
        );
    }
    names
}

#[test]
fn docker_archive_spools_straight_into_the_layout_and_cleans_up_after_a_failure() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().expect("utf-8");
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(3, 200_000, Compression::Zstd, 11);
    let image = write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    let archive = tmp.path().join("app.tar");
    let out = hoist(&[
        "-q",
        "copy",
        &arg(&from, ":v1"),
        &format!("docker-archive:{}:app:v1", archive.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // From stdin into a new layout: exactly the image's blobs, each named by its digest.
    let to = tmp.path().join("to");
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--cache-dir", cache_arg, "-q", "copy", "docker-archive:-"])
        .arg(arg(&to, ":t"))
        .stdin(std::fs::File::open(&archive).expect("archive"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let layout = Layout::open(&to).expect("layout");
    assert_eq!(layout.tags().expect("tags"), ["t"]);
    let img = layout.image(Some("t"), None).expect("image");
    assert_eq!(img.config.value().rootfs.diff_ids, image.diff_ids);
    let m = img.manifest.value();
    let mut want: Vec<String> = m
        .layers
        .iter()
        .map(|l| l.digest.hex().to_string())
        .collect();
    want.push(m.config.digest.hex().to_string());
    want.push(img.descriptor.digest.hex().to_string());
    want.sort();
    assert_eq!(verified_blobs(&to), want, "only the image's blobs");
    assert!(!cache.join("transit").exists(), "no transit copy");

    // A truncated archive into a new layout: an error, and the layout is gone.
    let bytes = std::fs::read(&archive).expect("archive");
    let cut = tmp.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let copy_cut = |to: &std::path::Path| {
        hoist(&[
            "--cache-dir",
            cache_arg,
            "-q",
            "copy",
            &format!("docker-archive:{}", cut.display()),
            &arg(to, ":x"),
        ])
    };
    let fresh = tmp.path().join("fresh");
    let out = copy_cut(&fresh);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("docker archive"),
        "{}",
        text(&out.stderr)
    );
    assert!(!fresh.exists(), "the layout this copy created is removed");

    // The same into the existing layout: it keeps its tag and image, and gains no partial file.
    let out = copy_cut(&to);
    assert_eq!(out.status.code(), Some(1));
    let layout = Layout::open(&to).expect("layout");
    assert_eq!(layout.tags().expect("tags"), ["t"]);
    layout
        .image(Some("t"), None)
        .expect("the image is still whole");
    verified_blobs(&to);
}

#[test]
fn unpack_writes_the_runtime_config_only_when_it_succeeds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(2, 100_000, Compression::Gzip, 5);
    write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    let root = tmp.path().join("root");
    let runtime = tmp.path().join("runtime.json");

    let out = hoist(&[
        "-q",
        "unpack",
        &arg(&from, ":v1"),
        root.to_str().expect("utf-8 path"),
        "--runtime-config",
        runtime.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&runtime).expect("runtime config written"))
            .expect("runtime config is JSON");
    // The synthetic image's config says Cmd ["/bin/sh"] and a PATH.
    assert_eq!(json["Cmd"], serde_json::json!(["/bin/sh"]), "{json}");
    let env = json["Env"].as_array().expect("Env array");
    assert!(
        env.iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("PATH="))),
        "{json}"
    );
    assert!(root.read_dir().expect("rootfs").next().is_some());

    // A failed unpack (no such tag) leaves no runtime config behind.
    let other = tmp.path().join("other.json");
    let out = hoist(&[
        "-q",
        "copy",
        "--runtime-config",
        other.to_str().expect("utf-8 path"),
        &arg(&from, ":missing"),
        &format!("rootfs:{}", tmp.path().join("root2").display()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!other.exists());

    // Anywhere but a rootfs it is a usage error.
    let out = hoist(&[
        "copy",
        "--runtime-config",
        other.to_str().expect("utf-8 path"),
        &arg(&from, ":v1"),
        &arg(&tmp.path().join("to"), ":v1"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--runtime-config"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unpack_limits_refuse_a_layer_over_them_and_remove_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(1, 200_000, Compression::Gzip, 9);
    write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    let source = arg(&from, ":v1");

    for (flag, value, says) in [
        ("--max-layer-entries", "1", "entries (limit)"),
        ("--max-layer-bytes", "64KiB", "-byte limit"),
    ] {
        let root = tmp.path().join(format!("root{flag}"));
        let out = hoist(&[
            "-q",
            flag,
            value,
            "unpack",
            &source,
            root.to_str().expect("utf-8 path"),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {stderr}");
        assert!(stderr.contains(says), "{flag}: {stderr}");
        assert!(!root.exists(), "{flag}: the partial root was removed");
    }
    // Limits the layer fits in change nothing.
    let root = tmp.path().join("root-ok");
    let out = hoist(&[
        "-q",
        "--max-layer-entries",
        "100000",
        "--max-layer-bytes",
        "1GiB",
        "unpack",
        &source,
        root.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A malformed size is a usage error.
    let out = hoist(&["--max-layer-bytes", "lots", "unpack", &source, "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_archive_from_a_layout_hoist_may_not_write_spills_in_the_cache() {
    // Root, to run hoist as user nobody against a layout only root may write.
    if !hoist_testkit::require_root() {
        return;
    }
    use hoist_testkit::as_nobody;
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::Builder::new()
        .prefix("hoist-ro-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let open = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    open(tmp.path(), 0o755);
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(2, 150_000, Compression::Gzip, 9);
    write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    for dir in [from.clone(), from.join("blobs"), from.join("blobs/sha256")] {
        open(&dir, 0o755);
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                open(&path, 0o644);
            }
        }
    }
    let before = verified_blobs(&from);
    // The cache and the archive's directory belong to nobody.
    let cache = tmp.path().join("cache");
    let out_dir = tmp.path().join("out");
    for dir in [&cache, &out_dir] {
        std::fs::create_dir(dir).expect("mkdir");
        as_nobody::chown(dir);
    }
    let archive = out_dir.join("app.tar");
    let mut copy = Command::new(env!("CARGO_BIN_EXE_hoist"));
    copy.args(["--cache-dir", cache.to_str().expect("utf-8"), "-q", "copy"])
        .arg(arg(&from, ":v1"))
        .arg(format!("docker-archive:{}:app:v1", archive.display()));
    let Some(out) = as_nobody::output(&mut copy) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A whole archive; the source layout untouched; no spill file left in the cache.
    let back = tmp.path().join("back");
    let out = hoist(&[
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "-q",
        "copy",
        &format!("docker-archive:{}", archive.display()),
        &arg(&back, ":b"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(verified_blobs(&from), before);
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("transit"))
        .expect("the spill went to the cache")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_interrupted_unpack_removes_the_root_it_created() {
    use std::io::{BufRead, Write};
    for signal in ["TERM", "INT"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let from = tmp.path().join("from");
        let spec = ImageSpec::uniform(1, 2_000_000, Compression::None, 4);
        let image = write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
        // The layer becomes a pipe the test feeds, so the unpack is mid-layer for as long as
        // the test wants, whatever the machine's speed.
        let blob = from.join("blobs/sha256").join(image.layers[0].digest.hex());
        let bytes = std::fs::read(&blob).expect("layer");
        std::fs::remove_file(&blob).expect("rm");
        let made = Command::new("mkfifo").arg(&blob).status().expect("mkfifo");
        assert!(made.success());
        let root = tmp.path().join("root");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["--progress", "plain", "unpack", &arg(&from, ":v1")])
            .arg(&root)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut pipe = std::fs::OpenOptions::new()
            .write(true)
            .open(&blob)
            .expect("open the pipe");
        pipe.write_all(&bytes[..bytes.len() / 2])
            .expect("half the layer");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut said = String::new();
        while !said.contains("unpacking") {
            let n = stderr.read_line(&mut said).expect("progress");
            assert_ne!(n, 0, "hoist ended early: {said}");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_dir(&root).map_or(0, Iterator::count) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing unpacked: {said}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(sent.success());
        // More bytes wake the read the unpack is blocked in; it notices the signal next.
        let _ = pipe.write_all(&bytes[bytes.len() / 2..bytes.len() / 2 + 65536]);
        drop(pipe);
        std::io::Read::read_to_string(&mut stderr, &mut said).expect("stderr");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(1), "SIG{signal}: {said}");
        assert!(said.contains("interrupted"), "SIG{signal}: {said}");
        assert!(said.contains("was removed"), "SIG{signal}: {said}");
        assert!(
            !root.exists(),
            "SIG{signal}: the half-unpacked root is gone"
        );
    }
}

/// One archive holding the images of `parts` (legacy `docker save` archives hoist wrote): every
/// entry once, and one `manifest.json` listing them all in order.
fn merge_archives(parts: &[std::path::PathBuf], out: &std::path::Path) {
    let mut manifests = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut builder = tar::Builder::new(std::fs::File::create(out).expect("create archive"));
    for part in parts {
        let mut archive = tar::Archive::new(std::fs::File::open(part).expect("open part"));
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let name = entry.path().expect("path").to_string_lossy().into_owned();
            if name == "manifest.json" {
                let list: Vec<serde_json::Value> =
                    serde_json::from_reader(&mut entry).expect("manifest.json");
                manifests.extend(list);
            } else if seen.insert(name.clone()) {
                let header = entry.header().clone();
                builder.append(&header, &mut entry).expect("append");
            }
        }
    }
    let json = serde_json::to_vec(&manifests).expect("json");
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", &json[..])
        .expect("manifest.json");
    builder.finish().expect("finish");
}

#[test]
fn archive_images_by_docker_name_bare_name_and_position() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let a = write_oci_layout(
        &t.join("a"),
        "v1",
        &ImageSpec::uniform(1, 100_000, Compression::Gzip, 31),
    )
    .expect("layout a");
    let b = write_oci_layout(
        &t.join("b"),
        "v1",
        &ImageSpec::uniform(1, 100_000, Compression::Gzip, 32),
    )
    .expect("layout b");
    let config_of = |dir: &std::path::Path, tag: &str| {
        Layout::open(dir)
            .expect("layout")
            .image(Some(tag), None)
            .expect("image")
            .manifest
            .value()
            .config
            .digest
            .clone()
    };

    // A docker tag no OCI layout could hold as a tag (`1.0-`, `__`) still names an archive
    // image, and hoist reads back the archive it wrote.
    let one = t.join("one.tar");
    let out = common::clean()
        .args(["-q", "copy", &arg(&t.join("a"), ":v1")])
        .arg(format!("docker-archive:{}:my__app:1.0-", one.display()))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let back = t.join("back");
    let out = common::clean()
        .args(["-q", "copy"])
        .arg(format!("docker-archive:{}", one.display()))
        .arg(arg(&back, ":x"))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(config_of(&back, "x"), a.config_digest);

    // Two images in one archive: `web` means web:latest, `@N` counts from 0.
    let two = t.join("two.tar");
    let out = common::clean()
        .args(["-q", "copy", &arg(&t.join("b"), ":v1")])
        .arg(format!("docker-archive:{}:web:latest", two.display()))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let multi = t.join("multi.tar");
    merge_archives(&[one, two], &multi);
    for (reference, dir, want) in [
        ("web", "by-name", &b.config_digest),
        ("@0", "first", &a.config_digest),
        ("@1", "second", &b.config_digest),
    ] {
        let out = common::clean()
            .args(["-q", "copy"])
            .arg(format!("docker-archive:{}:{reference}", multi.display()))
            .arg(arg(&t.join(dir), ":x"))
            .output()
            .expect("run hoist");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{reference}: {}",
            text(&out.stderr)
        );
        assert_eq!(&config_of(&t.join(dir), "x"), want, "{reference}");
    }
    let out = common::clean()
        .args(["-q", "copy"])
        .arg(format!("docker-archive:{}:@2", multi.display()))
        .arg(arg(&t.join("none"), ":x"))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("holds 2"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !t.join("none").exists(),
        "a failed spool leaves no layout behind"
    );
}

#[test]
fn unpack_refuses_layers_the_config_does_not_vouch_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    write_oci_layout(
        &dir,
        "v1",
        &ImageSpec::uniform(2, 50_000, Compression::Gzip, 41),
    )
    .expect("layout");
    let layout = Layout::open(&dir).expect("layout");
    let image = layout.image(Some("v1"), None).expect("image");
    let retagged = |tag: &str, edit: &dyn Fn(&mut hoist_oci::ImageManifest)| {
        let mut m = image.manifest.value().clone();
        edit(&mut m);
        let raw = hoist_oci::RawJson::from_value(m).expect("manifest");
        layout.write_json(&raw).expect("write manifest");
        layout
            .set_tag(
                tag,
                &raw.descriptor(hoist_oci::MediaType::new(
                    hoist_oci::MediaType::OCI_MANIFEST,
                )),
            )
            .expect("tag");
    };
    // A third layer the config has no diff_id for (it would go on unverified) ...
    retagged("extra", &|m| {
        let again = m.layers[0].clone();
        m.layers.push(again);
    });
    // ... and a layer whose size is not the manifest's.
    retagged("size", &|m| m.layers[1].size += 100);
    for (tag, says) in [
        ("extra", "diff_ids"),
        ("size", "layer size mismatch: the manifest says"),
    ] {
        let root = tmp.path().join(format!("root-{tag}"));
        let out = hoist(&[
            "-q",
            "unpack",
            &arg(&dir, &format!(":{tag}")),
            &root.display().to_string(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{tag}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(says), "{tag}: {stderr}");
        assert!(!root.exists(), "{tag}: the root it created is removed");
    }
}

#[test]
fn an_interrupted_inspect_of_an_archive_leaves_nothing_in_the_cache() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = tmp.path().join("app.tar");
    let spec = ImageSpec::uniform(1, 2_000_000, Compression::None, 6);
    hoist_testkit::synth::write_docker_archive(&archive, "app:v1", &spec).expect("archive");
    let bytes = std::fs::read(&archive).expect("archive");
    let cache = tmp.path().join("cache");
    let mut child = common::clean()
        .args(["--cache-dir"])
        .arg(&cache)
        .args(["inspect", "docker-archive:-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(&bytes[..bytes.len() / 2])
        .expect("half the archive");
    // The spool into the cache's transit directory is under way.
    let transit = cache.join("transit");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&transit).map_or(0, Iterator::count) == 0 {
        assert!(std::time::Instant::now() < deadline, "no transit copy");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    // Once the signal is handled, more bytes wake the read the spool is blocked in and it
    // notices the signal there. The pipe stays open: an end of input would fail the spool as
    // a truncated archive whether or not the signal was seen.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = stdin.write_all(&bytes[bytes.len() / 2..bytes.len() / 2 + 65536]);
    let out = child.wait_with_output().expect("wait");
    drop(stdin);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&transit).map_or(0, Iterator::count),
        0,
        "the transit copy is removed"
    );
}
