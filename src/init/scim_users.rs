//! `[users]` from what a SCIM target's `/Schemas` says of its User: the template (a plausible
//! value for each attribute it requires, by type; never an attribute clients cannot write),
//! what `modify_user` changes (a readWrite string, `title` where it is one) and where roles
//! live (`roles`, else `entitlements`).

use toml::{Table, Value};

use super::draft::{Draft, Entry, Found};
use crate::engine::targets::scim::schemas::{Attribute, CORE_USER};
use crate::workload::dialect::carries_the_marker;

/// What a created user carries when the target requires nothing more, in this order.
const BASE: [&str; 6] = ["userName", "externalId", "name", "displayName", "emails", "active"];

/// Writes `[users]` from the User schema's attributes (`None`: the target publishes none).
pub fn write(attrs: Option<&[Attribute]>, groups: bool, draft: &mut Draft) {
    let Some(attrs) = attrs else {
        draft.comment(
            "users",
            &["The target publishes no User schema: the usual attributes; add what its creates ask for."],
        );
        draft.set("users", Entry::new("template.schemas", vec![CORE_USER]));
        for name in BASE {
            if let Some(v) = known(name) {
                draft.set("users", Entry::new(&format!("template.{name}"), v));
            }
        }
        return;
    };
    template(attrs, draft);
    modify(attrs, draft);
    roles(attrs, groups, draft);
}

/// The attributes of the template a workload sends when it sets none (`workload::users`).
const DEFAULT_TEMPLATE: [&str; 7] = [
    "schemas",
    "userName",
    "externalId",
    "name",
    "displayName",
    "emails",
    "active",
];

fn find<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

fn template(attrs: &[Attribute], draft: &mut Draft) {
    draft.comment(
        "users",
        &["The user each create_user sends: what the target's /Schemas requires, and the usual attributes it knows."],
    );
    draft.set("users", Entry::new("template.schemas", vec![CORE_USER]));
    let mut written: Vec<String> = Vec::new();
    // `externalId` is common to every resource (RFC 7643 §3.1), so never in the User schema.
    let base = BASE
        .iter()
        .filter_map(|n| match *n {
            "externalId" => None,
            n => find(attrs, n),
        })
        .filter(|a| a.writable() && a.mutability != "immutable");
    let required = attrs.iter().filter(|a| a.required && a.writable());
    for a in base.chain(required) {
        if written.iter().any(|w| w.eq_ignore_ascii_case(&a.name)) {
            continue;
        }
        written.push(a.name.clone());
        if a.name.eq_ignore_ascii_case("password") {
            // The workload sets the password of each created user from `[users] password`.
            draft.set(
                "users",
                Entry::new("password", "Pw-{run_id}-{seq}!")
                    .why("password is required in /Schemas")
                    .found(Found::present()),
            );
            continue;
        }
        let mut e = Entry::at(vec!["template".into(), a.name.clone()], value_for(a));
        if a.required {
            let why = match a.mutability.as_str() {
                "immutable" => format!("{} is required in /Schemas (immutable: set at create only)", a.name),
                _ => format!("{} is required in /Schemas", a.name),
            };
            e = e.why(why);
            // Every template has a userName (validate refuses one without): nothing to check.
            if !a.name.eq_ignore_ascii_case("userName") {
                // A workload without a template of its own sends the default one, which has these.
                let in_default = DEFAULT_TEMPLATE.iter().any(|d| d.eq_ignore_ascii_case(&a.name));
                e = e.found(match in_default {
                    true => Found::present().implied(true),
                    false => Found::present(),
                });
            }
        }
        draft.set("users", e);
        if a.name == "userName" && !written.iter().any(|w| w == "externalId") {
            written.push("externalId".into());
            draft.set("users", Entry::new("template.externalId", "{run_id}-{seq}"));
        }
    }
    let never: Vec<&str> = attrs
        .iter()
        .filter(|a| a.mutability == "readOnly" && BASE.iter().any(|b| b.eq_ignore_ascii_case(&a.name)))
        .map(|a| a.name.as_str())
        .collect();
    if !never.is_empty() {
        draft.heard(format!("/Schemas marks {} readOnly: never written", never.join(", ")));
    }
}

