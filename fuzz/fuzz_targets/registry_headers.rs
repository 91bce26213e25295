//! Fuzz the registry protocol's header handling: WWW-Authenticate challenges, upload `Range`,
//! `Location` resolution, `Retry-After` and error bodies. None may panic; a parsed range is
//! ordered, and a resolved Location stays an absolute URL.
#![no_main]

use hoist_registry::protocol::{challenge, chunk, location, response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = challenge::parse_challenges(&text);
    if let Some(range) = chunk::parse_upload_range(&text) {
        let _ = format!("{range:?}");
    }
    let base = url::Url::parse("https://registry.example:5000/v2/a/b/blobs/uploads/")
        .expect("static base URL");
    if let Some(resolved) = location::resolve_location(&base, &text) {
        assert!(resolved.has_host(), "{resolved}");
        let _ = location::display_url(&resolved);
    }
    let _ = response::parse_retry_after(&text, std::time::SystemTime::UNIX_EPOCH);
    let _ = response::parse_error_body(413, Some("text/html"), data);
    let _ = response::parse_error_body(400, Some("application/json"), data);
});
