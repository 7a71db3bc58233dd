//! The SCIM write probe (`--write-probe` only): one test user carrying the run's marker, created,
//! read, changed, disabled and re-enabled, looked for by filter, deleted and read back as gone,
//! all through the run's own client (its egress rule, body limit and URL builder). What it learns
//! goes into the draft: the PATCH dialect (`[users] patch`), which attribute `modify_user` can
//! change (`[users] modify`), whether `find_user`'s filter is honoured, and how a delete shows.
//!
//! Ownership is the run's (`engine/targets/scim/steps.rs`, `ledger.rs`): the one user deleted by
//! id is the one whose id the create answered together with the `userName` the probe sent, which
//! carries the run id as a whole token; an id that cannot be one path segment is never sent. When
//! the create's answer names anybody else, nothing is deleted by id: the run's own marker sweep
//! (`provbench cleanup`'s, whole-token matches only) looks for what the create may have made.
//! "Gone" is the run's read-back rule ([`readback::confirm`]: 404/410 only), so a target that
//! soft-deletes fails `init` here rather than every run's cleanup later. On any failure after the
//! create was sent, the user is still deleted, and `init` fails naming the id and the command.
//!
//! The steps between the create and the delete are in [`super::scim_probe_steps`].

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use tokio::time::{Duration, Instant};

use super::Context;
use super::draft::{Draft, Entry};
use super::scim_probe_steps::{self as steps, Owned};
use crate::engine::targets::readback::{self, PATIENCE};
use crate::engine::targets::requests;
use crate::engine::targets::scim::sweep;
use crate::http::HttpClient;
use crate::http::client::encode_query;
use crate::ledger::{Created, RunId};
use crate::workload::Workload;
use crate::workload::overrides::Overrides;
use crate::workload::template::Vars;

#[derive(Deserialize)]
struct Answered {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "userName")]
    user_name: Option<String>,
}

pub async fn probe(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let client = cx
        .target
        .http_client()
        .context("the write probe needs the SCIM target's HTTP client")?;
    let (body, sent) = probe_user(cx, draft)?;
    let mut failure: Option<String> = None;
    let mut left: Vec<String> = Vec::new();
    let mut made = false;
    super::announce(cx, &sent);
    let created = tokio::select! {
        created = create(&client, cx.run_id, body, &sent) => created,
        () = cx.stop.cancelled() => Err("interrupted during the create".to_string()),
    };
    match created {
        Ok(user) => {
            made = true;
            draft.heard(format!(
                "POST /Users created the probe user {} (id {})",
                user.user_name, user.id
            ));
            // Interrupted (Ctrl-C, SIGTERM, SIGHUP): straight to the delete, never cut short.
            let exercised = tokio::select! {
                exercised = steps::exercise(&client, cx, &user, draft) => exercised,
                () = cx.stop.cancelled() => Err("interrupted".to_string()),
            };
            if let Err(why) = exercised {
                failure = Some(why);
            }
            if let Err(why) = remove(&client, &user, draft).await {
                left.push(format!("user {} ({}): {why}", user.id, user.user_name));
            }
        }
        Err(why) => {
            // The create may still have made a user (a lost answer, somebody else's id): the
            // run's own sweep finds only what carries the marker as a whole token.
            let report = sweep::sweep(client.clone(), cx.run_id, Instant::now() + PATIENCE * 2).await;
            left.extend(
                report
                    .left
                    .iter()
                    .map(|l| format!("{} {} ({}): {}", l.kind, l.id, l.name, l.reason)),
            );
            left.extend(report.unsearchable.iter().map(|u| format!("not searched: {u}")));
            failure = Some(format!("{why}; the marker sweep afterwards: {}", report.counts()));
        }
    }
    if failure.is_none() && left.is_empty() {
        draft.heard(format!(
            "the probe user {sent} was deleted and read back as gone: nothing of the probe is left"
        ));
        return Ok(());
    }
    let mut message = format!("the write probe (run id {}) failed", cx.run_id);
    if let Some(why) = &failure {
        message.push_str(&format!(": {why}"));
    }
    match left.is_empty() {
        true if made => message.push_str("; the probe user was deleted and read back as gone"),
        true => message.push_str("; the marker sweep found nothing of the probe's left"),
        false => message.push_str(&format!(
            "; LEFT ON THE TARGET: {}; remove it with `{}`",
            left.join("; "),
            cleanup_command(cx, &client, draft)
        )),
    }
    anyhow::bail!(message)
}

