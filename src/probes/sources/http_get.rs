//! A service read by one GET per read: the URL rendered for the user (a by-id URL such as
//! `/Users/{id}`, or a query for one user where the service is not read by batches), conditional
//! where the service sends ETags, so an unchanged view costs a 304 and no parsing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use super::http::{LISTED, NOBODY, absolute, get, preflight, read_once};
use crate::http::HttpClient;
use crate::probes::condition::{Reading, Who};
use crate::probes::source::{Budget, Fetch, Memo, Pending, Source, Subject, after_run, slot};
use crate::workload::downstream::UrlTemplate;

pub struct HttpGet {
    /// The service's own client, which keeps each answer's `ETag` (see [`HttpClient::capturing`]).
    client: Arc<HttpClient>,
    url: UrlTemplate,
    /// The members of an answer that the conditions read (`members::first_members`).
    keep: Arc<[String]>,
    /// `keep` and what tells a short page ([`LISTED`]): the members a read after the run uses.
    keep_after: Arc<[String]>,
    budget: Option<Budget>,
    requests: AtomicU64,
}

impl HttpGet {
    /// `keep`: every member of an answer a condition, a view or a change time is read from.
    pub fn new(client: Arc<HttpClient>, url: UrlTemplate, budget: Option<f64>, keep: Vec<String>) -> HttpGet {
        let after = after_members(&keep);
        HttpGet {
            client,
            url,
            keep: keep.into(),
            keep_after: after.into(),
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
    /// from these): the URL and the members read as during the run. (Read whole, through a URL
    /// made absolute and parsed again, each of these reads took about twice the instructions.)
    async fn read_after(&self, who: Who<'_>) -> Option<Arc<Reading>> {
        let url = self.url_for(who)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        read_once(&self.client, &url, Some(&self.keep_after)).await
    }
}

/// What a read after the run keeps of an answer: what a run's read keeps, and what tells a
/// short page ([`LISTED`]).
fn after_members(keep: &[String]) -> Vec<String> {
    keep.iter().cloned().chain(LISTED.map(String::from)).collect()
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::probes::condition::{present, read_members};
    use crate::probes::sources::http::listed;
    use crate::workload::{Overrides, Workload};

    /// The linked services of a workload whose `[probes] sync` is `sync`.
    fn sync_probes(sync: &str) -> Vec<crate::workload::probes::SyncProbe> {
        let text = format!(
            r#"name = "after"
[target]
kind = "scim"
base_url = "http://127.0.0.1:9/scim/v2"
auth = {{ kind = "none" }}
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
[probes]
sync = {sync}
"#
        );
        let workload = Workload::parse(Path::new("after.toml"), &text, &Overrides::default()).unwrap();
        workload.probes.unwrap().sync
    }

    /// The linked services of a workload: one read by id, one by a SCIM query for the user, one
    /// by a query whose answer is the list itself.
    fn services() -> Vec<crate::workload::probes::SyncProbe> {
        sync_probes(
            r#"[{ service = "by-id", url = "/linked/a/Users/{id}" },
        { service = "by-query", query = "/linked/b/Users?filter=userName eq \"{userName}\"" },
        { service = "bare-list", query = "/linked/c/users?username={userName}", list = "", identity = "/userName" }]"#,
        )
    }

    /// Whether the user is there, and the page an answer shows (`present`, `listed`).
    type Judged = (Option<bool>, Option<(usize, usize)>);

    /// What `body` says after the run at `probe`, read whole and as a read after the run reads it
    /// (its members kept): whether `who` is there, and the page it shows.
    fn judged_whole_and_kept(
        probe: &crate::workload::probes::SyncProbe,
        who: Who,
        status: u16,
        body: impl Into<bytes::Bytes>,
    ) -> [Judged; 2] {
        let raw = body.into();
        [
            Reading::new(status, raw.clone()),
            Reading::keeping(status, raw, after_members(&read_members(probe)).into()),
        ]
        .map(|reading| (present(&probe.find, who, &reading), listed(&reading)))
    }

    /// A read after the run, which keeps only some members of an answer, tells a user there, a
    /// user gone and a short page (which says nothing of the users left off it) as a read of
    /// the whole answer does, whatever else the answer holds, whatever its shape and whatever a
    /// whole read refuses in it: by id or by query.
    #[test]
    fn a_read_after_the_run_judges_as_a_whole_answer() {
        let who = Who {
            id: "u1",
            user_name: "pb-1@example.test",
        };
        let user = prop_oneof![
            Just(json!({"id": "u1", "userName": "pb-1@example.test", "active": false})),
            Just(json!({"id": "u2", "userName": "other@example.test"})),
            Just(json!({"userName": "PB-1@example.test", "meta": {"version": "W/\"2\""}})),
            Just(json!({"detail": "not found", "status": "404"})),
        ];
        let member = prop_oneof![
            user.clone()
                .prop_map(|u| ("Resources".to_string(), Value::Array(vec![u]))),
            Just(("Resources".to_string(), json!([]))),
            (0u64..4).prop_map(|n| ("totalResults".to_string(), json!(n))),
            (0u64..4).prop_map(|n| ("itemsPerPage".to_string(), json!(n))),
            Just((
                "schemas".to_string(),
                json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
            )),
            user.prop_map(|u| ("whole".to_string(), u)),
        ];
        let answer = proptest::collection::vec(member, 0..6).prop_map(|members| {
            let mut doc = serde_json::Map::new();
            for (name, value) in members {
                match (name.as_str(), value) {
                    // A user's own members, as a by-id answer holds them.
                    ("whole", Value::Object(u)) => doc.extend(u),
                    (_, value) => {
                        doc.insert(name, value);
                    }
                }
            }
            Value::Object(doc).to_string()
        });
        let services = services();
        let answer = crate::probes::members::hostile::shapes(answer);
        // Many cases: a list answer with a pointer into it is a few in a hundred.
        proptest!(ProptestConfig::with_cases(2048), |(body in answer, status in prop_oneof![Just(200u16), Just(404), Just(410)], which in 0..3usize)| {
            let probe = &services[which];
            let [whole, kept] = judged_whole_and_kept(probe, who, status, body);
            prop_assert_eq!(whole.1, kept.1);
            prop_assert_eq!(whole.0, kept.0);
        });
    }

    /// A service found by a query whose answer is the list itself (`list = ""`, as many REST
    /// services answer `GET /users?username=…` with `[…]`): after the run, an empty list is the
    /// user gone, as the whole answer says. Kept, the answer is no object and reads as nothing, so
    /// `leftovers` counts a user that is gone as still there.
    #[test]
    fn a_read_after_the_run_of_a_bare_list_judges_as_a_whole_answer() {
        let sync = sync_probes(
            r#"[{ service = "bare", query = "/linked/c/users?username={userName}", list = "", identity = "/username" }]"#,
        );
        let probe = &sync[0];
        let who = Who {
            id: "u1",
            user_name: "pb-1@example.test",
        };
        let mut wrong = Vec::new();
        for body in [
            r#"[]"#,
            r#"[{"username":"other@example.test"}]"#,
            r#"[{"username":"pb-1@example.test"}]"#,
        ] {
            let [(a, listed_whole), (b, listed_kept)] = judged_whole_and_kept(probe, who, 200, body);
            if a != b || listed_whole != listed_kept {
                wrong.push(format!("{body}: whole {a:?}, kept {b:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// What the whole answer cannot read (not JSON: invalid UTF-8; or beyond serde_json's limits:
    /// a lone surrogate, a number out of range, nesting deeper than 128) in a member the kept read
    /// skips: the whole answer is unreadable (a leftover is counted), the kept one is read, and its
    /// empty list counts the user gone.
    #[test]
    fn a_kept_answer_is_no_laxer_than_a_whole_one() {
        let services = services();
        let probe = &services[1]; // by-query, `/Resources`
        let who = Who {
            id: "u1",
            user_name: "pb-1@example.test",
        };
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let skipped: Vec<Vec<u8>> = vec![
            b"\"\xff\xfe\"".to_vec(),
            br#""\ud800""#.to_vec(),
            b"1e999".to_vec(),
            deep.into_bytes(),
        ];
        let mut wrong = Vec::new();
        for junk in skipped {
            let mut body = br#"{"Resources":[],"totalResults":0,"x":"#.to_vec();
            body.extend_from_slice(&junk);
            body.push(b'}');
            let [(a, _), (b, _)] = judged_whole_and_kept(probe, who, 200, body.clone());
            if a != b {
                let shown = String::from_utf8_lossy(&body);
                wrong.push(format!("{:.80}: whole {a:?}, kept {b:?}", shown));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Escaped member names (`"to\u0074alResults"`, `"Re\u0073ources"`), members given twice (the
    /// last one counts, in both readings), a nested list pointer and a `~1` pointer: the kept read
    /// tells the user there, gone and a short page as the whole one does.
    #[test]
    fn a_kept_answer_agrees_on_escaped_and_repeated_keys() {
        let sync = sync_probes(
            r#"[{ service = "nested", query = "/linked/c/users?u={userName}", list = "/data/items", identity = "/n", batch = false },
        { service = "tilde", query = "/linked/d/users?u={userName}", list = "/a~1b", identity = "/userName", batch = false },
        { service = "by-id", url = "/linked/a/Users/{id}" }]"#,
        );
        let who = Who {
            id: "u1",
            user_name: "pb-1@example.test",
        };
        let bodies = [
            r#"{"data":{"items":[{"n":"pb-1@example.test"}]},"data":{"items":[]}}"#,
            r#"{"data":{"items":[]},"d\u0061ta":{"items":[{"n":"pb-1@example.test"}]}}"#,
            r#"{"a/b":[{"userName":"pb-1@example.test"}],"a\/b":[]}"#,
            r#"{"a\u002fb":[{"userName":"pb-1@example.test"}]}"#,
            r#"{"Resources":[],"to\u0074alResults":3,"Re\u0073ources":[{"userName":"x"}]}"#,
            r#"{"totalResults":1,"itemsPerPage":0,"totalResults":0}"#,
            r#"{"id":"u2","\u0069d":"u1"}"#,
            r#"{"userName":"x","user\u004eame":"PB-1@example.test"}"#,
        ];
        let mut wrong = Vec::new();
        for probe in &sync {
            for body in bodies {
                for status in [200u16, 404] {
                    let [(a, listed_whole), (b, listed_kept)] = judged_whole_and_kept(probe, who, status, body);
                    if a != b || listed_whole != listed_kept {
                        wrong.push(format!("{} {status} {body}: whole {a:?}, kept {b:?}", probe.service));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// serde_json's `raw_value` feature (on in this build) makes a whole
    /// `Value` read treat an object whose first key is `$serde_json::private::RawValue` as JSON
    /// text to parse again; the kept read (`Kept` at the top level, `Checked` for skipped members)
    /// reads it as an ordinary object. After the run: an answer a whole read refuses counts the
    /// user gone when kept; an answer whose whole read lists/finds the user reads as unknown kept.
    #[test]
    fn a_raw_value_object_after_the_run_is_judged_as_a_whole_answer() {
        let services = services();
        let who = Who {
            id: "u1",
            user_name: "pb-1@example.test",
        };
        let bodies: [&str; 5] = [
            r#"{"Resources":[],"totalResults":0,"x":{"$serde_json::private::RawValue":"}"}}"#,
            r#"{"Resources":[],"totalResults":0,"x":{"$serde_json::private::RawValue":1}}"#,
            r#"{"$serde_json::private::RawValue":"1","Resources":[],"totalResults":0}"#,
            r#"{"$serde_json::private::RawValue":"{\"Resources\":[{\"userName\":\"pb-1@example.test\"}],\"totalResults\":1}"}"#,
            r#"{"$serde_json::private::RawValue":"{\"id\":\"u1\",\"userName\":\"pb-1@example.test\"}"}"#,
        ];
        let mut wrong = Vec::new();
        for probe in &services[..2] {
            for body in bodies {
                let [(a, listed_whole), (b, listed_kept)] = judged_whole_and_kept(probe, who, 200, body);
                if a != b || listed_whole != listed_kept {
                    wrong.push(format!("{} {body:.70}: whole {a:?}, kept {b:?}", probe.service));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
