//! [`decide`]: from one SCIM change to the ordered intents for every target. Pure and total:
//! every event, policy and target yields a (possibly empty) list, never an error.
//!
//! The rules, in the order they are applied to each user of an event:
//! 1. Access: active, and in one of `access_groups` when any are configured ([`has_access`]).
//!    Comparing access before and after gives the trigger: gained (`Created`, `Enabled`,
//!    `AccessRegained`), lost (`Disabled`, `AccessLost`) or `Deleted`.
//! 2. Protection: a user named in `protected_users`, or in a `protected_groups` group before or
//!    after the change, gets no deactivation, deletion, anonymization or licence removal.
//! 3. Order within a target: create, reactivate, profile update, group additions, group
//!    removals, offboarding (so the account exists before it is added to groups, and leaves
//!    groups before it goes). Group names are the Atlassian names of `groups.rs`.
//!
//! Product translation lives in `product.rs` (atlassian-dc.md §7).

use std::borrow::Cow;

use super::config::{EnableAction, OffboardAction, Policy, TargetPolicy, UsernameFrom};
use super::{contains_ci, eq_ci, product, Event, Intent, IntentAction, Trigger, UserFacts};

/// The Atlassian username of `user`: the recorded `mapped_username` when set, otherwise derived
/// as `from` says. `None` (no intents for this user) when the source attribute is missing or blank.
pub fn username_for(user: &UserFacts, from: UsernameFrom) -> Option<String> {
    if let Some(mapped) = non_blank(user.mapped_username.as_deref()) {
        return Some(mapped);
    }
    let derived = match from {
        UsernameFrom::UserName => Some(user.user_name.as_str()),
        // The last '@' separates the domain; a local part may itself contain a quoted '@'.
        UsernameFrom::UserNameLocalpart => {
            Some(user.user_name.rsplit_once('@').map_or(user.user_name.as_str(), |(local, _)| local))
        }
        UsernameFrom::Email => user.email.as_deref(),
        UsernameFrom::ExternalId => user.external_id.as_deref(),
    };
    non_blank(derived)
}

/// Whether `user` should have an account in Atlassian: active, and a member of one of the
/// `access_groups` when any are configured (group names compared case-insensitively).
pub fn has_access(user: &UserFacts, policy: &Policy) -> bool {
    user.active
        && (policy.access_groups.is_empty() || user.groups.iter().any(|g| contains_ci(&policy.access_groups, g)))
}

/// Every intent `event` implies, targets in configuration order, users in event order.
pub fn decide(event: &Event, policy: &Policy, targets: &[TargetPolicy]) -> Vec<Intent> {
    let changes = changes(event);
    let mut intents = Vec::new();
    for target in targets {
        for change in &changes {
            plan(change, policy, target, &mut intents);
        }
    }
    intents
}

/// One user's part of an event: facts on both sides (`None` = did not exist) and the group the
/// event added them to or removed them from.
struct Change<'a> {
    before: Option<Cow<'a, UserFacts>>,
    after: Option<Cow<'a, UserFacts>>,
    joined: Option<&'a str>,
    left: Option<&'a str>,
    /// `left` because the IdP deleted the group (or renamed it away): `[groups] on_group_delete`.
    left_by_delete: bool,
}

impl<'a> Change<'a> {
    fn new(before: Option<&'a UserFacts>, after: Option<&'a UserFacts>) -> Self {
        Change {
            before: before.map(Cow::Borrowed),
            after: after.map(Cow::Borrowed),
            joined: None,
            left: None,
            left_by_delete: false,
        }
    }
}

fn changes(event: &Event) -> Vec<Change<'_>> {
    match event {
        Event::UserCreated { after } => vec![Change::new(None, Some(after))],
        Event::UserUpdated { before, after } => vec![Change::new(Some(before), Some(after))],
        Event::UserDeleted { before } => vec![Change::new(Some(before), None)],
        Event::MembershipChanged { group, joined, left } => {
            let joined = joined.iter().map(|(b, a)| Change { joined: Some(group), ..Change::new(Some(b), Some(a)) });
            let left = left.iter().map(|(b, a)| Change { left: Some(group), ..Change::new(Some(b), Some(a)) });
            joined.chain(left).collect()
        }
        // Atlassian groups are not renamed: the bridge mirrors names, so a rename is membership of
        // the new name and no longer of the old. Both sides are derived from one set of facts,
        // whichever name it carries, so a rename into or out of `access_groups` changes access.
        Event::GroupRenamed { from, to, members } => members
            .iter()
            .map(|m| Change {
                before: Some(Cow::Owned(with_group_renamed(m, to, from))),
                after: Some(Cow::Owned(with_group_renamed(m, from, to))),
                joined: Some(to),
                left: Some(from),
                left_by_delete: true,
            })
            .collect(),
        Event::GroupDeleted { group, members } => members
            .iter()
            .map(|(b, a)| Change { left: Some(group), left_by_delete: true, ..Change::new(Some(b), Some(a)) })
            .collect(),
    }
}

/// `user` with group `old` called `new`, and `new` present exactly once.
fn with_group_renamed(user: &UserFacts, old: &str, new: &str) -> UserFacts {
    let mut groups: Vec<String> = user.groups.iter().filter(|g| !eq_ci(g, old) && !eq_ci(g, new)).cloned().collect();
    groups.push(new.to_string());
    UserFacts { groups, ..user.clone() }
}

/// What the change did to the user's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Gained(Trigger),
    Lost(Trigger, OffboardAction),
    Unchanged,
}

