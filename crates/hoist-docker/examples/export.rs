//! Export images from a daemon into a docker-archive file, showing progress and peak memory.
//!
//! `cargo run -p hoist-docker --example export -- [--host ADDR] [--layout] OUT IMAGE...`
//!
//! With `--layout`, OUT is an OCI layout directory filled by hoist-oci's spooler; otherwise
//! OUT is a docker-archive file.

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
    let into_layout = args.first().is_some_and(|a| a == "--layout");
    if into_layout {
        args.remove(0);
    }
    if args.len() < 2 {
        eprintln!("usage: export [--host ADDR] [--layout] OUT IMAGE...");
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
    let report = |p: Progress| {
        let now = Instant::now();
        if matches!(p, Progress::Done { .. })
            || now.duration_since(last_report).as_secs_f64() >= 1.0
        {
            last_report = now;
            eprintln!("{:>6.1}s {p:?}", started.elapsed().as_secs_f64());
        }
    };
    let bytes = if into_layout {
        let layout = hoist_oci::Layout::open_or_create(&out)?;
        let images = daemon
            .export(&args, &layout, &ExportOptions::new(), report)
            .await?;
        for image in &images {
            eprintln!("{:?} -> {}", image.tags, image.manifest.digest);
        }
        images.len() as u64
    } else {
        let file = std::fs::File::create(&out)?;
        daemon
            .export_archive(&args, &ExportOptions::new(), file, report)
            .await?
            .1
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ?");
    eprintln!(
        "wrote {bytes} {} to {out} in {:.2}s; peak RSS {}",
        if into_layout { "images" } else { "bytes" },
        started.elapsed().as_secs_f64(),
        peak.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}
