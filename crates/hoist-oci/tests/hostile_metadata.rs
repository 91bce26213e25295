//! Hostile metadata against the layout, `RawJson`, `AnyManifest` and docker-archive spooling:
//! every case must end in a clear error naming what was wrong, without a panic, without a tag
//! or temp file left in the layout, and without a write outside it.

use std::fs;
use std::path::{Path, PathBuf};

use hoist_oci::archive::spool;
use hoist_oci::{
    AnyManifest, Descriptor, Digest, Error, ImageConfig, ImageIndex, ImageManifest, Layout,
    MAX_JSON_SIZE, MediaType, RawJson, RootFs,
};

/// A layout in `<tmp>/layout`, so writes beside it (in `<tmp>`) can be detected.
struct Fixture {
    tmp: tempfile::TempDir,
    layout: Layout,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(tmp.path().join("layout")).expect("create layout");
        Fixture { tmp, layout }
    }

    fn store(&self, bytes: &[u8]) -> Digest {
        self.layout.write_blob(bytes, None).expect("write blob").0
    }

    fn store_desc(&self, media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, self.store(bytes), bytes.len() as u64)
    }

    fn index_path(&self) -> PathBuf {
        self.layout.root().join("index.json")
    }

    /// Nothing but the layout in the temp dir, no temp files in `blobs/`, no tag.
    fn assert_clean(&self) {
        let beside: Vec<_> = fs::read_dir(self.tmp.path())
            .expect("read tmp")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            beside,
            vec!["layout"],
            "something was written beside the layout"
        );
        for e in walk(&self.layout.root().join("blobs")) {
            let rel = e
                .strip_prefix(self.layout.root())
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let name = e.file_name().expect("name").to_string_lossy().into_owned();
            assert!(
                Digest::parse(&format!("sha256:{name}")).is_ok()
                    || Digest::parse(&format!("sha512:{name}")).is_ok(),
                "a partial or stray file was left in the layout: {rel}"
            );
        }
    }

    fn assert_untagged(&self) {
        assert!(
            self.layout.list().expect("list").is_empty(),
            "a tag was set"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn deep(open: &str, n: usize) -> Vec<u8> {
    open.repeat(n).into_bytes()
}

fn config_bytes(diff_ids: Vec<Digest>) -> Vec<u8> {
    RawJson::from_value(ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..Default::default()
    })
    .expect("config")
    .into_bytes()
}

fn manifest_bytes(config: Descriptor, layers: Vec<Descriptor>) -> Vec<u8> {
    RawJson::from_value(ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("manifest")
    .into_bytes()
}

fn index_bytes(manifests: Vec<Descriptor>) -> Vec<u8> {
    RawJson::from_value(ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: Default::default(),
        extra: Default::default(),
    })
    .expect("index")
    .into_bytes()
}

fn expect_invalid<T: std::fmt::Debug>(r: hoist_oci::Result<T>, needle: &str) -> Error {
    let err = r.expect_err("hostile input must be refused");
    assert!(
        err.is_invalid_input(),
        "expected invalid input, got {:?}: {err}",
        err.kind()
    );
    let text = err.to_string();
    assert!(
        text.contains(needle),
        "error should mention {needle:?}: {text}"
    );
    err
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for (open, what) in [("[", "image manifest"), ("{\"a\":", "image manifest")] {
        let bytes = deep(open, 100_000);
        expect_invalid(RawJson::<ImageManifest>::parse(bytes.clone()), what);
        expect_invalid(RawJson::<ImageIndex>::parse(bytes.clone()), "image index");
        expect_invalid(RawJson::<ImageConfig>::parse(bytes.clone()), "image config");
        expect_invalid(AnyManifest::parse(bytes, None), "malformed manifest");
    }
    // Nesting hidden where the types accept free-form JSON (config history, annotations).
    let mut history = br#"{"rootfs":{"type":"layers","diff_ids":[]},"history":["#.to_vec();
    history.extend(deep("[", 100_000));
    expect_invalid(RawJson::<ImageConfig>::parse(history), "image config");
}

#[test]
fn oversized_documents_are_refused_by_size_first() {
    let mut big = b"{\"schemaVersion\":2,\"manifests\":[".to_vec();
    big.resize(MAX_JSON_SIZE + 1, b' ');
    expect_invalid(RawJson::<ImageIndex>::parse(big.clone()), "limit");
    expect_invalid(AnyManifest::parse(big, None), "size limit");
    // A huge but well-formed array under the cap parses; the same with wrong element types
    // fails fast with a type error, not a crash.
    let zeros = format!(
        "{{\"schemaVersion\":2,\"manifests\":[{}0]}}",
        "0,".repeat(MAX_JSON_SIZE / 2 - 64)
    );
    expect_invalid(
        RawJson::<ImageIndex>::parse(zeros.into_bytes()),
        "image index",
    );
}

#[test]
fn digests_that_could_name_paths_are_refused() {
    let evil = [
        "sha256:../../../../etc/passwd",
        "sha256:..",
        "sha256/../../x",
        "../sha256:abc",
        "sha256:/etc/passwd",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\0",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855a",
        "",
        ":",
    ];
    for d in evil {
        let err = Digest::parse(d).expect_err(d);
        assert!(err.is_invalid_input(), "{d:?}: {err}");
        assert!(err.to_string().contains("invalid digest"), "{d:?}: {err}");
        // The same digest inside a manifest fails the whole parse.
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":{},"size":2}},"layers":[]}}"#,
            MediaType::OCI_CONFIG,
            serde_json::to_string(d).expect("json string")
        );
        expect_invalid(RawJson::<ImageManifest>::parse(json.into_bytes()), "digest");
    }
    // A long hostile digest is shortened in the message, not echoed whole.
    let long = format!("sha256:{}", "../".repeat(100_000));
    let err = Digest::parse(&long).expect_err("long");
    assert!(err.to_string().len() < 1_000, "message too long");
}

