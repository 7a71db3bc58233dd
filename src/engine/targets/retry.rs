//! Retrying in rounds, for cleanup's deletes on every kind of target. A round tries each pending
//! item once, a few at a time; what may pass on another try waits out the back-off (100 ms
//! doubling to 2 s) *outside* any slot and is tried in the next round. So a resource that keeps
//! failing never takes the place of one not yet tried: every item has its first try before any
//! item has its second. Across a cleanup, what keeps failing after a few rounds ([`Patience::
//! Brief`]) is handed back and retried until the deadline only once everything else (the other
//! deletes, the marker sweep) has had its turn ([`again`]): a few resources a target will not
//! delete never use up the time the others need.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
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

/// How long the rounds go on for what keeps failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// [`BRIEF`] tries in all (300 ms of back-off): enough for a flaky answer or a short
    /// hiccup. What still fails is handed back, to be retried after everything else ([`again`]).
    Brief,
    /// Rounds until the deadline; what still fails is handed back with its last failure.
    Deadline,
}

/// The tries an item has under [`Patience::Brief`].
pub const BRIEF: u32 = 3;
/// The first back-off; each round doubles it, up to [`LONGEST`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(2);

/// What the rounds did: the items decided, those still failing (with their last failure), how
/// many retries were made (an item tried again counts once per round), and whether the deadline
/// cut a try short.
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

/// Tries every job, `concurrency` at a time, then retries what may pass in rounds with back-off,
/// as `patience` says and never past `deadline` (a wait that would end past it ends the rounds).
/// `attempt` tries one job and hands it back with how that went; it bounds its own calls by the
/// deadline.
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
    let mut out = Outcome::default();
    let jobs = jobs.into_iter().map(|job| (job, String::new())).collect();
    let failing = round(jobs, concurrency, &attempt, &mut out).await;
    let rounds = match patience {
        Patience::Brief => Some(BRIEF - 1),
        Patience::Deadline => None,
    };
    retry(failing, concurrency, deadline, rounds, &attempt, out).await
}

/// Retries what earlier rounds handed back (each with its last failure), in rounds until
/// `deadline`, the back-off first: the last of a cleanup's deletes.
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
    retry(failing, concurrency, deadline, None, &attempt, Outcome::default()).await
}

/// Rounds of retries of `failing` (at most `rounds` of them), each after its back-off.
async fn retry<J, T, F, Fut>(
    mut failing: Vec<(J, String)>,
    concurrency: usize,
    deadline: Instant,
    rounds: Option<u32>,
    attempt: &F,
    mut out: Outcome<J, T>,
) -> Outcome<J, T>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    let mut wait = FIRST_WAIT;
    let mut done = 0u32;
    while !failing.is_empty() && rounds.is_none_or(|r| done < r) && Instant::now() + wait < deadline {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST);
        done += 1;
        out.retries += failing.len() as u64;
        failing = round(failing, concurrency, attempt, &mut out).await;
    }
    out.failing.extend(failing);
    out
}

/// One try of each job (each with its last failure, empty before its first try); the decided,
/// and those the deadline cut short, go to `out`; the rest are returned with why.
async fn round<J, T, F, Fut>(
    jobs: Vec<(J, String)>,
    concurrency: usize,
    attempt: &F,
    out: &mut Outcome<J, T>,
) -> Vec<(J, String)>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = (J, Try<T>)>,
{
    let tried: Vec<((J, Try<T>), String)> = futures_util::stream::iter(jobs)
        .map(|(job, last)| async move { (attempt(job).await, last) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failing = Vec::new();
    for ((job, t), last) in tried {
        match t {
            Try::Ended(end) => out.ended.push((job, end)),
            Try::Again(why) => failing.push((job, why)),
            // The deadline has come: no round follows for it.
            Try::Cut => {
                out.timed_out = true;
                let why = match last.is_empty() {
                    true => TIMED_OUT.to_string(),
                    false => format!("{last} (then the cleanup timed out retrying it)"),
                };
                out.failing.push((job, why));
            }
        }
    }
    failing
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
    /// item had its first try, nor a third before every failing one had its second; brief
    /// patience stops at its tries, the deadline's goes on; every item ends once, decided or
    /// failing.
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
        for patience in [Patience::Brief, Patience::Deadline] {
            let s = script(fails.clone());
            let jobs: Vec<(usize, u32)> = (0..fails.len()).map(|i| (i, 0)).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            let out = first(jobs, 2, deadline, patience, |j| s.attempt(j)).await;
            let log = s.log.lock().unwrap().clone();
            // Tries are in rounds: the k-th try of anything never precedes a (k-1)-th try.
            let mut highest = 0;
            for &(_, n) in &log {
                assert!(n >= highest, "{log:?}");
                highest = n;
            }
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
                    // 20 s hold waits of 100, 200, 400, 800 and 1600 ms, then eight of 2 s (the
                    // ninth would end at 21.1 s): 13 retries after the first try.
                    Patience::Deadline => assert_eq!(tries[i], 14),
                }
            }
            let expect_failing = match patience {
                Patience::Brief => fails.iter().filter(|&&f| f >= BRIEF).count(),
                Patience::Deadline => fails.iter().filter(|&&f| f == u32::MAX).count(),
            };
            assert_eq!(out.failing.len(), expect_failing);
            let retries: u64 = tries.values().map(|t| u64::from(t - 1)).sum();
            assert_eq!(out.retries, retries);
        }
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
                (0, "HTTP 500 (then the cleanup timed out retrying it)".to_string()),
                (2, TIMED_OUT.to_string())
            ]
        );
        assert!(out.timed_out);
        assert_eq!((out.ended.len(), out.retries), (1, 1));
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
