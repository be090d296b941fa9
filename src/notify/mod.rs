//! Notifications (issue 12 §4): email over SMTP and webhooks (Slack, Teams, signed JSON), fed
//! from a durable lane of their own in the store (`store/notices.rs`), so a notice survives a
//! crash and a restart does not send it again. The sender (`sender.rs`) runs beside the
//! delivery worker and never holds it up.
//!
//! To notify: build a [`Notice`] and call `store.enqueue_notice(&notice)` (or, inside the
//! cause's own sled transaction, `store.notice_row(&notice)` + `NoticeRow::put`). Events no
//! configured channel wants are not stored.

pub mod config;
pub mod email;
pub mod render;
pub mod sender;
pub mod sign;
pub mod webhook;

use serde::{Deserialize, Serialize};

pub use config::{Channel, NotifyConfig, NotifyFile};
pub use sender::{NotifySender, SenderHandle};

/// Every event that can be notified, with the facts the messages give (who, what, why, when,
/// which run). Serialised as `{"event": "<name>", ...fields}`: the JSON webhook body's `data`
/// and the stored form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// The mass-offboarding brake engaged: destructive intents are held until an operator
    /// approves or rejects them.
    Held {
        /// Intents held now.
        held: u64,
        /// The limit and window that were exceeded.
        limit: u64,
        window_secs: u64,
        /// What caused the surge, when known (`entra`, a run id...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// An intent ran out of attempts or got a permanent refusal; an operator must look at it.
    DeadLetter {
        job: u64,
        target: String,
        user_id: String,
        username: String,
        /// The intent's action (`deactivate`, `add_to_group`...).
        action: String,
        /// What caused it (`disabled`, `cleanup`...).
        trigger: String,
        /// Why, in the reason vocabulary (`crate::reason`: `idp_disabled`, `inactive`...);
        /// empty in notices stored before reasons were carried.
        #[serde(default)]
        reason: String,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    /// A target has been unreachable for longer than `target_down_secs`.
    TargetDown {
        target: String,
        /// When it went down (RFC 3339).
        since: String,
        down_secs: u64,
        error: String,
    },
    /// A scheduled lifecycle run finished.
    RunFinished {
        /// `cleanup`, `license`, `reconcile`, `activity-refresh`.
        kind: String,
        run_id: String,
        report_id: u64,
        /// `apply` or `dry_run`.
        mode: String,
        started_at: String,
        finished_at: String,
        /// Intents the run queued.
        enqueued: u64,
        /// Accounts the run would change or changed, over all targets.
        affected: u64,
        /// Targets the run could not read, with the error.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<String>,
        /// Where the full report is: the admin API's URL (path when no `public_url`).
        report: String,
    },
    /// An offboarding was delivered (off by default: only channels listing `offboarded`).
    Offboarded {
        job: u64,
        target: String,
        user_id: String,
        username: String,
        action: String,
        trigger: String,
        /// Why, in the reason vocabulary (`crate::reason`).
        #[serde(default)]
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    /// §3: the warning to one user (their Atlassian email) before an inactivity or licence
    /// action. Sent by email only, to that user, never to webhooks or the admins.
    UserWarning {
        /// The user's email address.
        to: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        target: String,
        /// The product's name for the user ("Jira", "Confluence"); the target's name if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product: Option<String>,
        /// What will happen (`deactivate`, `remove_license`).
        action: String,
        /// Why (`inactive`, `license_reclaimed`), and the last activity seen.
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_active: Option<String>,
        /// When the action falls due (RFC 3339).
        due_at: String,
        run_id: String,
    },
}

/// The event names, as `events = [...]` writes them (the user warning is not one: it always
/// goes to its user by email).
pub const EVENTS: [&str; 5] = ["held", "dead_letter", "target_down", "run_finished", "offboarded"];
/// The events a channel gets when it lists none: all but `offboarded`.
pub const DEFAULT_EVENTS: [&str; 4] = ["held", "dead_letter", "target_down", "run_finished"];
pub const USER_WARNING: &str = "user_warning";

impl Notice {
    /// The event name (`held`, `dead_letter`, ..., `user_warning`).
    pub fn event(&self) -> &'static str {
        match self {
            Notice::Held { .. } => "held",
            Notice::DeadLetter { .. } => "dead_letter",
            Notice::TargetDown { .. } => "target_down",
            Notice::RunFinished { .. } => "run_finished",
            Notice::Offboarded { .. } => "offboarded",
            Notice::UserWarning { .. } => USER_WARNING,
        }
    }

    /// Whether a daily digest may carry it: not the brake (deliveries wait on an operator) and
    /// not a user's warning (it is theirs, and due on its own date).
    pub fn may_wait_for_digest(&self) -> bool {
        !matches!(self, Notice::Held { .. } | Notice::UserWarning { .. })
    }
}
