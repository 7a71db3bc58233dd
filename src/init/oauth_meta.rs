//! Finding an OAuth2 authorization server's metadata (OIDC Discovery 1.0, RFC 8414) from a URL
//! of it (a token endpoint, an authorize URL, an issuer or the metadata URL itself), for
//! the token-endpoint and login discovery (`oauth.rs`, `login.rs`). Read-only and anonymous: GETs through `http::bare`
//! (no redirects followed, no credentials sent), each answer read within [`LIMIT`], only on the
//! origin of the URL given. What it answers is kept typed and short (URLs and method names).

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// The largest metadata document read: a real one is a few kilobytes.
pub const LIMIT: usize = 1024 * 1024;

/// Issuer path prefixes tried, longest first (`/realms/R/protocol/openid-connect/token` has five).
const MAX_PREFIXES: usize = 6;

/// What a metadata document says, as far as `init` uses it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// Where it was read.
    pub url: String,
    pub issuer: Option<String>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// `None`: the document does not list them (each field has its RFC 8414 default).
    pub auth_methods: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub code_challenge_methods: Option<Vec<String>>,
}

impl Metadata {
    fn from_json(url: &str, v: &Value) -> Metadata {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(|s| short(s, 2000));
        let list = |k: &str| {
            v.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .take(32)
                    .map(|s| short(s, 80))
                    .collect::<Vec<_>>()
            })
        };
        Metadata {
            url: url.to_string(),
            issuer: s("issuer"),
            token_endpoint: s("token_endpoint"),
            authorization_endpoint: s("authorization_endpoint"),
            userinfo_endpoint: s("userinfo_endpoint"),
            auth_methods: list("token_endpoint_auth_methods_supported"),
            grant_types: list("grant_types_supported"),
            code_challenge_methods: list("code_challenge_methods_supported"),
        }
    }

    /// Whether `endpoint` (one of the document's URLs) is on the origin it was read from: an
    /// endpoint elsewhere is not taken on the document's word.
    pub fn on_own_origin(&self, endpoint: &str) -> bool {
        match (Url::parse(&self.url), Url::parse(endpoint)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin() && b.username().is_empty() && b.password().is_none(),
            _ => false,
        }
    }
}

fn short(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The methods of `listed` provbench can use, as `client_auth` says them; RFC 8414: a document
/// that lists none means client_secret_basic.
pub fn usable(listed: Option<&[String]>) -> Vec<&'static str> {
    match listed {
        None => vec!["basic"],
        Some(l) => ["basic", "post"]
            .into_iter()
            .filter(|m| l.iter().any(|x| x == &format!("client_secret_{m}")))
            .collect(),
    }
}

/// Whether two URLs name the same endpoint (parsed: scheme and host case, default ports).
pub fn same_url(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b || a.as_str().trim_end_matches('/') == b.as_str().trim_end_matches('/'),
        _ => false,
    }
}

/// The metadata URLs to try for `url`, on its origin: the URL itself when it is one, then for
/// each issuer candidate (its path prefixes, longest first, then the origin) the OIDC place
/// (`{issuer}/.well-known/openid-configuration`) and RFC 8414's, the well-known segment between
/// host and path (`/.well-known/oauth-authorization-server{path}`, and the same for
/// `openid-configuration`).
pub fn candidates(url: &Url) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    let mut add = |path: String| {
        let mut u = url.clone();
        u.set_path(&path);
        u.set_query(None);
        u.set_fragment(None);
        if !out.contains(&u) {
            out.push(u);
        }
    };
    if url.path().contains("/.well-known/") {
        add(url.path().to_string());
    }
    let segments: Vec<&str> = url
        .path()
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".well-known")
        .collect();
    // The issuer is a prefix of the URL's path: every proper prefix, and the whole path when it
    // may be the issuer itself (no `.well-known` in it).
    let whole = !url.path().contains("/.well-known/");
    let longest = match whole {
        true => segments.len(),
        false => segments.len().saturating_sub(1),
    };
    for n in (1..=longest.min(MAX_PREFIXES)).rev() {
        let prefix = format!("/{}", segments[..n].join("/"));
        add(format!("{prefix}/.well-known/openid-configuration"));
        add(format!("/.well-known/oauth-authorization-server{prefix}"));
        add(format!("/.well-known/openid-configuration{prefix}"));
    }
    add("/.well-known/openid-configuration".into());
    add("/.well-known/oauth-authorization-server".into());
    out
}

