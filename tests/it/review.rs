//! Invariant 10 against a target that breaks the read a check judges by: the authorization and
//! escalation checks read the target back (admin view) to see whether a forbidden call changed
//! anything. A target that takes the forbidden write, answers 401/403, and then fails exactly
//! the read that would show it must not earn a pass: a refused or failed read is an error.
//!
//! Invariant 5 against a target that numbers users and groups each from 1: a resource is its
//! kind and its id, and a group read back as gone proves nothing of the user with its id.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::scim_list as list_of;
use assert_cmd::Command;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

const ADMIN: &str = "Bearer admin-token";

#[derive(Default)]
struct St {
    /// id -> the resource as stored.
    items: Mutex<BTreeMap<String, Value>>,
    next: Mutex<u64>,
}

type S = State<Arc<St>>;

fn new_id(s: &St) -> String {
    let mut n = s.next.lock();
    *n += 1;
    format!("r{n}")
}

fn admin(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(ADMIN)
}

/// Any create is stored; one without the admin's token is answered 401 all the same.
async fn create(State(s): S, h: HeaderMap, Json(mut body): Json<Value>) -> Response {
    let id = new_id(&s);
    body["id"] = json!(id);
    s.items.lock().insert(id, body.clone());
    if admin(&h) {
        (StatusCode::CREATED, Json(body)).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// The filtered search fails for the names a forbidden create used; the sweep's search works.
async fn list(State(s): S, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let filter = q.get("filter").cloned().unwrap_or_default();
    if filter.contains("-authz-") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response();
    }
    let needle = filter.split('"').nth(1).unwrap_or_default().to_string();
    let found = s
        .items
        .lock()
        .values()
        .filter(|v| {
            v["userName"]
                .as_str()
                .or(v["displayName"].as_str())
                .unwrap_or_default()
                .contains(&needle)
        })
        .cloned()
        .collect();
    list_of(found).into_response()
}

/// A read of an escalation target fails; others are truthful.
async fn get_one(State(s): S, Path(id): Path<String>) -> Response {
    match s.items.lock().get(&id) {
        Some(v) if v.to_string().contains("-esc-") => (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response(),
        Some(v) => Json(v.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A non-admin's change takes effect, and is answered 403.
async fn change(State(s): S, h: HeaderMap, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    if let Some(v) = s.items.lock().get_mut(&id) {
        if body.to_string().contains("\"admin\"") {
            v["roles"] = json!([{"value": "admin"}]);
        }
        if body.to_string().contains("pwned") {
            v["displayName"] = json!("pwned");
        }
    }
    if admin(&h) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

async fn delete(State(s): S, Path(id): Path<String>) -> Response {
    match s.items.lock().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start(expires_in: u64) -> String {
    let state = Arc::new(St::default());
    let app = Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route("/scim/v2/Groups", get(list).post(create))
        .route(
            "/scim/v2/Users/{id}",
            get(get_one).delete(delete).patch(change).put(change),
        )
        .route(
            "/scim/v2/Groups/{id}",
            get(get_one).delete(delete).patch(change).put(change),
        )
        .route(
            "/oauth/token",
            post(move || async move { Json(json!({"access_token": "helpdesk-token", "expires_in": expires_in})) }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Regression: the authorization check counted a failed read of "did the forbidden create
/// happen" as 0 users created, and the escalation check a failed read of the user it tried to
/// escalate as unchanged: both passed while every forbidden write had taken effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_write_hidden_by_a_failed_read_is_never_a_pass() {
    let (summary, out) = security_run(1).await;
    for kind in ["authorization", "escalation"] {
        let c = check(&summary, kind, &out);
        assert_eq!(c["passed"], 0, "{kind} passed on unread evidence: {c}");
        assert!(c["failed"].as_u64() > Some(0) || !c["error"].is_null(), "{kind}: {c}");
    }
    assert_ne!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Regression: a token lifetime past any representable time (`expires_in` = 2^64-1) panicked
/// the authorization check's task, which then "never ran"; a long one held it past the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_never_expires_is_no_panic() {
    let (summary, out) = security_run(u64::MAX).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let c = check(&summary, "authorization", &out);
    assert!(c["error"].is_null() && c["failed"].as_u64() > Some(0), "{c}\n{stderr}");
}

fn check(summary: &Value, kind: &str, out: &std::process::Output) -> Value {
    summary["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == kind).cloned())
        .unwrap_or_else(|| {
            panic!(
                "no {kind} check: {summary}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// A run with the authorization and escalation checks against the server above, whose token
/// endpoint says its tokens live `expires_in` seconds: (summary.json, the process's output).
async fn security_run(expires_in: u64) -> (Value, std::process::Output) {
    let url = start(expires_in).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "admin-token").unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "review"
[target]
kind = "scim"
base_url = "{url}/scim/v2"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
duration = "2s"
think_time = "50ms"
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
[checks]
kinds = ["authorization", "escalation"]
token_url = "{url}/oauth/token"
helpdesk_client = {{ client_id = "helpdesk", client_secret_env = "REVIEW_HELPDESK_SECRET" }}
readonly_client = {{ client_id = "readonly", client_secret_env = "REVIEW_HELPDESK_SECRET" }}
expiring_client = {{ client_id = "expiring", client_secret_env = "REVIEW_HELPDESK_SECRET" }}
attempts = 4
min_evidence = 1
"#
        ),
    )
    .unwrap();
    let dir_path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&dir_path)
            .env("REVIEW_HELPDESK_SECRET", "s3cret")
            .args([
                "run",
                "w.toml",
                "--no-progress",
                "--out",
                "results",
                "--cleanup-timeout",
                "5s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap())
            .unwrap_or(Value::Null);
    (summary, out)
}

/// A SCIM server that numbers users and groups each from 1 (as many do: one table each), whose
/// user DELETE answers 204 and deletes nothing, and whose group DELETE is honest.
#[derive(Default)]
struct Twins {
    users: Mutex<BTreeMap<String, String>>,
    groups: Mutex<BTreeMap<String, String>>,
    next: Mutex<(u64, u64)>,
}

type T = State<Arc<Twins>>;

fn named(id: &str, key: &str, name: &str) -> Value {
    json!({"id": id, key: name})
}

async fn twins_start() -> (String, Arc<Twins>) {
    async fn create_user(State(s): T, Json(b): Json<Value>) -> Response {
        let id = {
            let mut n = s.next.lock();
            n.0 += 1;
            n.0.to_string()
        };
        let name = b["userName"].as_str().unwrap_or_default().to_string();
        s.users.lock().insert(id.clone(), name.clone());
        (StatusCode::CREATED, Json(named(&id, "userName", &name))).into_response()
    }
    async fn create_group(State(s): T, Json(b): Json<Value>) -> Response {
        let id = {
            let mut n = s.next.lock();
            n.1 += 1;
            n.1.to_string()
        };
        let name = b["displayName"].as_str().unwrap_or_default().to_string();
        s.groups.lock().insert(id.clone(), name.clone());
        (StatusCode::CREATED, Json(named(&id, "displayName", &name))).into_response()
    }
    fn listing(m: &BTreeMap<String, String>, key: &str, filter: Option<&String>) -> Json<Value> {
        let needle = filter.and_then(|f| f.split('"').nth(1)).unwrap_or_default();
        list_of(
            m.iter()
                .filter(|(_, n)| n.contains(needle))
                .map(|(i, n)| named(i, key, n))
                .collect(),
        )
    }
    async fn list_users(State(s): T, Query(q): Query<BTreeMap<String, String>>) -> Json<Value> {
        listing(&s.users.lock(), "userName", q.get("filter"))
    }
    async fn list_groups(State(s): T, Query(q): Query<BTreeMap<String, String>>) -> Json<Value> {
        listing(&s.groups.lock(), "displayName", q.get("filter"))
    }
    async fn get_user(State(s): T, Path(id): Path<String>) -> Response {
        match s.users.lock().get(&id) {
            Some(n) => Json(named(&id, "userName", n)).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn get_group(State(s): T, Path(id): Path<String>) -> Response {
        match s.groups.lock().get(&id) {
            Some(n) => Json(named(&id, "displayName", n)).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn delete_group(State(s): T, Path(id): Path<String>) -> StatusCode {
        match s.groups.lock().remove(&id) {
            Some(_) => StatusCode::NO_CONTENT,
            None => StatusCode::NOT_FOUND,
        }
    }
    let state = Arc::new(Twins::default());
    let app = Router::new()
        .route("/scim/v2/Users", get(list_users).post(create_user))
        .route("/scim/v2/Groups", get(list_groups).post(create_group))
        .route(
            "/scim/v2/Users/{id}",
            get(get_user).delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/scim/v2/Groups/{id}", get(get_group).delete(delete_group))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

/// Regression: deletes were read back once per id, whatever the resource's kind: group 1's read
/// (gone) stood for user 1's, whose DELETE had deleted nothing, and cleanup said "0 left" with
/// every user of the run still on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_a_group_with_the_same_id_are_each_read_back() {
    let (url, state) = twins_start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "twins"
[target]
kind = "scim"
base_url = "{url}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
iterations = 3
[[journey]]
name = "j"
steps = ["create_user", "create_group", "delete_user"]
"#
        ),
    )
    .unwrap();
    let dir_path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&dir_path)
            .args([
                "run",
                "w.toml",
                "--no-progress",
                "--out",
                "results",
                "--cleanup-timeout",
                "5s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    let still = state.users.lock().len();
    assert_eq!(still, 3, "the server deletes no user");
    let left = summary["cleanup"]["left"]
        .as_array()
        .map_or(0, |l| l.iter().filter(|l| l["kind"] == "user").count());
    assert!(
        left >= 3,
        "{still} users still there, cleanup says {left} left: {}\n{stdout}",
        summary["cleanup"]
    );
    assert_ne!(out.status.code(), Some(0), "{stdout}");
}
