//! The read side of the asynchronous half, for anyone observing the service from outside:
//! `/jobs/{id}`, each linked service's view (`/linked/{service}/Users/{id}`, by filter, and the
//! user's own `/linked/{service}/me`), `/audit`, `/outbox`, and the ground truth at `/stats`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::api::{LIST_SCHEMA, scim_response};
use super::effects::{Event, EventLog};
use super::error::ScimError;
use super::filter::Filter;
use super::linked::{LinkedService, LinkedUser};
use super::oauth::Subject;

type Params = Query<HashMap<String, String>>;

fn linked<'a>(s: &'a AppState, service: &str) -> Result<&'a LinkedService, ScimError> {
    s.pipeline
        .service(service)
        .ok_or_else(|| ScimError::not_found("linked service", service))
}

fn view(s: &AppState, svc: &LinkedService, u: &LinkedUser) -> Value {
    let mut r = u
        .user
        .as_ref()
        .map(|u| Value::clone(&u.resource))
        .unwrap_or(Value::Null);
    let service = &svc.config.name;
    if let Some(obj) = r.as_object_mut() {
        if svc.config.view.no_versions || svc.config.view.opaque_etags {
            if let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("version");
            }
            obj.insert(
                "urn:provbench:linked".into(),
                json!({"service": service, "synced_at": s.pipeline.clock.format(u.synced_at)}),
            );
        } else {
            obj.insert(
                "urn:provbench:linked".into(),
                json!({"service": service, "version": u.version, "synced_at": s.pipeline.clock.format(u.synced_at), "job_id": u.job.to_string()}),
            );
        }
    }
    r
}

/// A service with a token of its own accepts only that token; the others, the target's.
fn authorize(s: &AppState, svc: &LinkedService, headers: &HeaderMap) -> Result<(), ScimError> {
    match &svc.config.view.token {
        Some(own) => {
            let sent = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if sent.is_some_and(|t| super::store::Secret::new(own.clone()).matches(t)) {
                Ok(())
            } else {
                Err(ScimError::unauthorized(format!(
                    "{} takes its own credentials",
                    svc.config.name
                )))
            }
        }
        None => s.authenticate(headers)?.require_read(),
    }
}

pub async fn job(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|n| s.pipeline.job_json(n))
        .ok_or_else(|| ScimError::not_found("job", &id))?;
    Ok(Json(job).into_response())
}

