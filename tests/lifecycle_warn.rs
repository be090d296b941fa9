//! Warn first, then act (issue 12 §3), against the Jira emulator with a clock the test moves by
//! days: cleanup and the licence optimizer with `warn_days = 7` record a warning for each selected
//! user (to their Atlassian e-mail, what, when, run id) and act only after the grace period; a
//! user who logs in meanwhile is `kept: active during grace`; one deactivated by something else
//! (here: deleted in the IdP) or by hand is closed with nothing to do; a re-run during the grace
//! period warns nobody twice and queues nothing; a restart during it changes nothing; the dry run
//! lists who would be warned and when each action falls due.
//!
//! The warning e-mails go out through the notifications lane to a real SMTP receiver started by
//! the test: exactly one per warned user, to their Atlassian e-mail, with the due date, none in
//! a dry run, none again after a restart; and `undo` of the warning run (whose deactivations the
//! sweep queued after the grace period) reactivates those users with their groups.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::server::{config_with_toml, eventually, TestServer, ADMIN_TOKEN};
use crate::support::smtp::{Received, SmtpReceiver};
use scimbridge::atlassian::Product;
use scimbridge::clock::{Clock, ManualClock};
use scimbridge::lifecycle::KEPT_ACTIVE;

const WAIT: Duration = Duration::from_secs(20);
const LICENSE: &str = "jira-software-users";
const ACCESS: &str = "jira-eligible";

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn days_before(clock: &ManualClock, d: i64) -> Option<DateTime<Utc>> {
    Some(clock.now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

async fn admin(s: &TestServer, path: &str) -> Value {
    let r = s.client.post(format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("admin request");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "POST {path}: {body:#}");
    body
}

fn finding<'a>(report: &'a Value, user: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["username"] == user))
        .unwrap_or_else(|| panic!("no finding for {user} in {report:#}"))
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

/// The `warning` audit records of one delivery lane (the place to add "and the e-mail arrived").
fn warnings(s: &TestServer, lane: &str) -> Vec<Value> {
    s.store().audit_of(lane).expect("audit").into_iter().filter(|r| r["type"] == "warning").collect()
}

/// How the grace period of one lane ended (its `grace` audit record).
fn grace_end(s: &TestServer, lane: &str) -> Option<Value> {
    s.store().audit_of(lane).expect("audit").into_iter().find(|r| r["type"] == "grace")
}

async fn stored_reports(s: &TestServer) -> Vec<Value> {
    let r = s.client.get(format!("{}/admin/reports?limit=50", s.root)).bearer_auth(ADMIN_TOKEN).send().await;
    let v: Value = r.expect("reports").json().await.expect("json");
    v["reports"].as_array().or_else(|| v["Resources"].as_array()).cloned().unwrap_or_default()
}

/// The target, and `[notify.smtp]` (required with `warn_days > 0`) pointing at `SMTP_URL`.
fn target(jira: &Emulator) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n\
         [delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n\
         [notify.smtp]\nurl_env = \"SMTP_URL\"\nfrom = \"scimbridge@example.com\"\nadmins = [\"atlassian-admins@example.com\"]\n",
        jira.base_url()
    )
}

/// The user warnings the receiver got (the admins' own notices have another subject).
fn warning_mails(smtp: &SmtpReceiver) -> Vec<Received> {
    smtp.messages().into_iter().filter(|m| m.readable().contains("Subject: Action needed")).collect()
}

