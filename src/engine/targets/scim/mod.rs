//! A SCIM 2.0 target (kind `scim`, or the embedded reference service): the built-in steps as
//! SCIM requests ([`steps`]), set-up before the load ([`stage`]), what the target's `/Schemas`
//! requires ([`schemas`]), and cleanup with its marker sweep ([`sweep`]). Custom operations on
//! the same client are the HTTP target's ([`super::http`]).

mod own;
pub mod schemas;
pub mod stage;
pub mod steps;
pub mod sweep;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::Http;
use crate::engine::state::{AdminState, JourneyState, Run, Staged, StepEnd};
use crate::http::HttpClient;
use crate::ledger::{Claims, Created, Ledger, RunId};
use crate::metrics::SeriesId;
use crate::reference::RunningReference;
use crate::results::CleanupReport;
use crate::workload::{Step, Workload};

/// A SCIM service and the client that reaches it.
pub struct Scim {
    /// The client, and the custom operations sent with it.
    pub http: Http,
    /// The embedded reference service this target is, while it runs.
    embedded: parking_lot::Mutex<Option<RunningReference>>,
    /// `embedded` or `scim`.
    pub kind: &'static str,
    /// Why the sweep's search failed before the load, when it did: cleanup then reads the
    /// ledger's ids back instead of sweeping by marker (see [`Scim::check_before_load`]).
    search_failed: parking_lot::Mutex<Option<String>>,
}

/// What a SCIM step works with: the run, and the target's client and custom operations.
pub(super) struct Cx<'a> {
    pub run: &'a Run,
    pub client: &'a HttpClient,
    pub http: &'a Http,
}

impl std::ops::Deref for Cx<'_> {
    type Target = Run;
    fn deref(&self) -> &Run {
        self.run
    }
}

impl Scim {
    pub fn new(http: Http, embedded: Option<RunningReference>) -> Scim {
        Scim {
            http,
            kind: if embedded.is_some() { "embedded" } else { "scim" },
            embedded: parking_lot::Mutex::new(embedded),
            search_failed: parking_lot::Mutex::new(None),
        }
    }

    /// Before the load: the sweep's search, asked once. A target that cannot answer it (a
    /// `count` it answers 500 to) is no reason to stop the run, nor to end it as an error after
    /// retrying that search until cleanup's deadline: cleanup then deletes what the ledger holds
    /// and reads each id back ([`super::readback`]), and the returned note says so once.
    pub async fn check_before_load(&self, run_id: &RunId) -> Option<String> {
        let why = sweep::search_once(&self.http.client, run_id).await.err()?;
        *self.search_failed.lock() = Some(why.clone());
        Some(format!(
            "the target cannot be searched for the run's marker ({why}): cleanup deletes what the run recorded and reads each id back instead of sweeping (a create whose answer was lost cannot be found that way)"
        ))
    }

    pub fn client(&self) -> &Arc<HttpClient> {
        &self.http.client
    }

    /// Whether this is the embedded service (whose users go with it when it stops).
    pub fn is_embedded(&self) -> bool {
        self.kind == "embedded"
    }

    pub fn request_line(&self, workload: &Workload, step: &Step) -> Option<&'static str> {
        steps::request_line(workload, step)
    }

    pub async fn execute(
        &self,
        run: &Run,
        admin: &mut AdminState,
        step: &Step,
        state: &mut JourneyState,
        series: SeriesId,
    ) -> Result<(), StepEnd> {
        let cx = Cx {
            run,
            client: &self.http.client,
            http: &self.http,
        };
        steps::execute(&cx, admin, step, state, series).await
    }

    /// See `ResolvedTarget::prove_created`.
    pub async fn prove_created(&self, run: &Run, admin: &mut AdminState, state: &mut JourneyState) -> bool {
        let cx = Cx {
            run,
            client: &self.http.client,
            http: &self.http,
        };
        own::user_for_change(&cx, admin, state).await.is_ok()
    }

    pub async fn stage(
        &self,
        workload: &Workload,
        run_id: &RunId,
        ledger: &Ledger,
        stop: &CancellationToken,
    ) -> anyhow::Result<Staged> {
        stage::stage(&self.http.client, workload, run_id, ledger, stop).await
    }

    /// What can be checked without writing: the user template against the target's `/Schemas`.
    pub async fn preflight(&self, workload: &Workload) -> anyhow::Result<()> {
        stage::check_required_attributes(workload, &self.http.client).await
    }

    /// The ledger, then the marker sweep; `command` finishes the job by hand. Where the sweep's
    /// search failed before the load, the ledger's ids are read back instead, which is complete
    /// only when no create ended `unsure`ly ([`crate::ledger::Ledger::unsure`]).
    pub async fn clean_up(
        &self,
        items: Vec<Created>,
        deleted: Claims,
        run_id: &RunId,
        limit: Duration,
        command: String,
        unsure: u64,
    ) -> CleanupReport {
        let failed = self.search_failed.lock().clone();
        let client = self.http.client.clone();
        let Some(why) = failed else {
            return sweep::clean_up(client, items, deleted, run_id, limit, Some(command)).await;
        };
        // The search failed before the load: the ledger's ids, deleted and read back. That is
        // all the run made only when every create ended with its resource recorded.
        let mut report = sweep::clean_up(client, items, deleted, run_id, limit, None).await;
        if unsure > 0 {
            report.unsearchable.push(format!(
                "{why}; and {unsure} create(s) ended without a recorded id (failed, refused or cut off): what they may have made cannot be found without that search"
            ));
        }
        if report.incomplete() {
            report.command = Some(command);
        }
        report
    }

    /// One read of a deleted resource, as cleanup reads it back.
    pub fn read_back(&self, item: &Created) -> super::BoxFuture<'static, super::readback::Presence> {
        sweep::read(&self.http.client, item)
    }

    /// What a sweep would delete, deleting nothing.
    pub async fn marked(&self, run_id: &RunId, limit: Duration) -> Result<Vec<Created>, String> {
        sweep::list(&self.http.client, run_id, Instant::now() + limit).await
    }

    /// Everything that carries `run_id`, found by search and deleted (`provbench cleanup`).
    pub async fn sweep(&self, run_id: &RunId, limit: Duration) -> CleanupReport {
        sweep::sweep(self.http.client.clone(), run_id, Instant::now() + limit).await
    }

    /// Stops the embedded service, if this is it.
    pub async fn stop(&self) {
        let running = self.embedded.lock().take();
        if let Some(r) = running {
            r.stop().await;
        }
    }
}
