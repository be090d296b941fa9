//! Confluence profile update: `PUT /rest/api/admin/user/{username}` with `fullName` and `email`
//! → 204; 400 for any refusal (blank or forbidden full name, invalid email, unknown user).
//! Confluence DC 10.0.3 OpenAPI `updateUser` / `UserDetailsForUpdate` (atlassian-dc.md §3).

use serde_json::json;

use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::request::{encode, Request};
use crate::atlassian::{Effect, Failure};

pub(super) fn update_user(username: &str, full_name: &str, email: &str) -> Request {
    Request::put(format!("/rest/api/admin/user/{}", encode(username)))
        .json(json!({ "fullName": full_name, "email": email }))
}

/// The spec's requirements, checked first so the reason names the field: the full name must not
/// be blank nor contain `<` or `>`, the email must not be blank.
fn invalid(full_name: &str, email: &str) -> Option<&'static str> {
    if full_name.trim().is_empty() {
        Some("Confluence requires a full name that is not blank")
    } else if full_name.contains(['<', '>']) {
        Some("Confluence refuses a full name containing < or >")
    } else if !email.contains('@') {
        Some("Confluence requires a valid email address")
    } else {
        None
    }
}

/// Idempotent: the same values written twice leave the same user.
pub(super) async fn update(
    s: &mut Session<'_>,
    username: &str,
    full_name: &str,
    email: &str,
) -> Result<Effect, Failure> {
    if let Some(reason) = invalid(full_name, email) {
        return Err(Failure::permanent(format!("{reason}: {full_name:?} / {email:?}")));
    }
    expect_success(s, &update_user(username, full_name, email)).await.map(|_| Effect::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_targets_the_admin_user_resource_with_full_name_and_email() {
        let r = update_user("ann", "Ann Lee", "ann@example.com");
        assert_eq!(r.target(), "/rest/api/admin/user/ann");
        assert_eq!(r.body, Some(json!({"fullName": "Ann Lee", "email": "ann@example.com"})));
        assert!(invalid("<b>", "a@x").is_some());
        assert!(invalid("Ann", "nope").is_some());
        assert!(invalid("Ann", "a@x").is_none());
    }
}
