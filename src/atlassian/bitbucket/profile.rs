//! Bitbucket profile update: `PUT /rest/api/1.0/admin/users` with `{name, displayName, email}`
//! → 200; 404 for an unknown user (Bitbucket DC 8.14 OpenAPI `UserUpdate`; atlassian-dc.md §5).
//! Users of read-only external directories (`mutableDetails: false`) are refused by the product.

use serde_json::json;

use crate::atlassian::classify::failure;
use crate::atlassian::client::Session;
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

pub(super) fn update_user(username: &str, display_name: &str, email: &str) -> Request {
    Request::put("/rest/api/1.0/admin/users")
        .json(json!({ "name": username, "displayName": display_name, "email": email }))
}

/// Idempotent: writing the same values again changes nothing.
pub(super) async fn update(
    s: &mut Session<'_>,
    username: &str,
    display_name: &str,
    email: &str,
) -> Result<Effect, Failure> {
    let reply = s.send(&update_user(username, display_name, email)).await?;
    match reply.status {
        404 => Err(Failure::permanent(format!("Bitbucket has no user named {username:?} (404)"))),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_body_names_the_user() {
        let r = update_user("ann", "Ann Lee", "ann@example.com");
        assert_eq!(r.target(), "/rest/api/1.0/admin/users");
        assert_eq!(r.body, Some(json!({"name": "ann", "displayName": "Ann Lee", "email": "ann@example.com"})));
    }
}
