use std::io::{self, Read};

use super::*;
use crate::codec::{Compression, compress};
use crate::testutil::{config_for, files_under, tar_of, write_image};
use crate::{Descriptor, Digest, Layout, MediaType};

/// Hands out at most 7000 bytes per read and cannot seek, like a pipe from `docker save`.
struct Pipe(io::Cursor<Vec<u8>>);
impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(7000);
        self.0.read(&mut buf[..n])
    }
}

fn pipe(bytes: Vec<u8>) -> Pipe {
    Pipe(io::Cursor::new(bytes))
}

enum Item<'a> {
    File(&'a str, Vec<u8>),
    Link(&'a str, &'a str),
    /// A file whose name is written raw, bypassing the tar crate's path checks.
    RawName(&'a str, Vec<u8>),
}

fn archive(items: Vec<Item<'_>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match item {
            Item::File(path, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, path, &data[..]).expect("file");
            }
            Item::Link(path, target) => {
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                // Long names and targets get GNU long-name entries.
                b.append_link(&mut h, path, target).expect("link");
            }
            Item::RawName(path, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                let name = &mut h.as_gnu_mut().expect("gnu").name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                b.append(&h, &data[..]).expect("raw");
            }
        }
    }
    b.into_inner().expect("finish")
}

struct Legacy {
    bytes: Vec<u8>,
    layers: Vec<Vec<u8>>,
    configs: Vec<Digest>,
}

/// Two images sharing a base layer, laid out like dockerd 20.10's `docker save`: layer dirs in
/// name order with the shared layer as a symlink, configs, then manifest.json and repositories.
fn legacy_archive() -> Legacy {
    let base = tar_of(&[("etc/os-release", b"base")]);
    let top_a = tar_of(&[("app/a", b"first app")]);
    let top_b = tar_of(&[("app/b", b"second app")]);
    let d = |t: &[u8]| Digest::sha256_of(t);
    let cfg_a = config_for(vec![d(&base), d(&top_a)], "amd64");
    let cfg_b = config_for(vec![d(&base), d(&top_b)], "amd64");
    let manifest = format!(
        r#"[{{"Config":"{a}.json","RepoTags":["app:a","localhost:5000/team/app:a"],"Layers":["1111/layer.tar","2222/layer.tar"]}},
            {{"Config":"{b}.json","RepoTags":null,"Layers":["0000/layer.tar","3333/layer.tar"]}}]"#,
        a = cfg_a.digest().hex(),
        b = cfg_b.digest().hex()
    );
    let bytes = archive(vec![
        // The shared base: image B's copy is a symlink (docker save's dedup), sorted first.
        Item::Link("0000/layer.tar", "../1111/layer.tar"),
        Item::File("0000/VERSION", b"1.0".to_vec()),
        Item::File("1111/layer.tar", base.clone()),
        Item::File("1111/json", b"{}".to_vec()),
        Item::File("2222/layer.tar", top_a.clone()),
        Item::File("3333/layer.tar", top_b.clone()),
        Item::File(
            &format!("{}.json", cfg_a.digest().hex()),
            cfg_a.bytes().to_vec(),
        ),
        Item::File(
            &format!("{}.json", cfg_b.digest().hex()),
            cfg_b.bytes().to_vec(),
        ),
        Item::File("manifest.json", manifest.into_bytes()),
        Item::File("repositories", br#"{"app":{"a":"2222"}}"#.to_vec()),
    ]);
    Legacy {
        bytes,
        layers: vec![base, top_a, top_b],
        configs: vec![cfg_a.digest().clone(), cfg_b.digest().clone()],
    }
}

fn new_layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Layout::create(dir.path().join("l")).expect("layout");
    (dir, l)
}

fn blobs(l: &Layout) -> Vec<String> {
    files_under(&l.root().join("blobs"))
}

