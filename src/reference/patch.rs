//! SCIM PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove` applied to a JSON resource.
//!
//! Paths: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each optionally prefixed by a
//! schema URN. Operation names are case-insensitive (`Replace`, as Entra ID sends it), and a
//! no-path `add`/`replace` may carry dotted keys (`"name.givenName": "x"`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{AttrPath, Filter, get_ci};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOperation>,
}

#[derive(Debug, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, PartialEq)]
struct PatchPath {
    attr: AttrPath,
    filter: Option<Filter>,
    /// Sub-attribute after a value filter: `emails[type eq "work"].value`.
    sub_after_filter: Option<String>,
}

fn parse_path(text: &str) -> Result<PatchPath, ScimError> {
    let bad = |e: String| ScimError::invalid_path(e);
    if is_schema_urn(text) {
        // The whole extension object: its URN is the attribute name at the top level.
        return Ok(PatchPath {
            attr: AttrPath {
                schema: None,
                attr: text.to_string(),
                sub: None,
            },
            filter: None,
            sub_after_filter: None,
        });
    }
    match text.find('[') {
        None => Ok(PatchPath {
            attr: AttrPath::parse(text).map_err(bad)?,
            filter: None,
            sub_after_filter: None,
        }),
        Some(open) => {
            let close = text
                .rfind(']')
                .filter(|&c| c > open)
                .ok_or_else(|| bad(format!("unbalanced `[` in path `{text}`")))?;
            let attr = AttrPath::parse(&text[..open]).map_err(bad)?;
            let filter = Filter::parse(&text[open + 1..close])
                .map_err(|e| ScimError::invalid_path(format!("in path `{text}`: {}", e.detail)))?;
            let rest = &text[close + 1..];
            let sub = match rest {
                "" => None,
                r => Some(
                    r.strip_prefix('.')
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad(format!("bad text after `]` in path `{text}`")))?
                        .to_string(),
                ),
            };
            Ok(PatchPath {
                attr,
                filter: Some(filter),
                sub_after_filter: sub,
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies every operation in order; on error the caller discards the partly patched copy.
pub fn apply_patch(resource: &mut Value, request: &PatchRequest) -> Result<(), ScimError> {
    if !request.schemas.is_empty() && !request.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            format!("PATCH body must list schema {PATCH_SCHEMA}"),
        ));
    }
    for operation in &request.operations {
        let op = match operation.op.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            other => {
                return Err(ScimError::bad_request(
                    "invalidSyntax",
                    format!("unknown PATCH op `{other}`"),
                ));
            }
        };
        match (&operation.path, op) {
            (None, Op::Remove) => return Err(ScimError::no_target("remove needs a path")),
            (None, _) => {
                let Some(Value::Object(values)) = &operation.value else {
                    return Err(ScimError::invalid_value(
                        "add/replace without a path needs an object value",
                    ));
                };
                for (key, value) in values {
                    if is_schema_urn(key) && value.is_object() {
                        // A whole extension-schema object: merge it attribute by attribute.
                        let ext = ensure_object(resource, key);
                        for (k, v) in value.as_object().into_iter().flatten() {
                            set_attr(ext, k, v.clone(), op);
                        }
                    } else {
                        let path = parse_path(key)?;
                        apply_at(resource, &path, op, Some(value))?;
                    }
                }
            }
            (Some(path), _) => {
                if op != Op::Remove && operation.value.is_none() {
                    return Err(ScimError::invalid_value(format!("{:?} of `{path}` needs a value", op)));
                }
                apply_at(resource, &parse_path(path)?, op, operation.value.as_ref())?;
            }
        }
    }
    Ok(())
}

/// `urn:...:2.0:User` names a schema (its last segment is capitalised, as resource and schema
/// names are), while `urn:...:2.0:User:manager` names an attribute in it.
pub fn is_schema_urn(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("urn:")
        && key
            .rsplit(':')
            .next()
            .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_uppercase()))
}

fn ensure_object<'a>(parent: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let obj = parent.as_object_mut().expect("resources are objects");
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_string());
    let slot = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Sets `key` in `obj`: `add` appends to arrays and merges objects, `replace` overwrites.
fn set_attr(obj: &mut Map<String, Value>, key: &str, value: Value, op: Op) {
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_string());
    match (obj.get_mut(&key), value, op) {
        (Some(Value::Array(existing)), Value::Array(new), Op::Add) => {
            for v in new {
                if !existing.contains(&v) {
                    existing.push(v);
                }
            }
        }
        (Some(Value::Array(existing)), v, Op::Add) if !v.is_array() => {
            if !existing.contains(&v) {
                existing.push(v);
            }
        }
        (Some(Value::Object(existing)), Value::Object(new), Op::Add) => {
            for (k, v) in new {
                set_attr(existing, &k, v, op);
            }
        }
        (_, v, _) => {
            obj.insert(key, v);
        }
    }
}

