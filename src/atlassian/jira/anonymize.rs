//! Jira GDPR anonymization (atlassian-dc.md §2.5, review finding 7): validate → schedule → poll,
//! keyed by the immutable user key, one task per instance at a time.
//!
//! - Validation refusals (HTTP 400) carry `errors` = operation → ErrorCollection; every message
//!   is kept in the failure ("USER_DISABLE: … directory … is read-only").
//! - The new owner of the user's projects, components and filter subscriptions is the target's
//!   `anonymize_new_owner` (resolved to its key), never the bridge's own account.
//! - A task outlives one attempt (an LDAP user took 5.5 min, J10): the attempt ends retryable
//!   with [`crate::atlassian::Execution::resume`] = the task id, and the next attempt follows
//!   the same task instead of scheduling it again into its own 409.
//! - Scheduling "Requires system admin permission" (10.3 spec): a 403 says so.

use std::time::Instant;

use serde_json::Value;

use super::client::lookup;
use super::request as rq;
use super::response::{self as rs, Progress};
use crate::atlassian::classify::{failure, Reply};
use crate::atlassian::client::Session;
use crate::atlassian::{Effect, Failure};

/// Prefix of the resume token of a running anonymization task.
const RESUME: &str = "jira-anonymization-task:";

pub(super) async fn anonymize(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    if let Some(task) = s.resume_in.as_deref().and_then(|r| r.strip_prefix(RESUME)).map(str::to_string) {
        tracing::info!(username = %crate::redact::Pii(username), task_id = %task, "Following the Jira anonymization task an earlier attempt scheduled.");
        return poll(s, &task, true).await;
    }
    // includeDeleted: a deleted user can (and should) still be anonymized. A 404 even then means
    // no user carries this name any more, which is what an anonymized (renamed) user looks like.
    let Some(user) = lookup(s, username, true).await? else {
        tracing::info!(username = %crate::redact::Pii(username), "Jira user not found by name; treating anonymization as done.");
        return Ok(Effect::AlreadyDone);
    };
    let owner = new_owner_key(s).await?;

    let check = s.send(&rq::validate_anonymization(&user.key)).await?;
    let body = check.json().unwrap_or(Value::Null);
    let errors = rs::anonymization_errors(&body);
    if check.status == 400 && !errors.is_empty() {
        return Err(refused(username, &user.key, &errors));
    }
    if !check.is_success() {
        return Err(failure(&check, s.now()));
    }
    if !errors.is_empty() || body.get("success").and_then(Value::as_bool) == Some(false) {
        return Err(refused(username, &user.key, &errors));
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
    if scheduled.status == 403 {
        return Err(not_sysadmin(&scheduled));
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
    poll(s, &task, false).await
}

fn refused(username: &str, key: &str, errors: &str) -> Failure {
    let why = if errors.is_empty() { "validation failed without a reason" } else { errors };
    Failure::permanent(format!("Jira refused to anonymize {username} ({key}): {why}"))
}

fn not_sysadmin(reply: &Reply) -> Failure {
    Failure::permanent(format!(
        "403 Forbidden: scheduling a Jira anonymization requires a System Administrator (Jira Administrator is not \
         enough); give the bridge's account the Jira System Administrators global permission{}",
        match crate::atlassian::classify::error_summary(&reply.body) {
            d if d.is_empty() => String::new(),
            d => format!(" ({d})"),
        }
    ))
}

/// The key of the configured `anonymize_new_owner`.
async fn new_owner_key(s: &mut Session<'_>) -> Result<String, Failure> {
    let Some(owner) = s.connector().anonymize_new_owner().map(str::to_string) else {
        return Err(Failure::permanent(
            "anonymize_new_owner is not set for this Jira target: Jira transfers the anonymized user's projects, \
             components and filter subscriptions to that user; set anonymize_new_owner = \"USERNAME\" in its \
             [[target]] block",
        ));
    };
    match lookup(s, &owner, false).await? {
        Some(u) => Ok(u.key),
        None => Err(Failure::permanent(format!(
            "anonymize_new_owner {owner:?} is not a Jira user; name an existing (active) account"
        ))),
    }
}

/// Polls task `task` until it ends or the attempt's deadline. At the deadline the attempt is
/// retryable and leaves the task id to resume from. `resumed`: a 404 for the whole attempt then
/// means the task is gone (a restarted node), so the next attempt validates again.
async fn poll(s: &mut Session<'_>, task: &str, resumed: bool) -> Result<Effect, Failure> {
    let policy = s.poll().clone();
    let deadline = Instant::now() + policy.deadline;
    tokio::time::sleep(policy.first_delay).await;
    let mut seen = false;
    loop {
        let reply = s.send(&rq::anonymization_progress(task)).await?;
        // 404 happens when the poll reaches a node that has not seen the task yet: keep polling.
        if reply.is_success() {
            seen = true;
            match rs::progress(&reply.json().unwrap_or(Value::Null)) {
                Progress::Completed => return Ok(Effect::Applied),
                Progress::Failed(reason) => return Err(Failure::permanent(reason)),
                Progress::Interrupted => {
                    return Err(Failure::retry(format!(
                        "Jira anonymization task {task} was interrupted (its node died); it will be validated and scheduled again"
                    )))
                }
                Progress::Running => {}
            }
        } else if reply.status != 404 {
            s.resume_out = Some(format!("{RESUME}{task}"));
            return Err(failure(&reply, s.now()));
        }
        if Instant::now() + policy.interval > deadline {
            if resumed && !seen {
                return Err(Failure::retry(format!(
                    "Jira no longer knows anonymization task {task} (404); it will be validated and scheduled again"
                )));
            }
            s.resume_out = Some(format!("{RESUME}{task}"));
            return Err(Failure::Retryable {
                reason: format!("Jira anonymization task {task} still running; the next attempt follows it"),
                retry_after: Some(policy.interval),
            });
        }
        tokio::time::sleep(policy.interval).await;
    }
}
