//! The `[checks]` section: which proofs of the provisioning chain run during the load, and where
//! they look. The embedded target supplies every URL and client; other targets name them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::vocab::CheckKind;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChecksWire {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub sample: Option<f64>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// Attempts of each forbidden action (authorization, escalation) over the run.
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub userinfo_url: Option<String>,
    /// `{service}` and the user's own token: the user's effective permissions there.
    #[serde(default)]
    pub me_url: Option<String>,
    #[serde(default)]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub audit_url: Option<String>,
    #[serde(default)]
    pub outbox_url: Option<String>,
    #[serde(default)]
    pub helpdesk_client: Option<ClientWire>,
    #[serde(default)]
    pub readonly_client: Option<ClientWire>,
    #[serde(default)]
    pub expiring_client: Option<ClientWire>,
    /// The client the login checks' password grant authenticates as.
    #[serde(default)]
    pub login_client: Option<ClientWire>,
    /// How the login checks sign in: the password grant, or a browser's authorization code flow.
    #[serde(default)]
    pub login_flow: Option<super::login::LoginFlowWire>,
    #[serde(default)]
    pub login_scope: Option<String>,
    #[serde(default)]
    pub privileged_group: Option<String>,
    /// Role -> the permissions a linked service must show for it.
    #[serde(default)]
    pub roles: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClientWire {
    pub id: String,
    #[serde(default)]
    pub secret_env: Option<String>,
    /// `basic` (default, HTTP Basic) or `post` (the secret in the form body).
    #[serde(default)]
    pub client_auth: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    /// Resolved when the run starts (from the environment, or the embedded service's own).
    pub secret: ClientSecret,
    /// How it authenticates at the token endpoint.
    pub auth: crate::http::ClientAuth,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientSecret {
    Env(String),
    /// The embedded reference service's documented secret.
    Embedded(String),
}

impl ClientSecret {
    pub fn resolve(&self) -> anyhow::Result<String> {
        match self {
            ClientSecret::Env(e) => {
                let secret =
                    std::env::var(e).map_err(|_| anyhow::anyhow!("checks: environment variable `{e}` is not set"))?;
                crate::redact::register(&secret);
                Ok(secret)
            }
            ClientSecret::Embedded(s) => Ok(s.clone()),
        }
    }
}

/// Which settings the declared checks need, and what the embedded target supplies for them.
struct Needs<'a> {
    kinds: &'a [CheckKind],
    embedded: bool,
}

impl Needs<'_> {
    fn missing(&self, key: &str, which: &[CheckKind]) -> Option<String> {
        which.iter().any(|k| self.kinds.contains(k)).then(|| {
            let names: Vec<&str> = which.iter().map(|k| k.as_str()).collect();
            format!(
                "checks.{key} is needed for the {} check against this target",
                names.join("/")
            )
        })
    }

    /// A URL setting: given, the embedded default, an error when a declared check needs it.
    fn url(&self, v: Option<String>, default: &str, key: &str, which: &[CheckKind]) -> Result<Option<String>, String> {
        match (v, self.embedded) {
            (Some(v), _) => Ok(Some(v)),
            (None, true) => Ok(Some(default.to_string())),
            (None, false) => self.missing(key, which).map_or(Ok(None), Err),
        }
    }

    /// An OAuth2 client: given (its secret from the environment), or the embedded one.
    fn client(
        &self,
        c: Option<ClientWire>,
        default: (&str, &str),
        key: &str,
        which: &[CheckKind],
    ) -> Result<Option<Client>, String> {
        match (c, self.embedded) {
            (Some(c), _) => Ok(Some(Client {
                auth: match &c.client_auth {
                    Some(a) => crate::http::ClientAuth::parse(a).map_err(|m| format!("checks.{key}: {m}"))?,
                    None => crate::http::ClientAuth::Basic,
                },
                secret: match c.secret_env {
                    Some(e) => ClientSecret::Env(e),
                    None if self.embedded => ClientSecret::Embedded(format!("{}-secret", c.id)),
                    None => return Err(format!("checks.{key} needs `secret_env`")),
                },
                id: c.id,
            })),
            (None, true) => Ok(Some(Client {
                auth: crate::http::ClientAuth::Basic,
                id: default.0.into(),
                secret: ClientSecret::Embedded(default.1.into()),
            })),
            (None, false) => self.missing(key, which).map_or(Ok(None), Err),
        }
    }
}

/// What the embedded target supplies: its linked services and each role's permissions.
pub type EmbeddedDefaults = (Vec<String>, BTreeMap<String, Vec<String>>);

