//! Pure builders for the Confluence DC REST calls the bridge makes (atlassian-dc.md §3).

use serde_json::json;

use crate::atlassian::request::{encode, Request};

const API: &str = "/rest/api";

/// Why Confluence would refuse a username at creation: lower-case, no whitespace, none of
/// `\ , + < > ' "`, not "anonymous" (§3). Checked before calling so the reason is precise.
pub(super) fn invalid_username(username: &str) -> Option<&'static str> {
    if username.is_empty() {
        Some("Confluence usernames must not be empty")
    } else if username != username.to_lowercase() {
        Some("Confluence usernames must be lower-case")
    } else if username.chars().any(char::is_whitespace) {
        Some("Confluence usernames must not contain whitespace")
    } else if username.chars().any(|c| "\\,+<>'\"".contains(c)) {
        Some("Confluence usernames must not contain any of \\ , + < > ' \"")
    } else if username == "anonymous" {
        Some("Confluence reserves the username \"anonymous\"")
    } else {
        None
    }
}

/// `POST /rest/api/admin/user` → 201 `{"userKey":…}`; 409 if it exists, 402 without seats.
/// A random password rather than `notifyViaEmail`, which needs a mail server and would invite
/// an SSO user to set a local password.
pub(super) fn create_user(username: &str, full_name: &str, email: &str, password: &str) -> Request {
    Request::post(format!("{API}/admin/user")).json(json!({
        "userName": username,
        "fullName": full_name,
        "email": email,
        "password": password,
    }))
}

/// `PUT /rest/api/admin/user/{username}/disable` → 204, idempotent.
pub(super) fn disable(username: &str) -> Request {
    Request::put(format!("{API}/admin/user/{}/disable", encode(username)))
}

/// `PUT /rest/api/admin/user/{username}/enable` → 204, idempotent.
pub(super) fn enable(username: &str) -> Request {
    Request::put(format!("{API}/admin/user/{}/enable", encode(username)))
}

/// `DELETE /rest/api/admin/user/{username}` → 202 long task (the `?name=` form answers 405).
pub(super) fn delete_user(username: &str) -> Request {
    Request::delete(format!("{API}/admin/user/{}", encode(username)))
}

/// `GET /rest/api/longtask/{id}`.
pub(super) fn long_task(id: &str) -> Request {
    Request::get(format!("{API}/longtask/{}", encode(id)))
}

/// `PUT /rest/api/user/{username}/group/{groupName}` → 204, idempotent.
pub(super) fn add_to_group(username: &str, group: &str) -> Request {
    Request::put(format!("{API}/user/{}/group/{}", encode(username), encode(group)))
}

/// `DELETE /rest/api/user/{username}/group/{groupName}` → 204, idempotent.
pub(super) fn remove_from_group(username: &str, group: &str) -> Request {
    Request::delete(format!("{API}/user/{}/group/{}", encode(username), encode(group)))
}

/// `GET /rest/api/user?username=`.
pub(super) fn get_user(username: &str) -> Request {
    Request::get(format!("{API}/user")).query("username", username)
}

/// `GET /rest/api/user/current`: the health check.
pub(super) fn current_user() -> Request {
    Request::get(format!("{API}/user/current"))
}

/// Largest page we ask for; Confluence may cap lower ("fixed system limits"), and paging
/// follows what it returns.
pub(super) const PAGE_MAX: u32 = 1000;
/// The licence REST module, outside `/rest/api` and outside the 10.0.3 OpenAPI (§3, S24, S50).
const LICENSE: &str = "/rest/license/1.0/license";

/// `GET /rest/api/admin/users/list/active?start=&limit=&expand=lastLogin`: licensed, enabled
/// users with their last login (10.2 docs, §3, S23).
pub(super) fn active_users(start: u64, limit: u32) -> Request {
    Request::get(format!("{API}/admin/users/list/active"))
        .query("start", start.to_string())
        .query("limit", limit.to_string())
        .query("expand", "lastLogin")
}

/// `GET /rest/api/user/list?start=&limit=&expand=status`: every user, disabled ones included
/// (8.4+, §3, S25).
pub(super) fn all_users(start: u64, limit: u32) -> Request {
    Request::get(format!("{API}/user/list"))
        .query("start", start.to_string())
        .query("limit", limit.to_string())
        .query("expand", "status")
}

/// `GET /rest/api/group/{groupName}/member?start=&limit=` (admin only).
pub(super) fn group_members(group: &str, start: u64, limit: u32) -> Request {
    Request::get(format!("{API}/group/{}/member", encode(group)))
        .query("start", start.to_string())
        .query("limit", limit.to_string())
}

/// `GET /rest/api/user?username=&expand=status`.
pub(super) fn get_user_status(username: &str) -> Request {
    get_user(username).query("expand", "status")
}

/// `GET /rest/license/1.0/license/userCount` → `{"count": N}`.
pub(super) fn license_user_count() -> Request {
    Request::get(format!("{LICENSE}/userCount"))
}

/// `GET /rest/license/1.0/license/maxUsers` → `{"count": N}`.
pub(super) fn license_max_users() -> Request {
    Request::get(format!("{LICENSE}/maxUsers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn listings_page_with_start_and_limit_and_expand_what_they_need() {
        assert_eq!(
            active_users(200, 100).target(),
            "/rest/api/admin/users/list/active?start=200&limit=100&expand=lastLogin"
        );
        assert_eq!(all_users(0, 100).target(), "/rest/api/user/list?start=0&limit=100&expand=status");
        assert_eq!(
            group_members("confluence users", 0, 50).target(),
            "/rest/api/group/confluence%20users/member?start=0&limit=50"
        );
        assert_eq!(get_user_status("al").target(), "/rest/api/user?username=al&expand=status");
        assert_eq!(license_user_count().target(), "/rest/license/1.0/license/userCount");
        assert_eq!(license_max_users().target(), "/rest/license/1.0/license/maxUsers");
    }

    #[test]
    fn disable_and_enable_are_puts_on_the_admin_user_path() {
        let d = disable("alice");
        assert_eq!((d.method.clone(), d.target()), (Method::PUT, "/rest/api/admin/user/alice/disable".to_string()));
        assert!(d.body.is_none());
        assert_eq!(enable("alice").target(), "/rest/api/admin/user/alice/enable");
    }

    #[test]
    fn delete_uses_the_path_form_not_the_query_form() {
        let r = delete_user("a b");
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.target(), "/rest/api/admin/user/a%20b");
        assert_eq!(long_task("abc-1").target(), "/rest/api/longtask/abc-1");
    }

    #[test]
    fn membership_is_addressed_by_path_segments() {
        let r = add_to_group("bob", "confluence-users");
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.target(), "/rest/api/user/bob/group/confluence-users");
        let r = remove_from_group("bob", "a/b");
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.target(), "/rest/api/user/bob/group/a%2Fb");
    }

    #[test]
    fn create_sends_the_documented_fields() {
        let r = create_user("bob", "Bob B", "bob@example.com", "pw");
        assert_eq!(r.target(), "/rest/api/admin/user");
        assert_eq!(
            r.body,
            Some(json!({"userName": "bob", "fullName": "Bob B", "email": "bob@example.com", "password": "pw"}))
        );
    }

    #[test]
    fn usernames_confluence_would_refuse_are_caught_before_calling() {
        assert!(invalid_username("bob").is_none());
        assert!(invalid_username("bob.smith@example.com").is_none());
        for bad in ["Bob", "bo b", "b,ob", "b<ob", "anonymous", ""] {
            assert!(invalid_username(bad).is_some(), "{bad}");
        }
    }
}
