//! Offboarding that does not stop at a refusal (issue 9, item 3): when Jira, Confluence or Crowd
//! refuse to deactivate a user (read-only LDAP/AD or Crowd directory, project or component lead,
//! System Administrator edited by a plain administrator), the user is taken out of every
//! application-access / licence group the target grants access through instead, and the outcome
//! says so ([`Effect::AccessRemovedByGroups`] with a [`Fallback`] report). Where even that is
//! impossible, the failure is permanent and its reason tells the admin exactly what to do by hand.
//!
//! This file owns the product-independent part: the per-target knobs ([`Offboarding`]), the
//! report, and the conclusion from the attempted group removals. The product modules
//! (`jira/fallback.rs`, `confluence/fallback.rs`, `crowd/client.rs`) recognise the refusal,
//! find the access groups and make the calls.

use serde::Serialize;

use super::types::{Effect, Failure, Product};

/// Per-target offboarding settings the connector needs (from the `[[target]]` block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offboarding {
    /// `license_groups`: groups that grant access to (a licence of) the product.
    pub license_groups: Vec<String>,
    /// Jira `lead_successor`: who takes over the project and component leads of a leaver, so the
    /// leaver can be deactivated instead of only losing their groups.
    pub lead_successor: Option<String>,
    /// `policy.protected_groups`: never changed, so never removed by the fallback either.
    pub protected_groups: Vec<String>,
}

/// A project or component lead handed to `lead_successor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadMove {
    /// `project` or `component`.
    pub kind: &'static str,
    /// Project key, or component id.
    pub id: String,
    /// Project or component name (component: `PROJECT/name`).
    pub name: String,
    pub to: String,
}

/// An access group left in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRefused {
    pub group: String,
    pub reason: String,
}

/// What the connector did instead of (or before) a plain deactivation; recorded in the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// Why the product refused to deactivate, in its own words (empty when it did not refuse).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refusal: String,
    /// Every group that grants access on this target, and where that list came from.
    pub access_groups: Vec<String>,
    pub access_groups_from: String,
    /// Access groups the user was removed from.
    pub groups_removed: Vec<String>,
    /// Access groups the product would not let the bridge change, with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups_refused: Vec<GroupRefused>,
    /// Leads handed to `lead_successor` before deactivating.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leads_moved: Vec<LeadMove>,
}

/// One attempted removal: `Ok(true)` removed, `Ok(false)` was not a member, `Err` the product's
/// reason for refusing.
pub(crate) type Removal = (String, Result<bool, String>);

/// Case-insensitive union, first spelling kept, order kept.
pub(crate) fn union(lists: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in lists.iter().flat_map(|l| l.iter()) {
        let g = g.trim();
        if !g.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(g)) {
            out.push(g.to_string());
        }
    }
    out
}

/// Whether `group` is one of `policy.protected_groups` (case-insensitive).
pub(crate) fn is_protected(offboarding: &Offboarding, group: &str) -> bool {
    offboarding.protected_groups.iter().any(|p| p.trim().eq_ignore_ascii_case(group))
}

/// The refusal recorded for a protected access group the user holds.
pub(crate) const PROTECTED: &str = "in policy.protected_groups, which scimbridge never changes";

/// Where the product's own screens do this by hand.
fn where_by_hand(product: Product) -> &'static str {
    match product {
        Product::Jira => "Jira administration → User management",
        Product::Confluence => "Confluence administration → Users",
        Product::Crowd => "the Crowd console → Users",
        Product::Bitbucket => "Bitbucket administration → Users",
    }
}

