//! The activity snapshot: every account of a target with its last activity, streamed page by page
//! from `Connector::for_each_account` into the `activity` tree (memory bounded by one page), on
//! demand (`scimbridge activity refresh`, `POST /admin/activity/refresh`), on a schedule, and at
//! the start of every job that decides on activity, so decisions use a listing of this run.
//! Never-logged-in accounts are recorded as such; their age falls back to the product's creation
//! date, else to when scimbridge first saw them.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::report::{Mode, Report, TargetSummary};
use super::{Jobs, LifecycleError};
use crate::atlassian::{AccountActivity, Connector, ReadStats};
use crate::store::{ActivityRecord, Store};

/// The stored form of one listed account.
pub(crate) fn record(a: &AccountActivity, now_ms: i64) -> ActivityRecord {
    ActivityRecord {
        username: a.username.clone(),
        display_name: a.display_name.clone(),
        email: a.email.clone(),
        active: a.active,
        last_active_ms: a.last_active.map(|t| t.timestamp_millis()),
        activity_reported: a.activity_reported,
        created_ms: a.created.map(|t| t.timestamp_millis()),
        directory: a.directory.clone(),
        groups: a.groups.clone(),
        first_seen_ms: now_ms,
        fetched_ms: now_ms,
    }
}

/// Lists every account of `conn` into the snapshot and hands each (with `first_seen_ms` as
/// stored) to `on_account`. After a complete listing, accounts no longer listed are dropped
/// and the run is recorded.
///
/// # Errors
/// When the listing fails (the caller must not act on the accounts already seen) or the store
/// cannot be written.
pub(crate) async fn refresh_target<F>(
    store: &Store,
    conn: &Connector,
    now: DateTime<Utc>,
    mut on_account: F,
) -> Result<(ReadStats, u64), LifecycleError>
where
    F: FnMut(&ActivityRecord) + Send,
{
    let now_ms = now.timestamp_millis();
    let mut store_error = None;
    let listing = conn
        .for_each_account(|page| {
            for a in &page {
                let mut rec = record(a, now_ms);
                if let Err(e) = store.activity_put(conn.name(), &mut rec) {
                    store_error = Some(e);
                    return ControlFlow::Break(());
                }
                on_account(&rec);
            }
            ControlFlow::Continue(())
        })
        .await;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    let stats = listing.map_err(|f| LifecycleError::Read { target: conn.name().to_string(), reason: f.to_string() })?;
    let pruned = store.activity_prune(conn.name(), now_ms)?;
    store.activity_run_put(
        conn.name(),
        &json!({
            "at": super::report::rfc3339(now), "accounts": stats.accounts, "inactive": stats.inactive,
            "never_active": stats.never_active, "requests": stats.requests, "waits": stats.waits, "pruned": pruned,
        }),
    )?;
    Ok((stats, pruned))
}

impl Jobs {
    /// Refreshes the snapshot of every target (or one); a failing target is recorded in the
    /// report and the others carry on.
    ///
    /// # Errors
    /// An unknown target name, or a store error while recording the report.
    pub async fn refresh(&self, target: Option<&str>, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let mut report = Report::new("activity-refresh", Mode::Apply, now);
        for t in self.targets(target)? {
            let conn = self.connector(&t.spec.name)?;
            let mut summary = TargetSummary { target: t.spec.name.clone(), ..TargetSummary::default() };
            match refresh_target(&self.store, conn, now, |_| {}).await {
                Ok((stats, pruned)) => {
                    summary.accounts = stats.accounts;
                    summary.skipped.insert("never logged in".into(), stats.never_active);
                    summary.skipped.insert("inactive".into(), stats.inactive);
                    summary.skipped.insert("gone since last refresh".into(), pruned);
                }
                Err(e) => {
                    tracing::warn!(target_name = %t.spec.name, error = %e, "Activity refresh of a target failed; carrying on with the next.");
                    summary.error = Some(e.to_string());
                }
            }
            report.targets.push(summary);
        }
        self.finish(report)
    }
}
