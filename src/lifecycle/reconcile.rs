//! Drift reconciliation (`scimbridge reconcile`, `POST /admin/reconcile`, `[reconcile]`). Once the
//! IdP's change is answered it is never sent again, so scimbridge holds the desired state: who
//! must be inactive (SCIM `active = false`, or without access under `access_groups`), who must
//! be in which synced group (SCIM group membership), and who must exist. Each target's listing
//! and synced-group members are compared with it; every difference is a finding with its reason,
//! and `--apply` enqueues the repair the policy would have produced.
//!
//! Findings: an offboarded user enabled in the target (re-enabled by hand), a member of a synced
//! group the IdP does not have there (added outside the IdP), a synced member missing from the
//! group, and a user the IdP still has whose account the target lost. Accounts deactivated by
//! cleanup or the licence optimizer are not drift. Users deleted in the IdP are no longer in the
//! store, so their accounts are not checked here (cleanup covers accounts the IdP does not know).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::cleanup::finding;
use super::context::{self, action_name, intent, Provisioned, TargetView};
use super::report::{Finding, Mode, Report, TargetSummary};
use super::{Jobs, LifecycleError};
use crate::atlassian::Product;
use crate::policy::{self, contains_ci, Intent, IntentAction, Policy, Trigger};
use crate::store::ActivityRecord;

/// A synced group: its IdP spelling and members (Atlassian username, has access).
type Synced = BTreeMap<String, (String, Vec<(String, bool)>)>;

fn synced_groups(prov: &HashMap<String, Provisioned>, policy: &Policy) -> Synced {
    let mut out: Synced = BTreeMap::new();
    if !policy.sync_groups {
        return out;
    }
    for (username, p) in prov {
        for g in p.facts.groups.iter().filter(|g| !contains_ci(&policy.protected_groups, g)) {
            let entry = out.entry(g.to_lowercase()).or_insert_with(|| (g.clone(), Vec::new()));
            entry.1.push((username.clone(), policy::has_access(&p.facts, policy)));
        }
    }
    out
}

/// The synced groups as one target sees them: IdP names turned into its Atlassian names
/// (`[[group_map]]`, `only_mapped`), members of IdP groups mapping to one Atlassian group merged,
/// and only the groups scimbridge manages there (mapped, or created/adopted by it): an admin's
/// local group of the same name is no drift of ours.
fn synced_in_target(
    groups: &Synced,
    policy: &Policy,
    target: &str,
    store: &crate::store::Store,
) -> Result<Synced, LifecycleError> {
    let mut out: Synced = BTreeMap::new();
    for (display, members) in groups.values() {
        let Some(atlassian) = policy.groups.resolve(display, target) else { continue };
        let managed = policy.groups.is_mapped_atlassian(target, &atlassian)
            || store
                .managed_group(target, &atlassian)?
                .is_some_and(|g| g.origin != crate::store::GroupOrigin::Creating);
        if !managed || contains_ci(&policy.protected_groups, &atlassian) {
            continue;
        }
        let entry = out.entry(atlassian.to_lowercase()).or_insert_with(|| (atlassian.clone(), Vec::new()));
        for m in members {
            match entry.1.iter_mut().find(|(u, _)| *u == m.0) {
                Some(existing) => existing.1 |= m.1,
                None => entry.1.push(m.clone()),
            }
        }
    }
    Ok(out)
}

fn placeholder(username: &str, p: &Provisioned, now: DateTime<Utc>) -> ActivityRecord {
    ActivityRecord {
        display_name: p.facts.display_name.clone(),
        email: p.facts.email.clone(),
        active: false,
        ..ActivityRecord::placeholder(username, now.timestamp_millis())
    }
}

