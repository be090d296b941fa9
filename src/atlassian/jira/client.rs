//! The Jira call sequences: read first where Jira is not idempotent, then write.

use super::request as rq;
use super::response::{self as rs, JiraUser};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{combine, expect_success, Session};
use crate::atlassian::version::{JIRA_ACTIVE_OVER_REST, JIRA_SESSION_REST};
use crate::atlassian::{Action, Effect, Failure};

pub(in crate::atlassian) async fn execute(s: &mut Session<'_>, action: &Action) -> Result<Effect, Failure> {
    match action {
        Action::CreateUser { username, display_name, email } => create(s, username, display_name, email).await,
        Action::Deactivate { username } => deactivate(s, username).await,
        Action::Reactivate { username } => reactivate(s, username).await,
        Action::Delete { username } => delete(s, username).await,
        Action::Anonymize { username } => super::anonymize::anonymize(s, username).await,
        Action::RemoveLicense { username, groups } => {
            let mut effects = Vec::new();
            for group in groups {
                effects.push(remove_from_group(s, username, group).await?);
            }
            Ok(combine(&effects))
        }
        Action::AddToGroup { username, group } => add_to_group(s, username, group).await,
        Action::RemoveFromGroup { username, group } => remove_from_group(s, username, group).await,
        Action::CreateGroup { group } => super::group::create(s, group).await,
        Action::DeleteGroup { group } => super::group::delete(s, group).await,
        Action::UpdateProfile { username, display_name, email } => {
            super::profile::update(s, username, display_name, email).await
        }
    }
}

pub(in crate::atlassian) async fn health(s: &mut Session<'_>) -> Result<(), Failure> {
    expect_success(s, &rq::myself()).await.map(|_| ())
}

