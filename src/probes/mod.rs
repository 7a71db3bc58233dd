//! Probes: the asynchronous half, measured. A sampled share of acknowledged writes is observed
//! in tasks of its own (never inside a virtual admin): the job-status URL for `queue_delay{op}`,
//! each linked service's read view (adaptive polling) or webhook events (push) for
//! `sync_lag{service,op}`, and `end_to_end{op}` once every service shows the change.
//! Observations that never arrive are recorded at their bound and counted as timeouts; writes
//! beyond `max_pending` are shed and counted.
//!
//! # Layout
//! Each file uses only files listed below it, never one above (no two import each other):
//! - `hub`: the [`ProbeHub`] the engine talks to; admits writes, runs their observations.
//! - `report`: leftovers after cleanup, and the probes' report.
//! - `observe`: one write at one watched thing: the polling loop, a pushed event's wait,
//!   what counts as the change for the queue and for a service.
//! - `sources`: one file per observation source (HTTP by id or query, batched queries, LDAP,
//!   push, job status), and the one place that picks a source for a probe's configuration.
//! - `watch`: what observations share below the hub ([`Write`], the counters, the bounds).
//! - `source`: the seam every source implements, and the request budget.
//! - [`push`]: the webhook receiver. `bracket`: where a change lies between the reads around
//!   it. [`condition`]: what "visible" means per kind of write.
//! - [`members`]: an answer read for some of its members, judged as the whole answer (below
//!   `condition`, which keeps its readings so).
//! - `look`: when an observation's next look goes (its window, on a grid every observation
//!   shares, so that looks due together wake the process once).

mod bracket;
pub mod condition;
mod hub;
mod look;
pub mod members;
mod observe;
pub mod push;
mod report;
mod source;
mod sources;
mod watch;

pub use hub::ProbeHub;
pub use watch::Write;
