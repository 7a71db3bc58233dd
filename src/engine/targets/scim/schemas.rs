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
    let schema = match fetch(client, &format!("/Schemas/{CORE_USER}")).await? {
        Some(s) => Some(s),
        // Some servers list their schemas but serve none by id.
        None => fetch(client, "/Schemas").await?.and_then(|list| {
            list["Resources"]
                .as_array()
                .and_then(|r| r.iter().find(|s| s["id"] == CORE_USER).cloned())
        }),
    };
    Ok(schema.map(|s| required_in(&s)))
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
