//! Turning samples into the report: medians, min-max, hoist/peer ratios, targets, Markdown, JSON.

use super::measure::{Sample, median, min_max};
use super::scenarios::{Metric, Target};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Largest acceptable hoist peak RSS (from the issues), in KiB.
pub const HOIST_RSS_LIMIT_KIB: u64 = 16 * 1024;

/// All runs of one contender in one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContenderResult {
    /// Contender name.
    pub name: String,
    /// Whether this is hoist.
    pub is_hoist: bool,
    /// The command line (with a placeholder for the output dir).
    pub command: String,
    /// Measured runs (warm-up excluded), failed ones included with `ok: false`.
    pub samples: Vec<Sample>,
    /// Why each failed measured run failed, in order (see [`super::failure::reason`]).
    #[serde(default)]
    pub failure_reasons: Vec<String>,
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

    /// The distinct failure reasons, joined for one table cell or label.
    pub fn reasons(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.failure_reasons {
            if !seen.contains(&r.as_str()) {
                seen.push(r);
            }
        }
        seen.join("; ")
    }

    /// A few words saying why the runs failed, for a chart label: the HTTP status when the
    /// reasons name one (`HTTP 413`), `timed out`, or nothing.
    pub fn short_reason(&self) -> Option<String> {
        if let Some(code) = super::failure::http_status(&self.reasons()) {
            return Some(format!("HTTP {code}"));
        }
        self.samples
            .iter()
            .any(|s| s.timed_out)
            .then(|| "timed out".to_string())
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

    /// Median CPU seconds of the scenario's servers over successful runs that measured it (NaN
    /// when none did).
    fn server_cpu(&self) -> f64 {
        let measured: Vec<f64> = self.good().iter().filter_map(|s| s.server_cpu_s).collect();
        if measured.is_empty() {
            f64::NAN
        } else {
            median(&measured)
        }
    }

    fn wall_range(&self) -> (f64, f64) {
        min_max(&self.good().iter().map(|s| s.wall_s).collect::<Vec<_>>())
    }
}

/// One PASS/MISS line.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What it does.
    pub about: String,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Measured runs per contender.
    pub runs: usize,
    /// The servers whose CPU time each sample records (`registry`, `dockerd`), if any.
    #[serde(default)]
    pub servers: Option<String>,
    /// hoist first, then peers.
    pub contenders: Vec<ContenderResult>,
    /// Targets checked.
    pub verdicts: Vec<Verdict>,
    /// Seconds the whole scenario took: preparing its input, daemons and registries, warm-up
    /// and measured runs.
    #[serde(default)]
    pub elapsed_s: f64,
}

impl ContenderResult {
    /// Whether this is hoist, including its scaled variants (`hoist 4x`).
    pub fn is_any_hoist(&self) -> bool {
        self.is_hoist || self.name == "hoist" || self.name.starts_with("hoist ")
    }
}

impl ScenarioResult {
    /// hoist's result, when the scenario has one.
    pub fn hoist(&self) -> Option<&ContenderResult> {
        self.contenders.iter().find(|c| c.is_hoist)
    }

    /// The hoist run to compare a peer with: the one on the same input size (`hoist 4x` for
    /// `skopeo copy 4x`), else hoist's main run.
    pub fn hoist_for(&self, peer: &ContenderResult) -> Option<&ContenderResult> {
        self.contenders
            .iter()
            .find(|h| h.is_any_hoist() && h.bytes == peer.bytes)
            .or_else(|| self.hoist())
    }
}

