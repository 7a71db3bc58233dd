//! The `[checks]` section: which proofs of the provisioning chain run during the load, and where
//! they look. The embedded target supplies every URL and client; other targets name them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::auth::OAuth2Wire;
use super::error::{Source, WorkloadError, did_you_mean};
use super::fields::{count, duration_or, share, span_of};
use super::limits;
use super::login::{LoginFlow, LoginFlowWire};
use crate::vocab::CheckKind;

/// `[checks]`, on disk. Keys that are checked keep their place, for errors at their line.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChecksWire {
    #[serde(default)]
    pub kinds: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub sample: Option<Spanned<f64>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Attempts of each forbidden action (authorization, escalation) over the run.
    #[serde(default)]
    pub attempts: Option<Spanned<u32>>,
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
    /// The clients below are OAuth2 clients, in the one shape every client has ([`OAuth2Wire`]):
    /// `{ client_id = "helpdesk", client_secret_env = "HELPDESK_SECRET" }` (or `id`,
    /// `secret_env`). They sign in at `token_url`.
    #[serde(default)]
    pub helpdesk_client: Option<Spanned<OAuth2Wire>>,
    #[serde(default)]
    pub readonly_client: Option<Spanned<OAuth2Wire>>,
    #[serde(default)]
    pub expiring_client: Option<Spanned<OAuth2Wire>>,
    /// The client the login checks' password grant authenticates as.
    #[serde(default)]
    pub login_client: Option<Spanned<OAuth2Wire>>,
    /// How the login checks sign in: the password grant, or a browser's authorization code flow.
    #[serde(default)]
    pub login_flow: Option<Spanned<LoginFlowWire>>,
    #[serde(default)]
    pub login_scope: Option<String>,
    /// The `displayName` of the target's existing privileged group, which the escalation check
    /// tries to join (it never creates one); `admins` by default.
    #[serde(default)]
    pub privileged_group: Option<String>,
    /// Role -> the permissions a linked service must show for it.
    #[serde(default)]
    pub roles: Option<BTreeMap<String, Vec<String>>>,
    /// The judged cases each check needs to pass (fewer: not judged, never a pass).
    #[serde(default)]
    pub min_evidence: Option<Spanned<u32>>,
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
    src: &'a Source<'a>,
    kinds: &'a [CheckKind],
    embedded: bool,
    /// Where the checks are declared (`kinds`): a missing setting is needed there.
    at: Option<Range<usize>>,
}

impl Needs<'_> {
    fn missing(&self, key: &str, which: &[CheckKind]) -> Option<WorkloadError> {
        which.iter().any(|k| self.kinds.contains(k)).then(|| {
            let names: Vec<&str> = which.iter().map(|k| k.as_str()).collect();
            self.src.error(
                self.at.clone(),
                format!(
                    "checks.{key} is needed for the {} check against this target",
                    names.join("/")
                ),
            )
        })
    }

    /// A URL setting: given, the embedded default, an error when a declared check needs it.
    fn url(
        &self,
        v: &Option<String>,
        default: &str,
        key: &str,
        which: &[CheckKind],
    ) -> Result<Option<String>, WorkloadError> {
        match (v, self.embedded) {
            (Some(v), _) => Ok(Some(v.clone())),
            (None, true) => Ok(Some(default.to_string())),
            (None, false) => self.missing(key, which).map_or(Ok(None), Err),
        }
    }

    /// An OAuth2 client: given (its secret from the environment), or the embedded one.
    fn client(
        &self,
        c: &Option<Spanned<OAuth2Wire>>,
        default: (&str, &str),
        key: &str,
        which: &[CheckKind],
    ) -> Result<Option<Client>, WorkloadError> {
        match (c, self.embedded) {
            (Some(c), _) => self.given_client(c, key).map(Some),
            (None, true) => Ok(Some(Client {
                auth: crate::http::ClientAuth::Basic,
                id: default.0.into(),
                secret: ClientSecret::Embedded(default.1.into()),
            })),
            (None, false) => self.missing(key, which).map_or(Ok(None), Err),
        }
    }

    /// A client the file names: an id and a secret from the environment (the embedded
    /// service's own secret when it is the target).
    fn given_client(&self, c: &Spanned<OAuth2Wire>, key: &str) -> Result<Client, WorkloadError> {
        let src = self.src;
        let what = format!("checks.{key}");
        let w = c.get_ref();
        w.without_endpoint(src, &what, "checks.token_url")?;
        for (k, given) in [
            ("client_id_env", &w.client_id_env),
            ("client_secret_file", &w.client_secret_file),
        ] {
            if let Some(v) = given {
                return Err(src.error(
                    Some(v.span()),
                    format!("{what}.{k}: the checks' clients take `client_id` and `client_secret_env`"),
                ));
            }
        }
        let Some(id) = &w.client_id else {
            return Err(src.error(Some(c.span()), format!("{what} needs `client_id` (or `id`)")));
        };
        Ok(Client {
            auth: w.client_auth(src, &what)?,
            secret: match &w.client_secret_env {
                Some(e) => ClientSecret::Env(e.get_ref().clone()),
                None if self.embedded => ClientSecret::Embedded(format!("{}-secret", id.get_ref())),
                None => {
                    return Err(src.error(
                        Some(c.span()),
                        format!("{what} needs `secret_env` (or `client_secret_env`)"),
                    ));
                }
            },
            id: id.get_ref().clone(),
        })
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
    /// Judged cases (passed or failed) a check needs before its pass counts.
    pub min_evidence: u32,
}

