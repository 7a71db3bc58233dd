//! Invariant 4 for what a journey creates: a create that answers somebody else's id beside the
//! run's name (a foreign admin's user id, a privileged group's id) gets no change and no delete
//! sent to that resource, by any step: the journeys' ownership gate (`scim::own`) reads the
//! answered id back before the first change, and the read shows whose it is. The lying server
//! keeps a true store (its reads and writes are honest, only its creates lie about the id);
//! the journeys and the lies are generated (proptest), the run is the real engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use proptest::prelude::*;
use provbench::engine::{self, RunOptions};
use provbench::results::RunOutcome;
use provbench::workload::Workload;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::scim_list;

const VICTIM_USER: &str = "victim-u";
const VICTIM_GROUP: &str = "victim-g";

#[derive(Default)]
struct Liar {
    users: Mutex<HashMap<String, Value>>,
    groups: Mutex<HashMap<String, Value>>,
    /// Creates of users (groups) answer the victim's id instead of the new resource's.
    user_lie: bool,
    group_lie: bool,
    /// A filter on Users answers the victim, whatever it asked for.
    filter_lie: bool,
    next: Mutex<u64>,
    /// Every request: method, path, body.
    seen: Mutex<Vec<(String, String, String)>>,
}

impl Liar {
    fn new(user_lie: bool, group_lie: bool) -> Liar {
        let liar = Liar {
            user_lie,
            group_lie,
            ..Default::default()
        };
        liar.users.lock().insert(VICTIM_USER.into(), victim_user());
        liar.groups.lock().insert(VICTIM_GROUP.into(), victim_group());
        liar
    }

    fn fresh(&self, prefix: &str) -> String {
        let mut n = self.next.lock();
        *n += 1;
        format!("{prefix}{n}")
    }
}

fn victim_user() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": VICTIM_USER, "userName": "admin@corp.test", "active": true})
}

fn victim_group() -> Value {
    json!({"id": VICTIM_GROUP, "displayName": "Domain Admins", "members": []})
}

/// The run's resources in a collection (what the sweep's filtered search finds).
fn marked(store: &HashMap<String, Value>, attribute: &str) -> Vec<Value> {
    store
        .values()
        .filter(|v| v[attribute].as_str().is_some_and(|n| n.starts_with("pb-")))
        .cloned()
        .collect()
}

