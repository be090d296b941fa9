//! The operator's side: dead letters through the admin API and the CLI (with and without a
//! running server), the audit export, `check-config`, and `/metrics` after deliveries.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, Fault, TOKEN as ATL_TOKEN};
use crate::support::child::cli;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN, TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn jira_toml(jira: &Emulator) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[policy]\ncreate_users = false\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 3\n",
        jira.base_url()
    )
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("admin");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]})
}

#[tokio::test]
async fn a_permanent_failure_becomes_a_visible_dead_letter_that_an_admin_can_retry() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("hank");
    let s = TestServer::start_toml(&jira_toml(&jira), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let id = s.create_user("hank").await;
    // The GET that starts a deactivation answers 403: permanent, straight to the dead letters.
    jira.fail_next(1, Fault::status(403));
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("a dead letter", WAIT, || s.store().dead_letter_count() == 1).await;
    assert!(jira.user("hank").is_some_and(|u| u.active));

    let (status, body) = admin(&s, reqwest::Method::GET, "/admin/jobs?state=dead").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 1, "{body}");
    let job = &body["jobs"][0];
    assert_eq!(job["state"], "dead");
    assert_eq!(job["intent"]["username"], "hank");
    assert!(job["last_error"].as_str().is_some_and(|e| e.contains("403")), "{job}");
    let seq = job["seq"].as_u64().expect("seq");

    // The IdP token cannot reach the admin API, and the admin token cannot reach SCIM.
    let r = s.client.get(format!("{}/admin/jobs", s.root)).bearer_auth(TOKEN).send().await.expect("req");
    assert_eq!(r.status(), 401);
    let r = s.client.get(format!("{}/Users", s.base)).bearer_auth(ADMIN_TOKEN).send().await.expect("req");
    assert_eq!(r.status(), 401);

    let (status, body) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{seq}/retry")).await;
    assert_eq!(status, 200, "{body}");
    eventually("hank deactivated after the retry", WAIT, || jira.user("hank").is_some_and(|u| !u.active)).await;
    assert_eq!(s.store().dead_letter_count(), 0);
    let (status, _) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{seq}/retry")).await;
    assert_eq!(status, 404, "a retried dead letter is gone");
}

#[tokio::test]
async fn retries_exhausted_become_a_dead_letter_and_dropping_it_is_audited() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("ivy");
    let s = TestServer::start_toml(&jira_toml(&jira), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let id = s.create_user("ivy").await;
    // A retryable answer about this request (408), not an outage: it counts toward max_attempts
    // (attempts while a target is down never do, see tests/outage.rs).
    jira.fail_next(3, Fault::status(408));
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("dead after max_attempts = 3", WAIT, || s.store().dead_letter_count() == 1).await;
    let (_, body) = admin(&s, reqwest::Method::GET, "/admin/jobs").await;
    let job = &body["jobs"][0];
    assert_eq!(job["attempts"], 3, "{job}");
    let seq = job["seq"].as_u64().expect("seq");
    let (status, _) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{seq}/drop")).await;
    assert_eq!(status, 200);
    assert_eq!(s.store().dead_letter_count(), 0);
    let (status, body) = admin(&s, reqwest::Method::GET, "/admin/audit?user=IVY").await;
    assert_eq!(status, 200);
    let outcomes: Vec<&str> =
        body["records"].as_array().expect("records").iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "retry").count(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&"dead") && outcomes.contains(&"dropped"), "{outcomes:?}");
}

