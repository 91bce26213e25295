//! SVG charts from the report: median wall time per scenario and tool, and peak RSS versus image
//! size from the `scale` scenario.

use super::report::{Report, ScenarioResult};
use anyhow::anyhow;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Draw every chart the report has data for into `dir`; returns the files written.
pub fn draw(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let time = dir.join("time.svg");
    if time_chart(report, &time)? {
        written.push(time);
    }
    if let Some(scale) = report.scenarios.iter().find(|s| s.name == "scale") {
        let rss = dir.join("rss.svg");
        if rss_chart(scale, &rss)? {
            written.push(rss);
        }
    }
    Ok(written)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// Horizontal bars: one per (scenario, tool) with a successful median.
fn time_chart(report: &Report, path: &Path) -> anyhow::Result<bool> {
    let bars: Vec<(String, f64, bool)> = report
        .scenarios
        .iter()
        .flat_map(|s| {
            s.contenders
                .iter()
                .map(move |c| (format!("{}: {}", s.name, c.name), c.wall(), c.is_hoist))
        })
        .filter(|(_, w, _)| w.is_finite())
        .collect();
    if bars.is_empty() {
        return Ok(false);
    }
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.1;
    let height = 120 + 24 * bars.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption("median wall time per scenario (s)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max * 1.6, 0.0..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("seconds")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, w, hoist))| {
            let y = (n - i - 1) as f64;
            let color = if *hoist { BLUE.mix(0.8) } else { RED.mix(0.5) };
            Rectangle::new([(0.0, y + 0.15), (*w, y + 0.85)], color.filled())
        }))
        .map_err(err)?;
    // Label each bar at its end: "scenario: tool  1.23 s".
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (label, w, _))| {
            let y = (n - i - 1) as f64 + 0.75;
            Text::new(
                format!("{label}  {w:.2} s"),
                (*w + max * 0.01, y),
                ("sans-serif", 13),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// Lines of peak RSS (MiB) over image size (MiB), one per tool, from the scale scenario whose
/// contenders are `NAME` (1x) and `NAME 4x`.
fn rss_chart(s: &ScenarioResult, path: &Path) -> anyhow::Result<bool> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in &s.contenders {
        let base = c.name.trim_end_matches(" 4x").to_string();
        let point = (c.bytes as f64 / 1048576.0, c.rss_kib() / 1024.0);
        if !point.1.is_finite() {
            continue;
        }
        match series.iter_mut().find(|(n, _)| *n == base) {
            Some((_, pts)) => pts.push(point),
            None => series.push((base, vec![point])),
        }
    }
    if series.is_empty() {
        return Ok(false);
    }
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max)
        * 1.1;
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1.0, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("peak RSS vs image size", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("image size (MiB)")
        .y_desc("peak RSS (MiB)")
        .draw()
        .map_err(err)?;
    for (i, (name, mut pts)) in series.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::measure::Sample;
    use crate::bench::report::ContenderResult;

    fn contender(name: &str, hoist: bool, bytes: u64, rss: u64) -> ContenderResult {
        ContenderResult {
            name: name.into(),
            is_hoist: hoist,
            command: name.into(),
            samples: vec![Sample {
                wall_s: 2.0,
                user_s: 1.0,
                sys_s: 0.5,
                max_rss_kib: rss,
                ok: true,
                timed_out: false,
            }],
            log: String::new(),
            bytes,
        }
    }

    #[test]
    fn draws_both_charts() {
        let dir = std::env::temp_dir().join(format!("xtask-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let report = Report {
            date: "d".into(),
            machine: "m".into(),
            scenarios: vec![ScenarioResult {
                name: "scale".into(),
                about: "a".into(),
                input_bytes: 1 << 30,
                runs: 1,
                contenders: vec![
                    contender("hoist", true, 1 << 30, 9000),
                    contender("skopeo copy", false, 1 << 30, 20000),
                    contender("hoist 4x", false, 4 << 30, 9500),
                    contender("skopeo copy 4x", false, 4 << 30, 22000),
                ],
                verdicts: Vec::new(),
            }],
        };
        let files = draw(&report, &dir).expect("draw");
        assert_eq!(files.len(), 2);
        let rss = std::fs::read_to_string(dir.join("rss.svg")).expect("svg");
        assert!(
            rss.contains("<svg") && rss.contains("skopeo copy"),
            "legend names tools"
        );
        assert!(
            !rss.contains("skopeo copy 4x"),
            "4x runs are points of the same line"
        );
        let time = std::fs::read_to_string(dir.join("time.svg")).expect("svg");
        assert!(time.contains("scale: hoist 4x"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
