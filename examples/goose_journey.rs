//! A plain goose load test of one SCIM journey, which exists only as the goose side of
//! `benches/vs_goose.py` (provbench beside goose and Locust, CPU per journey). It is not part of
//! provbench and carries none of its safety machinery: run it only against a loopback target the
//! bench started.
//!
//! Each iteration is one journey, with the bodies provbench's bench workload sends: POST /Users
//! (the create's `id` read from its answer), GET /Users/{id} (provbench reads a created user
//! once before its first change: its ownership gate), PATCH replace `title`, PATCH `active`
//! false, DELETE /Users/{id}. Every answer body is read whole, so a keep-alive connection goes back to its pool.
//! Goose's own options set the load (the bench passes `--host`, `-u`, `-r`, `--iterations` and
//! `--throttle-requests` for the rate, so the test stops by itself); the environment sets the
//! rest:
//!
//! - `SCIM_TOKEN`: the bearer token;
//! - `JOURNEY_CONNECTION_CLOSE=1`: a connection per request (`pool_max_idle_per_host(0)` and
//!   `Connection: close`), for servers that close every connection;
//! - `JOURNEY_RUN`: the marker in user names (default `gb-bench`).
//!
//! It ends with one line on stdout, `journey-bench {"journeys":N,"errors":E}`: journeys whose four
//! answers were 2xx, and journeys that failed (a status, a connection error, no `id`).
//!
//! ```text
//! SCIM_TOKEN=t cargo run --release --example goose_journey -- \
//!     --host http://127.0.0.1:8080/scim/v2/ -u 20 -r 1000 --iterations 100 --throttle-requests 800 -q
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use goose::prelude::*;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;

const SCIM_JSON: &str = "application/scim+json";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// What the environment says, read once.
struct Settings {
    token: String,
    close: bool,
    run: String,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(1);
/// Counted here, not from goose's metrics, which are reset once every user has started.
static DONE: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings {
        token: std::env::var("SCIM_TOKEN").unwrap_or_default(),
        close: std::env::var("JOURNEY_CONNECTION_CLOSE").is_ok_and(|v| v == "1"),
        run: std::env::var("JOURNEY_RUN").unwrap_or_else(|_| "gb-bench".into()),
    })
}

/// Each user's client: the bearer token and SCIM media types on every request; no pooled
/// connection when asked for a connection per request.
async fn client(user: &mut GooseUser) -> TransactionResult {
    let s = settings();
    let mut headers = HeaderMap::new();
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", s.token)).map_err(|e| e.to_string())?;
    auth.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, auth);
    headers.insert(header::ACCEPT, HeaderValue::from_static(SCIM_JSON));
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    if s.close {
        builder = builder.pool_max_idle_per_host(0);
    }
    user.set_client_builder(builder).await?;
    Ok(())
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// One request of the journey, named as goose's metrics show it; the whole answer is read.
async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    body: Option<String>,
) -> Result<bytes::Bytes, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?;
    if let Some(b) = body {
        builder = builder.header(header::CONTENT_TYPE, SCIM_JSON).body(b);
    }
    if settings().close {
        builder = builder.header(header::CONNECTION, "close");
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(builder)
        .build();
    let answer = user.request(request).await?;
    let response = answer.response?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!("{name}: HTTP {status}").into());
    }
    Ok(body)
}

/// One journey, counted as done or failed.
async fn journey(user: &mut GooseUser) -> TransactionResult {
    let end = steps(user).await;
    match end {
        Ok(()) => DONE.fetch_add(1, Ordering::Relaxed),
        Err(_) => FAILED.fetch_add(1, Ordering::Relaxed),
    };
    end
}

/// The journey's requests: create, read, modify, disable, delete.
async fn steps(user: &mut GooseUser) -> TransactionResult {
    let s = settings();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}-{seq}@example.test", s.run);
    let create = serde_json::json!({
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": format!("{}-{seq}", s.run),
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [{"value": name, "type": "work", "primary": true}],
        "active": true,
    });
    let answer = send(
        user,
        GooseMethod::Post,
        "Users",
        "POST /Users",
        Some(create.to_string()),
    )
    .await?;
    let id = serde_json::from_slice::<Created>(&answer)
        .map_err(|e| format!("POST /Users: no id in the answer: {e}"))?
        .id;
    let path = format!("Users/{id}");
    send(user, GooseMethod::Get, &path, "GET /Users/{id}", None).await?;
    let modify = serde_json::json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": format!("Title {seq}")}],
    });
    send(
        user,
        GooseMethod::Patch,
        &path,
        "PATCH /Users/{id}",
        Some(modify.to_string()),
    )
    .await?;
    let disable = serde_json::json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    send(
        user,
        GooseMethod::Patch,
        &path,
        "PATCH /Users/{id}",
        Some(disable.to_string()),
    )
    .await?;
    send(user, GooseMethod::Delete, &path, "DELETE /Users/{id}", None).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(
            scenario!("journey")
                .register_transaction(transaction!(client).set_on_start())
                .register_transaction(transaction!(journey).set_name("journey")),
        )
        .execute()
        .await?;
    let (done, failed) = (DONE.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed));
    println!(
        "journey-bench {}",
        serde_json::json!({"journeys": done, "errors": failed})
    );
    Ok(())
}
