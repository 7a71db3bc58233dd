//! The browser side of OIDC for the reference service, for login flows of identity providers
//! that disable the password grant: `GET /oauth/authorize` (authorization code with PKCE S256)
//! shows an HTML login form whose CSRF token is bound to a session cookie; `POST /oauth/login`
//! checks it and the credentials, then shows a consent page (when `login_consent`) or redirects
//! with a code; the token endpoint's `authorization_code` grant (client authentication, the
//! PKCE verifier) returns an access and a refresh token; the `refresh_token` grant works only
//! while the user is active.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use dashmap::DashMap;
use serde::Deserialize;
use tokio::time::Instant;

use super::AppState;
use super::config::{ClientConfig, Scopes};
use super::oauth::{OAuthError, Subject, TokenForm, check_password, random_token};

/// How long a login page and an authorization code stay usable.
const LIFETIME: Duration = Duration::from_secs(120);
const COOKIE: &str = "pb_login";

struct Session {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    csrf: String,
    /// Set once the credentials were accepted (consent still to give).
    user: Option<String>,
    /// Identifier-first: the username the first page named (the password page asks for the rest).
    identified: Option<String>,
    created: Instant,
}

struct Code {
    user: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    created: Instant,
}

#[derive(Default)]
pub struct Logins {
    sessions: DashMap<String, Session>,
    codes: DashMap<String, Code>,
    /// Refresh token -> (user id, client id).
    refresh: DashMap<String, (String, String)>,
    /// When sessions and codes were last swept: a sweep scans both, so at most once a second.
    last_sweep: parking_lot::Mutex<Option<Instant>>,
}

impl Logins {
    /// Sweeps unless a sweep ran within the last second (called on the request path).
    pub fn sweep_if_due(&self) {
        {
            let mut last = self.last_sweep.lock();
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.sweep();
    }

    /// Drops expired sessions and codes.
    pub fn sweep(&self) {
        self.sessions.retain(|_, s| s.created.elapsed() < LIFETIME);
        self.codes.retain(|_, c| c.created.elapsed() < LIFETIME);
    }
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn bad(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Html(format!("<!doctype html><p>{msg}</p>"))).into_response()
}

/// `GET /oauth/authorize`: the login form.
pub async fn authorize(State(state): State<Arc<AppState>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let Some(client_id) = q.client_id.filter(|c| state.config.clients.iter().any(|k| &k.id == c)) else {
        return bad("unknown client_id");
    };
    if q.response_type.as_deref() != Some("code") {
        return bad("response_type must be code");
    }
    let Some(redirect_uri) = q
        .redirect_uri
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"))
    else {
        return bad("redirect_uri is required");
    };
    // PKCE is required, S256 only (RFC 7636 §4.2; `plain` is refused as OAuth 2.1 does).
    let (Some(challenge), Some("S256")) = (q.code_challenge, q.code_challenge_method.as_deref()) else {
        return bad("code_challenge with code_challenge_method=S256 is required");
    };
    state.logins.sweep_if_due();
    let session = random_token();
    let csrf = random_token();
    state.logins.sessions.insert(
        session.clone(),
        Session {
            client_id,
            redirect_uri,
            state: q.state,
            challenge,
            csrf: csrf.clone(),
            user: None,
            identified: None,
            created: Instant::now(),
        },
    );
    let form = match state.config.login_identifier_first {
        true => username_form(&csrf, None),
        false => login_form(&csrf, None),
    };
    page(&session, &form)
}

fn page(session: &str, body: &str) -> Response {
    let cookie = format!("{COOKIE}={session}; Path=/oauth; HttpOnly; SameSite=Lax");
    (
        [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())],
        Html(format!(
            "<!doctype html><html><head><title>Sign in</title></head><body>{body}</body></html>"
        )),
    )
        .into_response()
}

const USERNAME: &str = "<label>Username <input type=\"text\" name=\"username\"></label>";
const PASSWORD: &str = "<label>Password <input type=\"password\" name=\"password\"></label>";

/// A sign-in page posting `fields` (and the CSRF token) to `/oauth/login`, with an error above.
fn sign_in_form(heading: &str, fields: &[&str], button: &str, csrf: &str, error: Option<&str>) -> String {
    let error = error.map(|e| format!("<p class=\"error\">{e}</p>")).unwrap_or_default();
    format!(
        "<h1>{heading}</h1>{error}<form method=\"post\" action=\"/oauth/login\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">{}\
         <button type=\"submit\">{button}</button></form>",
        fields.concat()
    )
}

