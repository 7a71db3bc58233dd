//! The `[target]` section: what the load runs against. Its `kind` is read first, then the table
//! as that kind's own struct (`embedded`, `scim` or `http`, `ldap`), so a key of another kind
//! is an unknown key at its own line, with the kind that takes it named. Owns [`Target`] and
//! the HTTP settings every kind but `ldap` reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::auth::{self, Credentials};
use super::directory::{self, DirectoryWire, LdapTarget};
use super::downstream::HeaderValue;
use super::error::{At, Source, WorkloadError, did_you_mean};
use super::fields::{count, duration_or, span_of};
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
    pub honor_retry_after: Option<bool>,
    #[serde(default)]
    pub max_retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    #[serde(default)]
    pub keep_alive: Option<bool>,
    #[serde(default)]
    pub http2: Option<bool>,
}

/// `kind = "scim"` (a SCIM 2.0 service) or `"http"` (any HTTP API, custom operations only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimWire {
    #[serde(default)]
    pub kind: Option<String>,
    /// The base URL, e.g. `https://idp.example.com/scim/v2`.
    #[serde(default)]
    pub base_url: Option<Spanned<String>>,
    /// `{ kind = "none" | "bearer" | "oauth2-client-credentials", … }`: read by [`auth`].
    #[serde(default)]
    pub auth: Option<Spanned<toml::Value>>,
    /// Sent with every request: `{ X-Tenant = "acme", X-Api-Key = { env = "KEY" } }`.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<HeaderValue>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Wait `Retry-After` on 429 and retry (up to `max_retries`); otherwise count and move on.
    #[serde(default)]
    pub honor_retry_after: Option<bool>,
    #[serde(default)]
    pub max_retries: Option<Spanned<u32>>,
    /// Cap on connections kept per host (0 = unlimited pool).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// Reuse connections (default true; false for servers that close each one).
    #[serde(default)]
    pub keep_alive: Option<bool>,
    /// Offer HTTP/2 to an https:// target (default true; the server chooses by ALPN).
    #[serde(default)]
    pub http2: Option<bool>,
    /// PEM CA bundle trusted in addition to the system's roots (a private CA).
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// PEM certificate and key the client presents (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
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
    /// LDAP connections (requests are multiplexed on each; default 4).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
}

const KINDS: &[&str] = &["embedded", "scim", "http", "ldap"];
const TARGET: &[At] = &[At::Key("target")];

/// The HTTP settings of the kinds that speak HTTP.
struct HttpKeys<'a> {
    timeout: &'a Option<Spanned<String>>,
    honor_retry_after: Option<bool>,
    max_retries: &'a Option<Spanned<u32>>,
    max_connections: &'a Option<Spanned<usize>>,
    keep_alive: Option<bool>,
    http2: Option<bool>,
}

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
            scim(src, w, kind, kind_span)
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
    match toml::from_str::<T>(&format!("{key:?} = 0")) {
        Ok(_) => true,
        Err(e) => !e.message().starts_with("unknown field"),
    }
}

fn http_settings(src: &Source, h: HttpKeys, tls: Tls) -> Result<HttpSettings, WorkloadError> {
    Ok(HttpSettings {
        timeout: duration_or(src, h.timeout, "target.timeout", limits::WAIT, Duration::from_secs(30))?,
        honor_retry_after: h.honor_retry_after.unwrap_or(true),
        max_retries: match h.max_retries {
            Some(n) => count(src, n, "max_retries", 0, limits::RETRIES)?,
            None => 3,
        },
        max_connections: match h.max_connections {
            Some(n) => Some(count(src, n, "max_connections", 0, limits::CONNECTIONS)?).filter(|n| *n > 0),
            None => None,
        },
        keep_alive: h.keep_alive.unwrap_or(true),
        tls,
        http2: h.http2.unwrap_or(true),
    })
}