impl Jobs {
    /// Compares every target with the desired state; dry run reports, apply also repairs.
    ///
    /// # Errors
    /// A store error; a target that cannot be read is recorded in the report and skipped.
    pub async fn reconcile(&self, mode: Mode, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let policy = &self.config.policy;
        let prov = context::provisioned(&self.store, policy)?;
        let idp_groups = synced_groups(&prov, policy);
        let mut report = Report::new("reconcile", mode, now);
        for t in self.targets(None)? {
            let groups = synced_in_target(&idp_groups, policy, &t.spec.name, &self.store)?;
            let group_names: Vec<String> = groups.values().map(|(n, _)| n.clone()).collect();
            // Reconciling compares state, not activity: a target where nobody has logged in yet
            // is a valid listing here (the guard protects cleanup, not this).
            let base = self.connector(&t.spec.name)?;
            let policy_no_guard =
                crate::atlassian::ReadPolicy { require_activity: false, ..base.read_policy().clone() };
            let owned = base.clone().with_read_policy(policy_no_guard);
            let conn = &owned;
            let mut summary = TargetSummary { target: t.spec.name.clone(), ..TargetSummary::default() };
            let view = match TargetView::read(
                conn,
                policy,
                &t.license_groups,
                &[group_names.clone(), t.license_groups.clone()].concat(),
            )
            .await
            {
                Ok(v) => v,
                Err(e) => {
                    summary.error = Some(e.to_string());
                    report.targets.push(summary);
                    continue;
                }
            };
            let mut seen: HashMap<String, ActivityRecord> = HashMap::new();
            let listed = super::activity::refresh_target(&self.store, conn, now, |acc| {
                if prov.contains_key(&acc.username.to_lowercase()) {
                    seen.insert(acc.username.to_lowercase(), acc.clone());
                }
            })
            .await;
            if let Err(e) = listed {
                summary.error = Some(e.to_string());
                report.targets.push(summary);
                continue;
            }
            summary.accounts = seen.len() as u64;
            let mut found: Vec<(Finding, Vec<(Intent, String)>)> = Vec::new();
            let mut push =
                |acc: &ActivityRecord, p: Option<&Provisioned>, actions: Vec<IntentAction>, reason: String| {
                    let label = if actions.is_empty() {
                        "none".to_string()
                    } else {
                        actions.iter().map(action_name).collect::<Vec<_>>().join("+")
                    };
                    let groups = view.groups_of(&acc.username, acc.groups.as_deref());
                    let intents = actions
                        .into_iter()
                        .map(|a| (intent(&view.name, &acc.username, p, a, Trigger::Reconcile, policy), reason.clone()))
                        .collect();
                    let f = finding(&view.name, acc, groups, p, label, reason, None);
                    found.push((f, intents));
                };
            for (username, p) in &prov {
                let access = policy::has_access(&p.facts, policy);
                match seen.get(username) {
                    Some(acc) if !access => {
                        let enabled = if view.product == Product::Bitbucket {
                            view.license_groups.iter().any(|g| view.members(g).is_some_and(|m| m.contains(username)))
                        } else {
                            acc.active
                        };
                        let groups = view.groups_of(&acc.username, acc.groups.as_deref());
                        if enabled
                            && !view.is_admin(&groups)
                            && !context::is_protected(policy, &acc.username, &groups, Some(p))
                        {
                            let (action, why) = if p.facts.active {
                                (policy.on_access_lost, "has no access in the IdP (not in access_groups)")
                            } else {
                                (policy.on_disable, "is disabled in the IdP (active = false)")
                            };
                            let actions = policy::offboard_intents(view.product, action, &view.license_groups);
                            push(
                                acc,
                                Some(p),
                                actions,
                                format!("{why} but enabled in {}: re-enabled outside the IdP", view.name),
                            );
                        }
                    }
                    None if access => {
                        let actions = match (&p.facts.email, policy.create_users) {
                            (Some(email), true) => vec![IntentAction::CreateUser {
                                display_name: p.facts.display_name.clone().unwrap_or_else(|| username.clone()),
                                email: email.clone(),
                            }],
                            _ => Vec::new(),
                        };
                        push(
                            &placeholder(username, p, now),
                            Some(p),
                            actions,
                            format!("the IdP still has this user but {} has no account", view.name),
                        );
                    }
                    _ => {}
                }
            }
            for (display, members) in groups.values() {
                let Some(atl) = view.members(display) else { continue };
                for m in atl.iter().filter(|m| !members.iter().any(|(u, _)| u == *m)) {
                    let acc =
                        seen.get(m).cloned().unwrap_or_else(|| ActivityRecord::placeholder(m, now.timestamp_millis()));
                    let groups = view.groups_of(m, None);
                    if view.is_admin(&groups) || context::is_protected(policy, m, &groups, prov.get(m)) {
                        continue;
                    }
                    let why = format!(
                        "member of synced group {display} in {} but not in the IdP group: added outside the IdP",
                        view.name
                    );
                    push(&acc, prov.get(m), vec![IntentAction::RemoveFromGroup { group: display.clone() }], why);
                }
                for (u, access) in members.iter().filter(|(u, access)| *access && !atl.contains(u)) {
                    let _ = access;
                    let Some(acc) = seen.get(u) else { continue };
                    let why = format!("in the IdP group {display} but not in it in {}", view.name);
                    push(acc, prov.get(u), vec![IntentAction::AddToGroup { group: display.clone() }], why);
                }
            }
            found.sort_by(|a, b| a.0.username.cmp(&b.0.username).then_with(|| a.0.detail.cmp(&b.0.detail)));
            summary.affected = found.len() as u64;
            let mut intents = Vec::new();
            for (f, i) in found {
                report.findings.push(f);
                intents.extend(i);
            }
            if mode == Mode::Apply {
                report.enqueued += context::enqueue(&self.store, self.operator(), &intents, now)?;
            }
            report.targets.push(summary);
        }
        self.finish(report)
    }
}
