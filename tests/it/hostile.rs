//! Purpose-built misbehaving SCIM targets on `127.0.0.1:0`, driven by the real binary: a target
//! that answers creates with somebody else's user, one whose deletes fail, one that answers
//! everything with `{"ok":true}`. What is not the run's survives; what the run leaves is listed,
//! with a non-zero exit; a run that measured nothing never passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::scim_user as user;
use assert_cmd::Command;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Every create answers with the same existing user, `victim@example.test`.
    ForeignOnCreate,
    /// Deletes fail with 503 every other time (a retry passes).
    FlakyDeletes,
    /// Deletes of users whose name ends in an odd digit always fail with 500.
    StuckDeletes,
    /// Every request: 200 `{"ok":true}`.
    OkForEverything,
    /// Deletes take 300 ms (and work).
    SlowDeletes,
    /// Creates never answer.
    Hang,
    /// No `/Groups` collection: 404.
    NoGroups,
    /// A read of a user answers the user's own `userName` under another id.
    ReadsAnotherId,
}

pub struct Hostile {
    pub url: String,
    pub users: Arc<Mutex<BTreeMap<String, String>>>,
    pub deletes: Arc<AtomicU64>,
    /// The id of each DELETE, in the order they came.
    pub deleted: Arc<Mutex<Vec<String>>>,
}

struct St {
    behaviour: Behaviour,
    users: Arc<Mutex<BTreeMap<String, String>>>,
    next: AtomicU64,
    deletes: Arc<AtomicU64>,
    deleted: Arc<Mutex<Vec<String>>>,
}

type S = State<Arc<St>>;

async fn create(State(s): S, Json(body): Json<Value>) -> impl IntoResponse {
    if s.behaviour == Behaviour::Hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    match s.behaviour {
        Behaviour::OkForEverything => (StatusCode::OK, Json(json!({"ok": true}))),
        Behaviour::ForeignOnCreate => (StatusCode::CREATED, Json(user("victim", "victim@example.test"))),
        _ => {
            let id = format!("u{}", s.next.fetch_add(1, Ordering::Relaxed));
            let name = body["userName"].as_str().unwrap_or_default().to_string();
            s.users.lock().insert(id.clone(), name.clone());
            (StatusCode::CREATED, Json(user(&id, &name)))
        }
    }
}

/// Lists every user whatever the filter (as a server that ignores filters would).
async fn list(State(s): S) -> impl IntoResponse {
    if s.behaviour == Behaviour::OkForEverything {
        return Json(json!({"ok": true}));
    }
    let users: Vec<Value> = s.users.lock().iter().map(|(id, n)| user(id, n)).collect();
    Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": users.len(),
                "startIndex": 1, "itemsPerPage": users.len(), "Resources": users}),
    )
}

async fn get_one(State(s): S, Path(id): Path<String>) -> impl IntoResponse {
    match s.users.lock().get(&id) {
        Some(n) if s.behaviour == Behaviour::ReadsAnotherId => (StatusCode::OK, Json(user("someone-else", n))),
        Some(n) => (StatusCode::OK, Json(user(&id, n))),
        None => (StatusCode::NOT_FOUND, Json(json!({"status": "404"}))),
    }
}

