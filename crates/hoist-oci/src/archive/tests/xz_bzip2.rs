//! Archives compressed whole with xz or bzip2 (`docker save | xz`), made by the real tools.
//!
//! Skips loudly when `xz` or `bzip2` is missing; fails instead when `CI=true`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;
use crate::ErrorKind;
use crate::archive::stream::{MAX_XZ_DICT, decoder};

/// The path of the command-line tool `name`, or `None` after a loud SKIP (a panic under
/// `CI=true`, where every case must run).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let package = if name == "xz" { "xz-utils" } else { name };
        let msg = format!("SKIP: {name} not installed (apt-get install {package})");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true: a case that cannot run is a failure)");
        }
        eprintln!("{msg}");
    }
    found
}

/// `bytes` through `tool args` (stdin to stdout), as a shell pipe would run it.
fn through(tool: &Path, args: &[&str], bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the compressor");
    let mut stdin = child.stdin.take().expect("stdin");
    let out = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(bytes).expect("write to the compressor"));
        child.wait_with_output().expect("compressor output")
    });
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What spooling `bytes` produced: the images and, per image, its layer digests.
fn spooled(bytes: Vec<u8>) -> (Vec<SpooledImage>, Vec<Vec<Digest>>) {
    let (_d, l) = new_layout();
    let images = spool(pipe(bytes), &l).expect("spool");
    let layers = images
        .iter()
        .map(|image| {
            let img = l.image_at(&image.manifest, None).expect("image reads back");
            img.manifest
                .value()
                .layers
                .iter()
                .map(|layer| {
                    l.verify_blob(layer).expect("spooled blob verifies");
                    layer.digest.clone()
                })
                .collect()
        })
        .collect();
    (images, layers)
}

/// Spool `packed` and check it gives exactly what the plain archive `plain` gives.
fn assert_spools_like(plain: &[u8], packed: Vec<u8>, what: &str) {
    let (want, want_layers) = spooled(plain.to_vec());
    let (got, got_layers) = spooled(packed);
    assert_eq!(got, want, "{what}: manifests, configs and tags");
    assert_eq!(got_layers, want_layers, "{what}: layer digests");
}

#[test]
fn xz_and_bzip2_archives_spool_like_the_plain_one() {
    let (Some(xz), Some(bzip2)) = (tool("xz"), tool("bzip2")) else {
        return;
    };
    let small = legacy_archive().bytes;
    let (big, _) = super::commit::big_layer_archive();
    let cases: [(&Path, &[&str], &[u8]); 6] = [
        (&xz, &["-c"], &small),
        (&bzip2, &["-c"], &small),
        // xz -9's 64 MiB dictionary is within the limit.
        (&xz, &["-c", "-9", "-T1"], &small),
        // Several blocks in one stream, and a CRC32 or SHA-256 check instead of CRC64.
        (
            &xz,
            &["-c", "-1", "--block-size=1MiB", "--check=crc32"],
            &big,
        ),
        (
            &xz,
            &["-c", "-0", "--block-size=256KiB", "--check=sha256"],
            &big,
        ),
        // 100 kB bzip2 blocks: dozens of them.
        (&bzip2, &["-c", "-1"], &big),
    ];
    for (tool, args, plain) in cases {
        let packed = through(tool, args, plain);
        assert_spools_like(plain, packed, &format!("{} {args:?}", tool.display()));
    }
}

#[test]
fn concatenated_streams_read_as_one() {
    let (Some(xz), Some(bzip2)) = (tool("xz"), tool("bzip2")) else {
        return;
    };
    let plain = legacy_archive().bytes;
    // Cut mid-entry, so neither half is a tar of its own.
    let (head, tail) = plain.split_at(plain.len() / 2 + 100);
    for (tool, padding) in [(&xz, 0usize), (&xz, 8), (&bzip2, 0)] {
        // `xz -dc` reads stream padding (NULs in fours) between streams too.
        let packed = [
            through(tool, &["-c"], head),
            vec![0; padding],
            through(tool, &["-c"], tail),
        ]
        .concat();
        assert_spools_like(&plain, packed, &format!("{}, {padding}", tool.display()));
    }
    // pbzip2's output: one stream per chunk, many of them.
    let chunks: Vec<u8> = plain
        .chunks(1000)
        .flat_map(|chunk| through(&bzip2, &["-c"], chunk))
        .collect();
    assert_spools_like(&plain, chunks, "bzip2 streams of 1000 bytes");
}

