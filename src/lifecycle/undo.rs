//! `scimbridge undo RUN_ID` (issue 12 §5): puts back what one run took. The run's delivery records
//! (the audit log's `run:` index) say what it changed: accounts it deactivated (effect `applied`),
//! and the groups its actions removed (`groups_removed`, recorded before the change by
//! `delivery/removed.rs`; a refusal fallback's `groups_removed` for older records). The undo
//! reactivates those accounts and restores exactly those groups, as a run of its own: its own run
//! id and actor, intents through the outbox (trigger `operator`, so the brake sees them like any
//! run's), a `queued` audit record per intent, an `undo` operator record, and a report.
//!
//! It leaves alone, and reports why: accounts the IdP has since disabled, deleted or taken access
//! from (an IdP decision wins over an operator's undo), accounts changed again by a later run
//! (undo that run instead), accounts the run deleted or anonymized (gone for good), and groups an
//! older release removed without recording which. Undoing an undo is refused: the undo only gave
//! access back, and taking it away again is a decision for a new run (bulk deactivate).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::context::{self, Provisioned};
use super::report::{Finding, Mode, Report, TargetSummary};
use super::{Jobs, LifecycleError};
use crate::policy::{self, contains_ci, Intent, IntentAction, Trigger};

/// The report kind of an undo, and the operator record's action.
pub const UNDO: &str = "undo";

/// What one run did to one account on one target, from its delivery records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub target: String,
    pub username: String,
    /// The delivery lane (SCIM id, or `atlassian:NAME` for accounts the IdP never provisioned).
    pub user_id: String,
    /// The run deactivated the account (the target changed).
    pub deactivated: bool,
    /// Groups the run removed, first spelling kept, in removal order.
    pub groups: Vec<String>,
    /// `delete` or `anonymize` when the run did that: the account cannot come back.
    pub gone: Option<String>,
    /// Groups were removed but not recorded (a delivery older than the record), so unknown.
    pub groups_unknown: bool,
}

fn push_ci(list: &mut Vec<String>, g: &str) {
    if !contains_ci(list, g) {
        list.push(g.to_string());
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// What the run with these records (oldest first) changed, per (target, account), in the order it
/// first touched them. Only finished deliveries count: `delivered`, and `dead` letters, whose
/// attempt may have removed groups before the product refused the rest.
pub fn taken(records: &[Value]) -> Vec<Taken> {
    let mut out: Vec<Taken> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for r in records.iter().filter(|r| r["type"] == "delivery") {
        let outcome = r["outcome"].as_str().unwrap_or_default();
        if !matches!(outcome, "delivered" | "dead") {
            continue;
        }
        let (target, username) = (r["target"].as_str().unwrap_or_default(), r["username"].as_str().unwrap_or_default());
        if target.is_empty() || username.is_empty() {
            continue;
        }
        let kind = r["action"]["type"].as_str().unwrap_or_default();
        let effect = r["effect"].as_str().unwrap_or_default();
        let changed = outcome == "delivered" && matches!(effect, "applied" | "access_removed_by_groups");
        let recorded = r.get("groups_removed").map(strings);
        let fallback: Vec<String> =
            r["fallback"].as_array().into_iter().flatten().flat_map(|f| strings(&f["groups_removed"])).collect();
        let key = (target.to_string(), username.to_lowercase());
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Taken {
                target: target.to_string(),
                username: username.to_string(),
                user_id: r["user_id"].as_str().unwrap_or_default().to_string(),
                ..Taken::default()
            });
            out.len() - 1
        });
        let t = &mut out[i];
        match kind {
            "deactivate" => {
                t.deactivated |= changed && effect == "applied";
                for g in recorded.unwrap_or(fallback) {
                    push_ci(&mut t.groups, &g);
                }
            }
            "remove_license" | "remove_from_group" => match recorded {
                Some(groups) => groups.iter().for_each(|g| push_ci(&mut t.groups, g)),
                None if kind == "remove_from_group" && changed => {
                    push_ci(&mut t.groups, r["action"]["group"].as_str().unwrap_or_default())
                }
                None => t.groups_unknown |= changed,
            },
            "delete" | "anonymize" if changed => t.gone = Some(kind.to_string()),
            _ => {}
        }
    }
    out.retain(|t| t.deactivated || !t.groups.is_empty() || t.gone.is_some() || t.groups_unknown);
    out
}