/// The body the workload's `[users] template` renders for the probe (the draft's, when
/// discovery wrote one, else the workload's; the workload's always for `init --check`), and the
/// `userName` in it.
fn probe_user(cx: &Context<'_>, draft: &Draft) -> anyhow::Result<(Bytes, String)> {
    let drafted = match cx.checking {
        true => None,
        false => drafted_users(draft)?,
    };
    let users = &drafted.as_ref().unwrap_or(cx.workload).users;
    let vars = Vars {
        run_id: cx.run_id.as_str(),
        seq: 1,
        admin: 0,
    };
    let user_name: String = serde_json::from_str(&users.user_name.render(&vars))
        .context("the user template's userName does not render to a string")?;
    anyhow::ensure!(
        cx.run_id.marks(&user_name),
        "the probe user's name {user_name:?} does not carry the run id {} as a whole token",
        cx.run_id
    );
    Ok((Bytes::from(users.template.render(&vars)), user_name))
}

/// A workload holding only the draft's `[users]` template, vars and password, when discovery
/// wrote any (a required attribute): what the written workload's creates will send.
fn drafted_users(draft: &Draft) -> anyhow::Result<Option<Workload>> {
    let keys = ["template", "vars", "password"];
    let entries: Vec<&Entry> = draft
        .sections()
        .iter()
        .filter(|s| !s.array && s.name == "users")
        .flat_map(|s| &s.entries)
        .filter(|e| e.path.first().is_some_and(|k| keys.contains(&k.as_str())))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let mut d = Draft::new();
    for e in entries {
        d.set("users", e.clone());
    }
    d.set("", Entry::new("name", "provbench-init-probe"));
    d.set("target", Entry::new("kind", "embedded"));
    d.set("load", Entry::new("model", "closed"));
    d.set("load", Entry::new("admins", 1));
    d.set("load", Entry::new("iterations", 1));
    d.push(
        "journey",
        vec![],
        vec![Entry::new("name", "probe"), Entry::new("steps", vec!["create_user"])],
    );
    let w = Workload::parse(Path::new("provbench init"), &d.render(), &Overrides::default())
        .context("the drafted [users] template")?;
    Ok(Some(w))
}

/// POST /Users, and the user it made when the answer proves it the probe's.
async fn create(client: &HttpClient, run_id: &RunId, body: Bytes, sent: &str) -> Result<Owned, String> {
    let reply = client
        .call(Method::POST, "/Users", Some(body))
        .await
        .map_err(|e| format!("POST /Users failed: {e}"))?;
    let status = reply.status.as_u16();
    if !matches!(status, 200 | 201) {
        return Err(format!(
            "POST /Users answered HTTP {status}: {}",
            crate::redact::sample_bytes(&reply.body, true, 160)
        ));
    }
    let a: Answered = serde_json::from_slice(&reply.body).map_err(|e| {
        format!(
            "the create's answer is not a SCIM user ({e}): {}",
            crate::redact::sample_bytes(&reply.body, true, 120)
        )
    })?;
    let id = a.id.ok_or("the create's answer has no id")?;
    owned(run_id, sent, id, a.user_name)
}

