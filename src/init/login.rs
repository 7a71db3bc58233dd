//! The login shape at a login URL (`--login-url`: the authorize URL, or the IdP's issuer or
//! metadata URL): whether the password grant is allowed, PKCE S256, the token and userinfo
//! endpoints (from the metadata, [`super::oauth_meta`]); then the login page as the login check
//! would see it ([`super::login_page`]: one page or identifier-first, its CSRF field). Writes
//! `[checks]` with a login check that can judge something (`min_evidence`, every created user
//! followed) and `[users] password`. Consent cannot be seen without signing in: the workload
//! keeps a commented line for it.

use anyhow::{Context as _, bail};
use reqwest::Url;

use super::draft::{Draft, Entry, Found};
use super::login_page::{self, Page, Shape};
use super::oauth_meta::{self, Metadata};
use super::{Context, LoginClient};
use crate::http::{Auth, ClientId, Secret};
use crate::workload::checks::ClientSecret;
use crate::workload::login::LoginFlow;
use crate::workload::{Target, Workload};

/// The redirect URI the reference service takes (and the embedded target's default).
const REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// The login check's client and redirect URI as a workload's `[checks]` names them (`--check`).
pub fn client_of(w: &Workload) -> LoginClient {
    let checks = w.checks.as_ref();
    let client = checks.and_then(|c| c.login_client.as_ref());
    LoginClient {
        client_id: client.map(|c| c.id.clone()),
        client_secret_env: client.and_then(|c| match &c.secret {
            ClientSecret::Env(e) => Some(e.clone()),
            ClientSecret::Embedded(_) => None,
        }),
        redirect_uri: checks.and_then(|c| match &c.login_flow {
            LoginFlow::AuthorizationCode(b) => Some(b.redirect_uri.clone()),
            _ => None,
        }),
    }
}

/// The target's own OAuth2 client: its token URL (absolute), id and secret's variable.
fn target_client(w: &Workload) -> Option<(String, Option<String>, Option<String>)> {
    let Target::Scim { base_url, auth, .. } = &w.target else {
        return None;
    };
    let Auth::ClientCredentials {
        token_url,
        client_id,
        client_secret,
        ..
    } = auth
    else {
        return None;
    };
    let token = Url::parse(base_url).ok()?.join(token_url).ok()?.to_string();
    let id = match client_id {
        ClientId::Literal(s) => Some(s.clone()),
        ClientId::Env(_) => None,
    };
    let env = match client_secret {
        Some(Secret::Env(e)) => Some(e.clone()),
        _ => None,
    };
    Some((token, id, env))
}

/// The metadata belongs to the login URL given when it names it: as its authorize endpoint,
/// its issuer, or the document's own address.
fn accept(m: &Metadata, given: &str) -> Result<(), String> {
    let names = |u: &Option<String>| u.as_deref().is_some_and(|u| oauth_meta::same_url(u, given));
    if names(&m.authorization_endpoint) || names(&m.issuer) || oauth_meta::same_url(&m.url, given) {
        return Ok(());
    }
    Err(format!(
        "metadata at {} is another IdP's (its authorize endpoint is {}); ignored",
        crate::redact::url(&m.url),
        crate::redact::url(m.authorization_endpoint.as_deref().unwrap_or("not named"))
    ))
}

/// An endpoint the metadata names, when it is on the document's own origin (an endpoint
/// elsewhere would receive the users' passwords on the document's word alone).
fn own(m: &Metadata, endpoint: &Option<String>, what: &str, heard: &mut Vec<String>) -> Option<String> {
    let e = endpoint.as_ref()?;
    if m.on_own_origin(e) {
        return Some(e.clone());
    }
    heard.push(format!(
        "the metadata at {} names its {what} on another origin ({}): not used",
        crate::redact::url(&m.url),
        crate::redact::url(e)
    ));
    None
}

