//! Sending over HTTP for the HTTP-borne protocols (SCIM, custom operations): a step's request,
//! cut short by Ctrl-C, with the 429s it waited out counted; and cleanup's deletes, a few at a
//! time, each sent only once a read shows it the run's, retried with back-off ([`super::retry`]).
//! Which request deletes what is the protocol's to say.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use tokio::time::Instant;

use super::BoxFuture;
use super::readback::{Presence, left};
use super::retry::{self, Patience, Try};
use crate::engine::state::{Run, StepEnd};
use crate::http::client::{Extras, Failure};
use crate::http::{CallError, HttpClient, Reply};
use crate::ledger::{Created, HookProof, UndoRequest};
use crate::metrics::SeriesId;
use crate::results::{CleanupReport, LeftBehind};

const CONCURRENCY: usize = 16;

/// Sends a step's request and accepts only `expected` statuses.
pub async fn send(
    run: &Run,
    client: &HttpClient,
    series: SeriesId,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    expected: &[u16],
) -> Result<Reply, StepEnd> {
    // An interrupt cancels the request in flight rather than waiting out its timeout. Biased:
    // the interrupt is looked at first on every poll, and no random draw picks the order (an
    // unbiased `select!` draws one from a thread-local generator at each poll of every request).
    let reply = tokio::select! {
        biased;
        _ = run.interrupt.cancelled() => return Err(StepEnd::Interrupted),
        r = client.call_counting(method, path, body, None) => failed(run, series, r)?,
    };
    rate_limits(run, series, reply)?
        .expect(expected)
        .map_err(StepEnd::Failed)
}

/// As [`send`] with a request's own headers, leaving the status to the caller.
pub async fn send_with(
    run: &Run,
    client: &HttpClient,
    series: SeriesId,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    extras: &Extras,
) -> Result<Reply, StepEnd> {
    let reply = tokio::select! {
        biased;
        _ = run.interrupt.cancelled() => return Err(StepEnd::Interrupted),
        r = client.call_counting(method, path, body, Some(extras)) => failed(run, series, r)?,
    };
    rate_limits(run, series, reply)
}

/// A failed call's error, its waited-out 429s counted first: a retry chain that ends in a
/// connection error or a timeout still had those 429s.
fn failed(run: &Run, series: SeriesId, r: Result<Reply, Failure>) -> Result<Reply, StepEnd> {
    r.map_err(|f| {
        for _ in 0..f.rate_limited {
            run.registry.record_rate_limited(series);
        }
        StepEnd::Failed(f.error)
    })
}

/// Counts the 429s a reply waited out; a final 429 ends the step as rate-limited.
fn rate_limits(run: &Run, series: SeriesId, reply: Reply) -> Result<Reply, StepEnd> {
    let final_429 = reply.status.as_u16() == 429;
    // 429s waited out before a later answer still count (the final one is the caller's).
    for _ in 0..reply.rate_limited.saturating_sub(final_429 as u32) {
        run.registry.record_rate_limited(series);
    }
    if final_429 {
        return Err(StepEnd::RateLimited);
    }
    Ok(reply)
}

/// The request that deletes one thing the run created.
pub struct CleanupRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
    pub extras: Extras,
    /// A cleanup hook's own statuses (empty: any 2xx); `None` for a delete, which is done only
    /// when its answer confirms it (see `Reply::confirms_delete`).
    pub hook: Option<Vec<u16>>,
    /// What must still be shown before the request is sent: the one ownership gate of cleanup
    /// (invariant 4). A create or a listing that answered somebody else's id beside the run's
    /// name would otherwise get that resource deleted.
    pub identity: Option<Owned>,
}

/// The headers a proof read carries: the request's own (its scope: a tenant, a realm, a key),
/// but never one that would make the GET something else (a method override), nor a body's type.
pub fn read_extras(extras: &Extras) -> Extras {
    let mut headers = extras.headers.clone();
    for name in crate::workload::operations::METHOD_OVERRIDES {
        headers.remove(*name);
    }
    headers.remove(reqwest::header::CONTENT_TYPE);
    Extras {
        headers,
        keep_headers: false,
    }
}

