//! Who did what, for everything (issue 10): every operator action names its actor and run id, in
//! the outbox, the delivery record and the run's report; `audit --user` finds every account an
//! action touched (Atlassian-only accounts a run deactivated, users deleted and created again,
//! members of a group change that caused deliveries); text output has a header and a trigger
//! column, CSV is one record per row.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, Fault, TOKEN as ATL_TOKEN};
use crate::support::child::cli;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);
const OPERATOR: &str = "X-Scimbridge-Operator";
/// The name the test admin token (`SCIMBRIDGE_ADMIN_TOKEN`) authenticates as.
const ADMIN_NAME: &str = "admin-config-1";

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

fn target_toml(emu: &Emulator, policy: &str) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n{policy}\n[cleanup]\ninactive_days = 90\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 3\n",
        emu.base_url()
    )
}

async fn bridge(emu: &Emulator, policy: &str) -> TestServer {
    TestServer::start_toml(&target_toml(emu, policy), &[("ATL_TOKEN", ATL_TOKEN)]).await
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str, operator: Option<&str>) -> (u16, Value) {
    let mut rb = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN);
    if let Some(o) = operator {
        rb = rb.header(OPERATOR, o);
    }
    let r = rb.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn history(s: &TestServer, who: &str) -> Vec<Value> {
    let (status, body) = admin(s, reqwest::Method::GET, &format!("/admin/audit?user={who}"), None).await;
    assert_eq!(status, 200, "history of {who}: {body}");
    body["records"].as_array().cloned().unwrap_or_default()
}

async fn cli_async(args: Vec<String>, env: Vec<(String, String)>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        cli(&args, &env)
    })
    .await
    .expect("join")
}

