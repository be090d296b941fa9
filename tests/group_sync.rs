//! Groups that exist (issue 9, item 2) and profile updates (item 4), end to end: SCIM requests →
//! policy → outbox → delivery → the Atlassian DC emulators, whose state the assertions read.
//! Adding to a missing group is a 404 in every emulated product, so a group push that did not
//! create its group would leave dead letters.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::Emulator;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::{Auth, Product};
use scimbridge::store::GroupOrigin;

const WAIT: Duration = Duration::from_secs(20);

/// `[[target]]` blocks for the emulators with the credentials each accepts, and the environment
/// holding them.
fn targets(list: &[(&str, &Emulator)]) -> (String, Vec<(String, String)>) {
    let mut toml = String::new();
    let mut env = Vec::new();
    for (name, emu) in list {
        let var = format!("{}_SECRET", name.to_uppercase());
        toml.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nproduct = \"{}\"\nurl = \"{}\"\n",
            emu.product(),
            emu.base_url()
        ));
        match emu.auth() {
            Auth::Bearer(t) => {
                toml.push_str(&format!("token_env = \"{var}\"\n"));
                env.push((var, t.expose().to_string()));
            }
            Auth::Basic { username, password } => {
                toml.push_str(&format!("username = \"{username}\"\npassword_env = \"{var}\"\n"));
                env.push((var, password.expose().to_string()));
            }
        }
        if emu.product() == Product::Bitbucket {
            toml.push_str("license_groups = [\"stash-users\"]\n");
        }
        toml.push('\n');
    }
    (toml, env)
}

