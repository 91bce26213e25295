//! The live terminal display: one line per layer and a total line, redrawn in place.
//!
//! Frames are pure: [`frame`] turns a board and a width into lines, [`Painter::paint`] turns lines
//! into the bytes that replace the previous frame. The width is read again for every frame and
//! every line is cut to one column less, and frames are written with auto-wrap off, so a line
//! never takes two rows when it is written. Each line is redrawn with erase-line after moving the
//! cursor up to the block's first row; when the terminal narrowed since the last frame, the
//! painter counts the rows the old lines take after the terminal re-wrapped them, then erases
//! everything below the new frame, so no ghost line survives a resize (checked in tmux 3.3a).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::board::{Board, LayerLine};
use super::event::LayerState;
use crate::size::human;

/// Width of the layer-name column.
const ID_WIDTH: usize = 12;
/// Width of the state column (fits "compressing", "skipped (exists)" overflows on purpose).
const STATE_WIDTH: usize = 11;

/// The lines of one frame for a terminal `width` columns wide, at time `now`.
pub fn frame(board: &Board, width: usize, now: Instant) -> Vec<String> {
    let usable = width.saturating_sub(1).max(1);
    let mut lines: Vec<String> = board
        .layers
        .iter()
        .map(|l| fit(&layer_line(l, usable, now), usable))
        .collect();
    lines.push(fit(&total_line(board, now), usable));
    lines
}

fn layer_line(line: &LayerLine, width: usize, now: Instant) -> String {
    let mut text = format!("{:<ID_WIDTH$} ", fit(short_id(&line.id), ID_WIDTH));
    match line.state {
        LayerState::Retrying => {
            let (secs, reason) = match &line.retry {
                Some((at, reason)) => (
                    at.saturating_duration_since(now).as_secs_f64().ceil() as u64,
                    reason.as_str(),
                ),
                None => (0, "a failed request"),
            };
            let _ = write!(text, "retrying in {secs}s because {reason}");
        }
        state if state.is_moving() => {
            let _ = write!(text, "{:<STATE_WIDTH$} ", state.label());
            let amounts = match line.total {
                Some(total) => format!("{}/{}", human_pair(line.done, total), human(total)),
                None => human(line.done),
            };
            // A bar when there is room for a useful one: "[" + bar + "] " + amounts.
            if let Some(total) = line.total {
                let room = width.saturating_sub(text.len() + amounts.len() + 3);
                let bar_width = room.min(40);
                if bar_width >= 8 {
                    let _ = write!(text, "[{}] ", bar(line.done, total, bar_width));
                }
            }
            text.push_str(&amounts);
        }
        state => {
            text.push_str(state.label());
            if let Some(total) = line.total
                && matches!(
                    state,
                    LayerState::Done | LayerState::Skipped | LayerState::Mounted
                )
            {
                let _ = write!(text, "  {}", human(total));
            }
            // Where the next run continues.
            if let Some(total) = line.total
                && state == LayerState::Stopped
            {
                let _ = write!(text, "  {}/{}", human_pair(line.done, total), human(total));
            }
        }
    }
    text
}

/// A digest shown as its first 12 hex digits (as docker does); other names as they are.
pub fn short_id(id: &str) -> &str {
    match id.split_once(':') {
        Some((_, hex)) if hex.len() >= ID_WIDTH && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            &hex[..ID_WIDTH]
        }
        _ => id,
    }
}

/// `12.3` of `45.6 MB`: the done part in the unit of the total, so the pair reads well.
fn human_pair(done: u64, total: u64) -> String {
    let total_text = human(total);
    let unit = total_text.rsplit(' ').next().unwrap_or("B");
    let div = match unit {
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        _ => return done.to_string(),
    };
    let value = done as f64 / div;
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        width
    } else {
        ((done.min(total) as u128 * width as u128) / total as u128) as usize
    };
    let mut s = "=".repeat(filled);
    if filled < width {
        s.push('>');
        s.push_str(&" ".repeat(width - filled - 1));
    }
    s
}

/// The last line: layers finished of those known (left out when there is no layer line, only a
/// stream), bytes accounted for of the known total (else the bytes moved), the rate and ETA.
fn total_line(board: &Board, now: Instant) -> String {
    let (finished, known) = board.counts();
    let (done, total) = board.bytes();
    let mut text = String::from("total      ");
    if board.has_layers() {
        let _ = write!(text, "  {finished}/{known} layers");
    }
    if total > 0 {
        let _ = write!(text, "  {}/{}", human_pair(done, total), human(total));
    } else if !board.has_layers() {
        let _ = write!(text, "  {}", human(board.moved()));
    }
    let elapsed = now.saturating_duration_since(board.started);
    match board.finished {
        Some(ending) => {
            let _ = write!(text, "  {} in {}", ending.word(), clock(elapsed));
            if let Some(rate) = average_rate(board.moved(), elapsed) {
                let _ = write!(text, "  avg {}/s", human(rate));
            }
        }
        None => {
            if let Some(rate) = board.throughput(now) {
                let _ = write!(text, "  {}/s", human(rate as u64));
            }
            if let Some(eta) = board.eta(now) {
                let _ = write!(text, "  ETA {}", clock(eta));
            }
        }
    }
    text
}

