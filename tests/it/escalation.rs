//! Threat-model invariant 4 for the escalation check: it never creates or deletes a group. Its
//! "join a privileged group" attempt uses the target's existing privileged group, found by a
//! read-only lookup, and the only change it ever asks of that group is adding, then removing,
//! the run's own employee. A lying SCIM server answers the lookup with whatever a case names
//! (the real group, the real group and a namesake, a group of another name, an id that is no
//! segment, an error) and answers every group create with the real group's id and name (its
//! `externalId`, and a `userName`, echoing the run's marker); it records every request. Over
//! all of them: no `DELETE /Groups/…`, no group `PUT`, no group created named like the
//! privileged group, and no group `PATCH` but the two that name the run's employee alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The target's real privileged group, with an admin of its own.
const REAL: &str = "real-admins";
const VICTIM: &str = "victim-admin";
const HELPDESK: &str = "Bearer helpdesk-token";

/// What the lookup `GET /Groups?filter=displayName eq "admins"` answers.
#[derive(Clone, Debug)]
enum Lookup {
    /// 200 with these resources (each also readable at its id, when it has one).
    Groups(Vec<Value>),
    /// This status, no list.
    Status(u16),
}

struct Liar {
    lookup: Lookup,
    /// Groups by id, as the liar keeps them (members change with PATCHes it takes).
    groups: Mutex<BTreeMap<String, Value>>,
    users: Mutex<BTreeMap<String, Value>>,
    /// The id the run's escalation employee was created with (it is deleted at cleanup).
    employee: Mutex<Option<String>>,
    next: Mutex<u64>,
    /// Every request: method, target as it arrived, body (JSON or null).
    seen: Mutex<Vec<(String, String, Value)>>,
    /// The id the run's employee create is answered with, when it is not a new user's (the
    /// liar's own admin's, whose own reads still say who it is).
    employee_as: Option<String>,
    /// Groups are read without their `members` (as some targets answer a group).
    hide_members: bool,
    /// The id the run's employee is made with (`None`: the liar's own `u<n>`).
    employee_id: Option<String>,
    /// A `replace` of a user's `displayName` takes effect, whoever asks (the helpdesk's is
    /// still answered 403).
    takes_renames: bool,
    /// The workload's `checks.attempts`.
    attempts: u32,
    /// What a read of any group answers instead of the group (another group, empty).
    group_read_as: Option<Value>,
}

impl Liar {
    fn new(lookup: Lookup) -> Liar {
        let groups = match &lookup {
            Lookup::Groups(list) => list
                .iter()
                .filter_map(|g| Some((g["id"].as_str()?.to_string(), g.clone())))
                .collect(),
            Lookup::Status(_) => BTreeMap::new(),
        };
        Liar {
            lookup,
            groups: Mutex::new(groups),
            users: Mutex::new(BTreeMap::new()),
            employee: Mutex::new(None),
            next: Mutex::new(0),
            seen: Mutex::new(Vec::new()),
            employee_as: None,
            hide_members: false,
            employee_id: None,
            takes_renames: false,
            attempts: 4,
            group_read_as: None,
        }
    }

    fn employee(&self) -> Option<String> {
        self.employee.lock().clone()
    }
}

fn list(resources: Vec<Value>) -> Response {
    axum::Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(), "Resources": resources}),
    )
    .into_response()
}

/// Applies the PATCH operations the liar takes on a group: `add` of members, `remove` of the
/// members a `members[value eq "…"]` names, `remove` of `members` (all of them).
fn patch_group(group: &mut Value, body: &Value) {
    for op in body["Operations"].as_array().into_iter().flatten() {
        let path = op["path"].as_str().unwrap_or_default();
        match op["op"].as_str().unwrap_or_default().to_ascii_lowercase().as_str() {
            "add" if path == "members" => {
                let mut members = group["members"].as_array().cloned().unwrap_or_default();
                members.extend(op["value"].as_array().cloned().unwrap_or_default());
                group["members"] = Value::Array(members);
            }
            "remove" if path == "members" => group["members"] = json!([]),
            "remove" => {
                if let Some(gone) = path
                    .strip_prefix("members[value eq ")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|q| serde_json::from_str::<String>(q).ok())
                    && let Some(m) = group["members"].as_array_mut()
                {
                    m.retain(|x| x["value"].as_str() != Some(gone.as_str()));
                }
            }
            _ => {}
        }
    }
}

