//! The seam every observation source plugs into: a [`Source`] reads the current state of one
//! user (or of the job its write started) and answers a [`Fetch`] (a [`Reading`] with the
//! instants around it, or why there is none). What the answer means (visible, overtaken, started)
//! is decided above, in `condition` and the observations, the same for every source; how the
//! answer is got (HTTP, LDAP, a webhook) is each source's own, one file each under `sources/`.
//! Also here: the request [`Budget`] the sources read within.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::condition::{Reading, Who};

/// A source's answer under way. Boxed so that sources are one list of trait objects (a read
/// costs a network round trip; the allocation is nothing beside it).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one read gave.
pub enum Fetch {
    /// An answer, when its request was sent and when the answer came back: the service read
    /// its state somewhere between the two.
    Answer {
        reading: Arc<Reading>,
        sent: Instant,
        arrived: Instant,
    },
    /// 304: the view is as it was at the last read.
    Unchanged(Instant),
    /// No usable answer (a connection error, a truncated batch).
    Failed(Instant),
    /// The source reads by the write's job, and the write carried none (or nothing listens for
    /// its events): it cannot be observed there at all.
    NoJob,
    Stopped,
}

/// What a source is asked about: the user, and the job the write started when its answer named one.
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub who: Who<'a>,
    pub job: Option<&'a str>,
}

/// What one observation's reads remember between them: the last answer's `ETag`, so that the
/// next read is conditional and an unchanged view costs a 304 and no parsing.
#[derive(Default)]
pub struct Memo {
    pub etag: Option<HeaderValue>,
}

/// How a source's answers are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Read again and again: the change lies between the last read without it and the first
    /// with it (a bracket).
    Polled,
    /// One read waits for the service's own event: its arrival is the change's time, as precise
    /// as the clock that timed it.
    Pushed,
}

/// Reads in flight at once once the run is over ([`Source::read_all`]). One at a time, each read
/// was a sleep and a wake-up of the process of its own, and the leftover reads were a third of
/// the probes' CPU; a few at once share their wake-ups (answers that arrive together are taken
/// together), and are still few beside the load the target just served.
pub const AFTER_RUN_IN_FLIGHT: usize = 8;

/// Each of `reads`, [`AFTER_RUN_IN_FLIGHT`] at once, the answers in their order: how every
/// source reads once the run is over. Each read is made only when it is sent: a run that
/// followed a million users holds a few reads at a time, not a million of them waiting
/// (invariant 6; every one of them as large as its largest state).
pub async fn after_run<F: Future>(reads: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(reads)
        .buffered(AFTER_RUN_IN_FLIGHT)
        .collect()
        .await
}

/// One place the probes read. Implementations keep their own transport, credentials, budget
/// and request count; they never see the hub (what they need is given when they are opened).
pub trait Source: Send + Sync {
    /// One read of `subject` (within the source's budget, or until `stop`). `memo` is this
    /// observation's, kept across its reads.
    fn read<'a>(&'a self, subject: Subject<'a>, memo: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch>;

    /// One read of each of `users`, for the end-of-run leftovers (`None`: no usable answer); only
    /// asked of [`Timing::Polled`] sources. By default one [`Source::read`] each; sources that
    /// can ask for many at once, or that should not wait on their budget once the run is over,
    /// say so.
    fn read_all<'a>(&'a self, users: &'a [Who<'a>]) -> Pending<'a, Vec<Option<Arc<Reading>>>> {
        Box::pin(async move {
            let never = CancellationToken::new();
            // By index: a closure over `&Who` here is one the compiler cannot prove `Send` for
            // every lifetime (rust-lang/rust#64552).
            after_run((0..users.len()).map(|i| self.read_once_after(users[i], &never))).await
        })
    }

    /// One read of `who` once the run is over (`None`: no usable answer).
    fn read_once_after<'a>(&'a self, who: Who<'a>, never: &'a CancellationToken) -> Pending<'a, Option<Arc<Reading>>> {
        Box::pin(async move {
            match self.read(Subject { who, job: None }, &mut Memo::default(), never).await {
                Fetch::Answer { reading, .. } => Some(reading),
                _ => None,
            }
        })
    }

    /// Requests sent so far (for the report's share of probe traffic).
    fn requests(&self) -> u64;

    /// One read before the load, of a user no run has made (outside the budget, not counted):
    /// `Err` says why the service cannot be read (refused, failed, its base DN absent), with
    /// where it was read and the start of its answer. Sources that read nothing until a write
    /// (a job, a pushed event) have nothing to try.
    fn preflight(&self) -> Pending<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn timing(&self) -> Timing {
        Timing::Polled
    }
}

