//! Delivery honesty (issue 10): no stale replays of superseded intents, "no such account in the
//! target" as its own outcome, low-cardinality route labels and the dead-letter gauges, and
//! SIGHUP that reloads instead of ending the process. Over real HTTP against the emulator.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TARGET_ENV};
use crate::support::child::serve;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN, TOKEN};
use scimbridge::atlassian::{Action, Connector, Effect, Product, TargetSpec};

const WAIT: Duration = Duration::from_secs(30);

/// A bridge to these targets, with `delivery` added to its `[delivery]` (a down target is
/// probed every second; its waiting intents become dead letters only after `max_age_secs`).
async fn bridge(targets: &[(&str, &Emulator)], policy: &str, delivery: &str) -> TestServer {
    let mut toml: String = targets.iter().map(|(n, e)| e.target_toml(n)).collect::<Vec<_>>().join("\n");
    toml.push_str(&format!(
        "\n[policy]\n{policy}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nprobe_interval_secs = 1\n{delivery}\n"
    ));
    TestServer::start_toml(&toml, &TARGET_ENV).await
}

fn set_active(active: bool) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "active", "value": active}]})
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("admin");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn metrics(s: &TestServer) -> String {
    let r = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics");
    r.text().await.expect("text")
}

/// Jobs of one state, as the admin API lists them: (job id, action type).
async fn jobs(s: &TestServer, state: &str) -> Vec<(u64, String, Value)> {
    let (status, body) = admin(s, reqwest::Method::GET, &format!("/admin/jobs?state={state}")).await;
    assert_eq!(status, 200, "{body}");
    body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["seq"].as_u64().expect("seq"),
                j["intent"]["action"]["type"].as_str().unwrap_or("").to_string(),
                j.clone(),
            )
        })
        .collect()
}

fn job_of(list: &[(u64, String, Value)], action: &str) -> u64 {
    list.iter().find(|(_, a, _)| a == action).unwrap_or_else(|| panic!("no {action} job in {list:?}")).0
}

/// erin is provisioned into each target and its `jira-users` group, then disabled (delivered).
/// During an outage of every target the IdP re-enables her: the create, reactivate and
/// add-to-group intents of that change wait for the targets past `max_age_secs` and become dead
/// letters (three per target; an outage alone never makes one). The targets stay down on return.
async fn erin_with_dead_letters_of_a_reenable(targets: &[(&str, &Emulator)]) -> (TestServer, String) {
    let s = bridge(targets, "", "max_age_secs = 3").await;
    let id = s.create_user("erin").await;
    s.create_group("jira-users", &[&id]).await;
    eventually("erin provisioned with her group", WAIT, || {
        targets.iter().all(|(_, t)| t.user("erin").is_some_and(|u| u.active && u.groups.contains("jira-users")))
    })
    .await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("erin deactivated", WAIT, || targets.iter().all(|(_, t)| t.user("erin").is_some_and(|u| !u.active)))
        .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;

    for (_, t) in targets {
        t.down_for(Duration::from_secs(3600));
    }
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(true)).await.status, 200);
    eventually("create, reactivate and add-to-group are dead letters", WAIT, || {
        s.store().dead_letter_count() == 3 * targets.len() && s.store().outbox_depth() == 0
    })
    .await;
    (s, id)
}

/// Whether Jira received anything after `from` that could give erin access back.
fn writes_after(jira: &Emulator, from: usize) -> Vec<String> {
    jira.received()[from..]
        .iter()
        .filter(|r| r.status.is_some_and(|s| s < 300))
        .filter(|r| r.method == "POST" || r.method == "PUT")
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.status))
        .collect()
}