/// Whether `e` is a corrupt-or-truncated error naming the archive's `name` stream.
fn corrupt(e: &crate::Error, name: &str) -> bool {
    e.kind() == ErrorKind::Corrupt
        && e.to_string().contains(&format!(
            "the archive's {name} stream is corrupt or truncated"
        ))
}

#[test]
fn a_truncated_xz_archive_is_corrupt_and_tags_nothing() {
    let Some(xz) = tool("xz") else { return };
    let packed = through(&xz, &["-c"], &legacy_archive().bytes);
    // Cut inside the compressed data, then after all of it but before the index and footer
    // (the tar inside is whole: only the xz stream's own end is missing).
    for cut in [packed.len() / 2, packed.len() - 12, 8] {
        assert_clean_failure(packed[..cut].to_vec(), |e| corrupt(e, "xz"));
    }
    // A flipped byte in the compressed data fails the block's check, if not the decoder.
    let mut flipped = packed.clone();
    flipped[packed.len() / 2] ^= 0x55;
    assert_clean_failure(flipped, |e| corrupt(e, "xz"));
    // Garbage after the last stream (not stream padding) is no part of an xz file.
    let trailing = [&packed[..], b"garbage!"].concat();
    assert_clean_failure(trailing, |e| corrupt(e, "xz"));
}

#[test]
fn a_corrupt_or_truncated_bzip2_archive_is_corrupt() {
    let Some(bzip2) = tool("bzip2") else { return };
    let packed = through(&bzip2, &["-c"], &legacy_archive().bytes);
    // The block magic (`1AY&SY` at byte 4), the block CRC (bytes 10..14), the data.
    for at in [6, 11, packed.len() / 2] {
        let mut bad = packed.clone();
        bad[at] ^= 0x55;
        assert_clean_failure(bad, |e| corrupt(e, "bzip2"));
    }
    let mut bad_magic = packed.clone();
    bad_magic[6] ^= 0x55;
    assert_clean_failure(bad_magic, |e| corrupt(e, "bzip2"));
    for cut in [packed.len() / 2, packed.len() - 4, 6] {
        assert_clean_failure(packed[..cut].to_vec(), |e| corrupt(e, "bzip2"));
    }
}

