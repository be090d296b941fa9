//! Confluence cannot disable a user of a directory without `UPDATE_USER` (LDAP/AD read-only,
//! Crowd, delegated LDAP): embedded Crowd throws `OperationNotPermittedException … Cannot update
//! user 'x' because directory 'y' does not allow updates` (CWD-4923, atlassian-calls-review.md
//! C5). A public decompiled copy of `CrowdDisabledUserManager.disableUser` catches that
//! exception and only logs "Could not disable user", so the REST call can answer 204 with the
//! user still enabled; the REST status is not documented. So a disable is confirmed by reading
//! the user back (`expand=status`), and an error answer naming the read-only directory counts
//! as the same refusal.
//!
//! Then the user is removed from the target's `license_groups` plus every group holding the
//! global "can use" permission (`GET /rest/api/permissions`, operation `application`/`use`;
//! 9.x+ — without it, `license_groups` only). Memberships are read back afterwards, because a
//! read-only group membership may also be refused silently.

use serde_json::Value;

use super::request as rq;
use super::response as rs;
use crate::atlassian::classify::{error_summary, failure, Reply};
use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::fallback::{self, Fallback, Removal};
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure, Product};

/// Confluence's REST base (as in `request.rs`).
const API: &str = "/rest/api";

/// Most groups read from `user/memberof` (one page; a user in more is reported, not guessed).
const MEMBERSHIP_PAGE: u32 = 500;

/// `GET /rest/api/permissions`: every global permission grant (Confluence 9.x+ reference).
fn global_permissions() -> Request {
    Request::get(format!("{API}/permissions"))
}

/// `GET /rest/api/user/memberof?username=&limit=`: the user's groups.
fn member_of(username: &str) -> Request {
    Request::get(format!("{API}/user/memberof")).query("username", username).query("limit", MEMBERSHIP_PAGE.to_string())
}

/// An error answer that names a directory refusing updates.
fn names_read_only_directory(reply: &Reply) -> bool {
    let text = reply.body.to_ascii_lowercase();
    ["does not allow updates", "operationnotpermitted", "applicationpermission", "read-only", "read only"]
        .iter()
        .any(|n| text.contains(n))
}

