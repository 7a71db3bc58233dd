//! A service observed by push: its read is a wait for the webhook event of the write's job at
//! that service (see the receiver, `probes::push`). The event's arrival is the change's time;
//! an event that came before the write registered was kept for it.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::probes::condition::Reading;
use crate::probes::push::PushHub;
use crate::probes::source::{Fetch, Memo, Pending, Source, Subject, Timing};

pub struct Pushed {
    /// The receiver; `None` when nothing listens (then no write can be observed here).
    receiver: Option<Arc<PushHub>>,
    service: String,
}

impl Pushed {
    pub fn new(receiver: Option<Arc<PushHub>>, service: &str) -> Pushed {
        Pushed {
            receiver,
            service: service.to_string(),
        }
    }

    /// Waits for the event (until `stop`, or until the caller gives up and drops the wait).
    async fn event(&self, job: Option<&str>, stop: &CancellationToken) -> Fetch {
        let (Some(receiver), Some(job)) = (&self.receiver, job) else {
            return Fetch::NoJob;
        };
        // The job id is the last segment of a job URL, or the value itself.
        let id = job.rsplit('/').next().unwrap_or(job);
        let rx = match receiver.register(id, &self.service) {
            Ok(at) => return arrived(at),
            Err(rx) => rx,
        };
        // Whatever ends the wait short of the event (the bound, the stop), the pending
        // registration goes with it.
        let registered = Registration {
            receiver,
            id,
            service: &self.service,
        };
        let got = tokio::select! {
            r = rx => r.ok(),
            _ = stop.cancelled() => None,
        };
        match got {
            Some(at) => {
                // The receiver already took the registration when the event came.
                std::mem::forget(registered);
                arrived(at)
            }
            None => Fetch::Stopped,
        }
    }
}

/// The event, as an answer that arrived (and was sent) when the event did.
fn arrived(at: Instant) -> Fetch {
    Fetch::Answer {
        reading: Arc::new(Reading::new(200, bytes::Bytes::new())),
        sent: at,
        arrived: at,
    }
}

/// A pending registration at the receiver, forgotten when the wait for it ends without the event.
struct Registration<'a> {
    receiver: &'a PushHub,
    id: &'a str,
    service: &'a str,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.receiver.forget(self.id, self.service);
    }
}

impl Source for Pushed {
    fn read<'a>(&'a self, subject: Subject<'a>, _: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch> {
        Box::pin(self.event(subject.job, stop))
    }

    /// Nothing is read from a service observed by push.
    fn requests(&self) -> u64 {
        0
    }

    fn timing(&self) -> Timing {
        Timing::Pushed
    }
}
