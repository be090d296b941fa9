//! Intake: from one stored SCIM change to the policy's intents. It reads what the pure policy
//! needs (the user's groups, the group's name, the recorded Atlassian username) from the store
//! under the writer lock, calls `policy::decide`, and hands the intents back to the store, which
//! writes them to the outbox in the change's own transaction.

use serde_json::Value;

use crate::policy::{self, Event, GroupEvent, Intent, IntentAction, Policy, TargetPolicy, UserFacts};
use crate::store::{Change, ChangeHook, ChangeOp, Kind, Planned, Record, Store};

/// The policy as a store hook.
pub struct PolicyHook {
    pub policy: Policy,
    pub targets: Vec<TargetPolicy>,
    /// `[license]`: any IdP signal for a user whose licence was reclaimed gives it back
    /// (`lifecycle::on_idp_signal`).
    pub license: Option<crate::lifecycle::LicenseConfig>,
}

/// The primary email, else the first.
fn email_of(rec: &Record) -> Option<String> {
    let emails = rec.attrs.get("emails")?.as_array()?;
    let primary = emails.iter().find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    primary.or(emails.first())?.get("value")?.as_str().map(str::to_string)
}

/// `active` defaults to true when the IdP never sent it (RFC 7643 leaves it to the provider).
fn active_of(rec: &Record) -> bool {
    rec.attrs.get("active").and_then(Value::as_bool).unwrap_or(true)
}

fn facts(rec: &Record, groups: Vec<String>) -> UserFacts {
    UserFacts {
        id: rec.id.clone(),
        user_name: rec.str_attr("userName").unwrap_or_default().to_string(),
        external_id: rec.external_id().map(str::to_string),
        email: email_of(rec),
        display_name: rec.str_attr("displayName").map(str::to_string),
        active: active_of(rec),
        groups,
        mapped_username: rec.link.clone(),
        deactivated: Vec::new(),
    }
}

fn group_names(store: &Store, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter_map(|g| store.get(Kind::Group, g).ok().flatten())
        .filter_map(|g| g.str_attr("displayName").map(str::to_string))
        .collect()
}

/// Facts of a user member before and after the change to `group`.
fn member_pair(store: &Store, user_id: &str, group: &str, joined: bool) -> Option<(UserFacts, UserFacts)> {
    let rec = store.get(Kind::User, user_id).ok().flatten()?;
    let current = group_names(store, &store.group_ids_of(user_id).ok()?);
    let without: Vec<String> = current.iter().filter(|g| !policy_eq(g, group)).cloned().collect();
    let mut with = without.clone();
    with.push(group.to_string());
    Some(if joined { (facts(&rec, without), facts(&rec, with)) } else { (facts(&rec, with), facts(&rec, without)) })
}

fn policy_eq(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl PolicyHook {
    fn event(&self, store: &Store, change: &Change<'_>) -> Option<Event> {
        match change.kind {
            Kind::User => {
                let groups = || group_names(store, &store.group_ids_of(change.id).unwrap_or_default());
                match (change.before, change.after) {
                    (None, Some(a)) => Some(Event::UserCreated { after: facts(a, groups()) }),
                    (Some(b), Some(a)) => {
                        let g = groups();
                        Some(Event::UserUpdated { before: facts(b, g.clone()), after: facts(a, g) })
                    }
                    (Some(b), None) => {
                        Some(Event::UserDeleted { before: facts(b, group_names(store, change.groups_left)) })
                    }
                    (None, None) => None,
                }
            }
            Kind::Group => {
                let name_of = |r: Option<&Record>| r.and_then(|r| r.str_attr("displayName")).map(str::to_string);
                let (before, after) = (name_of(change.before), name_of(change.after));
                let users = |ids: &[String], group: &str, joined: bool| -> Vec<(UserFacts, UserFacts)> {
                    ids.iter().filter_map(|id| member_pair(store, id, group, joined)).collect()
                };
                match (before, after) {
                    (Some(b), None) => Some(Event::GroupDeleted {
                        group: b.clone(),
                        members: users(change.members_removed, &b, false),
                    }),
                    (Some(b), Some(a)) if !policy_eq(&a, &b) && change.op != ChangeOp::Create => {
                        let members = store
                            .member_ids(change.id)
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|id| store.get(Kind::User, id).ok().flatten())
                            .map(|r| facts(&r, group_names(store, &store.group_ids_of(&r.id).unwrap_or_default())))
                            .collect();
                        Some(Event::GroupRenamed { from: b, to: a, members })
                    }
                    (_, Some(a)) => Some(Event::MembershipChanged {
                        joined: users(change.members_added, &a, true),
                        left: users(change.members_removed, &a, false),
                        group: a,
                    }),
                    (None, None) => None,
                }
            }
        }
    }
}

