//! The read side of the connectors (issue 4) against the DC emulator: paged account listings
//! with last activity for every product, never-logged-in and inactive users, rate limiting in
//! the middle of a listing, group members, seats, admin groups, and a 100,000-user listing.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::support::atlassian_emulator::{Emulator, Fault};
use chrono::{DateTime, TimeZone, Utc};
use scimbridge::atlassian::{AccountActivity, Connector, Failure, Product, ReadPolicy, ReadStats};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, day, 10, 0, 0).unwrap()
}

fn policy(page_size: u32) -> ReadPolicy {
    ReadPolicy {
        page_size,
        max_waits: 3,
        max_wait: Duration::from_secs(2),
        default_wait: Duration::from_millis(10),
        require_activity: true,
    }
}

async fn emulator(product: Product, page_size: u32) -> (Emulator, Connector) {
    let emu = Emulator::start(product).await;
    let conn = emu.connector().with_read_policy(policy(page_size));
    (emu, conn)
}

fn assert_clean(emu: &Emulator) {
    assert!(emu.violations().is_empty(), "{:#?}", emu.violations());
}

/// Seeds `n` users `u000…`: every third never logged in, every fifth inactive, the rest active
/// on day (i % 28) + 1.
fn seed(emu: &Emulator, n: usize) {
    emu.seed_users((0..n).map(|i| {
        let last = if i % 3 == 0 { None } else { Some(at((i % 28) as u32 + 1)) };
        (format!("u{i:05}"), last, i % 5 != 0)
    }));
}

async fn list_all(conn: &Connector) -> (Vec<Vec<AccountActivity>>, ReadStats) {
    let mut pages = Vec::new();
    let stats = conn
        .for_each_account(|page| {
            pages.push(page);
            ControlFlow::Continue(())
        })
        .await
        .unwrap_or_else(|f| panic!("listing failed: {f}"));
    (pages, stats)
}

fn find<'a>(pages: &'a [Vec<AccountActivity>], name: &str) -> &'a AccountActivity {
    pages.iter().flatten().find(|a| a.username == name).unwrap_or_else(|| panic!("{name} not listed"))
}

fn names(pages: &[Vec<AccountActivity>]) -> Vec<String> {
    let mut n: Vec<String> = pages.iter().flatten().map(|a| a.username.clone()).collect();
    n.sort();
    n
}

// ---------------------------------------------------------------- listings per product

