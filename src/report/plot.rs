//! One line chart as inline SVG, drawn by hand so that every line says what it is: each line's
//! `<path>` carries `data-series` (its readable label) and its stroke, each point a native
//! `<title>` (the value on hover, no script), the axes round ticks with their units. The x axis
//! is linear (seconds, a rate) or the percentile axis of a distribution (50, 90, 99, 99.9,
//! 99.99 equally spaced, as HdrHistogram plots them). The `charts` module lays figures out.

use std::fmt::Write as _;

use super::markup::escape;
use crate::vocab::series::{PALETTE, Style};

/// One line: its label, its points (a NaN y is a gap: no data then) and its style (`None`: by
/// its place in the chart, for charts whose lines are not the run's series).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Option<Style>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            style: None,
        }
    }

    pub fn styled(mut self, style: Style) -> Series {
        self.style = Some(style);
        self
    }

    /// Whether anything of it would be drawn.
    pub fn has_data(&self) -> bool {
        self.points.iter().any(|p| p.1.is_finite())
    }

    /// Its style, or the `i`-th colour of the palette.
    pub fn style_at(&self, i: usize) -> Style {
        self.style.clone().unwrap_or(Style {
            colour: PALETTE[i % PALETTE.len()],
            dash: "",
        })
    }
}

/// What the y values are.
#[derive(Clone, Copy)]
pub enum Unit {
    /// A rate or count, shown as is.
    PerSecond,
    /// A duration in µs, shown in µs, ms or s.
    Micros,
    /// A percentage.
    Percent,
}

impl Unit {
    /// A y value as a tick or hover text.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::PerSecond => trim(v),
            Unit::Micros => duration_label(v / 1000.0),
            Unit::Percent => format!("{}%", trim(v)),
        }
    }
}

/// The x axis.
#[derive(Clone, Copy)]
pub enum XAxis {
    /// Linear from 0, ticks formatted with the suffix (` s`, `/s`).
    Linear(&'static str),
    /// Quantiles (0.5 … 0.9999) on the percentile axis.
    Percentile,
}

/// The drawing: 1000 × 250 user units, scaled to the page's width.
const W: f64 = 1000.0;
const H: f64 = 250.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 52.0;
/// Points per line up to which each point is drawn as a dot (beyond, only hovered).
const DOTS: usize = 30;

/// A duration given in ms, as a tick label: `250 ms`, `1.5 s`, `500 µs`.
pub fn duration_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else if ms >= 1.0 || ms == 0.0 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} µs", trim(ms * 1000.0))
    }
}