/// `GET /user`: `Ok(None)` on Jira's 404 for a missing user.
pub(super) async fn lookup(
    s: &mut Session<'_>,
    username: &str,
    include_deleted: bool,
) -> Result<Option<JiraUser>, Failure> {
    let reply = s.send(&rq::get_user(username, include_deleted)).await?;
    if rs::is_no_such_user(&reply) {
        return Ok(None);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    reply
        .json()
        .as_ref()
        .and_then(rs::user)
        .map(Some)
        .ok_or_else(|| Failure::permanent("GET /user answered 2xx without a user key and name"))
}

async fn require(s: &mut Session<'_>, username: &str) -> Result<JiraUser, Failure> {
    lookup(s, username, false)
        .await?
        .ok_or_else(|| Failure::permanent(format!("Jira has no user named {username:?} (404)")))
}

async fn create(s: &mut Session<'_>, username: &str, display_name: &str, email: &str) -> Result<Effect, Failure> {
    // Jira answers 400 on a duplicate name, indistinguishable from invalid input: read first.
    if lookup(s, username, false).await?.is_some() {
        return Ok(Effect::AlreadyDone);
    }
    expect_success(s, &rq::create_user(username, display_name, email)).await?;
    Ok(Effect::Applied)
}

/// Why this Jira cannot (de)activate over REST: a release before 8.3, named when it is known.
fn before_active_over_rest(release: Option<&str>) -> Failure {
    let which = match release {
        Some(v) => format!("Jira {v} cannot (de)activate users over REST"),
        None => "This Jira ignored 'active' in PUT /rest/api/2/user (it answered 'no value found to be changed' \
                 for a user it had just reported in the other state), so it cannot (de)activate users over REST"
            .to_string(),
    };
    Failure::permanent(format!(
        "{which}: PUT /rest/api/2/user honours 'active' from Jira 8.3 (JRASERVER-37294), earlier releases ignore \
         it; upgrade Jira, or (de)activate this user by hand in User management"
    ))
}

/// Refuses a release that ignores `active` in `PUT /user` before anything is sent.
async fn require_active_over_rest(s: &mut Session<'_>) -> Result<(), Failure> {
    match s.version().await?.filter(|v| !v.at_least(JIRA_ACTIVE_OVER_REST)) {
        Some(v) => Err(before_active_over_rest(Some(&v.to_string()))),
        None => Ok(()),
    }
}

async fn set_active(s: &mut Session<'_>, username: &str, active: bool) -> Result<Effect, Failure> {
    require_active_over_rest(s).await?;
    let user = require(s, username).await?;
    apply_active(s, username, &user, active).await
}

async fn apply_active(s: &mut Session<'_>, username: &str, user: &JiraUser, active: bool) -> Result<Effect, Failure> {
    if user.active == active {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(&rq::set_active(username, active)).await?;
    // The read just saw the other state, so "nothing to change" means Jira ignored `active`
    // (a release before 8.3 whose version was not readable): never a success.
    if rs::is_nothing_to_change(&reply) {
        return Err(before_active_over_rest(None));
    }
    if let Some(refusal) = super::fallback::refusal(&reply).filter(|_| !active) {
        return super::fallback::after_refusal(s, username, refusal).await;
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    if rs::put_ignored_active(&reply, active) {
        return Err(Failure::permanent(format!(
            "Jira answered {} to PUT /user but the user is still active={}; this Jira may not support changing 'active' over REST (JRASERVER-36639)",
            reply.status, !active
        )));
    }
    Ok(Effect::Applied)
}

async fn deactivate(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    require_active_over_rest(s).await?;
    let Some(user) = lookup(s, username, false).await? else { return Ok(Effect::NoSuchAccount) };
    let effect = apply_active(s, username, &user, false).await?;
    // Also when the user was already inactive: an earlier attempt may have deactivated and then
    // failed to end the sessions, and ending none is harmless.
    end_sessions(s, username).await?;
    Ok(effect)
}

/// `DELETE /user/session/{u}` where the release has it (9.11+); before, a note says the sessions
/// were not ended, instead of a 404 silently taken as done (review finding 6).
async fn end_sessions(s: &mut Session<'_>, username: &str) -> Result<(), Failure> {
    let release = s.version().await?;
    if let Some(v) = release.filter(|v| !v.at_least(JIRA_SESSION_REST)) {
        s.note(format!(
            "sessions not ended: not possible on this version (Jira {v} has no REST API to end a user's sessions; \
             it arrived in 9.11, KB 'Invalidating user sessions in Jira Data Center'); open sessions and \
             remember-me logins last until they expire"
        ));
        return Ok(());
    }
    let reply = s.send(&rq::kill_sessions(username)).await?;
    if reply.status == 404 {
        // 9.11+ answers 404 only for an unknown user; a release that could not be read may lack
        // the resource altogether. Either way nothing was ended: say so.
        s.note(format!(
            "sessions not ended: DELETE /rest/api/2/user/session answered 404 (Jira {} before 9.11, or the user is gone)",
            release.map_or_else(|| "of unknown version".to_string(), |v| v.to_string())
        ));
        return Ok(());
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(())
}

async fn reactivate(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    set_active(s, username, true).await
}

async fn delete(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::delete_user(username)).await?;
    match reply.status {
        404 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        // 400 here means Jira refuses (assigned issues, comments, read-only directory): an
        // operator must reassign or choose deactivation, so it is permanent with the reason.
        _ => Err(failure(&reply, s.now())),
    }
}

async fn add_to_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::add_to_group(username, group)).await?;
    if rs::is_already_member(&reply) {
        return Ok(Effect::AlreadyDone);
    }
    if reply.status == 400 {
        // The message text is not a stable contract: confirm by reading the membership.
        let member = lookup(s, username, false).await?.is_some_and(|u| u.groups.iter().any(|g| g == group));
        if member {
            return Ok(Effect::AlreadyDone);
        }
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(Effect::Applied)
}

async fn remove_from_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    let Some(user) = lookup(s, username, false).await? else { return Ok(Effect::NoSuchAccount) };
    if !user.groups.iter().any(|g| g == group) {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(&rq::remove_from_group(username, group)).await?;
    if rs::is_not_member(&reply) {
        return Ok(Effect::AlreadyDone);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(Effect::Applied)
}
