//! Custom operations against a purpose-built vendor-style admin API (not SCIM: `201` with a
//! `Location` and no body, plain JSON, a required tenant header) and mixed with built-in steps
//! against the reference service. What a custom create made is deleted by its cleanup hook
//! unless the journey deletes it itself; nothing else is touched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

pub(crate) struct Vendor {
    pub(crate) users: Mutex<BTreeMap<String, Value>>,
    next: AtomicU64,
    /// When set, a create keeps the user it made but answers with the `Location` of
    /// somebody else's (`other`), as a lying or broken API might.
    pub(crate) foreign_location: std::sync::atomic::AtomicBool,
    /// Every request but a create: method and path.
    pub(crate) seen: Mutex<Vec<(String, String)>>,
    /// When set, every read of a user after its first shows somebody else's name (the user
    /// was replaced under the same id).
    pub(crate) replaced_after_first_read: std::sync::atomic::AtomicBool,
    /// When set, a read answers this id, whatever id it reads.
    pub(crate) answer_id: Mutex<Option<String>>,
}

type S = State<Arc<Vendor>>;

/// The tenant header and a JSON content type, or 400 as such APIs answer.
fn refused(headers: &HeaderMap, with_body: bool) -> Option<(StatusCode, String)> {
    if headers.get("x-tenant").and_then(|v| v.to_str().ok()) != Some("acme") {
        return Some((StatusCode::BAD_REQUEST, "{\"error\":\"unknown tenant\"}".into()));
    }
    let json = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/json");
    if with_body && !json {
        return Some((StatusCode::UNSUPPORTED_MEDIA_TYPE, "{\"error\":\"json only\"}".into()));
    }
    None
}

async fn create(State(s): S, headers: HeaderMap, Json(body): Json<Value>) -> impl IntoResponse {
    if let Some(r) = refused(&headers, true) {
        return r.into_response();
    }
    let mut id = format!("u-{}", s.next.fetch_add(1, Ordering::Relaxed));
    s.users.lock().insert(id.clone(), body);
    if s.foreign_location.load(Ordering::Relaxed) {
        id = "other".into();
    }
    let location = format!("/admin/realms/acme/users/{id}");
    (StatusCode::CREATED, [("location", location)]).into_response()
}

