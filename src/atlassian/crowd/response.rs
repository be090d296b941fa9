//! Pure reading of Crowd answers: the user entity and the error `reason`.

use serde_json::Value;

use crate::atlassian::classify::Reply;

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
