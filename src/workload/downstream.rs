//! How a linked service is read, the way real downstreams are: where the user is found (a URL by
//! id, or a query whose answer holds a list with the user in it), and with what credentials.
//! URL templates are checked when the workload loads; their placeholders are percent-encoded
//! (everything but RFC 3986's unreserved characters), which is right in a path segment and in a
//! query value alike.

use std::ops::Range;

use serde::Deserialize;

use super::auth::{self, Credentials};
use super::error::{At, Source, WorkloadError};
use crate::http::Secret;
use crate::http::client::encode_query_into;

/// A read URL with `{id}` and `{userName}` placeholders, origin-relative or absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlTemplate {
    /// The template with its literal query text encoded (`filter=userName eq "{userName}"`
    /// becomes `filter=userName%20eq%20%22{userName}%22`).
    text: String,
}

const PLACEHOLDERS: &[&str] = &["{id}", "{userName}"];

impl UrlTemplate {
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        let text = text.trim();
        if !(text.starts_with('/') || text.starts_with("http://") || text.starts_with("https://")) {
            return Err(format!(
                "`{text}`: a read URL starts with `/` (on the target) or http(s)://"
            ));
        }
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c + 1)
                .ok_or_else(|| format!("`{text}`: unclosed `{{`"))?;
            let name = &rest[open..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "`{text}`: unknown placeholder `{name}` (known: {{id}}, {{userName}})"
                ));
            }
            rest = &rest[close..];
        }
        let query_at = text.find('?').unwrap_or(text.len());
        let encoded = format!("{}{}", &text[..query_at], encode_literal_query(&text[query_at..]));
        let t = UrlTemplate { text: encoded };
        // What a real user's values give must be a URL.
        let sample = t
            .render("0f8f6c1e-5d0a", "pb-1a2b3c4d-7+x@example.test")
            .unwrap_or_default();
        let absolute = if sample.starts_with('/') {
            format!("http://target.invalid{sample}")
        } else {
            sample
        };
        reqwest::Url::parse(&absolute).map_err(|e| format!("`{text}` does not make a valid URL: {e}"))?;
        Ok(t)
    }

    /// The URL for one user: each value encoded for the part of the URL it fills; `None` when
    /// the id (the target's answer) cannot be one path segment (threat-model invariant 1: `..`
    /// passes a query encoding unchanged and would name the collection's parent).
    pub fn render(&self, id: &str, user_name: &str) -> Option<String> {
        // Everything but RFC 3986's unreserved characters is escaped: right in a path segment
        // and in a query value alike. One pass, one string (a probe renders one for each read).
        let mut out = String::with_capacity(self.text.len() + id.len() + 3 * user_name.len());
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            rest = if let Some(after) = tail.strip_prefix("{id}") {
                out.push_str(crate::http::url::segment(id).ok()?.as_str());
                after
            } else if let Some(after) = tail.strip_prefix("{userName}") {
                encode_query_into(user_name, &mut out);
                after
            } else {
                out.push('{');
                &tail[1..]
            };
        }
        out.push_str(rest);
        Some(out)
    }

    /// The query parameter that holds the placeholders, when only it does (`filter=userName eq
    /// "{userName}"`): its place in the text, and whether the expression is compound.
    fn batch_param(&self) -> Option<(usize, usize)> {
        let query_at = self.text.find('?')?;
        if self.text[..query_at].contains('{') {
            return None;
        }
        let mut start = query_at + 1;
        let mut found = None;
        for param in self.text[query_at + 1..].split('&') {
            if param.contains('{') {
                if found.is_some() || !param.contains('=') {
                    return None;
                }
                found = Some((start, start + param.len()));
            }
            start += param.len() + 1;
        }
        found
    }

    /// Whether one query can ask for several users at once ([`UrlTemplate::render_batch`]).
    pub fn batchable(&self) -> bool {
        self.batch_param().is_some()
    }

    /// One URL asking for every user in `users` (id, userName): the parameter with the
    /// placeholders is rendered for each and joined with SCIM's ` or ` (each side in parentheses
    /// when it is compound itself); `None` when the template cannot batch.
    pub fn render_batch<'a>(&self, users: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
        let (start, end) = self.batch_param()?;
        let param = &self.text[start..end];
        let (name, value) = param.split_once('=')?;
        let lower = value.to_ascii_lowercase();
        let compound = lower.contains("%20and%20") || lower.contains("%20or%20");
        let one = UrlTemplate {
            text: value.to_string(),
        };
        // A user whose id cannot be one value is left out of the batch (never observed there).
        let parts: Vec<String> = users
            .into_iter()
            .filter_map(|(id, user_name)| {
                let part = one.render(id, user_name)?;
                Some(if compound { format!("%28{part}%29") } else { part })
            })
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "{}{name}={}{}",
            &self.text[..start],
            parts.join("%20or%20"),
            &self.text[end..]
        ))
    }

    /// The text as given (for messages).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `scheme://host[:port]` of an absolute template.
    pub fn origin(&self) -> Option<String> {
        reqwest::Url::parse(&self.render("x", "x")?)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }
}