async fn answer(State(liar): State<Arc<Liar>>, req: Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".into(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let helpdesk = req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(HELPDESK);
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    liar.seen.lock().push((method.clone(), target.clone(), body.clone()));
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = percent_decode_str(&query.replace('+', " "))
        .decode_utf8_lossy()
        .to_string();
    match (method.as_str(), path) {
        ("POST", "/oauth/token") => {
            axum::Json(json!({"access_token": "helpdesk-token", "expires_in": 3600})).into_response()
        }
        ("POST", "/scim/v2/Users") => {
            let id = {
                let mut n = liar.next.lock();
                *n += 1;
                format!("u{n}")
            };
            let mut user = body.clone();
            user["id"] = json!(id);
            if user["userName"].as_str().is_some_and(|n| n.contains("-esc-employee")) {
                if let Some(foreign) = &liar.employee_as {
                    // The run's name echoed, under the id of a user that is not the run's.
                    user["id"] = json!(foreign);
                    return (StatusCode::CREATED, axum::Json(user)).into_response();
                }
                if let Some(chosen) = &liar.employee_id {
                    user["id"] = json!(chosen);
                }
                *liar.employee.lock() = user["id"].as_str().map(str::to_string);
            }
            let id = user["id"].as_str().unwrap_or_default().to_string();
            liar.users.lock().insert(id, user.clone());
            (StatusCode::CREATED, axum::Json(user)).into_response()
        }
        // Every group create is answered as the real group, its marker echoed where it proves
        // nothing (externalId, a userName a group does not have).
        ("POST", "/scim/v2/Groups") => {
            let sent = body["displayName"].clone();
            (
                StatusCode::CREATED,
                axum::Json(
                    json!({"id": REAL, "displayName": "admins", "externalId": body["externalId"].clone(),
                    "userName": sent, "members": [{"value": VICTIM}]}),
                ),
            )
                .into_response()
        }
        ("GET", "/scim/v2/Users") => {
            let needle = query.split('"').nth(1).unwrap_or_default().to_string();
            let found = liar
                .users
                .lock()
                .values()
                .filter(|u| u["userName"].as_str().is_some_and(|n| n.contains(&needle)))
                .cloned()
                .collect();
            list(found)
        }
        ("GET", "/scim/v2/Groups") if query.to_ascii_lowercase().contains("displayname eq \"admins\"") => {
            match &liar.lookup {
                Lookup::Groups(g) => list(g.clone()),
                Lookup::Status(s) => StatusCode::from_u16(*s).unwrap().into_response(),
            }
        }
        // The sweep's searches: the liar's groups, whatever the filter.
        ("GET", "/scim/v2/Groups") => list(liar.groups.lock().values().cloned().collect()),
        (_, p) if p.starts_with("/scim/v2/Users/") => {
            let id = percent_decode_str(&p["/scim/v2/Users/".len()..])
                .decode_utf8_lossy()
                .to_string();
            match method.as_str() {
                "GET" => match liar.users.lock().get(&id) {
                    Some(u) => axum::Json(u.clone()).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                },
                "DELETE" => match liar.users.lock().remove(&id) {
                    Some(_) => StatusCode::NO_CONTENT.into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                },
                "PATCH" if liar.takes_renames => {
                    if let Some(u) = liar.users.lock().get_mut(&id) {
                        for op in body["Operations"].as_array().into_iter().flatten() {
                            if op["op"] == "replace" && op["path"] == "displayName" {
                                u["displayName"] = op["value"].clone();
                            }
                        }
                    }
                    if helpdesk {
                        StatusCode::FORBIDDEN.into_response()
                    } else {
                        StatusCode::NO_CONTENT.into_response()
                    }
                }
                _ if helpdesk => StatusCode::FORBIDDEN.into_response(),
                _ => StatusCode::NO_CONTENT.into_response(),
            }
        }
        (_, p) if p.starts_with("/scim/v2/Groups/") => {
            let id = percent_decode_str(&p["/scim/v2/Groups/".len()..])
                .decode_utf8_lossy()
                .to_string();
            let mut groups = liar.groups.lock();
            match method.as_str() {
                "GET" => match groups.get(&id) {
                    Some(_) if liar.group_read_as.is_some() => axum::Json(liar.group_read_as.clone()).into_response(),
                    Some(g) if liar.hide_members => {
                        let mut g = g.clone();
                        g.as_object_mut().map(|o| o.remove("members"));
                        axum::Json(g).into_response()
                    }
                    Some(g) => axum::Json(g.clone()).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                },
                "DELETE" => match groups.remove(&id) {
                    Some(_) => StatusCode::NO_CONTENT.into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                },
                // The helpdesk's join takes effect and is answered 403; the admin's are taken.
                "PATCH" => match groups.get_mut(&id) {
                    Some(g) => {
                        patch_group(g, &body);
                        if helpdesk {
                            StatusCode::FORBIDDEN.into_response()
                        } else {
                            StatusCode::NO_CONTENT.into_response()
                        }
                    }
                    None => StatusCode::NOT_FOUND.into_response(),
                },
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One run with the escalation check (and a journey that creates a group) against a liar
/// whose lookup answers `lookup`: the liar, afterwards, and the run's escalation check as
/// `summary.json` has it.
async fn run_against(lookup: Lookup) -> (Arc<Liar>, Value) {
    let (liar, summary, out) = run_liar(lookup, "\"create_user\", \"create_group\", \"delete_user\"").await;
    (liar, escalation_in(&summary, &out))
}

/// One run of a journey of `steps` with the escalation check against a liar whose lookup
/// answers `lookup`: the liar afterwards, `summary.json` (null when none was written), and
/// the process's output.
async fn run_liar(lookup: Lookup, steps: &str) -> (Arc<Liar>, Value, std::process::Output) {
    run_this_liar(Liar::new(lookup), steps).await
}

/// [`run_liar`] against a liar set up by the caller.
async fn run_this_liar(liar: Liar, steps: &str) -> (Arc<Liar>, Value, std::process::Output) {
    let liar = Arc::new(liar);
    let app = Router::new().fallback(answer).with_state(liar.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "admin-token").unwrap();
    let text = format!(
        r#"name = "escalation-liar"
[target]
kind = "scim"
base_url = "{url}/scim/v2"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
duration = "1s"
think_time = "100ms"
[[journey]]
name = "j"
steps = [{steps}]
[checks]
kinds = ["escalation"]
token_url = "{url}/oauth/token"
helpdesk_client = {{ client_id = "helpdesk", client_secret_env = "PB_ESC_HELPDESK" }}
attempts = {attempts}
min_evidence = 1
"#,
        attempts = liar.attempts
    );
    std::fs::write(dir.path().join("w.toml"), &text).unwrap();
    let at = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&at)
            .env("PB_ESC_HELPDESK", "s3cret")
            .args([
                "run",
                "w.toml",
                "--no-progress",
                "--out",
                "results",
                "--cleanup-timeout",
                "5s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let summary: Value = std::fs::read_to_string(dir.path().join("results/summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (liar, summary, out)
}

/// The invariant over every request the liar recorded: no group deleted, replaced or created
/// under the privileged name; every group PATCH adds or removes the run's employee alone.
fn no_group_touched_but_by_the_runs_employee(liar: &Liar) -> Result<(), String> {
    let employee = liar.employee();
    let own_filter = employee
        .as_ref()
        .map(|e| format!("members[value eq {}]", serde_json::to_string(e).unwrap()));
    for (method, target, body) in liar.seen.lock().iter() {
        let path = target.split('?').next().unwrap_or_default();
        let on_a_group = path.starts_with("/scim/v2/Groups/");
        if on_a_group && (method == "DELETE" || method == "PUT") {
            return Err(format!("{method} {target}"));
        }
        if method == "POST" && path == "/scim/v2/Groups" && body["displayName"] == "admins" {
            return Err(format!("a group created under the privileged name: {body}"));
        }
        if on_a_group && method == "PATCH" {
            let employee = employee.as_deref().ok_or(format!("PATCH {target} with no employee"))?;
            for op in body["Operations"].as_array().into_iter().flatten() {
                let kind = op["op"].as_str().unwrap_or_default().to_ascii_lowercase();
                let ok = match kind.as_str() {
                    "add" => op["path"] == "members" && op["value"] == json!([{"value": employee}]),
                    "remove" => op["path"].as_str() == own_filter.as_deref() && op.get("value").is_none(),
                    _ => false,
                };
                if !ok {
                    return Err(format!("PATCH {target} asked more than the run's employee: {op}"));
                }
            }
        }
    }
    Ok(())
}

/// Whether the check's notes say an attempt was not made.
fn said_not_attempted(c: &Value) -> bool {
    c["notes"].as_array().is_some_and(|n| {
        n.iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("not attempted")))
    })
}

fn group(id: &str, name: &str) -> Value {
    json!({"id": id, "displayName": name, "members": [{"value": VICTIM}]})
}

/// The real group found: the helpdesk's join is tried (the liar takes it and answers 403, so
/// the check fails), and the put-back removes the run's employee alone: the group's own admin
/// is still its member, and the group still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_group_is_tried_and_keeps_its_own_members() {
    let (liar, c) = run_against(Lookup::Groups(vec![group(REAL, "Admins")])).await;
    no_group_touched_but_by_the_runs_employee(&liar).unwrap();
    let seen = liar.seen.lock().clone();
    let patches = |removal: bool| {
        seen.iter()
            .filter(|(m, t, b)| {
                m == "PATCH" && t.starts_with("/scim/v2/Groups/") && b.to_string().contains("\"remove\"") == removal
            })
            .count()
    };
    assert!(patches(false) > 0, "the join was tried: {seen:?}");
    assert!(patches(true) > 0, "the join the liar took was put back: {seen:?}");
    assert!(
        c["failed"].as_u64() > Some(0),
        "a join that took effect fails the check: {c}"
    );
    assert!(c["examples"].to_string().contains("join a privileged group"), "{c}");
    assert!(!said_not_attempted(&c), "{c}");
    let groups = liar.groups.lock();
    let real = groups.get(REAL).expect("the real group is still there");
    let members: Vec<&str> = real["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(members, [VICTIM], "only the run's employee left again: {real}");
}

/// No group to try (none of that name, two of it, an id that cannot be one segment, a lookup
/// that fails): the attempt is not made, the check says so, and judges by the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_one_privileged_group_the_attempt_is_not_made_and_said() {
    for lookup in [
        Lookup::Groups(vec![group(REAL, "admins"), group("second", "ADMINS")]),
        Lookup::Groups(vec![group(REAL, "admins-archive")]),
        Lookup::Groups(vec![group("../Users/victim", "admins")]),
        Lookup::Groups(vec![]),
        Lookup::Status(500),
    ] {
        let (liar, c) = run_against(lookup.clone()).await;
        no_group_touched_but_by_the_runs_employee(&liar).unwrap_or_else(|e| panic!("{lookup:?}: {e}"));
        let seen = liar.seen.lock().clone();
        assert!(
            !seen
                .iter()
                .any(|(m, t, _)| m == "PATCH" && t.starts_with("/scim/v2/Groups/")),
            "{lookup:?}: {seen:?}"
        );
        assert!(said_not_attempted(&c), "{lookup:?}: {c}");
        assert!(
            c["passed"].as_u64() > Some(0) && c["failed"] == 0,
            "the other attempts judge: {lookup:?}: {c}"
        );
    }
}

/// A group created before the load (the shared group a journey that adds members first needs)
/// answered as the real group, with a `userName` echoing the run's marker: a group's identity is
/// its `displayName`, so it is not the run's; the run stops before its load and deletes nothing
/// of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_group_answered_as_the_real_one_is_never_recorded_by_another_attribute() {
    let lookup = Lookup::Groups(vec![group(REAL, "admins")]);
    let (liar, summary, out) = run_liar(lookup, "\"create_user\", \"add_to_group\", \"delete_user\"").await;
    let seen = liar.seen.lock().clone();
    assert!(
        seen.iter().any(|(m, t, _)| m == "POST" && t == "/scim/v2/Groups"),
        "the shared group was asked for: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(m, t, _)| m == "DELETE" && t.starts_with("/scim/v2/Groups/")),
        "{seen:?}"
    );
    assert_ne!(summary["outcome"], "passed", "{summary}");
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stderr), summary);
    assert!(said.contains("does not carry the run's marker"), "{said}");
}