#[tokio::test]
async fn outage_dead_letters_then_a_later_disable_then_retry_all_leaves_the_leaver_inactive() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    let (s, id) = erin_with_dead_letters_of_a_reenable(&[("jira", &jira), ("wiki", &wiki)]).await;
    // The IdP disables erin again while the targets are still down: those die too.
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("the disables are dead letters too", WAIT, || s.store().dead_letter_count() == 8).await;
    jira.down_for(Duration::ZERO);
    wiki.down_for(Duration::ZERO);
    let (mark, wiki_mark) = (jira.received().len(), wiki.received().len());

    let all_dead = jobs(&s, "dead").await;
    let of = |target: &str| -> Vec<(u64, String, Value)> {
        all_dead.iter().filter(|(_, _, j)| j["intent"]["target"] == target).cloned().collect()
    };
    let (dead, wiki_dead) = (of("jira"), of("wiki"));
    let (reactivate, disable) = (job_of(&dead, "reactivate"), job_of(&dead, "deactivate"));
    let wiki_disable = job_of(&wiki_dead, "deactivate");
    let (status, body) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{reactivate}/retry")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(&format!("superseded by job {disable}"))), "{body}");
    assert_eq!(body["superseded_by"], disable, "{body}");

    // --target first: only Jira's dead letters are looked at.
    let (status, body) = admin(&s, reqwest::Method::POST, "/admin/jobs/retry?target=jira").await;
    assert_eq!(status, 200, "{body}");
    let retried: Vec<u64> =
        body["retried"].as_array().expect("retried").iter().map(|r| r["job"].as_u64().expect("job")).collect();
    assert_eq!(retried, vec![disable], "only the still-current disable is retried: {body}");
    let new_disable = body["retried"][0]["as"].as_u64().expect("new job id");
    let superseded = body["superseded"].as_array().expect("superseded");
    assert_eq!(superseded.len(), 3, "{body}");
    assert!(superseded.iter().all(|j| j["superseded_by"] == disable), "{body}");
    assert!(s.store().dead_letter_count() >= 4, "Confluence's dead letters are untouched");
    // Then every target.
    let (status, body) = admin(&s, reqwest::Method::POST, "/admin/jobs/retry").await;
    assert_eq!(status, 200, "{body}");
    let retried: Vec<&Value> = body["retried"].as_array().expect("retried").iter().map(|r| &r["job"]).collect();
    assert_eq!(retried, vec![&json!(wiki_disable)], "{body}");

    let (status, shown) = admin(&s, reqwest::Method::GET, &format!("/admin/jobs/{disable}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!((&shown["state"], &shown["outcome"]["retried_as"]), (&json!("retried"), &json!(new_disable)), "{shown}");
    eventually("the retried disable is delivered", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("erin").is_some_and(|u| !u.active), "erin stays inactive in Jira");
    assert!(wiki.user("erin").is_some_and(|u| !u.active), "erin stays inactive in Confluence");
    assert!(writes_after(&jira, mark).is_empty(), "nothing re-enabled erin: {:?}", writes_after(&jira, mark));
    let wiki_writes: Vec<String> = wiki.received()[wiki_mark..]
        .iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/disable"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(wiki_writes.is_empty(), "only the disable reached Confluence: {wiki_writes:?}");
    // Delivered, the disables mark the stale dead letters: they leave the dead-letter count.
    eventually("stale dead letters marked superseded", WAIT, || {
        s.store().dead_letter_count() == 0 && s.store().superseded_count() == 6
    })
    .await;
    let listed = jobs(&s, "all").await;
    assert_eq!(listed.iter().filter(|(_, _, j)| j["state"] == "superseded").count(), 6, "{listed:?}");
}

#[tokio::test]
async fn a_delivered_disable_marks_older_dead_letters_superseded_and_only_force_retries_one() {
    let jira = Emulator::start(Product::Jira).await;
    let (s, id) = erin_with_dead_letters_of_a_reenable(&[("jira", &jira)]).await;
    let dead = jobs(&s, "dead").await;
    let reactivate = job_of(&dead, "reactivate");
    jira.down_for(Duration::ZERO);
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("the disable's delivery marks the three dead letters", WAIT, || {
        s.store().dead_letter_count() == 0 && s.store().superseded_count() == 3 && s.store().outbox_depth() == 0
    })
    .await;
    let superseded = jobs(&s, "superseded").await;
    assert_eq!(superseded.len(), 3, "{superseded:?}");
    let by = superseded[0].2["superseded_by"].as_u64().expect("superseded_by");
    assert!(superseded.iter().all(|(_, _, j)| j["superseded_by"] == by));
    let text = metrics(&s).await;
    assert!(text.contains("scimbridge_dead_letters 0"), "{text}");
    assert!(text.contains("scimbridge_superseded_intents 3"), "{text}");
    assert!(text.contains("scimbridge_deliveries_total{target=\"jira\",outcome=\"superseded\"} 3"), "{text}");

    // Nothing current is left to retry, and the stale reactivate is refused by name.
    let (status, body) = admin(&s, reqwest::Method::POST, "/admin/jobs/retry?target=jira").await;
    assert_eq!((status, body["retried"].as_array().map(Vec::len)), (200, Some(0)), "{body}");
    let (status, body) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{reactivate}/retry")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(&format!("superseded by job {by}"))), "{body}");
    let (status, _) = admin(&s, reqwest::Method::POST, "/admin/jobs/retry?target=nope").await;
    assert_eq!(status, 400, "an unknown target is named, not ignored");
    assert!(jira.user("erin").is_some_and(|u| !u.active));

    // --force overrides, and says who did it.
    let (status, body) = admin(&s, reqwest::Method::POST, &format!("/admin/jobs/{reactivate}/retry?force=true")).await;
    assert_eq!(status, 200, "{body}");
    eventually("the forced reactivate ran", WAIT, || jira.user("erin").is_some_and(|u| u.active)).await;
    let records = s.store().audit_of(&id).expect("audit");
    let forced = records
        .iter()
        .find(|r| r["type"] == "operator" && r["job"] == reactivate)
        .unwrap_or_else(|| panic!("no operator record: {records:#?}"));
    assert_eq!(forced["forced"], true, "{forced}");
    assert_eq!(forced["actor"], "admin-config-1", "{forced}");
    assert_eq!(forced["superseded_by"], by, "{forced}");
}

#[tokio::test]
async fn an_intent_superseded_while_it_waits_for_a_target_is_never_sent() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "", "max_attempts = 1000").await;
    let id = s.create_user("erin").await;
    s.create_group("jira-users", &[&id]).await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("erin provisioned, then deactivated", WAIT, || {
        jira.user("erin").is_some_and(|u| !u.active) && s.store().outbox_depth() == 0
    })
    .await;
    jira.down_for(Duration::from_secs(3600));
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(true)).await.status, 200);
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("four intents wait", WAIT, || s.store().outbox_depth() == 4).await;
    let mark = jira.received().len();
    jira.down_for(Duration::ZERO);
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(writes_after(&jira, mark).is_empty(), "{:?}", writes_after(&jira, mark));
    assert!(jira.user("erin").is_some_and(|u| !u.active));
    assert_eq!(s.store().dead_letter_count(), 0);
    let records = s.store().audit_of(&id).expect("audit");
    // The re-enable's three intents (an add-to-group of the first phase may also have been
    // superseded by the first disable, depending on timing: not what this test is about).
    let skipped: Vec<&Value> =
        records.iter().filter(|r| r["outcome"] == "superseded" && r["trigger"] == "enabled").collect();
    assert_eq!(skipped.len(), 3, "{records:#?}");
    assert!(skipped.iter().all(|r| r["detail"].as_str().is_some_and(|d| d.contains("superseded by job"))));
}

