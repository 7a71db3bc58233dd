//! Review 30 (hostile, invariant 4 at 7a7fdde): requests that reach a resource the run did not
//! prove its own. Each test FAILS on 7a7fdde; it passes once the hole is closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::support::run_workload as run;

/// A server's record: what exists, and every change that reached it.
#[derive(Default)]
struct Lying {
    users: Mutex<BTreeMap<String, Value>>,
    /// (how, id): every delete, by method or by a method-override header.
    deleted: Mutex<Vec<(String, String)>>,
    next: AtomicU64,
    /// Header values a cleanup request carried.
    headers: Mutex<Vec<Option<Vec<u8>>>>,
}
type S = State<Arc<Lying>>;

fn overridden(h: &HeaderMap) -> bool {
    h.get("x-http-method-override")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"DELETE"))
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---------------------------------------------------------------------------------------------
// Hole 1: a method-override header on a GET is a change for `check_owners` (extracted values),
// but NOT for the SCIM gate `own::before_custom_step` nor for `journeys::check_custom_steps`
// (`{id}`, `{user_name}`, `{group_id}`): both still look at the method only.
// ---------------------------------------------------------------------------------------------

/// A SCIM server whose create answers the id of somebody else's account ("admin") beside the
/// run's userName, and which honours `X-HTTP-Method-Override: DELETE` on a GET (as many
/// frameworks and gateways do).
async fn start_scim(s: Arc<Lying>) -> String {
    s.users
        .lock()
        .insert("admin".into(), json!({"id": "admin", "userName": "admin@corp.test"}));
    s.users
        .lock()
        .insert("alice".into(), json!({"id": "alice", "userName": "alice@corp.test"}));
    let app = Router::new()
        .route(
            "/Users",
            post(|State(s): S, Json(b): Json<Value>| async move {
                let id = format!("u-{}", s.next.fetch_add(1, Ordering::Relaxed));
                s.users
                    .lock()
                    .insert(id.clone(), json!({"id": id, "userName": b["userName"]}));
                // The lie: somebody else's id beside the run's name.
                (
                    StatusCode::CREATED,
                    Json(json!({"id": "admin", "userName": b["userName"]})),
                )
            })
            .get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        )
        .route(
            "/Users/{id}",
            get(|State(s): S, h: HeaderMap, Path(id): Path<String>| async move {
                if overridden(&h) {
                    s.deleted.lock().push(("GET+override".into(), id.clone()));
                    return match s.users.lock().remove(&id) {
                        Some(_) => StatusCode::NO_CONTENT.into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    };
                }
                match s.users.lock().get(&id).cloned() {
                    Some(u) => Json(u).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            })
            .delete(|State(s): S, Path(id): Path<String>| async move {
                s.deleted.lock().push(("DELETE".into(), id.clone()));
                s.users.lock().remove(&id);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/Groups",
            get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        )
        .with_state(s);
    listen(app).await
}

fn scim_workload(url: &str, steps: &str, method: &str, users: &str) -> String {
    format!(
        "name = \"r30\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [{steps}]\n{users}\
         [operations.zap]\nmethod = \"{method}\"\npath = \"/Users/{{id}}\"\nexpect = [200, 204]\n\
         headers = {{ X-HTTP-Method-Override = \"DELETE\" }}\n"
    )
}

/// Control: the same custom step as a plain DELETE is gated (the create's id is read first,
/// shows `admin@corp.test`, the step fails). As a GET with `X-HTTP-Method-Override: DELETE`,
/// the gate is skipped and the foreign admin is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_override_on_a_get_of_the_journeys_id_skips_the_scim_gate() {
    for method in ["DELETE", "GET"] {
        let s = Arc::new(Lying::default());
        let url = start_scim(s.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let _ = run(dir.path(), &scim_workload(&url, "\"create_user\", \"zap\"", method, "")).await;
        let deleted = s.deleted.lock().clone();
        assert!(
            s.users.lock().contains_key("admin"),
            "{method}: somebody else's admin was deleted: {deleted:?}"
        );
    }
}

/// A fed (existing, foreign) user: `check_custom_steps` refuses a non-GET naming `{id}` of a
/// user the journey did not create, but a GET with a method-override header passes validation,
/// and `before_custom_step` never looks at a user the journey did not create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_override_on_a_get_deletes_a_fed_user() {
    let s = Arc::new(Lying::default());
    let url = start_scim(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "userName,id\nalice@corp.test,alice\n").unwrap();
    let text = scim_workload(
        &url,
        "\"get_user\", \"zap\"",
        "GET",
        "[users]\nfeeder = \"users.csv\"\n",
    );
    // Control: as a DELETE, the workload is refused when read.
    let refused = run(dir.path(), &text.replace("method = \"GET\"", "method = \"DELETE\"")).await;
    assert!(refused.is_err(), "a DELETE of a fed user's id is refused");
    let r = run(dir.path(), &text).await;
    let deleted = s.deleted.lock().clone();
    assert!(
        r.is_err() || s.users.lock().contains_key("alice"),
        "a fed (existing) user was deleted: {deleted:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hole 2: an `owns.read` that names two extracted values proves both with one answer about
// either (`HookProof.about` holds both; `proves` accepts an id equal to any of them).
// ---------------------------------------------------------------------------------------------

/// An org API: a create of an org's member answers the member's id and the org's. Its member
/// read resolves the member by its (global) id and ignores the org segment, as many APIs do.
/// The create answers somebody else's org ("foreign-org").
async fn start_orgs(s: Arc<Lying>) -> String {
    s.users
        .lock()
        .insert("org:foreign-org".into(), json!({"name": "Payroll"}));
    let app = Router::new()
        .route(
            "/orgs/{org}/members",
            post(
                |State(s): S, Path(_org): Path<String>, Json(b): Json<Value>| async move {
                    let id = format!("m-{}", s.next.fetch_add(1, Ordering::Relaxed));
                    s.users
                        .lock()
                        .insert(id.clone(), json!({"id": id, "username": b["username"]}));
                    (StatusCode::CREATED, Json(json!({"id": id, "org": "foreign-org"})))
                },
            ),
        )
        .route(
            "/orgs/{org}/members/{mid}",
            get(|State(s): S, Path((_org, mid)): Path<(String, String)>| async move {
                match s.users.lock().get(&mid).cloned() {
                    Some(u) => Json(u).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/orgs/{org}",
            axum::routing::delete(|State(s): S, Path(org): Path<String>| async move {
                s.deleted.lock().push(("DELETE".into(), org.clone()));
                match s.users.lock().remove(&format!("org:{org}")) {
                    Some(_) => StatusCode::NO_CONTENT,
                    None => StatusCode::NOT_FOUND,
                }
            }),
        )
        .with_state(s);
    listen(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_answer_about_the_member_proves_the_org_it_was_read_under() {
    let s = Arc::new(Lying::default());
    let url = start_orgs(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"r30\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [\"mk\"]\n\
         [operations.mk]\nmethod = \"POST\"\npath = \"/orgs/mine/members\"\n\
         body = {{ username = \"{{run_id}}-{{seq}}\" }}\nexpect = [201]\n\
         extract = {{ org = \"/org\", mid = \"/id\" }}\n\
         owns = {{ read = \"/orgs/{{org}}/members/{{mid}}\", identity = \"/username\" }}\n\
         cleanup = \"drop_org\"\n\
         [operations.drop_org]\nmethod = \"DELETE\"\npath = \"/orgs/{{org}}\"\nexpect = [204]\n"
    );
    let r = run(dir.path(), &text).await;
    let deleted = s.deleted.lock().clone();
    assert!(
        s.users.lock().contains_key("org:foreign-org"),
        "somebody else's org, never read, was deleted: {deleted:?} ({:?})",
        r.map(|r| r.summary.cleanup)
    );
}

// ---------------------------------------------------------------------------------------------
// Hole 3: cleanup's proof read (`requests::owned`, `Owned::Marked`) is sent with ALL the hook's
// headers, a method-override header included: the "read" that is to prove the resource still
// the run's is itself the delete, sent before anything is judged.
// ---------------------------------------------------------------------------------------------

async fn start_vendor(s: Arc<Lying>) -> String {
    let app = Router::new()
        .route(
            "/users",
            post(|State(s): S, Json(b): Json<Value>| async move {
                let id = format!("u-{}", s.next.fetch_add(1, Ordering::Relaxed));
                s.users
                    .lock()
                    .insert(id.clone(), json!({"id": id, "username": b["username"]}));
                (StatusCode::CREATED, [("location", format!("/users/{id}"))])
            }),
        )
        .route(
            "/users/{id}",
            get(|State(s): S, h: HeaderMap, Path(id): Path<String>| async move {
                if overridden(&h) {
                    s.deleted.lock().push(("GET+override".into(), id.clone()));
                    s.users.lock().remove(&id);
                    return StatusCode::NO_CONTENT.into_response();
                }
                let mut users = s.users.lock();
                let answer = users.get(&id).cloned();
                // After its first read, the run's user is replaced under the same id by
                // somebody else's (the case the cleanup re-read exists for).
                if answer.is_some() {
                    users.insert(id.clone(), json!({"id": id, "username": "someone-else"}));
                }
                match answer {
                    Some(u) => Json(u).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            })
            .post(|State(s): S, h: HeaderMap, Path(id): Path<String>| async move {
                if overridden(&h) {
                    s.deleted.lock().push(("POST+override".into(), id.clone()));
                    s.users.lock().remove(&id);
                }
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(s);
    listen(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanups_proof_read_carries_the_hooks_method_override() {
    let s = Arc::new(Lying::default());
    let url = start_vendor(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"r30\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [\"mk\"]\n\
         [operations.mk]\nmethod = \"POST\"\npath = \"/users\"\n\
         body = {{ username = \"{{run_id}}-{{seq}}\" }}\nexpect = [201]\n\
         extract = {{ v = \"header:Location | last-segment\" }}\n\
         owns = {{ read = \"/users/{{v}}\", identity = \"/username\" }}\ncleanup = \"rm\"\n\
         [operations.rm]\nmethod = \"POST\"\npath = \"/users/{{v}}\"\nexpect = [204]\n\
         headers = {{ X-HTTP-Method-Override = \"DELETE\" }}\n"
    );
    let _ = run(dir.path(), &text).await;
    let deleted = s.deleted.lock().clone();
    let users = s.users.lock();
    assert!(
        users.values().any(|u| u["username"] == "someone-else"),
        "the resource that replaced the run's (somebody else's) was deleted by the proof read: {deleted:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hole 4: a cleanup hook's header is stored as `v.to_str().unwrap_or_default()`
// (`Http::custom`): a value a header may carry but `to_str` refuses (bytes >= 0x80: any
// non-ASCII extracted value) becomes an EMPTY header. A hook that selects what it changes by a
// header (`X-User-Id = "{v}"`, counted by `check_owners`) is sent naming nobody, after
// the re-read proved `v`.
// ---------------------------------------------------------------------------------------------

async fn start_sessions(s: Arc<Lying>) -> String {
    let app = Router::new()
        .route(
            "/users",
            post(|State(s): S, Json(b): Json<Value>| async move {
                let id = format!("josé-{}", s.next.fetch_add(1, Ordering::Relaxed));
                s.users
                    .lock()
                    .insert(id.clone(), json!({"id": id, "username": b["username"]}));
                (StatusCode::CREATED, Json(json!({"id": id})))
            }),
        )
        .route(
            "/users/{id}",
            get(|State(s): S, Path(id): Path<String>| async move {
                match s.users.lock().get(&id).cloned() {
                    Some(u) => Json(u).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/sessions",
            axum::routing::delete(|State(s): S, h: HeaderMap, _b: Bytes| async move {
                // `None`: no header at all; `Some(b"")`: an empty one.
                let who = h.get("x-user-id").map(|v| v.as_bytes().to_vec());
                s.headers.lock().push(who);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(s);
    listen(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooks_non_ascii_header_value_is_sent_empty() {
    let s = Arc::new(Lying::default());
    let url = start_sessions(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"r30\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [\"mk\"]\n\
         [operations.mk]\nmethod = \"POST\"\npath = \"/users\"\n\
         body = {{ username = \"{{run_id}}-{{seq}}\" }}\nexpect = [201]\n\
         extract = {{ v = \"/id\" }}\n\
         owns = {{ read = \"/users/{{v}}\", identity = \"/username\" }}\ncleanup = \"logout\"\n\
         [operations.logout]\nmethod = \"DELETE\"\npath = \"/sessions\"\nexpect = [204]\n\
         headers = {{ X-User-Id = \"{{v}}\" }}\n"
    );
    let _ = run(dir.path(), &text).await;
    let sent = s.headers.lock().clone();
    assert!(!sent.is_empty(), "the hook was sent");
    for who in &sent {
        assert_eq!(
            who.as_deref(),
            Some("josé-0".as_bytes()),
            "the hook named {:?}, not the proven josé-0",
            who.as_deref().map(String::from_utf8_lossy)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hole 5: the proof read right after an operation (`Http::prove`) is sent with the operation's
// `{ env = … }` headers only (`Prepared::fixed`), not its template headers; a journey step that
// changes the value sends its own. An API scoped by a per-operation header (`X-Realm`) is proven
// in one scope and changed in another.
// ---------------------------------------------------------------------------------------------

async fn start_realms(s: Arc<Lying>) -> String {
    // Realm b's user 1 is somebody else's admin.
    s.users
        .lock()
        .insert("b/1".into(), json!({"id": "1", "username": "admin@corp.test"}));
    let realm = |h: &HeaderMap| {
        h.get("x-realm")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("a")
            .to_string()
    };
    let app = Router::new()
        .route(
            "/users",
            post(move |State(s): S, h: HeaderMap, Json(b): Json<Value>| async move {
                let r = realm(&h);
                let mut users = s.users.lock();
                let n = users.keys().filter(|k| k.starts_with(&format!("{r}/"))).count() + 1;
                users.insert(
                    format!("{r}/{n}"),
                    json!({"id": n.to_string(), "username": b["username"]}),
                );
                // The lie (or bug): realm b's create answers the id of realm b's first user.
                let answered = if r == "b" { 1 } else { n };
                (StatusCode::CREATED, Json(json!({"id": answered.to_string()})))
            }),
        )
        .route(
            "/users/{id}",
            get(move |State(s): S, h: HeaderMap, Path(id): Path<String>| async move {
                match s.users.lock().get(&format!("{}/{id}", realm(&h))).cloned() {
                    Some(u) => Json(u).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            })
            .delete(move |State(s): S, h: HeaderMap, Path(id): Path<String>| async move {
                let key = format!("{}/{id}", realm(&h));
                s.deleted.lock().push(("DELETE".into(), key.clone()));
                match s.users.lock().remove(&key) {
                    Some(_) => StatusCode::NO_CONTENT,
                    None => StatusCode::NOT_FOUND,
                }
            }),
        )
        .with_state(s);
    listen(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_read_omits_the_operations_own_headers() {
    let s = Arc::new(Lying::default());
    let url = start_realms(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"r30\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [\"mk_a\", \"mk_b\", \"del_b\"]\n\
         [operations.mk_a]\nmethod = \"POST\"\npath = \"/users\"\n\
         body = {{ username = \"{{run_id}}-a{{seq}}\" }}\nexpect = [201]\nextract = {{ va = \"/id\" }}\n\
         owns = {{ read = \"/users/{{va}}\", identity = \"/username\" }}\n\
         [operations.mk_b]\nmethod = \"POST\"\npath = \"/users\"\nheaders = {{ X-Realm = \"b\" }}\n\
         body = {{ username = \"{{run_id}}-b{{seq}}\" }}\nexpect = [201]\nextract = {{ vb = \"/id\" }}\n\
         owns = {{ read = \"/users/{{vb}}\", identity = \"/username\" }}\n\
         [operations.del_b]\nmethod = \"DELETE\"\npath = \"/users/{{vb}}\"\nheaders = {{ X-Realm = \"b\" }}\nexpect = [204]\n"
    );
    let _ = run(dir.path(), &text).await;
    let deleted = s.deleted.lock().clone();
    assert!(
        s.users.lock().contains_key("b/1"),
        "realm b's admin, proven by a read of realm a's user 1, was deleted: {deleted:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Held: `Unique` keeps serde_json's recursion limit (an answer nested 200,000 deep is refused,
// no stack overflow).
// ---------------------------------------------------------------------------------------------

#[test]
fn a_deeply_nested_proof_answer_is_refused_without_overflow() {
    let p = provbench::ledger::HookProof {
        read: "/users/u-1".into(),
        identity: "/name".into(),
        marker: provbench::ledger::RunId::parse("pb-0wn5a1b2").unwrap(),
        about: vec!["u-1".into()],
        id: None,
    };
    for open in ["[", "{\"a\":"] {
        let body = open.repeat(200_000);
        assert!(!provbench::engine::targets::requests::proves(body.as_bytes(), &p));
    }
}
