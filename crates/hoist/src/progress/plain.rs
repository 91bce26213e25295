//! Line-oriented output for logs and machines: plain text (one line per state change, no control
//! characters) and JSON (one object per event per line).
//!
//! Plain lines name a layer by the first digest it was known by, from its first line to its last;
//! a rename is said once (`layer 1 is sha256:...`, then `sha256:<diff_id> compressed ->
//! sha256:<blob>`). JSON events keep the names the events carry: a consumer follows `rename`.

use std::time::{Duration, Instant};

use super::board::Board;
use super::event::{Ending, Event, LayerState};
use super::tty::clock;
use crate::errors::sanitize;
use crate::size::human;

/// The plain-text line for `event`, if it is a state change worth a line. `board` has already
/// applied the event.
pub fn plain_line(event: &Event, board: &Board, now: Instant) -> Option<String> {
    let line = match event {
        Event::Start {
            operation,
            source,
            destination,
        } => format!("{operation} {source} -> {destination}"),
        Event::Layer { .. } | Event::Stream { .. } | Event::Progress { .. } => return None,
        // An export's placeholder line learns its layer's diff_id (which becomes its name); a
        // diff_id its compressed blob.
        Event::Rename { from, to } => {
            let line = board.get(to)?;
            match line.name == *to {
                true => format!("{from} is {to}"),
                false => format!("{} compressed -> {to}", line.name),
            }
        }
        Event::State { id, state } => {
            let mut text = format!("{} {}", name(board, id), state.label());
            let size = board.get(id).and_then(|l| l.total);
            if let Some(size) = size
                && matches!(
                    state,
                    LayerState::Done
                        | LayerState::Skipped
                        | LayerState::Mounted
                        | LayerState::Pushing
                        | LayerState::Pulling
                        | LayerState::Fetching
                        | LayerState::Reading
                )
            {
                text.push_str(&format!(" ({})", human(size)));
            }
            // Where the next run continues.
            if let Some(line) = board.layers.iter().find(|l| &l.id == id)
                && let (LayerState::Stopped, Some(size)) = (state, line.total)
            {
                text.push_str(&format!(" at {} of {}", human(line.done), human(size)));
            }
            text
        }
        Event::Retry {
            id,
            in_secs,
            reason,
            attempt,
        } => format!(
            "{} retrying in {in_secs}s because {reason} (attempt {attempt})",
            name(board, id)
        ),
        Event::Resume { id, done } => format!(
            "{} continues after {} an earlier run sent",
            name(board, id),
            human(*done)
        ),
        Event::Message { text } => text.clone(),
        Event::Finish {
            ok, interrupted, ..
        } => summary(Ending::of(*ok, *interrupted), board, now),
    };
    Some(sanitize(&line))
}

/// The name plain lines give the line `id` (see the module documentation).
fn name<'a>(board: &'a Board, id: &'a str) -> &'a str {
    board.get(id).map_or(id, |l| l.name.as_str())
}

/// The last line: `finished in 0:09: 2/2 layers, 180 MB moved (20.0 MB/s), 134 MB sent by an
/// earlier run`. The layer count is left out when there is no layer line (a load, an archive
/// spooled into a layout); what "moved" counts is in [`super::board`]'s documentation.
fn summary(ending: Ending, board: &Board, now: Instant) -> String {
    let elapsed = now.saturating_duration_since(board.started);
    let mut text = format!("{} in {}: ", ending.word(), clock(elapsed));
    if board.has_layers() {
        let (finished, known) = board.counts();
        text.push_str(&format!("{finished}/{known} layers, "));
    }
    text.push_str(&format!("{} moved", human(board.moved())));
    if elapsed > Duration::from_millis(200) && board.moved() > 0 {
        let rate = board.moved() as f64 / elapsed.as_secs_f64();
        text.push_str(&format!(" ({}/s)", human(rate as u64)));
    }
    if board.resumed() > 0 {
        text.push_str(&format!(
            ", {} sent by an earlier run",
            human(board.resumed())
        ));
    }
    text
}

