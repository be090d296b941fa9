//! Pure reading of Crowd answers: the user entity and the error `reason`.

use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::atlassian::activity::{json_time, parse_time, text, AccountActivity};
use crate::atlassian::classify::Reply;

/// Crowd's activity attributes (`UserConstants.LAST_AUTHENTICATED` / `LAST_ACTIVITY`, S29):
/// epoch-millis strings (S32).
pub(super) const LAST_AUTHENTICATED: &str = "lastAuthenticated";
pub(super) const LAST_ACTIVE: &str = "lastActive";

/// The later of `lastAuthenticated` and `lastActive` in an attribute list
/// `[{name, values:[…]}]`; `None` when neither is set.
pub(super) fn last_active(attributes: &[Value]) -> Option<DateTime<Utc>> {
    attributes
        .iter()
        .filter(|a| matches!(a.get("name").and_then(Value::as_str), Some(LAST_AUTHENTICATED | LAST_ACTIVE)))
        .filter_map(|a| a.get("values")?.as_array()?.first()?.as_str().and_then(parse_time))
        .max()
}

/// The expanded attribute list of a user entity (`attributes.attributes`), or of a
/// `GET /user/attribute` body (`attributes`); `None` when the expansion was not honoured (only
/// a link).
pub(super) fn attribute_list(v: &Value) -> Option<&Vec<Value>> {
    v.pointer("/attributes/attributes").or_else(|| v.get("attributes")).and_then(Value::as_array)
}

/// An account from a user entity. `activity_reported` is true when the entity carried its
/// attributes (then missing activity attributes mean "never authenticated").
pub(super) fn account(entity: &Value) -> Option<AccountActivity> {
    let attributes = attribute_list(entity);
    Some(AccountActivity {
        username: text(entity, "name")?,
        display_name: text(entity, "display-name"),
        email: text(entity, "email"),
        active: entity.get("active").and_then(Value::as_bool).unwrap_or(true),
        last_active: attributes.and_then(|a| last_active(a)),
        activity_reported: attributes.is_some(),
        created: json_time(entity.get("created-date")),
        directory: None,
        groups: None,
    })
}

/// The entities of a `search` answer (`{"users":[…]}`) or group members page.
pub(super) fn users(body: &Value) -> Vec<Value> {
    body.get("users").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// The user fields `PUT /user` must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CrowdUser {
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
}

pub(super) fn user(body: &Value) -> Option<CrowdUser> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(CrowdUser {
        name: body.get("name")?.as_str()?.to_string(),
        first_name: text("first-name"),
        last_name: text("last-name"),
        display_name: text("display-name"),
        email: text("email"),
        active: body.get("active").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// Crowd error bodies are `{"reason": "USER_NOT_FOUND", "message": "…"}`.
pub(super) fn reason(reply: &Reply) -> Option<String> {
    reply.json()?.get("reason")?.as_str().map(str::to_string)
}

/// 404 on membership removal because the membership (not the user or group) is missing.
/// Crowd's "no such user" (404 `USER_NOT_FOUND`, atlassian-dc.md §4 "404 (user not found)");
/// other 404s name a group (`GROUP_NOT_FOUND`) or a membership (`MEMBERSHIP_NOT_FOUND`).
pub(super) fn is_missing_user(reply: &Reply) -> bool {
    reply.status == 404 && reason(reply).as_deref() == Some("USER_NOT_FOUND")
}

pub(super) fn is_missing_membership(reply: &Reply) -> bool {
    reply.status == 404 && reason(reply).as_deref() == Some("MEMBERSHIP_NOT_FOUND")
}

/// 400 on `POST /user` because the user exists (Crowd uses 400 for both invalid and existing).
pub(super) fn is_existing_user(reply: &Reply) -> bool {
    reply.status == 400
        && reason(reply).as_deref() == Some("INVALID_USER")
        && reply.body.to_lowercase().contains("already exists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply { status, headers: vec![], body: body.to_string() }
    }

    #[test]
    fn activity_is_the_later_of_the_two_millis_attributes() {
        let attrs = json!([{"name": "lastAuthenticated", "values": ["1714557600000"]},
            {"name": "lastActive", "values": ["1714561200000"]}, {"name": "invalidPasswordAttempts", "values": ["0"]}]);
        let when = last_active(attrs.as_array().unwrap()).unwrap();
        assert_eq!(when.to_rfc3339(), "2024-05-01T11:00:00+00:00");
        assert_eq!(last_active(&[]), None);
    }

    #[test]
    fn entity_with_expanded_attributes_reports_activity_and_creation() {
        let a = account(&json!({"name": "ann", "active": false, "display-name": "Ann Lee",
            "created-date": 1704067200000_i64,
            "attributes": {"attributes": [{"name": "lastAuthenticated", "values": ["1714557600000"]}], "link": {}}}))
        .unwrap();
        assert!(a.activity_reported && !a.active);
        assert_eq!(a.created.unwrap().to_rfc3339(), "2024-01-01T00:00:00+00:00");
        let never = account(&json!({"name": "new", "attributes": {"attributes": []}})).unwrap();
        assert!(never.activity_reported && never.last_active.is_none());
        let unexpanded = account(&json!({"name": "x", "attributes": {"link": {"href": "/a"}}})).unwrap();
        assert!(!unexpanded.activity_reported);
        let body = json!({"attributes": [{"name": "lastActive", "values": ["1714557600000"]}]});
        assert!(attribute_list(&body).is_some());
    }

    #[test]
    fn user_entity_is_read_with_dashed_names() {
        let u = user(&json!({"name": "ann", "first-name": "Ann", "last-name": "Lee",
            "display-name": "Ann Lee", "email": "a@x", "active": false,
            "password": {"link": {}}}))
        .unwrap();
        assert_eq!((u.first_name.as_str(), u.active), ("Ann", false));
    }

    #[test]
    fn missing_membership_is_told_apart_from_missing_user() {
        assert!(is_missing_membership(&reply(404, json!({"reason": "MEMBERSHIP_NOT_FOUND"}))));
        assert!(!is_missing_membership(&reply(404, json!({"reason": "USER_NOT_FOUND"}))));
    }

    #[test]
    fn existing_user_400_is_recognised() {
        assert!(is_existing_user(&reply(400, json!({"reason": "INVALID_USER", "message": "User already exists"}))));
        assert!(!is_existing_user(&reply(400, json!({"reason": "INVALID_USER", "message": "Bad email"}))));
    }
}
