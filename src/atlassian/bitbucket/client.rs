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

/// Whether the user is a direct member of `group`; `Err` Permanent when the user is unknown.
async fn is_member(s: &mut Session<'_>, username: &str, group: &str) -> Result<bool, Failure> {
    let mut start = 0;
    for _ in 0..MAX_PAGES {
        let reply = s.send(&rq::user_groups(username, group, start)).await?;
        if reply.status == 404 {
            return Err(Failure::permanent(format!("Bitbucket has no user named {username:?} (404)")));
        }
        if !reply.is_success() {
            return Err(failure(&reply, s.now()));
        }
        let (names, next) = rs::group_page(&reply.json().unwrap_or(Value::Null));
        if names.iter().any(|n| n == group) {
            return Ok(true);
        }
        match next {
            Some(n) => start = n,
            None => return Ok(false),
        }
    }
    Err(Failure::permanent(format!(
        "Bitbucket listed more than {MAX_PAGES} pages of groups matching {group:?} for {username}"
    )))
}

async fn add_to_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    if is_member(s, username, group).await? {
        return Ok(Effect::AlreadyDone);
    }
    expect_success(s, &rq::add_to_group(username, group)).await?;
    Ok(Effect::Applied)
}

async fn remove_from_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    if !is_member(s, username, group).await? {
        return Ok(Effect::AlreadyDone);
    }
    expect_success(s, &rq::remove_from_group(username, group)).await?;
    Ok(Effect::Applied)
}
