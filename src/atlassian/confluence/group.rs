//! Confluence groups: `POST /rest/api/admin/group` `{"name"}` → **200** (409 when it exists) and
//! `DELETE /rest/api/admin/group/{groupName}` → 204 (404 when missing; 400 for the last admin
//! group). Confluence DC 10.0.3 OpenAPI; atlassian-dc.md §3.

use serde_json::json;

use crate::atlassian::client::Session;
use crate::atlassian::group_calls;
use crate::atlassian::request::{encode, Request};
use crate::atlassian::{Effect, Failure};

pub(super) fn create_group(group: &str) -> Request {
    Request::post("/rest/api/admin/group").json(json!({ "name": group }))
}

pub(super) fn delete_group(group: &str) -> Request {
    Request::delete(format!("/rest/api/admin/group/{}", encode(group)))
}

pub(super) async fn create(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::create(s, &create_group(group), 409).await
}

pub(super) async fn delete(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::delete(s, &delete_group(group)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_follow_the_admin_group_resource() {
        assert_eq!(create_group("Eng").body, Some(json!({"name": "Eng"})));
        assert_eq!(delete_group("Eng Ops").target(), "/rest/api/admin/group/Eng%20Ops");
    }
}
