//! `kill -9` the real binary with 1,000 deactivations pending (Jira is down), restart it: every
//! intent is delivered, none twice. (The mass-offboarding brake is off: every disable is delivered.)

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::child::serve;
use crate::support::server::{eventually, ADMIN_TOKEN, TOKEN};
use scimbridge::atlassian::Product;

const USERS: usize = 1000;

async fn pending_jobs(client: &reqwest::Client, root: &str) -> usize {
    let r = client.get(format!("{root}/admin/jobs?state=pending")).bearer_auth(ADMIN_TOKEN).send().await;
    match r {
        Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["total"].as_u64()).unwrap_or(0) as usize,
        Err(_) => 0,
    }
}

async fn bulk(client: &reqwest::Client, base: &str, ops: Vec<Value>) -> Value {
    client
        .post(format!("{base}/Bulk"))
        .bearer_auth(TOKEN)
        .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
        .send()
        .await
        .expect("bulk")
        .json()
        .await
        .expect("bulk body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_a_thousand_intents_pending_loses_none_and_applies_none_twice() {
    let jira = Emulator::start(Product::Jira).await;
    for i in 0..USERS {
        jira.add_user(&format!("crash{i}"));
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n\n[policy]\ncreate_users = false\n\n[delivery]\nbackoff_initial_ms = 200\nbackoff_max_secs = 1\nmax_attempts = 100000\nconcurrency = 16\n\n[guard]\nmax_offboardings = 0\n",
            jira.base_url()
        ),
    )
    .expect("write config");
    let data = tmp.path().join("data");
    let env = [("ATL_TOKEN", ATL_TOKEN)];
    let first = serve(&data, Some(&cfg), &env).await;
    let client = reqwest::Client::new();
    let root = first.base.trim_end_matches("/scim/v2").to_string();

    // Provision, then take Jira down and disable everyone: the intents pile up in the outbox.
    let mut ids = Vec::with_capacity(USERS);
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users",
                             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("crash{i}"), "active": true}}))
            .collect();
        let r = bulk(&client, &first.base, ops).await;
        for op in r["Operations"].as_array().expect("operations") {
            assert_eq!(op["status"], "201", "{op}");
            ids.push(op["location"].as_str().expect("location").rsplit('/').next().expect("id").to_string());
        }
    }
    jira.down_for(Duration::from_secs(3600));
    for chunk in ids.chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|id| json!({"method": "PATCH", "path": format!("/Users/{id}"),
                             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}}))
            .collect();
        let r = bulk(&client, &first.base, ops).await;
        assert!(r["Operations"].as_array().expect("ops").iter().all(|o| o["status"] == "200"), "{r}");
    }
    let pending = pending_jobs(&client, &root).await;
    assert_eq!(pending, USERS, "every disable left one pending deactivation");

    // SIGKILL while the worker is busy retrying against the 503s.
    let mut first = first;
    first.child.start_kill().expect("kill -9");
    let _ = first.child.wait().await;
    assert!(
        jira.received().iter().all(|r| r.status != Some(200) || r.method == "GET"),
        "nothing was applied while Jira was down"
    );

    jira.down_for(Duration::ZERO);
    let second = serve(&data, Some(&cfg), &env).await;
    let root2 = second.base.trim_end_matches("/scim/v2").to_string();
    eventually("every user inactive in Jira", Duration::from_secs(120), || {
        (0..USERS).all(|i| jira.user(&format!("crash{i}")).is_some_and(|u| !u.active))
    })
    .await;
    let mut drained = false;
    for _ in 0..500 {
        if pending_jobs(&client, &root2).await == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(drained, "the outbox drains after restart");
    let applied = jira
        .received()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/rest/api/2/user") && r.status == Some(200))
        .count();
    assert_eq!(applied, USERS, "each deactivation was applied exactly once");
    drop(second);
}
