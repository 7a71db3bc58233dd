//! The hub: what the engine talks to. It opens a source for each thing the probes watch (the
//! job-status endpoint, each linked service), registers their series, samples and admits
//! writes (shedding beyond `max_pending`), runs each admitted write's observations in a task of
//! its own, and derives end_to_end from the services' results.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::bracket::WallClock;
use super::condition;
use super::look::Grid;
use super::observe;
use super::push::PushHub;
use super::report::{self, Ended};
use super::sources;
use super::watch::{Seen, Watch, Watched, Write};
use crate::http::HttpClient;
use crate::metrics::{MetricKey, Registry, SeriesId};
use crate::results::ProbeReport;
use crate::vocab::{Op, metric, tag};
use crate::workload::probes::{JobSource, Probes, QueueProbe, SyncProbe};

pub struct ProbeHub {
    sample: f64,
    /// The probes' largest share of all requests (`probes.max_share`).
    max_share: f64,
    /// The load's own operations so far, against which the probes' share is judged.
    operations: AtomicU64,
    min_evidence: u32,
    /// `[probes]` written in the workload (not an embedded target's defaults).
    declared: bool,
    max_pending: usize,
    /// The job-status endpoint, when a queue probe is set.
    queue: Option<Watched<QueueProbe>>,
    /// The linked services, in the order of `probes.sync` (a user's trace has a slot for each).
    services: Vec<Watched<SyncProbe>>,
    end_to_end: HashMap<Op, SeriesId>,
    watch: Watch,
    permits: Arc<Semaphore>,
    push: Option<Arc<PushHub>>,
    /// The users the run created that the probes followed (id, userName): at the end, each
    /// polled service is asked whether they are gone.
    followed: parking_lot::Mutex<Vec<(String, String)>>,
    /// Ends the sources' own tasks (batching, token refresh).
    sources_stop: CancellationToken,
}

impl Drop for ProbeHub {
    fn drop(&mut self) {
        self.sources_stop.cancel();
    }
}

impl ProbeHub {
    /// Registers a series for every (probe, op) the workload's `ops` can produce, and opens each
    /// service's source (an OAuth2 service's token is fetched now and refreshed until `stop`).
    pub async fn new(
        probes: Probes,
        client: Option<Arc<HttpClient>>,
        registry: Arc<Registry>,
        ops: &[Op],
        push: Option<Arc<PushHub>>,
        stop: CancellationToken,
    ) -> anyhow::Result<ProbeHub> {
        // The sources' tasks end with the hub (see `Drop`) or the run's stop.
        let sources_stop = stop.child_token();
        // One whole-origin client for every source reading the target as the target.
        let target = sources::Target::new(client);
        let mut services = Vec::with_capacity(probes.sync.len());
        for p in probes.sync {
            let source = sources::service(&p, &target, push.as_ref(), &sources_stop).await?;
            services.push(Watched {
                source,
                series: HashMap::new(),
                counters: Default::default(),
                probe: p,
            });
        }
        let mut queue = match probes.queue {
            Some(q) => Some(Watched {
                source: sources::job(&q, &target, observe::start_members(&q.start))?,
                series: HashMap::new(),
                counters: Default::default(),
                probe: q,
            }),
            None => None,
        };
        // Op by op, queue before services before end_to_end: the order series are numbered in.
        let mut end_to_end = HashMap::new();
        for &op in ops.iter().filter(|o| o.is_observable_write()) {
            let key = |m: &str| MetricKey::new(m).tag(tag::OP, op.as_str());
            if let Some(q) = &mut queue {
                q.series.insert(op, registry.series(key(metric::QUEUE_DELAY)));
            }
            for s in services.iter_mut().filter(|s| s.probe.ops.contains(&op)) {
                let series = registry.series(key(metric::SYNC_LAG).tag(tag::SERVICE, &s.probe.service));
                s.series.insert(op, series);
            }
            if !services.is_empty() {
                end_to_end.insert(op, registry.series(key(metric::END_TO_END)));
            }
        }
        Ok(ProbeHub {
            sample: probes.sample,
            max_share: probes.max_share,
            operations: AtomicU64::new(0),
            min_evidence: probes.min_evidence,
            declared: probes.declared,
            max_pending: probes.max_pending,
            queue,
            services,
            end_to_end,
            watch: Watch {
                timeout: probes.timeout,
                poll: probes.poll,
                stop,
                counters: Default::default(),
                registry,
                clock: WallClock::now(),
                grid: Grid::new(tokio::time::Instant::now()),
            },
            permits: Arc::new(Semaphore::new(probes.max_pending)),
            push,
            followed: Default::default(),
            sources_stop,
        })
    }

