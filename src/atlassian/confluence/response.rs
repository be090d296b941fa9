//! Pure reading of Confluence answers: long tasks and the current user.

use serde_json::Value;

use crate::atlassian::activity::{json_time, text, AccountActivity};

/// A licensed user of `admin/users/list/active?expand=lastLogin`: enabled, with its last login
/// (absent = never).
pub(super) fn licensed_user(person: &Value) -> Option<AccountActivity> {
    Some(AccountActivity {
        username: text(person, "username")?,
        display_name: text(person, "displayName"),
        email: text(person, "email"),
        active: true,
        last_active: json_time(person.get("lastLogin")),
        activity_reported: true,
        created: None,
        directory: None,
        groups: None,
    })
}

/// Whether a `Person` with `expand=status` is enabled: `status` as a string or `{value}`;
/// `None` when the field is missing or unreadable.
pub(super) fn is_enabled(person: &Value) -> Option<bool> {
    let status = person.get("status")?;
    let word = match status {
        Value::String(s) => s.as_str(),
        Value::Object(_) => status.get("value").or_else(|| status.get("name")).and_then(Value::as_str)?,
        _ => return None,
    };
    let w = word.to_ascii_lowercase();
    if w.contains("deactiv") || w.contains("inactiv") || w.contains("disabled") {
        Some(false)
    } else if w.contains("activ") || w.contains("enabled") {
        Some(true)
    } else {
        None
    }
}

/// A user of `user/list` as an account whose activity Confluence does not report.
pub(super) fn listed_user(person: &Value, enabled: bool) -> Option<AccountActivity> {
    Some(AccountActivity {
        username: text(person, "username")?,
        display_name: text(person, "displayName"),
        email: text(person, "email"),
        active: enabled,
        last_active: None,
        activity_reported: false,
        created: None,
        directory: None,
        groups: None,
    })
}

/// One page `{results, start, limit, size, _links.next}`: the results and whether more follow
/// (a `next` link, or a full page).
pub(super) fn page(body: &Value, asked: u32) -> (Vec<Value>, bool) {
    let results = body.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    let next = body.pointer("/_links/next").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let more = !results.is_empty() && (next || results.len() >= asked as usize);
    (results, more)
}

/// The licence REST module's `{"count": N}`.
pub(super) fn count(body: &Value) -> Option<i64> {
    body.get("count").and_then(Value::as_i64)
}

/// The task id from a 202 `LongTaskSubmission` (`id`, else the last segment of `links.status`).
pub(super) fn submission_id(body: &Value) -> Option<String> {
    if let Some(id) = body.get("id") {
        match id {
            Value::String(s) if !s.is_empty() => return Some(s.clone()),
            Value::Number(n) => return Some(n.to_string()),
            _ => {}
        }
    }
    let link = body.pointer("/links/status")?.as_str()?;
    // ".../rest/api/longtask/{id}/status" or ".../rest/api/longtask/{id}"
    let mut parts = link.trim_end_matches('/').rsplit('/');
    let last = parts.next()?;
    let id = if last == "status" { parts.next()? } else { last };
    (!id.is_empty()).then(|| id.to_string())
}

/// Where a Confluence long task stands (`LongTaskStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Task {
    Running,
    Succeeded,
    /// Finished with `successful: false`: a 2xx whose body reports failure.
    Failed(String),
}

pub(super) fn task(body: &Value) -> Task {
    let done = body.get("percentageComplete").and_then(Value::as_i64).is_some_and(|p| p >= 100);
    let successful = body.get("successful").and_then(Value::as_bool);
    match (done, successful) {
        (_, Some(false)) => Task::Failed(messages(body)),
        (true, _) => Task::Succeeded,
        _ => Task::Running,
    }
}

fn messages(body: &Value) -> String {
    let text: Vec<String> = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| {
                    m.get("translation").or_else(|| m.get("key")).and_then(Value::as_str).map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() {
        "Confluence long task finished unsuccessfully".into()
    } else {
        format!("Confluence long task failed: {}", text.join("; "))
    }
}

/// Anonymous access answers `GET /user/current` with 200 and the anonymous user, so a 200 alone
/// does not prove the credentials work.
pub(super) fn is_anonymous(body: &Value) -> bool {
    body.get("type").and_then(Value::as_str) == Some("anonymous")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn licensed_users_carry_last_login_as_millis_or_iso() {
        let a = licensed_user(&json!({"type": "known", "username": "ann", "displayName": "Ann",
            "email": "ann@example.com", "lastLogin": 1714557600000_i64}))
        .unwrap();
        assert_eq!(a.last_active.unwrap().to_rfc3339(), "2024-05-01T10:00:00+00:00");
        let iso = licensed_user(&json!({"username": "bo", "lastLogin": "2024-05-01T10:00:00.000Z"})).unwrap();
        assert_eq!(iso.last_active, a.last_active);
        let never = licensed_user(&json!({"username": "new"})).unwrap();
        assert!(never.activity_reported && never.last_active.is_none() && never.active);
    }

    #[test]
    fn status_expansion_is_read_leniently() {
        assert_eq!(is_enabled(&json!({"status": "ACTIVE"})), Some(true));
        assert_eq!(is_enabled(&json!({"status": {"value": "DEACTIVATED"}})), Some(false));
        assert_eq!(is_enabled(&json!({"status": "disabled"})), Some(false));
        assert_eq!(is_enabled(&json!({})), None);
        let u = listed_user(&json!({"username": "old"}), false).unwrap();
        assert!(!u.active && !u.activity_reported);
    }

    #[test]
    fn pages_continue_on_a_next_link_or_a_full_page() {
        assert!(page(&json!({"results": [{}], "_links": {"next": "/x?start=1"}}), 100).1);
        assert!(page(&json!({"results": [{}, {}]}), 2).1);
        assert!(!page(&json!({"results": [{}]}), 2).1);
        assert!(!page(&json!({"results": [], "_links": {"next": "/x"}}), 2).1);
        assert_eq!(count(&json!({"count": 48})), Some(48));
    }

    #[test]
    fn submission_id_is_read_from_id_or_status_link() {
        assert_eq!(submission_id(&json!({"id": "t-1"})), Some("t-1".into()));
        let linked = json!({"links": {"status": "http://h/confluence/rest/api/longtask/99/status"}});
        assert_eq!(submission_id(&linked), Some("99".into()));
        assert_eq!(submission_id(&json!({})), None);
    }

    #[test]
    fn long_task_states() {
        assert_eq!(task(&json!({"percentageComplete": 40})), Task::Running);
        assert_eq!(task(&json!({"percentageComplete": 100, "successful": true})), Task::Succeeded);
        let failed = task(&json!({"percentageComplete": 100, "successful": false,
            "messages": [{"translation": "User owns spaces"}]}));
        assert_eq!(failed, Task::Failed("Confluence long task failed: User owns spaces".into()));
    }

    #[test]
    fn anonymous_current_user_is_not_healthy() {
        assert!(is_anonymous(&json!({"type": "anonymous"})));
        assert!(!is_anonymous(&json!({"type": "known", "username": "svc"})));
    }
}