/// The warnings addressed to `to`.
fn mails_to(smtp: &SmtpReceiver, to: &str) -> Vec<Received> {
    warning_mails(smtp).into_iter().filter(|m| m.to == [to.to_string()]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_warns_first_keeps_who_logs_in_during_grace_and_deactivates_the_rest_after_it() {
    let clock = ManualClock::new(Utc::now());
    let start = clock.now();
    let jira = Emulator::start(Product::Jira).await;
    let smtp = SmtpReceiver::start().await;
    let seed = [("old", 200), ("stale", 120), ("returning", 150), ("leaver", 130), ("recent", 3)];
    jira.seed_users(seed.iter().map(|(n, d)| (n.to_string(), days_before(&clock, *d), true)));
    jira.add_member("old", "devs");
    jira.add_member("old", LICENSE);
    jira.add_member("stale", "support");
    let toml = format!("{}[cleanup]\ninactive_days = 90\nwarn_days = 7\n", target(&jira));
    let tmp = tempfile::tempdir().expect("dir");
    let smtp_url = smtp.url();
    let env = [("ATL_TOKEN", ATL_TOKEN), ("SMTP_URL", smtp_url.as_str())];
    let config = config_with_toml(tmp.path(), &toml, &env);
    let s = TestServer::start_with_clock(config.clone(), clock.clone()).await;
    // An IdP-provisioned user who went quiet, and is deleted in the IdP during the grace period.
    let carol = s
        .create_user_from(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "carol",
            "name": {"givenName": "Carol", "familyName": "Quiet"},
            "emails": [{"value": "carol@example.com", "type": "work", "primary": true}],
            "active": true
        }))
        .await["id"]
        .as_str()
        .expect("carol's id")
        .to_string();
    eventually("carol created in Jira", WAIT, || jira.user("carol").is_some()).await;
    jira.set_last_active("carol", days_before(&clock, 100));
    let due = text(start + chrono::Duration::days(7));
    let selected = ["carol", "leaver", "old", "returning", "stale"];

    // The dry run lists who would be warned, where, and when each action would fall due.
    let dry = admin(&s, "/admin/cleanup?mode=dry-run").await;
    assert_eq!(names(&dry), selected, "{dry:#}");
    for n in ["old", "stale", "returning", "leaver"] {
        let f = finding(&dry, n);
        assert_eq!(f["action"], "deactivate");
        assert_eq!(f["warn_to"], format!("{n}@example.com"), "{f}");
        assert_eq!(f["due_at"], due, "{f}");
        assert!(f.get("warned_at").is_none(), "a dry run warns nobody: {f}");
    }
    assert_eq!(dry["details"]["warned"], 5, "{dry:#}");
    assert!(s.store().grace_entries().expect("grace").is_empty(), "a dry run records nothing");
    assert!(warnings(&s, "atlassian:old").is_empty());
    assert_eq!(s.store().pending_notice_count(), 0, "a dry run e-mails nobody");

    // Apply warns and queues nothing yet.
    let applied = admin(&s, "/admin/cleanup?mode=apply").await;
    let run_id = applied["run_id"].as_str().expect("run id").to_string();
    assert_eq!(applied["enqueued"], 0, "{applied:#}");
    assert_eq!(names(&applied), selected);
    assert_eq!(finding(&applied, "old")["warned_at"], text(start));
    assert_eq!(finding(&applied, "old")["due_at"], due);
    let w = warnings(&s, "atlassian:old");
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0]["to"], "old@example.com");
    assert_eq!(w[0]["what"], "deactivate");
    assert_eq!(w[0]["when"], due);
    assert_eq!(w[0]["run_id"], run_id);
    assert!(w[0]["notice"]["keep"].as_str().is_some_and(|k| k.contains("Log in")), "{w:#?}");
    assert_eq!(warnings(&s, &carol).len(), 1, "an IdP user's warning is in their own history");
    assert_eq!(s.store().grace_entries().expect("grace").len(), 5);
    assert_eq!(s.store().outbox_depth(), 0);

    // Each warned user gets one e-mail, at their Atlassian address, saying what, when, and how
    // to keep the account.
    let carol_to = finding(&applied, "carol")["warn_to"].as_str().expect("carol's address").to_string();
    assert_eq!(carol_to, "carol@example.com", "the address Jira holds, as the IdP set it");
    let addresses: Vec<String> = ["leaver", "old", "returning", "stale"]
        .iter()
        .map(|n| format!("{n}@example.com"))
        .chain([carol_to.clone()])
        .collect();
    eventually("the five warning e-mails arrive", WAIT, || warning_mails(&smtp).len() == 5).await;
    for to in &addresses {
        let mails = mails_to(&smtp, to);
        assert_eq!(mails.len(), 1, "exactly one warning to {to}: {:#?}", warning_mails(&smtp));
        let text = mails[0].readable();
        assert!(text.contains(&format!("deactivated on {due}")), "what and when: {text}");
        assert!(text.contains("Logging in to Jira before then keeps your account"), "how to keep it: {text}");
        assert!(text.contains(&run_id), "which run: {text}");
    }
    assert!(mails_to(&smtp, "recent@example.com").is_empty(), "an active user is not warned");

    // A day later, a re-run warns nobody twice and queues nothing.
    clock.advance(chrono::Duration::days(1));
    let again = admin(&s, "/admin/cleanup?mode=apply").await;
    assert_eq!(again["enqueued"], 0, "{again:#}");
    assert_eq!(again["details"]["warned"], 0, "{again:#}");
    assert_eq!(again["details"]["in_grace"], 5, "{again:#}");
    assert_eq!(finding(&again, "stale")["due_at"], due, "the due date stays the one the user was told");
    assert_eq!(warnings(&s, "atlassian:old").len(), 1);
    assert_eq!(s.store().outbox_depth(), 0);

    // A restart during the grace period changes nothing, and sends no warning again.
    let kept_dir = s.stop_keep_dir().await;
    let s = TestServer::start_with_clock(config.clone(), clock.clone()).await;
    assert_eq!(s.store().grace_entries().expect("grace").len(), 5);
    drop(kept_dir);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((warning_mails(&smtp).len(), s.store().pending_notice_count()), (5, 0), "no warning twice");

    // Day 3: one logs in, one is deactivated by hand, carol is deleted in the IdP.
    clock.advance(chrono::Duration::days(2));
    jira.set_last_active("returning", Some(clock.now()));
    jira.set_active("leaver", false);
    assert_eq!(s.delete(&format!("/Users/{carol}")).await.status, 204);
    eventually("the IdP's deletion deactivates carol", WAIT, || jira.user("carol").is_some_and(|u| !u.active)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(jira.user("old").is_some_and(|u| u.active), "nothing acts before the due date");

    // Day 8: the grace period is over.
    clock.advance(chrono::Duration::days(5));
    eventually("the silent two are deactivated", WAIT, || {
        ["old", "stale"].iter().all(|n| jira.user(n).is_some_and(|u| !u.active))
    })
    .await;
    eventually("every grace period ended", WAIT, || s.store().grace_entries().is_ok_and(|g| g.is_empty())).await;
    assert!(jira.user("returning").is_some_and(|u| u.active), "logged in during grace: kept");
    assert!(jira.user("recent").is_some_and(|u| u.active));
    let kept = grace_end(&s, "atlassian:returning").expect("returning's grace record");
    assert_eq!(kept["outcome"], "kept");
    assert_eq!(kept["detail"], KEPT_ACTIVE);
    assert_eq!(kept["reason"], "inactive", "the reason word of the warned action");
    let leaver = grace_end(&s, "atlassian:leaver").expect("leaver's grace record");
    assert_eq!(leaver["outcome"], "closed", "{leaver}");
    let carol_end = grace_end(&s, &carol).expect("carol's grace record");
    assert_eq!(carol_end["outcome"], "closed", "{carol_end}");
    // The action belongs to the run that warned (undo of that run finds it).
    let old_end = grace_end(&s, "atlassian:old").expect("old's grace record");
    assert_eq!((old_end["outcome"].as_str(), old_end["run_id"].as_str()), (Some("queued"), Some(run_id.as_str())));
    eventually("the deactivations are recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let old = s.store().audit_of("atlassian:old").expect("audit");
    assert!(
        old.iter().any(|r| r["type"] == "queued" && r["run_id"] == run_id.as_str() && r["trigger"] == "cleanup"),
        "{old:#?}"
    );
    // The sweep's run report says who was kept and why, in the same words.
    let reports = stored_reports(&s).await;
    let grace =
        reports.iter().find(|r| r["kind"] == "grace").unwrap_or_else(|| panic!("no grace report: {reports:#?}"));
    assert_eq!(finding(grace, "returning")["detail"], KEPT_ACTIVE, "{grace:#}");
    assert_eq!(finding(grace, "returning")["action"], "none");
    assert_eq!(finding(grace, "old")["action"], "deactivate");
    assert_eq!(grace["enqueued"], 2, "{grace:#}");
    assert_eq!(warning_mails(&smtp).len(), 5, "the sweep warns nobody again");

    // Jira keeps a deactivated user's groups; undo of the warning run (the deactivations are
    // its) reactivates the two, who still have them, and touches nobody else.
    for (n, groups) in [("old", ["devs", LICENSE].as_slice()), ("stale", ["support"].as_slice())] {
        let u = jira.user(n).expect("user");
        assert!(!u.active && groups.iter().all(|g| u.groups.contains(*g)), "{u:?}");
    }
    let undo = admin(&s, &format!("/admin/undo/{run_id}?mode=apply")).await;
    assert_eq!(undo["kind"], "undo", "{undo:#}");
    assert_eq!(names(&undo), ["old", "stale"], "{undo:#}");
    eventually("the undo reactivates the two", WAIT, || {
        s.store().outbox_depth() == 0 && ["old", "stale"].iter().all(|n| jira.user(n).is_some_and(|u| u.active))
    })
    .await;
    let old = jira.user("old").expect("old");
    assert!(old.groups.contains("devs") && old.groups.contains(LICENSE), "old keeps its groups: {old:?}");
    assert!(jira.user("stale").is_some_and(|u| u.groups.contains("support")), "stale keeps its group");
    assert!(jira.user("carol").is_some_and(|u| !u.active), "the IdP's deletion is not the run's to undo");
    assert!(jira.user("leaver").is_some_and(|u| !u.active), "deactivated by hand, not by the run");
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_reclaims_warn_first_and_keep_a_holder_who_logs_in_during_grace() {
    let clock = ManualClock::new(Utc::now());
    let start = clock.now();
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &[LICENSE], Some(10));
    let people = [("quiet", 60), ("back", 45), ("busy", 1)];
    jira.seed_users(people.iter().map(|(n, d)| (n.to_string(), days_before(&clock, *d), true)));
    for (n, _) in people {
        jira.add_member(n, LICENSE);
        jira.add_member(n, ACCESS);
    }
    let toml = format!(
        "{}[license]\nenabled = true\naccess_group = \"{ACCESS}\"\nlicense_group = \"{LICENSE}\"\ninactive_days = 30\nwarn_days = 7\n",
        target(&jira)
    );
    let tmp = tempfile::tempdir().expect("dir");
    let smtp = SmtpReceiver::start().await;
    let config = config_with_toml(tmp.path(), &toml, &[("ATL_TOKEN", ATL_TOKEN), ("SMTP_URL", &smtp.url())]);
    let s = TestServer::start_with_clock(config, clock.clone()).await;
    let due = text(start + chrono::Duration::days(7));

    let dry = admin(&s, "/admin/license/optimize?mode=dry-run").await;
    assert_eq!(names(&dry), ["back", "quiet"], "{dry:#}");
    for n in ["back", "quiet"] {
        let f = finding(&dry, n);
        assert_eq!((f["action"].as_str(), f["due_at"].as_str()), (Some("remove_license"), Some(due.as_str())), "{f}");
        assert_eq!(f["warn_to"], format!("{n}@example.com"));
    }
    assert!(s.store().grace_entries().expect("grace").is_empty());

    let applied = admin(&s, "/admin/license/optimize?mode=apply").await;
    assert_eq!(applied["enqueued"], 0, "{applied:#}");
    assert_eq!(applied["details"]["warned"], 2, "{applied:#}");
    assert_eq!(applied["details"]["seats_would_be_freed"], 0, "nothing is freed before the due date");
    let w = warnings(&s, "atlassian:quiet");
    assert_eq!(
        (w.len(), w[0]["what"].as_str(), w[0]["when"].as_str()),
        (1, Some("remove_license"), Some(due.as_str()))
    );
    assert!(s.store().license_entry("reclaimed", "jira", "quiet").expect("licence state").is_none());
    eventually("the two holders are e-mailed", WAIT, || warning_mails(&smtp).len() == 2).await;
    let quiet = mails_to(&smtp, "quiet@example.com");
    assert_eq!(quiet.len(), 1, "{:#?}", warning_mails(&smtp));
    assert!(
        quiet[0]
            .readable()
            .contains(&format!("removed from the licensed users (you lose access until it is given back) on {due}")),
        "{}",
        quiet[0].readable()
    );

    clock.advance(chrono::Duration::days(2));
    jira.set_last_active("back", Some(clock.now()));
    let again = admin(&s, "/admin/license/optimize?mode=apply").await;
    assert_eq!((again["enqueued"].as_u64(), again["details"]["warned"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert_eq!(warnings(&s, "atlassian:quiet").len(), 1, "never warned twice");

    clock.advance(chrono::Duration::days(6));
    eventually("the quiet holder loses the licence", WAIT, || {
        jira.user("quiet").is_some_and(|u| !u.groups.contains(LICENSE))
    })
    .await;
    eventually("every grace period ended", WAIT, || s.store().grace_entries().is_ok_and(|g| g.is_empty())).await;
    for n in ["back", "busy"] {
        assert!(jira.user(n).is_some_and(|u| u.groups.contains(LICENSE)), "{n} keeps the licence");
    }
    let kept = grace_end(&s, "atlassian:back").expect("back's grace record");
    assert_eq!((kept["outcome"].as_str(), kept["detail"].as_str()), (Some("kept"), Some(KEPT_ACTIVE)));
    // The way back knows the reclaim (an IdP signal or `license grant` returns the seat).
    assert!(s.store().license_entry("reclaimed", "jira", "quiet").expect("licence state").is_some());
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warned_action_on_a_target_that_left_the_configuration_is_closed_not_taken() {
    let clock = ManualClock::new(Utc::now());
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users([("old".to_string(), days_before(&clock, 200), true)]);
    let tmp = tempfile::tempdir().expect("dir");
    let smtp = SmtpReceiver::start().await;
    let smtp_url = smtp.url();
    let env = [("ATL_TOKEN", ATL_TOKEN), ("SMTP_URL", smtp_url.as_str())];
    let toml = format!("{}[cleanup]\ninactive_days = 90\nwarn_days = 7\n", target(&jira));
    let s = TestServer::start_with_clock(config_with_toml(tmp.path(), &toml, &env), clock.clone()).await;
    let applied = admin(&s, "/admin/cleanup?mode=apply").await;
    assert_eq!(names(&applied), ["old"], "{applied:#}");
    assert_eq!(s.store().grace_entries().expect("grace").len(), 1);
    let kept_dir = s.stop_keep_dir().await;
    // The same server, renamed: the warned target "jira" is gone from the configuration.
    let renamed = toml.replace("name = \"jira\"", "name = \"jira-new\"");
    let s = TestServer::start_with_clock(config_with_toml(tmp.path(), &renamed, &env), clock.clone()).await;
    clock.advance(chrono::Duration::days(8));
    eventually("the grace period ended", WAIT, || s.store().grace_entries().is_ok_and(|g| g.is_empty())).await;
    let end = grace_end(&s, "atlassian:old").expect("old's grace record");
    assert_eq!(end["outcome"], "closed", "{end}");
    assert!(end["detail"].as_str().is_some_and(|r| r.contains("no longer configured")), "{end}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(jira.user("old").is_some_and(|u| u.active), "nothing was sent anywhere");
    assert_eq!(s.store().outbox_depth(), 0);
    s.stop().await;
    drop(kept_dir);
}

/// A warning nobody can be e-mailed would only delay the action in silence: `warn_days > 0`
/// without `[notify.smtp]` is refused by the real loader, naming both keys; with the example's
/// `[notify.smtp]` uncommented the same file is valid.
#[test]
fn warn_days_without_notify_smtp_is_a_configuration_error_naming_both_keys() {
    use scimbridge::config::{self, ConfigError};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/scimbridge.example.toml");
    let example = std::fs::read_to_string(path).expect("the example config");
    assert_eq!(example.matches("\nwarn_days = 0\n").count(), 2, "the example writes warn_days in both tables");
    let warning = example.replace("\nwarn_days = 0\n", "\nwarn_days = 7\n");
    let env: std::collections::BTreeMap<String, String> = [
        ("SCIM_IDP_TOKENS", "idp-token-0123456789abcdef"),
        ("SCIM_ADMIN_TOKENS", "admin-token-0123456789abcdef"),
        ("JIRA_TOKEN", "jira-personal-access-token"),
        ("CROWD_APP_PASSWORD", "crowd-application-password"),
        ("SCIMBRIDGE_SMTP_URL", "smtp://mail-relay.internal:25?tls=none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let Err(ConfigError::Invalid(issues)) = config::validate(config::parse_file(&warning).expect("parses"), &env)
    else {
        panic!("warn_days = 7 without [notify.smtp] must be refused");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["cleanup.warn_days", "license.warn_days"], "{issues:?}");
    assert!(issues.iter().all(|i| i.reason.contains("[notify.smtp]")), "{issues:?}");
    let with_smtp = warning
        .replace("# [notify.smtp]\n# url_env", "[notify.smtp]\nurl_env")
        .replace("# from = \"scimbridge@example.com\"\n# admins", "from = \"scimbridge@example.com\"\nadmins");
    assert_ne!(with_smtp, warning, "the example's [notify.smtp] block moved: update this test");
    let c = config::validate(config::parse_file(&with_smtp).expect("parses"), &env)
        .unwrap_or_else(|e| panic!("warn_days with [notify.smtp] is valid: {e}"));
    assert_eq!((c.lifecycle.cleanup.warn_days, c.lifecycle.license.warn_days), (7, 7));
}
