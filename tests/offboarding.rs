//! End to end: SCIM requests as Entra ID and Okta send them → policy → outbox → delivery →
//! the Atlassian DC emulator, whose state is what the assertions read.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{
    Emulator, Fault, BITBUCKET_PASSWORD, CROWD_APP, CROWD_PASSWORD, TOKEN as ATL_TOKEN,
};
use crate::support::server::{eventually, TestServer};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);
/// `anonymize_new_owner` of the Jira targets.
const NEW_OWNER: &str = "jira-admin";

fn target_toml(name: &str, emu: &Emulator) -> String {
    match emu.product() {
        Product::Crowd => format!(
            "[[target]]\nname = \"{name}\"\nproduct = \"crowd\"\nurl = \"{}\"\nusername = \"{CROWD_APP}\"\npassword_env = \"CROWD_PASSWORD\"\n",
            emu.base_url()
        ),
        Product::Bitbucket => format!(
            "[[target]]\nname = \"{name}\"\nproduct = \"bitbucket\"\nurl = \"{}\"\n{}license_groups = [\"stash-users\"]\n",
            emu.base_url(),
            emu.credentials_toml("BB_PASSWORD")
        ),
        // The new owner of an anonymized user's objects (only read when anonymizing).
        Product::Jira => format!(
            "[[target]]\nname = \"{name}\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\nanonymize_new_owner = \"{NEW_OWNER}\"\n",
            emu.base_url()
        ),
        p => format!(
            "[[target]]\nname = \"{name}\"\nproduct = \"{p}\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\nlicense_groups = [\"stash-users\"]\n",
            emu.base_url()
        ),
    }
}

async fn bridge(targets: &[(&str, &Emulator)], policy: &str) -> TestServer {
    let mut toml: String = targets.iter().map(|(n, e)| target_toml(n, e)).collect::<Vec<_>>().join("\n");
    toml.push_str(&format!(
        "\n[policy]\n{policy}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n"
    ));
    TestServer::start_toml(
        &toml,
        &[("ATL_TOKEN", ATL_TOKEN), ("CROWD_PASSWORD", CROWD_PASSWORD), ("BB_PASSWORD", BITBUCKET_PASSWORD)],
    )
    .await
}

fn disable_entra_default() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
}

/// No write of the test drew `403 XSRF check failed` (the emulator refuses any write without
/// `X-Atlassian-Token: no-check`, see `atlassian_emulator/server.rs`).
fn assert_no_xsrf_refusal(emus: &[&Emulator]) {
    for emu in emus {
        assert_eq!(emu.xsrf_refusals(), 0, "{}: {:#?}", emu.product(), emu.violations());
    }
}

/// The delivery records of a user, once the outbox has drained (a target shows a change a
/// moment before the worker records its outcome).
async fn delivery_records(s: &TestServer, user_id: &str) -> Vec<Value> {
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    s.store().audit_of(user_id).expect("audit").into_iter().filter(|r| r["type"] == "delivery").collect()
}

#[tokio::test]
async fn entra_disabling_a_user_deactivates_them_in_jira_and_confluence_and_ends_jira_sessions() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    let s = bridge(&[("jira", &jira), ("wiki", &wiki)], "").await;
    let id = s.create_user("alice").await;
    eventually("alice created in Jira and Confluence", WAIT, || {
        jira.user("alice").is_some_and(|u| u.active) && wiki.user("alice").is_some_and(|u| u.active)
    })
    .await;
    jira.set_sessions("alice", 3);
    let r = s.patch(&format!("/Users/{id}"), &disable_entra_default()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    eventually("alice inactive everywhere, Jira sessions gone", WAIT, || {
        jira.user("alice").is_some_and(|u| !u.active && u.sessions == 0)
            && wiki.user("alice").is_some_and(|u| !u.active)
    })
    .await;
    let recs = delivery_records(&s, &id).await;
    let deact: Vec<&Value> = recs.iter().filter(|r| r["action"]["type"] == "deactivate").collect();
    assert_eq!(deact.len(), 2, "one deactivation per target: {recs:#?}");
    for r in deact {
        assert_eq!(r["outcome"], "delivered");
        assert!(r["latency_ms"].as_u64().is_some(), "offboarding latency recorded: {r}");
        assert!(r["calls"].as_array().is_some_and(|c| !c.is_empty()), "calls recorded: {r}");
    }
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
    assert!(wiki.violations().is_empty(), "{:?}", wiki.violations());
    assert_no_xsrf_refusal(&[&jira, &wiki]);
}

