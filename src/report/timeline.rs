//! The charts of `report.html`: throughput and errors per second, API latency p99 and p50 per
//! operation over time, and for each asynchronous metric (queue delay, sync lag, end-to-end) its
//! p99 over time and its distribution per series on a percentile axis. Builds the series from
//! `intervals.csv` and the summary's percentiles; [`charts`] draws them.

use std::collections::BTreeMap;
use std::path::Path;

use super::charts::{self, Series, Unit};
use crate::metrics::intervals::{self, IntervalRow};
use crate::results::Summary;
use crate::vocab::metric;

/// The rows of `dir/intervals.csv` (none when it is missing or unreadable: the charts are
/// then empty, the tables still there).
pub fn read_intervals(dir: &Path) -> Vec<IntervalRow> {
    intervals::read(&dir.join("intervals.csv")).map_or_else(|_| Vec::new(), |(rows, _)| rows)
}

/// Every chart, in reading order: the load first, then the asynchronous half.
pub fn render(s: &Summary, intervals: &[IntervalRow]) -> String {
    let mut out = String::new();
    throughput_and_latency(&mut out, intervals);
    for metric in [metric::QUEUE_DELAY, metric::SYNC_LAG, metric::END_TO_END] {
        asynchronous(&mut out, s, intervals, metric);
    }
    out
}

/// Every second from the first interval to the last, so that a stall (a second with nothing)
/// is drawn as zero or as a gap, never bridged by a straight line.
fn seconds(rows: &[IntervalRow]) -> Vec<f64> {
    let last = rows.iter().map(|r| r.interval_start_s).fold(0.0_f64, f64::max);
    (0..=last.floor() as u64).map(|s| s as f64).collect()
}

/// Per-tag series of one metric over every second (`None` values become gaps).
fn over_time(rows: &[IntervalRow], metric: &str, value: impl Fn(&IntervalRow) -> Option<f64>) -> Vec<Series> {
    let mut by_tag: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        let name = r.key().map_or_else(|| metric.to_string(), |k| k.to_string());
        let at = by_tag.entry(name).or_default();
        if let Some(v) = value(r) {
            at.insert(r.interval_start_s.floor() as u64, v);
        }
    }
    let all = seconds(rows);
    by_tag
        .into_iter()
        .map(|(name, at)| Series {
            name,
            points: all
                .iter()
                .map(|s| (*s, at.get(&(*s as u64)).copied().unwrap_or(f64::NAN)))
                .collect(),
        })
        .collect()
}

/// Throughput and errors of all operations together, then p99 and p50 per operation.
fn throughput_and_latency(out: &mut String, intervals: &[IntervalRow]) {
    let mut ops: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for r in intervals.iter().filter(|r| r.metric == metric::API_LATENCY) {
        let e = ops.entry(r.interval_start_s.floor() as u64).or_default();
        e.0 += r.count as f64;
        e.1 += r.errors as f64;
    }
    // A second with no operation at all is a zero, not a missing point.
    let all = seconds(intervals);
    let per_second = |pick: fn(&(f64, f64)) -> f64| {
        all.iter()
            .map(|s| (*s, ops.get(&(*s as u64)).map_or(0.0, pick)))
            .collect()
    };
    let throughput = [
        Series {
            name: "operations/s".into(),
            points: per_second(|v| v.0),
        },
        Series {
            name: "errors/s".into(),
            points: per_second(|v| v.1),
        },
    ];
    out.push_str(&charts::over_time(
        "Throughput and errors",
        "per second",
        Unit::PerSecond,
        &throughput,
    ));
    let p99 = over_time(intervals, metric::API_LATENCY, |r| r.p99_us.map(|v| v as f64));
    out.push_str(&charts::over_time(
        "API latency p99 per operation",
        "p99",
        Unit::Micros,
        &p99,
    ));
    let p50 = over_time(intervals, metric::API_LATENCY, |r| r.p50_us.map(|v| v as f64));
    out.push_str(&charts::over_time(
        "API latency p50 per operation",
        "p50",
        Unit::Micros,
        &p50,
    ));
}

/// One asynchronous metric: its p99 over time, and its distribution per tag set on a
/// percentile axis.
fn asynchronous(out: &mut String, s: &Summary, intervals: &[IntervalRow], metric: &str) {
    let series = over_time(intervals, metric, |r| r.p99_us.map(|v| v as f64));
    if !series.is_empty() {
        out.push_str(&charts::over_time(
            &format!("{metric} p99 over time"),
            "p99",
            Unit::Micros,
            &series,
        ));
    }
    let dist: Vec<Series> = s
        .metrics
        .iter()
        .filter(|m| m.metric == metric)
        .map(|m| Series {
            name: m.key().to_string(),
            points: [
                (0.5, m.p50_us),
                (0.9, m.p90_us),
                (0.95, m.p95_us),
                (0.99, m.p99_us),
                (0.999, m.p999_us),
            ]
            .iter()
            .filter_map(|(q, v)| v.map(|v| (*q, v as f64)))
            .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if !dist.is_empty() {
        out.push_str(&charts::distribution(
            &format!("{metric} percentile distribution"),
            metric,
            &dist,
        ));
    }
}
