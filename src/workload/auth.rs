//! Credentials as workload files give them, one wire shape per kind wherever they appear: a
//! bearer token, HTTP Basic, and OAuth2 client credentials ([`OAuth2Wire`]) — the target's
//! `auth`, a probed service's `auth` and the checks' clients (`login_client`, …) all read the
//! same structs. A table's `kind` is read first, then the table as that kind's own struct, so
//! a key of another kind is an unknown key at its own line. A helper: it imports no section.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::error::{At, Source, WorkloadError, did_you_mean};
use crate::http::{Auth, ClientAuth, ClientId, Secret};

/// Only the `kind` of a credentials table (the other keys are read by the kind's own struct).
#[derive(Debug, Deserialize)]
struct KindPeek {
    #[serde(default)]
    kind: Option<Spanned<String>>,
}

/// `{ kind = "bearer", token_env = "TOKEN" }` or `token_file` (e.g. a mounted secret).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerWire {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// Relative to the workload.
    #[serde(default)]
    pub token_file: Option<String>,
}

/// `{ kind = "basic", username = "probe", password_env = "PW" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicWire {
    #[serde(default)]
    pub kind: Option<String>,
    pub username: String,
    pub password_env: String,
}

/// OAuth2 client credentials. Every client a workload names has this shape; where the token
/// endpoint is the section's own (the checks' `token_url`), `token_url`, `scope` and
/// `audience` are refused. `id` and `secret_env` are the checks' older spellings of
/// `client_id` and `client_secret_env`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Wire {
    /// `oauth2-client-credentials` where the table sits among other kinds of credentials.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub token_url: Option<Spanned<String>>,
    #[serde(default, alias = "id")]
    pub client_id: Option<Spanned<String>>,
    #[serde(default)]
    pub client_id_env: Option<Spanned<String>>,
    #[serde(default, alias = "secret_env")]
    pub client_secret_env: Option<Spanned<String>>,
    #[serde(default)]
    pub client_secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub scope: Option<Spanned<String>>,
    /// Sent as `audience` (the API the token is for, as Auth0-like servers ask).
    #[serde(default)]
    pub audience: Option<Spanned<String>>,
    /// `basic` (default, HTTP Basic) or `post` (the secret in the form body).
    #[serde(default)]
    pub client_auth: Option<Spanned<String>>,
}

/// A credentials table, read as the shape its `kind` names.
#[derive(Debug)]
pub enum Credentials {
    None,
    Bearer(BearerWire),
    Basic(BasicWire),
    OAuth2(Box<OAuth2Wire>),
}

const OAUTH2: &str = "oauth2-client-credentials";

/// Reads the credentials table at `path`: its `kind` first (one of `kinds`), then the table as
/// that kind's struct. `what` names the table in messages (`target.auth`); `span` is the
/// table's, for errors about the whole of it.
pub fn read(
    src: &Source,
    path: &[At],
    what: &str,
    kinds: &[&str],
    span: Option<Range<usize>>,
) -> Result<Credentials, WorkloadError> {
    let peek: Option<KindPeek> = src.reread(path)?;
    let Some(kind) = peek.and_then(|p| p.kind) else {
        return Err(src.error(span, format!("{what} needs `kind` (one of {})", kinds.join(", "))));
    };
    let name = kind.get_ref().as_str();
    if !kinds.contains(&name) {
        let hint = did_you_mean(name, kinds)
            .map(|b| format!(": did you mean `{b}`?"))
            .unwrap_or_else(|| format!(" (known: {})", kinds.join(", ")));
        return Err(src.error(Some(kind.span()), format!("{what}: unknown kind `{name}`{hint}")));
    }
    Ok(match name {
        "none" => Credentials::None,
        "bearer" => Credentials::Bearer(reread(src, path, what, &span)?),
        "basic" => Credentials::Basic(reread(src, path, what, &span)?),
        _ => Credentials::OAuth2(Box::new(reread(src, path, what, &span)?)),
    })
}

