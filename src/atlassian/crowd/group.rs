//! Crowd groups (atlassian-dc.md §4; Crowd REST resources, S27/S30): `GET /group?groupname=` →
//! 200 or 404, `POST /group` `{name, type: "GROUP", description, active}` → 201 (400 when it
//! exists: `InvalidGroupException`), `DELETE /group?groupname=` → 204 (404 when missing).

use serde_json::json;

use crate::atlassian::client::Session;
use crate::atlassian::group_calls;
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

const API: &str = "/rest/usermanagement/1";

pub(super) fn get_group(group: &str) -> Request {
    Request::get(format!("{API}/group")).query("groupname", group)
}

pub(super) fn create_group(group: &str) -> Request {
    Request::post(format!("{API}/group")).json(json!({
        "name": group,
        "type": "GROUP",
        "description": "Created by scimbridge from the identity provider",
        "active": true,
    }))
}

pub(super) fn delete_group(group: &str) -> Request {
    Request::delete(format!("{API}/group")).query("groupname", group)
}

/// Crowd uses 400 both for an invalid group and for an existing one: read first.
pub(super) async fn create(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::create_after_probe(s, &get_group(group), &create_group(group)).await
}

pub(super) async fn delete(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::delete(s, &delete_group(group)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_crowd_group_is_an_active_plain_group() {
        let r = create_group("Eng");
        assert_eq!(r.target(), "/rest/usermanagement/1/group");
        assert_eq!(r.body.as_ref().and_then(|b| b.get("type")), Some(&json!("GROUP")));
        assert_eq!(delete_group("a&b").target(), "/rest/usermanagement/1/group?groupname=a%26b");
    }
}
