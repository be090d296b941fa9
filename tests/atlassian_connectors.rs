//! The Atlassian connectors against the in-process DC emulator: every action on every product,
//! checked through the emulator's state, idempotency, failure classification and secrecy.

use std::time::Duration;

use crate::support::atlassian_emulator::{fast_polling, Emulator, Fault, TOKEN};
use scimbridge::atlassian::{
    Action, ActionKind, Auth, Connector, Effect, Execution, Failure, PollPolicy, Product, Secret, Support,
};

fn effect(e: &Execution) -> Effect {
    match &e.result {
        Ok(effect) => *effect,
        Err(f) => panic!("expected success, got {f}; calls: {:#?}", e.calls),
    }
}

fn failure(e: &Execution) -> Failure {
    match &e.result {
        Ok(effect) => panic!("expected failure, got {effect:?}; calls: {:#?}", e.calls),
        Err(f) => f.clone(),
    }
}

fn is_retryable(f: &Failure) -> bool {
    matches!(f, Failure::Retryable { .. })
}

fn calls(e: &Execution) -> Vec<(String, String)> {
    e.calls.iter().map(|c| (c.method.clone(), c.path.clone())).collect()
}

/// The Jira user configured as `anonymize_new_owner` in these tests.
const NEW_OWNER: &str = "jira-admin";

async fn emulator(product: Product) -> (Emulator, Connector) {
    let emu = Emulator::start(product).await;
    let conn = with_owner(&emu, emu.connector());
    (emu, conn)
}

/// On Jira: seeds [`NEW_OWNER`] and configures it as the new owner of anonymized users' objects.
fn with_owner(emu: &Emulator, conn: Connector) -> Connector {
    if emu.product() != Product::Jira {
        return conn;
    }
    emu.add_user(NEW_OWNER);
    conn.with_anonymize_new_owner(Some(NEW_OWNER.into()))
}

fn assert_clean(emu: &Emulator) {
    assert!(emu.violations().is_empty(), "{:#?}", emu.violations());
}

fn deactivate(u: &str) -> Action {
    Action::Deactivate { username: u.into() }
}
fn reactivate(u: &str) -> Action {
    Action::Reactivate { username: u.into() }
}
fn delete(u: &str) -> Action {
    Action::Delete { username: u.into() }
}
fn anonymize(u: &str) -> Action {
    Action::Anonymize { username: u.into() }
}
fn create(u: &str) -> Action {
    Action::CreateUser { username: u.into(), display_name: "Dana Scully".into(), email: format!("{u}@example.com") }
}
fn add(u: &str, g: &str) -> Action {
    Action::AddToGroup { username: u.into(), group: g.into() }
}
fn remove(u: &str, g: &str) -> Action {
    Action::RemoveFromGroup { username: u.into(), group: g.into() }
}
fn remove_license(u: &str, groups: &[&str]) -> Action {
    Action::RemoveLicense { username: u.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
}

// ---------------------------------------------------------------- Jira

#[tokio::test]
async fn jira_create_user_creates_an_active_user_once() {
    let (emu, conn) = emulator(Product::Jira).await;
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::Applied);
    let u = emu.user("dana").unwrap();
    assert!(u.active && u.key.starts_with("JIRAUSER"));
    assert_eq!(u.email, "dana@example.com");
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::AlreadyDone);
    assert_eq!(emu.count("POST", "/rest/api/2/user"), 1);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_deactivate_makes_the_user_inactive_then_ends_their_sessions() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("alice");
    emu.set_sessions("alice", 3);
    let exec = conn.execute(&deactivate("alice")).await;
    assert_eq!(effect(&exec), Effect::Applied);
    let u = emu.user("alice").unwrap();
    assert!(!u.active);
    assert_eq!(u.sessions, 0);
    let c = calls(&exec);
    let put = c.iter().position(|(m, p)| m == "PUT" && p == "/rest/api/2/user?username=alice");
    let kill = c.iter().position(|(m, p)| m == "DELETE" && p == "/rest/api/2/user/session/alice");
    assert!(put.unwrap() < kill.unwrap(), "{c:?}");
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_deactivating_an_inactive_user_is_already_done_and_still_ends_sessions() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("alice");
    emu.set_active("alice", false);
    emu.set_sessions("alice", 1);
    let exec = conn.execute(&deactivate("alice")).await;
    assert_eq!(effect(&exec), Effect::AlreadyDone);
    assert_eq!(emu.count("PUT", "/rest/api/2/user"), 0);
    assert_eq!(emu.user("alice").unwrap().sessions, 0);
}

