use std::io::{self, Read, Write};

use super::*;
use crate::Platform;
use crate::codec::Compression;
use crate::testutil::{files_under, tar_of, write_image};

fn layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::create(dir.path().join("l")).expect("create");
    (dir, layout)
}

fn blob_files(layout: &Layout) -> Vec<String> {
    files_under(&layout.root().join("blobs"))
}

#[test]
fn create_open_and_refuse_twice() {
    let (dir, l) = layout();
    assert!(l.root().join("oci-layout").is_file());
    assert!(l.index().expect("index").value().manifests.is_empty());
    let again = Layout::create(l.root()).expect_err("exists");
    assert!(again.is_invalid_input());
    Layout::open(l.root()).expect("open");
    Layout::open_or_create(l.root()).expect("open existing");
    Layout::open_or_create(dir.path().join("fresh")).expect("create fresh");
    let err = Layout::open(dir.path().join("nothing")).expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    std::fs::write(l.root().join("oci-layout"), b"{bad").expect("write");
    assert!(Layout::open(l.root()).expect_err("bad").is_invalid_input());
}

#[test]
fn blob_round_trip_and_verification() {
    let (_d, l) = layout();
    let data = b"some blob content".to_vec();
    let desc = Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(&data),
        data.len() as u64,
    );
    assert!(!l.has_blob(&desc).expect("has"));
    let (digest, size) = l.write_blob(&data[..], Some(&desc)).expect("write");
    assert_eq!((digest, size), (desc.digest.clone(), desc.size));
    assert!(l.has_blob(&desc).expect("has"));
    assert!(l.has_verified_blob(&desc).expect("has verified"));
    l.verify_blob(&desc).expect("verifies");
    let mut back = Vec::new();
    l.open_blob(&desc)
        .expect("open")
        .read_to_end(&mut back)
        .expect("read");
    assert_eq!(back, data);
    assert_eq!(
        blob_files(&l),
        vec![format!("sha256/{}", desc.digest.hex())]
    );

    // Same size, different content: has_blob trusts size, verify_blob does not.
    std::fs::write(l.blob_path(&desc.digest), b"SOME BLOB CONTENT").expect("tamper");
    assert!(l.has_blob(&desc).expect("has"));
    assert!(
        l.verify_blob(&desc)
            .expect_err("tampered")
            .is_digest_mismatch()
    );
    // ... nor does has_verified_blob, and writing the blob again repairs it.
    assert!(!l.has_verified_blob(&desc).expect("has verified"));
    l.write_blob(&data[..], Some(&desc)).expect("rewrite");
    assert!(l.has_verified_blob(&desc).expect("repaired"));
    let mut wrong_size = desc.clone();
    wrong_size.size += 1;
    assert!(!l.has_blob(&wrong_size).expect("has"));
    assert!(!l.has_verified_blob(&wrong_size).expect("has verified"));

    let missing = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"nope"), 4);
    let err = l.open_blob(&missing).expect_err("missing");
    assert!(err.is_not_found());
    assert_eq!(err.digest(), Some(&missing.digest));
}

#[test]
fn failed_writes_leave_nothing() {
    let (_d, l) = layout();
    let data = b"payload".to_vec();
    let wrong = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(b"other"), 7);
    let err = l.write_blob(&data[..], Some(&wrong)).expect_err("mismatch");
    assert!(err.is_digest_mismatch(), "{err}");
    let wrong_size = Descriptor::new(MediaType::OCI_LAYER, Digest::sha256_of(&data), 8);
    let err = l
        .write_blob(&data[..], Some(&wrong_size))
        .expect_err("size");
    assert!(err.is_size_mismatch(), "{err}");

    // A reader that fails half way (like a dropped connection).
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    let err = l.write_blob(Failing(100_000), None).expect_err("reset");
    assert!(err.is_io(), "{err}");

    // An uncommitted writer removes its temp file when dropped.
    let mut w = l.blob_writer().expect("writer");
    w.write_all(b"partial").expect("write");
    let temp = w.temp_path().to_path_buf();
    assert!(temp.exists());
    drop(w);
    assert!(!temp.exists());
    assert!(blob_files(&l).is_empty(), "{:?}", blob_files(&l));
}

