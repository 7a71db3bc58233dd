//! The `[probes]` section: how the asynchronous half is observed (queue delay from a job-status
//! URL, sync lag per linked service by polling or push), how often, and within what bounds.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::fields::{count, duration, pointer, pointer_or, share, span_of};
use super::limits;
pub use super::sync::{ChangeTime, Observe, Pointers, SyncPeek, SyncProbe};
use super::sync::{budget, sync_probes};

/// `[probes]`, on disk. Keys that are checked keep their place, for errors at their line.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbesWire {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub sample: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_pending: Option<Spanned<usize>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub poll: Option<Spanned<PollWire>>,
    /// Requests a second shared by the services read by batched queries that set no `budget`
    /// of their own (default 45).
    #[serde(default)]
    pub budget: Option<Spanned<f64>>,
    /// The largest share of the run's requests the probes' reads may take (default 0.1):
    /// above it, writes are not observed until the load's own requests catch up.
    #[serde(default)]
    pub max_share: Option<Spanned<f64>>,
    #[serde(default)]
    pub queue: Option<Spanned<QueueWire>>,
    /// Each service is read again as the shape its keys say (`HttpSyncWire`, or
    /// `LdapSyncWire` with `ldap = { … }`).
    #[serde(default)]
    pub sync: Option<Vec<Spanned<SyncPeek>>>,
    #[serde(default)]
    pub push: Option<PushWire>,
    /// The judged observations (arrived or timed out) each probe series needs for a pass
    /// (default 1: a series that judged nothing is never a pass).
    #[serde(default)]
    pub min_evidence: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollWire {
    pub initial: Option<Spanned<String>>,
    pub max: Option<Spanned<String>>,
    pub factor: Option<Spanned<f64>>,
    /// Relative spacing instead of `factor`: 0.1 polls every 10 % of the elapsed time.
    pub precision: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueWire {
    /// The response header holding the job-status URL (or the job id, with `job_url`).
    #[serde(default)]
    pub job_header: Option<Spanned<String>>,
    /// A JSON pointer into the write's response body holding the job URL or id.
    #[serde(default)]
    pub job_pointer: Option<Spanned<String>>,
    /// `/jobs/{job}`: builds the URL from a job id.
    #[serde(default)]
    pub job_url: Option<Spanned<String>>,
    #[serde(default)]
    pub accepted_at: Option<Spanned<String>>,
    #[serde(default)]
    pub started_at: Option<Spanned<String>>,
    /// Without timestamps: the job has started once this pointer differs from `not_equals`.
    #[serde(default)]
    pub started_when: Option<StartedWhenWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartedWhenWire {
    pub pointer: Spanned<String>,
    pub not_equals: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushWire {
    /// Loopback address for the webhook receiver (`127.0.0.1:0` picks a port).
    #[serde(default)]
    pub listen: Option<String>,
    /// JSON pointer to the job id in an event.
    #[serde(default)]
    pub job_pointer: Option<Spanned<String>>,
    /// JSON pointer to the service name in an event.
    #[serde(default)]
    pub service_pointer: Option<Spanned<String>>,
}

/// Requests a second the batched services share by default: each is a read of every user
/// pending at one service, whatever the load (three services: 15 a second each).
pub const DEFAULT_BUDGET: f64 = 45.0;

/// Each poll gap is this share of the time since the write (within the budget): a bracket is
/// then about 5 % of its lag, and the midpoint within 2.5 % of the truth.
pub const DEFAULT_PRECISION: f64 = 0.05;

/// The probes' default share of a run's requests: what they observe should not become the load
/// (unbounded, by-id and directory reads were 90 % and more of all requests). Observations under
/// way when it is reached still finish, so a run ends a little above it: 10 % keeps the
/// quickstart and the directory replica under 15 %.
pub const DEFAULT_MAX_SHARE: f64 = 0.10;

#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    /// When set, each gap is this share of the time since the write (within `initial..=max`):
    /// every bracket is then at most that share of its lag, so the midpoint is within half of it.
    pub precision: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobSource {
    Header(String),
    Pointer(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartDetection {
    /// Server-reported timestamps (RFC 3339) at these pointers: exact.
    Timestamps { accepted_at: String, started_at: String },
    /// First poll where `pointer` no longer equals `value`: resolution = polling interval.
    StateChange {
        pointer: String,
        not_equals: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueProbe {
    pub source: JobSource,
    /// `/jobs/{job}` when the source yields an id rather than a URL.
    pub url_template: Option<String>,
    pub start: StartDetection,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushReceiver {
    pub listen: String,
    pub job_pointer: String,
    pub service_pointer: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probes {
    pub sample: f64,
    /// The largest share of all requests probe reads may take: writes are observed only while
    /// the probes are under it (1.0: no limit).
    pub max_share: f64,
    pub max_pending: usize,
    pub timeout: Duration,
    pub poll: PollPolicy,
    pub queue: Option<QueueProbe>,
    pub sync: Vec<SyncProbe>,
    pub push: Option<PushReceiver>,
    /// `[probes] min_evidence`: the judged observations each series needs for a pass.
    pub min_evidence: u32,
    /// The workload has a `[probes]` section (an embedded target's defaults are not declared).
    pub declared: bool,
}

/// A probe series that judged nothing is never a pass; more is the workload's to ask.
pub const DEFAULT_MIN_EVIDENCE: u32 = 1;

/// A probes duration, within the bound of every wait.
fn dur(src: &Source, s: &Spanned<String>, key: &str) -> Result<Duration, WorkloadError> {
    duration(src, s, &format!("probes.{key}"), limits::WAIT)
}

/// An optional probes duration, `default` (ms) when absent.
fn dur_or(src: &Source, s: &Option<Spanned<String>>, key: &str, default: u64) -> Result<Duration, WorkloadError> {
    s.as_ref()
        .map(|s| dur(src, s, key))
        .transpose()
        .map(|d| d.unwrap_or(Duration::from_millis(default)))
}

impl Probes {
    /// Converts `[probes]`. `embedded_services` (the embedded target's linked services) fill in
    /// what an embedded workload leaves out; `None` for other targets. Errors point at the key
    /// at fault.
    pub fn from_wire(
        src: &Source,
        w: Option<Spanned<ProbesWire>>,
        embedded_services: Option<&[String]>,
    ) -> Result<Option<Probes>, WorkloadError> {
        let explicit = w.is_some();
        let (section, w) = match w {
            Some(w) => (Some(w.span()), w.into_inner()),
            None => (None, ProbesWire::default()),
        };
        if w.enabled == Some(false) || (!explicit && embedded_services.is_none()) {
            return Ok(None);
        }
        let sample = share(src, &w.sample, "probes.sample", 0.1)?;
        let max_share = share(src, &w.max_share, "probes.max_share", DEFAULT_MAX_SHARE)?;
        let poll = poll_policy(src, w.poll.as_ref())?;
        let queue = match (&w.queue, embedded_services) {
            (Some(q), _) => Some(queue_probe(src, q)?),
            (None, Some(_)) => Some(QueueProbe {
                source: JobSource::Header("x-job-location".into()),
                url_template: None,
                start: StartDetection::Timestamps {
                    accepted_at: "/accepted_at".into(),
                    started_at: "/started_at".into(),
                },
            }),
            (None, None) => None,
        };
        let push = w.push.as_ref().map(|p| push_receiver(src, p)).transpose()?;
        let mut sync = sync_probes(src, w.sync.as_deref(), embedded_services, push.is_some())?;
        share_budget(src, &mut sync, &w.budget)?;
        if queue.is_none() && sync.is_empty() {
            return Err(src.error(
                section,
                "[probes] observes nothing: add `queue` or `sync` (or enabled = false)",
            ));
        }
        Ok(Some(Probes {
            sample,
            max_share,
            max_pending: match &w.max_pending {
                Some(n) => count(src, n, "probes.max_pending", 1, limits::PENDING)?,
                None => 10_000,
            },
            timeout: dur_or(src, &w.timeout, "timeout", 30_000)?,
            poll,
            queue,
            sync,
            push,
            declared: explicit,
            min_evidence: match &w.min_evidence {
                Some(n) => count(src, n, "probes.min_evidence", 1, limits::ATTEMPTS)?,
                None => DEFAULT_MIN_EVIDENCE,
            },
        }))
    }
}

/// Gives each batched service that set no budget an even share of the probes' `total`.
fn share_budget(src: &Source, sync: &mut [SyncProbe], total: &Option<Spanned<f64>>) -> Result<(), WorkloadError> {
    let total = match total {
        Some(t) => budget(src, t, "probes.budget")?,
        None => DEFAULT_BUDGET,
    };
    let sharing = sync.iter().filter(|s| s.batch.is_some() && s.budget.is_none()).count();
    for s in sync.iter_mut().filter(|s| s.batch.is_some() && s.budget.is_none()) {
        s.budget = Some(total / sharing as f64);
    }
    Ok(())
}

fn poll_policy(src: &Source, w: Option<&Spanned<PollWire>>) -> Result<PollPolicy, WorkloadError> {
    let Some(w) = w else {
        return Ok(PollPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(1000),
            factor: 1.5,
            precision: Some(DEFAULT_PRECISION),
        });
    };
    let (span, p) = (w.span(), w.get_ref());
    let poll = PollPolicy {
        initial: dur_or(src, &p.initial, "poll.initial", 10)?,
        max: dur_or(src, &p.max, "poll.max", 1000)?,
        factor: p.factor.as_ref().map_or(1.5, |f| *f.get_ref()),
        // Relative spacing unless a growth factor is asked for.
        precision: match (&p.precision, &p.factor) {
            (Some(p), _) => Some(*p.get_ref()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_PRECISION),
        },
    };
    if poll.initial.is_zero() || poll.max < poll.initial || !(1.0..=10.0).contains(&poll.factor) {
        let at = span_of(&p.factor).filter(|_| !(1.0..=10.0).contains(&poll.factor));
        return Err(src.error(
            at.or(span_of(&p.initial)).or(Some(span)),
            "probes.poll needs 0 < initial <= max and 1 <= factor <= 10",
        ));
    }
    if let Some(given) = &p.precision
        && !(0.001..=1.0).contains(given.get_ref())
    {
        return Err(src.error(
            Some(given.span()),
            "probes.poll.precision is a share of the elapsed time, between 0.001 and 1 (e.g. 0.1)",
        ));
    }
    Ok(poll)
}

fn queue_probe(src: &Source, q: &Spanned<QueueWire>) -> Result<QueueProbe, WorkloadError> {
    let (span, q) = (Some(q.span()), q.get_ref());
    Ok(QueueProbe {
        source: match (&q.job_header, &q.job_pointer) {
            (Some(h), None) => JobSource::Header(h.get_ref().clone()),
            (None, Some(p)) => JobSource::Pointer(pointer(src, p, "probes.queue.job_pointer")?),
            (Some(_), Some(p)) => {
                return Err(src.error(
                    Some(p.span()),
                    "probes.queue: give exactly one of `job_header` or `job_pointer`",
                ));
            }
            (None, None) => {
                return Err(src.error(span, "probes.queue: give exactly one of `job_header` or `job_pointer`"));
            }
        },
        url_template: match &q.job_url {
            Some(t) if !t.get_ref().contains("{job}") => {
                return Err(src.error(
                    Some(t.span()),
                    format!("probes.queue.job_url `{}` needs a `{{job}}` placeholder", t.get_ref()),
                ));
            }
            other => other.as_ref().map(|t| t.get_ref().clone()),
        },
        start: match (&q.accepted_at, &q.started_at, &q.started_when) {
            (Some(a), Some(s), None) => StartDetection::Timestamps {
                accepted_at: pointer(src, a, "probes.queue.accepted_at")?,
                started_at: pointer(src, s, "probes.queue.started_at")?,
            },
            (None, None, Some(w)) => StartDetection::StateChange {
                pointer: pointer(src, &w.pointer, "probes.queue.started_when.pointer")?,
                not_equals: serde_json::to_value(&w.not_equals).unwrap_or_default(),
            },
            _ => {
                return Err(src.error(
                    span,
                    "probes.queue: give `accepted_at` and `started_at` (server timestamps), or `started_when` (state change)",
                ));
            }
        },
    })
}

fn push_receiver(src: &Source, p: &PushWire) -> Result<PushReceiver, WorkloadError> {
    Ok(PushReceiver {
        listen: p.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
        job_pointer: pointer_or(src, &p.job_pointer, "probes.push.job_pointer", "/job_id")?,
        service_pointer: pointer_or(src, &p.service_pointer, "probes.push.service_pointer", "/service")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::downstream::{Find, ServiceAuth};

    /// Converts `text`, a document with a `[probes]` section.
    fn probes(text: &str, embedded: Option<&[String]>) -> Result<Option<Probes>, WorkloadError> {
        #[derive(Deserialize)]
        struct Doc {
            probes: Option<Spanned<ProbesWire>>,
        }
        let src = Source {
            file: std::path::Path::new("w.toml"),
            text,
            remap: None,
        };
        let doc: Doc = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
        Probes::from_wire(&src, doc.probes, embedded)
    }

    #[test]
    fn embedded_targets_get_queue_and_every_service_by_default() {
        let services = vec!["directory".to_string(), "mail".to_string()];
        let p = probes("", Some(&services)).unwrap().unwrap();
        assert_eq!(p.sync.len(), 2);
        assert_eq!(
            p.sync[1].find.url().as_str(),
            "/linked/mail/Users?filter=userName%20eq%20%22{userName}%22"
        );
        assert_eq!(p.sync[1].batch, Some(50), "read by one batched query per tick");
        assert_eq!(p.sync[1].budget, Some(DEFAULT_BUDGET / 2.0), "an even share");
        assert_eq!(p.poll.precision, Some(DEFAULT_PRECISION));
        assert_eq!(p.sync[1].access.auth, ServiceAuth::Target);
        assert!(matches!(p.queue.unwrap().start, StartDetection::Timestamps { .. }));
        assert_eq!(p.sample, 0.1);
        assert!(
            probes("", None).unwrap().is_none(),
            "SCIM targets have no probes unless asked"
        );
    }

    #[test]
    fn explicit_probes_are_checked() {
        let err = probes("[probes]\nsample = 2.0", None).unwrap_err();
        assert!(err.message.contains("sample"));
        let err = probes("[[probes.sync]]\nservice = \"ldap\"\n", None).unwrap_err();
        assert!(
            err.message.contains("needs a `url` by id") && err.message.contains("or a `query`"),
            "{err}"
        );
        let err = probes(
            "[probes]\nqueue = { job_header = \"x\", accepted_at = \"at\", started_at = \"/s\" }",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("JSON pointer"), "{err}");
        let err = probes(
            "[[probes.sync]]\nservice = \"d\"\nurl = \"/u/{id}\"\nobserve = \"push\"\n",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("[probes.push]"), "{err}");
        assert!(
            probes("[probes]\nenabled = false", Some(&["d".into()]))
                .unwrap()
                .is_none()
        );
    }

    /// Each mistake inside `[probes]` points at the line of its key, not at the section's.
    #[test]
    fn errors_name_their_keys_line() {
        for (text, line, needle) in [
            ("[probes]\nenabled = true\nsample = 2.0\n", 3, "probes.sample"),
            (
                "[probes]\n\ntimeout = \"soon\"\n[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\n",
                3,
                "probes.timeout",
            ),
            (
                "[probes]\npoll = { initial = \"10ms\",\n  precision = 5.0 }\n",
                3,
                "precision",
            ),
            (
                "[[probes.sync]]\nservice = \"crm\"\nurl = \"/crm/{id}\"\n\nops = [\"create_user\",\n  \"get_user\"]\n",
                6,
                "not observable",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\nobserve = \"pull\"\n",
                4,
                "observe must be",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{id}\"\nqueyr = \"/q\"\n",
                4,
                "did you mean `query`?",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"/a/{uid}\"\n",
                3,
                "unknown placeholder",
            ),
            (
                "[[probes.sync]]\nservice = \"a\"\nurl = \"https://a.test/{id}\"\nauth = { kind = \"bearer\",\n token_env = \"T\", scope = \"x\" }\n",
                5,
                "unknown key `scope`",
            ),
        ] {
            let e = probes(text, None).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {e}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
        }
    }

    /// An LDAP service is read as its own shape: HTTP keys are unknown there, at their line.
    #[test]
    fn an_ldap_service_refuses_http_keys() {
        let text = "[[probes.sync]]\nservice = \"replica\"\nldap = { url = \"ldap://127.0.0.1:3890\", base_dn = \"ou=people,dc=x\" }\nquery = \"/q\"\n";
        let e = probes(text, None).unwrap_err();
        assert!(e.message.contains("unknown key `query`"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        let ok = text.replace("query = \"/q\"\n", "");
        let p = probes(&ok, None).unwrap().unwrap();
        assert!(p.sync[0].ldap.is_some());
        assert_eq!(p.sync[0].access.auth, ServiceAuth::Target);
    }

    /// How an LDAP service shows a disabled account: a preset or a bit mask, each mistake at
    /// its key's own line inside a table written over several lines.
    #[test]
    fn an_ldap_services_disabled_rule_is_checked_at_its_key() {
        use crate::workload::ldap_read::DisabledRule;
        let at = |rule: &str| {
            format!(
                "[[probes.sync]]\nservice = \"dc\"\n[probes.sync.ldap]\nurl = \"ldaps://127.0.0.1:636\"\nbase_dn = \"CN=Users,DC=pb,DC=test\"\n{rule}\n"
            )
        };
        let p = probes(&at("lock = \"active-directory\""), None).unwrap().unwrap();
        let read = p.sync[0].ldap.as_ref().unwrap();
        assert!(
            matches!(&read.disabled, DisabledRule::Bits { attribute, mask } if attribute == "userAccountControl" && mask.get() == 2),
            "{read:?}"
        );
        let e = probes(
            &at("disabled_attribute = \"userAccountControl\"\ndisabled_mask = 0"),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("probes.sync `dc` ldap.disabled_mask = 0"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        let e = probes(&at("disabled_attribute = \"userAccountControl\""), None).unwrap_err();
        assert!(e.message.contains("disabled_mask = 2"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
    }

    /// Other origins get no credentials unless a service says so; query views get their defaults.
    #[test]
    fn reads_of_other_origins_carry_none_of_the_targets_credentials() {
        let p = probes(
            "[[probes.sync]]\nservice = \"crm\"\nquery = \"https://crm.example.test/Users?filter=userName eq \\\"{userName}\\\"\"\n\
             [[probes.sync]]\nservice = \"dir\"\nurl = \"https://dir.example.test/u/{id}\"\nauth = \"target\"\n\
             [[probes.sync]]\nservice = \"hr\"\nurl = \"/hr/{id}\"\nauth = { kind = \"bearer\", token_env = \"HR\" }\nheaders = { X-Tenant = \"t1\" }\n\
             [[probes.sync]]\nservice = \"idp\"\nurl = \"https://idp.test/u/{id}\"\nauth = { kind = \"oauth2-client-credentials\", token_url = \"/t\", client_id = \"c\", client_secret_env = \"S\" }\n",
            None,
        )
        .unwrap()
        .unwrap();
        // Decided with the target: none of its credentials unless on its origin.
        assert_eq!(p.sync[0].access.auth, ServiceAuth::Default);
        assert!(
            matches!(&p.sync[0].find, Find::Query { list, identity, .. } if list == "/Resources" && identity == "/userName")
        );
        assert_eq!(p.sync[1].access.auth, ServiceAuth::Target, "explicitly asked for");
        assert!(matches!(p.sync[2].access.auth, ServiceAuth::Bearer(_)));
        assert_eq!(p.sync[2].access.headers.len(), 1);
        assert!(matches!(p.sync[3].access.auth, ServiceAuth::OAuth2(_)));
        let bad = probes("[[probes.sync]]\nservice = \"crm\"\nurl = \"/crm/{uid}\"\n", None).unwrap_err();
        assert!(bad.message.contains("unknown placeholder"), "{bad}");
    }
}
