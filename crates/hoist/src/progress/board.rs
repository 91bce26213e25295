//! The state every renderer draws from: one entry per line (a layer of the image, or a stream
//! such as a daemon export) plus totals, updated by events.
//!
//! What the totals mean, for every kind of copy:
//!
//! - **Layers** ("2/3 layers") are the image's layers: a stream line (`export`, `load`,
//!   `archive`) is not one, nor is the config. A copy with no layer line (an archive streamed
//!   into the daemon's load, a docker archive spooled into a layout) says no layer count.
//! - **Moved** is the bytes this run delivered to the destination: counted on a line while it
//!   is in a delivering state ([`LayerState::is_transfer`]: pushing, pulling into the
//!   destination layout, writing a layout, an archive or the daemon's load, unpacking), each
//!   byte once. Not counted: preparation (a daemon export, compressing before a push, a pull
//!   into a transit copy, reading an archive into one, a `rootfs-tar:`'s first pass), what the
//!   destination had (skipped, mounted layers), and what an earlier run sent before a resumed
//!   upload continued ([`Event::Resume`]; counted apart, as [`Board::resumed`], also when the
//!   line reads them from the source again before it sends the rest). Bytes a retry
//!   sends again are moved again. Where one stream carries every layer (an archive, a load),
//!   its line counts the bytes and the layers streamed into it are only fetched. The
//!   throughput and the average rate are of moved bytes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::{Ending, Event, LayerState};

/// What a line stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A layer of the image.
    Layer,
    /// A stream carrying the whole image (an export, a load, an archive).
    Stream,
}

/// One layer's (or stream's) line.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerLine {
    /// Its name in events: the latest a rename gave it.
    pub id: String,
    /// The name plain lines call it by: the first digest it was known by (a placeholder such as
    /// `layer 1` gives way to the first digest it is renamed to), kept through later renames.
    pub name: String,
    /// A layer or a stream.
    pub kind: LineKind,
    /// Where it stands.
    pub state: LayerState,
    /// Bytes done in the current state.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// When a pending retry fires and why.
    pub retry: Option<(Instant, String)>,
    /// The phase an [`Event::Resume`] was said in and the bytes an earlier run had done in it:
    /// where that phase's count starts again when the line comes back to it (a streamed push
    /// reads the earlier run's bytes from its source again, `reading`, before it sends more).
    resume: Option<(LayerState, u64)>,
}

/// Everything known about a transfer.
#[derive(Debug, Clone)]
pub struct Board {
    /// The layers, in the order they were announced.
    pub layers: Vec<LayerLine>,
    /// When the transfer started.
    pub started: Instant,
    /// The operation (`push`, ...), once started.
    pub operation: Option<String>,
    /// Set when finished: how.
    pub finished: Option<Ending>,
    /// Recent (time, bytes moved) samples for the throughput.
    samples: VecDeque<(Instant, u64)>,
    /// Bytes delivered so far (see the module documentation).
    moved: u64,
    /// Bytes an earlier run had sent of the uploads this run resumed.
    resumed: u64,
}

impl LayerLine {
    fn new(id: &str, kind: LineKind, total: Option<u64>) -> Self {
        LayerLine {
            id: id.to_string(),
            name: id.to_string(),
            kind,
            state: LayerState::Waiting,
            done: 0,
            total,
            retry: None,
            resume: None,
        }
    }
}

/// How far back the throughput looks.
const WINDOW: Duration = Duration::from_secs(5);

impl Board {
    /// An empty board started at `now`.
    pub fn new(now: Instant) -> Self {
        Board {
            layers: Vec::new(),
            started: now,
            operation: None,
            finished: None,
            samples: VecDeque::new(),
            moved: 0,
            resumed: 0,
        }
    }