#[test]
fn spools_legacy_archive_with_shared_layers() {
    let fx = legacy_archive();
    let (_d, l) = new_layout();
    let images = spool(pipe(fx.bytes), &l).expect("spool");
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].tags, vec!["app:a", "localhost:5000/team/app:a"]);
    assert!(images[1].tags.is_empty());
    assert_eq!(images[0].config.digest, fx.configs[0]);
    assert_eq!(images[1].config.digest, fx.configs[1]);

    let a = l.image(Some("app:a"), None).expect("image a");
    assert_eq!(a.descriptor.digest, images[0].manifest.digest);
    assert_eq!(
        l.resolve(Some("localhost:5000/team/app:a"))
            .expect("full")
            .digest,
        images[0].manifest.digest
    );
    let layer_digests: Vec<Digest> = a
        .manifest
        .value()
        .layers
        .iter()
        .map(|d| d.digest.clone())
        .collect();
    assert_eq!(
        layer_digests,
        vec![
            Digest::sha256_of(&fx.layers[0]),
            Digest::sha256_of(&fx.layers[1])
        ]
    );
    assert!(
        a.manifest
            .value()
            .layers
            .iter()
            .all(|d| d.media_type == MediaType::OCI_LAYER)
    );
    // The config keeps the archive's exact bytes.
    assert_eq!(a.config.digest(), &fx.configs[0]);

    // Image B resolved its symlinked base layer to the same blob.
    let b = l.image_at(&images[1].manifest, None).expect("image b");
    assert_eq!(
        b.manifest.value().layers[0].digest,
        Digest::sha256_of(&fx.layers[0])
    );
    // Untagged image B is in the index without a tag.
    assert_eq!(l.list().expect("list").len(), 3);

    // Blobs: 3 layers + 2 configs + 2 manifests; no v1 metadata, no temp files.
    assert_eq!(blobs(&l).len(), 7, "{:?}", blobs(&l));
    for d in a
        .manifest
        .value()
        .layers
        .iter()
        .chain(&b.manifest.value().layers)
    {
        l.verify_blob(d).expect("verified");
    }
}

#[test]
fn spools_compressed_archive_streams() {
    let fx = legacy_archive();
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut packed = Vec::new();
        compress(&fx.bytes[..], &mut packed, c, None, 1).expect("compress");
        let (_d, l) = new_layout();
        let images = spool(pipe(packed), &l).expect("spool compressed stream");
        assert_eq!(images.len(), 2, "{c}");
        assert_eq!(images[0].config.digest, fx.configs[0]);
    }
}

#[test]
fn a_compressed_archive_with_a_bad_trailer_fails() {
    // The gzip CRC is the last check on a legacy archive's config and manifest.json bytes; it
    // comes after the tar's end, which must not make it optional.
    let fx = legacy_archive();
    let mut packed = Vec::new();
    compress(&fx.bytes[..], &mut packed, Compression::Gzip, None, 1).expect("compress");
    let crc_at = packed.len() - 8;
    packed[crc_at] ^= 0xff;
    assert_clean_failure(packed, |e| e.to_string().contains("end of the archive"));
}

/// A gzip or zstd archive damaged in the middle: the error is the compressed stream's own, not
/// whatever the garbage before its check made the tar reader say.
#[test]
fn a_damaged_gzip_or_zstd_archive_says_its_stream_is_corrupt() {
    let fx = legacy_archive();
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut packed = Vec::new();
        compress(&fx.bytes[..], &mut packed, c, None, 1).expect("compress");
        let at = packed.len() / 3;
        packed[at] ^= 0x55;
        let said = format!("corrupt or truncated {c} stream");
        assert_clean_failure(packed, |e| {
            e.kind() == crate::ErrorKind::Corrupt && e.to_string().contains(&said)
        });
    }
}

#[test]
fn paths_kept_until_the_manifest_are_bounded() {
    // One overlong link target: refused, naming the reason.
    let long = "t".repeat(5000);
    let bytes = archive(vec![Item::Link("a/layer.tar", &long)]);
    assert_clean_failure(bytes, |e| {
        e.is_invalid_input() && e.to_string().contains("short paths")
    });
    // Many links whose names and targets are each allowed add up past the bound.
    let names: Vec<(String, String)> = (0..2200)
        .map(|i| {
            (
                format!("d{i}/{}", "p".repeat(3900)),
                format!("x/{}", "q".repeat(3900)),
            )
        })
        .collect();
    let items = names
        .iter()
        .map(|(n, t)| Item::Link(n, t))
        .collect::<Vec<_>>();
    assert_clean_failure(archive(items), |e| {
        e.is_invalid_input() && e.to_string().contains("bytes of paths")
    });
}