/// The run's ownership rule for an answered create: the id is the probe user's only when the
/// answer echoes the `userName` sent (which carries the marker as a whole token), and it can be
/// named as one path segment. Anything else is somebody else's, and never deleted by id.
pub fn owned(run_id: &RunId, sent: &str, id: String, answered: Option<String>) -> Result<Owned, String> {
    let name = match answered {
        Some(n) if n.eq_ignore_ascii_case(sent) && run_id.marks(&n) => n,
        other => {
            return Err(format!(
                "the create answered id {id:?} with userName {other:?}, not the {sent:?} sent: not the probe's user, left alone"
            ));
        }
    };
    let path = crate::http::url::member("Users", &id)
        .map_err(|why| format!("the create answered id {id:?}, which cannot name a resource ({why})"))?;
    Ok(Owned {
        id,
        user_name: name,
        path,
    })
}

/// DELETE the probe user, say how the delete shows, and prove it gone by the run's read-back
/// rule; `Err` says why it is not (it is then left on the target).
async fn remove(client: &Arc<HttpClient>, user: &Owned, draft: &mut Draft) -> Result<(), String> {
    // Deleted only once a read of its id shows the probe user, by the rule of every delete
    // (`requests::shows_identity_of`): a create that echoed the name sent beside somebody
    // else's id would otherwise get that user deleted.
    match client.call(Method::GET, &user.path, None).await {
        Ok(r)
            if r.status.is_success() && requests::shows_identity_of(&r.body, &user.id, "userName", &user.user_name) => {
        }
        Ok(r) => {
            return Err(format!(
                "not deleted: a GET of its id answered HTTP {} without the probe user under that id (not the run's)",
                r.status.as_u16()
            ));
        }
        Err(e) => return Err(format!("not deleted: reading it before its delete failed: {e}")),
    }
    let mut answer = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
        }
        match client.call(Method::DELETE, &user.path, None).await {
            Ok(r) if r.confirms_delete() || r.status.as_u16() == 404 => {
                answer = format!("HTTP {}", r.status.as_u16());
                break;
            }
            Ok(r) if r.status.as_u16() == 429 || r.status.is_server_error() => {
                answer = format!("HTTP {}", r.status.as_u16());
            }
            Ok(r) => {
                answer = format!(
                    "HTTP {}: {}",
                    r.status.as_u16(),
                    crate::redact::sample_bytes(&r.body, true, 120)
                );
                break;
            }
            Err(e) => answer = format!("failed: {e}"),
        }
    }
    draft.heard(format!("DELETE /Users/{{id}} answered {answer}"));
    let shown = delete_shows(client, user).await;
    draft.heard(shown.clone());
    let created = Created::User {
        id: user.id.clone(),
        user_name: user.user_name.clone(),
    };
    let path = user.path.clone();
    let (gone, unverified) = readback::confirm(vec![created], Instant::now() + PATIENCE, |_| {
        requests::read_back(client, Ok(path.clone()))
    })
    .await;
    if gone == 1 {
        return Ok(());
    }
    let why = unverified
        .first()
        .map_or_else(|| "not read back".to_string(), |l| l.reason.clone());
    Err(format!("the DELETE answered {answer}, then {shown}; {why}"))
}

/// One read of the deleted user and one filtered search: how a delete shows on this target, as
/// a run's read-back rule will judge it.
async fn delete_shows(client: &HttpClient, user: &Owned) -> String {
    let read = match client.call(Method::GET, &user.path, None).await {
        Err(e) => return format!("a GET of the deleted user failed: {e}"),
        Ok(r) => r,
    };
    match read.status.as_u16() {
        404 => "a GET of the deleted user answers 404: gone, as a run's read-back proves it".into(),
        410 => "a GET of the deleted user answers 410 Gone: a run's read-back counts that as gone".into(),
        200 => {
            let active = serde_json::from_slice::<serde_json::Value>(&read.body)
                .ok()
                .and_then(|v| steps::active_of(&v));
            let listed = still_listed(client, user).await;
            match active {
                Some(false) => format!(
                    "the target soft-deletes: a GET of the deleted user still answers 200 with active=false{listed}; a run's read-back counts only 404/410 as gone, so every user a run deletes would be `unverified` and its cleanup never complete"
                ),
                _ => format!("a GET of the deleted user still answers 200: the delete did not take{listed}"),
            }
        }
        s => format!("a GET of the deleted user answers HTTP {s}"),
    }
}

