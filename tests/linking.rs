//! Linking IdP users to existing Atlassian accounts (issue 9, item 1): an existing account is
//! found by username or email and linked instead of duplicated, ambiguity waits for an operator,
//! re-hires get their account back, `rename = "follow"` renames where the product can, and
//! `links preview/list/set/clear` through the admin API and the CLI. All against the emulator.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, SERVICE_USER, TARGET_ENV, TOKEN as ATL_TOKEN};
use crate::support::child::cli;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn toml(targets: &[(&str, &Emulator)], policy: &str) -> String {
    let mut toml: String = targets.iter().map(|(n, e)| e.target_toml(n)).collect::<Vec<_>>().join("\n");
    toml.push_str(&format!(
        "\n[policy]\n{policy}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n"
    ));
    toml
}

async fn bridge(targets: &[(&str, &Emulator)], policy: &str) -> TestServer {
    TestServer::start_toml(&toml(targets, policy), &TARGET_ENV).await
}

/// A user as Entra ID creates it: userName is the UPN, the work email the same address.
async fn entra_user(s: &TestServer, upn: &str, external_id: &str) -> String {
    let body = s
        .create_user_from(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "externalId": external_id,
            "userName": upn,
            "displayName": format!("Person {upn}"),
            "emails": [{"value": upn, "type": "work", "primary": true}],
            "active": true
        }))
        .await;
    body["id"].as_str().expect("id").to_string()
}

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
}

async fn admin(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn link_of(s: &TestServer, id: &str, target: &str) -> Option<String> {
    s.store().link(id, target).expect("read link").map(|l| l.username)
}

fn records(s: &TestServer, id: &str, kind: &str) -> Vec<Value> {
    s.store().audit_of(id).expect("audit").into_iter().filter(|r| r["type"] == kind).collect()
}

#[tokio::test]
async fn the_existing_jira_dave_is_linked_by_email_not_duplicated_and_disabling_the_scim_user_deactivates_him() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    let s = bridge(&[("jira", &jira)], "").await;
    let id = entra_user(&s, "dave@contoso.com", "0f1e2d3c").await;

    eventually("dave linked on jira", WAIT, || link_of(&s, &id, "jira").as_deref() == Some("dave")).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("dave@contoso.com").is_none(), "no duplicate account was created");
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 0, "no create call at all: {:?}", jira.received());
    let link = &records(&s, &id, "link")[0];
    assert_eq!((link["source"].as_str(), link["actor"].as_str()), (Some("email"), Some("delivery")), "{link}");

    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("the existing dave is deactivated", WAIT, || jira.user("dave").is_some_and(|u| !u.active)).await;
    // The delivery record is written once the call returned: Jira may show the change first.
    eventually("the deactivation is recorded", WAIT, || s.store().outbox_depth() == 0).await;
    let delivered = records(&s, &id, "delivery");
    assert!(
        delivered
            .iter()
            .any(|r| r["action"]["type"] == "deactivate" && r["username"] == "dave" && r["outcome"] == "delivered"),
        "{delivered:#?}"
    );
    assert_eq!(s.store().dead_letter_count(), 0);
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

