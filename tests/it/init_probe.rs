//! `provbench init --write-probe` on SCIM targets, driven by the real binary: against the
//! reference service (as it is, with a PATCH it answers 500 to, with soft deletes) and against
//! servers that lie (a create answered with somebody else's user or an id that is no segment, a
//! DELETE that deletes nothing). Asserted on the server: the probe leaves no user carrying its
//! run id, touches no other user, and deletes nothing but the user it created; the workload it
//! writes passes `validate --online` and runs with 0 errors and 0 left. Without `--write-probe`,
//! `init` sends nothing but GET and HEAD.

use std::collections::BTreeMap;
use std::sync::Arc;

use assert_cmd::Command;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use provbench::reference::config::ReferenceConfig;
use serde_json::{Value, json};

use crate::support::{Reference, start_reference};

const TOKEN_ENV: &str = "PB_INIT_PROBE_TOKEN";

pub(crate) struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The binary with `args`, the token in the environment, off the async workers.
async fn provbench(dir: &std::path::Path, token: &str, args: Vec<String>) -> Out {
    let (dir, token) = (dir.to_path_buf(), token.to_string());
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir)
            .env(TOKEN_ENV, token)
            .env_remove("GITHUB_ACTIONS")
            .args(args)
            .timeout(std::time::Duration::from_secs(180))
            .output()
            .unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn init(dir: &std::path::Path, url: &str, token: &str, extra: &[&str]) -> Out {
    let mut a = args(&["init", url, "--token-env", TOKEN_ENV, "--out", "w.toml"]);
    a.extend(args(extra));
    provbench(dir, token, a).await
}

/// Every user the reference holds, by id.
async fn users(r: &Reference) -> BTreeMap<String, Value> {
    let list = r.get_json("/scim/v2/Users?count=1000").await;
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect()
}

/// Two users of somebody else's, on the reference.
async fn others(r: &Reference) -> BTreeMap<String, Value> {
    for name in ["alice@example.test", "bob@example.test"] {
        let resp = r
            .post_scim(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "title": "Keeper"}),
            )
            .await;
        assert_eq!(resp.status().as_u16(), 201);
    }
    users(r).await
}

/// `init --write-probe` against `config`, then `validate --online` and a 3 s run of what it
/// wrote: the workload's text.
async fn probe_then_run(config: ReferenceConfig) -> String {
    let r = start_reference(config).await;
    let before = others(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &r.scim, &r.token, &["--write-probe"]).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("read back as gone"), "{}", out.stderr);
    // Nothing of the probe is left, and nobody else's user changed.
    assert_eq!(users(&r).await, before, "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path().join("w.toml")).unwrap();
    let v = provbench(dir.path(), &r.token, args(&["validate", "--online", "w.toml"])).await;
    assert_eq!(v.code, Some(0), "{}{}\n{text}", v.stdout, v.stderr);
    let run = provbench(
        dir.path(),
        &r.token,
        args(&["run", "w.toml", "--duration", "3s", "--no-progress", "--out", "results"]),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}{}\n{text}", run.stdout, run.stderr);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    let errors: u64 = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["errors"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(errors, 0, "{}", run.stdout);
    let cleanup = &summary["cleanup"];
    assert!(
        cleanup["left"].as_array().is_none_or(|l| l.is_empty()) && cleanup["failed"] == 0 && cleanup["unverified"] == 0,
        "{cleanup}"
    );
    assert_eq!(users(&r).await, before, "the run left users: {}", run.stdout);
    r.stop().await;
    text
}

