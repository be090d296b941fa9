//! Operator actions on jobs and the audit log, shared by the admin HTTP API and the CLI so both
//! give one answer: with a server running the CLI calls the API, otherwise it opens the store and
//! calls these functions directly (sled admits one process).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::store::{Operator, OutboxItem, Store, StoreResult};

/// Which jobs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    Pending,
    Dead,
    Superseded,
    /// Held until the user's link review is resolved (`links set` / `links clear`).
    Held,
}

impl JobFilter {
    pub fn parse(s: Option<&str>) -> Option<JobFilter> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("all") => Some(JobFilter::All),
            Some("pending") => Some(JobFilter::Pending),
            Some("dead") => Some(JobFilter::Dead),
            Some("superseded") => Some(JobFilter::Superseded),
            Some("held_for_review") | Some("held") => Some(JobFilter::Held),
            _ => None,
        }
    }
}

fn now() -> (String, u64) {
    let t = chrono::Utc::now();
    (t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), t.timestamp_millis() as u64)
}

/// Jobs (pending intents and dead letters), oldest first.
pub fn list_jobs(store: &Store, filter: JobFilter) -> StoreResult<Vec<Value>> {
    Ok(store
        .jobs()?
        .into_iter()
        .filter(|j| match filter {
            JobFilter::All => true,
            JobFilter::Pending => j.state == "pending",
            JobFilter::Dead => j.state == "dead",
            JobFilter::Superseded => j.state == "superseded",
            JobFilter::Held => j.state == crate::store::HELD_STATE || j.state == crate::store::GUARD_HELD_STATE,
        })
        .map(|j| serde_json::to_value(j).unwrap_or(Value::Null))
        .collect())
}

/// One job: pending, dead or superseded in full; for one that has left the outbox, its id,
/// its final outcome as `state` (`delivered`, `no_such_account`, `dropped`, `retried`…) and the
/// audit record that says so.
pub fn show_job(store: &Store, id: u64) -> StoreResult<Option<Value>> {
    if let Some(j) = store.job(id)? {
        return Ok(Some(serde_json::to_value(j).unwrap_or(Value::Null)));
    }
    Ok(store.job_outcome(id)?.map(|record| {
        json!({"seq": id, "state": record.get("outcome").cloned().unwrap_or(Value::Null), "intent": {
            "target": record.get("target"), "user_id": record.get("user_id"), "username": record.get("username"),
            "action": record.get("action"), "trigger": record.get("trigger"),
        }, "outcome": record})
    }))
}

/// How a retry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Queued again under this new job id.
    Queued(u64),
    /// Not retried: a newer intent for the same user and target supersedes it (`--force`
    /// overrides).
    Superseded { by: u64 },
    /// No dead letter (nor, when forced, superseded job) by that id.
    NotFound,
}

impl Retry {
    /// The operator-facing sentence for a job that was not retried.
    pub fn refusal(id: u64, by: u64) -> String {
        format!(
            "job {id} is superseded by job {by}: a newer decision for the same user and target; retrying it would replay a stale state (use --force to retry it anyway)"
        )
    }
}

fn retry_audit(job: &OutboxItem, op: &Operator, force: bool, superseded_by: Option<u64>) -> Value {
    let (text, _) = now();
    let mut v = json!({
        "type": "operator", "action": "job_retry", "op": "jobs retry", "at": text, "job": job.seq,
        "actor": op.actor, "run_id": op.run_id,
        "target": job.entry.target(), "user_id": job.entry.user_id(),
        "username": job.entry.intent.get("username"), "intent": job.entry.intent.get("action"),
        "trigger": job.entry.intent.get("trigger"), "outcome": "retried", "reason": crate::reason::OPERATOR,
    });
    if force {
        v["forced"] = Value::Bool(true);
    }
    if let Some(by) = superseded_by {
        v["superseded_by"] = json!(by);
    }
    v
}

/// Puts a dead letter back in the outbox unless a newer intent for the same user and target
/// supersedes it; `force` retries it anyway (also a superseded job), audited with `actor`.
pub fn retry_job(store: &Store, id: u64, force: bool, op: &Operator) -> StoreResult<Retry> {
    let Some(job) = store.job(id)?.filter(|j| j.state == "dead" || j.state == "superseded") else {
        return Ok(Retry::NotFound);
    };
    let by = match job.entry.superseded_by {
        Some(by) => Some(by),
        None => store.newest_superseding(id, &job.entry)?,
    };
    if let (Some(by), false) = (by, force) {
        return Ok(Retry::Superseded { by });
    }
    let (text, ms) = now();
    let audit = retry_audit(&job, op, force, by);
    Ok(store.retry_dead(id, op, &text, ms, force, &audit)?.map_or(Retry::NotFound, Retry::Queued))
}