pub async fn linked_user(
    State(s): State<Arc<AppState>>,
    Path((service, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let svc = linked(&s, &service)?;
    authorize(&s, svc, &headers)?;
    let not_found = || ScimError::not_found(&format!("User in {service}:"), &id);
    if svc.config.view.filter_only {
        return Err(not_found());
    }
    let held = svc.held(&id).ok_or_else(not_found)?;
    if held.user.is_none() {
        if svc.config.view.deleted_404 {
            return Err(not_found());
        }
        // A deletion this service has applied: 410, so observers can tell it from "never seen".
        let mut gone = ScimError::new(StatusCode::GONE, None, format!("User {id} was deleted in {service}"));
        gone.detail.push_str(&format!(" (version {})", held.version));
        return Err(gone);
    }
    if !svc.config.view.opaque_etags {
        return Ok(scim_response(StatusCode::OK, &view(&s, svc, &held)));
    }
    let tag = opaque_etag(&id, &held);
    let matches = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = match matches {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => scim_response(StatusCode::OK, &view(&s, svc, &held)),
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&tag) {
        response.headers_mut().insert(axum::http::header::ETAG, value);
    }
    Ok(response)
}

/// An entity tag that changes with every applied change but says nothing of their order (a
/// hash, as many real downstreams send).
fn opaque_etag(id: &str, held: &LinkedUser) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, held.version, held.job).hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

pub async fn linked_list(
    State(s): State<Arc<AppState>>,
    Path(service): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let svc = linked(&s, &service)?;
    authorize(&s, svc, &headers)?;
    let filter = params.get("filter").map(|f| Filter::parse(f)).transpose()?;
    let count = params
        .get("count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(100usize)
        .min(1000);
    let mut hits: Vec<Value> = svc.find(filter.as_ref()).iter().map(|u| view(&s, svc, u)).collect();
    let total = hits.len();
    hits.truncate(count);
    Ok(scim_response(
        StatusCode::OK,
        &json!({"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": 1, "itemsPerPage": hits.len(), "Resources": hits}),
    ))
}

/// `GET /linked/{service}/me` with the user's own token: what this service lets the user do.
/// Access ends once a disable or delete has synced here (unless a deliberate flaw keeps it).
pub async fn linked_me(
    State(s): State<Arc<AppState>>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let info = s.auth.lookup(&headers)?;
    let Subject::User(uid) = info.subject else {
        return Err(ScimError::forbidden("/me needs a user's token"));
    };
    let svc = linked(&s, &service)?;
    let held = svc.held(&uid);
    let record = held.as_ref().and_then(|u| u.user.clone());
    let usable = match &record {
        Some(r) => r.active() || s.config.flaws.stale_tokens,
        None => s.config.flaws.stale_tokens && held.is_some(),
    };
    if !usable {
        return Err(ScimError::unauthorized(format!("no active account in {service}")));
    }
    let roles = record.as_ref().map(|r| r.roles()).unwrap_or_default();
    let mut permissions = BTreeSet::new();
    for role in &roles {
        permissions.extend(s.config.roles.get(role).into_iter().flatten().cloned());
    }
    let groups: Vec<Value> = record
        .as_ref()
        .and_then(|r| r.resource.get("groups"))
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(|g| g.get("display").cloned()).collect())
        .unwrap_or_default();
    for g in groups.iter().filter_map(Value::as_str) {
        permissions.insert(format!("group:{g}"));
    }
    Ok(Json(json!({
        "service": service,
        "user_id": uid,
        "userName": record.as_ref().map(|r| r.resource["userName"].clone()),
        "active": record.as_ref().map(|r| r.active()),
        "roles": roles,
        "groups": groups,
        "permissions": permissions,
    }))
    .into_response())
}

fn since_and_limit(params: &HashMap<String, String>) -> Result<(u64, usize), ScimError> {
    let since = match params.get("since") {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            ScimError::invalid_value(format!(
                "since must be a sequence number from an earlier answer, got `{v}`"
            ))
        })?,
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000usize)
        .min(10_000);
    Ok((since, limit))
}

/// One page of an event log: events after `since`, optionally about one subject (`key_param`).
fn event_page<T: Event>(
    log: &EventLog<T>,
    params: &HashMap<String, String>,
    key_param: &str,
    field: &str,
) -> Result<Response, ScimError> {
    let (since, limit) = since_and_limit(params)?;
    let events = log.query(since, params.get(key_param).map(String::as_str), limit);
    let next = events.last().map(Event::seq).unwrap_or(since);
    Ok(Json(json!({field: events, "next": next})).into_response())
}

/// `GET /audit?since=SEQ&target=USER_ID&limit=N`
pub async fn audit(
    State(s): State<Arc<AppState>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    event_page(&s.pipeline.audit, &params, "target", "entries")
}

/// `GET /outbox?since=SEQ&user_id=ID&limit=N`
pub async fn outbox(
    State(s): State<Arc<AppState>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    event_page(&s.pipeline.outbox, &params, "user_id", "messages")
}

/// `GET /stats`: unauthenticated on purpose, it holds only measurements.
pub async fn stats(State(s): State<Arc<AppState>>) -> Response {
    Json(s.pipeline.stats.to_json(s.pipeline.queue_depth(), s.store.user_count())).into_response()
}

/// `DELETE /stats`: start a fresh measurement window (e.g. after a warm-up).
pub async fn reset_stats(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_write()?;
    s.pipeline.stats.reset();
    Ok(StatusCode::NO_CONTENT.into_response())
}
