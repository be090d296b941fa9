//! When scheduled lifecycle jobs run (`schedule = "daily 02:00"` in UTC, or an interval such as
//! `"6h"`, `"30m"`, `"1d"`), and the scheduler task `serve` starts: it wakes at the next due
//! time of each enabled job, runs it with `now` passed in, records the report, logs a failing
//! step and carries on, and stops when the server shuts down.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use tokio::sync::watch;

use super::{Jobs, Mode};

/// A parsed `schedule` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this UTC time.
    Daily { hour: u32, minute: u32 },
    /// Every interval, counted from the scheduler's start.
    Every(Duration),
}

impl Schedule {
    /// Parses `daily HH:MM` or `<n>s|m|h|d`.
    ///
    /// # Errors
    /// A message saying what is wrong, with valid examples.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        let bad = || {
            format!("{text:?} is not a schedule; write \"daily 02:00\" (UTC) or an interval such as \"6h\", \"30m\", \"1d\"")
        };
        if let Some(time) = t.strip_prefix("daily") {
            let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
            use chrono::Timelike;
            return Ok(Schedule::Daily { hour: time.hour(), minute: time.minute() });
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(bad()),
        };
        if secs < 60 {
            return Err(format!("{text:?} is shorter than one minute; lifecycle jobs read every account of a target"));
        }
        Ok(Schedule::Every(Duration::from_secs(secs)))
    }

    /// The first run time strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            Schedule::Every(d) => now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1)),
            Schedule::Daily { hour, minute } => {
                let today = now.date_naive().and_hms_opt(hour, minute, 0).map(|t| t.and_utc());
                match today {
                    Some(t) if t > now => t,
                    Some(t) => t + chrono::Duration::days(1),
                    None => now + chrono::Duration::days(1),
                }
            }
        }
    }
}

/// A running scheduler; `stop` ends it after the job in progress (if any) reaches a safe point.
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.join.await;
    }
}

/// The jobs the scheduler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Activity,
    Cleanup,
    License,
    Reconcile,
}

/// Starts the scheduler for every enabled job; `None` when none is enabled.
pub fn spawn(jobs: Jobs) -> Option<SchedulerHandle> {
    let lc = &jobs.config.lifecycle;
    let mut plan: Vec<(Job, Schedule)> = Vec::new();
    if lc.activity.enabled {
        plan.push((Job::Activity, lc.activity.schedule));
    }
    if lc.cleanup.enabled {
        plan.push((Job::Cleanup, lc.cleanup.schedule));
    }
    if lc.license.enabled {
        plan.push((Job::License, lc.license.schedule));
    }
    if lc.reconcile.enabled {
        plan.push((Job::Reconcile, lc.reconcile.schedule));
    }
    if plan.is_empty() {
        return None;
    }
    let (stop, mut stopped) = watch::channel(false);
    let join = tokio::spawn(async move {
        let start = Utc::now();
        let mut due: Vec<(Job, Schedule, DateTime<Utc>)> =
            plan.iter().map(|(j, s)| (*j, *s, s.next_after(start))).collect();
        loop {
            let Some(next) = due.iter().map(|d| d.2).min() else { return };
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
            // The run's now is the jobs' clock (the server's); the waiting above is wall time.
            let now = jobs.now();
            for entry in due.iter_mut().filter(|d| d.2 <= now) {
                tracing::info!(job = ?entry.0, "Scheduled lifecycle job starting.");
                // Each scheduled run is attributed to the scheduler, with a run id of its own.
                let attributed = jobs.clone().with_operator(crate::store::Operator::scheduler());
                let outcome = tokio::select! {
                    r = run(&attributed, entry.0, now) => r,
                    _ = stopped.changed() => return,
                };
                match outcome {
                    Ok(report) => {
                        tracing::info!(job = ?entry.0, report = report.id, "Scheduled lifecycle job finished.");
                        // The activity refresh changes no account: not worth a message.
                        if entry.0 != Job::Activity {
                            run_finished(&jobs, &report);
                        }
                    }
                    Err(e) => {
                        tracing::error!(job = ?entry.0, error = %e, "Scheduled lifecycle job failed; it runs again at its next time.")
                    }
                }
                entry.2 = entry.1.next_after(Utc::now());
            }
        }
    });
    Some(SchedulerHandle { stop, join })
}

