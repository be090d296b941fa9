//! Reactivation that respects why an account went (issue 12 §2). An account deactivated for
//! inactivity (`inactive`) comes back on ANY IdP signal for the user: a re-assignment, a profile
//! update, a group change. An account the IdP disabled (`idp_disabled`) or that lost access
//! (`access_lost`) comes back only through the policy's own transitions in `decide.rs` (the IdP
//! enables it, access is regained), so nothing here touches them. A reclaimed licence comes back
//! through the licence optimizer's seat count (`lifecycle::on_idp_signal`), not here.
//!
//! Pure: the reasons arrive in [`UserFacts::deactivated`], read by `intake.rs` from the store.

use super::config::{EnableAction, Policy, TargetPolicy};
use super::decide::{has_access, username_for};
#[cfg(test)]
use super::Deactivated;
use super::{product, Event, Intent, IntentAction, Trigger, UserFacts};

/// The reactivations `event` earns on `targets` for users whose account there was deactivated
/// for a reason that returns on any signal. `already` holds the intents decided for the event so
/// far: a target that already gets a create, reactivation or licence restore (or an offboarding,
/// which wins) for the user gets nothing more.
pub fn signal_reactivations(
    event: &Event,
    policy: &Policy,
    targets: &[TargetPolicy],
    already: &[Intent],
) -> Vec<Intent> {
    if policy.on_enable != EnableAction::Reactivate {
        return Vec::new();
    }
    let signalled: Vec<&UserFacts> = match event {
        Event::UserCreated { after } | Event::UserUpdated { after, .. } => vec![after],
        Event::MembershipChanged { joined, left, .. } => joined.iter().chain(left).map(|(_, a)| a).collect(),
        Event::UserDeleted { .. } | Event::GroupRenamed { .. } | Event::GroupDeleted { .. } => Vec::new(),
    };
    let mut out = Vec::new();
    for user in signalled.into_iter().filter(|u| has_access(u, policy)) {
        for target in targets {
            let Some(d) = user.deactivated.iter().find(|d| super::eq_ci(&d.target, &target.name)) else {
                continue;
            };
            if !crate::reason::returns_on_any_signal(&d.reason) || decided_for_account(already, target, &user.id) {
                continue;
            }
            let Some(username) = username_for(user, policy.username_from) else { continue };
            // The way it went, undone: licence groups put back, or the product's reactivation.
            let actions = match (d.by_license_groups, target.license_groups.is_empty()) {
                (true, true) => Vec::new(),
                (true, false) => vec![IntentAction::RestoreLicense { groups: target.license_groups.clone() }],
                (false, _) => product::reactivate(target.product, &target.license_groups),
            };
            for action in actions {
                out.push(Intent {
                    target: target.name.clone(),
                    user_id: user.id.clone(),
                    username: username.clone(),
                    action,
                    trigger: Trigger::IdpSignal,
                    dry_run: policy.dry_run,
                });
            }
        }
    }
    out
}

/// Whether the account of `user_id` on `target` is already decided by an intent of the event.
fn decided_for_account(already: &[Intent], target: &TargetPolicy, user_id: &str) -> bool {
    already.iter().any(|i| {
        i.user_id == user_id
            && i.target == target.name
            && !matches!(
                i.action,
                IntentAction::AddToGroup { .. }
                    | IntentAction::RemoveFromGroup { .. }
                    | IntentAction::UpdateProfile { .. }
                    | IntentAction::RenameUser { .. }
                    | IntentAction::CreateGroup { .. }
                    | IntentAction::DeleteGroup { .. }
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlassian::Product;

    fn user(active: bool, deactivated: &[(&str, &str)]) -> UserFacts {
        UserFacts {
            id: "u1".into(),
            user_name: "erin".into(),
            active,
            deactivated: deactivated
                .iter()
                .map(|(t, r)| Deactivated { target: t.to_string(), reason: r.to_string(), by_license_groups: false })
                .collect(),
            ..UserFacts::default()
        }
    }

    fn targets() -> Vec<TargetPolicy> {
        vec![
            TargetPolicy { name: "jira".into(), product: Product::Jira, license_groups: vec![] },
            TargetPolicy { name: "bb".into(), product: Product::Bitbucket, license_groups: vec!["stash-users".into()] },
        ]
    }

    fn update(u: UserFacts) -> Event {
        Event::UserUpdated { before: u.clone(), after: u }
    }

    #[test]
    fn an_inactivity_deactivation_returns_on_a_profile_update_in_each_product_form() {
        let e = update(user(true, &[("jira", "inactive"), ("bb", "inactive")]));
        let got = signal_reactivations(&e, &Policy::default(), &targets(), &[]);
        let actions: Vec<_> = got.iter().map(|i| (i.target.as_str(), i.action.clone(), i.trigger)).collect();
        assert_eq!(
            actions,
            vec![
                ("jira", IntentAction::Reactivate, Trigger::IdpSignal),
                ("bb", IntentAction::RestoreLicense { groups: vec!["stash-users".into()] }, Trigger::IdpSignal),
            ]
        );
        assert_eq!(got[0].trigger.reason(), "idp_signal");
    }

    #[test]
    fn a_licence_removal_for_inactivity_is_undone_by_restoring_the_licence_groups() {
        let mut u = user(true, &[]);
        u.deactivated = vec![Deactivated { target: "jira".into(), reason: "inactive".into(), by_license_groups: true }];
        let jira =
            vec![TargetPolicy { name: "jira".into(), product: Product::Jira, license_groups: vec!["jsw".into()] }];
        let got = signal_reactivations(&update(u), &Policy::default(), &jira, &[]);
        assert_eq!(
            got.iter().map(|i| i.action.clone()).collect::<Vec<_>>(),
            vec![IntentAction::RestoreLicense { groups: vec!["jsw".into()] }]
        );
    }

    #[test]
    fn an_idp_disabled_or_access_lost_account_does_not_return_on_a_signal() {
        for r in ["idp_disabled", "access_lost", "bulk", "operator", "license_reclaimed"] {
            let e = update(user(true, &[("jira", r)]));
            assert!(signal_reactivations(&e, &Policy::default(), &targets(), &[]).is_empty(), "{r}");
        }
    }

    #[test]
    fn no_return_for_an_inactive_idp_user_without_access_or_with_reactivation_off() {
        let e = update(user(false, &[("jira", "inactive")]));
        assert!(signal_reactivations(&e, &Policy::default(), &targets(), &[]).is_empty());
        let gated = Policy { access_groups: vec!["jira-access".into()], ..Policy::default() };
        assert!(signal_reactivations(&update(user(true, &[("jira", "inactive")])), &gated, &targets(), &[]).is_empty());
        let off = Policy { on_enable: EnableAction::None, ..Policy::default() };
        assert!(signal_reactivations(&update(user(true, &[("jira", "inactive")])), &off, &targets(), &[]).is_empty());
    }

    #[test]
    fn a_group_join_is_a_signal_and_an_account_already_decided_is_left_alone() {
        let u = user(true, &[("jira", "inactive")]);
        let e = Event::MembershipChanged { group: "devs".into(), joined: vec![(u.clone(), u.clone())], left: vec![] };
        assert_eq!(signal_reactivations(&e, &Policy::default(), &targets(), &[]).len(), 1);
        let decided = Intent {
            target: "jira".into(),
            user_id: "u1".into(),
            username: "erin".into(),
            action: IntentAction::Reactivate,
            trigger: Trigger::Enabled,
            dry_run: false,
        };
        assert!(signal_reactivations(&e, &Policy::default(), &targets(), &[decided]).is_empty());
    }
}
