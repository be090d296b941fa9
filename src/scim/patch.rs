//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` body and applying its operations to a stored
//! resource, in order and atomically (all or nothing, §3.5.2 "Each operation … SHALL be applied
//! in sequence … If … any operation fails … the original resource SHALL be left unchanged").
//!
//! Beyond the RFC it accepts every dialect of the field guide (`shared/reference/idp-scim.md`
//! §0, §1.3, §2.1): `op` and member names in any case, path-less values with dotted and
//! URN-qualified keys, Entra's `Remove` + `members` + `value` (removes only the listed members),
//! `Add` or `Replace` on a value path that matches nothing (appends an element built from the
//! filter), readOnly keys echoed inside path-less values (ignored), and the value forms that
//! `resource::coerce` accepts.
//!
//! Group `members` never touch the resource JSON: they become [`MemberOp`]s for the store, which
//! keeps membership in its own trees. `password` goes to [`PatchEffect::password`]. Pure: no I/O.

use std::fmt;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult};
use super::filter::{CompareOp, Filter};
use super::path::{parse_patch_path, PatchPath};
use super::resource::{self, coerce, get_ci, members_from, Key, MemberRef, PRIMARY, VALUE};
use super::schema::{AttrDef, Container, Mutability, ResourceSchema, PATCH_OP_SCHEMA};

const SCHEMAS: &str = "schemas";
const OPERATIONS: &str = "Operations";
const OP: &str = "op";
const PATH: &str = "path";
const TYPE: &str = "type";
const NULL: Value = Value::Null;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Add,
    Remove,
    Replace,
}

impl PatchKind {
    fn parse(op: &str) -> Option<PatchKind> {
        // Entra sends `Add`/`Replace`/`Remove` (field guide §0.1).
        [("add", PatchKind::Add), ("remove", PatchKind::Remove), ("replace", PatchKind::Replace)]
            .into_iter()
            .find(|(name, _)| op.trim().eq_ignore_ascii_case(name))
            .map(|(_, kind)| kind)
    }
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub kind: PatchKind,
    pub path: Option<PatchPath>,
    /// As sent; `Some(Value::Null)` is an explicit `null` (unassign), `None` an absent `value`.
    pub value: Option<Value>,
}

/// A change to a group's membership, for the store to apply in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Add(Vec<MemberRef>),
    /// Remove exactly these member ids.
    Remove(Vec<String>),
    /// Remove the members matching a filter over `{value, type, …}` (`members[type eq "Group"]`).
    RemoveWhere(Filter),
    /// Remove every member.
    Clear,
}

/// What a PATCH means beyond the resource JSON.
#[derive(Clone, Default, PartialEq)]
pub struct PatchEffect {
    pub members: Vec<MemberOp>,
    /// A new clear-text password; hash it, never store it as is.
    pub password: Option<String>,
}

impl fmt::Debug for PatchEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatchEffect")
            .field("members", &self.members)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses a PATCH body (RFC 7644 §3.5.2). A missing `schemas` is tolerated.
///
/// # Errors
/// `400 invalidSyntax` for a body that is not a PatchOp, an empty or missing `Operations`, an
/// unknown `op`, or an add/replace without `value`; `invalidPath`/`invalidFilter` for a bad path.
pub fn parse_patch(body: &Value) -> ScimResult<Vec<PatchOperation>> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
    let names_patch_op = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA));
    let schemas_ok = match get_ci(obj, SCHEMAS) {
        None | Some(Value::Null) => true,
        Some(Value::Array(ids)) => ids.iter().any(names_patch_op),
        Some(other) => names_patch_op(other),
    };
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!("'schemas' must contain {PATCH_OP_SCHEMA}")));
    }
    match get_ci(obj, OPERATIONS) {
        Some(Value::Array(ops)) if !ops.is_empty() => {
            ops.iter().enumerate().map(|(i, op)| parse_operation(op).map_err(|e| in_operation(e, i))).collect()
        }
        _ => Err(ScimError::invalid_syntax("'Operations' must be a non-empty array")),
    }
}

fn parse_operation(op: &Value) -> ScimResult<PatchOperation> {
    let obj = op.as_object().ok_or_else(|| ScimError::invalid_syntax("an operation must be a JSON object"))?;
    let kind = match get_ci(obj, OP) {
        Some(Value::String(s)) => {
            PatchKind::parse(s).ok_or_else(|| ScimError::invalid_syntax(format!("unknown op '{s}'")))?
        }
        _ => return Err(ScimError::invalid_syntax("'op' must be one of add, remove, replace")),
    };
    let path = match get_ci(obj, PATH) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_patch_path(s.trim())?),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    let value = get_ci(obj, VALUE).cloned();
    if kind != PatchKind::Remove && value.is_none() {
        return Err(ScimError::invalid_syntax("add and replace need a 'value'"));
    }
    Ok(PatchOperation { kind, path, value })
}

/// Prefixes the detail with the (1-based) operation number so the IdP log points at it.
fn in_operation(err: ScimError, index: usize) -> ScimError {
    ScimError { detail: format!("operation {}: {}", index + 1, err.detail), ..err }
}

/// Applies `ops` to `resource` in order. On error `resource` is left exactly as it was.
///
/// # Errors
/// `400 noTarget` for a remove without path; `invalidPath` for a path naming no attribute of
/// `schema`; `mutability` for a path to a readOnly attribute or for unassigning a required one;
/// `invalidValue` for a value that does not fit its attribute.
pub fn apply_patch(
    resource: &mut Map<String, Value>,
    ops: &[PatchOperation],
    schema: &ResourceSchema,
) -> ScimResult<PatchEffect> {
    let mut work = resource.clone();
    let mut effect = PatchEffect::default();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, op, schema, &mut effect).map_err(|e| in_operation(e, i))?;
    }
    resource::prune(&mut work);
    // RFC 7644 §3.5.2: unassigning a required attribute is a `mutability` error. Judged on the
    // final state, so a remove followed by an add of the same attribute is fine.
    let was_set: Vec<&str> = resource::missing_required(resource, schema).collect();
    if let Some(name) = resource::missing_required(&work, schema).find(|name| !was_set.contains(name)) {
        return Err(ScimError::mutability(format!("'{name}' is required and cannot be removed")));
    }
    *resource = work;
    Ok(effect)
}

