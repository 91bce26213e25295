//! Fuzz manifest, index and config parsing: never panic, and keep the exact bytes.
#![no_main]

use hoist_oci::{AnyManifest, Digest, ImageConfig, RawJson};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = AnyManifest::parse(data.to_vec(), None) {
        assert_eq!(m.bytes(), data);
        assert_eq!(m.digest(), &Digest::sha256_of(data));
        let _ = m.media_type();
    }
    if let Ok(c) = RawJson::<ImageConfig>::parse(data.to_vec()) {
        assert_eq!(c.bytes(), data);
    }
});
