//! Ground truth: the service's own measurements of its asynchronous half (queue delay, service
//! time, sync and revocation lag per linked service, end to end) and its fault counters, served at
//! `GET /stats` so that a client's measurements can be checked against them.
//!
//! Histograms are recorded by pipeline workers, never on the request path, so a mutex per metric
//! is uncontended in practice. Counters are atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{Value, json};

fn histogram() -> Histogram<u64> {
    // 1 µs to 24 h: anything longer is recorded at the bound (saturating_record).
    Histogram::new_with_bounds(1, 86_400_000_000, 3).expect("valid bounds")
}

/// One percentile summary, in the same shape as provbench's `summary.json` metric entries.
pub fn summarize(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "min_us": h.min(),
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p95_us": h.value_at_quantile(0.95),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
        "mean_us": (h.mean() * 10.0).round() / 10.0,
    })
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

pub struct ServiceStats {
    pub name: String,
    sync_lag: Mutex<Histogram<u64>>,
    revocation_lag: Mutex<Histogram<u64>>,
    pub applied: Counter,
    pub failed: Counter,
    pub lost: Counter,
}

pub struct Stats {
    queue_delay: Mutex<Histogram<u64>>,
    service_time: Mutex<Histogram<u64>>,
    end_to_end: Mutex<Histogram<u64>>,
    pub services: Vec<ServiceStats>,
    pub jobs_accepted: Counter,
    pub jobs_started: Counter,
    pub jobs_finished: Counter,
    pub queue_full: Counter,
    pub injected_errors: Counter,
    pub rate_limited: Counter,
    pub stalled_requests: Counter,
    pub webhooks_sent: Counter,
    pub webhooks_failed: Counter,
    pub audit_entries: Counter,
    pub audit_dropped: Counter,
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    h.lock().saturating_record(d.as_micros().min(u64::MAX as u128) as u64);
}

impl Stats {
    pub fn new(services: impl IntoIterator<Item = String>) -> Self {
        Self {
            queue_delay: Mutex::new(histogram()),
            service_time: Mutex::new(histogram()),
            end_to_end: Mutex::new(histogram()),
            services: services
                .into_iter()
                .map(|name| ServiceStats {
                    name,
                    sync_lag: Mutex::new(histogram()),
                    revocation_lag: Mutex::new(histogram()),
                    applied: Counter::default(),
                    failed: Counter::default(),
                    lost: Counter::default(),
                })
                .collect(),
            jobs_accepted: Counter::default(),
            jobs_started: Counter::default(),
            jobs_finished: Counter::default(),
            queue_full: Counter::default(),
            injected_errors: Counter::default(),
            rate_limited: Counter::default(),
            stalled_requests: Counter::default(),
            webhooks_sent: Counter::default(),
            webhooks_failed: Counter::default(),
            audit_entries: Counter::default(),
            audit_dropped: Counter::default(),
        }
    }

    pub fn record_queue_delay(&self, d: Duration) {
        record(&self.queue_delay, d);
    }
    pub fn record_service_time(&self, d: Duration) {
        record(&self.service_time, d);
    }
    pub fn record_end_to_end(&self, d: Duration) {
        record(&self.end_to_end, d);
    }
    pub fn record_sync_lag(&self, service: usize, d: Duration, revocation: bool) {
        let s = &self.services[service];
        record(&s.sync_lag, d);
        if revocation {
            record(&s.revocation_lag, d);
        }
    }

    pub fn reset(&self) {
        for h in [&self.queue_delay, &self.service_time, &self.end_to_end] {
            h.lock().reset();
        }
        for s in &self.services {
            s.sync_lag.lock().reset();
            s.revocation_lag.lock().reset();
            for c in [&s.applied, &s.failed, &s.lost] {
                c.reset();
            }
        }
        for c in [
            &self.jobs_accepted,
            &self.jobs_started,
            &self.jobs_finished,
            &self.queue_full,
            &self.injected_errors,
            &self.rate_limited,
            &self.stalled_requests,
            &self.webhooks_sent,
            &self.webhooks_failed,
            &self.audit_entries,
            &self.audit_dropped,
        ] {
            c.reset();
        }
    }

    pub fn to_json(&self, queue_depth: usize, users: usize) -> Value {
        let entry = |metric: &str, tags: Value, h: &Mutex<Histogram<u64>>| {
            let mut v = summarize(&h.lock());
            v["metric"] = metric.into();
            v["tags"] = tags;
            v
        };
        let mut metrics = vec![
            entry("queue_delay", json!({}), &self.queue_delay),
            entry("service_time", json!({}), &self.service_time),
            entry("end_to_end", json!({}), &self.end_to_end),
        ];
        let mut services = serde_json::Map::new();
        for s in &self.services {
            metrics.push(entry("sync_lag", json!({"service": s.name}), &s.sync_lag));
            metrics.push(entry("revocation_lag", json!({"service": s.name}), &s.revocation_lag));
            services.insert(
                s.name.clone(),
                json!({"applied": s.applied.get(), "failed": s.failed.get(), "lost": s.lost.get()}),
            );
        }
        json!({
            "metrics": metrics,
            "services": services,
            "jobs": {
                "accepted": self.jobs_accepted.get(),
                "started": self.jobs_started.get(),
                "finished": self.jobs_finished.get(),
                "rejected_queue_full": self.queue_full.get(),
                "queue_depth": queue_depth,
            },
            "faults": {
                "injected_errors": self.injected_errors.get(),
                "rate_limited": self.rate_limited.get(),
                "stalled_requests": self.stalled_requests.get(),
            },
            "webhooks": {"sent": self.webhooks_sent.get(), "failed": self.webhooks_failed.get()},
            "audit": {"written": self.audit_entries.get(), "dropped": self.audit_dropped.get()},
            "users": users,
        })
    }

    /// The summary of one metric, for tests and the console.
    pub fn metric(&self, metric: &str, service: Option<&str>) -> Value {
        let h = match (metric, service) {
            ("queue_delay", _) => &self.queue_delay,
            ("service_time", _) => &self.service_time,
            ("end_to_end", _) => &self.end_to_end,
            ("sync_lag", Some(s)) => match self.services.iter().find(|x| x.name == s) {
                Some(x) => &x.sync_lag,
                None => return Value::Null,
            },
            ("revocation_lag", Some(s)) => match self.services.iter().find(|x| x.name == s) {
                Some(x) => &x.revocation_lag,
                None => return Value::Null,
            },
            _ => return Value::Null,
        };
        summarize(&h.lock())
    }
}
