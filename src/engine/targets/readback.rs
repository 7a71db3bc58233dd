//! "Deleted" means read back as gone (invariant 5 of the threat model), for every kind of
//! target: this is the one place that decides whether a delete counts. A delete answered 204, a
//! `noSuchObject`, a cleanup hook's expected status, a user a journey deleted: each is only a
//! claim until a read of the same resource shows it absent. What a read still finds, or cannot
//! read, is *unverified*: listed with why, counted, and the run is not passed. Each protocol says
//! how one resource is read ([`Presence`]); the rounds, their patience and their bounds are here.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::BoxFuture;
use crate::ledger::{Created, Ledger, Proven};
use crate::results::LeftBehind;

/// What one read of a deleted resource showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Presence {
    /// Absent (404/410, `noSuchObject`): the delete is proven.
    Gone,
    /// Still there (a soft delete, an accepted delete not yet done, a lie): read again later.
    Present(String),
    /// The read failed in a way a later read may not (5xx, 429, a broken connection).
    Unknown(String),
    /// This resource cannot be read back at all (a cleanup hook that is not a DELETE, a 403):
    /// no later read will tell.
    Unreadable(String),
}

/// Reads in flight at once.
const CONCURRENCY: usize = 16;
/// How long a resource still found after its delete is read again (a soft delete, an
/// asynchronous delete), at most.
pub const PATIENCE: Duration = Duration::from_secs(15);
/// The read-back gets at least this long, even when the deletes used up the cleanup's time:
/// unread is unverified, and one round of reads is what turns claims into evidence.
pub const FLOOR: Duration = Duration::from_secs(5);

/// Reads every item back until each is gone or `deadline` (at least [`FLOOR`] from now, at
/// most [`PATIENCE`]); returns how many were read back as gone, and the rest as unverified.
pub async fn confirm<'a, F>(items: Vec<Created>, deadline: Instant, read: F) -> (u64, Vec<LeftBehind>)
where
    F: Fn(&Created) -> BoxFuture<'a, Presence>,
{
    confirm_after(items, &Proven::default(), deadline, read).await
}

