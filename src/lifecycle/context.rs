//! What a job knows before it decides: a target's admin, protected and scope group members
//! ([`TargetView`]), the users the IdP provisioned keyed by their Atlassian username
//! ([`Provisioned`]), and the one way a job writes: intents to the outbox ([`enqueue`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::report::Finding;
use super::LifecycleError;
use crate::atlassian::{Connector, Failure, Product};
use crate::policy::{self, contains_ci, eq_ci, Intent, IntentAction, Policy, Trigger, UserFacts};
use crate::store::{Operator, OutboxEntry, Record, Store, StoreResult};

/// Intents per outbox batch.
const ENQUEUE_BATCH: usize = 1000;

/// The groups a job looked at on one target, with their members (lower-cased usernames).
pub(crate) struct TargetView {
    pub name: String,
    pub product: Product,
    pub license_groups: Vec<String>,
    groups: Vec<(String, HashSet<String>)>,
    admin_groups: Vec<String>,
}

impl TargetView {
    /// Reads the members of the product's admin groups, the policy's protected groups and
    /// `extra` groups. A group the target does not have (404) has no members.
    ///
    /// # Errors
    /// Any other read failure: without knowing the admins, nobody may be touched.
    pub async fn read(
        conn: &Connector,
        policy: &Policy,
        license_groups: &[String],
        extra: &[String],
    ) -> Result<TargetView, LifecycleError> {
        let admin_groups: Vec<String> = Connector::admin_groups(conn.product()).iter().map(|g| g.to_string()).collect();
        let mut names: Vec<String> = Vec::new();
        for g in admin_groups.iter().chain(&policy.protected_groups).chain(extra) {
            if !contains_ci(&names, g) {
                names.push(g.clone());
            }
        }
        let mut groups = Vec::with_capacity(names.len());
        for g in names {
            let members = members_or_empty(conn, &g).await?;
            groups.push((g, members));
        }
        Ok(TargetView {
            name: conn.name().to_string(),
            product: conn.product(),
            license_groups: license_groups.to_vec(),
            groups,
            admin_groups,
        })
    }

    /// The looked-at groups `username` belongs to (plus those the listing gave).
    pub fn groups_of(&self, username: &str, listed: Option<&[String]>) -> Vec<String> {
        let lower = username.to_lowercase();
        let mut out: Vec<String> = listed.map(<[String]>::to_vec).unwrap_or_default();
        for (g, members) in &self.groups {
            if members.contains(&lower) && !contains_ci(&out, g) {
                out.push(g.clone());
            }
        }
        out
    }

    pub fn is_admin(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| contains_ci(&self.admin_groups, g))
    }

    /// Members of a looked-at group, lower-cased.
    pub fn members(&self, group: &str) -> Option<&HashSet<String>> {
        self.groups.iter().find(|(g, _)| eq_ci(g, group)).map(|(_, m)| m)
    }
}

/// Group members lower-cased; a group that does not exist (404) is empty.
///
/// # Errors
/// Any other failure.
pub(crate) async fn members_or_empty(conn: &Connector, group: &str) -> Result<HashSet<String>, LifecycleError> {
    match conn.group_members(group).await {
        Ok(m) => Ok(m.into_iter().map(|u| u.to_lowercase()).collect()),
        Err(Failure::Permanent { reason }) if reason.starts_with("404") => Ok(HashSet::new()),
        Err(f) => {
            Err(LifecycleError::Read { target: conn.name().to_string(), reason: format!("members of {group:?}: {f}") })
        }
    }
}

/// Adds to each finding the groups its account belongs to in the target
/// (`Connector::groups_of`), after the groups the job itself read, with at most `parallel` reads
/// at a time. A read that fails leaves the finding with what the job knew and is logged: the
/// column informs the admin, it decides nothing.
pub(crate) async fn add_target_groups(conn: &Connector, findings: &mut [Finding], parallel: usize) {
    // Tasks own a clone of the connector (cheap: shared client), so the reads run in parallel.
    let mut reads = tokio::task::JoinSet::new();
    let mut failed = 0u64;
    let mut next = 0usize;
    while next < findings.len() || !reads.is_empty() {
        while next < findings.len() && reads.len() < parallel.max(1) {
            let (conn, name, i) = (conn.clone(), findings[next].username.clone(), next);
            reads.spawn(async move { (i, conn.groups_of(&name).await) });
            next += 1;
        }
        match reads.join_next().await {
            Some(Ok((i, Ok(groups)))) => {
                let f = &mut findings[i];
                let known = std::mem::take(&mut f.groups);
                f.groups = groups;
                for g in known {
                    if !contains_ci(&f.groups, &g) {
                        f.groups.push(g);
                    }
                }
            }
            Some(Ok((_, Err(_))) | Err(_)) => failed += 1,
            None => break,
        }
    }
    if failed > 0 {
        tracing::warn!(target_name = %conn.name(), failed, "Could not read the groups of some accounts for the report; their groups column lists only the groups the run read.");
    }
}

/// A user the IdP provisioned, as the jobs need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provisioned {
    pub id: String,
    pub user_name: String,
    pub facts: UserFacts,
    pub created_ms: Option<i64>,
}

