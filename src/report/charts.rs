//! Charts for the self-contained HTML reports, drawn by `plotters` into inline SVG: labelled axes
//! with units and round ticks, time in seconds on x, a log-scaled percentile axis for
//! distributions (50, 90, 99, 99.9, 99.99, as HdrHistogram plots them), every series shown (more
//! than one palette's worth is split over several charts, never dropped) and an HTML legend
//! under each chart that wraps instead of being cut.

use std::fmt::Write as _;

use plotters::coord::ranged1d::{KeyPointHint, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::markup::escape;

/// Series a chart holds before the rest go to another chart (one colour each).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(37, 99, 235),
    RGBColor(220, 38, 38),
    RGBColor(22, 163, 74),
    RGBColor(147, 51, 234),
    RGBColor(234, 88, 12),
    RGBColor(8, 145, 178),
    RGBColor(202, 138, 4),
    RGBColor(219, 39, 119),
];

const SIZE: (u32, u32) = (760, 280);

/// One line: its name and its points; a NaN y is a gap (no data that second).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// What the y values are.
#[derive(Clone, Copy)]
pub enum Unit {
    /// A rate or count, shown as is.
    PerSecond,
    /// A duration in µs, shown in ms or s.
    Micros,
    /// A percentage.
    Percent,
}

fn hex(c: &RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// A duration given in ms, as a tick label: `250 ms`, `1.5 s`.
fn duration_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else if ms >= 1.0 || ms == 0.0 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} µs", trim(ms * 1000.0))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The figure: title, the SVG, and the legend (`data-series` lists every name, for checks).
fn figure(title: &str, svg: &str, series: &[&Series]) -> String {
    let mut out = format!(
        "<figure class=\"chart\" data-chart=\"{}\" data-series=\"{}\"><figcaption>{}</figcaption>{svg}<ul class=\"legend\">",
        escape(title),
        series.len(),
        escape(title)
    );
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<li class=\"series\" data-name=\"{0}\"><span style=\"background:{1}\"></span>{0}</li>",
            escape(&s.name),
            hex(&PALETTE[i % PALETTE.len()])
        );
    }
    out.push_str("</ul></figure>\n");
    out
}

/// Charts of `series` over time (x in seconds), one per [`PALETTE`]'s worth of series.
pub fn over_time(title: &str, y_label: &str, unit: Unit, series: &[Series]) -> String {
    against(title, "seconds since the start", y_label, unit, series, None)
}

/// Charts of `series` against any x (`x_label` says what), with an optional labelled vertical
/// marker (the knee of a capacity curve), one per [`PALETTE`]'s worth of series.
pub fn against(
    title: &str,
    x_label: &str,
    y_label: &str,
    unit: Unit,
    series: &[Series],
    marker: Option<(f64, &str)>,
) -> String {
    in_parts(title, series, |part| draw_lines(x_label, y_label, unit, part, marker))
}

/// One figure per [`PALETTE`]'s worth of `series` ("(1 of 2)" when there are several), each
/// drawn by `draw`.
fn in_parts(title: &str, series: &[Series], draw: impl Fn(&[Series]) -> Result<String, String>) -> String {
    let parts: Vec<&[Series]> = series.chunks(PALETTE.len()).collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let title = match parts.len() {
            1 => title.to_string(),
            n => format!("{title} ({} of {n})", i + 1),
        };
        let svg = draw(part).unwrap_or_else(|e| format!("<p>chart failed: {}</p>", escape(&e)));
        out.push_str(&figure(&title, &svg, &part.iter().collect::<Vec<_>>()));
    }
    out
}

