//! Offboarding that does not stop at a refusal (issue 9, item 3), end to end: SCIM disable →
//! outbox → the connector → the strict emulator, which refuses like the real products (leads,
//! read-only LDAP/Crowd directories, sysadmins, the caller itself). Each test reads the
//! emulator's state and the audit record, which must say how access ended and why.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{
    DirMode, Emulator, Fault, BITBUCKET_PASSWORD, BITBUCKET_USER, CROWD_APP, CROWD_PASSWORD, SERVICE_USER,
    TOKEN as ATL_TOKEN,
};
use crate::support::server::{eventually, TestServer};
use scimbridge::atlassian::{Action, Effect, Failure, Offboarding, Product};

const WAIT: Duration = Duration::from_secs(20);

/// One `[[target]]` block with `extra` lines (license_groups, lead_successor).
fn target_toml(emu: &Emulator, extra: &str) -> String {
    let p = emu.product();
    let auth = match p {
        Product::Crowd => format!("username = \"{CROWD_APP}\"\npassword_env = \"CROWD_PASSWORD\""),
        Product::Bitbucket => format!("username = \"{BITBUCKET_USER}\"\npassword_env = \"BB_PASSWORD\""),
        _ => "token_env = \"ATL_TOKEN\"".to_string(),
    };
    format!("[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\n{auth}\n{extra}\n", emu.base_url())
}

async fn bridge(emu: &Emulator, extra: &str) -> TestServer {
    let toml = format!(
        "{}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n",
        target_toml(emu, extra)
    );
    TestServer::start_toml(
        &toml,
        &[("ATL_TOKEN", ATL_TOKEN), ("CROWD_PASSWORD", CROWD_PASSWORD), ("BB_PASSWORD", BITBUCKET_PASSWORD)],
    )
    .await
}

async fn disable(s: &TestServer, id: &str) {
    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let r = s.patch(&format!("/Users/{id}"), &op).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The record of the user's offboarding delivery, once the outbox has drained.
async fn offboarding_record(s: &TestServer, id: &str, action: &str) -> Value {
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let records = s.store().audit_of(id).expect("audit");
    records
        .into_iter()
        .rfind(|r| r["type"] == "delivery" && r["action"]["type"] == action)
        .unwrap_or_else(|| panic!("no {action} delivery record for {id}"))
}

/// Creates `name` through SCIM and waits until the emulator holds the account.
async fn provisioned(s: &TestServer, emu: &Emulator, name: &str) -> String {
    let id = s.create_user(name).await;
    eventually("the account exists", WAIT, || emu.user(name).is_some()).await;
    id
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_jira_project_lead_loses_access_by_the_application_role_groups_and_the_audit_says_why() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], Some(10));
    jira.add_group("devs");
    let s = bridge(&jira, "").await;
    let id = provisioned(&s, &jira, "lena").await;
    jira.add_member("lena", "jira-software-users");
    jira.add_member("lena", "devs");
    jira.add_project("ABC", "lena");
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(rec["outcome"], "delivered", "{rec:#}");
    assert_eq!(rec["effect"], "access_removed_by_groups", "{rec:#}");
    let fb = &rec["fallback"][0];
    assert!(fb["refusal"].as_str().is_some_and(|r| r.contains("project lead of: ABC")), "{fb:#}");
    assert_eq!(strings(&fb["groups_removed"]), vec!["jira-software-users"]);
    assert!(fb["access_groups_from"].as_str().is_some_and(|f| f.contains("applicationrole")), "{fb:#}");
    let lena = jira.user("lena").expect("lena");
    // Jira kept her active (it refuses for leads) but she holds no seat; other groups stay.
    assert!(lena.active && !lena.groups.contains("jira-software-users") && lena.groups.contains("devs"), "{lena:?}");
    assert_eq!(jira.project_lead("ABC").as_deref(), Some("lena"));
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn with_lead_successor_project_and_component_leads_move_and_the_leader_is_deactivated() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.add_user("boss");
    let s = bridge(&jira, "lead_successor = \"boss\"").await;
    let id = provisioned(&s, &jira, "mo").await;
    jira.add_member("mo", "jira-software-users");
    jira.add_project("ABC", "mo");
    jira.add_project("XYZ", "boss");
    let comp = jira.add_component("XYZ", "Backend", Some("mo"));
    let other = jira.add_component("XYZ", "Frontend", Some("boss"));
    jira.set_sessions("mo", 2);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!((rec["outcome"].as_str(), rec["effect"].as_str()), (Some("delivered"), Some("applied")), "{rec:#}");
    let moved = rec["fallback"][0]["leads_moved"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(String, String, String)> = moved
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or("").into(),
                m["name"].as_str().unwrap_or("").into(),
                m["to"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("project".into(), "Project ABC".into(), "boss".into()),
            ("component".into(), "XYZ/Backend".into(), "boss".into())
        ],
        "{rec:#}"
    );
    let mo = jira.user("mo").expect("mo");
    assert!(!mo.active && mo.sessions == 0, "deactivated, sessions ended: {mo:?}");
    // Deactivated, so the groups are left alone.
    assert!(mo.groups.contains("jira-software-users"));
    assert_eq!(jira.project_lead("ABC").as_deref(), Some("boss"));
    assert_eq!(jira.component_lead(&comp).as_deref(), Some("boss"));
    assert_eq!(jira.component_lead(&other).as_deref(), Some("boss"));
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn a_jira_ldap_user_with_local_groups_loses_the_local_access_groups() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.make_external_group("ldap-staff");
    let s = bridge(&jira, "license_groups = [\"jira-core-users\"]").await;
    jira.add_group("jira-core-users");
    let id = provisioned(&s, &jira, "lee").await;
    for g in ["jira-software-users", "jira-core-users", "ldap-staff"] {
        jira.add_member("lee", g);
    }
    jira.put_in_directory("lee", DirMode::LdapReadOnlyLocalGroups);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(
        (rec["outcome"].as_str(), rec["effect"].as_str()),
        (Some("delivered"), Some("access_removed_by_groups")),
        "{rec:#}"
    );
    let fb = &rec["fallback"][0];
    assert!(fb["refusal"].as_str().is_some_and(|r| r.contains("directory is read only")), "{fb:#}");
    assert_eq!(strings(&fb["groups_removed"]), vec!["jira-core-users", "jira-software-users"]);
    let lee = jira.user("lee").expect("lee");
    assert!(lee.active && lee.groups.iter().eq(["ldap-staff"].iter()), "only the LDAP group is left: {lee:?}");
}