    /// Apply one event received at `now`. Returns whether it told something new: a line
    /// announced (or its size changed), a state changed, a resume, a retry, a message, the
    /// start or the finish (what plain and JSON modes print; a byte count returns false).
    pub fn apply(&mut self, event: &Event, now: Instant) -> bool {
        match event {
            Event::Start { operation, .. } => {
                self.operation = Some(operation.clone());
                self.started = now;
                true
            }
            Event::Layer { id, size } => self.announce(id, *size, LineKind::Layer),
            Event::Stream { id, size } => self.announce(id, *size, LineKind::Stream),
            Event::State { id, state } => {
                let line = self.line(id);
                let changed = line.state != *state;
                if changed && state.is_moving() && line.state != LayerState::Retrying {
                    // A new phase (exporting -> compressing -> pushing) counts its own bytes; a
                    // retry continues the phase it interrupted. A phase resumed from an
                    // earlier run starts again from what that run did, not from 0, or the
                    // earlier run's bytes would count as this run's.
                    line.done = match line.resume {
                        Some((phase, done)) if phase == *state => done,
                        _ => 0,
                    };
                }
                line.state = *state;
                if *state != LayerState::Retrying {
                    line.retry = None;
                }
                if *state == LayerState::Done
                    && let Some(total) = line.total
                {
                    line.done = total;
                }
                changed
            }
            Event::Progress { id, done, total } => {
                let line = self.line(id);
                let delta = done.saturating_sub(line.done);
                line.done = *done;
                if total.is_some() {
                    line.total = *total;
                }
                if !line.state.is_transfer() {
                    return false;
                }
                self.moved += delta;
                self.samples.push_back((now, self.moved));
                while self
                    .samples
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
                {
                    self.samples.pop_front();
                }
                false
            }
            Event::Resume { id, done } => {
                let line = self.line(id);
                let earlier = done.saturating_sub(line.done);
                line.done = *done;
                line.resume = Some((line.state, *done));
                self.resumed += earlier;
                true
            }
            Event::Retry {
                id,
                in_secs,
                reason,
                ..
            } => {
                let line = self.line(id);
                line.state = LayerState::Retrying;
                line.retry = Some((now + Duration::from_secs(*in_secs), reason.clone()));
                true
            }
            Event::Rename { from, to } => match self.find(from) {
                Some(line) => {
                    if !line.name.contains(':') {
                        line.name.clone_from(to);
                    }
                    line.id.clone_from(to);
                    true
                }
                None => false,
            },
            Event::Message { .. } => true,
            Event::Finish {
                ok, interrupted, ..
            } => {
                self.finished = Some(Ending::of(*ok, *interrupted));
                true
            }
        }
    }

    /// A line announced: new, or a known one's size updated. Whether that is news.
    fn announce(&mut self, id: &str, size: Option<u64>, kind: LineKind) -> bool {
        if let Some(line) = self.find(id) {
            let total = size.or(line.total);
            let resized = total != line.total;
            line.total = total;
            return resized;
        }
        self.layers.push(LayerLine::new(id, kind, size));
        true
    }

    fn find(&mut self, id: &str) -> Option<&mut LayerLine> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    /// The line `id`, made (as a layer) when an event names one never announced.
    fn line(&mut self, id: &str) -> &mut LayerLine {
        let index = match self.layers.iter().position(|l| l.id == id) {
            Some(i) => i,
            None => {
                self.layers.push(LayerLine::new(id, LineKind::Layer, None));
                self.layers.len() - 1
            }
        };
        &mut self.layers[index]
    }

    /// The line whose event name is `id`.
    pub fn get(&self, id: &str) -> Option<&LayerLine> {
        self.layers.iter().find(|l| l.id == id)
    }

    /// Whether any layer line is known (streams aside).
    pub fn has_layers(&self) -> bool {
        self.layers.iter().any(|l| l.kind == LineKind::Layer)
    }

    /// Layers finished well (done, skipped, mounted) / layers known; streams are not counted.
    pub fn counts(&self) -> (usize, usize) {
        let layers = self.layers.iter().filter(|l| l.kind == LineKind::Layer);
        let finished = layers
            .clone()
            .filter(|l| l.state.is_finished() && !l.state.is_cut_short())
            .count();
        (finished, layers.count())
    }

