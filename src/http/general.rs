//! The reqwest side of an [`HttpClient`](super::HttpClient): HTTPS targets (HTTP/2 where the
//! server offers it), token requests, and absolute URLs off a plain-HTTP target's origin. It owns
//! when that client is built: building one loads the system's root certificates (about 19 M
//! instructions and 150 files read), which a run that speaks only plain HTTP to its target never
//! needs, so for a plain-HTTP target it is built at its first use, and for an HTTPS one at once
//! (a broken TLS set-up stops the run before anything is sent). The TLS files the workload names
//! are read and parsed either way when the client is made, so a missing or broken one is an error
//! there, never at a request. The rules it is built with (no redirect followed, no proxy, header
//! block bounds) are the same however late it is built.

use std::sync::OnceLock;

use super::settings::HttpSettings;

pub(crate) struct General {
    settings: HttpSettings,
    /// The workload's CA certificates (`ca_file`), trusted beside the system's roots.
    roots: Vec<reqwest::Certificate>,
    /// The workload's client certificate and key (mTLS).
    identity: Option<reqwest::Identity>,
    client: OnceLock<reqwest::Client>,
}

impl General {
    /// Reads and parses the TLS files `settings` names; builds the client now when `eager`.
    pub(crate) fn new(settings: &HttpSettings, eager: bool) -> anyhow::Result<General> {
        let mut roots = Vec::new();
        if let Some(ca) = &settings.tls.ca_file {
            let pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("ca_file {}: {e}", ca.display()))?;
            roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("ca_file {}: not PEM certificates: {e}", ca.display()))?;
        }
        let identity = match &settings.tls.client_identity {
            Some((cert, key)) => {
                let mut pem =
                    std::fs::read(cert).map_err(|e| anyhow::anyhow!("client_cert {}: {e}", cert.display()))?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| anyhow::anyhow!("client_key {}: {e}", key.display()))?);
                Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                    anyhow::anyhow!("client_cert/client_key: not a PEM certificate and private key: {e}")
                })?)
            }
            None => None,
        };
        let general = General {
            settings: settings.clone(),
            roots,
            identity,
            client: OnceLock::new(),
        };
        if eager {
            general.client()?;
        }
        Ok(general)
    }

    /// The reqwest client, built at the first call.
    pub(crate) fn client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        // Two first callers at once may both build; one is kept, the same one for every caller.
        let built = self.build()?;
        Ok(self.client.get_or_init(|| built))
    }

    /// Whether the client was built (the system's root certificates loaded).
    pub(crate) fn built(&self) -> bool {
        self.client.get().is_some()
    }

    fn build(&self) -> anyhow::Result<reqwest::Client> {
        let settings = &self.settings;
        let mut builder = super::bounded(reqwest::Client::builder())
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_within())
            .user_agent(super::USER_AGENT)
            .tcp_nodelay(true)
            // No per-request proxy matching: load goes straight to the target.
            .no_proxy()
            // A 3xx is an answer, judged like any other: a redirect must never carry the
            // target's credentials, a client secret or a body to where it points.
            .redirect(reqwest::redirect::Policy::none());
        if !settings.http2 {
            builder = builder.http1_only();
        }
        if let Some(n) = settings.max_connections {
            builder = builder.pool_max_idle_per_host(n);
        }
        for cert in &self.roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        if !settings.keep_alive {
            // Servers that close every connection (HTTP/1.0): never reuse one.
            builder = builder.pool_max_idle_per_host(0);
        }
        Ok(builder.build()?)
    }
}