/// A source layout holding one image for `arch` with one uncompressed layer (a tool script):
/// the layout's guard, the layout, the layer tar, the manifest's descriptor and the manifest.
fn tool_image(
    arch: &str,
) -> (
    tempfile::TempDir,
    Layout,
    Vec<u8>,
    Descriptor,
    crate::RawJson<crate::ImageManifest>,
) {
    let (dir, src) = new_layout();
    let layer = tar_of(&[("bin/tool", b"#!/bin/sh")]);
    let (desc, manifest) = write_image(&src, std::slice::from_ref(&layer), Compression::None, arch);
    (dir, src, layer, desc, manifest)
}

#[test]
fn spools_oci_layout_inside_tar() {
    // What docker >= 25 writes: blobs named by digest, index.json, oci-layout, manifest.json.
    let (_s, src, layer, desc, manifest) = tool_image("arm64");
    let config = &manifest.value().config;
    let blob = |d: &Digest| std::fs::read(src.blob_path(d)).expect("blob");
    let layer_digest = &manifest.value().layers[0].digest;
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let mj = format!(
        r#"[{{"Config":"{}","RepoTags":["tool:1"],"Layers":["{}"]}}]"#,
        path(&config.digest),
        path(layer_digest)
    );
    let bytes = archive(vec![
        Item::File(&path(layer_digest), blob(layer_digest)),
        Item::File(&path(&config.digest), blob(&config.digest)),
        Item::File(&path(&desc.digest), blob(&desc.digest)),
        Item::File(
            "index.json",
            b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec(),
        ),
        Item::File("manifest.json", mj.into_bytes()),
        Item::File("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}".to_vec()),
    ]);
    let (_d, l) = new_layout();
    // Spooling twice: the second pass finds the blobs present and only re-hashes them; a
    // third, after a layer blob was damaged on disk (same size), writes that one again.
    for pass in 0..3 {
        if pass == 2 {
            let damaged = l.blob_path(layer_digest);
            let mut bytes = std::fs::read(&damaged).expect("blob");
            bytes[0] ^= 0xff;
            std::fs::write(&damaged, bytes).expect("damage");
        }
        let images = spool(pipe(bytes.clone()), &l).expect("spool");
        assert_eq!(images.len(), 1);
        let img = l.image(Some("tool:1"), None).expect("image");
        assert_eq!(img.config.value().architecture, "arm64");
        assert_eq!(
            img.manifest.value().layers[0].digest,
            Digest::sha256_of(&layer)
        );
        l.verify_blob(&img.manifest.value().layers[0])
            .expect("the layer blob is whole");
    }
    assert_eq!(l.tags().expect("tags"), vec!["tool:1"]);
}

#[test]
fn an_index_only_archive_is_checked_for_the_platform_asked_for() {
    // An OCI layout in a tar without manifest.json, its tag on an index whose one entry is
    // for s390x (never the host here): the asked-for platform is what is checked.
    let (_s, src, _, desc, manifest) = tool_image("s390x");
    let mut entry = desc.clone();
    entry.platform = Some(crate::Platform::parse("linux/s390x").expect("platform"));
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        serde_json::to_string(&entry).expect("entry")
    );
    let index = crate::RawJson::<crate::ImageIndex>::parse(index.into_bytes()).expect("index");
    let mut listed = index.descriptor(MediaType::OCI_INDEX);
    listed
        .annotations
        .insert(crate::layout::REF_NAME.into(), "tool:1".into());
    let top = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        serde_json::to_string(&listed).expect("listed")
    );
    let blob = |d: &Digest| std::fs::read(src.blob_path(d)).expect("blob");
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let m = manifest.value();
    let bytes = archive(vec![
        Item::File(&path(&m.layers[0].digest), blob(&m.layers[0].digest)),
        Item::File(&path(&m.config.digest), blob(&m.config.digest)),
        Item::File(&path(&desc.digest), blob(&desc.digest)),
        Item::File(&path(&listed.digest), index.bytes().to_vec()),
        Item::File("index.json", top.into_bytes()),
        Item::File("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}".to_vec()),
    ]);
    // Without a platform the host's is looked for, and the index has none.
    let (_d, l) = new_layout();
    let err = spool(pipe(bytes.clone()), &l).expect_err("not the host's");
    assert!(err.is_no_matching_platform(), "{err}");
    // With it, the archive spools and its image is the s390x one.
    let (_d, l) = new_layout();
    let options = SpoolOptions::new().platform(Some(
        crate::Platform::parse("linux/s390x").expect("platform"),
    ));
    let images = spool_with(pipe(bytes), &l, options).expect("spool");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].manifest.digest, listed.digest);
    assert_eq!(images[0].config.digest, m.config.digest);
}

