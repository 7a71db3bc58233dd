//! A target that is an HTTP API but not SCIM (kind `http`), and the custom operations
//! (`[operations.NAME]`) of any HTTP target: render the request from its templates (runtime
//! values from the journey: extracted ones, then the current user and group), send it with the
//! operation's headers, accept only its statuses, extract the values later steps use, and keep
//! the rendered cleanup request of what it created until the journey undoes it itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::readback;
use super::requests::{self, CleanupRequest};
use super::retry::Patience;
use crate::engine::state::{AdminState, JourneyState, Run, StepEnd, payload};
use crate::http::client::Extras;
use crate::http::{CallError, HttpClient};
use crate::ledger::{Claims, Created, HookProof, UndoRequest};
use crate::metrics::SeriesId;
use crate::results::CleanupReport;
use crate::vocab::{MetricKey, metric, tag};
use crate::workload::Step;
use crate::workload::operations::{Extract, OpHeader, Operation, Owns};
use crate::workload::template::{Escape, Vars};

/// An HTTP API driven by custom operations only.
pub struct Http {
    pub client: Arc<HttpClient>,
    /// Per custom operation: what it sends with every request.
    custom: Vec<Prepared>,
}

/// Only cleanup hooks are deleted by an `http` target (it has no built-in resources).
fn hook_only(item: &Created) -> Result<CleanupRequest, String> {
    match item {
        Created::Undo(u) => CleanupRequest::hook(u),
        other => Err(format!(
            "{} `{}`: an http target has no way to delete it",
            other.name(),
            other.id()
        )),
    }
}

/// What a custom operation sends with every request, fixed at the start of the run: headers
/// from the environment (secrets, read once) and the content type a non-SCIM API expects.
#[derive(Debug, Default)]
struct Prepared {
    fixed: HeaderMap,
    /// True when some value is taken from the answer's headers.
    keeps_headers: bool,
}

