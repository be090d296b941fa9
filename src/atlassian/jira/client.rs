//! The Jira call sequences: read first where Jira is not idempotent, then write.

use std::time::Instant;

use serde_json::Value;

use super::request as rq;
use super::response::{self as rs, JiraUser, Progress};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{combine, expect_success, Session};
use crate::atlassian::{Action, Effect, Failure};

pub(in crate::atlassian) async fn execute(s: &mut Session<'_>, action: &Action) -> Result<Effect, Failure> {
    match action {
        Action::CreateUser { username, display_name, email } => create(s, username, display_name, email).await,
        Action::Deactivate { username } => deactivate(s, username).await,
        Action::Reactivate { username } => reactivate(s, username).await,
        Action::Delete { username } => delete(s, username).await,
        Action::Anonymize { username } => anonymize(s, username).await,
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

/// `GET /user`: `Ok(None)` on 404.
async fn lookup(s: &mut Session<'_>, username: &str, include_deleted: bool) -> Result<Option<JiraUser>, Failure> {
    let reply = s.send(&rq::get_user(username, include_deleted)).await?;
    if reply.status == 404 {
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

async fn set_active(s: &mut Session<'_>, username: &str, active: bool) -> Result<Effect, Failure> {
    let user = require(s, username).await?;
    if user.active == active {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(&rq::set_active(username, active)).await?;
    if rs::is_nothing_to_change(&reply) {
        return Ok(Effect::AlreadyDone);
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
    let effect = set_active(s, username, false).await?;
    // Also when the user was already inactive: an earlier attempt may have deactivated and then
    // failed to end the sessions, and ending none is harmless.
    let reply = s.send(&rq::kill_sessions(username)).await?;
    if !reply.is_success() && reply.status != 404 {
        return Err(failure(&reply, s.now()));
    }
    Ok(effect)
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
    let user = require(s, username).await?;
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

/// Validate → schedule → poll (§2.5), keyed by the user key.
async fn anonymize(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    // includeDeleted: a deleted user can (and should) still be anonymized. A 404 even then means
    // no user carries this name any more, which is what an anonymized (renamed) user looks like.
    let Some(user) = lookup(s, username, true).await? else {
        tracing::info!(username = %crate::redact::Pii(username), "Jira user not found by name; treating anonymization as done.");
        return Ok(Effect::AlreadyDone);
    };
    let me = expect_success(s, &rq::myself()).await?;
    let owner = me
        .json()
        .as_ref()
        .and_then(|v| v.get("key").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| Failure::permanent("GET /myself answered without a user key"))?;

    let check = s.send(&rq::validate_anonymization(&user.key)).await?;
    if !check.is_success() {
        return Err(failure(&check, s.now()));
    }
    let body = check.json().unwrap_or(Value::Null);
    let errors = rs::anonymization_errors(&body);
    if !errors.is_empty() || body.get("success").and_then(Value::as_bool) == Some(false) {
        return Err(Failure::permanent(format!("Jira refused to anonymize {username} ({}): {errors}", user.key)));
    }

    let scheduled = s.send(&rq::schedule_anonymization(&user.key, &owner)).await?;
    if scheduled.status == 409 {
        // One anonymization at a time per instance: come back when the other one is done.
        let hint = crate::atlassian::classify::retry_after(&scheduled, s.now());
        return Err(Failure::Retryable {
            reason: "409 Conflict: another Jira anonymization is in progress".into(),
            retry_after: Some(hint.unwrap_or(s.poll().busy_retry_after)),
        });
    }
    if !scheduled.is_success() {
        return Err(failure(&scheduled, s.now()));
    }
    let task = scheduled
        .json()
        .as_ref()
        .and_then(rs::task_id)
        .ok_or_else(|| Failure::permanent("Jira scheduled the anonymization but sent no task id"))?;
    tracing::info!(username = %crate::redact::Pii(username), user_key = %user.key, task_id = %task, "Jira anonymization scheduled.");
    poll_anonymization(s, &task).await
}

async fn poll_anonymization(s: &mut Session<'_>, task: &str) -> Result<Effect, Failure> {
    let policy = s.poll().clone();
    let deadline = Instant::now() + policy.deadline;
    tokio::time::sleep(policy.first_delay).await;
    loop {
        let reply = s.send(&rq::anonymization_progress(task)).await?;
        // 404 happens when the poll reaches a node that has not seen the task yet: keep polling.
        if reply.is_success() {
            match rs::progress(&reply.json().unwrap_or(Value::Null)) {
                Progress::Completed => return Ok(Effect::Applied),
                Progress::Failed(reason) => return Err(Failure::permanent(reason)),
                Progress::Interrupted => {
                    return Err(Failure::retry(format!(
                        "Jira anonymization task {task} was interrupted (its node died)"
                    )))
                }
                Progress::Running => {}
            }
        } else if reply.status != 404 {
            return Err(failure(&reply, s.now()));
        }
        if Instant::now() + policy.interval > deadline {
            return Err(Failure::Retryable {
                reason: format!("Jira anonymization task {task} still running at the poll deadline"),
                retry_after: Some(policy.interval),
            });
        }
        tokio::time::sleep(policy.interval).await;
    }
}
