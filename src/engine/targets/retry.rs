//! Retrying what may pass on another try, for cleanup's deletes on every kind of target. Each
//! item is tried once, a few at a time; one that fails in a way another try may not waits out its
//! back-off (100 ms doubling to 2 s) *outside* any slot, then queues for one behind every item
//! not yet tried. So a resource that keeps failing never takes the place of one not yet tried
//! (every item's first try starts before any item's second), and one whose try hangs holds only
//! its own slot. Across a cleanup, what keeps failing after a few tries ([`Patience::Brief`]) or
//! past its phase's share of the time ([`Patience::Until`]) is handed back and retried until the
//! deadline only once everything else (the other deletes, the marker sweep) has had its turn
//! ([`again`]): a few resources a target will not delete never use up the time the others need.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

/// How one try of an item ended.
pub enum Try<T> {
    /// Decided (done, gone, or left for a reason no retry changes).
    Ended(T),
    /// Failed in a way another try may not (5xx, 429, a broken connection): why.
    Again(String),
    /// The deadline cut it short: the item is handed back with the failure that made it a
    /// retry (a 500 then a cut-off retry is still the 500), or [`TIMED_OUT`] on its first try.
    Cut,
}

/// Why an item ends when the cleanup's time ran out before it was ever answered.
pub const TIMED_OUT: &str = "cleanup timed out";

/// How long an item that keeps failing is retried before it is handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// [`BRIEF`] tries in all (300 ms of back-off): enough for a flaky answer or a short
    /// hiccup. What still fails is handed back, to be retried after everything else ([`again`]).
    Brief,
    /// Retries while the back-off ends before this instant (a phase that others wait for, such
    /// as cleanup hooks before the users they hang on, keeps a share of the time), then handed
    /// back.
    Until(Instant),
    /// Retries until the deadline; what still fails is handed back with its last failure.
    Deadline,
}

/// The tries an item has under [`Patience::Brief`].
pub const BRIEF: u32 = 3;
/// The first back-off; each retry doubles it, up to [`LONGEST`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(2);

/// What the tries did: the items decided, those still failing (with their last failure), how
/// many retries were made, and whether the deadline cut a try short.
pub struct Outcome<J, T> {
    pub ended: Vec<(J, T)>,
    pub failing: Vec<(J, String)>,
    pub retries: u64,
    pub timed_out: bool,
}

impl<J, T> Default for Outcome<J, T> {
    fn default() -> Self {
        Outcome {
            ended: Vec::new(),
            failing: Vec::new(),
            retries: 0,
            timed_out: false,
        }
    }
}

/// An item between its tries.
struct Entry<J> {
    job: J,
    tries: u32,
    wait: Duration,
    /// Its last failure (empty before its first try).
    last: String,
}

/// Tries every job, `concurrency` at a time, retrying what may pass as `patience` says and never
/// past `deadline` (a back-off that would end past it hands the item back). `attempt` tries one
/// job and hands it back with how that went; it bounds its own calls by the deadline.
pub async fn first<J, T, F, Fut>(
    jobs: Vec<J>,
    concurrency: usize,
    deadline: Instant,
    patience: Patience,
    attempt: F,
) -> Outcome<J, T>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    let fresh = jobs.into_iter().map(|job| Entry {
        job,
        tries: 0,
        wait: FIRST_WAIT,
        last: String::new(),
    });
    run(fresh.collect(), Vec::new(), concurrency, deadline, patience, &attempt).await
}

/// Retries what earlier tries handed back (each with its last failure) until `deadline`, each
/// after its back-off: the last of a cleanup's deletes.
pub async fn again<J, T, F, Fut>(
    failing: Vec<(J, String)>,
    concurrency: usize,
    deadline: Instant,
    attempt: F,
) -> Outcome<J, T>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    let waiting = failing.into_iter().map(|(job, last)| Entry {
        job,
        tries: 1,
        wait: FIRST_WAIT,
        last,
    });
    let mut out: Outcome<J, T> = Outcome::default();
    let mut queued = Vec::new();
    for entry in waiting {
        if let Some(e) = back_off(entry, deadline, Patience::Deadline, &mut out) {
            queued.push(e);
        }
    }
    let mut rest = run(
        VecDeque::new(),
        queued,
        concurrency,
        deadline,
        Patience::Deadline,
        &attempt,
    )
    .await;
    rest.failing.extend(out.failing);
    rest
}