async fn delete(State(s): S, Path(id): Path<String>) -> impl IntoResponse {
    let n = s.deletes.fetch_add(1, Ordering::Relaxed);
    s.deleted.lock().push(id.clone());
    if s.behaviour == Behaviour::SlowDeletes {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let name = s.users.lock().get(&id).cloned();
    match (s.behaviour, name) {
        (Behaviour::OkForEverything, _) => (StatusCode::OK, "{\"ok\":true}").into_response(),
        (_, None) => StatusCode::NOT_FOUND.into_response(),
        (Behaviour::FlakyDeletes, Some(_)) if n % 2 == 0 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        (Behaviour::StuckDeletes, Some(name))
            if name
                .split('@')
                .next()
                .and_then(|l| l.chars().last())
                .is_some_and(|c| "13579".contains(c)) =>
        {
            (StatusCode::INTERNAL_SERVER_ERROR, "no").into_response()
        }
        (_, Some(_)) => {
            s.users.lock().remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

pub async fn start(behaviour: Behaviour, existing: &[(&str, &str)]) -> Hostile {
    let users: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(
        existing.iter().map(|(i, n)| (i.to_string(), n.to_string())).collect(),
    ));
    let deletes = Arc::new(AtomicU64::new(0));
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(St {
        behaviour,
        users: users.clone(),
        next: AtomicU64::new(1),
        deletes: deletes.clone(),
        deleted: deleted.clone(),
    });
    let mut app = Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route("/scim/v2/Users/{id}", get(get_one).delete(delete));
    if behaviour != Behaviour::NoGroups {
        app = app.route(
            "/scim/v2/Groups",
            get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        );
    }
    let app = app.with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hostile {
        url,
        users,
        deletes,
        deleted,
    }
}

/// Runs `steps` for 1 s against `url` with the real binary; returns (exit code, stdout, stderr,
/// summary.json).
pub fn run(url: &str, steps: &str, extra: &[&str]) -> (Option<i32>, String, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "hostile"
[target]
kind = "scim"
base_url = "{url}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 2
duration = "1s"
think_time = "20ms"
[[journey]]
name = "j"
steps = {steps}
"#
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--cleanup-timeout",
            "20s",
        ])
        .args(extra)
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(dir.path().join("results/summary.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
    )
}

/// Regression: the user a create answered with (not the run's) was deleted at cleanup, and the
/// marker sweep deleted `pb-nightly10-…` and `pb-nightly1x…` for run `pb-nightly1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_that_are_not_the_runs_survive() {
    let lookalikes = [
        ("victim", "victim@example.test"),
        ("other1", "pb-nightly10-1@example.test"),
        ("other2", "pb-nightly1x@example.test"),
    ];
    let server = start(Behaviour::ForeignOnCreate, &lookalikes).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || {
        run(&url, r#"["create_user", "delete_user"]"#, &["--run-id", "pb-nightly1"])
    })
    .await
    .unwrap();
    let left: Vec<String> = server.users.lock().values().cloned().collect();
    assert_eq!(left.len(), 3, "{left:?}\n{stdout}{stderr}");
    assert_eq!(server.deletes.load(Ordering::Relaxed), 0, "no delete was even tried");
    // Every create failed (the answer was not the user sent): nothing was measured.
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(s["outcome"], "error");
    let creates = &s["metrics"][0];
    assert_eq!(creates["tags"]["op"], "create_user");
    assert_eq!(creates["errors_by_reason"]["payload"], creates["count"], "{creates}");
    assert!(stderr.contains("operations failed"), "{stderr}");
}

/// Regression: cleanup's read before a delete judged the answer's `userName` alone, so an answer
/// about another resource (another id) that showed the run's name got the delete sent. Now the
/// answer must be about the id the ledger (or the listing) holds, as the journeys' gate asks:
/// nothing is deleted, and every user is listed as not the run's, with a non-zero exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_answers_another_id_gets_no_delete() {
    let server = start(Behaviour::ReadsAnotherId, &[]).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) = tokio::task::spawn_blocking(move || run(&url, r#"["create_user"]"#, &[]))
        .await
        .unwrap();
    let left = server.users.lock().len() as u64;
    assert!(left > 0, "{stdout}{stderr}");
    assert_eq!(
        server.deletes.load(Ordering::Relaxed),
        0,
        "no delete was sent: {stdout}{stderr}"
    );
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(s["cleanup"]["failed"].as_u64(), Some(left), "{}", s["cleanup"]);
    for l in s["cleanup"]["left"].as_array().unwrap() {
        assert!(l["reason"].as_str().unwrap().contains("not the run's"), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deletes_are_retried_and_what_stays_is_listed() {
    // Deletes that fail every other time: retried, nothing left.
    let server = start(Behaviour::FlakyDeletes, &[]).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) =
        tokio::task::spawn_blocking(move || run(&url, r#"["create_user", "get_user"]"#, &[]))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(server.users.lock().is_empty(), "{:?}", server.users.lock());
    assert!(s["cleanup"]["retries"].as_u64().unwrap() > 0, "{}", s["cleanup"]);
    assert_eq!(s["cleanup"]["failed"], 0);

    // Deletes that always fail for some users (more of them than cleanup sends at once): listed
    // with their last answer and the command, and the run fails; they never kept another user
    // from its delete.
    let server = start(Behaviour::StuckDeletes, &[]).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) =
        tokio::task::spawn_blocking(move || run(&url, r#"["create_user", "get_user"]"#, &[]))
            .await
            .unwrap();
    let stuck = server.users.lock().len() as u64;
    assert!(stuck > 0, "some users end in an odd digit");
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(s["outcome"], "error");
    assert_eq!(s["cleanup"]["failed"].as_u64(), Some(stuck), "{}", s["cleanup"]);
    let listed = s["cleanup"]["left"].as_array().unwrap();
    assert_eq!(listed.len() as u64, stuck.min(200));
    // Each says why: the 500 of its last delete, or, for one whose retries the cleanup's
    // deadline cut short (on a busy machine), that the cleanup timed out.
    for l in listed {
        let why = l["reason"].as_str().unwrap();
        assert!(why.contains("500") || why.contains("timed out"), "{l}");
    }
    assert!(
        listed.iter().any(|l| l["reason"].as_str().unwrap().contains("500")),
        "{listed:?}"
    );
    // Every user's first delete came before any user's fourth: a user whose deletes keep
    // failing is retried a few times beside the others, then once everything else had its turn,
    // never in the place of one not yet tried (16 stuck users used to hold every slot).
    let order = server.deleted.lock().clone();
    let mut count = std::collections::HashMap::new();
    let fourth = order
        .iter()
        .position(|id| {
            let n = count.entry(id).or_insert(0);
            *n += 1;
            *n == 4
        })
        .unwrap_or(order.len());
    let users = order.iter().collect::<std::collections::HashSet<_>>();
    let before = order[..fourth].iter().collect::<std::collections::HashSet<_>>();
    assert_eq!(before, users, "a user's first delete came after a fourth: {order:?}");
    let run_id = s["run_id"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("remove them with: provbench cleanup --run-id {run_id}")),
        "{stdout}"
    );
    assert!(stderr.contains("cleanup left"), "{stderr}");
}

/// Regression: a target without `/Groups` (404) made every run `error`, though the run created
/// no group to look for there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_groups_passes_a_run_that_made_none() {
    let server = start(Behaviour::NoGroups, &[]).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) =
        tokio::task::spawn_blocking(move || run(&url, r#"["create_user", "get_user"]"#, &[]))
            .await
            .unwrap();
    assert!(server.users.lock().is_empty(), "{:?}", server.users.lock());
    assert_eq!(s["cleanup"]["failed"], 0, "{}", s["cleanup"]);
    assert!(
        s["cleanup"]["unsearchable"].as_array().is_none_or(Vec::is_empty),
        "{}",
        s["cleanup"]
    );
    assert_eq!(s["outcome"], "passed", "{stdout}{stderr}");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

/// Regression: a target answering every request with `{"ok":true}` passed with 100 % errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_answers_nothing_useful_never_passes() {
    let server = start(Behaviour::OkForEverything, &[]).await;
    let url = server.url.clone();
    let (code, stdout, stderr, s) =
        tokio::task::spawn_blocking(move || run(&url, r#"["create_user", "delete_user"]"#, &[]))
            .await
            .unwrap();
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(s["outcome"], "error");
    assert!(stderr.contains("failed: no latency was measured"), "{stderr}");
    // A payload error shows what came back, not only what was missing.
    let failures = s["failures"].to_string();
    assert!(
        failures.contains(r#"created user has no id (the answer: {\"ok\":true})"#),
        "{failures}"
    );
    assert!(stderr.contains("cleanup could not search the target"), "{stderr}");
    // `provbench cleanup` against a target it cannot search says so and exits 2, never "0 deleted".
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .args(["cleanup", "--run-id", "pb-1a2b3c4d", "--target-url", &server.url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot search the target") && stderr.contains("ListResponse"),
        "{stderr}"
    );
    // A marker that is not a run id is refused unless forced.
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .args(["cleanup", "--run-id", "12345678", "--target-url", &server.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a provbench run id"));
}

/// A target that echoes what it is sent, with escape sequences: the token endpoint echoes its
/// form (client secret included), the API echoes the Authorization header. Nothing secret and
/// no raw escape reaches stdout, stderr or any file the run wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_escape_codes_never_reach_an_output() {
    use axum::http::HeaderMap;
    let refuse_tokens = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let refuse = refuse_tokens.clone();
    let app = Router::new()
        .route(
            "/oauth/token",
            axum::routing::post(move |body: String| {
                let refuse = refuse.load(Ordering::Relaxed);
                async move {
                    if refuse {
                        (
                            StatusCode::BAD_REQUEST,
                            format!("\u{1b}[31minvalid_client\u{1b}[0m: you sent {body}"),
                        )
                    } else {
                        (
                            StatusCode::OK,
                            json!({"access_token": "tok-0123456789abcdef", "expires_in": 3600}).to_string(),
                        )
                    }
                }
            }),
        )
        .route(
            "/scim/v2/Users",
            get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }).post(|h: HeaderMap| async move {
                let auth = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("\u{1b}[2J\u{7}boom, your header was {auth}"),
                )
            }),
        )
        .route(
            "/scim/v2/Groups",
            get(|| async { Json(json!({"totalResults": 0, "Resources": []})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "echo"
[target]
kind = "scim"
base_url = "http://admin:hunter2-url-pass@{addr}/scim/v2"
auth = {{ kind = "oauth2-client-credentials", token_url = "/oauth/token", client_id = "c", client_secret_env = "ECHO_SECRET" }}
[load]
model = "closed"
admins = 1
duration = "1s"
[[journey]]
name = "j"
steps = ["create_user"]
"#
        ),
    )
    .unwrap();
    let secret = "s3cr3t-client-value";
    let run = move |dir: &std::path::Path| {
        Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir)
            .env("ECHO_SECRET", secret)
            .args(["-v", "run", "w.toml", "--no-progress", "--out", "results"])
            .output()
            .unwrap()
    };
    // The token endpoint refuses, echoing the form: the run cannot start.
    let d = dir.path().to_path_buf();
    let refused = tokio::task::spawn_blocking(move || run(&d)).await.unwrap();
    assert_eq!(refused.status.code(), Some(2));
    // It grants a token; every create fails with a body that echoes the token.
    refuse_tokens.store(false, Ordering::Relaxed);
    let d = dir.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || run(&d)).await.unwrap();
    let mut outputs = vec![
        (
            "stdout/stderr (refused)".to_string(),
            [refused.stdout, refused.stderr].concat(),
        ),
        ("stdout/stderr (ran)".to_string(), [ran.stdout, ran.stderr].concat()),
    ];
    for entry in std::fs::read_dir(dir.path().join("results")).unwrap() {
        let path = entry.unwrap().path();
        outputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(outputs.len() > 5, "the run wrote its files");
    let refused_text = String::from_utf8_lossy(&outputs[0].1);
    assert!(
        refused_text.contains("invalid_client") && refused_text.contains("***"),
        "{refused_text}"
    );
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for needle in [secret, "hunter2-url-pass", "tok-0123456789abcdef"] {
            assert!(!text.contains(needle), "{name} shows `{needle}`:\n{text}");
        }
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0x07),
            "{name} carries a raw escape:\n{text}"
        );
    }
}

/// Regression: `provbench cleanup WORKLOAD --target-url URL` dropped the workload's auth (401, then
/// "0 deleted" and exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_with_target_url_keeps_the_workloads_auth() {
    let reference =
        crate::support::start_reference(provbench::reference::config::ReferenceConfig::profile("fast").unwrap()).await;
    for i in 0..3 {
        let r = reference
            .post_scim("/Users", json!({"userName": format!("pb-1a2b3c4d-{i}@example.test")}))
            .await;
        assert!(r.status().is_success());
    }
    reference
        .post_scim("/Users", json!({"userName": "pb-1a2b3c4d0-9@example.test"}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        "name = \"x\"\n[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\nauth = { kind = \"bearer\", token_file = \"token\" }\n[load]\nmodel = \"closed\"\nadmins = 1\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n",
    )
    .unwrap();
    let (dir_path, url) = (dir.path().to_path_buf(), reference.scim.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&dir_path)
            .args(["cleanup", "--run-id", "pb-1a2b3c4d", "w.toml", "--target-url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("3 deleted"), "{stdout}");
    // Only the run's: the lookalike of another run stays.
    let left = reference.get_json("/scim/v2/Users?count=10").await;
    assert_eq!(left["totalResults"], 1, "{left}");
    reference.stop().await;
}

/// Token endpoints that take one client authentication method only, as real identity providers
/// do: provbench's default (HTTP Basic, as RFC 6749 prefers) and `client_auth = "post"` each work
/// where they are taken, and fail with the server's own `invalid_client` reason where not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_authentication_basic_or_post() {
    for (server, client, works) in [
        ("basic", None, true),
        ("basic", Some("post"), false),
        ("post", Some("post"), true),
        ("post", None, false),
    ] {
        let config = provbench::reference::config::ReferenceConfig::from_toml(&format!(
            "profile = \"fast\"\nclient_auth = \"{server}\"\n"
        ))
        .unwrap();
        let reference = crate::support::start_reference(config).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "provbench-admin-secret").unwrap();
        let client_auth = client.map(|c| format!(", client_auth = \"{c}\"")).unwrap_or_default();
        let text = format!(
            "name = \"client-auth\"\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\n\
             auth = {{ kind = \"oauth2-client-credentials\", token_url = \"{}/oauth/token\", client_id = \"provbench-admin\", client_secret_file = \"secret\"{client_auth} }}\n\
             [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n",
            reference.scim, reference.root
        );
        let path = dir.path().join("w.toml");
        std::fs::write(&path, &text).unwrap();
        let w = provbench::workload::Workload::load(&path, &Default::default()).unwrap();
        crate::support::logs();
        let result = provbench::engine::run(
            provbench::engine::RunOptions {
                out: Some(dir.path().join("results")),
                cleanup_timeout: std::time::Duration::from_secs(30),
                ..provbench::engine::RunOptions::new(w)
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await;
        reference.stop().await;
        match (works, result) {
            (true, Ok(r)) => assert_eq!(
                r.summary.outcome,
                provbench::results::RunOutcome::Passed,
                "{server}/{client:?}"
            ),
            (false, Err(e)) => {
                let e = format!("{e:#}");
                assert!(
                    e.contains("invalid_client") && e.contains(&format!("client_secret_{server} only")),
                    "{e}"
                );
                assert!(!e.contains("provbench-admin-secret"), "the secret never shows: {e}");
            }
            (works, other) => panic!(
                "{server}/{client:?}: expected works={works}, got {:?}",
                other.map(|r| r.summary.outcome)
            ),
        }
    }
}