/// Groups granted the global `application`/`use` permission ("can use").
fn can_use_groups(body: &Value) -> Vec<String> {
    body.as_array()
        .map(|grants| {
            grants
                .iter()
                .filter(|g| {
                    g.pointer("/operation/targetType").and_then(Value::as_str) == Some("application")
                        && g.pointer("/operation/operationKey").and_then(Value::as_str) == Some("use")
                        && g.pointer("/subject/type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case("group"))
                })
                .filter_map(|g| {
                    g.pointer("/subject/name").or_else(|| g.pointer("/subject/displayName")).and_then(Value::as_str)
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn group_names(body: &Value) -> Vec<String> {
    body.get("results")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Disable, confirm, and fall back to the access groups when Confluence kept the user enabled.
pub(super) async fn deactivate(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::disable(username)).await?;
    let refusal = if reply.is_success() {
        let status = s.send(&rq::get_user_status(username)).await?;
        if !status.is_success() {
            return Err(failure(&status, s.now()));
        }
        match status.json().as_ref().and_then(rs::is_enabled) {
            Some(true) => format!(
                "{} to PUT /admin/user/{username}/disable, but the user is still enabled (a directory without \
                 UPDATE_USER, CWD-4923)",
                reply.status
            ),
            Some(false) => return Ok(Effect::Applied),
            None => {
                tracing::warn!(username = %crate::redact::Pii(username), "Confluence did not report the user's status; the disable is not confirmed.");
                return Ok(Effect::Applied);
            }
        }
    } else if names_read_only_directory(&reply) {
        format!("{} {}", reply.status, error_summary(&reply.body))
    } else {
        if reply.status == 404 {
            // A 404 means no such user only when Confluence's own user lookup says so (a wrong
            // context path also answers 404).
            let user = s.send(&rq::get_user(username)).await?;
            if user.status == 404 && user.json().is_some_and(|v| v.get("statusCode").is_some()) {
                return Ok(Effect::NoSuchAccount);
            }
        }
        return Err(failure(&reply, s.now()));
    };
    let mut report = Fallback { refusal, ..Fallback::default() };
    let result = remove_access_groups(s, username, &mut report).await;
    s.fallback = Some(report);
    result
}

async fn memberships(s: &mut Session<'_>, username: &str) -> Result<Vec<String>, Failure> {
    let reply = expect_success(s, &member_of(username)).await?;
    Ok(group_names(&reply.json().unwrap_or(Value::Null)))
}

async fn remove_access_groups(s: &mut Session<'_>, username: &str, report: &mut Fallback) -> Result<Effect, Failure> {
    let configured = s.offboarding().license_groups.clone();
    let grants = s.send(&global_permissions()).await?;
    let can_use = if grants.is_success() { can_use_groups(&grants.json().unwrap_or(Value::Null)) } else { Vec::new() };
    report.access_groups = fallback::union(&[&configured, &can_use]);
    report.access_groups_from = if grants.is_success() {
        "license_groups + the groups with the global \"can use\" permission (GET /rest/api/permissions)".into()
    } else {
        format!("license_groups only: GET /rest/api/permissions answered {} (before Confluence 9.x)", grants.status)
    };
    let before = memberships(s, username).await?;
    let held: Vec<String> =
        report.access_groups.iter().filter(|g| before.iter().any(|b| b.eq_ignore_ascii_case(g))).cloned().collect();
    let mut answers = Vec::new();
    let mut removals: Vec<Removal> = Vec::new();
    let (held, protected): (Vec<String>, Vec<String>) =
        held.into_iter().partition(|g| !fallback::is_protected(s.offboarding(), g));
    removals.extend(protected.into_iter().map(|g| (g, Err(fallback::PROTECTED.into()))));
    for group in &held {
        let r = s.send(&rq::remove_from_group(username, group)).await?;
        if !r.is_success() && !names_read_only_directory(&r) {
            return Err(failure(&r, s.now()));
        }
        answers.push((group.clone(), r));
    }
    let after = if held.is_empty() { Vec::new() } else { memberships(s, username).await? };
    removals.extend(answers.into_iter().map(|(group, r)| {
        let kept = after.iter().any(|a| a.eq_ignore_ascii_case(&group));
        let outcome = match (r.is_success(), kept) {
            (true, false) => Ok(true),
            (true, true) => Err(format!("{} but the membership is still there (read-only directory)", r.status)),
            (false, _) => Err(format!("{} {}", r.status, error_summary(&r.body))),
        };
        (group, outcome)
    }));
    fallback::conclude(Product::Confluence, username, report, removals, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn can_use_groups_are_read_from_the_global_permissions() {
        let body = json!([
            {"operation": {"targetType": "application", "operationKey": "use"}, "subject": {"type": "group", "displayName": "confluence-users"}},
            {"operation": {"targetType": "application", "operationKey": "administer"}, "subject": {"type": "group", "displayName": "confluence-administrators"}},
            {"operation": {"targetType": "application", "operationKey": "use"}, "subject": {"type": "user", "displayName": "Al"}},
            {"operation": {"targetType": "space", "operationKey": "create"}, "subject": {"type": "group", "displayName": "x"}}
        ]);
        assert_eq!(can_use_groups(&body), vec!["confluence-users"]);
    }

    #[test]
    fn read_only_directory_errors_are_recognised() {
        let r = Reply {
            status: 500,
            headers: vec![],
            body: json!({"message": "com.atlassian.crowd.exception.OperationNotPermittedException: Cannot update group 'g' because directory 'LDAP' does not allow updates."}).to_string(),
        };
        assert!(names_read_only_directory(&r));
        assert!(!names_read_only_directory(&Reply { status: 500, headers: vec![], body: "boom".into() }));
        assert_eq!(member_of("a b").target(), "/rest/api/user/memberof?username=a%20b&limit=500");
        assert_eq!(group_names(&json!({"results": [{"type": "group", "name": "g"}]})), vec!["g"]);
    }
}
