//! `hoist copy` and `hoist inspect` with docker archives (`docker-archive:`): files and pipes,
//! spooling into layouts, names and positions, failures and interrupts.

mod common;

use std::process::Command;

use hoist_oci::{Compression, Digest, Layout, MediaType};
use hoist_testkit::synth::{ImageSpec, write_oci_layout};

use common::{arg, hoist, text};

/// The synthetic image `spec` as a layout in `dir/from` (tag `v1`) and, through `hoist copy`,
/// as the docker archive `dir/app.tar`, its image named `name` when given.
fn synthetic_archive(
    dir: &std::path::Path,
    spec: &ImageSpec,
    name: Option<&str>,
) -> (hoist_testkit::synth::SynthImage, std::path::PathBuf) {
    let from = dir.join("from");
    let image = write_oci_layout(&from, "v1", spec).expect("synthetic layout");
    let archive = dir.join("app.tar");
    let destination = match name {
        Some(n) => format!("docker-archive:{}:{n}", archive.display()),
        None => format!("docker-archive:{}", archive.display()),
    };
    let out = hoist(&["-q", "copy", &arg(&from, ":v1"), &destination]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    (image, archive)
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
    let spec = ImageSpec::uniform(3, 200_000, Compression::Zstd, 11);
    let (image, archive) = synthetic_archive(tmp.path(), &spec, Some("app:v1"));

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
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
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

/// An archive's plain tar layers go into a layout as they are (as skopeo copies them) unless
/// `--compression` asks for one; the diff_ids stay those of the tars either way.
#[test]
fn archive_layers_into_a_layout_are_compressed_only_when_asked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().expect("utf-8");
    let spec = ImageSpec::uniform(2, 150_000, Compression::Gzip, 5);
    let (image, archive) = synthetic_archive(tmp.path(), &spec, None);
    let archive_arg = format!("docker-archive:{}", archive.display());

    for (flags, want) in [
        (&[][..], Compression::None),
        (&["--compression", "zstd"][..], Compression::Zstd),
        (&["--compression", "gzip"][..], Compression::Gzip),
    ] {
        let to = tmp.path().join(format!("to-{want}"));
        let mut args = vec!["--cache-dir", cache_arg, "-q"];
        args.extend_from_slice(flags);
        let dest = arg(&to, ":t");
        args.extend(["copy", &archive_arg, &dest]);
        let out = hoist(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            text(&out.stderr)
        );
        let img = Layout::open(&to)
            .expect("layout")
            .image(Some("t"), None)
            .expect("image");
        for layer in &img.manifest.value().layers {
            assert_eq!(layer.media_type, MediaType::oci_layer(want), "{flags:?}");
        }
        assert_eq!(
            img.config.value().rootfs.diff_ids,
            image.diff_ids,
            "{flags:?}"
        );
    }

    // The environment variable chooses as the flag does.
    let to = tmp.path().join("to-env");
    let out = common::clean()
        .env("HOIST_COMPRESSION", "zstd")
        .args(["--cache-dir", cache_arg, "-q", "copy", &archive_arg])
        .arg(arg(&to, ":t"))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let img = Layout::open(&to)
        .expect("layout")
        .image(Some("t"), None)
        .expect("image");
    assert_eq!(
        img.manifest.value().layers[0].media_type,
        MediaType::oci_layer(Compression::Zstd)
    );
}

/// An archive compressed whole with xz or bzip2 (`docker save | xz`, which `docker load`
/// reads) copies into a layout from a file and from stdin, giving the plain archive's image.
#[test]
fn xz_and_bzip2_archives_copy_like_the_plain_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().expect("utf-8");
    let spec = ImageSpec::uniform(2, 120_000, Compression::Gzip, 9);
    let (image, archive) = synthetic_archive(tmp.path(), &spec, None);
    for tool in ["xz", "bzip2"] {
        if !hoist_testkit::require_tool(tool) {
            continue;
        }
        let exe = hoist_testkit::find_tool(tool).expect("found");
        let packed = tmp.path().join(format!("app.tar.{tool}"));
        let status = Command::new(exe)
            .arg("-c")
            .stdin(std::fs::File::open(&archive).expect("archive"))
            .stdout(std::fs::File::create(&packed).expect("create"))
            .status()
            .expect("compress");
        assert!(status.success(), "{tool}");
        let from_file = tmp.path().join(format!("file-{tool}"));
        let out = hoist(&[
            "--cache-dir",
            cache_arg,
            "-q",
            "copy",
            &format!("docker-archive:{}", packed.display()),
            &arg(&from_file, ":t"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{tool}: {}", text(&out.stderr));
        let from_pipe = tmp.path().join(format!("pipe-{tool}"));
        let out = common::clean()
            .args(["--cache-dir", cache_arg, "-q", "copy", "docker-archive:-"])
            .arg(arg(&from_pipe, ":t"))
            .stdin(std::fs::File::open(&packed).expect("packed"))
            .output()
            .expect("run hoist");
        assert_eq!(out.status.code(), Some(0), "{tool}: {}", text(&out.stderr));
        for dir in [&from_file, &from_pipe] {
            let img = Layout::open(dir)
                .expect("layout")
                .image(Some("t"), None)
                .expect("image");
            assert_eq!(img.config.value().rootfs.diff_ids, image.diff_ids, "{tool}");
            assert_eq!(
                img.manifest.value().config.digest,
                image.config_digest,
                "{tool}: the archive's own config bytes"
            );
        }
    }
}

#[test]
fn an_archive_image_copied_into_a_layout_keeps_its_own_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let spec = ImageSpec::uniform(1, 100_000, Compression::Gzip, 33);
    let (image, archive) = synthetic_archive(t, &spec, Some("team/app:2.1"));
    let copy = |from: String, to: &std::path::Path| {
        let out = common::clean()
            .args(["-q", "copy", &from, &arg(to, "")])
            .output()
            .expect("run hoist");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        Layout::open(to).expect("layout")
    };
    // Named by its tag, the image is tagged with it, as a pull from a registry tags it.
    let named = copy(
        format!("docker-archive:{}:team/app:2.1", archive.display()),
        &t.join("named"),
    );
    let tagged = named.image(Some("2.1"), None).expect("tagged 2.1");
    assert_eq!(tagged.manifest.value().config.digest, image.config_digest);
    // Taken by position, there is no tag to keep: the image is stored untagged.
    let by_position = copy(
        format!("docker-archive:{}:@0", archive.display()),
        &t.join("by-position"),
    );
    assert!(by_position.image(Some("2.1"), None).is_err());
}

/// The user-acceptance finding: `inspect` of an archive printed a digest that `hoist digest`
/// then refused. The digest is of the manifest read from the archive (the one `--raw`
/// prints), and both now say that it is stored nowhere.
#[test]
fn inspect_of_an_archive_says_its_digest_is_stored_nowhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ImageSpec::uniform(1, 50_000, Compression::Gzip, 8);
    let (_, archive) = synthetic_archive(tmp.path(), &spec, Some("team/app:1"));
    let source = format!("docker-archive:{}", archive.display());
    let out = hoist(&["inspect", &source]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let raw = hoist(&["inspect", "--raw", &source]);
    assert_eq!(raw.status.code(), Some(0), "{}", text(&raw.stderr));
    let digest = Digest::sha256_of(&raw.stdout);
    assert!(
        summary.contains(&format!("Digest:       {digest}")),
        "{summary}"
    );
    let note = summary
        .lines()
        .find(|l| l.starts_with("Note:"))
        .unwrap_or_else(|| panic!("no note: {summary}"));
    assert!(note.contains("stored nowhere"), "{note}");
    let refused = hoist(&["digest", &source]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("`hoist inspect` shows the digest"),
        "{stderr}"
    );
}
