//! Backups: an online, consistent export of every tree as JSON lines, and an import into an
//! empty data dir.
//!
//! Format: a header line `{"format":"scimbridge-backup","version":1,"layout":N,"created":…}`,
//! then one line per entry `{"t":tree,"k":hex,"v":hex}`, then a trailer
//! `{"end":true,"entries":N,"sha256":hex}` whose digest covers every entry line, so a truncated
//! or edited file is refused on restore. The export holds the writer lock, and every write path
//! takes it, so the file is one point in time across all trees.

use std::io::{BufRead, Write};
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::{StoreError, StoreResult};
use super::{Store, LAYOUT_VERSION};

pub const FORMAT: &str = "scimbridge-backup";
const VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStats {
    pub trees: usize,
    pub entries: u64,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("backup I/O: {e}"))
}

impl Store {
    /// Writes a consistent copy of the whole store to `out`.
    ///
    /// # Errors
    /// Storage or write errors.
    pub fn backup(&self, out: &mut dyn Write, now: &str) -> StoreResult<BackupStats> {
        let _guard = self.lock();
        let header = json!({"format": FORMAT, "version": VERSION, "layout": LAYOUT_VERSION, "created": now});
        writeln!(out, "{header}").map_err(io)?;
        let mut digest = Sha256::new();
        let mut entries = 0u64;
        let mut names: Vec<Vec<u8>> = self.inner.db().tree_names().into_iter().map(|n| n.to_vec()).collect();
        names.sort();
        for name in &names {
            let tree = self.inner.db().open_tree(name)?;
            let tname = String::from_utf8_lossy(name).into_owned();
            for kv in tree.iter() {
                let (k, v) = kv?;
                let line = json!({"t": tname, "k": hex::encode(&k), "v": hex::encode(&v)}).to_string();
                digest.update(line.as_bytes());
                digest.update(b"\n");
                writeln!(out, "{line}").map_err(io)?;
                entries += 1;
            }
        }
        let trailer = json!({"end": true, "entries": entries, "sha256": hex::encode(digest.finalize())});
        writeln!(out, "{trailer}").map_err(io)?;
        out.flush().map_err(io)?;
        Ok(BackupStats { trees: names.len(), entries })
    }
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

/// Imports a backup into `dir`, which must be empty or absent. The file is checked whole
/// (header, digest, entry count) before the store is flushed; on any error the half-written
/// directory is removed so nothing half-restored is left to start a server on.
///
/// # Errors
/// A non-empty target, a damaged or foreign file, a newer layout, storage errors.
pub fn restore(dir: &Path, input: &mut dyn BufRead) -> StoreResult<BackupStats> {
    if dir.exists() && std::fs::read_dir(dir).map_err(io)?.next().is_some() {
        return Err(bad(format!("{} is not empty; restore only into an empty data dir", dir.display())));
    }
    let result = restore_into(dir, input);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn restore_into(dir: &Path, input: &mut dyn BufRead) -> StoreResult<BackupStats> {
    let mut lines = input.lines();
    let header: Value = match lines.next() {
        Some(l) => serde_json::from_str(&l.map_err(io)?).map_err(|e| bad(format!("bad header: {e}")))?,
        None => return Err(bad("empty backup file")),
    };
    if header["format"] != FORMAT {
        return Err(bad("not a scimbridge backup"));
    }
    if header["version"].as_u64() != Some(VERSION) {
        return Err(bad(format!("unsupported backup version {}", header["version"])));
    }
    if header["layout"].as_u64().is_some_and(|l| l > LAYOUT_VERSION) {
        return Err(bad(format!("backup layout {} is newer than this build understands", header["layout"])));
    }
    let db = sled::Config::new().path(dir).open()?;
    let mut digest = Sha256::new();
    let mut entries = 0u64;
    let mut trees = std::collections::BTreeSet::new();
    let mut trailer: Option<Value> = None;
    for line in lines {
        let line = line.map_err(io)?;
        if trailer.is_some() {
            return Err(bad("data after the end marker"));
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| bad(format!("bad line: {e}")))?;
        if v["end"] == true {
            trailer = Some(v);
            continue;
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
        let (Some(t), Some(k), Some(val)) = (v["t"].as_str(), v["k"].as_str(), v["v"].as_str()) else {
            return Err(bad("an entry lacks t, k or v"));
        };
        let k = hex::decode(k).map_err(|e| bad(format!("bad key: {e}")))?;
        let val = hex::decode(val).map_err(|e| bad(format!("bad value: {e}")))?;
        db.open_tree(t)?.insert(k, val)?;
        trees.insert(t.to_string());
        entries += 1;
    }
    let trailer = trailer.ok_or_else(|| bad("the backup is truncated: no end marker"))?;
    if trailer["entries"].as_u64() != Some(entries) {
        return Err(bad(format!("the backup says {} entries, found {entries}", trailer["entries"])));
    }
    if trailer["sha256"].as_str() != Some(hex::encode(digest.finalize()).as_str()) {
        return Err(bad("the backup's checksum does not match: the file was damaged or edited"));
    }
    db.flush()?;
    Ok(BackupStats { trees: trees.len(), entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Actor, Kind, NoHook, WriteCtx};

    fn seeded() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let actor = Actor("t".into());
        let ctx = WriteCtx { actor: &actor, now: "2026-01-01T00:00:00Z", hook: &NoHook, if_match: None };
        for n in ["a", "b", "c"] {
            let mut attrs = serde_json::Map::new();
            attrs.insert("userName".into(), json!(n));
            store.create(Kind::User, attrs, Vec::new(), &ctx).expect("create");
        }
        (dir, store)
    }

    #[test]
    fn a_backup_restores_to_an_identical_store() {
        let (_d, store) = seeded();
        let mut buf = Vec::new();
        let stats = store.backup(&mut buf, "now").expect("backup");
        assert!(stats.entries > 3);
        let target = tempfile::tempdir().expect("tmp");
        let path = target.path().join("restored");
        let restored = restore(&path, &mut buf.as_slice()).expect("restore");
        assert_eq!(restored.entries, stats.entries);
        let again = Store::open(&path).expect("open restored");
        let mut buf2 = Vec::new();
        again.backup(&mut buf2, "now").expect("backup again");
        let body = |b: &[u8]| String::from_utf8_lossy(b).lines().skip(1).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(body(&buf), body(&buf2), "every entry and the checksum survive a round trip");
        assert_eq!(again.count(Kind::User), 3);
    }

    #[test]
    fn a_damaged_or_truncated_backup_is_refused_and_leaves_nothing_behind() {
        let (_d, store) = seeded();
        let mut buf = Vec::new();
        store.backup(&mut buf, "now").expect("backup");
        let text = String::from_utf8(buf).expect("utf8");
        let truncated: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        let target = tempfile::tempdir().expect("tmp");
        let path = target.path().join("r1");
        assert!(restore(&path, &mut truncated.as_bytes()).is_err());
        assert!(!path.exists(), "a failed restore removes what it wrote");
        let edited = text.replacen("\"v\":\"", "\"v\":\"00", 1);
        assert!(restore(&target.path().join("r2"), &mut edited.as_bytes()).is_err());
    }

    #[test]
    fn restore_refuses_a_data_dir_that_is_not_empty() {
        let (d, store) = seeded();
        let mut buf = Vec::new();
        store.backup(&mut buf, "now").expect("backup");
        drop(store);
        let err = restore(d.path(), &mut buf.as_slice()).expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
