//! The licence optimizer (`[license]`): keeps `license_group` ⊆ `access_group`, takes the licence
//! from holders inactive for `inactive_days` (most inactive first), and gives it back when their
//! activity resumes, when the IdP re-asserts them ([`on_idp_signal`], called by `intake.rs` on any
//! SCIM change of the user), or on `scimbridge license grant USER`. Seats are read from the
//! product (`Connector::seats`) and never over-assigned: a grant needs more than
//! `keep_free_seats` free seats by the last count, else the user is queued and reported, and the
//! next run grants from the queue first, oldest first.
//!
//! State in the `license` tree: `reclaimed` (who lost a seat, when, their activity then),
//! `queue` (who waits), `seats` (the last count, bumped by each grant so back-to-back grants do
//! not all see the same free seat), `history` (what the optimizer did).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::cleanup::{finding, inactivity};
use super::context::{self, intent, Provisioned, TargetView};
use super::report::{rfc3339, Finding, Mode, Report, TargetSummary};
use super::{Jobs, LicenseConfig, LifecycleError};
use crate::atlassian::{Connector, Product, Seats};
use crate::policy::{self, Intent, IntentAction, Policy, Trigger, UserFacts};
use crate::store::{ActivityRecord, Store};

/// What an admin tells users who lost their licence (README, access-denied message).
pub const GRANT_HINT: &str = "Your licence was reclaimed after a period of inactivity. Ask for it back through the \
IdP access request for this application, or ask an administrator to run `scimbridge license grant <your username>`.";

const RECLAIMED: &str = "reclaimed";
const QUEUE: &str = "queue";

/// The resolved `[license]` names.
struct Names<'a> {
    target: &'a str,
    access: &'a str,
    license: &'a str,
}

fn names(lc: &LicenseConfig) -> Result<Names<'_>, LifecycleError> {
    match (&lc.target, &lc.access_group, &lc.license_group) {
        (Some(target), Some(access), Some(license)) => Ok(Names { target, access, license }),
        _ => Err(LifecycleError::Invalid(
            "the licence optimizer needs [license] access_group and license_group, and a Jira, Confluence or Bitbucket [[target]]"
                .into(),
        )),
    }
}

/// Picks the seat count of the licence group: the configured Jira application role, else the
/// role whose key begins the group name (`jira-software` for `jira-software-users`), else the
/// only one reported.
fn pick_seats(all: Vec<Seats>, product: Product, role: Option<&str>, group: &str) -> Option<Seats> {
    if product != Product::Jira || all.len() == 1 {
        return all.into_iter().next();
    }
    if let Some(r) = role {
        return all.into_iter().find(|s| s.detail.eq_ignore_ascii_case(r));
    }
    let g = group.to_lowercase();
    all.into_iter().filter(|s| g.starts_with(&s.detail.to_lowercase())).max_by_key(|s| s.detail.len())
}

fn seats_json(s: &Seats, keep: u64, now: DateTime<Utc>) -> Value {
    json!({"detail": s.detail, "total": s.total, "used": s.used, "free": s.free(), "keep_free_seats": keep, "at": rfc3339(now)})
}

/// Seats a grant may use now: free beyond `keep`; unlimited licences always have one.
fn grantable(total: Option<u64>, used: u64, keep: u64) -> u64 {
    total.map_or(u64::MAX, |t| t.saturating_sub(used).saturating_sub(keep))
}

fn history(store: &Store, now: DateTime<Utc>, target: &str, username: &str, event: &str, detail: &str) {
    let entry = json!({"at": rfc3339(now), "target": target, "username": username, "event": event, "detail": detail});
    if let Err(e) = store.license_history_add(&entry) {
        tracing::warn!(error = %e, "Recording licence history failed.");
    }
}

