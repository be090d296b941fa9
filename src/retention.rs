//! `[retention]`: how long audit records and run reports are kept, and the background task that
//! prunes what is older (the store's part, and what must never be pruned, is in
//! `store/retention.rs`). Reports are the stored ones (`reports` tree) and the CSV/JSON files
//! runs wrote into `reports_dir`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::store::{Pruned, Store};

/// Audit records are kept 400 days unless configured: a year and a quarter covers an annual
/// access review or audit plus the time to prepare it.
pub const DEFAULT_AUDIT_DAYS: u32 = 400;
/// Run reports are kept 90 days unless configured: a run's every intent is also in the audit (by
/// its run id) for `audit_days`; the report is the operator's working copy, and a cleanup or
/// licence report at a million users is megabytes.
pub const DEFAULT_REPORTS_DAYS: u32 = 90;
/// Above this (100 years) a value is a typo; 0 already means forever.
const MAX_DAYS: i64 = 36_500;

/// How often the background task looks for work.
const PASS_EVERY: Duration = Duration::from_secs(3600);
/// Records are removed once the oldest is this much past the retention, so the subject index
/// (a walk of the whole index) is swept about once a day, not every hour.
const SLACK: chrono::Duration = chrono::Duration::days(1);
/// Deletions per batch: each batch holds the store's writer lock for a few milliseconds.
const BATCH: usize = 500;

/// `[retention]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionFile {
    /// Days audit records are kept; 0 keeps them forever. Default 400.
    pub audit_days: Option<i64>,
    /// Days run reports (stored and in `reports_dir`) are kept; 0 keeps them forever. Default 90.
    pub reports_days: Option<i64>,
}

/// Validated `[retention]`: days, 0 = forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub audit_days: u32,
    pub reports_days: u32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { audit_days: DEFAULT_AUDIT_DAYS, reports_days: DEFAULT_REPORTS_DAYS }
    }
}

/// Validates `[retention]`; each problem as (key, reason).
///
/// # Errors
/// A negative or absurd number of days.
pub fn validate(file: &RetentionFile) -> Result<Retention, Vec<(String, String)>> {
    let mut issues = Vec::new();
    let mut days = |key: &str, v: Option<i64>, default: u32| match v {
        None => default,
        Some(d) if (0..=MAX_DAYS).contains(&d) => u32::try_from(d).unwrap_or(default),
        Some(d) => {
            issues.push((
                format!("retention.{key}"),
                format!("{d} is not a number of days from 0 (keep forever) to {MAX_DAYS}; the default is {default}"),
            ));
            default
        }
    };
    let r = Retention {
        audit_days: days("audit_days", file.audit_days, DEFAULT_AUDIT_DAYS),
        reports_days: days("reports_days", file.reports_days, DEFAULT_REPORTS_DAYS),
    };
    if issues.is_empty() {
        Ok(r)
    } else {
        Err(issues)
    }
}

/// What the background task has removed since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub passes: AtomicU64,
    pub failed_passes: AtomicU64,
    pub audit_records: AtomicU64,
    pub index_entries: AtomicU64,
    pub reports: AtomicU64,
    pub report_files: AtomicU64,
    pub notices: AtomicU64,
}

impl Counters {
    fn add(&self, p: &Pruned, files: u64) {
        self.audit_records.fetch_add(p.audit_records, Ordering::Relaxed);
        self.index_entries.fetch_add(p.index_entries, Ordering::Relaxed);
        self.reports.fetch_add(p.reports, Ordering::Relaxed);
        self.report_files.fetch_add(files, Ordering::Relaxed);
        self.notices.fetch_add(p.notices, Ordering::Relaxed);
    }

