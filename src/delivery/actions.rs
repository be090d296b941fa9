//! From a policy intent to the product calls that carry it out, pure.

use crate::atlassian::Action;
use crate::policy::{Intent, IntentAction};

/// The actions for one intent, executed in order; all must succeed for the intent to be done.
pub fn for_intent(intent: &Intent) -> Vec<Action> {
    let username = intent.username.clone();
    match &intent.action {
        IntentAction::CreateUser { display_name, email } => {
            vec![Action::CreateUser { username, display_name: display_name.clone(), email: email.clone() }]
        }
        IntentAction::Deactivate => vec![Action::Deactivate { username }],
        IntentAction::Reactivate => vec![Action::Reactivate { username }],
        IntentAction::Delete => vec![Action::Delete { username }],
        IntentAction::Anonymize => vec![Action::Anonymize { username }],
        IntentAction::RemoveLicense { groups } => vec![Action::RemoveLicense { username, groups: groups.clone() }],
        // No product has a "restore licence" call: it is membership of the licence groups.
        IntentAction::RestoreLicense { groups } => {
            groups.iter().map(|g| Action::AddToGroup { username: username.clone(), group: g.clone() }).collect()
        }
        IntentAction::AddToGroup { group } => vec![Action::AddToGroup { username, group: group.clone() }],
        IntentAction::RemoveFromGroup { group } => vec![Action::RemoveFromGroup { username, group: group.clone() }],
        // The group gate (`groups.rs`) creates the group before any action runs.
        IntentAction::CreateGroup { .. } => Vec::new(),
        IntentAction::DeleteGroup { group } => vec![Action::DeleteGroup { group: group.clone() }],
        IntentAction::UpdateProfile { display_name, email } => {
            vec![Action::UpdateProfile { username, display_name: display_name.clone(), email: email.clone() }]
        }
        // Not a connector action: `link.rs` renames and moves the link together.
        IntentAction::RenameUser { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Trigger;

    fn intent(action: IntentAction) -> Intent {
        Intent {
            target: "jira".into(),
            user_id: "u1".into(),
            username: "alice".into(),
            action,
            trigger: Trigger::Disabled,
            dry_run: false,
        }
    }

    #[test]
    fn restoring_a_licence_adds_the_user_to_every_licence_group() {
        let a = for_intent(&intent(IntentAction::RestoreLicense { groups: vec!["a".into(), "b".into()] }));
        assert_eq!(
            a,
            vec![
                Action::AddToGroup { username: "alice".into(), group: "a".into() },
                Action::AddToGroup { username: "alice".into(), group: "b".into() }
            ]
        );
    }

    #[test]
    fn simple_intents_map_one_to_one() {
        assert_eq!(
            for_intent(&intent(IntentAction::Deactivate)),
            vec![Action::Deactivate { username: "alice".into() }]
        );
        assert_eq!(
            for_intent(&intent(IntentAction::RemoveFromGroup { group: "g".into() })),
            vec![Action::RemoveFromGroup { username: "alice".into(), group: "g".into() }]
        );
    }
}
