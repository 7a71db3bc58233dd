//! The login checks' browser sign-in (`[checks] login_flow = { kind = "authorization-code" }`):
//! the authorization request with PKCE (S256) and a state, the IdP's pages followed as a browser
//! follows them (redirects, cookies, the login form with its hidden fields, a consent page),
//! the code taken from the redirect to `redirect_uri` (never fetched), exchanged at the token
//! endpoint with client authentication and the verifier, and the refresh grant proven once.

use base64::Engine;
use rand::Rng;
use reqwest::header;
use serde_json::Value;

use super::CheckHub;
use super::form::{self, Form};
use crate::workload::login::BrowserLogin;

/// Pages followed before giving up (redirects and forms together).
const MAX_STEPS: usize = 12;

fn random_url_safe() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// One page of the sign-in.
struct Page {
    status: u16,
    url: reqwest::Url,
    location: Option<String>,
    body: String,
}

/// A browser's cookie jar for one sign-in (name, value), one IdP.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn keep(&mut self, headers: &header::HeaderMap) {
        for v in headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let name = name.trim().to_string();
                self.0.retain(|(n, _)| *n != name);
                self.0.push((name, value.trim().to_string()));
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

impl CheckHub {
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
        let mut url =
            reqwest::Url::parse(&self.url(&flow.authorize_url, "", "")).map_err(|e| format!("authorize_url: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &flow.redirect_uri)
            .append_pair("scope", &flow.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut jar = Jar::default();
        let mut page = self.fetch(&mut jar, url, None).await?;
        let mut signed_in = false;
        for _ in 0..MAX_STEPS {
            if let Some(location) = &page.location {
                let next = page
                    .url
                    .join(location)
                    .map_err(|e| format!("bad redirect `{location}`: {e}"))?;
                if next.as_str().starts_with(&flow.redirect_uri) {
                    let code = code_from(&next, &state)?;
                    return self.exchange(flow, client, &secret, &code, &verifier).await;
                }
                page = self.fetch(&mut jar, next, None).await?;
                continue;
            }
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
                form.set(&flow.username_field, user_name);
                form.set(&flow.password_field, password);
                signed_in = true;
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
            page = self.submit(&mut jar, &page.url, form).await?;
        }
        Err(format!("no redirect to redirect_uri after {MAX_STEPS} pages"))
    }

    async fn submit(&self, jar: &mut Jar, from: &reqwest::Url, form: Form) -> Result<Page, String> {
        let action = from
            .join(form.action.as_deref().unwrap_or(""))
            .map_err(|e| format!("form action: {e}"))?;
        if form.method == "post" {
            self.fetch(jar, action, Some(form.fields)).await
        } else {
            let mut url = action;
            url.query_pairs_mut().extend_pairs(form.fields);
            self.fetch(jar, url, None).await
        }
    }

    async fn fetch(
        &self,
        jar: &mut Jar,
        url: reqwest::Url,
        form: Option<Vec<(String, String)>>,
    ) -> Result<Page, String> {
        let mut request = match &form {
            Some(fields) => self.http.post(url.clone()).form(fields),
            None => self.http.get(url.clone()),
        };
        if let Some(cookies) = jar.header() {
            request = request.header(header::COOKIE, cookies);
        }
        let resp = request.send().await.map_err(|e| format!("{}: {e}", url.path()))?;
        jar.keep(resp.headers());
        let status = resp.status().as_u16();
        let location = (300..400)
            .contains(&status)
            .then(|| {
                resp.headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .flatten();
        let body = resp.text().await.unwrap_or_default();
        Ok(Page {
            status,
            url,
            location,
            body,
        })
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
async fn token_answer(sent: reqwest::Result<reqwest::Response>, what: &str) -> Result<Value, String> {
    let resp = sent.map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
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