#[tokio::test]
async fn a_jira_user_whose_access_group_is_read_only_becomes_a_dead_letter_saying_what_to_do() {
    let jira = Emulator::start(Product::Jira).await;
    jira.make_external_group("jira-software-users");
    jira.set_role("jira-software", &["jira-software-users"], None);
    let s = bridge(&jira, "").await;
    let id = provisioned(&s, &jira, "rita").await;
    jira.add_member("rita", "jira-software-users");
    jira.put_in_directory("rita", DirMode::LdapReadOnly);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(rec["outcome"], "dead", "{rec:#}");
    let error = rec["error"].as_str().unwrap_or("");
    for part in [
        "Jira refused to deactivate rita",
        "directory is read only",
        "still has access through jira-software-users",
        "LDAP (read-only)",
        "By hand: remove rita from jira-software-users",
    ] {
        assert!(error.contains(part), "{part:?} missing from the dead letter: {error}");
    }
    assert_eq!(rec["fallback"][0]["groups_refused"][0]["group"], "jira-software-users", "{rec:#}");
    let rita = jira.user("rita").expect("rita");
    assert!(rita.active && rita.groups.contains("jira-software-users"));
}

#[tokio::test]
async fn a_jira_system_administrator_loses_the_access_groups_but_the_admin_is_told_a_sysadmin_must_finish() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.set_caller_plain_admin(true);
    let s = bridge(&jira, "").await;
    let id = provisioned(&s, &jira, "sam").await;
    jira.add_member("sam", "jira-software-users");
    jira.make_sysadmin("sam");
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(rec["outcome"], "dead", "{rec:#}");
    let error = rec["error"].as_str().unwrap_or("");
    assert!(error.contains("removed sam from jira-software-users"), "{error}");
    assert!(error.contains("only a System Administrator can deactivate them"), "{error}");
    assert!(!jira.user("sam").expect("sam").groups.contains("jira-software-users"));
}

#[tokio::test]
async fn the_bridge_never_removes_the_access_of_its_own_account() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.add_member(SERVICE_USER, "jira-software-users");
    let s = bridge(&jira, "").await;
    // The IdP's record of the service account carries its email, so linking finds the account.
    let id = s
        .create_user_from(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": SERVICE_USER,
            "emails": [{"value": "svc@example.com", "type": "work", "primary": true}],
            "active": true
        }))
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(rec["outcome"], "dead", "{rec:#}");
    assert!(rec["error"].as_str().is_some_and(|e| e.contains("will not remove its own access")), "{rec:#}");
    let me = jira.user(SERVICE_USER).expect("service user");
    assert!(me.active && me.groups.contains("jira-software-users"));
}

