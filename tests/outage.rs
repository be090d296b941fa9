//! Issue 11: deliveries that ride out real outages. Each target has a circuit: a target that
//! stops answering is marked down, its intents wait behind ONE probe every `probe_interval_secs`,
//! attempts while it is down are not counted, and it resumes at once when a probe answers. Each
//! target has its own concurrency budget. Outages here are time-compressed with short backoff
//! and probe settings, and last far longer (more than ten times) than the whole retry budget of
//! those settings, so under per-job backoff every intent would have died.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, Fault, TARGET_ENV};
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);
const CONCURRENCY: usize = 4;
const DOWN_AFTER: usize = 3;
const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_INITIAL_MS: u64 = 50;

/// The whole retry budget of these settings: the waits between `MAX_ATTEMPTS` attempts at
/// most (backoff doubling from 50 ms, jitter at most the full delay).
fn retry_budget() -> Duration {
    (1..MAX_ATTEMPTS).map(|a| Duration::from_millis(BACKOFF_INITIAL_MS << (a - 1))).sum()
}

/// A bridge to `targets` (each block with `target_extra` added) and `extra` in `[delivery]`.
async fn bridge_with(targets: &[(&str, &Emulator)], target_extra: &str, extra: &str) -> TestServer {
    let mut toml: String =
        targets.iter().map(|(n, e)| format!("{}{target_extra}", e.target_toml(n))).collect::<Vec<_>>().join("\n");
    toml.push_str(&format!(
        "\n[policy]\ncreate_users = false\n[delivery]\nbackoff_initial_ms = {BACKOFF_INITIAL_MS}\nbackoff_max_secs = 1\nmax_attempts = {MAX_ATTEMPTS}\nconcurrency = {CONCURRENCY}\ndown_after_failures = {DOWN_AFTER}\nprobe_interval_secs = 1\n{extra}"
    ));
    TestServer::start_toml(&toml, &TARGET_ENV).await
}

async fn bridge(targets: &[(&str, &Emulator)], extra: &str) -> TestServer {
    bridge_with(targets, "", extra).await
}

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
}

