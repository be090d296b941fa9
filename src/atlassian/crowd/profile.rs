//! Crowd profile update: `PUT /rest/usermanagement/1/user?username=` with the **full** user
//! (Crowd KB "How to Deactivate/Activate a User Through API": omitted names and email are
//! blanked, atlassian-dc.md §4), so the current user is read first and its `active` kept.

use serde_json::json;

use super::request::{get_user, split_name};
use super::response::{self as rs, CrowdUser};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

pub(super) fn update_user(user: &CrowdUser, display_name: &str, email: &str) -> Request {
    let (first, last) = split_name(display_name);
    Request::put("/rest/usermanagement/1/user").query("username", &user.name).json(json!({
        "name": user.name,
        "first-name": first,
        "last-name": last,
        "display-name": display_name,
        "email": email,
        "active": user.active,
    }))
}

pub(super) async fn update(
    s: &mut Session<'_>,
    username: &str,
    display_name: &str,
    email: &str,
) -> Result<Effect, Failure> {
    let reply = s.send(&get_user(username)).await?;
    if reply.status == 404 {
        return Err(Failure::permanent(format!("Crowd has no user named {username:?} (404)")));
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    let user = reply
        .json()
        .as_ref()
        .and_then(rs::user)
        .ok_or_else(|| Failure::permanent("Crowd answered GET /user without a user name (XML?)"))?;
    if user.display_name == display_name && user.email.eq_ignore_ascii_case(email) {
        return Ok(Effect::AlreadyDone);
    }
    expect_success(s, &update_user(&user, display_name, email)).await.map(|_| Effect::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_repeats_the_whole_user_and_keeps_active() {
        let user = CrowdUser {
            name: "ann".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            display_name: "Ann Lee".into(),
            email: "ann@old.example".into(),
            active: false,
        };
        let r = update_user(&user, "Ann Smith", "ann@new.example");
        assert_eq!(
            r.body,
            Some(json!({"name": "ann", "first-name": "Ann", "last-name": "Smith", "display-name": "Ann Smith",
                "email": "ann@new.example", "active": false}))
        );
    }
}
