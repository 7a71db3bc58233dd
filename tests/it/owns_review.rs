//! Hostile review of 46952b4 (invariant 4 for custom operations' `owns`). Each test asserts the
//! invariant; a failing test is a hole. A lying vendor API: every request is recorded, and the
//! answers are chosen per test.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

const RUN: &str = "pb-0wn5a1b2";

type Answer = dyn Fn(&Method, &str, &HeaderMap, usize) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync;

struct Liar {
    /// (method, path, x-user-id header, x-http-method-override header)
    seen: Mutex<Vec<(String, String, String, String)>>,
    answer: Box<Answer>,
}

async fn start(answer: Box<Answer>) -> (String, Arc<Liar>) {
    let liar = Arc::new(Liar {
        seen: Mutex::new(Vec::new()),
        answer,
    });
    let l = liar.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, _b: Bytes| {
        let l = l.clone();
        async move {
            let path = uri.path().trim_start_matches("/api").to_string();
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let n = {
                let mut seen = l.seen.lock();
                seen.push((
                    method.to_string(),
                    path.clone(),
                    h("x-user-id"),
                    h("x-http-method-override"),
                ));
                seen.iter()
                    .filter(|(m, p, _, _)| *m == method.as_str() && *p == path)
                    .count()
            };
            let (status, hs, body) = (l.answer)(&method, &path, &headers, n);
            let mut r: Response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (k, v) in hs {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, liar)
}

async fn run(dir: &std::path::Path, url: &str, steps: &str, ops: &str) -> anyhow::Result<provbench::engine::RunResult> {
    let text = format!(
        "name = \"rev29\"\n[target]\nkind = \"http\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"j\"\nsteps = {steps}\n{ops}"
    );
    let path = dir.join("w.toml");
    std::fs::write(&path, text).unwrap();
    let w = provbench::workload::Workload::load(&path, &Default::default())?;
    provbench::engine::run(
        provbench::engine::RunOptions {
            out: Some(dir.join("results")),
            cleanup_timeout: std::time::Duration::from_secs(5),
            run_id: Some(provbench::ledger::RunId::parse(RUN).unwrap()),
            ..provbench::engine::RunOptions::new(w)
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await
}

fn changes_to(liar: &Liar, path: &str) -> Vec<(String, String, String, String)> {
    liar.seen
        .lock()
        .iter()
        .filter(|(m, p, _, _)| m != "GET" && p.starts_with(path))
        .cloned()
        .collect()
}

/// A create whose `Location` names the run's user and whose body names somebody else's
/// (`admin-1`); `owns` reads the one, a later step (or the hook) deletes the other. Validation
/// accepts it (every extractor of `{other}` "declares owns"), and the proof never looks at
/// `{other}`.
fn two_ids(m: &Method, path: &str, _h: &HeaderMap, _n: usize) -> (u16, Vec<(&'static str, String)>, String) {
    match (m.as_str(), path) {
        ("POST", "/users") => (
            201,
            vec![("location", "/api/users/u-1".into())],
            r#"{"id":"admin-1"}"#.into(),
        ),
        ("GET", "/users/u-1") => (200, vec![], format!(r#"{{"id":"u-1","username":"{RUN}-1"}}"#)),
        ("GET", "/users/admin-1") => (200, vec![], r#"{"id":"admin-1","username":"admin"}"#.into()),
        ("DELETE", _) => (204, vec![], String::new()),
        _ => (404, vec![], "{}".into()),
    }
}

const TWO_IDS: &str = r#"
[operations.mk]
method = "POST"
path = "/users"
body = { username = "{run_id}-{seq}" }
expect = [201]
extract = { mine = "header:Location | last-segment", other = "/id" }
owns = { read = "/users/{mine}", identity = "/username" }
cleanup = "rm_other"

[operations.rm_other]
method = "DELETE"
path = "/users/{other}"
expect = [204]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_a_one_proof_covers_a_value_it_never_read_journey() {
    let (url, liar) = start(Box::new(two_ids)).await;
    let dir = tempfile::tempdir().unwrap();
    // Refused when the workload is read: the read proves `mine`, never `other`.
    let Err(err) = run(dir.path(), &url, r#"["mk", "rm_other"]"#, TWO_IDS).await else {
        panic!("a workload that deletes an unproven value was run")
    };
    assert!(format!("{err:#}").contains("whose read names `{other}`"), "{err:#}");
    let hits = changes_to(&liar, "/users/admin-1");
    assert!(
        hits.is_empty(),
        "somebody else's user was deleted by the journey: {hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_a_one_proof_covers_a_value_it_never_read_cleanup() {
    let (url, liar) = start(Box::new(two_ids)).await;
    let dir = tempfile::tempdir().unwrap();
    let Err(err) = run(dir.path(), &url, r#"["mk"]"#, TWO_IDS).await else {
        panic!("a workload that deletes an unproven value was run")
    };
    assert!(format!("{err:#}").contains("whose read names `{other}`"), "{err:#}");
    let hits = changes_to(&liar, "/users/admin-1");
    assert!(
        hits.is_empty(),
        "somebody else's user was deleted by the cleanup hook: {hits:?}"
    );
}

const ONE_ID: &str = r#"
[operations.mk]
method = "POST"
path = "/users"
body = { username = "{run_id}-{seq}" }
expect = [201]
extract = { vid = "header:Location | last-segment" }
owns = { read = "/users/{vid}", identity = "/username" }

[operations.rm]
method = "DELETE"
path = "/users/{vid}"
expect = [204]
"#;

/// The create answers somebody else's `Location`; the read of that id answers the run's name
/// *about another id* (`"id":"u-1"`). For SCIM this commit made such an answer prove nothing
/// (`shows_identity_of`); `shows_marker_at` never looks at what the answer is about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_c_a_proof_read_about_another_id_proves() {
    let (url, liar) = start(Box::new(|m: &Method, path: &str, _h: &HeaderMap, _n| {
        match (m.as_str(), path) {
            ("POST", "/users") => (201, vec![("location", "/api/users/admin-1".into())], String::new()),
            ("GET", "/users/admin-1") => (200, vec![], format!(r#"{{"id":"u-1","username":"{RUN}-1"}}"#)),
            ("DELETE", _) => (204, vec![], String::new()),
            _ => (404, vec![], "{}".into()),
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let _ = run(dir.path(), &url, r#"["mk", "rm"]"#, ONE_ID).await.unwrap();
    let hits = changes_to(&liar, "/users/admin-1");
    assert!(hits.is_empty(), "deleted on an answer about another id: {hits:?}");
}

/// The read of the foreign id names `username` twice: the admin's name and the run's. The SCIM
/// rule (and the threat model: "a second value of the naming attribute" counts for nothing)
/// says this shows nothing; serde_json's tree keeps the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_d_an_identity_named_twice_proves() {
    let (url, liar) = start(Box::new(|m: &Method, path: &str, _h: &HeaderMap, _n| {
        match (m.as_str(), path) {
            ("POST", "/users") => (201, vec![("location", "/api/users/admin-1".into())], String::new()),
            ("GET", "/users/admin-1") => (
                200,
                vec![],
                format!(r#"{{"id":"admin-1","username":"admin","username":"{RUN}-1"}}"#),
            ),
            ("DELETE", _) => (204, vec![], String::new()),
            _ => (404, vec![], "{}".into()),
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let _ = run(dir.path(), &url, r#"["mk", "rm"]"#, ONE_ID).await.unwrap();
    let hits = changes_to(&liar, "/users/admin-1");
    assert!(hits.is_empty(), "deleted on a second value of the identity: {hits:?}");
}

/// A DELETE whose resource is selected by a header: the value needs no proof, so a create
/// without `owns` answering somebody else's id gets that user deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_b_a_header_that_selects_the_resource_needs_no_proof() {
    let (url, liar) = start(Box::new(|m: &Method, path: &str, _h: &HeaderMap, _n| {
        match (m.as_str(), path) {
            ("POST", "/users") => (201, vec![("location", "/api/users/admin-1".into())], String::new()),
            ("DELETE", _) => (204, vec![], String::new()),
            _ => (404, vec![], "{}".into()),
        }
    }))
    .await;
    let ops = r#"
[operations.mk]
method = "POST"
path = "/users"
body = { username = "{run_id}-{seq}" }
expect = [201]
extract = { vid = "header:Location | last-segment" }

[operations.rm]
method = "DELETE"
path = "/users"
headers = { X-User-Id = "{vid}" }
expect = [204]
"#;
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &url, r#"["mk", "rm"]"#, ops).await;
    let hits: Vec<_> = liar
        .seen
        .lock()
        .iter()
        .filter(|(m, _, id, _)| m == "DELETE" && id == "admin-1")
        .cloned()
        .collect();
    assert!(
        hits.is_empty(),
        "validated: {}; a DELETE selected somebody else by header: {hits:?}",
        r.is_ok()
    );
}

/// A GET that the server turns into a DELETE (`X-HTTP-Method-Override`, honoured by many
/// gateways) is judged safe by method alone.
#[test]
fn hole_b2_a_method_override_header_passes_validation() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"x\"\n[target]\nkind = \"http\"\nbase_url = \"http://127.0.0.1:9/api\"\n\
        [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"mk\", \"rm\"]\n\
        [operations.mk]\nmethod = \"POST\"\npath = \"/users\"\nextract = { vid = \"/id\" }\n\
        [operations.rm]\nmethod = \"GET\"\npath = \"/users/{vid}\"\nheaders = { X-HTTP-Method-Override = \"DELETE\" }\n";
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    let w = provbench::workload::Workload::load(&path, &Default::default());
    assert!(
        w.is_err(),
        "a DELETE spelled as a GET with an override of an unproven value was accepted"
    );
}

/// Attacks that validation refuses, an owns.read that names the value only in a query included.
#[test]
fn held_validation_cases() {
    let load = |ops: &str| {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"x\"\n[target]\nkind = \"http\"\nbase_url = \"http://127.0.0.1:9/api\"\n\
            [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"mk\", \"rm\"]\n{ops}"
        );
        let path = dir.path().join("w.toml");
        std::fs::write(&path, text).unwrap();
        provbench::workload::Workload::load(&path, &Default::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let mk = "[operations.mk]\nmethod = \"POST\"\npath = \"/users\"\nextract = { vid = \"/id\" }\n";
    for rm in [
        "method = \"delete\"\npath = \"/users/{vid}\"",
        "method = \"PURGE\"\npath = \"/users/{vid}\"",
        "method = \"MOVE\"\npath = \"/users/{vid}\"",
        "method = \"POST\"\npath = \"/users:delete?id={vid}\"",
        "method = \"DELETE\"\npath = \"http://127.0.0.1:9/api/users/{vid}\"",
        "method = \"PUT\"\npath = \"/users/x\"\nbody = { ids = [\"{vid}\"] }",
    ] {
        let r = load(&format!("{mk}[operations.rm]\n{rm}\n"));
        assert!(r.is_err(), "accepted: {rm}");
    }
    // An owns.read that names the value only in a query is refused: a server that ignores an
    // unknown query parameter answers its whole list, whose first entry may be any run user.
    let r = load(&format!(
        "{mk}owns = {{ read = \"/users?ignored={{vid}}\", identity = \"/0/username\" }}\n[operations.rm]\nmethod = \"DELETE\"\npath = \"/users/{{vid}}\"\n"
    ));
    assert!(r.unwrap_err().contains("in its path"));
}
