//! Incoming resource values (RFC 7643 §2, §4; RFC 7644 §3.3, §3.5.1): POST/PUT bodies and PATCH
//! values turned into the stored shape — canonical attribute names, core attributes at the top
//! level, extension attributes under their URN, every value of its declared type.
//!
//! Owns the leniency real IdPs need (field guide §0), and no more: attribute names in any case,
//! `"True"` for booleans, one-element arrays for single values (old Entra jobs), `manager` as a
//! plain string, dotted (`name.givenName`) and URN-qualified keys, unknown schema URIs, unknown
//! and readOnly attributes (silently dropped, RFC 7644 §3.5.1), `null` and `[]` as unassigned
//! (RFC 7643 §2.5). A value of another JSON type than declared (`"userName": 42`) is refused.
//!
//! Never stored here: `schemas`, `id`, `meta`, `groups` (readOnly), `password` (handed back
//! separately so the caller keeps only a hash) and group `members` (handed back as
//! [`MemberRef`]s; the store keeps membership outside the JSON).
//! Pure: serde_json in, serde_json out, no I/O.

use std::fmt;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult};
use super::schema::{AttrDef, AttrType, Container, Mutability, ResourceSchema, Schema};

pub(crate) const SCHEMAS: &str = "schemas";
pub(crate) const MEMBERS: &str = "members";
pub(crate) const PASSWORD: &str = "password";
pub(crate) const VALUE: &str = "value";
pub(crate) const PRIMARY: &str = "primary";
const TYPE: &str = "type";
/// The canonical values of `members.type` (RFC 7643 §4.2).
const MEMBER_TYPES: [&str; 2] = ["User", "Group"];
const URN_PREFIX: &str = "urn:";

/// One group member as the client named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    /// `"User"` or `"Group"`, from `type`, when the client said.
    pub kind: Option<String>,
}