#[tokio::test]
async fn removing_a_member_from_a_synced_group_removes_the_atlassian_membership_only_for_that_user() {
    let jira = Emulator::start(Product::Jira).await;
    // Not pre-created: scimbridge touches only groups it created or [[group_map]] maps.
    let s = bridge(&[("jira", &jira)], "").await;
    let a = s.create_user("ann").await;
    let b = s.create_user("bob").await;
    let g = s.create_group("developers", &[&a, &b]).await;
    eventually("both in the Jira group", WAIT, || {
        ["ann", "bob"].iter().all(|n| jira.user(n).is_some_and(|u| u.groups.contains("developers")))
    })
    .await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Remove", "path": "members", "value": [{"value": a}]}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually("ann left the Jira group", WAIT, || jira.user("ann").is_some_and(|u| !u.groups.contains("developers")))
        .await;
    assert!(jira.user("bob").is_some_and(|u| u.groups.contains("developers") && u.active));
    // ann is still active: without access_groups, group removal is not an offboarding.
    assert!(jira.user("ann").is_some_and(|u| u.active));
    assert_no_xsrf_refusal(&[&jira]);
}

#[tokio::test]
async fn leaving_the_only_access_group_deactivates_the_user() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_group("atlassian-access");
    let s = bridge(&[("jira", &jira)], "access_groups = [\"atlassian-access\"]").await;
    let u = s.create_user("cara").await;
    // Not yet in an access group: no account is made.
    let g = s.create_group("atlassian-access", &[&u]).await;
    eventually("cara created on joining the access group", WAIT, || jira.user("cara").is_some_and(|u| u.active)).await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually("cara deactivated after losing access", WAIT, || jira.user("cara").is_some_and(|u| !u.active)).await;
    assert_no_xsrf_refusal(&[&jira]);
}

#[tokio::test]
async fn delete_with_on_delete_delete_deletes_the_jira_user() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "on_delete = \"delete\"").await;
    let id = s.create_user("dave").await;
    eventually("dave created", WAIT, || jira.user("dave").is_some()).await;
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    eventually("dave deleted in Jira", WAIT, || jira.user("dave").is_some_and(|u| u.deleted)).await;
    assert_no_xsrf_refusal(&[&jira]);
}

#[tokio::test]
async fn delete_with_on_delete_anonymize_anonymizes_the_jira_user() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user(NEW_OWNER);
    let s = bridge(&[("jira", &jira)], "on_delete = \"anonymize\"").await;
    let id = s.create_user("erin").await;
    eventually("erin created", WAIT, || jira.user("erin").is_some()).await;
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    eventually("erin anonymized in Jira", Duration::from_secs(40), || jira.user("erin").is_some_and(|u| u.anonymized))
        .await;
    assert_no_xsrf_refusal(&[&jira]);
}

#[tokio::test]
async fn a_jira_outage_of_thirty_seconds_delays_delivery_but_delivers_every_intent_once() {
    let jira = Emulator::start(Product::Jira).await;
    for n in ["u1", "u2", "u3"] {
        jira.add_user(n);
    }
    let s = bridge(&[("jira", &jira)], "create_users = false").await;
    let mut ids = Vec::new();
    for n in ["u1", "u2", "u3"] {
        ids.push(s.create_user(n).await);
    }
    jira.down_for(Duration::from_secs(30));
    let down_since = Instant::now();
    for id in &ids {
        // The SCIM answer never waits for Atlassian.
        let t = Instant::now();
        let r = s.patch(&format!("/Users/{id}"), &disable_entra_default()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(t.elapsed() < Duration::from_secs(5), "SCIM answer waited for Jira");
    }
    eventually("all three inactive after Jira recovers", Duration::from_secs(60), || {
        ["u1", "u2", "u3"].iter().all(|n| jira.user(n).is_some_and(|u| !u.active))
    })
    .await;
    assert!(down_since.elapsed() >= Duration::from_secs(30));
    let puts_ok = jira
        .received()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/rest/api/2/user") && r.status == Some(200))
        .count();
    assert_eq!(puts_ok, 3, "each deactivation applied exactly once: {:#?}", jira.received());
    // The attempts that found Jira down are audited as retries; intents that then waited behind
    // the open circuit (issue 11) have no failed attempt to record.
    let mut retries = 0;
    for id in &ids {
        let recs = delivery_records(&s, id).await;
        retries += recs.iter().filter(|r| r["outcome"] == "retry").count();
        assert_eq!(recs.iter().filter(|r| r["outcome"] == "delivered").count(), 1, "{recs:#?}");
    }
    assert!(retries >= 1, "the attempt that met the outage is audited");
    assert_eq!(s.store().outbox_depth(), 0);
}

#[tokio::test]
async fn a_429_with_retry_after_two_seconds_makes_the_worker_wait_at_least_that_long() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("rita");
    let s = bridge(&[("jira", &jira)], "create_users = false").await;
    let id = s.create_user("rita").await;
    jira.fail_next(1, Fault::rate_limited("2"));
    let r = s.patch(&format!("/Users/{id}"), &disable_entra_default()).await;
    assert_eq!(r.status, 200);
    eventually("rita deactivated", WAIT, || jira.user("rita").is_some_and(|u| !u.active)).await;
    let recs = delivery_records(&s, &id).await;
    let at = |outcome: &str| -> chrono::DateTime<chrono::FixedOffset> {
        let r =
            recs.iter().find(|r| r["outcome"] == outcome).unwrap_or_else(|| panic!("no {outcome} record: {recs:#?}"));
        chrono::DateTime::parse_from_rfc3339(r["at"].as_str().expect("at")).expect("time")
    };
    let waited = at("delivered") - at("retry");
    assert!(waited >= chrono::Duration::milliseconds(2000), "waited only {waited}");
}

