//! How a SCIM target's `/Users` list behaves, read with GETs only: whether a `count` parameter
//! breaks it (as it does on some real servers, which answer 500), whether `startIndex` pages,
//! whether a filter is honoured (a filter for a userName nobody has must answer no user), and
//! whether reads carry ETags. Also the one GET every discovery request goes through
//! ([`get`]), which notes answers that close their connection (HTTP/1.0, `Connection: close`).

use reqwest::Method;
use serde_json::Value;

use super::Context;
use super::draft::Draft;
use crate::http::client::{Extras, encode_query};
use crate::http::{HttpClient, Reply};

/// What `list_users` sends (see `engine::targets::scim::steps`), named in what is heard.
const LIST_USERS_SENDS: &str = "GET /Users?startIndex=1&count=10";

/// Answers that closed their connection: the first one seen, said in the workload's comment.
#[derive(Debug, Default)]
pub struct Connections {
    pub closing: Option<String>,
    pub answers: usize,
}

/// One discovery GET through the run's own client (its egress rule, its body limit), with the
/// answer's headers kept; every answer is looked at for how it treats its connection.
pub async fn get(client: &HttpClient, path: &str, conns: &mut Connections) -> Result<Reply, String> {
    let extras = Extras {
        keep_headers: true,
        ..Extras::default()
    };
    let reply = client
        .call_with(Method::GET, path, None, &extras)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    conns.answers += 1;
    if conns.closing.is_none() {
        let close = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(reqwest::header::CONNECTION))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        if reply.version == reqwest::Version::HTTP_10 {
            conns.closing = Some(format!("GET {path} was answered in HTTP/1.0"));
        } else if close {
            conns.closing = Some(format!("GET {path} was answered with Connection: close"));
        }
    }
    Ok(reply)
}

/// The answer as JSON, when it is JSON.
pub fn json(reply: &Reply) -> Option<Value> {
    serde_json::from_slice(&reply.body).ok()
}

/// A short, typed view of an answer for what is heard: its status and its first bytes.
pub fn said(reply: &Reply) -> String {
    format!(
        "HTTP {} ({})",
        reply.status.as_u16(),
        crate::redact::sample_bytes(&reply.body, true, 80)
    )
}

/// What the list probes learnt, for the parts decided after them.
#[derive(Debug, Default)]
pub struct Lists {
    /// A `count` parameter made the list fail: later reads leave it out.
    pub count_breaks: bool,
}

/// `GET /Users?count=1`, paging, a filter nobody matches, ETags. Refused credentials end
/// discovery (every run would be refused the same way).
pub async fn probe(
    cx: &Context<'_>,
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
) -> anyhow::Result<Lists> {
    let mut lists = Lists::default();
    let path = "/Users?count=1";
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let status = reply.status.as_u16();
    if status == 401 || status == 403 {
        anyhow::bail!(
            "GET {path} answered HTTP {status}: the target refuses these credentials (or their scope) for reading users"
        );
    }
    let first = match reply.status.is_success() {
        true => list_of(&reply),
        false => None,
    };
    let first = match first {
        Some(list) => {
            draft.heard(format!(
                "GET {path}: a list of {} user(s) in all",
                list.total.map_or("?".to_string(), |t| t.to_string())
            ));
            list
        }
        None if status == 400 || status >= 500 => {
            lists.count_breaks = true;
            let why = format!("GET {path} answered {}", said(&reply));
            draft.heard(format!(
                "{why}: a count parameter breaks its list; a run must not send one ({LIST_USERS_SENDS} would fail)"
            ));
            draft.unsupported("list_users", format!("{why}, and list_users sends {LIST_USERS_SENDS}"));
            draft.heard(
                "cleanup cannot search the target for the run's marker (its search sends count): it deletes what the run recorded and reads each back",
            );
            let bare = get(client, "/Users", conns).await.map_err(anyhow::Error::msg)?;
            match list_of(&bare).filter(|_| bare.status.is_success()) {
                Some(list) => {
                    draft.heard("GET /Users without count answers a list");
                    list
                }
                None => {
                    draft.heard(format!("GET /Users answered {}: the list cannot be read", said(&bare)));
                    draft.unsupported("find_user", "GET /Users answers no list");
                    return Ok(lists);
                }
            }
        }
        None => {
            let why = format!("GET {path} answered {}", said(&reply));
            draft.heard(format!("{why}: no user list to read"));
            draft.unsupported("list_users", why.clone());
            draft.unsupported("find_user", why);
            return Ok(lists);
        }
    };
    paging(client, draft, conns, &lists, first.total).await?;
    filter(cx, client, draft, conns, &lists, first.total).await?;
    etags(client, draft, conns, &first).await?;
    Ok(lists)
}

/// What one list answer holds.
struct List {
    total: Option<u64>,
    start: Option<u64>,
    /// The userNames it holds (at most a few, for the filter's judgement).
    names: Vec<String>,
    /// The first resource's id and whether it carries `meta.version`.
    first_id: Option<String>,
    first_versioned: bool,
    len: usize,
}

