//! Reading a run back from its files: `histograms.hlog` (every interval histogram, per tag) and
//! `intervals.csv` (the counters a histogram cannot hold: errors, 429s, timeouts), so that reports,
//! thresholds and comparisons can be rebuilt from any run, including a killed one.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::key::MetricKey;
use super::series::{ErrorKind, SeriesData, new_histogram};

/// The whole run's data per series, as the interval writer had it at the end.
pub struct RunData {
    pub keys: Vec<MetricKey>,
    pub series: Vec<SeriesData>,
}

/// Merges every interval of `dir/histograms.hlog` per tag, and adds the counters of
/// `dir/intervals.csv` when it is there.
pub fn read_run(dir: &Path) -> anyhow::Result<RunData> {
    let path = dir.join("histograms.hlog");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut merged: BTreeMap<MetricKey, SeriesData> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| anyhow::anyhow!("{} is not an interval log: {e:?}", path.display()))?;
        let LogEntry::Interval(h) = entry else { continue };
        let Some(key) = h.tag().and_then(|t| MetricKey::from_hlog_tag(t.as_str())) else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .with_context(|| format!("{}: bad base64 in an interval of {key}", path.display()))?;
        let hist: hdrhistogram::Histogram<u64> = deserializer
            .deserialize(&mut raw.as_slice())
            .map_err(|e| anyhow::anyhow!("{}: bad histogram in an interval of {key}: {e:?}", path.display()))?;
        let mut bounded = new_histogram();
        bounded.add(&hist).map_err(|e| anyhow::anyhow!("{key}: {e:?}"))?;
        merged.entry(key).or_default().add(&SeriesData::from_histogram(bounded));
    }
    let csv_path = dir.join("intervals.csv");
    if csv_path.exists() {
        let mut reader = csv::Reader::from_path(&csv_path)?;
        for row in reader.records() {
            let row = row?;
            let (Some(metric), Some(tags)) = (row.get(2), row.get(3)) else {
                continue;
            };
            let key = MetricKey::from_hlog_tag(&if tags.is_empty() {
                metric.to_string()
            } else {
                format!("{metric}{{{tags}}}")
            });
            let Some(key) = key else { continue };
            let num = |i: usize| row.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let d = merged.entry(key).or_default();
            // `errors` include the timeouts, which the histogram already holds at their bound.
            let (errors, timeouts) = (num(5), num(6));
            d.errors[ErrorKind::Status as usize] += errors.saturating_sub(timeouts);
            d.errors[ErrorKind::Timeout as usize] += timeouts;
            d.rate_limited += num(7);
        }
    }
    let (keys, series) = merged.into_iter().unzip();
    Ok(RunData { keys, series })
}
