//! `provbench init` against SCIM shapes of the reference service (and a foreign front of it that
//! publishes no discovery endpoints, has no groups and closes its connections): discovery sends
//! only GETs, the written workload passes `validate --online` and runs with 0 errors and 0 left,
//! and `init --check` names a workload's setting the target contradicts.

use std::sync::Arc;

use assert_cmd::Command;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use provbench::reference::config::ReferenceConfig;
use serde_json::{Value, json};

use crate::support::{Reference, start_reference};

/// A front of the reference's SCIM base that records every request (method and path) and,
/// when `foreign`, answers 404 to the discovery endpoints and `/Groups` and closes every
/// connection, as some real servers do.
struct Front {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Front {
    fn methods_since(&self, from: usize) -> Vec<(String, String)> {
        self.seen.lock()[from..].to_vec()
    }

    fn len(&self) -> usize {
        self.seen.lock().len()
    }
}

async fn front(reference: &Reference, foreign: bool) -> Front {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (log, upstream, client) = (seen.clone(), reference.scim.clone(), reqwest::Client::new());
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (log, upstream, client) = (log.clone(), upstream.clone(), client.clone());
        async move {
            let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            log.lock().push((method.to_string(), path.clone()));
            let hidden = ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Groups"];
            if foreign && hidden.iter().any(|h| path.starts_with(h)) {
                return (StatusCode::NOT_FOUND, [("connection", "close")], "no such endpoint").into_response();
            }
            if path == "/" {
                return (StatusCode::OK, [("content-type", "application/json")], "{\"ok\":true}").into_response();
            }
            let mut req = client.request(method, format!("{upstream}{path}")).body(body);
            for name in ["authorization", "content-type", "if-match"] {
                if let Some(v) = headers.get(name) {
                    req = req.header(name, v);
                }
            }
            let resp = req.send().await.unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for name in ["content-type", "etag", "location"] {
                if let Some(v) = resp.headers().get(name) {
                    out = out.header(name, v.as_bytes());
                }
            }
            if foreign {
                out = out.header("connection", "close");
            }
            out.body(axum::body::Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Front { url, seen }
}

async fn provbench(dir: &std::path::Path, token: &str, args: &[&str]) -> (Option<i32>, String) {
    let (dir, token, args) = (
        dir.to_path_buf(),
        token.to_string(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir)
            .env("SCIM_TOKEN", token)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    })
    .await
    .unwrap()
}

/// What `init` wrote and said.
struct Written {
    dir: tempfile::TempDir,
    text: String,
    heard: String,
}

/// `init URL` through the front, asserting it sent only GETs; then `validate --online` and a
/// 3-second run of the written workload, asserting 0 errors and nothing left.
async fn init_validate_run(reference: &Reference, front: &Front, extra: &[&str]) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let from = front.len();
    let mut args = vec![
        "init",
        front.url.as_str(),
        "--token-env",
        "SCIM_TOKEN",
        "--out",
        "w.toml",
    ];
    args.extend_from_slice(extra);
    let (code, heard) = provbench(dir.path(), &reference.token, &args).await;
    assert_eq!(code, Some(0), "{heard}");
    let sent = front.methods_since(from);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|(m, _)| m == "GET"), "discovery wrote: {sent:?}");
    let text = std::fs::read_to_string(dir.path().join("w.toml")).unwrap();
    let (code, out) = provbench(dir.path(), &reference.token, &["validate", "--online", "w.toml"]).await;
    assert_eq!(code, Some(0), "{out}\n{text}");
    let (code, out) = provbench(
        dir.path(),
        &reference.token,
        &["run", "w.toml", "--duration", "3s", "--no-progress", "--out", "results"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{text}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    let errors: u64 = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metric"] == "api_latency")
        .map(|m| m["errors"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(errors, 0, "{out}\n{text}");
    assert_eq!(s["cleanup"]["failed"], 0, "{}", s["cleanup"]);
    assert_eq!(s["cleanup"]["unverified"], 0, "{}", s["cleanup"]);
    Written { dir, text, heard }
}

/// The users left on the reference whose userName carries a provbench run id.
async fn marked_left(reference: &Reference) -> usize {
    // No `count`: the reference may answer 500 to it (`count_error`).
    let list = reference.get_json("/scim/v2/Users").await;
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["userName"].as_str().is_some_and(|n| n.starts_with("pb-")))
        .count()
}

fn steps(text: &str) -> Vec<String> {
    let t: toml::Table = toml::from_str(text).unwrap();
    t["journey"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| {
            j["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
        })
        .collect()
}

/// `init --check` on `text` written beside the workload: its exit code and output.
async fn check(reference: &Reference, w: &Written, text: &str) -> (Option<i32>, String) {
    std::fs::write(w.dir.path().join("other.toml"), text).unwrap();
    provbench(w.dir.path(), &reference.token, &["init", "--check", "other.toml"]).await
}

fn config(extra: &str) -> ReferenceConfig {
    ReferenceConfig::from_toml(&format!("profile = \"fast\"\n{extra}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_reference_is_read_with_gets_and_its_workload_runs() {
    let reference = start_reference(config("")).await;
    let front = front(&reference, false).await;
    let w = init_validate_run(&reference, &front, &[]).await;
    assert!(
        w.heard.contains("GET /ServiceProviderConfig: patch yes, filter yes"),
        "{}",
        w.heard
    );
    assert!(w.text.contains("modify.title = \"Title {seq}\""), "{}", w.text);
    assert!(
        w.text.contains("template.userName = \"{run_id}-{seq}@example.test\""),
        "{}",
        w.text
    );
    let steps = steps(&w.text);
    assert!(steps.iter().any(|s| s == "find_user") && steps.iter().any(|s| s == "create_group"));
    let (code, out) = provbench(w.dir.path(), &reference.token, &["init", "--check", "w.toml"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(marked_left(&reference).await, 0);
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_attributes_are_written_and_a_template_without_one_is_named() {
    let reference = start_reference(config("required_attributes = [\"emails\", \"nickName\"]\n")).await;
    let front = front(&reference, false).await;
    let w = init_validate_run(&reference, &front, &[]).await;
    assert!(w.text.contains("template.nickName = \"{first}\""), "{}", w.text);
    assert!(w.text.contains("# emails is required in /Schemas"), "{}", w.text);
    let (code, out) = check(&reference, &w, &w.text).await;
    assert_eq!(code, Some(0), "{out}");
    let lacking: String = w
        .text
        .lines()
        .filter(|l| !l.starts_with("template.nickName"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, out) = check(&reference, &w, &lacking).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("[users] template.nickName"), "{out}");
    assert_eq!(marked_left(&reference).await, 0);
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_that_answers_500_keeps_list_users_out() {
    let reference = start_reference(config("count_error = true\n")).await;
    let front = front(&reference, false).await;
    let w = init_validate_run(&reference, &front, &[]).await;
    assert!(w.heard.contains("GET /Users?count=1 answered HTTP 500"), "{}", w.heard);
    let (code, out) = check(&reference, &w, &w.text).await;
    assert_eq!(code, Some(0), "{out}");
    let listing = w.text.replace(
        "steps = [\"create_user\", \"get_user\"",
        "steps = [\"create_user\", \"list_users\", \"get_user\"",
    );
    assert_ne!(listing, w.text);
    let (code, out) = check(&reference, &w, &listing).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("step `list_users`") && out.contains("answered HTTP 500"),
        "{out}"
    );
    assert_eq!(marked_left(&reference).await, 0);
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_filter_keeps_find_user_out_and_the_foreign_user_stays() {
    let reference = start_reference(config("filter_ignored = true\n")).await;
    let created = reference
        .post_scim("/Users", json!({"userName": "someone.else@example.test"}))
        .await;
    assert_eq!(created.status(), 201);
    let front = front(&reference, false).await;
    let w = init_validate_run(&reference, &front, &[]).await;
    assert!(w.heard.contains("the filter is ignored"), "{}", w.heard);
    assert!(!steps(&w.text).iter().any(|s| s == "find_user"), "{}", w.text);
    let finding = w.text.replace("\"get_user\", ", "\"get_user\", \"find_user\", ");
    let (code, out) = check(&reference, &w, &finding).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("step `find_user`"), "{out}");
    let list = reference.get_json("/scim/v2/Users").await;
    assert_eq!(list["totalResults"], 1, "only the foreign user is left: {list}");
    assert_eq!(list["Resources"][0]["userName"], "someone.else@example.test");
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_discovery_or_groups_that_closes_connections() {
    let reference = start_reference(config("")).await;
    let front = front(&reference, true).await;
    let w = init_validate_run(&reference, &front, &[]).await;
    assert!(w.heard.contains("publishes no discovery endpoints"), "{}", w.heard);
    let steps = steps(&w.text);
    assert!(!steps.iter().any(|s| s.contains("group")), "{}", w.text);
    assert!(steps.iter().any(|s| s == "find_user"), "{}", w.text);
    assert!(w.text.contains("keep_alive = false"), "{}", w.text);
    let (code, out) = check(&reference, &w, &w.text.replace("keep_alive = false", "")).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("[target] keep_alive"), "{out}");
    assert_eq!(marked_left(&reference).await, 0);
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_api_gets_a_health_operation_and_no_built_in_step() {
    let reference = start_reference(config("")).await;
    let front = front(&reference, false).await;
    let w = init_validate_run(&reference, &front, &["--kind", "http"]).await;
    let t: toml::Table = toml::from_str(&w.text).unwrap();
    assert_eq!(
        t["operations"]["health"]["expect"][0].as_integer(),
        Some(200),
        "{}",
        w.text
    );
    assert_eq!(steps(&w.text), vec!["health".to_string()]);
    assert!(w.text.contains("# [operations.create]"), "{}", w.text);
    assert!(
        w.heard.contains("answered HTTP 200 (content type application/json)"),
        "{}",
        w.heard
    );
    reference.stop().await;
}
