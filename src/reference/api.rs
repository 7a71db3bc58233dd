//! SCIM resource handlers for `/Users` and `/Groups`: create, get, list/filter/page, replace,
//! patch, delete, with ETags, `attributes`/`excludedAttributes`, authorization rules for the
//! limited helpdesk client, and a provisioning job for every accepted write.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::auth::Principal;
use super::error::{SCIM_CONTENT_TYPE, ScimError};
use super::filter::{AttrPath, Filter, get_ci};
use super::patch::{PatchRequest, apply_patch};
use super::store::{Written, etag, role_values};

type Params = Query<HashMap<String, String>>;

pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const MAX_PAGE: usize = 1000;

pub fn scim_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_default();
    let mut resp = (status, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    resp
}

fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad_request("invalidSyntax", format!("body is not valid JSON: {e}")))
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// Keeps only `attributes`, or drops `excludedAttributes` (`id` and `schemas` always stay).
pub fn project(resource: &mut Value, params: &HashMap<String, String>) -> Result<(), ScimError> {
    let list = |key: &str| -> Result<Option<Vec<AttrPath>>, ScimError> {
        params
            .get(key)
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.split(',')
                    .map(|a| AttrPath::parse(a.trim()).map_err(ScimError::invalid_value))
                    .collect()
            })
            .transpose()
    };
    let Some(obj) = resource.as_object_mut() else {
        return Ok(());
    };
    let matches = |key: &str, p: &AttrPath| match &p.schema {
        Some(urn) => key.eq_ignore_ascii_case(urn),
        None => key.eq_ignore_ascii_case(&p.attr),
    };
    if let Some(keep) = list("attributes")? {
        obj.retain(|k, v| {
            if k == "id" || k == "schemas" {
                return true;
            }
            let wanted: Vec<&AttrPath> = keep.iter().filter(|p| matches(k, p)).collect();
            if wanted.is_empty() {
                return false;
            }
            // `name.givenName` keeps just that sub-attribute.
            if wanted.iter().all(|p| p.sub.is_some() && p.schema.is_none())
                && let Value::Object(inner) = v
            {
                inner.retain(|ik, _| {
                    wanted
                        .iter()
                        .any(|p| p.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(ik)))
                });
            }
            true
        });
    } else if let Some(drop) = list("excludedAttributes")? {
        obj.retain(|k, v| {
            if k == "id" || k == "schemas" {
                return true;
            }
            for p in drop.iter().filter(|p| matches(k, p)) {
                match (&p.sub, v.as_object_mut()) {
                    (None, _) => return false,
                    (Some(sub), Some(inner)) => inner.retain(|ik, _| !ik.eq_ignore_ascii_case(sub)),
                    _ => {}
                }
            }
            true
        });
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Users => "User",
            Kind::Groups => "Group",
        }
    }
}

impl AppState {
    /// The helpdesk rules: without `scim:admin`, no granting `admin`, no touching admins.
    fn check_user_change(&self, p: &Principal, old: Option<&Value>, new: Option<&Value>) -> Result<(), ScimError> {
        if p.scopes.admin || self.config.flaws.privilege_escalation {
            return Ok(());
        }
        let is_admin = |v: Option<&Value>| v.is_some_and(|v| role_values(v).iter().any(|r| r == "admin"));
        if is_admin(old) {
            return Err(ScimError::forbidden(format!(
                "{} may not modify an administrator",
                p.actor
            )));
        }
        if is_admin(new) {
            return Err(ScimError::forbidden(format!(
                "granting the admin role needs scope scim:admin ({} lacks it)",
                p.actor
            )));
        }
        Ok(())
    }

    fn check_group_change(&self, p: &Principal, old: Option<&Value>, new: Option<&Value>) -> Result<(), ScimError> {
        if p.scopes.admin || self.config.flaws.privilege_escalation {
            return Ok(());
        }
        let privileged = |v: Option<&Value>| {
            v.and_then(|v| get_ci(v, "displayName"))
                .and_then(Value::as_str)
                .is_some_and(|n| self.config.privileged_groups.iter().any(|g| g.eq_ignore_ascii_case(n)))
        };
        if privileged(old) || privileged(new) {
            return Err(ScimError::forbidden(format!(
                "{} may not change a privileged group",
                p.actor
            )));
        }
        Ok(())
    }

    fn accepted(&self, status: StatusCode, written: Written, job: u64) -> Response {
        let mut resp = match &written.resource {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(r) => scim_response(status, &**r),
        };
        let h = resp.headers_mut();
        if let Some(r) = &written.resource {
            h.insert(
                header::ETAG,
                HeaderValue::from_str(&etag(written.version)).expect("ascii"),
            );
            if status == StatusCode::CREATED
                && let Some(loc) = r["meta"]["location"]
                    .as_str()
                    .and_then(|l| HeaderValue::from_str(l).ok())
            {
                h.insert(header::LOCATION, loc);
            }
        }
        h.insert("x-job-id", HeaderValue::from(job));
        if let Ok(v) = HeaderValue::from_str(&format!("{}/jobs/{job}", self.root_url)) {
            h.insert("x-job-location", v);
        }
        resp
    }
}