/// The one report JSON file a CLI run wrote into `dir`.
fn report_file(dir: &std::path::Path) -> Value {
    let json = std::fs::read_dir(dir)
        .expect("report dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    serde_json::from_str(&std::fs::read_to_string(json).expect("read")).expect("report JSON")
}

#[tokio::test]
async fn a_cleanup_run_names_its_operator_and_the_atlassian_only_account_it_deactivated_has_a_history() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users([("hank".to_string(), days_ago(200), true), ("recent".to_string(), days_ago(1), true)]);
    let s = bridge(&jira, "").await;
    let (status, report) = admin(&s, reqwest::Method::POST, "/admin/cleanup?mode=apply", Some("alice")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["actor"], format!("{ADMIN_NAME} (cli:alice)"), "{report:#}");
    let run_id = report["run_id"].as_str().expect("the report carries a run id").to_string();
    assert!(!run_id.is_empty());
    eventually("hank deactivated", WAIT, || jira.user("hank").is_some_and(|u| !u.active)).await;
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;

    // The account was never provisioned by the IdP: found by its Atlassian username, any case.
    let records = history(&s, "HANK").await;
    let queued = records.iter().find(|r| r["type"] == "queued").expect("the run's queued record");
    assert_eq!((&queued["actor"], &queued["run_id"]), (&report["actor"], &report["run_id"]), "{queued}");
    assert!(queued["detail"].as_str().is_some_and(|r| r.contains("200 days")), "{queued}");
    assert_eq!(queued["reason"], "inactive", "{queued}");
    let delivered = records.iter().find(|r| r["outcome"] == "delivered").expect("the delivery record");
    assert_eq!(delivered["run_id"], run_id.as_str(), "{delivered}");
    assert_eq!(delivered["actor"], format!("{ADMIN_NAME} (cli:alice)"));
    assert_eq!(delivered["trigger"], "cleanup");
    assert_eq!(delivered["reason"], "inactive", "{delivered}");
    assert!(records.iter().all(|r| r["username"] == "hank"), "only hank's records: {records:#?}");

    // Everything the run did, by its run id.
    let (status, run) = admin(&s, reqwest::Method::GET, &format!("/admin/audit?run={run_id}"), None).await;
    assert_eq!(status, 200, "{run}");
    let kinds: Vec<(&str, &str)> = run["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (r["type"].as_str().unwrap_or(""), r["username"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("queued", "hank"), ("delivery", "hank")], "{run:#}");
    let (status, _) = admin(&s, reqwest::Method::GET, "/admin/audit?run=no-such-run", None).await;
    assert_eq!(status, 404);

    // The stored report names the operator too.
    let id = report["id"].as_u64().expect("report id");
    let (_, stored) = admin(&s, reqwest::Method::GET, &format!("/admin/reports/{id}"), None).await;
    assert_eq!(stored["run_id"], run_id.as_str());

    // A forwarded operator that is not a plain user name is refused, naming the header.
    let (status, body) = admin(&s, reqwest::Method::POST, "/admin/cleanup", Some("al ice")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(OPERATOR)), "{body}");
}

#[tokio::test]
async fn retry_and_token_changes_record_who_did_them_and_the_retried_delivery_carries_the_same_run() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("ivan");
    let s = bridge(&jira, "[policy]\ncreate_users = false").await;
    let id = s.create_user("ivan").await;
    jira.fail_next(1, Fault::status(403));
    let disable = TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable).await.status, 200);
    eventually("a dead letter", WAIT, || s.store().dead_letter_count() == 1).await;
    let (_, jobs) = admin(&s, reqwest::Method::GET, "/admin/jobs?state=dead", None).await;
    let seq = jobs["jobs"][0]["seq"].as_u64().expect("seq");
    // The IdP's own intent names the IdP credential that caused it.
    assert_eq!(jobs["jobs"][0]["actor"], "config-1", "{jobs}");

    let (status, _) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{seq}/retry"), Some("ops")).await;
    assert_eq!(status, 200);
    eventually("ivan deactivated", WAIT, || jira.user("ivan").is_some_and(|u| !u.active)).await;
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let records = history(&s, "ivan").await;
    let retry = records.iter().find(|r| r["action"] == "job_retry").expect("the retry is audited");
    assert_eq!(retry["actor"], format!("{ADMIN_NAME} (cli:ops)"), "{retry}");
    assert_eq!(retry["job"], seq);
    let delivered = records.iter().find(|r| r["outcome"] == "delivered").expect("delivered");
    assert_eq!((&delivered["actor"], &delivered["run_id"]), (&retry["actor"], &retry["run_id"]), "{delivered}");
    assert_eq!(delivered["job"], retry["new_job"]);

    let (status, _) = admin(&s, reqwest::Method::POST, "/admin/tokens?name=okta-prod", Some("ops")).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&s, reqwest::Method::DELETE, "/admin/tokens/okta-prod", None).await;
    assert_eq!(status, 200);
    let tokens = history(&s, "token:okta-prod").await;
    let actions: Vec<(&str, &str)> =
        tokens.iter().map(|r| (r["action"].as_str().unwrap_or(""), r["actor"].as_str().unwrap_or(""))).collect();
    let with_op = format!("{ADMIN_NAME} (cli:ops)");
    assert_eq!(actions, [("token_new", with_op.as_str()), ("token_revoke", ADMIN_NAME)], "{tokens:#?}");
    assert!(tokens.iter().all(|r| r["run_id"].as_str().is_some_and(|r| !r.is_empty())));

    // A dropped job names who gave up on it.
    jira.fail_next(1, Fault::status(403));
    let enable = TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": true}]));
    assert_eq!(s.patch(&format!("/Users/{id}"), &enable).await.status, 200);
    eventually("a second dead letter", WAIT, || s.store().dead_letter_count() == 1).await;
    let (_, jobs) = admin(&s, reqwest::Method::GET, "/admin/jobs?state=dead", None).await;
    let dead = jobs["jobs"][0]["seq"].as_u64().expect("seq");
    let (status, _) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{dead}/drop"), Some("ops")).await;
    assert_eq!(status, 200);
    let records = history(&s, "ivan").await;
    let dropped = records.iter().find(|r| r["outcome"] == "dropped").expect("the drop is audited");
    assert_eq!(dropped["actor"], format!("{ADMIN_NAME} (cli:ops)"), "{dropped}");
    assert!(dropped["run_id"].as_str().is_some_and(|r| !r.is_empty() && Some(r) != retry["run_id"].as_str()));
    assert_eq!(scimbridge::audit_view::trigger(dropped), "operator");
}

#[tokio::test]
async fn a_user_deleted_and_created_again_keeps_both_histories_under_the_name() {
    let s = TestServer::start().await;
    let first = s.create_user("dora@example.com").await;
    assert_eq!(s.delete(&format!("/Users/{first}")).await.status, 204);
    let records = history(&s, "dora@example.com").await;
    assert_eq!(records.iter().filter(|r| r["type"] == "scim").count(), 2, "after the DELETE: {records:#?}");
    let second = s.create_user("Dora@Example.com").await;
    let records = history(&s, "dora@example.com").await;
    let ops: Vec<(&str, &str)> =
        records.iter().map(|r| (r["op"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""))).collect();
    assert_eq!(ops, [("create", first.as_str()), ("delete", first.as_str()), ("create", second.as_str())]);
}

#[tokio::test]
async fn a_group_change_that_caused_deliveries_is_in_the_members_history() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&jira, "").await;
    let gil = s.create_user("gil").await;
    eventually("gil created in Jira", WAIT, || jira.user("gil").is_some()).await;
    let bystander = s.create_user("bea").await;
    s.create_group("devs", &[&gil]).await;
    eventually("gil added to devs", WAIT, || jira.user("gil").is_some_and(|u| u.groups.contains("devs"))).await;
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let records = history(&s, "gil").await;
    let group = records.iter().find(|r| r["type"] == "scim" && r["kind"] == "Group").expect("the group change");
    assert_eq!(group["name"], "devs");
    assert!(
        records.iter().any(|r| r["outcome"] == "delivered" && r["action"]["type"] == "add_to_group"),
        "{records:#?}"
    );
    let bea = history(&s, &bystander).await;
    assert!(bea.iter().all(|r| r["kind"] != "Group"), "a user the change did not touch: {bea:#?}");
}

