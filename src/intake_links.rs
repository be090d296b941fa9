//! The recorded links in the policy's view (issue 9): each target sees a user under the account
//! linked on that target (so protection by username, and every intent, name the right account),
//! and `rename = "follow"` turns an IdP rename into a rename of the linked account where the
//! product can. Read under the store's writer lock by `intake.rs`, like the rest of the facts.

use crate::atlassian::Connector;
use crate::policy::{self, Event, Intent, IntentAction, Policy, RenameMode, TargetPolicy, Trigger, UserFacts};
use crate::store::Store;

fn link_into(store: &Store, target: &str, facts: &mut UserFacts) {
    if let Ok(Some(link)) = store.link(&facts.id, target) {
        facts.mapped_username = Some(link.username);
    }
}

/// `event` with every user's `mapped_username` set to their link on `target`, where one exists.
pub fn event_for_target(store: &Store, event: &Event, target: &str) -> Event {
    let mut e = event.clone();
    let each = |f: &mut UserFacts| link_into(store, target, f);
    match &mut e {
        Event::UserCreated { after } => each(after),
        Event::UserUpdated { before, after } => {
            each(before);
            each(after);
        }
        Event::UserDeleted { before } => each(before),
        Event::MembershipChanged { joined, left, .. } => {
            for (b, a) in joined.iter_mut().chain(left.iter_mut()) {
                each(b);
                each(a);
            }
        }
        Event::GroupRenamed { members, .. } => members.iter_mut().for_each(each),
        Event::GroupDeleted { members, .. } => {
            for (b, a) in members.iter_mut() {
                each(b);
                each(a);
            }
        }
    }
    e
}

/// The rename of the linked account when the IdP renamed the user (derived username changed),
/// `rename = "follow"`, the product can rename, and the account carries the old derived name;
/// nothing otherwise (the link keeps the account).
pub fn rename_intent(store: &Store, event: &Event, policy: &Policy, target: &TargetPolicy) -> Option<Intent> {
    if policy.rename != RenameMode::Follow || !Connector::can_rename(target.product) {
        return None;
    }
    let Event::UserUpdated { before, after } = event else { return None };
    let link = store.link(&after.id, &target.name).ok().flatten()?;
    let unmapped = |f: &UserFacts| UserFacts { mapped_username: None, ..f.clone() };
    let old = policy::username_for(&unmapped(before), policy.username_from)?;
    let new = policy::username_for(&unmapped(after), policy.username_from)?;
    // Only an account that carries the IdP-derived name follows it; one linked under another
    // name (found by email, set by an operator) keeps its own.
    if policy::eq_ci(&old, &new) || !policy::eq_ci(&link.username, &old) {
        return None;
    }
    Some(Intent {
        target: target.name.clone(),
        user_id: after.id.clone(),
        username: link.username,
        action: IntentAction::RenameUser { new_username: new },
        trigger: Trigger::Renamed,
        dry_run: policy.dry_run,
    })
}

/// Every intent of `event`: per target with that target's links, the rename first.
pub fn decide_with_links(store: &Store, event: &Event, policy: &Policy, targets: &[TargetPolicy]) -> Vec<Intent> {
    if !store.has_links() {
        return policy::decide(event, policy, targets);
    }
    let mut out = Vec::new();
    for target in targets {
        let seen = event_for_target(store, event, &target.name);
        out.extend(rename_intent(store, &seen, policy, target));
        out.extend(policy::decide(&seen, policy, std::slice::from_ref(target)));
    }
    out
}
