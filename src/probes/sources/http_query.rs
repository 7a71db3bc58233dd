//! A service found by a query and read in batches: one query per tick (within the service's
//! budget) for every user pending there, their filters joined by `or`; the answer is one
//! [`Reading`] shared by everyone it concerns. A page shorter than the users asked for is no
//! answer for anyone (a user left off it would read as absent), and later queries ask for fewer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::{NOBODY, absolute, listed, preflight, read_once};
use crate::http::HttpClient;
use crate::probes::condition::{Reading, Who};
use crate::probes::source::{Budget, Fetch, Memo, Pending, Source, Subject, after_run, slot};
use crate::workload::downstream::UrlTemplate;

type Waiter = (String, String, oneshot::Sender<Fetch>);

pub struct HttpQuery {
    client: Arc<HttpClient>,
    budget: Option<Budget>,
    batch: Arc<Batch>,
    requests: AtomicU64,
}

/// The users due for a read there, and how to ask for them. Apart from the source, so that the
/// batching task can wait for users without keeping the source alive.
struct Batch {
    template: UrlTemplate,
    /// Users a query; lowered when the service answers a shorter page than asked.
    max: AtomicUsize,
    waiting: parking_lot::Mutex<Vec<Waiter>>,
    wake: Notify,
}

impl HttpQuery {
    /// Starts the batching task, which ends with the source or at `stop`. `max`: users a query.
    pub fn start(
        client: Arc<HttpClient>,
        template: UrlTemplate,
        max: usize,
        budget: Option<f64>,
        stop: &CancellationToken,
    ) -> Arc<HttpQuery> {
        let batch = Arc::new(Batch {
            template,
            max: AtomicUsize::new(max.max(1)),
            waiting: Default::default(),
            wake: Notify::new(),
        });
        let source = Arc::new(HttpQuery {
            client,
            budget: budget.map(Budget::per_second),
            batch: batch.clone(),
            requests: AtomicU64::new(0),
        });
        tokio::spawn(batching(batch, Arc::downgrade(&source), stop.clone()));
        source
    }

    /// Waits for the next batch that asks for `who`.
    async fn fetch(&self, who: Who<'_>, stop: &CancellationToken) -> Fetch {
        let (tx, rx) = oneshot::channel();
        self.batch
            .waiting
            .lock()
            .push((who.id.to_string(), who.user_name.to_string(), tx));
        self.batch.wake.notify_one();
        tokio::select! {
            r = rx => r.unwrap_or(Fetch::Stopped),
            _ = stop.cancelled() => Fetch::Stopped,
        }
    }

    /// Reads every user in `due` in one query and hands each their answer. `false` when stopped.
    async fn ask(&self, due: Vec<Waiter>, stop: &CancellationToken) -> bool {
        let mut names: Vec<(&str, &str)> = due.iter().map(|(i, n, _)| (i.as_str(), n.as_str())).collect();
        names.sort_unstable_by_key(|(_, n)| *n);
        names.dedup_by_key(|(_, n)| *n);
        let url = absolute(
            &self.client,
            self.batch
                .template
                .render_batch(names.iter().copied())
                .unwrap_or_default(),
        );
        let users = names.len();
        let sent = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reply = tokio::select! {
            r = self.client.get_if_none_match(&url, None) => r,
            _ = stop.cancelled() => return false,
        };
        let arrived = Instant::now();
        let answer = match reply {
            Ok(r) => {
                let reading = Arc::new(Reading::new(r.status.as_u16(), r.body));
                match listed(&reading) {
                    // A page shorter than the users asked for: a user left off it would
                    // read as absent. Nobody gets it; later queries ask for fewer.
                    Some((shown, total)) if total > shown && users > 1 => {
                        self.batch.max.store((shown.max(1)).min(users - 1), Ordering::Relaxed);
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
        true
    }
}

/// The batching task: waits for users to read, for the budget's next slot, then reads every
/// user waiting by then (at most `max`) in one query. It ends with the source or at `stop`.
async fn batching(batch: Arc<Batch>, source: Weak<HttpQuery>, stop: CancellationToken) {
    loop {
        if batch.waiting.lock().is_empty() {
            tokio::select! {
                _ = batch.wake.notified() => {}
                _ = stop.cancelled() => return,
            }
        }
        let Some(source) = source.upgrade() else { return };
        if !slot(source.budget.as_ref(), &stop).await {
            return;
        }
        let due: Vec<Waiter> = {
            let mut waiting = batch.waiting.lock();
            let take = waiting.len().min(batch.max.load(Ordering::Relaxed));
            waiting.drain(..take).collect()
        };
        if !due.is_empty() && !source.ask(due, &stop).await {
            return;
        }
    }
}

impl HttpQuery {
    /// One query for `chunk` once the run is over, outside the budget, counted; a batch whose
    /// query cannot be written (an id that cannot be one) is not sent.
    async fn read_after(&self, chunk: &[Who<'_>]) -> Option<Arc<Reading>> {
        let url = self
            .batch
            .template
            .render_batch(chunk.iter().map(|w| (w.id, w.user_name)))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        read_once(&self.client, &absolute(&self.client, url), None).await
    }
}

impl Source for HttpQuery {
    fn read<'a>(&'a self, subject: Subject<'a>, _: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch> {
        Box::pin(self.fetch(subject.who, stop))
    }

    /// One query per `max` users, without the batching task or the budget: the run is over. A
    /// batch whose query cannot be written (an id that cannot be one) is not sent: no answer.
    fn read_all<'a>(&'a self, users: &'a [Who<'a>]) -> Pending<'a, Vec<Option<Arc<Reading>>>> {
        Box::pin(async move {
            let chunks: Vec<&'a [Who<'a>]> = users.chunks(self.batch.max.load(Ordering::Relaxed).max(1)).collect();
            let answers = after_run((0..chunks.len()).map(|i| self.read_after(chunks[i]))).await;
            chunks
                .iter()
                .zip(answers)
                .flat_map(|(chunk, reading)| chunk.iter().map(move |_| reading.clone()))
                .collect()
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The query for one user no run makes: the list it answers must be readable.
    fn preflight(&self) -> Pending<'_, Result<(), String>> {
        Box::pin(async move {
            match self.batch.template.render_batch([(NOBODY, NOBODY)]) {
                Some(url) => preflight(&self.client, url).await,
                None => Ok(()),
            }
        })
    }
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
        let source = HttpQuery::start(client, template, 50, None, &stop);
        let read = |n: &'static str| {
            let source = source.clone();
            let stop = stop.clone();
            async move {
                let subject = Subject {
                    who: Who { id: n, user_name: n },
                    job: None,
                };
                source.read(subject, &mut Memo::default(), &stop).await
            }
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
}