async fn still_listed(client: &HttpClient, user: &Owned) -> &'static str {
    let filter = format!("userName eq {}", serde_json::Value::String(user.user_name.clone()));
    let path = format!("/Users?filter={}", encode_query(&filter));
    match client.call(Method::GET, &path, None).await {
        Ok(r) if r.status.as_u16() == 200 && steps::lists_id(&r.body, &user.id) => {
            " (and a filter on its userName still lists it)"
        }
        _ => "",
    }
}

/// The command that removes what the probe left: by the workload `--check` read, or by the
/// target's URL and token variable.
fn cleanup_command(cx: &Context<'_>, client: &HttpClient, draft: &Draft) -> String {
    let run_id = cx.run_id;
    if cx.workload.path.is_file() {
        return format!("provbench cleanup --run-id {run_id} {}", cx.workload.path.display());
    }
    let url = crate::redact::url(client.base());
    match draft.get("target", "auth.token_env").and_then(toml::Value::as_str) {
        Some(env) => format!("provbench cleanup --run-id {run_id} --target-url {url} --token-env {env}"),
        None => format!("provbench cleanup --run-id {run_id} WORKLOAD (a workload whose target is {url})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run_id() -> RunId {
        RunId::parse("pb-1a2b3c4d").unwrap()
    }

    #[test]
    fn only_the_sent_marked_name_with_a_segment_id_is_owned() {
        let sent = "pb-1a2b3c4d-1@example.test";
        let ok = owned(&run_id(), sent, "42".into(), Some(sent.to_uppercase())).unwrap();
        assert_eq!(ok.path, "/Users/42");
        for (id, name) in [
            ("7", Some("victim@example.test")),
            ("7", None),
            ("7", Some("pb-1a2b3c4d-2@example.test")),
            ("../Groups/7", Some(sent)),
            ("..", Some(sent)),
            ("a/b", Some(sent)),
        ] {
            assert!(
                owned(&run_id(), sent, id.into(), name.map(str::to_string)).is_err(),
                "{id} {name:?}"
            );
        }
    }

    #[test]
    fn a_drafted_template_is_what_the_probe_sends() {
        let mut d = Draft::new();
        d.set("users", Entry::new("template.userName", "{run_id}-{seq}@corp.example"));
        d.set("users", Entry::new("template.emails", vec!["x"]));
        d.set("users", Entry::new("modify.title", "T {seq}"));
        let w = drafted_users(&d).unwrap().unwrap();
        let vars = Vars {
            run_id: "pb-1a2b3c4d",
            seq: 1,
            admin: 0,
        };
        assert_eq!(w.users.user_name.render(&vars), "\"pb-1a2b3c4d-1@corp.example\"");
        assert!(w.users.template.render(&vars).contains("emails"));
        assert!(drafted_users(&Draft::new()).unwrap().is_none());
    }

    proptest! {
        /// Whatever id and name a target answers a create with, the probe deletes at most
        /// `/Users/` and one segment, and only for the name it sent.
        #[test]
        fn an_answered_id_never_names_more_than_the_created_user(
            id in "[a-zA-Z0-9./%\\\\;:?#@ _-]{0,12}|\\.\\.|\\.|%2e%2e|%2f",
            name in prop::option::of("pb-1a2b3c4d-1@example.test|PB-1A2B3C4D-1@EXAMPLE.TEST|victim|pb-1a2b3c4d1@example.test|[a-z-]{0,10}"),
        ) {
            let sent = "pb-1a2b3c4d-1@example.test";
            if let Ok(o) = owned(&run_id(), sent, id.clone(), name.clone()) {
                prop_assert!(name.is_some_and(|n| n.eq_ignore_ascii_case(sent)));
                let rest = o.path.strip_prefix("/Users/").unwrap();
                prop_assert!(!rest.is_empty() && !rest.contains('/') && rest != "." && rest != "..", "{}", o.path);
                prop_assert_eq!(o.path, crate::http::url::member("Users", &id).unwrap());
            }
        }
    }
}
