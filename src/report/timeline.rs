//! The charts of `report.html`: throughput and errors per second, API latency p99 per
//! operation over time and its distribution, and for each asynchronous metric (queue delay,
//! sync lag, end-to-end) its p99 over time and its distribution on a percentile axis. Builds the
//! series from `intervals.csv`, `lags_by_write.csv` (the asynchronous half by the time of the
//! write, when the run has it) and the summary's percentiles; [`charts`] draws them, every
//! line by its readable label and its one style of the run.

use std::collections::BTreeMap;
use std::path::Path;

use super::charts::{self, Series, Unit};
use crate::metrics::intervals::{self, IntervalRow};
use crate::results::{MetricSummary, Summary};
use crate::vocab::series::{Styles, label, whole};
use crate::vocab::{MetricKey, metric};

/// What the charts are drawn from, besides the summary.
#[derive(Default)]
pub struct Rows {
    /// `intervals.csv`: every series by the second it was recorded in.
    pub intervals: Vec<IntervalRow>,
    /// `lags_by_write.csv`: the asynchronous series by the second of their write.
    pub by_write: Vec<IntervalRow>,
}

/// The rows of `dir` (none when a file is missing or unreadable: the charts are then left out,
/// the tables still there).
pub fn read(dir: &Path) -> Rows {
    Rows {
        intervals: read_intervals(dir),
        by_write: crate::metrics::by_write::read(dir),
    }
}

/// The rows of `dir/intervals.csv`.
pub fn read_intervals(dir: &Path) -> Vec<IntervalRow> {
    intervals::read(&dir.join("intervals.csv")).map_or_else(|_| Vec::new(), |(rows, _)| rows)
}

/// The style of every series of the run: its summary's keys, then any key only the interval
/// files know.
pub fn styles(s: &Summary, rows: &Rows) -> Styles {
    let keys: Vec<MetricKey> = s
        .metrics
        .iter()
        .map(MetricSummary::key)
        .chain(rows.intervals.iter().chain(&rows.by_write).filter_map(IntervalRow::key))
        .collect();
    Styles::of(&keys)
}

/// Every chart with data, in reading order: the load first, then the asynchronous half.
pub fn render(s: &Summary, rows: &Rows, styles: &Styles) -> String {
    let mut out = String::new();
    let all = seconds(rows.intervals.iter().chain(&rows.by_write));
    throughput(&mut out, &rows.intervals, &all);
    let p99 = over_time(&rows.intervals, metric::API_LATENCY, &all, styles);
    out.push_str(&charts::over_time(
        "API latency p99 per operation",
        "p99",
        Unit::Micros,
        &p99,
    ));
    out.push_str(&distribution(s, metric::API_LATENCY, "API latency", styles));
    for (metric, name) in [
        (metric::QUEUE_DELAY, "Queue delay"),
        (metric::SYNC_LAG, "Sync lag"),
        (metric::END_TO_END, "End to end"),
    ] {
        let by_write = over_time(&rows.by_write, metric, &all, styles);
        let (series, when) = if by_write.iter().any(Series::has_data) {
            (by_write, "by the time of the write")
        } else {
            (
                over_time(&rows.intervals, metric, &all, styles),
                "by the time it was observed",
            )
        };
        out.push_str(&charts::over_time(
            &format!("{name} p99, {when}"),
            "p99",
            Unit::Micros,
            &series,
        ));
        out.push_str(&distribution(s, metric, name, styles));
    }
    out
}

/// Every second from the first row to the last, so that a stall (a second with nothing) is
/// drawn as zero or as a gap, never bridged by a straight line.
fn seconds<'a>(rows: impl Iterator<Item = &'a IntervalRow>) -> Vec<f64> {
    let last = rows.map(|r| r.interval_start_s).fold(0.0_f64, f64::max);
    (0..=last.floor() as u64).map(|s| s as f64).collect()
}

/// Per-series p99 of one metric over every second (`None` values become gaps).
fn over_time(rows: &[IntervalRow], metric: &str, all: &[f64], styles: &Styles) -> Vec<Series> {
    let mut by_label: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        let name = r.key().map_or_else(|| metric.to_string(), |k| label(&k));
        let at = by_label.entry(name).or_default();
        // A second may have two rows (an observation that came after its second closed,
        // `metrics::by_write`): the worst of them.
        if let Some(v) = r.p99_us {
            let v = v as f64;
            at.entry(r.interval_start_s.floor() as u64)
                .and_modify(|w| *w = w.max(v))
                .or_insert(v);
        }
    }
    by_label
        .into_iter()
        .map(|(name, at)| {
            let points = all
                .iter()
                .map(|s| (*s, at.get(&(*s as u64)).copied().unwrap_or(f64::NAN)))
                .collect();
            let style = styles.style(&name);
            Series::new(name, points).styled(style)
        })
        .collect()
}

/// Throughput and errors of all operations together.
fn throughput(out: &mut String, intervals: &[IntervalRow], all: &[f64]) {
    let mut ops: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for r in intervals.iter().filter(|r| r.metric == metric::API_LATENCY) {
        let e = ops.entry(r.interval_start_s.floor() as u64).or_default();
        e.0 += r.count as f64;
        e.1 += r.errors as f64;
    }
    if ops.is_empty() {
        return;
    }
    // A second with no operation at all is a zero, not a missing point.
    let per_second = |pick: fn(&(f64, f64)) -> f64| {
        all.iter()
            .map(|s| (*s, ops.get(&(*s as u64)).map_or(0.0, pick)))
            .collect()
    };
    let throughput = [
        Series::new("operations/s", per_second(|v| v.0)).styled(whole("operations/s")),
        Series::new("errors/s", per_second(|v| v.1)).styled(whole("errors/s")),
    ];
    out.push_str(&charts::over_time(
        "Throughput and errors",
        "per second",
        Unit::PerSecond,
        &throughput,
    ));
}

/// One metric's distribution per series on a percentile axis, from the summary.
fn distribution(s: &Summary, metric: &str, name: &str, styles: &Styles) -> String {
    let series: Vec<Series> = s
        .metrics
        .iter()
        .filter(|m| m.metric == metric && m.count > 0)
        .map(|m| {
            let points = [
                (0.5, m.p50_us),
                (0.9, m.p90_us),
                (0.95, m.p95_us),
                (0.99, m.p99_us),
                (0.999, m.p999_us),
            ]
            .iter()
            .filter_map(|(q, v)| v.map(|v| (*q, v as f64)))
            .collect();
            let name = label(&m.key());
            let style = styles.style(&name);
            Series::new(name, points).styled(style)
        })
        .collect();
    charts::distribution(&format!("{name} percentile distribution"), name, &series)
}
