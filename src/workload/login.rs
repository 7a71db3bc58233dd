//! `[checks] login_flow`: how the login checks sign a created user in. The OAuth2 password grant
//! (the default), or, for identity providers that disable it, the browser's way: the
//! authorization code flow with PKCE through the IdP's login form (its hidden fields, such as a
//! CSRF token, sent back as a browser does), an optional consent page, then the code exchanged
//! at the token endpoint, and (`refresh = true`) the refresh grant proven once per login. Or, for
//! directories, a simple LDAP bind as the user in each directory named (`ldap-bind`).

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
    /// Origins besides those of `authorize_url` and `token_url` that the IdP's pages may
    /// redirect to or post to (a separate login host, say): `["https://login.example.com"]`.
    #[serde(default)]
    pub idp_origins: Option<Vec<String>>,
    /// `ldap-bind`: the directories a user binds to.
    #[serde(default)]
    pub directories: Option<Vec<BindDirectoryWire>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BindDirectoryWire {
    /// Names the directory in `login_ready_lag{service}` and `revocation_lag{service}`.
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub starttls: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The DN the user binds as: `{id}` (default: the DN an ldap target created) or a template
    /// with `{userName}` (e.g. `uid={userName},ou=people,dc=example,dc=com`).
    #[serde(default)]
    pub dn: Option<String>,
    /// Each bind's bound (default 2s).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A directory the bind-login check binds to.
#[derive(Debug, Clone, PartialEq)]
pub struct BindDirectory {
    pub name: String,
    pub endpoint: crate::ldap::Endpoint,
    pub dn: String,
}

impl BindDirectory {
    /// The DN `user` binds as.
    pub fn dn_for(&self, id: &str, user_name: &str) -> String {
        self.dn
            .replace("{id}", id)
            .replace("{userName}", &crate::ldap::dn_escape(user_name))
    }
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
    /// A simple bind as the user in each directory.
    LdapBind(Vec<BindDirectory>),
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
    /// Origins (`scheme://host[:port]`, as the `url` crate serializes them) the sign-in may go
    /// to besides those of `authorize_url` and `token_url`: the test user's password and the
    /// IdP's cookies go nowhere else.
    pub idp_origins: Vec<String>,
}

impl LoginFlow {
    /// `embedded`: the reference service supplies the URLs.
    pub fn from_wire(w: Option<LoginFlowWire>, embedded: bool, base: &std::path::Path) -> Result<LoginFlow, String> {
        let Some(w) = w else { return Ok(LoginFlow::Password) };
        if w.directories.is_some() != (w.kind == "ldap-bind") {
            return Err("checks.login_flow: `directories` goes with kind = \"ldap-bind\" (and it needs them)".into());
        }
        match w.kind.as_str() {
            "ldap-bind" => ldap_bind(w.directories.unwrap_or_default(), base),
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
                    idp_origins: w
                        .idp_origins
                        .unwrap_or_default()
                        .iter()
                        .map(|o| origin(o))
                        .collect::<Result<_, _>>()?,
                }))
            }
            other => Err(format!(
                "checks.login_flow: kind `{other}`: `password` (the OAuth2 password grant), `authorization-code` (a browser's sign-in with PKCE) or `ldap-bind` (a simple bind in each directory)"
            )),
        }
    }
}

/// `text` as an origin: an absolute http(s) URL with nothing after its host and port, since an
/// origin admits every path on it and a path here would read as a narrower promise.
fn origin(text: &str) -> Result<String, String> {
    let key = "checks.login_flow.idp_origins";
    let url = reqwest::Url::parse(text).map_err(|e| format!("{key}: `{text}` is not a URL: {e}"))?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(format!(
            "{key}: `{text}` is not an origin: write `https://host` or `https://host:port`, nothing else"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn ldap_bind(wires: Vec<BindDirectoryWire>, base: &std::path::Path) -> Result<LoginFlow, String> {
    if wires.is_empty() {
        return Err("checks.login_flow: kind = \"ldap-bind\" needs at least one of `directories`".into());
    }
    let mut out: Vec<BindDirectory> = Vec::new();
    for w in wires {
        let key = format!("checks.login_flow.directories `{}`", w.name);
        if out.iter().any(|d| d.name == w.name) || w.name.is_empty() {
            return Err(format!("{key}: each directory needs a name of its own"));
        }
        let timeout = match &w.timeout {
            Some(t) => humantime::parse_duration(t.trim()).map_err(|e| format!("{key}.timeout: `{t}`: {e}"))?,
            None => std::time::Duration::from_secs(2),
        };
        let endpoint = super::ldap_read::endpoint(
            super::ldap_read::EndpointWire {
                url: Some(&w.url),
                starttls: w.starttls,
                ca_file: w.ca_file.as_deref(),
                bind_dn: None,
                password_env: None,
                password_file: None,
                timeout: super::limits::duration(&format!("{key}.timeout"), timeout, super::limits::WAIT)?,
            },
            &key,
            base,
        )?;
        let dn = w.dn.unwrap_or_else(|| "{id}".into());
        if !(dn.contains("{id}") || dn.contains("{userName}")) {
            return Err(format!("{key}.dn = \"{dn}\": it needs `{{id}}` or `{{userName}}`"));
        }
        out.push(BindDirectory {
            name: w.name,
            endpoint,
            dn,
        });
    }
    Ok(LoginFlow::LdapBind(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn idp_origins_are_origins_and_nothing_more() {
        assert_eq!(
            super::origin("HTTPS://Login.Example.com:443/").unwrap(),
            "https://login.example.com"
        );
        assert_eq!(super::origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in [
            "login.example.com",
            "https://login.example.com/realms/x",
            "https://ada@login.example.com",
            "https://login.example.com?x",
            "ftp://login.example.com",
            "javascript:alert(1)",
        ] {
            assert!(super::origin(bad).is_err(), "{bad}");
        }
    }
}