/// The way back on an IdP signal: when `user` (active) lost its licence to the optimizer or is
/// queued for one, grant it if the last seat count has a seat beyond `keep_free_seats` (the
/// returned intent joins the change's own outbox write), else queue it. Called by `intake.rs`
/// under the store's writer lock, so concurrent signals see each other's seat bump.
pub fn on_idp_signal(
    store: &Store,
    lc: &LicenseConfig,
    policy: &Policy,
    user: &UserFacts,
    now: DateTime<Utc>,
) -> Option<Intent> {
    let n = names(lc).ok()?;
    if !user.active {
        return None;
    }
    let username = policy::username_for(user, policy.username_from)?;
    let waiting = store.license_entry(RECLAIMED, n.target, &username).ok().flatten().is_some()
        || store.license_entry(QUEUE, n.target, &username).ok().flatten().is_some();
    if !waiting {
        return None;
    }
    let seats = store.license_seats(n.target).ok().flatten().unwrap_or(Value::Null);
    let total = seats.get("total").and_then(Value::as_u64);
    let used = seats.get("used").and_then(Value::as_u64).unwrap_or(0);
    if seats.is_null() || grantable(total, used, lc.keep_free_seats) == 0 {
        let entry = json!({"username": username, "user_id": user.id, "queued_at": rfc3339(now), "queued_ms": now.timestamp_millis(), "why": "IdP signal, no free seat"});
        if store.license_set(QUEUE, n.target, &username, Some(&entry)).is_ok() {
            history(store, now, n.target, &username, "queued", "IdP signal while no seat was free");
        }
        return None;
    }
    let mut bumped = seats.clone();
    bumped["used"] = json!(used + 1);
    let ok = store.license_seats_put(n.target, &bumped).is_ok()
        && store.license_set(RECLAIMED, n.target, &username, None).is_ok()
        && store.license_set(QUEUE, n.target, &username, None).is_ok();
    if !ok {
        return None;
    }
    history(store, now, n.target, &username, "granted", "IdP signal");
    Some(Intent {
        target: n.target.to_string(),
        user_id: user.id.clone(),
        username,
        action: IntentAction::RestoreLicense { groups: vec![n.license.to_string()] },
        trigger: Trigger::LicenseGrant,
        dry_run: policy.dry_run,
    })
}

/// Whether adding `username` to `group` on `target` would hand back a seat the optimizer
/// reclaimed (or one the user is queued for): `group` is `license_group` of the optimizer's target
/// and the user has a `reclaimed` or `queue` entry. Group sync asks this before adding
/// (`intake.rs`), so the next sync of the licence group does not undo the optimizer.
pub fn licence_withheld(store: &Store, lc: &LicenseConfig, target: &str, group: &str, username: &str) -> bool {
    let Ok(n) = names(lc) else { return false };
    if !policy::eq_ci(n.target, target) || !policy::eq_ci(n.license, group) {
        return false;
    }
    [RECLAIMED, QUEUE].iter().any(|kind| store.license_entry(kind, n.target, username).ok().flatten().is_some())
}

/// Records a reclaim that a grace period let through (`grace.rs`): the `reclaimed` entry the way
/// back relies on, and the history.
///
/// # Errors
/// On a store error.
pub(crate) fn record_reclaimed(
    store: &Store,
    e: &crate::store::GraceEntry,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let user_id = Some(e.user_id.clone()).filter(|u| !u.starts_with("atlassian:"));
    let entry = json!({"username": e.username, "user_id": user_id, "reclaimed_at": rfc3339(now), "reclaimed_ms": now.timestamp_millis(), "reason": crate::reason::LICENSE_RECLAIMED, "detail": reason});
    store.license_set(RECLAIMED, &e.target, &e.username, Some(&entry))?;
    history(store, now, &e.target, &e.username, "reclaimed", reason);
    Ok(())
}

impl Jobs {
    async fn read_seats(&self, conn: &Connector, lc: &LicenseConfig, group: &str) -> Result<Seats, LifecycleError> {
        let all = conn
            .seats(None)
            .await
            .map_err(|f| LifecycleError::Read { target: conn.name().into(), reason: format!("seats: {f}") })?;
        pick_seats(all, conn.product(), lc.application_role.as_deref(), group).ok_or_else(|| {
            LifecycleError::Invalid(format!(
                "{} reports no seat count for {group:?}; set [license] application_role (e.g. \"jira-software\")",
                conn.name()
            ))
        })
    }

