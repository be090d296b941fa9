//! The unique-name indexes (`user_by_name`, `group_by_name`) mirrored in memory.
//!
//! Every IdP looks a user up by `userName` before each write, so this is the hottest read;
//! a sled lookup was ~13% of a GET's CPU. sled stays the truth: the mirror is loaded from it
//! at open and changed only after a transaction that changed the sled index has committed,
//! under the writer lock, so it never shows a name sled does not have. Ids are kept as 16-byte
//! UUIDs (~70 bytes an entry with the folded name); should a stored id not be a UUID, the
//! mirror switches itself off and lookups go to sled.

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

use super::error::StoreResult;
use super::keys::uuid_of;
use super::records::Kind;

#[derive(Default)]
pub(crate) struct NameIndex {
    users: RwLock<Option<HashMap<Box<str>, Uuid>>>,
    groups: RwLock<Option<HashMap<Box<str>, Uuid>>>,
}

/// What the mirror knows about a folded name.
pub(crate) enum Lookup {
    Found(String),
    Absent,
    /// The mirror is off; ask sled.
    Unknown,
}

impl NameIndex {
    /// Loads both mirrors from sled's name trees.
    pub(crate) fn load(users: &sled::Tree, groups: &sled::Tree) -> StoreResult<NameIndex> {
        Ok(NameIndex { users: RwLock::new(mirror(users)?), groups: RwLock::new(mirror(groups)?) })
    }

    /// Takes over `fresh`'s contents (after the store was reopened from disk).
    pub(crate) fn replace_with(&self, fresh: NameIndex) {
        for (mine, theirs) in [(&self.users, fresh.users), (&self.groups, fresh.groups)] {
            let theirs = theirs.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            *mine.write().unwrap_or_else(std::sync::PoisonError::into_inner) = theirs;
        }
    }

    fn side(&self, kind: Kind) -> &RwLock<Option<HashMap<Box<str>, Uuid>>> {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    pub(crate) fn get(&self, kind: Kind, folded: &str) -> Lookup {
        match self.side(kind).read().as_deref() {
            Ok(Some(map)) => match map.get(folded) {
                Some(id) => Lookup::Found(id.hyphenated().to_string()),
                None => Lookup::Absent,
            },
            _ => Lookup::Unknown,
        }
    }

    /// Applies a committed change of one record's name: `before` removed, `after` → `id`.
    pub(crate) fn update(&self, kind: Kind, before: Option<&str>, after: Option<&str>, id: &str) {
        let Ok(mut guard) = self.side(kind).write() else { return };
        let Some(map) = guard.as_mut() else { return };
        if let Some(b) = before {
            map.remove(b);
        }
        if let Some(a) = after {
            match uuid_of(id) {
                Some(uuid) => {
                    map.insert(a.into(), uuid);
                }
                None => {
                    tracing::warn!("A stored id is not a UUID; unique names are looked up in sled from now on.");
                    *guard = None;
                }
            }
        }
    }
}

fn mirror(tree: &sled::Tree) -> StoreResult<Option<HashMap<Box<str>, Uuid>>> {
    let mut map = HashMap::new();
    for kv in tree.iter() {
        let (name, id) = kv?;
        let (Ok(name), Some(id)) = (std::str::from_utf8(&name), std::str::from_utf8(&id).ok().and_then(uuid_of)) else {
            return Ok(None);
        };
        map.insert(name.into(), id);
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::store::{Actor, ChangeOp, NoHook, Store, WriteCtx};

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// The mirror's answer and sled's own index agree.
    fn assert_agrees(store: &Store, name: &str, expected: Option<&str>) {
        let in_sled = store
            .t(Kind::User.name_tree())
            .get(crate::scim::identifiers::fold(name).as_bytes())
            .expect("sled")
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        assert_eq!(in_sled.as_deref(), expected, "sled index for {name}");
        assert_eq!(store.id_by_name(Kind::User, name).expect("lookup").as_deref(), expected, "mirror for {name}");
    }

    #[test]
    fn the_mirror_follows_creates_renames_and_deletes_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let actor = Actor("t".into());
        let ctx = WriteCtx { actor: &actor, now: "2026-01-01T00:00:00Z", hook: &NoHook, if_match: None };
        let id = {
            let store = Store::open(dir.path()).expect("store");
            let id = store
                .create(Kind::User, attrs(json!({"userName": "Ann@x.com"})), Vec::new(), &ctx)
                .expect("create")
                .record
                .id;
            assert_agrees(&store, "ANN@x.com", Some(&id));
            store
                .modify(Kind::User, &id, ChangeOp::Replace, &ctx, |_| {
                    Ok((attrs(json!({"userName": "ann.b@x.com"})), Vec::new()))
                })
                .expect("rename");
            assert_agrees(&store, "ann@x.com", None);
            assert_agrees(&store, "Ann.B@x.com", Some(&id));
            let gone =
                store.create(Kind::User, attrs(json!({"userName": "gone@x.com"})), Vec::new(), &ctx).expect("create");
            store.delete(Kind::User, &gone.record.id, &ctx).expect("delete");
            assert_agrees(&store, "gone@x.com", None);
            store.flush_blocking().expect("flush");
            id
        };
        let store = Store::open(dir.path()).expect("reopen");
        assert_agrees(&store, "ann.b@x.com", Some(&id));
        assert_agrees(&store, "ann@x.com", None);
    }

    #[test]
    fn an_id_that_is_not_a_uuid_switches_the_mirror_off_and_sled_answers() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = sled::open(dir.path()).expect("sled");
        let (users, groups) = (db.open_tree("u").expect("tree"), db.open_tree("g").expect("tree"));
        users.insert("ann@x.com", "legacy-7").expect("insert");
        groups.insert("crew", "0192a4e0-0000-7000-8000-000000000001").expect("insert");
        let index = NameIndex::load(&users, &groups).expect("load");
        assert!(matches!(index.get(Kind::User, "ann@x.com"), Lookup::Unknown));
        assert!(
            matches!(index.get(Kind::Group, "crew"), Lookup::Found(id) if id == "0192a4e0-0000-7000-8000-000000000001")
        );
        assert!(matches!(index.get(Kind::Group, "other"), Lookup::Absent));
        index.update(Kind::Group, None, Some("odd"), "not-a-uuid");
        assert!(matches!(index.get(Kind::Group, "crew"), Lookup::Unknown));
    }
}
