//! Pure reading of Bitbucket answers: paged group lists.

use serde_json::Value;

use crate::atlassian::activity::{json_time, text, AccountActivity, Seats};

/// An account from a `RestDetailedUser`: `lastAuthenticationTimestamp` in epoch millis, absent
/// for a user who never authenticated.
pub(super) fn detailed_user(v: &Value) -> Option<AccountActivity> {
    Some(AccountActivity {
        username: text(v, "name")?,
        display_name: text(v, "displayName"),
        email: text(v, "emailAddress"),
        active: v.get("active").and_then(Value::as_bool).unwrap_or(true),
        last_active: json_time(v.get("lastAuthenticationTimestamp")),
        activity_reported: true,
        created: None,
        directory: text(v, "directoryName"),
        groups: None,
    })
}

/// One paged answer: its `values` and the next page start, if any.
pub(super) fn page(body: &Value) -> (Vec<Value>, Option<u64>) {
    let values = body.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
    let last = body.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
    let next = if last { None } else { body.get("nextPageStart").and_then(Value::as_u64) };
    (values, next)
}

/// `GET /admin/license`: `unlimitedNumberOfUsers` or `maximumNumberOfUsers`, used =
/// `status.currentNumberOfUsers`.
pub(super) fn license_seats(body: &Value) -> Option<Seats> {
    let unlimited = body.get("unlimitedNumberOfUsers").and_then(Value::as_bool).unwrap_or(false);
    let max = body.get("maximumNumberOfUsers").and_then(Value::as_u64);
    if !unlimited && max.is_none() {
        return None;
    }
    Some(Seats {
        total: if unlimited { None } else { max },
        used: body.pointer("/status/currentNumberOfUsers").and_then(Value::as_u64).unwrap_or(0),
        detail: "bitbucket".into(),
    })
}

/// One page of `more-members`: the group names and the next page start, if any.
pub(super) fn group_page(body: &Value) -> (Vec<String>, Option<u64>) {
    let names = body
        .get("values")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    let last = body.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
    let next = if last { None } else { body.get("nextPageStart").and_then(Value::as_u64) };
    (names, next)
}

/// One page of `GET /admin/permissions/users`: `(user name, permission)` pairs and the next page
/// start, if any.
pub(super) fn permission_page(body: &Value) -> (Vec<(String, String)>, Option<u64>) {
    let (values, next) = page(body);
    let grants = values.iter().filter_map(|v| Some((text(v.get("user")?, "name")?, text(v, "permission")?))).collect();
    (grants, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detailed_user_reads_epoch_millis_and_directory() {
        let a = detailed_user(&json!({"name": "bob", "emailAddress": "b@x", "active": false,
            "directoryName": "Bitbucket Internal Directory", "lastAuthenticationTimestamp": 1714557600000_i64}))
        .unwrap();
        assert_eq!(a.last_active.unwrap().to_rfc3339(), "2024-05-01T10:00:00+00:00");
        assert_eq!(a.directory.as_deref(), Some("Bitbucket Internal Directory"));
        assert!(!a.active);
        let never = detailed_user(&json!({"name": "new"})).unwrap();
        assert!(never.activity_reported && never.last_active.is_none());
    }

    #[test]
    fn license_reads_limited_and_unlimited() {
        let s = license_seats(&json!({"maximumNumberOfUsers": 50, "unlimitedNumberOfUsers": false,
            "status": {"currentNumberOfUsers": 12}}))
        .unwrap();
        assert_eq!((s.total, s.used), (Some(50), 12));
        let u = license_seats(&json!({"unlimitedNumberOfUsers": true, "status": {"currentNumberOfUsers": 3}})).unwrap();
        assert_eq!(u.total, None);
        assert!(license_seats(&json!({})).is_none());
    }

    #[test]
    fn permission_pages_pair_users_with_their_direct_permission() {
        let (grants, next) = permission_page(&json!({"values": [
            {"permission": "LICENSED_USER", "user": {"name": "bob"}}, {"permission": "ADMIN"}],
            "isLastPage": true}));
        assert_eq!((grants, next), (vec![("bob".to_string(), "LICENSED_USER".to_string())], None));
    }

    #[test]
    fn group_pages_are_followed_until_the_last() {
        let (names, next) = group_page(&json!({"values": [{"name": "a"}, {"name": "b"}],
            "isLastPage": false, "nextPageStart": 2}));
        assert_eq!((names, next), (vec!["a".to_string(), "b".to_string()], Some(2)));
        assert_eq!(group_page(&json!({"values": [], "isLastPage": true})).1, None);
    }
}
