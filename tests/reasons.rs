//! Reasons on every action (issue 12 §2) against the real server and the Jira emulator: the
//! reason word in the queued and delivery audit records, in the lifecycle report and in
//! `/metrics`; and reactivation that respects it: an account deactivated for inactivity comes back
//! on an IdP profile update, one the IdP disabled (or an operator's bulk run deactivated) does
//! not, and comes back when the IdP enables it; a reclaimed licence comes back on a group re-add.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

async fn bridge(jira: &Emulator, rest: &str) -> TestServer {
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n{rest}\n\
         [delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        jira.base_url()
    );
    TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn records(s: &TestServer, id: &str) -> Vec<Value> {
    s.store().audit_of(id).expect("audit")
}

/// The delivery records of `id` for intents of `action` (`deactivate`, `reactivate`…).
fn deliveries(s: &TestServer, id: &str, action: &str) -> Vec<Value> {
    records(s, id).into_iter().filter(|r| r["type"] == "delivery" && r["action"]["type"] == action).collect()
}

fn active(jira: &Emulator, name: &str) -> bool {
    jira.user(name).is_some_and(|u| u.active)
}

async fn metrics(s: &TestServer) -> String {
    s.client
        .get(format!("{}/metrics", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Waits until `/metrics` shows every one of `lines` (a delivery is counted just after its
/// record is written).
async fn metrics_show(s: &TestServer, lines: &[&str]) {
    let started = std::time::Instant::now();
    loop {
        let text = metrics(s).await;
        if lines.iter().all(|l| text.contains(l)) {
            return;
        }
        assert!(started.elapsed() < WAIT, "{lines:?} not in {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rename(name: &str) -> Value {
    TestServer::patch_op(json!([{"op": "replace", "path": "displayName", "value": name}]))
}

#[tokio::test]
async fn an_inactivity_deactivation_carries_its_reason_everywhere_and_comes_back_on_a_profile_update() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&jira, "[cleanup]\ninactive_days = 90").await;
    let erin = s.create_user("erin").await;
    eventually("erin created in Jira", WAIT, || jira.user("erin").is_some()).await;
    eventually("the create is delivered", WAIT, || s.store().outbox_depth() == 0).await;
    jira.set_last_active("erin", days_ago(200));

    let (status, run) = admin(&s, reqwest::Method::POST, "/admin/cleanup?mode=apply", None).await;
    assert_eq!(status, 200, "{run}");
    let row = run["findings"].as_array().and_then(|f| f.iter().find(|x| x["username"] == "erin")).cloned();
    let row = row.unwrap_or_else(|| panic!("erin in the report: {run:#}"));
    assert_eq!(row["reason"], "inactive", "the report's reason column: {row}");
    assert!(row["detail"].as_str().is_some_and(|d| d.contains("200 days")), "{row}");
    eventually("erin deactivated", WAIT, || jira.user("erin").is_some_and(|u| !u.active)).await;
    eventually("the deactivation is recorded", WAIT, || !deliveries(&s, &erin, "deactivate").is_empty()).await;

    // The intent record and the delivery record both carry the word, with the run.
    let all = records(&s, &erin);
    let queued = all.iter().find(|r| r["type"] == "queued").expect("the queued record");
    assert_eq!((&queued["reason"], &queued["run_id"]), (&json!("inactive"), &run["run_id"]), "{queued}");
    let delivered = &deliveries(&s, &erin, "deactivate")[0];
    assert_eq!((&delivered["outcome"], &delivered["reason"]), (&json!("delivered"), &json!("inactive")), "{delivered}");
    assert_eq!(delivered["run_id"], run["run_id"]);
    // The create before it was the IdP's assignment.
    assert_eq!(deliveries(&s, &erin, "create_user")[0]["reason"], "idp_assigned");
    let stored = s.store().deactivation("jira", &erin).expect("read").expect("recorded");
    assert_eq!((stored.reason.as_str(), stored.state.as_str()), ("inactive", "delivered"));
    metrics_show(
        &s,
        &["scimbridge_deliveries_by_reason_total{target=\"jira\",outcome=\"delivered\",reason=\"inactive\"} 1"],
    )
    .await;

    // Any IdP signal brings an account deactivated for inactivity back.
    assert_eq!(s.patch(&format!("/Users/{erin}"), &rename("Erin Again")).await.status, 200);
    eventually("erin active again", WAIT, || active(&jira, "erin")).await;
    eventually("the reactivation is recorded", WAIT, || !deliveries(&s, &erin, "reactivate").is_empty()).await;
    let back = &deliveries(&s, &erin, "reactivate")[0];
    assert_eq!((&back["reason"], &back["trigger"]), (&json!("idp_signal"), &json!("idp_signal")), "{back}");
    assert!(s.store().deactivation("jira", &erin).expect("read").is_none(), "a delivered reactivation clears it");
    metrics_show(&s, &["outcome=\"delivered\",reason=\"idp_signal\"} 1"]).await;

    // Back to normal: the next profile update is only a profile update.
    assert_eq!(s.patch(&format!("/Users/{erin}"), &rename("Erin Three")).await.status, 200);
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(deliveries(&s, &erin, "reactivate").len(), 1, "no second reactivation");
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn an_idp_disabled_or_bulk_deactivated_account_stays_off_on_signals_and_returns_when_the_idp_enables_it() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&jira, "").await;
    let dan = s.create_user("dan").await;
    let bob = s.create_user("bob").await;
    eventually("both created", WAIT, || jira.user("dan").is_some() && jira.user("bob").is_some()).await;

    // The IdP disables dan: deactivated with reason idp_disabled.
    let off = TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(s.patch(&format!("/Users/{dan}"), &off).await.status, 200);
    eventually("dan deactivated", WAIT, || jira.user("dan").is_some_and(|u| !u.active)).await;
    eventually("recorded", WAIT, || !deliveries(&s, &dan, "deactivate").is_empty()).await;
    assert_eq!(deliveries(&s, &dan, "deactivate")[0]["reason"], "idp_disabled");

    // An operator's bulk run deactivates bob, who stays active in the IdP.
    let (status, run) = admin(
        &s,
        reqwest::Method::POST,
        "/admin/deactivate",
        Some(json!({"target": "jira", "usernames": ["bob"], "mode": "apply"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["findings"][0]["reason"], "bulk", "{run:#}");
    eventually("bob deactivated", WAIT, || jira.user("bob").is_some_and(|u| !u.active)).await;
    eventually("recorded", WAIT, || !deliveries(&s, &bob, "deactivate").is_empty()).await;
    let bulk = &deliveries(&s, &bob, "deactivate")[0];
    assert_eq!((&bulk["reason"], &bulk["run_id"]), (&json!("bulk"), &run["run_id"]), "{bulk}");

    // Signals for both: profile updates and a group join. Neither comes back.
    for id in [&dan, &bob] {
        assert_eq!(s.patch(&format!("/Users/{id}"), &rename("Someone Else")).await.status, 200);
    }
    s.create_group("project-x", &[&dan, &bob]).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(!active(&jira, "dan"), "an IdP-disabled account comes back only when the IdP enables it");
    assert!(!active(&jira, "bob"), "an operator's deactivation is not undone by an IdP signal");
    for id in [&dan, &bob] {
        assert!(deliveries(&s, id, "reactivate").is_empty(), "no reactivation was even queued");
    }

    // The IdP enables dan: back, for that reason.
    let on = TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": true}]));
    assert_eq!(s.patch(&format!("/Users/{dan}"), &on).await.status, 200);
    eventually("dan active again", WAIT, || active(&jira, "dan")).await;
    eventually("recorded", WAIT, || !deliveries(&s, &dan, "reactivate").is_empty()).await;
    assert_eq!(deliveries(&s, &dan, "reactivate")[0]["reason"], "idp_enabled");
    metrics_show(
        &s,
        &[
            "outcome=\"delivered\",reason=\"idp_disabled\"} 1",
            "outcome=\"delivered\",reason=\"bulk\"} 1",
            // The reactivation, and the group memberships an enable replays.
            "outcome=\"delivered\",reason=\"idp_enabled\"}",
        ],
    )
    .await;
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn a_reclaimed_licence_comes_back_on_a_group_re_add() {
    const LICENSE: &str = "jira-software-users";
    const ACCESS: &str = "jira-eligible";
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &[LICENSE], Some(5));
    let s = bridge(
        &jira,
        &format!(
            "[license]\nenabled = true\naccess_group = \"{ACCESS}\"\nlicense_group = \"{LICENSE}\"\ninactive_days = 30\nkeep_free_seats = 0"
        ),
    )
    .await;
    let pat = s.create_user("pat").await;
    eventually("pat created", WAIT, || jira.user("pat").is_some()).await;
    jira.add_member("pat", LICENSE);
    jira.add_member("pat", ACCESS);
    jira.set_last_active("pat", days_ago(90));
    let group = s.create_group("project-y", &[&pat]).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let licensed = |jira: &Emulator| jira.user("pat").is_some_and(|u| u.groups.contains(LICENSE));

    let (status, run) = admin(&s, reqwest::Method::POST, "/admin/license/optimize?mode=apply", None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (&run["findings"][0]["username"], &run["findings"][0]["reason"]),
        (&json!("pat"), &json!("license_reclaimed"))
    );
    eventually("pat's seat reclaimed", WAIT, || !licensed(&jira)).await;
    eventually("recorded", WAIT, || !deliveries(&s, &pat, "remove_license").is_empty()).await;
    assert_eq!(deliveries(&s, &pat, "remove_license")[0]["reason"], "license_reclaimed");

    // The IdP drops pat from the group (no seat back) and adds them again (the seat comes back).
    let remove = TestServer::patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{pat}\"]")}]));
    assert!(matches!(s.patch(&format!("/Groups/{group}"), &remove).await.status.as_u16(), 200 | 204));
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(!licensed(&jira), "leaving a group is no reason to give a seat back");
    let add = TestServer::patch_op(json!([{"op": "add", "path": "members", "value": [{"value": pat}]}]));
    assert!(matches!(s.patch(&format!("/Groups/{group}"), &add).await.status.as_u16(), 200 | 204));
    eventually("pat licensed again", WAIT, || licensed(&jira)).await;
    eventually("recorded", WAIT, || !deliveries(&s, &pat, "restore_license").is_empty()).await;
    assert_eq!(deliveries(&s, &pat, "restore_license")[0]["reason"], "license_granted");
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn an_idp_signal_while_the_inactivity_deactivation_still_waits_brings_the_user_back() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&jira, "[cleanup]\ninactive_days = 90").await;
    let fay = s.create_user("fay").await;
    eventually("fay created in Jira", WAIT, || jira.user("fay").is_some()).await;
    eventually("the create is delivered", WAIT, || s.store().outbox_depth() == 0).await;
    jira.set_last_active("fay", days_ago(200));
    // A slow Jira: the deactivation is still on its way when the IdP speaks for fay.
    jira.set_delay(Duration::from_millis(1500));
    let (status, run) = admin(&s, reqwest::Method::POST, "/admin/cleanup?mode=apply", None).await;
    assert_eq!((status, run["enqueued"].clone()), (200, json!(1)), "{run}");
    let waiting = s.store().deactivation("jira", &fay).expect("read").expect("recorded when queued");
    assert_eq!((waiting.reason.as_str(), waiting.state.as_str()), ("inactive", "queued"));
    assert!(deliveries(&s, &fay, "deactivate").is_empty(), "not delivered yet");
    assert_eq!(s.patch(&format!("/Users/{fay}"), &rename("Fay Again")).await.status, 200);
    jira.set_delay(Duration::ZERO);
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    eventually("fay active", WAIT, || active(&jira, "fay")).await;
    let back = deliveries(&s, &fay, "reactivate");
    assert_eq!(back.len(), 1, "{back:#?}");
    assert_eq!(back[0]["reason"], "idp_signal");
    assert!(s.store().deactivation("jira", &fay).expect("read").is_none());
}