/// The outcome of a group fallback, from the attempted removals. Success only when the user is
/// out of every access group; otherwise a permanent failure that names the groups left, the
/// product's reason, and what the admin must do. `still_privileged` (e.g. a System
/// Administrator the bridge may not edit) keeps the outcome a failure even when every group went.
pub(crate) fn conclude(
    product: Product,
    username: &str,
    report: &mut Fallback,
    removals: Vec<Removal>,
    still_privileged: Option<String>,
) -> Result<Effect, Failure> {
    for (group, result) in removals {
        match result {
            Ok(true) => report.groups_removed.push(group),
            Ok(false) => {}
            Err(reason) => report.groups_refused.push(GroupRefused { group, reason }),
        }
    }
    let refused = format!("{} refused to deactivate {username}: {}", product_name(product), report.refusal);
    if report.access_groups.is_empty() {
        return Err(Failure::permanent(format!(
            "{refused}. No access group is known to fall back to ({}); add the groups that grant access to \
             license_groups of this target, or deactivate {username} by hand in {}",
            report.access_groups_from,
            where_by_hand(product)
        )));
    }
    let removed = if report.groups_removed.is_empty() {
        String::new()
    } else {
        format!(" scimbridge removed {username} from {}.", report.groups_removed.join(", "))
    };
    if !report.groups_refused.is_empty() {
        let left: Vec<String> = report.groups_refused.iter().map(|r| format!("{} ({})", r.group, r.reason)).collect();
        let names: Vec<&str> = report.groups_refused.iter().map(|r| r.group.as_str()).collect();
        return Err(Failure::permanent(format!(
            "{refused}.{removed} {username} still has access through {}. By hand: remove {username} from {} in \
             the user directory that owns them (the LDAP/AD server or Crowd; a read-only directory cannot be \
             changed from {}), or disable {username} there and synchronise the directory; then drop this job \
             (scimbridge jobs drop) — or retry it once the directory changed (scimbridge jobs retry)",
            left.join("; "),
            names.join(", "),
            product_name(product)
        )));
    }
    if let Some(why) = still_privileged {
        return Err(Failure::permanent(format!("{refused}.{removed} {why}")));
    }
    Ok(Effect::AccessRemovedByGroups)
}

fn product_name(product: Product) -> &'static str {
    match product {
        Product::Jira => "Jira",
        Product::Confluence => "Confluence",
        Product::Crowd => "Crowd",
        Product::Bitbucket => "Bitbucket",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(groups: &[&str]) -> Fallback {
        Fallback {
            refusal: "directory is read only".into(),
            access_groups: groups.iter().map(|g| g.to_string()).collect(),
            access_groups_from: "license_groups".into(),
            ..Fallback::default()
        }
    }

    #[test]
    fn union_ignores_case_blanks_and_duplicates() {
        let a = vec!["jira-software-users".to_string(), " ".into()];
        let b = vec!["JIRA-software-users".to_string(), "jira-core-users".into()];
        assert_eq!(union(&[&a, &b]), vec!["jira-software-users", "jira-core-users"]);
    }

    #[test]
    fn every_group_removed_is_access_removed_by_groups() {
        let mut r = report(&["a", "b"]);
        let e = conclude(Product::Jira, "al", &mut r, vec![("a".into(), Ok(true)), ("b".into(), Ok(false))], None);
        assert_eq!(e, Ok(Effect::AccessRemovedByGroups));
        assert_eq!(r.groups_removed, vec!["a"]);
    }

    #[test]
    fn a_refused_group_is_a_dead_letter_saying_what_to_do() {
        let mut r = report(&["a", "ldap-users"]);
        let e = conclude(
            Product::Jira,
            "al",
            &mut r,
            vec![
                ("a".into(), Ok(true)),
                ("ldap-users".into(), Err("403: directory 'Corp' does not allow updates".into())),
            ],
            None,
        );
        let Err(Failure::Permanent { reason }) = e else { panic!("{e:?}") };
        for part in ["Jira refused to deactivate al", "removed al from a", "remove al from ldap-users", "Corp", "jobs"]
        {
            assert!(reason.contains(part), "{part:?} missing from {reason}");
        }
    }

    #[test]
    fn no_known_access_group_says_to_configure_license_groups() {
        let mut r = report(&[]);
        let e = conclude(Product::Crowd, "al", &mut r, vec![], None);
        assert!(matches!(e, Err(Failure::Permanent { reason }) if reason.contains("license_groups")));
    }

    #[test]
    fn a_user_still_privileged_is_not_reported_done() {
        let mut r = report(&["a"]);
        let e = conclude(Product::Jira, "al", &mut r, vec![("a".into(), Ok(true))], Some("ask a sysadmin".into()));
        assert!(matches!(e, Err(Failure::Permanent { reason }) if reason.contains("ask a sysadmin")));
    }
}
