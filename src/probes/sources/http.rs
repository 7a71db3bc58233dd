//! What the HTTP sources share: the client a service is read through (its own origin,
//! credentials, headers and TLS), one GET turned into a [`Fetch`], and the SCIM list shape that
//! tells a complete page from a short one.

use std::sync::{Arc, OnceLock};

use reqwest::header::HeaderValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::{HttpClient, HttpSettings};
use crate::probes::condition::Reading;
use crate::probes::source::Fetch;
use crate::workload::downstream::ServiceAuth;
use crate::workload::probes::SyncProbe;

/// The target as the sources see it: its client, and the one client for reads anywhere on its
/// origin with its credentials and headers, made once and shared by the job-status source and
/// every service read there without headers of its own. Each client is a connection pool and a
/// TLS configuration of its own (loading the system's root certificates is most of a run's
/// start-up): one per source cost more than all of a short run's probe reads. What a request
/// carries is still decided per request (`HttpClient::exchange`), the same for every sharer.
pub struct Target {
    client: Option<Arc<HttpClient>>,
    whole_origin: OnceLock<Arc<HttpClient>>,
}

impl Target {
    /// `client`: the target's, when it is reached over HTTP.
    pub fn new(client: Option<Arc<HttpClient>>) -> Target {
        Target {
            client,
            whole_origin: OnceLock::new(),
        }
    }

    pub fn client(&self) -> Option<&Arc<HttpClient>> {
        self.client.as_ref()
    }

    /// The target's whole-origin read client ([`HttpClient::on_whole_origin`]), keeping each
    /// answer's `ETag` for conditional reads; made at the first call, the same one after.
    pub fn whole_origin(&self) -> anyhow::Result<Arc<HttpClient>> {
        if let Some(c) = self.whole_origin.get() {
            return Ok(c.clone());
        }
        let target = self
            .client
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the target is not an HTTP service"))?;
        let made = Arc::new(target.on_whole_origin()?.capturing("etag")?);
        Ok(self.whole_origin.get_or_init(|| made).clone())
    }
}

