//! Okta's provisioning traffic against the real server: the 12-step SPEC test (OKTA-SPEC) ported
//! step by step, import paging, the OIN PATCH forms and the AIW PUT forms for users and groups
//! (`shared/reference/idp-scim.md` §2.1, §2.3). Request bodies are in `tests/replays/okta/`.

use std::collections::HashSet;

use crate::support::server::{assert_scim_error, encode, Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const OKTA_HEADERS: &[(&str, &str)] = &[("Accept", "application/scim+json"), ("User-Agent", "OKTA SCIM Integration")];

fn assert_status(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Step 1 and 2's field checks on one user.
fn assert_spec_user_fields(u: &Value) {
    for ptr in ["/id", "/name/familyName", "/name/givenName", "/userName", "/active", "/emails/0/value"] {
        assert!(u.pointer(ptr).is_some_and(non_empty), "{ptr} is empty in {u}");
    }
}

fn assert_spec_error(r: &Reply, status: u16) {
    assert_scim_error(r, status, None);
    assert!(r.body["schemas"].as_array().is_some_and(|s| s.contains(&json!(ERROR))));
}

async fn get_okta(s: &TestServer, path: &str) -> Reply {
    s.send(Method::GET, path, None, OKTA_HEADERS).await
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|a| a.iter().map(|m| m["value"].as_str().expect("member value").to_string()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn okta_spec_test_passes_all_twelve_steps() {
    let s = TestServer::start().await;
    // "Create at least one user in your SCIM server before running" (OKTA-PREP).
    let isv_user_id = s.create_user("seeded.user@atko.com").await;
    let random_email = "Runscope123Xxxxxxxx456@atko.com";

    // 1. GET /Users?count=1&startIndex=1
    let r = get_okta(&s, "/Users?count=1&startIndex=1").await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body["schemas"].as_array().is_some_and(|a| a.contains(&json!(LIST_RESPONSE))), "{}", r.text);
    for n in ["itemsPerPage", "startIndex", "totalResults"] {
        assert!(r.body[n].is_number(), "{n} must be a number: {}", r.text);
    }
    let first = &r.body["Resources"][0];
    assert_spec_user_fields(first);

    // 2. GET /Users/{ISVUserid}
    let r = get_okta(&s, &format!("/Users/{isv_user_id}")).await;
    assert_status(&r, StatusCode::OK);
    assert_spec_user_fields(&r.body);
    assert_eq!(r.body["id"], isv_user_id.as_str());

    // 3. A filter that matches nothing: 200, totalResults 0.
    let r = get_okta(&s, &format!("/Users?filter={}", encode(r#"userName eq "abcdefgh@atko.com""#))).await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body["schemas"].as_array().is_some_and(|a| a.contains(&json!(LIST_RESPONSE))));
    assert_eq!(r.body["totalResults"], json!(0));

    // 4. GET an id that does not exist: 404 with a SCIM error.
    assert_spec_error(&get_okta(&s, "/Users/010101001010101011001010101011").await, 404);

    // 5. The random user is not there yet.
    let filter = format!("/Users?filter={}", encode(&format!(r#"userName eq "{random_email}""#)));
    let r = get_okta(&s, &filter).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(0));

    // 6. POST with Content-Type application/json.
    let json_ct = [("Content-Type", "application/json"), ("Accept", "application/scim+json")];
    let r = s.play_with("okta/spec_create_user.json", &[("userName", random_email)], &json_ct).await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.body["active"], true);
    let id_user_one = r.body["id"].as_str().filter(|i| !i.is_empty()).expect("id").to_string();
    assert_eq!(r.body["name"]["familyName"], "Tester");
    assert_eq!(r.body["name"]["givenName"], "Runscope");
    assert_eq!(r.body["userName"], random_email);
    assert!(r.body["schemas"].as_array().is_some_and(|a| a.contains(&json!(CORE_USER))));
    let created = r.body;

    // 7. GET it back: the same fields.
    let r = get_okta(&s, &format!("/Users/{id_user_one}")).await;
    assert_status(&r, StatusCode::OK);
    for k in ["id", "userName", "name", "emails", "active", "displayName"] {
        assert_eq!(r.body[k], created[k], "{k}");
    }

    // 8. The same POST again: 409.
    let r = s.play_with("okta/spec_create_user.json", &[("userName", random_email)], &json_ct).await;
    assert_scim_error(&r, 409, Some("uniqueness"));

    // 9. The upper-cased userName still finds the user (RFC 7643 §4.1.1, caseExact false).
    let upper = format!("/Users?filter={}", encode(&format!(r#"userName eq "{}""#, random_email.to_uppercase())));
    let r = get_okta(&s, &upper).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(1), "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], id_user_one.as_str());

    // 10. GET /Groups: Resources is an array when there are groups.
    s.create_group("Okta Group", &[]).await;
    let r = get_okta(&s, "/Groups").await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body["totalResults"].as_u64().is_some_and(|n| n >= 1));
    assert!(r.body["Resources"].is_array());

    // 11. A header that is no token: 401 with detail and status "401".
    let r = s.send_raw(Method::GET, &upper, None, OKTA_HEADERS, Some("non-token")).await;
    assert_spec_error(&r, 401);
    assert_eq!(r.body["status"], "401");

    // 12. Another id that does not exist: 404 with detail and status "404".
    let r = get_okta(&s, "/Users/00919288221112222").await;
    assert_spec_error(&r, 404);
    assert_eq!(r.body["status"], "404");
}

#[tokio::test]
async fn import_pages_by_100_with_integer_fields_and_a_stable_order_until_total_results() {
    let s = TestServer::start().await;
    let mut created = HashSet::new();
    for i in 0..250 {
        created.insert(s.create_user(&format!("import{i:03}@atko.com")).await);
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let r = get_okta(&s, &format!("/Users?startIndex={start}&count=100")).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(r.body["totalResults"], json!(250), "{}", r.text);
        assert_eq!(r.body["startIndex"], json!(start));
        let page = r.body["Resources"].as_array().cloned().unwrap_or_default();
        assert_eq!(r.body["itemsPerPage"], json!(page.len()));
        seen.extend(page.iter().map(|u| u["id"].as_str().expect("id").to_string()));
        start += 100;
        if start > 250 {
            break;
        }
        assert_eq!(page.len(), 100);
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created, "every user exactly once");
    // The same walk again gives the same order.
    let mut again = Vec::new();
    for start in [1, 101, 201] {
        let r = s.list(&format!("/Users?startIndex={start}&count=100")).await;
        again.extend(r.iter().map(|u| u["id"].as_str().expect("id").to_string()));
    }
    assert_eq!(again, seen);
    // Past the end: 200, no resources.
    let r = get_okta(&s, "/Users?startIndex=301&count=100").await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(250));
    assert_eq!(r.body.get("Resources").cloned().unwrap_or(json!([])), json!([]));
}

#[tokio::test]
async fn assign_user_accepts_groups_and_password_and_never_returns_the_password() {
    let s = TestServer::start().await;
    let q = s
        .get(&format!("/Users?filter={}&startIndex=1&count=100", encode(r#"userName eq "test.user@okta.local""#)))
        .await;
    assert_eq!(q.body["totalResults"], json!(0));
    let r = s.play("okta/create_user.json", &[("userName", "test.user@okta.local"), ("externalId", "00u1abcd")]).await;
    assert_status(&r, StatusCode::CREATED);
    assert!(r.body.get("password").is_none(), "{}", r.text);
    assert!(r.body.get("groups").is_none_or(|g| g == &json!([])), "{}", r.text);
    assert_eq!(r.body["locale"], "en-US");
    let id = r.body["id"].as_str().expect("id");
    assert!(s.get(&format!("/Users/{id}")).await.body.get("password").is_none());
    let dup =
        s.play("okta/create_user.json", &[("userName", "test.user@okta.local"), ("externalId", "00u1abcd")]).await;
    assert_scim_error(&dup, 409, Some("uniqueness"));
}

#[tokio::test]
async fn profile_update_puts_the_whole_user_back_with_id_meta_and_groups() {
    let s = TestServer::start().await;
    let id = s.create_user("put.me@atko.com").await;
    let gid = s.create_group("PUT group", &[&id]).await;
    let mut user = s.get(&format!("/Users/{id}")).await.body;
    assert_eq!(user["groups"][0]["value"], gid.as_str(), "{user}");
    let version_before = user["meta"]["version"].clone();
    user["name"]["givenName"] = json!("Changed");
    user["title"] = json!("Engineer");
    let r = s.put(&format!("/Users/{id}"), &user).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["name"]["givenName"], "Changed");
    assert_eq!(r.body["title"], "Engineer");
    assert_eq!(r.body["id"], id.as_str());
    assert_ne!(r.body["meta"]["version"], version_before, "a write changes the version");
    assert_eq!(r.body["meta"]["created"], user["meta"]["created"], "created is server-owned");
    // groups in the body is readOnly: membership is unchanged by the PUT.
    assert_eq!(r.body["groups"][0]["value"], gid.as_str(), "{}", r.text);
    // AIW deactivation is the same PUT with active:false.
    let mut off = r.body.clone();
    off["active"] = json!(false);
    let r = s.put(&format!("/Users/{id}"), &off).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["active"], false);
}

#[tokio::test]
async fn put_is_a_full_replace_that_drops_attributes_left_out() {
    let s = TestServer::start().await;
    let id = s.create_user("replace.me@atko.com").await;
    let body = json!({"schemas": [CORE_USER], "userName": "replace.me@atko.com", "nickName": "rm"});
    let r = s.put(&format!("/Users/{id}"), &body).await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body.get("emails").is_none(), "{}", r.text);
    assert!(r.body.get("name").is_none(), "{}", r.text);
    assert_eq!(r.body["nickName"], "rm");
}

#[tokio::test]
async fn deactivate_with_a_path_less_replace_answers_200_with_active_false() {
    let s = TestServer::start().await;
    let id = s.create_user("deactivate.me@atko.com").await;
    let r = s.play("okta/deactivate_user.json", &[("id", &id)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["userName"], "deactivate.me@atko.com", "nothing else changed: {}", r.text);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["active"], false);
}

#[tokio::test]
async fn group_push_rename_membership_put_and_delete() {
    let s = TestServer::start().await;
    let (a, b, c) =
        (s.create_user("a@atko.com").await, s.create_user("b@atko.com").await, s.create_user("c@atko.com").await);

    // Push with members:[]
    let r = s.play("okta/push_group.json", &[("displayName", "Test SCIMv2")]).await;
    assert_status(&r, StatusCode::CREATED);
    assert!(r.body.get("members").is_none_or(|m| m == &json!([])), "{}", r.text);
    let gid = r.body["id"].as_str().expect("id").to_string();

    // Rename with the read-only id inside the value.
    let r = s.play("okta/rename_group.json", &[("groupId", &gid), ("displayName", "Renamed SCIMv2")]).await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::NO_CONTENT, "{}", r.text);
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["displayName"], "Renamed SCIMv2");
    assert_eq!(g["id"], gid.as_str());

    // Full replace of members.
    let r = s.play("okta/membership_replace.json", &[("groupId", &gid), ("a", &a), ("b", &b)]).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.body), sorted(vec![a.clone(), b.clone()]));

    // One PATCH: remove a by filter, add c.
    let r = s.play("okta/membership_remove_and_add.json", &[("groupId", &gid), ("removeId", &a), ("addId", &c)]).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.body), sorted(vec![b.clone(), c.clone()]));

    // Full replace again, back to a and b: c is gone.
    let r = s.play("okta/membership_replace.json", &[("groupId", &gid), ("a", &a), ("b", &b)]).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.body), sorted(vec![a.clone(), b.clone()]));
    assert!(s.get(&format!("/Users/{c}")).await.body.get("groups").is_none());

    // AIW: PUT the whole group with the member list (b and c).
    let r = s
        .play("okta/put_group.json", &[("groupId", &gid), ("displayName", "Renamed SCIMv2"), ("a", &b), ("b", &c)])
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(member_ids(&r.body), sorted(vec![b.clone(), c.clone()]));
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.body), sorted(vec![b.clone(), c.clone()]));

    // Unlink: DELETE. The users stay, without the group.
    let r = s.play("okta/delete_group.json", &[("groupId", &gid)]).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_scim_error(&s.get(&format!("/Groups/{gid}")).await, 404, None);
    let user_b = s.get(&format!("/Users/{b}")).await;
    assert_status(&user_b, StatusCode::OK);
    assert!(user_b.body.get("groups").is_none(), "{}", user_b.text);
}

#[tokio::test]
async fn test_connector_configuration_queries_answer_200() {
    let s = TestServer::start().await;
    s.create_user("one@atko.com").await;
    let r = get_okta(&s, "/Users?startIndex=1&count=2").await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["itemsPerPage"], json!(1));
    let r = get_okta(&s, "/Groups?startIndex=1&count=100").await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(0));
}
