//! Crowd refuses `PUT /user` for a user of a directory the application may not update (LDAP/AD
//! read-only, or without "manage user status locally"): `ApplicationService.updateUser` throws
//! `ApplicationPermissionException`, answered 403 (atlassian-calls-review.md R3, finding 3).
//! Then the user is removed from the target's `license_groups` — the groups the Crowd
//! applications are configured to let in. Crowd has no API telling which groups those are, so
//! the list is the admin's. A membership in a read-only directory is refused the same way
//! (`removeUserFromGroup` → `ApplicationPermissionException`, 403) and ends as a dead letter.

use super::request as rq;
use super::response as rs;
use crate::atlassian::classify::{error_summary, failure, Reply};
use crate::atlassian::client::Session;
use crate::atlassian::fallback::{self, Fallback, Removal};
use crate::atlassian::{Effect, Failure, Product};

/// A 403 to a deactivation is Crowd refusing to update the user (the application's own
/// credentials were fine for the read just before).
pub(super) fn is_refusal(reply: &Reply) -> bool {
    reply.status == 403
}

pub(super) async fn after_refusal(s: &mut Session<'_>, username: &str, reply: &Reply) -> Result<Effect, Failure> {
    let mut report = Fallback {
        refusal: format!("403 {}", error_summary(&reply.body)),
        access_groups: fallback::union(&[&s.offboarding().license_groups]),
        access_groups_from: "license_groups (Crowd does not tell which groups its applications admit)".into(),
        ..Fallback::default()
    };
    let mut removals: Vec<Removal> = Vec::new();
    for group in report.access_groups.clone() {
        if fallback::is_protected(s.offboarding(), &group) {
            // Crowd's membership is not read first; a protected group is never touched, so it is
            // reported as left in place.
            removals.push((group, Err(fallback::PROTECTED.into())));
            continue;
        }
        let r = s.send(&rq::remove_from_group(username, &group)).await?;
        let outcome = if r.is_success() {
            Ok(true)
        } else if rs::is_missing_membership(&r) {
            Ok(false)
        } else if matches!(r.status, 429 | 500..=599) {
            return Err(failure(&r, s.now()));
        } else {
            Err(format!("{} {}", r.status, error_summary(&r.body)))
        };
        removals.push((group, outcome));
    }
    let result = fallback::conclude(Product::Crowd, username, &mut report, removals, None);
    s.fallback = Some(report);
    result
}
