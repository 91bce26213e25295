//! `hoist inspect` and `hoist copy` between OCI layouts, on synthetic images from the testkit.

mod common;

use std::process::Command;

use hoist_oci::{Compression, Digest, Layout};
use hoist_testkit::synth::{ImageSpec, write_oci_layout};

use common::{arg, hoist, text};

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
fn an_interrupted_unpack_removes_the_root_it_created() {
    use std::io::{BufRead, Write};
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
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
        // More bytes, a little at a time, wake the read the unpack is blocked in; it notices
        // the signal at its next read. The pipe stays open until hoist has gone (its writes
        // then fail): closed early, the layer's end could fail the unpack as a truncated
        // layer before the signal is seen, and left idle, the read would block the whole grace.
        let rest = bytes[bytes.len() / 2..].to_vec();
        let feeder = std::thread::spawn(move || {
            for chunk in rest.chunks(4096) {
                if pipe.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        std::io::Read::read_to_string(&mut stderr, &mut said).expect("stderr");
        let status = child.wait().expect("wait");
        feeder.join().expect("feeder");
        assert_eq!(status.code(), Some(code), "SIG{signal}: {said}");
        assert!(said.contains("interrupted"), "SIG{signal}: {said}");
        assert!(said.contains("was removed"), "SIG{signal}: {said}");
        // Running it again starts over; only a push continues where it stopped.
        assert!(!said.contains("continue where"), "SIG{signal}: {said}");
        assert!(
            !root.exists(),
            "SIG{signal}: the half-unpacked root is gone"
        );
    }
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
fn unpacking_over_a_directory_that_holds_files_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = tmp.path().join("from");
    let spec = ImageSpec::uniform(1, 50_000, Compression::Gzip, 6);
    write_oci_layout(&from, "v1", &spec).expect("synthetic layout");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("root");
    std::fs::write(root.join("stale"), b"from before").expect("stale file");
    let out = hoist(&["unpack", &arg(&from, ":v1"), root.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not empty"),
        "{}",
        text(&out.stderr)
    );
    assert!(root.join("stale").exists(), "what was there stays");
    // Into a fresh directory: no such note.
    let fresh = tmp.path().join("fresh");
    let out = hoist(&["unpack", &arg(&from, ":v1"), fresh.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("is not empty"),
        "{}",
        text(&out.stderr)
    );
}
