//! OAuth2 for the reference service: the token endpoint (client credentials, password, and the
//! authorization code and refresh grants of `login.rs`),
//! bearer-token authentication of every API call, and `/oauth/userinfo`.
//!
//! Tokens are opaque random strings held in a sharded map with their subject, scopes and expiry.
//! A user's token acts on the SCIM API with the scopes its roles give (`admin` full, `helpdesk`
//! limited, others none).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dashmap::DashMap;
use serde_json::json;
use tokio::time::Instant;

use super::AppState;
use super::config::{ClientAuthMethods, ClientConfig, ReferenceConfig, Scopes};
use super::error::ScimError;
use super::oauth::{OAuthError, Subject, TokenForm, check_password, random_token};
use super::store::UserRecord;

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub subject: Subject,
    pub scopes: Scopes,
    pub expires_at: Instant,
}

/// Who is calling, as far as the SCIM API cares.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Shown in the audit log: `client:helpdesk`, `user:<id>`, `token:<name>`.
    pub actor: String,
    pub scopes: Scopes,
}

impl Principal {
    pub fn require_read(&self) -> Result<(), ScimError> {
        if self.scopes.read {
            Ok(())
        } else {
            Err(ScimError::forbidden(format!("{} lacks scope scim:read", self.actor)))
        }
    }
    pub fn require_write(&self) -> Result<(), ScimError> {
        if self.scopes.write {
            Ok(())
        } else {
            Err(ScimError::forbidden(format!("{} lacks scope scim:write", self.actor)))
        }
    }
}

pub struct Auth {
    tokens: DashMap<String, TokenInfo>,
    statics: HashMap<String, (String, Scopes)>,
    clients: HashMap<String, ClientConfig>,
    default_ttl: Duration,
    client_auth: ClientAuthMethods,
}

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Auth {
    pub fn new(config: &ReferenceConfig) -> Self {
        Self {
            tokens: DashMap::new(),
            statics: config
                .static_tokens
                .iter()
                .map(|t| (t.token.clone(), (t.name.clone(), t.scopes)))
                .collect(),
            clients: config.clients.iter().map(|c| (c.id.clone(), c.clone())).collect(),
            default_ttl: config.token_ttl,
            client_auth: config.client_auth,
        }
    }

    pub fn issue(&self, subject: Subject, scopes: Scopes, ttl: Duration) -> String {
        let token = random_token();
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                subject,
                scopes,
                expires_at: Instant::now() + ttl,
            },
        );
        token
    }

    /// The live token's record: 401 when unknown or expired.
    pub fn lookup(&self, headers: &HeaderMap) -> Result<TokenInfo, ScimError> {
        let token = bearer(headers).ok_or_else(|| ScimError::unauthorized("missing bearer token"))?;
        if let Some((name, scopes)) = self.statics.get(token) {
            return Ok(TokenInfo {
                subject: Subject::Static(name.clone()),
                scopes: *scopes,
                expires_at: Instant::now() + Duration::from_secs(3600),
            });
        }
        let info = self
            .tokens
            .get(token)
            .map(|t| t.clone())
            .ok_or_else(|| ScimError::unauthorized("invalid bearer token"))?;
        if info.expires_at <= Instant::now() {
            self.tokens.remove(token);
            return Err(ScimError::unauthorized("bearer token expired"));
        }
        Ok(info)
    }

    /// Drops expired tokens (called periodically so a long run does not accumulate them).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.tokens.retain(|_, t| t.expires_at > now);
    }

    fn client(&self, headers: &HeaderMap, form: &TokenForm) -> Result<Option<&ClientConfig>, OAuthError> {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
        // A server that takes one method only, as many real ones do.
        match (self.client_auth, &basic, &form.client_secret) {
            (ClientAuthMethods::Basic, None, Some(_)) => {
                return Err(OAuthError::client(
                    "this server takes client_secret_basic only (HTTP Basic), not the secret in the form",
                ));
            }
            (ClientAuthMethods::Post, Some(_), _) => {
                return Err(OAuthError::client(
                    "this server takes client_secret_post only (the secret in the form), not HTTP Basic",
                ));
            }
            _ => {}
        }
        let (id, secret) = match (basic, &form.client_id, &form.client_secret) {
            (Some(pair), _, _) => pair,
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            (None, Some(_), None) => return Err(OAuthError::client("client_secret is missing")),
            (None, None, _) => return Ok(None),
        };
        match self.clients.get(&id) {
            Some(c) if super::store::Secret::new(c.secret.clone()).matches(&secret) => Ok(Some(c)),
            _ => Err(OAuthError::client("unknown client or wrong secret")),
        }
    }
}

/// The scopes a user's own token carries on the SCIM API.
pub fn user_scopes(user: &UserRecord) -> Scopes {
    let roles = user.roles();
    if roles.iter().any(|r| r == "admin") {
        Scopes::FULL
    } else if roles.iter().any(|r| r == "helpdesk") {
        Scopes::LIMITED
    } else {
        Scopes::default()
    }
}

