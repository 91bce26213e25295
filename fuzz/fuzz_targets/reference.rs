//! Fuzz image reference parsing: accepted references re-parse to themselves from their
//! canonical form, and never panic.
#![no_main]

use hoist_oci::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(text) {
        let canonical = r.to_string();
        let again = Reference::parse(&canonical).expect("canonical form parses");
        assert_eq!(again, r);
        assert_eq!(again.to_string(), canonical);
    }
});
