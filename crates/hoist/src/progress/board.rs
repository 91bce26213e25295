//! The state every renderer draws from: one entry per layer plus totals, updated by events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::{Event, LayerState};

/// One layer's line.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerLine {
    /// Its name.
    pub id: String,
    /// Where it stands.
    pub state: LayerState,
    /// Bytes done in the current state.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// When a pending retry fires and why.
    pub retry: Option<(Instant, String)>,
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
    /// Set when finished: whether it succeeded.
    pub finished: Option<bool>,
    /// Recent (time, bytes moved) samples for the throughput.
    samples: VecDeque<(Instant, u64)>,
    /// Bytes moved so far, over all layers and states.
    moved: u64,
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
        }
    }

    /// Apply one event received at `now`. Returns whether a layer changed state (what plain mode
    /// prints).
    pub fn apply(&mut self, event: &Event, now: Instant) -> bool {
        match event {
            Event::Start { operation, .. } => {
                self.operation = Some(operation.clone());
                self.started = now;
                true
            }
            Event::Layer { id, size } => {
                if let Some(line) = self.find(id) {
                    line.total = size.or(line.total);
                    false
                } else {
                    self.layers.push(LayerLine {
                        id: id.clone(),
                        state: LayerState::Waiting,
                        done: 0,
                        total: *size,
                        retry: None,
                    });
                    true
                }
            }
            Event::State { id, state } => {
                let line = self.line(id);
                let changed = line.state != *state;
                if changed && state.is_moving() && line.state != LayerState::Retrying {
                    // A new phase (exporting -> compressing -> pushing) counts its own bytes; a
                    // retry continues the phase it interrupted.
                    line.done = 0;
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
            Event::Rename { from, to } => {
                if let Some(line) = self.find(from) {
                    line.id.clone_from(to);
                }
                false
            }
            Event::Message { .. } => true,
            Event::Finish { ok } => {
                self.finished = Some(*ok);
                true
            }
        }
    }

    fn find(&mut self, id: &str) -> Option<&mut LayerLine> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    fn line(&mut self, id: &str) -> &mut LayerLine {
        let index = match self.layers.iter().position(|l| l.id == id) {
            Some(i) => i,
            None => {
                self.layers.push(LayerLine {
                    id: id.to_string(),
                    state: LayerState::Waiting,
                    done: 0,
                    total: None,
                    retry: None,
                });
                self.layers.len() - 1
            }
        };
        &mut self.layers[index]
    }

    /// Layers finished well (done, skipped, mounted) / layers known.
    pub fn counts(&self) -> (usize, usize) {
        let finished = self
            .layers
            .iter()
            .filter(|l| l.state.is_finished() && !l.state.is_cut_short())
            .count();
        (finished, self.layers.len())
    }

    /// Bytes transferred so far over all layers.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Bytes of the layers with a known size, and how many of those are accounted for.
    pub fn bytes(&self) -> (u64, u64) {
        let mut done = 0;
        let mut total = 0;
        for line in &self.layers {
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
