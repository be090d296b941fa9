//! Inactive-user cleanup against the Atlassian DC emulator, through the admin API: exactly the
//! right users (boundary day, never-logged-in with the creation-date fallback, protected users
//! and groups, admins, out-of-scope groups, IdP-provisioned and never-known accounts), dry run
//! changes nothing, apply deactivates through the outbox; the CLI path writes CSV and JSON.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::support::atlassian_emulator::{Emulator, CROWD_APP, CROWD_PASSWORD, TOKEN as ATL_TOKEN};
use crate::support::server::{config_with_toml, eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

fn target_toml(emu: &Emulator) -> String {
    match emu.product() {
        Product::Crowd => format!(
            "[[target]]\nname = \"crowd\"\nproduct = \"crowd\"\nurl = \"{}\"\nusername = \"{CROWD_APP}\"\npassword_env = \"CROWD_PASSWORD\"\n",
            emu.base_url()
        ),
        p => format!("[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n", emu.base_url()),
    }
}

async fn bridge(emu: &Emulator, rest: &str) -> TestServer {
    let toml = format!("{}\n{rest}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n", target_toml(emu));
    TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN), ("CROWD_PASSWORD", CROWD_PASSWORD)]).await
}

pub async fn admin(s: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn affected(report: &Value) -> Vec<String> {
    let mut n: Vec<String> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["username"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    n.sort();
    n
}

#[tokio::test]
async fn cleanup_picks_exactly_the_inactive_unprotected_non_admin_accounts_and_apply_deactivates_them() {
    let jira = Emulator::start(Product::Jira).await;
    let seed = [
        ("old", days_ago(200)),
        ("boundary", days_ago(90)),
        ("almost", days_ago(89)),
        ("recent", days_ago(3)),
        ("never", None),
        ("admin", days_ago(400)),
        ("vip", days_ago(400)),
        ("boss", days_ago(400)),
        ("gone", days_ago(400)),
    ];
    jira.seed_users(seed.iter().map(|(n, t)| (n.to_string(), *t, true)));
    jira.set_active("gone", false);
    jira.add_member("admin", "jira-administrators");
    jira.add_member("vip", "vips");
    let s = bridge(
        &jira,
        "[policy]\nprotected_users = [\"boss\"]\nprotected_groups = [\"vips\"]\n[cleanup]\ninactive_days = 90",
    )
    .await;
    // An IdP-provisioned user, inactive too.
    let carol = s.create_user("carol").await;
    eventually("carol created in Jira", WAIT, || jira.user("carol").is_some()).await;
    jira.set_last_active("carol", days_ago(120));

    let (status, dry) = admin(&s, reqwest::Method::POST, "/admin/cleanup?mode=dry-run", None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(affected(&dry), ["boundary", "carol", "old"], "{dry:#}");
    assert_eq!(dry["mode"], "dry_run");
    assert_eq!(dry["enqueued"], 0);
    let first = &dry["findings"][0];
    assert_eq!(first["username"], "old", "most inactive first");
    assert_eq!(first["action"], "deactivate");
    assert!(first["detail"].as_str().is_some_and(|r| r.contains("200 days")), "{first}");
    assert_eq!(first["reason"], "inactive", "{first}");
    assert!(first["last_active"].is_string());
    let carol_row = dry["findings"].as_array().and_then(|f| f.iter().find(|x| x["username"] == "carol")).cloned();
    assert_eq!(carol_row.map(|c| c["user_id"].clone()), Some(Value::from(carol.clone())));
    let skipped = &dry["targets"][0]["skipped"];
    for why in ["admin", "protected", "already inactive", "recently active"] {
        assert!(skipped[why].as_u64().is_some_and(|n| n >= 1), "{why}: {skipped}");
    }
    // A dry run changed nothing and queued nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(jira.user("old").is_some_and(|u| u.active));
    assert_eq!(s.store().outbox_depth(), 0);

    let (status, applied) = admin(&s, reqwest::Method::POST, "/admin/cleanup?mode=apply", None).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["enqueued"], 3);
    eventually("the three are deactivated", WAIT, || {
        ["old", "boundary", "carol"].iter().all(|n| jira.user(n).is_some_and(|u| !u.active))
    })
    .await;
    for untouched in ["almost", "recent", "never", "admin", "vip", "boss"] {
        assert!(jira.user(untouched).is_some_and(|u| u.active), "{untouched} must stay active");
    }
    // The delivery is audited under the IdP user's own history (recorded a moment after Jira
    // shows the change: wait for it).
    eventually("the deliveries are recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let recs = s.store().audit_of(&carol).expect("audit");
    assert!(recs.iter().any(|r| r["trigger"] == "cleanup" && r["outcome"] == "delivered"), "{recs:#?}");
    let (_, reports) = admin(&s, reqwest::Method::GET, "/admin/reports", None).await;
    assert!(reports["total"].as_u64().is_some_and(|n| n >= 2), "{reports}");
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn never_logged_in_accounts_age_from_their_creation_date_and_scope_groups_limit_cleanup() {
    let crowd = Emulator::start(Product::Crowd).await;
    crowd.seed_users(
        ["never-old", "never-new", "old-staff", "old-outsider"].iter().map(|n| (n.to_string(), None, true)),
    );
    crowd.set_created("never-old", days_ago(200));
    crowd.set_created("never-new", days_ago(5));
    crowd.set_last_active("old-staff", days_ago(100));
    crowd.set_last_active("old-outsider", days_ago(100));
    for n in ["never-old", "never-new", "old-staff"] {
        crowd.add_member(n, "staff");
    }
    for (include, want) in [(true, vec!["never-old", "old-staff"]), (false, vec!["old-staff"])] {
        let s = bridge(&crowd, &format!("[cleanup]\ninclude_never_logged_in = {include}\nscope_groups = [\"staff\"]"))
            .await;
        let (status, r) = admin(&s, reqwest::Method::POST, "/admin/cleanup", None).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(affected(&r), want, "include_never_logged_in = {include}: {r:#}");
        assert!(r["targets"][0]["skipped"]["out of scope: not in scope_groups"].as_u64() >= Some(1), "{r}");
        s.stop().await;
    }
}

#[tokio::test]
async fn the_cli_path_without_a_server_writes_the_csv_and_json_reports() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users([("stale".to_string(), days_ago(100), true), ("fresh".to_string(), days_ago(1), true)]);
    let tmp = tempfile::tempdir().expect("tmp");
    let config = config_with_toml(tmp.path(), &target_toml(&jira), &[("ATL_TOKEN", ATL_TOKEN)]);
    // The store `serve` made (a run never creates one).
    drop(scimbridge::store::Store::open(tmp.path()).expect("store"));
    let out = tmp.path().join("reports");
    let op = scimbridge::cli_lifecycle::LifecycleOp::Cleanup {
        mode: scimbridge::lifecycle::Mode::DryRun,
        target: None,
        orphans: false,
    };
    scimbridge::cli_lifecycle::run(&config, op, &out).await.expect("cleanup runs");
    let files: Vec<_> = std::fs::read_dir(&out).expect("out dir").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let csv = files.iter().find(|p| p.extension().is_some_and(|e| e == "csv")).expect("a CSV");
    let text = std::fs::read_to_string(csv).expect("csv text");
    assert!(text.starts_with("target,username,"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("jira,stale,"), "{text}");
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "json")));
    assert!(jira.user("stale").is_some_and(|u| u.active));
}

#[tokio::test]
async fn the_cli_path_through_a_running_server_gives_the_same_report() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users([("stale".to_string(), days_ago(100), true), ("fresh".to_string(), days_ago(1), true)]);
    let s = bridge(&jira, "").await;
    // The server holds the store, so the CLI must go through the admin API.
    let listen = s.root.trim_start_matches("http://").to_string();
    let config = config_with_toml(
        &s.dir,
        &target_toml(&jira),
        &[("ATL_TOKEN", ATL_TOKEN), ("SCIMBRIDGE_LISTEN", listen.as_str())],
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("reports");
    let op = scimbridge::cli_lifecycle::LifecycleOp::Cleanup {
        mode: scimbridge::lifecycle::Mode::DryRun,
        target: None,
        orphans: false,
    };
    scimbridge::cli_lifecycle::run(&config, op, &out).await.expect("cleanup runs through the server");
    let files: Vec<_> = std::fs::read_dir(&out).expect("out dir").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let csv = files.iter().find(|p| p.extension().is_some_and(|e| e == "csv")).expect("a CSV");
    let text = std::fs::read_to_string(csv).expect("csv text");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("jira,stale,"), "{text}");
    assert!(jira.user("stale").is_some_and(|u| u.active), "a dry run changes nothing");
    let metrics = s
        .client
        .get(format!("{}/metrics", s.root))
        .bearer_auth(crate::support::server::ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("route=\"/admin/cleanup\""), "the CLI went through the admin API: {metrics}");
}
