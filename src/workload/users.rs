//! The `[users]` section: the body of each created user and group (templates that carry the
//! run's marker, so cleanup finds them), their password, the users that exist before the load
//! (prepopulated, or from a feeder CSV) and the SCIM dialect. Owns [`Users`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;

use super::dialect;
use super::error::{Source, WorkloadError};
use super::fields::{count, span_of};
use super::limits;
use super::template::{Template, marker_stands_alone};

#[derive(Debug, Clone)]
pub struct Users {
    /// The user body (with `password` when `[users] password` is set).
    pub template: Template,
    /// The `userName` the template renders, to check what the target echoes.
    pub user_name: Template,
    /// The password each created user gets (`[users] password`), for login checks.
    pub password: Option<Template>,
    pub group_template: Template,
    pub prepopulate: usize,
    /// Existing users from the feeder: (userName, optional id).
    pub feeder: Vec<(String, Option<String>)>,
    /// What `modify_user` changes, where roles live, the PATCH style.
    pub dialect: dialect::Dialect,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UsersWire {
    #[serde(default)]
    pub template: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub group_template: Option<Spanned<toml::Value>>,
    /// Password set on created users (template placeholders allowed).
    #[serde(default)]
    pub password: Option<String>,
    /// Users created before the load starts, for journeys that only look up or modify.
    #[serde(default)]
    pub prepopulate: Option<Spanned<usize>>,
    /// A CSV of existing users (`userName` column, optional `id`) for lookup journeys.
    #[serde(default)]
    pub feeder: Option<String>,
    /// Extra placeholder values: `{name}` in templates.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `standard` (default) or `entra`: how PATCH requests are written.
    #[serde(default)]
    pub patch: Option<Spanned<String>>,
    /// What `modify_user` sets: attribute path = value template (default `{ title = "Title {seq}" }`).
    #[serde(default)]
    pub modify: Option<Spanned<BTreeMap<String, String>>>,
    /// Where roles live: `roles` (default), `entitlements`, an extension attribute, or `groups`.
    #[serde(default)]
    pub roles: Option<Spanned<String>>,
}

impl UsersWire {
    /// An ldap target says the shape of its entries in `[directory]`: the keys that shape SCIM
    /// requests are refused where they are written.
    pub fn refuse_scim_keys(&self, src: &Source) -> Result<(), WorkloadError> {
        let given = [
            ("template", span_of(&self.template)),
            ("patch", span_of(&self.patch)),
            ("modify", span_of(&self.modify)),
            ("roles", span_of(&self.roles)),
        ];
        match given.into_iter().find(|(_, s)| s.is_some()) {
            Some((key, span)) => Err(src.error(
                span,
                format!(
                    "users.{key} shapes SCIM requests; for an ldap target say it in [directory] (attributes, modify, roles)"
                ),
            )),
            None => Ok(()),
        }
    }
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub fn from_wire(src: &Source, u: UsersWire) -> Result<Users, WorkloadError> {
    let (template, user_name, password) = user_template(src, &u)?;
    let group_template = group_template(src, &u)?;
    let feeder = match &u.feeder {
        None => Vec::new(),
        Some(path) => {
            let full = src.dir().join(path);
            read_feeder(&full).map_err(|m| src.error(None, format!("users.feeder `{}`: {m}", full.display())))?
        }
    };
    Ok(Users {
        dialect: dialect(src, &u)?,
        template,
        user_name,
        password,
        group_template,
        prepopulate: match &u.prepopulate {
            Some(n) => count(src, n, "prepopulate", 0, limits::PREPOPULATE)?,
            None => 0,
        },
        feeder,
    })
}

/// A JSON body to send: a table, compiled against `[users] vars`.
fn compile(
    src: &Source,
    u: &UsersWire,
    v: Value,
    span: Option<std::ops::Range<usize>>,
    key: &str,
) -> Result<Template, WorkloadError> {
    if !v.is_object() {
        return Err(src.error(
            span.clone(),
            format!("`users.{key}` must be a table (the JSON body to send)"),
        ));
    }
    Template::compile(&v, &u.vars).map_err(|m| src.error(span, format!("users.{key}: {m}")))
}

/// The user body, its `userName` and its password: the marker where cleanup looks for it.
fn user_template(src: &Source, u: &UsersWire) -> Result<(Template, Template, Option<Template>), WorkloadError> {
    let (mut body, span) = match &u.template {
        Some(t) => (to_json(t.get_ref()), Some(t.span())),
        None => (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "{run_id}-{seq}@example.test",
                   "externalId": "{run_id}-{seq}", "name": {"givenName": "{first}", "familyName": "{last}", "formatted": "{first} {last}"},
                   "displayName": "{first} {last}", "emails": [{"value": "{run_id}-{seq}@example.test", "type": "work", "primary": true}],
                   "active": true}),
            None,
        ),
    };
    let user_name = body
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !user_name.contains("{run_id}") || !user_name.contains("{seq}") {
        return Err(src.error(
            span.clone(),
            "users.template: `userName` must contain `{run_id}` and `{seq}` (the run's marker, so cleanup finds every user it created and nothing else)",
        ));
    }
    if !marker_stands_alone(&user_name) {
        return Err(src.error(
            span.clone(),
            format!("users.template: in `userName` = \"{user_name}\", `{{run_id}}` must stand apart from letters, digits and other placeholders (e.g. \"{{run_id}}-{{seq}}@example.test\"): cleanup matches the run id as a whole token"),
        ));
    }
    if let Some(ext) = body.get("externalId").and_then(Value::as_str)
        && !ext.contains("{run_id}")
    {
        return Err(src.error(
            span.clone(),
            "users.template: `externalId` must contain `{run_id}` (the run's marker)",
        ));
    }
    let password = match &u.password {
        Some(p) => {
            body["password"] = Value::String(p.clone());
            Some(
                Template::compile(&Value::String(p.clone()), &u.vars)
                    .map_err(|m| src.error(None, format!("users.password: {m}")))?,
            )
        }
        None => None,
    };
    let user_name = Template::compile(&Value::String(user_name), &u.vars)
        .map_err(|m| src.error(span.clone(), format!("users.template: {m}")))?;
    Ok((compile(src, u, body, span, "template")?, user_name, password))
}

