//! Bitbucket groups (Bitbucket DC 8.14 OpenAPI, `/api/latest/admin/groups`; atlassian-dc.md §5):
//! `POST /admin/groups?name=` → 200 (409 when it exists), `DELETE /admin/groups?name=` → 200
//! (404 when missing). ADMIN permission and Basic credentials (BSERV-10482).

use crate::atlassian::client::Session;
use crate::atlassian::group_calls;
use crate::atlassian::request::Request;
use crate::atlassian::{Effect, Failure};

const API: &str = "/rest/api/1.0";

/// No body: the name is a query parameter (XSRF: see `X-Atlassian-Token` in `request.rs`).
pub(super) fn create_group(group: &str) -> Request {
    Request::post(format!("{API}/admin/groups")).query("name", group)
}

pub(super) fn delete_group(group: &str) -> Request {
    Request::delete(format!("{API}/admin/groups")).query("name", group)
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
    fn group_requests_carry_the_name_as_a_query_parameter() {
        assert_eq!(create_group("dev ops").target(), "/rest/api/1.0/admin/groups?name=dev%20ops");
        assert!(create_group("g").body.is_none());
        assert_eq!(delete_group("g").target(), "/rest/api/1.0/admin/groups?name=g");
    }
}