/// What one metadata URL answered.
pub enum Answer {
    Found(Metadata),
    /// Nothing there (404 and the like): said by no one.
    Absent,
    /// Something worth saying (a redirect, an endless body, not JSON).
    Odd(String),
    /// The origin did not answer at all: the other candidates on it are not tried.
    Unreachable(String),
}

/// GETs `url` with `client` (anonymous, no redirects) and reads it as a metadata document.
pub async fn fetch(client: &reqwest::Client, url: &Url) -> Answer {
    let shown = crate::redact::url(url.as_str());
    let resp = match client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Answer::Unreachable(format!("{shown}: {}", e.without_url())),
    };
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| short(&String::from_utf8_lossy(l.as_bytes()), 120))
            .unwrap_or_default();
        return Answer::Odd(format!(
            "metadata at {shown} redirects (HTTP {status} to `{to}`): not followed"
        ));
    }
    if status != 200 {
        return Answer::Absent;
    }
    let body = match crate::http::body::read(resp, LIMIT).await {
        Ok(b) => b,
        Err(e) => return Answer::Odd(format!("metadata at {shown}: {}; ignored", short(&e.detail, 160))),
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.is_object() => Answer::Found(Metadata::from_json(url.as_str(), &v)),
        _ => Answer::Absent,
    }
}

/// The first metadata document among [`candidates`] of `url` that `accept` takes; what was
/// learnt on the way (redirects, refused documents) goes to `heard`.
pub async fn find(
    url: &Url,
    timeout: Duration,
    heard: &mut Vec<String>,
    accept: impl Fn(&Metadata) -> Result<(), String>,
) -> Option<Metadata> {
    let client = crate::http::bare(timeout);
    for candidate in candidates(url) {
        match fetch(&client, &candidate).await {
            Answer::Found(m) => match accept(&m) {
                Ok(()) => return Some(m),
                Err(why) => heard.push(why),
            },
            Answer::Absent => {}
            Answer::Odd(why) => heard.push(why),
            Answer::Unreachable(why) => {
                heard.push(format!("no OAuth2 metadata: {why}"));
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(url: &str) -> Vec<String> {
        candidates(&Url::parse(url).unwrap())
            .iter()
            .map(|u| u.path().to_string())
            .collect()
    }

    #[test]
    fn keycloaks_issuer_is_among_the_candidates() {
        let p = paths("https://idp.test/realms/R/protocol/openid-connect/token");
        assert!(
            p.contains(&"/realms/R/.well-known/openid-configuration".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"/.well-known/oauth-authorization-server/realms/R".to_string()),
            "{p:?}"
        );
        assert_eq!(p.last().unwrap(), "/.well-known/oauth-authorization-server");
        // Longest prefix first, all on the origin given.
        assert_eq!(
            p[0],
            "/realms/R/protocol/openid-connect/token/.well-known/openid-configuration"
        );
        let all = candidates(&Url::parse("https://idp.test/a?x=1#f").unwrap());
        assert!(
            all.iter()
                .all(|u| u.origin() == Url::parse("https://idp.test").unwrap().origin() && u.query().is_none())
        );
    }

    #[test]
    fn a_metadata_url_is_tried_first() {
        let p = paths("https://idp.test/realms/R/.well-known/openid-configuration");
        assert_eq!(p[0], "/realms/R/.well-known/openid-configuration");
        assert_eq!(p.iter().filter(|x| x.contains("realms/R/.well-known")).count(), 1);
    }

    #[test]
    fn urls_compare_as_urls() {
        assert!(same_url(
            "HTTP://Idp.test:80/oauth/token",
            "http://idp.test/oauth/token"
        ));
        assert!(!same_url("http://idp.test/oauth/token", "http://evil.test/oauth/token"));
        assert!(!same_url("not a url", "not a url"));
    }

    #[test]
    fn lists_are_short_and_typed() {
        let v = serde_json::json!({"token_endpoint": "http://a/t", "grant_types_supported": ["password", 3],
            "token_endpoint_auth_methods_supported": "client_secret_basic"});
        let m = Metadata::from_json("http://a/.well-known/openid-configuration", &v);
        assert_eq!(m.grant_types, Some(vec!["password".to_string()]));
        assert_eq!(m.auth_methods, None);
        assert!(m.on_own_origin("http://a/x") && !m.on_own_origin("http://b/x"));
    }
}