    /// The Prometheus text of the counters.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP scimbridge_retention_passes_total Retention passes finished (failed ones counted apart).\n\
             # TYPE scimbridge_retention_passes_total counter\n\
             scimbridge_retention_passes_total {}\n\
             # HELP scimbridge_retention_failed_passes_total Retention passes that stopped on a store error.\n\
             # TYPE scimbridge_retention_failed_passes_total counter\n\
             scimbridge_retention_failed_passes_total {}\n\
             # HELP scimbridge_retention_pruned_total What retention removed, by kind.\n\
             # TYPE scimbridge_retention_pruned_total counter\n\
             scimbridge_retention_pruned_total{{kind=\"audit_records\"}} {}\n\
             scimbridge_retention_pruned_total{{kind=\"audit_index_entries\"}} {}\n\
             scimbridge_retention_pruned_total{{kind=\"reports\"}} {}\n\
             scimbridge_retention_pruned_total{{kind=\"report_files\"}} {}\n\
             scimbridge_retention_pruned_total{{kind=\"sent_notices\"}} {}\n",
            get(&self.passes),
            get(&self.failed_passes),
            get(&self.audit_records),
            get(&self.index_entries),
            get(&self.reports),
            get(&self.report_files),
            get(&self.notices),
        )
    }
}

fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// One pass at `now`: audit records, stored reports and report files past their retention.
/// Returns what was removed and how many report files.
///
/// # Errors
/// On a store error (report files that cannot be removed are logged and left).
pub fn prune_once(
    store: &Store,
    cfg: Retention,
    reports_dir: &Path,
    now: DateTime<Utc>,
    stop: &AtomicBool,
) -> Result<(Pruned, u64), crate::store::StoreError> {
    let audit_cutoff = days_before(now, cfg.audit_days);
    let audit_due = cfg.audit_days > 0 && store.oldest_audit_at()?.is_some_and(|t| t < audit_cutoff - SLACK);
    let reports_cutoff = days_before(now, cfg.reports_days);
    let reports_due = cfg.reports_days > 0 && store.oldest_report_at()?.is_some_and(|t| t < reports_cutoff);
    // Reading every waiting intent costs a walk of the outbox: only when something is due.
    let needed = if audit_due || reports_due { store.runs_still_needed()? } else { HashSet::new() };
    let mut out = Pruned::default();
    if cfg.audit_days > 0 {
        // When not due this removes nothing, and still finishes a sweep a stopped pass owes.
        let a = store.prune_audit(if audit_due { audit_cutoff } else { audit_cutoff - SLACK }, &needed, BATCH, stop)?;
        out.audit_records = a.audit_records;
        out.index_entries = a.index_entries;
        out.kept_for_pending = a.kept_for_pending;
        // What was told to whom is audit history: it goes with the audit records.
        out.notices = store.prune_sent_notices(audit_cutoff, BATCH, stop)?;
    }
    if reports_due {
        let r = store.prune_reports(reports_cutoff, &needed, BATCH, stop)?;
        out.reports = r.reports;
        out.kept_for_pending += r.kept_for_pending;
    }
    let files = if cfg.reports_days > 0 { prune_report_files(reports_dir, reports_cutoff) } else { 0 };
    Ok((out, files))
}

/// Whether `name` is a report file a run wrote (`<kind>-<mode>-<YYYYMMDDTHHMMSSZ>[-id].csv|json`,
/// `lifecycle::write_files`): anything else in the folder is the admin's, never removed.
fn is_report_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".csv").or_else(|| name.strip_suffix(".json")) else { return false };
    stem.split('-').any(|part| {
        let b = part.as_bytes();
        b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    })
}

/// Removes report files in `dir` last modified before `cutoff`; returns how many.
fn prune_report_files(dir: &Path, cutoff: DateTime<Utc>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let cutoff = std::time::SystemTime::from(cutoff);
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| is_report_file(n)) else { continue };
        // Only regular files (a symlink is never followed out of the folder).
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.is_file() || meta.modified().map_or(true, |m| m >= cutoff) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(file = %name, error = %e, "Could not remove an expired report file."),
        }
    }
    removed
}