/// The CRC-32 (IEEE, as xz uses it) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `packed`, a one-stream xz file, with its first block header's LZMA2 dictionary property set
/// to `prop` (dictionary `(2 | prop & 1) << (prop / 2 + 11)` bytes; 40 is 4 GiB - 1) and the
/// header's CRC-32 fixed up.
fn with_dict_prop(packed: &[u8], prop: u8) -> Vec<u8> {
    let mut out = packed.to_vec();
    let start = 12; // after the stream header
    let len = (usize::from(out[start]) + 1) * 4;
    let flags = out[start + 1];
    let mut at = start + 2;
    let skip_varint = |at: &mut usize| {
        while out[*at] & 0x80 != 0 {
            *at += 1;
        }
        *at += 1;
    };
    for present in [0x40, 0x80] {
        if flags & present != 0 {
            skip_varint(&mut at); // compressed / uncompressed size
        }
    }
    let mut dict_at = None;
    for _ in 0..=(flags & 3) {
        let id = out[at];
        skip_varint(&mut at);
        let props = usize::from(out[at]);
        skip_varint(&mut at);
        if id == 0x21 {
            assert_eq!(props, 1, "LZMA2 has one property byte");
            dict_at = Some(at);
        }
        at += props;
    }
    let dict_at = dict_at.expect("an LZMA2 filter");
    out[dict_at] = prop;
    let crc_at = start + len - 4;
    let crc = crc32(&out[start..crc_at]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn an_xz_dictionary_over_the_limit_is_refused_before_decoding() {
    let Some(xz) = tool("xz") else { return };
    let plain = legacy_archive().bytes;
    // xz itself would allocate a huge dictionary to write one: a 1 MiB one is patched instead.
    let packed = through(&xz, &["-c", "-1"], &plain);
    // xz -1's own 1 MiB (property 16): the patch rewrites the header as it was.
    assert_eq!(with_dict_prop(&packed, 16), packed);
    // 128 MiB: the limit, read (the window grows with what is decoded, not up front).
    assert_eq!(MAX_XZ_DICT, 2 << 26);
    assert_spools_like(&plain, with_dict_prop(&packed, 30), "a 128 MiB dictionary");
    // 192 MiB and 4 GiB - 1: refused, on the first read, before any byte is decoded.
    for prop in [31, 40] {
        let refused = |e: &crate::Error| {
            e.kind() == ErrorKind::Unsupported
                && e.to_string().contains("asks for a dictionary over 128 MiB")
        };
        let big = with_dict_prop(&packed, prop);
        let mut reader = decoder(pipe(big.clone())).expect("xz sniffed");
        let err = reader.read(&mut [0u8; 512]).expect_err("refused");
        let err = crate::Error::io("reading", err);
        assert!(refused(&err), "dictionary property {prop}: {err:?}");
        // And it stays refused.
        assert!(reader.read(&mut [0u8; 512]).is_err());
        assert_clean_failure(big, refused);
    }
}

mod props {
    use std::sync::OnceLock;

    use super::*;
    use proptest::prelude::*;

    /// The legacy archive through xz and through bzip2 (`None` without the tools).
    fn packed() -> Option<&'static (Vec<u8>, Vec<u8>)> {
        static PACKED: OnceLock<Option<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
        PACKED
            .get_or_init(|| {
                let (xz, bzip2) = (tool("xz")?, tool("bzip2")?);
                let plain = legacy_archive().bytes;
                Some((
                    through(&xz, &["-c"], &plain),
                    through(&bzip2, &["-c"], &plain),
                ))
            })
            .as_ref()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Damaged xz and bzip2 archives give a clean error (or, where the damage missed every
        /// check, the images): never a panic, a temp file or a tag without its image.
        #[test]
        fn damaged_compressed_archives_never_panic(
            bzip in any::<bool>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let Some((xz, bz)) = packed() else { return Ok(()) };
            let mut bytes = if bzip { bz.clone() } else { xz.clone() };
            for (at, x) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let (_d, l) = new_layout();
            let result = spool(pipe(bytes), &l);
            prop_assert!(blobs(&l).iter().all(|p| p.starts_with("sha256/")), "{:?}", blobs(&l));
            if result.is_err() {
                prop_assert!(l.list().expect("list").is_empty());
            }
        }
    }
}

/// A legacy archive of one image whose `layer.tar` is `packed` (the compression of `plain`).
fn archive_with_layer(plain: &[u8], packed: Vec<u8>) -> (Vec<u8>, Digest) {
    let config = config_for(vec![Digest::sha256_of(plain)], "amd64");
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["app:1"],"Layers":["1111/layer.tar"]}}]"#,
        config.digest().hex()
    );
    let bytes = archive(vec![
        Item::File("1111/layer.tar", packed),
        Item::File(
            &format!("{}.json", config.digest().hex()),
            config.bytes().to_vec(),
        ),
        Item::File("manifest.json", manifest.into_bytes()),
    ]);
    (bytes, config.digest().clone())
}

/// Regression: an xz or bzip2 `layer.tar` (which `docker load` reads) was stored as it came and
/// then failed with a diff_id mismatch; it is decompressed on its way in.
#[test]
fn xz_and_bzip2_layers_are_decompressed() {
    let (Some(xz), Some(bzip2)) = (tool("xz"), tool("bzip2")) else {
        return;
    };
    let plain = tar_of(&[("etc/os-release", &[7u8; 3000][..])]);
    let diff_id = Digest::sha256_of(&plain);
    for tool in [&xz, &bzip2] {
        let (bytes, config) = archive_with_layer(&plain, through(tool, &["-c"], &plain));
        // Stored as a plain tar, its digest the diff_id.
        let (_d, l) = new_layout();
        let images = spool(pipe(bytes.clone()), &l).expect("spool");
        assert_eq!(images[0].config.digest, config);
        let image = l.image(Some("app:1"), None).expect("image");
        let layer = &image.manifest.value().layers[0];
        assert_eq!(layer.digest, diff_id, "{}", tool.display());
        assert_eq!(layer.media_type, MediaType::OCI_LAYER);
        l.verify_blob(layer).expect("verifies");
        // Or compressed as asked, in the same pass.
        let (_d, l) = new_layout();
        let options = SpoolOptions::new().compress_layers(Compression::Gzip, None, 1);
        spool_with(pipe(bytes), &l, options).expect("spool compressed");
        let image = l.image(Some("app:1"), None).expect("image");
        let layer = &image.manifest.value().layers[0];
        assert_eq!(layer.media_type, MediaType::OCI_LAYER_GZIP);
        l.verify_blob(layer).expect("verifies");
        let mut unpacked = Vec::new();
        crate::codec::decoder(l.open_blob(layer).expect("open"))
            .expect("decoder")
            .read_to_end(&mut unpacked)
            .expect("gunzip");
        assert_eq!(unpacked, plain);
    }
}