fn login_form(csrf: &str, error: Option<&str>) -> String {
    sign_in_form("Sign in", &[USERNAME, PASSWORD], "Sign in", csrf, error)
}

/// Identifier-first, page one: the username only.
fn username_form(csrf: &str, error: Option<&str>) -> String {
    sign_in_form("Sign in", &[USERNAME], "Next", csrf, error)
}

/// Identifier-first, page two: the password of the user page one named.
fn password_form(csrf: &str, error: Option<&str>) -> String {
    sign_in_form("Enter your password", &[PASSWORD], "Sign in", csrf, error)
}

fn consent_form(csrf: &str, client: &str) -> String {
    format!(
        "<h1>Allow {client}?</h1><form method=\"post\" action=\"/oauth/consent\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>"
    )
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The session of this browser, when the form's CSRF token is the one its page carried.
fn checked_session<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<dashmap::mapref::one::RefMut<'a, String, Session>, (StatusCode, &'static str)> {
    let Some(id) = session_id(headers) else {
        return Err((StatusCode::BAD_REQUEST, "no login session (cookie missing)"));
    };
    let live = state
        .logins
        .sessions
        .get_mut(&id)
        .filter(|s| s.created.elapsed() < LIFETIME);
    let Some(session) = live else {
        return Err((StatusCode::BAD_REQUEST, "the login session expired"));
    };
    if csrf != Some(session.csrf.as_str()) {
        return Err((StatusCode::FORBIDDEN, "CSRF token mismatch"));
    }
    Ok(session)
}

fn refused((status, msg): (StatusCode, &'static str)) -> Response {
    (status, Html(format!("<!doctype html><p>{msg}</p>"))).into_response()
}

/// `POST /oauth/login`: the credentials; a wrong password shows the form again (200), as real
/// login pages do.
pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let mut session = match checked_session(&state, &headers, form.csrf_token.as_deref()) {
        Ok(s) => s,
        Err(r) => return refused(r),
    };
    let browser = session_id(&headers).unwrap_or_default();
    if state.config.login_identifier_first {
        // Page one names the user (and never takes a password); page two takes the password of
        // the user page one named, whatever else it carries.
        let named = form.username.clone().filter(|u| !u.is_empty());
        match (&session.identified, named, form.password.is_some()) {
            (None, Some(u), false) => {
                session.identified = Some(u);
                session.csrf = random_token();
                return page(&browser, &password_form(&session.csrf, None));
            }
            (None, _, _) => {
                session.csrf = random_token();
                return page(&browser, &username_form(&session.csrf, Some("Enter your username")));
            }
            (Some(_), _, false) => {
                session.csrf = random_token();
                return page(&browser, &password_form(&session.csrf, Some("Enter your password")));
            }
            (Some(_), _, true) => {}
        }
    }
    let username = match &session.identified {
        Some(u) => u.clone(),
        None => form.username.unwrap_or_default(),
    };
    let password = form.password.unwrap_or_default();
    let user = match check_password(&state, &username, &password) {
        Ok(id) => id,
        Err(e) => {
            session.csrf = random_token();
            let body = match session.identified.take() {
                // A refused password starts over at the username page, as such IdPs do.
                Some(_) => username_form(&session.csrf, Some(&e.description)),
                None => login_form(&session.csrf, Some(&e.description)),
            };
            return page(&browser, &body);
        }
    };
    session.user = Some(user);
    session.csrf = random_token();
    if state.config.login_consent {
        let body = consent_form(&session.csrf, &session.client_id);
        return page(&session_id(&headers).unwrap_or_default(), &body);
    }
    let session = session.downgrade();
    redirect_with_code(&state, &session)
}

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf_token: Option<String>,
    decision: Option<String>,
}

/// `POST /oauth/consent`: allow or deny.
pub async fn consent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ConsentForm>,
) -> Response {
    let session = match checked_session(&state, &headers, form.csrf_token.as_deref()) {
        Ok(s) => s.downgrade(),
        Err(r) => return refused(r),
    };
    if session.user.is_none() {
        return bad("sign in first");
    }
    if form.decision.as_deref() != Some("allow") {
        let uri = with_params(
            &session.redirect_uri,
            &[("error", "access_denied")],
            session.state.as_deref(),
        );
        return redirect(&uri);
    }
    redirect_with_code(&state, &session)
}

fn with_params(base: &str, params: &[(&str, &str)], st: Option<&str>) -> String {
    let mut uri = base.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params.iter().copied().chain(st.map(|s| ("state", s))) {
        uri.push(sep);
        uri.push_str(&format!("{k}={}", crate::http::client::encode_query(v)));
        sep = '&';
    }
    uri
}