#[tokio::test]
async fn jira_deactivating_an_unknown_user_is_no_such_account() {
    // Its own outcome (issue 10): neither a success nor a dead letter.
    let (emu, conn) = emulator(Product::Jira).await;
    assert_eq!(effect(&conn.execute(&deactivate("ghost")).await), Effect::NoSuchAccount);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_reactivate_then_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("bob");
    emu.set_active("bob", false);
    assert_eq!(effect(&conn.execute(&reactivate("bob")).await), Effect::Applied);
    assert!(emu.user("bob").unwrap().active);
    assert_eq!(effect(&conn.execute(&reactivate("bob")).await), Effect::AlreadyDone);
    assert_eq!(emu.count("PUT", "/rest/api/2/user"), 1);
}

#[tokio::test]
async fn jira_delete_then_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("carol");
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::Applied);
    assert!(emu.user("carol").unwrap().deleted);
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::AlreadyDone);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_refusing_to_delete_a_user_with_issues_is_permanent_with_jiras_reason() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("carol");
    emu.block_delete("carol", "Cannot delete user 'carol' because 3 issues are currently assigned to this person.");
    let f = failure(&conn.execute(&delete("carol")).await);
    assert!(matches!(f, Failure::Permanent { .. }));
    assert!(f.reason().contains("3 issues"), "{f}");
    assert!(!emu.user("carol").unwrap().deleted);
}

#[tokio::test]
async fn jira_duplicate_membership_400_counts_as_already_done() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("dave");
    emu.add_group("devs");
    assert_eq!(effect(&conn.execute(&add("dave", "devs")).await), Effect::Applied);
    let again = conn.execute(&add("dave", "devs")).await;
    assert_eq!(effect(&again), Effect::AlreadyDone);
    assert_eq!(again.calls[0].status, Some(400));
    assert!(emu.user("dave").unwrap().groups.contains("devs"));
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_duplicate_membership_400_with_unfamiliar_wording_is_confirmed_by_reading() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("dave");
    emu.add_member("dave", "devs");
    emu.add_group("ops");
    // A 400 whose text we do not recognise: the connector reads the membership to decide.
    emu.fail_next(1, Fault::status(400));
    assert_eq!(effect(&conn.execute(&add("dave", "devs")).await), Effect::AlreadyDone);
    emu.fail_next(1, Fault::status(400));
    let f = failure(&conn.execute(&add("dave", "ops")).await);
    assert!(matches!(f, Failure::Permanent { .. }), "{f}");
}

#[tokio::test]
async fn jira_adding_to_a_missing_group_is_permanent() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("dave");
    let f = failure(&conn.execute(&add("dave", "nope")).await);
    assert!(matches!(f, Failure::Permanent { .. }), "{f}");
}

#[tokio::test]
async fn jira_remove_from_group_reads_first_and_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("erin");
    emu.add_member("erin", "devs");
    assert_eq!(effect(&conn.execute(&remove("erin", "devs")).await), Effect::Applied);
    assert!(emu.user("erin").unwrap().groups.is_empty());
    assert_eq!(effect(&conn.execute(&remove("erin", "devs")).await), Effect::AlreadyDone);
    assert_eq!(emu.count("DELETE", "/rest/api/2/group/user"), 1);
}

#[tokio::test]
async fn jira_remove_license_leaves_only_non_licensing_groups() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("fay");
    emu.add_member("fay", "jira-software-users");
    emu.add_member("fay", "jira-servicedesk-users");
    emu.add_member("fay", "devs");
    let action = remove_license("fay", &["jira-software-users", "jira-servicedesk-users"]);
    assert_eq!(effect(&conn.execute(&action).await), Effect::Applied);
    let groups: Vec<String> = emu.user("fay").unwrap().groups.into_iter().collect();
    assert_eq!(groups, vec!["devs".to_string()]);
    assert_eq!(effect(&conn.execute(&action).await), Effect::AlreadyDone);
}

