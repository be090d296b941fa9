//! Pure reading of Jira answers: user beans, idempotent 400s, anonymization task bodies.

use serde_json::Value;

use crate::atlassian::activity::{json_time, text, AccountActivity, Seats};
use crate::atlassian::classify::{error_summary, Reply};

/// Jira's last-login field on `UserBean` (10.3 spec; absent from older versions, §2.7).
pub(super) const LAST_LOGIN: &str = "lastLoginTime";

/// An account from a `UserBean` (listing or `GET /user`). The bool says whether the bean carried
/// `lastLoginTime` at all (a listing that never carries it proves nothing about "never").
/// `None` for beans without a name, and for deleted users.
pub(super) fn activity(bean: &Value) -> Option<(AccountActivity, bool)> {
    let username = text(bean, "name")?;
    if bean.get("deleted").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let carried = bean.get(LAST_LOGIN).is_some_and(|v| !v.is_null());
    let groups = bean
        .pointer("/groups/items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect());
    Some((
        AccountActivity {
            username,
            display_name: text(bean, "displayName"),
            email: text(bean, "emailAddress"),
            active: bean.get("active").and_then(Value::as_bool).unwrap_or(true),
            last_active: json_time(bean.get(LAST_LOGIN)),
            activity_reported: carried,
            created: None,
            directory: None,
            groups,
        },
        carried,
    ))
}

/// One `StreamPageBean` of `GET /user/list`: the beans and the next cursor (`None` on the last).
pub(super) fn stream_page(body: &Value) -> (Vec<Value>, Option<String>) {
    let values = body.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
    let last = body.get("isLast").and_then(Value::as_bool).unwrap_or(true);
    let next = match body.get("nextCursor") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    (values, if last { None } else { next })
}

/// One `GET /group/member` page: member names and whether it was the last page.
pub(super) fn member_page(body: &Value) -> (Vec<String>, bool) {
    let names: Vec<String> = body
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(|u| text(u, "name")).collect())
        .unwrap_or_default();
    let last = body.get("isLast").and_then(Value::as_bool).unwrap_or(names.is_empty());
    (names, last)
}

/// Seats of one `ApplicationRoleBean`: `numberOfSeats` unless `hasUnlimitedSeats`, used =
/// `userCount`.
pub(super) fn role_seats(bean: &Value) -> Option<Seats> {
    let key = text(bean, "key")?;
    let unlimited = bean.get("hasUnlimitedSeats").and_then(Value::as_bool).unwrap_or(false);
    let total = bean.get("numberOfSeats").and_then(Value::as_i64).filter(|n| *n >= 0 && !unlimited);
    Some(Seats {
        total: total.map(|n| n.unsigned_abs()),
        used: bean.get("userCount").and_then(Value::as_u64).unwrap_or(0),
        detail: key,
    })
}

/// The parts of a `UserBean` the bridge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JiraUser {
    pub key: String,
    pub name: String,
    pub active: bool,
    pub deleted: bool,
    pub groups: Vec<String>,
}

/// Parses a `UserBean` (with `expand=groups`: `groups.items[].name`).
pub(super) fn user(body: &Value) -> Option<JiraUser> {
    let groups = body
        .pointer("/groups/items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    Some(JiraUser {
        key: body.get("key")?.as_str()?.to_string(),
        name: body.get("name")?.as_str()?.to_string(),
        active: body.get("active").and_then(Value::as_bool).unwrap_or(true),
        deleted: body.get("deleted").and_then(Value::as_bool).unwrap_or(false),
        groups,
    })
}

fn messages_contain(reply: &Reply, needles: &[&str]) -> bool {
    let text = error_summary(&reply.body).to_lowercase();
    needles.iter().any(|n| text.contains(n))
}