#[tokio::test]
async fn a_confluence_ldap_user_that_disable_silently_keeps_loses_the_can_use_groups() {
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.set_can_use(&["confluence-users"]);
    wiki.make_external_group("ldap-staff");
    let s = bridge(&wiki, "").await;
    let id = provisioned(&s, &wiki, "cleo").await;
    wiki.add_member("cleo", "confluence-users");
    wiki.add_member("cleo", "ldap-staff");
    wiki.put_in_directory("cleo", DirMode::LdapReadOnlyLocalGroups);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(
        (rec["outcome"].as_str(), rec["effect"].as_str()),
        (Some("delivered"), Some("access_removed_by_groups")),
        "{rec:#}"
    );
    let fb = &rec["fallback"][0];
    assert!(fb["refusal"].as_str().is_some_and(|r| r.contains("still enabled")), "{fb:#}");
    assert_eq!(strings(&fb["groups_removed"]), vec!["confluence-users"]);
    let cleo = wiki.user("cleo").expect("cleo");
    assert!(cleo.active && cleo.groups.iter().eq(["ldap-staff"].iter()), "{cleo:?}");
    assert!(wiki.violations().is_empty(), "{:?}", wiki.violations());
}

#[tokio::test]
async fn a_confluence_user_of_a_read_only_directory_without_local_groups_is_a_dead_letter() {
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.set_can_use(&["confluence-users"]);
    let s = bridge(&wiki, "").await;
    let id = provisioned(&s, &wiki, "cole").await;
    wiki.add_member("cole", "confluence-users");
    wiki.put_in_directory("cole", DirMode::Crowd);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(rec["outcome"], "dead", "{rec:#}");
    let error = rec["error"].as_str().unwrap_or("");
    assert!(error.contains("cole still has access through confluence-users"), "{error}");
    assert!(error.contains("Crowd (read-only)"), "the directory is named: {error}");
}

#[tokio::test]
async fn a_crowd_ldap_user_loses_the_configured_groups_when_crowd_refuses_with_403() {
    let crowd = Emulator::start(Product::Crowd).await;
    crowd.make_external_group("ldap-staff");
    let s = bridge(&crowd, "license_groups = [\"jira-users\", \"confluence-users\"]").await;
    crowd.add_group("jira-users");
    crowd.add_group("confluence-users");
    let id = provisioned(&s, &crowd, "cruz").await;
    crowd.add_member("cruz", "jira-users");
    crowd.add_member("cruz", "ldap-staff");
    crowd.put_in_directory("cruz", DirMode::LdapReadOnlyLocalGroups);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(
        (rec["outcome"].as_str(), rec["effect"].as_str()),
        (Some("delivered"), Some("access_removed_by_groups")),
        "{rec:#}"
    );
    let fb = &rec["fallback"][0];
    assert!(
        fb["refusal"].as_str().is_some_and(|r| r.starts_with("403") && r.contains("does not allow updates")),
        "{fb:#}"
    );
    assert_eq!(strings(&fb["groups_removed"]), vec!["jira-users"]);
    let cruz = crowd.user("cruz").expect("cruz");
    assert!(cruz.active && cruz.groups.iter().eq(["ldap-staff"].iter()), "{cruz:?}");
    assert!(crowd.violations().is_empty(), "{:?}", crowd.violations());
}

#[tokio::test]
async fn a_bitbucket_user_of_an_external_directory_is_a_dead_letter_naming_directory_and_groups() {
    let bb = Emulator::start(Product::Bitbucket).await;
    let s = bridge(&bb, "license_groups = [\"stash-users\"]").await;
    bb.add_group("stash-users");
    let id = provisioned(&s, &bb, "bea").await;
    bb.add_member("bea", "stash-users");
    bb.put_in_directory("bea", DirMode::LdapReadOnly);
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "remove_license").await;
    assert_eq!(rec["outcome"], "dead", "{rec:#}");
    let error = rec["error"].as_str().unwrap_or("");
    for part in
        ["mutableGroups: false", "\"LDAP (read-only)\"", "By hand: remove bea from stash-users in LDAP (read-only)"]
    {
        assert!(error.contains(part), "{part:?} missing: {error}");
    }
    assert!(bb.user("bea").expect("bea").groups.contains("stash-users"));
    assert_eq!(bb.count("POST", "/rest/api/1.0/admin/users/remove-group"), 0, "no call that cannot work");
}

