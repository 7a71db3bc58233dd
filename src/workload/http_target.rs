//! The HTTP side of a target: the own shape of a `scim` or `http` target's table (base URL,
//! credentials, headers, TLS files) and the HTTP settings it shares with the embedded target.
//! `target` chooses the kind and builds the `Target`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::auth::{self, Credentials};
use super::downstream::HeaderValue;
use super::error::{At, Source, WorkloadError};
use super::fields::{count, duration_or, size, span_of};
use super::limits;
use crate::http::{Auth, HttpSettings, Tls};

/// A `scim` or `http` target, converted.
pub struct HttpTarget {
    pub base_url: String,
    pub auth: Auth,
    pub headers: Vec<(String, HeaderValue)>,
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
    /// The longest opening a connection may take (default 5s, never above `timeout`).
    #[serde(default)]
    pub connect_timeout: Option<Spanned<String>>,
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
    /// The longest answer body read (`"16MiB"`, or bytes); past it the answer is a payload
    /// error with a sample. The target's probe services and checks read within it too.
    #[serde(default)]
    pub max_body: Option<Spanned<toml::Value>>,
    /// PEM CA bundle trusted in addition to the system's roots (a private CA).
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// PEM certificate and key the client presents (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
}

/// The HTTP settings of the kinds that speak HTTP.
pub struct HttpKeys<'a> {
    pub timeout: &'a Option<Spanned<String>>,
    pub connect_timeout: &'a Option<Spanned<String>>,
    pub honor_retry_after: Option<bool>,
    pub max_retries: &'a Option<Spanned<u32>>,
    pub max_connections: &'a Option<Spanned<usize>>,
    pub keep_alive: Option<bool>,
    pub http2: Option<bool>,
    pub max_body: &'a Option<Spanned<toml::Value>>,
}

pub fn http_settings(src: &Source, h: HttpKeys, tls: Tls) -> Result<HttpSettings, WorkloadError> {
    let connect_timeout = duration_or(
        src,
        h.connect_timeout,
        "target.connect_timeout",
        limits::WAIT,
        crate::http::settings::DEFAULT_CONNECT_TIMEOUT,
    )?;
    if connect_timeout.is_zero() {
        return Err(src.error(
            span_of(h.connect_timeout),
            "`target.connect_timeout` must be above 0 (e.g. `5s`)",
        ));
    }
    Ok(HttpSettings {
        timeout: duration_or(src, h.timeout, "target.timeout", limits::WAIT, Duration::from_secs(30))?,
        connect_timeout,
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
        body_limit: match h.max_body {
            Some(v) => size(src, v, "target.max_body", limits::BODY_MIN, limits::BODY)?,
            None => crate::http::body::DEFAULT_LIMIT,
        },
    })
}

/// Converts a `scim` or `http` target's table.
pub fn from_wire(
    src: &Source,
    t: ScimWire,
    kind: &str,
    kind_span: Option<std::ops::Range<usize>>,
) -> Result<(HttpTarget, HttpSettings), WorkloadError> {
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
            connect_timeout: &t.connect_timeout,
            honor_retry_after: t.honor_retry_after,
            max_retries: &t.max_retries,
            max_connections: &t.max_connections,
            keep_alive: t.keep_alive,
            http2: t.http2,
            max_body: &t.max_body,
        },
        tls,
    )?;
    let auth = target_auth(src, span_of(&t.auth))?;
    let headers = headers(src, t.headers)?;
    let target = HttpTarget {
        base_url: base,
        auth,
        headers,
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
