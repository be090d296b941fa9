//! What one stored User or Group looks like in sled.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::{StoreError, StoreResult};
use super::tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub(crate) fn tree(self) -> usize {
        match self {
            Kind::User => tree::USERS,
            Kind::Group => tree::GROUPS,
        }
    }
    pub(crate) fn name_tree(self) -> usize {
        match self {
            Kind::User => tree::USER_BY_NAME,
            Kind::Group => tree::GROUP_BY_NAME,
        }
    }
    pub(crate) fn ext_tree(self) -> usize {
        match self {
            Kind::User => tree::USER_BY_EXT,
            Kind::Group => tree::GROUP_BY_EXT,
        }
    }
    pub(crate) fn count_key(self) -> &'static [u8] {
        match self {
            Kind::User => b"count:users",
            Kind::Group => b"count:groups",
        }
    }
    /// The attribute that must be unique (case-insensitively) for this kind.
    pub fn unique_attr(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "displayName",
        }
    }
    /// The SCIM resource type name (`meta.resourceType`, member `type`).
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    /// The computed multi-valued attribute linking users and groups: a user's `groups`, a
    /// group's `members`.
    pub fn links_attr(self) -> &'static str {
        match self {
            Kind::User => "groups",
            Kind::Group => "members",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
}

/// Server-owned metadata (RFC 7643 §3.1); `location` and `resourceType` are derived when rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMeta {
    pub created: String,
    pub last_modified: String,
    /// Bumped on every write; rendered as the weak ETag `W/"<version>"`.
    pub version: u64,
}

impl RecordMeta {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// A stored resource: its client-owned attributes (canonical names, no `id`/`meta`/`schemas`,
/// no group members) and the server-owned metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub attrs: Map<String, Value>,
    pub meta: RecordMeta,
    /// The Atlassian username this user was first provisioned under; kept across IdP renames so
    /// the Atlassian account is never orphaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Record {
    pub(crate) fn decode(bytes: &[u8]) -> StoreResult<Record> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    pub(crate) fn encode(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    /// A top-level string attribute, if set.
    pub fn str_attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
    /// The unique name of this record (`userName` or `displayName`).
    pub fn unique_name(&self, kind: Kind) -> Option<&str> {
        self.str_attr(kind.unique_attr())
    }
    pub fn external_id(&self) -> Option<&str> {
        self.str_attr("externalId")
    }
}

/// A record as sled holds it: JSON bytes, decoded only as far as the reader needs. Reads that
/// just return a resource render from a `RawRecord` view (no attribute tree is built); filters
/// and projections decode the full `Record`. The first `view` remembers where the parts are, so
/// a list that checks a record and then renders it parses it once.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    bytes: sled::IVec,
    layout: std::sync::OnceLock<Layout>,
}

impl StoredRecord {
    pub(crate) fn new(bytes: sled::IVec) -> StoredRecord {
        StoredRecord { bytes, layout: std::sync::OnceLock::new() }
    }
    /// The stored form of a record just written (for rendering it like any read).
    pub fn from_record(rec: &Record) -> StoreResult<StoredRecord> {
        Ok(StoredRecord::new(rec.encode()?.into()))
    }
    pub fn decode(&self) -> StoreResult<Record> {
        Record::decode(&self.bytes)
    }
    pub fn view(&self) -> StoreResult<RawRecord<'_>> {
        if let Some(layout) = self.layout.get() {
            return Ok(layout.view(&self.bytes));
        }
        let raw: RawRecord<'_> = serde_json::from_slice(&self.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if let Some(layout) = Layout::of(&raw, &self.bytes) {
            let _ = self.layout.set(layout);
        }
        Ok(raw)
    }
}

/// Byte ranges of a record's parts inside its stored bytes (strings with escapes are kept
/// unescaped instead).
#[derive(Debug, Clone)]
struct Layout {
    id: Part,
    attrs: Vec<(Part, Part)>,
    created: Part,
    last_modified: Part,
    version: u64,
}

#[derive(Debug, Clone)]
enum Part {
    At(usize, usize),
    Owned(String),
}

impl Part {
    fn of(s: &str, base: &[u8]) -> Part {
        let start = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        match base.get(start..start + s.len()) {
            Some(b) if b.as_ptr() == s.as_ptr() => Part::At(start, start + s.len()),
            _ => Part::Owned(s.to_string()),
        }
    }
    fn get<'a>(&'a self, base: &'a [u8]) -> Cow<'a, str> {
        match self {
            Part::At(a, b) => String::from_utf8_lossy(&base[*a..*b]),
            Part::Owned(s) => Cow::Borrowed(s),
        }
    }
}