/// The literal text of a query (`?a=b c&d="e"`): what cannot stand in a URL is escaped, the
/// structure (`?`, `&`, `=`), escapes already there and placeholders are kept.
fn encode_literal_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 16);
    let mut in_placeholder = false;
    for c in query.chars() {
        match c {
            '{' => {
                in_placeholder = true;
                out.push(c);
            }
            '}' => {
                in_placeholder = false;
                out.push(c);
            }
            _ if in_placeholder => out.push(c),
            c if c.is_ascii_alphanumeric() || "-._~?&=%/:@!$'()*+,;".contains(c) => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Where a service keeps the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Find {
    /// `GET url` answers the user (404/410 when absent).
    ById(UrlTemplate),
    /// `GET url` answers a document whose `list` (a JSON pointer) holds the users that match;
    /// the user is the item whose `identity` pointer equals its userName. An empty or
    /// non-matching list means absent.
    Query {
        url: UrlTemplate,
        list: String,
        identity: String,
    },
}

impl Find {
    pub fn url(&self) -> &UrlTemplate {
        match self {
            Find::ById(u) | Find::Query { url: u, .. } => u,
        }
    }
}

/// The credentials a service's reads carry.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAuth {
    /// The target's own (the default for a URL relative to the target's origin; a service on
    /// another origin gets them only by asking, `auth = "target"`).
    Target,
    /// No `auth` given for an absolute URL: the target's own when the URL is on the target's
    /// origin (however it is written), none elsewhere. Decided when the run knows its target.
    Default,
    None,
    Bearer(Secret),
    Basic {
        username: String,
        password: Secret,
    },
    /// OAuth2 client credentials at the service's own token endpoint (an
    /// [`Auth::ClientCredentials`](crate::http::settings::Auth::ClientCredentials)).
    OAuth2(crate::http::settings::Auth),
}

/// A header value, literal or from the environment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    Literal(String),
    Env { env: String },
}

/// Builds the headers a client sends, reading values from the environment now (those are
/// secrets from here on: no output shows them). `what` names the section for errors.
pub fn header_map(headers: &[(String, HeaderValue)], what: &str) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, source) in headers {
        let value = match source {
            HeaderValue::Literal(v) => v.clone(),
            HeaderValue::Env { env } => {
                let v = std::env::var(env)
                    .map_err(|_| anyhow::anyhow!("{what}: header `{name}`: environment variable `{env}` is not set"))?;
                crate::redact::register(&v);
                v
            }
        };
        let mut header = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|e| anyhow::anyhow!("{what}: header `{name}`: {e}"))?;
        header.set_sensitive(matches!(source, HeaderValue::Env { .. }));
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| anyhow::anyhow!("{what}: header `{name}`: {e}"))?,
            header,
        );
    }
    Ok(map)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub auth: ServiceAuth,
    pub headers: Vec<(String, HeaderValue)>,
    /// A private CA and client certificate for an https:// service.
    pub tls: crate::http::Tls,
}