/// The scheduler: `fresh` items are tried first, in order; `waiting` ones (with their back-off
/// due) join the queue behind them when it ends.
async fn run<J, T, F, Fut>(
    mut fresh: VecDeque<Entry<J>>,
    waiting: Vec<(Instant, Entry<J>)>,
    concurrency: usize,
    deadline: Instant,
    patience: Patience,
    attempt: &F,
) -> Outcome<J, T>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    let mut out = Outcome::default();
    let mut due: VecDeque<Entry<J>> = VecDeque::new();
    let mut sleeping = FuturesUnordered::new();
    for (at, entry) in waiting {
        sleeping.push(wake(at, entry));
    }
    let mut active = FuturesUnordered::new();
    loop {
        while active.len() < concurrency.max(1) {
            let Some(entry) = fresh.pop_front().or_else(|| due.pop_front()) else {
                break;
            };
            active.push(try_one(entry, attempt, deadline));
        }
        if active.is_empty() && sleeping.is_empty() {
            return out;
        }
        tokio::select! {
            Some((entry, t, begun)) = active.next(), if !active.is_empty() => {
                // A retry counts once it is sent, not when it is planned.
                out.retries += u64::from(begun && entry.tries > 1);
                if let Some((at, entry)) = settle(entry, t, deadline, patience, &mut out) {
                    sleeping.push(wake(at, entry));
                }
            }
            Some(entry) = sleeping.next(), if !sleeping.is_empty() => due.push_back(entry),
        }
    }
}

/// One try of `entry`, and whether it was begun: never at or past the deadline, since a
/// request's first poll may already send it, before any timeout around it looks at the clock.
async fn try_one<J, T, F, Fut>(mut entry: Entry<J>, attempt: &F, deadline: Instant) -> (Entry<J>, Try<T>, bool)
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    if Instant::now() >= deadline {
        return (entry, Try::Cut, false);
    }
    let (job, t) = attempt(entry.job).await;
    entry.job = job;
    entry.tries += 1;
    (entry, t, true)
}

async fn wake<J>(at: Instant, entry: Entry<J>) -> Entry<J> {
    tokio::time::sleep_until(at).await;
    entry
}

/// What a try's end makes of its item: decided, handed back, or to be retried at the instant
/// returned.
fn settle<J, T>(
    mut entry: Entry<J>,
    t: Try<T>,
    deadline: Instant,
    patience: Patience,
    out: &mut Outcome<J, T>,
) -> Option<(Instant, Entry<J>)> {
    match t {
        Try::Ended(end) => {
            out.ended.push((entry.job, end));
            None
        }
        // The deadline has come: no try follows.
        Try::Cut => {
            out.timed_out = true;
            let why = match entry.last.is_empty() {
                true => TIMED_OUT.to_string(),
                false => format!("{} (then the cleanup timed out before a retry ended)", entry.last),
            };
            out.failing.push((entry.job, why));
            None
        }
        Try::Again(why) => {
            entry.last = why;
            back_off(entry, deadline, patience, out)
        }
    }
}

