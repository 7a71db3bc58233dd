//! Review of runs that keep their users (`--keep-users`, the capacity sweep's steps): such a run
//! has no cleanup of its own, so whatever it leaves must be removed by somebody, and no output
//! may say that nothing was left without a read behind it (invariants 5 and 7).
//!
//! The capacity sweep keeps each step's users and sweeps every step's marker after the last
//! step: a sweep that ends early (a step that cannot be judged) or a target that cannot be
//! swept must neither leave the steps' users silently nor report the sweep as clean.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{scim_list as list_of, scim_user};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::Mutex;
use provbench::capacity::search::{Plan, Stepping};
use provbench::capacity::{SweepOptions, sweep};
use provbench::workload::Workload;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A SCIM server that serves the first run it sees and refuses every create of any later run
/// (500, nothing made): the sweep's first step works, its second cannot be judged (nothing in
/// it succeeded). Its search honours `userName co`, its GET and DELETE tell the truth.
struct Picky {
    users: Mutex<BTreeMap<String, String>>,
    first_run: Mutex<Option<String>>,
    next: Mutex<u64>,
}

type P = State<Arc<Picky>>;

/// The run id (`pb-` and 8 characters) a name carries.
fn run_of(name: &str) -> Option<String> {
    let at = name.find("pb-")?;
    name.get(at..at + 11).map(str::to_string)
}

async fn create(State(s): P, Json(body): Json<Value>) -> Response {
    let name = body["userName"].as_str().unwrap_or_default().to_string();
    let run = run_of(&name);
    let first = s
        .first_run
        .lock()
        .get_or_insert_with(|| run.clone().unwrap_or_default())
        .clone();
    if run.as_deref() != Some(first.as_str()) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "closed for new runs").into_response();
    }
    let id = {
        let mut n = s.next.lock();
        *n += 1;
        format!("u{n}")
    };
    s.users.lock().insert(id.clone(), name.clone());
    (StatusCode::CREATED, Json(scim_user(&id, &name))).into_response()
}

async fn list(State(s): P, Query(q): Query<BTreeMap<String, String>>) -> Json<Value> {
    let needle = q
        .get("filter")
        .and_then(|f| f.split('"').nth(1))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let found = s
        .users
        .lock()
        .iter()
        .filter(|(_, n)| n.to_ascii_lowercase().contains(&needle))
        .map(|(id, n)| scim_user(id, n))
        .collect();
    list_of(found)
}