/// The precedence, top to bottom: a deletion always applies `on_delete` (even to a user who had
/// no access: deleting or anonymizing an inactive account is what the admin chose, and
/// deactivating it again is harmless); otherwise only a change of access is a trigger, and
/// `active` going false names it `Disabled` rather than `AccessLost`.
fn transition(change: &Change<'_>, policy: &Policy) -> Transition {
    let before = change.before.as_deref();
    let after = change.after.as_deref();
    let had = before.is_some_and(|u| has_access(u, policy));
    let has = after.is_some_and(|u| has_access(u, policy));
    match (before, after) {
        (_, None) => Transition::Lost(Trigger::Deleted, policy.on_delete),
        (None, Some(_)) if has => Transition::Gained(Trigger::Created),
        (Some(b), Some(_)) if has && !had => {
            Transition::Gained(if b.active { Trigger::AccessRegained } else { Trigger::Enabled })
        }
        (Some(_), Some(a)) if had && !has => {
            if a.active {
                Transition::Lost(Trigger::AccessLost, policy.on_access_lost)
            } else {
                Transition::Lost(Trigger::Disabled, policy.on_disable)
            }
        }
        _ => Transition::Unchanged,
    }
}

/// Appends the intents of one user's change on one target.
fn plan(change: &Change<'_>, policy: &Policy, target: &TargetPolicy, out: &mut Vec<Intent>) {
    let transition = transition(change, policy);
    let gained = matches!(transition, Transition::Gained(_));
    let Some(username) = change_username(change, policy.username_from, gained) else {
        return;
    };
    let Some(user_id) = change.after.as_deref().or(change.before.as_deref()).map(|u| u.id.clone()) else {
        return;
    };
    let mut push = |action: IntentAction, trigger: Trigger| {
        out.push(Intent {
            target: target.name.clone(),
            user_id: user_id.clone(),
            username: username.clone(),
            action,
            trigger,
            dry_run: policy.dry_run,
        });
    };

    // (Re)provisioning. A new user is created active, so only a returning one is reactivated.
    // Creating a returning user covers an account that an earlier `delete` removed; for one that
    // still exists the target answers "already exists", which delivery counts as done.
    let mut replay_groups = None;
    if let (Transition::Gained(trigger), Some(after)) = (transition, change.after.as_deref()) {
        let provision = trigger == Trigger::Created || policy.on_enable == EnableAction::Reactivate;
        if provision && policy.create_users && product::can_create(target.product) {
            if let Some(create) = create_user(after) {
                push(create, trigger);
            }
        }
        if trigger != Trigger::Created && policy.on_enable == EnableAction::Reactivate {
            for action in product::reactivate(target.product, &target.license_groups) {
                push(action, trigger);
            }
        }
        if provision {
            replay_groups = Some(trigger);
        }
    }

    if let Some(update) = profile_update(change, transition, policy) {
        push(update, Trigger::ProfileUpdated);
    }

    if policy.sync_groups {
        // IdP names become Atlassian names per target (`[[group_map]]`, `only_mapped`; groups.rs).
        let sync = &policy.groups;
        let mut added: Vec<String> = Vec::new();
        for (group, trigger) in group_additions(change, policy, replay_groups) {
            let Some(atlassian) = sync.resolve(group, &target.name) else { continue };
            if !contains_ci(&policy.protected_groups, &atlassian) && !contains_ci(&added, &atlassian) {
                push(IntentAction::AddToGroup { group: atlassian.clone() }, trigger);
                added.push(atlassian);
            }
        }
        // Removals apply whatever the access: a deactivated account keeps its groups in Atlassian,
        // and they must not outlive the IdP membership. A removal from an account that no longer
        // exists is a no-op for delivery. Not when another IdP group of the user still maps to
        // the same Atlassian group, nor when a deleted group's members stay (`on_group_delete`).
        let remaining = change.after.as_deref().map_or(&[][..], |a| a.groups.as_slice());
        if let Some(group) = change.left.filter(|g| !contains_ci(&policy.protected_groups, g)) {
            let removes = !change.left_by_delete || sync.removes_members_on_delete(group);
            if let Some(atlassian) = sync.resolve(group, &target.name).filter(|_| removes) {
                if !contains_ci(&policy.protected_groups, &atlassian)
                    && !sync.still_granted(remaining, &target.name, &atlassian)
                {
                    push(IntentAction::RemoveFromGroup { group: atlassian }, Trigger::GroupLeft);
                }
            }
        }
    }

    if let Transition::Lost(trigger, action) = transition {
        if !is_protected(change, &username, policy) {
            for action in product::offboard(target.product, action, &target.license_groups) {
                push(action, trigger);
            }
        }
    }
}

/// A profile change (display name or email) of a user who keeps (or regains) access: the new
/// values, for the account that already exists. A created account already carries them.
fn profile_update(change: &Change<'_>, transition: Transition, policy: &Policy) -> Option<IntentAction> {
    let (before, after) = (change.before.as_deref()?, change.after.as_deref()?);
    if matches!(transition, Transition::Lost(..)) || !has_access(after, policy) {
        return None;
    }
    let changed = non_blank(before.display_name.as_deref()) != non_blank(after.display_name.as_deref())
        || non_blank(before.email.as_deref()) != non_blank(after.email.as_deref());
    if !changed {
        return None;
    }
    match create_user(after)? {
        IntentAction::CreateUser { display_name, email } => Some(IntentAction::UpdateProfile { display_name, email }),
        _ => None,
    }
}

/// Groups to add the user to: only while the user has access (an account that was never created
/// cannot join a group; joins made meanwhile are replayed when access returns). On (re)provisioning
/// every current group is replayed, since a recreated account starts with none. Protected groups
/// are never changed. Case-insensitive, first spelling wins.
fn group_additions<'c>(change: &'c Change<'_>, policy: &Policy, replay: Option<Trigger>) -> Vec<(&'c str, Trigger)> {
    let Some(after) = change.after.as_deref().filter(|a| has_access(a, policy)) else {
        return Vec::new();
    };
    let trigger_for = |group: &str| match (change.joined, replay) {
        (Some(joined), _) if eq_ci(joined, group) => Trigger::GroupJoined,
        (_, Some(replay)) => replay,
        _ => Trigger::GroupJoined,
    };
    let replayed = replay.map_or(&[][..], |_| after.groups.as_slice()).iter().map(String::as_str);
    let mut additions: Vec<(&str, Trigger)> = Vec::new();
    for group in replayed.chain(change.joined) {
        let seen = additions.iter().any(|(g, _)| eq_ci(g, group));
        if !seen && !contains_ci(&policy.protected_groups, group) {
            additions.push((group, trigger_for(group)));
        }
    }
    additions
}

