//! Issue 9, "Real-server requests" and "Version awareness", end to end against the strict
//! emulator: SCIM requests → policy → outbox → delivery → emulated Jira, Confluence, Crowd and
//! Bitbucket, whose state and recorded requests the assertions read. XSRF opt-out on every write,
//! Jira users created without a seat, Bitbucket over Basic freeing the seat (direct grants too),
//! sessions ended where the release can, Jira anonymization followed across attempts, old
//! releases refused with the reason, and `check-config` proving versions and rights.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, BITBUCKET_PASSWORD, BITBUCKET_USER, TOKEN};
use crate::support::child::cli;
use crate::support::server::{eventually, TestServer};
use scimbridge::atlassian::{Action, Effect, Failure, PollPolicy, Product};

const WAIT: Duration = Duration::from_secs(30);
const NEW_OWNER: &str = "jira-admin";

/// A `[[target]]` block per emulator (named after its product) plus `extra_toml`.
async fn bridge(emus: &[&Emulator], extra_toml: &str) -> TestServer {
    let mut toml = String::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for emu in emus {
        let p = emu.product();
        let var = format!("{}_SECRET", p.as_str().to_uppercase());
        toml.push_str(&format!(
            "[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\n{}",
            emu.base_url(),
            emu.credentials_toml(&var)
        ));
        match p {
            Product::Bitbucket => toml.push_str("license_groups = [\"stash-users\"]\n"),
            Product::Jira => toml.push_str(&format!("anonymize_new_owner = \"{NEW_OWNER}\"\n")),
            _ => {}
        }
        toml.push('\n');
        env.push((var, emu.secret().to_string()));
    }
    toml.push_str(extra_toml);
    if !extra_toml.contains("[delivery]") {
        toml.push_str("\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n");
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    TestServer::start_toml(&toml, &env).await
}

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
}

/// Delivery audit records of a user once the outbox has drained.
async fn deliveries(s: &TestServer, user_id: &str) -> Vec<Value> {
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    s.store().audit_of(user_id).expect("audit").into_iter().filter(|r| r["type"] == "delivery").collect()
}

fn record<'a>(recs: &'a [Value], target: &str, action: &str, outcome: &str) -> &'a Value {
    recs.iter()
        .find(|r| r["target"] == target && r["action"]["type"] == action && r["outcome"] == outcome)
        .unwrap_or_else(|| panic!("no {outcome} {action} on {target}: {recs:#?}"))
}

fn notes(r: &Value) -> String {
    r["notes"]
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

fn assert_strict_and_clean(emus: &[&Emulator]) {
    for emu in emus {
        assert_eq!(emu.xsrf_refusals(), 0, "{}: a write drew an XSRF 403", emu.product());
        assert!(emu.violations().is_empty(), "{}: {:#?}", emu.product(), emu.violations());
    }
}

// ---------------------------------------------------------------- XSRF

#[tokio::test]
async fn the_emulator_refuses_a_write_without_the_xsrf_opt_out_so_the_other_checks_can_fail() {
    let bb = Emulator::start(Product::Bitbucket).await;
    let http = reqwest::Client::new();
    let create = format!(
        "{}/rest/api/1.0/admin/users?name=x&displayName=X&emailAddress=x%40example.com&password=pw1&addToDefaultGroup=true",
        bb.base_url()
    );
    let r = http.post(&create).basic_auth(BITBUCKET_USER, Some(BITBUCKET_PASSWORD)).send().await.expect("post");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.text().await.expect("body"), "XSRF check failed");
    assert_eq!(bb.xsrf_refusals(), 1);
    assert!(bb.user("x").is_none());
    let r = http
        .post(&create)
        .basic_auth(BITBUCKET_USER, Some(BITBUCKET_PASSWORD))
        .header("X-Atlassian-Token", "no-check")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(bb.xsrf_refusals(), 1);
}

