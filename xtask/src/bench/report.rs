//! Turning samples into the report: medians, min-max, hoist/peer ratios, targets, Markdown, JSON.

use super::measure::{Sample, median, min_max};
use super::scenarios::{Metric, Target};
use serde::Serialize;
use std::fmt::Write as _;

/// Largest acceptable hoist peak RSS (from the issues), in KiB.
pub const HOIST_RSS_LIMIT_KIB: u64 = 16 * 1024;

/// All runs of one contender in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ContenderResult {
    /// Contender name.
    pub name: String,
    /// Whether this is hoist.
    pub is_hoist: bool,
    /// The command line (with a placeholder for the output dir).
    pub command: String,
    /// Measured runs (warm-up excluded), failed ones included with `ok: false`.
    pub samples: Vec<Sample>,
    /// Where the contender's stdout/stderr went.
    pub log: String,
    /// Bytes of image this contender moved per run.
    pub bytes: u64,
}

impl ContenderResult {
    fn good(&self) -> Vec<Sample> {
        self.samples.iter().copied().filter(|s| s.ok).collect()
    }

    /// Number of failed runs.
    pub fn failures(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// Median wall seconds over successful runs (NaN when none succeeded).
    pub fn wall(&self) -> f64 {
        median(&self.good().iter().map(|s| s.wall_s).collect::<Vec<_>>())
    }

    /// Median peak RSS in KiB over successful runs.
    pub fn rss_kib(&self) -> f64 {
        median(
            &self
                .good()
                .iter()
                .map(|s| s.max_rss_kib as f64)
                .collect::<Vec<_>>(),
        )
    }

    fn cpu(&self) -> f64 {
        median(&self.good().iter().map(Sample::cpu_s).collect::<Vec<_>>())
    }

    fn wall_range(&self) -> (f64, f64) {
        min_max(&self.good().iter().map(|s| s.wall_s).collect::<Vec<_>>())
    }
}

/// One PASS/MISS line.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What was checked.
    pub what: String,
    /// Measured value.
    pub value: f64,
    /// The limit.
    pub limit: f64,
    /// Whether it passed (false also when it could not be measured).
    pub pass: bool,
}

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What it does.
    pub about: String,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Measured runs per contender.
    pub runs: usize,
    /// hoist first, then peers.
    pub contenders: Vec<ContenderResult>,
    /// Targets checked.
    pub verdicts: Vec<Verdict>,
}

impl ScenarioResult {
    /// hoist's result, when the scenario has one.
    pub fn hoist(&self) -> Option<&ContenderResult> {
        self.contenders.iter().find(|c| c.is_hoist)
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When (UTC) and where it ran.
    pub date: String,
    /// `uname -srm`, CPU count and memory.
    pub machine: String,
    /// Every scenario run.
    pub scenarios: Vec<ScenarioResult>,
}

/// Check a ratio target between two contenders of a scenario (NaN, and so MISS, when either
/// is missing or never succeeded).
pub fn ratio_verdict(s: &ScenarioResult, t: &Target) -> Verdict {
    let find = |n: &str| s.contenders.iter().find(|c| c.name == n);
    let (value, what) = match t.metric {
        Metric::Wall => (
            match (find(&t.of), find(&t.over)) {
                (Some(a), Some(b)) => a.wall() / b.wall(),
                _ => f64::NAN,
            },
            "wall time",
        ),
        Metric::Rss => (
            match (find(&t.of), find(&t.over)) {
                (Some(a), Some(b)) => a.rss_kib() / b.rss_kib(),
                _ => f64::NAN,
            },
            "peak RSS",
        ),
    };
    Verdict {
        what: format!("{}: {}/{} {what}", s.name, t.of, t.over),
        value,
        limit: t.max_ratio,
        pass: value <= t.max_ratio,
    }
}

/// Check hoist's peak RSS against [`HOIST_RSS_LIMIT_KIB`].
pub fn rss_verdict(s: &ScenarioResult) -> Option<Verdict> {
    let h = s.hoist()?;
    let value = h.rss_kib() / 1024.0;
    let limit = HOIST_RSS_LIMIT_KIB as f64 / 1024.0;
    Some(Verdict {
        what: format!("{}: hoist peak RSS (MiB)", s.name),
        value,
        limit,
        pass: value <= limit,
    })
}

fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "-".into()
    }
}

