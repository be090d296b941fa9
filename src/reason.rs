//! The reason vocabulary (issue 12 §2): why an intent exists, in one word that audit records,
//! lifecycle reports, `/metrics` labels and notifications all share. A leaf module with no
//! dependencies, so the pure policy and the store speak the same words without one importing the
//! other.
//!
//! Offboarding reasons (the issue's eight, exact): `idp_disabled`, `idp_deleted`, `access_lost`,
//! `inactive` (cleanup), `license_reclaimed`, `bulk` (the run id is on the record), `reconcile`,
//! `operator` (an operator's own act: `jobs retry --force`, …). The rest name what gave access or
//! changed an account: `idp_assigned`, `idp_enabled`, `access_regained`, `group_joined`,
//! `group_left`, `group_created`, `group_deleted`, `profile_updated`, `renamed`,
//! `license_granted`, and `idp_signal` (an account deactivated for inactivity came back because
//! the IdP spoke for the user again).
//!
//! The set is closed, so a metrics label built from it has bounded cardinality.

/// Every reason word, for documentation, validation and tests.
pub const ALL: [&str; 19] = [
    IDP_DISABLED,
    IDP_DELETED,
    ACCESS_LOST,
    INACTIVE,
    LICENSE_RECLAIMED,
    BULK,
    RECONCILE,
    OPERATOR,
    IDP_ASSIGNED,
    IDP_ENABLED,
    ACCESS_REGAINED,
    GROUP_JOINED,
    GROUP_LEFT,
    GROUP_CREATED,
    GROUP_DELETED,
    PROFILE_UPDATED,
    RENAMED,
    LICENSE_GRANTED,
    IDP_SIGNAL,
];

pub const IDP_DISABLED: &str = "idp_disabled";
pub const IDP_DELETED: &str = "idp_deleted";
pub const ACCESS_LOST: &str = "access_lost";
pub const INACTIVE: &str = "inactive";
pub const LICENSE_RECLAIMED: &str = "license_reclaimed";
pub const BULK: &str = "bulk";
pub const RECONCILE: &str = "reconcile";
pub const OPERATOR: &str = "operator";
pub const IDP_ASSIGNED: &str = "idp_assigned";
pub const IDP_ENABLED: &str = "idp_enabled";
pub const ACCESS_REGAINED: &str = "access_regained";
pub const GROUP_JOINED: &str = "group_joined";
pub const GROUP_LEFT: &str = "group_left";
pub const GROUP_CREATED: &str = "group_created";
pub const GROUP_DELETED: &str = "group_deleted";
pub const PROFILE_UPDATED: &str = "profile_updated";
pub const RENAMED: &str = "renamed";
pub const LICENSE_GRANTED: &str = "license_granted";
pub const IDP_SIGNAL: &str = "idp_signal";

/// The reason of an intent with this trigger (`policy::Trigger` as its JSON name). Every
/// trigger has exactly one; an unknown one (a newer release's entry read by an older one) reads
/// as `unknown`, never as an IdP decision it may not be.
pub fn for_trigger(trigger: &str) -> &'static str {
    match trigger {
        "created" => IDP_ASSIGNED,
        "disabled" => IDP_DISABLED,
        "enabled" => IDP_ENABLED,
        "deleted" => IDP_DELETED,
        "access_lost" => ACCESS_LOST,
        "access_regained" => ACCESS_REGAINED,
        "group_joined" => GROUP_JOINED,
        "group_left" => GROUP_LEFT,
        "cleanup" => INACTIVE,
        "license_reclaim" => LICENSE_RECLAIMED,
        "license_grant" => LICENSE_GRANTED,
        "bulk" => BULK,
        "reconcile" => RECONCILE,
        "group_created" => GROUP_CREATED,
        "group_deleted" => GROUP_DELETED,
        "profile_updated" => PROFILE_UPDATED,
        "renamed" => RENAMED,
        "idp_signal" => IDP_SIGNAL,
        "operator" => OPERATOR,
        _ => "unknown",
    }
}

/// The reason of an intent as stored (`policy::Intent` as JSON): an explicit `reason` on the
/// outbox entry wins (an operator's own act), else the one its trigger implies.
pub fn of_intent(intent: &serde_json::Value, explicit: Option<&str>) -> String {
    match explicit {
        Some(r) => r.to_string(),
        None => for_trigger(intent.get("trigger").and_then(serde_json::Value::as_str).unwrap_or_default()).to_string(),
    }
}

/// Whether an account deactivated for this reason comes back on any IdP signal for the user
/// (re-assignment, profile update, group change) rather than only when the IdP enables it.
/// Inactivity is Atlassian's view of the person; the IdP speaking for them again overrides it.
/// (A reclaimed licence comes back the same way, through the licence optimizer's seat count:
/// `lifecycle::on_idp_signal`.)
pub fn returns_on_any_signal(reason: &str) -> bool {
    reason == INACTIVE
}

/// Whether `s` is a word of the vocabulary.
pub fn is_known(s: &str) -> bool {
    ALL.contains(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_words_are_exact_and_every_trigger_has_a_known_reason() {
        assert_eq!(
            &ALL[..8],
            &[
                "idp_disabled",
                "idp_deleted",
                "access_lost",
                "inactive",
                "license_reclaimed",
                "bulk",
                "reconcile",
                "operator"
            ]
        );
        for t in [
            "created",
            "disabled",
            "enabled",
            "deleted",
            "access_lost",
            "access_regained",
            "group_joined",
            "group_left",
            "cleanup",
            "license_reclaim",
            "license_grant",
            "bulk",
            "reconcile",
            "group_created",
            "group_deleted",
            "profile_updated",
            "renamed",
            "idp_signal",
        ] {
            assert!(is_known(for_trigger(t)), "{t}");
        }
        assert_eq!(for_trigger("nonsense"), "unknown");
    }

    #[test]
    fn an_explicit_reason_wins_over_the_trigger() {
        let i = serde_json::json!({"trigger": "disabled"});
        assert_eq!(of_intent(&i, None), "idp_disabled");
        assert_eq!(of_intent(&i, Some("operator")), "operator");
    }

    #[test]
    fn only_inactivity_returns_on_any_signal() {
        assert!(returns_on_any_signal(INACTIVE));
        for r in [IDP_DISABLED, ACCESS_LOST, BULK, RECONCILE, OPERATOR, IDP_DELETED] {
            assert!(!returns_on_any_signal(r), "{r}");
        }
    }
}
