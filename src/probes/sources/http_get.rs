//! A service read by one GET per read: the URL rendered for the user (a by-id URL such as
//! `/Users/{id}`, or a query for one user where the service is not read by batches), conditional
//! where the service sends ETags, so an unchanged view costs a 304 and no parsing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use super::http::{NOBODY, absolute, get, preflight, read_once};
use crate::http::HttpClient;
use crate::probes::condition::{Reading, Who};
use crate::probes::source::{Budget, Fetch, Memo, Pending, Source, Subject, after_run, slot};
use crate::workload::downstream::UrlTemplate;

pub struct HttpGet {
    /// The service's own client, which keeps each answer's `ETag` (see [`HttpClient::capturing`]).
    client: Arc<HttpClient>,
    url: UrlTemplate,
    /// The members of an answer that the conditions read (`condition::first_members`).
    keep: Arc<[String]>,
    budget: Option<Budget>,
    requests: AtomicU64,
}

impl HttpGet {
    /// `keep`: every member of an answer a condition, a view or a change time is read from.
    pub fn new(client: Arc<HttpClient>, url: UrlTemplate, budget: Option<f64>, keep: Vec<String>) -> HttpGet {
        HttpGet {
            client,
            url,
            keep: keep.into(),
            budget: budget.map(Budget::per_second),
            requests: AtomicU64::new(0),
        }
    }

    /// `None` when the user's id cannot be one path segment: that user is not observed here.
    /// A path the workload wrote (`/linked/crm/Users/{id}`) goes as it is to a client based at
    /// its origin's root, the same request and the same credential decision as the absolute
    /// URL, which each read parsed again.
    fn url_for(&self, who: Who) -> Option<String> {
        let url = self.url.render(who.id, who.user_name)?;
        Some(
            match url.starts_with('/') && !url.starts_with("//") && self.client.at_root() {
                true => url,
                false => absolute(&self.client, url),
            },
        )
    }

    async fn fetch(&self, who: Who<'_>, memo: &mut Memo, stop: &CancellationToken) -> Fetch {
        if !slot(self.budget.as_ref(), stop).await {
            return Fetch::Stopped;
        }
        let Some(url) = self.url_for(who) else {
            return Fetch::NoJob;
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        get(&self.client, &url, Some(&mut memo.etag), Some(&self.keep), stop).await
    }

    /// One plain GET once the run is over, counted as every read is (the report tells the run's
    /// from these).
    async fn read_after(&self, who: Who<'_>) -> Option<Arc<Reading>> {
        let url = self.url.render(who.id, who.user_name)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        read_once(&self.client, url).await
    }
}

impl Source for HttpGet {
    fn read<'a>(&'a self, subject: Subject<'a>, memo: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch> {
        Box::pin(self.fetch(subject.who, memo, stop))
    }

    /// One GET each, outside the budget: the run is over.
    fn read_all<'a>(&'a self, users: &'a [Who<'a>]) -> Pending<'a, Vec<Option<Arc<Reading>>>> {
        Box::pin(after_run(users.iter().map(|&who| self.read_after(who))))
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn preflight(&self) -> Pending<'_, Result<(), String>> {
        Box::pin(async move {
            match self.url.render(NOBODY, NOBODY) {
                Some(url) => preflight(&self.client, url).await,
                None => Ok(()),
            }
        })
    }
}
