//! Line-oriented output for logs and machines: plain text (one line per state change, no control
//! characters) and JSON (one object per event per line).

use std::time::{Duration, Instant};

use super::board::Board;
use super::event::{Event, LayerState};
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
        Event::Layer { .. } | Event::Progress { .. } => return None,
        // An export's placeholder line learns its layer's diff_id; a diff_id its compressed blob.
        Event::Rename { from, to } if from.starts_with("layer ") => format!("{from} is {to}"),
        Event::Rename { from, to } => format!("{from} compressed as {to}"),
        Event::State { id, state } => {
            let mut text = format!("{id} {}", state.label());
            let size = board
                .layers
                .iter()
                .find(|l| &l.id == id)
                .and_then(|l| l.total);
            if let Some(size) = size
                && matches!(
                    state,
                    LayerState::Done
                        | LayerState::Skipped
                        | LayerState::Mounted
                        | LayerState::Pushing
                        | LayerState::Pulling
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
        } => format!("{id} retrying in {in_secs}s because {reason} (attempt {attempt})"),
        Event::Message { text } => text.clone(),
        Event::Finish { ok } => {
            let (finished, known) = board.counts();
            let elapsed = now.saturating_duration_since(board.started);
            let mut text = format!(
                "{} in {}: {finished}/{known} layers, {} moved",
                if *ok { "finished" } else { "failed" },
                clock(elapsed),
                human(board.moved())
            );
            if elapsed > Duration::from_millis(200) && board.moved() > 0 {
                let rate = board.moved() as f64 / elapsed.as_secs_f64();
                text.push_str(&format!(" ({}/s)", human(rate as u64)));
            }
            text
        }
    };
    Some(sanitize(&line))
}

/// The JSON line for `event`: the event's fields plus `"elapsed"` seconds since the start.
pub fn json_line(event: &Event, board: &Board, now: Instant) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_else(|_| serde_json::json!({}));
    if let serde_json::Value::Object(map) = &mut value {
        let elapsed = now.saturating_duration_since(board.started).as_secs_f64();
        map.insert(
            "elapsed".into(),
            serde_json::json!((elapsed * 1000.0).round() / 1000.0),
        );
    }
    value.to_string()
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
            Event::Finish { ok: true },
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
