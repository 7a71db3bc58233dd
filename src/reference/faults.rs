//! Fault injection on the API: periodic stalls, base latency, rate limiting (429 with
//! `Retry-After`) and injected 5xx errors, applied in that order before a request is handled.
//! The rate limiter is a lock-free GCRA on one atomic, so it adds no contention of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::AppState;
use super::config::{FaultConfig, RateLimit};
use super::error::ScimError;

pub struct Faults {
    config: FaultConfig,
    start: Instant,
    /// GCRA "theoretical arrival time", in nanoseconds since `start`.
    tat: AtomicU64,
}

pub enum Admission {
    Allowed,
    Limited { retry_after: Duration },
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        Self {
            config,
            start: Instant::now(),
            tat: AtomicU64::new(0),
        }
    }

    /// How long a request arriving now waits for the current stall window to end.
    pub fn stall_wait(&self, now: Instant) -> Option<Duration> {
        let stall = self.config.stall?;
        let every = stall.every.as_nanos() as u64;
        let phase = (now - self.start).as_nanos() as u64 % every;
        let healthy = every - stall.duration.as_nanos() as u64;
        (phase >= healthy).then(|| Duration::from_nanos(every - phase))
    }

    pub fn admit(&self, limit: RateLimit, now: Instant) -> Admission {
        let interval = (1e9 / limit.per_second) as u64;
        let tolerance = interval * limit.burst as u64;
        let now_ns = (now - self.start).as_nanos() as u64;
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let next = current.max(now_ns) + interval;
            if next - now_ns > tolerance {
                return Admission::Limited {
                    retry_after: Duration::from_nanos(next - now_ns - tolerance),
                };
            }
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Admission::Allowed,
                Err(seen) => current = seen,
            }
        }
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(state, inject)`.
pub async fn inject(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let faults = &state.faults;
    let stats = &state.pipeline.stats;
    if let Some(wait) = faults.stall_wait(Instant::now()) {
        stats.stalled_requests.inc();
        tokio::time::sleep(wait).await;
    }
    if !faults.config.latency.is_zero() {
        tokio::time::sleep(state.rng.sample(&faults.config.latency)).await;
    }
    if let Some(limit) = faults.config.rate_limit
        && let Admission::Limited { retry_after } = faults.admit(limit, Instant::now())
    {
        stats.rate_limited.inc();
        return ScimError::new(StatusCode::TOO_MANY_REQUESTS, None, "rate limit exceeded")
            .with_retry_after(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            .into_response();
    }
    if state.rng.chance(faults.config.error_rate) {
        stats.injected_errors.inc();
        return ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "injected fault").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::config::Stall;
    use crate::reference::distribution::Distribution;

    fn faults(rate_limit: Option<RateLimit>, stall: Option<Stall>) -> Faults {
        Faults::new(FaultConfig {
            latency: Distribution::ZERO,
            error_rate: 0.0,
            rate_limit,
            stall,
            patch_errors: Vec::new(),
        })
    }

    #[test]
    fn rate_limit_allows_the_burst_then_the_rate() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 5,
        };
        let f = faults(Some(limit), None);
        let t0 = f.start;
        let allowed = (0..20)
            .filter(|_| matches!(f.admit(limit, t0), Admission::Allowed))
            .count();
        assert_eq!(allowed, 5);
        // 100 ms later exactly one more token has accrued.
        let t1 = t0 + Duration::from_millis(100);
        let allowed = (0..20)
            .filter(|_| matches!(f.admit(limit, t1), Admission::Allowed))
            .count();
        assert_eq!(allowed, 1);
        match f.admit(limit, t1) {
            Admission::Limited { retry_after } => assert!(retry_after <= Duration::from_millis(100)),
            Admission::Allowed => panic!("should be limited"),
        }
    }

    #[test]
    fn stall_window_sits_at_the_end_of_each_period() {
        let stall = Stall {
            every: Duration::from_secs(5),
            duration: Duration::from_secs(1),
        };
        let f = faults(None, Some(stall));
        let at = |ms| f.start + Duration::from_millis(ms);
        assert_eq!(f.stall_wait(at(1000)), None);
        assert_eq!(f.stall_wait(at(4000)), Some(Duration::from_secs(1)));
        assert_eq!(f.stall_wait(at(4750)), Some(Duration::from_millis(250)));
        assert_eq!(f.stall_wait(at(5000)), None);
        assert_eq!(f.stall_wait(at(9500)), Some(Duration::from_millis(500)));
    }
}