fn group_template(src: &Source, u: &UsersWire) -> Result<Template, WorkloadError> {
    let Some(t) = &u.group_template else {
        return compile(
            src,
            u,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "{run_id}-group-{seq}", "externalId": "{run_id}-group-{seq}"}),
            None,
            "group_template",
        );
    };
    let value = to_json(t.get_ref());
    let name = value.get("displayName").and_then(Value::as_str).unwrap_or_default();
    if !name.contains("{run_id}") || !marker_stands_alone(name) {
        return Err(src.error(
            Some(t.span()),
            "users.group_template: `displayName` must carry `{run_id}` apart from letters, digits and other placeholders (e.g. \"{run_id}-group-{seq}\"), so cleanup finds the groups the run created",
        ));
    }
    compile(src, u, value, Some(t.span()), "group_template")
}

/// `patch`, `modify` and `roles`; an error points at the key it is about.
fn dialect(src: &Source, u: &UsersWire) -> Result<dialect::Dialect, WorkloadError> {
    dialect::convert(
        u.patch.as_ref().map(|s| s.get_ref().as_str()),
        u.modify.as_ref().map(|s| s.get_ref()),
        u.roles.as_ref().map(|s| s.get_ref().as_str()),
        &u.vars,
    )
    .map_err(|m| {
        let at = |key: &str, s: Option<std::ops::Range<usize>>| m.starts_with(key).then_some(s).flatten();
        let span = at("users.patch", span_of(&u.patch))
            .or(at("users.roles", span_of(&u.roles)))
            .or(span_of(&u.patch))
            .or(span_of(&u.modify))
            .or(span_of(&u.roles));
        src.error(span, m)
    })
}

/// Reads a CSV with a `userName` column (and optionally `id`).
fn read_feeder(path: &Path) -> Result<Vec<(String, Option<String>)>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let user_col = col("userName").ok_or("no `userName` column")?;
    let id_col = col("id");
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", i + 2))?;
        let name = rec.get(user_col).unwrap_or_default().trim().to_string();
        if name.is_empty() {
            return Err(format!("row {}: empty userName", i + 2));
        }
        out.push((
            name,
            id_col
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        ));
    }
    if out.is_empty() {
        return Err("no users in the file".into());
    }
    Ok(out)
}