#[tokio::test]
async fn jira_lists_every_user_over_several_cursor_pages_with_last_login() {
    let (emu, conn) = emulator(Product::Jira, 4).await;
    seed(&emu, 10);
    let (pages, stats) = list_all(&conn).await;
    // 10 seeded + the service account behind the token.
    assert_eq!(stats.accounts, 11);
    assert!(
        pages.len() >= 3 && pages.iter().all(|p| p.len() <= 4),
        "{:?}",
        pages.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let mut expected: Vec<String> = (0..10).map(|i| format!("u{i:05}")).collect();
    expected.push("svc-scimbridge".into());
    expected.sort();
    assert_eq!(names(&pages), expected);
    let u1 = find(&pages, "u00001");
    assert_eq!(u1.last_active, Some(at(2)));
    assert!(u1.activity_reported && u1.active);
    assert_eq!(u1.email.as_deref(), Some("u00001@example.com"));
    assert!(emu.count("GET", "/rest/api/2/user/list?cursor=") >= 2);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_never_logged_in_and_inactive_users_are_flagged() {
    let (emu, conn) = emulator(Product::Jira, 3).await;
    seed(&emu, 9);
    let (pages, stats) = list_all(&conn).await;
    let never = find(&pages, "u00003");
    assert!(never.activity_reported && never.last_active.is_none());
    let inactive = find(&pages, "u00005");
    assert!(!inactive.active);
    assert_eq!(stats.inactive, 2); // u00000, u00005
                                   // u00000, u00003, u00006 and the service account never logged in.
    assert_eq!(stats.never_active, 4);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_confirms_missing_last_login_with_get_user_only_until_the_listing_shows_the_field() {
    let (emu, conn) = emulator(Product::Jira, 2).await;
    emu.seed_users([("a-new".to_string(), None, true), ("b-old".to_string(), Some(at(1)), true)]);
    emu.seed_users([("c-new".to_string(), None, true)]);
    let (pages, _) = list_all(&conn).await;
    assert!(find(&pages, "c-new").activity_reported);
    // a-new came before any listed bean carried lastLoginTime: confirmed; c-new came after.
    assert_eq!(emu.count("GET", "/rest/api/2/user?username=a-new"), 1);
    assert_eq!(emu.count("GET", "/rest/api/2/user?username=c-new"), 0);
    assert_clean(&emu);
}

#[tokio::test]
async fn jira_before_10_3_is_listed_with_user_search() {
    let (emu, conn) = emulator(Product::Jira, 3).await;
    emu.set_jira_user_list(false);
    seed(&emu, 7);
    let (pages, stats) = list_all(&conn).await;
    assert_eq!(stats.accounts, 8);
    assert_eq!(find(&pages, "u00002").last_active, Some(at(3)));
    assert!(!find(&pages, "u00005").active, "inactive users are included");
    assert!(emu.count("GET", "/rest/api/2/user/search?username=.&includeActive=true&includeInactive=true") >= 3);
}

#[tokio::test]
async fn confluence_lists_licensed_users_with_last_login_then_disabled_users() {
    let (emu, conn) = emulator(Product::Confluence, 3).await;
    seed(&emu, 10);
    let (pages, stats) = list_all(&conn).await;
    assert_eq!(stats.accounts, 10);
    assert_eq!(names(&pages).len(), 10, "each user once");
    let active = find(&pages, "u00001");
    assert_eq!(active.last_active, Some(at(2)));
    assert!(active.activity_reported);
    let never = find(&pages, "u00003");
    assert!(never.activity_reported && never.last_active.is_none());
    let disabled = find(&pages, "u00005");
    assert!(!disabled.active && !disabled.activity_reported, "{disabled:?}");
    assert!(emu.count("GET", "/rest/api/admin/users/list/active?start=") >= 3);
    assert!(emu.count("GET", "/rest/api/user/list?start=") >= 3);
    assert_clean(&emu);
}

#[tokio::test]
async fn crowd_lists_users_with_authentication_attributes_and_creation_dates() {
    let (emu, conn) = emulator(Product::Crowd, 4).await;
    seed(&emu, 9);
    emu.set_created("u00003", Some(at(1)));
    let (pages, stats) = list_all(&conn).await;
    assert_eq!(stats.accounts, 9);
    assert_eq!(find(&pages, "u00004").last_active, Some(at(5)));
    let never = find(&pages, "u00003");
    assert!(never.activity_reported && never.last_active.is_none());
    assert_eq!(never.created, Some(at(1)), "creation date is the fallback for never-logged-in users");
    assert!(!find(&pages, "u00005").active);
    assert!(emu.count("GET", "/rest/usermanagement/1/search?entity-type=user&start-index=") >= 3);
    assert_eq!(emu.count("GET", "/rest/usermanagement/1/user/attribute"), 0, "attributes came expanded");
    assert_clean(&emu);
}

#[tokio::test]
async fn bitbucket_lists_users_with_authentication_timestamps_and_directories() {
    let (emu, conn) = emulator(Product::Bitbucket, 4).await;
    seed(&emu, 9);
    emu.set_directory("u00001", "Corporate LDAP");
    let (pages, stats) = list_all(&conn).await;
    assert_eq!((stats.accounts, pages.len()), (9, 3));
    let u1 = find(&pages, "u00001");
    assert_eq!(u1.last_active, Some(at(2)));
    assert_eq!(u1.directory.as_deref(), Some("Corporate LDAP"));
    assert!(find(&pages, "u00003").last_active.is_none());
    assert!(!find(&pages, "u00000").active);
    assert_clean(&emu);
}

// ---------------------------------------------------------------- waits, failures, guard

#[tokio::test]
async fn a_429_in_the_middle_of_paging_is_waited_out_and_the_page_asked_again() {
    let (emu, conn) = emulator(Product::Bitbucket, 3).await;
    seed(&emu, 9);
    // Page 1 answers, then 429 with Retry-After: 1, then the rest.
    emu.push_faults([Fault::Delay(Duration::ZERO), Fault::rate_limited("1")]);
    let started = Instant::now();
    let (pages, stats) = list_all(&conn).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    assert_eq!(stats.accounts, 9);
    assert_eq!(stats.waits, 1);
    assert_eq!(names(&pages).len(), 9, "no page lost or repeated");
    let statuses: Vec<Option<u16>> = emu.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(200), Some(429), Some(200), Some(200)]);
}

#[tokio::test]
async fn waits_are_bounded_and_the_last_failure_is_returned_retryable() {
    let (emu, conn) = emulator(Product::Jira, 10).await;
    seed(&emu, 3);
    // The release (which picks /user/list or /user/search) is read once, before the outage.
    conn.server_version().await.expect("release read");
    emu.fail_next(10, Fault::Status { status: 503, retry_after: Some("0".into()) });
    let f = conn.for_each_account(|_| ControlFlow::Continue(())).await.unwrap_err();
    assert!(matches!(f, Failure::Retryable { retry_after: Some(d), .. } if d == Duration::ZERO), "{f}");
    // One try plus max_waits (3) retries.
    assert_eq!(emu.count("GET", "/rest/api/2/user/list"), 4);
}

#[tokio::test]
async fn permission_errors_are_permanent_and_not_retried() {
    let (emu, conn) = emulator(Product::Confluence, 10).await;
    emu.fail_next(1, Fault::status(403));
    let f = conn.group_members("confluence-users").await.unwrap_err();
    assert!(matches!(f, Failure::Permanent { .. }), "{f}");
    assert_eq!(emu.received().len(), 1);
}

#[tokio::test]
async fn a_listing_where_nobody_has_activity_is_refused_unless_allowed() {
    let (emu, conn) = emulator(Product::Bitbucket, 10).await;
    emu.seed_users((0..3).map(|i| (format!("n{i}"), None, true)));
    let f = conn.for_each_account(|_| ControlFlow::Continue(())).await.unwrap_err();
    assert!(f.reason().contains("last activity time for none"), "{f}");
    let lenient = conn.clone().with_read_policy(ReadPolicy { require_activity: false, ..policy(10) });
    let stats = lenient.for_each_account(|_| ControlFlow::Continue(())).await.unwrap();
    assert_eq!(stats.never_active, 3);
}

#[tokio::test]
async fn the_callback_can_stop_a_listing_early() {
    let (emu, conn) = emulator(Product::Crowd, 2).await;
    seed(&emu, 10);
    let stats = conn.for_each_account(|_| ControlFlow::Break(())).await.unwrap();
    assert!(stats.stopped_early);
    assert_eq!(stats.accounts, 2);
    assert_eq!(emu.received().len(), 1);
}

// ---------------------------------------------------------------- group members

async fn members_over_pages(product: Product, group: &str, prefix: &str) {
    let (emu, conn) = emulator(product, 2).await;
    seed(&emu, 7);
    for i in [1, 2, 4, 5, 6] {
        emu.add_member(&format!("u{i:05}"), group);
    }
    let mut got = conn.group_members(group).await.unwrap_or_else(|f| panic!("{product}: {f}"));
    got.sort();
    assert_eq!(got, vec!["u00001", "u00002", "u00004", "u00005", "u00006"], "{product}");
    assert!(emu.count("GET", prefix) >= 3, "{product}: {:#?}", emu.received());
    assert_clean(&emu);
}

#[tokio::test]
async fn group_members_are_read_over_several_pages_on_every_product() {
    members_over_pages(Product::Jira, "jira-software-users", "/rest/api/2/group/member").await;
    members_over_pages(Product::Confluence, "confluence-users", "/rest/api/group/confluence-users/member").await;
    members_over_pages(Product::Crowd, "jira-users", "/rest/usermanagement/1/group/user/direct").await;
    members_over_pages(Product::Bitbucket, "stash-users", "/rest/api/1.0/admin/groups/more-members").await;
}

#[tokio::test]
async fn members_of_an_unknown_group_are_a_permanent_failure() {
    for product in Product::ALL {
        let (emu, conn) = emulator(product, 10).await;
        let f = conn.group_members("no-such-group").await.unwrap_err();
        assert!(matches!(f, Failure::Permanent { .. }), "{product}: {f}");
        assert_clean(&emu);
    }
}

// ---------------------------------------------------------------- one account

#[tokio::test]
async fn one_account_is_read_or_reported_missing_on_every_product() {
    for product in Product::ALL {
        let (emu, conn) = emulator(product, 2).await;
        seed(&emu, 6);
        emu.add_member("u00004", "devs");
        let a = conn.account("u00004").await.unwrap().unwrap_or_else(|| panic!("{product}: u00004 missing"));
        assert_eq!(a.username, "u00004", "{product}");
        assert!(a.active, "{product}");
        match product {
            Product::Jira => {
                assert_eq!(a.last_active, Some(at(5)));
                assert_eq!(a.groups, Some(vec!["devs".to_string()]));
            }
            Product::Crowd | Product::Bitbucket => assert_eq!(a.last_active, Some(at(5)), "{product}"),
            Product::Confluence => assert!(!a.activity_reported),
        }
        assert_eq!(conn.account("ghost").await.unwrap(), None, "{product}");
        assert_clean(&emu);
    }
}

// ---------------------------------------------------------------- seats and admin groups

#[tokio::test]
async fn jira_seats_come_from_application_roles() {
    let (emu, conn) = emulator(Product::Jira, 10).await;
    emu.set_role("jira-software", &["jira-software-users"], Some(10));
    emu.set_role("jira-core", &["jira-core-users"], None);
    seed(&emu, 5);
    for u in ["u00001", "u00002", "u00000"] {
        emu.add_member(u, "jira-software-users");
    }
    let seats = conn.seats(None).await.unwrap();
    let sw = seats.iter().find(|s| s.detail == "jira-software").unwrap();
    // u00000 is inactive and holds no seat.
    assert_eq!((sw.total, sw.used, sw.free()), (Some(10), 2, Some(8)));
    assert_eq!(seats.iter().find(|s| s.detail == "jira-core").unwrap().total, None);
    let one = conn.seats(Some("jira-software")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(matches!(conn.seats(Some("nope")).await, Err(Failure::Permanent { .. })));
    assert_clean(&emu);
}

#[tokio::test]
async fn confluence_and_bitbucket_seats_come_from_their_licence() {
    for (product, detail) in [(Product::Confluence, "confluence"), (Product::Bitbucket, "bitbucket")] {
        let (emu, conn) = emulator(product, 10).await;
        seed(&emu, 5);
        if product == Product::Bitbucket {
            // A Bitbucket licence is LICENSED_USER, here through the default group.
            for i in 0..5 {
                emu.add_member(&format!("u{i:05}"), "stash-users");
            }
        }
        assert_eq!(conn.seats(None).await.unwrap()[0].total, None, "{product}: unlimited");
        emu.set_seat_limit(20);
        let seats = conn.seats(None).await.unwrap();
        assert_eq!(seats.len(), 1);
        assert_eq!((seats[0].total, seats[0].used, seats[0].detail.as_str()), (Some(20), 4, detail), "{product}");
        assert_clean(&emu);
    }
}

#[tokio::test]
async fn crowd_seats_are_reported_unavailable_without_a_call() {
    let (emu, conn) = emulator(Product::Crowd, 10).await;
    let f = conn.seats(None).await.unwrap_err();
    assert!(matches!(f, Failure::Permanent { .. }) && f.reason().contains("Crowd"), "{f}");
    assert!(emu.received().is_empty());
}

#[test]
fn admin_groups_are_listed_for_every_product() {
    assert_eq!(Connector::admin_groups(Product::Jira), &["jira-administrators", "jira-system-administrators"]);
    assert_eq!(Connector::admin_groups(Product::Confluence), &["confluence-administrators"]);
    assert_eq!(Connector::admin_groups(Product::Crowd), &["crowd-administrators"]);
    assert!(!Connector::admin_groups(Product::Bitbucket).is_empty());
}

// ---------------------------------------------------------------- scale

#[tokio::test]
async fn a_hundred_thousand_users_are_streamed_in_bounded_pages_quickly() {
    let (emu, conn) = emulator(Product::Jira, 1000).await;
    seed(&emu, 100_000);
    let started = Instant::now();
    let mut largest = 0;
    let stats = conn
        .for_each_account(|page| {
            largest = largest.max(page.len());
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("listed {} Jira accounts in {took:?} with {} requests", stats.accounts, stats.requests);
    assert_eq!(stats.accounts, 100_001);
    assert!(largest <= 1000);
    assert!(took < Duration::from_secs(60), "{took:?}");
}
