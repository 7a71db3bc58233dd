//! Requests and their classification. A call reads the whole body (latency ends when the full
//! response is in), honours `Retry-After` on 429 when the workload says so, and reports a failure
//! as one of [`ErrorKind`]'s reasons.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use super::USER_AGENT;
use super::general::General;
use super::plain::PlainPool;
use super::settings::HttpSettings;
use crate::metrics::ErrorKind;

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

/// A call that failed, with the 429 answers it waited out before (counted apart from errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: CallError,
    pub rate_limited: u32,
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        Failure { error, rate_limited: 0 }
    }
}

/// One HTTP exchange, before the 429 handling.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    captured: Option<String>,
    /// Boxed: kept only when asked for, so the common answer stays small to move.
    headers: Option<Box<HeaderMap>>,
    body: Bytes,
    version: reqwest::Version,
}

/// The headers one request is sent with, beyond the defaults.
#[derive(Clone, Copy)]
struct Headers<'a> {
    /// Whether the client's credentials go with it (decided once, in `exchange`).
    credentialed: bool,
    if_none_match: Option<&'a HeaderValue>,
    extras: Option<&'a Extras>,
}

/// What a request adds to the defaults (custom operations): headers that replace those of the
/// same name (a `Content-Type`, an `Accept`), and whether the answer's headers are kept.
#[derive(Debug, Default)]
pub struct Extras {
    pub headers: HeaderMap,
    pub keep_headers: bool,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// The value of the captured header (see [`HttpClient::capturing`]), if present.
    pub captured: Option<String>,
    /// 429 answers seen (and waited out) before this one.
    pub rate_limited: u32,
    /// The answer's headers, when the request asked for them ([`Extras::keep_headers`]).
    pub headers: Option<Box<HeaderMap>>,
    /// The HTTP version the answer came in (an HTTP/1.0 server closes every connection).
    pub version: reqwest::Version,
}

pub struct HttpClient {
    /// Plain-HTTP targets go through hyper's own connections (the leanest path per request,
    /// HTTP/1.1; see [`super::plain`]);
    /// HTTPS targets (HTTP/2 when the server offers it), and token requests, through reqwest.
    /// Shared with the client's whole-origin sibling ([`HttpClient::on_whole_origin`]): reads on
    /// the target's behalf go over the load's connections.
    plain: Option<Arc<PlainPool>>,
    /// `scheme://host[:port]` of the target.
    origin: String,
    /// The reqwest client, built when first needed where the target is plain HTTP; shared with
    /// the whole-origin sibling too.
    general: Arc<General>,
    base: String,
    /// Parsed once: each request only swaps path and query, never re-parses the host.
    base_url: reqwest::Url,
    base_path: String,
    capture: Option<reqwest::header::HeaderName>,
    /// Shared with clients that read on the target's behalf (see [`HttpClient::sharing_auth`]).
    authorization: Arc<ArcSwap<Option<HeaderValue>>>,
    settings: HttpSettings,
    /// Sent with every request (a tenant header, an API key).
    extra_headers: HeaderMap,
    /// Granted a whole origin for reads ([`HttpClient::on_whole_origin`]): its credentials go
    /// with GET and HEAD only.
    reads_only: bool,
}

