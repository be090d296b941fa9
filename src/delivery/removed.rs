//! The groups a run's action took from an account, recorded so `scimbridge undo` can put back
//! exactly those (issue 12 §5). Before the first attempt of a run's intent that can remove groups
//! (licence reclaim, Bitbucket's `RemoveLicense`, a group removal, and a deactivation whose refusal
//! falls back to removing access groups, `atlassian/fallback.rs`), the worker reads the account's
//! groups from the target and stores them in the outbox entry (`groups_before`) before making any
//! call; the delivery record then names `groups_removed`. A crash after the change and before its
//! record repeats the attempt, which finds the groups already gone: the stored snapshot still says
//! what was there. IdP changes (`scim-SEQ` runs) are not snapshot: they are never undone, and the
//! extra read would slow every offboarding.

use crate::atlassian::{Connector, Failure, Fallback};
use crate::policy::{contains_ci, Intent, IntentAction};
use crate::store::{OutboxEntry, StoreResult};

use super::worker::Deliverer;

/// Whether the intent comes from a run an operator can undo (a lifecycle run, an approved batch,
/// an operator action), not from an IdP change.
fn from_operator_run(entry: &OutboxEntry) -> bool {
    entry.operator.as_ref().is_some_and(|op| !op.run_id.starts_with("scim-"))
}

/// Whether delivery snapshots the account's groups before this intent: a run's intent whose
/// action can remove groups.
pub(super) fn snapshots(intent: &Intent, entry: &OutboxEntry) -> bool {
    let removes = match &intent.action {
        IntentAction::RemoveLicense { groups } => !groups.is_empty(),
        IntentAction::RemoveFromGroup { .. } | IntentAction::Deactivate => true,
        _ => false,
    };
    removes && !intent.dry_run && !intent.username.is_empty() && from_operator_run(entry)
}

/// The groups of `before` that the action removed, in the action's order and `before`'s spelling: for a
/// licence removal the licence groups the account held, for a group removal that group, for a
/// deactivation the access groups its fallback removed (or found already gone after a crash),
/// minus any it was refused.
pub(super) fn removed(action: &IntentAction, before: &[String], fallbacks: &[Fallback]) -> Vec<String> {
    let taken: Vec<String> = match action {
        IntentAction::RemoveLicense { groups } => groups.clone(),
        IntentAction::RemoveFromGroup { group } => vec![group.clone()],
        IntentAction::Deactivate => {
            let mut g: Vec<String> = Vec::new();
            for f in fallbacks {
                g.extend(f.groups_removed.iter().cloned());
                g.extend(
                    f.access_groups
                        .iter()
                        .filter(|a| !f.groups_refused.iter().any(|r| r.group.eq_ignore_ascii_case(a)))
                        .cloned(),
                );
            }
            g
        }
        _ => Vec::new(),
    };
    // In the action's order, in the target's spelling, once each.
    let mut out: Vec<String> = Vec::new();
    for t in &taken {
        if let Some(g) = before.iter().find(|b| b.eq_ignore_ascii_case(t)) {
            if !contains_ci(&out, g) {
                out.push(g.clone());
            }
        }
    }
    out
}

impl Deliverer {
    /// Reads and stores the account's groups before the first attempt of a run's intent that can
    /// remove groups (see the module header); `Ok(Err(..))` when the read failed, so the attempt
    /// is retried like a failed call rather than changing groups nobody recorded.
    pub(super) async fn snapshot_groups(
        &self,
        conn: &Connector,
        seq: u64,
        entry: &mut OutboxEntry,
        intent: &Intent,
    ) -> StoreResult<Result<(), Failure>> {
        if entry.groups_before.is_some() || !snapshots(intent, entry) {
            return Ok(Ok(()));
        }
        match conn.groups_of(&intent.username).await {
            Ok(groups) => {
                entry.groups_before = Some(groups);
                // Durable before any change is made.
                self.store.outbox_update(seq, entry)?;
                Ok(Ok(()))
            }
            Err(f) => Ok(Err(Failure::Retryable {
                reason: format!("reading the groups of {} before changing them: {f}", intent.username),
                retry_after: None,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlassian::GroupRefused;
    use crate::policy::Trigger;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_licence_removal_took_only_the_licence_groups_the_account_held() {
        let action = IntentAction::RemoveLicense { groups: s(&["stash-users", "BITBUCKET-USERS"]) };
        assert_eq!(removed(&action, &s(&["bitbucket-users", "devs"]), &[]), s(&["bitbucket-users"]));
    }

    #[test]
    fn a_fallback_took_its_access_groups_except_the_refused_ones() {
        let f = Fallback {
            access_groups: s(&["jira-users", "ldap-users"]),
            groups_removed: Vec::new(),
            groups_refused: vec![GroupRefused { group: "ldap-users".into(), reason: "read-only".into() }],
            ..Fallback::default()
        };
        let before = s(&["jira-users", "ldap-users", "team"]);
        assert_eq!(removed(&IntentAction::Deactivate, &before, &[f]), s(&["jira-users"]));
        assert!(removed(&IntentAction::Deactivate, &before, &[]).is_empty(), "a plain deactivation removes no group");
    }

    #[test]
    fn only_operator_runs_are_snapshot() {
        let intent = Intent {
            target: "bb".into(),
            user_id: "u".into(),
            username: "al".into(),
            action: IntentAction::RemoveLicense { groups: s(&["stash-users"]) },
            trigger: Trigger::Bulk,
            dry_run: false,
        };
        let v = serde_json::to_value(&intent).expect("intent");
        let run = crate::store::Operator { actor: "cli:al".into(), run_id: "r1".into() };
        let scim = crate::store::Operator { actor: "entra".into(), run_id: "scim-7".into() };
        assert!(snapshots(&intent, &OutboxEntry::new(v.clone(), "t", 0).with_operator(&run)));
        assert!(!snapshots(&intent, &OutboxEntry::new(v.clone(), "t", 0).with_operator(&scim)));
        let none = Intent { action: IntentAction::RemoveLicense { groups: vec![] }, ..intent };
        assert!(!snapshots(&none, &OutboxEntry::new(v, "t", 0).with_operator(&run)));
    }
}