/// 400 on `POST /group/user` when the user already belongs to the group (§2.3).
/// Jira's own "no such user" answer: 404 with its `ErrorCollection` body (`errorMessages`,
/// atlassian-dc.md §1.3; `GET /user` lists 404 among its answers, §2.2). A 404
/// without it (an HTML page) comes from a wrong base URL or context path, not from Jira's user
/// resource, and must not be read as "the user does not exist".
pub(super) fn is_no_such_user(reply: &Reply) -> bool {
    reply.status == 404 && reply.json().is_some_and(|v| v.get("errorMessages").is_some_and(Value::is_array))
}

pub(super) fn is_already_member(reply: &Reply) -> bool {
    reply.status == 400 && messages_contain(reply, &["already a member", "already belongs"])
}

/// 400 on `DELETE /group/user` when the user is not in the group.
pub(super) fn is_not_member(reply: &Reply) -> bool {
    reply.status == 400 && messages_contain(reply, &["not a member", "is not in"])
}

/// Old Jira answered `{"active":false}` on an inactive user with 400
/// `error.no.value.found.to.be.changed` (JRASERVER-36639, §2.2).
pub(super) fn is_nothing_to_change(reply: &Reply) -> bool {
    reply.status == 400 && messages_contain(reply, &["no.value.found.to.be.changed", "no value found to be changed"])
}

/// A 2xx on `PUT /user` that still shows the old `active` value is a silent no-op.
pub(super) fn put_ignored_active(reply: &Reply, wanted: bool) -> bool {
    reply.json().and_then(|v| v.get("active").and_then(Value::as_bool)).is_some_and(|active| active != wanted)
}

/// The task id from a 202 schedule answer: `progressUrl` `…/progress?taskId=N`, or `taskId`.
pub(super) fn task_id(body: &Value) -> Option<String> {
    if let Some(id) = body.get("taskId") {
        return match id {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
    }
    let url = body.get("progressUrl")?.as_str()?;
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix("taskId=")).filter(|id| !id.is_empty()).map(str::to_string)
}