fn average_rate(bytes: u64, elapsed: Duration) -> Option<u64> {
    let secs = elapsed.as_secs_f64();
    (secs > 0.2 && bytes > 0).then(|| (bytes as f64 / secs) as u64)
}

/// `0:07`, `12:34`, `1:02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Cut `text` to at most `width` characters (no control characters reach here).
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width <= 1 {
        return text.chars().take(width).collect();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('~');
    cut
}

/// DECAWM off: characters past the last column overwrite it instead of wrapping.
const NO_WRAP: &str = "\x1b[?7l";
/// DECAWM on again (the terminal's default), restored after every frame.
const WRAP: &str = "\x1b[?7h";

/// Turns frames into terminal bytes, remembering what it drew last.
#[derive(Debug, Default)]
pub struct Painter {
    /// Lengths (in characters) of the lines of the frame on screen.
    drawn: Vec<usize>,
    /// The width that frame was drawn at.
    drawn_width: usize,
}

impl Painter {
    /// A painter with nothing on screen.
    pub fn new() -> Self {
        Painter::default()
    }

    /// The bytes that replace the previous frame with `lines`, for a terminal now `width` wide.
    pub fn paint(&mut self, lines: &[String], width: usize) -> String {
        // Auto-wrap off while drawing: a line never spills onto a second row, whatever the
        // terminal's width is by the time these bytes reach it.
        let mut out = String::from(NO_WRAP);
        out.push_str(&self.clear_to_start(width));
        for line in lines {
            out.push_str("\x1b[2K");
            out.push_str(line);
            out.push('\n');
        }
        // Erase whatever is left below (a shorter frame, or rows a reflow pushed down).
        out.push_str("\x1b[J");
        out.push_str(WRAP);
        self.drawn = lines.iter().map(|l| l.chars().count()).collect();
        self.drawn_width = width;
        out
    }

    /// The bytes that erase the frame on screen (before printing a message above it, or at exit),
    /// leaving the cursor where the frame started.
    pub fn erase(&mut self, width: usize) -> String {
        let mut out = self.clear_to_start(width);
        out.push_str("\x1b[J");
        self.drawn.clear();
        out
    }

    /// Move the cursor to the first row of the drawn frame.
    fn clear_to_start(&self, width: usize) -> String {
        let rows = self.rows_on_screen(width);
        if rows == 0 {
            "\r".to_string()
        } else {
            format!("\r\x1b[{rows}A")
        }
    }

    /// How many rows to move up to reach the top of the drawn frame.
    ///
    /// Frames are written with auto-wrap off, so a frame always takes one row per line when it
    /// is written, even if the terminal narrowed before hoist noticed. The one thing that makes a
    /// frame taller is the terminal re-wrapping (reflowing) it at a resize, as tmux, VTE and kitty
    /// do: each line then takes `ceil(len / width)` rows. tmux tells the program about the new
    /// size a moment after it reflows, so frames drawn in between sit at the bottom of the
    /// re-wrapped block, leaving its extra rows above them; the count below covers that case too,
    /// because those frames have the same line lengths as the one that was reflowed.
    fn rows_on_screen(&self, width: usize) -> usize {
        let width = width.max(1);
        if width >= self.drawn_width {
            return self.drawn.len();
        }
        self.drawn
            .iter()
            .map(|&len| len.max(1).div_ceil(width))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::Event;

    fn board(now: Instant) -> Board {
        let mut b = Board::new(now);
        let events = [
            Event::Layer {
                id: "sha256:aaaaaaaaaaaa".into(),
                size: Some(45_600_000),
            },
            Event::Layer {
                id: "sha256:bbbbbbbbbbbb".into(),
                size: Some(1_000),
            },
            Event::Layer {
                id: "sha256:cccccccccccc".into(),
                size: None,
            },
            Event::State {
                id: "sha256:aaaaaaaaaaaa".into(),
                state: LayerState::Pushing,
            },
            Event::Progress {
                id: "sha256:aaaaaaaaaaaa".into(),
                done: 22_800_000,
                total: Some(45_600_000),
            },
            Event::State {
                id: "sha256:bbbbbbbbbbbb".into(),
                state: LayerState::Skipped,
            },
            Event::Retry {
                id: "sha256:cccccccccccc".into(),
                in_secs: 3,
                reason: "502 Bad Gateway".into(),
                attempt: 2,
            },
        ];
        for e in &events {
            b.apply(e, now);
        }
        b
    }

    #[test]
    fn frame_at_80_columns() {
        let t0 = Instant::now();
        let b = board(t0);
        let lines = frame(&b, 80, t0 + Duration::from_secs(2));
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "aaaaaaaaaaaa pushing     [===================>                   ] 22.8/45.6 MB"
        );
        assert!(lines[0].len() <= 79, "{:?}", lines[0]);
        assert!(lines[0].contains("pushing"), "{}", lines[0]);
        assert!(lines[0].contains('['), "{}", lines[0]);
        assert_eq!(lines[1], "bbbbbbbbbbbb skipped (exists)  1.00 KB");
        assert_eq!(
            lines[2],
            "cccccccccccc retrying in 1s because 502 Bad Gateway"
        );
        assert!(
            lines[3].starts_with("total        1/3 layers  22.8/45.6 MB"),
            "{}",
            lines[3]
        );
        assert!(lines[3].contains("MB/s"), "{}", lines[3]);
        assert!(lines[3].contains("ETA 0:0"), "{}", lines[3]);
    }