#[tokio::test]
async fn dry_run_sends_nothing_and_records_every_intent() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    let s = bridge(&[("jira", &jira), ("wiki", &wiki)], "dry_run = true\non_delete = \"delete\"").await;
    let id = s.create_user("finn").await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable_entra_default()).await.status, 200);
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    eventually("outbox drained", WAIT, || s.store().outbox_depth() == 0).await;
    let recs = delivery_records(&s, &id).await;
    let kinds: Vec<(String, String)> = recs
        .iter()
        .map(|r| {
            (r["target"].as_str().unwrap_or("").to_string(), r["action"]["type"].as_str().unwrap_or("").to_string())
        })
        .collect();
    // create, deactivate on disable, deactivate + delete on delete — for each target.
    for t in ["jira", "wiki"] {
        for a in ["create_user", "deactivate", "delete"] {
            assert!(kinds.contains(&(t.to_string(), a.to_string())), "missing {t}/{a} in {kinds:?}");
        }
    }
    assert!(recs.iter().all(|r| r["outcome"] == "dry_run"), "{recs:#?}");
    assert!(jira.received().is_empty(), "nothing reaches Jira: {:?}", jira.received());
    assert!(wiki.received().is_empty(), "nothing reaches Confluence: {:?}", wiki.received());
}

#[tokio::test]
async fn crowd_and_bitbucket_carry_out_offboarding_their_own_way() {
    let crowd = Emulator::start(Product::Crowd).await;
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_group("stash-users");
    let s = bridge(&[("crowd", &crowd), ("bb", &bb)], "").await;
    let id = s.create_user("gus").await;
    eventually("gus created in Crowd and Bitbucket with a licence", WAIT, || {
        crowd.user("gus").is_some_and(|u| u.active) && bb.user("gus").is_some_and(|u| u.groups.contains("stash-users"))
    })
    .await;
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable_entra_default()).await.status, 200);
    eventually("Crowd inactive; Bitbucket licence removed", WAIT, || {
        crowd.user("gus").is_some_and(|u| !u.active)
            && bb.user("gus").is_some_and(|u| !u.groups.contains("stash-users"))
    })
    .await;
    assert_no_xsrf_refusal(&[&crowd, &bb]);
}

#[tokio::test]
async fn a_user_renamed_in_the_idp_is_still_offboarded_under_the_atlassian_username_first_provisioned() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let id = s.create_user("hugo@example.com").await;
    eventually("hugo created", WAIT, || jira.user("hugo@example.com").is_some()).await;
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Replace", "path": "userName", "value": "hugo.new@example.com"}]});
    assert_eq!(s.patch(&format!("/Users/{id}"), &rename).await.status, 200);
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable_entra_default()).await.status, 200);
    eventually("the original account is deactivated", WAIT, || {
        jira.user("hugo@example.com").is_some_and(|u| !u.active)
    })
    .await;
    assert!(jira.user("hugo.new@example.com").is_none(), "no account under the new name was touched or made");
    assert_no_xsrf_refusal(&[&jira]);
}