/// A profile change of a user linked under another name reaches the linked account, in Jira and
/// in Bitbucket; nothing is sent under the IdP-derived name.
#[tokio::test]
async fn a_profile_update_of_a_user_linked_by_email_reaches_the_linked_account() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("lena", "lena@contoso.com");
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_user_with_email("lena", "lena@contoso.com");
    let s = bridge(&[("jira", &jira), ("git", &bb)], "").await;
    let id = entra_user(&s, "lena@contoso.com", "l-1").await;
    eventually("lena linked on both", WAIT, || {
        link_of(&s, &id, "jira").as_deref() == Some("lena") && link_of(&s, &id, "git").as_deref() == Some("lena")
    })
    .await;
    let change = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Lena Novak"},
                       {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "lena.novak@contoso.com"}]});
    assert_eq!(s.patch(&format!("/Users/{id}"), &change).await.status, 200);
    eventually("the linked accounts carry the new name and email", WAIT, || {
        [&jira, &bb].iter().all(|e| {
            e.user("lena").is_some_and(|u| u.display_name == "Lena Novak" && u.email == "lena.novak@contoso.com")
        })
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let updates: Vec<Value> =
        records(&s, &id, "delivery").into_iter().filter(|r| r["action"]["type"] == "update_profile").collect();
    assert_eq!(updates.len(), 2, "{updates:#?}");
    assert!(updates.iter().all(|r| r["username"] == "lena" && r["outcome"] == "delivered"), "{updates:#?}");
    assert!(jira.user("lena@contoso.com").is_none() && bb.user("lena@contoso.com").is_none(), "no duplicate");
    assert_eq!(s.store().dead_letter_count(), 0);
    assert!(jira.violations().is_empty() && bb.violations().is_empty());
}

#[tokio::test]
async fn an_inactive_existing_account_is_linked_by_username_and_reactivated_in_crowd_and_found_by_email_in_bitbucket() {
    let crowd = Emulator::start(Product::Crowd).await;
    crowd.add_user_with_email("erin@contoso.com", "erin@contoso.com");
    crowd.set_active("erin@contoso.com", false);
    crowd.add_user_with_email("frank", "frank@contoso.com");
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.add_user_with_email("frank", "Frank@Contoso.com");
    let s = bridge(&[("crowd", &crowd), ("git", &bb)], "").await;
    let erin = entra_user(&s, "erin@contoso.com", "e-1").await;
    let frank = entra_user(&s, "frank@contoso.com", "f-1").await;
    eventually("links recorded", WAIT, || {
        link_of(&s, &erin, "crowd").as_deref() == Some("erin@contoso.com")
            && link_of(&s, &frank, "crowd").as_deref() == Some("frank")
            && link_of(&s, &frank, "git").as_deref() == Some("frank")
    })
    .await;
    eventually("erin reactivated in Crowd", WAIT, || crowd.user("erin@contoso.com").is_some_and(|u| u.active)).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(crowd.user("frank@contoso.com").is_none() && bb.user("frank@contoso.com").is_none(), "no duplicates");
    // Crowd was searched with a CQL email restriction, Bitbucket with admin/users?filter=.
    assert!(crowd.received().iter().any(|r| r.path.contains("restriction=email")), "{:?}", crowd.received());
    assert!(bb.received().iter().any(|r| r.path.contains("filter=frank@contoso.com")), "{:?}", bb.received());
    assert!(
        crowd.violations().is_empty() && bb.violations().is_empty(),
        "{:?} {:?}",
        crowd.violations(),
        bb.violations()
    );
}

#[tokio::test]
async fn several_accounts_with_the_email_hold_the_user_for_review_until_links_set_releases_the_deliveries() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("dsmith", "dave@contoso.com");
    // Not pre-created: scimbridge creates the groups the IdP pushes.
    let s = bridge(&[("jira", &jira)], "").await;
    let id = entra_user(&s, "dave@contoso.com", "d-1").await;
    eventually("dave is on the review list", WAIT, || s.store().review("jira", &id).ok().flatten().is_some()).await;
    s.create_group("developers", &[&id]).await;
    eventually("the group addition is held too", WAIT, || {
        s.store().held_count("jira", &id).unwrap_or(0) == 2 && s.store().outbox_depth() == 0
    })
    .await;
    let review = s.store().review("jira", &id).expect("read").expect("review");
    assert_eq!(
        (review.kind.as_str(), review.candidates.clone()),
        ("ambiguous", vec!["dave".to_string(), "dsmith".to_string()])
    );
    // No action was taken: no create, no membership, on either account.
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 0);
    assert_eq!(jira.count("POST", "/rest/api/2/group/user"), 0);

    let metrics = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("m");
    let metrics = metrics.text().await.expect("metrics text");
    assert!(
        metrics.contains("scimbridge_link_review_users 1") && metrics.contains("scimbridge_link_held_intents 2"),
        "an operator can alert on users waiting for review: {metrics}"
    );
    let (status, list) = admin(&s, Method::GET, "/admin/links?target=jira", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["review"][0]["held"], 2, "{list}");
    assert_eq!(list["review"][0]["kind"], "ambiguous", "{list}");

    // A link to an account that does not belong to the named target is refused with a reason.
    let (status, body) = admin(
        &s,
        Method::POST,
        "/admin/links",
        Some(json!({"user": "dave@contoso.com", "username": "dsmith", "target": "nope"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("nope") && d.contains("jira")), "{body}");

    let (status, body) = admin(
        &s,
        Method::POST,
        "/admin/links",
        Some(json!({"user": "dave@contoso.com", "username": "dsmith", "target": "jira"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["released"], 2, "{body}");
    eventually("dsmith gets the group", WAIT, || jira.user("dsmith").is_some_and(|u| u.groups.contains("developers")))
        .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("dave").is_some_and(|u| u.groups.is_empty()), "the other account is untouched");
    assert!(jira.user("dave@contoso.com").is_none());
    assert!(s.store().review("jira", &id).expect("read").is_none());
    let set = records(&s, &id, "link");
    assert!(
        set.iter().any(|r| r["op"] == "set" && r["actor"] == "admin-config-1" && r["username"] == "dsmith"),
        "{set:#?}"
    );
    let held = records(&s, &id, "delivery");
    assert!(held.iter().any(|r| r["outcome"] == "held_for_review"), "{held:#?}");

    // The account now belongs to dave: nobody else can be linked to it.
    let other = entra_user(&s, "zoe@contoso.com", "z-1").await;
    let (status, body) =
        admin(&s, Method::POST, "/admin/links", Some(json!({"user": other, "username": "DSMITH", "target": "jira"})))
            .await;
    assert_eq!(status, 409, "{body}");
    // A name the target has no account of is refused, unless linked as new on purpose.
    let typo = json!({"user": other, "username": "dsmiht", "target": "jira"});
    let (status, body) = admin(&s, Method::POST, "/admin/links", Some(typo)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("no account 'dsmiht'") && d.contains("--new")),
        "{body}"
    );
    let new_name = json!({"user": other, "username": "zoe.new", "target": "jira", "new": true});
    let (status, body) = admin(&s, Method::POST, "/admin/links", Some(new_name)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(link_of(&s, &other, "jira").as_deref(), Some("zoe.new"));
}

#[tokio::test]
async fn a_username_that_belongs_to_another_email_is_a_conflict_and_never_taken_over() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("carl@contoso.com", "someone.else@fabrikam.com");
    let s = bridge(&[("jira", &jira)], "").await;
    let id = entra_user(&s, "carl@contoso.com", "c-1").await;
    eventually("carl is held for review", WAIT, || s.store().review("jira", &id).ok().flatten().is_some()).await;
    let review = s.store().review("jira", &id).expect("read").expect("review");
    assert_eq!(review.kind, "conflict");
    assert!(review.reason.contains("another email"), "{}", review.reason);
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("the deactivation is held, not sent", WAIT, || s.store().held_count("jira", &id).unwrap_or(0) == 2)
        .await;
    assert!(jira.user("carl@contoso.com").is_some_and(|u| u.active), "the other person's account is untouched");
    assert_eq!(jira.count("PUT", "/rest/api/2/user"), 0);
}

#[tokio::test]
async fn a_rehire_with_the_same_external_id_gets_the_old_account_back_reactivated_without_a_duplicate() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let first = entra_user(&s, "gina@contoso.com", "ext-gina").await;
    eventually("gina created and linked", WAIT, || link_of(&s, &first, "jira").is_some()).await;
    assert_eq!(s.delete(&format!("/Users/{first}")).await.status, 204);
    eventually("gina deactivated on delete", WAIT, || jira.user("gina@contoso.com").is_some_and(|u| !u.active)).await;

    // Back a year later under a new UPN, same immutable id.
    let again = entra_user(&s, "gina.rossi@contoso.com", "ext-gina").await;
    eventually("the old account is reactivated and linked to the new user", WAIT, || {
        jira.user("gina@contoso.com").is_some_and(|u| u.active)
            && link_of(&s, &again, "jira").as_deref() == Some("gina@contoso.com")
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("gina.rossi@contoso.com").is_none(), "no duplicate");
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 1, "one create, the first time");
    assert_eq!(s.store().dead_letter_count(), 0);
    assert!(records(&s, &again, "link").iter().any(|r| r["op"] == "rehire"), "audited as a re-hire");
}

/// Two deleted users shared an externalId (the IdP does not make it unique) and each had an
/// account; a third user with it cannot be told which one is theirs. Delivery holds it for
/// review, and `links preview` says the same, instead of "new".
#[tokio::test]
async fn a_rehire_matching_several_old_accounts_is_ambiguous_at_delivery_and_in_the_preview() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let a = entra_user(&s, "mia@contoso.com", "ext-shared").await;
    let b = entra_user(&s, "mia.k@contoso.com", "ext-shared").await;
    eventually("both linked", WAIT, || link_of(&s, &a, "jira").is_some() && link_of(&s, &b, "jira").is_some()).await;
    for id in [&a, &b] {
        assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    }
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let c = entra_user(&s, "mia.new@contoso.com", "ext-shared").await;
    eventually("the re-hire waits for review", WAIT, || s.store().review("jira", &c).ok().flatten().is_some()).await;
    let review = s.store().review("jira", &c).expect("read").expect("review");
    assert_eq!(review.kind, "ambiguous");

    let (status, p) = admin(&s, Method::GET, "/admin/links/preview?target=jira", None).await;
    assert_eq!(status, 200, "{p}");
    let row = p["targets"][0]["users"]
        .as_array()
        .and_then(|u| u.iter().find(|r| r["user_id"] == c.as_str()))
        .cloned()
        .expect("a row for the re-hire");
    assert_eq!(row["status"], "ambiguous", "{row}");
    let mut candidates: Vec<&str> =
        row["candidates"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    candidates.sort_unstable();
    assert_eq!(candidates, ["mia.k@contoso.com", "mia@contoso.com"], "{row}");
    assert!(jira.user("mia.new@contoso.com").is_none(), "nothing was created");
}

/// `link_existing = "none"` looks nothing up: the create takes an account of the same name as it
/// is, which `links preview` must say ("existing", not "new"); and an account an operator linked to
/// another SCIM user is never taken (the user waits for review; it used to repeat forever).
#[tokio::test]
async fn with_link_existing_none_the_preview_and_delivery_agree_on_same_name_accounts() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("pat", "pat@contoso.com");
    jira.add_user_with_email("nora", "nora@contoso.com");
    let dry = bridge(&[("jira", &jira)], "link_existing = \"none\"\ndry_run = true").await;
    dry.create_user("pat").await;
    let (status, p) = admin(&dry, Method::GET, "/admin/links/preview?target=jira", None).await;
    assert_eq!(status, 200, "{p}");
    let pat = p["targets"][0]["users"].as_array().and_then(|u| u.iter().find(|r| r["user_name"] == "pat")).cloned();
    let pat = pat.expect("a row for pat");
    assert_eq!((&pat["status"], &pat["username"]), (&json!("existing"), &json!("pat")), "{pat}");
    drop(dry);

    let s = bridge(&[("jira", &jira)], "link_existing = \"none\"").await;
    let other = entra_user(&s, "nora.b@contoso.com", "n-2").await;
    eventually("nora.b created", WAIT, || link_of(&s, &other, "jira").is_some()).await;
    let set = json!({"user": other, "username": "nora", "target": "jira"});
    let (status, body) = admin(&s, Method::POST, "/admin/links", Some(set)).await;
    assert_eq!(status, 200, "{body}");
    let nora = s.create_user("nora").await;
    eventually("nora waits for review instead of taking the linked account", WAIT, || {
        s.store().review("jira", &nora).ok().flatten().is_some_and(|r| r.kind == "conflict")
            && s.store().outbox_depth() == 0
    })
    .await;
    assert_eq!(link_of(&s, &other, "jira").as_deref(), Some("nora"), "the operator's link stands");
    let (status, p) = admin(&s, Method::GET, "/admin/links/preview?target=jira", None).await;
    assert_eq!(status, 200, "{p}");
    let row = p["targets"][0]["users"].as_array().and_then(|u| u.iter().find(|r| r["user_id"] == nora.as_str()));
    assert_eq!(row.map(|r| r["status"].clone()), Some(json!("conflict")), "{p}");
}