#[tokio::test]
async fn deactivating_a_user_that_no_product_has_is_its_own_outcome_not_a_dead_letter() {
    let (jira, wiki, crowd, bb) = (
        Emulator::start(Product::Jira).await,
        Emulator::start(Product::Confluence).await,
        Emulator::start(Product::Crowd).await,
        Emulator::start(Product::Bitbucket).await,
    );
    bb.add_group("stash-users");
    let targets = [("jira", &jira), ("wiki", &wiki), ("crowd", &crowd), ("bb", &bb)];
    let s = bridge(&targets, "create_users = false", "max_attempts = 3").await;
    let id = s.create_user("nora").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("every target answered", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(s.store().dead_letter_count(), 0, "{:?}", jobs(&s, "dead").await);
    let (status, body) = admin(&s, reqwest::Method::GET, "/admin/audit?user=nora").await;
    assert_eq!(status, 200, "{body}");
    let records = body["records"].as_array().expect("records");
    for (name, _) in &targets {
        let r = records
            .iter()
            .find(|r| r["type"] == "delivery" && r["target"] == *name)
            .unwrap_or_else(|| panic!("no delivery record for {name}: {records:#?}"));
        assert_eq!(r["outcome"], "no_such_account", "{r}");
        assert_eq!(r["effect"], "no_such_account", "{r}");
        assert!(r["detail"].as_str().is_some_and(|d| d.contains("no account named 'nora'")), "{r}");
        // `jobs show` of the finished job reports the outcome too.
        let (status, shown) = admin(&s, reqwest::Method::GET, &format!("/admin/jobs/{}", r["job"])).await;
        assert_eq!((status, &shown["state"]), (200, &json!("no_such_account")), "{shown}");
    }
    let text = metrics(&s).await;
    for (name, _) in &targets {
        let line = format!("scimbridge_deliveries_total{{target=\"{name}\",outcome=\"no_such_account\"}} 1");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(!text.contains("outcome=\"dead\""), "{text}");

    // The operator's report shows it as such.
    let dir = s.dir.display().to_string();
    let keep = s.stop_keep_dir().await;
    let out = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(["audit", "--user", "nora"])
        .env("SCIMBRIDGE_DATA_DIR", &dir)
        .env_remove("SCIMBRIDGE_CONFIG")
        .output()
        .expect("cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.contains("no_such_account")).count(), 4, "{stdout}");
    drop(keep);
}

fn spec_at(emu: &Emulator, url: String) -> TargetSpec {
    TargetSpec { url, ..emu.spec() }
}

#[tokio::test]
async fn a_404_that_does_not_mean_no_such_user_stays_a_failure() {
    // Jira behind a wrong context path: Jersey's "null for uri" 404 is not Jira's missing user.
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("olga");
    let wrong = Connector::new(spec_at(&jira, format!("{}/wrong", jira.base_url()))).expect("connector");
    let ex = wrong.execute(&Action::Deactivate { username: "olga".into() }).await;
    assert!(ex.result.is_err(), "{:?}", ex.result);
    let ex = jira.connector().execute(&Action::Deactivate { username: "nobody".into() }).await;
    assert_eq!(ex.result, Ok(Effect::NoSuchAccount));

    // Confluence: removing an existing user from a group that does not exist is not "no account".
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.add_user("olga");
    let ex =
        wiki.connector().execute(&Action::RemoveFromGroup { username: "olga".into(), group: "ghosts".into() }).await;
    assert!(ex.result.is_err(), "{:?}", ex.result);
    let ex =
        wiki.connector().execute(&Action::RemoveFromGroup { username: "nobody".into(), group: "ghosts".into() }).await;
    assert_eq!(ex.result, Ok(Effect::NoSuchAccount));

    // Crowd: a missing group is not a missing user either.
    let crowd = Emulator::start(Product::Crowd).await;
    crowd.add_user("olga");
    let ex =
        crowd.connector().execute(&Action::RemoveFromGroup { username: "olga".into(), group: "ghosts".into() }).await;
    assert!(ex.result.is_err(), "{:?}", ex.result);
    let ex = crowd.connector().execute(&Action::Deactivate { username: "nobody".into() }).await;
    assert_eq!(ex.result, Ok(Effect::NoSuchAccount));

    // Bitbucket: adding a missing user to a group is still a failure; removing a licence is not.
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_group("stash-users");
    let ex =
        bb.connector().execute(&Action::AddToGroup { username: "nobody".into(), group: "stash-users".into() }).await;
    assert!(ex.result.is_err(), "{:?}", ex.result);
    let ex = bb
        .connector()
        .execute(&Action::RemoveLicense { username: "nobody".into(), groups: vec!["stash-users".into()] })
        .await;
    assert_eq!(ex.result, Ok(Effect::NoSuchAccount));
}

#[tokio::test]
async fn metrics_label_routes_without_ids_and_count_dead_letters() {
    let s = TestServer::start().await;
    let id = s.create_user("mia").await;
    assert_eq!(s.get(&format!("/Users/{id}")).await.status, 200);
    for (method, path) in [
        (reqwest::Method::GET, "/admin/jobs/6"),
        (reqwest::Method::GET, "/admin/jobs/7"),
        (reqwest::Method::POST, "/admin/jobs/6/retry"),
        (reqwest::Method::DELETE, "/admin/tokens/some-name"),
    ] {
        let (status, _) = admin(&s, method, path).await;
        assert_eq!(status, 404, "{path}");
    }
    let r = s.client.get(format!("{}/no/such/thing/{}", s.root, id)).send().await.expect("req");
    assert_eq!(r.status(), 401);
    let text = metrics(&s).await;
    for label in ["/admin/jobs/{id}", "/admin/jobs/{id}/retry", "/admin/tokens/{id}", "/scim/v2/Users/{id}", "other"] {
        assert!(text.contains(&format!("route=\"{label}\"")), "{label} in {text}");
    }
    for raw in ["/admin/jobs/6", "/admin/jobs/7", "some-name", id.as_str()] {
        assert!(!text.contains(raw), "{raw} leaked into a label: {text}");
    }
    assert!(
        text.contains("scimbridge_http_requests_total{method=\"GET\",route=\"/admin/jobs/{id}\",status=\"404\"} 2"),
        "{text}"
    );
    assert!(text.contains("# TYPE scimbridge_dead_letters gauge\nscimbridge_dead_letters 0"), "{text}");
    assert!(text.contains("# TYPE scimbridge_superseded_intents gauge\nscimbridge_superseded_intents 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_reloads_logs_it_and_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut served = serve(&tmp.path().join("data"), None, &[]).await;
    let pid = served.child.id().expect("pid").to_string();
    for _ in 0..2 {
        assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
        let deadline = std::time::Instant::now() + WAIT;
        while !served.messages().iter().any(|m| m.starts_with("Reloaded on SIGHUP")) {
            assert!(std::time::Instant::now() < deadline, "no reload line in {:?}", served.messages());
            assert!(served.child.try_wait().expect("wait").is_none(), "SIGHUP ended the process");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = reqwest::Client::new()
            .get(format!("{}/Users", served.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("still answers");
        assert_eq!(r.status(), 200);
    }
    assert!(served.child.try_wait().expect("wait").is_none(), "still running");
    let line = served.messages().into_iter().find(|m| m.starts_with("Reloaded on SIGHUP")).expect("line");
    assert!(line.contains("stored tokens re-read") && line.contains("no TLS configured"), "{line}");
}

#[tokio::test]
async fn the_cli_lists_superseded_jobs_refuses_them_and_force_retries_as_the_login_user() {
    let jira = Emulator::start(Product::Jira).await;
    let (s, id) = erin_with_dead_letters_of_a_reenable(&[("jira", &jira)]).await;
    jira.down_for(Duration::ZERO);
    assert_eq!(s.patch(&format!("/Users/{id}"), &set_active(false)).await.status, 200);
    eventually("stale dead letters marked", WAIT, || s.store().superseded_count() == 3).await;
    let reactivate = job_of(&jobs(&s, "superseded").await, "reactivate");
    let dir = s.dir.display().to_string();

    // While the server runs the CLI goes through the admin API, with the same answers.
    let listen = s.root.trim_start_matches("http://").to_string();
    let remote = |args: Vec<String>| {
        let (dir, listen) = (dir.clone(), listen.clone());
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
                .args(&args)
                .env("SCIMBRIDGE_DATA_DIR", &dir)
                .env("SCIMBRIDGE_LISTEN", &listen)
                .env("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
                .env_remove("SCIMBRIDGE_CONFIG")
                .output()
                .expect("cli");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (code, _, err) = remote(vec!["jobs".into(), "retry".into(), reactivate.to_string()]).await.expect("join");
    assert_ne!(code, Some(0));
    assert!(err.contains(&format!("job {reactivate} is superseded by job")), "{err}");
    let (code, out, err) = remote(vec!["jobs".into(), "retry".into(), "--all".into()]).await.expect("join");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 retried, 0 superseded"), "{out}");

    let keep = s.stop_keep_dir().await;
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
            .args(args)
            .env("SCIMBRIDGE_DATA_DIR", &dir)
            .env("USER", "ops-alice")
            .env_remove("SCIMBRIDGE_CONFIG")
            .output()
            .expect("cli");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["jobs", "list", "--state", "superseded"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("\tsuperseded\t") && l.contains("superseded by job")).count(),
        3,
        "{out}"
    );
    let (code, _, err) = cli(&["jobs", "retry", &reactivate.to_string()]);
    assert_ne!(code, Some(0));
    assert!(err.contains(&format!("job {reactivate} is superseded by job")), "{err}");
    let (code, out, err) = cli(&["jobs", "retry", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 retried"), "{out}");
    let (code, _, err) = cli(&["jobs", "retry", "--all", "--force"]);
    assert_ne!(code, Some(0), "--force never applies to --all: {err}");
    let (code, out, err) = cli(&["jobs", "retry", "--force", &reactivate.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("Job {reactivate} is queued again")), "{out}");
    let (code, out, _) = cli(&["audit", "--user", "erin", "--format", "jsonl"]);
    assert_eq!(code, Some(0));
    let forced: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == "operator" && r["forced"] == true)
        .collect();
    assert_eq!(forced.len(), 1, "{out}");
    assert_eq!(forced[0]["actor"], "cli:ops-alice");
    drop(keep);
}
