//! The `[probes]` section: how the asynchronous half is observed (queue delay from a job-status
//! URL, sync lag per linked service by polling or push), how often, and within what bounds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::directory::{LdapRead, LdapReadWire};
use super::downstream::{Access, Find, HeaderValue, ServiceAuth, UrlTemplate};
use super::error::{At, Source, WorkloadError};
use super::fields::{count, duration, pointer, pointer_or, share, span_of};
use super::limits;
use crate::vocab::Op;

/// Where a downstream keeps each attribute (JSON pointers): SCIM names by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointers {
    pub active: String,
    pub roles: String,
    pub title: String,
}

impl Default for Pointers {
    fn default() -> Self {
        Self {
            active: "/active".into(),
            roles: "/roles".into(),
            title: "/title".into(),
        }
    }
}

fn observable() -> impl Iterator<Item = Op> {
    Op::ALL.iter().copied().filter(|o| o.is_observable_write())
}

/// `[probes]`, on disk. Keys that are checked keep their place, for errors at their line.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbesWire {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub sample: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_pending: Option<Spanned<usize>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub poll: Option<Spanned<PollWire>>,
    /// Requests a second shared by the services read by batched queries that set no `budget`
    /// of their own (default 45).
    #[serde(default)]
    pub budget: Option<Spanned<f64>>,
    #[serde(default)]
    pub queue: Option<Spanned<QueueWire>>,
    /// Each service is read again as the shape its keys say ([`HttpSyncWire`], or
    /// [`LdapSyncWire`] with `ldap = { … }`).
    #[serde(default)]
    pub sync: Option<Vec<Spanned<SyncPeek>>>,
    #[serde(default)]
    pub push: Option<PushWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollWire {
    pub initial: Option<Spanned<String>>,
    pub max: Option<Spanned<String>>,
    pub factor: Option<Spanned<f64>>,
    /// Relative spacing instead of `factor`: 0.1 polls every 10 % of the elapsed time.
    pub precision: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueWire {
    /// The response header holding the job-status URL (or the job id, with `job_url`).
    #[serde(default)]
    pub job_header: Option<Spanned<String>>,
    /// A JSON pointer into the write's response body holding the job URL or id.
    #[serde(default)]
    pub job_pointer: Option<Spanned<String>>,
    /// `/jobs/{job}`: builds the URL from a job id.
    #[serde(default)]
    pub job_url: Option<Spanned<String>>,
    #[serde(default)]
    pub accepted_at: Option<Spanned<String>>,
    #[serde(default)]
    pub started_at: Option<Spanned<String>>,
    /// Without timestamps: the job has started once this pointer differs from `not_equals`.
    #[serde(default)]
    pub started_when: Option<StartedWhenWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartedWhenWire {
    pub pointer: Spanned<String>,
    pub not_equals: toml::Value,
}

/// What the section-wide read keeps of a `[[probes.sync]]` service: whether it is a directory.
#[derive(Debug, Deserialize)]
pub struct SyncPeek {
    #[serde(default)]
    pub ldap: Option<serde::de::IgnoredAny>,
}

/// A service read over HTTP.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpSyncWire {
    pub service: String,
    /// Read URL by id (`{id}`, `{userName}`), origin-relative or absolute.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Or a query URL whose answer lists the user (`?filter=userName eq "{userName}"`).
    #[serde(default)]
    pub query: Option<Spanned<String>>,
    /// With `query`: the JSON pointer to the result list (default `/Resources`).
    #[serde(default)]
    pub list: Option<Spanned<String>>,
    /// With `query`: the pointer, in each listed item, to the user's userName (default `/userName`).
    #[serde(default)]
    pub identity: Option<Spanned<String>>,
    /// `"target"`, `"none"`, `{ kind = "bearer", token_env = … }`, `{ kind = "basic", … }`,
    /// `{ kind = "oauth2-client-credentials", … }`: read by [`ServiceAuth::from_wire`].
    #[serde(default)]
    pub auth: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, HeaderValue>>,
    /// PEM CA bundle for an https:// service behind a private CA.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// PEM certificate and key the probes present to it (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
    /// A JSON pointer, in the user's document there, to the service's own change time (RFC 3339,
    /// e.g. `/meta/lastModified`): used instead of the bracket when it falls inside it.
    #[serde(default)]
    pub changed_at: Option<Spanned<String>>,
    /// How far that service's clock may be from ours (default 5ms): the resolution it gives.
    #[serde(default)]
    pub clock_uncertainty: Option<Spanned<String>>,
    /// `poll` (default) or `push`.
    #[serde(default)]
    pub observe: Option<Spanned<String>>,
    /// The most requests a second the probes send this service (default: an even share of
    /// `probes.budget` where it is read by batched queries, no limit where it is read by id).
    #[serde(default)]
    pub budget: Option<Spanned<f64>>,
    /// With `query`: read every user pending there in one query, their filters joined by `or`
    /// (default true where the query's placeholders sit in one parameter).
    #[serde(default)]
    pub batch: Option<Spanned<bool>>,
    /// Users in one batched query (default 50).
    #[serde(default)]
    pub batch_max: Option<Spanned<usize>>,
    #[serde(default)]
    pub ops: Option<Vec<Spanned<String>>>,
    /// Where this service keeps `active`, `roles` and `title` (JSON pointers; SCIM names by default).
    #[serde(default)]
    pub pointers: Option<PointersWire>,
}

/// A directory read by LDAP search: `ldap = { … }` says where and how; the HTTP keys (`url`,
/// `query`, `auth`, `headers`, TLS files, `changed_at`, `pointers`, batching) are not its.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSyncWire {
    pub service: String,
    pub ldap: Spanned<LdapReadWire>,
    #[serde(default)]
    pub observe: Option<Spanned<String>>,
    #[serde(default)]
    pub budget: Option<Spanned<f64>>,
    /// Only `false`: a search reads one user.
    #[serde(default)]
    pub batch: Option<Spanned<bool>>,
    #[serde(default)]
    pub ops: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointersWire {
    pub active: Option<Spanned<String>>,
    pub roles: Option<Spanned<String>>,
    pub title: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushWire {
    /// Loopback address for the webhook receiver (`127.0.0.1:0` picks a port).
    #[serde(default)]
    pub listen: Option<String>,
    /// JSON pointer to the job id in an event.
    #[serde(default)]
    pub job_pointer: Option<Spanned<String>>,
    /// JSON pointer to the service name in an event.
    #[serde(default)]
    pub service_pointer: Option<Spanned<String>>,
}

/// Requests a second the batched services share by default: each is a read of every user
/// pending at one service, whatever the load (three services: 15 a second each).
pub const DEFAULT_BUDGET: f64 = 45.0;

/// Each poll gap is this share of the time since the write (within the budget): a bracket is
/// then about 5 % of its lag, and the midpoint within 2.5 % of the truth.
pub const DEFAULT_PRECISION: f64 = 0.05;

#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    /// When set, each gap is this share of the time since the write (within `initial..=max`):
    /// every bracket is then at most that share of its lag, so the midpoint is within half of it.
    pub precision: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobSource {
    Header(String),
    Pointer(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartDetection {
    /// Server-reported timestamps (RFC 3339) at these pointers: exact.
    Timestamps { accepted_at: String, started_at: String },
    /// First poll where `pointer` no longer equals `value`: resolution = polling interval.
    StateChange {
        pointer: String,
        not_equals: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueProbe {
    pub source: JobSource,
    /// `/jobs/{job}` when the source yields an id rather than a URL.
    pub url_template: Option<String>,
    pub start: StartDetection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    Poll,
    Push,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncProbe {
    pub service: String,
    pub find: Find,
    pub access: Access,
    pub observe: Observe,
    pub ops: Vec<Op>,
    pub pointers: Pointers,
    /// The service's own change time, when it publishes one.
    pub changed_at: Option<ChangeTime>,
    /// Requests a second this service is sent at most (`None`: no limit).
    pub budget: Option<f64>,
    /// Users one query asks for, when the service is read by a batched query.
    pub batch: Option<usize>,
    /// A directory read by LDAP search (then `find` and `access` are not used).
    pub ldap: Option<super::directory::LdapRead>,
}

/// Where a service publishes when it applied a change, and how far its clock may be off.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeTime {
    pub pointer: String,
    pub uncertainty: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushReceiver {
    pub listen: String,
    pub job_pointer: String,
    pub service_pointer: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probes {
    pub sample: f64,
    pub max_pending: usize,
    pub timeout: Duration,
    pub poll: PollPolicy,
    pub queue: Option<QueueProbe>,
    pub sync: Vec<SyncProbe>,
    pub push: Option<PushReceiver>,
}

/// A probes duration, within the bound of every wait.
fn dur(src: &Source, s: &Spanned<String>, key: &str) -> Result<Duration, WorkloadError> {
    duration(src, s, &format!("probes.{key}"), limits::WAIT)
}

/// An optional probes duration, `default` (ms) when absent.
fn dur_or(src: &Source, s: &Option<Spanned<String>>, key: &str, default: u64) -> Result<Duration, WorkloadError> {
    s.as_ref()
        .map(|s| dur(src, s, key))
        .transpose()
        .map(|d| d.unwrap_or(Duration::from_millis(default)))
}

impl Probes {
    /// Converts `[probes]`. `embedded_services` (the embedded target's linked services) fill in
    /// what an embedded workload leaves out; `None` for other targets. Errors point at the key
    /// at fault.
    pub fn from_wire(
        src: &Source,
        w: Option<Spanned<ProbesWire>>,
        embedded_services: Option<&[String]>,
    ) -> Result<Option<Probes>, WorkloadError> {
        let explicit = w.is_some();
        let (section, w) = match w {
            Some(w) => (Some(w.span()), w.into_inner()),
            None => (None, ProbesWire::default()),
        };
        if w.enabled == Some(false) || (!explicit && embedded_services.is_none()) {
            return Ok(None);
        }
        let sample = share(src, &w.sample, "probes.sample", 0.1)?;
        let poll = poll_policy(src, w.poll.as_ref())?;
        let queue = match (&w.queue, embedded_services) {
            (Some(q), _) => Some(queue_probe(src, q)?),
            (None, Some(_)) => Some(QueueProbe {
                source: JobSource::Header("x-job-location".into()),
                url_template: None,
                start: StartDetection::Timestamps {
                    accepted_at: "/accepted_at".into(),
                    started_at: "/started_at".into(),
                },
            }),
            (None, None) => None,
        };
        let push = w.push.as_ref().map(|p| push_receiver(src, p)).transpose()?;
        let mut sync = sync_probes(src, w.sync.as_deref(), embedded_services, push.is_some())?;
        share_budget(src, &mut sync, &w.budget)?;
        if queue.is_none() && sync.is_empty() {
            return Err(src.error(
                section,
                "[probes] observes nothing: add `queue` or `sync` (or enabled = false)",
            ));
        }
        Ok(Some(Probes {
            sample,
            max_pending: match &w.max_pending {
                Some(n) => count(src, n, "probes.max_pending", 1, limits::PENDING)?,
                None => 10_000,
            },
            timeout: dur_or(src, &w.timeout, "timeout", 30_000)?,
            poll,
            queue,
            sync,
            push,
        }))
    }
}

/// Requests a second, where a budget may be.
fn budget(src: &Source, b: &Spanned<f64>, what: &str) -> Result<f64, WorkloadError> {
    let v = *b.get_ref();
    if !(0.1..=10_000.0).contains(&v) {
        return Err(src.error(
            Some(b.span()),
            format!("{what} is requests a second, between 0.1 and 10000, got {v}"),
        ));
    }
    Ok(v)
}

/// Gives each batched service that set no budget an even share of the probes' `total`.
fn share_budget(src: &Source, sync: &mut [SyncProbe], total: &Option<Spanned<f64>>) -> Result<(), WorkloadError> {
    let total = match total {
        Some(t) => budget(src, t, "probes.budget")?,
        None => DEFAULT_BUDGET,
    };
    let sharing = sync.iter().filter(|s| s.batch.is_some() && s.budget.is_none()).count();
    for s in sync.iter_mut().filter(|s| s.batch.is_some() && s.budget.is_none()) {
        s.budget = Some(total / sharing as f64);
    }
    Ok(())
}

fn poll_policy(src: &Source, w: Option<&Spanned<PollWire>>) -> Result<PollPolicy, WorkloadError> {
    let Some(w) = w else {
        return Ok(PollPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(1000),
            factor: 1.5,
            precision: Some(DEFAULT_PRECISION),
        });
    };
    let (span, p) = (w.span(), w.get_ref());
    let poll = PollPolicy {
        initial: dur_or(src, &p.initial, "poll.initial", 10)?,
        max: dur_or(src, &p.max, "poll.max", 1000)?,
        factor: p.factor.as_ref().map_or(1.5, |f| *f.get_ref()),
        // Relative spacing unless a growth factor is asked for.
        precision: match (&p.precision, &p.factor) {
            (Some(p), _) => Some(*p.get_ref()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_PRECISION),
        },
    };
    if poll.initial.is_zero() || poll.max < poll.initial || !(1.0..=10.0).contains(&poll.factor) {
        let at = span_of(&p.factor).filter(|_| !(1.0..=10.0).contains(&poll.factor));
        return Err(src.error(
            at.or(span_of(&p.initial)).or(Some(span)),
            "probes.poll needs 0 < initial <= max and 1 <= factor <= 10",
        ));
    }
    if let Some(given) = &p.precision
        && !(0.001..=1.0).contains(given.get_ref())
    {
        return Err(src.error(
            Some(given.span()),
            "probes.poll.precision is a share of the elapsed time, between 0.001 and 1 (e.g. 0.1)",
        ));
    }
    Ok(poll)
}

fn queue_probe(src: &Source, q: &Spanned<QueueWire>) -> Result<QueueProbe, WorkloadError> {
    let (span, q) = (Some(q.span()), q.get_ref());
    Ok(QueueProbe {
        source: match (&q.job_header, &q.job_pointer) {
            (Some(h), None) => JobSource::Header(h.get_ref().clone()),
            (None, Some(p)) => JobSource::Pointer(pointer(src, p, "probes.queue.job_pointer")?),
            (Some(_), Some(p)) => {
                return Err(src.error(
                    Some(p.span()),
                    "probes.queue: give exactly one of `job_header` or `job_pointer`",
                ));
            }
            (None, None) => {
                return Err(src.error(span, "probes.queue: give exactly one of `job_header` or `job_pointer`"));
            }
        },
        url_template: match &q.job_url {
            Some(t) if !t.get_ref().contains("{job}") => {
                return Err(src.error(
                    Some(t.span()),
                    format!("probes.queue.job_url `{}` needs a `{{job}}` placeholder", t.get_ref()),
                ));
            }
            other => other.as_ref().map(|t| t.get_ref().clone()),
        },
        start: match (&q.accepted_at, &q.started_at, &q.started_when) {
            (Some(a), Some(s), None) => StartDetection::Timestamps {
                accepted_at: pointer(src, a, "probes.queue.accepted_at")?,
                started_at: pointer(src, s, "probes.queue.started_at")?,
            },
            (None, None, Some(w)) => StartDetection::StateChange {
                pointer: pointer(src, &w.pointer, "probes.queue.started_when.pointer")?,
                not_equals: serde_json::to_value(&w.not_equals).unwrap_or_default(),
            },
            _ => {
                return Err(src.error(
                    span,
                    "probes.queue: give `accepted_at` and `started_at` (server timestamps), or `started_when` (state change)",
                ));
            }
        },
    })
}

fn push_receiver(src: &Source, p: &PushWire) -> Result<PushReceiver, WorkloadError> {
    Ok(PushReceiver {
        listen: p.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
        job_pointer: pointer_or(src, &p.job_pointer, "probes.push.job_pointer", "/job_id")?,
        service_pointer: pointer_or(src, &p.service_pointer, "probes.push.service_pointer", "/service")?,
    })
}

/// The `[[probes.sync]]` services, each read as the shape its keys say; an embedded target's
/// linked services when none are given.
fn sync_probes(
    src: &Source,
    given: Option<&[Spanned<SyncPeek>]>,
    embedded_services: Option<&[String]>,
    has_push: bool,
) -> Result<Vec<SyncProbe>, WorkloadError> {
    let embedded = embedded_services.is_some();
    let mut sync: Vec<SyncProbe> = Vec::new();
    let Some(given) = given else {
        for s in embedded_services.unwrap_or_default() {
            let wire = HttpSyncWire {
                service: s.clone(),
                ..Default::default()
            };
            sync.push(http_sync_probe(src, wire, None, embedded, has_push)?);
        }
        return Ok(sync);
    };
    for (i, peek) in given.iter().enumerate() {
        let path = [At::Key("probes"), At::Key("sync"), At::Index(i)];
        let item = Some(peek.span());
        let missing = || src.error(item.clone(), "probes.sync: the service cannot be read again");
        let probe = if peek.get_ref().ldap.is_some() {
            let w: LdapSyncWire = src.reread(&path)?.ok_or_else(missing)?;
            ldap_sync_probe(src, w, has_push)?
        } else {
            let w: HttpSyncWire = src.reread(&path)?.ok_or_else(missing)?;
            http_sync_probe(src, w, Some(&path), embedded, has_push)?
        };
        if sync.iter().any(|p| p.service == probe.service) {
            return Err(src.error(
                item,
                format!("probes.sync: service `{}` is listed twice", probe.service),
            ));
        }
        sync.push(probe);
    }
    Ok(sync)
}

/// Where the service keeps the user: `url` (by id) or `query` (+ `list`, `identity`).
fn find(src: &Source, s: &HttpSyncWire, embedded: bool) -> Result<Find, WorkloadError> {
    let svc = &s.service;
    let template = |t: &Spanned<String>| {
        UrlTemplate::parse(t.get_ref()).map_err(|e| src.error(Some(t.span()), format!("probes.sync `{svc}`: {e}")))
    };
    for (key, v) in [("list", &s.list), ("identity", &s.identity)] {
        if let Some(v) = v
            && s.query.is_none()
        {
            return Err(src.error(
                Some(v.span()),
                format!("probes.sync `{svc}`: `{key}` goes with `query`"),
            ));
        }
    }
    match (&s.url, &s.query) {
        (Some(u), None) => Ok(Find::ById(template(u)?)),
        (None, Some(q)) => Ok(Find::Query {
            url: template(q)?,
            list: pointer_or(src, &s.list, "probes.sync.list", "/Resources")?,
            identity: pointer_or(src, &s.identity, "probes.sync.identity", "/userName")?,
        }),
        // The embedded target's services are read as a real downstream found by filter is:
        // one batched query per tick for every user pending there.
        (None, None) if embedded => Ok(Find::Query {
            url: UrlTemplate::parse(&format!("/linked/{svc}/Users?filter=userName eq \"{{userName}}\""))
                .map_err(|e| src.error(None, format!("probes.sync `{svc}`: {e}")))?,
            list: "/Resources".into(),
            identity: "/userName".into(),
        }),
        (None, None) => Err(src.error(
            None,
            format!(
                "probes.sync `{svc}` needs a `url` by id (e.g. \"/directory/users/{{id}}\") or a `query` (e.g. \"/crm/Users?filter=userName eq \\\"{{userName}}\\\"\")"
            ),
        )),
        (Some(_), Some(q)) => Err(src.error(
            Some(q.span()),
            format!("probes.sync `{svc}`: give `url` or `query`, not both"),
        )),
    }
}

/// A service's TLS files, resolved against the workload's folder: files that exist, for an
/// absolute https:// service.
fn service_tls(src: &Source, s: &HttpSyncWire, url: &str) -> Result<crate::http::Tls, WorkloadError> {
    let service = &s.service;
    let file = |f: &Spanned<String>, key: &str| {
        let path = src.dir().join(f.get_ref());
        let at = Some(f.span());
        if !url.starts_with("https://") {
            return Err(src.error(
                at,
                format!("probes.sync `{service}`: `{key}` needs an absolute https:// url or query"),
            ));
        }
        if !path.is_file() {
            return Err(src.error(
                at,
                format!("probes.sync `{service}`: {key}: no file {}", path.display()),
            ));
        }
        Ok(path)
    };
    let ca_file = s.ca_file.as_ref().map(|f| file(f, "ca_file")).transpose()?;
    let client_identity = match (&s.client_cert, &s.client_key) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((file(c, "client_cert")?, file(k, "client_key")?)),
        (Some(one), None) | (None, Some(one)) => {
            return Err(src.error(
                Some(one.span()),
                format!("probes.sync `{service}`: give both `client_cert` and `client_key`"),
            ));
        }
    };
    Ok(crate::http::Tls {
        ca_file,
        client_identity,
    })
}

/// How a service's changes are seen: polled, or pushed to `[probes.push]`.
fn observe(src: &Source, o: &Option<Spanned<String>>, service: &str, has_push: bool) -> Result<Observe, WorkloadError> {
    let at = span_of(o);
    match o.as_ref().map(|o| o.get_ref().as_str()) {
        None | Some("poll") => Ok(Observe::Poll),
        Some("push") if has_push => Ok(Observe::Push),
        Some("push") => Err(src.error(
            at,
            format!("probes.sync `{service}` observes by push: add [probes.push]"),
        )),
        Some(other) => Err(src.error(
            at,
            format!("probes.sync `{service}`: observe must be `poll` or `push`, got `{other}`"),
        )),
    }
}

/// The writes a service is observed for (default: every observable one).
fn ops(src: &Source, given: &Option<Vec<Spanned<String>>>, service: &str) -> Result<Vec<Op>, WorkloadError> {
    let Some(names) = given else {
        return Ok(observable().collect());
    };
    names
        .iter()
        .map(|name| {
            Op::parse(name.get_ref())
                .filter(|o| o.is_observable_write())
                .ok_or_else(|| {
                    let known: Vec<&str> = observable().map(Op::as_str).collect();
                    src.error(
                        Some(name.span()),
                        format!(
                            "probes.sync `{service}`: `{}` is not observable (known: {})",
                            name.get_ref(),
                            known.join(", ")
                        ),
                    )
                })
        })
        .collect()
}

/// Where the service keeps `active`, `roles` and `title`.
fn pointers(src: &Source, given: &Option<PointersWire>) -> Result<Pointers, WorkloadError> {
    let mut pointers = Pointers::default();
    if let Some(p) = given {
        for (slot, given, key) in [
            (&mut pointers.active, &p.active, "active"),
            (&mut pointers.roles, &p.roles, "roles"),
            (&mut pointers.title, &p.title, "title"),
        ] {
            if let Some(g) = given {
                *slot = pointer(src, g, &format!("probes.sync.pointers.{key}"))?;
            }
        }
    }
    Ok(pointers)
}

/// The service's own change time, and how far its clock may be off.
fn changed_at(src: &Source, s: &HttpSyncWire) -> Result<Option<ChangeTime>, WorkloadError> {
    match (&s.changed_at, &s.clock_uncertainty) {
        (Some(p), u) => Ok(Some(ChangeTime {
            pointer: pointer(src, p, "probes.sync.changed_at")?,
            uncertainty: dur_or(src, u, "sync.clock_uncertainty", 5)?,
        })),
        (None, Some(u)) => Err(src.error(
            Some(u.span()),
            format!(
                "probes.sync `{}`: `clock_uncertainty` goes with `changed_at`",
                s.service
            ),
        )),
        (None, None) => Ok(None),
    }
}

/// Users one query asks for, when the service is read by a batched query.
fn batch(src: &Source, s: &HttpSyncWire, find: &Find) -> Result<Option<usize>, WorkloadError> {
    let batchable = matches!(find, Find::Query { url, .. } if url.batchable());
    match (s.batch.as_ref().map(|b| *b.get_ref()), batchable) {
        (Some(true), false) => Err(src.error(
            span_of(&s.batch),
            format!(
                "probes.sync `{}`: batch needs a `query` whose placeholders sit in one parameter (e.g. `filter=userName eq \"{{userName}}\"`)",
                s.service
            ),
        )),
        (Some(false), _) | (None, false) => Ok(None),
        (_, true) => match &s.batch_max {
            Some(n) => count(src, n, &format!("probes.sync `{}`.batch_max", s.service), 1, 1000).map(Some),
            None => Ok(Some(50)),
        },
    }
}

/// A service read over HTTP; `path` is where its table is (none for an embedded default).
fn http_sync_probe(
    src: &Source,
    s: HttpSyncWire,
    path: Option<&[At]>,
    embedded: bool,
    has_push: bool,
) -> Result<SyncProbe, WorkloadError> {
    let find = find(src, &s, embedded)?;
    let relative = find.url().as_str().starts_with('/');
    let auth_at = match (&s.auth, path) {
        (Some(a), Some(path)) => Some((
            path.iter().copied().chain([At::Key("auth")]).collect::<Vec<_>>(),
            a.span(),
        )),
        _ => None,
    };
    let auth = ServiceAuth::from_wire(
        src,
        auth_at.as_ref().map(|(p, s)| (p.as_slice(), s.clone())),
        relative,
        &s.service,
    )?;
    let access = Access {
        auth,
        headers: s.headers.clone().unwrap_or_default().into_iter().collect(),
        tls: service_tls(src, &s, find.url().as_str())?,
    };
    Ok(SyncProbe {
        observe: observe(src, &s.observe, &s.service, has_push)?,
        ops: ops(src, &s.ops, &s.service)?,
        pointers: pointers(src, &s.pointers)?,
        changed_at: changed_at(src, &s)?,
        // Batched services without a budget of their own get a share of the probes' (later).
        budget: s
            .budget
            .as_ref()
            .map(|b| budget(src, b, &format!("probes.sync `{}`: budget", s.service)))
            .transpose()?,
        batch: batch(src, &s, &find)?,
        find,
        access,
        ldap: None,
        service: s.service,
    })
}

/// A directory read by LDAP search: its answer stands in for a read by id (see `LdapRead`).
fn ldap_sync_probe(src: &Source, s: LdapSyncWire, has_push: bool) -> Result<SyncProbe, WorkloadError> {
    if let Some(b) = &s.batch
        && *b.get_ref()
    {
        return Err(src.error(
            Some(b.span()),
            format!(
                "probes.sync `{}`: `batch` is for HTTP services; an LDAP one is described inside `ldap = {{ … }}`",
                s.service
            ),
        ));
    }
    let key = format!("probes.sync `{}` ldap", s.service);
    let at = Some(s.ldap.span());
    let ldap = LdapRead::from_wire(s.ldap.into_inner(), &key, src.dir()).map_err(|m| src.error(at.clone(), m))?;
    let find = Find::ById(UrlTemplate::parse("/{userName}").map_err(|m| src.error(at, m))?);
    Ok(SyncProbe {
        observe: observe(src, &s.observe, &s.service, has_push)?,
        ops: ops(src, &s.ops, &s.service)?,
        pointers: Pointers::default(),
        changed_at: None,
        budget: s
            .budget
            .as_ref()
            .map(|b| budget(src, b, &format!("probes.sync `{}`: budget", s.service)))
            .transpose()?,
        batch: None,
        find,
        access: Access {
            auth: ServiceAuth::Target,
            headers: Vec::new(),
            tls: crate::http::Tls::default(),
        },
        ldap: Some(ldap),
        service: s.service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Converts `text`, a document with a `[probes]` section.
    fn probes(text: &str, embedded: Option<&[String]>) -> Result<Option<Probes>, WorkloadError> {
        #[derive(Deserialize)]
        struct Doc {
            probes: Option<Spanned<ProbesWire>>,
        }
        let src = Source {
            file: std::path::Path::new("w.toml"),
            text,
            remap: None,
        };
        let doc: Doc = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
        Probes::from_wire(&src, doc.probes, embedded)
    }

    #[test]
    fn embedded_targets_get_queue_and_every_service_by_default() {
        let services = vec!["directory".to_string(), "mail".to_string()];
        let p = probes("", Some(&services)).unwrap().unwrap();
        assert_eq!(p.sync.len(), 2);
        assert_eq!(
            p.sync[1].find.url().as_str(),
            "/linked/mail/Users?filter=userName%20eq%20%22{userName}%22"
        );
        assert_eq!(p.sync[1].batch, Some(50), "read by one batched query per tick");
        assert_eq!(p.sync[1].budget, Some(DEFAULT_BUDGET / 2.0), "an even share");
        assert_eq!(p.poll.precision, Some(DEFAULT_PRECISION));
        assert_eq!(p.sync[1].access.auth, ServiceAuth::Target);
        assert!(matches!(p.queue.unwrap().start, StartDetection::Timestamps { .. }));
        assert_eq!(p.sample, 0.1);
        assert!(
            probes("", None).unwrap().is_none(),
            "SCIM targets have no probes unless asked"
        );
    }

    #[test]
    fn explicit_probes_are_checked() {
        let err = probes("[probes]\nsample = 2.0", None).unwrap_err();
        assert!(err.message.contains("sample"));
        let err = probes("[[probes.sync]]\nservice = \"ldap\"\n", None).unwrap_err();
        assert!(
            err.message.contains("needs a `url` by id") && err.message.contains("or a `query`"),
            "{err}"
        );
        let err = probes(
            "[probes]\nqueue = { job_header = \"x\", accepted_at = \"at\", started_at = \"/s\" }",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("JSON pointer"), "{err}");
        let err = probes(
            "[[probes.sync]]\nservice = \"d\"\nurl = \"/u/{id}\"\nobserve = \"push\"\n",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("[probes.push]"), "{err}");
        assert!(
            probes("[probes]\nenabled = false", Some(&["d".into()]))
                .unwrap()
                .is_none()
        );
    }

    /// Each mistake inside `[probes]` points at the line of its key, not at the section's.
    #[test]
    fn errors_name_their_keys_line() {
        for (text, line, needle) in [
            ("[probes]\nenabled = true\nsample = 2.0\n", 3, "probes.sample"),
            (
                "[probes]\n\ntimeout = \"soon\"\n[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\n",
                3,
                "probes.timeout",
            ),
            (
                "[probes]\npoll = { initial = \"10ms\",\n  precision = 5.0 }\n",
                3,
                "precision",
            ),
            (
                "[[probes.sync]]\nservice = \"crm\"\nurl = \"/crm/{id}\"\n\nops = [\"create_user\",\n  \"get_user\"]\n",
                6,
                "not observable",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\nobserve = \"pull\"\n",
                4,
                "observe must be",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\nqueyr = \"/q\"\n",
                4,
                "did you mean `query`?",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{uid}\"\n",
                3,
                "unknown placeholder",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"https://a.test/{id}\"\nauth = { kind = \"bearer\",\n token_env = \"T\", scope = \"x\" }\n",
                5,
                "unknown key `scope`",
            ),
        ] {
            let e = probes(text, None).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {e}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
        }
    }

    /// An LDAP service is read as its own shape: HTTP keys are unknown there, at their line.
    #[test]
    fn an_ldap_service_refuses_http_keys() {
        let text = "[[probes.sync]]\nservice = \"replica\"\nldap = { url = \"ldap://127.0.0.1:3890\", base_dn = \"ou=people,dc=x\" }\nquery = \"/q\"\n";
        let e = probes(text, None).unwrap_err();
        assert!(e.message.contains("unknown key `query`"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        let ok = text.replace("query = \"/q\"\n", "");
        let p = probes(&ok, None).unwrap().unwrap();
        assert!(p.sync[0].ldap.is_some());
        assert_eq!(p.sync[0].access.auth, ServiceAuth::Target);
    }

    /// Other origins get no credentials unless a service says so; query views get their defaults.
    #[test]
    fn reads_of_other_origins_carry_none_of_the_targets_credentials() {
        let p = probes(
            "[[probes.sync]]\nservice = \"crm\"\nquery = \"https://crm.example.test/Users?filter=userName eq \\\"{userName}\\\"\"\n\
             [[probes.sync]]\nservice = \"dir\"\nurl = \"https://dir.example.test/u/{id}\"\nauth = \"target\"\n\
             [[probes.sync]]\nservice = \"hr\"\nurl = \"/hr/{id}\"\nauth = { kind = \"bearer\", token_env = \"HR\" }\nheaders = { X-Tenant = \"t1\" }\n\
             [[probes.sync]]\nservice = \"idp\"\nurl = \"https://idp.test/u/{id}\"\nauth = { kind = \"oauth2-client-credentials\", token_url = \"/t\", client_id = \"c\", client_secret_env = \"S\" }\n",
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.sync[0].access.auth, ServiceAuth::None);
        assert!(
            matches!(&p.sync[0].find, Find::Query { list, identity, .. } if list == "/Resources" && identity == "/userName")
        );
        assert_eq!(p.sync[1].access.auth, ServiceAuth::Target, "explicitly asked for");
        assert!(matches!(p.sync[2].access.auth, ServiceAuth::Bearer(_)));
        assert_eq!(p.sync[2].access.headers.len(), 1);
        assert!(matches!(p.sync[3].access.auth, ServiceAuth::OAuth2(_)));
        let bad = probes("[[probes.sync]]\nservice = \"crm\"\nurl = \"/crm/{uid}\"\n", None).unwrap_err();
        assert!(bad.message.contains("unknown placeholder"), "{bad}");
    }
}