/// Errors reported inside an anonymization validation or progress body (a map of operation →
/// `ErrorCollection`, §1.3). Empty when there are none.
pub(super) fn anonymization_errors(body: &Value) -> String {
    let Some(map) = body.get("errors").and_then(Value::as_object) else {
        return String::new();
    };
    map.iter()
        .filter_map(|(op, coll)| {
            let text = error_summary(&coll.to_string());
            (!text.is_empty()).then(|| format!("{op}: {text}"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where an anonymization task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Progress {
    Running,
    Completed,
    /// COMPLETED with errors, or VALIDATION_FAILED: the body says it failed.
    Failed(String),
    /// The node running it died; it can be rerun.
    Interrupted,
}

pub(super) fn progress(body: &Value) -> Progress {
    let errors = anonymization_errors(body);
    match body.get("status").and_then(Value::as_str).unwrap_or("") {
        "COMPLETED" if errors.is_empty() => Progress::Completed,
        "COMPLETED" => Progress::Failed(format!("anonymization completed with errors: {errors}")),
        "VALIDATION_FAILED" => Progress::Failed(format!("anonymization validation failed: {errors}")),
        "INTERRUPTED" => Progress::Interrupted,
        _ => Progress::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply { status, headers: vec![], body: body.to_string() }
    }

    #[test]
    fn listing_bean_with_last_login_is_an_active_account() {
        let (a, carried) = activity(&json!({"key": "JIRAUSER10100", "name": "fred", "active": true,
            "displayName": "Fred F. User", "emailAddress": "fred@example.com",
            "lastLoginTime": "2023-08-30T16:37:01+1000"}))
        .unwrap();
        assert!(carried && a.activity_reported && a.active);
        assert_eq!(a.last_active.unwrap().to_rfc3339(), "2023-08-30T06:37:01+00:00");
        assert_eq!(a.email.as_deref(), Some("fred@example.com"));
        assert_eq!(a.groups, None);
    }

    #[test]
    fn bean_without_last_login_says_so_and_deleted_users_are_skipped() {
        let (a, carried) = activity(&json!({"name": "new", "active": false})).unwrap();
        assert!(!carried && !a.active && a.last_active.is_none());
        assert!(activity(&json!({"name": "gone", "deleted": true})).is_none());
        let (g, _) = activity(&json!({"name": "al", "groups": {"items": [{"name": "devs"}]}})).unwrap();
        assert_eq!(g.groups, Some(vec!["devs".to_string()]));
    }

    #[test]
    fn stream_pages_follow_the_cursor_until_is_last() {
        let (v, next) = stream_page(&json!({"values": [{"name": "a"}], "isLast": false, "nextCursor": "17"}));
        assert_eq!((v.len(), next.as_deref()), (1, Some("17")));
        assert_eq!(stream_page(&json!({"values": [], "isLast": true, "nextCursor": "17"})).1, None);
        assert_eq!(member_page(&json!({"values": [{"name": "a"}], "isLast": false})), (vec!["a".into()], false));
    }

    #[test]
    fn role_seats_read_limits_and_unlimited_roles() {
        let s = role_seats(&json!({"key": "jira-software", "numberOfSeats": 10, "remainingSeats": 5,
            "userCount": 5, "hasUnlimitedSeats": false}))
        .unwrap();
        assert_eq!((s.total, s.used, s.detail.as_str()), (Some(10), 5, "jira-software"));
        let u = role_seats(&json!({"key": "jira-core", "numberOfSeats": 500, "userCount": 0,
            "hasUnlimitedSeats": true}))
        .unwrap();
        assert_eq!(u.total, None);
    }

    #[test]
    fn user_bean_with_expanded_groups_is_read() {
        let u = user(&json!({
            "key": "JIRAUSER10100", "name": "alice", "active": false,
            "groups": {"size": 1, "items": [{"name": "jira-software-users"}]}
        }))
        .unwrap();
        assert_eq!(u.key, "JIRAUSER10100");
        assert!(!u.active && !u.deleted);
        assert_eq!(u.groups, vec!["jira-software-users"]);
    }

    #[test]
    fn duplicate_membership_400_is_recognised_but_other_400s_are_not() {
        let dup = reply(
            400,
            json!({"errorMessages": ["Cannot add user. 'alice' is already a member of 'devs'"], "errors": {}}),
        );
        assert!(is_already_member(&dup));
        let empty = reply(400, json!({"errorMessages": ["Group name is empty."]}));
        assert!(!is_already_member(&empty));
        assert!(!is_already_member(&reply(404, json!({"errorMessages": ["already a member"]}))));
    }

    #[test]
    fn old_jira_no_change_error_is_recognised() {
        let r = reply(400, json!({"errorMessages": [], "errors": {"active": "error.no.value.found.to.be.changed"}}));
        assert!(is_nothing_to_change(&r));
    }

    #[test]
    fn put_that_left_the_user_active_is_detected() {
        assert!(put_ignored_active(&reply(200, json!({"active": true})), false));
        assert!(!put_ignored_active(&reply(200, json!({"active": false})), false));
        assert!(!put_ignored_active(&reply(200, json!({})), false));
    }

    #[test]
    fn task_id_comes_from_the_progress_url() {
        let body = json!({"progressUrl": "/rest/api/2/user/anonymization/progress?taskId=42"});
        assert_eq!(task_id(&body), Some("42".into()));
        assert_eq!(task_id(&json!({"taskId": 7})), Some("7".into()));
        assert_eq!(task_id(&json!({})), None);
    }

    #[test]
    fn progress_statuses_map_to_outcomes() {
        assert_eq!(progress(&json!({"status": "IN_PROGRESS"})), Progress::Running);
        assert_eq!(progress(&json!({"status": "COMPLETED", "errors": {}})), Progress::Completed);
        assert_eq!(progress(&json!({"status": "INTERRUPTED"})), Progress::Interrupted);
        let failed = progress(&json!({"status": "COMPLETED",
            "errors": {"USER_NAME_CHANGE": {"errorMessages": ["directory is read-only"], "errors": {}}}}));
        assert!(matches!(failed, Progress::Failed(m) if m.contains("read-only")));
        assert!(matches!(progress(&json!({"status": "VALIDATION_FAILED"})), Progress::Failed(_)));
    }
}
