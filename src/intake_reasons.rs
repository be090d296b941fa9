//! Reasons in the policy's view (issue 12 §2): each user an event speaks for gets, per target,
//! the reason their account there was last deactivated while that still holds
//! (`Store::deactivation_in_force`), so the pure policy can bring back an account deactivated for
//! inactivity on any IdP signal (`policy::signal_reactivations`). Read under the store's writer
//! lock by `intake.rs`, like the rest of the facts.

use crate::policy::{self, Deactivated, Event, Intent, Policy, TargetPolicy, UserFacts};
use crate::store::Store;

/// The users of `event` an IdP signal speaks for (mutable, to fill their facts).
fn signalled(event: &mut Event) -> Vec<&mut UserFacts> {
    match event {
        Event::UserCreated { after } | Event::UserUpdated { after, .. } => vec![after],
        Event::MembershipChanged { joined, left, .. } => {
            joined.iter_mut().chain(left.iter_mut()).map(|(_, a)| a).collect()
        }
        Event::UserDeleted { .. } | Event::GroupRenamed { .. } | Event::GroupDeleted { .. } => Vec::new(),
    }
}

/// The reactivations `event` earns (see `policy/comeback.rs`), given the intents already decided
/// for it. Reads one small record per signalled user and target; clones the event only when one
/// of them has a deactivation in force.
pub fn signal_reactivations(
    store: &Store,
    event: &Event,
    policy: &Policy,
    targets: &[TargetPolicy],
    already: &[Intent],
) -> Vec<Intent> {
    let mut out = Vec::new();
    for target in targets {
        let mut found: Vec<(String, Deactivated)> = Vec::new();
        let mut probe = |user: &UserFacts| match store.deactivation_in_force(&target.name, &user.id) {
            Ok(Some(d)) => found.push((
                user.id.clone(),
                Deactivated {
                    target: target.name.clone(),
                    reason: d.reason,
                    by_license_groups: d.action == "remove_license",
                },
            )),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Reading why an account was deactivated failed; no reactivation on this signal.")
            }
        };
        match event {
            Event::UserCreated { after } | Event::UserUpdated { after, .. } => probe(after),
            Event::MembershipChanged { joined, left, .. } => joined.iter().chain(left).for_each(|(_, a)| probe(a)),
            Event::UserDeleted { .. } | Event::GroupRenamed { .. } | Event::GroupDeleted { .. } => {}
        }
        if found.is_empty() {
            continue;
        }
        let mut seen = event.clone();
        for user in signalled(&mut seen) {
            if let Some((_, d)) = found.iter().find(|(id, _)| *id == user.id) {
                user.deactivated = vec![d.clone()];
            }
        }
        // The target's own view of the user (a recorded link names the account there).
        if store.has_links() {
            seen = crate::intake_links::event_for_target(store, &seen, &target.name);
        }
        out.extend(policy::signal_reactivations(&seen, policy, std::slice::from_ref(target), already));
    }
    for i in &out {
        tracing::info!(target_name = %i.target, username = %crate::redact::Pii(&i.username), "An IdP signal brings back an account deactivated for inactivity.");
    }
    out
}