/// The value a created user gets for `a`: the usual one for the attributes every IdP knows,
/// else one of its type.
pub fn value_for(a: &Attribute) -> Value {
    if let Some(v) = known(&a.name) {
        return match (v, a.multi_valued) {
            (Value::Array(_), false) | (Value::Table(_), true) => by_type(a),
            (v, _) => v,
        };
    }
    by_type(a)
}

fn known(name: &str) -> Option<Value> {
    let s = |v: &str| Value::String(v.into());
    Some(match name {
        "userName" => s("{run_id}-{seq}@example.test"),
        "externalId" => s("{run_id}-{seq}"),
        "displayName" => s("{first} {last}"),
        "nickName" => s("{first}"),
        "title" => s("Title {seq}"),
        "userType" => s("Employee"),
        "preferredLanguage" => s("en"),
        "locale" => s("en-US"),
        "timezone" => s("Etc/UTC"),
        "active" => Value::Boolean(true),
        "name" => {
            let mut t = Table::new();
            t.insert("givenName".into(), s("{first}"));
            t.insert("familyName".into(), s("{last}"));
            t.insert("formatted".into(), s("{first} {last}"));
            Value::Table(t)
        }
        "emails" => Value::Array(vec![Value::Table(item("{run_id}-{seq}@example.test", true))]),
        "phoneNumbers" => Value::Array(vec![Value::Table(item("+1 555 0100", true))]),
        _ => return None,
    })
}

/// `{ value, type = "work", primary }`: one item of a multi-valued attribute.
fn item(value: &str, primary: bool) -> Table {
    let mut t = Table::new();
    t.insert("value".into(), Value::String(value.into()));
    t.insert("type".into(), Value::String("work".into()));
    if primary {
        t.insert("primary".into(), Value::Boolean(true));
    }
    t
}

fn scalar(kind: &str) -> Value {
    match kind {
        "boolean" => Value::Boolean(true),
        "integer" => Value::Integer(1),
        "decimal" => Value::Float(1.0),
        "dateTime" => Value::String("2026-01-01T00:00:00Z".into()),
        "reference" => Value::String("https://example.test/{run_id}-{seq}".into()),
        "binary" => Value::String("cHJvdmJlbmNo".into()),
        _ => Value::String("{run_id}-{seq}".into()),
    }
}

/// A value of `a`'s type: a complex one holds `value` (and `type`/`primary` where known) and
/// each required sub-attribute; a multi-valued one is a list of one.
fn by_type(a: &Attribute) -> Value {
    let one = match a.kind.as_str() {
        "complex" => {
            let mut t = Table::new();
            for sub in &a.sub {
                let v = match sub.name.as_str() {
                    "value" => Some(scalar(&sub.kind)),
                    "type" if a.multi_valued => Some(Value::String("work".into())),
                    "primary" if a.multi_valued => Some(Value::Boolean(true)),
                    _ if sub.required && sub.writable() => Some(known(&sub.name).unwrap_or_else(|| scalar(&sub.kind))),
                    _ => None,
                };
                if let Some(v) = v.filter(|_| sub.writable()) {
                    t.insert(sub.name.clone(), v);
                }
            }
            if a.name == "name" {
                for (k, v) in [("givenName", "{first}"), ("familyName", "{last}")] {
                    if a.sub.iter().any(|s| s.name == k && s.writable()) {
                        t.insert(k.into(), Value::String(v.into()));
                    }
                }
            }
            Value::Table(t)
        }
        kind => scalar(kind),
    };
    match a.multi_valued {
        true => Value::Array(vec![one]),
        false => one,
    }
}

/// What `modify_user` changes: `title` when the target lets clients change it, else another
/// readWrite string.
fn modify(attrs: &[Attribute], draft: &mut Draft) {
    let changeable =
        |a: &&Attribute| a.mutability == "readWrite" && !a.multi_valued && a.kind == "string" && !a.required;
    if let Some(a) = find(attrs, "title").filter(changeable) {
        draft.set(
            "users",
            Entry::at(vec!["modify".into(), a.name.clone()], "Title {seq}")
                .why("title is a readWrite string in /Schemas"),
        );
        return;
    }
    let other = ["nickName", "displayName", "userType", "preferredLanguage"]
        .iter()
        .filter_map(|n| find(attrs, n))
        .find(changeable)
        .or_else(|| {
            attrs
                .iter()
                .filter(|a| !a.name.eq_ignore_ascii_case("password") && !carries_the_marker(&a.name))
                .find(changeable)
        });
    match other {
        Some(a) => {
            let why = format!(
                "/Schemas has no readWrite title: modify_user changes {}, a readWrite string",
                a.name
            );
            draft.heard(why.clone());
            draft.set(
                "users",
                Entry::at(vec!["modify".into(), a.name.clone()], format!("{} {{seq}}", a.name))
                    .why(why)
                    .found(Found::present()),
            );
        }
        None => {
            draft.unsupported(
                "modify_user",
                "/Schemas has no readWrite string attribute of the User to change",
            );
        }
    }
}