#[tokio::test]
async fn a_rehire_with_the_same_username_is_reactivated_never_a_409_loop() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    let first = entra_user(&s, "hal@contoso.com", "h-1").await;
    eventually("hal created", WAIT, || link_of(&s, &first, "jira").is_some()).await;
    assert_eq!(s.delete(&format!("/Users/{first}")).await.status, 204);
    eventually("hal deactivated", WAIT, || jira.user("hal@contoso.com").is_some_and(|u| !u.active)).await;
    // A new immutable id this time: found again by the mapped username.
    let again = entra_user(&s, "hal@contoso.com", "h-2").await;
    eventually("hal active again", WAIT, || jira.user("hal@contoso.com").is_some_and(|u| u.active)).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(link_of(&s, &again, "jira").as_deref(), Some("hal@contoso.com"));
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 1);
    assert_eq!(s.store().dead_letter_count(), 0);
}

/// A leaver's deactivation dies during an outage; the person is re-hired (same externalId) and
/// gets the old account back; an operator then retries every dead letter. The old deactivation
/// was decided for the deleted SCIM user: it must not lock the re-hired colleague out.
#[tokio::test]
async fn a_dead_lettered_deactivation_of_the_earlier_owner_never_reaches_the_rehired_account() {
    let jira = Emulator::start(Product::Jira).await;
    let mut config = toml(&[("jira", &jira)], "");
    // An outage alone never makes a dead letter (issue 11): age does.
    config = config.replace("max_attempts = 1000", "max_attempts = 1000\nmax_age_secs = 3\nprobe_interval_secs = 1");
    let s = TestServer::start_toml(&config, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let first = entra_user(&s, "kim@contoso.com", "ext-kim").await;
    eventually("kim created and linked", WAIT, || link_of(&s, &first, "jira").is_some()).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;

    jira.down_for(Duration::from_secs(3600));
    assert_eq!(s.delete(&format!("/Users/{first}")).await.status, 204);
    eventually("the deactivation is a dead letter", WAIT, || {
        s.store().dead_letter_count() == 1 && s.store().outbox_depth() == 0
    })
    .await;
    jira.down_for(Duration::ZERO);
    let again = entra_user(&s, "kim.lee@contoso.com", "ext-kim").await;
    eventually("the re-hire takes the account back", WAIT, || {
        link_of(&s, &again, "jira").as_deref() == Some("kim@contoso.com") && s.store().outbox_depth() == 0
    })
    .await;
    assert!(jira.user("kim@contoso.com").is_some_and(|u| u.active));

    let (status, body) = admin(&s, Method::POST, "/admin/jobs/retry", None).await;
    assert_eq!(status, 200, "{body}");
    eventually("the retried job is closed", WAIT, || s.store().outbox_depth() == 0).await;
    let closed = records(&s, &first, "delivery");
    let last = closed.last().expect("a record of the retried job");
    assert_eq!(last["outcome"], "skipped", "{closed:#?}");
    assert!(last["detail"].as_str().is_some_and(|r| r.contains(&again) && r.contains("not sent")), "{last}");
    assert!(jira.user("kim@contoso.com").is_some_and(|u| u.active), "the re-hired colleague keeps access");
    assert!(jira.user("kim.lee@contoso.com").is_none(), "no duplicate");
}

#[tokio::test]
async fn rename_follow_renames_the_linked_jira_account_and_keep_leaves_confluence_alone() {
    let jira = Emulator::start(Product::Jira).await;
    let wiki = Emulator::start(Product::Confluence).await;
    jira.add_user_with_email("jdoe", "jane@contoso.com");
    let s = bridge(&[("jira", &jira), ("wiki", &wiki)], "rename = \"follow\"\nusername_from = \"userName_localpart\"")
        .await;
    let jane = entra_user(&s, "jane@contoso.com", "j-1").await;
    let id = entra_user(&s, "ivan@contoso.com", "i-1").await;
    eventually("ivan created on both", WAIT, || {
        link_of(&s, &id, "jira").as_deref() == Some("ivan") && link_of(&s, &id, "wiki").as_deref() == Some("ivan")
    })
    .await;
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "ivan.petrov@contoso.com"}]});
    assert_eq!(s.patch(&format!("/Users/{id}"), &rename).await.status, 200);
    eventually("the Jira account follows the rename", WAIT, || {
        link_of(&s, &id, "jira").as_deref() == Some("ivan.petrov")
            && jira.user("ivan").is_some_and(|u| u.name == "ivan.petrov")
    })
    .await;
    assert_eq!(
        link_of(&s, &id, "wiki").as_deref(),
        Some("ivan"),
        "Confluence cannot rename: the link keeps the account"
    );
    // jdoe was found by email: its own name is not the IdP's, so it is not renamed.
    eventually("jane linked to jdoe", WAIT, || link_of(&s, &jane, "jira").as_deref() == Some("jdoe")).await;
    let rename_jane = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "jane.doe@contoso.com"}]});
    assert_eq!(s.patch(&format!("/Users/{jane}"), &rename_jane).await.status, 200);
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("both accounts deactivated under their linked names", WAIT, || {
        jira.user("ivan").is_some_and(|u| !u.active) && wiki.user("ivan").is_some_and(|u| !u.active)
    })
    .await;
    assert_eq!(s.store().dead_letter_count(), 0);
    assert_eq!(link_of(&s, &jane, "jira").as_deref(), Some("jdoe"));
    assert!(jira.user("jdoe").is_some_and(|u| u.name == "jdoe"), "an account linked under another name keeps it");
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}

