//! The embedded reference provisioning service: a SCIM 2.0 API with OAuth2, an asynchronous
//! provisioning pipeline feeding simulated linked services, downstream effects, fault injection,
//! deliberate flaws and its own ground-truth statistics. `provbench serve` runs it standalone;
//! `provbench run` starts it in-process for embedded targets.
//!
//! # Layout
//! - [`config`]: profiles, TOML overlay, validation. [`distribution`]: delay distributions.
//! - [`store`]: users and groups in memory. [`filter`], [`patch`]: SCIM filter and PATCH.
//! - [`api`]: `/scim/v2/Users` and `/Groups`. [`discovery`]: schemas and configuration.
//! - [`auth`]: tokens and OAuth2 endpoints; [`login`]: the browser sign-in (authorization code
//!   with PKCE, login form, consent, refresh). [`faults`]: injected latency, errors, 429s, stalls.
//! - [`pipeline`]: jobs, workers, the sync to linked services; [`linked`]: what each linked
//!   service holds, indexed by `userName`. [`effects`]: audit log and outbox.
//!   [`retention`]: how long what grows with the run (jobs, entries, tombstones) is kept.
//! - [`observe`]: jobs, linked views, audit, outbox and `/stats` endpoints. [`stats`]: ground truth.

pub mod api;
pub mod auth;
pub mod config;
pub mod discovery;
pub mod distribution;
pub mod effects;
pub mod error;
pub mod faults;
pub mod filter;
pub mod linked;
pub mod login;
pub mod oauth;
pub mod observe;
pub mod patch;
pub mod pipeline;
pub mod retention;
pub mod stats;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use api::Kind;
use config::{ReferenceConfig, Scopes, StaticToken};
use distribution::SeededSource;
use error::ScimError;
use pipeline::Pipeline;

/// Everything a handler can reach.
pub struct AppState {
    pub config: Arc<ReferenceConfig>,
    pub store: store::Store,
    pub auth: auth::Auth,
    /// Browser sign-ins: login sessions, authorization codes, refresh tokens.
    pub logins: login::Logins,
    pub pipeline: Arc<Pipeline>,
    pub faults: faults::Faults,
    pub rng: SeededSource,
    /// `http://host:port`, for job locations.
    pub root_url: String,
    /// `http://host:port/scim/v2`, for `meta.location`.
    pub scim_url: String,
}

impl AppState {
    /// Builds the state and starts the pipeline; both stop taking work when `shutdown` fires.
    pub fn new(config: ReferenceConfig, root_url: &str, shutdown: CancellationToken) -> Arc<AppState> {
        let config = Arc::new(config);
        let scim_url = format!("{root_url}/scim/v2");
        let store = store::Store::new(config.seed, scim_url.clone());
        // One empty group per privileged name, as a real IdP has its admins group: the
        // escalation check tries to join it (and creates none). It carries no run's marker, so
        // no cleanup ever deletes it.
        for name in &config.privileged_groups {
            let _ = store.create_group(serde_json::json!({ "displayName": name }), &|_, _| Ok(()));
        }
        Arc::new(AppState {
            store,
            auth: auth::Auth::new(&config),
            logins: login::Logins::default(),
            pipeline: Pipeline::start(config.clone(), shutdown),
            faults: faults::Faults::new(config.faults.clone()),
            rng: SeededSource::new(config.seed),
            root_url: root_url.to_string(),
            scim_url,
            config,
        })
    }
}

async fn not_found() -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, None, "no such endpoint")
}

async fn method_not_allowed() -> ScimError {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "method not allowed on this endpoint",
    )
}

/// The whole HTTP surface. Faults apply to the SCIM API and the token endpoint only, so that
/// observers (jobs, linked views, stats) see the truth undisturbed.
pub fn router(state: Arc<AppState>) -> Router {
    let resources = |kind: Kind| {
        Router::new()
            .route(
                "/",
                get(move |s, q, h| api::list(s, kind, q, h)).post(move |s, h, b| api::create(s, kind, h, b)),
            )
            .route("/.search", post(move |s, h, b| api::search(s, Some(kind), h, b)))
            .route(
                "/{id}",
                get(move |s, p, q, h| api::get_one(s, kind, p, q, h))
                    .put(move |s, p, h, b| api::replace(s, kind, p, h, b))
                    .patch(move |s, p, h, b| api::patch(s, kind, p, h, b))
                    .delete(move |s, p, h| api::delete(s, kind, p, h)),
            )
    };
    let scim = Router::new()
        .nest("/Users", resources(Kind::Users))
        .nest("/Groups", resources(Kind::Groups))
        .route("/.search", post(|s, h, b| api::search(s, None, h, b)))
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/ResourceTypes", get(discovery::resource_type_list))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schema_list))
        .route("/Schemas/{id}", get(discovery::schema_by_id));
    let faulty = Router::new()
        .nest("/scim/v2", scim)
        .route("/oauth/token", post(auth::token_endpoint))
        .route("/oauth/userinfo", get(auth::userinfo))
        .route("/oauth/authorize", get(login::authorize))
        .route("/oauth/login", post(login::login))
        .route("/oauth/consent", post(login::consent))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), faults::inject));
    Router::new()
        .merge(faulty)
        .route("/jobs/{id}", get(observe::job))
        .route("/linked/{service}/Users", get(observe::linked_list))
        .route("/linked/{service}/Users/{id}", get(observe::linked_user))
        .route("/linked/{service}/me", get(observe::linked_me))
        .route("/audit", get(observe::audit))
        .route("/outbox", get(observe::outbox))
        .route("/stats", get(observe::stats).delete(observe::reset_stats))
        .route("/healthz", get(|| async { "ok" }))
        .route("/.well-known/openid-configuration", get(oauth::openid_configuration))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A reference service running in this process (for `provbench run` and the tests).
pub struct RunningReference {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// A full-admin static token valid for this instance.
    pub admin_token: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningReference {
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn scim_url(&self) -> String {
        format!("http://{}/scim/v2", self.addr)
    }
    /// Stops accepting requests and jobs, and waits for the server to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Generates a token for `--admin-token` when none is given.
pub fn generate_token() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Binds `listener`, serves until `shutdown` fires. `admin_token` is accepted as a full-admin
/// static bearer token.
pub async fn start(
    listener: TcpListener,
    mut config: ReferenceConfig,
    admin_token: String,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningReference> {
    config.static_tokens.push(StaticToken {
        name: "admin".into(),
        token: admin_token.clone(),
        scopes: Scopes::FULL,
    });
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config, &format!("http://{addr}"), shutdown.clone());
    let sweeper = state.clone();
    let stop_sweeping = shutdown.clone();
    tokio::spawn(async move {
        // Every second what is past the retention window goes even without writes; tokens
        // and login sessions every 30 s (a scan of each, so not per request).
        let mut tick = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop_sweeping.cancelled() => return,
            }
            sweeper.pipeline.sweep(tokio::time::Instant::now());
            tick += 1;
            if tick.is_multiple_of(30) {
                sweeper.auth.sweep();
                sweeper.logins.sweep();
            }
        }
    });
    let app = router(state.clone());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok(RunningReference {
        addr,
        state,
        admin_token,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod tests;