#[test]
fn negative_overflowing_and_fractional_sizes_are_refused() {
    let d = Digest::sha256_of(b"{}");
    for size in [
        "-1",
        "18446744073709551616",
        "1e30",
        "2.5",
        "\"12\"",
        "null",
    ] {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{d}","size":{size}}}}}"#,
            MediaType::OCI_CONFIG
        );
        // The message names the expected type and the position of the bad value.
        expect_invalid(
            RawJson::<ImageManifest>::parse(json.into_bytes()),
            "expected u64",
        );
    }
}

#[test]
fn sizes_that_lie_are_caught_when_reading() {
    let fx = Fixture::new();
    let bytes = config_bytes(vec![]);
    let real = fx.store_desc(MediaType::OCI_CONFIG, &bytes);
    for lie in [real.size - 1, real.size + 1, 0] {
        let desc = Descriptor::new(MediaType::OCI_CONFIG, real.digest.clone(), lie);
        let err = fx
            .layout
            .read_json::<ImageConfig>(&desc)
            .expect_err("a lying size must fail");
        assert!(err.is_size_mismatch(), "{lie}: {err}");
        assert_eq!(err.digest(), Some(&real.digest));
    }
    // A claimed size over the cap is refused before anything is allocated or read.
    for lie in [MAX_JSON_SIZE as u64 + 1, u64::MAX] {
        let desc = Descriptor::new(MediaType::OCI_CONFIG, real.digest.clone(), lie);
        expect_invalid(fx.layout.read_json::<ImageConfig>(&desc), "limit");
    }
    fx.assert_clean();
}