/// Why an account is left as it is, or `None` when it may be restored. `prov` is the IdP's user
/// of the account's lane (`None` for an account the IdP never provisioned); `later` is the
/// account's history after the run (oldest first).
pub fn left_alone(
    t: &Taken,
    provisioned: bool,
    prov: Option<&Provisioned>,
    policy: &policy::Policy,
    later: &[Value],
) -> Option<String> {
    if let Some(how) = &t.gone {
        let done = if how == "anonymize" { "anonymized" } else { "deleted" };
        return Some(format!("cannot be restored: the run {done} the account"));
    }
    if provisioned {
        match prov {
            None => return Some("skipped: the IdP has deleted this user since".into()),
            Some(p) if !p.facts.active => return Some("skipped: the IdP has disabled this user".into()),
            Some(p) if !policy::has_access(&p.facts, policy) => {
                return Some("skipped: the IdP no longer grants this user access (access_groups)".into())
            }
            Some(_) => {}
        }
    }
    let again = later.iter().find(|r| {
        r["type"] == "delivery"
            && r["target"] == t.target.as_str()
            && r["outcome"] == "delivered"
            && matches!(r["effect"].as_str(), Some("applied" | "access_removed_by_groups"))
            && matches!(
                r["action"]["type"].as_str(),
                Some("deactivate" | "remove_license" | "remove_from_group" | "delete" | "anonymize")
            )
    });
    if let Some(r) = again {
        let kind = r["action"]["type"].as_str().unwrap_or_default();
        return Some(match r["run_id"].as_str().filter(|id| !id.starts_with("scim-")) {
            Some(by) => format!("skipped: changed again since ({kind} by run {by}); undo that run instead"),
            None => format!("skipped: changed again since ({kind} by an IdP change)"),
        });
    }
    if t.groups_unknown && !t.deactivated && t.groups.is_empty() {
        return Some(
            "cannot be restored: the groups were removed by a release that did not record which; add them by hand"
                .into(),
        );
    }
    None
}

/// The intents that give back what the run took (Bitbucket's deactivation is its licence groups).
pub fn restoring(t: &Taken) -> Vec<IntentAction> {
    let mut out = Vec::new();
    if t.deactivated {
        out.push(IntentAction::Reactivate);
    }
    if !t.groups.is_empty() {
        out.push(IntentAction::RestoreLicense { groups: t.groups.clone() });
    }
    out
}

