//! `[retention] audit_days` / `reports_days`: audit records and run reports past their
//! retention are pruned in the background, state never is, and what a waiting intent still
//! needs stays; the store's size and what was pruned are in `/metrics`.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::json;

use crate::support::server::{config_with_toml, test_config, TestServer, ADMIN_TOKEN};
use scimbridge::retention::{prune_once, Retention};

/// A Jira nobody answers at: intents for it stay in the outbox.
const UNREACHABLE_JIRA: &str =
    "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"http://127.0.0.1:9\"\ntoken_env = \"ATL_TOKEN\"\n";

fn disable() -> serde_json::Value {
    TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": false}]))
}

async fn metrics(s: &TestServer) -> String {
    let url = format!("{}/metrics", s.root);
    s.client.get(url).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics").text().await.expect("text")
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

#[tokio::test]
async fn expired_audit_and_reports_are_pruned_but_state_and_what_a_waiting_intent_needs_stay() {
    // Phase 1, no targets: a user whose history has nothing waiting on it.
    let s = TestServer::start().await;
    let gone = s.create_user("gone@example.com").await;
    assert_eq!(s.patch(&format!("/Users/{gone}"), &disable()).await.status.as_u16(), 200);
    let dir = s.dir.clone();
    let tmp = s.stop_keep_dir().await;
    // Phase 2, a Jira that never answers: this user's disable waits in the outbox.
    let env = [("ATL_TOKEN", "jira-token-0123456789")];
    let s = TestServer::start_with(config_with_toml(&dir, UNREACHABLE_JIRA, &env)).await;
    let kept = s.create_user("kept@example.com").await;
    assert_eq!(s.patch(&format!("/Users/{kept}"), &disable()).await.status.as_u16(), 200);
    assert!(s.store().outbox_depth() > 0, "the disable waits for Jira");
    let mut report = json!({"kind": "cleanup", "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z", "run_id": "old-run"});
    let report_id = s.store().report_put(&mut report).expect("report");
    s.stop().await;

    let store = scimbridge::store::Store::open(&dir).expect("open");
    let reports_dir = dir.join("reports");
    std::fs::create_dir_all(&reports_dir).expect("dir");
    let old_file = reports_dir.join("cleanup-apply-20260101T000000Z-1.csv");
    std::fs::write(&old_file, "x").expect("write");
    let admins = reports_dir.join("admins-notes.csv");
    std::fs::write(&admins, "x").expect("write");
    let before = store.audit_of_person("gone@example.com").expect("read").expect("history");
    assert!(before.len() >= 2, "{before:?}");
    let kept_before = store.audit_of_person("kept@example.com").expect("read").expect("history");
    // Everything is 402 days old (400 days, plus the day of slack the pass allows itself).
    let later = chrono::Utc::now() + chrono::Duration::days(402);
    let stop = AtomicBool::new(false);
    let (pruned, files) = prune_once(&store, Retention::default(), &reports_dir, later, &stop).expect("prune");
    assert!(pruned.audit_records >= 2 && pruned.index_entries >= 2, "{pruned:?}");
    assert!(pruned.kept_for_pending >= 1, "{pruned:?}");
    assert_eq!(store.audit_of_person("gone@example.com").expect("read"), None, "gone's history is pruned");
    assert!(store.audit_of(&gone).expect("read").is_empty(), "and the index by id holds nothing stale");
    let kept_after = store.audit_of_person("kept@example.com").expect("read").expect("history");
    let scim_records = |v: &[serde_json::Value]| v.iter().filter(|r| r["type"] == "scim").count();
    assert_eq!(scim_records(&kept_after), scim_records(&kept_before), "the change a waiting intent came from stays");
    assert_eq!(store.report(report_id).expect("read"), None, "a 90-day-old report is pruned");
    // Report files: the ones a run wrote go by age; anything else in the folder stays.
    assert_eq!(files, 1);
    assert!(!old_file.exists() && admins.exists());
    drop(store);

    // State is never pruned: the user is still there, disabled, and still found by name.
    let s = TestServer::start_with(test_config(&dir, &[])).await;
    let found = s.ids_matching("/Users", "userName eq \"gone@example.com\"").await;
    assert_eq!(found, vec![gone.clone()]);
    assert_eq!(s.get(&format!("/Users/{gone}")).await.body["active"], false);
    s.stop().await;
    drop(tmp);
}

#[tokio::test]
async fn the_background_pass_runs_at_start_and_metrics_show_store_size_and_pruning() {
    let s = TestServer::start().await;
    s.create_user("someone@example.com").await;
    let mut text = String::new();
    for _ in 0..250 {
        text = metrics(&s).await;
        if metric(&text, "scimbridge_retention_passes_total").is_some_and(|n| n >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&text, "scimbridge_retention_passes_total"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "scimbridge_retention_failed_passes_total"), Some(0.0), "{text}");
    assert!(metric(&text, "scimbridge_store_size_bytes").is_some_and(|b| b > 0.0), "{text}");
    assert!(text.contains("scimbridge_retention_pruned_total{kind=\"audit_records\"} 0"), "{text}");
    assert!(metric(&text, "scimbridge_audit_oldest_record_age_seconds").is_some_and(|a| a < 3600.0), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn negative_or_absurd_retention_is_a_configuration_error_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (toml, key) in [
        ("[retention]\naudit_days = -1\n", "retention.audit_days"),
        ("[retention]\nreports_days = 100000\n", "retention.reports_days"),
    ] {
        let file = tmp.path().join("c.toml");
        std::fs::write(&file, toml).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
            .args(["--config", file.to_str().expect("utf8"), "check-config"])
            .env("SCIMBRIDGE_DATA_DIR", tmp.path().join("data"))
            .env("SCIMBRIDGE_TOKEN", "idp-token-0123456789abcdef")
            .env_remove("SCIMBRIDGE_CONFIG")
            .output()
            .expect("run");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(78), "{text}");
        assert!(text.contains(key) && text.contains("is not a number of days"), "{text}");
    }
}