#[tokio::test]
async fn provisioning_and_offboarding_on_all_four_products_draws_no_xsrf_refusal() {
    let (jira, wiki, crowd, bb) = (
        Emulator::start(Product::Jira).await,
        Emulator::start(Product::Confluence).await,
        Emulator::start(Product::Crowd).await,
        Emulator::start(Product::Bitbucket).await,
    );
    // Not pre-created: scimbridge creates the groups the IdP pushes (and touches no other).
    let s = bridge(&[&jira, &wiki, &crowd, &bb], "[policy]\non_delete = \"delete\"\n").await;
    let id = s.create_user("pat").await;
    s.create_group("engineering", &[&id]).await;
    eventually("pat created and in engineering everywhere", WAIT, || {
        [&jira, &wiki, &crowd, &bb].iter().all(|e| e.user("pat").is_some_and(|u| u.groups.contains("engineering")))
    })
    .await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    eventually("pat deleted everywhere", WAIT, || {
        [&jira, &wiki, &crowd, &bb].iter().all(|e| e.user("pat").is_some_and(|u| u.deleted))
    })
    .await;
    let recs = deliveries(&s, &id).await;
    assert!(recs.iter().all(|r| r["outcome"] == "delivered"), "{recs:#?}");
    assert_strict_and_clean(&[&jira, &wiki, &crowd, &bb]);
}

// ---------------------------------------------------------------- Jira seats

