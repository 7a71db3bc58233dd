//! The `[probes]` section: how the asynchronous half is observed (queue delay from a job-status
//! URL, sync lag per linked service by polling or push), how often, and within what bounds.

use std::time::Duration;

use serde::Deserialize;

use super::downstream::{Access, Find, ServiceAuth, UrlTemplate};
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbesWire {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub sample: Option<f64>,
    #[serde(default)]
    pub max_pending: Option<usize>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub poll: Option<PollWire>,
    /// Requests a second shared by the services read by batched queries that set no `budget`
    /// of their own (default 45).
    #[serde(default)]
    pub budget: Option<f64>,
    #[serde(default)]
    pub queue: Option<QueueWire>,
    #[serde(default)]
    pub sync: Option<Vec<SyncWire>>,
    #[serde(default)]
    pub push: Option<PushWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollWire {
    pub initial: Option<String>,
    pub max: Option<String>,
    pub factor: Option<f64>,
    /// Relative spacing instead of `factor`: 0.1 polls every 10 % of the elapsed time.
    pub precision: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueWire {
    /// The response header holding the job-status URL (or the job id, with `job_url`).
    #[serde(default)]
    pub job_header: Option<String>,
    /// A JSON pointer into the write's response body holding the job URL or id.
    #[serde(default)]
    pub job_pointer: Option<String>,
    /// `/jobs/{job}`: builds the URL from a job id.
    #[serde(default)]
    pub job_url: Option<String>,
    #[serde(default)]
    pub accepted_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    /// Without timestamps: the job has started once this pointer differs from `not_equals`.
    #[serde(default)]
    pub started_when: Option<StartedWhenWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartedWhenWire {
    pub pointer: String,
    pub not_equals: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncWire {
    pub service: String,
    /// Read URL by id (`{id}`, `{userName}`), origin-relative or absolute.
    #[serde(default)]
    pub url: Option<String>,
    /// Or a query URL whose answer lists the user (`?filter=userName eq "{userName}"`).
    #[serde(default)]
    pub query: Option<String>,
    /// With `query`: the JSON pointer to the result list (default `/Resources`).
    #[serde(default)]
    pub list: Option<String>,
    /// With `query`: the pointer, in each listed item, to the user's userName (default `/userName`).
    #[serde(default)]
    pub identity: Option<String>,
    /// `"target"`, `"none"`, `{ kind = "bearer", token_env = … }`, `{ kind = "basic", … }`.
    #[serde(default)]
    pub auth: Option<super::downstream::ServiceAuthWire>,
    #[serde(default)]
    pub headers: Option<std::collections::BTreeMap<String, super::downstream::HeaderValue>>,
    /// PEM CA bundle for an https:// service behind a private CA.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM certificate and key the probes present to it (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<String>,
    #[serde(default)]
    pub client_key: Option<String>,
    /// A JSON pointer, in the user's document there, to the service's own change time (RFC 3339,
    /// e.g. `/meta/lastModified`): used instead of the bracket when it falls inside it.
    #[serde(default)]
    pub changed_at: Option<String>,
    /// How far that service's clock may be from ours (default 5ms): the resolution it gives.
    #[serde(default)]
    pub clock_uncertainty: Option<String>,
    /// `poll` (default) or `push`.
    #[serde(default)]
    pub observe: Option<String>,
    /// The most requests a second the probes send this service (default: an even share of
    /// `probes.budget` where it is read by batched queries, no limit where it is read by id).
    #[serde(default)]
    pub budget: Option<f64>,
    /// With `query`: read every user pending there in one query, their filters joined by `or`
    /// (default true where the query's placeholders sit in one parameter).
    #[serde(default)]
    pub batch: Option<bool>,
    /// Users in one batched query (default 50).
    #[serde(default)]
    pub batch_max: Option<usize>,
    #[serde(default)]
    pub ops: Option<Vec<String>>,
    /// Where this service keeps `active`, `roles` and `title` (JSON pointers; SCIM names by default).
    #[serde(default)]
    pub pointers: Option<PointersWire>,
    /// A directory read by LDAP search instead of HTTP (`url`, `query` and `auth` then unused).
    #[serde(default)]
    pub ldap: Option<super::directory::LdapReadWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointersWire {
    pub active: Option<String>,
    pub roles: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushWire {
    /// Loopback address for the webhook receiver (`127.0.0.1:0` picks a port).
    #[serde(default)]
    pub listen: Option<String>,
    /// JSON pointer to the job id in an event.
    #[serde(default)]
    pub job_pointer: Option<String>,
    /// JSON pointer to the service name in an event.
    #[serde(default)]
    pub service_pointer: Option<String>,
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

fn dur(s: &str, key: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("probes.{key}: `{s}`: {e}"))?;
    super::limits::duration(&format!("probes.{key}"), d, super::limits::WAIT)
}

fn pointer(p: &str, key: &str) -> Result<String, String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Err(format!(
            "probes.{key}: `{p}` is not a JSON pointer (it starts with `/`, e.g. `/active`)"
        ))
    }
}

impl Probes {
    /// Converts the wire form. `embedded_services` (the embedded target's linked services) fill in
    /// what an embedded workload leaves out; `None` for other targets.
    /// `base`: the workload's folder (token files are relative to it).
    pub fn from_wire(
        w: Option<ProbesWire>,
        embedded_services: Option<&[String]>,
        base: &std::path::Path,
    ) -> Result<Option<Probes>, String> {
        let explicit = w.is_some();
        let w = w.unwrap_or_default();
        if w.enabled == Some(false) || (!explicit && embedded_services.is_none()) {
            return Ok(None);
        }
        let sample = w.sample.unwrap_or(0.1);
        if !(sample > 0.0 && sample <= 1.0) {
            return Err(format!("probes.sample must be in (0, 1], got {sample}"));
        }
        let poll = poll_policy(w.poll.as_ref())?;
        let queue = match (&w.queue, embedded_services) {
            (Some(q), _) => Some(queue_probe(q)?),
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
        let push = w.push.as_ref().map(push_receiver).transpose()?;
        let mut sync = sync_probes(w.sync, embedded_services, push.is_some(), base)?;
        share_budget(&mut sync, w.budget)?;
        if queue.is_none() && sync.is_empty() {
            return Err("[probes] observes nothing: add `queue` or `sync` (or enabled = false)".into());
        }
        Ok(Some(Probes {
            sample,
            max_pending: super::limits::count(
                "probes.max_pending",
                w.max_pending.unwrap_or(10_000),
                1,
                super::limits::PENDING,
            )?,
            timeout: w
                .timeout
                .as_deref()
                .map(|s| dur(s, "timeout"))
                .transpose()?
                .unwrap_or(Duration::from_secs(30)),
            poll,
            queue,
            sync,
            push,
        }))
    }
}

/// Gives each batched service that set no budget an even share of the probes' `total`.
fn share_budget(sync: &mut [SyncProbe], total: Option<f64>) -> Result<(), String> {
    let total = total.unwrap_or(DEFAULT_BUDGET);
    if !(0.1..=10_000.0).contains(&total) {
        return Err(format!(
            "probes.budget is requests a second, between 0.1 and 10000, got {total}"
        ));
    }
    let sharing = sync.iter().filter(|s| s.batch.is_some() && s.budget.is_none()).count();
    for s in sync.iter_mut().filter(|s| s.batch.is_some() && s.budget.is_none()) {
        s.budget = Some(total / sharing as f64);
    }
    Ok(())
}

fn poll_policy(w: Option<&PollWire>) -> Result<PollPolicy, String> {
    let d = |given: Option<&String>, key: &str, default: u64| {
        given
            .map(|s| dur(s, key))
            .transpose()
            .map(|v| v.unwrap_or(Duration::from_millis(default)))
    };
    let poll = PollPolicy {
        initial: d(w.and_then(|p| p.initial.as_ref()), "poll.initial", 10)?,
        max: d(w.and_then(|p| p.max.as_ref()), "poll.max", 1000)?,
        factor: w.and_then(|p| p.factor).unwrap_or(1.5),
        // Relative spacing unless a growth factor is asked for.
        precision: match (w.and_then(|p| p.precision), w.and_then(|p| p.factor)) {
            (Some(p), _) => Some(p),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_PRECISION),
        },
    };
    if poll.initial.is_zero() || poll.max < poll.initial || !(1.0..=10.0).contains(&poll.factor) {
        return Err("probes.poll needs 0 < initial <= max and 1 <= factor <= 10".into());
    }
    if poll.precision.is_some_and(|p| !(0.001..=1.0).contains(&p)) {
        return Err("probes.poll.precision is a share of the elapsed time, between 0.001 and 1 (e.g. 0.1)".into());
    }
    Ok(poll)
}

fn queue_probe(q: &QueueWire) -> Result<QueueProbe, String> {
    Ok(QueueProbe {
        source: match (&q.job_header, &q.job_pointer) {
            (Some(h), None) => JobSource::Header(h.clone()),
            (None, Some(p)) => JobSource::Pointer(pointer(p, "queue.job_pointer")?),
            _ => return Err("probes.queue: give exactly one of `job_header` or `job_pointer`".into()),
        },
        url_template: match &q.job_url {
            Some(t) if !t.contains("{job}") => {
                return Err(format!("probes.queue.job_url `{t}` needs a `{{job}}` placeholder"));
            }
            other => other.clone(),
        },
        start: match (&q.accepted_at, &q.started_at, &q.started_when) {
            (Some(a), Some(s), None) => StartDetection::Timestamps {
                accepted_at: pointer(a, "queue.accepted_at")?,
                started_at: pointer(s, "queue.started_at")?,
            },
            (None, None, Some(w)) => StartDetection::StateChange {
                pointer: pointer(&w.pointer, "queue.started_when.pointer")?,
                not_equals: serde_json::to_value(&w.not_equals).unwrap_or_default(),
            },
            _ => {
                return Err(
                    "probes.queue: give `accepted_at` and `started_at` (server timestamps), or `started_when` (state change)".into(),
                );
            }
        },
    })
}

fn push_receiver(p: &PushWire) -> Result<PushReceiver, String> {
    Ok(PushReceiver {
        listen: p.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
        job_pointer: pointer(p.job_pointer.as_deref().unwrap_or("/job_id"), "push.job_pointer")?,
        service_pointer: pointer(
            p.service_pointer.as_deref().unwrap_or("/service"),
            "push.service_pointer",
        )?,
    })
}

/// The `[[probes.sync]]` services; an embedded target's linked services when none are given.
fn sync_probes(
    given: Option<Vec<SyncWire>>,
    embedded_services: Option<&[String]>,
    has_push: bool,
    base: &std::path::Path,
) -> Result<Vec<SyncProbe>, String> {
    let wires: Vec<SyncWire> = match (given, embedded_services) {
        (Some(s), _) => s,
        (None, Some(services)) => services
            .iter()
            .map(|s| SyncWire {
                service: s.clone(),
                url: None,
                query: None,
                list: None,
                identity: None,
                auth: None,
                headers: None,
                ca_file: None,
                client_cert: None,
                client_key: None,
                changed_at: None,
                clock_uncertainty: None,
                observe: None,
                ops: None,
                pointers: None,
                ldap: None,
                budget: None,
                batch: None,
                batch_max: None,
            })
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut sync: Vec<SyncProbe> = Vec::new();
    for s in wires {
        if sync.iter().any(|p| p.service == s.service) {
            return Err(format!("probes.sync: service `{}` is listed twice", s.service));
        }
        sync.push(sync_probe(s, embedded_services.is_some(), has_push, base)?);
    }
    Ok(sync)
}

/// Where the service keeps the user: `url` (by id) or `query` (+ `list`, `identity`).
fn find(s: &SyncWire, embedded: bool) -> Result<Find, String> {
    let template = |t: &str| UrlTemplate::parse(t).map_err(|e| format!("probes.sync `{}`: {e}", s.service));
    let by_query_only = |key: &str, v: &Option<String>| match v {
        Some(_) if s.query.is_none() => Err(format!("probes.sync `{}`: `{key}` goes with `query`", s.service)),
        _ => Ok(()),
    };
    by_query_only("list", &s.list)?;
    by_query_only("identity", &s.identity)?;
    match (&s.url, &s.query) {
        (Some(u), None) => Ok(Find::ById(template(u)?)),
        (None, Some(q)) => Ok(Find::Query {
            url: template(q)?,
            list: pointer(s.list.as_deref().unwrap_or("/Resources"), "sync.list")?,
            identity: pointer(s.identity.as_deref().unwrap_or("/userName"), "sync.identity")?,
        }),
        // The embedded target's services are read as a real downstream found by filter is:
        // one batched query per tick for every user pending there.
        (None, None) if embedded => Ok(Find::Query {
            url: template(&format!(
                "/linked/{}/Users?filter=userName eq \"{{userName}}\"",
                s.service
            ))?,
            list: "/Resources".into(),
            identity: "/userName".into(),
        }),
        (None, None) => Err(format!(
            "probes.sync `{}` needs a `url` by id (e.g. \"/directory/users/{{id}}\") or a `query` (e.g. \"/crm/Users?filter=userName eq \\\"{{userName}}\\\"\")",
            s.service
        )),
        (Some(_), Some(_)) => Err(format!("probes.sync `{}`: give `url` or `query`, not both", s.service)),
    }
}

/// A service's TLS files, resolved against the workload's folder: files that exist, for an
/// absolute https:// service.
fn service_tls(
    service: &str,
    url: &str,
    base: &std::path::Path,
    ca_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
) -> Result<crate::http::Tls, String> {
    let file = |f: String, key: &str| {
        let path = base.join(&f);
        if !url.starts_with("https://") {
            return Err(format!(
                "probes.sync `{service}`: `{key}` needs an absolute https:// url or query"
            ));
        }
        if !path.is_file() {
            return Err(format!("probes.sync `{service}`: {key}: no file {}", path.display()));
        }
        Ok(path)
    };
    let ca_file = ca_file.map(|f| file(f, "ca_file")).transpose()?;
    let client_identity = match (cert, key) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((file(c, "client_cert")?, file(k, "client_key")?)),
        _ => {
            return Err(format!(
                "probes.sync `{service}`: give both `client_cert` and `client_key`"
            ));
        }
    };
    Ok(crate::http::Tls {
        ca_file,
        client_identity,
    })
}

fn sync_probe(mut s: SyncWire, embedded: bool, has_push: bool, base: &std::path::Path) -> Result<SyncProbe, String> {
    let ldap = match s.ldap.take() {
        Some(w) => {
            let http_only = [
                ("url", s.url.is_some()),
                ("query", s.query.is_some()),
                ("auth", s.auth.is_some()),
                ("headers", s.headers.is_some()),
                ("ca_file", s.ca_file.is_some()),
                ("client_cert", s.client_cert.is_some()),
                ("batch", s.batch == Some(true)),
                ("changed_at", s.changed_at.is_some()),
                ("pointers", s.pointers.is_some()),
            ];
            if let Some((key, _)) = http_only.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "probes.sync `{}`: `{key}` is for HTTP services; an LDAP one is described inside `ldap = {{ … }}`",
                    s.service
                ));
            }
            // The search's answer stands in for a read by id (see `LdapRead`).
            s.url = Some("/{userName}".into());
            s.batch = Some(false);
            let key = format!("probes.sync `{}` ldap", s.service);
            Some(super::directory::LdapRead::from_wire(w, &key, base)?)
        }
        None => None,
    };
    let find = find(&s, embedded)?;
    let relative = find.url().as_str().starts_with('/');
    let auth = ServiceAuth::from_wire(s.auth, relative, &s.service, base)?;
    let access = Access {
        auth,
        headers: s.headers.unwrap_or_default().into_iter().collect(),
        tls: service_tls(
            &s.service,
            find.url().as_str(),
            base,
            s.ca_file,
            s.client_cert,
            s.client_key,
        )?,
    };
    let observe = match s.observe.as_deref() {
        None | Some("poll") => Observe::Poll,
        Some("push") if has_push => Observe::Push,
        Some("push") => {
            return Err(format!(
                "probes.sync `{}` observes by push: add [probes.push]",
                s.service
            ));
        }
        Some(other) => {
            return Err(format!(
                "probes.sync `{}`: observe must be `poll` or `push`, got `{other}`",
                s.service
            ));
        }
    };
    let ops = match s.ops {
        None => observable().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                Op::parse(name).filter(|o| o.is_observable_write()).ok_or_else(|| {
                    let known: Vec<&str> = observable().map(Op::as_str).collect();
                    format!(
                        "probes.sync `{}`: `{name}` is not observable (known: {})",
                        s.service,
                        known.join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut pointers = Pointers::default();
    if let Some(p) = &s.pointers {
        for (slot, given, key) in [
            (&mut pointers.active, &p.active, "active"),
            (&mut pointers.roles, &p.roles, "roles"),
            (&mut pointers.title, &p.title, "title"),
        ] {
            if let Some(g) = given {
                *slot = pointer(g, &format!("sync.pointers.{key}"))?;
            }
        }
    }
    let changed_at = match (&s.changed_at, &s.clock_uncertainty) {
        (Some(p), u) => Some(ChangeTime {
            pointer: pointer(p, "sync.changed_at")?,
            uncertainty: u
                .as_deref()
                .map(|u| dur(u, "sync.clock_uncertainty"))
                .transpose()?
                .unwrap_or(Duration::from_millis(5)),
        }),
        (None, Some(_)) => {
            return Err(format!(
                "probes.sync `{}`: `clock_uncertainty` goes with `changed_at`",
                s.service
            ));
        }
        (None, None) => None,
    };
    if let Some(budget) = s.budget
        && !(0.1..=10_000.0).contains(&budget)
    {
        return Err(format!(
            "probes.sync `{}`: budget is requests a second, between 0.1 and 10000, got {budget}",
            s.service
        ));
    }
    let batchable = matches!(&find, Find::Query { url, .. } if url.batchable());
    let batch = match (s.batch, batchable) {
        (Some(true), false) => {
            return Err(format!(
                "probes.sync `{}`: batch needs a `query` whose placeholders sit in one parameter (e.g. `filter=userName eq \"{{userName}}\"`)",
                s.service
            ));
        }
        (Some(false), _) | (None, false) => None,
        (_, true) => Some(super::limits::count(
            &format!("probes.sync `{}`.batch_max", s.service),
            s.batch_max.unwrap_or(50),
            1,
            1000,
        )?),
    };
    Ok(SyncProbe {
        // Batched services without a budget of their own get a share of the probes' (below).
        budget: s.budget,
        batch,
        changed_at,
        service: s.service,
        find,
        access,
        observe,
        ops,
        pointers,
        ldap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> &'static std::path::Path {
        std::path::Path::new(".")
    }

    #[test]
    fn embedded_targets_get_queue_and_every_service_by_default() {
        let services = vec!["directory".to_string(), "mail".to_string()];
        let p = Probes::from_wire(None, Some(&services), here()).unwrap().unwrap();
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
            Probes::from_wire(None, None, here()).unwrap().is_none(),
            "SCIM targets have no probes unless asked"
        );
    }

    #[test]
    fn explicit_probes_are_checked() {
        let wire = |t: &str| -> ProbesWire { toml::from_str(t).unwrap() };
        let err = Probes::from_wire(Some(wire("sample = 2.0")), None, here()).unwrap_err();
        assert!(err.contains("sample"));
        let err = Probes::from_wire(Some(wire("[[sync]]\nservice = \"ldap\"\n")), None, here()).unwrap_err();
        assert!(
            err.contains("needs a `url` by id") && err.contains("or a `query`"),
            "{err}"
        );
        let err = Probes::from_wire(
            Some(wire(
                "queue = { job_header = \"x\", accepted_at = \"at\", started_at = \"/s\" }",
            )),
            None,
            here(),
        )
        .unwrap_err();
        assert!(err.contains("JSON pointer"), "{err}");
        let err = Probes::from_wire(
            Some(wire(
                "[[sync]]\nservice = \"d\"\nurl = \"/u/{id}\"\nobserve = \"push\"\n",
            )),
            None,
            here(),
        )
        .unwrap_err();
        assert!(err.contains("[probes.push]"), "{err}");
        assert!(
            Probes::from_wire(Some(wire("enabled = false")), Some(&["d".into()]), here())
                .unwrap()
                .is_none()
        );
    }

    /// Other origins get no credentials unless a service says so; query views get their defaults.
    #[test]
    fn reads_of_other_origins_carry_none_of_the_targets_credentials() {
        let wire = |t: &str| -> ProbesWire { toml::from_str(t).unwrap() };
        let p = Probes::from_wire(
            Some(wire(
                "[[sync]]\nservice = \"crm\"\nquery = \"https://crm.example.test/Users?filter=userName eq \\\"{userName}\\\"\"\n\
                 [[sync]]\nservice = \"dir\"\nurl = \"https://dir.example.test/u/{id}\"\nauth = \"target\"\n\
                 [[sync]]\nservice = \"hr\"\nurl = \"/hr/{id}\"\nauth = { kind = \"bearer\", token_env = \"HR\" }\nheaders = { X-Tenant = \"t1\" }\n",
            )),
            None,
            std::path::Path::new("."),
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
        let bad = Probes::from_wire(
            Some(wire("[[sync]]\nservice = \"crm\"\nurl = \"/crm/{uid}\"\n")),
            None,
            std::path::Path::new("."),
        )
        .unwrap_err();
        assert!(bad.contains("unknown placeholder"), "{bad}");
    }
}
