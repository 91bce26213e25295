//! Export images from a daemon into a docker-archive file, showing progress and peak memory.
//!
//! `cargo run -p hoist-docker --example export -- [--host ADDR] OUT.tar IMAGE...`

use std::time::Instant;

use hoist_docker::{ConnectOptions, Daemon, ExportOptions, Progress};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = ConnectOptions::new();
    if args.first().is_some_and(|a| a == "--host") && args.len() > 1 {
        options = options.host(args[1].clone());
        args.drain(..2);
    }
    if args.len() < 2 {
        eprintln!("usage: export [--host ADDR] OUT.tar IMAGE...");
        std::process::exit(2);
    }
    let out = args.remove(0);
    let daemon = Daemon::connect(options).await?;
    eprintln!(
        "daemon {} (API {})",
        daemon.version().version,
        daemon.api_version()
    );
    let started = Instant::now();
    let mut last_report = Instant::now();
    let file = std::fs::File::create(&out)?;
    let (_file, bytes) = daemon
        .export_archive(&args, &ExportOptions::new(), file, |p| {
            let now = Instant::now();
            let report = matches!(p, Progress::Done { .. })
                || now.duration_since(last_report).as_secs_f64() >= 1.0;
            if report {
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
        "wrote {bytes} bytes to {out} in {:.2}s; peak RSS {}",
        started.elapsed().as_secs_f64(),
        peak.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}
