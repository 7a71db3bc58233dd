//! `[checks] login_flow`: how the login checks sign a created user in. The OAuth2 password grant
//! (the default), or, for identity providers that disable it, the browser's way: the
//! authorization code flow with PKCE through the IdP's login form (its hidden fields, such as a
//! CSRF token, sent back as a browser does), an optional consent page, then the code exchanged
//! at the token endpoint, and (`refresh = true`) the refresh grant proven once per login.

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LoginFlowWire {
    /// `password` (default) or `authorization-code`.
    pub kind: String,
    #[serde(default)]
    pub authorize_url: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub username_field: Option<String>,
    #[serde(default)]
    pub password_field: Option<String>,
    /// A hidden field the login page must carry (its CSRF token); a page without it fails.
    #[serde(default)]
    pub csrf_field: Option<String>,
    /// The consent page's button: `{ field = "decision", value = "allow" }`.
    #[serde(default)]
    pub consent: Option<ConsentWire>,
    #[serde(default)]
    pub refresh: Option<bool>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsentWire {
    pub field: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum LoginFlow {
    #[default]
    Password,
    AuthorizationCode(BrowserLogin),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrowserLogin {
    /// Absolute, or relative to the target's origin.
    pub authorize_url: String,
    /// Where the IdP sends the browser back with the code; never fetched.
    pub redirect_uri: String,
    pub scope: String,
    pub username_field: String,
    pub password_field: String,
    pub csrf_field: Option<String>,
    pub consent: Option<(String, String)>,
    pub refresh: bool,
}

impl LoginFlow {
    /// `embedded`: the reference service supplies the URLs.
    pub fn from_wire(w: Option<LoginFlowWire>, embedded: bool) -> Result<LoginFlow, String> {
        let Some(w) = w else { return Ok(LoginFlow::Password) };
        match w.kind.as_str() {
            "password" => Ok(LoginFlow::Password),
            "authorization-code" => {
                let need = |v: Option<String>, default: &str, key: &str| match (v, embedded) {
                    (Some(v), _) => Ok(v),
                    (None, true) => Ok(default.to_string()),
                    (None, false) => Err(format!(
                        "checks.login_flow: `{key}` is needed for kind = \"authorization-code\""
                    )),
                };
                let redirect_uri = need(w.redirect_uri, "http://127.0.0.1/callback", "redirect_uri")?;
                if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
                    return Err(format!(
                        "checks.login_flow: redirect_uri `{redirect_uri}` must be an absolute http(s) URL"
                    ));
                }
                Ok(LoginFlow::AuthorizationCode(BrowserLogin {
                    authorize_url: need(w.authorize_url, "/oauth/authorize", "authorize_url")?,
                    redirect_uri,
                    scope: w.scope.unwrap_or_else(|| "openid".into()),
                    username_field: w.username_field.unwrap_or_else(|| "username".into()),
                    password_field: w.password_field.unwrap_or_else(|| "password".into()),
                    csrf_field: w.csrf_field,
                    consent: w.consent.map(|c| (c.field, c.value)),
                    refresh: w.refresh.unwrap_or(true),
                }))
            }
            other => Err(format!(
                "checks.login_flow: kind `{other}`: `password` (the OAuth2 password grant) or `authorization-code` (a browser's sign-in with PKCE)"
            )),
        }
    }
}