fn fast() -> ReferenceConfig {
    ReferenceConfig::profile("fast").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_leaves_nothing_and_its_workload_runs() {
    let text = probe_then_run(fast()).await;
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(t["users"]["patch"].as_str(), Some("standard"), "{text}");
    assert!(t["users"]["modify"].get("title").is_some(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_answered_500_moves_modify_to_another_attribute() {
    let mut config = fast();
    config.faults.patch_errors = vec!["title".into()];
    let text = probe_then_run(config).await;
    let t: toml::Table = toml::from_str(&text).unwrap();
    let modify = t["users"]["modify"].as_table().unwrap();
    assert!(!modify.keys().any(|k| k.eq_ignore_ascii_case("title")), "{text}");
    assert!(!modify.is_empty(), "{text}");
    assert!(text.contains("# PATCH of title answered 500: modify uses"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_soft_deletes_fails_init_naming_it() {
    let mut config = fast();
    config.soft_delete = true;
    let r = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &r.scim, &r.token, &["--write-probe"]).await;
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("soft-deletes"), "{}", out.stderr);
    assert!(out.stderr.contains("provbench cleanup --run-id pb-"), "{}", out.stderr);
    // The user it names is the one still there (inactive), and no workload was written.
    let left: Vec<Value> = users(&r).await.into_values().collect();
    assert_eq!(left.len(), 1);
    assert!(out.stderr.contains(left[0]["id"].as_str().unwrap()), "{}", out.stderr);
    assert_eq!(left[0]["active"], false);
    assert!(!dir.path().join("w.toml").exists());
    r.stop().await;
}

/// `init --check w.toml --write-probe` of a workload whose `[users] modify` is `modify`, against
/// a reference that answers every PATCH of `nickName` with 500; the reference, to look at after.
pub(crate) async fn check_where_nickname_is_refused(modify: &str) -> (Out, Reference) {
    let mut config = fast();
    config.faults.patch_errors = vec!["nickName".into()];
    let r = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "check"
[target]
kind = "scim"
base_url = "{}"
auth = {{ kind = "bearer", token_env = "{TOKEN_ENV}" }}
[users]
modify = {modify}
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "j"
steps = ["create_user", "modify_user", "delete_user"]
"#,
            r.scim
        ),
    )
    .unwrap();
    let out = provbench(
        dir.path(),
        &r.token,
        args(&["init", "--check", "w.toml", "--write-probe"]),
    )
    .await;
    (out, r)
}

/// `init --check --write-probe` of a workload whose modify attribute the target refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_modify_attribute_the_target_refuses() {
    let (out, r) = check_where_nickname_is_refused(r#"{ nickName = "Nick {seq}" }"#).await;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("[users] modify"), "{}", out.stdout);
    assert!(out.stderr.contains("PATCH of nickName answered 500"), "{}", out.stderr);
    assert!(users(&r).await.is_empty());
    r.stop().await;
}

/// How the lying server answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lie {
    /// Honest (a recording server).
    None,
    /// A create answers with the victim's user (its id and name).
    ForeignUser,
    /// A create answers with the name sent and an id that climbs out of `/Users`.
    ClimbingId,
    /// A DELETE answers 204 and deletes nothing.
    NeverDeletes,
    /// A PATCH in RFC 7644's lowercase form, or with a JSON boolean, answers 400 (Entra's
    /// dialect only).
    EntraOnly,
}

struct St {
    lie: Lie,
    users: Mutex<BTreeMap<String, Value>>,
    next: Mutex<u64>,
    /// Every request: method and path with query.
    seen: Mutex<Vec<(String, String)>>,
}

const VICTIM: &str = "v1";

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

/// One handler for every request, so that each is recorded whatever its path.
async fn handle(State(s): State<Arc<St>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    s.seen.lock().push((
        method.to_string(),
        uri.path_and_query().map_or(path.clone(), |p| p.to_string()),
    ));
    let Some(rest) = path.strip_prefix("/scim/v2") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method.as_str(), rest) {
        ("GET", "/Groups") => list_of(vec![]),
        ("GET", "/Users") => {
            // Honours a quoted value as "contains" (eq and co alike), else lists everyone.
            let q = uri
                .query()
                .map(|q| percent_encoding::percent_decode_str(q).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            let needle = q.split('"').nth(1).map(str::to_ascii_lowercase);
            let users = s.users.lock();
            let found = users
                .values()
                .filter(|u| {
                    needle.as_ref().is_none_or(|n| {
                        u["userName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_ascii_lowercase()
                            .contains(n.as_str())
                    })
                })
                .cloned()
                .collect();
            list_of(found)
        }
        ("POST", "/Users") => {
            let id = {
                let mut n = s.next.lock();
                *n += 1;
                format!("c{n}")
            };
            let mut user = body.clone();
            user["id"] = json!(id);
            s.users.lock().insert(id.clone(), user.clone());
            let answer = match s.lie {
                Lie::ForeignUser => victim(),
                Lie::ClimbingId => {
                    let mut u = user.clone();
                    u["id"] = json!(format!("../Users/{VICTIM}"));
                    u
                }
                _ => user,
            };
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        (m, member) if member.starts_with("/Users/") => {
            let id = &member["/Users/".len()..];
            let mut users = s.users.lock();
            let Some(user) = users.get_mut(id) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            match m {
                "GET" => axum::Json(user.clone()).into_response(),
                "PATCH" if s.lie == Lie::EntraOnly && !entra(&body) => {
                    (StatusCode::BAD_REQUEST, "op must be Add, Replace or Remove").into_response()
                }
                "PATCH" => {
                    for op in body["Operations"].as_array().into_iter().flatten() {
                        if let Some(p) = op["path"].as_str() {
                            user[p] = op["value"].clone();
                        }
                    }
                    axum::Json(user.clone()).into_response()
                }
                "DELETE" if s.lie == Lie::NeverDeletes => StatusCode::NO_CONTENT.into_response(),
                "DELETE" => {
                    users.remove(id);
                    StatusCode::NO_CONTENT.into_response()
                }
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Whether every operation is in Entra's form: a capitalised `op`, no JSON boolean value.
fn entra(body: &Value) -> bool {
    body["Operations"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|op| op["op"].as_str().is_some_and(|o| o.starts_with(char::is_uppercase)) && !op["value"].is_boolean())
}

async fn lying(lie: Lie) -> (String, Arc<St>) {
    let state = Arc::new(St {
        lie,
        users: Mutex::new(BTreeMap::from([(VICTIM.to_string(), victim())])),
        next: Mutex::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

/// The writes the server received: every request that is not a GET or HEAD.
fn writes(s: &St) -> Vec<(String, String)> {
    s.seen
        .lock()
        .iter()
        .filter(|(m, _)| m != "GET" && m != "HEAD")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_write_probe_init_sends_no_write() {
    let (url, s) = lying(Lie::None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &url, "t", &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(writes(&s), vec![], "{}", out.stderr);
    assert_eq!(s.users.lock().len(), 1);
}

/// A create answered with somebody else's user, or with an id that climbs out of `/Users`:
/// that user is never written to or deleted; the user the probe made is found by its marker
/// and deleted; init fails, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_with_another_user_deletes_only_the_probes() {
    for lie in [Lie::ForeignUser, Lie::ClimbingId] {
        let (url, s) = lying(lie).await;
        let dir = tempfile::tempdir().unwrap();
        let out = init(dir.path(), &url, "t", &["--write-probe"]).await;
        assert_eq!(out.code, Some(2), "{lie:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("not the probe's user") || out.stderr.contains("cannot name"),
            "{lie:?}: {}",
            out.stderr
        );
        let users = s.users.lock().clone();
        assert_eq!(users.keys().collect::<Vec<_>>(), [VICTIM], "{lie:?}: {}", out.stderr);
        assert_eq!(users[VICTIM], victim());
        let writes = writes(&s);
        assert_eq!(
            writes,
            [
                ("POST".to_string(), "/scim/v2/Users".to_string()),
                ("DELETE".to_string(), "/scim/v2/Users/c1".to_string())
            ],
            "{lie:?}: {}",
            out.stderr
        );
        assert!(!dir.path().join("w.toml").exists());
    }
}

/// A DELETE that deletes nothing: init fails naming the user and the cleanup command, and has
/// deleted nothing but that user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_that_deletes_nothing_fails_init_with_the_command() {
    let (url, s) = lying(Lie::NeverDeletes).await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &url, "t", &["--write-probe"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("LEFT ON THE TARGET: user c1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("provbench cleanup --run-id pb-")
            && out
                .stderr
                .contains(&format!("--target-url {url} --token-env {TOKEN_ENV}")),
        "{}",
        out.stderr
    );
    let deletes: Vec<String> = writes(&s)
        .into_iter()
        .filter(|(m, _)| m == "DELETE")
        .map(|(_, p)| p)
        .collect();
    assert!(
        !deletes.is_empty() && deletes.iter().all(|p| p == "/scim/v2/Users/c1"),
        "{deletes:?}"
    );
    assert_eq!(s.users.lock()[VICTIM], victim());
}

/// A target that takes Entra's PATCH dialect only: the workload says `patch = "entra"`, and its
/// disable is read back (as the string Entra sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_takes_entras_patch_only_gets_patch_entra() {
    let (url, s) = lying(Lie::EntraOnly).await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &url, "t", &["--write-probe"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path().join("w.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(t["users"]["patch"].as_str(), Some("entra"), "{text}");
    assert!(t["users"]["modify"].get("title").is_some(), "{text}");
    assert!(
        out.stderr.contains("PATCH active=false read back as false"),
        "{}",
        out.stderr
    );
    assert_eq!(s.users.lock().keys().collect::<Vec<_>>(), [VICTIM]);
}
