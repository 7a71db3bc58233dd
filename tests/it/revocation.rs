//! Invariant 10 for the token revocation check (password grant, linked services): an effect is
//! credited only to the write that caused it, and a login that failed is no login refused. An IdP
//! whose disable revokes nothing, and whose token endpoint fails for disabled users instead of
//! refusing them, must not earn a passed revocation.

use std::collections::BTreeMap;
use std::sync::Arc;

use assert_cmd::Command;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What the IdP does with a disabled user.
#[derive(Clone, Copy, PartialEq)]
enum Disabled {
    /// Nothing: the user logs in, and its tokens work, until it is deleted.
    Ignored,
    /// As `Ignored`, and a delete answers 1 s after it removed the user (as a directory that
    /// takes its time to acknowledge a delete does).
    IgnoredSlowDelete,
    /// Its tokens stop working in the service, but the token endpoint answers 503 for it
    /// (neither a token nor a refusal).
    TokenEndpointFails,
}

struct St {
    /// id -> (userName, active)
    users: Mutex<BTreeMap<String, (String, bool)>>,
    next: Mutex<u64>,
    disabled: Disabled,
}

type S = State<Arc<St>>;

fn user(id: &str, name: &str, active: bool) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": name, "active": active})
}

async fn create(State(s): S, Json(b): Json<Value>) -> Response {
    let id = {
        let mut n = s.next.lock();
        *n += 1;
        format!("u{n}")
    };
    let name = b["userName"].as_str().unwrap_or_default().to_string();
    s.users.lock().insert(id.clone(), (name.clone(), true));
    (StatusCode::CREATED, Json(user(&id, &name, true))).into_response()
}

async fn list(State(s): S) -> Json<Value> {
    let all: Vec<Value> = s.users.lock().iter().map(|(i, (n, a))| user(i, n, *a)).collect();
    Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": all.len(), "startIndex": 1, "itemsPerPage": all.len(), "Resources": all}),
    )
}

async fn get_one(State(s): S, Path(id): Path<String>) -> Response {
    match s.users.lock().get(&id) {
        Some((n, a)) => Json(user(&id, n, *a)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn patch(State(s): S, Path(id): Path<String>, Json(b): Json<Value>) -> Response {
    let mut users = s.users.lock();
    let Some((n, a)) = users.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if b.to_string().contains("\"active\"") {
        *a = !b.to_string().contains("false");
    }
    Json(user(&id, n, *a)).into_response()
}

async fn delete(State(s): S, Path(id): Path<String>) -> StatusCode {
    let removed = s.users.lock().remove(&id);
    if removed.is_some() && s.disabled == Disabled::IgnoredSlowDelete {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    match removed {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

/// The user named `name`: whether it exists, and whether it is active.
fn find(s: &St, name: &str) -> Option<bool> {
    s.users.lock().values().find(|(n, _)| n == name).map(|(_, a)| *a)
}

async fn token(State(s): S, Form(f): Form<BTreeMap<String, String>>) -> Response {
    let name = f.get("username").cloned().unwrap_or_default();
    match find(&s, &name) {
        Some(false) if s.disabled == Disabled::TokenEndpointFails => {
            (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
        }
        Some(_) => Json(json!({"access_token": format!("tok:{name}"), "token_type": "Bearer"})).into_response(),
        None => (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response(),
    }
}

async fn me(State(s): S, h: HeaderMap) -> Response {
    let name = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer tok:"))
        .unwrap_or_default();
    let works = match find(&s, name) {
        Some(active) => active || matches!(s.disabled, Disabled::Ignored | Disabled::IgnoredSlowDelete),
        None => false,
    };
    if works {
        Json(json!({"permissions": []})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn start(disabled: Disabled) -> String {
    let state = Arc::new(St {
        users: Mutex::default(),
        next: Mutex::default(),
        disabled,
    });
    let app = Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route("/scim/v2/Users/{id}", get(get_one).patch(patch).delete(delete))
        .route("/oauth/token", post(token))
        .route("/svc/{service}/me", get(me))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Runs `steps` against an IdP that treats disabled users as `disabled`; the revocation check.
async fn revocation(disabled: Disabled, steps: &str) -> (Value, String) {
    let url = start(disabled).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "revocation"
[target]
kind = "scim"
base_url = "{url}/scim/v2"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 2
iterations = 2
think_time = "400ms"
[[journey]]
name = "j"
steps = {steps}
[users]
password = "Pw-{{run_id}}-{{seq}}!"
[checks]
kinds = ["login", "revocation"]
sample = 1.0
timeout = "3s"
min_evidence = 1
token_url = "{url}/oauth/token"
me_url = "{url}/svc/{{service}}/me"
services = ["app"]
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
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let check = summary["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == "revocation").cloned())
        .unwrap_or_else(|| panic!("no revocation check\n{text}"));
    let login = summary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "login")
        .cloned()
        .unwrap();
    assert!(
        login["passed"].as_u64() > Some(0),
        "the users logged in: {login}\n{text}"
    );
    (check, text)
}

/// Regression: after a disable that revoked nothing, the delete that followed made the token
/// stop working and the login fail, and the disable's revocation check counted that as its own
/// pass (the directory checks already judged it overtaken); the delete itself was not judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletes_revocation_is_not_credited_to_the_disable_before_it() {
    let (check, text) = revocation(Disabled::Ignored, r#"["create_user", "disable_user", "delete_user"]"#).await;
    // Two admins, two iterations: four users, each disabled and then deleted. Each disable's
    // check ends overtaken by the delete; each delete is judged as a change of its own.
    assert_eq!(check["overtaken"], 4, "credited to the disable: {check}\n{text}");
    assert_eq!(check["passed"], 4, "each delete judged: {check}\n{text}");
}

/// Regression: a delete was announced to the checks only once acknowledged, so a token refused
/// while the target was deleting (before its answer came back) was credited to the disable before
/// it. Samba's AD DC answers a delete in about 90 ms: a disable that locked nothing passed there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_while_the_delete_is_under_way_is_not_the_disables() {
    let (check, text) = revocation(
        Disabled::IgnoredSlowDelete,
        r#"["create_user", "disable_user", "delete_user"]"#,
    )
    .await;
    assert_eq!(check["overtaken"], 4, "credited to the disable: {check}\n{text}");
    assert_eq!(check["passed"], 4, "each delete judged: {check}\n{text}");
}

/// Regression: the final login attempt of the revocation check counted any error (a 503, a
/// broken connection) as "the user can no longer log in".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_is_no_refused_login() {
    let (check, text) = revocation(Disabled::TokenEndpointFails, r#"["create_user", "disable_user"]"#).await;
    assert_eq!(check["passed"], 0, "a 503 counted as refused: {check}\n{text}");
    assert!(check["failed"].as_u64() > Some(0), "{check}\n{text}");
}
