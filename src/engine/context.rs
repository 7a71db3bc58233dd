//! What the scheduler around the journeys shares: the [`Run`] every step reads (through
//! `Deref`), the resolved target that executes the steps, the series of each operation, the
//! journeys and their weights, the arrival gate (open model), and how journeys ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use super::state::Run;
use super::targets::ResolvedTarget;
use crate::metrics::{MetricKey, SeriesId};
use crate::results::JourneyInfo;
use crate::vocab::{metric, tag};
use crate::workload::{Journey, Load};

/// Per journey: how its runs ended.
#[derive(Default)]
pub struct JourneyCounts {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// Cut short by the end of the run (not a failure).
    pub stopped: AtomicU64,
}

pub struct Ctx {
    /// What every step reads; `ctx.workload`, `ctx.registry`… reach it through `Deref`.
    pub run: Run,
    /// The one place a step becomes a request of the target's protocol.
    pub target: Arc<ResolvedTarget>,
    /// `api_latency{op}` of each step, per journey.
    step_series: Vec<Vec<SeriesId>>,
    pub admin_wait: SeriesId,
    /// Cumulative journey weights, for weighted choice.
    cumulative_weights: Vec<u32>,
    pub gate: Option<Gate>,
    pub next_admin: AtomicUsize,
    pub journeys: Vec<JourneyCounts>,
    /// Journeys currently running.
    pub in_flight: AtomicUsize,
    /// Why operations failed, sampled.
    pub failures: Arc<super::failures::Failures>,
    /// Fired once every admin has started its session (the open model's schedule starts then).
    pub all_started: CancellationToken,
    /// Sessions that have ended; the last one fires [`Ctx::sessions_over`].
    sessions_ended: AtomicUsize,
    /// Fired when every admin's session has ended: the load's work is done. Goose notices only on
    /// its next half-second tick, so the run does not wait for it.
    pub sessions_over: CancellationToken,
}

impl std::ops::Deref for Ctx {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl Ctx {
    pub fn new(run: Run, target: Arc<ResolvedTarget>, failures: Arc<super::failures::Failures>) -> Ctx {
        let step_series = run
            .workload
            .journeys
            .iter()
            .map(|j| {
                j.steps
                    .iter()
                    .map(|step| {
                        let key = MetricKey::new(metric::API_LATENCY).tag(tag::OP, step.name());
                        run.registry.series(key)
                    })
                    .collect()
            })
            .collect();
        let admin_wait = run.registry.series(MetricKey::new(metric::ADMIN_WAIT));
        let mut total = 0;
        let cumulative_weights = run
            .workload
            .journeys
            .iter()
            .map(|j| {
                total += j.weight;
                total
            })
            .collect();
        let gate = match &run.workload.load {
            Load::Open { schedule, max_lag, .. } => Some(Gate::new(schedule.clone(), *max_lag)),
            Load::Closed { .. } => None,
        };
        Ctx {
            journeys: run.workload.journeys.iter().map(|_| JourneyCounts::default()).collect(),
            target,
            step_series,
            admin_wait,
            cumulative_weights,
            gate,
            next_admin: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            all_started: CancellationToken::new(),
            sessions_ended: AtomicUsize::new(0),
            sessions_over: CancellationToken::new(),
            failures,
            run,
        }
    }

    /// Counts one admin's session as ended (also one that panicked: see `admins::SessionEnd`).
    pub fn session_ended(&self) {
        let ended = self.sessions_ended.fetch_add(1, Ordering::AcqRel) + 1;
        if ended >= self.workload.load.admins() {
            self.sessions_over.cancel();
        }
    }

    /// The `api_latency` series of step `step` of journey `journey`.
    pub fn series(&self, journey: usize, step: usize) -> SeriesId {
        self.step_series[journey][step]
    }

    /// Picks a journey by weight from a uniform draw in `0..total_weight`.
    pub fn pick_journey(&self, draw: u32) -> (usize, &Journey) {
        let i = self.cumulative_weights.partition_point(|&c| c <= draw);
        (i, &self.run.workload.journeys[i])
    }

    pub fn total_weight(&self) -> u32 {
        *self.cumulative_weights.last().unwrap_or(&1)
    }

    /// How each journey's runs ended, for the summary.
    pub fn journey_infos(&self) -> Vec<JourneyInfo> {
        self.run
            .workload
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
