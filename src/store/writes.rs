//! SCIM writes: create, modify (PUT and PATCH) and delete of Users and Groups.
//!
//! Each write runs under the store's writer lock: read the current record, let the caller
//! compute the new attributes, check uniqueness and members, ask the `ChangeHook` (the policy)
//! for outbox intents, then commit record, indexes, memberships, audit and intents in ONE sled
//! transaction. The caller flushes (`Store::flush`) before answering, outside the lock.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sled::Transactional;

use super::error::{StoreError, StoreResult};
use super::keys::{self, fold};
use super::records::{Kind, Record, RecordMeta};
use super::{audit, tree, Store};
use crate::scim::ScimError;

/// Who made a change: the name of the credential that authenticated the request.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Create,
    Replace,
    Patch,
    Delete,
}

/// One committed (or about-to-be-committed) change, as the policy sees it.
#[derive(Debug)]
pub struct Change<'a> {
    pub kind: Kind,
    pub op: ChangeOp,
    pub id: &'a str,
    pub before: Option<&'a Record>,
    pub after: Option<&'a Record>,
    /// Group changes: members that joined and left (ids).
    pub members_added: &'a [String],
    pub members_removed: &'a [String],
    /// User deletes: the groups the user was in.
    pub groups_left: &'a [String],
    pub seq: u64,
    pub at: &'a str,
    pub actor: &'a str,
}

/// What the policy made of a change.
#[derive(Debug, Default)]
pub struct Planned {
    /// Outbox entries, written in the change's transaction.
    pub intents: Vec<Value>,
    /// The Atlassian username to record on the user, when it has none yet.
    pub link: Option<String>,
}

/// Turns a change into outbox entries. Called under the writer lock, before the transaction, so
/// it may read the store and sees exactly the state the change applies to.
pub trait ChangeHook: Send + Sync {
    fn plan(&self, store: &Store, change: &Change<'_>) -> Planned;
}

/// A hook that produces nothing (no Atlassian targets configured).
pub struct NoHook;

impl ChangeHook for NoHook {
    fn plan(&self, _: &Store, _: &Change<'_>) -> Planned {
        Planned::default()
    }
}

/// One edit of a group's membership, applied in order.
pub enum MemberEdit {
    Add(Vec<(String, Option<String>)>),
    Remove(Vec<String>),
    /// Remove every member whose element (`{"value","type"}`) the predicate accepts.
    RemoveWhere(Box<dyn Fn(&Value) -> bool + Send>),
    Clear,
}

impl std::fmt::Debug for MemberEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberEdit::Add(v) => write!(f, "Add({})", v.len()),
            MemberEdit::Remove(v) => write!(f, "Remove({})", v.len()),
            MemberEdit::RemoveWhere(_) => write!(f, "RemoveWhere"),
            MemberEdit::Clear => write!(f, "Clear"),
        }
    }
}

/// Members that join (with their kind) and leave a group in one write.
type MemberDelta = (Vec<(String, Kind)>, Vec<String>);

/// What a write produced.
#[derive(Debug)]
pub struct WriteOutcome {
    pub record: Record,
    pub seq: u64,
    pub intents: usize,
}

/// The request-scoped context of a write.
pub struct WriteCtx<'a> {
    pub actor: &'a Actor,
    pub now: &'a str,
    pub hook: &'a dyn ChangeHook,
    /// `If-Match` header value; a mismatch is 412.
    pub if_match: Option<&'a str>,
}

fn precondition(ctx: &WriteCtx<'_>, current: &Record) -> StoreResult<()> {
    if let Some(expected) = ctx.if_match {
        let ok = expected.split(',').map(str::trim).any(|t| {
            t == "*"
                || t == current.meta.etag()
                || t.trim_start_matches("W/") == current.meta.etag().trim_start_matches("W/")
        });
        if !ok {
            return Err(ScimError::new(
                412,
                None,
                "The resource was modified: If-Match does not match its current version.",
            )
            .into());
        }
    }
    Ok(())
}

