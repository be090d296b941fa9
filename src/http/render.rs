//! Stored records → SCIM JSON (RFC 7643 §3, §4): `schemas`, `id`, attributes, the computed
//! `groups` of a user or `members` of a group, and `meta` with an absolute `location`.

use serde_json::{json, Map, Value};

use crate::scim::schema::ResourceSchema;
use crate::store::{Kind, Record, Store, StoreResult};

/// What to compute besides the stored attributes.
#[derive(Debug, Clone, Copy)]
pub struct Links {
    /// `groups` of a user / `members` of a group.
    pub include: bool,
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
    let mut schemas = vec![Value::String(schema.core.id.clone())];
    for ext in &schema.extensions {
        if rec.attrs.contains_key(&ext.id) {
            schemas.push(Value::String(ext.id.clone()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(rec.id.clone()));
    for (k, v) in &rec.attrs {
        out.insert(k.clone(), v.clone());
    }
    if links.include {
        match kind {
            Kind::User => {
                let groups: Vec<Value> = store
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
                    .collect();
                if !groups.is_empty() {
                    out.insert("groups".into(), Value::Array(groups));
                }
            }
            Kind::Group => {
                let mut members = Vec::new();
                for m in store.members(&rec.id) {
                    let m = m?;
                    let endpoint = if m.kind == "Group" { "Groups" } else { "Users" };
                    members.push(json!({"value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind}));
                }
                if !members.is_empty() {
                    out.insert("members".into(), Value::Array(members));
                }
            }
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.resource_type(),
            "created": rec.meta.created,
            "lastModified": rec.meta.last_modified,
            "location": format!("{base}/{}/{}", kind.endpoint(), rec.id),
            "version": rec.meta.etag(),
        }),
    );
    Ok(Value::Object(out))
}
