//! The plain-HTTP connections against a server that closes idle keep-alive connections after
//! 100 ms (as load balancers and many servers do): every request after a pause finds its pooled
//! connection closed and goes out on a new one, never counted as an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
struct Counts {
    next: AtomicU64,
    connections: AtomicU64,
}

async fn create(State(s): State<Arc<Counts>>, Json(body): Json<Value>) -> impl IntoResponse {
    let id = s.next.fetch_add(1, Ordering::Relaxed).to_string();
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "userName": body["userName"]})),
    )
}

async fn remove(Path(_id): Path<String>) -> impl IntoResponse {
    StatusCode::NO_CONTENT
}

async fn search() -> impl IntoResponse {
    Json(json!({"totalResults": 0, "Resources": []}))
}

/// A server whose idle connections live 100 ms.
async fn start_short_keep_alive() -> (String, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let app = Router::new()
        .route("/Users", get(search).post(create))
        // Keeps no user: a read-back of a deleted one finds nothing.
        .route("/Users/{id}", delete(remove).get(|| async { StatusCode::NOT_FOUND }))
        .route("/Groups", get(search))
        .with_state(counts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            seen.connections.fetch_add(1, Ordering::Relaxed);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_millis(100))
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_the_server_closed_are_replaced_not_counted_as_errors() {
    let (url, counts) = start_short_keep_alive().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"keepalive\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\n\
         [load]\nmodel = \"closed\"\nadmins = 2\niterations = 4\nthink_time = \"250ms\"\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n"
    );
    let r = crate::support::run_workload(dir.path(), &text).await.unwrap();
    assert_eq!(
        r.summary.outcome,
        provbench::results::RunOutcome::Passed,
        "{:?}",
        r.summary.failures
    );
    let ops: u64 = r.summary.operations().map(|m| m.count).sum();
    assert_eq!(ops, 16);
    // Each pause outlived the connection: new ones were made, and no request failed for it.
    assert!(
        counts.connections.load(Ordering::Relaxed) >= 8,
        "{}",
        counts.connections.load(Ordering::Relaxed)
    );
}