impl Report {
    /// Every hoist contender (`hoist 4x` included) that failed a measured run, as
    /// `scenario: contender failed N of M runs (reasons)`: any of them fails the bench.
    pub fn hoist_failures(&self) -> Vec<String> {
        self.scenarios
            .iter()
            .flat_map(|s| s.contenders.iter().map(move |c| (s, c)))
            .filter(|(_, c)| c.is_any_hoist() && c.failures() > 0)
            .map(|(s, c)| {
                format!(
                    "{}: {} failed {} of {} runs ({})",
                    s.name,
                    c.name,
                    c.failures(),
                    c.samples.len(),
                    c.reasons()
                )
            })
            .collect()
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// When (UTC) and where it ran.
    pub date: String,
    /// `uname -srm`, CPU count and memory.
    pub machine: String,
    /// What the host did that may have moved the numbers (see `host.rs`).
    #[serde(default)]
    pub host_notes: Vec<String>,
    /// Peak RSS of `true` measured through the launcher, in KiB: no measurement can show less
    /// (`None` in reports from before the launcher).
    #[serde(default)]
    pub rss_floor_kib: Option<u64>,
    /// Every scenario run.
    pub scenarios: Vec<ScenarioResult>,
    /// Seconds the whole bench took, from start to the report (0 when unknown).
    #[serde(default)]
    pub elapsed_s: f64,
    /// Where and why the bench stopped before its last scenario (the scenarios here are those
    /// that finished); `None` when it ran them all.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// Check a ratio target between two contenders of a scenario (NaN, and so MISS, when either
/// is missing or never succeeded).
pub fn ratio_verdict(s: &ScenarioResult, t: &Target) -> Verdict {
    let find = |n: &str| s.contenders.iter().find(|c| c.name == n);
    if t.metric == Metric::Succeeds {
        let count = |c: Option<&ContenderResult>| {
            c.map_or((0, 0), |c| {
                (c.samples.len() - c.failures(), c.samples.len())
            })
        };
        let (ok, runs) = count(find(&t.of));
        let (peer_ok, peer_runs) = count(find(&t.over));
        let failed = (runs - ok) as f64;
        return Verdict {
            what: format!(
                "{}: {} succeeded in {ok}/{runs} runs ({} in {peer_ok}/{peer_runs}); failed runs of {}",
                s.name, t.of, t.over, t.of
            ),
            value: if runs == 0 { f64::NAN } else { failed },
            limit: 0.0,
            pass: runs > 0 && ok == runs,
        };
    }
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
        Metric::Succeeds => (f64::NAN, "outcome"),
    };
    let caveat = t.caveat.map_or(String::new(), |c| format!(" ({c})"));
    Verdict {
        what: format!("{}: {}/{} {what}{caveat}", s.name, t.of, t.over),
        value,
        limit: t.max_ratio,
        pass: value <= t.max_ratio,
    }
}

/// Check every hoist peak RSS against [`HOIST_RSS_LIMIT_KIB`]: the largest of every measured
/// run, failed ones included, of every hoist contender (`hoist 4x` too); `None` when the
/// scenario has no hoist run.
pub fn rss_verdict(s: &ScenarioResult) -> Option<Verdict> {
    let hoists: Vec<&ContenderResult> = s.contenders.iter().filter(|c| c.is_any_hoist()).collect();
    let (kib, who) = hoists
        .iter()
        .flat_map(|c| c.samples.iter().map(|x| (x.max_rss_kib, c.name.as_str())))
        .max_by_key(|(kib, _)| *kib)?;
    let names: Vec<&str> = hoists.iter().map(|c| c.name.as_str()).collect();
    let value = kib as f64 / 1024.0;
    let limit = HOIST_RSS_LIMIT_KIB as f64 / 1024.0;
    Some(Verdict {
        what: format!(
            "{}: hoist peak RSS, the largest of all runs of {} (MiB; in {who})",
            s.name,
            names.join(", ")
        ),
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
    if let Some(why) = &r.stopped {
        let _ = writeln!(
            md,
            "**Stopped early** {why}\n\nOnly the scenarios that finished before are below.\n"
        );
    }
    for note in &r.host_notes {
        let _ = writeln!(md, "**Host:** {note}.\n");
    }
    if let Some(floor) = r.rss_floor_kib {
        let _ = writeln!(
            md,
            "RSS floor of the launcher: {:.1} MiB (the peak RSS of `true` measured the same way; \
             every peak RSS below is at least this).\n",
            floor as f64 / 1024.0
        );
    }
    for s in &r.scenarios {
        let _ = writeln!(
            md,
            "## {}\n\n{} — input {} MiB, {} runs each, alternated after a warm-up; the \
             scenario took {:.0} s in all.\n",
            s.name,
            s.about,
            s.input_bytes >> 20,
            s.runs,
            s.elapsed_s
        );
        let server_head = s
            .servers
            .as_ref()
            .map_or(String::new(), |label| format!(" {label} CPU s |"));
        let _ = writeln!(
            md,
            "| tool | wall s (median) | wall min-max | CPU s |{server_head} peak RSS MiB | MB/s | \
             hoist/tool wall | hoist/tool RSS | failed |\n\
             |---|---:|---:|---:|{}---:|---:|---:|---:|---:|",
            if s.servers.is_some() { "---:|" } else { "" }
        );
        for c in &s.contenders {
            let (lo, hi) = c.wall_range();
            let range = if lo.is_finite() {
                format!("{}-{}", num(lo, 2), num(hi, 2))
            } else {
                "-".into()
            };
            let mbps = c.bytes as f64 / 1e6 / c.wall();
            let (rw, rr) = match s.hoist_for(c) {
                Some(h) if !c.is_any_hoist() => (
                    num(h.wall() / c.wall(), 2),
                    num(h.rss_kib() / c.rss_kib(), 2),
                ),
                _ => ("".into(), "".into()),
            };
            let server = if s.servers.is_some() {
                format!(" {} |", num(c.server_cpu(), 2))
            } else {
                String::new()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {range} | {} |{server} {} | {} | {rw} | {rr} | {}/{}{} |",
                c.name.replace('|', "\\|"),
                num(c.wall(), 2),
                num(c.cpu(), 2),
                num(c.rss_kib() / 1024.0, 1),
                num(mbps, 0),
                c.failures(),
                c.samples.len(),
                c.short_reason()
                    .map_or(String::new(), |r| format!(" ({r})")),
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
                "\n{} FAILED {} of {} runs: {}; log: `{}`",
                c.name,
                c.failures(),
                c.samples.len(),
                c.reasons(),
                c.log
            );
        }
        md.push('\n');
    }
    if r.elapsed_s > 0.0 {
        let _ = writeln!(
            md,
            "The whole bench took {:.0} s ({:.1} min).",
            r.elapsed_s,
            r.elapsed_s / 60.0
        );
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
            server_cpu_s: None,
        }
    }

    /// The Markdown of a report holding `s` alone, dated "now" on machine "here".
    fn render(s: ScenarioResult, elapsed_s: f64) -> String {
        markdown(&Report {
            date: "now".into(),
            machine: "here".into(),
            host_notes: Vec::new(),
            rss_floor_kib: None,
            scenarios: vec![s],
            elapsed_s,
            stopped: None,
        })
    }

    fn scenario() -> ScenarioResult {
        ScenarioResult {
            name: "spool".into(),
            about: "test".into(),
            input_bytes: 100 << 20,
            runs: 3,
            servers: None,
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
                    failure_reasons: Vec::new(),
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
                    failure_reasons: vec!["HTTP 413: too big".into()],
                    log: "t.log".into(),
                    bytes: 100 << 20,
                },
            ],
            verdicts: Vec::new(),
            elapsed_s: 12.0,
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
            caveat: None,
        };
        let v = ratio_verdict(&s, &wall("tar -x", 0.6));
        assert_eq!(v.value, 0.5);
        assert!(v.pass);
        assert_eq!(v.what, "spool: hoist/tar -x wall time");
        let caveated = Target {
            caveat: Some("random layers: different work"),
            ..wall("tar -x", 0.6)
        };
        let v = ratio_verdict(&s, &caveated);
        assert_eq!(
            v.what,
            "spool: hoist/tar -x wall time (random layers: different work)"
        );
        let v = ratio_verdict(&s, &wall("skopeo copy", 0.6));
        assert!(!v.pass, "a missing peer cannot pass");
        let v = ratio_verdict(
            &s,
            &Target {
                of: "hoist".into(),
                over: "tar -x".into(),
                metric: Metric::Rss,
                max_ratio: 1.1,
                caveat: None,
            },
        );
        assert_eq!(v.value, 4.0);
        assert!(!v.pass);
    }