/// A normalized POST/PUT body.
#[derive(Clone, PartialEq)]
pub struct Incoming {
    /// The resource as it is stored (no `schemas`, `id`, `meta`, `groups`, `password`, `members`).
    pub attrs: Map<String, Value>,
    /// Groups only: `Some` when the body had `members`, even an empty list.
    pub members: Option<Vec<MemberRef>>,
    /// The clear-text password, if one was sent; hash it or drop it, never store it.
    pub password: Option<String>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("attrs", &self.attrs)
            .field("members", &self.members)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a top-level key of a body (or of a path-less PATCH value) names.
pub(crate) enum Key<'s, 'k> {
    /// An extension's object: `"urn:…:enterprise:2.0:User": {…}`.
    Extension(&'s Schema),
    /// An attribute, plus the raw sub-attribute name if the key was dotted (`name.givenName`).
    Attr { container: Container<'s>, def: &'s AttrDef, sub: Option<&'k str> },
    /// `schemas`, unknown attributes and unknown URNs: ignored, never an error.
    Ignored,
}

/// Resolves a key case-insensitively. `within` is the extension URN when the key sits inside an
/// extension object.
pub(crate) fn resolve_key<'s, 'k>(schema: &'s ResourceSchema, key: &'k str, within: Option<&str>) -> Key<'s, 'k> {
    if within.is_none() {
        if key.eq_ignore_ascii_case(SCHEMAS) {
            return Key::Ignored;
        }
        if let Some(ext) = schema.extension(key) {
            return Key::Extension(ext);
        }
    }
    let (urn, rest) = match split_urn(schema, key) {
        Some((urn, rest)) => (Some(urn), rest),
        None if starts_with_ci(key, URN_PREFIX) => return Key::Ignored,
        None => (within, key),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    match resolve_lenient(schema, urn, name) {
        Some((container, def)) => Key::Attr { container, def, sub },
        None => Key::Ignored,
    }
}

/// `ResourceSchema::resolve`, plus: an unqualified name that is no core attribute may name an
/// extension attribute, if exactly one extension has it. RFC 7644 §3.10 wants extension
/// attributes URN-qualified, but Entra sends a bare `manager` (field guide §1.2, Example 5).
pub(crate) fn resolve_lenient<'s>(
    schema: &'s ResourceSchema,
    urn: Option<&str>,
    name: &str,
) -> Option<(Container<'s>, &'s AttrDef)> {
    if let Some(found) = schema.resolve(urn, name) {
        return Some(found);
    }
    if urn.is_some() {
        return None;
    }
    let mut found = schema.extensions.iter().filter_map(|ext| ext.attr(name).map(|def| (ext, def)));
    match (found.next(), found.next()) {
        (Some((ext, def)), None) => Some((Container::Extension(ext.id.as_str()), def)),
        _ => None,
    }
}

/// `urn:…:enterprise:2.0:User:employeeNumber` → (the schema's URN, `employeeNumber`). Matching
/// against the known URNs (not at the last `:`) keeps `2.0` and dotted sub-attributes intact.
fn split_urn<'s, 'k>(schema: &'s ResourceSchema, key: &'k str) -> Option<(&'s str, &'k str)> {
    schema.schema_ids().find_map(|id| {
        let head = key.get(..id.len())?;
        let rest = key.get(id.len()..)?.strip_prefix(':')?;
        head.eq_ignore_ascii_case(id).then_some((id, rest))
    })
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A key of a JSON object, exact spelling first, then case-insensitively (RFC 7643 §2.1).
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Group `members`: kept outside the resource JSON.
pub(crate) fn is_members(container: Container<'_>, def: &AttrDef) -> bool {
    container == Container::Core && def.name == MEMBERS
}

/// User `password`: handed to the caller, never stored in the JSON.
pub(crate) fn is_password(container: Container<'_>, def: &AttrDef) -> bool {
    container == Container::Core && def.name == PASSWORD
}

/// Normalizes a POST or PUT body.
///
/// # Errors
/// `400 invalidSyntax` if `body` is not an object; `400 invalidValue` for a value of the wrong
/// type, a malformed member, or a missing required attribute.
pub fn normalize(body: &Value, schema: &ResourceSchema) -> ScimResult<Incoming> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    let mut incoming = Incoming { attrs: Map::new(), members: None, password: None };
    absorb(&mut incoming, obj, schema, None)?;
    prune(&mut incoming.attrs);
    check_required(&incoming.attrs, schema)?;
    Ok(incoming)
}

fn absorb(
    inc: &mut Incoming,
    obj: &Map<String, Value>,
    schema: &ResourceSchema,
    within: Option<&str>,
) -> ScimResult<()> {
    for (key, value) in obj {
        match resolve_key(schema, key, within) {
            Key::Ignored => {}
            Key::Extension(ext) => match value {
                Value::Object(inner) => absorb(inc, inner, schema, Some(ext.id.as_str()))?,
                Value::Null => {}
                _ => return Err(ScimError::invalid_value(format!("'{}' must be an object", ext.id))),
            },
            Key::Attr { container, def, sub } if is_members(container, def) => {
                if sub.is_none() {
                    inc.members = Some(members_from(value)?);
                }
            }
            Key::Attr { container, def, .. } if is_password(container, def) => {
                inc.password = password_from(value)?;
            }
            Key::Attr { container, def, sub } => set_attr(&mut inc.attrs, container, def, sub, value)?,
        }
    }
    Ok(())
}

/// Puts one body attribute in place; readOnly and unknown sub-attributes are dropped.
fn set_attr(
    attrs: &mut Map<String, Value>,
    container: Container<'_>,
    def: &AttrDef,
    sub: Option<&str>,
    value: &Value,
) -> ScimResult<()> {
    if def.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let target = container_mut(attrs, container)?;
    match sub {
        // A dotted key only makes sense for a single-valued complex attribute (`name.givenName`).
        Some(sub) => {
            let Some(sub_def) = def.sub(sub) else { return Ok(()) };
            if def.multi_valued || sub_def.mutability == Mutability::ReadOnly {
                return Ok(());
            }
            if let Some(v) = coerce_named(sub_def, value, &format!("{}.{}", def.name, sub_def.name))? {
                object_mut(target, &def.name)?.insert(sub_def.name.clone(), v);
            }
        }
        None => {
            let Some(new) = coerce(def, value)? else { return Ok(()) };
            // `name` and `name.givenName` in one body: the sub-attributes add up.
            match (new, target.get_mut(&def.name)) {
                (Value::Object(new), Some(Value::Object(old))) if !def.multi_valued => old.extend(new),
                (new, _) => {
                    target.insert(def.name.clone(), new);
                }
            }
        }
    }
    Ok(())
}

/// The object holding a container's attributes: the resource itself, or the extension's object
/// (created if absent).
///
/// # Errors
/// Never in practice; `500` keeps the signature honest instead of an `unwrap`.
pub(crate) fn container_mut<'m>(
    resource: &'m mut Map<String, Value>,
    container: Container<'_>,
) -> ScimResult<&'m mut Map<String, Value>> {
    match container {
        Container::Core => Ok(resource),
        Container::Extension(urn) => object_mut(resource, urn),
    }
}

/// `map[name]` as an object, replacing whatever non-object was there.
pub(crate) fn object_mut<'m>(map: &'m mut Map<String, Value>, name: &str) -> ScimResult<&'m mut Map<String, Value>> {
    let slot = map.entry(name.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().ok_or_else(|| ScimError::internal("object slot vanished"))
}

