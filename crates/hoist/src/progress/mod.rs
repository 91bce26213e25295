//! Progress display: a CLI-side [`Event`] stream drawn live on a terminal ([`tty`]), as plain lines
//! or as JSON lines ([`plain`]), always on stderr (stdout may be carrying an archive).
//!
//! Commands get a cheap-to-clone [`Reporter`] and send events; one renderer thread owns the
//! [`board::Board`] and the terminal, so redraws are rate-limited (~10 Hz) no matter how often
//! events arrive.
//!
//! JSON mode writes an event only when it tells something new (the board says so): a layer
//! announced before its upload starts is not announced again when it does, and a state is not
//! repeated. A failed copy's `finish` event carries the error; [`reported`] lets `main` leave
//! out the same error afterwards, so a JSON stream says it once, and only as JSON.

pub mod board;
pub mod event;
pub mod log;
pub mod plain;
pub mod tty;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use event::{Event, LayerState};

use crate::config::ProgressMode;
use crate::errors::sanitize;
use board::Board;

/// How often the live display redraws at most.
const FRAME: Duration = Duration::from_millis(100);

/// Sends events to the renderer; does nothing when progress is off.
#[derive(Debug, Clone)]
pub struct Reporter {
    tx: Option<mpsc::Sender<Event>>,
}

impl Reporter {
    /// A reporter that drops everything.
    pub fn silent() -> Self {
        Reporter { tx: None }
    }

    /// Report an event.
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            // The renderer only stops after every sender is gone; a failed send means it died,
            // and progress is not worth failing a transfer over.
            let _ = tx.send(event);
        }
    }

    /// Tell the user `text` now, with progress off too (`-q`): an answer to something they
    /// did (a Ctrl-C), not progress. Through the renderer when there is one, which keeps a
    /// live display whole; else straight to stderr.
    pub fn tell(&self, text: &str) {
        let message = Event::Message {
            text: text.to_string(),
        };
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(message).is_ok());
        if !sent {
            let _ = writeln!(std::io::stderr().lock(), "{}", sanitize(text));
        }
    }

    /// Shorthand for a state change.
    pub fn state(&self, id: &str, state: LayerState) {
        self.send(Event::State {
            id: id.to_string(),
            state,
        });
    }
}

/// The running renderer.
pub struct Progress {
    tx: Option<mpsc::Sender<Event>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start rendering in `mode` to stderr.
    pub fn start(mode: ProgressMode) -> Progress {
        if mode == ProgressMode::Quiet {
            return Progress {
                tx: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hoist-progress".into())
            .spawn(move || render_loop(mode, &rx))
            .ok();
        Progress {
            tx: Some(tx),
            thread,
        }
    }

    /// A handle for sending events.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            tx: self.tx.clone(),
        }
    }

