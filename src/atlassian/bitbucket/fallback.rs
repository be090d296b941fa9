//! Bitbucket cannot change the groups of a user from an external directory (LDAP/AD, Crowd,
//! Jira): "it is impossible to configure external directories as read/write" (TechTime, 3P B4;
//! atlassian-calls-review.md finding 9), and `GET /admin/users` says so per user with
//! `mutableGroups: false` (8.14 OpenAPI `RestDetailedUser`). Removing such a user's licence
//! groups cannot work, so the bridge does not try: a user still in one of them becomes a dead
//! letter telling the admin where to remove them.

use serde_json::Value;

use super::request as rq;
use super::response as rs;
use crate::atlassian::classify::failure;
use crate::atlassian::client::Session;
use crate::atlassian::{Effect, Failure};

/// The `RestDetailedUser` of `username` (exact name), from the filtered admin listing.
async fn detailed_user(s: &mut Session<'_>, username: &str) -> Result<Option<Value>, Failure> {
    let mut start = 0u64;
    loop {
        let reply = s.send(&rq::list_users(Some(username), start, rq::PAGE_MAX)).await?;
        if !reply.is_success() {
            return Err(failure(&reply, s.now()));
        }
        let (values, next) = rs::page(&reply.json().unwrap_or(Value::Null));
        if let Some(found) = values
            .into_iter()
            .find(|u| u.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(username)))
        {
            return Ok(Some(found));
        }
        match next {
            Some(n) if n > start => start = n,
            _ => return Ok(None),
        }
    }
}

/// Before removing licence groups: `Ok(None)` when Bitbucket can change the user's groups (go
/// on), `Ok(Some(AlreadyDone))` when it cannot but the user holds none of `groups`, and a
/// permanent failure naming the directory and the groups when it cannot and the user does.
pub(super) async fn immutable_groups(
    s: &mut Session<'_>,
    username: &str,
    groups: &[String],
) -> Result<Option<Effect>, Failure> {
    let Some(user) = detailed_user(s, username).await? else {
        return Ok(None);
    };
    if user.get("mutableGroups").and_then(Value::as_bool) != Some(false) {
        return Ok(None);
    }
    let directory = user.get("directoryName").and_then(Value::as_str).unwrap_or("an external directory").to_string();
    let mut held = Vec::new();
    for group in groups {
        if super::client::is_member(s, username, group).await? == Some(true) {
            held.push(group.clone());
        }
    }
    if held.is_empty() {
        return Ok(Some(Effect::AlreadyDone));
    }
    Err(Failure::permanent(format!(
        "Bitbucket cannot change the groups of {username}: the user comes from the external directory \
         {directory:?} (mutableGroups: false; Bitbucket treats external directories as read-only). {username} \
         still holds a licence through {}. By hand: remove {username} from {} in {directory} (the LDAP/AD \
         server, Crowd or Jira that owns it), or disable the account there, and let Bitbucket synchronise \
         the directory; also check Bitbucket administration → Global permissions for a licence granted to \
         {username} directly; then drop this job (scimbridge jobs drop)",
        held.join(", "),
        held.join(", ")
    )))
}