#[test]
fn wrong_media_types_are_named() {
    // A document claiming to be something that is no manifest.
    for mt in ["text/html", MediaType::OCI_LAYER, MediaType::OCI_CONFIG] {
        let json = format!(r#"{{"schemaVersion":2,"mediaType":"{mt}","layers":[]}}"#);
        let err = AnyManifest::parse(json.into_bytes(), None).expect_err(mt);
        assert!(err.to_string().contains(mt), "{mt}: {err}");
    }
    let fx = Fixture::new();
    let cfg = fx.store_desc(MediaType::OCI_CONFIG, &config_bytes(vec![]));
    let layer = fx.store_desc(MediaType::OCI_LAYER, b"not really a tar");
    // index.json pointing at a layer as if it were a manifest.
    let err = fx
        .layout
        .image_at(&layer, None)
        .expect_err("layer as manifest");
    assert!(err.to_string().contains("media type"), "{err}");
    // A manifest whose config is a layer, and one whose layer is a config.
    let bad_cfg = Descriptor::new(MediaType::OCI_LAYER, cfg.digest.clone(), cfg.size);
    let m = fx.store_desc(MediaType::OCI_MANIFEST, &manifest_bytes(bad_cfg, vec![]));
    let err = fx.layout.image_at(&m, None).expect_err("layer as config");
    assert!(err.to_string().contains("config media type"), "{err}");
    let bad_layer = Descriptor::new(MediaType::OCI_CONFIG, layer.digest.clone(), layer.size);
    let m = fx.store_desc(
        MediaType::OCI_MANIFEST,
        &manifest_bytes(cfg.clone(), vec![bad_layer]),
    );
    let err = fx.layout.image_at(&m, None).expect_err("config as layer");
    assert!(err.to_string().contains("layer media type"), "{err}");
    // A manifest stored under an index media type is not an index.
    let good = fx.store_desc(MediaType::OCI_MANIFEST, &manifest_bytes(cfg, vec![]));
    let as_index = Descriptor::new(MediaType::OCI_INDEX, good.digest.clone(), good.size);
    assert!(fx.layout.image_at(&as_index, None).is_err());
    fx.assert_clean();
}

#[test]
fn nested_indexes_are_bounded() {
    let fx = Fixture::new();
    let cfg = fx.store_desc(MediaType::OCI_CONFIG, &config_bytes(vec![]));
    let mut d = fx.store_desc(MediaType::OCI_MANIFEST, &manifest_bytes(cfg, vec![]));
    for _ in 0..10 {
        d = fx.store_desc(MediaType::OCI_INDEX, &index_bytes(vec![d]));
    }
    let err = fx
        .layout
        .image_at(&d, None)
        .expect_err("ten nested indexes");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
}

#[test]
fn malformed_index_json_is_named_and_never_overwritten() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deep nesting", deep("[", 100_000)),
        ("not json", b"<html><body>502 Bad Gateway</body></html>".to_vec()),
        ("wrong shape", br#"{"schemaVersion":2,"manifests":{"a":1}}"#.to_vec()),
        (
            "bad digest",
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1}]}"#
                .to_vec(),
        ),
        ("oversized", {
            let mut v = br#"{"schemaVersion":2,"manifests":["#.to_vec();
            v.resize(MAX_JSON_SIZE + 10, b' ');
            v
        }),
    ];
    for (what, bytes) in cases {
        let fx = Fixture::new();
        fs::write(fx.index_path(), &bytes).expect("write index.json");
        let reopened = Layout::open(fx.layout.root()).expect("open");
        let err = reopened.list().expect_err(what);
        assert!(err.is_invalid_input(), "{what}: {err}");
        assert_eq!(
            err.path(),
            Some(fx.index_path().as_path()),
            "{what}: the error names index.json"
        );
        // Tagging on top of a broken index refuses instead of replacing it.
        let cfg = fx.store_desc(MediaType::OCI_CONFIG, &config_bytes(vec![]));
        let m = fx.store_desc(MediaType::OCI_MANIFEST, &manifest_bytes(cfg, vec![]));
        assert!(reopened.set_tag("v1", &m).is_err(), "{what}");
        assert!(reopened.add_untagged(&m).is_err(), "{what}");
        assert_eq!(
            fs::read(fx.index_path()).expect("read"),
            bytes,
            "{what}: index.json changed"
        );
        fx.assert_clean();
    }
}