    /// Bytes delivered to the destination so far (see the module documentation).
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Bytes an earlier run had sent of the uploads this one resumed (not part of
    /// [`Board::moved`]).
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// Bytes of the layers with a known size, and how many of those are accounted for (of the
    /// streams when there is no layer line: a stream carries the same bytes as the layers).
    pub fn bytes(&self) -> (u64, u64) {
        let kind = match self.has_layers() {
            true => LineKind::Layer,
            false => LineKind::Stream,
        };
        let mut done = 0;
        let mut total = 0;
        for line in self.layers.iter().filter(|l| l.kind == kind) {
            if let Some(t) = line.total {
                total += t;
                done += if line.state.is_finished() && !line.state.is_cut_short() {
                    t
                } else if line.state.is_transfer() || line.state.is_cut_short() {
                    line.done.min(t)
                } else {
                    0
                };
            }
        }
        (done, total)
    }

    /// Bytes per second over the last few seconds (or since the start).
    pub fn throughput(&self, now: Instant) -> Option<f64> {
        let (first_t, first_b) = *self.samples.front()?;
        let (last_t, last_b) = *self.samples.back()?;
        let (t0, b0) = if now.duration_since(first_t) < WINDOW || self.samples.len() < 2 {
            (self.started, 0)
        } else {
            (first_t, first_b)
        };
        let secs = last_t.max(now).duration_since(t0).as_secs_f64();
        (secs > 0.2).then(|| last_b.saturating_sub(b0) as f64 / secs)
    }

    /// Time left at the current throughput, when it can be estimated.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let (done, total) = self.bytes();
        let rate = self.throughput(now)?;
        if rate < 1.0 || total == 0 || self.finished.is_some() {
            return None;
        }
        Some(Duration::from_secs_f64(
            total.saturating_sub(done) as f64 / rate,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(id: &str, size: u64) -> Event {
        Event::Layer {
            id: id.into(),
            size: Some(size),
        }
    }

    fn state(id: &str, state: LayerState) -> Event {
        Event::State {
            id: id.into(),
            state,
        }
    }

    #[test]
    fn counts_bytes_and_rate() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        assert!(b.apply(&layer("a", 1000), t0));
        assert!(b.apply(&layer("b", 3000), t0));
        assert!(
            !b.apply(&layer("a", 1000), t0),
            "re-announcing is not a change"
        );
        b.apply(&state("a", LayerState::Skipped), t0);
        assert!(b.apply(&state("b", LayerState::Pushing), t0));
        assert!(!b.apply(&state("b", LayerState::Pushing), t0));
        let t1 = t0 + Duration::from_secs(1);
        b.apply(
            &Event::Progress {
                id: "b".into(),
                done: 1000,
                total: Some(3000),
            },
            t1,
        );
        assert_eq!(b.counts(), (1, 2));
        assert_eq!(b.bytes(), (2000, 4000));
        let rate = b.throughput(t1).expect("rate");
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
        let eta = b.eta(t1).expect("eta");
        assert_eq!(eta.as_secs(), 2);
        let mut failed = b.clone();
        failed.apply(&state("b", LayerState::Failed), t1);
        assert_eq!(
            failed.bytes(),
            (2000, 4000),
            "a failed layer keeps what it moved"
        );
        assert_eq!(failed.counts(), (1, 2));
        b.apply(&state("b", LayerState::Done), t1);
        assert_eq!(b.bytes(), (4000, 4000));
        assert_eq!(b.counts(), (2, 2));
    }

    #[test]
    fn rename_keeps_the_line() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(&layer("diff", 10), t0);
        b.apply(&state("diff", LayerState::Compressing), t0);
        b.apply(
            &Event::Rename {
                from: "diff".into(),
                to: "blob".into(),
            },
            t0,
        );
        b.apply(&state("blob", LayerState::Pushing), t0);
        assert_eq!(b.layers.len(), 1);
        assert_eq!(b.layers[0].id, "blob");
        assert_eq!(b.layers[0].state, LayerState::Pushing);
    }

    fn progress(id: &str, done: u64) -> Event {
        Event::Progress {
            id: id.into(),
            done,
            total: None,
        }
    }

    #[test]
    fn streams_are_no_layers_and_carry_the_bytes_when_alone() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(
            &Event::Stream {
                id: "load".into(),
                size: None,
            },
            t0,
        );
        b.apply(&state("load", LayerState::Writing), t0);
        b.apply(&progress("load", 2_000), t0);
        b.apply(&state("load", LayerState::Done), t0);
        assert!(!b.has_layers());
        assert_eq!(b.counts(), (0, 0), "a load is no layer");
        assert_eq!(b.moved(), 2_000);
        // A daemon push: the export's line prepares, the layers deliver.
        let mut b = Board::new(t0);
        b.apply(
            &Event::Stream {
                id: "export".into(),
                size: Some(9_000),
            },
            t0,
        );
        b.apply(&state("export", LayerState::Exporting), t0);
        b.apply(&progress("export", 9_000), t0);
        b.apply(&layer("l", 4_000), t0);
        b.apply(&state("l", LayerState::Pushing), t0);
        b.apply(&progress("l", 4_000), t0);
        b.apply(&state("l", LayerState::Done), t0);
        b.apply(&state("export", LayerState::Done), t0);
        assert_eq!(b.counts(), (1, 1));
        assert_eq!(
            b.bytes(),
            (4_000, 4_000),
            "the export's size is not the layers'"
        );
        assert_eq!(b.moved(), 4_000);
    }

