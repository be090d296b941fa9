//! Reactivating a user whose offboarding fell back to removing access groups (the product refused
//! to deactivate, `atlassian/fallback.rs`): the user was never deactivated, so "reactivate" alone
//! would leave them without access. The groups the fallback removed are read back from the
//! user's audit records and re-added after the reactivation. Pure: the worker passes the records.

use serde_json::Value;

/// The groups that fallback offboardings on `target` took from the user and that no later
/// delivered reactivation gave back, in removal order, without duplicates. `records` are the
/// user's audit records, oldest first (as `Store::audit_of` returns them).
pub fn groups_to_restore(records: &[Value], target: &str) -> Vec<String> {
    // Newest first, back to the last delivered reactivation on this target.
    let since_reactivation = records
        .iter()
        .rev()
        .filter(|r| r["type"] == "delivery" && r["target"] == target)
        .take_while(|r| !(r["action"]["type"] == "reactivate" && r["outcome"] == "delivered"));
    let fallbacks: Vec<&Value> = since_reactivation
        .filter(|r| r["action"]["type"] == "deactivate" && matches!(r["outcome"].as_str(), Some("delivered" | "dead")))
        .collect();
    let mut groups: Vec<String> = Vec::new();
    for r in fallbacks.into_iter().rev() {
        let removed = r["fallback"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["groups_removed"].as_array().into_iter().flatten());
        for g in removed.filter_map(Value::as_str) {
            if !groups.iter().any(|x| x.eq_ignore_ascii_case(g)) {
                groups.push(g.to_string());
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(kind: &str, outcome: &str, removed: &[&str]) -> Value {
        json!({"type": "delivery", "target": "jira", "action": {"type": kind}, "outcome": outcome,
               "fallback": [{"groups_removed": removed}]})
    }

    #[test]
    fn the_groups_of_fallback_offboardings_since_the_last_reactivation_come_back() {
        let records = vec![
            rec("deactivate", "delivered", &["old"]),
            rec("reactivate", "delivered", &[]),
            rec("deactivate", "retry", &["x"]),
            rec("deactivate", "dead", &["a"]),
            json!({"type": "delivery", "target": "wiki", "action": {"type": "deactivate"}, "outcome": "delivered",
                   "fallback": [{"groups_removed": ["other-target"]}]}),
            rec("deactivate", "delivered", &["b", "A"]),
            rec("reactivate", "retry", &[]),
        ];
        assert_eq!(groups_to_restore(&records, "jira"), vec!["a", "b"], "oldest first, first spelling kept");
    }

    #[test]
    fn a_plain_deactivation_restores_nothing() {
        let records = vec![json!({"type": "delivery", "target": "jira", "action": {"type": "deactivate"},
                                   "outcome": "delivered", "effect": "applied"})];
        assert!(groups_to_restore(&records, "jira").is_empty());
    }
}