/// The table at `path` as `T` (it is there: its kind was just read).
fn reread<T: serde::de::DeserializeOwned>(
    src: &Source,
    path: &[At],
    what: &str,
    span: &Option<Range<usize>>,
) -> Result<T, WorkloadError> {
    src.reread(path)?
        .ok_or_else(|| src.error(span.clone(), format!("{what}: nothing to read")))
}

/// A file relative to the workload's folder.
fn file(src: &Source, f: &str) -> Secret {
    Secret::File(src.dir().join(f))
}

impl BearerWire {
    /// The token's source: exactly one of `token_env` and `token_file`.
    pub fn secret(self, src: &Source, what: &str, span: Option<Range<usize>>) -> Result<Secret, WorkloadError> {
        match (self.token_env, self.token_file) {
            (Some(e), None) => Ok(Secret::Env(e)),
            (None, Some(f)) => Ok(file(src, &f)),
            _ => Err(src.error(
                span,
                format!("{what} bearer: give exactly one of `token_env` or `token_file`"),
            )),
        }
    }
}

impl OAuth2Wire {
    /// The credentials of a client that fetches its own tokens at `token_url`.
    pub fn client_credentials(
        self,
        src: &Source,
        what: &str,
        span: Option<Range<usize>>,
    ) -> Result<Auth, WorkloadError> {
        let Some(token_url) = &self.token_url else {
            return Err(src.error(span, format!("{what}: kind = \"{OAUTH2}\" needs `token_url`")));
        };
        Ok(Auth::ClientCredentials {
            token_url: token_url.get_ref().clone(),
            client_id: self.client_id(src, what, span.clone())?,
            client_secret: self.client_secret(src, what)?,
            client_auth: self.client_auth(src, what)?,
            scope: self.scope.map(Spanned::into_inner),
            audience: self.audience.map(Spanned::into_inner),
        })
    }

    /// Exactly one of `client_id` and `client_id_env`.
    pub fn client_id(&self, src: &Source, what: &str, span: Option<Range<usize>>) -> Result<ClientId, WorkloadError> {
        match (&self.client_id, &self.client_id_env) {
            (Some(id), None) => Ok(ClientId::Literal(id.get_ref().clone())),
            (None, Some(env)) => Ok(ClientId::Env(env.get_ref().clone())),
            (Some(_), Some(both)) => Err(src.error(
                Some(both.span()),
                format!("{what}: give exactly one of `client_id` or `client_id_env`"),
            )),
            (None, None) => Err(src.error(
                span,
                format!("{what}: give exactly one of `client_id` or `client_id_env`"),
            )),
        }
    }

    /// `client_secret_env` or `client_secret_file`; none for a public client.
    pub fn client_secret(&self, src: &Source, what: &str) -> Result<Option<Secret>, WorkloadError> {
        match (&self.client_secret_env, &self.client_secret_file) {
            (Some(env), None) => Ok(Some(Secret::Env(env.get_ref().clone()))),
            (None, Some(f)) => Ok(Some(file(src, f.get_ref()))),
            (None, None) => Ok(None),
            (Some(_), Some(f)) => Err(src.error(
                Some(f.span()),
                format!("{what}: give `client_secret_env` or `client_secret_file`, not both"),
            )),
        }
    }

    /// How the client authenticates at the token endpoint (default HTTP Basic).
    pub fn client_auth(&self, src: &Source, what: &str) -> Result<ClientAuth, WorkloadError> {
        match &self.client_auth {
            Some(a) => ClientAuth::parse(a.get_ref()).map_err(|m| src.error(Some(a.span()), format!("{what}: {m}"))),
            None => Ok(ClientAuth::default()),
        }
    }

    /// Refuses the keys that name a token endpoint: where the section has its own, a client
    /// is only who signs in there.
    pub fn without_endpoint(&self, src: &Source, what: &str, endpoint: &str) -> Result<(), WorkloadError> {
        for (key, given) in [
            ("token_url", &self.token_url),
            ("scope", &self.scope),
            ("audience", &self.audience),
        ] {
            if let Some(v) = given {
                return Err(src.error(
                    Some(v.span()),
                    format!("{what}.{key}: this client signs in at {endpoint}"),
                ));
            }
        }
        Ok(())
    }
}
