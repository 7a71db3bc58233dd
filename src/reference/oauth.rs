//! The OAuth2 words the reference's token endpoint (`auth.rs`) and its browser login
//! (`login.rs`) both speak: who a token is for, the token request's form, the error answer
//! (RFC 6749 §5.2), random opaque tokens, and the check of a user's password. Kept apart so neither of the two imports the other
//! for them.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::AppState;

#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Client(String),
    User(String),
    Static(String),
}

/// A random opaque token (24 bytes, URL-safe base64).
pub fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Deserialize, Default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn client(d: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: d.into(),
        }
    }
    pub fn bad(error: &'static str, d: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: d.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

/// The id of the active user `username` whose password is `password` (and, with
/// `login_requires_sync`, who is visible in that service).
pub fn check_password(state: &AppState, username: &str, password: &str) -> Result<String, OAuthError> {
    let denied = || OAuthError::bad("invalid_grant", "invalid credentials or inactive user");
    let id = state.store.user_id_by_name(username).ok_or_else(denied)?;
    let user = state.store.get_user(&id).ok_or_else(denied)?;
    let ok = user.active() && user.password.as_ref().is_some_and(|p| p.matches(password));
    if !ok {
        return Err(denied());
    }
    if let Some(service) = &state.config.login_requires_sync
        && !state.pipeline.linked_sees_active(service, &id)
    {
        return Err(OAuthError::bad(
            "invalid_grant",
            format!("user not yet provisioned in {service}"),
        ));
    }
    Ok(id)
}

/// `GET /.well-known/openid-configuration` (OIDC Discovery 1.0, RFC 8414): the endpoints, and
/// what the token endpoint takes as this instance is configured (`client_auth`,
/// `password_grant`), so `provbench init` can read them. The issuer is the origin the request
/// was addressed to (its `Host`).
pub async fn openid_configuration(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    use super::config::ClientAuthMethods;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("127.0.0.1");
    let issuer = format!("http://{host}");
    let methods = match state.config.client_auth {
        ClientAuthMethods::Any => vec!["client_secret_basic", "client_secret_post"],
        ClientAuthMethods::Basic => vec!["client_secret_basic"],
        ClientAuthMethods::Post => vec!["client_secret_post"],
    };
    let mut grants = vec!["client_credentials", "authorization_code", "refresh_token"];
    if state.config.password_grant {
        grants.push("password");
    }
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "response_types_supported": ["code"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "scim:read", "scim:write", "scim:admin"],
    }))
    .into_response()
}