#[tokio::test]
async fn links_preview_reports_every_match_kind_and_the_orphans_and_changes_nothing() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("amb1", "amb@contoso.com");
    jira.add_user_with_email("amb2", "amb@contoso.com");
    jira.add_user_with_email("carl@contoso.com", "carl@fabrikam.com");
    jira.add_user_with_email("olduser", "old@contoso.com");
    let last = chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z").expect("date").to_utc();
    jira.set_last_active("olduser", Some(last));
    // Dry run: the IdP's users are recorded but nothing is sent, so the preview sees a clean Jira.
    let s = bridge(&[("jira", &jira)], "dry_run = true").await;
    for (upn, ext) in
        [("dave@contoso.com", "1"), ("amb@contoso.com", "2"), ("carl@contoso.com", "3"), ("new@contoso.com", "4")]
    {
        entra_user(&s, upn, ext).await;
    }
    let writes_before = jira.received().iter().filter(|r| r.method != "GET").count();
    let (status, p) = admin(&s, Method::GET, "/admin/links/preview?target=jira", None).await;
    assert_eq!(status, 200, "{p}");
    let t = &p["targets"][0];
    let status_of = |upn: &str| {
        t["users"]
            .as_array()
            .and_then(|u| u.iter().find(|r| r["user_name"] == upn))
            .map(|r| (r["status"].clone(), r["username"].clone()))
    };
    assert_eq!(status_of("dave@contoso.com"), Some((json!("existing"), json!("dave"))), "{t}");
    assert_eq!(status_of("amb@contoso.com").map(|s| s.0), Some(json!("ambiguous")), "{t}");
    assert_eq!(status_of("carl@contoso.com").map(|s| s.0), Some(json!("conflict")), "{t}");
    assert_eq!(status_of("new@contoso.com"), Some((json!("new"), json!("new@contoso.com"))), "{t}");
    let orphans: Vec<&str> =
        t["orphans"].as_array().expect("orphans").iter().filter_map(|o| o["username"].as_str()).collect();
    assert!(orphans.contains(&"olduser") && orphans.contains(&"amb1") && !orphans.contains(&"dave"), "{orphans:?}");
    let old = t["orphans"].as_array().and_then(|o| o.iter().find(|o| o["username"] == "olduser")).expect("olduser");
    assert_eq!(old["last_active"], "2024-03-01T10:00:00Z", "{old}");
    assert_eq!(t["counts"]["existing"], 1, "{t}");
    assert_eq!(
        jira.received().iter().filter(|r| r.method != "GET").count(),
        writes_before,
        "the preview wrote nothing"
    );
    assert!(s.store().links(None).expect("links").is_empty(), "the preview recorded no link");
    let (status, _) = admin(&s, Method::GET, "/admin/links/preview?target=nope", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_links_cli_previews_sets_lists_and_clears_through_the_server_and_on_a_stopped_store() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("dsmith", "dave@contoso.com");
    let config_toml = toml(&[("jira", &jira)], "");
    let s = TestServer::start_toml(&config_toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let id = entra_user(&s, "dave@contoso.com", "d-1").await;
    eventually("dave is on the review list", WAIT, || s.store().review("jira", &id).ok().flatten().is_some()).await;

    let file = s.dir.join("scimbridge.toml");
    std::fs::write(&file, &config_toml).expect("write config");
    let (dir, listen, file) =
        (s.dir.display().to_string(), s.root.trim_start_matches("http://").to_string(), file.display().to_string());
    let env: Vec<(String, String)> = vec![
        ("SCIMBRIDGE_DATA_DIR".into(), dir.clone()),
        ("SCIMBRIDGE_LISTEN".into(), listen),
        ("SCIMBRIDGE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("ATL_TOKEN".into(), ATL_TOKEN.into()),
    ];
    let run = |args: Vec<String>| {
        let env = env.clone();
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config".to_string(), file];
            all.extend(args);
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            cli(&args, &env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>())
        })
    };
    let (code, out, err) = run(vec!["links".into(), "preview".into()]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("jira\tambiguous\tdave@contoso.com"), "{out}");
    let (code, out, err) = run(vec!["links".into(), "list".into()]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("REVIEW (ambiguous)"), "{out}");
    let (code, _, err) =
        run(vec!["links".into(), "set".into(), "dave@contoso.com".into(), "nobody-else".into()]).await.expect("join");
    assert_ne!(code, 0, "--target is required");
    assert!(err.contains("--target"), "{err}");
    let (code, out, err) = run(vec![
        "links".into(),
        "set".into(),
        "dave@contoso.com".into(),
        "dave".into(),
        "--target".into(),
        "jira".into(),
    ])
    .await
    .expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Linked dave@contoso.com to dave on jira"), "{out}");
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("dave@contoso.com").is_none());
    let set = records(&s, &id, "link");
    assert!(
        set.iter().any(|r| r["op"] == "set"
            && r["actor"].as_str().is_some_and(|a| a.starts_with("admin-config-1"))
            && r["run_id"].as_str().is_some_and(|r| !r.is_empty())),
        "through the server, as the admin token: {set:#?}"
    );

    // Stopped: the CLI opens the store itself.
    let keep = s.stop_keep_dir().await;
    let (code, out, err) = run(vec!["links".into(), "list".into()]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("jira\tdave@contoso.com\tdave\tadmin"), "{out}");
    let (code, out, err) = run(vec!["links".into(), "clear".into(), "dave@contoso.com".into()]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Cleared dave@contoso.com on jira (dave)"), "{out}");
    let (code, _, err) = run(vec!["links".into(), "clear".into(), "dave@contoso.com".into()]).await.expect("join");
    assert_ne!(code, 0, "nothing left to clear is an error");
    assert!(err.contains("no link"), "{err}");
    let (code, _, err) = run(vec!["links".into(), "clear".into(), "nobody@contoso.com".into()]).await.expect("join");
    assert_ne!(code, 0);
    assert!(err.contains("nobody@contoso.com"), "{err}");
    drop(keep);
}

