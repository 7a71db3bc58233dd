//! The arrival gate of the open model. Arrival k is due at `start + schedule.time_of(k)`; a free
//! virtual admin claims the next arrival with one atomic increment and sleeps until it is due.
//! When every admin is busy, arrivals wait unclaimed and start late: their latency is then
//! measured from the intended start (no coordinated omission), and they are counted as late
//! starts, or as dropped once they are more than `max_lag` behind.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::workload::schedule::Schedule;

/// Claimed within this of its due time, an arrival counts as on time: it is the timer's
/// resolution, not a shortage of admins.
const ON_TIME: Duration = Duration::from_millis(1);

pub struct Gate {
    schedule: Schedule,
    start: OnceLock<Instant>,
    next: AtomicU64,
    max_lag: Duration,
    late: AtomicU64,
    dropped: AtomicU64,
    started: AtomicU64,
}

/// A claimed arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// When it was due.
    pub intended: Instant,
    /// True when no admin was free at `intended` (the admin claimed it after it was due).
    pub late: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct GateCounts {
    pub scheduled: u64,
    pub started: u64,
    pub late: u64,
    pub dropped: u64,
}

impl Gate {
    pub fn new(schedule: Schedule, max_lag: Duration) -> Self {
        Self {
            schedule,
            start: OnceLock::new(),
            next: AtomicU64::new(0),
            max_lag,
            late: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            started: AtomicU64::new(0),
        }
    }

    /// Fixes the schedule's origin (otherwise the first claim does).
    pub fn start_at(&self, at: Instant) {
        let _ = self.start.set(at);
    }

    pub fn origin(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    /// Waits for the next arrival. `None` when the schedule is over or `stop` fires.
    pub async fn claim(&self, stop: &CancellationToken) -> Option<Arrival> {
        let origin = self.origin();
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let due = origin + self.schedule.time_of(k)?;
            let now = Instant::now();
            if due > now {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = stop.cancelled() => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                }
                self.started.fetch_add(1, Ordering::Relaxed);
                return Some(Arrival {
                    intended: due,
                    late: false,
                });
            }
            if stop.is_cancelled() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if now - due <= ON_TIME {
                self.started.fetch_add(1, Ordering::Relaxed);
                return Some(Arrival {
                    intended: due,
                    late: false,
                });
            }
            if now - due > self.max_lag {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.late.fetch_add(1, Ordering::Relaxed);
            self.started.fetch_add(1, Ordering::Relaxed);
            return Some(Arrival {
                intended: due,
                late: true,
            });
        }
    }

    /// True once every arrival has been handed out (or dropped).
    pub fn exhausted(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.schedule.total_arrivals()
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn counts(&self) -> GateCounts {
        // Arrivals never claimed before the run ended (stopped early) count as dropped too.
        let claimed = self.next.load(Ordering::Relaxed).min(self.schedule.total_arrivals());
        let unclaimed = self.schedule.total_arrivals() - claimed;
        GateCounts {
            scheduled: self.schedule.total_arrivals(),
            started: self.started.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed) + unclaimed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn free_admins_start_arrivals_on_time() {
        let gate = Arc::new(Gate::new(
            Schedule::constant(10.0, Duration::from_secs(1)).unwrap(),
            Duration::from_secs(5),
        ));
        let stop = CancellationToken::new();
        let origin = Instant::now();
        gate.start_at(origin);
        let mut times = Vec::new();
        while let Some(a) = gate.claim(&stop).await {
            assert!(!a.late);
            times.push((a.intended - origin).as_millis());
        }
        assert_eq!(times, (0..10).map(|k| k * 100).collect::<Vec<_>>());
        assert_eq!(
            gate.counts(),
            GateCounts {
                scheduled: 10,
                started: 10,
                late: 0,
                dropped: 0
            }
        );
        assert!(gate.exhausted());
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_pool_starts_late_then_drops() {
        // One admin whose every journey takes 250 ms, against 10 arrivals per second.
        let gate = Gate::new(
            Schedule::constant(10.0, Duration::from_secs(2)).unwrap(),
            Duration::from_millis(600),
        );
        let stop = CancellationToken::new();
        gate.start_at(Instant::now());
        let mut lags = Vec::new();
        while let Some(a) = gate.claim(&stop).await {
            lags.push((Instant::now() - a.intended).as_millis());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let c = gate.counts();
        assert_eq!(c.scheduled, 20);
        assert!(c.late > 0 && c.dropped > 0, "{c:?}");
        assert_eq!(c.started + c.dropped, 20);
        // Latency from the intended start grows while the pool is short, up to the lag bound.
        assert!(lags.iter().all(|l| *l <= 600), "{lags:?}");
        assert!(lags.windows(2).any(|w| w[1] > w[0]));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_releases_waiting_admins() {
        let gate = Arc::new(Gate::new(
            Schedule::constant(1.0, Duration::from_secs(60)).unwrap(),
            Duration::from_secs(5),
        ));
        let stop = CancellationToken::new();
        gate.start_at(Instant::now());
        assert!(gate.claim(&stop).await.is_some());
        let waiter = {
            let (gate, stop) = (gate.clone(), stop.clone());
            tokio::spawn(async move { gate.claim(&stop).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.cancel();
        assert_eq!(waiter.await.unwrap(), None);
        let c = gate.counts();
        assert_eq!(
            (c.started, c.dropped),
            (1, 59),
            "arrivals never started count as dropped"
        );
    }
}
