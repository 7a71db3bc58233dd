//! The run's marker and its ledger. Every user and group a run creates carries the run id as a
//! whole token in its name; the ledger records a created resource only when the target's answer
//! proves that (a target that answers a create with somebody else's user never gets that user
//! deleted), so that cleanup finds everything the run made and touches nothing else, even when a
//! later phase fails or the run is interrupted. Shared by the engine, the checks and cleanup;
//! imports nothing from the crate.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

/// A run id: `pb-` and 8 to 32 lowercase letters or digits (generated: `pb-` and 8 hex digits).
/// One shape, so that it can be matched as a token: `pb-nightly1` never matches a name made by
/// `pb-nightly10`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

const PREFIX: &str = "pb-";

impl RunId {
    pub fn generate() -> RunId {
        use rand::Rng;
        RunId(format!("{PREFIX}{:08x}", rand::rng().random::<u32>()))
    }

    /// A run id as given (`--run-id`): the one shape, or an error that shows it.
    pub fn parse(text: &str) -> Result<RunId, String> {
        let body = text.strip_prefix(PREFIX).unwrap_or("");
        let ok = (8..=32).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(RunId(text.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a provbench run id: `pb-` then 8 to 32 lowercase letters or digits (e.g. pb-1a2b3c4d, pb-nightly42)"
            ))
        }
    }

    /// Any other marker, for `provbench cleanup --force`: still matched as a whole token.
    pub fn forced(text: &str) -> Result<RunId, String> {
        let ok = text.len() >= 4
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RunId(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{text}`: a marker needs 4 or more letters, digits, `-` or `_`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `name` carries this id as a whole token: neither preceded nor followed by a
    /// letter or a digit (names compare case-insensitively, as SCIM's `userName` does).
    ///
    /// Compared byte by byte (the id is ASCII): a lowercase copy of the name and a substring
    /// searcher built for every call were 600 instructions of each LDAP add. The matches tried
    /// are the leftmost ones that do not overlap, as `str::match_indices` on the lowercased
    /// name found them (`tests/it/marker.rs` holds it to that).
    pub fn marks(&self, name: &str) -> bool {
        let token = |b: u8| b.is_ascii_alphanumeric();
        let (id, bytes) = (self.0.as_bytes(), name.as_bytes());
        let mut at = 0;
        while at + id.len() <= bytes.len() {
            let end = at + id.len();
            let here = bytes[at..end].iter().zip(id).all(|(b, i)| b.to_ascii_lowercase() == *i);
            if !here {
                at += 1;
                continue;
            }
            if (at == 0 || !token(bytes[at - 1])) && (end == bytes.len() || !token(bytes[end])) {
                return true;
            }
            // Past this match, as match_indices goes on (an empty id, which no constructor
            // makes, would not move otherwise).
            at = end.max(at + 1);
        }
        false
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user or group the run created and has not deleted (yet), with the name that proves it; or
/// the request that undoes what a custom operation created (its cleanup hook, rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    User { id: String, user_name: String },
    Group { id: String, display_name: String },
    Undo(UndoRequest),
}

/// A custom operation's cleanup, ready to send: recorded only after the create it undoes was
/// answered with success, so it can only delete what this run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRequest {
    /// The cleanup operation's name.
    pub op: String,
    pub method: String,
    /// Relative to the target's base URL, or absolute.
    pub path: String,
    /// Header name and value (values may be secrets: never shown).
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Statuses that mean done (empty: any 2xx).
    pub expect: Vec<u16>,
    /// How what it undoes is proven the run's again before it is sent (the creating operation's
    /// `owns`, rendered when it ran); `None` when the hook names nothing the create extracted.
    pub proof: Option<Box<HookProof>>,
}

/// A GET of `read` whose answer must show a name carrying `marker` at the JSON pointer
/// `identity`, and be about one of `about` (the values `read` names) at the pointer `id`
/// (`/id` when not given, where an answer without it is about nothing else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookProof {
    pub read: String,
    pub identity: String,
    pub marker: RunId,
    pub about: Vec<String>,
    pub id: Option<String>,
}

impl Created {
    pub fn id(&self) -> &str {
        match self {
            Created::User { id, .. } | Created::Group { id, .. } => id,
            Created::Undo(u) => &u.path,
        }
    }

    /// What tells one resource from another when claims are read back and counted: the id, and
    /// for a cleanup hook its path with its headers (a tenant or realm header is part of where
    /// it deleted: `/users/u-0` of tenant a is not `/users/u-0` of tenant b).
    pub fn resource(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Created::Undo(u) => {
                let mut headers: Vec<String> = u
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
                    .collect();
                headers.sort();
                std::borrow::Cow::Owned(format!("{}\n{}", u.path, headers.join("\n")))
            }
            other => std::borrow::Cow::Borrowed(other.id()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Created::User { user_name: n, .. } | Created::Group { display_name: n, .. } => n,
            Created::Undo(u) => &u.op,
        }
    }
}

/// A shared, append-only record of what a run created (cheap to clone).
/// How many of the claims a read during the run showed gone are read once more at cleanup
/// (the most recent): every one in a run of up to this many deletes, as when all were read at
/// the end, at a bounded cost (about 16 concurrent reads for a few seconds, a few MB).
pub const RECENT_PROVEN: usize = 4096;

#[derive(Debug, Clone)]
pub struct Ledger {
    run_id: RunId,
    items: Arc<Mutex<Vec<Created>>>,
    /// What journeys deleted and nobody has read back yet: claims (invariant 5), read back
    /// while the run goes on ([`crate::engine::targets::readback::settle_while_running`]) or at
    /// cleanup.
    deleted: Arc<Mutex<Vec<Created>>>,
    /// Claims a read during the run did not show gone (still there, or the read failed): read
    /// again at cleanup, never during the run (a soft delete would be read every second).
    held: Arc<Mutex<Vec<Created>>>,
    /// Claims a read during the run showed gone: evidence already counted, nothing kept of them
    /// but a hash of each one's kind and id (8 bytes, not the claim), so cleanup counts a
    /// resource its sweep finds again once, not twice.
    proven: Arc<Mutex<Proven>>,
    /// The last [`RECENT_PROVEN`] claims a read during the run showed gone, whole: read once
    /// more at cleanup, so a resource that comes back after its read (and that a search does not
    /// list) is found, as it was when every claim was read at the end. Bounded, so a long run's
    /// memory and its cleanup's reads do not grow with its deletes; older comebacks are the
    /// marker sweep's to find.
    recent: Arc<Mutex<std::collections::VecDeque<Created>>>,
    /// Whether claims are kept at all: not for a target that goes away with the run (the
    /// embedded service), where nothing outlives it to read back, nor for a run that keeps its
    /// users (`--keep-users`, the sweep's steps), which has no cleanup to read them.
    keep_claims: bool,
    /// Creates sent whose resource the ledger does not hold: failed, refused or cut off, each
    /// may have made something whose id the run never learnt. Only a sweep by marker finds those.
    unsure: Arc<std::sync::atomic::AtomicU64>,
}

impl Ledger {
    pub fn new(run_id: RunId) -> Ledger {
        Ledger {
            run_id,
            items: Arc::default(),
            deleted: Arc::default(),
            held: Arc::default(),
            proven: Arc::default(),
            recent: Arc::default(),
            unsure: Arc::default(),
            keep_claims: true,
        }
    }

    /// The ledger of a run whose target goes away with it, or that keeps its users: deletes are
    /// not kept as claims.
    pub fn without_claims(self) -> Ledger {
        Ledger {
            keep_claims: false,
            ..self
        }
    }

    /// Whether the journeys' deletes are kept as claims, for a read during the run and at
    /// cleanup: not for a target that goes away with the run, nor for a run that keeps its users.
    pub fn keeps_claims(&self) -> bool {
        self.keep_claims
    }

    /// A create is about to be sent: until [`Ledger::create_recorded`], it may have made
    /// something the ledger does not hold.
    pub fn create_sent(&self) {
        self.unsure.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The create sent last by this caller ended with `item` as its resource: recorded and the
    /// create settled when `item` carries the marker ([`Ledger::record`]); otherwise it stays
    /// unsure, since what the target made of it (it was sent marked) is held nowhere. The one
    /// way a create that ends with its answer's resource is settled; returns whether it was.
    pub fn record_created(&self, item: Created) -> bool {
        let owned = self.record(item);
        if owned {
            self.create_recorded();
        }
        owned
    }

    /// The create sent last by this caller ended with its resource held by its journey (which
    /// records it at its end).
    pub fn create_recorded(&self) {
        self.unsure.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Creates that ended without their resource in the ledger (see [`Ledger::create_sent`]).
    pub fn unsure(&self) -> u64 {
        self.unsure.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Records `item` when its name (as the target answered it) carries the run's marker;
    /// returns false, recording nothing, for anything else.
    pub fn record(&self, item: Created) -> bool {
        if !matches!(item, Created::Undo(_)) && !self.run_id.marks(item.name()) {
            tracing::warn!(id = %item.id(), "the target answered a create with a resource that does not carry the run's marker: it will not be cleaned up by this run");
            return false;
        }
        self.items.lock().push(item);
        true
    }

    /// Everything recorded so far, leaving the ledger empty.
    pub fn take(&self) -> Vec<Created> {
        std::mem::take(&mut *self.items.lock())
    }

    /// Notes that a journey deleted `item` (its answer said so): cleanup reads it back. Taken
    /// once per journey, at its end, so the lock is off the hot path. A cleanup hook the journey
    /// ran itself is the run's by construction (owed only for what the run made and proved).
    pub fn deleted(&self, item: Created) {
        let ours = matches!(item, Created::Undo(_)) || self.run_id.marks(item.name());
        if self.keep_claims && ours {
            self.deleted.lock().push(item);
        }
    }

    /// The claims no read has looked at yet, for a read during the run.
    pub fn take_claims(&self) -> Vec<Created> {
        std::mem::take(&mut *self.deleted.lock())
    }

    /// Claims a read during the run could not prove (or did not finish): read at cleanup.
    pub fn hold(&self, items: Vec<Created>) {
        if !items.is_empty() {
            self.held.lock().extend(items);
        }
    }

    /// Claims a read during the run showed gone (`kind` names each one's kind): counted by kind
    /// and id, and the last [`RECENT_PROVEN`] kept whole to be read once more at cleanup.
    pub fn proven(&self, gone: Vec<Created>, kind: impl Fn(&Created) -> &'static str) {
        let mut proven = self.proven.lock();
        for item in &gone {
            proven.0.insert(Proven::key(kind(item), &item.resource()));
        }
        drop(proven);
        let mut recent = self.recent.lock();
        recent.extend(gone);
        let extra = recent.len().saturating_sub(RECENT_PROVEN);
        recent.drain(..extra);
    }

    /// The journeys' deletes a read during the run showed gone.
    pub fn proven_during_run(&self) -> Proven {
        self.proven.lock().clone()
    }

    /// What the journeys deleted that cleanup reads back: what no read has shown gone yet, and
    /// the last [`RECENT_PROVEN`] a read did (read again: a comeback is unverified).
    pub fn take_deleted(&self) -> Vec<Created> {
        let mut all = std::mem::take(&mut *self.held.lock());
        all.append(&mut self.deleted.lock());
        all.extend(std::mem::take(&mut *self.recent.lock()));
        all
    }
}

/// What the journeys deleted, for cleanup: the claims no read has shown gone yet, and the
/// resources a read during the run already showed gone.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    pub unread: Vec<Created>,
    pub proven: Proven,
}

/// The resources a read during the run showed gone: each a hash of its kind and id, so that
/// cleanup, reading back what its own deletes claim, counts each resource once (a user shown
/// gone during the run that came back and was swept again is one resource read back as gone).
#[derive(Debug, Clone, Default)]
pub struct Proven(std::collections::HashSet<u64>);

impl Proven {
    fn key(kind: &str, id: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (kind, id).hash(&mut h);
        h.finish()
    }

    /// Whether the resource of `kind` and `id` was shown gone during the run.
    pub fn has(&self, kind: &str, id: &str) -> bool {
        self.0.contains(&Self::key(kind, id))
    }

    /// How many resources were shown gone during the run.
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_have_one_shape() {
        assert!(RunId::parse(RunId::generate().as_str()).is_ok());
        for good in ["pb-1a2b3c4d", "pb-nightly42", "pb-nightly1"] {
            assert!(RunId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "pb-other",
            "12345678",
            "--------",
            "pb-night-ly42",
            "pb-NIGHTLY42",
            "xx-1a2b3c4d",
        ] {
            assert!(RunId::parse(bad).is_err(), "{bad}");
        }
        assert!(RunId::forced("legacy-run").is_ok());
        assert!(RunId::forced("a b").is_err());
    }

    /// Regression: `pb-nightly1` swept `pb-nightly10-1@…` and `pb-nightly1x@…`.
    #[test]
    fn the_marker_is_matched_as_a_whole_token() {
        let id = RunId::parse("pb-nightly1").unwrap();
        for mine in [
            "pb-nightly1-1@example.test",
            "PB-NIGHTLY1-7@x",
            "x.pb-nightly1",
            "pb-nightly1",
        ] {
            assert!(id.marks(mine), "{mine}");
        }
        for other in [
            "pb-nightly10-1@example.test",
            "pb-nightly1x@example.test",
            "apb-nightly1-1",
            "victim@example.test",
        ] {
            assert!(!id.marks(other), "{other}");
        }
    }

    /// Regression: a create answered with somebody else's user got that user deleted.
    #[test]
    fn only_marked_resources_are_recorded() {
        let ledger = Ledger::new(RunId::parse("pb-1a2b3c4d").unwrap());
        assert!(!ledger.record(Created::User {
            id: "1".into(),
            user_name: "victim@example.test".into(),
        }));
        assert!(ledger.record(Created::Group {
            id: "2".into(),
            display_name: "pb-1a2b3c4d-group-1".into(),
        }));
        assert_eq!(ledger.take().len(), 1);
    }
}
