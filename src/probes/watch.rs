//! What every observation shares, below the hub: the write observed ([`Write`]), each thing
//! watched with its source, series and counters ([`Watched`]), how an observation ended
//! ([`Seen`]), and the run-wide bounds and counters it runs under ([`Watch`]). The hub hands
//! these down, so nothing an observation calls reaches back into it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bracket::WallClock;
use super::condition::{self, Expect};
use super::look::Grid;
use super::source::Source;
use crate::metrics::{Registry, SeriesId};
use crate::vocab::Op;
use crate::workload::probes::PollPolicy;

/// An acknowledged write to observe.
pub struct Write {
    pub op: Op,
    pub user_id: String,
    pub user_name: String,
    /// When the write's step began (its intended start): nothing it caused shows before.
    pub began: Instant,
    pub acked: Instant,
    /// Job URL or id from the write's answer.
    pub job: Option<String>,
    pub expect: Expect,
    pub later: condition::Supersession,
    /// What the probes know of this user across its writes.
    pub trace: condition::UserTrace,
    /// This write's place among the user's writes (from [`condition::Trace::next_write`]).
    pub index: u64,
}

impl Write {
    pub fn who(&self) -> condition::Who<'_> {
        condition::Who {
            id: &self.user_id,
            user_name: &self.user_name,
        }
    }
}

/// One thing the probes watch: the job-status endpoint (`P` = its queue probe) or one linked
/// service (`P` = its sync probe), with where its reads go and what its observations land in.
pub struct Watched<P> {
    pub probe: P,
    pub source: Arc<dyn Source>,
    /// Per op the probe observes.
    pub series: HashMap<Op, SeriesId>,
    pub counters: ProbeCounters,
}

/// How one watched thing's observations ended.
#[derive(Default)]
pub struct ProbeCounters {
    pub observed: AtomicU64,
    pub timeouts: AtomicU64,
    pub overtaken: AtomicU64,
    pub unconfirmed: AtomicU64,
    pub pointer_missing: AtomicU64,
    /// The slowest change observed there (µs): how long a user may take to show up.
    pub slowest_us: AtomicU64,
}

/// How one observation ended.
pub enum Seen {
    /// The change showed: (lag, resolution µs).
    At(Duration, u64),
    /// A later write's state showed first.
    Overtaken,
    /// A delete of a user never seen there: it cannot be timed.
    Unconfirmed,
    /// Nothing by the bound.
    TimedOut,
}

/// Run-wide counts of how the probes' reads and writes went.
#[derive(Default)]
pub struct Counters {
    /// Change times a service published that fell outside their bracket (the bracket was used).
    pub clock_disagrees: AtomicU64,
    /// Reads that found the view unchanged (304 to a conditional GET).
    pub unchanged: AtomicU64,
    pub request_errors: AtomicU64,
    pub sampled: AtomicU64,
    pub shed: AtomicU64,
    /// Writes of sampled users not observed: the probes were at their share of requests.
    pub over_share: AtomicU64,
    pub abandoned: AtomicU64,
    pub missing_job: AtomicU64,
}

/// What every observation runs under.
pub struct Watch {
    /// How long after its ack a change may take before it counts as a timeout.
    pub timeout: Duration,
    pub poll: PollPolicy,
    /// Every observation ends here (the run's stop, or an abort of the probes).
    pub stop: CancellationToken,
    pub counters: Counters,
    pub registry: Arc<Registry>,
    /// Where published change times land on our clock.
    pub clock: WallClock,
    /// Where every observation's looks are put (see `look`).
    pub grid: Grid,
}

impl Watch {
    /// Records how an observation of the write that began at `written` ended in `series` (kept
    /// under the write's time too, for the charts). After the stop it is abandoned instead: a
    /// timeout then says nothing of the service.
    pub fn record(&self, series: SeriesId, counters: &ProbeCounters, seen: &Seen, written: Instant) {
        if self.stop.is_cancelled() {
            self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match seen {
            Seen::At(lag, resolution) => {
                counters.observed.fetch_add(1, Ordering::Relaxed);
                counters.slowest_us.fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                self.registry
                    .record_observation(series, lag.as_micros() as u64, *resolution, false);
                self.registry
                    .record_written(series, written.into_std(), lag.as_micros() as u64, false);
            }
            Seen::Overtaken => {
                counters.overtaken.fetch_add(1, Ordering::Relaxed);
            }
            Seen::Unconfirmed => {
                counters.unconfirmed.fetch_add(1, Ordering::Relaxed);
            }
            Seen::TimedOut => {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let (bound, resolution) = self.at_bound();
                self.registry.record_observation(series, bound, resolution, true);
                self.registry.record_written(series, written.into_std(), bound, true);
            }
        }
    }

    /// A timed-out observation as recorded: at the bound (µs), to the widest poll gap.
    pub fn at_bound(&self) -> (u64, u64) {
        (self.timeout.as_micros() as u64, self.poll.max.as_micros() as u64)
    }
}
