//! The asynchronous series bucketed by the time of the *write* each observation belongs to, not
//! the time it was observed: a backlog that builds during the load shows as high lag during the
//! load, instead of seconds of nothing and then a burst after it. `intervals.csv` keeps the
//! observation time (what a live view sees second by second); this is what the charts draw.
//!
//! The interval writer folds each interval's observations in (an observation may land in any
//! earlier second, so every bucket stays open until the run ends) and rewrites
//! `lags_by_write.csv` atomically when something changed: a killed run keeps the last whole file.
//! Its rows are [`IntervalRow`]s, `interval_start_s` being the second of the write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::SeriesId;
use super::intervals::{self, IntervalCsv, IntervalRow};
use crate::vocab::MetricKey;

/// The file in a run's folder.
pub const FILE: &str = "lags_by_write.csv";

/// One observation with the write's intended start.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub series: SeriesId,
    pub at: Instant,
    pub micros: u64,
    pub timed_out: bool,
}

/// One second of writes of one series: the observed lags (timeouts at their bound, as the
/// histograms hold them) and how many timed out.
#[derive(Default)]
struct Bucket {
    micros: Vec<u64>,
    timeouts: u64,
}

/// Every bucket of a run so far, and its row.
pub struct ByWrite {
    start: Instant,
    start_wall: SystemTime,
    buckets: BTreeMap<(MetricKey, u64), Bucket>,
    rows: BTreeMap<(MetricKey, u64), IntervalRow>,
}

impl ByWrite {
    /// Seconds count from the run's `start` (`start_wall` on the wall clock).
    pub fn new(start: Instant, start_wall: SystemTime) -> ByWrite {
        ByWrite {
            start,
            start_wall,
            buckets: BTreeMap::new(),
            rows: BTreeMap::new(),
        }
    }

    /// Folds observations in (`keys` names the series by id); whether any row changed.
    pub fn add(&mut self, keys: &[MetricKey], written: Vec<Written>) -> bool {
        let mut dirty = BTreeSet::new();
        for w in written {
            let Some(key) = keys.get(w.series.0 as usize) else {
                continue;
            };
            let second = w.at.saturating_duration_since(self.start).as_secs();
            let bucket = self.buckets.entry((key.clone(), second)).or_default();
            bucket.micros.push(w.micros);
            bucket.timeouts += u64::from(w.timed_out);
            dirty.insert((key.clone(), second));
        }
        for id in &dirty {
            if let Some(b) = self.buckets.get_mut(id) {
                b.micros.sort_unstable();
            }
            if let Some(b) = self.buckets.get(id) {
                let row = self.row(&id.0, id.1, b);
                self.rows.insert(id.clone(), row);
            }
        }
        !dirty.is_empty()
    }

    fn row(&self, key: &MetricKey, second: u64, b: &Bucket) -> IntervalRow {
        // Nearest rank on the sorted values: exact, where the histograms are within 0.1 %.
        let q = |p: f64| {
            let n = b.micros.len();
            (n > 0).then(|| b.micros[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        let at = self.start_wall + Duration::from_secs(second);
        IntervalRow {
            interval_start_s: second as f64,
            timestamp: humantime::format_rfc3339_millis(at).to_string(),
            metric: key.metric.clone(),
            tags: key.tags_text(),
            count: b.micros.len() as u64,
            errors: b.timeouts,
            timeouts: b.timeouts,
            rate_limited: 0,
            p50_us: q(0.5),
            p99_us: q(0.99),
            max_us: b.micros.last().copied(),
        }
    }

    /// Every row, by series then second.
    pub fn rows(&self) -> impl Iterator<Item = &IntervalRow> {
        self.rows.values()
    }

    /// Rewrites `dir/lags_by_write.csv` whole (a temp file renamed over it).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let mut csv = IntervalCsv::create(&tmp)?;
        for row in self.rows() {
            csv.write(row)?;
        }
        csv.flush()?;
        std::fs::rename(&tmp, dir.join(FILE)).with_context(|| format!("cannot write {FILE}"))
    }
}

/// The rows of `dir/lags_by_write.csv`; none when the run has none (an older run, a merge).
pub fn read(dir: &Path) -> Vec<IntervalRow> {
    intervals::read(&dir.join(FILE)).map_or_else(|_| Vec::new(), |(rows, _)| rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Observations land in the second of their write, however late they were observed, and
    /// the file holds every bucket.
    #[test]
    fn observations_are_bucketed_by_the_second_of_their_write() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut by = ByWrite::new(start, SystemTime::UNIX_EPOCH);
        let keys = [MetricKey::new("sync_lag")
            .tag("op", "create_user")
            .tag("service", "crm")];
        let at = |s: u64| start + Duration::from_millis(s * 1000 + 300);
        let w = |s, micros, timed_out| Written {
            series: SeriesId(0),
            at: at(s),
            micros,
            timed_out,
        };
        assert!(by.add(&keys, vec![w(1, 10_000, false), w(1, 30_000, false)]));
        // Observed much later, still about a write of second 1; one of second 2 timed out.
        assert!(by.add(&keys, vec![w(1, 20_000, false), w(2, 60_000_000, true)]));
        assert!(!by.add(&keys, vec![]));
        by.write(dir.path()).unwrap();
        let rows = read(dir.path());
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].interval_start_s, rows[0].count, rows[0].p50_us, rows[0].max_us),
            (1.0, 3, Some(20_000), Some(30_000))
        );
        assert_eq!((rows[1].interval_start_s, rows[1].timeouts), (2.0, 1));
        assert_eq!(rows[0].timestamp, "1970-01-01T00:00:01.000Z");
    }
}
