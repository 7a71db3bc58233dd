//! The run-wide security checks: `authorization` (calls without a valid token are refused and
//! change nothing) and `escalation` (a limited admin cannot grant `admin`, change an admin or join
//! a privileged group), with the client tokens and admin reads they need.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::CheckHub;
use crate::http::client::encode_query;
use crate::ledger::Created;
use crate::vocab::CheckKind;
use crate::workload::checks::Client;

/// RFC 6749 §2.3.1 client authentication on a token request: HTTP Basic (form-encoded id and
/// secret) or both in the form.
pub(super) fn authenticated<'a>(
    request: reqwest::RequestBuilder,
    form: &mut Vec<(&'a str, &'a str)>,
    c: &'a Client,
    secret: &'a str,
) -> reqwest::RequestBuilder {
    match c.auth {
        crate::http::ClientAuth::Basic => {
            let enc = crate::http::client::encode_query;
            request.basic_auth(enc(&c.id), Some(enc(secret)))
        }
        crate::http::ClientAuth::Post => {
            form.push(("client_id", c.id.as_str()));
            form.push(("client_secret", secret));
            request
        }
    }
}

impl CheckHub {
    async fn client_token(&self, c: &Client) -> anyhow::Result<String> {
        self.client_token_with_ttl(c).await.map(|(t, _)| t)
    }

    async fn client_token_with_ttl(&self, c: &Client) -> anyhow::Result<(String, Duration)> {
        let secret = c.secret.resolve()?;
        let mut form = vec![("grant_type", "client_credentials")];
        let request = authenticated(
            self.http.post(self.url(&self.cfg.token_url, "", "")),
            &mut form,
            c,
            &secret,
        );
        self.count_request();
        let r = request.form(&form).send().await?;
        let v: Value = crate::http::body::json(r, self.body_limit())
            .await
            .map_err(|e| anyhow::anyhow!("token answer for client {}: {e}", c.id))?;
        let ttl = Duration::from_secs(v["expires_in"].as_u64().unwrap_or(0));
        v["access_token"]
            .as_str()
            .map(|t| (t.to_string(), ttl))
            .ok_or_else(|| anyhow::anyhow!("no token for client {}", c.id))
    }

    /// The target's SCIM base URL (the security checks run only against HTTP targets).
    fn target_base(&self) -> &str {
        self.client.as_ref().map_or("", |c| c.base())
    }