#[test]
fn a_corrupt_xz_layer_is_named() {
    let Some(xz) = tool("xz") else {
        return;
    };
    let plain = tar_of(&[("etc/os-release", &[7u8; 3000][..])]);
    let mut packed = through(&xz, &["-c"], &plain);
    let mid = packed.len() / 2;
    packed[mid] ^= 0x55;
    let (bytes, _) = archive_with_layer(&plain, packed);
    let (_d, l) = new_layout();
    let err = spool(pipe(bytes), &l).expect_err("corrupt layer");
    assert!(err.is_corrupt(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("xz-compressed layer \"1111/layer.tar\""),
        "{text}"
    );
}

/// An OCI archive (Docker >= 25's `docker save`: `blobs/sha256/<hex>`, `index.json`,
/// `oci-layout`, and `manifest.json` unless `with_manifest_json` is false) of one image tagged
/// `tool:1`, whose one layer is `packed` (the archive's manifest calls it a plain tar, as the
/// tool that made it may) and whose config names `diff_id`; its manifest's descriptor too.
/// `carried` is what the archive holds under the layer's name (`packed`, unless a test lies).
fn oci_archive_with_layer(
    packed: &[u8],
    carried: &[u8],
    diff_id: Digest,
    with_manifest_json: bool,
) -> (Vec<u8>, Descriptor) {
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let config = config_for(vec![diff_id], "amd64");
    let layer = Descriptor::new(
        MediaType::OCI_LAYER,
        Digest::sha256_of(packed),
        packed.len() as u64,
    );
    let manifest = crate::RawJson::from_value(crate::ImageManifest::new(
        config.descriptor(MediaType::OCI_CONFIG),
        vec![layer.clone()],
    ))
    .expect("manifest");
    let desc = manifest.descriptor(MediaType::OCI_MANIFEST);
    let mut listed = desc.clone();
    listed
        .annotations
        .insert(crate::layout::REF_NAME.into(), "tool:1".into());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        serde_json::to_string(&listed).expect("listed")
    );
    let (layer_path, config_path) = (path(&layer.digest), path(config.digest()));
    let manifest_json = format!(
        r#"[{{"Config":"{config_path}","RepoTags":["tool:1"],"Layers":["{layer_path}"]}}]"#
    );
    let manifest_path = path(&desc.digest);
    let mut items = vec![
        Item::File(&layer_path, carried.to_vec()),
        Item::File(&config_path, config.bytes().to_vec()),
        Item::File(&manifest_path, manifest.bytes().to_vec()),
        Item::File("index.json", index.into_bytes()),
        Item::File("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}".to_vec()),
    ];
    if with_manifest_json {
        items.push(Item::File("manifest.json", manifest_json.into_bytes()));
    }
    (archive(items), desc)
}

/// The one layer of the image tagged `tool:1`, checked to verify and to decompress to `plain`.
fn tagged_layer(l: &Layout, plain: &[u8]) -> Descriptor {
    let image = l.image(Some("tool:1"), None).expect("tagged image");
    let layer = image.manifest.value().layers[0].clone();
    l.verify_blob(&layer).expect("verifies");
    let mut unpacked = Vec::new();
    crate::codec::decoder(l.open_blob(&layer).expect("open"))
        .expect("decoder")
        .read_to_end(&mut unpacked)
        .expect("decompress");
    assert_eq!(unpacked, plain);
    layer
}

/// Regression: a `blobs/sha256/<hex>` layer in xz or bzip2 was stored as it came, under a
/// manifest calling it a tar (an index-only archive), or failed the config's diff_id (with
/// `manifest.json`); it is decompressed, as a legacy `layer.tar` is.
#[test]
fn named_xz_and_bzip2_layers_are_decompressed() {
    let (Some(xz), Some(bzip2)) = (tool("xz"), tool("bzip2")) else {
        return;
    };
    let plain = tar_of(&[("etc/os-release", &[7u8; 3000][..])]);
    let diff_id = Digest::sha256_of(&plain);
    for (tool, with_manifest_json) in [(&xz, true), (&bzip2, true), (&xz, false), (&bzip2, false)] {
        let what = format!("{}, manifest.json {with_manifest_json}", tool.display());
        let packed = through(tool, &["-c"], &plain);
        let (bytes, desc) =
            oci_archive_with_layer(&packed, &packed, diff_id.clone(), with_manifest_json);
        // Stored as a plain tar, its digest the diff_id, under a manifest naming it so.
        let (_d, l) = new_layout();
        let images = spool(pipe(bytes.clone()), &l).expect(&what);
        assert_ne!(images[0].manifest.digest, desc.digest, "{what}");
        let layer = tagged_layer(&l, &plain);
        assert_eq!(layer.digest, diff_id, "{what}");
        assert_eq!(layer.media_type, MediaType::OCI_LAYER, "{what}");
        assert!(!l.blob_path(&Digest::sha256_of(&packed)).exists(), "{what}");
        // Or compressed as asked, in the same pass.
        let (_d, l) = new_layout();
        let options = SpoolOptions::new().compress_layers(Compression::Gzip, None, 1);
        spool_with(pipe(bytes), &l, options).expect(&what);
        let layer = tagged_layer(&l, &plain);
        assert_eq!(layer.media_type, MediaType::OCI_LAYER_GZIP, "{what}");
    }
}

