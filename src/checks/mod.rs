//! Checks: proofs that the provisioning chain works, run during the load in tasks of their own.
//! Per sampled user: `login` (password grant, then userinfo; `login_latency`, `login_ready_lag`),
//! `permissions` (the user's effective permissions in each linked service after a role change),
//! `audit` and `welcome` (downstream records), `revocation` (after disable or delete the user
//! cannot log in and a token issued before stops working in every service; `revocation_lag`).
//! Over the run: `authorization` (calls without a valid token are refused and change nothing)
//! and `escalation` (a limited admin cannot grant `admin`, change an admin, or join a privileged
//! group). Each check counts passes and failures with examples; a declared check that never ran
//! is an error.
//!
//! # Layout
//! - [`security`]: the run-wide authorization and escalation checks.
//! - [`ldap`]: login and revocation as LDAP binds in each directory (`ldap-bind`).
//! - [`browser`], [`form`]: the authorization code flow through an IdP's login pages.
//! - [`login_nav`]: where that sign-in may go (the IdP origins only), its redirects and cookies.

pub mod browser;
pub mod form;
pub mod ldap;
pub mod login_nav;
pub mod security;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::HttpClient;
use crate::ledger::{Ledger, RunId};
use crate::metrics::{ErrorKind, MetricKey, Registry, SeriesId};
use crate::results::{ChangeCases, CheckReport, Example};
use crate::vocab::{CheckKind, Op, metric, tag};
use crate::workload::checks::Checks;

struct Tally {
    kind: CheckKind,
    passed: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    examples: Mutex<Vec<Example>>,
    /// What the check did not attempt, and why (each said once).
    notes: Mutex<Vec<String>>,
    /// Per kind of change (revocation after a disable, after a delete): its own cases.
    by_change: Mutex<std::collections::BTreeMap<String, ChangeCases>>,
}

/// How one case of a check ended, for [`CheckHub::case`].
#[derive(Clone, Copy)]
enum Case {
    Passed,
    Failed,
    Overtaken,
}

const MAX_EXAMPLES: usize = 5;

/// A created user the checks follow.
#[derive(Clone)]
pub struct CheckedUser {
    pub id: String,
    pub user_name: String,
    pub password: Option<String>,
}

pub struct CheckHub {
    cfg: Checks,
    /// The target's HTTP client (`None` for a directory target: only bind checks run there).
    client: Option<Arc<HttpClient>>,
    /// The target's credentials anywhere on its origin, for the audit and outbox URLs the
    /// workload names there (outside the SCIM base the target's own client is limited to).
    origin_client: Option<Arc<HttpClient>>,
    /// For requests the checks form whole (tokens, userinfo, login pages): follows no redirect.
    http: reqwest::Client,
    registry: Arc<Registry>,
    /// Every request and bind the checks sent: what judging cost, reported beside the load's.
    requests: AtomicU64,
    run_id: RunId,
    tallies: Vec<Tally>,
    login_latency: SeriesId,
    login_ready: SeriesId,
    /// `login_ready_lag{service}` per directory (`ldap-bind`).
    login_ready_in: HashMap<String, SeriesId>,
    /// When each user was last enabled: a revocation not yet seen then was overtaken.
    enabled: DashMap<String, Instant>,
    audit_lag: SeriesId,
    revocation: HashMap<String, SeriesId>,
    /// A token per user, issued at its first login: revocation checks use it after the change.
    tokens: DashMap<String, String>,
    /// Users whose journey disabled or deleted them: a permissions check that then sees the
    /// user's access gone was overtaken, not failed.
    revoked_users: DashMap<String, ()>,
    /// (user id, directory) where a bind as the user was accepted: a refusal there is evidence
    /// of a revocation only after the user was seen able to bind.
    bindable: DashMap<(String, String), ()>,
    /// When a journey's delete of each user began: a refusal seen after a later delete belongs
    /// to the delete, not to the disable before it.
    deleting: DashMap<String, Instant>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    created: Ledger,
}

const MAX_PENDING: usize = 10_000;

impl CheckHub {
    /// One request (or bind) of a check is about to go.
    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `request`, counted as one of the checks' requests.
    fn counted<F: std::future::Future>(&self, request: F) -> F {
        self.count_request();
        request
    }

    /// The requests and binds the checks sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The longest answer body a check reads (tokens, userinfo, login pages): the target's.
    pub(crate) fn body_limit(&self) -> usize {
        self.client
            .as_ref()
            .map_or(crate::http::body::DEFAULT_LIMIT, |c| c.body_limit())
    }

