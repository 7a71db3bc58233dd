//! Requests and their classification. A call reads the whole body (latency ends when the full
//! response is in), honours `Retry-After` on 429 when the workload says so, and reports a failure
//! as one of [`ErrorKind`]'s reasons.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::metrics::ErrorKind;
use crate::workload::HttpSettings;

pub const SCIM_JSON: &str = "application/scim+json";

/// A classified failure, with a short description for logs and examples.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl CallError {
    pub fn payload(detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Payload,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// 429 answers seen (and waited out) before this one.
    pub rate_limited: u32,
}

pub struct ScimClient {
    http: reqwest::Client,
    base: String,
    authorization: ArcSwap<Option<HeaderValue>>,
    settings: HttpSettings,
}

/// The longest `Retry-After` honoured; longer asks are capped so a run keeps its schedule.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl ScimClient {
    pub fn new(base: &str, settings: HttpSettings) -> anyhow::Result<ScimClient> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("provbench/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true);
        if let Some(n) = settings.max_connections {
            builder = builder.pool_max_idle_per_host(n);
        }
        if !settings.keep_alive {
            // Servers that close every connection (HTTP/1.0): never reuse one.
            builder = builder.pool_max_idle_per_host(0);
        }
        Ok(ScimClient {
            http: builder.build()?,
            base: base.trim_end_matches('/').to_string(),
            authorization: ArcSwap::from_pointee(None),
            settings,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sets the bearer token every request carries (swapped atomically on refresh).
    pub fn set_bearer(&self, token: &str) -> anyhow::Result<()> {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))?;
        v.set_sensitive(true);
        self.authorization.store(Arc::new(Some(v)));
        Ok(())
    }

    /// One SCIM call: `path` is relative to the base URL (`/Users/123`), or a full URL.
    pub async fn call(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Reply, CallError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            let mut url = String::with_capacity(self.base.len() + path.len());
            url.push_str(&self.base);
            url.push_str(path);
            url
        };
        let mut rate_limited = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(header::ACCEPT, SCIM_JSON);
            if let Some(auth) = self.authorization.load().as_ref() {
                req = req.header(header::AUTHORIZATION, auth.clone());
            }
            if let Some(b) = &body {
                req = req.header(header::CONTENT_TYPE, SCIM_JSON).body(b.clone());
            }
            let resp = req.send().await.map_err(classify)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body_bytes = resp.bytes().await.map_err(classify)?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited += 1;
                if self.settings.honor_retry_after && rate_limited <= self.settings.max_retries {
                    tokio::time::sleep(retry_after(&headers)).await;
                    continue;
                }
            }
            return Ok(Reply {
                status,
                headers,
                body: body_bytes,
                rate_limited,
            });
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64())))
        .unwrap_or(Duration::from_secs(1))
}

fn classify(e: reqwest::Error) -> CallError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() || e.is_body() {
        ErrorKind::Payload
    } else {
        ErrorKind::Connection
    };
    // The URL can carry nothing secret, but keep messages short and stable.
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    CallError { kind, detail }
}

impl Reply {
    /// Fails unless the status is one of `expected`.
    pub fn expect(self, expected: &[u16]) -> Result<Reply, CallError> {
        if expected.contains(&self.status.as_u16()) {
            return Ok(self);
        }
        let snippet: String = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned();
        Err(CallError {
            kind: ErrorKind::Status,
            detail: format!("HTTP {} (expected {:?}): {snippet}", self.status.as_u16(), expected),
        })
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
