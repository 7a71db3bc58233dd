//! Configuration of the reference service: named profiles, a TOML overlay on top of a profile,
//! and the validated [`ReferenceConfig`] every other part of the service reads.
//!
//! The TOML file (`provbench serve --config FILE`) is parsed into [`ReferenceConfigWire`]
//! (`deny_unknown_fields`, every key optional), laid over the profile it names, then validated.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::distribution::Distribution;

/// What a bearer may do on the SCIM API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
    /// May grant the `admin` role, modify admins and change privileged groups.
    pub admin: bool,
}

impl Scopes {
    pub const FULL: Scopes = Scopes {
        read: true,
        write: true,
        admin: true,
    };
    pub const LIMITED: Scopes = Scopes {
        read: true,
        write: true,
        admin: false,
    };
    pub const READ_ONLY: Scopes = Scopes {
        read: true,
        write: false,
        admin: false,
    };

    pub fn parse(words: &[String]) -> Result<Scopes, String> {
        let mut s = Scopes::default();
        for w in words {
            match w.as_str() {
                "scim:read" => s.read = true,
                "scim:write" => s.write = true,
                "scim:admin" => s.admin = true,
                other => {
                    return Err(format!(
                        "unknown scope `{other}` (known: scim:read, scim:write, scim:admin)"
                    ));
                }
            }
        }
        Ok(s)
    }

    /// The OAuth2 `scope` string.
    pub fn to_scope_string(self) -> String {
        let mut v = Vec::new();
        if self.read {
            v.push("scim:read");
        }
        if self.write {
            v.push("scim:write");
        }
        if self.admin {
            v.push("scim:admin");
        }
        v.join(" ")
    }
}

/// How the token endpoint lets clients authenticate (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMethods {
    /// `client_secret_basic` or `client_secret_post`.
    #[default]
    Any,
    /// `client_secret_basic` only (HTTP Basic), as many identity providers.
    Basic,
    /// `client_secret_post` only (the secret in the form body).
    Post,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub id: String,
    pub secret: String,
    pub scopes: Scopes,
    pub token_ttl: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct StaticToken {
    pub name: String,
    pub token: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone)]
pub struct LinkedServiceConfig {
    pub name: String,
    pub sync_delay: Distribution,
    /// Probability that applying a change fails (the job records the failure).
    pub failure_probability: f64,
    /// Probability that a change is silently lost: the job says applied, the service never shows it.
    pub lost_probability: f64,
    /// How the service's view of its users can be read (real downstreams differ from ours).
    pub view: LinkedViewConfig,
}

/// The shape of a linked service's read side, to imitate real downstreams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkedViewConfig {
    /// `/linked/{service}/Users/{id}` always answers 404: the users are found by filter only
    /// (an absent user is a 200 with an empty list).
    pub filter_only: bool,
    /// A deleted user answers 404 by id, not 410.
    pub deleted_404: bool,
    /// Views carry no `meta.version`.
    pub no_versions: bool,
    /// A bearer token of the service's own: the target's tokens are refused there.
    pub token: Option<String>,
    /// Views carry an opaque `ETag` (no order can be read from it) instead of `meta.version`,
    /// and a GET with a matching `If-None-Match` answers 304.
    pub opaque_etags: bool,
    /// Changes are applied in the order they arrive, not by version: a late, older change
    /// overwrites a newer one (as a downstream without versions does).
    pub out_of_order: bool,
}

impl LinkedViewConfig {
    /// `filter-only,404,no-versions,opaque-etags,out-of-order,token=SECRET` (any subset), as
    /// `serve --linked-view` takes it.
    pub fn parse(text: &str) -> Result<LinkedViewConfig, String> {
        let mut v = LinkedViewConfig::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "filter-only" => v.filter_only = true,
                "404" => v.deleted_404 = true,
                "no-versions" => v.no_versions = true,
                "opaque-etags" => v.opaque_etags = true,
                "out-of-order" => v.out_of_order = true,
                t if t.starts_with("token=") => v.token = Some(t["token=".len()..].to_string()),
                other => {
                    return Err(format!(
                        "unknown linked-view option `{other}` (known: filter-only, 404, no-versions, opaque-etags, out-of-order, token=SECRET)"
                    ));
                }
            }
        }
        Ok(v)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Every response is held while the service is inside a stall window of `duration` that starts
