//! Jira groups: create and delete (atlassian-dc.md §2.3; Jira 10.3 OpenAPI `POST /api/2/group`
//! 201/400, `DELETE /api/2/group?groupname=` 200/404, `GET /api/2/group/member` 404 for an
//! unknown group).

use serde_json::json;

use super::request::API;
use crate::atlassian::client::Session;
use crate::atlassian::group_calls;
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

/// `GET /group/member?groupname=&maxResults=1`: 200 when the group exists, 404 when it does not.
pub(super) fn probe(group: &str) -> Request {
    Request::get(format!("{API}/group/member")).query("groupname", group).query("maxResults", "1")
}

/// `POST /group` `{"name": group}` → 201; 400 for an empty name *or* an existing group.
pub(super) fn create_group(group: &str) -> Request {
    Request::post(format!("{API}/group")).json(json!({ "name": group }))
}

/// `DELETE /group?groupname=` → 200; 404 when there is no such group.
pub(super) fn delete_group(group: &str) -> Request {
    Request::delete(format!("{API}/group")).query("groupname", group)
}

/// Jira answers a duplicate name with the same 400 as an invalid one, so existence is read first.
pub(super) async fn create(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::create_after_probe(s, &probe(group), &create_group(group)).await
}

pub(super) async fn delete(s: &mut Session<'_>, group: &str) -> Result<Effect, Failure> {
    group_calls::delete(s, &delete_group(group)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn group_requests_use_the_documented_paths_and_bodies() {
        let c = create_group("Engineering & Ops");
        assert_eq!((c.method.clone(), c.target()), (Method::POST, "/rest/api/2/group".to_string()));
        assert_eq!(c.body, Some(json!({"name": "Engineering & Ops"})));
        assert_eq!(delete_group("a b").target(), "/rest/api/2/group?groupname=a%20b");
        assert_eq!(probe("g").target(), "/rest/api/2/group/member?groupname=g&maxResults=1");
    }
}