fn embedded(src: &Source, t: EmbeddedWire) -> Result<(Target, HttpSettings), WorkloadError> {
    let http = http_settings(
        src,
        HttpKeys {
            timeout: &t.timeout,
            honor_retry_after: t.honor_retry_after,
            max_retries: &t.max_retries,
            max_connections: &t.max_connections,
            keep_alive: t.keep_alive,
            http2: t.http2,
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

fn scim(
    src: &Source,
    t: ScimWire,
    kind: &str,
    kind_span: Option<std::ops::Range<usize>>,
) -> Result<(Target, HttpSettings), WorkloadError> {
    let Some(url) = &t.base_url else {
        return Err(src.error(kind_span, format!("a {kind} target needs `base_url` (or --target-url)")));
    };
    let base = url.get_ref().trim_end_matches('/').to_string();
    // A password in the URL is a secret from here on: no output will show it.
    let _ = crate::redact::url(&base);
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(src.error(
            Some(url.span()),
            format!("`base_url` must start with http:// or https://, got `{base}`"),
        ));
    }
    let tls = tls(src, &t, &base)?;
    let http = http_settings(
        src,
        HttpKeys {
            timeout: &t.timeout,
            honor_retry_after: t.honor_retry_after,
            max_retries: &t.max_retries,
            max_connections: &t.max_connections,
            keep_alive: t.keep_alive,
            http2: t.http2,
        },
        tls,
    )?;
    let auth = target_auth(src, span_of(&t.auth))?;
    let headers = headers(src, t.headers)?;
    let target = Target::Scim {
        base_url: base,
        auth,
        headers,
        scim: kind == "scim",
    };
    Ok((target, http))
}

/// `ca_file`, `client_cert` and `client_key`: files that exist, for an https:// target.
fn tls(src: &Source, t: &ScimWire, base_url: &str) -> Result<Tls, WorkloadError> {
    let file = |s: &Spanned<String>, key: &str| {
        let path = src.dir().join(s.get_ref());
        if !path.is_file() {
            return Err(src.error(Some(s.span()), format!("target.{key}: no file {}", path.display())));
        }
        if !base_url.starts_with("https://") {
            return Err(src.error(Some(s.span()), format!("target.{key} needs an https:// base_url")));
        }
        Ok(path)
    };
    let ca_file = t.ca_file.as_ref().map(|s| file(s, "ca_file")).transpose()?;
    let client_identity = match (&t.client_cert, &t.client_key) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((file(c, "client_cert")?, file(k, "client_key")?)),
        (Some(s), None) | (None, Some(s)) => {
            return Err(src.error(Some(s.span()), "give both `client_cert` and `client_key` (PEM files)"));
        }
    };
    Ok(Tls {
        ca_file,
        client_identity,
    })
}

/// `[target] headers`: names that are header names, literal values that are header values.
fn headers(
    src: &Source,
    headers: BTreeMap<String, Spanned<HeaderValue>>,
) -> Result<Vec<(String, HeaderValue)>, WorkloadError> {
    let mut out = Vec::new();
    for (k, v) in headers {
        let at = Some(v.span());
        if ::http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(src.error(at, format!("target.headers: `{k}` is not a header name")));
        }
        if let HeaderValue::Literal(l) = v.get_ref()
            && ::http::HeaderValue::from_str(l).is_err()
        {
            return Err(src.error(
                at,
                format!("target.headers.{k}: the value has characters a header cannot carry"),
            ));
        }
        if ["authorization", "host", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
            return Err(src.error(
                at,
                format!("target.headers: `{k}` is set by provbench (use [target] auth for credentials)"),
            ));
        }
        out.push((k, v.into_inner()));
    }
    Ok(out)
}

/// `[target] auth`, read as the shape its `kind` names.
fn target_auth(src: &Source, span: Option<std::ops::Range<usize>>) -> Result<Auth, WorkloadError> {
    if span.is_none() {
        return Ok(Auth::None);
    }
    let path = [At::Key("target"), At::Key("auth")];
    let kinds = ["none", "bearer", "oauth2-client-credentials"];
    Ok(match auth::read(src, &path, "target.auth", &kinds, span.clone())? {
        Credentials::None => Auth::None,
        Credentials::Bearer(b) => Auth::Bearer {
            source: b.secret(src, "target.auth", span)?,
        },
        Credentials::OAuth2(o) => o.client_credentials(src, "target.auth", span)?,
        Credentials::Basic(_) => unreachable!("not among the kinds read"),
    })
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
    let endpoint = directory::endpoint(
        directory::EndpointWire {
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