#[test]
fn compressed_layers_in_an_archive_are_detected_and_checked() {
    // Bytes that do not compress, so the blob is reported as a layer (512 bytes or more).
    let mut x = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..2048)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    let layer = tar_of(&[("f", &noise)]);
    let mut gz = Vec::new();
    let info = compress(&layer[..], &mut gz, Compression::Gzip, None, 1).expect("gz");
    assert!(gz.len() >= 512, "{}", gz.len());
    let cfg = config_for(vec![info.diff_id.clone()], "amd64");
    let mj = r#"[{"Config":"c.json","RepoTags":["z:1"],"Layers":["l.tar.gz"]}]"#.to_string();
    let bytes = archive(vec![
        Item::File("l.tar.gz", gz.clone()),
        Item::File("c.json", cfg.bytes().to_vec()),
        Item::File("manifest.json", mj.clone().into_bytes()),
    ]);
    let (_d, l) = new_layout();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    let options = SpoolOptions::new().on_event(move |e| sink.lock().expect("lock").push(e));
    spool_with(pipe(bytes), &l, options).expect("spool");
    let img = l.image(Some("z:1"), None).expect("image");
    assert_eq!(
        img.manifest.value().layers[0].media_type,
        MediaType::OCI_LAYER_GZIP
    );
    assert_eq!(img.manifest.value().layers[0].digest, info.digest);
    // Stored as it came: reported by its blob, with no diff_id yet (not the blob's digest).
    let stored: Vec<_> = events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            SpoolEvent::LayerStored { diff_id, blob, .. } => Some((diff_id.clone(), blob.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        stored,
        vec![(
            None,
            Descriptor::new(MediaType::OCI_LAYER_GZIP, info.digest.clone(), info.size)
        )]
    );

    // The same archive with a config claiming another diff_id is refused.
    let wrong = config_for(vec![Digest::sha256_of(b"x")], "amd64");
    let bytes = archive(vec![
        Item::File("l.tar.gz", gz),
        Item::File("c.json", wrong.bytes().to_vec()),
        Item::File("manifest.json", mj.into_bytes()),
    ]);
    let (_d2, l2) = new_layout();
    let err = spool(pipe(bytes), &l2).expect_err("diff_id");
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(l2.tags().expect("tags").is_empty());
}

fn assert_clean_failure(bytes: Vec<u8>, check: impl Fn(&crate::Error) -> bool) {
    let (_d, l) = new_layout();
    let err = spool(pipe(bytes), &l).expect_err("must fail");
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(l.list().expect("list").is_empty(), "no tag may be set");
    assert!(
        blobs(&l).iter().all(|p| p.starts_with("sha256/")),
        "temp files left: {:?}",
        blobs(&l)
    );
}