#[tokio::test]
async fn a_lead_successor_jira_will_not_accept_leaves_the_leads_and_falls_back_to_the_groups() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    // "gone" does not exist: Jira refuses it as project lead.
    let s = bridge(&jira, "lead_successor = \"gone\"").await;
    let id = provisioned(&s, &jira, "nia").await;
    jira.add_member("nia", "jira-software-users");
    jira.add_project("ABC", "nia");
    disable(&s, &id).await;

    let rec = offboarding_record(&s, &id, "deactivate").await;
    assert_eq!(
        (rec["outcome"].as_str(), rec["effect"].as_str()),
        (Some("delivered"), Some("access_removed_by_groups")),
        "{rec:#}"
    );
    let fb = &rec["fallback"][0];
    assert!(fb.get("leads_moved").is_none(), "nothing moved: {fb:#}");
    assert!(fb["refusal"].as_str().is_some_and(|r| r.contains("no lead could be handed to gone")), "{fb:#}");
    assert_eq!(jira.project_lead("ABC").as_deref(), Some("nia"));
    let nia = jira.user("nia").expect("nia");
    assert!(nia.active && !nia.groups.contains("jira-software-users"), "{nia:?}");
    assert_eq!(jira.count("PUT", "/rest/api/2/project/ABC"), 1, "one attempt to move the lead");
}

// ---- the connector alone (no server) ----

fn deactivate(name: &str) -> Action {
    Action::Deactivate { username: name.into() }
}

#[tokio::test]
async fn a_component_lead_alone_is_refused_under_errors_active_and_falls_back() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-core", &["jira-core-users"], None);
    jira.add_user("cal");
    jira.add_member("cal", "jira-core-users");
    jira.add_project("OPS", "svc-scimbridge");
    jira.add_component("OPS", "Infra", Some("cal"));
    let exec = jira.connector().execute(&deactivate("cal")).await;
    assert_eq!(exec.result, Ok(Effect::AccessRemovedByGroups), "{:?}", exec.calls);
    let fb = exec.fallback.expect("a fallback report");
    assert!(fb.refusal.contains("component lead in project(s): OPS"), "{fb:?}");
    assert_eq!(fb.groups_removed, vec!["jira-core-users"]);
    assert!(jira.user("cal").is_some_and(|u| u.active && u.groups.is_empty()));
}

#[tokio::test]
async fn a_crowd_refusal_without_any_configured_group_asks_for_license_groups() {
    let crowd = Emulator::start(Product::Crowd).await;
    crowd.add_user("cy");
    crowd.put_in_directory("cy", DirMode::LdapReadOnly);
    let exec = crowd.connector().execute(&deactivate("cy")).await;
    let Err(Failure::Permanent { reason }) = &exec.result else { panic!("{:?}", exec.result) };
    assert!(reason.contains("Crowd refused to deactivate cy") && reason.contains("license_groups"), "{reason}");
    // With the groups configured, the read-only directory still refuses them: by hand.
    crowd.add_member("cy", "jira-users");
    crowd.make_external_group("jira-users");
    let conn = crowd
        .connector()
        .with_offboarding(Offboarding { license_groups: vec!["jira-users".into()], ..Offboarding::default() });
    let exec = conn.execute(&deactivate("cy")).await;
    let Err(Failure::Permanent { reason }) = &exec.result else { panic!("{:?}", exec.result) };
    assert!(reason.contains("remove cy from jira-users"), "{reason}");
    assert!(crowd.user("cy").is_some_and(|u| u.active && u.groups.contains("jira-users")));
}

#[tokio::test]
async fn an_internal_confluence_user_is_disabled_and_the_disable_is_confirmed() {
    let wiki = Emulator::start(Product::Confluence).await;
    wiki.set_can_use(&["confluence-users"]);
    wiki.add_user("ivy");
    wiki.add_member("ivy", "confluence-users");
    let exec = wiki.connector().execute(&deactivate("ivy")).await;
    assert_eq!(exec.result, Ok(Effect::Applied));
    assert!(exec.fallback.is_none());
    assert!(exec.calls.iter().any(|c| c.method == "GET" && c.path.contains("expand=status")), "{:?}", exec.calls);
    assert!(wiki.user("ivy").is_some_and(|u| !u.active && u.groups.contains("confluence-users")));
}