/// The change of a SCIM group itself (created, renamed, deleted), for the group-level intents.
fn group_event(change: &Change<'_>) -> Option<GroupEvent> {
    if change.kind != Kind::Group {
        return None;
    }
    let name_of = |r: Option<&Record>| r.and_then(|r| r.str_attr("displayName")).map(str::to_string);
    let id = change.id.to_string();
    match (name_of(change.before), name_of(change.after)) {
        (None, Some(name)) => Some(GroupEvent::Created { id, name }),
        (Some(from), Some(to)) if !policy_eq(&from, &to) && change.op != ChangeOp::Create => {
            Some(GroupEvent::Renamed { id, from, to })
        }
        (Some(name), None) => Some(GroupEvent::Deleted { id, name }),
        _ => None,
    }
}

/// Group sync never undoes the licence optimizer: an addition to `[license] license_group` on its
/// target is dropped for a user whose licence was reclaimed (or who waits in the queue). Only the
/// optimizer's own grant (`RestoreLicense`, on a free seat) gives the seat back.
fn withheld_by_licence(store: &Store, lc: &crate::lifecycle::LicenseConfig, intent: &Intent) -> bool {
    let IntentAction::AddToGroup { group } = &intent.action else { return false };
    crate::lifecycle::licence_withheld(store, lc, &intent.target, group, &intent.username)
}

impl ChangeHook for PolicyHook {
    fn plan(&self, store: &Store, change: &Change<'_>) -> Planned {
        if self.targets.is_empty() {
            return Planned::default();
        }
        let group_intents =
            group_event(change).map(|e| policy::decide_groups(&e, &self.policy, &self.targets)).unwrap_or_default();
        let Some(event) = self.event(store, change) else {
            let intents = group_intents.into_iter().filter_map(|i| serde_json::to_value(i).ok()).collect();
            return Planned { intents, link: None };
        };
        let link = match (&event, change.after) {
            (Event::UserCreated { after: f } | Event::UserUpdated { after: f, .. }, Some(rec))
                if rec.link.is_none() =>
            {
                policy::username_for(f, self.policy.username_from)
            }
            _ => None,
        };
        // Group-level intents first: the group exists before members are added (their lanes
        // also create it on demand, so this is an ordering nicety, not a requirement).
        let mut intents = group_intents;
        let decided = crate::intake_links::decide_with_links(store, &event, &self.policy, &self.targets);
        // An account deactivated for inactivity comes back on this signal, before the event's
        // own intents for it (its group additions then land on an active account).
        intents.extend(crate::intake_reasons::signal_reactivations(
            store,
            &event,
            &self.policy,
            &self.targets,
            &decided,
        ));
        intents.extend(decided);
        if let Some(lc) = &self.license {
            // The change's own time, so the licence history matches the audit record.
            let now =
                chrono::DateTime::parse_from_rfc3339(change.at).map_or_else(|_| chrono::Utc::now(), |t| t.to_utc());
            let signalled: Vec<&UserFacts> = match &event {
                Event::UserCreated { after } | Event::UserUpdated { after, .. } => vec![after],
                Event::MembershipChanged { joined, .. } => joined.iter().map(|(_, a)| a).collect(),
                _ => Vec::new(),
            };
            intents.extend(
                signalled.into_iter().filter_map(|u| crate::lifecycle::on_idp_signal(store, lc, &self.policy, u, now)),
            );
            // After the signal: a user it just granted is no longer withheld.
            intents.retain(|i| {
                let withheld = withheld_by_licence(store, lc, i);
                if withheld {
                    tracing::info!(target_name = %i.target, username = %crate::redact::Pii(&i.username), "Group sync left out the licence group: the licence optimizer reclaimed this user's seat.");
                }
                !withheld
            });
        }
        let intents = intents.into_iter().filter_map(|i| serde_json::to_value(i).ok()).collect();
        Planned { intents, link }
    }
}
