//! The `[[probes.sync]]` services: where each linked service keeps the user (a URL by id, a
//! query, or an LDAP search), with what credentials and TLS files, which writes it is watched
//! for, how (polled or pushed), and at what rate. Each service is read as its own shape: a
//! table with `ldap = { … }` as [`LdapSyncWire`], any other as [`HttpSyncWire`], so a key of
//! the other shape is an unknown key at its line. `probes` re-exports the
//! domain types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::downstream::{Access, Find, HeaderValue, ServiceAuth, UrlTemplate};
use super::error::{At, Source, WorkloadError};
use super::fields::{count, duration_or, pointer, pointer_or, span_of};
use super::ldap_read::{LdapRead, LdapReadWire};
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

pub fn observable() -> impl Iterator<Item = Op> {
    Op::ALL.iter().copied().filter(|o| o.is_observable_write())
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
    pub ldap: Option<LdapRead>,
}

/// Where a service publishes when it applied a change, and how far its clock may be off.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeTime {
    pub pointer: String,
    pub uncertainty: Duration,
}

/// Requests a second, where a budget may be.
pub fn budget(src: &Source, b: &Spanned<f64>, what: &str) -> Result<f64, WorkloadError> {
    let v = *b.get_ref();
    if !(0.1..=10_000.0).contains(&v) {
        return Err(src.error(
            Some(b.span()),
            format!("{what} is requests a second, between 0.1 and 10000, got {v}"),
        ));
    }
    Ok(v)
}

/// The `[[probes.sync]]` services, each read as the shape its keys say; an embedded target's
/// linked services when none are given.
pub fn sync_probes(
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
            uncertainty: duration_or(
                src,
                u,
                "probes.sync.clock_uncertainty",
                limits::WAIT,
                Duration::from_millis(5),
            )?,
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
    let ldap = LdapRead::from_wire(s.ldap.into_inner(), &key, src.dir())
        .map_err(|(span, m)| src.error(span.or(at.clone()), m))?;
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