#[test]
fn open_removes_stale_temps_but_not_live_ones() {
    let (_d, l) = layout();
    // What a writer that died leaves: an unlocked temp file in blobs/.
    let stale = l.root().join("blobs").join(".tmp-crashed");
    std::fs::write(&stale, b"half a layer").expect("stale");
    let stale_index = l.root().join("index.json.tmpXYZ");
    std::fs::write(&stale_index, b"{").expect("stale index");
    // ... made a while ago: a fresh unlocked one may be a writer about to lock it.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    for path in [&stale, &stale_index] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(old))
            .expect("age");
    }
    let fresh = l.root().join("blobs").join(".tmp-just-created");
    std::fs::write(&fresh, b"").expect("fresh");
    let mut live = l.blob_writer().expect("writer");
    live.write_all(b"in progress").expect("write");
    live.flush().expect("flush");

    Layout::open(l.root()).expect("open");
    assert!(!stale.exists());
    assert!(!stale_index.exists());
    assert!(fresh.exists(), "a fresh unlocked temp file is left alone");
    std::fs::remove_file(&fresh).expect("rm");
    assert!(
        live.temp_path().exists(),
        "a live writer's file must survive"
    );
    let (digest, _) = live.commit(None, Some(11)).expect("commit");
    assert_eq!(digest, Digest::sha256_of(b"in progress"));
    assert_eq!(blob_files(&l), vec![format!("sha256/{}", digest.hex())]);
}

#[test]
fn tags_resolve_and_replace() {
    let (_d, l) = layout();
    let (a, _) = write_image(&l, &[tar_of(&[("a", b"1")])], Compression::Gzip, "amd64");
    let (b, _) = write_image(&l, &[tar_of(&[("b", b"2")])], Compression::Zstd, "amd64");
    assert!(l.resolve(None).expect_err("empty").is_not_found());
    l.add_untagged(&a).expect("untagged");
    l.add_untagged(&a).expect("untagged twice is one entry");
    assert_eq!(l.list().expect("list").len(), 1);
    l.set_tag("v1", &a).expect("tag");
    // Tagging replaced the untagged entry.
    assert_eq!(l.list().expect("list").len(), 1);
    l.set_tag("also-v1", &a).expect("second tag");
    assert_eq!(
        l.resolve(None).expect("one image, two tags").digest,
        a.digest
    );
    assert!(l.remove_tag("also-v1").expect("rm"));
    assert_eq!(l.resolve(None).expect("only").digest, a.digest);
    l.set_tag("v2", &b).expect("tag");
    assert!(l.resolve(None).expect_err("two").is_invalid_input());
    assert_eq!(l.tags().expect("tags"), vec!["v1", "v2"]);
    l.set_tag("v1", &b).expect("retag");
    assert_eq!(l.tags().expect("tags"), vec!["v2", "v1"]);
    assert_eq!(l.resolve(Some("v1")).expect("v1").digest, b.digest);
    let err = l.resolve(Some("v3")).expect_err("v3");
    assert!(err.is_not_found());
    assert!(err.to_string().contains("v2, v1"), "{err}");
    assert!(
        l.set_tag("../x", &a)
            .expect_err("bad tag")
            .is_invalid_input()
    );
    assert!(l.remove_tag("v2").expect("rm"));
    assert!(!l.remove_tag("v2").expect("rm again"));
    assert_eq!(l.list().expect("list").len(), 1);
    // Nothing but index.json and oci-layout at the root (the temp index is gone).
    let root: Vec<String> = std::fs::read_dir(l.root())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "blobs")
        .collect();
    let mut root = root;
    root.sort();
    assert_eq!(root, vec!["index.json", "oci-layout"]);
}

#[test]
fn layouts_created_at_once_by_many_keep_every_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("new");
    let (_s, src) = layout();
    let (image, _) = write_image(&src, &[tar_of(&[("x", b"1")])], Compression::Gzip, "amd64");
    let image = &image;
    std::thread::scope(|scope| {
        for n in 0..8 {
            let dir = &dir;
            scope.spawn(move || {
                let l = Layout::open_or_create(dir).expect("open or create");
                l.set_tag(&format!("t{n}"), image).expect("tag");
            });
        }
    });
    let l = Layout::open(&dir).expect("open");
    let mut tags: Vec<String> = l
        .list()
        .expect("list")
        .into_iter()
        .filter_map(|e| e.tag)
        .collect();
    tags.sort();
    let want: Vec<String> = (0..8).map(|n| format!("t{n}")).collect();
    assert_eq!(tags, want, "no creator erased another's tag");
    assert!(
        std::fs::read_dir(&dir).expect("list").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "no temp file left"
    );
}

