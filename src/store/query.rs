//! Reads: one resource by id, and filtered, sorted, paged lists (RFC 7644 §3.4.2).
//!
//! `id eq`, `userName eq`, `displayName eq`, `externalId eq`, `members.value eq` and
//! `groups.value eq` are answered from indexes (also inside `and`, and `or` of indexable sides);
//! other filters scan. Without `sortBy`, results come in id order (ids are UUIDv7, so roughly
//! creation order), which is stable across pages.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::error::StoreResult;
use super::keys::{self, fold};
use super::names::Lookup;
use super::records::{Kind, Record, StoredRecord};
use super::Store;
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, ResourceSchema};

pub struct ListQuery<'a> {
    pub kind: Kind,
    pub schema: &'a ResourceSchema,
    pub filter: Option<&'a Filter>,
    pub sort_by: Option<&'a AttrPath>,
    pub descending: bool,
    /// 1-based, as on the wire.
    pub start_index: usize,
    pub count: usize,
}

#[derive(Debug)]
pub struct ListResult {
    pub total: usize,
    pub records: Vec<StoredRecord>,
}

impl Store {
    /// One resource by id.
    pub fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        match self.t(kind.tree()).get(id.as_bytes())? {
            Some(v) => Ok(Some(Record::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// One resource by id, undecoded, for rendering it as it is: from the record cache when it
    /// has it. Writes read through `get` (sled) under the writer lock instead.
    pub fn get_stored(&self, kind: Kind, id: &str) -> StoreResult<Option<StoredRecord>> {
        let cache = &self.inner.records;
        if let Some(bytes) = cache.get(kind, id) {
            return Ok(Some(StoredRecord::new(bytes)));
        }
        let seen = cache.generation();
        let found = self.t(kind.tree()).get(id.as_bytes())?;
        if let Some(bytes) = &found {
            cache.fill(kind, id, bytes.as_ref(), seen);
        }
        Ok(found.map(StoredRecord::new))
    }

    /// The id of the user or group with this unique name (case-insensitive).
    pub fn id_by_name(&self, kind: Kind, name: &str) -> StoreResult<Option<String>> {
        let folded = fold(name);
        Ok(match self.inner.names.get(kind, &folded) {
            Lookup::Found(id) => Some(id),
            Lookup::Absent => None,
            Lookup::Unknown => {
                self.t(kind.name_tree()).get(folded.as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned())
            }
        })
    }

    /// A filtered, sorted page.
    pub fn list(&self, q: &ListQuery<'_>) -> StoreResult<ListResult> {
        let needs_links = q.filter.is_some_and(|f| mentions(f, q.kind.links_attr()))
            || q.sort_by.is_some_and(|p| p.name.eq_ignore_ascii_case(q.kind.links_attr()));
        let skip = q.start_index.saturating_sub(1);
        let exact = q.filter.and_then(|f| exact_lookup(q.kind, f));
        let matches = |rec: &StoredRecord, decoded: Option<&Record>| -> StoreResult<bool> {
            match (q.filter, &exact) {
                (None, _) => Ok(true),
                // `id eq` / `userName eq` / `displayName eq` alone: the index found the record;
                // confirm with the attribute's own comparison on the undecoded record instead of
                // evaluating the filter on a rebuilt view (the hot path of every IdP lookup).
                (_, Some(Exact::Id(v))) => Ok(rec.view()?.id == *v),
                (_, Some(Exact::Name(v))) => Ok(rec
                    .view()?
                    .attrs
                    .str_attr(q.kind.unique_attr())
                    .is_some_and(|n| n.to_lowercase() == v.to_lowercase())),
                (Some(f), None) => {
                    let owned;
                    let rec = match decoded {
                        Some(r) => r,
                        None => {
                            owned = rec.decode()?;
                            &owned
                        }
                    };
                    Ok(f.matches(&self.filter_view(q.kind, rec, needs_links)?, q.schema))
                }
            }
        };
        let candidates = match q.filter {
            Some(f) => self.candidates(q.kind, f)?,
            None => None,
        };
        let mut source: Box<dyn Iterator<Item = StoreResult<StoredRecord>>> = match candidates {
            Some(ids) => Box::new(ids.into_iter().filter_map(move |id| self.get_stored(q.kind, &id).transpose())),
            None => Box::new(self.t(q.kind.tree()).iter().values().map(|v| Ok(StoredRecord::new(v?)))),
        };
        if let Some(path) = q.sort_by {
            let mut all = Vec::new();
            for rec in source.by_ref() {
                let stored = rec?;
                let rec = stored.decode()?;
                if matches(&stored, Some(&rec))? {
                    let key = sort_key(&self.filter_view(q.kind, &rec, needs_links)?, path, q.schema);
                    all.push((key, rec.id, stored));
                }
            }
            // Missing values sort last in both orders (RFC 7644 §3.4.2.3); ties by id for stability.
            all.sort_by(|(ka, ia, _), (kb, ib, _)| {
                let ord = match (ka, kb) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(a), Some(b)) => {
                        let o = compare_values(a, b);
                        if q.descending {
                            o.reverse()
                        } else {
                            o
                        }
                    }
                };
                ord.then_with(|| ia.cmp(ib))
            });
            let total = all.len();
            let records = all.into_iter().skip(skip).take(q.count).map(|(_, _, r)| r).collect();
            return Ok(ListResult { total, records });
        }
        let mut total = 0;
        let mut records = Vec::new();
        for rec in source {
            let rec = rec?;
            if matches(&rec, None)? {
                if total >= skip && records.len() < q.count {
                    records.push(rec);
                }
                total += 1;
            }
        }
        Ok(ListResult { total, records })
    }

    /// What a filter is evaluated against: the stored attributes plus `id`, `meta` and, when the
    /// filter needs them, `groups` (users) or `members` (groups).
    fn filter_view(&self, kind: Kind, rec: &Record, with_links: bool) -> StoreResult<Value> {
        let mut m: Map<String, Value> = rec.attrs.clone();
        m.insert("id".into(), Value::String(rec.id.clone()));
        m.insert(
            "meta".into(),
            json!({"resourceType": kind.resource_type(), "created": rec.meta.created, "lastModified": rec.meta.last_modified, "version": rec.meta.etag()}),
        );
        if with_links {
            let links: Vec<Value> = match kind {
                Kind::User => self.group_ids_of(&rec.id)?.into_iter().map(|g| json!({"value": g})).collect(),
                Kind::Group => self
                    .members(&rec.id)
                    .map(|m| m.map(|m| json!({"value": m.id, "type": m.kind})))
                    .collect::<StoreResult<_>>()?,
            };
            m.insert(kind.links_attr().into(), Value::Array(links));
        }
        Ok(Value::Object(m))
    }

    /// Ids that can possibly match, from indexes; `None` when the filter needs a scan.
    fn candidates(&self, kind: Kind, f: &Filter) -> StoreResult<Option<Vec<String>>> {
        Ok(match f {
            Filter::And(a, b) => match (self.candidates(kind, a)?, self.candidates(kind, b)?) {
                (Some(x), Some(y)) => {
                    let ys: BTreeSet<_> = y.into_iter().collect();
                    Some(x.into_iter().filter(|i| ys.contains(i)).collect())
                }
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            },
            Filter::Or(a, b) => match (self.candidates(kind, a)?, self.candidates(kind, b)?) {
                (Some(x), Some(y)) => Some(x.into_iter().chain(y).collect::<BTreeSet<_>>().into_iter().collect()),
                _ => None,
            },
            Filter::Compare { path, op: CompareOp::Eq, value: Value::String(v) } => {
                self.indexed_eq(kind, path, None, v)?
            }
            Filter::ValuePath { path, filter } => match filter.as_ref() {
                Filter::Compare { path: inner, op: CompareOp::Eq, value: Value::String(v) } if inner.sub.is_none() => {
                    self.indexed_eq(kind, path, Some(&inner.name), v)?
                }
                _ => None,
            },
            _ => None,
        })
    }

    fn indexed_eq(
        &self,
        kind: Kind,
        path: &AttrPath,
        inner: Option<&str>,
        v: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        if path.urn.as_deref().is_some_and(|u| !u.to_ascii_lowercase().contains(":core:2.0:")) {
            return Ok(None);
        }
        let name = path.name.to_ascii_lowercase();
        let sub = inner.or(path.sub.as_deref()).map(str::to_ascii_lowercase);
        let ids = match (name.as_str(), sub.as_deref()) {
            ("id", None) => {
                Some(if self.t(kind.tree()).contains_key(v.as_bytes())? { vec![v.to_string()] } else { vec![] })
            }
            ("externalid", None) => Some(
                self.t(kind.ext_tree())
                    .scan_prefix(keys::prefix(v))
                    .map(|kv| Ok(keys::second(&kv?.0).unwrap_or_default().to_string()))
                    .collect::<StoreResult<Vec<_>>>()?,
            ),
            (n, None) if n.eq_ignore_ascii_case(kind.unique_attr()) => {
                Some(self.id_by_name(kind, v)?.into_iter().collect())
            }
            ("members", Some("value")) if kind == Kind::Group => Some(self.group_ids_of(v)?),
            ("groups", Some("value")) if kind == Kind::User => Some(self.member_ids(v)?),
            _ => None,
        };
        Ok(ids)
    }
}

/// A filter that is exactly one equality on the id or the unique, case-insensitive name.
enum Exact<'f> {
    Id(&'f str),
    Name(&'f str),
}

fn exact_lookup(kind: Kind, f: &Filter) -> Option<Exact<'_>> {
    let Filter::Compare { path, op: CompareOp::Eq, value: Value::String(v) } = f else { return None };
    if path.sub.is_some() || path.urn.as_deref().is_some_and(|u| !u.to_ascii_lowercase().contains(":core:2.0:")) {
        return None;
    }
    if path.name.eq_ignore_ascii_case("id") {
        Some(Exact::Id(v))
    } else if path.name.eq_ignore_ascii_case(kind.unique_attr()) {
        Some(Exact::Name(v))
    } else {
        None
    }
}

/// Whether a filter refers to the top-level attribute `name`.
fn mentions(f: &Filter, name: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions(a, name) || mentions(b, name),
        Filter::Not(a) => mentions(a, name),
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. } => {
            path.name.eq_ignore_ascii_case(name)
        }
    }
}

