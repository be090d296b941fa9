//! The Bitbucket call sequences.

use serde_json::Value;

use super::request as rq;
use super::response as rs;
use crate::atlassian::classify::failure;
use crate::atlassian::client::{combine, expect_success, Session};
use crate::atlassian::request::random_password;
use crate::atlassian::{Action, Effect, Failure};

/// Pages of group names read before giving up (500 per page).
const MAX_PAGES: usize = 20;

pub(in crate::atlassian) async fn execute(s: &mut Session<'_>, action: &Action) -> Result<Effect, Failure> {
    match action {
        Action::CreateUser { username, display_name, email } => create(s, username, display_name, email).await,
        Action::Delete { username } => delete(s, username).await,
        Action::Anonymize { username } => anonymize(s, username).await,
        Action::RemoveLicense { username, groups } => {
            if let Some(done) = super::fallback::immutable_groups(s, username, groups).await? {
                return Ok(done);
            }
            let mut effects = Vec::new();
            for group in groups {
                effects.push(remove_from_group(s, username, group).await?);
            }
            // A licence also comes from a global permission granted to the user directly.
            effects.push(revoke_direct_permission(s, username).await?);
            s.note(
                "sessions not ended: Bitbucket Data Center has no REST API to end a user's sessions; without a \
                 licence the user can no longer log in or use Git over HTTP/SSH",
            );
            Ok(combine(&effects))
        }
        Action::AddToGroup { username, group } => add_to_group(s, username, group).await,
        Action::RemoveFromGroup { username, group } => remove_from_group(s, username, group).await,
        Action::CreateGroup { group } => super::group::create(s, group).await,
        Action::DeleteGroup { group } => super::group::delete(s, group).await,
        Action::UpdateProfile { username, display_name, email } => {
            super::profile::update(s, username, display_name, email).await
        }
        // `Connector::execute` turns these into "send RemoveLicense / AddToGroup instead".
        Action::Deactivate { .. } | Action::Reactivate { .. } => {
            Err(Failure::permanent("Bitbucket DC has no (de)activation API; use group membership"))
        }
    }
}

pub(in crate::atlassian) async fn health(s: &mut Session<'_>) -> Result<(), Failure> {
    expect_success(s, &rq::health()).await.map(|_| ())
}

async fn create(s: &mut Session<'_>, username: &str, display_name: &str, email: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::create_user(username, display_name, email, &random_password())).await?;
    match reply.status {
        409 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        // 403 here is the licence limit as often as a permission problem; both need a person.
        _ => Err(failure(&reply, s.now())),
    }
}

async fn delete(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::delete_user(username)).await?;
    match reply.status {
        404 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

/// Erasure needs a deleted user (409 otherwise), so delete first, then check, then erase.
async fn anonymize(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let deleted = delete(s, username).await?;
    let check = s.send(&rq::erasure_check(username)).await?;
    match check.status {
        // Nothing by that name to erase any more: an earlier run finished the job.
        404 => return Ok(deleted),
        409 => return Err(Failure::retry("409 Conflict: Bitbucket does not consider the user deleted yet")),
        _ if check.is_success() => {}
        _ => return Err(failure(&check, s.now())),
    }
    expect_success(s, &rq::erase(username)).await?;
    Ok(Effect::Applied)
}

/// Whether the user is a direct member of `group`; `None` when Bitbucket has no such user (its
/// 404 with a JSON `errors` list: an HTML 404 is a wrong URL, not a missing user).
pub(super) async fn is_member(s: &mut Session<'_>, username: &str, group: &str) -> Result<Option<bool>, Failure> {
    let mut start = 0;
    for _ in 0..MAX_PAGES {
        let reply = s.send(&rq::user_groups(username, group, start)).await?;
        if reply.status == 404 && reply.json().is_some_and(|v| v.get("errors").is_some_and(Value::is_array)) {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(failure(&reply, s.now()));
        }
        let (names, next) = rs::group_page(&reply.json().unwrap_or(Value::Null));
        if names.iter().any(|n| n == group) {
            return Ok(Some(true));
        }
        match next {
            Some(n) => start = n,
            None => return Ok(Some(false)),
        }
    }
    Err(Failure::permanent(format!(
        "Bitbucket listed more than {MAX_PAGES} pages of groups matching {group:?} for {username}"
    )))
}

/// Revokes a licence-level global permission (LICENSED_USER, PROJECT_CREATE) granted to the user
/// directly, not through a group: `GET /admin/permissions/users?filter=` finds it, `DELETE
/// /admin/permissions/users?name=` ("Revoke all global permissions for a user", 8.14 OpenAPI)
/// removes it (review finding 9). The user keeps what groups grant. A direct ADMIN or SYS_ADMIN
/// is never revoked by the bridge (that DELETE would strip administrator rights too): the action
/// fails saying so, and the admin decides.
async fn revoke_direct_permission(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let mut start = 0;
    let mut granted = None;
    for _ in 0..MAX_PAGES {
        let reply = expect_success(s, &rq::users_with_permission(username, start)).await?;
        let (grants, next) = rs::permission_page(&reply.json().unwrap_or(Value::Null));
        if let Some((_, permission)) = grants.into_iter().find(|(name, _)| name.eq_ignore_ascii_case(username)) {
            granted = Some(permission);
            break;
        }
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    let Some(permission) = granted else {
        return Ok(Effect::AlreadyDone);
    };
    if !matches!(permission.as_str(), "LICENSED_USER" | "PROJECT_CREATE") {
        return Err(Failure::permanent(format!(
            "{username} holds the global permission {permission} directly, which also grants a licence; the bridge \
             never removes administrator rights: revoke it by hand in Administration > Global permissions if this \
             user must lose access"
        )));
    }
    let reply = s.send(&rq::revoke_user_permissions(username)).await?;
    match reply.status {
        404 => Ok(Effect::AlreadyDone),
        409 => Err(Failure::permanent(format!(
            "Bitbucket refused to revoke the global permission {permission} granted directly to {username} (409): \
             the bridge's account has a lower permission than the user, or is the user; revoke it by hand in \
             Administration > Global permissions"
        ))),
        _ if reply.is_success() => {
            s.note(format!("revoked the global permission {permission} granted directly to {username}"));
            Ok(Effect::Applied)
        }
        _ => Err(failure(&reply, s.now())),
    }
}

async fn add_to_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    match is_member(s, username, group).await? {
        None => return Err(Failure::permanent(format!("Bitbucket has no user named {username:?} (404)"))),
        Some(true) => return Ok(Effect::AlreadyDone),
        Some(false) => {}
    }
    expect_success(s, &rq::add_to_group(username, group)).await?;
    Ok(Effect::Applied)
}

async fn remove_from_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    match is_member(s, username, group).await? {
        None => return Ok(Effect::NoSuchAccount),
        Some(false) => return Ok(Effect::AlreadyDone),
        Some(true) => {}
    }
    expect_success(s, &rq::remove_from_group(username, group)).await?;
    Ok(Effect::Applied)
}
