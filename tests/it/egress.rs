//! Threat-model invariants 2 and 3 at the one place requests are sent (`http::HttpClient`): a
//! client's credentials (its token, its own headers such as an API key) go only to its origin,
//! and no redirect is followed. An "attacker" origin records everything that reaches it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use provbench::engine::{self, RunOptions};
use provbench::http::{HttpClient, HttpSettings};
use provbench::workload::Workload;
use tokio_util::sync::CancellationToken;

/// Every request that reached a server: its request line and headers.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, HeaderMap)>>);

/// A server on 127.0.0.1:0 that records each request and answers `reply` to it.
async fn serve(reply: fn(&str) -> Response) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .fallback(move |State(seen): State<Arc<Seen>>, req: Request| async move {
            let line = format!("{} {}", req.method(), req.uri());
            seen.0.lock().push((line.clone(), req.headers().clone()));
            reply(&line)
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn ok(_: &str) -> Response {
    StatusCode::OK.into_response()
}

#[tokio::test]
async fn a_clients_credentials_go_only_to_its_origin() {
    let (target, at_target) = serve(ok).await;
    let (attacker, at_attacker) = serve(ok).await;
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static("key-0123456789"));
    let client = HttpClient::new(&format!("{target}/scim/v2"), HttpSettings::defaults())
        .unwrap()
        .with_headers(headers);
    client.set_bearer("tok-0123456789").unwrap();
    // Relative, absolute on its own origin, absolute elsewhere (a job's Location, say).
    for path in [
        "/Users/1".to_string(),
        format!("{target}/jobs/1"),
        format!("{attacker}/jobs/1"),
    ] {
        client.call(reqwest::Method::GET, &path, None).await.unwrap();
    }
    let own = at_target.0.lock();
    assert_eq!(own.len(), 2, "{:?}", own.iter().map(|(l, _)| l).collect::<Vec<_>>());
    for (line, h) in own.iter() {
        assert_eq!(h["authorization"], "Bearer tok-0123456789", "{line}");
        assert_eq!(h["x-api-key"], "key-0123456789", "{line}");
    }
    let foreign = at_attacker.0.lock();
    assert_eq!(foreign.len(), 1);
    let (line, h) = &foreign[0];
    assert!(
        h.get("authorization").is_none() && h.get("x-api-key").is_none(),
        "{line}: {h:?}"
    );
}

#[tokio::test]
async fn a_redirect_is_an_answer_never_a_request_elsewhere() {
    let (attacker, at_attacker) = serve(ok).await;
    // A token endpoint (and everything else on its origin) answering 307 to the attacker.
    static ATTACKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ATTACKER.set(attacker.clone()).unwrap();
    let (idp, at_idp) = serve(|_| {
        let to = format!("{}/stolen", ATTACKER.get().unwrap());
        (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "cs-0123456789").unwrap();
    let text = format!(
        "name = \"egress\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
         [[journey]]\nname = \"one\"\nsteps = [\"create_user\"]\n\
         [target]\nkind = \"scim\"\nbase_url = \"{idp}/scim/v2\"\n\
         auth = {{ kind = \"oauth2-client-credentials\", token_url = \"{idp}/oauth/token\", client_id = \"c\", client_secret_file = \"secret\" }}\n"
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, &text).unwrap();
    let w = Workload::load(&path, &Default::default()).unwrap();
    let run = engine::run(
        RunOptions {
            out: Some(dir.path().join("results")),
            cleanup_timeout: Duration::from_secs(2),
            ..RunOptions::new(w)
        },
        CancellationToken::new(),
    );
    let result = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends");
    assert!(result.is_err(), "a token endpoint that only redirects cannot sign in");
    assert!(!at_idp.0.lock().is_empty(), "the token endpoint was asked");
    assert!(
        at_attacker.0.lock().is_empty(),
        "followed to the attacker: {:?}",
        at_attacker.0.lock().iter().map(|(l, _)| l).collect::<Vec<_>>()
    );
}