/// once every `every` (at the end of each period, so the service starts healthy).
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub every: Duration,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub latency: Distribution,
    pub error_rate: f64,
    pub rate_limit: Option<RateLimit>,
    pub stall: Option<Stall>,
    /// User attributes a PATCH may not name: such a PATCH answers 500 (as a real service's
    /// PATCH of `nickName` did), whatever else it holds.
    pub patch_errors: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FlawConfig {
    /// The helpdesk client may grant `admin`, modify admins and join privileged groups.
    pub privilege_escalation: bool,
    /// User tokens keep working after the user is disabled or deleted.
    pub stale_tokens: bool,
    /// This linked service never applies disables or deletes.
    pub incomplete_deprovisioning: Option<String>,
    /// A quarter of the audit entries are never written.
    pub missing_audit: bool,
}

pub const FLAW_NAMES: &[&str] = &[
    "privilege-escalation",
    "stale-tokens",
    "incomplete-deprovisioning",
    "missing-audit",
];

#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    pub seed: u64,
    pub token_ttl: Duration,
    pub clients: Vec<ClientConfig>,
    /// Client authentication the token endpoint takes.
    pub client_auth: ClientAuthMethods,
    pub static_tokens: Vec<StaticToken>,
    /// Group display names that only `scim:admin` bearers may change; the service starts with
    /// one empty group of each name (what the escalation check tries to join).
    pub privileged_groups: Vec<String>,
    /// Role name -> permissions a linked service grants for it.
    pub roles: BTreeMap<String, Vec<String>>,
    pub workers: usize,
    pub queue_capacity: usize,
    pub service_time: Distribution,
    /// A worker that finds the queue empty looks again only after a draw of this (a worker
    /// polling a database table); `None`: jobs are picked up the moment they arrive.
    pub idle_poll: Option<Distribution>,
    pub services: Vec<LinkedServiceConfig>,
    /// When set, a password login succeeds only once the user is visible (and active) there.
    pub login_requires_sync: Option<String>,
    /// User attributes a create or replace must carry (besides `userName`), published as
    /// required in `/Schemas`.
    pub required_attributes: Vec<String>,
    /// A `count` parameter on `GET /Users` answers 500 (as some real servers do).
    pub count_error: bool,
    /// Filters on `GET /Users` are ignored: every user is listed (as some real servers do).
    pub filter_ignored: bool,
    /// The token endpoint's password grant (off: sign in through `/oauth/authorize` only).
    pub password_grant: bool,
    /// `/oauth/login` shows a consent page before redirecting with the code.
    pub login_consent: bool,
    /// Identifier-first sign-in: the login page asks for the username only, the next page for
    /// the password (as several identity providers do).
    pub login_identifier_first: bool,
    /// A DELETE of a user answers 204 but only disables it: the user stays readable and listed
    /// with `active` false (as services that soft-delete).
    pub soft_delete: bool,
    pub webhook_url: Option<String>,
    /// How long jobs, audit and outbox entries and deleted users' tombstones in linked services
    /// are kept after they are written (`retention`): long enough for any probe or check to
    /// read them within its timeout, short enough that a long run's memory stays flat.
    pub retention: Duration,
    /// The most of each of those kept at once, whatever their age (`retention_cap`; the older
    /// name `job_retention` sets it too): a backstop for rates the window alone would let grow.
    pub retention_cap: usize,
    pub faults: FaultConfig,
    pub flaws: FlawConfig,
}

pub const PROFILES: &[&str] = &["fast", "realistic", "flaky", "flawed"];

fn dist(s: &str) -> Distribution {
    s.parse().expect("built-in distribution")
}

fn service(name: &str, delay: &str) -> LinkedServiceConfig {
    LinkedServiceConfig {
        name: name.into(),
        sync_delay: dist(delay),
        failure_probability: 0.0,
        lost_probability: 0.0,
        view: LinkedViewConfig::default(),
    }
}

