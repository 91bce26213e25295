//! Regression tests for what a downstream user's review found, each named after the bug it
//! pins: numeric header fields read as Go's `archive/tar` reads them, and errors that blame
//! the party at fault.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use common::{Tar, tmp};
// Through the re-export, as a downstream crate without its own `hoist-oci` dependency would.
use hoist_unpack::hoist_oci::{Compression, Descriptor, Layout, MediaType, RawJson};
use hoist_unpack::{ErrorKind, FlattenLayer, LayerInfo, Unpacker};

/// A header for one regular file of `size` bytes, every numeric field but the size left as
/// `tar::Header::new_gnu()` leaves it: all NUL.
fn bare_header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).expect("name");
    header.set_size(size);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Write `text` at the start of `field`, NUL after it.
fn spell(field: &mut [u8], text: &[u8]) {
    field.fill(0);
    field[..text.len()].copy_from_slice(text);
}

/// A layer of one file `etc/motd` holding `hello`, its mode, uid, gid and mtime fields
/// spelled as given.
fn layer_spelled(mode: &[u8], uid: &[u8], gid: &[u8], mtime: &[u8]) -> Vec<u8> {
    let mut header = bare_header("etc/motd", 5);
    let old = header.as_old_mut();
    spell(&mut old.mode, mode);
    spell(&mut old.uid, uid);
    spell(&mut old.gid, gid);
    spell(&mut old.mtime, mtime);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"hello"[..]).expect("append");
    builder.into_inner().expect("tar")
}

fn unpacker() -> Unpacker {
    common::unpacker(true)
}

fn flatten(layer: &[u8]) -> hoist_unpack::Result<Vec<u8>> {
    let mut out = Vec::new();
    unpacker().flatten_layers(
        &[FlattenLayer::bytes(layer, LayerInfo::default())],
        &mut out,
    )?;
    Ok(out)
}

/// (path, mode, uid, gid, mtime) of each entry of a tar.
fn headers(tar_bytes: &[u8]) -> Vec<(String, u32, u64, u64, u64)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive.entries().expect("entries");
    entries
        .map(|entry| {
            let entry = entry.expect("entry");
            let h = entry.header();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let field = |r: std::io::Result<u64>| r.expect("field");
            let mode = h.mode().expect("mode");
            (path, mode, field(h.uid()), field(h.gid()), field(h.mtime()))
        })
        .collect()
}

#[test]
fn a_new_gnu_header_without_owner_stored_by_hoist_oci_is_unpacked() {
    // What the reviewer wrote: a header never given a uid, gid or mtime, through hoist-oci's
    // layer writer. Go's archive/tar (docker, containerd) reads those empty fields as 0.
    let mut header = bare_header("etc/motd", 5);
    header.set_mode(0o640);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"hello"[..]).expect("append");
    let tar_bytes = builder.into_inner().expect("tar");

    let t = tmp();
    let layout = Layout::create(t.path().join("layout")).expect("layout");
    let mut writer = layout
        .layer_writer(Compression::Gzip, None, 1)
        .expect("layer writer");
    writer.write_all(&tar_bytes).expect("write");
    let stored = writer.finish().expect("finish").commit().expect("commit");
    let descriptor = Descriptor::new(
        MediaType::OCI_LAYER_GZIP,
        stored.digest.clone(),
        stored.size,
    );
    let blob = layout.open_blob(&descriptor).expect("open");
    let info = LayerInfo {
        digest: Some(stored.digest.clone()),
        diff_id: Some(stored.diff_id.clone()),
    };
    let root = t.path().join("rootfs");
    let stats = unpacker()
        .apply_layer(&root, blob, &info)
        .expect("docker and containerd take this layer");
    assert_eq!(stats.files, 1);
    let meta = std::fs::metadata(root.join("etc/motd")).expect("unpacked");
    assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o640, 0));

    let out = flatten(&tar_bytes).expect("flatten takes it too");
    let motd = headers(&out).into_iter().find(|h| h.0 == "etc/motd");
    assert_eq!(motd, Some(("etc/motd".into(), 0o640, 0, 0, 0)));
}

#[test]
fn numeric_fields_padded_with_spaces_and_nuls_are_read_as_go_reads_them() {
    // Padding on either side, spaces or NULs; an all-space field is 0 too.
    let layer = layer_spelled(b" 644 \0 ", b"       ", b"\0\0\0 12 \0", b"\0\0\0\0 \0 ");
    let t = tmp();
    unpacker()
        .apply_layer(t.path(), &layer[..], &LayerInfo::default())
        .expect("apply");
    let meta = std::fs::metadata(t.path().join("etc/motd")).expect("unpacked");
    assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o644, 0));
    let out = flatten(&layer).expect("flatten");
    let motd = headers(&out).into_iter().find(|h| h.0 == "etc/motd");
    assert_eq!(motd, Some(("etc/motd".into(), 0o644, 0, 0o12, 0)));
}

