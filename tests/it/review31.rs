//! Review 31 (hostile, invariants 4 and 5 at 4d107ae). Each test FAILS on 4d107ae; it passes
//! once the hole is closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use provbench::results::RunOutcome;
use serde_json::{Value, json};

use crate::support::run_workload as run;

async fn listen(app: Router, base: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{base}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---------------------------------------------------------------------------------------------
// Hole A (invariant 4): `init --write-probe` deletes by the id a create answered beside the
// name the probe sent. The probe's own read of that id shows somebody else (and fails the
// exercise), but `remove` is called whatever `exercise` said: DELETE of a foreign user.
// ---------------------------------------------------------------------------------------------

const VICTIM: &str = "v1";

struct Scim {
    users: Mutex<BTreeMap<String, Value>>,
    next: AtomicU64,
    seen: Mutex<Vec<(String, String)>>,
}

fn victim() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": VICTIM, "userName": "victim@example.test", "active": true})
}

fn list_of(users: Vec<Value>) -> Response {
    axum::Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": users.len(), "startIndex": 1, "itemsPerPage": users.len(), "Resources": users}),
    )
    .into_response()
}

async fn scim(State(s): State<Arc<Scim>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    s.seen.lock().push((method.to_string(), path.clone()));
    let Some(rest) = path.strip_prefix("/scim/v2") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method.as_str(), rest) {
        ("GET", "/Groups") | ("GET", "/Users") => list_of(vec![]),
        ("POST", "/Users") => {
            let id = format!("c{}", s.next.fetch_add(1, Ordering::Relaxed));
            let mut user = body.clone();
            user["id"] = json!(id);
            s.users.lock().insert(id, user.clone());
            // The lie: the name the probe sent (marked), beside somebody else's id.
            user["id"] = json!(VICTIM);
            (StatusCode::CREATED, axum::Json(user)).into_response()
        }
        (m, member) if member.starts_with("/Users/") => {
            let id = &member["/Users/".len()..];
            let mut users = s.users.lock();
            match (m, users.contains_key(id)) {
                (_, false) => StatusCode::NOT_FOUND.into_response(),
                ("GET", true) => axum::Json(users[id].clone()).into_response(),
                ("DELETE", true) => {
                    users.remove(id);
                    StatusCode::NO_CONTENT.into_response()
                }
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_write_probe_deletes_the_foreign_id_its_create_answered_beside_the_probes_name() {
    let s = Arc::new(Scim {
        users: Mutex::new(BTreeMap::from([(VICTIM.to_string(), victim())])),
        next: AtomicU64::new(1),
        seen: Mutex::new(Vec::new()),
    });
    let url = listen(Router::new().fallback(scim).with_state(s.clone()), "/scim/v2").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(d)
            .env("PB_R31_TOKEN", "t")
            .env_remove("GITHUB_ACTIONS")
            .args([
                "init",
                &u,
                "--token-env",
                "PB_R31_TOKEN",
                "--write-probe",
                "--out",
                "w.toml",
            ])
            .timeout(std::time::Duration::from_secs(180))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let deletes: Vec<String> = s
        .seen
        .lock()
        .iter()
        .filter(|(m, _)| m == "DELETE")
        .map(|(_, p)| p.clone())
        .collect();
    assert!(
        s.users.lock().get(VICTIM) == Some(&victim()),
        "somebody else's user was deleted by init's write probe: deletes {deletes:?}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// A vendor API (kind "http") for holes B, C, D: users live per tenant (`X-Tenant`; none is the
// "default" tenant, which has no such user: 404, as a multi-tenant API answers).
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Vendor {
    /// (tenant, id) -> user.
    users: Mutex<BTreeMap<(String, String), Value>>,
    next: AtomicU64,
    /// A DELETE answers this status and deletes nothing (0: an honest delete, 204).
    lying_delete: AtomicU64,
    /// The first this many GETs of a user answer 503.
    unavailable_reads: AtomicU64,
}

fn tenant(h: &HeaderMap) -> String {
    h.get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("default")
        .to_string()
}

async fn vendor(State(s): State<Arc<Vendor>>, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let t = tenant(&h);
    let path = uri.path().to_string();
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/users") => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = format!("u-{}", s.next.fetch_add(1, Ordering::Relaxed));
            let user = json!({"id": id, "username": body["username"]});
            s.users.lock().insert((t, id), user.clone());
            (StatusCode::CREATED, axum::Json(user)).into_response()
        }
        (m, p) if p.starts_with("/api/users/") => {
            let id = p["/api/users/".len()..].to_string();
            let key = (t, id);
            match m {
                "GET" => {
                    if s.unavailable_reads
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    match s.users.lock().get(&key) {
                        Some(u) => axum::Json(u.clone()).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
                "DELETE" => {
                    let lie = s.lying_delete.load(Ordering::Relaxed);
                    if lie != 0 {
                        return StatusCode::from_u16(lie as u16).unwrap().into_response();
                    }
                    match s.users.lock().remove(&key) {
                        Some(_) => StatusCode::NO_CONTENT.into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_vendor(s: Arc<Vendor>) -> String {
    listen(Router::new().fallback(vendor).with_state(s), "/api").await
}

/// The workload: `mk` creates (in tenant acme, by the operation's own header), proves it, and
/// owes `rm`, which deletes in the same tenant.
fn workload(url: &str, steps: &str, rm_expect: &str) -> String {
    format!(
        "name = \"r31\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [{steps}]\n\
         [operations.mk]\nmethod = \"POST\"\npath = \"/users\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         body = {{ username = \"{{run_id}}-{{seq}}\" }}\nexpect = [201]\nextract = {{ uid = \"/id\" }}\n\
         cleanup = \"rm\"\nowns = {{ read = \"/users/{{uid}}\", identity = \"/username\" }}\n\
         [operations.rm]\nmethod = \"DELETE\"\npath = \"/users/{{uid}}\"\nheaders = {{ X-Tenant = \"acme\" }}\n\
         expect = {rm_expect}\n"
    )
}

/// What the run claims about what it left, and what is really there.
fn claims_nothing_left(r: &provbench::engine::RunResult) -> bool {
    let c = r.summary.cleanup.as_ref().expect("a cleanup report");
    !c.incomplete() && c.left.is_empty()
}

// ---------------------------------------------------------------------------------------------
// Hole B (invariant 5): a custom DELETE the journey runs itself settles the owed hook
// (`Http::custom`) and is read back by nothing: a DELETE answered 204 that deletes nothing
// leaves the run's user on the target, and the run says passed, 0 left.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_delete_run_by_the_journey_is_never_read_back() {
    let s = Arc::new(Vendor::default());
    s.lying_delete.store(204, Ordering::Relaxed);
    let url = start_vendor(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &workload(&url, "\"mk\", \"rm\"", "[204]"))
        .await
        .unwrap();
    let left = s.users.lock().len();
    assert_eq!(left, 1, "the lying DELETE deleted nothing");
    assert!(
        !(r.summary.outcome == RunOutcome::Passed && claims_nothing_left(&r)),
        "{left} user(s) of the run still on the target, yet the run is {:?} with cleanup {:?}",
        r.summary.outcome,
        r.summary.cleanup
    );
}

// ---------------------------------------------------------------------------------------------
// Hole C (invariant 5): cleanup reads a hook back (`requests::read_back`, via
// `requests::hook_read_path`) without the hook's own headers: the GET goes to another scope
// (no tenant), answers 404 there, and an accepted-but-not-done delete counts as verified.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_is_read_back_without_its_own_headers_and_verified_in_another_scope() {
    let s = Arc::new(Vendor::default());
    // Accepted (queued), not done: the user is still there.
    s.lying_delete.store(202, Ordering::Relaxed);
    let url = start_vendor(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &workload(&url, "\"mk\"", "[202]")).await.unwrap();
    let left = s.users.lock().len();
    assert_eq!(left, 1, "the accepted DELETE deleted nothing");
    let c = r.summary.cleanup.clone().unwrap();
    assert!(
        c.verified == 0 && !(r.summary.outcome == RunOutcome::Passed && claims_nothing_left(&r)),
        "{left} user(s) of the run still in tenant acme, yet the hook was verified gone: {:?} {c:?}",
        r.summary.outcome
    );
}

// ---------------------------------------------------------------------------------------------
// Hole D (invariant 5), fixed: a create answered 201 whose proof read fails for a passing reason
// (503, also 429, a timeout, an interrupt) dropped its values and its owed hook (`Http::custom`):
// the run's own, marked user stayed on the target, listed nowhere. Now the hook stays owed, to be
// sent only once the same read proves it at cleanup.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_proof_read_answered_503_is_left_unlisted() {
    let s = Arc::new(Vendor::default());
    s.unavailable_reads.store(1, Ordering::Relaxed);
    let url = start_vendor(s.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &workload(&url, "\"mk\"", "[204]")).await.unwrap();
    // Its cleanup was still owed: at cleanup the same read proved it, and the hook deleted it.
    let left = s.users.lock().len();
    let c = r.summary.cleanup.clone().unwrap();
    assert_eq!((left, c.deleted, c.verified), (0, 1, 1), "{c:?}");
    assert!(claims_nothing_left(&r), "{c:?}");
}
