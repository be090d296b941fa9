//! A dry-run inactive-user cleanup over 100,000 accounts of an emulated Jira on loopback (issue 4
//! "Benchmark"): the listing is streamed page by page into the activity snapshot and judged as it
//! arrives, so memory stays bounded by a page plus the affected accounts. Prints the wall time,
//! the accounts per second, the number affected and peak RSS (VmHWM); fails when the run takes
//! 60 s or more.
//!
//! Run: `cargo bench --bench lifecycle` (release build). `LIFECYCLE_USERS` changes the count.

#[path = "../tests/support/atlassian_emulator/mod.rs"]
#[allow(dead_code)]
mod atlassian_emulator;
#[path = "support/memory.rs"]
mod memory;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;

use atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::{Product, ReadPolicy};
use scimbridge::lifecycle::{Jobs, Mode};
use scimbridge::store::Store;

use memory::own_memory_mib as memory;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("LIFECYCLE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let jira = Emulator::start(Product::Jira).await;
    let now = Utc::now();
    // Every 4th account inactive for 100-199 days, every 10th never logged in, the rest recent.
    jira.seed_users((0..users).map(|i| {
        let last = match i % 10 {
            0 => None,
            _ if i % 4 == 0 => Some(now - chrono::Duration::days(100 + (i % 100) as i64)),
            _ => Some(now - chrono::Duration::days((i % 30) as i64)),
        };
        (format!("user{i:06}"), last, true)
    }));
    let (rss_seeded, _) = memory();
    let tmp = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "data_dir = \"{}\"\n[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[cleanup]\ninactive_days = 90\n",
        tmp.path().display(),
        jira.base_url()
    );
    let env: BTreeMap<String, String> = [("ATL_TOKEN".to_string(), ATL_TOKEN.to_string())].into();
    let file = scimbridge::config::parse_file(&toml).expect("toml");
    let config = scimbridge::config::validate(file, &env).expect("config");
    let store = Store::open(tmp.path()).expect("store");
    let read = ReadPolicy { page_size: 1000, ..ReadPolicy::default() };
    let jobs = Jobs::new(store, config).expect("jobs").with_read_policy(read);

    let started = Instant::now();
    let report = jobs.cleanup(Mode::DryRun, None, now).await.expect("cleanup");
    let took = started.elapsed();
    let (rss, hwm) = memory();
    let accounts = report.targets.iter().map(|t| t.accounts).sum::<u64>();
    println!("lifecycle benchmark: dry-run cleanup of {users} emulated Jira accounts");
    println!("  accounts listed and judged: {accounts}");
    println!("  affected (would be deactivated): {}", report.findings.len());
    println!("  wall time: {:.2} s ({:.0} accounts/s)", took.as_secs_f64(), accounts as f64 / took.as_secs_f64());
    println!("  memory: VmRSS {rss:.1} MiB, VmHWM (peak) {hwm:.1} MiB; after seeding the emulator {rss_seeded:.1} MiB");
    println!("  (the emulator runs in this process and holds all {users} users itself)");
    assert!(report.targets.iter().all(|t| t.error.is_none()), "{:?}", report.targets);
    assert!(took < Duration::from_secs(60), "the dry run took {took:?}, over 60 s");
}