/// Reads every custom operation's environment headers; a missing variable fails the run
/// before any load.
fn prepare(operations: &[Operation], plain_json: bool) -> anyhow::Result<Vec<Prepared>> {
    operations
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
fn journey_seq(run: &Run, state: &mut JourneyState) -> u64 {
    if let Some(u) = state.user.as_ref().filter(|u| u.seq > 0) {
        return u.seq;
    }
    *state.seq.get_or_insert_with(|| run.next_seq())
}

fn failed(op: &Operation, detail: String) -> StepEnd {
    StepEnd::Failed(CallError::payload(format!("{} {}: {detail}", op.method, op.path_text)))
}

impl Http {
    /// The target's client, with every custom operation's environment headers read (a missing
    /// variable fails the run before any load). `plain_json`: a non-SCIM API, which is sent
    /// `application/json` rather than SCIM's media type.
    pub fn new(client: Arc<HttpClient>, operations: &[Operation], plain_json: bool) -> anyhow::Result<Http> {
        Ok(Http {
            custom: prepare(operations, plain_json)?,
            client,
        })
    }

    /// The request a step sends, for failure samples: custom operations name theirs in their
    /// own details.
    pub fn request_line(&self, _step: &Step) -> Option<&'static str> {
        None
    }

    /// Runs a step: only custom operations go to an API that is not SCIM.
    pub async fn execute(
        &self,
        run: &Run,
        admin: &mut AdminState,
        step: &Step,
        state: &mut JourneyState,
        series: SeriesId,
    ) -> Result<(), StepEnd> {
        match step {
            Step::Custom { index, .. } => self.custom(run, admin, state, series, *index).await,
            other => Err(payload(format!(
                "`{}` is a SCIM step, and this target (kind \"http\") is not a SCIM API",
                other.name()
            ))),
        }
    }

    /// Sends the cleanup hooks the ledger holds; a target that is not SCIM cannot be searched
    /// for the run's marker, so what is left is listed, never swept. What the hooks and the
    /// journeys (`deleted`: cleanup operations they ran themselves) deleted is read back.
    pub async fn clean_up(&self, items: Vec<Created>, deleted: Claims, limit: Duration) -> CleanupReport {
        let started = Instant::now();
        let deadline = started + limit;
        // Nothing follows the hooks but their read-back (which has its own floor): they are
        // retried until the deadline in this one call.
        let mut round = requests::delete_all(self.client.clone(), items, deadline, hook_only, Patience::Deadline).await;
        let client = &self.client;
        round.claimed.extend(deleted.unread);
        let read = |c: &Created| match c {
            Created::Undo(u) => requests::read_back_hook(client, u),
            _ => requests::read_back(
                client,
                Err("an HTTP target's cleanup deletes only through its cleanup hooks".into()),
            ),
        };
        let (verified, unverified) = readback::confirm_after(round.claimed, &deleted.proven, deadline, read).await;
        round.report.verified += verified;
        round.left.extend(unverified);
        requests::close(round.report, round.left, started)
    }

    /// Runs custom operation `index` as a step.
    pub(super) async fn custom(
        &self,
        run: &Run,
        admin: &mut AdminState,
        state: &mut JourneyState,
        series: SeriesId,
        index: usize,
    ) -> Result<(), StepEnd> {
        let op = &run.workload.operations[index];
        let prepared = &self.custom[index];
        let vars = run.vars(admin, journey_seq(run, state));
        let req = render(op, &vars, state).map_err(|m| failed(op, m))?;
        let mut extras = Extras {
            headers: prepared.fixed.clone(),
            keep_headers: prepared.keeps_headers,
        };
        for (k, v) in req.headers {
            extras.headers.insert(k, v);
        }
        let reply = requests::send_with(
            run,
            &self.client,
            series,
            op.method.clone(),
            &req.path,
            req.body.map(Bytes::from),
            &extras,
        )
        .await?;
        let status = reply.status.as_u16();
        if !op.accepts(status) {
            let snippet = crate::redact::sample_bytes(&reply.body, true, 200);
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
        let before = state.vars.len();
        extract(op, &reply, state).map_err(|m| failed(op, m))?;
        let proof = match &op.owns {
            None => None,
            Some(owns) => match self.prove(run, index, owns, &vars, state, &extras).await {
                Ok(proof) => Some(Box::new(proof)),
                Err(Unproven { end, unread }) => {
                    // Not proven: no later step may use what it answered. A read that gave no
                    // verdict (it failed, or was cut short) leaves the cleanup owed, to be sent
                    // only if the same read proves it then; an answer that is not the run's
                    // owes nothing. The values go whatever the hook's rendering did, and an
                    // interrupt stays an interrupt.
                    let owed = unread.map(|proof| self.owe(run, index, &vars, state, Some(Box::new(proof))));
                    state.vars.truncate(before);
                    return Err(match (owed, end) {
                        (Some(Err(why)), StepEnd::Failed(_)) => why,
                        (_, end) => end,
                    });
                }
            },
        };
        // The journey undid something itself: the owed hook of this operation sent to the same
        // path is no longer owed.
        if let Some(i) = state
            .undo
            .iter()
            .rposition(|(undo, owed)| *undo == index && owed.path == req.path)
        {
            // Its answer is a claim like any delete's: read back as gone before it counts.
            let (_, undone) = state.undo.remove(i);
            state.undone.push(undone);
        }
        self.owe(run, index, &vars, state, proof)
    }

    /// Owes the cleanup of what custom operation `index` made (its hook, rendered now with the
    /// journey's values), to be sent at cleanup once `proof` holds again, unless the journey
    /// undoes it itself.
    fn owe(
        &self,
        run: &Run,
        index: usize,
        vars: &Vars<'_>,
        state: &mut JourneyState,
        proof: Option<Box<HookProof>>,
    ) -> Result<(), StepEnd> {
        let op = &run.workload.operations[index];
        if let Some(undo_index) = op.cleanup {
            let undo = &run.workload.operations[undo_index];
            let rendered =
                render(undo, vars, state).map_err(|m| failed(op, format!("its cleanup `{}`: {m}", undo.name)))?;
            let mut headers: Vec<(String, String)> = Vec::new();
            for (k, v) in self.custom[undo_index]
                .fixed
                .iter()
                .chain(rendered.headers.iter().map(|(k, v)| (k, v)))
            {
                // As rendered (from UTF-8 text): `to_str` refuses bytes past ASCII, and an empty
                // value would name nobody, or everybody.
                headers.push((k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()));
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
                    // Read again at cleanup, as it was read now.
                    proof,
                },
            ));
        }
        Ok(())
    }

    /// Reads what custom operation `index` made (`owns.read`, with the values it just
    /// extracted) and judges the answer by `requests::proves`; returns the proof, which cleanup
    /// makes again before the operation's cleanup hook is sent. The read is
    /// recorded as `api_latency{op=NAME:owns}`, not in the operation's own latency; a read that
    /// fails, or an answer that is not the run's, fails the operation.
    async fn prove(
        &self,
        run: &Run,
        index: usize,
        owns: &Owns,
        vars: &Vars<'_>,
        state: &JourneyState,
        sent: &Extras,
    ) -> Result<HookProof, Unproven> {
        let op = &run.workload.operations[index];
        let find = |n: &str| lookup(state, n);
        let mut path = String::new();
        owns.read
            .render_with(vars, &find, Escape::Url, &mut path)
            .map_err(|m| Unproven::verdict(failed(op, format!("owns.read `{}`: {m}", owns.read_text))))?;
        let proof = HookProof {
            about: owns
                .proves
                .iter()
                .filter_map(|v| lookup(state, v))
                .map(String::from)
                .collect(),
            read: path,
            identity: owns.identity.clone(),
            marker: run.run_id.clone(),
            id: owns.id.clone(),
        };
        let key = MetricKey::new(metric::API_LATENCY).tag(tag::OP, &format!("{}:owns", op.name));
        let series = run.registry.series(key);
        // With the operation's own headers (the scope it made it in), as a read.
        let extras = requests::read_extras(sent);
        let began = Instant::now();
        let sent = requests::send_with(
            run,
            &self.client,
            series,
            ::http::Method::GET,
            &proof.read,
            None,
            &extras,
        )
        .await;
        let reply = match sent {
            Ok(r) => r,
            Err(StepEnd::Failed(e)) => {
                let end = failed(
                    op,
                    format!("reading what it made (owns.read `{}`): {}", owns.read_text, e.detail),
                );
                return Err(Unproven::unread(end, proof));
            }
            Err(other) => return Err(Unproven::unread(other, proof)),
        };
        run.registry.record(series, began.elapsed().as_micros() as u64);
        let status = reply.status.as_u16();
        if !(200..300).contains(&status) {
            let end = failed(
                op,
                format!("reading what it made (owns.read `{}`): HTTP {status}", owns.read_text),
            );
            return Err(Unproven::unread(end, proof));
        }
        if requests::proves(&reply.body, &proof) {
            return Ok(proof);
        }
        // Somebody else's name is not printed: only that it is not the run's.
        Err(Unproven::verdict(failed(
            op,
            format!(
                "what it answered is not the run's: a GET of owns.read `{}` shows no answer about it with a name carrying {} at `{}`, so nothing more is sent to it",
                owns.read_text, run.run_id, owns.identity
            ),
        )))
    }
}

/// Why what an operation made was not proven the run's: the step's end, and the proof still to
/// make when the read gave no verdict (failed, refused, cut short), for cleanup to make again.
struct Unproven {
    end: StepEnd,
    unread: Option<HookProof>,
}

impl Unproven {
    fn verdict(end: StepEnd) -> Unproven {
        Unproven { end, unread: None }
    }

    fn unread(end: StepEnd, proof: HookProof) -> Unproven {
        Unproven {
            end,
            unread: Some(proof),
        }
    }
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
