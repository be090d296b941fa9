//! Offboarding latency and outbox delivery throughput against the Atlassian emulator on
//! loopback: 10,000 users are provisioned, then disabled through SCIM PATCH by 32 concurrent
//! clients (as Entra ID's default dialect sends it), and every deactivation is delivered to an
//! emulated Jira. Latency is "SCIM request accepted → Jira confirmed", as the worker records it
//! per intent in the audit log. Prints figures; asserts nothing.
//!
//! Run: `cargo bench --bench offboarding` (release build). `OFFBOARD_USERS` changes the count.

#[path = "../tests/support/atlassian_emulator/mod.rs"]
#[allow(dead_code)]
mod atlassian_emulator;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::Product;

const SCIM_TOKEN: &str = "bench-token-0123456789abcdef";
const CONNECTIONS: usize = 32;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("OFFBOARD_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let jira = Emulator::start(Product::Jira).await;
    for i in 0..users {
        jira.add_user(&format!("off{i}"));
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[policy]\ncreate_users = false\n[delivery]\nconcurrency = 32\n",
        jira.base_url()
    );
    let mut env = std::collections::BTreeMap::new();
    env.insert("SCIMBRIDGE_LISTEN".to_string(), "127.0.0.1:0".to_string());
    env.insert("SCIMBRIDGE_DATA_DIR".to_string(), tmp.path().display().to_string());
    env.insert("SCIMBRIDGE_TOKEN".to_string(), SCIM_TOKEN.to_string());
    env.insert("ATL_TOKEN".to_string(), ATL_TOKEN.to_string());
    let config =
        scimbridge::config::validate(scimbridge::config::parse_file(&toml).expect("toml"), &env).expect("config");
    let running = scimbridge::server::start(config).await.expect("server");
    let base = format!("http://{}/scim/v2", running.addr);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");

    // Provision through /Bulk (no intents: create_users = false).
    let t = Instant::now();
    let mut ids = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users",
                            "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("off{i}"), "active": true}}))
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
    println!("provisioned {users} users in {:.1}s", t.elapsed().as_secs_f64());

    // Disable everyone, 32 requests in flight.
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(ids.clone()));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (queue, client, base) = (queue.clone(), client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
            loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(id) = next else { break };
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
    while running.store.outbox_depth() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_done = started.elapsed();
    let mut latencies: Vec<u64> = Vec::with_capacity(users);
    for id in &ids {
        for r in running.store.audit_of(id).expect("audit") {
            if r["type"] == "delivery" && r["outcome"] == "delivered" {
                latencies.push(r["latency_ms"].as_u64().unwrap_or(0));
            }
        }
    }
    latencies.sort_unstable();
    let inactive = (0..users).filter(|i| jira.user(&format!("off{i}")).is_some_and(|u| !u.active)).count();
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!(
        "SCIM disables accepted: {users} in {:.2}s ({:.0}/s)",
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
    running.stop().await;
}
