//! The write probe's middle: the created user read back, changed (learning the PATCH dialect and
//! an attribute `modify_user` may change), disabled and re-enabled, and found by a filter on its
//! own `userName`. Every PATCH body is the engine's own (`steps::replace_op`/`active_op`), so what
//! was accepted here is byte for byte what a run sends. A refusal is something learnt, written
//! to the draft; an `Err` is a failure (the probe then deletes its user and `init` fails).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use super::Context;
use super::draft::{Draft, Entry, Found};
use crate::engine::targets::scim::steps::{active_op, patch_body, replace_op};
use crate::http::HttpClient;
use crate::http::client::encode_query;
use crate::vocab::CheckKind;
use crate::workload::dialect::PatchStyle;
use crate::workload::template::{Template, Vars};

/// The probe user as the create answered it, proven the run's: the only user deleted by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    pub id: String,
    pub user_name: String,
    /// `/Users/{id}`, built by `http::url::member`.
    pub path: String,
}

/// Attributes tried when the workload's own are refused, with their value templates: core
/// readWrite attributes a user has no constraint on.
const ALTERNATES: [(&str, &str); 3] = [
    ("title", "Title {seq}"),
    ("nickName", "Nick {seq}"),
    ("displayName", "Display {seq}"),
];

/// Read, modify, disable and re-enable, find: everything between the create and the delete.
pub async fn exercise(client: &HttpClient, cx: &Context<'_>, user: &Owned, draft: &mut Draft) -> Result<(), String> {
    read(client, user).await?;
    let mut style = None;
    modify(client, cx, user, draft, &mut style).await?;
    disable_enable(client, user, draft, &mut style).await?;
    if let Some(s) = style {
        let (name, why) = match s {
            PatchStyle::Standard => ("standard", "PATCH in RFC 7644's form was accepted"),
            PatchStyle::Entra => (
                "entra",
                "RFC 7644's lowercase PATCH was refused; Entra's \"Replace\" and \"True\"/\"False\" were accepted",
            ),
        };
        draft.heard(format!("[users] patch = \"{name}\": {why}"));
        draft.set(
            "users",
            Entry::new("patch", name)
                .why(why)
                .found(Found::equal().implied("standard")),
        );
    }
    let login = cx
        .workload
        .checks
        .as_ref()
        .is_some_and(|c| c.has(CheckKind::Login) || c.has(CheckKind::Revocation));
    draft.heard(match login {
        true => "a disabled user's token: not asked here (init signs no user in); the workload's revocation check judges it in a run",
        false => "a disabled user's token or bind: not asked: no login check",
    });
    find(client, user, draft).await
}

/// GET /Users/{id}: the created user, with its own id and the name the probe sent.
async fn read(client: &HttpClient, user: &Owned) -> Result<Value, String> {
    let r = client
        .call(Method::GET, &user.path, None)
        .await
        .map_err(|e| format!("GET of the probe user failed: {e}"))?;
    let status = r.status.as_u16();
    let v: Option<Value> = serde_json::from_slice(&r.body).ok();
    match v {
        // The user is ours only with our name too: a target answering with someone else's user
        // under our id is never PATCHed or deleted.
        Some(v)
            if status == 200
                && v.get("id").and_then(Value::as_str) == Some(user.id.as_str())
                && v.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&user.user_name)) =>
        {
            Ok(v)
        }
        _ => Err(format!(
            "GET of the probe user {} answered HTTP {status}, not the user: {}",
            user.id,
            crate::redact::sample_bytes(&r.body, true, 120)
        )),
    }
}

/// How a PATCH was answered: accepted (200/204), or refused with its status and answer.
type Answer = Result<PatchStyle, (u16, String)>;

/// PATCH `ops(style)` in the style learnt so far, or while none is, RFC 7644's then Entra's;
/// the first accepted one is the target's. `Err` for a failure that is no answer.
async fn patch(
    client: &HttpClient,
    user: &Owned,
    style: &mut Option<PatchStyle>,
    ops: impl Fn(PatchStyle) -> String,
) -> Result<Answer, String> {
    let styles: &[PatchStyle] = match style {
        Some(PatchStyle::Standard) => &[PatchStyle::Standard],
        Some(PatchStyle::Entra) => &[PatchStyle::Entra],
        None => &[PatchStyle::Standard, PatchStyle::Entra],
    };
    let mut refused = None;
    for &s in styles {
        let r = client
            .call(Method::PATCH, &user.path, Some(patch_body(&ops(s))))
            .await
            .map_err(|e| format!("PATCH of the probe user failed: {e}"))?;
        let status = r.status.as_u16();
        if matches!(status, 200 | 204) {
            *style = Some(s);
            return Ok(Ok(s));
        }
        refused.get_or_insert((status, crate::redact::sample_bytes(&r.body, true, 100)));
    }
    Ok(Err(refused.unwrap_or((0, String::new()))))
}

