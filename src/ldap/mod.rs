//! The LDAP client that a directory target, its probes and its bind-login checks share: where a
//! directory is and how to sign in (plain data the workload layer fills in), bound connections
//! spread over a few TCP connections, and LDAP results classified like HTTP ones.
//!
//! ldap3 multiplexes requests over one connection (message ids), so a handle per request is a
//! cheap clone; operations are pipelined on a connection before the next of `connections` is
//! used ([`pool`]). A result code other than success is an error of kind `status` that names the
//! code (`LDAP 68 entryAlreadyExists`), so thresholds and failure samples read as for SCIM.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, SearchOptions};
pub use ldap3::{Mod, Scope, SearchEntry, dn_escape, ldap_escape};

pub mod dn;
pub mod pool;

use crate::http::CallError;
use crate::http::settings::Secret;
use crate::metrics::ErrorKind;

/// Where a directory is and who signs in to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// A PEM CA bundle trusted in addition to the system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The DN of the account that binds; `None`: anonymous.
    pub bind_dn: Option<String>,
    pub password: Option<Secret>,
    /// Each request's bound (connecting included).
    pub timeout: Duration,
}

impl Endpoint {
    /// `host:port` and the scheme, for logs and the summary (never a password: LDAP URLs carry
    /// none).
    pub fn display(&self) -> String {
        if self.starttls {
            format!("{} (StartTLS)", self.url)
        } else {
            self.url.clone()
        }
    }

    fn settings(&self) -> anyhow::Result<LdapConnSettings> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(ca) = &self.ca_file {
            settings = settings.set_config(Arc::new(tls_config(ca)?));
        }
        Ok(settings)
    }

    /// A new connection, not yet bound. Its driver runs until the last handle is dropped.
    pub async fn open(&self) -> anyhow::Result<Ldap> {
        let (conn, ldap) = match LdapConnAsync::with_settings(self.settings()?, &self.url).await {
            Ok(opened) => opened,
            Err(e) => {
                let untrusted = self.ca_file.is_none() && e.to_string().contains("UnknownIssuer");
                let hint = match untrusted {
                    true => " (a certificate from a private CA? name that CA in ca_file)",
                    false => "",
                };
                return Err(anyhow::Error::new(e).context(format!("cannot connect to {}{hint}", self.display())));
            }
        };
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    /// A connection bound as the endpoint's account (anonymous without one).
    pub async fn bound(&self) -> anyhow::Result<Ldap> {
        let mut ldap = self.open().await?;
        if let Some(dn) = &self.bind_dn {
            let password = match &self.password {
                Some(s) => crate::http::auth::read_secret(s, "the LDAP bind password")?,
                None => String::new(),
            };
            let result = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, &password)
                .await
                .with_context(|| format!("binding to {} as {dn}", self.display()))?;
            if result.rc != 0 {
                anyhow::bail!("{} refused the bind as {dn}: {}", self.display(), describe(&result));
            }
        }
        Ok(ldap)
    }
}

