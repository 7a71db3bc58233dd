//! The `[target]` section: what the load runs against. Its `kind` is read first, then the table
//! as that kind's own struct (`embedded`, `scim` or `http`, `ldap`), so a key of another kind
//! is an unknown key at its own line, with the kind that takes it named. Owns [`Target`]; the
//! `scim` and `http` kinds' own shape is in [`http_target`].

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::directory::{DirectoryWire, LdapTarget};
use super::downstream::HeaderValue;
use super::error::{At, Source, WorkloadError, did_you_mean};
use super::fields::{count, duration_or, span_of};
use super::http_target::{self, HttpKeys, ScimWire, http_settings};
use super::ldap_read::{self, EndpointWire};
use super::limits;
use super::users::UsersWire;
use crate::http::{Auth, HttpSettings, Tls};
use crate::reference::config::{PROFILES, ReferenceConfig};

#[derive(Debug, Clone)]
pub enum Target {
    /// The reference service, started in-process with these settings.
    Embedded {
        profile: String,
        reference: Box<ReferenceConfig>,
    },
    /// Any SCIM 2.0 service, or (`scim: false`, kind `http`) any HTTP API driven by custom
    /// operations only.
    Scim {
        base_url: String,
        auth: Auth,
        /// Headers sent with every request to the target (a tenant header, an API key).
        headers: Vec<(String, HeaderValue)>,
        /// False for kind `http`: no SCIM built-in steps and no marker sweep at cleanup.
        scim: bool,
    },
    /// An LDAP directory: the built-in steps as LDAP operations.
    Ldap(Box<LdapTarget>),
}

/// What the document-wide read keeps of `[target]`: the keys that choose its kind.
#[derive(Debug, Deserialize, Default)]
pub struct TargetPeek {
    /// `embedded` (default), `scim`, `http` or `ldap`.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Without `kind`, a `base_url` makes the target `scim`.
    #[serde(default)]
    pub base_url: Option<serde::de::IgnoredAny>,
}

/// `kind = "embedded"`: the reference service, in-process.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedWire {
    #[serde(default)]
    pub kind: Option<String>,
    /// Reference-service profile.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
    /// A reference-service TOML file, relative to the workload.
    #[serde(default)]
    pub config: Option<String>,
    /// Flaws to switch on (as `provbench serve --flaw`).
    #[serde(default)]
    pub flaws: Vec<String>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub connect_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub honor_retry_after: Option<bool>,
    #[serde(default)]
    pub max_retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    #[serde(default)]
    pub keep_alive: Option<bool>,
    #[serde(default)]
    pub http2: Option<bool>,
    /// The longest answer body read (`"16MiB"`, or bytes).
    #[serde(default)]
    pub max_body: Option<Spanned<toml::Value>>,
}

/// `kind = "ldap"`: a directory, its entries shaped by `[directory]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapWire {
    #[serde(default)]
    pub kind: Option<String>,
    /// `ldap://host:port` or `ldaps://host:port`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Upgrade an ldap:// connection with StartTLS.
    #[serde(default)]
    pub starttls: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The account that binds, its password from the environment or a file.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    /// Where user entries are created (e.g. `ou=people,dc=example,dc=com`).
    #[serde(default)]
    pub base_dn: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// LDAP connections (default 4; up to 8 requests in flight on one before the next is used).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
}

const KINDS: &[&str] = &["embedded", "scim", "http", "ldap"];
const TARGET: &[At] = &[At::Key("target")];

/// Converts `[target]` (with `[directory]` for an ldap target, and `[users]`, whose keys an
/// ldap target refuses).
pub fn from_wire(
    src: &Source,
    peek: Option<Spanned<TargetPeek>>,
    directory: Option<Spanned<DirectoryWire>>,
    users: &UsersWire,
) -> Result<(Target, HttpSettings), WorkloadError> {
    let (span, peek) = match peek {
        Some(p) => (Some(p.span()), p.into_inner()),
        None => (None, TargetPeek::default()),
    };
    let kind_span = span_of(&peek.kind).or(span);
    let kind = match &peek.kind {
        Some(k) => k.get_ref().as_str(),
        None if peek.base_url.is_some() => "scim",
        None => "embedded",
    };
    if kind != "ldap"
        && let Some(d) = &directory
    {
        return Err(src.error(
            Some(d.span()),
            "[directory] shapes the entries of a target of kind \"ldap\"",
        ));
    }
    match kind {
        "embedded" => embedded(src, read(src, "embedded")?.unwrap_or_default()),
        "scim" | "http" => {
            let w: ScimWire = read(src, kind)?.ok_or_else(|| src.error(kind_span.clone(), "no [target]"))?;
            let (t, http) = http_target::from_wire(src, w, kind, kind_span)?;
            let target = Target::Scim {
                base_url: t.base_url,
                auth: t.auth,
                headers: t.headers,
                scim: kind == "scim",
            };
            Ok((target, http))
        }
        "ldap" => {
            let w: LdapWire = read(src, kind)?.ok_or_else(|| src.error(kind_span.clone(), "no [target]"))?;
            ldap(src, w, directory, users, kind_span)
        }
        other => {
            let hint = did_you_mean(other, KINDS)
                .map(|b| format!(": did you mean `{b}`?"))
                .unwrap_or_default();
            Err(src.error(
                kind_span,
                format!("unknown target kind `{other}`{hint} (known: embedded, scim, http, ldap)"),
            ))
        }
    }
}