#[test]
fn image_follows_index_by_platform() {
    let (_d, l) = layout();
    let (amd, _) = write_image(&l, &[tar_of(&[("x", b"amd")])], Compression::Gzip, "amd64");
    let (arm, _) = write_image(&l, &[tar_of(&[("x", b"arm")])], Compression::Gzip, "arm64");
    let mut amd_entry = amd.clone();
    amd_entry.platform = Some(Platform::parse("linux/amd64").expect("p"));
    let mut arm_entry = arm.clone();
    arm_entry.platform = Some(Platform::parse("linux/arm64/v8").expect("p"));
    let index = RawJson::from_value(ImageIndex {
        manifests: vec![amd_entry, arm_entry],
        ..empty_index()
    })
    .expect("index");
    l.write_json(&index).expect("write index");
    l.set_tag("multi", &index.descriptor(MediaType::OCI_INDEX))
        .expect("tag");

    let arm64 = Platform::parse("linux/arm64").expect("p");
    let img = l.image(Some("multi"), Some(&arm64)).expect("arm image");
    assert_eq!(img.descriptor.digest, arm.digest);
    assert_eq!(img.config.value().architecture, "arm64");
    assert_eq!(img.manifest.value().layers.len(), 1);

    let s390 = Platform::parse("linux/s390x").expect("p");
    let err = l.image(Some("multi"), Some(&s390)).expect_err("none");
    assert!(err.is_no_matching_platform(), "{err}");

    // A plain manifest for another platform is refused when a platform is asked for.
    l.set_tag("armonly", &arm).expect("tag");
    let amd64 = Platform::parse("linux/amd64").expect("p");
    assert!(
        l.image(Some("armonly"), Some(&amd64))
            .expect_err("wrong platform")
            .is_no_matching_platform()
    );
    assert_eq!(
        l.image(Some("armonly"), None)
            .expect("any")
            .descriptor
            .digest,
        arm.digest
    );

    // An index whose one entry declares no platform: taken, then checked by its config.
    let bare = RawJson::from_value(ImageIndex {
        manifests: vec![arm.clone()],
        ..empty_index()
    })
    .expect("index");
    l.write_json(&bare).expect("write index");
    l.set_tag("bare", &bare.descriptor(MediaType::OCI_INDEX))
        .expect("tag");
    let img = l
        .image(Some("bare"), Some(&arm64))
        .expect("config says arm64");
    assert_eq!(img.descriptor.digest, arm.digest);
    let err = l
        .image(Some("bare"), Some(&amd64))
        .expect_err("config says arm64");
    assert!(err.is_no_matching_platform(), "{err}");

    // An index whose one entry is for another platform than the host's is refused when no
    // platform is asked for, as an index without the host's is (it used to be taken: a
    // wrong-architecture root filesystem without a word).
    let mut s390_entry = arm.clone();
    s390_entry.platform = Some(s390.clone());
    let foreign = RawJson::from_value(ImageIndex {
        manifests: vec![s390_entry],
        ..empty_index()
    })
    .expect("index");
    l.write_json(&foreign).expect("write index");
    l.set_tag("foreign", &foreign.descriptor(MediaType::OCI_INDEX))
        .expect("tag");
    let err = l.image(Some("foreign"), None).expect_err("not the host's");
    assert!(err.is_no_matching_platform(), "{err}");
    assert!(
        err.to_string().contains("s390x"),
        "names what is there: {err}"
    );
    let img = l.image(Some("foreign"), Some(&s390)).expect("asked for");
    assert_eq!(img.descriptor.digest, arm.digest);
}

