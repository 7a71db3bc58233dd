//! How the built-in steps speak to a target whose schema and PATCH dialect differ from the
//! reference's: what `modify_user` changes (`[users] modify`), where roles live (`[users]
//! roles`: a multi-valued attribute such as `roles` or `entitlements`, an extension attribute,
//! or group membership), and the PATCH style (`[users] patch`: standard, or Entra-compatible).

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::Template;

/// `standard` (RFC 7644: lowercase `op`, JSON booleans) or `entra` (Microsoft Entra ID's
/// provisioning dialect: `"op": "Replace"`/`"Add"`/`"Remove"`, booleans as `"True"`/`"False"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchStyle {
    #[default]
    Standard,
    Entra,
}

impl PatchStyle {
    /// The `op` word for `op` (`add`, `replace`, `remove`).
    pub fn op(self, op: &'static str) -> &'static str {
        match (self, op) {
            (PatchStyle::Standard, o) => o,
            (PatchStyle::Entra, "add") => "Add",
            (PatchStyle::Entra, "replace") => "Replace",
            (PatchStyle::Entra, "remove") => "Remove",
            (PatchStyle::Entra, o) => o,
        }
    }

    /// A boolean value as JSON text.
    pub fn boolean(self, b: bool) -> &'static str {
        match (self, b) {
            (PatchStyle::Standard, true) => "true",
            (PatchStyle::Standard, false) => "false",
            (PatchStyle::Entra, true) => "\"True\"",
            (PatchStyle::Entra, false) => "\"False\"",
        }
    }
}

/// Where `assign_role:ROLE` puts a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roles {
    /// A multi-valued attribute with `value` sub-attributes (`roles`, `entitlements`, or an
    /// extension's `urn:…:roles`): PATCH add `[{"value": ROLE}]`, remove `attr[value eq ROLE]`.
    Attribute(String),
    /// Membership of the existing group whose `displayName` is the role (found when the run
    /// starts; a missing group fails the run before any load).
    Groups,
}

impl Default for Roles {
    fn default() -> Self {
        Roles::Attribute("roles".into())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dialect {
    pub patch: PatchStyle,
    /// `modify_user`: each attribute path and its value template (`{seq}` is fresh per change,
    /// so every modify changes the value).
    pub modify: Vec<(String, Template)>,
    pub roles: Roles,
}

impl Dialect {
    /// The attribute `modify_user` sets that probes can observe (`title`), with its template.
    pub fn observed_title(&self) -> Option<&Template> {
        self.modify
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case("title"))
            .map(|(_, t)| t)
    }
}

/// From `[users] patch`, `modify` and `roles`.
pub fn convert(
    patch: Option<&str>,
    modify: Option<&BTreeMap<String, String>>,
    roles: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Dialect, String> {
    let patch = match patch.map(str::trim) {
        None | Some("standard") => PatchStyle::Standard,
        Some("entra") => PatchStyle::Entra,
        Some(other) => {
            return Err(format!(
                "users.patch `{other}`: `standard` (RFC 7644) or `entra` (\"op\": \"Replace\", booleans as \"True\"/\"False\")"
            ));
        }
    };
    let modify = match modify {
        None => vec![(
            "title".to_string(),
            Template::compile(&Value::String("Title {seq}".into()), vars).map_err(|m| format!("users.modify: {m}"))?,
        )],
        Some(m) if m.is_empty() => {
            return Err(
                "users.modify is empty: name the attributes modify_user changes, e.g. { title = \"Engineer {seq}\" }"
                    .into(),
            );
        }
        Some(m) => m
            .iter()
            .map(|(attr, value)| {
                if attr.trim().is_empty() || attr.contains(['"', '[', ']']) {
                    return Err(format!("users.modify: `{attr}` is not an attribute path"));
                }
                if carries_the_marker(attr) {
                    return Err(format!(
                        "users.modify: `{attr}` carries the run's marker: a modify_user that changed it would leave users cleanup cannot find (change another attribute, e.g. title)"
                    ));
                }
                Template::compile(&Value::String(value.clone()), vars)
                    .map(|t| (attr.clone(), t))
                    .map_err(|m| format!("users.modify.{attr}: {m}"))
            })
            .collect::<Result<_, _>>()?,
    };
    let roles = match roles.map(str::trim) {
        None => Roles::default(),
        Some("groups") => Roles::Groups,
        Some(a) if !a.is_empty() && !a.contains(['"', '[', ']', ' ']) => Roles::Attribute(a.to_string()),
        Some(other) => {
            return Err(format!(
                "users.roles `{other}`: a multi-valued attribute (`roles`, `entitlements`, `urn:…:roles`) or `groups`"
            ));
        }
    };
    Ok(Dialect { patch, modify, roles })
}

/// Whether a SCIM attribute path names an attribute that carries the run's marker (`userName`,
/// `externalId`), in any case and however it is qualified (`urn:…:User:userName`,
/// `userName.x`): the one rule that keeps `modify_user` off them.
pub fn carries_the_marker(attr: &str) -> bool {
    let last = attr.rsplit(':').next().unwrap_or(attr);
    let name = last.split(['.', '[']).next().unwrap_or(last).trim();
    ["userName", "externalId"].iter().any(|m| name.eq_ignore_ascii_case(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_mistakes() {
        let d = convert(None, None, None, &BTreeMap::new()).unwrap();
        assert_eq!(
            (d.patch, &d.roles),
            (PatchStyle::Standard, &Roles::Attribute("roles".into()))
        );
        assert_eq!(
            d.modify.len(),
            1,
            "only title by default: nickName made a real server answer 500"
        );
        assert!(d.observed_title().is_some());
        assert_eq!(PatchStyle::Entra.op("replace"), "Replace");
        assert_eq!(PatchStyle::Entra.boolean(false), "\"False\"");
        assert!(
            convert(Some("azure"), None, None, &BTreeMap::new())
                .unwrap_err()
                .contains("entra")
        );
        assert!(
            convert(None, Some(&BTreeMap::new()), None, &BTreeMap::new())
                .unwrap_err()
                .contains("empty")
        );
        assert!(convert(None, None, Some("a b"), &BTreeMap::new()).is_err());
        let mut m = BTreeMap::new();
        m.insert("department".to_string(), "{nope}".to_string());
        assert!(
            convert(None, Some(&m), None, &BTreeMap::new())
                .unwrap_err()
                .contains("{nope}")
        );
        assert_eq!(
            convert(None, None, Some("groups"), &BTreeMap::new()).unwrap().roles,
            Roles::Groups
        );
    }
}
