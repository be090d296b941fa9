//! The facts of "the brake engaged", in one place: the store records them in the audit log and
//! the log when the first intent is held; the notification (issue 12 §4) is sent from here.

use serde_json::{json, Value};

/// What an admin must know when the brake engages.
#[derive(Debug, Clone)]
pub struct BrakeFacts {
    pub at: String,
    /// Destructive intents let through in the window when it engaged.
    pub used: u64,
    pub limit: u64,
    pub window_secs: u64,
    /// Intents held by the change or run that engaged it.
    pub held: u64,
    /// The first held job and what caused it (the IdP credential or the run's operator).
    pub first_job: u64,
    pub actor: String,
    pub run_id: String,
}

/// The brake engaged: the admins' notification (`notify`, event `held`), stored in the same
/// transaction as the held intents, so it is sent once per engagement and never lost. The source
/// names who caused the surge (the IdP credential or the operator, and the run).
pub fn held_notification(f: &BrakeFacts) -> crate::notify::Notice {
    let source = match (f.actor.is_empty(), f.run_id.is_empty()) {
        (true, true) => None,
        (false, true) => Some(f.actor.clone()),
        (true, false) => Some(format!("run {}", f.run_id)),
        (false, false) => Some(format!("{} (run {})", f.actor, f.run_id)),
    };
    crate::notify::Notice::Held { held: f.held, limit: f.limit, window_secs: f.window_secs, source }
}

/// The brake engaged: the audit record and log line (event `held`) as JSON, with the command
/// that approves.
pub fn brake_engaged_notice(f: &BrakeFacts) -> Value {
    json!({
        "event": "held",
        "type": "guard",
        "outcome": "brake_engaged",
        "at": f.at,
        "used": f.used,
        "limit": f.limit,
        "window_secs": f.window_secs,
        "held": f.held,
        "first_job": f.first_job,
        "actor": f.actor,
        "run_id": f.run_id,
        "detail": format!(
            "The mass-offboarding brake engaged: {} destructive intents in the last {} s reached the limit of {} ([guard] max_offboardings / max_fraction). Further deactivations, deletions, anonymizations and licence removals are held, not delivered. Review them with `scimbridge held list`, then `scimbridge held approve --all` or `scimbridge held reject --all`.",
            f.used, f.window_secs, f.limit
        ),
        "approve_command": "scimbridge held approve --all",
        "list_command": "scimbridge held list",
    })
}
