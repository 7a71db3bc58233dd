//! What a SCIM target publishes about users in `/Schemas` (RFC 7643 §7): the attributes it
//! marks required, so a workload whose user template lacks one fails before any load instead
//! of with a 400 on every create.

use reqwest::Method;
use serde_json::Value;

use crate::http::HttpClient;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The core User schema's required, client-writable attributes; `None` when the target does
/// not publish the schema (no `/Schemas`, or not that one).
pub async fn required_user_attributes(client: &HttpClient) -> Result<Option<Vec<String>>, String> {
    Ok(user_schema(client).await?.map(|s| required_in(&s)))
}

/// The core User schema as the target publishes it; `None` when it does not (no `/Schemas`,
/// or not that one).
pub async fn user_schema(client: &HttpClient) -> Result<Option<Value>, String> {
    let schema = match fetch(client, &format!("/Schemas/{CORE_USER}")).await? {
        Some(s) => Some(s),
        // Some servers list their schemas but serve none by id.
        None => fetch(client, "/Schemas").await?.and_then(|list| {
            list["Resources"]
                .as_array()
                .and_then(|r| r.iter().find(|s| s["id"] == CORE_USER).cloned())
        }),
    };
    Ok(schema)
}

async fn fetch(client: &HttpClient, path: &str) -> Result<Option<Value>, String> {
    let reply = client
        .call(Method::GET, path, None)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if !reply.status.is_success() {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&reply.body).ok())
}

/// Top-level attributes with `"required": true` that a client writes (not `readOnly`).
pub fn required_in(schema: &Value) -> Vec<String> {
    schema["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["required"] == true && a["mutability"] != "readOnly")
        .filter_map(|a| a["name"].as_str().map(str::to_string))
        .collect()
}

/// One attribute of a schema, as RFC 7643 §7 describes it (what `init` writes a value for).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    /// `string`, `boolean`, `complex`, `integer`, `decimal`, `dateTime`, `reference`, `binary`.
    pub kind: String,
    pub multi_valued: bool,
    pub required: bool,
    /// `readWrite` (the default), `immutable`, `readOnly` or `writeOnly`.
    pub mutability: String,
    pub sub: Vec<Attribute>,
}

impl Attribute {
    /// A client may send it on create (not `readOnly`).
    pub fn writable(&self) -> bool {
        self.mutability != "readOnly"
    }

    /// A client may change it later (PATCH or PUT).
    pub fn mutable(&self) -> bool {
        self.mutability == "readWrite" || self.mutability == "writeOnly"
    }
}

/// The attributes a schema lists (sub-attributes one level down), bounded: what a target
/// answers is read, never trusted to be small.
pub fn attributes(schema: &Value) -> Vec<Attribute> {
    fn one(a: &Value, depth: usize) -> Option<Attribute> {
        let name = a["name"].as_str()?.chars().take(128).collect::<String>();
        Some(Attribute {
            name,
            kind: a["type"].as_str().unwrap_or("string").chars().take(32).collect(),
            multi_valued: a["multiValued"] == true,
            required: a["required"] == true,
            mutability: a["mutability"]
                .as_str()
                .unwrap_or("readWrite")
                .chars()
                .take(32)
                .collect(),
            sub: match depth {
                0 => a["subAttributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(256)
                    .filter_map(|s| one(s, 1))
                    .collect(),
                _ => Vec::new(),
            },
        })
    }
    schema["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .take(1024)
        .filter_map(|a| one(a, 0))
        .collect()
}

/// Those of `required` that the JSON `body` lacks (or sets to null), matched case-insensitively.
pub fn missing<'r>(body: &Value, required: &'r [String]) -> Vec<&'r str> {
    let obj = body.as_object();
    required
        .iter()
        .filter(|name| !obj.is_some_and(|o| o.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn required_attributes_and_what_a_body_lacks() {
        let schema = json!({"attributes": [
            {"name": "userName", "required": true, "mutability": "readWrite"},
            {"name": "id", "required": true, "mutability": "readOnly"},
            {"name": "active", "required": true},
            {"name": "title", "required": false}]});
        let required = required_in(&schema);
        assert_eq!(required, vec!["userName", "active"]);
        assert_eq!(
            missing(&json!({"UserName": "a", "active": null}), &required),
            vec!["active"]
        );
        assert!(missing(&json!({"userName": "a", "Active": true}), &required).is_empty());
    }
}