    #[test]
    fn succeeds_verdict_counts_failed_runs() {
        let s = scenario();
        let succeeds = |of: &str, over: &str| Target {
            of: of.into(),
            over: over.into(),
            metric: Metric::Succeeds,
            max_ratio: 0.0,
            caveat: None,
        };
        let v = ratio_verdict(&s, &succeeds("hoist", "tar -x"));
        assert!(v.pass, "{}", v.what);
        assert_eq!(v.value, 0.0);
        assert!(v.what.contains("tar -x in 2/3"), "{}", v.what);
        // The contender with a failed run does not pass.
        let v = ratio_verdict(&s, &succeeds("tar -x", "hoist"));
        assert!(!v.pass);
        assert_eq!(v.value, 1.0);
    }

    #[test]
    fn json_round_trips_for_replot() {
        let r = Report {
            date: "now".into(),
            machine: "here".into(),
            host_notes: vec!["the kernel pages out".into()],
            rss_floor_kib: Some(1100),
            scenarios: vec![scenario()],
            elapsed_s: 7.0,
            stopped: Some("in scenario push: preparing push: no registry".into()),
        };
        let json = serde_json::to_vec(&r).expect("serialize");
        let back: Report = serde_json::from_slice(&json).expect("deserialize");
        assert_eq!(markdown(&back), markdown(&r));
        assert!(markdown(&r).contains("**Host:** the kernel pages out."));
        assert!(
            markdown(&r).contains("RSS floor of the launcher: 1.1 MiB"),
            "{}",
            markdown(&r)
        );
        assert_eq!(back.scenarios[0].contenders[1].failure_reasons.len(), 1);
        // Reports written before failure reasons and timings existed still load.
        let mut old: serde_json::Value = serde_json::from_slice(&json).expect("value");
        old["scenarios"][0]["contenders"][1]
            .as_object_mut()
            .expect("object")
            .remove("failure_reasons");
        old.as_object_mut().expect("object").remove("elapsed_s");
        old.as_object_mut().expect("object").remove("host_notes");
        old.as_object_mut().expect("object").remove("rss_floor_kib");
        old.as_object_mut().expect("object").remove("stopped");
        let old: Report = serde_json::from_value(old).expect("old report");
        assert!(!markdown(&old).contains("**Host:**"));
        assert!(!markdown(&old).contains("RSS floor"));
        assert!(!markdown(&old).contains("Stopped early"));
        assert!(
            markdown(&r).contains("**Stopped early** in scenario push: preparing push"),
            "{}",
            markdown(&r)
        );
        assert!(old.scenarios[0].contenders[1].failure_reasons.is_empty());
        assert_eq!(old.elapsed_s, 0.0);
    }