impl ServiceAuth {
    /// `auth` at `at` (its path in the document and its span): `"target"`, `"none"`, or a
    /// credentials table read as the shape its `kind` names. Without it, reads relative to the
    /// target's origin (`relative`) carry the target's credentials, and an absolute URL gets
    /// [`ServiceAuth::Default`] (the target's on its origin, none elsewhere).
    pub fn from_wire(
        src: &Source,
        at: Option<(&[At], Range<usize>)>,
        relative: bool,
        service: &str,
    ) -> Result<ServiceAuth, WorkloadError> {
        let Some((path, span)) = at else {
            return Ok(if relative {
                ServiceAuth::Target
            } else {
                ServiceAuth::Default
            });
        };
        let what = format!("probes.sync `{service}` auth");
        if let Some(name) = src.reread::<String>(path).ok().flatten() {
            return match name.as_str() {
                "target" => Ok(ServiceAuth::Target),
                "none" => Ok(ServiceAuth::None),
                other => Err(src.error(
                    Some(span),
                    format!("probes.sync `{service}`: auth `{other}` (known: \"target\", \"none\", or a table)"),
                )),
            };
        }
        let kinds = ["bearer", "basic", "oauth2-client-credentials"];
        Ok(match auth::read(src, path, &what, &kinds, Some(span.clone()))? {
            Credentials::Bearer(b) => ServiceAuth::Bearer(b.secret(src, &what, Some(span))?),
            Credentials::Basic(b) => ServiceAuth::Basic {
                username: b.username,
                password: Secret::Env(b.password_env),
            },
            Credentials::OAuth2(o) => ServiceAuth::OAuth2(o.client_credentials(src, &what, Some(span))?),
            Credentials::None => ServiceAuth::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The one-pass rendering is the rendering of each placeholder replaced in turn (what
        /// it was), for any template text, id and name; an id that cannot be one segment
        /// renders nothing where the template names it.
        #[test]
        fn one_pass_renders_what_replacing_each_placeholder_did(
            text in "(/[a-z]{1,4}|\\{id\\}|\\{userName\\}|\\{|\\}|\\?q=|&){0,8}",
            id in "[a-z0-9./%{}-]{0,6}",
            name in "[a-zA-Z0-9@+ {}\"-]{0,8}",
        ) {
            let t = UrlTemplate { text: text.clone() };
            let replaced = match text.contains("{id}") {
                true => crate::http::url::segment(&id).ok().map(|s| s.to_string()),
                false => Some(String::new()),
            }
            .map(|seg| text.replace("{id}", &seg).replace("{userName}", &crate::http::client::encode_query(&name)));
            proptest::prop_assert_eq!(t.render(&id, &name), replaced);
        }
    }

    #[test]
    fn placeholders_are_encoded_for_their_part_of_the_url() {
        let by_id = UrlTemplate::parse("/crm/users/{id}").unwrap();
        assert_eq!(by_id.render("a b@c", "x").as_deref(), Some("/crm/users/a%20b%40c"));
        let query = UrlTemplate::parse("/crm/Users?filter=userName eq \"{userName}\"&count=1").unwrap();
        assert_eq!(
            query.render("1", "pb-1+x@example.test").as_deref(),
            Some("/crm/Users?filter=userName%20eq%20%22pb-1%2Bx%40example.test%22&count=1")
        );
        assert_eq!(
            UrlTemplate::parse("https://crm.example.test/api/users?email={userName}")
                .unwrap()
                .origin()
                .as_deref(),
            Some("https://crm.example.test")
        );
    }

    #[test]
    fn an_id_that_is_no_segment_names_no_url() {
        let by_id = UrlTemplate::parse("/crm/users/{id}").unwrap();
        for id in ["..", ".", "a/b", "%2e%2e", "\u{FF0E}\u{FF0E}", ""] {
            assert_eq!(by_id.render(id, "x"), None, "{id:?}");
        }
        let batch = UrlTemplate::parse("/crm/Users?filter=id eq \"{id}\"").unwrap();
        assert_eq!(
            batch.render_batch([("..", "x"), ("7", "y")]).as_deref(),
            Some("/crm/Users?filter=id%20eq%20%227%22")
        );
    }

    #[test]
    fn templates_that_cannot_work_are_refused() {
        assert!(
            UrlTemplate::parse("crm/users/{id}")
                .unwrap_err()
                .contains("starts with")
        );
        assert!(
            UrlTemplate::parse("/users/{uid}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(UrlTemplate::parse("/users/{id").unwrap_err().contains("unclosed"));
        assert!(
            UrlTemplate::parse("http://[bad/users/{id}")
                .unwrap_err()
                .contains("valid URL")
        );
    }

    /// One query for several users: the filter is repeated with `or` (parenthesised when it is
    /// compound), the other parameters stay; by-id URLs and placeholders in two places cannot batch.
    #[test]
    fn a_query_batches_its_users_with_or() {
        let q = UrlTemplate::parse("/crm/Users?filter=userName eq \"{userName}\"&count=100").unwrap();
        assert_eq!(
            q.render_batch([("1", "a@x"), ("2", "b+c@x")]).unwrap(),
            "/crm/Users?filter=userName%20eq%20%22a%40x%22%20or%20userName%20eq%20%22b%2Bc%40x%22&count=100"
        );
        let compound = UrlTemplate::parse("/crm/Users?filter=userName eq \"{userName}\" and active pr").unwrap();
        assert_eq!(
            compound.render_batch([("1", "a"), ("2", "b")]).unwrap(),
            "/crm/Users?filter=%28userName%20eq%20%22a%22%20and%20active%20pr%29%20or%20%28userName%20eq%20%22b%22%20and%20active%20pr%29"
        );
        for single in [
            "/crm/Users/{id}",
            "/crm/Users/{id}?attributes=active",
            "/u?a={id}&b={userName}",
        ] {
            assert!(!UrlTemplate::parse(single).unwrap().batchable(), "{single}");
        }
        assert_eq!(q.render_batch(std::iter::empty()), None);
    }
}