#[test]
fn oversized_oci_layout_marker_is_refused_without_reading_it_whole() {
    let fx = Fixture::new();
    let marker = fx.layout.root().join("oci-layout");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&marker)
        .expect("open marker");
    // Sparse: costs no disk, but reading it whole would cost 1 GiB of memory.
    f.set_len(1 << 30).expect("grow marker");
    drop(f);
    let err = Layout::open(fx.layout.root()).expect_err("a 1 GiB oci-layout");
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("oci-layout"), "{err}");
    assert!(err.to_string().contains("limit"), "refused by size: {err}");
}

// ---- docker archives ----

enum Entry<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
    /// A file whose header declares `size` bytes but carries only `body`.
    Lying(&'a str, u64, Vec<u8>),
}

fn tar_of(entries: Vec<Entry<'_>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match e {
            Entry::File(name, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, data.as_slice())
                    .expect("append file");
            }
            Entry::Symlink(name, target) => {
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, name, target).expect("append link");
            }
            Entry::Lying(name, size, body) => {
                h.set_size(size);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_path(name).expect("path");
                h.set_cksum();
                let mut raw = h.as_bytes().to_vec();
                raw.extend_from_slice(&body);
                let mut out = b.into_inner().expect("finish");
                // Drop the end-of-archive blocks so the lying entry is read, then end the
                // stream early.
                out.truncate(out.len() - 1024);
                out.extend_from_slice(&raw);
                return out;
            }
        }
    }
    b.into_inner().expect("finish tar")
}

fn manifest_json(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([{
        "Config": config, "RepoTags": ["hostile:1"], "Layers": layers
    }]))
    .expect("manifest.json")
}

fn spool_fails(entries: Vec<Entry<'_>>) -> (Fixture, Error) {
    let fx = Fixture::new();
    let err = spool(tar_of(entries).as_slice(), &fx.layout).expect_err("hostile archive");
    fx.assert_clean();
    fx.assert_untagged();
    (fx, err)
}

#[test]
fn archive_manifest_pointing_outside_is_refused() {
    let cfg = config_bytes(vec![Digest::sha256_of(b"layer")]);
    for (config, layer) in [
        ("../../etc/passwd", "l/layer.tar"),
        ("/etc/passwd", "l/layer.tar"),
        ("c.json", "../outside/layer.tar"),
        ("c.json", "/tmp/layer.tar"),
        ("c.json", "l/../../x"),
    ] {
        let (_fx, err) = spool_fails(vec![
            Entry::File("c.json", cfg.clone()),
            Entry::File("l/layer.tar", b"layer".to_vec()),
            Entry::File("manifest.json", manifest_json(config, &[layer])),
        ]);
        assert!(err.is_invalid_input(), "{config} {layer}: {err}");
        assert!(
            err.to_string().contains("escapes"),
            "{config} {layer}: {err}"
        );
    }
    // A symlink inside the archive pointing out of it.
    let (_fx, err) = spool_fails(vec![
        Entry::File("c.json", cfg.clone()),
        Entry::Symlink("l/layer.tar", "../../../etc/shadow"),
        Entry::File("manifest.json", manifest_json("c.json", &["l/layer.tar"])),
    ]);
    assert!(err.to_string().contains("escapes"), "{err}");
}

#[test]
fn archive_manifest_pointing_at_missing_files_or_loops_is_refused() {
    let cfg = config_bytes(vec![Digest::sha256_of(b"layer")]);
    let (_fx, err) = spool_fails(vec![
        Entry::File("l/layer.tar", b"layer".to_vec()),
        Entry::File(
            "manifest.json",
            manifest_json("gone.json", &["l/layer.tar"]),
        ),
    ]);
    assert!(err.to_string().contains("gone.json"), "{err}");
    let (_fx, err) = spool_fails(vec![
        Entry::File("c.json", cfg),
        Entry::Symlink("a/layer.tar", "../b/layer.tar"),
        Entry::Symlink("b/layer.tar", "../a/layer.tar"),
        Entry::File("manifest.json", manifest_json("c.json", &["a/layer.tar"])),
    ]);
    assert!(err.to_string().contains("symlinks"), "{err}");
}

