//! Checks: proofs that the provisioning chain works, run during the load in tasks of their own.
//! Per sampled user: `login` (password grant, then userinfo; `login_latency`, `login_ready_lag`),
//! `permissions` (the user's effective permissions in each linked service after a role change),
//! `audit` and `welcome` (downstream records), `revocation` (after disable or delete the user
//! cannot log in and a token issued before stops working in every service; `revocation_lag`).
//! Over the run: `authorization` (calls without a valid token are refused and change nothing)
//! and `escalation` (a limited admin cannot grant `admin`, change an admin, or join a privileged
//! group). Each check counts passes and failures with examples; a declared check that never ran
//! is an error.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::context::Created;
use crate::metrics::{ErrorKind, MetricKey, Registry, SeriesId};
use crate::scim::ScimClient;
use crate::scim::client::encode_query;
use crate::workload::checks::{Checks, Client};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub detail: String,
}

/// One check's outcome in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: String,
    /// `security` (authorization, escalation, revocation), `access` (login, permissions) or
    /// `effects` (audit, welcome): for thresholds such as `failed(checks{category=security}) == 0`.
    pub category: String,
    pub passed: u64,
    pub failed: u64,
    /// Could not be judged (e.g. a revocation for a user whose login never succeeded).
    #[serde(default)]
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// Declared but never ran: an error, not a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Tally {
    kind: &'static str,
    passed: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    examples: Mutex<Vec<Example>>,
}

const MAX_EXAMPLES: usize = 5;

fn category(kind: &str) -> &'static str {
    match kind {
        "authorization" | "escalation" | "revocation" => "security",
        "login" | "permissions" => "access",
        _ => "effects",
    }
}

/// A created user the checks follow.
#[derive(Clone)]
pub struct CheckedUser {
    pub id: String,
    pub user_name: String,
    pub password: Option<String>,
}

pub struct CheckHub {
    cfg: Checks,
    client: Arc<ScimClient>,
    http: reqwest::Client,
    registry: Arc<Registry>,
    run_id: String,
    tallies: Vec<Tally>,
    login_latency: SeriesId,
    login_ready: SeriesId,
    audit_lag: SeriesId,
    revocation: HashMap<String, SeriesId>,
    /// A token per user, issued at its first login: revocation checks use it after the change.
    tokens: DashMap<String, String>,
    /// Users whose journey disabled or deleted them: a permissions check that then sees the
    /// user's access gone was overtaken, not failed.
    revoked_users: DashMap<String, ()>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    created: Arc<Mutex<Vec<Created>>>,
}

const MAX_PENDING: usize = 10_000;

impl CheckHub {
    pub fn new(
        cfg: Checks,
        client: Arc<ScimClient>,
        registry: Arc<Registry>,
        run_id: &str,
        created: Arc<Mutex<Vec<Created>>>,
    ) -> CheckHub {
        let tallies = cfg
            .kinds
            .iter()
            .map(|k| Tally {
                kind: crate::workload::checks::KINDS
                    .iter()
                    .find(|x| *x == k)
                    .copied()
                    .unwrap_or("login"),
                passed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                examples: Mutex::new(Vec::new()),
            })
            .collect();
        let revocation = cfg
            .services
            .iter()
            .map(|s| {
                (
                    s.clone(),
                    registry.series(MetricKey::new("revocation_lag").tag("service", s)),
                )
            })
            .collect();
        CheckHub {
            login_latency: registry.series(MetricKey::new("login_latency")),
            login_ready: registry.series(MetricKey::new("login_ready_lag")),
            audit_lag: registry.series(MetricKey::new("audit_lag")),
            revocation,
            tallies,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("reqwest client"),
            client,
            registry,
            run_id: run_id.to_string(),
            tokens: DashMap::new(),
            revoked_users: DashMap::new(),
            permits: Arc::new(Semaphore::new(MAX_PENDING)),
            stop: CancellationToken::new(),
            created,
            cfg,
        }
    }