/// As [`confirm`], at the end of a run whose reads already showed `proven` gone: one of those
/// read back as gone again is not counted again (it was, once); one still there is unverified
/// like any other, and the caller takes it off `proven`'s count ([`proven_and_left`]).
pub async fn confirm_after<'a, F>(
    items: Vec<Created>,
    proven: &Proven,
    deadline: Instant,
    read: F,
) -> (u64, Vec<LeftBehind>)
where
    F: Fn(&Created) -> BoxFuture<'a, Presence>,
{
    let now = Instant::now();
    let deadline = deadline.max(now + FLOOR).min(now + PATIENCE);
    let mut gone = 0u64;
    // One read per resource, however many deletes claimed it (a journey's, then the sweep's).
    // A resource is its kind and its id: many targets number users and groups each from 1, and
    // group 1 read back as gone says nothing of user 1.
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<(Created, String)> = items
        .into_iter()
        .filter(|c| seen.insert((kind(c), c.resource().into_owned())))
        .map(|c| (c, String::new()))
        .collect();
    let mut wait = Duration::from_millis(200);
    let mut unreadable = Vec::new();
    loop {
        let round = read_all(pending, deadline, &read, CONCURRENCY).await;
        pending = Vec::new();
        for (item, presence) in round {
            match presence {
                Presence::Gone if proven.has(kind(&item), &item.resource()) => {}
                Presence::Gone => gone += 1,
                Presence::Present(why) | Presence::Unknown(why) => pending.push((item, why)),
                Presence::Unreadable(why) => unreadable.push(unverified(&item, why)),
            }
        }
        if pending.is_empty() || Instant::now() + wait >= deadline {
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    unreadable.extend(pending.into_iter().map(|(item, why)| unverified(&item, why)));
    (gone, unreadable)
}

/// One read of each item (no second round): for what a delete did not remove, to learn whether
/// somebody else did. Returns the items still there (or unreadable), with their reads.
pub async fn still_there<'a, F>(items: Vec<Created>, deadline: Instant, read: F) -> Vec<(Created, Presence)>
where
    F: Fn(&Created) -> BoxFuture<'a, Presence>,
{
    let deadline = deadline.max(Instant::now() + FLOOR);
    let pending = items.into_iter().map(|c| (c, String::new())).collect();
    read_all(pending, deadline, &read, CONCURRENCY)
        .await
        .into_iter()
        .filter(|(_, p)| *p != Presence::Gone)
        .collect()
}

async fn read_all<'a, F>(
    pending: Vec<(Created, String)>,
    deadline: Instant,
    read: &F,
    concurrency: usize,
) -> Vec<(Created, Presence)>
where
    F: Fn(&Created) -> BoxFuture<'a, Presence>,
{
    futures_util::stream::iter(pending)
        .map(|(item, last)| {
            let read = read(&item);
            async move {
                let presence = match tokio::time::timeout_at(deadline, read).await {
                    Ok(p) => p,
                    Err(_) if last.is_empty() => {
                        Presence::Unknown("not read back before the cleanup's deadline".into())
                    }
                    Err(_) => Presence::Unknown(last),
                };
                (item, presence)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// How often claims are read back while the run goes on.
const SETTLE_EVERY: Duration = Duration::from_secs(1);
/// Reads in flight at once while the run goes on: few, so the load is what the target serves.
const SETTLE_CONCURRENCY: usize = 2;
/// How long one round of reads during the run may take; what it has not read by then is held.
const SETTLE_BOUND: Duration = Duration::from_secs(10);

/// Reads back, while the run goes on, what the journeys deleted: once a second, the claims that
/// came since, each read once. A claim read as gone is counted ([`Ledger::proven`]) and dropped,
/// so a long run keeps neither the claims nor a read of each of them for its end; every other
/// claim (still there, a failed read, a round cut off by the run's end) is held whole for the
/// read-back at cleanup ([`confirm`]), which decides it as before. Returns when `stop` fires.
pub async fn settle_while_running<'a, F>(ledger: &Ledger, read: F, stop: &CancellationToken)
where
    F: Fn(&Created) -> BoxFuture<'a, Presence>,
{
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SETTLE_EVERY) => {}
        }
        let mut claims = Reading {
            ledger,
            claims: ledger.take_claims(),
        };
        if claims.claims.is_empty() {
            continue;
        }
        let pending = claims.claims.iter().map(|c| (c.clone(), String::new())).collect();
        let deadline = Instant::now() + SETTLE_BOUND;
        tokio::select! {
            biased;
            // Nothing of a round cut short counts: its claims go to cleanup whole (`Reading`).
            _ = stop.cancelled() => return,
            round = read_all(pending, deadline, &read, SETTLE_CONCURRENCY) => {
                let (gone, rest): (Vec<_>, Vec<_>) =
                    round.into_iter().partition(|(_, presence)| *presence == Presence::Gone);
                let rest: Vec<Created> = rest.into_iter().map(|(item, _)| item).collect();
                // Settled: the round's claims are the counted ones and the held ones now.
                drop(std::mem::take(&mut claims.claims));
                ledger.proven(gone.into_iter().map(|(item, _)| item).collect(), kind);
                ledger.hold(rest);
            }
        }
    }
}

/// The claims of one round of reads during the run, until the round has settled them: however
/// the round ends before that (the run's end, a read that panics, the task dropped), they go
/// back to the ledger whole, for cleanup to read, never lost with the task.
struct Reading<'l> {
    ledger: &'l Ledger,
    claims: Vec<Created>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.ledger.hold(std::mem::take(&mut self.claims));
    }
}

/// How many of the resources shown gone during the run cleanup still left (found again, and
/// not shown gone again): no longer read back as gone.
pub fn proven_and_left(proven: &Proven, left: &[LeftBehind]) -> u64 {
    // A resource may be listed twice (still listed by the sweep, and unverified): once here.
    let left: std::collections::HashSet<(&str, &str)> = left
        .iter()
        .filter(|l| proven.has(&l.kind, &l.id))
        .map(|l| (l.kind.as_str(), l.id.as_str()))
        .collect();
    left.len() as u64
}

fn unverified(item: &Created, why: String) -> LeftBehind {
    let mut left = left(item, format!("deleted, but not read back as gone: {why}"));
    left.unverified = true;
    left
}

/// The kind of `item` as [`LeftBehind::kind`] names it: with its id, what names one resource.
pub fn kind(item: &Created) -> &'static str {
    match item {
        Created::User { .. } => "user",
        Created::Group { .. } => "group",
        Created::Undo(_) => HOOK,
    }
}

