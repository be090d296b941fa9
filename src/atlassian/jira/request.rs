//! Pure builders for the Jira DC REST v2 calls the bridge makes (atlassian-dc.md §2.2–§2.5).

use serde_json::json;

use crate::atlassian::request::{encode, Request};

pub(super) const API: &str = "/rest/api/2";

/// `GET /user?username=` (optionally `&includeDeleted=true`, admin only) with groups expanded.
pub(super) fn get_user(username: &str, include_deleted: bool) -> Request {
    let r = Request::get(format!("{API}/user")).query("username", username).query("expand", "groups");
    if include_deleted {
        r.query("includeDeleted", "true")
    } else {
        r
    }
}

/// `POST /user`. No password: Jira generates a random one. `"applicationKeys": []`: without the
/// field Jira gives the user every application selected by default (its default group, e.g.
/// `jira-software-users`), which takes a seat (review J7: pycontribs/jira #549; J8: KB "How to
/// create a user on Jira using REST API"). Access comes from the groups the policy syncs.
pub(super) fn create_user(username: &str, display_name: &str, email: &str) -> Request {
    Request::post(format!("{API}/user")).json(json!({
        "name": username,
        "displayName": display_name,
        "emailAddress": email,
        "notification": false,
        "applicationKeys": [],
    }))
}

/// `PUT /user?username=` with `{"active": …}`; fields left out are not changed.
pub(super) fn set_active(username: &str, active: bool) -> Request {
    Request::put(format!("{API}/user")).query("username", username).json(json!({ "active": active }))
}

/// `DELETE /user/session/{username}`: ends every session of the user.
pub(super) fn kill_sessions(username: &str) -> Request {
    Request::delete(format!("{API}/user/session/{}", encode(username)))
}

/// `DELETE /user?username=` → 204.
pub(super) fn delete_user(username: &str) -> Request {
    Request::delete(format!("{API}/user")).query("username", username)
}

/// `POST /group/user?groupname=` with `{"name": username}` → 201; 400 if already a member.
pub(super) fn add_to_group(username: &str, group: &str) -> Request {
    Request::post(format!("{API}/group/user")).query("groupname", group).json(json!({ "name": username }))
}

/// `DELETE /group/user?groupname=&username=` → 200.
pub(super) fn remove_from_group(username: &str, group: &str) -> Request {
    Request::delete(format!("{API}/group/user")).query("groupname", group).query("username", username)
}

/// `GET /myself`: the health check, and the new owner of an anonymized user's objects.
pub(super) fn myself() -> Request {
    Request::get(format!("{API}/myself"))
}

/// `GET /user/anonymization?userKey=&expand=affectedEntities`: validation before scheduling.
pub(super) fn validate_anonymization(user_key: &str) -> Request {
    Request::get(format!("{API}/user/anonymization")).query("userKey", user_key).query("expand", "affectedEntities")
}

/// `POST /user/anonymization` → 202 with a `progressUrl`; 409 while another task runs.
pub(super) fn schedule_anonymization(user_key: &str, new_owner_key: &str) -> Request {
    Request::post(format!("{API}/user/anonymization")).json(json!({
        "userKey": user_key,
        "newOwnerKey": new_owner_key,
    }))
}

/// `GET /user/anonymization/progress?taskId=`: always with the id, since without it Jira
/// returns the last task, which may be someone else's (§2.5).
pub(super) fn anonymization_progress(task_id: &str) -> Request {
    Request::get(format!("{API}/user/anonymization/progress")).query("taskId", task_id)
}

/// Most users `GET /user/search` returns per page (atlassian-dc.md §2.2).
pub(super) const SEARCH_MAX: u32 = 1000;
/// `GET /user/list` defaults to 2000 per page; we ask at most this many (bean size × page).
pub(super) const LIST_MAX: u32 = 1000;

/// `GET /user/list?maxResults=[&cursor=]`: every user, cursor-paged, no total (§2.2, §2.8;
/// Jira 10.3 LTS and 11+). First call without a cursor.
pub(super) fn user_list(cursor: Option<&str>, max_results: u32) -> Request {
    let r = Request::get(format!("{API}/user/list"));
    let r = match cursor {
        Some(c) => r.query("cursor", c),
        None => r,
    };
    r.query("maxResults", max_results.to_string())
}

