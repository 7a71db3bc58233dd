//! Before sign-in: the token endpoint's metadata (OIDC discovery, RFC 8414), which client
//! authentication it takes. Read anonymously on the token URL's own origin
//! ([`super::oauth_meta`]); a document that names another token endpoint is not believed.
//! [`sign_in_hint`] turns a refused sign-in into the method to try.

use std::time::Duration;

use anyhow::bail;
use reqwest::Url;
use toml::Value;

use super::draft::{Draft, Entry, Found, Rule};
use super::oauth_meta::{self, Metadata};

/// `target`: the `[target]` table being written (or the checked workload's).
pub async fn discover(target: &toml::Table, timeout: Duration, draft: &mut Draft) -> anyhow::Result<()> {
    let Some(auth) = target.get("auth").and_then(Value::as_table) else {
        return Ok(());
    };
    if auth.get("kind").and_then(Value::as_str) != Some("oauth2-client-credentials") {
        return Ok(());
    }
    let Some(token_url) = token_url(target, auth) else {
        return Ok(());
    };
    let given = auth.get("client_auth").and_then(Value::as_str).map(str::to_string);
    let mut heard = Vec::new();
    let wanted = token_url.to_string();
    let found = oauth_meta::find(&token_url, timeout, &mut heard, |m| accept(m, &wanted)).await;
    for line in heard {
        draft.heard(line);
    }
    let Some(meta) = found else {
        draft.heard(format!(
            "no OAuth2 metadata at {} (.well-known/openid-configuration, .well-known/oauth-authorization-server); client_auth stays {} (set --client-auth post if sign-in fails)",
            crate::redact::url(token_url.origin().ascii_serialization().as_str()),
            given.as_deref().unwrap_or("basic")
        ));
        if given.is_none() {
            draft.set(
                "target",
                Entry::new("auth.client_auth", "basic")
                    .why("no OAuth2 metadata found: the default, client_secret_basic (RFC 6749 prefers it)"),
            );
        }
        return Ok(());
    };
    judge(&meta, given.as_deref(), draft)
}

/// The token URL, absolute (a relative one is on the target's origin, as a run reads it).
fn token_url(target: &toml::Table, auth: &toml::Table) -> Option<Url> {
    let url = auth.get("token_url").and_then(Value::as_str)?;
    match Url::parse(url) {
        Ok(u) => Some(u),
        Err(_) => {
            let base = target.get("base_url").and_then(Value::as_str)?;
            Url::parse(base).ok()?.join(url).ok()
        }
    }
}

/// A document is the token endpoint's only when it names that very endpoint.
fn accept(m: &Metadata, token_url: &str) -> Result<(), String> {
    match &m.token_endpoint {
        Some(t) if oauth_meta::same_url(t, token_url) => Ok(()),
        Some(t) => Err(format!(
            "metadata at {} names another token endpoint ({}); ignored",
            crate::redact::url(&m.url),
            crate::redact::url(t)
        )),
        None => Err(format!(
            "metadata at {} names no token endpoint; ignored",
            crate::redact::url(&m.url)
        )),
    }
}

/// `basic` → `client_secret_basic`.
fn wire(method: &str) -> String {
    format!("client_secret_{method}")
}

fn words(methods: &[&str]) -> String {
    match methods {
        [one] => format!("{} only", wire(one)),
        many => many.iter().map(|m| wire(m)).collect::<Vec<_>>().join(" and "),
    }
}

/// What the document says, written and heard.
fn judge(meta: &Metadata, given: Option<&str>, draft: &mut Draft) -> anyhow::Result<()> {
    let at = crate::redact::url(&meta.url);
    let methods = oauth_meta::usable(meta.auth_methods.as_deref());
    if methods.is_empty() {
        let listed = meta.auth_methods.clone().unwrap_or_default().join(", ");
        bail!(
            "the token endpoint's metadata ({at}) lists client authentication by {listed} only: provbench authenticates a client by client_secret_basic or client_secret_post, so it cannot sign in as this client (register one with a client secret)"
        );
    }
    if let Some(grants) = &meta.grant_types
        && !grants.iter().any(|g| g == "client_credentials")
    {
        draft.heard(format!(
            "warning: the metadata at {at} does not list the client_credentials grant (it lists {}): sign-in may be refused",
            grants.join(", ")
        ));
    }
    let implied = match meta.auth_methods {
        None => " (the metadata lists no methods: RFC 8414's default)",
        Some(_) => "",
    };
    let takes = format!("the token endpoint takes {}{implied}", words(&methods));
    let found = Found::one_of(methods.iter().map(|m| Value::from(*m)).collect()).implied("basic");
    let entry = match given {
        Some(g) if methods.contains(&g) => Entry::new("auth.client_auth", g).why(format!("{takes}; as given")),
        Some(g) => {
            draft.heard(format!(
                "--client-auth {g}: the token endpoint's metadata at {at} lists {} only; kept as given, but sign-in will likely be refused (try --client-auth {})",
                methods.iter().map(|m| wire(m)).collect::<Vec<_>>().join(", "),
                methods[0]
            ));
            Entry::new("auth.client_auth", g).why(format!(
                "as given with --client-auth, though {takes} (its metadata says so)"
            ))
        }
        None => {
            draft.heard(format!("{takes} (metadata at {at})"));
            Entry::new("auth.client_auth", methods[0]).why(takes)
        }
    };
    draft.set("target", entry.found(found));
    Ok(())
}