impl ReferenceConfig {
    /// A named profile. `fast` is for tests, `realistic` the default target, `flaky` adds faults,
    /// `flawed` switches every deliberate flaw on.
    pub fn profile(name: &str) -> Result<ReferenceConfig, String> {
        let mut roles = BTreeMap::new();
        roles.insert("employee".into(), vec!["self:read".into(), "apps:basic".into()]);
        roles.insert(
            "helpdesk".into(),
            vec![
                "self:read".into(),
                "apps:basic".into(),
                "users:read".into(),
                "users:write".into(),
            ],
        );
        roles.insert(
            "admin".into(),
            vec![
                "self:read".into(),
                "apps:basic".into(),
                "users:read".into(),
                "users:write".into(),
                "users:admin".into(),
            ],
        );
        let client = |id: &str, scopes, ttl| ClientConfig {
            id: id.into(),
            secret: format!("{id}-secret"),
            scopes,
            token_ttl: ttl,
        };
        let mut c = ReferenceConfig {
            seed: 1,
            token_ttl: Duration::from_secs(3600),
            client_auth: ClientAuthMethods::Any,
            clients: vec![
                client("provbench-admin", Scopes::FULL, None),
                client("helpdesk", Scopes::LIMITED, None),
                client("readonly", Scopes::READ_ONLY, None),
                client("short-lived", Scopes::LIMITED, Some(Duration::from_secs(2))),
            ],
            static_tokens: Vec::new(),
            privileged_groups: vec!["admins".into()],
            roles,
            workers: 16,
            queue_capacity: 100_000,
            service_time: Distribution::ZERO,
            idle_poll: None,
            services: vec![
                service("directory", "2ms"),
                service("mail", "5ms"),
                service("crm", "10ms"),
            ],
            login_requires_sync: None,
            password_grant: true,
            login_consent: false,
            login_identifier_first: false,
            soft_delete: false,
            required_attributes: Vec::new(),
            count_error: false,
            filter_ignored: false,
            webhook_url: None,
            retention: Duration::from_secs(60),
            retention_cap: 200_000,
            faults: FaultConfig {
                latency: Distribution::ZERO,
                error_rate: 0.0,
                rate_limit: None,
                stall: None,
                patch_errors: Vec::new(),
            },
            flaws: FlawConfig::default(),
        };
        let realistic = |c: &mut ReferenceConfig| {
            c.workers = 8;
            c.service_time = dist("lognormal:median=4ms,p99=30ms");
            c.services = vec![
                service("directory", "lognormal:median=50ms,p99=400ms"),
                service("mail", "uniform:100ms..500ms"),
                service("crm", "lognormal:median=200ms,p99=1500ms"),
            ];
            c.login_requires_sync = Some("directory".into());
            c.faults.latency = dist("lognormal:median=1ms,p99=10ms");
        };
        match name {
            "fast" => {}
            "realistic" => realistic(&mut c),
            "flaky" => {
                realistic(&mut c);
                c.faults.error_rate = 0.02;
                c.faults.rate_limit = Some(RateLimit {
                    per_second: 500.0,
                    burst: 100,
                });
                c.faults.stall = Some(Stall {
                    every: Duration::from_secs(10),
                    duration: Duration::from_secs(1),
                });
                c.services[2].failure_probability = 0.01;
                c.services[2].lost_probability = 0.01;
            }
            "flawed" => {
                c.flaws = FlawConfig {
                    privilege_escalation: true,
                    stale_tokens: true,
                    incomplete_deprovisioning: Some("crm".into()),
                    missing_audit: true,
                };
            }
            other => {
                return Err(format!("unknown profile `{other}` (known: {})", PROFILES.join(", ")));
            }
        }
        Ok(c)
    }

    /// Switches one deliberate flaw on by its command-line name.
    pub fn enable_flaw(&mut self, name: &str) -> Result<(), String> {
        match name {
            "privilege-escalation" => self.flaws.privilege_escalation = true,
            "stale-tokens" => self.flaws.stale_tokens = true,
            "missing-audit" => self.flaws.missing_audit = true,
            "incomplete-deprovisioning" => {
                let last = self.services.last().ok_or("no linked services configured")?;
                self.flaws.incomplete_deprovisioning = Some(last.name.clone());
            }
            other => match other.strip_prefix("incomplete-deprovisioning=") {
                Some(svc) => self.flaws.incomplete_deprovisioning = Some(svc.to_string()),
                None => {
                    return Err(format!(
                        "unknown flaw `{other}` (known: {}; incomplete-deprovisioning=SERVICE names the service)",
                        FLAW_NAMES.join(", ")
                    ));
                }
            },
        }
        Ok(())
    }

