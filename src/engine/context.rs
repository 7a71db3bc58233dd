//! What every virtual admin shares during a run: the SCIM client, the metrics registry and the
//! series of each operation, the journeys and their weights, the arrival gate (open model), the
//! pool of existing users, the stop signal, and the ledger of what the run created.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use crate::http::HttpClient;
use crate::ledger::{Ledger, RunId};
use crate::metrics::{MetricKey, Registry, SeriesId};
use crate::results::JourneyInfo;
use crate::vocab::{metric, tag};
use crate::workload::{Journey, Load, ThinkTime, Workload};

/// An existing user a lookup journey can use.
#[derive(Debug, Clone)]
pub struct PooledUser {
    pub id: Option<String>,
    pub user_name: String,
}

/// Per journey: how its runs ended.
#[derive(Default)]
pub struct JourneyCounts {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// Cut short by the end of the run (not a failure).
    pub stopped: AtomicU64,
}

pub struct Ctx {
    pub client: Arc<HttpClient>,
    /// An ldap target's connections (the steps go there instead of `client`).
    pub directory: Option<Arc<crate::ldap::Directory>>,
    pub registry: Arc<Registry>,
    pub workload: Arc<Workload>,
    pub run_id: RunId,
    /// `api_latency{op}` of each step, per journey.
    step_series: Vec<Vec<SeriesId>>,
    /// Custom operations' headers from the environment, read once.
    pub custom: Vec<super::custom::Prepared>,
    pub admin_wait: SeriesId,
    /// Cumulative journey weights, for weighted choice.
    cumulative_weights: Vec<u32>,
    pub seq: AtomicU64,
    pub pool: Vec<PooledUser>,
    /// A group created at set-up for `add_to_group` in journeys that create none.
    pub shared_group: Option<String>,
    /// `[users] roles = "groups"`: each role's group id.
    pub role_groups: std::collections::HashMap<String, String>,
    pub gate: Option<Gate>,
    pub stop: CancellationToken,
    /// Ctrl-C or SIGTERM: cancels the requests in flight.
    pub interrupt: CancellationToken,
    /// Everything the run created and has not deleted, for cleanup.
    pub ledger: Ledger,
    pub next_admin: AtomicUsize,
    pub journeys: Vec<JourneyCounts>,
    /// Journeys currently running.
    pub in_flight: AtomicUsize,
    /// Observes a sample of acknowledged writes (queue delay, sync lag), when configured.
    pub probes: Option<Arc<crate::probes::ProbeHub>>,
    /// Proves the chain for a sample of users (login, permissions, effects, revocation).
    pub checks: Option<Arc<crate::checks::CheckHub>>,
    /// Why operations failed, sampled.
    pub failures: Arc<super::failures::Failures>,
    /// Fired once every admin has started its session (the open model's schedule starts then).
    pub all_started: CancellationToken,
}

/// What a run's admins share, before the [`Ctx`] is built around it.
pub struct Shared {
    pub client: Arc<HttpClient>,
    pub directory: Option<Arc<crate::ldap::Directory>>,
    pub registry: Arc<Registry>,
    pub workload: Arc<Workload>,
    pub run_id: RunId,
    pub pool: Vec<PooledUser>,
    pub shared_group: Option<String>,
    pub role_groups: std::collections::HashMap<String, String>,
    pub stop: CancellationToken,
    pub interrupt: CancellationToken,
    pub ledger: Ledger,
    pub probes: Option<Arc<crate::probes::ProbeHub>>,
    pub checks: Option<Arc<crate::checks::CheckHub>>,
    /// Why operations failed, sampled.
    pub failures: Arc<super::failures::Failures>,
    pub custom: Vec<super::custom::Prepared>,
}

impl Ctx {
    pub fn new(s: Shared) -> Ctx {
        let step_series = s
            .workload
            .journeys
            .iter()
            .map(|j| {
                j.steps
                    .iter()
                    .map(|step| {
                        let key = MetricKey::new(metric::API_LATENCY).tag(tag::OP, step.name());
                        s.registry.series(key)
                    })
                    .collect()
            })
            .collect();
        let admin_wait = s.registry.series(MetricKey::new(metric::ADMIN_WAIT));
        let mut total = 0;
        let cumulative_weights = s
            .workload
            .journeys
            .iter()
            .map(|j| {
                total += j.weight;
                total
            })
            .collect();
        let gate = match &s.workload.load {
            Load::Open { schedule, max_lag, .. } => Some(Gate::new(schedule.clone(), *max_lag)),
            Load::Closed { .. } => None,
        };
        Ctx {
            journeys: s.workload.journeys.iter().map(|_| JourneyCounts::default()).collect(),
            client: s.client,
            directory: s.directory,
            registry: s.registry,
            run_id: s.run_id,
            step_series,
            custom: s.custom,
            admin_wait,
            cumulative_weights,
            seq: AtomicU64::new(1),
            pool: s.pool,
            shared_group: s.shared_group,
            role_groups: s.role_groups,
            gate,
            stop: s.stop,
            interrupt: s.interrupt,
            ledger: s.ledger,
            next_admin: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            all_started: CancellationToken::new(),
            probes: s.probes,
            checks: s.checks,
            failures: s.failures,
            workload: s.workload,
        }
    }

    /// The `api_latency` series of step `step` of journey `journey`.
    pub fn series(&self, journey: usize, step: usize) -> SeriesId {
        self.step_series[journey][step]
    }

    /// Picks a journey by weight from a uniform draw in `0..total_weight`.
    pub fn pick_journey(&self, draw: u32) -> (usize, &Journey) {
        let i = self.cumulative_weights.partition_point(|&c| c <= draw);
        (i, &self.workload.journeys[i])
    }

    pub fn total_weight(&self) -> u32 {
        *self.cumulative_weights.last().unwrap_or(&1)
    }

    /// The next user sequence number: a shard takes every `count`-th one, so shards sharing a
    /// run id never collide.
    pub fn next_seq(&self) -> u64 {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        match self.workload.shard {
            Some(s) => n * s.count as u64 + s.index as u64,
            None => n,
        }
    }

    pub fn think_time(&self) -> Option<&ThinkTime> {
        match &self.workload.load {
            Load::Closed { think_time, .. } => think_time.as_ref(),
            Load::Open { .. } => None,
        }
    }

    /// How each journey's runs ended, for the summary.
    pub fn journey_infos(&self) -> Vec<JourneyInfo> {
        self.workload
            .journeys
            .iter()
            .zip(&self.journeys)
            .map(|(j, c)| JourneyInfo {
                name: j.name.clone(),
                weight: j.weight,
                completed: c.done.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                stopped: c.stopped.load(Ordering::Relaxed),
            })
            .collect()
    }
}
