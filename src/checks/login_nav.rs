//! Where the browser-style sign-in may go, and how it gets there (threat-model invariants 2, 3
//! and 6). An IdP's pages name URLs (a `Location`, a form's `action`); [`allowed`] is the one
//! decision whether such a URL is requested: only on an origin the workload names for the IdP
//! (those of `authorize_url` and `token_url`, and `login_flow.idp_origins`), never with userinfo.
//! [`Navigator`] follows redirects by hand through it, one hop at a time and at most [`HOPS`],
//! recognises the redirect to `redirect_uri` without fetching it, keeps the IdP's cookies in an
//! RFC 6265 store (domain, path and `Secure` scoping) and reads every page within [`PAGE_LIMIT`].

use cookie_store::CookieStore;
use reqwest::Url;
use reqwest::header::{self, HeaderMap};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::http::body;

/// Redirects followed for one request before the sign-in gives up.
pub const HOPS: usize = 10;

/// The largest login page, token or userinfo answer read: a login page is a few kilobytes.
pub const PAGE_LIMIT: usize = 1024 * 1024;

/// The origins the sign-in may send a request to, as their ASCII serialization (canonical:
/// lower-case scheme and host, the port only when not the scheme's default).
#[derive(Debug, Clone, PartialEq)]
pub struct IdpOrigins(Vec<String>);

impl IdpOrigins {
    /// The origins of `urls` (those that parse as absolute http(s) URLs).
    pub fn new<'a>(urls: impl IntoIterator<Item = &'a str>) -> IdpOrigins {
        let mut origins: Vec<String> = Vec::new();
        for u in urls {
            if let Ok(u) = Url::parse(u)
                && matches!(u.scheme(), "http" | "https")
            {
                let o = u.origin().ascii_serialization();
                if !origins.contains(&o) {
                    origins.push(o);
                }
            }
        }
        IdpOrigins(origins)
    }

    fn admits(&self, url: &Url) -> bool {
        // An opaque origin (data:, javascript:, file:) equals no other origin: never admitted.
        let origin = url.origin();
        origin.is_tuple() && self.0.contains(&origin.ascii_serialization())
    }

    fn names(&self) -> String {
        self.0.join(", ")
    }
}

/// Why a URL an IdP page named is not requested.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("`{0}`, which is not a URL")]
    Unparsable(String),
    #[error("{0}, which carries a user name or password")]
    Userinfo(String),
    #[error("{origin}, which is not one of the IdP origins the workload names ({idp})")]
    Foreign { origin: String, idp: String },
}

