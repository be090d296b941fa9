//! The Atlassian groups scimbridge manages, per target (issue 9, "Groups that exist"): the ones it
//! created, and the mapped ones it has used. Written by `delivery/groups.rs`, never by a SCIM
//! transaction; opened lazily like the lifecycle trees and included in backups.
//!
//! | tree | key → value |
//! | --- | --- |
//! | `managed_groups` | target 0x00 lowercased group name → [`ManagedGroup`] JSON |
//!
//! A `creating` entry is written (and flushed) before the create call, so a crash between the
//! call and the `created` record cannot turn a group scimbridge made into a foreign one.

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;

pub(crate) const MANAGED_GROUPS: &str = "managed_groups";

/// Why scimbridge may change a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupOrigin {
    /// A create call is (or was, before a crash) under way.
    Creating,
    /// scimbridge created it.
    Created,
    /// A `[[group_map]]` entry names it; it existed already.
    Mapped,
    /// An earlier version of scimbridge (which mirrored IdP groups by name into whatever group
    /// had that name) delivered memberships to it; kept managed so an upgrade changes nothing.
    Adopted,
}

/// One managed group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedGroup {
    pub target: String,
    /// The Atlassian group name as scimbridge used it.
    pub group: String,
    pub origin: GroupOrigin,
    /// When this record was written (RFC 3339).
    pub at: String,
    /// The SCIM id (group or user) whose intent caused it, for the audit trail.
    pub cause: String,
}

fn key(target: &str, group: &str) -> Vec<u8> {
    keys::pair(target, &group.to_lowercase())
}

impl Store {
    fn managed_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(MANAGED_GROUPS)?)
    }

    /// The record of `group` in `target`, if scimbridge manages it.
    ///
    /// # Errors
    /// On a sled error or an unreadable record.
    pub fn managed_group(&self, target: &str, group: &str) -> StoreResult<Option<ManagedGroup>> {
        self.managed_tree()?
            .get(key(target, group))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Writes (or replaces) a record; durable after the next flush.
    ///
    /// # Errors
    /// On a sled error.
    pub fn managed_group_put(&self, g: &ManagedGroup) -> StoreResult<()> {
        let bytes = serde_json::to_vec(g).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let _guard = self.lock();
        self.managed_tree()?.insert(key(&g.target, &g.group), bytes)?;
        self.mark_committed();
        Ok(())
    }

    /// Forgets `group` in `target` (after scimbridge deleted it).
    ///
    /// # Errors
    /// On a sled error.
    pub fn managed_group_remove(&self, target: &str, group: &str) -> StoreResult<()> {
        let _guard = self.lock();
        self.managed_tree()?.remove(key(target, group))?;
        self.mark_committed();
        Ok(())
    }

    /// Once per store: records as `adopted` every group an earlier version added members to
    /// (delivered `add_to_group` records of the audit log), so upgrading does not stop the sync
    /// (and the removals) of groups that were mirrored by name before groups were managed.
    /// Returns how many were adopted; later calls return 0 without scanning.
    ///
    /// # Errors
    /// On a sled error.
    pub fn adopt_previously_synced_groups(&self, now: &str) -> StoreResult<usize> {
        const DONE: &[u8] = b"managed_groups_adopted";
        const NEEDLE: &[u8] = b"\"add_to_group\"";
        if self.t(super::tree::META).contains_key(DONE)? {
            return Ok(0);
        }
        let mut found: std::collections::BTreeMap<Vec<u8>, ManagedGroup> = std::collections::BTreeMap::new();
        for kv in self.t(super::tree::AUDIT).iter() {
            let (_, v) = kv?;
            // Most records are SCIM changes: look for the action's name before parsing.
            if !v.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
                continue;
            }
            let Ok(rec) = serde_json::from_slice::<serde_json::Value>(&v) else { continue };
            let delivered = rec["type"] == "delivery" && rec["outcome"] == "delivered";
            let (Some(target), Some(group)) = (rec["target"].as_str(), rec["action"]["group"].as_str()) else {
                continue;
            };
            if delivered && rec["action"]["type"] == "add_to_group" {
                found.entry(key(target, group)).or_insert_with(|| ManagedGroup {
                    target: target.to_string(),
                    group: group.to_string(),
                    origin: GroupOrigin::Adopted,
                    at: now.to_string(),
                    cause: "upgrade".into(),
                });
            }
        }
        let tree = self.managed_tree()?;
        let _guard = self.lock();
        let mut adopted = 0;
        for (k, g) in &found {
            if !tree.contains_key(k)? {
                tree.insert(k.as_slice(), serde_json::to_vec(g).map_err(|e| StoreError::Corrupt(e.to_string()))?)?;
                adopted += 1;
            }
        }
        self.t(super::tree::META).insert(DONE, &[1u8])?;
        self.mark_committed();
        Ok(adopted)
    }

    /// Every managed group, by target then name.
    ///
    /// # Errors
    /// On a sled error or an unreadable record.
    pub fn managed_groups(&self) -> StoreResult<Vec<ManagedGroup>> {
        self.managed_tree()?
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_per_target_and_case_insensitive_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = Store::open(dir.path()).expect("open");
            let g = ManagedGroup {
                target: "jira".into(),
                group: "Engineering".into(),
                origin: GroupOrigin::Created,
                at: "2026-01-01T00:00:00Z".into(),
                cause: "g1".into(),
            };
            store.managed_group_put(&g).expect("put");
            assert_eq!(store.managed_group("jira", "ENGINEERING").expect("get"), Some(g));
            assert_eq!(store.managed_group("wiki", "Engineering").expect("get"), None);
            store.flush_blocking().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.managed_groups().expect("list").len(), 1);
        store.managed_group_remove("jira", "engineering").expect("remove");
        assert_eq!(store.managed_group("jira", "Engineering").expect("get"), None);
    }

    #[test]
    fn groups_an_earlier_version_synced_are_adopted_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let rec = |outcome: &str, kind: &str, group: &str| {
            serde_json::json!({"type": "delivery", "outcome": outcome, "target": "jira",
                "action": {"type": kind, "group": group}})
        };
        store.audit_append("u1", &rec("delivered", "add_to_group", "jira-software-users")).expect("audit");
        store.audit_append("u2", &rec("dead", "add_to_group", "never-made-it")).expect("audit");
        store.audit_append("u3", &rec("delivered", "remove_from_group", "only-removed")).expect("audit");
        assert_eq!(store.adopt_previously_synced_groups("now").expect("adopt"), 1);
        let g = store.managed_group("jira", "JIRA-software-users").expect("get").expect("adopted");
        assert_eq!(g.origin, GroupOrigin::Adopted);
        assert_eq!(store.managed_group("jira", "never-made-it").expect("get"), None);
        store.audit_append("u4", &rec("delivered", "add_to_group", "later")).expect("audit");
        assert_eq!(store.adopt_previously_synced_groups("now").expect("again"), 0, "once per store");
    }
}
