//! Pure reading of Confluence answers: long tasks and the current user.

use serde_json::Value;

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