#[test]
fn archive_config_whose_diff_ids_do_not_match_is_refused() {
    // Right count, wrong digest.
    let cfg = config_bytes(vec![Digest::sha256_of(b"some other layer")]);
    let (_fx, err) = spool_fails(vec![
        Entry::File("c.json", cfg),
        Entry::File("l/layer.tar", b"layer".to_vec()),
        Entry::File("manifest.json", manifest_json("c.json", &["l/layer.tar"])),
    ]);
    assert!(err.is_digest_mismatch(), "{err}");
    assert!(err.to_string().contains("diff_id"), "{err}");
    // Wrong count.
    let cfg = config_bytes(vec![Digest::sha256_of(b"layer"); 3]);
    let (_fx, err) = spool_fails(vec![
        Entry::File("c.json", cfg),
        Entry::File("l/layer.tar", b"layer".to_vec()),
        Entry::File("manifest.json", manifest_json("c.json", &["l/layer.tar"])),
    ]);
    assert!(err.to_string().contains("diff_ids"), "{err}");
    // A config that is not a config at all, or hides a path in a diff_id.
    for bad in [
        deep("[", 100_000),
        br#"{"rootfs":{"type":"layers","diff_ids":["sha256:../../etc"]}}"#.to_vec(),
    ] {
        let (_fx, err) = spool_fails(vec![
            Entry::File("c.json", bad),
            Entry::File("manifest.json", manifest_json("c.json", &[])),
        ]);
        assert!(err.is_invalid_input(), "{err}");
        assert!(err.to_string().contains("image config"), "{err}");
    }
}