async fn readyz(s: &TestServer) -> (u16, Value) {
    let r = s.client.get(format!("{}/readyz", s.root)).send().await.expect("readyz");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn metrics(s: &TestServer) -> String {
    let r = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics");
    r.text().await.expect("text")
}

async fn jobs(s: &TestServer, state: &str) -> Vec<Value> {
    let r = s
        .client
        .get(format!("{}/admin/jobs?state={state}", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("jobs");
    let body: Value = r.json().await.expect("jobs body");
    body["jobs"].as_array().cloned().unwrap_or_default()
}

/// Users `prefix0..n` in the emulator and in the bridge; their SCIM ids.
async fn users(s: &TestServer, emus: &[&Emulator], prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}{i}");
        for e in emus {
            e.add_user(&name);
        }
        ids.push(s.create_user(&name).await);
    }
    ids
}

fn deliveries(s: &TestServer, id: &str) -> Vec<Value> {
    s.store().audit_of(id).expect("audit").into_iter().filter(|r| r["type"] == "delivery").collect()
}

#[tokio::test]
async fn a_jira_down_far_longer_than_the_retry_budget_loses_no_offboarding_and_gets_only_probes() {
    const USERS: usize = 30;
    let outage = Duration::from_secs(5);
    assert!(outage >= retry_budget() * 10, "the outage outlasts ten retry budgets ({:?})", retry_budget());
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let ids = users(&s, &[&jira], "lv", USERS).await;
    let mark = jira.received().len();

    jira.down_for(outage);
    let down_at = Instant::now();
    for id in &ids {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    // While it is down: readiness stays 200 (the outbox holds the intents) and says so.
    let mut seen_down = Value::Null;
    while down_at.elapsed() < outage - Duration::from_millis(500) {
        let (status, body) = readyz(&s).await;
        assert_eq!(status, 200, "a target outage never fails readiness: {body}");
        if body["targets"]["jira"]["state"] == "down" {
            seen_down = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen_down["targets"]["jira"]["state"], "down", "readyz shows jira down during the outage");
    assert!(seen_down["targets"]["jira"]["down_since"].is_string(), "{seen_down}");
    assert!(seen_down["outbox"]["pending"].as_u64().is_some_and(|n| n > 0), "{seen_down}");
    let text = metrics(&s).await;
    assert!(text.contains("scimbridge_target_state{target=\"jira\",state=\"down\"} 1"), "{text}");

    let recovered = down_at + outage;
    tokio::time::sleep_until(recovered.into()).await;
    let during: Vec<_> = jira.received()[mark..].iter().filter(|r| r.status == Some(503)).cloned().collect();
    let probes = during.iter().filter(|r| r.path.starts_with("/rest/api/2/myself")).count();
    let first_wave = during.len() - probes;
    // Bounded by the probe rate (one a second) and the calls that found the outage (at most one
    // per concurrency slot, plus the retries of the lanes that failed before the circuit opened),
    // not by the backlog: per-job backoff made 3 calls per user here (90).
    assert!(probes <= outage.as_secs() as usize + 1, "{probes} probes in {outage:?}: {during:#?}");
    assert!(first_wave <= CONCURRENCY + DOWN_AFTER, "{first_wave} calls besides the probes: {during:#?}");
    assert!(during.len() < USERS, "calls to the down target ({}) grow with the backlog", during.len());

    // After recovery every pending offboarding lands within 10 s.
    eventually("every leaver deactivated within 10 s of recovery", Duration::from_secs(10), || {
        (0..USERS).all(|i| jira.user(&format!("lv{i}")).is_some_and(|u| !u.active))
    })
    .await;
    assert!(recovered.elapsed() < Duration::from_secs(10));
    eventually("the outcomes are recorded", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(s.store().dead_letter_count(), 0, "nothing dead-lettered because Jira was down");
    for id in &ids {
        let recs = deliveries(&s, id);
        let delivered: Vec<&Value> = recs.iter().filter(|r| r["outcome"] == "delivered").collect();
        assert_eq!(delivered.len(), 1, "{recs:#?}");
        assert_eq!(delivered[0]["attempt"], 1, "attempts while Jira was down are not counted: {recs:#?}");
        assert!(recs.iter().filter(|r| r["outcome"] == "retry").all(|r| r["charged"] == false), "{recs:#?}");
    }
    let (status, body) = readyz(&s).await;
    assert_eq!((status, &body["targets"]["jira"]["state"]), (200, &json!("up")), "{body}");
    assert_eq!(body["outbox"]["oldest_pending_age_secs"], 0, "{body}");
    // The moments it went down and came back are on record (the notice seam's facts).
    eventually("down and up are in the audit log", WAIT, || {
        let events: Vec<Value> =
            s.store().audit_of("target:jira").expect("audit").into_iter().map(|r| r["event"].clone()).collect();
        events == vec![json!("target_down"), json!("target_up")]
    })
    .await;
    let down = s.store().audit_of("target:jira").expect("audit").remove(0);
    assert!(down["pending"].as_u64().is_some_and(|n| n > 0) && down["since"].is_string(), "{down}");
}

#[tokio::test]
async fn a_hung_jira_does_not_slow_confluence() {
    const USERS: usize = 6;
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    // Jira's calls time out after 30 s: long enough that no Jira attempt ends during the test's
    // first phase, so Confluence must finish while every Jira call still hangs.
    let s = bridge_with(&[("jira", &jira), ("wiki", &wiki)], "timeout_secs = 30\n", "").await;
    let ids = users(&s, &[&jira, &wiki], "hg", USERS).await;
    eventually("the outbox is idle", WAIT, || s.store().outbox_depth() == 0).await;
    let mark = jira.received().len();
    jira.hang(true);
    for id in &ids {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    eventually("Confluence deactivates everyone while Jira hangs", WAIT, || {
        (0..USERS).all(|i| wiki.user(&format!("hg{i}")).is_some_and(|u| !u.active))
    })
    .await;
    // Behaviour, not timing: no Jira attempt has ended yet (no outcome recorded, no account
    // changed), and Jira holds no more calls than its own budget.
    for id in &ids {
        let jira_outcomes: Vec<Value> = deliveries(&s, id).into_iter().filter(|r| r["target"] == "jira").collect();
        assert!(jira_outcomes.is_empty(), "a Jira attempt ended before Confluence was done: {jira_outcomes:#?}");
    }
    assert!((0..USERS).all(|i| jira.user(&format!("hg{i}")).is_some_and(|u| u.active)));
    let held = jira.received().len() - mark;
    assert!(held <= CONCURRENCY, "{held} calls hang at Jira, its budget is {CONCURRENCY}");

    jira.hang(false);
    eventually("Jira catches up once it answers again", WAIT, || {
        (0..USERS).all(|i| jira.user(&format!("hg{i}")).is_some_and(|u| !u.active))
    })
    .await;
    eventually("everything recorded", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(s.store().dead_letter_count(), 0);
}

#[tokio::test]
async fn a_permanent_answer_dead_letters_at_once_and_a_409_or_a_429_is_not_an_outage() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let ids = users(&s, &[&jira], "pm", 6).await;
    eventually("the outbox is idle", WAIT, || s.store().outbox_depth() == 0).await;

    // A 403 is permanent: a dead letter after one attempt.
    jira.fail_next(1, Fault::status(403));
    assert_eq!(s.patch(&format!("/Users/{}", ids[0]), &disable()).await.status, 200);
    eventually("a dead letter at once", WAIT, || s.store().dead_letter_count() == 1).await;
    let dead = jobs(&s, "dead").await;
    assert_eq!(dead[0]["attempts"], 1, "{dead:#?}");

    // More 409s in a row than down_after_failures, one per user: answers about those users.
    jira.fail_next(DOWN_AFTER + 1, Fault::status(409));
    for id in &ids[1..=DOWN_AFTER + 1] {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    eventually("each 409 is a dead letter", WAIT, || s.store().dead_letter_count() == DOWN_AFTER + 2).await;
    let (status, body) = readyz(&s).await;
    assert_eq!((status, &body["targets"]["jira"]["state"]), (200, &json!("up")), "{body}");

    // 429s, more than max_attempts: rate limiting, waited out, never charged, never a dead letter.
    let last = ids.last().expect("a user");
    jira.fail_next(MAX_ATTEMPTS as usize + 1, Fault::rate_limited("1"));
    assert_eq!(s.patch(&format!("/Users/{last}"), &disable()).await.status, 200);
    eventually("delivered after the rate limit", WAIT, || jira.user("pm5").is_some_and(|u| !u.active)).await;
    eventually("recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let recs = deliveries(&s, last);
    let delivered = recs.iter().find(|r| r["outcome"] == "delivered").expect("delivered");
    assert_eq!(delivered["attempt"], 1, "429s are not counted: {recs:#?}");
    assert_eq!(recs.iter().filter(|r| r["outcome"] == "retry").count(), MAX_ATTEMPTS as usize + 1, "{recs:#?}");
    assert_eq!(s.store().dead_letter_count(), DOWN_AFTER + 2);
    let text = metrics(&s).await;
    assert!(text.contains("scimbridge_target_state{target=\"jira\",state=\"up\"} 1"), "{text}");
    assert!(text.contains("scimbridge_target_probes_total{target=\"jira\"} 0"), "never marked down: {text}");
}

#[tokio::test]
async fn max_age_still_makes_a_dead_letter_while_the_target_is_down_and_says_so() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "max_age_secs = 2\n").await;
    let ids = users(&s, &[&jira], "ag", 1).await;
    jira.down_for(Duration::from_secs(3600));
    assert_eq!(s.patch(&format!("/Users/{}", ids[0]), &disable()).await.status, 200);
    eventually("too old: a dead letter", WAIT, || s.store().dead_letter_count() == 1).await;
    let dead = jobs(&s, "dead").await;
    let error = dead[0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("max_age_secs") && error.contains("jira"), "{dead:#?}");
    let text = metrics(&s).await;
    assert!(text.contains("scimbridge_dead_letters_max_age_total{target=\"jira\"} 1"), "{text}");
    let (status, body) = readyz(&s).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["targets"]["jira"]["state"], "down", "{body}");
    assert_eq!(body["targets"]["jira"]["dead_letters_by_max_age"], 1, "{body}");
}
