//! Review 32 (hostile, at a6ddc75).
use crate::support::run_workload as run;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
struct V {
    users: Mutex<BTreeMap<(String, String), Value>>,
    next: Mutex<BTreeMap<String, u64>>,
}

async fn vendor(State(s): State<Arc<V>>, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let t = h
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("default")
        .to_string();
    let path = uri.path().to_string();
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/users") => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            // Ids numbered per tenant: tenant a's u-0 and tenant b's u-0 share a path.
            let mut n = s.next.lock();
            let c = n.entry(t.clone()).or_default();
            let id = format!("u-{c}");
            *c += 1;
            let user = json!({"id": id, "username": body["username"]});
            s.users.lock().insert((t, id), user.clone());
            (StatusCode::CREATED, axum::Json(user)).into_response()
        }
        ("GET", p) if p.starts_with("/api/users/") => {
            match s.users.lock().get(&(t, p["/api/users/".len()..].to_string())) {
                Some(u) => axum::Json(u.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        // Accepted, not done.
        ("DELETE", p) if p.starts_with("/api/users/") => StatusCode::ACCEPTED.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hooks_same_path_other_tenant_one_is_never_read_nor_listed() {
    let s = Arc::new(V::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let app = Router::new().fallback(vendor).with_state(s.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut w = format!(
        "name = \"r32\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = [\"mka\", \"mkb\"]\n"
    );
    for t in ["a", "b"] {
        w += &format!(
            "[operations.mk{t}]\nmethod = \"POST\"\npath = \"/users\"\nheaders = {{ X-Tenant = \"{t}\" }}\n\
             body = {{ username = \"{{run_id}}-{{seq}}-{t}\" }}\nexpect = [201]\nextract = {{ uid{t} = \"/id\" }}\n\
             cleanup = \"rm{t}\"\nowns = {{ read = \"/users/{{uid{t}}}\", identity = \"/username\" }}\n\
             [operations.rm{t}]\nmethod = \"DELETE\"\npath = \"/users/{{uid{t}}}\"\nheaders = {{ X-Tenant = \"{t}\" }}\n\
             expect = [202]\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &w).await.unwrap();
    let left = s.users.lock().len();
    let c = r.summary.cleanup.clone().unwrap();
    eprintln!("outcome {:?} cleanup {c:?}", r.summary.outcome);
    assert_eq!(left, 2);
    assert_eq!(
        c.left.len() as u64 + c.verified,
        2,
        "{left} of the run's users remain; the report lists {} : {c:?}",
        c.left.len()
    );
}
