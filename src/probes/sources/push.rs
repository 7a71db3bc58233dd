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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probes::condition::Who;
    use crate::workload::probes::PushReceiver;

    async fn receiver(stop: &CancellationToken) -> Arc<PushHub> {
        let config = PushReceiver {
            listen: "127.0.0.1:0".into(),
            job_pointer: "/job_id".into(),
            service_pointer: "/service".into(),
        };
        PushHub::start(&config, 16, stop.clone()).await.unwrap()
    }

    async fn event(hub: &PushHub, job: &str, service: &str) {
        let body = serde_json::json!({ "job_id": job, "service": service }).to_string();
        let sent = reqwest::Client::new().post(hub.url()).body(body).send().await.unwrap();
        assert!(sent.status().is_success());
    }

    fn subject(job: Option<&str>) -> Subject<'_> {
        Subject {
            who: Who {
                id: "1",
                user_name: "u",
            },
            job,
        }
    }

    /// A wait given up (at the bound) leaves nothing registered: the event that comes later is
    /// kept for the next wait instead of going to the one that left.
    #[tokio::test]
    async fn a_wait_given_up_is_forgotten() {
        let stop = CancellationToken::new();
        let hub = receiver(&stop).await;
        let source = Pushed::new(Some(hub.clone()), "mail");
        let job = Some("/jobs/7");
        let mut memo = Memo::default();
        let wait = source.read(subject(job), &mut memo, &stop);
        assert!(tokio::time::timeout(Duration::from_millis(50), wait).await.is_err());
        event(&hub, "7", "mail").await;
        let again = source.read(subject(job), &mut memo, &stop);
        let got = tokio::time::timeout(Duration::from_secs(5), again).await.unwrap();
        assert!(matches!(got, Fetch::Answer { .. }), "the kept event answers at once");
        stop.cancel();
    }

    #[tokio::test]
    async fn without_a_job_or_a_receiver_nothing_can_be_observed() {
        let stop = CancellationToken::new();
        let hub = receiver(&stop).await;
        let with_receiver = Pushed::new(Some(hub), "mail");
        let got = with_receiver.read(subject(None), &mut Memo::default(), &stop).await;
        assert!(matches!(got, Fetch::NoJob));
        let without = Pushed::new(None, "mail");
        let got = without.read(subject(Some("7")), &mut Memo::default(), &stop).await;
        assert!(matches!(got, Fetch::NoJob));
        stop.cancel();
    }
}
