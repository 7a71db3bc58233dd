//! The reference service's asynchronous pipeline end to end, over real loopback sockets:
//! job timestamps, per-service sync delays, login, revocation on disable, flaws and webhooks.

use std::time::{Duration, SystemTime};

use provbench::reference::config::ReferenceConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Reference, start_reference};

fn timeline_config() -> ReferenceConfig {
    ReferenceConfig::from_toml(
        r#"
        profile = "fast"
        login_requires_sync = "directory"
        [queue]
        workers = 2
        service_time = "10ms"
        [[services]]
        name = "directory"
        sync_delay = "50ms"
        [[services]]
        name = "mail"
        sync_delay = "150ms"
        [[services]]
        name = "crm"
        sync_delay = "300ms"
        "#,
    )
    .unwrap()
}

fn ts(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"))).unwrap()
}

/// Polls `f` every 5 ms until it returns `Some`, for at most `limit`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(limit: Duration, mut f: impl FnMut() -> F) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn login(r: &Reference, user: &str, password: &str) -> reqwest::Response {
    r.http
        .post(format!("{}/oauth/token", r.root))
        .form(&[("grant_type", "password"), ("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn me(r: &Reference, service: &str, token: &str) -> StatusCode {
    r.http
        .get(format!("{}/linked/{service}/me", r.root))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_user_flows_through_queue_linked_services_login_and_revocation() {
    let r = start_reference(timeline_config()).await;
    let (resp, acked) = {
        let resp = r
            .post_scim(
                "/Users",
                json!({"userName": "joiner@example.test", "password": "s3cret!", "roles": [{"value": "employee"}]}),
            )
            .await;
        (resp, Instant::now())
    };
    assert_eq!(resp.status(), StatusCode::CREATED);
    let job_url = resp.headers()["x-job-location"].to_str().unwrap().to_string();
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    // Each linked service shows the user after its own delay (plus the 10 ms service time).
    for (service, delay_ms) in [("directory", 50u64), ("mail", 150), ("crm", 300)] {
        let seen = until(Duration::from_secs(3), || async {
            let s = r.get(&format!("/linked/{service}/Users/{id}")).await.status();
            (s == StatusCode::OK).then(Instant::now)
        })
        .await
        .unwrap_or_else(|| panic!("{service} never showed the user"));
        let lag = seen - acked;
        assert!(
            lag >= Duration::from_millis(delay_ms) && lag < Duration::from_millis(delay_ms + 150),
            "{service}: lag {lag:?} for a {delay_ms} ms delay"
        );
    }
    let job: Value = r
        .http
        .get(&job_url)
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    let (accepted, started, finished) = (ts(&job["accepted_at"]), ts(&job["started_at"]), ts(&job["finished_at"]));
    assert!(accepted <= started && started <= finished, "{job}");
    assert!(finished.duration_since(accepted).unwrap() >= Duration::from_millis(300));

    // The user logs in and sees the permissions of its role in each service.
    let token: Value = login(&r, "joiner@example.test", "s3cret!").await.json().await.unwrap();
    let token = token["access_token"]
        .as_str()
        .expect("login succeeds once synced")
        .to_string();
    assert_eq!(
        login(&r, "joiner@example.test", "wrong").await.status(),
        StatusCode::BAD_REQUEST
    );
    let perms: Value = r
        .http
        .get(format!("{}/linked/mail/me", r.root))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(perms["permissions"], json!(["apps:basic", "self:read"]));

    // Disable: logins fail at once, the old token stops working in each service once synced.
    let patch = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(
        r.patch_scim(&format!("/Users/{id}"), patch).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&r, "joiner@example.test", "s3cret!").await.status(),
        StatusCode::BAD_REQUEST
    );
    for service in ["directory", "mail", "crm"] {
        let revoked = until(Duration::from_secs(3), || async {
            (me(&r, service, &token).await == StatusCode::UNAUTHORIZED).then_some(())
        })
        .await;
        assert!(revoked.is_some(), "{service} still accepts the disabled user's token");
    }
    let userinfo = r
        .http
        .get(format!("{}/oauth/userinfo", r.root))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);

    // Downstream effects and the ground truth.
    let audit: Value = r.get_json(&format!("/audit?target={id}")).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create_user", "disable_user"]);
    assert_eq!(audit["entries"][0]["actor"], "token:admin");
    let outbox: Value = r.get_json(&format!("/outbox?user_id={id}")).await;
    assert_eq!(outbox["messages"].as_array().unwrap().len(), 1);
    let stats: Value = r.get_json("/stats").await;
    let sync = |svc: &str| {
        stats["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "sync_lag" && m["tags"]["service"] == svc)
            .unwrap()
            .clone()
    };
    assert_eq!(sync("crm")["count"], 2);
    let p50 = sync("crm")["p50_us"].as_u64().unwrap();
    assert!((300_000..400_000).contains(&p50), "crm p50 {p50}");
    r.stop().await;
}

#[tokio::test]
async fn flaws_keep_access_alive_where_they_should_not() {
    let mut config = timeline_config();
    config.enable_flaw("incomplete-deprovisioning=mail").unwrap();
    let r = start_reference(config).await;
    let id = r
        .post_scim("/Users", json!({"userName": "leaver@example.test", "password": "pw"}))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = until(Duration::from_secs(3), || async {
        let v: Value = login(&r, "leaver@example.test", "pw").await.json().await.ok()?;
        v["access_token"].as_str().map(str::to_string)
    })
    .await
    .unwrap();
    until(Duration::from_secs(3), || async {
        (me(&r, "crm", &token).await == StatusCode::OK).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        r.delete_scim(&format!("/Users/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    let crm_revoked = until(Duration::from_secs(3), || async {
        (me(&r, "crm", &token).await == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert!(crm_revoked.is_some());
    // mail never revokes: well past its delay, the old token still works there.
    assert_eq!(me(&r, "mail", &token).await, StatusCode::OK);
    r.stop().await;
}

#[tokio::test]
async fn webhook_events_arrive_for_each_linked_service() {
    let (hook, mut rx) = crate::support::webhook_receiver().await;

    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.webhook_url = Some(hook);
    let r = start_reference(config).await;
    let resp = r.post_scim("/Users", json!({"userName": "hooked@example.test"})).await;
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let mut services = Vec::new();
    while services.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev["user_id"], id.as_str());
        assert_eq!(ev["op"], "create_user");
        services.push(ev["service"].as_str().unwrap().to_string());
    }
    services.sort();
    assert_eq!(services, ["crm", "directory", "mail"]);
    r.stop().await;
}

/// Linked services shaped like real downstreams: found by filter only (an absent user is a 200
/// with an empty list), 404 after a delete, no versions, and credentials of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_views_take_the_shapes_of_real_downstreams() {
    let config = ReferenceConfig::from_toml(
        r#"
        profile = "fast"
        [[services]]
        name = "crm"
        sync_delay = "10ms"
        view = "filter-only,404,no-versions,token=crm-own-token"
        "#,
    )
    .unwrap();
    let r = start_reference(config).await;
    let created: Value = r
        .post_scim("/Users", json!({"userName": "shape@example.test"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let get = |path: String, token: &'static str| {
        let (http, root) = (r.http.clone(), r.root.clone());
        async move {
            http.get(format!("{root}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let by_filter = "/linked/crm/Users?filter=userName%20eq%20%22shape%40example.test%22".to_string();
    // The target's token is refused there.
    assert_eq!(
        get(by_filter.clone(), "it-admin").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let found = until(Duration::from_secs(2), || async {
        let v: Value = get(by_filter.clone(), "crm-own-token").await.json().await.unwrap();
        (v["totalResults"] == 1).then_some(v)
    })
    .await
    .expect("the user reaches crm");
    assert!(found["Resources"][0]["meta"].get("version").is_none(), "{found}");
    assert_eq!(
        get(format!("/linked/crm/Users/{id}"), "crm-own-token").await.status(),
        StatusCode::NOT_FOUND,
        "reachable by filter only"
    );
    assert_eq!(
        r.delete_scim(&format!("/Users/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    let gone = until(Duration::from_secs(2), || async {
        let v: Value = get(by_filter.clone(), "crm-own-token").await.json().await.unwrap();
        (v["totalResults"] == 0).then_some(v)
    })
    .await;
    assert!(gone.is_some(), "a deleted user is an empty list");
    r.stop().await;
}
