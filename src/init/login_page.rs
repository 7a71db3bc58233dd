//! The login page's shape, for the login discovery (`login.rs`): the authorization request a login check
//! would send (response_type=code, the client, the redirect URI, a state, a PKCE S256
//! challenge), GET only, followed as the check follows it (`checks::login_nav`: redirects by
//! hand within the IdP origins, cookies in an RFC 6265 store, pages read within 1 MiB), and its
//! first form read by the check's own parser (`checks::form`). Nothing is submitted: what comes
//! after the first page (the password page of an identifier-first IdP, a consent page) is not
//! seen.

use std::sync::atomic::AtomicU64;

use reqwest::Url;

use crate::checks::browser::{challenge, random_url_safe};
use crate::checks::form::{self, Form};
use crate::checks::login_nav::{IdpOrigins, Landing, Navigator};

/// How the login page asks for the credentials.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// The username and the password on one page.
    SinglePage { username: String, password: String },
    /// The username only: the password comes on a page of its own.
    IdentifierFirst { username: String },
}

/// What the first page showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub shape: Shape,
    /// The hidden field that carries the page's CSRF token, when one is named like it.
    pub csrf: Option<String>,
    /// Every hidden field (sent back as the page carries them).
    pub hidden: Vec<String>,
    /// Where the page was (its path), for what is heard.
    pub at: String,
}

/// The authorization request for `client_id`, as the login check sends it.
pub fn authorize_request(authorize: &Url, client_id: &str, redirect_uri: &str) -> Url {
    let mut url = authorize.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", &random_url_safe())
        .append_pair("code_challenge", &challenge(&random_url_safe()))
        .append_pair("code_challenge_method", "S256");
    url
}

/// GETs the login page through the IdP origins of `authorize` and `token`; its shape, or why
/// the login check could not use it.
pub async fn read(http: &reqwest::Client, request: &Url, token: &str, redirect_uri: &str) -> Result<Page, String> {
    let idp = IdpOrigins::new([request.as_str(), token]);
    let redirect = Url::parse(redirect_uri).map_err(|e| format!("redirect URI `{redirect_uri}`: {e}"))?;
    let sent = AtomicU64::new(0);
    let mut browser = Navigator::new(http, idp, redirect, &sent);
    let page = match browser.get(request, request.as_str()).await? {
        Landing::Callback(to) => {
            let error = to
                .query_pairs()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| form::text(&v, 80))
                .unwrap_or_else(|| "none".into());
            return Err(format!(
                "the IdP sent the browser straight back to the redirect URI (error: {error}) without a login page"
            ));
        }
        Landing::Page(p) => p,
    };
    let at = page.url.path().to_string();
    if !(200..300).contains(&page.status) {
        return Err(format!(
            "the login page answered HTTP {} at {at}: {}",
            page.status,
            form::text(&page.body, 160)
        ));
    }
    let Some(form) = form::first_form(&page.body) else {
        return Err(format!(
            "the login page at {at} has no form (one built by script is not supported): {}",
            form::text(&page.body, 160)
        ));
    };
    classify(&form, at)
}

/// The shape of a login form: its password field, its username field, its CSRF field.
pub fn classify(form: &Form, at: String) -> Result<Page, String> {
    // A field name is written into the workload: one longer than a page would use is not taken.
    let of_type = |t: &str| -> Vec<&str> { form.of_type(t).into_iter().filter(|n| n.len() <= 100).collect() };
    let password = of_type("password").first().map(|s| s.to_string());
    let named = |n: &str| {
        let n = n.to_ascii_lowercase();
        ["user", "login", "mail", "ident", "name", "account"]
            .iter()
            .any(|w| n.contains(w))
    };
    let visible: Vec<&str> = ["text", "email", "tel"].iter().flat_map(|t| of_type(t)).collect();
    let username = visible
        .iter()
        .find(|n| named(n))
        .or(visible.first())
        .map(|s| s.to_string());
    let hidden: Vec<String> = of_type("hidden").iter().map(|s| s.to_string()).collect();
    let csrf = hidden
        .iter()
        .find(|h| {
            let h = h.to_ascii_lowercase();
            ["csrf", "xsrf", "token", "authenticity", "nonce"]
                .iter()
                .any(|w| h.contains(w))
        })
        .cloned();
    let shape = match (username, password) {
        (Some(username), Some(password)) => Shape::SinglePage { username, password },
        (Some(username), None) => Shape::IdentifierFirst { username },
        (None, Some(_)) => {
            return Err(format!(
                "the login page at {at} asks for a password but no username: not a login form the check can fill"
            ));
        }
        (None, None) => {
            return Err(format!(
                "the first form at {at} has neither a username nor a password field (an account chooser or a consent page?)"
            ));
        }
    };
    Ok(Page {
        shape,
        csrf,
        hidden,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Result<Page, String> {
        classify(&form::first_form(html).unwrap(), "/login".into())
    }

    #[test]
    fn single_page_identifier_first_and_csrf() {
        let one = page(
            "<form method=post><input type=hidden name=_csrf value=x><input type=hidden name=tab_id value=1>\
             <input name=email type=email><input name=pw type=password></form>",
        )
        .unwrap();
        assert_eq!(
            one.shape,
            Shape::SinglePage {
                username: "email".into(),
                password: "pw".into()
            }
        );
        assert_eq!(one.csrf.as_deref(), Some("_csrf"));
        assert_eq!(one.hidden, ["_csrf", "tab_id"]);
        let first = page("<form><input name=q><input name=loginfmt></form>").unwrap();
        assert_eq!(
            first.shape,
            Shape::IdentifierFirst {
                username: "loginfmt".into()
            }
        );
        assert_eq!(first.csrf, None);
        assert!(page("<form><input type=hidden name=a></form>").is_err());
        assert!(page("<form><input type=password name=p></form>").is_err());
        let long = format!(
            "<form><input name=u><input type=password name={}></form>",
            "p".repeat(101)
        );
        assert!(matches!(page(&long).unwrap().shape, Shape::IdentifierFirst { .. }));
    }

    #[test]
    fn the_request_carries_pkce_and_a_state() {
        let u = authorize_request(
            &Url::parse("http://idp.test/oauth/authorize?prompt=login").unwrap(),
            "app",
            "http://127.0.0.1/callback",
        );
        let q: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
        for k in [
            "prompt",
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
        ] {
            assert!(q.iter().any(|x| x == k), "{u}");
        }
        assert!(u.as_str().contains("code_challenge_method=S256"));
    }
}