#[test]
fn bad_documents_are_clear_errors() {
    let (_d, l) = layout();
    // Malformed manifest JSON.
    let junk = b"{not json".to_vec();
    let (digest, size) = l.write_blob(&junk[..], None).expect("write");
    l.set_tag(
        "junk",
        &Descriptor::new(MediaType::OCI_MANIFEST, digest.clone(), size),
    )
    .expect("tag");
    let err = l.image(Some("junk"), None).expect_err("malformed");
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(err.digest(), Some(&digest));

    // Unknown media type.
    l.set_tag(
        "odd",
        &Descriptor::new("application/x-odd", digest.clone(), size),
    )
    .expect("tag");
    let err = l.image(Some("odd"), None).expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("application/x-odd"));

    // A descriptor whose size lies.
    l.set_tag(
        "liar",
        &Descriptor::new(MediaType::OCI_MANIFEST, digest, size + 5),
    )
    .expect("tag");
    let err = l.image(Some("liar"), None).expect_err("size");
    assert!(err.is_size_mismatch(), "{err}");

    // A corrupt index.json.
    std::fs::write(l.root().join("index.json"), b"[1,2").expect("write");
    assert!(l.tags().expect_err("corrupt index").is_invalid_input());
}

#[test]
fn compress_blob_makes_verified_variants() {
    let (_d, l) = layout();
    let tar = tar_of(&[("big", &vec![3u8; 2_500_000][..]), ("small", b"x")]);
    let (digest, size) = l.write_blob(&tar[..], None).expect("write");
    let plain = Descriptor::new(MediaType::OCI_LAYER, digest.clone(), size);
    let (gz, gz_info) = l
        .compress_blob(&plain, Compression::Gzip, None, 2)
        .expect("gzip");
    assert_eq!(gz_info.diff_id, digest);
    assert_eq!(gz.media_type, MediaType::OCI_LAYER_GZIP);
    l.verify_blob(&gz).expect("gzip blob verifies");
    // From gzip to zstd: decompressed on the way, same diff_id.
    let (zst, zst_info) = l
        .compress_blob(&gz, Compression::Zstd, Some(1), 1)
        .expect("zstd");
    assert_eq!(zst_info.diff_id, digest);
    assert_eq!(l.sniff(&zst).expect("sniff"), Compression::Zstd);
    let mut back = Vec::new();
    crate::codec::decoder(l.open_blob(&zst).expect("open"))
        .expect("decoder")
        .read_to_end(&mut back)
        .expect("decode");
    assert!(back == tar);
    // A corrupt source stores nothing.
    std::fs::write(l.blob_path(&digest), vec![0u8; size as usize]).expect("corrupt");
    let before = blob_files(&l);
    let err = l
        .compress_blob(&plain, Compression::Gzip, None, 1)
        .expect_err("corrupt source");
    assert!(err.is_digest_mismatch(), "{err}");
    assert_eq!(blob_files(&l), before);
}

#[test]
fn a_layer_writer_stores_what_a_compressor_makes_and_nothing_before_commit() {
    let (_d, l) = layout();
    // Large enough that the codec and both hashers run on their helper threads.
    let tar = tar_of(&[("big", &vec![7u8; 3_000_000][..]), ("small", b"y")]);
    for (compression, threads) in [
        (Compression::Gzip, 2),
        (Compression::Zstd, 1),
        (Compression::None, 1),
    ] {
        let mut expected = Vec::new();
        let want = crate::codec::compress(&tar[..], &mut expected, compression, None, threads)
            .expect("compress");
        let mut w = l.layer_writer(compression, None, threads).expect("writer");
        w.write_all(&tar).expect("write");
        assert_eq!(w.uncompressed_size(), tar.len() as u64);
        let blob = w.finish().expect("finish");
        assert_eq!(blob.diff_id(), &Digest::sha256_of(&tar));
        assert_eq!(blob.uncompressed_size(), tar.len() as u64);
        assert!(
            !l.blob_path(&want.digest).exists(),
            "in place before commit"
        );
        let info = blob.commit().expect("commit");
        assert_eq!(info, want, "{compression}");
        let stored = std::fs::read(l.blob_path(&info.digest)).expect("stored");
        assert_eq!(Digest::sha256_of(&stored), info.digest);
        assert!(stored == expected, "{compression}: bytes differ");
    }
    // Dropped after finishing but before commit: nothing stored, no temp left.
    let before = blob_files(&l);
    let mut w = l
        .layer_writer(Compression::Gzip, Some(1), 1)
        .expect("writer");
    w.write_all(b"never committed").expect("write");
    drop(w.finish().expect("finish"));
    assert_eq!(blob_files(&l), before);
    assert!(temp_files(l.root()).is_empty());
    let err = l
        .layer_writer(Compression::Zstd, Some(99), 1)
        .expect_err("level");
    assert!(err.is_invalid_input(), "{err}");
}

