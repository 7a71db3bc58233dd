//! A second hostile review of cleanup's retry scheduler (`engine::targets::retry`): its rules
//! over generated schedules (a proptest on a paused clock), SCIM cleanup against a target whose
//! slots all hang, and an LDAP directory whose replica lists deleted entries once more.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use parking_lot::Mutex;
use proptest::prelude::*;
use provbench::engine::targets::retry::{self, Patience, TIMED_OUT, Try};
use provbench::engine::targets::scim::sweep;

use crate::review33::{list, serve};
use provbench::http::{HttpClient, HttpSettings};
use provbench::ledger::{Claims, Created, RunId};
use serde_json::json;
use tokio::time::Instant;

/// What one try does: answers after `ms` (bounded by the deadline, as every real `attempt` is).
#[derive(Clone, Copy, Debug)]
enum Step {
    Again(u16),
    Ended(u16),
    Hang,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u16..3000).prop_map(Step::Again),
        1 => (0u16..3000).prop_map(Step::Ended),
        1 => Just(Step::Again(0)),
        1 => Just(Step::Hang),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Pat {
    Brief,
    Until(u32),
    Deadline,
}

fn pat() -> impl Strategy<Value = Pat> {
    prop_oneof![
        Just(Pat::Brief),
        (0u32..30_000).prop_map(Pat::Until),
        Just(Pat::Deadline)
    ]
}

struct Log {
    /// (item, try number, start, ended how: 'A' again, 'E' ended, 'C' cut)
    tries: Mutex<Vec<(usize, u32, Instant)>>,
    ends: Mutex<Vec<(usize, u32, char, Instant)>>,
}

