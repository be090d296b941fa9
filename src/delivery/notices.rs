//! The notices delivery raises (`notify::Notice`): a dead letter, and (for channels that list
//! `offboarded`) each delivered deactivation, deletion or anonymization.

use crate::notify::Notice;
use crate::policy::{Intent, IntentAction};
use crate::store::{OutboxEntry, Store, StoreResult};

fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_string(),
        Err(_) => String::new(),
    }
}

/// The notice of job `seq` becoming a dead letter for `error`.
pub(super) fn dead_letter(seq: u64, entry: &OutboxEntry, intent: &Intent, error: &str) -> Notice {
    Notice::DeadLetter {
        job: seq,
        target: intent.target.clone(),
        user_id: intent.user_id.clone(),
        username: intent.username.clone(),
        action: name(&intent.action),
        trigger: name(&intent.trigger),
        reason: entry.reason(),
        error: error.to_string(),
        actor: entry.operator.as_ref().map(|o| o.actor.clone()),
        run_id: entry.operator.as_ref().map(|o| o.run_id.clone()),
    }
}

/// Stores the `offboarded` notice of a delivered destructive intent, when a channel wants it
/// (nothing is built otherwise, so offboarding at volume costs nothing without it).
pub(super) fn offboarded(store: &Store, seq: u64, entry: &OutboxEntry, intent: &Intent) -> StoreResult<()> {
    let destructive =
        matches!(intent.action, IntentAction::Deactivate | IntentAction::Delete | IntentAction::Anonymize);
    if !destructive || intent.dry_run || !store.wants_notice("offboarded") {
        return Ok(());
    }
    store.enqueue_notice(&Notice::Offboarded {
        job: seq,
        target: intent.target.clone(),
        user_id: intent.user_id.clone(),
        username: intent.username.clone(),
        action: name(&intent.action),
        trigger: name(&intent.trigger),
        reason: entry.reason(),
        actor: entry.operator.as_ref().map(|o| o.actor.clone()),
        run_id: entry.operator.as_ref().map(|o| o.run_id.clone()),
    })?;
    Ok(())
}
