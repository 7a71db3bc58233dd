//! The asynchronous series bucketed by the time of the *write* each observation belongs to, not
//! the time it was observed: a backlog that builds during the load shows as high lag during the
//! load, instead of seconds of nothing and then a burst after it. `intervals.csv` keeps the
//! observation time (what a live view sees second by second); this is what the charts draw.
//!
//! The interval writer folds each interval's observations in. An observation may land in any
//! earlier second, but not earlier than its bound allows: a second older than the `horizon` (the
//! longest an observation can take, from its write to its record) is closed, its row appended to
//! `lags_by_write.csv` and its samples forgotten, so a long run holds only the open seconds and
//! writes each row once. An observation that still comes for a closed second (a starved machine)
//! gets a row of its own for that second; readers take the worst of a second's rows. The seconds
//! still open are written when the run ends: a killed run's file lacks its last `horizon`.
//! Its rows are [`IntervalRow`]s, `interval_start_s` being the second of the write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

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

/// The open seconds of a run, and their rows.
pub struct ByWrite {
    start: Instant,
    start_wall: SystemTime,
    horizon: Duration,
    buckets: BTreeMap<(MetricKey, u64), Bucket>,
    rows: BTreeMap<(MetricKey, u64), IntervalRow>,
    /// Rows of closed seconds not yet appended to the file.
    closed: Vec<IntervalRow>,
    /// The file exists (the first write creates it, later ones append).
    created: bool,
}

impl ByWrite {
    /// Seconds count from the run's `start` (`start_wall` on the wall clock); a second closes
    /// once `horizon` has passed since its end.
    pub fn new(start: Instant, start_wall: SystemTime, horizon: Duration) -> ByWrite {
        ByWrite {
            start,
            start_wall,
            horizon,
            buckets: BTreeMap::new(),
            rows: BTreeMap::new(),
            closed: Vec::new(),
            created: false,
        }
    }

    /// Closes the seconds that ended more than the horizon before `now` (all of them when
    /// `all`): their rows wait for [`ByWrite::write`], their samples are dropped.
    pub fn close(&mut self, now: Instant, all: bool) {
        let open_from = now
            .saturating_duration_since(self.start)
            .saturating_sub(self.horizon)
            .as_secs();
        let closing: Vec<(MetricKey, u64)> = self
            .buckets
            .keys()
            .filter(|(_, second)| all || second + 1 < open_from)
            .cloned()
            .collect();
        for id in closing {
            self.buckets.remove(&id);
            if let Some(row) = self.rows.remove(&id) {
                self.closed.push(row);
            }
        }
    }

    /// Seconds still open (their samples kept).
    pub fn open(&self) -> usize {
        self.buckets.len()
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

    /// The open seconds' rows, by series then second.
    pub fn rows(&self) -> impl Iterator<Item = &IntervalRow> {
        self.rows.values()
    }

    /// Appends the closed seconds' rows to `dir/lags_by_write.csv` (creating it, header first,
    /// with the first of them); whether there were any.
    pub fn write(&mut self, dir: &Path) -> anyhow::Result<bool> {
        if self.closed.is_empty() {
            return Ok(false);
        }
        let path = dir.join(FILE);
        // All of them or none: the closed seconds' samples are gone, so a failed write (a full
        // disk) keeps their rows for the next one and cuts the file back to what it held (a row
        // neither lost nor written twice).
        // Unknown (no file to read): nothing is cut.
        let before = match self.created {
            true => std::fs::metadata(&path).ok().map(|m| m.len()),
            false => None,
        };
        let written = (|| {
            let mut csv = match self.created {
                true => IntervalCsv::append(&path),
                false => IntervalCsv::create(&path),
            }?;
            for row in &self.closed {
                csv.write(row)?;
            }
            csv.flush()
        })();
        match written {
            Ok(()) => {
                self.created = true;
                self.closed.clear();
                Ok(true)
            }
            Err(e) => {
                if let Some(before) = before
                    && let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path)
                {
                    let _ = file.set_len(before);
                }
                Err(e.context(format!("cannot write {FILE}")))
            }
        }
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
        let mut by = ByWrite::new(start, SystemTime::UNIX_EPOCH, Duration::from_secs(3600));
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
        by.close(start, true);
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
    /// Regression: a failed append (a full disk) drained the closed seconds' rows, whose samples
    /// were already forgotten: their observations were in no file and no later write.
    #[cfg(unix)]
    #[test]
    fn a_failed_write_keeps_the_closed_rows_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut by = ByWrite::new(start, SystemTime::UNIX_EPOCH, Duration::from_secs(2));
        let keys = [MetricKey::new("sync_lag").tag("service", "crm")];
        let w = |s: u64| Written {
            series: SeriesId(0),
            at: start + Duration::from_millis(s * 1000 + 500),
            micros: 1_000 + s,
            timed_out: false,
        };
        by.add(&keys, vec![w(0)]);
        by.close(start + Duration::from_secs(10), false);
        assert!(by.write(dir.path()).unwrap());
        // The disk fills up.
        let (file, kept) = (dir.path().join(FILE), dir.path().join("kept.csv"));
        std::fs::rename(&file, &kept).unwrap();
        std::os::unix::fs::symlink("/dev/full", &file).unwrap();
        by.add(&keys, vec![w(1), w(2)]);
        by.close(start + Duration::from_secs(11), false);
        assert!(by.write(dir.path()).is_err());
        // It has room again.
        std::fs::remove_file(&file).unwrap();
        std::fs::rename(&kept, &file).unwrap();
        by.close(start + Duration::from_secs(12), true);
        let _ = by.write(dir.path());
        let rows = read(dir.path());
        let seconds: Vec<_> = rows.iter().map(|r| (r.interval_start_s, r.count)).collect();
        assert_eq!(seconds, [(0.0, 1), (1.0, 1), (2.0, 1)]);
    }

    /// A long run keeps only the seconds an observation can still come for: the soak's memory
    /// and CPU per operation grew with every second the file held (rewritten whole each
    /// second). Every observation is still in the file once, a late one in a row of its own.
    #[test]
    fn seconds_past_the_horizon_close_and_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut by = ByWrite::new(start, SystemTime::UNIX_EPOCH, Duration::from_secs(2));
        let keys = [MetricKey::new("sync_lag").tag("service", "crm")];
        let w = |s: u64, micros| Written {
            series: SeriesId(0),
            at: start + Duration::from_millis(s * 1000 + 500),
            micros,
            timed_out: false,
        };
        let mut most_open = 0;
        for now in 1..=600u64 {
            by.add(&keys, vec![w(now - 1, 1_000), w(now - 1, 3_000)]);
            by.close(start + Duration::from_secs(now), false);
            most_open = most_open.max(by.open());
            by.write(dir.path()).unwrap();
        }
        assert!(most_open <= 4, "open seconds {most_open}");
        // Second 10 closed long ago: an observation for it now gets a row of its own.
        by.add(&keys, vec![w(10, 9_000)]);
        by.close(start + Duration::from_secs(601), true);
        by.write(dir.path()).unwrap();
        let rows = read(dir.path());
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 1201);
        let tenth: Vec<_> = rows
            .iter()
            .filter(|r| r.interval_start_s == 10.0)
            .map(|r| r.max_us)
            .collect();
        assert_eq!(tenth, [Some(3_000), Some(9_000)]);
        assert_eq!(rows.len(), 601);
    }
}