pub async fn discover(cx: &Context<'_>, login_url: &str, draft: &mut Draft) -> anyhow::Result<()> {
    let url = Url::parse(login_url).with_context(|| format!("--login-url `{login_url}` is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--login-url `{login_url}`: an http(s) URL");
    }
    let mut heard = Vec::new();
    let meta = oauth_meta::find(&url, cx.timeout, &mut heard, |m| accept(m, login_url)).await;
    let target = target_client(cx.workload);
    let (mut authorize, mut token, mut userinfo) = (None, None, None);
    if let Some(m) = &meta {
        heard.push(format!("the IdP's metadata: {}", crate::redact::url(&m.url)));
        authorize = own(m, &m.authorization_endpoint, "authorize endpoint", &mut heard);
        token = own(m, &m.token_endpoint, "token endpoint", &mut heard);
        userinfo = own(m, &m.userinfo_endpoint, "userinfo endpoint", &mut heard);
    } else {
        heard.push(format!(
            "no OAuth2 metadata found for {}: the login URL is taken as the authorize URL",
            crate::redact::url(login_url)
        ));
    }
    // The URL given is the authorize URL unless it was the issuer or the document itself.
    let given_is_authorize = match &meta {
        Some(m) => {
            !(m.issuer.as_deref().is_some_and(|i| oauth_meta::same_url(i, login_url))
                || oauth_meta::same_url(&m.url, login_url))
        }
        None => true,
    };
    if given_is_authorize {
        authorize = Some(login_url.to_string());
    }
    let token = token.or_else(|| target.as_ref().map(|t| t.0.clone()));
    for line in heard.drain(..) {
        draft.heard(line);
    }
    let Some(token) = token else {
        bail!(
            "the login check needs the IdP's token endpoint: no metadata names one on the login URL's origin and the target signs in with no --token-url"
        );
    };
    let grants = meta.as_ref().and_then(|m| m.grant_types.clone());
    let password_grant = grants.as_ref().is_some_and(|g| g.iter().any(|x| x == "password"));
    let refresh = grants.as_ref().is_none_or(|g| g.iter().any(|x| x == "refresh_token"));
    pkce(meta.as_ref(), draft);
    // The target's own client (and its secret) stands in for a login client only at the token
    // endpoint it signs in at: never sent to another one the login's metadata names.
    let target_client = target.as_ref().filter(|t| oauth_meta::same_url(&t.0, &token));
    if target.is_some() && target_client.is_none() && cx.login.client_id.is_none() {
        draft.heard(format!(
            "the IdP's token endpoint {} is not the target's: its client is not used there (give --login-client-id and --login-client-secret-env)",
            crate::redact::url(&token)
        ));
    }
    let client = LoginClient {
        client_id: cx
            .login
            .client_id
            .clone()
            .or_else(|| target_client.and_then(|t| t.1.clone())),
        client_secret_env: cx
            .login
            .client_secret_env
            .clone()
            .or_else(|| target_client.and_then(|t| t.2.clone())),
        redirect_uri: cx.login.redirect_uri.clone(),
    };
    let redirect_uri = client.redirect_uri.clone().unwrap_or_else(|| REDIRECT_URI.to_string());
    let page: Result<Page, String> = match (&authorize, &client.client_id) {
        (Some(a), Some(id)) => {
            let a = Url::parse(a).with_context(|| format!("the authorize URL `{a}`"))?;
            let request = login_page::authorize_request(&a, id, &redirect_uri);
            login_page::read(&crate::http::bare(cx.timeout), &request, &token, &redirect_uri).await
        }
        (None, _) => Err("no authorize endpoint is known".to_string()),
        (Some(_), None) => Err("no client to send the authorization request as (give --login-client-id)".to_string()),
    };
    let page = match page {
        Ok(p) => {
            heard_page(&p, draft);
            Some(p)
        }
        Err(why) if password_grant => {
            draft.heard(format!("the login page was not read: {why}"));
            None
        }
        Err(why) => bail!(
            "--login-url: the IdP does not allow the password grant ({}), and its login page cannot be used: {why}",
            match grants {
                Some(_) => "its metadata does not list it",
                None => "no metadata says it does",
            }
        ),
    };
    write(
        draft,
        Written {
            token,
            userinfo,
            client,
            auth_methods: meta.as_ref().and_then(|m| m.auth_methods.clone()),
            password_grant,
            refresh,
            authorize,
            redirect_uri,
            page,
        },
    )
}

fn pkce(meta: Option<&Metadata>, draft: &mut Draft) {
    match meta.and_then(|m| m.code_challenge_methods.as_ref()) {
        Some(m) if m.iter().any(|x| x == "S256") => {}
        Some(m) => {
            draft.heard(format!(
                "warning: the IdP lists PKCE methods {} but not S256, the only one the login check sends",
                m.join(", ")
            ));
        }
        None => {
            draft.heard("the IdP's metadata lists no PKCE methods: the login check sends S256 (most IdPs take it)");
        }
    }
}

fn heard_page(p: &Page, draft: &mut Draft) {
    let shape = match &p.shape {
        Shape::SinglePage { username, password } => {
            format!("one page (username field `{username}`, password field `{password}`)")
        }
        Shape::IdentifierFirst { username } => {
            format!("identifier-first (username field `{username}` alone; the password page comes after it)")
        }
    };
    draft.heard(format!("the login page at {} asks on {shape}", p.at));
    match &p.csrf {
        Some(c) => draft.heard(format!("the login form carries a CSRF field: `{c}`")),
        None if !p.hidden.is_empty() => draft.heard(format!(
            "the login form's hidden fields ({}) are sent back as the page carries them",
            p.hidden.join(", ")
        )),
        None => draft,
    };
}

/// Everything discovery learnt, to be written.
struct Written {
    token: String,
    userinfo: Option<String>,
    client: LoginClient,
    auth_methods: Option<Vec<String>>,
    password_grant: bool,
    refresh: bool,
    authorize: Option<String>,
    redirect_uri: String,
    page: Option<Page>,
}