fn apply_at(resource: &mut Value, path: &PatchPath, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
    let container: &mut Map<String, Value> = match &path.attr.schema {
        None => resource.as_object_mut().expect("resources are objects"),
        Some(urn) if op == Op::Remove && get_ci(resource, urn).is_none() => return Ok(()),
        Some(urn) => ensure_object(resource, urn),
    };
    let attr = path.attr.attr.as_str();
    let key = container
        .keys()
        .find(|k| k.eq_ignore_ascii_case(attr))
        .cloned()
        .unwrap_or_else(|| attr.to_string());
    let value = value.cloned().unwrap_or(Value::Null);
    let Some(filter) = &path.filter else {
        match (&path.attr.sub, op) {
            (None, Op::Remove) => match (container.get_mut(&key), value) {
                // `remove members` with a value list removes just those members.
                (Some(Value::Array(items)), Value::Array(gone)) => {
                    items.retain(|item| !gone.iter().any(|g| same_member(item, g)));
                }
                _ => {
                    container.remove(&key);
                }
            },
            (None, _) => set_attr(container, &key, value, op),
            (Some(sub), Op::Remove) => match container.get_mut(&key) {
                Some(Value::Object(o)) => remove_ci(o, sub),
                Some(Value::Array(items)) => items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(|o| remove_ci(o, sub)),
                _ => {}
            },
            (Some(sub), _) => {
                let slot = container.entry(key).or_insert_with(|| Value::Object(Map::new()));
                match slot {
                    Value::Array(items) => {
                        for o in items.iter_mut().filter_map(Value::as_object_mut) {
                            set_attr(o, sub, value.clone(), op);
                        }
                    }
                    other => {
                        if !other.is_object() {
                            *other = Value::Object(Map::new());
                        }
                        set_attr(other.as_object_mut().expect("object"), sub, value, op);
                    }
                }
            }
        }
        return Ok(());
    };

    let items = match container.get_mut(&key) {
        Some(Value::Array(items)) => items,
        _ if op == Op::Remove => return Ok(()),
        _ => {
            container.insert(key.clone(), Value::Array(Vec::new()));
            container
                .get_mut(&key)
                .and_then(Value::as_array_mut)
                .expect("just inserted")
        }
    };
    let matching: Vec<usize> = (0..items.len()).filter(|&i| filter.matches(&items[i])).collect();
    if matching.is_empty() {
        return match op {
            Op::Remove => Ok(()),
            // `emails[type eq "work"].value` on a user without a work e-mail: add that element,
            // as identity providers expect.
            _ => match (simple_equalities(filter), &path.sub_after_filter) {
                (Some(mut element), Some(sub)) => {
                    element.insert(sub.clone(), value);
                    items.push(Value::Object(element));
                    Ok(())
                }
                _ => Err(ScimError::no_target(format!(
                    "no value of `{attr}` matches the path filter"
                ))),
            },
        };
    }
    match (&path.sub_after_filter, op) {
        (None, Op::Remove) => {
            let mut i = 0;
            items.retain(|_| {
                i += 1;
                !matching.contains(&(i - 1))
            });
        }
        (None, Op::Replace) => matching.iter().for_each(|&i| items[i] = value.clone()),
        (None, Op::Add) => {
            for &i in &matching {
                if let (Some(o), Value::Object(new)) = (items[i].as_object_mut(), &value) {
                    for (k, v) in new {
                        set_attr(o, k, v.clone(), op);
                    }
                }
            }
        }
        (Some(sub), Op::Remove) => {
            for &i in &matching {
                if let Some(o) = items[i].as_object_mut() {
                    remove_ci(o, sub);
                }
            }
        }
        (Some(sub), _) => {
            for &i in &matching {
                if let Some(o) = items[i].as_object_mut() {
                    set_attr(o, sub, value.clone(), op);
                }
            }
        }
    }
    Ok(())
}

fn remove_ci(obj: &mut Map<String, Value>, key: &str) {
    if let Some(k) = obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned() {
        obj.remove(&k);
    }
}

/// Two multi-valued elements name the same member when their `value` fields agree.
fn same_member(item: &Value, gone: &Value) -> bool {
    match (get_ci(item, "value"), get_ci(gone, "value")) {
        (Some(a), Some(b)) => a == b,
        _ => item == gone,
    }
}