/// Protected by name, or by membership of a protected group on either side of the change: a user
/// removed from "admins" in the same change that disables them is still treated as an admin.
fn is_protected(change: &Change<'_>, username: &str, policy: &Policy) -> bool {
    let in_protected_group = |u: &Option<Cow<'_, UserFacts>>| {
        u.as_deref().is_some_and(|u| u.groups.iter().any(|g| contains_ci(&policy.protected_groups, g)))
    };
    contains_ci(&policy.protected_users, username)
        || in_protected_group(&change.before)
        || in_protected_group(&change.after)
}

/// The username for a change: a recorded mapping on either side wins; otherwise it is derived from
/// the side that matters, the new facts when access is gained and the old ones otherwise (the
/// account was made under the old name if the IdP renamed the user in the same change).
fn change_username(change: &Change<'_>, from: UsernameFrom, gained: bool) -> Option<String> {
    let (first, second) = if gained { (&change.after, &change.before) } else { (&change.before, &change.after) };
    let sides = [first.as_deref(), second.as_deref()];
    sides
        .iter()
        .flatten()
        .find_map(|u| non_blank(u.mapped_username.as_deref()))
        .or_else(|| sides.iter().flatten().find_map(|u| username_for(u, from)))
}

/// Every product needs an email to create a user (atlassian-dc.md §2.2, §3, §4, §5). Without one,
/// a `userName` that is an address stands in; otherwise no create is attempted (it could only fail).
fn create_user(after: &UserFacts) -> Option<IntentAction> {
    let email = non_blank(after.email.as_deref())
        .or_else(|| non_blank(Some(&after.user_name)).filter(|name| name.contains('@')))?;
    let display_name = non_blank(after.display_name.as_deref()).unwrap_or_else(|| after.user_name.trim().to_string());
    Some(IntentAction::CreateUser { display_name, email })
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlassian::Product;

    const ACCESS: &str = "jira-users";

    fn alice() -> UserFacts {
        UserFacts {
            id: "id-alice".into(),
            user_name: "alice@example.com".into(),
            external_id: Some("ext-1".into()),
            email: Some("alice@example.com".into()),
            display_name: Some("Alice Example".into()),
            active: true,
            groups: vec![ACCESS.into()],
            mapped_username: Some("alice".into()),
            deactivated: Vec::new(),
        }
    }

    fn with(user: &UserFacts, edit: impl FnOnce(&mut UserFacts)) -> UserFacts {
        let mut user = user.clone();
        edit(&mut user);
        user
    }

    fn target(product: Product) -> TargetPolicy {
        let license_groups = if product == Product::Bitbucket { vec!["stash-users".into()] } else { Vec::new() };
        TargetPolicy { name: product.as_str().into(), product, license_groups }
    }

    fn all_targets() -> Vec<TargetPolicy> {
        [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket].into_iter().map(target).collect()
    }

    fn actions(intents: &[Intent]) -> Vec<IntentAction> {
        intents.iter().map(|i| i.action.clone()).collect()
    }

    fn summary(intents: &[Intent]) -> Vec<(String, IntentAction, Trigger)> {
        intents.iter().map(|i| (i.target.clone(), i.action.clone(), i.trigger)).collect()
    }

    fn create() -> IntentAction {
        IntentAction::CreateUser { display_name: "Alice Example".into(), email: "alice@example.com".into() }
    }
    fn add(group: &str) -> IntentAction {
        IntentAction::AddToGroup { group: group.into() }
    }
    fn remove(group: &str) -> IntentAction {
        IntentAction::RemoveFromGroup { group: group.into() }
    }
    fn remove_license() -> IntentAction {
        IntentAction::RemoveLicense { groups: vec!["stash-users".into()] }
    }
    fn restore_license() -> IntentAction {
        IntentAction::RestoreLicense { groups: vec!["stash-users".into()] }
    }
    use IntentAction::{Anonymize as ANON, Deactivate as DEACT, Delete as DEL, Reactivate as REACT};

    /// The IdP-side change of a table row, built around `alice` (who is in the access group).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Case {
        Created,
        Disabled,
        Deleted,
        AccessLost,
        Enabled,
        AccessRegained,
    }

    impl Case {
        fn trigger(self) -> Trigger {
            match self {
                Case::Created => Trigger::Created,
                Case::Disabled => Trigger::Disabled,
                Case::Deleted => Trigger::Deleted,
                Case::AccessLost => Trigger::AccessLost,
                Case::Enabled => Trigger::Enabled,
                Case::AccessRegained => Trigger::AccessRegained,
            }
        }

        fn event(self) -> Event {
            let on = alice();
            let off = with(&on, |u| u.active = false);
            let outside = with(&on, |u| u.groups.clear());
            match self {
                Case::Created => Event::UserCreated { after: with(&on, |u| u.mapped_username = None) },
                Case::Disabled => Event::UserUpdated { before: on, after: off },
                Case::Deleted => Event::UserDeleted { before: on },
                Case::AccessLost => {
                    Event::MembershipChanged { group: ACCESS.into(), joined: vec![], left: vec![(on, outside)] }
                }
                Case::Enabled => Event::UserUpdated { before: off, after: on },
                Case::AccessRegained => {
                    Event::MembershipChanged { group: ACCESS.into(), joined: vec![(outside, on)], left: vec![] }
                }
            }
        }
    }

    /// The configured action a row exercises.
    #[derive(Debug, Clone, Copy)]
    enum Configured {
        Off(OffboardAction),
        On(EnableAction),
        CreateUsers(bool),
    }

    fn policy_for(configured: Configured, protected: bool) -> Policy {
        let mut policy = Policy {
            access_groups: vec![ACCESS.into()],
            sync_groups: false,
            username_from: UsernameFrom::UserNameLocalpart,
            ..Policy::default()
        };
        match configured {
            Configured::Off(action) => {
                (policy.on_disable, policy.on_delete, policy.on_access_lost) = (action, action, action);
            }
            Configured::On(action) => policy.on_enable = action,
            Configured::CreateUsers(create) => policy.create_users = create,
        }
        if protected {
            // Spelled differently from the mapped username on purpose: matching ignores case.
            policy.protected_users = vec!["ALICE".into()];
        }
        policy
    }

    #[test]
    fn every_trigger_action_and_product_yields_the_documented_intents() {
        use EnableAction as E;
        use OffboardAction as O;
        use Product::{Bitbucket as BB, Confluence as CF, Crowd as CR, Jira as JI};
        let off = [O::Deactivate, O::Delete, O::Anonymize, O::None];
        let products = [JI, CF, CR, BB];

        // Protected users first: no offboarding action of any kind reaches any product...
        let mut rows: Vec<(bool, Case, Configured, Product, Vec<IntentAction>)> = Vec::new();
        for case in [Case::Disabled, Case::Deleted, Case::AccessLost] {
            for action in off {
                for product in products {
                    rows.push((true, case, Configured::Off(action), product, vec![]));
                }
            }
        }
        // ...while coming back is not an offboarding and still applies to them.
        rows.extend([
            (true, Case::Enabled, Configured::On(E::Reactivate), JI, vec![create(), REACT]),
            (true, Case::AccessRegained, Configured::On(E::Reactivate), BB, vec![create(), restore_license()]),
            (true, Case::Created, Configured::CreateUsers(true), CF, vec![create()]),
        ]);

        #[rustfmt::skip]
        rows.extend([
            (false, Case::Created, Configured::CreateUsers(true), JI, vec![create()]),
            (false, Case::Created, Configured::CreateUsers(true), CF, vec![create()]),
            (false, Case::Created, Configured::CreateUsers(true), CR, vec![create()]),
            (false, Case::Created, Configured::CreateUsers(true), BB, vec![create()]),
            (false, Case::Created, Configured::CreateUsers(false), JI, vec![]),
            (false, Case::Created, Configured::CreateUsers(false), CF, vec![]),
            (false, Case::Created, Configured::CreateUsers(false), CR, vec![]),
            (false, Case::Created, Configured::CreateUsers(false), BB, vec![]),
        ]);
        for case in [Case::Disabled, Case::Deleted, Case::AccessLost] {
            #[rustfmt::skip]
            rows.extend([
                (false, case, Configured::Off(O::Deactivate), JI, vec![DEACT]),
                (false, case, Configured::Off(O::Deactivate), CF, vec![DEACT]),
                (false, case, Configured::Off(O::Deactivate), CR, vec![DEACT]),
                (false, case, Configured::Off(O::Deactivate), BB, vec![remove_license()]),
                (false, case, Configured::Off(O::Delete), JI, vec![DEACT, DEL]),
                (false, case, Configured::Off(O::Delete), CF, vec![DEACT, DEL]),
                (false, case, Configured::Off(O::Delete), CR, vec![DEL]),
                (false, case, Configured::Off(O::Delete), BB, vec![DEL]),
                (false, case, Configured::Off(O::Anonymize), JI, vec![DEACT, ANON]),
                // validate() rejects these two; decide() falls back to the reversible deactivation.
                (false, case, Configured::Off(O::Anonymize), CF, vec![DEACT]),
                (false, case, Configured::Off(O::Anonymize), CR, vec![DEACT]),
                (false, case, Configured::Off(O::Anonymize), BB, vec![DEL, ANON]),
                (false, case, Configured::Off(O::None), JI, vec![]),
                (false, case, Configured::Off(O::None), CF, vec![]),
                (false, case, Configured::Off(O::None), CR, vec![]),
                (false, case, Configured::Off(O::None), BB, vec![]),
            ]);
        }
        for case in [Case::Enabled, Case::AccessRegained] {
            #[rustfmt::skip]
            rows.extend([
                (false, case, Configured::On(E::Reactivate), JI, vec![create(), REACT]),
                (false, case, Configured::On(E::Reactivate), CF, vec![create(), REACT]),
                (false, case, Configured::On(E::Reactivate), CR, vec![create(), REACT]),
                (false, case, Configured::On(E::Reactivate), BB, vec![create(), restore_license()]),
                (false, case, Configured::On(E::None), JI, vec![]),
                (false, case, Configured::On(E::None), CF, vec![]),
                (false, case, Configured::On(E::None), CR, vec![]),
                (false, case, Configured::On(E::None), BB, vec![]),
            ]);
        }

        let mut failures = Vec::new();
        for (protected, case, configured, product, expected) in &rows {
            let policy = policy_for(*configured, *protected);
            let intents = decide(&case.event(), &policy, &[target(*product)]);
            let row = format!("protected={protected} {case:?} {configured:?} {product:?}");
            if actions(&intents) != *expected {
                failures.push(format!("{row}: expected {expected:?}, got {:?}", actions(&intents)));
            }
            for intent in &intents {
                let expected = Intent {
                    target: product.as_str().into(),
                    user_id: "id-alice".into(),
                    username: "alice".into(),
                    action: intent.action.clone(),
                    trigger: case.trigger(),
                    dry_run: false,
                };
                if *intent != expected {
                    failures.push(format!("{row}: expected {expected:?}, got {intent:?}"));
                }
            }
        }
        assert_eq!(rows.len(), 3 * 4 * 4 + 3 + 8 + 3 * 16 + 2 * 8);
        assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    }

    #[test]
    fn a_mapped_username_wins_over_every_source() {
        let user = with(&alice(), |u| u.user_name = "renamed@example.com".into());
        for from in
            [UsernameFrom::UserName, UsernameFrom::UserNameLocalpart, UsernameFrom::Email, UsernameFrom::ExternalId]
        {
            assert_eq!(username_for(&user, from).as_deref(), Some("alice"), "{from:?}");
        }
    }

    #[test]
    fn username_from_derives_the_name_when_none_was_recorded() {
        let user = UserFacts {
            user_name: "a.b@x.com".into(),
            email: Some("Primary.Mail@x.com".into()),
            external_id: Some("00u1abc".into()),
            ..UserFacts::default()
        };
        assert_eq!(username_for(&user, UsernameFrom::UserName).as_deref(), Some("a.b@x.com"));
        assert_eq!(username_for(&user, UsernameFrom::UserNameLocalpart).as_deref(), Some("a.b"));
        assert_eq!(username_for(&user, UsernameFrom::Email).as_deref(), Some("Primary.Mail@x.com"));
        assert_eq!(username_for(&user, UsernameFrom::ExternalId).as_deref(), Some("00u1abc"));
        let plain = UserFacts { user_name: "jdoe".into(), ..UserFacts::default() };
        assert_eq!(username_for(&plain, UsernameFrom::UserNameLocalpart).as_deref(), Some("jdoe"));
        let blank_mapping = UserFacts { mapped_username: Some("  ".into()), ..plain };
        assert_eq!(username_for(&blank_mapping, UsernameFrom::UserName).as_deref(), Some("jdoe"));
    }

    #[test]
    fn a_missing_external_id_gives_no_username_and_no_intents() {
        let user = with(&alice(), |u| (u.external_id, u.mapped_username) = (None, None));
        assert_eq!(username_for(&user, UsernameFrom::ExternalId), None);
        let policy = Policy { username_from: UsernameFrom::ExternalId, ..Policy::default() };
        let disabled = Event::UserUpdated { before: user.clone(), after: with(&user, |u| u.active = false) };
        assert_eq!(decide(&disabled, &policy, &all_targets()), vec![]);
        assert_eq!(decide(&Event::UserCreated { after: user }, &policy, &all_targets()), vec![]);
    }

    #[test]
    fn a_user_without_email_is_not_created_unless_the_user_name_is_an_address() {
        let policy = Policy { sync_groups: false, ..Policy::default() };
        let no_mail = with(&alice(), |u| u.email = None);
        let intents = decide(&Event::UserCreated { after: no_mail.clone() }, &policy, &[target(Product::Jira)]);
        assert_eq!(actions(&intents), vec![create()]);
        let bare = with(&no_mail, |u| (u.user_name, u.display_name) = ("alice".into(), None));
        let intents = decide(&Event::UserCreated { after: bare }, &policy, &[target(Product::Jira)]);
        assert_eq!(actions(&intents), vec![]);
    }

    #[test]
    fn the_display_name_falls_back_to_the_user_name() {
        let user = with(&alice(), |u| u.display_name = Some(" ".into()));
        let policy = Policy { sync_groups: false, ..Policy::default() };
        let intents = decide(&Event::UserCreated { after: user }, &policy, &[target(Product::Crowd)]);
        let expected =
            IntentAction::CreateUser { display_name: "alice@example.com".into(), email: "alice@example.com".into() };
        assert_eq!(actions(&intents), vec![expected]);
    }

    #[test]
    fn a_new_user_is_created_before_being_added_to_its_groups() {
        let user = with(&alice(), |u| u.groups.push("Admins".into()));
        let intents = decide(&Event::UserCreated { after: user }, &Policy::default(), &[target(Product::Confluence)]);
        assert_eq!(
            summary(&intents),
            vec![
                ("confluence".into(), create(), Trigger::Created),
                ("confluence".into(), add(ACCESS), Trigger::Created),
                ("confluence".into(), add("Admins"), Trigger::Created),
            ]
        );
    }

    #[test]
    fn with_on_enable_none_a_returning_user_only_gets_the_joined_group() {
        let policy = Policy { access_groups: vec![ACCESS.into()], on_enable: EnableAction::None, ..Policy::default() };
        let before = with(&alice(), |u| u.groups = vec!["devs".into()]);
        let after = with(&before, |u| u.groups.push(ACCESS.into()));
        let event = Event::MembershipChanged { group: ACCESS.into(), joined: vec![(before, after)], left: vec![] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(summary(&intents), vec![("jira".into(), add(ACCESS), Trigger::GroupJoined)]);
    }

    #[test]
    fn an_inactive_new_user_is_not_created() {
        let user = with(&alice(), |u| u.active = false);
        assert_eq!(decide(&Event::UserCreated { after: user }, &Policy::default(), &all_targets()), vec![]);
    }

    #[test]
    fn leaving_the_only_access_group_loses_access() {
        let policy = Policy { access_groups: vec!["Jira-Users".into()], ..Policy::default() };
        let before = alice();
        let after = with(&before, |u| u.groups.clear());
        let event = Event::MembershipChanged { group: ACCESS.into(), joined: vec![], left: vec![(before, after)] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(
            summary(&intents),
            vec![("jira".into(), remove(ACCESS), Trigger::GroupLeft), ("jira".into(), DEACT, Trigger::AccessLost),]
        );
    }

    #[test]
    fn leaving_one_of_two_access_groups_changes_nothing_but_membership() {
        let mut policy = Policy { access_groups: vec![ACCESS.into(), "confluence-users".into()], ..Policy::default() };
        let before = with(&alice(), |u| u.groups = vec![ACCESS.into(), "Confluence-Users".into()]);
        let after = with(&before, |u| u.groups.retain(|g| g != ACCESS));
        let event = Event::MembershipChanged { group: ACCESS.into(), joined: vec![], left: vec![(before, after)] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(summary(&intents), vec![("jira".into(), remove(ACCESS), Trigger::GroupLeft)]);
        policy.sync_groups = false;
        assert_eq!(decide(&event, &policy, &[target(Product::Jira)]), vec![]);
    }

    #[test]
    fn without_access_groups_every_active_user_has_access() {
        let policy = Policy::default();
        let user = with(&alice(), |u| u.groups.clear());
        assert!(has_access(&user, &policy));
        assert!(!has_access(&with(&user, |u| u.active = false), &policy));
    }

    #[test]
    fn joining_an_access_group_provisions_the_user_and_replays_every_group() {
        let policy = Policy { access_groups: vec![ACCESS.into()], ..Policy::default() };
        let before = with(&alice(), |u| u.groups = vec!["devs".into()]);
        let after = with(&before, |u| u.groups.push(ACCESS.into()));
        let event = Event::MembershipChanged { group: ACCESS.into(), joined: vec![(before, after)], left: vec![] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(
            summary(&intents),
            vec![
                ("jira".into(), create(), Trigger::AccessRegained),
                ("jira".into(), REACT, Trigger::AccessRegained),
                ("jira".into(), add("devs"), Trigger::AccessRegained),
                ("jira".into(), add(ACCESS), Trigger::GroupJoined),
            ]
        );
    }

    #[test]
    fn a_user_without_access_is_not_added_to_groups_but_is_removed_from_them() {
        let policy = Policy { access_groups: vec![ACCESS.into()], ..Policy::default() };
        let outside = with(&alice(), |u| u.groups = vec!["marketing".into()]);
        let joined = Event::MembershipChanged {
            group: "sales".into(),
            joined: vec![(outside.clone(), with(&outside, |u| u.groups.push("sales".into())))],
            left: vec![],
        };
        assert_eq!(decide(&joined, &policy, &[target(Product::Jira)]), vec![]);
        let left = Event::MembershipChanged {
            group: "marketing".into(),
            joined: vec![],
            left: vec![(outside.clone(), with(&outside, |u| u.groups.clear()))],
        };
        assert_eq!(actions(&decide(&left, &policy, &[target(Product::Jira)])), vec![remove("marketing")]);
    }

    #[test]
    fn group_sync_mirrors_joins_and_leaves_to_every_target_in_config_order() {
        let policy = Policy::default();
        let bob = with(&alice(), |u| (u.id, u.mapped_username) = ("id-bob".into(), Some("bob".into())));
        let event = Event::MembershipChanged {
            group: "devs".into(),
            joined: vec![(alice(), with(&alice(), |u| u.groups.push("devs".into())))],
            left: vec![(with(&bob, |u| u.groups.push("devs".into())), bob.clone())],
        };
        let intents = decide(&event, &policy, &[target(Product::Confluence), target(Product::Jira)]);
        let got: Vec<_> = intents.iter().map(|i| (i.target.as_str(), i.username.as_str(), i.action.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("confluence", "alice", add("devs")),
                ("confluence", "bob", remove("devs")),
                ("jira", "alice", add("devs")),
                ("jira", "bob", remove("devs")),
            ]
        );
    }

    #[test]
    fn sync_groups_off_emits_no_membership_intents() {
        let policy = Policy { sync_groups: false, ..Policy::default() };
        let event = Event::MembershipChanged {
            group: "devs".into(),
            joined: vec![(alice(), with(&alice(), |u| u.groups.push("devs".into())))],
            left: vec![],
        };
        assert_eq!(decide(&event, &policy, &all_targets()), vec![]);
        let deleted = Event::GroupDeleted {
            group: ACCESS.into(),
            members: vec![(alice(), with(&alice(), |u| u.groups.clear()))],
        };
        assert_eq!(decide(&deleted, &policy, &all_targets()), vec![]);
    }

    #[test]
    fn members_of_a_protected_group_are_never_offboarded() {
        let policy = Policy { protected_groups: vec!["Jira-Administrators".into()], ..Policy::default() };
        let admin = with(&alice(), |u| u.groups.push("jira-administrators".into()));
        for event in [
            Event::UserUpdated { before: admin.clone(), after: with(&admin, |u| u.active = false) },
            Event::UserDeleted { before: admin.clone() },
        ] {
            assert_eq!(decide(&event, &policy, &all_targets()), vec![], "{event:?}");
        }
    }

    #[test]
    fn leaving_a_protected_group_while_losing_access_still_protects() {
        let policy = Policy {
            access_groups: vec!["jira-administrators".into()],
            protected_groups: vec!["jira-administrators".into()],
            ..Policy::default()
        };
        let admin = with(&alice(), |u| u.groups = vec!["jira-administrators".into()]);
        let event = Event::GroupDeleted {
            group: "jira-administrators".into(),
            members: vec![(admin.clone(), with(&admin, |u| u.groups.clear()))],
        };
        assert_eq!(decide(&event, &policy, &all_targets()), vec![]);
    }

    #[test]
    fn protected_groups_are_never_changed_but_other_groups_of_protected_users_are() {
        let policy = Policy { protected_groups: vec!["admins".into()], ..Policy::default() };
        let admin = with(&alice(), |u| u.groups.push("admins".into()));
        let joined =
            Event::MembershipChanged { group: "Admins".into(), joined: vec![(alice(), admin.clone())], left: vec![] };
        assert_eq!(decide(&joined, &policy, &all_targets()), vec![]);
        let left_devs = Event::MembershipChanged {
            group: "devs".into(),
            joined: vec![],
            left: vec![(with(&admin, |u| u.groups.push("devs".into())), admin.clone())],
        };
        assert_eq!(actions(&decide(&left_devs, &policy, &[target(Product::Jira)])), vec![remove("devs")]);
    }

    #[test]
    fn dry_run_marks_every_intent_and_changes_nothing_else() {
        let before = alice();
        let after = with(&before, |u| (u.active, u.groups) = (false, vec![]));
        let event = Event::GroupDeleted { group: ACCESS.into(), members: vec![(before, after)] };
        let live = decide(&event, &Policy::default(), &all_targets());
        let dry = decide(&event, &Policy { dry_run: true, ..Policy::default() }, &all_targets());
        assert!(!live.is_empty());
        assert!(live.iter().all(|i| !i.dry_run));
        assert!(dry.iter().all(|i| i.dry_run));
        let undried: Vec<Intent> = dry.into_iter().map(|i| Intent { dry_run: false, ..i }).collect();
        assert_eq!(undried, live);
    }

    #[test]
    fn deleting_an_already_inactive_user_still_applies_on_delete() {
        let policy = Policy { on_delete: OffboardAction::Delete, ..Policy::default() };
        let inactive = with(&alice(), |u| u.active = false);
        let intents = decide(&Event::UserDeleted { before: inactive }, &policy, &[target(Product::Crowd)]);
        assert_eq!(summary(&intents), vec![("crowd".into(), DEL, Trigger::Deleted)]);
    }

    #[test]
    fn an_update_that_keeps_access_and_profile_emits_nothing() {
        let after = with(&alice(), |u| u.external_id = Some("ext-2".into()));
        assert_eq!(decide(&Event::UserUpdated { before: alice(), after }, &Policy::default(), &all_targets()), vec![]);
    }

    #[test]
    fn a_display_name_or_email_change_updates_the_profile_in_every_target() {
        let update = |d: &str, e: &str| IntentAction::UpdateProfile { display_name: d.into(), email: e.into() };
        let renamed = with(&alice(), |u| u.display_name = Some("Alice Renamed".into()));
        let intents =
            decide(&Event::UserUpdated { before: alice(), after: renamed }, &Policy::default(), &all_targets());
        assert_eq!(actions(&intents), vec![update("Alice Renamed", "alice@example.com"); 4]);
        assert!(intents.iter().all(|i| i.trigger == Trigger::ProfileUpdated));
        let moved = with(&alice(), |u| u.email = Some("alice@new.example".into()));
        let intents =
            decide(&Event::UserUpdated { before: alice(), after: moved }, &Policy::default(), &[target(Product::Jira)]);
        assert_eq!(actions(&intents), vec![update("Alice Example", "alice@new.example")]);
    }

    #[test]
    fn a_profile_change_of_a_user_losing_access_is_not_sent() {
        let after = with(&alice(), |u| (u.active, u.display_name) = (false, Some("Gone".into())));
        let intents =
            decide(&Event::UserUpdated { before: alice(), after }, &Policy::default(), &[target(Product::Jira)]);
        assert_eq!(actions(&intents), vec![DEACT]);
    }

    #[test]
    fn group_map_renames_groups_per_target_and_only_mapped_drops_the_rest() {
        let maps = [crate::policy::GroupMapFile {
            idp: "SG-Jira-Users".into(),
            atlassian: "jira-software-users".into(),
            targets: Some(vec!["jira".into()]),
        }];
        let targets: Vec<crate::policy::TargetConfig> = ["jira", "confluence"]
            .iter()
            .map(|n| crate::policy::TargetConfig {
                name: n.to_string(),
                product: Product::Jira,
                url: "https://x.example".into(),
                token_env: Some("T".into()),
                username: None,
                password_env: None,
                timeout_secs: 10,
                license_groups: vec![],
                lead_successor: None,
                anonymize_new_owner: None,
            })
            .collect();
        let mut policy = Policy::default();
        policy.groups =
            crate::policy::validated_groups(&Default::default(), &maps, &targets, &[]).expect("valid mapping");
        let joined = |g: &str| Event::MembershipChanged {
            group: g.into(),
            joined: vec![(alice(), with(&alice(), |u| u.groups.push(g.into())))],
            left: vec![],
        };
        let tp = [target(Product::Jira), target(Product::Confluence)];
        assert_eq!(
            summary(&decide(&joined("sg-jira-users"), &policy, &tp)),
            vec![("jira".into(), add("jira-software-users"), Trigger::GroupJoined)]
        );
        assert_eq!(
            actions(&decide(&joined("Engineering"), &policy, &tp)),
            vec![add("Engineering"), add("Engineering")]
        );
        policy.groups.only_mapped = true;
        assert_eq!(decide(&joined("Engineering"), &policy, &tp), vec![]);
    }

    #[test]
    fn leaving_one_of_two_idp_groups_mapped_to_the_same_atlassian_group_keeps_the_membership() {
        let mut policy = Policy::default();
        policy.groups.maps = ["SG-A", "SG-B"]
            .iter()
            .map(|g| crate::policy::GroupMap {
                idp: g.to_string(),
                atlassian: "jira-software-users".into(),
                targets: vec![],
            })
            .collect();
        let before = with(&alice(), |u| u.groups = vec!["SG-A".into(), "SG-B".into()]);
        let after = with(&before, |u| u.groups = vec!["SG-B".into()]);
        let event =
            Event::MembershipChanged { group: "SG-A".into(), joined: vec![], left: vec![(before.clone(), after)] };
        assert_eq!(decide(&event, &policy, &[target(Product::Jira)]), vec![]);
        let gone = with(&before, |u| u.groups = vec!["SG-A".into()]);
        let event = Event::MembershipChanged {
            group: "SG-A".into(),
            joined: vec![],
            left: vec![(gone, with(&alice(), |u| u.groups.clear()))],
        };
        assert_eq!(actions(&decide(&event, &policy, &[target(Product::Jira)])), vec![remove("jira-software-users")]);
    }

    #[test]
    fn on_group_delete_decides_whether_members_of_a_deleted_group_are_removed() {
        use crate::policy::OnGroupDelete;
        let member = with(&alice(), |u| u.groups = vec!["devs".into()]);
        let event = Event::GroupDeleted {
            group: "devs".into(),
            members: vec![(member.clone(), with(&member, |u| u.groups.clear()))],
        };
        for (on_delete, expected) in [
            (OnGroupDelete::RemoveMembers, vec![remove("devs")]),
            (OnGroupDelete::None, vec![]),
            // The group itself is deleted instead (a group-level intent, see groups.rs).
            (OnGroupDelete::DeleteGroup, vec![]),
        ] {
            let mut policy = Policy::default();
            policy.groups.on_group_delete = on_delete;
            assert_eq!(actions(&decide(&event, &policy, &[target(Product::Jira)])), expected, "{on_delete:?}");
        }
        // A mapped group is never deleted: its members are removed even with delete_group.
        let mut policy = Policy::default();
        policy.groups.on_group_delete = OnGroupDelete::DeleteGroup;
        policy.groups.maps =
            vec![crate::policy::GroupMap { idp: "devs".into(), atlassian: "developers".into(), targets: vec![] }];
        assert_eq!(actions(&decide(&event, &policy, &[target(Product::Jira)])), vec![remove("developers")]);
    }

    #[test]
    fn group_removal_comes_before_offboarding_on_each_target() {
        let before = alice();
        let after = with(&before, |u| (u.active, u.groups) = (false, vec![]));
        let event = Event::GroupDeleted { group: ACCESS.into(), members: vec![(before, after)] };
        let policy = Policy { on_disable: OffboardAction::Delete, ..Policy::default() };
        let intents = decide(&event, &policy, &[target(Product::Jira), target(Product::Bitbucket)]);
        assert_eq!(
            summary(&intents),
            vec![
                ("jira".into(), remove(ACCESS), Trigger::GroupLeft),
                ("jira".into(), DEACT, Trigger::Disabled),
                ("jira".into(), DEL, Trigger::Disabled),
                ("bitbucket".into(), remove(ACCESS), Trigger::GroupLeft),
                ("bitbucket".into(), DEL, Trigger::Disabled),
            ]
        );
    }

    #[test]
    fn a_group_rename_moves_members_from_the_old_name_to_the_new() {
        let policy = Policy::default();
        let member = with(&alice(), |u| u.groups = vec!["devs".into()]);
        let event = Event::GroupRenamed { from: "devs".into(), to: "engineering".into(), members: vec![member] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(
            summary(&intents),
            vec![
                ("jira".into(), add("engineering"), Trigger::GroupJoined),
                ("jira".into(), remove("devs"), Trigger::GroupLeft),
            ]
        );
    }

    #[test]
    fn renaming_the_access_group_away_is_a_loss_of_access() {
        let policy = Policy { access_groups: vec![ACCESS.into()], sync_groups: false, ..Policy::default() };
        // The facts may carry either name; both give the same answer.
        for groups in [vec!["jira-users-old".to_string()], vec![ACCESS.to_string()]] {
            let member = with(&alice(), |u| u.groups = groups.clone());
            let event = Event::GroupRenamed { from: ACCESS.into(), to: "jira-users-old".into(), members: vec![member] };
            let intents = decide(&event, &policy, &[target(Product::Jira)]);
            assert_eq!(summary(&intents), vec![("jira".into(), DEACT, Trigger::AccessLost)], "{groups:?}");
        }
    }

    #[test]
    fn a_rename_does_not_touch_a_protected_group_name() {
        let policy = Policy { protected_groups: vec!["admins".into()], ..Policy::default() };
        let member = with(&alice(), |u| u.groups = vec!["admins".into()]);
        let event = Event::GroupRenamed { from: "admins".into(), to: "administrators".into(), members: vec![member] };
        let intents = decide(&event, &policy, &[target(Product::Jira)]);
        assert_eq!(actions(&intents), vec![add("administrators")]);
    }

    #[test]
    fn bitbucket_without_license_groups_still_records_the_licence_removal() {
        let bare = TargetPolicy { name: "bb".into(), product: Product::Bitbucket, license_groups: vec![] };
        let disabled = Event::UserUpdated { before: alice(), after: with(&alice(), |u| u.active = false) };
        let policy = Policy { sync_groups: false, ..Policy::default() };
        let intents = decide(&disabled, &policy, std::slice::from_ref(&bare));
        assert_eq!(actions(&intents), vec![IntentAction::RemoveLicense { groups: vec![] }]);
        let enabled = Event::UserUpdated { before: with(&alice(), |u| u.active = false), after: alice() };
        assert_eq!(actions(&decide(&enabled, &policy, &[bare])), vec![create()]);
    }

    #[test]
    fn the_username_of_an_offboarded_user_comes_from_the_facts_before_the_change() {
        let policy = Policy::default();
        let before = with(&alice(), |u| (u.mapped_username, u.user_name) = (None, "old@example.com".into()));
        let after = with(&before, |u| (u.active, u.user_name) = (false, "new@example.com".into()));
        let intents = decide(&Event::UserUpdated { before, after }, &policy, &[target(Product::Jira)]);
        assert_eq!(intents.iter().map(|i| i.username.as_str()).collect::<Vec<_>>(), vec!["old@example.com"]);
    }

    #[test]
    fn intents_serialize_with_a_type_tag_and_snake_case_names() {
        let intent = Intent {
            target: "bitbucket".into(),
            user_id: "id-alice".into(),
            username: "alice".into(),
            action: remove_license(),
            trigger: Trigger::AccessLost,
            dry_run: true,
        };
        let json = serde_json::to_value(&intent).expect("an intent serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "target": "bitbucket", "user_id": "id-alice", "username": "alice",
                "action": {"type": "remove_license", "groups": ["stash-users"]},
                "trigger": "access_lost", "dry_run": true
            })
        );
        assert_eq!(serde_json::from_value::<Intent>(json).expect("and reads back"), intent);
        assert_eq!(
            serde_json::to_value(IntentAction::Deactivate).expect("unit"),
            serde_json::json!({"type": "deactivate"})
        );
    }
}