/// What a cleanup request is for, and how a read proves it still the run's before it is sent.
#[derive(Clone, Debug)]
pub enum Owned {
    /// A SCIM resource, as the ledger or the sweep recorded it: its id, and a SCIM attribute
    /// with the marked value it was created or listed with. A read of the request's path proves
    /// it only by [`shows_identity_of`]: an answer about that id showing that value.
    Scim {
        id: String,
        attribute: &'static str,
        value: String,
    },
    /// What a custom operation made (its `owns`): a read of the proof's path proves it only by
    /// [`proves`].
    Marked(HookProof),
}

impl CleanupRequest {
    /// A DELETE of `path`.
    pub fn delete(path: String) -> CleanupRequest {
        CleanupRequest {
            method: Method::DELETE,
            path,
            body: None,
            extras: Extras::default(),
            hook: None,
            identity: None,
        }
    }

    /// A DELETE of `path` (the member path of `id`) sent only once a GET there answers about
    /// `id` and shows `attribute` equal to `value` (case-insensitively, as SCIM compares
    /// `userName`).
    pub fn delete_owned(path: String, id: &str, attribute: &'static str, value: &str) -> CleanupRequest {
        CleanupRequest {
            identity: Some(Owned::Scim {
                id: id.to_string(),
                attribute,
                value: value.to_string(),
            }),
            ..CleanupRequest::delete(path)
        }
    }

    /// A custom operation's cleanup hook, as rendered when the operation ran.
    pub fn hook(u: &UndoRequest) -> Result<CleanupRequest, String> {
        let method = Method::from_bytes(u.method.as_bytes()).map_err(|e| format!("{}: {e}", u.op))?;
        Ok(CleanupRequest {
            method,
            path: u.path.clone(),
            body: u.body.clone().map(Bytes::from),
            extras: hook_extras(u)?,
            hook: Some(u.expect.clone()),
            identity: u.proof.as_deref().cloned().map(Owned::Marked),
        })
    }
}

/// A cleanup hook's headers, as rendered when the operation ran.
fn hook_extras(u: &UndoRequest) -> Result<Extras, String> {
    let mut extras = Extras::default();
    for (k, v) in &u.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("{}: header {k}: {e}", u.op))?;
        let value = HeaderValue::from_str(v).map_err(|e| format!("{}: header {k}: {e}", u.op))?;
        extras.headers.insert(name, value);
    }
    Ok(extras)
}

/// How one delete ended.
enum Deleted {
    Done,
    AlreadyGone,
    Left(String),
}

/// The one rule by which a read of a SCIM resource proves it is the one the run recorded
/// (invariant 4): the answer is a JSON object about `id` (its `id` member the string `id`, as
/// `scim::wire::Identified` reads it) whose `attribute` (`userName`, `displayName`) is the
/// string `value`, the marked identity the run recorded, ASCII case aside (SCIM compares
/// `userName` case-insensitively). Cleanup's reads before a delete (`owned`), a journey's read
/// before its first change of what it created (`scim::own`) and set-up's read-back of what it
/// made or found (`scim::stage`) all judge by it.
///
/// Read in place, in one pass: the other members are skipped, not built into a tree (a whole
/// user read as a `serde_json::Value` cost a journey more than its own requests' parsing). An
/// answer naming `id` or `attribute` twice shows nothing.
pub fn shows_identity_of(body: &[u8], id: &str, attribute: &str, value: &str) -> bool {
    read_identity(body, attribute).is_some_and(|(answered, shown)| {
        answered.as_deref() == Some(id) && shown.is_some_and(|s| s.eq_ignore_ascii_case(value))
    })
}

