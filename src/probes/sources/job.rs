//! The job-status endpoint the queue probe reads: the URL (or id) the write's answer named,
//! on the target, through the target's own client. Its reads are plain GETs, outside any budget:
//! they are the target's, like the load's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use super::http::{absolute, get};
use crate::http::HttpClient;
use crate::probes::source::{Fetch, Memo, Pending, Source, Subject};

pub struct JobStatus {
    target: Arc<HttpClient>,
    /// `/jobs/{job}` when the write's answer names an id rather than a URL.
    url_template: Option<String>,
    /// The members of an answer the start is read from.
    keep: Arc<[String]>,
    requests: AtomicU64,
}

impl JobStatus {
    pub fn new(target: Arc<HttpClient>, url_template: Option<String>, keep: Vec<String>) -> JobStatus {
        JobStatus {
            target,
            url_template,
            keep: keep.into(),
            requests: AtomicU64::new(0),
        }
    }

    /// The job's status URL, with the job, the user's `{id}` and `{userName}` filled in where
    /// the template names them; `None` when a value the target answered (the job, the id)
    /// cannot be one path segment (threat-model invariant 1): that job cannot be observed.
    fn url(&self, subject: Subject, job: &str) -> Option<String> {
        let template = match &self.url_template {
            Some(t) => t.replace("{job}", crate::http::url::segment(job).ok()?.as_str()),
            None => job.to_string(),
        };
        let filled = template
            .replace("{id}", crate::http::url::segment(subject.who.id).ok()?.as_str())
            .replace("{userName}", &crate::http::client::encode_query(subject.who.user_name));
        Some(absolute(&self.target, filled))
    }

    async fn fetch(&self, subject: Subject<'_>, stop: &CancellationToken) -> Fetch {
        let Some(job) = subject.job else {
            return Fetch::NoJob;
        };
        let Some(url) = self.url(subject, job) else {
            return Fetch::NoJob;
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        get(&self.target, &url, None, Some(&self.keep), stop).await
    }
}

impl Source for JobStatus {
    fn read<'a>(&'a self, subject: Subject<'a>, _: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch> {
        Box::pin(self.fetch(subject, stop))
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::condition::Who;

    fn subject(job: &str) -> (Subject<'_>, &str) {
        let who = Who {
            id: "42",
            user_name: "a b@c",
        };
        (Subject { who, job: Some(job) }, job)
    }

    #[test]
    fn a_job_url_is_filled_in_and_made_absolute_on_the_target() {
        let target = Arc::new(HttpClient::new("http://127.0.0.1:8000", crate::http::HttpSettings::defaults()).unwrap());
        let by_id = JobStatus::new(
            target.clone(),
            Some("/jobs/{job}?user={id}&name={userName}".into()),
            vec![],
        );
        let (s, job) = subject("j1");
        assert_eq!(
            by_id.url(s, job).as_deref(),
            Some("http://127.0.0.1:8000/jobs/j1?user=42&name=a%20b%40c")
        );
        // A job id that would climb out of /jobs/ is not observed, never followed.
        let (s, job) = subject("../../admin/realms/master");
        assert_eq!(by_id.url(s, job), None);
        let by_url = JobStatus::new(target, None, vec![]);
        let (s, job) = subject("https://jobs.example/j1");
        assert_eq!(by_url.url(s, job).as_deref(), Some("https://jobs.example/j1"));
    }
}
