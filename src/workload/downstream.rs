//! How a linked service is read, the way real downstreams are: where the user is found (a URL by
//! id, or a query whose answer holds a list with the user in it), and with what credentials.
//! URL templates are checked when the workload loads; their placeholders are percent-encoded
//! (everything but RFC 3986's unreserved characters), which is right in a path segment and in a
//! query value alike.

use serde::Deserialize;

use crate::http::Secret;
use crate::http::client::encode_query;

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
        let sample = t.render("0f8f6c1e-5d0a", "pb-1a2b3c4d-7+x@example.test");
        let absolute = if sample.starts_with('/') {
            format!("http://target.invalid{sample}")
        } else {
            sample
        };
        reqwest::Url::parse(&absolute).map_err(|e| format!("`{text}` does not make a valid URL: {e}"))?;
        Ok(t)
    }

    /// The URL for one user: each value encoded for the part of the URL it fills.
    pub fn render(&self, id: &str, user_name: &str) -> String {
        // Everything but RFC 3986's unreserved characters is escaped: right in a path segment
        // and in a query value alike.
        self.text
            .replace("{id}", &encode_query(id))
            .replace("{userName}", &encode_query(user_name))
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
        let parts: Vec<String> = users
            .into_iter()
            .map(|(id, user_name)| match compound {
                true => format!("%28{}%29", one.render(id, user_name)),
                false => one.render(id, user_name),
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
        reqwest::Url::parse(&self.render("x", "x"))
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
    /// The target's own (the default for reads on the target's origin, and only there unless
    /// a service asks for it explicitly).
    Target,
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

/// `auth = "target"`, `"none"`, or a table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ServiceAuthWire {
    Named(String),
    Table(ServiceAuthTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum ServiceAuthTable {
    Bearer {
        #[serde(default)]
        token_env: Option<String>,
        #[serde(default)]
        token_file: Option<String>,
    },
    Basic {
        username: String,
        password_env: String,
    },
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials {
        /// Absolute, or relative to the service's origin.
        token_url: String,
        client_id: String,
        #[serde(default)]
        client_secret_env: Option<String>,
        #[serde(default)]
        client_secret_file: Option<String>,
        #[serde(default)]
        scope: Option<String>,
        /// Sent as `audience` (the API the token is for, as Auth0-like servers ask).
        #[serde(default)]
        audience: Option<String>,
        /// `basic` (default) or `post`.
        #[serde(default)]
        client_auth: Option<String>,
    },
}

impl ServiceAuth {
    /// `relative`: the reads go to the target's origin (where the target's credentials are
    /// the default).
    pub fn from_wire(
        w: Option<ServiceAuthWire>,
        relative: bool,
        service: &str,
        base: &std::path::Path,
    ) -> Result<ServiceAuth, String> {
        Ok(match w {
            None if relative => ServiceAuth::Target,
            None => ServiceAuth::None,
            Some(ServiceAuthWire::Named(n)) => match n.as_str() {
                "target" => ServiceAuth::Target,
                "none" => ServiceAuth::None,
                other => {
                    return Err(format!(
                        "probes.sync `{service}`: auth `{other}` (known: \"target\", \"none\", or a table)"
                    ));
                }
            },
            Some(ServiceAuthWire::Table(ServiceAuthTable::Bearer { token_env, token_file })) => {
                ServiceAuth::Bearer(match (token_env, token_file) {
                    (Some(e), None) => Secret::Env(e),
                    (None, Some(f)) => Secret::File(base.join(f)),
                    _ => {
                        return Err(format!(
                            "probes.sync `{service}`: a bearer auth takes `token_env` or `token_file`"
                        ));
                    }
                })
            }
            Some(ServiceAuthWire::Table(ServiceAuthTable::Basic { username, password_env })) => ServiceAuth::Basic {
                username,
                password: Secret::Env(password_env),
            },
            Some(ServiceAuthWire::Table(ServiceAuthTable::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret_env,
                client_secret_file,
                scope,
                audience,
                client_auth,
            })) => ServiceAuth::OAuth2(crate::http::settings::Auth::ClientCredentials {
                audience,
                client_auth: client_auth
                    .as_deref()
                    .map(crate::http::settings::ClientAuth::parse)
                    .transpose()
                    .map_err(|m| format!("probes.sync `{service}`: {m}"))?
                    .unwrap_or_default(),
                token_url,
                client_id: crate::http::settings::ClientId::Literal(client_id),
                client_secret: match (client_secret_env, client_secret_file) {
                    (Some(e), None) => Some(Secret::Env(e)),
                    (None, Some(f)) => Some(Secret::File(base.join(f))),
                    (None, None) => None,
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "probes.sync `{service}`: give `client_secret_env` or `client_secret_file`, not both"
                        ));
                    }
                },
                scope,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_encoded_for_their_part_of_the_url() {
        let by_id = UrlTemplate::parse("/crm/users/{id}").unwrap();
        assert_eq!(by_id.render("a b/c", "x"), "/crm/users/a%20b%2Fc");
        let query = UrlTemplate::parse("/crm/Users?filter=userName eq \"{userName}\"&count=1").unwrap();
        assert_eq!(
            query.render("1", "pb-1+x@example.test"),
            "/crm/Users?filter=userName%20eq%20%22pb-1%2Bx%40example.test%22&count=1"
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