/// A generated lookup answer: groups named like the privileged group (in any case), like it but
/// not it, or not at all, with ids safe and hostile.
fn lookups() -> impl Strategy<Value = Vec<Value>> {
    let name = prop_oneof![
        Just("admins"),
        Just("ADMINS"),
        Just("admins "),
        Just("admins-old"),
        Just("staff"),
        Just(""),
    ];
    let id = prop_oneof![
        Just(REAL.to_string()),
        Just("other".to_string()),
        Just("../Groups/x".to_string()),
        Just("%2e%2e".to_string()),
        Just("a/b".to_string()),
        "[a-z0-9-]{1,8}",
    ];
    prop::collection::vec((id, name).prop_map(|(id, name)| group(&id, name)), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn whatever_the_lookup_answers_no_group_is_deleted_or_stripped(found in lookups()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (liar, c) = run_against(Lookup::Groups(found.clone())).await;
            prop_assert!(no_group_touched_but_by_the_runs_employee(&liar).is_ok(), "{:?}", no_group_touched_but_by_the_runs_employee(&liar));
            // Every group the liar had keeps its own admin.
            for (id, g) in liar.groups.lock().iter() {
                prop_assert!(g["members"].to_string().contains(VICTIM), "{id}: {g}");
            }
            let tried = liar.seen.lock().iter().any(|(m, t, _)| m == "PATCH" && t.starts_with("/scim/v2/Groups/"));
            prop_assert!(tried || said_not_attempted(&c), "{c}");
            Ok(())
        })?;
    }
}