    /// One optimizer run. Dry run computes and reports (this is also `license report`); apply
    /// enqueues the removals and grants and records them.
    ///
    /// # Errors
    /// When `[license]` is incomplete, the target cannot be read, or the store fails.
    pub async fn license_optimize(&self, mode: Mode, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let lc = &self.config.lifecycle.license;
        let n = names(lc)?;
        let policy = &self.config.policy;
        let conn = self.connector(n.target)?;
        let mut report = Report::new("license", mode, now);
        if mode == Mode::Apply {
            // Reclaims whose grace period ended are acted on (or kept) first.
            let sweep = self.clone().with_operator(self.operator().next_run());
            if let Some(r) = sweep.grace_sweep(now).await? {
                report.details = json!({"grace_report": r.id});
            }
        }
        let seats = self.read_seats(conn, lc, n.license).await?;
        self.store.license_seats_put(n.target, &seats_json(&seats, lc.keep_free_seats, now))?;
        let view =
            TargetView::read(conn, policy, &[n.license.to_string()], &[n.access.to_string(), n.license.to_string()])
                .await?;
        let holders = view.members(n.license).cloned().unwrap_or_default();
        let eligible = view.members(n.access).cloned().unwrap_or_default();
        let reclaimed = self.store.license_entries(RECLAIMED, n.target)?;
        let mut wanted: Vec<ActivityRecord> = Vec::new();
        let want = |u: &str| {
            holders.contains(u)
                || reclaimed.iter().any(|r| r["username"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(u)))
        };
        super::activity::refresh_target(&self.store, conn, now, |acc| {
            if want(&acc.username.to_lowercase()) {
                wanted.push(acc.clone());
            }
        })
        .await?;
        let prov = context::provisioned(&self.store, policy)?;
        let mut summary =
            TargetSummary { target: n.target.to_string(), accounts: holders.len() as u64, ..TargetSummary::default() };
        let mut removals: Vec<(Finding, Option<&Provisioned>)> = Vec::new();
        let mut inactive_holders = 0u64;
        for acc in wanted.iter().filter(|a| holders.contains(&a.username.to_lowercase())) {
            // A deactivated account holds no seat (the products count active users only), so it
            // is neither an inactive holder nor a seat to free.
            if !acc.active {
                *summary.skipped.entry("deactivated (holds no seat)".into()).or_insert(0) += 1;
                continue;
            }
            let p = prov.get(&acc.username.to_lowercase());
            let groups = view.groups_of(&acc.username, acc.groups.as_deref());
            if view.is_admin(&groups) || context::is_protected(policy, &acc.username, &groups, p) {
                *summary.skipped.entry("admin or protected".into()).or_insert(0) += 1;
                continue;
            }
            let days = inactivity(acc, p.and_then(|p| p.created_ms), now);
            let reason = if !eligible.contains(&acc.username.to_lowercase()) {
                format!("holds {} but is not in {}", n.license, n.access)
            } else if let Some((d, never)) = days.filter(|(d, _)| *d >= lc.inactive_days) {
                inactive_holders += 1;
                if never {
                    format!("never logged in; {d} days since creation (threshold {})", lc.inactive_days)
                } else {
                    format!("no activity for {d} days (threshold {})", lc.inactive_days)
                }
            } else {
                continue;
            };
            let f = finding(n.target, acc, groups, p, "remove_license".into(), reason, days.map(|(d, _)| d));
            removals.push((f, p));
        }
        removals
            .sort_by(|a, b| b.0.inactive_days.cmp(&a.0.inactive_days).then_with(|| a.0.username.cmp(&b.0.username)));
        if mode == Mode::Apply {
            // Before anything is recorded: the brake refuses the whole run up front.
            let reclaims: Vec<_> = removals
                .iter()
                .map(|(f, p)| {
                    let action = IntentAction::RemoveLicense { groups: vec![n.license.into()] };
                    intent(n.target, &f.username, *p, action, Trigger::LicenseReclaim, policy)
                })
                .collect();
            self.check_guard(&reclaims, now)?;
        }

        // Grants: the queue first (oldest first), then reclaimed users whose activity resumed.
        let mut queue = self.store.license_entries(QUEUE, n.target)?;
        queue.sort_by_key(|q| q["queued_ms"].as_i64().unwrap_or(0));
        let mut grants: Vec<(String, String)> = Vec::new();
        for q in &queue {
            if let Some(u) = q["username"].as_str() {
                grants.push((u.to_string(), "queued for a licence".into()));
            }
        }
        for r in &reclaimed {
            let Some(u) = r["username"].as_str() else { continue };
            let at = r["reclaimed_ms"].as_i64().unwrap_or(i64::MAX);
            let resumed =
                wanted.iter().any(|a| a.username.eq_ignore_ascii_case(u) && a.last_active_ms.is_some_and(|t| t > at));
            if resumed && !grants.iter().any(|(g, _)| g.eq_ignore_ascii_case(u)) {
                grants.push((u.to_string(), "activity resumed after the licence was reclaimed".into()));
            }
        }
        grants.retain(|(u, _)| !holders.contains(&u.to_lowercase()));
        let mut room = grantable(seats.total, seats.used, lc.keep_free_seats);
        let mut intents = Vec::new();
        for (u, why) in grants {
            let p = prov.get(&u.to_lowercase());
            let acc = wanted
                .iter()
                .find(|a| a.username.eq_ignore_ascii_case(&u))
                .cloned()
                .unwrap_or_else(|| ActivityRecord::placeholder(&u, now.timestamp_millis()));
            let granted = room > 0;
            let (action, reason) = if granted {
                room -= 1;
                ("restore_license", why)
            } else {
                ("queued", format!("{why}; no seat beyond keep_free_seats = {} is free", lc.keep_free_seats))
            };
            if mode == Mode::Apply {
                if granted {
                    intents.push((
                        intent(
                            n.target,
                            &u,
                            p,
                            IntentAction::RestoreLicense { groups: vec![n.license.into()] },
                            Trigger::LicenseGrant,
                            policy,
                        ),
                        reason.clone(),
                    ));
                    self.store.license_set(RECLAIMED, n.target, &u, None)?;
                    self.store.license_set(QUEUE, n.target, &u, None)?;
                    history(&self.store, now, n.target, &u, "granted", "optimizer run");
                } else if self.store.license_entry(QUEUE, n.target, &u)?.is_none() {
                    let e = json!({"username": u, "queued_at": rfc3339(now), "queued_ms": now.timestamp_millis(), "why": "optimizer run"});
                    self.store.license_set(QUEUE, n.target, &u, Some(&e))?;
                }
            }
            report.findings.push(finding(n.target, &acc, Vec::new(), p, action.into(), reason, None));
        }
        // Warn first (issue 12 §3): the removals wait out the grace period instead.
        if lc.warn_days > 0 && !removals.is_empty() {
            let mut found: Vec<Finding> = removals.iter().map(|(f, _)| f.clone()).collect();
            let selected = found
                .iter_mut()
                .zip(&removals)
                .map(|(f, (_, p))| {
                    let action = IntentAction::RemoveLicense { groups: vec![n.license.into()] };
                    let i = intent(n.target, &f.username, *p, action, Trigger::LicenseReclaim, policy);
                    (f, vec![i])
                })
                .collect();
            let warned = self.warn_first("license", mode, lc.warn_days, selected, now)?;
            if mode == Mode::Apply {
                let at = rfc3339(now);
                for f in found.iter().filter(|f| f.warned_at.as_deref() == Some(at.as_str())) {
                    history(&self.store, now, n.target, &f.username, "warned", &f.reason);
                }
            }
            super::grace::count_warned(&mut report, lc.warn_days, warned);
            removals = found.into_iter().map(|f| (f, None)).collect();
        }
        let warning = lc.warn_days > 0;
        let would_free = if warning && mode == Mode::Apply { 0 } else { removals.len() as u64 };
        for (f, p) in removals {
            if mode == Mode::Apply && !warning {
                intents.push((
                    intent(
                        n.target,
                        &f.username,
                        p,
                        IntentAction::RemoveLicense { groups: vec![n.license.into()] },
                        Trigger::LicenseReclaim,
                        policy,
                    ),
                    f.detail.clone(),
                ));
                let e = json!({"username": f.username, "user_id": f.user_id, "reclaimed_at": rfc3339(now), "reclaimed_ms": now.timestamp_millis(), "reason": crate::reason::LICENSE_RECLAIMED, "detail": f.detail});
                self.store.license_set(RECLAIMED, n.target, &f.username, Some(&e))?;
                history(&self.store, now, n.target, &f.username, "reclaimed", &f.detail);
            }
            report.findings.push(f);
        }
        if mode == Mode::Apply {
            report.enqueued = context::enqueue(&self.store, self.operator(), &intents, now)?;
            // The last count, as the IdP signal path sees it: queued removals count as freed and
            // queued grants as used (the next run reads the product again).
            let granted = report.findings.iter().filter(|f| f.action == "restore_license").count() as u64;
            let mut s = seats_json(&seats, lc.keep_free_seats, now);
            s["used"] = json!((seats.used + granted).saturating_sub(would_free));
            self.store.license_seats_put(n.target, &s)?;
        }
        summary.affected = report.findings.len() as u64;
        report.targets.push(summary);
        let mut details = json!({
            "seats": seats_json(&seats, lc.keep_free_seats, now),
            "inactive_holders": inactive_holders,
            "seats_would_be_freed": would_free,
            "queue": self.store.license_entries(QUEUE, n.target)?,
        });
        // The grace sweep's report and the warn-first counts, when there are any.
        if let (Some(d), Value::Object(extra)) = (details.as_object_mut(), report.details.take()) {
            d.extend(extra);
        }
        report.details = details;
        self.finish(report)
    }