#[test]
fn a_device_without_numbers_is_flattened_as_device_zero_zero() {
    let mut header = bare_header("dev/null0", 0);
    header.set_entry_type(tar::EntryType::Char);
    header.set_mode(0o600);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &[][..]).expect("append");
    let layer = builder.into_inner().expect("tar");
    let out = flatten(&layer).expect("flatten");
    let mut archive = tar::Archive::new(&out[..]);
    let entries = archive.entries().expect("entries");
    let devices: Vec<_> = entries
        .map(|e| e.expect("entry"))
        .filter(|e| e.header().entry_type() == tar::EntryType::Char)
        .map(|e| (e.header().device_major(), e.header().device_minor()))
        .map(|(major, minor)| (major.expect("major"), minor.expect("minor")))
        .collect();
    assert_eq!(devices, [(Some(0), Some(0))]);
}

#[test]
fn malformed_numeric_fields_stay_corrupt() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("uid", layer_spelled(b"0000644", b"12x4", b"0", b"0")),
        ("mode", layer_spelled(b"+644", b"0", b"0", b"0")),
        ("gid", layer_spelled(b"0000644", b"0", b"1 2", b"0")),
        ("mtime", layer_spelled(b"0000644", b"0", b"0", b"9")),
    ];
    for (field, layer) in cases {
        let t = tmp();
        let err = unpacker()
            .apply_layer(t.path(), &layer[..], &LayerInfo::default())
            .expect_err(field);
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{field}: {err}");
        assert!(
            err.to_string().contains(&format!("field: {field}")),
            "{err}"
        );
        let err = flatten(&layer).expect_err(field);
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{field}: {err}");
    }
}

#[test]
fn a_truncated_layer_is_corrupt_not_a_local_io_error() {
    let mut tar = Tar::new();
    tar.file("a", &[b'a'; 100]).file("b", b"b");
    let whole = tar.finish();
    // Inside the padding after `a`'s data (the tar crate skips it: "unexpected EOF during
    // skip"), and inside `b`'s header ("failed to read entire block").
    for cut in [512 + 110, 512 + 512 + 100] {
        let layer = &whole[..cut];
        let t = tmp();
        let err = unpacker()
            .apply_layer(t.path(), layer, &LayerInfo::default())
            .expect_err("truncated");
        assert_eq!(err.kind(), ErrorKind::Corrupt, "cut at {cut}: {err}");
        assert!(err.is_bad_image(), "{err}");
        let err = flatten(layer).expect_err("truncated");
        assert_eq!(err.kind(), ErrorKind::Corrupt, "cut at {cut}: {err}");
    }
}

#[test]
fn an_image_with_fewer_diff_ids_than_layers_is_the_images_fault() {
    let t = tmp();
    let dir = t.path().join("layout");
    let spec = hoist_testkit::ImageSpec::uniform(2, 4096, Compression::Gzip, 7);
    hoist_testkit::write_oci_layout(&dir, "v1", &spec).expect("layout");
    let layout = Layout::open(&dir).expect("open");
    let mut image = layout.image(Some("v1"), None).expect("image");
    let mut config = image.config.value().clone();
    config.rootfs.diff_ids.pop();
    image.config = RawJson::from_value(config).expect("config");
    let manifest = image.descriptor.digest.clone();

    let check = |err: hoist_unpack::Error| {
        assert_eq!(err.kind(), ErrorKind::InvalidImage, "{err}");
        assert!(err.is_bad_image() && !err.is_invalid_input(), "{err}");
        assert_eq!(err.digest(), Some(&manifest));
        // The digest is the manifest's, and said to be.
        let text = err.to_string();
        assert!(text.ends_with(&format!("(manifest {manifest})")), "{text}");
    };
    let root = t.path().join("rootfs");
    check(
        unpacker()
            .unpack_image(&layout, &image, &root)
            .expect_err("mismatch"),
    );
    check(
        unpacker()
            .flatten_image(&layout, &image, std::io::sink())
            .expect_err("mismatch"),
    );
    let err = hoist_unpack::check_layer_count(image.manifest.value(), image.config.value())
        .expect_err("mismatch");
    assert!(err.is_invalid_image(), "{err}");
}

