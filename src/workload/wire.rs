//! The on-disk form of a workload: serde structs with `deny_unknown_fields`. Fields that need
//! checks beyond their type keep their span (`Spanned`) so errors can point at the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadWire {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target: Option<TargetWire>,
    pub load: LoadWire,
    #[serde(default, rename = "journey")]
    pub journeys: Vec<JourneyWire>,
    #[serde(default)]
    pub users: Option<UsersWire>,
    #[serde(default)]
    pub probes: Option<Spanned<super::probes::ProbesWire>>,
    #[serde(default)]
    pub thresholds: Option<Spanned<Vec<ThresholdWire>>>,
    #[serde(default)]
    pub checks: Option<Spanned<super::checks::ChecksWire>>,
    /// A target of kind `ldap`: the shape of the entries its journeys write.
    #[serde(default)]
    pub directory: Option<Spanned<super::directory::DirectoryWire>>,
    /// Custom operations, by name.
    #[serde(default)]
    pub operations: BTreeMap<String, Spanned<super::operations::OperationWire>>,
}

/// `"p99(api_latency) < 300ms"`, or with an abort policy:
/// `{ expr = "rate(errors) < 5%", abort_on_fail = true, delay = "10s" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ThresholdWire {
    Plain(String),
    Full {
        expr: String,
        #[serde(default)]
        abort_on_fail: bool,
        #[serde(default)]
        delay: Option<String>,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetWire {
    /// `embedded` (default), `scim`, `http` or `ldap`.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Embedded only: reference-service profile.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
    /// Embedded only: a reference-service TOML file, relative to the workload.
    #[serde(default)]
    pub config: Option<String>,
    /// Embedded only: flaws to switch on (as `provbench serve --flaw`).
    #[serde(default)]
    pub flaws: Vec<String>,
    /// `scim` only: the SCIM base URL, e.g. `https://idp.example.com/scim/v2`.
    #[serde(default)]
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub auth: Option<AuthWire>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Wait `Retry-After` on 429 and retry (up to `max_retries`); otherwise count and move on.
    #[serde(default)]
    pub honor_retry_after: Option<bool>,
    #[serde(default)]
    pub max_retries: Option<Spanned<u32>>,
    /// Cap on connections kept per host (0 = unlimited pool).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// Reuse connections (default true; false for servers that close each one).
    #[serde(default)]
    pub keep_alive: Option<bool>,
    /// Offer HTTP/2 to an https:// target (default true; the server chooses by ALPN).
    #[serde(default)]
    pub http2: Option<bool>,
    /// PEM CA bundle trusted in addition to the system's roots (a private CA).
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// PEM certificate and key the client presents (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
    /// `ldap` only: `ldap://host:port` or `ldaps://host:port`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// `ldap` only: upgrade an ldap:// connection with StartTLS.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// `ldap` only: the account that binds, its password from the environment or a file.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    /// `ldap` only: where user entries are created (e.g. `ou=people,dc=example,dc=com`).
    #[serde(default)]
    pub base_dn: Option<Spanned<String>>,
    /// Sent with every request to the target: `{ X-Tenant = "acme", X-Api-Key = { env = "KEY" } }`.
    #[serde(default)]
    pub headers: BTreeMap<String, super::downstream::HeaderValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum AuthWire {
    None,
    Bearer {
        #[serde(default)]
        token_env: Option<String>,
        /// A file holding the token (e.g. a mounted Kubernetes secret), relative to the workload.
        #[serde(default)]
        token_file: Option<String>,
    },
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials {
        token_url: String,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        client_id_env: Option<String>,
        #[serde(default)]
        client_secret_env: Option<String>,
        #[serde(default)]
        client_secret_file: Option<String>,
        #[serde(default)]
        scope: Option<String>,
        /// Sent as `audience` (the API the token is for, as Auth0-like servers ask).
        #[serde(default)]
        audience: Option<String>,
        /// `basic` (default, HTTP Basic) or `post` (the secret in the form body).
        #[serde(default)]
        client_auth: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadWire {
    pub model: Spanned<String>,
    // Closed model.
    #[serde(default)]
    pub admins: Option<Spanned<usize>>,
    #[serde(default)]
    pub ramp: Option<Spanned<String>>,
    #[serde(default)]
    pub think_time: Option<Spanned<String>>,
    #[serde(default)]
    pub iterations: Option<Spanned<usize>>,
    // Both.
    #[serde(default)]
    pub duration: Option<Spanned<String>>,
    // Open model.
    #[serde(default)]
    pub rate: Option<Spanned<String>>,
    #[serde(default)]
    pub stages: Option<Spanned<Vec<StageWire>>>,
    #[serde(default)]
    pub max_admins: Option<Spanned<usize>>,
    #[serde(default)]
    pub max_lag: Option<Spanned<String>>,
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageWire {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub over: Option<String>,
    #[serde(default)]
    pub hold: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyWire {
    pub name: Spanned<String>,
    #[serde(default)]
    pub weight: Option<Spanned<u32>>,
    pub steps: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UsersWire {
    #[serde(default)]
    pub template: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub group_template: Option<Spanned<toml::Value>>,
    /// Password set on created users (template placeholders allowed).
    #[serde(default)]
    pub password: Option<String>,
    /// Users created before the load starts, for journeys that only look up or modify.
    #[serde(default)]
    pub prepopulate: Option<Spanned<usize>>,
    /// A CSV of existing users (`userName` column, optional `id`) for lookup journeys.
    #[serde(default)]
    pub feeder: Option<String>,
    /// Extra placeholder values: `{name}` in templates.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `standard` (default) or `entra`: how PATCH requests are written.
    #[serde(default)]
    pub patch: Option<Spanned<String>>,
    /// What `modify_user` sets: attribute path = value template (default `{ title = "Title {seq}" }`).
    #[serde(default)]
    pub modify: Option<Spanned<BTreeMap<String, String>>>,
    /// Where roles live: `roles` (default), `entitlements`, an extension attribute, or `groups`.
    #[serde(default)]
    pub roles: Option<Spanned<String>>,
}