    pub fn service_mut(&mut self, name: &str) -> Result<&mut LinkedServiceConfig, String> {
        let known = self.service_names();
        self.services
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("unknown linked service `{name}` (configured: {known})"))
    }

    fn service_names(&self) -> String {
        self.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks the invariants every other part relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("queue.workers must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            return Err("queue.capacity must be at least 1".into());
        }
        if self.retention < Duration::from_secs(1) {
            return Err("retention must be at least 1s (probes and checks read what it keeps)".into());
        }
        let prob = |what: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{what} must be between 0 and 1, got {p}"))
            }
        };
        prob("faults.error_rate", self.faults.error_rate)?;
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "linked service name `{}` must be letters, digits, - or _",
                    s.name
                ));
            }
            if !seen.insert(&s.name) {
                return Err(format!("linked service `{}` is configured twice", s.name));
            }
            prob(&format!("{}.failure_probability", s.name), s.failure_probability)?;
            prob(&format!("{}.lost_probability", s.name), s.lost_probability)?;
        }
        for (what, svc) in [
            ("login_requires_sync", &self.login_requires_sync),
            ("flaws.incomplete_deprovisioning", &self.flaws.incomplete_deprovisioning),
        ] {
            if let Some(name) = svc
                && !self.services.iter().any(|s| &s.name == name)
            {
                return Err(format!(
                    "{what} names `{name}`, which is not a linked service (configured: {})",
                    self.service_names()
                ));
            }
        }
        if let Some(r) = self.faults.rate_limit
            && (r.per_second <= 0.0 || r.burst == 0)
        {
            return Err("faults.rate_limit needs a positive rate and burst".into());
        }
        if let Some(s) = self.faults.stall
            && (s.every.is_zero() || s.duration >= s.every)
        {
            return Err("faults.stall needs 0 < duration < every".into());
        }
        Ok(())
    }

    /// Loads a TOML file laid over the profile it names (default `realistic`).
    pub fn from_file(path: &Path) -> anyhow::Result<ReferenceConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<ReferenceConfig, String> {
        let wire: ReferenceConfigWire = toml::from_str(text).map_err(|e| e.to_string())?;
        wire.into_config()
    }

    /// The embedded target's settings: a configuration file (which names its own profile) or
    /// the `profile`, with `flaws` switched on. Resolved once, when a workload loads.
    pub fn resolve(profile: &str, file: Option<&Path>, flaws: &[String]) -> anyhow::Result<ReferenceConfig> {
        let mut c = match file {
            Some(path) => ReferenceConfig::from_file(path)?,
            None => ReferenceConfig::profile(profile).map_err(anyhow::Error::msg)?,
        };
        for f in flaws {
            c.enable_flaw(f).map_err(anyhow::Error::msg)?;
        }
        Ok(c)
    }
}