#[test]
fn archive_manifest_json_malformed_or_oversized_is_refused() {
    for (what, bytes) in [
        ("deep", deep("[", 100_000)),
        ("object", br#"{"Config":"c.json"}"#.to_vec()),
        ("empty list", b"[]".to_vec()),
    ] {
        let (_fx, err) = spool_fails(vec![Entry::File("manifest.json", bytes)]);
        assert!(err.is_invalid_input(), "{what}: {err}");
        assert!(err.to_string().contains("manifest.json"), "{what}: {err}");
    }
    // A header claiming a huge manifest.json is refused before any of it is buffered.
    let (_fx, err) = spool_fails(vec![Entry::Lying(
        "manifest.json",
        64 << 30,
        vec![b'['; 4096],
    )]);
    assert!(err.to_string().contains("limit"), "{err}");
    // A layer whose header lies about its size is a truncated archive, not a short layer.
    let (_fx, err) = spool_fails(vec![Entry::Lying("l/layer.tar", 1 << 20, vec![0u8; 4096])]);
    assert!(err.is_corrupt(), "{err}");
}

/// A tar stream of `count` symlinks, generated as it is read (never held whole).
struct ManyLinks {
    next: usize,
    count: usize,
    block: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ManyLinks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.block.len() {
            if self.next > self.count + 1 {
                return Ok(0);
            }
            self.block = if self.next < self.count {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                h.set_path(format!("links/l{}", self.next)).expect("path");
                h.set_link_name("target").expect("link");
                h.set_cksum();
                h.as_bytes().to_vec()
            } else {
                vec![0u8; 512]
            };
            self.next += 1;
            self.pos = 0;
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn an_archive_of_endless_tiny_entries_is_cut_off() {
    let fx = Fixture::new();
    let stream = ManyLinks {
        next: 0,
        count: 150_000,
        block: Vec::new(),
        pos: 0,
    };
    let err = spool(stream, &fx.layout).expect_err("150k entries");
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("entries"), "{err}");
    fx.assert_clean();
    fx.assert_untagged();
}

/// One tar extension header (GNU long name `L`, long link `K`, PAX `x`) claiming `size` bytes,
/// followed by that many zeros, generated as read.
struct HugeExtension {
    header: Vec<u8>,
    sent: u64,
    total: u64,
}

impl HugeExtension {
    fn new(kind: tar::EntryType, size: u64) -> HugeExtension {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_path("././@LongLink").expect("path");
        h.set_cksum();
        HugeExtension {
            header: h.as_bytes().to_vec(),
            sent: 0,
            total: 512 + size,
        }
    }
}

impl std::io::Read for HugeExtension {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.total - self.sent;
        let n = (buf.len() as u64).min(left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.sent + i as u64;
            *b = if at < 512 {
                self.header[at as usize]
            } else {
                b'a'
            };
        }
        self.sent += n as u64;
        Ok(n)
    }
}

#[test]
fn a_huge_long_name_or_pax_header_is_not_buffered() {
    for kind in [
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
        tar::EntryType::XHeader,
    ] {
        let fx = Fixture::new();
        // 64 GiB: buffering it would exhaust memory long before the test ends.
        let err =
            spool(HugeExtension::new(kind, 64 << 30), &fx.layout).expect_err("a 64 GiB tar header");
        assert!(
            err.to_string().contains("exceeds"),
            "{kind:?}: {err} ({:?})",
            err.kind()
        );
        fx.assert_clean();
        fx.assert_untagged();
    }
}

#[test]
fn layout_config_whose_diff_ids_do_not_match_is_refused_when_recompressing() {
    let opts = hoist_oci::CompressOptions {
        compression: hoist_oci::Compression::Gzip,
        level: None,
        threads: 1,
    };
    let layer_bytes = b"an uncompressed layer".to_vec();
    for (what, diff_ids) in [
        ("wrong digest", vec![Digest::sha256_of(b"another layer")]),
        ("wrong count", vec![Digest::sha256_of(&layer_bytes); 2]),
    ] {
        let fx = Fixture::new();
        let layer = fx.store_desc(MediaType::OCI_LAYER, &layer_bytes);
        let cfg = fx.store_desc(MediaType::OCI_CONFIG, &config_bytes(diff_ids));
        let m = fx.store_desc(MediaType::OCI_MANIFEST, &manifest_bytes(cfg, vec![layer]));
        fx.layout.set_tag("v1", &m).expect("tag");
        let image = fx.layout.image(Some("v1"), None).expect("image");
        let err = fx
            .layout
            .compress_image(&image, &opts, |_| None)
            .expect_err(what);
        assert!(
            err.is_digest_mismatch() || err.to_string().contains("diff_ids"),
            "{what}: {err}"
        );
        // The tag still points at the original; nothing partial is left.
        assert_eq!(fx.layout.resolve(Some("v1")).expect("resolve"), {
            let mut d = m.clone();
            d.annotations
                .insert(hoist_oci::layout::REF_NAME.into(), "v1".into());
            d
        });
        assert_eq!(fx.layout.list().expect("list").len(), 1);
        fx.assert_clean();
    }
}

#[test]
fn huge_names_in_archive_metadata_are_not_echoed_whole() {
    let huge = format!("dir/{}", "a".repeat(100_000));
    let cfg = config_bytes(vec![Digest::sha256_of(b"layer")]);
    let cases = vec![
        // A config path that is not there.
        vec![Entry::File("manifest.json", manifest_json(&huge, &[]))],
        // A layer path that is not there.
        vec![
            Entry::File("c.json", cfg.clone()),
            Entry::File("manifest.json", manifest_json("c.json", &[&huge])),
        ],
        // A config path that is there but whose diff_ids disagree with the layers.
        vec![
            Entry::File(&huge, cfg.clone()),
            Entry::File("manifest.json", manifest_json(&huge, &[])),
        ],
    ];
    for entries in cases {
        let (_fx, err) = spool_fails(entries);
        let text = err.to_string();
        assert!(err.is_invalid_input(), "{}", &text[..200]);
        assert!(text.len() < 2_000, "{} bytes of error", text.len());
    }
    // A Content-Type of kilobytes given for a document without its own media type.
    let ct = format!("application/{}", "x".repeat(8 * 1024));
    let err = AnyManifest::parse(br#"{"schemaVersion":2}"#.to_vec(), Some(&ct))
        .expect_err("unknown content type");
    assert!(
        err.to_string().len() < 2_000,
        "{} bytes",
        err.to_string().len()
    );
}