    /// `license report`: seats of every target that reports them, the optimizer's dry run
    /// (inactive holders, seats that would be freed, who would be granted) and its history.
    ///
    /// # Errors
    /// A store error; unreadable targets are reported, not fatal.
    pub async fn license_report(&self, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let lc = &self.config.lifecycle.license;
        if self.config.targets.iter().all(|t| t.spec.product == Product::Crowd) {
            // Seats are read from the products; with none to ask, "products: []" would read as a count.
            return Err(LifecycleError::Invalid(
                "the licence report reads seats from a Jira, Confluence or Bitbucket [[target]], and none is \
                 configured (Crowd reports no seat count)"
                    .into(),
            ));
        }
        let mut report = match names(lc) {
            Ok(_) => self.license_optimize(Mode::DryRun, now).await.unwrap_or_else(|e| {
                let mut r = Report::new("license", Mode::DryRun, now);
                r.targets.push(TargetSummary {
                    target: lc.target.clone().unwrap_or_default(),
                    error: Some(e.to_string()),
                    ..TargetSummary::default()
                });
                r
            }),
            Err(_) => Report::new("license", Mode::DryRun, now),
        };
        report.kind = "license-report".into();
        let mut products = Vec::new();
        for t in self.config.targets.iter().filter(|t| t.spec.product != Product::Crowd) {
            let conn = self.connector(&t.spec.name)?;
            match conn.seats(None).await {
                Ok(all) => products.extend(all.iter().map(|s| {
                    json!({"target": t.spec.name, "product": t.spec.product, "detail": s.detail, "total": s.total, "used": s.used, "free": s.free()})
                })),
                Err(f) => {
                    products.push(json!({"target": t.spec.name, "error": f.to_string()}));
                    // Also a failed target of the run, so the CLI exits non-zero (an unread count
                    // is not a report) and the summary says NOT PROCESSED.
                    if !report.targets.iter().any(|s| s.target == t.spec.name && s.error.is_some()) {
                        report.targets.push(TargetSummary {
                            target: t.spec.name.clone(),
                            error: Some(format!("seats not read: {f}")),
                            ..TargetSummary::default()
                        });
                    }
                }
            }
        }
        let mut details = match report.details.take() {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        details.insert("products".into(), Value::Array(products));
        details.insert("history".into(), Value::Array(self.store.license_history(200)?));
        report.details = Value::Object(details);
        self.finish(report)
    }

    /// `license grant USER` (SCIM userName or Atlassian username): grants at once when a seat
    /// beyond `keep_free_seats` is free by a fresh count, else queues.
    ///
    /// # Errors
    /// When `[license]` is incomplete, the seats cannot be read, or the store fails.
    pub async fn license_grant(&self, user: &str, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let lc = &self.config.lifecycle.license;
        let n = names(lc)?;
        let policy = &self.config.policy;
        let conn = self.connector(n.target)?;
        let prov = context::provisioned(&self.store, policy)?;
        let found = prov.iter().find(|(_, p)| p.user_name.eq_ignore_ascii_case(user)).map(|(k, p)| (k.clone(), p));
        let (username, p) = match found {
            Some((k, p)) => (p.facts.mapped_username.clone().unwrap_or(k), Some(p)),
            None => (user.to_string(), prov.get(&user.to_lowercase())),
        };
        let seats = self.read_seats(conn, lc, n.license).await?;
        let mut report = Report::new("license-grant", Mode::Apply, now);
        let acc = match conn.account(&username).await {
            Ok(Some(a)) => super::activity::record(&a, now.timestamp_millis()),
            Ok(None) => return Err(LifecycleError::Invalid(format!("{} has no user {username:?}", n.target))),
            Err(f) => return Err(LifecycleError::Read { target: n.target.into(), reason: f.to_string() }),
        };
        // Outside the access group the next optimizer run would take the seat back at once.
        let eligible = context::members_or_empty(conn, n.access).await?;
        if !eligible.contains(&username.to_lowercase()) {
            return Err(LifecycleError::Invalid(format!(
                "{username:?} is not in the access group {:?} of {}, so the next optimizer run would take the licence \
                 back; add them to {:?} (in the IdP, or in {}) first",
                n.access, n.target, n.access, n.target
            )));
        }
        // Grants still in the outbox are not in the product's count yet: the larger of the fresh
        // count and the last one (bumped by each grant) is used, so back-to-back grants cannot
        // over-assign.
        let last = self.store.license_seats(n.target)?.and_then(|v| v.get("used").and_then(Value::as_u64)).unwrap_or(0);
        let used = seats.used.max(last);
        let room = grantable(seats.total, used, lc.keep_free_seats);
        if room > 0 {
            let i = intent(
                n.target,
                &username,
                p,
                IntentAction::RestoreLicense { groups: vec![n.license.into()] },
                Trigger::LicenseGrant,
                policy,
            );
            report.enqueued = context::enqueue(&self.store, self.operator(), &[(i, "granted on request".into())], now)?;
            let mut s = seats_json(&seats, lc.keep_free_seats, now);
            s["used"] = json!(used + 1);
            self.store.license_seats_put(n.target, &s)?;
            self.store.license_set(RECLAIMED, n.target, &username, None)?;
            self.store.license_set(QUEUE, n.target, &username, None)?;
            history(&self.store, now, n.target, &username, "granted", "license grant request");
            report.findings.push(finding(
                n.target,
                &acc,
                Vec::new(),
                p,
                "restore_license".into(),
                "granted on request".into(),
                None,
            ));
        } else {
            let e = json!({"username": username, "queued_at": rfc3339(now), "queued_ms": now.timestamp_millis(), "why": "license grant request"});
            self.store.license_set(QUEUE, n.target, &username, Some(&e))?;
            history(&self.store, now, n.target, &username, "queued", "license grant request while no seat was free");
            let why = format!("no seat beyond keep_free_seats = {} is free; queued", lc.keep_free_seats);
            report.findings.push(finding(n.target, &acc, Vec::new(), p, "queued".into(), why, None));
        }
        report.details = json!({"seats": seats_json(&seats, lc.keep_free_seats, now)});
        self.finish(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(detail: &str, total: Option<u64>, used: u64) -> Seats {
        Seats { total, used, detail: detail.into() }
    }

    #[test]
    fn the_jira_role_is_the_configured_one_or_the_longest_prefix_of_the_group() {
        let all = || vec![s("jira-core", Some(5), 1), s("jira-software", Some(10), 3), s("jira-servicedesk", None, 0)];
        assert_eq!(
            pick_seats(all(), Product::Jira, None, "jira-software-users").map(|s| s.detail),
            Some("jira-software".into())
        );
        assert_eq!(
            pick_seats(all(), Product::Jira, Some("jira-core"), "x").map(|s| s.detail),
            Some("jira-core".into())
        );
        assert_eq!(pick_seats(all(), Product::Jira, None, "developers"), None);
        assert_eq!(
            pick_seats(vec![s("confluence", Some(3), 1)], Product::Confluence, None, "x").map(|s| s.used),
            Some(1)
        );
    }

    #[test]
    fn grants_never_use_the_seats_kept_free() {
        assert_eq!(grantable(Some(10), 4, 5), 1);
        assert_eq!(grantable(Some(10), 5, 5), 0);
        assert_eq!(grantable(Some(10), 12, 0), 0);
        assert_eq!(grantable(None, 1000, 5), u64::MAX);
    }
}