impl AppState {
    /// Authenticates an API call: 401 without a live token, and a user's token stops working once
    /// the user is disabled or deleted (unless the `stale-tokens` flaw is on).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ScimError> {
        let info = self.auth.lookup(headers)?;
        Ok(match info.subject {
            Subject::Client(id) => Principal {
                actor: format!("client:{id}"),
                scopes: info.scopes,
            },
            Subject::Static(name) => Principal {
                actor: format!("token:{name}"),
                scopes: info.scopes,
            },
            Subject::User(uid) => {
                let user = self.store.get_user(&uid);
                let stale = self.config.flaws.stale_tokens;
                let scopes = match user {
                    Some(u) if u.active() || stale => user_scopes(&u),
                    None if stale => Scopes::default(),
                    _ => return Err(ScimError::unauthorized("the token's user is disabled or deleted")),
                };
                Principal {
                    actor: format!("user:{uid}"),
                    scopes,
                }
            }
        })
    }
}

/// `POST /oauth/token` (RFC 6749 §4.3 and §4.4), form-encoded.
pub async fn token_endpoint(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match issue_token(&state, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn issue_token(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let form: TokenForm = serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::bad("invalid_request", format!("body must be form-encoded: {e}")))?;
    let auth = &state.auth;
    let client = auth.client(headers, &form)?;
    let mut refresh = None;
    let (token, scopes, ttl) = match form.grant_type.as_deref() {
        Some("client_credentials") => {
            let client = client.ok_or_else(|| OAuthError::client("client authentication is required"))?;
            let scopes = match &form.scope {
                None => client.scopes,
                Some(s) => {
                    let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                    let asked = Scopes::parse(&words).map_err(|e| OAuthError::bad("invalid_scope", e))?;
                    let allowed = client.scopes;
                    if (asked.read && !allowed.read)
                        || (asked.write && !allowed.write)
                        || (asked.admin && !allowed.admin)
                    {
                        return Err(OAuthError::bad(
                            "invalid_scope",
                            "scope exceeds what the client may have",
                        ));
                    }
                    asked
                }
            };
            let ttl = client.token_ttl.unwrap_or(auth.default_ttl);
            (auth.issue(Subject::Client(client.id.clone()), scopes, ttl), scopes, ttl)
        }
        Some("password") => {
            if !state.config.password_grant {
                return Err(OAuthError::bad(
                    "unsupported_grant_type",
                    "the password grant is disabled here: sign in through /oauth/authorize",
                ));
            }
            // A server that names its client authentication method allows the password grant to
            // confidential clients only, as real IdPs do.
            if auth.client_auth != ClientAuthMethods::Any && client.is_none() {
                return Err(OAuthError::client(
                    "client authentication is required for the password grant",
                ));
            }
            let (Some(username), Some(password)) = (&form.username, &form.password) else {
                return Err(OAuthError::bad("invalid_request", "username and password are required"));
            };
            let id = check_password(state, username, password)?;
            let ttl = auth.default_ttl;
            (
                auth.issue(Subject::User(id), Scopes::default(), ttl),
                Scopes::default(),
                ttl,
            )
        }
        Some(grant @ ("authorization_code" | "refresh_token")) => {
            let (token, scopes, ttl, r) = if grant == "authorization_code" {
                super::login::code_grant(state, client, &form)?
            } else {
                super::login::refresh_grant(state, client, &form)?
            };
            refresh = r;
            (token, scopes, ttl)
        }
        Some(other) => {
            return Err(OAuthError::bad(
                "unsupported_grant_type",
                format!("grant_type `{other}` is not supported"),
            ));
        }
        None => return Err(OAuthError::bad("invalid_request", "grant_type is required")),
    };
    let scope = match scopes.to_scope_string() {
        s if s.is_empty() => "openid profile".to_string(),
        s => s,
    };
    let mut body = json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": scope});
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `GET /oauth/userinfo` with a user's token (OIDC core §5.3).
pub async fn userinfo(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ScimError> {
    let info = state.auth.lookup(&headers)?;
    let Subject::User(uid) = info.subject else {
        return Err(ScimError::forbidden("userinfo needs a user's token"));
    };
    let stale = state.config.flaws.stale_tokens;
    let user = match state.store.get_user(&uid) {
        Some(u) if u.active() || stale => u,
        None if stale => return Ok(Json(json!({"sub": uid})).into_response()),
        _ => return Err(ScimError::unauthorized("the token's user is disabled or deleted")),
    };
    let r = &user.resource;
    let email = r["emails"]
        .as_array()
        .and_then(|e| e.first())
        .and_then(|e| e.get("value"))
        .cloned();
    Ok(Json(json!({
        "sub": uid,
        "preferred_username": r["userName"],
        "name": r.get("displayName").or_else(|| r.get("name").and_then(|n| n.get("formatted"))),
        "email": email,
        "active": user.active(),
        "roles": user.roles(),
    }))
    .into_response())
}
