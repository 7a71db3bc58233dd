//! Threat-model invariant 1 for ids the target answers: whatever id a create or a list answers
//! (`../Groups/x`, `?filter=…`, `%2e%2e`, `a%2Fb`, control characters…), every request the run
//! sends stays on the one user it names, under `/Users/`. A lying SCIM server records every
//! request line as it arrived; the ids are generated (proptest), the run is the real engine.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use provbench::engine::{self, RunOptions};
use provbench::results::RunOutcome;
use provbench::workload::Workload;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Liar {
    /// The id every create and every list answers.
    id: Mutex<String>,
    /// The userName of the one user created, once it is.
    name: Mutex<Option<String>>,
    /// Every request: method and the request target exactly as it arrived.
    seen: Mutex<Vec<(String, String)>>,
    /// The request targets that arrived with an `Authorization` header.
    with_auth: Mutex<Vec<String>>,
}

fn user(id: &str, name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": name, "active": true})
}

async fn answer(State(liar): State<Arc<Liar>>, req: Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".into(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    liar.seen.lock().push((method.clone(), target.clone()));
    if req.headers().contains_key("authorization") {
        liar.with_auth.lock().push(target.clone());
    }
    let id = liar.id.lock().clone();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    match (method.as_str(), path) {
        ("POST", "/scim/v2/Users") => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
            let name = sent["userName"].as_str().unwrap_or_default().to_string();
            *liar.name.lock() = Some(name.clone());
            (StatusCode::CREATED, axum::Json(user(&id, &name))).into_response()
        }
        // The sweep's search and any list: the one user, under its lying id.
        ("GET", "/scim/v2/Users") => {
            let name = liar.name.lock().clone();
            let resources: Vec<Value> = name.iter().map(|n| user(&id, n)).collect();
            axum::Json(json!({"totalResults": resources.len(), "Resources": resources})).into_response()
        }
        ("GET", "/scim/v2/Groups") => axum::Json(json!({"totalResults": 0, "Resources": []})).into_response(),
        ("GET", p) if p.starts_with("/scim/v2/Schemas") => StatusCode::NOT_FOUND.into_response(),
        (_, p) if p.starts_with("/scim/v2/Users/") => {
            let name = liar.name.lock().clone().unwrap_or_default();
            match method.as_str() {
                "DELETE" => StatusCode::NO_CONTENT.into_response(),
                _ => axum::Json(user(&id, &name)).into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

const WORKLOAD: &str = r#"
name = "ids"
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "one"
steps = ["create_user", "get_user", "modify_user", "delete_user"]
"#;

/// One run against the liar answering `id`; what it saw and the run's outcome.
async fn run_with(liar: &Arc<Liar>, url: &str, id: &str) -> (Vec<(String, String)>, RunOutcome, u64) {
    *liar.id.lock() = id.to_string();
    *liar.name.lock() = None;
    liar.seen.lock().clear();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let text = format!(
        "{WORKLOAD}\n[target]\nkind = \"scim\"\nbase_url = \"{url}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n"
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, &text).unwrap();
    let w = Workload::load(&path, &Default::default()).unwrap();
    let result = engine::run(
        RunOptions {
            out: Some(dir.path().join("results")),
            cleanup_timeout: Duration::from_secs(5),
            ..RunOptions::new(w)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let left = result.summary.cleanup.as_ref().map_or(0, |c| c.failed);
    (liar.seen.lock().clone(), result.summary.outcome, left)
}

/// Ids made of the pieces attacks are made of, and ordinary ones.
fn ids() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("/".to_string()),
        Just("../Groups/victim-g".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2F".to_string()),
        Just("%252F".to_string()),
        Just("?filter=userName%20pr".to_string()),
        Just("#x".to_string()),
        Just("\\".to_string()),
        Just("http://attacker.test/".to_string()),
        "[a-f0-9-]{1,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 1..4).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn every_request_names_only_the_user_the_id_names(id in ids()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let liar = Arc::new(Liar::default());
            let app = Router::new().fallback(answer).with_state(liar.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            let (seen, outcome, left) = run_with(&liar, &url, &id).await;
            let safe = provbench::http::url::segment(&id).is_ok();
            for (method, target) in &seen {
                let path = target.split('?').next().unwrap_or_default();
                match path.strip_prefix("/scim/v2/Users/") {
                    // A member request: exactly one segment, decoding to the id answered.
                    Some(rest) => {
                        prop_assert!(safe, "{method} {target} sent for the unsafe id {id:?}");
                        prop_assert!(!rest.contains('/') && !target.contains('#'), "{method} {target}");
                        prop_assert_eq!(percent_decode_str(rest).decode_utf8_lossy(), id.as_str());
                        prop_assert!(!target.contains('?'), "{method} {target}");
                    }
                    None => prop_assert!(
                        path == "/scim/v2/Users" || path == "/scim/v2/Groups" || path.starts_with("/scim/v2/Schemas"),
                        "{method} {target} for id {id:?}"
                    ),
                }
            }
            if safe {
                prop_assert!(seen.iter().any(|(m, _)| m == "DELETE"), "the user was never deleted: {seen:?}");
            } else {
                // The user is the run's but no request may name it: listed as left, never passed.
                prop_assert!(left >= 1, "{seen:?}");
                prop_assert_ne!(outcome, RunOutcome::Passed);
                prop_assert!(!seen.iter().any(|(m, _)| m == "DELETE" || m == "PATCH" || m == "PUT"), "{seen:?}");
            }
            Ok(())
        })?;
    }
}

/// The audit and welcome checks fill the id the target answered into the URLs the workload
/// names for them as one encoded value (`a&target=b` adds no query parameter), and with the
/// target's credentials, though those URLs lie outside its SCIM base; an id that cannot be one
/// segment reaches no URL at all.
#[tokio::test]
async fn the_checks_fill_an_answered_id_as_one_value_or_send_nothing() {
    let liar = Arc::new(Liar::default());
    let app = Router::new().fallback(answer).with_state(liar.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for id in [
        "../../admin/realms/x",
        "a&user_id=b",
        "%2e%2e",
        "u-1 x",
        "\u{FF0E}\u{FF0E}",
    ] {
        *liar.id.lock() = id.to_string();
        *liar.name.lock() = None;
        liar.seen.lock().clear();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "t").unwrap();
        let text = format!(
            "{WORKLOAD}\n[target]\nkind = \"scim\"\nbase_url = \"{url}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
             [checks]\nkinds = [\"audit\", \"welcome\"]\nsample = 1.0\ntimeout = \"300ms\"\n\
             audit_url = \"/audit/{{id}}/entries\"\noutbox_url = \"/outbox?user_id={{id}}\"\n"
        );
        let path = dir.path().join("w.toml");
        std::fs::write(&path, &text).unwrap();
        let w = Workload::load(&path, &Default::default()).unwrap();
        engine::run(
            RunOptions {
                out: Some(dir.path().join("results")),
                cleanup_timeout: Duration::from_secs(5),
                ..RunOptions::new(w)
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let seen = liar.seen.lock().clone();
        let checks: Vec<_> = seen
            .iter()
            .filter(|(_, t)| !t.starts_with("/scim/v2/"))
            .map(|(_, t)| t.clone())
            .collect();
        let safe = provbench::http::url::segment(id).is_ok();
        let encoded = provbench::http::url::segment(id)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if safe {
            assert!(!checks.is_empty(), "{id:?}: no check read: {seen:?}");
            for target in &checks {
                assert!(
                    *target == format!("/audit/{encoded}/entries") || *target == format!("/outbox?user_id={encoded}"),
                    "{id:?}: {target}"
                );
            }
            let with_auth = liar.with_auth.lock();
            for target in &checks {
                assert!(
                    with_auth.contains(target),
                    "{target}: the workload's URL without the target's token"
                );
            }
        } else {
            assert!(checks.is_empty(), "{id:?} reached the target as {checks:?}");
        }
    }
}