fn draw_lines(
    x_label: &str,
    y_label: &str,
    unit: Unit,
    series: &[Series],
    marker: Option<(f64, &str)>,
) -> Result<String, String> {
    let scale = match unit {
        Unit::PerSecond | Unit::Percent => 1.0,
        Unit::Micros => 1e-3,
    };
    let finite = || series.iter().flat_map(|s| s.points.iter()).filter(|p| p.1.is_finite());
    let x_max = finite()
        .map(|p| p.0)
        .chain(marker.map(|m| m.0))
        .fold(1.0_f64, f64::max)
        .ceil();
    let y_max = (finite().map(|p| p.1 * scale).fold(0.0_f64, f64::max) * 1.1).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        let y_fmt = |v: &f64| match unit {
            Unit::PerSecond => trim(*v),
            Unit::Micros => duration_label(*v),
            Unit::Percent => format!("{}%", trim(*v)),
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| trim(*v))
            .y_label_formatter(&y_fmt)
            .light_line_style(RGBColor(238, 238, 238))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            for segment in s.points.split(|p| !p.1.is_finite()) {
                chart
                    .draw_series(LineSeries::new(
                        segment.iter().map(|(x, y)| (*x, y * scale)),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some((x, label)) = marker {
            let red = RGBColor(185, 28, 28);
            chart
                .draw_series(DashedLineSeries::new([(x, 0.0), (x, y_max)], 6, 4, red.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            // The label sits inside the plot, beside the line, on the side with room.
            let anchor = if x > x_max * 0.7 {
                Pos::new(HPos::Right, VPos::Top)
            } else {
                Pos::new(HPos::Left, VPos::Top)
            };
            let style = TextStyle::from(("sans-serif", 13).into_font()).color(&red).pos(anchor);
            let dx = if x > x_max * 0.7 { -6 } else { 6 };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((x, y_max)) + Text::new(label.to_string(), (dx, 4), style),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The percentile axis: x = −log10(1 − q), so 50 % sits at 0.3, 90 % at 1, 99 % at 2 and so on.
struct PercentileAxis;

pub fn percentile_x(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

impl Ranged for PercentileAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (0.2, 4.2);
        limit.0 + ((value - lo) / (hi - lo) * f64::from(limit.1 - limit.0)) as i32
    }
    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        [0.5, 0.9, 0.99, 0.999, 0.9999]
            .iter()
            .map(|q| percentile_x(*q))
            .collect()
    }
    fn range(&self) -> std::ops::Range<f64> {
        0.2..4.2
    }
}

impl ValueFormatter<f64> for PercentileAxis {
    fn format_ext(&self, value: &f64) -> String {
        let q = 1.0 - 10f64.powf(-value);
        trim(q * 100.0)
    }
}

/// Distributions: each series' (quantile, µs) points on the percentile axis.
pub fn distribution(title: &str, y_label: &str, series: &[Series]) -> String {
    in_parts(title, series, |part| draw_distribution(y_label, part))
}

fn draw_distribution(y_label: &str, series: &[Series]) -> Result<String, String> {
    let y_max = (series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.1 / 1000.0)
        .fold(0.0_f64, f64::max)
        * 1.1)
        .max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(PercentileAxis, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale)")
            .y_desc(y_label)
            .y_label_formatter(&|v| duration_label(*v))
            .light_line_style(RGBColor(238, 238, 238))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = s.points.iter().map(|(q, us)| (percentile_x(*q), us / 1000.0)).collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<Series> {
        (0..n)
            .map(|i| Series {
                name: format!("sync_lag{{service=s{i}}}"),
                points: vec![(0.0, 1000.0), (1.0, f64::NAN), (2.0, 250_000.0 + i as f64)],
            })
            .collect()
    }

    /// Regression: charts showed at most 8 series and dropped the rest silently.
    #[test]
    fn every_series_is_drawn_and_named() {
        let html = over_time("sync lag p99", "p99", Unit::Micros, &series(15));
        assert_eq!(
            html.matches("<figure class=\"chart\"").count(),
            2,
            "15 series: two charts"
        );
        assert!(html.contains("(1 of 2)") && html.contains("(2 of 2)"));
        for i in 0..15 {
            assert!(
                html.contains(&format!("data-name=\"sync_lag{{service=s{i}}}\"")),
                "s{i}"
            );
        }
    }

    /// Ticks are labelled with units and round numbers; the percentile axis names percentiles.
    #[test]
    fn axes_have_round_labelled_ticks() {
        let html = over_time("latency", "p99", Unit::Micros, &series(1));
        assert!(html.contains("seconds since the start"), "{html}");
        let labels: Vec<&str> = html.lines().map(str::trim).collect();
        assert!(labels.contains(&"250 ms") || labels.contains(&"200 ms"), "{html}");
        assert!(!html.contains("954.62"), "no odd ticks");
        let dist = distribution(
            "distribution",
            "lag",
            &[Series {
                name: "x".into(),
                points: vec![(0.5, 1000.0), (0.99, 9000.0), (0.999, 20_000.0)],
            }],
        );
        let labels: Vec<&str> = dist.lines().map(str::trim).collect();
        for label in ["50", "90", "99", "99.9", "99.99"] {
            assert!(labels.contains(&label), "{label} in {dist}");
        }
        assert!(dist.contains("percentile (log scale)"));
    }

    #[test]
    fn duration_labels() {
        assert_eq!(duration_label(250.0), "250 ms");
        assert_eq!(duration_label(1500.0), "1.5 s");
        assert_eq!(duration_label(0.5), "500 µs");
        assert_eq!(duration_label(0.0), "0 ms");
    }
}