#[tokio::test]
async fn jira_anonymization_validates_schedules_and_polls_by_user_key() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("gina");
    emu.set_task_polls(2);
    let key = emu.user("gina").unwrap().key;
    let exec = conn.execute(&anonymize("gina")).await;
    assert_eq!(effect(&exec), Effect::Applied);
    // What gina owned goes to the configured owner, never to the bridge's own account.
    assert_eq!(emu.anonymization_owners(), vec![emu.user(NEW_OWNER).unwrap().key]);
    let u = emu.user("gina").unwrap();
    assert!(u.anonymized && !u.active);
    assert!(u.email.ends_with("@jira.invalid"));
    assert_ne!(u.name, "gina");
    let c = calls(&exec);
    assert!(
        c.contains(&("GET".into(), format!("/rest/api/2/user/anonymization?userKey={key}&expand=affectedEntities")))
    );
    assert!(c.contains(&("POST".into(), "/rest/api/2/user/anonymization".into())));
    let polls = c.iter().filter(|(_, p)| p.contains("/progress?taskId=")).count();
    assert_eq!(polls, 3, "{c:?}");
    assert_eq!(effect(&conn.execute(&anonymize("gina")).await), Effect::AlreadyDone);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_anonymization_lock_held_elsewhere_is_retryable_with_a_delay() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("hal");
    emu.set_foreign_anonymization(true);
    let exec = conn.execute(&anonymize("hal")).await;
    let f = failure(&exec);
    assert!(matches!(&f, Failure::Retryable { retry_after: Some(d), .. } if *d >= Duration::from_secs(1)), "{f}");
    assert_eq!(exec.calls.last().unwrap().status, Some(409));
    assert!(!emu.user("hal").unwrap().anonymized);
    emu.set_foreign_anonymization(false);
    assert_eq!(effect(&conn.execute(&anonymize("hal")).await), Effect::Applied);
    assert!(emu.user("hal").unwrap().anonymized);
}

#[tokio::test]
async fn jira_anonymization_still_running_at_the_deadline_is_retryable_and_finishes_later() {
    let emu = Emulator::start(Product::Jira).await;
    emu.add_user("ivy");
    emu.set_task_polls(1000);
    let conn = emu.connector().with_poll_policy(PollPolicy { deadline: Duration::from_millis(60), ..fast_polling() });
    let conn = with_owner(&emu, conn);
    let f = failure(&conn.execute(&anonymize("ivy")).await);
    assert!(is_retryable(&f), "{f}");
    // The worker comes back while the task still runs: Jira's lock answers 409.
    let f = failure(&conn.execute(&anonymize("ivy")).await);
    assert!(f.reason().contains("409"), "{f}");
}

// ---------------------------------------------------------------- Confluence

#[tokio::test]
async fn confluence_create_user_then_duplicate_409_is_already_done() {
    let (emu, conn) = emulator(Product::Confluence).await;
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::Applied);
    assert!(emu.user("dana").unwrap().active);
    let again = conn.execute(&create("dana")).await;
    assert_eq!(effect(&again), Effect::AlreadyDone);
    assert_eq!(again.calls[0].status, Some(409));
    assert_clean(&emu);
}

#[tokio::test]
async fn confluence_refuses_upper_case_usernames_before_calling() {
    let (emu, conn) = emulator(Product::Confluence).await;
    let exec = conn.execute(&create("Dana")).await;
    assert!(matches!(failure(&exec), Failure::Permanent { .. }));
    assert!(exec.calls.is_empty());
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn confluence_without_seats_is_permanent() {
    let (emu, conn) = emulator(Product::Confluence).await;
    emu.add_user("a");
    emu.set_seat_limit(1);
    let f = failure(&conn.execute(&create("b")).await);
    assert!(matches!(&f, Failure::Permanent { reason } if reason.contains("402")), "{f}");
    assert!(emu.user("b").is_none());
}

#[tokio::test]
async fn confluence_disable_and_enable_are_idempotent() {
    let (emu, conn) = emulator(Product::Confluence).await;
    emu.add_user("alice");
    for _ in 0..2 {
        assert!(conn.execute(&deactivate("alice")).await.result.is_ok());
        assert!(!emu.user("alice").unwrap().active);
    }
    for _ in 0..2 {
        assert!(conn.execute(&reactivate("alice")).await.result.is_ok());
        assert!(emu.user("alice").unwrap().active);
    }
    assert_eq!(emu.count("PUT", "/rest/api/admin/user/alice/disable"), 2);
    assert_eq!(effect(&conn.execute(&deactivate("ghost")).await), Effect::NoSuchAccount);
    assert_clean(&emu);
}

#[tokio::test]
async fn confluence_delete_polls_the_long_task_until_the_user_is_gone() {
    let (emu, conn) = emulator(Product::Confluence).await;
    emu.add_user("carol");
    emu.set_task_polls(2);
    let exec = conn.execute(&delete("carol")).await;
    assert_eq!(effect(&exec), Effect::Applied);
    // First the release is read (the admin user REST needs 8.4), then the delete.
    assert_eq!(exec.calls[0].path, "/rest/api/server-information");
    assert_eq!(exec.calls[1].status, Some(202));
    let polls = exec.calls.iter().filter(|c| c.path.starts_with("/rest/api/longtask/")).count();
    assert_eq!(polls, 3);
    assert!(emu.user("carol").unwrap().deleted);
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::AlreadyDone);
    assert_clean(&emu);
}

