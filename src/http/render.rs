//! Stored records → SCIM JSON (RFC 7643 §3, §4): `schemas`, `id`, attributes, the computed
//! `groups` of a user or `members` of a group, and `meta` with an absolute `location`.
//!
//! Two forms of one rendering: `render` builds a `Value` (for projections and writes), and
//! `render_text` writes the same JSON straight into a string without copying the attributes —
//! the hot path of every IdP lookup, where no projection applies.

use serde_json::{json, Map, Value};

use crate::scim::schema::ResourceSchema;
use crate::store::{Kind, Record, Store, StoreResult};

/// What to compute besides the stored attributes.
#[derive(Debug, Clone, Copy)]
pub struct Links {
    /// `groups` of a user / `members` of a group.
    pub include: bool,
}

fn schemas_of(schema: &ResourceSchema, rec: &Record) -> Vec<Value> {
    let mut schemas = vec![Value::String(schema.core.id.clone())];
    for ext in &schema.extensions {
        if rec.attrs.contains_key(&ext.id) {
            schemas.push(Value::String(ext.id.clone()));
        }
    }
    schemas
}

/// The computed `groups` (users) or `members` (groups), when asked for and not empty.
fn links_of(
    store: &Store,
    kind: Kind,
    rec: &Record,
    base: &str,
    links: Links,
) -> StoreResult<Option<(&'static str, Value)>> {
    if !links.include {
        return Ok(None);
    }
    let (name, items): (&'static str, Vec<Value>) = match kind {
        Kind::User => (
            "groups",
            store
                .groups_of(&rec.id)?
                .into_iter()
                .map(|g| {
                    json!({
                        "value": g.id,
                        "$ref": format!("{base}/Groups/{}", g.id),
                        "display": g.attrs.get("displayName").cloned().unwrap_or(Value::Null),
                        "type": "direct",
                    })
                })
                .collect(),
        ),
        Kind::Group => {
            let mut members = Vec::new();
            for m in store.members(&rec.id) {
                let m = m?;
                let endpoint = if m.kind == "Group" { "Groups" } else { "Users" };
                members.push(json!({"value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind}));
            }
            ("members", members)
        }
    };
    Ok((!items.is_empty()).then_some((name, Value::Array(items))))
}

fn meta_of(kind: Kind, rec: &Record, base: &str) -> Value {
    json!({
        "resourceType": kind.resource_type(),
        "created": rec.meta.created,
        "lastModified": rec.meta.last_modified,
        "location": format!("{base}/{}/{}", kind.endpoint(), rec.id),
        "version": rec.meta.etag(),
    })
}

/// Renders one record. `base` is the SCIM root URL, e.g. `https://host/scim/v2`.
pub fn render(
    store: &Store,
    schema: &ResourceSchema,
    kind: Kind,
    rec: &Record,
    base: &str,
    links: Links,
) -> StoreResult<Value> {
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas_of(schema, rec)));
    out.insert("id".into(), Value::String(rec.id.clone()));
    for (k, v) in &rec.attrs {
        out.insert(k.clone(), v.clone());
    }
    if let Some((name, items)) = links_of(store, kind, rec, base, links)? {
        out.insert(name.into(), items);
    }
    out.insert("meta".into(), meta_of(kind, rec, base));
    Ok(Value::Object(out))
}

/// The same JSON as `render`, written directly as text.
pub fn render_text(
    store: &Store,
    schema: &ResourceSchema,
    kind: Kind,
    rec: &Record,
    base: &str,
    links: Links,
) -> StoreResult<String> {
    let mut out = String::with_capacity(512);
    put(&mut out, "schemas", &schemas_of(schema, rec));
    put(&mut out, "id", &rec.id);
    for (k, v) in &rec.attrs {
        put(&mut out, k, v);
    }
    if let Some((name, items)) = links_of(store, kind, rec, base, links)? {
        put(&mut out, name, &items);
    }
    put(&mut out, "meta", &meta_of(kind, rec, base));
    out.push('}');
    Ok(out)
}

/// Appends `"key":value` to an object being written, opening it on the first field.
fn put<T: serde::Serialize + ?Sized>(out: &mut String, key: &str, value: &T) {
    out.push(if out.is_empty() { '{' } else { ',' });
    // Serializing a string key or a JSON value cannot fail.
    out.push_str(&serde_json::to_string(key).unwrap_or_default());
    out.push(':');
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::Registry;
    use crate::store::{Actor, NoHook, WriteCtx};

    #[test]
    fn text_rendering_is_the_same_json_as_value_rendering() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let reg = Registry::load().expect("schemas");
        let actor = Actor("t".into());
        let ctx = WriteCtx { actor: &actor, now: "2026-01-01T00:00:00Z", hook: &NoHook, if_match: None };
        let attrs = json!({"userName": "a\"b@x.com", "name": {"givenName": "Ä"}, "active": false,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}});
        let user = store.create(Kind::User, attrs.as_object().cloned().expect("obj"), Vec::new(), &ctx).expect("user");
        let mut g = Map::new();
        g.insert("displayName".into(), json!("crew"));
        let members = vec![crate::store::MemberEdit::Add(vec![(user.record.id.clone(), None)])];
        let group = store.create(Kind::Group, g, members, &ctx).expect("group");
        for (kind, rec, schema) in [(Kind::User, &user.record, &reg.user), (Kind::Group, &group.record, &reg.group)] {
            let v = render(&store, schema, kind, rec, "https://h/scim/v2", Links { include: true }).expect("value");
            let t = render_text(&store, schema, kind, rec, "https://h/scim/v2", Links { include: true }).expect("text");
            assert_eq!(t, v.to_string());
        }
    }
}