    #[test]
    fn a_resume_counts_what_an_earlier_run_sent_apart() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(&layer("a", 1_000), t0);
        b.apply(&state("a", LayerState::Pushing), t0);
        assert!(b.apply(
            &Event::Resume {
                id: "a".into(),
                done: 600
            },
            t0
        ));
        b.apply(&progress("a", 600), t0);
        b.apply(&progress("a", 1_000), t0);
        b.apply(&state("a", LayerState::Done), t0);
        assert_eq!((b.moved(), b.resumed()), (400, 600));
        // A fetch into a transit copy is preparation; the push delivers.
        b.apply(&layer("c", 500), t0);
        b.apply(&state("c", LayerState::Fetching), t0);
        b.apply(&progress("c", 500), t0);
        b.apply(&state("c", LayerState::Pushing), t0);
        b.apply(&progress("c", 450), t0);
        assert_eq!(b.moved(), 850);
    }

    /// A streamed push resumed at 600 reads those bytes from its source again (`reading`)
    /// before it pushes the rest: coming back to `pushing`, the line counts from 600, not 0.
    /// An upload that then starts over (its progress back to 0) counts every byte it sends.
    #[test]
    fn a_resumed_phase_left_and_taken_up_again_continues_from_the_resume() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(&layer("a", 1_000), t0);
        b.apply(&state("a", LayerState::Pushing), t0);
        b.apply(
            &Event::Resume {
                id: "a".into(),
                done: 600,
            },
            t0,
        );
        b.apply(&state("a", LayerState::Reading), t0);
        assert_eq!(b.bytes(), (0, 1_000), "reading delivers nothing");
        b.apply(&state("a", LayerState::Pushing), t0);
        b.apply(&progress("a", 800), t0);
        assert_eq!((b.moved(), b.resumed()), (200, 600));
        // The session is lost: the upload starts over at byte 0 and sends everything again.
        b.apply(&progress("a", 0), t0);
        b.apply(&progress("a", 1_000), t0);
        assert_eq!((b.moved(), b.resumed()), (1_200, 600));
    }

    #[test]
    fn a_line_keeps_its_first_digest_as_its_name() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        let rename = |from: &str, to: &str| Event::Rename {
            from: from.into(),
            to: to.into(),
        };
        b.apply(&layer("layer 1", 10), t0);
        assert!(b.apply(&rename("layer 1", "sha256:diff"), t0));
        b.apply(&rename("sha256:diff", "sha256:blob"), t0);
        assert!(!b.apply(&rename("sha256:gone", "sha256:x"), t0));
        let line = b.get("sha256:blob").expect("renamed");
        assert_eq!(
            (line.name.as_str(), line.kind),
            ("sha256:diff", LineKind::Layer)
        );
        assert!(!b.apply(&layer("sha256:blob", 10), t0), "not news");
        assert!(b.apply(&layer("sha256:blob", 7), t0), "a new size is news");
    }

    #[test]
    fn new_phase_restarts_bytes_and_retry_clears() {
        let t0 = Instant::now();
        let mut b = Board::new(t0);
        b.apply(&state("x", LayerState::Compressing), t0);
        b.apply(
            &Event::Progress {
                id: "x".into(),
                done: 50,
                total: Some(100),
            },
            t0,
        );
        b.apply(
            &Event::Retry {
                id: "x".into(),
                in_secs: 3,
                reason: "502".into(),
                attempt: 2,
            },
            t0,
        );
        assert_eq!(b.layers[0].state, LayerState::Retrying);
        assert!(b.layers[0].retry.is_some());
        b.apply(&state("x", LayerState::Compressing), t0);
        assert_eq!(b.layers[0].done, 50, "a retry continues its phase");
        assert!(b.layers[0].retry.is_none());
        b.apply(&state("x", LayerState::Pushing), t0);
        assert_eq!(b.layers[0].done, 0, "a new phase starts from zero");
    }
}