/// The JSON line for `event`: the event's fields plus `"elapsed"` seconds since the start; a
/// finish also says `"moved"` and `"resumed"` bytes (see [`super::board`]).
pub fn json_line(event: &Event, board: &Board, now: Instant) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_else(|_| serde_json::json!({}));
    if let serde_json::Value::Object(map) = &mut value {
        let elapsed = now.saturating_duration_since(board.started).as_secs_f64();
        map.insert(
            "elapsed".into(),
            serde_json::json!((elapsed * 1000.0).round() / 1000.0),
        );
        if let Event::Finish { .. } = event {
            map.insert("moved".into(), board.moved().into());
            map.insert("resumed".into(), board.resumed().into());
        }
    }
    value.to_string()
}

/// A JSON `message` event for a note said outside any transfer (no `elapsed`: no transfer runs).
pub fn message_line(text: &str) -> String {
    serde_json::json!({ "event": "message", "text": sanitize(text) }).to_string()
}

/// The JSON `error` event `main` ends a JSON stream with when a command fails and no `finish`
/// event said why: `{"event":"error","error":"...","causes":[...]}`.
pub fn error_line(message: &str, causes: &[String]) -> String {
    serde_json::json!({ "event": "error", "error": message, "causes": causes }).to_string()
}

/// Whether JSON mode should write a progress event now: at most every `interval` per layer, but
/// always the last one.
pub fn progress_due(last: Option<Instant>, now: Instant, done: u64, total: Option<u64>) -> bool {
    const INTERVAL: Duration = Duration::from_millis(250);
    total == Some(done) || last.is_none_or(|t| now.duration_since(t) >= INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_only_for_state_changes() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        let events = [
            Event::Start {
                operation: "push".into(),
                source: "docker-daemon:app:1".into(),
                destination: "docker://h/app:1".into(),
            },
            Event::Layer {
                id: "sha256:aaaa".into(),
                size: Some(2_000_000),
            },
            Event::State {
                id: "sha256:aaaa".into(),
                state: LayerState::Pushing,
            },
            Event::Progress {
                id: "sha256:aaaa".into(),
                done: 2_000_000,
                total: Some(2_000_000),
            },
            Event::State {
                id: "sha256:aaaa".into(),
                state: LayerState::Done,
            },
            Event::Message {
                text: "registry refused a 64 MB chunk\x1b[31m (413)".into(),
            },
            Event::Finish {
                ok: true,
                interrupted: false,
                error: None,
                causes: Vec::new(),
            },
        ];
        let lines: Vec<String> = events
            .iter()
            .filter_map(|e| {
                b.apply(e, t0 + Duration::from_secs(1));
                plain_line(e, &b, t0 + Duration::from_secs(1))
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                "push docker-daemon:app:1 -> docker://h/app:1",
                "sha256:aaaa pushing (2.00 MB)",
                "sha256:aaaa done (2.00 MB)",
                "registry refused a 64 MB chunk[31m (413)",
                "finished in 0:00: 1/1 layers, 2.00 MB moved",
            ]
        );
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
    }

    #[test]
    fn plain_lines_name_a_layer_as_they_first_knew_it() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        let state = |id: &str, state| Event::State {
            id: id.into(),
            state,
        };
        let rename = |from: &str, to: &str| Event::Rename {
            from: from.into(),
            to: to.into(),
        };
        let events = [
            Event::Stream {
                id: "export".into(),
                size: None,
            },
            Event::Layer {
                id: "layer 1".into(),
                size: Some(3_000),
            },
            state("layer 1", LayerState::Compressing),
            rename("layer 1", "sha256:diff"),
            state("sha256:diff", LayerState::Waiting),
            rename("sha256:diff", "sha256:blob"),
            Event::Layer {
                id: "sha256:blob".into(),
                size: Some(1_000),
            },
            state("sha256:blob", LayerState::Pushing),
            Event::Resume {
                id: "sha256:blob".into(),
                done: 400,
            },
            Event::Progress {
                id: "sha256:blob".into(),
                done: 1_000,
                total: Some(1_000),
            },
            Event::Retry {
                id: "sha256:blob".into(),
                in_secs: 1,
                reason: "502".into(),
                attempt: 2,
            },
            state("sha256:blob", LayerState::Done),
            Event::Finish {
                ok: true,
                interrupted: false,
                error: None,
                causes: Vec::new(),
            },
        ];
        let lines: Vec<String> = events
            .iter()
            .filter_map(|e| {
                b.apply(e, t0);
                plain_line(e, &b, t0)
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                "layer 1 compressing",
                "layer 1 is sha256:diff",
                "sha256:diff waiting",
                "sha256:diff compressed -> sha256:blob",
                "sha256:diff pushing (1.00 KB)",
                "sha256:diff continues after 400 B an earlier run sent",
                "sha256:diff retrying in 1s because 502 (attempt 2)",
                "sha256:diff done (1.00 KB)",
                "finished in 0:00: 1/1 layers, 600 B moved, 400 B sent by an earlier run",
            ]
        );
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
    }

    #[test]
    fn json_lines_parse_back() {
        let t0 = Instant::now();
        let b = Board::new(t0);
        let line = json_line(
            &Event::Retry {
                id: "l1".into(),
                in_secs: 2,
                reason: "timeout".into(),
                attempt: 3,
            },
            &b,
            t0 + Duration::from_millis(1500),
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["event"], "retry");
        assert_eq!(v["id"], "l1");
        assert_eq!(v["attempt"], 3);
        assert_eq!(v["elapsed"], 1.5);
        assert!(!line.contains('\n'));
        let mut b = Board::new(t0);
        b.apply(
            &Event::Layer {
                id: "l".into(),
                size: Some(5),
            },
            t0,
        );
        let failed = Event::Finish {
            ok: false,
            interrupted: false,
            error: Some("pushing blobs".into()),
            causes: vec!["503".into()],
        };
        b.apply(&failed, t0);
        let v: serde_json::Value = serde_json::from_str(&json_line(&failed, &b, t0)).expect("json");
        assert_eq!(
            (
                &v["ok"],
                &v["error"],
                &v["causes"][0],
                &v["moved"],
                &v["resumed"]
            ),
            (
                &false.into(),
                &"pushing blobs".into(),
                &"503".into(),
                &0.into(),
                &0.into()
            )
        );
        let ok = Event::Finish {
            ok: true,
            interrupted: false,
            error: None,
            causes: Vec::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&ok, &b, t0)).expect("json");
        assert!(v.get("error").is_none() && v.get("causes").is_none(), "{v}");
        assert!(v.get("interrupted").is_none(), "said only when true: {v}");
    }

    /// Work a signal stopped ends on "interrupted", not "failed", in both views and in JSON.
    #[test]
    fn an_interrupted_copy_says_so_on_its_last_line() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        let stopped = Event::Finish {
            ok: false,
            interrupted: true,
            error: Some("interrupted".into()),
            causes: Vec::new(),
        };
        b.apply(&stopped, t0);
        let line = plain_line(&stopped, &b, t0).expect("a last line");
        assert_eq!(line, "interrupted in 0:00: 0 B moved");
        let frame = super::super::tty::frame(&b, 100, t0);
        assert!(
            frame.iter().any(|l| l.contains("interrupted in 0:00")),
            "{frame:?}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&stopped, &b, t0)).expect("json");
        assert_eq!((&v["ok"], &v["interrupted"]), (&false.into(), &true.into()));
    }

    #[test]
    fn json_progress_is_throttled() {
        let t0 = Instant::now();
        assert!(progress_due(None, t0, 1, Some(10)));
        assert!(!progress_due(
            Some(t0),
            t0 + Duration::from_millis(10),
            2,
            Some(10)
        ));
        assert!(progress_due(
            Some(t0),
            t0 + Duration::from_millis(10),
            10,
            Some(10)
        ));
        assert!(progress_due(
            Some(t0),
            t0 + Duration::from_millis(300),
            3,
            None
        ));
    }
}