/// The rule of [`shows_identity_of`] for what a custom operation made (`owns`), whose answer has
/// no SCIM shape: the answer is one JSON document, no object of it naming a member twice; its
/// member at `p.identity` (its name) is a string carrying the run's marker as a whole token
/// (`RunId::marks`, as the sweep and the ledger match it); and it is about what was read: its
/// member at `p.id` (a string, or a number as written) is one of the values the read named.
/// Without an `id` pointer in the workload, `/id` is judged where the answer has one. Anything
/// else (another name, a lookalike marker, another id, a number for a name, no JSON) proves
/// nothing.
pub fn proves(body: &[u8], p: &HookProof) -> bool {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Ok(v) = serde::de::DeserializeSeed::deserialize(Unique, &mut de) else {
        return false;
    };
    if de.end().is_err() {
        return false;
    }
    let named = v
        .pointer(&p.identity)
        .and_then(|n| n.as_str())
        .is_some_and(|n| p.marker.marks(n));
    let about = match (v.pointer(p.id.as_deref().unwrap_or("/id")), &p.id) {
        (None, None) => true,
        (Some(serde_json::Value::String(s)), _) => p.about.iter().any(|a| a == s),
        (Some(serde_json::Value::Number(n)), _) => p.about.iter().any(|a| *a == n.to_string()),
        _ => false,
    };
    named && about
}

/// A JSON document as a tree, refused when an object names a member twice (a tree would keep
/// one of the two, and a name given twice shows nothing, as in [`read_identity`]).
struct Unique;

impl<'de> serde::de::DeserializeSeed<'de> for Unique {
    type Value = serde_json::Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique)? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(Unique)?;
            if members.insert(key, v).is_some() {
                return Err(serde::de::Error::custom("a member given twice"));
            }
        }
        Ok(serde_json::Value::Object(members))
    }
}

/// The answer's `id` and `attribute`, each when it is a string; `None` when the answer is not
/// one JSON object, or names either twice (`attribute` ASCII case aside).
fn read_identity(body: &[u8], attribute: &str) -> Option<(Option<String>, Option<String>)> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = serde::de::DeserializeSeed::deserialize(Members(attribute), &mut de).ok()?;
    de.end().ok()?;
    Some(read)
}

/// The `id` and one named member of a JSON object, the others skipped ([`read_identity`]).
struct Members<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = (Option<String>, Option<String>);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = (Option<String>, Option<String>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resource (a JSON object)")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut shown) = (None, None);
        while let Some(key) = map.next_key_seed(Named(self.0))? {
            let slot = match key {
                Key::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
                Key::Id => &mut id,
                Key::Asked => &mut shown,
            };
            if slot.is_some() {
                return Err(serde::de::Error::custom("a member given twice"));
            }
            // Any JSON value is read (so the answer's syntax is checked); only a string counts.
            let value: serde_json::Value = map.next_value()?;
            *slot = Some(match value {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            });
        }
        Ok((id.flatten(), shown.flatten()))
    }
}

/// Which member a name is ([`Named`]).
enum Key {
    Id,
    Asked,
    Other,
}

/// A member's name, compared in place (escapes decoded): the asked one ASCII case aside,
/// `id` exactly.
struct Named<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for Named<'_> {
    type Value = Key;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl serde::de::Visitor<'_> for Named<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        // SCIM's attribute names are case-insensitive (RFC 7643 §2.1): `UserName` is `userName`,
        // and the two given together are the name given twice.
        Ok(if s.eq_ignore_ascii_case(self.0) {
            Key::Asked
        } else if s == "id" {
            Key::Id
        } else {
            Key::Other
        })
    }
}