/// When a failing item is tried again, or `None` when `patience` (or the deadline) hands it
/// back now.
fn back_off<J, T>(
    mut entry: Entry<J>,
    deadline: Instant,
    patience: Patience,
    out: &mut Outcome<J, T>,
) -> Option<(Instant, Entry<J>)> {
    let at = Instant::now() + entry.wait;
    let patient = match patience {
        Patience::Brief => entry.tries < BRIEF,
        Patience::Until(end) => at < end,
        Patience::Deadline => true,
    };
    if !patient || at >= deadline {
        out.failing.push((entry.job, entry.last));
        return None;
    }
    entry.wait = (entry.wait * 2).min(LONGEST);
    Some((at, entry))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A schedule of tries, recorded: item `i` fails its first `fails[i]` tries.
    struct Script {
        fails: Vec<u32>,
        log: Mutex<Vec<(usize, u32)>>,
    }

    impl Script {
        async fn attempt(&self, (i, n): (usize, u32)) -> ((usize, u32), Try<()>) {
            self.log.lock().unwrap().push((i, n));
            tokio::task::yield_now().await;
            if n < self.fails[i] {
                ((i, n + 1), Try::Again(format!("try {n} of {i} failed")))
            } else {
                ((i, n + 1), Try::Ended(()))
            }
        }
    }

    fn script(fails: Vec<u32>) -> Script {
        Script {
            fails,
            log: Mutex::new(Vec::new()),
        }
    }

    /// However many items fail and however often, no item is tried a second time before every
    /// item had its first try; brief patience stops at its tries, the deadline's goes on; every
    /// item ends once, decided or failing, and each retry is counted.
    #[tokio::test(start_paused = true)]
    async fn every_item_is_tried_before_any_is_tried_again() {
        let fails = vec![
            u32::MAX,
            0,
            1,
            u32::MAX,
            0,
            2,
            u32::MAX,
            0,
            0,
            5,
            u32::MAX,
            0,
            1,
            0,
            0,
            0,
            0,
            9,
            0,
            0,
        ];
        for which in 0..3 {
            // A share of the time counts from the start of its phase.
            let share = Patience::Until(Instant::now() + Duration::from_secs(1));
            let patience = [Patience::Brief, share, Patience::Deadline][which];
            let s = script(fails.clone());
            let jobs: Vec<(usize, u32)> = (0..fails.len()).map(|i| (i, 0)).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            let out = first(jobs, 2, deadline, patience, |j| s.attempt(j)).await;
            let log = s.log.lock().unwrap().clone();
            // Every first try starts before any second one.
            let firsts = log.iter().take_while(|&&(_, n)| n == 0).count();
            assert_eq!(firsts, fails.len(), "{log:?}");
            let tries: HashMap<usize, u32> = log.iter().fold(HashMap::new(), |mut m, &(i, _)| {
                *m.entry(i).or_default() += 1;
                m
            });
            let mut seen: Vec<usize> = out.ended.iter().map(|((i, _), _)| *i).collect();
            seen.extend(out.failing.iter().map(|((i, _), _)| *i));
            seen.sort();
            assert_eq!(seen, (0..fails.len()).collect::<Vec<_>>());
            for ((i, _), why) in &out.failing {
                assert!(why.contains(&format!("of {i} failed")), "{why}");
                match patience {
                    Patience::Brief => assert_eq!(tries[i], BRIEF),
                    // Tries at 0, 0.1, 0.3 and 0.7 s; the next would be at 1.5 s.
                    Patience::Until(_) => assert_eq!(tries[i], 4),
                    // 20 s hold waits of 100, 200, 400, 800 and 1600 ms, then eight of 2 s (the
                    // ninth would end at 21.1 s): 13 retries after the first try.
                    Patience::Deadline => assert_eq!(tries[i], 14),
                }
            }
            let expect_failing = match patience {
                Patience::Brief => fails.iter().filter(|&&f| f >= BRIEF).count(),
                Patience::Until(_) => fails.iter().filter(|&&f| f >= 4).count(),
                Patience::Deadline => fails.iter().filter(|&&f| f == u32::MAX).count(),
            };
            assert_eq!(out.failing.len(), expect_failing);
            let retries: u64 = tries.values().map(|t| u64::from(t - 1)).sum();
            assert_eq!(out.retries, retries);
        }
    }

    /// A try that hangs holds only its own slot: the others' retries go on beside it, and a
    /// phase's share of the time (`Until`) hands back what still fails when it ends.
    #[tokio::test(start_paused = true)]
    async fn a_hung_try_holds_back_no_other_retry() {
        let start = Instant::now();
        let log = Mutex::new(Vec::new());
        let attempt = |(i, n): (usize, u32)| {
            log.lock().unwrap().push((i, n, start.elapsed()));
            async move {
                let t = match (i, n) {
                    (0, _) => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Try::Cut
                    }
                    (1, 0) => Try::Again("HTTP 503".to_string()),
                    (1, _) => Try::Ended(()),
                    _ => Try::Again("HTTP 500".to_string()),
                };
                ((i, n + 1), t)
            }
        };
        let deadline = start + Duration::from_secs(60);
        let until = Patience::Until(start + Duration::from_secs(1));
        let out = first(vec![(0, 0), (1, 0), (2, 0)], 2, deadline, until, attempt).await;
        let log = log.into_inner().unwrap();
        let retried = log.iter().find(|&&(i, n, _)| (i, n) == (1, 1)).unwrap();
        assert_eq!(retried.2, Duration::from_millis(100), "{log:?}");
        assert_eq!(out.ended.len(), 1);
        // Item 2 failed at 0, 0.1, 0.3 and 0.7 s; a wait to 1.5 s ends past its share.
        let tries_of_2 = log.iter().filter(|&&(i, _, _)| i == 2).count();
        assert_eq!(tries_of_2, 4, "{log:?}");
        let mut failing: Vec<(usize, String)> = out.failing.into_iter().map(|((i, _), why)| (i, why)).collect();
        failing.sort();
        assert_eq!(failing, vec![(0, TIMED_OUT.to_string()), (2, "HTTP 500".to_string())]);
    }

    /// A try the deadline cuts short hands its item back with the failure that made it a retry
    /// (never a bare "timed out" that hides a 500), or "timed out" when it was the first try;
    /// either way the outcome says the deadline cut in.
    #[tokio::test(start_paused = true)]
    async fn a_cut_retry_keeps_the_failure_before_it() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let attempt = |(i, n): (usize, u32)| async move {
            let t = match (i, n) {
                (0, 0) => Try::Again("HTTP 500".to_string()),
                (1, _) => Try::Ended(()),
                _ => Try::Cut,
            };
            ((i, n + 1), t)
        };
        let out = first(vec![(0, 0), (1, 0), (2, 0)], 2, deadline, Patience::Deadline, attempt).await;
        let mut failing: Vec<(usize, String)> = out.failing.into_iter().map(|((i, _), why)| (i, why)).collect();
        failing.sort();
        assert_eq!(
            failing,
            vec![
                (
                    0,
                    "HTTP 500 (then the cleanup timed out before a retry ended)".to_string()
                ),
                (2, TIMED_OUT.to_string())
            ]
        );
        assert!(out.timed_out);
        assert_eq!((out.ended.len(), out.retries), (1, 1));
    }

    /// Nothing is tried once the deadline has come: every item is handed back as timed out,
    /// and `attempt` (which would send a request on its first poll) is never called.
    #[tokio::test(start_paused = true)]
    async fn nothing_is_tried_past_the_deadline() {
        let s = script(vec![0, 0, 0]);
        let jobs: Vec<(usize, u32)> = (0..3).map(|i| (i, 0)).collect();
        let out = first(jobs, 2, Instant::now(), Patience::Brief, |j| s.attempt(j)).await;
        assert!(s.log.lock().unwrap().is_empty());
        assert!(out.timed_out && out.ended.is_empty() && out.retries == 0);
        assert!(out.failing.iter().all(|(_, why)| why == TIMED_OUT));
        assert_eq!(out.failing.len(), 3);
    }

    /// [`again`] waits first: a deadline too near for one back-off hands everything back
    /// untried, with the failure it came with.
    #[tokio::test(start_paused = true)]
    async fn again_waits_first_and_never_past_the_deadline() {
        let s = script(vec![0, 0]);
        let failing = vec![((0, 1), "HTTP 500".to_string()), ((1, 1), "HTTP 503".to_string())];
        let out = again(failing, 4, Instant::now() + Duration::from_millis(50), |j| s.attempt(j)).await;
        assert!(s.log.lock().unwrap().is_empty());
        assert_eq!(out.failing.len(), 2);
        assert_eq!(out.failing[1].1, "HTTP 503");
        let failing = out.failing;
        let out = again(failing, 4, Instant::now() + Duration::from_secs(1), |j| s.attempt(j)).await;
        assert_eq!((out.ended.len(), out.failing.len(), out.retries), (2, 0, 2));
    }
}
