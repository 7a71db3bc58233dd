//! The asynchronous half: every accepted write becomes a provisioning job in a bounded queue,
//! `workers` jobs run at once (each busy for its service time), then the change propagates to every
//! linked service after that service's own sync delay. Jobs record `accepted_at`, `started_at`,
//! `finished_at` and per-service state; the pipeline also writes audit entries, welcome messages,
//! webhook events and the ground-truth statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use dashmap::DashMap;
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::ReferenceConfig;
use super::distribution::SeededSource;
use super::effects::{AuditEntry, EventLog, Message};
use super::error::ScimError;
use super::linked::LinkedService;
use super::retention::{Expiry, Window};
use super::stats::Stats;
use super::store::Snapshot;

/// Converts monotonic instants into wall-clock timestamps with one fixed offset, so differences
/// between written timestamps are exact monotonic differences.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    wall: SystemTime,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            wall: SystemTime::now(),
        }
    }
    pub fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.base)
    }
    pub fn format(&self, at: Instant) -> String {
        humantime::format_rfc3339_micros(self.wall(at)).to_string()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

const PENDING: u8 = 0;
const APPLIED: u8 = 1;
const FAILED: u8 = 2;

pub struct ServiceState {
    state: AtomicU8,
    applied_at: std::sync::OnceLock<Instant>,
}

/// What `GET /jobs/{id}` shows.
pub struct JobRecord {
    pub id: u64,
    pub op: &'static str,
    pub target: String,
    pub accepted_at: Instant,
    started_at: std::sync::OnceLock<Instant>,
    finished_at: std::sync::OnceLock<Instant>,
    services: Vec<ServiceState>,
}

struct Job {
    record: Arc<JobRecord>,
    actor: String,
    snapshots: Vec<Snapshot>,
}

pub struct Pipeline {
    sender: mpsc::Sender<Job>,
    jobs: DashMap<u64, Arc<JobRecord>>,
    /// Job ids in acceptance order, forgotten once past the retention window.
    job_expiry: Expiry<u64>,
    next_job: std::sync::atomic::AtomicU64,
    pub services: Vec<LinkedService>,
    pub audit: EventLog<AuditEntry>,
    pub outbox: EventLog<Message>,
    pub stats: Stats,
    pub clock: Clock,
    config: Arc<ReferenceConfig>,
    rng: SeededSource,
    /// The webhooks' client, made at the first webhook (a service without `webhook` never pays
    /// for its TLS set-up); why it could not be made, instead of a panic of the service.
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    capacity: usize,
}

/// A reserved place in the queue: take it before changing the store, so that a full queue
/// rejects the write instead of leaving a change that never propagates.
pub struct QueueSlot<'a>(mpsc::Permit<'a, Job>);

impl Pipeline {
    /// Starts the dispatcher; it stops taking jobs when `shutdown` is cancelled.
    pub fn start(config: Arc<ReferenceConfig>, shutdown: CancellationToken) -> Arc<Pipeline> {
        let (sender, receiver) = mpsc::channel(config.queue_capacity);
        let window = Window {
            keep: config.retention,
            cap: config.retention_cap,
        };
        let pipeline = Arc::new(Pipeline {
            sender,
            jobs: DashMap::new(),
            job_expiry: Expiry::new(window),
            next_job: std::sync::atomic::AtomicU64::new(1),
            services: config
                .services
                .iter()
                .map(|s| {
                    let never_revokes = config.flaws.incomplete_deprovisioning.as_deref() == Some(s.name.as_str());
                    LinkedService::new(s.clone(), never_revokes, window)
                })
                .collect(),
            audit: EventLog::new(window),
            outbox: EventLog::new(window),
            stats: Stats::new(config.services.iter().map(|s| s.name.clone())),
            clock: Clock::new(),
            rng: SeededSource::new(config.seed ^ 0x5EED),
            http: std::sync::OnceLock::new(),
            capacity: config.queue_capacity,
            config,
        });
        tokio::spawn(pipeline.clone().dispatch(receiver, shutdown));
        pipeline
    }

    pub fn queue_depth(&self) -> usize {
        self.capacity - self.sender.capacity()
    }