fn redirect(uri: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, uri.to_string())]).into_response()
}

fn redirect_with_code(state: &AppState, session: &Session) -> Response {
    let code = random_token();
    state.logins.codes.insert(
        code.clone(),
        Code {
            user: session.user.clone().unwrap_or_default(),
            client_id: session.client_id.clone(),
            redirect_uri: session.redirect_uri.clone(),
            challenge: session.challenge.clone(),
            created: Instant::now(),
        },
    );
    redirect(&with_params(
        &session.redirect_uri,
        &[("code", &code)],
        session.state.as_deref(),
    ))
}

/// What the token endpoint issues for a user: access token, scopes, lifetime, refresh token.
pub type Issued = (String, Scopes, Duration, Option<String>);

/// `grant_type=authorization_code` (RFC 6749 §4.1.3 with RFC 7636 §4.6): the code once, by the
/// client it was issued to, with the verifier of its challenge.
pub(super) fn code_grant(
    state: &AppState,
    client: Option<&ClientConfig>,
    form: &TokenForm,
) -> Result<Issued, OAuthError> {
    let client = client.ok_or_else(|| OAuthError::client("client authentication is required"))?;
    let invalid = |d: &str| OAuthError::bad("invalid_grant", d);
    let (_, code) = form
        .code
        .as_ref()
        .and_then(|c| state.logins.codes.remove(c))
        .ok_or_else(|| invalid("unknown, used or expired code"))?;
    if code.created.elapsed() >= LIFETIME || code.client_id != client.id {
        return Err(invalid("the code was issued to another client, or expired"));
    }
    if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return Err(invalid("redirect_uri does not match the authorization request"));
    }
    let verifier = form.code_verifier.as_deref().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()) != code.challenge {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    Ok(issue(state, code.user, &client.id))
}

/// `grant_type=refresh_token` (RFC 6749 §6): a new access token (and refresh token, rotated)
/// while the user is active; a disabled or deleted user's refresh token is dead.
pub(super) fn refresh_grant(
    state: &AppState,
    client: Option<&ClientConfig>,
    form: &TokenForm,
) -> Result<Issued, OAuthError> {
    let client = client.ok_or_else(|| OAuthError::client("client authentication is required"))?;
    let invalid = || OAuthError::bad("invalid_grant", "unknown or revoked refresh token");
    let (_, (user, client_id)) = form
        .refresh_token
        .as_ref()
        .and_then(|t| state.logins.refresh.remove(t))
        .ok_or_else(invalid)?;
    let active = state.store.get_user(&user).is_some_and(|u| u.active());
    if client_id != client.id || !(active || state.config.flaws.stale_tokens) {
        return Err(invalid());
    }
    Ok(issue(state, user, &client.id))
}