/// The value a resource sorts by: for multi-valued attributes the primary (else first) value
/// (RFC 7644 §3.4.2.3); strings are folded unless the attribute is caseExact.
fn sort_key(view: &Value, path: &AttrPath, schema: &ResourceSchema) -> Option<Value> {
    let (container, def) = schema.resolve(path.urn.as_deref(), &path.name)?;
    let obj = match container {
        crate::scim::schema::Container::Core => view.as_object()?,
        crate::scim::schema::Container::Extension(urn) => get_ci(view.as_object()?, urn)?.as_object()?,
    };
    let mut v = get_ci(obj, &def.name)?.clone();
    let mut leaf = def;
    if let Value::Array(items) = &v {
        let chosen =
            items.iter().find(|i| i.get("primary").and_then(Value::as_bool) == Some(true)).or_else(|| items.first())?;
        v = chosen.clone();
    }
    let sub = path.sub.as_deref().or(if leaf.kind == AttrType::Complex { Some("value") } else { None });
    if let Some(s) = sub {
        leaf = leaf.sub(s)?;
        v = get_ci(v.as_object()?, &leaf.name)?.clone();
    }
    match v {
        Value::String(s) if !leaf.case_exact => Some(Value::String(s.to_lowercase())),
        Value::Null => None,
        other => Some(other),
    }
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}
