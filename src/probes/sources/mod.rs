//! The observation sources, one file each, and the one place that picks a source for a probe's
//! configuration. A new kind of source (a message broker, an LDAP persistent search) is a file
//! here implementing [`Source`](super::source::Source), plus its arm in [`service`].
//!
//! - [`http_get`]: one GET per read (by id, or a query for one user), conditional on ETags.
//! - [`http_query`]: one batched query per tick for every user pending at the service.
//! - [`ldap`]: one LDAP search per read, its entry read as a by-id document.
//! - [`push`]: a wait for the service's webhook event.
//! - [`job`]: the job-status endpoint, for the queue probe.
//! - [`http`]: what the HTTP sources share.

mod http;
mod http_get;
mod http_query;
mod job;
mod ldap;
mod push;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use self::http::Target;
use super::push::PushHub;
use super::source::Source;
use crate::workload::probes::{Observe, QueueProbe, SyncProbe};

/// The job-status source of the queue probe, read with the target's credentials anywhere on its
/// origin: enabling the probe names the target's origin for job status, which services keep
/// outside the SCIM base path the target's own client is limited to. `keep`: the members of a
/// job's answer its start is read from (`observe::start_members`).
pub fn job(probe: &QueueProbe, target: &Target, keep: Vec<String>) -> anyhow::Result<Arc<dyn Source>> {
    if target.client().is_none() {
        anyhow::bail!("[probes] queue: job status is read on the target, and this target is not an HTTP service");
    }
    Ok(Arc::new(job::JobStatus::new(
        target.whole_origin()?,
        probe.url_template.clone(),
        keep,
    )))
}

/// The source a linked service is observed through. Its read side opens now, even where the
/// service is observed by push: a wrong password, an unreachable directory or an OAuth2 sign-in
/// that fails stops the run at its start, not in the middle. A batching task ends at `stop`.
pub async fn service(
    probe: &SyncProbe,
    target: &Target,
    push: Option<&Arc<PushHub>>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<dyn Source>> {
    let read: Arc<dyn Source> = match (&probe.ldap, probe.batch) {
        (Some(read), _) => Arc::new(
            ldap::Ldap::connect(read, probe.budget)
                .await
                .map_err(|e| e.context(format!("probes.sync `{}`: the directory", probe.service)))?,
        ),
        (None, Some(max)) => {
            let client = http::service_client(probe, target, stop).await?;
            http_query::HttpQuery::start(client, probe.find.url().clone(), max, probe.budget, stop)
        }
        (None, None) => {
            let client = http::service_client(probe, target, stop).await?;
            Arc::new(http_get::HttpGet::new(
                client,
                probe.find.url().clone(),
                probe.budget,
                crate::probes::condition::read_members(probe),
            ))
        }
    };
    Ok(match probe.observe {
        Observe::Poll => read,
        Observe::Push => Arc::new(push::Pushed::new(push.cloned(), &probe.service)),
    })
}