async fn get_one(State(s): P, Path(id): Path<String>) -> Response {
    match s.users.lock().get(&id) {
        Some(n) => Json(scim_user(&id, n)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete(State(s): P, Path(id): Path<String>) -> Response {
    match s.users.lock().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_picky() -> (String, Arc<Picky>) {
    let state = Arc::new(Picky {
        users: Mutex::new(BTreeMap::new()),
        first_run: Mutex::new(None),
        next: Mutex::new(0),
    });
    let app = Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route("/scim/v2/Users/{id}", get(get_one).delete(delete))
        .route("/scim/v2/Groups", get(|| async { list_of(vec![]) }))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

/// Two geometric steps, 2/s then 4/s, each a 1 s warm-up and a 2 s hold.
fn two_steps(workload: Workload, out: std::path::PathBuf) -> SweepOptions {
    SweepOptions {
        workload,
        plan: Plan {
            from: 2.0,
            to: 4.0,
            stepping: Stepping::Geometric(2.0),
            bisect: 0,
        },
        warmup: Duration::from_secs(1),
        hold: Duration::from_secs(2),
        out,
        max_error_rate: 0.5,
        min_achieved: 0.0,
    }
}

/// Regression: a step that could not be judged (here nothing of the second step succeeded)
/// ended the sweep with an error before its marker sweep, so every earlier step's users, kept
/// for that sweep, stayed on the target, and nothing said so or named the command that
/// removes them. The sweep's cleanup runs however the steps end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_ends_on_a_step_that_cannot_be_judged_still_sweeps_the_steps_before() {
    crate::support::logs();
    let (url, server) = start_picky().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let text = format!(
        r#"name = "picky"
[target]
kind = "scim"
base_url = "{url}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "open"
rate = "2/s"
duration = "1s"
max_admins = 20
[[journey]]
name = "joiner"
steps = ["create_user"]
"#
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    let workload = Workload::load(&path, &Default::default()).unwrap();
    let c = sweep(two_steps(workload, dir.path().join("sweep")), CancellationToken::new()).await;
    let first = server.first_run.lock().clone().expect("the first step created users");
    let left: Vec<String> = server
        .users
        .lock()
        .values()
        .filter(|n| n.contains(&first))
        .cloned()
        .collect();
    let said = match &c {
        Ok(c) => format!("{:?}", c.steps.iter().map(|s| &s.left_behind).collect::<Vec<_>>()),
        Err(e) => format!("{e:#}"),
    };
    assert!(c.is_err(), "the second step cannot be judged: {said}");
    assert!(
        left.is_empty(),
        "the first step's users were never swept ({} left), and the sweep said: {said}",
        left.len()
    );
}

/// Regression: against a target that cannot be searched for the marker (kind `http`, cleaned
/// by its cleanup hooks at the end of a run), the sweep's steps keep their users, so the hooks
/// never run; the marker sweep after the steps fails and was left with a silent `break`: every
/// step reported nothing left, and `provbench sweep` exited as passed with the users of every
/// step on the target. What a sweep could not sweep is said, per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_against_a_target_it_cannot_search_says_what_it_left() {
    crate::support::logs();
    let (url, vendor) = crate::custom::start_vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"vendor\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         [load]\nmodel = \"open\"\nrate = \"2/s\"\nduration = \"1s\"\nmax_admins = 20\n\
         [[journey]]\nname = \"left\"\nsteps = [\"kc_create\", \"kc_get\"]\n{}",
        crate::custom::VENDOR_OPERATIONS
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    let workload = Workload::load(&path, &Default::default()).unwrap();
    let c = sweep(two_steps(workload, dir.path().join("sweep")), CancellationToken::new())
        .await
        .unwrap();
    let left = vendor.users.lock().keys().filter(|k| *k != "other").count();
    assert!(left > 0, "the steps' users are kept for the sweep");
    assert!(!c.steps.is_empty());
    for s in &c.steps {
        assert!(
            s.left_behind.is_some(),
            "{left} users left on the target, and step {} at {}/s says nothing was left",
            s.run_id,
            s.rate
        );
    }
}

/// A run with `--keep-users` in `dir` against `text`'s workload.
async fn run_keeping(dir: &std::path::Path, text: &str) -> provbench::engine::RunResult {
    crate::support::logs();
    let path = dir.join("w.toml");
    std::fs::write(&path, text).unwrap();
    let w = Workload::load(&path, &Default::default()).unwrap();
    provbench::engine::run(
        provbench::engine::RunOptions {
            out: Some(dir.join("results")),
            keep_users: true,
            ..provbench::engine::RunOptions::new(w)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// Regression: a run that keeps its users against a target that cannot be searched for the
/// marker (kind `http`, cleaned only by its cleanup hooks, which a kept run never sends) said
/// "users kept: `provbench cleanup --run-id …` removes them", a command that refuses such a
/// target: the note named a removal that cannot happen. It says the hooks did not run instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_run_on_a_target_that_cannot_be_swept_names_no_cleanup_that_cannot_run() {
    let (url, vendor) = crate::custom::start_vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"vendor\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n\
         [[journey]]\nname = \"left\"\nsteps = [\"kc_create\", \"kc_get\"]\n{}",
        crate::custom::VENDOR_OPERATIONS
    );
    let r = run_keeping(dir.path(), &text).await;
    let left = vendor.users.lock().keys().filter(|k| *k != "other").count();
    assert_eq!(left, 3, "the run kept its users");
    let notes = r.summary.notes.join("\n");
    assert!(
        !notes.contains("removes them"),
        "a target `provbench cleanup` cannot search, and the notes say: {notes}"
    );
    assert!(notes.contains("cleanup hook"), "{notes}");
    // And the command it would have named refuses the target indeed.
    let written = std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap();
    assert!(!written.contains("removes them"), "{written}");
}

/// Regression: a run that keeps its users on the embedded target (gone with the run, its users
/// with it) said "users kept: `provbench cleanup --run-id …` removes them": nothing is kept,
/// and the command has no target to reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_run_on_the_embedded_target_says_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"embedded\"\n[target]\nkind = \"embedded\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n\
         [[journey]]\nname = \"left\"\nsteps = [\"create_user\"]\n";
    let r = run_keeping(dir.path(), text).await;
    let notes = r.summary.notes.join("\n");
    assert!(!notes.contains("users kept"), "{notes}");
    assert!(!notes.contains("removes them"), "{notes}");
}

/// Regression: `provbench merge` of shards one of which kept its users (`--keep-users`, no
/// cleanup) added up the cleanups of the others alone, and replaced every shard's notes: the
/// merged run said "… 0 left" and passed while the kept shard's users were on the target, and
/// nothing named the command that removes them. The merge says what it did not clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_with_a_shard_that_kept_its_users_claims_no_complete_cleanup() {
    crate::support::logs();
    let reference =
        crate::support::start_reference(provbench::reference::config::ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"shards\"\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n\
         [[journey]]\nname = \"joiner\"\nsteps = [\"create_user\"]\n",
        reference.scim
    );
    let (cleaned, kept) = (dir.path().join("cleaned"), dir.path().join("kept"));
    for d in [&cleaned, &kept] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("token"), &reference.token).unwrap();
    }
    let a = crate::support::run_workload(&cleaned, &text).await.unwrap();
    assert!(a.summary.cleanup.as_ref().is_some_and(|c| !c.incomplete()));
    let b = run_keeping(&kept, &text).await;
    let marker = b.summary.run_id.clone();
    assert_eq!(crate::engine::marked_users(&reference, &marker).await, 3, "kept");
    let out = dir.path().join("merged");
    let m = provbench::report::merge::merge(&[cleaned.join("results"), kept.join("results")], &out, &[]).unwrap();
    let cleanup = m.cleanup.as_ref();
    assert!(
        cleanup.is_none_or(|c| c.incomplete()),
        "the merged run claims a complete cleanup ({}) with {marker}'s 3 users on the target; notes: {:?}",
        cleanup.map(|c| c.counts()).unwrap_or_default(),
        m.notes
    );
    assert_ne!(m.outcome, provbench::results::RunOutcome::Passed, "{:?}", m.notes);
    let said = format!("{:?} {:?}", m.notes, cleanup);
    assert!(said.contains(&marker), "nothing names the kept shard: {said}");
}

/// Regression: a run that kept its users and ran the escalation check left the privileged group
/// the check made, named as the workload names it (`admins`, its marker only in its
/// `externalId`): the run's ledger, which alone knew its id, was dropped, and the marker sweep of
/// `provbench cleanup --run-id`, which the run's note names as what removes what it kept, finds
/// a group by its `displayName` alone (invariant 4), so nothing ever removed it. The check now
/// creates no group: it tries the target's own `admins` group (the reference service has one),
/// which outlives the run and the cleanup without a member of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_run_leaves_no_privileged_group_that_cleanup_cannot_find() {
    let reference =
        crate::support::start_reference(provbench::reference::config::ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            "name = \"kept-checks\"\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
             [load]\nmodel = \"closed\"\nadmins = 1\nduration = \"2s\"\nthink_time = \"200ms\"\n\
             [[journey]]\nname = \"joiner\"\nsteps = [\"create_user\"]\n\
             [checks]\nkinds = [\"escalation\"]\nattempts = 8\ntoken_url = \"{}/oauth/token\"\n\
             helpdesk_client = {{ client_id = \"helpdesk\", client_secret_env = \"PB_R28_HELPDESK\" }}\n",
            reference.scim, reference.root
        ),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let (run, cleanup) = tokio::task::spawn_blocking(move || {
        let run = assert_cmd::Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&path)
            .env("PB_R28_HELPDESK", "helpdesk-secret")
            .args(["run", "w.toml", "--no-progress", "--out", "results", "--keep-users"])
            .output()
            .unwrap();
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("results/summary.json")).unwrap()).unwrap();
        let run_id = s["run_id"].as_str().unwrap().to_string();
        let cleanup = assert_cmd::Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&path)
            .args(["cleanup", "--run-id", &run_id, "w.toml"])
            .output()
            .unwrap();
        ((run, s), cleanup)
    })
    .await
    .unwrap();
    let ((out, s), cleanup) = (run, cleanup);
    let run_id = s["run_id"].as_str().unwrap();
    let escalation = &s["checks"][0];
    assert!(
        escalation["passed"].as_u64().unwrap_or(0) > 0,
        "the check ran: {escalation} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One of the reference's collections, as its admin lists it.
    let list = async |collection: &str| -> Value {
        let url = format!("{}/{collection}", reference.scim);
        let answer = reference
            .http
            .get(url)
            .bearer_auth(&reference.token)
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    };
    let groups: Value = list("Groups").await;
    let left: Vec<&Value> = groups["Resources"]
        .as_array()
        .map(|a| a.iter().filter(|g| g.to_string().contains(run_id)).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "after the note's `provbench cleanup --run-id {run_id}` ({}), the run's groups are still there: {left:?}; notes: {}",
        String::from_utf8_lossy(&cleanup.stdout).trim(),
        s["notes"]
    );
    // The group attempt was made (on the target's own group), and judged.
    assert!(escalation.get("notes").is_none(), "{escalation}");
    assert_eq!(escalation["failed"], 0, "{escalation}");
    let users: Value = list("Users").await;
    let users_left: Vec<&Value> = users["Resources"]
        .as_array()
        .map(|a| a.iter().filter(|u| u.to_string().contains(run_id)).collect())
        .unwrap_or_default();
    assert!(users_left.is_empty(), "the run's users are still there: {users_left:?}");
    let admins: Vec<&Value> = groups["Resources"]
        .as_array()
        .map(|a| a.iter().filter(|g| g["displayName"] == "admins").collect())
        .unwrap_or_default();
    assert_eq!(
        admins.len(),
        1,
        "the target's own admins group is still there, once: {groups}"
    );
    assert!(
        admins[0]["members"].as_array().is_none_or(|m| m.is_empty()),
        "the admins group has a member of the run: {}",
        admins[0]
    );
}
