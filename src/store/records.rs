//! What one stored User or Group looks like in sled.

use serde::{Deserialize, Serialize};
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
