//! Custom operations as journey steps: render the request from its templates (runtime values
//! from the journey: extracted ones, then the current user and group), send it with the
//! operation's headers, accept only its statuses, extract the values later steps use, and
//! keep the rendered cleanup request of what it created until the journey undoes it itself.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::context::Ctx;
use super::journey::{AdminState, JourneyState, StepEnd};
use crate::http::CallError;
use crate::http::client::Extras;
use crate::ledger::UndoRequest;
use crate::metrics::SeriesId;
use crate::workload::operations::{Extract, OpHeader, Operation};
use crate::workload::template::{Escape, Vars};
use crate::workload::{Target, Workload};

/// What a custom operation sends with every request, fixed at the start of the run: headers
/// from the environment (secrets, read once) and the content type a non-SCIM API expects.
#[derive(Debug, Default)]
pub struct Prepared {
    fixed: HeaderMap,
    /// True when some value is taken from the answer's headers.
    keeps_headers: bool,
}

/// Reads every custom operation's environment headers; a missing variable fails the run
/// before any load.
pub fn prepare(workload: &Workload) -> anyhow::Result<Vec<Prepared>> {
    let plain_json = matches!(workload.target, Target::Scim { scim: false, .. });
    workload
        .operations
        .iter()
        .map(|op| {
            let mut fixed = HeaderMap::new();
            if plain_json {
                fixed.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
                if op.body.is_some() {
                    fixed.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
            }
            for (name, h) in &op.headers {
                if let OpHeader::Env(env) = h {
                    let v = std::env::var(env).map_err(|_| {
                        anyhow::anyhow!(
                            "operations.{}: header `{name}`: environment variable `{env}` is not set",
                            op.name
                        )
                    })?;
                    crate::redact::register(&v);
                    let mut value = HeaderValue::from_str(&v)
                        .map_err(|e| anyhow::anyhow!("operations.{}: header `{name}`: {e}", op.name))?;
                    value.set_sensitive(true);
                    fixed.insert(name.clone(), value);
                }
            }
            Ok(Prepared {
                fixed,
                keeps_headers: op.extract.iter().any(|(_, e)| matches!(e, Extract::Header { .. })),
            })
        })
        .collect()
}

/// A runtime value of the journey: the latest extracted one, then the current user's and
/// group's.
fn lookup<'s>(state: &'s JourneyState, name: &str) -> Option<&'s str> {
    if let Some((_, v)) = state.vars.iter().rev().find(|(k, _)| k == name) {
        return Some(v);
    }
    match name {
        "id" => state.user.as_ref().and_then(|u| u.id.as_deref()),
        "user_name" => state.user.as_ref().map(|u| u.user_name.as_str()),
        "group_id" => state.group.as_ref().map(|g| g.id.as_str()),
        _ => None,
    }
}

/// A rendered request.
struct Rendered {
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<String>,
}

fn render(op: &Operation, vars: &Vars, state: &JourneyState) -> Result<Rendered, String> {
    let find = |n: &str| lookup(state, n);
    let mut path = String::new();
    op.path.render_with(vars, &find, Escape::Url, &mut path)?;
    let mut headers = Vec::new();
    for (name, h) in &op.headers {
        if let OpHeader::Template(t) = h {
            let mut v = String::new();
            t.render_with(vars, &find, Escape::Raw, &mut v)?;
            let value = HeaderValue::from_str(&v)
                .map_err(|_| format!("header `{name}` renders to a value a header cannot carry"))?;
            headers.push((name.clone(), value));
        }
    }
    let body = match &op.body {
        Some(t) => {
            let mut b = String::new();
            t.render_with(vars, &find, Escape::Json, &mut b)?;
            Some(b)
        }
        None => None,
    };
    Ok(Rendered { path, headers, body })
}

/// The journey's sequence number: its user's, or one drawn on first use.
fn journey_seq(ctx: &Ctx, state: &mut JourneyState) -> u64 {
    if let Some(u) = state.user.as_ref().filter(|u| u.seq > 0) {
        return u.seq;
    }
    *state.seq.get_or_insert_with(|| ctx.next_seq())
}