/// Whether what `req` is sent to is the one its owner names, by one read: `Ended(None)` when it
/// is, `Ended(Some(end))` when the request ends without being sent (gone already, not the run's,
/// unread by the deadline: an unread resource is never deleted), `Again` when another read may
/// tell.
async fn owned(
    client: &HttpClient,
    req: &CleanupRequest,
    owner: &Owned,
    deadline: Instant,
    rate_limited: &mut u64,
) -> Try<Option<Deleted>> {
    // A hook's read goes with the hook's headers (its scope, an operation's key from the
    // environment), never one that would make it more than a read.
    let (path, extras) = match owner {
        Owned::Scim { .. } => (req.path.as_str(), None),
        Owned::Marked(p) => (p.read.as_str(), Some(read_extras(&req.extras))),
    };
    let read = client.call_counting(Method::GET, path, None, extras.as_ref());
    match tokio::time::timeout_at(deadline, read).await {
        Err(_) => Try::Cut,
        Ok(Ok(r)) => {
            // `rate_limited` counts every 429 the read was answered, its last one too.
            *rate_limited += u64::from(r.rate_limited);
            match r.status.as_u16() {
                404 | 410 => Try::Ended(Some(Deleted::AlreadyGone)),
                200..=299 => Try::Ended(shown(&r.body, owner)),
                s @ (429 | 500..=599) => Try::Again(format!("HTTP {s} reading it before its delete")),
                s => Try::Ended(Some(Deleted::Left(format!("HTTP {s} reading it before its delete")))),
            }
        }
        Ok(Err(f)) => {
            *rate_limited += u64::from(f.rate_limited);
            Try::Again(format!("reading it before its delete: {}", f.error))
        }
    }
}

/// [`owned`]'s verdict on a read's answer. Somebody else's name or id is not printed: only that
/// it is not the run's.
fn shown(body: &[u8], owner: &Owned) -> Option<Deleted> {
    match owner {
        Owned::Scim { id, attribute, value } if !shows_identity_of(body, id, attribute, value) => {
            Some(Deleted::Left(format!(
                "not deleted: a GET of its id answers no resource `{id}` whose {attribute} is `{value}` (not the run's)"
            )))
        }
        Owned::Marked(p) if !proves(body, p) => Some(Deleted::Left(format!(
            "not sent: a GET of {} shows no name carrying {} at `{}` (not the run's)",
            p.read, p.marker, p.identity
        ))),
        _ => None,
    }
}

/// One thing to delete as its cleanup goes on: what it is, its request, whether a read has shown
/// it the run's, and the 429s its answers carried.
struct Job {
    item: Created,
    req: CleanupRequest,
    proven: bool,
    rate_limited: u64,
}

/// One try of a job: its read first while no read has shown the resource the run's
/// ([`owned`]), then its request.
async fn attempt(client: &HttpClient, mut job: Job, deadline: Instant) -> (Job, Try<Deleted>) {
    if !job.proven
        && let Some(identity) = &job.req.identity
    {
        match owned(client, &job.req, identity, deadline, &mut job.rate_limited).await {
            Try::Ended(None) => job.proven = true,
            Try::Ended(Some(end)) => return (job, Try::Ended(end)),
            Try::Again(why) => return (job, Try::Again(why)),
            Try::Cut => return (job, Try::Cut),
        }
    }
    let req = &job.req;
    let call = client.call_counting(req.method.clone(), &req.path, req.body.clone(), Some(&req.extras));
    let end = match tokio::time::timeout_at(deadline, call).await {
        Err(_) => Try::Cut,
        Ok(Ok(r)) => {
            job.rate_limited += u64::from(r.rate_limited);
            let status = r.status.as_u16();
            Try::Ended(match (&req.hook, status) {
                // A cleanup hook's own statuses (or any 2xx) say it is done.
                (Some(expect), _) if expect.contains(&status) || (expect.is_empty() && r.status.is_success()) => {
                    Deleted::Done
                }
                (None, _) if r.confirms_delete() => Deleted::Done,
                (_, s @ 200..=299) => {
                    let body = crate::redact::sample_bytes(&r.body, true, 80);
                    Deleted::Left(format!("HTTP {s} whose body does not confirm a delete: {body}"))
                }
                (_, 404 | 410) => Deleted::AlreadyGone,
                (_, s @ (429 | 500..=599)) => return (job, Try::Again(format!("HTTP {s}"))),
                // 4xx other than 404/429 will not change on a retry.
                (_, s) => Deleted::Left(format!("HTTP {s}")),
            })
        }
        Ok(Err(Failure {
            error: CallError { kind, detail },
            rate_limited,
        })) => {
            job.rate_limited += u64::from(rate_limited);
            Try::Again(format!("{}: {detail}", kind.name()))
        }
    };
    (job, end)
}