#[tokio::test]
async fn confluence_delete_still_running_at_the_deadline_is_retryable() {
    let emu = Emulator::start(Product::Confluence).await;
    emu.add_user("carol");
    emu.set_task_polls(1000);
    let conn = emu.connector().with_poll_policy(PollPolicy { deadline: Duration::from_millis(50), ..fast_polling() });
    assert!(is_retryable(&failure(&conn.execute(&delete("carol")).await)));
    assert!(!emu.user("carol").unwrap().deleted);
}

#[tokio::test]
async fn confluence_membership_is_idempotent_both_ways() {
    let (emu, conn) = emulator(Product::Confluence).await;
    emu.add_user("dave");
    emu.add_group("confluence-users");
    emu.add_group("team");
    for _ in 0..2 {
        assert!(conn.execute(&add("dave", "confluence-users")).await.result.is_ok());
    }
    assert!(conn.execute(&add("dave", "team")).await.result.is_ok());
    assert_eq!(emu.user("dave").unwrap().groups.len(), 2);
    for _ in 0..2 {
        assert!(conn.execute(&remove("dave", "team")).await.result.is_ok());
    }
    assert!(conn.execute(&remove_license("dave", &["confluence-users"])).await.result.is_ok());
    assert!(emu.user("dave").unwrap().groups.is_empty());
    assert_clean(&emu);
}

#[tokio::test]
async fn confluence_anonymization_is_unsupported_and_makes_no_call() {
    let (emu, conn) = emulator(Product::Confluence).await;
    emu.add_user("eve");
    let exec = conn.execute(&anonymize("eve")).await;
    assert!(matches!(failure(&exec), Failure::Permanent { .. }));
    assert!(exec.calls.is_empty());
}

// ---------------------------------------------------------------- Crowd

#[tokio::test]
async fn crowd_create_user_then_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Crowd).await;
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::Applied);
    let u = emu.user("dana").unwrap();
    assert_eq!((u.display_name.as_str(), u.active), ("Dana Scully", true));
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::AlreadyDone);
    assert_eq!(emu.count("POST", "/rest/usermanagement/1/user"), 1);
    assert_clean(&emu);
}

#[tokio::test]
async fn crowd_deactivation_resends_the_full_user_so_nothing_is_blanked() {
    let (emu, conn) = emulator(Product::Crowd).await;
    emu.add_user("alice");
    let before = emu.user("alice").unwrap();
    assert_eq!(effect(&conn.execute(&deactivate("alice")).await), Effect::Applied);
    let after = emu.user("alice").unwrap();
    assert!(!after.active);
    assert_eq!((after.email, after.display_name), (before.email, before.display_name));
    assert_eq!(effect(&conn.execute(&deactivate("alice")).await), Effect::AlreadyDone);
    assert_eq!(effect(&conn.execute(&reactivate("alice")).await), Effect::Applied);
    assert!(emu.user("alice").unwrap().active);
    assert_eq!(emu.count("PUT", "/rest/usermanagement/1/user"), 2);
    assert_clean(&emu);
}

#[tokio::test]
async fn crowd_delete_then_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Crowd).await;
    emu.add_user("carol");
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::Applied);
    assert!(emu.user("carol").unwrap().deleted);
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::AlreadyDone);
}

