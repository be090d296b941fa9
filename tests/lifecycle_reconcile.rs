//! Drift reconciliation: an offboarded user re-enabled by hand in Jira and a member added to a
//! synced group outside the IdP are found with their reasons; a dry run only reports, apply
//! repairs through the outbox.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

async fn post(s: &TestServer, path: &str) -> (u16, Value) {
    let r = s.client.post(format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn rows(r: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["username"].as_str().unwrap_or("").to_string(), f["action"].as_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn reconcile_finds_a_hand_re_enabled_user_and_a_foreign_group_member_and_repairs_only_on_apply() {
    let jira = Emulator::start(Product::Jira).await;
    // "devs" is created by scimbridge (it touches only groups it created or maps).
    jira.add_user("mallory");
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        jira.base_url()
    );
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let ann = s.create_user("ann").await;
    let bob = s.create_user("bob").await;
    s.create_group("devs", &[&bob]).await;
    eventually("ann and bob exist, bob in devs", WAIT, || {
        jira.user("ann").is_some() && jira.user("bob").is_some_and(|u| u.groups.contains("devs"))
    })
    .await;
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(s.patch(&format!("/Users/{ann}"), &off).await.status, 200);
    eventually("ann deactivated", WAIT, || jira.user("ann").is_some_and(|u| !u.active)).await;
    eventually("outbox drained", WAIT, || s.store().outbox_depth() == 0).await;
    // Drift made by hand in Jira.
    jira.set_active("ann", true);
    jira.add_member("mallory", "devs");

    let (status, dry) = post(&s, "/admin/reconcile?mode=dry-run").await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        rows(&dry),
        [("ann".into(), "deactivate".into()), ("mallory".into(), "remove_from_group".into())],
        "{dry:#}"
    );
    let reasons: Vec<&str> =
        dry["findings"].as_array().into_iter().flatten().filter_map(|f| f["detail"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("re-enabled outside the IdP")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("added outside the IdP")), "{reasons:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.store().outbox_depth(), 0, "a dry run queues nothing");
    assert!(
        jira.user("ann").is_some_and(|u| u.active) && jira.user("mallory").is_some_and(|u| u.groups.contains("devs"))
    );

    let (status, applied) = post(&s, "/admin/reconcile?mode=apply").await;
    assert_eq!((status, applied["enqueued"].clone()), (200, json!(2)), "{applied}");
    eventually("drift repaired", WAIT, || {
        jira.user("ann").is_some_and(|u| !u.active) && jira.user("mallory").is_some_and(|u| !u.groups.contains("devs"))
    })
    .await;
    assert!(jira.user("bob").is_some_and(|u| u.active && u.groups.contains("devs")));
    assert!(jira.user("mallory").is_some_and(|u| u.active), "only the foreign membership is removed");
    let (_, again) = post(&s, "/admin/reconcile").await;
    assert!(rows(&again).is_empty(), "nothing left: {again:#}");
}
