//! The SCIM write and read operations, shared by the resource handlers and `/Bulk`: each turns
//! a parsed request into a store call and returns the affected record. None of them flushes;
//! the caller flushes once before answering (one flush for a whole bulk request).

use serde_json::{Map, Value};

use super::AppState;
use crate::auth::Principal;
use crate::scim::identifiers::check_identifiers;
use crate::scim::patch::{self, MemberOp};
use crate::scim::resource::{self, MemberRef};
use crate::scim::schema::ResourceSchema;
use crate::scim::ScimError;
use crate::store::writes::{MemberEdit, WriteCtx};
use crate::store::{Actor, ChangeOp, Kind, Record, StoreError, StoredRecord};

pub fn schema_of(state: &AppState, kind: Kind) -> &ResourceSchema {
    match kind {
        Kind::User => &state.registry.user,
        Kind::Group => &state.registry.group,
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn member_adds(refs: Vec<MemberRef>) -> MemberEdit {
    MemberEdit::Add(refs.into_iter().map(|m| (m.value, m.kind)).collect())
}

/// Translates the protocol's member operations into store edits.
fn member_edits(ops: Vec<MemberOp>, schema: &ResourceSchema) -> Vec<MemberEdit> {
    let members_def = schema.core.attr("members").cloned();
    ops.into_iter()
        .map(|op| match op {
            MemberOp::Add(refs) => member_adds(refs),
            MemberOp::Remove(ids) => MemberEdit::Remove(ids),
            MemberOp::Clear => MemberEdit::Clear,
            MemberOp::RemoveWhere(filter) => {
                let def = members_def.clone();
                MemberEdit::RemoveWhere(Box::new(move |elem: &Value| {
                    def.as_ref().is_some_and(|d| filter.matches_element(elem, d))
                }))
            }
        })
        .collect()
}

pub struct Written {
    pub record: Record,
    /// The write's sequence number, for `Store::flush_write`.
    pub seq: u64,
}

fn ctx<'a>(state: &'a AppState, actor: &'a Actor, now: &'a str, if_match: Option<&'a str>) -> WriteCtx<'a> {
    WriteCtx { actor, now, hook: state.hook.as_ref(), if_match }
}

/// POST: create.
pub fn create(state: &AppState, who: &Principal, kind: Kind, body: &Value) -> Result<Written, StoreError> {
    let schema = schema_of(state, kind);
    let incoming = resource::normalize(body, schema)?;
    check_identifiers(&incoming.attrs)?;
    let members = match (kind, incoming.members) {
        (Kind::Group, Some(m)) if !m.is_empty() => vec![member_adds(m)],
        _ => Vec::new(),
    };
    let (actor, now) = (Actor(who.name.clone()), now());
    let out = state.store.create(kind, incoming.attrs, members, &ctx(state, &actor, &now, None))?;
    Ok(Written { record: out.record, seq: out.seq })
}

/// PUT: full replace of the client-owned attributes. `id`, `meta` and other readOnly
/// attributes in the body are ignored (Okta echoes them back).
pub fn replace(
    state: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Written, StoreError> {
    let schema = schema_of(state, kind);
    let incoming = resource::normalize(body, schema)?;
    check_identifiers(&incoming.attrs)?;
    if let Some(body_id) = body.get("id").and_then(Value::as_str) {
        if body_id != id {
            return Err(ScimError::mutability(format!(
                "The id in the body ({body_id}) differs from the id in the URL ({id})."
            ))
            .into());
        }
    }
    let (actor, now) = (Actor(who.name.clone()), now());
    let attrs: Map<String, Value> = incoming.attrs;
    let members = incoming.members;
    let out = state.store.modify(kind, id, ChangeOp::Replace, &ctx(state, &actor, &now, if_match), move |_before| {
        let edits = match (kind, members) {
            (Kind::Group, Some(m)) => vec![MemberEdit::Clear, member_adds(m)],
            (Kind::Group, None) => vec![MemberEdit::Clear],
            _ => Vec::new(),
        };
        Ok((attrs, edits))
    })?;
    Ok(Written { record: out.record, seq: out.seq })
}

/// PATCH: RFC 7644 §3.5.2, atomically.
pub fn patch(
    state: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Written, StoreError> {
    let schema = schema_of(state, kind);
    let ops = patch::parse_patch(body)?;
    let (actor, now) = (Actor(who.name.clone()), now());
    let out = state.store.modify(kind, id, ChangeOp::Patch, &ctx(state, &actor, &now, if_match), |before| {
        let mut attrs = before.attrs.clone();
        let effect = patch::apply_patch(&mut attrs, &ops, schema)?;
        check_identifiers(&attrs)?;
        if kind == Kind::User && !effect.members.is_empty() {
            return Err(ScimError::invalid_path("Users have no members; change membership through the Group."));
        }
        Ok((attrs, member_edits(effect.members, schema)))
    })?;
    Ok(Written { record: out.record, seq: out.seq })
}

/// DELETE; returns the write's sequence number.
pub fn delete(
    state: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
    if_match: Option<&str>,
) -> Result<u64, StoreError> {
    let (actor, now) = (Actor(who.name.clone()), now());
    Ok(state.store.delete(kind, id, &ctx(state, &actor, &now, if_match))?.seq)
}

/// One resource as stored, or 404.
pub fn get_stored(state: &AppState, kind: Kind, id: &str) -> Result<StoredRecord, StoreError> {
    state
        .store
        .get_stored(kind, id)?
        .ok_or_else(|| ScimError::not_found(format!("{} {id} not found.", kind.resource_type())).into())
}

/// Parses a resource-type path segment, case-insensitively (`Users`, `users`).
pub fn kind_of(segment: &str) -> Option<Kind> {
    if segment.eq_ignore_ascii_case("Users") {
        Some(Kind::User)
    } else if segment.eq_ignore_ascii_case("Groups") {
        Some(Kind::Group)
    } else {
        None
    }
}
