//! `cargo xtask bench`: hoist against the tools people use today, as whole processes.
//!
//! Every scenario prepares one input (a cached synthetic image from `hoist_testkit::synth`, and
//! whatever local registry/proxy/daemon it needs from the testkit), then runs hoist and each
//! peer in turn for `--runs` rounds after `--warmup` rounds, odd rounds in reverse (A B, B A,
//! A B ...; A B C D, D C B A ...), so no tool always runs right after the same other one (a
//! 4 GiB `docker save` slowed whatever came next), each run into a
//! fresh empty output directory with a fresh empty hoist cache (`HOIST_CACHE_DIR`), so no run
//! profits from an earlier one. Each run is measured from the outside with `wait4`, through a
//! small launcher process ([`launcher`]) so that xtask's own memory is not in the command's peak:
//! wall time, user+sys CPU and peak RSS (`ru_maxrss`; for a shell pipeline the largest stage;
//! work done inside a daemon such as dockerd is not counted). The report gives the launcher's
//! floor, the peak RSS of `true` measured the same way. The report (medians, min-max, hoist/peer
//! ratios, PASS/MISS against targets) is printed and written to `target/bench/results.md` and
//! `target/bench/results.json`.
//!
//! A missing peer or server fails the bench before anything runs (each scenario declares the
//! programs it needs), naming the package to install; a peer that runs but fails is reported
//! as failed, never dropped. The report is written after every scenario, so a bench that stops
//! early (an error, Ctrl-C) keeps what it measured and says where and why it stopped.
//!
//! SVG charts (`time.svg`: median wall time per scenario and tool; `rss.svg`: peak RSS versus
//! image size from the `scale` scenario) are drawn next to the report with plotters.
//!
//! Seam: scenarios live in [`scenarios::SCENARIOS`] (one `prepare` function each).

mod charts;
mod failure;
mod host;
pub(crate) mod launcher;
pub(crate) mod measure;
mod report;
mod scenarios;

use anyhow::{Context, bail};
use measure::{Launcher, Sample, settle};
use report::{ContenderResult, Report, ScenarioResult, markdown, ratio_verdict, rss_verdict};
use scenarios::{Ctx, SCENARIOS, Scenario, expand};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USAGE: &str =
    "usage: cargo xtask bench [--scenario NAME]... [--skip NAME]... [--runs N] [--warmup N]
                         [--size SIZE] [--timeout SECS] [--hoist PATH] [--out DIR] [--list]
                         [--replot]

  --scenario NAME  run only this scenario (repeatable; default: all)
  --skip NAME      run every selected scenario but this one (repeatable); `--skip scale
                   --skip export-scale` drops the 4x-size points: ~11 min of runs, and ~8 min
                   generating 4 GiB inputs the first time (docs/benchmarks.md has the time per
                   scenario)
  --runs N         measured runs per contender (default 3)
  --warmup N       unmeasured runs per contender first (default 1)
  --size SIZE      image size, e.g. 1GiB, 512MiB, 4G (default 1GiB)
  --timeout SECS   kill a run after this long and count it failed (default 1800)
  --hoist PATH     the hoist binary (default: cargo build --release -p hoist)
  --out DIR        report directory (default target/bench)
  --list           list scenarios and exit
  --replot         rewrite results.md and the charts from DIR/results.json (--out) without
                   running anything";

#[derive(Debug)]
struct Args {
    scenarios: Vec<String>,
    skip: Vec<String>,
    runs: usize,
    warmup: usize,
    size: u64,
    timeout: Duration,
    hoist: Option<PathBuf>,
    out: Option<PathBuf>,
    list: bool,
    replot: bool,
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        scenarios: Vec::new(),
        skip: Vec::new(),
        runs: 3,
        warmup: 1,
        size: 1 << 30,
        timeout: Duration::from_secs(1800),
        hoist: None,
        out: None,
        list: false,
        replot: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--scenario" => a.scenarios.push(value("--scenario")?),
            "--skip" => a.skip.push(value("--skip")?),
            "--runs" => a.runs = value("--runs")?.parse().context("--runs: not a number")?,
            "--warmup" => {
                a.warmup = value("--warmup")?
                    .parse()
                    .context("--warmup: not a number")?
            }
            "--size" => a.size = parse_size(&value("--size")?)?,
            "--timeout" => {
                a.timeout = Duration::from_secs(
                    value("--timeout")?
                        .parse()
                        .context("--timeout: not a number of seconds")?,
                );
            }
            "--hoist" => a.hoist = Some(value("--hoist")?.into()),
            "--out" => a.out = Some(value("--out")?.into()),
            "--list" => a.list = true,
            "--replot" => a.replot = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    for s in a.scenarios.iter().chain(&a.skip) {
        if !SCENARIOS.iter().any(|sc| sc.name == s) {
            bail!("unknown scenario {s:?}; try --list");
        }
    }
    Ok(a)
}

