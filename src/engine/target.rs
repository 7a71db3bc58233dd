//! Resolving a workload's target into a ready client: start the embedded reference service on a
//! loopback port, point at a SCIM 2.0 service and authenticate, or bind to an LDAP directory.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::http::{HttpClient, auth};
use crate::reference::{self, RunningReference};
use crate::workload::probes::JobSource;
use crate::workload::{Target, Workload};

pub struct ResolvedTarget {
    pub client: Arc<HttpClient>,
    /// An ldap target's bound connections. Such a target has no HTTP side: `client` then points
    /// at a closed loopback port and is never called (every step, cleanup and check that would
    /// use it goes to the directory instead).
    pub directory: Option<Arc<crate::ldap::Directory>>,
    /// The SCIM base URL, for headers and logs.
    pub url: String,
    pub kind: &'static str,
    pub embedded: Option<RunningReference>,
}

/// `scheme://host[:port]` of a URL.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// `webhook` (a push receiver's URL) is given to an embedded service as its webhook target.
pub async fn resolve(
    workload: &Workload,
    stop: CancellationToken,
    webhook: Option<String>,
) -> anyhow::Result<ResolvedTarget> {
    let capture = match workload
        .probes
        .as_ref()
        .and_then(|p| p.queue.as_ref())
        .map(|q| &q.source)
    {
        Some(JobSource::Header(h)) => Some(h.clone()),
        _ => None,
    };
    let client = |url: &str| -> anyhow::Result<HttpClient> {
        let c = HttpClient::new(url, workload.http.clone())?;
        match &capture {
            Some(h) => c.capturing(h),
            None => Ok(c),
        }
    };
    match &workload.target {
        Target::Embedded { reference: config, .. } => {
            let mut config = config.as_ref().clone();
            if webhook.is_some() {
                config.webhook_url = webhook;
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot bind a loopback port for the embedded reference service")?;
            let running = reference::start(listener, config, reference::generate_token(), stop).await?;
            let client = Arc::new(client(&running.scim_url())?);
            client.set_bearer(&running.admin_token)?;
            Ok(ResolvedTarget {
                directory: None,
                url: running.scim_url(),
                client,
                kind: "embedded",
                embedded: Some(running),
            })
        }
        Target::Scim {
            base_url,
            auth: a,
            headers,
            scim,
        } => {
            let headers = crate::workload::downstream::header_map(headers, "[target] headers")?;
            let client = Arc::new(client(base_url)?.with_headers(headers));
            auth::authenticate(client.clone(), a, origin(base_url), "target.auth", stop)
                .await
                .with_context(|| format!("{}: [target] auth", workload.path.display()))?;
            Ok(ResolvedTarget {
                directory: None,
                url: crate::redact::url(base_url),
                client,
                kind: if *scim { "scim" } else { "http" },
                embedded: None,
            })
        }
        Target::Ldap(t) => {
            let directory = crate::ldap::Directory::connect(&t.endpoint, t.connections)
                .await
                .with_context(|| format!("{}: [target] (ldap)", workload.path.display()))?;
            Ok(ResolvedTarget {
                client: Arc::new(HttpClient::new("http://127.0.0.1:9", workload.http.clone())?),
                directory: Some(Arc::new(directory)),
                url: t.endpoint.display(),
                kind: "ldap",
                embedded: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_of_urls() {
        assert_eq!(super::origin("http://127.0.0.1:9000/scim/v2"), "http://127.0.0.1:9000");
        assert_eq!(super::origin("https://idp.example.com"), "https://idp.example.com");
    }
}