#[test]
fn bad_archives_are_clear_errors() {
    // An xz or bzip2 magic followed by garbage: the stream is named as what is corrupt.
    let xz = [&[0xfd, b'7', b'z', b'X', b'Z', 0][..], &[7u8; 2000]].concat();
    let bzip2 = [&b"BZh91AY&SY"[..], &[7u8; 2000]].concat();
    for (bytes, name) in [(xz, "xz"), (bzip2, "bzip2")] {
        assert_clean_failure(bytes, |e| {
            e.is_corrupt()
                && e.to_string()
                    .contains(&format!("the archive's {name} stream is corrupt"))
        });
    }
    let fx = legacy_archive();
    // Truncated in the middle of a layer.
    let cut = fx.bytes[..1024 + 700].to_vec();
    assert_clean_failure(cut, crate::Error::is_corrupt);
    // Truncated before manifest.json (at an entry boundary): no manifest.
    let mut headless = fx.bytes.clone();
    headless.truncate(5 * 512);
    assert_clean_failure(headless, |e| e.is_invalid_input() || e.is_corrupt());
    // Entries escaping the archive.
    for evil in ["../evil", "/etc/passwd", "a/../../b"] {
        let bytes = archive(vec![Item::RawName(evil, b"x".to_vec())]);
        assert_clean_failure(bytes, |e| {
            e.is_invalid_input() && e.to_string().contains("escapes")
        });
    }
    let link_out = archive(vec![Item::Link("a/layer.tar", "../../outside")]);
    assert_clean_failure(link_out, |e| e.is_invalid_input());
    // Malformed manifest.json.
    let bytes = archive(vec![Item::File("manifest.json", b"{oops".to_vec())]);
    assert_clean_failure(bytes, |e| {
        e.is_invalid_input() && e.to_string().contains("manifest.json")
    });
    // A layer named by manifest.json but absent.
    let cfg = config_for(vec![Digest::sha256_of(b"l")], "amd64");
    let bytes = archive(vec![
        Item::File("c.json", cfg.bytes().to_vec()),
        Item::File(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["gone/layer.tar"]}]"#.to_vec(),
        ),
    ]);
    assert_clean_failure(bytes, |e| {
        e.is_invalid_input() && e.to_string().contains("gone/layer.tar")
    });
    // An OCI blob whose content does not match its name.
    let name = format!("blobs/sha256/{}", Digest::sha256_of(b"claimed").hex());
    let bytes = archive(vec![Item::File(&name, b"actual".to_vec())]);
    assert_clean_failure(bytes, crate::Error::is_digest_mismatch);
    // One RepoTag that is no docker reference among good ones: no tag at all is set. (A fine
    // docker tag that a layout cannot hold is no error: see `names`.)
    let cfg = config_for(vec![], "amd64");
    let bytes = archive(vec![
        Item::File("c.json", cfg.bytes().to_vec()),
        Item::File(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["good:1"],"Layers":[]},
                 {"Config":"c.json","RepoTags":["bad tag!"],"Layers":[]}]"#
                .to_vec(),
        ),
    ]);
    assert_clean_failure(bytes, |e| {
        e.is_invalid_input() && e.to_string().contains("bad tag!")
    });
    // An invalid digest as a blob name.
    let bytes = archive(vec![Item::File("blobs/sha256/XYZ", b"x".to_vec())]);
    assert_clean_failure(bytes, crate::Error::is_invalid_input);
    // Not an archive at all.
    assert_clean_failure(b"<html>404</html>".repeat(40), |e| {
        e.is_corrupt() || e.is_invalid_input()
    });
}

