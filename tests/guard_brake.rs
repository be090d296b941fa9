//! The mass-offboarding brake (issue 12 §1) end to end: Entra ID disables every user, at most the
//! limit reaches Jira and the rest is held; `held approve --all` delivers the rest in order,
//! `held reject` leaves accounts as they are; an IdP re-enable supersedes a held deactivation;
//! a bulk `--apply` over the limit refuses up front unless `--allow-over-guard`; the CLI works on a
//! stopped store and through the running server; the admin API wants an admin token. The brake
//! engaging is notified once, by email (a real SMTP conversation) and by webhook.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::child::cli;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN, TOKEN};
use crate::support::smtp::SmtpReceiver;
use crate::support::webhook::WebhookReceiver;
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(120);

fn toml(jira: &Emulator, guard: &str) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n\n[policy]\ncreate_users = false\n\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\nconcurrency = 16\n{guard}",
        jira.base_url()
    )
}

/// `n` users that exist in Jira and in the bridge (SCIM Bulk, 100 a request); their SCIM ids.
async fn provision(s: &TestServer, jira: &Emulator, prefix: &str, n: usize) -> Vec<String> {
    for i in 0..n {
        jira.add_user(&format!("{prefix}{i}"));
    }
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users",
                             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{prefix}{i}"), "active": true}}))
            .collect();
        let r = s
            .post(
                "/Bulk",
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        for op in r.body["Operations"].as_array().expect("operations") {
            assert_eq!(op["status"], "201", "{op}");
            ids.push(op["location"].as_str().expect("location").rsplit('/').next().expect("id").to_string());
        }
    }
    ids
}

/// Entra ID's own disable (default dialect: `"value": "False"`), 16 at a time; every request is
/// answered 200 at once, held or not.
async fn entra_disable_all(s: &TestServer, ids: &[String]) {
    let statuses: Vec<u16> = futures_util::stream::iter(ids.iter())
        .map(|id| async move { s.play("entra/disable_user_default.json", &[("id", id)]).await.status.as_u16() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|c| *c == 200), "every disable is answered 200");
}

