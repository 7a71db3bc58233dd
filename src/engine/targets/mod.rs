//! The seam for kinds of target: the only place that picks a protocol. A workload's `[target]`
//! becomes a [`ResolvedTarget`] holding exactly what its protocol needs (an authenticated HTTP
//! client, bound LDAP connections, the embedded service), and every phase asks it, never the
//! workload's kind: the request line of a step (failure samples), a step executed, the set-up
//! before the load, the cleanup after it, a sweep for a run's marker (`provbench cleanup`).
//!
//! One file per protocol: [`scim`] (SCIM 2.0, and the embedded reference service), [`ldap`]
//! (directories), [`http`] (APIs driven by custom operations only). A kind that lives outside
//! this crate (a test's mock, an embedder's protocol) implements [`Protocol`] and is given to
//! the run as [`crate::engine::RunOptions::target`].
//!
//! Adding a kind: its workload section (`src/workload/`), a file here with its steps and its
//! cleanup, one arm in each `match` below, its chapter in `docs/`, a test.

pub mod http;
pub mod ldap;
pub mod readback;
pub mod requests;
pub mod retry;
pub mod scim;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::state::{AdminState, JourneyState, Run, Staged, StepEnd};
use crate::http::{HttpClient, auth};
use crate::ledger::{Claims, Created, Ledger, RunId};
use crate::metrics::SeriesId;
use crate::reference;
use crate::results::CleanupReport;
use crate::workload::probes::JobSource;
use crate::workload::{Step, Target, Workload};

/// A future a [`Protocol`] returns (boxed: a protocol is a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A kind of target defined outside this crate: what the engine needs of it. The built-in
/// kinds are the other arms of [`ResolvedTarget`].
pub trait Protocol: Send + Sync {
    /// Its name in `summary.json` (`target.kind`).
    fn kind(&self) -> &'static str;
    /// Where it is, for logs and the summary (no secret in it).
    fn url(&self) -> String;
    /// The request a step sends, as a template, for failure samples.
    fn request_line(&self, step: &Step) -> Option<&'static str>;
    /// Runs one step against the journey's state (see [`crate::engine::state`]'s helpers).
    fn execute<'a>(
        &'a self,
        run: &'a Run,
        admin: &'a mut AdminState,
        step: &'a Step,
        state: &'a mut JourneyState,
    ) -> BoxFuture<'a, Result<(), StepEnd>>;
    /// Deletes what the run created and left (the ledger's `items`), within `limit`.
    fn clean_up<'a>(&'a self, items: Vec<Created>, run_id: &'a RunId, limit: Duration) -> BoxFuture<'a, CleanupReport>;
}

/// A workload's target, ready: each arm holds what its protocol needs and nothing else.
pub enum ResolvedTarget {
    Scim(scim::Scim),
    Http(http::Http),
    Ldap(ldap::Ldap),
    Other(Arc<dyn Protocol>),
}