/// A named xz layer is checked against its name before the decompressed tar is put in place,
/// and against the config's diff_id.
#[test]
fn a_named_xz_layer_is_checked_against_its_name_and_diff_id() {
    let Some(xz) = tool("xz") else { return };
    let plain = tar_of(&[("etc/os-release", &[7u8; 3000][..])]);
    let diff_id = Digest::sha256_of(&plain);
    let packed = through(&xz, &["-c"], &plain);
    // Another xz stream of the same tar in place of the one the archive names.
    let other = through(&xz, &["-c", "-1", "--check=crc32"], &plain);
    assert_ne!(other, packed);
    for with_manifest_json in [true, false] {
        let (bytes, _) =
            oci_archive_with_layer(&packed, &other, diff_id.clone(), with_manifest_json);
        let (_d, l) = new_layout();
        let err = spool(pipe(bytes), &l).expect_err("not what its name says");
        assert!(err.is_digest_mismatch(), "{err}");
        let named = format!("blobs/sha256/{}", Digest::sha256_of(&packed).hex());
        assert!(err.to_string().contains(&named), "{err}");
        assert!(
            !l.blob_path(&diff_id).exists(),
            "stored before it was checked"
        );
        assert!(
            blobs(&l).iter().all(|p| p.starts_with("sha256/")),
            "{:?}",
            blobs(&l)
        );
        assert!(l.tags().expect("tags").is_empty());
        // A config naming another diff_id.
        let lying = Digest::sha256_of(b"another layer");
        let (bytes, _) = oci_archive_with_layer(&packed, &packed, lying, with_manifest_json);
        let (_d, l) = new_layout();
        let err = spool(pipe(bytes), &l).expect_err("config lies");
        assert!(err.is_digest_mismatch(), "{err}");
        assert!(err.to_string().contains("diff_id"), "{err}");
        assert!(l.tags().expect("tags").is_empty());
    }
}

/// An artifact (a manifest that is no container image) of an index-only archive naming an xz
/// blob is refused, clearly: its blob would be decompressed, and its manifest names the xz.
#[test]
fn an_artifact_naming_an_xz_blob_is_refused() {
    let Some(xz) = tool("xz") else { return };
    let packed = through(&xz, &["-c"], &[5u8; 3000]);
    let blob = Descriptor::new(
        "application/vnd.example.data.v1+xz",
        Digest::sha256_of(&packed),
        packed.len() as u64,
    );
    let config = Descriptor::new(
        "application/vnd.example.config.v1+json",
        Digest::sha256_of(b"{}"),
        2,
    );
    let manifest = crate::RawJson::from_value(crate::ImageManifest::new(
        config.clone(),
        vec![blob.clone()],
    ))
    .expect("manifest");
    let mut listed = manifest.descriptor(MediaType::OCI_MANIFEST);
    listed
        .annotations
        .insert(crate::layout::REF_NAME.into(), "data:1".into());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        serde_json::to_string(&listed).expect("listed")
    );
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let paths = [
        path(&blob.digest),
        path(&config.digest),
        path(&listed.digest),
    ];
    let bytes = archive(vec![
        Item::File(&paths[0], packed),
        Item::File(&paths[1], b"{}".to_vec()),
        Item::File(&paths[2], manifest.bytes().to_vec()),
        Item::File("index.json", index.into_bytes()),
        Item::File("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}".to_vec()),
    ]);
    let (_d, l) = new_layout();
    let err = spool(pipe(bytes), &l).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("xz-compressed blob"), "{err}");
    assert!(l.tags().expect("tags").is_empty());
}
