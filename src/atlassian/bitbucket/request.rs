//! Pure builders for the Bitbucket DC admin REST calls (atlassian-dc.md §5).

use serde_json::json;

use crate::atlassian::request::Request;

const API: &str = "/rest/api/1.0";
/// Page size for group listings (Bitbucket caps pages at 1000).
const PAGE: u64 = 500;

/// `POST /admin/users?name=&displayName=&emailAddress=&password=&addToDefaultGroup=true&notify=false`
/// → 204; parameters only, no body. The password is a secret query value (never recorded).
/// The default group is what lets the user log in (§5).
pub(super) fn create_user(username: &str, display_name: &str, email: &str, password: &str) -> Request {
    Request::post(format!("{API}/admin/users"))
        .query("name", username)
        .query("displayName", display_name)
        .query("emailAddress", email)
        .secret_query("password", password)
        .query("addToDefaultGroup", "true")
        .query("notify", "false")
}

/// `DELETE /admin/users?name=` → 200 with the deleted user.
pub(super) fn delete_user(username: &str) -> Request {
    Request::delete(format!("{API}/admin/users")).query("name", username)
}

/// `GET /admin/users/more-members?context=&filter=`: the groups the user belongs to whose name
/// contains `filter`.
pub(super) fn user_groups(username: &str, filter: &str, start: u64) -> Request {
    Request::get(format!("{API}/admin/users/more-members"))
        .query("context", username)
        .query("filter", filter)
        .query("start", start.to_string())
        .query("limit", PAGE.to_string())
}

/// `POST /admin/users/add-groups` with `{"user":…,"groups":[…]}` → 200.
pub(super) fn add_to_group(username: &str, group: &str) -> Request {
    Request::post(format!("{API}/admin/users/add-groups")).json(json!({ "user": username, "groups": [group] }))
}

/// `POST /admin/users/remove-group` with `{"context": user, "itemName": group}` → 200. The
/// vendor example had the two swapped (BSERV-13706); this order is the working one.
pub(super) fn remove_from_group(username: &str, group: &str) -> Request {
    Request::post(format!("{API}/admin/users/remove-group")).json(json!({ "context": username, "itemName": group }))
}

/// `GET /admin/users/erasure?name=` → 204 when the (deleted) user can be erased.
pub(super) fn erasure_check(username: &str) -> Request {
    Request::get(format!("{API}/admin/users/erasure")).query("name", username)
}

/// `POST /admin/users/erasure?name=` → 200; irreversible.
pub(super) fn erase(username: &str) -> Request {
    Request::post(format!("{API}/admin/users/erasure")).query("name", username)
}

/// `GET /admin/permissions/users?filter=&start=&limit=`: users holding a global permission
/// directly, whose name contains `filter` (ADMIN only).
pub(super) fn users_with_permission(filter: &str, start: u64) -> Request {
    Request::get(format!("{API}/admin/permissions/users"))
        .query("filter", filter)
        .query("start", start.to_string())
        .query("limit", PAGE.to_string())
}

/// `DELETE /admin/permissions/users?name=` → 204: revokes every global permission granted to
/// the user directly.
pub(super) fn revoke_user_permissions(username: &str) -> Request {
    Request::delete(format!("{API}/admin/permissions/users")).query("name", username)
}

/// `GET /admin/users?limit=1`: the health check (needs admin, writes nothing).
pub(super) fn health() -> Request {
    Request::get(format!("{API}/admin/users")).query("limit", "1")
}

/// Bitbucket caps pages at 1000.
pub(super) const PAGE_MAX: u32 = 1000;

/// `GET /admin/users?start=&limit=[&filter=]` → page of `RestDetailedUser` with
/// `lastAuthenticationTimestamp` (§5); `filter` matches name, display name or email.
pub(super) fn list_users(filter: Option<&str>, start: u64, limit: u32) -> Request {
    let r = Request::get(format!("{API}/admin/users"));
    let r = match filter {
        Some(f) => r.query("filter", f),
        None => r,
    };
    r.query("start", start.to_string()).query("limit", limit.to_string())
}

/// `GET /admin/groups/more-members?context=<group>&start=&limit=`: the members of a group
/// (the group-side twin of `admin/users/more-members`, §5).
pub(super) fn group_members(group: &str, start: u64, limit: u32) -> Request {
    Request::get(format!("{API}/admin/groups/more-members"))
        .query("context", group)
        .query("start", start.to_string())
        .query("limit", limit.to_string())
}

/// `GET /admin/license` → `{maximumNumberOfUsers, unlimitedNumberOfUsers, status:{currentNumberOfUsers}}`.
pub(super) fn license() -> Request {
    Request::get(format!("{API}/admin/license"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn reads_page_with_start_and_limit() {
        assert_eq!(list_users(None, 25, 25).target(), "/rest/api/1.0/admin/users?start=25&limit=25");
        assert_eq!(list_users(Some("bob"), 0, 25).target(), "/rest/api/1.0/admin/users?filter=bob&start=0&limit=25");
        assert_eq!(
            group_members("stash-users", 0, 100).target(),
            "/rest/api/1.0/admin/groups/more-members?context=stash-users&start=0&limit=100"
        );
        assert_eq!(license().target(), "/rest/api/1.0/admin/license");
    }

    #[test]
    fn create_passes_query_parameters_and_hides_the_password() {
        let r = create_user("bob", "Bob B", "bob@example.com", "s3cret");
        assert_eq!(r.method, Method::POST);
        assert!(r.body.is_none());
        assert_eq!(
            r.log_path(),
            "/rest/api/1.0/admin/users?name=bob&displayName=Bob%20B&emailAddress=bob%40example.com&password=***&addToDefaultGroup=true&notify=false"
        );
        assert!(r.target().contains("password=s3cret"));
    }

    #[test]
    fn remove_group_sends_user_as_context_and_group_as_item() {
        let r = remove_from_group("bob", "stash-users");
        assert_eq!(r.target(), "/rest/api/1.0/admin/users/remove-group");
        assert_eq!(r.body, Some(json!({"context": "bob", "itemName": "stash-users"})));
    }

    #[test]
    fn add_groups_and_membership_listing() {
        let r = add_to_group("bob", "devs");
        assert_eq!(r.body, Some(json!({"user": "bob", "groups": ["devs"]})));
        assert_eq!(
            user_groups("bob", "devs", 0).target(),
            "/rest/api/1.0/admin/users/more-members?context=bob&filter=devs&start=0&limit=500"
        );
    }

    #[test]
    fn direct_permissions_are_listed_by_filter_and_revoked_by_name() {
        assert_eq!(
            users_with_permission("bob", 0).target(),
            "/rest/api/1.0/admin/permissions/users?filter=bob&start=0&limit=500"
        );
        let r = revoke_user_permissions("bob");
        assert_eq!(
            (r.method.clone(), r.target()),
            (Method::DELETE, "/rest/api/1.0/admin/permissions/users?name=bob".into())
        );
    }

    #[test]
    fn delete_and_erasure_are_by_name() {
        assert_eq!(delete_user("bob").method, Method::DELETE);
        assert_eq!(delete_user("bob").target(), "/rest/api/1.0/admin/users?name=bob");
        assert_eq!(erasure_check("bob").method, Method::GET);
        assert_eq!(erase("bob").target(), "/rest/api/1.0/admin/users/erasure?name=bob");
    }
}