/// The temp files in a layout's `blobs/` (claims' marks and blobs being written).
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("blobs"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect()
}

#[test]
fn a_claim_that_created_the_layout_removes_it_on_failure_and_keeps_it_on_success() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("new");
    let claim = Layout::claim(&dir).expect("claim");
    assert!(claim.created());
    assert_eq!(temp_files(&dir).len(), 1, "the claim marks the layout");
    // A failed writer's complete blobs go with the layout.
    claim
        .layout()
        .write_blob(&b"orphan"[..], None)
        .expect("blob");
    assert!(claim.release_failed().expect("release"), "removed");
    assert!(!dir.exists());

    // Dropped after a success: the layout stays, unmarked.
    let claim = Layout::claim(&dir).expect("claim");
    assert!(claim.created());
    drop(claim);
    assert!(Layout::open(&dir).is_ok());
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
}

#[test]
fn a_claim_that_did_not_create_the_layout_never_removes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Opened, not created.
    let existing = tmp.path().join("existing");
    Layout::create(&existing).expect("create");
    let claim = Layout::claim(&existing).expect("claim");
    assert!(!claim.created());
    assert!(!claim.release_failed().expect("release"));
    assert!(Layout::open(&existing).is_ok());
    assert!(temp_files(&existing).is_empty());

    // Created in a directory the user made: the layout is this claim's, the directory is not.
    let made = tmp.path().join("made");
    std::fs::create_dir(&made).expect("mkdir");
    let claim = Layout::claim(&made).expect("claim");
    assert!(!claim.created());
    assert!(!claim.release_failed().expect("release"));
    assert!(made.join("oci-layout").exists());

    // Of two claims on the same new directory, only the first created it; the second failing
    // (the first gone meanwhile) removes nothing.
    let new = tmp.path().join("new");
    let first = Layout::claim(&new).expect("first");
    let second = Layout::claim(&new).expect("second");
    assert!(first.created() && !second.created());
    drop(first);
    assert!(!second.release_failed().expect("release"));
    assert!(Layout::open(&new).is_ok());
}

#[test]
fn a_failed_creator_keeps_a_layout_another_writer_uses_or_has_listed_something_in() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_s, src) = layout();
    let (image, _) = write_image(&src, &[tar_of(&[("x", b"1")])], Compression::Gzip, "amd64");

    // Another claim is live.
    let dir = tmp.path().join("claimed");
    let creator = Layout::claim(&dir).expect("creator");
    let other = Layout::claim(&dir).expect("other");
    assert!(!creator.release_failed().expect("release"), "kept");
    assert!(dir.join("oci-layout").exists());
    assert_eq!(temp_files(&dir).len(), 1, "only the other's mark is left");
    drop(other);

    // Another process is writing a blob without a claim.
    let dir = tmp.path().join("writing");
    let creator = Layout::claim(&dir).expect("creator");
    let mut writer = Layout::open(&dir)
        .expect("open")
        .blob_writer()
        .expect("writer");
    writer.write_all(b"in progress").expect("write");
    assert!(!creator.release_failed().expect("release"), "kept");
    writer.commit(None, None).expect("the writer finishes");

    // Another writer has finished: the index lists its image.
    for (name, tag) in [("tagged", Some("v1")), ("untagged", None)] {
        let dir = tmp.path().join(name);
        let creator = Layout::claim(&dir).expect("creator");
        let l = Layout::open(&dir).expect("open");
        match tag {
            Some(tag) => l.set_tag(tag, &image).expect("tag"),
            None => l.add_untagged(&image).expect("add"),
        }
        assert!(!creator.release_failed().expect("release"), "{name} kept");
        assert_eq!(l.list().expect("list").len(), 1, "{name}");
    }

    // A dead writer's temp file (unlocked, old) is no one's: the layout goes.
    let dir = tmp.path().join("dead");
    let creator = Layout::claim(&dir).expect("creator");
    let stale = dir.join("blobs").join(format!("{TEMP_PREFIX}crashed"));
    std::fs::write(&stale, b"half").expect("stale");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("age");
    assert!(creator.release_failed().expect("release"), "removed");
    assert!(!dir.exists());
}

