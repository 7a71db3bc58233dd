//! How one linked service is read: one GET per observation (conditional where the service sends
//! ETags, so an unchanged view costs a 304 and no parsing), or, where the service is found by a
//! query, one batched query per tick for every user pending there; either way within the
//! service's request budget. The answer is a [`Reading`] shared by everyone it concerns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::condition::{Reading, Who};
use crate::http::HttpClient;
use crate::workload::downstream::UrlTemplate;

/// At most one request per `gap`: a reservation is the later of now and the slot after the last
/// one (lock-free; waiting is the caller's).
pub struct Budget {
    gap_nanos: u64,
    origin: Instant,
    next: AtomicU64,
}

impl Budget {
    pub fn per_second(rate: f64) -> Budget {
        Budget {
            gap_nanos: (1e9 / rate.max(1e-3)) as u64,
            origin: Instant::now(),
            next: AtomicU64::new(0),
        }
    }

    /// The instant this request may go.
    fn reserve(&self) -> Instant {
        let now = self.origin.elapsed().as_nanos() as u64;
        let gap = self.gap_nanos;
        let previous = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.max(now) + gap))
            .unwrap_or_default();
        self.origin + Duration::from_nanos(previous.max(now))
    }
}

/// What one read gave.
pub enum Fetch {
    /// An answer, when its request was sent and when the answer came back: the service read
    /// its state somewhere between the two.
    Answer {
        reading: Arc<Reading>,
        sent: Instant,
        arrived: Instant,
    },
    /// 304: the view is as it was at the last read.
    Unchanged(Instant),
    /// No usable answer (a connection error, a truncated batch).
    Failed(Instant),
    Stopped,
}

/// A service's read side.
pub struct ServiceReader {
    pub client: Arc<HttpClient>,
    budget: Option<Budget>,
    batch: Option<Arc<Batcher>>,
    /// The client keeps each answer's `ETag` (see [`HttpClient::capturing`]).
    conditional: bool,
    /// A directory read by LDAP search instead of `client`.
    ldap: Option<super::ldap::LdapView>,
    pub requests: AtomicU64,
}

impl ServiceReader {
    /// `batch`: the service's query template, when it batches (`max` users a query);
    /// `conditional`: `client` captures `ETag`.
    pub fn new(
        client: Arc<HttpClient>,
        conditional: bool,
        budget: Option<f64>,
        batch: Option<(UrlTemplate, usize)>,
        stop: &CancellationToken,
    ) -> Arc<ServiceReader> {
        let reader = Arc::new(ServiceReader {
            client,
            budget: budget.map(Budget::per_second),
            batch: batch.map(|(template, max)| {
                Arc::new(Batcher {
                    template,
                    max: AtomicUsize::new(max.max(1)),
                    waiting: Default::default(),
                    wake: Notify::new(),
                })
            }),
            conditional,
            ldap: None,
            requests: AtomicU64::new(0),
        });
        if let Some(b) = &reader.batch {
            tokio::spawn(b.clone().run(Arc::downgrade(&reader), stop.clone()));
        }
        reader
    }

    /// A reader of a directory: one search per read, within `budget`. `client` is the target's,
    /// for the URLs the hub renders for every service (a directory's are not used).
    pub fn ldap(client: Arc<HttpClient>, budget: Option<f64>, view: super::ldap::LdapView) -> Arc<ServiceReader> {
        Arc::new(ServiceReader {
            client,
            budget: budget.map(Budget::per_second),
            batch: None,
            conditional: false,
            ldap: Some(view),
            requests: AtomicU64::new(0),
        })
    }

    /// Waits for this service's next request slot (or the stop).
    async fn slot(&self, stop: &CancellationToken) -> bool {
        let Some(budget) = &self.budget else { return true };
        tokio::select! {
            _ = tokio::time::sleep_until(budget.reserve()) => true,
            _ = stop.cancelled() => false,
        }
    }