/// `1GiB`, `512MiB`, `4G`, `100M`, `65536` -> bytes (binary units).
pub(crate) fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("bad size unit {other:?} in {s:?}"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("size {s:?} too large"))
}

/// Entry point for `cargo xtask bench ARGS`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = parse_args(args)?;
    if args.list {
        for s in SCENARIOS {
            println!("{:<16} {}", s.name, s.about);
        }
        return Ok(());
    }
    let root = crate::sys::workspace_root();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/bench"));
    std::fs::create_dir_all(&out_dir)?;
    if args.replot {
        let json = out_dir.join("results.json");
        let report: Report = serde_json::from_slice(
            &std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?,
        )
        .with_context(|| format!("parsing {}", json.display()))?;
        std::fs::write(out_dir.join("results.md"), markdown(&report))?;
        let charts = charts::draw(&report, &out_dir)?;
        eprintln!(
            "bench: rewrote results.md and {} chart(s) in {}",
            charts.len(),
            out_dir.display()
        );
        return Ok(());
    }
    let selected: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
        .filter(|s| !args.skip.iter().any(|n| n == s.name))
        .collect();
    let missing = scenarios::missing_needs(
        &selected,
        |exe| hoist_testkit::find_tool(exe).is_some(),
        crate::sys::is_root(),
    );
    if !missing.is_empty() {
        bail!(
            "the selected scenarios need what this machine lacks (nothing was run); install it, \
             or --skip those scenarios:\n  {}",
            missing.join("\n  ")
        );
    }
    crate::interrupt::install("bench")?;
    let started = std::time::Instant::now();
    let hoist = match &args.hoist {
        Some(p) => p.clone(),
        None => crate::sys::build_release_binary("hoist", "hoist")?,
    };
    let launcher = Launcher::this_binary()?;
    let rss_floor_kib = launcher.rss_floor_kib()?;
    eprintln!(
        "bench: RSS floor of the launcher (`true` measured through it): {:.1} MiB",
        rss_floor_kib as f64 / 1024.0
    );
    let ctx = Ctx {
        hoist,
        size: args.size,
        cache: out_dir.join("cache"),
    };
    eprintln!(
        "bench: {} scenario(s) at {} MiB, {} warm-up + {} measured run(s) per contender",
        selected.len(),
        args.size >> 20,
        args.warmup,
        args.runs
    );

    let mut report = Report {
        date: shell_line("date -u +%Y-%m-%dT%H:%M:%SZ"),
        machine: format!(
            "{}, {} CPUs, {}",
            shell_line("uname -srm"),
            shell_line("nproc"),
            shell_line("free -g | awk '/Mem:/ {print $2 \" GiB RAM\"}'")
        ),
        host_notes: Vec::new(),
        rss_floor_kib: Some(rss_floor_kib),
        scenarios: Vec::new(),
        elapsed_s: 0.0,
        stopped: None,
    };
    for sc in selected {
        let result = crate::interrupt::check()
            .and_then(|()| scenario(sc, &ctx, &launcher, &args, &out_dir, started.elapsed()));
        report.elapsed_s = started.elapsed().as_secs_f64();
        match result {
            Ok(result) => report.scenarios.push(result),
            Err(e) => {
                // Keep what was measured: the report so far, saying where and why it stopped.
                report.stopped = Some(format!("in scenario {}: {e:#}", sc.name));
                write_report(&mut report, &out_dir, false)?;
                return Err(e.context(format!(
                    "the results so far are in {}",
                    out_dir.join("results.md").display()
                )));
            }
        }
        // After every scenario, so a later failure leaves this one's results on disk.
        write_report(&mut report, &out_dir, false)?;
    }
    write_report(&mut report, &out_dir, true)?;
    eprintln!(
        "bench: wrote {}, results.json and the charts; total elapsed {:.0} s ({:.1} min)",
        out_dir.join("results.md").display(),
        report.elapsed_s,
        report.elapsed_s / 60.0
    );
    let hoist_failed = report.hoist_failures();
    if !hoist_failed.is_empty() {
        bail!("hoist failed:\n  {}", hoist_failed.join("\n  "));
    }
    Ok(())
}

