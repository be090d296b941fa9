//! The Confluence call sequences.

use std::time::Instant;

use serde_json::Value;

use super::request as rq;
use super::response::{self as rs, Task};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::request::{random_password, Request};
use crate::atlassian::version::CONFLUENCE_ADMIN_USER_REST;
use crate::atlassian::{Action, Effect, Failure};

pub(in crate::atlassian) async fn execute(s: &mut Session<'_>, action: &Action) -> Result<Effect, Failure> {
    if let Action::CreateUser { username, .. } = action {
        // Before any call: the reason is precise and nothing is sent.
        if let Some(reason) = rq::invalid_username(username) {
            return Err(Failure::permanent(format!("{reason}: {username:?}")));
        }
    }
    if matches!(
        action,
        Action::CreateUser { .. } | Action::Deactivate { .. } | Action::Reactivate { .. } | Action::Delete { .. }
    ) {
        require_admin_user_rest(s).await?;
    }
    match action {
        Action::CreateUser { username, display_name, email } => create(s, username, display_name, email).await,
        Action::Deactivate { username } => {
            // A refusal falls back to the access groups; a 404 confirmed by `GET /user` is no
            // such account (then there are no sessions to speak of).
            let effect = super::fallback::deactivate(s, username).await?;
            if effect == Effect::NoSuchAccount {
                return Ok(effect);
            }
            s.note(
                "sessions not ended: Confluence Data Center has no REST API to end a user's sessions; a disabled \
                 user cannot log in again, open sessions last until they expire",
            );
            Ok(effect)
        }
        Action::Reactivate { username } => write(s, &rq::enable(username)).await,
        Action::Delete { username } => delete(s, username).await,
        Action::RemoveLicense { username, groups } => {
            for group in groups {
                if removal(s, username, &rq::remove_from_group(username, group)).await? == Effect::NoSuchAccount {
                    return Ok(Effect::NoSuchAccount);
                }
            }
            Ok(Effect::Applied)
        }
        Action::AddToGroup { username, group } => write(s, &rq::add_to_group(username, group)).await,
        Action::RemoveFromGroup { username, group } => {
            removal(s, username, &rq::remove_from_group(username, group)).await
        }
        Action::CreateGroup { group } => super::group::create(s, group).await,
        Action::DeleteGroup { group } => super::group::delete(s, group).await,
        Action::UpdateProfile { username, display_name, email } => {
            super::profile::update(s, username, display_name, email).await
        }
        // `Connector::execute` filters unsupported kinds first; kept for exhaustiveness.
        Action::Anonymize { .. } => {
            Err(Failure::permanent("Confluence DC has no REST endpoint for user anonymization"))
        }
    }
}

pub(in crate::atlassian) async fn health(s: &mut Session<'_>) -> Result<(), Failure> {
    let reply = expect_success(s, &rq::current_user()).await?;
    if reply.json().as_ref().is_some_and(rs::is_anonymous) {
        return Err(Failure::permanent(
            "Confluence treated the bridge as the anonymous user: the token was not accepted",
        ));
    }
    Ok(())
}

/// The admin user REST (create, disable, enable, delete) exists from 8.4; an older release is
/// refused with the reason instead of a 404 per call.
async fn require_admin_user_rest(s: &mut Session<'_>) -> Result<(), Failure> {
    match s.version().await? {
        Some(v) if !v.at_least(CONFLUENCE_ADMIN_USER_REST) => Err(Failure::permanent(format!(
            "Confluence {v} has no REST API to create, disable, enable or delete users: it arrived in 8.4 \
             (CONFSERVER-87290/87291/87292); upgrade Confluence, or manage this user by hand"
        ))),
        _ => Ok(()),
    }
}

/// An idempotent write (disable, enable, membership): any 2xx is done.
async fn write(s: &mut Session<'_>, req: &Request) -> Result<Effect, Failure> {
    expect_success(s, req).await.map(|_| Effect::Applied)
}

/// A disable or membership removal (idempotent writes). Their 404 can mean the user or the group
/// is missing (atlassian-dc.md §3), so a 404 is "no such account" only when `GET /user` confirms
/// with a 404 of its own; otherwise the original answer is the failure.
async fn removal(s: &mut Session<'_>, username: &str, req: &Request) -> Result<Effect, Failure> {
    let reply = s.send(req).await?;
    if reply.is_success() {
        return Ok(Effect::Applied);
    }
    if reply.status == 404 {
        let user = s.send(&rq::get_user(username)).await?;
        if user.status == 404 && user.json().is_some_and(|v| v.get("statusCode").is_some()) {
            return Ok(Effect::NoSuchAccount);
        }
    }
    Err(failure(&reply, s.now()))
}

async fn create(s: &mut Session<'_>, username: &str, full_name: &str, email: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::create_user(username, full_name, email, &random_password())).await?;
    match reply.status {
        409 => Ok(Effect::AlreadyDone),
        402 => Err(Failure::permanent("402 Payment Required: Confluence has no licence seat left for a new user")),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

/// `DELETE` answers 202 with a long task; poll it until done or the deadline (§3).
async fn delete(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::delete_user(username)).await?;
    if reply.status == 404 {
        return Ok(Effect::AlreadyDone);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    if reply.status != 202 {
        return Ok(Effect::Applied);
    }
    let Some(task) = reply.json().as_ref().and_then(rs::submission_id) else {
        return Err(Failure::permanent("Confluence accepted the delete but sent no long task id"));
    };
    tracing::info!(username = %crate::redact::Pii(username), task_id = %task, "Confluence user deletion started.");
    let policy = s.poll().clone();
    let deadline = Instant::now() + policy.deadline;
    tokio::time::sleep(policy.first_delay).await;
    loop {
        let status = s.send(&rq::long_task(&task)).await?;
        if !status.is_success() {
            // 404: the task is gone (finished long ago or on a restarted node). Ask the user.
            if status.status == 404 {
                return confirm_gone(s, username).await;
            }
            return Err(failure(&status, s.now()));
        }
        match rs::task(&status.json().unwrap_or(Value::Null)) {
            Task::Succeeded => return Ok(Effect::Applied),
            Task::Failed(reason) => return Err(Failure::permanent(reason)),
            Task::Running => {}
        }
        if Instant::now() + policy.interval > deadline {
            return Err(Failure::Retryable {
                reason: format!("Confluence delete task {task} still running at the poll deadline"),
                retry_after: Some(policy.interval),
            });
        }
        tokio::time::sleep(policy.interval).await;
    }
}

async fn confirm_gone(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::get_user(username)).await?;
    match reply.status {
        404 => Ok(Effect::Applied),
        _ if reply.is_success() => {
            Err(Failure::retry(format!("Confluence lost the delete task and {username} still exists")))
        }
        _ => Err(failure(&reply, s.now())),
    }
}