/// Users and groups by what names one, their kind and their id: whether a resource is among
/// them is one lookup. Cleanup compares lists that grow with what a run left (its claims, the
/// sweep's leftovers, the reads that still found something); compared pair by pair, a run that
/// left 100,000 users kept its cleanup busy for minutes before its first read.
///
/// A cleanup hook is never among them. Its path alone does not name what it deleted: the same
/// path with another tenant's or realm's header is another resource (`Created::resource`), and
/// a [`LeftBehind`] does not keep the headers (their values may be secrets). A hook that failed
/// therefore stays left, even beside one with the same path that was done.
#[derive(Default)]
pub struct Among<'a>(std::collections::HashSet<(&'a str, &'a str)>);

impl<'a> Among<'a> {
    /// The users and groups `items` name.
    pub fn created(items: impl IntoIterator<Item = &'a Created>) -> Among<'a> {
        Among(
            items
                .into_iter()
                .filter(|c| !matches!(c, Created::Undo(_)))
                .map(|c| (kind(c), c.id()))
                .collect(),
        )
    }

    /// The users and groups `left` lists.
    pub fn left(left: impl IntoIterator<Item = &'a LeftBehind>) -> Among<'a> {
        Among(
            left.into_iter()
                .filter(|l| l.kind != HOOK)
                .map(|l| (l.kind.as_str(), l.id.as_str()))
                .collect(),
        )
    }

    /// Whether `left` is one of them: a user or a group of the same kind with the same id.
    pub fn has(&self, left: &LeftBehind) -> bool {
        self.0.contains(&(left.kind.as_str(), left.id.as_str()))
    }

    /// Whether `item` is one of them (a cleanup hook never is).
    pub fn has_created(&self, item: &Created) -> bool {
        !matches!(item, Created::Undo(_)) && self.0.contains(&(kind(item), item.id()))
    }
}

/// What [`kind`] calls a cleanup hook.
pub const HOOK: &str = "cleanup hook";

/// What is left of `item`, and why.
pub fn left(item: &Created, reason: String) -> LeftBehind {
    LeftBehind {
        kind: kind(item).into(),
        id: item.id().to_string(),
        name: item.name().to_string(),
        reason,
        unverified: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn user(id: &str) -> Created {
        Created::User {
            id: id.into(),
            user_name: format!("pb-00000001-{id}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_counts_only_when_a_read_shows_it_gone() {
        let reads = Arc::new(AtomicU32::new(0));
        let r = reads.clone();
        // "a" is gone at once, "b" after two reads (an asynchronous delete), "c" never (a lie),
        // "d" cannot be read back.
        let (gone, left) = confirm(
            vec![user("a"), user("b"), user("c"), user("d")],
            Instant::now() + Duration::from_secs(60),
            move |c| {
                let n = r.fetch_add(1, Ordering::SeqCst);
                let id = c.id().to_string();
                Box::pin(async move {
                    match id.as_str() {
                        "a" => Presence::Gone,
                        "b" if n >= 6 => Presence::Gone,
                        "d" => Presence::Unreadable("HTTP 403".into()),
                        _ => Presence::Present("HTTP 200".into()),
                    }
                })
            },
        )
        .await;
        assert_eq!(gone, 2);
        let mut ids: Vec<&str> = left.iter().map(|l| l.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["c", "d"]);
        assert!(
            left.iter()
                .all(|l| l.unverified && l.reason.contains("not read back as gone"))
        );
        assert!(
            reads.load(Ordering::SeqCst) > 6,
            "c is read again until the patience runs out"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_never_answers_is_unverified_at_the_bound() {
        let started = Instant::now();
        let (gone, left) = confirm(vec![user("a")], Instant::now(), |_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Presence::Gone
            })
        })
        .await;
        assert_eq!(gone, 0);
        assert_eq!(left.len(), 1);
        assert!(
            left[0].reason.contains("before the cleanup's deadline"),
            "{}",
            left[0].reason
        );
        // Bounded: the floor, not the read's hour.
        assert!(started.elapsed() <= FLOOR + Duration::from_secs(1));
    }

    fn ledger() -> Ledger {
        Ledger::new(crate::ledger::RunId::parse("pb-00000001").unwrap())
    }

    /// `ledger`'s claims read during the run with `read`, in a task of its own, until the
    /// token fires.
    fn settling<F>(ledger: &Ledger, read: F) -> (CancellationToken, tokio::task::JoinHandle<()>)
    where
        F: Fn(&Created) -> BoxFuture<'static, Presence> + Send + Sync + 'static,
    {
        let (ledger, stop) = (ledger.clone(), CancellationToken::new());
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move { settle_while_running(&ledger, read, &stop).await })
        };
        (stop, task)
    }

    /// A long run keeps only what no read has shown gone: "a" is read once during the run and
    /// dropped; "b" (a soft delete) and "c" (a failed read) are held for cleanup, and read once
    /// during the run however long it goes on.
    #[tokio::test(start_paused = true)]
    async fn deletes_shown_gone_during_the_run_are_counted_and_dropped() {
        let ledger = ledger();
        let reads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, task) = {
            let reads = reads.clone();
            settling(&ledger, move |c: &Created| -> BoxFuture<'static, Presence> {
                let id = c.id().to_string();
                reads.lock().unwrap().push(id.clone());
                Box::pin(async move {
                    match id.as_str() {
                        "a" => Presence::Gone,
                        "b" => Presence::Present("HTTP 200".into()),
                        _ => Presence::Unknown("HTTP 503".into()),
                    }
                })
            })
        };
        for id in ["a", "b", "c"] {
            ledger.deleted(user(id));
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ledger.proven_during_run().len(), 1);
        let mut read = reads.lock().unwrap().clone();
        read.sort();
        assert_eq!(read, ["a", "b", "c"], "each claim is read once during the run");
        let mut again: Vec<String> = ledger.take_deleted().iter().map(|c| c.id().to_string()).collect();
        again.sort();
        // "b" and "c" held for cleanup, and "a", one of the most recent shown gone, read once
        // more there (RECENT_PROVEN).
        assert_eq!(again, ["a", "b", "c"]);
    }