/// The size field is a numeric field too. A directory entry whose size was never set (all NUL,
/// as `tar::Header::new_gnu()` leaves it, the same writer bug the uid/gid/mtime fix covers)
/// reads as 0 in Go's archive/tar, and docker and containerd unpack it; the `tar` crate's own
/// parser refused it ("tar header size field ... cannot be read").
#[test]
fn a_directory_with_an_empty_size_field_is_read_as_go_reads_it() {
    let mut header = tar::Header::new_gnu();
    header.set_path("etc/").expect("name");
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.as_old_mut().size.fill(0);
    header.set_cksum();
    let mut layer = header.as_bytes().to_vec();
    layer.extend_from_slice(&[0u8; 1024]);
    let t = tmp();
    unpacker()
        .apply_layer(t.path(), &layer[..], &LayerInfo::default())
        .expect("Go's archive/tar reads an empty size field as 0");
    assert!(t.path().join("etc").is_dir());
}

/// Flattening reads sizes as unpacking does: the empty directory size and a file size led by
/// NULs (Go trims them; the `tar` crate read the field as empty and refused it) come out of
/// the flattened tar with the file's bytes whole.
#[test]
fn flattening_reads_an_empty_or_nul_led_size_field_as_go_reads_it() {
    let mut dir = tar::Header::new_gnu();
    dir.set_path("etc/").expect("name");
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.as_old_mut().size.fill(0);
    dir.set_cksum();
    let mut file = bare_header("etc/motd", 5);
    file.set_mode(0o644);
    spell(&mut file.as_old_mut().size, b"\0\0\0\0\0\0\0\0\x305");
    file.set_cksum();
    let mut layer = dir.as_bytes().to_vec();
    layer.extend_from_slice(file.as_bytes());
    layer.extend_from_slice(b"hello");
    layer.resize(layer.len() + 507 + 1024, 0);

    let out = flatten(&layer).expect("Go's archive/tar reads both sizes");
    let mut archive = tar::Archive::new(&out[..]);
    let mut motd = None;
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path_bytes().as_ref() == b"etc/motd" {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).expect("data");
            motd = Some(data);
        }
    }
    assert_eq!(motd.as_deref(), Some(&b"hello"[..]));

    let t = tmp();
    unpacker()
        .apply_layer(t.path(), &layer[..], &LayerInfo::default())
        .expect("unpacked");
    assert_eq!(
        std::fs::read(t.path().join("etc/motd")).expect("motd"),
        b"hello"
    );
}

/// Go's archive/tar takes a header whose checksum was summed over signed bytes (as old Sun
/// tars summed them), which differs from the unsigned sum once a name holds a byte over 0x7f,
/// and a checksum field led by NULs; the `tar` crate refused both ("archive header checksum
/// mismatch", "numeric field was not a number"). Unpacking and flattening take them now.
#[test]
fn checksums_go_accepts_are_accepted() {
    let signed_layer = || {
        let mut header = bare_header("caf\u{e9}", 5);
        header.set_mode(0o644);
        header.set_cksum();
        let bytes = header.as_bytes();
        let signed: i64 = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| match i {
                148..156 => i64::from(b' '),
                _ => i64::from(*b as i8),
            })
            .sum();
        spell(
            &mut header.as_old_mut().cksum,
            format!("{signed:06o}").as_bytes(),
        );
        header
    };
    let nul_led = || {
        let mut header = bare_header("caf\u{e9}", 5);
        header.set_mode(0o644);
        header.set_cksum();
        let sum = header.cksum().expect("a checksum");
        let field = format!("\0\0{sum:05o}\0");
        header.as_old_mut().cksum.copy_from_slice(field.as_bytes());
        header
    };
    for (what, header) in [("signed sum", signed_layer()), ("NUL-led", nul_led())] {
        let mut layer = header.as_bytes().to_vec();
        layer.extend_from_slice(b"hello");
        layer.resize(layer.len() + 507 + 1024, 0);
        assert!(
            tar::Archive::new(&layer[..])
                .entries()
                .expect("entries")
                .next()
                .expect("one")
                .is_err(),
            "{what}: the tar crate on its own refuses it"
        );
        let t = tmp();
        unpacker()
            .apply_layer(t.path(), &layer[..], &LayerInfo::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            std::fs::read(t.path().join("caf\u{e9}")).expect(what),
            b"hello"
        );
        flatten(&layer).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // A checksum that is no sum of the header is refused as before.
    let mut header = bare_header("caf\u{e9}", 5);
    header.set_cksum();
    header.as_old_mut().cksum[0] ^= 1;
    let mut layer = header.as_bytes().to_vec();
    layer.extend_from_slice(b"hello");
    layer.resize(layer.len() + 507 + 1024, 0);
    let err = unpacker()
        .apply_layer(tmp().path(), &layer[..], &LayerInfo::default())
        .expect_err("a wrong checksum");
    assert!(err.is_corrupt(), "{err:?}");
}