/// The longest `Retry-After` honoured; longer asks are capped so a run keeps its schedule.
/// The longest one `Retry-After` is waited.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl HttpClient {
    pub fn new(base: &str, settings: HttpSettings) -> anyhow::Result<HttpClient> {
        let base = base.trim_end_matches('/').to_string();
        let base_url = reqwest::Url::parse(&base).map_err(|e| anyhow::anyhow!("bad target URL `{base}`: {e}"))?;
        let plain = match base_url.scheme() {
            "http" => {
                let host = base_url.host_str().unwrap_or("localhost");
                let authority = match base_url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                Some(Arc::new(PlainPool::new(
                    &authority,
                    settings.max_connections,
                    settings.keep_alive,
                    settings.connect_within(),
                )?))
            }
            _ => None,
        };
        let origin = base_url.origin().ascii_serialization();
        // A plain-HTTP target's requests go through `plain`: reqwest (and the certificates it
        // loads) only for what goes elsewhere, so built at its first use.
        let general = General::new(&settings, plain.is_none())?;
        Ok(HttpClient {
            plain,
            origin,
            general: Arc::new(general),
            base_path: base_url.path().trim_end_matches('/').to_string(),
            base_url,
            base,
            capture: None,
            authorization: Arc::new(ArcSwap::from_pointee(None)),
            settings,
            extra_headers: HeaderMap::new(),
            reads_only: false,
        })
    }

    /// Sends `other`'s credentials, refreshed as they are (for reads explicitly allowed them).
    pub fn sharing_auth(mut self, other: &HttpClient) -> Self {
        self.authorization = other.authorization.clone();
        self
    }

    /// A client for reads the workload grants the target's whole origin: the queue probe's job
    /// status, which services keep outside their SCIM base (the reference's `/jobs/N`), and the
    /// probes' reads of services on the target's origin however their URL is written. Same
    /// origin, settings and headers, the credentials shared; its base path is the origin's root,
    /// and its credentials go with reads (GET, HEAD) only: the grant is for reading.
    pub fn on_whole_origin(&self) -> anyhow::Result<HttpClient> {
        let base_url = reqwest::Url::parse(&self.origin)
            .map_err(|e| anyhow::anyhow!("bad target origin `{}`: {e}", self.origin))?;
        // The same connections and the same reqwest client (no second pool, no second load of
        // the certificates): what a request carries is decided per request, in `exchange`, by
        // this client's own base and `reads_only`, never by the transport it goes over.
        Ok(HttpClient {
            plain: self.plain.clone(),
            origin: self.origin.clone(),
            general: self.general.clone(),
            base_path: base_url.path().trim_end_matches('/').to_string(),
            base_url,
            base: self.origin.clone(),
            capture: None,
            authorization: self.authorization.clone(),
            settings: self.settings.clone(),
            extra_headers: self.extra_headers.clone(),
            reads_only: true,
        })
    }

    /// Whether `url` (absolute) is on this client's origin, compared as origins (scheme, host
    /// and port as parsed), never by spelling. Whether a request there carries the credentials
    /// is still decided per request (see `exchange`).
    pub fn same_origin(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| u.origin() == self.base_url.origin())
    }

    /// Sends `headers` with every request too, replacing those of the same name.
    pub fn adding_headers(mut self, headers: HeaderMap) -> Self {
        for name in headers.keys() {
            self.extra_headers.remove(name);
        }
        for (name, value) in &headers {
            self.extra_headers.append(name, value.clone());
        }
        self
    }

    /// Sends `headers` with every request.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.extra_headers = headers;
        self
    }

    /// HTTP Basic credentials on every request (the password is a registered secret).
    pub fn set_basic(&self, username: &str, password: &str) -> anyhow::Result<()> {
        use base64::Engine;
        crate::redact::register(password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        crate::redact::register(&encoded);
        let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))?;
        v.set_sensitive(true);
        self.authorization.store(Arc::new(Some(v)));
        Ok(())
    }

    /// Keeps the value of `header` from every answer in [`Reply::captured`].
    pub fn capturing(mut self, header: &str) -> anyhow::Result<Self> {
        self.capture = Some(reqwest::header::HeaderName::from_bytes(header.as_bytes())?);
        Ok(self)
    }

    /// `scheme://host[:port]` of the target.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether this client's base is its origin's root: a path it is given (`/x`) then names
    /// `/x` on the origin, as the absolute URL would, without parsing one.
    pub fn at_root(&self) -> bool {
        self.base_path.is_empty()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The reqwest client (token requests), built at the first call for a plain-HTTP target.
    pub fn http(&self) -> anyhow::Result<&reqwest::Client> {
        self.general.client()
    }

    /// Whether this client's reqwest side was built, the system's root certificates loaded with
    /// it: never for a plain-HTTP target that is asked nothing off its origin.
    pub fn reqwest_built(&self) -> bool {
        self.general.built()
    }

    /// The longest answer body this client reads: readers on the target's behalf (probe
    /// services, checks, token requests) read within it too.
    pub fn body_limit(&self) -> usize {
        self.settings.body_limit
    }

    /// Sets the bearer token every request carries (swapped atomically on refresh).
    pub fn set_bearer(&self, token: &str) -> anyhow::Result<()> {
        crate::redact::register(token);
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))?;
        v.set_sensitive(true);
        self.authorization.store(Arc::new(Some(v)));
        Ok(())
    }

    /// One SCIM call: `path` is relative to the base URL (`/Users/123`), or a full URL.
    pub async fn call(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Reply, CallError> {
        self.exchange(method, path, body, None, None).await.map_err(|f| f.error)
    }

    /// As [`HttpClient::call_with`] (no extras: a plain call), and when it fails, the 429s it
    /// waited out before the failure, so they are counted too.
    pub async fn call_counting(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        extras: Option<&Extras>,
    ) -> Result<Reply, Failure> {
        self.exchange(method, path, body, None, extras).await
    }

    /// A call with its own headers (replacing defaults of the same name), keeping the answer's
    /// headers when `extras` asks.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        extras: &Extras,
    ) -> Result<Reply, CallError> {
        self.exchange(method, path, body, None, Some(extras))
            .await
            .map_err(|f| f.error)
    }

    /// A conditional GET: with the entity tag of the last answer, an unchanged resource answers
    /// 304 without a body (see [`HttpClient::capturing`] to keep each answer's `ETag`).
    pub async fn get_if_none_match(&self, path: &str, tag: Option<&HeaderValue>) -> Result<Reply, CallError> {
        self.exchange(Method::GET, path, None, tag, None)
            .await
            .map_err(|f| f.error)
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        if_none_match: Option<&HeaderValue>,
        extras: Option<&Extras>,
    ) -> Result<Reply, Failure> {
        // A path relative to the base starts with `/`; anything else is a URL, parsed (scheme
        // and host case-insensitively) and compared by origin, never by its spelling.
        let absolute = !path.starts_with('/');
        let parsed = if absolute {
            Some(
                reqwest::Url::parse(path)
                    .map_err(|e| Failure::from(CallError::payload(format!("bad URL {path}: {e}"))))?,
            )
        } else {
            None
        };
        // An absolute URL on the target's own origin goes through its connections too, in
        // origin-form (its path and query only).
        let same_origin: Option<String> = parsed
            .as_ref()
            .filter(|u| u.origin() == self.base_url.origin())
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            });
        // The one decision of whether this request carries the client's credentials (its
        // Authorization, its own headers, a request's secret headers): a path the caller formed
        // is under the base; an absolute URL only when on the origin and under the base path in
        // every reading a server may route it by (threat-model invariants 1 and 2).
        // A client granted a whole origin for reads sends its credentials with reads only.
        let may_carry = !self.reads_only || method == Method::GET || method == Method::HEAD;
        let headers = Headers {
            credentialed: may_carry && parsed.as_ref().is_none_or(|u| super::url::within(&self.base_url, u)),
            if_none_match,
            extras,
        };
        let plain = match &self.plain {
            Some(p) if !absolute || same_origin.is_some() => Some(p),
            _ => None,
        };
        let mut rate_limited = 0;
        loop {
            // A failure after 429s were waited out still reports them (they are counted apart).
            let failed = |error| Failure { error, rate_limited };
            let answer = match plain {
                Some(plain) => {
                    // Origin-form: the connection is to the target's origin already.
                    let uri = match &same_origin {
                        Some(rest) if rest.is_empty() => "/".to_string(),
                        Some(rest) => rest.clone(),
                        None => {
                            let mut uri = String::with_capacity(self.base_path.len() + path.len());
                            uri.push_str(&self.base_path);
                            uri.push_str(path);
                            uri
                        }
                    };
                    self.send_plain(plain, &method, uri, body.clone(), headers)
                        .await
                        .map_err(failed)?
                }
                None => self
                    .send_reqwest(&method, path, absolute, body.clone(), headers)
                    .await
                    .map_err(failed)?,
            };
            if let Some(wait) = answer.retry_after {
                rate_limited += 1;
                if self.settings.honor_retry_after && rate_limited <= self.settings.max_retries {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(Reply {
                status: answer.status,
                body: answer.body,
                captured: answer.captured,
                rate_limited,
                headers: answer.headers,
                version: answer.version,
            });
        }
    }

    /// The header value to keep from each answer (e.g. a job-status URL), when asked for.
    fn capture(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.capture.as_ref()?;
        headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    async fn send_plain(
        &self,
        client: &PlainPool,
        method: &Method,
        uri: String,
        body: Option<Bytes>,
        headers: Headers<'_>,
    ) -> Result<Answer, CallError> {
        let Headers {
            credentialed,
            if_none_match,
            extras,
        } = headers;
        // Built in place with static header values: `Request::builder()` moves the whole
        // request at each header and copies each `&str` value into a new allocation, a few
        // thousand instructions per request (callgrind) for the same headers.
        let uri =
            ::http::Uri::try_from(uri).map_err(|e| CallError::payload(format!("cannot build the request: {e}")))?;
        let has_body = body.is_some();
        let mut req = ::http::Request::new(Full::new(body.unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        // Appended, not cloned from a map built once: a clone has no room left, and the `Host`
        // the connection adds then grows it (callgrind: ~500 instructions more per request).
        let h = req.headers_mut();
        h.append(header::ACCEPT, HeaderValue::from_static(SCIM_JSON));
        h.append(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        if credentialed {
            if let Some(auth) = self.authorization.load().as_ref() {
                h.append(header::AUTHORIZATION, auth.clone());
            }
            for (k, v) in &self.extra_headers {
                h.append(k, v.clone());
            }
        }
        if let Some(tag) = if_none_match {
            h.append(header::IF_NONE_MATCH, tag.clone());
        }
        if has_body {
            h.append(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        }
        let keep_headers = extras.is_some_and(|x| x.keep_headers);
        if let Some(x) = extras {
            for (k, v) in x.headers.iter().filter(|(_, v)| credentialed || !secret(v)) {
                req.headers_mut().insert(k, v.clone());
            }
        }
        let exchange = async {
            let (resp, lease) = client.send(req).await.map_err(|e| CallError {
                kind: ErrorKind::Connection,
                detail: error_chain(&e),
            })?;
            let status = resp.status();
            let version = resp.version();
            let retry_after = (status == StatusCode::TOO_MANY_REQUESTS).then(|| retry_after(resp.headers()));
            let captured = self.capture(resp.headers());
            let headers = keep_headers.then(|| Box::new(resp.headers().clone()));
            let body = super::body::read_hyper(resp.into_body(), self.settings.body_limit).await?;
            lease.release();
            Ok(Answer {
                status,
                retry_after,
                captured,
                headers,
                body,
                version,
            })
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(CallError {
                kind: ErrorKind::Timeout,
                detail: format!("no complete answer within {:?}", self.settings.timeout),
            }),
        }
    }

    async fn send_reqwest(
        &self,
        method: &Method,
        path: &str,
        absolute: bool,
        body: Option<Bytes>,
        headers: Headers<'_>,
    ) -> Result<Answer, CallError> {
        let Headers {
            credentialed,
            if_none_match,
            extras,
        } = headers;
        let url = if absolute {
            reqwest::Url::parse(path).map_err(|e| CallError::payload(format!("bad URL {path}: {e}")))?
        } else {
            let (p, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
            let mut url = self.base_url.clone();
            let mut full = String::with_capacity(self.base_path.len() + p.len());
            full.push_str(&self.base_path);
            full.push_str(p);
            url.set_path(&full);
            url.set_query(query);
            url
        };
        // The client's credentials (its Authorization and its own headers, API keys among them)
        // are bound to its origin and base path: an absolute URL elsewhere (a job's `Location`,
        // a templated service URL) is sent without them (see `exchange`).
        let http = self.general.client().map_err(|e| CallError {
            kind: ErrorKind::Connection,
            detail: format!("no HTTP client: {e:#}"),
        })?;
        let mut req = http.request(method.clone(), url).header(header::ACCEPT, SCIM_JSON);
        if credentialed && !self.extra_headers.is_empty() {
            req = req.headers(self.extra_headers.clone());
        }
        if credentialed && let Some(auth) = self.authorization.load().as_ref() {
            req = req.header(header::AUTHORIZATION, auth.clone());
        }
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag.clone());
        }
        if let Some(b) = body {
            req = req.header(header::CONTENT_TYPE, SCIM_JSON).body(b);
        }
        if let Some(x) = extras {
            // Replaces what the defaults set under the same names.
            let own: HeaderMap = if credentialed {
                x.headers.clone()
            } else {
                x.headers
                    .iter()
                    .filter(|(_, v)| !secret(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            req = req.headers(own);
        }
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let version = resp.version();
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS).then(|| retry_after(resp.headers()));
        let captured = self.capture(resp.headers());
        let headers = match extras {
            Some(x) if x.keep_headers => Some(Box::new(resp.headers().clone())),
            _ => None,
        };
        let body = super::body::read(resp, self.settings.body_limit).await?;
        Ok(Answer {
            status,
            retry_after,
            captured,
            headers,
            body,
            version,
        })
    }
}

/// A request's own header that is a credential: marked sensitive where it was configured (from
/// the environment or a file), or holding a registered secret (a cleanup hook's headers, kept as
/// text in the ledger, lose their mark).
fn secret(v: &HeaderValue) -> bool {
    v.is_sensitive()
        || v.to_str().map_or(true, |t| {
            matches!(crate::redact::secrets(t), std::borrow::Cow::Owned(_))
        })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        // `NaN` parses as a float, and passes a clamp as itself: it is no number of seconds.
        .filter(|s| !s.is_nan())
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
    CallError {
        kind,
        detail: error_chain(&e.without_url()),
    }
}

impl Reply {
    /// A DELETE succeeded: 204 as SCIM says, or, from lenient servers, a 200 with no body or a
    /// JSON object. A 200 with anything else (an HTML error page, plain text) proves nothing.
    pub fn confirms_delete(&self) -> bool {
        match self.status.as_u16() {
            204 => true,
            200 => {
                self.body.iter().all(u8::is_ascii_whitespace)
                    || serde_json::from_slice::<serde_json::Value>(&self.body).is_ok_and(|v| v.is_object())
            }
            _ => false,
        }
    }

    /// Fails unless the status is one of `expected`.
    pub fn expect(self, expected: &[u16]) -> Result<Reply, CallError> {
        if expected.contains(&self.status.as_u16()) {
            return Ok(self);
        }
        let snippet = crate::redact::sample_bytes(&self.body, true, 200);
        Err(CallError {
            kind: ErrorKind::Status,
            detail: format!("HTTP {} (expected {:?}): {snippet}", self.status.as_u16(), expected),
        })
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    encode_query_into(s, &mut out);
    out
}

/// [`encode_query`], appended to `out` (no string per escaped byte).
pub fn encode_query_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `Retry-After: NaN` parsed as a float, passed the clamp as NaN and panicked
    /// the request's task in `Duration::from_secs_f64`.
    #[test]
    fn any_retry_after_a_target_sends_is_a_bounded_wait() {
        for (value, expected) in [
            ("NaN", Duration::from_secs(1)),
            ("-NaN", Duration::from_secs(1)),
            ("inf", MAX_RETRY_AFTER),
            ("-inf", Duration::ZERO),
            ("1e400", MAX_RETRY_AFTER),
            ("-3", Duration::ZERO),
            ("2.5", Duration::from_millis(2500)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Duration::from_secs(1)),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers), expected, "{value}");
        }
    }
}
