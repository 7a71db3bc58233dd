//! Virtual admins on goose: one goose user per admin, launched and ramped by goose, configured
//! programmatically (no argv, no telnet or websocket controller, no goose console tables).
//!
//! Each goose user runs a single iteration: an admin session that loops over weighted journeys
//! until the run's stop signal (closed model) or the end of the arrival schedule (open model).
//! Requests go through the run's resolved target, and we time them ourselves in µs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::goose::{Scenario, Transaction, TransactionFunction};
use goose::prelude::{GooseAttack, GooseUser, TransactionResult};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::time::Instant;

use super::context::Ctx;
use super::journey;
use super::state::AdminState;
use crate::workload::{Load, Stop};

/// The host goose is given: a name that never resolves (RFC 2606 reserves `.invalid`). Goose
/// builds one reqwest client for its users, but no request goes through it: every request goes
/// through the run's resolved target (its URL builder, its credentials, its body limits). So
/// goose's client gets no credentials and a host that leads nowhere, and is built without
/// certificate verification: a verifying client loads the system's root certificates, about 18 M
/// instructions a run (callgrind), and a system without any made the run fail (issue 25).
const GOOSE_HOST: &str = "http://goose.invalid/";

/// Builds the goose attack for `ctx`'s load.
pub fn attack(ctx: Arc<Ctx>) -> anyhow::Result<GooseAttack> {
    let (admins, ramp) = match &ctx.workload.load {
        Load::Closed { admins, ramp, .. } => (*admins, *ramp),
        // Open model: the whole pool starts at once and waits at the gate.
        Load::Open { max_admins, .. } => (*max_admins, Duration::ZERO),
    };
    // Goose takes a start rate in users per second; a zero ramp starts everyone at once.
    let rate = if ramp.is_zero() {
        (admins as f64 * 1000.0).max(1000.0)
    } else {
        (admins as f64 / ramp.as_secs_f64()).max(0.01)
    };
    let mut config = GooseConfiguration::default();
    config.host = Some(GOOSE_HOST.into());
    config.users = Some(admins);
    config.increase_rate = Some(format!("{rate}"));
    config.iterations = Some(1);
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_metrics = true;
    config.no_telnet = true;
    let session: TransactionFunction = {
        let ctx = ctx.clone();
        Arc::new(move |user: &mut GooseUser| {
            let ctx = ctx.clone();
            Box::pin(async move { session(ctx, user).await })
        })
    };
    let attack = GooseAttack::initialize_with_config(config)?
        .set_client_builder_without_cookies(
            // Never used (see `GOOSE_HOST`): without verification it loads no root certificates.
            GooseClientBuilder::new().without_cookies().accept_invalid_certs(true),
        )?
        .register_scenario(Scenario::new("admins").register_transaction(Transaction::new(session).set_name("session")));
    Ok(attack)
}

/// Counts a session as ended when it is dropped, however it ends.
struct SessionEnd<'a>(&'a Ctx);

impl Drop for SessionEnd<'_> {
    fn drop(&mut self) {
        self.0.session_ended();
    }
}

/// One admin's whole session.
async fn session(ctx: Arc<Ctx>, _user: &mut GooseUser) -> TransactionResult {
    let _end = SessionEnd(&ctx);
    let index = ctx.next_admin.fetch_add(1, Ordering::Relaxed);
    let seed = ctx.workload.load.seed() ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut admin = AdminState::new(index, SmallRng::seed_from_u64(seed));
    let total = ctx.total_weight();
    match &ctx.gate {
        None => {
            let limit = match &ctx.workload.load {
                Load::Closed {
                    stop: Stop::Iterations(n),
                    ..
                } => Some(*n),
                _ => None,
            };
            let mut done = 0;
            while !ctx.stop.is_cancelled() && limit.is_none_or(|n| done < n) {
                let (i, j) = ctx.pick_journey(admin.rng.random_range(0..total));
                ctx.in_flight.fetch_add(1, Ordering::Relaxed);
                journey::run(&ctx, &mut admin, i, j, Instant::now()).await;
                ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
                done += 1;
                journey::think(&ctx, &mut admin).await;
            }
        }
        Some(gate) => {
            // The schedule starts once the whole pool is up, so goose's launch does not make the
            // first arrivals late.
            if index + 1 == ctx.workload.load.admins() {
                gate.start_at(Instant::now() + Duration::from_millis(5));
                ctx.all_started.cancel();
            } else {
                tokio::select! {
                    _ = ctx.all_started.cancelled() => {}
                    _ = ctx.stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
            while let Some(arrival) = gate.claim(&ctx.stop).await {
                let now = Instant::now();
                ctx.registry.record(
                    ctx.admin_wait,
                    now.saturating_duration_since(arrival.intended).as_micros() as u64,
                );
                // Late: no admin was free when it was due, so the wait is part of its latency.
                // On time: the admin was waiting for it, and any timer slack is the generator's own.
                let start = if arrival.late { arrival.intended } else { now };
                let (i, j) = ctx.pick_journey(admin.rng.random_range(0..total));
                ctx.in_flight.fetch_add(1, Ordering::Relaxed);
                journey::run(&ctx, &mut admin, i, j, start).await;
                ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}