/// `roles` (the default) when the User has it, else `entitlements`; a workload may also use
/// group membership where the target has groups.
fn roles(attrs: &[Attribute], groups: bool, draft: &mut Draft) {
    let multi = |n: &str| find(attrs, n).filter(|a| a.multi_valued && a.mutable());
    let mut takes: Vec<Value> = ["roles", "entitlements"]
        .into_iter()
        .filter(|n| multi(n).is_some())
        .map(|n| Value::String(n.into()))
        .collect();
    if groups {
        takes.push(Value::String("groups".into()));
    }
    let chosen = match (multi("roles"), multi("entitlements")) {
        (Some(_), _) => "roles",
        (None, Some(_)) => "entitlements",
        (None, None) => {
            let why = "/Schemas has neither roles nor entitlements on the User";
            draft.heard(format!("{why}: assign_role and remove_role are left out"));
            draft.unsupported("assign_role", why);
            draft.unsupported("remove_role", why);
            return;
        }
    };
    draft.set(
        "users",
        Entry::new("roles", chosen)
            .why(format!("{chosen} is a multi-valued readWrite attribute in /Schemas"))
            .found(Found::one_of(takes).implied("roles")),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::targets::scim::schemas::attributes;

    fn draft_of(schema: serde_json::Value) -> (Draft, toml::Table) {
        let mut d = Draft::new();
        write(Some(&attributes(&schema)), true, &mut d);
        let t: toml::Table = toml::from_str(&d.render()).unwrap();
        (d, t)
    }

    #[test]
    fn required_attributes_get_a_value_of_their_type_and_read_only_ones_none() {
        let (d, t) = draft_of(json!({"attributes": [
            {"name": "userName", "type": "string", "required": true},
            {"name": "emails", "type": "complex", "multiValued": true, "required": true,
             "subAttributes": [{"name": "value", "type": "string"}, {"name": "type", "type": "string"},
                               {"name": "primary", "type": "boolean"}]},
            {"name": "employeeCode", "type": "integer", "required": true},
            {"name": "active", "type": "boolean", "mutability": "readOnly"},
            {"name": "title", "type": "string", "mutability": "immutable"},
            {"name": "nickName", "type": "string"},
            {"name": "entitlements", "type": "complex", "multiValued": true}]}));
        let u = &t["users"];
        assert_eq!(u["template"]["userName"].as_str(), Some("{run_id}-{seq}@example.test"));
        assert_eq!(u["template"]["emails"][0]["primary"].as_bool(), Some(true));
        assert_eq!(u["template"]["emails"][0]["type"].as_str(), Some("work"));
        assert_eq!(u["template"]["employeeCode"].as_integer(), Some(1));
        assert!(u["template"].get("active").is_none(), "readOnly is never written");
        assert_eq!(u["modify"]["nickName"].as_str(), Some("nickName {seq}"));
        assert!(u["modify"].get("title").is_none(), "immutable title is not modified");
        assert_eq!(u["roles"].as_str(), Some("entitlements"));
        let e = d.entry("users", &["template", "employeeCode"]).unwrap();
        assert_eq!(e.found, Some(Found::present()));
        assert!(d.supports("assign_role"));
    }

    #[test]
    fn the_reference_schema_keeps_the_defaults() {
        let (d, t) = draft_of(json!({"attributes": [
            {"name": "userName", "type": "string", "required": true},
            {"name": "title", "type": "string"},
            {"name": "roles", "type": "complex", "multiValued": true}]}));
        assert_eq!(t["users"]["modify"]["title"].as_str(), Some("Title {seq}"));
        assert_eq!(t["users"]["roles"].as_str(), Some("roles"));
        assert!(d.entry("users", &["modify", "title"]).unwrap().found.is_none());
    }
}
