//! The mass-offboarding brake before a run queues anything (issue 12 §1): a cleanup, licence or
//! bulk `--apply` that would take access away from more accounts than the brake lets through
//! refuses up front, naming how many and the limit, unless the operator allowed it
//! (`--allow-over-guard`), which is audited on the run and lets its intents past the brake.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::context::action_name;
use super::{Jobs, LifecycleError};
use crate::guard::is_destructive;
use crate::policy::Intent;

impl Jobs {
    /// The same jobs; `allow` lets an `--apply` over the brake's limit queue anyway (audited).
    pub fn with_allow_over_guard(self, allow: bool) -> Jobs {
        Jobs { allow_over_guard: allow, ..self }
    }

    /// Checks a run's intents against the brake before they are queued.
    ///
    /// # Errors
    /// `OverGuard` when the run goes over the limit and the operator did not allow it; a store
    /// error writing the audit record of an allowed one.
    pub(crate) fn check_guard<'a>(
        &self,
        intents: impl IntoIterator<Item = &'a Intent>,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        let destructive: Vec<&Intent> =
            intents.into_iter().filter(|i| !i.dry_run && is_destructive(&action_name(&i.action))).collect();
        let count = destructive.len() as u64;
        if !self.store.guard_run_exceeds(count) {
            return Ok(());
        }
        let accounts: HashSet<(&str, String)> =
            destructive.iter().map(|i| (i.target.as_str(), i.username.to_lowercase())).collect();
        let g = self.store.guard_status();
        let limit = g.limit.unwrap_or(0);
        if !self.allow_over_guard {
            return Err(LifecycleError::OverGuard(format!(
                "refused by the mass-offboarding brake: this run would take access away from {} accounts ({count} deactivations, deletions, anonymizations or licence removals), over the limit of {limit} per {} s ([guard] max_offboardings / max_fraction; {} already went out in this window). Nothing was queued. Check the dry run, then run it again with --allow-over-guard to queue it anyway (audited), or narrow it.",
                accounts.len(),
                g.window_secs,
                g.used,
            )));
        }
        let details = json!({
            "accounts": accounts.len(), "destructive_intents": count, "limit": limit,
            "window_secs": g.window_secs, "used": g.used,
            "detail": "--allow-over-guard: this run's intents pass the mass-offboarding brake and are not counted",
        });
        let at = super::report::rfc3339(now);
        self.store.audit_operator(self.operator(), crate::store::GUARD_SUBJECT, "allow_over_guard", details, &at)?;
        self.store.guard_allow_run(&self.operator().run_id);
        tracing::warn!(
            accounts = accounts.len(),
            intents = count,
            limit,
            actor = %self.operator().actor,
            run_id = %self.operator().run_id,
            "An operator let a run past the mass-offboarding brake (--allow-over-guard)."
        );
        Ok(())
    }
}
