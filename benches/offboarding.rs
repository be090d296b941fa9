//! Offboarding latency and outbox delivery throughput against the Atlassian emulator on
//! loopback: 10,000 users are provisioned, then disabled through SCIM PATCH by 32 concurrent
//! clients (as Entra ID's default dialect sends it), and every deactivation is delivered to an
//! emulated Jira. Latency is "SCIM request accepted → Jira confirmed", as the worker records it
//! per intent in the audit log. Prints figures; asserts nothing.
//!
//! Run: `cargo bench --bench offboarding` (release build). `OFFBOARD_USERS` changes the count;
//! `OFFBOARD_GUARD=off` turns the mass-offboarding brake off (the default counts every intent).
//! The server is the release binary in its own process; the emulator and the clients share
//! this one.
//!
//! Then the outage scenario (issue 11, `outage.rs`): Jira down for more than ten times the
//! whole retry budget of the delivery settings, 2,000 disables queued meanwhile; prints dead
//! letters (target 0), seconds from recovery to the last delivery (target < 10) and the calls
//! made to the down Jira (target: the probes alone). `OFFBOARD_SCENARIO=latency` or `outage`
//! runs only one.

#[path = "../tests/support/atlassian_emulator/mod.rs"]
#[allow(dead_code)]
mod atlassian_emulator;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::Product;

const SCIM_TOKEN: &str = "bench-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "bench-admin-0123456789abcdef";

async fn pending(client: &reqwest::Client, root: &str) -> u64 {
    let r = client.get(format!("{root}/admin/jobs?state=pending")).bearer_auth(ADMIN_TOKEN).send().await;
    match r {
        Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["total"].as_u64()).unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    }
}
const CONNECTIONS: usize = 32;

/// Creates `users` active SCIM users named `{prefix}{i}` through /Bulk, 500 a request; their ids.
async fn provision(client: &reqwest::Client, base: &str, prefix: &str, users: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users",
                            "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{prefix}{i}"), "active": true}}))
            .collect();
        let r: Value = client
            .post(format!("{base}/Bulk"))
            .bearer_auth(SCIM_TOKEN)
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
            .send()
            .await
            .expect("bulk")
            .json()
            .await
            .expect("bulk body");
        for op in r["Operations"].as_array().expect("operations") {
            ids.push(op["location"].as_str().expect("location").rsplit('/').next().expect("id").to_string());
        }
    }
    ids
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[path = "offboarding/outage.rs"]
mod outage;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let scenario = std::env::var("OFFBOARD_SCENARIO").unwrap_or_default();
    if scenario != "outage" {
        latency().await;
    }
    if scenario != "latency" {
        outage::run(env!("CARGO_BIN_EXE_scimbridge")).await;
    }
}

async fn latency() {
    let users: usize = std::env::var("OFFBOARD_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let jira = Emulator::start(Product::Jira).await;
    for i in 0..users {
        jira.add_user(&format!("off{i}"));
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    // The mass-offboarding brake (issue 12): `OFFBOARD_GUARD=on` (default) counts every
    // deactivation against a limit above the run's size, so its cost is measured and nothing is
    // held; `off` is `max_offboardings = 0` (no brake), the baseline to compare with.
    let guard_on = std::env::var("OFFBOARD_GUARD").map_or(true, |v| v != "off");
    let max_offboardings = if guard_on { users as u64 + 1 } else { 0 };
    println!("guard: {} (max_offboardings = {max_offboardings})", if guard_on { "on" } else { "off" });
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[policy]\ncreate_users = false\n[delivery]\nconcurrency = 32\n[guard]\nmax_offboardings = {max_offboardings}\n",
        jira.base_url()
    );
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(&cfg, toml).expect("config");
    // The server runs as its own release process with its own runtime, as in production; the
    // emulator and the IdP-side load share this process.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(["serve", "--config", cfg.to_str().expect("utf8")])
        .env("SCIMBRIDGE_DATA_DIR", tmp.path().join("data"))
        .env("SCIMBRIDGE_LISTEN", addr.to_string())
        .env("SCIMBRIDGE_TOKEN", SCIM_TOKEN)
        .env("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SCIMBRIDGE_LOG", "warn")
        .env("ATL_TOKEN", ATL_TOKEN)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the server");
    let base = format!("http://{addr}/scim/v2");
    let root = format!("http://{addr}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    for _ in 0..200 {
        if client.get(format!("{root}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Provision through /Bulk (no intents: create_users = false).
    let t = Instant::now();
    let ids = provision(&client, &base, "off", users).await;
    println!("provisioned {users} users in {:.1}s", t.elapsed().as_secs_f64());

    // Disable everyone, up to 32 requests in flight, paced at OFFBOARD_RATE disables a second
    // (default 500: five times what Entra ID's documented provisioning rate needs; 0 = as fast
    // as the server accepts them, which measures queueing behind the outbox as well).
    let rate: f64 = std::env::var("OFFBOARD_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(500.0);
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(ids.clone()));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (queue, client, base, sent) = (queue.clone(), client.clone(), base.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
            loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(id) = next else { break };
                let k = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if rate > 0.0 {
                    tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / rate)).into()).await;
                }
                let r = client.patch(format!("{base}/Users/{id}")).bearer_auth(SCIM_TOKEN).json(&body).send().await;
                assert!(r.is_ok_and(|r| r.status().is_success()), "PATCH failed");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let scim_done = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let inactive_count = || (0..users).filter(|i| jira.user(&format!("off{i}")).is_some_and(|u| !u.active)).count();
    while inactive_count() < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_done = started.elapsed();
    while pending(&client, &root).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each intent's latency as the worker recorded it, read back through the admin API.
    let mut latencies: Vec<u64> = Vec::with_capacity(users);
    for id in &ids {
        let v: Value = client
            .get(format!("{root}/admin/audit?user={id}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("audit body");
        for r in v["records"].as_array().cloned().unwrap_or_default() {
            if r["type"] == "delivery" && r["outcome"] == "delivered" {
                latencies.push(r["latency_ms"].as_u64().unwrap_or(0));
            }
        }
    }
    latencies.sort_unstable();
    let inactive = inactive_count();
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let pacing = if rate > 0.0 { format!("paced at {rate:.0}/s") } else { "unpaced: as fast as accepted".to_string() };
    println!(
        "SCIM disables accepted ({pacing}): {users} in {:.2}s ({:.0}/s)",
        scim_done.as_secs_f64(),
        users as f64 / scim_done.as_secs_f64()
    );
    println!(
        "deactivations delivered: {} of {users} (Jira shows {inactive} inactive) in {:.2}s → outbox throughput {:.0} intents/s",
        latencies.len(),
        all_done.as_secs_f64(),
        latencies.len() as f64 / all_done.as_secs_f64()
    );
    let p99 = percentile(&latencies, 99.0);
    println!(
        "offboarding latency (SCIM accepted → Jira confirmed): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms — target p99 < 250 ms: {}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        p99,
        latencies.last().copied().unwrap_or(0),
        if p99 < 250 { "PASS" } else { "MISS" }
    );
    println!("note: the emulator, the server and the load generator share this machine's cores.");
    let _ = child.kill();
    let _ = child.wait();
}
