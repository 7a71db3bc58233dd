//! The target's authentication: a static bearer token from the environment, or an OAuth2
//! client-credentials token fetched at start and refreshed before it expires.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::HttpClient;
use super::settings::{Auth, ClientAuth, ClientId, Secret};

/// `application/x-www-form-urlencoded` of one value (what RFC 6749 §2.3.1 asks of a Basic
/// client id and secret).
fn form_encode(s: &str) -> String {
    super::client::encode_query(s)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A secret from the environment or a file (trimmed), registered so no output shows it.
pub fn read_secret(secret: &Secret, what: &str) -> anyhow::Result<String> {
    let value = match secret {
        Secret::Env(name) => env(name, what)?,
        Secret::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{what}: cannot read {}", path.display()))?
            .trim()
            .to_string(),
    };
    crate::redact::register(&value);
    Ok(value)
}

fn env(name: &str, what: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{what}: environment variable `{name}` is not set"))
}

/// Resolves `auth` against `client`: sets its bearer token and, for OAuth2, keeps refreshing it
/// until `stop` fires. `base_root` resolves a relative `token_url` (`/oauth/token`); `what`
/// names the setting in messages (`target.auth`).
pub async fn authenticate(
    client: Arc<HttpClient>,
    auth: &Auth,
    base_root: &str,
    what: &str,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    match auth {
        Auth::None => Ok(()),
        Auth::Bearer { source } => client.set_bearer(&read_secret(source, &format!("{what} bearer token"))?),
        Auth::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
            client_auth,
        } => {
            let url = if token_url.starts_with('/') {
                format!("{}{token_url}", base_root.trim_end_matches('/'))
            } else {
                token_url.clone()
            };
            let id = match client_id {
                ClientId::Literal(s) => s.clone(),
                ClientId::Env(e) => env(e, &format!("{what} client_id_env"))?,
            };
            let secret = client_secret
                .as_ref()
                .map(|s| read_secret(s, &format!("{what} client secret")))
                .transpose()?
                .unwrap_or_default();
            crate::redact::register(&secret);
            let client_auth = *client_auth;
            let fetch = {
                let client = client.clone();
                let (scope, audience) = (scope.clone(), audience.clone());
                move || {
                    let (client, url, id, secret, scope, audience) = (
                        client.clone(),
                        url.clone(),
                        id.clone(),
                        secret.clone(),
                        scope.clone(),
                        audience.clone(),
                    );
                    async move {
                        let mut form = vec![("grant_type", "client_credentials")];
                        if let Some(s) = &scope {
                            form.push(("scope", s.as_str()));
                        }
                        if let Some(a) = &audience {
                            form.push(("audience", a.as_str()));
                        }
                        let request = client.http()?.post(&url);
                        let request = match client_auth {
                            // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
                            ClientAuth::Basic => request.basic_auth(form_encode(&id), Some(form_encode(&secret))),
                            ClientAuth::Post => {
                                form.push(("client_id", id.as_str()));
                                form.push(("client_secret", secret.as_str()));
                                request
                            }
                        };
                        let resp = request
                            .form(&form)
                            .send()
                            .await
                            .with_context(|| format!("token request to {url} failed"))?;
                        let status = resp.status();
                        // Read within the client's limit: a token endpoint may answer without end.
                        let limit = client.body_limit();
                        if !status.is_success() {
                            // The body of an OAuth error names the problem; one that echoes what
                            // it was sent holds the secret, so it is redacted before it is cut.
                            let body = super::body::text(resp, limit).await.unwrap_or_else(|e| e.to_string());
                            // A refused client most often authenticated the way the endpoint
                            // does not take: name the other way.
                            let hint = match (body.contains("invalid_client"), client_auth) {
                                (false, _) => "",
                                (true, ClientAuth::Basic) => {
                                    " (the client authenticated by client_secret_basic: if the endpoint takes client_secret_post, set client_auth = \"post\"; `provbench init --check` reads which it lists)"
                                }
                                (true, ClientAuth::Post) => {
                                    " (the client authenticated by client_secret_post: if the endpoint takes client_secret_basic, set client_auth = \"basic\"; `provbench init --check` reads which it lists)"
                                }
                            };
                            bail!(
                                "token endpoint {} answered {status}: {}{hint}",
                                crate::redact::url(&url),
                                crate::redact::sample(&body, 200)
                            );
                        }
                        let token: TokenResponse = super::body::json(resp, limit)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))
                            .context("token response is not JSON with access_token")?;
                        client.set_bearer(&token.access_token)?;
                        anyhow::Ok(Duration::from_secs(token.expires_in.unwrap_or(3600)))
                    }
                }
            };
            let ttl = fetch().await?;
            tokio::spawn(async move {
                let mut ttl = ttl;
                loop {
                    // Refresh at 80 % of the lifetime; retry a failed refresh after a few seconds.
                    let wait = ttl.mul_f64(0.8).max(Duration::from_secs(1));
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    match fetch().await {
                        Ok(t) => ttl = t,
                        Err(e) => {
                            tracing::warn!(error = %e, "token refresh failed");
                            ttl = Duration::from_secs(5);
                        }
                    }
                }
            });
            Ok(())
        }
    }
}