/// The primary email, else the first.
fn email_of(rec: &Record) -> Option<String> {
    let emails = rec.attrs.get("emails")?.as_array()?;
    let primary = emails.iter().find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    primary.or(emails.first())?.get("value")?.as_str().map(str::to_string)
}

/// Every SCIM user, keyed by lower-cased Atlassian username (the recorded link, else derived
/// as the policy derives it), plus the accounts linked to it on any target. Memory grows with the IdP's users, not with a target's accounts.
///
/// # Errors
/// On a store read error.
pub(crate) fn provisioned(store: &Store, policy: &Policy) -> StoreResult<HashMap<String, Provisioned>> {
    let mut out = HashMap::new();
    for rec in store.users_iter() {
        let rec = rec?;
        let groups =
            store.groups_of(&rec.id)?.iter().filter_map(|g| g.str_attr("displayName").map(str::to_string)).collect();
        let facts = UserFacts {
            id: rec.id.clone(),
            user_name: rec.str_attr("userName").unwrap_or_default().to_string(),
            external_id: rec.external_id().map(str::to_string),
            email: email_of(&rec),
            display_name: rec.str_attr("displayName").map(str::to_string),
            active: rec.attrs.get("active").and_then(Value::as_bool).unwrap_or(true),
            groups,
            mapped_username: rec.link.clone(),
            deactivated: Vec::new(),
        };
        let Some(username) = policy::username_for(&facts, policy.username_from) else { continue };
        let created_ms = DateTime::parse_from_rfc3339(&rec.meta.created).ok().map(|d| d.timestamp_millis());
        out.insert(
            username.to_lowercase(),
            Provisioned { id: rec.id.clone(), user_name: facts.user_name.clone(), facts, created_ms },
        );
    }
    // Accounts linked under another name (issue 9) belong to their SCIM user too, so jobs see
    // its protection and queue behind its lane. Links are per target; the map is not, which only
    // ever protects more.
    if store.has_links() {
        let by_id: HashMap<String, Provisioned> = out.values().map(|p| (p.id.clone(), p.clone())).collect();
        for link in store.links(None)? {
            if let Some(p) = by_id.get(&link.user_id) {
                out.entry(link.username.to_lowercase()).or_insert_with(|| p.clone());
            }
        }
    }
    Ok(out)
}

/// Protected by name (Atlassian username or SCIM userName) or by a protected group on either
/// side (the target's membership or the IdP's).
pub(crate) fn is_protected(policy: &Policy, username: &str, groups: &[String], prov: Option<&Provisioned>) -> bool {
    contains_ci(&policy.protected_users, username)
        || groups.iter().any(|g| contains_ci(&policy.protected_groups, g))
        || prov.is_some_and(|p| {
            contains_ci(&policy.protected_users, &p.user_name)
                || p.facts.groups.iter().any(|g| contains_ci(&policy.protected_groups, g))
        })
}

/// The delivery lane id of an account: the SCIM id when the IdP provisioned it (so job intents
/// queue behind the IdP's own for that user), else a stable id from the username.
pub(crate) fn lane_id(username: &str, prov: Option<&Provisioned>) -> String {
    prov.map_or_else(|| format!("atlassian:{}", username.to_lowercase()), |p| p.id.clone())
}

pub(crate) fn intent(
    target: &str,
    username: &str,
    prov: Option<&Provisioned>,
    action: IntentAction,
    trigger: Trigger,
    policy: &Policy,
) -> Intent {
    Intent {
        target: target.to_string(),
        user_id: lane_id(username, prov),
        username: username.to_string(),
        action,
        trigger,
        dry_run: policy.dry_run,
    }
}

/// The short name of an intent action for reports (`deactivate`, `remove_license`…).
pub(crate) fn action_name(a: &IntentAction) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// Writes intents to the outbox in batches, each with its `queued` audit record (the run's
/// operator, the intent and the reason it gives); returns how many.
///
/// # Errors
/// On a store error (batches already written stay written and will be delivered).
pub(crate) fn enqueue(
    store: &Store,
    op: &Operator,
    intents: &[(Intent, String)],
    now: DateTime<Utc>,
) -> Result<u64, LifecycleError> {
    let text = super::report::rfc3339(now);
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let mut n = 0;
    // One run is one decision, however many calls write it (see `store::Basis`).
    let decision = store.new_decision();
    for chunk in intents.chunks(ENQUEUE_BATCH) {
        let entries: Vec<(OutboxEntry, Value)> = chunk
            .iter()
            .filter_map(|(i, detail)| {
                let record = json!({
                    "type": "queued", "at": text, "target": i.target, "user_id": i.user_id, "username": i.username,
                    "action": i.action, "trigger": i.trigger, "reason": i.trigger.reason(), "detail": detail,
                    "dry_run": i.dry_run,
                });
                serde_json::to_value(i)
                    .ok()
                    .map(|v| (OutboxEntry::decided(v, &text, ms, decision).with_operator(op), record))
            })
            .collect();
        n += store.enqueue_audited(&entries)?.len() as u64;
    }
    Ok(n)
}