/// How a resource deleted over HTTP is read back: a GET of `path` (where its delete went).
/// `None`: nothing can be read (a cleanup hook that is not a DELETE).
pub fn read_back(client: &Arc<HttpClient>, path: Result<String, String>) -> BoxFuture<'static, Presence> {
    read_back_with(client, path.map(|p| (p, Extras::default())))
}

/// [`read_back`] of a cleanup hook's path, with the hook's own headers as a read carries them
/// ([`read_extras`]): a tenant or realm header is where the hook deleted, and a read without it
/// would look somewhere else and find nothing.
pub fn read_back_hook(client: &Arc<HttpClient>, u: &UndoRequest) -> BoxFuture<'static, Presence> {
    let read = hook_read_path(u).and_then(|path| Ok((path, read_extras(&hook_extras(u)?))));
    read_back_with(client, read)
}

fn read_back_with(client: &Arc<HttpClient>, read: Result<(String, Extras), String>) -> BoxFuture<'static, Presence> {
    let client = client.clone();
    Box::pin(async move {
        let (path, extras) = match read {
            Ok(r) => r,
            Err(why) => return Presence::Unreadable(why),
        };
        match client
            .call_counting(Method::GET, &path, None, Some(&extras))
            .await
            .map_err(|f| f.error)
        {
            Ok(r) => match r.status.as_u16() {
                404 | 410 => Presence::Gone,
                s @ 200..=299 => Presence::Present(format!("a GET still answers HTTP {s}")),
                s @ (408 | 429 | 500..=599) => Presence::Unknown(format!("a GET answers HTTP {s}")),
                s => Presence::Unreadable(format!("a GET answers HTTP {s}")),
            },
            Err(e) => Presence::Unknown(format!("a GET failed: {e}")),
        }
    })
}

/// The path a cleanup hook is read back at: its own, when it is a DELETE.
pub fn hook_read_path(u: &UndoRequest) -> Result<String, String> {
    if u.method.eq_ignore_ascii_case("DELETE") {
        Ok(u.path.clone())
    } else {
        Err(format!(
            "its cleanup hook `{}` is a {} and cannot be read back (only a DELETE's path can be)",
            u.op, u.method
        ))
    }
}

/// What a round of deletes did: the counts, what is left, what its answers say is gone (claims,
/// for [`super::readback::confirm`] to prove), and what still failed after brief patience
/// (with its last failure), to be tried again once everything else had its turn
/// ([`delete_again`]).
#[derive(Default)]
pub struct Round {
    pub report: CleanupReport,
    pub left: Vec<LeftBehind>,
    pub claimed: Vec<Created>,
    pub again: Vec<(Created, String)>,
}

impl Round {
    /// Adds `other`'s counts, lefts, claims and retries to this one.
    pub fn absorb(&mut self, other: Round) {
        self.report.add_counts(&other.report);
        self.left.extend(other.left);
        self.claimed.extend(other.claimed);
        self.again.extend(other.again);
    }
}

/// Deletes `items` until `deadline`, a few at a time, retrying what may pass
/// ([`retry`]); `request` says how each is deleted. Under [`Patience::Brief`], what still
/// fails is handed back in [`Round::again`].
pub async fn delete_all(
    client: Arc<HttpClient>,
    items: Vec<Created>,
    deadline: Instant,
    request: fn(&Created) -> Result<CleanupRequest, String>,
    patience: Patience,
) -> Round {
    let mut round = Round::default();
    round.report.attempted = items.len() as u64;
    let jobs = items
        .into_iter()
        .filter_map(|item| job(item, request, &mut round))
        .collect();
    let out = retry::first(jobs, CONCURRENCY, deadline, patience, |job| {
        attempt(&client, job, deadline)
    })
    .await;
    take(&mut round, out, patience);
    round
}