/// A sign-in refused with `invalid_client` while the metadata lists another method than the one
/// used: the error, with the method to try. Any other error is returned as it was.
pub fn sign_in_hint(err: anyhow::Error, draft: &Draft) -> anyhow::Error {
    let text = format!("{err:#}");
    if !text.contains("invalid_client") {
        return err;
    }
    let Some(entry) = draft.entry("target", &["auth", "client_auth"]) else {
        return err;
    };
    let used = entry.value.as_str().unwrap_or("basic");
    let other = entry.found.as_ref().and_then(|f| match &f.rule {
        Rule::OneOf(values) => values.iter().filter_map(Value::as_str).find(|m| *m != used),
        _ => None,
    });
    match other {
        Some(other) => err.context(format!(
            "the token endpoint refused the client (invalid_client) authenticating by {}; its metadata lists {}: try --client-auth {other} (auth.client_auth = \"{other}\")",
            wire(used),
            wire(other)
        )),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(methods: Option<&[&str]>, grants: Option<&[&str]>) -> Metadata {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Metadata {
            url: "http://idp.test/.well-known/openid-configuration".into(),
            token_endpoint: Some("http://idp.test/oauth/token".into()),
            auth_methods: methods.map(own),
            grant_types: grants.map(own),
            ..Metadata::default()
        }
    }

    fn written(d: &Draft) -> Option<String> {
        d.get("target", "auth.client_auth")
            .and_then(|v| v.as_str())
            .map(String::from)
    }

    #[test]
    fn the_method_the_endpoint_takes_is_written() {
        for (methods, given, expect) in [
            (Some(&["client_secret_post"][..]), None, "post"),
            (Some(&["client_secret_basic", "client_secret_post"][..]), None, "basic"),
            (None, None, "basic"),
            (
                Some(&["client_secret_post", "private_key_jwt"][..]),
                Some("basic"),
                "basic",
            ),
        ] {
            let mut d = Draft::new();
            judge(&meta(methods, None), given, &mut d).unwrap();
            assert_eq!(written(&d).as_deref(), Some(expect), "{methods:?}");
            if given == Some("basic") {
                assert!(
                    d.heard.iter().any(|h| h.contains("try --client-auth post")),
                    "{:?}",
                    d.heard
                );
            }
        }
    }

    #[test]
    fn a_client_provbench_cannot_authenticate_is_an_error() {
        let mut d = Draft::new();
        let e = judge(&meta(Some(&["private_key_jwt", "tls_client_auth"]), None), None, &mut d).unwrap_err();
        assert!(e.to_string().contains("private_key_jwt"), "{e}");
    }

    #[test]
    fn a_missing_client_credentials_grant_is_a_warning() {
        let mut d = Draft::new();
        judge(&meta(None, Some(&["authorization_code"])), None, &mut d).unwrap();
        assert!(
            d.heard.iter().any(|h| h.contains("client_credentials")),
            "{:?}",
            d.heard
        );
    }

    #[test]
    fn a_refused_client_is_told_the_other_method() {
        let mut d = Draft::new();
        judge(
            &meta(Some(&["client_secret_basic", "client_secret_post"]), None),
            None,
            &mut d,
        )
        .unwrap();
        let e = sign_in_hint(anyhow::anyhow!("HTTP 401: invalid_client"), &d);
        assert!(format!("{e:#}").contains("try --client-auth post"), "{e:#}");
        let e = sign_in_hint(anyhow::anyhow!("connection refused"), &d);
        assert_eq!(e.to_string(), "connection refused");
    }

    #[test]
    fn a_foreign_token_endpoint_is_not_believed() {
        let m = meta(None, None);
        assert!(accept(&m, "http://idp.test/oauth/token").is_ok());
        assert!(accept(&m, "http://other.test/oauth/token").is_err());
    }
}