    /// The run's end cuts a round short: none of its claims counts, all are left for cleanup.
    #[tokio::test(start_paused = true)]
    async fn a_round_cut_short_by_the_end_leaves_every_claim_for_cleanup() {
        let ledger = ledger();
        ledger.deleted(user("a"));
        ledger.deleted(user("b"));
        let (stop, task) = settling(&ledger, |c: &Created| -> BoxFuture<'static, Presence> {
            let slow = c.id() == "b";
            Box::pin(async move {
                if slow {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Presence::Gone
            })
        });
        tokio::time::sleep(SETTLE_EVERY + Duration::from_secs(1)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ledger.proven_during_run().len(), 0);
        assert_eq!(ledger.take_deleted().len(), 2);
    }

    /// A read that panics (a bug in a protocol's read, an id it cannot put in a path) ends the
    /// task that reads during the run: the round's claims must still reach cleanup, never
    /// vanish uncounted (invariant 5: "0 left" is measured). Before, they were a local of the
    /// task and went with it: cleanup read nothing, and said nothing was left.
    #[tokio::test(start_paused = true)]
    async fn a_read_that_panics_leaves_its_rounds_claims_for_cleanup() {
        let ledger = ledger();
        ledger.deleted(user("a"));
        ledger.deleted(user("b"));
        let (stop, task) = settling(&ledger, |c: &Created| -> BoxFuture<'static, Presence> {
            let id = c.id().to_string();
            Box::pin(async move {
                if id == "b" {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    panic!("a read that cannot be made");
                }
                Presence::Gone
            })
        });
        tokio::time::sleep(SETTLE_EVERY + Duration::from_secs(1)).await;
        stop.cancel();
        assert!(task.await.is_err(), "the read panicked");
        assert_eq!(
            ledger.proven_during_run().len(),
            0,
            "a round that did not finish proves nothing"
        );
        let mut held: Vec<String> = ledger.take_deleted().iter().map(|c| c.id().to_string()).collect();
        held.sort();
        assert_eq!(held, ["a", "b"], "the round's claims are left for cleanup");
    }

    /// The claims shown gone during the run are read once more at cleanup, the most recent
    /// [`crate::ledger::RECENT_PROVEN`] of them: all of a short run's, a bounded number of a long one's.
    #[test]
    fn the_most_recent_claims_shown_gone_are_read_again_at_cleanup() {
        let ledger = ledger();
        let n = crate::ledger::RECENT_PROVEN + 10;
        ledger.proven((0..n).map(|i| user(&i.to_string())).collect(), kind);
        ledger.deleted(user("unread"));
        let again = ledger.take_deleted();
        assert_eq!(again.len(), crate::ledger::RECENT_PROVEN + 1);
        assert!(again.iter().any(|c| c.id() == "unread"));
        assert!(
            again.iter().any(|c| c.id() == (n - 1).to_string()),
            "the newest is read again"
        );
        assert!(
            !again.iter().any(|c| c.id() == "0"),
            "the oldest are the sweep's to find"
        );
        assert_eq!(ledger.proven_during_run().len(), n as u64, "all are counted");
    }

    /// Cleanup after reads during the run: a resource shown gone then, read back as gone again
    /// (a sweep found it again), is not counted twice; one still there is unverified, and taken
    /// off the run's count.
    #[tokio::test(start_paused = true)]
    async fn a_resource_shown_gone_during_the_run_counts_once() {
        let ledger = ledger();
        ledger.proven(vec![user("a"), user("b")], kind);
        let proven = ledger.proven_during_run();
        let (gone, left) = confirm_after(vec![user("a"), user("b"), user("c")], &proven, Instant::now(), |c| {
            let there = c.id() == "b";
            Box::pin(async move {
                match there {
                    true => Presence::Present("HTTP 200".into()),
                    false => Presence::Gone,
                }
            })
        })
        .await;
        assert_eq!(gone, 1, "c alone is newly read back as gone");
        assert_eq!(left.len(), 1);
        assert_eq!(proven_and_left(&proven, &left), 1, "b came back: no longer proven");
        assert!(!proven.has("group", "a"), "a resource is its kind and its id");
    }

    /// A target that goes away with the run keeps no claims at all.
    #[test]
    fn a_ledger_without_claims_keeps_no_deletes() {
        let ledger = ledger().without_claims();
        ledger.deleted(user("a"));
        assert!(ledger.take_deleted().is_empty());
        let ledger = self::ledger();
        ledger.deleted(user("a"));
        assert_eq!(ledger.take_deleted().len(), 1);
    }

    /// Two hooks with one path and another tenant's header are two resources: the one that
    /// failed stays left however the other ended.
    #[test]
    fn a_failed_hook_is_never_taken_for_another_tenants() {
        let hook = |tenant: &str| {
            Created::Undo(crate::ledger::UndoRequest {
                op: "undo".into(),
                method: "DELETE".into(),
                path: "/users/u-0".into(),
                headers: vec![("X-Tenant".into(), tenant.into())],
                body: None,
                expect: Vec::new(),
                proof: None,
            })
        };
        let (a, b) = (hook("a"), hook("b"));
        assert_ne!(a.resource(), b.resource());
        let failed = left(&a, "HTTP 500".into());
        assert!(!Among::created(&[b]).has(&failed));
        assert!(!Among::left(std::slice::from_ref(&failed)).has(&failed));
    }

    proptest::proptest! {
        /// A user or a group is among a list exactly when the list names one of its kind with
        /// its id (the pairwise comparison cleanup made before, as one lookup); a cleanup hook,
        /// which its path alone does not name, never is.
        #[test]
        fn among_is_the_same_kind_and_id(
            items in proptest::collection::vec((0u8..3, 0u8..4), 0..12),
            listed in proptest::collection::vec((0u8..3, 0u8..4), 0..12),
            asked in (0u8..3, 0u8..4),
        ) {
            let created = |(k, id): (u8, u8)| match k {
                0 => Created::User { id: id.to_string(), user_name: format!("n{id}") },
                1 => Created::Group { id: id.to_string(), display_name: format!("n{id}") },
                _ => Created::Undo(crate::ledger::UndoRequest {
                    op: "undo".into(),
                    method: "DELETE".into(),
                    path: id.to_string(),
                    headers: Vec::new(),
                    body: None,
                    expect: Vec::new(),
                    proof: None,
                }),
            };
            let items: Vec<Created> = items.into_iter().map(created).collect();
            let listed: Vec<LeftBehind> = listed.into_iter().map(|i| left(&created(i), String::new())).collect();
            let asked = left(&created(asked), String::new());
            let pairwise = |k: &str, id: &str| k == asked.kind && id == asked.id && k != HOOK;
            proptest::prop_assert_eq!(
                Among::created(&items).has(&asked),
                items.iter().any(|c| pairwise(kind(c), c.id()))
            );
            proptest::prop_assert_eq!(
                Among::left(&listed).has(&asked),
                listed.iter().any(|l| pairwise(&l.kind, &l.id))
            );
        }
    }
}