fn inactive(jira: &Emulator, prefix: &str, n: usize) -> usize {
    (0..n).filter(|i| jira.user(&format!("{prefix}{i}")).is_some_and(|u| !u.active)).count()
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
    let mut req = s.client.request(method, format!("{}/admin{path}", s.root)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// `[notify]` with an SMTP server and a JSON webhook, both started by the test.
const NOTIFY: &str = "[notify.smtp]\nurl_env = \"SMTP_URL\"\nfrom = \"scimbridge@example.com\"\nadmins = [\"atlassian-admins@example.com\"]\n[[notify.webhook]]\nurl_env = \"HOOK_URL\"\nformat = \"json\"\nsecret_env = \"HOOK_SECRET\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_disabling_5000_of_5000_users_delivers_the_limit_holds_the_rest_and_approve_all_delivers_them_in_order() {
    const N: usize = 5000;
    /// Held intents rejected before the rest are approved: their accounts stay as they are.
    const REJECTED: usize = 100;
    let jira = Emulator::start(Product::Jira).await;
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    // The default guard: no [guard] section at all.
    let env = [
        ("ATL_TOKEN", ATL_TOKEN),
        ("SMTP_URL", &smtp.url()),
        ("HOOK_URL", &hook.url()),
        ("HOOK_SECRET", "k3y-for-the-json-webhook-0123456789"),
    ];
    let s = TestServer::start_toml(&format!("{}{NOTIFY}", toml(&jira, "")), &env).await;
    let ids = provision(&s, &jira, "u", N).await;
    entra_disable_all(&s, &ids).await;

    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let status = s.store().guard_status();
    assert_eq!((status.held, status.used, status.limit), ((N - 50) as u64, 50, Some(50)));
    assert_eq!(inactive(&jira, "u", N), 50, "at most the limit reached Jira");

    // One notification per channel for the engagement, not one per held intent (4,950).
    eventually("the brake's email and webhook", WAIT, || !smtp.messages().is_empty() && !hook.accepted().is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mails, hits) = (smtp.messages(), hook.accepted());
    assert_eq!((mails.len(), hits.len()), (1, 1), "exactly one notification each: {mails:#?} {hits:#?}");
    let text = mails[0].readable();
    assert!(text.contains("Subject: [scimbridge] Offboarding brake engaged"), "{text}");
    assert!(text.contains("Held when it engaged: ") && text.contains("scimbridge held approve --all"), "{text}");
    assert!(text.contains("Limit: 50 per 1 h") && text.contains("scimbridge held reject --all"), "{text}");
    let body = hits[0].json();
    assert_eq!((&body["event"], &body["data"]["limit"]), (&json!("held"), &json!(50)), "{body}");
    let first_held = body["data"]["held"].as_u64().expect("held count");
    assert!(first_held >= 1, "{body}");
    assert!(text.contains(&format!("Held when it engaged: {first_held}")), "{text}");
    assert_eq!(hits[0].header("X-Scimbridge-Event"), Some("held"));

    // Loud, but ready.
    let m = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics");
    let text = m.text().await.expect("text");
    assert_eq!(metric(&text, "scimbridge_held_intents"), (N - 50) as f64);
    assert_eq!(metric(&text, "scimbridge_guard_brake_engaged"), 1.0);
    assert_eq!(s.get(&format!("{}/readyz", s.root)).await.status, 200, "ready while the brake holds");
    let engaged: Vec<Value> = s
        .store()
        .audit_of(scimbridge::store::GUARD_SUBJECT)
        .expect("audit")
        .into_iter()
        .filter(|r| r["outcome"] == "brake_engaged")
        .collect();
    assert_eq!(engaged.len(), 1, "one engagement record, not one per intent: {engaged:?}");
    assert_eq!(engaged[0]["approve_command"], "scimbridge held approve --all");

    let (code, list) = admin(&s, reqwest::Method::GET, "/held", None, ADMIN_TOKEN).await;
    assert_eq!(code, 200);
    let mut held: Vec<u64> =
        list["held"].as_array().expect("held").iter().map(|h| h["seq"].as_u64().expect("seq")).collect();
    assert_eq!(held.len(), N - 50);
    assert!(held.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // Reject the last ones: recorded, and their accounts are left as they are.
    let rejected = held.split_off(held.len() - REJECTED);
    let spared: Vec<String> = s
        .store()
        .guard_held()
        .expect("held")
        .iter()
        .filter(|h| rejected.contains(&h.seq))
        .map(|h| h.entry.intent["username"].as_str().expect("username").to_string())
        .collect();
    assert_eq!(spared.len(), REJECTED);
    let (code, done) =
        admin(&s, reqwest::Method::POST, "/held/reject", Some(json!({"ids": rejected})), ADMIN_TOKEN).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["still_held"], N - 50 - REJECTED);

    let (code, done) = admin(&s, reqwest::Method::POST, "/held/approve", Some(json!({"all": true})), ADMIN_TOKEN).await;
    assert_eq!(code, 200, "{done}");
    let approved: Vec<(u64, u64)> = done["approved"]
        .as_array()
        .expect("approved")
        .iter()
        .map(|a| (a["job"].as_u64().expect("job"), a["as"].as_u64().expect("as")))
        .collect();
    assert_eq!(approved.iter().map(|a| a.0).collect::<Vec<_>>(), held, "every held intent, in the original order");
    assert!(approved.windows(2).all(|w| w[0].1 < w[1].1), "queued again in the original order");
    let run = done["run_id"].as_str().expect("run id").to_string();
    assert_eq!(done["still_held"], 0);

    eventually("every approved user inactive in Jira", WAIT, || inactive(&jira, "u", N) == N - REJECTED).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(spared.iter().all(|u| jira.user(u).is_some_and(|u| u.active)), "rejected accounts stay active");
    assert_eq!(s.store().guard_status().held, 0, "approved intents are not held again");
    // The approval is a run of its own: its deliveries and decisions carry its id and the actor.
    let records = s.store().audit_of_run(&run).expect("audit").expect("run");
    let approvals = records.iter().filter(|r| r["action"] == "held_approve").count();
    let delivered = records.iter().filter(|r| r["type"] == "delivery" && r["outcome"] == "delivered").count();
    assert_eq!((approvals, delivered), (N - 50 - REJECTED, N - 50 - REJECTED));
    let rejections = s.store().audit_tail(50_000).expect("audit").into_iter().filter(|r| r["action"] == "held_reject");
    assert_eq!(rejections.count(), REJECTED, "each rejection is recorded");
    // Approving and rejecting notify nobody: still the one notification per channel.
    assert_eq!((smtp.messages().len(), hook.accepted().len()), (1, 1));
    assert!(records.iter().all(|r| r["actor"] == "admin" || r["actor"].as_str().is_some_and(|a| !a.is_empty())));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_superseded_held_intents_leave_accounts_as_they_are_with_the_cli_local_and_remote() {
    const N: usize = 60;
    let jira = Emulator::start(Product::Jira).await;
    let s = TestServer::start_toml(&toml(&jira, "[guard]\nmax_offboardings = 20\n"), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let ids = provision(&s, &jira, "r", N).await;
    entra_disable_all(&s, &ids).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(s.store().guard_status().held, 40);
    assert_eq!(inactive(&jira, "r", N), 20);

    // The admin API wants an admin token: none, or the IdP's, is refused.
    let (code, _) = admin(&s, reqwest::Method::GET, "/held", None, "").await;
    assert_eq!(code, 401);
    let (code, _) = admin(&s, reqwest::Method::POST, "/held/reject", Some(json!({"all": true})), TOKEN).await;
    assert!(code == 401 || code == 403, "{code}");
    assert_eq!(s.store().guard_status().held, 40, "nothing decided without an admin token");

    // The IdP enables one held user again: the re-enable flows, the held deactivation is stale.
    let held = s.store().guard_held().expect("held");
    let again = held[0].entry.user_id().to_string();
    let name = held[0].entry.intent["username"].as_str().expect("username").to_string();
    let r = s
        .patch(
            &format!("/Users/{again}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(s.store().guard_status().held, 39, "the stale deactivation left the held queue");
    assert_eq!(s.store().job(held[0].seq).expect("job").expect("kept").state, "superseded");

    // Through the running server: the CLI calls the admin API. Unknown ids are an error naming them.
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env: Vec<(String, String)> = vec![
        ("SCIMBRIDGE_DATA_DIR".into(), dir.clone()),
        ("SCIMBRIDGE_LISTEN".into(), listen),
        ("SCIMBRIDGE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
    ];
    let run = |args: Vec<String>, env: Vec<(String, String)>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&args, &env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>())
        })
        .await
        .expect("join")
    };
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (code, out, err) = run(strings(&["held", "list"]), env.clone()).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("39 held."), "{out}");
    let (code, _, err) = run(strings(&["held", "reject", "999999999"]), env.clone()).await;
    assert_ne!(code, 0);
    assert!(err.contains("999999999"), "{err}");
    let mut args = strings(&["held", "reject"]);
    args.extend(s.store().guard_held().expect("held").iter().take(2).map(|h| h.seq.to_string()));
    let (code, out, err) = run(args, env.clone()).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 approved, 2 rejected by admin"), "{out}");
    assert_eq!(s.store().guard_status().held, 37);

    // Stopped: the CLI opens the store itself.
    let keep = s.stop_keep_dir().await;
    let stopped = [("SCIMBRIDGE_DATA_DIR", dir.as_str())];
    let (code, out, err) = cli(&["held", "list", "--json"], &stopped);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["total"], 37);
    let (code, out, err) = cli(&["held", "reject", "--all"], &stopped);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("37 rejected"), "{out}");
    let (code, _, err) = cli(&["held", "approve"], &stopped);
    assert_ne!(code, 0, "approve needs --all or ids: {err}");

    // Restarted: nothing was delivered for the rejected or the superseded ones.
    let s = TestServer::start_with(crate::support::server::config_with_toml(
        std::path::Path::new(&dir),
        &toml(&jira, "[guard]\nmax_offboardings = 20\n"),
        &[("ATL_TOKEN", ATL_TOKEN)],
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(inactive(&jira, "r", N), 20, "rejected accounts are left as they are");
    assert!(jira.user(&name).is_some_and(|u| u.active), "the re-enabled user stays active");
    let rejections: Vec<Value> =
        s.store().audit_tail(5000).expect("audit").into_iter().filter(|r| r["action"] == "held_reject").collect();
    assert_eq!(rejections.len(), 39);
    assert!(rejections.iter().any(|r| r["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))), "local actor");
    assert!(rejections.iter().any(|r| r["actor"].as_str().is_some_and(|a| a.starts_with("admin"))), "remote actor");
    s.stop().await;
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_apply_over_the_limit_refuses_up_front_unless_allowed_over_the_guard() {
    const N: usize = 30;
    let jira = Emulator::start(Product::Jira).await;
    let s = TestServer::start_toml(&toml(&jira, "[guard]\nmax_offboardings = 10\n"), &[("ATL_TOKEN", ATL_TOKEN)]).await;
    for i in 0..N {
        jira.add_user(&format!("b{i}"));
    }
    let names: Vec<String> = (0..N).map(|i| format!("b{i}")).collect();
    let body = json!({"target": "jira", "usernames": names, "mode": "apply"});
    let (code, refusal) = admin(&s, reqwest::Method::POST, "/deactivate", Some(body.clone()), ADMIN_TOKEN).await;
    assert_eq!(code, 409, "{refusal}");
    let detail = refusal["detail"].as_str().expect("detail");
    assert!(
        detail.contains("30 accounts") && detail.contains("limit of 10") && detail.contains("--allow-over-guard"),
        "{detail}"
    );
    assert_eq!(s.store().outbox_depth(), 0, "nothing was queued");
    assert_eq!(s.store().guard_status().held, 0);

    let (code, report) =
        admin(&s, reqwest::Method::POST, "/deactivate?allow_over_guard=true", Some(body), ADMIN_TOKEN).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["enqueued"], N);
    eventually("all deactivated", WAIT, || inactive(&jira, "b", N) == N).await;
    assert_eq!(s.store().guard_status().held, 0, "an allowed run is not held");
    assert_eq!(s.store().guard_status().used, 0, "nor counted");
    let run = report["run_id"].as_str().expect("run id");
    let records = s.store().audit_of_run(run).expect("audit").expect("run");
    assert!(records.iter().any(|r| r["action"] == "allow_over_guard" && r["accounts"] == N), "audited on the run");
    s.stop().await;
}
