//! How workload files reach a directory, wherever they name one (the ldap target, an LDAP
//! probe, the bind-login check): its endpoint (URL, StartTLS, CA file, the account that binds)
//! and how a linked directory is read by search ([`LdapRead`]). A helper: it imports no
//! section; `directory` re-exports its types.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use super::ldap_lock::{DisabledRule, attribute_name};
use super::ldap_lock::{KeyError, RuleWire, rule};
use crate::http::Secret;
use crate::ldap::Endpoint;

/// `[[probes.sync]] ldap = { … }`: a linked directory read by LDAP search.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapReadWire {
    pub url: Option<String>,
    #[serde(default)]
    pub starttls: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    pub base_dn: Option<String>,
    /// Finds the user: `{userName}` is the naming value, escaped (default `(uid={userName})`).
    #[serde(default)]
    pub filter: Option<String>,
    /// How a disabled account shows, as the target's preset names it: `ppolicy`, `389ds`,
    /// `active-directory` (bit 2 of `userAccountControl`). Or the three keys below.
    #[serde(default)]
    pub lock: Option<Spanned<String>>,
    /// The attribute whose presence (or `disabled_value`, or `disabled_mask`) shows the account
    /// disabled (default `pwdAccountLockedTime`).
    #[serde(default)]
    pub disabled_attribute: Option<Spanned<String>>,
    /// The one value of it that means disabled.
    #[serde(default)]
    pub disabled_value: Option<Spanned<String>>,
    /// Its value is an integer: disabled when any of these bits is set (AD: 2).
    #[serde(default)]
    pub disabled_mask: Option<Spanned<i64>>,
    /// Where the title and the roles show (defaults `title`, `employeeType`).
    #[serde(default)]
    pub title_attribute: Option<String>,
    #[serde(default)]
    pub roles_attribute: Option<String>,
    /// The bound of each search (default 1s): a replica that does not answer within it is not
    /// showing anything to its clients either.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A linked directory the probes read by LDAP search. Its answer is turned into the document a
/// by-id read gives (`/userName`, `/active`, `/title`, `/roles`), so the probes' conditions read
/// it like any other service's.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapRead {
    pub endpoint: Endpoint,
    pub base_dn: String,
    pub filter: String,
    pub disabled: DisabledRule,
    pub title_attribute: String,
    pub roles_attribute: String,
}

impl LdapRead {
    /// Errors name `key` and carry the span of the key at fault when it has one.
    pub fn from_wire(w: LdapReadWire, key: &str, base: &Path) -> Result<LdapRead, KeyError> {
        let disabled = rule(
            RuleWire {
                lock: w.lock.as_ref(),
                attribute: w.disabled_attribute.as_ref(),
                value: w.disabled_value.as_ref(),
                mask: w.disabled_mask.as_ref(),
            },
            key,
        )?;
        LdapRead::rest(w, disabled, key, base).map_err(|m| (None, m))
    }

    fn rest(w: LdapReadWire, disabled: DisabledRule, key: &str, base: &Path) -> Result<LdapRead, String> {
        let timeout = match &w.timeout {
            Some(t) => {
                let d = humantime::parse_duration(t.trim()).map_err(|e| format!("{key}.timeout: `{t}`: {e}"))?;
                super::limits::duration(&format!("{key}.timeout"), d, super::limits::WAIT)?
            }
            None => Duration::from_secs(1),
        };
        let endpoint = endpoint(
            EndpointWire {
                url: w.url.as_deref(),
                starttls: w.starttls,
                ca_file: w.ca_file.as_deref(),
                bind_dn: w.bind_dn.as_deref(),
                password_env: w.password_env.as_deref(),
                password_file: w.password_file.as_deref(),
                timeout,
            },
            key,
            base,
        )?;
        let Some(base_dn) = w.base_dn else {
            return Err(format!("{key} needs `base_dn`: where to search for the user"));
        };
        let filter = w.filter.unwrap_or_else(|| "(uid={userName})".into());
        if !filter.contains("{userName}") || !filter.starts_with('(') {
            return Err(format!(
                "{key}.filter = \"{filter}\": an LDAP filter in parentheses with `{{userName}}`, e.g. \"(uid={{userName}})\""
            ));
        }
        let attr = |v: Option<String>, default: &str, k: &str| -> Result<String, String> {
            let a = v.unwrap_or_else(|| default.into());
            attribute_name(&a, &format!("{key}.{k}"))?;
            Ok(a)
        };
        Ok(LdapRead {
            endpoint,
            base_dn,
            filter,
            disabled,
            title_attribute: attr(w.title_attribute, "title", "title_attribute")?,
            roles_attribute: attr(w.roles_attribute, "employeeType", "roles_attribute")?,
        })
    }

    /// The filter for one user, its value escaped.
    pub fn filter_for(&self, user_name: &str) -> String {
        self.filter.replace("{userName}", &crate::ldap::ldap_escape(user_name))
    }
}

/// Where a directory is, as workload files say it (target, LDAP probes, bind checks).
pub struct EndpointWire<'a> {
    pub url: Option<&'a str>,
    pub starttls: Option<bool>,
    pub ca_file: Option<&'a str>,
    pub bind_dn: Option<&'a str>,
    pub password_env: Option<&'a str>,
    pub password_file: Option<&'a str>,
    pub timeout: Duration,
}

/// Checks an LDAP endpoint: `key` prefixes errors, files are relative to `base`.
pub fn endpoint(w: EndpointWire, key: &str, base: &Path) -> Result<Endpoint, String> {
    let Some(url) = w.url else {
        return Err(format!("{key} needs `url` (ldap://host:port or ldaps://host:port)"));
    };
    let url = url.trim_end_matches('/').to_string();
    let ldaps = url.starts_with("ldaps://");
    if !(ldaps || url.starts_with("ldap://")) {
        return Err(format!("{key}.url must start with ldap:// or ldaps://, got `{url}`"));
    }
    let starttls = w.starttls.unwrap_or(false);
    if starttls && ldaps {
        return Err(format!(
            "{key}: starttls upgrades an ldap:// connection; an ldaps:// one is TLS already"
        ));
    }
    let ca_file = match w.ca_file {
        Some(f) => {
            let path = base.join(f);
            if !path.is_file() {
                return Err(format!("{key}.ca_file: no file {}", path.display()));
            }
            if !(ldaps || starttls) {
                return Err(format!("{key}.ca_file needs ldaps:// or starttls = true"));
            }
            Some(path)
        }
        None => None,
    };
    let password = match (w.password_env, w.password_file) {
        (Some(e), None) => Some(Secret::Env(e.into())),
        (None, Some(f)) => Some(Secret::File(base.join(f))),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(format!("{key}: give `password_env` or `password_file`, not both")),
    };
    if password.is_some() && w.bind_dn.is_none() {
        return Err(format!("{key}: a password goes with `bind_dn`"));
    }
    if w.bind_dn.is_some() && password.is_none() {
        return Err(format!(
            "{key}: `bind_dn` needs `password_env` or `password_file` (never the password itself)"
        ));
    }
    Ok(Endpoint {
        url,
        starttls,
        ca_file,
        bind_dn: w.bind_dn.map(str::to_string),
        password,
        timeout: w.timeout,
    })
}