impl Checks {
    pub fn has(&self, kind: CheckKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// `embedded`: (linked services, role permissions) of the embedded target, which supplies
    /// every default. Errors point at the key at fault.
    pub fn from_wire(
        src: &Source,
        w: Option<Spanned<ChecksWire>>,
        embedded: Option<EmbeddedDefaults>,
    ) -> Result<Option<Checks>, WorkloadError> {
        let Some(w) = w else { return Ok(None) };
        let section = Some(w.span());
        let w = w.into_inner();
        let kinds = kinds(src, &w, section.clone())?;
        let needs = Needs {
            src,
            kinds: &kinds,
            embedded: embedded.is_some(),
            at: span_of(&w.kinds).or(section),
        };
        let login_flow = match &w.login_flow {
            Some(f) => LoginFlow::from_wire(Some(f.get_ref().clone()), embedded.is_some(), src.dir())
                .map_err(|m| src.error(Some(f.span()), m))?,
            None => LoginFlow::Password,
        };
        let binds = matches!(login_flow, LoginFlow::LdapBind(_));
        if binds
            && kinds
                .iter()
                .any(|k| !matches!(k, CheckKind::Login | CheckKind::Revocation))
        {
            return Err(src.error(needs.at.clone(), "checks: with login_flow kind = \"ldap-bind\" the checks are `login` and `revocation` (a bind proves no token, permission or record)"));
        }
        let (embedded_services, embedded_roles) = embedded.unzip();
        let mut checks = endpoints(&needs, &w, binds)?;
        checks.sample = share(src, &w.sample, "checks.sample", 0.1)?;
        checks.timeout = duration_or(src, &w.timeout, "checks.timeout", limits::WAIT, Duration::from_secs(30))?;
        checks.attempts = match &w.attempts {
            Some(a) => count(src, a, "checks.attempts", 1, limits::ATTEMPTS)?,
            None => 10,
        };
        checks.services = w.services.clone().or(embedded_services).unwrap_or_default();
        // Permissions and token revocation are judged per linked service (its `me_url`): with
        // none named they would judge nothing, and a check that judges nothing never passes.
        let per_service: Vec<&str> = kinds
            .iter()
            .filter(|k| matches!(k, CheckKind::Permissions | CheckKind::Revocation))
            .map(|k| k.as_str())
            .collect();
        if !binds && checks.services.is_empty() && !per_service.is_empty() {
            return Err(src.error(
                needs.at.clone(),
                format!(
                    "checks.services names no linked service: the {} check reads each service's me_url with the user's token and would judge nothing (name them: services = [\"crm\", \"mail\"])",
                    per_service.join(" and ")
                ),
            ));
        }
        checks.login_client = login_client(&needs, &w.login_client, &login_flow)?;
        checks.login_flow = login_flow;
        checks.login_scope = w.login_scope.clone();
        checks.privileged_group = w.privileged_group.clone().unwrap_or_else(|| "admins".into());
        checks.roles = w.roles.clone().or(embedded_roles).unwrap_or_default();
        checks.min_evidence = match &w.min_evidence {
            Some(n) => count(src, n, "checks.min_evidence", 1, limits::ATTEMPTS)?,
            None => DEFAULT_MIN_EVIDENCE,
        };
        // The forbidden-action checks judge exactly `attempts` cases: fewer than the evidence
        // rule asks could never pass.
        let fixed = kinds
            .iter()
            .any(|k| matches!(k, CheckKind::Authorization | CheckKind::Escalation));
        if fixed && checks.attempts < checks.min_evidence {
            let at = span_of(&w.attempts).or(span_of(&w.min_evidence)).or(needs.at.clone());
            return Err(src.error(
                at,
                format!(
                    "checks.attempts ({}) is below checks.min_evidence ({}): the authorization and escalation checks judge `attempts` cases and could never pass",
                    checks.attempts, checks.min_evidence
                ),
            ));
        }
        checks.kinds = kinds;
        Ok(Some(checks))
    }
}

/// A check passes on five judged cases at least: one user's luck is no verdict.
pub const DEFAULT_MIN_EVIDENCE: u32 = 5;

/// `kinds`: at least one, each a known check.
fn kinds(src: &Source, w: &ChecksWire, section: Option<Range<usize>>) -> Result<Vec<CheckKind>, WorkloadError> {
    let known = CheckKind::NAMES.join(", ");
    let given = w.kinds.as_ref().map(|k| k.get_ref().as_slice()).unwrap_or_default();
    if given.is_empty() {
        let at = span_of(&w.kinds).or(section);
        return Err(src.error(at, format!("[checks] names no `kinds` (known: {known})")));
    }
    given
        .iter()
        .map(|k| {
            CheckKind::parse(k.get_ref()).ok_or_else(|| {
                let hint = did_you_mean(k.get_ref(), CheckKind::NAMES)
                    .map(|b| format!(": did you mean `{b}`?"))
                    .unwrap_or_default();
                src.error(
                    Some(k.span()),
                    format!("checks.kinds: unknown check `{}`{hint} (known: {known})", k.get_ref()),
                )
            })
        })
        .collect()
}

/// The URLs and clients the declared checks use; the rest of [`Checks`] at its defaults.
fn endpoints(needs: &Needs, w: &ChecksWire, binds: bool) -> Result<Checks, WorkloadError> {
    // A bind needs no token endpoint and no service's view of a token.
    let (token_checks, me_checks): (&[CheckKind], &[CheckKind]) = if binds {
        (&[], &[])
    } else {
        (
            &[CheckKind::Login, CheckKind::Permissions, CheckKind::Revocation],
            &[CheckKind::Permissions, CheckKind::Revocation],
        )
    };
    Ok(Checks {
        kinds: Vec::new(),
        sample: 0.1,
        timeout: Duration::from_secs(30),
        attempts: 10,
        token_url: needs
            .url(&w.token_url, "/oauth/token", "token_url", token_checks)?
            .unwrap_or_default(),
        userinfo_url: needs.url(&w.userinfo_url, "/oauth/userinfo", "userinfo_url", &[])?,
        me_url: needs
            .url(&w.me_url, "/linked/{service}/me", "me_url", me_checks)?
            .unwrap_or_default(),
        services: Vec::new(),
        audit_url: needs.url(&w.audit_url, "/audit?target={id}", "audit_url", &[CheckKind::Audit])?,
        outbox_url: needs.url(
            &w.outbox_url,
            "/outbox?user_id={id}",
            "outbox_url",
            &[CheckKind::Welcome],
        )?,
        helpdesk: needs.client(
            &w.helpdesk_client,
            ("helpdesk", "helpdesk-secret"),
            "helpdesk_client",
            &[CheckKind::Escalation],
        )?,
        readonly: needs.client(
            &w.readonly_client,
            ("readonly", "readonly-secret"),
            "readonly_client",
            &[CheckKind::Authorization],
        )?,
        expiring: needs.client(
            &w.expiring_client,
            ("short-lived", "short-lived-secret"),
            "expiring_client",
            &[],
        )?,
        login_client: None,
        login_scope: None,
        login_flow: LoginFlow::Password,
        privileged_group: String::new(),
        roles: BTreeMap::new(),
        min_evidence: DEFAULT_MIN_EVIDENCE,
    })
}

/// The client the login checks authenticate as: the one given, the embedded one for the code
/// flow (which needs a client), or none.
fn login_client(
    needs: &Needs,
    given: &Option<Spanned<OAuth2Wire>>,
    flow: &LoginFlow,
) -> Result<Option<Client>, WorkloadError> {
    match (given, flow) {
        (Some(_), _) => needs.client(given, ("", ""), "login_client", &[]),
        (None, LoginFlow::AuthorizationCode(_)) => needs.client(
            &None,
            ("provbench-admin", "provbench-admin-secret"),
            "login_client",
            &[CheckKind::Login, CheckKind::Permissions, CheckKind::Revocation],
        ),
        (None, _) => Ok(None),
    }
}

/// The login, permissions and revocation checks log in as the created users: they need the
/// password `[users]` gives them.
pub fn check_password(src: &Source, c: &Checks, has_password: bool) -> Result<(), WorkloadError> {
    if c.kinds.iter().any(|k| k.logs_in()) && !has_password {
        return Err(src.error(
            None,
            "the login, permissions and revocation checks log in as the created users: set [users] password",
        ));
    }
    Ok(())
}