#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    pub kinds: Vec<CheckKind>,
    pub sample: f64,
    pub timeout: Duration,
    pub attempts: u32,
    pub token_url: String,
    pub userinfo_url: Option<String>,
    pub me_url: String,
    pub services: Vec<String>,
    pub audit_url: Option<String>,
    pub outbox_url: Option<String>,
    pub helpdesk: Option<Client>,
    pub readonly: Option<Client>,
    /// The client the password grant authenticates as (IdPs that allow the grant only to a
    /// confidential client); none: the grant is sent without client authentication.
    pub login_client: Option<Client>,
    /// `scope` of the password grant.
    pub login_scope: Option<String>,
    pub login_flow: super::login::LoginFlow,
    pub expiring: Option<Client>,
    pub privileged_group: String,
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Checks {
    pub fn has(&self, kind: CheckKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// `embedded`: (linked services, role permissions) of the embedded target, which supplies
    /// every default.
    /// `base`: the workload's folder (files are relative to it).
    pub fn from_wire(
        w: Option<ChecksWire>,
        embedded: Option<EmbeddedDefaults>,
        base: &std::path::Path,
    ) -> Result<Option<Checks>, String> {
        let Some(w) = w else { return Ok(None) };
        let known = CheckKind::NAMES.join(", ");
        if w.kinds.is_empty() {
            return Err(format!("[checks] names no `kinds` (known: {known})"));
        }
        let kinds = w
            .kinds
            .iter()
            .map(|k| {
                CheckKind::parse(k).ok_or_else(|| {
                    let hint = super::error::did_you_mean(k, CheckKind::NAMES)
                        .map(|b| format!(": did you mean `{b}`?"))
                        .unwrap_or_default();
                    format!("checks.kinds: unknown check `{k}`{hint} (known: {known})")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let needs = Needs {
            kinds: &kinds,
            embedded: embedded.is_some(),
        };
        let need = |v, default, key, which: &[CheckKind]| needs.url(v, default, key, which);
        let client = |c, default, key, which: &[CheckKind]| needs.client(c, default, key, which);
        let (embedded_services, embedded_roles) = embedded.clone().unzip();
        let login_flow = super::login::LoginFlow::from_wire(w.login_flow.clone(), embedded.is_some(), base)?;
        let binds = matches!(login_flow, super::login::LoginFlow::LdapBind(_));
        if binds
            && kinds
                .iter()
                .any(|k| !matches!(k, CheckKind::Login | CheckKind::Revocation))
        {
            return Err("checks: with login_flow kind = \"ldap-bind\" the checks are `login` and `revocation` (a bind proves no token, permission or record)".into());
        }
        // A bind needs no token endpoint and no service's view of a token.
        let (token_checks, me_checks): (&[CheckKind], &[CheckKind]) = if binds {
            (&[], &[])
        } else {
            (
                &[CheckKind::Login, CheckKind::Permissions, CheckKind::Revocation],
                &[CheckKind::Permissions, CheckKind::Revocation],
            )
        };
        let sample = w.sample.unwrap_or(0.1);
        if !(sample > 0.0 && sample <= 1.0) {
            return Err(format!("checks.sample must be in (0, 1], got {sample}"));
        }
        Ok(Some(Checks {
            sample,
            timeout: match &w.timeout {
                Some(t) => super::limits::duration(
                    "checks.timeout",
                    humantime::parse_duration(t).map_err(|e| format!("checks.timeout `{t}`: {e}"))?,
                    super::limits::WAIT,
                )?,
                None => Duration::from_secs(30),
            },
            attempts: super::limits::count("checks.attempts", w.attempts.unwrap_or(10), 1, super::limits::ATTEMPTS)?,
            token_url: need(w.token_url.clone(), "/oauth/token", "token_url", token_checks)?.unwrap_or_default(),
            userinfo_url: need(w.userinfo_url.clone(), "/oauth/userinfo", "userinfo_url", &[])?,
            me_url: need(w.me_url.clone(), "/linked/{service}/me", "me_url", me_checks)?.unwrap_or_default(),
            services: match (w.services.clone(), embedded_services) {
                (Some(s), _) => s,
                (None, Some(s)) => s,
                (None, None) => Vec::new(),
            },
            audit_url: need(
                w.audit_url.clone(),
                "/audit?target={id}",
                "audit_url",
                &[CheckKind::Audit],
            )?,
            outbox_url: need(
                w.outbox_url.clone(),
                "/outbox?user_id={id}",
                "outbox_url",
                &[CheckKind::Welcome],
            )?,
            helpdesk: client(
                w.helpdesk_client.clone(),
                ("helpdesk", "helpdesk-secret"),
                "helpdesk_client",
                &[CheckKind::Escalation],
            )?,
            readonly: client(
                w.readonly_client.clone(),
                ("readonly", "readonly-secret"),
                "readonly_client",
                &[CheckKind::Authorization],
            )?,
            expiring: client(
                w.expiring_client.clone(),
                ("short-lived", "short-lived-secret"),
                "expiring_client",
                &[],
            )?,
            login_client: match (w.login_client.clone(), &login_flow) {
                (Some(c), _) => client(Some(c), ("", ""), "login_client", &[])?,
                // The code flow needs a client: the embedded one by default.
                (None, super::login::LoginFlow::AuthorizationCode(_)) => client(
                    None,
                    ("provbench-admin", "provbench-admin-secret"),
                    "login_client",
                    &[CheckKind::Login, CheckKind::Permissions, CheckKind::Revocation],
                )?,
                (None, _) => None,
            },
            login_flow,
            login_scope: w.login_scope.clone(),
            privileged_group: w.privileged_group.clone().unwrap_or_else(|| "admins".into()),
            roles: match (w.roles.clone(), embedded_roles) {
                (Some(r), _) => r,
                (None, Some(r)) => r,
                (None, None) => BTreeMap::new(),
            },
            kinds,
        }))
    }
}
