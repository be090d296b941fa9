//! Bulk deactivation and reactivation through the admin API, one test per selector: a Jira
//! group, a Bitbucket user directory (deactivation there is removal from the licence groups),
//! inactivity, and a CSV list; admins are never deactivated, dry run changes nothing.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::Emulator;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

async fn bridge(emu: &Emulator, extra: &str) -> TestServer {
    let p = emu.product();
    let toml = format!(
        "[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\n{}{extra}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        emu.base_url(),
        emu.credentials_toml("ATL_TOKEN")
    );
    TestServer::start_toml(&toml, &[("ATL_TOKEN", emu.secret())]).await
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = s
        .client
        .post(format!("{}{path}", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(report: &Value) -> Vec<String> {
    let mut n: Vec<String> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["username"].as_str().map(str::to_string))
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn deactivating_a_group_previews_then_deactivates_its_members_but_never_an_admin() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users(["c1", "c2", "boss", "staff"].iter().map(|n| (n.to_string(), days_ago(1), true)));
    for n in ["c1", "c2", "boss"] {
        jira.add_member(n, "contractors");
    }
    jira.add_member("boss", "jira-system-administrators");
    let s = bridge(&jira, "").await;
    let (status, dry) = post(&s, "/admin/deactivate", json!({"target": "jira", "group": "contractors"})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(names(&dry), ["c1", "c2"]);
    assert_eq!(dry["targets"][0]["skipped"]["admin"], 1);
    assert!(jira.user("c1").is_some_and(|u| u.active), "dry run is the default");
    let (status, done) =
        post(&s, "/admin/deactivate", json!({"target": "jira", "group": "contractors", "mode": "apply"})).await;
    assert_eq!((status, done["enqueued"].clone()), (200, json!(2)), "{done}");
    eventually("c1 and c2 inactive", WAIT, || ["c1", "c2"].iter().all(|n| jira.user(n).is_some_and(|u| !u.active)))
        .await;
    assert!(jira.user("boss").is_some_and(|u| u.active) && jira.user("staff").is_some_and(|u| u.active));

    // Reactivation by CSV list picks only inactive accounts.
    let (status, back) = post(
        &s,
        "/admin/reactivate",
        json!({"target": "jira", "usernames": ["c1", "staff", "nobody"], "mode": "apply"}),
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(names(&back), ["c1"]);
    assert_eq!(back["targets"][0]["skipped"]["already active"], 1);
    assert_eq!(back["targets"][0]["skipped"]["not found in the target"], 1);
    eventually("c1 active again", WAIT, || jira.user("c1").is_some_and(|u| u.active)).await;
    assert!(jira.user("c2").is_some_and(|u| !u.active));
}

#[tokio::test]
async fn deactivating_by_inactivity_and_by_csv_picks_exactly_the_selected_accounts() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users(
        [("a", days_ago(50)), ("b", days_ago(20)), ("c", days_ago(200))].iter().map(|(n, t)| (n.to_string(), *t, true)),
    );
    let s = bridge(&jira, "").await;
    let (_, r) = post(&s, "/admin/deactivate", json!({"target": "jira", "inactive_days": 30})).await;
    assert_eq!(names(&r), ["a", "c"], "{r}");
    let (_, r) = post(
        &s,
        "/admin/deactivate",
        json!({"target": "jira", "usernames": ["b"], "action": "delete", "mode": "apply"}),
    )
    .await;
    assert_eq!(names(&r), ["b"], "{r}");
    assert_eq!(r["findings"][0]["action"], "deactivate+delete");
    eventually("b deleted", WAIT, || jira.user("b").is_some_and(|u| u.deleted)).await;
    let (status, bad) = post(&s, "/admin/deactivate", json!({"target": "jira"})).await;
    assert_eq!(status, 400, "no selector: {bad}");
    let (status, _) = post(&s, "/admin/deactivate", json!({"target": "nope", "group": "g"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn deactivating_a_bitbucket_directory_removes_its_users_from_the_licence_groups() {
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.seed_users(["l1", "l2", "local"].iter().map(|n| (n.to_string(), days_ago(1), true)));
    for n in ["l1", "l2", "local"] {
        bb.add_member(n, "stash-users");
    }
    bb.set_directory("l1", "Corporate LDAP");
    bb.set_directory("l2", "Corporate LDAP");
    let s = bridge(&bb, "license_groups = [\"stash-users\"]").await;
    let (status, r) =
        post(&s, "/admin/deactivate", json!({"target": "bitbucket", "directory": "Corporate LDAP", "mode": "apply"}))
            .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(names(&r), ["l1", "l2"]);
    assert_eq!(r["findings"][0]["action"], "remove_license");
    eventually("l1 and l2 lost stash-users", WAIT, || {
        ["l1", "l2"].iter().all(|n| bb.user(n).is_some_and(|u| !u.groups.contains("stash-users")))
    })
    .await;
    assert!(bb.user("local").is_some_and(|u| u.groups.contains("stash-users")));
}