#[tokio::test]
async fn a_created_jira_user_holds_no_seat_until_a_synced_group_grants_one() {
    let jira = Emulator::start(Product::Jira).await;
    // The emulator is not kinder than Jira: a create without applicationKeys takes a seat.
    let r = reqwest::Client::new()
        .post(format!("{}/rest/api/2/user", jira.base_url()))
        .bearer_auth(TOKEN)
        .header("X-Atlassian-Token", "no-check")
        .json(&json!({"name": "raw", "displayName": "Raw", "emailAddress": "raw@example.com"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(jira.seats_used("jira-software"), 1, "default application assigned");

    // The default application's group exists already: an admin maps the IdP group into it.
    let s =
        bridge(&[&jira], "[[group_map]]\nidp = \"jira-software-users\"\natlassian = \"jira-software-users\"\n").await;
    let id = s.create_user("nia").await;
    eventually("nia created", WAIT, || jira.user("nia").is_some()).await;
    deliveries(&s, &id).await;
    assert!(jira.user("nia").unwrap().groups.is_empty(), "no default group");
    assert_eq!(jira.seats_used("jira-software"), 1, "nia holds no seat");
    s.create_group("jira-software-users", &[&id]).await;
    eventually("the synced group grants nia a seat", WAIT, || jira.seats_used("jira-software") == 2).await;
    assert_strict_and_clean(&[&jira]);
}

// ---------------------------------------------------------------- Bitbucket

#[tokio::test]
async fn bitbucket_with_basic_creates_adds_to_groups_and_frees_the_seat_also_for_a_direct_grant() {
    let bb = Emulator::start(Product::Bitbucket).await;
    let s = bridge(&[&bb], "").await;
    let otto = s.create_user("otto").await;
    let ute = s.create_user("ute").await;
    s.create_group("developers", &[&otto, &ute]).await;
    eventually("both created, licensed and in developers", WAIT, || {
        ["otto", "ute"]
            .iter()
            .all(|n| bb.user(n).is_some_and(|u| u.groups.contains("stash-users") && u.groups.contains("developers")))
    })
    .await;
    assert_eq!(bb.licensed_count(), 2);
    // ute also holds LICENSED_USER directly, as admins often grant it.
    bb.grant_permission("ute", "LICENSED_USER");
    for id in [&otto, &ute] {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    eventually("both seats freed", WAIT, || bb.licensed_count() == 0).await;
    assert_eq!(bb.direct_permission("ute"), None);
    assert!(bb.user("otto").is_some_and(|u| !u.groups.contains("stash-users") && u.groups.contains("developers")));
    let recs = deliveries(&s, &ute).await;
    let removal = record(&recs, "bitbucket", "remove_license", "delivered");
    assert!(notes(removal).contains("revoked the global permission LICENSED_USER"), "{removal}");
    assert!(notes(removal).contains("no REST API to end a user's sessions"), "{removal}");
    // Every admin call went out as Basic: a token would have drawn 401.
    assert!(bb.received().iter().all(|r| r.status != Some(401)), "{:#?}", bb.received());
    assert_strict_and_clean(&[&bb]);
}

#[tokio::test]
async fn bitbucket_never_revokes_a_direct_administrator_grant_and_says_what_to_do() {
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_user("ada");
    bb.add_member("ada", "stash-users");
    bb.grant_permission("ada", "ADMIN");
    let exec = bb
        .connector()
        .execute(&Action::RemoveLicense { username: "ada".into(), groups: vec!["stash-users".into()] })
        .await;
    match exec.result {
        Err(Failure::Permanent { reason }) => {
            assert!(reason.contains("ADMIN") && reason.contains("Global permissions"), "{reason}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(bb.direct_permission("ada").as_deref(), Some("ADMIN"));
    assert_eq!(bb.count("DELETE", "/rest/api/1.0/admin/permissions/users"), 0);
}

#[tokio::test]
async fn the_emulated_bitbucket_refuses_a_token_on_admin_endpoints_as_bitbucket_does() {
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_user("tom");
    let http = reqwest::Client::new();
    let list = format!("{}/rest/api/1.0/admin/users?filter=tom", bb.base_url());
    let r = http.get(&list).bearer_auth(TOKEN).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.expect("body").contains("BSERV-10482"));
    let r = http.get(&list).basic_auth(BITBUCKET_USER, Some(BITBUCKET_PASSWORD)).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    // application-properties needs no authentication at all.
    let r = http.get(format!("{}/rest/api/1.0/application-properties", bb.base_url())).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn check_config_refuses_a_bitbucket_target_with_only_a_token_naming_the_atlassian_limitation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("bb.toml");
    std::fs::write(
        &cfg,
        "[[target]]\nname = \"git\"\nproduct = \"bitbucket\"\nurl = \"https://git.example.com\"\ntoken_env = \"BB_TOKEN\"\nlicense_groups = [\"stash-users\"]\n",
    )
    .expect("write");
    let (code, _, err) = cli(&["check-config", "--config", cfg.to_str().expect("utf8")], &[("BB_TOKEN", "x")]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("target[0].token_env") && err.contains("BSERV-10482") && err.contains("Basic"), "{err}");
}

// ---------------------------------------------------------------- sessions

#[tokio::test]
async fn crowd_sessions_are_ended_when_the_user_is_disabled() {
    let crowd = Emulator::start(Product::Crowd).await;
    let s = bridge(&[&crowd], "").await;
    let id = s.create_user("cleo").await;
    eventually("cleo created", WAIT, || crowd.user("cleo").is_some()).await;
    crowd.set_sessions("cleo", 3);
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("cleo inactive with no session", WAIT, || {
        crowd.user("cleo").is_some_and(|u| !u.active && u.sessions == 0)
    })
    .await;
    assert_eq!(crowd.count("DELETE", "/rest/usermanagement/1/session?username=cleo"), 1);
    // The release was read at start from the admin API's server-info, asked without credentials.
    crowd.set_version("5.1.4");
    let v = crowd.connector().server_version().await.expect("read");
    assert_eq!(v.map(|v| v.to_string()).as_deref(), Some("5.1.4"));
    assert!(crowd.count("GET", "/rest/admin/1.0/server-info") >= 2);
    // A Crowd whose admin API refuses the anonymous call: the release is unknown, not an error.
    crowd.fail_next(1, crate::support::atlassian_emulator::Fault::status(401));
    assert_eq!(crowd.connector().server_version().await.expect("not an error"), None);
    assert_strict_and_clean(&[&crowd]);
}

#[tokio::test]
async fn jira_sessions_are_ended_from_9_11_and_before_that_the_audit_says_it_was_not_possible() {
    for (version, ended) in [("8.20.0", false), ("9.12.0", true), ("10.3.0", true)] {
        let jira = Emulator::start(Product::Jira).await;
        jira.set_version(version);
        jira.add_user("vic");
        let s = bridge(&[&jira], "[policy]\ncreate_users = false\n").await;
        let id = s.create_user("vic").await;
        jira.set_sessions("vic", 2);
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
        let recs = deliveries(&s, &id).await;
        let deact = record(&recs, "jira", "deactivate", "delivered");
        let u = jira.user("vic").unwrap();
        assert!(!u.active, "{version}");
        let kills = jira.count("DELETE", "/rest/api/2/user/session/");
        if ended {
            assert_eq!((u.sessions, kills), (0, 1), "{version}");
            assert!(!notes(deact).contains("sessions not ended"), "{version}: {deact}");
        } else {
            assert_eq!((u.sessions, kills), (2, 0), "{version}: no call to a resource 8.20 lacks");
            assert!(notes(deact).contains("not possible on this version"), "{version}: {deact}");
        }
        assert_strict_and_clean(&[&jira]);
    }
}

#[tokio::test]
async fn confluence_deactivation_records_that_confluence_has_no_session_api() {
    let wiki = Emulator::start(Product::Confluence).await;
    let s = bridge(&[&wiki], "").await;
    let id = s.create_user("dora").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    let recs = deliveries(&s, &id).await;
    assert!(wiki.user("dora").is_some_and(|u| !u.active));
    let deact = record(&recs, "confluence", "deactivate", "delivered");
    assert!(notes(deact).contains("Confluence Data Center has no REST API to end a user's sessions"), "{deact}");
}

// ---------------------------------------------------------------- versions

#[tokio::test]
async fn each_emulated_release_is_read_with_the_products_own_resource() {
    let cases = [
        (Product::Jira, "8.20.0", "/rest/api/2/serverInfo"),
        (Product::Jira, "9.12.3", "/rest/api/2/serverInfo"),
        (Product::Jira, "10.3.0", "/rest/api/2/serverInfo"),
        (Product::Confluence, "7.19.0", "/rest/applinks/1.0/manifest"),
        (Product::Confluence, "8.5.0", "/rest/applinks/1.0/manifest"),
        (Product::Confluence, "9.2.0", "/rest/api/server-information"),
        (Product::Bitbucket, "8.19.0", "/rest/api/1.0/application-properties"),
        (Product::Crowd, "5.3.0", "/rest/admin/1.0/server-info"),
    ];
    for (product, version, resource) in cases {
        let emu = Emulator::start(product).await;
        emu.set_version(version);
        let conn = emu.connector();
        let got = conn.server_version().await.unwrap_or_else(|f| panic!("{product} {version}: {f}"));
        assert_eq!(got.map(|v| v.to_string()).as_deref(), Some(version), "{product}");
        assert_eq!(emu.count("GET", resource), 1, "{product} {version}: {:#?}", emu.received());
        // Read once per connector.
        conn.server_version().await.expect("cached");
        assert_eq!(emu.count("GET", resource), 1, "{product} {version}");
        assert!(emu.violations().is_empty(), "{product}: {:#?}", emu.violations());
    }
}

#[tokio::test]
async fn a_jira_before_10_3_is_listed_with_user_search_chosen_by_its_release() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_version("9.12.3");
    jira.seed_users((0..3).map(|i| (format!("s{i}"), Some(chrono::Utc::now()), true)));
    let stats = jira.connector().for_each_account(|_| std::ops::ControlFlow::Continue(())).await.expect("listed");
    assert_eq!(stats.accounts, 4, "three users and the service account");
    assert_eq!(jira.count("GET", "/rest/api/2/user/list"), 0, "not asked for a resource 9.12 lacks");
    assert!(jira.count("GET", "/rest/api/2/user/search") >= 1);
    assert!(jira.violations().is_empty(), "{:#?}", jira.violations());
}

// ---------------------------------------------------------------- old releases

#[tokio::test]
async fn jira_before_8_3_is_refused_with_the_reason_and_never_counted_as_done() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_version("8.2.0");
    jira.add_user("old");
    let s = bridge(&[&jira], "[policy]\ncreate_users = false\n").await;
    let id = s.create_user("old").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    let recs = deliveries(&s, &id).await;
    let dead = record(&recs, "jira", "deactivate", "dead");
    let why = dead["error"].as_str().unwrap_or_default();
    assert!(why.contains("Jira 8.2.0") && why.contains("8.3") && why.contains("JRASERVER-37294"), "{why}");
    assert!(!recs.iter().any(|r| r["outcome"] == "delivered"), "{recs:#?}");
    assert!(jira.user("old").unwrap().active);
    assert_eq!(jira.count("PUT", "/rest/api/2/user"), 0, "refused before sending what 8.2 ignores");
}

#[tokio::test]
async fn jira_whose_version_cannot_be_read_still_never_takes_no_value_found_as_done() {
    // A Jira 8.2 whose serverInfo answers 404 (hidden by a proxy): the release is unknown, the
    // PUT goes out, Jira ignores `active` and answers "no value found to be changed" for a user
    // the read just saw active. That must be a refusal with the reason, never "already done".
    let jira = Emulator::start(Product::Jira).await;
    jira.set_version("8.2.0");
    jira.add_user("old");
    let conn = jira.connector();
    jira.fail_next(1, crate::support::atlassian_emulator::Fault::status(404));
    let exec = conn.execute(&Action::Deactivate { username: "old".into() }).await;
    match exec.result {
        Err(Failure::Permanent { reason }) => {
            assert!(reason.contains("ignored 'active'") && reason.contains("8.3"), "{reason}")
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    assert_eq!(jira.count("PUT", "/rest/api/2/user"), 1);
    assert!(jira.user("old").unwrap().active);
}

#[tokio::test]
async fn confluence_before_8_4_is_refused_with_the_reason() {
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.set_version("7.19.0");
    wiki.add_user("ola");
    let exec = wiki.connector().execute(&Action::Deactivate { username: "ola".into() }).await;
    match exec.result {
        Err(Failure::Permanent { reason }) => {
            assert!(reason.contains("Confluence 7.19.0") && reason.contains("8.4"), "{reason}")
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    // The release came from the applinks manifest (7.19 has no server-information).
    assert_eq!(wiki.count("GET", "/rest/applinks/1.0/manifest"), 1);
    assert!(wiki.user("ola").unwrap().active);
}

// ---------------------------------------------------------------- Jira anonymization

fn jira_with_owner(emu: &Emulator) -> scimbridge::atlassian::Connector {
    emu.add_user(NEW_OWNER);
    emu.connector().with_anonymize_new_owner(Some(NEW_OWNER.into()))
}

#[tokio::test]
async fn jira_anonymization_refusals_keep_every_per_operation_reason() {
    let jira = Emulator::start(Product::Jira).await;
    let conn = jira_with_owner(&jira);
    jira.add_user("lena");
    jira.set_directory("lena", "Corporate LDAP (read-only)");
    let f = conn.execute(&Action::Anonymize { username: "lena".into() }).await.result.expect_err("refused");
    let why = f.reason();
    assert!(matches!(f, Failure::Permanent { .. }), "{f}");
    for part in ["USER_DISABLE: We can't anonymize this user", "read-only", "USER_NAME_CHANGE: We can't rename users"] {
        assert!(why.contains(part), "{part:?} missing from {why}");
    }
    let f = conn
        .execute(&Action::Anonymize { username: crate::support::atlassian_emulator::SERVICE_USER.into() })
        .await
        .result
        .expect_err("refused");
    assert!(f.reason().contains("GENERAL: You can't anonymize yourself."), "{f}");
    assert_eq!(jira.count("POST", "/rest/api/2/user/anonymization"), 0);
    assert!(jira.violations().is_empty(), "{:#?}", jira.violations());
}

#[tokio::test]
async fn jira_anonymization_without_a_configured_owner_or_system_administrator_is_refused_with_the_fix() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("mo");
    let f = jira.connector().execute(&Action::Anonymize { username: "mo".into() }).await.result.expect_err("no owner");
    assert!(f.reason().contains("anonymize_new_owner"), "{f}");
    let conn = jira_with_owner(&jira);
    jira.set_caller_rights(true, false);
    let f = conn.execute(&Action::Anonymize { username: "mo".into() }).await.result.expect_err("403");
    assert!(matches!(f, Failure::Permanent { .. }) && f.reason().contains("System Administrator"), "{f}");
    assert!(!jira.user("mo").unwrap().anonymized);
}

#[tokio::test]
async fn a_jira_anonymization_completed_with_errors_is_a_failure_with_its_reason() {
    let jira = Emulator::start(Product::Jira).await;
    let conn = jira_with_owner(&jira);
    jira.add_user("nell");
    jira.set_anonymization_step_errors(true);
    let f = conn.execute(&Action::Anonymize { username: "nell".into() }).await.result.expect_err("errors");
    assert!(f.reason().contains("completed with errors") && f.reason().contains("filter subscriptions"), "{f}");
}

#[tokio::test]
async fn a_long_jira_anonymization_is_followed_across_attempts_never_scheduled_again() {
    let jira = Emulator::start(Product::Jira).await;
    let conn = jira_with_owner(&jira).with_poll_policy(PollPolicy {
        deadline: Duration::from_millis(80),
        ..crate::support::atlassian_emulator::fast_polling()
    });
    jira.add_user("olga");
    jira.set_task_duration(Duration::from_millis(600));
    let action = Action::Anonymize { username: "olga".into() };
    let first = conn.execute(&action).await;
    assert!(matches!(first.result, Err(Failure::Retryable { .. })), "{:?}", first.result);
    let mut resume = first.resume.clone().expect("the task id to resume from");
    let mut attempts = 1;
    let effect = loop {
        attempts += 1;
        assert!(attempts < 100, "the task never completed");
        let next = conn.execute_resuming(&action, Some(&resume)).await;
        match next.result {
            Ok(effect) => break effect,
            Err(Failure::Retryable { .. }) => resume = next.resume.expect("still resuming the same task"),
            Err(f) => panic!("{f}"),
        }
    };
    assert_eq!(effect, Effect::Applied);
    assert!(attempts > 2, "the task outlived several attempts");
    assert!(jira.user("olga").unwrap().anonymized);
    assert_eq!(jira.count("POST", "/rest/api/2/user/anonymization"), 1, "scheduled once");
    assert!(jira.received().iter().all(|r| r.status != Some(409)), "never met its own lock");
}

#[tokio::test]
async fn the_delivery_worker_keeps_the_task_id_in_the_outbox_and_follows_it_to_completion() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user(NEW_OWNER);
    // Each attempt follows the task for 1 s; the task runs 5 s.
    let s = bridge(
        &[&jira],
        "[policy]\non_delete = \"anonymize\"\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\nlong_task_wait_secs = 1\n",
    )
    .await;
    let id = s.create_user("pia").await;
    eventually("pia created", WAIT, || jira.user("pia").is_some()).await;
    jira.set_task_duration(Duration::from_secs(5));
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    eventually("pia anonymized", Duration::from_secs(60), || jira.user("pia").is_some_and(|u| u.anonymized)).await;
    let recs = deliveries(&s, &id).await;
    let retries: Vec<&Value> =
        recs.iter().filter(|r| r["action"]["type"] == "anonymize" && r["outcome"] == "retry").collect();
    assert!(!retries.is_empty(), "the task outlived an attempt: {recs:#?}");
    assert!(retries.iter().all(|r| r["resume"].as_str().is_some_and(|t| t.contains("task"))), "{retries:#?}");
    record(&recs, "jira", "anonymize", "delivered");
    assert_eq!(jira.count("POST", "/rest/api/2/user/anonymization"), 1, "scheduled once");
    assert!(jira.received().iter().all(|r| r.status != Some(409)));
    assert_eq!(jira.anonymization_owners(), vec![jira.user(NEW_OWNER).unwrap().key]);
}

// ---------------------------------------------------------------- check-config --live

#[tokio::test]
async fn check_config_live_reports_each_version_and_refuses_missing_rights() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_version("9.12.3");
    jira.add_user(NEW_OWNER);
    let bb = Emulator::start(Product::Bitbucket).await;
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.set_version("8.5.0");
    let tmp = tempfile::tempdir().expect("tmp");
    // Jira and Bitbucket under a policy that anonymizes; Confluence (which cannot) on its own.
    let both = tmp.path().join("live.toml");
    std::fs::write(
        &both,
        format!(
            "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\nanonymize_new_owner = \"{NEW_OWNER}\"\n\n\
             [[target]]\nname = \"git\"\nproduct = \"bitbucket\"\nurl = \"{}\"\nusername = \"{BITBUCKET_USER}\"\npassword_env = \"BB_PASSWORD\"\nlicense_groups = [\"stash-users\"]\n\n\
             [policy]\non_delete = \"anonymize\"\n",
            jira.base_url(),
            bb.base_url(),
        ),
    )
    .expect("write");
    let alone = tmp.path().join("wiki.toml");
    std::fs::write(
        &alone,
        format!(
            "[[target]]\nname = \"wiki\"\nproduct = \"confluence\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n",
            wiki.base_url()
        ),
    )
    .expect("write");
    let run = |cfg: &std::path::Path| {
        let path = cfg.display().to_string();
        tokio::task::spawn_blocking(move || {
            cli(
                &["check-config", "--live", "--config", &path],
                &[("ATL_TOKEN", TOKEN), ("BB_PASSWORD", BITBUCKET_PASSWORD)],
            )
        })
    };
    let (code, out, err) = run(&both).await.expect("join");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("jira: reachable") && out.contains("Jira 9.12.3") && out.contains("system administrator: yes"),
        "{out}"
    );
    assert!(out.contains(&format!("anonymize_new_owner {NEW_OWNER}: active")), "{out}");
    assert!(out.contains("git: reachable") && out.contains("Bitbucket 8.19.0") && out.contains("ADMIN: yes"), "{out}");
    let (code, out, err) = run(&alone).await.expect("join");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("wiki: reachable") && out.contains("Confluence 8.5.0") && out.contains("administrator: yes"),
        "{out}"
    );

    // A plain Jira administrator cannot anonymize; a Bitbucket account below ADMIN cannot
    // manage users; a Confluence 7.19 has no user REST at all.
    jira.set_caller_rights(true, false);
    bb.set_caller_rights(false, false);
    let (code, out, _) = run(&both).await.expect("join");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("jira: NOT usable") && out.contains("System Administrator"), "{out}");
    assert!(out.contains("git: NOT usable") && out.contains("ADMIN global permission"), "{out}");
    wiki.set_version("7.19.0");
    let (code, out, _) = run(&alone).await.expect("join");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wiki: NOT usable") && out.contains("8.4"), "{out}");
    for emu in [&jira, &bb, &wiki] {
        assert!(emu.received().iter().all(|r| r.method == "GET"), "{}: live checks write nothing", emu.product());
    }
}

/// The accounts a Jira target's keys name (`lead_successor`, `anonymize_new_owner`) must exist
/// and be active: otherwise the fallback or the anonymization fails on the leaver it is for.
#[tokio::test]
async fn check_config_live_refuses_a_lead_successor_or_new_owner_that_is_missing_or_deactivated() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user(NEW_OWNER);
    jira.add_user("lead-heir");
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("jira.toml");
    let write = |successor: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n\
                 lead_successor = \"{successor}\"\nanonymize_new_owner = \"{NEW_OWNER}\"\n\n[policy]\non_delete = \"anonymize\"\n",
                jira.base_url()
            ),
        )
        .expect("write")
    };
    let run = || {
        let path = cfg.display().to_string();
        tokio::task::spawn_blocking(move || {
            cli(&["check-config", "--live", "--config", &path], &[("ATL_TOKEN", TOKEN)])
        })
    };
    write("lead-heir");
    let (code, out, err) = run().await.expect("join");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("lead_successor lead-heir: active"), "{out}");

    write("lead-hier");
    let (code, out, _) = run().await.expect("join");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("jira: NOT usable") && out.contains("lead_successor = \"lead-hier\" names no account"),
        "{out}"
    );

    write("lead-heir");
    jira.set_active(NEW_OWNER, false);
    let (code, out, _) = run().await.expect("join");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("anonymize_new_owner = \"{NEW_OWNER}\" names a deactivated account")), "{out}");
    assert!(jira.received().iter().all(|r| r.method == "GET"), "live checks write nothing");
}