fn check(
    plans: Vec<Vec<Step>>,
    concurrency: usize,
    deadline_ms: u32,
    p: Pat,
    use_again: bool,
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(u64::from(deadline_ms));
        let patience = match p {
            Pat::Brief => Patience::Brief,
            Pat::Until(ms) => Patience::Until(start + Duration::from_millis(u64::from(ms))),
            Pat::Deadline => Patience::Deadline,
        };
        let log = Arc::new(Log {
            tries: Mutex::new(Vec::new()),
            ends: Mutex::new(Vec::new()),
        });
        let n = plans.len();
        let plans = Arc::new(plans);
        let calls = Arc::new(AtomicU64::new(0));
        let attempt = |(i, k): (usize, u32)| {
            let log = log.clone();
            let plans = plans.clone();
            let calls = calls.clone();
            async move {
                assert!(calls.fetch_add(1, Ordering::SeqCst) < 100_000, "spinning");
                log.tries.lock().push((i, k, Instant::now()));
                let plan = &plans[i];
                let s = plan[(k as usize).min(plan.len() - 1)];
                let (ms, t) = match s {
                    Step::Again(ms) => (u64::from(ms), Try::Again(format!("fail {i}/{k}"))),
                    Step::Ended(ms) => (u64::from(ms), Try::Ended(k)),
                    Step::Hang => (10_000_000, Try::Ended(k)),
                };
                let t = match tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(ms))).await {
                    Ok(()) => t,
                    Err(_) => Try::Cut,
                };
                let c = match &t {
                    Try::Again(_) => 'A',
                    Try::Ended(_) => 'E',
                    Try::Cut => 'C',
                };
                log.ends.lock().push((i, k, c, Instant::now()));
                ((i, k + 1), t)
            }
        };
        let out = if use_again {
            let failing = (0..n).map(|i| ((i, 0u32), format!("before {i}"))).collect();
            retry::again(failing, concurrency, deadline, attempt).await
        } else {
            let jobs = (0..n).map(|i| (i, 0u32)).collect();
            retry::first(jobs, concurrency, deadline, patience, attempt).await
        };
        let finished = Instant::now();
        let tries = log.tries.lock().clone();
        let ends = log.ends.lock().clone();
        // 1. every job once
        let mut seen: Vec<usize> = out.ended.iter().map(|((i, _), _)| *i).collect();
        seen.extend(out.failing.iter().map(|((i, _), _)| *i));
        seen.sort();
        prop_assert_eq!(&seen, &(0..n).collect::<Vec<_>>(), "ended/failing {:?}", tries);
        // 2. retries = tries beyond the first (for `again`, every try is a retry)
        let per: HashMap<usize, u32> = tries.iter().fold(HashMap::new(), |mut m, &(i, _, _)| {
            *m.entry(i).or_default() += 1;
            m
        });
        let expect_retries: u64 = if use_again {
            tries.len() as u64
        } else {
            per.values().map(|&t| u64::from(t) - 1).sum()
        };
        prop_assert_eq!(out.retries, expect_retries);
        // 3. first tries before any retry
        if !use_again {
            // (Every item tried at all: none is begun once the deadline has come.)
            let firsts = tries.iter().take_while(|&&(_, k, _)| k == 0).count();
            prop_assert_eq!(firsts, per.len(), "{:?}", tries);
        }
        // 4. no try starts at or after the deadline (a request's first poll may send it)
        for &(i, k, at) in &tries {
            prop_assert!(
                at < deadline,
                "try {} of {} started {:?} after the deadline",
                k,
                i,
                at - deadline
            );
        }
        // 5. ends within the deadline (plus nothing)
        prop_assert!(
            finished <= deadline.max(start),
            "finished {:?} late",
            finished - deadline
        );
        // 6. patience
        if !use_again {
            for (&i, &t) in &per {
                if matches!(p, Pat::Brief) {
                    prop_assert!(t <= retry::BRIEF, "{} tried {} times", i, t);
                }
            }
        }
        // 7. Until: with no contention, no retry starts at or past its end
        if let (Pat::Until(ms), false) = (p, use_again)
            && concurrency >= n
        {
            let end = start + Duration::from_millis(u64::from(ms));
            for &(i, k, at) in &tries {
                prop_assert!(
                    k == 0 || at < end,
                    "retry {} of {} at {:?} past Until",
                    k,
                    i,
                    at - start
                );
            }
        }
        // 8. reasons: a cut (or never begun) first try is TIMED_OUT; a cut retry keeps the
        //    failure before it; a failing one that was not cut carries its last Again.
        let last: HashMap<usize, (u32, char)> = ends.iter().map(|&(i, k, c, _)| (i, (k, c))).collect();
        let mut any_cut = false;
        for ((i, _), why) in &out.failing {
            match last.get(i) {
                Some(&(0, 'C')) if !use_again => {
                    any_cut = true;
                    prop_assert_eq!(why.as_str(), TIMED_OUT)
                }
                Some(&(k, 'C')) => {
                    any_cut = true;
                    let before = if k == 0 {
                        format!("before {i}")
                    } else {
                        format!("fail {i}/{}", k - 1)
                    };
                    prop_assert!(why.starts_with(&before), "{} vs {}", why, before);
                    prop_assert!(why.contains("timed out"), "{}", why);
                }
                // Handed back on its Again, or its retry never begun: the deadline came while it
                // waited for a slot (then it says so, after the failure).
                Some(&(k, 'A')) if why.contains("timed out") => {
                    any_cut = true;
                    prop_assert!(why.starts_with(&format!("fail {i}/{k} (")), "{}", why)
                }
                Some(&(k, 'A')) => prop_assert_eq!(why.clone(), format!("fail {i}/{k}")),
                None if use_again && why.contains("timed out") => {
                    any_cut = true;
                    prop_assert!(why.starts_with(&format!("before {i} (")), "{}", why)
                }
                None if use_again => prop_assert_eq!(why.clone(), format!("before {i}")),
                // Never tried: the deadline had come.
                None => {
                    any_cut = true;
                    prop_assert_eq!(why.as_str(), TIMED_OUT)
                }
                other => prop_assert!(false, "failing {} after {:?}: {}", i, other, why),
            }
        }
        prop_assert_eq!(out.timed_out, any_cut);
        // 9. Deadline: what fails on an Again is handed back only when its back-off would
        //    end at or past the deadline, or its retry found no slot before it.
        if matches!(p, Pat::Deadline) || use_again {
            for ((i, _), why) in &out.failing {
                // (One whose retry was due but found no slot before the deadline says so.)
                if let Some(&(k, 'A')) = last.get(i)
                    && !why.contains("timed out")
                {
                    let t = ends.iter().find(|e| e.0 == *i && e.1 == k).unwrap().3;
                    let nth = if use_again { k + 2 } else { k + 1 };
                    let wait = Duration::from_millis((100u64 << (nth - 1).min(5)).min(2000));
                    prop_assert!(t + wait >= deadline, "{} handed back early", i);
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
    #[test]
    fn scheduler_holds(
        plans in prop::collection::vec(prop::collection::vec(step(), 1..8), 0..25),
        concurrency in 0usize..20,
        deadline_ms in prop_oneof![Just(0u32), 0u32..40_000],
        p in pat(),
        use_again in any::<bool>(),
    ) {
        check(plans, concurrency, deadline_ms, p, use_again)?;
    }
}

/// A deadline already past: `again` tries nothing; `first` tries every item once, each cut.
#[tokio::test(start_paused = true)]
async fn past_deadline_and_empty() {
    let deadline = Instant::now();
    tokio::time::advance(Duration::from_secs(1)).await;
    let n = AtomicU64::new(0);
    let attempt = |j: u32| {
        n.fetch_add(1, Ordering::SeqCst);
        async move { (j, Try::<()>::Again("x".into())) }
    };
    let out = retry::again(vec![(1u32, "a".into()), (2, "b".into())], 0, deadline, attempt).await;
    assert_eq!((out.failing.len(), out.retries, n.load(Ordering::SeqCst)), (2, 0, 0));
    let out = retry::again(vec![], 4, deadline, attempt).await;
    assert_eq!(out.failing.len(), 0);
    let out = retry::first(vec![], 0, deadline, Patience::Until(deadline), attempt).await;
    assert_eq!(out.failing.len() + out.ended.len(), 0);
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Hung {
    users: Mutex<std::collections::BTreeMap<String, String>>,
    x_deletes: AtomicU64,
    log: Mutex<Vec<(String, Duration)>>,
    t0: Mutex<Option<std::time::Instant>>,
}

/// Sixteen reads that never answer fill every slot of the ledger's pass; user `x`, whose
/// first delete answered 500, is due for its retry at 0.1 s but waits in the queue until
/// the deadline frees a slot. Its retry (proven, so no read goes first) is then started
/// *after* the deadline. Expected: no delete is sent past the deadline; and whatever cleanup
/// says of `x` agrees with the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_delete_is_sent_after_the_deadline() {
    let srv = Arc::new(Hung::default());
    *srv.t0.lock() = Some(std::time::Instant::now());
    srv.users.lock().insert("x".into(), "pb-1a2b3c4d-x".into());
    for i in 0..16 {
        srv.users
            .lock()
            .insert(format!("h{i:02}"), format!("pb-1a2b3c4d-h{i:02}"));
    }
    let app = Router::new()
        .fallback(|State(s): State<Arc<Hung>>, req: Request| async move {
            let path = req.uri().path().to_string();
            let t = s.t0.lock().unwrap().elapsed();
            s.log.lock().push((format!("{} {}", req.method(), path), t));
            let id = path.rsplit('/').next().unwrap_or_default().to_string();
            let there = s.users.lock().get(&id).cloned();
            match (req.method().as_str(), path.as_str(), there) {
                ("GET", "/scim/v2/Users", _) => {
                    // The sweep's search hangs too (no time left anyway).
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    list(&[])
                }
                ("GET", "/scim/v2/Groups", _) => list(&[]),
                ("GET", _, Some(_)) if id.starts_with('h') => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::NOT_FOUND.into_response()
                }
                ("GET", _, Some(name)) => axum::Json(json!({"id": id, "userName": name})).into_response(),
                ("DELETE", _, Some(_)) if id == "x" => {
                    if s.x_deletes.fetch_add(1, Ordering::SeqCst) == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    } else {
                        s.users.lock().remove(&id);
                        StatusCode::NO_CONTENT.into_response()
                    }
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        })
        .with_state(srv.clone());
    let url = serve(app).await;
    let client = Arc::new(HttpClient::new(&url, HttpSettings::defaults()).unwrap());
    let run_id = RunId::parse("pb-1a2b3c4d").unwrap();
    let user = |id: &str| Created::User {
        id: id.into(),
        user_name: format!("pb-1a2b3c4d-{id}"),
    };
    let mut items = vec![user("x")];
    items.extend((0..16).map(|i| user(&format!("h{i:02}"))));
    let limit = Duration::from_secs(3);
    let began = srv.t0.lock().unwrap().elapsed();
    let report = sweep::clean_up(
        client,
        items,
        Claims::default(),
        &run_id,
        limit,
        Some("provbench cleanup".into()),
    )
    .await;
    let log = srv.log.lock().clone();
    let x_there = srv.users.lock().contains_key("x");
    let x_left = report.left.iter().any(|l| l.id == "x");
    let late: Vec<_> = log
        .iter()
        .filter(|(l, t)| l.starts_with("DELETE") && *t > began + limit)
        .collect();
    eprintln!("x there: {x_there}, x left: {x_left}, report: {report:#?}\nlog: {log:#?}");
    assert!(late.is_empty(), "deletes sent past the {limit:?} deadline: {late:?}");
    assert_eq!(x_there, x_left, "the report and the target disagree about x");
}

/// Counts: the ledger deletes each entry (answered 0) under the workload's spelling
/// (`ou=people`); a replica behind still lists it once, under the directory's spelling
/// (`ou=People`). Regression: the sweep skipped only what the ledger left or handed back, so it
/// deleted the entry again (noSuchObject: already gone) and the read-back, which tells claims
/// apart by the DN as written, read it twice: one entry was counted deleted once, already gone
/// once, and verified twice. The sweep now skips what the ledger's deletes claimed, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_entry_deleted_and_still_listed_is_counted_once() {
    crate::review33::counted_once(crate::review33::ldap_fake::Lies { busy: 0, lagging: true }).await;
}
