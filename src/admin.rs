//! Operator actions on jobs and the audit log, shared by the admin HTTP API and the CLI so both
//! give one answer: with a server running the CLI calls the API, otherwise it opens the store and
//! calls these functions directly (sled admits one process).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::store::{Kind, OutboxItem, Store, StoreResult};

/// Which jobs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    Pending,
    Dead,
    Superseded,
}

impl JobFilter {
    pub fn parse(s: Option<&str>) -> Option<JobFilter> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("all") => Some(JobFilter::All),
            Some("pending") => Some(JobFilter::Pending),
            Some("dead") => Some(JobFilter::Dead),
            Some("superseded") => Some(JobFilter::Superseded),
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

fn retry_audit(job: &OutboxItem, actor: &str, force: bool, superseded_by: Option<u64>) -> Value {
    let (text, _) = now();
    let mut v = json!({
        "type": "operator", "op": "jobs retry", "at": text, "job": job.seq, "actor": actor,
        "target": job.entry.target(), "user_id": job.entry.user_id(),
        "username": job.entry.intent.get("username"), "action": job.entry.intent.get("action"),
        "trigger": job.entry.intent.get("trigger"), "outcome": "retried",
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
pub fn retry_job(store: &Store, id: u64, force: bool, actor: &str) -> StoreResult<Retry> {
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
    let audit = retry_audit(&job, actor, force, by);
    Ok(store.retry_dead(id, &text, ms, force, &audit)?.map_or(Retry::NotFound, Retry::Queued))
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
pub fn retry_all(store: &Store, target: Option<&str>, actor: &str) -> StoreResult<RetryAll> {
    let mut out = RetryAll::default();
    // One read of the outbox and dead letters, grouped by lane, instead of one per dead letter.
    let mut lanes: HashMap<(String, String), Vec<OutboxItem>> = HashMap::new();
    for j in store.jobs()?.into_iter().filter(|j| j.state != "superseded") {
        lanes.entry((j.entry.target().to_string(), j.entry.user_id().to_string())).or_default().push(j);
    }
    let mut dead: Vec<&OutboxItem> = lanes
        .values()
        .flatten()
        .filter(|j| j.state == "dead" && target.map_or(true, |t| j.entry.target() == t))
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
        let audit = retry_audit(job, actor, false, None);
        if let Some(new_id) = store.retry_dead(job.seq, &text, ms, false, &audit)? {
            out.retried.push((job.seq, new_id));
        }
    }
    Ok(out)
}

/// Removes a job without delivering it; the drop is audited under the job's user.
pub fn drop_job(store: &Store, id: u64, actor: &str) -> StoreResult<bool> {
    let Some(job) = store.job(id)? else { return Ok(false) };
    let (text, _) = now();
    let audit = json!({
        "type": "delivery", "at": text, "job": id, "outcome": "dropped", "actor": actor,
        "target": job.entry.target(), "user_id": job.entry.user_id(), "action": job.entry.intent.get("action"),
    });
    store.drop_job(id, job.entry.user_id(), &audit)
}

/// A person's whole history, IdP event to Atlassian effect: found by SCIM id, userName
/// (case-insensitive) or Atlassian username recorded in their intents.
pub fn audit_for_user(store: &Store, who: &str) -> StoreResult<Option<Vec<Value>>> {
    let id = if store.get(Kind::User, who)?.is_some() {
        Some(who.to_string())
    } else {
        store.id_by_name(Kind::User, who)?
    };
    match id {
        Some(id) => Ok(Some(store.audit_of(&id)?)),
        None => {
            // A deleted user: look for records that name them.
            let recs: Vec<Value> = store
                .audit_tail(usize::MAX)?
                .into_iter()
                .rev()
                .filter(|r| r.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(who)))
                .collect();
            match recs.first().and_then(|r| r.get("id")).and_then(Value::as_str) {
                Some(id) => Ok(Some(store.audit_of(id)?)),
                None => Ok(None),
            }
        }
    }
}

/// The CSV columns of an audit export.
pub const AUDIT_CSV_COLUMNS: [&str; 11] =
    ["at", "type", "op", "target", "action", "outcome", "attempt", "status", "latency_ms", "actor", "detail"];

fn cell(v: Option<&Value>) -> String {
    let s = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One audit record as a CSV row (see `AUDIT_CSV_COLUMNS`).
pub fn audit_csv_row(r: &Value) -> String {
    let action = r.get("action").and_then(|a| a.get("type")).or(r.get("action"));
    let status = r.get("calls").and_then(Value::as_array).and_then(|c| c.last()).and_then(|c| c.get("status"));
    let detail = r.get("error").or(r.get("detail")).or(r.get("changed"));
    [
        cell(r.get("at")),
        cell(r.get("type")),
        cell(r.get("op")),
        cell(r.get("target")),
        cell(action),
        cell(r.get("outcome")),
        cell(r.get("attempt")),
        cell(status),
        cell(r.get("latency_ms")),
        cell(r.get("actor").or(r.get("by"))),
        cell(detail),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_commas_and_quotes_are_quoted() {
        let row = audit_csv_row(&json!({"at": "t", "type": "scim", "changed": {"a": "x,\"y\""}}));
        assert!(row.starts_with("t,scim,"));
        assert!(row.ends_with("\"{\"\"a\"\":\"\"x,\\\"\"y\\\"\"\"\"}\""), "{row}");
        assert!(row.split(',').count() >= AUDIT_CSV_COLUMNS.len());
    }

    #[test]
    fn job_filters_parse_case_insensitively() {
        assert_eq!(JobFilter::parse(Some("DEAD")), Some(JobFilter::Dead));
        assert_eq!(JobFilter::parse(None), Some(JobFilter::All));
        assert_eq!(JobFilter::parse(Some("x")), None);
    }
}