async fn answer(State(liar): State<Arc<Liar>>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    liar.seen.lock().push((
        method.clone(),
        path.clone(),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    // A downstream that mirrors the target's users by id (what a sync probe reads).
    if let Some(id) = path.strip_prefix("/linked/crm/Users/") {
        return match liar.users.lock().get(id) {
            Some(v) => axum::Json(v.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let (collection, id) = match path.strip_prefix("/scim/v2/") {
        Some(rest) => match rest.split_once('/') {
            Some((c, id)) => (c.to_string(), Some(id.to_string())),
            None => (rest.to_string(), None),
        },
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let (store, lie, victim, prefix) = match collection.as_str() {
        "Users" => (&liar.users, liar.user_lie, VICTIM_USER, "u"),
        "Groups" => (&liar.groups, liar.group_lie, VICTIM_GROUP, "g"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let attribute = if collection == "Users" {
        "userName"
    } else {
        "displayName"
    };
    match (method.as_str(), id) {
        ("POST", None) => {
            let id = liar.fresh(prefix);
            let mut made = sent.clone();
            made["id"] = json!(id);
            store.lock().insert(id.clone(), made.clone());
            // The lie: the run's name, under somebody else's id.
            if lie {
                made["id"] = json!(victim);
            }
            (StatusCode::CREATED, axum::Json(made)).into_response()
        }
        ("GET", None) if liar.filter_lie && collection == "Users" => scim_list(vec![victim_user()]).into_response(),
        ("GET", None) => scim_list(marked(&store.lock(), attribute)).into_response(),
        (_, Some(id)) if id.contains('/') => {
            // A custom step's sub-resource (`/Users/{id}/reset`): answered, and recorded above.
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", Some(id)) => match store.lock().get(&id) {
            Some(v) => axum::Json(v.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        ("DELETE", Some(id)) => match store.lock().remove(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        (_, Some(id)) => {
            // PATCH and PUT: the resource is marked as changed (its content is not the point).
            let mut store = store.lock();
            match store.get_mut(&id) {
                Some(v) => {
                    v["changed"] = json!(true);
                    axum::Json(v.clone()).into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(liar: Arc<Liar>) -> String {
    let app = Router::new().fallback(answer).with_state(liar);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Runs `steps` once against the liar; `None` when the workload is refused as written (a
/// generated journey that validation rejects), else the outcome and the summary.
async fn run(url: &str, steps: &[&str]) -> Option<anyhow::Result<(RunOutcome, Value)>> {
    run_ops(url, steps, "").await
}

/// As [`run`], with more of the workload (`extra`, TOML sections).
async fn run_ops(url: &str, steps: &[&str], extra: &str) -> Option<anyhow::Result<(RunOutcome, Value)>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let steps = steps.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "name = \"gate\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [{steps}]\n\
         [operations.reset]\nmethod = \"POST\"\npath = \"/Users/{{id}}/reset\"\n\
         [operations.grant]\nmethod = \"POST\"\npath = \"/Groups/apps/assign\"\nbody = {{ user = \"{{user_name}}\" }}\ncleanup = \"ungrant\"\n\
         [operations.look]\nmethod = \"GET\"\npath = \"/Users/{{id}}\"\ncleanup = \"ungrant\"\n\
         [operations.ungrant]\nmethod = \"DELETE\"\npath = \"/Users/{{id}}\"\n{extra}"
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, &text).unwrap();
    let w = Workload::load(&path, &Default::default()).ok()?;
    let result = engine::run(
        RunOptions {
            out: Some(dir.path().join("results")),
            cleanup_timeout: Duration::from_secs(5),
            ..RunOptions::new(w)
        },
        CancellationToken::new(),
    )
    .await;
    Some(result.map(|r| {
        let summary = serde_json::to_value(&r.summary).unwrap();
        (r.summary.outcome, summary)
    }))
}

/// What reached the victims other than reads: requests on their paths, or bodies naming them.
fn touched_victims(liar: &Liar) -> Vec<(String, String, String)> {
    liar.seen
        .lock()
        .iter()
        .filter(|(m, p, b)| {
            let on_victim = p.contains(VICTIM_USER) || p.contains(VICTIM_GROUP);
            (on_victim && m != "GET") || b.contains(VICTIM_USER) || b.contains(VICTIM_GROUP)
        })
        .cloned()
        .collect()
}

fn journeys() -> impl Strategy<Value = Vec<&'static str>> {
    let step = prop::sample::select(vec![
        "get_user",
        "find_user",
        "modify_user",
        "disable_user",
        "enable_user",
        "replace_user",
        "assign_role:employee",
        "remove_role:employee",
        "add_to_group",
        "remove_from_group",
        "delete_group",
        "delete_user",
        "reset",
        // Custom steps whose cleanup, sent at the end with no read of its own, names the user:
        // one that changes nothing itself, one that only reads.
        "grant",
        "look",
    ]);
    (any::<bool>(), prop::collection::vec(step, 1..5)).prop_map(|(group, rest)| {
        let mut steps = vec!["create_user"];
        if group {
            steps.push("create_group");
        }
        steps.extend(rest);
        steps
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Whatever the journey does after its creates, and whichever of them lies, nothing but a
    /// read reaches the victims, the victims are as they were, and a run whose create lied is
    /// not passed.
    #[test]
    fn a_create_answering_a_foreign_id_gets_that_resource_neither_changed_nor_deleted(
        steps in journeys(),
        user_lie in any::<bool>(),
        group_lie in any::<bool>(),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let liar = Arc::new(Liar::new(user_lie, group_lie));
            let url = serve(liar.clone()).await;
            let Some(result) = run(&url, &steps).await else { return Ok(()) };
            let touched = touched_victims(&liar);
            prop_assert!(touched.is_empty(), "{steps:?} (lies: users {user_lie}, groups {group_lie}): {touched:?}");
            let (user, group) = (liar.users.lock().get(VICTIM_USER).cloned(), liar.groups.lock().get(VICTIM_GROUP).cloned());
            prop_assert_eq!(user, Some(victim_user()));
            prop_assert_eq!(group, Some(victim_group()));
            let writes_user = steps.iter().skip(1).any(|s| !matches!(*s, "get_user" | "find_user" | "create_group"));
            if user_lie && writes_user {
                prop_assert!(
                    !matches!(result, Ok((RunOutcome::Passed, _))),
                    "{steps:?}: a journey whose create lied passed"
                );
            }
            Ok(())
        })?;
    }
}

/// Against an honest server, the first change of a created user is preceded by exactly one read
/// of it (recorded as `get_user`), and a journey that reads it itself gets no second read; the
/// run passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_user_is_read_once_before_its_first_change() {
    for (steps, reads_before_change) in [
        (&["create_user", "modify_user", "disable_user", "delete_user"][..], 1),
        (&["create_user", "get_user", "modify_user", "delete_user"][..], 1),
        (
            &[
                "create_user",
                "create_group",
                "add_to_group",
                "delete_group",
                "delete_user",
            ][..],
            2,
        ),
    ] {
        let liar = Arc::new(Liar::new(false, false));
        let url = serve(liar.clone()).await;
        let (outcome, summary) = run(&url, steps).await.expect("valid workload").expect("the run ends");
        assert_eq!(outcome, RunOutcome::Passed, "{steps:?}: {summary}");
        let seen = liar.seen.lock().clone();
        let first_change = seen
            .iter()
            .position(|(m, p, _)| (m == "PATCH" || m == "DELETE") && p.contains("/scim/v2/"))
            .expect("a change");
        let reads = seen[..first_change]
            .iter()
            .filter(|(m, p, _)| m == "GET" && (p.starts_with("/scim/v2/Users/") || p.starts_with("/scim/v2/Groups/")))
            .count();
        assert_eq!(reads, reads_before_change, "{steps:?}: {seen:?}");
        let get_user = summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "api_latency" && m["tags"]["op"] == "get_user")
            .map(|m| m["count"].as_u64().unwrap());
        assert_eq!(get_user, Some(1), "{steps:?}: the read is counted as get_user once");
    }
}

/// The shared group (staged before the load, for journeys that add members without creating a
/// group) is read back too: a create that answered the privileged group's id stops the run
/// before any member is added to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_group_answered_with_a_foreign_id_is_never_used() {
    let liar = Arc::new(Liar::new(false, true));
    let url = serve(liar.clone()).await;
    let result = run(&url, &["create_user", "add_to_group", "delete_user"])
        .await
        .expect("valid workload");
    match result {
        Err(e) => assert!(format!("{e:#}").contains("so the run does not use it"), "{e:#}"),
        Ok((outcome, summary)) => assert_ne!(outcome, RunOutcome::Passed, "{summary}"),
    }
    assert!(touched_victims(&liar).is_empty(), "{:?}", liar.seen.lock());
    assert_eq!(liar.groups.lock().get(VICTIM_GROUP), Some(&victim_group()));
}

/// A custom step that names no `{id}` itself but leaves a cleanup that deletes `/Users/{id}`:
/// the cleanup is rendered at the step and sent at the end without a read of its own, so the
/// step proves the user first (found by the gate's review; before, the victim was deleted and
/// the run passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_hook_naming_the_user_is_rendered_only_for_a_proven_one() {
    for steps in [&["create_user", "grant"][..], &["create_user", "look"][..]] {
        let liar = Arc::new(Liar::new(true, false));
        let url = serve(liar.clone()).await;
        let result = run(&url, steps).await.expect("valid workload");
        assert!(touched_victims(&liar).is_empty(), "{steps:?}: {:?}", liar.seen.lock());
        assert!(!matches!(result, Ok((RunOutcome::Passed, _))), "{steps:?}");
        let liar = Arc::new(Liar::new(false, false));
        let url = serve(liar.clone()).await;
        let (outcome, summary) = run(&url, steps).await.expect("valid workload").expect("ends");
        assert_eq!(outcome, RunOutcome::Passed, "{steps:?}: {summary}");
    }
}

/// `{id}`, `{user_name}` and `{group_id}` always name the journey's own user and group (the ones
/// the gate proves): a custom operation cannot extract a value under one of those names and so
/// stand in for them (found by the gate's review: an extracted `id` made the gate prove the
/// user and the step delete the group the extraction named).
#[test]
fn a_value_extracted_under_the_journeys_own_names_is_refused() {
    for name in ["id", "user_name", "group_id"] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"x\"\n[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\n\
             [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
             [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"mkgroup\", \"drop\"]\n\
             [operations.mkgroup]\nmethod = \"POST\"\npath = \"/Groups\"\nbody = {{ displayName = \"{{run_id}}-g\" }}\nextract = {{ {name} = \"/id\" }}\n\
             [operations.drop]\nmethod = \"DELETE\"\npath = \"/Groups/{{{name}}}\"\n"
        );
        let path = dir.path().join("w.toml");
        std::fs::write(&path, &text).unwrap();
        let Err(err) = Workload::load(&path, &Default::default()) else {
            panic!("a value extracted as `{name}` was accepted");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains(&format!("extract `{name}`")) && err.contains("journey's own"),
            "{err}"
        );
    }
}

/// The checks follow a created user only once it is proven the run's: a create that answered a
/// foreign admin's id gets no check reading that admin's audit trail or outbox (evidence about
/// somebody else's account credited to the run's write, invariant 10). Found by the gate's
/// review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_never_follow_an_id_that_is_not_the_runs() {
    let liar = Arc::new(Liar::new(true, false));
    let url = serve(liar.clone()).await;
    let checks = "[checks]\nkinds = [\"audit\", \"welcome\"]\nsample = 1.0\ntimeout = \"300ms\"\n\
                  audit_url = \"/audit/{id}/entries\"\noutbox_url = \"/outbox?user_id={id}\"\n";
    let result = run_ops(&url, &["create_user", "disable_user", "delete_user"], checks)
        .await
        .expect("valid workload");
    assert!(!matches!(result, Ok((RunOutcome::Passed, _))));
    let seen = liar.seen.lock().clone();
    let followed: Vec<_> = seen
        .iter()
        .filter(|(_, p, _)| p.contains(VICTIM_USER) && !p.starts_with("/scim/v2/Users/"))
        .collect();
    assert!(followed.is_empty(), "{followed:?}");
    assert!(touched_victims(&liar).is_empty(), "{seen:?}");
}

/// The probes, like the checks, follow a created user only once it is proven the run's: a
/// create that answered a foreign admin's id gets no sync probe reading that admin's record
/// downstream and crediting it as the run's create arriving there. Found by the gate's second
/// review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_never_follow_an_id_that_is_not_the_runs() {
    let probes = "[probes]\nsample = 1.0\nmax_share = 1.0\ntimeout = \"500ms\"\n\
                  poll = { initial = \"5ms\", max = \"50ms\", factor = 1.5 }\n\
                  [[probes.sync]]\nservice = \"crm\"\nurl = \"/linked/crm/Users/{id}\"\n";
    for lie in [true, false] {
        let liar = Arc::new(Liar::new(lie, false));
        let url = serve(liar.clone()).await;
        let (_, summary) = run_ops(&url, &["create_user", "delete_user"], probes)
            .await
            .expect("valid workload")
            .expect("the run ends");
        let seen = liar.seen.lock().clone();
        let followed: Vec<_> = seen
            .iter()
            .filter(|(_, p, _)| p.starts_with("/linked/") && p.contains(VICTIM_USER))
            .collect();
        assert!(
            followed.is_empty(),
            "the probe read the victim: {followed:?}\n{summary}"
        );
        // The honest run is followed downstream: the lying one is not, rather than not at all.
        let read_downstream = seen
            .iter()
            .any(|(_, p, _)| p.starts_with("/linked/crm/Users/") && !p.ends_with("preflight-nobody"));
        assert_eq!(read_downstream, !lie, "{seen:?}");
    }
}

/// A fed user's id is the one the filter answers for that userName, never the first resource
/// of whatever the filter answered; and a step that may change a user the journey did not
/// create (here a custom DELETE of `{id}`) is refused when the workload is read, as the
/// built-in changes are. Found by the gate's second review (the victim was deleted and the run
/// passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fed_user_is_only_read_and_only_by_its_own_name() {
    let mut liar = Liar::new(false, false);
    liar.filter_lie = true;
    let liar = Arc::new(liar);
    let url = serve(liar.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    std::fs::write(&csv, "userName\nalice@corp.test\n").unwrap();
    let feeder = format!("[users]\nfeeder = \"{}\"\n", csv.display());
    assert!(
        run_ops(&url, &["find_user", "ungrant"], &feeder).await.is_none(),
        "a custom DELETE of a fed user was accepted"
    );
    assert!(
        run_ops(&url, &["find_user", "look"], &feeder).await.is_none(),
        "nor through a cleanup"
    );
    let (outcome, summary) = run_ops(&url, &["find_user", "get_user"], &feeder)
        .await
        .expect("reads of a fed user are valid")
        .expect("the run ends");
    assert_ne!(outcome, RunOutcome::Passed, "{summary}");
    assert!(summary["failures"].to_string().contains("found no user"), "{summary}");
    let seen = liar.seen.lock().clone();
    assert!(!seen.iter().any(|(_, p, _)| p.ends_with(VICTIM_USER)), "{seen:?}");
    assert!(touched_victims(&liar).is_empty(), "{seen:?}");
}
