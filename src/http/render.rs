//! Stored records → SCIM JSON (RFC 7643 §3, §4): `schemas`, `id`, attributes, the computed
//! `groups` of a user or `members` of a group, and `meta` with an absolute `location`.
//!
//! Two forms of one rendering: `render` builds a `Value` (for projections), and `write_text`
//! writes the same JSON straight from the stored text: attribute values are copied, not parsed
//! and re-serialized. That is the hot path of every IdP lookup, where no projection applies.

use serde_json::{json, Map, Value};

use crate::scim::schema::ResourceSchema;
use crate::store::{Kind, RawRecord, Record, Store, StoreResult};

/// What to compute besides the stored attributes.
#[derive(Debug, Clone, Copy)]
pub struct Links {
    /// `groups` of a user / `members` of a group.
    pub include: bool,
}

/// `schemas`: the core schema and each extension the record has attributes of.
fn schemas_of(schema: &ResourceSchema, has: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut schemas = vec![schema.core.id.as_str()];
    schemas.extend(schema.extensions.iter().map(|e| e.id.as_str()).filter(|id| has(id)));
    schemas
}

/// The computed `groups` (users) or `members` (groups), when asked for and not empty.
fn links_of(store: &Store, kind: Kind, id: &str, base: &str, links: Links) -> StoreResult<Option<Value>> {
    if !links.include {
        return Ok(None);
    }
    let items: Vec<Value> = match kind {
        Kind::User => store
            .groups_to_show(id)?
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
        Kind::Group => {
            let mut members = Vec::new();
            for m in store.members(id) {
                let m = m?;
                let endpoint = if m.kind == "Group" { "Groups" } else { "Users" };
                members.push(json!({"value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind}));
            }
            members
        }
    };
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

fn location(kind: Kind, id: &str, base: &str) -> String {
    format!("{base}/{}/{id}", kind.endpoint())
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
    out.insert("schemas".into(), json!(schemas_of(schema, |ext| rec.attrs.contains_key(ext))));
    out.insert("id".into(), Value::String(rec.id.clone()));
    for (k, v) in &rec.attrs {
        out.insert(k.clone(), v.clone());
    }
    if let Some(items) = links_of(store, kind, &rec.id, base, links)? {
        out.insert(kind.links_attr().into(), items);
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.resource_type(),
            "created": rec.meta.created,
            "lastModified": rec.meta.last_modified,
            "location": location(kind, &rec.id, base),
            "version": rec.meta.etag(),
        }),
    );
    Ok(Value::Object(out))
}

/// Appends the same JSON as `render` to `out`, from the stored text.
pub fn write_text(
    out: &mut Vec<u8>,
    store: &Store,
    schema: &ResourceSchema,
    kind: Kind,
    rec: &RawRecord<'_>,
    base: &str,
    links: Links,
) -> StoreResult<()> {
    out.extend_from_slice(b"{\"schemas\":");
    push_json(out, &schemas_of(schema, |ext| rec.attrs.contains_key(ext)));
    out.extend_from_slice(b",\"id\":");
    push_json(out, &rec.id);
    let links_attr = kind.links_attr();
    for (k, v) in &rec.attrs.0 {
        // Server-owned names are never stored; skipping them keeps this output equal to
        // `render`'s even if an old record had one.
        if matches!(k.as_ref(), "schemas" | "id" | "meta") || k == links_attr {
            continue;
        }
        out.push(b',');
        push_json(out, k);
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
    if let Some(items) = links_of(store, kind, &rec.id, base, links)? {
        out.push(b',');
        push_json(out, links_attr);
        out.push(b':');
        push_json(out, &items);
    }
    out.extend_from_slice(b",\"meta\":{\"resourceType\":");
    push_json(out, kind.resource_type());
    out.extend_from_slice(b",\"created\":");
    push_json(out, &rec.meta.created);
    out.extend_from_slice(b",\"lastModified\":");
    push_json(out, &rec.meta.last_modified);
    out.extend_from_slice(b",\"location\":");
    push_json(out, &location(kind, &rec.id, base));
    out.extend_from_slice(b",\"version\":");
    push_json(out, &rec.meta.etag());
    out.extend_from_slice(b"}}");
    Ok(())
}

/// Appends `value` as JSON.
pub fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing strings or `Value`s into a Vec cannot fail (no I/O, no non-string keys).
    let _ = serde_json::to_writer(out, value);
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
            let links = Links { include: true };
            let v = render(&store, schema, kind, rec, "https://h/scim/v2", links).expect("value");
            let stored = crate::store::StoredRecord::from_record(rec).expect("encode");
            let mut t = Vec::new();
            write_text(&mut t, &store, schema, kind, &stored.view().expect("view"), "https://h/scim/v2", links)
                .expect("text");
            assert_eq!(String::from_utf8(t).expect("utf-8"), v.to_string());
        }
    }
}