/// The running background task; [`RetentionTask::stop`] ends it between two batches.
pub struct RetentionTask {
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    join: tokio::task::JoinHandle<()>,
}

impl RetentionTask {
    /// Starts pruning now and every hour, unless both retentions are 0 (forever).
    pub fn spawn(store: Store, cfg: Retention, reports_dir: PathBuf, counters: Arc<Counters>) -> Option<RetentionTask> {
        if cfg.audit_days == 0 && cfg.reports_days == 0 {
            return None;
        }
        let (stop, wake) = (Arc::new(AtomicBool::new(false)), Arc::new(tokio::sync::Notify::new()));
        let (stop2, wake2) = (stop.clone(), wake.clone());
        let join = tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let (store, dir, stop3) = (store.clone(), reports_dir.clone(), stop2.clone());
                let pass = tokio::task::spawn_blocking(move || prune_once(&store, cfg, &dir, Utc::now(), &stop3)).await;
                match pass {
                    Ok(Ok((p, files))) => {
                        counters.passes.fetch_add(1, Ordering::Relaxed);
                        counters.add(&p, files);
                        if p != Pruned::default() || files > 0 {
                            tracing::info!(
                                audit_records = p.audit_records,
                                index_entries = p.index_entries,
                                reports = p.reports,
                                report_files = files,
                                sent_notices = p.notices,
                                kept_for_pending = p.kept_for_pending,
                                "Retention removed expired audit records and reports."
                            );
                        }
                    }
                    Ok(Err(e)) => {
                        counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "A retention pass failed; it is tried again within the hour.");
                    }
                    Err(e) => {
                        counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "A retention pass panicked.");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(PASS_EVERY) => {}
                    () = wake2.notified() => {}
                }
            }
        });
        Some(RetentionTask { stop, wake, join })
    }

    /// Stops the task (a pass in progress ends after its current batch) and waits for it.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        let _ = self.join.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_400_and_90_and_bad_values_name_the_key() {
        assert_eq!(validate(&RetentionFile::default()), Ok(Retention { audit_days: 400, reports_days: 90 }));
        let forever = RetentionFile { audit_days: Some(0), reports_days: Some(0) };
        assert_eq!(validate(&forever), Ok(Retention { audit_days: 0, reports_days: 0 }));
        let bad = validate(&RetentionFile { audit_days: Some(-1), reports_days: Some(1_000_000) }).expect_err("bad");
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].0, "retention.audit_days");
        assert!(bad[0].1.contains("-1 is not a number of days"), "{}", bad[0].1);
        assert_eq!(bad[1].0, "retention.reports_days");
    }

    #[test]
    fn only_files_a_run_wrote_are_report_files() {
        assert!(is_report_file("cleanup-dry-run-20261205T162352Z.csv"));
        assert!(is_report_file("license-apply-20261205T162352Z-12.json"));
        assert!(!is_report_file("notes.txt"));
        assert!(!is_report_file("my-export.csv"));
        assert!(!is_report_file("cleanup-dry-run-20261205T162352Z.csv.bak"));
    }

    #[test]
    fn expired_report_files_go_and_everything_else_in_the_folder_stays() {
        let tmp = tempfile::tempdir().expect("tmp");
        let old = tmp.path().join("cleanup-apply-20250101T000000Z-3.csv");
        let mine = tmp.path().join("my-notes.csv");
        let fresh = tmp.path().join("cleanup-apply-20261205T000000Z-4.json");
        for p in [&old, &mine, &fresh] {
            std::fs::write(p, "x").expect("write");
        }
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(200 * 86_400);
        for p in [&old, &mine] {
            std::fs::File::options().write(true).open(p).and_then(|f| f.set_modified(long_ago)).expect("mtime");
        }
        assert_eq!(prune_report_files(tmp.path(), Utc::now() - chrono::Duration::days(90)), 1);
        assert!(!old.exists() && mine.exists() && fresh.exists());
    }
}
