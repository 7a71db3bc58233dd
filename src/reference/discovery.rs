//! SCIM discovery (RFC 7643 §5–7, RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`, describing exactly what this service supports.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::api::{LIST_SCHEMA, scim_response};
use super::error::ScimError;
use super::filter::{CORE_GROUP_SCHEMA, CORE_USER_SCHEMA};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// One attribute definition. `flags` is a compact spec: `m` multi-valued, `r` required,
/// `x` case-exact, `o` read-only, `w` write-only (returned never), `u` unique (server).
fn attr(name: &str, kind: &str, flags: &str, sub: Vec<Value>) -> Value {
    let mutability = if flags.contains('o') {
        "readOnly"
    } else if flags.contains('w') {
        "writeOnly"
    } else {
        "readWrite"
    };
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": flags.contains('m'),
        "description": name,
        "required": flags.contains('r'),
        "caseExact": flags.contains('x'),
        "mutability": mutability,
        "returned": if flags.contains('w') { "never" } else { "default" },
        "uniqueness": if flags.contains('u') { "server" } else { "none" },
    });
    if !sub.is_empty() {
        a["subAttributes"] = Value::Array(sub);
    }
    if kind == "reference" {
        a["referenceTypes"] = json!(["external"]);
    }
    a
}

fn s(name: &str) -> Value {
    attr(name, "string", "", vec![])
}

fn multi(name: &str, extra: Vec<Value>) -> Value {
    let mut sub = vec![
        s("value"),
        s("display"),
        s("type"),
        attr("primary", "boolean", "", vec![]),
    ];
    sub.extend(extra);
    attr(name, "complex", "m", sub)
}

fn schema(id: &str, name: &str, attributes: Vec<Value>, root: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": format!("{name} resource"),
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{root}/Schemas/{id}")},
    })
}

fn schemas(root: &str, required: &[String]) -> Vec<Value> {
    let name = attr(
        "name",
        "complex",
        "",
        [
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
        ]
        .iter()
        .map(|n| s(n))
        .collect(),
    );
    let user = vec![
        attr("userName", "string", "ru", vec![]),
        name,
        s("displayName"),
        s("nickName"),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", "boolean", "", vec![]),
        attr("password", "string", "w", vec![]),
        multi("emails", vec![]),
        multi("phoneNumbers", vec![]),
        multi("roles", vec![]),
        multi("entitlements", vec![]),
        attr(
            "groups",
            "complex",
            "mo",
            vec![
                attr("value", "string", "o", vec![]),
                attr("display", "string", "o", vec![]),
                attr("type", "string", "o", vec![]),
            ],
        ),
    ];
    // What `required_attributes` asks of a user is published as required.
    let user: Vec<Value> = user
        .into_iter()
        .map(|mut a| {
            let name = a["name"].as_str().unwrap_or_default();
            if required.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                a["required"] = Value::Bool(true);
            }
            a
        })
        .collect();
    let group = vec![
        attr("displayName", "string", "r", vec![]),
        attr(
            "members",
            "complex",
            "m",
            vec![attr("value", "string", "x", vec![]), s("display"), s("type")],
        ),
    ];
    let enterprise = vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
    ];
    vec![
        schema(CORE_USER_SCHEMA, "User", user, root),
        schema(CORE_GROUP_SCHEMA, "Group", group, root),
        schema(ENTERPRISE, "EnterpriseUser", enterprise, root),
    ]
}

fn resource_types(root: &str) -> Vec<Value> {
    let rt = |id: &str, endpoint: &str, schema: &str, ext: Option<&str>| {
        let mut v = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": id,
            "name": id,
            "endpoint": endpoint,
            "description": format!("{id} accounts"),
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": format!("{root}/ResourceTypes/{id}")},
        });
        if let Some(ext) = ext {
            v["schemaExtensions"] = json!([{"schema": ext, "required": false}]);
        }
        v
    };
    vec![
        rt("User", "/Users", CORE_USER_SCHEMA, Some(ENTERPRISE)),
        rt("Group", "/Groups", CORE_GROUP_SCHEMA, None),
    ]
}

fn list(items: Vec<Value>) -> Value {
    json!({"schemas": [LIST_SCHEMA], "totalResults": items.len(), "startIndex": 1, "itemsPerPage": items.len(), "Resources": items})
}

pub async fn service_provider_config(State(st): State<Arc<AppState>>) -> Response {
    scim_response(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/provbench/provbench",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000},
            "changePassword": {"supported": true},
            "sort": {"supported": false},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "OAuth2 client credentials at /oauth/token, or a static bearer token",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", st.scim_url)},
        }),
    )
}

pub async fn resource_type_list(State(st): State<Arc<AppState>>) -> Response {
    scim_response(StatusCode::OK, &list(resource_types(&st.scim_url)))
}

pub async fn resource_type(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ScimError> {
    resource_types(&st.scim_url)
        .into_iter()
        .find(|r| r["id"] == id)
        .map(|r| scim_response(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("ResourceType", &id))
}

pub async fn schema_list(State(st): State<Arc<AppState>>) -> Response {
    scim_response(
        StatusCode::OK,
        &list(schemas(&st.scim_url, &st.config.required_attributes)),
    )
}

pub async fn schema_by_id(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ScimError> {
    schemas(&st.scim_url, &st.config.required_attributes)
        .into_iter()
        .find(|r| r["id"] == id)
        .map(|r| scim_response(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("Schema", &id))
}