impl Layout {
    /// `None` if a value is not a slice of `base` (serde_json borrows raw values, so never).
    fn of(raw: &RawRecord<'_>, base: &[u8]) -> Option<Layout> {
        let mut attrs = Vec::with_capacity(raw.attrs.0.len());
        for (k, v) in &raw.attrs.0 {
            let v = Part::of(v, base);
            if matches!(v, Part::Owned(_)) {
                return None;
            }
            attrs.push((Part::of(k, base), v));
        }
        Some(Layout {
            id: Part::of(&raw.id, base),
            attrs,
            created: Part::of(&raw.meta.created, base),
            last_modified: Part::of(&raw.meta.last_modified, base),
            version: raw.meta.version,
        })
    }
    fn view<'a>(&'a self, base: &'a [u8]) -> RawRecord<'a> {
        RawRecord {
            id: self.id.get(base),
            attrs: RawAttrs(
                self.attrs
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            // Checked valid UTF-8 when the layout was taken.
                            Part::At(a, b) => std::str::from_utf8(&base[*a..*b]).unwrap_or("null"),
                            Part::Owned(s) => s.as_str(),
                        };
                        (k.get(base), v)
                    })
                    .collect(),
            ),
            meta: RawMeta {
                created: self.created.get(base),
                last_modified: self.last_modified.get(base),
                version: self.version,
            },
        }
    }
}

/// A borrowed view of a stored record: the attributes stay JSON text, split only at the top
/// level, so rendering copies them instead of parsing and re-serializing every value.
#[derive(Debug, Deserialize)]
pub struct RawRecord<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub attrs: RawAttrs<'a>,
    #[serde(borrow)]
    pub meta: RawMeta<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMeta<'a> {
    #[serde(borrow)]
    pub created: Cow<'a, str>,
    #[serde(borrow)]
    pub last_modified: Cow<'a, str>,
    pub version: u64,
}

impl RawMeta<'_> {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// Top-level attributes in stored order, each value as its JSON text.
#[derive(Debug, Default)]
pub struct RawAttrs<'a>(pub Vec<(Cow<'a, str>, &'a str)>);

impl<'a> RawAttrs<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// A top-level string attribute, if set.
    pub fn str_attr(&self, name: &str) -> Option<Cow<'a, str>> {
        serde_json::from_str::<Text<'a>>(self.get(name)?).ok().map(|t| t.0)
    }
}

/// A JSON string, borrowed unless it has escapes (serde's plain `Cow` impl always copies).
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for RawAttrs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Entries<'a> {
            type Value = RawAttrs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<RawAttrs<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((k, v)) = m.next_entry::<Text<'a>, &'a RawValue>()? {
                    out.push((k.0, v.get()));
                }
                Ok(RawAttrs(out))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_view_reads_the_remembered_layout_and_equals_the_first() {
        let mut attrs = Map::new();
        attrs.insert("userName".into(), Value::String("a\"b\\c@ÅÄ.example".into()));
        attrs.insert("name".into(), serde_json::json!({"givenName": "Zoë", "familyName": "O\u{2019}Neil"}));
        attrs.insert("weird \"key\"".into(), Value::Bool(true));
        let rec = Record {
            id: "0192a4e0-0000-7000-8000-000000000001".into(),
            attrs,
            meta: RecordMeta {
                created: "2026-01-01T00:00:00Z".into(),
                last_modified: "2026-01-02T00:00:00Z".into(),
                version: 7,
            },
            link: None,
        };
        let stored = StoredRecord::from_record(&rec).expect("encode");
        let parsed = format!("{:?}", stored.view().expect("first view"));
        assert!(stored.layout.get().is_some(), "the first view remembers where the parts are");
        let remembered = stored.view().expect("second view");
        assert_eq!(format!("{remembered:?}"), parsed);
        assert_eq!(remembered.attrs.str_attr("userName").as_deref(), Some("a\"b\\c@ÅÄ.example"));
        assert_eq!(remembered.attrs.get("weird \"key\""), Some("true"));
        assert_eq!(remembered.meta.etag(), "W/\"7\"");
    }
}