    /// Stop after drawing everything sent so far (the last frame stays on screen).
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The width of the terminal on stderr, read fresh each time.
fn terminal_width() -> usize {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(std::io::stderr())
        && w > 0
    {
        return usize::from(w);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c > 0)
        .unwrap_or(80)
}

fn render_loop(mode: ProgressMode, rx: &mpsc::Receiver<Event>) {
    let mut err = std::io::stderr();
    // A live display on something that is not a terminal would fill a log with escapes.
    let mode = if mode == ProgressMode::Tty
        && !err.is_terminal()
        && std::env::var_os("HOIST_FORCE_TTY").is_none()
    {
        ProgressMode::Plain
    } else {
        mode
    };
    let mut board = Board::new(Instant::now());
    let mut painter = tty::Painter::new();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = false;
    let mut last_json: HashMap<String, Instant> = HashMap::new();
    loop {
        let received = rx.recv_timeout(FRAME);
        let now = Instant::now();
        match received {
            Ok(event) => {
                let changed = board.apply(&event, now);
                match mode {
                    ProgressMode::Plain => {
                        // One line per change: a repeated state (a resume) is not news.
                        let repeat = matches!(event, Event::State { .. }) && !changed;
                        if repeat {
                            continue;
                        }
                        if let Some(line) = plain::plain_line(&event, &board, now) {
                            let _ = writeln!(err, "{line}");
                        }
                    }
                    ProgressMode::Json => {
                        let said_before = !changed
                            && matches!(
                                event,
                                Event::Layer { .. } | Event::Stream { .. } | Event::State { .. }
                            );
                        if said_before {
                            continue;
                        }
                        if let Event::Progress { id, done, total } = &event {
                            if !plain::progress_due(last_json.get(id).copied(), now, *done, *total)
                            {
                                continue;
                            }
                            last_json.insert(id.clone(), now);
                        }
                        let _ = writeln!(err, "{}", plain::json_line(&event, &board, now));
                        if let Event::Finish {
                            error: Some(error),
                            causes,
                            ..
                        } = &event
                            && let Ok(mut last) = REPORTED.lock()
                        {
                            *last = Some((error.clone(), causes.clone()));
                        }
                    }
                    ProgressMode::Tty => {
                        if let Event::Message { text } = &event {
                            let width = terminal_width();
                            let mut out = painter.erase(width);
                            // Printed once above the block (and allowed to wrap): never redrawn.
                            out.push_str(&sanitize(text));
                            out.push('\n');
                            let _ = err.write_all(out.as_bytes());
                        }
                        dirty = true;
                    }
                    ProgressMode::Quiet => {}
                }
                // The last word: a task still holding a reporter (one an interruption left
                // running) must not keep the process waiting.
                if matches!(event, Event::Finish { .. }) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if mode == ProgressMode::Tty {
            let ticking = board.finished.is_none() && !board.layers.is_empty();
            let drawable = !board.layers.is_empty() || board.finished.is_some();
            if drawable
                && (dirty || ticking)
                && last_draw.is_none_or(|t| now.duration_since(t) >= FRAME)
            {
                draw(&mut err, &mut painter, &board, now);
                last_draw = Some(now);
                dirty = false;
            }
        }
    }
    if mode == ProgressMode::Tty && (dirty || last_draw.is_some()) {
        draw(&mut err, &mut painter, &board, Instant::now());
    }
    let _ = err.flush();
}

/// The error the last JSON `finish` event carried.
static REPORTED: Mutex<Option<(String, Vec<String>)>> = Mutex::new(None);

/// Whether a JSON `finish` event already said this error (its message and causes): a copy's
/// own failure, which `main` then does not repeat. Another error (one after the copy, or an
/// `--all-tags` run's verdict over its tags) is said on its own line.
pub fn reported(message: &str, causes: &[String]) -> bool {
    REPORTED.lock().is_ok_and(|last| {
        last.as_ref()
            .is_some_and(|(m, c)| m == message && c.as_slice() == causes)
    })
}

/// Say `text` outside any transfer's events (an `--all-tags` run's notes): a plain line, or in
/// JSON mode a `message` event.
pub fn say(mode: ProgressMode, text: &str) {
    let line = match mode {
        ProgressMode::Json => plain::message_line(text),
        _ => sanitize(text),
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn draw(err: &mut std::io::Stderr, painter: &mut tty::Painter, board: &Board, now: Instant) {
    let width = terminal_width();
    let lines = tty::frame(board, width, now);
    let out = painter.paint(&lines, width);
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishing_does_not_wait_for_a_reporter_left_behind() {
        let progress = Progress::start(ProgressMode::Plain);
        // A blocking task an interruption left running still holds this.
        let stuck = progress.reporter();
        stuck.send(Event::Finish {
            ok: false,
            interrupted: false,
            error: None,
            causes: Vec::new(),
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            progress.finish();
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("finish() returned while a reporter is still alive");
        // Sending after the end is harmless.
        stuck.state("layer", LayerState::Done);
    }
}
