//! Log lines as JSON `log` events, for `--progress json`: a warning a library logs mid-copy
//! (a cache it could not clean, a registry listing names that are no tags) is one more JSON
//! object on stderr, not a text line among them.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::errors::sanitize;

/// Formats a log event as `{"event":"log","level":"warn","target":"hoist_oci::layout",
/// "message":"...","fields":{...}}` (`fields` only when it logged some besides the message),
/// the message made safe to print as an error's is.
#[derive(Debug, Clone, Copy)]
pub struct JsonLog;

impl<S, N> FormatEvent<S, N> for JsonLog
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = serde_json::json!({
            "event": "log",
            "level": meta.level().as_str().to_ascii_lowercase(),
            "target": meta.target(),
            "message": sanitize(&fields.message),
        });
        if !fields.other.is_empty() {
            line["fields"] = serde_json::Value::Object(fields.other);
        }
        writeln!(writer, "{line}")
    }
}

/// The fields of one log event: its message, and the others by name.
#[derive(Default)]
struct Fields {
    message: String,
    other: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match (field.name(), value) {
            ("message", serde_json::Value::String(text)) => self.message = text,
            (name, value) => {
                self.other.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, sanitize(&format!("{value:?}")).into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, sanitize(value).into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log destination the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut all) = self.0.lock() {
                all.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_is_one_json_event() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(JsonLog)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                digest = "sha256:ab",
                offset = 7u64,
                "could not remove https://u:pw@h/x\u{1b}[2J"
            );
            tracing::info!("plain");
        });
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["event"], "log");
        assert_eq!(lines[0]["level"], "warn");
        assert_eq!(lines[0]["message"], "could not remove https://***@h/x[2J");
        assert_eq!(lines[0]["fields"]["digest"], "sha256:ab");
        assert_eq!(lines[0]["fields"]["offset"], 7);
        assert_eq!(lines[1]["message"], "plain");
        assert!(lines[1].get("fields").is_none(), "{}", lines[1]);
    }
}
