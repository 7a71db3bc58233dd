//! The login checks' browser sign-in (`[checks] login_flow = { kind = "authorization-code" }`):
//! the authorization request with PKCE (S256) and a state, the IdP's pages followed as a browser
//! follows them (redirects, cookies, the login form with its hidden fields, a consent page),
//! the code taken from the redirect to `redirect_uri` (never fetched), exchanged at the token
//! endpoint with client authentication and the verifier, and the refresh grant proven once.
//! Where the pages may lead, and the cookies, are [`super::login_nav`]'s.

use base64::Engine;
use rand::Rng;
use reqwest::Url;
use serde_json::Value;

use super::CheckHub;
use super::form;
use super::login_nav::{IdpOrigins, Landing, Navigator, PAGE_LIMIT};
use crate::workload::login::BrowserLogin;

/// Pages followed before giving up (forms submitted, each with its redirects).
const MAX_STEPS: usize = 12;

/// 32 random bytes, URL-safe base64: a PKCE verifier or a state.
pub fn random_url_safe() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
pub fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

impl CheckHub {
    /// The origins this sign-in may reach: those of `authorize_url` and `token_url` (resolved
    /// against the target's origin when relative) and `login_flow.idp_origins`.
    fn idp_origins(&self, flow: &BrowserLogin) -> IdpOrigins {
        let authorize = self.url(&flow.authorize_url, "", "");
        let token = self.url(&self.cfg.token_url, "", "");
        IdpOrigins::new(
            [authorize.as_str(), token.as_str()]
                .into_iter()
                .chain(flow.idp_origins.iter().map(String::as_str)),
        )
    }

    /// Signs `user_name` in through the IdP's pages; the access token, or why not.
    pub(super) async fn browser_login(
        &self,
        flow: &BrowserLogin,
        user_name: &str,
        password: &str,
    ) -> Result<String, String> {
        let client = self
            .cfg
            .login_client
            .as_ref()
            .ok_or("the authorization code flow needs [checks] login_client")?;
        let secret = client.secret.resolve().map_err(|e| e.to_string())?;
        let verifier = random_url_safe();
        let state = random_url_safe();
        let mut url = Url::parse(&self.url(&flow.authorize_url, "", "")).map_err(|e| format!("authorize_url: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &flow.redirect_uri)
            .append_pair("scope", &flow.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let redirect_uri = Url::parse(&flow.redirect_uri).map_err(|e| format!("redirect_uri: {e}"))?;
        let mut browser = Navigator::new(&self.http, self.idp_origins(flow), redirect_uri, &self.requests);
        let mut landing = browser.get(&url, url.as_str()).await?;
        let mut signed_in = false;
        // Identifier-first pages: the username on one page, the password on the next.
        let mut identified = false;
        for _ in 0..MAX_STEPS {
            let page = match landing {
                Landing::Callback(to) => {
                    let code = code_from(&to, &state)?;
                    return self.exchange(flow, client, &secret, &code, &verifier).await;
                }
                Landing::Page(page) => page,
            };
            if !(200..300).contains(&page.status) {
                return Err(format!(
                    "HTTP {} from {}: {}",
                    page.status,
                    page.url.path(),
                    form::text(&page.body, 160)
                ));
            }
            let Some(mut form) = form::first_form(&page.body) else {
                return Err(format!(
                    "a page without a form at {}: {}",
                    page.url.path(),
                    form::text(&page.body, 160)
                ));
            };
            if form.has(&flow.password_field) {
                if signed_in {
                    return Err(format!("the login form came back: {}", form::text(&page.body, 160)));
                }
                if let Some(csrf) = &flow.csrf_field
                    && !form.has(csrf)
                {
                    return Err(format!("the login form has no `{csrf}` field (its CSRF token)"));
                }
                // A password page after a username page may not ask for the name again.
                if !identified || form.has(&flow.username_field) {
                    form.set(&flow.username_field, user_name);
                }
                form.set(&flow.password_field, password);
                signed_in = true;
            } else if form.has(&flow.username_field) {
                if identified || signed_in {
                    return Err(format!(
                        "the username page came back at {}: {}",
                        page.url.path(),
                        form::text(&page.body, 160)
                    ));
                }
                form.set(&flow.username_field, user_name);
                identified = true;
            } else if let Some((field, value)) = flow
                .consent
                .as_ref()
                .filter(|(f, _)| form.buttons.iter().any(|(n, _)| n == f))
            {
                form.set(field, value);
            } else {
                return Err(format!(
                    "an unexpected form at {} (a consent page? set login_flow.consent): {}",
                    page.url.path(),
                    form::text(&page.body, 160)
                ));
            }
            let action = form.action.as_deref().unwrap_or("");
            landing = browser.submit(&page.url, action, &form.method, form.fields).await?;
        }
        Err(format!("no redirect to redirect_uri after {MAX_STEPS} pages"))
    }

    /// The code for the verifier at the token endpoint, then (when asked) the refresh grant.
    async fn exchange(
        &self,
        flow: &BrowserLogin,
        client: &crate::workload::checks::Client,
        secret: &str,
        code: &str,
        verifier: &str,
    ) -> Result<String, String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", flow.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let token_url = self.url(&self.cfg.token_url, "", "");
        let request = super::security::authenticated(self.http.post(&token_url), &mut form, client, secret);
        self.count_request();
        let tokens = token_answer(request.form(&form).send().await, "the code exchange").await?;
        let access = tokens["access_token"].as_str().unwrap_or_default().to_string();
        if !flow.refresh {
            return Ok(access);
        }
        let Some(refresh) = tokens["refresh_token"].as_str() else {
            return Err(
                "the code exchange returned no refresh_token (set login_flow.refresh = false if the IdP issues none)"
                    .into(),
            );
        };
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        let request = super::security::authenticated(self.http.post(&token_url), &mut form, client, secret);
        self.count_request();
        let refreshed = token_answer(request.form(&form).send().await, "the refresh grant").await?;
        Ok(refreshed["access_token"].as_str().unwrap_or_default().to_string())
    }
}

/// The code of a redirect to `redirect_uri`, when its state is ours.
fn code_from(url: &reqwest::Url, state: &str) -> Result<String, String> {
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    if let Some(e) = get("error") {
        return Err(format!("the IdP redirected with error `{e}`"));
    }
    if get("state").as_deref() != Some(state) {
        return Err("the redirect's state is not the one sent".into());
    }
    get("code").ok_or_else(|| "the redirect carries no code".into())
}

/// A token endpoint's JSON with an `access_token`, or its error (OAuth errors hold no secret).
/// Read within [`PAGE_LIMIT`]: an endless answer is an error with a sample.
async fn token_answer(sent: reqwest::Result<reqwest::Response>, what: &str) -> Result<Value, String> {
    let resp = sent.map_err(|e| format!("{what}: {}", e.without_url()))?;
    let status = resp.status().as_u16();
    let bytes = crate::http::body::read(resp, PAGE_LIMIT)
        .await
        .map_err(|e| format!("{what}: HTTP {status}: {}", e.detail))?;
    // Not JSON: judged below as an answer without a token.
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if (200..300).contains(&status) && body["access_token"].is_string() {
        return Ok(body);
    }
    Err(format!(
        "{what}: HTTP {status}: {}{}",
        body["error"].as_str().unwrap_or("no token"),
        body["error_description"]
            .as_str()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_challenge_of_rfc_7636_appendix_b() {
        assert_eq!(
            super::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