fn failed(op: &Operation, detail: String) -> StepEnd {
    StepEnd::Failed(CallError::payload(format!("{} {}: {detail}", op.method, op.path_text)))
}

/// Runs custom operation `index` as a step.
pub(super) async fn execute(
    ctx: &Ctx,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
    index: usize,
) -> Result<(), StepEnd> {
    let op = &ctx.workload.operations[index];
    let prepared = &ctx.custom[index];
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq: journey_seq(ctx, state),
        admin: admin.index,
    };
    let req = render(op, &vars, state).map_err(|m| failed(op, m))?;
    let mut extras = Extras {
        headers: prepared.fixed.clone(),
        keep_headers: prepared.keeps_headers,
    };
    for (k, v) in req.headers {
        extras.headers.insert(k, v);
    }
    let reply = super::steps::send_with(
        ctx,
        series,
        op.method.clone(),
        &req.path,
        req.body.map(Bytes::from),
        &extras,
    )
    .await?;
    let status = reply.status.as_u16();
    if !op.accepts(status) {
        let snippet = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned();
        let expected = if op.expect.is_empty() {
            "2xx".to_string()
        } else {
            format!("{:?}", op.expect)
        };
        return Err(StepEnd::Failed(CallError {
            kind: crate::metrics::ErrorKind::Status,
            detail: format!(
                "{} {}: HTTP {status} (expected {expected}): {snippet}",
                op.method, op.path_text
            ),
        }));
    }
    extract(op, &reply, state).map_err(|m| failed(op, m))?;
    // The journey undid something itself: that cleanup is no longer owed.
    if let Some(i) = state.undo.iter().rposition(|(undo, _)| *undo == index) {
        state.undo.remove(i);
    }
    if let Some(undo_index) = op.cleanup {
        let undo = &ctx.workload.operations[undo_index];
        let rendered =
            render(undo, &vars, state).map_err(|m| failed(op, format!("its cleanup `{}`: {m}", undo.name)))?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for (k, v) in ctx.custom[undo_index]
            .fixed
            .iter()
            .chain(rendered.headers.iter().map(|(k, v)| (k, v)))
        {
            headers.push((k.to_string(), v.to_str().unwrap_or_default().to_string()));
        }
        state.undo.push((
            undo_index,
            UndoRequest {
                op: undo.name.clone(),
                method: undo.method.to_string(),
                path: rendered.path,
                headers,
                body: rendered.body,
                expect: undo.expect.clone(),
            },
        ));
    }
    Ok(())
}

/// Takes the operation's values from the answer into the journey.
fn extract(op: &Operation, reply: &crate::http::Reply, state: &mut JourneyState) -> Result<(), String> {
    let mut json: Option<serde_json::Value> = None;
    for (var, from) in &op.extract {
        let value = match from {
            Extract::Pointer(p) => {
                if json.is_none() {
                    json = Some(
                        serde_json::from_slice(&reply.body)
                            .map_err(|e| format!("extract `{var}`: the answer is not JSON ({e})"))?,
                    );
                }
                match json.as_ref().and_then(|j| j.pointer(p)) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::Bool(b)) => b.to_string(),
                    Some(other) => return Err(format!("extract `{var}`: `{p}` is {other}, not a string or number")),
                    None => return Err(format!("extract `{var}`: the answer has no `{p}`")),
                }
            }
            Extract::Header { name, last_segment } => {
                let v = reply
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("extract `{var}`: the answer has no `{name}` header"))?;
                if *last_segment {
                    let path = v.split(['?', '#']).next().unwrap_or(v).trim_end_matches('/');
                    path.rsplit('/').next().unwrap_or(path).to_string()
                } else {
                    v.to_string()
                }
            }
        };
        if value.is_empty() {
            return Err(format!("extract `{var}`: the value is empty"));
        }
        state.vars.push((var.clone(), value));
    }
    Ok(())
}