/// Every required attribute (RFC 7643 §2.2 `required`) is present and not empty.
///
/// # Errors
/// `400 invalidValue` naming the first missing attribute.
pub fn check_required(attrs: &Map<String, Value>, schema: &ResourceSchema) -> ScimResult<()> {
    if let Some(name) = missing_required(attrs, schema).next() {
        return Err(ScimError::invalid_value(format!("attribute '{name}' is required")));
    }
    Ok(())
}

/// The required, client-writable attributes that are unassigned in `attrs`. An extension's
/// required attributes count only when the resource carries that extension.
pub(crate) fn missing_required<'s>(
    attrs: &'s Map<String, Value>,
    schema: &'s ResourceSchema,
) -> impl Iterator<Item = &'s str> + 's {
    let checked = |def: &&AttrDef| {
        def.required && def.mutability != Mutability::ReadOnly && def.name != MEMBERS && def.name != PASSWORD
    };
    let core = schema
        .core_attributes()
        .filter(checked)
        .filter(|def| is_blank(attrs.get(&def.name)))
        .map(|def| def.name.as_str());
    let ext = schema.extensions.iter().flat_map(move |ext| {
        let obj = attrs.get(&ext.id).and_then(Value::as_object);
        ext.attributes
            .iter()
            .filter(checked)
            .filter(move |def| obj.is_some_and(|o| is_blank(o.get(&def.name))))
            .map(|def| def.name.as_str())
    });
    core.chain(ext)
}

/// Unassigned (RFC 7643 §2.5) or a blank string.
pub(crate) fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// Coerces one attribute's value to its declared type. `Ok(None)` means unassigned (`null`, `[]`,
/// or an object with nothing writable in it).
///
/// # Errors
/// `400 invalidValue` naming the attribute when the value cannot be read as its type.
pub fn coerce(def: &AttrDef, value: &Value) -> ScimResult<Option<Value>> {
    coerce_named(def, value, &def.name)
}

fn coerce_named(def: &AttrDef, value: &Value, label: &str) -> ScimResult<Option<Value>> {
    if def.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Null => return Ok(None),
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_one(def, item, label)? {
                out.push(v);
            }
        }
        if def.kind == AttrType::Complex {
            keep_one_primary(&mut out, None);
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    match value {
        // Old Entra jobs send `[{"$ref":null,"value":"x"}]` for single values (field guide §1.4).
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [only] => coerce_one(def, unwrap_value(def, only), label),
            _ => Err(ScimError::invalid_value(format!(
                "attribute '{label}' is single-valued but {} values were given",
                items.len()
            ))),
        },
        single => coerce_one(def, single, label),
    }
}

/// `{"value": x}` → `x` for a simple attribute; complex ones keep the object.
fn unwrap_value<'v>(def: &AttrDef, item: &'v Value) -> &'v Value {
    match item {
        Value::Object(obj) if def.kind != AttrType::Complex => get_ci(obj, VALUE).unwrap_or(item),
        _ => item,
    }
}

