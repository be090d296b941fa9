//! Microsoft Entra ID's provisioning traffic, replayed from `tests/replays/entra/` against the real
//! server: Test Connection, the first cycle, groups and members, both PATCH dialects (default and
//! `aadOptscim062020`), the manager forms, soft and hard delete. The expected answers are those of
//! `shared/reference/idp-scim.md` §0, §1.2–1.4.

use crate::support::server::{assert_scim_error, Reply, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

fn assert_status(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

fn total(r: &Reply) -> u64 {
    r.body["totalResults"].as_u64().unwrap_or_else(|| panic!("totalResults is an integer: {}", r.text))
}

/// The first cycle for one user: query (nothing), then create. Returns the created resource.
async fn provision(s: &TestServer, user_name: &str, external_id: &str) -> Value {
    let q = s.play("entra/query_user_by_user_name.json", &[("userName", user_name)]).await;
    assert_status(&q, StatusCode::OK);
    assert_eq!(total(&q), 0, "{}", q.text);
    let c = s.play("entra/create_user.json", &[("userName", user_name), ("externalId", external_id)]).await;
    assert_status(&c, StatusCode::CREATED);
    c.body
}

fn emails_of_type<'a>(user: &'a Value, t: &str) -> Vec<&'a Value> {
    user["emails"].as_array().map(|a| a.iter().filter(|e| e["type"] == t).collect()).unwrap_or_default()
}

#[tokio::test]
async fn test_connection_with_a_random_guid_gets_200_and_an_empty_list_response() {
    let s = TestServer::start().await;
    s.create_user("someone@contoso.com").await;
    let r = s.play("entra/test_connection.json", &[]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.body["schemas"], json!([LIST_RESPONSE]));
    assert_eq!(r.body["totalResults"], json!(0));
    assert!(r.body["startIndex"].is_u64() && r.body["itemsPerPage"].is_u64(), "{}", r.text);
    let resources = r.body.get("Resources").cloned().unwrap_or(json!([]));
    assert_eq!(resources, json!([]), "{}", r.text);
}