/// The attribute an operation targets, resolved against the schema.
struct Target<'s, 'p> {
    container: Container<'s>,
    def: &'s AttrDef,
    sub: Option<&'s AttrDef>,
    filter: Option<&'p Filter>,
}

fn apply_op(
    work: &mut Map<String, Value>,
    op: &PatchOperation,
    schema: &ResourceSchema,
    effect: &mut PatchEffect,
) -> ScimResult<()> {
    match (&op.path, op.kind) {
        (None, PatchKind::Remove) => Err(ScimError::no_target("remove needs a 'path' (RFC 7644 §3.5.2.2)")),
        // §3.5.2.1 / §3.5.2.3: without a path, `value` is an object of attributes.
        (None, kind) => match op.value.as_ref() {
            Some(Value::Object(obj)) => apply_object(work, kind, obj, schema, None, effect),
            _ => Err(ScimError::invalid_syntax("add or replace without a 'path' needs an object 'value'")),
        },
        (Some(path), kind) => apply_path(work, kind, path, op.value.as_ref(), schema, effect),
    }
}

/// A path-less value (or a value for a whole extension). Keys are resolved like body keys;
/// unknown and readOnly ones are ignored (Okta echoes the group `id`, field guide §2.1).
fn apply_object(
    work: &mut Map<String, Value>,
    kind: PatchKind,
    obj: &Map<String, Value>,
    schema: &ResourceSchema,
    within: Option<&str>,
    effect: &mut PatchEffect,
) -> ScimResult<()> {
    for (key, value) in obj {
        if within.is_none() && key.contains('[') {
            // A value path as a key (`emails[type eq "work"].value`): applied like a path when it
            // names a writable attribute, ignored otherwise like any unknown key.
            if let Ok(path) = parse_patch_path(key.trim()) {
                let writable = resource::resolve_lenient(schema, path.attr.urn.as_deref(), &path.attr.name)
                    .is_some_and(|(_, def)| def.mutability != Mutability::ReadOnly);
                if writable {
                    apply_path(work, kind, &path, Some(value), schema, effect)?;
                }
            }
            continue;
        }
        match resource::resolve_key(schema, key, within) {
            Key::Ignored => {}
            Key::Extension(ext) => match value {
                Value::Object(inner) => apply_object(work, kind, inner, schema, Some(ext.id.as_str()), effect)?,
                Value::Null => {}
                _ => return Err(ScimError::invalid_value(format!("'{}' must be an object", ext.id))),
            },
            Key::Attr { container, def, sub } => {
                if def.mutability == Mutability::ReadOnly {
                    continue;
                }
                let sub = match sub {
                    None => None,
                    Some(name) => match def.sub(name) {
                        Some(s) if s.mutability != Mutability::ReadOnly => Some(s),
                        _ => continue,
                    },
                };
                apply_target(work, kind, &Target { container, def, sub, filter: None }, Some(value), effect)?;
            }
        }
    }
    Ok(())
}

fn apply_path(
    work: &mut Map<String, Value>,
    kind: PatchKind,
    path: &PatchPath,
    value: Option<&Value>,
    schema: &ResourceSchema,
    effect: &mut PatchEffect,
) -> ScimResult<()> {
    if let Some(urn) = whole_extension(schema, path) {
        return match (kind, value) {
            (PatchKind::Remove, _) => {
                work.remove(urn);
                Ok(())
            }
            (_, Some(Value::Object(obj))) => apply_object(work, kind, obj, schema, Some(urn), effect),
            _ => Err(ScimError::invalid_value(format!("'{urn}' needs an object value"))),
        };
    }
    let attr = &path.attr;
    let (container, def) = resource::resolve_lenient(schema, attr.urn.as_deref(), &attr.name)
        .ok_or_else(|| ScimError::invalid_path(format!("'{path}' names no attribute of {}", schema.name)))?;
    if def.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!("'{}' is read-only", def.name)));
    }
    let sub = match (attr.sub.as_deref(), path.sub.as_deref()) {
        (None, None) => None,
        (Some(name), None) | (None, Some(name)) => {
            let sub = def.sub(name).ok_or_else(|| {
                ScimError::invalid_path(format!("'{path}': '{}' has no sub-attribute '{name}'", def.name))
            })?;
            if sub.mutability == Mutability::ReadOnly {
                return Err(ScimError::mutability(format!("'{}.{}' is read-only", def.name, sub.name)));
            }
            Some(sub)
        }
        (Some(_), Some(_)) => return Err(ScimError::invalid_path(format!("'{path}' has two sub-attributes"))),
    };
    if path.filter.is_some() && !def.multi_valued {
        return Err(ScimError::invalid_path(format!("'{path}': a [filter] needs a multi-valued attribute")));
    }
    apply_target(work, kind, &Target { container, def, sub, filter: path.filter.as_ref() }, value, effect)
}

/// `urn:…:enterprise:2.0:User` as a path: the extension as a whole.
fn whole_extension<'s>(schema: &'s ResourceSchema, path: &PatchPath) -> Option<&'s str> {
    if path.filter.is_some() || path.sub.is_some() || path.attr.sub.is_some() {
        return None;
    }
    let full = match &path.attr.urn {
        Some(urn) => format!("{urn}:{}", path.attr.name),
        None => path.attr.name.clone(),
    };
    schema.extension(&full).map(|ext| ext.id.as_str())
}

