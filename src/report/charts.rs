//! The charts of the self-contained HTML reports: a figure per chart with its caption, the SVG
//! ([`plot`](super::plot) draws it) and an HTML legend that wraps instead of being cut. Every
//! line of the run's series is styled by [`crate::vocab::series::Styles`], so one series has one
//! colour in every chart and on the live dashboard; the legend carries the same `data-series`
//! and stroke as the line (CI checks that they agree across the page). A chart without any data
//! is left out: an empty frame tells a reader nothing.

use std::fmt::Write as _;

use super::markup::escape;
pub use super::plot::{Series, Unit, duration_label, percentile_x};
use super::plot::{XAxis, svg};

/// The figure: title, the SVG, and the legend (`data-series` and `data-stroke` on every entry).
fn figure(title: &str, svg: &str, series: &[&Series]) -> String {
    let mut out = format!(
        "<figure class=\"chart\" data-chart=\"{0}\" data-lines=\"{1}\"><figcaption>{0}</figcaption>{svg}<ul class=\"legend\">",
        escape(title),
        series.len(),
    );
    for (i, s) in series.iter().enumerate() {
        let style = s.style_at(i);
        let line = match style.dash {
            "" => format!("background:{}", style.colour),
            _ => format!(
                "background:repeating-linear-gradient(90deg,{0} 0 5px,transparent 5px 8px)",
                style.colour
            ),
        };
        let _ = write!(
            out,
            "<li class=\"series\" data-series=\"{0}\" data-stroke=\"{1}\"><span style=\"{line}\"></span>{0}</li>",
            escape(&s.name),
            style.colour
        );
    }
    out.push_str("</ul></figure>\n");
    out
}

/// A chart of `series` over time (x in seconds since the start); nothing when no series has
/// data.
pub fn over_time(title: &str, y_label: &str, unit: Unit, series: &[Series]) -> String {
    chart(
        title,
        XAxis::Linear(" s"),
        "seconds since the start",
        y_label,
        unit,
        series,
        None,
    )
}

/// A chart of `series` against any x (`x_label` says what), with an optional labelled vertical
/// marker (the knee of a capacity curve); nothing when no series has data.
pub fn against(
    title: &str,
    x_label: &str,
    y_label: &str,
    unit: Unit,
    series: &[Series],
    marker: Option<(f64, &str)>,
) -> String {
    chart(title, XAxis::Linear(""), x_label, y_label, unit, series, marker)
}

/// Distributions: each series' (quantile, µs) points on the percentile axis; nothing when no
/// series has data.
pub fn distribution(title: &str, y_label: &str, series: &[Series]) -> String {
    chart(
        title,
        XAxis::Percentile,
        "percentile (log scale)",
        y_label,
        Unit::Micros,
        series,
        None,
    )
}

fn chart(
    title: &str,
    x_axis: XAxis,
    x_label: &str,
    y_label: &str,
    unit: Unit,
    series: &[Series],
    marker: Option<(f64, &str)>,
) -> String {
    if !series.iter().any(Series::has_data) {
        return String::new();
    }
    // A series without data has nothing to show, in the chart or its legend; its style stays
    // its own (it was given by the run's labels, not by its place here).
    let owned: Vec<Series> = series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.has_data())
        .map(|(i, s)| Series {
            name: s.name.clone(),
            points: s.points.clone(),
            style: Some(s.style_at(i)),
        })
        .collect();
    let drawn = svg(x_axis, x_label, y_label, unit, &owned, marker);
    figure(title, &drawn, &owned.iter().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::series::Styles;

    fn series(n: usize) -> Vec<Series> {
        (0..n)
            .map(|i| {
                Series::new(
                    format!("create_user → s{i}"),
                    vec![(0.0, 1000.0), (1.0, f64::NAN), (2.0, 250_000.0 + i as f64)],
                )
            })
            .collect()
    }

    /// Every series is drawn and named, its path and its legend entry carrying its label and
    /// its colour.
    #[test]
    fn every_series_is_drawn_and_named_with_its_colour() {
        let html = over_time("sync lag p99", "p99", Unit::Micros, &series(15));
        assert_eq!(html.matches("<figure class=\"chart\"").count(), 1);
        for i in 0..15 {
            let name = format!("create_user → s{i}");
            assert!(html.contains(&format!("<path data-series=\"{name}\"")), "{name}");
            assert!(html.contains(&format!("data-series=\"{name}\" data-stroke=")), "{name}");
        }
        assert!(
            html.contains("<title>create_user → s0 · 2 s · 250 ms</title>"),
            "{html}"
        );
    }

    /// A chart with no data at all is left out; a series without data leaves the legend.
    #[test]
    fn empty_charts_and_lines_are_left_out() {
        let empty = [
            Series::new("a", vec![(0.0, f64::NAN), (1.0, f64::NAN)]),
            Series::new("b", vec![]),
        ];
        assert_eq!(over_time("nothing", "p99", Unit::Micros, &empty), "");
        assert_eq!(distribution("nothing", "lag", &empty), "");
        let mut some = series(2);
        some.push(Series::new("a", vec![(0.0, f64::NAN)]));
        let html = over_time("some", "p99", Unit::Micros, &some);
        assert!(!html.contains("data-series=\"a\""), "{html}");
    }

    /// A styled series keeps its style whatever its place in a chart.
    #[test]
    fn a_styled_series_keeps_its_colour() {
        let keys = [
            crate::vocab::MetricKey::new("api_latency").tag("op", "a"),
            crate::vocab::MetricKey::new("api_latency").tag("op", "b"),
        ];
        let styles = Styles::of(&keys);
        let b = styles.style("b");
        let html = over_time(
            "one",
            "p99",
            Unit::Micros,
            &[Series::new("b", vec![(0.0, 1.0)]).styled(b.clone())],
        );
        assert!(
            html.contains(&format!("data-series=\"b\" data-stroke=\"{}\"", b.colour)),
            "{html}"
        );
        assert_ne!(b.colour, styles.style("a").colour);
    }

    /// Ticks are labelled with units and round numbers; the percentile axis names percentiles.
    #[test]
    fn axes_have_round_labelled_ticks() {
        let html = over_time("latency", "p99", Unit::Micros, &series(1));
        assert!(html.contains("seconds since the start"), "{html}");
        assert!(html.contains(">250 ms<") || html.contains(">200 ms<"), "{html}");
        assert!(html.contains(">2 s<"), "{html}");
        let dist = distribution(
            "distribution",
            "lag",
            &[Series::new("x", vec![(0.5, 1000.0), (0.99, 9000.0), (0.999, 20_000.0)])],
        );
        for label in ["50", "90", "99", "99.9", "99.99"] {
            assert!(dist.contains(&format!(">{label}<")), "{label} in {dist}");
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
