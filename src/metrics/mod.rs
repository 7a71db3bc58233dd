//! The metrics registry: one key per series, `(metric, tags)`, and µs HdrHistograms plus counters
//! recorded without shared locks.
//!
//! Every producer records through a [`SeriesId`] obtained once at set-up. Samples land in a
//! per-thread shard (a thread-local handle to a mutex that only its own thread takes, except once
//! per interval when [`Registry::take_interval`] merges and resets every shard), so the request
//! path never waits on another request.
//!
//! Imports only the shared vocabulary and the results types: the engine, probes and checks record
//! into it; thresholds, reports and merges read what it wrote.
//!
//! # Layout
//! - [`series`]: one series' histogram and counters. [`summary`]: percentile summaries.
//! - [`writer`]: the interval writer (hlog and CSV each second) and its observer seam.
//!   [`deflate`]: its hlog lines' serializer.
//! - [`intervals`]: the `intervals.csv` row. [`hlog`]: reading a run's files back.
//! - [`by_write`]: the asynchronous series bucketed by the time of the write they observed
//!   (`lags_by_write.csv`), so a backlog shows when it built up, not when it drained.
//! - [`progress`]: the live progress line. [`exposition`]: live Prometheus text.
//!   [`dashboard`]: the live page (`run --dashboard`).

pub mod by_write;
pub mod dashboard;
pub mod deflate;
pub mod exposition;
pub mod hlog;
pub mod intervals;
pub mod progress;
pub mod series;
pub mod summary;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub use crate::vocab::MetricKey;
pub use series::{ErrorKind, SeriesData};

/// The union of the series `pick` selects: percentiles of several series are those of their
/// merged histogram, never an average of their percentiles.
pub fn merge_matching<'a>(
    keys: &'a [MetricKey],
    series: &'a [SeriesData],
    pick: impl Fn(&MetricKey) -> bool,
) -> Option<SeriesData> {
    let mut merged: Option<SeriesData> = None;
    for (_, d) in keys.iter().zip(series).filter(|(k, _)| pick(k)) {
        merged.get_or_insert_with(SeriesData::default).add(d);
    }
    merged
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId(pub u32);

type Shard = Arc<Mutex<Vec<SeriesData>>>;

static NEXT_REGISTRY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's shard of each live registry (several registries live at once in tests).
    static SHARDS: RefCell<Vec<(u64, Shard)>> = const { RefCell::new(Vec::new()) };
}

pub struct Registry {
    id: u64,
    keys: RwLock<Vec<MetricKey>>,
    index: RwLock<HashMap<MetricKey, SeriesId>>,
    shards: Mutex<Vec<Shard>>,
    /// Observations with the time of the write they observed, until the interval writer takes
    /// them (probes sample writes: a few per second, not one per request).
    written: Mutex<Vec<by_write::Written>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self {
            id: NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed),
            keys: RwLock::new(Vec::new()),
            index: RwLock::new(HashMap::new()),
            shards: Mutex::new(Vec::new()),
            written: Mutex::new(Vec::new()),
        }
    }

    /// The series for `key`, registering it on first use (set-up time, not the hot path).
    pub fn series(&self, key: MetricKey) -> SeriesId {
        if let Some(id) = self.index.read().get(&key) {
            return *id;
        }
        let mut index = self.index.write();
        if let Some(id) = index.get(&key) {
            return *id;
        }
        let mut keys = self.keys.write();
        let id = SeriesId(keys.len() as u32);
        keys.push(key.clone());
        index.insert(key, id);
        id
    }

    pub fn keys(&self) -> Vec<MetricKey> {
        self.keys.read().clone()
    }

    pub fn key(&self, id: SeriesId) -> MetricKey {
        self.keys.read()[id.0 as usize].clone()
    }

    fn with_shard<R>(&self, f: impl FnOnce(&mut Vec<SeriesData>) -> R) -> R {
        SHARDS.with(|cell| {
            {
                let shards = cell.borrow();
                if let Some((_, shard)) = shards.iter().find(|(id, _)| *id == self.id) {
                    return f(&mut shard.lock());
                }
            }
            let shard: Shard = Arc::new(Mutex::new(Vec::new()));
            self.shards.lock().push(shard.clone());
            let mut shards = cell.borrow_mut();
            // Forget shards of registries that are gone (only this thread still held them).
            shards.retain(|(_, s)| Arc::strong_count(s) > 1);
            shards.push((self.id, shard.clone()));
            drop(shards);
            f(&mut shard.lock())
        })
    }

    fn slot(series: &mut Vec<SeriesData>, id: SeriesId) -> &mut SeriesData {
        let i = id.0 as usize;
        if series.len() <= i {
            series.resize_with(i + 1, SeriesData::default);
        }
        &mut series[i]
    }

    /// A successful observation, in µs.
    pub fn record(&self, id: SeriesId, micros: u64) {
        self.with_shard(|s| Self::slot(s, id).record(micros));
    }

    /// A failed operation. A timeout is also recorded in the histogram at its bound (`micros`),
    /// so that what never arrived still weighs on the percentiles.
    pub fn record_error(&self, id: SeriesId, kind: ErrorKind, micros: u64) {
        self.with_shard(|s| Self::slot(s, id).record_error(kind, micros));
    }

    /// An observation whose precision is bounded by `resolution_us` (a polling interval).
    /// `timed_out`: it never arrived and `micros` is its bound.
    pub fn record_observation(&self, id: SeriesId, micros: u64, resolution_us: u64, timed_out: bool) {
        self.with_shard(|s| {
            let d = Self::slot(s, id);
            if timed_out {
                d.record_error(ErrorKind::Timeout, micros);
            } else {
                d.record(micros);
            }
            d.record_resolution(resolution_us);
        });
    }

    /// An observation of `series` as [`Registry::record_observation`] records it, kept again
    /// under the write's intended start `written`: the charts place it there
    /// ([`by_write`]).
    pub fn record_written(&self, series: SeriesId, written: std::time::Instant, micros: u64, timed_out: bool) {
        self.written.lock().push(by_write::Written {
            series,
            at: written,
            micros,
            timed_out,
        });
    }

    /// The observations [`Registry::record_written`] kept since the last call.
    pub fn take_written(&self) -> Vec<by_write::Written> {
        std::mem::take(&mut *self.written.lock())
    }

    /// A 429 answer: counted apart from errors.
    pub fn record_rate_limited(&self, id: SeriesId) {
        self.with_shard(|s| Self::slot(s, id).rate_limited += 1);
    }

    /// Merges every shard's data since the last call into one `SeriesData` per series, resetting
    /// the shards (allocations are kept).
    pub fn take_interval(&self) -> Vec<SeriesData> {
        let mut out = Vec::new();
        self.take_interval_into(&mut out);
        out
    }

    /// [`Registry::take_interval`] into `out`, whose histograms are emptied and reused: once
    /// every series has had a sample, an interval allocates nothing, and a series without
    /// samples never costs a histogram.
    pub fn take_interval_into(&self, out: &mut Vec<SeriesData>) {
        let n = self.key_count();
        out.iter_mut().for_each(SeriesData::reset);
        out.resize_with(n, SeriesData::default);
        let shards: Vec<Shard> = self.shards.lock().clone();
        for shard in shards {
            let mut guard = shard.lock();
            for (i, data) in guard.iter_mut().enumerate() {
                if i < n && !data.is_empty() {
                    out[i].take_from(data);
                }
            }
        }
    }

    /// How many series are registered.
    pub fn key_count(&self) -> usize {
        self.keys.read().len()
    }
}