/// What a JSON value is, for an error detail.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One value of its declared JSON type (RFC 7643 §2.3). The only leniency is the documented
/// IdP quirks: `"True"`/`"False"` for booleans (Entra, field guide §0.2), a plain string for
/// `manager` (§0.10), and one-element arrays (handled by the caller). A number or boolean where
/// a string is declared (`"userName": 42`) is refused, not stored as `"42"`: the IdP's mapping
/// is wrong, and a silently coerced name would never match the IdP's own value again.
fn coerce_one(def: &AttrDef, value: &Value, label: &str) -> ScimResult<Option<Value>> {
    let wrong = |expected: &str| {
        ScimError::invalid_value(format!("attribute '{label}' must be {expected}, not {}", json_kind(value)))
    };
    let blank = matches!(value, Value::String(s) if s.trim().is_empty());
    if value.is_null() || (blank && !matches!(def.kind, AttrType::String | AttrType::Reference | AttrType::Binary)) {
        // An empty string for a boolean, number or date is as good as unassigned.
        return Ok(None);
    }
    let coerced = match (def.kind, value) {
        (AttrType::Boolean, Value::Bool(_)) => value.clone(),
        // Entra's default dialect sends `"False"` (field guide §0.2).
        (AttrType::Boolean, Value::String(s)) => match s.trim() {
            t if t.eq_ignore_ascii_case("true") => Value::Bool(true),
            t if t.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => value.clone(),
        (AttrType::Integer, Value::Number(n)) => integral(n.as_f64())
            .ok_or_else(|| ScimError::invalid_value(format!("attribute '{label}' must be an integer, not {n}")))?,
        (AttrType::Decimal, Value::Number(_)) => value.clone(),
        (AttrType::DateTime, Value::String(s)) => {
            chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|_| wrong("an RFC 3339 date-time"))?;
            value.clone()
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => value.clone(),
        (AttrType::Complex, Value::Object(obj)) => return coerce_complex(def, obj, label),
        // `manager` as a plain id (field guide §0.10); stored as the RFC object `{"value": id}`.
        (AttrType::Complex, Value::String(_)) if def.sub(VALUE).is_some() => {
            let mut obj = Map::new();
            obj.insert(VALUE.to_string(), value.clone());
            return coerce_complex(def, &obj, label);
        }
        (AttrType::Complex, _) => return Err(wrong("an object")),
        (AttrType::Boolean, _) => return Err(wrong("a boolean")),
        (AttrType::Integer, _) => return Err(wrong("an integer")),
        (AttrType::Decimal, _) => return Err(wrong("a decimal number")),
        (AttrType::DateTime, _) => return Err(wrong("an RFC 3339 date-time string")),
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => return Err(wrong("a string")),
    };
    Ok(Some(coerced))
}

fn integral(f: Option<f64>) -> Option<Value> {
    const EXACT_LIMIT: f64 = 9.0e15;
    let f = f?;
    (f.fract() == 0.0 && f.abs() < EXACT_LIMIT).then(|| Value::Number((f as i64).into()))
}

/// A complex value with canonical sub-attribute names; unknown and readOnly sub-attributes
/// (`manager.displayName`) are dropped.
fn coerce_complex(def: &AttrDef, obj: &Map<String, Value>, label: &str) -> ScimResult<Option<Value>> {
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(sub) = def.sub(key) else { continue };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = coerce_named(sub, value, &format!("{label}.{}", sub.name))? {
            out.insert(sub.name.clone(), v);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

pub(crate) fn is_primary(item: &Value) -> bool {
    item.get(PRIMARY) == Some(&Value::Bool(true))
}

/// RFC 7643 §2.4: `primary: true` at most once. `winner` (if it is primary) keeps it; otherwise
/// the first primary does, and later ones are set to false.
pub(crate) fn keep_one_primary(items: &mut [Value], winner: Option<usize>) {
    let winner = winner.filter(|&i| items.get(i).is_some_and(is_primary)).or_else(|| items.iter().position(is_primary));
    for (i, item) in items.iter_mut().enumerate() {
        if Some(i) != winner && is_primary(item) {
            if let Value::Object(obj) = item {
                obj.insert(PRIMARY.to_string(), Value::Bool(false));
            }
        }
    }
}

/// Group members from a body or PATCH value: an array of `{"value", "type"?, …}`, one such object,
/// or a bare id string (the MS Postman collection). `display`, `$ref` and other keys are ignored.
///
/// # Errors
/// `400 invalidValue` for a blank or non-string id, an unknown `type`, or a value of another shape.
pub fn members_from(value: &Value) -> ScimResult<Vec<MemberRef>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(member_from).collect(),
        single => Ok(vec![member_from(single)?]),
    }
}

fn member_from(item: &Value) -> ScimResult<MemberRef> {
    let (id, kind) = match item {
        Value::Object(obj) => (get_ci(obj, VALUE), get_ci(obj, TYPE)),
        other => (Some(other), None),
    };
    let value = match id {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) if !other.is_null() && !other.is_string() => {
            return Err(ScimError::invalid_value(format!(
                "attribute 'members.value' must be a string (the member's id), not {}",
                json_kind(other)
            )))
        }
        _ => return Err(ScimError::invalid_value("every member needs a non-empty string 'value' (the member's id)")),
    };
    let kind = match kind {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match MEMBER_TYPES.iter().find(|c| c.eq_ignore_ascii_case(t.trim())) {
            Some(canonical) => Some((*canonical).to_string()),
            None => return Err(ScimError::invalid_value(format!("member type '{t}' is not one of User, Group"))),
        },
        Some(_) => return Err(ScimError::invalid_value("member 'type' must be a string")),
    };
    Ok(MemberRef { value, kind })
}