#[tokio::test]
async fn first_cycle_queries_by_user_name_then_creates_with_both_schemas_ignoring_nulls_and_meta() {
    let s = TestServer::start().await;
    let user = provision(&s, "Test_User_ab6490ee@contoso.com", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef").await;
    let id = user["id"].as_str().expect("id");
    assert!(!id.is_empty());
    let schemas = user["schemas"].as_array().expect("schemas");
    assert!(schemas.contains(&json!(CORE_USER)) && schemas.contains(&json!(ENTERPRISE)), "{user}");
    assert_eq!(user["userName"], "Test_User_ab6490ee@contoso.com");
    assert_eq!(user["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(user["active"], true);
    assert_eq!(user["name"]["givenName"], "Barbara");
    assert_eq!(user["emails"][0]["value"], "Test_User_ab6490ee@contoso.com");
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "701984");
    // null and [] are "unassigned" (RFC 7643 §2.5): accepted, and nothing is made up for them.
    for unassigned in ["title", "addresses", "phoneNumbers", "roles"] {
        let v = user.get(unassigned).cloned().unwrap_or(Value::Null);
        assert!(v.is_null() || v == json!([]), "{unassigned}: {user}");
    }
    assert!(user[ENTERPRISE].get("manager").is_none_or(Value::is_null), "{user}");
    // meta is server-owned: the body's meta was ignored and ours filled in.
    assert_eq!(user["meta"]["resourceType"], "User");
    assert!(user["meta"]["created"].is_string() && user["meta"]["version"].is_string(), "{user}");
    assert!(user["meta"]["location"].as_str().is_some_and(|l| l.ends_with(&format!("/Users/{id}"))));

    // The next cycle's query finds it, and GET by the cached id returns the same resource.
    let q = s.play("entra/query_user_by_user_name.json", &[("userName", "Test_User_ab6490ee@contoso.com")]).await;
    assert_eq!(total(&q), 1);
    assert_eq!(q.body["Resources"][0]["id"], id);
    let g = s.play("entra/get_user.json", &[("id", id)]).await;
    assert_status(&g, StatusCode::OK);
    assert_eq!(g.body, user);
}

#[tokio::test]
async fn create_returns_location_of_the_new_user() {
    let s = TestServer::start().await;
    let r = s.play("entra/create_user.json", &[("userName", "loc@contoso.com"), ("externalId", "e1")]).await;
    assert_status(&r, StatusCode::CREATED);
    let id = r.body["id"].as_str().expect("id");
    assert_eq!(r.header("location"), r.body["meta"]["location"].as_str());
    assert!(r.header("location").is_some_and(|l| l.ends_with(&format!("/scim/v2/Users/{id}"))));
}

#[tokio::test]
async fn group_with_the_adscim_schema_uri_is_created_and_read_without_members() {
    let s = TestServer::start().await;
    let u = s.create_user("member@contoso.com").await;
    let c = s.play("entra/create_group.json", &[("externalId", "g-ext-1"), ("displayName", "Sales")]).await;
    assert_status(&c, StatusCode::CREATED);
    assert_eq!(c.body["schemas"], json!([CORE_GROUP]), "the unknown URI is ignored, not echoed: {}", c.text);
    assert_eq!(c.body["displayName"], "Sales");
    assert_eq!(c.body["externalId"], "g-ext-1");
    let gid = c.body["id"].as_str().expect("id").to_string();

    let add = s.play("entra/add_member.json", &[("groupId", &gid), ("userId", &u)]).await;
    assert_status(&add, StatusCode::NO_CONTENT);
    assert!(add.text.is_empty(), "{}", add.text);

    let full = s.get(&format!("/Groups/{gid}")).await;
    assert_eq!(full.body["members"][0]["value"], u.as_str(), "{}", full.text);
    let g = s.play("entra/get_group_excluding_members.json", &[("id", &gid)]).await;
    assert_status(&g, StatusCode::OK);
    assert!(g.body.get("members").is_none(), "{}", g.text);
    assert_eq!(g.body["displayName"], "Sales");
    assert_eq!(g.body["id"], gid.as_str());

    let q = s.play("entra/query_group_excluding_members.json", &[("displayName", "Sales")]).await;
    assert_status(&q, StatusCode::OK);
    assert_eq!(total(&q), 1);
    assert_eq!(q.body["Resources"][0]["id"], gid.as_str());
    assert!(q.body["Resources"][0].get("members").is_none(), "{}", q.text);

    // User.groups is computed from the membership just added.
    let user = s.get(&format!("/Users/{u}")).await;
    assert_eq!(user.body["groups"][0]["value"], gid.as_str(), "{}", user.text);
}

#[tokio::test]
async fn default_dialect_replaces_one_path_per_operation_including_value_paths_and_urn_attributes() {
    let s = TestServer::start().await;
    let user = provision(&s, "babs@contoso.com", "babs").await;
    let id = user["id"].as_str().expect("id");
    let r = s.play("entra/update_user_default.json", &[("id", id)]).await;
    assert_status(&r, StatusCode::OK);
    let after = s.get(&format!("/Users/{id}")).await.body;
    assert_eq!(r.body, after, "the PATCH answer is the resource as stored");
    let work = emails_of_type(&after, "work");
    assert_eq!(work.len(), 1, "{after}");
    assert_eq!(work[0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(work[0]["primary"], true, "other sub-attributes of the element are kept: {after}");
    assert_eq!(after["displayName"], "Babs Jensen");
    assert_eq!(after["name"]["givenName"], "Babs");
    assert_eq!(after["name"]["familyName"], "Jensen-Smith");
    assert_eq!(after["name"]["formatted"], "Barbara Jensen", "untouched sub-attributes stay: {after}");
    assert_eq!(after[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(after[ENTERPRISE]["department"], "Tour Operations");
    assert_eq!(after["userName"], "babs@contoso.com");
}

#[tokio::test]
async fn flag_dialect_path_less_replace_with_dotted_and_urn_keys_gives_the_same_result() {
    let s = TestServer::start().await;
    let a = provision(&s, "a@contoso.com", "a").await;
    let b = provision(&s, "b@contoso.com", "b").await;
    let (a, b) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    let ra = s.play("entra/update_user_default.json", &[("id", a)]).await;
    let rb = s.play("entra/update_user_flag.json", &[("id", b)]).await;
    assert_status(&ra, StatusCode::OK);
    assert_status(&rb, StatusCode::OK);
    let strip = |mut v: Value| {
        for k in ["id", "userName", "externalId", "meta"] {
            v.as_object_mut().expect("object").remove(k);
        }
        v
    };
    assert_eq!(strip(ra.body), strip(rb.body.clone()), "both dialects mean the same change");
    assert_eq!(rb.body[ENTERPRISE]["employeeNumber"], "42");
    assert!(rb.body.get("name.givenName").is_none(), "dotted keys are paths, not attributes: {}", rb.text);
}

#[tokio::test]
async fn default_dialect_disables_with_the_string_false_and_the_user_is_still_found() {
    let s = TestServer::start().await;
    let user = provision(&s, "leaver@contoso.com", "leaver").await;
    let id = user["id"].as_str().expect("id");
    let r = s.play("entra/disable_user_default.json", &[("id", id)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["active"], false, "a JSON boolean, not the string: {}", r.text);
    // Soft-deleted users must still be returned by GET and by filter (MS-TUT "General").
    let g = s.play("entra/get_user.json", &[("id", id)]).await;
    assert_status(&g, StatusCode::OK);
    assert_eq!(g.body["active"], false);
    let q = s.play("entra/query_user_by_user_name.json", &[("userName", "leaver@contoso.com")]).await;
    assert_eq!(total(&q), 1);
    assert_eq!(q.body["Resources"][0]["active"], false);
    assert_eq!(s.ids_matching("/Users", "active eq false").await, vec![id.to_string()]);
}

#[tokio::test]
async fn flag_dialect_disables_with_a_boolean() {
    let s = TestServer::start().await;
    let user = provision(&s, "leaver2@contoso.com", "leaver2").await;
    let id = user["id"].as_str().expect("id");
    let r = s.play("entra/disable_user_flag.json", &[("id", id)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["active"], false);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["active"], false);
}

#[tokio::test]
async fn default_dialect_add_of_a_single_valued_string_sets_it() {
    let s = TestServer::start().await;
    let id = s.create_user("nick@contoso.com").await;
    let r = s.play("entra/add_nickname_default.json", &[("id", &id)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["nickName"], "Babs");
}

#[tokio::test]
async fn default_dialect_remove_with_a_value_list_removes_only_the_listed_member() {
    let s = TestServer::start().await;
    let (u1, u2, u3) = (
        s.create_user("u1@contoso.com").await,
        s.create_user("u2@contoso.com").await,
        s.create_user("u3@contoso.com").await,
    );
    let gid = s.create_group("Engineering", &[&u1, &u2, &u3]).await;
    let r = s.play("entra/remove_member_default.json", &[("groupId", &gid), ("userId", &u2)]).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let members: Vec<String> = s.get(&format!("/Groups/{gid}")).await.body["members"]
        .as_array()
        .expect("the other members are still there")
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    let mut expected = vec![u1.clone(), u3.clone()];
    expected.sort();
    let mut got = members;
    got.sort();
    assert_eq!(got, expected);
    assert!(s.get(&format!("/Users/{u2}")).await.body.get("groups").is_none());
}

#[tokio::test]
async fn flag_dialect_remove_by_value_filter_removes_only_that_member() {
    let s = TestServer::start().await;
    let (u1, u2) = (s.create_user("f1@contoso.com").await, s.create_user("f2@contoso.com").await);
    let gid = s.create_group("Finance", &[&u1, &u2]).await;
    let r = s.play("entra/remove_member_flag.json", &[("groupId", &gid), ("userId", &u1)]).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "{g}");
    assert_eq!(g["members"][0]["value"], u2.as_str());
}

#[tokio::test]
async fn group_rename_answers_204_and_delete_answers_204_then_404() {
    let s = TestServer::start().await;
    let c = s.play("entra/create_group.json", &[("externalId", "x"), ("displayName", "Old name")]).await;
    let gid = c.body["id"].as_str().expect("id").to_string();
    let r = s.play("entra/rename_group.json", &[("groupId", &gid), ("displayName", "New name")]).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("/Groups/{gid}")).await.body["displayName"], "New name");
    let q = s.play("entra/query_group_excluding_members.json", &[("displayName", "Old name")]).await;
    assert_eq!(total(&q), 0);
    let d = s.play("entra/delete_group.json", &[("id", &gid)]).await;
    assert_status(&d, StatusCode::NO_CONTENT);
    assert_scim_error(&s.get(&format!("/Groups/{gid}")).await, 404, None);
}

#[tokio::test]
async fn manager_as_string_object_or_one_element_array_is_always_returned_as_the_rfc_object() {
    let s = TestServer::start().await;
    let boss = s.create_user("boss@contoso.com").await;
    let cases = ["entra/manager_as_string.json", "entra/manager_as_object.json", "entra/manager_as_array.json"];
    for (i, case) in cases.into_iter().enumerate() {
        let id = s.create_user(&format!("report-{i}@contoso.com")).await;
        let r = s.play(case, &[("id", &id), ("managerId", &boss)]).await;
        assert_status(&r, StatusCode::OK);
        for body in [r.body, s.get(&format!("/Users/{id}")).await.body] {
            let manager = &body[ENTERPRISE]["manager"];
            assert!(manager.is_object(), "{case}: manager must be the RFC object: {body}");
            assert_eq!(manager["value"], boss.as_str(), "{case}: {body}");
            let schemas = body["schemas"].as_array().expect("schemas");
            assert!(schemas.contains(&json!(ENTERPRISE)), "{case}: {body}");
        }
    }
}

#[tokio::test]
async fn manager_sent_as_a_string_in_a_create_body_is_stored_as_the_rfc_object() {
    let s = TestServer::start().await;
    let boss = s.create_user("boss2@contoso.com").await;
    let mut body = crate::support::server::replay(
        "entra/create_user.json",
        &[("userName", "report2@contoso.com"), ("externalId", "r2")],
    )
    .body
    .expect("body");
    body[ENTERPRISE]["manager"] = json!(boss);
    let r = s.post("/Users", &body).await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss.as_str(), "{}", r.text);
}

#[tokio::test]
async fn unquoted_external_id_filter_finds_the_user() {
    let s = TestServer::start().await;
    let user = provision(&s, "jyoung@contoso.com", "jyoung").await;
    provision(&s, "other@contoso.com", "jyoung2").await;
    let r = s.play("entra/query_by_external_id_unquoted.json", &[("externalId", "jyoung")]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(total(&r), 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], user["id"]);
}

#[tokio::test]
async fn matching_on_the_work_email_value_path_finds_the_user() {
    let s = TestServer::start().await;
    let user = provision(&s, "worker@contoso.com", "worker").await;
    let other = s
        .create_user_from(json!({"schemas": [CORE_USER], "userName": "home@contoso.com",
            "emails": [{"type": "home", "value": "worker@contoso.com"}]}))
        .await;
    assert!(other["id"].is_string());
    let r = s.play("entra/query_user_by_work_email.json", &[("email", "worker@contoso.com")]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(total(&r), 1, "only the user whose *work* email matches: {}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], user["id"]);
    let none = s.play("entra/query_user_by_work_email.json", &[("email", "nobody@contoso.com")]).await;
    assert_status(&none, StatusCode::OK);
    assert_eq!(total(&none), 0);
}

#[tokio::test]
async fn add_on_a_work_email_that_already_exists_replaces_its_value() {
    let s = TestServer::start().await;
    let user = provision(&s, "mail@contoso.com", "mail").await;
    let id = user["id"].as_str().expect("id");
    let r = s.play("entra/add_existing_work_email.json", &[("id", id), ("email", "new.mail@contoso.com")]).await;
    assert_status(&r, StatusCode::OK);
    let after = s.get(&format!("/Users/{id}")).await.body;
    let work = emails_of_type(&after, "work");
    assert_eq!(work.len(), 1, "still one work email: {after}");
    assert_eq!(work[0]["value"], "new.mail@contoso.com");
}

#[tokio::test]
async fn replace_on_a_work_email_value_path_of_a_user_without_one_adds_it() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "noemail@contoso.com"})).await;
    let id = r.body["id"].as_str().expect("id").to_string();
    let p = s.play("entra/update_user_default.json", &[("id", &id)]).await;
    assert_status(&p, StatusCode::OK);
    let work = emails_of_type(&p.body, "work");
    assert_eq!(work.len(), 1, "{}", p.text);
    assert_eq!(work[0]["value"], "updatedEmail@microsoft.com");
}

#[tokio::test]
async fn hard_delete_answers_204_then_get_is_404_and_the_query_is_an_empty_200() {
    let s = TestServer::start().await;
    let user = provision(&s, "gone@contoso.com", "gone").await;
    let id = user["id"].as_str().expect("id");
    let d = s.play("entra/delete_user.json", &[("id", id)]).await;
    assert_status(&d, StatusCode::NO_CONTENT);
    assert!(d.text.is_empty());
    assert_scim_error(&s.play("entra/get_user.json", &[("id", id)]).await, 404, None);
    let q = s.play("entra/query_user_by_user_name.json", &[("userName", "gone@contoso.com")]).await;
    assert_status(&q, StatusCode::OK);
    assert_eq!(total(&q), 0);
    assert_scim_error(&s.play("entra/delete_user.json", &[("id", id)]).await, 404, None);
    // The userName is free again for a new user (a rehire).
    provision(&s, "gone@contoso.com", "gone-again").await;
}