/// Tries again, until `deadline`, what earlier tries handed back ([`Round::again`]), the
/// back-off first; what still fails is left with its last failure. Each is read again before
/// its delete, as on its first try.
pub async fn delete_again(
    client: Arc<HttpClient>,
    again: Vec<(Created, String)>,
    deadline: Instant,
    request: fn(&Created) -> Result<CleanupRequest, String>,
) -> Round {
    let mut round = Round::default();
    let failing = again
        .into_iter()
        .filter_map(|(item, last)| Some((job(item, request, &mut round)?, last)))
        .collect();
    let out = retry::again(failing, CONCURRENCY, deadline, |job| attempt(&client, job, deadline)).await;
    take(&mut round, out, Patience::Deadline);
    round
}

/// An item's job; one whose request cannot be made is left with why.
fn job(item: Created, request: fn(&Created) -> Result<CleanupRequest, String>, round: &mut Round) -> Option<Job> {
    match request(&item) {
        Ok(req) => Some(Job {
            item,
            req,
            proven: false,
            rate_limited: 0,
        }),
        Err(why) => {
            round.left.push(left(&item, why));
            None
        }
    }
}

/// Counts what the tries did into `round`.
fn take(round: &mut Round, out: retry::Outcome<Job, Deleted>, patience: Patience) {
    let report = &mut round.report;
    report.retries += out.retries;
    report.timed_out |= out.timed_out;
    for (job, end) in out.ended {
        report.rate_limited += job.rate_limited;
        match end {
            Deleted::Done => {
                report.deleted += 1;
                round.claimed.push(job.item);
            }
            Deleted::AlreadyGone => {
                report.already_gone += 1;
                round.claimed.push(job.item);
            }
            Deleted::Left(why) => round.left.push(left(&job.item, why)),
        }
    }
    for (job, why) in out.failing {
        report.rate_limited += job.rate_limited;
        match patience {
            Patience::Deadline => round.left.push(left(&job.item, why)),
            Patience::Brief | Patience::Until(_) => round.again.push((job.item, why)),
        }
    }
}