impl Jobs {
    /// Undoes run `run_id` (see the module header).
    ///
    /// # Errors
    /// [`LifecycleError::UnknownRun`] when no record or report names the run, `Invalid` for an
    /// undo of an undo, or a store error.
    pub async fn undo(&self, run_id: &str, mode: Mode, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let run_id = run_id.trim();
        let records = self.store.audit_of_run(run_id)?;
        let stored = self.store.report_of_run(run_id)?;
        if records.is_none() && stored.is_none() {
            return Err(LifecycleError::UnknownRun(format!(
                "no run {run_id:?} is on record (scimbridge audit --run RUN_ID shows a run; run ids are in each \
                 report and in the CLI's output)"
            )));
        }
        let records = records.unwrap_or_default();
        let kind = stored.as_ref().and_then(|r| r["kind"].as_str()).unwrap_or("").to_string();
        // The undo record is indexed under both runs (`audit --run` of the undone run shows it):
        // this run's own is an undo, another's is an earlier undo of this run.
        let is_undo = |r: &&Value| r["type"] == "operator" && r["action"] == UNDO;
        let undone = records.iter().filter(is_undo).find(|r| r["run_id"] == run_id);
        let earlier: Vec<&str> = records
            .iter()
            .filter(is_undo)
            .filter(|r| r["run_id"] != run_id)
            .filter_map(|r| r["run_id"].as_str())
            .collect();
        if kind == UNDO || undone.is_some() {
            let of = undone.and_then(|r| r["undo_of"].as_str()).unwrap_or("another run");
            return Err(LifecycleError::Invalid(format!(
                "run {run_id} is itself an undo (of {of}); an undo is not undone: it only gave access back, so \
                 take it away again with a new run (scimbridge deactivate …)"
            )));
        }
        let mut report = Report::new(UNDO, mode, now);
        let policy = &self.config.policy;
        let prov = context::provisioned(&self.store, policy)?;
        let by_id: HashMap<&str, &Provisioned> = prov.values().map(|p| (p.id.as_str(), p)).collect();
        let taken = taken(&records);
        // Jobs of the run still waiting: the undo cannot give back what has not been taken yet.
        let pending: Vec<Value> = self
            .store
            .jobs()?
            .into_iter()
            .filter(|j| j.entry.operator.as_ref().is_some_and(|o| o.run_id == run_id))
            .map(|j| json!({"job": j.seq, "state": j.state, "target": j.entry.target(), "username": j.entry.intent.get("username")}))
            .collect();
        let mut summaries: BTreeMap<String, TargetSummary> = BTreeMap::new();
        let mut intents: Vec<(Intent, String)> = Vec::new();
        let mut not_restored = Vec::new();
        let what = if kind.is_empty() { String::new() } else { format!(" ({kind})") };
        for t in &taken {
            let s = summaries
                .entry(t.target.clone())
                .or_insert_with(|| TargetSummary { target: t.target.clone(), ..TargetSummary::default() });
            s.accounts += 1;
            let provisioned = !t.user_id.starts_with("atlassian:");
            let history = self.store.audit_of_account(&t.username)?;
            // The account's records after the run's last one.
            let last = history.iter().rposition(|r| r["run_id"] == run_id).map_or(history.len(), |i| i + 1);
            let later = history.get(last..).unwrap_or_default();
            let finding = Finding {
                target: t.target.clone(),
                username: t.username.clone(),
                user_id: provisioned.then(|| t.user_id.clone()),
                groups: t.groups.clone(),
                ..Finding::default()
            };
            if let Some(why) = left_alone(t, provisioned, by_id.get(t.user_id.as_str()).copied(), policy, later) {
                // Counted by the reason without its particulars ("… (deactivate by run R)").
                let key = why.split(" (").next().unwrap_or_default().to_string();
                *s.skipped.entry(key).or_insert(0) += 1;
                not_restored.push(json!({"target": t.target, "username": t.username, "reason": why}));
                report.findings.push(Finding { action: "none".into(), reason: why, ..finding });
                continue;
            }
            let plan = restoring(t);
            let mut reason = vec![];
            if t.deactivated {
                reason.push("deactivated".to_string());
            }
            if !t.groups.is_empty() {
                reason.push(format!("removed from {}", t.groups.join(", ")));
            }
            let reason = format!("undo of run {run_id}{what}: {}", reason.join(" and "));
            for a in &plan {
                let intent = Intent {
                    target: t.target.clone(),
                    user_id: t.user_id.clone(),
                    username: t.username.clone(),
                    action: a.clone(),
                    trigger: Trigger::Operator,
                    dry_run: policy.dry_run,
                };
                intents.push((intent, reason.clone()));
            }
            s.affected += 1;
            let action = plan.iter().map(context::action_name).collect::<Vec<_>>().join("+");
            report.findings.push(Finding { action, reason, ..finding });
        }
        report.targets = summaries.into_values().collect();
        report.details = json!({
            "undo_of": run_id,
            "run_kind": (!kind.is_empty()).then_some(kind.as_str()),
            "not_restored": not_restored,
            "not_yet_delivered": pending,
            "nothing_to_undo": taken.is_empty(),
            // Undoing again is safe (every restoration is idempotent) but worth knowing.
            "earlier_undos": earlier,
        });
        if taken.is_empty() {
            tracing::info!(run_id, "Undo: the run changed no account, so there is nothing to undo.");
        }
        if report.mode == Mode::Apply {
            report.enqueued = context::enqueue(&self.store, self.operator(), &intents, now)?;
            if !intents.is_empty() {
                let details = json!({"undo_of": run_id, "run_kind": kind, "enqueued": report.enqueued,
                    "restored": report.findings.iter().filter(|f| f.action != "none").count(),
                    "not_restored": report.details["not_restored"].clone()});
                self.store.audit_operator(
                    self.operator(),
                    &format!("run:{run_id}"),
                    UNDO,
                    details,
                    &super::report::rfc3339(now),
                )?;
            }
        }
        self.finish(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, outcome: &str, effect: &str, extra: Value) -> Value {
        let mut r = json!({"type": "delivery", "target": "bb", "username": "Ann", "user_id": "u1",
            "action": {"type": kind, "group": "g"}, "outcome": outcome, "effect": effect, "run_id": "r1"});
        if let (Some(o), Value::Object(e)) = (r.as_object_mut(), extra) {
            o.extend(e);
        }
        r
    }

    #[test]
    fn a_run_took_what_its_finished_deliveries_changed() {
        let records = vec![
            rec("remove_license", "delivered", "applied", json!({"groups_removed": ["bitbucket-users"]})),
            rec("deactivate", "retry", "", json!({"groups_removed": ["x"]})),
            json!({"type": "delivery", "target": "jira", "username": "bo", "user_id": "u2",
                   "action": {"type": "deactivate"}, "outcome": "delivered", "effect": "applied", "groups_removed": []}),
            json!({"type": "delivery", "target": "jira", "username": "cy", "user_id": "u3",
                   "action": {"type": "deactivate"}, "outcome": "delivered", "effect": "already_done"}),
            json!({"type": "delivery", "target": "jira", "username": "di", "user_id": "u4",
                   "action": {"type": "deactivate"}, "outcome": "delivered", "effect": "access_removed_by_groups",
                   "fallback": [{"groups_removed": ["jira-users"]}]}),
            json!({"type": "delivery", "target": "jira", "username": "ed", "user_id": "u5",
                   "action": {"type": "delete"}, "outcome": "delivered", "effect": "applied"}),
        ];
        let t = taken(&records);
        let names: Vec<(&str, bool, Vec<String>, Option<String>)> =
            t.iter().map(|t| (t.username.as_str(), t.deactivated, t.groups.clone(), t.gone.clone())).collect();
        assert_eq!(
            names,
            vec![
                ("Ann", false, vec!["bitbucket-users".to_string()], None),
                ("bo", true, vec![], None),
                ("di", false, vec!["jira-users".to_string()], None),
                ("ed", false, vec![], Some("delete".to_string())),
            ],
            "already-done and unfinished attempts took nothing"
        );
        assert_eq!(restoring(&t[0]), vec![IntentAction::RestoreLicense { groups: vec!["bitbucket-users".into()] }]);
        assert_eq!(restoring(&t[1]), vec![IntentAction::Reactivate]);
    }

    #[test]
    fn the_idp_and_later_runs_win_over_an_undo() {
        let policy = policy::Policy::default();
        let t = Taken {
            target: "jira".into(),
            username: "bo".into(),
            user_id: "u2".into(),
            deactivated: true,
            ..Taken::default()
        };
        let mut p = Provisioned {
            id: "u2".into(),
            user_name: "bo".into(),
            facts: policy::UserFacts { id: "u2".into(), active: false, ..Default::default() },
            created_ms: None,
        };
        assert!(left_alone(&t, true, None, &policy, &[]).is_some_and(|w| w.contains("deleted")));
        assert!(left_alone(&t, true, Some(&p), &policy, &[]).is_some_and(|w| w.contains("disabled")));
        p.facts.active = true;
        assert_eq!(left_alone(&t, true, Some(&p), &policy, &[]), None);
        let later = [json!({"type": "delivery", "target": "jira", "outcome": "delivered", "effect": "applied",
                            "action": {"type": "deactivate"}, "run_id": "r2"})];
        assert!(left_alone(&t, true, Some(&p), &policy, &later).is_some_and(|w| w.contains("r2")));
        let other_target = [json!({"type": "delivery", "target": "wiki", "outcome": "delivered", "effect": "applied",
                                   "action": {"type": "deactivate"}, "run_id": "r2"})];
        assert_eq!(left_alone(&t, true, Some(&p), &policy, &other_target), None);
        let gone = Taken { gone: Some("anonymize".into()), ..t };
        assert!(left_alone(&gone, false, None, &policy, &[]).is_some_and(|w| w.contains("anonymized")));
    }
}
