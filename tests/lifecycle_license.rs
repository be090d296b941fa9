//! The licence optimizer against the Jira emulator: it frees the seats of inactive holders and of
//! holders outside the access group (most inactive first), re-grants on request and on an IdP
//! signal within seconds when a seat is free, queues when none is, and never lets the role's
//! users exceed its seats minus `keep_free_seats`.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);
const LICENSE: &str = "jira-software-users";
const ACCESS: &str = "jira-eligible";

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = s.client.request(method, format!("{}{path}", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("admin");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn actions(r: &Value) -> Vec<(String, String)> {
    r["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["username"].as_str().unwrap_or("").to_string(), f["action"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn holders(jira: &Emulator, names: &[&str]) -> usize {
    names.iter().filter(|n| jira.user(n).is_some_and(|u| u.active && u.groups.contains(LICENSE))).count()
}

#[tokio::test]
async fn the_optimizer_frees_inactive_seats_regrants_within_the_limit_and_queues_when_full() {
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &[LICENSE], Some(6));
    let people = [("a1", 60), ("a2", 40), ("a3", 1), ("a4", 2), ("x1", 1)];
    jira.seed_users(people.iter().map(|(n, d)| (n.to_string(), days_ago(*d), true)));
    for (n, _) in people {
        jira.add_member(n, LICENSE);
        if n != "x1" {
            jira.add_member(n, ACCESS);
        }
    }
    // Eligible, but holding no licence yet.
    jira.seed_users([("q1".to_string(), days_ago(1), true)]);
    jira.add_member("q1", ACCESS);
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n\
         [license]\nenabled = true\naccess_group = \"{ACCESS}\"\nlicense_group = \"{LICENSE}\"\ninactive_days = 30\nkeep_free_seats = 1\n\
         [delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        jira.base_url()
    );
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    // An IdP-provisioned holder who went quiet.
    let pat = s.create_user("pat").await;
    eventually("pat created", WAIT, || jira.user("pat").is_some()).await;
    jira.add_member("pat", LICENSE);
    jira.add_member("pat", ACCESS);
    jira.set_last_active("pat", days_ago(90));
    let all = ["a1", "a2", "a3", "a4", "x1", "pat"];
    assert_eq!(holders(&jira, &all), 6, "all six seats used");

    let (status, report) = admin(&s, reqwest::Method::GET, "/admin/license/report").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["details"]["seats"]["total"], 6, "{report:#}");
    assert_eq!(report["details"]["seats"]["used"], 6);
    assert_eq!(report["details"]["seats_would_be_freed"], 4);
    assert_eq!(report["details"]["inactive_holders"], 3);
    assert_eq!(
        actions(&report),
        [("pat", "remove_license"), ("a1", "remove_license"), ("a2", "remove_license"), ("x1", "remove_license")]
            .map(|(a, b)| (a.to_string(), b.to_string())),
        "most inactive first, then the holder outside the access group"
    );
    assert!(report["details"]["products"].as_array().is_some_and(|p| !p.is_empty()));
    assert_eq!(holders(&jira, &all), 6, "a report changes nothing");

    let (status, applied) = admin(&s, reqwest::Method::POST, "/admin/license/optimize?mode=apply").await;
    assert_eq!((status, applied["enqueued"].clone()), (200, json!(4)), "{applied}");
    eventually("four seats freed", WAIT, || holders(&jira, &all) == 2).await;

    // The way back for an IdP user: any SCIM change re-grants at once while a seat is free.
    let touch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "Pat Again"}]});
    assert_eq!(s.patch(&format!("/Users/{pat}"), &touch).await.status, 200);
    eventually("pat licensed again", Duration::from_secs(5), || holders(&jira, &["pat"]) == 1).await;

    // Grants on request: one seat beyond keep_free_seats is free (6 - 3 used - 1 kept = 2).
    for (user, expect) in [("a1", "restore_license"), ("a2", "restore_license"), ("q1", "queued")] {
        let (status, r) = admin(&s, reqwest::Method::POST, &format!("/admin/license/grant/{user}")).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(actions(&r), [(user.to_string(), expect.to_string())], "{r:#}");
        assert!(holders(&jira, &all) <= 5, "never beyond seats - keep_free_seats");
    }
    eventually("a1 and a2 licensed again", WAIT, || holders(&jira, &["a1", "a2"]) == 2).await;
    assert_eq!(holders(&jira, &all), 5);
    assert_eq!(holders(&jira, &["q1"]), 0, "q1 waits in the queue");
    // x1 is outside the access group: a grant would be taken back by the next run, so it is refused.
    let (status, r) = admin(&s, reqwest::Method::POST, "/admin/license/grant/x1").await;
    assert_eq!(status, 400, "{r}");
    assert!(r["detail"].as_str().is_some_and(|d| d.contains(ACCESS)), "{r}");
    assert_eq!(holders(&jira, &["x1"]), 0);

    let (_, report) = admin(&s, reqwest::Method::GET, "/admin/license/report").await;
    assert_eq!(report["details"]["queue"][0]["username"], "q1", "{report:#}");
    let history: Vec<String> = report["details"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| format!("{} {}", h["event"].as_str().unwrap_or(""), h["username"].as_str().unwrap_or("")))
        .collect();
    for e in ["reclaimed a1", "granted pat", "granted a1", "queued q1"] {
        assert!(history.iter().any(|h| h == e), "{e} in {history:?}");
    }
    assert!(jira.violations().is_empty(), "{:?}", jira.violations());
}