pub fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The percentile axis: x = −log10(1 − q), so 50 % sits at 0.3, 90 % at 1, 99 % at 2 and so on.
pub fn percentile_x(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

/// A round step (1, 2 or 5 times a power of ten) giving about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// The SVG of `series` (all of them; the caller leaves out what has no data), with an optional
/// labelled vertical marker at an x.
pub fn svg(
    x_axis: XAxis,
    x_label: &str,
    y_label: &str,
    unit: Unit,
    series: &[Series],
    marker: Option<(f64, &str)>,
) -> String {
    let finite = || series.iter().flat_map(|s| s.points.iter()).filter(|p| p.1.is_finite());
    let (x_lo, x_hi) = match x_axis {
        XAxis::Linear(_) => {
            // Every point counts, gaps too: charts over the same seconds share their x axis.
            let hi = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .chain(marker.map(|m| m.0))
                .fold(1.0_f64, f64::max);
            (0.0, hi)
        }
        XAxis::Percentile => (0.2, 4.2),
    };
    let y_top = finite().map(|p| p.1).fold(0.0_f64, f64::max);
    let y_step = nice_step(if y_top > 0.0 { y_top } else { 1.0 }, 4.0);
    let y_hi = (y_top / y_step).ceil().max(1.0) * y_step;
    let xpos = |x: f64| {
        let x = match x_axis {
            XAxis::Linear(_) => x,
            XAxis::Percentile => percentile_x(x),
        };
        LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)
    };
    let ypos = |y: f64| H - BOTTOM - y / y_hi * (H - BOTTOM - TOP);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"13\">"
    );
    // Grid and y ticks.
    let mut v = 0.0;
    while v <= y_hi + y_step / 2.0 {
        let y = ypos(v);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&unit.format(v))
        );
        v += y_step;
    }
    // x ticks.
    let ticks: Vec<(f64, String)> = match x_axis {
        XAxis::Linear(suffix) => {
            let step = nice_step(x_hi, 8.0);
            (0..=((x_hi / step).floor() as usize))
                .map(|i| (i as f64 * step, format!("{}{suffix}", trim(i as f64 * step))))
                .collect()
        }
        XAxis::Percentile => [0.5, 0.9, 0.99, 0.999, 0.9999]
            .iter()
            .map(|q| (*q, trim(q * 100.0)))
            .collect(),
    };
    for (x, text) in ticks {
        let _ = write!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#999\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
            xpos(x),
            H - BOTTOM,
            H - BOTTOM + 5.0,
            H - BOTTOM + 19.0,
            escape(&text)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{1}\" y2=\"{1}\" stroke=\"#999\"/><line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#999\"/>\
<text x=\"{2}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#444\">{4}</text><text transform=\"translate(16 {5}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">{6}</text>",
        W - RIGHT,
        H - BOTTOM,
        (LEFT + W - RIGHT) / 2.0,
        H - 8.0,
        escape(x_label),
        (TOP + H - BOTTOM) / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        line(&mut out, s, s.style_at(i), x_axis, unit, &xpos, &ypos);
    }
    if let Some((x, label)) = marker {
        let (px, right) = (xpos(x), x > x_lo + (x_hi - x_lo) * 0.7);
        let _ = write!(
            out,
            "<line class=\"marker\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#b91c1c\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
<text x=\"{:.1}\" y=\"{}\" fill=\"#b91c1c\" text-anchor=\"{}\">{}</text>",
            H - BOTTOM,
            if right { px - 6.0 } else { px + 6.0 },
            TOP + 14.0,
            if right { "end" } else { "start" },
            escape(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// One series: its path (gaps where y is NaN), then a point per value with its hover text.
fn line(
    out: &mut String,
    s: &Series,
    style: Style,
    x_axis: XAxis,
    unit: Unit,
    xpos: &dyn Fn(f64) -> f64,
    ypos: &dyn Fn(f64) -> f64,
) {
    let name = escape(&s.name);
    let mut d = String::new();
    let mut pen = false;
    for (x, y) in &s.points {
        if !y.is_finite() {
            pen = false;
            continue;
        }
        let _ = write!(d, "{}{:.1},{:.1} ", if pen { 'L' } else { 'M' }, xpos(*x), ypos(*y));
        pen = true;
    }
    let dash = match style.dash {
        "" => String::new(),
        dash => format!(" stroke-dasharray=\"{dash}\""),
    };
    let _ = write!(
        out,
        "<g class=\"line\" data-series=\"{name}\"><path data-series=\"{name}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
        d.trim_end(),
        style.colour
    );
    let finite: Vec<&(f64, f64)> = s.points.iter().filter(|p| p.1.is_finite()).collect();
    let (r, opacity) = if finite.len() <= DOTS { (3.0, "1") } else { (4.0, "0") };
    for (x, y) in finite {
        let at = match x_axis {
            XAxis::Linear(suffix) => format!("{}{suffix}", trim(*x)),
            XAxis::Percentile => format!("p{}", trim(x * 100.0)),
        };
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{}\" fill-opacity=\"{opacity}\"><title>{name} · {} · {}</title></circle>",
            xpos(*x),
            ypos(*y),
            style.colour,
            escape(&at),
            escape(&unit.format(*y))
        );
    }
    out.push_str("</g>");
}