#[tokio::test]
async fn cli_runs_name_the_local_user_and_audit_text_and_csv_show_trigger_and_actor() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users([("stale".to_string(), days_ago(100), true)]);
    let s = bridge(&jira, "").await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(&cfg, target_toml(&jira, "")).expect("config");
    let names = tmp.path().join("leavers.csv");
    std::fs::write(&names, "username\nstale\n").expect("csv");
    let dir = s.dir.display().to_string();
    let env = |user: &str, listen: &str| -> Vec<(String, String)> {
        [
            ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
            ("SCIMBRIDGE_LISTEN", listen),
            ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
            ("ATL_TOKEN", ATL_TOKEN),
            ("USER", user),
            ("LOGNAME", user),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    };
    let run = |cmd: &str, out: &std::path::Path| -> Vec<String> {
        [cmd, "--config", cfg.to_str().expect("utf8"), "--target", "jira", "--from-csv"]
            .iter()
            .map(|a| a.to_string())
            .chain([names.display().to_string(), "--apply".into(), "--out".into(), out.display().to_string()])
            .collect()
    };
    // Through the running server: the admin token's name and the forwarded local user.
    let listen = s.root.trim_start_matches("http://").to_string();
    let out_remote = tmp.path().join("remote");
    let (code, _, err) = cli_async(run("deactivate", &out_remote), env("alice", &listen)).await;
    assert_eq!(code, 0, "{err}");
    let report = report_file(&out_remote);
    assert_eq!(report["actor"], format!("{ADMIN_NAME} (cli:alice)"), "{report:#}");
    let csv = std::fs::read_dir(&out_remote)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .expect("CSV report");
    let mut reader = csv::Reader::from_path(csv).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    let row = reader.records().next().expect("a row").expect("row");
    let at = |name: &str| header.iter().position(|h| h == name).map(|i| row[i].to_string());
    assert_eq!(at("actor"), Some(format!("{ADMIN_NAME} (cli:alice)")));
    assert_eq!(at("run_id").as_deref(), report["run_id"].as_str());
    eventually("stale deactivated", WAIT, || jira.user("stale").is_some_and(|u| !u.active)).await;
    eventually("the delivery is recorded", WAIT, || s.store().outbox_depth() == 0).await;

    // With the server stopped the CLI opens the store itself: `cli:$USER`.
    let keep = s.stop_keep_dir().await;
    let out_local = tmp.path().join("local");
    let (code, _, err) = cli_async(run("reactivate", &out_local), env("bob", "127.0.0.1:1")).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(report_file(&out_local)["actor"], "cli:bob");

    let audit =
        |format: &str| vec!["audit".to_string(), "--user".into(), "stale".into(), "--format".into(), format.into()];
    let (code, text, err) = cli_async(audit("text"), env("bob", "127.0.0.1:1")).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    for col in ["AT", "TYPE", "TRIGGER", "ACTOR", "TARGET", "ACTION", "OUTCOME"] {
        assert!(lines[0].contains(col), "header names {col}: {text}");
    }
    let delivered = lines.iter().find(|l| l.contains("delivered")).expect("the delivery row");
    assert!(
        delivered.contains("bulk") && delivered.contains("cli:alice") && delivered.contains("deactivate"),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains("queued") && l.contains("cli:bob") && l.contains("reactivate")), "{text}");

    let by_run = vec![
        "audit".to_string(),
        "--run".into(),
        report["run_id"].as_str().expect("run").into(),
        "--format".into(),
        "jsonl".into(),
    ];
    let (code, jsonl, err) = cli_async(by_run, env("bob", "127.0.0.1:1")).await;
    assert_eq!(code, 0, "{err}");
    let run: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
    assert_eq!(run.len(), 2, "queued and delivered: {jsonl}");
    assert!(run.iter().all(|r| r["run_id"] == report["run_id"] && r["username"] == "stale"), "{jsonl}");

    let (code, csv_text, err) = cli_async(audit("csv"), env("bob", "127.0.0.1:1")).await;
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header, scimbridge::audit_view::COLUMNS, "{csv_text}");
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("every row parses");
    assert_eq!(rows.len(), text.lines().count() - 1, "one row per record: {csv_text}");
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    assert!(rows.iter().all(|r| r.len() == header.len()));
    assert!(rows.iter().any(|r| &r[col("trigger")] == "bulk" && r[col("actor")].contains("cli:alice")), "{csv_text}");
    assert!(!csv_text.contains("\"\""), "no doubled JSON quotes: {csv_text}");
    drop(keep);
}