    pub fn new(
        cfg: Checks,
        client: Option<Arc<HttpClient>>,
        registry: Arc<Registry>,
        run_id: &RunId,
        created: Ledger,
        stop: CancellationToken,
    ) -> anyhow::Result<CheckHub> {
        let origin_client = match &client {
            Some(c) if cfg.has(CheckKind::Audit) || cfg.has(CheckKind::Welcome) => Some(Arc::new(c.on_whole_origin()?)),
            _ => None,
        };
        let tallies = cfg
            .kinds
            .iter()
            .map(|k| Tally {
                kind: *k,
                passed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                examples: Mutex::new(Vec::new()),
                notes: Mutex::new(Vec::new()),
                by_change: Mutex::new(Default::default()),
            })
            .collect();
        let directories: Vec<String> = match &cfg.login_flow {
            crate::workload::login::LoginFlow::LdapBind(d) => d.iter().map(|d| d.name.clone()).collect(),
            _ => Vec::new(),
        };
        let login_ready_in = directories
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    registry.series(MetricKey::new(metric::LOGIN_READY_LAG).tag(tag::SERVICE, d)),
                )
            })
            .collect();
        let revocation = cfg
            .services
            .iter()
            .chain(&directories)
            .map(|s| {
                (
                    s.clone(),
                    registry.series(MetricKey::new(metric::REVOCATION_LAG).tag(tag::SERVICE, s)),
                )
            })
            .collect();
        Ok(CheckHub {
            login_latency: registry.series(MetricKey::new(metric::LOGIN_LATENCY)),
            login_ready: registry.series(MetricKey::new(metric::LOGIN_READY_LAG)),
            login_ready_in,
            enabled: DashMap::new(),
            audit_lag: registry.series(MetricKey::new(metric::AUDIT_LAG)),
            revocation,
            tallies,
            // Follows nothing by itself: the sign-in stops at the redirect to redirect_uri.
            http: crate::http::bare(Duration::from_secs(10)),
            client,
            origin_client,
            requests: AtomicU64::new(0),
            registry,
            run_id: run_id.clone(),
            tokens: DashMap::new(),
            revoked_users: DashMap::new(),
            bindable: DashMap::new(),
            deleting: DashMap::new(),
            permits: Arc::new(Semaphore::new(MAX_PENDING)),
            stop,
            created,
            cfg,
        })
    }

    pub fn sampled(&self, draw: f64) -> bool {
        draw < self.cfg.sample
    }

    fn tally(&self, kind: CheckKind) -> Option<&Tally> {
        self.tallies.iter().find(|t| t.kind == kind)
    }

    fn pass(&self, kind: CheckKind) {
        if let Some(t) = self.tally(kind) {
            t.passed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn fail(&self, kind: CheckKind, user: Option<&str>, service: Option<&str>, detail: impl Into<String>) {
        if let Some(t) = self.tally(kind) {
            t.failed.fetch_add(1, Ordering::Relaxed);
            let mut ex = t.examples.lock();
            if ex.len() < MAX_EXAMPLES {
                ex.push(Example {
                    user: user.map(str::to_string),
                    service: service.map(str::to_string),
                    detail: detail.into(),
                });
            }
        }
    }

    /// Something the check did not attempt, and why: shown beside its verdict, never a case
    /// (it is neither passed, nor failed, nor overtaken).
    fn note(&self, kind: CheckKind, text: impl Into<String>) {
        if let Some(t) = self.tally(kind) {
            let text = text.into();
            let mut notes = t.notes.lock();
            if notes.len() < MAX_EXAMPLES && !notes.contains(&text) {
                notes.push(text);
            }
        }
    }

    fn skip(&self, kind: CheckKind) {
        if let Some(t) = self.tally(kind) {
            t.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One revocation case after `change` (`disable_user`, `delete_user`): counted in the check
    /// and in that change's own cases, which must carry the evidence rule each on their own.
    fn revocation_case(&self, change: Op, case: Case, user: &str, service: Option<&str>, detail: String) {
        let kind = CheckKind::Revocation;
        match case {
            Case::Passed => self.pass(kind),
            Case::Failed => self.fail(kind, Some(user), service, detail),
            Case::Overtaken => self.skip(kind),
        }
        if let Some(t) = self.tally(kind) {
            let mut by_change = t.by_change.lock();
            let c = by_change.entry(change.as_str().to_string()).or_default();
            match case {
                Case::Passed => c.passed += 1,
                Case::Failed => c.failed += 1,
                Case::Overtaken => c.overtaken += 1,
            }
        }
    }

    /// `template` with the user's `{id}` as one percent-encoded segment (threat-model
    /// invariant 1: the id is the target's answer) and `{service}` filled; an origin-relative
    /// template stays relative. An id that cannot be one segment is the reason no request is
    /// sent for it.
    fn fill(template: &str, user_id: &str, service: &str) -> Result<String, String> {
        let filled = if template.contains("{id}") {
            let id = crate::http::url::segment(user_id)
                .map_err(|e| format!("the id the target answered cannot name the user in a URL: {e}"))?;
            template.replace("{id}", id.as_str())
        } else {
            template.to_string()
        };
        Ok(filled.replace("{service}", service))
    }

    /// [`CheckHub::fill`], made absolute on the target's origin.
    fn user_url(&self, template: &str, user_id: &str, service: &str) -> Result<String, String> {
        Ok(self.absolute(Self::fill(template, user_id, service)?))
    }

    /// A template the browser sign-in fills, with no value from an answer: it passes no user
    /// id, so `{id}` stays empty. Every URL naming a user goes through [`CheckHub::user_url`].
    fn url(&self, template: &str, user_id: &str, service: &str) -> String {
        match self.user_url(template, user_id, service) {
            Ok(url) => url,
            Err(_) => self.absolute(template.replace("{id}", "").replace("{service}", service)),
        }
    }

    fn absolute(&self, filled: String) -> String {
        if filled.starts_with('/') {
            format!("{}{filled}", self.client.as_ref().map_or("", |c| c.origin()))
        } else {
            filled
        }
    }

    fn spawn(self: &Arc<Self>, task: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            tokio::spawn(async move {
                task.await;
                drop(permit);
            });
        }
    }

    /// Sleeps `d` unless the checks are stopped; false when stopped.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// One password grant: the token, or the status that refused it.
    async fn login_once(&self, user: &CheckedUser) -> Result<String, String> {
        let Some(password) = &user.password else {
            return Err("no password".into());
        };
        if let crate::workload::login::LoginFlow::AuthorizationCode(flow) = &self.cfg.login_flow {
            let started = Instant::now();
            let signed_in = self.browser_login(flow, &user.user_name, password).await;
            let micros = started.elapsed().as_micros() as u64;
            // A refused sign-in is an attempt that failed, never a latency sample of success.
            match &signed_in {
                Ok(_) => self.registry.record(self.login_latency, micros),
                Err(_) => self
                    .registry
                    .record_error(self.login_latency, ErrorKind::Status, micros),
            }
            return signed_in;
        }
        let secret = match &self.cfg.login_client {
            Some(c) => Some(c.secret.resolve().map_err(|e| e.to_string())?),
            None => None,
        };
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user.user_name.as_str()),
            ("password", password.as_str()),
        ];
        if let Some(s) = &self.cfg.login_scope {
            form.push(("scope", s.as_str()));
        }
        let mut request = self.http.post(self.user_url(&self.cfg.token_url, &user.id, "")?);
        if let (Some(c), Some(s)) = (&self.cfg.login_client, &secret) {
            request = security::authenticated(request, &mut form, c, s);
        }
        let started = Instant::now();
        self.count_request();
        let sent = request.form(&form).send().await;
        let micros = started.elapsed().as_micros() as u64;
        match sent {
            Ok(r) => {
                let status = r.status();
                // An answer past the limit is the login's error (with a sample), never held;
                // one that is not JSON carries no token.
                let body = match crate::http::body::read(r, self.body_limit().min(login_nav::PAGE_LIMIT)).await {
                    Ok(b) => b,
                    Err(e) => {
                        self.registry.record_error(self.login_latency, e.kind, micros);
                        return Err(format!("HTTP {}: {e}", status.as_u16()));
                    }
                };
                let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                match body["access_token"].as_str() {
                    Some(t) if status.is_success() => {
                        self.registry.record(self.login_latency, micros);
                        Ok(t.to_string())
                    }
                    // A refused login is a failed attempt, with its cause.
                    _ => {
                        self.registry
                            .record_error(self.login_latency, ErrorKind::Status, micros);
                        Err(format!(
                            "HTTP {}: {}{}",
                            status.as_u16(),
                            body["error"].as_str().unwrap_or("no token"),
                            body["error_description"]
                                .as_str()
                                .map(|d| format!(" ({})", crate::redact::sample(d, 160)))
                                .unwrap_or_default()
                        ))
                    }
                }
            }
            Err(e) => {
                self.registry
                    .record_error(self.login_latency, ErrorKind::Connection, micros);
                Err(e.to_string())
            }
        }
    }

    /// After a create: login (and userinfo), audit entry, welcome message.
    pub fn created(self: &Arc<Self>, user: CheckedUser, acked: Instant) {
        if !self.directories().is_empty() {
            if self.cfg.has(CheckKind::Login) || self.cfg.has(CheckKind::Revocation) {
                let me = self.clone();
                self.spawn(async move { me.check_bind_login(user, acked).await });
            }
            return;
        }
        if self.cfg.has(CheckKind::Login) || self.cfg.has(CheckKind::Revocation) || self.cfg.has(CheckKind::Permissions)
        {
            let (me, u) = (self.clone(), user.clone());
            self.spawn(async move { me.check_login(u, acked).await });
        }
        if self.cfg.has(CheckKind::Audit) {
            let (me, u) = (self.clone(), user.clone());
            self.spawn(async move { me.check_record(CheckKind::Audit, u, acked).await });
        }
        if self.cfg.has(CheckKind::Welcome) {
            let (me, u) = (self.clone(), user);
            self.spawn(async move { me.check_record(CheckKind::Welcome, u, acked).await });
        }
    }

    async fn check_login(self: Arc<Self>, user: CheckedUser, acked: Instant) {
        let deadline = acked + self.cfg.timeout;
        let mut wait = Duration::from_millis(20);
        let mut last;
        loop {
            match self.login_once(&user).await {
                Ok(token) => {
                    self.registry
                        .record(self.login_ready, acked.elapsed().as_micros() as u64);
                    if let Some(u) = &self.cfg.userinfo_url {
                        let url = match self.user_url(u, &user.id, "") {
                            Ok(url) => url,
                            Err(why) => {
                                self.fail(
                                    CheckKind::Login,
                                    Some(&user.user_name),
                                    None,
                                    format!("userinfo: {why}"),
                                );
                                return;
                            }
                        };
                        self.count_request();
                        let info = self.http.get(url).bearer_auth(&token).send().await;
                        match info {
                            Ok(r) if r.status().is_success() => {}
                            // Disabled by its journey in between: overtaken, not failed.
                            Ok(_)
                                if self.revoked_users.contains_key(&user.id) || !self.still_active(&user.id).await =>
                            {
                                self.skip(CheckKind::Login);
                                return;
                            }
                            Ok(r) => {
                                self.fail(
                                    CheckKind::Login,
                                    Some(&user.user_name),
                                    None,
                                    format!("userinfo answered HTTP {}", r.status().as_u16()),
                                );
                                return;
                            }
                            Err(e) => {
                                self.fail(
                                    CheckKind::Login,
                                    Some(&user.user_name),
                                    None,
                                    format!("userinfo failed: {e}"),
                                );
                                return;
                            }
                        }
                    }
                    self.tokens.insert(user.id.clone(), token);
                    self.pass(CheckKind::Login);
                    return;
                }
                Err(e) => last = e,
            }
            if let Some(why) = never_passes(&last) {
                // The client or the flow, not the user, is refused: waiting will not change it.
                self.fail(
                    CheckKind::Login,
                    Some(&user.user_name),
                    None,
                    format!("{} ({last}); {why}", refused_by(&last)),
                );
                return;
            }
            if self.revoked_users.contains_key(&user.id) {
                // The journey disabled or deleted the user before it could log in.
                self.skip(CheckKind::Login);
                return;
            }
            if Instant::now() + wait > deadline {
                let bound = self.cfg.timeout.as_micros() as u64;
                self.registry
                    .record_observation(self.login_ready, bound, wait.as_micros() as u64, true);
                self.fail(
                    CheckKind::Login,
                    Some(&user.user_name),
                    None,
                    format!("no successful login within {:?} ({last})", self.cfg.timeout),
                );
                return;
            }
            if !self.pause(wait).await {
                return;
            }
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// Audit entry (`create_user` by a known actor, exactly once) or welcome message (once).
    async fn check_record(self: Arc<Self>, kind: CheckKind, user: CheckedUser, acked: Instant) {
        let (template, field) = match kind {
            CheckKind::Audit => (self.cfg.audit_url.clone(), "entries"),
            _ => (self.cfg.outbox_url.clone(), "messages"),
        };
        let Some(template) = template else { return };
        let url = match Self::fill(&template, &user.id, "") {
            Ok(url) => url,
            Err(why) => {
                self.fail(kind, Some(&user.user_name), None, why);
                return;
            }
        };
        let deadline = acked + self.cfg.timeout;
        let mut wait = Duration::from_millis(20);
        loop {
            if let Some(client) = &self.origin_client
                && let Ok(reply) = self.counted(client.call(Method::GET, &url, None)).await
                && reply.status.is_success()
            {
                let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                let items: Vec<&Value> = v[field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|e| {
                                kind != CheckKind::Audit
                                    || (e["action"] == crate::vocab::Op::CreateUser.as_str()
                                        && e["target"] == user.id.as_str())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match items.len() {
                    0 => {}
                    1 => {
                        if kind == CheckKind::Audit {
                            self.registry.record(self.audit_lag, acked.elapsed().as_micros() as u64);
                            if items[0]["actor"].as_str().is_none_or(str::is_empty) {
                                self.fail(
                                    CheckKind::Audit,
                                    Some(&user.user_name),
                                    None,
                                    "audit entry without an actor",
                                );
                                return;
                            }
                        }
                        self.pass(kind);
                        return;
                    }
                    n => {
                        self.fail(
                            kind,
                            Some(&user.user_name),
                            None,
                            format!("{n} {field} for one created user"),
                        );
                        return;
                    }
                }
            }
            if Instant::now() + wait > deadline {
                if kind == CheckKind::Audit {
                    let bound = self.cfg.timeout.as_micros() as u64;
                    self.registry
                        .record_observation(self.audit_lag, bound, wait.as_micros() as u64, true);
                }
                let what = if kind == CheckKind::Audit {
                    "audit entry"
                } else {
                    "welcome message"
                };
                self.fail(
                    kind,
                    Some(&user.user_name),
                    None,
                    format!("no {what} within {:?}", self.cfg.timeout),
                );
                return;
            }
            if !self.pause(wait).await {
                return;
            }
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// A token for the user: the stored one, or a fresh login (waiting out sync) within the bound.
    async fn token_for(&self, user: &CheckedUser, deadline: Instant) -> Option<String> {
        loop {
            if let Some(t) = self.tokens.get(&user.id) {
                return Some(t.clone());
            }
            if let Ok(t) = self.login_once(user).await {
                self.tokens.insert(user.id.clone(), t.clone());
                return Some(t);
            }
            if Instant::now() + Duration::from_millis(100) > deadline || !self.pause(Duration::from_millis(100)).await {
                return None;
            }
        }
    }

    /// After `assign_role`: each service shows at least the role's permissions, and no admin
    /// permission the role does not give.
    pub fn role_assigned(self: &Arc<Self>, user: CheckedUser, role: String, acked: Instant) {
        if !self.cfg.has(CheckKind::Permissions) {
            return;
        }
        let me = self.clone();
        self.spawn(async move {
            let deadline = acked + me.cfg.timeout;
            let Some(token) = me.token_for(&user, deadline).await else {
                me.skip(CheckKind::Permissions);
                return;
            };
            let Some(expected) = me.cfg.roles.get(&role) else {
                me.skip(CheckKind::Permissions);
                return;
            };
            let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            for service in &me.cfg.services {
                let url = match me.user_url(&me.cfg.me_url, &user.id, service) {
                    Ok(url) => url,
                    Err(why) => {
                        me.fail(CheckKind::Permissions, Some(&user.user_name), Some(service), why);
                        return;
                    }
                };
                let mut last = String::from("no answer");
                let mut wait = Duration::from_millis(5);
                let ok = loop {
                    me.count_request();
                    if let Ok(r) = me.http.get(&url).bearer_auth(&token).send().await {
                        let status = r.status();
                        if !status.is_success() && me.revoked_users.contains_key(&user.id) {
                            // The journey disabled or deleted the user before this service caught up.
                            me.skip(CheckKind::Permissions);
                            return;
                        }
                        let v: Value = match crate::http::body::read(r, me.body_limit()).await {
                            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
                            // Past the limit: the service's answer is an error, not a wait.
                            Err(e) => break Err(format!("HTTP {}: {e}", status.as_u16())),
                        };
                        let perms: BTreeSet<&str> = v["permissions"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        if status.is_success() && expected.is_subset(&perms) {
                            if role != "admin" && perms.contains("users:admin") {
                                break Err(format!("holds users:admin without the admin role ({perms:?})"));
                            }
                            break Ok(());
                        }
                        last = format!("HTTP {}: {perms:?}", status.as_u16());
                    }
                    if Instant::now() > deadline || !me.pause(wait).await {
                        break Err(format!(
                            "role `{role}` not reflected within {:?}: {last}",
                            me.cfg.timeout
                        ));
                    }
                    wait = wait.mul_f64(1.5).min(Duration::from_millis(250));
                };
                if let Err(detail) = ok {
                    me.fail(CheckKind::Permissions, Some(&user.user_name), Some(service), detail);
                    return;
                }
            }
            me.pass(CheckKind::Permissions);
        });
    }

    /// After `disable_user` or `delete_user`: logins fail, and the token issued before stops
    /// working in every linked service (`revocation_lag{service}`, timeouts at the bound).
    pub fn revoked(self: &Arc<Self>, user: CheckedUser, change: Op, acked: Instant) {
        self.revoked_users.insert(user.id.clone(), ());
        if !self.cfg.has(CheckKind::Revocation) {
            return;
        }
        if !self.directories().is_empty() {
            // A bind needs no token: its evidence is a bind the directory accepted (see there).
            let me = self.clone();
            self.spawn(async move { me.check_bind_revoked(user, change, acked).await });
            return;
        }
        let Some(token) = self.tokens.get(&user.id).map(|t| t.clone()) else {
            // The user never logged in before the change: nothing issued to revoke.
            self.revocation_case(change, Case::Overtaken, &user.user_name, None, String::new());
            return;
        };
        let me = self.clone();
        self.spawn(async move {
            let deadline = acked + me.cfg.timeout;
            let mut failures = Vec::new();
            for service in &me.cfg.services {
                let url = match me.user_url(&me.cfg.me_url, &user.id, service) {
                    Ok(url) => url,
                    Err(why) => {
                        me.revocation_case(change, Case::Failed, &user.user_name, Some(service), why);
                        return;
                    }
                };
                let series = me.revocation[service];
                let mut previous = acked;
                let mut wait = Duration::from_millis(5);
                loop {
                    let sent = Instant::now();
                    me.count_request();
                    let gone = match me.http.get(&url).bearer_auth(&token).send().await {
                        Ok(r) => matches!(r.status().as_u16(), 401 | 403 | 404 | 410),
                        Err(_) => false,
                    };
                    if gone && me.overtaken_by_delete(&user.id, acked, Instant::now()) {
                        // The journey's delete began before this answer: the token stopped
                        // working for the delete, which says nothing of the disable.
                        me.revocation_case(change, Case::Overtaken, &user.user_name, None, String::new());
                        return;
                    }
                    if gone {
                        let res = (sent - previous).as_micros() as u64;
                        me.registry
                            .record_observation(series, (sent - acked).as_micros() as u64, res, false);
                        break;
                    }
                    previous = sent;
                    if Instant::now() + wait > deadline || !me.pause(wait).await {
                        let bound = me.cfg.timeout.as_micros() as u64;
                        me.registry
                            .record_observation(series, bound, wait.as_micros() as u64, true);
                        failures.push((
                            service.clone(),
                            format!(
                                "a token issued before the change still works after {:?}",
                                me.cfg.timeout
                            ),
                        ));
                        break;
                    }
                    wait = wait.mul_f64(1.5).min(Duration::from_millis(250));
                }
            }
            match me.login_once(&user).await {
                Ok(_) => failures.push((String::new(), "the user can still log in after the change".into())),
                // Refused after a later delete began: the delete's doing, not this change's.
                Err(_) if failures.is_empty() && me.overtaken_by_delete(&user.id, acked, Instant::now()) => {
                    me.revocation_case(change, Case::Overtaken, &user.user_name, None, String::new());
                    return;
                }
                Err(e) if !login_refused(&e) => failures.push((
                    String::new(),
                    format!("whether the user can still log in after the change was not learned: {e}"),
                )),
                Err(_) => {}
            }
            match failures.into_iter().next() {
                None => me.revocation_case(change, Case::Passed, &user.user_name, None, String::new()),
                Some((svc, detail)) => {
                    let svc = (!svc.is_empty()).then_some(svc);
                    me.revocation_case(change, Case::Failed, &user.user_name, svc.as_deref(), detail)
                }
            }
        });
    }

    /// A journey began deleting `id` at `began`: what its checks see from then on is the
    /// delete's doing.
    pub fn deleting(&self, id: &str, began: Instant) {
        self.deleting.insert(id.to_string(), began);
    }

    /// Whether a later write than the one acknowledged at `acked` (a delete) had begun by the
    /// time an answer came back (`answered`): not by the time its request was sent, since a
    /// request sent just before the delete may be answered by a directory already deleting (a
    /// bind refused meanwhile was credited to the disable, seen on Samba's AD DC).
    fn overtaken_by_delete(&self, id: &str, acked: Instant, answered: Instant) -> bool {
        self.deleting.get(id).is_some_and(|t| *t > acked && answered >= *t)
    }

    /// Waits for every check under way, up to `limit`, then stops the rest.
    pub async fn drain(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.permits.acquire_many(MAX_PENDING as u32)).await;
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.stop.cancel();
    }

    pub fn reports(&self) -> Vec<CheckReport> {
        self.tallies
            .iter()
            .map(|t| {
                let (passed, failed, skipped) = (
                    t.passed.load(Ordering::Relaxed),
                    t.failed.load(Ordering::Relaxed),
                    t.skipped.load(Ordering::Relaxed),
                );
                CheckReport {
                    name: t.kind.to_string(),
                    kind: t.kind.to_string(),
                    category: t.kind.category().to_string(),
                    passed,
                    failed,
                    skipped,
                    examples: t.examples.lock().clone(),
                    notes: t.notes.lock().clone(),
                    error: (passed + failed == 0).then(|| format!("check `{}` was declared but never ran", t.kind)),
                    min_evidence: u64::from(self.cfg.min_evidence),
                    by_change: t.by_change.lock().clone(),
                }
            })
            .collect()
    }
}

/// Who stopped a login that waiting will not mend: provbench itself, or the token endpoint.
fn refused_by(error: &str) -> &'static str {
    if login_nav::is_refusal(error) {
        "the sign-in stopped where the IdP's pages lead"
    } else {
        "the token endpoint refuses the login"
    }
}

/// Whether a login error is the IdP refusing the user (a 4xx token answer, the login form
/// shown again), not a failure that says nothing about the user (a 5xx, a 429, a broken
/// connection, a page it could not read). Judged on the error's start, which provbench writes,
/// never on the target's text after it.
fn login_refused(error: &str) -> bool {
    let status = |rest: &str| {
        rest.strip_prefix("HTTP ")
            .and_then(|r| r.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| matches!(code, 400 | 401 | 403))
    };
    status(error)
        || ["the code exchange: ", "the refresh grant: "]
            .iter()
            .any(|what| error.strip_prefix(what).is_some_and(status))
        || error.starts_with("the login form came back")
}

/// What to change when a login error will not pass by waiting (a refused client, a disabled
/// grant), or `None` for an error that may (the user not yet provisioned).
fn never_passes(error: &str) -> Option<&'static str> {
    if error.contains("invalid_client") || error.contains("unauthorized_client") {
        Some("set [checks] login_client (and its client_auth)")
    } else if error.contains("unsupported_grant_type") {
        Some("the IdP does not allow this grant: set [checks] login_flow = { kind = \"authorization-code\", … }")
    } else if login_nav::is_refusal(error) {
        Some("name the origin in [checks] login_flow.idp_origins if it is the IdP's")
    } else if error.contains("unexpected form") || error.contains("no `") {
        Some("set [checks] login_flow to match the IdP's pages")
    } else {
        None
    }
}

impl CheckHub {
    /// Whether the target (admin view) still shows the user, active: false once its journey
    /// disabled or deleted it, even before that change's acknowledgement reached the checks.
    async fn still_active(&self, id: &str) -> bool {
        let (Some(client), Ok(path)) = (&self.client, crate::http::url::member("Users", id)) else {
            return true;
        };
        self.count_request();
        match client.call(Method::GET, &path, None).await {
            Ok(r) if r.status.as_u16() == 200 => serde_json::from_slice::<Value>(&r.body)
                .map(|v| v["active"].as_bool().unwrap_or(true))
                .unwrap_or(true),
            Ok(r) if matches!(r.status.as_u16(), 404 | 410) => false,
            _ => true,
        }
    }
}
