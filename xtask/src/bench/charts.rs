//! SVG charts from the report: `time.svg`, one panel of median wall-time bars per scenario; and
//! `rss.svg`, peak RSS versus image size (from the `scale` scenario) above the peak RSS of every
//! tool in every scenario. A tool without a successful run is drawn as a labelled failure, never
//! as a zero-length bar.

use super::report::{ContenderResult, HOIST_RSS_LIMIT_KIB, Report, ScenarioResult};
use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// Bar colour of hoist (every `hoist*` contender, e.g. `hoist 4x`).
const HOIST: RGBColor = RGBColor(31, 90, 200);
/// Bar colour of the peers.
const PEER: RGBColor = RGBColor(235, 130, 95);
/// Text colour of failures.
const FAILED: RGBColor = RGBColor(170, 0, 0);
/// Width of the time chart, and of each of its two panel columns' sum.
const WIDTH: u32 = 1100;
/// Height of one scenario panel in the time chart.
const PANEL_H: u32 = 190;
/// Height of the legend strip at the top of a chart.
const HEAD_H: u32 = 56;

/// Draw every chart the report has data for into `dir`; returns the files written.
pub fn draw(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    if report.scenarios.is_empty() {
        return Ok(written);
    }
    let time = dir.join("time.svg");
    time_chart(report, &time)?;
    written.push(time);
    let rss = dir.join("rss.svg");
    rss_chart(report, &rss)?;
    written.push(rss);
    Ok(written)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// One horizontal bar: a contender's median, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    /// Row label (tool, or `scenario: tool`).
    pub label: String,
    /// The median; NaN when no run succeeded.
    pub value: f64,
    /// Drawn in hoist's colour.
    pub hoist: bool,
    /// Shown after the value: failures (`FAILED 2/2: HTTP 413`, or `1/3 runs failed`).
    pub note: String,
}

/// The bar of one contender for `value` (its median wall time or peak RSS).
pub(crate) fn bar(c: &ContenderResult, label: String, value: f64) -> Bar {
    let (failed, runs) = (c.failures(), c.samples.len());
    let note = if runs > 0 && failed == runs {
        match c.short_reason() {
            Some(why) => format!("FAILED {failed}/{runs}: {why}"),
            None => format!("FAILED {failed}/{runs}"),
        }
    } else if failed > 0 {
        format!("{failed}/{runs} runs failed")
    } else {
        String::new()
    };
    Bar {
        label,
        value,
        hoist: c.is_any_hoist(),
        note,
    }
}

/// The time chart's bars of one scenario, contenders in report order; a peer's bar also says
/// how hoist compares (`hoist 0.46x`): the hoist run that moved as many bytes (`hoist 4x` for
/// `skopeo copy 4x`), else the scenario's hoist.
pub(crate) fn time_bars(s: &ScenarioResult) -> Vec<Bar> {
    let hoist_for = |c: &ContenderResult| s.hoist_for(c).map_or(f64::NAN, ContenderResult::wall);
    s.contenders
        .iter()
        .map(|c| {
            let mut b = bar(c, c.name.clone(), c.wall());
            let ratio = hoist_for(c) / b.value;
            if !b.hoist && ratio.is_finite() {
                let r = format!("hoist {ratio:.2}x");
                b.note = if b.note.is_empty() {
                    r
                } else {
                    format!("{r}, {}", b.note)
                };
            }
            b
        })
        .collect()
}

/// The RSS chart's bars: every contender of every scenario (the scale scenario's 4x runs are in
/// the size plot above them).
pub(crate) fn rss_bars(report: &Report) -> Vec<Bar> {
    report
        .scenarios
        .iter()
        .flat_map(|s| {
            s.contenders
                .iter()
                .map(move |c| bar(c, format!("{}: {}", s.name, c.name), c.rss_kib() / 1024.0))
        })
        .collect()
}