/// Ends a cleanup report: what is left, counted (failed apart from unverified) and listed (the
/// list bounded, failures first).
pub fn close(mut report: CleanupReport, mut left: Vec<LeftBehind>, started: Instant) -> CleanupReport {
    report.unverified = left.iter().filter(|l| l.unverified).count() as u64;
    report.failed = left.len() as u64 - report.unverified;
    left.sort_by_key(|l| l.unverified);
    left.truncate(CleanupReport::LISTED);
    report.left = left;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::{proves, shows_identity_of};
    use crate::ledger::{HookProof, RunId};

    /// What a custom operation made is proven only by a name carrying the marker as a whole
    /// token, given once, at the pointer, in an answer about the id read.
    #[test]
    fn a_marker_proves_only_once_at_its_pointer_about_the_id_read() {
        let p = |id: Option<&str>| HookProof {
            read: "/users/u-1".into(),
            identity: "/name/formatted".into(),
            marker: RunId::parse("pb-0wn5a1b2").unwrap(),
            about: vec!["u-1".into(), "7".into()],
            id: id.map(String::from),
        };
        let by = |b: &str, id: Option<&str>| proves(b.as_bytes(), &p(id));
        assert!(by(
            r#"{"id":"u-1","name":{"formatted":"pb-0wn5a1b2-7"},"x":[1,2.5,null,true]}"#,
            None
        ));
        assert!(
            by(r#"{"name":{"formatted":"pb-0wn5a1b2-7"}}"#, None),
            "no id member, none asked"
        );
        assert!(by(r#"{"id":7,"name":{"formatted":"pb-0wn5a1b2-7"}}"#, None));
        assert!(by(
            r#"{"uuid":"u-1","name":{"formatted":"pb-0wn5a1b2-7"}}"#,
            Some("/uuid")
        ));
        for (refused, id) in [
            (r#"{"id":"u-1","name":{"formatted":"pb-0wn5a1b20-7"}}"#, None),
            (r#"{"id":"admin-1","name":{"formatted":"pb-0wn5a1b2-7"}}"#, None),
            (r#"{"id":["u-1"],"name":{"formatted":"pb-0wn5a1b2-7"}}"#, None),
            (r#"{"name":{"formatted":"pb-0wn5a1b2-7"}}"#, Some("/uuid")),
            (
                r#"{"name":{"formatted":"admin"},"name":{"formatted":"pb-0wn5a1b2-7"}}"#,
                None,
            ),
            (r#"{"name":{"formatted":"admin","formatted":"pb-0wn5a1b2-7"}}"#, None),
            (r#"{"id":"u-1","id":"u-1","name":{"formatted":"pb-0wn5a1b2-7"}}"#, None),
            (r#"{"name":{"formatted":["pb-0wn5a1b2-7"]}}"#, None),
            (r#"{"name":{"formatted":"pb-0wn5a1b2-7"}} trailing"#, None),
            (r#"{"formatted":"pb-0wn5a1b2-7"}"#, None),
        ] {
            assert!(!by(refused, id), "{refused}");
        }
    }
    use proptest::prelude::*;

    proptest! {
        /// What a whole-tree read decides (the object's `id` member is the string `u-1`, and its
        /// one member named `userName`, ASCII case aside, is the string, ASCII case aside), read
        /// in place: over generated answers, the same verdict, except that a name given twice
        /// (a tree keeps one) shows nothing.
        #[test]
        fn the_identity_read_in_place_is_the_one_a_tree_shows(
            members in prop::collection::vec(
                (
                    prop::sample::select(vec!["userName", "username", "id", "ID", "\\u0069d", "displayName", "user\\u004eame", "meta"]),
                    prop_oneof![
                        Just(serde_json::json!("pb-1a2b3c4d-1@x.test")),
                        Just(serde_json::json!("PB-1A2B3C4D-1@X.TEST")),
                        Just(serde_json::json!("admin")),
                        Just(serde_json::json!("u-1")),
                        Just(serde_json::json!("U-1")),
                        Just(serde_json::json!(["pb-1a2b3c4d-1@x.test"])),
                        Just(serde_json::json!({"userName": "pb-1a2b3c4d-1@x.test", "id": "u-1"})),
                        Just(serde_json::Value::Null),
                    ],
                ),
                0..6,
            ),
            cut in prop::option::of(0usize..140),
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                // Keys as written, escapes included (`user\u004eame` is `userName`, `\u0069d` `id`).
                text.push_str(&format!("\"{k}\":{v}"));
            }
            text.push('}');
            let body = match cut {
                Some(n) if n < text.len() => &text.as_bytes()[..n],
                _ => text.as_bytes(),
            };
            // The tree's verdict, names compared as SCIM does (ASCII case aside): one member
            // named `userName` (however written) holding the name, and `id` (exactly) the id.
            let tree = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
                let o = v.as_object()?;
                let named: Vec<_> = o.iter().filter(|(k, _)| k.eq_ignore_ascii_case("userName")).collect();
                Some(
                    named.len() == 1
                        && named[0].1.as_str().is_some_and(|s| s.eq_ignore_ascii_case("pb-1a2b3c4d-1@x.test"))
                        && o.get("id").and_then(|i| i.as_str()) == Some("u-1"),
                )
            }) == Some(true);
            let count = |names: &[&str]| members.iter().filter(|(k, _)| names.contains(k)).count();
            let named = count(&["userName", "user\\u004eame", "username"]);
            let ids = count(&["id", "\\u0069d"]);
            let in_place = shows_identity_of(body, "u-1", "userName", "pb-1a2b3c4d-1@x.test");
            if named > 1 || ids > 1 {
                // A tree keeps one of them; read in place, a member given twice (the name, or
                // the `id` read beside it) shows nothing.
                prop_assert!(!in_place, "{}", text);
            } else {
                prop_assert_eq!(in_place, tree, "{}", text);
            }
        }
    }
}