#[tokio::test]
async fn crowd_409_and_missing_membership_are_already_done() {
    let (emu, conn) = emulator(Product::Crowd).await;
    emu.add_user("dave");
    emu.add_group("jira-users");
    emu.add_group("confluence-users");
    assert_eq!(effect(&conn.execute(&add("dave", "jira-users")).await), Effect::Applied);
    let again = conn.execute(&add("dave", "jira-users")).await;
    assert_eq!(effect(&again), Effect::AlreadyDone);
    assert_eq!(again.calls[0].status, Some(409));
    assert_eq!(effect(&conn.execute(&remove("dave", "jira-users")).await), Effect::Applied);
    assert_eq!(effect(&conn.execute(&remove("dave", "jira-users")).await), Effect::AlreadyDone);
    emu.add_member("dave", "confluence-users");
    let action = remove_license("dave", &["jira-users", "confluence-users"]);
    assert_eq!(effect(&conn.execute(&action).await), Effect::Applied);
    assert!(emu.user("dave").unwrap().groups.is_empty());
    let f = failure(&conn.execute(&add("dave", "no-such-group")).await);
    assert!(matches!(f, Failure::Permanent { .. }));
    assert_clean(&emu);
}

#[tokio::test]
async fn crowd_anonymization_is_unsupported() {
    let (_emu, conn) = emulator(Product::Crowd).await;
    assert!(matches!(failure(&conn.execute(&anonymize("x")).await), Failure::Permanent { .. }));
}

// ---------------------------------------------------------------- Bitbucket

#[tokio::test]
async fn bitbucket_create_user_joins_the_default_group_and_409_is_already_done() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    let exec = conn.execute(&create("dana")).await;
    assert_eq!(effect(&exec), Effect::Applied);
    assert!(exec.calls[0].path.contains("password=***"), "{:?}", exec.calls);
    assert!(emu.user("dana").unwrap().groups.contains("stash-users"));
    assert_eq!(effect(&conn.execute(&create("dana")).await), Effect::AlreadyDone);
    assert_clean(&emu);
}

#[tokio::test]
async fn bitbucket_remove_license_is_the_deactivation_and_repeats_cleanly() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    emu.add_user("alice");
    emu.add_member("alice", "stash-users");
    emu.add_member("alice", "developers");
    emu.add_member("alice", "wiki");
    let action = remove_license("alice", &["stash-users", "developers"]);
    assert_eq!(effect(&conn.execute(&action).await), Effect::Applied);
    let groups: Vec<String> = emu.user("alice").unwrap().groups.into_iter().collect();
    assert_eq!(groups, vec!["wiki".to_string()]);
    assert_eq!(effect(&conn.execute(&action).await), Effect::AlreadyDone);
    assert_eq!(emu.count("POST", "/rest/api/1.0/admin/users/remove-group"), 2);
    assert_clean(&emu);
}

#[tokio::test]
async fn bitbucket_deactivate_and_reactivate_point_to_their_substitutes_without_calling() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    emu.add_user("alice");
    for action in [deactivate("alice"), reactivate("alice")] {
        let exec = conn.execute(&action).await;
        assert!(matches!(failure(&exec), Failure::Permanent { .. }));
        assert!(exec.calls.is_empty());
    }
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn bitbucket_membership_reads_first_and_repeats_are_already_done() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    emu.add_user("dave");
    emu.add_group("stash-users");
    emu.add_group("stash-users-old");
    emu.add_member("dave", "stash-users-old");
    assert_eq!(effect(&conn.execute(&add("dave", "stash-users")).await), Effect::Applied);
    assert_eq!(effect(&conn.execute(&add("dave", "stash-users")).await), Effect::AlreadyDone);
    assert_eq!(emu.count("POST", "/rest/api/1.0/admin/users/add-groups"), 1);
    assert_eq!(effect(&conn.execute(&remove("dave", "stash-users")).await), Effect::Applied);
    assert_eq!(effect(&conn.execute(&remove("dave", "stash-users")).await), Effect::AlreadyDone);
    assert!(emu.user("dave").unwrap().groups.contains("stash-users-old"));
    let f = failure(&conn.execute(&add("ghost", "stash-users")).await);
    assert!(matches!(f, Failure::Permanent { .. }));
    assert_clean(&emu);
}