#[tokio::test]
async fn metrics_show_outbox_depth_delivery_outcomes_and_offboarding_latency() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("jo");
    let s = TestServer::start_toml(&jira_toml(&jira), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let id = s.create_user("jo").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("jo deactivated", WAIT, || jira.user("jo").is_some_and(|u| !u.active)).await;
    // Jira shows the change a moment before the worker records the outcome: wait for the record.
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let mut text = String::new();
    for _ in 0..500 {
        text = s
            .client
            .get(format!("{}/metrics", s.root))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("m")
            .text()
            .await
            .expect("t");
        if text.contains("outcome=\"delivered\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(text.contains("scimbridge_deliveries_total{target=\"jira\",outcome=\"delivered\"} 1"), "{text}");
    assert!(text.contains("scimbridge_offboarding_latency_seconds_count 1"), "{text}");
    assert!(text.contains("scimbridge_outbox_depth 0"), "{text}");
    assert!(
        text.contains(
            "scimbridge_http_requests_total{method=\"PATCH\",route=\"/scim/v2/Users/{id}\",status=\"200\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn cli_audit_and_jobs_work_on_a_stopped_store_and_through_a_running_server() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("kim");
    let s = TestServer::start_toml(&jira_toml(&jira), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let id = s.create_user("kim").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("kim deactivated", WAIT, || jira.user("kim").is_some_and(|u| !u.active)).await;
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    // While the server runs, the store is locked: the CLI goes through the admin API.
    let (code, out, err) = tokio::task::spawn_blocking({
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        move || {
            cli(
                &["audit", "--user", "kim", "--format", "jsonl"],
                &env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>(),
            )
        }
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert!(lines.iter().any(|r| r["type"] == "scim" && r["op"] == "create"), "{out}");
    assert!(lines.iter().any(|r| r["type"] == "scim" && r["op"] == "patch"), "{out}");
    assert!(
        lines
            .iter()
            .any(|r| r["type"] == "delivery" && r["outcome"] == "delivered" && r["action"]["type"] == "deactivate"),
        "{out}"
    );
    let remote_csv = tokio::task::spawn_blocking({
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        move || {
            cli(
                &["audit", "--user", "kim", "--format", "csv"],
                &env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>(),
            )
        }
    })
    .await
    .expect("join");
    assert_eq!(remote_csv.0, 0, "{}", remote_csv.2);
    assert!(remote_csv.1.starts_with("at,type,trigger,actor,run_id,target"), "{}", remote_csv.1);

    // Stopped: the CLI opens the store itself and gives the same answer.
    let data_dir = s.dir.display().to_string();
    let stopped_env = [("SCIMBRIDGE_DATA_DIR", data_dir.as_str())];
    let keep = s.stop_keep_dir().await;
    let (code, local_csv, err) = cli(&["audit", "--user", "kim", "--format", "csv"], &stopped_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(local_csv, remote_csv.1, "same answer with and without a running server");
    let (code, out, _) = cli(&["jobs", "list"], &stopped_env);
    assert_eq!(code, 0);
    assert!(out.starts_with("id\tstate"), "{out}");
    drop(keep);
}

#[test]
fn check_config_rejects_a_policy_that_cannot_be_carried_out_with_key_and_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[target]]\nname = \"wiki\"\nproduct = \"confluence\"\nurl = \"https://wiki.example.com\"\ntoken_env = \"WIKI_TOKEN\"\n[policy]\non_delete = \"anonymize\"\n",
    )
    .expect("write");
    let (code, _, err) = cli(&["check-config", "--config", cfg.to_str().expect("utf8")], &[("WIKI_TOKEN", "x")]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("policy.on_delete"), "{err}");
    assert!(err.to_lowercase().contains("anonymi"), "{err}");
    std::fs::write(&cfg, "[[target]]\nname = \"wiki\"\nproduct = \"confluence\"\nurl = \"https://wiki.example.com\"\ntoken_env = \"WIKI_TOKEN\"\n").expect("write");
    let (code, out, err) = cli(&["check-config", "--config", cfg.to_str().expect("utf8")], &[("WIKI_TOKEN", "x")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
}

#[test]
fn check_config_bounds_the_store_cache_and_names_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("cache.toml");
    std::fs::write(&cfg, "cache_mb = 4\n").expect("write");
    let path = cfg.to_str().expect("utf8");
    let (code, _, err) = cli(&["check-config", "--config", path], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("cache_mb") && err.contains("default is 90"), "{err}");
    let (code, out, err) = cli(&["check-config", "--config", path], &[("SCIMBRIDGE_CACHE_MB", "256")]);
    assert_eq!(code, 0, "the environment wins over the file: {err}");
    assert!(out.contains("valid"), "{out}");
}

#[tokio::test]
async fn an_online_backup_restored_into_an_empty_dir_loses_nothing() {
    let s = TestServer::start().await;
    let a = s.create_user("ann@example.com").await;
    let b = s.create_user("ben@example.com").await;
    let g = s.create_group("crew", &[&a, &b]).await;
    // Compared with the server's own address taken out (the restored one listens elsewhere).
    let norm = |r: crate::support::server::Reply, root: &str| r.text.replace(root, "ROOT");
    let before_users = norm(s.get("/Users?sortBy=userName").await, &s.root);
    let before_group = norm(s.get(&format!("/Groups/{g}")).await, &s.root);
    let before_audit = s.store().audit_of(&a).expect("audit");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("backup.jsonl");
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let file_s = file.display().to_string();
    // Online: the server holds the store, so the CLI goes through the admin API.
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(
            &["backup", &file_s],
            &[
                ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
                ("SCIMBRIDGE_LISTEN", listen.as_str()),
                ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
            ],
        )
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("entries"), "{out}");
    s.stop().await;

    let restored = tmp.path().join("restored");
    let restored_s = restored.display().to_string();
    let (code, _, err) =
        cli(&["restore", file.to_str().expect("utf8")], &[("SCIMBRIDGE_DATA_DIR", restored_s.as_str())]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        cli(&["restore", file.to_str().expect("utf8")], &[("SCIMBRIDGE_DATA_DIR", restored_s.as_str())]);
    assert_ne!(code, 0, "restoring over a non-empty dir is refused");
    assert!(err.contains("not empty"), "{err}");

    let s2 = TestServer::start_with(crate::support::server::test_config(&restored, &[])).await;
    assert_eq!(norm(s2.get("/Users?sortBy=userName").await, &s2.root), before_users);
    assert_eq!(norm(s2.get(&format!("/Groups/{g}")).await, &s2.root), before_group);
    assert_eq!(s2.store().audit_of(&a).expect("audit"), before_audit);
    // The restored store keeps working: new writes do not collide with restored sequence numbers.
    let c = s2.create_user("cat@example.com").await;
    assert_eq!(s2.store().audit_of(&c).expect("audit").len(), 1);
    assert_eq!(s2.store().audit_of(&a).expect("audit"), before_audit);
    s2.stop().await;
}

#[tokio::test]
async fn tokens_issued_and_revoked_through_a_running_server_take_effect_at_once() {
    let s = TestServer::start().await;
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env: Vec<(String, String)> = vec![
        ("SCIMBRIDGE_DATA_DIR".into(), dir),
        ("SCIMBRIDGE_LISTEN".into(), listen),
        ("SCIMBRIDGE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
    ];
    let run = |args: Vec<&'static str>| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            cli(&args, &env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>())
        })
    };
    let (code, token, err) = run(vec!["token", "new", "--name", "okta-prod"]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("scb_"), "{token}");
    let r = s.client.get(format!("{}/Users", s.base)).bearer_auth(&token).send().await.expect("req");
    assert_eq!(r.status(), 200);
    let (code, list, _) = run(vec!["token", "list"]).await.expect("join");
    assert_eq!(code, 0);
    assert!(list.contains("okta-prod\tscim") && !list.contains(&token), "{list}");
    let (code, _, err) = run(vec!["token", "revoke", "okta-prod"]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    let r = s.client.get(format!("{}/Users", s.base)).bearer_auth(&token).send().await.expect("req");
    assert_eq!(r.status(), 401, "a revoked token stops working without a restart");
}

#[tokio::test]
async fn check_config_live_calls_each_target_and_fails_on_bad_credentials() {
    let jira = Emulator::start(Product::Jira).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("live.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n",
            jira.base_url()
        ),
    )
    .expect("write");
    let path = cfg.display().to_string();
    let run = |token: &'static str| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            cli(&["check-config", "--live", "--config", &path], &[("ATL_TOKEN", token)])
        })
    };
    let (code, out, err) = run(ATL_TOKEN).await.expect("join");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("jira: reachable"), "{out}");
    let (code, out, _) = run("wrong-token-0123456789").await.expect("join");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("jira: NOT usable"), "{out}");
    // Without --live nothing is called.
    let before = jira.received().len();
    let (code, _, _) =
        tokio::task::spawn_blocking(move || cli(&["check-config", "--config", &path], &[("ATL_TOKEN", "x")]))
            .await
            .expect("join");
    assert_eq!(code, 0);
    assert_eq!(jira.received().len(), before);
}