/// The system's roots and the CA file's certificates.
fn tls_config(ca: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("ca_file {}", ca.display()))? {
        let cert = cert.with_context(|| format!("ca_file {}: not PEM certificates", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("ca_file {}: a certificate rustls cannot use", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The name of an LDAP result code (RFC 4511 appendix A), for messages.
pub fn code_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        _ => "unknown",
    }
}

/// `LDAP 68 entryAlreadyExists: <the server's text>`.
pub fn describe(r: &LdapResult) -> String {
    let text = r.text.trim();
    if text.is_empty() {
        format!("LDAP {} {}", r.rc, code_name(r.rc))
    } else {
        format!(
            "LDAP {} {}: {}",
            r.rc,
            code_name(r.rc),
            // Redacted before it is cut: a directory that echoes a password across the cut
            // leaves no part of it.
            crate::redact::sample(text, 160)
        )
    }
}

/// An ldap3 error as a classified failure.
pub fn classify(e: LdapError) -> CallError {
    let kind = match &e {
        LdapError::Timeout { .. } => ErrorKind::Timeout,
        LdapError::LdapResult { .. } => ErrorKind::Status,
        _ => ErrorKind::Connection,
    };
    let detail = match e {
        LdapError::LdapResult { result } => describe(&result),
        other => other.to_string(),
    };
    CallError { kind, detail }
}

fn status(r: &LdapResult) -> CallError {
    CallError {
        kind: ErrorKind::Status,
        detail: describe(r),
    }
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Deleted,
    /// `noSuchObject`: somebody (or an earlier try) deleted it already.
    AlreadyGone,
}

/// Bound connections to one directory, several operations in flight on each ([`pool`]).
/// Cloning a handle is how ldap3 runs requests side by side on one connection.
pub struct Directory {
    conns: Vec<pool::Pooled>,
    timeout: Duration,
    endpoint: Endpoint,
}

impl Directory {
    /// Opens and binds `connections` connections (at least one): a wrong password or an
    /// unreachable server fails here, before any load.
    pub async fn connect(endpoint: &Endpoint, connections: usize) -> anyhow::Result<Directory> {
        let mut conns = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            conns.push(pool::Pooled::new(endpoint.bound().await?));
        }
        Ok(Directory {
            conns,
            timeout: endpoint.timeout,
            endpoint: endpoint.clone(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A handle for one operation, bounded by the endpoint's timeout, on the connection the pool
    /// picks; counted in flight there until it is dropped.
    fn handle(&self) -> pool::Lease<'_> {
        let mut lease = pool::lease(&self.conns);
        lease.ldap.with_timeout(self.timeout);
        lease
    }

    /// Values are bytes: most are text, a few (AD's `unicodePwd`) are binary.
    pub async fn add<S: AsRef<[u8]> + Eq + std::hash::Hash>(
        &self,
        dn: &str,
        attrs: Vec<(S, HashSet<S>)>,
    ) -> Result<(), CallError> {
        let r = self.handle().ldap.add(dn, attrs).await.map_err(classify)?;
        if r.rc == 0 { Ok(()) } else { Err(status(&r)) }
    }

    pub async fn modify(&self, dn: &str, mods: Vec<Mod<String>>) -> Result<(), CallError> {
        let r = self.handle().ldap.modify(dn, mods).await.map_err(classify)?;
        if r.rc == 0 { Ok(()) } else { Err(status(&r)) }
    }

    pub async fn delete(&self, dn: &str) -> Result<Removed, CallError> {
        let r = self.handle().ldap.delete(dn).await.map_err(classify)?;
        match r.rc {
            0 => Ok(Removed::Deleted),
            32 => Ok(Removed::AlreadyGone),
            _ => Err(status(&r)),
        }
    }

    /// The entries `filter` finds under `base`, with `attrs` (`["*"]` for all user attributes,
    /// `["1.1"]` for none). `limit` caps the answer: a server that stops there (size limit
    /// exceeded) answers what it found so far. Without one, the answer is held to
    /// [`MAX_ENTRIES`], and a directory that holds more is an error, never a partial answer.
    /// `noSuchObject` answers no entries.
    pub async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        limit: Option<i32>,
    ) -> Result<Vec<SearchEntry>, CallError> {
        match limit {
            Some(n) => Ok(self.read(base, scope, filter, attrs, n).await?.0),
            None => {
                // One more than the cap is asked: an honest server then says sizeLimitExceeded
                // exactly when there are more, and the one past the cap is the sample.
                let asked = MAX_ENTRIES as i32 + 1;
                let (entries, more) = self.read_capped(base, scope, filter, attrs, asked, MAX_ENTRIES).await?;
                if more {
                    // Said by the directory (its own size limit may be far lower than ours).
                    return Err(CallError::payload(format!(
                        "the directory ended the answer at a size limit after {} entries: the answer is incomplete (provbench reads at most {MAX_ENTRIES})",
                        entries.len()
                    )));
                }
                Ok(entries)
            }
        }
    }

    /// Whether the entry `dn` exists: one base-scope search asking for no attribute.
    /// `noSuchObject` is `false`; a refusal or a failure is an error (it says nothing either way).
    /// Read one by one as every search is (`read_capped`): ldap3's `search` collects its
    /// whole answer, entries and referrals, however long the directory makes it.
    pub async fn exists(&self, dn: &str) -> Result<bool, CallError> {
        match self.read(dn, Scope::Base, "(objectClass=*)", &["1.1"], 1).await? {
            // sizeLimitExceeded without the entry it stopped at says nothing either way.
            (found, true) if found.is_empty() => Err(CallError {
                kind: ErrorKind::Status,
                detail: "LDAP 4 sizeLimitExceeded with no entry, to a search of one".into(),
            }),
            (found, _) => Ok(!found.is_empty()),
        }
    }

    /// At most `n` entries, and whether the directory holds more (it said sizeLimitExceeded):
    /// a caller that deletes what it found searches again for the rest.
    pub async fn search_some(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        n: i32,
    ) -> Result<(Vec<SearchEntry>, bool), CallError> {
        self.read(base, scope, filter, attrs, n).await
    }

    async fn read(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        n: i32,
    ) -> Result<(Vec<SearchEntry>, bool), CallError> {
        let cap = usize::try_from(n).unwrap_or(0);
        self.read_capped(base, scope, filter, attrs, n, cap).await
    }

    /// Entries are read one by one, never more than `cap`: one past it (a server that ignores
    /// the size limit it was sent) ends the search as a payload error, never a longer list.
    async fn read_capped(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        asked: i32,
        cap: usize,
    ) -> Result<(Vec<SearchEntry>, bool), CallError> {
        let mut h = self.handle();
        h.ldap.with_search_options(SearchOptions::new().sizelimit(asked));
        let mut stream = h
            .ldap
            .streaming_search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(classify)?;
        let mut entries = Vec::new();
        let mut skipped = 0;
        loop {
            match stream.next().await.map_err(classify)? {
                // Referrals and intermediate messages are not entries, but they are answers:
                // held to a bound too, or a directory that sends them without end (each well
                // inside the timeout) holds the search for ever.
                Some(e) if e.is_ref() || e.is_intermediate() => {
                    skipped += 1;
                    if skipped > MAX_ENTRIES {
                        let sample = match e.is_ref() {
                            true => ldap3::parse_refs(e.0).join(" "),
                            false => String::new(),
                        };
                        let msgid = stream.ldap_handle().last_id();
                        let _ = stream.ldap_handle().abandon(msgid).await;
                        return Err(too_many_references(&sample));
                    }
                }
                Some(e) if entries.len() >= cap => {
                    let sample = SearchEntry::construct(e).dn;
                    let msgid = stream.ldap_handle().last_id();
                    let _ = stream.ldap_handle().abandon(msgid).await;
                    return Err(too_many(cap, asked as usize == cap, &sample));
                }
                Some(e) => entries.push(SearchEntry::construct(e)),
                None => break,
            }
        }
        let result = stream.finish().await;
        match result.rc {
            0 => Ok((entries, false)),
            4 => Ok((entries, true)),
            32 => Ok((Vec::new(), false)),
            _ => Err(status(&result)),
        }
    }
}

/// The most entries a search without a limit of its caller's reads (the cleanup sweep, a
/// lookup by DN or name); past it, the search is an error.
pub const MAX_ENTRIES: usize = 10_000;

/// A search answered with more entries than the bound: a payload error with a sample.
fn too_many(cap: usize, asked: bool, sample: &str) -> CallError {
    let why = if asked {
        format!("the directory answered more than the {cap} entries asked for")
    } else {
        format!("the search finds more than {cap} entries, the most one search reads")
    };
    let sample = crate::redact::sample(sample, 120);
    CallError::payload(if sample.is_empty() {
        why
    } else {
        format!("{why}; the one past the limit: {sample}")
    })
}

/// A search answered with more references and intermediate messages than [`MAX_ENTRIES`].
fn too_many_references(sample: &str) -> CallError {
    let why = format!(
        "the directory answered more than {MAX_ENTRIES} references and intermediate messages to one search, the most one search reads"
    );
    let sample = crate::redact::sample(sample, 120);
    CallError::payload(if sample.is_empty() {
        why
    } else {
        format!("{why}; the one past the limit: {sample}")
    })
}

/// A password as Active Directory's `unicodePwd` takes it: in double quotes, UTF-16LE.
pub fn ad_password(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// How a simple bind as a user ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Accepted,
    /// The directory refused the user (wrong password, locked, no such entry): the code says.
    Refused(String),
}

/// One simple bind as `dn` on a fresh connection (a user's login, as an application does it).
/// A connection failure is an error: it says nothing about the user.
pub async fn bind_as(endpoint: &Endpoint, dn: &str, password: &str) -> Result<Bind, String> {
    let mut ldap = endpoint.open().await.map_err(|e| crate::redact::error(&e))?;
    let result = ldap.with_timeout(endpoint.timeout).simple_bind(dn, password).await;
    let _ = ldap.unbind().await;
    match result {
        Ok(r) if r.rc == 0 => Ok(Bind::Accepted),
        // invalidCredentials, inappropriateAuthentication, insufficientAccess, unwillingToPerform
        // (a locked account on some servers): the user is refused.
        Ok(r) if matches!(r.rc, 48..=50 | 53 | 32 | 19) => Ok(Bind::Refused(describe(&r))),
        Ok(r) => Err(describe(&r)),
        Err(e) => Err(classify(e).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a directory's diagnostic text was cut at 160 characters before it was
    /// redacted: a password it echoed across the cut left its first part in the error.
    #[test]
    fn a_directorys_text_is_redacted_before_it_is_cut() {
        let secret = "ldap-diag-secret-93ac7e";
        crate::redact::register(secret);
        for pad in 140..160 {
            let r = LdapResult {
                rc: 49,
                matched: String::new(),
                text: format!("{}{secret}", "x".repeat(pad)),
                refs: vec![],
                ctrls: vec![],
            };
            let shown = describe(&r);
            for i in 0..=secret.len() - 6 {
                assert!(!shown.contains(&secret[i..i + 6]), "{shown}");
            }
        }
    }

    #[test]
    fn results_are_named_with_their_code() {
        let r = LdapResult {
            rc: 68,
            matched: String::new(),
            text: String::new(),
            refs: vec![],
            ctrls: vec![],
        };
        assert_eq!(describe(&r), "LDAP 68 entryAlreadyExists");
        let e = classify(LdapError::LdapResult { result: r });
        assert_eq!(e.kind, ErrorKind::Status);
        assert_eq!(code_name(49), "invalidCredentials");
        assert_eq!(code_name(12345), "unknown");
    }

    #[test]
    fn an_ad_password_is_quoted_utf16le() {
        assert_eq!(ad_password("Pw1"), b"\"\0P\0w\x001\0\"\0".to_vec());
        // Outside the BMP: a surrogate pair, each half little-endian.
        assert_eq!(ad_password("\u{1F600}")[2..6], [0x3D, 0xD8, 0x00, 0xDE]);
    }

    #[test]
    fn values_are_escaped_for_filters_and_dns() {
        assert_eq!(ldap_escape("a*(b)"), "a\\2a\\28b\\29");
        assert_eq!(dn_escape("Smith, John"), "Smith\\2c John");
    }
}
