//! Retention as logic, on a paused clock: after more than the window of writes the service holds
//! at most what the window allows (jobs, audit and outbox entries, deleted users in linked
//! services), and what lies within it is still there for the audit and outbox checks, the queue
//! probe and the sync probes to read.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use tokio::time::Instant;

use super::super::config::ReferenceConfig;
use super::{ADMIN, app_with, call, create_user};

const KEEP: Duration = Duration::from_secs(30);

/// Lets the pipeline finish what it was given (the paused clock jumps over its delays).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(start_paused = true)]
async fn stores_hold_the_window_and_what_lies_within_it_stays_readable() {
    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.retention = KEEP;
    let (app, state) = app_with(config);
    // Two minutes of joiners and leavers, one of each a second: four windows' worth.
    let mut ids = Vec::new();
    for i in 0..120 {
        let r = create_user(&app, ADMIN, &format!("u{i}@test"), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let r = call(&app, Method::DELETE, &format!("/scim/v2/Users/{id}"), Some(ADMIN), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        ids.push(id);
        settle().await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    // The last write, within the window.
    let r = create_user(&app, ADMIN, "recent@test", &[]).await;
    let recent = r.body["id"].as_str().unwrap().to_string();
    let job = r.headers["x-job-id"].to_str().unwrap().to_string();
    settle().await;

    // One create and one delete a second: at most the window's seconds (plus the one at its
    // edge) of each, never the whole run's 240 jobs and 120 of each entry.
    let per_second = KEEP.as_secs() as usize + 1;
    let p = &state.pipeline;
    assert!(p.jobs_held() <= 2 * per_second + 1, "{} jobs held", p.jobs_held());
    let (audit, audit_keys) = p.audit.len();
    assert!(audit <= 2 * per_second + 1, "{audit} audit entries held");
    assert!(audit_keys <= per_second + 1, "{audit_keys} audit subjects held");
    let (outbox, _) = p.outbox.len();
    assert!(outbox <= per_second + 1, "{outbox} outbox messages held");
    for s in &p.services {
        // The deleted users of the window, and the recent one.
        assert!(s.len() <= per_second + 1, "{}: {} users held", s.config.name, s.len());
    }

    // What the checks and probes read is still there.
    let r = call(&app, Method::GET, &format!("/audit?target={recent}"), Some(ADMIN), None).await;
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{:?}", r.body);
    assert_eq!(entries[0]["action"], "create_user");
    let r = call(
        &app,
        Method::GET,
        &format!("/outbox?user_id={recent}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 1, "{:?}", r.body);
    let r = call(&app, Method::GET, &format!("/jobs/{job}"), Some(ADMIN), None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );
    let last = ids.last().unwrap();
    let r = call(
        &app,
        Method::GET,
        &format!("/linked/directory/Users/{last}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::GONE,
        "a deletion within the window still reads as one"
    );
    let first = &ids[0];
    let r = call(
        &app,
        Method::GET,
        &format!("/linked/directory/Users/{first}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a deletion past the window is forgotten"
    );
    let r = call(&app, Method::GET, &format!("/audit?target={first}"), Some(ADMIN), None).await;
    assert!(r.body["entries"].as_array().unwrap().is_empty());

    // A quiet window later the sweep alone empties what writes would have pruned.
    tokio::time::advance(KEEP + Duration::from_secs(1)).await;
    p.sweep(Instant::now());
    assert_eq!(p.jobs_held(), 0);
    assert_eq!(p.audit.len(), (0, 0));
    assert_eq!(p.outbox.len(), (0, 0));
    // The recent user is alive, so the services keep it; no tombstone is left.
    for s in &p.services {
        assert_eq!(s.len(), 1, "{}", s.config.name);
    }
}

#[tokio::test(start_paused = true)]
async fn the_count_cap_bounds_a_burst_within_the_window() {
    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.retention_cap = 10;
    let (app, state) = app_with(config);
    for i in 0..40 {
        create_user(&app, ADMIN, &format!("b{i}@test"), &[]).await;
    }
    settle().await;
    let p = &state.pipeline;
    assert_eq!(p.jobs_held(), 10);
    assert_eq!(p.audit.len().0, 10);
    assert_eq!(p.outbox.len().0, 10);
}
