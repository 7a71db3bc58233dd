//! Shared helpers: an in-process reference service on `127.0.0.1:0` with an HTTP client.

use provbench::reference::{self, RunningReference, config::ReferenceConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Installs, once per test process, the log filter `provbench` installs (its default
/// directives), writing through the test harness's capture: shown for a failing test only.
/// Call it before any in-process run: goose sets its own unfiltered logger as the `log` crate's
/// global one at its first run unless one is already set, and that one would print every
/// dependency's error lines (a rejected TLS certificate a test expects) to the terminal.
pub fn logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                provbench::logging::default_directives(false, false),
            ))
            .with_ansi(false)
            .with_test_writer()
            .try_init();
    });
}

/// Writes `text` to `dir/w.toml`, loads it and runs it in-process (results in `dir/results`).
pub async fn run_workload(dir: &std::path::Path, text: &str) -> anyhow::Result<provbench::engine::RunResult> {
    logs();
    let path = dir.join("w.toml");
    std::fs::write(&path, text).unwrap();
    let w = provbench::workload::Workload::load(&path, &Default::default())?;
    provbench::engine::run(
        provbench::engine::RunOptions {
            out: Some(dir.join("results")),
            cleanup_timeout: std::time::Duration::from_secs(10),
            ..provbench::engine::RunOptions::new(w)
        },
        CancellationToken::new(),
    )
    .await
}

pub struct Reference {
    pub running: RunningReference,
    pub root: String,
    pub scim: String,
    pub token: String,
    pub http: reqwest::Client,
}

pub async fn start_reference(config: ReferenceConfig) -> Reference {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = reference::start(listener, config, "it-admin".into(), CancellationToken::new())
        .await
        .unwrap();
    Reference {
        root: running.root_url(),
        scim: running.scim_url(),
        token: running.admin_token.clone(),
        http: reqwest::Client::new(),
        running,
    }
}

impl Reference {
    pub async fn post_scim(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.scim))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_scim(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .patch(format!("{}{path}", self.scim))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_scim(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.scim))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// GET on the service root (not the SCIM base), with the admin token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.root))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// A webhook receiver on `127.0.0.1:0`: its URL, and the JSON bodies posted to it.
pub async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::{Json, Router, routing::post};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = Router::new().route(
        "/hook",
        post(move |Json(v): Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// Tests that load both cores for seconds (a directory pair and its replication under load) hold
/// it to write; tests whose figures such a neighbour would skew (latencies or lags compared with
/// a ground truth or with themselves) hold it to read. Measuring tests still run side by side, as
/// they always have, but never beside a heavy one. A tokio lock: held across awaits, shared by
/// every test's runtime, and never poisoned by a failing test.
static HEAVY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// For a test that loads both cores (not from inside a runtime).
pub fn loads_both_cores() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    HEAVY.blocking_write()
}

/// For an async test whose figures a heavy neighbour would skew.
pub async fn measuring() -> tokio::sync::RwLockReadGuard<'static, ()> {
    HEAVY.read().await
}

/// A SCIM user as the lying and counting test servers answer it: its id and userName, no more.
pub fn scim_user(id: &str, name: &str) -> Value {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": name})
}

/// A SCIM ListResponse of `items`, all on one page.
pub fn scim_list(items: Vec<Value>) -> axum::Json<Value> {
    axum::Json(
        serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": items.len(), "startIndex": 1, "itemsPerPage": items.len(), "Resources": items}),
    )
}
