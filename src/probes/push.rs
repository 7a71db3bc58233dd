//! The push observer: a webhook receiver on a loopback port. Each event is matched to a pending
//! write by its job id and service (JSON pointers into the event); the first event for a pair is
//! the observation. Events that arrive before the write registered are kept (bounded) for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::workload::probes::PushReceiver;

type Key = (String, String);

pub struct PushHub {
    pending: DashMap<Key, oneshot::Sender<Instant>>,
    early: DashMap<Key, Instant>,
    job_pointer: String,
    service_pointer: String,
    capacity: usize,
    pub events: AtomicU64,
    pub unmatched: AtomicU64,
    pub addr: SocketAddr,
}

/// The text of a JSON scalar (job ids come as numbers or strings).
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl PushHub {
    /// Binds the receiver and serves until `stop` fires.
    pub async fn start(
        config: &PushReceiver,
        capacity: usize,
        stop: CancellationToken,
    ) -> anyhow::Result<Arc<PushHub>> {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("probes.push: cannot listen on {}: {e}", config.listen))?;
        let hub = Arc::new(PushHub {
            pending: DashMap::new(),
            early: DashMap::new(),
            job_pointer: config.job_pointer.clone(),
            service_pointer: config.service_pointer.clone(),
            capacity: capacity.max(1),
            events: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            addr: listener.local_addr()?,
        });
        let app = Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(hub.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(hub)
    }

    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Waits for the event of (`job`, `service`): the instant it arrived.
    pub fn register(&self, job: &str, service: &str) -> Result<Instant, oneshot::Receiver<Instant>> {
        let key = (job.to_string(), service.to_string());
        if let Some((_, at)) = self.early.remove(&key) {
            return Ok(at);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.insert(key, tx);
        Err(rx)
    }

    pub fn forget(&self, job: &str, service: &str) {
        self.pending.remove(&(job.to_string(), service.to_string()));
    }

    fn accept(&self, body: &[u8]) -> bool {
        let now = Instant::now();
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return false;
        };
        let (Some(job), Some(service)) = (
            v.pointer(&self.job_pointer).and_then(scalar),
            v.pointer(&self.service_pointer).and_then(scalar),
        ) else {
            return false;
        };
        self.events.fetch_add(1, Ordering::Relaxed);
        let key = (job, service);
        match self.pending.remove(&key) {
            Some((_, tx)) => {
                let _ = tx.send(now);
            }
            None if self.early.len() < self.capacity => {
                self.early.entry(key).or_insert(now);
            }
            None => {
                self.unmatched.fetch_add(1, Ordering::Relaxed);
            }
        }
        true
    }
}

async fn receive(State(hub): State<Arc<PushHub>>, body: Bytes) -> StatusCode {
    if hub.accept(&body) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::BAD_REQUEST
    }
}
