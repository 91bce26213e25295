//! The hostile-layer corpus (shared with the end-to-end CLI tests through
//! `hoist_testkit::hostile`): every item of the security list, each checked to change
//! nothing outside the root, and either to fail naming the hostile entry or to stay confined.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::path::Path;

use common::{Tar, snapshot};
use hoist_testkit::hostile::{Case, Expect, case, corpus, one, plant_outside};
use hoist_unpack::{Error, LayerInfo, Limits, Unpacker};

/// The shared corpus plus the cases that need this crate's own dependencies.
fn cases() -> Vec<Case> {
    let mut cases = corpus();
    cases.push(case(
        "trusted.overlay xattr never written",
        |_| {
            one(|t| {
                t.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
                    .dir("d/");
            })
        },
        Expect::Ok(|root, _| {
            let mut buf = [0u8; 16];
            assert!(
                rustix::fs::lgetxattr(root.join("d"), "trusted.overlay.opaque", &mut buf[..])
                    .is_err()
            );
        }),
    ));
    cases
}

fn run_case(case: &Case, rootless: bool) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outside = tmp.path().join("outside");
    plant_outside(&outside).map_err(|e| e.to_string())?;
    let root = tmp.path().join("root");
    let before = snapshot(tmp.path(), &["root"]);
    let unpacker = Unpacker::builder()
        .rootless(rootless)
        .limits({
            let mut limits = Limits::new();
            limits.max_bytes = case.max_bytes;
            limits.max_entries = case.max_entries;
            limits
        })
        .build()
        .map_err(|e| e.to_string())?;
    let layers = (case.layers)(outside.to_str().expect("utf-8 tmp"));
    let mut result: Result<(), Error> = Ok(());
    for layer in &layers {
        if let Err(e) = unpacker.apply_layer(&root, &layer[..], &LayerInfo::default()) {
            result = Err(e);
            break;
        }
    }
    let after = snapshot(tmp.path(), &["root"]);
    if before != after {
        return Err(format!(
            "outside the root changed:\nbefore {before:?}\nafter  {after:?}"
        ));
    }
    match (&case.expect, result) {
        (Expect::Err(entry), Err(e)) => {
            let named = e
                .entry()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !(e.is_invalid_layer() && named.starts_with(entry)) {
                return Err(format!("wrong error (want entry {entry:?}): {e:?}"));
            }
            if !e.to_string().contains(&named) {
                return Err(format!("message does not name the entry: {e}"));
            }
        }
        (Expect::Limit(entry), Err(e)) => {
            if !(e.is_limit_exceeded() && e.entry() == Some(Path::new(entry))) {
                return Err(format!("wrong error (want limit at {entry:?}): {e:?}"));
            }
            if root.join(entry).exists() {
                return Err("the entry that hit the limit was left on disk".into());
            }
        }
        (Expect::Ok(check), Ok(())) => check(&root, &outside),
        (_, other) => return Err(format!("unexpected outcome: {other:?}")),
    }
    Ok(())
}