fn unique_name(kind: Kind, attrs: &Map<String, Value>) -> StoreResult<String> {
    match attrs.get(kind.unique_attr()).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        _ => Err(ScimError::invalid_value(format!("{} is required.", kind.unique_attr())).into()),
    }
}

impl Store {
    fn read(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        match self.t(kind.tree()).get(id.as_bytes())? {
            Some(v) => Ok(Some(Record::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock only means another writer panicked mid-way; sled's transaction
        // rolled that write back, so the data is consistent and we carry on.
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_unique(&self, kind: Kind, name: &str, self_id: &str) -> StoreResult<()> {
        if let Some(owner) = self.id_by_name(kind, name)? {
            if owner != self_id {
                let what = match kind {
                    Kind::User => "userName",
                    Kind::Group => "displayName",
                };
                return Err(ScimError::uniqueness(format!(
                    "A {} with {what} '{name}' already exists.",
                    kind.resource_type()
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Resolves membership edits against the current members into the final sets of ids
    /// added and removed. Unknown member ids are a 400.
    fn resolve_members(&self, gid: &str, edits: Vec<MemberEdit>) -> StoreResult<MemberDelta> {
        let members = self.t(tree::MEMBERS);
        let current = |id: &str| members.contains_key(keys::pair(gid, id));
        let mut added: Vec<(String, Kind)> = Vec::new();
        let mut added_set: BTreeSet<String> = BTreeSet::new();
        let mut removed: BTreeSet<String> = BTreeSet::new();
        let existing_all = || -> StoreResult<Vec<(String, String)>> {
            members
                .scan_prefix(keys::prefix(gid))
                .map(|kv| {
                    let (k, v) = kv?;
                    Ok((keys::second(&k).unwrap_or_default().to_string(), String::from_utf8_lossy(&v).into_owned()))
                })
                .collect()
        };
        for edit in edits {
            match edit {
                MemberEdit::Clear => {
                    for (id, _) in existing_all()? {
                        removed.insert(id);
                    }
                    added.clear();
                    added_set.clear();
                }
                MemberEdit::Add(list) => {
                    for (id, hint) in list {
                        let kind = self.member_kind(&id, hint.as_deref())?;
                        if kind == Kind::Group && id == gid {
                            return Err(ScimError::invalid_value("A group cannot be a member of itself.").into());
                        }
                        let was_removed = removed.remove(&id);
                        if (!current(&id)? || was_removed) && added_set.insert(id.clone()) {
                            added.push((id, kind));
                        }
                    }
                }
                MemberEdit::Remove(ids) => {
                    for id in ids {
                        if added_set.remove(&id) {
                            added.retain(|(a, _)| a != &id);
                        }
                        if current(&id)? {
                            removed.insert(id);
                        }
                    }
                }
                MemberEdit::RemoveWhere(pred) => {
                    let elem = |id: &str, kind: &str| serde_json::json!({"value": id, "type": kind});
                    for (id, kind) in existing_all()? {
                        if pred(&elem(&id, &kind)) {
                            removed.insert(id);
                        }
                    }
                    added.retain(|(id, k)| {
                        let drop = pred(&elem(id, k.resource_type()));
                        if drop {
                            added_set.remove(id);
                        }
                        !drop
                    });
                }
            }
        }
        // An id both re-added and removed in one request ends up present: don't remove it.
        let removed = removed.into_iter().filter(|id| !added_set.contains(id)).collect();
        let added = added.into_iter().filter(|(id, _)| !current(id).unwrap_or(false)).collect();
        Ok((added, removed))
    }

    fn member_kind(&self, id: &str, hint: Option<&str>) -> StoreResult<Kind> {
        let wants_group = hint.is_some_and(|h| h.eq_ignore_ascii_case("Group"));
        let order = if wants_group { [Kind::Group, Kind::User] } else { [Kind::User, Kind::Group] };
        for kind in order {
            if self.t(kind.tree()).contains_key(id.as_bytes())? {
                return Ok(kind);
            }
        }
        Err(ScimError::invalid_value(format!("Member '{id}' does not exist.")).into())
    }

    /// Creates a resource.
    ///
    /// # Errors
    /// 409 `uniqueness` on a taken userName/displayName, 400 for unknown members, storage errors.
    pub fn create(
        &self,
        kind: Kind,
        attrs: Map<String, Value>,
        members: Vec<MemberEdit>,
        ctx: &WriteCtx<'_>,
    ) -> StoreResult<WriteOutcome> {
        self.ensure_writable()?;
        let id = uuid::Uuid::now_v7().to_string();
        let written = (|| {
            let _guard = self.lock();
            let name = unique_name(kind, &attrs)?;
            self.check_unique(kind, &name, &id)?;
            let (added, _) =
                if kind == Kind::Group { self.resolve_members(&id, members)? } else { (Vec::new(), Vec::new()) };
            let seq = self.next_seq();
            let record = Record {
                id: id.clone(),
                attrs,
                meta: RecordMeta { created: ctx.now.to_string(), last_modified: ctx.now.to_string(), version: seq },
                link: None,
            };
            self.commit(kind, ChangeOp::Create, None, Some(&record), &added, &[], &[], seq, ctx)
        })();
        self.settle(written)
    }

    /// Changes a resource: `f` gets the current record and returns the new attributes and any
    /// membership edits (PUT and PATCH both come through here).
    ///
    /// # Errors
    /// 404 for an unknown id, 412 on an `If-Match` mismatch, whatever `f` returns, 409, storage errors.
    pub fn modify<F>(&self, kind: Kind, id: &str, op: ChangeOp, ctx: &WriteCtx<'_>, f: F) -> StoreResult<WriteOutcome>
    where
        F: FnOnce(&Record) -> Result<(Map<String, Value>, Vec<MemberEdit>), ScimError>,
    {
        self.ensure_writable()?;
        let written = (|| {
            let _guard = self.lock();
            let before = self.read(kind, id)?.ok_or_else(|| not_found(kind, id))?;
            precondition(ctx, &before)?;
            let (attrs, edits) = f(&before)?;
            let name = unique_name(kind, &attrs)?;
            self.check_unique(kind, &name, id)?;
            let (added, removed) =
                if kind == Kind::Group { self.resolve_members(id, edits)? } else { (Vec::new(), Vec::new()) };
            let seq = self.next_seq();
            let after = Record {
                id: id.to_string(),
                attrs,
                meta: RecordMeta {
                    created: before.meta.created.clone(),
                    last_modified: ctx.now.to_string(),
                    version: seq,
                },
                link: before.link.clone(),
            };
            self.commit(kind, op, Some(&before), Some(&after), &added, &removed, &[], seq, ctx)
        })();
        self.settle(written)
    }

    /// Deletes a resource with its memberships.
    ///
    /// # Errors
    /// 404 for an unknown id, 412 on an `If-Match` mismatch, storage errors.
    pub fn delete(&self, kind: Kind, id: &str, ctx: &WriteCtx<'_>) -> StoreResult<WriteOutcome> {
        self.ensure_writable()?;
        let written = (|| {
            let _guard = self.lock();
            let before = self.read(kind, id)?.ok_or_else(|| not_found(kind, id))?;
            precondition(ctx, &before)?;
            let removed: Vec<String> = match kind {
                Kind::Group => self.member_ids(id)?,
                Kind::User => Vec::new(),
            };
            let groups_left: Vec<String> = self.group_ids_of(id)?;
            let seq = self.next_seq();
            let mut out =
                self.commit(kind, ChangeOp::Delete, Some(&before), None, &[], &removed, &groups_left, seq, ctx)?;
            out.record = before;
            Ok(out)
        })();
        self.settle(written)
    }

    /// A write that failed on an I/O error leaves sled unable to write and possibly half-applied
    /// in memory: reopen the store (with the writer lock released) before answering.
    fn settle(&self, written: StoreResult<WriteOutcome>) -> StoreResult<WriteOutcome> {
        if let Err(e) = &written {
            self.note_error(e);
        }
        written
    }

    /// The one transaction behind every write.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        kind: Kind,
        op: ChangeOp,
        before: Option<&Record>,
        after: Option<&Record>,
        added: &[(String, Kind)],
        removed: &[String],
        groups_left: &[String],
        seq: u64,
        ctx: &WriteCtx<'_>,
    ) -> StoreResult<WriteOutcome> {
        let subject = after.or(before).ok_or_else(|| StoreError::Corrupt("write without a record".into()))?;
        let id = subject.id.as_str();
        let added_ids: Vec<String> = added.iter().map(|(i, _)| i.clone()).collect();
        let change = Change {
            kind,
            op,
            id,
            before,
            after,
            members_added: &added_ids,
            members_removed: removed,
            groups_left,
            seq,
            at: ctx.now,
            actor: &ctx.actor.0,
        };
        let planned = ctx.hook.plan(self, &change);
        let intents = planned.intents;
        let intent_count = intents.len();
        let intent_seqs: Vec<u64> = intents.iter().map(|_| self.next_seq()).collect();
        let audit_bytes = audit::record_bytes(&change, intent_count)?;
        let after = after.map(|a| {
            let mut a = a.clone();
            if a.link.is_none() {
                a.link = planned.link;
            }
            a
        });
        let after = after.as_ref();
        let after_bytes = after.map(Record::encode).transpose()?;
        let enqueued_ms =
            chrono::DateTime::parse_from_rfc3339(ctx.now).map(|t| t.timestamp_millis() as u64).unwrap_or(0);
        let mut audit_index = audit_subjects(kind, id, before, after, &intents);
        // The change's intents name who made it: the IdP credential, and the change's sequence
        // as the run, so a delivery record leads back to the SCIM record that caused it.
        let cause = super::Operator { actor: ctx.actor.0.clone(), run_id: format!("scim-{seq}") };
        if intent_count > 0 {
            audit_index.insert(audit::run_subject(&cause.run_id));
        }
        let entries: Vec<super::outbox::OutboxEntry> = intents
            .into_iter()
            .map(|intent| super::outbox::OutboxEntry::decided(intent, ctx.now, enqueued_ms, seq).with_operator(&cause))
            .collect();
        let intent_bytes: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect::<StoreResult<_>>()?;
        // The mass-offboarding brake: which intents are held instead (same transaction).
        let guard_items: Vec<(u64, &super::outbox::OutboxEntry)> = intent_seqs.iter().copied().zip(&entries).collect();
        let guard = self.guard_plan(&guard_items, ctx.now, enqueued_ms)?;
        let gen = self.inner.gen();
        let g = &gen.guard;
        let mut trees: Vec<&sled::Tree> = gen.trees.iter().collect();
        let guard_at = guard.writes_anything().then_some(trees.len());
        if guard_at.is_some() {
            trees.extend([&g.held, &g.lanes, &g.window, &g.superseded, &g.notices]);
        }
        let last_seq = intent_seqs.last().copied().unwrap_or(seq);
        let (before_name, after_name) =
            (before.and_then(|r| r.unique_name(kind)).map(fold), after.and_then(|r| r.unique_name(kind)).map(fold));
        trees.as_slice().transaction(|tx| {
            let t = |i: usize| &tx[i];
            if before_name != after_name {
                if let Some(n) = &before_name {
                    t(kind.name_tree()).remove(n.as_bytes())?;
                }
            }
            if let Some(n) = &after_name {
                t(kind.name_tree()).insert(n.as_bytes(), id.as_bytes())?;
            }
            let (before_ext, after_ext) = (before.and_then(Record::external_id), after.and_then(Record::external_id));
            if before_ext != after_ext {
                if let Some(e) = before_ext {
                    t(kind.ext_tree()).remove(keys::pair(e, id))?;
                }
                if let Some(e) = after_ext {
                    t(kind.ext_tree()).insert(keys::pair(e, id), &[])?;
                }
            }
            match &after_bytes {
                Some(b) => {
                    t(kind.tree()).insert(id.as_bytes(), b.as_slice())?;
                }
                None => {
                    t(kind.tree()).remove(id.as_bytes())?;
                }
            }
            for (member, mkind) in added {
                t(tree::MEMBERS).insert(keys::pair(id, member), mkind.resource_type().as_bytes())?;
                t(tree::MEMBER_OF).insert(keys::pair(member, id), &[])?;
            }
            for member in removed {
                t(tree::MEMBERS).remove(keys::pair(id, member))?;
                t(tree::MEMBER_OF).remove(keys::pair(member, id))?;
            }
            for group in groups_left {
                t(tree::MEMBERS).remove(keys::pair(group, id))?;
                t(tree::MEMBER_OF).remove(keys::pair(id, group))?;
            }
            let delta: i64 = match (before.is_some(), after.is_some()) {
                (false, true) => 1,
                (true, false) => -1,
                _ => 0,
            };
            if delta != 0 {
                let count = t(tree::META).get(kind.count_key())?.map(|v| keys::decode_u64(v.as_ref())).unwrap_or(0);
                let next = if delta > 0 { count + 1 } else { count.saturating_sub(1) };
                t(tree::META).insert(kind.count_key(), &next.to_be_bytes())?;
            }
            t(tree::AUDIT).insert(&seq.to_be_bytes(), audit_bytes.as_slice())?;
            for subject in &audit_index {
                t(tree::AUDIT_BY_SUBJECT).insert(keys::seq_pair(subject, seq), &[])?;
            }
            for (i, (s, b)) in intent_seqs.iter().zip(&intent_bytes).enumerate() {
                if !guard.is_held(i) {
                    t(tree::OUTBOX).insert(&s.to_be_bytes(), b.as_slice())?;
                }
            }
            if let Some(at) = guard_at {
                guard.write(&super::guard_held::GuardTx {
                    held: t(at),
                    lanes: t(at + 1),
                    window: t(at + 2),
                    superseded: t(at + 3),
                    notices: t(at + 4),
                    audit: t(tree::AUDIT),
                    by_subject: t(tree::AUDIT_BY_SUBJECT),
                })?;
            }
            t(tree::META).insert(b"seq", &last_seq.to_be_bytes())?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.inner.records.changed(kind, id);
        if before_name != after_name {
            self.inner.names.update(kind, before_name.as_deref(), after_name.as_deref(), id);
        }
        if !added.is_empty() || !removed.is_empty() || !groups_left.is_empty() {
            let deleted = after.is_none().then_some(id);
            self.inner.member_counts.apply(
                added.iter().map(|(m, _)| m.as_str()),
                removed.iter().map(String::as_str),
                deleted,
            );
        }
        self.mark_committed();
        self.guard_applied(guard);
        if intent_count > 0 {
            self.inner.outbox_signal.notify_one();
        }
        Ok(WriteOutcome { record: after.unwrap_or(subject).clone(), seq, intents: intent_count })
    }
}

/// The subjects a SCIM change's audit record is indexed under (see `audit.rs`): the resource, a
/// user's userName before and after, and every other user the change made intents for (the
/// members of a group change).
fn audit_subjects(
    kind: Kind,
    id: &str,
    before: Option<&Record>,
    after: Option<&Record>,
    intents: &[Value],
) -> BTreeSet<String> {
    let mut out = BTreeSet::from([id.to_string()]);
    if kind == Kind::User {
        for name in [before, after].into_iter().flatten().filter_map(|r| r.unique_name(kind)) {
            out.insert(audit::name_subject(name));
        }
    }
    for user in intents.iter().filter_map(|i| i.get("user_id").and_then(Value::as_str)) {
        out.insert(user.to_string());
    }
    out
}

fn not_found(kind: Kind, id: &str) -> StoreError {
    ScimError::not_found(format!("{} {id} not found.", kind.resource_type())).into()
}