async fn get_one(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> impl IntoResponse {
    let reads = {
        let mut seen = s.seen.lock();
        seen.push(("GET".into(), id.clone()));
        seen.iter().filter(|(m, i)| m == "GET" && *i == id).count()
    };
    if let Some(r) = refused(&headers, false) {
        return r.into_response();
    }
    if reads > 1 && s.replaced_after_first_read.load(Ordering::Relaxed) {
        return Json(json!({"id": id, "username": "someone-else", "enabled": true})).into_response();
    }
    match s.users.lock().get(&id) {
        Some(u) => {
            let id = s.answer_id.lock().clone().unwrap_or(id);
            Json(json!({"id": id, "username": u["username"], "enabled": u["enabled"]})).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn update(State(s): S, headers: HeaderMap, Path(id): Path<String>, Json(body): Json<Value>) -> impl IntoResponse {
    s.seen.lock().push(("PUT".into(), id.clone()));
    if let Some(r) = refused(&headers, true) {
        return r.into_response();
    }
    match s.users.lock().get_mut(&id) {
        Some(u) => {
            u["enabled"] = body["enabled"].clone();
            StatusCode::NO_CONTENT.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn remove(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> impl IntoResponse {
    s.seen.lock().push(("DELETE".into(), id.clone()));
    if let Some(r) = refused(&headers, false) {
        return r.into_response();
    }
    match s.users.lock().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) async fn start_vendor() -> (String, Arc<Vendor>) {
    let state = Arc::new(Vendor {
        users: Mutex::new(BTreeMap::new()),
        next: AtomicU64::new(1),
        foreign_location: Default::default(),
        seen: Mutex::new(Vec::new()),
        replaced_after_first_read: Default::default(),
        answer_id: Mutex::new(None),
    });
    // Somebody else's user: never touched.
    state
        .users
        .lock()
        .insert("other".into(), json!({"username": "someone-else"}));
    let app = Router::new()
        .route("/admin/realms/acme/users", post(create))
        .route("/admin/realms/acme/users/{id}", get(get_one).put(update).delete(remove))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/admin/realms/acme", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

pub(crate) const VENDOR_OPERATIONS: &str = r#"
[operations.kc_create]
method = "POST"
path = "/users"
body = { username = "{run_id}-{seq}", email = "{run_id}-{seq}@example.test", enabled = true }
expect = [201]
extract = { kc_id = "header:Location | last-segment" }
cleanup = "kc_delete"
owns = { read = "/users/{kc_id}", identity = "/username" }

[operations.kc_get]
method = "GET"
path = "/users/{kc_id}"
expect = [200]
extract = { kc_name = "/username" }

[operations.kc_disable]
method = "PUT"
path = "/users/{kc_id}"
body = { enabled = false }
expect = [204]

[operations.kc_delete]
method = "DELETE"
path = "/users/{kc_id}"
expect = [204]
"#;

use crate::support::run_workload as run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_api_driven_by_custom_operations_is_cleaned_by_its_hooks() {
    let (url, vendor) = start_vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"vendor\"\nthresholds = [\"rate(errors) == 0\"]\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 2\niterations = 3\n\
         [[journey]]\nname = \"full\"\nsteps = [\"kc_create\", \"kc_get\", \"kc_disable\", \"kc_delete\"]\n\
         [[journey]]\nname = \"left\"\nsteps = [\"kc_create\", \"kc_get\"]\n{VENDOR_OPERATIONS}"
    );
    let r = run(dir.path(), &text).await.unwrap();
    let s = &r.summary;
    assert_eq!(s.outcome, provbench::results::RunOutcome::Passed, "{:?}", s.failures);
    let create = s
        .metrics
        .iter()
        .find(|m| m.key().metric == "api_latency" && m.key().get("op") == Some("kc_create"))
        .expect("api_latency{op=kc_create}");
    assert_eq!((create.count, create.errors), (6, 0));
    let cleanup = s.cleanup.as_ref().unwrap();
    let left_by_journeys = s.journeys.iter().find(|j| j.name == "left").unwrap().completed;
    assert_eq!(cleanup.deleted, left_by_journeys, "{cleanup:?}");
    assert_eq!(cleanup.failed, 0);
    let users = vendor.users.lock();
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        vec!["other"],
        "only somebody else's user is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tenant_header_fails_with_the_answer_shown() {
    let (url, vendor) = start_vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"vendor\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"j\"\nsteps = [\"kc_create\", \"kc_delete\"]\n{VENDOR_OPERATIONS}"
    );
    let r = run(dir.path(), &text).await.unwrap();
    let f = &r.summary.failures;
    let sample = f.iter().find(|f| f.op == "kc_create").expect("kc_create failures");
    assert_eq!(sample.count, 2);
    assert!(
        sample.examples[0].contains("POST /users: HTTP 400 (expected [201]): {\"error\":\"unknown tenant\"}"),
        "{:?}",
        sample.examples
    );
    assert_ne!(r.summary.outcome, provbench::results::RunOutcome::Passed);
    assert_eq!(vendor.users.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_and_custom_steps_share_the_journeys_user() {
    let config = provbench::reference::config::ReferenceConfig::from_toml("profile = \"fast\"\n").unwrap();
    let reference = crate::support::start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        "name = \"mixed\"\nthresholds = [\"rate(errors) == 0\", \"p99(api_latency{{op=entra_title}}) < 10s\"]\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"spc\", \"entra_title\", \"get_user\", \"delete_user\"]\n\
         [operations.spc]\nmethod = \"GET\"\npath = \"/ServiceProviderConfig\"\nexpect = [200]\nextract = {{ patch_supported = \"/patch/supported\" }}\n\
         [operations.entra_title]\nmethod = \"PATCH\"\npath = \"/Users/{{id}}\"\nexpect = [200, 204]\n\
         body = {{ schemas = [\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"], Operations = [{{ op = \"Replace\", value = {{ title = \"Engineer {{seq}}\" }} }}] }}\n",
        reference.scim
    );
    let r = run(dir.path(), &text).await.unwrap();
    reference.stop().await;
    assert_eq!(
        r.summary.outcome,
        provbench::results::RunOutcome::Passed,
        "{:?}",
        r.summary.failures
    );
    let cleanup = r.summary.cleanup.as_ref().unwrap();
    assert_eq!((cleanup.deleted, cleanup.failed), (0, 0), "{cleanup:?}");
}

/// Invariant 4 for custom operations: the create answers with somebody else's `Location`, and
/// that user's read shows a name that is not the run's (another name, the run id as part of a
/// longer token, the run's name in another member, or as an array), or the run's name in an
/// answer about another id. The create fails, nothing
/// but its proof read reaches that user (no PUT, no DELETE in the journey, no cleanup hook), and
/// the proof read is timed as `kc_create:owns`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_custom_create_answered_is_changed_only_once_proven_the_runs() {
    const RUN: &str = "pb-0wn5a1b2";
    for (shown, answer_id) in [
        (json!("someone-else"), None),
        (json!(format!("{RUN}0-1")), None),
        (json!(format!("x{RUN}-1")), None),
        (json!([format!("{RUN}-1")]), None),
        (Value::Null, None),
        // The run's name, in an answer about another id than the one read.
        (json!(format!("{RUN}-1")), Some("u-1")),
    ] {
        let (url, vendor) = start_vendor().await;
        vendor.foreign_location.store(true, Ordering::Relaxed);
        *vendor.answer_id.lock() = answer_id.map(String::from);
        vendor.users.lock().insert(
            "other".into(),
            json!({"username": shown, "email": format!("{RUN}-1@example.test"), "enabled": true}),
        );
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"vendor\"\nthresholds = [\"rate(errors) == 0\"]\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
             [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
             [[journey]]\nname = \"full\"\nsteps = [\"kc_create\", \"kc_get\", \"kc_disable\", \"kc_delete\"]\n{VENDOR_OPERATIONS}"
        );
        let path = dir.path().join("w.toml");
        std::fs::write(&path, text).unwrap();
        let w = provbench::workload::Workload::load(&path, &Default::default()).unwrap();
        let r = provbench::engine::run(
            provbench::engine::RunOptions {
                out: Some(dir.path().join("results")),
                cleanup_timeout: std::time::Duration::from_secs(10),
                run_id: Some(provbench::ledger::RunId::parse(RUN).unwrap()),
                ..provbench::engine::RunOptions::new(w)
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        let seen = vendor.seen.lock().clone();
        assert!(
            seen.iter().all(|(m, id)| m == "GET" && id == "other"),
            "{shown}: only reads reached the foreign user: {seen:?}"
        );
        assert_eq!(seen.len(), 2, "{shown}: one proof read a journey: {seen:?}");
        assert_eq!(vendor.users.lock()["other"]["enabled"], json!(true));
        let s = &r.summary;
        assert_eq!(s.outcome, provbench::results::RunOutcome::Failed, "{shown}");
        let op = |name: &str| {
            s.metrics
                .iter()
                .find(|m| m.key().metric == "api_latency" && m.key().get("op") == Some(name))
                .map(|m| (m.count, m.errors))
        };
        assert_eq!(op("kc_create"), Some((2, 2)), "{shown}: {:?}", s.failures);
        assert_eq!(op("kc_create:owns"), Some((2, 0)), "{shown}");
        assert!(
            format!("{:?}", s.failures).contains("not the run's"),
            "{shown}: {:?}",
            s.failures
        );
        let cleanup = s.cleanup.as_ref().unwrap();
        assert_eq!(cleanup.deleted, 0, "{shown}: no cleanup hook was owed: {cleanup:?}");
    }
}

/// The cleanup hook of what a custom create made is sent only once a read shows it still the
/// run's: the user proven at its create is replaced under the same id before cleanup, so its
/// hook is not sent, and it is listed as left, not the run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_hook_is_sent_only_while_what_it_undoes_is_still_the_runs() {
    let (url, vendor) = start_vendor().await;
    vendor.replaced_after_first_read.store(true, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"vendor\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"left\"\nsteps = [\"kc_create\"]\n{VENDOR_OPERATIONS}"
    );
    let r = run(dir.path(), &text).await.unwrap();
    let seen = vendor.seen.lock().clone();
    assert!(seen.iter().all(|(m, _)| m == "GET"), "no hook was sent: {seen:?}");
    assert_eq!(
        seen.len(),
        4,
        "a read at each create and one before each hook: {seen:?}"
    );
    let cleanup = r.summary.cleanup.as_ref().unwrap();
    assert_eq!((cleanup.deleted, cleanup.failed), (0, 2), "{cleanup:?}");
    for l in &cleanup.left {
        assert!(l.reason.contains("not the run's"), "{l:?}");
    }
    assert_ne!(r.summary.outcome, provbench::results::RunOutcome::Passed);
}

/// The journey runs a cleanup operation itself on the latest value of its name (made by a
/// second create, which owes no cleanup): only the hook sent to that same path is no longer
/// owed. The first create's hook is still sent at cleanup, so nothing the run made is left
/// (it was dropped before, and that user leaked unlisted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_run_by_the_journey_settles_only_the_hook_it_undid() {
    let (url, vendor) = start_vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let again = "[operations.kc_again]\nmethod = \"POST\"\npath = \"/users\"\nbody = { username = \"{run_id}-{seq}-b\", enabled = true }\nexpect = [201]\nextract = { kc_id = \"header:Location | last-segment\" }\nowns = { read = \"/users/{kc_id}\", identity = \"/username\" }\n";
    let text = format!(
        "name = \"vendor\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"j\"\nsteps = [\"kc_create\", \"kc_again\", \"kc_delete\"]\n{VENDOR_OPERATIONS}{again}"
    );
    let r = run(dir.path(), &text).await.unwrap();
    let cleanup = r.summary.cleanup.as_ref().unwrap();
    assert_eq!((cleanup.deleted, cleanup.failed), (2, 0), "{cleanup:?}");
    let users = vendor.users.lock();
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        vec!["other"],
        "nothing the run made is left"
    );
}

#[test]
fn validate_names_the_line_of_each_mistake_in_an_operation() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"v\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"op\"]\n[operations.op]\nmethod = \"GET\"\n";
    for (tail, line, needle) in [
        ("path = \"/Users/{nope}\"\n", 11, "unknown placeholder `{nope}`"),
        (
            "path = \"/x\"\nextract = { v = \"id\" }\n",
            12,
            "a JSON pointer starts with `/`",
        ),
        ("path = \"/x\"\nexpect = [99]\n", 12, "99 is not an HTTP status"),
        (
            "path = \"/x/{later}\"\n[operations.other]\nmethod = \"GET\"\npath = \"/\"\nextract = { later = \"/a\" }\n",
            0,
            "uses `{later}` before any step provides it",
        ),
    ] {
        let path = dir.path().join("w.toml");
        std::fs::write(&path, format!("{head}{tail}")).unwrap();
        let err = provbench::workload::Workload::load(&path, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{tail}: {err}");
        if line > 0 {
            assert!(err.contains(&format!("w.toml:{line}")), "{tail}: {err}");
        }
    }
}

async fn run_dialect(
    users: &str,
    steps: &str,
    groups: &[&str],
) -> (anyhow::Result<provbench::engine::RunResult>, Vec<Value>) {
    let config = provbench::reference::config::ReferenceConfig::from_toml("profile = \"fast\"\n").unwrap();
    let reference = crate::support::start_reference(config).await;
    for g in groups {
        let r = reference.post_scim("/Groups", json!({"displayName": g})).await;
        assert!(r.status().is_success());
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        "name = \"dialect\"\nthresholds = [\"rate(errors) == 0\"]\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n[[journey]]\nname = \"j\"\nsteps = [{steps}]\n[users]\n{users}",
        reference.scim
    );
    let r = run(dir.path(), &text).await;
    let scim_path = reference
        .scim
        .strip_prefix(&reference.root)
        .unwrap_or_default()
        .to_string();
    let seen = reference.get_json(&format!("{scim_path}/Groups")).await["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    reference.stop().await;
    (r, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_roles_and_patch_style_follow_the_workload() {
    let users = "patch = \"entra\"\nroles = \"entitlements\"\n\
                 modify = { title = \"Engineer {seq}\", \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\" = \"Dept {admin}\" }\n";
    let steps = "\"create_user\", \"modify_user\", \"assign_role:employee\", \"remove_role:employee\", \"disable_user\", \"enable_user\", \"delete_user\"";
    let (r, _) = run_dialect(users, steps, &[]).await;
    let s = r.unwrap().summary;
    assert_eq!(s.outcome, provbench::results::RunOutcome::Passed, "{:?}", s.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_as_groups_use_existing_groups_and_fail_fast_without_them() {
    let steps = "\"create_user\", \"assign_role:employee\", \"remove_role:employee\", \"delete_user\"";
    let (r, groups) = run_dialect("roles = \"groups\"\n", steps, &["employee"]).await;
    let s = r.unwrap().summary;
    assert_eq!(s.outcome, provbench::results::RunOutcome::Passed, "{:?}", s.failures);
    let employee = groups
        .iter()
        .find(|g| g["displayName"] == "employee")
        .expect("the role's group survives");
    assert!(
        employee["members"].as_array().is_none_or(|m| m.is_empty()),
        "{employee}"
    );
    let (r, _) = run_dialect("roles = \"groups\"\n", steps, &[]).await;
    let e = format!("{:#}", r.err().expect("no group, no run"));
    assert!(
        e.contains("finding the group `employee`") && e.contains("no group with that displayName"),
        "{e}"
    );
}

/// A server that takes Microsoft Entra ID's PATCH dialect only (capitalised ops, booleans as
/// strings) and answers 400 to RFC 7644's lowercase form: the wire shape, not just the outcome.
async fn entra_only(
    State(seen): State<Arc<Mutex<Vec<Value>>>>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let ops = body["Operations"].as_array().cloned().unwrap_or_default();
    let entra = ops.iter().all(|op| {
        let capitalised = matches!(op["op"].as_str(), Some("Add" | "Replace" | "Remove"));
        let boolean_as_string = op["path"] != "active" || op["value"].is_string();
        capitalised && boolean_as_string
    });
    seen.lock().extend(ops);
    if !entra {
        return (StatusCode::BAD_REQUEST, Json(json!({"detail": "Entra dialect only"}))).into_response();
    }
    Json(json!({"id": id, "userName": "x"})).into_response()
}

async fn start_entra_only() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(1));
    // The users created and not deleted, by id: a journey reads its user back before changing it.
    let users: Arc<Mutex<std::collections::HashMap<String, Value>>> = Arc::default();
    let (made, read, gone) = (users.clone(), users.clone(), users);
    let app = Router::new()
        .route(
            "/Users",
            post(move |Json(b): Json<Value>| {
                let id = next.fetch_add(1, Ordering::Relaxed).to_string();
                let user = json!({"id": id, "userName": b["userName"]});
                made.lock().insert(id, user.clone());
                async move { (StatusCode::CREATED, Json(user)) }
            })
            .get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        )
        .route(
            "/Users/{id}",
            axum::routing::patch(entra_only)
                .delete(move |Path(id): Path<String>| {
                    gone.lock().remove(&id);
                    async { StatusCode::NO_CONTENT }
                })
                .get(move |Path(id): Path<String>| {
                    let user = read.lock().get(&id).cloned();
                    async move { user.map(Json).ok_or(StatusCode::NOT_FOUND) }
                }),
        )
        .route(
            "/Groups",
            get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entra_dialect_is_what_goes_on_the_wire() {
    for (patch, passes) in [("entra", true), ("standard", false)] {
        let (url, seen) = start_entra_only().await;
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"entra\"\nthresholds = [\"rate(errors) == 0\"]\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\n\
             [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\n\
             steps = [\"create_user\", \"modify_user\", \"assign_role:sales\", \"remove_role:sales\", \"disable_user\", \"enable_user\", \"delete_user\"]\n\
             [users]\npatch = \"{patch}\"\n"
        );
        let r = run(dir.path(), &text).await.unwrap();
        let ok = r.summary.outcome == provbench::results::RunOutcome::Passed;
        assert_eq!(ok, passes, "{patch}: {:?}", r.summary.failures);
        if passes {
            let ops: Vec<String> = seen
                .lock()
                .iter()
                .map(|o| o["op"].as_str().unwrap_or_default().to_string())
                .collect();
            assert_eq!(ops, ["Replace", "Add", "Remove", "Replace", "Replace"], "{patch}");
            assert!(seen.lock().iter().any(|o| o["value"] == "False"), "{:?}", seen.lock());
        }
    }
}
