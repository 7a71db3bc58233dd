//! What every virtual admin shares during a run: the SCIM client, the metrics registry and the
//! series of each operation, the journeys and their weights, the arrival gate (open model), the
//! pool of existing users, the stop signal, and the record of what the run created.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use crate::metrics::{MetricKey, Registry, SeriesId};
use crate::scim::ScimClient;
use crate::workload::{Journey, ThinkTime, Workload};

/// A user or group the run created and has not deleted (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    User { id: String, user_name: String },
    Group { id: String },
}

/// An existing user a lookup journey can use.
#[derive(Debug, Clone)]
pub struct PooledUser {
    pub id: Option<String>,
    pub user_name: String,
}

pub struct Ctx {
    pub client: Arc<ScimClient>,
    pub registry: Arc<Registry>,
    pub workload: Arc<Workload>,
    pub run_id: String,
    /// `api_latency{op}` per step op name, in `Workload::operations()` order.
    ops: Vec<(&'static str, SeriesId)>,
    pub admin_wait: SeriesId,
    /// Cumulative journey weights, for weighted choice.
    cumulative_weights: Vec<u32>,
    pub seq: AtomicU64,
    pub pool: Vec<PooledUser>,
    /// A group created at set-up for `add_to_group` in journeys that create none.
    pub shared_group: Option<String>,
    pub gate: Option<Gate>,
    pub stop: CancellationToken,
    /// Users and groups left behind by journeys (stopped early, or without a delete step),
    /// shared with the run's record of everything it created.
    pub leftovers: Arc<Mutex<Vec<Created>>>,
    pub next_admin: AtomicUsize,
    pub journeys_done: Vec<AtomicU64>,
    pub journeys_failed: Vec<AtomicU64>,
    /// Cut short by the end of the run (not a failure).
    pub journeys_stopped: Vec<AtomicU64>,
    /// Journeys currently running (the open model waits for these before it ends).
    pub in_flight: AtomicUsize,
    /// Observes a sample of acknowledged writes (queue delay, sync lag), when configured.
    pub probes: Option<Arc<crate::probes::ProbeHub>>,
    /// Proves the chain for a sample of users (login, permissions, effects, revocation).
    pub checks: Option<Arc<crate::checks::CheckHub>>,
    pub shard: Option<crate::workload::Shard>,
    /// Fired once every admin has started its session (the open model's schedule starts then).
    pub all_started: CancellationToken,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Arc<ScimClient>,
        registry: Arc<Registry>,
        workload: Arc<Workload>,
        run_id: String,
        pool: Vec<PooledUser>,
        shared_group: Option<String>,
        gate: Option<Gate>,
        stop: CancellationToken,
        leftovers: Arc<Mutex<Vec<Created>>>,
        probes: Option<Arc<crate::probes::ProbeHub>>,
        checks: Option<Arc<crate::checks::CheckHub>>,
    ) -> Ctx {
        let ops = workload
            .operations()
            .into_iter()
            .map(|op| (op, registry.series(MetricKey::new("api_latency").tag("op", op))))
            .collect();
        let admin_wait = registry.series(MetricKey::new("admin_wait"));
        let mut total = 0;
        let cumulative_weights = workload
            .journeys
            .iter()
            .map(|j| {
                total += j.weight;
                total
            })
            .collect();
        let n = workload.journeys.len();
        Ctx {
            client,
            registry,
            run_id,
            ops,
            admin_wait,
            cumulative_weights,
            seq: AtomicU64::new(1),
            pool,
            shared_group,
            gate,
            stop,
            leftovers,
            next_admin: AtomicUsize::new(0),
            journeys_done: (0..n).map(|_| AtomicU64::new(0)).collect(),
            journeys_failed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            journeys_stopped: (0..n).map(|_| AtomicU64::new(0)).collect(),
            in_flight: AtomicUsize::new(0),
            all_started: CancellationToken::new(),
            shard: None,
            probes,
            checks,
            workload,
        }
    }

    pub fn series(&self, op: &str) -> SeriesId {
        self.ops
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, s)| *s)
            .expect("every journey op has a series")
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
        match self.shard {
            Some(s) => n * s.count as u64 + s.index as u64,
            None => n,
        }
    }

    pub fn think_time(&self) -> Option<&ThinkTime> {
        match &self.workload.load {
            crate::workload::Load::Closed { think_time, .. } => think_time.as_ref(),
            crate::workload::Load::Open { .. } => None,
        }
    }
}