fn list_of(reply: &Reply) -> Option<List> {
    let v = json(reply)?;
    let resources = match v.get("Resources") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return None,
        None => &[],
    };
    if v.get("totalResults").is_none() && v.get("Resources").is_none() {
        return None;
    }
    let first = resources.first();
    Some(List {
        total: v["totalResults"].as_u64(),
        start: v["startIndex"].as_u64(),
        names: resources
            .iter()
            .take(100)
            .map(|r| r["userName"].as_str().unwrap_or("").to_string())
            .collect(),
        first_id: first.and_then(|r| r["id"].as_str()).map(str::to_string),
        first_versioned: first.is_some_and(|r| r["meta"]["version"].is_string()),
        len: resources.len(),
    })
}

async fn paging(
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
    lists: &Lists,
    total: Option<u64>,
) -> anyhow::Result<()> {
    let path = match lists.count_breaks {
        true => "/Users?startIndex=2",
        false => "/Users?startIndex=2&count=1",
    };
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let list = list_of(&reply).filter(|_| reply.status.is_success());
    let line = match (list, total) {
        (None, _) => format!("GET {path} answered {}: startIndex paging is not usable", said(&reply)),
        (Some(l), _) if l.start == Some(2) => format!("GET {path}: paging by startIndex is honoured"),
        (Some(_), Some(t)) if t < 2 => format!("GET {path}: too few users to tell whether startIndex pages"),
        (Some(l), _) => format!(
            "GET {path} answered startIndex {}: startIndex looks ignored",
            l.start.map_or("(none)".to_string(), |s| s.to_string())
        ),
    };
    draft.heard(line);
    Ok(())
}

/// A filter for a userName nobody has: honoured, it answers no user; ignored, it lists users
/// that do not match, and `find_user` would take somebody else's user for the journey's.
async fn filter(
    cx: &Context<'_>,
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
    lists: &Lists,
    total: Option<u64>,
) -> anyhow::Result<()> {
    let nobody = format!("provbench-init-nobody-{}", cx.run_id);
    let expr = format!("userName eq \"{nobody}\"");
    let mut path = format!("/Users?filter={}", encode_query(&expr));
    if !lists.count_breaks {
        path.push_str("&count=10");
    }
    let shown = "GET /Users?filter=userName eq \"provbench-init-nobody-…\"";
    let reply = get(client, &path, conns).await.map_err(anyhow::Error::msg)?;
    if !reply.status.is_success() {
        let why = format!("{shown} answered {}", said(&reply));
        draft.heard(format!("{why}: filters are refused"));
        draft.unsupported("find_user", format!("{why} (find_user filters on userName)"));
        return Ok(());
    }
    let Some(list) = list_of(&reply) else {
        draft.heard(format!("{shown} answered no SCIM list"));
        draft.unsupported("find_user", format!("{shown} answered no SCIM list"));
        return Ok(());
    };
    let strangers = list.names.iter().filter(|n| !n.eq_ignore_ascii_case(&nobody)).count();
    if strangers > 0 || list.total.is_some_and(|t| t > 0) {
        let why = format!(
            "{shown} answered {} user(s) that do not match: the filter is ignored",
            list.total.unwrap_or(list.len as u64).max(strangers as u64)
        );
        draft.heard(why.clone());
        draft.unsupported(
            "find_user",
            format!("{why}, so find_user would take another user for the journey's"),
        );
        return Ok(());
    }
    match total {
        Some(t) if t > 0 => draft.heard(format!(
            "{shown}: no user, while the list holds {t}: filters are honoured"
        )),
        _ => draft.heard(format!(
            "{shown}: no user (the target lists none, so an ignored filter would look the same)"
        )),
    };
    Ok(())
}

/// `meta.version` on a listed user, or an `ETag` header on a read of it.
async fn etags(client: &HttpClient, draft: &mut Draft, conns: &mut Connections, first: &List) -> anyhow::Result<()> {
    let Some(id) = &first.first_id else {
        draft.heard("ETags: no user to read, so not known");
        return Ok(());
    };
    let Ok(path) = crate::http::url::member("Users", id) else {
        draft.heard("ETags: the first listed user's id cannot name a resource; not read");
        return Ok(());
    };
    let reply = get(client, &path, conns).await.map_err(anyhow::Error::msg)?;
    let header = reply
        .headers
        .as_ref()
        .is_some_and(|h| h.contains_key(reqwest::header::ETAG));
    let versioned = first.first_versioned || json(&reply).is_some_and(|v| v["meta"]["version"].is_string());
    draft.heard(match (versioned, header) {
        (true, true) => "ETags: reads carry meta.version and an ETag header",
        (true, false) => "ETags: reads carry meta.version (no ETag header)",
        (false, true) => "ETags: reads carry an ETag header (no meta.version)",
        (false, false) => "ETags: reads carry neither meta.version nor an ETag header",
    });
    Ok(())
}