fn classify_user_change(old: Option<&Value>, new: Option<&Value>) -> &'static str {
    let active = |v: &Value| v.get("active").and_then(Value::as_bool).unwrap_or(true);
    match (old, new) {
        (None, _) => "create_user",
        (_, None) => "delete_user",
        (Some(o), Some(n)) if active(o) && !active(n) => "disable_user",
        (Some(o), Some(n)) if !active(o) && active(n) => "enable_user",
        (Some(o), Some(n)) if role_values(o) != role_values(n) => "role_change",
        _ => "modify_user",
    }
}

pub async fn create(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let p = s.authenticate(&headers)?;
    p.require_write()?;
    let body = parse_body(&body)?;
    if kind == Kind::Users {
        s.require_attributes(&body)?;
    }
    let slot = s.pipeline.reserve()?;
    let (written, op) = match kind {
        Kind::Users => (
            s.store.create_user(body, &|o, n| s.check_user_change(&p, o, n))?,
            "create_user",
        ),
        Kind::Groups => (
            s.store.create_group(body, &|o, n| s.check_group_change(&p, o, n))?,
            "create_group",
        ),
    };
    let id = written.id.clone();
    let job = s.pipeline.submit(slot, op, &p.actor, &id, written.snapshots.clone());
    Ok(s.accepted(StatusCode::CREATED, written, job))
}

pub async fn get_one(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    Path(id): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    let projected = params.contains_key("attributes") || params.contains_key("excludedAttributes");
    // The common case serialises straight from the store; a projection works on a copy.
    let (body, version) = s
        .store
        .with_resource(kind == Kind::Groups, &id, |r, v| {
            if projected {
                let mut copy = r.clone();
                project(&mut copy, &params).map(|_| (serde_json::to_vec(&copy), v))
            } else {
                Ok((serde_json::to_vec(r), v))
            }
        })
        .ok_or_else(|| ScimError::not_found(kind.noun(), &id))??;
    let tag = etag(version);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let body = body.map_err(|e| ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()))?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    resp.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&tag).expect("ascii"));
    Ok(resp)
}

pub async fn list(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    if kind == Kind::Users && s.config.count_error && params.contains_key("count") {
        return Err(ScimError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "count is not supported (count_error)",
        ));
    }
    if kind == Kind::Users && s.config.filter_ignored {
        let mut params = params;
        params.remove("filter");
        return list_response(&s, kind, &params);
    }
    list_response(&s, kind, &params)
}

/// `POST /Users/.search` and `/Groups/.search`: the same query, with parameters in the body.
/// `POST /.search` (kind `None`) searches every resource type.
pub async fn search(
    State(s): State<Arc<AppState>>,
    kind: Option<Kind>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    s.authenticate(&headers)?.require_read()?;
    let body = parse_body(&body)?;
    let params = search_params(&body);
    match kind {
        Some(kind) => list_response(&s, kind, &params),
        None => Ok(scim_response(
            StatusCode::OK,
            &list_body(&s, &[Kind::Users, Kind::Groups], &params)?,
        )),
    }
}

fn search_params(body: &Value) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (k, v) in body.as_object().into_iter().flatten() {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        };
        params.insert(k.clone(), text);
    }
    params
}

fn list_response(s: &AppState, kind: Kind, params: &HashMap<String, String>) -> Result<Response, ScimError> {
    let body = list_body(s, &[kind], params)?;
    Ok(scim_response(StatusCode::OK, &body))
}

/// A ListResponse: serialised straight from the store's shared representations.
#[derive(serde::Serialize)]
struct ListResponse {
    schemas: [&'static str; 1],
    #[serde(rename = "totalResults")]
    total_results: usize,
    #[serde(rename = "startIndex")]
    start_index: usize,
    #[serde(rename = "itemsPerPage")]
    items_per_page: usize,
    #[serde(rename = "Resources")]
    resources: Vec<Resource>,
}

/// A page item: shared with the store, or a projected copy.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Resource {
    Shared(#[serde(serialize_with = "shared")] Arc<Value>),
    Projected(Value),
}

fn shared<S: serde::Serializer>(v: &Arc<Value>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&**v, s)
}

