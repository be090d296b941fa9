//! `target_down` notifications (issue 12 §4): a target down for longer than `[notify]
//! target_down_secs` sends ONE notice for the outage, once it has lasted that long (not when it
//! goes down); a target back sooner sends none. Time-compressed: `target_down_secs = 2`, one probe
//! a second, against the Jira emulator's `down_for` and a webhook receiver on loopback.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TARGET_ENV};
use crate::support::server::{eventually, TestServer};
use crate::support::webhook::WebhookReceiver;
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(30);
const TARGET_DOWN_SECS: u64 = 2;

async fn bridge(jira: &Emulator, hook: &WebhookReceiver, target_down_secs: u64) -> TestServer {
    let toml = format!(
        "{}\n[policy]\ncreate_users = false\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 3\nconcurrency = 4\ndown_after_failures = 3\nprobe_interval_secs = 1\n[notify]\ntarget_down_secs = {target_down_secs}\n[[notify.webhook]]\nurl_env = \"HOOK_URL\"\nformat = \"json\"\nsecret_env = \"HOOK_SECRET\"\nevents = [\"target_down\"]\n",
        jira.target_toml("jira")
    );
    let url = hook.url();
    let mut env: Vec<(&str, &str)> = TARGET_ENV.to_vec();
    env.extend([("HOOK_URL", url.as_str()), ("HOOK_SECRET", "k3y-for-the-json-webhook-0123456789")]);
    TestServer::start_toml(&toml, &env).await
}

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
}

/// Users in Jira and the bridge, then Jira down for `outage` while they are disabled.
async fn outage_during_offboarding(s: &TestServer, jira: &Emulator, prefix: &str, outage: Duration) -> Instant {
    let mut ids = Vec::new();
    for i in 0..10 {
        let name = format!("{prefix}{i}");
        jira.add_user(&name);
        ids.push(s.create_user(&name).await);
    }
    jira.down_for(outage);
    let down_at = Instant::now();
    for id in &ids {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    down_at
}

/// The circuit's own records of the outage (`target_down`, `target_up`) in the audit log.
fn transitions(s: &TestServer, event: &str) -> usize {
    s.store().audit_of("target:jira").map(|r| r.iter().filter(|r| r["event"] == event).count()).unwrap_or(0)
}

#[tokio::test]
async fn a_target_down_longer_than_target_down_secs_is_notified_once_for_the_outage() {
    let jira = Emulator::start(Product::Jira).await;
    let hook = WebhookReceiver::start().await;
    let s = bridge(&jira, &hook, TARGET_DOWN_SECS).await;
    let outage = Duration::from_secs(TARGET_DOWN_SECS * 4);
    let down_at = outage_during_offboarding(&s, &jira, "long", outage).await;
    eventually("the circuit opens", WAIT, || transitions(&s, "target_down") == 1).await;
    assert!(hook.accepted().is_empty(), "not notified the moment it goes down: {:#?}", hook.accepted());

    eventually("the target_down notice", WAIT, || !hook.accepted().is_empty()).await;
    assert!(down_at.elapsed() >= Duration::from_secs(TARGET_DOWN_SECS), "only once down that long");
    eventually("the target is back and the outbox drains", WAIT, || {
        transitions(&s, "target_up") == 1 && s.store().outbox_depth() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(TARGET_DOWN_SECS + 1)).await;
    let hits = hook.accepted();
    assert_eq!(hits.len(), 1, "one notice per outage, not one per probe or lane: {hits:#?}");
    let body = hits[0].json();
    assert_eq!((&body["event"], &body["data"]["target"]), (&json!("target_down"), &json!("jira")), "{body}");
    assert!(body["data"]["down_secs"].as_u64().is_some_and(|d| d >= TARGET_DOWN_SECS), "{body}");
    assert!(body["data"]["since"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    assert!(body["data"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn a_target_back_before_target_down_secs_notifies_nobody() {
    let jira = Emulator::start(Product::Jira).await;
    let hook = WebhookReceiver::start().await;
    // Back after 1.2 s, answered by the second probe (2 s): well inside 4 s.
    let threshold = 4;
    let s = bridge(&jira, &hook, threshold).await;
    let outage = Duration::from_millis(1200);
    let down_at = outage_during_offboarding(&s, &jira, "short", outage).await;
    eventually("the circuit opened and closed again", WAIT, || {
        transitions(&s, "target_down") == 1 && transitions(&s, "target_up") == 1
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    // Past the threshold from the moment it went down.
    tokio::time::sleep_until((down_at + Duration::from_secs(threshold + 2)).into()).await;
    assert!(hook.accepted().is_empty(), "a short outage is not notified: {:#?}", hook.accepted());
    assert_eq!(s.store().pending_notice_count(), 0, "nor stored to be sent later");
    s.stop().await;
}