async fn bridge(list: &[(&str, &Emulator)], extra: &str) -> TestServer {
    let (mut toml, env) = targets(list);
    toml.push_str("[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 3\n");
    toml.push_str(extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestServer::start_toml(&toml, &env).await
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn drained(s: &TestServer) {
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
}

fn in_group(emu: &Emulator, user: &str, group: &str) -> bool {
    emu.user(user).is_some_and(|u| u.groups.contains(group))
}

fn no_violations(emus: &[&Emulator]) {
    for e in emus {
        assert!(e.violations().is_empty(), "{}: {:?}", e.product(), e.violations());
    }
}

#[tokio::test]
async fn an_idp_group_push_creates_the_group_in_jira_confluence_crowd_and_bitbucket_and_adds_its_members() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    let crowd = Emulator::start(Product::Crowd).await;
    let bb = Emulator::start(Product::Bitbucket).await;
    let all = [("jira", &jira), ("wiki", &wiki), ("crowd", &crowd), ("bb", &bb)];
    let s = bridge(&all, "").await;
    let ann = s.create_user("ann").await;
    let bob = s.create_user("bob").await;
    eventually("both users exist everywhere", WAIT, || {
        all.iter().all(|(_, e)| e.user("ann").is_some() && e.user("bob").is_some())
    })
    .await;
    assert!(all.iter().all(|(_, e)| !e.group_exists("Engineering")), "the group is new to every target");
    let group = s.create_group("Engineering", &[&ann, &bob]).await;
    s.create_group("Empty Team", &[]).await;
    eventually("Engineering exists with both members in every product", WAIT, || {
        all.iter().all(|(_, e)| in_group(e, "ann", "Engineering") && in_group(e, "bob", "Engineering"))
    })
    .await;
    drained(&s).await;
    assert!(all.iter().all(|(_, e)| e.group_exists("Empty Team")), "a group without members is created too");
    assert_eq!(s.store().dead_letter_count(), 0, "{:#?}", s.store().jobs().expect("jobs"));
    for (name, _) in &all {
        let rec = s.store().managed_group(name, "engineering").expect("store").expect("recorded");
        assert_eq!(rec.origin, GroupOrigin::Created, "{name}");
    }
    // Exactly one create per product, although two lanes (ann's, bob's) and the group's own
    // intent raced for it.
    assert_eq!(jira.received().iter().filter(|r| r.method == "POST" && r.path == "/rest/api/2/group").count(), 2);
    let group_audit = s.store().audit_of(&group).expect("audit");
    assert!(
        group_audit.iter().any(|r| r["action"]["type"] == "create_group" && r["outcome"] == "delivered"),
        "{group_audit:#?}"
    );
    no_violations(&[&jira, &wiki, &crowd, &bb]);
}

#[tokio::test]
async fn an_atlassian_group_scimbridge_did_not_create_is_never_touched_unless_mapped() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("root");
    jira.add_member("root", "jira-administrators");
    let s = bridge(&[("jira", &jira)], "").await;
    let ann = s.create_user("ann").await;
    eventually("ann created", WAIT, || jira.user("ann").is_some()).await;
    // An IdP group that happens to carry the name of Jira's admin group.
    let g = s.create_group("jira-administrators", &[&ann]).await;
    drained(&s).await;
    assert!(!in_group(&jira, "ann", "jira-administrators"), "never added to an admin's local group");
    assert!(in_group(&jira, "root", "jira-administrators"));
    let dead: Vec<Value> = s
        .store()
        .jobs()
        .expect("jobs")
        .into_iter()
        .filter(|j| j.state == "dead")
        .map(|j| serde_json::to_value(j).expect("json"))
        .collect();
    assert_eq!(dead.len(), 1, "{dead:#?}");
    let why = dead[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("was not created by scimbridge") && why.contains("[[group_map]]"), "{why}");
    assert_eq!(s.store().managed_group("jira", "jira-administrators").expect("store"), None);
    // Nor are members taken out of it when the IdP group loses them.
    let r = s.patch(&format!("/Groups/{g}"), &patch(json!([{"op": "remove", "path": "members"}]))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    drained(&s).await;
    assert!(in_group(&jira, "root", "jira-administrators"));
    let skipped = s.store().audit_of(&ann).expect("audit");
    assert!(
        skipped.iter().any(|r| r["action"]["type"] == "remove_from_group" && r["outcome"] == "skipped"),
        "{skipped:#?}"
    );
    assert_eq!(jira.count("DELETE", "/rest/api/2/group/user"), 0);
}

#[tokio::test]
async fn a_mapped_idp_group_syncs_into_the_mapped_atlassian_group_on_its_targets_only() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    jira.add_group("jira-software-users");
    let maps = "[[group_map]]\nidp = \"SG-Jira-Users\"\natlassian = \"jira-software-users\"\ntargets = [\"jira\"]\n";
    let s = bridge(&[("jira", &jira), ("wiki", &wiki)], maps).await;
    let ann = s.create_user("ann").await;
    eventually("ann created", WAIT, || jira.user("ann").is_some() && wiki.user("ann").is_some()).await;
    let g = s.create_group("sg-jira-users", &[&ann]).await;
    eventually("ann in jira-software-users", WAIT, || in_group(&jira, "ann", "jira-software-users")).await;
    drained(&s).await;
    assert!(!jira.group_exists("sg-jira-users") && !jira.group_exists("SG-Jira-Users"), "no group of the IdP name");
    assert!(!wiki.group_exists("sg-jira-users") && !wiki.group_exists("jira-software-users"), "not mapped to wiki");
    assert!(wiki.user("ann").is_some_and(|u| u.groups.is_empty()));
    assert_eq!(s.store().dead_letter_count(), 0);
    let rec = s.store().managed_group("jira", "jira-software-users").expect("store").expect("recorded");
    assert_eq!(rec.origin, GroupOrigin::Mapped);
    // Leaving the IdP group leaves the mapped Atlassian group.
    let r = s.patch(&format!("/Groups/{g}"), &patch(json!([{"op": "remove", "path": "members"}]))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually("ann left jira-software-users", WAIT, || !in_group(&jira, "ann", "jira-software-users")).await;
    no_violations(&[&jira, &wiki]);
}

#[tokio::test]
async fn an_idp_rename_moves_members_to_the_new_name_and_handles_the_old_group_as_deleted() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "[groups]\non_group_delete = \"delete_group\"\n").await;
    let ann = s.create_user("ann").await;
    let bob = s.create_user("bob").await;
    let g = s.create_group("Eng", &[&ann, &bob]).await;
    eventually("both in Eng", WAIT, || in_group(&jira, "ann", "Eng") && in_group(&jira, "bob", "Eng")).await;
    drained(&s).await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            &patch(json!([{"op": "replace", "path": "displayName", "value": "Engineering"}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually("both moved to Engineering and Eng deleted", WAIT, || {
        in_group(&jira, "ann", "Engineering") && in_group(&jira, "bob", "Engineering") && !jira.group_exists("Eng")
    })
    .await;
    drained(&s).await;
    assert_eq!(s.store().dead_letter_count(), 0, "{:#?}", s.store().jobs().expect("jobs"));
    assert_eq!(s.store().managed_group("jira", "Eng").expect("store"), None, "a deleted group is no longer managed");
    // Deleting the IdP group deletes the Atlassian group scimbridge created.
    assert_eq!(s.delete(&format!("/Groups/{g}")).await.status, 204);
    eventually("Engineering deleted", WAIT, || !jira.group_exists("Engineering")).await;
    no_violations(&[&jira]);
}

#[tokio::test]
async fn with_the_default_remove_members_a_deleted_idp_group_is_emptied_but_kept() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let ann = s.create_user("ann").await;
    let g = s.create_group("Eng", &[&ann]).await;
    eventually("ann in Eng", WAIT, || in_group(&jira, "ann", "Eng")).await;
    assert_eq!(s.delete(&format!("/Groups/{g}")).await.status, 204);
    eventually("ann out of Eng", WAIT, || !in_group(&jira, "ann", "Eng")).await;
    drained(&s).await;
    assert!(jira.group_exists("Eng"), "remove_members never deletes the group");
    assert_eq!(jira.count("DELETE", "/rest/api/2/group?"), 0);
}

#[tokio::test]
async fn a_reclaimed_licence_is_not_handed_back_by_the_next_sync_of_the_licence_group() {
    const LICENSE: &str = "jira-software-users";
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &[LICENSE], Some(2));
    let extra = format!(
        "[[group_map]]\nidp = \"SG-Jira\"\natlassian = \"{LICENSE}\"\n\
         [license]\nenabled = true\naccess_group = \"jira-eligible\"\nlicense_group = \"{LICENSE}\"\ninactive_days = 30\nkeep_free_seats = 1\n"
    );
    let s = bridge(&[("jira", &jira)], &extra).await;
    let ann = s.create_user("ann").await;
    let pat = s.create_user("pat").await;
    eventually("both created", WAIT, || jira.user("ann").is_some() && jira.user("pat").is_some()).await;
    for n in ["ann", "pat"] {
        jira.add_member(n, "jira-eligible");
    }
    let g = s.create_group("SG-Jira", &[&ann, &pat]).await;
    eventually("both licensed through the mapped group", WAIT, || {
        in_group(&jira, "ann", LICENSE) && in_group(&jira, "pat", LICENSE)
    })
    .await;
    drained(&s).await;
    jira.set_last_active("ann", Some(chrono::Utc::now()));
    jira.set_last_active("pat", Some(chrono::Utc::now() - chrono::Duration::days(90)));
    let r = s
        .client
        .post(format!("{}/admin/license/optimize?mode=apply", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("optimizer");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    eventually("pat's licence reclaimed", WAIT, || !in_group(&jira, "pat", LICENSE)).await;
    drained(&s).await;
    // The IdP pushes the group again (Okta: unlink and push): delete and re-create, same members.
    assert_eq!(s.delete(&format!("/Groups/{g}")).await.status, 204);
    drained(&s).await;
    s.create_group("SG-Jira", &[&ann, &pat]).await;
    eventually("ann back in the licence group", WAIT, || in_group(&jira, "ann", LICENSE)).await;
    drained(&s).await;
    assert!(!in_group(&jira, "pat", LICENSE), "group sync must not undo the optimizer");
    let adds: Vec<Value> = s
        .store()
        .audit_of(&pat)
        .expect("audit")
        .into_iter()
        .filter(|r| r["type"] == "delivery" && r["action"]["type"] == "add_to_group" && r["trigger"] == "group_joined")
        .collect();
    assert_eq!(adds.len(), 1, "only the first sync added pat: {adds:#?}");
    let queued = s.store().license_entry("queue", "jira", "pat").expect("store");
    assert!(queued.is_some(), "pat waits for a free seat instead");
}

#[tokio::test]
async fn display_name_and_email_changes_arrive_in_jira_confluence_crowd_and_bitbucket() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    let crowd = Emulator::start(Product::Crowd).await;
    let bb = Emulator::start(Product::Bitbucket).await;
    let all = [("jira", &jira), ("wiki", &wiki), ("crowd", &crowd), ("bb", &bb)];
    let s = bridge(&all, "").await;
    let id = s.create_user("ann").await;
    eventually("ann everywhere", WAIT, || all.iter().all(|(_, e)| e.user("ann").is_some())).await;
    let r = s
        .patch(
            &format!("/Users/{id}"),
            &patch(json!([
                {"op": "replace", "path": "displayName", "value": "Ann Smith"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann.smith@example.com"}
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    eventually("the new name and email everywhere", WAIT, || {
        all.iter().all(|(_, e)| {
            e.user("ann").is_some_and(|u| u.display_name == "Ann Smith" && u.email == "ann.smith@example.com")
        })
    })
    .await;
    drained(&s).await;
    assert!(crowd.user("ann").is_some_and(|u| u.active), "Crowd's full PUT kept the user active");
    let recs: Vec<Value> = s
        .store()
        .audit_of(&id)
        .expect("audit")
        .into_iter()
        .filter(|r| r["action"]["type"] == "update_profile")
        .collect();
    assert_eq!(recs.len(), 4, "{recs:#?}");
    assert!(recs.iter().all(|r| r["outcome"] == "delivered" && r["trigger"] == "profile_updated"), "{recs:#?}");
    no_violations(&[&jira, &wiki, &crowd, &bb]);
}

#[test]
fn check_config_names_unknown_targets_and_duplicate_idp_groups() {
    let text =
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"https://jira.example.com\"\ntoken_env = \"T\"\n\
        [[group_map]]\nidp = \"SG-Jira-Users\"\natlassian = \"jira-software-users\"\ntargets = [\"jria\"]\n\
        [[group_map]]\nidp = \"sg-jira-users\"\natlassian = \"jira-core-users\"\n\
        [groups]\non_group_delete = \"remove_members\"\n";
    let file = scimbridge::config::parse_file(text).expect("parses");
    let env = [("T".to_string(), "x".repeat(20))].into_iter().collect();
    let err = scimbridge::config::validate(file, &env).expect_err("invalid").to_string();
    assert!(err.contains("group_map[0].targets[0]: \"jria\" is not the name of any [[target]]"), "{err}");
    assert!(err.contains("group_map[1].idp: \"sg-jira-users\" is already mapped by group_map[0]"), "{err}");
    let typo = scimbridge::config::parse_file("[groups]\non_group_delete = \"purge\"\n").expect_err("bad value");
    assert!(typo.contains("on_group_delete") || typo.contains("purge"), "{typo}");
}

#[tokio::test]
async fn reconcile_compares_mapped_groups_under_their_atlassian_names_and_ignores_local_groups() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_group("jira-software-users");
    jira.add_user("root");
    jira.add_member("root", "jira-administrators");
    let maps = "[[group_map]]\nidp = \"SG-Jira-Users\"\natlassian = \"jira-software-users\"\n";
    let s = bridge(&[("jira", &jira)], maps).await;
    let ann = s.create_user("ann").await;
    s.create_group("SG-Jira-Users", &[&ann]).await;
    // An IdP group named like Jira's local admin group: never synced, so never drift.
    s.create_group("jira-administrators", &[&ann]).await;
    eventually("ann in jira-software-users", WAIT, || in_group(&jira, "ann", "jira-software-users")).await;
    drained(&s).await;
    // Drift made by hand: ann taken out of the mapped group.
    let jira_ann_groups = jira.user("ann").map(|u| u.groups).unwrap_or_default();
    assert!(jira_ann_groups.contains("jira-software-users"));
    jira.remove_member("ann", "jira-software-users");
    let r = s
        .client
        .post(format!("{}/admin/reconcile?mode=apply", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reconcile");
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("report");
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["username"].as_str().unwrap_or("").to_string(), f["action"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(findings, vec![("ann".to_string(), "add_to_group".to_string())], "{report:#}");
    let reason = report["findings"][0]["detail"].as_str().unwrap_or_default();
    assert!(reason.contains("jira-software-users"), "compared under the Atlassian name: {reason}");
    eventually("ann back in jira-software-users", WAIT, || in_group(&jira, "ann", "jira-software-users")).await;
    assert!(in_group(&jira, "root", "jira-administrators"));
}

#[tokio::test]
async fn a_group_whose_creation_was_interrupted_by_a_crash_still_counts_as_created_by_scimbridge() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let ann = s.create_user("ann").await;
    eventually("ann created", WAIT, || jira.user("ann").is_some()).await;
    // The state a crash leaves between the create call and its record: the group exists in Jira
    // and the store holds only the `creating` marker written (and flushed) before the call.
    jira.add_group("Eng");
    s.store()
        .managed_group_put(&scimbridge::store::ManagedGroup {
            target: "jira".into(),
            group: "Eng".into(),
            origin: GroupOrigin::Creating,
            at: "2026-01-01T00:00:00Z".into(),
            cause: "crashed attempt".into(),
        })
        .expect("marker");
    s.create_group("Eng", &[&ann]).await;
    eventually("ann in Eng", WAIT, || in_group(&jira, "ann", "Eng")).await;
    drained(&s).await;
    assert_eq!(s.store().dead_letter_count(), 0);
    let rec = s.store().managed_group("jira", "Eng").expect("store").expect("recorded");
    assert_eq!(rec.origin, GroupOrigin::Created);
}

#[tokio::test]
async fn without_create_missing_only_mapped_groups_are_synced_and_the_rest_is_refused_with_the_reason() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_group("jira-software-users");
    let extra =
        "[groups]\ncreate_missing = false\n[[group_map]]\nidp = \"SG-Jira\"\natlassian = \"jira-software-users\"\n";
    let s = bridge(&[("jira", &jira)], extra).await;
    let ann = s.create_user("ann").await;
    eventually("ann created", WAIT, || jira.user("ann").is_some()).await;
    s.create_group("SG-Jira", &[&ann]).await;
    s.create_group("Engineering", &[&ann]).await;
    eventually("ann in the mapped group", WAIT, || in_group(&jira, "ann", "jira-software-users")).await;
    drained(&s).await;
    assert!(!jira.group_exists("Engineering"), "nothing is created");
    let dead: Vec<String> = s
        .store()
        .jobs()
        .expect("jobs")
        .into_iter()
        .filter(|j| j.state == "dead")
        .filter_map(|j| j.entry.last_error)
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("create_missing = false") && dead[0].contains("\"Engineering\""), "{dead:?}");
    assert_eq!(jira.received().iter().filter(|r| r.method == "POST" && r.path == "/rest/api/2/group").count(), 0);
}

#[tokio::test]
async fn a_managed_group_deleted_by_hand_in_the_target_is_created_again_for_the_next_member() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let ann = s.create_user("ann").await;
    let bob = s.create_user("bob").await;
    let g = s.create_group("Eng", &[&ann]).await;
    eventually("ann in Eng", WAIT, || in_group(&jira, "ann", "Eng")).await;
    drained(&s).await;
    jira.delete_group("Eng");
    let add_bob = patch(json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]));
    assert_eq!(s.patch(&format!("/Groups/{g}"), &add_bob).await.status, 204);
    eventually("Eng exists again with bob", WAIT, || in_group(&jira, "bob", "Eng")).await;
    drained(&s).await;
    assert_eq!(s.store().dead_letter_count(), 0, "{:#?}", s.store().jobs().expect("jobs"));
    no_violations(&[&jira]);
}