#[tokio::test]
async fn enabling_again_a_user_offboarded_by_the_fallback_gives_back_the_groups_it_removed() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.add_group("jira-core-users");
    let s = bridge(&jira, "license_groups = [\"jira-core-users\"]").await;
    let id = provisioned(&s, &jira, "ravi").await;
    jira.add_member("ravi", "jira-software-users");
    jira.add_project("ABC", "ravi");
    disable(&s, &id).await;
    eventually("ravi lost the access group", WAIT, || {
        jira.user("ravi").is_some_and(|u| !u.groups.contains("jira-software-users"))
    })
    .await;
    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": true}]});
    let r = s.patch(&format!("/Users/{id}"), &op).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let rec = offboarding_record(&s, &id, "reactivate").await;
    assert_eq!(rec["outcome"], "delivered", "{rec:#}");
    assert_eq!(
        strings(&rec["restored_groups"]),
        vec!["jira-software-users"],
        "only what the fallback removed: {rec:#}"
    );
    let ravi = jira.user("ravi").expect("ravi");
    assert!(
        ravi.active && ravi.groups.contains("jira-software-users") && !ravi.groups.contains("jira-core-users"),
        "{ravi:?}"
    );
}

#[tokio::test]
async fn a_protected_access_group_is_never_removed_and_the_dead_letter_says_why() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users", "release-managers"], None);
    jira.add_user("pia");
    jira.add_member("pia", "jira-software-users");
    jira.add_member("pia", "release-managers");
    jira.put_in_directory("pia", DirMode::LdapReadOnlyLocalGroups);
    let conn = jira
        .connector()
        .with_offboarding(Offboarding { protected_groups: vec!["Release-Managers".into()], ..Offboarding::default() });
    let exec = conn.execute(&deactivate("pia")).await;
    let Err(Failure::Permanent { reason }) = &exec.result else { panic!("{:?}", exec.result) };
    assert!(reason.contains("release-managers (in policy.protected_groups"), "{reason}");
    let pia = jira.user("pia").expect("pia");
    assert!(!pia.groups.contains("jira-software-users") && pia.groups.contains("release-managers"), "{pia:?}");
}

#[tokio::test]
async fn a_user_still_given_an_application_after_the_removals_is_a_dead_letter() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    jira.add_group("jira-core-users");
    jira.add_user("tom");
    jira.add_member("tom", "jira-software-users");
    jira.add_member("tom", "jira-core-users");
    jira.add_project("ABC", "tom");
    let conn = jira
        .connector()
        .with_offboarding(Offboarding { license_groups: vec!["jira-core-users".into()], ..Offboarding::default() });
    // The release is read once per connector: read it first, so the faults below meet the calls
    // the comment names.
    conn.server_version().await.expect("release read");
    // GET /user, PUT /user (refused), GET /myself, then GET /applicationrole is forbidden: the
    // bridge only knows license_groups and misses the role's group.
    let serve = Fault::Delay(Duration::ZERO);
    jira.push_faults([serve.clone(), serve.clone(), serve, Fault::status(403)]);
    let exec = conn.execute(&deactivate("tom")).await;
    let Err(Failure::Permanent { reason }) = &exec.result else { panic!("{:?}", exec.result) };
    assert!(reason.contains("removed tom from jira-core-users"), "{reason}");
    assert!(reason.contains("still gives tom the application(s) jira-software"), "{reason}");
    let fb = exec.fallback.expect("report");
    assert!(fb.access_groups_from.contains("license_groups only: GET /applicationrole answered 403"), "{fb:?}");
}

/// A re-hire (a new SCIM user taking back the account) of someone whose offboarding fell back to
/// removing access groups gets those groups back, as enabling the same SCIM user again does:
/// the account was never deactivated, so "reactivate" alone would leave them without access.
#[tokio::test]
async fn a_rehire_of_a_user_offboarded_by_the_fallback_gets_the_removed_groups_back() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &["jira-software-users"], None);
    let s = bridge(&jira, "").await;
    let user = |ext: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": ext, "userName": "ravi",
               "emails": [{"value": "ravi@example.com", "primary": true}], "active": true})
    };
    let first = s.create_user_from(user("ext-ravi")).await["id"].as_str().expect("id").to_string();
    eventually("ravi exists", WAIT, || jira.user("ravi").is_some()).await;
    jira.add_member("ravi", "jira-software-users");
    jira.add_project("ABC", "ravi");
    assert_eq!(s.delete(&format!("/Users/{first}")).await.status, 204);
    eventually("ravi lost the access group", WAIT, || {
        jira.user("ravi").is_some_and(|u| !u.groups.contains("jira-software-users"))
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;

    let again = s.create_user_from(user("ext-ravi")).await["id"].as_str().expect("id").to_string();
    let rec = offboarding_record(&s, &again, "create_user").await;
    assert_eq!(rec["outcome"], "delivered", "{rec:#}");
    assert_eq!(strings(&rec["restored_groups"]), vec!["jira-software-users"], "{rec:#}");
    let ravi = jira.user("ravi").expect("ravi");
    assert!(ravi.active && ravi.groups.contains("jira-software-users"), "{ravi:?}");
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 1, "no duplicate");
}