/// `GET /user/search?username=.&includeActive=true&includeInactive=true&startAt=&maxResults=`:
/// the listing of a Jira without `/user/list`. `username=.` matching everyone is a third-party
/// observation (§2.2, S8).
pub(super) fn user_search(start_at: u64, max_results: u32) -> Request {
    Request::get(format!("{API}/user/search"))
        .query("username", ".")
        .query("includeActive", "true")
        .query("includeInactive", "true")
        .query("startAt", start_at.to_string())
        .query("maxResults", max_results.to_string())
}

/// `GET /group/member?groupname=&includeInactiveUsers=true&startAt=&maxResults=` → page
/// `{values, isLast, startAt, maxResults, total}`; `groupname` is a query parameter although
/// the spec declares it in the path (§2.3).
pub(super) fn group_members(group: &str, start_at: u64, max_results: u32) -> Request {
    Request::get(format!("{API}/group/member"))
        .query("groupname", group)
        .query("includeInactiveUsers", "true")
        .query("startAt", start_at.to_string())
        .query("maxResults", max_results.to_string())
}

/// `GET /applicationrole` (all roles) or `GET /applicationrole/{key}`: the licence counts (§2.4).
pub(super) fn application_roles(key: Option<&str>) -> Request {
    match key {
        Some(k) => Request::get(format!("{API}/applicationrole/{}", encode(k))),
        None => Request::get(format!("{API}/applicationrole")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn listing_requests_use_the_documented_paging_parameters() {
        assert_eq!(user_list(None, 500).target(), "/rest/api/2/user/list?maxResults=500");
        assert_eq!(user_list(Some("10500"), 500).target(), "/rest/api/2/user/list?cursor=10500&maxResults=500");
        assert_eq!(
            user_search(1000, 1000).target(),
            "/rest/api/2/user/search?username=.&includeActive=true&includeInactive=true&startAt=1000&maxResults=1000"
        );
        assert_eq!(
            group_members("jira users", 50, 50).target(),
            "/rest/api/2/group/member?groupname=jira%20users&includeInactiveUsers=true&startAt=50&maxResults=50"
        );
        assert_eq!(application_roles(None).target(), "/rest/api/2/applicationrole");
        assert_eq!(application_roles(Some("jira-software")).target(), "/rest/api/2/applicationrole/jira-software");
    }

    use super::*;
    use reqwest::Method;

    #[test]
    fn deactivation_is_a_partial_put_by_username() {
        let r = set_active("alice", false);
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.target(), "/rest/api/2/user?username=alice");
        assert_eq!(r.body, Some(json!({"active": false})));
    }

    #[test]
    fn session_kill_puts_the_encoded_username_in_the_path() {
        let r = kill_sessions("a/b c");
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.target(), "/rest/api/2/user/session/a%2Fb%20c");
        assert!(r.body.is_none());
    }

    #[test]
    fn create_user_sends_no_password_and_an_empty_application_list() {
        let r = create_user("bob", "Bob B", "bob@example.com");
        assert_eq!((r.method.clone(), r.target()), (Method::POST, "/rest/api/2/user".into()));
        let body = r.body.unwrap();
        assert_eq!(body["name"], "bob");
        assert_eq!(body["emailAddress"], "bob@example.com");
        assert!(body.get("password").is_none());
        assert_eq!(body["applicationKeys"], json!([]));
    }

    #[test]
    fn membership_calls_match_the_spec() {
        let add = add_to_group("bob", "jira users");
        assert_eq!(add.target(), "/rest/api/2/group/user?groupname=jira%20users");
        assert_eq!(add.body, Some(json!({"name": "bob"})));
        let rm = remove_from_group("bob", "devs");
        assert_eq!(rm.method, Method::DELETE);
        assert_eq!(rm.target(), "/rest/api/2/group/user?groupname=devs&username=bob");
    }

    #[test]
    fn user_lookup_expands_groups_and_can_include_deleted_users() {
        assert_eq!(get_user("al", false).target(), "/rest/api/2/user?username=al&expand=groups");
        assert!(get_user("al", true).target().ends_with("&includeDeleted=true"));
        assert_eq!(delete_user("al").target(), "/rest/api/2/user?username=al");
    }

    #[test]
    fn anonymization_is_keyed_by_user_key_and_polled_by_task_id() {
        assert_eq!(
            validate_anonymization("JIRAUSER10100").target(),
            "/rest/api/2/user/anonymization?userKey=JIRAUSER10100&expand=affectedEntities"
        );
        let s = schedule_anonymization("JIRAUSER10100", "admin");
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.body, Some(json!({"userKey": "JIRAUSER10100", "newOwnerKey": "admin"})));
        assert_eq!(anonymization_progress("7").target(), "/rest/api/2/user/anonymization/progress?taskId=7");
    }
}