impl ResolvedTarget {
    /// `embedded`, `scim`, `http`, `ldap`, or another protocol's name.
    pub fn kind(&self) -> &'static str {
        match self {
            ResolvedTarget::Scim(t) => t.kind,
            ResolvedTarget::Http(_) => "http",
            ResolvedTarget::Ldap(_) => "ldap",
            ResolvedTarget::Other(p) => p.kind(),
        }
    }

    /// Where the target is, for logs and the summary (credentials removed).
    pub fn url(&self) -> String {
        match self {
            ResolvedTarget::Scim(t) => crate::redact::url(t.client().base()),
            ResolvedTarget::Http(t) => crate::redact::url(t.client.base()),
            ResolvedTarget::Ldap(t) => t.url(),
            ResolvedTarget::Other(p) => p.url(),
        }
    }

    /// The target's HTTP client, for the parts that read the target's own origin (probes,
    /// checks); `None` for a target that is not reached over HTTP.
    pub fn http_client(&self) -> Option<Arc<HttpClient>> {
        match self {
            ResolvedTarget::Scim(t) => Some(t.client().clone()),
            ResolvedTarget::Http(t) => Some(t.client.clone()),
            ResolvedTarget::Ldap(_) | ResolvedTarget::Other(_) => None,
        }
    }

    /// Whether the target goes away with the run (the embedded service), taking its users.
    pub fn gone_with_run(&self) -> bool {
        matches!(self, ResolvedTarget::Scim(t) if t.is_embedded())
    }

    /// The request a built-in step sends, as a template, for failure samples.
    pub fn request_line(&self, workload: &Workload, step: &Step) -> Option<&'static str> {
        match self {
            ResolvedTarget::Scim(t) => t.request_line(workload, step),
            ResolvedTarget::Http(t) => t.request_line(step),
            ResolvedTarget::Ldap(t) => t.request_line(step),
            ResolvedTarget::Other(p) => p.request_line(step),
        }
    }

    /// Runs `step` against the journey's state.
    pub async fn execute(
        &self,
        run: &Run,
        admin: &mut AdminState,
        step: &Step,
        state: &mut JourneyState,
        series: SeriesId,
    ) -> StepEnd {
        let sent = match self {
            ResolvedTarget::Scim(t) => t.execute(run, admin, step, state, series).await,
            ResolvedTarget::Http(t) => t.execute(run, admin, step, state, series).await,
            ResolvedTarget::Ldap(t) => t.execute(run, admin, step, state).await,
            ResolvedTarget::Other(p) => p.execute(run, admin, step, state).await,
        };
        match sent {
            Ok(()) => StepEnd::Done,
            Err(end) => end,
        }
    }

    /// Whether the user the journey just created is the run's, proven by the target's own read
    /// where its create answered an id (SCIM: `scim::own`), before the checks follow it: their
    /// evidence about somebody else's id is no evidence about the run's write (invariant 10).
    /// A directory's DN is the run's by construction.
    pub async fn prove_created(&self, run: &Run, admin: &mut AdminState, state: &mut JourneyState) -> bool {
        match self {
            ResolvedTarget::Scim(t) => t.prove_created(run, admin, state).await,
            ResolvedTarget::Http(_) | ResolvedTarget::Ldap(_) | ResolvedTarget::Other(_) => true,
        }
    }

    /// What the journeys need before the load (users and groups created, existing ones found).
    pub async fn stage(
        &self,
        workload: &Workload,
        run_id: &RunId,
        ledger: &Ledger,
        stop: &CancellationToken,
    ) -> anyhow::Result<Staged> {
        match self {
            ResolvedTarget::Scim(t) => t.stage(workload, run_id, ledger, stop).await,
            ResolvedTarget::Ldap(t) => t.stage(workload).await,
            ResolvedTarget::Http(_) | ResolvedTarget::Other(_) => Ok(Staged::default()),
        }
    }

    /// What `validate --online` may ask without writing (signed in or bound already).
    pub async fn preflight(&self, workload: &Workload) -> anyhow::Result<()> {
        match self {
            ResolvedTarget::Scim(t) => t.preflight(workload).await,
            ResolvedTarget::Http(_) | ResolvedTarget::Ldap(_) | ResolvedTarget::Other(_) => Ok(()),
        }
    }

    /// Before the load, what the run's own cleanup and writes rest on: an LDAP target's base DN
    /// exists (an error stops the run), a SCIM target answers the sweep's search (when it does
    /// not, cleanup reads the ledger's ids back instead: the note says so).
    pub async fn check_before_load(&self, run_id: &RunId) -> anyhow::Result<Option<String>> {
        match self {
            ResolvedTarget::Scim(t) => Ok(t.check_before_load(run_id).await),
            ResolvedTarget::Ldap(t) => t.check_before_load().await.map(|()| None),
            ResolvedTarget::Http(_) | ResolvedTarget::Other(_) => Ok(None),
        }
    }

    /// Deletes what the ledger holds, then (where the target can be searched) everything else
    /// that carries the run's marker; `command` finishes the job by hand.
    /// `deleted`: what the journeys deleted, to be read back as gone with cleanup's own deletes
    /// (not on a target that stops with the run, where nothing outlives it). `unsure`: creates
    /// that ended without their resource in the ledger ([`Ledger::unsure`]).
    pub async fn clean_up(
        &self,
        items: Vec<Created>,
        deleted: Claims,
        run_id: &RunId,
        limit: Duration,
        command: String,
        unsure: u64,
    ) -> CleanupReport {
        let deleted = if self.gone_with_run() {
            Claims::default()
        } else {
            deleted
        };
        match self {
            ResolvedTarget::Scim(t) => t.clean_up(items, deleted, run_id, limit, command, unsure).await,
            ResolvedTarget::Ldap(t) => t.clean_up(items, deleted, run_id, limit, command).await,
            ResolvedTarget::Http(t) => t.clean_up(items, deleted, limit).await,
            ResolvedTarget::Other(p) => p.clean_up(items, run_id, limit).await,
        }
    }

    /// One read of what a journey deleted, as cleanup reads it back: for reading claims back
    /// while the run goes on ([`readback::settle_while_running`]). `None` where the journeys'
    /// deletes are read back only at cleanup (kind `http`, a protocol of the embedder's).
    pub fn read_back(&self, item: &Created) -> Option<BoxFuture<'_, readback::Presence>> {
        match self {
            ResolvedTarget::Scim(t) => Some(t.read_back(item)),
            ResolvedTarget::Ldap(t) => Some(t.read_back(item)),
            ResolvedTarget::Http(_) | ResolvedTarget::Other(_) => None,
        }
    }

    /// Whether the journeys' deletes can be read back while the run goes on.
    pub fn reads_back_during_run(&self) -> bool {
        matches!(self, ResolvedTarget::Scim(_) | ResolvedTarget::Ldap(_)) && !self.gone_with_run()
    }

    /// Searches for everything that carries `run_id` and deletes it (`provbench cleanup`, the
    /// sweep's steps). `Err` for a target that cannot be searched.
    pub async fn sweep(&self, run_id: &RunId, limit: Duration) -> anyhow::Result<CleanupReport> {
        match self {
            ResolvedTarget::Scim(t) => Ok(t.sweep(run_id, limit).await),
            ResolvedTarget::Ldap(t) => Ok(t.sweep(run_id, limit).await),
            ResolvedTarget::Http(_) => anyhow::bail!(
                "the workload's target (kind \"http\") cannot be searched for the run's marker: its cleanup hooks ([operations] cleanup) ran at the end of its run, and what they left is listed in its summary"
            ),
            ResolvedTarget::Other(p) => anyhow::bail!("a target of kind `{}` cannot be swept", p.kind()),
        }
    }

    /// What [`ResolvedTarget::sweep`] would delete, deleting nothing.
    pub async fn marked(&self, run_id: &RunId, limit: Duration) -> anyhow::Result<Vec<Created>> {
        match self {
            ResolvedTarget::Scim(t) => t.marked(run_id, limit).await.map_err(anyhow::Error::msg),
            ResolvedTarget::Ldap(t) => t.marked(run_id).await.map_err(anyhow::Error::msg),
            ResolvedTarget::Http(_) | ResolvedTarget::Other(_) => {
                anyhow::bail!("a target of kind `{}` cannot be searched for a marker", self.kind())
            }
        }
    }

    /// Whether the target can be searched for a run's marker after the run.
    pub fn sweepable(&self) -> bool {
        matches!(self, ResolvedTarget::Scim(_) | ResolvedTarget::Ldap(_)) && !self.gone_with_run()
    }

    /// Stops what the target started (the embedded service).
    pub async fn stop(&self) {
        if let ResolvedTarget::Scim(t) = self {
            t.stop().await;
        }
    }
}