/// `[checks]` with the login check, and `[users] password`.
fn write(draft: &mut Draft, w: Written) -> anyhow::Result<()> {
    let t = "checks";
    draft.set(
        t,
        Entry::new("kinds", vec!["login"]).why("the created users sign in at the IdP"),
    );
    draft.set(
        t,
        Entry::new("sample", 1.0)
            .why("every created user signs in once: evidence soon at a gentle load (lower it with the load)"),
    );
    draft.set(
        t,
        Entry::new("min_evidence", 5).why("judged logins the check needs before its pass counts"),
    );
    draft.set(
        t,
        Entry::new("token_url", w.token.as_str())
            .why("the IdP's token endpoint")
            .found(Found::equal()),
    );
    match &w.userinfo {
        Some(u) => {
            draft.set(
                t,
                Entry::new("userinfo_url", u.as_str())
                    .why("the IdP's userinfo endpoint: each token is used once")
                    .found(Found::equal()),
            );
        }
        None => {
            draft.heard("no userinfo endpoint is known: the login check judges the token alone");
        }
    }
    let methods = oauth_meta::usable(w.auth_methods.as_deref());
    if let Some(id) = &w.client.client_id {
        draft.set(t, Entry::new("login_client.id", id.as_str()));
        if let Some(env) = &w.client.client_secret_env {
            draft.set(t, Entry::new("login_client.secret_env", env.as_str()));
        }
        if let Some(m) = methods.first() {
            draft.set(
                t,
                Entry::new("login_client.client_auth", *m)
                    .why("what the IdP's token endpoint takes")
                    .found(Found::one_of(methods.iter().map(|m| toml::Value::from(*m)).collect()).implied("basic")),
            );
        }
    }
    let code_flow = match (&w.page, &w.authorize) {
        (Some(p), Some(a)) if !w.password_grant => Some((p, a)),
        _ => None,
    };
    match code_flow {
        None => {
            draft.set(
                t,
                Entry::new("login_flow.kind", "password")
                    .why("the IdP allows the password grant: the simplest sign-in")
                    .found(Found::one_of(vec!["password".into(), "authorization-code".into()]).implied("password")),
            );
        }
        Some((page, authorize)) => {
            if w.client.client_id.is_none() {
                bail!(
                    "the authorization code flow needs a client: give --login-client-id and --login-client-secret-env"
                );
            }
            code_flow_entries(draft, page, authorize, &w.redirect_uri, w.refresh);
        }
    }
    draft.set(
        "users",
        Entry::new("password", "Pw-{run_id}-{seq}!").why("the login check signs in as each created user with it"),
    );
    Ok(())
}

fn code_flow_entries(draft: &mut Draft, page: &Page, authorize: &str, redirect_uri: &str, refresh: bool) {
    let t = "checks";
    draft.heard("a consent page cannot be seen without signing in: if the IdP shows one, add the commented consent line to [checks]");
    draft.comment(
        t,
        &[
            "If the IdP shows a consent page after the login form, add to this table (its button's name and value):",
            "login_flow.consent = { field = \"decision\", value = \"allow\" }",
        ],
    );
    draft.set(
        t,
        Entry::new("login_flow.kind", "authorization-code")
            .why("the IdP does not allow the password grant: the browser's way, with PKCE")
            .found(Found::equal().implied("password")),
    );
    draft.set(
        t,
        Entry::new("login_flow.authorize_url", authorize)
            .why("the IdP's authorize endpoint")
            .found(Found::equal()),
    );
    draft.set(
        t,
        Entry::new("login_flow.redirect_uri", redirect_uri)
            .why("must be registered for login_client at the IdP (--redirect-uri); never fetched"),
    );
    let (username, password) = match &page.shape {
        Shape::SinglePage { username, password } => (username, Some(password)),
        Shape::IdentifierFirst { username } => (username, None),
    };
    let first = match password {
        Some(_) => "the login page's username field",
        None => "identifier-first: the first page asks for the username alone",
    };
    draft.set(
        t,
        Entry::new("login_flow.username_field", username.as_str())
            .why(first)
            .found(Found::equal().implied("username")),
    );
    match password {
        Some(p) => draft.set(
            t,
            Entry::new("login_flow.password_field", p.as_str())
                .why("the login page's password field")
                .found(Found::equal().implied("password")),
        ),
        None => draft.set(
            t,
            Entry::new("login_flow.password_field", "password")
                .why("the password page is not seen without signing in: check its field's name"),
        ),
    };
    if let Some(c) = &page.csrf {
        draft.set(
            t,
            Entry::new("login_flow.csrf_field", c.as_str())
                .why("the login form's CSRF token: a page without it fails the check")
                .found(Found::equal()),
        );
    }
    if !refresh {
        draft.set(
            t,
            Entry::new("login_flow.refresh", false)
                .why("the IdP's metadata lists no refresh_token grant")
                .found(Found::equal().implied(true)),
        );
    }
}
