//! The Crowd call sequences.

use super::request as rq;
use super::response::{self as rs, CrowdUser};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{combine, Session};
use crate::atlassian::request::random_password;
use crate::atlassian::{Action, Effect, Failure};

pub(in crate::atlassian) async fn execute(s: &mut Session<'_>, action: &Action) -> Result<Effect, Failure> {
    match action {
        Action::CreateUser { username, display_name, email } => create(s, username, display_name, email).await,
        Action::Deactivate { username } => deactivate(s, username).await,
        Action::Reactivate { username } => set_active(s, username, true).await,
        Action::Delete { username } => delete(s, username).await,
        Action::RemoveLicense { username, groups } => {
            let mut effects = Vec::new();
            for group in groups {
                effects.push(remove_from_group(s, username, group).await?);
            }
            Ok(combine(&effects))
        }
        Action::AddToGroup { username, group } => add_to_group(s, username, group).await,
        Action::RemoveFromGroup { username, group } => remove_from_group(s, username, group).await,
        Action::Anonymize { .. } => Err(Failure::permanent("Crowd has no user anonymization")),
        Action::CreateGroup { group } => super::group::create(s, group).await,
        Action::DeleteGroup { group } => super::group::delete(s, group).await,
        Action::UpdateProfile { username, display_name, email } => {
            super::profile::update(s, username, display_name, email).await
        }
    }
}

pub(in crate::atlassian) async fn health(s: &mut Session<'_>) -> Result<(), Failure> {
    let reply = s.send(&rq::get_user(rq::HEALTH_PROBE_USER)).await?;
    if reply.is_success() || reply.status == 404 {
        Ok(())
    } else {
        Err(failure(&reply, s.now()))
    }
}

async fn lookup(s: &mut Session<'_>, username: &str) -> Result<Option<CrowdUser>, Failure> {
    let reply = s.send(&rq::get_user(username)).await?;
    if rs::is_missing_user(&reply) {
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
        .ok_or_else(|| Failure::permanent("Crowd answered GET /user without a user name (XML?)"))
}

async fn create(s: &mut Session<'_>, username: &str, display_name: &str, email: &str) -> Result<Effect, Failure> {
    if lookup(s, username).await?.is_some() {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(&rq::create_user(username, display_name, email, &random_password())).await?;
    if rs::is_existing_user(&reply) {
        return Ok(Effect::AlreadyDone);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(Effect::Applied)
}

async fn set_active(s: &mut Session<'_>, username: &str, active: bool) -> Result<Effect, Failure> {
    let Some(user) = lookup(s, username).await? else {
        return Err(Failure::permanent(format!("Crowd has no user named {username:?} (404)")));
    };
    apply_active(s, &user, active).await
}

async fn apply_active(s: &mut Session<'_>, user: &CrowdUser, active: bool) -> Result<Effect, Failure> {
    if user.active == active {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(&rq::set_active(user, active)).await?;
    if !active && super::fallback::is_refusal(&reply) {
        return super::fallback::after_refusal(s, &user.name, &reply).await;
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(Effect::Applied)
}

/// Deactivates, then ends the user's Crowd SSO sessions (`DELETE /session?username=`, CWD-2876):
/// an inactive user's existing SSO token would otherwise keep its applications' sessions alive.
/// Also when the user was already inactive (an earlier attempt may have stopped in between).
async fn deactivate(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let Some(user) = lookup(s, username).await? else { return Ok(Effect::NoSuchAccount) };
    // Also after a refusal answered by the group fallback: sessions end either way (CWD-2876).
    let effect = apply_active(s, &user, false).await?;
    let reply = s.send(&rq::end_sessions(username)).await?;
    if reply.status == 404 {
        s.note(format!("sessions not ended: Crowd answered 404 for {username:?} (the user is gone)"));
    } else if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(effect)
}

async fn delete(s: &mut Session<'_>, username: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::delete_user(username)).await?;
    match reply.status {
        404 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

async fn add_to_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::add_to_group(username, group)).await?;
    match reply.status {
        409 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

async fn remove_from_group(s: &mut Session<'_>, username: &str, group: &str) -> Result<Effect, Failure> {
    let reply = s.send(&rq::remove_from_group(username, group)).await?;
    if rs::is_missing_membership(&reply) {
        return Ok(Effect::AlreadyDone);
    }
    if rs::is_missing_user(&reply) {
        return Ok(Effect::NoSuchAccount);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    Ok(Effect::Applied)
}
