//! `init --check`: an existing workload read against what discovery found, setting by setting.
//! Only *found* settings are compared (chosen defaults are a team's to change), each by the rule
//! discovery gave it; a journey step the target cannot take is named with its journey.

use toml::{Table, Value};

use super::draft::{Draft, Entry, Rule};

/// One setting the target disagrees with.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// Where: `[target] auth.client_auth`, or `journey "lifecycle"`.
    pub key: String,
    /// What the workload says (`None` when it leaves the key out).
    pub workload: Option<String>,
    /// What `init` would write, and why.
    pub target: String,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.workload {
            Some(w) => write!(f, "{}: the workload says {w}; {}", self.key, self.target),
            None => write!(f, "{}: the workload leaves it out; {}", self.key, self.target),
        }
    }
}

/// Every found setting of `draft` that the workload `existing` (its TOML, parsed) contradicts.
pub fn disagreements(draft: &Draft, existing: &Table) -> Vec<Disagreement> {
    let mut out = Vec::new();
    for s in draft.sections().iter().filter(|s| !s.array) {
        let table = match s.name.is_empty() {
            true => Some(existing),
            false => lookup_table(existing, &s.name),
        };
        for e in &s.entries {
            if let Some(d) = judge(&s.name, e, table) {
                out.push(d);
            }
        }
    }
    out.extend(unsupported_steps(draft, existing));
    for f in &draft.forbidden {
        let table = lookup_table(existing, &f.table);
        if let Some(v) = table.and_then(|t| lookup(t, &f.path)) {
            out.push(Disagreement {
                key: format!("[{}] {}", f.table, f.path.join(".")),
                workload: Some(v.to_string()),
                target: format!("the target refuses it: {}", f.why),
            });
        }
    }
    out
}

fn judge(table_name: &str, e: &Entry, table: Option<&Table>) -> Option<Disagreement> {
    let found = e.found.as_ref()?;
    let has = table.and_then(|t| lookup(t, &e.path));
    let key = match table_name.is_empty() {
        true => e.key(),
        false => format!("[{table_name}] {}", e.key()),
    };
    let why = e.why.clone().unwrap_or_else(|| "discovered".into());
    let effective = has.or(found.implied.as_ref());
    // A workload that leaves out the whole table holding the key (no `template` at all) has its
    // default there, which `implied` stands for.
    let parent_absent = table.is_none_or(|t| lookup_parent(t, &e.path).is_none());
    let ok = match (&found.rule, effective) {
        (Rule::Present, _) => has.is_some_and(|v| !is_empty(v)) || (parent_absent && found.implied.is_some()),
        (Rule::Equal, Some(v)) => same(v, &e.value),
        (Rule::OneOf(values), Some(v)) => values.iter().any(|a| same(v, a)),
        (_, None) => false,
    };
    (!ok).then(|| Disagreement {
        key,
        workload: has.map(|v| v.to_string()),
        target: match &found.rule {
            Rule::Present => format!("the target needs it ({why})"),
            _ => format!("the target: {why} (init writes {})", e.value),
        },
    })
}

/// Journeys that have a step the target cannot take.
fn unsupported_steps(draft: &Draft, existing: &Table) -> Vec<Disagreement> {
    let journeys = existing.get("journey").and_then(Value::as_array);
    let mut out = Vec::new();
    for j in journeys.into_iter().flatten() {
        let name = j.get("name").and_then(Value::as_str).unwrap_or("?");
        let steps = j.get("steps").and_then(Value::as_array).into_iter().flatten();
        for step in steps.filter_map(Value::as_str).map(str::trim) {
            // `assign_role:employee` is the step `assign_role`.
            let bare = step.split(':').next().unwrap_or(step);
            if let Some(u) = draft.unsupported.iter().find(|u| u.step == bare || u.step == step) {
                out.push(Disagreement {
                    key: format!("journey \"{name}\""),
                    workload: Some(format!("step `{step}`")),
                    target: format!("the target cannot take it: {}", u.why),
                });
            }
        }
    }
    out
}

fn lookup_table<'a>(t: &'a Table, dotted: &str) -> Option<&'a Table> {
    dotted.split('.').try_fold(t, |t, k| t.get(k)?.as_table())
}

fn lookup_parent<'a>(t: &'a Table, path: &[String]) -> Option<&'a Table> {
    let (_, parents) = path.split_last()?;
    parents.iter().try_fold(t, |t, k| t.get(k)?.as_table())
}

fn lookup<'a>(t: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let parent = parents.iter().try_fold(t, |t, k| t.get(k)?.as_table())?;
    parent.get(last)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Equal values, strings compared without regard to ASCII case (attribute names, methods).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::super::draft::Found;
    use super::*;

    fn draft() -> Draft {
        let mut d = Draft::new();
        d.set(
            "target",
            Entry::new("auth.client_auth", "post")
                .why("the token endpoint takes client_secret_post only")
                .found(Found::equal().implied("basic")),
        );
        d.set(
            "target",
            Entry::new("keep_alive", false)
                .why("closes every connection")
                .found(Found::equal().implied(true)),
        );
        d.set(
            "users",
            Entry::new("template.emails", "x")
                .found(Found::present())
                .why("required in /Schemas"),
        );
        d.set("load", Entry::new("admins", 2));
        d.unsupported("create_group", "no /Groups resource type");
        d.forbid(
            "users",
            vec!["modify".into(), "nickName".into()],
            "PATCH of nickName answered 500",
        );
        d
    }

    #[test]
    fn a_workload_that_agrees_has_no_disagreement() {
        let w: Table = toml::from_str(
            r#"
            [target]
            auth = { kind = "oauth2-client-credentials", client_auth = "POST" }
            keep_alive = false
            [load]
            admins = 50
            [users]
            template = { userName = "x", emails = [{ value = "y" }] }
            [[journey]]
            name = "a"
            steps = ["create_user", "assign_role:x"]
            "#,
        )
        .unwrap();
        assert_eq!(disagreements(&draft(), &w), vec![]);
    }

    #[test]
    fn a_default_that_holds_a_required_attribute_stands_for_it() {
        let mut d = Draft::new();
        d.set(
            "users",
            Entry::new("template.emails", "x").found(Found::present().implied(true)),
        );
        d.set("users", Entry::new("template.nickName", "x").found(Found::present()));
        let absent: Table = toml::from_str("[users]\npassword = \"x\"").unwrap();
        let keys: Vec<String> = disagreements(&d, &absent).into_iter().map(|d| d.key).collect();
        assert_eq!(
            keys,
            ["[users] template.nickName"],
            "the default template has emails, not nickName"
        );
        let written: Table = toml::from_str("[users]\ntemplate = { userName = \"x\" }").unwrap();
        assert_eq!(
            disagreements(&d, &written).len(),
            2,
            "a template of its own must carry both"
        );
    }

    #[test]
    fn each_contradiction_is_named() {
        let w: Table = toml::from_str(
            r#"
            [target]
            auth = { kind = "oauth2-client-credentials" }
            [users]
            template = { userName = "x" }
            modify = { nickName = "n" }
            [[journey]]
            name = "groups"
            steps = ["create_user", "create_group"]
            "#,
        )
        .unwrap();
        let d = disagreements(&draft(), &w);
        let keys: Vec<&str> = d.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "[target] auth.client_auth",
                "[target] keep_alive",
                "[users] template.emails",
                "journey \"groups\"",
                "[users] modify.nickName"
            ]
        );
        assert!(d[0].to_string().contains("client_secret_post only"), "{}", d[0]);
    }
}