/// The legend strip: a title, and what the colours and a failure label mean.
fn head<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> anyhow::Result<()> {
    area.draw_text(
        title,
        &("sans-serif", 20).into_font().color(&BLACK),
        (12, 6),
    )
    .map_err(err)?;
    let y = 36;
    let key = [(HOIST, "hoist"), (PEER, "peer tool")];
    let mut x = 12;
    for (color, name) in key {
        area.draw(&Rectangle::new([(x, y), (x + 16, y + 12)], color.filled()))
            .map_err(err)?;
        area.draw_text(
            name,
            &("sans-serif", 13).into_font().color(&BLACK),
            (x + 22, y),
        )
        .map_err(err)?;
        x += 110;
    }
    area.draw_text(
        "FAILED n/n = no successful run (no bar is drawn)",
        &("sans-serif", 13).into_font().color(&FAILED),
        (x, y),
    )
    .map_err(err)?;
    Ok(())
}

/// One panel of horizontal bars, first bar on top, each labelled `value unit` and its note; a
/// vertical line at `limit` when given.
fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    bars: &[Bar],
    unit: &str,
    label_width: u32,
    limit: Option<(f64, &str)>,
) -> anyhow::Result<()> {
    let n = bars.len();
    let top = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(limit.map_or(0.0, |l| l.0), f64::max);
    // Room right of the longest bar for its label.
    let x_max = if top > 0.0 { top * 1.45 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(34)
        .y_label_area_size(label_width)
        // An integer range is inclusive as segments: 0..n-1 gives exactly n rows.
        .build_cartesian_2d(0.0..x_max, (0..n.saturating_sub(1)).into_segmented())
        .map_err(err)?;
    let row = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_labels(6)
        .x_desc(unit)
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => bars[row(*i)].label.clone(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    // The limit first, so bars and labels are drawn over it.
    if let Some((x, what)) = limit {
        chart
            .draw_series(DashedLineSeries::new(
                [(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                what.to_string(),
                (x + x_max * 0.01, SegmentValue::Exact(n)),
                ("sans-serif", 11).into_font().color(&BLACK.mix(0.7)),
            )))
            .map_err(err)?;
    }
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .filter(|(_, b)| b.value.is_finite())
                .map(|(i, b)| {
                    let color = if b.hoist { HOIST } else { PEER };
                    let y = row(i);
                    let mut r = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(y)),
                            (b.value, SegmentValue::Exact(y + 1)),
                        ],
                        color.filled(),
                    );
                    r.set_margin(4, 4, 0, 0);
                    r
                }),
        )
        .map_err(err)?;
    let centre = Pos::new(HPos::Left, VPos::Center);
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let (text, color) = if b.value.is_finite() {
                let mut t = format!("{} {unit}", fmt_value(b.value));
                if !b.note.is_empty() {
                    t = format!("{t} ({})", b.note);
                }
                (t, BLACK)
            } else {
                (b.note.clone(), FAILED)
            };
            let x = if b.value.is_finite() { b.value } else { 0.0 } + x_max * 0.01;
            Text::new(
                text,
                (x, SegmentValue::CenterOf(row(i))),
                ("sans-serif", 12).into_font().color(&color).pos(centre),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// `12.3`, `4.56`, `123`: three significant digits or so.
fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Panels of median wall time, one per scenario, two columns.
fn time_chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    let cols = 2;
    let rows = report.scenarios.len().div_ceil(cols);
    let height = HEAD_H + PANEL_H * rows as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(HEAD_H);
    head(
        &top,
        &format!(
            "median wall time per scenario, seconds ({}; {} each)",
            report.date,
            match report.scenarios.first().map_or(0, |s| s.runs) {
                1 => "1 run".to_string(),
                n => format!("{n} runs"),
            }
        ),
    )?;
    let panels = body.split_evenly((rows, cols));
    for (s, area) in report.scenarios.iter().zip(panels.iter()) {
        let caption = format!("{} ({} MiB)", s.name, s.input_bytes >> 20);
        bar_panel(area, &caption, &time_bars(s), "s", 130, None)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Peak RSS versus image size (scale scenario) above peak RSS per tool and scenario.
fn rss_chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    let bars = rss_bars(report);
    let series = scaling_series(report);
    let bars_h = 70 + 22 * bars.len() as u32;
    let line_h = if series.is_empty() { 0 } else { 420 };
    let root = SVGBackend::new(path, (WIDTH, HEAD_H + line_h + bars_h)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(HEAD_H);
    head(
        &top,
        &format!(
            "peak RSS, MiB ({}; dockerd's own memory is not counted)",
            report.date
        ),
    )?;
    let limit = HOIST_RSS_LIMIT_KIB as f64 / 1024.0;
    let (upper, lower) = body.split_vertically(line_h);
    if !series.is_empty() {
        size_plot(&upper, series, limit)?;
    }
    bar_panel(
        &lower,
        "peak RSS of each tool in each scenario (median of successful runs)",
        &bars,
        "MiB",
        220,
        Some((limit, "hoist target")),
    )?;
    root.present().map_err(err)?;
    Ok(())
}

/// The lines of the RSS-versus-size plot: the push of the `scale` scenario under each tool's
/// name, the export of `export-scale` as `NAME (export)`.
pub(crate) fn scaling_series(report: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut all = Vec::new();
    for s in &report.scenarios {
        let suffix = match s.name.as_str() {
            "scale" => "",
            "export-scale" => " (export)",
            _ => continue,
        };
        all.extend(
            size_series(s)
                .into_iter()
                .map(|(name, pts)| (format!("{name}{suffix}"), pts)),
        );
    }
    all
}

/// One line per tool: a scaling scenario's contenders `NAME` (at `--size`) and `NAME 4x`.
pub(crate) fn size_series(s: &ScenarioResult) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in &s.contenders {
        let base = c.name.trim_end_matches(" 4x").to_string();
        let pos = match series.iter().position(|(n, _)| *n == base) {
            Some(p) => p,
            None => {
                series.push((base, Vec::new()));
                series.len() - 1
            }
        };
        let point = (c.bytes as f64 / 1048576.0, c.rss_kib() / 1024.0);
        if point.1.is_finite() {
            series[pos].1.push(point);
        }
    }
    for (_, pts) in &mut series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

/// Peak RSS (y, MiB) over image size (x, MiB), one line per tool, with hoist's target.
fn size_plot<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: Vec<(String, Vec<(f64, f64)>)>,
    limit: f64,
) -> anyhow::Result<()> {
    let points = || series.iter().flat_map(|(_, p)| p.iter());
    // Room on the right for the legend, clear of the 4x points and their labels.
    let max_x = points().map(|q| q.0).fold(1.0, f64::max) * 1.5;
    let max_y = points().map(|q| q.1).fold(limit, f64::max) * 1.3;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "peak RSS versus image size: the same push (and export) at --size and 4x --size",
            ("sans-serif", 15),
        )
        .margin(8)
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("image size pushed (MiB)")
        .y_desc("peak RSS (MiB)")
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, limit), (max_x, limit)],
            6,
            4,
            BLACK.mix(0.6).stroke_width(1),
        ))
        .map_err(err)?
        .label(format!("hoist target {limit:.0} MiB"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let hoist = name.starts_with("hoist");
        let color = match i {
            _ if name == "hoist" => HOIST.to_rgba(),
            // hoist's other lines (the export's) in a lighter blue.
            _ if hoist => HOIST.mix(0.5),
            1 => PEER.to_rgba(),
            _ => Palette99::pick(i + 2).to_rgba(),
        };
        let label = if pts.is_empty() {
            format!("{name}: FAILED, no point")
        } else {
            name
        };
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&(x, y)| {
                Text::new(
                    format!("{y:.1}"),
                    (x, y + max_y * 0.02),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::measure::Sample;

    fn contender(name: &str, hoist: bool, bytes: u64, rss: u64, ok: bool) -> ContenderResult {
        ContenderResult {
            name: name.into(),
            is_hoist: hoist,
            command: name.into(),
            samples: vec![Sample {
                wall_s: 2.0,
                user_s: 1.0,
                sys_s: 0.5,
                max_rss_kib: rss,
                ok,
                timed_out: false,
                server_cpu_s: None,
            }],
            failure_reasons: if ok {
                Vec::new()
            } else {
                vec!["HTTP 413: writing blob".into()]
            },
            log: String::new(),
            bytes,
        }
    }

    fn report() -> Report {
        let scenario = |name: &str, contenders| ScenarioResult {
            name: name.into(),
            about: "a".into(),
            input_bytes: 1 << 30,
            runs: 1,
            servers: None,
            contenders,
            verdicts: Vec::new(),
            elapsed_s: 1.0,
        };
        Report {
            date: "d".into(),
            machine: "m".into(),
            host_notes: Vec::new(),
            rss_floor_kib: None,
            stopped: None,
            scenarios: vec![
                scenario(
                    "scale",
                    vec![
                        contender("hoist", true, 1 << 30, 9000, true),
                        contender("skopeo copy", false, 1 << 30, 20000, true),
                        contender("hoist 4x", false, 4 << 30, 9500, true),
                        contender("skopeo copy 4x", false, 4 << 30, 22000, true),
                    ],
                ),
                scenario(
                    "push-proxy",
                    vec![
                        contender("hoist", true, 1 << 30, 9000, true),
                        contender("docker push", false, 1 << 30, 37000, false),
                    ],
                ),
            ],
            elapsed_s: 2.0,
        }
    }

    #[test]
    fn failed_tools_get_a_label_not_a_bar() {
        let r = report();
        let bars = time_bars(&r.scenarios[1]);
        assert_eq!(bars[0].value, 2.0);
        assert!(bars[0].note.is_empty());
        assert!(bars[1].value.is_nan(), "no zero-length bar for a failure");
        assert_eq!(bars[1].note, "FAILED 1/1: HTTP 413");
        // hoist's scaled run is coloured as hoist.
        let scale = time_bars(&r.scenarios[0]);
        assert!(scale[2].hoist && !scale[3].hoist);
        // A peer's bar says how hoist compares (both 2.0 s here).
        assert_eq!(scale[1].note, "hoist 1.00x");
        assert_eq!(scale[0].note, "");
        let mut r = report();
        r.scenarios[0].contenders[2].samples[0].wall_s = 1.0;
        let scale = time_bars(&r.scenarios[0]);
        assert_eq!(scale[1].note, "hoist 1.00x", "1x compared with hoist at 1x");
        assert_eq!(scale[3].note, "hoist 0.50x", "4x compared with hoist 4x");
    }

    #[test]
    fn rss_is_plotted_against_size_per_tool() {
        let r = report();
        let series = size_series(&r.scenarios[0]);
        assert_eq!(series.len(), 2, "one line per tool, 4x runs are its points");
        assert_eq!(series[0].0, "hoist");
        let hoist = &series[0].1;
        assert_eq!(hoist.len(), 2);
        assert_eq!(hoist[0].0, 1024.0);
        assert_eq!(hoist[1].0, 4096.0);
        assert!((hoist[1].1 - 9500.0 / 1024.0).abs() < 1e-9);
        // The export's scaling runs join the plot as their own lines; other scenarios do not.
        let mut r2 = report();
        let mut export = r2.scenarios[0].clone();
        export.name = "export-scale".into();
        r2.scenarios.push(export);
        let names: Vec<String> = scaling_series(&r2).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&"hoist (export)".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("push-proxy")), "{names:?}");
        let bars = rss_bars(&r);
        assert_eq!(bars.len(), 6);
        assert_eq!(bars[5].label, "push-proxy: docker push");
        assert!(bars[5].value.is_nan());
    }

    #[test]
    fn draws_both_charts() {
        let dir = std::env::temp_dir().join(format!("xtask-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let files = draw(&report(), &dir).expect("draw");
        assert_eq!(files.len(), 2);
        let rss = std::fs::read_to_string(dir.join("rss.svg")).expect("svg");
        assert!(
            rss.contains("<svg") && rss.contains("skopeo copy"),
            "legend"
        );
        assert!(
            rss.contains("image size pushed (MiB)"),
            "sizes on the x axis"
        );
        assert!(rss.contains("hoist target 16 MiB"));
        let time = std::fs::read_to_string(dir.join("time.svg")).expect("svg");
        assert!(time.contains("hoist 4x"));
        assert!(time.contains("FAILED 1/1: HTTP 413"), "failure shown");
        let _ = std::fs::remove_dir_all(dir);
    }
}