#[test]
fn written_archive_spools_back_identically() {
    let (_s, src) = new_layout();
    let shared = tar_of(&[("lib/libc.so", &[7u8; 3000][..])]);
    let (one, m1) = write_image(
        &src,
        &[shared.clone(), tar_of(&[("one", b"1")])],
        Compression::Gzip,
        "amd64",
    );
    let (two, _) = write_image(
        &src,
        &[shared.clone(), tar_of(&[("two", b"2")])],
        Compression::Zstd,
        "amd64",
    );
    let (three, _) = write_image(
        &src,
        &[tar_of(&[("three", b"3")])],
        Compression::None,
        "amd64",
    );
    let mut out = Vec::new();
    write_docker_archive(
        &src,
        &[
            (one.clone(), vec!["one:latest".into()]),
            (two, vec!["docker.io/library/two:v2".into()]),
            (three, vec!["localhost:5000/three".into()]),
        ],
        &mut out,
    )
    .expect("write");
    // The shared layer is written once; no temp file is left in the source layout.
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    let shared_path = format!("{}/layer.tar", Digest::sha256_of(&shared).hex());
    assert_eq!(names.iter().filter(|n| **n == shared_path).count(), 1);
    assert_eq!(names.last().map(String::as_str), Some("manifest.json"));
    assert!(
        files_under(&src.root().join("blobs"))
            .iter()
            .all(|p| !p.starts_with(".tmp"))
    );

    let (_d, dst) = new_layout();
    let images = spool(pipe(out), &dst).expect("spool back");
    assert_eq!(images.len(), 3);
    assert_eq!(images[1].tags, vec!["two:v2"]);
    assert_eq!(images[2].tags, vec!["localhost:5000/three:latest"]);
    let back = dst.image(Some("one:latest"), None).expect("one");
    // Same config bytes, uncompressed layers with the original diff_ids.
    assert_eq!(back.config.digest(), &m1.value().config.digest);
    let diff_ids = &back.config.value().rootfs.diff_ids;
    let layer_digests: Vec<&Digest> = back
        .manifest
        .value()
        .layers
        .iter()
        .map(|d| &d.digest)
        .collect();
    assert_eq!(layer_digests, diff_ids.iter().collect::<Vec<_>>());
    let mut content = Vec::new();
    dst.open_blob(&back.manifest.value().layers[0])
        .expect("open")
        .read_to_end(&mut content)
        .expect("read");
    assert_eq!(content, shared);
}