/// At most one request per `gap`: a reservation is the later of now and the slot after the last
/// one (lock-free; waiting is the caller's).
pub struct Budget {
    gap_nanos: u64,
    origin: Instant,
    next: AtomicU64,
}

impl Budget {
    pub fn per_second(rate: f64) -> Budget {
        Budget {
            gap_nanos: (1e9 / rate.max(1e-3)) as u64,
            origin: Instant::now(),
            next: AtomicU64::new(0),
        }
    }

    /// The instant this request may go.
    fn reserve(&self) -> Instant {
        let now = self.origin.elapsed().as_nanos() as u64;
        let gap = self.gap_nanos;
        let previous = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.max(now) + gap))
            .unwrap_or_default();
        self.origin + Duration::from_nanos(previous.max(now))
    }
}

/// Waits for the next request slot of `budget` (at once without one); false when `stop` came first.
pub async fn slot(budget: Option<&Budget>, stop: &CancellationToken) -> bool {
    let Some(budget) = budget else { return true };
    tokio::select! {
        _ = tokio::time::sleep_until(budget.reserve()) => true,
        _ = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the run, reads go a few at once, never more than [`AFTER_RUN_IN_FLIGHT`], and
    /// their answers come back in the users' order however the reads finish.
    #[tokio::test(start_paused = true)]
    async fn reads_after_the_run_go_a_few_at_once_in_order() {
        let (now, most) = (AtomicU64::new(0), AtomicU64::new(0));
        let read = |i: u64| {
            let (now, most) = (&now, &most);
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                // Later users answer sooner: the order must not follow the answers.
                tokio::time::sleep(Duration::from_millis(100 - i)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i
            }
        };
        let answers = after_run((0..50).map(read)).await;
        assert_eq!(answers, (0..50).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), AFTER_RUN_IN_FLIGHT as u64);
    }

    /// After the run, each read is made only as it is sent: never more than
    /// [`AFTER_RUN_IN_FLIGHT`] made and unanswered, however many users there are (a read made
    /// early is held whole, its largest state and all, until its turn).
    #[tokio::test(start_paused = true)]
    async fn reads_after_the_run_are_made_only_as_they_are_sent() {
        let (made, done, ahead) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let reads = (0..1000u64).map(|i| {
            let n = made.fetch_add(1, Ordering::SeqCst) + 1;
            ahead.fetch_max(n - done.load(Ordering::SeqCst), Ordering::SeqCst);
            let done = &done;
            async move {
                tokio::time::sleep(Duration::from_millis(1 + i % 7)).await;
                done.fetch_add(1, Ordering::SeqCst);
                i
            }
        });
        let answers = after_run(reads).await;
        assert_eq!(answers, (0..1000).collect::<Vec<_>>());
        assert!(
            ahead.load(Ordering::SeqCst) <= AFTER_RUN_IN_FLIGHT as u64,
            "{} reads made and unanswered at once",
            ahead.load(Ordering::SeqCst)
        );
    }

    /// Reservations are spaced by the gap, however many ask at once.
    #[tokio::test(start_paused = true)]
    async fn the_budget_spaces_requests() {
        let budget = Budget::per_second(10.0);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..3).map(|_| budget.reserve() - start).collect();
        assert_eq!(slots, [0, 100, 200].map(Duration::from_millis));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            budget.reserve() - start,
            Duration::from_secs(1),
            "no credit for idle time"
        );
    }
}