/// Whether the workload's target outlives a run (all but the embedded service), so that what a
/// run left there can be swept afterwards.
pub fn outlives_the_run(workload: &Workload) -> bool {
    !matches!(workload.target, Target::Embedded { .. })
}

/// `scheme://host[:port]` of a URL.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The workload's HTTP client for `url`, capturing the queue probe's job header when it names one.
fn client_for(workload: &Workload, url: &str) -> anyhow::Result<HttpClient> {
    let c = HttpClient::new(url, workload.http.clone())?;
    match workload
        .probes
        .as_ref()
        .and_then(|p| p.queue.as_ref())
        .map(|q| &q.source)
    {
        Some(JobSource::Header(h)) => c.capturing(h),
        _ => Ok(c),
    }
}

/// Resolves the workload's target: starts the embedded reference service on a loopback port,
/// signs in to an HTTP target, or binds to a directory. `webhook` (a push receiver's URL) is
/// given to an embedded service as its webhook target; `other` replaces the workload's target.
pub async fn resolve(
    workload: &Workload,
    stop: CancellationToken,
    webhook: Option<String>,
    other: Option<Arc<dyn Protocol>>,
) -> anyhow::Result<ResolvedTarget> {
    if let Some(p) = other {
        return Ok(ResolvedTarget::Other(p));
    }
    match &workload.target {
        Target::Embedded { reference: config, .. } => {
            let mut config = config.as_ref().clone();
            if webhook.is_some() {
                config.webhook_url = webhook;
            }
            // What the service forgets must outlive every read a probe or check makes of it.
            let longest = [
                workload.probes.as_ref().map(|p| p.timeout),
                workload.checks.as_ref().map(|c| c.timeout),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default();
            config.retention = config.retention.max(longest.saturating_mul(2));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot bind a loopback port for the embedded reference service")?;
            let running = reference::start(listener, config, reference::generate_token(), stop).await?;
            let client = Arc::new(client_for(workload, &running.scim_url())?);
            client.set_bearer(&running.admin_token)?;
            let http = http::Http::new(client, &workload.operations, false)?;
            Ok(ResolvedTarget::Scim(scim::Scim::new(http, Some(running))))
        }
        Target::Scim {
            base_url,
            auth: a,
            headers,
            scim: is_scim,
        } => {
            let headers = crate::workload::downstream::header_map(headers, "[target] headers")?;
            let client = Arc::new(client_for(workload, base_url)?.with_headers(headers));
            auth::authenticate(client.clone(), a, origin(base_url), "target.auth", stop)
                .await
                .with_context(|| format!("{}: [target] auth", workload.path.display()))?;
            // Before anything is sent to the target (a missing secret is said first): one that
            // refuses connections fails here at once, and leaves nothing to clean up.
            crate::http::reach(base_url, workload.http.connect_within())
                .await
                .with_context(|| format!("{}: [target] base_url", workload.path.display()))?;
            let http = http::Http::new(client, &workload.operations, !*is_scim)?;
            Ok(match is_scim {
                true => ResolvedTarget::Scim(scim::Scim::new(http, None)),
                false => ResolvedTarget::Http(http),
            })
        }
        Target::Ldap(t) => {
            let ldap = ldap::Ldap::connect(t)
                .await
                .with_context(|| format!("{}: [target] (ldap)", workload.path.display()))?;
            Ok(ResolvedTarget::Ldap(ldap))
        }
    }
}

/// The target `provbench cleanup` sweeps: the workload's (pointed elsewhere by `target_url`),
/// or a SCIM service at `target_url` with a bearer token from `token_env`.
pub async fn for_cleanup(
    workload: Option<&Workload>,
    target_url: Option<&str>,
    token_env: Option<&str>,
    stop: CancellationToken,
) -> anyhow::Result<ResolvedTarget> {
    let token = |client: &HttpClient| -> anyhow::Result<bool> {
        let Some(env) = token_env else { return Ok(false) };
        let value = std::env::var(env).with_context(|| format!("environment variable `{env}` is not set"))?;
        client.set_bearer(&value)?;
        Ok(true)
    };
    let Some(w) = workload else {
        let Some(url) = target_url else {
            anyhow::bail!("give a workload file or --target-url");
        };
        let settings = crate::http::HttpSettings::defaults();
        let within = settings.connect_within();
        let client = HttpClient::new(url, settings)?;
        token(&client)?;
        crate::http::reach(url, within).await?;
        return Ok(ResolvedTarget::Scim(scim::Scim::new(
            http::Http::new(Arc::new(client), &[], false)?,
            None,
        )));
    };
    let (base, auth_and_headers) = match &w.target {
        Target::Scim { scim: false, .. } => anyhow::bail!(
            "the workload's target (kind \"http\") cannot be searched for the run's marker: its cleanup hooks ([operations] cleanup) ran at the end of its run, and what they left is listed in its summary"
        ),
        Target::Scim {
            base_url,
            auth,
            headers,
            ..
        } => {
            let headers = crate::workload::downstream::header_map(headers, "[target] headers")?;
            (target_url.unwrap_or(base_url).to_string(), Some((auth, headers)))
        }
        // --target-url points the workload's client, with its authentication, elsewhere.
        Target::Embedded { .. } if target_url.is_some() => (target_url.unwrap_or_default().to_string(), None),
        Target::Embedded { .. } => anyhow::bail!(
            "the workload's target is the embedded service, which lives only as long as its run: nothing to clean"
        ),
        Target::Ldap(t) => {
            let mut t = t.clone();
            t.connections = 1;
            return Ok(ResolvedTarget::Ldap(ldap::Ldap::connect(&t).await?));
        }
    };
    let mut client = HttpClient::new(&base, w.http.clone())?;
    if let Some((_, headers)) = &auth_and_headers {
        client = client.with_headers(headers.clone());
    }
    let client = Arc::new(client);
    if !token(&client)?
        && let Some((a, _)) = auth_and_headers
    {
        auth::authenticate(client.clone(), a, origin(&base), "target.auth", stop).await?;
    }
    crate::http::reach(&base, w.http.connect_within()).await?;
    Ok(ResolvedTarget::Scim(scim::Scim::new(
        http::Http::new(client, &w.operations, false)?,
        None,
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_of_urls() {
        assert_eq!(super::origin("http://127.0.0.1:9000/scim/v2"), "http://127.0.0.1:9000");
        assert_eq!(super::origin("https://idp.example.com"), "https://idp.example.com");
    }
}
