//! Reading a run back from its files: `histograms.hlog` (every interval histogram, per tag) and
//! `intervals.csv` (the counters a histogram cannot hold). [`read_hlog`] is the one hlog reader
//! (`report`, `compare` and `merge` all use it); [`read_run`] merges a whole run per series.
//! A last line cut short by a killed run is left out, never an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::intervals;
use super::series::{SeriesData, new_histogram};
use crate::vocab::MetricKey;

/// One interval histogram of one series.
pub struct LoggedInterval {
    pub key: MetricKey,
    /// From the log's base time (the run's start).
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// A whole interval log.
pub struct Hlog {
    /// Wall-clock time the interval starts count from.
    pub base: SystemTime,
    pub intervals: Vec<LoggedInterval>,
    /// The last line was cut short (the run was killed while writing it) and left out.
    pub cut_short: bool,
}

/// Reads `path`, an interval log as the interval writer (or `merge`) writes it.
pub fn read_hlog(path: &Path) -> anyhow::Result<Hlog> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = path.display().to_string();
    // Every line the writer finished ends with a newline; what follows the last one was cut.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let cut_short = complete < bytes.len();
    let mut base = None;
    let mut start_time = None;
    let mut intervals = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes[..complete]) {
        match entry.map_err(|e| anyhow::anyhow!("{what} is not an interval log: {e:?}"))? {
            LogEntry::BaseTime(t) => base = Some(t),
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::Interval(h) => {
                let Some(key) = h.tag().and_then(|t| MetricKey::from_hlog_tag(t.as_str())) else {
                    continue;
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .with_context(|| format!("{what}: bad base64 in an interval of {key}"))?;
                let decoded: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| anyhow::anyhow!("{what}: bad histogram in an interval of {key}: {e:?}"))?;
                // Re-bounded, so that every histogram of a run adds to every other.
                let mut histogram = new_histogram();
                histogram
                    .add(&decoded)
                    .map_err(|e| anyhow::anyhow!("{what}: {key}: {e:?}"))?;
                intervals.push(LoggedInterval {
                    key,
                    start: h.start_timestamp(),
                    length: h.duration(),
                    histogram,
                });
            }
        }
    }
    let base = base.or(start_time).unwrap_or_default();
    Ok(Hlog {
        base: SystemTime::UNIX_EPOCH + base,
        intervals,
        cut_short,
    })
}

/// The whole run's data per series, as the interval writer had it at the end.
pub struct RunData {
    pub keys: Vec<MetricKey>,
    pub series: Vec<SeriesData>,
    /// From the run's start to the end of its last interval.
    pub duration: Duration,
    /// A last line cut short (by a kill) was left out of one of the files.
    pub cut_short: bool,
}

impl RunData {
    /// The series of `key`, if the run has it.
    pub fn get(&self, key: &MetricKey) -> Option<&SeriesData> {
        self.keys.iter().position(|k| k == key).map(|i| &self.series[i])
    }
}

/// Merges every interval of `dir/histograms.hlog` per series, with the counters of
/// `dir/intervals.csv` when it is there.
pub fn read_run(dir: &Path) -> anyhow::Result<RunData> {
    let hlog = read_hlog(&dir.join("histograms.hlog"))?;
    let mut merged: BTreeMap<MetricKey, SeriesData> = BTreeMap::new();
    let mut duration = Duration::ZERO;
    for i in &hlog.intervals {
        duration = duration.max(i.start + i.length);
        merged.entry(i.key.clone()).or_default().add_histogram(&i.histogram);
    }
    let mut cut_short = hlog.cut_short;
    let csv_path = dir.join("intervals.csv");
    if csv_path.exists() {
        let (rows, csv_cut) = intervals::read(&csv_path)?;
        cut_short |= csv_cut;
        for row in rows {
            let Some(key) = row.key() else { continue };
            // The histogram already holds the timeouts at their bound; add only the counters.
            merged.entry(key).or_default().add(&row.counters());
            // A row covers up to a second from its start.
            duration = duration.max(Duration::from_secs_f64(row.interval_start_s.max(0.0)));
        }
    }
    let (keys, series) = merged.into_iter().unzip();
    Ok(RunData {
        keys,
        series,
        duration,
        cut_short,
    })
}
