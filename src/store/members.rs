//! Membership reads. Members are individual keys, so reading one user's groups or streaming a
//! large group's members never loads a whole member list into one value.

use super::error::StoreResult;
use super::keys;
use super::records::{Kind, Record};
use super::{tree, Store};

/// One member of a group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: String,
}

impl Store {
    /// The ids of a group's members, in key order.
    pub fn member_ids(&self, gid: &str) -> StoreResult<Vec<String>> {
        self.members(gid).map(|m| m.map(|m| m.id)).collect()
    }

    /// Streams a group's members.
    pub fn members(&self, gid: &str) -> impl Iterator<Item = StoreResult<Member>> {
        self.t(tree::MEMBERS).scan_prefix(keys::prefix(gid)).map(|kv| {
            let (k, v) = kv?;
            Ok(Member {
                id: keys::second(&k).unwrap_or_default().to_string(),
                kind: String::from_utf8_lossy(&v).into_owned(),
            })
        })
    }

    /// Whether `member` is a direct member of `gid`.
    pub fn is_member(&self, gid: &str, member: &str) -> StoreResult<bool> {
        Ok(self.t(tree::MEMBERS).contains_key(keys::pair(gid, member))?)
    }

    /// The ids of the groups `member` belongs to directly.
    pub fn group_ids_of(&self, member: &str) -> StoreResult<Vec<String>> {
        self.t(tree::MEMBER_OF)
            .scan_prefix(keys::prefix(member))
            .map(|kv| Ok(keys::second(&kv?.0).unwrap_or_default().to_string()))
            .collect()
    }

    /// The groups `member` belongs to, for showing them (`User.groups`): a member in no group
    /// is answered from memory. Decisions read `group_ids_of`, which always asks sled.
    pub fn groups_to_show(&self, member: &str) -> StoreResult<Vec<Record>> {
        if self.inner.member_counts.in_no_group(member) {
            return Ok(Vec::new());
        }
        self.groups_of(member)
    }

    /// The groups `member` belongs to, with their records (for `User.groups`).
    pub fn groups_of(&self, member: &str) -> StoreResult<Vec<Record>> {
        let mut out = Vec::new();
        for gid in self.group_ids_of(member)? {
            if let Some(g) = self.get(Kind::Group, &gid)? {
                out.push(g);
            }
        }
        Ok(out)
    }
}