/// One scheduled run; scheduled cleanup, licence and reconcile runs apply (that is what enabling
/// them means), and each records its report.
async fn run(jobs: &Jobs, job: Job, now: DateTime<Utc>) -> Result<super::Report, super::LifecycleError> {
    let report = match job {
        Job::Activity => jobs.refresh(None, now).await?,
        Job::Cleanup => jobs.cleanup(Mode::Apply, None, now).await?,
        Job::License => jobs.license_optimize(Mode::Apply, now).await?,
        Job::Reconcile => jobs.reconcile(Mode::Apply, now).await?,
    };
    Ok(report)
}

/// Queues the `run_finished` notice of a scheduled run (`[notify]`), with where its report is.
fn run_finished(jobs: &Jobs, report: &super::Report) {
    let link = report_link(jobs.config.public_url.as_deref(), report.id);
    if let Err(e) = jobs.store.enqueue_notice(&run_finished_notice(report, link)) {
        tracing::error!(report = report.id, error = %e, "Could not store the notification of a finished run.");
    }
}

/// The admin API's URL of report `id` (its path when no `public_url` is configured).
fn report_link(public_url: Option<&str>, id: u64) -> String {
    match public_url {
        Some(base) => format!("{base}/admin/reports/{id}"),
        None => format!("/admin/reports/{id} on the admin API"),
    }
}

/// The `run_finished` notice of `r`; `report` says where to read it in full.
pub fn run_finished_notice(r: &super::Report, report: String) -> crate::notify::Notice {
    crate::notify::Notice::RunFinished {
        kind: r.kind.clone(),
        run_id: r.operator.as_ref().map(|o| o.run_id.clone()).unwrap_or_default(),
        report_id: r.id,
        mode: r.mode.as_str().to_string(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        enqueued: r.enqueued,
        affected: r.targets.iter().map(|t| t.affected).sum(),
        errors: r.targets.iter().filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.target))).collect(),
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn schedules_parse_daily_times_and_intervals() {
        assert_eq!(Schedule::parse("daily 02:00"), Ok(Schedule::Daily { hour: 2, minute: 0 }));
        assert_eq!(Schedule::parse(" daily 23:59 "), Ok(Schedule::Daily { hour: 23, minute: 59 }));
        assert_eq!(Schedule::parse("6h"), Ok(Schedule::Every(Duration::from_secs(6 * 3600))));
        assert_eq!(Schedule::parse("1d"), Ok(Schedule::Every(Duration::from_secs(86_400))));
        for bad in ["", "daily", "daily 25:00", "weekly", "6x", "h", "10s"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_finished_run_notice_sums_the_targets_and_links_the_report() {
        let r = crate::lifecycle::Report {
            id: 17,
            kind: "cleanup".into(),
            mode: Mode::Apply,
            enqueued: 5,
            targets: vec![
                crate::lifecycle::TargetSummary { target: "jira".into(), affected: 3, ..Default::default() },
                crate::lifecycle::TargetSummary {
                    target: "wiki".into(),
                    affected: 2,
                    error: Some("timeout".into()),
                    ..Default::default()
                },
            ],
            operator: Some(crate::store::Operator { actor: "scheduler".into(), run_id: "run-1".into() }),
            ..Default::default()
        };
        let link = report_link(Some("https://scim.example.com"), 17);
        let n = serde_json::to_value(run_finished_notice(&r, link)).expect("json");
        assert_eq!(n["event"], "run_finished");
        assert_eq!(
            (&n["affected"], &n["enqueued"], &n["run_id"], &n["mode"]),
            (&json!(5), &json!(5), &json!("run-1"), &json!("apply"))
        );
        assert_eq!(n["report"], "https://scim.example.com/admin/reports/17");
        assert_eq!(n["errors"], json!(["wiki: timeout"]));
    }

    #[test]
    fn a_daily_run_is_today_when_still_ahead_otherwise_tomorrow() {
        let s = Schedule::Daily { hour: 2, minute: 0 };
        let before = Utc.with_ymd_and_hms(2024, 5, 1, 1, 0, 0).unwrap();
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap();
        assert_eq!(s.next_after(before), at);
        assert_eq!(s.next_after(at), Utc.with_ymd_and_hms(2024, 5, 2, 2, 0, 0).unwrap());
        let every = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(every.next_after(at), Utc.with_ymd_and_hms(2024, 5, 1, 3, 0, 0).unwrap());
    }
}
