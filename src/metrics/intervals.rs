//! `intervals.csv`: one row per series per interval, with the counters a histogram cannot hold
//! (errors, timeouts, 429s). [`IntervalRow`] is the one definition every writer (the interval
//! writer, `merge`) and every reader (`report`, `merge`, the HTML report) uses.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::series::{ErrorKind, SeriesData};
use crate::vocab::MetricKey;

/// One interval's figures for one series. The field names are the CSV's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalRow {
    /// Seconds from the run's start to the interval's start.
    pub interval_start_s: f64,
    /// The interval's start, RFC 3339 UTC (aligns shards for `merge`).
    pub timestamp: String,
    pub metric: String,
    /// `k=v;k2=v2`.
    pub tags: String,
    pub count: u64,
    /// Every failure, timeouts included.
    pub errors: u64,
    #[serde(default)]
    pub timeouts: u64,
    #[serde(default)]
    pub rate_limited: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

impl IntervalRow {
    pub fn new(interval_start_s: f64, timestamp: String, key: &MetricKey, d: &SeriesData) -> IntervalRow {
        let h = d.histogram();
        // Both quantiles in one walk of the buckets (each of hdrhistogram's `value_at_quantile`
        // walks them from the first); the values are the same (a proptest holds them to it).
        let (p50, p99) = quantiles(h);
        IntervalRow {
            // Milliseconds are all a reader needs, and they keep the file readable.
            interval_start_s: (interval_start_s * 1000.0).round() / 1000.0,
            timestamp,
            metric: key.metric.clone(),
            tags: key.tags_text(),
            count: d.count(),
            errors: d.errors_total(),
            timeouts: d.errors[ErrorKind::Timeout as usize],
            rate_limited: d.rate_limited,
            p50_us: p50,
            p99_us: p99,
            max_us: (!h.is_empty()).then(|| h.max()),
        }
    }

    pub fn key(&self) -> Option<MetricKey> {
        MetricKey::from_parts(&self.metric, &self.tags)
    }

    /// The counters as series data without a histogram (the hlog holds the samples): errors
    /// other than timeouts count as `status` (the CSV does not keep the reason).
    pub fn counters(&self) -> SeriesData {
        let mut d = SeriesData::default();
        d.errors[ErrorKind::Status as usize] = self.errors.saturating_sub(self.timeouts);
        d.errors[ErrorKind::Timeout as usize] = self.timeouts;
        d.rate_limited = self.rate_limited;
        d
    }
}

/// The median and the 99th percentile of `h`, as `value_at_quantile` gives them; `None` when
/// empty.
fn quantiles(h: &hdrhistogram::Histogram<u64>) -> (Option<u64>, Option<u64>) {
    if h.is_empty() {
        return (None, None);
    }
    let mut q = h.value_at_quantiles([0.5, 0.99]);
    (q.next(), q.next())
}

/// Writes rows to `intervals.csv`, flushed at every interval so a killed run keeps them.
pub struct IntervalCsv {
    writer: csv::Writer<std::fs::File>,
}

impl IntervalCsv {
    pub fn create(path: &Path) -> anyhow::Result<IntervalCsv> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(file);
        writer.write_record(HEADER)?;
        writer.flush()?;
        Ok(IntervalCsv { writer })
    }

    /// Opens an existing file (written by [`IntervalCsv::create`]) to add rows at its end.
    pub fn append(path: &Path) -> anyhow::Result<IntervalCsv> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let writer = csv::WriterBuilder::new().has_headers(false).from_writer(file);
        Ok(IntervalCsv { writer })
    }

    pub fn write(&mut self, row: &IntervalRow) -> anyhow::Result<()> {
        self.writer.serialize(row)?;
        Ok(())
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.writer.flush()?;
        Ok(())
    }
}

/// The header, written even when no interval follows.
const HEADER: [&str; 11] = [
    "interval_start_s",
    "timestamp",
    "metric",
    "tags",
    "count",
    "errors",
    "timeouts",
    "rate_limited",
    "p50_us",
    "p99_us",
    "max_us",
];

/// Every row of `path`, and whether a last row cut short by a killed run was left out. Any other
/// bad row is an error naming its line.
pub fn read(path: &Path) -> anyhow::Result<(Vec<IntervalRow>, bool)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut reader = csv::Reader::from_reader(complete.as_bytes());
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        rows.push(row.with_context(|| format!("{}: line {}", path.display(), i + 2))?);
    }
    Ok((rows, complete.len() < text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The row's quantiles, taken in one walk, are hdrhistogram's `value_at_quantile`.
        #[test]
        fn quantiles_in_one_walk_are_the_crates_own(
            samples in proptest::collection::vec((1u64..8_000_000_000, 1u64..100), 0..200)
        ) {
            let mut h = crate::metrics::series::new_histogram();
            for (v, n) in &samples {
                h.saturating_record_n(*v, *n);
            }
            let expected = if h.is_empty() {
                (None, None)
            } else {
                (Some(h.value_at_quantile(0.5)), Some(h.value_at_quantile(0.99)))
            };
            proptest::prop_assert_eq!(quantiles(&h), expected);
        }
    }

    #[test]
    fn rows_round_trip_and_a_cut_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intervals.csv");
        let mut d = SeriesData::default();
        d.record(1500);
        d.record_error(ErrorKind::Timeout, 30_000);
        d.record_error(ErrorKind::Status, 1);
        let key = MetricKey::new("sync_lag")
            .tag("service", "crm")
            .tag("op", "create_user");
        let row = IntervalRow::new(1.00049, "2026-12-02T00:00:01.000Z".into(), &key, &d);
        let mut csv = IntervalCsv::create(&path).unwrap();
        csv.write(&row).unwrap();
        csv.write(&IntervalRow::new(
            2.0,
            "t".into(),
            &MetricKey::new("admin_wait"),
            &SeriesData::default(),
        ))
        .unwrap();
        csv.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("interval_start_s,timestamp,metric,tags,count,errors,timeouts"));
        assert!(text.contains("1.0,2026-12-02T00:00:01.000Z,sync_lag,op=create_user;service=crm,3,2,1,0,"));
        let (back, cut) = read(&path).unwrap();
        assert!(!cut);
        assert_eq!(
            back[0],
            IntervalRow {
                interval_start_s: 1.0,
                ..row.clone()
            }
        );
        assert_eq!(back[0].key(), Some(key));
        assert_eq!((back[1].p50_us, back[1].count), (None, 0));
        // A kill in the middle of a row.
        std::fs::write(&path, format!("{text}3.0,2026-12-02T00:00:03.000Z,api_lat")).unwrap();
        let (rows, cut) = read(&path).unwrap();
        assert_eq!((rows.len(), cut), (2, true));
    }
}