/// The attributes the workload's `modify_user` changes (the draft's, else the workload's; the
/// workload's always for `init --check`), each
/// with its value template's text (as written) and the template.
fn wanted(cx: &Context<'_>, draft: &Draft) -> Vec<(String, String, Template)> {
    let drafted: Vec<(String, String)> = draft
        .sections()
        .iter()
        .filter(|s| !s.array && s.name == "users")
        .flat_map(|s| &s.entries)
        .filter(|e| e.path.len() == 2 && e.path[0] == "modify")
        .filter_map(|e| Some((e.path[1].clone(), e.value.as_str()?.to_string())))
        .collect();
    let compile = |text: &str| Template::compile(&Value::String(text.into()), &BTreeMap::new()).ok();
    if !cx.checking && !drafted.is_empty() {
        return drafted
            .into_iter()
            .filter_map(|(a, t)| compile(&t).map(|c| (a, t, c)))
            .collect();
    }
    cx.workload
        .users
        .dialect
        .modify
        .iter()
        .map(|(a, t)| {
            let text = ALTERNATES
                .iter()
                .find(|(alt, _)| alt.eq_ignore_ascii_case(a))
                .map_or_else(|| format!("{a} {{seq}}"), |(_, text)| text.to_string());
            (a.clone(), text, t.clone())
        })
        .collect()
}

/// Each attribute `modify_user` would change, PATCHed alone; a refused one is replaced by the
/// first alternate the target takes, and the draft says why.
async fn modify(
    client: &HttpClient,
    cx: &Context<'_>,
    user: &Owned,
    draft: &mut Draft,
    style: &mut Option<PatchStyle>,
) -> Result<(), String> {
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    let wanted = wanted(cx, draft);
    let alternates = ALTERNATES.iter().filter_map(|(a, t)| {
        let tried = wanted.iter().any(|(w, _, _)| w.eq_ignore_ascii_case(a));
        let c = Template::compile(&Value::String((*t).into()), &BTreeMap::new()).ok()?;
        (!tried).then(|| (a.to_string(), t.to_string(), c))
    });
    let candidates: Vec<(String, String, Template, bool)> = wanted
        .iter()
        .cloned()
        .map(|(a, t, c)| (a, t, c, true))
        .chain(alternates.map(|(a, t, c)| (a, t, c, false)))
        .collect();
    for (seq, (attr, text, template, own)) in (2u64..).zip(candidates) {
        if !own && !kept.is_empty() {
            break;
        }
        let vars = Vars {
            run_id: cx.run_id.as_str(),
            seq,
            admin: 0,
        };
        let value = template.render(&vars);
        match patch(client, user, style, |s| replace_op(s, &attr, &value)).await? {
            Ok(_) => match applied(client, user, &attr, &value).await? {
                true => kept.push((attr, text)),
                false => refused.push((attr, "was answered as done, but a read shows it unchanged".into())),
            },
            Err((status, body)) => refused.push((attr, format!("answered {status}: {body}"))),
        }
    }
    for (attr, why) in &refused {
        draft.heard(format!("PATCH of {attr} {why}"));
        let status = why.split(':').next().unwrap_or(why);
        draft.forbid(
            "users",
            vec!["modify".into(), attr.clone()],
            format!("PATCH of {attr} {status}"),
        );
        if !attr.contains('.') {
            draft.remove("users", &format!("modify.{attr}"));
        }
    }
    if kept.is_empty() {
        let tried: Vec<&str> = refused.iter().map(|(a, _)| a.as_str()).collect();
        draft.unsupported(
            "modify_user",
            format!("every PATCH of {} was refused", tried.join(", ")),
        );
        return Ok(());
    }
    let uses: Vec<&str> = kept.iter().map(|(a, _)| a.as_str()).collect();
    let why = match refused.first() {
        Some((attr, why)) => {
            let status = why.split(':').next().unwrap_or(why);
            format!("PATCH of {attr} {status}: modify uses {}", uses.join(", "))
        }
        None => format!("PATCH of {} was accepted and read back", uses.join(", ")),
    };
    draft.heard(format!("[users] modify: {why}"));
    for (attr, text) in kept {
        draft.set(
            "users",
            Entry::at(vec!["modify".into(), attr], text)
                .why(why.clone())
                .found(Found::present()),
        );
    }
    Ok(())
}