#[tokio::test]
async fn bitbucket_delete_then_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    emu.add_user("carol");
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::Applied);
    assert!(emu.user("carol").unwrap().deleted);
    assert_eq!(effect(&conn.execute(&delete("carol")).await), Effect::AlreadyDone);
}

#[tokio::test]
async fn bitbucket_anonymization_deletes_then_erases_and_repeat_is_already_done() {
    let (emu, conn) = emulator(Product::Bitbucket).await;
    emu.add_user("gina");
    assert_eq!(effect(&conn.execute(&anonymize("gina")).await), Effect::Applied);
    let u = emu.user("gina").unwrap();
    assert!(u.deleted && u.anonymized);
    assert_ne!(u.name, "gina");
    assert_eq!(effect(&conn.execute(&anonymize("gina")).await), Effect::AlreadyDone);
    assert_clean(&emu);
}

// ---------------------------------------------------------------- classification

#[tokio::test]
async fn rate_limited_answer_is_retryable_after_the_retry_after_delay() {
    for product in [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket] {
        let (emu, conn) = emulator(product).await;
        emu.add_user("alice");
        emu.fail_next(1, Fault::rate_limited("2"));
        let exec = conn.execute(&delete("alice")).await;
        let f = failure(&exec);
        assert!(
            matches!(&f, Failure::Retryable { retry_after: Some(d), .. } if *d >= Duration::from_secs(2)),
            "{product}: {f}"
        );
        assert_eq!(exec.calls[0].status, Some(429));
        assert!(!emu.user("alice").unwrap().deleted);
        // The next attempt goes through.
        assert!(conn.execute(&delete("alice")).await.result.is_ok(), "{product}");
    }
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let (emu, conn) = emulator(Product::Jira).await;
    let when = chrono::Utc::now() + chrono::Duration::seconds(30);
    emu.fail_next(1, Fault::rate_limited(&when.to_rfc2822().replace("+0000", "GMT")));
    let f = failure(&conn.execute(&deactivate("alice")).await);
    assert!(
        matches!(&f, Failure::Retryable { retry_after: Some(d), .. } if *d >= Duration::from_secs(25) && *d <= Duration::from_secs(31)),
        "{f}"
    );
}

#[tokio::test]
async fn unavailable_and_server_errors_are_retryable() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("alice");
    for fault in [Fault::status(503), Fault::status(500), Fault::status(502)] {
        emu.fail_next(1, fault.clone());
        assert!(is_retryable(&failure(&conn.execute(&deactivate("alice")).await)), "{fault:?}");
    }
    emu.down_for(Duration::from_secs(60));
    assert!(is_retryable(&failure(&conn.execute(&deactivate("alice")).await)));
    assert!(emu.user("alice").unwrap().active);
}

#[tokio::test]
async fn a_failure_mid_sequence_is_retried_to_completion_without_double_effects() {
    let (emu, conn) = emulator(Product::Jira).await;
    emu.add_user("alice");
    emu.set_sessions("alice", 2);
    conn.server_version().await.expect("the release is read once");
    // GET and PUT succeed, the session kill hits a 503.
    emu.push_faults([Fault::Delay(Duration::ZERO), Fault::Delay(Duration::ZERO), Fault::status(503)]);
    assert!(is_retryable(&failure(&conn.execute(&deactivate("alice")).await)));
    assert!(!emu.user("alice").unwrap().active);
    assert_eq!(emu.user("alice").unwrap().sessions, 2);
    assert_eq!(effect(&conn.execute(&deactivate("alice")).await), Effect::AlreadyDone);
    assert_eq!(emu.user("alice").unwrap().sessions, 0);
    assert_eq!(emu.count("PUT", "/rest/api/2/user"), 1);
}

#[tokio::test]
async fn slow_answer_beyond_the_client_timeout_is_retryable_with_no_status() {
    let emu = Emulator::start(Product::Confluence).await;
    emu.add_user("alice");
    emu.set_delay(Duration::from_secs(3));
    let mut spec = emu.spec();
    spec.timeout = Duration::from_millis(200);
    let conn = Connector::new(spec).unwrap();
    let exec = conn.execute(&deactivate("alice")).await;
    let f = failure(&exec);
    assert!(is_retryable(&f) && f.reason().contains("timeout"), "{f}");
    assert_eq!(exec.calls[0].status, None);
}

