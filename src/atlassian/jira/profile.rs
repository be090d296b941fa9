//! Jira profile update: `PUT /rest/api/2/user?username=` with `displayName` and `emailAddress`
//! ("Fields skipped in request will not be changed", Jira 10.3 OpenAPI `UserWriteBean`). Jira
//! refuses edits of users from read-only directories (LDAP, Crowd) with a 400 that is kept as the
//! reason.

use serde_json::{json, Value};

use super::request::{get_user, API};
use crate::atlassian::classify::failure;
use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

/// `PUT /user?username=` `{"displayName", "emailAddress"}` → 200.
pub(super) fn update_user(username: &str, display_name: &str, email: &str) -> Request {
    Request::put(format!("{API}/user"))
        .query("username", username)
        .json(json!({ "displayName": display_name, "emailAddress": email }))
}

/// Reads first, so an unchanged profile is not written again (and a missing user is named).
pub(super) async fn update(
    s: &mut Session<'_>,
    username: &str,
    display_name: &str,
    email: &str,
) -> Result<Effect, Failure> {
    let current = s.send(&get_user(username, false)).await?;
    if current.status == 404 {
        return Err(Failure::permanent(format!("Jira has no user named {username:?} (404)")));
    }
    if !current.is_success() {
        return Err(failure(&current, s.now()));
    }
    let bean = current.json().unwrap_or(Value::Null);
    let field = |k: &str| bean.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    if field("displayName") == display_name && field("emailAddress").eq_ignore_ascii_case(email) {
        return Ok(Effect::AlreadyDone);
    }
    expect_success(s, &update_user(username, display_name, email)).await.map(|_| Effect::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_sends_only_the_two_profile_fields() {
        let r = update_user("ann", "Ann Lee", "ann@example.com");
        assert_eq!(r.target(), "/rest/api/2/user?username=ann");
        assert_eq!(r.body, Some(json!({"displayName": "Ann Lee", "emailAddress": "ann@example.com"})));
    }
}