    /// Reads `who` there: through the batch when the service batches, else `url` alone, with
    /// `If-None-Match: tag` when the last answer carried one (`tag` is kept up to date).
    pub async fn fetch(
        &self,
        url: &str,
        who: Who<'_>,
        tag: &mut Option<HeaderValue>,
        stop: &CancellationToken,
    ) -> Fetch {
        if let Some(batch) = &self.batch {
            return batch.read(who.id, who.user_name, stop).await;
        }
        if !self.slot(stop).await {
            return Fetch::Stopped;
        }
        if let Some(view) = &self.ldap {
            self.requests.fetch_add(1, Ordering::Relaxed);
            return tokio::select! {
                f = view.fetch(who.user_name) => f,
                _ = stop.cancelled() => Fetch::Stopped,
            };
        }
        let sent = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reply = tokio::select! {
            r = self.client.get_if_none_match(url, tag.as_ref()) => r,
            _ = stop.cancelled() => return Fetch::Stopped,
        };
        match reply {
            Ok(r) if r.status == reqwest::StatusCode::NOT_MODIFIED && tag.is_some() => Fetch::Unchanged(sent),
            Ok(r) => {
                if self.conditional {
                    *tag = r.captured.as_deref().and_then(|t| HeaderValue::from_str(t).ok());
                }
                Fetch::Answer {
                    reading: Arc::new(Reading::new(r.status.as_u16(), r.body)),
                    sent,
                    arrived: Instant::now(),
                }
            }
            Err(_) => Fetch::Failed(sent),
        }
    }

    /// One read of many users without the batching task (for the end-of-run leftovers): a
    /// batched query per `max` users where the service batches, else one GET each.
    pub async fn read_all<'a>(&self, who: &[Who<'a>], url: impl Fn(Who<'a>) -> String) -> Vec<Option<Arc<Reading>>> {
        let mut out = Vec::with_capacity(who.len());
        if let Some(view) = &self.ldap {
            for w in who {
                out.push(match view.fetch(w.user_name).await {
                    Fetch::Answer { reading, .. } => Some(reading),
                    _ => None,
                });
            }
            return out;
        }
        let chunk = self.batch.as_ref().map_or(1, |b| b.max.load(Ordering::Relaxed));
        for users in who.chunks(chunk) {
            let target = match &self.batch {
                Some(b) => b
                    .template
                    .render_batch(users.iter().map(|w| (w.id, w.user_name)))
                    .unwrap_or_default(),
                None => url(users[0]),
            };
            let reading = match self
                .client
                .get_if_none_match(&absolute(&self.client, target), None)
                .await
            {
                Ok(r) => Some(Arc::new(Reading::new(r.status.as_u16(), r.body))),
                Err(_) => None,
            };
            // A short page says nothing of the users left off it.
            let reading = reading.filter(|r| listed(r).is_none_or(|(shown, total)| total <= shown));
            out.extend(users.iter().map(|_| reading.clone()));
        }
        out
    }
}

/// An origin-relative URL made absolute on the client's origin.
pub fn absolute(client: &HttpClient, url: String) -> String {
    if url.starts_with('/') {
        format!("{}{url}", client.origin())
    } else {
        url
    }
}

type Waiter = (String, String, oneshot::Sender<Fetch>);

/// Collects the users due for a read at one service and asks for all of them in one query.
pub struct Batcher {
    template: UrlTemplate,
    /// Users a query; lowered when the service answers a shorter page than asked.
    max: AtomicUsize,
    waiting: parking_lot::Mutex<Vec<Waiter>>,
    wake: Notify,
}

impl Batcher {
    async fn read(&self, id: &str, user_name: &str, stop: &CancellationToken) -> Fetch {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().push((id.to_string(), user_name.to_string(), tx));
        self.wake.notify_one();
        tokio::select! {
            r = rx => r.unwrap_or(Fetch::Stopped),
            _ = stop.cancelled() => Fetch::Stopped,
        }
    }