fn apply_target(
    work: &mut Map<String, Value>,
    kind: PatchKind,
    t: &Target<'_, '_>,
    value: Option<&Value>,
    effect: &mut PatchEffect,
) -> ScimResult<()> {
    if resource::is_members(t.container, t.def) {
        return member_op(kind, t, value, effect);
    }
    if resource::is_password(t.container, t.def) {
        // writeOnly and never stored: removing it has nothing to remove.
        if kind != PatchKind::Remove {
            if let Some(p) = resource::password_from(value.unwrap_or(&NULL))? {
                effect.password = Some(p);
            }
        }
        return Ok(());
    }
    let map = resource::container_mut(work, t.container)?;
    match (t.filter, t.sub) {
        (Some(_), _) => on_elements(map, kind, t, value),
        // `emails.value` without a filter: every element.
        (None, Some(_)) if t.def.multi_valued => on_elements(map, kind, t, value),
        (None, Some(sub)) => on_sub(map, kind, t.def, sub, value),
        (None, None) => on_attr(map, kind, t.def, value),
    }
}

/// Group membership (field guide §0.5, §0.6).
fn member_op(kind: PatchKind, t: &Target<'_, '_>, value: Option<&Value>, effect: &mut PatchEffect) -> ScimResult<()> {
    if t.sub.is_some() {
        return Err(ScimError::invalid_path("a member's sub-attributes cannot be patched; add or remove the member"));
    }
    let value = value.filter(|v| !v.is_null());
    let ops = &mut effect.members;
    let add = |ops: &mut Vec<MemberOp>| -> ScimResult<()> {
        let members = members_from(value.unwrap_or(&NULL))?;
        if !members.is_empty() {
            ops.push(MemberOp::Add(members));
        }
        Ok(())
    };
    match (kind, t.filter) {
        (PatchKind::Add, None) => add(ops)?,
        (PatchKind::Add, Some(_)) => return Err(ScimError::invalid_path("add to 'members' takes no filter")),
        (PatchKind::Remove, Some(filter)) => ops.push(removal(filter)),
        // Entra's default dialect names the members to remove in `value`: only those go, never
        // all (field guide §0.5a). Without a value, RFC 7644 §3.5.2.2 removes every member.
        (PatchKind::Remove, None) => match value {
            None => ops.push(MemberOp::Clear),
            Some(v) => {
                let ids: Vec<String> = members_from(v)?.into_iter().map(|m| m.value).collect();
                if !ids.is_empty() {
                    ops.push(MemberOp::Remove(ids));
                }
            }
        },
        (PatchKind::Replace, None) => {
            ops.push(MemberOp::Clear);
            add(ops)?;
        }
        (PatchKind::Replace, Some(filter)) => {
            ops.push(removal(filter));
            add(ops)?;
        }
    }
    Ok(())
}

