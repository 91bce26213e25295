//! Large synthetic images are generated with constant memory (own test binary: it reads the
//! process-wide peak RSS, which other tests running in parallel would disturb).

use hoist_oci::Compression;
use hoist_testkit::{ImageSpec, write_docker_archive, write_oci_layout};

/// Peak resident set size of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn large_layers_take_constant_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = peak_rss_kib();
    // One 192 MiB file per layer: a Vec of a file or a layer anywhere would show up at once.
    let size = 96 << 20;
    let spec = ImageSpec {
        layers: vec![
            hoist_testkit::LayerSpec::new(1, size).compression(Compression::Gzip),
            hoist_testkit::LayerSpec::new(1, size).compression(Compression::None),
        ],
        seed: 9,
    };
    let img = write_oci_layout(&dir.path().join("layout"), "big", &spec).expect("layout");
    assert!(
        img.layers[0].size > size,
        "random payload does not compress"
    );
    let archive = dir.path().join("big.tar");
    write_docker_archive(
        &archive,
        "big:1",
        &ImageSpec::uniform(1, size, Compression::None, 3),
    )
    .expect("archive");
    assert!(std::fs::metadata(&archive).expect("meta").len() > size);
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "peak RSS grew by {grown} KiB while writing {} MiB",
        3 * (size >> 20)
    );
}