/// The one decision of where the sign-in may go: `reference` (a `Location` or a form's
/// `action`) resolved against `base` (the page that named it) as a browser resolves it (so
/// `//evil`, `/\evil`, `http://idp@evil` and `%65vil` mean the host the request would reach),
/// admitted only on an IdP origin and without userinfo. The fragment is dropped (never sent).
pub fn allowed(base: &Url, reference: &str, idp: &IdpOrigins) -> Result<Url, Refusal> {
    let mut url = base
        .join(reference)
        .map_err(|_| Refusal::Unparsable(sample(reference)))?;
    url.set_fragment(None);
    let origin = url.origin().ascii_serialization();
    if !idp.admits(&url) {
        return Err(Refusal::Foreign {
            origin,
            idp: idp.names(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Userinfo(origin));
    }
    Ok(url)
}

/// How every refusal's message ends: [`is_refusal`] knows it by that.
const NOTHING_SENT: &str = "; nothing was sent there";

/// `what` (the IdP redirected to, the IdP's form posts to) and the refusal, as a check's reason.
fn refused(what: &str, r: Refusal) -> String {
    format!("{what} {r}{NOTHING_SENT}")
}

/// Whether a sign-in's error is a refusal of where the IdP's pages lead: no retry changes it.
pub fn is_refusal(error: &str) -> bool {
    error.ends_with(NOTHING_SENT)
}

/// At most 120 characters of a value from a page, for a message.
fn sample(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Whether `url` is the redirect to the client's `redirect_uri` (same origin and path): that
/// one carries the code and is never fetched.
pub fn is_callback(url: &Url, redirect_uri: &Url) -> bool {
    url.origin() == redirect_uri.origin() && url.path() == redirect_uri.path()
}

/// One page the IdP showed.
pub struct Page {
    pub status: u16,
    pub url: Url,
    pub body: String,
}

/// Where a request ended, its redirects followed.
pub enum Landing {
    Page(Page),
    /// The redirect to `redirect_uri`, not fetched.
    Callback(Url),
}

/// One sign-in's browser: its cookies, the IdP origins, the callback it waits for.
pub struct Navigator<'a> {
    http: &'a reqwest::Client,
    idp: IdpOrigins,
    redirect_uri: Url,
    cookies: CookieStore,
    /// The checks' request count, one more for each page asked.
    sent: &'a AtomicU64,
}

impl<'a> Navigator<'a> {
    pub fn new(http: &'a reqwest::Client, idp: IdpOrigins, redirect_uri: Url, sent: &'a AtomicU64) -> Navigator<'a> {
        Navigator {
            http,
            idp,
            redirect_uri,
            cookies: CookieStore::default(),
            sent,
        }
    }

    /// GET `reference` (resolved against `from`), following redirects.
    pub async fn get(&mut self, from: &Url, reference: &str) -> Result<Landing, String> {
        let url = allowed(from, reference, &self.idp).map_err(|r| refused("the sign-in would go to", r))?;
        self.go(url, None).await
    }

    /// Submits a form's `fields` to its `action` (resolved against `from`) with `method`:
    /// only to an IdP origin, so the password goes nowhere else.
    pub async fn submit(
        &mut self,
        from: &Url,
        action: &str,
        method: &str,
        fields: Vec<(String, String)>,
    ) -> Result<Landing, String> {
        let mut url = allowed(from, action, &self.idp).map_err(|r| refused("the IdP's form posts to", r))?;
        if method == "post" {
            return self.go(url, Some(fields)).await;
        }
        url.query_pairs_mut().extend_pairs(fields);
        self.go(url, None).await
    }

    /// Sends one request, then follows its redirects by hand, each with a GET (a 307 does not
    /// resend the form: the password goes once, to the action admitted).
    async fn go(&mut self, mut url: Url, mut form: Option<Vec<(String, String)>>) -> Result<Landing, String> {
        for _ in 0..=HOPS {
            let mut request = match form.take() {
                Some(fields) => self.http.post(url.clone()).form(&fields),
                None => self.http.get(url.clone()),
            };
            if let Some(cookies) = self.cookie_header(&url) {
                request = request.header(header::COOKIE, cookies);
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
            let resp = request
                .send()
                .await
                .map_err(|e| format!("{}: {}", url.path(), e.without_url()))?;
            self.keep_cookies(resp.headers(), &url);
            let status = resp.status().as_u16();
            let location = resp.headers().get(header::LOCATION).cloned();
            if !(300..400).contains(&status) || status == 304 {
                let body = body::text(resp, PAGE_LIMIT)
                    .await
                    .map_err(|e| format!("{}: {}", url.path(), e.detail))?;
                return Ok(Landing::Page(Page { status, url, body }));
            }
            let Some(location) = location else {
                return Err(format!("HTTP {status} without a Location from {}", url.path()));
            };
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            let next = url
                .join(&location)
                .map_err(|_| refused("the IdP redirected to", Refusal::Unparsable(sample(&location))))?;
            if is_callback(&next, &self.redirect_uri) {
                return Ok(Landing::Callback(next));
            }
            url = allowed(&url, &location, &self.idp).map_err(|r| refused("the IdP redirected to", r))?;
        }
        Err(format!("more than {HOPS} redirects in a row from the IdP"))
    }

    fn cookie_header(&self, url: &Url) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .get_request_values(url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Stores the cookies `url` set, as RFC 6265 allows (a `Domain` the host does not
    /// domain-match is dropped, as a browser drops it).
    fn keep_cookies(&mut self, headers: &HeaderMap, url: &Url) {
        for value in headers.get_all(header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                let _ = self.cookies.parse(text, url);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const IDP: [&str; 2] = ["https://idp.example.test:8443", "http://127.0.0.1:9000"];

    fn idp() -> IdpOrigins {
        IdpOrigins::new(
            IDP.iter()
                .map(|o| format!("{o}/oauth/authorize"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
    }

    fn page() -> Url {
        Url::parse("https://idp.example.test:8443/realms/x/login?step=1").unwrap()
    }

    #[test]
    fn the_idps_own_urls_are_followed() {
        for (reference, to) in [
            (
                "/login-actions/authenticate?code=1",
                "https://idp.example.test:8443/login-actions/authenticate?code=1",
            ),
            ("next", "https://idp.example.test:8443/realms/x/next"),
            (
                "HTTPS://IDP.Example.TEST:8443/a#frag",
                "https://idp.example.test:8443/a",
            ),
            ("http://127.0.0.1:9000/consent", "http://127.0.0.1:9000/consent"),
            ("", "https://idp.example.test:8443/realms/x/login?step=1"),
        ] {
            assert_eq!(
                allowed(&page(), reference, &idp()).map(String::from),
                Ok(to.to_string()),
                "{reference}"
            );
        }
    }

    #[test]
    fn every_other_origin_is_refused_and_named() {
        for (reference, named) in [
            ("https://evil.test/steal", "https://evil.test"),
            ("//evil.test/steal", "https://evil.test"),
            ("/\\evil.test/steal", "https://evil.test"),
            ("https://idp.example.test:8443@evil.test/", "https://evil.test"),
            ("https://idp.example.test:8443/", ""),
            ("http://idp.example.test:8443/", "http://idp.example.test:8443"),
            ("https://idp.example.test/", "https://idp.example.test"),
            ("https://%65vil.test/", "https://evil.test"),
            ("http://127.0.0.1:9001/", "http://127.0.0.1:9001"),
            ("javascript:alert(1)", "null"),
        ] {
            match allowed(&page(), reference, &idp()) {
                Err(Refusal::Foreign { origin, idp }) => {
                    assert_eq!(origin, named, "{reference}");
                    assert!(idp.contains("https://idp.example.test:8443"), "{idp}");
                }
                other if named.is_empty() => assert!(other.is_ok(), "{reference}: {other:?}"),
                other => panic!("{reference}: {other:?}"),
            }
        }
        let userinfo = allowed(&page(), "https://ada:pw@idp.example.test:8443/", &idp());
        assert_eq!(userinfo, Err(Refusal::Userinfo("https://idp.example.test:8443".into())));
    }

    #[test]
    fn the_callback_is_recognised_by_origin_and_path() {
        let cb = Url::parse("https://app.example.test/callback").unwrap();
        let is = |u: &str| is_callback(&Url::parse(u).unwrap(), &cb);
        assert!(is("https://app.example.test/callback?code=c&state=s"));
        assert!(!is("https://app.example.test/callback2?code=c"));
        assert!(!is("http://app.example.test/callback?code=c"));
        assert!(!is("https://app.example.test.evil.test/callback?code=c"));
    }

    /// Locations and form actions an IdP page might carry, hostile most of them.
    fn reference() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec![
            "http",
            "https",
            "HTTP",
            "hTtPs",
            "ftp",
            "ws",
            "file",
            "javascript",
            "data",
        ]);
        let host = prop::sample::select(vec![
            "evil.test",
            "EVIL.test",
            "idp.example.test",
            "idp.example.test.evil.test",
            "%65vil.test",
            "idp.example.test:8443@evil.test",
            "idp.example.test%40evil.test",
            "127.0.0.1",
            "127.0.0.1:9000@evil.test",
            "0x7f.0.0.1",
            "[::1]",
            "idp.example.test.",
            "xn--idp-example-test",
            "idp\u{2024}example\u{2024}test",
            "evil.test#@idp.example.test",
        ]);
        let port = prop::sample::select(vec!["", ":8443", ":443", ":80", ":9000", ":9001", ":0", ":65535"]);
        // Half the time an IdP origin itself, spelt in another case, so that what follows it
        // (userinfo, paths) is put to the test too.
        let authority = prop_oneof![
            (scheme, host, port),
            prop::sample::select(vec![
                ("https", "idp.example.test", ":8443"),
                ("HTTPS", "IDP.example.TEST", ":8443"),
                ("http", "127.0.0.1", ":9000"),
            ]),
        ];
        let userinfo = prop::sample::select(vec!["", "ada@", "ada:pw@", "idp.example.test@", "%40@", ":@"]);
        let path = prop::sample::select(vec![
            "",
            "/",
            "/login",
            "/%2e%2e/x",
            "/a?b=c",
            "#f",
            "/\\evil.test",
            "?x",
        ]);
        let form = prop::sample::select(vec![
            "{s}://{u}{h}{p}{a}",
            "//{u}{h}{p}{a}",
            "/\\{h}{p}{a}",
            "\\\\{h}{p}{a}",
            "{s}:{h}{p}{a}",
            "{s}:/{h}{p}{a}",
            " \t//{h}{p}{a}",
            "\n{s}://{u}{h}{p}{a}",
            "{a}",
            "{h}{a}",
        ]);
        (form, authority, userinfo, path).prop_map(|(f, (s, h, p), u, a)| {
            f.replace("{s}", s)
                .replace("{u}", u)
                .replace("{h}", h)
                .replace("{p}", p)
                .replace("{a}", a)
        })
    }

    proptest! {
        /// Whatever a page names, a URL admitted is one the IdP origins name, as the request
        /// line's target would be written: its serialization begins with one of them and a
        /// `/`, and it carries no userinfo (reqwest would send it as Basic credentials).
        #[test]
        fn nothing_but_an_idp_origin_is_admitted(reference in reference(), https_page in any::<bool>()) {
            let from = if https_page { page() } else { Url::parse("http://127.0.0.1:9000/authorize").unwrap() };
            if let Ok(url) = allowed(&from, &reference, &idp()) {
                let s = url.as_str();
                prop_assert!(IDP.iter().any(|o| s.starts_with(&format!("{o}/"))), "{:?} admitted as {}", reference, s);
                prop_assert!(url.username().is_empty() && url.password().is_none(), "{:?}", reference);
                prop_assert!(url.fragment().is_none());
            }
        }

        /// And it is not a wall: a path on the page's own origin is followed.
        #[test]
        fn a_path_on_the_idp_is_admitted(path in "/[a-zA-Z0-9._~-]{1,20}(/[a-zA-Z0-9._~-]{0,10}){0,3}(\\?[a-z=&]{0,10})?") {
            prop_assert!(allowed(&page(), &path, &idp()).is_ok(), "{:?}", path);
        }
    }
}
