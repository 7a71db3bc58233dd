//! Invariants 5 and 7 against SCIM servers that lie about deletes, driven by the real binary:
//! "deleted" means read back as gone, "0 left" is a measured claim, no file says `passed`
//! before cleanup ended, and a run killed during cleanup is never turned into a pass.
//!
//! The server's GET tells the truth (it is how the test itself learns what is left); its
//! DELETE and its filtered search may lie in every way the property test generates.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{scim_list as list_of, scim_user as user};
use assert_cmd::Command;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::Mutex;
use proptest::prelude::*;
use serde_json::{Value, json};

/// How the server answers a DELETE of one user.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Delete {
    /// 204, and the user is gone.
    Honest,
    /// 200 with an empty body, and the user is gone.
    HonestEmpty200,
    /// 204, but the user stays.
    Lying204,
    /// 200 `{"status":"accepted"}`, and the user stays.
    Accepted,
    /// 200 with an HTML page, and the user stays.
    Html,
    /// 404 while the user stays.
    Lying404,
    /// 500, and the user stays.
    Fails,
    /// Never answers (a hung cleanup).
    Hangs,
    /// 204 and the user is gone, until the next search: then it is back (a directory sync or a
    /// replica that brings a deleted account back), and deleted for good by the next DELETE.
    /// Only the first five users created behave so; the rest are deleted honestly.
    Returns,
}

/// How the server answers a filtered search.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Search {
    /// Honours `userName co "…"`.
    Honest,
    /// Lists every user whatever the filter.
    IgnoresFilter,
    /// Lists nothing.
    Blind,
}

struct St {
    users: Mutex<BTreeMap<String, (String, Delete)>>,
    search: Search,
    /// How creates' deletes behave.
    created: Delete,
    next: Mutex<u64>,
    /// Each GET and DELETE of one user, in the order they came (`GET 3`, `DELETE 3`).
    log: Mutex<Vec<String>>,
    /// Users deleted with [`Delete::Returns`]: back at the next search.
    returning: Mutex<Vec<(String, String)>>,
}

type S = State<Arc<St>>;

async fn create(State(s): S, Json(body): Json<Value>) -> Response {
    let (id, how) = {
        let mut n = s.next.lock();
        *n += 1;
        // Only the first users come back: the last ones, read at cleanup, are honestly gone.
        let how = match s.created {
            Delete::Returns if *n > 5 => Delete::Honest,
            how => how,
        };
        (format!("c{n}"), how)
    };
    let name = body["userName"].as_str().unwrap_or_default().to_string();
    s.users.lock().insert(id.clone(), (name.clone(), how));
    (StatusCode::CREATED, Json(user(&id, &name))).into_response()
}

async fn list(State(s): S, Query(q): Query<BTreeMap<String, String>>) -> Json<Value> {
    let needle = q
        .get("filter")
        .and_then(|f| f.split('"').nth(1))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut users = s.users.lock();
    for (id, name) in s.returning.lock().drain(..) {
        users.insert(id, (name, Delete::Honest));
    }
    let found = users
        .iter()
        .filter(|(_, (n, _))| match s.search {
            Search::Honest => n.to_ascii_lowercase().contains(&needle),
            Search::IgnoresFilter => true,
            Search::Blind => false,
        })
        .map(|(id, (n, _))| user(id, n))
        .collect();
    list_of(found)
}