/// Whether a read shows a top-level attribute at the value PATCHed (a path with a schema or a
/// sub-attribute is taken as applied: it is not read here).
async fn applied(client: &HttpClient, user: &Owned, attr: &str, value: &str) -> Result<bool, String> {
    if attr.contains([':', '.']) {
        return Ok(true);
    }
    let v = read(client, user).await?;
    let want: Option<Value> = serde_json::from_str(value).ok();
    Ok(get_ci(&v, attr) == want.as_ref())
}

/// Disable, read `active` false; enable, read it true. A refusal leaves the step out.
async fn disable_enable(
    client: &HttpClient,
    user: &Owned,
    draft: &mut Draft,
    style: &mut Option<PatchStyle>,
) -> Result<(), String> {
    for active in [false, true] {
        let step = if active { "enable_user" } else { "disable_user" };
        match patch(client, user, style, |s| active_op(s, active)).await? {
            Err((status, body)) => {
                let why = format!("PATCH active={active} answered {status}: {body}");
                draft.heard(why.clone());
                draft.unsupported(step, why.clone());
                if !active {
                    draft.unsupported("enable_user", why);
                    return Ok(());
                }
            }
            Ok(_) => {
                let v = read(client, user).await?;
                match active_of(&v) {
                    Some(a) if a == active => draft.heard(format!("PATCH active={active} read back as {active}")),
                    other => {
                        let why = format!(
                            "PATCH active={active} was answered as done, but the user reads active={}",
                            other.map_or("(absent)".to_string(), |a| a.to_string())
                        );
                        draft.heard(why.clone());
                        draft.unsupported(step, why)
                    }
                };
            }
        }
    }
    Ok(())
}

/// `filter=userName eq "NAME"`: honoured when it lists the probe user alone.
async fn find(client: &HttpClient, user: &Owned, draft: &mut Draft) -> Result<(), String> {
    let filter = format!("userName eq {}", Value::String(user.user_name.clone()));
    let path = format!("/Users?filter={}", encode_query(&filter));
    let r = client
        .call(Method::GET, &path, None)
        .await
        .map_err(|e| format!("GET /Users?filter=… failed: {e}"))?;
    let status = r.status.as_u16();
    let list: Option<Value> = serde_json::from_slice(&r.body).ok();
    let ids: Vec<&str> = list
        .as_ref()
        .and_then(|l| l.get("Resources"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| u.get("id").and_then(Value::as_str))
        .collect();
    let total = list
        .as_ref()
        .and_then(|l| l.get("totalResults"))
        .and_then(Value::as_u64);
    let why = match (status, ids.as_slice()) {
        (200, [one]) if *one == user.id && total.unwrap_or(1) == 1 => {
            draft.heard(format!("{filter}: honoured (lists the probe user alone)"));
            return Ok(());
        }
        (200, []) => format!("{filter} lists nothing for a user that exists"),
        (200, _) => format!(
            "{filter} is ignored: it lists {} users (totalResults {})",
            ids.len(),
            total.map_or("absent".into(), |t| t.to_string())
        ),
        (s, _) => format!("{filter} answered HTTP {s}"),
    };
    draft.heard(format!("{why}: find_user is left out"));
    draft.unsupported("find_user", why);
    Ok(())
}

/// Whether `body` (a ListResponse) lists `id`.
pub fn lists_id(body: &[u8], id: &str) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|l| l.get("Resources").cloned())
        .and_then(|r| r.as_array().cloned())
        .is_some_and(|r| r.iter().any(|u| u.get("id").and_then(Value::as_str) == Some(id)))
}

/// A user's `active`, as a boolean or Entra's "True"/"False".
pub fn active_of(user: &Value) -> Option<bool> {
    match get_ci(user, "active")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A top-level attribute, its name compared without regard to case (as SCIM's are).
fn get_ci<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}