/// Prepare and run one scenario, and check its targets; `so_far` is the bench's time before it.
fn scenario(
    sc: &Scenario,
    ctx: &Ctx,
    launcher: &Launcher,
    args: &Args,
    out_dir: &Path,
    so_far: Duration,
) -> anyhow::Result<ScenarioResult> {
    eprintln!("bench: scenario {} — {}", sc.name, sc.about);
    let start = std::time::Instant::now();
    let mut prepared = (sc.prepare)(ctx).with_context(|| format!("preparing {}", sc.name))?;
    check_tools(sc.name, &prepared.contenders)?;
    let mut result = run_scenario(sc.name, sc.about, &mut prepared, launcher, args, out_dir)?;
    for t in &prepared.targets {
        result.verdicts.push(ratio_verdict(&result, t));
    }
    result.verdicts.extend(rss_verdict(&result));
    drop(prepared);
    result.elapsed_s = start.elapsed().as_secs_f64();
    eprintln!(
        "bench: scenario {} took {:.0} s ({:.0} s so far)",
        sc.name,
        result.elapsed_s,
        (so_far + start.elapsed()).as_secs_f64()
    );
    Ok(result)
}

/// Write `results.md`, `results.json` and the charts into `out_dir` (the host notes read now),
/// and print the Markdown when `print`.
fn write_report(report: &mut Report, out_dir: &Path, print: bool) -> anyhow::Result<()> {
    let damon = Path::new(host::DAMON_SYSFS);
    host::refresh_damon_stats(damon);
    report.host_notes = host::proactive_reclaim(damon).into_iter().collect();
    let md = markdown(report);
    if print {
        print!("{md}");
    }
    std::fs::write(out_dir.join("results.md"), &md)?;
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_vec_pretty(report)?,
    )?;
    charts::draw(report, out_dir)?;
    Ok(())
}

/// Fail loudly, naming what to install, when any contender's program is missing.
fn check_tools(scenario: &str, contenders: &[scenarios::Contender]) -> anyhow::Result<()> {
    let missing: Vec<String> = contenders
        .iter()
        .filter(|c| hoist_testkit::find_tool(&c.exe).is_none())
        .map(|c| format!("  {} ({}): {}", c.name, c.exe, c.install))
        .collect();
    if !missing.is_empty() {
        bail!(
            "scenario {scenario}: missing programs, install them and rerun:\n{}",
            missing.join("\n")
        );
    }
    Ok(())
}