#[test]
fn tagging_keeps_what_other_tools_put_in_the_index() {
    let (_d, l) = layout();
    let (first, _) = write_image(&l, &[tar_of(&[("x", b"1")])], Compression::Gzip, "amd64");
    let (second, _) = write_image(&l, &[tar_of(&[("y", b"2")])], Compression::Gzip, "amd64");
    // Another tool's index: an entry with OCI 1.1 `data`, and a field hoist does not know.
    let mut entry = serde_json::to_value(&first).expect("entry");
    entry["data"] = "e30=".into();
    entry["annotations"] = serde_json::json!({ REF_NAME: "theirs" });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": [entry],
        "x-vendor": { "kept": true },
    });
    std::fs::write(
        l.root().join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write index");
    l.set_tag("ours", &second).expect("tag");
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.root().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(
        after["x-vendor"],
        serde_json::json!({ "kept": true }),
        "{after}"
    );
    let theirs = after["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"][REF_NAME] == "theirs")
        .expect("their entry");
    assert_eq!(theirs["data"], "e30=", "{after}");
    assert_eq!(l.tags().expect("tags"), ["theirs", "ours"]);
}

/// Regression: tagging re-serialized every `manifests[]` entry from the typed descriptor, so
/// the fields of an entry (and of its platform) that hoist does not model were dropped.
#[test]
fn tagging_keeps_unknown_fields_of_index_entries() {
    let (_d, l) = layout();
    let (first, _) = write_image(&l, &[tar_of(&[("x", b"1")])], Compression::Gzip, "amd64");
    let (second, _) = write_image(&l, &[tar_of(&[("y", b"2")])], Compression::Gzip, "amd64");
    // What containerd, buildx or another tool may write: the fields hoist models (urls,
    // artifactType, data, os.features) beside ones it does not (a vendor's, an older spec's
    // platform `features`), in the entry and in its platform.
    let mut entry = serde_json::to_value(&first).expect("entry");
    entry["annotations"] = serde_json::json!({ REF_NAME: "theirs" });
    entry["urls"] = serde_json::json!(["https://example.com/blob"]);
    entry["artifactType"] = "application/vnd.example+json".into();
    entry["data"] = "e30=".into();
    entry["io.example.vendor"] = serde_json::json!({ "nested": [1, 2.5, null], "on": true });
    entry["platform"] = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "os.features": ["win32k"],
        "features": ["sse4"],
        "io.example.cpu": "zen4",
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": [entry.clone()],
    });
    let index_path = l.root().join("index.json");
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write index");
    let theirs = || -> serde_json::Value {
        let after: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
        after["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["annotations"][REF_NAME] == "theirs")
            .cloned()
            .expect("their entry")
    };
    l.set_tag("ours", &second).expect("tag");
    assert_eq!(theirs(), entry);
    l.remove_tag("ours").expect("untag");
    l.add_untagged(&second).expect("add untagged");
    assert_eq!(theirs(), entry);
    assert_eq!(l.tags().expect("tags"), ["theirs"]);
    // Their entry still resolves, and its platform still matches by what hoist models.
    let resolved = l.resolve(Some("theirs")).expect("resolve");
    assert_eq!(resolved.digest, first.digest);
    let platform = resolved.platform.expect("platform");
    assert!(platform.matches(&Platform::new("linux", "amd64")));
}

/// A Helm-chart-like artifact in `layout`: a config and a layer of media types no container
/// image has. Returns the manifest's descriptor.
fn write_artifact(layout: &Layout) -> Descriptor {
    let blob = |bytes: &[u8], media_type: &str| {
        let (digest, size) = layout.write_blob(bytes, None).expect("blob");
        Descriptor::new(MediaType::new(media_type), digest, size)
    };
    let config = blob(
        br#"{"name":"chart","version":"0.1.0"}"#,
        "application/vnd.cncf.helm.config.v1+json",
    );
    let layer = blob(
        b"not a tar at all",
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    );
    let manifest = RawJson::from_value(ImageManifest::new(config, vec![layer])).expect("json");
    layout.write_json(&manifest).expect("manifest");
    manifest.descriptor(MediaType::OCI_MANIFEST)
}

