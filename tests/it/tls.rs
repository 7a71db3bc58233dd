//! A SCIM target behind TLS with a private CA that requires a client certificate (mutual TLS),
//! on `127.0.0.1:0`: the run passes with `ca_file`, `client_cert` and `client_key`, and fails
//! with the TLS error named without the CA or without the certificate. The PEM files in
//! `tests/fixtures/tls` are test-only (a CA made for these tests; its key was discarded).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

#[derive(Default)]
struct Users {
    next: AtomicU64,
    live: parking_lot::Mutex<std::collections::HashMap<String, Value>>,
    /// The HTTP version of every create.
    versions: parking_lot::Mutex<Vec<axum::http::Version>>,
}

type S = State<Arc<Users>>;

async fn create(State(s): S, version: axum::http::Version, Json(body): Json<Value>) -> impl IntoResponse {
    s.versions.lock().push(version);
    let id = (s.next.fetch_add(1, Ordering::Relaxed) + 1).to_string();
    let user = json!({"id": id, "userName": body["userName"], "active": true});
    s.live.lock().insert(id, user.clone());
    (StatusCode::CREATED, Json(user))
}

async fn get_one(State(s): S, Path(id): Path<String>) -> impl IntoResponse {
    match s.live.lock().get(&id) {
        Some(u) => Json(u.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn remove(State(s): S, Path(id): Path<String>) -> impl IntoResponse {
    s.live.lock().remove(&id);
    StatusCode::NO_CONTENT
}

async fn search() -> impl IntoResponse {
    Json(json!({"totalResults": 0, "Resources": []}))
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client the server refuses is simply not served.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS server whose certificate comes from the private CA and that asks every client for a
/// certificate from it.
async fn start_mtls() -> String {
    start_mtls_with_state().await.0
}

/// As [`start_mtls`], offering HTTP/2 and HTTP/1.1 by ALPN, with the server's state.
async fn start_mtls_with_state() -> (String, Arc<Users>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca = CertificateDer::from_pem_file(format!("{FIXTURES}/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let certs = vec![CertificateDer::from_pem_file(format!("{FIXTURES}/server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/scim/v2", tcp.local_addr().unwrap().port());
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let state = Arc::new(Users::default());
    let app = Router::new()
        .route("/scim/v2/Users", get(search).post(create))
        .route("/scim/v2/Users/{id}", delete(remove).get(get_one))
        .route("/scim/v2/Groups", get(search))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

async fn run(url: &str, tls: &str) -> anyhow::Result<provbench::engine::RunResult> {
    run_with(url, tls, "", "").await
}

/// `load` adds to `[load]`; `tail` comes after the journey.
async fn run_with(url: &str, tls: &str, load: &str, tail: &str) -> anyhow::Result<provbench::engine::RunResult> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"mtls\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\n{tls}\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 2\n{load}[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n{tail}"
    );
    crate::support::run_workload(dir.path(), &text).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_private_ca() {
    let url = start_mtls().await;
    let all = format!(
        "ca_file = \"{FIXTURES}/ca.pem\"\nclient_cert = \"{FIXTURES}/client.pem\"\nclient_key = \"{FIXTURES}/client.key\"\n"
    );
    let r = run(&url, &all).await.unwrap();
    assert_eq!(
        r.summary.outcome,
        provbench::results::RunOutcome::Passed,
        "{:?}",
        r.summary.failures
    );

    for (tls, needle) in [
        (
            format!("client_cert = \"{FIXTURES}/client.pem\"\nclient_key = \"{FIXTURES}/client.key\"\n"),
            "certificate",
        ),
        (format!("ca_file = \"{FIXTURES}/ca.pem\"\n"), "connection"),
    ] {
        // The run's first request (the target's /Schemas) fails with the TLS error named,
        // before any load.
        let e = format!("{:#}", run(&url, &tls).await.err().expect("no run without TLS trust"));
        assert!(
            e.contains("/Schemas") && e.to_lowercase().contains(needle),
            "{tls}: {e}"
        );
    }
}

#[test]
fn tls_settings_are_checked_when_the_workload_loads() {
    let dir = tempfile::tempdir().unwrap();
    for (target, needle) in [
        (
            "base_url = \"http://127.0.0.1:9\"\nca_file = \"ca.pem\"\n",
            "needs an https:// base_url",
        ),
        (
            "base_url = \"https://127.0.0.1:9\"\nca_file = \"missing.pem\"\n",
            "no file",
        ),
        (
            "base_url = \"https://127.0.0.1:9\"\nclient_cert = \"ca.pem\"\n",
            "both `client_cert` and `client_key`",
        ),
    ] {
        std::fs::copy(format!("{FIXTURES}/ca.pem"), dir.path().join("ca.pem")).unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, format!("name = \"t\"\n[target]\nkind = \"scim\"\n{target}[load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n")).unwrap();
        let err = provbench::workload::Workload::load(&path, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle) && err.contains("w.toml:"), "{target}: {err}");
    }
}

/// A linked service behind the same private CA and client-certificate requirement, read by the
/// probes with TLS settings of its own: every create and delete is observed there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_service_behind_mutual_tls() {
    let url = start_mtls().await;
    let files = format!(
        "ca_file = \"{FIXTURES}/ca.pem\"\nclient_cert = \"{FIXTURES}/client.pem\"\nclient_key = \"{FIXTURES}/client.key\"\n"
    );
    let probes = format!(
        "[probes]\nsample = 1.0\nmax_share = 1.0\ntimeout = \"5s\"\nsync = [{{ service = \"mirror\", url = \"{url}/Users/{{id}}\", auth = \"none\", \
         ca_file = \"{FIXTURES}/ca.pem\", client_cert = \"{FIXTURES}/client.pem\", client_key = \"{FIXTURES}/client.key\" }}]\n"
    );
    // Long enough between steps for the probes to see each user before its delete.
    let r = run_with(&url, &files, "think_time = \"400ms\"\n", &probes)
        .await
        .unwrap();
    let s = &r.summary;
    assert_eq!(s.outcome, provbench::results::RunOutcome::Passed, "{:?}", s.failures);
    for op in ["create_user", "delete_user"] {
        let m = s
            .metrics
            .iter()
            .find(|m| m.key().metric == "sync_lag" && m.key().get("op") == Some(op))
            .unwrap_or_else(|| {
                panic!(
                    "sync_lag{{op={op}}}: {:?} {:?}",
                    s.metrics.iter().map(|m| m.key().to_string()).collect::<Vec<_>>(),
                    s.probes
                )
            });
        assert_eq!((m.count, m.timeouts), (2, 0), "{op}");
    }
    // Without its client certificate the service refuses every read: the pre-flight's read
    // fails, and the run stops before the load, naming the service.
    let refused = probes.replace(
        &format!(", client_cert = \"{FIXTURES}/client.pem\", client_key = \"{FIXTURES}/client.key\""),
        "",
    );
    let e = run_with(&url, &files, "think_time = \"400ms\"\n", &refused)
        .await
        .err()
        .expect("a service that refuses every read stops the run");
    let e = format!("{e:#}");
    assert!(e.contains("pre-flight") && e.contains("`mirror`"), "{e}");
}

/// Over TLS the client offers HTTP/2 and the server's choice is used; `http2 = false` keeps
/// HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_where_the_server_offers_it() {
    let files = format!(
        "ca_file = \"{FIXTURES}/ca.pem\"\nclient_cert = \"{FIXTURES}/client.pem\"\nclient_key = \"{FIXTURES}/client.key\"\n"
    );
    for (extra, version) in [
        ("", axum::http::Version::HTTP_2),
        ("http2 = false\n", axum::http::Version::HTTP_11),
    ] {
        let (url, state) = start_mtls_with_state().await;
        let r = run(&url, &format!("{files}{extra}")).await.unwrap();
        assert_eq!(
            r.summary.outcome,
            provbench::results::RunOutcome::Passed,
            "{:?}",
            r.summary.failures
        );
        let seen = state.versions.lock().clone();
        assert!(
            !seen.is_empty() && seen.iter().all(|v| *v == version),
            "{extra}: {seen:?}"
        );
    }
}
