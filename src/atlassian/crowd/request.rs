//! Pure builders for the Crowd usermanagement REST calls (atlassian-dc.md §4).

use serde_json::json;

use super::response::CrowdUser;
use crate::atlassian::request::Request;

const API: &str = "/rest/usermanagement/1";

/// A name no real user has: the health check expects 404 for it, which proves the application
/// credentials and IP allow-list work without reading anybody's data.
pub(super) const HEALTH_PROBE_USER: &str = "scimbridge-health-probe";

/// `GET /user?username=`.
pub(super) fn get_user(username: &str) -> Request {
    Request::get(format!("{API}/user")).query("username", username)
}

/// Splits a display name into Crowd's first and last name ("Ada King Lovelace" → "Ada King",
/// "Lovelace"); a single word is used for both, since Crowd wants a last name.
pub(super) fn split_name(display_name: &str) -> (String, String) {
    let trimmed = display_name.trim();
    match trimmed.rsplit_once(' ') {
        Some((first, last)) => (first.trim().to_string(), last.to_string()),
        None => (trimmed.to_string(), trimmed.to_string()),
    }
}

/// `POST /user` → 201. The password is random: users authenticate through the IdP.
pub(super) fn create_user(username: &str, display_name: &str, email: &str, password: &str) -> Request {
    let (first, last) = split_name(display_name);
    Request::post(format!("{API}/user")).json(json!({
        "name": username,
        "first-name": first,
        "last-name": last,
        "display-name": display_name,
        "email": email,
        "active": true,
        "password": { "value": password },
    }))
}

/// `PUT /user?username=` with the **full** user: omitted names and email would be blanked
/// (Crowd KB, §4), so the body repeats everything read from `GET /user`.
pub(super) fn set_active(user: &CrowdUser, active: bool) -> Request {
    Request::put(format!("{API}/user")).query("username", &user.name).json(json!({
        "name": user.name,
        "first-name": user.first_name,
        "last-name": user.last_name,
        "display-name": user.display_name,
        "email": user.email,
        "active": active,
    }))
}

/// `DELETE /session?username=` → 204: invalidates every SSO session of the user (CWD-2876,
/// CWD-3057 "a REST operation to invalidate all sessions of a given user").
pub(super) fn end_sessions(username: &str) -> Request {
    Request::delete(format!("{API}/session")).query("username", username)
}

/// `DELETE /user?username=` → 204.
pub(super) fn delete_user(username: &str) -> Request {
    Request::delete(format!("{API}/user")).query("username", username)
}

/// `POST /user/group/direct?username=` with `{"name": group}` → 201; 409 if already a member.
pub(super) fn add_to_group(username: &str, group: &str) -> Request {
    Request::post(format!("{API}/user/group/direct")).query("username", username).json(json!({ "name": group }))
}

/// `DELETE /user/group/direct?username=&groupname=` → 204.
pub(super) fn remove_from_group(username: &str, group: &str) -> Request {
    Request::delete(format!("{API}/user/group/direct")).query("username", username).query("groupname", group)
}

/// Largest page we ask for in `max-results`.
pub(super) const PAGE_MAX: u32 = 1000;

/// `GET /search?entity-type=user&start-index=&max-results=&expand=user,attributes`: users with
/// their entities and attributes (Crowd REST "Search", S27). Offset-paged, no metadata: a short
/// page is the last.
pub(super) fn search_users(start: u64, max: u32) -> Request {
    Request::get(format!("{API}/search"))
        .query("entity-type", "user")
        .query("start-index", start.to_string())
        .query("max-results", max.to_string())
        .query("expand", "user,attributes")
}

/// `GET /user?username=&expand=attributes` (§4).
pub(super) fn get_user_with_attributes(username: &str) -> Request {
    get_user(username).query("expand", "attributes")
}

/// `GET /user/attribute?username=` → `{"attributes":[{name, values}]}` (§4).
pub(super) fn user_attributes(username: &str) -> Request {
    Request::get(format!("{API}/user/attribute")).query("username", username)
}

/// `GET /group/user/direct?groupname=&start-index=&max-results=` → `{"users":[…]}` (§4).
pub(super) fn group_members(group: &str, start: u64, max: u32) -> Request {
    Request::get(format!("{API}/group/user/direct"))
        .query("groupname", group)
        .query("start-index", start.to_string())
        .query("max-results", max.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn reads_use_crowds_dashed_paging_parameters_and_expansions() {
        assert_eq!(
            search_users(100, 50).target(),
            "/rest/usermanagement/1/search?entity-type=user&start-index=100&max-results=50&expand=user%2Cattributes"
        );
        assert_eq!(
            get_user_with_attributes("ann").target(),
            "/rest/usermanagement/1/user?username=ann&expand=attributes"
        );
        assert_eq!(user_attributes("ann").target(), "/rest/usermanagement/1/user/attribute?username=ann");
        assert_eq!(
            group_members("crowd-administrators", 0, 10).target(),
            "/rest/usermanagement/1/group/user/direct?groupname=crowd-administrators&start-index=0&max-results=10"
        );
    }

    fn user() -> CrowdUser {
        CrowdUser {
            name: "ann".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            display_name: "Ann Lee".into(),
            email: "ann@example.com".into(),
            active: true,
        }
    }

    #[test]
    fn deactivation_resends_the_full_user() {
        let r = set_active(&user(), false);
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.target(), "/rest/usermanagement/1/user?username=ann");
        assert_eq!(
            r.body,
            Some(json!({"name": "ann", "first-name": "Ann", "last-name": "Lee",
                "display-name": "Ann Lee", "email": "ann@example.com", "active": false}))
        );
    }

    #[test]
    fn create_splits_the_display_name_and_nests_the_password() {
        let r = create_user("ann", "Ann Mary Lee", "ann@example.com", "pw");
        let body = r.body.unwrap();
        assert_eq!(body["first-name"], "Ann Mary");
        assert_eq!(body["last-name"], "Lee");
        assert_eq!(body["password"], json!({"value": "pw"}));
        assert_eq!(split_name("Cher"), ("Cher".into(), "Cher".into()));
    }

    #[test]
    fn membership_uses_the_user_side_direct_resource() {
        let add = add_to_group("ann", "jira users");
        assert_eq!(add.method, Method::POST);
        assert_eq!(add.target(), "/rest/usermanagement/1/user/group/direct?username=ann");
        assert_eq!(add.body, Some(json!({"name": "jira users"})));
        let rm = remove_from_group("ann", "devs");
        assert_eq!(rm.method, Method::DELETE);
        assert_eq!(rm.target(), "/rest/usermanagement/1/user/group/direct?username=ann&groupname=devs");
        assert_eq!(delete_user("ann").target(), "/rest/usermanagement/1/user?username=ann");
        let end = end_sessions("ann");
        assert_eq!(
            (end.method.clone(), end.target()),
            (Method::DELETE, "/rest/usermanagement/1/session?username=ann".into())
        );
    }
}
