//! How many groups each user or group is a direct member of, mirrored in memory, so that
//! rendering a resource in no group (the answer for every user of a tenant that assigns users
//! directly) needs no `member_of` scan. Only rendering asks it: policy, filters and deletes read
//! `member_of` itself. Like the name mirror, it is loaded from sled at open and changed only
//! after a committed transaction, under the writer lock; a member id that is not a UUID switches
//! it off.

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

use super::error::StoreResult;
use super::keys::{self, uuid_of};

#[derive(Default)]
pub(crate) struct MemberCounts(RwLock<Option<HashMap<Uuid, u32>>>);

impl MemberCounts {
    pub(crate) fn load(member_of: &sled::Tree) -> StoreResult<MemberCounts> {
        let mut map: HashMap<Uuid, u32> = HashMap::new();
        for kv in member_of.iter() {
            let (k, _) = kv?;
            let Some(member) = keys::first(&k).and_then(uuid_of) else {
                return Ok(MemberCounts(RwLock::new(None)));
            };
            *map.entry(member).or_default() += 1;
        }
        Ok(MemberCounts(RwLock::new(Some(map))))
    }

    /// Takes over `fresh`'s counts (after the store was reopened from disk).
    pub(crate) fn replace_with(&self, fresh: MemberCounts) {
        let theirs = fresh.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = theirs;
    }

    /// True only when `member` is certainly in no group.
    pub(crate) fn in_no_group(&self, member: &str) -> bool {
        match (self.0.read().as_deref(), uuid_of(member)) {
            (Ok(Some(map)), Some(id)) => !map.contains_key(&id),
            _ => false,
        }
    }

    /// Applies a committed transaction: members `joined` and `left` one group each, and
    /// `deleted` (a removed resource) left all of its groups.
    pub(crate) fn apply<'a>(
        &self,
        joined: impl Iterator<Item = &'a str>,
        left: impl Iterator<Item = &'a str>,
        deleted: Option<&str>,
    ) {
        let Ok(mut guard) = self.0.write() else { return };
        let Some(map) = guard.as_mut() else { return };
        for member in joined {
            match uuid_of(member) {
                Some(id) => *map.entry(id).or_default() += 1,
                None => {
                    tracing::warn!("A member id is not a UUID; group memberships are read from sled from now on.");
                    *guard = None;
                    return;
                }
            }
        }
        for id in left.filter_map(uuid_of) {
            if let Some(n) = map.get_mut(&id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&id);
                }
            }
        }
        if let Some(id) = deleted.and_then(uuid_of) {
            map.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use crate::store::{Actor, ChangeOp, Kind, MemberEdit, NoHook, Store, WriteCtx};

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// The mirror never says "no group" for a member sled has in a group, and says it for
    /// every member sled has in none.
    fn assert_agrees(store: &Store, ids: &[&str]) {
        for id in ids {
            let in_sled = store.group_ids_of(id).expect("sled");
            assert_eq!(store.inner.member_counts.in_no_group(id), in_sled.is_empty(), "{id}: sled has {in_sled:?}");
        }
    }

    #[test]
    fn counts_follow_joins_leaves_and_deletes_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let actor = Actor("t".into());
        let ctx = WriteCtx { actor: &actor, now: "2026-01-01T00:00:00Z", hook: &NoHook, if_match: None };
        let (a, b, inner) = {
            let store = Store::open(dir.path()).expect("store");
            let user = |n: &str| {
                store.create(Kind::User, attrs(json!({"userName": n})), Vec::new(), &ctx).expect("user").record.id
            };
            let (a, b) = (user("a@x.com"), user("b@x.com"));
            let add = |ids: &[&str]| vec![MemberEdit::Add(ids.iter().map(|i| (i.to_string(), None)).collect())];
            let inner = store.create(Kind::Group, attrs(json!({"displayName": "inner"})), add(&[&a]), &ctx).expect("g");
            let inner = inner.record.id;
            let outer = store
                .create(Kind::Group, attrs(json!({"displayName": "outer"})), add(&[&a, &b, &inner]), &ctx)
                .expect("g")
                .record
                .id;
            assert_agrees(&store, &[&a, &b, &inner, &outer]);
            // b leaves outer: in no group again.
            let remove_b = vec![MemberEdit::Remove(vec![b.clone()])];
            store
                .modify(Kind::Group, &outer, ChangeOp::Patch, &ctx, |r| Ok((r.attrs.clone(), remove_b)))
                .expect("remove b");
            assert_agrees(&store, &[&a, &b, &inner, &outer]);
            // Deleting outer takes a and inner out of it; a is still in inner.
            store.delete(Kind::Group, &outer, &ctx).expect("delete outer");
            assert_agrees(&store, &[&a, &b, &inner]);
            store.flush_blocking().expect("flush");
            (a, b, inner)
        };
        let store = Store::open(dir.path()).expect("reopen");
        assert_agrees(&store, &[&a, &b, &inner]);
        assert!(!store.inner.member_counts.in_no_group(&a));
        store.delete(Kind::User, &a, &ctx).expect("delete a");
        assert!(store.inner.member_counts.in_no_group(&a));
        assert_agrees(&store, &[&b, &inner]);
    }
}
