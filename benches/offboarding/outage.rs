//! The outage scenario of `cargo bench --bench offboarding` (issue 11): Jira is down for more
//! than ten times the whole retry budget of the delivery settings below while 2,000 disables are
//! queued; then it comes back. Prints the dead letters (target 0), the seconds from recovery to
//! the last delivery (target < 10) and the calls made to the down Jira (target: the probes
//! alone, i.e. bounded by `probe_interval_secs`, not by the backlog).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::Product;

const SCIM_TOKEN: &str = "bench-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "bench-admin-0123456789abcdef";
const CONNECTIONS: usize = 32;
const BACKOFF_INITIAL_MS: u64 = 50;
const BACKOFF_MAX_MS: u64 = 1000;
const MAX_ATTEMPTS: u32 = 5;

/// The longest time per-job backoff took from the first to the last of `MAX_ATTEMPTS` attempts
/// (jitter at most the full delay): after this, per-job retries would have dead-lettered.
fn retry_budget() -> Duration {
    (1..MAX_ATTEMPTS).map(|a| Duration::from_millis((BACKOFF_INITIAL_MS << (a - 1)).min(BACKOFF_MAX_MS))).sum()
}

async fn jobs_total(client: &reqwest::Client, root: &str, state: &str) -> u64 {
    let r = client.get(format!("{root}/admin/jobs?state={state}")).bearer_auth(ADMIN_TOKEN).send().await;
    match r {
        Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["total"].as_u64()).unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    }
}

pub async fn run(binary: &str) {
    let users: usize = std::env::var("OUTAGE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let budget = retry_budget();
    // Ten retry budgets at least, and long enough to queue every disable while Jira is down.
    let outage = Duration::from_secs(std::env::var("OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(15))
        .max(budget * 10);
    let jira = Emulator::start(Product::Jira).await;
    for i in 0..users {
        jira.add_user(&format!("out{i}"));
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[policy]\ncreate_users = false\n[delivery]\nconcurrency = 32\nbackoff_initial_ms = {BACKOFF_INITIAL_MS}\nbackoff_max_secs = {}\nmax_attempts = {MAX_ATTEMPTS}\nprobe_interval_secs = 1\ndown_after_failures = 3\n[guard]\nmax_offboardings = {}\n",
        jira.base_url(),
        BACKOFF_MAX_MS / 1000,
        // The brake (issue 12) counts every disable but holds none: this measures delivery.
        users + 1
    );
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(&cfg, toml).expect("config");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut child = std::process::Command::new(binary)
        .args(["serve", "--config", cfg.to_str().expect("utf8")])
        .env("SCIMBRIDGE_DATA_DIR", tmp.path().join("data"))
        .env("SCIMBRIDGE_LISTEN", addr.to_string())
        .env("SCIMBRIDGE_TOKEN", SCIM_TOKEN)
        .env("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SCIMBRIDGE_LOG", "error")
        .env("ATL_TOKEN", ATL_TOKEN)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the server");
    let (base, root) = (format!("http://{addr}/scim/v2"), format!("http://{addr}"));
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    for _ in 0..200 {
        if client.get(format!("{root}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = super::provision(&client, &base, "out", users).await;
    // Let the start-up health read go out before the outage, so every call counted is delivery's.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mark = jira.received().len();

    jira.down_for(outage);
    let down_at = Instant::now();
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
    let queued_in = down_at.elapsed();
    let recovered = down_at + outage;
    tokio::time::sleep_until(recovered.into()).await;
    let during: Vec<_> = jira.received()[mark..].iter().filter(|r| r.status == Some(503)).cloned().collect();
    let probes = during.iter().filter(|r| r.path.starts_with("/rest/api/2/myself")).count();

    let deadline = Instant::now() + Duration::from_secs(600);
    let inactive = || (0..users).filter(|i| jira.user(&format!("out{i}")).is_some_and(|u| !u.active)).count();
    while inactive() < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_last = recovered.elapsed();
    while jobs_total(&client, &root, "pending").await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = jobs_total(&client, &root, "dead").await;
    let done = inactive();

    println!();
    println!(
        "outage: Jira down {:.1}s = {:.0}× the whole retry budget ({:.2}s: {MAX_ATTEMPTS} attempts, backoff {BACKOFF_INITIAL_MS} ms doubling to {}s); probe every 1s; {users} disables queued in {:.1}s while down",
        outage.as_secs_f64(),
        outage.as_secs_f64() / budget.as_secs_f64(),
        budget.as_secs_f64(),
        BACKOFF_MAX_MS / 1000,
        queued_in.as_secs_f64()
    );
    println!("outage: dead letters {dead} — target 0: {}", if dead == 0 { "PASS" } else { "MISS" });
    println!(
        "outage: deactivations delivered {done} of {users}; recovery → last delivery {:.2}s — target < 10s: {}",
        to_last.as_secs_f64(),
        if done == users && to_last < Duration::from_secs(10) { "PASS" } else { "MISS" }
    );
    println!(
        "outage: calls to the down Jira {} = {probes} probes + {} attempts that found it down before the circuit opened (per-job backoff made one per attempt per user: up to {MAX_ATTEMPTS} × {users}) — target: the probes alone: {}",
        during.len(),
        during.len() - probes,
        if during.len() == probes { "PASS" } else { "bounded by concurrency (32) + probes, not by the backlog" }
    );
    println!("note: the emulator, the server and the load generator share this machine's cores.");
    let _ = child.kill();
    let _ = child.wait();
}