    pub fn sampled(&self, draw: f64) -> bool {
        draw < self.cfg.sample
    }

    fn tally(&self, kind: &str) -> Option<&Tally> {
        self.tallies.iter().find(|t| t.kind == kind)
    }

    fn pass(&self, kind: &str) {
        if let Some(t) = self.tally(kind) {
            t.passed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn fail(&self, kind: &str, user: Option<&str>, service: Option<&str>, detail: impl Into<String>) {
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

    fn skip(&self, kind: &str) {
        if let Some(t) = self.tally(kind) {
            t.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn url(&self, template: &str, user_id: &str, service: &str) -> String {
        let filled = template.replace("{id}", user_id).replace("{service}", service);
        if filled.starts_with('/') {
            format!("{}{filled}", self.client.origin())
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
        let started = Instant::now();
        let sent = self
            .http
            .post(self.url(&self.cfg.token_url, &user.id, ""))
            .form(&[
                ("grant_type", "password"),
                ("username", user.user_name.as_str()),
                ("password", password.as_str()),
            ])
            .send()
            .await;
        let micros = started.elapsed().as_micros() as u64;
        match sent {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                self.registry.record(self.login_latency, micros);
                match body["access_token"].as_str() {
                    Some(t) if status.is_success() => Ok(t.to_string()),
                    _ => Err(format!(
                        "HTTP {}: {}",
                        status.as_u16(),
                        body["error"].as_str().unwrap_or("no token")
                    )),
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
        if self.cfg.has("login") || self.cfg.has("revocation") || self.cfg.has("permissions") {
            let (me, u) = (self.clone(), user.clone());
            self.spawn(async move { me.check_login(u, acked).await });
        }
        if self.cfg.has("audit") {
            let (me, u) = (self.clone(), user.clone());
            self.spawn(async move { me.check_record("audit", u, acked).await });
        }
        if self.cfg.has("welcome") {
            let (me, u) = (self.clone(), user);
            self.spawn(async move { me.check_record("welcome", u, acked).await });
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
                        let info = self
                            .http
                            .get(self.url(u, &user.id, ""))
                            .bearer_auth(&token)
                            .send()
                            .await;
                        match info {
                            Ok(r) if r.status().is_success() => {}
                            // Disabled by its journey in between: overtaken, not failed.
                            Ok(_) if self.revoked_users.contains_key(&user.id) => {
                                self.skip("login");
                                return;
                            }
                            Ok(r) => {
                                self.fail(
                                    "login",
                                    Some(&user.user_name),
                                    None,
                                    format!("userinfo answered HTTP {}", r.status().as_u16()),
                                );
                                return;
                            }
                            Err(e) => {
                                self.fail("login", Some(&user.user_name), None, format!("userinfo failed: {e}"));
                                return;
                            }
                        }
                    }
                    self.tokens.insert(user.id.clone(), token);
                    self.pass("login");
                    return;
                }
                Err(e) => last = e,
            }
            if self.revoked_users.contains_key(&user.id) {
                // The journey disabled or deleted the user before it could log in.
                self.skip("login");
                return;
            }
            if Instant::now() + wait > deadline {
                let bound = self.cfg.timeout.as_micros() as u64;
                self.registry
                    .record_observation(self.login_ready, bound, wait.as_micros() as u64, true);
                self.fail(
                    "login",
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
    async fn check_record(self: Arc<Self>, kind: &'static str, user: CheckedUser, acked: Instant) {
        let (template, field) = match kind {
            "audit" => (self.cfg.audit_url.clone(), "entries"),
            _ => (self.cfg.outbox_url.clone(), "messages"),
        };
        let Some(template) = template else { return };
        let url = self.url(&template, &user.id, "");
        let deadline = acked + self.cfg.timeout;
        let mut wait = Duration::from_millis(20);
        loop {
            if let Ok(reply) = self.client.call(Method::GET, &url, None).await
                && reply.status.is_success()
            {
                let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                let items: Vec<&Value> = v[field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|e| {
                                kind != "audit" || (e["action"] == "create_user" && e["target"] == user.id.as_str())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match items.len() {
                    0 => {}
                    1 => {
                        if kind == "audit" {
                            self.registry.record(self.audit_lag, acked.elapsed().as_micros() as u64);
                            if items[0]["actor"].as_str().is_none_or(str::is_empty) {
                                self.fail("audit", Some(&user.user_name), None, "audit entry without an actor");
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
                if kind == "audit" {
                    let bound = self.cfg.timeout.as_micros() as u64;
                    self.registry
                        .record_observation(self.audit_lag, bound, wait.as_micros() as u64, true);
                }
                let what = if kind == "audit" {
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
        if !self.cfg.has("permissions") {
            return;
        }
        let me = self.clone();
        self.spawn(async move {
            let deadline = acked + me.cfg.timeout;
            let Some(token) = me.token_for(&user, deadline).await else {
                me.skip("permissions");
                return;
            };
            let Some(expected) = me.cfg.roles.get(&role) else {
                me.skip("permissions");
                return;
            };
            let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            for service in &me.cfg.services {
                let url = me.url(&me.cfg.me_url, &user.id, service);
                let mut last = String::from("no answer");
                let mut wait = Duration::from_millis(5);
                let ok = loop {
                    if let Ok(r) = me.http.get(&url).bearer_auth(&token).send().await {
                        let status = r.status();
                        if !status.is_success() && me.revoked_users.contains_key(&user.id) {
                            // The journey disabled or deleted the user before this service caught up.
                            me.skip("permissions");
                            return;
                        }
                        let v: Value = r.json().await.unwrap_or_default();
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
                    me.fail("permissions", Some(&user.user_name), Some(service), detail);
                    return;
                }
            }
            me.pass("permissions");
        });
    }

    /// After `disable_user` or `delete_user`: logins fail, and the token issued before stops
    /// working in every linked service (`revocation_lag{service}`, timeouts at the bound).
    pub fn revoked(self: &Arc<Self>, user: CheckedUser, acked: Instant) {
        self.revoked_users.insert(user.id.clone(), ());
        if !self.cfg.has("revocation") {
            return;
        }
        let Some(token) = self.tokens.get(&user.id).map(|t| t.clone()) else {
            // The user never logged in before the change: nothing issued to revoke.
            self.skip("revocation");
            return;
        };
        let me = self.clone();
        self.spawn(async move {
            let deadline = acked + me.cfg.timeout;
            let mut failures = Vec::new();
            for service in &me.cfg.services {
                let url = me.url(&me.cfg.me_url, &user.id, service);
                let series = me.revocation[service];
                let mut previous = acked;
                let mut wait = Duration::from_millis(5);
                loop {
                    let sent = Instant::now();
                    let gone = match me.http.get(&url).bearer_auth(&token).send().await {
                        Ok(r) => matches!(r.status().as_u16(), 401 | 403 | 404 | 410),
                        Err(_) => false,
                    };
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
            if me.login_once(&user).await.is_ok() {
                failures.push((String::new(), "the user can still log in after the change".into()));
            }
            match failures.into_iter().next() {
                None => me.pass("revocation"),
                Some((svc, detail)) => {
                    let svc = (!svc.is_empty()).then_some(svc);
                    me.fail("revocation", Some(&user.user_name), svc.as_deref(), detail)
                }
            }
        });
    }

    async fn client_token(&self, c: &Client) -> anyhow::Result<String> {
        self.client_token_with_ttl(c).await.map(|(t, _)| t)
    }

    async fn client_token_with_ttl(&self, c: &Client) -> anyhow::Result<(String, Duration)> {
        let secret = c.secret.resolve()?;
        let r = self
            .http
            .post(self.url(&self.cfg.token_url, "", ""))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await?;
        let v: Value = r.json().await?;
        let ttl = Duration::from_secs(v["expires_in"].as_u64().unwrap_or(0));
        v["access_token"]
            .as_str()
            .map(|t| (t.to_string(), ttl))
            .ok_or_else(|| anyhow::anyhow!("no token for client {}", c.id))
    }

    /// Users whose userName is `name` (admin view).
    async fn count_named(&self, name: &str) -> Option<u64> {
        let path = format!("/Users?filter={}", encode_query(&format!("userName eq \"{name}\"")));
        let r = self.client.call(Method::GET, &path, None).await.ok()?;
        serde_json::from_slice::<Value>(&r.body).ok()?["totalResults"].as_u64()
    }

    async fn admin_create(&self, path: &str, body: Value) -> Option<String> {
        let r = self
            .client
            .call(Method::POST, path, Some(body.to_string().into()))
            .await
            .ok()?;
        let id = serde_json::from_slice::<Value>(&r.body).ok()?["id"]
            .as_str()?
            .to_string();
        let item = if path == "/Users" {
            Created::User {
                id: id.clone(),
                user_name: String::new(),
            }
        } else {
            Created::Group { id: id.clone() }
        };
        self.created.lock().push(item);
        Some(id)
    }

    async fn admin_get(&self, path: &str) -> Value {
        match self.client.call(Method::GET, path, None).await {
            Ok(r) => serde_json::from_slice(&r.body).unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }

    /// Runs the run-wide security checks, spread over `span`.
    pub async fn security(self: Arc<Self>, span: Duration) {
        let spacing = span / (self.cfg.attempts + 1);
        if self.cfg.has("authorization") {
            let me = self.clone();
            tokio::spawn(async move { me.authorization(spacing).await });
        }
        if self.cfg.has("escalation") {
            let me = self.clone();
            tokio::spawn(async move { me.escalation(spacing).await });
        }
    }

    async fn authorization(self: Arc<Self>, spacing: Duration) {
        let _permit = self.permits.clone().acquire_owned().await;
        let readonly = match &self.cfg.readonly {
            Some(c) => self.client_token(c).await.ok(),
            None => None,
        };
        // A token that has expired: issued to the short-lived client, then waited out.
        let expired = match &self.cfg.expiring {
            Some(c) => self
                .client_token_with_ttl(c)
                .await
                .ok()
                .map(|(t, ttl)| (t, Instant::now() + ttl + Duration::from_millis(500))),
            None => None,
        };
        for i in 0..self.cfg.attempts {
            if !self.pause(spacing).await {
                return;
            }
            if i as usize % 4 == 2
                && let Some((_, usable_after)) = &expired
            {
                // Only once it has expired is it an expired token.
                tokio::time::sleep_until(*usable_after).await;
            }
            let variants: [(&str, Option<String>); 4] = [
                ("no token", None),
                ("an invalid token", Some("pb-invalid-token".into())),
                ("an expired token", expired.as_ref().map(|(t, _)| t.clone())),
                ("a read-only client's token", readonly.clone()),
            ];
            let (label, token) = &variants[i as usize % variants.len()];
            if label.contains("read-only") && token.is_none() || label.contains("expired") && token.is_none() {
                self.skip("authorization");
                continue;
            }
            let name = format!("{}-authz-{i}@example.test", self.run_id);
            let mut req = self
                .http
                .post(format!("{}/Users", self.client.base()))
                .header("content-type", "application/scim+json")
                .body(json!({"userName": name, "externalId": format!("{}-authz-{i}", self.run_id)}).to_string());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            let created = self.count_named(&name).await.unwrap_or(0);
            if matches!(status, 401 | 403) && created == 0 {
                self.pass("authorization");
            } else {
                self.fail(
                    "authorization",
                    Some(&name),
                    None,
                    format!("a create with {label} answered HTTP {status} and {created} user(s) exist afterwards"),
                );
            }
        }
    }

    async fn escalation(self: Arc<Self>, spacing: Duration) {
        let _permit = self.permits.clone().acquire_owned().await;
        let Some(helpdesk) = self.cfg.helpdesk.clone() else {
            return;
        };
        let Ok(token) = self.client_token(&helpdesk).await else {
            self.fail(
                "escalation",
                None,
                None,
                format!("client `{}` could not get a token", helpdesk.id),
            );
            return;
        };
        let run = &self.run_id;
        let employee = self
            .admin_create("/Users", json!({"userName": format!("{run}-esc-employee@example.test"), "externalId": format!("{run}-esc-employee"), "roles": [{"value": "employee"}]}))
            .await;
        let admin = self
            .admin_create("/Users", json!({"userName": format!("{run}-esc-admin@example.test"), "externalId": format!("{run}-esc-admin"), "displayName": "Admin", "roles": [{"value": "admin"}]}))
            .await;
        let group = self
            .admin_create("/Groups", json!({"displayName": self.cfg.privileged_group}))
            .await;
        let (Some(employee), Some(admin), Some(group)) = (employee, admin, group) else {
            self.fail(
                "escalation",
                None,
                None,
                "could not set up the escalation attempts (users or group not created)",
            );
            return;
        };
        let patch =
            |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        for i in 0..self.cfg.attempts {
            if !self.pause(spacing).await {
                return;
            }
            let (label, method, path, body) = match i % 4 {
                0 => (
                    "grant admin by PATCH",
                    Method::PATCH,
                    format!("/Users/{employee}"),
                    patch(json!([{"op": "add", "path": "roles", "value": [{"value": "admin"}]}])),
                ),
                1 => (
                    "grant admin by PUT",
                    Method::PUT,
                    format!("/Users/{employee}"),
                    json!({"userName": format!("{run}-esc-employee@example.test"), "roles": [{"value": "admin"}]}),
                ),
                2 => (
                    "modify an admin",
                    Method::PATCH,
                    format!("/Users/{admin}"),
                    patch(json!([{"op": "replace", "path": "displayName", "value": "pwned"}])),
                ),
                _ => (
                    "join a privileged group",
                    Method::PATCH,
                    format!("/Groups/{group}"),
                    patch(json!([{"op": "add", "path": "members", "value": [{"value": employee}]}])),
                ),
            };
            let status = self
                .http
                .request(method, format!("{}{path}", self.client.base()))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            // Whatever the status, the target must be unchanged.
            let e = self.admin_get(&format!("/Users/{employee}")).await;
            let a = self.admin_get(&format!("/Users/{admin}")).await;
            let g = self.admin_get(&format!("/Groups/{group}")).await;
            let escalated = e["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["value"] == "admin"))
                || a["displayName"] == "pwned"
                || g["members"].as_array().is_some_and(|m| !m.is_empty());
            if matches!(status, 401 | 403) && !escalated {
                self.pass("escalation");
            } else {
                self.fail(
                    "escalation",
                    Some(&format!("client:{}", helpdesk.id)),
                    None,
                    format!(
                        "{label}: HTTP {status}{}",
                        if escalated { ", and the change took effect" } else { "" }
                    ),
                );
                // Put things back so the next attempt starts clean.
                let _ = self
                    .client
                    .call(
                        Method::PATCH,
                        &format!("/Users/{employee}"),
                        Some(
                            patch(json!([{"op": "remove", "path": "roles[value eq \"admin\"]"}]))
                                .to_string()
                                .into(),
                        ),
                    )
                    .await;
                let _ = self
                    .client
                    .call(
                        Method::PATCH,
                        &format!("/Groups/{group}"),
                        Some(patch(json!([{"op": "remove", "path": "members"}])).to_string().into()),
                    )
                    .await;
            }
        }
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
                    category: category(t.kind).to_string(),
                    passed,
                    failed,
                    skipped,
                    examples: t.examples.lock().clone(),
                    error: (passed + failed == 0).then(|| format!("check `{}` was declared but never ran", t.kind)),
                }
            })
            .collect()
    }
}