/// The on-disk form: every key optional, unknown keys rejected.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfigWire {
    profile: Option<String>,
    seed: Option<u64>,
    #[serde(default, with = "humantime_serde_opt")]
    token_ttl: Option<Duration>,
    clients: Option<Vec<ClientWire>>,
    /// `any` (default), `basic` or `post`: the client authentication the token endpoint takes.
    client_auth: Option<ClientAuthMethods>,
    #[serde(default)]
    static_tokens: Vec<StaticTokenWire>,
    privileged_groups: Option<Vec<String>>,
    roles: Option<BTreeMap<String, Vec<String>>>,
    queue: Option<QueueWire>,
    services: Option<Vec<ServiceWire>>,
    login_requires_sync: Option<String>,
    password_grant: Option<bool>,
    login_consent: Option<bool>,
    login_identifier_first: Option<bool>,
    soft_delete: Option<bool>,
    required_attributes: Option<Vec<String>>,
    count_error: Option<bool>,
    filter_ignored: Option<bool>,
    webhook_url: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    retention: Option<Duration>,
    retention_cap: Option<usize>,
    /// The older name of `retention_cap`.
    job_retention: Option<usize>,
    faults: Option<FaultsWire>,
    #[serde(default)]
    flaws: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientWire {
    id: String,
    secret: String,
    scopes: Vec<String>,
    #[serde(default, with = "humantime_serde_opt")]
    token_ttl: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticTokenWire {
    name: String,
    token: String,
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueWire {
    workers: Option<usize>,
    capacity: Option<usize>,
    service_time: Option<Distribution>,
    idle_poll: Option<Distribution>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceWire {
    name: String,
    sync_delay: Distribution,
    #[serde(default)]
    failure_probability: f64,
    #[serde(default)]
    lost_probability: f64,
    /// `filter-only,404,no-versions,opaque-etags,out-of-order,token=SECRET` (see
    /// `LinkedViewConfig::parse`).
    #[serde(default)]
    view: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsWire {
    latency: Option<Distribution>,
    error_rate: Option<f64>,
    rate_limit: Option<RateLimitWire>,
    stall: Option<StallWire>,
    patch_errors: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitWire {
    per_second: f64,
    burst: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StallWire {
    #[serde(with = "humantime_serde_req")]
    every: Duration,
    #[serde(with = "humantime_serde_req")]
    duration: Duration,
}

impl ReferenceConfigWire {
    fn into_config(self) -> Result<ReferenceConfig, String> {
        let mut c = ReferenceConfig::profile(self.profile.as_deref().unwrap_or("realistic"))?;
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.token_ttl {
            c.token_ttl = v;
        }
        if let Some(v) = self.client_auth {
            c.client_auth = v;
        }
        if let Some(v) = self.password_grant {
            c.password_grant = v;
        }
        if let Some(v) = self.login_consent {
            c.login_consent = v;
        }
        if let Some(v) = self.login_identifier_first {
            c.login_identifier_first = v;
        }
        if let Some(v) = self.soft_delete {
            c.soft_delete = v;
        }
        if let Some(v) = self.required_attributes {
            c.required_attributes = v;
        }
        if let Some(v) = self.count_error {
            c.count_error = v;
        }
        if let Some(v) = self.filter_ignored {
            c.filter_ignored = v;
        }
        if let Some(clients) = self.clients {
            c.clients = clients
                .into_iter()
                .map(|w| {
                    Ok(ClientConfig {
                        scopes: Scopes::parse(&w.scopes).map_err(|e| format!("client `{}`: {e}", w.id))?,
                        id: w.id,
                        secret: w.secret,
                        token_ttl: w.token_ttl,
                    })
                })
                .collect::<Result<_, String>>()?;
        }
        for t in self.static_tokens {
            c.static_tokens.push(StaticToken {
                scopes: Scopes::parse(&t.scopes).map_err(|e| format!("static token `{}`: {e}", t.name))?,
                name: t.name,
                token: t.token,
            });
        }
        if let Some(v) = self.privileged_groups {
            c.privileged_groups = v;
        }
        if let Some(v) = self.roles {
            c.roles = v;
        }
        if let Some(q) = self.queue {
            c.workers = q.workers.unwrap_or(c.workers);
            c.queue_capacity = q.capacity.unwrap_or(c.queue_capacity);
            c.service_time = q.service_time.unwrap_or(c.service_time);
            c.idle_poll = q.idle_poll.or(c.idle_poll);
        }
        if let Some(services) = self.services {
            c.services = services
                .into_iter()
                .map(|s| {
                    Ok(LinkedServiceConfig {
                        view: LinkedViewConfig::parse(s.view.as_deref().unwrap_or(""))
                            .map_err(|e| format!("service `{}`: {e}", s.name))?,
                        name: s.name,
                        sync_delay: s.sync_delay,
                        failure_probability: s.failure_probability,
                        lost_probability: s.lost_probability,
                    })
                })
                .collect::<Result<_, String>>()?;
        }
        if self.login_requires_sync.is_some() {
            c.login_requires_sync = self.login_requires_sync.filter(|s| !s.is_empty());
        }
        c.webhook_url = self.webhook_url.or(c.webhook_url);
        c.retention = self.retention.unwrap_or(c.retention);
        c.retention_cap = self
            .retention_cap
            .or(self.job_retention)
            .unwrap_or(c.retention_cap)
            .max(1);
        if let Some(f) = self.faults {
            c.faults.latency = f.latency.unwrap_or(c.faults.latency);
            c.faults.error_rate = f.error_rate.unwrap_or(c.faults.error_rate);
            if let Some(r) = f.rate_limit {
                c.faults.rate_limit = Some(RateLimit {
                    per_second: r.per_second,
                    burst: r.burst,
                });
            }
            if let Some(s) = f.stall {
                c.faults.stall = Some(Stall {
                    every: s.every,
                    duration: s.duration,
                });
            }
            if let Some(p) = f.patch_errors {
                c.faults.patch_errors = p;
            }
        }
        for flaw in &self.flaws {
            c.enable_flaw(flaw)?;
        }
        c.validate()?;
        Ok(c)
    }
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(de)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod humantime_serde_req {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(de)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_is_valid() {
        for p in PROFILES {
            ReferenceConfig::profile(p).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn toml_overlays_the_named_profile() {
        let c = ReferenceConfig::from_toml(
            r#"
            profile = "fast"
            seed = 9
            flaws = ["stale-tokens"]
            [queue]
            workers = 2
            service_time = "10ms"
            [[services]]
            name = "ldap"
            sync_delay = "uniform:1ms..3ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.seed, 9);
        assert_eq!(c.workers, 2);
        assert_eq!(c.services.len(), 1);
        assert!(c.flaws.stale_tokens);
        assert!(!c.flaws.missing_audit);
    }

    #[test]
    fn unknown_keys_and_bad_references_are_rejected_with_the_key() {
        let err = ReferenceConfig::from_toml("[queue]\nworkrs = 2\n").unwrap_err();
        assert!(err.contains("workrs") && err.contains("line 2"), "{err}");
        let err = ReferenceConfig::from_toml("login_requires_sync = \"ldap\"\n").unwrap_err();
        assert!(err.contains("ldap"), "{err}");
        let err = ReferenceConfig::from_toml("[faults]\nerror_rate = 2.0\n").unwrap_err();
        assert!(err.contains("error_rate"), "{err}");
    }
}