    /// The batching task: waits for users to read, for the budget's next slot, then reads every
    /// user waiting by then in one query and hands each their answer.
    async fn run(self: Arc<Self>, reader: std::sync::Weak<ServiceReader>, stop: CancellationToken) {
        loop {
            if self.waiting.lock().is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = stop.cancelled() => return,
                }
            }
            let Some(reader) = reader.upgrade() else { return };
            if !reader.slot(&stop).await {
                return;
            }
            let max = self.max.load(Ordering::Relaxed);
            let due: Vec<Waiter> = {
                let mut waiting = self.waiting.lock();
                let take = waiting.len().min(max);
                waiting.drain(..take).collect()
            };
            if due.is_empty() {
                continue;
            }
            let mut names: Vec<(&str, &str)> = due.iter().map(|(i, n, _)| (i.as_str(), n.as_str())).collect();
            names.sort_unstable_by_key(|(_, n)| *n);
            names.dedup_by_key(|(_, n)| *n);
            let url = absolute(
                &reader.client,
                self.template.render_batch(names.iter().copied()).unwrap_or_default(),
            );
            let users = names.len();
            let sent = Instant::now();
            reader.requests.fetch_add(1, Ordering::Relaxed);
            let reply = tokio::select! {
                r = reader.client.get_if_none_match(&url, None) => r,
                _ = stop.cancelled() => return,
            };
            let arrived = Instant::now();
            let answer = match reply {
                Ok(r) => {
                    let reading = Arc::new(Reading::new(r.status.as_u16(), r.body));
                    match listed(&reading) {
                        // A page shorter than the users asked for: a user left off it would
                        // read as absent. Nobody gets it; later queries ask for fewer.
                        Some((shown, total)) if total > shown && users > 1 => {
                            self.max.store((shown.max(1)).min(users - 1), Ordering::Relaxed);
                            None
                        }
                        _ => Some(reading),
                    }
                }
                Err(_) => None,
            };
            for (_, _, tx) in due {
                let _ = tx.send(match &answer {
                    Some(r) => Fetch::Answer {
                        reading: r.clone(),
                        sent,
                        arrived,
                    },
                    None => Fetch::Failed(sent),
                });
            }
        }
    }
}

/// SCIM's `itemsPerPage` (or the length of `Resources`) and `totalResults` of a list answer.
fn listed(reading: &Reading) -> Option<(usize, usize)> {
    let doc = reading.json()?;
    let total = doc.get("totalResults")?.as_u64()? as usize;
    let shown = doc
        .get("Resources")
        .and_then(|r| r.as_array())
        .map(Vec::len)
        .or_else(|| doc.get("itemsPerPage")?.as_u64().map(|n| n as usize))?;
    Some((shown, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A downstream whose pages hold one user, whatever it is asked: a query for several users
    /// answers a short page (`totalResults` above what it shows).
    async fn one_per_page() -> (String, Arc<AtomicU64>) {
        let asked = Arc::new(AtomicU64::new(0));
        let counter = asked.clone();
        let app = axum::Router::new().route(
            "/Users",
            axum::routing::get(
                move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let filter = q.get("filter").cloned().unwrap_or_default();
                    let names: Vec<String> = filter.split('"').skip(1).step_by(2).map(str::to_string).collect();
                    let first = names.first().cloned().unwrap_or_default();
                    async move {
                        axum::Json(serde_json::json!({
                            "totalResults": names.len(),
                            "Resources": [{"userName": first}],
                        }))
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (origin, asked)
    }

    /// Regression guard: a user left off a short page must never read as absent. Nobody gets
    /// that answer, and later queries ask for as many users as the page holds.
    #[tokio::test]
    async fn a_short_page_is_never_read_as_absent() {
        let (origin, asked) = one_per_page().await;
        let client = Arc::new(HttpClient::new(&origin, crate::http::HttpSettings::defaults()).unwrap());
        let template = UrlTemplate::parse("/Users?filter=userName eq \"{userName}\"").unwrap();
        let stop = CancellationToken::new();
        let reader = ServiceReader::new(client, false, None, Some((template, 50)), &stop);
        let who = |n: &'static str| Who { id: n, user_name: n };
        let read = |n: &'static str| {
            let reader = reader.clone();
            let stop = stop.clone();
            async move { reader.fetch("", who(n), &mut None, &stop).await }
        };
        // Both wait before the batching task first looks, so one query asks for both.
        let (a, b) = tokio::join!(read("a"), read("b"));
        assert!(
            matches!((a, b), (Fetch::Failed(_), Fetch::Failed(_))),
            "a short page is no answer"
        );
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        match read("b").await {
            Fetch::Answer { reading: r, .. } => assert_eq!(r.json().unwrap()["Resources"][0]["userName"], "b"),
            _ => panic!("one user a query now fits the page"),
        }
        stop.cancel();
    }

    /// Reservations are spaced by the gap, however many ask at once.
    #[tokio::test(start_paused = true)]
    async fn the_budget_spaces_requests() {
        let budget = Budget::per_second(10.0);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..3).map(|_| budget.reserve() - start).collect();
        assert_eq!(slots, [0, 100, 200].map(Duration::from_millis));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            budget.reserve() - start,
            Duration::from_secs(1),
            "no credit for idle time"
        );
    }
}
