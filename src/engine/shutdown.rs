//! One shutdown tree per run, and the one place where process signals and goose's process-wide
//! killswitch meet it.
//!
//! ```text
//! run            the run's lifetime: cancelled by `finish`, after cleanup and the result files
//! ├─ services    the embedded reference service, push receiver, token refresh, /metrics
//! └─ work        cancelled by Ctrl-C / SIGTERM / SIGHUP (the caller's `interrupt` token)
//!    ├─ load     the virtual admins: also the deadline, the schedule's end, a lost threshold
//!    ├─ probes   observations of the asynchronous half (drained up to their bound, or abandoned)
//!    └─ checks   proofs of the chain (likewise)
//! ```
//!
//! Services hang off `run`, not `work`, because cleanup still needs the target (and its token)
//! after an interrupt. The first reason recorded is why the load stopped; an interrupt overrides
//! a deadline or the schedule's end (the drain it cuts short makes the data partial).

use std::sync::Arc;
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

    /// Cancelled by Ctrl-C or SIGTERM: what must stop at once (requests in flight).
    pub fn work(&self) -> CancellationToken {
        self.work.clone()
    }

    /// `step` (a sign-in, a read of the target's schema, the staging before the load), or an
    /// error as soon as the first signal arrives: a request of the start must not wait out its
    /// timeout after Ctrl-C. `what` says what was cut short (`signing in to the target`).
    pub async fn unless_interrupted<T>(
        &self,
        what: &str,
        step: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            biased;
            _ = self.work.cancelled() => anyhow::bail!("interrupted while {what}"),
            done = step => done,
        }
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

/// The `provbench cleanup` command for the run under way, shown if the user exits without cleanup.
static CLEANUP_HINT: Mutex<Option<String>> = Mutex::new(None);

/// Says how to clean up after this run, should the user insist on exiting before it does.
pub fn set_cleanup_hint(command: String) {
    *CLEANUP_HINT.lock() = Some(command);
}

/// One signal protocol for Ctrl-C, SIGTERM and SIGHUP alike (a closed terminal, a dropped SSH
/// session: the run must not die mid-load with its users on the target), counted together:
/// 1. stop the load at once (requests in flight are cancelled), write every file, clean up;
/// 2. a reminder that this is under way (a process group is often signalled twice: `timeout -s
///    INT`, a terminal's Ctrl-C);
/// 3. exit now, without cleanup, printing the `provbench cleanup` command that finishes it.
struct Protocol {
    seen: std::sync::atomic::AtomicU32,
    interrupt: CancellationToken,
}

impl Protocol {
    fn signal(&self) {
        match self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => {
                // Written through `redact::eprint`: after SIGHUP, stderr is often a closed terminal.
                crate::redact::eprint(
                    "provbench: stopping: writing the results and cleaning up (twice more to exit without cleanup)\n",
                );
                self.interrupt.cancel();
            }
            1 => {
                crate::redact::eprint("provbench: already stopping: cleanup continues (once more to exit without it)\n")
            }
            _ => {
                let hint = CLEANUP_HINT.lock().clone();
                match hint {
                    Some(cmd) => crate::redact::eprint(&format!(
                        "provbench: exiting without cleanup; remove what the run created with:\n  {cmd}\n"
                    )),
                    None => crate::redact::eprint("provbench: exiting now\n"),
                }
                std::process::exit(2);
            }
        }
    }
}

/// Cancels `token` on the first Ctrl-C, SIGTERM or SIGHUP, for the life of the process (see
/// `Protocol`).
///
/// goose installs a Ctrl-C handler of its own (through the `ctrlc` crate) that sets its
/// process-wide killswitch and, on a second Ctrl-C, exits the process on the spot: no cleanup,
/// no summary. `ctrlc` takes one handler per process, so installing ours first keeps goose's out.
pub fn install_signal_handlers(token: CancellationToken) -> anyhow::Result<()> {
    let protocol = Arc::new(Protocol {
        seen: Default::default(),
        interrupt: token,
    });
    let on_int = protocol.clone();
    ctrlc::set_handler(move || on_int.signal())
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    #[cfg(unix)]
    for kind in [
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::hangup(),
    ] {
        // Registered before returning: a signal that arrives next is the protocol's, never the
        // default action (SIGHUP's is to exit at once, leaving the run's users behind).
        let mut stream = tokio::signal::unix::signal(kind)
            .map_err(|e| anyhow::anyhow!("cannot install the handler of signal {}: {e}", kind.as_raw_value()))?;
        let protocol = protocol.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                protocol.signal();
            }
        });
    }
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