    #[test]
    fn every_line_fits_every_width() {
        let t0 = Instant::now();
        let b = board(t0);
        for width in [1, 2, 10, 20, 33, 40, 57, 80, 200] {
            for line in frame(&b, width, t0) {
                assert!(
                    line.chars().count() < width.max(2),
                    "width {width}: {line:?}"
                );
            }
        }
        // Narrow: no bar, still the amounts.
        let narrow = frame(&b, 40, t0);
        assert!(!narrow[0].contains('['), "{}", narrow[0]);
    }

    #[test]
    fn finished_total_line() {
        let t0 = Instant::now();
        let mut b = board(t0);
        b.apply(
            &Event::Finish {
                ok: true,
                interrupted: false,
                error: None,
                causes: Vec::new(),
            },
            t0,
        );
        let lines = frame(&b, 120, t0 + Duration::from_secs(4));
        assert!(lines[3].contains("finished in 0:04"), "{}", lines[3]);
        assert!(lines[3].contains("avg 5.70 MB/s"), "{}", lines[3]);
        assert!(!lines[3].contains("ETA"), "{}", lines[3]);
    }

    #[test]
    fn a_stream_alone_shows_its_bytes_and_no_layer_count() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(
            &Event::Stream {
                id: "load".into(),
                size: None,
            },
            t0,
        );
        b.apply(
            &Event::State {
                id: "load".into(),
                state: LayerState::Writing,
            },
            t0,
        );
        b.apply(
            &Event::Progress {
                id: "load".into(),
                done: 2_100_000,
                total: None,
            },
            t0,
        );
        let lines = frame(&b, 80, t0);
        assert_eq!(lines[0], "load         writing     2.10 MB");
        assert!(lines[1].starts_with("total        2.10 MB"), "{}", lines[1]);
    }

    #[test]
    fn painter_moves_up_over_the_previous_frame() {
        let mut p = Painter::new();
        let first = p.paint(&["a".into(), "b".into()], 80);
        assert_eq!(first, "\x1b[?7l\r\x1b[2Ka\n\x1b[2Kb\n\x1b[J\x1b[?7h");
        let second = p.paint(&["c".into()], 80);
        assert_eq!(second, "\x1b[?7l\r\x1b[2A\x1b[2Kc\n\x1b[J\x1b[?7h");
        assert_eq!(p.erase(80), "\r\x1b[1A\x1b[J");
        assert_eq!(p.erase(80), "\r\x1b[J");
    }

    #[test]
    fn painter_counts_rewrapped_rows_after_narrowing() {
        let mut p = Painter::new();
        let long = "x".repeat(79);
        p.paint(&[long.clone(), "short".into()], 80);
        // Narrowed to 40: the 79-char line was re-wrapped over 2 rows, the short one 1.
        let out = p.paint(&["y".into()], 40);
        assert!(out.starts_with("\x1b[?7l\r\x1b[3A"), "{out:?}");
        // At the same width again: one row per line.
        let out = p.paint(&["y".into()], 40);
        assert!(out.starts_with("\x1b[?7l\r\x1b[1A"), "{out:?}");
        // Widening never re-wraps.
        p.paint(&[long], 40);
        let out = p.paint(&["z".into()], 120);
        assert!(out.starts_with("\x1b[?7l\r\x1b[1A"), "{out:?}");
    }

    #[test]
    fn helpers() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(fit("abcdef", 4), "abc~");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("layer 3"), "layer 3");
        assert_eq!(short_id("sha256:xyz"), "sha256:xyz");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(bar(5, 10, 10), "=====>    ");
        assert_eq!(bar(10, 10, 4), "====");
        assert_eq!(human_pair(22_800_000, 45_600_000), "22.8");
    }
}