    /// `scenario()` plus `hoist 4x` (not `is_hoist`, as the scaling scenarios mark it), whose
    /// failed run peaked at 17 MiB.
    fn with_hoist_4x() -> ScenarioResult {
        let mut s = scenario();
        let mut big = s.contenders[0].clone();
        big.name = "hoist 4x".into();
        big.is_hoist = false;
        big.bytes *= 4;
        big.samples = vec![
            sample(4.0, 9000, true),
            sample(9.0, 17 * 1024, false),
            sample(4.0, 9000, true),
        ];
        big.failure_reasons = vec!["timed out after 9 s".into()];
        s.contenders.push(big);
        s
    }

    #[test]
    fn the_rss_limit_holds_every_run_of_every_hoist_contender() {
        let s = scenario();
        let v = rss_verdict(&s).expect("hoist present");
        assert_eq!(v.value, 10.0, "the largest run, not the median (8)");
        assert!(v.pass);
        let v = rss_verdict(&with_hoist_4x()).expect("hoist present");
        assert_eq!(v.value, 17.0, "hoist 4x's failed run counts: {}", v.what);
        assert!(!v.pass);
        assert!(v.what.contains("hoist 4x"), "{}", v.what);
    }

    #[test]
    fn a_failed_hoist_4x_run_fails_the_bench() {
        let r = |s: ScenarioResult| Report {
            date: "now".into(),
            machine: "here".into(),
            host_notes: Vec::new(),
            rss_floor_kib: None,
            scenarios: vec![s],
            elapsed_s: 1.0,
            stopped: None,
        };
        assert!(
            r(scenario()).hoist_failures().is_empty(),
            "only tar -x failed"
        );
        assert_eq!(
            r(with_hoist_4x()).hoist_failures(),
            ["spool: hoist 4x failed 1 of 3 runs (timed out after 9 s)"]
        );
    }

