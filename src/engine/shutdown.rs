//! One shutdown tree per run, and the one place where process signals and goose's process-wide
//! killswitch meet it.
//!
//! ```text
//! run            the run's lifetime: cancelled by `finish`, after cleanup and the result files
//! ├─ services    the embedded reference service, push receiver, token refresh, /metrics
//! └─ work        cancelled by Ctrl-C / SIGTERM (the caller's `interrupt` token)
//!    ├─ load     the virtual admins: also the deadline, the schedule's end, a lost threshold
//!    ├─ probes   observations of the asynchronous half (drained up to their bound, or abandoned)
//!    └─ checks   proofs of the chain (likewise)
//! ```
//!
//! Services hang off `run`, not `work`, because cleanup still needs the target (and its token)
//! after an interrupt. The first reason recorded is why the load stopped; an interrupt overrides
//! a deadline or the schedule's end (the drain it cuts short makes the data partial).

use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::results::StopReason;

pub struct Shutdown {
    run: CancellationToken,
    pub services: CancellationToken,
    work: CancellationToken,
    pub load: CancellationToken,
    pub probes: CancellationToken,
    pub checks: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl Shutdown {
    /// A tree whose work stops when `interrupt` fires.
    pub fn new(interrupt: &CancellationToken) -> Shutdown {
        let run = CancellationToken::new();
        let work = run.child_token();
        let tree = Shutdown {
            services: run.child_token(),
            load: work.child_token(),
            probes: work.child_token(),
            checks: work.child_token(),
            work,
            run,
            reason: Mutex::new(None),
        };
        let (interrupt, work) = (interrupt.clone(), tree.work.clone());
        // Tied to the run: the bridge ends with it.
        let run = tree.run.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.cancelled() => work.cancel(),
                _ = run.cancelled() => {}
            }
        });
        tree
    }

    /// Stops the load for `reason` (the first reason stays, but an interrupt overrides the
    /// schedule's own end).
    pub fn stop_load(&self, reason: StopReason) {
        let mut r = self.reason.lock();
        let replace = matches!(
            (&*r, &reason),
            (None, _) | (Some(StopReason::Deadline | StopReason::ScheduleEnd), StopReason::Signal)
        );
        if replace {
            *r = Some(reason);
        }
        drop(r);
        self.load.cancel();
    }

    /// Ctrl-C or SIGTERM reached this run.
    pub fn interrupted(&self) -> bool {
        self.work.is_cancelled()
    }

    /// Why the load stopped. An interrupt seen at any point wins over the schedule's end.
    pub fn reason(&self) -> StopReason {
        if self.interrupted() {
            self.stop_load(StopReason::Signal);
        }
        self.reason.lock().clone().unwrap_or(StopReason::ScheduleEnd)
    }

    /// Watches the load's end conditions until it stops: an interrupt, the `deadline`, and
    /// goose's killswitch (see [`install_signal_handlers`]: with ours installed goose never sets
    /// it, but a library caller may not have installed them).
    pub async fn watch(&self, deadline: Option<tokio::time::Instant>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = self.work.cancelled() => return self.stop_load(StopReason::Signal),
                _ = self.load.cancelled() => return,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    return self.stop_load(StopReason::Deadline);
                }
                _ = tick.tick() => if goose::is_killswitch_triggered() {
                    return self.stop_load(StopReason::Signal);
                },
            }
        }
    }

    /// The run is over: stop the services.
    pub fn end(&self) {
        self.run.cancel();
    }
}

/// Cancels `token` on Ctrl-C and SIGTERM, for the life of the process.
///
/// goose installs a Ctrl-C handler of its own (through the `ctrlc` crate) that sets its
/// process-wide killswitch and, on a second Ctrl-C, exits the process on the spot: no cleanup,
/// no summary. `ctrlc` takes one handler per process, so installing ours first keeps goose's out;
/// a second Ctrl-C (e.g. `timeout -s INT` signals the whole process group) is then only a
/// warning, and the cleanup under way finishes.
pub fn install_signal_handlers(token: CancellationToken) -> anyhow::Result<()> {
    let seen = std::sync::atomic::AtomicU32::new(0);
    let interrupt = token.clone();
    ctrlc::set_handler(move || {
        if seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
            interrupt.cancel();
        } else {
            eprintln!("provbench: already stopping; cleanup continues (bounded by --cleanup-timeout)");
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            token.cancel();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reasons_and_the_tree() {
        let interrupt = CancellationToken::new();
        let s = Shutdown::new(&interrupt);
        s.stop_load(StopReason::Deadline);
        assert!(s.load.is_cancelled() && !s.probes.is_cancelled() && !s.services.is_cancelled());
        s.stop_load(StopReason::ScheduleEnd);
        assert_eq!(s.reason(), StopReason::Deadline, "the first reason stays");
        interrupt.cancel();
        tokio::task::yield_now().await;
        assert!(s.probes.is_cancelled() && s.checks.is_cancelled());
        assert!(!s.services.is_cancelled(), "cleanup still needs the services");
        assert_eq!(s.reason(), StopReason::Signal, "an interrupt overrides the schedule");
        s.end();
        assert!(s.services.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_threshold_is_not_overridden_and_the_deadline_is_watched() {
        let s = Shutdown::new(&CancellationToken::new());
        let lost = StopReason::ThresholdLost {
            expression: "x".into(),
            after_s: 1.0,
        };
        s.stop_load(lost.clone());
        s.stop_load(StopReason::Signal);
        assert_eq!(s.reason(), lost);
        let s = Shutdown::new(&CancellationToken::new());
        s.watch(Some(tokio::time::Instant::now() + Duration::from_secs(3)))
            .await;
        assert_eq!(s.reason(), StopReason::Deadline);
    }
}