#[tokio::test]
async fn cleanup_and_bulk_runs_with_orphans_select_only_accounts_linked_to_no_scim_user() {
    let jira = Emulator::start(Product::Jira).await;
    let long_ago = Some(chrono::Utc::now() - chrono::Duration::days(400));
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("olduser", "old@contoso.com");
    jira.add_user_with_email("gone", "gone@contoso.com");
    for u in ["dave", "olduser", "gone"] {
        jira.set_last_active(u, long_ago);
    }
    // The bridge's own account is a Jira administrator, as a real deployment's must be.
    jira.add_member(SERVICE_USER, "jira-administrators");
    let s = bridge(&[("jira", &jira)], "").await;
    let id = entra_user(&s, "dave@contoso.com", "d-1").await;
    eventually("dave linked", WAIT, || link_of(&s, &id, "jira").as_deref() == Some("dave")).await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;

    let names = |report: &Value| -> Vec<String> {
        let mut n: Vec<String> = report["findings"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["username"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        n.sort();
        n
    };
    let (status, all) = admin(&s, Method::POST, "/admin/cleanup?mode=dry-run", None).await;
    assert_eq!(status, 200, "{all}");
    assert!(names(&all).contains(&"dave".to_string()), "without --orphans the linked dave is a candidate: {all}");
    let (status, orphans) = admin(&s, Method::POST, "/admin/cleanup?mode=dry-run&orphans=true", None).await;
    assert_eq!(status, 200, "{orphans}");
    assert_eq!(names(&orphans), vec!["gone", "olduser"], "{orphans}");
    assert_eq!(orphans["targets"][0]["skipped"]["not an orphan: linked to a SCIM user"], 1, "{orphans}");
    let (status, _) = admin(&s, Method::POST, "/admin/cleanup?mode=dry-run&orphans=maybe", None).await;
    assert_eq!(status, 400);

    // Bulk: every orphan of the target, and the orphans among a CSV list.
    let (status, listed) = admin(
        &s,
        Method::POST,
        "/admin/deactivate",
        Some(json!({"target": "jira", "usernames": ["dave", "olduser"], "orphans": true})),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(names(&listed), vec!["olduser"], "{listed}");
    let (status, applied) =
        admin(&s, Method::POST, "/admin/deactivate", Some(json!({"target": "jira", "orphans": true, "mode": "apply"})))
            .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(names(&applied), vec!["gone", "olduser"], "{applied}");
    eventually("the orphans are deactivated", WAIT, || {
        jira.user("olduser").is_some_and(|u| !u.active) && jira.user("gone").is_some_and(|u| !u.active)
    })
    .await;
    assert!(jira.user("dave").is_some_and(|u| u.active), "the linked account is untouched");
}

#[tokio::test]
async fn without_creating_users_the_existing_dave_is_still_found_and_deactivated_when_entra_disables_him() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("erin@contoso.com", "erin.old@contoso.com");
    let s = bridge(&[("jira", &jira)], "create_users = false").await;
    let dave = entra_user(&s, "dave@contoso.com", "d-1").await;
    // Provisioned under its own name before links were recorded: the name wins, as it always did.
    let erin = entra_user(&s, "erin@contoso.com", "e-1").await;
    for id in [&dave, &erin] {
        assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    }
    eventually("both real accounts deactivated", WAIT, || {
        jira.user("dave").is_some_and(|u| !u.active) && jira.user("erin@contoso.com").is_some_and(|u| !u.active)
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(link_of(&s, &dave, "jira").as_deref(), Some("dave"));
    assert_eq!(link_of(&s, &erin, "jira").as_deref(), Some("erin@contoso.com"));
    assert_eq!(jira.count("POST", "/rest/api/2/user"), 0);
    assert_eq!(s.store().dead_letter_count(), 0);
}

#[test]
fn check_config_says_where_email_matching_and_renames_are_not_possible_and_rejects_unknown_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("links.toml");
    let targets = "[[target]]\nname = \"wiki\"\nproduct = \"confluence\"\nurl = \"https://wiki.example.com\"\ntoken_env = \"WIKI_TOKEN\"\n\
                   [[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"https://jira.example.com\"\ntoken_env = \"WIKI_TOKEN\"\n";
    std::fs::write(&cfg, format!("{targets}[policy]\nrename = \"follow\"\n")).expect("write");
    let path = cfg.to_str().expect("utf8");
    let (code, out, err) = cli(&["check-config", "--config", path], &[("WIKI_TOKEN", "x")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policy.link_existing = \"username_then_email\"; policy.rename = \"follow\""), "{out}");
    assert!(out.contains("Target 'wiki': Confluence Data Center has no REST search by email"), "{out}");
    assert!(out.contains("Target 'wiki': confluence has no REST API to rename a user"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("Target 'jira':")).count(), 1, "Jira can do both: {out}");
    std::fs::write(&cfg, format!("{targets}[policy]\nlink_existing = \"guess\"\n")).expect("write");
    let (code, _, err) = cli(&["check-config", "--config", path], &[("WIKI_TOKEN", "x")]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("guess") && err.contains("username_then_email"), "{err}");
}

#[tokio::test]
async fn a_linked_account_keeps_the_protection_of_its_scim_user_in_cleanup() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.set_last_active("dave", Some(chrono::Utc::now() - chrono::Duration::days(400)));
    let s = bridge(&[("jira", &jira)], "protected_groups = [\"vips\"]\nsync_groups = false").await;
    let id = entra_user(&s, "dave@contoso.com", "d-1").await;
    s.create_group("vips", &[&id]).await;
    eventually("dave linked", WAIT, || link_of(&s, &id, "jira").as_deref() == Some("dave")).await;
    let (status, report) = admin(&s, Method::POST, "/admin/cleanup?mode=dry-run", None).await;
    assert_eq!(status, 200, "{report}");
    assert!(report["findings"].as_array().is_some_and(|f| f.is_empty()), "{report}");
    assert_eq!(report["targets"][0]["skipped"]["protected"], 1, "dave is protected through his SCIM group: {report}");
}

#[tokio::test]
async fn an_operator_link_set_while_the_delivery_looks_the_user_up_is_kept() {
    let jira = Emulator::start(Product::Jira).await;
    let s = bridge(&[("jira", &jira)], "").await;
    // Every answer takes a while, so the operator acts while the look-up is in flight: the plan
    // has already read "no link" when the operator's link is recorded.
    jira.set_delay(Duration::from_millis(1500));
    let id = entra_user(&s, "zoe@contoso.com", "z-1").await;
    eventually("the look-up reached Jira", WAIT, || jira.count("GET", "/rest/api/2/user") > 0).await;
    let chosen = json!({"user": id, "username": "zoe.new", "target": "jira", "new": true});
    let (status, body) = admin(&s, Method::POST, "/admin/links", Some(chosen)).await;
    assert_eq!(status, 200, "{body}");
    jira.set_delay(Duration::ZERO);
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    assert_eq!(link_of(&s, &id, "jira").as_deref(), Some("zoe.new"), "the operator's link stands");
}