fn run_scenario(
    name: &str,
    about: &str,
    p: &mut scenarios::Prepared,
    launcher: &Launcher,
    args: &Args,
    out_dir: &Path,
) -> anyhow::Result<ScenarioResult> {
    let scratch = out_dir.join("scratch");
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut results: Vec<ContenderResult> = p
        .contenders
        .iter()
        .map(|c| ContenderResult {
            name: c.name.clone(),
            is_hoist: c.is_hoist,
            command: c.argv.join(" "),
            samples: Vec::new(),
            failure_reasons: Vec::new(),
            bytes: c.bytes.unwrap_or(p.input_bytes),
            log: logs
                .join(format!("{name}-{}.log", c.name.replace([' ', '/'], "_")))
                .to_string_lossy()
                .into_owned(),
        })
        .collect();
    for r in &results {
        let _ = std::fs::remove_file(&r.log);
    }
    for round in 0..args.warmup + args.runs {
        let warm = round < args.warmup;
        for i in round_order(p.contenders.len(), round) {
            let (c, r) = (&p.contenders[i], &mut results[i]);
            if let Some(reset) = p.before_each.as_mut() {
                reset()?;
            }
            let servers = p.servers.as_ref();
            let (s, reason) = run_once(
                launcher,
                c,
                servers,
                &scratch,
                Path::new(&r.log),
                args.timeout,
            )?;
            let server_cpu = match (servers, s.server_cpu_s) {
                (Some(servers), Some(cpu)) => format!(" {cpu:>6.2}s {} cpu", servers.label),
                _ => String::new(),
            };
            eprintln!(
                "bench: {name} {} {:<12} {:>7.2}s wall {:>7.2}s cpu {:>8.1} MiB{server_cpu}{}",
                if warm { "warm-up" } else { "run    " },
                c.name,
                s.wall_s,
                s.cpu_s(),
                s.max_rss_kib as f64 / 1024.0,
                match (s.ok, s.timed_out) {
                    (true, _) => "",
                    (false, true) => "  TIMED OUT",
                    (false, false) => "  FAILED",
                }
            );
            if let Some(reason) = &reason {
                eprintln!("bench: {name} {}: {reason}", c.name);
            }
            if !warm {
                r.samples.push(s);
                r.failure_reasons.extend(reason);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ScenarioResult {
        name: name.to_string(),
        about: about.to_string(),
        input_bytes: p.input_bytes,
        runs: args.runs,
        servers: p.servers.as_ref().map(|s| s.label.to_string()),
        contenders: results,
        verdicts: Vec::new(),
        elapsed_s: 0.0,
    })
}

/// The order of `n` contenders in round `round`: as listed in even rounds, reversed in odd
/// ones (A B, B A, A B: the classic ABBA counterbalancing), so no tool always runs right after
/// the same other one.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// One measured run into a fresh empty output directory, with a cold hoist cache, and the CPU
/// time `servers` spent meanwhile; for a failed run, also why (from what it wrote to its log).
fn run_once(
    launcher: &Launcher,
    c: &scenarios::Contender,
    servers: Option<&scenarios::Servers>,
    scratch: &Path,
    log: &Path,
    limit: Duration,
) -> anyhow::Result<(Sample, Option<String>)> {
    let out = scratch.join("out");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cleaning {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    // Every run starts cold: hoist keeps daemon exports and compressed layers in its cache, so a
    // shared cache would let later runs skip the very work the peers have to do each time.
    let cache = scratch.join("cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).with_context(|| format!("cleaning {}", cache.display()))?;
    }
    std::fs::create_dir_all(&cache)?;
    let argv = expand(&c.argv, &out);
    let (prog, rest) = argv.split_first().context("empty command line")?;
    let mut cmd = Command::new(prog);
    cmd.args(rest);
    cmd.env("HOIST_CACHE_DIR", &cache);
    cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)?;
    writeln!(f, "$ {}", argv.join(" "))?;
    let log_start = f.metadata()?.len();
    settle();
    let pids = servers.map(|s| (s.pids)()).unwrap_or_default();
    let before = measure::processes_cpu_s(&pids);
    let mut sample = launcher.measure(&cmd, Some(log), limit)?;
    if servers.is_some() {
        let after = measure::processes_cpu_s(&pids);
        sample.server_cpu_s = before.zip(after).map(|(b, a)| a - b);
    }
    if sample.ok && !c.verify.check(&out) {
        writeln!(
            f,
            "bench: exit 0 but {:?} does not hold: counted as failed",
            c.verify
        )?;
        sample.ok = false;
    }
    if sample.ok {
        return Ok((sample, None));
    }
    let reason = if sample.timed_out {
        format!("timed out after {} s", limit.as_secs())
    } else {
        failure::reason(&log_tail(log, log_start)?)
    };
    Ok((sample, Some(reason)))
}

/// What was appended to `log` after byte `start` (its last 64 KiB at most).
fn log_tail(log: &Path, start: u64) -> anyhow::Result<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(log)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(start.max(len.saturating_sub(64 << 10))))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn shell_line(script: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_rounds_run_in_reverse_so_predecessors_change() {
        assert_eq!(round_order(2, 0), [0, 1]);
        assert_eq!(round_order(2, 1), [1, 0]);
        assert_eq!(round_order(1, 7), [0]);
        // export-scale: hoist, docker save, hoist 4x, docker save 4x, over three rounds.
        let runs: Vec<usize> = (0..3).flat_map(|r| round_order(4, r)).collect();
        assert_eq!(runs, [0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3]);
        // hoist 1x no longer always follows docker save 4x.
        let after = |who: usize| -> Vec<usize> {
            runs.windows(2)
                .filter(|w| w[1] == who)
                .map(|w| w[0])
                .collect()
        };
        assert_eq!(after(0), [1, 0]);
        assert!(!after(0).contains(&3));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").expect("size"), 1 << 30);
        assert_eq!(parse_size("512MiB").expect("size"), 512 << 20);
        assert_eq!(parse_size("4G").expect("size"), 4 << 30);
        assert_eq!(parse_size("1000").expect("size"), 1000);
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn args() {
        let a: Vec<String> = ["--scenario", "spool", "--runs", "5", "--size", "64MiB"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let p = parse_args(&a).expect("args");
        assert_eq!((p.runs, p.size, p.scenarios.len()), (5, 64 << 20, 1));
        assert!(parse_args(&["--scenario".into(), "nope".into()]).is_err());
        assert!(parse_args(&["--skip".into(), "nope".into()]).is_err());
        let p = parse_args(&["--skip".into(), "scale".into()]).expect("args");
        assert_eq!(p.skip, ["scale"]);
        assert!(parse_args(&["--runs".into(), "0".into()]).is_err());
    }
}