async fn get_one(State(s): S, Path(id): Path<String>) -> Response {
    s.log.lock().push(format!("GET {id}"));
    match s.users.lock().get(&id) {
        Some((n, _)) => (StatusCode::OK, Json(user(&id, n))).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete(State(s): S, Path(id): Path<String>) -> Response {
    s.log.lock().push(format!("DELETE {id}"));
    let found = s.users.lock().get(&id).map(|(_, d)| *d);
    let Some(how) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match how {
        Delete::Returns => {
            let (name, _) = s.users.lock().remove(&id).unwrap();
            s.returning.lock().push((id, name));
            StatusCode::NO_CONTENT.into_response()
        }
        Delete::Honest | Delete::HonestEmpty200 => {
            s.users.lock().remove(&id);
            if how == Delete::Honest {
                StatusCode::NO_CONTENT.into_response()
            } else {
                StatusCode::OK.into_response()
            }
        }
        Delete::Lying204 => StatusCode::NO_CONTENT.into_response(),
        Delete::Accepted => (StatusCode::OK, Json(json!({"status": "accepted"}))).into_response(),
        Delete::Html => (StatusCode::OK, "<html>signed out</html>").into_response(),
        Delete::Lying404 => StatusCode::NOT_FOUND.into_response(),
        Delete::Fails => (StatusCode::INTERNAL_SERVER_ERROR, "no").into_response(),
        Delete::Hangs => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

struct Server {
    url: String,
    state: Arc<St>,
}

impl Server {
    /// Users on the server whose name carries `marker`.
    fn marked(&self, marker: &str) -> Vec<String> {
        self.state
            .users
            .lock()
            .values()
            .filter(|(n, _)| n.contains(marker))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

async fn start(search: Search, created: Delete, existing: Vec<(String, String, Delete)>) -> Server {
    let state = Arc::new(St {
        users: Mutex::new(existing.into_iter().map(|(i, n, d)| (i, (n, d))).collect()),
        search,
        created,
        next: Mutex::new(0),
        log: Mutex::new(Vec::new()),
        returning: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route("/scim/v2/Users/{id}", get(get_one).delete(delete))
        .route("/scim/v2/Groups", get(|| async { list_of(vec![]) }))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { url, state }
}

fn workload(dir: &std::path::Path, url: &str) {
    std::fs::write(dir.join("token"), "t").unwrap();
    std::fs::write(
        dir.join("w.toml"),
        format!(
            r#"name = "readback"
[target]
kind = "scim"
base_url = "{url}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
iterations = 2
[[journey]]
name = "deletes"
steps = ["create_user", "delete_user"]
[[journey]]
name = "leaves"
steps = ["create_user"]
"#
        ),
    )
    .unwrap();
}

/// A closed-model workload in `dir` whose one journey creates and deletes a user, for `duration`.
fn deleting_workload(dir: &std::path::Path, url: &str, duration: &str) {
    std::fs::write(dir.join("token"), "t").unwrap();
    std::fs::write(
        dir.join("w.toml"),
        format!(
            r#"name = "readback-during"
[target]
kind = "scim"
base_url = "{url}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
duration = "{duration}"
think_time = "50ms"
[[journey]]
name = "deletes"
steps = ["create_user", "delete_user"]
"#
        ),
    )
    .unwrap();
}

/// `provbench run` in `dir`; (exit code, stdout, stderr, summary.json).
fn run(dir: &std::path::Path) -> (Option<i32>, String, String, Value) {
    run_with(dir, &[])
}

/// As [`run`], with `extra` arguments.
fn run_with(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String, Value) {
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir)
        .args([
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--cleanup-timeout",
            "3s",
        ])
        .args(extra)
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(dir.join("results/summary.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
    )
}

/// Regression: a DELETE answered `200 {"status":"accepted"}` (or 204) that deleted nothing was
/// counted as done ("6 deleted" for 3 users), and the run passed with every user still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_that_delete_nothing_are_unverified_and_the_run_is_not_passed() {
    for lie in [Delete::Accepted, Delete::Lying204, Delete::Lying404] {
        let server = start(Search::IgnoresFilter, lie, vec![]).await;
        let dir = tempfile::tempdir().unwrap();
        workload(dir.path(), &server.url);
        let path = dir.path().to_path_buf();
        let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
        let there = server.marked(s["run_id"].as_str().unwrap()).len() as u64;
        assert!(there > 0, "{lie:?}: the server kept the run's users");
        assert_eq!(code, Some(2), "{lie:?}\n{stdout}{stderr}");
        assert_eq!(s["outcome"], "error", "{lie:?}");
        let c = &s["cleanup"];
        assert_eq!(c["unverified"].as_u64(), Some(there), "{lie:?}: {c}");
        assert_eq!(c["verified"].as_u64(), Some(0), "{lie:?}: {c}");
        assert!(
            c["left"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["unverified"] == true && l["reason"].as_str().unwrap().contains("not read back as gone")),
            "{lie:?}: {c}"
        );
        assert!(stderr.contains("not read back as gone"), "{lie:?}: {stderr}");
        assert!(stdout.contains(&format!("{there} unverified")), "{lie:?}: {stdout}");
    }
}

/// Regression: deletes answered `200 <html>` were failures, but a search that listed nothing
/// made the run say "0 left" and pass with every user still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_lists_nothing_proves_nothing() {
    let server = start(Search::Blind, Delete::Html, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    workload(dir.path(), &server.url);
    let path = dir.path().to_path_buf();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
    let there = server.marked(s["run_id"].as_str().unwrap()).len() as u64;
    assert!(there > 0);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let c = &s["cleanup"];
    assert_eq!(
        c["failed"].as_u64().unwrap() + c["unverified"].as_u64().unwrap(),
        there,
        "{c}"
    );
    assert!(
        stdout.contains("remove them with: provbench cleanup --run-id"),
        "{stdout}"
    );
}

/// The honest server: every delete read back as gone, the run passes, nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_deletes_are_read_back_and_the_run_passes() {
    let server = start(Search::Honest, Delete::Honest, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    workload(dir.path(), &server.url);
    let path = dir.path().to_path_buf();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(server.marked(s["run_id"].as_str().unwrap()).is_empty());
    let c = &s["cleanup"];
    // Every user created, whether a journey or cleanup deleted it, was read back as gone.
    let created = *server.state.next.lock();
    assert!(created > 0);
    assert_eq!(c["verified"].as_u64(), Some(created), "{c}");
    assert_eq!(c["unverified"].as_u64(), Some(0), "{c}");
    assert!(
        stdout.contains(&format!("{created} read back as gone, 0 unverified, 0 left")),
        "{stdout}"
    );
}

/// The reads of deleted users in a server's log (`GET c1` after `DELETE c1`): a journey's read
/// of the user it created before its first change (its ownership gate) comes before the delete
/// and is no read-back.
fn read_backs(log: &[String]) -> impl Iterator<Item = &String> {
    log.iter().enumerate().filter_map(move |(i, e)| {
        let id = e.strip_prefix("GET ")?;
        log[..i].contains(&format!("DELETE {id}")).then_some(e)
    })
}

/// A long run does not keep every delete for its end: the journeys' deletes are read back while
/// the load goes on, and counted once with cleanup's own read-back (the most recent are read once
/// more at cleanup, `ledger::RECENT_PROVEN`). Before, every deleted user was held for the whole
/// run and read after the last delete: an hour's run held and read hundreds of thousands at its
/// end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_read_back_during_the_run_and_counted_once() {
    let server = start(Search::Honest, Delete::Honest, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    deleting_workload(dir.path(), &server.url, "5s");
    let path = dir.path().to_path_buf();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let created = *server.state.next.lock();
    assert!(created > 2, "{created}");
    assert_eq!(s["cleanup"]["verified"].as_u64(), Some(created), "{}", s["cleanup"]);
    let log = server.state.log.lock().clone();
    let last_delete = log.iter().rposition(|e| e.starts_with("DELETE")).unwrap();
    let gets = read_backs(&log);
    assert!(
        read_backs(&log[..last_delete]).next().is_some(),
        "no delete was read back before the load's last delete: {log:?}"
    );
    let gets: Vec<&String> = gets.collect();
    let mut unique = gets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len() as u64, created, "every user read back: {log:?}");
    assert!(
        gets.len() as u64 <= 2 * created,
        "at most once during the run and once at cleanup: {log:?}"
    );
}

/// A run that keeps its users (`--keep-users`, each step of a capacity sweep) has no cleanup:
/// nothing would use a read of its journeys' deletes, so none is made, during the run or after
/// it, and it holds no claim. Before, such a run read back every delete while it ran: a fifth
/// of a keep-alive journey bench's requests, load the workload does not ask for, and a sweep
/// step's sustainable rate measured under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_keeps_its_users_reads_no_delete_back() {
    let server = start(Search::Honest, Delete::Honest, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    deleting_workload(dir.path(), &server.url, "3s");
    let path = dir.path().to_path_buf();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run_with(&path, &["--keep-users"]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let created = *server.state.next.lock();
    assert!(created > 2, "{created}");
    let log = server.state.log.lock().clone();
    let deletes = log.iter().filter(|e| e.starts_with("DELETE")).count() as u64;
    assert!(deletes + 1 >= created, "the journeys deleted their users: {log:?}");
    assert!(
        read_backs(&log).next().is_none(),
        "a delete was read back by a run that keeps its users: {log:?}"
    );
    assert!(s["cleanup"].is_null(), "{}", s["cleanup"]);
}

/// A user read back as gone during the run, then found again by cleanup's search (it came back)
/// and deleted and read back by the sweep, is one resource read back as gone, not two: cleanup
/// reads each resource once however many deletes claimed it, and a read during the run is one
/// of those reads. Before, the count of deletes shown gone during the run was added to the
/// sweep's own, and a run of N users said 2N "read back as gone".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_shown_gone_during_the_run_and_swept_again_is_read_back_once() {
    let server = start(Search::Honest, Delete::Returns, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    deleting_workload(dir.path(), &server.url, "3s");
    let path = dir.path().to_path_buf();
    let (_, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
    let created = *server.state.next.lock();
    assert!(created > 2, "{created}{stdout}{stderr}");
    let log = server.state.log.lock().clone();
    let last_delete = log.iter().position(|e| e.starts_with("DELETE")).unwrap();
    assert!(
        log[last_delete..].iter().any(|e| e.starts_with("GET")),
        "a delete was read back during the run: {log:?}"
    );
    assert!(server.marked("").is_empty(), "the sweep deleted what came back");
    let verified = s["cleanup"]["verified"].as_u64().unwrap();
    assert_eq!(
        verified, created,
        "{verified} read back as gone for {created} users: {}",
        s["cleanup"]
    );
}

/// A user read back as gone during the run that is back at cleanup (an asynchronous delete
/// that failed later, a sync that brings accounts back), on a target whose search does not
/// list it: before reads during the run, the journeys' deletes were read at cleanup, after the
/// sweep, found, and unverified. A read during the run was final, so the run said "0 left" and
/// passed with the users on the target (invariant 5: "0 left" is a measured claim). The most
/// recent claims shown gone are now read once more at cleanup (`ledger::RECENT_PROVEN`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_back_after_its_read_during_the_run_is_not_passed_as_gone() {
    let server = start(Search::Blind, Delete::Returns, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    deleting_workload(dir.path(), &server.url, "3s");
    let path = dir.path().to_path_buf();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&path)).await.unwrap();
    let there = server.marked("").len();
    assert!(there > 0, "the users came back: {stdout}{stderr}");
    assert_ne!(
        s["outcome"].as_str(),
        Some("passed"),
        "{there} users on the target and the run passed (exit {code:?}): {}",
        s["cleanup"]
    );
}

/// Invariant 7: no file says `passed` while cleanup runs; a run killed then is turned by
/// `provbench report` into a verdict that is not passed, with the cleanup command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_during_cleanup_is_never_passed() {
    let server = start(Search::Honest, Delete::Hangs, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    workload(dir.path(), &server.url);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .current_dir(dir.path())
        .args([
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--cleanup-timeout",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let summary = dir.path().join("results/summary.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut outcomes = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "cleanup never began: {outcomes:?}");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before cleanup hung");
        if let Ok(text) = std::fs::read_to_string(&summary) {
            let s: Value = serde_json::from_str(&text).unwrap();
            let outcome = s["outcome"].as_str().unwrap_or_default().to_string();
            assert_ne!(outcome, "passed", "a file said passed before cleanup ended");
            if outcomes.last() != Some(&outcome) {
                outcomes.push(outcome.clone());
            }
            if outcome == "cleaning" {
                assert_eq!(s["cleanup"]["pending"], true, "{}", s["cleanup"]);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args(["report", "results"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["outcome"], "error", "{text}");
    let run_id = s["run_id"].as_str().unwrap();
    assert!(
        text.contains(&format!("provbench cleanup --run-id {run_id} w.toml")),
        "{text}"
    );
    assert!(text.contains("killed during"), "{text}");
}

/// `cleanup --force` (a marker that is not a run id) lists what it would delete and deletes
/// nothing without `--yes`; with it, only what carries the marker goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_force_lists_and_needs_yes() {
    let existing = vec![
        ("a".into(), "legacy-1@example.test".into(), Delete::Honest),
        ("b".into(), "legacy-2@example.test".into(), Delete::Honest),
        ("c".into(), "alice@example.test".into(), Delete::Honest),
        ("d".into(), "legacyx@example.test".into(), Delete::Honest),
    ];
    let server = start(Search::IgnoresFilter, Delete::Honest, existing).await;
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .args(["cleanup", "--run-id", "legacy", "--force", "--target-url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(server.state.users.lock().len(), 4, "nothing deleted without --yes");
    assert!(
        stdout.contains("would delete: user a legacy-1@example.test"),
        "{stdout}"
    );
    assert!(!stdout.contains("alice") && !stdout.contains("legacyx"), "{stdout}");
    assert!(stderr.contains("add --yes"), "{stderr}");
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .args([
                "cleanup",
                "--run-id",
                "legacy",
                "--force",
                "--yes",
                "--target-url",
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<String> = server.state.users.lock().values().map(|(n, _)| n.clone()).collect();
    assert_eq!(left, ["alice@example.test", "legacyx@example.test"]);
}

fn delete_strategy() -> impl Strategy<Value = Delete> {
    prop_oneof![
        Just(Delete::Honest),
        Just(Delete::HonestEmpty200),
        Just(Delete::Lying204),
        Just(Delete::Accepted),
        Just(Delete::Html),
        Just(Delete::Lying404),
        Just(Delete::Fails),
    ]
}

/// A blind search is left out: `provbench cleanup` alone knows only what a search lists (the
/// runs above prove the ledger's part against a blind one).
fn search_strategy() -> impl Strategy<Value = Search> {
    prop_oneof![Just(Search::Honest), Just(Search::IgnoresFilter)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Over generated servers (each marked user with its own way of answering a DELETE, the
    /// search honest or ignoring its filter): `provbench cleanup` exits 0 only when no
    /// marked user is left, and what it counts as left or unverified is at least what is.
    #[test]
    fn a_cleanup_that_passes_left_nothing(
        search in search_strategy(),
        deletes in proptest::collection::vec(delete_strategy(), 1..6),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let existing: Vec<(String, String, Delete)> = deletes
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("u{i}"), format!("pb-prop0001-{i}@example.test"), *d))
            .chain([("x".to_string(), "victim@example.test".to_string(), Delete::Honest)])
            .collect();
        let server = rt.block_on(start(search, Delete::Honest, existing));
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .args(["cleanup", "--run-id", "pb-prop0001", "--target-url", &server.url, "--timeout", "2s"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let left = server.marked("pb-prop0001").len();
        prop_assert_eq!(server.state.users.lock().contains_key("x"), true, "a foreign user was deleted");
        if out.status.code() == Some(0) {
            prop_assert_eq!(left, 0, "passed with users left: {}", stdout);
        }
        // "cleanup  D deleted, G already gone, R read back as gone, U unverified, L left in N ms"
        let line = stdout.lines().find(|l| l.starts_with("cleanup ")).unwrap_or_default();
        let n: Vec<usize> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
        prop_assert!(n.len() >= 5, "{}", stdout);
        prop_assert!(n[3] + n[4] >= left, "counted fewer than are left: {}", stdout);
        drop(rt);
    }
}
