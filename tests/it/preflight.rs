//! The pre-flight before any load: a probe service that refuses its reads stops the run before
//! anything is written (exit 2, naming the service, URL and answer, with summary.json and
//! junit.xml); a target whose sweep search fails is cleaned up by reading the ledger back, and
//! ends with its verdict, not `error`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use provbench::reference::config::ReferenceConfig;
use provbench::results::{RunOutcome, Summary};

use crate::support::start_reference;

/// The target's workload part for `reference` (its token in `dir/token`).
fn target(dir: &std::path::Path, scim: &str, token: &str) -> String {
    std::fs::write(dir.join("token"), token).unwrap();
    format!(
        "[target]\nkind = \"scim\"\nbase_url = \"{scim}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_service_that_refuses_its_reads_stops_the_run_before_the_load() {
    let config = ReferenceConfig::from_toml(
        r#"
        profile = "fast"
        [[services]]
        name = "crm"
        sync_delay = "uniform:10ms..20ms"
        view = "token=crm-own-token-1"
        "#,
    )
    .unwrap();
    let reference = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crm-token"), "not-the-token").unwrap();
    let text = format!(
        "name = \"refused\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n\
         [probes]\nsample = 1.0\ntimeout = \"1s\"\n[[probes.sync]]\nservice = \"crm\"\nurl = \"{root}/linked/crm/Users/{{id}}\"\n\
         auth = {{ kind = \"bearer\", token_file = \"crm-token\" }}\n{target}",
        root = reference.root,
        target = target(dir.path(), &reference.scim, &reference.token),
    );
    let e = crate::support::run_workload(dir.path(), &text)
        .await
        .err()
        .expect("a probe service that refuses its reads stops the run");
    let e = format!("{e:#}");
    assert!(
        e.contains("pre-flight") && e.contains("`crm`") && e.contains("/linked/crm/Users/") && e.contains("HTTP 401"),
        "the service, the URL and the answer: {e}"
    );
    let stats = reference.get_json("/stats").await;
    assert_eq!(stats["jobs"]["accepted"], 0, "nothing was written: {stats}");
    let results = dir.path().join("results");
    let s = Summary::read(&results).unwrap();
    assert_eq!(s.outcome, RunOutcome::Error);
    assert!(
        s.notes.iter().any(|n| n.contains("`crm`") && n.contains("HTTP 401")),
        "{:?}",
        s.notes
    );
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure") && junit.contains("HTTP 401"), "{junit}");
    reference.stop().await;
}

/// A proxy to `upstream` that answers 500 to every listing with a `count` (the sweep's search)
/// and counts them.
async fn count_breaking_proxy(upstream: String) -> (String, Arc<AtomicU64>) {
    let broken = Arc::new(AtomicU64::new(0));
    let state = (upstream, broken.clone(), reqwest::Client::new());
    let app = Router::new()
        .fallback(
            |State((upstream, broken, http)): State<(String, Arc<AtomicU64>, reqwest::Client)>, req: Request| async move {
                let uri = req.uri().to_string();
                if req.method() == axum::http::Method::GET && uri.contains("count=") {
                    broken.fetch_add(1, Ordering::Relaxed);
                    return (StatusCode::INTERNAL_SERVER_ERROR, "count is not supported").into_response();
                }
                let mut out = http.request(req.method().clone(), format!("{upstream}{uri}"));
                for (k, v) in req.headers().iter().filter(|(k, _)| *k != "host") {
                    out = out.header(k, v);
                }
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let Ok(answer) = out.body(body).send().await else {
                    return StatusCode::BAD_GATEWAY.into_response();
                };
                let mut reply = Response::builder().status(answer.status().as_u16());
                for (k, v) in answer.headers() {
                    reply = reply.header(k.as_str(), v.as_bytes());
                }
                let bytes = answer.bytes().await.unwrap_or_default();
                reply.body(Body::from(bytes)).unwrap()
            },
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, broken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_whose_search_fails_ends_with_its_verdict_and_nothing_left() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let (proxy, broken) = count_breaking_proxy(reference.root.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"no-count\"\nthresholds = [\"rate(errors) < 1%\"]\n[load]\nmodel = \"closed\"\nadmins = 2\niterations = 3\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"get_user\"]\n{}",
        target(dir.path(), &format!("{proxy}/scim/v2"), &reference.token)
    );
    let r = crate::support::run_workload(dir.path(), &text).await.unwrap();
    let s = &r.summary;
    assert_eq!(
        s.outcome,
        RunOutcome::Passed,
        "its verdict: {:?} {:?}",
        s.notes,
        s.cleanup
    );
    let c = s.cleanup.as_ref().unwrap();
    assert_eq!((c.failed, c.unverified), (0, 0), "{c:?}");
    assert!(c.unsearchable.is_empty(), "{c:?}");
    assert_eq!(c.deleted, 6, "the ledger's users deleted: {c:?}");
    assert_eq!(c.verified, 6, "and read back as gone: {c:?}");
    let said = s.notes.iter().filter(|n| n.contains("cannot be searched")).count();
    assert_eq!(said, 1, "said once: {:?}", s.notes);
    assert_eq!(
        broken.load(Ordering::Relaxed),
        1,
        "the search was asked once, not retried"
    );
    let users = reference.get_json("/scim/v2/Users").await;
    assert_eq!(users["totalResults"], 0, "{users}");
    reference.stop().await;
}