#[test]
fn a_read_only_layout_spills_elsewhere() {
    let (_s, src) = new_layout();
    let (one, _) = write_image(&src, &[tar_of(&[("a", b"1")])], Compression::Gzip, "amd64");
    let images = [(one, vec!["a:1".into()])];
    let blobs = src.root().join("blobs");
    let before = std::fs::metadata(&blobs)
        .expect("stat")
        .modified()
        .expect("mtime");
    let spill = tempfile::tempdir().expect("tempdir");
    let mut out = Vec::new();
    write_docker_archive_spilling(&src, &images, spill.path(), &mut out).expect("write");
    // Nothing was created (and removed) in the layout: its blobs directory never changed.
    let after = std::fs::metadata(&blobs)
        .expect("stat")
        .modified()
        .expect("mtime");
    assert_eq!(before, after, "the source layout was written to");
    assert!(
        files_under(spill.path()).is_empty(),
        "the spill file was left"
    );
    let (_d, dst) = new_layout();
    assert_eq!(spool(pipe(out), &dst).expect("spool back").len(), 1);
    // The spill really goes there: a spill directory that is missing fails, naming it.
    let gone = spill.path().join("missing");
    let err = write_docker_archive_spilling(&src, &images, &gone, io::sink()).expect_err("no dir");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn writing_refuses_bad_tags_and_corrupt_blobs() {
    let (_s, src) = new_layout();
    let (one, m) = write_image(&src, &[tar_of(&[("a", b"1")])], Compression::Gzip, "amd64");
    let err = write_docker_archive(
        &src,
        &[(one.clone(), vec!["UPPER:case".into()])],
        io::sink(),
    )
    .expect_err("bad tag");
    assert!(err.is_invalid_input());
    // Corrupt the gzip layer on disk: the diff_id check (or the blob digest) catches it.
    let layer: &Descriptor = &m.value().layers[0];
    let path = src.blob_path(&layer.digest);
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");
    let err =
        write_docker_archive(&src, &[(one, vec!["a:1".into()])], io::sink()).expect_err("corrupt");
    assert!(err.is_digest_mismatch() || err.is_corrupt(), "{err}");
    assert!(
        files_under(&src.root().join("blobs"))
            .iter()
            .all(|p| !p.starts_with(".tmp"))
    );
}

#[test]
fn spool_with_compresses_each_layer_once_and_reports_it() {
    use std::sync::{Arc, Mutex};
    let fx = legacy_archive();
    let (_d, l) = new_layout();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let options = SpoolOptions::new()
        .compress_layers(Compression::Gzip, Some(1), 2)
        .tag_images(false)
        .on_event(move |e| sink.lock().expect("lock").push(e));
    let images = spool_with(pipe(fx.bytes), &l, options).expect("spool");
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].tags, vec!["app:a", "localhost:5000/team/app:a"]);
    assert!(
        l.list().expect("list").is_empty(),
        "tagging left to the caller"
    );

    let a = l.image_at(&images[0].manifest, None).expect("image a");
    let b = l.image_at(&images[1].manifest, None).expect("image b");
    let diff_ids: Vec<Digest> = fx.layers.iter().map(|t| Digest::sha256_of(t)).collect();
    for (layer, want) in a.manifest.value().layers.iter().zip(&diff_ids) {
        assert_eq!(layer.media_type, MediaType::OCI_LAYER_GZIP);
        assert_ne!(&layer.digest, want, "stored compressed");
        let mut hasher = crate::digest::Digester::new(crate::Algorithm::Sha256);
        crate::codec::copy(
            crate::codec::decoder(l.open_blob(layer).expect("open")).expect("gzip"),
            &mut hasher,
        )
        .expect("decompress");
        assert_eq!(&hasher.finish(), want);
    }
    assert_eq!(
        b.manifest.value().layers[0],
        a.manifest.value().layers[0],
        "shared base stored once"
    );
    // 3 compressed layers + 2 configs + 2 manifests: no uncompressed copy, no temp file.
    assert_eq!(blobs(&l).len(), 7, "{:?}", blobs(&l));

    let events = events.lock().expect("lock");
    let started: Vec<(usize, u64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            SpoolEvent::LayerStarted {
                index,
                size,
                compressing,
                ..
            } => Some((*index, *size, *compressing)),
            _ => None,
        })
        .collect();
    let sizes: Vec<u64> = fx.layers.iter().map(|t| t.len() as u64).collect();
    assert_eq!(
        started,
        vec![
            (0, sizes[0], true),
            (1, sizes[1], true),
            (2, sizes[2], true)
        ]
    );
    let stored: Vec<(usize, Option<Digest>, Descriptor)> = events
        .iter()
        .filter_map(|e| match e {
            SpoolEvent::LayerStored {
                index,
                diff_id,
                blob,
            } => Some((*index, diff_id.clone(), blob.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 3);
    for (i, diff_id, blob) in &stored {
        assert_eq!(diff_id.as_ref(), Some(&diff_ids[*i]));
        l.verify_blob(blob).expect("reported blob is stored");
    }
    // Every layer's last progress report is its whole size, after its start and before its end.
    for (i, size) in sizes.iter().enumerate() {
        let pos = |f: &dyn Fn(&SpoolEvent) -> bool| events.iter().position(f).expect("event");
        let start = pos(&|e| matches!(e, SpoolEvent::LayerStarted { index, .. } if *index == i));
        let end = pos(&|e| matches!(e, SpoolEvent::LayerStored { index, .. } if *index == i));
        let last = events[start..end]
            .iter()
            .rev()
            .find_map(|e| match e {
                SpoolEvent::LayerProgress { index, bytes } if *index == i => Some(*bytes),
                _ => None,
            })
            .expect("progress");
        assert_eq!(last, *size);
    }
}

#[test]
fn spool_with_checks_options_and_cleans_up_a_cut_stream() {
    let (_d, l) = new_layout();
    let bad = SpoolOptions::new().compress_layers(Compression::Gzip, Some(42), 1);
    let err = spool_with(io::empty(), &l, bad).expect_err("level 42");
    assert!(
        err.is_invalid_input() && err.to_string().contains("42"),
        "{err}"
    );

    // A stream cut in the middle of a layer being compressed leaves no temp file and no tag.
    let fx = legacy_archive();
    let cut = fx.bytes[..1024 + 2048 + 700].to_vec();
    let options = SpoolOptions::new().compress_layers(Compression::Zstd, None, 1);
    let err = spool_with(pipe(cut), &l, options).expect_err("cut");
    assert!(err.is_corrupt(), "{err}");
    assert!(l.list().expect("list").is_empty());
    assert!(
        blobs(&l).iter().all(|p| p.starts_with("sha256/")),
        "temp files left: {:?}",
        blobs(&l)
    );
}

mod commit;
mod index_only;
mod names;
mod props;
mod xz_bzip2;