/// What `jobs retry --all` did, per dead letter looked at (oldest first).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetryAll {
    /// (dead letter, its new job id).
    pub retried: Vec<(u64, u64)>,
    /// (dead letter, the newer job that supersedes it): left alone.
    pub superseded: Vec<(u64, u64)>,
}

/// Retries every dead letter (of `target`, when given) that is still current, oldest first, so
/// one user's retried intents keep their order; superseded ones are reported and left alone.
pub fn retry_all(store: &Store, target: Option<&str>, op: &Operator) -> StoreResult<RetryAll> {
    let mut out = RetryAll::default();
    // One read of the outbox and dead letters, grouped by lane, instead of one per dead letter.
    let mut lanes: HashMap<(String, String), Vec<OutboxItem>> = HashMap::new();
    for j in store.jobs()?.into_iter().filter(|j| j.state != "superseded") {
        lanes.entry((j.entry.target().to_string(), j.entry.user_id().to_string())).or_default().push(j);
    }
    let mut dead: Vec<&OutboxItem> = lanes
        .values()
        .flatten()
        .filter(|j| j.state == "dead" && target.is_none_or(|t| j.entry.target() == t))
        .collect();
    dead.sort_by_key(|j| j.seq);
    for job in dead {
        let lane = &lanes[&(job.entry.target().to_string(), job.entry.user_id().to_string())];
        let by = lane.iter().filter(|n| n.entry.supersedes(n.seq, &job.entry, job.seq)).map(|n| n.seq).max();
        if let Some(by) = by {
            out.superseded.push((job.seq, by));
            continue;
        }
        let (text, ms) = now();
        let audit = retry_audit(job, op, false, None);
        if let Some(new_id) = store.retry_dead(job.seq, op, &text, ms, false, &audit)? {
            out.retried.push((job.seq, new_id));
        }
    }
    Ok(out)
}

/// Removes a job without delivering it; the drop is audited under the job's user with `op`.
pub fn drop_job(store: &Store, id: u64, op: &Operator) -> StoreResult<bool> {
    let Some(job) = store.job(id)? else { return Ok(false) };
    let (text, ms) = now();
    if job.state == crate::store::GUARD_HELD_STATE {
        // Held by the brake: dropping it is rejecting it (`held reject`), audited as such.
        let d = store.guard_decide(Some(&[id]), false, op, &text, ms)?;
        return Ok(!d.rejected.is_empty());
    }
    let audit = json!({
        "type": "delivery", "at": text, "job": id, "outcome": "dropped", "actor": op.actor, "run_id": op.run_id,
        "target": job.entry.target(), "user_id": job.entry.user_id(), "username": job.entry.intent.get("username"),
        "action": job.entry.intent.get("action"), "trigger": job.entry.intent.get("trigger"),
        "reason": crate::reason::OPERATOR,
    });
    store.drop_job(id, job.entry.user_id(), &audit)
}

/// Records an operator action that has no intent of its own (token and link changes…) in the
/// audit log under `subject`, with `op`'s actor and run id; `details` is an object of extra
/// fields. For the admin API and the CLI alike.
///
/// # Errors
/// On a storage error.
pub fn record_action(store: &Store, op: &Operator, subject: &str, action: &str, details: Value) -> StoreResult<()> {
    store.audit_operator(op, subject, action, details, &now().0)
}

/// The audit subject of a token's changes.
pub fn token_subject(name: &str) -> String {
    format!("token:{name}")
}

/// A person's whole history, IdP event to Atlassian effect: found by SCIM id, userName
/// (case-insensitive, also after a DELETE) or Atlassian username (also accounts only an operator
/// run touched). See `Store::audit_of_person`.
pub fn audit_for_user(store: &Store, who: &str) -> StoreResult<Option<Vec<Value>>> {
    store.audit_of_person(who)
}

/// Everything one run did: what it queued, each delivery, the operator actions with its run id.
pub fn audit_for_run(store: &Store, run_id: &str) -> StoreResult<Option<Vec<Value>>> {
    store.audit_of_run(run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_filters_parse_case_insensitively() {
        assert_eq!(JobFilter::parse(Some("DEAD")), Some(JobFilter::Dead));
        assert_eq!(JobFilter::parse(None), Some(JobFilter::All));
        assert_eq!(JobFilter::parse(Some("x")), None);
        assert_eq!(JobFilter::parse(Some("held_for_review")), Some(JobFilter::Held));
    }
}