/// The element a filter of the form `a eq "x" and b eq "y"` describes, if it has that form.
fn simple_equalities(filter: &Filter) -> Option<Map<String, Value>> {
    use super::filter::CmpOp;
    match filter {
        Filter::Compare(p, CmpOp::Eq, v) if p.schema.is_none() && p.sub.is_none() => {
            let mut m = Map::new();
            m.insert(p.attr.clone(), v.clone());
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = simple_equalities(a)?;
            m.extend(simple_equalities(b)?);
            Some(m)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(resource: Value, ops: Value) -> Result<Value, ScimError> {
        let mut r = resource;
        let req: PatchRequest = serde_json::from_value(json!({"schemas": [PATCH_SCHEMA], "Operations": ops})).unwrap();
        apply_patch(&mut r, &req).map(|_| r)
    }

    fn user() -> Value {
        json!({"userName": "a", "active": true, "name": {"givenName": "A"},
               "emails": [{"value": "a@w.test", "type": "work"}], "roles": [{"value": "employee"}]})
    }

    #[test]
    fn replace_and_add_simple_attributes() {
        let r = patch(
            user(),
            json!([{"op": "Replace", "path": "active", "value": false},
                                     {"op": "add", "path": "title", "value": "Boss"},
                                     {"op": "replace", "path": "name.familyName", "value": "Z"}]),
        )
        .unwrap();
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["title"], json!("Boss"));
        assert_eq!(r["name"], json!({"givenName": "A", "familyName": "Z"}));
    }

    #[test]
    fn whole_extension_paths() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let r = patch(
            user(),
            json!([{"op": "add", "path": ext, "value": {"department": "Ops"}}]),
        )
        .unwrap();
        assert_eq!(r[ext], json!({"department": "Ops"}));
        let r = patch(
            r,
            json!([{"op": "add", "path": format!("{ext}:costCenter"), "value": "C1"}]),
        )
        .unwrap();
        assert_eq!(r[ext], json!({"department": "Ops", "costCenter": "C1"}));
        let r = patch(r, json!([{"op": "remove", "path": ext}])).unwrap();
        assert!(r.get(ext).is_none());
    }

    #[test]
    fn no_path_forms_merge_including_dotted_keys_and_extensions() {
        let r = patch(
            user(),
            json!([{"op": "replace", "value": {"active": false, "name.givenName": "B",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}}}]),
        )
        .unwrap();
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["name"]["givenName"], json!("B"));
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            json!("Ops")
        );
    }

    #[test]
    fn multi_valued_add_appends_without_duplicates_and_remove_filters() {
        let r = patch(
            user(),
            json!([{"op": "add", "path": "roles", "value": [{"value": "admin"}, {"value": "employee"}]}]),
        )
        .unwrap();
        assert_eq!(r["roles"], json!([{"value": "employee"}, {"value": "admin"}]));
        let r = patch(r, json!([{"op": "remove", "path": "roles[value eq \"employee\"]"}])).unwrap();
        assert_eq!(r["roles"], json!([{"value": "admin"}]));
        let r = patch(
            r,
            json!([{"op": "remove", "path": "roles", "value": [{"value": "admin"}]}]),
        )
        .unwrap();
        assert_eq!(r["roles"], json!([]));
        let r = patch(r, json!([{"op": "remove", "path": "roles"}])).unwrap();
        assert!(r.get("roles").is_none());
    }

    #[test]
    fn value_path_with_sub_attribute() {
        let r = patch(
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@w.test"}]),
        )
        .unwrap();
        assert_eq!(r["emails"], json!([{"value": "new@w.test", "type": "work"}]));
        // No home address yet: the element the filter describes is added.
        let r = patch(
            r,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@h.test"}]),
        )
        .unwrap();
        assert_eq!(r["emails"][1], json!({"type": "home", "value": "h@h.test"}));
        let e = patch(
            user(),
            json!([{"op": "replace", "path": "emails[value co \"x\"]", "value": {}}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some("noTarget"));
    }

    #[test]
    fn bad_operations_are_rejected() {
        let e = patch(user(), json!([{"op": "remove"}])).unwrap_err();
        assert_eq!(e.scim_type, Some("noTarget"));
        let e = patch(user(), json!([{"op": "move", "path": "a", "value": 1}])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidSyntax"));
        let e = patch(user(), json!([{"op": "add", "path": "emails[type eq", "value": 1}])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidPath"));
        let e = patch(user(), json!([{"op": "add", "value": 3}])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidValue"));
    }
}