/// `members[value eq "id"]` (and `or`s of those) → the ids; any other filter stays a filter.
fn removal(filter: &Filter) -> MemberOp {
    fn ids(f: &Filter, out: &mut Vec<String>) -> bool {
        match f {
            Filter::Or(a, b) => ids(a, out) && ids(b, out),
            Filter::Compare { path, op: CompareOp::Eq, value: Value::String(id) }
                if path.urn.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case(VALUE) =>
            {
                out.push(id.clone());
                true
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    if ids(filter, &mut out) {
        MemberOp::Remove(out)
    } else {
        MemberOp::RemoveWhere(filter.clone())
    }
}

/// A whole attribute, no filter, no sub-attribute.
fn on_attr(map: &mut Map<String, Value>, kind: PatchKind, def: &AttrDef, value: Option<&Value>) -> ScimResult<()> {
    let value = value.filter(|v| !v.is_null());
    if kind == PatchKind::Remove {
        match value {
            None => {
                map.remove(&def.name);
            }
            // A remove with a value (Entra style): only the listed values go.
            Some(v) => remove_values(map, def, v)?,
        }
        return Ok(());
    }
    let Some(new) = coerce(def, value.unwrap_or(&NULL))? else {
        // Replace with null/[] unassigns (RFC 7643 §2.5); adding nothing changes nothing.
        if kind == PatchKind::Replace {
            map.remove(&def.name);
        }
        return Ok(());
    };
    match new {
        Value::Array(items) if def.multi_valued && kind == PatchKind::Add => append(map, def, items)?,
        // §3.5.2.1/§3.5.2.3: a complex value sets the given sub-attributes and leaves the others.
        // Reference-like complex values (`manager`) are replaced whole, so a new id never keeps
        // the old `$ref`.
        Value::Object(obj) if !def.multi_valued && def.sub(VALUE).is_none() => {
            resource::object_mut(map, &def.name)?.extend(obj);
        }
        new => {
            map.insert(def.name.clone(), new);
        }
    }
    Ok(())
}

/// §3.5.2.1: values are appended; one already present is merged, not duplicated (an element with
/// the same `value` and `type` is the same element).
fn append(map: &mut Map<String, Value>, def: &AttrDef, items: Vec<Value>) -> ScimResult<()> {
    let arr = array_mut(map, &def.name)?;
    let mut winner = None;
    for item in items {
        let same = arr.iter().position(|e| *e == item || same_element(e, &item));
        let index = match (same, item) {
            (Some(i), Value::Object(new)) => {
                if let Some(Value::Object(old)) = arr.get_mut(i) {
                    old.extend(new);
                }
                i
            }
            (Some(i), _) => i,
            (None, item) => {
                arr.push(item);
                arr.len() - 1
            }
        };
        if arr.get(index).is_some_and(resource::is_primary) {
            winner = Some(index);
        }
    }
    resource::keep_one_primary(arr, winner);
    Ok(())
}

fn same_element(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.get(VALUE).is_some() && a.get(VALUE) == b.get(VALUE) && a.get(TYPE) == b.get(TYPE)
        }
        _ => false,
    }
}

fn remove_values(map: &mut Map<String, Value>, def: &AttrDef, value: &Value) -> ScimResult<()> {
    let Some(listed) = coerce(def, value)? else { return Ok(()) };
    if def.multi_valued {
        let listed = match listed {
            Value::Array(items) => items,
            single => vec![single],
        };
        if let Some(Value::Array(arr)) = map.get_mut(&def.name) {
            arr.retain(|e| !listed.iter().any(|l| contains(e, l)));
        }
    } else if map.get(&def.name).is_some_and(|current| contains(current, &listed)) {
        map.remove(&def.name);
    }
    Ok(())
}

/// `element` has every sub-attribute of `listed` with the same value (or equals it).
fn contains(element: &Value, listed: &Value) -> bool {
    match (element, listed) {
        (Value::Object(e), Value::Object(l)) => l.iter().all(|(k, v)| e.get(k) == Some(v)),
        (e, l) => e == l,
    }
}

/// `name.givenName`: one sub-attribute of a single-valued complex attribute.
fn on_sub(
    map: &mut Map<String, Value>,
    kind: PatchKind,
    def: &AttrDef,
    sub: &AttrDef,
    value: Option<&Value>,
) -> ScimResult<()> {
    let new = match kind {
        PatchKind::Remove => None,
        _ => coerce(sub, value.unwrap_or(&NULL))?,
    };
    match new {
        Some(v) => {
            resource::object_mut(map, &def.name)?.insert(sub.name.clone(), v);
        }
        None if kind == PatchKind::Add => {}
        None => {
            if let Some(Value::Object(obj)) = map.get_mut(&def.name) {
                obj.remove(&sub.name);
            }
        }
    }
    Ok(())
}

/// Value paths (`emails[type eq "work"]`, `emails[type eq "work"].value`) and `emails.value`.
fn on_elements(
    map: &mut Map<String, Value>,
    kind: PatchKind,
    t: &Target<'_, '_>,
    value: Option<&Value>,
) -> ScimResult<()> {
    let def = t.def;
    // What each matching element gets: a sub-attribute value, or an element to merge.
    let new = match (kind, t.sub) {
        (PatchKind::Remove, _) => None,
        (_, Some(sub)) => coerce(sub, value.unwrap_or(&NULL))?,
        (_, None) => merged_element(def, value.unwrap_or(&NULL))?,
    };
    let arr = array_mut(map, &def.name)?;
    let hits: Vec<usize> = arr
        .iter()
        .enumerate()
        .filter(|(_, e)| match t.filter {
            Some(f) => f.matches_element(e, def),
            None => true,
        })
        .map(|(i, _)| i)
        .collect();
    let Some(new) = new else {
        match (kind, t.sub) {
            (PatchKind::Add, _) => {}
            (_, None) => retain_indexed(arr, |i, _| !hits.contains(&i)),
            (_, Some(sub)) => {
                for &i in &hits {
                    if let Some(Value::Object(e)) = arr.get_mut(i) {
                        e.remove(&sub.name);
                    }
                }
                // An element without its `value` (an email with only a type) means nothing.
                let dropped_value = sub.name == VALUE;
                retain_indexed(arr, |i, e| {
                    !hits.contains(&i) || !(e.as_object().is_some_and(Map::is_empty) || dropped_value)
                });
            }
        }
        return Ok(());
    };
    let patch = match (t.sub, new) {
        (Some(sub), v) => Map::from_iter([(sub.name.clone(), v)]),
        (None, Value::Object(obj)) => obj,
        (None, _) => return Err(ScimError::invalid_value(format!("attribute '{}' needs an object", def.name))),
    };
    let sets_primary = patch.get(PRIMARY) == Some(&Value::Bool(true));
    let winner = if hits.is_empty() {
        // Entra sends Add or Replace for a work email that may not exist yet (field guide §0.4,
        // §1.4): build the element from the filter's `eq` terms plus the value.
        let mut element = Map::new();
        if let Some(f) = t.filter {
            seed_from_filter(f, def, &mut element);
        }
        element.extend(patch);
        arr.push(Value::Object(element));
        Some(arr.len() - 1)
    } else {
        for &i in &hits {
            if let Some(Value::Object(e)) = arr.get_mut(i) {
                e.extend(patch.clone());
            }
        }
        hits.first().copied()
    };
    resource::keep_one_primary(arr, winner.filter(|_| sets_primary));
    Ok(())
}

fn retain_indexed(arr: &mut Vec<Value>, mut keep: impl FnMut(usize, &Value) -> bool) {
    let mut index = 0;
    arr.retain(|e| {
        index += 1;
        keep(index - 1, e)
    });
}

/// The value for `attr[filter]` without a sub-attribute: one element object (several are merged).
fn merged_element(def: &AttrDef, value: &Value) -> ScimResult<Option<Value>> {
    let Some(Value::Array(items)) = coerce(def, value)? else { return Ok(None) };
    let mut element = Map::new();
    for item in items {
        match item {
            Value::Object(obj) => element.extend(obj),
            _ => return Err(ScimError::invalid_value(format!("attribute '{}' needs an object", def.name))),
        }
    }
    Ok(Some(Value::Object(element)))
}

/// The `sub eq value` terms of a filter (joined by `and`), as sub-attributes of a new element.
fn seed_from_filter(filter: &Filter, def: &AttrDef, out: &mut Map<String, Value>) {
    match filter {
        Filter::And(a, b) => {
            seed_from_filter(a, def, out);
            seed_from_filter(b, def, out);
        }
        Filter::Compare { path, op: CompareOp::Eq, value } if path.urn.is_none() => {
            // Relative (`type`) or spelled out (`emails.type`).
            let name = match &path.sub {
                None => Some(path.name.as_str()),
                Some(sub) if path.name.eq_ignore_ascii_case(&def.name) => Some(sub.as_str()),
                Some(_) => None,
            };
            if let Some(sub) = name.and_then(|n| def.sub(n)) {
                if let Ok(Some(v)) = coerce(sub, value) {
                    out.insert(sub.name.clone(), v);
                }
            }
        }
        _ => {}
    }
}

/// `map[name]` as an array; a stray single value becomes its first element.
fn array_mut<'m>(map: &'m mut Map<String, Value>, name: &str) -> ScimResult<&'m mut Vec<Value>> {
    let slot = map.entry(name.to_string()).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let single = slot.take();
        *slot = Value::Array(if single.is_null() { Vec::new() } else { vec![single] });
    }
    slot.as_array_mut().ok_or_else(|| ScimError::internal("array slot vanished"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::resource::fixtures::{group, user};
    use crate::scim::schema::ENTERPRISE_USER_SCHEMA;

    const ENTERPRISE_EMPLOYEE_NUMBER: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("test resource is an object")
    }

    /// Parses and applies; returns the new resource and the effect.
    fn run(resource: Value, ops: Value, schema: &ResourceSchema) -> ScimResult<(Value, PatchEffect)> {
        let mut res = obj(resource);
        let parsed = parse_patch(&body(ops))?;
        let effect = apply_patch(&mut res, &parsed, schema)?;
        Ok((Value::Object(res), effect))
    }

    fn user_after(resource: Value, ops: Value) -> Value {
        run(resource, ops, &user()).expect("patch applies").0
    }

    fn err_type(resource: Value, ops: Value, schema: &ResourceSchema) -> Option<ScimType> {
        run(resource, ops, schema).expect_err("patch fails").scim_type
    }

    fn members_after(ops: Value) -> Vec<MemberOp> {
        let (res, effect) = run(json!({"displayName": "g"}), ops, &group()).expect("patch applies");
        assert_eq!(res, json!({"displayName": "g"}), "members never enter the group JSON");
        effect.members
    }

    fn ids(ids: &[&str]) -> MemberOp {
        MemberOp::Remove(ids.iter().map(|s| s.to_string()).collect())
    }

    fn member(id: &str) -> MemberRef {
        MemberRef { value: id.to_string(), kind: None }
    }

    fn alice() -> Value {
        json!({
            "userName": "alice@contoso.com",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true},
                       {"type": "home", "value": "alice@home.example"}],
            "title": "Engineer"
        })
    }

    // --- Entra ID, default dialect (field guide §1.2, §1.3 "Default") ---

    #[test]
    fn entra_default_disable_sends_the_string_false_and_sets_active_false() {
        let res = user_after(alice(), json!([{"op": "Replace", "path": "active", "value": "False"}]));
        assert_eq!(res["active"], json!(false));
    }

    #[test]
    fn entra_default_add_of_a_single_string_sets_it() {
        let res = user_after(alice(), json!([{"op": "Add", "path": "nickName", "value": "Babs"}]));
        assert_eq!(res["nickName"], json!("Babs"));
    }

    #[test]
    fn entra_default_replaces_several_attributes_one_op_per_path() {
        let res = user_after(
            alice(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Replace", "path": ENTERPRISE_EMPLOYEE_NUMBER, "value": "701984"}
            ]),
        );
        assert_eq!(res["emails"][0], json!({"type": "work", "value": "updatedEmail@microsoft.com", "primary": true}));
        assert_eq!(res["emails"][1]["value"], json!("alice@home.example"));
        assert_eq!(res["name"], json!({"givenName": "Alice", "familyName": "updatedFamilyName"}));
        assert_eq!(res[ENTERPRISE_USER_SCHEMA], json!({"employeeNumber": "701984"}));
    }

    #[test]
    fn entra_default_member_removal_with_a_value_removes_only_the_listed_members() {
        let ops = members_after(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1091"}]}]));
        assert_eq!(ops, vec![ids(&["u1091"])]);
    }

    #[test]
    fn entra_adds_members_with_null_refs() {
        let ops = members_after(json!([{"op": "Add", "path": "members",
            "value": [{"$ref": null, "value": "5bd5ae8c"}, {"$ref": null, "value": "7c2d1f00"}]}]));
        assert_eq!(ops, vec![MemberOp::Add(vec![member("5bd5ae8c"), member("7c2d1f00")])]);
    }

    #[test]
    fn entra_group_rename_replaces_display_name() {
        let (res, effect) = run(
            json!({"displayName": "old"}),
            json!([{"op": "Replace", "path": "displayName", "value": "new"}]),
            &group(),
        )
        .expect("applies");
        assert_eq!((res, effect.members), (json!({"displayName": "new"}), vec![]));
    }

    // --- Entra ID with aadOptscim062020 (field guide §1.3 "With flag") ---

    #[test]
    fn entra_flag_disable_sends_a_real_boolean() {
        let res = user_after(alice(), json!([{"op": "replace", "path": "active", "value": false}]));
        assert_eq!(res["active"], json!(false));
    }

    #[test]
    fn entra_flag_add_of_a_single_string_sets_it() {
        let res = user_after(alice(), json!([{"op": "add", "path": "nickName", "value": "Babs"}]));
        assert_eq!(res["nickName"], json!("Babs"));
    }

    #[test]
    fn entra_flag_sends_a_path_less_replace_with_dotted_and_urn_keys() {
        let res = user_after(
            alice(),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "replace", "value": {
                    "displayName": "updatedDisplayName",
                    "name.givenName": "updatedGivenName",
                    "name.familyName": "updatedFamilyName",
                    ENTERPRISE_EMPLOYEE_NUMBER: "701984"
                }}
            ]),
        );
        assert_eq!(res["emails"][0]["value"], json!("updatedEmail@microsoft.com"));
        assert_eq!(res["displayName"], json!("updatedDisplayName"));
        assert_eq!(res["name"], json!({"givenName": "updatedGivenName", "familyName": "updatedFamilyName"}));
        assert_eq!(res[ENTERPRISE_USER_SCHEMA]["employeeNumber"], json!("701984"));
    }

    #[test]
    fn entra_flag_member_removal_by_value_filter_removes_that_member() {
        let ops = members_after(
            json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]),
        );
        assert_eq!(ops, vec![ids(&["7f4bc1a3-285e-48ae-8202-5accb43efb0e"])]);
    }

    // --- Entra quirks (field guide §0, §1.4) ---

    #[test]
    fn add_to_a_value_path_with_no_match_appends_an_element_built_from_the_filter() {
        let user = json!({"userName": "u", "emails": [{"type": "home", "value": "h@x"}]});
        for op in ["Add", "Replace"] {
            let res =
                user_after(user.clone(), json!([{"op": op, "path": "emails[type eq \"work\"].value", "value": "w@x"}]));
            assert_eq!(
                res["emails"],
                json!([{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}]),
                "{op}"
            );
        }
    }

    #[test]
    fn add_to_a_value_path_that_matches_overwrites_the_sub_attribute() {
        let res =
            user_after(alice(), json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@x"}]));
        assert_eq!(res["emails"][0], json!({"type": "work", "value": "new@x", "primary": true}));
        assert_eq!(res["emails"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn phone_and_address_value_paths_create_typed_elements() {
        let res = user_after(
            json!({"userName": "u"}),
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"}
            ]),
        );
        assert_eq!(res["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555 0100"}]));
        assert_eq!(res["addresses"], json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Redmond"}]));
    }

    #[test]
    fn old_entra_array_values_for_single_valued_paths_take_the_inner_value() {
        let res = user_after(
            alice(),
            json!([{"op": "Replace", "path": "name.givenName", "value": [{"$ref": null, "value": "Babs"}]}]),
        );
        assert_eq!(res["name"]["givenName"], json!("Babs"));
    }

    #[test]
    fn manager_as_a_one_element_array_a_string_or_an_object_is_stored_as_the_rfc_object() {
        let reference = "https://scim.example/Users/26118915";
        let res = user_after(
            alice(),
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": reference, "value": "26118915"}]}]),
        );
        assert_eq!(res[ENTERPRISE_USER_SCHEMA]["manager"], json!({"$ref": reference, "value": "26118915"}));
        // A new manager id replaces the whole object: the old `$ref` must not linger.
        let res = user_after(
            res,
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "42"}]),
        );
        assert_eq!(res[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "42"}));
        let res = user_after(
            res,
            json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: {"Manager": {"Value": "43", "displayName": "ro"}}}}]),
        );
        assert_eq!(res[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "43"}));
    }

    #[test]
    fn the_null_update_test_unassigns_with_null_and_keeps_empty_strings() {
        let res = user_after(
            alice(),
            json!([{"op": "replace", "path": "nickName", "value": ""}, {"op": "replace", "path": "title", "value": null}]),
        );
        assert_eq!(res["nickName"], json!(""));
        assert!(res.get("title").is_none());
    }

    // --- Okta (field guide §2.1) ---

    #[test]
    fn okta_deactivates_with_a_path_less_replace() {
        let res = user_after(alice(), json!([{"op": "replace", "value": {"active": false}}]));
        assert_eq!(res["active"], json!(false));
    }

    #[test]
    fn okta_group_rename_echoes_the_read_only_id_which_is_ignored() {
        let (res, _) = run(
            json!({"displayName": "old"}),
            json!([{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]),
            &group(),
        )
        .expect("applies");
        assert_eq!(res, json!({"displayName": "Test SCIMv2"}));
    }

    #[test]
    fn okta_removes_and_adds_members_in_one_request() {
        let ops = members_after(json!([
            {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
            {"op": "add", "path": "members", "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
                {"value": "8d6b6c3c", "display": "other@okta.local"}
            ]}
        ]));
        assert_eq!(
            ops,
            vec![
                ids(&["89bb1940-b905-4575-9e7f-6f887cfb368e"]),
                MemberOp::Add(vec![member("23a35c27-23d3-4c03-b4c5-6443c09e7173"), member("8d6b6c3c")])
            ]
        );
    }

    #[test]
    fn okta_replaces_the_whole_member_list() {
        let ops =
            members_after(json!([{"op": "replace", "path": "members", "value": [{"value": "a", "display": "A"}]}]));
        assert_eq!(ops, vec![MemberOp::Clear, MemberOp::Add(vec![member("a")])]);
    }

    // --- members, every shape ---

    #[test]
    fn remove_members_without_a_value_or_filter_clears_all() {
        assert_eq!(members_after(json!([{"op": "remove", "path": "members"}])), vec![MemberOp::Clear]);
    }

    #[test]
    fn remove_members_with_an_empty_value_list_removes_nobody() {
        assert_eq!(members_after(json!([{"op": "Remove", "path": "members", "value": []}])), vec![]);
    }

    #[test]
    fn remove_members_with_another_filter_becomes_a_filtered_removal() {
        let ops = members_after(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]));
        assert!(matches!(ops.as_slice(), [MemberOp::RemoveWhere(_)]), "{ops:?}");
        let ops = members_after(json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]));
        assert_eq!(ops, vec![ids(&["a", "b"])]);
    }

    #[test]
    fn path_less_add_or_replace_with_members_acts_on_membership() {
        let ops = members_after(json!([{"op": "add", "value": {"members": [{"value": "a"}]}}]));
        assert_eq!(ops, vec![MemberOp::Add(vec![member("a")])]);
        let ops = members_after(json!([{"op": "replace", "value": {"displayName": "g", "members": []}}]));
        assert_eq!(ops, vec![MemberOp::Clear]);
    }

    #[test]
    fn a_bare_member_id_string_is_accepted_like_the_ms_postman_collection_sends() {
        let ops = members_after(json!([{"op": "add", "path": "members", "value": "string id 1"}]));
        assert_eq!(ops, vec![MemberOp::Add(vec![member("string id 1")])]);
    }

    #[test]
    fn a_blank_member_id_is_an_invalid_value() {
        let t = err_type(
            json!({"displayName": "g"}),
            json!([{"op": "add", "path": "members", "value": [{"value": ""}]}]),
            &group(),
        );
        assert_eq!(t, Some(ScimType::InvalidValue));
    }

    // --- RFC 7644 §3.5.2 semantics ---

    #[test]
    fn a_failing_second_operation_leaves_the_resource_unchanged() {
        let mut res = obj(alice());
        let ops = parse_patch(&body(json!([
            {"op": "replace", "path": "title", "value": "Boss"},
            {"op": "replace", "path": "active", "value": "maybe"}
        ])))
        .expect("parses");
        let err = apply_patch(&mut res, &ops, &user()).expect_err("second op fails");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.starts_with("operation 2:"), "{}", err.detail);
        assert_eq!(Value::Object(res), alice());
    }

    #[test]
    fn remove_without_a_path_is_no_target() {
        assert_eq!(err_type(alice(), json!([{"op": "remove"}]), &user()), Some(ScimType::NoTarget));
    }

    #[test]
    fn paths_naming_unknown_attributes_are_invalid_paths() {
        for path in ["nickname2", "name.middle", "urn:example:ext:1.0:User:x", "title.value"] {
            let t = err_type(alice(), json!([{"op": "add", "path": path, "value": "x"}]), &user());
            assert_eq!(t, Some(ScimType::InvalidPath), "{path}");
        }
    }

    #[test]
    fn unknown_keys_inside_a_path_less_value_are_ignored() {
        let res = user_after(
            alice(),
            json!([{"op": "add", "value": {"favouriteColour": "blue", "schemas": ["x"], "title": "CTO"}}]),
        );
        assert_eq!(res["title"], json!("CTO"));
        assert!(res.get("favouriteColour").is_none());
    }

    #[test]
    fn explicit_paths_to_read_only_attributes_are_mutability_errors() {
        for path in ["id", "meta", "meta.created", "groups"] {
            let t = err_type(alice(), json!([{"op": "replace", "path": path, "value": "x"}]), &user());
            assert_eq!(t, Some(ScimType::Mutability), "{path}");
        }
        let t = err_type(alice(), json!([{"op": "replace", "path": "manager.displayName", "value": "x"}]), &user());
        assert_eq!(t, Some(ScimType::Mutability));
    }

    #[test]
    fn read_only_keys_inside_a_path_less_value_are_ignored() {
        let res = user_after(
            alice(),
            json!([{"op": "replace", "value": {"id": "x", "meta": {"version": "1"}, "groups": [{"value": "g"}], "title": "CTO"}}]),
        );
        assert_eq!(res, {
            let mut a = alice();
            a["title"] = json!("CTO");
            a
        });
    }

    #[test]
    fn removing_a_required_attribute_is_a_mutability_error() {
        assert_eq!(
            err_type(alice(), json!([{"op": "remove", "path": "userName"}]), &user()),
            Some(ScimType::Mutability)
        );
        assert_eq!(
            err_type(alice(), json!([{"op": "replace", "path": "userName", "value": null}]), &user()),
            Some(ScimType::Mutability)
        );
        let t = err_type(json!({"displayName": "g"}), json!([{"op": "remove", "path": "displayName"}]), &group());
        assert_eq!(t, Some(ScimType::Mutability));
    }

    #[test]
    fn removing_and_re_adding_a_required_attribute_in_one_request_is_fine() {
        let res = user_after(
            alice(),
            json!([{"op": "remove", "path": "userName"}, {"op": "add", "path": "userName", "value": "b"}]),
        );
        assert_eq!(res["userName"], json!("b"));
    }

    #[test]
    fn password_goes_to_the_effect_and_never_into_the_resource() {
        let (res, effect) =
            run(alice(), json!([{"op": "replace", "path": "password", "value": "s3cret"}]), &user()).expect("ok");
        assert_eq!((res, effect.password.as_deref()), (alice(), Some("s3cret")));
        let (res, effect) =
            run(alice(), json!([{"op": "replace", "value": {"Password": "t0p"}}]), &user()).expect("ok");
        assert_eq!((res, effect.password.as_deref()), (alice(), Some("t0p")));
        assert!(!format!("{effect:?}").contains("t0p"), "Debug must redact the password");
    }

    #[test]
    fn add_to_a_multi_valued_attribute_appends_skips_duplicates_and_moves_primary() {
        let res = user_after(
            alice(),
            json!([{"op": "add", "path": "emails", "value": [
                {"type": "home", "value": "alice@home.example"},
                {"type": "other", "value": "a@other.example", "primary": true}
            ]}]),
        );
        assert_eq!(
            res["emails"],
            json!([
                {"type": "work", "value": "alice@contoso.com", "primary": false},
                {"type": "home", "value": "alice@home.example"},
                {"type": "other", "value": "a@other.example", "primary": true}
            ])
        );
    }

    #[test]
    fn replace_of_a_multi_valued_attribute_replaces_all_values() {
        let res = user_after(alice(), json!([{"op": "replace", "path": "emails", "value": {"value": "only@x"}}]));
        assert_eq!(res["emails"], json!([{"value": "only@x"}]));
    }

    #[test]
    fn replace_of_a_complex_attribute_sets_the_given_sub_attributes_only() {
        let res = user_after(alice(), json!([{"op": "replace", "path": "name", "value": {"GivenName": "Al"}}]));
        assert_eq!(res["name"], json!({"givenName": "Al", "familyName": "Smith"}));
    }

    #[test]
    fn replace_of_a_missing_attribute_adds_it() {
        let res =
            user_after(json!({"userName": "u"}), json!([{"op": "replace", "path": "name.familyName", "value": "S"}]));
        assert_eq!(res["name"], json!({"familyName": "S"}));
    }

    #[test]
    fn replace_of_matching_elements_merges_the_value_into_each() {
        let res = user_after(
            alice(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "new@home", "primary": true}}]),
        );
        assert_eq!(
            res["emails"],
            json!([
                {"type": "work", "value": "alice@contoso.com", "primary": false},
                {"type": "home", "value": "new@home", "primary": true}
            ])
        );
    }

    #[test]
    fn remove_with_a_value_path_removes_the_matching_elements() {
        let res = user_after(alice(), json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]));
        assert_eq!(res["emails"], json!([{"type": "home", "value": "alice@home.example"}]));
    }

    #[test]
    fn remove_of_a_value_paths_value_drops_the_now_meaningless_elements() {
        let res = user_after(
            alice(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].value"}, {"op": "remove", "path": "emails[type eq \"home\"].type"}]),
        );
        assert_eq!(res["emails"], json!([{"value": "alice@home.example"}]));
    }

    #[test]
    fn remove_with_a_value_on_a_multi_valued_attribute_removes_only_the_listed_values() {
        let res =
            user_after(alice(), json!([{"op": "Remove", "path": "emails", "value": [{"value": "alice@contoso.com"}]}]));
        assert_eq!(res["emails"], json!([{"type": "home", "value": "alice@home.example"}]));
    }

    #[test]
    fn unassigned_values_are_pruned_after_patching() {
        let res = user_after(
            alice(),
            json!([
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "remove", "path": "emails[type eq \"work\"]"},
                {"op": "remove", "path": "emails[type eq \"home\"]"}
            ]),
        );
        assert!(res.get("name").is_none() && res.get("emails").is_none(), "{res}");
        let res = user_after(res, json!([{"op": "remove", "path": ENTERPRISE_EMPLOYEE_NUMBER}]));
        assert!(res.get(ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn a_whole_extension_can_be_targeted_by_its_urn() {
        let res = user_after(
            alice(),
            json!([{"op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": {"department": "Sales"}}]),
        );
        assert_eq!(res[ENTERPRISE_USER_SCHEMA], json!({"department": "Sales"}));
        let res = user_after(res, json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]));
        assert!(res.get(ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn a_value_path_used_as_a_path_less_key_is_applied() {
        let res = user_after(alice(), json!([{"op": "replace", "value": {"emails[type eq \"work\"].value": "w@new"}}]));
        assert_eq!(res["emails"][0]["value"], json!("w@new"));
    }

    #[test]
    fn odd_operations_never_panic() {
        let odd = [
            json!({"op": "add", "path": "emails[type eq \"work\"].value", "value": {"nested": [1]}}),
            json!({"op": "replace", "path": "emails[value pr]", "value": "x"}),
            json!({"op": "add", "path": "emails[type eq \"work\"]", "value": ["a", 1]}),
            json!({"op": "remove", "path": "name", "value": [1, 2, 3]}),
            json!({"op": "replace", "path": "members[value eq \"a\"]", "value": 5}),
            json!({"op": "add", "value": {"emails[bad": 1, "urn:x:y": 2, "": 3}}),
            json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": 1}),
            json!({"op": "add", "path": "addresses[type eq \"work\" and primary eq true].locality", "value": "x"}),
        ];
        let stored = json!({"userName": "u", "emails": "not-an-array", "name": "not-an-object", "displayName": "g"});
        for op in odd {
            let _ = run(stored.clone(), json!([op.clone()]), &user());
            let _ = run(stored.clone(), json!([op]), &group());
        }
    }

    #[test]
    fn the_committed_schemas_take_both_entra_dialects() {
        let registry = crate::scim::schema::Registry::load().expect("schemas load");
        let (res, _) = run(
            alice(),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "replace", "value": {"name.givenName": "G", ENTERPRISE_EMPLOYEE_NUMBER: "7", "id": "x"}},
                {"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "m1"}]}
            ]),
            &registry.user,
        )
        .expect("user patch applies");
        assert_eq!((&res["active"], &res["name"]["givenName"]), (&json!(false), &json!("G")));
        assert_eq!(res[ENTERPRISE_USER_SCHEMA], json!({"employeeNumber": "7", "manager": {"value": "m1"}}));
        let (_, effect) = run(
            json!({"displayName": "g"}),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1091"}]}]),
            &registry.group,
        )
        .expect("group patch applies");
        assert_eq!(effect.members, vec![ids(&["u1091"])]);
    }

    // --- parsing ---

    #[test]
    fn op_and_member_names_are_case_insensitive() {
        let parsed =
            parse_patch(&json!({"operations": [{"Op": "ADD", "Path": "title", "Value": "x"}]})).expect("parses");
        assert_eq!(parsed.len(), 1);
        assert_eq!((parsed[0].kind, parsed[0].value.clone()), (PatchKind::Add, Some(json!("x"))));
        assert_eq!(parsed[0].path.as_ref().map(|p| p.attr.name.as_str()), Some("title"));
    }

    #[test]
    fn malformed_patch_bodies_are_invalid_syntax() {
        for bad in [
            json!([]),
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "merge", "path": "title", "value": "x"}]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "title", "value": "x"}]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "title"}]}),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"op": "remove", "path": "title"}]}),
        ] {
            assert_eq!(parse_patch(&bad).expect_err("rejected").scim_type, Some(ScimType::InvalidSyntax), "{bad}");
        }
    }

    #[test]
    fn bad_paths_and_filters_are_reported_as_such() {
        let bad_path = body(json!([{"op": "remove", "path": "emails..value"}]));
        assert_eq!(parse_patch(&bad_path).expect_err("bad").scim_type, Some(ScimType::InvalidPath));
        let bad_filter = body(json!([{"op": "remove", "path": "emails[type zz \"work\"]"}]));
        assert_eq!(parse_patch(&bad_filter).expect_err("bad").scim_type, Some(ScimType::InvalidFilter));
    }

    #[test]
    fn an_empty_path_is_no_path() {
        let parsed =
            parse_patch(&body(json!([{"op": "replace", "path": "", "value": {"title": "x"}}]))).expect("parses");
        assert_eq!(parsed[0].path, None);
    }
}
