//! `scimbridge undo RUN_ID` (issue 12 §5), end to end: a bulk run deactivates accounts and takes
//! groups (Bitbucket licence groups, a Jira refusal fallback), then the undo's dry run lists
//! exactly what it would give back, `--apply` gives it back through the outbox, users the IdP
//! disabled in between are left alone and reported, an unknown run id is an error, and an undo
//! is not undone. Through the admin API, and the CLI with and without a running server.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::Emulator;
use crate::support::child::cli_in_async;
use crate::support::server::{config_with_toml, eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn toml(emu: &Emulator, extra: &str) -> String {
    let p = emu.product();
    format!(
        "[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\n{}{extra}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        emu.base_url(),
        emu.credentials_toml("ATL_TOKEN")
    )
}

async fn admin(s: &TestServer, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s.client.post(format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = r.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// (username, action, groups) of each finding, sorted.
fn findings(report: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let groups = f["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from);
            (f["username"].as_str().unwrap_or("").into(), f["action"].as_str().unwrap_or("").into(), groups.collect())
        })
        .collect();
    out.sort();
    out
}

fn groups(emu: &Emulator, name: &str) -> BTreeSet<String> {
    emu.user(name).map(|u| u.groups.iter().cloned().collect()).unwrap_or_default()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test]
async fn undoing_a_bitbucket_bulk_run_puts_back_exactly_the_licence_groups_it_took_but_not_for_idp_disabled_users() {
    let bb = Emulator::start(Product::Bitbucket).await;
    for n in ["b1", "b2", "b3", "keep"] {
        bb.add_user(n);
    }
    bb.add_member("b1", "stash-users");
    bb.add_member("b1", "team");
    bb.add_member("b2", "stash-users");
    bb.add_member("b2", "bitbucket-devs");
    bb.add_member("b3", "bitbucket-devs");
    bb.add_member("keep", "stash-users");
    let srv = TestServer::start_toml(
        &toml(&bb, "license_groups = [\"stash-users\", \"bitbucket-devs\"]\n"),
        &[("ATL_TOKEN", bb.secret())],
    )
    .await;
    // b4 comes from the IdP; it is disabled there after the run.
    let b4 = srv.create_user("b4").await;
    eventually("b4 exists", WAIT, || bb.user("b4").is_some()).await;
    bb.add_member("b4", "stash-users");
    eventually("b4 provisioned", WAIT, || srv.store().outbox_depth() == 0).await;

    let (status, run) = admin(
        &srv,
        "/admin/deactivate",
        Some(json!({"target": "bitbucket", "usernames": ["b1", "b2", "b3", "b4"], "mode": "apply"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().expect("the run's id").to_string();
    eventually("the run is delivered", WAIT, || {
        srv.store().outbox_depth() == 0
            && ["b1", "b2", "b3", "b4"]
                .iter()
                .all(|n| !groups(&bb, n).contains("stash-users") && !groups(&bb, n).contains("bitbucket-devs"))
    })
    .await;
    // The delivery recorded what it took, read before the change.
    let record = srv
        .store()
        .audit_of_run(&run_id)
        .expect("audit")
        .unwrap_or_default()
        .into_iter()
        .find(|r| r["type"] == "delivery" && r["username"] == "b2" && r["outcome"] == "delivered")
        .expect("b2's delivery");
    assert_eq!(record["groups_removed"], json!(["stash-users", "bitbucket-devs"]), "{record:#}");

    let disable = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(srv.patch(&format!("/Users/{b4}"), &disable).await.status, 200);
    eventually("the IdP's disable is delivered", WAIT, || srv.store().outbox_depth() == 0).await;

    // Dry run (the default): exactly what would come back, nothing sent.
    let (status, dry) = admin(&srv, &format!("/admin/undo/{run_id}"), None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["kind"], "undo");
    assert_eq!(
        findings(&dry),
        vec![
            (s("b1"), s("restore_license"), vec![s("stash-users")]),
            (s("b2"), s("restore_license"), vec![s("stash-users"), s("bitbucket-devs")]),
            (s("b3"), s("restore_license"), vec![s("bitbucket-devs")]),
            (s("b4"), s("none"), vec![s("stash-users")]),
        ],
        "{dry:#}"
    );
    let skipped = &dry["details"]["not_restored"][0];
    assert_eq!(
        (skipped["username"].as_str(), skipped["reason"].as_str()),
        (Some("b4"), Some("skipped: the IdP has disabled this user"))
    );
    assert_eq!(dry["targets"][0]["skipped"]["skipped: the IdP has disabled this user"], 1, "{dry:#}");
    assert_eq!(dry["enqueued"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!groups(&bb, "b1").contains("stash-users"), "a dry run changes nothing");

    // Apply: the groups come back, exactly those; b4 stays out, `keep` was never touched.
    let (status, done) = admin(&srv, &format!("/admin/undo/{run_id}?mode=apply"), None).await;
    assert_eq!((status, done["enqueued"].clone()), (200, json!(3)), "{done:#}");
    let undo_id = done["run_id"].as_str().expect("the undo's own run id").to_string();
    assert_ne!(undo_id, run_id);
    eventually("the groups are back", WAIT, || {
        groups(&bb, "b1") == set(&["stash-users", "team"])
            && groups(&bb, "b2") == set(&["stash-users", "bitbucket-devs"])
            && groups(&bb, "b3") == set(&["bitbucket-devs"])
    })
    .await;
    eventually("the undo is delivered", WAIT, || srv.store().outbox_depth() == 0).await;
    assert!(groups(&bb, "b4").is_empty(), "{:?}", groups(&bb, "b4"));
    assert_eq!(groups(&bb, "keep"), set(&["stash-users"]));
    // Audited as a run of its own: queued with the operator trigger, delivered, and the undo itself.
    let records = srv.store().audit_of_run(&undo_id).expect("audit").expect("the undo's records");
    assert!(records
        .iter()
        .any(|r| r["type"] == "operator" && r["action"] == "undo" && r["undo_of"] == run_id.as_str()));
    let delivered: Vec<&Value> =
        records.iter().filter(|r| r["type"] == "delivery" && r["outcome"] == "delivered").collect();
    assert_eq!(delivered.len(), 3, "{records:#?}");
    assert!(delivered.iter().all(|r| r["trigger"] == "operator" && r["actor"] == done["actor"]), "{delivered:#?}");
    assert!(srv.store().report_of_run(&undo_id).expect("report").is_some_and(|r| r["kind"] == "undo"));

    // The undone run's history names its undo; undoing it again is allowed, says so, and the
    // IdP-disabled user is still left alone.
    let (status, twice) = admin(&srv, &format!("/admin/undo/{run_id}"), None).await;
    assert_eq!(status, 200, "{twice}");
    assert_eq!(twice["details"]["earlier_undos"], json!([undo_id]), "{twice:#}");
    assert_eq!(findings(&twice), findings(&dry));

    // An undo is not undone; an unknown run is an error.
    let (status, again) = admin(&srv, &format!("/admin/undo/{undo_id}?mode=apply"), None).await;
    assert_eq!(status, 400, "{again}");
    assert!(again["detail"].as_str().is_some_and(|d| d.contains("itself an undo")), "{again}");
    let (status, unknown) = admin(&srv, "/admin/undo/no-such-run", None).await;
    assert_eq!(status, 404, "{unknown}");
    assert!(unknown["detail"].as_str().is_some_and(|d| d.contains("no-such-run")), "{unknown}");
}

#[tokio::test]
async fn undoing_a_jira_run_reactivates_and_gives_back_the_groups_a_refusal_fallback_took() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    for n in ["lena", "plain"] {
        jira.add_user(n);
        jira.add_member(n, "jira-software-users");
    }
    jira.add_member("lena", "devs");
    // Jira refuses to deactivate a project lead: the fallback takes her licence group instead.
    jira.add_project("ABC", "lena");
    let srv = TestServer::start_toml(&toml(&jira, ""), &[("ATL_TOKEN", jira.secret())]).await;

    // A dry run changed nothing: nothing to undo.
    let (_, dry_run) =
        admin(&srv, "/admin/deactivate", Some(json!({"target": "jira", "usernames": ["lena", "plain"]}))).await;
    let (status, nothing) =
        admin(&srv, &format!("/admin/undo/{}", dry_run["run_id"].as_str().expect("id")), None).await;
    assert_eq!(status, 200, "{nothing}");
    assert_eq!(
        (nothing["details"]["nothing_to_undo"].clone(), findings(&nothing).len()),
        (json!(true), 0),
        "{nothing:#}"
    );

    let (status, run) = admin(
        &srv,
        "/admin/deactivate",
        Some(json!({"target": "jira", "usernames": ["lena", "plain"], "mode": "apply"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().expect("id").to_string();
    eventually("the run is delivered", WAIT, || {
        srv.store().outbox_depth() == 0 && jira.user("plain").is_some_and(|u| !u.active)
    })
    .await;
    let lena = jira.user("lena").expect("lena");
    assert!(lena.active && !lena.groups.contains("jira-software-users") && lena.groups.contains("devs"), "{lena:?}");

    let (status, dry) = admin(&srv, &format!("/admin/undo/{run_id}?mode=dry-run"), None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        findings(&dry),
        vec![(s("lena"), s("restore_license"), vec![s("jira-software-users")]), (s("plain"), s("reactivate"), vec![])],
        "{dry:#}"
    );
    let (status, done) = admin(&srv, &format!("/admin/undo/{run_id}?mode=apply"), None).await;
    assert_eq!(status, 200, "{done}");
    eventually("plain is active and lena has her licence group back", WAIT, || {
        jira.user("plain").is_some_and(|u| u.active)
            && jira.user("lena").is_some_and(|u| u.groups.contains("jira-software-users") && u.groups.contains("devs"))
    })
    .await;
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn the_cli_undoes_through_a_running_server_and_on_a_stopped_store() {
    let jira = Emulator::start(Product::Jira).await;
    for n in ["c1", "c2"] {
        jira.add_user(n);
    }
    let conf = toml(&jira, "");
    let srv = TestServer::start_toml(&conf, &[("ATL_TOKEN", jira.secret())]).await;
    let (_, run) =
        admin(&srv, "/admin/deactivate", Some(json!({"target": "jira", "usernames": ["c1", "c2"], "mode": "apply"})))
            .await;
    let run_id = run["run_id"].as_str().expect("id").to_string();
    eventually("c1 and c2 inactive", WAIT, || {
        srv.store().outbox_depth() == 0 && ["c1", "c2"].iter().all(|n| jira.user(n).is_some_and(|u| !u.active))
    })
    .await;
    let cwd = tempfile::tempdir().expect("cwd");
    let dir = srv.dir.display().to_string();
    let listen = srv.root.trim_start_matches("http://").to_string();
    let remote = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("USER", "olga"),
    ];
    // Through the running server: the dry run lists both, changes nothing.
    let (code, out, err) = cli_in_async(cwd.path(), &["undo", &run_id], &remote).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("c1\t") && out.contains("c2\t") && out.contains("reactivate"), "{out}");
    assert!(out.contains("scimbridge undo RUN_ID --apply"), "{out}");
    let (code, _, err) = cli_in_async(cwd.path(), &["undo", "no-such-run", "--apply"], &remote).await;
    assert_ne!(code, 0);
    assert!(err.contains("no-such-run"), "{err}");
    assert!(jira.user("c1").is_some_and(|u| !u.active));

    // Stopped: the CLI opens the store, queues the undo; the next start delivers it.
    let keep = srv.stop_keep_dir().await;
    let local = [("SCIMBRIDGE_DATA_DIR", dir.as_str()), ("USER", "olga")];
    let (code, out, err) = cli_in_async(cwd.path(), &["undo", &run_id, "--apply"], &local).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 intent(s) queued") && out.contains("by cli:olga"), "{out}");
    let (code, _, err) = cli_in_async(cwd.path(), &["undo", "no-such-run"], &local).await;
    assert_ne!(code, 0);
    assert!(err.contains("no run \"no-such-run\""), "{err}");
    let srv =
        TestServer::start_with(config_with_toml(std::path::Path::new(&dir), &conf, &[("ATL_TOKEN", jira.secret())]))
            .await;
    eventually("c1 and c2 active again", WAIT, || ["c1", "c2"].iter().all(|n| jira.user(n).is_some_and(|u| u.active)))
        .await;
    eventually("the undo is delivered", WAIT, || srv.store().outbox_depth() == 0).await;
    srv.stop().await;
    drop(keep);
}

#[tokio::test]
async fn groups_recorded_before_a_change_survive_a_crash_between_the_change_and_its_record() {
    use scimbridge::policy::{Intent, IntentAction, Trigger};
    use scimbridge::store::{Operator, OutboxEntry};
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_user("cr");
    bb.add_member("cr", "team");
    bb.add_user("other");
    bb.add_member("other", "stash-users");
    let srv =
        TestServer::start_toml(&toml(&bb, "license_groups = [\"stash-users\"]\n"), &[("ATL_TOKEN", bb.secret())]).await;
    // The attempt before the crash stored the snapshot, then took stash-users; its record was
    // never written, so the repeated attempt finds nothing left to take.
    let intent = Intent {
        target: "bitbucket".into(),
        user_id: "atlassian:cr".into(),
        username: "cr".into(),
        action: IntentAction::RemoveLicense { groups: vec!["stash-users".into()] },
        trigger: Trigger::Bulk,
        dry_run: false,
    };
    let op = Operator { actor: "cli:al".into(), run_id: "run-crashed".into() };
    let mut entry =
        OutboxEntry::new(serde_json::to_value(&intent).expect("intent"), "2026-01-01T00:00:00Z", 0).with_operator(&op);
    entry.groups_before = Some(vec!["stash-users".into(), "team".into()]);
    entry.attempts = 1;
    let queued = json!({"type": "queued", "target": "bitbucket", "user_id": "atlassian:cr", "username": "cr",
                        "action": intent.action, "trigger": "bulk", "reason": "listed in the CSV"});
    srv.store().enqueue_audited(&[(entry, queued)]).expect("enqueue");
    eventually("the repeated attempt is recorded", WAIT, || srv.store().outbox_depth() == 0).await;
    let records = srv.store().audit_of_run("run-crashed").expect("audit").expect("records");
    let rec = records.iter().find(|r| r["type"] == "delivery").expect("the delivery");
    assert_eq!((rec["effect"].clone(), rec["groups_removed"].clone()), (json!("already_done"), json!(["stash-users"])));

    let (status, done) = admin(&srv, "/admin/undo/run-crashed?mode=apply", None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(findings(&done), vec![(s("cr"), s("restore_license"), vec![s("stash-users")])], "{done:#}");
    eventually("cr has stash-users back", WAIT, || groups(&bb, "cr") == set(&["stash-users", "team"])).await;
}

#[tokio::test]
async fn an_undo_names_the_jobs_of_the_run_not_delivered_yet_and_gives_back_nothing_it_has_not_taken() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("pat");
    let srv = TestServer::start_toml(&toml(&jira, ""), &[("ATL_TOKEN", jira.secret())]).await;
    use scimbridge::policy::{Intent, IntentAction, Trigger};
    use scimbridge::store::{Operator, OutboxEntry};
    // A run queued pat's deactivation just before Jira went down: it waits in the outbox.
    jira.down_for(Duration::from_secs(3600));
    let intent = Intent {
        target: "jira".into(),
        user_id: "atlassian:pat".into(),
        username: "pat".into(),
        action: IntentAction::Deactivate,
        trigger: Trigger::Bulk,
        dry_run: false,
    };
    let op = Operator { actor: "cli:al".into(), run_id: "run-pending".into() };
    let entry =
        OutboxEntry::new(serde_json::to_value(&intent).expect("intent"), "2026-01-01T00:00:00Z", 0).with_operator(&op);
    let queued = json!({"type": "queued", "target": "jira", "user_id": "atlassian:pat", "username": "pat",
                        "action": intent.action, "trigger": "bulk", "reason": "listed in the CSV"});
    srv.store().enqueue_audited(&[(entry, queued)]).expect("enqueue");
    let run_id = "run-pending";
    let (status, dry) = admin(&srv, &format!("/admin/undo/{run_id}"), None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["details"]["nothing_to_undo"], true, "{dry:#}");
    let pending = dry["details"]["not_yet_delivered"].as_array().cloned().unwrap_or_default();
    assert_eq!(pending.len(), 1, "{dry:#}");
    assert_eq!((pending[0]["username"].as_str(), pending[0]["state"].as_str()), (Some("pat"), Some("pending")));
    assert!(findings(&dry).is_empty());
}
