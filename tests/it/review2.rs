//! Second hostile review of the session's changes.
//!
//! Invariant 5 with the sweep's search failed: cleanup reads the ledger back, and that is
//! complete only when every create ended with its resource recorded. A target that makes the
//! group it was sent (marked) and answers with an id no request may name and a name without the
//! marker leaves a marked group the ledger cannot hold: the run must not call that "0 left".

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use provbench::reference::config::ReferenceConfig;

use crate::support::start_reference;

/// A proxy to `upstream` that answers 500 to the sweep's search (a listing with `count`) and
/// answers every group create, made upstream, with the id `../x` and an unmarked name.
async fn lying_group_proxy(upstream: String) -> String {
    let state = (upstream, reqwest::Client::new());
    let app = Router::new()
        .fallback(
            |State((upstream, http)): State<(String, reqwest::Client)>, req: Request| async move {
                let uri = req.uri().to_string();
                if req.method() == Method::GET && uri.contains("count=") {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "count is not supported").into_response();
                }
                let group_create = req.method() == Method::POST && uri.ends_with("/Groups");
                let mut out = http.request(req.method().clone(), format!("{upstream}{uri}"));
                for (k, v) in req.headers().iter().filter(|(k, _)| *k != "host") {
                    out = out.header(k, v);
                }
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let Ok(answer) = out.body(body).send().await else {
                    return StatusCode::BAD_GATEWAY.into_response();
                };
                let status = answer.status().as_u16();
                let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
                if group_create && status == 201 {
                    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    v["id"] = "../x".into();
                    v["displayName"] = "somebody-elses-group".into();
                    bytes = serde_json::to_vec(&v).unwrap();
                }
                Response::builder()
                    .status(status)
                    .header("content-type", "application/scim+json")
                    .body(Body::from(bytes))
                    .unwrap()
            },
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_create_answered_unnameable_and_unmarked_is_never_0_left_without_the_search() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let proxy = lying_group_proxy(reference.root.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        "name = \"lying-groups\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_group\"]\n\
         [target]\nkind = \"scim\"\nbase_url = \"{proxy}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n"
    );
    let r = crate::support::run_workload(dir.path(), &text).await.unwrap();
    let groups = reference.get_json("/scim/v2/Groups").await;
    let left = groups["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|g| g["displayName"].as_str().unwrap_or_default().contains("pb-"))
                .count()
        })
        .unwrap_or_default();
    assert!(left > 0, "the lying target kept the run's groups: {groups}");
    let c = r.summary.cleanup.as_ref().unwrap();
    assert!(
        c.incomplete(),
        "{left} marked group(s) left on the target, and cleanup says it is complete: {}",
        c.counts()
    );
    assert_ne!(r.summary.outcome, provbench::results::RunOutcome::Passed);
    reference.stop().await;
}

/// Invariant 10 for the probes: a declared probe that judged nothing is never a pass, whatever
/// kept its writes from it. With a sample no write falls in, it judged nothing (no observation,
/// none overtaken): the run must not pass beside it as if the downstream had been measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_probe_that_was_handed_no_write_is_not_judged() {
    let _quiet = crate::support::measuring().await;
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let workload = "name = \"unsampled\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n\
         [probes]\nsample = 0.000001\nmax_share = 1.0\ntimeout = \"5s\"\n\
         sync = [{ service = \"directory\", url = \"/linked/directory/Users/{id}\" }]\n";
    let (result, _dir) = crate::engine::run_against(Some(&reference), workload).await;
    let s = &result.summary;
    let p = s.probes.as_ref().unwrap();
    assert!(
        p.unjudged.iter().any(|u| u.contains("service=directory")),
        "a probe that judged nothing: {p:?}"
    );
    assert_ne!(s.outcome, provbench::results::RunOutcome::Passed, "{:?}", s.notes);
    reference.stop().await;
}

/// Invariant 5 with the sweep's search failed: a journey that creates a second user (or group: the same one place)
/// holds the first no more, and what it held must still reach the ledger: otherwise cleanup
/// reads back only the second and says "0 left" beside the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journeys_first_user_reaches_the_ledger_when_it_creates_another() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    // Its group answers are rewritten: only users go through it here.
    let proxy = lying_group_proxy(reference.root.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        "name = \"two-users\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"create_user\"]\n\
         [target]\nkind = \"scim\"\nbase_url = \"{proxy}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n"
    );
    let r = crate::support::run_workload(dir.path(), &text).await.unwrap();
    let users = reference.get_json("/scim/v2/Users").await;
    let left = users["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|u| u["userName"].as_str().unwrap_or_default().contains("pb-"))
                .count()
        })
        .unwrap_or_default();
    let c = r.summary.cleanup.as_ref().unwrap();
    assert!(
        left == 0 || c.incomplete(),
        "{left} marked user(s) left on the target, and cleanup says it is complete: {}",
        c.counts()
    );
    assert_eq!(c.deleted, 4, "every user the journeys created: {}", c.counts());
    reference.stop().await;
}
