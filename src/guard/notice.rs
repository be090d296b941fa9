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

/// The brake engaged: the notice (event `held`) as JSON, with the command that approves. The
/// one call site of the notification for this event (wired to `notify` at merge).
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