fn issue(state: &AppState, user: String, client_id: &str) -> Issued {
    let ttl = state.config.token_ttl;
    let refresh = random_token();
    state
        .logins
        .refresh
        .insert(refresh.clone(), (user.clone(), client_id.to_string()));
    let token = state.auth.issue(Subject::User(user), Scopes::default(), ttl);
    (token, Scopes::default(), ttl, Some(refresh))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    async fn send(
        app: &axum::Router,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    const CLIENT: (&str, &str) = (
        "authorization",
        "Basic cHJvdmJlbmNoLWFkbWluOnByb3ZiZW5jaC1hZG1pbi1zZWNyZXQ=",
    );

    fn pkce(verifier: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    fn hidden(page: &str, name: &str) -> String {
        let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        page[at..].split('"').next().unwrap().to_string()
    }

    /// Opens the login page: its session cookie and CSRF token.
    async fn open_login(app: &axum::Router, uri: &str) -> (String, String) {
        let (s, headers, page) = send(app, Method::GET, uri, &[], String::new()).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let cookie = headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        (cookie, hidden(&page, "csrf_token"))
    }

    /// Submits the login form as ada.
    async fn sign_in(app: &axum::Router, cookie: &str, csrf: &str, password: &str) -> (StatusCode, HeaderMap, String) {
        let form = format!("csrf_token={csrf}&username=ada%40example.test&password={password}");
        send(app, Method::POST, "/oauth/login", &[FORM, ("cookie", cookie)], form).await
    }

    /// The string `key` of a JSON answer.
    fn field(body: &str, key: &str) -> String {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("no `{key}` in {body}"))
            .to_string()
    }

    /// The code of a redirect to `http://cb/x`.
    fn code_of(headers: &HeaderMap) -> String {
        let location = headers[header::LOCATION].to_str().unwrap();
        let query = location
            .strip_prefix("http://cb/x?code=")
            .unwrap_or_else(|| panic!("{location}"));
        query.split('&').next().unwrap().to_string()
    }

    /// The code flow end to end: CSRF bound to the session, PKCE checked, the code used once,
    /// the refresh token dead once the user is disabled; the password grant refused.
    #[tokio::test]
    async fn authorization_code_with_pkce_csrf_and_refresh() {
        let mut config = crate::reference::config::ReferenceConfig::profile("fast").unwrap();
        config.password_grant = false;
        let state = AppState::new(config, "http://localhost", tokio_util::sync::CancellationToken::new());
        let app = crate::reference::router(state.clone());
        let admin = state
            .auth
            .issue(Subject::Static("t".into()), Scopes::FULL, Duration::from_secs(60));
        let bearer = format!("Bearer {admin}");
        let user = json!({"userName": "ada@example.test", "password": "pw-1"}).to_string();
        let (s, _, body) = send(
            &app,
            Method::POST,
            "/scim/v2/Users",
            &[("authorization", &bearer), ("content-type", "application/scim+json")],
            user,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        let id = field(&body, "id");

        let (s, _, _) = send(
            &app,
            Method::GET,
            "/oauth/authorize?response_type=code&client_id=provbench-admin&redirect_uri=http://cb/x",
            &[],
            String::new(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "PKCE is required");
        let uri = format!(
            "/oauth/authorize?response_type=code&client_id=provbench-admin&redirect_uri=http://cb/x&state=s1&code_challenge={}&code_challenge_method=S256",
            pkce("v-123")
        );
        let (cookie, csrf) = open_login(&app, &uri).await;
        let (s, _, _) = sign_in(&app, &cookie, "forged", "pw-1").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "a forged CSRF token is refused");
        let (s, _, again) = sign_in(&app, &cookie, &csrf, "wrong").await;
        assert!(s == StatusCode::OK && again.contains("invalid credentials"), "{again}");
        let (s, headers, _) = sign_in(&app, &cookie, &hidden(&again, "csrf_token"), "pw-1").await;
        assert_eq!(s, StatusCode::FOUND);
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(location.ends_with("&state=s1"), "{location}");
        let code = code_of(&headers);

        let exchange = |verifier: &str| {
            format!("grant_type=authorization_code&code={code}&redirect_uri=http://cb/x&code_verifier={verifier}")
        };
        let (s, _, body) = send(&app, Method::POST, "/oauth/token", &[FORM, CLIENT], exchange("v-wrong")).await;
        assert!(s == StatusCode::BAD_REQUEST && body.contains("invalid_grant"), "{body}");
        // The failed attempt used the code up, as single-use codes are.
        let (s, _, _) = send(&app, Method::POST, "/oauth/token", &[FORM, CLIENT], exchange("v-123")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        let (cookie, csrf) = open_login(&app, &uri).await;
        let (_, headers, _) = sign_in(&app, &cookie, &csrf, "pw-1").await;
        let code = code_of(&headers);
        let body = format!("grant_type=authorization_code&code={code}&redirect_uri=http://cb/x&code_verifier=v-123");
        let (s, _, tokens) = send(&app, Method::POST, "/oauth/token", &[FORM, CLIENT], body).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let refresh = field(&tokens, "refresh_token");
        let (s, _, again) = send(
            &app,
            Method::POST,
            "/oauth/token",
            &[FORM, CLIENT],
            format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{again}");
        let rotated = field(&again, "refresh_token");

        let disable = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}).to_string();
        let (s, _, _) = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            &[("authorization", &bearer), ("content-type", "application/scim+json")],
            disable,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, body) = send(
            &app,
            Method::POST,
            "/oauth/token",
            &[FORM, CLIENT],
            format!("grant_type=refresh_token&refresh_token={rotated}"),
        )
        .await;
        assert!(
            s == StatusCode::BAD_REQUEST && body.contains("invalid_grant"),
            "a disabled user's refresh token is dead: {body}"
        );
        let (s, _, body) = send(
            &app,
            Method::POST,
            "/oauth/token",
            &[FORM, CLIENT],
            "grant_type=password&username=ada%40example.test&password=pw-1".into(),
        )
        .await;
        assert!(
            s == StatusCode::BAD_REQUEST && body.contains("unsupported_grant_type"),
            "{body}"
        );
    }
}