    #[test]
    fn a_scaled_peer_is_compared_with_hoist_at_its_size() {
        let mut s = scenario();
        let mut big = s.contenders.clone();
        for c in &mut big {
            c.name.push_str(" 4x");
            c.is_hoist = false;
            c.bytes *= 4;
            for x in &mut c.samples {
                x.wall_s *= 2.0;
            }
        }
        big[0].samples[2].wall_s = 16.0; // hoist 4x: median 6, against tar -x 4x's 8
        s.contenders.extend(big);
        let md = render(s.clone(), 1.0);
        // tar -x at 1x against hoist at 1x (2/4), tar -x 4x against hoist 4x (6/8); hoist 4x
        // is not a peer and gets no ratio.
        assert!(md.contains("| 26 | 0.50 | 4.00 | 1/3"), "{md}");
        assert!(md.contains("| 52 | 0.75 | 4.00 | 1/3"), "{md}");
        assert!(
            md.contains("| hoist 4x | 6.00 | 2.00-16.00 | 1.10 | 8.0 | 70 |  |  | 0/3 |"),
            "{md}"
        );
        assert_eq!(
            s.hoist_for(&s.contenders[3]).map(|h| h.name.as_str()),
            Some("hoist 4x")
        );
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
                caveat: None,
            },
        ));
        let md = render(s, 100.0);
        assert!(md.contains("| hoist | 2.00 | 1.00-3.00 |"), "{md}");
        assert!(md.contains("the scenario took 12 s in all"), "{md}");
        assert!(md.contains("The whole bench took 100 s (1.7 min)."), "{md}");
        assert!(md.contains("| tar -x | 4.00 | 4.00-4.00 |"), "{md}");
        assert!(md.contains("| 0.50 | 4.00 | 1/3 (HTTP 413) |"), "{md}");
        assert!(md.contains("| 0/3 |"), "{md}");
        assert!(
            md.contains("**MISS** spool: hoist/tar -x wall time: 0.50 (limit 0.40)"),
            "{md}"
        );
        assert!(
            md.contains("tar -x FAILED 1 of 3 runs: HTTP 413: too big; log: `t.log`"),
            "{md}"
        );
    }

    #[test]
    fn server_cpu_gets_a_column_only_where_it_was_measured() {
        let mut s = scenario();
        let plain = render(s.clone(), 0.0);
        assert!(plain.contains("| CPU s | peak RSS MiB |"), "{plain}");
        assert!(!plain.contains("registry CPU s"), "{plain}");

        s.servers = Some("registry".into());
        for (c, cpus) in s.contenders.iter_mut().zip([
            vec![Some(2.9), Some(3.1), Some(2.8)],
            vec![None, None, None],
        ]) {
            for (sample, cpu) in c.samples.iter_mut().zip(cpus) {
                sample.server_cpu_s = cpu;
            }
        }
        let md = render(s, 0.0);
        assert!(
            md.contains("| CPU s | registry CPU s | peak RSS MiB |"),
            "{md}"
        );
        assert!(
            md.contains("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"),
            "{md}"
        );
        assert!(
            md.contains("| hoist | 2.00 | 1.00-3.00 | 1.10 | 2.90 | 8.0 |"),
            "{md}"
        );
        // A contender whose runs never measured the servers shows a dash, not zero.
        assert!(
            md.contains("| tar -x | 4.00 | 4.00-4.00 | 2.10 | - | 2.0 |"),
            "{md}"
        );
    }
}