#[tokio::test]
async fn dropped_connection_is_retryable_with_no_status() {
    let (emu, conn) = emulator(Product::Crowd).await;
    emu.add_user("alice");
    emu.fail_next(1, Fault::Drop);
    let exec = conn.execute(&deactivate("alice")).await;
    assert!(is_retryable(&failure(&exec)));
    assert_eq!(exec.calls[0].status, None);
    assert_eq!(emu.received()[0].status, None);
    assert_eq!(effect(&conn.execute(&deactivate("alice")).await), Effect::Applied);
}

#[tokio::test]
async fn refused_connection_is_retryable() {
    let emu = Emulator::start(Product::Jira).await;
    let spec = emu.spec();
    drop(emu);
    let conn = Connector::new(spec).unwrap();
    let exec = conn.execute(&deactivate("alice")).await;
    assert!(is_retryable(&failure(&exec)));
}

#[tokio::test]
async fn wrong_credentials_are_permanent_for_every_product() {
    for product in [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket] {
        let emu = Emulator::start(product).await;
        emu.add_user("alice");
        let mut spec = emu.spec();
        spec.auth = match spec.auth {
            Auth::Bearer(_) => Auth::Bearer(Secret::new("wrong")),
            Auth::Basic { username, .. } => Auth::Basic { username, password: Secret::new("wrong") },
        };
        let conn = Connector::new(spec).unwrap();
        let exec = conn.execute(&delete("alice")).await;
        let f = failure(&exec);
        assert!(matches!(&f, Failure::Permanent { reason } if reason.contains("401")), "{product}: {f}");
        assert!(!emu.user("alice").unwrap().deleted);
        assert!(conn.health().await.is_err(), "{product}");
        assert!(emu.connector().health().await.is_ok(), "{product}");
        assert_clean(&emu);
    }
}

// ---------------------------------------------------------------- configuration and secrecy

#[tokio::test]
async fn secrets_never_appear_in_debug_output_or_recorded_paths() {
    let emu = Emulator::start(Product::Bitbucket).await;
    let spec = emu.spec();
    let conn = Connector::new(spec.clone()).unwrap();
    let exec = conn.execute(&create("dana")).await;
    for shown in [format!("{spec:?}"), format!("{conn:?}"), format!("{exec:?}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    assert!(exec.calls.iter().all(|c| !c.path.contains("Sb1!")));
    let crowd = Emulator::start(Product::Crowd).await;
    let shown = format!("{:?}", crowd.connector());
    assert!(!shown.contains(crate::support::atlassian_emulator::CROWD_PASSWORD), "{shown}");
}

#[test]
fn support_matrix_follows_the_field_guide() {
    use ActionKind as K;
    assert!(matches!(
        Connector::supports(Product::Bitbucket, K::Deactivate),
        Support::Substitute { kind: K::RemoveLicense, .. }
    ));
    assert!(matches!(
        Connector::supports(Product::Bitbucket, K::Reactivate),
        Support::Substitute { kind: K::AddToGroup, .. }
    ));
    assert!(matches!(Connector::supports(Product::Confluence, K::Anonymize), Support::Unsupported { .. }));
    assert!(matches!(Connector::supports(Product::Crowd, K::Anonymize), Support::Unsupported { .. }));
    for kind in ActionKind::ALL {
        assert_eq!(Connector::supports(Product::Jira, kind), Support::Supported, "{kind:?}");
    }
    assert_eq!(Connector::supports(Product::Bitbucket, K::Anonymize), Support::Supported);
}

#[test]
fn products_parse_from_lowercase_names() {
    assert_eq!("jira".parse::<Product>().unwrap(), Product::Jira);
    assert_eq!("Bitbucket".parse::<Product>().unwrap(), Product::Bitbucket);
    assert!("bamboo".parse::<Product>().is_err());
    assert_eq!(serde_json::to_string(&Product::Confluence).unwrap(), "\"confluence\"");
}

#[test]
fn crowd_rejects_bearer_tokens_at_construction() {
    let spec = scimbridge::atlassian::TargetSpec {
        name: "crowd".into(),
        product: Product::Crowd,
        url: "https://crowd.example.com/crowd".into(),
        auth: Auth::Bearer(Secret::new("t")),
        timeout: Duration::from_secs(5),
    };
    assert!(Connector::new(spec).is_err());
}
