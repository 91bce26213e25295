//! Load an image from an OCI layout into a daemon, showing progress and peak memory.
//!
//! `cargo run -p hoist-docker --example load -- [--host ADDR] LAYOUT LAYOUT-TAG TARGET-TAG`

use std::time::Instant;

use hoist_docker::{ConnectOptions, Daemon, Progress};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = ConnectOptions::new();
    if args.first().is_some_and(|a| a == "--host") && args.len() > 1 {
        options = options.host(args[1].clone());
        args.drain(..2);
    }
    let [layout_dir, layout_tag, target] = args.as_slice() else {
        eprintln!("usage: load [--host ADDR] LAYOUT LAYOUT-TAG TARGET-TAG");
        std::process::exit(2);
    };
    let daemon = Daemon::connect(options).await?;
    let layout = hoist_oci::Layout::open(layout_dir)?;
    let manifest = layout.resolve(Some(layout_tag))?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let info = daemon
        .load(&layout, &manifest, target, |p: Progress| {
            let now = Instant::now();
            if matches!(p, Progress::Done { .. })
                || now.duration_since(last_report).as_secs_f64() >= 1.0
            {
                last_report = now;
                eprintln!("{:>6.1}s {p:?}", started.elapsed().as_secs_f64());
            }
        })
        .await?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ?");
    eprintln!(
        "loaded {target} = {} ({} layers) in {:.2}s; peak RSS {}",
        info.id,
        info.diff_ids.len(),
        started.elapsed().as_secs_f64(),
        peak.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}