/// The client a service's reads go through. The target's credentials go to the target's
/// origin however the service's URL is written (relative, or absolute on that origin: such a
/// service is read through [`HttpClient::on_whole_origin`], the grant of the target's whole
/// origin for reads, and `exchange` decides each request as for every client), or where a
/// service asks for them (`auth = "target"`); every other service has its own (or none) and its
/// own headers.
pub async fn service_client(
    probe: &SyncProbe,
    shared: &Target,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<HttpClient>> {
    let target = shared.client();
    let what = format!("probes.sync `{}`", probe.service);
    // A target that is not reached over HTTP (a directory) has no origin or token to lend.
    let no_http = || {
        anyhow::anyhow!("{what}: the target is not an HTTP service, so its URL must be absolute and its auth its own")
    };
    let headers = crate::workload::downstream::header_map(&probe.access.headers, &what)?;
    let url = probe.find.url();
    let origin = match url.origin() {
        Some(o) => o,
        None => target.ok_or_else(no_http)?.origin().to_string(),
    };
    // On the target's origin: a relative URL, or an absolute one naming that origin.
    let on_target = target.filter(|t| url.origin().is_none_or(|o| t.same_origin(&o)));
    let auth = match (&probe.access.auth, on_target) {
        (ServiceAuth::Default, Some(_)) => &ServiceAuth::Target,
        (ServiceAuth::Default, None) => &ServiceAuth::None,
        (auth, _) => auth,
    };
    if let (ServiceAuth::Target, Some(t)) = (auth, on_target) {
        // The target's settings, headers and credentials: the shared whole-origin client, or
        // one of its own where the service adds headers of its own beside them.
        if headers.is_empty() {
            return shared.whole_origin();
        }
        let client = t.on_whole_origin()?.adding_headers(headers).capturing("etag")?;
        return Ok(Arc::new(client));
    }
    // A client of its own: it keeps each answer's ETag for conditional reads. It reads no
    // longer an answer than the target's client does.
    let settings = HttpSettings {
        tls: probe.access.tls.clone(),
        body_limit: target.map_or(crate::http::body::DEFAULT_LIMIT, |t| t.body_limit()),
        ..HttpSettings::defaults()
    };
    let client = HttpClient::new(&origin, settings)?
        .with_headers(headers)
        .capturing("etag")?;
    let client = match auth {
        ServiceAuth::OAuth2(auth) => {
            let client = Arc::new(client);
            crate::http::auth::authenticate(client.clone(), auth, &origin, &format!("{what} auth"), stop.clone())
                .await
                .map_err(|e| e.context(format!("{what}: signing in")))?;
            return Ok(client);
        }
        // Asked for explicitly on another origin: the workload names it for the target's token.
        ServiceAuth::Target => client.sharing_auth(target.ok_or_else(no_http)?),
        ServiceAuth::None | ServiceAuth::Default => client,
        ServiceAuth::Bearer(secret) => {
            client.set_bearer(&crate::http::auth::read_secret(
                secret,
                &format!("{what} bearer token"),
            )?)?;
            client
        }
        ServiceAuth::Basic { username, password } => {
            client.set_basic(
                username,
                &crate::http::auth::read_secret(password, &format!("{what} password"))?,
            )?;
            client
        }
    };
    Ok(Arc::new(client))
}

/// An origin-relative URL made absolute on the client's origin.
pub fn absolute(client: &HttpClient, url: String) -> String {
    if url.starts_with('/') {
        format!("{}{url}", client.origin())
    } else {
        url
    }
}

/// One GET of `url` (the caller has counted it). With `etag`, the GET is conditional on the tag
/// kept there, and the answer's tag (the client captures `ETag`) replaces it. With `keep`, the
/// answer's document is read for those members only (`Reading::keeping`).
pub async fn get(
    client: &HttpClient,
    url: &str,
    etag: Option<&mut Option<HeaderValue>>,
    keep: Option<&Arc<[String]>>,
    stop: &CancellationToken,
) -> Fetch {
    let sent = Instant::now();
    let tag = etag.as_ref().and_then(|t| t.as_ref());
    let conditional = tag.is_some();
    let reply = tokio::select! {
        r = client.get_if_none_match(url, tag) => r,
        _ = stop.cancelled() => return Fetch::Stopped,
    };
    match reply {
        Ok(r) if r.status == reqwest::StatusCode::NOT_MODIFIED && conditional => Fetch::Unchanged(sent),
        // A refused or failed read (401, 403, 429, 5xx…) is an error of the probe, counted, never
        // a read that did not show the change yet; only 2xx, and 404/410 (absent), are answers.
        Ok(r) if !answers(r.status.as_u16()) => Fetch::Failed(sent),
        Ok(r) => {
            if let Some(etag) = etag {
                *etag = r.captured.as_deref().and_then(|t| HeaderValue::from_str(t).ok());
            }
            let reading = match keep {
                Some(keep) => Reading::keeping(r.status.as_u16(), r.body, keep.clone()),
                None => Reading::new(r.status.as_u16(), r.body),
            };
            Fetch::Answer {
                reading: Arc::new(reading),
                sent,
                arrived: Instant::now(),
            }
        }
        Err(_) => Fetch::Failed(sent),
    }
}

/// Whether a status is an answer about the user (2xx, or absent by 404/410), rather than a
/// refused or failed read.
pub fn answers(status: u16) -> bool {
    (200..300).contains(&status) || status == 404 || status == 410
}

/// The user a pre-flight read asks for: no run makes it (a run's users carry their run's marker).
pub const NOBODY: &str = "provbench-preflight-nobody";

/// One GET of `url` before the load: a refused or failed read is the service's error, with the
/// URL and the answer's status and body start.
pub async fn preflight(client: &HttpClient, url: String) -> Result<(), String> {
    let url = absolute(client, url);
    let shown = crate::redact::url(&url);
    match client.get_if_none_match(&url, None).await {
        Ok(r) if answers(r.status.as_u16()) => Ok(()),
        Ok(r) => Err(format!(
            "GET {shown} answered HTTP {}: {}",
            r.status.as_u16(),
            crate::redact::sample_bytes(&r.body, true, 200)
        )),
        Err(e) => Err(format!("GET {shown} failed: {e}")),
    }
}

/// One plain GET once the run is over (no budget, not counted): the reading, unless there was
/// no answer or the answer is a short page, which says nothing of the users left off it. With
/// `keep`, the answer is read for those members only; they must include [`LISTED`].
pub async fn read_once(client: &HttpClient, url: &str, keep: Option<&Arc<[String]>>) -> Option<Arc<Reading>> {
    let reading = match client.get_if_none_match(url, None).await {
        Ok(r) if answers(r.status.as_u16()) => Some(Arc::new(match keep {
            Some(keep) => Reading::keeping(r.status.as_u16(), r.body, keep.clone()),
            None => Reading::new(r.status.as_u16(), r.body),
        })),
        _ => None,
    };
    reading.filter(|r| listed(r).is_none_or(|(shown, total)| total <= shown))
}

/// The members [`listed`] reads: an answer read for some members only keeps these as well when
/// it is read to learn whether it is a short page.
pub const LISTED: [&str; 3] = ["totalResults", "Resources", "itemsPerPage"];

/// SCIM's `itemsPerPage` (or the length of `Resources`) and `totalResults` of a list answer.
pub fn listed(reading: &Reading) -> Option<(usize, usize)> {
    let [total, resources, per_page] = LISTED;
    let doc = reading.json()?;
    let total = doc.get(total)?.as_u64()? as usize;
    let shown = doc
        .get(resources)
        .and_then(|r| r.as_array())
        .map(Vec::len)
        .or_else(|| doc.get(per_page)?.as_u64().map(|n| n as usize))?;
    Some((shown, total))
}