/// The warning for a run's HTTP endpoint (`--dashboard`, `--metrics-listen`) bound beyond
/// loopback, where anyone who reaches the address sees the run; `None` on loopback.
pub fn beyond_loopback(flag: &str, addr: std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback())
        .then(|| format!("{flag} listens beyond loopback ({addr}): anyone who reaches it sees the run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_many_threads_merge_per_interval() {
        let reg = Arc::new(Registry::new());
        let a = reg.series(MetricKey::new("api_latency").tag("op", "create_user"));
        let b = reg.series(MetricKey::new("api_latency").tag("op", "delete_user"));
        assert_eq!(reg.series(MetricKey::new("api_latency").tag("op", "create_user")), a);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        reg.record(a, 100 + i);
                    }
                    reg.record_error(b, ErrorKind::Status, 5);
                    if t == 0 {
                        reg.record_rate_limited(b);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let interval = reg.take_interval();
        assert_eq!(interval[a.0 as usize].histogram().len(), 4000);
        assert_eq!(interval[b.0 as usize].errors_total(), 4);
        assert_eq!(interval[b.0 as usize].rate_limited, 1);
        // The shards were reset: the next interval starts empty.
        let next = reg.take_interval();
        assert!(next.iter().all(SeriesData::is_empty));
    }

    /// The probes' CPU was mostly histograms made and dropped every second, per series.
    #[test]
    fn intervals_reuse_their_histograms_and_empty_series_cost_none() {
        let reg = Registry::new();
        let busy = reg.series(MetricKey::new("api_latency").tag("op", "create_user"));
        let observed = reg.series(MetricKey::new("sync_lag").tag("service", "crm"));
        let _idle = reg.series(MetricKey::new("sync_lag").tag("service", "mail"));
        let mut interval = Vec::new();
        let mut made_per_interval = Vec::new();
        for second in 0..5u64 {
            let before = series::made::so_far();
            reg.record(busy, 100 + second);
            reg.record_observation(observed, 2_000, 50, second == 3);
            reg.take_interval_into(&mut interval);
            made_per_interval.push(series::made::so_far() - before);
            assert_eq!(interval[busy.0 as usize].histogram().len(), 1, "second {second}");
            assert_eq!(interval[observed.0 as usize].count(), 1);
            assert_eq!(interval[observed.0 as usize].errors_total(), u64::from(second == 3));
            assert!(interval[2].is_empty());
            assert_eq!(interval[2].histogram().len(), 0);
        }
        // The first interval makes the histograms of the two series with samples (latency, and
        // resolution for the observed one) in the shard and in the merged interval; no later
        // one makes any, and the idle series none ever.
        assert_eq!(made_per_interval, [6, 0, 0, 0, 0]);
    }

    #[test]
    fn two_registries_on_one_thread_stay_apart() {
        let (r1, r2) = (Registry::new(), Registry::new());
        let s1 = r1.series(MetricKey::new("x"));
        let s2 = r2.series(MetricKey::new("x"));
        r1.record(s1, 1);
        r2.record(s2, 2);
        r2.record(s2, 3);
        assert_eq!(r1.take_interval()[0].histogram().len(), 1);
        assert_eq!(r2.take_interval()[0].histogram().len(), 2);
    }
}
