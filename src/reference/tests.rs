//! Handler tests through `router().oneshot` (no sockets): status codes, SCIM error bodies,
//! ETags, authorization rules, the token endpoint and the queue bound.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::config::{ReferenceConfig, Scopes, StaticToken};
use super::distribution::Distribution;
use super::{AppState, router};

const ADMIN: &str = "admin-token";
const READER: &str = "reader-token";

fn app_with(mut config: ReferenceConfig) -> (Router, Arc<AppState>) {
    for (name, token, scopes) in [("admin", ADMIN, Scopes::FULL), ("reader", READER, Scopes::READ_ONLY)] {
        config.static_tokens.push(StaticToken {
            name: name.into(),
            token: token.into(),
            scopes,
        });
    }
    let state = AppState::new(config, "http://localhost", CancellationToken::new());
    (router(state.clone()), state)
}

fn app() -> (Router, Arc<AppState>) {
    app_with(ReferenceConfig::profile("fast").unwrap())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(app: &Router, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    call_with(app, method, uri, token, body, &[]).await
}

async fn call_with(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req
        .header(header::CONTENT_TYPE, "application/scim+json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

async fn form(app: &Router, body: &str) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers: HeaderMap::new(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn create_user(app: &Router, token: &str, name: &str, roles: &[&str]) -> Reply {
    let roles: Vec<Value> = roles.iter().map(|r| json!({"value": r})).collect();
    call(
        app,
        Method::POST,
        "/scim/v2/Users",
        Some(token),
        Some(json!({"userName": name, "password": "pw", "roles": roles})),
    )
    .await
}

async fn client_token(app: &Router, id: &str) -> String {
    let r = form(
        app,
        &format!("grant_type=client_credentials&client_id={id}&client_secret={id}-secret"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn authentication_and_scopes() {
    let (app, _) = app();
    let r = call(&app, Method::GET, "/scim/v2/Users", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    let r = call(&app, Method::GET, "/scim/v2/Users", Some("nope"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, Method::GET, "/scim/v2/Users", Some(READER), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = create_user(&app, READER, "x@test", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let readonly = client_token(&app, "readonly").await;
    assert_eq!(
        create_user(&app, &readonly, "x@test", &[]).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn create_get_uniqueness_and_job_headers() {
    let (app, _) = app();
    let r = create_user(&app, ADMIN, "Alice@Test", &["employee"]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(r.body.get("password").is_none(), "password is write-only");
    assert_eq!(r.headers[header::ETAG], "W/\"1\"");
    assert_eq!(
        r.headers[header::LOCATION],
        format!("http://localhost/scim/v2/Users/{id}").as_str()
    );
    assert!(r.headers.contains_key("x-job-id"));
    let r = create_user(&app, ADMIN, "alice@test", &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["scimType"], "uniqueness");
    let r = call(&app, Method::GET, &format!("/scim/v2/Users/{id}"), Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["userName"], "Alice@Test");
    let r = call(&app, Method::GET, "/scim/v2/Users/missing", Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["status"], "404");
    let r = call(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(ADMIN),
        Some(json!({"name": {}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidValue"))
    );
}

#[tokio::test]
async fn filters_and_paging() {
    let (app, _) = app();
    for i in 0..5 {
        create_user(&app, ADMIN, &format!("user{i}@test"), &[]).await;
    }
    let r = call(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=userName%20eq%20%22USER3@test%22",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "user3@test");
    let r = call(
        &app,
        Method::GET,
        "/scim/v2/Users?startIndex=2&count=2",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["Resources"][0]["userName"], "user1@test");
    let r = call(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=userName%20zz%20%22a%22",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidFilter"))
    );
    let r = call(
        &app,
        Method::GET,
        "/scim/v2/Users?attributes=userName",
        Some(ADMIN),
        None,
    )
    .await;
    let first = &r.body["Resources"][0];
    assert!(first.get("userName").is_some() && first.get("meta").is_none() && first.get("id").is_some());
}

#[tokio::test]
async fn etags_put_patch_delete() {
    let (app, state) = app();
    let id = create_user(&app, ADMIN, "bob@test", &["employee"]).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/scim/v2/Users/{id}");
    let put = json!({"userName": "bob@test", "displayName": "Bob"});
    let stale = [("if-match", "W/\"7\"")];
    let r = call_with(&app, Method::PUT, &uri, Some(ADMIN), Some(put.clone()), &stale).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = call_with(
        &app,
        Method::PUT,
        &uri,
        Some(ADMIN),
        Some(put),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::ETAG], "W/\"2\"");
    let r = call_with(
        &app,
        Method::GET,
        &uri,
        Some(ADMIN),
        None,
        &[("if-none-match", "W/\"2\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let r = call(&app, Method::PATCH, &uri, Some(ADMIN), Some(patch)).await;
    assert_eq!(r.body["active"], false);
    let job: u64 = r.headers["x-job-id"].to_str().unwrap().parse().unwrap();
    assert_eq!(state.pipeline.job_json(job).unwrap()["op"], "disable_user");
    let r = call(&app, Method::DELETE, &uri, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, Method::GET, &uri, Some(ADMIN), None).await.status,
        StatusCode::NOT_FOUND
    );
    // The name is free again.
    assert_eq!(
        create_user(&app, ADMIN, "bob@test", &[]).await.status,
        StatusCode::CREATED
    );
}

/// A linked view with opaque ETags: no `meta.version`, a tag that changes with each applied
/// change, and 304 to a GET whose `If-None-Match` still matches.
#[tokio::test]
async fn opaque_etags_on_a_linked_view() {
    let config = ReferenceConfig::from_toml(
        "profile = \"fast\"\n[[services]]\nname = \"crm\"\nsync_delay = \"1ms\"\nview = \"opaque-etags\"\n",
    )
    .unwrap();
    let (app, _) = app_with(config);
    let id = create_user(&app, ADMIN, "eve@test", &[]).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/linked/crm/Users/{id}");
    let read = |tag: Option<String>| {
        let (app, uri) = (app.clone(), uri.clone());
        async move {
            for _ in 0..200 {
                let extra: Vec<(&str, &str)> = tag.iter().map(|t| ("if-none-match", t.as_str())).collect();
                let r = call_with(&app, Method::GET, &uri, Some(ADMIN), None, &extra).await;
                if r.status != StatusCode::NOT_FOUND {
                    return r;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            panic!("never synced");
        }
    };
    let first = read(None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body["meta"].get("version").is_none(), "{}", first.body);
    let tag = first.headers[header::ETAG].to_str().unwrap().to_string();
    assert!(
        tag.len() > 10 && tag.parse::<u64>().is_err(),
        "opaque, not a counter: {tag}"
    );
    assert_eq!(read(Some(tag.clone())).await.status, StatusCode::NOT_MODIFIED);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]});
    let users = format!("/scim/v2/Users/{id}");
    assert_eq!(
        call(&app, Method::PATCH, &users, Some(ADMIN), Some(patch)).await.status,
        StatusCode::OK
    );
    let mut changed = read(Some(tag.clone())).await;
    for _ in 0..200 {
        if changed.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        changed = read(Some(tag.clone())).await;
    }
    assert_eq!(changed.body["title"], "Boss");
    assert_ne!(changed.headers[header::ETAG].to_str().unwrap(), tag);
}

#[tokio::test]
async fn helpdesk_cannot_escalate_unless_the_flaw_is_on() {
    for flawed in [false, true] {
        let mut config = ReferenceConfig::profile("fast").unwrap();
        config.flaws.privilege_escalation = flawed;
        let (app, _) = app_with(config);
        let helpdesk = client_token(&app, "helpdesk").await;
        let expect = if flawed {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        let r = create_user(&app, &helpdesk, "emp@test", &["employee"]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let emp = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            create_user(&app, &helpdesk, "boss@test", &["admin"]).await.status,
            expect
        );
        let grant = json!({"Operations": [{"op": "add", "path": "roles", "value": [{"value": "admin"}]}]});
        let r = call(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Users/{emp}"),
            Some(&helpdesk),
            Some(grant),
        )
        .await;
        assert_eq!(r.status == StatusCode::OK, flawed, "{:?}", r.body);
        let admin = create_user(&app, ADMIN, "root@test", &["admin"]).await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let rename = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "pwned"}]});
        let r = call(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Users/{admin}"),
            Some(&helpdesk),
            Some(rename),
        )
        .await;
        assert_eq!(r.status == StatusCode::OK, flawed);
        let group = json!({"displayName": "admins", "members": [{"value": emp}]});
        let r = call(&app, Method::POST, "/scim/v2/Groups", Some(&helpdesk), Some(group)).await;
        assert_eq!(r.status == StatusCode::CREATED, flawed);
    }
}

/// The service starts with one empty group per privileged name (as a real IdP has its admins
/// group), unmarked: the escalation check's helpdesk may not join it, the admin may.
#[tokio::test]
async fn it_starts_with_an_empty_privileged_group_only_an_admin_may_change() {
    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.privileged_groups = vec!["admins".into(), "Root Ops".into()];
    let (app, _) = app_with(config);
    let r = call(&app, Method::GET, "/scim/v2/Groups", Some(ADMIN), None).await;
    assert_eq!(r.body["totalResults"], 2, "{:?}", r.body);
    let r = call(
        &app,
        Method::GET,
        "/scim/v2/Groups?filter=displayName%20eq%20%22admins%22",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 1, "{:?}", r.body);
    let admins = &r.body["Resources"][0];
    assert!(admins["members"].as_array().is_none_or(|m| m.is_empty()), "{admins}");
    let gid = admins["id"].as_str().unwrap().to_string();
    let emp = create_user(&app, ADMIN, "emp@test", &["employee"]).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let join = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": emp}]}]});
    let helpdesk = client_token(&app, "helpdesk").await;
    let path = format!("/scim/v2/Groups/{gid}");
    let r = call(&app, Method::PATCH, &path, Some(&helpdesk), Some(join.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = call(&app, Method::PATCH, &path, Some(ADMIN), Some(join)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The check's put-back: the one member it names, by a value filter.
    let leave = json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{emp}\"]")}]});
    let r = call(&app, Method::PATCH, &path, Some(ADMIN), Some(leave)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["members"].as_array().is_none_or(|m| m.is_empty()),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn token_endpoint_errors() {
    let (app, _) = app();
    let r = form(
        &app,
        "grant_type=client_credentials&client_id=helpdesk&client_secret=wrong",
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let r = form(&app, "grant_type=implicit").await;
    assert_eq!(r.body["error"], "unsupported_grant_type");
    let r = form(
        &app,
        "grant_type=client_credentials&client_id=readonly&client_secret=readonly-secret&scope=scim:write",
    )
    .await;
    assert_eq!(r.body["error"], "invalid_scope");
    let r = form(&app, "grant_type=password&username=ghost&password=x").await;
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test]
async fn group_membership_shows_on_the_user() {
    let (app, _) = app();
    let uid = create_user(&app, ADMIN, "m@test", &[]).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        Some(ADMIN),
        Some(json!({"displayName": "ops", "members": [{"value": uid}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let user = call(&app, Method::GET, &format!("/scim/v2/Users/{uid}"), Some(ADMIN), None).await;
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    let remove = json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]});
    let r = call(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Groups/{gid}"),
        Some(ADMIN),
        Some(remove),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let user = call(&app, Method::GET, &format!("/scim/v2/Users/{uid}"), Some(ADMIN), None).await;
    assert!(user.body.get("groups").is_none());
}

#[tokio::test]
async fn full_queue_rejects_writes_with_503() {
    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.workers = 1;
    config.queue_capacity = 1;
    config.service_time = Distribution::Fixed(std::time::Duration::from_secs(3600));
    let (app, state) = app_with(config);
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(create_user(&app, ADMIN, &format!("q{i}@test"), &[]).await.status);
        tokio::task::yield_now().await;
    }
    let rejected: Vec<_> = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!rejected.is_empty(), "{statuses:?}");
    assert!(state.pipeline.stats.queue_full.get() >= 1);
    // A rejected write changed nothing.
    assert_eq!(
        state.store.user_count(),
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count()
    );
}

#[tokio::test]
async fn discovery_and_unknown_routes() {
    let (app, _) = app();
    let r = call(&app, Method::GET, "/scim/v2/Schemas", Some(ADMIN), None).await;
    assert_eq!(r.body["totalResults"], 3);
    let r = call(&app, Method::GET, "/scim/v2/ResourceTypes/User", Some(ADMIN), None).await;
    assert_eq!(r.body["endpoint"], "/Users");
    let r = call(&app, Method::GET, "/scim/v2/Schemas/nope", Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, Method::DELETE, "/scim/v2/Schemas", Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["status"], "405");
}

mod retention;
