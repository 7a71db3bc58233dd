//! The login and revocation checks for directories (`login_flow = { kind = "ldap-bind" }`): a
//! simple bind as the created user in each directory named. After a create (or an enable) the
//! bind must succeed: `login_ready_lag{service}` is how long after the write it first did. After a
//! disable or a delete it must be refused: `revocation_lag{service}` is how long it was still
//! accepted, a timeout at the bound when it never stopped. A bind that fails to connect says
//! nothing about the user and is tried again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Case, CheckHub, CheckedUser};
use crate::ldap::{Bind, bind_as};
use crate::vocab::{CheckKind, Op};
use crate::workload::login::{BindDirectory, LoginFlow};

impl CheckHub {
    pub(super) fn directories(&self) -> &[BindDirectory] {
        match &self.cfg.login_flow {
            LoginFlow::LdapBind(d) => d,
            _ => &[],
        }
    }

    async fn bind(&self, d: &BindDirectory, user: &CheckedUser) -> Result<Bind, String> {
        let password = user.password.as_deref().unwrap_or_default();
        let started = Instant::now();
        self.count_request();
        let r = bind_as(&d.endpoint, &d.dn_for(&user.id, &user.user_name), password).await;
        if r.is_ok() {
            self.registry
                .record(self.login_latency, started.elapsed().as_micros() as u64);
        }
        if matches!(r, Ok(Bind::Accepted)) {
            self.bindable.insert((user.id.clone(), d.name.clone()), ());
        }
        r
    }

    /// After a create or an enable: the user can bind in every directory.
    pub(super) async fn check_bind_login(self: Arc<Self>, user: CheckedUser, acked: Instant) {
        let deadline = acked + self.cfg.timeout;
        for d in self.directories() {
            let mut wait = Duration::from_millis(5);
            let mut last;
            loop {
                match self.bind(d, &user).await {
                    Ok(Bind::Accepted) => {
                        let series = self.login_ready_in[&d.name];
                        self.registry.record(series, acked.elapsed().as_micros() as u64);
                        break;
                    }
                    Ok(Bind::Refused(why)) | Err(why) => last = why,
                }
                if self.revoked_users.contains_key(&user.id) {
                    // Disabled or deleted by its journey before it could bind: overtaken.
                    self.skip(CheckKind::Login);
                    return;
                }
                if Instant::now() + wait > deadline {
                    let series = self.login_ready_in[&d.name];
                    let bound = self.cfg.timeout.as_micros() as u64;
                    self.registry
                        .record_observation(series, bound, wait.as_micros() as u64, true);
                    self.fail(
                        CheckKind::Login,
                        Some(&user.user_name),
                        Some(&d.name),
                        format!("no successful bind within {:?} ({last})", self.cfg.timeout),
                    );
                    return;
                }
                if !self.pause(wait).await {
                    return;
                }
                wait = wait.mul_f64(1.5).min(Duration::from_millis(250));
            }
        }
        // What a revocation check proves is that this stops working.
        self.tokens.insert(user.id.clone(), String::new());
        self.pass(CheckKind::Login);
    }

    /// After a disable or a delete: every directory refuses the user's bind. A refusal is
    /// evidence only where the user was seen able to bind (before the change or after it), and
    /// only for this change: a refusal seen after a later delete began is the delete's, and the
    /// check ends overtaken. A directory where the user never bound judges nothing; a check
    /// that judged no directory is skipped, never passed.
    pub(super) async fn check_bind_revoked(self: Arc<Self>, user: CheckedUser, change: Op, acked: Instant) {
        let deadline = acked + self.cfg.timeout;
        let mut judged = 0;
        for d in self.directories() {
            match self.revoked_in(d, &user, acked, deadline).await {
                Revoked::Refused => judged += 1,
                Revoked::NeverBound => {}
                Revoked::Overtaken => {
                    self.revocation_case(change, Case::Overtaken, &user.user_name, None, String::new());
                    return;
                }
                Revoked::StillAccepted => {
                    let detail = format!(
                        "the directory still accepts a bind as the user {:?} after the change",
                        self.cfg.timeout
                    );
                    self.revocation_case(change, Case::Failed, &user.user_name, Some(&d.name), detail);
                    return;
                }
                Revoked::Stopped => return,
            }
        }
        let case = if judged > 0 { Case::Passed } else { Case::Overtaken };
        self.revocation_case(change, case, &user.user_name, None, String::new());
    }

    /// One directory's verdict on a change acknowledged at `acked`.
    async fn revoked_in(&self, d: &BindDirectory, user: &CheckedUser, acked: Instant, deadline: Instant) -> Revoked {
        let series = self.revocation[&d.name];
        let key = (user.id.clone(), d.name.clone());
        let mut previous = acked;
        let mut wait = Duration::from_millis(5);
        loop {
            let sent = Instant::now();
            let refused = matches!(self.bind(d, user).await, Ok(Bind::Refused(_)));
            let answered = Instant::now();
            if self.enabled_after(&user.id, acked) || (refused && self.overtaken_by_delete(&user.id, acked, answered)) {
                // Enabled again, or deleted, before this directory showed the change.
                return Revoked::Overtaken;
            }
            if refused && self.bindable.contains_key(&key) {
                let at = Instant::now();
                let res = (at - previous).as_micros() as u64;
                self.registry
                    .record_observation(series, (at - acked).as_micros() as u64, res, false);
                return Revoked::Refused;
            }
            previous = sent;
            if Instant::now() + wait > deadline || !self.pause(wait).await {
                if !self.bindable.contains_key(&key) {
                    return Revoked::NeverBound;
                }
                if self.stop.is_cancelled() && Instant::now() + wait <= deadline {
                    return Revoked::Stopped;
                }
                let bound = self.cfg.timeout.as_micros() as u64;
                self.registry
                    .record_observation(series, bound, wait.as_micros() as u64, true);
                return Revoked::StillAccepted;
            }
            wait = wait.mul_f64(1.5).min(Duration::from_millis(250));
        }
    }

    fn enabled_after(&self, id: &str, at: Instant) -> bool {
        self.enabled.get(id).is_some_and(|t| *t > at)
    }

    /// After an enable, with directories: the user is no longer revoked and must bind again
    /// (false, and nothing done, for token logins: a token revoked by a disable is not issued again).
    pub fn enabled(self: &Arc<Self>, user: CheckedUser, acked: Instant) -> bool {
        if self.directories().is_empty() {
            return false;
        }
        self.revoked_users.remove(&user.id);
        self.enabled.insert(user.id.clone(), acked);
        if self.cfg.has(CheckKind::Login) {
            let me = self.clone();
            self.spawn(async move { me.check_bind_login(user, acked).await });
        }
        true
    }
}

/// How a directory answered binds after a change.
enum Revoked {
    /// Refused, after the user had been seen to bind there.
    Refused,
    /// Accepted until the bound.
    StillAccepted,
    /// The user was never seen to bind there: nothing to judge.
    NeverBound,
    /// A later write (an enable, a delete) came first.
    Overtaken,
    /// The checks were stopped (an interrupt).
    Stopped,
}