    /// Before the load: each service read once (a user no run makes, or its base DN), so that a
    /// service that refuses the probe's credentials or cannot be read stops the run before it
    /// writes anything, naming the service, where it was read and what it answered.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        for s in &self.services {
            if let Err(why) = s.source.preflight().await {
                anyhow::bail!(
                    "probes.sync `{}` cannot be read: {why}; nothing was written to the target",
                    s.probe.service
                );
            }
        }
        Ok(())
    }

    /// True when writes of `op` are observed at all.
    pub fn wants(&self, op: Op) -> bool {
        self.queue.as_ref().is_some_and(|q| q.series.contains_key(&op)) || self.end_to_end.contains_key(&op)
    }

    /// True for a uniform `draw` in [0, 1) that falls in the sample.
    pub fn sampled(&self, draw: f64) -> bool {
        draw < self.sample
    }

    /// Whether the probes' reads so far are within their share of all requests: the one place
    /// the probes' cost is bounded, for every source alike (a write beyond it is counted, not
    /// observed, as one beyond `max_pending` is shed). Asked once a write, when it is
    /// acknowledged and before its answer is read for the probes: a write beyond the share
    /// costs them no parse ([`ProbeHub::pass_over`]).
    pub fn has_room(&self) -> bool {
        if self.max_share >= 1.0 {
            return true;
        }
        let probes = self.requests() as f64;
        probes <= self.max_share * (probes + self.operations.load(Ordering::Relaxed) as f64)
    }

    /// One operation of the load ended (the measure of the probes' share).
    pub fn count_operation(&self) {
        self.operations.fetch_add(1, Ordering::Relaxed);
    }

    /// The probes' requests so far, every source's.
    fn requests(&self) -> u64 {
        let services = self.services.iter().map(|s| s.source.requests());
        services.chain(self.queue.iter().map(|q| q.source.requests())).sum()
    }

    /// A fresh trace for a user, one slot per sync probe.
    pub fn new_trace(&self) -> condition::UserTrace {
        condition::Trace::new(self.services.len())
    }

    pub fn job_source(&self) -> Option<&JobSource> {
        self.queue.as_ref().map(|q| &q.probe.source)
    }

    /// Starts observing `write` (admitted by [`ProbeHub::has_room`]), or sheds it when
    /// `max_pending` observations are under way.
    pub fn observe(self: &Arc<Self>, write: Write) {
        self.note(write.op, Some(&write.trace), write.acked, write.who());
        let counters = &self.watch.counters;
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            counters.shed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        counters.sampled.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.clone().run(write, permit));
    }

    /// A sampled user's write past the probes' share ([`ProbeHub::has_room`]): counted, not
    /// observed; what it tells of its user (created, deleted) is noted as for every write.
    pub fn pass_over(
        &self,
        op: Op,
        trace: Option<&condition::UserTrace>,
        acked: tokio::time::Instant,
        who: condition::Who<'_>,
    ) {
        self.note(op, trace, acked, who);
        self.watch.counters.over_share.fetch_add(1, Ordering::Relaxed);
    }

    /// What every handed write tells of its user: a created user is followed to the end (its
    /// leftovers are read after cleanup), a deleted one is known deleted to its observations.
    fn note(&self, op: Op, trace: Option<&condition::UserTrace>, acked: tokio::time::Instant, who: condition::Who<'_>) {
        if op == Op::DeleteUser
            && let Some(trace) = trace
        {
            trace.deleted(acked);
        }
        if op == Op::CreateUser {
            self.followed
                .lock()
                .push((who.id.to_string(), who.user_name.to_string()));
        }
    }

    /// Waits (up to `limit`) for the observations under way to finish.
    pub async fn drain(&self, limit: Duration) {
        let all = self.max_pending as u32;
        if tokio::time::timeout(limit, self.permits.acquire_many(all))
            .await
            .is_err()
        {
            self.abort();
        }
    }

    /// Stops every observation now; those under way are counted as abandoned.
    pub fn abort(&self) {
        self.watch.stop.cancel();
    }

    /// Observes one write everywhere it is watched, holding its permit until all are done.
    async fn run(self: Arc<Self>, write: Write, _permit: OwnedSemaphorePermit) {
        let write = Arc::new(write);
        let mut queue = JoinSet::new();
        if let Some(series) = self.queue.as_ref().and_then(|q| q.series.get(&write.op)).copied() {
            let (me, w) = (self.clone(), write.clone());
            queue.spawn(async move {
                if let Some(q) = &me.queue {
                    observe::queue(&me.watch, q, series, &w).await;
                }
            });
        }
        let mut syncs = JoinSet::new();
        for (i, service) in self.services.iter().enumerate() {
            if let Some(series) = service.series.get(&write.op).copied() {
                let (me, w) = (self.clone(), write.clone());
                syncs.spawn(async move { observe::sync(&me.watch, i, &me.services[i], series, &w).await });
            }
        }
        // end_to_end: the last service to show the change; a timeout anywhere is a timeout, and
        // a change overtaken anywhere has no end-to-end time.
        let mut latest = Duration::ZERO;
        let (mut resolution, mut any, mut timed_out, mut overtaken) = (0, false, false, false);
        while let Some(r) = syncs.join_next().await {
            any = true;
            match r {
                Ok(Seen::At(lag, res)) => {
                    latest = latest.max(lag);
                    resolution = resolution.max(res);
                }
                Ok(Seen::TimedOut) => timed_out = true,
                Ok(Seen::Overtaken | Seen::Unconfirmed) => overtaken = true,
                Err(_) => return,
            }
        }
        while queue.join_next().await.is_some() {}
        if self.watch.stop.is_cancelled() || overtaken {
            return;
        }
        if let (true, Some(series)) = (any, self.end_to_end.get(&write.op)) {
            let (micros, resolution) = match timed_out {
                false => (latest.as_micros() as u64, resolution),
                true => self.watch.at_bound(),
            };
            self.watch
                .registry
                .record_observation(*series, micros, resolution, timed_out);
            self.watch
                .registry
                .record_written(*series, write.began.into_std(), micros, timed_out);
        }
    }

    /// After cleanup: every followed user should be gone from every polled service once
    /// deprovisioning has run. Asks until `bound` (or an interrupt); returns, per service, how
    /// many are still there, how many could not be read, and how many reads that took (the
    /// probes' requests after the run's, which its report counts apart). provbench never
    /// deletes from a downstream itself.
    pub async fn leftovers(&self, bound: Duration, interrupt: &CancellationToken) -> report::Leftovers {
        let users = self.followed.lock().clone();
        let before = self.requests();
        let (still, unread) = report::leftovers(&self.services, &users, bound, interrupt).await;
        report::Leftovers {
            still,
            unread,
            reads: self.requests().saturating_sub(before),
        }
    }

    pub fn report(&self, operations: u64) -> ProbeReport {
        let end = Ended {
            queue: self.queue.as_ref(),
            services: &self.services,
            counters: &self.watch.counters,
            sample: self.sample,
            max_share: self.max_share,
            min_evidence: self.min_evidence,
            declared: self.declared,
            push_events: self.push.as_ref().map(|p| p.events.load(Ordering::Relaxed)),
        };
        report::report(end, operations)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::SocketAddr;
    use std::path::Path;

    use super::*;
    use crate::workload::{Overrides, Workload};

    /// A server on `127.0.0.1:0` answering 404 to everything, and the peers it accepted.
    async fn counting_server() -> (String, Arc<parking_lot::Mutex<HashSet<SocketAddr>>>) {
        let peers = Arc::new(parking_lot::Mutex::new(HashSet::new()));
        let seen = peers.clone();
        let app = axum::Router::new().fallback(
            move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| {
                seen.lock().insert(peer);
                async { axum::http::StatusCode::NOT_FOUND }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await },
        );
        (origin, peers)
    }

    /// A hub for a job-status probe and three services on `origin` (one written absolute),
    /// reading through `client`.
    async fn hub_on(origin: &str, client: Arc<HttpClient>, stop: &CancellationToken) -> ProbeHub {
        let text = format!(
            r#"name = "shared"
[target]
kind = "scim"
base_url = "{origin}/scim/v2"
auth = {{ kind = "none" }}
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "j"
steps = ["create_user"]
[probes]
queue = {{ job_header = "x-job-location", accepted_at = "/accepted_at", started_at = "/started_at" }}
sync = [{{ service = "a", url = "/linked/a/Users/{{id}}" }},
        {{ service = "b", url = "{origin}/linked/b/Users/{{id}}" }},
        {{ service = "c", url = "/linked/c/Users/{{id}}" }}]
"#
        );
        let workload = Workload::parse(Path::new("shared.toml"), &text, &Overrides::default()).unwrap();
        let probes = workload.probes.clone().unwrap();
        let registry = Arc::new(Registry::new());
        ProbeHub::new(probes, Some(client), registry, &[Op::CreateUser], None, stop.clone())
            .await
            .unwrap()
    }

    /// On a plain-HTTP target the probes' reads go over the load's own connections (one pool,
    /// the plain-HTTP path), and no reqwest client is built, so no certificate is loaded: the
    /// load's request and every source's read come over the one connection. (Before, the
    /// whole-origin client had a pool and a reqwest client of its own: two connections, and the
    /// certificates loaded twice.)
    #[tokio::test]
    async fn probe_reads_of_a_plain_http_target_go_over_the_loads_connections() {
        let (origin, peers) = counting_server().await;
        let client =
            Arc::new(HttpClient::new(&format!("{origin}/scim/v2"), crate::http::HttpSettings::defaults()).unwrap());
        client.call(reqwest::Method::GET, "/Users/x", None).await.unwrap();
        let stop = CancellationToken::new();
        let hub = hub_on(&origin, client.clone(), &stop).await;
        hub.preflight().await.unwrap();
        assert_eq!(peers.lock().len(), 1, "the load's request and the probes' reads");
        assert!(
            !client.reqwest_built(),
            "no reqwest client, no certificates, for plain HTTP"
        );
        stop.cancel();
    }

    /// The job-status source and the services read on the target's origin as the target share
    /// one client (one TLS set-up, one pool), not one each: three services read one after the
    /// other come over one connection.
    #[tokio::test]
    async fn sources_reading_the_target_share_one_client() {
        let (origin, peers) = counting_server().await;
        let client =
            Arc::new(HttpClient::new(&format!("{origin}/scim/v2"), crate::http::HttpSettings::defaults()).unwrap());
        let stop = CancellationToken::new();
        let hub = hub_on(&origin, client, &stop).await;
        hub.preflight().await.unwrap();
        assert_eq!(peers.lock().len(), 1, "one pool for every source reading the target");
        stop.cancel();
    }
}
