//! Fuzz digest parsing: anything accepted must round-trip and be safe as a file name.
#![no_main]

use hoist_oci::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text);
        assert!(!digest.hex().contains('/') && !digest.hex().contains('.'));
        assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
    }
});