/// The Markdown report: one table per scenario plus the verdicts.
pub fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# hoist bench\n\n{} on {}\n", r.date, r.machine);
    for s in &r.scenarios {
        let _ = writeln!(
            md,
            "## {}\n\n{} — input {} MiB, {} runs each, alternated after a warm-up.\n",
            s.name,
            s.about,
            s.input_bytes >> 20,
            s.runs
        );
        md.push_str(
            "| tool | wall s (median) | wall min-max | CPU s | peak RSS MiB | MB/s | \
             hoist/tool wall | hoist/tool RSS | failed |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let hoist = s.hoist();
        for c in &s.contenders {
            let (lo, hi) = c.wall_range();
            let range = if lo.is_finite() {
                format!("{}-{}", num(lo, 2), num(hi, 2))
            } else {
                "-".into()
            };
            let mbps = c.bytes as f64 / 1e6 / c.wall();
            let (rw, rr) = match hoist {
                Some(h) if !c.is_hoist => (
                    num(h.wall() / c.wall(), 2),
                    num(h.rss_kib() / c.rss_kib(), 2),
                ),
                _ => ("".into(), "".into()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {range} | {} | {} | {} | {rw} | {rr} | {}/{} |",
                c.name.replace('|', "\\|"),
                num(c.wall(), 2),
                num(c.cpu(), 2),
                num(c.rss_kib() / 1024.0, 1),
                num(mbps, 0),
                c.failures(),
                c.samples.len(),
            );
        }
        if !s.verdicts.is_empty() {
            md.push('\n');
            for v in &s.verdicts {
                let _ = writeln!(
                    md,
                    "- **{}** {}: {} (limit {})",
                    if v.pass { "PASS" } else { "MISS" },
                    v.what,
                    num(v.value, 2),
                    num(v.limit, 2)
                );
            }
        }
        let failed: Vec<_> = s.contenders.iter().filter(|c| c.failures() > 0).collect();
        for c in failed {
            let _ = writeln!(
                md,
                "\n{} FAILED {} of {} runs; log: `{}`",
                c.name,
                c.failures(),
                c.samples.len(),
                c.log
            );
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall: f64, rss: u64, ok: bool) -> Sample {
        Sample {
            wall_s: wall,
            user_s: wall / 2.0,
            sys_s: 0.1,
            max_rss_kib: rss,
            ok,
            timed_out: false,
        }
    }

    fn scenario() -> ScenarioResult {
        ScenarioResult {
            name: "spool".into(),
            about: "test".into(),
            input_bytes: 100 << 20,
            runs: 3,
            contenders: vec![
                ContenderResult {
                    name: "hoist".into(),
                    is_hoist: true,
                    command: "hoist".into(),
                    samples: vec![
                        sample(1.0, 8192, true),
                        sample(3.0, 8192, true),
                        sample(2.0, 10240, true),
                    ],
                    log: "h.log".into(),
                    bytes: 100 << 20,
                },
                ContenderResult {
                    name: "tar -x".into(),
                    is_hoist: false,
                    command: "tar".into(),
                    samples: vec![
                        sample(4.0, 2048, true),
                        sample(9.0, 2048, false),
                        sample(4.0, 2048, true),
                    ],
                    log: "t.log".into(),
                    bytes: 100 << 20,
                },
            ],
            verdicts: Vec::new(),
        }
    }

    #[test]
    fn ratios_and_verdicts_use_medians_of_successful_runs() {
        let s = scenario();
        let wall = |over: &str, max| Target {
            of: "hoist".into(),
            over: over.into(),
            metric: Metric::Wall,
            max_ratio: max,
        };
        let v = ratio_verdict(&s, &wall("tar -x", 0.6));
        assert_eq!(v.value, 0.5);
        assert!(v.pass);
        let v = ratio_verdict(&s, &wall("skopeo copy", 0.6));
        assert!(!v.pass, "a missing peer cannot pass");
        let v = ratio_verdict(
            &s,
            &Target {
                of: "hoist".into(),
                over: "tar -x".into(),
                metric: Metric::Rss,
                max_ratio: 1.1,
            },
        );
        assert_eq!(v.value, 4.0);
        assert!(!v.pass);
        let r = rss_verdict(&s).expect("hoist present");
        assert_eq!(r.value, 8.0);
        assert!(r.pass);
    }

    #[test]
    fn markdown_has_rows_ratios_and_failures() {
        let mut s = scenario();
        s.verdicts.push(ratio_verdict(
            &s,
            &Target {
                of: "hoist".into(),
                over: "tar -x".into(),
                metric: Metric::Wall,
                max_ratio: 0.4,
            },
        ));
        let md = markdown(&Report {
            date: "now".into(),
            machine: "here".into(),
            scenarios: vec![s],
        });
        assert!(md.contains("| hoist | 2.00 | 1.00-3.00 |"), "{md}");
        assert!(md.contains("| tar -x | 4.00 | 4.00-4.00 |"), "{md}");
        assert!(md.contains("| 0.50 | 4.00 | 1/3 |"), "{md}");
        assert!(
            md.contains("**MISS** spool: hoist/tar -x wall time: 0.50 (limit 0.40)"),
            "{md}"
        );
        assert!(
            md.contains("tar -x FAILED 1 of 3 runs; log: `t.log`"),
            "{md}"
        );
    }
}