/// The escalation check of a run's `summary.json` (`out`: the run, said when there is none).
fn escalation_in(summary: &Value, out: &std::process::Output) -> Value {
    summary["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == "escalation").cloned())
        .unwrap_or_else(|| {
            panic!(
                "no escalation check: {summary}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The escalation check's run against `liar` (a journey that creates users only).
async fn check_of(liar: Liar) -> (Arc<Liar>, Value) {
    let (liar, summary, out) = run_this_liar(liar, "\"create_user\", \"delete_user\"").await;
    (liar, escalation_in(&summary, &out))
}

/// The liar's own admin: a member of the real group, `admin` by role, under its own name.
fn victim() -> Value {
    json!({"id": VICTIM, "userName": "victim@corp.example", "roles": [{"value": "admin"}]})
}

/// The employee's create answered with the run's `userName` under the id of another user,
/// whose reads say who it is: the target's own admin (a member of the real group, `admin` by
/// role), or another of the run's own users (`u2`: the next one created, the check's admin or a
/// journey's). The check neither tries the helpdesk's writes on that user nor "puts back" its
/// `admin` role or its membership of the real privileged group; it fails before any attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employee_answered_under_a_foreign_admins_id_is_neither_tried_nor_put_back() {
    for foreign in [VICTIM, "u2"] {
        let mut liar = Liar::new(Lookup::Groups(vec![group(REAL, "admins")]));
        liar.employee_as = Some(foreign.into());
        liar.users.lock().insert(VICTIM.into(), victim());
        let (liar, c) = check_of(liar).await;
        let seen = liar.seen.lock().clone();
        assert!(
            !seen
                .iter()
                .any(|(m, t, _)| (m == "PATCH" || m == "PUT") && t.starts_with("/scim/v2/Users/")),
            "{foreign}: a user was written to: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|(m, t, _)| m == "PATCH" && t.starts_with("/scim/v2/Groups/")),
            "{foreign}: the real group was written to: {seen:?}"
        );
        let members = liar.groups.lock()[REAL]["members"].clone();
        assert_eq!(
            members,
            json!([{"value": VICTIM}]),
            "{foreign}: the real group lost its admin"
        );
        assert_eq!(c["passed"], 0, "{foreign}: {c}");
        assert!(c["failed"].as_u64() > Some(0), "{foreign}: {c}");
        // Not the run's, or (a journey's user, deleted meanwhile) not there at all.
        assert!(c["examples"].to_string().contains("could not set up"), "{foreign}: {c}");
    }
}

/// An employee id that a `members[value eq "…"]` filter could not name alone on a parser that
/// takes no escapes (a quote, a bracket, a space): the run's employee is not added to the real
/// group it might not be taken out of alone; the check says the attempt was not made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employee_id_no_filter_names_alone_never_joins_the_real_group() {
    for id in [r#"e" or value pr or value eq "x"#, "e]x", "e x"] {
        let mut liar = Liar::new(Lookup::Groups(vec![group(REAL, "admins")]));
        liar.employee_id = Some(id.into());
        let (liar, c) = check_of(liar).await;
        assert_eq!(liar.employee().as_deref(), Some(id), "{c}");
        let seen = liar.seen.lock().clone();
        assert!(
            !seen
                .iter()
                .any(|(m, t, _)| m == "PATCH" && t.starts_with("/scim/v2/Groups/")),
            "{id}: {seen:?}"
        );
        assert!(said_not_attempted(&c), "{id}: {c}");
        assert!(c["passed"].as_u64() > Some(0), "the other attempts judge: {id}: {c}");
    }
}

/// A rename of the run's admin that took effect (behind a 403) fails its attempt, and the admin
/// gets its name back: the later attempts, refused and without effect, pass (an effect is
/// charged to the write that made it, not to every write after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_that_took_effect_is_charged_to_its_own_attempt_alone() {
    let mut liar = Liar::new(Lookup::Status(500));
    liar.takes_renames = true;
    liar.attempts = 8;
    let (_, c) = check_of(liar).await;
    // Attempts 0, 1, 4, 5: refused, no effect; 2 and 6: the rename; 3 and 7: no group to join.
    assert_eq!((c["passed"].as_u64(), c["failed"].as_u64()), (Some(4), Some(2)), "{c}");
}

/// A target that takes the helpdesk's join behind a 403 and reads its groups without their
/// `members` (some targets leave them out of a group's answer): the join's effect was never
/// read, so the attempt is no refusal proven; and the run's employee is not left in the
/// target's real admins group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "open finding: a group read without `members` counts as not joined, so a join taken behind a 403 passes and stays"]
async fn a_join_behind_a_403_on_a_group_read_without_members_is_not_credited() {
    let mut liar = Liar::new(Lookup::Groups(vec![group(REAL, "admins")]));
    liar.hide_members = true;
    let (liar, c) = check_of(liar).await;
    // Attempts 0 to 2 are refused without effect; 3 is the join.
    assert!(c["passed"].as_u64() <= Some(3), "the join was credited as refused: {c}");
    let members = liar.groups.lock()[REAL]["members"].clone();
    assert_eq!(
        members,
        json!([{"value": VICTIM}]),
        "the run's employee stayed in the real group"
    );
}

/// The same create, answered with the run's `userName` under the target's own admin's id
/// (whose reads say who it is): the ledger takes the create's word, but cleanup deletes a user
/// only once a GET of its id shows the marked `userName` it was recorded with (the ownership
/// gate of `requests::owned`), so that admin is left alone and listed as not the run's.
/// (The journeys' own changes are gated the same way: `journey_gate.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_admin_answered_by_a_create_is_not_deleted_at_cleanup() {
    let mut liar = Liar::new(Lookup::Groups(vec![group(REAL, "admins")]));
    liar.employee_as = Some(VICTIM.into());
    liar.users.lock().insert(VICTIM.into(), victim());
    let (liar, _) = check_of(liar).await;
    let seen = liar.seen.lock().clone();
    let on_victim = format!("/scim/v2/Users/{VICTIM}");
    assert!(
        !seen.iter().any(|(m, t, _)| m == "DELETE" && t == &on_victim),
        "the foreign admin was deleted: {seen:?}"
    );
    assert!(liar.users.lock().contains_key(VICTIM));
}

/// The join is taken behind a 403, and the group's reads answer another group (an empty one of
/// another name, under the same id): a read of something else is no evidence that the
/// privileged group was left alone, so the join is never credited as refused, and the join
/// whose effect could not be read is still put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_read_that_answers_another_group_is_no_evidence() {
    let mut liar = Liar::new(Lookup::Groups(vec![group(REAL, "admins")]));
    liar.group_read_as = Some(json!({"id": REAL, "displayName": "staff", "members": []}));
    let (liar, c) = check_of(liar).await;
    assert_eq!(c["passed"], 0, "no read of the privileged group, no pass: {c}");
    assert!(c["examples"].to_string().contains("not named"), "{c}");
    no_group_touched_but_by_the_runs_employee(&liar).unwrap();
    let members = liar.groups.lock()[REAL]["members"].clone();
    assert_eq!(
        members,
        json!([{"value": VICTIM}]),
        "the run's employee stayed in the real group"
    );
}