/// `[target]` as the struct of `kind`; an unknown key that another kind takes says which.
fn read<T: DeserializeOwned>(src: &Source, kind: &str) -> Result<Option<T>, WorkloadError> {
    src.reread::<T>(TARGET).map_err(|mut e| {
        let key = e.message.strip_prefix("unknown key `").and_then(|r| r.split_once('`'));
        if let Some((key, _)) = key {
            let takes = |ok: bool, k: &'static str| ok.then_some(k);
            let others: Vec<&str> = [
                takes(accepts::<EmbeddedWire>(key), "embedded"),
                takes(accepts::<ScimWire>(key), "scim\" or \"http"),
                takes(accepts::<LdapWire>(key), "ldap"),
            ]
            .into_iter()
            .flatten()
            .filter(|k| !k.contains(kind))
            .collect();
            if let Some(first) = others.first() {
                e.message.push_str(&format!(
                    " (`{key}` belongs to kind = \"{first}\"; this target is kind = \"{kind}\")"
                ));
            }
        }
        e
    })
}

/// Whether the kind read as `T` knows `key`: a table holding only that key is refused for
/// anything but an unknown key (its type, a missing key) when it does.
fn accepts<T: DeserializeOwned>(key: &str) -> bool {
    let table = toml::Table::from_iter([(key.to_string(), toml::Value::Integer(0))]);
    match toml::Value::Table(table).try_into::<T>() {
        Ok(_) => true,
        Err(e) => !e.message().starts_with("unknown field"),
    }
}

fn embedded(src: &Source, t: EmbeddedWire) -> Result<(Target, HttpSettings), WorkloadError> {
    let http = http_settings(
        src,
        HttpKeys {
            timeout: &t.timeout,
            connect_timeout: &t.connect_timeout,
            honor_retry_after: t.honor_retry_after,
            max_retries: &t.max_retries,
            max_connections: &t.max_connections,
            keep_alive: t.keep_alive,
            http2: t.http2,
            max_body: &t.max_body,
        },
        Tls::default(),
    )?;
    let profile = t
        .profile
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_else(|| "realistic".into());
    if !PROFILES.contains(&profile.as_str()) {
        let hint = did_you_mean(&profile, PROFILES)
            .map(|b| format!(": did you mean `{b}`?"))
            .unwrap_or_else(|| format!(" (known: {})", PROFILES.join(", ")));
        return Err(src.error(span_of(&t.profile), format!("unknown profile `{profile}`{hint}")));
    }
    let file = t.config.map(|c| src.dir().join(c));
    let reference = ReferenceConfig::resolve(&profile, file.as_deref(), &t.flaws)
        .map_err(|e| src.error(None, format!("target: {e:#}")))?;
    let target = Target::Embedded {
        profile,
        reference: Box::new(reference),
    };
    Ok((target, http))
}

/// `kind = "ldap"` with `[directory]`.
fn ldap(
    src: &Source,
    t: LdapWire,
    dir: Option<Spanned<DirectoryWire>>,
    users: &UsersWire,
    kind_span: Option<std::ops::Range<usize>>,
) -> Result<(Target, HttpSettings), WorkloadError> {
    users.refuse_scim_keys(src)?;
    let http = HttpSettings {
        timeout: duration_or(src, &t.timeout, "target.timeout", limits::WAIT, Duration::from_secs(30))?,
        max_connections: match &t.max_connections {
            Some(n) => Some(count(src, n, "max_connections", 0, limits::CONNECTIONS)?).filter(|n| *n > 0),
            None => None,
        },
        ..HttpSettings::defaults()
    };
    let url_span = span_of(&t.url).or(kind_span.clone());
    let endpoint = ldap_read::endpoint(
        EndpointWire {
            url: t.url.as_ref().map(|u| u.get_ref().as_str()),
            starttls: t.starttls,
            ca_file: t.ca_file.as_deref(),
            bind_dn: t.bind_dn.as_deref(),
            password_env: t.password_env.as_deref(),
            password_file: t.password_file.as_deref(),
            timeout: http.timeout,
        },
        "target",
        src.dir(),
    )
    .map_err(|m| src.error(url_span, m))?;
    let Some(base_dn) = &t.base_dn else {
        return Err(src.error(
            kind_span,
            "an ldap target needs `base_dn`: where user entries are created",
        ));
    };
    let target = LdapTarget::from_wire(
        src,
        endpoint,
        base_dn.get_ref().trim().to_string(),
        http.max_connections.unwrap_or(4),
        dir,
        &users.vars,
        users.password.as_deref(),
    )?;
    Ok((Target::Ldap(Box::new(target)), http))
}
