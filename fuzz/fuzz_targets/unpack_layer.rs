//! Fuzz the layer applier with arbitrary bytes as a layer: it may refuse the layer, but it must
//! never panic and never create anything outside the root.
#![no_main]

use hoist_unpack::{LayerInfo, Limits, Unpacker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let root = dir.path().join("root");
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    let limits = Limits::new().max_bytes(1 << 20).max_entries(10_000);
    let Ok(unpacker) = Unpacker::builder().rootless(true).limits(limits).build() else {
        return;
    };
    let _ = unpacker.apply_layer(&root, data, &LayerInfo::default());
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("temp dir is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "root")
        .collect();
    assert!(outside.is_empty(), "created outside the root: {outside:?}");
});
