//! Operator actions on jobs and the audit log, shared by the admin HTTP API and the CLI so both
//! give one answer: with a server running the CLI calls the API, otherwise it opens the store and
//! calls these functions directly (sled admits one process).

use serde_json::{json, Value};

use crate::store::{Operator, Store, StoreResult};

/// Which jobs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    Pending,
    Dead,
}

impl JobFilter {
    pub fn parse(s: Option<&str>) -> Option<JobFilter> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("all") => Some(JobFilter::All),
            Some("pending") => Some(JobFilter::Pending),
            Some("dead") => Some(JobFilter::Dead),
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
        })
        .map(|j| serde_json::to_value(j).unwrap_or(Value::Null))
        .collect())
}

pub fn show_job(store: &Store, id: u64) -> StoreResult<Option<Value>> {
    Ok(store.job(id)?.map(|j| serde_json::to_value(j).unwrap_or(Value::Null)))
}

/// Puts a dead letter back in the outbox, attributed to `op` (the retry is audited); returns its
/// new job id.
pub fn retry_job(store: &Store, id: u64, op: &Operator) -> StoreResult<Option<u64>> {
    let (text, ms) = now();
    store.retry_dead(id, op, &text, ms)
}

/// Removes a job without delivering it; the drop is audited under the job's user with `op`.
pub fn drop_job(store: &Store, id: u64, op: &Operator) -> StoreResult<bool> {
    let Some(job) = store.job(id)? else { return Ok(false) };
    let (text, _) = now();
    let audit = json!({
        "type": "delivery", "at": text, "job": id, "outcome": "dropped", "actor": op.actor, "run_id": op.run_id,
        "target": job.entry.target(), "user_id": job.entry.user_id(), "username": job.entry.intent.get("username"),
        "action": job.entry.intent.get("action"), "trigger": job.entry.intent.get("trigger"),
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
    }
}