#[test]
fn hostile_corpus() {
    const CHILD: &str = "HOIST_UNPACK_HOSTILE_AS_NOBODY";
    let cases = cases();
    assert!(cases.len() >= 30, "corpus has {} cases", cases.len());
    let privileged = rustix::process::geteuid().is_root();
    if privileged && std::env::var_os(CHILD).is_none() {
        // The same corpus as an unprivileged user (rootless unpacking without root's override).
        hoist_testkit::as_nobody::rerun_test("hostile_corpus", [(CHILD, "1")]);
    }
    let mut failures = Vec::new();
    for case in &cases {
        for rootless in [true, false] {
            if !rootless && !privileged {
                continue;
            }
            if let Err(why) = run_case(case, rootless) {
                failures.push(format!("{} (rootless={rootless}): {why}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Metadata the tar parser would hold in memory (GNU long names/links, PAX records) is refused
/// when oversized, before it is buffered; ordinary large files are not affected.
#[test]
fn oversized_tar_metadata_is_refused() {
    let huge = "a/".repeat(700 * 1024) + "f";
    let long_name = Tar::new().file(&huge, b"x").finish();
    let long_link = Tar::new().symlink("l", &huge).finish();
    let big_pax = Tar::new()
        .pax(&[("comment", vec![b'c'; 2 * 1024 * 1024].as_slice())])
        .file("f", b"x")
        .finish();
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    for (what, layer) in [
        ("long name", long_name),
        ("long link", long_link),
        ("pax", big_pax),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = unpacker
            .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
            .expect_err(what);
        assert!(err.is_invalid_layer(), "{what}: {err:?}");
        assert!(err.to_string().contains("exceeds"), "{what}: {err}");
    }
    // A PAX size override and a big plain file keep the guard in step with the parser.
    let tmp = tempfile::tempdir().expect("tempdir");
    let big = vec![9u8; 3 * 1024 * 1024 + 17];
    let mut tar = Tar::new();
    tar.pax(&[("size", big.len().to_string().as_bytes())]);
    tar.header(b"big", b'0', 0, 0o644, b"", (0, 0));
    let mut layer = tar.finish();
    // Splice the data in after the header (the header's own size field says 0).
    let at = layer.len() - 1024;
    let mut data = big.clone();
    data.resize(big.len().div_ceil(512) * 512, 0);
    layer.splice(at..at, data);
    let mut tail = Tar::new();
    tail.file(&"n".repeat(200), b"after");
    let tail = tail.finish();
    layer.truncate(layer.len() - 1024);
    layer.extend_from_slice(&tail);
    unpacker
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("legit layer");
    assert_eq!(std::fs::read(tmp.path().join("big")).expect("big"), big);
    assert_eq!(
        std::fs::read(tmp.path().join("n".repeat(200))).expect("long"),
        b"after"
    );
}

/// The largest GNU long name/link or PAX header the unpacker accepts (`guard::MAX_META`).
const META_LIMIT: u64 = 1024 * 1024;

/// Which magic a hand-built header carries; the tar parser only buffers `L`/`K`/`x` entries
/// of GNU or ustar headers.
#[derive(Debug, Clone, Copy)]
enum Magic {
    Ustar,
    Gnu,
    V7,
}

/// A tar size field in plain octal.
fn octal12(value: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[..11].copy_from_slice(format!("{value:011o}").as_bytes());
    field
}

/// One header block built by hand, `size` written verbatim into the size field, `tweak`
/// applied before the checksum (which the parser verifies) is computed.
fn raw_header(
    name: &str,
    kind: u8,
    size: &[u8; 12],
    magic: Magic,
    tweak: impl FnOnce(&mut [u8; 512]),
) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(size);
    h[136..148].copy_from_slice(b"13200000000\0");
    h[156] = kind;
    match magic {
        Magic::Ustar => {
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
        }
        Magic::Gnu => {
            h[257..263].copy_from_slice(b"ustar ");
            h[263..265].copy_from_slice(b" \0");
        }
        Magic::V7 => {}
    }
    tweak(&mut h);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h.to_vec()
}

/// `data` padded to whole blocks.
fn blocks(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// A PAX header (ustar) carrying these complete records.
fn raw_pax(records: &[u8]) -> Vec<u8> {
    let mut out = raw_header(
        "PaxHeaders/x",
        b'x',
        &octal12(records.len() as u64),
        Magic::Ustar,
        |_| {},
    );
    out.extend(blocks(records));
    out
}

/// A GNU long name one byte over the limit whose header says so with `size`, the entry it
/// names, and the end of the archive.
fn oversized_long_name(size: &[u8; 12]) -> Vec<u8> {
    let mut out = raw_header("././@LongLink", b'L', size, Magic::Gnu, |_| {});
    out.extend(blocks(&vec![b'a'; META_LIMIT as usize + 1]));
    out.extend(raw_header("after", b'0', &octal12(0), Magic::Ustar, |_| {}));
    out.extend([0u8; 1024]);
    out
}

/// A GNU sparse header with no data and no blocks; `is_extended` goes in byte 482.
fn empty_sparse(is_extended: u8) -> Vec<u8> {
    raw_header("sparse", b'S', &octal12(0), Magic::Gnu, |h| {
        h[482] = is_extended;
        h[483..495].copy_from_slice(&octal12(0));
    })
}

/// Headers the tar parser reads one way and a guard with its own size rules another: each is
/// followed by a GNU long name over the limit, which must be refused as such (before the parser
/// buffers it) rather than read whole into memory and fail later as an over-long file name.
/// Sizes led by NULs, which the `tar` crate cannot read and Go reads, are among them: the guard
/// hands the parser the size Go reads.
#[test]
fn long_names_behind_sizes_read_differently_by_the_guard_are_refused() {
    let nul_led = *b"\0\0\0\0\0\0\x002000\0"; // 1024, after NULs: Go skips them
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut l = raw_header("nul", b'0', &nul_led, Magic::Ustar, |_| {});
    l.extend([1u8; 1024]);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("file size led by NULs", l));

    let mut l = raw_header("empty", b'0', &[0; 12], Magic::Ustar, |_| {});
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("empty file size", l));

    // The parser takes the first `size` record; a guard taking the last thinks the file is
    // empty and its all-zero data the end of the archive.
    let mut l = raw_pax(b"13 size=1024\n10 size=0\n");
    l.extend(raw_header("pax", b'0', &octal12(0), Magic::Ustar, |_| {}));
    l.extend([0u8; 1024]);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("two PAX size records", l));

    cases.push((
        "long name size led by NULs",
        oversized_long_name(b"\0\0\0\x004000001\0"),
    ));

    // A PAX global header ends what a PAX `size` record applies to.
    let mut l = raw_pax(b"10 size=0\n");
    l.extend(raw_header(
        "global",
        b'g',
        &octal12(0),
        Magic::Ustar,
        |_| {},
    ));
    l.extend(raw_header("g", b'0', &octal12(1024), Magic::Ustar, |_| {}));
    l.extend([0u8; 1024]);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("PAX size record then a global header", l));

    // Without the ustar magic an `x` entry is an ordinary (here: ignored) entry to the parser.
    let mut l = raw_header(".wh..wh.meta", b'x', &octal12(10), Magic::V7, |_| {});
    l.extend(blocks(b"10 size=0\n"));
    l.extend(raw_header("v7", b'0', &octal12(1024), Magic::Ustar, |_| {}));
    l.extend([0u8; 1024]);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("PAX-typed entry without ustar magic", l));

    // Sparse extension blocks follow only while the "extended" byte is exactly 1.
    let mut l = empty_sparse(2);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("sparse header with extended byte 2", l));
    let mut l = empty_sparse(1);
    let mut ext = [0u8; 512];
    ext[504] = 2;
    l.extend(ext);
    l.extend(oversized_long_name(&octal12(META_LIMIT + 1)));
    cases.push(("sparse extension block with extended byte 2", l));

    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    let mut failures = Vec::new();
    for (what, layer) in &cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        match unpacker.apply_layer(tmp.path(), &layer[..], &LayerInfo::default()) {
            Err(e)
                if e.is_invalid_layer()
                    && e.to_string()
                        .contains(&format!("exceeds the {META_LIMIT}-byte limit")) => {}
            other => failures.push(format!("{what}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Sizes unpack as Go's `archive/tar` reads them (padded with NULs or spaces on either side, led
/// by NULs, empty as 0, base-256), whatever the `tar` crate would make of them; a size Go
/// refuses is refused up front, also where the crate would read one (tab padding, a sign,
/// base-256 wider than 64 bits, of which the crate reads the last 8 bytes).
#[test]
fn tar_sizes_unpack_as_go_reads_them_and_unreadable_ones_are_refused() {
    let mut l = raw_header(
        "nul",
        b'0',
        b"\0\0\0\0\0\0\0\0\0\x305\0",
        Magic::Ustar,
        |_| {},
    );
    l.extend(blocks(b"hello"));
    l.extend(raw_header(
        "space",
        b'0',
        b"   5        ",
        Magic::Ustar,
        |_| {},
    ));
    l.extend(blocks(b"space"));
    l.extend(raw_header("empty", b'0', &[0; 12], Magic::Ustar, |_| {}));
    let b256 = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    l.extend(raw_header("b256", b'0', &b256, Magic::Gnu, |_| {}));
    l.extend(blocks(b"world"));
    l.extend(raw_pax(b"10 size=3\n10 size=1\n"));
    l.extend(raw_header("pax", b'0', &octal12(0), Magic::Ustar, |_| {}));
    l.extend(blocks(b"abc"));
    let mut tail = Tar::new();
    tail.file(&"n".repeat(200), b"after");
    l.extend(tail.finish());
    let tmp = tempfile::tempdir().expect("tempdir");
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    unpacker
        .apply_layer(tmp.path(), &l[..], &LayerInfo::default())
        .expect("sizes Go reads");
    let read = |name: &str| std::fs::read(tmp.path().join(name)).expect(name);
    assert_eq!(read("nul"), b"hello");
    assert_eq!(read("space"), b"space");
    assert_eq!(read("empty"), b"");
    assert_eq!(read("b256"), b"world");
    assert_eq!(read("pax"), b"abc");
    assert_eq!(read(&"n".repeat(200)), b"after");

    for size in [
        *b"12x4\0\0\0\0\0\0\0\0",
        *b"\t0000000005\t",
        *b"+0000000005\0",
        [0x80, 0x7f, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 5],
    ] {
        let mut l = raw_header("bad", b'0', &size, Magic::Ustar, |_| {});
        l.extend([0u8; 1024]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = unpacker
            .apply_layer(tmp.path(), &l[..], &LayerInfo::default())
            .expect_err("unreadable size");
        assert!(err.is_invalid_layer(), "{size:?}: {err:?}");
        assert_eq!(err.entry(), Some(Path::new("bad")));
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }
}

/// Peak resident memory of this process, in KiB.
/// Run `test` again in a child process with `child_var` set, and return the peak memory it
/// reports (a line `peak-rss-kib=N`): a child's peak is its own layer's alone.
fn child_peak_kib(test: &str, child_var: &str) -> u64 {
    let stdout = hoist_testkit::rerun_test(test, [(child_var, "1")]);
    stdout
        .lines()
        .find_map(|l| l.split_once("peak-rss-kib=").map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .expect("the child reports its peak memory")
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// One deep path (512 components of 255-byte names) written through 30 symlink aliases of one
/// directory: what the applier remembers of the paths it wrote must not grow with the aliases
/// (it used to keep every ancestor of every alias path whole: about 33 MB per entry, 1 GB here).
/// Run in a child process so its peak memory is this layer's alone.
#[test]
fn paths_written_through_symlink_aliases_keep_memory_bounded() {
    const CHILD: &str = "HOIST_UNPACK_ALIAS_MEMORY_CHILD";
    const ALIASES: usize = 30;
    let name = "c".repeat(255);
    let deep = vec![name.as_str(); 510].join("/") + "/f";
    if std::env::var_os(CHILD).is_none() {
        let peak = child_peak_kib(
            "paths_written_through_symlink_aliases_keep_memory_bounded",
            CHILD,
        );
        assert!(
            peak < 192 * 1024,
            "unpacking {ALIASES} aliases of one path peaked at {peak} KiB"
        );
        eprintln!("peak memory of the child: {peak} KiB");
        return;
    }
    let mut tar = Tar::new();
    tar.dir("d/");
    for i in 0..ALIASES {
        tar.symlink(&format!("s{i}"), "d")
            .file(&format!("s{i}/{deep}"), format!("{i}").as_bytes());
    }
    let layer = tar.finish();
    let tmp = tempfile::tempdir().expect("tempdir");
    let stats = Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("apply");
    assert_eq!(stats.files, ALIASES as u64);
    // Too long a path for the kernel to take whole: open it one component at a time.
    let mut dir = rustix::fs::open(
        tmp.path().join("d"),
        rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .expect("d");
    for _ in 0..510 {
        dir = rustix::fs::openat(
            &dir,
            name.as_str(),
            rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .expect("a directory of the deep path");
    }
    let file = rustix::fs::openat(
        &dir,
        "f",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .expect("the file");
    let mut content = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(file), &mut content).expect("read");
    assert_eq!(
        content,
        format!("{}", ALIASES - 1),
        "the last alias wrote last"
    );
    println!("peak-rss-kib={}", peak_rss_kib());
}

/// Forty symlinks whose targets walk 340 directories down and back up with `..` before naming
/// the next link: resolving a parent through them used to re-open the path from the root at
/// every `..` (minutes per entry). Each `..` is now one step and a resolution may take at most
/// 4096 steps, so the layer is refused at the first entry that resolves through the chain.
#[test]
fn symlink_chains_full_of_dotdot_are_refused() {
    const DEPTH: usize = 340;
    let down_up = "x/".repeat(DEPTH) + &"../".repeat(DEPTH);
    let mut tar = Tar::new();
    tar.dir(&"x/".repeat(DEPTH)).dir("t/");
    for hop in 0..40 {
        let next = if hop == 39 {
            "t".to_string()
        } else {
            format!("l{}", hop + 1)
        };
        tar.symlink(&format!("l{hop}"), &format!("{down_up}{next}"));
    }
    for i in 0..4 {
        tar.file(&format!("l0/f{i}"), b"x");
    }
    let layer = tar.finish();
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect_err("refused");
    assert!(err.is_invalid_layer(), "{err:?}");
    assert_eq!(err.entry(), Some(Path::new("l0/f0")));
    assert!(err.to_string().contains("4096 path components"), "{err}");
    // One long walk down and back up, a single hop, is ordinary work and still resolves.
    let mut tar = Tar::new();
    tar.dir(&"x/".repeat(DEPTH))
        .dir("t/")
        .symlink("up", &format!("{down_up}t"))
        .file("up/f", b"y");
    let layer = tar.finish();
    let tmp = tempfile::tempdir().expect("tempdir");
    Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("one deep hop");
    assert_eq!(std::fs::read(tmp.path().join("t/f")).expect("t/f"), b"y");
}

/// A reader that hands out one byte per call.
struct OneByte<'a>(&'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// A compressed layer from a reader that returns one byte at a time is still detected as
/// compressed (the magic bytes are read until there are enough of them).
#[test]
fn compression_is_detected_from_a_reader_giving_one_byte_at_a_time() {
    let tar = Tar::new().file("etc/motd", b"hello").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(&tar[..], 3).expect("zstd");
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    for (blob, compression) in [
        (gz, hoist_oci::Compression::Gzip),
        (zst, hoist_oci::Compression::Zstd),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let info = LayerInfo {
            digest: Some(hoist_oci::Digest::sha256_of(&blob)),
            diff_id: Some(hoist_oci::Digest::sha256_of(&tar)),
        };
        let stats = unpacker
            .apply_layer(tmp.path(), OneByte(&blob), &info)
            .unwrap_or_else(|e| panic!("{compression}: {e}"));
        assert_eq!(stats.compression, Some(compression));
        assert_eq!(
            std::fs::read(tmp.path().join("etc/motd")).expect("motd"),
            b"hello"
        );
    }
}

/// One directory entry listed thousands of times through a chain of symlinks that leads 510
/// long names deep: what the applier keeps until the layer ends (the modes to set) must not
/// grow with the length of each listing's physical path (it used to keep each whole: about
/// 130 KB a listing, 520 MB here from a 2.3 MB tar). Run in a child process so its peak
/// memory is this layer's alone.
#[test]
fn directories_listed_through_deep_symlinks_keep_memory_bounded() {
    const CHILD: &str = "HOIST_UNPACK_DIRS_MEMORY_CHILD";
    const LISTINGS: usize = 4000;
    if std::env::var_os(CHILD).is_none() {
        let peak = child_peak_kib(
            "directories_listed_through_deep_symlinks_keep_memory_bounded",
            CHILD,
        );
        assert!(
            peak < 64 * 1024,
            "listing one directory {LISTINGS} times peaked at {peak} KiB"
        );
        eprintln!("peak memory of the child: {peak} KiB");
        return;
    }
    let names: Vec<String> = (1..=510).map(|i| format!("{i:0>255}")).collect();
    let mut tar = Tar::new();
    tar.dir(&(names.join("/") + "/"));
    // s1 -> the first 15 names; s(k+1) -> s(k)/the next 15.
    let mut last = String::new();
    for (k, chunk) in names.chunks(15).enumerate() {
        let target = match k {
            0 => chunk.join("/"),
            _ => format!("{last}/{}", chunk.join("/")),
        };
        last = format!("s{}", k + 1);
        tar.symlink(&last, &target);
    }
    for _ in 0..LISTINGS {
        tar.dir(&format!("{last}/x/"));
    }
    let layer = tar.finish();
    let tmp = tempfile::tempdir().expect("tempdir");
    let stats = Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("apply");
    assert_eq!(stats.dirs, 1 + LISTINGS as u64);
    println!("peak-rss-kib={}", peak_rss_kib());
}

/// Flattening keeps every surviving symlink's target, owner names and attributes in memory
/// until it writes the tar: 320 symlinks with targets of a MiB each (a 0.36 MB gzip) made the
/// merged tree hold 320 MiB, and a few thousand would have held gigabytes. Without any limit
/// set, the flattener now refuses the layer once the tree would hold more than the default
/// `Limits::max_metadata_bytes` (256 MiB), naming the entry. Run in a child process so its
/// peak memory is this layer's alone.
#[test]
fn flattening_many_long_symlink_targets_is_refused_at_the_default_metadata_cap() {
    const CHILD: &str = "HOIST_UNPACK_FLATTEN_METADATA_CHILD";
    const LINKS: usize = 320;
    if std::env::var_os(CHILD).is_none() {
        let peak = child_peak_kib(
            "flattening_many_long_symlink_targets_is_refused_at_the_default_metadata_cap",
            CHILD,
        );
        assert!(
            peak < (256 + 48) * 1024,
            "flattening {LINKS} MiB-long symlink targets peaked at {peak} KiB"
        );
        eprintln!("peak memory of the child: {peak} KiB");
        return;
    }
    // Built entry by entry straight into the gzip stream: the test holds no MiB per link.
    let target = "t".repeat((1 << 20) - 512);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for i in 0..LINKS {
        let entry = Tar::new().symlink(&format!("l{i}"), &target).finish();
        // Without its end-of-archive blocks.
        std::io::Write::write_all(&mut gz, &entry[..entry.len() - 1024]).expect("gzip");
    }
    std::io::Write::write_all(&mut gz, &[0u8; 1024]).expect("gzip");
    let layer = gz.finish().expect("gzip");
    eprintln!("the layer: {} bytes of gzip", layer.len());
    assert!(layer.len() < 1 << 20, "{} bytes", layer.len());
    let layers = [hoist_unpack::FlattenLayer::bytes(
        &layer,
        LayerInfo::default(),
    )];
    let err = Unpacker::builder()
        .rootless(true)
        .build()
        .expect("build")
        .flatten_layers(&layers, std::io::sink())
        .expect_err("refused");
    assert!(err.is_limit_exceeded(), "{err:?}");
    assert!(
        err.to_string()
            .contains(&Limits::DEFAULT_MAX_METADATA_BYTES.to_string()),
        "{err}"
    );
    // Refused at the first entry past the cap, not at the end of the layer.
    let cap_links = Limits::DEFAULT_MAX_METADATA_BYTES as usize / target.len();
    let at = err
        .entry()
        .and_then(|e| e.to_str())
        .and_then(|e| e.strip_prefix('l'))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the entry is named");
    assert_eq!(at, cap_links, "{err}");
    println!("peak-rss-kib={}", peak_rss_kib());
}
