//! One series' data: a µs HdrHistogram (3 significant digits) and its counters.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value tracked: one hour in µs. Larger values are recorded at this bound.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// Why an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An unexpected HTTP status.
    Status,
    /// No answer before the timeout.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// The answer lacked what the operation needs (e.g. no `id` in a created user).
    Payload,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Status,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::Payload,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Status => "status",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Payload => "payload",
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    made::one();
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Resolutions need no three digits: two (1 %) keep the histogram an eighth of the size, which
/// matters as one is merged per series every second.
fn new_resolution_histogram() -> Histogram<u64> {
    made::one();
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("valid histogram bounds")
}

/// The histogram [`SeriesData::histogram`] lends for a series with no samples, so that reading
/// an empty series allocates nothing (a full-size histogram is about 190 KB).
static EMPTY: std::sync::LazyLock<Histogram<u64>> =
    std::sync::LazyLock::new(|| Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"));

/// Histograms made on this thread, counted in tests only: the registry's reuse of its histograms
/// from one interval to the next is asserted as logic, not timed.
pub mod made {
    #[cfg(test)]
    thread_local! {
        static MADE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    #[inline]
    pub(super) fn one() {
        #[cfg(test)]
        MADE.with(|m| m.set(m.get() + 1));
    }

    /// How many series histograms this thread has made so far.
    #[cfg(test)]
    pub fn so_far() -> u64 {
        MADE.with(|m| m.get())
    }
}

#[derive(Debug, Clone, Default)]
pub struct SeriesData {
    histogram: Option<Histogram<u64>>,
    pub errors: [u64; 4],
    pub rate_limited: u64,
    /// The resolutions (µs: bracket widths, clock uncertainties) of the observations recorded
    /// with one, for their median and worst.
    resolutions: Option<Histogram<u64>>,
}

impl SeriesData {
    fn hist_mut(&mut self) -> &mut Histogram<u64> {
        self.histogram.get_or_insert_with(new_histogram)
    }

    pub fn record(&mut self, micros: u64) {
        self.hist_mut().saturating_record(micros.max(1));
    }

    pub fn record_error(&mut self, kind: ErrorKind, micros: u64) {
        self.errors[kind as usize] += 1;
        if kind == ErrorKind::Timeout {
            self.record(micros);
        }
    }

    /// The histogram (empty when nothing was recorded).
    pub fn histogram(&self) -> &Histogram<u64> {
        self.histogram.as_ref().unwrap_or(&EMPTY)
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Attempts: histogram samples plus failures that are not in it (all but timeouts).
    pub fn count(&self) -> u64 {
        (self.histogram.as_ref().map_or(0, |h| h.len()) + self.errors_total())
            .saturating_sub(self.errors[ErrorKind::Timeout as usize])
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.as_ref().is_none_or(|h| h.is_empty())
            && self.errors_total() == 0
            && self.rate_limited == 0
            && self.resolutions.as_ref().is_none_or(|r| r.is_empty())
    }

    /// Adds samples (of the same bounds) without counters.
    pub fn add_histogram(&mut self, h: &Histogram<u64>) {
        if !h.is_empty() {
            self.hist_mut().add(h).expect("same bounds");
        }
    }

    pub fn add(&mut self, other: &SeriesData) {
        if let Some(h) = &other.histogram
            && !h.is_empty()
        {
            self.hist_mut().add(h).expect("same bounds");
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.rate_limited += other.rate_limited;
        if let Some(r) = other.resolutions.as_ref().filter(|r| !r.is_empty()) {
            self.resolutions
                .get_or_insert_with(new_resolution_histogram)
                .add(r)
                .expect("same bounds");
        }
    }

    /// Moves `shard`'s data into this interval's and empties the shard. When this interval
    /// has no samples yet (a series recorded by one thread, the usual case), the two histograms
    /// are swapped rather than one copied into the other and the other cleared: each is about
    /// 190 KB, and both keep their memory for the next interval.
    pub fn take_from(&mut self, shard: &mut SeriesData) {
        if let Some(theirs) = shard.histogram.as_mut().filter(|h| !h.is_empty()) {
            match self.histogram.as_mut() {
                Some(mine) if mine.is_empty() => std::mem::swap(mine, theirs),
                _ => {
                    self.hist_mut().add(&*theirs).expect("same bounds");
                    theirs.reset();
                }
            }
        }
        for (a, b) in self.errors.iter_mut().zip(shard.errors) {
            *a += b;
        }
        self.rate_limited += shard.rate_limited;
        if let Some(r) = shard.resolutions.as_mut().filter(|r| !r.is_empty()) {
            self.resolutions
                .get_or_insert_with(new_resolution_histogram)
                .add(&*r)
                .expect("same bounds");
        }
        shard.reset();
    }

    /// One observation's resolution (µs).
    pub fn record_resolution(&mut self, micros: u64) {
        self.resolutions
            .get_or_insert_with(new_resolution_histogram)
            .saturating_record(micros.max(1));
    }

    /// The median and the worst resolution of the observations that carried one.
    pub fn resolution_us(&self) -> Option<(u64, u64)> {
        let r = self.resolutions.as_ref().filter(|r| !r.is_empty())?;
        Some((r.value_at_quantile(0.5), r.max()))
    }

    /// Empties the series, keeping its histograms' memory for the next interval.
    pub fn reset(&mut self) {
        if let Some(h) = &mut self.histogram
            && !h.is_empty()
        {
            h.reset();
        }
        self.errors = [0; 4];
        self.rate_limited = 0;
        if let Some(r) = &mut self.resolutions
            && !r.is_empty()
        {
            r.reset();
        }
    }

    pub fn from_histogram(h: Histogram<u64>) -> Self {
        Self {
            histogram: Some(h),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(samples: &[u64], errors: u64) -> SeriesData {
        let mut d = SeriesData::default();
        for v in samples {
            d.record(*v);
        }
        for _ in 0..errors {
            d.record_error(ErrorKind::Status, 1);
        }
        d
    }

    proptest! {
        /// Taking a shard's interval (swapped when this one is empty) leaves the same data as
        /// hdrhistogram's `add` and a reset did, interval after interval, and the shard empty.
        #[test]
        fn taking_a_shard_equals_adding_it(
            intervals in prop::collection::vec(
                prop::collection::vec((prop::collection::vec(1u64..MAX_MICROS * 2, 0..50), 0u64..3), 1..4),
                1..5,
            )
        ) {
            let mut taken = SeriesData::default();
            for shards in &intervals {
                taken.reset();
                let mut added = SeriesData::default();
                for (samples, errors) in shards {
                    let mut shard = series(samples, *errors);
                    added.add(&series(samples, *errors));
                    taken.take_from(&mut shard);
                    prop_assert!(shard.is_empty());
                }
                prop_assert_eq!(taken.histogram(), added.histogram());
                prop_assert_eq!(taken.histogram().max(), added.histogram().max());
                prop_assert_eq!(taken.histogram().min_nz(), added.histogram().min_nz());
                prop_assert_eq!(taken.errors, added.errors);
                prop_assert_eq!(taken.count(), added.count());
            }
        }
    }
}