    pub fn reserve(&self) -> Result<QueueSlot<'_>, ScimError> {
        self.sender.try_reserve().map(QueueSlot).map_err(|_| {
            self.stats.queue_full.inc();
            ScimError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                None,
                "provisioning queue is full, retry later",
            )
            .with_retry_after(1)
        })
    }

    /// Enqueues the job for an accepted write; returns its id.
    pub fn submit(
        &self,
        slot: QueueSlot<'_>,
        op: &'static str,
        actor: &str,
        target: &str,
        snapshots: Vec<Snapshot>,
    ) -> u64 {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let record = Arc::new(JobRecord {
            id,
            op,
            target: target.to_string(),
            accepted_at: now,
            started_at: Default::default(),
            finished_at: Default::default(),
            services: (0..self.services.len())
                .map(|_| ServiceState {
                    state: AtomicU8::new(PENDING),
                    applied_at: Default::default(),
                })
                .collect(),
        });
        self.jobs.insert(id, record.clone());
        self.job_expiry.push(now, id, |old| {
            self.jobs.remove(&old);
        });
        self.stats.jobs_accepted.inc();
        slot.0.send(Job {
            record,
            actor: actor.to_string(),
            snapshots,
        });
        id
    }

    async fn dispatch(self: Arc<Self>, mut receiver: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        let workers = Arc::new(Semaphore::new(self.config.workers));
        loop {
            let permit = tokio::select! {
                p = workers.clone().acquire_owned() => p.expect("semaphore is never closed"),
                _ = shutdown.cancelled() => return,
            };
            let job = match &self.config.idle_poll {
                None => tokio::select! {
                    j = receiver.recv() => match j { Some(j) => j, None => return },
                    _ = shutdown.cancelled() => return,
                },
                // A polling worker: an empty queue is looked at again only after a while.
                Some(idle) => loop {
                    match receiver.try_recv() {
                        Ok(j) => break j,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                        Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                            _ = tokio::time::sleep(self.rng.sample(idle)) => {}
                            _ = shutdown.cancelled() => return,
                        },
                    }
                },
            };
            tokio::spawn(self.clone().run(job, permit));
        }
    }

    async fn run(self: Arc<Self>, job: Job, worker: OwnedSemaphorePermit) {
        let record = job.record.clone();
        let started = Instant::now();
        let _ = record.started_at.set(started);
        self.stats.jobs_started.inc();
        self.stats.record_queue_delay(started - record.accepted_at);
        let service_time = self.rng.sample(&self.config.service_time);
        if !service_time.is_zero() {
            tokio::time::sleep(service_time).await;
        }
        self.stats.record_service_time(started.elapsed());
        // The worker is free once the job has been handed to the linked services.
        drop(worker);

        let job = Arc::new(job);
        let mut fanout = JoinSet::new();
        for index in 0..self.services.len() {
            let (me, job) = (self.clone(), job.clone());
            fanout.spawn(async move { me.propagate(index, &job).await });
        }
        while fanout.join_next().await.is_some() {}
        let finished = Instant::now();
        let _ = record.finished_at.set(finished);
        self.stats.jobs_finished.inc();
        self.stats.record_end_to_end(finished - record.accepted_at);
        self.write_effects(&job, finished);
    }

    async fn propagate(&self, index: usize, job: &Job) {
        let service = &self.services[index];
        let delay = self.rng.sample(&service.config.sync_delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let record = &job.record;
        let state = &record.services[index];
        let stats = &self.stats.services[index];
        if self.rng.chance(service.config.failure_probability) {
            state.state.store(FAILED, Ordering::Release);
            stats.failed.inc();
            return;
        }
        let now = Instant::now();
        if self.rng.chance(service.config.lost_probability) {
            // Lost: the job believes the change landed; the service never shows it.
            stats.lost.inc();
        } else {
            for s in &job.snapshots {
                service.apply(s, record.id, now);
            }
            stats.applied.inc();
            let revocation = matches!(record.op, "disable_user" | "delete_user");
            self.stats.record_sync_lag(index, now - record.accepted_at, revocation);
        }
        let _ = state.applied_at.set(now);
        state.state.store(APPLIED, Ordering::Release);
        if let Some(url) = &self.config.webhook_url {
            self.send_webhook(url, &service.config.name, record, now).await;
        }
    }

    async fn send_webhook(&self, url: &str, service: &str, record: &JobRecord, applied: Instant) {
        let event = json!({
            "event": "sync.applied",
            "job_id": record.id,
            "op": record.op,
            "user_id": record.target,
            "service": service,
            "accepted_at": self.clock.format(record.accepted_at),
            "applied_at": self.clock.format(applied),
        });
        let client = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .map_err(|e| {
                    tracing::warn!(error = %e, "the reference service cannot make its webhook client: every webhook fails");
                    e.to_string()
                })
        });
        let Ok(client) = client else {
            self.stats.webhooks_failed.inc();
            return;
        };
        match client.post(url).json(&event).send().await {
            Ok(r) if r.status().is_success() => self.stats.webhooks_sent.inc(),
            Ok(r) => {
                tracing::debug!(status = %r.status(), "webhook rejected");
                self.stats.webhooks_failed.inc()
            }
            Err(e) => {
                tracing::debug!(error = %e, "webhook failed");
                self.stats.webhooks_failed.inc()
            }
        }
    }

    fn write_effects(&self, job: &Job, at: Instant) {
        let record = &job.record;
        let timestamp = self.clock.format(at);
        if self.config.flaws.missing_audit && self.rng.chance(0.25) {
            self.stats.audit_dropped.inc();
        } else {
            self.audit.push(
                AuditEntry {
                    seq: self.audit.next_seq(),
                    timestamp: timestamp.clone(),
                    actor: job.actor.clone(),
                    action: record.op.to_string(),
                    target: record.target.clone(),
                    job_id: record.id,
                },
                at,
            );
            self.stats.audit_entries.inc();
        }
        if record.op == "create_user"
            && let Some(user) = job.snapshots.first().and_then(|s| s.user.as_ref())
        {
            let r = &user.resource;
            let to = r["emails"]
                .as_array()
                .and_then(|e| e.first())
                .and_then(|e| e["value"].as_str())
                .or(r["userName"].as_str())
                .unwrap_or_default();
            self.outbox.push(
                Message {
                    seq: self.outbox.next_seq(),
                    user_id: record.target.clone(),
                    to: to.to_string(),
                    subject: "Welcome aboard".into(),
                    created_at: timestamp,
                },
                at,
            );
        }
    }

    /// Forgets jobs, audit and outbox entries and deleted users past the retention window at
    /// `now`; writes do it as they go, this covers quiet periods (called every second).
    pub fn sweep(&self, now: Instant) {
        self.job_expiry.sweep(now, |old| {
            self.jobs.remove(&old);
        });
        self.audit.sweep(now);
        self.outbox.sweep(now);
        for s in &self.services {
            s.sweep(now);
        }
    }

    /// How many jobs are held (for the retention tests).
    pub fn jobs_held(&self) -> usize {
        self.jobs.len()
    }

    pub fn job_json(&self, id: u64) -> Option<Value> {
        let job = self.jobs.get(&id)?.clone();
        let mut services = Map::new();
        let mut all_applied = true;
        for (svc, st) in self.services.iter().zip(&job.services) {
            let state = match st.state.load(Ordering::Acquire) {
                APPLIED => "applied",
                FAILED => "failed",
                _ => "pending",
            };
            all_applied &= state == "applied";
            services.insert(
                svc.config.name.clone(),
                json!({"state": state, "applied_at": st.applied_at.get().map(|t| self.clock.format(*t))}),
            );
        }
        let status = match (job.started_at.get(), job.finished_at.get()) {
            (None, _) => "queued",
            (Some(_), None) => "running",
            (Some(_), Some(_)) if all_applied => "succeeded",
            _ => "failed",
        };
        Some(json!({
            "id": job.id.to_string(),
            "op": job.op,
            "target": job.target,
            "status": status,
            "accepted_at": self.clock.format(job.accepted_at),
            "started_at": job.started_at.get().map(|t| self.clock.format(*t)),
            "finished_at": job.finished_at.get().map(|t| self.clock.format(*t)),
            "services": services,
        }))
    }

    pub fn service(&self, name: &str) -> Option<&LinkedService> {
        self.services.iter().find(|s| s.config.name == name)
    }

    /// True when `service` holds the user and sees it active (login readiness).
    pub fn linked_sees_active(&self, service: &str, id: &str) -> bool {
        self.service(service)
            .and_then(|s| s.get(id))
            .and_then(|u| u.user)
            .is_some_and(|u| u.active())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A worker that polls its queue picks a job up only at its next look, not when it arrives.
    #[tokio::test(start_paused = true)]
    async fn an_idle_polling_worker_delays_the_first_job() {
        let mut config = ReferenceConfig::profile("fast").unwrap();
        config.services.clear();
        config.idle_poll = Some("fixed:800ms".parse().unwrap());
        let pipeline = Pipeline::start(Arc::new(config), CancellationToken::new());
        // The worker has looked once and found nothing: the job waits for its next look.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let slot = pipeline.reserve().unwrap_or_else(|_| panic!("queue has room"));
        let id = pipeline.submit(slot, "create_user", "admin", "u1", Vec::new());
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let job = pipeline.jobs.get(&id).unwrap().clone();
        let started = *job.started_at.get().expect("started by its next look");
        assert_eq!(started - job.accepted_at, Duration::from_millis(700));
    }
}