#[test]
fn an_artifact_is_read_as_a_manifest_and_refused_as_an_image() {
    let (_d, layout) = layout();
    let artifact = write_artifact(&layout);
    let e = layout.image_at(&artifact, None).expect_err("no image");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string()
            .contains("an artifact (config media type application/vnd.cncf.helm.config.v1+json)"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("copied to a registry or an OCI layout"),
        "{e}"
    );
    // Read as a manifest, with or without a platform asked for (an artifact has none).
    for platform in [None, Some(Platform::new("linux", "arm64"))] {
        let (descriptor, manifest) = layout
            .manifest_at(&artifact, platform.as_ref())
            .expect("manifest");
        assert_eq!(descriptor, artifact);
        assert!(!manifest.value().is_container_image());
        assert_eq!(manifest.value().layers.len(), 1);
    }
}

#[test]
fn manifest_at_follows_an_index_and_checks_a_bare_images_platform() {
    let (_d, layout) = layout();
    let (image, manifest) = write_image(
        &layout,
        &[tar_of(&[("a", b"1")])],
        Compression::Gzip,
        "amd64",
    );
    assert!(manifest.value().is_container_image());
    let attestation = write_artifact(&layout);
    let mut amd64 = image.clone();
    amd64.platform = Some(Platform::new("linux", "amd64"));
    let mut unknown = attestation.clone();
    unknown.platform = Some(Platform::new("unknown", "unknown"));
    let index = RawJson::from_value(ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
        artifact_type: None,
        manifests: vec![amd64, unknown],
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("index");
    layout.write_json(&index).expect("index");
    let index = index.descriptor(MediaType::OCI_INDEX);
    let amd = Platform::new("linux", "amd64");
    let (found, _) = layout.manifest_at(&index, Some(&amd)).expect("amd64");
    assert_eq!(found.digest, image.digest);
    // By digest, the attestation is a manifest like any other.
    let (found, m) = layout.manifest_at(&attestation, None).expect("attestation");
    assert_eq!(found.digest, attestation.digest);
    assert!(!m.value().is_container_image());
    // A bare image for another platform is still refused.
    let arm = Platform::new("linux", "arm64");
    let e = layout
        .manifest_at(&image, Some(&arm))
        .expect_err("amd64 only");
    assert_eq!(e.kind(), ErrorKind::NoMatchingPlatform);
}

/// Regression: a JSON blob damaged on disk but of the same size was taken as present, so an
/// image naming it was "stored" unreadable.
#[test]
fn write_json_rewrites_a_damaged_blob() {
    let (_d, l) = layout();
    let doc = RawJson::<ImageIndex>::parse(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec())
        .expect("doc");
    l.write_json(&doc).expect("first write");
    let path = l.blob_path(doc.digest());
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[0] = b' ';
    crate::testutil::overwrite(&path, &bytes);
    l.write_json(&doc).expect("second write");
    l.verify_blob(&doc.descriptor(MediaType::OCI_INDEX))
        .expect("written again");
}

/// Regression: a document read through a sha512 descriptor was named by its sha256.
#[test]
fn read_json_keeps_the_descriptors_digest() {
    let (_d, l) = layout();
    let bytes = br#"{"schemaVersion":2,"manifests":[]}"#;
    let mut hasher = crate::digest::Digester::new(Algorithm::Sha512);
    hasher.update(bytes);
    let digest = hasher.finish();
    let desc = Descriptor::new(MediaType::OCI_INDEX, digest.clone(), bytes.len() as u64);
    l.write_blob(&bytes[..], Some(&desc)).expect("store");
    let doc: RawJson<ImageIndex> = l.read_json(&desc).expect("read");
    assert_eq!(doc.digest(), &digest);
    assert_eq!(doc.descriptor(MediaType::OCI_INDEX), desc);
}