    /// Users whose userName is `name` (admin view), or why the target did not say: a read
    /// that failed or was refused proves nothing about what the forbidden call did.
    async fn count_named(&self, name: &str) -> Result<u64, String> {
        let path = format!("/Users?filter={}", encode_query(&format!("userName eq \"{name}\"")));
        let client = self.client.as_ref().ok_or("no admin client")?;
        self.count_request();
        let r = client.call(Method::GET, &path, None).await.map_err(|e| e.to_string())?;
        if !r.status.is_success() {
            return Err(format!("HTTP {}", r.status.as_u16()));
        }
        serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["totalResults"].as_u64())
            .ok_or_else(|| "an answer without totalResults".to_string())
    }

    /// Creates a user for the escalation attempts (admin view): its id, when the user the target
    /// answered carries the run's marker in its `userName` (recorded in the ledger, so cleanup
    /// deletes it) and the id can name it as one path segment. Only users: the check creates no
    /// group (invariant 4: a group is the run's only by the marker in the `displayName` the target
    /// answered, and a privileged group's name carries none).
    async fn admin_create_user(&self, body: Value) -> Option<(String, String)> {
        self.count_request();
        let r = self
            .client
            .as_ref()?
            .call(Method::POST, "/Users", Some(body.to_string().into()))
            .await
            .ok()?;
        let v = serde_json::from_slice::<Value>(&r.body).ok()?;
        let id = v["id"].as_str()?.to_string();
        let user_name = v["userName"].as_str().unwrap_or_default().to_string();
        let item = Created::User {
            id: id.clone(),
            user_name: user_name.clone(),
        };
        // Only what carries the run's marker is ours to use (and to delete), and only an id that
        // is one path segment may be named in a request.
        self.created
            .record(item)
            .then_some((id, user_name))
            .filter(|(id, _)| crate::http::url::segment(id).is_ok())
    }

    /// The user at `path` as the admin reads it, when it is the user its create answered: its
    /// own `id` and `userName` (ASCII case-insensitive). A target that answers someone else's
    /// user under the id a create gave (a foreign admin, a user of a mixed-up id) has that user
    /// neither attempted on nor put back by the check: the check changes only its own users.
    async fn own_user(&self, path: &str, (id, user_name): (&str, &str)) -> Result<Value, String> {
        let v = self.admin_get(path).await?;
        let ours = v["id"].as_str() == Some(id)
            && v["userName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(user_name));
        if ours {
            Ok(v)
        } else {
            Err(format!(
                "reading {path} answered a user that is not the run's (userName {}, id {})",
                crate::redact::sample_bytes(v["userName"].to_string().as_bytes(), true, 80),
                crate::redact::sample_bytes(v["id"].to_string().as_bytes(), true, 80),
            ))
        }
    }

    /// The target's own privileged group (`checks.privileged_group`), found read-only by the
    /// admin: its path, when exactly one group of the lookup's answer has that `displayName`
    /// (ASCII case-insensitive) and an id that is one path segment; otherwise why there is no
    /// group to try. The check never creates, renames or deletes it: it only tries to add the
    /// run's own employee to it, and removes only that member again.
    async fn privileged_group(&self) -> Result<String, String> {
        let name = self.cfg.privileged_group.as_str();
        let client = self.client.as_ref().ok_or("no admin client")?;
        let quoted = serde_json::to_string(name).map_err(|e| e.to_string())?;
        let path = format!("/Groups?filter={}", encode_query(&format!("displayName eq {quoted}")));
        self.count_request();
        let r = client
            .call(Method::GET, &path, None)
            .await
            .map_err(|e| format!("looking it up failed ({e})"))?;
        if !r.status.is_success() {
            return Err(format!("looking it up answered HTTP {}", r.status.as_u16()));
        }
        let v = serde_json::from_slice::<Value>(&r.body).map_err(|_| "looking it up answered no JSON".to_string())?;
        let named: Vec<&Value> = v["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["displayName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .collect();
        match named.as_slice() {
            [] => Err(format!("the target has no group with displayName {quoted}")),
            [group] => {
                let id = group["id"]
                    .as_str()
                    .ok_or_else(|| format!("the group {quoted} was answered without an id"))?;
                crate::http::url::member("Groups", id)
                    .map_err(|e| format!("the id answered for the group {quoted} cannot name it in a URL ({e})"))
            }
            more => Err(format!(
                "{} groups answered with displayName {quoted}: which one is privileged is not known",
                more.len()
            )),
        }
    }

    /// A SCIM PATCH of `ops` at `path` by the admin, its answer ignored: the put-backs after an
    /// attempt that was not refused (only ever on the run's own users, and the run's own member
    /// of the privileged group).
    async fn admin_patch(&self, path: &str, ops: Value) {
        let Some(client) = &self.client else { return };
        self.count_request();
        let _ = client
            .call(Method::PATCH, path, Some(patch(ops).to_string().into()))
            .await;
    }

    /// The resource at `path` as the admin sees it, or why it could not be read: an unread
    /// resource is no evidence that a forbidden change did not take effect.
    async fn admin_get(&self, path: &str) -> Result<Value, String> {
        let client = self.client.as_ref().ok_or("no admin client")?;
        self.count_request();
        let r = client.call(Method::GET, path, None).await.map_err(|e| e.to_string())?;
        if !r.status.is_success() {
            return Err(format!("reading {path} answered HTTP {}", r.status.as_u16()));
        }
        serde_json::from_slice::<Value>(&r.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("reading {path} answered no JSON object"))
    }

    /// Runs the run-wide security checks, spread over `span`.
    pub async fn security(self: Arc<Self>, span: Duration) {
        let spacing = span / (self.cfg.attempts + 1);
        if self.cfg.has(CheckKind::Authorization) {
            let me = self.clone();
            tokio::spawn(async move { me.authorization(spacing).await });
        }
        if self.cfg.has(CheckKind::Escalation) {
            let me = self.clone();
            tokio::spawn(async move { me.escalation(spacing).await });
        }
    }

    async fn authorization(self: Arc<Self>, spacing: Duration) {
        let _permit = self.permits.clone().acquire_owned().await;
        let readonly = match &self.cfg.readonly {
            Some(c) => self.client_token(c).await.ok(),
            None => None,
        };
        // A token that has expired: issued to the short-lived client, then waited out. Its
        // lifetime is the token endpoint's word: one past any representable time is no token
        // that expires (and no panic), and the wait for it ends when the checks stop.
        let expired = match &self.cfg.expiring {
            Some(c) => self.client_token_with_ttl(c).await.ok().and_then(|(t, ttl)| {
                let at = Instant::now()
                    .checked_add(ttl)?
                    .checked_add(Duration::from_millis(500))?;
                Some((t, at))
            }),
            None => None,
        };
        for i in 0..self.cfg.attempts {
            if !self.pause(spacing).await {
                return;
            }
            if i as usize % 4 == 2
                && let Some((_, usable_after)) = &expired
            {
                // Only once it has expired is it an expired token.
                tokio::select! {
                    _ = tokio::time::sleep_until(*usable_after) => {}
                    _ = self.stop.cancelled() => return,
                }
            }
            let variants: [(&str, Option<String>); 4] = [
                ("no token", None),
                ("an invalid token", Some("pb-invalid-token".into())),
                ("an expired token", expired.as_ref().map(|(t, _)| t.clone())),
                ("a read-only client's token", readonly.clone()),
            ];
            let (label, token) = &variants[i as usize % variants.len()];
            if label.contains("read-only") && token.is_none() || label.contains("expired") && token.is_none() {
                self.skip(CheckKind::Authorization);
                continue;
            }
            let name = format!("{}-authz-{i}@example.test", self.run_id);
            let mut req = self
                .http
                .post(format!("{}/Users", self.target_base()))
                .header("content-type", "application/scim+json")
                .body(json!({"userName": name, "externalId": format!("{}-authz-{i}", self.run_id)}).to_string());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            self.count_request();
            let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            let created = match self.count_named(&name).await {
                Ok(n) => n,
                Err(why) => {
                    self.fail(
                        CheckKind::Authorization,
                        Some(&name),
                        None,
                        format!("a create with {label} answered HTTP {status}; whether it created a user could not be read ({why})"),
                    );
                    continue;
                }
            };
            if matches!(status, 401 | 403) && created == 0 {
                self.pass(CheckKind::Authorization);
            } else {
                self.fail(
                    CheckKind::Authorization,
                    Some(&name),
                    None,
                    format!("a create with {label} answered HTTP {status} and {created} user(s) exist afterwards"),
                );
            }
        }
    }

    async fn escalation(self: Arc<Self>, spacing: Duration) {
        let _permit = self.permits.clone().acquire_owned().await;
        let Some(helpdesk) = self.cfg.helpdesk.clone() else {
            return;
        };
        let Ok(token) = self.client_token(&helpdesk).await else {
            self.fail(
                CheckKind::Escalation,
                None,
                None,
                format!("client `{}` could not get a token", helpdesk.id),
            );
            return;
        };
        let run = &self.run_id;
        let employee = self
            .admin_create_user(json!({"userName": format!("{run}-esc-employee@example.test"), "externalId": format!("{run}-esc-employee"), "roles": [{"value": "employee"}]}))
            .await;
        let admin = self
            .admin_create_user(json!({"userName": format!("{run}-esc-admin@example.test"), "externalId": format!("{run}-esc-admin"), "displayName": "Admin", "roles": [{"value": "admin"}]}))
            .await;
        let (Some((employee, employee_name)), Some((admin, admin_name))) = (employee, admin) else {
            self.fail(
                CheckKind::Escalation,
                None,
                None,
                "could not set up the escalation attempts (users not created)",
            );
            return;
        };
        // Requests name them by their paths, each id one encoded segment (`admin_create_user`
        // kept only ids that can be): a raw id such as `%41dmin` would name another user.
        let member = crate::http::url::member;
        let (Ok(employee_path), Ok(admin_path)) = (member("Users", &employee), member("Users", &admin)) else {
            return;
        };
        // Each is the run's user as read at its id, before anything is tried on it: the id a
        // create answered names nothing else (a foreign admin would lose `admin`, its
        // membership of the privileged group, or its name to the attempts and the put-backs).
        let employee_own = (employee.as_str(), employee_name.as_str());
        let admin_own = (admin.as_str(), admin_name.as_str());
        let setup = async {
            self.own_user(&employee_path, employee_own).await?;
            self.own_user(&admin_path, admin_own).await
        };
        if let Err(why) = setup.await {
            self.fail(
                CheckKind::Escalation,
                None,
                None,
                format!("could not set up the escalation attempts: {why}"),
            );
            return;
        }
        // The group attempt uses the target's existing privileged group (a group made for the
        // run, named like it, is privileged nowhere and would not be ours to delete); without
        // one it is not made, and the check says so.
        let group = self.privileged_group().await.and_then(|path| {
            // The put-back names the employee in a `members[value eq "…"]` filter: an id that
            // could end its string or its brackets there (on a parser that takes no escapes) is
            // not added to a group it might not be taken out of alone.
            let plain = !employee
                .chars()
                .any(|c| matches!(c, '"' | '\\' | '[' | ']' | '(' | ')') || c.is_whitespace() || c.is_control());
            if plain {
                Ok(path)
            } else {
                Err("the run's employee has an id that a members filter cannot name alone".to_string())
            }
        });
        let group_path = match group {
            Ok(path) => Some(path),
            Err(why) => {
                self.note(
                    CheckKind::Escalation,
                    format!("\"join a privileged group\" not attempted: {why}"),
                );
                None
            }
        };
        // Only the run's own employee is ever added to or removed from the privileged group.
        let own_member = format!(
            "members[value eq {}]",
            serde_json::to_string(&employee).unwrap_or_default()
        );
        // The run's employee out of the privileged group again (it was read as the run's before
        // any attempt; the filter names it alone).
        let leave = || async {
            if let Some(group_path) = &group_path {
                self.admin_patch(group_path, json!([{"op": "remove", "path": own_member}]))
                    .await;
            }
        };
        for i in 0..self.cfg.attempts {
            if !self.pause(spacing).await {
                return;
            }
            let join_tried = i % 4 == 3;
            let (label, method, path, body) = match i % 4 {
                0 => (
                    "grant admin by PATCH",
                    Method::PATCH,
                    employee_path.clone(),
                    patch(json!([{"op": "add", "path": "roles", "value": [{"value": "admin"}]}])),
                ),
                1 => (
                    "grant admin by PUT",
                    Method::PUT,
                    employee_path.clone(),
                    json!({"userName": format!("{run}-esc-employee@example.test"), "roles": [{"value": "admin"}]}),
                ),
                2 => (
                    "modify an admin",
                    Method::PATCH,
                    admin_path.clone(),
                    patch(json!([{"op": "replace", "path": "displayName", "value": "pwned"}])),
                ),
                _ => {
                    // Not made, and not judged: the note says why.
                    let Some(group_path) = &group_path else { continue };
                    (
                        "join a privileged group",
                        Method::PATCH,
                        group_path.clone(),
                        patch(json!([{"op": "add", "path": "members", "value": [{"value": employee}]}])),
                    )
                }
            };
            self.count_request();
            let status = self
                .http
                .request(method, format!("{}{path}", self.target_base()))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            // Whatever the status, the target must be unchanged.
            // Each read must be what it was: the run's own users, and the privileged group
            // itself (a read of another user or group is no evidence about these, and the
            // put-back changes only what was read as the run's).
            let read = async {
                let group = match &group_path {
                    Some(p) => {
                        let g = self.admin_get(p).await?;
                        let named = g["displayName"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(&self.cfg.privileged_group));
                        if !named {
                            return Err(format!(
                                "reading {p} answered a group not named {:?}",
                                self.cfg.privileged_group
                            ));
                        }
                        Some(g)
                    }
                    None => None,
                };
                Ok::<_, String>((
                    self.own_user(&employee_path, employee_own).await?,
                    self.own_user(&admin_path, admin_own).await?,
                    group,
                ))
            };
            let (e, a, g) = match read.await {
                Ok(all) => all,
                Err(why) => {
                    self.fail(
                        CheckKind::Escalation,
                        Some(&format!("client:{}", helpdesk.id)),
                        None,
                        format!("{label}: HTTP {status}; whether it took effect could not be read ({why})"),
                    );
                    // A join whose effect could not be read is put back all the same.
                    if join_tried {
                        leave().await;
                    }
                    continue;
                }
            };
            // The group has members of its own (its admins): what counts is the run's employee
            // among them.
            let joined = g.is_some_and(|g| {
                g["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x["value"].as_str() == Some(employee.as_str())))
            });
            let escalated = e["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["value"] == "admin"))
                || a["displayName"] == "pwned"
                || joined;
            if matches!(status, 401 | 403) && !escalated {
                self.pass(CheckKind::Escalation);
            } else {
                self.fail(
                    CheckKind::Escalation,
                    Some(&format!("client:{}", helpdesk.id)),
                    None,
                    format!(
                        "{label}: HTTP {status}{}",
                        if escalated { ", and the change took effect" } else { "" }
                    ),
                );
                // Put things back so the next attempt starts clean: the run's own employee
                // loses `admin`, and leaves the privileged group if it was seen in it or tried
                // to join it; the run's own admin gets its name back. Never anything more (the
                // group's other members are the target's admins; both users were read as the
                // run's just now).
                self.admin_patch(
                    &employee_path,
                    json!([{"op": "remove", "path": "roles[value eq \"admin\"]"}]),
                )
                .await;
                // The run's admin gets its name back, or every later attempt would be charged
                // with this one's effect.
                if a["displayName"] == "pwned" {
                    self.admin_patch(
                        &admin_path,
                        json!([{"op": "replace", "path": "displayName", "value": "Admin"}]),
                    )
                    .await;
                }
                // A join that was not refused is put back even when the group's answer did not
                // show it (a target that leaves `members` out of its groups): the filter names
                // the run's employee alone.
                if joined || join_tried {
                    leave().await;
                }
            }
        }
    }
}

/// A SCIM PatchOp message of `ops`.
fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