/// A ListResponse over the given resource types, in creation order within each type.
fn list_body(s: &AppState, kinds: &[Kind], params: &HashMap<String, String>) -> Result<ListResponse, ScimError> {
    let filter = params
        .get("filter")
        .filter(|f| !f.trim().is_empty())
        .map(|f| Filter::parse(f))
        .transpose()?;
    let number = |key: &str, default: usize| -> Result<usize, ScimError> {
        match params.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| ScimError::invalid_value(format!("{key} must be an integer, got `{v}`"))),
        }
    };
    let start = number("startIndex", 1)?.max(1);
    let count = number("count", 100)?.min(MAX_PAGE);
    let (total, page) = match kinds {
        [kind] => s.store.list(*kind == Kind::Groups, filter.as_ref(), start, count),
        _ => {
            let mut all = Vec::new();
            for kind in kinds {
                all.extend(s.store.list(*kind == Kind::Groups, filter.as_ref(), 1, usize::MAX).1);
            }
            let total = all.len();
            (total, all.into_iter().skip(start - 1).take(count).collect())
        }
    };
    let projected = params.contains_key("attributes") || params.contains_key("excludedAttributes");
    let resources = page
        .into_iter()
        .map(|r| {
            if projected {
                let mut copy = Value::clone(&r);
                project(&mut copy, params).map(|_| Resource::Projected(copy))
            } else {
                Ok(Resource::Shared(r))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ListResponse {
        schemas: [LIST_SCHEMA],
        total_results: total,
        start_index: start,
        items_per_page: resources.len(),
        resources,
    })
}

fn update(
    s: Arc<AppState>,
    kind: Kind,
    id: String,
    headers: HeaderMap,
    change: &dyn Fn(&Value) -> Result<Value, ScimError>,
) -> Result<Response, ScimError> {
    let p = s.authenticate(&headers)?;
    p.require_write()?;
    let slot = s.pipeline.reserve()?;
    let op = Cell::new("modify_group");
    let written = match kind {
        Kind::Users => s.store.update_user(&id, if_match(&headers), change, &|o, n| {
            s.check_user_change(&p, o, n)?;
            op.set(classify_user_change(o, n));
            Ok(())
        })?,
        Kind::Groups => s
            .store
            .update_group(&id, if_match(&headers), change, &|o, n| s.check_group_change(&p, o, n))?,
    };
    let job = s
        .pipeline
        .submit(slot, op.get(), &p.actor, &id, written.snapshots.clone());
    Ok(s.accepted(StatusCode::OK, written, job))
}

pub async fn replace(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let body = parse_body(&body)?;
    if kind == Kind::Users {
        s.require_attributes(&body)?;
    }
    update(s, kind, id, headers, &|_| Ok(body.clone()))
}

impl AppState {
    /// `required_attributes`: a user body must carry each (not null), as `/Schemas` says.
    fn require_attributes(&self, body: &Value) -> Result<(), ScimError> {
        let Some(obj) = body.as_object() else { return Ok(()) };
        for name in &self.config.required_attributes {
            let present = obj.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null());
            if !present {
                return Err(ScimError::invalid_value(format!("attribute `{name}` is required")));
            }
        }
        Ok(())
    }
}

pub async fn patch(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request: PatchRequest = serde_json::from_slice(&body)
        .map_err(|e| ScimError::bad_request("invalidSyntax", format!("not a PatchOp body: {e}")))?;
    if kind == Kind::Users
        && let Some(attr) = refused_attribute(&s.config.faults.patch_errors, &request)
    {
        return Err(ScimError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("internal error while patching {attr}"),
        ));
    }
    update(s, kind, id, headers, &|current| {
        let mut next = current.clone();
        apply_patch(&mut next, &request)?;
        Ok(next)
    })
}

/// The first of `refused` (the `patch_errors` fault) that an operation of `request` names: by its
/// path's attribute, or, for a path-less operation, by a key of its value.
fn refused_attribute<'a>(refused: &'a [String], request: &PatchRequest) -> Option<&'a str> {
    let named = |attr: &str| {
        // `urn:…:User:title` and `title.sub` and `title[…]` all name `title`.
        let attr = attr.rsplit(':').next().unwrap_or(attr);
        let attr = attr.split(['.', '[']).next().unwrap_or(attr);
        refused
            .iter()
            .find(|r| r.eq_ignore_ascii_case(attr))
            .map(String::as_str)
    };
    request.operations.iter().find_map(|op| match (&op.path, &op.value) {
        (Some(path), _) => named(path),
        (None, Some(Value::Object(m))) => m.keys().find_map(|k| named(k)),
        _ => None,
    })
}

pub async fn delete(
    State(s): State<Arc<AppState>>,
    kind: Kind,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    if kind == Kind::Users && s.config.soft_delete {
        // A soft delete: answered as done, but the user stays, readable, listed and inactive.
        update(s, kind, id, headers, &|current| {
            let mut next = current.clone();
            next["active"] = Value::Bool(false);
            Ok(next)
        })?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let p = s.authenticate(&headers)?;
    p.require_write()?;
    let slot = s.pipeline.reserve()?;
    let (written, op) = match kind {
        Kind::Users => (
            s.store
                .delete_user(&id, if_match(&headers), &|o, n| s.check_user_change(&p, o, n))?,
            "delete_user",
        ),
        Kind::Groups => (
            s.store
                .delete_group(&id, if_match(&headers), &|o, n| s.check_group_change(&p, o, n))?,
            "delete_group",
        ),
    };
    let job = s.pipeline.submit(slot, op, &p.actor, &id, written.snapshots.clone());
    Ok(s.accepted(StatusCode::NO_CONTENT, written, job))
}