/// The clear-text password, if a string was sent.
///
/// # Errors
/// `400 invalidValue` for a non-string password.
pub(crate) fn password_from(value: &Value) -> ScimResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ScimError::invalid_value("attribute 'password' must be a string")),
    }
}

/// Drops unassigned values (`null`, `[]`, `{}`) at every depth (RFC 7643 §2.5).
pub(crate) fn prune(map: &mut Map<String, Value>) {
    map.retain(|_, v| {
        prune_value(v);
        !is_unassigned(v)
    });
}

fn prune_value(value: &mut Value) {
    match value {
        Value::Object(obj) => prune(obj),
        Value::Array(items) => {
            items.iter_mut().for_each(prune_value);
            items.retain(|v| !is_unassigned(v));
        }
        _ => {}
    }
}

fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Small schemas for the unit tests of this module and of `patch`.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::json;

    use crate::scim::schema::{ResourceSchema, Schema, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

    fn schema(value: serde_json::Value) -> Schema {
        serde_json::from_value(value).expect("test schema parses")
    }

    fn multi(name: &str, subs: serde_json::Value) -> serde_json::Value {
        json!({"name": name, "type": "complex", "multiValued": true, "subAttributes": subs})
    }

    pub fn user() -> ResourceSchema {
        let typed = json!([
            {"name": "value", "type": "string"},
            {"name": "display", "type": "string"},
            {"name": "type", "type": "string"},
            {"name": "primary", "type": "boolean"}
        ]);
        let core = schema(json!({"id": USER_SCHEMA, "attributes": [
            {"name": "userName", "type": "string", "required": true},
            {"name": "name", "type": "complex", "subAttributes": [
                {"name": "formatted", "type": "string"},
                {"name": "familyName", "type": "string"},
                {"name": "givenName", "type": "string"}
            ]},
            {"name": "displayName", "type": "string"},
            {"name": "nickName", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "locale", "type": "string"},
            {"name": "active", "type": "boolean"},
            {"name": "password", "type": "string", "mutability": "writeOnly", "returned": "never"},
            multi("emails", typed.clone()),
            multi("phoneNumbers", typed.clone()),
            multi("addresses", json!([
                {"name": "streetAddress", "type": "string"},
                {"name": "locality", "type": "string"},
                {"name": "type", "type": "string"},
                {"name": "primary", "type": "boolean"}
            ])),
            {"name": "groups", "type": "complex", "multiValued": true, "mutability": "readOnly",
             "subAttributes": [{"name": "value", "type": "string", "mutability": "readOnly"}]},
            multi("roles", typed)
        ]}));
        let enterprise = schema(json!({"id": ENTERPRISE_USER_SCHEMA, "attributes": [
            {"name": "employeeNumber", "type": "string"},
            {"name": "department", "type": "string"},
            {"name": "manager", "type": "complex", "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "$ref", "type": "reference"},
                {"name": "displayName", "type": "string", "mutability": "readOnly"}
            ]}
        ]}));
        ResourceSchema::from_parts("User", "/Users", core, vec![enterprise])
    }

    pub fn group() -> ResourceSchema {
        let core = schema(json!({"id": GROUP_SCHEMA, "attributes": [
            {"name": "displayName", "type": "string", "required": true},
            multi("members", json!([
                {"name": "value", "type": "string", "mutability": "immutable"},
                {"name": "$ref", "type": "reference", "mutability": "immutable"},
                {"name": "type", "type": "string", "mutability": "immutable"},
                {"name": "display", "type": "string", "mutability": "readOnly"}
            ]))
        ]}));
        ResourceSchema::from_parts("Group", "/Groups", core, vec![])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::{group, user};
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema::ENTERPRISE_USER_SCHEMA;

    fn def(value: Value) -> AttrDef {
        serde_json::from_value(value).expect("attribute definition parses")
    }

    fn scim_type(result: ScimResult<impl fmt::Debug>) -> Option<ScimType> {
        result.expect_err("should fail").scim_type
    }

    #[test]
    fn entra_create_user_body_is_stored_with_canonical_names_and_without_noise() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "UserName": "Test_User_ab6490ee@contoso.com",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User@contoso.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            "addresses": null, "phoneNumbers": null, "title": null, "manager": null
        });
        let inc = normalize(&body, &user()).expect("normalizes");
        assert_eq!(
            Value::Object(inc.attrs),
            json!({
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee@contoso.com",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User@contoso.com"}],
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}
            })
        );
        assert_eq!((inc.members, inc.password), (None, None));
    }

    #[test]
    fn okta_create_user_body_hands_back_the_password_and_drops_groups() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        });
        let inc = normalize(&body, &user()).expect("normalizes");
        assert_eq!(inc.password.as_deref(), Some("1mz050nq"));
        assert!(!inc.attrs.contains_key("password") && !inc.attrs.contains_key("groups"));
        assert_eq!(inc.attrs["externalId"], json!("00ujl29u0le5T6Aj10h7"));
        assert!(!format!("{inc:?}").contains("1mz050nq"), "Debug must redact the password");
    }

    #[test]
    fn okta_put_body_with_id_meta_and_unknown_attributes_is_accepted() {
        let body = json!({
            "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "meta": {"created": "2024-01-01T00:00:00Z"},
            "userName": "u@x", "adreses": [{"street": "x"}], "name": {"givenName": "A", "nickname": "n"}
        });
        let inc = normalize(&body, &user()).expect("normalizes");
        assert_eq!(Value::Object(inc.attrs), json!({"userName": "u@x", "name": {"givenName": "A"}}));
    }

    #[test]
    fn entra_create_group_with_the_adscim_schema_uri_is_accepted_with_empty_members_absent() {
        let body = json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "displayName": "displayName", "meta": {"resourceType": "Group"}
        });
        let inc = normalize(&body, &group()).expect("normalizes");
        assert_eq!(
            Value::Object(inc.attrs),
            json!({"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "displayName"})
        );
        assert_eq!(inc.members, None);
    }

    #[test]
    fn okta_push_group_with_empty_members_reports_an_empty_member_list() {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                          "displayName": "Test SCIMv2", "members": []});
        let inc = normalize(&body, &group()).expect("normalizes");
        assert_eq!(inc.members, Some(vec![]));
        assert!(!inc.attrs.contains_key("members"));
    }

    #[test]
    fn group_members_in_a_body_become_member_refs_outside_the_json() {
        let body = json!({"displayName": "g", "Members": [
            {"value": "u1", "display": "User One", "$ref": "https://x/Users/u1"},
            {"Value": "g2", "type": "group"}
        ]});
        let inc = normalize(&body, &group()).expect("normalizes");
        assert_eq!(
            inc.members,
            Some(vec![
                MemberRef { value: "u1".into(), kind: None },
                MemberRef { value: "g2".into(), kind: Some("Group".into()) }
            ])
        );
        assert_eq!(Value::Object(inc.attrs), json!({"displayName": "g"}));
    }

    #[test]
    fn missing_or_blank_required_attributes_are_invalid_values_naming_the_attribute() {
        let err = normalize(&json!({"displayName": "x"}), &user()).expect_err("no userName");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.contains("userName"), "{}", err.detail);
        let err = normalize(&json!({"displayName": "  "}), &group()).expect_err("blank displayName");
        assert!(err.detail.contains("displayName"), "{}", err.detail);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_invalid_syntax() {
        assert_eq!(scim_type(normalize(&json!([1]), &user())), Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn extension_objects_urn_keys_and_dotted_keys_land_in_their_place() {
        let body = json!({
            "userName": "u",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Department": "Sales"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:core:2.0:User:nickName": "Babs",
            "name.givenName": "Barbara",
            "urn:example:unknown:attr": "ignored"
        });
        let inc = normalize(&body, &user()).expect("normalizes");
        assert_eq!(
            Value::Object(inc.attrs),
            json!({
                "userName": "u",
                ENTERPRISE_USER_SCHEMA: {"department": "Sales", "employeeNumber": "701984"},
                "nickName": "Babs",
                "name": {"givenName": "Barbara"}
            })
        );
    }

    #[test]
    fn manager_is_stored_as_the_rfc_object_whatever_form_it_came_in() {
        let schema = user();
        let manager = schema.extension(ENTERPRISE_USER_SCHEMA).and_then(|e| e.attr("manager")).expect("manager");
        let expected = json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"});
        for form in [
            json!("26118915-6090-4610-87e4-49d8ca9f808d"),
            json!({"Value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "Boss"}),
            json!([{"$ref": null, "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]),
        ] {
            assert_eq!(coerce(manager, &form).expect("coerces"), Some(expected.clone()), "form {form}");
        }
    }

    #[test]
    fn booleans_accept_true_false_strings_in_any_case() {
        let active = def(json!({"name": "active", "type": "boolean"}));
        assert_eq!(coerce(&active, &json!("True")).expect("ok"), Some(json!(true)));
        assert_eq!(coerce(&active, &json!("FALSE")).expect("ok"), Some(json!(false)));
        assert_eq!(coerce(&active, &json!(false)).expect("ok"), Some(json!(false)));
        assert_eq!(scim_type(coerce(&active, &json!("yes"))), Some(ScimType::InvalidValue));
        let inc = normalize(&json!({"userName": "u", "active": "True"}), &user()).expect("ok");
        assert_eq!(inc.attrs["active"], json!(true));
    }

    #[test]
    fn numbers_must_be_json_numbers() {
        let int = def(json!({"name": "n", "type": "integer"}));
        assert_eq!(coerce(&int, &json!(42)).expect("ok"), Some(json!(42)));
        assert_eq!(coerce(&int, &json!(7.0)).expect("ok"), Some(json!(7)));
        assert_eq!(scim_type(coerce(&int, &json!(7.5))), Some(ScimType::InvalidValue));
        assert_eq!(scim_type(coerce(&int, &json!("42"))), Some(ScimType::InvalidValue));
        let dec = def(json!({"name": "d", "type": "decimal"}));
        assert_eq!(coerce(&dec, &json!(2.5)).expect("ok"), Some(json!(2.5)));
        assert_eq!(scim_type(coerce(&dec, &json!("2.5"))), Some(ScimType::InvalidValue));
        assert_eq!(scim_type(coerce(&dec, &json!(true))), Some(ScimType::InvalidValue));
    }

    #[test]
    fn strings_refuse_numbers_booleans_and_objects_naming_the_attribute() {
        let title = def(json!({"name": "title", "type": "string"}));
        for bad in [json!(12), json!(true), json!({"a": 1}), json!(1.5)] {
            let err = coerce(&title, &bad).expect_err("wrong JSON type");
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{bad}");
            assert!(err.detail.contains("'title' must be a string"), "{bad}: {}", err.detail);
        }
        let err = normalize(&json!({"userName": 42}), &user()).expect_err("userName as a number");
        assert!(err.detail.contains("'userName' must be a string, not a number"), "{}", err.detail);
        let err = normalize(&json!({"userName": "u", "name": {"givenName": false}}), &user()).expect_err("sub");
        assert!(err.detail.contains("'name.givenName'"), "{}", err.detail);
        assert!(members_from(&json!([{"value": 7}])).is_err());
    }

    #[test]
    fn date_times_must_be_rfc3339() {
        let dt = def(json!({"name": "when", "type": "dateTime"}));
        assert_eq!(coerce(&dt, &json!("2015-10-10T12:00:00Z")).expect("ok"), Some(json!("2015-10-10T12:00:00Z")));
        assert_eq!(scim_type(coerce(&dt, &json!("last tuesday"))), Some(ScimType::InvalidValue));
    }

    #[test]
    fn old_entra_one_element_arrays_give_their_inner_value_to_single_valued_attributes() {
        let given = def(json!({"name": "givenName", "type": "string"}));
        assert_eq!(coerce(&given, &json!([{"$ref": null, "value": "Barbara"}])).expect("ok"), Some(json!("Barbara")));
        assert_eq!(coerce(&given, &json!(["Barbara"])).expect("ok"), Some(json!("Barbara")));
        assert_eq!(scim_type(coerce(&given, &json!(["a", "b"]))), Some(ScimType::InvalidValue));
    }

    #[test]
    fn multi_valued_attributes_wrap_single_values_and_keep_one_primary() {
        let schema = user();
        let (_, emails) = schema.resolve(None, "emails").expect("emails");
        assert_eq!(
            coerce(emails, &json!({"Value": "a@x", "Primary": "True"})).expect("ok"),
            Some(json!([{"value": "a@x", "primary": true}]))
        );
        let two = json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]);
        assert_eq!(
            coerce(emails, &two).expect("ok"),
            Some(json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}]))
        );
    }

    #[test]
    fn members_accept_arrays_single_objects_and_bare_ids() {
        let one = MemberRef { value: "string id 1".into(), kind: None };
        assert_eq!(members_from(&json!("string id 1")).expect("ok"), vec![one.clone()]);
        assert_eq!(members_from(&json!({"VALUE": "string id 1", "displayName": "x"})).expect("ok"), vec![one]);
        assert_eq!(members_from(&json!([{"value": "a", "type": "User"}])).expect("ok").len(), 1);
        assert_eq!(scim_type(members_from(&json!([{"value": " "}]))), Some(ScimType::InvalidValue));
        assert_eq!(scim_type(members_from(&json!([{"display": "no id"}]))), Some(ScimType::InvalidValue));
        assert_eq!(scim_type(members_from(&json!([{"value": "a", "type": "Device"}]))), Some(ScimType::InvalidValue));
    }

    #[test]
    fn an_unqualified_extension_attribute_is_found_in_its_extension() {
        let inc = normalize(&json!({"userName": "u", "manager": "m1", "department": "Ops"}), &user()).expect("ok");
        assert_eq!(inc.attrs[ENTERPRISE_USER_SCHEMA], json!({"manager": {"value": "m1"}, "department": "Ops"}));
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            json!(null),
            json!("x"),
            json!({"": 1, "urn:": 2, ".": 3, "name.": 4, "urn:ietf:params:scim:schemas:core:2.0:User:": 5}),
            json!({"userName": "u", "emails": [[1], {"value": {"deep": true}}]}),
            json!({"userName": "u", "name": [1, 2], "active": {"a": 1}}),
            json!({"userName": "u", ENTERPRISE_USER_SCHEMA: [1]}),
            json!({"userName": "é", "ä.ö": "ü", "urn:ü": 1}),
        ];
        for body in odd {
            let _ = normalize(&body, &user());
            let _ = normalize(&body, &group());
            let _ = members_from(&body);
        }
    }

    #[test]
    fn the_committed_schemas_normalize_idp_bodies() {
        let registry = crate::scim::schema::Registry::load().expect("schemas load");
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "u@x", "Active": "True", "groups": [], "password": "p",
            "emails": [{"Primary": true, "type": "work", "value": "u@x"}],
            "manager": "m1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"
        });
        let inc = normalize(&body, &registry.user).expect("user normalizes");
        assert_eq!(
            Value::Object(inc.attrs),
            json!({"userName": "u@x", "active": true, "emails": [{"primary": true, "type": "work", "value": "u@x"}],
                   ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1"}, "department": "Ops"}})
        );
        let inc =
            normalize(&json!({"displayName": "g", "members": [{"value": "u1", "display": "x"}]}), &registry.group)
                .expect("group normalizes");
        assert_eq!(inc.members, Some(vec![MemberRef { value: "u1".into(), kind: None }]));
        assert!(normalize(&json!({"members": []}), &registry.group).is_err(), "Group displayName is required");
    }

    #[test]
    fn check_required_passes_a_complete_resource() {
        let attrs = json!({"userName": "u"});
        assert!(check_required(attrs.as_object().expect("object"), &user()).is_ok());
    }
}
