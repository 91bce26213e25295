//! `hoist debug-progress`: a simulated push that drives the progress display through every state
//! (skipped, mounted, exporting, compressing, pushing, a retry, done), for looking at the display
//! in a real terminal. It moves no data.

use std::time::Duration;

use anyhow::bail;

use crate::progress::{Event, LayerState, Reporter};

/// Simulation parameters.
#[derive(Debug, Clone, Copy)]
pub struct Simulation {
    /// Layers.
    pub layers: usize,
    /// Bytes per layer.
    pub size: u64,
    /// Bytes per second per layer.
    pub speed: u64,
    /// Layers moving at once.
    pub concurrency: usize,
    /// Bytes per simulated upload request.
    pub chunk: u64,
    /// End with a failure.
    pub fail: bool,
}

const TICK: Duration = Duration::from_millis(50);

/// Run the simulation, reporting to `reporter`.
///
/// # Errors
/// A simulated registry failure when `fail` is set.
pub fn run(sim: Simulation, reporter: &Reporter) -> anyhow::Result<()> {
    reporter.send(Event::Start {
        operation: "push".into(),
        source: "docker-daemon:simulated:latest".into(),
        destination: "docker://localhost:5000/simulated:latest".into(),
    });
    let ids: Vec<String> = (0..sim.layers)
        .map(|i| {
            format!(
                "sha256:{:012x}",
                0x5eed_0000_0000u64 + i as u64 * 0x1111_1111
            )
        })
        .collect();
    for id in &ids {
        reporter.send(Event::Layer {
            id: id.clone(),
            size: Some(sim.size),
        });
    }
    let queue = std::sync::Mutex::new((0..ids.len()).collect::<std::collections::VecDeque<_>>());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..sim.concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                    let Some(index) = next else { break };
                    if !layer(sim, index, &ids[index], reporter) {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let ok = !failed.load(std::sync::atomic::Ordering::Relaxed);
    let failure = "simulated push failed: the registry kept answering 503 Service Unavailable";
    reporter.send(Event::Finish {
        ok,
        interrupted: false,
        error: (!ok).then(|| failure.to_string()),
        causes: Vec::new(),
    });
    if !ok {
        bail!("{failure}");
    }
    Ok(())
}

/// One layer's life; false when it failed.
fn layer(sim: Simulation, index: usize, id: &str, reporter: &Reporter) -> bool {
    match index {
        0 => {
            std::thread::sleep(TICK * 4);
            reporter.state(id, LayerState::Skipped);
            return true;
        }
        1 if sim.layers > 3 => {
            std::thread::sleep(TICK * 6);
            reporter.state(id, LayerState::Mounted);
            return true;
        }
        _ => {}
    }
    let last = index + 1 == sim.layers;
    if index == 2 {
        reporter.send(Event::Message {
            text: format!(
                "note: the proxy refused a {} request (413 Request Entity Too Large); hoist now \
                 sends {} chunks",
                crate::size::human(sim.chunk * 2),
                crate::size::human(sim.chunk)
            ),
        });
    }
    // Export and compress run faster than the upload.
    phase(id, LayerState::Exporting, sim.size, sim.speed * 4, reporter);
    phase(
        id,
        LayerState::Compressing,
        sim.size,
        sim.speed * 2,
        reporter,
    );
    reporter.state(id, LayerState::Pushing);
    let mut done = 0;
    let mut retried = false;
    let step = (sim.speed as f64 * TICK.as_secs_f64()) as u64;
    while done < sim.size {
        std::thread::sleep(TICK);
        done = (done + step.max(1)).min(sim.size);
        reporter.send(Event::Progress {
            id: id.to_string(),
            done,
            total: Some(sim.size),
        });
        if index == 2 && !retried && done >= sim.size / 2 {
            retried = true;
            // The chunk in flight is lost; the registry's Range says where to resume.
            let resume = done - done % sim.chunk.max(1);
            reporter.send(Event::Retry {
                id: id.to_string(),
                in_secs: 2,
                reason: "502 Bad Gateway from the proxy".into(),
                attempt: 2,
            });
            std::thread::sleep(Duration::from_secs(2));
            reporter.state(id, LayerState::Pushing);
            done = resume;
        }
        if last && sim.fail && done >= sim.size / 3 {
            reporter.state(id, LayerState::Failed);
            return false;
        }
    }
    reporter.state(id, LayerState::Done);
    true
}

fn phase(id: &str, state: LayerState, size: u64, speed: u64, reporter: &Reporter) {
    reporter.state(id, state);
    let step = (speed as f64 * TICK.as_secs_f64()) as u64;
    let mut done = 0;
    while done < size {
        std::thread::sleep(TICK);
        done = (done + step.max(1)).min(size);
        reporter.send(Event::Progress {
            id: id.to_string(),
            done,
            total: Some(size),
        });
    }
}
