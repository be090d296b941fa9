//! `links preview` over 100,000 SCIM users and 100,000 accounts of an emulated Jira on loopback
//! (issue 9, "Done when": under 30 s). The store is seeded directly (not timed); the timed part is
//! the whole preview: the paged listing of every account, the in-memory indexes, the match of
//! every user and the orphans. Prints the wall time, the counts per status and peak RSS (VmHWM);
//! fails when the run takes 30 s or more.
//!
//! Mix of accounts: 40% carry the user's mapped username, 30% another name with the user's email,
//! 10% the mapped username with another email (conflict), 10% share an email in pairs
//! (ambiguous), 10% belong to nobody (orphans); the users without an account are `new`.
//!
//! Run: `cargo bench --bench links_preview` (release build). `LINKS_USERS` changes the count.

#[path = "../tests/support/atlassian_emulator/mod.rs"]
#[allow(dead_code)]
mod atlassian_emulator;
#[path = "support/memory.rs"]
mod memory;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Map, Value};

use atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::{Product, ReadPolicy};
use scimbridge::lifecycle::Jobs;
use scimbridge::store::{Actor, Kind, NoHook, Store, WriteCtx};

use memory::own_memory_mib as memory;

fn upn(i: usize) -> String {
    format!("user{i:06}@contoso.com")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("LINKS_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let jira = Emulator::start(Product::Jira).await;
    let now = Utc::now();
    jira.seed_accounts((0..users).map(|i| {
        let last = Some(now - chrono::Duration::days((i % 400) as i64));
        match i % 10 {
            0..=3 => (upn(i), upn(i), last, true),
            4..=6 => (format!("u{i:06}"), upn(i), last, i % 3 != 0),
            7 => (upn(i), format!("someone{i}@fabrikam.com"), last, true),
            // Pairs of accounts with one email: user i's address, held by two others.
            8 => (format!("twin-a{i:06}"), upn(i), last, true),
            _ => (format!("orphan{i:06}"), format!("orphan{i}@contoso.com"), last, false),
        }
    }));
    let (rss_seeded, _) = memory();

    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store");
    let actor = Actor("bench".into());
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ctx = WriteCtx { actor: &actor, now: &stamp, hook: &NoHook, if_match: None };
    let seeding = Instant::now();
    for i in 0..users {
        let mut attrs = Map::new();
        attrs.insert("userName".into(), Value::String(upn(i)));
        attrs.insert("externalId".into(), Value::String(format!("ext-{i}")));
        attrs.insert("emails".into(), json!([{"value": upn(i), "type": "work", "primary": true}]));
        attrs.insert("active".into(), Value::Bool(true));
        store.create(Kind::User, attrs, Vec::new(), &ctx).expect("create");
    }
    // The twins' second account (same email as the `8` rows), so those users are ambiguous.
    jira.seed_accounts((0..users).filter(|i| i % 10 == 8).map(|i| (format!("twin-b{i:06}"), upn(i), None, true)));
    store.flush_blocking().expect("flush");
    let seeded_in = seeding.elapsed();

    let toml = format!(
        "data_dir = \"{}\"\n[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n",
        tmp.path().display(),
        jira.base_url()
    );
    let env: BTreeMap<String, String> = [("ATL_TOKEN".to_string(), ATL_TOKEN.to_string())].into();
    let file = scimbridge::config::parse_file(&toml).expect("toml");
    let config = scimbridge::config::validate(file, &env).expect("config");
    let read = ReadPolicy { page_size: 1000, ..ReadPolicy::default() };
    let jobs = Jobs::new(store, config).expect("jobs").with_read_policy(read);

    let started = Instant::now();
    let preview = jobs.links_preview(None).await.expect("preview");
    let took = started.elapsed();
    let (rss, hwm) = memory();
    let t = &preview.targets[0];
    println!("links preview benchmark: {users} SCIM users against {} emulated Jira accounts", t.accounts);
    println!("  (store seeded with {users} users in {:.1} s, not timed)", seeded_in.as_secs_f64());
    println!("  per status: {:?}", t.counts);
    println!("  wall time: {:.2} s ({:.0} users/s)", took.as_secs_f64(), users as f64 / took.as_secs_f64());
    println!("  memory: VmRSS {rss:.1} MiB, VmHWM (peak) {hwm:.1} MiB; after seeding the emulator {rss_seeded:.1} MiB");
    println!("  (the emulator runs in this process and holds all accounts itself)");
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.users.len(), users, "every user has a row");
    let count = |k: &str| t.counts.get(k).copied().unwrap_or(0);
    let by_kind = |k: std::ops::RangeInclusive<usize>| (0..users).filter(|i| k.contains(&(i % 10))).count() as u64;
    assert_eq!(count("existing"), by_kind(0..=6), "40% by username + 30% by email");
    assert_eq!((count("conflict"), count("ambiguous")), (by_kind(7..=7), by_kind(8..=8)));
    assert!(count("ambiguous") > 0 && count("conflict") > 0 && count("orphan") > 0, "{:?}", t.counts);
    assert!(took < Duration::from_secs(30), "the preview took {took:?}, 30 s or more");
}
